"""Adapters that drive fairseq, transformers, ctranslate2 and sentencepiece as references.

A reference framework's own loader is never handed a file the user gave:
``validate --reference`` is exactly what someone runs on a checkpoint from the
internet, and fairseq's loader unpickles without restriction. Each fairseq
checkpoint is first read by modelport's restricted unpickler (which refuses
anything that could execute), reduced to plain data (tensors, numbers,
strings, lists, dicts, ``argparse.Namespace``) and saved again; fairseq then
loads that copy with torch's ``weights_only`` loader, which admits nothing
else. transformers folders go through the same restricted reader before
``from_pretrained`` sees a pickled ``.bin``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from modelport.converters.safe_pickle import safe_torch_load, to_plain
from modelport.errors import CorruptCheckpointError, MissingReferenceError

# what fairseq's loader and task setup read from a checkpoint besides the weights
_FAIRSEQ_ENTRIES = ("args", "cfg", "optimizer_history", "extra_state", "task_state")


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Hide what compiled extensions write straight to file descriptor 2
    (fastBPE's "Loading codes from ..." lines), which Python's warning and
    logging filters cannot reach; wrap only short calls (a constructor):
    Python's own stderr goes to the same descriptor meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def require(module: str, purpose: str) -> None:
    """Raise :class:`MissingReferenceError` (exit 2, one line) when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise MissingReferenceError(module, purpose)


def prepare_fairseq() -> None:
    """Before fairseq is imported: it must be installed, and its INFO logging
    (a full config dump per load) would drown the validator's output."""
    require("fairseq", "validating against fairseq")
    for name in ("fairseq", "fairseq.models.fairseq_model", "fairseq.file_utils", "fairseq.tasks"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # importing fairseq's model and task registries runs logging.basicConfig(level=DEBUG) (wav2vec2's
    # classification module, the speech tasks): the root logger is put back as it was, or every library's
    # DEBUG records (matplotlib's font search, ...) reach the terminal
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        import fairseq.models  # noqa: F401
        import fairseq.tasks  # noqa: F401
    finally:
        root.setLevel(level)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)


def _plain_data(obj: Any) -> Any:
    """Only values torch's ``weights_only`` loader admits (with Namespace allowed);
    anything else (tensors of optimizer state, inert markers' contents) becomes None."""
    if isinstance(obj, argparse.Namespace):
        return argparse.Namespace(**{k: _plain_data(v) for k, v in vars(obj).items()})
    if isinstance(obj, dict):
        return {k: _plain_data(v) for k, v in obj.items() if isinstance(k, (str, int))}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain_data(v) for v in obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return None


def sanitize_fairseq_checkpoint(path: str | Path, dest: Path) -> Path:
    """``path`` read by the restricted unpickler and saved to ``dest`` as plain data.

    Raises :class:`~modelport.errors.UnsafeCheckpointError` (nothing executed)
    or :class:`~modelport.errors.CorruptCheckpointError` exactly as ``convert`` does.
    """
    state = safe_torch_load(path)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CorruptCheckpointError(str(path), "it has no `model` entry (is it a fairseq checkpoint?)")
    weights = {k: v for k, v in state["model"].items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    clean: dict[str, Any] = {"model": weights}
    for key in _FAIRSEQ_ENTRIES:
        if key in state:
            clean[key] = _plain_data(to_plain(state[key], source=str(path), keep_namespaces=True))
    torch.save(clean, dest)
    return dest


@contextlib.contextmanager
def sanitized_fairseq_checkpoints(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Plain-data copies of ``paths`` (see :func:`sanitize_fairseq_checkpoint`),
    with torch's ``weights_only`` loader told to admit ``argparse.Namespace``
    (fairseq's ``args``) and nothing more, while the block runs."""
    with tempfile.TemporaryDirectory(prefix="modelport-reference-") as tmp:
        copies = [sanitize_fairseq_checkpoint(p, Path(tmp) / f"{i}-{Path(p).name}") for i, p in enumerate(paths)]
        with torch.serialization.safe_globals([argparse.Namespace]):
            yield copies


def check_transformers_folder(directory: Path) -> None:
    """Pickled weights of a transformers folder pass the restricted reader
    before transformers loads them (safetensors files hold no code)."""
    for path in sorted(directory.glob("*.bin")):
        safe_torch_load(path)
