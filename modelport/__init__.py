"""modelport: port seq2seq checkpoints from fairseq, Marian and T5 into one
PyTorch encoder-decoder, prove the port is faithful, shrink it and publish it.

Public API::

    import modelport
    plan = modelport.inspect("path/to/fairseq-model")    # read + check, write nothing
    ported = modelport.convert("path/to/fairseq-model", "ported/")
    ported = modelport.load("ported/")
    ported.translate(["Hello world!"])
    modelport.distill("ported/", "student/", data="train.en", student="tiny")
    modelport.publish("ported/", "user/repo", dry_run=True)
"""

from modelport._version import __version__
from modelport.errors import InvalidInputError, ModelportError, OutputExistsError, ParityError

# Entry points are imported on first use, so `import modelport` (and the
# `modelport` command, before it runs a command) stays fast and imports no torch.
_LAZY = {
    "PortedModel": "modelport.api",
    "convert": "modelport.api",
    "inspect": "modelport.api",
    "load": "modelport.api",
    "publish": "modelport.hub",
    "make_card": "modelport.modelcards",
    "write_card": "modelport.modelcards",
    "quantize": "modelport.passes",
    "prune": "modelport.passes",
    "distill": "modelport.passes.distill",
    "export_hf": "modelport.exporters.hf",
    "export_onnx": "modelport.exporters.onnx",
    "export_ct2": "modelport.exporters.ct2",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")


__all__ = ["PortedModel", "convert", "inspect", "load", "quantize", "prune", "distill", "publish", "export_hf",
           "export_onnx", "export_ct2", "make_card", "write_card", "ModelportError", "InvalidInputError",
           "OutputExistsError", "ParityError", "__version__"]
