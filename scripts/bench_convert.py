#!/usr/bin/env python
"""Conversion time and peak RSS: modelport vs CTranslate2's fairseq converter.

For the embedded default model and a randomly initialised transformer-big
sized fairseq checkpoint (~200M parameters), each converter runs in its own
fresh process; peak RSS comes from that process's rusage (os.wait4), and is
reported raw and as a ratio of the checkpoint's tensor bytes. A process that
only imports torch gives the interpreter baseline.

    .venv/bin/python scripts/bench_convert.py [--skip-big] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def tensor_bytes(checkpoint: Path) -> int:
    code = ("import sys, torch; from modelport.converters.safe_pickle import safe_torch_load;"
            "m = safe_torch_load(sys.argv[1])['model'];"
            "seen = {}; [seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())"
            " for t in m.values() if torch.is_tensor(t)]; print(sum(seen.values()))")
    return int(subprocess.check_output([sys.executable, "-c", code, str(checkpoint)]).decode().strip())


def make_big(directory: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from fairseq_ref import build_fairseq_model  # reference-side builder, fairseq's own code

    _, path = build_fairseq_model(
        directory, src_vocab=32000, encoder_embed_dim=1024, decoder_embed_dim=1024,
        encoder_ffn_embed_dim=4096, decoder_ffn_embed_dim=4096, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=16, decoder_attention_heads=16, share_all_embeddings=True,
        max_source_positions=1024, max_target_positions=1024)
    return path


def bench(name: str, checkpoint: Path, work: Path) -> dict:
    nbytes = tensor_bytes(checkpoint)
    out_mp = work / f"{name}-modelport"
    out_ct2 = work / f"{name}-ct2"
    shutil.rmtree(out_mp, ignore_errors=True)
    shutil.rmtree(out_ct2, ignore_errors=True)
    t_base, rss_base = run_measured([sys.executable, "-c", "import torch, modelport"])
    t_mp, rss_mp = run_measured([str(BIN / "modelport"), "convert", str(checkpoint.parent), str(out_mp),
                                 "--checkpoint", checkpoint.name])
    ct2 = shutil.which("ct2-fairseq-converter", path=str(BIN)) or shutil.which("ct2-fairseq-converter")
    row = {"model": name, "tensor_bytes": nbytes, "baseline_rss": rss_base,
           "modelport": {"seconds": round(t_mp, 2), "peak_rss": rss_mp, "rss_ratio": round(rss_mp / nbytes, 2)}}
    if ct2:
        t_ct, rss_ct = run_measured(
            [ct2, "--model_path", str(checkpoint), "--data_dir", str(checkpoint.parent), "--output_dir",
             str(out_ct2), "--source_lang", "en", "--target_lang", "de",
             # CTranslate2 (and fairseq underneath it) can only read fairseq checkpoints with full,
             # unrestricted unpickling; modelport reads the same file with its restricted unpickler.
             "--unsafe_deserialization"], env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
        row["ctranslate2"] = {"seconds": round(t_ct, 2), "peak_rss": rss_ct, "rss_ratio": round(rss_ct / nbytes, 2)}
        row["time_ratio_modelport_over_ct2"] = round(t_mp / t_ct, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-big", action="store_true", help="only the embedded model")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--make-big", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_big:
        make_big(args.make_big)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-convert-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = [bench("embedded", ROOT / "assets" / "default-model" / "model.pt", work)]
    if not args.skip_big:
        big = work / "big-src"
        if not (big / "model.pt").exists():
            print("building a random transformer-big fairseq checkpoint ...", file=sys.stderr)
            # in a child process: Linux children inherit the parent's RSS high-water
            # mark across fork+exec, so this process must stay small
            subprocess.run([sys.executable, __file__, "--make-big", str(big)], check=True)
        rows.append(bench("transformer-big", big / "model.pt", work))
    mib = 1024 ** 2
    print(f"{'model':<16} {'tensors':>9} {'tool':<12} {'time s':>7} {'peak RSS':>9} {'RSS/tensors':>11}")
    for r in rows:
        for tool in ("modelport", "ctranslate2"):
            if tool in r:
                m = r[tool]
                print(f"{r['model']:<16} {r['tensor_bytes'] / mib:>7.1f}Mi {tool:<12} {m['seconds']:>7.2f} "
                      f"{m['peak_rss'] / mib:>7.0f}Mi {m['rss_ratio']:>11.2f}")
        if "time_ratio_modelport_over_ct2" in r:
            print(f"{'':<16} time modelport/ct2 = {r['time_ratio_modelport_over_ct2']:.2f}; "
                  f"interpreter+torch baseline RSS {r['baseline_rss'] / mib:.0f}Mi")
    print(json.dumps(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
