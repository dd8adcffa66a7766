#!/usr/bin/env python3
"""Train tiny seeded Marian models with Marian itself (``pymarian train``) on
the repo corpus (assets/corpus/train.{en,de}, en->de), for parity tests
against ``pymarian decode`` (issue #19).

Each model directory holds what a Marian user ships: ``model.npz`` (as
Marian 1.12 writes it, options in ``special:model.yml``), ``source.spm`` /
``target.spm`` (or one joint ``vocab.spm``) that Marian reads itself, and a
``decoder.yml``. SentencePiece models are trained here with the
sentencepiece library (seeded input, fixed options), so Marian never trains
them. A few hundred updates on CPU, one thread, ``--seed`` fixed; each
model takes well under two minutes and a few MB.

Usage: ``.venv/bin/python scripts/make_pymarian_fixtures.py OUT_DIR [--only NAME ...]``
(the output is kept out of the repository; tests read it from
``MODELPORT_PYMARIAN_FIXTURES``).
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

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "assets" / "corpus"
TRAIN_LINES = 5000
UPDATES = 300


@dataclass(frozen=True)
class Model:
    """One Marian training configuration (Marian's own option names)."""

    name: str
    joint_vocab: bool
    options: dict[str, object] = field(default_factory=dict)


BASE = {"type": "transformer", "dim-emb": 32, "enc-depth": 2, "dec-depth": 2, "transformer-heads": 4,
        "transformer-dim-ffn": 64, "max-length": 64}

MODELS = [
    # OPUS-MT's usual shape: post-norm, separate spm vocabularies, tied target embeddings
    Model("post_sep_tied", joint_vocab=False, options={**BASE, "tied-embeddings": True}),
    # pre-norm with a 3-layer FFN, swish, joint vocabulary, everything tied (the divergent case)
    Model("pre_ffn3_swish", joint_vocab=True, options={
        **BASE, "tied-embeddings-all": True, "transformer-preprocess": "n", "transformer-postprocess": "da",
        "transformer-postprocess-top": "n", "transformer-ffn-depth": 3, "transformer-ffn-activation": "swish"}),
]


def _spm(prefix: Path, text: list[Path], size: int) -> Path:
    import sentencepiece as spm

    lines = []
    for path in text:
        lines += path.read_text(encoding="utf-8").splitlines()[:TRAIN_LINES]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=size,
                                   character_coverage=1.0, model_type="unigram", seed_sentencepiece_size=100000,
                                   shuffle_input_sentence=False, num_threads=1, bos_id=-1, eos_id=0, unk_id=1,
                                   pad_id=-1, eos_piece="</s>", unk_piece="<unk>", minloglevel=2)
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


def build(model: Model, out: Path, seed: int = 1) -> Path:
    """Train ``model`` into ``out / model.name``; returns the directory."""
    d = out / model.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    work = d / "_train"
    work.mkdir()
    src, trg = work / "train.en", work / "train.de"
    for side, path in (("en", src), ("de", trg)):
        path.write_text("\n".join((CORPUS / f"train.{side}").read_text(encoding="utf-8").splitlines()[:TRAIN_LINES])
                        + "\n", encoding="utf-8")
    if model.joint_vocab:
        vocabs = [_spm(d / "vocab", [src, trg], 500)] * 2
    else:
        vocabs = [_spm(d / "source", [src], 400), _spm(d / "target", [trg], 440)]
    cmd = [str(Path(sys.executable).with_name("pymarian")), "train", *_flags(model.options),
           "--train-sets", str(src), str(trg), "--vocabs", *map(str, vocabs), "--model", str(d / "model.npz"),
           "--after-batches", str(UPDATES), "--mini-batch", "32", "--maxi-batch", "10", "--learn-rate", "0.003",
           "--lr-warmup", "50", "--optimizer-delay", "1", "--seed", str(seed), "--cpu-threads", "1",
           "--workspace", "512", "--disp-freq", "100", "--save-freq", str(UPDATES), "--overwrite",
           "--no-restore-corpus", "--shuffle", "batches", "--maxi-batch-sort", "none", "--quiet"]
    started = time.time()
    subprocess.run(cmd, check=True)
    shutil.rmtree(work)
    for extra in d.glob("model.npz.*"):
        if extra.name != "model.npz.decoder.yml":
            extra.unlink()
    (d / "model.npz.decoder.yml").unlink(missing_ok=True)
    decoder = {"relative-paths": True, "models": ["model.npz"], "vocabs": [v.name for v in vocabs],
               "beam-size": 4, "normalize": 0.6, "word-penalty": 0, "mini-batch": 1, "maxi-batch": 1,
               "maxi-batch-sort": "src"}
    (d / "decoder.yml").write_text(yaml.safe_dump(decoder, sort_keys=False), encoding="utf-8")
    print(f"{model.name}: {time.time() - started:.0f} s, "
          f"{sum(f.stat().st_size for f in d.iterdir()) / 1e6:.1f} MB", file=sys.stderr)
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
