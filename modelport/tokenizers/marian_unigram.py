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
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError

UNK_PENALTY = 10.0  # kUnkPenalty
# ModelProto.SentencePiece.Type
_NORMAL, _USER_DEFINED = 1, 4
_FLT_MIN = np.float32(np.finfo(np.float32).tiny)  # what the bundled version starts max_score_ from
_UNIGRAM = 1  # TrainerSpec.ModelType


@dataclass(frozen=True)
class MarianUnigram:
    """The segmentation of one unigram ``.spm`` model as Marian computes it."""

    sp: Any  # the library's processor: normaliser, ids
    # piece -> (id, the score Marian adds for it: its float32 score, or a user-defined piece's `length *
    # max_score_ - 0.1`, bytes times FLT_MIN in double, see the module docstring)
    scores: dict[str, tuple[int, float]]
    prefixes: frozenset[str]  # every prefix of a piece: where a longer match may still follow
    unk_score: float

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
        return cls(sp, scores, prefixes, float(f32(f32(min(normal)) - f32(UNK_PENALTY))))

    def encode(self, text: str) -> list[str]:
        """The pieces of ``text`` (not yet normalised), as the library's ``encode(out_type=str)`` gives them."""
        t = self.sp.normalize(text)
        n = len(t)
        f32 = np.float32
        prefixes, scores = self.prefixes, self.scores  # locals: the loop below runs per character and match
        # per end position: best path score (float32: an array of C floats rounds what it stores, as Marian's
        # float does, faster than a numpy scalar), start of its last piece, that piece (None: unknown)
        best = array("f", bytes(4 * (n + 1)))
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
                cand = found[1] + till  # double: the ternary with the user-defined score's double makes it one
                if start[e] == -1 or cand > best[e]:
                    best[e] = cand
                    start[e] = b
                    piece[e] = sub
                if e == b + 1:
                    single = True
            if not single:  # float + float: no double in this expression
                cand = float(f32(f32(self.unk_score) + f32(till)))
                if start[b + 1] == -1 or cand > best[b + 1]:
                    best[b + 1], start[b + 1], piece[b + 1] = cand, b, None
        out: list[str] = []
        unknown_end = -1  # the end of the unknown run being backtracked (its surface is one piece)
        e = n
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
    rule = MarianUnigram.load(path, sp)
    return rule.encode if rule is not None else library_pieces(sp)


__all__ = ["MarianUnigram", "library_pieces", "marian_pieces"]
