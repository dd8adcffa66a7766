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
import io
import os
import pickle
import struct
import tarfile
import types
import zipfile
from typing import Any

import torch

from modelport.errors import CorruptCheckpointError, ResourceLimitError, UnsafeCheckpointError

# Limits on what a file may make modelport build, whatever it claims. Real
# checkpoints are far below each (a WMT19 transformer-big: ~400 tensors, a
# configuration of a few thousand values nested < 10 deep).
MAX_COMPRESSED_ENTRY_BYTES = 256 * 1024**2  # decompressed size of all deflated zip entries together
MAX_ZIP_ENTRIES = 1_000_000
MAX_BYTES_FROM_CALL = 16 * 1024**2  # bytearray / _codecs.encode results built by a pickle call
MAX_TENSOR_DIMS = 64
MAX_CONFIG_DEPTH = 200  # nesting of configuration objects (omegaconf, Namespace, dicts, lists)
MAX_CONFIG_NODES = 500_000  # values visited while turning a configuration into plain data


def _bytearray(*args: Any) -> bytearray:
    # protocol-2 pickles write bytearray(text, "latin-1"); an integer argument
    # would allocate memory the file never held (bytearray(3 * 10**9))
    if not args or not isinstance(args[0], (bytes, bytearray, str)):
        raise _Refused("builtins.bytearray", "calls `bytearray` with a size instead of data")
    if len(args[0]) > MAX_BYTES_FROM_CALL:
        raise _Refused("builtins.bytearray", f"builds a bytearray over {MAX_BYTES_FROM_CALL} bytes")
    return bytearray(*args)


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # protocol-2 pickles write bytes as _codecs.encode(text, "latin1"); nothing else is needed
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode", f"calls `_codecs.encode` with encoding {encoding!r} on "
                       f"{type(obj).__name__} (only latin1 text is a pickled bytes object)")
    if len(obj) > MAX_BYTES_FROM_CALL:
        raise _Refused("_codecs.encode", f"encodes over {MAX_BYTES_FROM_CALL} characters")
    return obj.encode("latin1")


_SCALAR_ARGS = (str, bytes, int, float, bool, complex, type(None))
_CONTAINERS = (list, tuple, set, frozenset, dict, collections.OrderedDict)


