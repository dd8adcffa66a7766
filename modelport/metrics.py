"""Translation quality metrics (sacreBLEU) shared by the validators, the passes and
distillation; imports nothing of modelport, so every layer may use it."""

from __future__ import annotations


def bleu_chrf(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """sacreBLEU corpus BLEU and chrF of ``hyps`` against one reference each."""
    import sacrebleu

    return {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score, "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score}
