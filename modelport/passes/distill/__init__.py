"""``modelport distill``: shrink a port, then train the student on the
teacher's translations (sequence-level knowledge distillation, Kim & Rush
2016; distilBART's shrink-and-fine-tune; the Bergamot students).

1. KD data (:mod:`.kd`): the teacher translates ``data`` with its own
   semantics and beam, chunk by chunk, resumable, sharded over torchrun ranks.
2. The student (:mod:`.student`): pruned from the teacher, a preset shape, or
   a config file; the teacher's tokenizer (``vocab_from`` trims it first, as
   ``modelport prune --vocab-from`` does).
3. Training (:mod:`.trainer`): accelerate under torchrun, checkpoints,
   ``resume``, early stopping on dev BLEU/chrF.
4. The result: an ordinary ported folder (the best weights by dev score),
   its conversion.json history naming the teacher (sha256), data, student
   spec, updates and seed; ``distill_report.json/.md`` (teacher vs student,
   and the quantized variant ``then_quantize`` asks for, written to
   ``<output>-<mode>``), ``train_log.jsonl``, ``learning_curve.png`` and
   ``distill_speed_bleu.png`` inside it.

Every step runs unchanged under ``torchrun --nproc_per_node N`` (and
``--nnodes``): rank 0 reads and writes files, the others translate and train
their shares; nothing needs a shared file system.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from modelport.api import PortedModel, load
from modelport.errors import InvalidInputError
from modelport.files import lines_of, nested
from modelport.generation.shards import CHUNK_LINES, World, barrier, broadcast, world
from modelport.metrics import corpus_scores
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import QUANTIZATION_MODES, PortedFolder, check_writable, read_conversion
from modelport.model.transformer import Seq2SeqModel
from modelport.passes.common import TIMED_RUNS, TIMING, pass_output, run_once
from modelport.passes.distill.kd import KdData, check_first_best, folder_sha256, make_kd_data
from modelport.passes.distill.student import (STUDENT_HELP, StudentSpec, describe, fresh_student, parse_student,
                                              student_config)
from modelport.passes.distill.trainer import TrainOptions, TrainResult, remove_checkpoints, train
from modelport.passes.prune import plan_prune, prune
from modelport.passes.quantize import quantize
from modelport.progress import Steps
from modelport.reports.base import Signatures
from modelport.reports.distill import (CURVE_PLOT_NAME, SPEED_PLOT_NAME, TRAIN_LOG_NAME, Corpus, DistillReport,
                                       ModelRow, Training)
from modelport.reports.passes import BeforeAfter, PassMeasurement, Quality, Scores, Speed
from modelport.reports.plots import PlotPoint, learning_curve, speed_quality_plot
from modelport.tokenizers import load_tokenizer

TURNS_TIMING = TIMING + ", the models' runs taking turns"
MEASURE_LINES = 200  # lines of --data the table is measured on when there is no --dev
INIT_DIR = "student-init"
WORK_MARKER = ".modelport-distill"
VOCAB_DIR = "teacher-vocab"


def default_work_dir(output_dir: str | os.PathLike[str]) -> Path:
    """``<output>.distill-work``, beside the output (it outlives the run: resume reads it)."""
    out = Path(output_dir)
    return out.with_name(out.name + ".distill-work")


def quantized_dir(output_dir: str | os.PathLike[str], mode: str) -> Path:
    """Where ``then_quantize=mode`` writes the quantized student: ``<output>-<mode>``."""
    out = Path(output_dir)
    return out.with_name(f"{out.name}-{mode}")


def _lines(data: str | os.PathLike[str] | list[str], what: str) -> tuple[list[str], str]:
    """The lines of ``data`` (a file or a list) and how the report names them."""
    if isinstance(data, (str, os.PathLike)):
        return lines_of(data, what), os.fspath(data)
    lines = lines_of(data, what)
    return lines, f"({len(lines)} lines given)"


def _check(teacher: PortedFolder, spec: StudentSpec, then_quantize: str | None, data: list[str],
           dev: list[str] | None, dev_refs: list[str] | None, opts: TrainOptions) -> None:
    if teacher.quantization:
        raise InvalidInputError(f"teacher `{teacher.path}` is quantized ({teacher.quantization}); distill from the "
                                "unquantized folder")
    if spec.from_teacher and teacher.ensemble_size > 1:
        raise InvalidInputError(f"a prune: student starts from one model's weights, but `{teacher.path}` is an "
                                f"ensemble of {teacher.ensemble_size}; use a preset (--student tiny|base)")
    # the student against the teacher, before the work directory is made
    if spec.prune is not None:
        plan_prune(teacher, **spec.prune)
    else:
        student_config(teacher.config, spec)
    languages = getattr(load_tokenizer(teacher.tokenizer_dir, model_rows=teacher.config.vocab_rows),
                        "languages", ())
    if languages:  # its translations need a direction, and a student would have to learn the language tokens
        raise InvalidInputError(f"`{teacher.path}` is a multilingual port ({len(languages)} languages); distilling "
                                "one is not supported (a student of one direction would still need its language "
                                "tokens placed as the teacher's task places them)")
    if then_quantize is not None and then_quantize not in QUANTIZATION_MODES:
        raise InvalidInputError(f"--then-quantize must be one of {', '.join(QUANTIZATION_MODES)}, but is "
                                f"{then_quantize}")
    if not [x for x in data if x.strip()]:
        raise InvalidInputError("--data holds no text to translate")
    if (dev is None) != (dev_refs is None):
        raise InvalidInputError("--dev and --dev-ref go together (source lines and their references)")
    if dev is not None and dev_refs is not None and len(dev) != len(dev_refs):
        raise InvalidInputError(f"--dev has {len(dev)} lines but --dev-ref has {len(dev_refs)}")
    opts.check()


def _check_work_dir(work: Path, resume: bool, force: bool, apart: Sequence[tuple[str, str | os.PathLike[str]]]
                    ) -> None:
    """Refuse a work directory :func:`_prepare_work_dir` must not touch. Only
    a directory this command made (it holds :data:`WORK_MARKER`) is ever
    continued or deleted: ``--force`` with ``--work-dir`` naming any other
    non-empty directory is refused, never an ``rm -r`` of it. ``apart``: (what, path)
    of the outputs, written whole at the end (a work directory inside one would be deleted
    with its checkpoints), and the teacher folder, which nothing writes into."""
    for what, path in apart:
        if nested(work, path):
            raise InvalidInputError(f"work directory `{work}` and the {what} `{path}` must lie apart (neither "
                                    "inside the other): give another --work-dir")
    if work.exists() and not work.is_dir():
        raise InvalidInputError(f"work directory `{work}` exists and is not a directory")
    if work.exists() and any(work.iterdir()):
        if not (work / WORK_MARKER).is_file():
            raise InvalidInputError(f"work directory `{work}` is not empty and was not made by `modelport distill` "
                                    "(nothing in it is touched): give an empty or new --work-dir")
        if not resume and not force:
            raise InvalidInputError(f"work directory `{work}` holds an earlier run: --resume continues it, "
                                    "--force starts over")


def _prepare_work_dir(work: Path, resume: bool) -> None:
    """A fresh or resumed work directory (rank 0), after :func:`_check_work_dir`."""
    if work.exists() and any(work.iterdir()) and not resume:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_MARKER).write_text("a `modelport distill` work directory: teacher translations and checkpoints\n",
                                    encoding="utf-8")


def _student(teacher_dir: Path, spec: StudentSpec, work: Path, vocab_from: str | os.PathLike[str] | None,
             seed: int, resume: bool) -> tuple[Path, Seq2SeqModel]:
    """Rank 0: the student's first folder (``work/student-init``) and model (weights owned, trainable)."""
    base = teacher_dir
    if vocab_from is not None:
        base = work / VOCAB_DIR
        if not (resume and base.is_dir()):
            prune(teacher_dir, base, vocab_from=vocab_from, force=True)
    init = work / INIT_DIR
    recorded = {"student": spec.text, "vocab_from": None if vocab_from is None else str(vocab_from), "seed": seed}
    marker = work / "student.json"
    if resume and marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) != recorded:
        raise InvalidInputError(f"work directory `{work}` trains another student "
                                f"({marker.read_text(encoding='utf-8').strip()}): give another --work-dir, or --force "
                                "without --resume to start over")
    marker.write_text(json.dumps(recorded) + "\n", encoding="utf-8")
    if not (resume and init.is_dir()):
        if spec.prune is not None:
            prune(base, init, force=True, **spec.prune)  # type: ignore[arg-type]
        else:
            source = PortedFolder.open(base)
            cfg = student_config(source.config, spec)
            model = fresh_student(cfg, seed, source.load_weights().get("final_logits_bias"))
            entry = {"pass": "student-init", "options": describe(spec, None), "changed": {"seed": seed}}
            with pass_output(source, init, list(model.state_dict().items()), cfg, entry, force=True):
                pass
    folder = PortedFolder.open(init)
    weights = {k: v.clone() for k, v in folder.load_weights().items()}  # trained in place: never the mapped file
    return init, Seq2SeqModel.from_state_dict(folder.config, weights)


