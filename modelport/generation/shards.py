"""Chunked, rank-sharded work over the lines of a corpus, under ``torchrun``.

Large corpora (``modelport translate`` of a whole corpus, the teacher's
translations of ``modelport distill``) are cut into chunks of
``chunk_lines`` lines. Under ``torchrun --nproc_per_node N`` (and across
nodes: ``--nnodes``, rendezvous) each process translates its share, a round
of ``N`` chunks at a time; the results of a round are gathered on rank 0
(``torch.distributed.gather_object``: no shared file system is needed), which
yields them in input order. Without torchrun it is the same loop with one
process, so a chunk's output never depends on how many processes ran: each
chunk is translated alone, batched the same way.

Under Marian semantics a line's length cap depends on its batch, and
marian-decoder forms batches within pools of ``mini-batch x maxi-batch``
lines read in order (generation/marian_batching.py): a translate chunk is
then whole pools (:func:`translate_chunk_lines`), so every batch is the one
marian-decoder forms on the whole corpus and the output is the same.

A round with fewer chunks than processes (an input of fewer chunks than
processes, the last round) can share each chunk among the processes that
would otherwise wait (``share``, as ``modelport translate`` does): each then
decodes every ``count``-th of the chunk's batches, the batches themselves
unchanged, so each line keeps its batch and its length cap. They are decoded
in smaller groups than one process would form (generation/groups.py), whose
rounding can differ in the last bits: on the 3,200 lines of train.en with the
``tiny11_ssru`` student, two parts gave the tokens of one process on every
line and scores within 2e-6 of its (1,163 lines not bit-equal).

With a ``work_dir`` rank 0 keeps every finished chunk as a text file written
through a temporary sibling, and a rerun (after Ctrl-C, a lost node) starts
with the chunks already there: finished chunks are never redone.

The process group is torch.distributed's own (gloo on CPU, nccl on CUDA),
started from torchrun's environment; nothing here is a process pool of its
own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from modelport.errors import InvalidInputError
from modelport.generation.options import SHARD_CHUNK_LINES
from modelport.generation.marian_batching import pool_chunk_lines, pool_lines
from modelport.generation.translate import TRANSLATE_KEYWORDS, framework_batching, resolve_options

CHUNK_LINES = SHARD_CHUNK_LINES


@dataclass(frozen=True)
class World:
    """This process's place among the processes torchrun started."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """The process group torchrun describes (``WORLD_SIZE``/``RANK`` and the
    rendezvous variables), started on first use; one process without torchrun."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_available():
        raise InvalidInputError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return World(dist.get_rank(), dist.get_world_size())


def leave(where: World) -> None:
    """This process's part of a torchrun job is done: its process group is
    torn down now, as torch asks of a job before it exits, rather than by the
    interpreter's teardown (where once a rank that had finished first aborted
    with "terminate called without an active exception", exit -6)."""
    if where.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(value: object, where: World) -> object:
    """``value`` as rank 0 has it, on every rank."""
    if where.size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(where: World) -> None:
    if where.size > 1:
        dist.barrier()


def translate_chunk_lines(ported: Any, options: Mapping[str, Any], chunk_lines: int = CHUNK_LINES) -> int:
    """The chunk size for ``translate(ported, chunk, **options)`` under :func:`sharded_map`.

    Where the semantics batches as its framework does (marian: no
    ``batch_size``/``max_tokens``), whole pools of ``mini_batch * maxi_batch``
    lines as ``translate`` resolves them (the options over the folder's
    decoder.yml values, else 1): the output is then that of one process on the
    whole corpus, which is marian-decoder's. Otherwise ``chunk_lines``."""
    rest = {k: v for k, v in options.items() if k not in TRANSLATE_KEYWORDS}
    sem, opts = resolve_options(ported.generation_config, options.get("semantics"), rest,
                                eos_token_id=ported.config.eos_token_id)
    batching = framework_batching(sem, opts, options.get("batch_size"), options.get("max_tokens"))
    return chunk_lines if batching is None else pool_chunk_lines(pool_lines(**batching), chunk_lines)


def chunk_path(work_dir: Path, index: int) -> Path:
    return work_dir / f"chunk-{index:06d}.txt"


def _finished(work_dir: Path, sizes: Sequence[int]) -> set[int]:
    """Chunks whose file is there with the right number of lines (a file is
    only ever renamed into place whole, so a partial one cannot exist)."""
    done = set()
    for i, size in enumerate(sizes):
        path = chunk_path(work_dir, i)
        if path.is_file():
            with open(path, encoding="utf-8", newline="\n") as f:
                if sum(1 for _ in f) == size:
                    done.add(i)
    return done


