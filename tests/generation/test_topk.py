"""Beam search's top-k through block maxima is torch.topk's, indices included,
and falls back to it wherever a tie could order the result differently; so is
Marian's per-sentence selection through row maxima (best_of_runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modelport.generation import topk as topk_module
from modelport.generation.topk import BLOCK, best_of_runs, by_blocks, topk
from modelport.model.layers import run_slots


def _rows(seed: int, rows: int, cols: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g).log_softmax(-1)


@pytest.mark.parametrize(("rows", "cols", "k"), [(3, 40 * BLOCK, 10), (5, 40 * BLOCK + 77, 5), (1, 9 * BLOCK + 1, 2),
                                                  (16, 160_000, 10)])
def test_blocks_give_torchs_values_and_indices(rows: int, cols: int, k: int) -> None:
    x = _rows(rows * cols + k, rows, cols)
    found = by_blocks(x, k)
    assert found is not None  # distinct values: the blocks decide
    expected = torch.topk(x, k)
    assert torch.equal(found[0], expected.values) and torch.equal(found[1], expected.indices)
    assert torch.equal(topk(x, k)[1], expected.indices)


def test_a_best_value_in_the_last_short_block() -> None:
    x = _rows(1, 4, 30 * BLOCK + 5)
    x[2, -1] = 1.0  # the only positive value: in the 5-column block after the last whole one
    x[0, -3:] = torch.tensor([0.5, 0.7, 0.6])
    found = by_blocks(x, 4)
    assert found is not None
    assert found[1][2, 0].item() == x.size(1) - 1 and found[1][0, :3].tolist() == [x.size(1) - 2, x.size(1) - 1,
                                                                                    x.size(1) - 3]
    assert torch.equal(found[1], torch.topk(x, 4).indices)


@pytest.mark.parametrize("kind", ["equal best", "equal k-th outside", "equal k-th inside", "-inf", "nan"])
def test_ties_fall_back_to_torch(kind: str) -> None:
    x = _rows(2, 3, 20 * BLOCK)
    k = 4
    if kind == "equal best":  # two equal values among the best: torch's order among them is its own
        x[1, 5] = x[1, 3 * BLOCK + 9] = 2.0
    elif kind == "equal k-th outside":  # the k-th value repeated in a block that is not among the k best
        x[0, :k * BLOCK:BLOCK] = torch.tensor([5.0, 4.0, 3.0, 2.0])
        x[0, 17 * BLOCK + 3] = 2.0
    elif kind == "equal k-th inside":  # the k-th value repeated in a kept block: which one is k-th is torch's call
        x[0, :k * BLOCK:BLOCK] = torch.tensor([5.0, 4.0, 3.0, 2.0])
        x[0, 7] = 2.0
    elif kind == "-inf":  # fewer finite values than k + 1 in a row
        x[2] = float("-inf")
        x[2, 7] = 0.0
    else:
        x[1, 100] = float("nan")
    assert by_blocks(x, k) is None
    expected = torch.topk(x, k)
    got = topk(x, k)
    assert torch.equal(got[1], expected.indices)
    assert torch.allclose(got[0], expected.values, equal_nan=True)


def test_short_rows_go_to_torch(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(topk_module, "by_blocks", lambda x, k: calls.append(x.shape))
    x = _rows(3, 4, topk_module.MIN_COLUMNS - 1)
    assert torch.equal(topk(x, 5)[1], torch.topk(x, 5).indices) and not calls
    topk(_rows(3, 4, topk_module.MIN_COLUMNS), 5)
    assert calls == [(4, topk_module.MIN_COLUMNS)]


def _torch_runs(scores: torch.Tensor, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch.topk over each run's rows side by side (padded with -inf), as flat indices into ``scores``."""
    vocab, width = scores.size(1), int(rows.max())
    grid = torch.full((len(rows) * width, vocab), -math.inf)
    grid.index_copy_(0, run_slots(rows.tolist(), width), scores)
    values, at = torch.topk(grid.view(len(rows), width * vocab), width)
    starts = np.cumsum(rows) - rows
    flat = (starts[:, None] + at.numpy() // vocab) * vocab + at.numpy() % vocab
    kept = np.arange(width) < rows[:, None]
    return np.where(kept, values.numpy(), -np.inf), np.where(kept, flat, 0)


def _scores(seed: int, rows: np.ndarray, vocab: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(int(rows.sum()), vocab, generator=g) * 3).log_softmax(-1)
    return lp + torch.randn(lp.size(0), 1, generator=g) * 4  # each row's path score


@pytest.mark.parametrize(("runs", "beam", "vocab"), [(200, 5, 501), (37, 4, 1000), (3, 6, 5000), (64, 1, 300)])
def test_best_of_runs_gives_torchs_values_and_indices(runs: int, beam: int, vocab: int) -> None:
    rows = np.random.default_rng(runs).integers(1, beam + 1, runs)
    scores = _scores(runs, rows, vocab)
    found = best_of_runs(scores, rows)
    assert found is not None
    expected = _torch_runs(scores, rows)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
    assert found[0].dtype == np.float32


def test_best_of_runs_over_rows_of_mostly_minus_infinity() -> None:
    rows = np.array([3, 1, 2, 2])
    scores = _scores(5, rows, 2000)
    scores[:, 40:] = -math.inf  # a shortlist's rows: a few finite values in a row of -inf
    scores[3, :] = -math.inf  # a row with none: its run's threshold is -inf
    found = best_of_runs(scores, rows)
    assert found is not None
    expected = _torch_runs(scores, rows)
    assert np.array_equal(found[0], expected[0])
    finite = np.isfinite(expected[0])
    assert np.array_equal(found[1][finite], expected[1][finite])  # -inf: torch's order among them is its own


@pytest.mark.parametrize("kind", ["equal among the best", "last kept equals the next", "nan", "small"])
def test_best_of_runs_leaves_ties_nan_and_small_matrices_to_torch(kind: str) -> None:
    rows = np.array([4, 4, 2])
    scores = _scores(7, rows, 1000)
    if kind == "equal among the best":  # the same value in two rows of run 1, both among its best
        scores[4, 10] = scores[6, 20] = 50.0
    elif kind == "last kept equals the next":  # run 2 keeps 2 values; its 2nd and 3rd are equal
        scores[8, :3] = torch.tensor([60.0, 50.0, 50.0])
    elif kind == "nan":
        scores[1, 7] = math.nan
    else:
        scores = scores[:, : topk_module.MIN_RUNS_ELEMENTS // 10 - 1]
    assert best_of_runs(scores, rows) is None


def test_best_of_runs_ignores_equal_values_below_the_best() -> None:
    rows = np.array([2, 3])
    scores = _scores(11, rows, 2000)
    scores[0, 5] = scores[1, 9] = -500.0  # equal, but far below run 0's best two
    found = best_of_runs(scores, rows)
    assert found is not None
    expected = _torch_runs(scores, rows)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
