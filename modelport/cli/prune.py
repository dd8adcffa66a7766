"""``modelport prune``: a copy with fewer layers, heads, FFN neurons or vocabulary entries."""

from __future__ import annotations

import argparse

from modelport.cli.common import add_command, add_pass_options
from modelport.cli.console import progress_shown
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json, read_optional_lines


DESCRIPTION = """\
Copy layers from the teacher with distilBART's table (12->6 keeps 0,2,4,7,9,11; 6->3 keeps 0,2,5;
evenly spaced otherwise), then remove the fraction --ffn of every layer's FFN neurons (smallest
weight magnitude), the fraction --heads of the attention heads and the vocabulary entries
--vocab-from does not use. With --data, heads are ranked by Michel et al. 2019 gradient importance on --data
(targets: --references, else the model's own translations) and removed in 10% steps, so head counts
differ per layer; without --data, by weight magnitude, equally in every attention. No fine-tuning:
expect a quality drop (see the report)."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``prune``."""
    p = add_command(sub, "prune", run, help="write a copy with fewer layers, attention heads, FFN neurons or "
                                            "vocabulary entries",
                    description=DESCRIPTION)
    add_pass_options(p)
    p.add_argument("--encoder-layers", type=int, metavar="N", help="encoder layers to keep")
    p.add_argument("--decoder-layers", type=int, metavar="N", help="decoder layers to keep")
    p.add_argument("--heads", type=float, metavar="F",
                   help="fraction of attention heads to remove, in (0, 1): with --data, of all heads by "
                        "gradient importance (every attention keeps one); without, of every attention's "
                        "heads by ||W_v[h]||*||W_o[:,h]||")
    p.add_argument("--ffn", type=float, metavar="F",
                   help="fraction of FFN neurons to remove per layer, in (0, 1), by ||up[i,:]||*||down[:,i]||")
    p.add_argument("--vocab-from", metavar="FILE",
                   help="in-domain source text: keep only its source tokens, the target tokens of the "
                        "model's n-best translations of it and the special tokens (fairseq Moses+BPE ports "
                        "only); other pieces then read <unk>")


def run(args: argparse.Namespace) -> int:
    """Prune and print the pass report."""
    from modelport.passes import prune  # lazy: imports torch

    report = prune(args.ported_dir, args.output_dir, encoder_layers=args.encoder_layers,
                   decoder_layers=args.decoder_layers, heads=args.heads, ffn=args.ffn, vocab_from=args.vocab_from,
                   data=read_optional_lines(args.data), references=read_optional_lines(args.references),
                   force=args.force, progress=progress_shown(args), source_lang=args.source_lang,
                   target_lang=args.target_lang)
    print_json(report.to_json()) if args.json else print_lines(report.summary_lines(args.output_dir))
    return 0