def write_lines(path: Path, lines: Sequence[str]) -> None:
    """``lines`` as a UTF-8 text file, written through a temporary sibling renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def _read_chunk(work_dir: Path, index: int) -> list[str]:
    with open(chunk_path(work_dir, index), encoding="utf-8", newline="\n") as f:
        return [line[:-1] for line in f]


def round_part(chunks: int, ranks: int, rank: int, share: bool) -> tuple[int, int, int] | None:
    """What ``rank`` does in a round of ``chunks`` chunks over ``ranks`` processes:
    ``(the chunk's place in the round, part index, part count)``, or None (idle).
    One chunk per process; with ``share``, a round of fewer chunks than processes
    (a small input, the last round) gives each chunk to several, each a part."""
    if rank < chunks:
        place = rank
    elif share and chunks > 0:
        place = rank % chunks
    else:
        return None
    sharers = range(place, ranks, chunks) if share else range(place, place + 1)
    return place, sharers.index(rank), len(sharers)


def _merge(index: int, parts: Sequence[list[str | None]]) -> list[str]:
    """The parts of one chunk's result (one entry per line, None where another part
    holds the line) as one list; every line held by exactly one part."""
    merged: list[str | None] = [None] * len(parts[0])
    for part in parts:
        for i, entry in enumerate(part):
            if entry is not None:
                if merged[i] is not None:
                    raise RuntimeError(f"chunk {index}: line {i + 1} translated by two parts")
                merged[i] = entry
    missing = [i + 1 for i, entry in enumerate(merged) if entry is None]
    if missing:
        raise RuntimeError(f"chunk {index}: {len(missing)} line(s) translated by no part (first: {missing[0]})")
    return merged  # type: ignore[return-value]


def sharded_map(lines: Sequence[str], work: Callable[..., Sequence[str | None]], *, chunk_lines: int = CHUNK_LINES,
                work_dir: str | os.PathLike[str] | None = None, where: World | None = None,
                on_chunk: Callable[[int, int], None] | None = None, share: bool = False) -> Iterator[list[str]]:
    """``work`` applied to each chunk of ``lines``, spread over the ranks.

    Rank 0 yields every chunk's result, in input order, as soon as the chunks
    before it are done; other ranks yield nothing. ``work(chunk, first)``
    (``first``: the 0-based index of the chunk's first line) returns one entry
    per input line; with a ``work_dir`` an entry must be one line (no newline). ``on_chunk(done, total)`` is
    called on rank 0 once before the work (``done``: the chunks an earlier
    run finished) and after each round (a progress bar).

    ``share``: a round with fewer chunks than processes (an input smaller than
    ``size`` chunks, the last round) gives each of its chunks to several
    processes (:func:`round_part`), which would otherwise wait: ``work(chunk,
    first, (index, count))`` then returns entries for its part's lines and None
    for the others' (``translate``'s ``part``), and rank 0 joins the parts."""
    where = where or world()
    if chunk_lines < 1:
        raise InvalidInputError(f"chunk size must be >= 1 line, but is {chunk_lines}")
    total = math.ceil(len(lines) / chunk_lines)
    sizes = [min(chunk_lines, len(lines) - i * chunk_lines) for i in range(total)]
    directory = Path(work_dir) if work_dir is not None else None
    done: set[int] = set()
    if directory is not None and where.is_main:
        directory.mkdir(parents=True, exist_ok=True)
        done = _finished(directory, sizes)
    done = broadcast(done, where)  # type: ignore[assignment]
    todo = [i for i in range(total) if i not in done]
    if on_chunk is not None and where.is_main:
        on_chunk(len(done), total)
    kept: dict[int, list[str]] = {}
    emitted = 0

    def ready() -> Iterator[list[str]]:
        nonlocal emitted
        while emitted < total and (emitted in kept or emitted in done):
            out = kept.pop(emitted) if emitted in kept else _read_chunk(directory, emitted)  # type: ignore[arg-type]
            emitted += 1
            yield out

    for start in range(0, len(todo), where.size):
        round_ = todo[start:start + where.size]
        assigned = round_part(len(round_), where.size, where.rank, share)
        mine = None if assigned is None else round_[assigned[0]]
        result = None
        if assigned is not None:
            chunk = list(lines[mine * chunk_lines:(mine + 1) * chunk_lines])
            result = list(work(chunk, mine * chunk_lines, assigned[1:]) if share else work(chunk, mine * chunk_lines))
            if len(result) != len(chunk):
                raise RuntimeError(f"chunk {mine}: {len(result)} outputs for {len(chunk)} lines")
        gathered = [(mine, result)]
        if where.size > 1:
            gathered = [None] * where.size if where.is_main else None  # type: ignore[assignment]
            dist.gather_object((mine, result), gathered, dst=0)
        if where.is_main:
            parts: dict[int, list[list[str | None]]] = {}
            for index, out in gathered:  # type: ignore[union-attr]
                if index is not None:
                    parts.setdefault(index, []).append(out)
            for index, chunk_parts in parts.items():
                out = _merge(index, chunk_parts)
                if directory is not None:
                    write_lines(chunk_path(directory, index), out)
                    done.add(index)
                else:
                    kept[index] = out
            if on_chunk is not None:
                on_chunk(min(start + len(round_), len(todo)) + (total - len(todo)), total)
            yield from ready()
    if where.is_main:
        yield from ready()


__all__ = ["CHUNK_LINES", "World", "barrier", "broadcast", "chunk_path", "leave", "pool_chunk_lines", "round_part",
           "sharded_map", "translate_chunk_lines", "world", "write_lines"]
