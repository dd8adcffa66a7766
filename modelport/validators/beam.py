"""Beam-search parity: identical token sequences and scores within ``tol``,
and, for each mismatch, the first divergent step explained.

At the first position where the two hypotheses differ, both models score the
common prefix; the two competing tokens and their log-probs are reported. A
gap below ``near_tie`` (1e-5) is a numerical near-tie (fp32 noise decided
it); anything larger is a real divergence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelport.generation.scoring import PrefixScorer
from modelport.reports.parity import BeamSection

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
