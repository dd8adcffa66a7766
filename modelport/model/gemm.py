"""The unified model's matrix products with weights (linear layers and the
output projection), fast on the CPU.

On the CPU, float32 inference runs them through oneDNN (bundled with torch)
on a copy of the weight prepacked once into oneDNN's blocked layout,
instead of torch's default sgemm (MKL).
Why: measured on this project's machine (AMD EPYC, 2 threads, beam-search
shapes), MKL's sgemm runs a decoder step's products 1.2-1.5x slower than
oneDNN's, and 3-6x slower at the handful of rows of one sentence's beam; a
transformer-base port decodes 1.4x faster with it. The result differs from
MKL's in the last bits (a different summation order, ~1e-6 relative), as
two sgemm libraries do: parity with a reference framework is token identity
and scores within tolerance, which the parity tests check on this path.

Elsewhere (GPU, half precision, training, tracing for ONNX, weights too small
to gain, or ``MODELPORT_ONEDNN=0`` in the environment) a product is torch's
own ``F.linear``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary

# Weights with fewer elements (2**18 = 512 x 512) run as fast or faster through F.linear at the few rows
# of one sentence's beam or a small batch: oneDNN's fixed cost per call (~15 us) outweighs its gain there
# (384 x 384 at 5 rows: 0.89x on the machine this was first measured on); from 2**18 elements oneDNN is used
# unless the step has fewer than MIN_ROWS rows below 2**20 elements (greedy search of one sentence). Smaller
# weights, with each side at least MIN_SMALL_SIDE, run through oneDNN from MIN_SMALL_ROWS rows (an encoder's
# tokens, a grouped search's step): there its kernels take 0.5-0.85x F.linear's time (64 x 256 to 256 x 256,
# 400-640 rows, 2 threads; scripts/bench_gemm.py), and the embedded model (d_model 128, all of whose layers
# F.linear computed before) translates its 256 test lines in 0.88x (1 thread) and 0.76x (2 threads) the time
# (medians of 8 paired processes, each the best of 5 translations; outputs identical). Not under
# MIN_SMALL_SIDE: at d_model 32 (Marian students) oneDNN's products are faster alone, yet whole translations
# took 1.09-1.16x longer (tiny11_ssru, 1 and 2 threads, paired processes).
MIN_PACKED_ELEMENTS = 2 ** 18
MIN_ROWS_ELEMENTS = 2 ** 20
MIN_ROWS = 4
MIN_SMALL_SIDE = 64
MIN_SMALL_ROWS = 256
# the row count oneDNN is told to expect when it packs (a hint for its blocking only)
_PACK_ROWS_HINT = 64
# Output rows per block of linear_by_row_blocks
OUTPUT_ROW_BLOCK = 4096
MIN_TAIL_ROWS = 256  # a shorter last block joins the one before it (see linear_by_row_blocks)

# weight -> (its version counter, its storage address, the prepacked copy); an entry goes with its weight
_PACKED: WeakIdKeyDictionary = WeakIdKeyDictionary()
_available: bool | None = None


def onednn_enabled() -> bool:
    """Whether CPU float32 products may run through oneDNN here: torch has it,
    its prepacked linear works, and ``MODELPORT_ONEDNN`` is not ``0``."""
    global _available
    if os.environ.get("MODELPORT_ONEDNN", "1") == "0":
        return False
    if _available is None:
        _available = _probe()
    return _available


def _probe() -> bool:
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    try:  # a private operator of torch's: checked on a small product before it is trusted
        w, x = torch.arange(12.0).reshape(3, 4), torch.ones(2, 4)
        with torch.inference_mode():
            packed = torch.ops.mkldnn._reorder_linear_weight(w, 2)
            out = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
        return torch.equal(out, F.linear(x, w))
    except (RuntimeError, NotImplementedError):
        return False


def onednn_applies(x: Tensor, weight: Tensor) -> bool:
    """Whether :func:`linear` computes ``x @ weight.T`` through oneDNN (see the
    module docstring for where it does not)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():  # ONNX export, torch.compile: F.linear
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
        return False
    elements, rows = weight.numel(), x.numel() // max(1, weight.size(1))
    if elements < MIN_PACKED_ELEMENTS:
        if min(weight.shape) < MIN_SMALL_SIDE or rows < MIN_SMALL_ROWS:
            return False
    elif elements < MIN_ROWS_ELEMENTS and rows < MIN_ROWS:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):  # training
        return False
    # an inference tensor has no version counter: it could change unseen after it was packed
    return not weight.is_inference() and onednn_enabled()


