"""``modelport inspect``: what a foreign checkpoint or a ported folder contains."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelport.cli.common import add_command, add_ported_argument, add_source_options, converter_options
from modelport.cli.printing import print_plan_summary, print_ported_summary
from modelport.cli.streams import print_json
from modelport.errors import InvalidInputError


DESCRIPTION = """\
Detect the format of SOURCE, check every option and weight against the unified model, and print the
architecture, parameter count and what would be dropped. Writes nothing. Unsupported options exit 2,
all listed."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``inspect``."""
    p = add_command(sub, "inspect", run, help="show what a checkpoint or ported folder contains",
                    description=DESCRIPTION)
    add_ported_argument(p, "foreign checkpoint (file or directory) or ported folder", dest="source",
                        checkpoints=True)
    add_source_options(p)
    p.add_argument("--options", action="store_true",
                   help="also list every option the checkpoint records, in the source framework's names")
    p.add_argument("--json", action="store_true", help="print JSON (includes the options)")


def run(args: argparse.Namespace) -> int:
    """Print a ported folder's summary, or a foreign checkpoint's conversion plan."""
    from modelport.api import inspect, load  # lazy: imports torch
    from modelport.model.folder import not_a_port  # lazy: imports torch

    source = Path(args.source)
    export = not_a_port(source, exports_only=True)  # a T5 transformers folder is a source to inspect
    if export is not None:
        raise export
    if (source / "config.json").is_file() and (source / "conversion.json").is_file():
        given = [flag for flag, value in (("--format", args.format), ("--checkpoint", args.checkpoint),
                                          ("--source-lang", args.source_lang), ("--target-lang", args.target_lang),
                                          ("--options", args.options)) if value]
        if given:  # read only for a foreign checkpoint: silently ignored here, they seemed to do something
            raise InvalidInputError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to a foreign "
                                    f"checkpoint, but `{args.source}` is a ported folder (the options of the "
                                    "checkpoint it was converted from are in its conversion.json, `foreign_options`)")
        ported = load(source)
        summary = ported.summary()
        languages = list(getattr(ported.tokenizer, "languages", ()))
        if languages:
            summary["languages"] = languages
        codes = list(getattr(ported.tokenizer, "language_codes", ()))  # Marian: >>xxx<< begins the source line
        if codes:
            summary["language_tokens"] = codes
        if args.json:
            print_json(summary)
        else:
            print_ported_summary(source, summary)
            _print_languages(languages)
            if codes:
                sys.stdout.write(f"target language tokens ({len(codes)}; begin each source line with one): "
                                 f"{', '.join(codes)}\n")
        return 0
    plan = inspect(args.source, format=args.format, **converter_options(args))
    summary = plan.summary()
    if args.json:
        print_json(summary)
    else:
        print_plan_summary(summary)
        _print_languages(summary.get("tokenizer", {}).get("languages") or [])
        if args.options:
            sys.stdout.write(f"{summary['format']} options found:\n")
            for key, value in summary.get("foreign_options", {}).items():
                sys.stdout.write(f"  {key}: {value}\n")
    return 0


def _print_languages(languages: list[str]) -> None:
    """A multilingual model's languages (what --source-lang/--target-lang accept)."""
    if languages:
        sys.stdout.write(f"languages ({len(languages)}): {', '.join(languages)}\n")
