"""``modelport translate`` under torchrun with Marian semantics and Marian's batching.

marian-decoder forms its batches within pools of mini-batch x maxi-batch lines
read in order, and a line's length cap is max-length-factor times its batch's
padded width, so outputs depend on the batching. Under torchrun the corpus is
cut into chunks of whole pools (``translate_chunk_lines``), so two processes
write what one process writes on the whole file. The model is
tests/data/marian-trained/post_sep_tied, with pools of 12 lines (mini-batch 4,
maxi-batch 3, decoder.yml's maxi-batch-sort src) over 500 corpus lines: the
chunks are 264 lines, where the old rule (256-line chunks, not a multiple of
12) forms other batches and, as the test checks, other outputs. An input of
fewer chunks than processes is shared: each process decodes a part of a
chunk's batches (``translate``'s ``part``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import modelport
import modelport.cli
from modelport.errors import InvalidInputError
from modelport.generation.marian_batching import marian_batches
from modelport.generation.shards import CHUNK_LINES, pool_chunk_lines, round_part, translate_chunk_lines
from modelport.generation.translate import translate
from tests.helpers.paths import CORPUS, DATA, ROOT
from tests.helpers.torchrun import two_processes

MODEL = DATA / "marian-trained" / "post_sep_tied"
LINES = (CORPUS / "valid.en").read_text(encoding="utf-8").splitlines()[:500]
BATCHING = {"mini_batch": 4, "maxi_batch": 3}  # pools of 12 lines; 12 does not divide 256
FLAGS = ["--mini-batch", "4", "--maxi-batch", "3"]


@pytest.fixture(scope="module")
def ported(tmp_path_factory: pytest.TempPathFactory):
    return modelport.convert(str(MODEL), tmp_path_factory.mktemp("marian-sharded") / "ported")


def test_chunks_are_whole_pools_of_at_least_the_chunk_size(ported):
    assert [pool_chunk_lines(p) for p in (1, 12, 100, 256, 1600)] == [256, 264, 300, 256, 1600]
    assert pool_chunk_lines(12, chunk_lines=5) == 12
    with pytest.raises(InvalidInputError):
        pool_chunk_lines(0)
    assert translate_chunk_lines(ported, BATCHING) == 264
    assert translate_chunk_lines(ported, {"mini_batch": 16, "maxi_batch": 100}) == 1600
    assert translate_chunk_lines(ported, {}) == CHUNK_LINES  # decoder.yml: mini-batch 1, maxi-batch 1
    # fixed batches (not Marian's) do not depend on pools
    assert translate_chunk_lines(ported, {**BATCHING, "batch_size": 8}) == CHUNK_LINES
    assert translate_chunk_lines(ported, {**BATCHING, "max_tokens": 100}) == CHUNK_LINES


def _batches(ported, chunk_lines: int) -> list[list[int]]:
    """Marian's batches of LINES (global line numbers) when each chunk is batched alone."""
    lengths = [len(ids) for ids in ported.tokenizer.encode_batch(LINES)]
    return [[first + i for i in batch] for first in range(0, len(LINES), chunk_lines)
            for batch in marian_batches(lengths[first:first + chunk_lines], maxi_batch_sort="src", **BATCHING)]


def _scored(path: Path) -> list[tuple[float, str]]:
    return [(float(score), text) for score, text in
            (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())]


