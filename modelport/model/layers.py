"""Building blocks of the unified model: attention with a KV cache,
feed-forward, Marian's SSRU recurrence, norms and position encodings.

Compatibility numerics (a sinusoidal table's layout and offset, T5's query
scale of 1.0, Marian's sigmoid GELU) are explicit parameters of these shared
modules, never forks of them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as torch_module

from modelport.model.gemm import Linear, linear

# --------------------------------------------------------------------------
# norms


class RMSNorm(nn.Module):
    """T5-style RMS norm: no mean subtraction, no bias, variance in fp32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # normalise in fp32 and round once, as T5 does (x * rsqrt in fp16
        # would round twice and differ from the reference in half precision)
        variance = x.float().pow(2).mean(-1, keepdim=True)
        x = (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype)
        return self.weight * x


def clamp_fp16(x: Tensor) -> Tensor:
    """transformers' T5 fp16 guard: clamp to the fp16 range, 1000 below it if
    any value already overflowed, so later sums stay finite. Identity for
    other dtypes."""
    if x.dtype != torch.float16:
        return x
    top = torch.finfo(torch.float16).max
    limit = torch.where(torch.isinf(x).any(), top - 1000, top)
    return torch.clamp(x, min=-limit, max=limit)


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps)
    raise ValueError(f"`{kind}` is not a known norm (known: layernorm, rmsnorm)")


# --------------------------------------------------------------------------
# activations


def _gelu_sigmoid(x: Tensor) -> Tensor:
    # Marian's "gelu" is the sigmoid approximation x * sigmoid(1.702 x).
    return x * torch.sigmoid(1.702 * x)


def activation_fn(name: str):
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    if name == "gelu_tanh":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "gelu_sigmoid":
        return _gelu_sigmoid
    if name == "silu":
        return F.silu
    raise ValueError(f"`{name}` is not a known activation (known: relu, gelu, gelu_tanh, gelu_sigmoid, silu)")


def _watched(module: nn.Module) -> bool:
    """Whether a hook sees ``module``'s output (the validators' divergence localisation compares each
    module's output with the original's), so that its call must not be fused with the next operation."""
    # torch has no public query for hooks; these are the dicts Module.__call__ itself reads
    return bool(module._forward_hooks or module._forward_pre_hooks or torch_module._global_forward_hooks
                or torch_module._global_forward_pre_hooks)


class FeedForward(nn.Module):
    """Position-wise FFN: ``down(act(up(x)))`` or, gated, ``down(act(gate(x)) * up(x))``.

    ``depth`` > 2 (Marian's ``transformer-ffn-depth``) inserts ``depth - 2``
    hidden-to-hidden layers ``inner.{i}``, each followed by the activation.
    """

    def __init__(self, dim: int, hidden: int, activation: str, gated: bool, bias: bool, depth: int = 2) -> None:
        super().__init__()
        self.up = Linear(dim, hidden, bias=bias)
        self.gate = Linear(dim, hidden, bias=bias) if gated else None
        # empty for depth 2, so the state dict of two-layer FFNs is unchanged
        self.inner = nn.ModuleList(Linear(hidden, hidden, bias=bias) for _ in range(depth - 2))
        self.down = Linear(hidden, dim, bias=bias)
        self.act = activation_fn(activation)
        # whether ``up`` applies the activation itself (an int8 layer with ReLU in its output stage, see
        # modelport.model.quantized); only for the ungated form
        self.up_activates = False

    def forward(self, x: Tensor) -> Tensor:
        if self.gate is not None:
            h = self.act(self.gate(x)) * self.up(x)
        elif self.up_activates:
            h = self.up(x)
        elif self.act is F.relu and type(self.up) is Linear and not _watched(self.up):
            # the ReLU in the product's output stage (gemm.linear): the FFN's widest activation is written
            # once, not written and read again (the embedded model's encoder: 2 ms a layer for 200 lines)
            h = linear(x, self.up.weight, self.up.bias, relu=True)
        else:
            h = self.act(self.up(x))
        for layer in self.inner:
            h = self.act(layer(h))
        return self.down(h)


# --------------------------------------------------------------------------
# recurrence


