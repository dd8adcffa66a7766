"""``modelport tokenize``: text to ids or pieces, or ids back to text."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelport.cli.common import add_command, KEEP_SPECIAL_HELP, PORTED_HELP
from modelport.cli.streams import read_lines
from modelport.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``tokenize``."""
    p = add_command(sub, "tokenize", run, help="text to ids (or pieces), or ids back to text",
                    description="Tokenize each input line with the ported folder's tokenizer: ids "
                                "(</s> appended) by default, BPE pieces with --tokens, or decode lines of "
                                "ids with --decode. One output line per input line.",
                    ported_dir=PORTED_HELP)
    p.add_argument("-i", "--input", help="input file (default: stdin)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--decode", action="store_true", help="input lines are target ids; print text")
    mode.add_argument("--tokens", action="store_true", help="print subword pieces instead of ids")
    p.add_argument("--side", choices=["source", "target"], default="source",
                   help="which vocabulary encodes the text (default: source)")
    p.add_argument("--keep-special-tokens", action="store_true",
                   help=KEEP_SPECIAL_HELP + " (with --decode)")


def run(args: argparse.Namespace) -> int:
    """One output line per input line: ids, pieces, or decoded text."""
    from modelport.generation.translate import decode_text  # lazy: imports torch
    from modelport.tokenizers import load_tokenizer  # lazy: imports torch

    tok = load_tokenizer(Path(args.ported_dir) / "tokenizer")
    if args.keep_special_tokens and not args.decode:
        raise InvalidInputError("--keep-special-tokens needs --decode")
    out = sys.stdout
    for line in read_lines(args.input):
        if args.decode:
            try:
                ids = [int(x) for x in line.split()]
            except ValueError:
                raise InvalidInputError(f"--decode expects lines of integer ids, but got {line[:60]!r}") from None
            out.write(decode_text(tok, ids, args.keep_special_tokens) + "\n")
        elif args.tokens:
            out.write(" ".join(tok.tokenize(line)) + "\n")
        else:
            ids = tok.encode_target(line) if args.side == "target" else tok.encode(line)
            out.write(" ".join(map(str, ids)) + "\n")
    return 0
