"""One output of a search: :class:`Hypothesis`.

Every search (fairseq, hf, marian beam search; greedy and sampling) returns,
per input sentence, its n-best list of hypotheses; :func:`translate` adds the
detokenized ``text``. The type needs no torch, so report and CLI code can
read it without importing the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True, eq=False)
class Hypothesis:
    """An output sequence and its scores, as the reproduced framework reports them.

    ``tokens`` end with EOS unless cut at the maximum length (no start token);
    ``score`` is the framework's final score (length-normalised where it
    normalises); ``positional_scores`` the log-probability of each token, EOS
    included; ``text`` the detokenized tokens (set by ``translate``, None from
    ``generate``).

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

    def with_text(self, text: str) -> Hypothesis:
        """This hypothesis with its detokenized ``text``."""
        return dataclasses.replace(self, text=text)

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``translate --json`` prints (``text`` only when set)."""
        return {k: self[k] for k in self.keys()}

    # -- the read-only dict view ------------------------------------------------
    def keys(self) -> tuple[str, ...]:
        """The field names that are set, in dict order (``text`` last, when set)."""
        names = ("tokens", "score", "positional_scores")
        return names if self.text is None else (*names, "text")

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self.keys() else default

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Hypothesis):
            return self.to_json() == other.to_json()
        if isinstance(other, Mapping):  # the dict a hypothesis used to be
            return self.to_json() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside, as the dicts were
