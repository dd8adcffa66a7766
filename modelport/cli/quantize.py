"""``modelport quantize``: an 8-bit or half-precision copy of a ported folder."""

from __future__ import annotations

import argparse

from modelport.cli.common import add_command, add_pass_options
from modelport.cli.console import progress_shown
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json, read_optional_lines
from modelport.errors import InvalidInputError


DESCRIPTION = """\
int8: int8 weights with per-row scales and int8 matrix products on CPU in the linear layers large enough to
gain from them (the others compute in fp32); int8-weights: int8 storage, fp32 compute; fp16/bf16: half
storage and compute. Reports size, tokens/s and agreement with the original (--data), and BLEU/chrF and
their change (--references)."""  # argparse re-flows it
MIN_INT8_WEIGHTS_HELP = "131072"  # modelport.passes.quantize.MIN_INT8_ELEMENTS, not imported: it imports torch


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``quantize``."""
    p = add_command(sub, "quantize", run, help="write an 8-bit or half-precision copy of a ported folder",
                    description=DESCRIPTION)
    add_pass_options(p)
    p.add_argument("--mode", required=True, choices=["int8", "int8-weights", "fp16", "bf16"])
    p.add_argument("--int8-min-weights", type=int, default=None, metavar="N",
                   help=f"int8: linear layers with fewer than N weights (in x out features) compute in fp32, where "
                        f"torch's int8 kernels are slower than fp32 (default {MIN_INT8_WEIGHTS_HELP}; 0 quantizes "
                        "every layer)")
    p.add_argument("--int8-fp32-output-projection", action="store_true",
                   help="int8: compute the output projection (the vocabulary-sized matrix, tied to the embeddings "
                        "or not) in fp32 whatever its size; by default it is one of the layers --int8-min-weights "
                        "chooses, the largest of a big-vocabulary model")


def run(args: argparse.Namespace) -> int:
    """Quantize and print the pass report."""
    from modelport.passes.quantize import MIN_INT8_ELEMENTS, Int8Options, quantize  # lazy: imports torch

    for flag, value in (("--int8-min-weights", args.int8_min_weights is not None),
                        ("--int8-fp32-output-projection", args.int8_fp32_output_projection)):
        if value and args.mode != "int8":
            raise InvalidInputError(f"{flag} applies to --mode int8, but the mode is {args.mode}")
    int8 = None
    if args.int8_min_weights is not None or args.int8_fp32_output_projection:
        int8 = Int8Options(min_elements=MIN_INT8_ELEMENTS if args.int8_min_weights is None else args.int8_min_weights,
                           fp32_output_projection=args.int8_fp32_output_projection)
    report = quantize(args.ported_dir, args.output_dir, mode=args.mode, data=read_optional_lines(args.data),
                      references=read_optional_lines(args.references), force=args.force,
                      progress=progress_shown(args), int8=int8, source_lang=args.source_lang,
                      target_lang=args.target_lang)
    print_json(report.to_json()) if args.json else print_lines(report.summary_lines(args.output_dir))
    return 0