class SSRU(nn.Module):
    """Marian's SSRU cell (``class SSRU`` in marian-dev ``src/rnn/cells.h``),
    without its layer-normalisation variant::

        f_t = sigmoid(x_t Wf + bf)
        c_t = f_t * c_{t-1} + (1 - f_t) * (x_t W)    # highway(c, xW, f)
        h_t = relu(c_t)

    ``highway(y, x, t) = sigmoid(t) * y + (1 - sigmoid(t)) * x`` is
    ``HighwayForward`` in ``src/tensors/cpu/tensor_operators.cpp``. The
    state starts at zeros (``DecoderTransformer::startState`` in
    ``src/models/transformer.h``). ``in_proj`` is Marian's ``W`` (no bias),
    ``forget_proj`` its ``Wf``/``bf``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.in_proj = Linear(dim, dim, bias=False)
        self.forget_proj = Linear(dim, dim, bias=True)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``[B, T, D]`` and the cell state before it (``[B, D]``, None =
        zeros) → outputs ``relu(c_t)`` ``[B, T, D]`` and the last cell state."""
        xw = self.in_proj(x)
        f = torch.sigmoid(self.forget_proj(x))
        c = torch.zeros_like(xw[:, 0]) if state is None else state.to(xw.dtype)
        if x.size(1) == 1:  # a decoding step: no list and stack (the step of a tiny student is all overhead)
            c = f[:, 0] * c + (1 - f[:, 0]) * xw[:, 0]
            return F.relu(c).unsqueeze(1), c
        cells = []
        for t in range(x.size(1)):  # the recurrence runs over time
            c = f[:, t] * c + (1 - f[:, t]) * xw[:, t]
            cells.append(c)
        return F.relu(torch.stack(cells, dim=1)), c


# --------------------------------------------------------------------------
# positions


def sinusoidal_table(num: int, dim: int, *, layout: str = "sin_cos", denominator_minus_one: bool = True,
                     zero_row: int | None = None) -> Tensor:
    """A sinusoidal position table computed with the same float32 operations as
    fairseq/tensor2tensor, so rows are bit-identical to theirs.

    ``layout="sin_cos"`` puts all sines first then all cosines (fairseq,
    tensor2tensor, Marian); ``"interleaved"`` alternates them (the paper).
    ``zero_row`` is set to zeros (fairseq zeroes its padding row).
    """
    half = dim // 2
    denom = (half - 1) if denominator_minus_one else half
    step = math.log(10000) / denom
    freqs = torch.exp(torch.arange(half, dtype=torch.float) * -step)
    angles = torch.arange(num, dtype=torch.float).unsqueeze(1) * freqs.unsqueeze(0)
    if layout == "sin_cos":
        table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).view(num, -1)
    else:
        table = torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).view(num, -1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num, 1)], dim=1)
    if zero_row is not None:
        table[zero_row, :] = 0
    return table


def make_positions(mask: Tensor, offset: int, pad_index: int, start: int = 0) -> Tensor:
    """Position ids for a ``[B, T]`` mask of real tokens (True = real).

    Real tokens count from ``offset + start`` in order, padding gets
    ``pad_index`` (fairseq's ``utils.make_positions`` when ``offset`` is
    ``padding_idx + 1``). ``start`` is the number of real tokens before this
    chunk, for incremental decoding.
    """
    if mask.size(1) == 1:  # a decoding step: the same values in one op instead of six
        return torch.where(mask, offset + start, pad_index)
    m = mask.long()
    return (torch.cumsum(m, dim=1) - 1 + offset + start) * m + pad_index * (1 - m)


