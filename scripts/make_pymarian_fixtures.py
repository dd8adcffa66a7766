#!/usr/bin/env python3
"""Train tiny seeded Marian models with Marian itself (``pymarian train``) on
the repo corpus (assets/corpus/train.{en,de}, en->de), for parity tests
against ``pymarian decode`` (issue #19).

Each model directory holds what a Marian user ships: the npz (as Marian 1.12
writes it, options in ``special:model.yml``), ``source.spm`` / ``target.spm``
(or one joint ``vocab.spm``) that Marian reads itself, and a ``decoder.yml``;
the OPUS-MT-layout model has a joint YAML vocabulary and is fed pieces.
SentencePiece models are trained here with the sentencepiece library (seeded
input, fixed options), so Marian never trains them. The guided-alignment
model's alignments are a diagonal heuristic over the pieces (no aligner is
run). A few hundred updates on CPU, one thread, ``--seed`` fixed; each model
takes about a minute and under 1.5 MB. ``post_sep_tied`` and
``post_guided_align`` share their vocabularies (the same pieces), so the test
ensembles them.

Usage: ``.venv/bin/python scripts/make_pymarian_fixtures.py OUT_DIR [--only NAME ...]``
(the models in tests/data/marian-trained/ were written with OUT_DIR = that
folder; tests/validators/test_marian_pymarian.py reads it, or
``MODELPORT_PYMARIAN_FIXTURES`` when set).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from _fixture_utils import piglatin
from make_marian_fixtures import marian_vocab, spm_pieces, write_vocab_yml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "assets" / "corpus"
TRAIN_LINES = 5000
UPDATES = 300


@dataclass(frozen=True)
class Model:
    """One Marian training configuration (Marian's own option names).

    ``langs``: target-language tokens (``>>xxx<<``, source side) of a
    multilingual-target model trained on en->de and en->Pig Latin; ``yaml_vocab``:
    the OPUS-MT layout (joint ``*.vocab.yml``, text pre-encoded with source.spm /
    target.spm); ``guided``: trained with ``--guided-alignment`` on a diagonal
    alignment of the pieces."""

    name: str
    joint_vocab: bool
    options: dict[str, object] = field(default_factory=dict)
    langs: tuple[str, ...] = ()
    yaml_vocab: bool = False
    guided: bool = False


BASE = {"type": "transformer", "dim-emb": 32, "enc-depth": 2, "dec-depth": 2, "transformer-heads": 4,
        "transformer-dim-ffn": 64, "max-length": 64}
RELU = {"transformer-ffn-activation": "relu"}

MODELS = [
    # OPUS-MT's usual shape: post-norm, separate spm vocabularies, tied target embeddings
    Model("post_sep_tied", joint_vocab=False, options={**BASE, "tied-embeddings": True}),
    # pre-norm with a 3-layer FFN, swish, joint vocabulary, everything tied (the divergent case)
    Model("pre_ffn3_swish", joint_vocab=True, options={
        **BASE, "tied-embeddings-all": True, "transformer-preprocess": "n", "transformer-postprocess": "da",
        "transformer-postprocess-top": "n", "transformer-ffn-depth": 3, "transformer-ffn-activation": "swish"}),
    # source and target embeddings shared, a separate output matrix
    Model("post_tiedsrc_relu", joint_vocab=True, options={**BASE, **RELU, "tied-embeddings-src": True}),
    # nothing tied (Marian's default)
    Model("post_untied_relu", joint_vocab=False, options={**BASE, **RELU}),
    # Bergamot's tiny11 student shape: 6 encoder layers, a 2-layer SSRU decoder, FFN 6x the width
    Model("tiny11_ssru", joint_vocab=True, options={
        **BASE, **RELU, "enc-depth": 6, "transformer-dim-ffn": 192, "tied-embeddings-all": True,
        "transformer-decoder-autoreg": "rnn", "dec-cell": "ssru"}),
    # transformer-big proportions at width 64: 16 heads (of 4 dims), FFN 4x the width
    Model("big_heads16", joint_vocab=True, options={
        **BASE, **RELU, "dim-emb": 64, "transformer-heads": 16, "transformer-dim-ffn": 256,
        "tied-embeddings-all": True}),
    # gelu (the exact erf GELU since Marian 1.12), a wider decoder FFN than the encoder's, no output bias,
    # a layer norm on the embeddings
    Model("post_gelu_decffn_nobias", joint_vocab=True, options={
        **BASE, "tied-embeddings-all": True, "transformer-ffn-activation": "gelu", "transformer-decoder-dim-ffn": 128,
        "output-omit-bias": True, "transformer-postprocess-emb": "nd"}),
    # OPUS-MT's transformer-align: guided alignment on the last layer's cross-attention
    Model("post_guided_align", joint_vocab=False, options={**BASE, "tied-embeddings": True}, guided=True),
    # one source side, two target languages chosen by a >>xxx<< token
    Model("multi_target", joint_vocab=False, options={**BASE, "tied-embeddings": True}, langs=("deu", "pgl")),
    # the OPUS-MT layout of a multilingual model: joint YAML vocabulary holding the >>xxx<< tokens, pieces in
    # and out (the token, then the spm pieces of the rest: OPUS-MT's preprocessing)
    Model("opus_yaml_multi", joint_vocab=True, options={**BASE, "tied-embeddings-all": True}, langs=("deu", "pgl"),
          yaml_vocab=True),
]


def spm_model(prefix: Path, lines: list[str], size: int, symbols: tuple[str, ...] = (), *,
              hard_limit: bool = True) -> Path:
    """A unigram SentencePiece model trained on ``lines``, ``</s>`` 0 and ``<unk>``
    1 as Marian's ``.spm`` vocabularies have them, saved as ``prefix.spm``.
    ``hard_limit`` false: up to ``size`` pieces, as many as ``lines`` allow."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=size,
                                   character_coverage=1.0, model_type="unigram", seed_sentencepiece_size=100000,
                                   shuffle_input_sentence=False, num_threads=1, bos_id=-1, eos_id=0, unk_id=1,
                                   pad_id=-1, eos_piece="</s>", unk_piece="<unk>", minloglevel=2,
                                   user_defined_symbols=list(symbols), hard_vocab_limit=hard_limit)
    model = prefix.with_suffix(".model")
    target = prefix.with_suffix(".spm")
    model.rename(target)
    prefix.with_suffix(".vocab").unlink(missing_ok=True)
    return target


