#!/usr/bin/env python
"""What ``modelport quantize --mode int8`` costs and gains, per variant, beside CTranslate2 int8.

    .venv/bin/python scripts/bench_int8.py [--lines 200] [--batch-size 16] [--work DIR] [--skip-ct2]
    .venv/bin/python scripts/bench_int8.py --base|--mid [--base-lines 24] [--length 30] [--batch-size 16]
    .venv/bin/python scripts/bench_int8.py --layers

Default: the embedded trained model (assets/default-model, fairseq 3+3 layers,
d_model 128) translates the first ``--lines`` sentences of
assets/corpus/test.en with the folder's decoding defaults (fairseq semantics,
beam 5). Per variant: sacreBLEU BLEU and chrF against test.de and their change
from fp32, first-best outputs identical to the fp32 port's, weight bytes on
disk, and tokens/s as a ratio to fp32: the two models translate alternately in
this process, one torch thread, ``time.thread_time()`` per run (CPU time of
this thread: a busy neighbour does not count), the best of ``--runs`` each.

Variants are the pass itself (``modelport.quantize`` with an
:class:`~modelport.passes.quantize.Int8Options`), loaded by ``modelport.load``,
so the figures are those of the folders a user gets: int8 matmuls in every
linear layer (the pass before it chose per layer) per-channel and per-tensor,
under each of torch's quantized engines, embeddings kept fp32, a minimum layer
size (smaller layers compute in fp32), and the default. CTranslate2: the port's
``export ct2`` (``modelport.exporters.ct2.export_ct2``) at float32 and int8,
beam 5 with the options where its search coincides with fairseq's (see
:func:`modelport.exporters.ct2.export_ct2`), one intra thread; its speed ratio
is int8 against its own float32, alternating the same way.

``--base``: a random transformer-base-sized fairseq model (6+6 layers, d_model
512, FFN 2048, 8 heads, 32k vocabularies; ``tests/helpers/fairseq_ref.py``'s
builder) decodes random source ids to exactly ``--length`` tokens (beam 5), so
every variant does the same work: speed only (a random model's agreement says
little). ``--mid``: the same with d_model 256, FFN 1024, 4 heads and 8k
vocabularies, where the attention projections (65,536 weights) stay below the
int8 minimum and the FFNs (262,144) pass it.

``--layers``: single linear layers from 128 x 128 to 512 x 32000 on 5, 80 and
400 input rows, fp32 against int8 as a folder loads it: the measurement behind
:data:`~modelport.passes.quantize.MIN_INT8_ELEMENTS`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from _bench_utils import scratch_dir  # scripts/: the script's own directory is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

import modelport  # noqa: E402
from modelport.metrics import corpus_scores  # noqa: E402
from modelport.model.folder import PortedFolder  # noqa: E402
from modelport.passes.quantize import MIN_INT8_ELEMENTS, Int8Options  # noqa: E402

Outputs = list[list[int]]


@dataclass(frozen=True)
class Variant:
    """One folder to measure: the pass's mode and int8 options, and the quantized engine to run it under."""

    name: str
    mode: str
    int8: Int8Options | None = None
    engine: str | None = None  # torch.backends.quantized.engine while loading and running; None: torch's default


def variants(random_model: bool) -> list[Variant]:
    """What is measured: the old default (every linear layer int8), its alternatives, and the default."""
    every = Int8Options(min_elements=0)
    out = [Variant("int8 every layer (before)", "int8", every),
           Variant("int8 every layer, per-tensor", "int8", Int8Options(min_elements=0, weights="per-tensor"))]
    out += [Variant(f"int8 every layer, {e}", "int8", every, e) for e in torch.backends.quantized.supported_engines
            if e in ("fbgemm", "onednn")]  # x86 is torch's default here: the first row
    if not random_model:  # storage choices matter for quality, which a random model does not show
        out += [Variant("int8 every layer, fp32 embeddings", "int8", Int8Options(min_elements=0, fp32_embeddings=True)),
                Variant("int8 >= 65,536 weights", "int8", Int8Options(min_elements=65_536)),
                Variant("int8 >= 65,536, small layers fp32-stored", "int8",
                        Int8Options(min_elements=65_536, fp32_small_layers=True))]
    out += [Variant(f"int8 default (>= {MIN_INT8_ELEMENTS:,} weights)", "int8", Int8Options()),
            Variant("int8 default, fp32 output projection (before)", "int8", Int8Options(fp32_output_projection=True)),
            Variant("int8-weights (fp32 compute)", "int8-weights")]
    return out


