"""Files written whole: a temporary sibling renamed into place when complete,
so that an interrupted or failed write leaves no half-written file, with the
permissions any new file gets here (the umask's; ``tempfile`` makes its files
and folders private, 0600 and 0700)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from modelport.errors import WRITE_ERRNOS, OutputWriteError


def umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ordinary_mode(directory: bool = False) -> int:
    """The mode a new file (``directory``: folder) gets here: 0666 (0777) less the umask."""
    return (0o777 if directory else 0o666) & ~umask()


@contextlib.contextmanager
def atomic_text_file(path: str | os.PathLike[str], newline: str | None = None) -> Iterator[TextIO]:
    """A UTF-8 text file written to a temporary sibling of ``path`` and renamed
    into place when the block ends without error (removed otherwise). A write the
    file system refuses (read-only, full, no permission) is an
    :class:`OutputWriteError` naming ``path``; other errors raised in the block
    (reading an input, say) pass through unchanged."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise OutputWriteError(str(path), e.strerror or str(e), e.errno) from None
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            os.fchmod(f.fileno(), ordinary_mode())
            yield f
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS and e.filename in (None, tmp, str(target)):
            raise OutputWriteError(str(path), f"{e.strerror or e} (nothing was written)", e.errno) from None
        raise


__all__ = ["atomic_text_file", "ordinary_mode", "umask"]
