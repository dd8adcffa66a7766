"""``modelport compare``: a port and its passes side by side (size, speed, agreement, BLEU)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelport.cli.common import add_command
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json
from modelport.errors import InvalidInputError
from modelport.reports.compare import table_lines, write_plot


DESCRIPTION = """\
A table across ported folders (a port and the quantized/pruned folders made from it): parameters and
bytes on disk from each folder, tokens/s, speedup, agreement and BLEU/chrF from the pass_report.json
and parity_report.json the passes and `modelport validate` wrote. Nothing is re-measured."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``compare``."""
    p = add_command(sub, "compare", run, help="compare a port and its passes (size, speed, agreement, BLEU)",
                    description=DESCRIPTION,
                    examples=["modelport compare ported/en-de ported/en-de-int8 ported/en-de-pruned",
                              "modelport compare ported/en-de ported/en-de-int8 --plot compare.png --json"])
    p.add_argument("directories", nargs="+", metavar="PORTED_DIR",
                   help="ported folders (written by `modelport convert` or a pass)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="also draw size, speed and BLEU of each folder as a PNG")
    p.add_argument("--force", action="store_true", help="replace an existing --plot file")


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON); draw the plot when asked."""
    from modelport.model.folder import check_writable  # lazy: imports torch
    from modelport.passes.compare import compare, rows_json

    if args.plot:  # checked before the folders are read
        if not Path(args.plot).resolve().parent.is_dir():
            raise InvalidInputError(f"`{args.plot}`: its folder does not exist (create it, or name another file)")
        if Path(args.plot).is_dir():
            raise InvalidInputError(f"`{args.plot}` is a directory: name a .png file in it")
        if Path(args.plot).suffix.lower() != ".png":  # a PNG under another name (plot.txt) misleads what opens it
            raise InvalidInputError(f"`{args.plot}` must be a .png file name: the plot is a PNG")
        check_writable(args.plot, args.force)
    rows = compare(args.directories)
    if args.plot:
        write_plot(rows, args.plot)
    if args.json:
        print_json(rows_json(rows))
    else:
        print_lines(table_lines(rows) + ([f"plot: {args.plot}"] if args.plot else []))
    return 0
