#!/usr/bin/env python
"""Size, tokens/s and agreement of the passes beside CTranslate2 int8 of the
same checkpoint, all in one run.

    .venv/bin/python scripts/bench_passes.py [--lines 200] [--work DIR]
    .venv/bin/python scripts/bench_passes.py --base [--lines 64] [--length 30]

Default: the embedded trained model translates the first ``--lines`` test
sentences with the folder's decoding defaults (fairseq semantics, beam 5);
agreement is identical first-best outputs with the fp32 port.

``--base``: a random transformer-base-sized fairseq model (6+6 layers,
d_model 512, FFN 2048, 8 heads, 32k vocabularies) decodes random source ids
to exactly ``--length`` tokens (beam 5), so every variant does the same work;
"halved" decoders go 6 -> 3. Agreement of a random model says little (its
distributions are flat, so any perturbation reorders near-ties); size and
speed are the point of that run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from _bench_utils import scratch_dir  # scripts/: the script's own directory is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))


def make_variants(fp32: Path, work: Path, decoder_layers: int) -> dict[str, Path]:
    import modelport

    variants = {"fp32": fp32}
    for mode in ("int8", "int8-weights", "fp16", "bf16"):
        variants[mode] = work / mode
        modelport.quantize(fp32, variants[mode], mode=mode, force=True)
    variants["decoder-halved"] = work / "decoder-halved"
    modelport.prune(fp32, variants["decoder-halved"], decoder_layers=decoder_layers, force=True)
    variants["ffn-0.25"] = work / "ffn25"
    modelport.prune(fp32, variants["ffn-0.25"], ffn=0.25, force=True)
    variants["heads-0.25"] = work / "heads25"
    modelport.prune(fp32, variants["heads-0.25"], heads=0.25, force=True)
    return variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", action="store_true", help="random transformer-base-sized model, fixed output lengths")
    ap.add_argument("--length", type=int, default=30, help="output length with --base")
    ap.add_argument("--lines", type=int, default=None, help="default 200 (64 with --base)")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder, kept (default: a temporary one, removed at exit)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # ct2-fairseq-converter reads the checkpoint
    import modelport
    from modelport.generation import generate, make_batches
    from modelport.passes.common import folder_bytes

    work = scratch_dir(args.work, "bench-passes-")
    fp32 = work / "fp32"
    if args.base:
        from fairseq_ref import build_base_model

        print("building a random transformer-base fairseq model ...", file=sys.stderr)
        src = build_base_model(work / "fairseq-base")
        n_lines = args.lines or 64
        modelport.convert(str(src), fp32, force=True)
        g = torch.Generator().manual_seed(0)
        vocab = modelport.load(fp32).config.source_vocab_size
        ids = [torch.randint(4, vocab, (int(k),), generator=g).tolist() + [2]
               for k in torch.randint(5, 30, (n_lines,), generator=g)]
        batches = make_batches([len(s) for s in ids], 16)
        opts = {"beam": 5, "max_len_a": 0, "max_len_b": args.length, "min_len": args.length}

        def translate(ported: modelport.PortedModel, first_only: bool = False) -> list[list[int]]:
            out: dict[int, list[int]] = {}
            for b in batches[:1] if first_only else batches:
                for i, h in zip(b, generate(ported.models, [ids[i] for i in b], **opts)):
                    out[i] = h[0]["tokens"]
            return [out[i] for i in sorted(out)]
    else:
        src = ROOT / "assets" / "default-model"
        lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()
        lines = lines[: args.lines or 200]
        n_lines = len(lines)
        modelport.convert(str(src), fp32, force=True)

        def translate(ported: modelport.PortedModel, first_only: bool = False) -> list[list[int]]:
            return [h[0]["tokens"] for h in ported.translate(lines[:4] if first_only else lines)]

    fp32_layers = modelport.load(fp32).config.decoder_layers
    variants = make_variants(fp32, work, max(1, fp32_layers // 2))

    def run(path: Path) -> tuple[list[list[int]], float, int]:
        ported = modelport.load(path)
        translate(ported, first_only=True)  # warm-up
        start = time.perf_counter()
        out = translate(ported)
        return out, time.perf_counter() - start, sum(map(len, out))

    print(f"{n_lines} lines, beam 5, {args.threads} threads; decoder-halved = {fp32_layers} -> "
          f"{max(1, fp32_layers // 2)} layers", flush=True)
    base_out, base_t, base_n = run(fp32)
    print(f"{'variant':<16} {'MB on disk':>10} {'tok/s':>8} {'x fp32':>7} {'identical':>9}", flush=True)
    rows = {}
    for name, path in variants.items():
        out, t, n = (base_out, base_t, base_n) if name == "fp32" else run(path)
        same = sum(a == b for a, b in zip(out, base_out)) / n_lines
        rows[name] = n / t
        print(f"{name:<16} {folder_bytes(path) / 1e6:>10.2f} {n / t:>8.0f} {(n / t) / (base_n / base_t):>7.2f} "
              f"{same:>9.0%}", flush=True)

    try:
        import ctranslate2
    except ImportError:
        print("ctranslate2 not installed: skipped")
        return
    ct2_dir = work / "ct2-int8"
    subprocess.run([str(Path(sys.executable).parent / "ct2-fairseq-converter"), "--model_path", str(src / "model.pt"),
                    "--data_dir", str(src), "--output_dir", str(ct2_dir), "--source_lang", "en", "--target_lang",
                    "de", "--quantization", "int8", "--unsafe_deserialization", "--force"],
                   check=True, capture_output=True)
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type="int8", intra_threads=args.threads)
    if args.base:
        from fairseq.data import Dictionary

        src_dict = Dictionary.load(str(src / "dict.en.txt"))
        pieces = [[src_dict[i] for i in s[:-1]] for s in ids]  # CTranslate2 appends </s> itself
        kw = {"min_decoding_length": args.length, "max_decoding_length": args.length}
    else:
        tok = modelport.load(fp32).tokenizer
        pieces = [tok.tokenize(x) for x in lines]
        kw = {}
    ct2: Callable[[list[list[str]]], list] = lambda p: translator.translate_batch(p, beam_size=5, max_batch_size=16,
                                                                                  **kw)
    ct2(pieces[:4])
    start = time.perf_counter()
    res = ct2(pieces)
    t = time.perf_counter() - start
    n = sum(len(r.hypotheses[0]) + 1 for r in res)  # + </s>, as counted for modelport
    size = sum(p.stat().st_size for p in ct2_dir.glob("*.bin"))
    print(f"{'ctranslate2-int8':<16} {size / 1e6:>10.2f} {n / t:>8.0f} {(n / t) / (base_n / base_t):>7.2f} "
          f"{'n/a':>9}")
    print(f"modelport int8 / CTranslate2 int8 speed: {rows['int8'] / (n / t):.2f}")


if __name__ == "__main__":
    main()
