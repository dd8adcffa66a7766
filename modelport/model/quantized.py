"""Loading quantized weights: what a load of a quantized folder needs.

The quantize pass (:mod:`modelport.passes.quantize`) writes a folder whose
``config.json`` records ``quantization.mode``; loading it is a model-layer
concern, so it lives here and the API's loader needs no pass.

- ``int8`` / ``int8-weights``: 2-D weights stored as int8 with one fp32 scale
  per output row (``<name>_scale``); :func:`dequantize_state` turns them back
  into fp32 tensors, and for ``int8`` :func:`apply_on_load` runs linear
  layers as ``torch.ao.nn.quantized.dynamic.Linear``: those the record's
  ``int8_layers`` names (with ``weights`` per-channel or per-tensor), or
  every linear layer per-channel for a record without that list (folders
  written before the pass chose per layer load as they did); activations take
  256 levels where the CPU's kernel cannot saturate (:func:`full_range_int8`),
  torch's 128 elsewhere. ``lm_head`` in
  that list for a model whose output projection is tied to the embeddings
  gives the projection a module of its own over the same (dequantized)
  weights, which then runs int8 while the embeddings stay fp32.
- ``fp16`` / ``bf16``: :func:`apply_on_load` casts the model to that dtype.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear  # torch imports it itself: no cost

from modelport.errors import InvalidInputError
from modelport.model.folder import CONFIG_NAME, SCALE_SUFFIX
from modelport.model.layers import FeedForward
from modelport.model.transformer import Seq2SeqModel

# the deprecation notices torch's dynamic quantization emits (torch 2.9+)
_TORCH_QUANTIZATION_NOTICES = (r"torch\.ao\.quantization is deprecated",
                               r"torch\.quantize_per_tensor, torch\.quantize_per_channel .* are deprecated")


@contextlib.contextmanager
def _without_quantization_notices() -> Iterator[None]:
    """torch announces, on every call, that it will move its dynamic quantization to torchao: a
    notice to modelport's maintainers, not to the user loading a folder, who can do nothing about it."""
    with warnings.catch_warnings():
        for message in _TORCH_QUANTIZATION_NOTICES:
            warnings.filterwarnings("ignore", message=message)
        yield

INT8_LAYERS = "int8_layers"  # the record's list of linear modules that run int8 matmuls
INT8_WEIGHTS = "weights"  # the record's weight observer for those: one of WEIGHT_GRANULARITIES
TIED_HEAD = "lm_head"  # the output projection's module name; in int8_layers for a tied one too (untied at load)
WEIGHT_GRANULARITIES = ("per-channel", "per-tensor")


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """int8 + ``_scale`` pairs back to fp32 tensors (aliases stay one tensor)."""
    out: dict[str, torch.Tensor] = {}
    done: dict[int, torch.Tensor] = {}
    for name, t in state.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        scale = state.get(name + SCALE_SUFFIX)
        if scale is not None and t.dtype == torch.int8:
            if id(t) not in done:
                done[id(t)] = t.float() * scale[:, None]
            out[name] = done[id(t)]
        else:
            out[name] = t
    return out


