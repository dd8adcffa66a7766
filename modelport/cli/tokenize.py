"""``modelport tokenize``: text to ids or pieces, or ids back to text."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.cli.common import add_command, KEEP_SPECIAL_HELP, PORTED_HELP
from modelport.cli.streams import one_output_line, read_lines
from modelport.errors import InvalidInputError

if TYPE_CHECKING:
    from modelport.model.config import Seq2SeqConfig
    from modelport.model.folder import PortedFolder
    from modelport.tokenizers import Tokenizer


DESCRIPTION = """\
Tokenize each input line with the ported folder's tokenizer: ids (</s> appended) by default, BPE
pieces with --tokens, or decode lines of ids with --decode. One output line per input line. With
--source-lang/--target-lang, a multilingual port's source lines are shown as translate gives them
to the encoder, the language tokens placed."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``tokenize``."""
    p = add_command(sub, "tokenize", run, help="text to ids (or pieces), or ids back to text",
                    description=DESCRIPTION,
                    ported_dir=PORTED_HELP, hub=True)
    p.add_argument("-i", "--input", help="input file (default: stdin)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--decode", action="store_true", help="input lines are ids (of --side); print text")
    mode.add_argument("--tokens", action="store_true", help="print subword pieces instead of ids")
    p.add_argument("--side", choices=["source", "target"], default=None,
                   help="which side's vocabulary (and Moses language) to use (default: source to encode, "
                        "target with --decode)")
    p.add_argument("--keep-special-tokens", action="store_true",
                   help=KEEP_SPECIAL_HELP + " (with --decode)")
    p.add_argument("--source-lang", help="multilingual ports (M2M100, NLLB-200, mBART-50), with --target-lang: "
                                         "encode each line as `translate` gives it to the encoder, the language "
                                         "tokens placed (`modelport inspect` lists the languages)")
    p.add_argument("--target-lang", help="multilingual ports: the target language of that direction")


def run(args: argparse.Namespace) -> int:
    """One output line per input line: ids, pieces, or decoded text."""
    from modelport.model.folder import check_folder  # lazy: imports torch
    from modelport.tokenizers import check_ids, load_tokenizer

    if args.keep_special_tokens and not args.decode:
        raise InvalidInputError("--keep-special-tokens needs --decode")
    side = args.side or ("target" if args.decode else "source")
    folder = check_folder(args.ported_dir)  # the ids are the model's: its tokenizer must fit its embeddings
    tok = load_tokenizer(Path(args.ported_dir) / "tokenizer", model_rows=folder.config.vocab_rows)
    before, after = _placed(args, tok, side, folder)
    size = _vocab_size(tok, side, folder.config) if args.decode else None
    out = sys.stdout
    for lineno, line in enumerate(read_lines(args.input), 1):
        if args.decode:
            ids = _ids(line, lineno)
            check_ids(ids, size, side=side, where=f" on line {lineno}")
            # keep_special_tokens is refused by the tokenizers that never skip special tokens
            text = tok.decode(ids, side=side, keep_special_tokens=args.keep_special_tokens)
            out.write(one_output_line(text, "a line of ids decoded to text with a line break, written as a space "
                                            "(one output line per input line)") + "\n")
        elif args.tokens:
            pieces = tok.id_to_tokens(before) + tok.pieces(line, side=side) + tok.id_to_tokens(after)
            out.write(" ".join(pieces) + "\n")
        else:
            ids = tok.encode_target(line) if side == "target" else before + tok.encode(line) + after
            out.write(" ".join(map(str, ids)) + "\n")
    return 0


def _placed(args: argparse.Namespace, tok: Tokenizer, side: str, folder: PortedFolder) -> tuple[list[int], list[int]]:
    """The ids ``translate`` puts before and after each source line's own in the
    direction given (none without one): what the encoder of a multilingual port reads."""
    if args.source_lang is None and args.target_lang is None:
        return [], []
    if args.decode or side == "target":
        raise InvalidInputError("--source-lang/--target-lang place a source line's language tokens; they do not "
                                "apply to --decode or --side target")
    from modelport.generation.translate import Direction

    before, after, _, _ = Direction(args.source_lang, args.target_lang).tokens(
        tok, folder.generation_config, folder.config.eos_token_id)
    return before, after


def _ids(line: str, lineno: int) -> list[int]:
    """The integer ids of one ``--decode`` input line."""
    try:
        return [int(x) for x in line.split()]
    except ValueError:
        raise InvalidInputError(f"--decode expects lines of integer ids, but line {lineno} is {line[:60]!r}") \
            from None


def _vocab_size(tok: Tokenizer, side: str, config: Seq2SeqConfig) -> int:
    """How many ids ``side`` has: the tokenizer's own count, or, where the
    tokenizer leaves that to the model (T5: ids past its pieces are the
    model's padding rows), the model's."""
    size = tok.vocab_size_of(side)
    if size is None:
        size = config.target_vocab_size if side == "target" else config.source_vocab_size
    return size
