"""What every pass shares: read a ported folder, write a new one atomically
with the pass appended to ``conversion.json``'s history, and measure the
result against the original (size, speed, agreement, BLEU/chrF)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from modelport.model.io import atomic_output_dir, read_json, save_weights, weight_files, write_json


def folder_bytes(directory: Path) -> int:
    """Bytes of the weight files of a ported folder (what a download costs)."""
    return sum(p.stat().st_size for p in weight_files(directory))


@contextlib.contextmanager
def pass_output(source: Path, output: str | os.PathLike[str], tensors: Iterable[tuple[str, torch.Tensor]],
                config: dict[str, Any], history: dict[str, Any], force: bool,
                tokenizer_files: Mapping[str, str | dict[str, Any]] | None = None) -> Iterator[Path]:
    """A new ported folder: ``source``'s tokenizer and generation defaults,
    the given weights and config.json, and conversion.json with ``history``
    appended. ``tokenizer_files`` replace files of ``tokenizer/`` (text, or a
    dict written as JSON).

    Written to a temporary sibling, which is yielded so the pass can measure
    the result and write its report there; renamed into place only after
    that, so a failed or interrupted measurement leaves nothing behind."""
    conversion = read_json(source / "conversion.json")
    conversion.setdefault("history", []).append(history)
    with atomic_output_dir(output, force=force) as tmp:
        conversion["weights"] = save_weights(tmp, list(tensors))
        write_json(tmp / "config.json", config)
        shutil.copytree(source / "tokenizer", tmp / "tokenizer")
        for name, content in (tokenizer_files or {}).items():
            if isinstance(content, str):
                (tmp / "tokenizer" / name).write_text(content, encoding="utf-8")
            else:
                write_json(tmp / "tokenizer" / name, content)
        shutil.copyfile(source / "generation_config.json", tmp / "generation_config.json")
        write_json(tmp / "conversion.json", conversion)
        yield tmp


def _bleu(hyps: list[str], refs: list[str]) -> dict[str, float]:
    from modelport.validators.metrics import bleu_chrf

    return {k: round(v, 2) for k, v in bleu_chrf(hyps, refs).items()}


def _token_diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> float | None:
    """Mean |per-token log-prob difference| over hypotheses both models output identically."""
    diffs = [abs(x - y) for b, a in zip(before, after)
             for x, y in zip(b.get("positional_scores") or [], a.get("positional_scores") or [])]
    return round(sum(diffs) / len(diffs), 6) if diffs else None


def _run(ported: Any, lines: list[str]) -> tuple[list[dict[str, Any]], float]:
    start = time.perf_counter()
    out = [h[0] for h in ported.translate(lines)]
    return out, time.perf_counter() - start


def measure(before_dir: Path, after_dir: Path, data: list[str] | None,
            references: list[str] | None, target_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Parameters and bytes on disk before/after; with ``data``, tokens/s of
    both in the same run (folder decoding defaults), identical first-best
    outputs and the mean |score| and |per-token log-prob| differences where
    they agree; with
    ``references``, sacreBLEU BLEU and chrF of both. ``target_ids`` maps the
    after model's target ids to the before model's, for a pass that
    renumbered the vocabulary."""
    import modelport

    before, after = modelport.load(before_dir), modelport.load(after_dir)
    report: dict[str, Any] = {
        "parameters": {"before": before.parameters, "after": after.parameters},
        "bytes_on_disk": {"before": folder_bytes(before_dir), "after": folder_bytes(after_dir)},
    }
    if data:
        _run(before, data[:2]), _run(after, data[:2])  # warm-up
        ours_b, t_b = _run(before, data)
        ours_a, t_a = _run(after, data)
        if target_ids is not None:
            ours_a = [{**h, "tokens": [target_ids[t] for t in h["tokens"]]} for h in ours_a]
        tokens_b = sum(len(h["tokens"]) for h in ours_b)
        tokens_a = sum(len(h["tokens"]) for h in ours_a)
        same = [i for i, (x, y) in enumerate(zip(ours_b, ours_a)) if x["tokens"] == y["tokens"]]
        report["tokens_per_second"] = {"before": round(tokens_b / t_b, 1), "after": round(tokens_a / t_a, 1),
                                       "speedup": round((tokens_a / t_a) / (tokens_b / t_b), 2)}
        report["agreement"] = {
            "lines": len(data), "identical_outputs": len(same),
            "identical_percent": round(100 * len(same) / len(data), 1),
            "mean_abs_score_diff": (round(sum(abs(ours_b[i]["score"] - ours_a[i]["score"]) for i in same)
                                          / len(same), 6) if same else None),
            "mean_abs_token_logprob_diff": _token_diff([ours_b[i] for i in same], [ours_a[i] for i in same]),
        }
        if references:
            report["quality"] = {"before": _bleu([h["text"] for h in ours_b], references),
                                 "after": _bleu([h["text"] for h in ours_a], references)}
    return report


def finish(out: Path, name: str, options: dict[str, Any], changed: dict[str, Any], report: dict[str, Any]) -> dict:
    """Store the report in the output folder (pass_report.json/.md) and in
    conversion.json's last history entry."""
    from modelport.reports import write_report

    conversion = read_json(out / "conversion.json")
    conversion["history"][-1]["report"] = report
    write_json(out / "conversion.json", conversion)
    full = {"pass": {"name": name, "options": options, "changed": changed}, **report}
    write_report(full, out, stem="pass_report", title=f"{name} report")
    return full
