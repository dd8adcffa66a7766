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
        os.replace(tmp, path)
    except BaseException:  # nothing half-written stays behind
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
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


def speed_quality_plot(points: Sequence[PlotPoint], path: str | os.PathLike[str], *,
                       title: str = "Speed against quality") -> Path:
    """tokens/s (x) against BLEU (y), one labelled point per model; the marker
    area follows the size on disk. Models without both figures are left out."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    shown = [p for p in points if p.tokens_per_second is not None and p.bleu is not None]
    biggest = max((p.bytes_on_disk for p in shown), default=1) or 1
    for i, p in enumerate(shown):
        ax.scatter([p.tokens_per_second], [p.bleu], s=40 + 400 * p.bytes_on_disk / biggest, alpha=0.7)
        # labels alternate above and below their point, so close points keep readable labels
        ax.annotate(f"{p.label}\n{p.bytes_on_disk / 1e6:.1f} MB", (p.tokens_per_second, p.bleu),
                    textcoords="offset points", xytext=(8, 10 if i % 2 == 0 else -26), fontsize=8)
    ax.set_xlabel("tokens/s (same process, best of the timed runs)")
    ax.set_ylabel("BLEU")
    ax.set_title(title + "\n(marker area: size on disk)")
    ax.margins(0.2)
    fig.tight_layout()
    return _save(fig, Path(path))


def learning_curve(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Training loss (left axis) and dev scores (right axis) against updates,
    from the rows of a training log (``{"update", "loss"}`` and ``{"update",
    "dev_bleu", "dev_chrf"}``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    train = [r for r in rows if "loss" in r]
    ax.plot([r["update"] for r in train], [r["loss"] for r in train], color="#3b75af", label="train loss")
    ax.set_xlabel("updates")
    ax.set_ylabel("label-smoothed loss per token")
    dev = [r for r in rows if "dev_bleu" in r]
    if dev:
        ax2 = ax.twinx()
        ax2.plot([r["update"] for r in dev], [r["dev_bleu"] for r in dev], "o-", color="#d9822b", label="dev BLEU")
        ax2.plot([r["update"] for r in dev], [r["dev_chrf"] for r in dev], "s--", color="#5a9f4a",
                 label="dev chrF")
        ax2.set_ylabel("dev score")
        ax2.legend(loc="center right", fontsize=8)
    ax.legend(loc="upper center", fontsize=8)
    ax.set_title("Learning curve")
    fig.tight_layout()
    return _save(fig, Path(path))


__all__ = ["SCORE_PLOT_NAME", "PlotPoint", "compare_plot", "learning_curve", "score_histogram",
           "speed_quality_plot"]
