"""``modelport convert``: a foreign checkpoint into a ported folder."""

from __future__ import annotations

import argparse

from modelport.cli.common import add_command, add_source_options, converter_options, size
from modelport.cli.console import progress_shown
from modelport.cli.printing import print_plan_summary
from modelport.cli.streams import print_json


DESCRIPTION = """\
Convert SOURCE into OUTPUT_DIR (config.json, model.safetensors, tokenizer/, generation_config.json,
conversion.json). The folder is written to a temporary sibling and renamed into place, so a failed
run leaves nothing."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``convert``."""
    p = add_command(sub, "convert", run, help="convert a foreign checkpoint into a ported folder",
                    description=DESCRIPTION,
                    examples=["modelport convert assets/default-model ported/en-de",
                              "modelport convert fairseq-dir/ ported/ens --checkpoint a.pt:b.pt --force",
                              "modelport convert opus-mt-en-de/ ported/marian --format marian --shard-size 500MB"])
    p.add_argument("source", help="foreign checkpoint: directory or file (fairseq: model.pt + dict.*.txt; "
                   "Marian: model .npz + vocabularies; T5: config.json + weights + spiece.model)")
    p.add_argument("output_dir", help="ported folder to write")
    add_source_options(p)
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
    p.add_argument("--shard-size", type=size, default=None, metavar="SIZE",
                   help="largest safetensors file before sharding, as huggingface_hub reads sizes: 2GB = "
                        "2*10**9 bytes, 2GiB = 2*2**30, or a number of bytes (default: 2GiB)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="convert even if weights hold NaN or infinity (refused by default; a warning names them)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    """Convert, writing the folder atomically; print the plan."""
    from modelport.api import plan_and_write  # lazy: imports torch

    plan = plan_and_write(args.source, args.output_dir, format=args.format, force=args.force,
                          progress=progress_shown(args),
                          shard_bytes=args.shard_size, allow_nonfinite=args.allow_nonfinite,
                          **converter_options(args))
    summary = plan.summary()
    if args.json:
        print_json({**summary, "output_dir": args.output_dir})
    else:
        print_plan_summary(summary, written=args.output_dir)
    return 0
