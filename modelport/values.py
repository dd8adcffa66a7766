"""Which numbers an option may take, shared by the converters (decoder.yml, a
checkpoint's generation settings) and the search options (the command line and
the Python API). No torch here: the semantics registry and the flags import
this module without it."""

from __future__ import annotations

import math
import sys
from typing import Any

# the largest float32: Marian reads its number options as float32 and aborts ("Not implemented") on a value past
# it, so the Marian converter (decoder.yml) and the Marian search options refuse such values by this bound
FLOAT32_MAX = 3.4028234663852886e38


def fits_float64(value: Any) -> bool:
    """Whether ``value`` is a finite number a Python float holds (an int past its range is not; ``math.isfinite``
    raises OverflowError on one such as 10**400)."""
    return abs(value) <= sys.float_info.max if isinstance(value, int) else math.isfinite(value)


def fits_float32(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that a float32 holds: finite, within ``FLOAT32_MAX``
    (an int of any size compared as it is: ``math.isfinite`` overflows on one past a float's range)."""
    if type(value) is int:
        return abs(value) <= FLOAT32_MAX
    return type(value) is float and math.isfinite(value) and abs(value) <= FLOAT32_MAX


__all__ = ["FLOAT32_MAX", "fits_float32", "fits_float64"]