def _packed(weight: Tensor) -> Tensor:
    """``weight`` in oneDNN's blocked layout: packed once, again only after it changed."""
    key = (weight._version, weight.data_ptr())
    entry = _PACKED.get(weight)
    if entry is None or entry[0] != key:
        with torch.no_grad():
            entry = (key, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), _PACK_ROWS_HINT))
        _PACKED[weight] = entry
    return entry[1]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, relu: bool = False) -> Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN with ``weight`` prepacked
    (once, then reused while the weight is unchanged) where that is faster
    (see the module docstring), else through :func:`linear_by_row_blocks`.
    ``relu``: ``F.relu`` of it, which oneDNN applies as it writes the product
    (the same values: the maximum with 0 is exact) instead of a second pass."""
    if weight.dim() == 2 and weight.size(0) <= 2 * OUTPUT_ROW_BLOCK and weight.numel() < MIN_PACKED_ELEMENTS \
            and min(weight.shape) < MIN_SMALL_SIDE:
        # neither oneDNN nor row blocks take such a weight (a d_model 32 student's every product): what the
        # checks below would choose, without their cost (~5 us a call, 5% of a tiny11 student's translation)
        out = F.linear(x, weight, bias)
    elif not onednn_applies(x, weight):
        out = linear_by_row_blocks(x, weight, bias)
    else:
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), _packed(weight), bias, "relu" if relu else "none",
                                                  [], "")
    return F.relu(out) if relu else out


def linear_by_row_blocks(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` computed on blocks of ``OUTPUT_ROW_BLOCK``
    rows of ``weight`` (views, no copy) on the CPU: :func:`linear`'s product
    where oneDNN is not used (``MODELPORT_ONEDNN=0``, a shortlist's rows).

    Why: MKL's sgemm runs an output projection of ~32k vocabulary rows against
    the few dozen decoder states of a beam-search step at ~75% of the rate it
    reaches on the decoder's other matrices (measured at transformer-base size,
    2 threads: 90 vs 116 GFLOP/s); blocks of 4096 rows run at the full rate.
    Every output is the same dot product, so the result is bit-identical
    with one thread (checked by tests/model/test_gemm.py: 1,260 shapes of 2 to
    7 blocks, 1 to 80 input rows). With more, MKL splits the work among its
    threads by the row count, so a few shapes differ in the last bit (2
    threads, AVX-512: 4 of those 1,260, all at d 64). Elsewhere (GPU, small
    vocabularies, one input row) it is one ``F.linear``."""
    # tracing (ONNX export) first: one MatMul, and no traced size turned into a Python bool
    if torch.jit.is_tracing() or x.device.type != "cpu" or weight.size(0) <= 2 * OUTPUT_ROW_BLOCK \
            or x.numel() == x.size(-1):
        # one input row is a matrix-vector product, bandwidth-bound: blocks gain nothing, and MKL's kernels for
        # them rounded differently from the whole product with 2 threads (AVX-512)
        return F.linear(x, weight, bias)
    rows = weight.size(0)
    starts = list(range(0, rows, OUTPUT_ROW_BLOCK))
    if rows - starts[-1] < MIN_TAIL_ROWS:
        starts.pop()  # the last block takes a short remainder: a block of a few rows also rounded differently
    ends = starts[1:] + [rows]
    blocks = [F.linear(x, weight[i:j], None if bias is None else bias[i:j]) for i, j in zip(starts, ends)]
    return torch.cat(blocks, dim=-1)


class Linear(nn.Linear):
    """``nn.Linear`` whose product is :func:`linear`: the same parameters and
    state-dict names, hooks fire as on any module, and int8 loading treats it
    as an ``nn.Linear`` (see :func:`modelport.model.quantized.apply_on_load`)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


__all__ = ["Linear", "MIN_PACKED_ELEMENTS", "MIN_SMALL_ROWS", "MIN_SMALL_SIDE", "OUTPUT_ROW_BLOCK", "linear",
           "linear_by_row_blocks", "onednn_applies", "onednn_enabled"]
