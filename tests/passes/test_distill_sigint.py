"""A real Ctrl-C (SIGINT to the `modelport distill` process) in the middle of
the teacher's translations and in the middle of training, each followed by
`--resume`: nothing is lost or done twice, and the student equals the one an
uninterrupted run with the same seed writes. Slow (three runs of the command)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.helpers.paths import CORPUS, ROOT

pytestmark = pytest.mark.slow

TRAIN = (CORPUS / "train.en").read_text(encoding="utf-8").splitlines()[:400]
DEV = (CORPUS / "valid.en").read_text(encoding="utf-8").splitlines()[:10]
DEV_REF = (CORPUS / "valid.de").read_text(encoding="utf-8").splitlines()[:10]


def _args(teacher: Path, out: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "modelport.cli", "distill", str(teacher), str(out), "--data", str(tmp / "train.en"),
            "--dev", str(tmp / "dev.en"), "--dev-ref", str(tmp / "dev.de"), "--beam", "2", "--max-len-b", "20",
            "--chunk-lines", "20", "--batch-tokens", "600", "--max-updates", "40", "--eval-every", "10",
            "--save-every", "1000", "--warmup-updates", "10", "--lr", "1e-3"]


def _sigint_as_ctrl_c() -> None:
    """In the child before it starts: SIGINT's default action, so that Python turns it into KeyboardInterrupt.
    A suite started in the background (`cmd &` without job control) ignores SIGINT, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 300.0) -> None:
    start = time.monotonic()
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() - start < timeout, "the run never reached the point to interrupt"
        time.sleep(0.05)


def test_sigint_then_resume_gives_the_uninterrupted_student(ported_default, tmp_path):
    teacher = ported_default.path
    for name, lines in (("train.en", TRAIN), ("dev.en", DEV), ("dev.de", DEV_REF)):
        (tmp_path / name).write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    straight = subprocess.run(_args(teacher, tmp_path / "a", tmp_path), env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "b"
    work = tmp_path / "b.distill-work"
    chunks = work / "kd" / "chunks"
    # 1. Ctrl-C while the teacher translates (after its 5th chunk of 20)
    proc = subprocess.Popen(_args(teacher, out, tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_as_ctrl_c)
    _wait_for(proc, lambda: chunks.is_dir() and len(list(chunks.glob("chunk-*.txt"))) >= 5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    finished = len(list(chunks.glob("chunk-*.txt")))
    assert 5 <= finished < 20 and not (work / "kd" / "train.tgt").exists()

    # 2. --resume, and Ctrl-C while it trains (after the log line of update 20)
    log = work / "train" / "log.jsonl"
    proc = subprocess.Popen(_args(teacher, out, tmp_path) + ["--resume"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_ctrl_c)
    _wait_for(proc, lambda: log.is_file() and '"update": 20, "epoch"' in log.read_text(encoding="utf-8"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    state = json.loads((work / "train" / "last" / "state.json").read_text(encoding="utf-8"))
    assert 20 <= state["update"] < 40 and not out.exists()

    # 3. --resume to the end
    resumed = subprocess.run(_args(teacher, out, tmp_path) + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((out / "distill_report.json").read_text(encoding="utf-8"))
    assert report["kd_chunks_reused"] == 20  # every chunk was made by an earlier run: none twice
    assert (work / "kd" / "train.tgt").read_text(encoding="utf-8") == \
        (tmp_path / "a.distill-work" / "kd" / "train.tgt").read_text(encoding="utf-8")
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), "the resumed student differs"
    log_a = (tmp_path / "a" / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    log_b = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    strip = lambda rows: [{k: v for k, v in json.loads(r).items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(log_a) == strip(log_b)  # every update logged once, none lost
