"""The parity report: what ``modelport validate`` measured, as one typed value.

A :class:`ParityReport` holds a :class:`ParityMeta` and up to five sections,
each a small dataclass (a multilingual port's report holds the per-pair ones
in one :class:`PairReport` per language pair, ``pairs`` in the JSON):

- ``tokenizer``: :class:`TokenizerSection` (one :class:`TokenizerComparison`
  or :class:`SkippedReference` per reference tokenizer);
- ``inputs``: :class:`InputsSection` (the source ids with special and
  language tokens placed, against the reference's; fairseq BART and
  multilingual ports);
- ``forward``: :class:`ForwardSection` (logits of the reference model,
  teacher-forced; fairseq and T5 ports) or :class:`MarianForwardSection`
  (per-token log-probs printed by ``pymarian score``);
- ``beam``: :class:`BeamSection` (n-best lists compared hypothesis by
  hypothesis, every mismatch explained) or :class:`MarianBeamSection`
  (against ``pymarian decode``, within the precision Marian prints);
- ``bleu``: :class:`BleuSection` (BLEU and chrF of both systems).

``to_json()`` is the ``parity_report.json`` document (its keys are a file
format: the card and users' scripts read them), ``from_json()`` reads one
back, ``summary_lines()`` are the lines ``modelport validate`` prints,
``card_lines()`` the parity section of the model card, and ``to_markdown()``
the ``parity_report.md`` text (the one renderer of :mod:`modelport.reports.markdown`).

Mismatch explanations (which line, which step, the competing tokens...) stay
JSON records: their fields depend on what could be explained, they are shown
as they are and nothing reads them by key.

For code written when the report was a dict, a report is also a read-only
mapping over ``to_json()`` (:class:`~modelport.reports.base.JsonView`:
``report["beam"]["identical"]``, ``report.get(...)``); new code reads the
attributes. Plain data: no torch, nothing of modelport above this package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelport.reports.markdown import render_markdown, write_report
from modelport.reports.base import JsonView, Scores, Signatures

PARITY_REPORT_STEM = "parity_report"  # .json and .md, written by `modelport validate`

TITLE = "Parity report"
SECTIONS = ("tokenizer", "inputs", "forward", "beam", "bleu")

# a mismatch explanation: shown as it is, read by no code
Record = dict[str, Any]


def _present(**pairs: Any) -> dict[str, Any]:
    """The pairs whose value is not None: optional fields absent from the JSON when unset."""
    return {k: v for k, v in pairs.items() if v is not None}


def _verdict(passed: bool | None) -> str:
    return "passed" if passed else "FAILED"


class Section(Protocol):
    """What every section of a parity report provides."""

    passed: bool

    def to_json(self) -> dict[str, Any]: ...

    def summary_line(self) -> str: ...

    def card_rows(self) -> list[str]: ...


# --------------------------------------------------------------------------- meta


@dataclass(frozen=True, kw_only=True)
class ParityMeta:
    """What was validated, against what, with which decoding options."""

    ported_dir: str
    reference: str
    lines: int | None = None
    semantics: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the decoding options both sides used
    batch_size: int | None = None
    notes: list[str] = field(default_factory=list)
    reference_framework: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ported_dir": self.ported_dir, "reference": self.reference,
                **_present(lines=self.lines, semantics=self.semantics), "options": dict(self.options),
                **_present(batch_size=self.batch_size), "notes": list(self.notes),
                **_present(reference_framework=self.reference_framework)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParityMeta:
        return cls(ported_dir=str(data.get("ported_dir", "")), reference=str(data.get("reference", "")),
                   lines=data.get("lines"), semantics=data.get("semantics"), options=dict(data.get("options") or {}),
                   batch_size=data.get("batch_size"), notes=list(data.get("notes") or []),
                   reference_framework=data.get("reference_framework"))


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True, kw_only=True)
class SkippedReference:
    """A reference tokenizer whose framework is not installed."""

    skipped: str  # why, e.g. "fastBPE not installed"
    authoritative: None = None

    def to_json(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "authoritative": None}


@dataclass(frozen=True, kw_only=True)
class TokenizerComparison:
    """The port's tokenizer against one reference, line by line (counts of equal lines)."""

    authoritative: bool  # the original framework's code: it decides ``passed``
    via: str | None = None
    moses_langs: list[str | None] | None = None
    ids_equal: int
    target_ids_equal: int | None  # None: the reference has no target side
    decoded_equal: int
    outputs_decoded_equal: int | None  # None: no port outputs were decoded
    reference_errors: int
    modelport_errors: int
    outputs: int | None = None  # how many port outputs both decoded
    passed: bool
    mismatches: list[Record] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"authoritative": self.authoritative, **_present(via=self.via, moses_langs=self.moses_langs),
                "ids_equal": self.ids_equal, "target_ids_equal": self.target_ids_equal,
                "decoded_equal": self.decoded_equal, "outputs_decoded_equal": self.outputs_decoded_equal,
                "reference_errors": self.reference_errors, "modelport_errors": self.modelport_errors,
                **_present(outputs=self.outputs), "passed": self.passed, "mismatches": list(self.mismatches)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenizerComparison:
        return cls(authoritative=bool(data.get("authoritative")), via=data.get("via"),
                   moses_langs=data.get("moses_langs"), ids_equal=data["ids_equal"],
                   target_ids_equal=data.get("target_ids_equal"), decoded_equal=data.get("decoded_equal", 0),
                   outputs_decoded_equal=data.get("outputs_decoded_equal"),
                   reference_errors=data.get("reference_errors", 0),
                   modelport_errors=data.get("modelport_errors", 0), outputs=data.get("outputs"),
                   passed=bool(data.get("passed")), mismatches=list(data.get("mismatches") or []))


