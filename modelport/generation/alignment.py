"""Marian's word alignments (``marian-decoder --alignment hard|soft|THRESHOLD``).

What Marian records (marian-dev 1.12): during decoding, the cross-attention
probabilities of *one* head (head 0, ``collectOneHead`` in
``src/models/transformer.h``) of one decoder layer (``--transformer-guided-
alignment-layer``, ``last`` by default, a 1-based number otherwise; read from
the model's ``special:model.yml``) of the *first* scorer of an ensemble
(``BeamSearch::toHyps``). Each new hypothesis keeps the row of the hypothesis
it extends, over the source positions that are not padding
(``getAlignmentsForHypothesis``): the source's ``</s>`` is included, and so is
the target's, the last step. A hypothesis' soft alignment is therefore one row
per target token (``</s>`` included), one probability per source token
(``</s>`` included): ``P(source position | target position)``. Models trained
without ``--guided-alignment`` print alignments the same way.

How Marian prints them (``src/translator/output_printer.cpp``,
``src/data/alignment.cpp``), after the text (best) or the text of each n-best
entry, behind `` ||| ``:

* ``soft``: the rows separated by spaces, each row's probabilities by commas,
  in the stream's default format (``%g``, 6 significant digits);
* ``hard`` (= threshold 1.0): per target position the source position with the
  largest probability (the first on ties), as ``src-tgt`` pairs;
* a threshold ``x`` (``std::stof``; the numbers above 0): every pair whose
  probability is greater than ``x`` (compared in float32);
* the pairs sorted by source position, then target position.

This module turns a soft alignment into those strings and JSON values; it
needs no torch.
"""

from __future__ import annotations

import argparse
import math
import struct
from collections.abc import Sequence

from modelport.errors import InvalidInputError

HARD = "hard"
SOFT = "soft"
# no alignments, even where the ported folder records decoder.yml's (``translate --alignment none``)
OFF = "none"
MODES_HELP = "hard, soft or a threshold number > 0"
# the layer Marian reads when the model names none (--transformer-guided-alignment-layer)
LAST_LAYER = "last"

SoftAlignment = Sequence[Sequence[float]]  # [target position][source position] -> probability


def parse_alignment(value: str | float) -> str | float:
    """``--alignment``'s value: ``"hard"``, ``"soft"``, or a threshold (a finite
    number > 0; 1.0 is ``hard``, a threshold above 1 keeps no pair, as in Marian)."""
    if isinstance(value, str) and value.strip().lower() in (HARD, SOFT):
        return value.strip().lower()
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = math.nan
    if isinstance(value, bool) or not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"`alignment` must be {MODES_HELP}, but is {value!r}")
    return threshold


def alignment_flag(text: str) -> str | float:
    """:func:`parse_alignment` as an argparse ``type`` (one-line usage error); ``none``
    is :data:`OFF`, which turns a folder's recorded alignment off."""
    if text.strip().lower() == OFF:
        return OFF
    try:
        return parse_alignment(text)
    except InvalidInputError:
        raise argparse.ArgumentTypeError(f"must be {MODES_HELP}, but is {text!r}") from None


def alignment_layer_index(layer: str | int, decoder_layers: int) -> int:
    """The 0-based decoder layer of Marian's ``--transformer-guided-alignment-layer``
    (``last`` or a 1-based number); one past the decoder's depth is an error, as in Marian."""
    text = str(layer).strip()
    if text == LAST_LAYER:
        return decoder_layers - 1
    if not text.isdigit() or not 1 <= int(text) <= decoder_layers:
        raise InvalidInputError(f"`alignment_layer` (Marian's --transformer-guided-alignment-layer) must be "
                                f"{LAST_LAYER} or a layer number from 1 to {decoder_layers}, but is {layer!r}")
    return int(text) - 1


def _float32(x: float) -> float:
    """``x`` rounded to float32, as Marian's ``std::stof`` holds a threshold."""
    return struct.unpack("f", struct.pack("f", x))[0]


def hard_alignment(soft: SoftAlignment, threshold: float = 1.0) -> list[tuple[int, int]]:
    """``ConvertSoftAlignToHardAlign``: ``(source, target)`` pairs sorted by source,
    then target. Threshold 1.0: each target position's most probable source position
    (the first of equals); otherwise every pair with probability > ``threshold``."""
    pairs: list[tuple[int, int]] = []
    limit = _float32(threshold)
    for t, row in enumerate(soft):
        if limit == 1.0:
            best = 0
            for s, p in enumerate(row):
                if row[best] < p:
                    best = s
            if row:
                pairs.append((best, t))
        else:
            pairs.extend((s, t) for s, p in enumerate(row) if p > limit)
    return sorted(pairs)


def _threshold(mode: str | float) -> float:
    return 1.0 if mode == HARD else float(mode)


def format_alignment(soft: SoftAlignment, mode: str | float) -> str:
    """What Marian prints after `` ||| `` for ``--alignment mode``."""
    mode = parse_alignment(mode)
    if mode == SOFT:
        return " ".join(",".join(f"{p:.6g}" for p in row) for row in soft)
    return " ".join(f"{s}-{t}" for s, t in hard_alignment(soft, _threshold(mode)))


def alignment_json(soft: SoftAlignment, mode: str | float) -> list[list[float]] | list[list[int]]:
    """The alignment as ``translate --json`` gives it: the soft rows (``soft``)
    or the ``[source, target]`` pairs (``hard``, a threshold)."""
    mode = parse_alignment(mode)
    if mode == SOFT:
        return [list(map(float, row)) for row in soft]
    return [[s, t] for s, t in hard_alignment(soft, _threshold(mode))]


__all__ = ["HARD", "LAST_LAYER", "MODES_HELP", "OFF", "SOFT", "SoftAlignment", "alignment_flag", "alignment_json",
           "alignment_layer_index", "format_alignment", "hard_alignment", "parse_alignment"]