def _flags(options: dict[str, object]) -> list[str]:
    out: list[str] = []
    for k, v in options.items():
        if v is True:
            out.append(f"--{k}")
        elif v is not False:
            out += [f"--{k}", str(v)]
    return out


def _corpus(model: Model) -> tuple[list[str], list[str]]:
    """The training pairs: en->de, or for ``langs`` en->de and en->Pig Latin
    interleaved, each source line led by its target's ``>>xxx<<`` token."""
    en, de = ((CORPUS / f"train.{side}").read_text(encoding="utf-8").splitlines()[:TRAIN_LINES]
              for side in ("en", "de"))
    if not model.langs:
        return en, de
    src, trg = [], []
    for e, d in zip(en, de):
        for lang, t in zip(model.langs, (d, piglatin(e))):
            src.append(f">>{lang}<< {e}")
            trg.append(t)
    return src, trg


def _diagonal(src: list[list[str]], trg: list[list[str]]) -> list[str]:
    """A trivial alignment for --guided-alignment (no aligner run): target
    piece j to source piece floor(j * n / m), in Marian's ``s-t`` pairs."""
    return [" ".join(f"{j * len(s) // len(t)}-{j}" for j in range(len(t))) for s, t in zip(src, trg)]


def _encode(spm_path: Path, lines: list[str]) -> list[list[str]]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    return [sp.encode(line, out_type=str) for line in lines]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def marian_train(d: Path, options: dict[str, object], files: list[Path], vocabs: list[Path], npz: str,
                 extra: list[str], seed: int, updates: int = UPDATES) -> float:
    """``pymarian train`` for ``updates`` updates into ``d / npz`` (Marian's
    side files ``npz.*``, the optimizer state among them, removed); returns
    the seconds it took."""
    cmd = [str(Path(sys.executable).with_name("pymarian")), "train", *_flags(options),
           "--train-sets", *map(str, files), "--vocabs", *map(str, vocabs), "--model", str(d / npz), *extra,
           "--after-batches", str(updates), "--mini-batch", "32", "--maxi-batch", "10", "--learn-rate", "0.003",
           "--lr-warmup", "50", "--optimizer-delay", "1", "--seed", str(seed), "--cpu-threads", "1",
           "--workspace", "512", "--disp-freq", "100", "--save-freq", str(updates), "--overwrite",
           "--no-restore-corpus", "--shuffle", "batches", "--maxi-batch-sort", "none", "--quiet"]
    started = time.time()
    subprocess.run(cmd, check=True)
    for side_file in d.glob(f"{npz}.*"):
        side_file.unlink()
    return time.time() - started


