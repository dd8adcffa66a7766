"""Marian's own SentencePiece segmentation of unigram models.

Marian encodes the text of a model with ``.spm`` vocabularies itself, with the
SentencePiece it bundles (marian-dev ``src/3rd_party/sentencepiece``, the
``marian-nmt/sentencepiece`` fork; in pymarian 1.12 a 0.1.9x version: its
``Lattice::NBest`` takes the size only). Its unigram Viterbi
(``unigram::Model::EncodeOptimized``) keeps the best path of every end
position in float and replaces it only on a strictly higher score; a piece's
candidate is computed in *double* (``auto score = user_defined ? length *
max_score_ - 0.1 : score`` is a double), an unknown character's in float;
``max_score_`` starts at ``FLT_MIN`` (the smallest positive float) and only
NORMAL pieces, all negative, are compared with it, so a user-defined piece
(``>>deu<<``) scores ``bytes * FLT_MIN - 0.1``. The ``sentencepiece`` package on
PyPI (0.2.x) resolves exact ties of equal piece multisets differently:
"65,000" is ``▁6 5 , 0 00`` there and ``▁6 5 , 00 0`` in Marian (both paths
add the scores of ``0`` and ``00``, in another order, and the rounding decides).
The model then reads other ids, and every translation of such a line can
differ from Marian's. So a port of a Marian
model with ``.spm`` vocabularies segments with this rule (tokenizer_config's
``encode_rule: "marian"``), reproduced here because no library exposes
Marian's; the text is normalised by the ``sentencepiece`` library itself
(the model's own normaliser, which both share), and a line without such a
tie comes out as the library's.

Positions run over Unicode characters (Marian's over UTF-8 bytes, advancing
one character at a time: the same candidates in the same order); an unknown
character scores ``min_score - 10``, and a run of unknown characters is one piece (its
surface, as the library gives it), as ``SentencePieceProcessor::Encode``
merges them. Models with byte fallback, and
BPE models, keep the library's encoding.

Why words are looked up rather than searched: the Viterbi above runs in
Python, a character and a match at a time (5.6 ms for the 200 lines of
test.en with the ``tiny11_ssru`` vocabulary). Where no piece holds ``▁`` past its first
character and ``▁`` is a piece, every path breaks before every ``▁``, so each
word (from one ``▁`` to the next) is searched from the score its start holds,
and only rounding ties it to that score. :meth:`MarianUnigram.encode` keeps
each word's best path with the smallest gap, in exact arithmetic, between the
best and the second best candidate of any of its end positions; it takes the
kept path while that gap exceeds what float32 rounding of the scores so far
can move (4x its bound), and otherwise searches the whole line as above. A
tie such as "65,000" has no gap, so such a line is always searched. Those
200 lines then take 4.9 ms (their 1,638 words are 553 distinct ones), and
0.8 ms once their words are kept; on every corpus line (45,406 with the
``>>xxx<<``-led ones) of the 15 trained fixtures' vocabularies the pieces
equal the whole-line search's (197-216 of the lines needed it, with the three
vocabularies counted).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from modelport.errors import InvalidInputError

UNK_PENALTY = 10.0  # kUnkPenalty
# ModelProto.SentencePiece.Type
_NORMAL, _USER_DEFINED = 1, 4
_FLT_MIN = np.float32(np.finfo(np.float32).tiny)  # what the bundled version starts max_score_ from
_UNIGRAM = 1  # TrainerSpec.ModelType
_SPACE = "\u2581"  # "▁", SentencePiece's whitespace
_MAX_WORDS = 1 << 16  # words whose paths are kept, at most (then all are dropped and found again)


class _Word(NamedTuple):
    """One word's best path from a start scored 0, in exact arithmetic: its pieces
    (a run of unknown characters as one), its total, and ``limit``: while the
    score at the word's start is above ``-limit``, Marian's float32 search takes
    this path (see the module docstring)."""

    pieces: tuple[str, ...]
    total: float
    limit: float


@dataclass(frozen=True)
class MarianUnigram:
    """The segmentation of one unigram ``.spm`` model as Marian computes it."""

    sp: Any  # the library's processor: normaliser, ids
    # piece -> (id, the score Marian adds for it: its float32 score, or a user-defined piece's `length *
    # max_score_ - 0.1`, bytes times FLT_MIN in double, see the module docstring)
    scores: dict[str, tuple[int, float]]
    prefixes: frozenset[str]  # every prefix of a piece: where a longer match may still follow
    unk_score: float
    # every piece holds "▁" at most first and "▁" is a piece: a path breaks before every "▁" (words apart)
    words_apart: bool = False
    _words: dict[str, _Word] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path, sp: Any) -> MarianUnigram | None:
        """The rule for the model at ``path`` (``sp`` its loaded processor), or
        None where Marian's encoding is the library's (BPE, byte fallback)."""
        from sentencepiece import sentencepiece_model_pb2  # protobuf: only for Marian's .spm vocabularies

        proto = sentencepiece_model_pb2.ModelProto()
        try:
            proto.ParseFromString(Path(path).read_bytes())
        except Exception as exc:  # protobuf's DecodeError has no stable import path
            raise InvalidInputError(f"`{path}` is not a SentencePiece model ({exc})") from None
        if proto.trainer_spec.model_type != _UNIGRAM or proto.trainer_spec.byte_fallback:
            return None
        f32 = np.float32
        scores: dict[str, tuple[int, float]] = {}
        normal = [p.score for p in proto.pieces if p.type == _NORMAL]
        for i, p in enumerate(proto.pieces):  # unused pieces are in the trie but never matched
            if p.type == _NORMAL:
                scores[p.piece] = (i, float(f32(p.score)))
            elif p.type == _USER_DEFINED:
                scores[p.piece] = (i, float(f32(len(p.piece.encode("utf-8")) * _FLT_MIN)) - 0.1)
        if not normal:
            return None
        prefixes = frozenset(piece[:n] for piece in scores for n in range(1, len(piece) + 1))
        words_apart = _SPACE in scores and not any(_SPACE in piece[1:] for piece in scores)
        return cls(sp, scores, prefixes, float(f32(f32(min(normal)) - f32(UNK_PENALTY))), words_apart)

    def encode(self, text: str) -> list[str]:
        """The pieces of ``text`` (not yet normalised), as the library's ``encode(out_type=str)`` gives them."""
        t = self.sp.normalize(text)
        if not self.words_apart:
            return self.search(t)
        parts = t.split(_SPACE)
        words = parts[:1] if parts[0] else []
        words += [_SPACE + w for w in parts[1:]]
        out: list[str] = []
        start = 0.0  # the score at the word's start, in exact arithmetic (Marian's float32 value is near it)
        kept = self._words
        for w in words:
            found = kept.get(w)
            if found is None:
                found = self._word(w)
                if len(kept) >= _MAX_WORDS:
                    kept.clear()
                kept[w] = found
            if -start >= found.limit:  # a near tie: float32 rounding decides, as the whole line's search shows
                return self.search(t)
            out += found.pieces
            start += found.total
        return out

    def forget(self) -> None:
        """Drop the kept word paths (they are found again as words come)."""
        self._words.clear()

    def _word(self, w: str) -> _Word:
        """The best path through ``w`` from a start scored 0 and its gap (see :class:`_Word`)."""
        n = len(w)
        start, piece, best, second = self._lattice(w, exact=True)
        gap = min([x - y for x, y in zip(best, second)][1:], default=math.inf)
        # a candidate at the word's e-th position went through at most e float32 roundings of values of at
        # most 2|start| + n|unk| + 1 in magnitude (2|start|: Marian's start value may differ from `start`), each
        # within 2**-23 of it: the gap holds while 4 (n + 1) 2**-23 (2|start| + n|unk| + 1) < gap
        limit = (gap * 2.0 ** 21 / (n + 1) - n * abs(self.unk_score) - 1) / 2 if gap < math.inf else math.inf
        return _Word(tuple(_backtrack(w, start, piece)), best[n], limit)

    def search(self, t: str) -> list[str]:
        """The pieces of the normalised text ``t`` by Marian's search over the whole line."""
        start, piece, _, _ = self._lattice(t, exact=False)
        return _backtrack(t, start, piece)

    def _lattice(self, t: str, exact: bool) -> tuple[list[int], list[str | None], Sequence[float], list[float]]:
        """Marian's Viterbi over ``t``: per end position the start of the best path's last
        piece, that piece (None: an unknown character), the best path's score and the best
        score not taken. ``exact``: scores in double from 0 (a word's gap, see :meth:`_word`),
        else as Marian computes them (float32 storage)."""
        n = len(t)
        f32 = np.float32
        prefixes, scores = self.prefixes, self.scores  # locals: the loop below runs per character and match
        # best path scores: an array of C floats rounds what it stores, as Marian's float does (faster than a
        # numpy scalar); exact: Python floats
        best: Sequence[float] = [0.0] * (n + 1) if exact else array("f", bytes(4 * (n + 1)))
        second = [-math.inf] * (n + 1)
        start: list[int] = [-1] * (n + 1)
        piece: list[str | None] = [None] * (n + 1)
        for b in range(n):
            till = best[b]
            single = False
            for e in range(b + 1, n + 1):
                sub = t[b:e]
                if sub not in prefixes:
                    break
                found = scores.get(sub)
                if found is None:
                    continue
                # double: the ternary with the user-defined score's double makes it one
                _offer(best, second, start, piece, b, e, sub, found[1] + till)
                if e == b + 1:
                    single = True
            if not single:  # an unknown character; in Marian float + float, no double in this expression
                _offer(best, second, start, piece, b, b + 1, None, self.unk_score + till if exact
                       else float(f32(f32(self.unk_score) + f32(till))))
        return start, piece, best, second


