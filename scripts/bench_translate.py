"""Tokens/s of modelport's beam search against fairseq's SequenceGenerator,
CTranslate2 (float32) and transformers' FSMT, same checkpoint, same batches,
same run; outputs compared wherever the semantics match.

    .venv/bin/python scripts/bench_translate.py [FAIRSEQ_DIR] [--lines 256] [--beam 5] [--batch-size 16]
    .venv/bin/python scripts/bench_translate.py --base|--big [--lines 64] [--length 30] [--in-process]
    .venv/bin/python scripts/bench_translate.py --marian [MARIAN_DIR] [--lines 200] [--beam 4]
    .venv/bin/python scripts/bench_translate.py --marian [MARIAN_DIR] --max-length-factor 0.05
    .venv/bin/python scripts/bench_translate.py --marian [MARIAN_DIR] --threads 2 --procs 2 --corpus train
    .venv/bin/python scripts/bench_translate.py --marian --base [--lines 40] [--beam 4]

The default source is the embedded trained model, given real text (the
corpus' test sentences, ``--corpus``, through the port's tokenizer) so that
its outputs stop where the model stops them.
``--base`` builds a random transformer-base-sized fairseq model (6+6 layers,
d_model 512, FFN 2048, 8 heads, 32k vocabularies) and decodes every sentence
to exactly ``--length`` tokens (min = max length), so every system does the
same amount of work whatever its stopping rule.

``--big``: the same protocol at transformer-big size (6+6 layers, d_model
1024, FFN 4096, 16 heads, one shared 32k vocabulary).
Peers: fairseq with fairseq semantics (outputs must be identical);
CTranslate2 ``ct2-fairseq-converter`` float32 on the same threads (its
stopping rule differs from fairseq's, so agreement is reported, not
asserted); transformers ``FSMTForConditionalGeneration.generate`` against
modelport with ``--semantics hf`` (identical outputs expected); the port's
``export onnx`` run by onnxruntime under modelport's own search (KV cache;
identical outputs expected); the port after ``quantize --mode int8`` beside
CTranslate2 int8 (``compute_type="int8"``, compared with modelport int8).
Every system is given the same ``--batch-size`` batches, whose padded widths set
fairseq's length caps; modelport (fairseq semantics, fp32, int8 and ONNX rows;
hf semantics) decodes consecutive batches together as ``translate`` does (up to
``group_lines`` lines per search, each line keeping its own batch's
cap: modelport/generation/groups.py), and the row "modelport, one search per
batch" shows the port decoding them one by one as the others do.
Every system is set up first; each translates the whole set once untimed,
then ``--rounds`` timed passes in which the systems take turns (A B C, A B C,
...): the machine's speed drifts during a run, and in turns the drift touches
every system alike. The best pass of each counts. With two or more rounds a
compared row also gives its time ratio round by round (each pass against its
base system's pass of the same round, run seconds apart): the median and the
range of those ratios, which a drift between rounds leaves out.

Every pass runs in a fresh process of its own (this script again, which
loads that one system from the files written under the run's temporary
directory, translates the set once untimed, then once timed): no system
shares its process, OpenMP threads or allocator with another's. That
matters: CTranslate2 bundles its own GNU OpenMP, and once torch has run a
parallel op with 2 threads in a process, CTranslate2 at 2 threads in that
process decodes 4-5x slower (embedded model: 1,290 against 7,154 tok/s
alone). ``--in-process`` sets up and times every system in the script's own
process instead (quicker; CTranslate2's figures are then not its own).

``--marian``: a Marian model (default: tests/data/marian-trained/post_sep_tied,
trained by Marian itself; any OPUS-MT/Marian folder with decoder.yml) on the
corpus' test sentences: modelport with marian semantics against Marian itself
(``pymarian.Translator``, in process, same threads, same beam, normalize 0.6
and mini-batch/maxi-batch/maxi-batch-sort src), and CTranslate2 on the port's
verified ``export ct2`` (its stopping rule differs from Marian's: agreement
reported; each pass in a process of its own, as above; not for SSRU
decoders, which CTranslate2 has no layer for), given Marian's batches and
each batch's length cap, and the port's ``export onnx`` under modelport's
own Marian search (SSRU decoders too: their cell state is the graphs'
cache). Tokens are the first-best outputs' target pieces plus ``</s>`` (Marian's text
re-encoded with the target SentencePiece model).

``--marian --max-length-factor F``: every row's output length cap, Marian's
(F times each batch's padded source width; default 3, Marian's own). A
small F (0.05: one or two target tokens) leaves what a translation costs
apart from its decoding steps: the tokenizers, the encoder, the first step;
at the default, the difference between the two runs is the decoding.

``--marian --procs N``: also modelport as N ``torchrun`` processes of one
thread each (``modelport translate`` under torchrun: ``sharded_map`` over
chunks of whole Marian pools), the counterpart of Marian's N worker threads,
which decode different batches at once. The script starts itself under
``python -m torch.distributed.run --standalone --nproc_per_node N`` once per
pass, taking its turn with the other rows as a fresh process of CTranslate2's
does; each process loads the port and translates its share once before the
timing, which runs between two barriers on rank 0 (best of ``--rounds``
passes). Chunks are whole
pools of mini-batch x maxi-batch lines (1,600 with the defaults 16 x 100); a
round of fewer chunks than processes (the 200 test lines are one) is shared,
each process decoding every N-th of a chunk's batches, as ``translate`` does.
``--corpus train`` takes the lines from the training corpus (default N x
1,600 lines, at least two pools), and every row decodes those same lines with
the same batching.

``--marian --base``: the same on a Marian model of transformer-base
proportions built in a temporary directory (``build_marian_base``: 6+6
layers, d_model 512, 8 heads, FFN 2048, relu, post-norm, ``--tied-embeddings``,
separate source/target ``.spm`` vocabularies) by ``pymarian train`` for one
update, so the weights are Marian's initialisation: every output runs to
Marian's length cap (``--max-length-factor`` times the source length), which
also caps the port's, so "identical to pymarian" still compares the beam
searches. The corpus allows about 1.1k (en) / 1.3k (de) unigram pieces; each
vocabulary gets 30.5k user-defined filler symbols that never occur in text
(31,577 source / 31,834 target pieces, about transformer-base's usual 32k),
so embeddings and the output layer cost what they cost at that size (the
random model emits fillers too). Setup is about 1 minute on one core.

Hardware limit: the script measures the machine's fp32 GEMM rate itself
(``torch.matmul`` with the same thread count, on the matrix shapes decoding
multiplies: beam x batch rows against the decoder's FFN and output
projection, the encoder's token rows against its FFN) and prints the
fraction of it each system's beam search reaches. The work counted is the
matrix products a KV-cached beam search needs for the first-best outputs'
lengths (every hypothesis of the beam, every step; attention score products
included, softmax/norms/bookkeeping not), so the fraction is a lower bound
on how busy the multipliers are and comparable between systems. The int8
rows (the port after ``quantize --mode int8``, CTranslate2 int8) are given
as a fraction of the int8 product's rate instead: torch's dynamic int8
linear layer (the one the port's int8 layers run, activations quantized on
every call) at the same shapes, its best, with every multiply-add of the
search counted at that rate.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import torch

from modelport.generation.options import positive_float

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

Hyps = list[list[dict]]


def quiet_fairseq() -> None:
    """fairseq imported with its INFO lines off (a missing tensorboardX, config dumps), as the validator imports
    it, and torch's warning about TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD (set above for fairseq's own loads of the
    checkpoints this script builds) not repeated by every process."""
    from modelport.validators.references import prepare_fairseq

    warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    prepare_fairseq()


def build_source(args: argparse.Namespace, tmp: Path) -> Path:
    """The fairseq checkpoint directory the benchmark runs on."""
    from fairseq_ref import build_base_model, build_big_model, build_fairseq_model

    if args.big:
        print("building a random transformer-big fairseq model ...", file=sys.stderr)
        return build_big_model(tmp / "fairseq-big").parent
    if args.base:
        print("building a random transformer-base fairseq model ...", file=sys.stderr)
        return build_base_model(tmp / "fairseq-base")
    src_dir = Path(args.source)
    if not (src_dir / "model.pt").exists():
        print(f"{src_dir} missing; using a random tiny model", file=sys.stderr)
        src_dir = tmp / "fairseq"
        build_fairseq_model(src_dir, seed=3)
    return src_dir


ROUNDS = 3
PEAK: tuple = ()  # (GEMM FLOP/s, config, sources, beam) once measured; report() prints the fraction
INT8_PEAK = 0.0  # the int8 products' best rate (OP/s), once measured; report() gives int8 rows that fraction


SETTLE_SECONDS = 0.3  # after each timed pass, so that no system's idle threads still spin in the next one's

# one pass of a system: (its output, the seconds of its timed part)
Pass = Callable[[], tuple[Any, float]]


@dataclass
class Timed:
    """A system's passes in :func:`interleaved`: its output, its best time and every timed pass's
    seconds in round order."""
    out: Any
    best: float
    rounds: list[float]


def paired_ratio(timed: Timed, base: Timed) -> str:
    """The time ratio to ``base`` round by round (each pass against the base's pass of the
    same round, run seconds apart, so a drift between rounds cancels out of it): median and range;
    empty for a single round."""
    if len(timed.rounds) < 2:
        return ""
    ratios = sorted(a / b for a, b in zip(timed.rounds, base.rounds))
    return f" (round by round: median {statistics.median(ratios):.2f}x, {ratios[0]:.2f}-{ratios[-1]:.2f}x)"


def interleaved(systems: dict[str, Pass]) -> dict[str, Timed]:
    """Each system's output and its ``ROUNDS`` timed passes, the systems
    taking turns round by round (A B C, A B C, ...) after one untimed warm-up
    pass each: the machine's speed drifts during a run (by a third between
    minutes on this one), and in turns a drift touches every system alike, so
    the ratios of one run hold."""
    for run in systems.values():
        if not getattr(run, "warms_itself", False):
            run()
    rounds: dict[str, list[float]] = {name: [] for name in systems}
    outs: dict[str, Any] = {}
    for _ in range(ROUNDS):
        for name, run in systems.items():
            outs[name], seconds = run()
            rounds[name].append(seconds)
            time.sleep(SETTLE_SECONDS)
    return {name: Timed(outs[name], min(rounds[name]), rounds[name]) for name in systems}


def timing(fn: Callable[[], Any]) -> Pass:
    """A pass timed whole."""
    def run() -> tuple[Any, float]:
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start
    return run


def ct2_pass(load: Callable[[], Any], fn: Callable[[Any], Any], warm: Callable[[Any], Any]) -> Pass:
    """A CTranslate2 pass: the translator loaded and warmed up (``warm``: its
    first batch) before the timing, and deleted after it. A live
    ``ctranslate2.Translator`` slows torch in the same process (measured:
    modelport int8 at transformer-base 1.4 s -> 1.8-2.0 s per batch while one
    exists, 1.4 s again once it is deleted), so none outlives its pass."""
    def run() -> tuple[Any, float]:
        translator = load()
        warm(translator)
        start = time.perf_counter()
        out = fn(translator)
        seconds = time.perf_counter() - start
        del translator
        gc.collect()
        return out, seconds
    return run


def over_batches(batches: list[list[int]], srcs: list[list[int]], fn: Callable[..., Hyps],
                 widths: list[tuple[int, ...]] | None = None) -> Callable[[], dict[int, list[int]]]:
    """One pass of ``fn`` over every batch: first-best tokens per line; with
    ``widths``, ``fn`` is also given each line's own batch width per batch."""
    def run() -> dict[int, list[int]]:
        out = {}
        for n, b in enumerate(batches):
            rows = [srcs[i] for i in b]
            for i, h in zip(b, fn(rows) if widths is None else fn(rows, widths[n])):
                out[i] = h[0]["tokens"]
        return out
    return run