def _pairs(tokenizer: Any, kd: KdData, cfg: Seq2SeqConfig) -> tuple[list[tuple[list[int], list[int]]], int]:
    """(source ids, target ids + EOS) of every KD pair that fits the student; how many were dropped."""
    src = tokenizer.encode_batch(kd.sources)
    encode_target = getattr(tokenizer, "encode_target", tokenizer.encode)
    pairs, dropped = [], 0
    for s, text in zip(src, kd.targets):
        t = encode_target(text) if text.strip() else []
        if len(t) < 2 or not s or len(s) > cfg.max_source_positions or len(t) > cfg.max_target_positions:
            dropped += 1  # nothing but EOS (an empty translation), or longer than the positions
            continue
        pairs.append((list(s), list(t)))
    return pairs, dropped


def _as_ported(model: Seq2SeqModel, like: PortedModel) -> PortedModel:
    """``model`` with ``like``'s tokenizer and decoding defaults (a student in training)."""
    return PortedModel(path=like.path, config=model.cfg, models=[model], generation_config=like.generation_config,
                       conversion={}, source_format=like.source_format, _tokenizer=like.tokenizer)


def _dev_scorer(like: PortedModel, lines: list[str], refs: list[str], decoding: dict[str, Any]
                ) -> Callable[[Seq2SeqModel], dict[str, float]]:
    """BLEU/chrF of a student in training on the dev set, decoded as the teacher decodes."""

    def evaluate(model: Seq2SeqModel) -> dict[str, float]:
        out = _as_ported(model, like).translate(lines, **decoding)
        s = corpus_scores([h[0]["text"] for h in out], refs)
        return {"bleu": s.bleu, "chrf": s.chrf}

    return evaluate


