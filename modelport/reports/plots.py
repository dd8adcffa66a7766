"""The figures reports link to, drawn with matplotlib's ``Agg`` backend (no
display needed): the per-sentence score differences of a parity report and
the size/speed/BLEU comparison of ``modelport compare``.

matplotlib (and the numpy under it) is imported when a figure is drawn, not
with this module: the bottom layer stays light to import."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCORE_PLOT_NAME = "parity_scores.png"  # next to parity_report.md, linked from it


def _pyplot() -> Any:
    import matplotlib  # lazy: imports numpy

    # its font search logs at DEBUG: noise on a terminal whose root logger a reference framework configured
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # lazy: imports numpy

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write the figure through a temporary sibling renamed into place."""
    plt = _pyplot()
    tmp = path.with_name(path.name + ".tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    os.replace(tmp, path)
    return path


def score_histogram(diffs: Sequence[float], path: str | os.PathLike[str], *, what: str = "best hypothesis"
                    ) -> Path:
    """A histogram of per-sentence score differences (port minus reference) of ``what``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    values = [float(d) for d in diffs]
    ax.hist(values, bins=min(50, max(len(values), 1)), color="#3b75af")
    ax.set_xlabel("score difference (modelport - reference)")
    ax.set_ylabel("sentences")
    worst = max((abs(v) for v in values), default=0.0)
    ax.set_title(f"Per-sentence score difference, {what}\n{len(values)} sentences, max |difference| {worst:.3g}")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    fig.tight_layout()
    return _save(fig, Path(path))


@dataclass(frozen=True)
class PlotPoint:
    """One folder of a comparison: its label and what was measured (None: not measured)."""

    label: str
    bytes_on_disk: int
    tokens_per_second: float | None
    bleu: float | None


def compare_plot(points: Sequence[PlotPoint], path: str | os.PathLike[str]) -> Path:
    """Size, speed and BLEU of each folder side by side, one bar chart each."""
    plt = _pyplot()
    panels = (("size on disk (MB)", lambda p: p.bytes_on_disk / 1e6), ("tokens/s", lambda p: p.tokens_per_second),
              ("BLEU", lambda p: p.bleu))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.8))
    labels = [p.label for p in points]
    for ax, (title, value) in zip(axes, panels):
        heights = [value(p) for p in points]
        ax.bar(range(len(points)), [0.0 if h is None else h for h in heights], color="#3b75af")
        for i, h in enumerate(heights):
            ax.annotate("n/a" if h is None else f"{h:.3g}", (i, 0.0 if h is None else h), ha="center",
                        va="bottom", fontsize=8)
        ax.set_xticks(range(len(points)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, Path(path))


__all__ = ["SCORE_PLOT_NAME", "PlotPoint", "compare_plot", "score_histogram"]