def over_groups(batches: list[list[int]], srcs: list[list[int]], max_lines: int,
                fn: Callable[[list[list[int]], tuple[int, ...]], Hyps]) -> Callable[[], dict[int, list[int]]]:
    """:func:`over_batches` over consecutive ``batches`` joined as ``translate`` joins
    them, at most ``max_lines`` lines a search, ``fn`` given each line's own batch width."""
    from modelport.generation.groups import decode_groups

    groups, widths = decode_groups(batches, [len(s) for s in srcs], max_lines)
    return over_batches(groups, srcs, fn, widths)


def search_flops(cfg, srcs: list[list[int]], out: dict[int, list[int]], beam: int) -> float:
    """Multiply-add FLOPs (2 per MAC) a KV-cached beam search needs to produce
    ``out`` (first-best token lists) from ``srcs``: encoder, cross-attention
    keys/values once per source, and per step and hypothesis the decoder
    layers, attention scores over the prefix and source, and the output
    projection."""
    d, total = cfg.d_model, 0
    for i, toks in out.items():
        s, steps = len(srcs[i]), len(toks)
        total += s * cfg.encoder_layers * (4 * d * d + 2 * d * cfg.encoder_ffn_dim + 2 * d * s)
        total += s * cfg.decoder_layers * 2 * d * d
        for t in range(1, steps + 1):
            per_layer = 4 * d * d + 2 * d * d + 2 * d * cfg.decoder_ffn_dim + 2 * d * t + 2 * d * s
            total += beam * (cfg.decoder_layers * per_layer + d * cfg.target_vocab_size)
    return 2.0 * total


