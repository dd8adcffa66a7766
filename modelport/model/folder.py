"""The ported folder: its layout, reading it safely, writing it atomically.

One type serves every consumer (converters, passes, exporters, the model
card, publishing): :class:`PortedFolder` is a checked folder (read with
:meth:`PortedFolder.open`), :func:`write_folder` writes a new one (to a
temporary sibling renamed into place, so nothing half-written is left) through
a :class:`FolderWriter`, and :func:`check_writable` is the one "output exists"
check. The file names are the constants below; nothing else spells them.

Reading is safe against an edited or downloaded folder.

A ported folder is a directory anyone can edit, and one downloaded from the
Hub is untrusted input. :func:`check_folder` reads only its JSON files and the
safetensors *headers* and checks, before anything is built or allocated:

- ``config.json`` is a JSON object of the expected schema (folder format
  version, a ``model`` object that :class:`Seq2SeqConfig` accepts with the right
  JSON types, ``ensemble_size``, ``quantization``); ``generation_config.json``
  and ``conversion.json`` are JSON objects;
- every weight file is a readable safetensors file: the header length fits the
  file, the header is a JSON object, every entry has a known dtype, a shape and
  offsets that tile the data exactly;
- a sharded index is a JSON object whose ``weight_map`` names files inside the
  folder (a plain file name: no ``..``, no absolute path, no symlink that
  leaves the folder) that hold exactly the tensors it maps to them;
- the alias metadata is JSON and every alias points at a stored tensor;
- the layer counts (and FFN depth and ensemble size) of config.json are the
  ones the stored tensor names hold, so a config claiming 200000 layers is
  refused before a 200000-layer model is built; a computed sinusoidal position
  table stays small;
- every weight has the shape and dtype the config (and the folder's
  quantization mode) implies, and no weight is missing or extra.

Every problem is an :class:`InvalidPortedFolderError` with one line.
:func:`load_checked_weights` then reads the tensors of a checked folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from modelport.errors import (ConfigError, InvalidInputError, InvalidPortedFolderError, NotAPortedFolderError,
                              OutputExistsError, OutputWriteError)
from modelport.files import (copy_folder_files, file_in_folder, named_path, not_a_folder, output_folder_problem,
                             plain_file_name)
from modelport.model.config import CONFIG_FORMAT_VERSION, Seq2SeqConfig
from modelport.model.io import (INDEX_NAME, WEIGHTS_NAME, atomic_output_dir, output_exists, read_json, save_weights,
                                weight_files, write_json)
from modelport.model.transformer import Seq2SeqModel
from modelport.reports.export import EXPORT_REPORT_NAME
from modelport.reports.parity import PARITY_REPORT_STEM, ParityReport
from modelport.reports.passes import PASS_REPORT_STEM, PassReport

# the layout of a ported folder (DESIGN.md, "A ported model folder")
CONFIG_NAME = "config.json"
GENERATION_NAME = "generation_config.json"
CONVERSION_NAME = "conversion.json"
TOKENIZER_DIR = "tokenizer"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
CARD_NAME = "README.md"

QUANTIZATION_MODES = ("int8", "int8-weights", "fp16", "bf16")
SCALE_SUFFIX = "_scale"  # int8 modes: ``<weight>_scale`` holds one fp32 scale per row

# safetensors refuses headers over 100 MB itself; a larger claim is damage
MAX_HEADER_BYTES = 100 * 1024 * 1024
# the sinusoidal position table is computed at load, not stored: keep it small
MAX_SINUSOIDAL_ELEMENTS = 1 << 26
MAX_JSON_BYTES = 64 * 1024 * 1024
# no size, count or id of a real model comes near this; larger ones overflow tensor shapes
MAX_CONFIG_INT = 2**31 - 1

_ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1}
_TORCH_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                torch.bool: "BOOL"}
_LAYER = re.compile(r"(?:^|\.)(encoder|decoder)\.layers\.(\d+)\.")
_INNER = re.compile(r"\.ffn\.inner\.(\d+)\.")
_MEMBER = re.compile(r"members\.(\d+)\.")


@dataclass(frozen=True)
class TensorEntry:
    """One stored tensor, from its file's header."""

    file: Path
    dtype: str
    shape: tuple[int, ...]


