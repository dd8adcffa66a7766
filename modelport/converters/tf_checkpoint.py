"""Read TensorFlow checkpoints (tensor bundles) without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus ``PREFIX.data-SSSSS-of-NNNNN``
shards. The index is a LevelDB-style SSTable (data blocks of prefix-compressed
key/value entries, an index block pointing at them, a 48-byte footer ending in
a magic number); its key ``""`` holds a ``BundleHeaderProto`` and every other
key is a tensor name whose value is a ``BundleEntryProto`` (dtype, shape,
shard, offset, size, crc32c). Tensor bytes in the shards are raw little-endian
arrays. Both protobuf messages are decoded here by hand (a few varint and
length-delimited fields), so neither TensorFlow nor protobuf is needed.
Checksums (masked crc32c, as LevelDB stores them) are computed by
``google-crc32c``; every block and every tensor is checked.

Formats: tensorflow/core/util/tensor_bundle/tensor_bundle.proto and
tensorflow/core/lib/io/{table,block,format}.cc.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import torch

from modelport.errors import CorruptCheckpointError, InvalidInputError, UnsupportedCheckpointError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1-byte compression type + 4-byte masked crc32c
# DataType enum (tensorflow/core/framework/types.proto) -> torch dtype
DTYPES: dict[int, torch.dtype] = {
    1: torch.float32, 2: torch.float64, 3: torch.int32, 4: torch.uint8, 5: torch.int16, 6: torch.int8,
    9: torch.int64, 10: torch.bool, 14: torch.bfloat16, 17: torch.uint16, 19: torch.float16,
    22: torch.uint32, 23: torch.uint64,
}
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
               8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16"}


# ---------------------------------------------------------------------------
# crc32c (Castagnoli), masked as LevelDB/TensorFlow store it

def crc32c(data: bytes) -> int:
    """The crc32c of ``data`` (google-crc32c's C implementation)."""
    return int(google_crc32c.value(data))


def unmask_crc(masked: int) -> int:
    """The crc32c a LevelDB/TensorFlow masked checksum stands for."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------------------
# protobuf wire format, just enough for the two bundle messages


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialized message."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise _Malformed("truncated fixed64")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise _Malformed("truncated length-delimited field")
            value, pos = buf[pos: pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise _Malformed("truncated fixed32")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        out.append((num, wire, value))
    return out


@dataclass(frozen=True)
class BundleEntry:
    """One ``BundleEntryProto``: where a tensor lives and what it is."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def _shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for num, _, value in _fields(buf):
        if num == 2:  # TensorShapeProto.dim
            size = 0
            for dnum, _, dval in _fields(value):  # type: ignore[arg-type]
                if dnum == 1:
                    size = dval if dval < 1 << 63 else dval - (1 << 64)  # type: ignore[operator]
            dims.append(int(size))
        elif num == 3 and value:
            raise _Malformed("unknown rank")
    return tuple(dims)


def parse_entry(name: str, buf: bytes) -> BundleEntry:
    dtype = shard = offset = size = 0
    crc: int | None = None
    shape: tuple[int, ...] = ()
    sliced = False
    for num, _, value in _fields(buf):
        if num == 1:
            dtype = int(value)  # type: ignore[arg-type]
        elif num == 2:
            shape = _shape(value)  # type: ignore[arg-type]
        elif num == 3:
            shard = int(value)  # type: ignore[arg-type]
        elif num == 4:
            offset = int(value)  # type: ignore[arg-type]
        elif num == 5:
            size = int(value)  # type: ignore[arg-type]
        elif num == 6:
            crc = int(value)  # type: ignore[arg-type]
        elif num == 7:
            sliced = True
    return BundleEntry(name, dtype, shape, shard, offset, size, crc, sliced)


def parse_header(buf: bytes) -> tuple[int, int]:
    """(num_shards, endianness) of the ``BundleHeaderProto``; 0 is little-endian."""
    num_shards, endianness = 1, 0
    for num, _, value in _fields(buf):
        if num == 1:
            num_shards = int(value)  # type: ignore[arg-type]
        elif num == 2:
            endianness = int(value)  # type: ignore[arg-type]
    return num_shards, endianness


# ---------------------------------------------------------------------------
# the SSTable


def _block(data: bytes, offset: int, size: int) -> bytes:
    """Contents of the block at ``offset``, its checksum verified."""
    end = offset + size
    if offset < 0 or end + BLOCK_TRAILER_SIZE > len(data):
        raise _Malformed("a block handle points past the end of the file")
    contents = data[offset:end]
    ctype = data[end]
    if ctype != 0:
        raise _Malformed(f"block compression type {ctype} (only uncompressed tables are written by TensorFlow)")
    stored = struct.unpack_from("<I", data, end + 1)[0]
    if crc32c(data[offset: end + 1]) != unmask_crc(stored):
        raise _Malformed("block checksum mismatch")
    return contents


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _Malformed("block too short")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise _Malformed("bad restart array")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + vlen > limit:
            raise _Malformed("bad block entry")
        key = key[:shared] + block[pos: pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos: pos + vlen]))
        pos += vlen
    return entries


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """All key/value pairs of an SSTable, in order."""
    if len(data) < FOOTER_SIZE:
        raise _Malformed("file shorter than the table footer")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
        raise _Malformed("bad table magic number")
    _, _, pos = _handle(footer)  # metaindex handle: unused by TensorFlow bundles
    index_offset, index_size, _ = _handle(footer, pos)
    out: list[tuple[bytes, bytes]] = []
    for _, handle in _block_entries(_block(data, index_offset, index_size)):
        offset, size, _ = _handle(handle)
        out.extend(_block_entries(_block(data, offset, size)))
    return out


