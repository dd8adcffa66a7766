"""marian-decoder's batching, which decides each line's length cap.

Under Marian semantics a hypothesis is cut at ``max-length-factor`` times the
padded source width of *its* batch, so the grouping of lines into batches
changes outputs. Marian groups them as ``BatchGenerator::fetchBatches``
(marian-dev ``src/data/batch_generator.h``) does:

* it reads ``mini-batch * maxi-batch`` lines into a pool, a
  ``std::priority_queue`` whose comparison is the source length
  (``maxi-batch-sort src``; ``trg`` is the same with one input stream) or
  the line number (``none``); being a max-heap, it yields the *longest*
  (or, for ``none``, the last) line first;
* popped lines fill a batch until it holds ``mini-batch`` lines, or with
  ``mini-batch-words`` until its source tokens exceed that count; the rest
  of the pool is the last batch; then the next pool is read.

Lines of equal length leave the heap in the order libstdc++'s
``push_heap``/``pop_heap`` give, reproduced here step by step, so that ties
at a batch boundary fall on the same side as in Marian.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from modelport.errors import InvalidInputError
from modelport.generation.options import NONNEGATIVE_INT, POSITIVE_INT, SHARD_CHUNK_LINES

SORTS = ("none", "src", "trg")


def _push(heap: list[int], less: Callable[[int, int], bool], value: int, hole: int | None = None,
          top: int = 0) -> None:
    """libstdc++ ``__push_heap``: sift ``value`` up from ``hole`` (the end)."""
    if hole is None:
        heap.append(value)
        hole = len(heap) - 1
    parent = (hole - 1) // 2
    while hole > top and less(heap[parent], value):
        heap[hole] = heap[parent]
        hole = parent
        parent = (hole - 1) // 2
    heap[hole] = value


def _pop(heap: list[int], less: Callable[[int, int], bool]) -> int:
    """libstdc++ ``pop_heap`` + ``pop_back``: the hole left by the top moves
    down to a leaf along the larger children (the right one on ties), then
    the former last element is sifted up from there (``__adjust_heap``)."""
    first = heap[0]
    value = heap.pop()
    n = len(heap)
    if n == 0:
        return first
    hole = second = 0
    while second < (n - 1) // 2:
        second = 2 * (second + 1)
        if less(heap[second], heap[second - 1]):
            second -= 1
        heap[hole] = heap[second]
        hole = second
    if n % 2 == 0 and second == (n - 2) // 2:
        second = 2 * (second + 1)
        heap[hole] = heap[second - 1]
        hole = second - 1
    _push(heap, less, value, hole, 0)
    return first


def pool_lines(mini_batch: int = 1, maxi_batch: int = 1, **_: Any) -> int:
    """How many lines marian-decoder reads into one pool, within which it forms
    its batches (the other batching options, ``maxi_batch_sort`` and
    ``mini_batch_words``, do not change it)."""
    return POSITIVE_INT.check("mini_batch", mini_batch) * POSITIVE_INT.check("maxi_batch", maxi_batch)


def pool_chunk_lines(pool: int, chunk_lines: int = SHARD_CHUNK_LINES) -> int:
    """The fewest whole pools of ``pool`` lines that hold at least ``chunk_lines``
    lines: chunks of this size split no pool, so batches formed within pools are
    those of the whole corpus (the chunks of a sharded translation,
    :func:`modelport.generation.shards.translate_chunk_lines`)."""
    if pool < 1:
        raise InvalidInputError(f"pool size must be >= 1 line, but is {pool}")
    return pool * max(1, math.ceil(chunk_lines / pool))


def marian_batches(lengths: Sequence[int], *, mini_batch: int = 1, maxi_batch: int = 1,
                   maxi_batch_sort: str = "none", mini_batch_words: int = 0) -> list[list[int]]:
    """Line indices grouped as marian-decoder groups them (see the module
    docstring); ``lengths`` are source lengths in tokens, ``</s>`` included."""
    pool_size = pool_lines(mini_batch, maxi_batch)
    mini_batch, mini_batch_words = int(mini_batch), NONNEGATIVE_INT.check("mini_batch_words", mini_batch_words)
    if maxi_batch_sort not in SORTS:
        raise InvalidInputError(f"`{maxi_batch_sort}` is not a known maxi-batch-sort (known: {', '.join(SORTS)})")
    if maxi_batch_sort == "none":
        def less(a: int, b: int) -> bool:
            return a < b
    else:
        def less(a: int, b: int) -> bool:
            return lengths[a] < lengths[b]
    batches: list[list[int]] = []
    for start in range(0, len(lengths), pool_size):
        heap: list[int] = []
        for i in range(start, min(start + pool_size, len(lengths))):
            _push(heap, less, i)
        batch: list[int] = []
        words = 0
        while heap:
            batch.append(_pop(heap, less))
            if mini_batch_words > 0:
                words += lengths[batch[-1]]
                full = words > mini_batch_words
            else:
                full = len(batch) == mini_batch
            if full:
                batches.append(batch)
                batch, words = [], 0
        if batch:
            batches.append(batch)
    return batches
