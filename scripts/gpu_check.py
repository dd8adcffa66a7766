"""Translate the embedded model on CUDA in float32, float16 and bfloat16 and
print how many output lines agree with float32 on the CPU (the reference).

    .venv/bin/python scripts/gpu_check.py [PORTED_DIR] [--lines N]

Without PORTED_DIR the embedded model (assets/default-model) is converted
into a temporary folder first. Without CUDA it prints why and exits 0, so it
can run anywhere; on a GPU machine it exits 1 when a run fails or float32 on
CUDA does not reproduce the CPU's lines exactly (half precision may differ on
a few near-ties: its agreement is reported, not required).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import modelport

ROOT = Path(__file__).resolve().parents[1]


def _translate(port: Path, lines: list[str], device: str, dtype: str) -> tuple[list[str], float]:
    ported = modelport.load(port, device=device, dtype=dtype)
    start = time.perf_counter()
    texts = [hyps[0].text for hyps in ported.translate(lines)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return texts, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ported_dir", nargs="?", help="a ported folder (default: the embedded model, converted)")
    parser.add_argument("--lines", type=int, default=200, help="lines of assets/corpus/test.en (default: 200)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu_check: skipped, CUDA is not available (torch {torch.__version__})")
        return 0
    lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[: args.lines]
    with tempfile.TemporaryDirectory() as tmp:
        port = Path(args.ported_dir) if args.ported_dir else Path(tmp) / "port"
        if not args.ported_dir:
            modelport.convert(str(ROOT / "assets" / "default-model"), port)
        print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {len(lines)} lines of "
              f"{port}")
        reference, seconds = _translate(port, lines, "cpu", "float32")
        print(f"  cpu  float32   reference      {seconds:6.2f} s")
        failed = False
        for dtype in ("float32", "float16", "bfloat16"):
            try:
                texts, seconds = _translate(port, lines, "cuda", dtype)
            except Exception as e:  # noqa: BLE001 -- reported per precision; the others still run
                print(f"  cuda {dtype:9s} FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                failed = True
                continue
            same = sum(a == b for a, b in zip(texts, reference))
            print(f"  cuda {dtype:9s} {same:4d}/{len(lines)} lines identical to cpu float32  {seconds:6.2f} s")
            failed |= dtype == "float32" and same != len(lines)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
