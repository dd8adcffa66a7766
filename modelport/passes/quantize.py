"""Quantization of a ported folder.

Modes:
- ``int8``: every 2-D weight (linear layers and embeddings) stored as int8
  with one symmetric fp32 scale per output row (``<name>_scale``), so the
  folder is ~4x smaller; at load the linear layers run as
  ``torch.ao.nn.quantized.dynamic.Linear`` (int8 matrix products,
  dynamically quantized activations). Re-quantizing the stored values with
  the same per-row symmetric scheme reproduces them exactly. Embeddings and
  the (tied) output projection are dequantized to fp32 at load.
- ``int8-weights``: the same storage, fp32 compute (a smaller download).
- ``fp16`` / ``bf16``: storage and compute in that dtype; logits and
  log-softmax stay fp32 (the model computes them in fp32), T5 ports keep their
  fp16 clamp.

Loading such a folder is the model layer's (:mod:`modelport.model.quantized`).
"""

from __future__ import annotations

import os

import torch

from modelport.errors import InvalidInputError
from modelport.model.folder import QUANTIZATION_MODES, SCALE_SUFFIX, PortedFolder, check_writable
from modelport.passes.common import finish, measure, pass_output
from modelport.reports.passes import PassReport

MODES = QUANTIZATION_MODES


def _quantizable(name: str, t: torch.Tensor) -> bool:
    # learned position tables stay fp32: small, and their rows are reused at every step
    return t.dim() == 2 and t.is_floating_point() and name.endswith(".weight") and "embed_positions" not in name


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``w ~= q * scale[:, None]``, ``|q| <= 127``."""
    w = w.float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def quantize(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, mode: str,
             data: list[str] | None = None, references: list[str] | None = None, force: bool = False,
             progress: bool = False) -> PassReport:
    """Write a quantized copy of ``ported_dir`` to ``output_dir`` and return its
    report (size, speed, agreement with the original, BLEU/chrF when
    ``references`` are given)."""
    if mode not in MODES:
        raise InvalidInputError(f"`{mode}` is not a known quantization mode (known: {', '.join(MODES)})")
    source = PortedFolder.open(ported_dir)
    if source.quantization:
        raise InvalidInputError(f"`{ported_dir}` is already quantized ({source.quantization}); "
                                "quantize the unquantized folder instead")
    check_writable(output_dir, force)
    state = source.load_weights()
    tensors: list[tuple[str, torch.Tensor]] = []
    converted: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
    count = 0
    for name, t in state.items():
        key = id(t)
        if key not in converted:
            if mode in ("int8", "int8-weights") and _quantizable(name, t):
                converted[key] = quantize_rows(t)
                count += 1
            elif mode in ("fp16", "bf16") and t.is_floating_point():
                converted[key] = (t.to(torch.float16 if mode == "fp16" else torch.bfloat16), None)
                count += 1
            else:
                converted[key] = (t, None)
        q, scale = converted[key]
        tensors.append((name, q))  # the same object for aliases: stored once
        if scale is not None:
            tensors.append((name + SCALE_SUFFIX, scale))
    scheme = {"int8": "int8 weights, per-row symmetric scales; int8 dynamic matmuls for linear layers",
              "int8-weights": "int8 weights, per-row symmetric scales; fp32 compute",
              "fp16": "float16 storage and compute; fp32 logits", "bf16": "bfloat16 storage and compute; fp32 logits"}
    options = {"mode": mode}
    changed = {"tensors_quantized": count}
    with pass_output(source, output_dir, tensors, source.config,
                     {"pass": "quantize", "options": options, "changed": changed}, force,
                     quantization={"mode": mode, "scheme": scheme[mode]}) as out:
        # measured before the folder is renamed into place: an interrupted run leaves nothing
        return finish(out, PassReport("quantize", options, changed, measure(source, out.path, data, references,
                                                                          progress=progress)))
