"""Marian's lexical shortlist (``marian-decoder --shortlist FILE FIRST BEST THRESHOLD``).

OPUS-MT students (Bergamot) decode with a shortlist: per batch the output
layer computes only the rows of a sorted list of target ids, and the search
runs over those. The rule reproduced here is Marian 1.12's text shortlist
(marian-dev ``src/data/shortlist.{h,cpp}``, ``LexicalShortlistGenerator``;
a file starting with the binary shortlist's magic, or named ``*.bin``, is
another generator and is refused):

* the file is a stream of ``TARGET SOURCE PROB`` triples (``extract-lex``'s
  ``lex.s2t``: p(target | source)); an entry naming ``NULL`` on either side
  is skipped; pieces are looked up in the model's vocabularies, an unknown
  one is ``<unk>``; a later entry for the same pair replaces the earlier;
* per source word, the entries sorted by probability, then target id, both
  descending, are kept while fewer than ``BEST`` are kept and the
  probability is above ``THRESHOLD`` (float32, as Marian reads them);
* a batch's list: the target ids ``0 .. FIRST - 1`` (the most frequent
  words of a frequency-sorted vocabulary), the kept targets of every source
  id in the batch (``</s>`` included: Marian pads with it), and, when the
  source and target vocabularies are one file, the source ids themselves;
  then ids ``FIRST, FIRST + 1, ...`` are added until the count is a multiple
  of 8 (for intgemm), and the list is sorted;
* the output layer computes the logits of the listed rows only (matrix rows
  and bias), the log-softmax runs over them, and the beam search ranks the
  listed words (``src/layers/output.cpp``, ``beam_search.cpp``); the
  ensemble here scatters them into a full row of -inf, so the search itself
  is unchanged (the mapping keeps the order of ids, so ties rank alike).

Where Marian's behaviour is undefined or wrong, this is an error instead:
an empty list, padding past the vocabulary's end (``FIRST`` near the
vocabulary size), and
a list holding ``<unk>`` at a position other than its id while ``<unk>`` is
suppressed (Marian then suppresses the word at that position, by the id of
``<unk>``: only possible with ``FIRST <= <unk>``'s id). A source id beyond
the file's largest one has no entries here (Marian reads past its table).
The strict reading of the file (three fields a line) is stricter than
Marian's stream, which stops silently at the first unreadable triple.
"""

from __future__ import annotations

import gzip
import math
import os
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from modelport.errors import InvalidInputError

# marian-dev src/data/shortlist.h: BINARY_SHORTLIST_MAGIC (little-endian uint64)
BINARY_MAGIC = (0xF11A48D5013417F5).to_bytes(8, "little")
GZIP_MAGIC = b"\x1f\x8b"
# Marian's defaults for FIRST and BEST (LexicalShortlistGenerator)
DEFAULT_FIRST = 100
DEFAULT_BEST = 100
# intgemm needs a shortlist whose length is a multiple of this
MULTIPLE = 8
# a longer line is not a lex.s2t entry; reading stops there instead of buffering it
MAX_LINE_BYTES = 1 << 16
# loaded shortlists kept for repeated translate() calls (a stream's windows)
_CACHE_SIZE = 4


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


