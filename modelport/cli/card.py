"""``modelport card``: write a ported folder's model card (README.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelport.cli.common import add_command, PORTED_HELP


def add_card_options(p: argparse.ArgumentParser) -> None:
    """What the card cannot read from the folder (card, publish)."""
    p.add_argument("--license", help="license id for the card (default: the one recorded in conversion.json; "
                                     "omitted when unknown, never guessed)")
    p.add_argument("--language", nargs="+", metavar="LANG",
                   help="language codes (default: the tokenizer's source and target languages; a multilingual "
                        "port's: those of the directions its checkpoint was trained in)")
    p.add_argument("--base-model", metavar="REPO_ID", help="Hub id of the model this port was made from")
    p.add_argument("--eval-dataset", metavar="NAME",
                   help="the dataset `validate --references` measured BLEU/chrF on (a Hub dataset id or a name "
                        "readers know): only then are they published as model-index evaluation results "
                        "(default: none; the card's text shows the parity summary)")


def card_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments :func:`add_card_options` collects."""
    return {"license": args.license, "language": args.language, "base_model": args.base_model,
            "eval_dataset": args.eval_dataset}


DESCRIPTION = """\
Generate README.md in PORTED_DIR from its files: Hub metadata (languages, license, tags; eval
results from parity_report.json only with --eval-dataset), architecture, provenance with sha256,
passes (a table of what each measured), parity summary, intended use, limitations, usage and
generation defaults. Written to a temporary file and renamed into place. A README.md that modelport
did not write (a card written by hand) is kept unless --force."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``card``."""
    p = add_command(sub, "card", run, help="write the model card (README.md) of a ported folder",
                    description=DESCRIPTION,
                    ported_dir=PORTED_HELP)
    add_card_options(p)
    p.add_argument("--force", action="store_true", help="replace a README.md that modelport did not write")


def run(args: argparse.Namespace) -> int:
    """Write the card and print its path."""
    from modelport.modelcards import write_card  # lazy: imports torch

    path = write_card(args.ported_dir, force=args.force, **card_options(args))
    sys.stdout.write(f"card: {path}\n")
    return 0
