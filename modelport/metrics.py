"""Translation quality metrics (sacreBLEU) shared by the validators, the passes and
distillation; imports nothing of modelport, so every layer may use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CorpusScores:
    """sacreBLEU corpus BLEU and chrF, with the signatures that say how they
    were computed (tokenizer, smoothing, sacreBLEU version: scores with
    different signatures are not comparable)."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str


def corpus_scores(hyps: list[str], refs: list[str]) -> CorpusScores:
    """sacreBLEU corpus BLEU and chrF of ``hyps`` against one reference each, signed."""
    from sacrebleu.metrics import BLEU, CHRF  # lazy: the CLI must not pay for it at startup

    if len(hyps) != len(refs):  # sacreBLEU would score the first lines only; callers check the counts first
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")

    bleu, chrf = BLEU(), CHRF()
    b, c = bleu.corpus_score(hyps, [refs]).score, chrf.corpus_score(hyps, [refs]).score
    return CorpusScores(bleu=b, chrf=c, bleu_signature=str(bleu.get_signature()),
                        chrf_signature=str(chrf.get_signature()))


def bleu_chrf(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """sacreBLEU corpus BLEU and chrF of ``hyps`` against one reference each."""
    s = corpus_scores(hyps, refs)
    return {"bleu": s.bleu, "chrf": s.chrf}
