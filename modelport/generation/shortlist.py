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

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from modelport.errors import InvalidInputError
from modelport.generation.backend import SearchBackend
from modelport.tokenizers.marian_shortlist import (BINARY_MAGIC, DEFAULT_BEST, DEFAULT_FIRST, ShortlistSpec,
                                                   check_shortlist_file, read_entries)

# intgemm needs a shortlist whose length is a multiple of this
MULTIPLE = 8
# loaded shortlists kept for repeated translate() calls (a stream's windows)
_CACHE_SIZE = 4


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
        src, trg, prob = read_entries(spec.path, source_vocab, target_vocab, source_unk, target_unk)
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


def scatter_rows(short: Tensor, rows: Tensor, vocab_size: int) -> Tensor:
    """Shortlist scores ``[B, K]`` of the vocabulary ids ``rows`` as ``[B, V]``:
    -inf off the list; a row holding NaN is NaN everywhere (the search checks
    one column for NaN)."""
    full = short.new_full((short.size(0), vocab_size), -math.inf)
    full.index_copy_(1, rows, short)
    return full.masked_fill_(torch.isnan(short).any(-1, keepdim=True), math.nan)


class ShortlistBackend(SearchBackend):
    """Another runtime's model (the ONNX runtime) with Marian's shortlist: its
    graphs compute every vocabulary row, of which the log-softmax takes the
    batch's list only, as :class:`~modelport.generation.ensemble.LogLinearEnsemble`
    does for the torch model (which computes those rows alone); the rest of the
    row is -inf, so the search is unchanged."""

    def __init__(self, inner: SearchBackend, shortlist: LexicalShortlist, suppressed_unk: int | None) -> None:
        self.inner, self.shortlist, self.suppressed_unk = inner, shortlist, suppressed_unk
        self.cfg, self.device = inner.cfg, inner.device
        self.rows: Tensor | None = None

    def encode(self, src_tokens: Tensor, runs: Sequence[tuple[int, int]] | None = None) -> None:
        self.inner.encode(src_tokens, runs)
        self.rows = self.shortlist.indices(src_tokens, self.cfg.pad_token_id, self.suppressed_unk)

    def reorder_encoder(self, index: Tensor) -> None:
        self.inner.reorder_encoder(index)

    def reorder(self, index: Tensor, cross: bool = True, group: int | Sequence[int] = 1) -> None:
        self.inner.reorder(index, cross=cross, group=group)

    def logits(self, new_tokens: Tensor) -> Tensor:
        return self.inner.logits(new_tokens)

    def log_probs(self, new_tokens: Tensor, temperature: float = 1.0) -> Tensor:
        if self.rows is None:
            raise RuntimeError("encode a batch before its log-probs")
        short = self.logits(new_tokens).index_select(-1, self.rows)
        if temperature != 1.0:
            short = short / temperature
        return scatter_rows(torch.log_softmax(short, dim=-1), self.rows, self.cfg.target_vocab_size)


def folder_shortlist(folder: str | os.PathLike[str], spec: ShortlistSpec | str | Sequence[Any]) -> ShortlistSpec:
    """A ported folder's recorded shortlist (``generation_config.json``, a path relative to the folder)
    resolved in ``folder``; a path that leaves the folder is refused (a downloaded folder is untrusted)."""
    spec = ShortlistSpec.parse(spec)
    root = Path(os.path.realpath(folder))
    path = Path(os.path.realpath(root / spec.path))
    if spec.path.is_absolute() or ".." in spec.path.parts or not path.is_relative_to(root):
        raise InvalidInputError(f"`shortlist` in {folder}/generation_config.json must name a file inside the folder, "
                                f"but is `{spec.path}`")
    return dataclasses.replace(spec, path=path)


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
    check_shortlist_file(spec.path)
    stat = spec.path.stat()
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


__all__ = ["BINARY_MAGIC", "DEFAULT_BEST", "DEFAULT_FIRST", "LexicalShortlist", "ShortlistBackend", "ShortlistSpec",
           "folder_shortlist", "scatter_rows", "shortlist_for_tokenizer"]