def decoding_shapes(cfg, rows: int, src_rows: int) -> list[tuple[int, int, int]]:
    """(rows, inputs, outputs) of the products decoding and encoding run."""
    d = cfg.d_model
    return [(rows, d, cfg.decoder_ffn_dim), (rows, cfg.decoder_ffn_dim, d), (rows, d, cfg.target_vocab_size),
            (src_rows, d, cfg.encoder_ffn_dim), (src_rows, d, 3 * d)]


def best_rate(products: dict[str, tuple[int, int, int, Callable[[], Any]]], seconds: float) -> tuple[float, str]:
    """The highest rate (multiply-adds x 2 per second) among ``products`` (name ->
    rows, inputs, outputs and the product to call), each run for ``seconds``
    after three untimed calls, and the name that gave it."""
    best, where = 0.0, ""
    with torch.inference_mode():
        for name, (m, k, n, product) in products.items():
            for _ in range(3):
                product()
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                product()
                calls += 1
            rate = 2.0 * m * k * n * calls / elapsed
            if rate > best:
                best, where = rate, name
    return best, where


def int8_peak(cfg, rows: int, src_rows: int, seconds: float = 0.5) -> tuple[float, str]:
    """The best rate (OP/s) of the int8 product the port's int8 layers run
    (torch's dynamic int8 linear layer, activations quantized per call, levels
    as ``modelport.model.quantized.full_range_int8`` says) over the same shapes
    as :func:`gemm_peak`, and the shape that gave it."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from modelport.model.quantized import FullRangeLinear, full_range_int8

    products = {}
    for m, k, n in decoding_shapes(cfg, rows, src_rows):
        with warnings.catch_warnings():  # torch's deprecation notices of its eager quantization
            warnings.simplefilter("ignore")
            layer = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(k, n)), {"0": per_channel_dynamic_qconfig},
                                     dtype=torch.qint8)[0]
        if full_range_int8():
            layer.__class__ = FullRangeLinear
        a = torch.randn(m, k)
        products[f"{m}x{k} @ {k}x{n}"] = (m, k, n, lambda layer=layer, a=a: layer(a))
    return best_rate(products, seconds)


def gemm_peak(cfg, rows: int, src_rows: int, seconds: float = 0.5) -> tuple[float, str]:
    """The best fp32 rate (FLOP/s) over the shapes decoding multiplies, with the
    threads torch has now, of torch's ``matmul`` (MKL) and of the oneDNN product
    on a prepacked weight that the port runs (``modelport.model.gemm.linear``),
    and the shape and library that gave it."""
    from modelport.model.gemm import linear, onednn_applies

    products = {}
    for m, k, n in decoding_shapes(cfg, rows, src_rows):
        a, weight = torch.randn(m, k), torch.randn(n, k)  # made outside inference mode: the port's weights are not
        b = weight.t().contiguous()
        products[f"{m}x{k} @ {k}x{n}, torch"] = (m, k, n, lambda a=a, b=b: a @ b)
        if onednn_applies(a, weight):
            products[f"{m}x{k} @ {k}x{n}, oneDNN"] = (m, k, n, lambda a=a, weight=weight: linear(a, weight))
    return best_rate(products, seconds)


def report(name: str, timed: Timed, base: Timed | None, base_name: str = "modelport", int8: bool = False) -> float:
    out, seconds = timed.out, timed.best
    ntok = sum(len(t) for t in out.values())
    line = f"{name:<34} {ntok / seconds:9.1f} tok/s"
    if PEAK:
        flops = search_flops(PEAK[1], PEAK[2], out, PEAK[3])
        if int8 and INT8_PEAK:  # every multiply-add at the int8 rate (the attention's few are fp32)
            line += f"   {100 * flops / seconds / INT8_PEAK:4.1f}% of int8 peak"
        elif not int8:
            line += f"   {100 * flops / seconds / PEAK[0]:4.1f}% of GEMM peak"
    if base is not None:
        ours = base.out
        same = sum(ours[i] == out[i] for i in ours) / len(ours)
        line += (f"   {base_name} speed {seconds / base.best:5.2f}x{paired_ratio(timed, base)}   "
                 f"identical first-best {same:.0%}")
    print(line, flush=True)
    return ntok / seconds


MARIAN_BASE_VOCAB = 32000
MARIAN_BASE_PIECES = 1500  # learned pieces asked for; the corpus allows ~1.1k (en) / ~1.3k (de)
MARIAN_BASE = {"type": "transformer", "enc-depth": 6, "dec-depth": 6, "dim-emb": 512, "transformer-heads": 8,
               "transformer-dim-ffn": 2048, "transformer-ffn-activation": "relu", "tied-embeddings": True,
               "max-length": 256}


def build_marian_base(tmp: Path) -> Path:
    """A Marian model directory (npz, source.spm, target.spm, decoder.yml) of
    transformer-base proportions, trained by ``pymarian train`` for one update
    on the first 64 corpus pairs; each vocabulary is the unigram pieces the
    corpus allows (at most ``MARIAN_BASE_PIECES``) plus fillers up to ``MARIAN_BASE_VOCAB`` symbols."""
    from make_pymarian_fixtures import CORPUS, marian_train, spm_model, write_decoder_yml

    d = tmp / "marian-base"
    d.mkdir(parents=True)
    started = time.perf_counter()
    vocabs, files = [], []
    for side, name in (("en", "source"), ("de", "target")):
        lines = (CORPUS / f"train.{side}").read_text(encoding="utf-8").splitlines()
        fillers = tuple(f"<fill{side}{i}>" for i in range(MARIAN_BASE_VOCAB - MARIAN_BASE_PIECES))
        vocabs.append(spm_model(d / name, lines, MARIAN_BASE_VOCAB, fillers, hard_limit=False))
        files.append(tmp / f"train.{side}")
        files[-1].write_text("\n".join(lines[:64]) + "\n", encoding="utf-8")
    marian_train(d, MARIAN_BASE, files, vocabs, "model.npz", [], seed=1, updates=1)
    write_decoder_yml(d, ["model.npz"], [v.name for v in vocabs])
    sizes = [sentencepiece_size(v) for v in vocabs]
    print(f"built a transformer-base Marian model ({sizes[0]}/{sizes[1]} pieces) in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return d


def sentencepiece_size(path: Path) -> int:
    """The number of pieces of a SentencePiece model."""
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(path)).get_piece_size()


def uncached(tokenizer: Any) -> None:
    """Empty a Marian tokenizer's caches (its lines, and the word paths of Marian's
    own segmentation, which runs in Python here), so that a timed round encodes its
    lines as a fresh process would, and as pymarian's does."""
    tokenizer.clear_cache()


