"""``torch.topk`` over the long rows of beam search, exact and faster on the CPU.

Every search step takes the best ``k`` (twice the beam for fairseq and
transformers, the beam for Marian) of ``beam x vocabulary`` path scores per
sentence. torch's CPU top-k partially sorts (value, index) pairs of the whole
row: measured at 1.3 ns per element on this project's machine, 0.2 ms per step
for 64 sentences of a 500-piece student and 3 ms for 16 sentences at 32k
vocabularies, a tenth of a tiny model's step. Why not torch's alone:
:func:`topk` first takes the maximum of each block of ``BLOCK`` columns (one
vectorised pass), keeps the ``k`` blocks with the highest maxima, and runs
torch's top-k on those ``k x BLOCK`` columns only.

That is exact: every value above the ``k``-th highest block maximum ``T`` lies
in a kept block (its block's maximum is above ``T``), and the kept blocks hold
``k`` values of at least ``T``. Only ties could differ (which of two equal
values comes first, or an equal value in a block not kept); where the result
has two equal values among its best ``k + 1``, or a block not kept reaches
``T``, torch's own top-k of the whole row is returned instead, so the result is
always ``torch.topk``'s, indices included.

:func:`best_of_runs` is the step of a search whose sentences keep as many
candidates as they have rows (Marian's beams after the first step), through a
threshold instead of a top-k.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# columns per block; rows shorter than MIN_COLUMNS or than MIN_BLOCKS blocks of k go to torch.topk directly: the
# blocks' dozen small operations cost more than they save there (64 rows of 2,505: 225 vs 206 us at 1 thread;
# 16 rows of 10,000: 213 vs 107 us at 2, where torch.topk splits the rows between the threads)
BLOCK = 128
MIN_COLUMNS = 16384
MIN_BLOCKS = 4
# best_of_runs below this many values returns None, for torch's top-k: its dozen numpy operations (~50 us) cost
# more than torch's top-k of a few rows (4 rows x 501: 53 vs 43 us; 14 rows: 57 vs 81 us)
MIN_RUNS_ELEMENTS = 1 << 12


def topk(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``torch.topk(x, k)`` (largest first, sorted) along the last dimension of a
    2-D ``x``: the same values and indices, through the block maxima where the
    rows are long (see the module docstring)."""
    cols = x.size(-1)
    if x.device.type == "cpu" and not torch.jit.is_tracing() and cols >= max(MIN_COLUMNS, MIN_BLOCKS * k * BLOCK):
        found = by_blocks(x, k)
        if found is not None:
            return found
    return torch.topk(x, k)


def by_blocks(x: Tensor, k: int) -> tuple[Tensor, Tensor] | None:
    """:func:`topk` through the ``k`` blocks of ``BLOCK`` columns with the highest
    maxima; None where a tie (or NaN) could make the result differ from torch's."""
    rows, cols = x.shape
    x = x.contiguous()
    whole = cols // BLOCK * BLOCK
    maxima = x[:, :whole].reshape(rows, whole // BLOCK, BLOCK).amax(-1)
    if whole < cols:  # the shorter last block
        maxima = torch.cat([maxima, x[:, whole:].amax(-1, keepdim=True)], dim=1)
    best, blocks = torch.topk(maxima, k)
    columns = (blocks.unsqueeze(-1) * BLOCK + torch.arange(BLOCK, device=x.device)).view(rows, k * BLOCK)
    outside = columns >= cols  # past the end of the row, in the last block
    candidates = x.gather(1, columns.clamp(max=cols - 1)).masked_fill_(outside, float("-inf"))
    values, at = torch.topk(candidates, k + 1)
    unsure = ((values[:, 1:] == values[:, :-1]).any(1) | torch.isnan(values).any(1)
              | ((maxima >= best[:, -1:]).sum(1) > k))
    if bool(unsure.any()):
        return None
    return values[:, :k], columns.gather(1, at[:, :k])


def best_of_runs(scores: Tensor, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The best ``rows[i]`` values of each run ``i`` of ``rows[i]`` consecutive rows
    of the float32 CPU matrix ``scores`` ``[sum(rows), V]``, as ``torch.topk`` of the
    run's rows laid side by side gives them: values ``[runs, max(rows)]``, best first,
    and their flat indices into ``scores`` (``row * V + column``); a run's slots past
    its ``rows[i]`` hold -inf and index 0. None where torch's top-k must decide: a
    NaN, equal values that it could order its own way, or fewer than
    ``MIN_RUNS_ELEMENTS`` values.

    Why not torch's top-k: it partially sorts every value (1.3 ns each), after a
    copy into a grid padded with -inf where the runs are unequal. Here each run's
    threshold ``T`` is the lowest of its rows' maxima: its ``rows[i]`` maxima all
    reach ``T``, so its best ``rows[i]`` values all do, and only the few values
    that reach ``T`` are sorted (one vectorised maximum and one comparison over the
    matrix). On the steps of the Marian-trained ``tiny11_ssru`` student translating
    200 test lines (14 to 1,000 rows of 501 pieces; about 2 values per row reach
    ``T``) it took 0.66x the top-k's time at 2 threads and 0.43x at 1 (whole
    translations, paired with the top-k in one process: 0.97x and 0.99x, the
    same outputs)."""
    if scores.device.type != "cpu" or scores.dtype != torch.float32 or scores.dim() != 2 or rows.min() < 1 \
            or scores.numel() < MIN_RUNS_ELEMENTS:
        return None
    runs, width = len(rows), int(rows.max())
    threshold = np.minimum.reduceat(scores.amax(1).numpy(), np.cumsum(rows) - rows)
    if np.isnan(threshold).any():
        return None
    values = scores.numpy()
    # compared by torch, on every thread (numpy's comparison runs on one: 62 steps of tiny11_ssru at 2 threads,
    # 5.0 against 6.9 ms with the nonzero); the indices row-major: run by run
    flat = np.flatnonzero((scores >= torch.from_numpy(np.repeat(threshold, rows)[:, None])).numpy())
    row = flat // values.shape[1]
    found = values.reshape(-1)[flat] if values.flags.c_contiguous else values[row, flat % values.shape[1]]
    run = np.repeat(np.arange(runs), rows)[row]
    counts = np.bincount(run, minlength=runs)  # at least rows[i] each: the run's maxima
    first = np.cumsum(counts) - counts
    # each run's candidates side by side, negated (+inf pads), ranked by a stable sort: equal values by flat index
    ranked = np.full((runs, int(counts.max())), np.inf, dtype=values.dtype)
    ranked[run, np.arange(len(flat)) - first[run]] = -found
    at = np.argsort(ranked, axis=1, kind="stable")[:, :width + 1]
    ordered = np.take_along_axis(ranked, at, 1)
    # equal finite values among a run's best, or its last kept one equal to the next: torch's order is its own
    pairs = np.arange(at.shape[1] - 1) < rows[:, None]
    if (pairs & (ordered[:, 1:] == ordered[:, :-1]) & np.isfinite(ordered[:, :-1])).any():
        return None
    valid = np.arange(width) < rows[:, None]
    best = np.where(valid, -ordered[:, :width], -np.inf).astype(values.dtype, copy=False)
    index = np.where(valid, flat[np.minimum(first[:, None] + at[:, :width], len(flat) - 1)], 0)
    return best, index


__all__ = ["BLOCK", "best_of_runs", "by_blocks", "topk"]
