"""The finite-weights check reads big tensors in blocks (peak memory) with the same verdicts."""

from __future__ import annotations

import pytest
import torch

from modelport.converters import base


@pytest.mark.parametrize("where", [(0, 0), (37, 5), (99, 7)])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_block_check_finds_every_bad_value(monkeypatch, where: tuple[int, int], value: float) -> None:
    monkeypatch.setattr(base, "_FINITE_CHUNK", 64)  # 100 x 8 is read in blocks of 8 rows
    t = torch.randn(100, 8)
    assert base.all_finite(t) and base.all_finite(t.t()) and base.all_finite(t.reshape(-1))
    t[where] = value
    for view in (t, t.t(), t.reshape(-1), t[:, 3:]):
        assert base.all_finite(view) == bool(torch.isfinite(view).all())
    assert base.nonfinite_tensors([("ok", torch.ones(100, 8)), ("bad", t)]) == ["bad"]
