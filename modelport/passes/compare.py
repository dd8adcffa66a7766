"""``modelport compare``: a port and the passes made from it, side by side,
from what each folder already records (``config.json`` and the safetensors
headers for size, ``pass_report.json`` and ``parity_report.json`` for speed,
agreement and BLEU). Nothing is re-measured: the figures are those the
passes and ``validate`` wrote, and the table says how they were measured."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.model.folder import PortedFolder
from modelport.reports.base import options_text
from modelport.reports.compare import CompareRow
from modelport.reports.parity import BeamSection, MarianBeamSection, ParityReport
from modelport.reports.passes import PassReport


def _made_by(report: PassReport | None) -> str:
    if report is None:
        return "convert"
    return f"{report.name} {options_text(report.options)}".strip()


def _derived_from(child: PortedFolder, parent: PortedFolder) -> bool:
    """Whether ``child`` was written by a pass reading ``parent`` (its history
    is the parent's plus one entry, from the same source files)."""
    c, p = child.conversion, parent.conversion
    history = c.get("history") or []
    return bool(history) and history[:-1] == (p.get("history") or []) and \
        c.get("source_files") == p.get("source_files")


def _row(folder: PortedFolder, label: str, passes: PassReport | None, parity: ParityReport | None) -> CompareRow:
    row: dict[str, Any] = {"folder": str(folder.path), "label": label, "made_by": _made_by(passes),
                           "parameters": folder.parameters, "bytes_on_disk": folder.weight_bytes}
    if parity is not None and parity.bleu is not None:
        row.update(bleu=round(parity.bleu.modelport.bleu, 2), chrf=round(parity.bleu.modelport.chrf, 2),
                   measured_by="parity report")
    if parity is not None and parity.beam is not None:
        row.update(agreement_percent=_identical_percent(parity.beam),
                   agreement_with="a port: with the original framework (validate)")
    if passes is not None:
        m = passes.measured
        if m.tokens_per_second is not None:
            row.update(tokens_per_second=m.tokens_per_second.after, speedup=m.tokens_per_second.speedup,
                       timing=m.tokens_per_second.how)
        if m.agreement is not None:
            direction = f", translating {m.languages[0]} -> {m.languages[1]}" if m.languages else ""
            row.update(agreement_percent=m.agreement.identical_percent,
                       agreement_with=f"a pass: with the folder it was made from{direction}")
        if m.quality is not None:
            row.update(bleu=m.quality.after.bleu, chrf=m.quality.after.chrf)
        row["measured_by"] = "pass report"
    return CompareRow(**row)


def _identical_percent(beam: BeamSection | MarianBeamSection) -> float | None:
    """The share of identical outputs ``validate`` found (hypotheses; Marian: lines)."""
    if isinstance(beam, MarianBeamSection):
        return round(100 * beam.identical_lines / beam.lines, 1) if beam.lines else None
    differing = beam.real_divergences + beam.near_ties + beam.score_mismatches
    return round(100 * (beam.hypotheses - differing) / beam.hypotheses, 1) if beam.hypotheses else None


def _with_parent_figures(row: CompareRow, child: PassReport) -> CompareRow:
    """A port's speed and BLEU, as a pass made from it measured them (its ``before`` side)."""
    m = child.measured
    extra: dict[str, Any] = {}
    if row.tokens_per_second is None and m.tokens_per_second is not None:
        extra.update(tokens_per_second=m.tokens_per_second.before, speedup=1.0, timing=m.tokens_per_second.how)
    if row.bleu is None and m.quality is not None:
        extra.update(bleu=m.quality.before.bleu, chrf=m.quality.before.chrf)
    if not extra:
        return row
    return CompareRow(**{**row.to_json(), **extra, "measured_by": row.measured_by or f"{child.name} pass report"})


def _labels(paths: Sequence[Path]) -> list[str]:
    """Folder names; the paths as given where two names are the same."""
    names = [p.name or str(p) for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths)]


def compare(directories: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[CompareRow]:
    """One row per folder, in the order given (each checked as a ported folder)."""
    if isinstance(directories, (str, os.PathLike)):  # one folder, not the characters of its name
        directories = [directories]
    if not directories:
        raise InvalidInputError("`compare` needs at least one ported folder")
    paths = [Path(d) for d in directories]
    folders = [PortedFolder.open(p) for p in paths]
    passes = [f.pass_report() for f in folders]
    parity = [f.parity_report() for f in folders]
    rows = [_row(f, label, pr, par) for f, label, pr, par in zip(folders, _labels(paths), passes, parity)]
    for i, folder in enumerate(folders):
        children = [passes[j] for j, other in enumerate(folders)
                    if j != i and passes[j] is not None and _derived_from(other, folder)]
        for child in children:
            rows[i] = _with_parent_figures(rows[i], child)
    return rows


def rows_json(rows: Sequence[CompareRow]) -> list[Mapping[str, Any]]:
    """The rows as ``modelport compare --json`` prints them."""
    return [r.to_json() for r in rows]


__all__ = ["compare", "rows_json"]
