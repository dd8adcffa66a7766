"""Helpers shared by the benchmark scripts in scripts/."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_dir(given: Path | None, prefix: str) -> Path:
    """``given`` (made if missing, kept afterwards), or a new temporary directory
    that is removed when the script exits: a benchmark's converted models and
    exports are gigabytes at transformer-big size and must not pile up in /tmp."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work