def procs_worker(spec_path: Path) -> None:
    """One process of a :class:`TorchrunPass`, started by torchrun: the port loaded and
    its share translated once untimed, then the sharded translation of all lines
    timed between two barriers; rank 0 writes the outputs and the time to the spec's ``out``."""
    import modelport
    from modelport.generation.shards import barrier, sharded_map, translate_chunk_lines, world
    from modelport.generation.translate import translate

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    where = world()
    ported = modelport.load(spec["ported"])
    lines, options = spec["lines"], spec["options"]
    chunk_lines = translate_chunk_lines(ported, options)  # whole Marian pools, as `translate` under torchrun

    def work(chunk: list[str], first: int, part: tuple[int, int]) -> list[str | None]:
        uncached(ported.tokenizer)
        return [hyps[0].text if hyps else None for hyps in translate(ported, chunk, part=part, **options)]

    def run() -> list[str]:
        return [text for chunk in sharded_map(lines, work, chunk_lines=chunk_lines, where=where, share=True)
                for text in chunk]

    run()  # warm-up
    barrier(where)
    start = time.perf_counter()
    out = run()
    barrier(where)
    seconds = time.perf_counter() - start
    if where.is_main:
        Path(spec["out"]).write_text(json.dumps({"outputs": out, "seconds": seconds}), encoding="utf-8")


class TorchrunPass:
    """The ``--procs`` row's pass: this script under torchrun with ``procs`` processes of
    one thread each (:func:`procs_worker`), fresh for every pass as an :class:`IsolatedPass`
    is, so that it takes its turn in :func:`interleaved` with the in-process rows and the
    machine's drift touches it alike; rank 0's outputs and time."""

    warms_itself = True  # interleaved() gives it no untimed pass of its own

    def __init__(self, procs: int, ported_dir: Path, lines: list[str], options: dict[str, Any], tmp: Path) -> None:
        self.procs, self.spec, self.out = procs, tmp / "procs-spec.json", tmp / "procs-out.json"
        self.spec.write_text(json.dumps({"ported": str(ported_dir), "lines": lines, "options": options,
                                         "out": str(self.out)}), encoding="utf-8")

    def __call__(self) -> tuple[list[str], float]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                              str(self.procs), str(Path(__file__).resolve()), "--procs-worker", str(self.spec)],
                             env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"the --procs run failed ({run.returncode}):\n{run.stderr[-3000:]}")
        result = json.loads(self.out.read_text(encoding="utf-8"))
        return result["outputs"], result["seconds"]


MARIAN_CT2 = "ctranslate2 float32 (export ct2)"


@dataclass
class MarianCt2:
    """CTranslate2 on a Marian port's ``export ct2`` folder, given Marian's batches
    and each batch's length cap (max-length-factor times its padded width,
    ``</s>`` included), so that an output running to the cap has Marian's length;
    decoded with the target SentencePiece model."""

    ct2_dir: str
    target_spm: str
    pieces: list[list[str]]
    batches: list[list[int]]
    beam: int
    threads: int
    max_length_factor: float = 3.0

    def to_json(self) -> str:
        return json.dumps(vars(self))

    @classmethod
    def from_json(cls, text: str) -> "MarianCt2":
        return cls(**json.loads(text))

    def system(self) -> Pass:
        import ctranslate2
        import sentencepiece

        target = sentencepiece.SentencePieceProcessor(model_file=self.target_spm)

        def run(translator: Any, which: list[list[int]] | None = None) -> list[str]:
            out = [""] * len(self.pieces)
            for batch in self.batches if which is None else which:
                cap = math.ceil(self.max_length_factor * max(len(self.pieces[i]) + 1 for i in batch))
                res = translator.translate_batch([self.pieces[i] for i in batch], beam_size=self.beam,
                                                 length_penalty=0.6, max_decoding_length=cap)
                for i, r in zip(batch, res):
                    out[i] = target.decode(r.hypotheses[0])
            return out

        return ct2_pass(lambda: ctranslate2.Translator(self.ct2_dir, device="cpu", inter_threads=1,
                                                       intra_threads=self.threads),
                        run, lambda t: run(t, self.batches[:1]))