DEFAULT_ENGINE = torch.backends.quantized.engine


def use_engine(engine: str | None) -> None:
    """Set torch's quantized engine (a process-wide setting) for what loads and runs next."""
    torch.backends.quantized.engine = engine or DEFAULT_ENGINE


def alternate(a: Callable[[], Outputs], b: Callable[[], Outputs], runs: int, setup_b: Callable[[], None],
              clock: Callable[[], float] = time.thread_time) -> tuple[Outputs, float, Outputs, float]:
    """Both functions' outputs and best tokens per CPU-second of ``clock`` (default: this thread's),
    run alternately ``runs`` times each."""
    best_a = best_b = 0.0
    out_a: Outputs = []
    out_b: Outputs = []
    for _ in range(runs):
        for which in ("a", "b"):
            use_engine(None)
            if which == "b":
                setup_b()
            start = clock()
            out = (a if which == "a" else b)()
            rate = sum(map(len, out)) / max(clock() - start, 1e-9)
            if which == "a":
                out_a, best_a = out, max(best_a, rate)
            else:
                out_b, best_b = out, max(best_b, rate)
    use_engine(None)
    return out_a, best_a, out_b, best_b


def texts(ported: modelport.PortedModel, outputs: Outputs) -> list[str]:
    return [ported.tokenizer.decode(ids) for ids in outputs]


def row(name: str, size: int, fp32_size: int, same: int | None, lines: int, ratio: float,
        scores: tuple[float, float] | None, fp32_scores: tuple[float, float] | None) -> str:
    """One Markdown table row."""
    quality = "| |"
    if scores is not None and fp32_scores is not None:
        quality = (f"{scores[0]:.2f} ({scores[0] - fp32_scores[0]:+.2f}) | "
                   f"{scores[1]:.2f} ({scores[1] - fp32_scores[1]:+.2f}) |")
    agree = "" if same is None else f"{same}/{lines}"
    return f"| {name} | {quality} {agree} | {size / 1e6:.2f} ({100 * size / fp32_size:.0f}%) | {ratio:.2f}x |"


def bench_port(args: argparse.Namespace, fp32_dir: Path, translate: Callable[[modelport.PortedModel], Outputs],
               refs: list[str] | None) -> tuple[Outputs, tuple[float, float] | None]:
    """Every variant of :func:`variants` against fp32; prints one row each. Returns fp32's outputs and scores."""
    fp32 = modelport.load(fp32_dir)
    fp32_out = translate(fp32)
    fp32_scores = None
    if refs is not None:
        s = corpus_scores(texts(fp32, fp32_out), refs)
        fp32_scores = (s.bleu, s.chrf)
    fp32_size = PortedFolder.open(fp32_dir).weight_bytes
    lines = len(fp32_out)
    print(row("fp32 port", fp32_size, fp32_size, lines, lines, 1.0, fp32_scores, fp32_scores), flush=True)
    for v in variants(args.random is not None):
        if args.only and not any(part in v.name for part in args.only):
            continue
        folder = args.work / v.name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        modelport.quantize(fp32_dir, folder, mode=v.mode, int8=v.int8, force=True)
        use_engine(v.engine)
        ported = modelport.load(folder)
        translate(ported)  # warm-up (and the engine's own first-call costs)
        _, rate_a, out, rate_b = alternate(lambda: translate(fp32), lambda: translate(ported), args.runs,
                                           lambda: use_engine(v.engine))
        scores = None
        if refs is not None:
            s = corpus_scores(texts(ported, out), refs)
            scores = (s.bleu, s.chrf)
        same = sum(x == y for x, y in zip(out, fp32_out))
        print(row(v.name, PortedFolder.open(folder).weight_bytes, fp32_size, same, lines, rate_b / rate_a, scores,
                  fp32_scores), flush=True)
    return fp32_out, fp32_scores


