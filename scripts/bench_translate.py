"""Tokens/s of modelport's fairseq-semantics beam search against fairseq's
SequenceGenerator (and CTranslate2 when installed), same checkpoint, same
batches, outputs asserted identical.

    .venv/bin/python scripts/bench_translate.py [FAIRSEQ_DIR] [--lines 64] [--beam 5] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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
    tok_cfg = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text())
    langs = (tok_cfg.get("source_lang") or "en", tok_cfg.get("target_lang") or "de")
    ref = FairseqReference(str(src_dir), *langs)
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
        import ctranslate2
    except ImportError:
        print("ctranslate2 not installed: skipped")
        return
    ckpt = src_dir / "model.pt"
    ct2_dir = tmp / "ct2"
    subprocess.run([str(Path(sys.executable).parent / "ct2-fairseq-converter"), "--model_path", str(ckpt),
                    "--data_dir", str(src_dir), "--output_dir", str(ct2_dir), "--source_lang", langs[0],
                    "--target_lang", langs[1], "--unsafe_deserialization"],
                   check=True, capture_output=True, env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", inter_threads=1, intra_threads=args.threads)
    src_syms = ref.src_dict.symbols
    tgt_syms = ref.tgt_dict.symbols

    def ct2_batch(batch):
        # CTranslate2 takes token strings and appends </s> itself
        toks = [[src_syms[i] for i in s[:-1]] for s in batch]
        res = translator.translate_batch(toks, beam_size=args.beam, max_decoding_length=max(len(s) for s in batch) * 2,
                                         length_penalty=1.0, return_scores=True)
        return [[{"tokens": [ref.tgt_dict.index(t) for t in r.hypotheses[0]] + [2]}] for r in res]

    ct2_out, t_ct2 = run(ct2_batch)
    agree = sum(ct2_out[i][0]["tokens"] == ours[i][0]["tokens"] for i in ours) / len(ours)
    ct2_tok = sum(len(ct2_out[i][0]["tokens"]) for i in ct2_out)
    print(f"ctranslate2 float32 ({args.threads} threads): {ct2_tok / t_ct2:8.1f} tok/s; modelport/ct2 speed "
          f"{(ntok / t_ours) / (ct2_tok / t_ct2):.2f}x; identical first-best outputs: {agree:.0%} "
          "(CTranslate2's max length and stopping rule differ from fairseq's)")
    del tgt_syms


if __name__ == "__main__":
    main()
