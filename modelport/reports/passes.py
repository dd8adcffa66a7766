"""What a pass (quantize, prune) reports: :class:`PassReport`.

The JSON form (``pass_report.json`` and, without its ``pass`` section, the
``report`` of the pass's entry in ``conversion.json``'s history) is
``{"pass": {name, options, changed}, "parameters": {before, after},
"bytes_on_disk": {before, after}}`` plus, when the pass was measured on data,
``tokens_per_second``, ``agreement`` and, with references, ``quality``
(``before``, ``after``, ``signature`` and, since quantize records it, ``delta``).
Plain data: imports nothing of modelport but the renderer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from modelport.reports.base import (Flat, JsonView, Scores, Signatures, direction_lines, languages_from_json,
                                    languages_json)
from modelport.reports.markdown import render_markdown, write_report

PASS_REPORT_STEM = "pass_report"  # .json and .md in the pass's output folder


@dataclass(frozen=True)
class BeforeAfter(Flat):
    """One number of the original folder and of the pass's output."""

    before: int
    after: int


@dataclass(frozen=True)
class Speed(Flat):
    """Tokens per second of both models, measured in the same process: with
    ``timing`` (``"best of 3 runs after a warm-up"``), the best of the timed
    runs of each model (``runs_before`` / ``runs_after``: every run's
    tokens/s) and their ratio. Reports written before ``timing`` was recorded
    hold one timed run."""

    OPTIONAL = ("timing", "runs_before", "runs_after")

    before: float
    after: float
    speedup: float
    timing: str | None = None
    runs_before: list[float] | None = None
    runs_after: list[float] | None = None

    @property
    def how(self) -> str:
        """How the figures were measured, in words."""
        return self.timing or "one timed run"


@dataclass(frozen=True)
class Agreement(Flat):
    """How often the pass's output says what the original says (first-best outputs)."""

    lines: int
    identical_outputs: int
    identical_percent: float
    mean_abs_score_diff: float | None  # over the identical outputs; None when there are none
    mean_abs_token_logprob_diff: float | None


@dataclass(frozen=True)
class Quality(Flat):
    """BLEU/chrF of the original and of the pass's output, with sacreBLEU's
    signatures and, where the pass recorded it (:meth:`with_delta`), the
    change ``after - before``: what a user weighs against size and speed."""

    OPTIONAL = ("signature", "delta")

    before: Scores
    after: Scores
    signature: Signatures | None = None  # None: a report written before signatures were recorded
    delta: Scores | None = None  # None: a report written before the change was recorded

    def with_delta(self) -> Quality:
        """This quality with ``delta`` filled in from ``before`` and ``after`` (rounded as they are)."""
        change = Scores(bleu=round(self.after.bleu - self.before.bleu, 2),
                        chrf=round(self.after.chrf - self.before.chrf, 2))
        return Quality(self.before, self.after, signature=self.signature, delta=change)


@dataclass(frozen=True)
class PassMeasurement:
    """The pass's output against the original: size always; speed and
    agreement with data; quality with references."""

    parameters: BeforeAfter
    bytes_on_disk: BeforeAfter
    tokens_per_second: Speed | None = None
    agreement: Agreement | None = None
    quality: Quality | None = None
    languages: tuple[str, str] | None = None  # a multilingual port: the direction the data was translated in

    def to_json(self) -> dict[str, Any]:
        """Every measured section, in field order (what was not measured is left out)."""
        sections = {f.name: getattr(self, f.name).to_json() for f in fields(self)
                    if f.name != "languages" and getattr(self, f.name) is not None}
        return {**sections, **languages_json(self.languages)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PassMeasurement:
        quality = data.get("quality")
        return cls(parameters=BeforeAfter(**data["parameters"]), bytes_on_disk=BeforeAfter(**data["bytes_on_disk"]),
                   tokens_per_second=Speed(**data["tokens_per_second"]) if "tokens_per_second" in data else None,
                   agreement=Agreement(**data["agreement"]) if "agreement" in data else None,
                   quality=None if quality is None else Quality(
                       Scores(**quality["before"]), Scores(**quality["after"]),
                       signature=Signatures.from_json(quality.get("signature")),
                       delta=Scores(**quality["delta"]) if "delta" in quality else None),
                   languages=languages_from_json(data))


@dataclass(frozen=True)
class PassReport(JsonView):
    """What a pass did (its name, options and what it changed: free-form per
    pass, recorded as given) and what it measured."""

    name: str
    options: Mapping[str, Any]
    changed: Mapping[str, Any]
    measured: PassMeasurement = field(repr=False)

    @property
    def title(self) -> str:
        return f"{self.name} report"

    def to_json(self) -> dict[str, Any]:
        return {"pass": {"name": self.name, "options": dict(self.options), "changed": dict(self.changed)},
                **self.measured.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PassReport:
        info = data["pass"]
        return cls(name=info["name"], options=info["options"], changed=info["changed"],
                   measured=PassMeasurement.from_json(data))

    def to_markdown(self) -> str:
        return render_markdown(self.to_json(), self.title)

    def write(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """``pass_report.json`` and ``pass_report.md`` in ``directory``."""
        return write_report(self.to_json(), directory, stem=PASS_REPORT_STEM, title=self.title)

    def summary_lines(self, output_dir: str | os.PathLike[str]) -> list[str]:
        """What ``modelport quantize|prune`` prints for a pass written to ``output_dir``."""
        m = self.measured
        p, b = m.parameters, m.bytes_on_disk
        lines = [f"written to:    {output_dir}",
                 f"parameters:    {p.before:,} -> {p.after:,}",
                 f"bytes on disk: {b.before:,} -> {b.after:,} ({100 * b.after / b.before:.0f}%)"]
        lines += direction_lines(m.languages)
        if m.tokens_per_second is not None and m.agreement is not None:
            t, a = m.tokens_per_second, m.agreement
            how = "same run" if t.timing is None else f"{t.timing}, same process"
            lines.append(f"tokens/s:      {t.before} -> {t.after} ({t.speedup}x, {how})")
            lines.append(f"agreement:     {a.identical_outputs}/{a.lines} identical beam outputs "
                         f"({a.identical_percent}%)")
            if a.mean_abs_token_logprob_diff is not None:
                lines.append(f"log-prob diff: {a.mean_abs_token_logprob_diff} mean |difference| per token "
                             "where identical")
        if m.quality is not None:
            q = m.quality
            change = "" if q.delta is None else f" (BLEU {q.delta.bleu:+.2f}, chrF {q.delta.chrf:+.2f})"
            lines.append(f"BLEU / chrF:   {q.before.bleu} / {q.before.chrf} -> {q.after.bleu} / {q.after.chrf}{change}")
        lines.append(f"report:        {Path(output_dir) / (PASS_REPORT_STEM + '.md')}")
        return lines


__all__ = ["PASS_REPORT_STEM", "PassReport", "PassMeasurement", "BeforeAfter", "Speed", "Agreement", "Scores",
           "Quality", "Flat", "JsonView", "Signatures"]