def _checked(name: str, fn: Any, *, arg_types: tuple[type, ...]) -> Any:
    """``fn`` callable only with arguments of ``arg_types`` (no object whose
    ``__str__``/``__iter__`` could be made to expand or run anything)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        for a in (*args, *kwargs.values()):
            if not isinstance(a, arg_types):
                raise _Refused(name, f"calls `{name}` with a {type(a).__name__} argument")
        return fn(*args, **kwargs)

    call.__name__ = name
    return call


def _defaultdict(factory: Any = None, *args: Any) -> collections.defaultdict:
    # the factory arrives as the allowlist's wrapper of a builtin type
    real = _FACTORIES.get(id(factory), factory)
    if real not in (None, list, dict, int, float, set, str, collections.OrderedDict):
        raise _Refused("collections.defaultdict", f"builds a defaultdict whose factory is {factory!r:.60}")
    return collections.defaultdict(real, *args)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # copyreg's protocol-0/1 object rebuild; with another base it would call
    # that base's constructor on file data (bytearray(3e9), a tensor of n floats)
    if base is not object or state is not None or cls not in _NEWOBJ_CLASSES and not _is_inert_class(cls):
        raise _Refused("copyreg._reconstructor", f"rebuilds {getattr(cls, '__name__', cls)!r} on "
                       f"{getattr(base, '__name__', base)!r}")
    return object.__new__(cls)


def _torch_size(dims: Any = ()) -> torch.Size:
    if not isinstance(dims, (list, tuple)) or len(dims) > MAX_TENSOR_DIMS:
        raise _Refused("torch.Size", "builds a torch.Size that is not a short list of integers")
    return torch.Size(dims)


def _no_hooks(hooks: Any) -> None:
    if hooks:  # hooks are callables run on backward: a checkpoint never needs them
        raise _Refused("torch._utils", "attaches backward hooks to a tensor")


def _plain_state(state: Any) -> None:
    """Attribute state set on a rebuilt tensor: names only, never dunders."""
    if state is None:
        return
    parts = state if isinstance(state, tuple) else (state,)
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, dict) or any(not isinstance(k, str) or k.startswith("__") for k in part):
            raise _Refused("torch._utils", "sets special attributes on a tensor")


def _is_storage(obj: Any) -> bool:
    return isinstance(obj, (torch.storage.TypedStorage, torch.UntypedStorage))


def _tensor_rebuilder(fn: Any) -> Any:
    """``fn`` (one of torch's ``_rebuild_tensor*``) accepting only storages that
    persistent_load made from the file's bytes; torch's ``set_`` then checks
    that size, stride and offset stay inside them."""

    def rebuild(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> torch.Tensor:
        if not _is_storage(storage):
            raise _Refused(fn.__name__, "rebuilds a tensor from something that is not a storage")
        if len(rest) >= 2:
            _no_hooks(rest[1])
        return fn(storage, offset, size, stride, *rest)

    rebuild.__name__ = fn.__name__
    return rebuild


_REBUILD_TENSOR = _tensor_rebuilder(torch._utils._rebuild_tensor)
_REBUILD_TENSOR_V2 = _tensor_rebuilder(torch._utils._rebuild_tensor_v2)
_REBUILD_TENSOR_V3 = _tensor_rebuilder(torch._utils._rebuild_tensor_v3) \
    if hasattr(torch._utils, "_rebuild_tensor_v3") else None


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, *state: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _Refused("torch._utils._rebuild_parameter", "wraps something that is not a tensor")
    _no_hooks(backward_hooks)
    if state:
        _plain_state(state[0])
        return torch._utils._rebuild_parameter_with_state(data, bool(requires_grad), backward_hooks, state[0])
    return torch._utils._rebuild_parameter(data, bool(requires_grad), backward_hooks)


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in _TENSOR_REBUILDERS or new_type not in (torch.Tensor, torch.nn.Parameter) \
            or not isinstance(args, tuple):
        raise _Refused("torch._tensor._rebuild_from_type_v2", "rebuilds a tensor through another function or type")
    _plain_state(state)
    return torch._tensor._rebuild_from_type_v2(func, new_type, args, state)


class _Refused(Exception):
    """Raised inside the unpickler; :func:`safe_torch_load` names the file."""

    def __init__(self, global_name: str, detail: str) -> None:
        super().__init__(detail)
        self.global_name = global_name
        self.detail = detail


_TENSOR_REBUILDERS = (_REBUILD_TENSOR, _REBUILD_TENSOR_V2, _REBUILD_TENSOR_V3, _rebuild_parameter)

# Globals a pickle may *call* (REDUCE, INST, OBJ), each bounded by a wrapper
# where its arguments could build more than the file holds.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _defaultdict,
    ("argparse", "Namespace"): argparse.Namespace,
    ("builtins", "set"): _checked("set", set, arg_types=_CONTAINERS),
    ("builtins", "frozenset"): _checked("frozenset", frozenset, arg_types=_CONTAINERS),
    ("builtins", "list"): _checked("list", list, arg_types=_CONTAINERS),
    ("builtins", "tuple"): _checked("tuple", tuple, arg_types=_CONTAINERS),
    ("builtins", "dict"): _checked("dict", dict, arg_types=_CONTAINERS),
    ("builtins", "slice"): _checked("slice", slice, arg_types=(int, type(None))),
    ("builtins", "complex"): _checked("complex", complex, arg_types=(int, float, str)),
    ("builtins", "int"): _checked("int", int, arg_types=(int, float, str, bytes, bool)),
    ("builtins", "float"): _checked("float", float, arg_types=(int, float, str, bool)),
    ("builtins", "str"): _checked("str", str, arg_types=(str, bytes)),
    ("builtins", "bool"): _checked("bool", bool, arg_types=_SCALAR_ARGS),
    ("builtins", "bytearray"): _bytearray,
    ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _checked("torch.device", torch.device, arg_types=(str, int)),
    ("torch._utils", "_rebuild_tensor"): _REBUILD_TENSOR,
    ("torch._utils", "_rebuild_tensor_v2"): _REBUILD_TENSOR_V2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
}
if _REBUILD_TENSOR_V3 is not None:
    _ALLOWED[("torch._utils", "_rebuild_tensor_v3")] = _REBUILD_TENSOR_V3
_CALLABLE = {id(v) for v in _ALLOWED.values()}
_FACTORIES = {id(_ALLOWED[("builtins", n)]): getattr(__import__("builtins"), n)
              for n in ("list", "dict", "int", "float", "set", "str")}

# Globals a pickle may only *name* (as the type argument of a rebuild, a
# storage type, a dtype): calling one is refused. torch.Tensor(n) and
# Tensor.__new__(Tensor, n) return uninitialised memory.
_REFERENCE_ONLY: dict[tuple[str, str], Any] = {
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "UntypedStorage"): torch.UntypedStorage,
}
for _name in dir(torch):
    if isinstance(getattr(torch, _name, None), torch.dtype):
        _REFERENCE_ONLY[("torch", _name)] = getattr(torch, _name)

# Classes a pickle may instantiate without calling their constructor (NEWOBJ,
# copyreg._reconstructor) and then fill with BUILD.
_NEWOBJ_CLASSES = (argparse.Namespace, collections.OrderedDict, dict, list, set, object)

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


def _is_inert_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Inert)


def _inert_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _inert_classes:
        cls = types.new_class(name, (Inert,))
        cls._inert_module, cls._inert_name = module, name
        # no __reduce__/__new__ games: instances are created like plain objects
        cls.__new__ = lambda c, *a, **k: object.__new__(c)  # type: ignore[method-assign]
        _inert_classes[key] = cls
    return _inert_classes[key]


def _name_of(obj: Any) -> str:
    """``module.name`` of a class or function, or of an instance's class."""
    kind = obj if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', '?')}"


def _check_target(obj: Any, kinds: tuple[type, ...]) -> None:
    if not isinstance(obj, kinds):
        raise _Refused(_name_of(obj), f"adds items to a `{_name_of(obj)}`, which is not a container")


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """An unpickler that resolves globals from the allowlist only and checks
    every opcode that calls or mutates something.

    It is the pure-Python unpickler because the C one cannot be told to check
    BUILD, NEWOBJ or REDUCE: a BUILD on a class sets class attributes (torch's
    legacy loader then writes a ``.patch`` file named by one of them), and
    ``Tensor.__new__(Tensor, n)`` returns uninitialised memory. The pickle
    part of a checkpoint is small (tensors are stored beside it), so speed is
    not at stake.
    """

    source = "<checkpoint>"
    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._persistent_load: Any = None

    def find_class(self, module: str, name: str) -> Any:
        if module in ("__builtin__", "copy_reg"):  # protocol-2 pickles name Python 2 modules
            module = {"__builtin__": "builtins", "copy_reg": "copyreg"}[module]
            name = {"long": "int", "unicode": "str"}.get(name, name)
        found = _ALLOWED.get((module, name))
        if found is None:
            found = _REFERENCE_ONLY.get((module, name))
        if found is not None:
            return found
        if module.split(".")[0] in _INERT_PREFIXES:
            return _inert_class(module, name)
        raise UnsafeCheckpointError(self.source, f"{module}.{name}")

    # -- persistent ids: only tensor storages, checked by the loader's guard

    @property  # type: ignore[override]
    def persistent_load(self) -> Any:
        return self._persistent_load or self._no_persistent_ids

    @persistent_load.setter
    def persistent_load(self, fn: Any) -> None:
        guard = getattr(type(self), "storage_guard", None)
        self._persistent_load = (lambda pid: fn(guard(pid))) if guard is not None else fn

    @staticmethod
    def _no_persistent_ids(pid: Any) -> Any:
        raise _Refused("persistent_id", "holds a persistent id outside a torch checkpoint")

    # -- opcodes that call or mutate

    def _call(self, func: Any, args: tuple[Any, ...]) -> Any:
        if id(func) in _CALLABLE or _is_inert_class(func):
            return func(*args)
        raise _Refused(_name_of(func), f"calls `{_name_of(func)}`, which a checkpoint may only name")

    def _new(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
        if _is_inert_class(cls):
            return cls.__new__(cls)
        if cls in _NEWOBJ_CLASSES and not args and not kwargs:
            return cls.__new__(cls)
        raise _Refused(_name_of(cls), f"creates `{_name_of(cls)}` without its constructor")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        if not isinstance(args, tuple):
            raise _Refused("REDUCE", "calls a function with arguments that are not a tuple")
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, tuple(args)))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, tuple(args), dict(kwargs)))

    def _instantiate(self, klass: Any, args: list[Any]) -> None:
        if args or not isinstance(klass, type):
            self.append(self._call(klass, tuple(args)))
        else:
            self.append(self._new(klass, ()))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Inert):
            inst.__setstate__(state)
            return
        if not isinstance(inst, (argparse.Namespace, collections.OrderedDict)) or isinstance(inst, type):
            # torch state dicts carry `_metadata` this way; a BUILD on a class would set class attributes; on a tensor it
            # would rewire its storage
            raise _Refused(_name_of(inst), f"sets the state of `{_name_of(inst)}`, which holds no "
                           "pickled state in a checkpoint")
        if isinstance(state, tuple) and len(state) == 2:
            state, slots = state
            if slots:
                raise _Refused(_name_of(inst), f"sets slot state on a `{_name_of(inst)}`")
        if state is None:
            return
        if not isinstance(state, dict) or any(not isinstance(k, str) or k.startswith("__") for k in state):
            raise _Refused(_name_of(inst), f"sets special attributes on a `{_name_of(inst)}`")
        vars(inst).update(state)

    # APPEND(S)/SETITEM(S)/ADDITEMS act on whatever object is below them: only
    # on containers (a tensor's __setitem__ would write into its storage)

    def load_append(self) -> None:
        _check_target(self.stack[-2], (list, Inert))
        super().load_append()

    def load_appends(self) -> None:
        _check_target(self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None, (list, Inert))
        super().load_appends()

    def load_setitem(self) -> None:
        _check_target(self.stack[-3], (dict, Inert))
        super().load_setitem()

    def load_setitems(self) -> None:
        _check_target(self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None, (dict, Inert))
        super().load_setitems()

    def load_additems(self) -> None:
        _check_target(self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None, (set,))
        super().load_additems()

    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.ADDITEMS[0]] = load_additems
    def load_bytearray8(self) -> None:
        # the pure-Python unpickler allocates the declared length before reading
        (size,) = struct.unpack("<Q", self.read(8))
        if size > MAX_BYTES_FROM_CALL:
            raise _Refused("BYTEARRAY8", f"declares a bytearray of {size} bytes")
        data = self.read(size)
        if len(data) != size:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build

    def load(self) -> Any:
        try:
            return super().load()
        except _Refused as e:
            raise UnsafeCheckpointError(self.source, e.global_name, e.detail) from None
        except struct.error as e:  # the pure-Python unpickler's word for a truncated number
            raise pickle.UnpicklingError(f"pickle data was truncated ({e})") from None