ReferenceResult = TokenizerComparison | SkippedReference


@dataclass(frozen=True, kw_only=True)
class TokenizerSection:
    """Tokenizer parity: identical ids and decoded text on every line, per reference."""

    type: str | None  # the ported tokenizer's type (tokenizer_config.json)
    lines: int
    passed: bool
    references: dict[str, ReferenceResult] = field(default_factory=dict)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "lines": self.lines, "passed": self.passed,
                "references": {name: r.to_json() for name, r in self.references.items()},
                **_present(note=self.note)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenizerSection:
        refs: dict[str, ReferenceResult] = {
            name: SkippedReference(skipped=r["skipped"]) if "skipped" in r else TokenizerComparison.from_json(r)
            for name, r in (data.get("references") or {}).items()}
        return cls(type=data.get("type"), lines=data["lines"], passed=bool(data.get("passed")), references=refs,
                   note=data.get("note"))

    def summary_line(self) -> str:
        parts = [f"{name} {r.ids_equal}/{self.lines} ids" + ("" if r.authoritative else " (second opinion)")
                 for name, r in self.references.items() if isinstance(r, TokenizerComparison)]
        return f"tokenizer: {_verdict(self.passed)} ({'; '.join(parts)})"

    def card_rows(self) -> list[str]:
        return [f"| tokenizer (ids and decoded text) | {'identical' if self.passed else 'differs'} |"]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, kw_only=True)
class InputsSection:
    """The source ids the model reads, special and language tokens placed, as the
    reference framework builds them (its hub's ``encode``, its task's dataset for
    inference) against the port's: identical rows, the first mismatches shown."""

    lines: int
    identical: int
    passed: bool
    mismatches: list[Record] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "identical": self.identical, "passed": self.passed,
                "mismatches": list(self.mismatches)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputsSection:
        return cls(lines=data["lines"], identical=data["identical"], passed=bool(data.get("passed")),
                   mismatches=list(data.get("mismatches") or []))

    def summary_line(self) -> str:
        return f"inputs:    {_verdict(self.passed)} ({self.identical}/{self.lines} source rows identical)"

    def card_rows(self) -> list[str]:
        return [f"| inputs (source ids, special tokens placed) | {self.identical}/{self.lines} identical |"]


# --------------------------------------------------------------------------- forward


@dataclass(frozen=True, kw_only=True)
class ModuleDivergence:
    """Where a failed forward check localized the divergence: the first module
    (execution order) whose output differs, in both frameworks' names."""

    module: str | None
    reference_module: str | None
    max_abs_diff: float

    def to_json(self) -> dict[str, Any]:
        return {"first_divergent_module": self.module, "first_divergent_reference_module": self.reference_module,
                "module_max_abs_diff": self.max_abs_diff}


