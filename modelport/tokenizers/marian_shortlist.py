"""Marian's text lexical shortlist file (``--shortlist FILE FIRST BEST THRESHOLD``):
its values and its entries, read without torch.

Here, below both the converters and the search, so that ``modelport convert``
checks a decoder.yml's shortlist with the same reader ``translate`` uses
(:mod:`modelport.generation.shortlist` holds Marian's rule that turns the
entries into each batch's list). The file is a stream of ``TARGET SOURCE
PROB`` triples (``extract-lex``'s ``lex.s2t``), plain or gzipped; Marian's
binary shortlist (its magic, or a ``*.bin`` name) is another generator and
is refused.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from modelport.errors import InvalidInputError, first_line

# marian-dev src/data/shortlist.h: BINARY_SHORTLIST_MAGIC (little-endian uint64)
BINARY_MAGIC = (0xF11A48D5013417F5).to_bytes(8, "little")
GZIP_MAGIC = b"\x1f\x8b"
# Marian's defaults for FIRST and BEST (LexicalShortlistGenerator)
DEFAULT_FIRST = 100
DEFAULT_BEST = 100
# a longer line is not a lex.s2t entry; reading stops there instead of buffering it
MAX_LINE_BYTES = 1 << 16
# a gzipped shortlist may inflate to this many times its size (text gzips 3-6x; a bomb of repeated lines,
# 5,000x, held 546 MB after 30 s), or to MIN_INFLATED_BYTES whatever its size
MAX_INFLATION = 50
MIN_INFLATED_BYTES = 16 << 20


@dataclass(frozen=True)
class ShortlistSpec:
    """The values of ``--shortlist``: a text shortlist file, then Marian's
    ``first`` (default 100), ``best`` (default 100) and ``threshold`` (default 0)."""

    path: Path
    first: int = DEFAULT_FIRST
    best: int = DEFAULT_BEST
    threshold: float = 0.0

    @classmethod
    def parse(cls, values: str | os.PathLike[str] | Sequence[Any]) -> ShortlistSpec:
        """From Marian's spelling: a path, or a path followed by up to three numbers."""
        if isinstance(values, ShortlistSpec):
            return values
        vals = [values] if isinstance(values, (str, os.PathLike)) else list(values)
        if not 1 <= len(vals) <= 4:
            raise InvalidInputError(f"`shortlist` must be FILE [FIRST [BEST [THRESHOLD]]], but is {vals!r}")
        path = Path(os.fspath(vals[0]))
        first = _int(vals[1], "first") if len(vals) > 1 else DEFAULT_FIRST
        best = _int(vals[2], "best") if len(vals) > 2 else DEFAULT_BEST
        threshold = float(np.float32(_number(vals[3], "threshold"))) if len(vals) > 3 else 0.0
        return cls(path, first, best, threshold)


def _number(value: Any, name: str) -> float:
    """``value`` as a finite float (Marian's ``std::stof``), named in the error."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        raise InvalidInputError(f"the shortlist's `{name}` must be a finite number, but is {value!r}")
    return out


def _int(value: Any, name: str) -> int:
    """``value`` as an integer >= 0 (Marian's ``std::stoi``, which would also take "5.5" as 5)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise InvalidInputError(f"the shortlist's `{name}` must be an integer >= 0, but is {value!r}")
    return int(number)


def check_shortlist_file(path: Path) -> None:
    """Refuse a shortlist path that is missing or not a regular file, saying which."""
    if path.is_dir():
        raise InvalidInputError(f"shortlist file `{path}` must be a file, but is a directory")
    if not path.is_file():
        raise InvalidInputError(f"shortlist file `{path}` does not exist")


def open_shortlist(path: Path) -> BinaryIO:
    """The file's bytes (gunzipped when it starts with gzip's magic, as
    Marian's streams read it); missing files and binary shortlists are refused."""
    check_shortlist_file(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head == BINARY_MAGIC or path.suffix == ".bin":
        raise InvalidInputError(f"`{path}` is a binary shortlist (supported: Marian's text shortlist, "
                                "TARGET SOURCE PROB lines)")
    return gzip.open(path, "rb") if head.startswith(GZIP_MAGIC) else open(path, "rb")  # type: ignore[return-value]


def read_entries(path: Path, source_vocab: Mapping[str, int], target_vocab: Mapping[str, int],
                  source_unk: int, target_unk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source ids, target ids, float32 probabilities) of the file's entries, in
    file order, ``NULL`` entries left out; 12 bytes per entry."""
    src, trg, prob = array("i"), array("i"), array("f")
    with open_shortlist(path) as f:
        gzipped = isinstance(f, gzip.GzipFile)
        limit = max(MIN_INFLATED_BYTES, MAX_INFLATION * path.stat().st_size)
        lineno = inflated = 0
        while True:
            try:
                raw = f.readline(MAX_LINE_BYTES + 1)
            except (EOFError, OSError, zlib.error) as e:  # a truncated or damaged gzip (BadGzipFile: an OSError)
                raise InvalidInputError(f"{path}: the gzipped shortlist cannot be read after line {lineno} "
                                        f"({first_line(e, 100)})") from None
            if not raw:
                break
            lineno += 1
            inflated += len(raw)
            if gzipped and inflated > limit:
                raise InvalidInputError(f"{path}: the gzipped shortlist inflates past {limit} bytes, "
                                        f"{MAX_INFLATION}x its size, by line {lineno}: refused as damaged "
                                        "or a gzip bomb")
            if len(raw) > MAX_LINE_BYTES:
                raise InvalidInputError(f"{path}:{lineno}: a shortlist line must be at most {MAX_LINE_BYTES} bytes")
            try:  # split at ASCII whitespace only, as Marian's `>>` does (a piece may hold U+00A0)
                fields = [field.decode("utf-8") for field in raw.split()]
            except UnicodeDecodeError:
                raise InvalidInputError(f"{path}:{lineno}: a shortlist must be UTF-8 text") from None
            if not fields:
                continue
            p = math.nan
            if len(fields) == 3:
                try:
                    p = float(fields[2])
                except ValueError:
                    pass
            if not math.isfinite(p):
                raise InvalidInputError(f"{path}:{lineno}: a shortlist line must be `TARGET SOURCE PROB`, "
                                        f"but is {' '.join(fields)[:80]!r}")
            if fields[0] == "NULL" or fields[1] == "NULL":
                continue
            trg.append(target_vocab.get(fields[0], target_unk))
            src.append(source_vocab.get(fields[1], source_unk))
            prob.append(p)
    return (np.frombuffer(src, dtype=np.int32), np.frombuffer(trg, dtype=np.int32),
            np.frombuffer(prob, dtype=np.float32))


__all__ = ["BINARY_MAGIC", "DEFAULT_BEST", "DEFAULT_FIRST", "GZIP_MAGIC", "ShortlistSpec", "check_shortlist_file",
           "open_shortlist", "read_entries"]
