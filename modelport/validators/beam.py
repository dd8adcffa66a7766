"""Beam-search parity: identical token sequences and scores within ``tol``,
and, for each mismatch, the first divergent step explained.

At the first position where the two hypotheses differ, both models score the
common prefix; the two competing tokens and their log-probs are reported. A
gap below ``near_tie`` (1e-5) is a numerical near-tie (fp32 noise decided
it); anything larger is a real divergence.

Marian ports also print word alignments (``--alignment``): :func:`compare_alignments`
compares Marian's printed strings with the port's, entry by entry, where the
two translations are identical (a differing translation is the beam check's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport.generation.alignment import SOFT, SoftAlignment, format_alignment, parse_alignment
from modelport.generation.scoring import PrefixScorer
from modelport.reports.parity import BeamSection
from modelport.validators.references.marian import printed_tolerance

# a hypothesis: modelport's Hypothesis, or a reference framework's as a dict (tokens, score, positional_scores)
Hyp = Mapping[str, Any]

NEAR_TIE = 1e-5


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int:
    """Index of the first differing token (the shorter length if one is a prefix)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def explain(src: list[int], ours: Hyp, ref: Hyp, start: int, score_ours: PrefixScorer,
            score_ref: PrefixScorer | None, near_tie: float = NEAR_TIE) -> dict[str, Any]:
    """The first divergent step of one hypothesis pair, its competing tokens
    and their log-probs under both models, classified near-tie / real."""
    step = first_divergence(ours["tokens"], ref["tokens"])
    prefix = [start] + list(ours["tokens"][:step])
    tok_o = ours["tokens"][step] if step < len(ours["tokens"]) else None
    tok_r = ref["tokens"][step] if step < len(ref["tokens"]) else None
    out: dict[str, Any] = {"step": step, "prefix": prefix[1:], "token_modelport": tok_o, "token_reference": tok_r}
    scorable = tok_o is not None and tok_r is not None
    lp_o = score_ours(src, prefix) if scorable else None
    lp_r = score_ref(src, prefix) if score_ref is not None and scorable else None
    gaps = []
    for side, lp in (("modelport", lp_o), ("reference", lp_r)):
        if lp is None:
            continue
        a = float(lp[tok_o]) if tok_o is not None else None
        b = float(lp[tok_r]) if tok_r is not None else None
        out[f"logprob_{side}_model"] = {"modelport_token": a, "reference_token": b}
        if a is not None and b is not None:
            gaps.append(abs(a - b))
    if lp_r is not None and lp_o is not None:
        out["prefix_logit_max_abs_diff"] = float((lp_o - lp_r).abs().max())
    gap = min(gaps) if gaps else None
    out["gap"] = gap
    out["score_modelport"], out["score_reference"] = ours["score"], ref["score"]
    if step == len(ours["tokens"]) == len(ref["tokens"]):
        out["kind"] = "score"
    elif gap is not None and gap < near_tie:
        out["kind"] = "near-tie"
    else:
        out["kind"] = "real divergence"
    return out


def compare_hypotheses(src_tokens: Sequence[list[int]], ours: Sequence[Sequence[Hyp]],
                       ref: Sequence[Sequence[Hyp]], *, start: int, score_ours: PrefixScorer,
                       score_ref: PrefixScorer | None = None, tol: float = 1e-4,
                       near_tie: float = NEAR_TIE, max_examples: int = 20,
                       decode: Callable[[Sequence[int]], str] | None = None) -> BeamSection:
    """Compare n-best lists sentence by sentence; explain every mismatch
    (explanations for the first ``max_examples``, all counted). With
    ``decode`` (token ids -> text), each explained mismatch also shows both
    hypotheses as text: what a reader compares first."""
    mismatches: list[dict[str, Any]] = []
    counts = {"near-tie": 0, "real divergence": 0, "score": 0, "count": 0}
    max_score_diff = 0.0
    hyps = 0
    for i, (src, xs, ys) in enumerate(zip(src_tokens, ours, ref)):
        if len(xs) != len(ys):
            counts["real divergence"] += 1
            mismatches.append({"line": i, "kind": "real divergence",
                               "detail": f"{len(xs)} hypotheses vs {len(ys)} from the reference"})
            continue
        for rank, (x, y) in enumerate(zip(xs, ys)):
            hyps += 1
            same = list(x["tokens"]) == list(y["tokens"])
            diff = abs(x["score"] - y["score"])
            pos = max((abs(p - q) for p, q in zip(x.get("positional_scores", []),
                                                     y.get("positional_scores", []))), default=0.0)
            if same:
                max_score_diff = max(max_score_diff, diff, pos)
                if diff <= tol and pos <= tol:
                    continue
            if len(mismatches) < max_examples:
                info = explain(list(src), x, y, start, score_ours, score_ref, near_tie)
                if same:
                    info["kind"] = "score"
            else:
                info = {"kind": "score" if same else "unexplained"}
            kind = info["kind"] if info["kind"] in counts else "real divergence"
            counts[kind] += 1
            if len(mismatches) < max_examples:
                texts = {} if decode is None else {"text_modelport": decode(x["tokens"]),
                                                    "text_reference": decode(y["tokens"])}
                mismatches.append({"line": i, "rank": rank, **texts, "tokens_modelport": list(x["tokens"]),
                                   "tokens_reference": list(y["tokens"]), **info})
    return BeamSection(hypotheses=hyps, identical=not mismatches and counts["real divergence"] == 0
                       and counts["near-tie"] == 0 and counts["score"] == 0,
                       near_ties=counts["near-tie"], real_divergences=counts["real divergence"],
                       score_mismatches=counts["score"], max_score_diff=max_score_diff,
                       passed=counts["real divergence"] == 0 and counts["score"] == 0, mismatches=mismatches)


