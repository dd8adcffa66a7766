"""The output projection by blocks of vocabulary rows (a CPU speed-up of MKL's
sgemm) gives exactly the logits of one ``F.linear``: every logit is the same
dot product."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modelport.model.transformer import OUTPUT_ROW_BLOCK, linear_by_row_blocks


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("shape", "rows", "bias"), [
    ((80, 512), 32000, False), ((7, 3, 256), 5 * OUTPUT_ROW_BLOCK + 17, True), ((1, 64), 2 * OUTPUT_ROW_BLOCK + 1, True),
    ((5, 64), 1000, True),  # below the threshold: one F.linear
])
def test_row_blocks_are_bit_identical(threads: int, shape: tuple[int, ...], rows: int, bias: bool) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(rows)
        x = torch.randn(*shape, generator=g)
        w = torch.randn(rows, shape[-1], generator=g) * 0.05
        b = torch.randn(rows, generator=g) if bias else None
        assert torch.equal(linear_by_row_blocks(x, w, b), F.linear(x, w, b))
    finally:
        torch.set_num_threads(before)
