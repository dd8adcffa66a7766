"""Where a model computes and in which precision: ``device`` and ``dtype`` as a
user of transformers or CTranslate2 names them (``"cpu"``, ``"cuda"``,
``"cuda:1"``; ``"float32"``, ``"float16"``, ``"bfloat16"``), checked against
what this machine has before anything is moved.

This module imports no torch until a device or dtype is resolved, so the CLI
checks the spelling of its ``--device``/``--dtype``/``--threads`` flags with
it at parse time (:func:`device_name`, :data:`DTYPE_NAMES`);
whether this machine has CUDA is checked when a model is placed
(:func:`resolve_device`).
"""

from __future__ import annotations

import argparse
import os
import re
from typing import TYPE_CHECKING

from modelport.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = ("float32", "float16", "bfloat16")
_DEVICE = re.compile(r"cpu|cuda(?::(\d+))?")


def device_name_problem(name: str) -> str | None:
    """What is wrong with the spelling of device ``name`` (None: nothing)."""
    if _DEVICE.fullmatch(name) is None:
        return f"must be cpu, cuda or cuda:N, but is {name!r}"
    return None


def device_name(text: str) -> str:
    """The ``--device`` flag's value parser: the spelling only (see :func:`resolve_device`)."""
    problem = device_name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


THREADS_PER_CORE = 4  # the most threads per core asked for: beyond, only slower (5000 threads: 19 s, not 4 s)


def check_threads(threads: int) -> int:
    """``threads`` when it is a positive count this machine can run: 100000
    crashed torch's OpenMP (a segfault, or "libgomp: Thread creation failed")."""
    most = THREADS_PER_CORE * (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= most:
        raise InvalidInputError(f"`threads` must be an integer from 1 to {most} ({THREADS_PER_CORE} per core of "
                                f"this machine), but is {threads!r}"[:200])
    return threads


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` (None: leave torch's default, one per core)."""
    if threads is None:
        return
    import torch  # lazy: see resolve_device

    torch.set_num_threads(check_threads(threads))


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device` this machine has (None: CPU);
    CUDA when torch has none, or an index past the last GPU, is an
    :class:`~modelport.errors.InvalidInputError` naming what there is."""
    import torch  # lazy: the names above are read by the CLI without torch

    if device is None:
        return torch.device("cpu")
    name = str(device)
    problem = device_name_problem(name)
    if problem is not None:
        raise InvalidInputError(f"`device` {problem}")
    resolved = torch.device(name)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(f"device `{name}` needs CUDA, but CUDA is not available here (torch "
                                    f"{torch.__version__}); use --device cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise InvalidInputError(f"device `{name}` does not exist: this machine has {count} CUDA device(s) "
                                    f"(cuda:0 to cuda:{count - 1})")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``dtype`` as a floating :class:`torch.dtype` (a name of :data:`DTYPE_NAMES`
    or the dtype itself; None stays None: the folder's own precision)."""
    import torch  # lazy: see resolve_device

    if dtype is None:
        return None
    known = {name: getattr(torch, name) for name in DTYPE_NAMES}
    if isinstance(dtype, torch.dtype):
        if dtype not in known.values():
            raise InvalidInputError(f"`dtype` must be one of {', '.join(DTYPE_NAMES)}, but is {dtype}")
        return dtype
    if dtype not in known:
        raise InvalidInputError(f"`dtype` must be one of {', '.join(DTYPE_NAMES)}, but is {dtype!r}")
    return known[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


__all__ = ["DTYPE_NAMES", "check_threads", "device_name", "device_name_problem", "dtype_name", "resolve_device",
           "resolve_dtype", "set_threads"]
