"""Reports as files: one JSON document and its Markdown rendering, shared by
parity reports (``validators/``) and pass reports (``passes/``). Imports
nothing of modelport, so every layer may use it.

The Markdown shows every field of the report, nested ones included:

- a mapping's scalar fields become a two-column table (``| key | value |``);
- a field holding ``{name: {scalar fields...}}`` (one entry per reference
  framework, ``before``/``after``, ...) becomes a table with one row per name;
- any other mapping becomes a sub-heading, rendered the same way;
- a list of scalars is one cell (every item, comma-separated);
- a list of mappings (mismatches, removed heads, ...) becomes a numbered list,
  one entry per item, with a ``diff`` (a list of lines) as a code block and
  other nested values as JSON.

Floats are shown with 6 significant digits; every other value in full.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_report(report: Mapping[str, Any], directory: str | os.PathLike[str],
                 stem: str = "parity_report", title: str = "Parity report", *,
                 markdown: str | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (headed ``title``; ``markdown``
    when given, else :func:`render_markdown`) into ``directory``; return both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    text_md = markdown if markdown is not None else render_markdown(report, title)
    for path, text in ((json_path, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"),
                       (md_path, text_md)):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return json_path, md_path


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.6g}"
    if v is None:
        return "–"
    if isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v):
        return ", ".join(_text(x) for x in v) if v else "(none)"
    if _is_scalar(v):
        return str(v)
    return json.dumps(v, ensure_ascii=False, default=str)


def _cell(v: Any) -> str:
    return _text(v).replace("|", "\\|").replace("\r", "\\r").replace("\n", "\\n")


def _is_flat_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v)


def _is_row_table(v: Any) -> bool:
    """``{name: {field: value, ...}, ...}`` whose entries share most flat fields
    (``before``/``after``, one entry per reference): one table row per name."""
    if not (isinstance(v, Mapping) and v and all(isinstance(e, Mapping) and e for e in v.values())):
        return False
    keys = [{k for k, x in e.items() if _is_scalar(x) or _is_flat_list(x)} for e in v.values()]
    union = set().union(*keys)
    return bool(union) and all(2 * len(k) >= len(union) for k in keys)


def _title(key: str) -> str:
    return "first mismatches" if key == "mismatches" else key


def _render_items(title: str, items: list[Any], level: int, out: list[str]) -> None:
    out.append(f"{'#' * min(level, 6)} {title}\n")
    for n, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            out.append(f"{n}. {_text(item)}")
            continue
        def inline(k: str, v: Any) -> bool:
            return _is_scalar(v) or (_is_flat_list(v) and k != "diff")

        out.append(f"{n}. " + ", ".join(f"{k}: {_cell(v)}" for k, v in item.items() if inline(k, v)))
        for k, v in item.items():
            if inline(k, v):
                continue
            if k == "diff" and isinstance(v, list):
                out.append(f"   - {k}:\n\n   ```")
                out.extend(f"   {line}" for line in v)
                out.append("   ```")
            else:
                out.append(f"   - {k}: `{json.dumps(v, ensure_ascii=False, default=str)}`")
    out.append("")


def _render_value(title: str, value: Any, level: int, out: list[str]) -> None:
    """A field that is not flat, under a heading of ``level``."""
    hashes = "#" * min(level, 6)
    if _is_row_table(value):
        cols: list[str] = []
        for entry in value.values():
            cols += [k for k, x in entry.items() if (_is_scalar(x) or _is_flat_list(x)) and k not in cols]
        out.append(f"{hashes} {title}\n")
        out.append("| " + " | ".join([""] + [_cell(c) for c in cols]) + " |")
        out.append("|" + "---|" * (len(cols) + 1))
        for row, entry in value.items():
            out.append("| " + " | ".join([_cell(row)] + [_cell(entry[c]) if c in entry else "" for c in cols]) + " |")
        out.append("")
        for row, entry in value.items():
            for key, x in entry.items():
                if not (_is_scalar(x) or _is_flat_list(x)):
                    _render_value(f"{row}: {_title(key)}", x, level + 1, out)
    elif isinstance(value, Mapping):
        status = value.get("passed")
        mark = "" if not isinstance(status, bool) else (" — passed" if status else " — **FAILED**")
        out.append(f"{hashes} {title}{mark}\n")
        if value:
            _render_mapping(value, level + 1, out)
        else:
            out += ["(none)", ""]
    elif isinstance(value, (list, tuple)):
        _render_items(title, list(value), level, out)
    else:  # any other JSON value
        out += [f"{hashes} {title}\n", f"`{_text(value)}`", ""]


def _render_mapping(mapping: Mapping[str, Any], level: int, out: list[str]) -> None:
    flat = {k: v for k, v in mapping.items() if _is_scalar(v) or _is_flat_list(v)}
    if flat:
        out += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in flat.items()] + [""]
    for key, value in mapping.items():
        if key not in flat:
            _render_value(_title(key), value, level, out)


def render_markdown(report: Mapping[str, Any], title: str = "Parity report") -> str:
    """The Markdown text of a report: every field (see the module docstring)."""
    passed = report.get("passed")
    out = [f"# {title}", ""]
    if isinstance(passed, bool):
        out += [f"**Overall: {'passed' if passed else 'FAILED'}**", ""]
    _render_mapping({k: v for k, v in report.items() if k != "passed"}, 2, out)
    return "\n".join(out).rstrip() + "\n"
