#!/usr/bin/env python
"""Peak RSS of writing a state dict: ``safetensors.torch.save_file`` vs modelport.

``modelport/model/io.py`` once streamed its own safetensors writer because
``save_file`` serialised everything into one bytes buffer first (peak memory
twice the weights). This measures whether the installed safetensors still
does: each writer runs in a fresh child process that builds the same
~400 MB float32 state dict (a tied pair included) and writes it once; the
peak RSS comes from the child's rusage (``os.wait4``). A child that only
builds the state dict gives the baseline, so "write adds" is what the write
itself costs. Runs are repeated and the smallest peak is kept. ``modelport``
is ``save_weights`` (tied names to aliases, huggingface_hub's shard split,
``save_file``).

Measured (safetensors 0.8.0, 400 MiB): save_file adds 1.3 MiB, the streaming
writer modelport used before adds 3.6 MiB, save_weights now adds 2.6 MiB.

    .venv/bin/python scripts/bench_safetensors_write.py [--mb 400] [--repeat 3] [--shard-size BYTES]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITERS = ("baseline", "save_file", "modelport")


def build(mb: int) -> dict:
    """``mb`` MiB of float32 in 4 MiB rows plus a tied alias, as a converter hands it over."""
    import torch

    g = torch.Generator().manual_seed(0)
    n = max(1, mb // 4)
    state = {f"layers.{i}.weight": torch.randn(1024, 1024, generator=g) for i in range(n)}
    state["lm_head.weight"] = state["layers.0.weight"]  # tied: stored once
    return state


def child(writer: str, mb: int, out: Path, shard_size: int | None) -> None:
    state = build(mb)
    if writer == "save_file":
        from safetensors.torch import save_file

        unique = {k: v for k, v in state.items() if k != "lm_head.weight"}  # save_file refuses shared tensors
        save_file(unique, str(out / "model.safetensors"), metadata={"format": "pt"})
    elif writer == "modelport":
        from modelport.model.io import DEFAULT_SHARD_BYTES, save_weights

        save_weights(out, state.items(), shard_bytes=shard_size or DEFAULT_SHARD_BYTES)


def measure(writer: str, mb: int, shard_size: int | None) -> tuple[int, float]:
    """(peak RSS bytes, wall seconds) of one fresh child."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", writer, "--mb", str(mb), "--out", tmp]
        if shard_size:
            cmd += ["--shard-size", str(shard_size)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{writer} failed")
        return usage.ru_maxrss * 1024, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=400, help="state dict size in MiB (default: 400)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per writer; the smallest peak is kept (default: 3)")
    ap.add_argument("--shard-size", type=int, default=None, help="modelport's shard size in bytes")
    ap.add_argument("--child", choices=WRITERS, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.mb, args.out, args.shard_size)
        return
    import safetensors

    print(f"safetensors {safetensors.__version__}, state dict {args.mb} MiB float32, best of {args.repeat}")
    peaks = {}
    for writer in WRITERS:
        runs = [measure(writer, args.mb, args.shard_size) for _ in range(args.repeat)]
        peaks[writer], seconds = min(runs)
        extra = peaks[writer] - peaks.get("baseline", peaks[writer])
        print(f"{writer:>10}: peak RSS {peaks[writer] / 2**20:8.1f} MiB   write adds {extra / 2**20:8.1f} MiB   "
              f"({seconds:.2f} s)")


if __name__ == "__main__":
    main()
