"""Loading quantized weights: what a load of a quantized folder needs.

The quantize pass (:mod:`modelport.passes.quantize`) writes a folder whose
``config.json`` records ``quantization.mode``; loading it is a model-layer
concern, so it lives here and the API's loader needs no pass.

- ``int8`` / ``int8-weights``: 2-D weights stored as int8 with one fp32 scale
  per output row (``<name>_scale``); :func:`dequantize_state` turns them back
  into fp32 tensors, and for ``int8`` :func:`apply_on_load` runs the linear
  layers as ``torch.ao.nn.quantized.dynamic.Linear``.
- ``fp16`` / ``bf16``: :func:`apply_on_load` casts the model to that dtype.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from modelport.model.folder import SCALE_SUFFIX

# the deprecation notices torch's dynamic quantization emits (torch 2.9+)
_TORCH_QUANTIZATION_NOTICES = (r"torch\.ao\.quantization is deprecated",
                               r"torch\.quantize_per_tensor, torch\.quantize_per_channel .* are deprecated")


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


def apply_on_load(model: nn.Module, mode: str) -> nn.Module:
    """Make a freshly loaded model compute the way ``mode`` says."""
    if mode == "int8":  # torch.ao.quantization is imported only for the folders that need it
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            # torch announces, on every call, that it will move this API to torchao: a notice to
            # modelport's maintainers, not to the user loading a folder, who can do nothing about it
            for message in _TORCH_QUANTIZATION_NOTICES:
                warnings.filterwarnings("ignore", message=message)
            return quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    if mode in ("fp16", "bf16"):
        return model.to(torch.float16 if mode == "fp16" else torch.bfloat16)
    return model


__all__ = ["apply_on_load", "dequantize_state"]