def relative_position_bucket(relative_position: Tensor, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> Tensor:
    """T5's log-bucketed relative positions (keys minus queries)."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        relative_position = relative_position.abs()
    else:
        relative_position = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (
        torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, relative_position, large)


class RelativePositionBias(nn.Module):
    """Per-head bias added to attention scores (T5); computed once per stack."""

    def __init__(self, num_buckets: int, max_distance: int, heads: int, bidirectional: bool) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embedding = nn.Embedding(num_buckets, heads)

    def forward(self, q_len: int, k_len: int, q_start: int = 0) -> Tensor:
        device = self.embedding.weight.device
        q_pos = torch.arange(q_start, q_start + q_len, dtype=torch.long, device=device)[:, None]
        k_pos = torch.arange(k_len, dtype=torch.long, device=device)[None, :]
        buckets = relative_position_bucket(k_pos - q_pos, self.bidirectional, self.num_buckets, self.max_distance)
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)  # [1, H, q, k]


# --------------------------------------------------------------------------
# attention


@dataclass
class KeyRuns:
    """Batch rows in consecutive runs of unequal lengths, each run sharing one
    row of cross-attention keys (a Marian beam: it shrinks as its hypotheses
    finish). A decoding step attends over a grid of ``key rows x width`` query
    slots, each run padded with copies of its first row.

    ``grid``: the batch row in each slot; ``slots``: each batch row's slot;
    ``rows``: each batch row's key row (its run)."""

    grid: Tensor
    slots: Tensor
    width: int
    rows: Tensor

    @classmethod
    def of(cls, lengths: Sequence[int], device: torch.device) -> KeyRuns:
        n = np.asarray(lengths)
        width = int(n.max())
        starts = np.cumsum(n) - n
        j = np.arange(width)
        grid = np.where(j < n[:, None], starts[:, None] + j, starts[:, None]).ravel()
        run = np.repeat(np.arange(len(n)), n)
        return cls(torch.from_numpy(grid).to(device), run_slots(lengths, width).to(device), width,
                   torch.from_numpy(run).to(device))


def run_slots(lengths: Sequence[int], width: int) -> Tensor:
    """Each row's slot in a grid of ``len(lengths)`` rows of ``width`` slots, where
    run ``i``'s ``lengths[i]`` consecutive rows fill grid row ``i`` from its start
    (on the CPU; built in numpy: a decoding step's bookkeeping, a few microseconds)."""
    n = np.asarray(lengths)
    starts = np.cumsum(n) - n
    run_start = np.repeat(np.arange(len(n)) * width - starts, n)  # slot of a run's first row, less its batch row
    return torch.from_numpy(run_start + np.arange(int(n.sum())))


@dataclass
class LayerCache:
    """Keys/values of one decoder layer.

    ``self_k``/``self_v`` grow by one step per decoding step; ``cross_k``/
    ``cross_v`` are computed once from the encoder output. A decoder with the
    SSRU block instead keeps ``ssru_state``, the cell state ``c_t`` ``[B, D]``
    after the last consumed token (one per hypothesis, reordered with the beam).
    ``cross_weights`` holds the cross-attention probabilities ``[B, H, T, S]`` of
    the last call when the decoder was asked to keep them (Marian's word
    alignments); it is replaced at every step, so it is never reordered.
    ``past_apart`` (the ONNX export's ``decoder_with_past.onnx`` only): the step
    attends to the cached positions and to its own key/value apart
    (:func:`past_and_new`) and leaves only its own in ``self_k``/``self_v``, so
    the graph copies no cache; its runtime appends them (:func:`appended`).
    """

    self_k: Tensor | None = None
    self_v: Tensor | None = None
    # the rows of self_k/self_v that the next step reads: a reorder applied when the next step appends to them
    self_index: Tensor | None = None
    cross_k: Tensor | None = None
    cross_v: Tensor | None = None
    ssru_state: Tensor | None = None
    cross_weights: Tensor | None = None
    cross_runs: KeyRuns | None = None
    past_apart: bool = False

    def reorder(self, index: Tensor, cross: bool = True, cross_index: Tensor | None = None,
                runs: KeyRuns | None = None) -> None:
        """Select batch rows by ``index``; with ``cross`` the cross-attention keys
        too, by ``cross_index`` where given (rows of keys shared by runs of batch
        rows, see :func:`attend`: runs of unequal lengths described by ``runs``),
        else by ``index``. Without ``cross`` every row keeps its key row."""
        if cross:
            self.cross_runs = runs
        if self.ssru_state is not None:
            self.ssru_state = self.ssru_state.index_select(0, index)
        if self.self_k is not None:  # applied by extend_self, in the same copy as the append
            self.self_index = index if self.self_index is None else self.self_index.index_select(0, index)
        if cross and self.cross_k is not None:
            rows = index if cross_index is None else cross_index
            self.cross_k = self.cross_k.index_select(0, rows)
            self.cross_v = self.cross_v.index_select(0, rows)

    def extend_self(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """The self-attention keys/values of every position so far: the cache's
        (reordered by the reorders since the last step) followed by this step's
        ``k``/``v``, kept as the new cache. Why not ``index_select`` at the reorder
        and ``cat`` here: the two copy the whole cache twice a step, while
        ``index_select`` straight into the new cache copies it once (at
        transformer-base shapes, 80 rows x 20 positions: 61 vs 100 us)."""
        if self.self_k is None or self.self_v is None:
            self.self_k, self.self_v = k, v
        else:
            self.self_k = appended(self.self_k, k, self.self_index)
            self.self_v = appended(self.self_v, v, self.self_index)
        self.self_index = None
        return self.self_k, self.self_v


def appended(cache: Tensor, new: Tensor, index: Tensor | None = None) -> Tensor:
    """``cat([cache.index_select(0, index), new], dim=2)`` with one copy of the cache."""
    if index is None:
        return torch.cat([cache, new], dim=2)
    if torch.jit.is_tracing():
        return torch.cat([cache.index_select(0, index), new], dim=2)
    t = cache.size(2)
    out = cache.new_empty(index.numel(), cache.size(1), t + new.size(2), cache.size(3))
    torch.index_select(cache, 0, index, out=out[:, :, :t])
    out[:, :, t:] = new
    return out


def _per_row(runs: KeyRuns, mask: Tensor | None, *keys: Tensor) -> tuple[Tensor | None, ...]:
    """A per-row ``mask`` and ``keys`` (keys, or keys and values) of runs' key rows, one row per batch row."""
    rows = runs.rows
    if mask is not None and mask.size(0) > 1:
        mask = mask.index_select(0, rows)
    return (mask, *(t.index_select(0, rows) for t in keys))


def _ungrouped(q: Tensor, k: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``k`` (and a per-row ``mask``) repeated to one row per query row, where runs of query rows share a key row."""
    group = q.size(0) // k.size(0)
    if group == 1:
        return k, mask
    if mask is not None and mask.size(0) > 1:
        mask = mask.repeat_interleave(group, dim=0)
    return k.repeat_interleave(group, dim=0), mask


# A float32 decoding step on the CPU whose attention reads at least this many key elements (query rows x keys x
# heads * head size) runs as two matrix products and a softmax: torch's fused kernel (scaled_dot_product_attention)
# takes 2-3x longer for one query per row over a few dozen keys at d_model 512-1024 (beam 5 x 16 sentences), while
# below this size the fused kernel's one call beats the products' several (the Marian-trained tiny11 student, d_model
# 32, 64 lines x beam 4, decoded 10% slower with the products at every step; measured in place, 1 thread).
MATMUL_ATTENTION_MIN = 1 << 19


# Beam search keeps one row of cross-attention keys per sentence (grouped products, see attend) from this many key
# elements read per step on: in place, 1 and 2 threads, d_model 32-512, beam 5, grouped products took 0.2-0.85x the
# fused kernel's time from 2**17 elements on (8+ sentences), and up to 2x longer below 2**16 (a sentence or two).
SHARED_KEYS_MIN = 1 << 17

# An attention of several queries per row (an encoder layer's) whose score matrix holds between these many elements
# runs as two batched products and a softmax (_whole_products): torch's fused kernel splits its work into blocks
# sized for long sequences, and at the lengths of translated sentences it took 1.2-2.5x the products' time (head
# sizes 8-64, 16-64 rows of 8-80 tokens, 2 threads; at 1 thread 1.0-1.6x, except 0.8-0.95x at 8 tokens and
# below, hence the lower bound). In place, 200 test lines, alternating: the embedded model translates in
# 0.86-0.99x the time at 2 threads and 0.92-1.02x at 1; the tiny11 student 0.88-1.02x (its encoder is a small
# part). Above the upper bound (a 4 MiB score matrix) the fused kernel, which never holds the whole matrix, is kept.
WHOLE_PRODUCTS_MIN = 1 << 14
WHOLE_PRODUCTS_MAX = 1 << 20


def _products_apply(like: Tensor) -> bool:
    return like.device.type == "cpu" and like.dtype == torch.float32 and not torch.jit.is_tracing()


# torch's CPU softmax takes a slow path over rows shorter than one vector register of its kernels (16 floats with
# AVX-512, 8 with AVX2): 150,000 values in rows of 2-15 took 1.3-1.9 ms at 2 threads, in rows of 16-64 0.07-0.21 ms
# (AVX-512). Attention meets such rows at a decoder's first steps, over short sources and in short sentences'
# encoders; there softmax_rows computes the same formula in four whole-tensor operations, 0.27-0.43x the time.
_SHORT_ROWS = {"AVX512": 16, "AVX2": 8}


@functools.cache
def short_softmax_rows() -> int:
    """Rows shorter than this go through :func:`softmax_rows`' own formula (0: none, on
    CPUs whose kernels torch does not vectorise that way)."""
    return _SHORT_ROWS.get(torch.backends.cpu.get_cpu_capability(), 0)


def softmax_rows(x: Tensor) -> Tensor:
    """``torch.softmax(x, dim=-1)`` of attention scores; on the CPU in float32 and
    without autograd, rows shorter than :func:`short_softmax_rows` as ``exp(x - max)
    / sum`` in whole-tensor operations (the same formula: equal to torch's within a
    few units in the last place, its exp and sums vectorised another way)."""
    if x.size(-1) < short_softmax_rows() and _products_apply(x) and not x.requires_grad:  # in place: not in training
        e = (x - x.amax(-1, keepdim=True)).exp_()
        return e.div_(e.sum(-1, keepdim=True))
    return torch.softmax(x, dim=-1)


def past_and_new(q: Tensor, past_k: Tensor, past_v: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                 scale: float) -> Tensor:
    """:func:`attend` for one position's queries ``[N, H, 1, Dh]`` over the keys/values
    ``cat([past_k, k], 2)`` (and ``v``s), ``k``/``v`` that position's own, without
    joining them: the scores of both parts are joined instead (a few per query), the
    output is the sum of the two parts' weighted values. For a traced decoding step
    (``LayerCache.past_apart``): onnxruntime would otherwise copy the whole cache
    into a new tensor at every step, and the runtime copies it once anyway, to
    apply the search's reorder. The new key's score and value are element-wise
    products: as batched products of 1 x Dh x 1 they took onnxruntime longer than
    the copy saved (the embedded model, 1,000 rows)."""
    past = past_k.size(2)
    q = q * scale
    scores = torch.cat([torch.matmul(q, past_k.transpose(-1, -2)), (q * k).sum(-1, keepdim=True)], dim=-1)
    if mask is not None:  # over all past + 1 keys
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs[..., :past], past_v) + probs[..., past:] * v


def matmul_attention(rows: int, keys: int, width: int, like: Tensor) -> bool:
    """Whether a decoding step of ``rows`` queries over ``keys`` keys of ``width``
    (heads x head size) elements, in ``like``'s device and dtype, attends as matrix
    products (:func:`attend`) with one row of keys per query row."""
    return _products_apply(like) and rows * keys * width >= MATMUL_ATTENTION_MIN


def shared_keys(rows: int, keys: int, width: int, like: Tensor) -> bool:
    """Whether beam search keeps one row of cross-attention keys per sentence for
    a decoding step of ``rows`` queries over ``keys`` keys of ``width`` elements
    (:meth:`modelport.generation.ensemble.Ensemble.reorder`), so that :func:`attend`
    runs grouped products, each sentence's keys read once for its whole beam."""
    return _products_apply(like) and rows * keys * width >= min(SHARED_KEYS_MIN, MATMUL_ATTENTION_MIN)


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float, runs: KeyRuns | None = None,
           shared: bool = False) -> Tensor:
    """``softmax(q k^T scale + mask) v`` for queries ``[N, H, T, Dh]`` and keys/values ``[N / g, H, S, Dh]``.

    ``g > 1``: each run of ``g`` consecutive query rows shares one row of keys and
    values (and of a per-row ``mask``): the cross-attention keys of one
    sentence's beam, kept once instead of ``g`` times. A decoding step (``T == 1``)
    then attends with ``g`` queries per key row, reading each key once, as matrix
    products; so does an ungrouped step where :func:`matmul_attention` says so.
    Several queries per row with a padding mask or none run as whole products
    where :func:`whole_products` says so (an encoder's sentences). Everything
    else runs torch's fused kernel (ONNX export always, one key row per query
    row). ``runs``: runs of query rows of unequal lengths share the key
    rows (:class:`KeyRuns`); a decoding step attends over their grid. ``shared``: the keys may be
    shared so (cross-attention); traced for ONNX, ``g`` is then read from the shapes at run time
    (:func:`_traced_shared`)."""
    if shared and torch.jit.is_tracing():
        return _traced_shared(q, k, v, mask, scale)
    if runs is not None:
        if q.size(2) == 1 and not torch.jit.is_tracing():
            out = _products(q.index_select(0, runs.grid), k, v, mask, scale)
            return out.index_select(0, runs.slots).transpose(1, 2)
        mask, k, v = _per_row(runs, mask, k, v)
    n, heads, t, dh = q.shape
    group = n // k.size(0)
    if group > 1 and (t > 1 or torch.jit.is_tracing()):
        k, mask = _ungrouped(q, k, mask)
        v = v.repeat_interleave(group, dim=0)
        group = 1
    if t == 1 and (group > 1 or matmul_attention(n, k.size(2), heads * dh, q)):
        return _products(q, k, v, mask, scale).transpose(1, 2)
    if t > 1 and group == 1 and whole_products(n * heads * t * k.size(2), mask, q):
        return _whole_products(q, k, v, mask, scale)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def whole_products(scores: int, mask: Tensor | None, like: Tensor) -> bool:
    """Whether an attention of several queries per row (an encoder's, a decoder's
    first step over a prefix) whose score matrix holds ``scores`` elements runs as
    :func:`_whole_products`: float32 on the CPU, a padding mask or none, and
    ``WHOLE_PRODUCTS_MIN <= scores <= WHOLE_PRODUCTS_MAX``."""
    if not _products_apply(like) or not WHOLE_PRODUCTS_MIN <= scores <= WHOLE_PRODUCTS_MAX:
        return False
    return mask is None or (mask.dtype == torch.bool and mask.dim() == 4 and mask.shape[1:3] == (1, 1))


def _whole_products(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """``softmax(q k^T scale + mask) v`` for queries ``[N, H, T, Dh]`` over keys of
    the same rows, as two batched products and a softmax (the queries scaled
    first, as in :func:`_products`); ``mask`` a boolean padding mask ``[N or 1, 1,
    1, S]`` (True = attend), added as 0 / -inf in place."""
    n, heads, t, dh = q.shape
    keys = k.size(2)
    scores = torch.bmm((q * scale).reshape(n * heads, t, dh), k.reshape(n * heads, keys, dh).transpose(1, 2))
    if mask is not None:
        scores.view(n, heads, t, keys).add_(_additive(mask, q.dtype))
    return torch.bmm(softmax_rows(scores), v.reshape(n * heads, keys, dh)).view(n, heads, t, dh)


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean mask (True = attend) as the 0 / -inf scores it adds, in ``dtype``."""
    return torch.where(mask, 0.0, float("-inf")).to(dtype)


def _traced_shared(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """:func:`attend` as traced for an ONNX graph whose runs of ``g`` query rows share one row of
    keys, values and mask, ``g`` = query rows / key rows taken from the shapes when the graph runs
    (1: a row of keys per query row, the layout of Optimum's exports). The runtime keeps one row per
    sentence's beam (:class:`~modelport.runtimes.onnx.OnnxSeq2Seq`): each key is read once per step
    for the whole beam, and a finished sentence's one row is dropped, not ``g`` copies of it."""
    n, heads, t, dh = q.shape
    rows = k.size(0)
    # [rows, H, g x T, Dh]: each key row's queries side by side, per head
    qg = (q * scale).reshape(rows, -1, heads, t, dh).transpose(1, 2).reshape(rows, heads, -1, dh)
    scores = torch.matmul(qg, k.transpose(-1, -2))
    if mask is not None:  # [rows or 1, 1, 1, S]: one row per key row
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    out = torch.matmul(torch.softmax(scores, dim=-1), v)
    return out.reshape(rows, heads, -1, t, dh).transpose(1, 2).reshape(n, heads, t, dh)


def _products(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """:func:`attend`'s decoding step as batched matrix products, one per key
    row and head over its run of ``g`` queries; returned ``[N, 1, H, Dh]``, the
    layout the output projection reads (one copy instead of two).

    The queries are scaled before the product, as fairseq and transformers do
    (Marian scales the product instead: a difference in the last bits, which the
    parity tests against pymarian cover). A boolean padding mask ``[N / g or 1, 1, 1, S]`` (the
    cross-attention's) enters as an additive one (0 or -inf) through ``baddbmm``,
    which adds it in the product's own pass; other masks are applied after it."""
    n, heads, _, dh = q.shape
    rows, keys = k.size(0), k.size(2)
    group = n // rows
    # [rows x H, g, Dh]: each key row's run of queries side by side, per head
    qb = (q * scale).view(rows, group, heads, dh).transpose(1, 2).reshape(rows * heads, group, dh)
    kt = k.reshape(rows * heads, keys, dh).transpose(1, 2)  # views where the cache is contiguous
    vb = v.reshape(rows * heads, keys, dh)
    if mask is not None and mask.dtype == torch.bool and mask.shape[1:] == (1, 1, keys):
        additive = _additive(mask, q.dtype).expand(rows, heads, 1, keys)
        scores = torch.baddbmm(additive.reshape(rows * heads, 1, keys), qb, kt)
    else:
        scores = torch.bmm(qb, kt)
        if mask is not None:
            grid = scores.view(rows, heads, group, keys)
            if mask.dtype == torch.bool:
                grid.masked_fill_(~mask, float("-inf"))
            else:
                grid.add_(mask)
    out = torch.bmm(softmax_rows(scores), vb)  # [rows x H, g, Dh]
    return out.view(rows, heads, group, dh).transpose(1, 2).reshape(n, 1, heads, dh)


class Attention(nn.Module):
    """Multi-head attention over ``torch.nn.functional.scaled_dot_product_attention``.

    ``scale`` is the query scale (``head_dim ** -0.5`` by default, 1.0 for T5).
    ``heads`` may differ per layer (pruned heads are removed physically).
    ``head_gate`` is None except while head importance is measured
    (:func:`modelport.passes.prune.head_gates`): then one scalar per head
    multiplies that head's output before ``out_proj``.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, bias: bool, scale: float | None) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        inner = heads * head_dim
        self.q_proj = Linear(dim, inner, bias=bias)
        self.k_proj = Linear(dim, inner, bias=bias)
        self.v_proj = Linear(dim, inner, bias=bias)
        self.out_proj = Linear(inner, dim, bias=bias)
        self.scale = head_dim ** -0.5 if scale is None else scale
        self.head_gate: Tensor | None = None  # a plain attribute: never in the state dict

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._split(self.k_proj(x)), self._split(self.v_proj(x))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, runs: KeyRuns | None = None,
                shared: bool = False, past: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``x``: queries ``[B, T, D]``; ``k``/``v``: ``[B, H, S, Dh]`` (or fewer
        rows shared by runs of query rows, see :func:`attend`, ``shared`` where they
        may be); ``mask``: boolean (True = attend) or additive float, broadcastable to ``[B, H, T, S]``.
        ``past``: keys/values of earlier positions, attended before ``k``/``v`` (:func:`past_and_new`)."""
        q = self._split(self.q_proj(x))
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        if past is not None:
            out = past_and_new(q, *past, k, v, mask, self.scale)
        else:
            out = attend(q, k, v, mask, self.scale, runs, shared)
        if self.head_gate is not None:
            out = out * self.head_gate.to(out.dtype)[:, None, None]
        b, _, t, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))

    def weights(self, x: Tensor, k: Tensor, mask: Tensor | None, runs: KeyRuns | None = None) -> Tensor:
        """The attention probabilities ``[B, H, T, S]`` (fp32) that :meth:`forward`
        applies to the values, for callers that report them (Marian's word
        alignments). A separate opt-in computation, so :meth:`forward` computes
        (and rounds) the same whether or not weights are asked for."""
        q = self._split(self.q_proj(x)).float()
        if runs is not None:
            mask, k = _per_row(runs, mask, k)
        k, mask = _ungrouped(q, k, mask)
        scores = torch.matmul(q, k.float().transpose(-1, -2)) * self.scale
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
        return torch.softmax(scores, dim=-1)
