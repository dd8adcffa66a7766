"""What ``modelport distill`` reports: :class:`DistillReport`.

A Bergamot-style table (one row per model: the teacher, the pruned student
before training when it was pruned, the distilled student and any quantized
variant) with parameters, bytes on disk, tokens/s measured in one process,
BLEU/chrF on the dev set and agreement with the teacher's outputs; plus what
was trained on and how. ``distill_report.json`` / ``.md`` in the student's
folder, beside ``distill_speed_bleu.png`` (tokens/s against BLEU of every
row), ``train_log.jsonl`` and ``learning_curve.png``.
Plain data: imports nothing of modelport but the renderer and the plots.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from modelport.reports.base import Flat, JsonView, Signatures
from modelport.reports.markdown import render_markdown, write_report

DISTILL_REPORT_STEM = "distill_report"
SPEED_PLOT_NAME = "distill_speed_bleu.png"
CURVE_PLOT_NAME = "learning_curve.png"
TRAIN_LOG_NAME = "train_log.jsonl"


@dataclass(frozen=True)
class ModelRow(Flat):
    """One model of the comparison, measured on the same lines in the same process."""

    label: str  # teacher | pruned, not distilled | student | student int8
    folder: str
    parameters: int
    bytes_on_disk: int
    tokens_per_second: float | None = None  # best of the timed runs
    speedup: float | None = None  # tokens/s over the teacher's
    bleu: float | None = None
    chrf: float | None = None
    teacher_agreement_percent: float | None = None  # identical first-best text to the teacher's


@dataclass(frozen=True)
class Corpus(Flat):
    """A text file the run read: where, how many lines, its sha256."""

    path: str
    lines: int
    sha256: str


@dataclass(frozen=True)
class Training(Flat):
    """How the student was trained and why training stopped."""

    student: str  # the --student spec as given
    updates: int
    epochs_started: int
    train_pairs: int  # KD pairs trained on (after dropping empty or over-long ones)
    dropped_pairs: int
    seconds: float
    processes: int
    seed: int
    stopped: str  # "max updates" | "max epochs" | "time limit" | "early stopping (...)"
    best_update: int | None = None  # the update whose weights were kept (dev score), None: the last
    best_dev: float | None = None
    metric: str | None = None


@dataclass(frozen=True)
class DistillReport(JsonView):
    """Teacher vs student(s), what they were trained on and how they were measured."""

    teacher: str
    teacher_sha256: str
    data: Corpus
    kd_seconds: float  # the teacher's translations of the data (0: every chunk reused)
    kd_chunks_reused: int
    training: Training
    models: Sequence[ModelRow]
    measured_on: str  # which lines the table is measured on
    timing: str
    signature: Signatures | None = None

    @property
    def title(self) -> str:
        return "distill report"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "models":
                out[f.name] = [row.to_json() for row in value]
            elif isinstance(value, Flat):
                out[f.name] = value.to_json()
            elif value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DistillReport:
        return cls(teacher=data["teacher"], teacher_sha256=data["teacher_sha256"], data=Corpus(**data["data"]),
                   kd_seconds=data["kd_seconds"], kd_chunks_reused=data["kd_chunks_reused"],
                   training=Training(**data["training"]), models=[ModelRow(**r) for r in data["models"]],
                   measured_on=data["measured_on"], timing=data["timing"],
                   signature=Signatures.from_json(data.get("signature")))

    def table_lines(self) -> list[str]:
        """The comparison as a Markdown table."""
        out = ["| model | parameters | size on disk | tokens/s | speed-up | BLEU | chrF | same as teacher |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]

        def cell(value: Any, fmt: str = "{:g}") -> str:
            return "–" if value is None else fmt.format(value)

        for r in self.models:
            out.append(f"| {r.label} | {r.parameters:,} | {r.bytes_on_disk / 1e6:.2f} MB | "
                       f"{cell(r.tokens_per_second)} | {cell(r.speedup, '{:g}×')} | {cell(r.bleu)} | "
                       f"{cell(r.chrf)} | {cell(r.teacher_agreement_percent, '{:g}%')} |")
        return out

    def to_markdown(self) -> str:
        body = [f"# {self.title.capitalize()}", "", *self.table_lines(), "",
                f"Measured on {self.measured_on}; tokens/s: {self.timing}, every model in the same process.",
                *(self.signature.lines() if self.signature is not None else []), "",
                f"![tokens/s against BLEU]({SPEED_PLOT_NAME}) ![learning curve]({CURVE_PLOT_NAME})", ""]
        details = {k: v for k, v in self.to_json().items() if k != "models"}
        return "\n".join(body) + "\n## Details\n" + render_markdown(details, "Details").split("\n", 1)[1]

    def write(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """``distill_report.json`` and ``distill_report.md`` in ``directory``."""
        return write_report(self.to_json(), directory, stem=DISTILL_REPORT_STEM, title=self.title,
                            markdown=self.to_markdown())

    def summary_lines(self, output_dir: str | os.PathLike[str]) -> list[str]:
        """What ``modelport distill`` prints."""
        t = self.training
        lines = [f"written to:    {output_dir}",
                 f"trained:       {t.updates} updates on {t.train_pairs:,} teacher translations, "
                 f"{t.processes} process(es), {t.seconds:.0f} s; stopped: {t.stopped}"]
        lines += ["", *self.table_lines(), "",
                  f"report:        {Path(output_dir) / (DISTILL_REPORT_STEM + '.md')}"]
        return lines


__all__ = ["CURVE_PLOT_NAME", "Corpus", "DISTILL_REPORT_STEM", "DistillReport", "ModelRow", "SPEED_PLOT_NAME",
           "TRAIN_LOG_NAME", "Training"]
