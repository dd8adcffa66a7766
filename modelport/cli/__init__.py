"""The ``modelport`` command: one module per command, each registering its
subparser (``add_parser``) and its handler (``run``).

Exit codes: 0 success, 1 internal error (a bug: traceback printed),
2 bad input or unsupported checkpoint (one clear line), 3 parity failed.
Progress bars go to stderr, on a terminal only; results to stdout (``--json``
where a machine reads them). ``--quiet`` leaves results and errors, ``--verbose``
adds the warnings of the libraries modelport drives and INFO logging.

``import modelport.cli`` does not import torch: each handler imports the
modelport packages that do (api, passes, validators, exporters, ...) when it
runs. Those are the only imports of modelport's own modules inside functions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelport._version import __version__
from modelport.cli import (card, compare, convert, distill, export, inspect, prune, publish, quantize, tokenize,
                           translate, validate)
from modelport.cli.common import Parser, resolve_hub_argument
from modelport.cli.console import add_console_options, console, end_progress_bars, report_error
from modelport.errors import WRITE_ERRNOS, InvalidInputError, ModelportError, OutputExistsError

__all__ = ["build_parser", "main"]

# in the order `modelport --help` lists them
_COMMANDS = (inspect, convert, tokenize, translate, quantize, prune, distill, export, validate, compare, card, publish)


def build_parser() -> argparse.ArgumentParser:
    """The ``modelport`` parser with every command's subparser."""
    parser = Parser(
        prog="modelport",
        description="Port seq2seq checkpoints (fairseq, Marian/OPUS-MT, T5) into one PyTorch encoder-decoder, "
                    "prove parity, shrink and publish them.",
        epilog="exit codes: 0 ok, 1 internal error (a bug), 2 bad input or unsupported checkpoint, "
               "3 parity failed",
    )
    parser.add_argument("--version", action="version", version=f"modelport {__version__}")
    add_console_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``modelport argv``; return the exit code (typed errors become one line on stderr)."""
    # Everything, imports included, runs inside the try: a Ctrl-C at any point
    # is "interrupted" (exit 130), never a traceback. Heavy modules (torch) are
    # imported by the commands, not by `import modelport.cli`.
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:  # said by the command's own parser, whose --help lists what it takes (not `modelport --help`)
            getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
        if args.quiet and args.verbose:  # one before the command's name, one after: argparse cannot tell
            parser.error("argument -v/--verbose: not allowed with argument -q/--quiet")
        with console(quiet=args.quiet, verbose=args.verbose):
            resolve_hub_argument(args)  # a Hub repo id becomes its downloaded folder, once for every command
            return int(args.func(args) or 0)
    except ModelportError as e:
        if isinstance(e, OutputExistsError):  # the API names its keyword (force=True); here it is a flag
            e.option = "--force"
        return report_error(str(e), e.exit_code)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        end_progress_bars()
        sys.stderr.write("modelport: interrupted\n")
        return 130
    except FileNotFoundError as e:  # raised before a typed check could run (e.g. -i FILE)
        return report_error(str(InvalidInputError(f"`{e.filename}` does not exist")), 2)
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        where = f"`{e.filename}`: " if e.filename else ""
        return report_error(f"{where}{e.strerror or e}", 2)