# float32 noise between two computations of one attention probability (in [0, 1]), beyond Marian's printed digits
ALIGNMENT_SLACK = 2e-6


@dataclass(frozen=True, kw_only=True)
class AlignmentCheck:
    """Word alignments of identical translations, the port's against Marian's
    printed ones (``--alignment mode``): ``hypotheses`` compared (n-best
    entries), ``agreeing`` of them; ``lines`` with a compared entry,
    ``agreeing_lines`` of them; ``mismatches``: one record per differing entry."""

    mode: str | float
    hypotheses: int
    agreeing: int
    lines: int
    agreeing_lines: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def rule(self) -> str:
        """How two alignments are compared in this mode."""
        return ("every probability within Marian's 6 printed digits (+2e-6)" if self.mode == SOFT
                else "identical strings")

    def note(self) -> str:
        """The report's line of counts."""
        return (f"alignments (--alignment {self.mode}): {self.agreeing} of {self.hypotheses} hypotheses on "
                f"{self.agreeing_lines} of {self.lines} lines agree with pymarian decode --alignment ({self.rule}; "
                "entries whose translations differ are the beam check's)")

    def failure(self) -> str | None:
        """One line naming the first differing entry, or None."""
        if self.passed:
            return None
        m = self.mismatches[0]
        return (f"alignments (--alignment {self.mode}) of {self.lines - self.agreeing_lines} of {self.lines} lines "
                f"differ from pymarian decode; first: line {m['line'] + 1}, n-best entry {m['hypothesis'] + 1}: "
                f"pymarian `{_short(m['reference'])}`, modelport `{_short(m['modelport'])}`")


def _short(text: str | None, limit: int = 80) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "..."


def _soft_rows(printed: str) -> list[list[float]]:
    return [[float(p) for p in row.split(",")] for row in printed.split()]


def _soft_gap(ours: SoftAlignment, printed: str) -> float | None:
    """How far beyond Marian's printed precision the port's probabilities are (None: the shapes differ)."""
    try:
        theirs = _soft_rows(printed)
    except ValueError:
        return None
    if [len(r) for r in theirs] != [len(r) for r in ours]:
        return None
    return max((abs(a - b) - printed_tolerance(b) for ra, rb in zip(ours, theirs) for a, b in zip(ra, rb)),
               default=0.0)


def compare_alignments(mode: str | float,
                       entries: Sequence[Sequence[tuple[int, str | None, SoftAlignment | None]]], *,
                       slack: float = ALIGNMENT_SLACK) -> AlignmentCheck:
    """Per line, ``(n-best rank, Marian's printed alignment, the port's soft alignment)``
    of each n-best entry whose translations are identical: hard and threshold
    alignments must be the same string (the port's printed as Marian prints
    it), soft ones equal within Marian's 6 significant digits plus ``slack``."""
    mode = parse_alignment(mode)
    mismatches: list[dict[str, Any]] = []
    hyps = agreeing = lines = agreeing_lines = 0
    for i, line in enumerate(entries):
        if not line:
            continue
        lines += 1
        line_ok = True
        for j, theirs, ours in line:
            hyps += 1
            mine = format_alignment(ours, mode) if ours is not None else None
            if theirs is None or mine is None:
                ok, gap = False, None
            elif mode == SOFT:
                gap = _soft_gap(ours, theirs)  # type: ignore[arg-type]
                ok = gap is not None and gap <= slack
            else:
                ok, gap = mine == theirs, None
            if ok:
                agreeing += 1
                continue
            line_ok = False
            record: dict[str, Any] = {"line": i, "hypothesis": j, "kind": "alignment", "mode": mode,
                                      "reference": theirs, "modelport": mine}
            if mode == SOFT:
                record["beyond_printed_precision"] = gap
            mismatches.append(record)
        agreeing_lines += line_ok
    return AlignmentCheck(mode=mode, hypotheses=hyps, agreeing=agreeing, lines=lines, agreeing_lines=agreeing_lines,
                          mismatches=mismatches)
