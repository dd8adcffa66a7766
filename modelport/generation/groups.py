"""Consecutive batches decoded together in one search.

Under fairseq and Marian semantics a batch sets each of its lines' length cap
(fairseq: ``max_len_a`` times its padded source width plus ``max_len_b``;
Marian: ``max-length-factor`` times that width), so the batches are formed as
the framework forms them. They are then decoded several at a time, each line
keeping its own batch's width (``batch_widths``): every sentence's search reads
only its own rows and cap, so the outputs are those of the batches decoded one
by one, in fewer and fuller decoding steps. Under transformers' semantics (hf)
no limit depends on the batch: the batches are grouped alike, without widths.
Under every semantics a group's encoder runs batch by batch, as the frameworks'
does (runs of batches at most :data:`ENCODER_RUN_SLACK` times wider, see
:func:`encoder_runs`), not over the whole group padded to its widest line.
"""

from __future__ import annotations

from collections.abc import Sequence

# How many lines of consecutive batches one search decodes (see decode_groups, group_lines): lines x d_model
# up to this many. A decoding step has a cost per step (per-op overhead, the search's bookkeeping) and
# one per row, and a group runs until its longest sentence ends, so small models gain from large groups and
# large ones do not. Measured on this project's machine, beam 4-5, outputs identical: marian semantics, 200
# test lines, the Marian-trained d_model 32 and 64 fixtures decoded 1.08-1.41x faster in groups of 256 lines
# than of 64 (1 and 2 threads; lines in corpus order, and in bench_translate's sorted 16-line batches), and
# transformer-base proportions (d 512, 128 lines, 2 threads) took 13.8, 14.0 and 15.4 s in groups of 32, 64
# and 128; fairseq semantics, 16-line batches, 2 threads: the embedded model (d 128) 1.81x faster in groups of
# 128 lines than batch by batch, a random transformer-base model 1.07-1.11x in groups of 32 (bench_translate).
GROUP_LINES_X_WIDTH = 1 << 14
MIN_GROUP_LINES, MAX_GROUP_LINES = 32, 256
# A search whose rows are cheap (few layers, a small vocabulary) gains from larger groups than its width gives:
# groups grow until a decoding step multiplies about this many FLOPs (beam rows x row_step_flops). Measured in
# place, 2 threads, beam 5, fairseq semantics, outputs identical: the embedded model (3+3 layers, d_model 128,
# 1,072 target words; 242 lines by this budget) on the corpus' 200 test lines took 0.391 s in one group against
# 0.441 s in groups of 128 (1 thread 0.587 against 0.664 s); random 3+3-layer d_model 128 and 256 models with
# 8,000 words were fastest at 128 and 64 lines, their width's groups, which this budget leaves alone (256 and 128
# lines took 1.15x and 1.10x as long).
GROUP_STEP_FLOPS = 2e9


def row_step_flops(decoder_layers: int, d_model: int, ffn_dim: int, target_vocab: int) -> float:
    """FLOPs of one hypothesis' decoding step: per layer its self-attention's four and cross-attention's two
    d x d products and the feed-forward's two, then the output projection."""
    return 2.0 * (decoder_layers * (6 * d_model * d_model + 2 * d_model * ffn_dim) + d_model * target_vocab)


def group_lines(d_model: int, step_flops: float = 0.0) -> int:
    """Lines per search of :func:`decode_groups` for a model of width ``d_model``:
    256 up to d_model 64, 64 at 256, 32 from 512 on; more (up to 256) where a line's
    rows cost ``step_flops`` a step (beam x :func:`row_step_flops`) and that many
    lines multiply at most :data:`GROUP_STEP_FLOPS` a step."""
    by_width = max(MIN_GROUP_LINES, min(MAX_GROUP_LINES, GROUP_LINES_X_WIDTH // max(1, d_model)))
    if step_flops <= 0:
        return by_width
    return max(by_width, min(MAX_GROUP_LINES, int(GROUP_STEP_FLOPS // step_flops)))


def decode_groups(batches: Sequence[Sequence[int]], lengths: Sequence[int], max_lines: int,
                  chunk_lines: int | None = None) -> tuple[list[list[int]], list[tuple[int, ...]]]:
    """Consecutive ``batches`` joined into groups of at most ``max_lines``
    lines (a batch larger than that stays whole), and per group each line's
    own batch width (its longest line), which sets the line's length cap.
    A group is one search: the outputs are those of the batches decoded one by
    one, as each sentence's search reads only its own rows and cap.

    ``chunk_lines`` (Marian: a whole number of pools,
    :func:`~modelport.generation.marian_batching.pool_chunk_lines`): no
    group holds lines of two chunks of that many lines, so a corpus translated
    in chunks (one process each) is decoded in the very groups the whole corpus
    is. The rounding of a step's arithmetic may depend on its rows (how many,
    which attention kernel runs), and a near-tie between two hypotheses could
    then fall the other way in another group."""
    groups: list[list[int]] = []
    widths: list[tuple[int, ...]] = []
    chunk = None
    for batch in batches:
        width = max(lengths[i] for i in batch)
        batch_chunk = None if chunk_lines is None else min(batch) // chunk_lines
        if not groups or len(groups[-1]) + len(batch) > max_lines or batch_chunk != chunk:
            groups.append([])
            widths.append(())
            chunk = batch_chunk
        groups[-1].extend(batch)
        widths[-1] += (width,) * len(batch)
    return groups, widths


# encoder_runs: neighbouring lines are encoded together while padding them to the widest costs at most this
# factor of their tokens at their own batches' widths
ENCODER_RUN_SLACK = 1.25


def encoder_runs(widths: Sequence[int]) -> list[tuple[int, int]]:
    """The runs of consecutive lines ``(start, end)`` of a group that the encoder
    computes together (:meth:`~modelport.model.transformer.Seq2SeqModel.encode`),
    given each line's batch width: lines are added to a run while its padded area
    (lines x widest) stays within :data:`ENCODER_RUN_SLACK` times the sum of their
    widths. Each run then costs the encoder at most that factor of what its
    batches cost apart, in fewer calls (a small model's cost is mostly per call)."""
    runs: list[tuple[int, int]] = []
    start = area = widest = 0
    for i, w in enumerate(widths):
        if i > start and (i + 1 - start) * max(widest, w) > ENCODER_RUN_SLACK * (area + w):
            runs.append((start, i))
            start, area, widest = i, 0, 0
        area += w
        widest = max(widest, w)
    if len(widths) > start:
        runs.append((start, len(widths)))
    return runs


__all__ = ["ENCODER_RUN_SLACK", "GROUP_LINES_X_WIDTH", "GROUP_STEP_FLOPS", "MAX_GROUP_LINES", "MIN_GROUP_LINES",
           "decode_groups", "encoder_runs", "group_lines", "row_step_flops"]
