"""Which values an option may take, shared by the converters (decoder.yml, a
checkpoint's options and generation settings), the tokenizer folder's
settings and the search options (the command line and the Python API), so all
three refuse the same values with the same words. No torch here: the semantics
registry and the flags import this module without it."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Kind:
    """A kind of option value as a file or a caller gives it: the words an
    error says it with ("a positive integer") and the test of a value, its
    type included (a bool is not a number, a string not a number either)."""

    words: str
    admits: Callable[[Any], bool]

    def refusal(self, shown: str) -> str:
        """The words of a value refused: "must be a positive integer, but is 'lots'", given
        the value as the caller shows it (a flag's text, a file's JSON, a Python repr)."""
        return f"must be {self.words}, but is {shown}"


def _integer(test: Callable[[int], bool]) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and test(v)


def _number(test: Callable[[int | float], bool]) -> Callable[[Any], bool]:
    return lambda v: type(v) in (int, float) and test(v)


INTEGER = Kind("an integer", lambda v: type(v) is int)
POSITIVE_INTEGER = Kind("a positive integer", _integer(lambda v: v >= 1))
COUNT = Kind("an integer >= 0", _integer(lambda v: v >= 0))
FINITE = Kind("a finite number", _number(fits_float64))
POSITIVE = Kind("a number > 0", _number(lambda v: fits_float64(v) and v > 0))
NONNEGATIVE = Kind("a number >= 0", _number(lambda v: fits_float64(v) and v >= 0))
PROBABILITY = Kind("a number in (0, 1]", _number(lambda v: 0 < v <= 1))
SMOOTHING = Kind("a number in [0, 1)", _number(lambda v: 0 <= v < 1))  # label smoothing: 1 leaves no target mass
# marian-decoder reads its number options as float32 and aborts on a value past its range
FLOAT32 = Kind("a number that a float32 holds (Marian reads it as one)", fits_float32)
POSITIVE_FLOAT32 = Kind("a number > 0 that a float32 holds (Marian reads it as one)",
                        lambda v: fits_float32(v) and v > 0)
NONNEGATIVE_FLOAT32 = Kind("a number >= 0 that a float32 holds (Marian reads it as one)",
                           lambda v: fits_float32(v) and v >= 0)
TEXT = Kind("a string", lambda v: isinstance(v, str))
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
INTEGER_LIST = Kind("a list of integers", lambda v: isinstance(v, (list, tuple)) and all(type(x) is int for x in v))
TEXT_LIST = Kind("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))


__all__ = ["COUNT", "FINITE", "FLAG", "FLOAT32", "FLOAT32_MAX", "INTEGER", "INTEGER_LIST", "NONNEGATIVE",
           "NONNEGATIVE_FLOAT32", "POSITIVE", "POSITIVE_FLOAT32", "POSITIVE_INTEGER", "PROBABILITY", "SMOOTHING",
           "TEXT", "TEXT_LIST", "Kind", "fits_float32", "fits_float64"]