def bench_ct2(args: argparse.Namespace, fp32_dir: Path, lines: list[str], refs: list[str], fp32_out: Outputs,
              fp32_scores: tuple[float, float] | None) -> None:
    """CTranslate2 float32 and int8 of the port's own export, on the same lines."""
    import ctranslate2

    from modelport.exporters.ct2 import Vocabularies, export_ct2

    ported = modelport.load(fp32_dir)
    vocab = Vocabularies.of(ported.tokenizer, ported.config)
    index = {t: i for i, t in enumerate(vocab.target)}
    sources = [[vocab.source[i] for i in ported.tokenizer.encode(x)[:-1]] for x in lines]  # CT2 adds </s>
    gen = ported.generation_config
    options: dict[str, Any] = {"beam_size": int(gen.get("beam", 5)), "length_penalty": float(gen.get("lenpen", 1.0)),
                               "min_decoding_length": int(gen.get("min_len", 1)), "max_batch_size": 32,
                               "suppress_sequences": [[vocab.target[ported.config.pad_token_id]]],
                               "return_end_token": True, "max_decoding_length": 256}
    translators = {}
    sizes = {}
    for q in ("float32", "int8"):
        out = args.work / f"ct2-{q}"
        export_ct2(fp32_dir, out, quantization=None if q == "float32" else q, force=True, verify=False)
        translators[q] = ctranslate2.Translator(str(out), device="cpu", compute_type=q, intra_threads=1)
        sizes[q] = (out / "model.bin").stat().st_size

    def run(q: str) -> Callable[[], Outputs]:
        return lambda: [[index[t] for t in r.hypotheses[0]] for r in translators[q].translate_batch(sources,
                                                                                                    **options)]

    run("float32")(), run("int8")()  # warm-up
    # CTranslate2 computes in its own worker thread: the process's CPU time counts it (torch is idle meanwhile)
    f_out, f_rate, i_out, i_rate = alternate(run("float32"), run("int8"), args.runs, lambda: None, time.process_time)
    fp32_size = PortedFolder.open(fp32_dir).weight_bytes
    for q, out, ratio in (("float32", f_out, 1.0), ("int8", i_out, i_rate / f_rate)):
        s = corpus_scores(texts(ported, [o[:-1] if o and o[-1] == ported.config.eos_token_id else o for o in out]),
                          refs)
        same = sum(x == y for x, y in zip(out, fp32_out))
        name = "CTranslate2 float32" if q == "float32" else "CTranslate2 int8 (speed vs its float32)"
        print(row(name, sizes[q], fp32_size, same, len(out), ratio, (s.bleu, s.chrf), fp32_scores), flush=True)
    same_ct2 = sum(x == y for x, y in zip(f_out, i_out))
    print(f"\nCTranslate2 int8 identical to CTranslate2 float32: {same_ct2}/{len(i_out)}; "
          f"CTranslate2 tokens/s (process CPU): float32 {f_rate:.0f}, int8 {i_rate:.0f}")


LAYER_SHAPES = ((128, 128), (128, 512), (512, 128), (256, 256), (256, 512), (512, 256), (384, 384), (512, 512),
                (512, 2048), (2048, 512), (512, 32000))  # the last: a base model's output projection
ROWS = (5, 80, 400)  # one sentence's beam, a batch of 16 x beam 5, an encoder batch of tokens


def bench_layers(runs: int) -> None:
    """One linear layer per shape, fp32 against int8 as a folder loads it (``apply_on_load`` with a record
    naming it), on ``ROWS`` input rows: where int8 matmuls start to pay (:data:`MIN_INT8_ELEMENTS`)."""
    from torch import nn

    from modelport.model.gemm import Linear
    from modelport.model.quantized import apply_on_load

    print(f"one linear layer, 1 thread, int8 per-channel ({DEFAULT_ENGINE} engine) tokens/s vs fp32, "
          f"best of {max(runs, 5)}\n\n| in x out | weights | " + " | ".join(f"{r} rows" for r in ROWS) + " |\n"
          "| --- | --- |" + " --- |" * len(ROWS))
    for fan_in, fan_out in LAYER_SHAPES:
        fp32 = nn.Sequential(Linear(fan_in, fan_out)).eval()  # as a port computes fp32: oneDNN where it pays
        int8 = apply_on_load(nn.Sequential(nn.Linear(fan_in, fan_out)).eval(),
                             {"mode": "int8", "int8_layers": ["0"], "weights": "per-channel"})
        ratios = []
        for rows in ROWS:
            x = torch.randn(rows, fan_in)
            calls = max(3, int(4e7 / (rows * fan_in * fan_out)))
            best = {}
            with torch.no_grad():
                for _ in range(max(runs, 5)):
                    for name, layer in (("fp32", fp32), ("int8", int8)):
                        start = time.thread_time()
                        for _ in range(calls):
                            layer(x)
                        best[name] = min(best.get(name, float("inf")), time.thread_time() - start)
            ratios.append(best["fp32"] / best["int8"])
        mark = " (int8 by default)" if fan_in * fan_out >= MIN_INT8_ELEMENTS else ""
        print(f"| {fan_in} x {fan_out} | {fan_in * fan_out:,}{mark} | " + " | ".join(f"{r:.2f}x" for r in ratios)
              + " |", flush=True)


