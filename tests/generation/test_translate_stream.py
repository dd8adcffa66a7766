"""Streaming: `modelport translate` answers each line from a pipe before the
input ends (as fairseq-interactive does), and PortedModel.translate_iterable
reads lazily, batch by batch, and yields in input order."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.paths import CORPUS

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:6]
TIMEOUT = 120  # seconds a translation may take to show up (loading the model included)


def _read_line(proc: subprocess.Popen, deadline: float) -> str:
    """One line of the child's stdout, failing once ``deadline`` passes."""
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"no output within {TIMEOUT}s although the input has not ended (got {buf!r})"
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            byte = os.read(fd, 1)
            assert byte, f"the child exited: {proc.stderr.read().decode()[-1000:]}"
            buf += byte
    return buf.decode("utf-8").rstrip("\n")


def test_translate_answers_each_line_before_the_input_ends(ported_default, tmp_path: Path) -> None:
    src = tmp_path / "two.en"
    src.write_text("\n".join(LINES[:2]) + "\n", encoding="utf-8")
    whole = subprocess.run([sys.executable, "-m", "modelport.cli", "translate", str(ported_default.path), "-i",
                            str(src)], capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout
    proc = subprocess.Popen([sys.executable, "-m", "modelport.cli", "translate", str(ported_default.path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = []
        for line in LINES[:2]:
            proc.stdin.write(line.encode("utf-8") + b"\n")
            proc.stdin.flush()  # the pipe stays open: the answer must come anyway
            got.append(_read_line(proc, time.monotonic() + TIMEOUT))
        proc.stdin.close()
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stdout.read() == b""
    finally:
        proc.kill()
    assert got == whole.splitlines()


def test_piped_file_gives_the_same_output_as_input_file(ported_default, tmp_path: Path) -> None:
    src = tmp_path / "six.en"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "modelport.cli", "translate", str(ported_default.path), "--scores"]
    whole = subprocess.run(cmd + ["-i", str(src)], capture_output=True, text=True, timeout=TIMEOUT, check=True)
    piped = subprocess.run(f"cat {src} | {' '.join(cmd)}", shell=True, capture_output=True, text=True,
                           timeout=TIMEOUT, check=True)
    assert piped.stdout == whole.stdout and len(whole.stdout.splitlines()) == len(LINES)


def test_translate_iterable_reads_lazily_and_keeps_input_order(ported_default) -> None:
    consumed = []

    def source():
        for line in LINES:
            consumed.append(line)
            yield line

    results = ported_default.translate_iterable(source(), batch_size=2, window=1, beam=2)
    first = next(results)
    assert len(consumed) == 2  # one window read, nothing more
    rest = list(results)
    expected = ported_default.translate(LINES, beam=2)
    assert [h[0]["tokens"] for h in [first, *rest]] == [h[0]["tokens"] for h in expected]


def test_translate_iterable_refuses_an_empty_window(ported_default) -> None:
    from modelport.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="`batch_size` must be a positive integer, but is 0"):
        list(ported_default.translate_iterable(LINES, batch_size=0))
