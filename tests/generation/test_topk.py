"""Beam search's top-k through block maxima is torch.topk's, indices included,
and falls back to it wherever a tie could order the result differently."""

from __future__ import annotations

import pytest
import torch

from modelport.generation import topk as topk_module
from modelport.generation.topk import BLOCK, by_blocks, topk


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
