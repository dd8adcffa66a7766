"""Parity reports: one JSON file and its Markdown rendering.

A report is ``{"<section>": {...}, ..., "passed": bool}``; each validator
(tokenizer, forward, beam) contributes one section. The Markdown renderer is
generic, so a new validator needs no code here:

- a section's scalar fields become a two-column summary table;
- a field holding ``{name: {scalar fields...}}`` (for instance one entry per
  reference framework) becomes a table with one row per name;
- any list of dicts under a ``mismatches`` key (in the section or in one of
  those named entries) becomes a numbered list, one entry per mismatch, with
  its ``diff`` (a list of lines) shown as a code block.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MAX_CELL = 80


def merge_reports(*reports: dict[str, Any]) -> dict[str, Any]:
    """Sections of several reports in one; ``passed`` only if every section passed."""
    out: dict[str, Any] = {}
    for rep in reports:
        out.update({k: v for k, v in rep.items() if k != "passed"})
    out["passed"] = all(v.get("passed", True) for v in out.values() if isinstance(v, dict))
    return out


def write_report(report: dict[str, Any], directory: str | os.PathLike[str],
                 stem: str = "parity_report", title: str = "Parity report") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (headed ``title``) into ``directory``; return both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, json_path)
    tmp = md_path.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(report, title), encoding="utf-8")
    os.replace(tmp, md_path)
    return json_path, md_path


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        text = "yes" if v else "**no**"
    elif isinstance(v, float):
        text = f"{v:.6g}"
    elif v is None:
        text = "–"
    else:
        text = str(v)
    text = text.replace("|", "\\|").replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _render_mismatches(title: str, items: list[dict[str, Any]], out: list[str]) -> None:
    out.append(f"#### {title}\n")
    for n, item in enumerate(items, 1):
        head = ", ".join(f"{k}: {_cell(v)}" for k, v in item.items() if _is_scalar(v))
        out.append(f"{n}. {head}")
        for k, v in item.items():
            if k == "diff" and isinstance(v, list):
                out.append("\n   ```")
                out.extend(f"   {line}" for line in v)
                out.append("   ```")
            elif not _is_scalar(v):
                out.append(f"   - {k}: `{_cell(json.dumps(v, ensure_ascii=False))}`")
        out.append("")


def _render_section(name: str, section: dict[str, Any], out: list[str]) -> None:
    status = section.get("passed")
    mark = "" if status is None else (" — passed" if status else " — **FAILED**")
    out.append(f"## {name}{mark}\n")
    scalars = {k: v for k, v in section.items() if _is_scalar(v)}
    if scalars:
        out += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in scalars.items()] + [""]
    for key, value in section.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            cols: list[str] = []
            for entry in value.values():
                cols += [k for k, v in entry.items() if _is_scalar(v) and k not in cols]
            out.append(f"### {key}\n")
            out.append("| " + " | ".join([key.rstrip("s") or key] + cols) + " |")
            out.append("|" + "---|" * (len(cols) + 1))
            for row, entry in value.items():
                out.append("| " + " | ".join([_cell(row)] + [_cell(entry.get(c)) for c in cols]) + " |")
            out.append("")
            for row, entry in value.items():
                if entry.get("mismatches"):
                    _render_mismatches(f"{row}: first mismatches", entry["mismatches"], out)
        elif key == "mismatches" and isinstance(value, list) and value:
            _render_mismatches("first mismatches", value, out)


def render_markdown(report: dict[str, Any], title: str = "Parity report") -> str:
    """The Markdown text of a report (see the module docstring for the layout)."""
    passed = report.get("passed")
    out = [f"# {title}", ""]
    if passed is not None:
        out += [f"**Overall: {'passed' if passed else 'FAILED'}**", ""]
    for name, section in report.items():
        if isinstance(section, dict):
            _render_section(name, section, out)
    return "\n".join(out).rstrip() + "\n"
