"""``modelport quantize``: an 8-bit or half-precision copy of a ported folder."""

from __future__ import annotations

import argparse

from modelport.cli.common import add_command, add_pass_options
from modelport.cli.console import progress_shown
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json, read_optional_lines


DESCRIPTION = """\
int8: int8 weights with per-row scales and int8 matrix products on CPU; int8-weights: int8 storage,
fp32 compute; fp16/bf16: half storage and compute. Reports size, tokens/s and agreement with the
original (--data), and BLEU/chrF (--references)."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``quantize``."""
    p = add_command(sub, "quantize", run, help="write an 8-bit or half-precision copy of a ported folder",
                    description=DESCRIPTION)
    add_pass_options(p)
    p.add_argument("--mode", required=True, choices=["int8", "int8-weights", "fp16", "bf16"])


def run(args: argparse.Namespace) -> int:
    """Quantize and print the pass report."""
    from modelport.passes import quantize  # lazy: imports torch

    report = quantize(args.ported_dir, args.output_dir, mode=args.mode, data=read_optional_lines(args.data),
                      references=read_optional_lines(args.references), force=args.force,
                      progress=progress_shown(args))
    print_json(report.to_json()) if args.json else print_lines(report.summary_lines(args.output_dir))
    return 0