HEADER = ("| variant | BLEU (vs fp32) | chrF (vs fp32) | identical to fp32 port | MB on disk | tokens/s vs fp32 |\n"
          "| --- | --- | --- | --- | --- | --- |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", dest="random", action="store_const", const="base",
                    help="a random transformer-base-sized model, fixed lengths")
    ap.add_argument("--mid", dest="random", action="store_const", const="mid",
                    help="a random model of d_model 256 (see above), fixed lengths")
    ap.add_argument("--lines", type=int, default=200, help="test sentences of the trained model (default 200)")
    ap.add_argument("--base-lines", type=int, default=24, help="random sources with --base/--mid (default 24)")
    ap.add_argument("--length", type=int, default=30, help="output length with --base/--mid (default 30)")
    ap.add_argument("--batch-size", type=int, default=16, help="sentences per batch (default 16)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per model; the best counts (default 3)")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder, kept (default: a temporary one, removed at exit)")
    ap.add_argument("--skip-ct2", action="store_true", help="leave CTranslate2 out")
    ap.add_argument("--only", nargs="+", metavar="TEXT", help="only the variants whose name holds one of these "
                                                              "(default: every variant)")
    ap.add_argument("--layers", action="store_true", help="single linear layers of each size instead of models")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.layers:
        return bench_layers(args.runs)
    args.work = scratch_dir(args.work, "bench-int8-")
    fp32_dir = args.work / "fp32"
    if args.random is not None:
        from fairseq_ref import build_base_model, build_fairseq_model

        from modelport.generation import generate, make_batches

        print(f"building a random {args.random} fairseq model ...", file=sys.stderr)
        src = args.work / f"fairseq-{args.random}"
        if args.random == "base":
            build_base_model(src)
        else:
            build_fairseq_model(src, src_vocab=8000, tgt_vocab=8000, encoder_embed_dim=256,
                                encoder_ffn_embed_dim=1024, encoder_layers=6, decoder_layers=6,
                                max_source_positions=1024, max_target_positions=1024)
        modelport.convert(str(src), fp32_dir, force=True)
        g = torch.Generator().manual_seed(0)
        vocab = modelport.load(fp32_dir).config.source_vocab_size
        ids = [torch.randint(4, vocab, (int(k),), generator=g).tolist() + [2]
               for k in torch.randint(5, 30, (args.base_lines,), generator=g)]
        batches = make_batches([len(s) for s in ids], args.batch_size)
        opts = {"beam": 5, "max_len_a": 0, "max_len_b": args.length, "min_len": args.length}

        def translate(ported: modelport.PortedModel) -> Outputs:
            out: dict[int, list[int]] = {}
            for b in batches:
                for i, h in zip(b, generate(ported.models, [ids[i] for i in b], **opts)):
                    out[i] = h[0]["tokens"]
            return [out[i] for i in sorted(out)]

        print(f"{args.random} (random), {args.base_lines} sources in batches of {args.batch_size}, {args.length} "
              f"tokens each, beam 5, 1 thread, "
              f"best of {args.runs} alternating runs (thread CPU time)\n\n{HEADER}")
        bench_port(args, fp32_dir, translate, None)
        return
    corpus = ROOT / "assets" / "corpus"
    lines = (corpus / "test.en").read_text(encoding="utf-8").splitlines()[: args.lines]
    refs = (corpus / "test.de").read_text(encoding="utf-8").splitlines()[: args.lines]
    modelport.convert(str(ROOT / "assets" / "default-model"), fp32_dir, force=True)

    def translate_lines(ported: modelport.PortedModel) -> Outputs:
        return [h[0]["tokens"] for h in ported.translate(lines, batch_size=args.batch_size)]

    print(f"assets/default-model, {len(lines)} lines of assets/corpus/test.en in batches of {args.batch_size}, "
          "folder defaults (fairseq, beam 5), "
          f"1 thread, best of {args.runs} alternating runs (thread CPU time)\n\n{HEADER}")
    fp32_out, fp32_scores = bench_port(args, fp32_dir, translate_lines, refs)
    if not args.skip_ct2:
        bench_ct2(args, fp32_dir, lines, refs, fp32_out, fp32_scores)


if __name__ == "__main__":
    main()
