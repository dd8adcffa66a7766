"""Passes over ported models: quantization, (structured) pruning and
distillation (:mod:`modelport.passes.distill`, imported on use: it trains).
Each reads a ported folder, writes a new one atomically, appends itself to
the folder's history in conversion.json and reports size, speed and quality."""

from modelport.passes.prune import prune
from modelport.passes.quantize import quantize

__all__ = ["prune", "quantize"]
