"""``modelport distill``: a smaller student trained on the teacher's translations."""

from __future__ import annotations

import argparse

from modelport.cli.common import add_command
from modelport.cli.console import progress_shown
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json
from modelport.generation.options import SHARD_CHUNK_LINES, nonnegative_float, positive_float, positive_int, smoothing
from modelport.generation.semantics import DECODING_GROUP_TITLE, NBEST_OPTIONS, add_decoding_arguments, decoding_kwargs

DEFAULT = " (default: %(default)s)"

DESCRIPTION = """\
Sequence-level knowledge distillation: the teacher translates --data (its own semantics and beam, or
the decoding options given), then a student (pruned from the teacher, or a fresh preset network)
is trained on those translations and written as an ordinary ported folder, with distill_report.md
(teacher vs student: size, tokens/s, BLEU/chrF on --dev, agreement), train_log.jsonl and plots.
The teacher's translations and training checkpoints stay in the work directory: after an interruption,
--resume continues without redoing finished work. Runs unchanged under torchrun (each process
translates and trains its share; DistributedDataParallel, gloo on CPU, nccl on CUDA)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``distill``."""
    p = add_command(sub, "distill", run, help="train a smaller student on a ported teacher's translations",
                    description=DESCRIPTION, ported_dir="the teacher: a ported folder",
                    examples=[
                        "modelport distill ported/en-de student/ --data train.en --dev valid.en --dev-ref valid.de",
                        "modelport distill ported/en-de tiny/ --data train.en --student tiny --then-quantize int8",
                        "torchrun --standalone --nproc_per_node 2 -m modelport.cli distill ported/en-de student/ "
                        "--data train.en",
                        "torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 "
                        "-m modelport.cli distill ported/en-de student/ --data train.en"])
    p.add_argument("output_dir", help="the student's ported folder")
    p.add_argument("--data", required=True, metavar="FILE", help="source text the teacher translates (one "
                                                                 "sentence a line): the training data")
    p.add_argument("--dev", metavar="FILE", help="dev source lines: early stopping and the report's BLEU/chrF")
    p.add_argument("--dev-ref", metavar="FILE", help="references of --dev")
    p.add_argument("--student", default="prune:decoder-layers=1",
                   help="prune:KEY=VALUE,... (encoder-layers, decoder-layers, heads, ffn: starts from the "
                        "teacher's weights), tiny (6 encoder layers, 2-layer SSRU decoder, d 256, FFN 1536), "
                        "base (6+6, d 512, FFN 2048) or config:FILE.json (config fields replacing the teacher's)"
                        " (default: %(default)s)")
    p.add_argument("--vocab-from", metavar="FILE", help="trim the vocabulary first, as `prune --vocab-from` does")
    p.add_argument("--then-quantize", metavar="MODE", help="also write the student quantized (int8, int8-weights, "
                                                           "fp16, bf16) to OUTPUT_DIR-MODE, measured in the report")
    p.add_argument("--work-dir", metavar="DIR", help="teacher translations and checkpoints (default: "
                                                     "OUTPUT_DIR.distill-work)")
    p.add_argument("--resume", action="store_true", help="continue the run the work directory holds")
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists and start the work "
                                                        "directory over")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--chunk-lines", type=positive_int, default=SHARD_CHUNK_LINES, metavar="N",
                   help="lines the teacher translates per chunk (the unit of resuming and of sharding)" + DEFAULT)
    t = p.add_argument_group("training")
    t.add_argument("--batch-tokens", type=positive_int, default=4096, metavar="N", dest="train_max_tokens",
                   help="padded tokens per training batch (fairseq-train's --max-tokens)" + DEFAULT)
    t.add_argument("--lr", type=positive_float, default=5e-4, help="peak learning rate (AdamW)" + DEFAULT)
    t.add_argument("--warmup-updates", type=positive_int, default=200, metavar="N",
                   help="linear warm-up, then inverse square root" + DEFAULT)
    t.add_argument("--label-smoothing", type=smoothing, default=0.1, metavar="F", help="label smoothing" + DEFAULT)
    t.add_argument("--weight-decay", type=nonnegative_float, default=0.0, metavar="F", help="AdamW's" + DEFAULT)
    t.add_argument("--clip-norm", type=nonnegative_float, default=0.0, metavar="F",
                   help="clip the gradient norm to F, 0: no clipping" + DEFAULT)
    t.add_argument("--accumulate", type=positive_int, default=1, metavar="N", help="batches per update" + DEFAULT)
    t.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU or CUDA)")
    t.add_argument("--max-updates", type=positive_int, metavar="N", help="updates at most")
    t.add_argument("--max-epochs", type=positive_int, default=10, metavar="N", help="epochs at most" + DEFAULT)
    t.add_argument("--max-minutes", type=positive_float, metavar="M", help="stop training after M minutes")
    t.add_argument("--save-every", type=positive_int, default=200, metavar="N",
                   help="checkpoint every N updates" + DEFAULT)
    t.add_argument("--eval-every", type=positive_int, default=200, metavar="N",
                   help="dev scores every N updates" + DEFAULT)
    t.add_argument("--patience", type=positive_int, default=5, metavar="N",
                   help="stop after N evaluations without a better dev score" + DEFAULT)
    t.add_argument("--metric", choices=("bleu", "chrf"), default="bleu",
                   help="the dev score early stopping reads" + DEFAULT)
    t.add_argument("--train-seed", type=int, default=1, metavar="N",
                   help="seeds the student's initialisation and the batch order (runs with one seed are identical)"
                        + DEFAULT)
    add_decoding_arguments(p.add_argument_group(DECODING_GROUP_TITLE + " (the teacher's translations)"),
                           without=NBEST_OPTIONS)


TRAINING_FIELDS = ("lr", "warmup_updates", "label_smoothing", "weight_decay", "clip_norm", "accumulate",
                   "bf16", "max_updates", "max_epochs", "max_minutes", "save_every", "eval_every", "patience",
                   "metric")


def run(args: argparse.Namespace) -> int:
    """Distill and print the report (rank 0 of a torchrun job only)."""
    from modelport.generation.shards import leave, world
    from modelport.passes.distill import TrainOptions, distill  # lazy: imports torch

    report = distill(args.ported_dir, args.output_dir, data=args.data, dev=args.dev, dev_references=args.dev_ref,
                     student=args.student, vocab_from=args.vocab_from, work_dir=args.work_dir, resume=args.resume,
                     force=args.force, then_quantize=args.then_quantize,
                     decoding=decoding_kwargs(vars(args), without=NBEST_OPTIONS),
                     training=TrainOptions(max_tokens=args.train_max_tokens, seed=args.train_seed,
                                           **{k: getattr(args, k) for k in TRAINING_FIELDS}),
                     chunk_lines=args.chunk_lines, progress=progress_shown(args))
    if report is not None:
        print_json(report.to_json()) if args.json else print_lines(report.summary_lines(args.output_dir))
    leave(world())
    return 0