@dataclass
class PortedFolder:
    """A ported folder whose files passed :func:`check_folder` (open one with
    :meth:`open`); its JSON files are read, its weights are not."""

    path: Path
    data: dict[str, Any]  # config.json
    config: Seq2SeqConfig
    ensemble_size: int
    quantization: str | None
    generation_config: dict[str, Any]
    conversion: dict[str, Any]
    files: list[Path]
    tensors: dict[str, TensorEntry] = field(repr=False)
    aliases: dict[str, str] = field(repr=False)

    @property
    def parameters(self) -> int:
        """Parameters the folder stores, every ensemble member included: each
        stored tensor once (tied names are aliases, not counted again), an
        int8 weight by its logical element count, its per-row scales not at
        all; read from the safetensors headers, so the same number for the
        fp32, fp16/bf16 and int8 copies of one model."""
        return sum(math.prod(e.shape) for name, e in self.tensors.items() if not name.endswith(SCALE_SUFFIX))

    @property
    def parameters_per_member(self) -> int:
        """:attr:`parameters` of one ensemble member."""
        return self.parameters // self.ensemble_size

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PortedFolder:
        """Check the folder at ``path`` (see :func:`check_folder`)."""
        return check_folder(path)

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / TOKENIZER_DIR

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weight files (what a download of the weights costs)."""
        return sum(p.stat().st_size for p in self.files)

    def load_weights(self) -> dict[str, torch.Tensor]:
        """Every stored tensor, aliases restored (see :func:`load_checked_weights`)."""
        return load_checked_weights(self)

    def parity_report(self) -> ParityReport | None:
        """See :func:`parity_report`."""
        return parity_report(self.path)

    def pass_report(self) -> PassReport | None:
        """See :func:`pass_report`."""
        return pass_report(self.path)


CheckedFolder = PortedFolder  # the name this type had before it also described writing


def folder_weight_bytes(directory: Path) -> int:
    """Bytes of the weight files of a ported folder that is not checked (yet),
    e.g. one being written."""
    return sum(p.stat().st_size for p in weight_files(directory))


def check_writable(output: str | os.PathLike[str], force: bool,
                   reads: Iterable[str | os.PathLike[str]] = ()) -> None:
    """The one "output exists" check: raise :class:`OutputExistsError` when
    ``output`` is taken (a symlink, even a dangling one, included) and not ``force``.
    Commands call it before long work, so a taken output fails at once.

    ``reads``: what the command reads (its model folder or checkpoint). An output
    that is one of them, a folder holding one, or an existing path inside one, is
    refused whatever ``force`` says: writing it would delete the input (``export onnx ported ported --force``
    would leave the export and no ported folder)."""
    for source in reads:
        overlap = _overlap(output, source)
        if overlap:
            raise InvalidInputError(f"output `{output}` {overlap} the input `{source}`: writing the output would "
                                    "delete it; choose another output")
    if output_exists(output) and not force:
        raise OutputExistsError(str(output))
    problem = output_folder_problem(os.path.dirname(os.path.abspath(output)))
    if problem is not None:  # a file where its folder would be: before the work, not at the final rename
        raise OutputWriteError(str(output), f"its folder cannot be made there ({problem})", errno.ENOTDIR)


def _overlap(output: str | os.PathLike[str], source: str | os.PathLike[str]) -> str | None:
    """How writing ``output`` would delete ``source`` (an existing path): "is" (it replaces
    ``source`` itself), "holds" (a folder holding it), "is a part of" (it replaces something
    inside the folder ``source``), or None (not at all). An output is replaced
    as named, its folder resolved: a symlink output is replaced itself, never its target
    (:func:`~modelport.model.io.atomic_output_dir`)."""
    if not os.path.lexists(source):  # not a local path (a Hub id the caller resolves later)
        return None
    written = named_path(output)
    real = Path(source).resolve()
    if real == written:
        return "is"
    if written in real.parents:
        return "holds"
    # a part of an input folder, replaced by --force: `export onnx port port/tokenizer --force` deleted the tokenizer
    return "is a part of" if real in written.parents and os.path.lexists(written) else None


@dataclass
class FolderWriter:
    """A ported folder being written into ``path`` (a temporary sibling of the
    output, see :func:`write_folder`); each method writes one part of the layout."""

    path: Path

    def write_json(self, name: str, data: Any) -> Path:
        write_json(self.path / name, data)
        return self.path / name

    def write_config(self, config: Seq2SeqConfig | Mapping[str, Any], *, source_format: str,
                     ensemble_size: int = 1, quantization: Mapping[str, Any] | None = None) -> None:
        """``config.json``: the folder format version, provenance format, ensemble size,
        quantization mode (when quantized) and the model configuration."""
        model = config.to_dict() if isinstance(config, Seq2SeqConfig) else dict(config)
        data: dict[str, Any] = {"modelport_format_version": CONFIG_FORMAT_VERSION, "source_format": source_format,
                                "ensemble_size": ensemble_size}
        if quantization is not None:
            data["quantization"] = dict(quantization)
        data["model"] = model
        self.write_json(CONFIG_NAME, data)

    def write_config_data(self, data: Mapping[str, Any]) -> None:
        """``config.json`` as given (a pass that keeps another folder's config data)."""
        self.write_json(CONFIG_NAME, dict(data))

    def write_weights(self, tensors: Iterable[tuple[str, torch.Tensor]], **options: Any) -> dict[str, Any]:
        """The weights (see :func:`modelport.model.io.save_weights` for ``options``);
        returns the summary ``conversion.json`` records."""
        return save_weights(self.path, list(tensors), **options)

    def write_generation(self, data: Mapping[str, Any]) -> None:
        self.write_json(GENERATION_NAME, dict(data))

    def write_conversion(self, data: Mapping[str, Any]) -> None:
        self.write_json(CONVERSION_NAME, dict(data))

    def write_tokenizer(self, files: Mapping[str, Path], config: Mapping[str, Any]) -> None:
        """``tokenizer/``: ``files`` (name in the folder -> source file) copied, and its config."""
        directory = self.path / TOKENIZER_DIR
        directory.mkdir()
        for name, source in files.items():
            shutil.copyfile(source, directory / name)
        write_json(directory / TOKENIZER_CONFIG_NAME, dict(config))

    def copy_from(self, source: Path, *, replace_tokenizer_files: Mapping[str, str | dict[str, Any]] | None = None
                  ) -> None:
        """``source``'s tokenizer folder and generation defaults (a pass's output keeps
        them); ``replace_tokenizer_files`` replace files of ``tokenizer/`` (text, or a
        dict written as JSON)."""
        copy_folder_files(source / TOKENIZER_DIR, self.path / TOKENIZER_DIR)
        for name, content in (replace_tokenizer_files or {}).items():
            if not plain_file_name(name):  # names the loaded tokenizer read: plain ones
                raise InvalidInputError(f"a tokenizer file must be a plain file name, but is {name!r}")
            target = self.path / TOKENIZER_DIR / name
            if isinstance(content, str):
                target.write_text(content, encoding="utf-8")
            else:
                write_json(target, content)
        shutil.copyfile(source / GENERATION_NAME, self.path / GENERATION_NAME)


@contextlib.contextmanager
def write_folder(output: str | os.PathLike[str], *, force: bool = False) -> Iterator[FolderWriter]:
    """Write a ported folder atomically: yield a :class:`FolderWriter` on a
    temporary sibling of ``output``, renamed into place when the block ends
    without error (see :func:`modelport.model.io.atomic_output_dir`)."""
    with atomic_output_dir(output, force=force) as tmp:
        yield FolderWriter(tmp)


def with_history(conversion: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``conversion`` (a folder's conversion.json) with ``entry``
    appended to its pass history."""
    out = dict(conversion)
    out["history"] = [*out.get("history", []), dict(entry)]
    return out


def read_conversion(folder: Path) -> dict[str, Any]:
    """A folder's ``conversion.json`` (unchecked: for a folder this process wrote)."""
    return read_json(folder / CONVERSION_NAME)


def _fail(folder: Path, problem: str) -> InvalidPortedFolderError:
    return InvalidPortedFolderError(str(folder), problem)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def read_json_object(folder: Path, name: str) -> dict[str, Any]:
    """The JSON object ``folder / name`` of an untrusted folder: a regular file
    inside it (a symlink may not leave it), at most :data:`MAX_JSON_BYTES`,
    UTF-8; anything else is an :class:`InvalidPortedFolderError` naming the file."""
    path = folder / name
    if not path.exists() and not path.is_symlink():
        raise _fail(folder, f"`{name}` is missing (write the folder with `modelport convert`)")
    if not path.is_file():  # a directory, a dangling link, a FIFO or device that would never end
        raise _fail(folder, f"`{name}` must be a regular file")
    _inside(folder, name, "the file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as e:
        raise _fail(folder, f"`{name}` cannot be read ({e.strerror or e})") from None
    if len(raw) > MAX_JSON_BYTES:
        raise _fail(folder, f"`{name}` must be at most {MAX_JSON_BYTES} bytes, but is larger")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _fail(folder, f"`{name}` must be UTF-8 JSON, but has byte 0x{e.object[e.start]:02x} at offset "
                            f"{e.start}") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise _fail(folder, f"`{name}` must be JSON, but is not ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise _fail(folder, f"`{name}` must be a JSON object, but is {_kind(data)}")
    return data


_Report = TypeVar("_Report")


def read_report(folder: Path, stem: str, read: Callable[[dict[str, Any]], _Report], writer: str) -> _Report | None:
    """The folder's ``<stem>.json`` as the typed report ``read`` makes of it,
    None when absent. The file is read as untrusted as config.json is (a
    regular file, bounded size, a JSON object); one that ``read`` cannot take
    is an :class:`InvalidPortedFolderError` saying to run ``writer`` again."""
    name = f"{stem}.json"
    if not os.path.lexists(folder / name):
        return None
    data = read_json_object(folder, name)
    try:
        return read(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _fail(folder, f"`{name}` is not a report modelport wrote ({type(e).__name__}: {e}); "
                            f"run {writer} again") from None


def parity_report(folder: Path) -> ParityReport | None:
    """What ``modelport validate`` last wrote into ``folder``, None if it never did."""
    return read_report(folder, PARITY_REPORT_STEM, ParityReport.from_json, "`modelport validate`")


def pass_report(folder: Path) -> PassReport | None:
    """The report of the pass that wrote ``folder``, None for a folder ``convert`` wrote."""
    return read_report(folder, PASS_REPORT_STEM, PassReport.from_json, "the pass")


def _read_config(folder: Path) -> tuple[dict[str, Any], Seq2SeqConfig, int, str | None]:
    data = read_json_object(folder, CONFIG_NAME)
    version = data.get("modelport_format_version")
    if version != CONFIG_FORMAT_VERSION or isinstance(version, bool):
        raise _fail(folder, f"`modelport_format_version` in {CONFIG_NAME} must be {CONFIG_FORMAT_VERSION} (the "
                            f"version this modelport reads), but is {version!r}"[:300])
    if "model" not in data:
        raise _fail(folder, f"`model` in {CONFIG_NAME} is missing")
    if not isinstance(data["model"], dict):
        raise _fail(folder, f"`model` in {CONFIG_NAME} must be an object, but is {_kind(data['model'])}")
    try:
        config = Seq2SeqConfig.from_dict(data["model"])
    except ConfigError as e:
        raise _fail(folder, f"`model` in {CONFIG_NAME}: {str(e).removeprefix('invalid Seq2SeqConfig: ')}") from None
    for name, value in config.to_dict().items():
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_CONFIG_INT for v in values):
            raise _fail(folder, f"`{name}` in {CONFIG_NAME} must be at most {MAX_CONFIG_INT} in size, but is "
                                f"{value}"[:300])
    ensemble = data.get("ensemble_size", 1)
    if not isinstance(ensemble, int) or isinstance(ensemble, bool) or ensemble < 1:
        raise _fail(folder, f"`ensemble_size` in {CONFIG_NAME} must be an integer >= 1, but is {ensemble!r}"[:300])
    quant = data.get("quantization")
    mode = None
    if quant is not None:
        if not isinstance(quant, dict):
            raise _fail(folder, f"`quantization` in {CONFIG_NAME} must be an object or null, but is {_kind(quant)}")
        mode = quant.get("mode")
        if mode not in QUANTIZATION_MODES:
            raise _fail(folder, f"`quantization.mode` in {CONFIG_NAME} must be one of "
                                f"{', '.join(QUANTIZATION_MODES)}, but is {mode!r}"[:300])
    if not isinstance(data.get("source_format", ""), str):
        raise _fail(folder, f"`source_format` in {CONFIG_NAME} must be a string, but is "
                            f"{_kind(data['source_format'])}")
    if config.positions == "sinusoidal":
        for side in ("source", "target"):
            rows = config.position_table_size(side)
            if rows * config.d_model > MAX_SINUSOIDAL_ELEMENTS:
                raise _fail(folder, f"`max_{side}_positions` in {CONFIG_NAME} must be at most "
                                    f"{MAX_SINUSOIDAL_ELEMENTS // config.d_model - config.position_offset} for a "
                                    f"computed sinusoidal table of width {config.d_model}, but is "
                                    f"{rows - config.position_offset}")
    return data, config, ensemble, mode


# ---------------------------------------------------------------------------
# weight files


def _inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` for a plain file name that stays inside ``folder`` (:func:`file_in_folder`)."""
    try:
        return file_in_folder(folder, name, what)
    except InvalidInputError as e:
        raise _fail(folder, str(e)) from None


def _read_header(folder: Path, path: Path) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """The tensors and metadata of one safetensors file, from its header,
    with every offset checked against the file's size."""
    name = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise _fail(folder, f"`{name}` must start with an 8-byte header length, but has {size} bytes")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise _fail(folder, f"`{name}` header length must fit the file ({size} bytes), but is {n} "
                                    "(truncated or damaged)")
            raw = f.read(n)
    except OSError as e:
        raise _fail(folder, f"`{name}` cannot be read ({e.strerror or e})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _fail(folder, f"`{name}` header must be JSON, but is not (damaged file)") from None
    if not isinstance(header, dict):
        raise _fail(folder, f"`{name}` header must be a JSON object, but is {_kind(header)}")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _fail(folder, f"`{name}` metadata must map strings to strings")
    data_bytes = size - 8 - n
    entries: dict[str, TensorEntry] = {}
    spans = []
    for key, info in header.items():
        what = f"tensor `{key}` in `{name}`"[:200]
        if not isinstance(info, dict):
            raise _fail(folder, f"{what} must be an object, but is {_kind(info)}")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _ITEM_BYTES:
            raise _fail(folder, f"{what} dtype must be one of {', '.join(_ITEM_BYTES)}, but is {dtype!r}"[:300])
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise _fail(folder, f"{what} shape must be a list of sizes, but is {shape!r}"[:300])
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise _fail(folder, f"{what} data_offsets must be two integers, but is {offsets!r}"[:300])
        numel = 1
        for d in shape:
            numel *= d
        start, end = offsets
        if not 0 <= start <= end <= data_bytes or end - start != numel * _ITEM_BYTES[dtype]:
            raise _fail(folder, f"{what} data_offsets must hold {numel * _ITEM_BYTES[dtype]} bytes inside the "
                                f"{data_bytes} data bytes, but are {offsets} (truncated or damaged file)")
        spans.append((start, end, key))
        entries[key] = TensorEntry(path, dtype, tuple(shape))
    pos = 0
    for start, end, key in sorted(spans):
        if start != pos:
            raise _fail(folder, f"tensor `{key}` in `{name}` must start at byte {pos} of the data, but starts at "
                                f"{start} (overlapping or damaged offsets)"[:300])
        pos = end
    if pos != data_bytes:
        raise _fail(folder, f"`{name}` must end after its last tensor ({pos} data bytes), but has {data_bytes}")
    return entries, meta


def _aliases(folder: Path, raw: Any, where: str) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            raise _fail(folder, f"alias metadata `modelport_aliases` in {where} must be JSON, but is not") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise _fail(folder, f"alias metadata `modelport_aliases` in {where} must map names to names")
    return raw


def _weight_entries(folder: Path) -> tuple[list[Path], dict[str, TensorEntry], dict[str, str]]:
    index_path = folder / INDEX_NAME
    aliases: dict[str, str] = {}
    if index_path.exists() or index_path.is_symlink():
        _inside(folder, INDEX_NAME, "the index")
        index = read_json_object(folder, INDEX_NAME)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map \
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
            raise _fail(folder, f"`weight_map` in {INDEX_NAME} must be an object naming each tensor's file")
        files = {f: _inside(folder, f, f"a file of {INDEX_NAME}") for f in sorted(set(weight_map.values()))}
        meta = index.get("metadata") or {}
        if not isinstance(meta, dict):
            raise _fail(folder, f"`metadata` in {INDEX_NAME} must be an object")
        aliases.update(_aliases(folder, meta.get("modelport_aliases", {}), INDEX_NAME))
    else:
        weight_map = None
        files = {WEIGHTS_NAME: _inside(folder, WEIGHTS_NAME, "the weights")}
    tensors: dict[str, TensorEntry] = {}
    for fname, path in files.items():
        entries, meta = _read_header(folder, path)
        aliases.update(_aliases(folder, meta.get("modelport_aliases", "{}"), f"`{fname}`"))
        for key, entry in entries.items():
            if key in tensors:
                raise _fail(folder, f"tensor `{key}` is stored twice (`{tensors[key].file.name}`, `{fname}`)"[:300])
            if weight_map is not None and weight_map.get(key) != fname:
                raise _fail(folder, f"tensor `{key}` is in `{fname}`, but {INDEX_NAME} maps it to "
                                    f"{weight_map.get(key)!r}"[:300])
            tensors[key] = entry
    if weight_map is not None:
        for key, fname in weight_map.items():
            if key not in tensors:
                raise _fail(folder, f"{INDEX_NAME} maps tensor `{key}` to `{fname}`, which does not hold it"[:300])
    for alias, kept in aliases.items():
        if kept not in tensors:
            raise _fail(folder, f"alias `{alias}` points at `{kept}`, which is not a stored tensor"[:300])
        if alias in tensors:
            raise _fail(folder, f"alias `{alias}` is also a stored tensor"[:300])
    return list(files.values()), tensors, aliases


# ---------------------------------------------------------------------------
# the weights against the config


def _members(folder: Path, names: list[str], ensemble: int) -> list[dict[str, str]]:
    """Per ensemble member: ``{name in the model: stored name}``."""
    if ensemble == 1:
        return [{n: n for n in names}]
    members: list[dict[str, str]] = [{} for _ in range(ensemble)]
    for n in names:
        m = _MEMBER.match(n)
        if m is None or int(m.group(1)) >= ensemble:
            raise _fail(folder, f"`ensemble_size` in {CONFIG_NAME} is {ensemble}, but tensor `{n}` belongs to no "
                                "member of it"[:300])
        members[int(m.group(1))][n[m.end():]] = n
    empty = [i for i, m in enumerate(members) if not m]
    if empty:
        raise _fail(folder, f"`ensemble_size` in {CONFIG_NAME} is {ensemble}, but the weights hold no tensors for "
                            f"member {empty[0]}")
    return members


def _is_range(found: set[int], n: int) -> bool:
    """``found == set(range(n))``, without building a range a tampered config made huge."""
    return len(found) == n and (n == 0 or (min(found) == 0 and max(found) == n - 1))


def _check_counts(folder: Path, config: Seq2SeqConfig, names: list[str], ensemble: int) -> None:
    """Layer counts and FFN depth against the stored tensor names, before a
    model of the claimed size is built."""
    if ensemble > 1 and not any(n.startswith("members.") for n in names):
        raise _fail(folder, f"`ensemble_size` in {CONFIG_NAME} must be 1 for these weights (no `members.<i>.` "
                            f"tensors), but is {ensemble}")
    if ensemble > 1:
        found = {int(m.group(1)) for n in names if (m := _MEMBER.match(n))}
        if not _is_range(found, ensemble):
            held = f"{len(found)} members" if _is_range(found, len(found)) else f"members {sorted(found)[:8]}"
            raise _fail(folder, f"`ensemble_size` in {CONFIG_NAME} must match the weights ({held}), but is "
                                f"{ensemble}")
    if ensemble == 1 and names and all(n.startswith("members.") for n in names):
        found = len({_MEMBER.match(n).group(1) for n in names if _MEMBER.match(n)})
        raise _fail(folder, f"`ensemble_size` in {CONFIG_NAME} must be {found} for these weights, but is 1")
    layers: dict[str, set[int]] = {"encoder": set(), "decoder": set()}
    inner: set[int] = set()
    for n in names:
        if m := _LAYER.search(n):
            layers[m.group(1)].add(int(m.group(2)))
        if m := _INNER.search(n):
            inner.add(int(m.group(1)))
    for side, found in layers.items():
        want = getattr(config, f"{side}_layers")
        if not _is_range(found, want):
            held = f"{len(found)} {side} layers" if _is_range(found, len(found)) else \
                f"{side} layers numbered {sorted(found)[:8]}"
            raise _fail(folder, f"`{side}_layers` in {CONFIG_NAME} must match the weights ({held}), but is {want}")
    if not _is_range(inner, config.ffn_depth - 2):
        raise _fail(folder, f"`ffn_depth` in {CONFIG_NAME} must match the weights ({len(inner) + 2} FFN linear "
                            f"layers), but is {config.ffn_depth}")


def _expected(config: Seq2SeqConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    with torch.device("meta"):
        model = Seq2SeqModel(config)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict(keep_vars=True).items()}


_SIZE_FIELDS = ("d_model", "encoder_ffn_dim", "decoder_ffn_dim", "source_vocab_size", "target_vocab_size",
                "head_dim", "max_source_positions", "max_target_positions", "relative_attention_num_buckets",
                "encoder_heads", "decoder_heads")


def _size_source(config: Seq2SeqConfig, want: tuple[int, ...], got: tuple[int, ...]) -> str:
    """Which config.json fields a mismatching shape comes from, e.g. "`d_model` in config.json"."""
    names = []
    for w, g in zip(want, got):
        if w != g:
            names += [f for f in _SIZE_FIELDS if getattr(config, f) in (w, w - config.position_offset)
                      and f not in names]
    shown = ", ".join(f"`{n}` = {getattr(config, n)}" for n in names)
    return f"{shown} in {CONFIG_NAME}" if names else CONFIG_NAME


def _check_shapes(folder: Path, config: Seq2SeqConfig, tensors: dict[str, TensorEntry], aliases: dict[str, str],
                  ensemble: int, mode: str | None) -> None:
    expected = _expected(config)
    stored = {**{k: k for k in tensors}, **aliases}  # name -> the stored tensor behind it
    for member in _members(folder, sorted(stored), ensemble):
        scales = {n[: -len(SCALE_SUFFIX)]: n for n in member if n.endswith(SCALE_SUFFIX)
                  and mode in ("int8", "int8-weights") and n[: -len(SCALE_SUFFIX)] in expected}
        for name, full in sorted(member.items()):
            if name in expected or name in scales.values():
                continue
            raise _fail(folder, f"tensor `{full}` is not part of the model {CONFIG_NAME} describes"[:300])
        for name, (shape, dtype) in expected.items():
            full = member.get(name)
            if full is None:
                raise _fail(folder, f"weight `{name}` is missing from the weight files"[:300])
            entry = tensors[stored[full]]
            want = _TORCH_NAMES[dtype]
            if mode in ("fp16", "bf16") and dtype.is_floating_point:
                want = "F16" if mode == "fp16" else "BF16"
            if name in scales:
                want = "I8"
                scale = tensors[stored[member[scales[name]]]]
                if len(shape) != 2 or scale.dtype != "F32" or scale.shape != shape[:1]:
                    raise _fail(folder, f"scale `{scales[name]}` must be F32 of shape {list(shape[:1])}, but is "
                                        f"{scale.dtype} of shape {list(scale.shape)}"[:300])
            if entry.shape != shape:
                raise _fail(folder, f"weight `{full}` must have shape {list(shape)} (from "
                                    f"{_size_source(config, shape, entry.shape)}), but has {list(entry.shape)}"[:300])
            if entry.dtype != want:
                raise _fail(folder, f"weight `{full}` must be {want}, but is {entry.dtype}"[:300])




def _json_or_empty(path: Path) -> dict[str, Any]:
    """A small JSON object, or {} when the file is missing, large or not one (only used to name things)."""
    try:
        if path.is_file() and path.stat().st_size <= MAX_JSON_BYTES:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RecursionError):
        pass
    return {}


def not_a_port(path: str | os.PathLike[str], *, exports_only: bool = False) -> NotAPortedFolderError | None:
    """The error naming what ``path`` is, when it is a folder modelport reads
    elsewhere than as a ported folder: an ``export onnx``, ``export ct2`` or
    ``export hf`` result, or (unless ``exports_only``) a transformers model folder; else None."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    report = _json_or_empty(folder / EXPORT_REPORT_NAME)
    source = report.get("ported_dir")
    origin = f" (`{source}`)"[:300] if isinstance(source, str) else ""
    back = f"other modelport commands take the ported folder it was exported from{origin}"
    if (folder / "encoder.onnx").is_file() or (folder / "decoder.onnx").is_file():
        return NotAPortedFolderError(
            str(path), "an ONNX export (encoder.onnx + decoder.onnx, written by `modelport export onnx`)",
            f"translate with it (`modelport translate {path}`) or run its graphs with onnxruntime (inputs and "
            f"outputs in {EXPORT_REPORT_NAME}); {back}")
    ct2_vocabulary = any((folder / f"{side}_vocabulary.{ext}").is_file() for side in ("shared", "source")
                         for ext in ("json", "txt"))  # a Marian model.bin has .spm or .yml vocabularies
    if report.get("target") == "ct2" or (folder / "model.bin").is_file() and ct2_vocabulary:
        return NotAPortedFolderError(
            str(path), "a CTranslate2 model directory (model.bin, written by `modelport export ct2`)",
            f"run it with ctranslate2.Translator (its tokenizer is in `{TOKENIZER_DIR}/`); {back}")
    config = _json_or_empty(folder / CONFIG_NAME)
    if "modelport_format_version" in config or not ("architectures" in config or "model_type" in config):
        return None
    arch = config.get("architectures")
    name = arch[0] if isinstance(arch, list) and arch and isinstance(arch[0], str) else config.get("model_type")
    kind = f"a transformers model folder ({str(name)[:80]})"
    if report.get("target") == "hf":
        return NotAPortedFolderError(
            str(path), f"{kind} written by `modelport export hf`",
            f"load it with transformers' AutoModelForSeq2SeqLM and AutoTokenizer, or upload it with "
            f"`modelport publish`; {back}")
    if exports_only:
        return None
    return NotAPortedFolderError(str(path), kind, f"port it first with `modelport convert {path} OUTPUT_DIR` "
                                                  "(T5 folders), then use the ported folder")


def check_folder(path: str | os.PathLike[str]) -> PortedFolder:
    """Check a ported folder without loading its weights (see the module
    docstring); raise :class:`InvalidPortedFolderError` on the first problem."""
    folder = Path(path)
    problem = not_a_folder(folder)
    if problem is not None:
        raise _fail(folder, problem)
    other = not_a_port(folder)
    if other is not None:
        raise other
    data, config, ensemble, mode = _read_config(folder)
    generation = read_json_object(folder, GENERATION_NAME)
    conversion = read_json_object(folder, CONVERSION_NAME)
    for key in ("source_files", "history"):  # lists of records, which inspect, card and publish read
        value = conversion.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(x, dict) for x in value)):
            raise _fail(folder, f"`{key}` of {CONVERSION_NAME} must be a list of objects, but is {_kind(value)}"
                                + (" holding other values" if isinstance(value, list) else ""))
    files, tensors, aliases = _weight_entries(folder)
    _check_counts(folder, config, sorted({**tensors, **aliases}), ensemble)
    _check_shapes(folder, config, tensors, aliases, ensemble, mode)
    return PortedFolder(path=folder, data=data, config=config, ensemble_size=ensemble, quantization=mode,
                         generation_config=generation, conversion=conversion, files=files, tensors=tensors,
                         aliases=aliases)


def load_checked_weights(checked: PortedFolder) -> dict[str, torch.Tensor]:
    """Every tensor of a checked folder, aliases restored as the same tensor."""
    from safetensors import safe_open

    out: dict[str, torch.Tensor] = {}
    for path in checked.files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    out[key] = f.get_tensor(key)
        except Exception as e:  # noqa: BLE001 -- safetensors' own errors (SafetensorError) are not exported types
            raise _fail(checked.path, f"`{path.name}` cannot be read ({str(e).splitlines()[0][:120]})") from None
    for alias, kept in checked.aliases.items():
        out[alias] = out[kept]
    return out