def measure_models(folders: list[tuple[str, Path]], lines: list[str], refs: list[str] | None, options: dict[str, Any],
                   progress: bool) -> tuple[list[ModelRow], Signatures | None]:
    """Every ``(label, folder)`` on the same lines in this process, decoded
    with ``options`` over each folder's defaults: tokens/s (the best of
    :data:`TIMED_RUNS` timed runs after a warm-up; the runs of the models take
    turns, so a busy neighbour slows them alike), BLEU/chrF with ``refs``, and
    agreement with the first folder's (the teacher's) first-best text; with
    sacreBLEU's signatures."""
    models = [(label, path, load(path)) for label, path in folders]
    speeds: list[list[float]] = [[] for _ in models]
    texts: list[list[str]] = [[] for _ in models]
    with Steps("measuring", len(models) * (1 + TIMED_RUNS), progress, unit="run") as bar:
        for label, _, ported in models:
            run_once(ported, lines[:2])
            bar.advance(f"{label}: warm-up")
        for _ in range(TIMED_RUNS):
            for i, (label, _, ported) in enumerate(models):
                outs, seconds = run_once(_with_options(ported, options), lines)  # type: ignore[arg-type]
                speeds[i].append(round(sum(len(h["tokens"]) for h in outs) / max(seconds, 1e-9), 1))
                texts[i] = [h["text"] for h in outs]
                bar.advance(label)
    rows: list[ModelRow] = []
    signature = None
    teacher_speed = max(speeds[0])
    for (label, path, _), speed_runs, text in zip(models, speeds, texts):
        folder = PortedFolder.open(path)
        scores = corpus_scores(text, refs) if refs else None
        if scores is not None:
            signature = Signatures(bleu=scores.bleu_signature, chrf=scores.chrf_signature)
        same = sum(a == b for a, b in zip(text, texts[0]))
        rows.append(ModelRow(label=label, folder=str(path), parameters=folder.parameters,
                             bytes_on_disk=folder.weight_bytes, tokens_per_second=max(speed_runs),
                             speedup=round(max(speed_runs) / max(teacher_speed, 1e-9), 2),
                             bleu=None if scores is None else round(scores.bleu, 2),
                             chrf=None if scores is None else round(scores.chrf, 2),
                             teacher_agreement_percent=round(100 * same / max(len(lines), 1), 1)))
    return rows, signature


class _with_options:
    """A :class:`PortedModel` whose ``translate`` always uses ``options`` (the teacher's decoding)."""

    def __init__(self, ported: PortedModel, options: dict[str, Any]) -> None:
        self._ported, self._options = ported, options

    def translate(self, lines: list[str], **kw: Any) -> Any:
        return self._ported.translate(lines, **{**self._options, **kw})