def write_decoder_yml(d: Path, models: list[str], vocabs: list[str], **extra: object) -> None:
    decoder = {"relative-paths": True, "models": models, "vocabs": vocabs, **extra,
               "beam-size": 4, "normalize": 0.6, "word-penalty": 0, "mini-batch": 1, "maxi-batch": 1,
               "maxi-batch-sort": "src"}
    (d / "decoder.yml").write_text(yaml.safe_dump(decoder, sort_keys=False), encoding="utf-8")


def build(model: Model, out: Path, seed: int = 1) -> Path:
    """Train ``model`` into ``out / model.name``; returns the directory."""
    d = out / model.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    work = d / "_train"
    work.mkdir()
    src, trg = _corpus(model)
    symbols = tuple(f">>{lang}<<" for lang in model.langs)
    if model.yaml_vocab:  # OPUS-MT: separate spm models, one joint Marian vocabulary of their pieces
        codes = [line.split(" ", 1)[0] + " " if model.langs else "" for line in src]
        src = [line[len(c):] for c, line in zip(codes, src)]
        spms = [spm_model(d / "source", src, 400), spm_model(d / "target", trg, 440)]
        vocab = marian_vocab(list(symbols), *(spm_pieces(p) for p in spms))
        write_vocab_yml(vocab, d / "opus.vocab.yml")
        vocabs = [d / "opus.vocab.yml"] * 2
        src = [c + " ".join(p) for c, p in zip(codes, _encode(spms[0], src))]
        trg = [" ".join(p) for p in _encode(spms[1], trg)]
        npz = "opus.transformer-align.model1.npz.best-perplexity.npz"
    else:
        if model.joint_vocab:
            vocabs = [spm_model(d / "vocab", src + trg, 500, symbols)] * 2
        else:
            vocabs = [spm_model(d / "source", src, 400, symbols), spm_model(d / "target", trg, 440)]
        npz = "model.npz"
    files = [_write(work / "train.src", src), _write(work / "train.trg", trg)]
    extra: list[str] = []
    if model.guided:
        align = _diagonal(_encode(vocabs[0], src), _encode(vocabs[1], trg))
        extra = ["--guided-alignment", str(_write(work / "train.align", align))]
    seconds = marian_train(d, model.options, files, vocabs, npz, extra, seed)
    shutil.rmtree(work)
    write_decoder_yml(d, [npz], [v.name for v in vocabs])
    print(f"{model.name}: {seconds:.0f} s, {sum(f.stat().st_size for f in d.iterdir()) / 1e6:.2f} MB",
          file=sys.stderr)
    return d


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", nargs="*", help="model names (default: all)")
    args = parser.parse_args()
    for model in MODELS:
        if not args.only or model.name in args.only:
            build(model, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