class _ForwardLines:
    """The summary line and card row of a forward section (both kinds)."""

    passed: bool
    tolerance: float
    max_abs_logit_diff: float
    first_divergent_module: str | None

    def summary_line(self) -> str:
        module = self.first_divergent_module
        where = f", first divergent module: {module}" if module else ""
        return f"forward:   {_verdict(self.passed)} (max |logit diff| {self.max_abs_logit_diff:.2e}{where})"

    def card_rows(self) -> list[str]:
        return [f"| forward: max abs logit difference | {self.max_abs_logit_diff:.3g} "
                f"(tolerance {self.tolerance:.0e}) |"]


@dataclass(frozen=True, kw_only=True)
class ForwardSection(_ForwardLines):
    """max |logit difference| against the reference model, teacher-forced on its outputs."""

    max_abs_logit_diff: float
    tolerance: float
    passed: bool
    divergence: ModuleDivergence | None = None  # set when the check failed

    def to_json(self) -> dict[str, Any]:
        return {"max_abs_logit_diff": self.max_abs_logit_diff, "tolerance": self.tolerance, "passed": self.passed,
                **(self.divergence.to_json() if self.divergence else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForwardSection:
        divergence = None
        if "first_divergent_module" in data:
            divergence = ModuleDivergence(module=data["first_divergent_module"],
                                          reference_module=data.get("first_divergent_reference_module"),
                                          max_abs_diff=data.get("module_max_abs_diff", 0.0))
        return cls(max_abs_logit_diff=data["max_abs_logit_diff"], tolerance=data.get("tolerance", 1e-4),
                   passed=bool(data.get("passed")), divergence=divergence)

    @property
    def first_divergent_module(self) -> str | None:  # type: ignore[override]
        return self.divergence.module if self.divergence else None


@dataclass(frozen=True, kw_only=True)
class WeightDivergence:
    """Where a failed Marian forward check localized the divergence: the worst
    line, and the first module whose weights differ from a fresh conversion."""

    worst_line: int | None
    module: str | None
    max_abs_diff: float
    localized_by: str

    def to_json(self) -> dict[str, Any]:
        return {"worst_line": self.worst_line, "first_divergent_module": self.module,
                "module_max_abs_diff": self.max_abs_diff, "localized_by": self.localized_by}


@dataclass(frozen=True, kw_only=True)
class MarianForwardSection(_ForwardLines):
    """Per-token log-probs of Marian's best hypotheses (``pymarian score
    --word-scores``) against the port's, within the precision Marian prints.
    ``max_abs_logit_diff`` is the same number, under the name every forward section has."""

    max_abs_logprob_diff: float
    tolerance: float
    compared: str
    reference_precision: str
    passed: bool
    note: str | None = None
    divergence: WeightDivergence | None = None  # set when the check failed

    @property
    def max_abs_logit_diff(self) -> float:  # type: ignore[override]
        return self.max_abs_logprob_diff

    @property
    def first_divergent_module(self) -> str | None:  # type: ignore[override]
        return self.divergence.module if self.divergence else None

    def to_json(self) -> dict[str, Any]:
        return {"max_abs_logprob_diff": self.max_abs_logprob_diff, "max_abs_logit_diff": self.max_abs_logit_diff,
                "tolerance": self.tolerance, "compared": self.compared,
                "reference_precision": self.reference_precision, "passed": self.passed, **_present(note=self.note),
                **(self.divergence.to_json() if self.divergence else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MarianForwardSection:
        divergence = None
        if "localized_by" in data:
            divergence = WeightDivergence(worst_line=data.get("worst_line"), module=data.get("first_divergent_module"),
                                          max_abs_diff=data.get("module_max_abs_diff", 0.0),
                                          localized_by=data["localized_by"])
        return cls(max_abs_logprob_diff=data["max_abs_logprob_diff"], tolerance=data.get("tolerance", 1e-4),
                   compared=data.get("compared", ""), reference_precision=data.get("reference_precision", ""),
                   passed=bool(data.get("passed")), note=data.get("note"), divergence=divergence)


# --------------------------------------------------------------------------- beam


class _BeamLines:
    """The summary line and card rows of a beam section (both kinds)."""

    passed: bool
    identical: bool
    hypotheses: int
    real_divergences: int
    near_ties: int
    max_score_diff: float

    def _counts(self) -> str:
        """The mismatch counts the card shows."""
        raise NotImplementedError

    def summary_line(self) -> str:
        return (f"beam:      {_verdict(self.passed)} ({self.hypotheses} hypotheses, {self.real_divergences} real "
                f"divergences, {self.near_ties} near-ties, max score diff {self.max_score_diff:.2e})")

    def card_rows(self) -> list[str]:
        rows = [f"| beam search: identical outputs | {'yes' if self.identical else 'no'} ({self._counts()}) |"]
        if self.max_score_diff is not None:
            rows.append(f"| beam search: max score difference | {self.max_score_diff:.3g} |")
        return rows


@dataclass(frozen=True, kw_only=True)
class BeamSection(_BeamLines):
    """Beam search: identical token sequences for every hypothesis of every
    n-best list, scores within the tolerance; each mismatch explained at its
    first divergent step and classified (near-tie, real divergence, score)."""

    hypotheses: int
    identical: bool
    near_ties: int
    real_divergences: int
    score_mismatches: int
    max_score_diff: float
    passed: bool
    mismatches: list[Record] = field(default_factory=list)  # the first ones, explained

    def to_json(self) -> dict[str, Any]:
        return {"hypotheses": self.hypotheses, "identical": self.identical, "near_ties": self.near_ties,
                "real_divergences": self.real_divergences, "score_mismatches": self.score_mismatches,
                "max_score_diff": self.max_score_diff, "passed": self.passed, "mismatches": list(self.mismatches)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BeamSection:
        return cls(hypotheses=data["hypotheses"], identical=bool(data.get("identical")),
                   near_ties=data.get("near_ties", 0), real_divergences=data.get("real_divergences", 0),
                   score_mismatches=data.get("score_mismatches", 0), max_score_diff=data.get("max_score_diff", 0.0),
                   passed=bool(data.get("passed")), mismatches=list(data.get("mismatches") or []))

    def _counts(self) -> str:
        return (f"real divergences {self.real_divergences}, near-ties {self.near_ties}, "
                f"score mismatches {self.score_mismatches}")


@dataclass(frozen=True, kw_only=True)
class MarianBeamSection(_BeamLines):
    """Beam search against ``pymarian decode``: n-best lists piece for piece,
    scores within Marian's printed precision (a score mismatch counts as a
    real divergence)."""

    hypotheses: int
    lines: int
    identical_lines: int
    real_divergences: int
    near_ties: int
    max_score_diff: float
    reference_precision: str
    mismatches: list[Record] = field(default_factory=list)  # the first ones
    passed: bool

    @property
    def identical(self) -> bool:  # type: ignore[override]
        """Every line's n-best list identical to Marian's."""
        return self.identical_lines == self.lines

    def to_json(self) -> dict[str, Any]:
        return {"hypotheses": self.hypotheses, "lines": self.lines, "identical_lines": self.identical_lines,
                "real_divergences": self.real_divergences, "near_ties": self.near_ties,
                "max_score_diff": self.max_score_diff, "reference_precision": self.reference_precision,
                "mismatches": list(self.mismatches), "passed": self.passed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MarianBeamSection:
        return cls(hypotheses=data["hypotheses"], lines=data.get("lines", 0),
                   identical_lines=data["identical_lines"], real_divergences=data.get("real_divergences", 0),
                   near_ties=data.get("near_ties", 0), max_score_diff=data.get("max_score_diff", 0.0),
                   reference_precision=data.get("reference_precision", ""),
                   mismatches=list(data.get("mismatches") or []), passed=bool(data.get("passed")))

    def _counts(self) -> str:
        return (f"{self.identical_lines}/{self.lines} lines identical, real divergences {self.real_divergences}, "
                f"near-ties {self.near_ties}")


# --------------------------------------------------------------------------- bleu


@dataclass(frozen=True, kw_only=True)
class BleuSection:
    """Translation quality of the port and of the reference against reference
    translations (informative: it never fails parity), with sacreBLEU's
    signatures."""

    modelport: Scores  # sacreBLEU corpus BLEU and chrF
    reference: Scores
    passed: bool = True
    signature: Signatures | None = None  # None: a report written before signatures were recorded

    def to_json(self) -> dict[str, Any]:
        return {"modelport": asdict(self.modelport), "reference": asdict(self.reference), "passed": self.passed,
                **_present(signature=self.signature.to_json() if self.signature else None)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BleuSection:
        def scores(d: Mapping[str, Any]) -> Scores:
            return Scores(bleu=d["bleu"], chrf=d["chrf"])

        return cls(modelport=scores(data["modelport"]), reference=scores(data["reference"]),
                   passed=bool(data.get("passed", True)), signature=Signatures.from_json(data.get("signature")))

    def summary_line(self) -> str:
        m, r = self.modelport, self.reference
        signed = f" (sacreBLEU {self.signature.bleu})" if self.signature else ""
        return (f"bleu:      port {m.bleu:.2f} / chrF {m.chrf:.2f}; reference {r.bleu:.2f} / chrF {r.chrf:.2f}"
                f"{signed}")

    def card_rows(self) -> list[str]:
        return [f"| {system} | BLEU {scores.bleu:.2f}, chrF {scores.chrf:.2f} |" for system, scores in
                (("modelport", self.modelport), ("reference", self.reference))]


# --------------------------------------------------------------------------- the report

ForwardResult = ForwardSection | MarianForwardSection
BeamResult = BeamSection | MarianBeamSection


def _forward_from_json(data: Mapping[str, Any]) -> ForwardResult:
    return (MarianForwardSection if "max_abs_logprob_diff" in data else ForwardSection).from_json(data)


def _beam_from_json(data: Mapping[str, Any]) -> BeamResult:
    return (MarianBeamSection if "identical_lines" in data else BeamSection).from_json(data)


# section name -> its reader
_READERS = {"tokenizer": TokenizerSection.from_json, "inputs": InputsSection.from_json,
            "forward": _forward_from_json, "beam": _beam_from_json, "bleu": BleuSection.from_json}
# the sections a language pair's report holds
PAIR_SECTIONS = ("inputs", "forward", "beam", "bleu")


def pair_name(source_lang: str | None, target_lang: str | None) -> str:
    """``en-de`` (fairseq's --lang-pairs spelling)."""
    return f"{source_lang}-{target_lang}"


@dataclass(frozen=True, kw_only=True)
class PairReport:
    """One language pair of a multilingual port: its inputs, forward and beam
    sections (and BLEU), as a report without pairs holds them."""

    source_lang: str | None
    target_lang: str | None
    inputs: InputsSection | None = None
    forward: ForwardResult | None = None
    beam: BeamResult | None = None
    bleu: BleuSection | None = None
    passed: bool
    failure: str | None = None  # one line saying what failed first

    @property
    def name(self) -> str:
        return pair_name(self.source_lang, self.target_lang)

    @classmethod
    def of(cls, source_lang: str | None, target_lang: str | None, *, failure: str | None = None,
           **sections: Section | None) -> PairReport:
        """The pair's report; it passes when a section ran and every section passed."""
        ran = [s for s in sections.values() if s is not None]
        return cls(source_lang=source_lang, target_lang=target_lang, **sections,  # type: ignore[arg-type]
                   passed=bool(ran) and all(s.passed for s in ran), failure=failure)

    def sections(self) -> dict[str, Section]:
        found = {name: getattr(self, name) for name in PAIR_SECTIONS}
        return {name: s for name, s in found.items() if s is not None}

    def to_json(self) -> dict[str, Any]:
        return {"source_lang": self.source_lang, "target_lang": self.target_lang, "passed": self.passed,
                **_present(failure=self.failure), **{name: s.to_json() for name, s in self.sections().items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PairReport:
        sections = {name: _READERS[name](data[name]) for name in PAIR_SECTIONS if isinstance(data.get(name), Mapping)}
        return cls(source_lang=data.get("source_lang"), target_lang=data.get("target_lang"), **sections,
                   passed=bool(data.get("passed")), failure=data.get("failure"))

    def summary_lines(self) -> list[str]:
        return [f"{self.name}: {s.summary_line()}" for s in self.sections().values()]

    def card_rows(self) -> list[str]:
        return [row.replace("| ", f"| {self.name}: ", 1) for s in self.sections().values() for row in s.card_rows()]


@dataclass(frozen=True, kw_only=True)
class ParityReport(JsonView):
    """What ``modelport validate`` found; ``passed`` says whether parity holds
    (the CLI exits 3 when it does not)."""

    meta: ParityMeta
    tokenizer: TokenizerSection | None = None
    inputs: InputsSection | None = None
    forward: ForwardResult | None = None
    beam: BeamResult | None = None
    bleu: BleuSection | None = None
    # multilingual ports: one report per language pair validated, by name (``en-de``); None: no pairs
    pairs: dict[str, PairReport] | None = None
    passed: bool
    failure: str | None = None  # one line saying what failed, where the validator can say it
    # figures written next to the report: what each shows -> its file name (linked from the Markdown)
    figures: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, meta: ParityMeta, *, failure: str | None = None, figures: Mapping[str, str] | None = None,
           pairs: Sequence[PairReport] | None = None, **sections: Section | None) -> ParityReport:
        """A report of the sections (and language pairs) that ran: parity passes
        when at least one ran (a validator that checked nothing cannot fail, so
        it cannot pass either) and every one passed."""
        ran: list[Any] = [s for s in sections.values() if s is not None] + list(pairs or [])
        return cls(meta=meta, **sections, passed=bool(ran) and all(s.passed for s in ran),  # type: ignore[arg-type]
                   failure=failure, figures=dict(figures or {}),
                   pairs={p.name: p for p in pairs} if pairs is not None else None)

    def sections(self) -> dict[str, Section]:
        """The sections that ran, in report order."""
        found = {name: getattr(self, name) for name in SECTIONS}
        return {name: s for name, s in found.items() if s is not None}

    def to_json(self) -> dict[str, Any]:
        """The ``parity_report.json`` document."""
        pairs = {name: p.to_json() for name, p in self.pairs.items()} if self.pairs is not None else None
        return {"meta": self.meta.to_json(), **{name: s.to_json() for name, s in self.sections().items()},
                **_present(pairs=pairs), "passed": self.passed,
                **_present(failure=self.failure, figures=dict(self.figures) or None)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParityReport:
        """Read a ``parity_report.json`` document (a missing optional field takes
        its default; a missing required one is a ``KeyError``)."""
        sections = {name: _READERS[name](data[name]) for name in SECTIONS if isinstance(data.get(name), Mapping)}
        pairs = data.get("pairs")
        return cls(meta=ParityMeta.from_json(data.get("meta") or {}), **sections, passed=bool(data.get("passed")),
                   failure=data.get("failure"), figures=dict(data.get("figures") or {}),
                   pairs={name: PairReport.from_json(p) for name, p in pairs.items()}
                   if isinstance(pairs, Mapping) else None)

    def checks(self) -> list[str]:
        """The sections that ran, in report order, a multilingual port's per-pair ones included
        (``validate --only tokenizer`` runs one)."""
        names = list(self.sections())
        for pair in (self.pairs or {}).values():
            names += [name for name in pair.sections() if name not in names]
        return names

    def summary_lines(self) -> list[str]:
        """One line per section and the verdict: what ``modelport validate`` prints."""
        pairs = [line for p in (self.pairs or {}).values() for line in p.summary_lines()]
        return [s.summary_line() for s in self.sections().values()] + pairs + [f"parity:    {_verdict(self.passed)}"]

    def card_lines(self) -> list[str]:
        """The parity section of a model card (Markdown): the verdict, a table
        of the checks and the validator's notes."""
        meta = self.meta
        out = [f"`modelport validate` ran the original framework and this port on "
               f"{meta.lines if meta.lines is not None else '?'} lines (semantics `{meta.semantics or '?'}`): "
               f"parity **{_verdict(self.passed)}**.", "", "| check | result |", "|---|---|"]
        for section in self.sections().values():
            out += section.card_rows()
        for pair in (self.pairs or {}).values():
            out += pair.card_rows()
        if self.bleu is not None and self.bleu.signature is not None:
            out += [""] + self.bleu.signature.lines()
        out += [f"\nNote: {note}" for note in meta.notes]
        return out

    def to_markdown(self) -> str:
        """The ``parity_report.md`` text: every field, through the one renderer,
        and each figure shown as an image (the files sit next to the report)."""
        data = self.to_json()
        data.pop("figures", None)
        text = render_markdown(data, TITLE)
        if self.figures:
            text += "\n## figures\n\n" + "\n\n".join(f"![{what}]({name})"
                                                      for what, name in self.figures.items()) + "\n"
        return text

    def write(self, directory: str | os.PathLike[str], stem: str = PARITY_REPORT_STEM) -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.md`` into ``directory``; return both paths."""
        return write_report(self.to_json(), directory, stem, TITLE, markdown=self.to_markdown())

    def items(self) -> Any:
        """``to_json().items()`` (with the rest of the read-only mapping view of :class:`JsonView`)."""
        return self.to_json().items()


__all__ = ["BeamSection", "BleuSection", "ForwardSection", "InputsSection", "MarianBeamSection",
           "MarianForwardSection", "ModuleDivergence", "PairReport", "ParityMeta", "ParityReport", "Scores",
           "SkippedReference", "TokenizerComparison", "TokenizerSection", "WeightDivergence", "pair_name"]
