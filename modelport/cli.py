"""The ``modelport`` command.

Exit codes: 0 success, 1 internal error (a bug: traceback printed),
2 bad input or unsupported checkpoint (one clear line), 3 parity failed.
Progress bars go to stderr; results to stdout (``--json`` where a machine
reads them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelport import __version__
from modelport.errors import InvalidInputError, ModelportError

Handler = Callable[[argparse.Namespace], int]


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().rstrip("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a size (examples: 500MB, 2GB, 1048576)") from None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def _print_plan_summary(summary: dict[str, Any], written: str | None = None) -> None:
    arch = summary["architecture"]
    out = sys.stdout
    out.write(f"format:        {summary['format']}\n")
    out.write(f"source:        {summary['source']}\n")
    if written:
        out.write(f"written to:    {written}\n")
    members = summary["ensemble_size"]
    out.write(f"ensemble:      {members} member{'s' if members > 1 else ''}\n")
    out.write(f"parameters:    {_fmt_params(summary['parameters_per_member'])} per member\n")
    out.write(f"layers:        {arch['encoder_layers']} encoder, {arch['decoder_layers']} decoder; "
              f"d_model {arch['d_model']}, heads {arch['heads'][0]}/{arch['heads'][1]}, "
              f"ffn {arch['ffn_dim'][0]}/{arch['ffn_dim'][1]}\n")
    out.write(f"vocabulary:    source {arch['vocab'][0]}, target {arch['vocab'][1]}"
              f"{' (shared embeddings)' if arch['shared_embeddings'] else ''}"
              f"{', tied output' if arch['tied_output'] else ''}\n")
    out.write(f"behaviour:     {arch['norm']}, {arch['positions']} positions, {arch['activation']}\n")
    tok = summary.get("tokenizer") or {}
    if tok:
        out.write(f"tokenizer:     {tok.get('type')} {tok.get('source_lang')}->{tok.get('target_lang')}, "
                  f"bpe {tok.get('bpe') or 'none'}\n")
    gen = summary.get("generation") or {}
    if gen:
        out.write("generation:    " + ", ".join(f"{k}={v}" for k, v in gen.items()) + "\n")
    dropped = summary.get("dropped") or {}
    out.write(f"dropped:       {len(dropped)} entr{'y' if len(dropped) == 1 else 'ies'}\n")
    for key, reason in dropped.items():
        out.write(f"  - {key}: {reason}\n")


# ---------------------------------------------------------------------------
# commands


def cmd_inspect(args: argparse.Namespace) -> int:
    from modelport.api import inspect, load

    source = Path(args.source)
    if (source / "config.json").is_file() and (source / "conversion.json").is_file():
        ported = load(source)
        summary = ported.summary()
        if args.json:
            _print_json(summary)
        else:
            cfg = summary["config"]
            sys.stdout.write(f"ported folder: {source}\nsource format: {summary['source_format']}\n"
                             f"ensemble:      {summary['ensemble_size']}\n"
                             f"parameters:    {_fmt_params(summary['parameters_per_member'])} per member\n"
                             f"layers:        {cfg['encoder_layers']} encoder, {cfg['decoder_layers']} decoder, "
                             f"d_model {cfg['d_model']}\n"
                             f"history:       {len(ported.conversion.get('history', []))} pass(es)\n")
        return 0
    plan = inspect(args.source, format=args.format, **_converter_options(args))
    summary = plan.summary()
    if args.json:
        _print_json(summary)
    else:
        _print_plan_summary(summary)
    return 0


def _converter_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"checkpoint": args.checkpoint, "source_lang": args.source_lang, "target_lang": args.target_lang}


def cmd_convert(args: argparse.Namespace) -> int:
    from modelport.converters.base import get_converter, write_ported

    if Path(args.output_dir).exists() and not args.force:
        from modelport.errors import OutputExistsError

        raise OutputExistsError(args.output_dir)
    cls = get_converter(args.source, args.format)
    plan = cls(args.source, **_converter_options(args)).plan(progress=True)
    summary = plan.summary()
    write_ported(plan, args.output_dir, force=args.force, shard_bytes=args.shard_size, progress=True)
    if args.json:
        _print_json({**summary, "output_dir": args.output_dir})
    else:
        _print_plan_summary(summary, written=args.output_dir)
    return 0


# ---------------------------------------------------------------------------
# parser


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", help="source format (default: detected; see `modelport inspect`)")
    p.add_argument("--checkpoint", metavar="A.pt[:B.pt]",
                   help="checkpoint file(s) inside SOURCE; several separated by ':' form an ensemble")
    p.add_argument("--source-lang", help="source language, when the checkpoint does not name it")
    p.add_argument("--target-lang", help="target language, when the checkpoint does not name it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelport",
        description="Port seq2seq checkpoints (fairseq, ...) into one PyTorch encoder-decoder, prove parity, "
                    "shrink and publish them.",
        epilog="exit codes: 0 ok, 1 internal error (a bug), 2 bad input or unsupported checkpoint, "
               "3 parity failed",
    )
    parser.add_argument("--version", action="version", version=f"modelport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("inspect", help="show what a checkpoint or ported folder contains",
                       description="Detect the format of SOURCE, check every option and weight against the "
                                   "unified model, and print the architecture, parameter count and what "
                                   "would be dropped. Writes nothing. Unsupported options exit 2, all listed.")
    p.add_argument("source", help="foreign checkpoint (file or directory) or ported folder")
    _add_source_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("convert", help="convert a foreign checkpoint into a ported folder",
                       description="Convert SOURCE into OUTPUT_DIR (config.json, model.safetensors, tokenizer/, "
                                   "generation_config.json, conversion.json). The folder is written to a "
                                   "temporary sibling and renamed into place, so a failed run leaves nothing.")
    p.add_argument("source", help="foreign checkpoint: directory or file (fairseq: model.pt + dict.*.txt)")
    p.add_argument("output_dir", help="ported folder to write")
    _add_source_options(p)
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
    p.add_argument("--shard-size", type=_size, default=None, metavar="SIZE",
                   help="largest safetensors file before sharding (default 2GB)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_convert)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later commands (tokenize, translate, validate, ...) register here.
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModelportError as e:
        sys.stderr.write(f"modelport: error: {e}\n")
        return e.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("modelport: interrupted\n")
        return 130
    except FileNotFoundError as e:  # raised before a typed check could run (e.g. -i FILE)
        sys.stderr.write(f"modelport: error: {InvalidInputError(f'`{e.filename}` does not exist')}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
