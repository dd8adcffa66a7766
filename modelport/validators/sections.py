"""What every validator's report is made of: the forward check teacher-forced on
the reference's outputs, BLEU of both systems, the per-sentence score
differences and their figure, and writing the report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.api import PortedModel
from modelport.files import unwritable
from modelport.generation.scoring import teacher_forcing_batch
from modelport.generation.translate import model_device
from modelport.metrics import corpus_scores
from modelport.reports.base import Signatures
from modelport.reports.parity import PARITY_REPORT_STEM, BleuSection, ForwardSection, ParityReport, Scores
from modelport.reports.plots import SCORE_PLOT_NAME, score_histogram
from modelport.validators.forward import localize_divergence, max_logit_diff

FORWARD_TOL = 1e-4


def score_diffs(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    """Per-sentence differences of the best hypotheses' scores (port minus reference)."""
    return [float(a) - float(b) for a, b in zip(ours, theirs)]


def figures(diffs: Sequence[float], write: bool) -> dict[str, str]:
    """The figures the written report links to: the score-difference histogram when scores were compared."""
    return {"per-sentence score differences": SCORE_PLOT_NAME} if write and diffs else {}


def finish(report: ParityReport, diffs: Sequence[float], ported_dir: str | os.PathLike[str],
           report_dir: str | os.PathLike[str] | None, write: bool) -> ParityReport:
    """Write the report (and its figures) unless ``write`` is False; return it."""
    if write:
        write_parity_report(report, Path(report_dir) if report_dir is not None else Path(ported_dir), diffs)
    return report


def forward_section(ported: PortedModel, ref: Any, name_table: dict[str, Any], src_tokens: list[list[int]],
                    ref_out: list[Any], batches: list[list[int]], forward_batches: int, start: int | None = None
                    ) -> ForwardSection:
    """max |logit diff| of every member, teacher-forced on the reference's best
    outputs (``ref_out``) over the first ``forward_batches`` batches; on
    failure, the first divergent module on the first line. ``start``: the
    token the decoder starts from (default: the config's decoder start)."""
    cfg = ported.config
    start = cfg.decoder_start_token_id if start is None else start

    def targets(batch: list[int]) -> list[list[int]]:
        return [ref_out[i][0]["tokens"] for i in batch]

    diffs = []
    for member in range(len(ported.models)):
        for batch in batches[:forward_batches]:
            src, prev, mask = teacher_forcing_batch([src_tokens[i] for i in batch], targets(batch),
                                                    cfg.pad_token_id, start,
                                                    device=model_device(ported.models))
            diffs.append(max_logit_diff(ported.models[member], lambda s, p, m=member: ref.logits(s, p, m),
                                        src, prev, mask))
    worst = max(diffs) if diffs else 0.0
    passed = worst <= FORWARD_TOL
    divergence = None
    if not passed:
        i = batches[0][0]
        src, prev, _ = teacher_forcing_batch([src_tokens[i]], targets([i]), cfg.pad_token_id, start,
                                             device=model_device(ported.models))
        divergence = localize_divergence(ref.models[0], ported.models[0], lambda: ref.run_forward(src, prev),
                                         lambda: ported.models[0](src, prev), name_table, tol=FORWARD_TOL)
    return ForwardSection(max_abs_logit_diff=worst, tolerance=FORWARD_TOL, passed=passed, divergence=divergence)


def bleu_section(ours: list[str], theirs: list[str], references: Sequence[str]) -> BleuSection:
    refs = list(references)
    mine, other = corpus_scores(ours, refs), corpus_scores(theirs, refs)
    return BleuSection(modelport=Scores(bleu=mine.bleu, chrf=mine.chrf),
                       reference=Scores(bleu=other.bleu, chrf=other.chrf),
                       signature=Signatures(bleu=mine.bleu_signature, chrf=mine.chrf_signature))


def write_parity_report(report: ParityReport, directory: Path, score_diffs: Sequence[float] = ()
                        ) -> tuple[Path, Path]:
    """``parity_report.json`` and ``parity_report.md`` in ``directory``, and
    the histogram of ``score_diffs`` (``parity_scores.png``) the report links to."""
    try:
        if report.figures:
            directory.mkdir(parents=True, exist_ok=True)
            score_histogram(score_diffs, directory / SCORE_PLOT_NAME)
        return report.write(directory, PARITY_REPORT_STEM)
    except OSError as e:  # a folder that cannot be made or written: one line naming it
        raise unwritable(directory, e, on_the_way=True) or e from None
