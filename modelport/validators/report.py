"""Tokenizer-validator reports as dicts, and the shared report files.

:func:`~modelport.validators.tokenizer.validate_tokenizer` (a check that also
runs on its own, without a model) returns ``{"tokenizer": {...}, "passed":
bool}``; :func:`merge_reports` joins such reports. ``modelport validate``'s
report is the typed :class:`~modelport.reports.parity.ParityReport`. Writing
and rendering are :mod:`modelport.reports`' (one renderer for every report).
"""

from __future__ import annotations

from typing import Any

from modelport.reports import render_markdown, write_report

__all__ = ["merge_reports", "render_markdown", "write_report"]


def merge_reports(*reports: dict[str, Any]) -> dict[str, Any]:
    """Sections of several reports in one; ``passed`` only if every section passed."""
    out: dict[str, Any] = {}
    for rep in reports:
        out.update({k: v for k, v in rep.items() if k != "passed"})
    out["passed"] = all(v.get("passed", True) for v in out.values() if isinstance(v, dict))
    return out
