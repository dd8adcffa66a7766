"""Input and output of the commands: lines read strictly as UTF-8 (a file
whole, a terminal or pipe as lines arrive), JSON on stdout, and output files
written to a temporary sibling and renamed into place."""

from __future__ import annotations

import contextlib
import json
import os
import select
import stat
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

from modelport.files import atomic_text_file, read_text_lines, single_line, utf8_line

# stdin lines translated together at most while more keep arriving
STREAM_CHUNK_LINES = 512


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (non-JSON values as their ``str``)."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def read_lines(path: str | None) -> list[str]:
    """The lines of ``path`` (stdin for None or "-"), strictly UTF-8: a line
    that is not is an error naming it, whatever the locale says."""
    if path is None or path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text-only stream (no bytes underneath): check what it decoded
            return [utf8_line(line, i, "stdin") for i, line in enumerate(sys.stdin, 1)]
        return [utf8_line(raw, i, "stdin") for i, raw in enumerate(stream, 1)]
    return read_text_lines(path, f"input `{path}`")


def read_optional_lines(path: str | None) -> list[str] | None:
    """:func:`read_lines` of an optional file argument (``--data``, ``--references``): None when not given."""
    return read_lines(path) if path else None


def streaming_stdin() -> int | None:
    """stdin's file descriptor when it is a terminal, pipe or socket (read as
    lines arrive); None for a regular file or a replaced stream (read whole)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else fd


def stdin_chunks(fd: int, limit: int = STREAM_CHUNK_LINES) -> Iterator[list[str]]:
    """Lists of stdin lines (strictly UTF-8): the complete lines that have
    arrived, at most ``limit``, as soon as reading more would wait."""
    pending, ready, number, done = b"", [], 0, False
    while not done or ready:
        if not done and len(ready) < limit:
            readable, _, _ = select.select([fd], [], [], 0 if ready else None)
            if readable:
                data = os.read(fd, 1 << 16)
                if data:
                    *complete, pending = (pending + data).split(b"\n")
                    ready += complete
                    continue
                done = True
                if pending:
                    ready.append(pending)
        if ready:
            batch, ready = ready[:limit], ready[limit:]
            lines = []
            for raw in batch:
                number += 1
                lines.append(utf8_line(raw + b"\n", number, "stdin"))
            yield lines


def one_output_line(text: str, warning: str) -> str:
    """``text`` as one line of a line-per-entry output (:func:`~modelport.files.single_line`),
    with ``warning`` when a line break had to go (shown once per place)."""
    flat = single_line(text)
    if flat != text:
        warnings.warn(warning, stacklevel=2)
    return flat


@contextlib.contextmanager
def output(path: str | None) -> Iterator[TextIO]:
    """stdout, or a file written to a temporary sibling and renamed into place
    when complete (an interrupted run leaves no half-written file; :func:`~modelport.files.atomic_text_file`)."""
    if not path:
        yield sys.stdout
        return
    with atomic_text_file(path) as f:
        yield f
