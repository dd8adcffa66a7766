"""What ``modelport compare`` shows: one :class:`CompareRow` per folder (a
port and the passes made from it), as a text table, JSON, and a size/speed/
BLEU figure. Plain data, read from the folders' own reports by
:mod:`modelport.passes.compare`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelport.reports.plots import PlotPoint, compare_plot


@dataclass(frozen=True)
class CompareRow:
    """One folder: what it is and what was measured on it (None: not measured).

    ``tokens_per_second``, ``speedup`` and ``agreement_percent`` come from the
    pass report (against the folder the pass read; ``measured_by`` says which
    report each figure came from); a port's own figures come from a pass made
    from it (its ``before`` side) and its parity report (BLEU against the
    references, agreement with the original framework)."""

    folder: str
    label: str
    made_by: str  # "convert" or the pass and its options
    parameters: int
    bytes_on_disk: int
    tokens_per_second: float | None = None
    speedup: float | None = None
    timing: str | None = None
    agreement_percent: float | None = None
    agreement_with: str | None = None
    bleu: float | None = None
    chrf: float | None = None
    measured_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = (("folder", lambda r: r.label), ("made by", lambda r: r.made_by),
            ("parameters", lambda r: f"{r.parameters:,}"), ("size on disk", lambda r: f"{r.bytes_on_disk / 1e6:.2f} MB"),
            ("tokens/s", lambda r: r.tokens_per_second), ("speedup", lambda r: None if r.speedup is None else
                                                          f"{r.speedup:g}x"),
            ("agreement", lambda r: None if r.agreement_percent is None else f"{r.agreement_percent:g}%"),
            ("BLEU", lambda r: r.bleu), ("chrF", lambda r: r.chrf))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def table_lines(rows: Sequence[CompareRow]) -> list[str]:
    """A fixed-width text table, one line per folder, and notes saying how it was measured."""
    cells = [[name for name, _ in _COLUMNS]] + [[_cell(get(r)) for _, get in _COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    timings = sorted({r.timing for r in rows if r.timing})
    if timings:
        out.append(f"tokens/s: {'; '.join(timings)}, each pass timed against the folder it was made from")
    withs = sorted({r.agreement_with for r in rows if r.agreement_with})
    if withs:
        out.append(f"agreement: identical first-best outputs ({'; '.join(withs)})")
    return out


def write_plot(rows: Sequence[CompareRow], path: str | os.PathLike[str]) -> Path:
    """Size, speed and BLEU of each folder as a PNG."""
    return compare_plot([PlotPoint(label=r.label, bytes_on_disk=r.bytes_on_disk,
                                   tokens_per_second=r.tokens_per_second, bleu=r.bleu) for r in rows], path)


__all__ = ["CompareRow", "table_lines", "write_plot"]
