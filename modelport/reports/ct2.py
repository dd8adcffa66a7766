"""What ``export ct2`` reports: :class:`Ct2ExportReport` (``target: "ct2"``)
with its :class:`Ct2Verification`, and the two decoding comparisons it holds
(:class:`Ct2Comparison`: greedy and beam). Plain data: imports nothing of
modelport but the export report base.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.reports.base import direction_lines, languages_from_json, languages_json
from modelport.reports.export import ExportReport, export_target

# ctranslate2.specs.model_spec.ACCEPTED_MODEL_TYPES, spelled out so the CLI lists them without importing ctranslate2
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


@dataclass(frozen=True)
class Ct2Comparison:
    """One decoding rule run by CTranslate2 and by modelport on the same lines.

    ``rule``: the search both ran, in words. ``rules_coincide``: whether the
    two searches follow the same rules with these settings (then a difference
    is a defect or a numerical near-tie); when not, ``rule_difference`` says
    which rule differs. ``options``: CTranslate2's ``translate_batch``
    arguments. ``differing``: the 0-based indices of the first differing lines."""

    rule: str
    options: dict[str, Any]
    identical: int
    lines: int
    rules_coincide: bool
    rule_difference: str | None = None
    differing: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "options": dict(self.options), "identical": self.identical, "lines": self.lines,
                "rules_coincide": self.rules_coincide, "rule_difference": self.rule_difference,
                "differing": list(self.differing)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ct2Comparison:
        return cls(rule=data["rule"], options=dict(data["options"]), identical=data["identical"],
                   lines=data["lines"], rules_coincide=data["rules_coincide"],
                   rule_difference=data.get("rule_difference"), differing=list(data.get("differing", [])))

    def line(self, name: str) -> str:
        """One summary line: ``greedy:  20/20 identical outputs (...)``."""
        tail = "" if self.rules_coincide or not self.rule_difference else f"; rules differ: {self.rule_difference}"
        return f"{name + ':':<15}{self.identical}/{self.lines} identical outputs ({self.rule}{tail})"


@dataclass(frozen=True)
class Ct2Verification:
    """The written directory loaded with ``ctranslate2.Translator`` (CPU) and
    compared with the port. ``exact``: identity was required (an unquantized
    export); a quantized one reports its agreement with the fp32 port instead.
    ``reference``: what the greedy outputs were compared with (the port's own
    greedy search, or its full-forward greedy where the two differ)."""

    lines: int
    compute_type: str
    exact: bool
    reference: str
    greedy: Ct2Comparison
    beam: Ct2Comparison
    port_greedy_identical: int | None  # with a full-forward reference: agreement with the port's own greedy
    passed: bool
    failure: str | None
    # data lines left out: empty sources, which CTranslate2 answers with an empty output without decoding
    empty_lines: int = 0
    # a multilingual port's direction (source, target); the tokens put before each source, and forced first on
    # the target as CTranslate2's target_prefix (a language token, BART's <s>), as translate places them
    languages: tuple[str, str] | None = None
    source_prefix: list[str] = field(default_factory=list)
    target_prefix: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "empty_lines": self.empty_lines, "compute_type": self.compute_type,
                "exact": self.exact, "reference": self.reference, **languages_json(self.languages),
                "source_prefix": list(self.source_prefix), "target_prefix": list(self.target_prefix),
                "greedy": self.greedy.to_json(), "beam": self.beam.to_json(),
                "port_greedy_identical": self.port_greedy_identical, "passed": self.passed, "failure": self.failure}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ct2Verification:
        return cls(lines=data["lines"], compute_type=data["compute_type"], exact=data["exact"],
                   reference=data["reference"], greedy=Ct2Comparison.from_json(data["greedy"]),
                   beam=Ct2Comparison.from_json(data["beam"]), port_greedy_identical=data.get("port_greedy_identical"),
                   passed=data["passed"], failure=data.get("failure"), empty_lines=data.get("empty_lines", 0),
                   languages=languages_from_json(data),
                   source_prefix=list(data.get("source_prefix", [])), target_prefix=list(data.get("target_prefix", [])))

    def summary_lines(self, report: ExportReport) -> list[str]:
        runtime = getattr(report, "ctranslate2_version", "?")
        head = (f"checked with:  ctranslate2 {runtime} on the CPU ({self.compute_type}), {self.lines} lines; "
                + ("greedy must be identical" if self.exact else "quantized: agreement with the fp32 port"))
        lines = [head, *direction_lines(self.languages)]
        if self.source_prefix or self.target_prefix:
            lines.append(f"tokens:        {_placed(self.source_prefix, self.target_prefix)}")
        lines += [self.greedy.line("greedy"), self.beam.line("beam")]
        if self.empty_lines:
            lines.append(f"left out:      {self.empty_lines} empty line(s): CTranslate2 gives an empty source an "
                         "empty output without decoding it, the port decodes </s> as the original framework does")
        if self.port_greedy_identical is not None:
            lines.append(f"port greedy:   {self.port_greedy_identical}/{self.lines} identical to the port's own "
                         "incremental greedy search (a known difference, see notes)")
        return lines


def _placed(source_prefix: list[str], target_prefix: list[str]) -> str:
    """How to call CTranslate2 as the verification did: the tokens before each source, the target prefix."""
    parts = []
    if source_prefix:
        parts.append(f"each source begins with {' '.join(source_prefix)}")
    if target_prefix:
        parts.append(f"translate_batch(..., target_prefix=[{target_prefix!r}, ...])")
    return "; ".join(parts) + " (as translate places them)"


@export_target("ct2")
@dataclass(frozen=True, kw_only=True)
class Ct2ExportReport(ExportReport):
    """``export ct2``: the CTranslate2 spec written, its quantization, the
    vocabulary files, the special tokens of its ``config.json``, what
    CTranslate2 computes differently from the port and the verification."""

    ctranslate2_version: str
    spec: str  # the ctranslate2.specs class, e.g. TransformerSpec
    quantization: str | None  # ctranslate2's quantization type; None keeps the port's float32
    vocabulary: list[str]  # the vocabulary files written
    special_tokens: dict[str, str | None]  # CTranslate2's config.json: unk, bos, eos, decoder_start
    add_source_eos: bool
    known_differences: list[str] = field(default_factory=list)
    verification: Ct2Verification | None = None

    _json_order = ("modelport_version", "ctranslate2_version", "ported_dir", "source_format", "spec", "quantization",
                   "vocabulary", "special_tokens", "add_source_eos", "known_differences", "verification")
    _nested = {"verification": Ct2Verification}

    def _head_lines(self) -> list[str]:
        return [f"model:         {self.spec} (ctranslate2 {self.ctranslate2_version}), weights "
                f"{self.quantization or 'float32'}, {' + '.join(self.vocabulary)}"]

    def _tail_lines(self) -> list[str]:
        return [f"note:          {note}" for note in self.known_differences]


__all__ = ["QUANTIZATIONS", "Ct2Comparison", "Ct2ExportReport", "Ct2Verification"]
