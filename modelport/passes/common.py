"""What every pass shares: write a new ported folder atomically (through
:func:`modelport.model.folder.write_folder`) with the pass appended to
``conversion.json``'s history, and measure the result against the original
(size, speed, agreement, BLEU/chrF) as a :class:`PassReport`."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch

from modelport.api import PortedModel, load
from modelport.errors import InvalidInputError
from modelport.generation.translate import Direction
from modelport.metrics import corpus_scores
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import FolderWriter, PortedFolder, read_conversion, with_history, write_folder
from modelport.progress import Steps
from modelport.reports.passes import (Agreement, BeforeAfter, PassMeasurement, PassReport, Quality, Scores,
                                      Signatures, Speed)
from modelport.tokenizers import load_tokenizer


@contextlib.contextmanager
def pass_output(source: PortedFolder, output: str | os.PathLike[str], tensors: Iterable[tuple[str, torch.Tensor]],
                config: Seq2SeqConfig, history: Mapping[str, Any], force: bool, *,
                quantization: Mapping[str, Any] | None = None,
                tokenizer_files: Mapping[str, str | dict[str, Any]] | None = None) -> Iterator[FolderWriter]:
    """A new ported folder: ``source``'s tokenizer and generation defaults,
    the given weights and model ``config`` (with ``quantization`` when
    quantized), and conversion.json with ``history`` appended.
    ``tokenizer_files`` replace files of ``tokenizer/`` (text, or a dict
    written as JSON).

    Written to a temporary sibling, whose writer is yielded so the pass can
    measure the result and write its report there; renamed into place only
    after that, so a failed or interrupted measurement leaves nothing behind."""
    conversion = with_history(source.conversion, history)
    with write_folder(output, force=force) as folder:
        conversion["weights"] = folder.write_weights(tensors)
        folder.write_config(config, source_format=source.data.get("source_format", "unknown"),
                            ensemble_size=source.ensemble_size, quantization=quantization)
        folder.copy_from(source.path, replace_tokenizer_files=tokenizer_files)
        folder.write_conversion(conversion)
        yield folder


TIMED_RUNS = 3
TIMING = f"best of {TIMED_RUNS} runs after a warm-up"


def _quality(before: list[str], after: list[str], refs: list[str]) -> Quality:
    """BLEU/chrF of both models' outputs, rounded, with sacreBLEU's signatures."""
    b, a = corpus_scores(before, refs), corpus_scores(after, refs)
    return Quality(before=Scores(bleu=round(b.bleu, 2), chrf=round(b.chrf, 2)),
                   after=Scores(bleu=round(a.bleu, 2), chrf=round(a.chrf, 2)),
                   signature=Signatures(bleu=a.bleu_signature, chrf=a.chrf_signature))


def _token_diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> float | None:
    """Mean |per-token log-prob difference| over hypotheses both models output identically."""
    diffs = [abs(x - y) for b, a in zip(before, after)
             for x, y in zip(b.get("positional_scores") or [], a.get("positional_scores") or [])]
    return round(sum(diffs) / len(diffs), 6) if diffs else None


def check_direction(folder: PortedFolder, direction: Direction, data: Sequence[str] | None) -> None:
    """Before any work: ``direction`` is one the folder's ``translate`` takes
    (a multilingual port's --data is translated between two of its languages,
    which the user names); languages without ``data`` are refused, as nothing
    would be translated."""
    if data is None:
        if direction.given:
            raise InvalidInputError("--source-lang/--target-lang say which way --data is translated; give --data")
        return
    tok = load_tokenizer(folder.tokenizer_dir, model_rows=folder.config.vocab_rows)
    direction.tokens(tok, folder.generation_config, folder.config.eos_token_id)


def run_once(ported: PortedModel, lines: list[str],
             direction: Direction = Direction()) -> tuple[list[dict[str, Any]], float]:
    start = time.perf_counter()
    out = [h[0] for h in ported.translate(lines, **direction.options())]
    return out, time.perf_counter() - start


def timed_runs(ported: PortedModel, lines: list[str], bar: Steps,
               direction: Direction = Direction()) -> tuple[list[dict[str, Any]], list[float]]:
    """The first-best outputs and the tokens/s of each of :data:`TIMED_RUNS` runs.
    One timed run is noise (a cold cache, a busy neighbour): the issue that
    asked for this saw one run claim 6.15x where the best of three gives 0.83x."""
    speeds: list[float] = []
    out: list[dict[str, Any]] = []
    for _ in range(TIMED_RUNS):
        out, seconds = run_once(ported, lines, direction)
        speeds.append(round(sum(len(h["tokens"]) for h in out) / max(seconds, 1e-9), 1))
        bar.advance("timed run")
    return out, speeds


# timed runs of one model further apart than this (fastest / slowest) say the timing is noise
UNSTEADY_SPREAD = 2.0


def _runs(speeds: Sequence[float]) -> str:
    return ", ".join(f"{v:,.1f}" for v in speeds)


def measure(before: PortedFolder, after_dir: os.PathLike[str], data: list[str] | None,
            references: list[str] | None, target_ids: Sequence[int] | None = None,
            progress: bool = False, direction: Direction = Direction()) -> PassMeasurement:
    """Parameters (:attr:`PortedFolder.parameters`) and bytes on disk
    before/after; with ``data``, tokens/s of both in the same process (folder
    decoding defaults; the best of :data:`TIMED_RUNS` timed runs of each, after
    one warm-up of each), identical first-best outputs and the mean |score|
    and |per-token log-prob| differences where they agree; with
    ``references``, sacreBLEU BLEU and chrF of both. ``target_ids`` maps the
    after model's target ids to the before model's, for a pass that
    renumbered the vocabulary; ``direction`` the languages of a multilingual
    port (see :func:`check_direction`). The after folder is loaded in any case, so a
    folder that cannot load is never renamed into place. ``progress`` draws a
    bar over the runs on stderr."""
    after_model = load(after_dir)
    after = PortedFolder.open(after_dir)
    measured = PassMeasurement(parameters=BeforeAfter(before.parameters, after.parameters),
                               bytes_on_disk=BeforeAfter(before.weight_bytes, after.weight_bytes))
    if not data:
        return measured
    before_model = load(before.path)
    with Steps("measuring", 1 + 2 * TIMED_RUNS, progress) as bar:
        run_once(before_model, data[:2], direction), run_once(after_model, data[:2], direction)  # warm-up
        bar.advance("warm-up")
        ours_b, runs_b = timed_runs(before_model, data, bar, direction)
        ours_a, runs_a = timed_runs(after_model, data, bar, direction)
    if target_ids is not None:
        ours_a = [{**h, "tokens": [target_ids[t] for t in h["tokens"]]} for h in ours_a]
    same = [i for i, (x, y) in enumerate(zip(ours_b, ours_a)) if x["tokens"] == y["tokens"]]
    best_b, best_a = max(runs_b), max(runs_a)
    spread = max(max(runs) / max(min(runs), 1e-9) for runs in (runs_b, runs_a))
    if spread > UNSTEADY_SPREAD:  # 5 lines on a busy machine: 9.0 to 1,292.5 tok/s, a "77.86x" speed-up
        warnings.warn(f"the timed runs of one model varied {spread:.1f}x (before: {_runs(runs_b)}; after: "
                      f"{_runs(runs_a)} tok/s): the machine was busy or --data is too short to time, so the "
                      "speed-up is not reliable", stacklevel=2)
    speed = Speed(before=best_b, after=best_a, speedup=round(best_a / max(best_b, 1e-9), 2), timing=TIMING,
                  runs_before=runs_b, runs_after=runs_a)
    agreement = Agreement(
        lines=len(data), identical_outputs=len(same), identical_percent=round(100 * len(same) / len(data), 1),
        mean_abs_score_diff=(round(sum(abs(ours_b[i]["score"] - ours_a[i]["score"]) for i in same) / len(same), 6)
                             if same else None),
        mean_abs_token_logprob_diff=_token_diff([ours_b[i] for i in same], [ours_a[i] for i in same]))
    quality = None
    if references:
        quality = _quality([h["text"] for h in ours_b], [h["text"] for h in ours_a], references)
    return PassMeasurement(parameters=measured.parameters, bytes_on_disk=measured.bytes_on_disk,
                           tokens_per_second=speed, agreement=agreement, quality=quality, languages=direction.pair)


def finish(folder: FolderWriter, report: PassReport) -> PassReport:
    """Store the report in the output folder (pass_report.json/.md) and in
    conversion.json's last history entry."""
    conversion = read_conversion(folder.path)
    conversion["history"][-1]["report"] = report.measured.to_json()
    folder.write_conversion(conversion)
    report.write(folder.path)
    return report
