"""Tokens/s of the ONNX export (KV cache, fp32 and int8) against the PyTorch
port, same model, same batches, same search (modelport's fairseq beam
search on both), in one run; and the cost per decoding step at output
lengths 10, 40 and 160, which stays flat with the cache.

    .venv/bin/python scripts/bench_onnx.py [--sizes embedded,base] [--lines 32] [--beam 5]
        [--batch-size 16] [--length 30] [--threads 2] [--rounds 3] [--no-int8] [--json FILE]

Sizes: ``embedded`` is the trained model in assets/default-model (real text
from the bundled corpus, real stopping); ``base`` a random transformer-base
fairseq model (6+6 layers, d_model 512, FFN 2048, 8 heads, 32k vocabularies;
needs fairseq to build) on random source ids, every output forced to exactly
``--length`` tokens (min = max length) so both runtimes do the same work.
Each system translates the first batch once untimed, then everything
``--rounds`` times; the best round counts. Outputs of the ONNX fp32 runtime
must be token-identical to the port's (reported); int8's agreement is
reported. The per-step table decodes ``--step-batch`` sentences (beam
``--beam``) to exactly 10, 40 and 160 tokens and prints milliseconds per step;
its last row is what step L costs without a cache (``decoder.onnx`` over the
whole prefix, as the export before ``decoder_with_past.onnx`` ran; it includes
the encoder).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import modelport  # noqa: E402
from modelport.exporters.onnx import export_onnx  # noqa: E402
from modelport.generation import generate  # noqa: E402
from modelport.generation.translate import pad_batch  # noqa: E402
from modelport.runtimes import onnx as onnx_runtime  # noqa: E402
from modelport.runtimes.onnx import load_onnx  # noqa: E402

Decode = Callable[[list[list[int]]], list[list[int]]]


def build(size: str, tmp: Path) -> Path:
    """A ported folder of ``size``."""
    if size == "embedded":
        return Path(modelport.convert(str(ROOT / "assets" / "default-model"), tmp / "embedded").path)
    from fairseq_ref import build_base_model

    print("building a random transformer-base fairseq model ...", file=sys.stderr, flush=True)
    src = build_base_model(tmp / "fairseq-base")
    return Path(modelport.convert(str(src), tmp / "base").path)


def sources(size: str, ported: Any, n: int) -> list[list[int]]:
    """Source token ids: corpus lines (embedded) or random ids, 12-30 tokens + EOS (base)."""
    if size == "embedded":
        lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[:n]
        return [ported.tokenizer.encode(line) for line in lines]
    cfg, rng = ported.config, random.Random(0)
    special = {cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id, cfg.unk_token_id}
    ids = [i for i in range(cfg.source_vocab_size) if i not in special]
    return [[rng.choice(ids) for _ in range(rng.randint(12, 30))] + [cfg.eos_token_id] for _ in range(n)]


def decoder(model: Any, opts: dict[str, Any]) -> Decode:
    def run(batch: list[list[int]]) -> list[list[int]]:
        return [h[0].tokens for h in generate(model, batch, semantics="fairseq", **opts)]
    return run


def timed(fn: Decode, batches: list[list[list[int]]], rounds: int) -> tuple[list[list[int]], float]:
    """All first-best outputs and the best of ``rounds`` timings (after one untimed batch)."""
    fn(batches[0])
    best, outs = float("inf"), []
    for _ in range(rounds):
        t = time.perf_counter()
        outs = [toks for b in batches for toks in fn(b)]
        best = min(best, time.perf_counter() - t)
    return outs, best


def bench_size(size: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    ported_dir = build(size, tmp)
    ported = modelport.load(ported_dir)
    cfg = ported.config
    print(f"\n== {size}: d_model {cfg.d_model}, {cfg.encoder_layers}+{cfg.decoder_layers} layers, FFN "
          f"{cfg.decoder_ffn_dim}, vocab {cfg.source_vocab_size}/{cfg.target_vocab_size}, "
          f"{ported.parameters / 1e6:.1f}M parameters", flush=True)
    t = time.perf_counter()
    export_onnx(ported_dir, tmp / f"{size}-onnx", verify=False)
    systems: dict[str, Any] = {"torch fp32 (port)": ported.model,
                               "onnx fp32 (kv cache)": load_onnx(tmp / f"{size}-onnx").runtime}
    print(f"exported in {time.perf_counter() - t:.1f}s", flush=True)
    if args.int8:
        t = time.perf_counter()
        export_onnx(ported_dir, tmp / f"{size}-onnx-int8", verify=False, int8=True, lines=["Hello world."])
        systems["onnx int8 (kv cache)"] = load_onnx(tmp / f"{size}-onnx-int8").runtime
        print(f"int8 export in {time.perf_counter() - t:.1f}s", flush=True)

    srcs = sources(size, ported, args.lines)
    fixed = size != "embedded"
    opts = ({"beam": args.beam, "max_len_a": 0, "max_len_b": args.length, "min_len": args.length} if fixed
            else {"beam": args.beam, "max_len_a": 1.2, "max_len_b": 10})
    order = sorted(range(len(srcs)), key=lambda i: len(srcs[i]))
    batches = [[srcs[i] for i in order[k: k + args.batch_size]] for k in range(0, len(order), args.batch_size)]
    rows, reference = {}, None
    print(f"{len(srcs)} sentences, beam {args.beam}, batch {args.batch_size}, "
          f"{'outputs of exactly ' + str(args.length) + ' tokens' if fixed else 'real stopping'}, "
          f"{torch.get_num_threads()} threads, best of {args.rounds}", flush=True)
    for name, model in systems.items():
        outs, seconds = timed(decoder(model, opts), batches, args.rounds)
        ntok = sum(len(t) for t in outs)
        if reference is None:
            reference, base_speed = outs, ntok / seconds
        same = sum(a == b for a, b in zip(outs, reference))
        rows[name] = {"tok_s": ntok / seconds, "tokens": ntok, "seconds": seconds, "identical_to_port": same}
        print(f"  {name:<24} {ntok / seconds:9.1f} tok/s  ({ntok / seconds / base_speed:.2f}x the port; "
              f"{same}/{len(outs)} outputs identical to the port's)", flush=True)

    steps: dict[str, dict[int, float]] = {name: {} for name in systems}
    step_src = batches[-1][: args.step_batch]
    print(f"per-step cost: {len(step_src)} sentences x beam {args.beam}, outputs forced to exactly L tokens "
          "(ms per step, best of rounds)", flush=True)
    for length in (10, 40, 160):
        o = {"beam": args.beam, "max_len_a": 0, "max_len_b": length, "min_len": length}
        for name, model in systems.items():
            _, seconds = timed(decoder(model, o), [step_src], args.rounds)
            steps[name][length] = 1000 * seconds / (length + 1)  # L tokens + the EOS step
    # without a cache (the export before decoder_with_past.onnx): step L re-runs the decoder over all L positions
    runtime = systems["onnx fp32 (kv cache)"]
    src_rows = pad_batch([s for s in step_src for _ in range(args.beam)], cfg.pad_token_id, left=True)
    steps["onnx fp32, no cache: step L"] = {}
    for length in (10, 40, 160):
        prev = torch.randint(4, cfg.target_vocab_size, (src_rows.size(0), length))
        best = float("inf")
        for _ in range(args.rounds + 1):
            t = time.perf_counter()
            runtime.full_prefix(src_rows, prev)
            best = min(best, time.perf_counter() - t)
        steps["onnx fp32, no cache: step L"][length] = 1000 * best
    print(f"  {'':<28} " + "".join(f"{'L=' + str(n):>10}" for n in (10, 40, 160)) + "   160/10", flush=True)
    for name, per in steps.items():
        print(f"  {name:<28} " + "".join(f"{per[n]:10.2f}" for n in (10, 40, 160)) + f"   {per[160] / per[10]:6.2f}",
              flush=True)
    return {"size": size, "parameters": ported.parameters, "sentences": len(srcs), "beam": args.beam,
            "fixed_length": args.length if fixed else None, "throughput": rows,
            "ms_per_step": {name: {str(k): v for k, v in per.items()} for name, per in steps.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="embedded,base")
    ap.add_argument("--lines", type=int, default=32)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--length", type=int, default=30, help="output length at base size")
    ap.add_argument("--step-batch", type=int, default=4, help="sentences of the per-step table")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-int8", dest="int8", action="store_false")
    ap.add_argument("--spin", action="store_true", help="let onnxruntime's idle workers spin-wait (its default)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # onnxruntime's sessions take torch's thread count
    onnx_runtime.SPIN = args.spin
    print(f"torch {torch.__version__}, onnxruntime workers {'spinning' if args.spin else 'sleeping'} when idle, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as d:
        results = [bench_size(size, args, Path(d)) for size in args.sizes.split(",")]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