# ---------------------------------------------------------------------------
# the reader


def resolve_prefix(source: str | os.PathLike[str]) -> Path:
    """``PREFIX`` from a directory (its ``checkpoint`` file or its single
    ``*.index``), a ``PREFIX.index`` path or ``PREFIX`` itself."""
    path = Path(source)
    if path.is_file() and path.suffix == ".index":
        return path.with_suffix("")
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            for line in state.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "model_checkpoint_path":
                    name = value.strip().strip('"')
                    prefix = Path(name) if os.path.isabs(name) else path / name
                    if Path(f"{prefix}.index").is_file():
                        return prefix
                    raise InvalidInputError(f"`{state}` names `{name}`, but `{prefix}.index` does not exist")
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if not indexes:
            raise InvalidInputError(f"`{path}` has no TensorFlow checkpoint (*.index)")
        raise InvalidInputError(f"`{path}` has several checkpoints ({', '.join(p.name for p in indexes)}); "
                                "point at one PREFIX.index")
    if Path(f"{path}.index").is_file():
        return path
    raise InvalidInputError(f"`{source}` is not a TensorFlow checkpoint (no `{path}.index`)")


class TFCheckpoint(Mapping[str, torch.Tensor]):
    """The tensors of one TensorFlow checkpoint, read lazily by name (a
    read-only mapping: a tensor is read from its shard when looked up)."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.prefix = resolve_prefix(source)
        self.index_path = Path(f"{self.prefix}.index")
        data = self.index_path.read_bytes()
        try:
            table = read_table(data)
            if not table or table[0][0] != b"":
                raise _Malformed("the bundle header entry is missing")
            self.num_shards, endianness = parse_header(table[0][1])
            self.entries: dict[str, BundleEntry] = {}
            for key, value in table[1:]:
                name = key.decode("utf-8")
                self.entries[name] = parse_entry(name, value)
        except (_Malformed, UnicodeDecodeError, struct.error) as e:
            raise CorruptCheckpointError(str(self.index_path), f"it is not a valid checkpoint index ({e})") from None
        if endianness != 0:
            raise UnsupportedCheckpointError(str(self.index_path), ["big-endian checkpoints are not supported "
                                                                    "(supported: little-endian)"])
        problems = [f"variable `{e.name}` is sliced (partitioned) (supported: whole tensors)"
                    for e in self.entries.values() if e.sliced]
        problems += [f"variable `{e.name}` has dtype {DTYPE_NAMES.get(e.dtype, e.dtype)} (supported: "
                     "numeric tensors)" for e in self.entries.values() if e.dtype not in DTYPES]
        if problems:
            raise UnsupportedCheckpointError(str(self.index_path), problems)

    def shard_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def shard_paths(self) -> list[Path]:
        return [self.shard_path(i) for i in range(self.num_shards)]

    def check_shards(self) -> None:
        """Every data shard the index refers to exists and is long enough."""
        lengths: dict[int, int] = {}
        for e in self.entries.values():
            lengths[e.shard_id] = max(lengths.get(e.shard_id, 0), e.offset + e.size)
        for shard, needed in sorted(lengths.items()):
            path = self.shard_path(shard)
            if not path.is_file():
                raise CorruptCheckpointError(str(path), "the data shard is missing (the index refers to it)")
            if path.stat().st_size < needed:
                raise CorruptCheckpointError(str(path), f"the data shard is truncated ({path.stat().st_size} "
                                                        f"bytes, the index needs {needed})")

    def names(self) -> list[str]:
        return list(self.entries)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.read(name)

    def __contains__(self, name: object) -> bool:
        return name in self.entries  # without reading the tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, name: str) -> torch.Tensor:
        """The tensor ``name``, bit for bit as stored."""
        e = self.entries[name]
        dtype = DTYPES[e.dtype]
        numel = 1
        for d in e.shape:
            numel *= d
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel * itemsize != e.size:
            raise CorruptCheckpointError(str(self.index_path), f"variable `{name}` has shape {list(e.shape)} "
                                                               f"but {e.size} bytes")
        path = self.shard_path(e.shard_id)
        try:
            with open(path, "rb") as f:
                f.seek(e.offset)
                raw = f.read(e.size)
        except OSError as err:
            raise CorruptCheckpointError(str(path), err.strerror or str(err)) from None
        if len(raw) != e.size:
            raise CorruptCheckpointError(str(path), f"the data shard is truncated (variable `{name}`)")
        if e.crc32c is not None and crc32c(raw) != unmask_crc(e.crc32c):
            raise CorruptCheckpointError(str(path), f"checksum mismatch in variable `{name}`")
        if numel == 0:
            return torch.empty(e.shape, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(e.shape)