def bench_marian(args: argparse.Namespace, tmp: Path) -> None:
    """modelport (marian semantics; also on its ONNX export and, with ``--procs``, under torchrun) vs pymarian
    vs CTranslate2 on one Marian model, in this process (CTranslate2: each pass in a process of its own, see
    :class:`IsolatedPass`; the port, the CTranslate2 export and a ``--base`` model are written under ``tmp``)."""
    import pymarian
    import sentencepiece
    import yaml

    import modelport
    from modelport.errors import InvalidInputError
    from modelport.exporters.ct2 import export_ct2
    from modelport.exporters.onnx import export_onnx
    from modelport.generation.marian_batching import marian_batches
    from modelport.generation.shards import pool_chunk_lines
    from modelport.runtimes.onnx import load_onnx
    from modelport.generation.translate import translate

    model_dir = build_marian_base(tmp) if args.base else Path(args.marian)
    decoder = yaml.safe_load((model_dir / "decoder.yml").read_text(encoding="utf-8"))
    started = time.perf_counter()
    ported = modelport.convert(str(model_dir), tmp / "ported")
    pool = args.batch_size * args.maxi_batch
    default_lines = 200 if args.corpus == "test" else pool * max(2, args.procs)
    corpus = ROOT / "assets" / "corpus" / f"{args.corpus}.en"
    lines = corpus.read_text(encoding="utf-8").splitlines()[:args.lines or default_lines]
    vocabs = [str(model_dir / v) for v in decoder["vocabs"]]
    target_spm = sentencepiece.SentencePieceProcessor(model_file=vocabs[-1])
    batching = {"mini_batch": args.batch_size, "maxi_batch": args.maxi_batch, "maxi_batch_sort": "src"}
    factor = args.max_length_factor
    print(f"{model_dir.name}: {len(lines)} lines of {args.corpus}.en, beam {args.beam}, normalize 0.6, "
          f"max-length-factor {factor:g}, mini-batch "
          f"{args.batch_size}, maxi-batch {args.maxi_batch} (pools of {pool} lines), {args.threads} threads; every "
          "row decodes these lines with this batching", flush=True)
    if args.procs:
        chunk = pool_chunk_lines(pool)
        chunks = math.ceil(len(lines) / chunk)
        print(f"--procs {args.procs}: {args.procs} torchrun processes x 1 thread share {chunks} chunk(s) of whole "
              f"pools ({chunk} lines)" + ("" if chunks % args.procs == 0 else
                                          "; a round of fewer chunks than processes shares them, each process "
                                          "decoding a part of a chunk's batches"), flush=True)

    def ours(model: Any = ported) -> list[str]:
        uncached(model.tokenizer)
        return [h[0]["text"] for h in translate(model, lines, semantics="marian", beam_size=args.beam,
                                                 normalize=0.6, max_length_factor=factor, **batching)]

    marian = pymarian.Translator(models=str(model_dir / decoder["models"][0]), vocabs=vocabs, beam_size=args.beam,
                                 normalize=0.6, max_length_factor=factor, cpu_threads=args.threads,
                                 mini_batch=args.batch_size, maxi_batch=args.maxi_batch, maxi_batch_sort="src",
                                 quiet=True)
    ct2: Pass | None = None
    onnx = None
    try:
        if "ctranslate2" not in args.skip:
            export_ct2(ported.path, tmp / "ct2")
            source_spm = sentencepiece.SentencePieceProcessor(model_file=vocabs[0])
            pieces = [source_spm.encode(x, out_type=str) for x in lines]
            # Marian's batches (each batch's length cap follows from them, see MarianCt2)
            spec = tmp / "isolate.json"
            spec.write_text(MarianCt2(str(tmp / "ct2"), vocabs[-1], pieces,
                                      marian_batches([len(x) + 1 for x in pieces], **batching), args.beam,
                                      args.threads, factor).to_json(), encoding="utf-8")
            ct2 = IsolatedPass(spec, MARIAN_CT2)  # in a process of its own: see IsolatedPass
    except InvalidInputError as e:  # SSRU decoders: CTranslate2 has no such layer
        print(f"ctranslate2: not run ({e})", flush=True)
    try:  # the port's ONNX export under modelport's own Marian search
        if "onnx" not in args.skip:
            export_onnx(ported.path, tmp / "onnx", verify=False)
            onnx = load_onnx(tmp / "onnx", threads=args.threads)
    except InvalidInputError as e:  # a folder the ONNX exporter refuses
        print(f"onnxruntime: not run ({e})", flush=True)
    print(f"converted, loaded into pymarian and exported to ct2 and onnx in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)

    systems: dict[str, Pass] = {"modelport (marian semantics)": timing(ours),
                                "pymarian (Marian 1.12)": timing(lambda: marian.translate(lines))}
    if ct2 is not None:
        systems[MARIAN_CT2] = ct2
    if onnx is not None:
        systems["onnxruntime (export onnx)"] = timing(lambda: ours(onnx))
    if args.procs:
        options = {"semantics": "marian", "beam_size": args.beam, "normalize": 0.6, "max_length_factor": factor,
                   **batching}
        systems[f"modelport, {args.procs} torchrun processes x 1 thread"] = TorchrunPass(args.procs, ported.path,
                                                                                         lines, options, tmp)
    results = interleaved(systems)
    reference = results["pymarian (Marian 1.12)"]
    for name, timed in results.items():
        out, seconds = timed.out, timed.best
        tokens = sum(len(target_spm.encode(x)) + 1 for x in out)
        same = sum(a == b for a, b in zip(out, reference.out)) / len(out)
        paired = "" if timed is reference else paired_ratio(timed, reference)
        print(f"{name:<43} {tokens / seconds:9.1f} tok/s   {seconds / reference.best:5.2f}x pymarian's time"
              f"{paired}   identical to pymarian {same:.0%}", flush=True)
    if args.procs:  # the sharded translation must be the single process's, line for line
        one, many = (results[k].out for k in ("modelport (marian semantics)",
                                              f"modelport, {args.procs} torchrun processes x 1 thread"))
        if many != one:
            print(f"warning: the {args.procs} processes' outputs differ from one process's on "
                  f"{sum(a != b for a, b in zip(one, many))} lines", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", default=str(ROOT / "assets" / "default-model"))
    ap.add_argument("--base", action="store_true",
                    help="a transformer-base-sized model: random fairseq with fixed output lengths, or with --marian "
                         "one built by pymarian train (see above)")
    ap.add_argument("--big", action="store_true",
                    help="a random transformer-big-sized fairseq model (6+6, d 1024, FFN 4096, 16 heads, 32k shared "
                         "vocabulary), fixed output lengths as --base")
    ap.add_argument("--length", type=int, default=30, help="output length with --base/--big")
    ap.add_argument("--lines", type=int, default=None,
                    help="default: 200 lines of --corpus for a trained checkpoint (test.en: all of it), 64 random-id "
                         "lines with --base/--big, 256 for a random tiny model; with --marian 200 (with --corpus "
                         "train max(2, --procs) pools)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16, help="sentences per batch (--marian: mini-batch)")
    ap.add_argument("--maxi-batch", type=int, default=100, help="--marian: mini-batches per pool (maxi-batch)")
    ap.add_argument("--max-length-factor", type=positive_float, default=3.0,
                    help="--marian: the output length cap, this times a batch's padded source width (Marian's "
                         "max-length-factor; 0.05 leaves the per-translation costs without the decoding)")
    ap.add_argument("--corpus", choices=("test", "train"), default="test",
                    help="the lines a trained model translates (the default model, --marian): "
                         "assets/corpus/test.en (200) or train.en")
    ap.add_argument("--procs", type=int, default=0,
                    help="--marian: also modelport as N torchrun processes x 1 thread (see above)")
    ap.add_argument("--procs-worker", type=Path, help=argparse.SUPPRESS)  # one process of the --procs row
    ap.add_argument("--in-process", action="store_true",
                    help="fairseq-family rows: set up and time every system in this process (faster to run, but "
                         "CTranslate2 at 2+ threads is slowed there; see above) instead of each pass in a fresh "
                         "process")
    ap.add_argument("--isolate-worker", nargs=3, help=argparse.SUPPRESS)  # one pass of --isolate: SPEC NAME OUT
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes per system; the best counts")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["fairseq", "ctranslate2", "transformers", "onnx", "int8", "per-batch"])
    default_marian = str(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied")
    ap.add_argument("--marian", nargs="?", const=default_marian,
                    help="a Marian model directory: modelport vs pymarian vs CTranslate2 (see above; default "
                         "tests/data/marian-trained/post_sep_tied)")
    args = ap.parse_args()
    if args.procs_worker is not None:
        return procs_worker(args.procs_worker)
    if args.isolate_worker is not None:
        spec, name, result = args.isolate_worker
        return isolate_worker(Path(spec), name, Path(result))
    args.base = args.base or args.big  # the same fixed-length protocol
    if args.base and not args.marian and "transformers" not in args.skip:
        # FSMTTokenizer always applies BPE merges; the random base/big models have none, so export hf refuses them
        print("--base/--big: transformers skipped (the random model has no BPE, which FSMT needs)", file=sys.stderr)
        args.skip.append("transformers")
    if args.marian and args.big:
        ap.error("--big is a fairseq model: not with --marian")
    if args.marian and args.in_process:
        ap.error("--in-process is for the fairseq-family rows: with --marian only CTranslate2 runs apart")
    if args.marian and args.base and args.marian != default_marian:
        ap.error("--marian --base builds its own model: give no MARIAN_DIR with --base")
    torch.set_num_threads(args.threads)
    global ROUNDS
    ROUNDS = args.rounds
    if args.marian:
        with tempfile.TemporaryDirectory(prefix="bench-marian-") as tmp:
            return bench_marian(args, Path(tmp))
    with tempfile.TemporaryDirectory(prefix="bench-translate-") as tmp:
        bench_fairseq(args, Path(tmp))


def bench_fairseq(args: argparse.Namespace, tmp: Path) -> None:
    """The fairseq-family rows (the embedded model, ``--base``, ``--big``): every
    system set up and timed in turns in this process, or with ``--isolate`` each
    pass in a process of its own (the files every system loads are written under ``tmp``)."""
    import modelport
    from modelport.generation import make_batches
    from modelport.generation.translate import search_group_lines

    quiet_fairseq()
    src_dir = build_source(args, tmp)
    ported = modelport.convert(str(src_dir), tmp / "ported")
    tok_cfg = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text())
    langs = (tok_cfg.get("source_lang") or "en", tok_cfg.get("target_lang") or "de")
    trained = not (args.base or args.big) and src_dir == Path(args.source)
    if trained:  # a real checkpoint: real text, so that its outputs stop where the model stops them
        corpus = ROOT / "assets" / "corpus" / f"{args.corpus}.en"
        text = corpus.read_text(encoding="utf-8").splitlines()[:args.lines or 200]
        srcs = ported.tokenizer.encode_batch(text)
        source_note = f"{len(srcs)} lines of {corpus.name} (the port's tokenizer)"
    else:  # random weights: random ids (--base/--big fix the output lengths)
        g = torch.Generator().manual_seed(0)
        vocab = ported.config.source_vocab_size
        srcs = [torch.randint(4, vocab, (int(k),), generator=g).tolist() + [2]
                for k in torch.randint(5, 30, (args.lines or (64 if args.base else 256),), generator=g)]
        source_note = f"{len(srcs)} lines of random ids"
    batches = make_batches([len(s) for s in srcs], args.batch_size)
    if args.base:
        opts = {"beam": args.beam, "max_len_a": 0, "max_len_b": args.length, "min_len": args.length}
    else:
        opts = {"beam": args.beam, "max_len_a": 1.2, "max_len_b": 10}
    print(f"{source_note}, batch size {args.batch_size}, beam {args.beam}, {args.threads} threads, "
          f"options {opts}" + (", all in this process (--in-process)" if args.in_process else
                                ", each pass in a process of its own"), flush=True)
    global PEAK, INT8_PEAK
    peak, shape = gemm_peak(ported.config, args.beam * args.batch_size,
                            args.batch_size * max(len(s) for s in srcs))
    PEAK = (peak, ported.config, srcs, args.beam)
    print(f"fp32 GEMM peak at decoding shapes, {args.threads} threads: {peak / 1e9:.1f} GFLOP/s ({shape})",
          flush=True)
    if "int8" not in args.skip:
        INT8_PEAK, shape = int8_peak(ported.config, args.beam * args.batch_size,
                                     args.batch_size * max(len(s) for s in srcs))
        print(f"int8 product peak at the same shapes (torch's dynamic int8 layer): {INT8_PEAK / 1e9:.1f} GOP/s "
              f"({shape})", flush=True)

    setup = Setup(args.beam, args.length if args.base else None, args.threads, tmp, src_dir, langs, srcs, batches,
                  opts, search_group_lines(ported.config, args.beam), ported)
    rows = system_rows(args.skip)
    prepare(setup, {name for name, _ in rows})
    if args.in_process:
        results = interleaved({name: make_system(setup, name) for name, _ in rows})
    else:
        spec = tmp / "isolate.json"
        spec.write_text(setup.to_json(), encoding="utf-8")
        results = interleaved({name: IsolatedPass(spec, name, int) for name, _ in rows})
    for name, base in rows:
        report(name, results[name], None if base is None else results[base],
               "modelport int8" if base == INT8 else "modelport", int8="int8" in name)


# the systems of the fairseq-family rows
OURS, OURS_HF, ONNX, INT8 = ("modelport (fairseq semantics)", "modelport (hf semantics)",
                             "onnxruntime fp32 (export onnx)", "modelport int8 (quantize)")
OURS_PER_BATCH = "modelport, one search per batch"
FAIRSEQ, FSMT, CT2_FP32, CT2_INT8 = ("fairseq SequenceGenerator", "transformers FSMT generate",
                                     "ctranslate2 float32", "ctranslate2 int8")


def system_rows(skip: list[str]) -> list[tuple[str, str | None]]:
    """The systems not skipped, in the order they take turns, each with the row its
    outputs and speed are compared with (None: a baseline)."""
    rows: list[tuple[str, str | None]] = [(OURS, None)]
    if "per-batch" not in skip:
        rows.append((OURS_PER_BATCH, OURS))
    if "onnx" not in skip:  # the same search on onnxruntime: the export's three graphs, KV cache
        rows.append((ONNX, OURS))
    if "int8" not in skip:
        rows.append((INT8, OURS))
    if "fairseq" not in skip:
        rows.append((FAIRSEQ, OURS))
    if "transformers" not in skip:
        rows += [(OURS_HF, None), (FSMT, OURS_HF)]
    if "ctranslate2" not in skip:
        rows.append((CT2_FP32, OURS))
        if "int8" not in skip:
            rows.append((CT2_INT8, INT8))
    return rows


@dataclass
class Setup:
    """What the systems of one fairseq-family run share: the decoding settings, the
    sources and batches, and the directory with the files they load; ``ported``
    is the converted port (None in an ``--isolate`` worker, which loads it)."""

    beam: int
    length: int | None  # --base/--big: every output exactly this long
    threads: int
    tmp: Path
    src_dir: Path
    langs: tuple[str, str]
    srcs: list[list[int]]
    batches: list[list[int]]
    opts: dict[str, Any]
    group_lines: int  # lines a search decodes together, as translate groups them (over_groups)
    ported: Any = None

    def port(self) -> Any:
        if self.ported is None:
            import modelport

            self.ported = modelport.load(self.tmp / "ported")
        return self.ported

    def to_json(self) -> str:
        fields = {k: v for k, v in vars(self).items() if k != "ported"}
        return json.dumps({**fields, "tmp": str(self.tmp), "src_dir": str(self.src_dir.resolve())})

    @classmethod
    def from_json(cls, text: str) -> "Setup":
        d = json.loads(text)
        return cls(**{**d, "tmp": Path(d["tmp"]), "src_dir": Path(d["src_dir"]), "langs": tuple(d["langs"])})


def prepare(setup: Setup, names: set[str]) -> None:
    """The files the systems in ``names`` load, written once: the ONNX export, the
    int8 folder, the CTranslate2 conversion and transformers' FSMT folder."""
    ported = setup.port()
    if ONNX in names:
        from modelport.exporters.onnx import export_onnx

        export_onnx(ported.path, setup.tmp / "onnx", verify=False)
    if INT8 in names:
        from modelport.passes.quantize import quantize

        quantize(ported.path, setup.tmp / "int8", mode="int8")
    if FSMT in names:  # written by `modelport export hf` (whose verification the export tests cover; skipped here)
        from modelport.exporters.hf import export_hf

        export_hf(ported.path, setup.tmp / "fsmt", verify=False, card=False)
    if CT2_FP32 in names or CT2_INT8 in names:
        subprocess.run([str(Path(sys.executable).parent / "ct2-fairseq-converter"), "--model_path",
                        str(setup.src_dir / "model.pt"), "--data_dir", str(setup.src_dir), "--output_dir",
                        str(setup.tmp / "ct2"), "--source_lang", setup.langs[0], "--target_lang", setup.langs[1],
                        "--unsafe_deserialization"], check=True, capture_output=True)


def make_system(setup: Setup, name: str) -> Pass:
    """System ``name`` loaded (from the files :func:`prepare` wrote) and its timed pass over every batch."""
    import modelport
    from modelport.generation import generate

    batches, srcs, opts = setup.batches, setup.srcs, setup.opts
    group = setup.group_lines
    if name in (OURS, OURS_PER_BATCH):
        models = setup.port().models
        if name == OURS_PER_BATCH:
            return timing(over_batches(batches, srcs, lambda b: generate(models, b, **opts)))
        return timing(over_groups(batches, srcs, group, lambda b, w: generate(models, b, batch_widths=w, **opts)))
    if name == ONNX:
        from modelport.runtimes.onnx import load_onnx

        runtime = load_onnx(setup.tmp / "onnx", threads=setup.threads).runtime
        return timing(over_groups(batches, srcs, group, lambda b, w: generate(runtime, b, batch_widths=w, **opts)))
    if name == INT8:
        int8 = modelport.load(setup.tmp / "int8")
        return timing(over_groups(batches, srcs, group,
                                  lambda b, w: generate(int8.models, b, batch_widths=w, **opts)))
    if name == FAIRSEQ:
        from modelport.validators.references.fairseq_generator import FairseqReference

        ref = FairseqReference(str(setup.src_dir), *setup.langs)
        return timing(over_batches(batches, srcs, lambda b: ref.generate(b, **dict(opts))))
    if name in (OURS_HF, FSMT):
        if setup.length is None:
            hf_opts = {"num_beams": setup.beam, "max_new_tokens": 40}
        else:  # the start token counts as a new token in transformers
            hf_opts = {"num_beams": setup.beam, "min_new_tokens": setup.length + 1,
                       "max_new_tokens": setup.length + 1}
        if name == OURS_HF:
            models = setup.port().models
            return timing(over_groups(batches, srcs, group, lambda b, _: generate(  # no cap depends on a batch
                models, b, semantics="hf", forced_eos_token_id=2, early_stopping=False, **hf_opts)))
        return timing(over_batches(batches, srcs, fsmt_generate(setup, hf_opts)))
    if name in (CT2_FP32, CT2_INT8):
        return ct2_system(setup, "float32" if name == CT2_FP32 else "int8")
    raise ValueError(f"unknown system {name!r}")


def fsmt_generate(setup: Setup, hf_opts: dict[str, Any]) -> Callable[[list[list[int]]], Hyps]:
    """transformers' FSMT (the folder :func:`prepare` exported) generating one batch."""
    import transformers

    transformers.logging.set_verbosity_error()  # FSMT's config also sets max_length: a warning per call
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(setup.tmp / "fsmt").eval()
    pad = setup.port().config.pad_token_id

    def run(batch: list[list[int]]) -> Hyps:
        width = max(len(s) for s in batch)
        src = torch.tensor([s + [pad] * (width - len(s)) for s in batch])
        with torch.inference_mode():
            seqs = hf.generate(input_ids=src, attention_mask=src.ne(pad), do_sample=False,
                               early_stopping=False, **hf_opts).tolist()
        return [[{"tokens": [t for t in s[1:] if t != pad]}] for s in seqs]
    return run


def ct2_system(setup: Setup, compute: str) -> Pass:
    """CTranslate2 on the converted folder at ``compute`` (see :func:`ct2_pass`)."""
    import ctranslate2
    from fairseq.data import Dictionary

    src_dict = Dictionary.load(str(setup.src_dir / f"dict.{setup.langs[0]}.txt"))
    tgt_dict = Dictionary.load(str(setup.src_dir / f"dict.{setup.langs[1]}.txt"))
    lengths = {} if setup.length is None else {"min_decoding_length": setup.length,
                                               "max_decoding_length": setup.length}

    def translate_batches(translator: Any, which: list[list[int]] = setup.batches) -> dict[int, list[int]]:
        def run(batch: list[list[int]]) -> Hyps:
            toks = [[src_dict[i] for i in s[:-1]] for s in batch]  # CTranslate2 appends </s> itself
            width = lengths or {"max_decoding_length": int(1.2 * max(len(s) for s in batch)) + 10}
            res = translator.translate_batch(toks, beam_size=setup.beam, length_penalty=1.0, **width)
            return [[{"tokens": [tgt_dict.index(t) for t in r.hypotheses[0]] + [2]}] for r in res]
        return over_batches(which, setup.srcs, run)()

    return ct2_pass(lambda: ctranslate2.Translator(str(setup.tmp / "ct2"), device="cpu", inter_threads=1,
                                                   intra_threads=setup.threads, compute_type=compute),
                    translate_batches, lambda t: translate_batches(t, setup.batches[:1]))


class IsolatedPass:
    """A pass run in a fresh process (this script with ``--isolate-worker``), which
    sets the system up from ``spec``, runs one untimed pass and then the timed one:
    no system shares its process (OpenMP threads, allocator) with another's. Why:
    CTranslate2 bundles its own GNU OpenMP; once torch has run a parallel op with 2
    threads in the same process, CTranslate2 at 2 threads decodes 4-5x slower
    (embedded model: 1,290 against 7,154 tok/s alone; either one at 1 thread: no effect)."""

    warms_itself = True  # interleaved() gives it no untimed pass of its own

    def __init__(self, spec: Path, name: str, keys: Callable[[str], Any] = str) -> None:
        self.spec, self.name, self.keys = spec, name, keys

    def __call__(self) -> tuple[Any, float]:
        result = self.spec.with_name("isolate-result.json")
        subprocess.run([sys.executable, __file__, "--isolate-worker", str(self.spec), self.name, str(result)],
                       check=True)
        got = json.loads(result.read_text(encoding="utf-8"))
        out = got["out"]
        return ({self.keys(k): v for k, v in out.items()} if isinstance(out, dict) else out), got["seconds"]


def isolate_worker(spec: Path, name: str, result: Path) -> None:
    """One :class:`IsolatedPass`: system ``name`` set up from ``spec``, one untimed
    pass, one timed pass; its outputs and seconds written to ``result``."""
    text = spec.read_text(encoding="utf-8")
    if name == MARIAN_CT2:
        marian = MarianCt2.from_json(text)
        torch.set_num_threads(marian.threads)
        run = marian.system()
    else:
        quiet_fairseq()
        setup = Setup.from_json(text)
        torch.set_num_threads(setup.threads)
        run = make_system(setup, name)
    run()
    out, seconds = run()
    result.write_text(json.dumps({"out": out, "seconds": seconds}), encoding="utf-8")


if __name__ == "__main__":
    main()