def _open(path: Path) -> BinaryIO:
    """The file's bytes (gunzipped when it starts with gzip's magic, as
    Marian's streams read it); missing files and binary shortlists are refused."""
    if not path.is_file():
        raise InvalidInputError(f"shortlist file `{path}` does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == BINARY_MAGIC or path.suffix == ".bin":
        raise InvalidInputError(f"`{path}` is a binary shortlist (supported: Marian's text shortlist, "
                                "TARGET SOURCE PROB lines)")
    return gzip.open(path, "rb") if head.startswith(GZIP_MAGIC) else open(path, "rb")  # type: ignore[return-value]


def _read_entries(path: Path, source_vocab: Mapping[str, int], target_vocab: Mapping[str, int],
                  source_unk: int, target_unk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source ids, target ids, float32 probabilities) of the file's entries, in
    file order, ``NULL`` entries left out; 12 bytes per entry."""
    src, trg, prob = array("i"), array("i"), array("f")
    with _open(path) as f:
        lineno = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            lineno += 1
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


def _prune(src: np.ndarray, trg: np.ndarray, prob: np.ndarray, best: int,
           threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``LexicalShortlistGenerator::prune``: per source id, the ``best`` most
    probable targets above ``threshold`` (ties: the larger target id first),
    after a later entry for a pair replaced an earlier one. Returns CSR
    offsets (one more than the largest source id) and the kept targets."""
    sources = int(src.max()) + 1 if src.size else 0
    key = src.astype(np.int64) * (int(trg.max()) + 1 if trg.size else 1) + trg
    _, last = np.unique(key[::-1], return_index=True)  # first in reverse = last in the file
    keep = np.sort(src.size - 1 - last)
    src, trg, prob = src[keep], trg[keep], prob[keep]
    above = prob > np.float32(threshold)
    src, trg, prob = src[above], trg[above], prob[above]
    order = np.lexsort((-trg.astype(np.int64), -prob, src))
    src, trg = src[order], trg[order]
    starts = np.searchsorted(src, np.arange(sources), side="left")
    rank = np.arange(src.size) - starts[src] if src.size else np.zeros(0, dtype=np.int64)
    src, trg = src[rank < best], trg[rank < best]
    offsets = np.searchsorted(src, np.arange(sources + 1), side="left")
    return offsets.astype(np.int64), trg.astype(np.int64)


class LexicalShortlist:
    """A loaded text shortlist: per source id the kept target ids, and the rule
    that makes a batch's sorted list (:meth:`indices`).

    ``target_size``: Marian's target vocabulary size (without the pad id a
    port appends); ``shared``: the source and target vocabularies are one file
    (Marian compares decoder.yml's two ``vocabs`` paths), so the batch's
    source ids enter the list too."""

    def __init__(self, offsets: np.ndarray, targets: np.ndarray, *, first: int, target_size: int,
                 shared: bool, spec: ShortlistSpec | None = None) -> None:
        self.offsets, self.targets = offsets, targets
        self.first, self.target_size, self.shared, self.spec = first, target_size, shared, spec

    @classmethod
    def load(cls, spec: ShortlistSpec | str | Sequence[Any], *, source_vocab: Mapping[str, int],
             target_vocab: Mapping[str, int], source_unk: int, target_unk: int, target_size: int,
             shared: bool) -> LexicalShortlist:
        """Read and prune ``spec``'s file with the model's vocabularies (piece -> id)."""
        spec = ShortlistSpec.parse(spec)
        src, trg, prob = _read_entries(spec.path, source_vocab, target_vocab, source_unk, target_unk)
        offsets, targets = _prune(src, trg, prob, spec.best, spec.threshold)
        return cls(offsets, targets, first=spec.first, target_size=target_size, shared=shared, spec=spec)

    def indices(self, src_tokens: Tensor, pad: int | None = None, suppressed_unk: int | None = None) -> Tensor:
        """The sorted target ids of one batch (``LexicalShortlistGenerator::generate``)
        from its source ids (``pad`` left out), on ``src_tokens``' device.
        ``suppressed_unk``: the ``<unk>`` id the search suppresses, checked against
        Marian's suppression by position."""
        ids = torch.unique(src_tokens).cpu().numpy()
        if pad is not None:
            ids = ids[ids != pad]
        keep = np.zeros(self.target_size, dtype=bool)
        keep[: self.first] = True
        known = ids[ids < self.offsets.size - 1]
        if known.size:
            keep[np.concatenate([self.targets[self.offsets[s]: self.offsets[s + 1]] for s in known])] = True
        if self.shared:
            keep[ids[ids < self.target_size]] = True
        count, i = int(keep.sum()), self.first
        while count % MULTIPLE:
            if i >= self.target_size:
                raise InvalidInputError(f"the shortlist of a batch must be padded to a multiple of {MULTIPLE} "
                                        f"with ids from `first` ({self.first}) on, but the target vocabulary "
                                        f"ends at {self.target_size} (Marian reads past it; use a smaller first)")
            count += not keep[i]
            keep[i] = True
            i += 1
        rows = np.flatnonzero(keep)
        if not rows.size:
            raise InvalidInputError("this batch's shortlist is empty: `first` is 0 and the file lists nothing for "
                                    "its source words (Marian has no output row to score)")
        if suppressed_unk is not None and keep[suppressed_unk] and (
                suppressed_unk >= rows.size or rows[suppressed_unk] != suppressed_unk):
            raise InvalidInputError(f"this batch's shortlist holds <unk> (id {suppressed_unk}) at another position "
                                    f"than its id: Marian 1.12 then suppresses the word at that position instead "
                                    f"of <unk>; use `first` > {suppressed_unk} or allow_unk")
        return torch.from_numpy(rows).to(src_tokens.device)


_loaded: dict[tuple[Any, ...], tuple[Any, LexicalShortlist]] = {}


def shortlist_for_tokenizer(spec: ShortlistSpec | str | Sequence[Any] | LexicalShortlist,
                            tokenizer: Any) -> LexicalShortlist:
    """``spec`` loaded with a Marian port's vocabularies (a ``marian_spm``
    tokenizer); the last few loads are reused while the file is unchanged."""
    if isinstance(spec, LexicalShortlist):
        return spec
    spec = ShortlistSpec.parse(spec)
    if getattr(tokenizer, "kind", None) != "marian_spm":
        raise InvalidInputError(f"a shortlist needs a Marian port's vocabularies (tokenizer marian_spm), but this "
                                f"port's tokenizer is {getattr(tokenizer, 'kind', type(tokenizer).__name__)}")
    try:
        stat = spec.path.stat()
    except OSError:
        raise InvalidInputError(f"shortlist file `{spec.path}` does not exist") from None
    key = (spec, str(spec.path.resolve()), stat.st_mtime_ns, stat.st_size, id(tokenizer))
    hit = _loaded.get(key)
    if hit is not None:
        return hit[1]
    pad = tokenizer.pad_id

    def marian(vocab: Mapping[str, int]) -> dict[str, int]:  # the port appends <pad>; Marian has none
        return {p: i for p, i in vocab.items() if i != pad}

    source, target = marian(tokenizer.vocab), marian(tokenizer.target_vocab)
    unk = tokenizer.unk_token
    shortlist = LexicalShortlist.load(spec, source_vocab=source, target_vocab=target, source_unk=source[unk],
                                      target_unk=target[unk], target_size=max(target.values()) + 1,
                                      shared=tokenizer.target_vocab is tokenizer.vocab)
    if len(_loaded) >= _CACHE_SIZE:
        _loaded.pop(next(iter(_loaded)))
    _loaded[key] = (tokenizer, shortlist)  # holding the tokenizer keeps its id unique
    return shortlist


__all__ = ["DEFAULT_BEST", "DEFAULT_FIRST", "LexicalShortlist", "ShortlistSpec", "shortlist_for_tokenizer"]
