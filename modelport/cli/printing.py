"""The human-readable summaries the commands print (``--json`` prints the
whole result instead). Typed reports (parity, pass, export: modelport.reports)
print themselves through ``summary_lines()``; what is still a dict (a
conversion plan, a ported folder's summary, a publish result) is printed here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelport.reports.base import options_text


def fmt_params(n: int) -> str:
    """A parameter count: ``1.63M`` from 100,000 up, else with separators."""
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def print_plan_summary(summary: dict[str, Any], written: str | None = None) -> None:
    """A conversion plan (``inspect`` of a foreign checkpoint, ``convert``)."""
    arch = summary["architecture"]
    out = sys.stdout
    out.write(f"format:        {summary['format']}\n")
    out.write(f"source:        {summary['source']}\n")
    if written:
        out.write(f"written to:    {written}\n")
    members = summary["ensemble_size"]
    out.write(f"ensemble:      {members} member{'s' if members > 1 else ''}\n")
    out.write(f"parameters:    {fmt_params(summary['parameters_per_member'])} per member\n")
    _write_architecture(arch)
    tok = summary.get("tokenizer") or {}
    if tok:
        out.write(f"tokenizer:     {tok.get('type')} {tok.get('source_lang')}->{tok.get('target_lang')}, "
                  f"bpe {tok.get('bpe') or 'none'}\n")
    _write_generation(summary.get("generation") or {})
    dropped = summary.get("dropped") or {}
    out.write(f"dropped:       {len(dropped)} entr{'y' if len(dropped) == 1 else 'ies'}\n")
    for key, reason in dropped.items():
        out.write(f"  - {key}: {reason}\n")


def print_ported_summary(source: Path, summary: dict[str, Any]) -> None:
    """A ported folder (``inspect PORTED_DIR``): what :meth:`PortedModel.summary
    <modelport.api.PortedModel.summary>` holds."""
    out = sys.stdout
    origin = f" (from {Path(str(summary['source'])).name})" if summary.get("source") else ""
    out.write(f"ported folder: {source}\nsource format: {summary['source_format']}{origin}\n"
              f"ensemble:      {summary['ensemble_size']}\n"
              f"parameters:    {fmt_params(summary['parameters_per_member'])} per member\n")
    _write_architecture(summary["architecture"])
    out.write(f"weights:       {summary['quantization'] or 'float32'}\n")
    _write_generation(summary.get("generation") or {})
    passes = summary.get("passes") or []
    out.write(f"passes:        {len(passes) or 'none'}\n")
    for i, applied in enumerate(passes, 1):
        options = options_text(applied.get("options") or {})
        out.write(f"  {i}. {applied.get('pass')}{' ' + options if options else ''}\n")
    parity = summary.get("parity")
    if parity is None:
        out.write("parity:        not validated here (run `modelport validate`)\n")
    else:
        lines = f"{parity['lines']} lines" if parity.get("lines") is not None else "? lines"
        checks = parity.get("checks") and f"checks: {', '.join(parity['checks'])}"
        how = ", ".join(x for x in (lines, parity.get("semantics") and f"semantics {parity['semantics']}", checks)
                        if x)
        verdict = "passed" if parity["passed"] else "FAILED"
        out.write(f"parity:        {verdict} against {parity['reference'] or '?'} ({how})"
                  f"{': ' + parity['failure'] if not parity['passed'] and parity.get('failure') else ''}\n")


def _write_architecture(arch: dict[str, Any]) -> None:
    """The layers, vocabulary and behaviour lines of a :meth:`Seq2SeqConfig.architecture
    <modelport.model.config.Seq2SeqConfig.architecture>`."""
    out = sys.stdout
    out.write(f"layers:        {arch['encoder_layers']} encoder, {arch['decoder_layers']} decoder; "
              f"d_model {arch['d_model']}, heads {arch['heads'][0]}/{arch['heads'][1]}, "
              f"ffn {arch['ffn_dim'][0]}/{arch['ffn_dim'][1]}\n")
    out.write(f"vocabulary:    source {arch['vocab'][0]}, target {arch['vocab'][1]}"
              f"{' (shared embeddings)' if arch['shared_embeddings'] else ''}"
              f"{', tied output' if arch['tied_output'] else ''}\n")
    out.write(f"behaviour:     {arch['norm']}, {arch['positions']} positions, {arch['activation']}\n")


def _write_generation(gen: dict[str, Any]) -> None:
    if gen:
        sys.stdout.write("generation:    " + ", ".join(f"{k}={v}" for k, v in gen.items()) + "\n")


def print_lines(lines: list[str]) -> None:
    """A report's ``summary_lines()`` on stdout."""
    sys.stdout.write("".join(line + "\n" for line in lines))


def publish_summary(result: dict[str, Any], repo_id: str, private: bool, dry_run: bool) -> None:
    """What ``publish`` uploaded (or, with ``--dry-run``, would upload)."""
    out = sys.stdout
    if dry_run:
        out.write(f"dry run: would upload {len(result['files'])} files to {repo_id}@{result['revision']}"
                  f"{' (private)' if private else ''}\n")
        for f in result["files"]:
            out.write(f"{f['size']:>12}  {f['sha256']}  {f['path']}\n")
    else:
        out.write(f"published {len(result['files'])} files to {repo_id}@{result['revision']}: "
                  f"{result['commit_url']}\n")
