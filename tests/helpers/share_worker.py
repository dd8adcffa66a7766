"""A torchrun process of tests/generation/test_marian_sharded.py's sharing test:
``sharded_map(share=True)`` over LINES lines in chunks of CHUNK, each entry
naming the rank that made it; rank 0 writes the joined result to argv[1]."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modelport.generation.shards import leave, sharded_map, world

LINES, CHUNK = 10, 4  # three chunks: with two processes, a round of two and a shared round of one


def main() -> None:
    where = world()

    def work(chunk: list[str], first: int, part: tuple[int, int]) -> list[str | None]:
        index, count = part
        return [f"{line}@{where.rank}" if i % count == index else None for i, line in enumerate(chunk)]

    out = [entry for chunk in sharded_map([str(i) for i in range(LINES)], work, chunk_lines=CHUNK, where=where,
                                          share=True) for entry in chunk]
    if where.is_main:
        Path(sys.argv[1]).write_text(json.dumps(out), encoding="utf-8")
    leave(where)


if __name__ == "__main__":
    main()
