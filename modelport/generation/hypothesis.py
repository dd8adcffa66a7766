"""One output of a search: :class:`Hypothesis`.

Every search (fairseq, hf, marian beam search; greedy and sampling) returns,
per input sentence, its n-best list of hypotheses; :func:`translate` adds the
detokenized ``text``. The type needs no torch, so report and CLI code can
read it without importing the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelport.reports.base import JsonView


@dataclass(frozen=True, kw_only=True, eq=False)
class Hypothesis(JsonView):
    """An output sequence and its scores, as the reproduced framework reports them.

    ``tokens`` end with EOS unless cut at the maximum length (no start token);
    ``score`` is the framework's final score (length-normalised where it
    normalises); ``positional_scores`` the log-probability of each token, EOS
    included; ``text`` the detokenized tokens (set by ``translate``, None from
    ``generate``); ``alignment`` the soft word alignment when asked for (Marian's
    ``--alignment``: per token, EOS included, the probability of each source
    token, EOS included; :mod:`modelport.generation.alignment` prints it), else None.

    Read-only dict view: ``h["tokens"]``, ``h.get("text")``, ``h.keys()``,
    ``"text" in h``, ``{**h}`` and ``h == {"tokens": ..., ...}`` behave as
    they did when hypotheses were dicts (``text`` is a key only once it is
    set), so code written against those dicts keeps working. New code reads
    the attributes.
    """

    tokens: list[int]
    score: float
    positional_scores: list[float]
    text: str | None = None
    alignment: list[list[float]] | None = None

    def with_text(self, text: str) -> Hypothesis:
        """This hypothesis with its detokenized ``text``."""
        return dataclasses.replace(self, text=text)

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``translate --json`` prints (``text`` and ``alignment``
        only when set); also what the dict view (:class:`~modelport.reports.base.JsonView`) reads."""
        out: dict[str, Any] = {"tokens": self.tokens, "score": self.score,
                               "positional_scores": self.positional_scores}
        if self.text is not None:
            out["text"] = self.text
        if self.alignment is not None:
            out["alignment"] = self.alignment
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Hypothesis):
            return self.to_json() == other.to_json()
        if isinstance(other, Mapping):  # the dict a hypothesis used to be
            return self.to_json() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside, as the dicts were