class _StorageGuard:
    """Checks every tensor storage a checkpoint declares before torch builds it.

    zip format: the storage's record exists, is stored uncompressed and holds
    at least the declared bytes (torch would otherwise read past it into
    neighbouring bytes of the file). Legacy format: declared storages add up
    to no more than the file's size (torch allocates them before reading),
    and each is then filled from the file.
    """

    def __init__(self, path: str, size: int, records: dict[str, zipfile.ZipInfo] | None) -> None:
        self.path, self.size, self.records = path, size, records
        self.declared: dict[str, int] = {}
        self.total = 0

    def _fail(self, reason: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(self.path, reason)

    def __call__(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise self._fail("a persistent id is not a tuple")
        typename = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if typename != "storage":
            raise UnsafeCheckpointError(self.path, f"persistent_id:{typename!s:.40}",
                                        f"holds a persistent id of type {typename!r:.40} (only tensor "
                                        "storages are allowed)")
        legacy = self.records is None
        if len(pid) != (6 if legacy else 5):
            raise self._fail(f"a storage id has {len(pid)} fields")
        storage_type, key, _location, numel = pid[1:5]
        if storage_type is torch.UntypedStorage:
            dtype = torch.uint8
        else:
            dtype = getattr(storage_type, "dtype", None)
        if not isinstance(dtype, torch.dtype):
            raise self._fail(f"a storage has type {storage_type!r:.60}")
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise self._fail("a storage id holds a key or size of the wrong type")
        nbytes = numel * torch._utils._element_size(dtype)
        if legacy:
            view = pid[5]
            if view is not None and not (isinstance(view, tuple) and len(view) == 3
                                         and all(type(v) is int and v >= 0 for v in view[1:])
                                         and view[1] + view[2] <= numel):
                raise self._fail(f"storage view {view!r:.80} lies outside its storage")
            if key not in self.declared:
                self.declared[key] = nbytes
                self.total += nbytes
                if self.total > self.size:
                    raise self._fail(f"its storages declare {self.total} bytes, more than the file's {self.size}")
            return pid
        info = self.records.get(key)
        if info is None:
            raise self._fail(f"storage record data/{key:.40} is missing")
        if info.compress_type != zipfile.ZIP_STORED:
            raise self._fail(f"storage record data/{key:.40} is compressed (torch stores tensors uncompressed)")
        if nbytes > info.file_size:
            raise self._fail(f"storage data/{key:.40} declares {nbytes} bytes but holds {info.file_size}")
        return pid

    def check_filled(self, keys: Any) -> None:
        """Legacy format: every declared storage is read from the file."""
        if not isinstance(keys, list) or set(map(str, keys)) != set(self.declared):
            raise self._fail("its storage list does not match the storages it declares "
                             "(a storage without data would hold uninitialised memory)")


def _zip_records(path: str, size: int) -> dict[str, zipfile.ZipInfo]:
    """The ``data/<key>`` records of a torch zip checkpoint, after checking
    that no entry decompresses to more than the limits allow."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CorruptCheckpointError(path, f"it is not a readable zip archive ({e})") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ResourceLimitError(path, f"its {len(infos)} zip entries", MAX_ZIP_ENTRIES)
    inflated = 0
    records: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            inflated += info.file_size
            if inflated > MAX_COMPRESSED_ENTRY_BYTES:
                raise ResourceLimitError(path, "the decompressed size of its compressed entries",
                                         f"{MAX_COMPRESSED_ENTRY_BYTES} bytes")
        elif info.file_size != info.compress_size or info.header_offset + info.file_size > size:
            raise CorruptCheckpointError(path, f"zip entry `{info.filename[:60]}` lies outside the file")
        parts = info.filename.split("/")
        if len(parts) == 3 and parts[1] == "data":
            records[parts[2]] = info
    return records


def _module_for(source: str, guard: _StorageGuard) -> types.SimpleNamespace:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)``."""

    class _Unpickler(RestrictedUnpickler):
        storage_guard = staticmethod(guard)

    _Unpickler.source = source
    loads_done: list[Any] = []

    def load(f: Any, **kwargs: Any) -> Any:
        obj = _Unpickler(f, **kwargs).load()
        loads_done.append(obj)
        if guard.records is None and len(loads_done) == 4:  # legacy: magic, protocol, sys_info, storage keys
            guard.check_filled(obj)
        return obj

    def loads(data: bytes, **kwargs: Any) -> Any:
        return _Unpickler(io.BytesIO(data), **kwargs).load()

    return types.SimpleNamespace(Unpickler=_Unpickler, load=load, loads=loads, __name__="modelport_safe_pickle")


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` through :class:`RestrictedUnpickler`, zip or legacy format.

    Zip checkpoints are memory-mapped, so their tensors cost no RAM until read.
    Every storage is checked against the bytes the file holds before torch
    creates it (see :class:`_StorageGuard`).
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise CorruptCheckpointError(path, e.strerror or str(e)) from None
    if size == 0:
        raise CorruptCheckpointError(path, "the file is empty")
    is_zip = zipfile.is_zipfile(path)
    if not is_zip and tarfile_like(path):
        raise CorruptCheckpointError(path, "it is a pre-1.0 tar-format torch checkpoint, which is not supported "
                                     "(re-save it with a current torch)")
    guard = _StorageGuard(path, size, _zip_records(path, size) if is_zip else None)
    module = _module_for(path, guard)
    try:
        return torch.load(path, map_location="cpu", pickle_module=module, weights_only=False, mmap=is_zip)
    except (UnsafeCheckpointError, CorruptCheckpointError):
        raise
    except RecursionError:
        raise ResourceLimitError(path, "the nesting of its objects", "the interpreter's recursion limit") from None
    except MemoryError:
        raise ResourceLimitError(path, "the memory its objects need", "what this process can allocate") from None
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError,
            KeyError, TypeError, AttributeError, IndexError, AssertionError, LookupError, OverflowError,
            UnicodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        reason = f"it is truncated or corrupt ({type(e).__name__}: {first[:160]})"
        raise CorruptCheckpointError(path, reason) from None


def tarfile_like(path: str) -> bool:
    """Whether ``path`` is a tar archive (torch's pre-1.0 format, loaded through extraction)."""
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def to_plain(obj: Any, *, source: str = "<checkpoint>", keep_namespaces: bool = False) -> Any:
    """Turn inert omegaconf containers/nodes and enums into plain Python data.

    ``argparse.Namespace`` becomes a dict (or stays a Namespace of plain data
    with ``keep_namespaces``); other inert objects become a
    ``{"__inert__": "module.name"}`` marker (we never need their contents).
    Nesting deeper than :data:`MAX_CONFIG_DEPTH`, or more than
    :data:`MAX_CONFIG_NODES` values once shared references are expanded (a
    "billion laughs" configuration), raise :class:`ResourceLimitError`.
    """
    budget = [MAX_CONFIG_NODES]

    def walk(obj: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise ResourceLimitError(source, "the number of values in its configuration", MAX_CONFIG_NODES)
        if depth > MAX_CONFIG_DEPTH:
            raise ResourceLimitError(source, "the nesting of its configuration", MAX_CONFIG_DEPTH)
        if isinstance(obj, Inert):
            state = obj.state
            if isinstance(state, dict) and "_content" in state:  # omegaconf DictConfig/ListConfig
                return walk(state["_content"], depth + 1)
            if isinstance(state, dict) and "_val" in state:  # omegaconf value node
                return walk(state["_val"], depth + 1)
            if obj._inert_module.startswith(("enum", "fairseq")) and len(obj.args) == 1 and state is None:
                return walk(obj.args[0], depth + 1)  # Enum members pickle as cls(value)
            return {"__inert__": obj.qualname}
        if isinstance(obj, argparse.Namespace):
            plain = {k: walk(v, depth + 1) for k, v in vars(obj).items()}
            return argparse.Namespace(**plain) if keep_namespaces else plain
        if isinstance(obj, dict):
            return {k: walk(v, depth + 1) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v, depth + 1) for v in obj]
        if isinstance(obj, tuple):
            return tuple(walk(v, depth + 1) for v in obj)
        return obj

    return walk(obj, 0)
