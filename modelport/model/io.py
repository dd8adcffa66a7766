"""Save and load a ported model folder.

Weights are written as safetensors, one tensor at a time, straight from the
tensors the converter hands over, so conversion never holds a second copy of
the weights (``safetensors.torch.save_file`` serialises everything into one
bytes buffer first, which doubles peak memory on a 200M-parameter model; the
format is simple enough to stream: an 8-byte header length, a JSON header,
then raw little-endian data). Files written here are read back with the
official ``safetensors`` reader.

Tied weights are stored once; the other names are recorded as aliases in the
header metadata and the index file and restored on load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from modelport.errors import WRITE_ERRNOS, InvalidInputError, OutputExistsError, OutputWriteError

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
DEFAULT_SHARD_BYTES = 2 * 1024**3

_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int8: "I8", torch.uint8: "U8", torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
    torch.bool: "BOOL",
}


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def dedupe_tied(tensors: Iterable[tuple[str, torch.Tensor]]) -> tuple[list[tuple[str, torch.Tensor]], dict[str, str]]:
    """Keep the first name of every tensor that appears under several names.

    Returns the unique ``(name, tensor)`` pairs and ``{alias: kept_name}``.
    """
    seen: dict[tuple[int, int, tuple[int, ...], torch.dtype], str] = {}
    unique: list[tuple[str, torch.Tensor]] = []
    aliases: dict[str, str] = {}
    for name, t in tensors:
        key = (t.untyped_storage().data_ptr() if t.device.type != "meta" else id(t), t.storage_offset(),
               tuple(t.shape), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        unique.append((name, t))
    return unique, aliases


def _write_shard(path: Path, tensors: list[tuple[str, torch.Tensor]], metadata: dict[str, str]) -> None:
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, t in tensors:
        if t.dtype not in _DTYPES:
            raise InvalidInputError(f"tensor `{name}` has dtype {t.dtype}, which safetensors cannot store")
        n = _nbytes(t)
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format aligns data to 8 bytes
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for _, t in tensors:
            if t.numel() == 0:
                continue
            # one tensor at a time: a contiguous copy only when the view needs it
            flat = t.detach().contiguous().reshape(-1).view(torch.uint8)
            f.write(memoryview(flat.numpy()))
        f.flush()
        os.fsync(f.fileno())


def save_weights(directory: Path, tensors: Iterable[tuple[str, torch.Tensor]], *,
                 shard_bytes: int = DEFAULT_SHARD_BYTES, metadata: dict[str, str] | None = None,
                 progress: Any = None) -> dict[str, Any]:
    """Write ``tensors`` into ``directory`` as one or more safetensors files.

    Returns a summary: files, total bytes, tensor count and aliases.
    """
    unique, aliases = dedupe_tied(tensors)
    meta = {"format": "pt", "modelport_aliases": json.dumps(aliases, sort_keys=True)}
    meta.update(metadata or {})
    shards: list[list[tuple[str, torch.Tensor]]] = [[]]
    size = 0
    for name, t in unique:
        n = _nbytes(t)
        if shards[-1] and size + n > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, t))
        size += n
    total = sum(_nbytes(t) for _, t in unique)
    files: list[str] = []
    if len(shards) == 1:
        _write_shard(directory / WEIGHTS_NAME, shards[0], meta)
        files.append(WEIGHTS_NAME)
        if progress is not None:
            progress.update(len(shards[0]))
    else:
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            _write_shard(directory / fname, shard, meta)
            files.append(fname)
            weight_map.update({name: fname for name, _ in shard})
            if progress is not None:
                progress.update(len(shard))
        index = {"metadata": {"total_size": total, "modelport_aliases": aliases}, "weight_map": weight_map}
        (directory / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        files.append(INDEX_NAME)
    return {"files": files, "bytes": total, "tensors": len(unique), "aliases": aliases}


def weight_files(directory: Path) -> list[Path]:
    index = directory / INDEX_NAME
    if index.exists():
        data = json.loads(index.read_text())
        return [directory / f for f in sorted(set(data["weight_map"].values()))]
    single = directory / WEIGHTS_NAME
    if not single.exists():
        raise InvalidInputError(f"`{directory}` has no {WEIGHTS_NAME} or {INDEX_NAME}")
    return [single]


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Read every tensor of a ported folder, aliases restored (as the same tensor)."""
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for path in weight_files(directory):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            aliases.update(json.loads(meta.get("modelport_aliases", "{}")))
            for key in f.keys():
                out[key] = f.get_tensor(key)
    for alias, kept in aliases.items():
        out[alias] = out[kept]
    return out


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"`{path}` does not exist (is `{path.parent}` a ported model folder?)") from None
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"`{path}` is not valid JSON: {e}") from None


def output_exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is taken, a symlink (dangling or not) included."""
    return os.path.lexists(path)


def _write_error(output: str | os.PathLike[str], final: Path, err: OSError,
                 anywhere: bool = False) -> OutputWriteError | None:
    """A one-line :class:`OutputWriteError` for a write the file system refused
    under the output's folder (``anywhere``: on the way to it); None for
    anything else, which is a bug."""
    if err.errno not in WRITE_ERRNOS:
        return None
    if not anywhere and err.filename is not None \
            and not Path(os.path.abspath(err.filename)).is_relative_to(final.parent):
        return None  # e.g. an input that cannot be read
    return OutputWriteError(str(output), f"{err.strerror or err} (nothing was written)", err.errno)


@contextlib.contextmanager
def atomic_output_dir(output: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``output``; rename it into place on success.

    An existing ``output`` (a symlink too, even a dangling one) is refused
    unless ``force``, which replaces the link itself, never its target. On
    failure the temporary folder is removed, so nothing half-written is ever
    left behind; a write the file system refuses (read-only, full, no
    permission) is an :class:`OutputWriteError`.
    """
    final = Path(output).absolute()
    if output_exists(final) and not force:
        raise OutputExistsError(str(output))
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    except OSError as e:
        raise (_write_error(output, final, e, anywhere=True) or e) from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield tmp
        if output_exists(final):
            backup = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.rename(final, backup / "old")
            os.rename(tmp, final)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        converted = _write_error(output, final, e) if isinstance(e, OSError) else None
        if converted is not None:
            raise converted from None
        raise
