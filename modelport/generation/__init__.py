"""Beam search, greedy search and sampling with each framework's semantics.

Names are imported on first use: the search needs torch, while the registry
of semantics and the decoding flags (:mod:`modelport.generation.semantics`)
do not, and the CLI reads them without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FairseqBeamSearch": "modelport.generation.beam",
    "HFBeamSearch": "modelport.generation.beam",
    "MarianBeamSearch": "modelport.generation.beam",
    "StepAlgorithm": "modelport.generation.beam",
    "run_search": "modelport.generation.beam",
    "Ensemble": "modelport.generation.ensemble",
    "LogLinearEnsemble": "modelport.generation.ensemble",
    "Hypothesis": "modelport.generation.hypothesis",
    "SamplingSearch": "modelport.generation.sampling",
    "SEMANTICS": "modelport.generation.semantics",
    "FairseqOptions": "modelport.generation.semantics",
    "HFOptions": "modelport.generation.semantics",
    "MarianOptions": "modelport.generation.semantics",
    "SamplingOptions": "modelport.generation.semantics",
    "Semantics": "modelport.generation.semantics",
    "generate": "modelport.generation.translate",
    "make_batches": "modelport.generation.translate",
}
# ``translate`` (the function) is not offered here: lazily, the name would be
# shadowed by the submodule of that name once it is imported; use
# ``modelport.generation.translate.translate`` or ``PortedModel.translate``.


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelport.generation' has no attribute {name!r}")


__all__ = sorted(_LAZY)