def _history_report(rows: list[ModelRow], student_label: str) -> dict[str, Any]:
    """Teacher -> student as a pass measurement (the card's passes table reads it)."""
    t = rows[0]
    s = next(r for r in rows if r.label == student_label)
    quality = None
    if t.bleu is not None and s.bleu is not None:
        quality = Quality(before=Scores(t.bleu, t.chrf or 0.0), after=Scores(s.bleu, s.chrf or 0.0))
    speed = None
    if t.tokens_per_second and s.tokens_per_second:
        speed = Speed(before=t.tokens_per_second, after=s.tokens_per_second, speedup=s.speedup or 0.0,
                      timing=TURNS_TIMING)
    return PassMeasurement(parameters=BeforeAfter(t.parameters, s.parameters),
                           bytes_on_disk=BeforeAfter(t.bytes_on_disk, s.bytes_on_disk),
                           tokens_per_second=speed, quality=quality).to_json()


def _plot(report: DistillReport, directory: Path) -> None:
    speed_quality_plot([PlotPoint(r.label, r.bytes_on_disk, r.tokens_per_second, r.bleu) for r in report.models],
                       directory / SPEED_PLOT_NAME, title="Teacher and students: speed against BLEU")


def distill(teacher_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
            data: str | os.PathLike[str] | list[str], dev: str | os.PathLike[str] | list[str] | None = None,
            dev_references: str | os.PathLike[str] | list[str] | None = None,
            student: str = "prune:decoder-layers=1", vocab_from: str | os.PathLike[str] | None = None,
            work_dir: str | os.PathLike[str] | None = None, resume: bool = False, force: bool = False,
            then_quantize: str | None = None, decoding: dict[str, Any] | None = None,
            training: TrainOptions | None = None, chunk_lines: int = CHUNK_LINES,
            progress: bool = False) -> DistillReport | None:
    """Distill ``teacher_dir`` into a student written to ``output_dir`` (see
    the module docstring). ``data``/``dev``/``dev_references`` are files or
    lists of lines; ``decoding`` the teacher's decoding options for the KD
    data (its defaults otherwise; the report measures every model with the
    same); ``training`` the loop's options. Returns the report on rank 0,
    None on the other ranks of a torchrun job."""
    opts = training or TrainOptions()
    spec = parse_student(student)
    lines, data_name = _lines(data, "--data")
    dev_lines = _lines(dev, "--dev")[0] if dev is not None else None
    dev_refs = _lines(dev_references, "--dev-ref")[0] if dev_references is not None else None
    teacher_folder = PortedFolder.open(teacher_dir)
    _check(teacher_folder, spec, then_quantize, lines, dev_lines, dev_refs, opts)
    decoding = dict(decoding or {})
    check_first_best(decoding)  # before the work directory is made
    work = Path(work_dir) if work_dir is not None else default_work_dir(output_dir)
    # every process checks what rank 0 will write (reading only) before the process group starts, so that
    # a problem is said once, by rank 0 (cli.console.report_error), and no process waits on one that failed
    outputs = [output_dir] + ([quantized_dir(output_dir, then_quantize)] if then_quantize is not None else [])
    for output in outputs:
        check_writable(output, force, reads=[teacher_dir])
    _check_work_dir(work, resume, force, [("output", o) for o in outputs] + [("teacher", teacher_dir)])
    where = world()
    if where.is_main:
        _prepare_work_dir(work, resume)
    barrier(where)
    teacher = load(teacher_dir)
    teacher_sha = folder_sha256(teacher_folder.files)
    kd = make_kd_data(teacher, teacher_sha, lines, work, decoding, where, chunk_lines=chunk_lines, progress=progress)

    init_dir: Path | None = None
    model: Seq2SeqModel | None = None
    pairs_dropped: Any = None
    if where.is_main:
        if not resume:
            remove_checkpoints(work)
        init_dir, model = _student(Path(teacher_dir), spec, work, vocab_from, opts.seed, resume)
        tokenizer = load_tokenizer(init_dir / "tokenizer", model_rows=model.cfg.vocab_rows)
        pairs_dropped = _pairs(tokenizer, kd, model.cfg)
    cfg_data, pairs_dropped = broadcast((None if model is None else model.cfg.to_dict(), pairs_dropped), where)
    pairs, dropped = pairs_dropped
    if model is None:  # DDP starts every rank from rank 0's weights
        model = Seq2SeqModel(Seq2SeqConfig.from_dict(cfg_data))
    if not pairs:
        raise InvalidInputError("the teacher's translations of --data leave no training pair (all empty or "
                                "longer than the student's positions)")

    evaluate = None
    if where.is_main and dev_lines is not None and dev_refs is not None:
        evaluate = _dev_scorer(load(init_dir), dev_lines, dev_refs, decoding)  # type: ignore[arg-type]
    result = train(model, pairs, opts, work, where, evaluate=evaluate, resume=resume, progress=progress)
    report = None
    if where.is_main:
        report = _write_output(Path(teacher_dir), output_dir, init_dir, spec, vocab_from, work, kd, data_name,
                               teacher_sha, result, opts, where, dev_lines, dev_refs, decoding, then_quantize,
                               len(pairs), dropped, force, progress)
    barrier(where)
    return report


