"""Skip a test, not a whole module, when a reference framework is missing."""

from __future__ import annotations

import functools
import importlib.util

import pytest


@functools.cache
def available(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it: fairseq takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install
        return False


def requires(*modules: str) -> pytest.MarkDecorator:
    """Mark a test that runs a reference framework: skipped where one of ``modules`` is missing."""
    missing = [m for m in modules if not available(m)]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")
