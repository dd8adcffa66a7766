"""``modelport validate``: parity of a port against the original framework."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelport.cli.common import PORTED_HELP, add_command, add_language_options, add_runtime_options, runtime_kwargs
from modelport.cli.console import progress_shown
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json, read_lines, read_optional_lines
from modelport.errors import InvalidInputError, ParityError
from modelport.generation.alignment import MODES_HELP, alignment_flag
from modelport.generation.semantics import DECODING_GROUP_TITLE, add_decoding_arguments, decoding_kwargs


DESCRIPTION = """\
Run the reference framework (fairseq for fairseq ports, transformers for T5 ports, Marian itself
through pymarian for Marian ports) and the port on the same lines and compare tokenizer ids, forward
logits and beam-search outputs; a multilingual port per language pair. Marian ports decode with the
shortlist their decoder.yml names on both sides, and compare word alignments when decoder.yml asked
for them or --alignment is given; Marian's decoding flags (--normalize ... --shortlist) reach both
sides alike. A flag only another framework's search reads (Marian's on a fairseq or T5 port, fairseq's
--max-len-a/--unkpen/--min-len ... on a Marian port) is refused, not ignored. Writes
parity_report.json/.md; exit 3 when parity fails."""  # re-flowed


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``validate``."""
    p = add_command(sub, "validate", run, help="prove parity against the original framework",
                    description=DESCRIPTION,
                    ported_dir=PORTED_HELP, hub=True,
                    examples=["modelport validate ported/en-de --reference assets/default-model --data test.en",
                              "modelport validate ported/en-de --reference assets/default-model --data test.en "
                              "--references test.de --beam 5 --report reports/",
                              "modelport validate ported/m2m --reference m2m/ --data test.txt "
                              "--lang-pairs en-de,de-fr",
                              "modelport validate ported/opus-mt --reference opus-mt/ --data test.en "
                              "--alignment hard  # Marian ports",
                              "modelport validate ported/opus-mt --reference opus-mt/ --data test.en --beam 4 "
                              "--normalize 0.6 --mini-batch 16 --shortlist opus-mt/lex.s2t 50 50  # Marian ports"])
    p.add_argument("--reference", required=True,
                   help="the original checkpoint the folder was converted from (fairseq: its directory, file or "
                        "a.pt:b.pt ensemble; T5: the transformers folder; Marian: the directory with "
                        "decoder.yml)")
    p.add_argument("--data", required=True, help="source sentences, one per line")
    p.add_argument("--references", help="reference translations: adds BLEU and chrF for both systems")
    p.add_argument("--report", help="directory for the report (default: PORTED_DIR)")
    p.add_argument("--only", choices=["tokenizer", "forward", "beam"], help="run one check only")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    add_language_options(p)
    p.add_argument("--lang-pairs", metavar="PAIRS",
                   help="multilingual ports: the directions to validate, as fairseq spells them (en-de,de-fr; "
                        "default: --source-lang/--target-lang, else the pairs the checkpoint records when few)")
    group = p.add_argument_group(DECODING_GROUP_TITLE)
    add_decoding_arguments(group, search_only=True)
    group.add_argument("--alignment", type=alignment_flag, metavar="MODE",
                       help=f"Marian ports: also compare word alignments with pymarian decode --alignment MODE "
                            f"({MODES_HELP}): hard and threshold strings must be identical, soft probabilities "
                            "equal within Marian's 6 printed digits; a mismatch exits 3. Default: decoder.yml's "
                            "alignment as the folder records it, else none; none turns the comparison off")
    add_runtime_options(p, side=" (of the port; the reference runs as its framework does)")


def run(args: argparse.Namespace) -> int:
    """Validate, print the summary; a failed parity exits 3."""
    from modelport.validators.run import validate  # lazy: imports torch

    if args.hub_repo is not None and args.report is None:
        raise InvalidInputError(f"`--report DIR` is needed when PORTED_DIR is a Hub repo id ({args.hub_repo}): "
                                "the report is not written into huggingface_hub's cache")
    report = validate(args.ported_dir, args.reference, read_lines(args.data),
                      references=read_optional_lines(args.references), report_dir=args.report, only=args.only,
                      progress=progress_shown(args), source_lang=args.source_lang, target_lang=args.target_lang,
                      lang_pairs=args.lang_pairs, **runtime_kwargs(args),
                      **decoding_kwargs(vars(args), search_only=True),
                      **({"alignment": args.alignment} if args.alignment is not None else {}))
    where = Path(args.report or args.ported_dir) / "parity_report.md"
    if args.json:
        print_json(report.to_json())
    else:
        # the validator's notes: what was compared beyond the sections (Marian's shortlist, alignment counts)
        print_lines([*report.summary_lines(), *(f"note:      {n}" for n in report.meta.notes), f"report: {where}"])
    if not report.passed:
        failure = report.failure if report.failure is not None else "see the report"
        raise ParityError(f"parity failed: {failure} ({where})")
    return 0
