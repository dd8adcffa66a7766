"""Sequence-level knowledge-distillation data (Kim & Rush 2016): the
teacher's first-best translation of every line of the training source, with
the teacher's own semantics and beam.

Kept as plain parallel text in the work directory (``kd/train.src``,
``kd/train.tgt``), made chunk by chunk through
:func:`modelport.generation.shards.sharded_map` (under torchrun every rank
translates its share, rank 0 writes), so an interrupted run redoes nothing
that finished. ``kd/manifest.json`` records the teacher's weights, the data
and the decoding options: a work directory made for another teacher, other
data or other options is refused rather than silently mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.api import PortedModel
from modelport.errors import InvalidInputError
from modelport.files import single_line
from modelport.generation.semantics import more_than_one_best
from modelport.generation.shards import (CHUNK_LINES, World, broadcast, sharded_map, translate_chunk_lines,
                                         write_lines)
from modelport.progress import Steps

KD_DIR = "kd"
MANIFEST = "manifest.json"


def sha256_lines(lines: list[str]) -> str:
    """sha256 of the lines as a file holds them (``\\n``-terminated UTF-8)."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def folder_sha256(files: list[Path]) -> str:
    """One sha256 over a folder's weight files, in name order (for one file: that file's sha256)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class KdData:
    """The teacher's translations, on every rank (rank 0 also keeps them as files)."""

    sources: list[str]
    targets: list[str]
    seconds: float  # spent translating in this run
    chunks_reused: int  # finished in an earlier run
    source_path: Path
    target_path: Path
    data_sha256: str  # of the source lines (what the manifest and the report record)


def _check_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    path = directory / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != manifest:
            differs = sorted(k for k in manifest if not isinstance(old, dict) or old.get(k) != manifest[k])
            raise InvalidInputError(f"work directory `{directory.parent}` holds teacher translations made with other "
                                    f"{', '.join(differs) or 'settings'}: give another --work-dir, or --force "
                                    "without --resume to start over")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def check_first_best(options: dict[str, Any]) -> None:
    """Refuse decoding options that ask for more than one hypothesis per line: the student learns
    the teacher's first-best translations, so the others would be computed, then dropped."""
    many = more_than_one_best(options)
    if many is not None:
        raise InvalidInputError(f"distill trains on the teacher's first-best translations: `{many}` must be 1, "
                                f"but is {options[many]}")


def make_kd_data(teacher: PortedModel, teacher_sha256: str, lines: list[str], work_dir: Path,
                 options: dict[str, Any], where: World, *, chunk_lines: int = CHUNK_LINES,
                 progress: bool = False) -> KdData:
    """The teacher's first-best translation of each of ``lines`` (decoding
    ``options`` over the folder's defaults; n-best options above 1 are refused), in
    chunks of ``chunk_lines`` (rounded up to whole Marian pools for a teacher
    decoding with Marian's batching)."""
    directory = work_dir / KD_DIR
    check_first_best(options)
    options = {**options, "nbest": 1}
    # a Marian teacher batches as marian-decoder: chunks of whole pools keep its outputs (shards.py)
    chunk_lines = translate_chunk_lines(teacher, options, chunk_lines)
    data_sha256 = sha256_lines(lines)
    manifest = {"teacher_sha256": teacher_sha256, "data_sha256": data_sha256, "lines": len(lines),
                "options": options, "chunk_lines": chunk_lines}
    if where.is_main:
        _check_manifest(directory, manifest)
    chunks = -(-len(lines) // chunk_lines)

    def translate(chunk: list[str], first: int, part: tuple[int, int]) -> list[str | None]:
        # a translation holds no newline (detokenized text of one line); keep the file one line per pair;
        # None: a line of another process's part of the chunk (a round of fewer chunks than processes)
        return [single_line(h[0].text) if h else None
                for h in teacher.translate(chunk, first_line=first, part=part, **options)]

    start = time.perf_counter()
    targets: list[str] = []
    reused: list[int] = []
    with Steps("teacher translations", chunks, progress and where.is_main, unit="chunk") as bar:

        def advance(done: int, total: int) -> None:
            if not reused:
                reused.append(done)  # the first call: chunks an earlier run finished
            bar.advance_to(done)

        for out in sharded_map(lines, translate, chunk_lines=chunk_lines, work_dir=directory / "chunks",
                               where=where, on_chunk=advance, share=True):
            targets.extend(out)
    seconds = time.perf_counter() - start
    source_path, target_path = directory / "train.src", directory / "train.tgt"
    if where.is_main:
        write_lines(source_path, lines)
        write_lines(target_path, targets)
    targets = broadcast(targets, where)  # type: ignore[assignment]
    return KdData(list(lines), targets, round(seconds, 1), reused[0] if reused else 0, source_path, target_path,
                  data_sha256)


__all__ = ["KD_DIR", "KdData", "folder_sha256", "make_kd_data", "sha256_lines"]
