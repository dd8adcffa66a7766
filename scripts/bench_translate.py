"""Tokens/s of modelport's fairseq-semantics beam search against fairseq's
SequenceGenerator (and CTranslate2 when installed), same checkpoint, same
batches, outputs asserted identical.

    .venv/bin/python scripts/bench_translate.py [FAIRSEQ_DIR] [--lines 64] [--beam 5] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", nargs="?", default=str(ROOT / "assets" / "default-model"))
    ap.add_argument("--lines", type=int, default=64)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import modelport
    from modelport.generation import generate, make_batches
    from modelport.validators.references.fairseq_generator import FairseqReference

    src_dir = Path(args.source)
    tmp = Path(tempfile.mkdtemp())
    if not (src_dir / "model.pt").exists():
        from fairseq_ref import build_fairseq_model

        print(f"{src_dir} missing; using a random tiny model", file=sys.stderr)
        src_dir = tmp / "fairseq"
        build_fairseq_model(src_dir, seed=3)
    ported = modelport.convert(str(src_dir), tmp / "ported")
    ref = FairseqReference(str(src_dir))
    g = torch.Generator().manual_seed(0)
    vocab = ported.config.source_vocab_size
    srcs = [torch.randint(4, vocab, (int(k),), generator=g).tolist() + [2]
            for k in torch.randint(5, 30, (args.lines,), generator=g)]
    batches = make_batches([len(s) for s in srcs], args.batch_size)
    opts = {"beam": args.beam, "max_len_a": 1.2, "max_len_b": 10}

    def run(fn):
        out, t = {}, time.perf_counter()
        for b in batches:
            for i, h in zip(b, fn([srcs[i] for i in b])):
                out[i] = h
        return out, time.perf_counter() - t

    ours, t_ours = run(lambda b: generate(ported.models, b, **opts))
    theirs, t_ref = run(lambda b: ref.generate(b, **dict(opts)))
    same = all(ours[i][0]["tokens"] == theirs[i][0]["tokens"] for i in ours)
    ntok = sum(len(ours[i][0]["tokens"]) for i in ours)
    print(f"output tokens: {ntok}, identical to fairseq: {same}")
    print(f"modelport: {ntok / t_ours:8.1f} tok/s   fairseq: {ntok / t_ref:8.1f} tok/s   "
          f"speed-up {t_ref / t_ours:.2f}x")
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        print("ctranslate2 not installed: skipped")
        return
    print("ctranslate2 comparison: not implemented yet (needs ct2-fairseq-converter + fairseq task setup)")


if __name__ == "__main__":
    main()