def _write_output(teacher_dir: Path, output_dir: str | os.PathLike[str], init_dir: Path | None, spec: StudentSpec,
                  vocab_from: str | os.PathLike[str] | None, work: Path, kd: KdData, data_name: str,
                  teacher_sha: str, result: TrainResult, opts: TrainOptions, where: World,
                  dev_lines: list[str] | None, dev_refs: list[str] | None, decoding: dict[str, Any],
                  then_quantize: str | None, trained_pairs: int, dropped: int, force: bool,
                  progress: bool) -> DistillReport:
    """Rank 0: the student folder (atomically), its report, the quantized variant."""
    assert init_dir is not None
    init = PortedFolder.open(init_dir)
    corpus = Corpus(path=data_name, lines=len(kd.sources), sha256=kd.data_sha256)
    training = Training(student=spec.text, updates=result.updates, epochs_started=result.epochs_started,
                        train_pairs=trained_pairs, dropped_pairs=dropped, seconds=result.seconds,
                        processes=where.size, seed=opts.seed, stopped=result.stopped,
                        best_update=result.best_update, best_dev=result.best_dev,
                        metric=opts.metric if result.best_update is not None else None)
    measure_lines = dev_lines if dev_lines is not None else kd.sources[:MEASURE_LINES]
    measured_on = (f"the {len(measure_lines)} --dev lines" if dev_lines is not None
                   else f"the first {len(measure_lines)} lines of --data (no --dev given: no BLEU)")
    entry: dict[str, Any] = {
        "pass": "distill",
        "options": {"student": spec.text, "data": data_name, "seed": opts.seed, **{
            k: v for k, v in asdict(opts).items() if k != "seed"}, "decoding": decoding,
            "vocab_from": None if vocab_from is None else str(vocab_from)},
        "changed": {"teacher": {"path": str(teacher_dir), "sha256": teacher_sha}, "data": corpus.to_json(),
                    "student": describe(spec, vocab_from), "training": training.to_json()},
    }
    student_label = "student (distilled)"
    with pass_output(init, output_dir, list(result.state.items()), init.config, entry, force) as out:
        (out.path / TRAIN_LOG_NAME).write_text("".join(json.dumps(r) + "\n" for r in result.log), encoding="utf-8")
        learning_curve(result.log, out.path / CURVE_PLOT_NAME)
        folders = [("teacher", teacher_dir)]
        if spec.from_teacher:
            folders.append(("pruned, not distilled", init_dir))
        folders.append((student_label, out.path))
        if then_quantize is not None:  # written before the student is renamed into place: measured in the same run
            qdir = quantized_dir(output_dir, then_quantize)
            quantize(out.path, qdir, mode=then_quantize, force=force)
            folders.append((f"student {then_quantize}", qdir))
        rows, signature = measure_models(folders, measure_lines, dev_refs, decoding, progress)
        rows = [r if r.folder != str(out.path) else ModelRow(**{**r.to_json(), "folder": str(output_dir)})
                for r in rows]
        report = DistillReport(teacher=str(teacher_dir), teacher_sha256=teacher_sha, data=corpus,
                               kd_seconds=kd.seconds, kd_chunks_reused=kd.chunks_reused, training=training,
                               models=rows, measured_on=measured_on, timing=TURNS_TIMING, signature=signature)
        conversion = read_conversion(out.path)
        conversion["history"][-1]["report"] = _history_report(rows, student_label)
        out.write_conversion(conversion)
        report.write(out.path)
        _plot(report, out.path)
    return report


__all__ = ["STUDENT_HELP", "TrainOptions", "WORK_MARKER", "default_work_dir", "distill", "measure_models",
           "quantized_dir"]
