"""Parity reports: one JSON file and its Markdown rendering.

A report is ``{"<section>": {...}, ..., "passed": bool}``; each validator
(tokenizer, forward, beam) contributes one section. Writing and rendering are
:mod:`modelport.reports`' (shared with the pass reports): the Markdown shows
every field, so a new validator needs no code here.
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
