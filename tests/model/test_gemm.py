"""The CPU products of modelport.model.gemm: the output projection by blocks of
vocabulary rows (bit-identical to one ``F.linear`` on these shapes; a short last
block, or one input row, took other MKL kernels and rounded differently with 2
threads on an AVX-512 machine), and the prepacked oneDNN
path (torch's product up to rounding, packed once and again after a weight
changes, never used where it must not be)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelport.model import gemm
from modelport.model.gemm import OUTPUT_ROW_BLOCK, Linear, linear, linear_by_row_blocks

needs_onednn = pytest.mark.skipif(not gemm.onednn_enabled(), reason="torch here has no oneDNN prepacked linear")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("shape", "rows", "bias"), [
    ((80, 512), 32000, False), ((7, 3, 256), 5 * OUTPUT_ROW_BLOCK + 17, True), ((1, 64), 2 * OUTPUT_ROW_BLOCK + 1, True),
    ((5, 64), 1000, True),  # below the threshold: one F.linear
    ((30, 512), 2 * OUTPUT_ROW_BLOCK + 1, True), ((5, 512), 2 * OUTPUT_ROW_BLOCK + 741, False),  # short last blocks
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


def _close(ours: torch.Tensor, ref: torch.Tensor) -> bool:
    return ours.shape == ref.shape and bool(((ours - ref).abs().max() <= 1e-5 * ref.abs().max()).item())


@needs_onednn
@pytest.mark.parametrize(("shape", "fan_in", "fan_out", "bias"), [
    ((80, 512), 512, 2048, True), ((4, 5, 1024), 1024, 1024, False), ((5, 256), 256, 32000, False),
    ((1, 1024), 1024, 1024, True),  # one row: 2**20 weights pay even then
    ((400, 128), 128, 512, True),  # the embedded model's FFN at an encoder batch's rows
])
def test_onednn_product_is_torchs_up_to_rounding(shape, fan_in, fan_out, bias) -> None:
    g = torch.Generator().manual_seed(fan_out)
    x = torch.randn(*shape, generator=g)
    w = torch.randn(fan_out, fan_in, generator=g) / fan_in ** 0.5
    b = torch.randn(fan_out, generator=g) if bias else None
    with torch.inference_mode():
        assert gemm.onednn_applies(x, w)
        ours = linear(x, w, b)
    assert _close(ours, F.linear(x, w, b)) and w in gemm._PACKED  # it ran on the packed copy
    xt = torch.randn(shape[-1], *shape[:-1], generator=g).movedim(0, -1)  # not contiguous
    with torch.inference_mode():
        assert _close(linear(xt, w, b), F.linear(xt, w, b))


@needs_onednn
def test_a_changed_weight_is_packed_again() -> None:
    layer = Linear(512, 1024).eval()
    x = torch.randn(20, 512)
    with torch.inference_mode():
        before = layer(x)
    with torch.no_grad():
        layer.weight.mul_(-2.0)  # in place: same tensor, new version
    with torch.inference_mode():
        after = layer(x)
    assert _close(after, F.linear(x, layer.weight, layer.bias)) and not _close(after, before)
    with torch.no_grad():
        layer.weight.data = torch.randn(1024, 512)  # new storage under the same parameter
    with torch.inference_mode():
        assert _close(layer(x), F.linear(x, layer.weight, layer.bias))


@pytest.mark.parametrize("case", ["small", "few_rows", "narrow", "grad", "tracing", "float64", "disabled"])
def test_torchs_own_product_where_onednn_must_not_run(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fan_in, fan_out, rows = {"small": (128, 128, 80), "few_rows": (512, 512, 2),
                             "narrow": (32, 501, 1000)}.get(case, (512, 512, 40))  # narrow: a d_model 32 student
    dtype = torch.float64 if case == "float64" else torch.float32
    layer = Linear(fan_in, fan_out).to(dtype)
    x = torch.randn(rows, fan_in, dtype=dtype)
    if case == "disabled":
        monkeypatch.setenv("MODELPORT_ONEDNN", "0")
    if case == "grad":
        out = layer(x)
        out.sum().backward()
        assert layer.weight.grad is not None
    elif case == "tracing":
        traced = torch.jit.trace(layer.eval(), (x,))
        assert "mkldnn" not in str(traced.inlined_graph)
        out = traced(x)
    else:
        with torch.inference_mode():
            assert not gemm.onednn_applies(x, layer.weight)
            out = layer(x)
    assert torch.equal(out.detach(), F.linear(x, layer.weight, layer.bias).detach())


def test_linear_is_an_nn_linear_with_its_names_and_hooks() -> None:
    layer = Linear(512, 1024)
    assert isinstance(layer, nn.Linear) and list(layer.state_dict()) == list(nn.Linear(512, 1024).state_dict())
    seen = []
    layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    with torch.inference_mode():
        layer(torch.randn(8, 512))
    assert seen == [torch.Size([8, 1024])]  # validate's divergence localisation hooks every layer


@pytest.mark.parametrize(("dim", "hidden", "rows"), [(128, 512, 1000), (512, 2048, 80), (32, 128, 64)])
def test_relu_in_the_product_is_the_separate_relu(dim: int, hidden: int, rows: int) -> None:
    """A ReLU FFN's first product applies the ReLU as it writes (oneDNN's output stage where it runs, torch's
    ReLU elsewhere: d 32): the same bits as the product and a separate ReLU pass."""
    from modelport.model.layers import FeedForward

    torch.manual_seed(0)
    ffn = FeedForward(dim, hidden, "relu", gated=False, bias=True)
    x = torch.randn(rows, 1, dim)
    with torch.inference_mode():
        fused = ffn(x)
        separate = ffn.down(F.relu(ffn.up(x)))
        assert torch.equal(linear(x, ffn.up.weight, ffn.up.bias, relu=True), F.relu(ffn.up(x)))
    assert torch.equal(fused, separate)


def test_a_hooked_ffn_layer_shows_its_product_before_the_relu() -> None:
    """validate's localisation hooks every module and compares ``up``'s output with the original's fc1
    (before its activation): with a hook there, the product is not fused with the ReLU."""
    from modelport.model.layers import FeedForward

    torch.manual_seed(0)
    ffn = FeedForward(128, 512, "relu", gated=False, bias=True)
    seen = []
    ffn.up.register_forward_hook(lambda _m, _i, out: seen.append(out.clone()))
    x = torch.randn(1000, 1, 128)
    with torch.inference_mode():
        out = ffn(x)
        assert len(seen) == 1 and torch.equal(seen[0], linear(x, ffn.up.weight, ffn.up.bias))
        assert bool((seen[0] < 0).any())  # the hook saw the values before the ReLU
        assert torch.equal(out, ffn.down(F.relu(seen[0])))
