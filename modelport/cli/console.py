"""What reaches the terminal: ``--quiet``/``--verbose``, which warnings and log
records a command shows, whether progress bars are drawn, and the one-line
error form (``modelport: error: ...``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any


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
            warnings.showwarning = _one_line  # restored by catch_warnings
        try:
            yield
        finally:
            logging.disable(disabled)
            root.setLevel(level)
            if handler is not None:
                root.removeHandler(handler)


def _one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
              line: str | None = None) -> None:
    """A modelport warning as its user reads it: ``modelport: warning: ...``, not a source location."""
    end_progress_bars()
    print(f"modelport: warning: {message}", file=sys.stderr if file is None else file)


# ---------------------------------------------------------------------------
# errors: one line on stderr


def end_progress_bars() -> None:
    """Close the progress bars still drawn on stderr, so that a message
    starts on its own line instead of at the end of a bar."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        with contextlib.suppress(Exception):
            bar.close()


RANK_ERROR_WAIT = 10.0  # seconds a torchrun process other than rank 0 waits before saying an error (report_error)


def report_error(message: str, code: int) -> int:
    """Write ``modelport: error: MESSAGE`` as one line on stderr; return ``code``.

    Under torchrun every process runs the command. Until the process group
    starts each checks the same arguments and input, so an error there is
    every process's: rank 0 says it at once, the others wait
    :data:`RANK_ERROR_WAIT` seconds first, and torchrun, which stops the
    whole job when one process fails, has stopped them by then (the message
    once, not once per process). Had rank 0 not failed, the wait ends and the
    message is said with the rank, as is every error once the group runs (an
    error there may be one process's own: its chunk)."""
    end_progress_bars()
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    rank = _torchrun_rank()
    if rank is not None:
        if rank > 0 and not _process_group_started():
            time.sleep(RANK_ERROR_WAIT)
        if rank > 0 or _process_group_started():
            one_line = f"rank {rank}: {one_line}"
    sys.stderr.write(f"modelport: error: {one_line}\n")
    return code


def _torchrun_rank() -> int | None:
    """This process's rank in a torchrun job of more than one process, else None."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return int(os.environ.get("RANK", "0"))
    except ValueError:
        pass
    return None


def _process_group_started() -> bool:
    dist = sys.modules.get("torch.distributed")  # never imported here: that would import torch
    return bool(dist is not None and dist.is_available() and dist.is_initialized())
