"""Converters from foreign checkpoint formats, registered by format name.

Third-party converters register through the ``modelport.converters`` entry
point group; see :mod:`modelport.converters.base`.
"""

from modelport.converters.base import Converter, converters, get_converter, register_converter

__all__ = ["Converter", "converters", "get_converter", "register_converter"]
