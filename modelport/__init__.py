"""modelport: port seq2seq checkpoints from fairseq, Marian and T5 into one
PyTorch encoder-decoder, prove the port is faithful, shrink it and publish it.

Public API::

    import modelport
    plan = modelport.inspect("path/to/fairseq-model")    # read + check, write nothing
    ported = modelport.convert("path/to/fairseq-model", "ported/")
    ported = modelport.load("ported/")
"""

__version__ = "0.1.0"

from modelport.api import PortedModel, convert, inspect, load  # noqa: E402
from modelport.errors import ModelportError  # noqa: E402

__all__ = ["PortedModel", "convert", "inspect", "load", "ModelportError", "__version__"]