def linear_layers(model: nn.Module) -> dict[str, int]:
    """Every ``nn.Linear`` of ``model`` by module name, with its weight's element count
    (in_features * out_features: what the per-layer int8 choice is made on)."""
    return {name: m.in_features * m.out_features for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def _int8_spec(model: nn.Module, record: Mapping[str, Any]) -> dict[str, Any]:
    """quantize_dynamic's qconfig per module name, from the folder's quantization record."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    linears = linear_layers(model)
    names = record.get(INT8_LAYERS)
    if names is None:  # written before the per-layer choice: every linear layer, per-channel
        return {name: per_channel_dynamic_qconfig for name in linears}
    granularity = record.get(INT8_WEIGHTS, "per-channel")
    if granularity not in WEIGHT_GRANULARITIES:
        raise InvalidInputError(f"`quantization.{INT8_WEIGHTS}` in {CONFIG_NAME} must be one of "
                                f"{', '.join(WEIGHT_GRANULARITIES)}, but is {granularity!r}"[:300])
    unknown = [n for n in names if not isinstance(n, str) or n not in linears] if isinstance(names, list) else [names]
    if unknown:
        raise InvalidInputError(f"`quantization.{INT8_LAYERS}` in {CONFIG_NAME} must be a list of the model's linear "
                                f"layers, but holds {unknown[:3]!r}"[:300])
    qconfig = per_channel_dynamic_qconfig if granularity == "per-channel" else default_dynamic_qconfig
    return {name: qconfig for name in names}


class FullRangeLinear(DynamicLinear):
    """torch's dynamic int8 linear layer with its activations quantized to all 256
    levels (``reduce_range=False``), for where :func:`full_range_int8` holds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


class Int8LinearReLU(DynamicLinear):
    """``relu(layer(x))`` of a dynamic int8 layer in one call: the kernel applies the
    ReLU to its float output as it writes it, instead of a second pass over the
    FFN's widest activation (bit-identical; 1.4% of transformer-big int8 decoding
    was that pass). ``full_range`` as for :class:`FullRangeLinear`."""

    full_range = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_relu_dynamic(x, packed, reduce_range=not self.full_range).to(x.dtype)


def _fuse_relu(model: nn.Module, full_range: bool) -> None:
    """Let each ungated ReLU FFN's int8 ``up`` layer apply the ReLU (:class:`Int8LinearReLU`)."""
    for module in model.modules():
        if (isinstance(module, FeedForward) and module.gate is None and module.act is F.relu
                and type(module.up) in (DynamicLinear, FullRangeLinear)):
            module.up.__class__ = Int8LinearReLU
            module.up.full_range = full_range
            module.up_activates = True


def full_range_int8() -> bool:
    """Whether int8 layers quantize their activations to all 256 levels here.

    torch's dynamic int8 layer quantizes activations to 128 levels
    (``reduce_range``), which doubles their rounding error, because on CPUs
    without VNNI its kernel adds pairs of uint8 x int8 products in 16 bits,
    which can saturate at full range. Where a product built to saturate those
    sums (every activation and weight at its largest level: 2 x 255 x 127 >
    32767) comes out right rather than about halved, the kernel does not add in
    16 bits (AVX-512 VNNI, AVX-VNNI) and full range is safe: on the trained
    embedded model, int8 outputs identical to fp32 go from 196 to 199 of 200
    lines (``scripts/bench_int8.py``). Probed once per process and quantized
    engine (``torch.backends.quantized.engine``); ``MODELPORT_INT8_FULL_RANGE=0``
    keeps torch's 128 levels."""
    if os.environ.get("MODELPORT_INT8_FULL_RANGE", "1") == "0":
        return False
    return _saturation_free(torch.backends.quantized.engine)


@functools.cache
def _saturation_free(engine: str) -> bool:
    """The probe of :func:`full_range_int8` under ``engine``."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    width = 512
    layer = nn.Linear(width, 64, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    with _without_quantization_notices():
        probe = quantize_dynamic(nn.Sequential(layer), {"0": per_channel_dynamic_qconfig}, dtype=torch.qint8)[0]
    probe.__class__ = FullRangeLinear
    with torch.inference_mode():
        out = probe(torch.ones(5, width))
    # 16-bit sums saturate at 32767 of every pair's 2 x 255 x 127 = 64770: about half the exact sum, where
    # the activations' rounding (their scale is computed in float) is a fraction of a percent
    return bool(((out - width).abs() < 0.05 * width).all())


def apply_on_load(model: nn.Module, quantization: str | Mapping[str, Any]) -> nn.Module:
    """Make a freshly loaded model compute the way the folder's quantization
    record (config.json's ``quantization``; a bare mode string for callers that
    have only the mode: int8 then quantizes every linear layer) says."""
    record: Mapping[str, Any] = {"mode": quantization} if isinstance(quantization, str) else quantization
    mode = record.get("mode")
    if mode == "int8":  # torch.ao.quantization is imported only for the folders that need it
        from torch.ao.quantization import quantize_dynamic

        with _without_quantization_notices():
            names = record.get(INT8_LAYERS)
            if isinstance(names, list) and TIED_HEAD in names and isinstance(model, Seq2SeqModel):
                model.untie_output_projection()  # a tied output projection computes int8: a module of its own
            spec = _int8_spec(model, record)
            for name in spec:  # quantize_dynamic swaps only modules whose type is nn.Linear itself
                module = model.get_submodule(name)
                if isinstance(module, nn.Linear):
                    module.__class__ = nn.Linear
            if not spec:
                return model
            model = quantize_dynamic(model, spec, dtype=torch.qint8)
            full_range = full_range_int8()
            if full_range:
                for module in model.modules():
                    if type(module) is DynamicLinear:
                        module.__class__ = FullRangeLinear
            _fuse_relu(model, full_range)
            return model
    if mode in ("fp16", "bf16"):
        return model.to(torch.float16 if mode == "fp16" else torch.bfloat16)
    return model


__all__ = ["FullRangeLinear", "INT8_LAYERS", "INT8_WEIGHTS", "Int8LinearReLU", "TIED_HEAD", "WEIGHT_GRANULARITIES",
           "apply_on_load", "dequantize_state", "full_range_int8", "linear_layers"]
