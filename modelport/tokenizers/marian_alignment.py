"""The values of Marian's ``--alignment`` (``hard``, ``soft`` or a threshold),
below converters and generation, which both read them: the Marian converter
from decoder.yml (a bad value is refused at convert time), the search and
``translate --alignment`` (:mod:`modelport.generation.alignment` turns the
soft alignments into Marian's strings). Needs no torch."""

from __future__ import annotations

import math

from modelport.errors import InvalidInputError

HARD = "hard"
SOFT = "soft"
# no alignments, even where the ported folder records decoder.yml's (``translate --alignment none``)
OFF = "none"
MODES_HELP = "hard, soft or a threshold number > 0"


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


__all__ = ["HARD", "MODES_HELP", "OFF", "SOFT", "parse_alignment"]
