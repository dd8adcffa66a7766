"""Load untrusted ``torch.save`` / pickle files without executing their code.

A pickle names globals (``module.name``) and calls them while loading; that is
how a malicious checkpoint runs ``os.system``. :class:`RestrictedUnpickler`
resolves only an allowlist of data-only callables (tensor rebuild functions,
``OrderedDict``, ``argparse.Namespace``, ...). Training-state classes that
checkpoints legitimately carry but that we never need to run (omegaconf
containers, fairseq meters and enums, numpy scalars) resolve to *inert*
stand-ins that only record their arguments; :func:`to_plain` turns omegaconf
stand-ins into plain dicts and lists. Any other global raises
:class:`~modelport.errors.UnsafeCheckpointError` naming it.

We do not use ``torch.load(weights_only=True)``: it refuses every fairseq
checkpoint (they pickle ``argparse.Namespace`` and omegaconf objects), and
widening it with ``add_safe_globals`` would construct real omegaconf/fairseq
objects, which needs those packages and runs their code.
"""

from __future__ import annotations

import argparse
import collections
import copyreg
import io
import os
import pickle
import types
import zipfile
from typing import Any

import torch

from modelport.errors import CorruptCheckpointError, UnsafeCheckpointError

# Callables that only rebuild data. Storage classes (``torch.FloatStorage``)
# are resolved by torch's own wrapper before they reach us.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("argparse", "Namespace"): argparse.Namespace,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "object"): object,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "str"): str,
    ("builtins", "bool"): bool,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("_codecs", "encode"): __import__("_codecs").encode,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Tensor"): torch.Tensor,
}
if hasattr(torch._utils, "_rebuild_tensor_v3"):
    _ALLOWED[("torch._utils", "_rebuild_tensor_v3")] = torch._utils._rebuild_tensor_v3
for _name in dir(torch):
    if isinstance(getattr(torch, _name, None), torch.dtype):
        _ALLOWED[("torch", _name)] = getattr(torch, _name)

# Modules whose classes become inert records: training state we never run.
_INERT_PREFIXES = ("omegaconf", "fairseq", "numpy", "typing", "enum", "pathlib", "fairseq2", "hydra")


class Inert:
    """A stand-in for a class from a checkpoint; it records, it never runs."""

    _inert_module: str = ""
    _inert_name: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None
        self.items: list[Any] = []
        self.entries: dict[Any, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    # pickle's APPENDS/SETITEMS opcodes on objects that behave like containers
    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries[key] = value

    def __repr__(self) -> str:
        return f"<inert {self._inert_module}.{self._inert_name}>"

    @property
    def qualname(self) -> str:
        return f"{self._inert_module}.{self._inert_name}"


_inert_classes: dict[tuple[str, str], type] = {}


def _inert_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _inert_classes:
        cls = types.new_class(name, (Inert,))
        cls._inert_module, cls._inert_name = module, name
        # no __reduce__/__new__ games: instances are created like plain objects
        cls.__new__ = lambda c, *a, **k: object.__new__(c)  # type: ignore[method-assign]
        _inert_classes[key] = cls
    return _inert_classes[key]


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals from the allowlist only."""

    source = "<checkpoint>"

    def find_class(self, module: str, name: str) -> Any:
        if module in ("__builtin__", "copy_reg"):  # protocol-2 pickles name Python 2 modules
            module = {"__builtin__": "builtins", "copy_reg": "copyreg"}[module]
            name = {"long": "int", "unicode": "str"}.get(name, name)
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module.split(".")[0] in _INERT_PREFIXES:
            return _inert_class(module, name)
        raise UnsafeCheckpointError(self.source, f"{module}.{name}")


def _module_for(source: str) -> types.SimpleNamespace:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)``."""

    class _Unpickler(RestrictedUnpickler):
        pass

    _Unpickler.source = source

    def load(f: Any, **kwargs: Any) -> Any:
        return _Unpickler(f, **kwargs).load()

    def loads(data: bytes, **kwargs: Any) -> Any:
        return _Unpickler(io.BytesIO(data), **kwargs).load()

    return types.SimpleNamespace(Unpickler=_Unpickler, load=load, loads=loads, __name__="modelport_safe_pickle")


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` through :class:`RestrictedUnpickler`, zip or legacy format.

    Zip checkpoints are memory-mapped, so their tensors cost no RAM until read.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise CorruptCheckpointError(path, e.strerror or str(e)) from None
    if size == 0:
        raise CorruptCheckpointError(path, "the file is empty")
    module = _module_for(path)
    is_zip = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", pickle_module=module, weights_only=False, mmap=is_zip)
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError,
            KeyError, TypeError, AttributeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        reason = f"it is truncated or corrupt ({type(e).__name__}: {first[:160]})"
        raise CorruptCheckpointError(path, reason) from None


def to_plain(obj: Any) -> Any:
    """Turn inert omegaconf containers/nodes and enums into plain Python data.

    ``argparse.Namespace`` becomes a dict; other inert objects become a
    ``{"__inert__": "module.name"}`` marker (we never need their contents).
    """
    if isinstance(obj, Inert):
        state = obj.state
        if isinstance(state, dict) and "_content" in state:  # omegaconf DictConfig/ListConfig
            return to_plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:  # omegaconf value node
            return to_plain(state["_val"])
        if obj._inert_module.startswith(("enum", "fairseq")) and len(obj.args) == 1 and state is None:
            return to_plain(obj.args[0])  # Enum members pickle as cls(value)
        return {"__inert__": obj.qualname}
    if isinstance(obj, argparse.Namespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj) if isinstance(obj, list) else tuple(to_plain(v) for v in obj)
    return obj
