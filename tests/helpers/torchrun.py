"""Run a command under torchrun as the tests do: two CPU processes of one thread (gloo), this
checkout on the path, output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import ROOT


def two_processes(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` (``args``: a script and its arguments, or
    ``-m module ...``) in ``cwd``, each process at one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
