"""Converters from foreign checkpoint formats, registered by format name.

Every converter, the built-ins included, is found through the
``modelport.converters`` entry-point group (``name = "module:Class"``); a
class may also register itself with :func:`register_converter`. A converter
fills in the steps of :class:`Converter` and maps weights with a
:class:`KeyMapper` name table; see :mod:`modelport.converters.base`.
"""

from modelport.converters.base import (Converter, KeyMapper, MappedWeights, Rule, converters, get_converter,
                                       register_converter)

__all__ = ["Converter", "KeyMapper", "MappedWeights", "Rule", "converters", "get_converter", "register_converter"]
