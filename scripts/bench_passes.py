#!/usr/bin/env python
"""Size, tokens/s and agreement of the passes on the embedded model, beside
CTranslate2 int8 of the same checkpoint, all in one run.

    .venv/bin/python scripts/bench_passes.py [--lines 200] [--work DIR]

Every variant translates the same test sentences with the folder's decoding
defaults (fairseq semantics, beam 5); agreement is identical first-best
outputs with the fp32 port.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import modelport
    from modelport.passes.common import folder_bytes

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-passes-"))
    src = ROOT / "assets" / "default-model"
    lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[: args.lines]
    fp32 = work / "fp32"
    modelport.convert(str(src), fp32, force=True)
    variants = {"fp32": fp32}
    for mode in ("int8", "int8-weights", "fp16", "bf16"):
        variants[mode] = work / mode
        modelport.quantize(fp32, variants[mode], mode=mode, force=True)
    variants["decoder-halved"] = work / "dec1"  # 3 -> 1 (half would round to 2; 1 is the distilBART-style cut)
    modelport.prune(fp32, variants["decoder-halved"], decoder_layers=1, force=True)
    variants["ffn-0.25"] = work / "ffn25"
    modelport.prune(fp32, variants["ffn-0.25"], ffn=0.25, force=True)
    variants["heads-0.25"] = work / "heads25"
    modelport.prune(fp32, variants["heads-0.25"], heads=0.25, force=True)

    def run(path: Path) -> tuple[list[list[int]], float, int]:
        ported = modelport.load(path)
        ported.translate(lines[:4])  # warm-up
        start = time.perf_counter()
        out = [h[0]["tokens"] for h in ported.translate(lines)]
        return out, time.perf_counter() - start, sum(map(len, out))

    base_out, base_t, base_n = run(fp32)
    print(f"{'variant':<16} {'MB on disk':>10} {'tok/s':>8} {'x fp32':>7} {'identical':>9}")
    rows = {}
    for name, path in variants.items():
        out, t, n = (base_out, base_t, base_n) if name == "fp32" else run(path)
        same = sum(a == b for a, b in zip(out, base_out)) / len(lines)
        rows[name] = n / t
        print(f"{name:<16} {folder_bytes(path) / 1e6:>10.2f} {n / t:>8.0f} {(n / t) / (base_n / base_t):>7.2f} "
              f"{same:>9.0%}")

    try:
        import ctranslate2
    except ImportError:
        print("ctranslate2 not installed: skipped")
        return
    ct2_dir = work / "ct2-int8"
    subprocess.run([str(Path(sys.executable).parent / "ct2-fairseq-converter"), "--model_path", str(src / "model.pt"),
                    "--data_dir", str(src), "--output_dir", str(ct2_dir), "--source_lang", "en", "--target_lang",
                    "de", "--quantization", "int8", "--unsafe_deserialization", "--force"],
                   check=True, capture_output=True, env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    tok = modelport.load(fp32).tokenizer
    pieces = [tok.tokenize(x) for x in lines]
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type="int8", intra_threads=args.threads)
    translator.translate_batch(pieces[:4], beam_size=5)
    start = time.perf_counter()
    res = translator.translate_batch(pieces, beam_size=5, max_batch_size=32)
    t = time.perf_counter() - start
    n = sum(len(r.hypotheses[0]) + 1 for r in res)  # + </s>, as counted for modelport
    size = sum(p.stat().st_size for p in ct2_dir.glob("*.bin"))
    print(f"{'ctranslate2-int8':<16} {size / 1e6:>10.2f} {n / t:>8.0f} {(n / t) / (base_n / base_t):>7.2f} "
          f"{'n/a':>9}")
    print(f"modelport int8 / CTranslate2 int8 speed: {rows['int8'] / (n / t):.2f}")


if __name__ == "__main__":
    main()
