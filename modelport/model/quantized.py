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

import torch
from torch import nn

from modelport.model.folder import SCALE_SUFFIX


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

        return quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    if mode in ("fp16", "bf16"):
        return model.to(torch.float16 if mode == "fp16" else torch.bfloat16)
    return model


__all__ = ["apply_on_load", "dequantize_state"]