def _offer(best: Sequence[float], second: list[float], start: list[int], piece: list[str | None], b: int, e: int,
           sub: str | None, cand: float) -> None:
    """The candidate ``sub`` (None: an unknown character) from ``b`` to ``e`` in
    :meth:`MarianUnigram._lattice`: kept when strictly higher (the first of equals
    stays, as in Marian), else remembered as the runner-up."""
    if start[e] == -1 or cand > best[e]:
        if start[e] != -1:
            second[e] = best[e]
        best[e], start[e], piece[e] = cand, b, sub  # type: ignore[index]
    elif cand > second[e]:
        second[e] = cand


def _backtrack(t: str, start: list[int], piece: list[str | None]) -> list[str]:
    """The pieces of the best path through ``t`` from the search's start positions and
    pieces per end position (None: an unknown character; a run of them is one piece)."""
    out: list[str] = []
    unknown_end = -1  # the end of the unknown run being backtracked (its surface is one piece)
    e = len(t)
    while e > 0:
        b = start[e]
        if piece[e] is None:
            if unknown_end == -1:
                unknown_end = e
        else:
            if unknown_end != -1:
                out.append(t[e:unknown_end])
                unknown_end = -1
            out.append(piece[e])  # type: ignore[arg-type]
        e = b
    if unknown_end != -1:
        out.append(t[:unknown_end])
    return out[::-1]


def library_pieces(sp: Any) -> Callable[[str], list[str]]:
    """Text → pieces as the sentencepiece library encodes it with the processor ``sp``."""
    return lambda text: sp.encode(text, out_type=str)


def marian_pieces(path: str | Path, sp: Any) -> Callable[[str], list[str]]:
    """Text → pieces as Marian encodes it with the ``.spm`` model at ``path``
    (``sp``, the library's processor of it): its unigram rule, or the
    library's own encoding where that is Marian's (BPE, byte fallback)."""
    return pieces_of(MarianUnigram.load(path, sp), sp)


def pieces_of(rule: MarianUnigram | None, sp: Any) -> Callable[[str], list[str]]:
    """Text → pieces by ``rule`` (:meth:`MarianUnigram.load`'s), or by the library's
    processor ``sp`` where the rule is None (Marian's encoding is the library's)."""
    return rule.encode if rule is not None else library_pieces(sp)


__all__ = ["MarianUnigram", "library_pieces", "marian_pieces", "pieces_of"]
