"""Save and load a ported model folder.

Weights are written with ``safetensors.torch.save_file`` and split into
shards by huggingface_hub's splitter (the one under
``split_torch_state_dict_into_shards``), whose file names and index
(``model-00001-of-0000N.safetensors``, ``model.safetensors.index.json`` with
``weight_map``) transformers reads. The torch wrapper is not called: it sizes
a tensor by its whole storage and imports ``torch.distributed.tensor`` on
first use (+42 MiB RSS, ~1 s); tied tensors are aliases here already, so
each tensor is sized by its own bytes.
modelport once streamed its own writer because ``save_file`` serialised
everything into one bytes buffer first (twice the weights at peak); the
installed safetensors writes straight from the tensors' memory: writing a
400 MiB state dict adds 1.3 MiB to the peak RSS with ``save_file`` and 3.6
MiB with the old streaming writer (safetensors 0.8.0;
``scripts/bench_safetensors_write.py``).

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
from huggingface_hub import split_state_dict_into_shards_factory
from safetensors import safe_open
from safetensors.torch import save_file

from modelport.errors import InvalidInputError, OutputExistsError, OutputWriteError
from modelport.files import ordinary_mode, unwritable

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
DEFAULT_SHARD_BYTES = 2 * 1024**3
# shard names as transformers writes them: model.safetensors alone, model-00001-of-00003.safetensors sharded
_SHARD_PATTERN = WEIGHTS_NAME.replace(".safetensors", "{suffix}.safetensors")
# what a ported folder stores (safetensors knows more; the loaders here were tested with these)
_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.uint8,
                     torch.int16, torch.int32, torch.int64, torch.bool})


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


def _write_shard(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """One safetensors file, flushed to disk before the folder is renamed into place."""
    for name, t in tensors.items():
        if t.dtype not in _DTYPES:
            raise InvalidInputError(f"tensor `{name}` has dtype {t.dtype}, which safetensors cannot store")
    # save_file writes from each tensor's memory; only a non-contiguous view is copied
    save_file({name: t.detach().contiguous() for name, t in tensors.items()}, str(path), metadata=metadata)
    os.chmod(path, ordinary_mode())  # safetensors creates it 0600: unreadable by a serving account beside the rest
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights(directory: Path, tensors: Iterable[tuple[str, torch.Tensor]], *,
                 shard_bytes: int = DEFAULT_SHARD_BYTES, metadata: dict[str, str] | None = None,
                 progress: Any = None) -> dict[str, Any]:
    """Write ``tensors`` into ``directory`` as one or more safetensors files.

    Shards hold at most ``shard_bytes`` each (a larger tensor gets a shard of
    its own), cut by huggingface_hub as transformers cuts them. Returns a
    summary: files, total bytes, tensor count and aliases.
    """
    unique, aliases = dedupe_tied(tensors)
    meta = {"format": "pt", "modelport_aliases": json.dumps(aliases, sort_keys=True)}
    meta.update(metadata or {})
    state = dict(unique)
    split = split_state_dict_into_shards_factory(state, get_storage_size=_nbytes, filename_pattern=_SHARD_PATTERN,
                                                 max_shard_size=shard_bytes)
    total = split.metadata["total_size"]
    files: list[str] = []
    for fname, names in (split.filename_to_tensors or {WEIGHTS_NAME: []}).items():  # no tensors: an empty file
        _write_shard(directory / fname, {name: state[name] for name in names}, meta)
        files.append(fname)
        if progress is not None:
            progress.update(len(names))
    if split.is_sharded:
        # huggingface_hub's index, with the aliases
        index = {"metadata": {**split.metadata, "modelport_aliases": aliases},
                 "weight_map": split.tensor_to_filename}
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
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"`{path}` is not valid JSON: {e}") from None


def output_exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is taken, a symlink (dangling or not) included."""
    return os.path.lexists(path)


def _write_error(output: str | os.PathLike[str], final: Path, err: OSError,
                 anywhere: bool = False) -> OutputWriteError | None:
    """A one-line :class:`OutputWriteError` for a write the file system refused
    under the output's folder (``anywhere``: on the way to it); None for
    anything else, which is a bug."""
    if not anywhere and err.filename is not None \
            and not Path(os.path.abspath(err.filename)).is_relative_to(final.parent):
        return None  # e.g. an input that cannot be read
    return unwritable(output, err, on_the_way=anywhere, note=" (nothing was written)")


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
    os.chmod(tmp, ordinary_mode(directory=True))  # mkdtemp makes it private; the result is an ordinary folder
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