def _two_processes(ported, source: Path, tmp_path: Path) -> list[tuple[float, str]]:
    """``modelport translate --scores`` of ``source`` under torchrun, two processes of one thread."""
    run = two_processes(["-m", "modelport.cli", "translate", str(ported.path), "-i", str(source), "-o",
                         str(tmp_path / "two"), "--scores", *FLAGS], tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return _scored(tmp_path / "two")


def test_two_processes_write_what_one_writes_on_the_whole_file(ported, tmp_path):
    source = tmp_path / "in.en"
    source.write_text("".join(x + "\n" for x in LINES), encoding="utf-8")
    whole = _batches(ported, len(LINES))
    assert _batches(ported, translate_chunk_lines(ported, BATCHING)) == whole
    # the test has teeth: the old rule's 256-line chunks split a pool (lines 252..263), which gives other
    # batches and, through their length caps, other outputs than the whole file
    assert _batches(ported, CHUNK_LINES) != whole
    # one process and two, each with one thread (a thread count of its own could move a near-tie)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    single = subprocess.run([sys.executable, "-m", "modelport.cli", "translate", str(ported.path), "-i", str(source),
                             "-o", str(tmp_path / "one"), "--scores", *FLAGS],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    one = _scored(tmp_path / "one")
    old_rule = [hyps[0].text for chunk in (LINES[:CHUNK_LINES], LINES[CHUNK_LINES:])
                for hyps in translate(ported, chunk, **BATCHING)]
    assert old_rule != [text for _, text in one]

    two = _two_processes(ported, source, tmp_path)
    # line for line, scores too: the same batches, decoded in the same groups (decode_groups stops at chunks)
    assert two == one


def test_parts_translate_every_nth_batch_and_together_every_line(ported):
    lines = LINES[:60]
    whole = translate(ported, lines, **BATCHING)
    batches = marian_batches([len(ids) for ids in ported.tokenizer.encode_batch(lines)], maxi_batch_sort="src",
                             **BATCHING)
    parts = [translate(ported, lines, part=(i, 3), **BATCHING) for i in range(3)]
    for i, part in enumerate(parts):  # a part holds its batches' lines, the others are empty
        assert {n for n, hyps in enumerate(part) if hyps} == {n for batch in batches[i::3] for n in batch}
    joined = [next(hyps for hyps in line if hyps) for line in zip(*parts)]
    # each line in its own batch, so with its length cap: the same tokens (scores may differ in the last bits,
    # the parts being decoded in other groups; shards.py)
    assert [h[0].tokens for h in joined] == [h[0].tokens for h in whole]
    assert max(abs(a[0].score - b[0].score) for a, b in zip(joined, whole)) < 1e-4
    assert translate(ported, lines[:3], part=(0, 1), **BATCHING)[0][0].tokens == whole[0][0].tokens
    for bad in ((2, 2), (-1, 2), (0, 0), (1,), "0/2"):
        with pytest.raises(InvalidInputError, match="part"):
            translate(ported, lines[:3], part=bad)


def test_a_round_of_fewer_chunks_than_processes_is_shared():
    assert [round_part(2, 2, r, True) for r in range(2)] == [(0, 0, 1), (1, 0, 1)]
    assert [round_part(1, 3, r, True) for r in range(3)] == [(0, 0, 3), (0, 1, 3), (0, 2, 3)]
    assert [round_part(2, 5, r, True) for r in range(5)] == [(0, 0, 3), (1, 0, 2), (0, 1, 3), (1, 1, 2), (0, 2, 3)]
    assert [round_part(1, 2, r, False) for r in range(2)] == [(0, 0, 1), None]
    assert round_part(0, 2, 0, True) is None


def test_two_processes_share_a_round_of_one_chunk(tmp_path):
    """sharded_map under torchrun (tests/helpers/share_worker.py): ten lines in chunks of four, so the
    second round's one chunk goes to both processes, each its part; rank 0 joins them in input order."""
    run = two_processes([str(ROOT / "tests" / "helpers" / "share_worker.py"), str(tmp_path / "out.json")], tmp_path,
                        timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    # chunks 0 and 1 whole, one per process; chunk 2 (lines 8, 9) line by line between them
    assert out == ["0@0", "1@0", "2@0", "3@0", "4@1", "5@1", "6@1", "7@1", "8@0", "9@1"]


def test_two_processes_share_an_input_of_one_chunk(ported, tmp_path):
    lines = LINES[:100]  # one chunk of 264 lines: both processes decode a part of its batches
    source = tmp_path / "in.en"
    source.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    two = _two_processes(ported, source, tmp_path)
    one = translate(ported, lines, **BATCHING)
    assert [text for _, text in two] == [hyps[0].text for hyps in one]
    assert max(abs(score - hyps[0].score) for (score, _), hyps in zip(two, one)) < 1e-4
