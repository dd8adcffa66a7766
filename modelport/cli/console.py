"""What reaches the terminal: ``--quiet``/``--verbose``, which warnings and log
records a command shows, whether progress bars are drawn, and the one-line
error form (``modelport: error: ...``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator


def add_console_options(parser: argparse.ArgumentParser, command: bool = False) -> None:
    """``--quiet`` and ``--verbose``: on the ``modelport`` command, and (``command``)
    on each command too, so they may come before or after its name."""
    g = parser.add_mutually_exclusive_group()
    # a command's copy sets nothing when absent, so `modelport -q translate` keeps the value given before
    default = argparse.SUPPRESS if command else False
    g.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="print results and errors only: no progress bars, no warnings")
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="also show the warnings of the libraries modelport drives (torch, fairseq, "
                        "huggingface_hub, ...) and INFO logging")


def progress_shown(args: argparse.Namespace) -> bool:
    """Whether a command draws progress bars: only on a terminal (a log gets
    no ``0%`` lines) and never with ``--quiet``."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


@contextlib.contextmanager
def console(quiet: bool = False, verbose: bool = False) -> Iterator[None]:
    """The warnings and log records a command shows, restored when it ends.

    Default: modelport's own warnings; the other libraries' (fairseq, hydra,
    torch, ...) are for their developers, not for a modelport user.
    ``verbose``: every warning once per place, and INFO log records.
    ``quiet``: no warning and no log record below ERROR. Errors of modelport
    itself are printed by :func:`report_error`, whatever the mode."""
    root = logging.getLogger()
    level, disabled = root.level, root.manager.disable
    handler = None
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
        elif verbose:
            warnings.simplefilter("default")
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
            root.addHandler(handler)
            root.setLevel(logging.INFO)
        else:
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", module=r"modelport(\.|$)")
        try:
            yield
        finally:
            logging.disable(disabled)
            root.setLevel(level)
            if handler is not None:
                root.removeHandler(handler)


# ---------------------------------------------------------------------------
# errors: one line on stderr


def end_progress_bars() -> None:
    """Close the progress bars still drawn on stderr, so that a message
    starts on its own line instead of at the end of a bar."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        with contextlib.suppress(Exception):
            bar.close()


def report_error(message: str, code: int) -> int:
    """Write ``modelport: error: MESSAGE`` as one line on stderr; return ``code``."""
    end_progress_bars()
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    sys.stderr.write(f"modelport: error: {one_line}\n")
    return code
