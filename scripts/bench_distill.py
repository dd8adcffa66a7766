"""Distillation benchmark on the embedded model (issue #13): teacher vs
students, on the corpus' test set, measured in one process.

1. The embedded fairseq model (assets/default-model) is converted: the teacher.
2. ``modelport distill`` with the decoder cut 3 -> 1 (``prune:decoder-layers=1``,
   starting from the teacher's weights) on the teacher's beam-5 translations of
   ``assets/corpus/train.en`` (20,000 lines), early stopping on ``valid.*``; the
   teacher's translations and the training together are held to
   ``--budget-minutes`` of wall clock (training gets what the translations
   leave; the report's measurements come after).
3. The same with ``--student tiny`` (6 encoder layers, 2-layer SSRU decoder, d
   256, FFN 1536, trained from scratch), reusing the teacher's translations
   (the finished chunks are copied into its work directory, so none is redone).
4. One table on ``test.*``: teacher, the pruned model before distillation,
   both students and the int8 student: BLEU, chrF, tokens/s (best of 3 runs,
   same process, the teacher's beam 5), size, agreement; the ratios the issue
   asks for are printed under it.

    .venv/bin/python scripts/bench_distill.py [--work /tmp/bench-distill] [--budget-minutes 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelport.api import convert  # noqa: E402
from modelport.passes.distill import WORK_MARKER, TrainOptions, distill, measure_models  # noqa: E402

CORPUS = ROOT / "assets" / "corpus"


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def run_student(teacher: Path, out: Path, student: str, budget_s: float, opts: dict, kd_from: Path | None,
                then_quantize: str | None) -> tuple[float, dict]:
    """One ``distill`` run held to ``budget_s`` seconds in all; returns its wall time and report."""
    work = out.with_name(out.name + ".distill-work")
    # a fresh student each run; the teacher's finished translation chunks are kept (they are what
    # `distill --resume` reuses; the report counts them)
    for path in (out, work / "train", work / "student-init", work / "student.json", out.with_name(out.name + "-int8")):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_MARKER).touch()  # distill continues (--resume) only a work directory it made
    if kd_from is not None and not (work / "kd").exists():  # an earlier run's translations: every chunk is reused
        shutil.copytree(kd_from, work / "kd")
    start = time.perf_counter()
    # KD data first (resumable: the distill call below finds every chunk done), so training gets the rest
    kd = kd_seconds(work, teacher)
    print(f"{student}: teacher translations {kd:.0f} s in this run", flush=True)
    report = distill(teacher, out, data=CORPUS / "train.en", dev=CORPUS / "valid.en",
                     dev_references=CORPUS / "valid.de", student=student, work_dir=work, resume=True,
                     then_quantize=then_quantize, progress=sys.stderr.isatty(),
                     training=TrainOptions(**opts, max_minutes=max(1.0, (budget_s - kd) / 60)))
    return time.perf_counter() - start, {**report.to_json(), "kd_seconds_this_run": round(kd, 1)}


def kd_seconds(work: Path, teacher: Path) -> float:
    """Seconds to make (or find) the teacher's translations into ``work`` before training starts."""
    from modelport.api import load
    from modelport.generation.shards import world
    from modelport.model.folder import PortedFolder
    from modelport.passes.distill.kd import folder_sha256, make_kd_data

    start = time.perf_counter()
    make_kd_data(load(teacher), folder_sha256(PortedFolder.open(teacher).files), lines(CORPUS / "train.en"), work,
                 {}, world(), progress=sys.stderr.isatty())
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-distill"))
    ap.add_argument("--budget-minutes", type=float, default=20.0, help="wall clock per student run, all included")
    ap.add_argument("--tiny-budget-minutes", type=float, default=None, help="the tiny student's (default: the same)")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--skip-cut", action="store_true", help="keep the decoder 3->1 student already in --work (only "
                                                            "the tiny one is trained)")
    ap.add_argument("--measure-only", action="store_true", help="only the final table, on the students already "
                                                                "in --work")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"torch threads: {__import__('torch').get_num_threads()}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    teacher = args.work / "teacher"
    if not teacher.is_dir():
        convert(str(ROOT / "assets" / "default-model"), teacher)

    results = {}
    cut = args.work / "student-dec1"
    if not (args.measure_only or args.skip_cut):
        wall, report = run_student(teacher, cut, "prune:decoder-layers=1", args.budget_minutes * 60,
                                   {"lr": 5e-4, "warmup_updates": 100, "max_tokens": 4096, "eval_every": 100,
                                    "save_every": 100, "patience": 4, "max_epochs": 40}, None, "int8")
        results["prune:decoder-layers=1"] = (wall, report)
        print(f"decoder 3->1 student: {wall / 60:.1f} min wall clock, {report['training']['updates']} updates, "
              f"stopped: {report['training']['stopped']}", flush=True)
    folders = [("teacher", teacher), ("pruned 3->1, not distilled", cut.with_name(cut.name + ".distill-work")
                                      / "student-init"), ("distilled 3->1", cut), ("distilled 3->1 int8",
                                                                                     cut.with_name(cut.name + "-int8"))]
    if not args.skip_tiny:
        tiny = args.work / "student-tiny"
        budget = (args.tiny_budget_minutes or args.budget_minutes) * 60
        if not args.measure_only:
            wall, report = run_student(teacher, tiny, "tiny", budget,
                                       {"lr": 1e-3, "warmup_updates": 200, "max_tokens": 4096, "eval_every": 200,
                                        "save_every": 200, "patience": 4, "max_epochs": 60},
                                       cut.with_name(cut.name + ".distill-work") / "kd", None)
            results["tiny"] = (wall, report)
            print(f"tiny student: {wall / 60:.1f} min wall clock, {report['training']['updates']} updates, "
                  f"stopped: {report['training']['stopped']}", flush=True)
        folders.append(("distilled tiny (SSRU)", tiny))

    rows, signature = measure_models(folders, lines(CORPUS / "test.en"), lines(CORPUS / "test.de"), {},
                                     sys.stderr.isatty())
    print(f"\nOn assets/corpus/test.* (200 lines), beam 5, {__import__('torch').get_num_threads()} thread(s), one "
          "process, best of 3 timed runs (the models taking turns):")
    print(f"{'model':30} {'params':>10} {'MB':>6} {'tok/s':>8} {'x':>6} {'BLEU':>6} {'chrF':>6} {'same':>6}")
    for r in rows:
        print(f"{r.label:30} {r.parameters:>10,} {r.bytes_on_disk / 1e6:>6.2f} {r.tokens_per_second:>8.1f} "
              f"{r.speedup:>6.2f} {r.bleu:>6.2f} {r.chrf:>6.2f} {r.teacher_agreement_percent:>5.1f}%")
    if signature is not None:
        print(f"sacreBLEU: {signature.bleu}")
    teacher_row = rows[0]
    for r in rows[2:]:
        print(f"{r.label}: {100 * r.bleu / teacher_row.bleu:.1f}% of the teacher's BLEU, {r.speedup:.2f}x its tokens/s")
    for name, (wall, report) in results.items():
        t = report["training"]
        print(f"{name}: {wall / 60:.1f} min in all (teacher translations {report['kd_seconds_this_run']:.0f} s in "
              f"this run), training {t['seconds']:.0f} s, {t['updates']} updates, best "
              f"dev BLEU {t.get('best_dev')} at update {t.get('best_update')}, stopped: {t['stopped']}")
    if args.measure_only:
        return 0
    record = args.work / "bench_distill.json"
    runs = json.loads(record.read_text())["runs"] if record.exists() else {}  # a run kept (--skip-cut) keeps its record
    runs.update({k: {"wall_s": w, "report": rep} for k, (w, rep) in results.items()})
    record.write_text(json.dumps({"rows": [r.to_json() for r in rows], "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
