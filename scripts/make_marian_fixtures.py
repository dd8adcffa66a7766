#!/usr/bin/env python3
"""Write tiny MarianNMT / OPUS-MT model directories for the Marian tests.

Each fixture is laid out as OPUS-MT ships a model, with tensors named and
stored exactly as Marian writes them (``marian/src/models/transformer.h``):

* ``opus.spm<N>-spm<M>.transformer-align.model1.npz.best-perplexity.npz``:
  ``W*`` matrices as ``[in, out]``, biases and layer-norm parameters as
  ``[1, dim]``, ``Wemb`` ``[vocab, dim]``, and the training configuration as
  ``special:model.yml``: an int8 array holding the YAML text plus a NUL, as
  Marian's ``io::`` writes it;
* ``decoder.yml`` (models, vocabs and the decoding defaults);
* Marian YAML vocabularies (joint ``*.vocab.yml`` or ``*.src.vocab.yml`` +
  ``*.trg.vocab.yml``: ``</s>`` 0, ``<unk>`` 1, then the SentencePiece
  pieces);
* ``source.spm``/``target.spm`` trained with the sentencepiece trainer on
  ``assets/corpus/train.{en,de}``;
* ``README.md`` and ``LICENSE`` as OPUS-MT publishes them.

Weights are random with a fixed seed per fixture. Regenerate with
``.venv/bin/python scripts/make_marian_fixtures.py`` (writes tests/data/marian/;
``--only NAME ...`` writes just those fixtures).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "assets" / "corpus"
OUT = ROOT / "tests" / "data" / "marian"
TRAIN_LINES = 3000
SRC_SPM_VOCAB = 400
TGT_SPM_VOCAB = 440  # differs from the source so separate vocabularies differ in size


@dataclass(frozen=True)
class Fixture:
    """One Marian option set."""

    name: str
    pre_norm: bool
    tie: str  # "all" (tied-embeddings-all), "tgt" (tied-embeddings), "none"
    ffn_depth: int
    activation: str  # Marian's name: swish, relu, gelu
    wpos: bool  # a `Wpos` under transformer-train-position-embeddings, which marian-decoder ignores
    separate_vocabs: bool = False
    emb_norm: bool = False
    # --transformer-decoder-autoreg rnn with --dec-cell ssru (Bergamot's students)
    # in place of decoder self-attention
    ssru: bool = False
    seed: int = 0
    # OPUS-MT's spm models normalise with nmt_nfkc, whose character map is
    # ~200 KB; fixtures that only test the network use "identity" ones to
    # keep tests/data small
    spm_normalization: str = "identity"


FIXTURES = [
    Fixture("post_tiedall_swish", pre_norm=False, tie="all", ffn_depth=2, activation="swish", wpos=False, seed=1,
            spm_normalization="nmt_nfkc"),
    Fixture("post_untied_relu", pre_norm=False, tie="none", ffn_depth=2, activation="relu", wpos=False,
            separate_vocabs=True, seed=2, spm_normalization="nmt_nfkc"),
    Fixture("pre_tied_swish", pre_norm=True, tie="tgt", ffn_depth=2, activation="swish", wpos=False, seed=3),
    Fixture("post_ffn3_relu", pre_norm=False, tie="all", ffn_depth=3, activation="relu", wpos=False, seed=4),
    Fixture("pre_wpos_relu", pre_norm=True, tie="all", ffn_depth=2, activation="relu", wpos=True, seed=5),
    Fixture("post_embnorm_gelu", pre_norm=False, tie="all", ffn_depth=2, activation="gelu", wpos=True,
            emb_norm=True, seed=6),
    Fixture("post_ssru_relu", pre_norm=False, tie="all", ffn_depth=2, activation="relu", wpos=False, ssru=True,
            seed=7),
]
DIM, HEADS, FFN, LAYERS, MAX_LENGTH = 32, 4, 64, 2, 128


# ---------------------------------------------------------------------------
# tokenizer files


def train_spm(corpus: Path, prefix: Path, vocab_size: int, normalization: str) -> Path:
    """A unigram SentencePiece model (OPUS-MT's defaults but for ``normalization``)."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        # train under relative names: the model records its input and prefix,
        # and a temporary directory's name would make every run differ
        lines = corpus.read_text(encoding="utf-8").splitlines()[:TRAIN_LINES]
        Path(tmp, "sample.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            spm.SentencePieceTrainer.train(input="sample.txt", model_prefix=prefix.name, vocab_size=vocab_size,
                                           model_type="unigram", character_coverage=1.0, num_threads=1,
                                           shuffle_input_sentence=False, minloglevel=2,
                                           normalization_rule_name=normalization)
        finally:
            os.chdir(cwd)
        shutil.copyfile(Path(tmp, f"{prefix.name}.model"), f"{prefix}.model")
    return Path(f"{prefix}.model")


def spm_pieces(path: Path) -> list[str]:
    """The pieces of an spm model without its control/unknown symbols."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(path))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())
            if not (sp.is_control(i) or sp.is_unknown(i))]


def marian_vocab(*piece_lists: list[str]) -> dict[str, int]:
    """Marian's vocabulary for SentencePiece models: ``</s>`` 0, ``<unk>`` 1,
    then the pieces of each model in order, each once (a joint vocabulary is
    the union of the source and target pieces)."""
    vocab = {"</s>": 0, "<unk>": 1}
    for pieces in piece_lists:
        for p in pieces:
            vocab.setdefault(p, len(vocab))
    return vocab


def write_vocab_yml(vocab: dict[str, int], path: Path) -> None:
    """One ``piece: id`` line each, quoted where YAML needs it (as yaml-cpp emits)."""
    out = io.StringIO()
    for piece, idx in vocab.items():
        line = yaml.safe_dump({piece: idx}, allow_unicode=True, default_flow_style=False, width=1 << 16)
        out.write(line)
    path.write_text(out.getvalue(), encoding="utf-8")


# ---------------------------------------------------------------------------
# model.yml and weights


def model_config(fx: Fixture, dim_vocabs: list[int]) -> dict:
    """The training configuration Marian stores in ``special:model.yml``
    (the model options Marian keeps there; dropout and training options omitted)."""
    pre = "n" if fx.pre_norm else ""
    return {
        "type": "transformer",
        "dim-vocabs": dim_vocabs,
        "dim-emb": DIM,
        "enc-depth": LAYERS,
        "dec-depth": LAYERS,
        "dec-cell": "ssru" if fx.ssru else "gru",
        "dec-cell-base-depth": 2,
        "dec-cell-high-depth": 1,
        "skip": False,
        "layer-normalization": False,
        "right-left": False,
        "input-types": [],
        "tied-embeddings": fx.tie == "tgt",
        "tied-embeddings-src": False,
        "tied-embeddings-all": fx.tie == "all",
        "output-omit-bias": False,
        "transformer-heads": HEADS,
        "transformer-no-projection": False,
        "transformer-pool": False,
        "transformer-dim-ffn": FFN,
        "transformer-decoder-dim-ffn": 0,
        "transformer-ffn-depth": fx.ffn_depth,
        "transformer-decoder-ffn-depth": 0,
        "transformer-ffn-activation": fx.activation,
        "transformer-dim-aan": 2048,
        "transformer-aan-depth": 2,
        "transformer-aan-activation": "swish",
        "transformer-aan-nogate": False,
        "transformer-decoder-autoreg": "rnn" if fx.ssru else "self-attention",
        "transformer-tied-layers": [],
        "transformer-guided-alignment-layer": "last",
        "transformer-preprocess": pre,
        "transformer-postprocess": "da" if fx.pre_norm else "dan",
        "transformer-postprocess-emb": "nd" if fx.emb_norm else "d",
        "transformer-postprocess-top": "n" if fx.pre_norm else "",
        "transformer-train-position-embeddings": fx.wpos,
        "transformer-depth-scaling": False,
        "max-length": MAX_LENGTH,
        "ulr": False,
        "factors-dim-emb": 0,
        "lemma-dim-emb": 0,
        "version": "v1.11.0 f00d062 2022-02-08 08:39:24 -0800",
    }


def make_weights(fx: Fixture, v_src: int, v_tgt: int) -> dict[str, np.ndarray]:
    """Random float32 tensors under Marian's names and layouts."""
    rng = np.random.default_rng(fx.seed)

    def mat(n_in: int, n_out: int) -> np.ndarray:  # Marian: [in, out], glorot-uniform scale
        limit = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-limit, limit, size=(n_in, n_out)).astype(np.float32)

    def row(n: int, centre: float = 0.0, spread: float = 0.1) -> np.ndarray:  # biases, ln: [1, dim]
        return (centre + spread * rng.standard_normal((1, n))).astype(np.float32)

    w: dict[str, np.ndarray] = {}
    emb = lambda n: (0.3 * rng.standard_normal((n, DIM))).astype(np.float32)  # noqa: E731
    if fx.tie == "all":
        w["Wemb"] = emb(v_src)
    else:
        w["encoder_Wemb"] = emb(v_src)
        w["decoder_Wemb"] = emb(v_tgt)
    if fx.wpos:
        w["Wpos"] = (0.3 * rng.standard_normal((MAX_LENGTH, DIM))).astype(np.float32)
    ln = "_pre" if fx.pre_norm else ""

    def norm(prefix: str, suffix: str) -> None:
        w[f"{prefix}_ln_scale{suffix}"] = row(DIM, 1.0)
        w[f"{prefix}_ln_bias{suffix}"] = row(DIM)

    def attention(prefix: str) -> None:
        for p in "qkvo":
            w[f"{prefix}_W{p}"] = mat(DIM, DIM)
            w[f"{prefix}_b{p}"] = row(DIM)
        norm(f"{prefix}_Wo", ln)

    def ffn(prefix: str) -> None:
        dims = [DIM] + [FFN] * (fx.ffn_depth - 1) + [DIM]
        for i in range(fx.ffn_depth):
            w[f"{prefix}_W{i + 1}"] = mat(dims[i], dims[i + 1])
            w[f"{prefix}_b{i + 1}"] = row(dims[i + 1])
        norm(f"{prefix}_ffn", ln)

    def ssru(prefix: str) -> None:
        # marian-dev src/rnn/cells.h SSRU: W and Wf [dim, dim], bf [1, dim];
        # transformer.h DecoderLayerRNN pre-processes under `prefix` and
        # post-processes under `prefix_ffn`
        w[f"{prefix}_W"] = mat(DIM, DIM)
        w[f"{prefix}_Wf"] = mat(DIM, DIM)
        w[f"{prefix}_bf"] = row(DIM, spread=0.5)
        if fx.pre_norm:
            norm(prefix, "_pre")
        else:
            norm(f"{prefix}_ffn", "")

    for side in ("encoder", "decoder"):
        if fx.emb_norm:
            norm(f"{side}_emb", "_pre")
        for layer in range(1, LAYERS + 1):
            if side == "decoder" and fx.ssru:
                ssru(f"{side}_l{layer}_rnn")
            else:
                attention(f"{side}_l{layer}_self")
            if side == "decoder":
                attention(f"{side}_l{layer}_context")
            ffn(f"{side}_l{layer}_ffn")
        if fx.pre_norm:
            norm(f"{side}_top", "")
    if fx.tie == "none":
        w["decoder_ff_logit_out_W"] = mat(DIM, v_tgt)
    w["decoder_ff_logit_out_b"] = row(v_tgt, spread=0.5)
    return w


def yaml_item(config: dict) -> np.ndarray:
    """``special:model.yml`` as Marian stores it: int8 characters plus a NUL."""
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return np.frombuffer(text.encode("utf-8") + b"\0", dtype=np.int8).copy()


def decoder_yml(npz: str, vocabs: list[str]) -> str:
    return yaml.safe_dump({
        "relative-paths": True,
        "models": [npz],
        "vocabs": vocabs,
        "beam-size": 6,
        "normalize": 0.6,
        "word-penalty": 0,
        "mini-batch": 1,
        "maxi-batch": 1,
        "maxi-batch-sort": "src",
    }, sort_keys=False)


README = """# opus-{name} (modelport test fixture)

* dataset: opus
* model: transformer-align
* source language(s): en
* target language(s): de
* pre-processing: normalization + SentencePiece (spm{src}/spm{tgt})
* download: {npz}

Random weights written by scripts/make_marian_fixtures.py; not a trained model.
"""

LICENSE = """MIT License (test fixture written by modelport's scripts/make_marian_fixtures.py;
OPUS-MT models are released under CC-BY 4.0)
"""


def write_fixture(fx: Fixture, out: Path, src_spm: Path, tgt_spm: Path) -> None:
    src_pieces, tgt_pieces = spm_pieces(src_spm), spm_pieces(tgt_spm)
    stem = f"opus.spm{SRC_SPM_VOCAB}-spm{TGT_SPM_VOCAB}"
    if fx.separate_vocabs:
        src_vocab, tgt_vocab = marian_vocab(src_pieces), marian_vocab(tgt_pieces)
        vocab_files = [f"{stem}.src.vocab.yml", f"{stem}.trg.vocab.yml"]
    else:
        # the two rarest source pieces are left out, so the fixture also
        # exercises "a piece the vocabulary lacks is <unk>"
        src_vocab = tgt_vocab = marian_vocab(src_pieces[:-2], tgt_pieces)
        vocab_files = [f"{stem}.vocab.yml", f"{stem}.vocab.yml"]
    npz = f"{stem}.transformer-align.model1.npz.best-perplexity.npz"
    d = out / fx.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    config = model_config(fx, [len(src_vocab), len(tgt_vocab)])
    weights = make_weights(fx, len(src_vocab), len(tgt_vocab))
    weights["special:model.yml"] = yaml_item(config)
    np.savez(d / npz, **weights)
    write_vocab_yml(src_vocab, d / vocab_files[0])
    if fx.separate_vocabs:
        write_vocab_yml(tgt_vocab, d / vocab_files[1])
    shutil.copyfile(src_spm, d / "source.spm")
    shutil.copyfile(tgt_spm, d / "target.spm")
    (d / "decoder.yml").write_text(decoder_yml(npz, vocab_files), encoding="utf-8")
    (d / "README.md").write_text(README.format(name=fx.name, src=SRC_SPM_VOCAB, tgt=TGT_SPM_VOCAB, npz=npz),
                                 encoding="utf-8")
    (d / "LICENSE").write_text(LICENSE, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[fx.name for fx in FIXTURES],
                        help="write only these fixtures (default: all)")
    args = parser.parse_args()
    fixtures = [fx for fx in FIXTURES if not args.only or fx.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        spms = {}
        for norm in sorted({fx.spm_normalization for fx in fixtures}):
            spms[norm] = (train_spm(CORPUS / "train.en", Path(tmp) / f"source.{norm}", SRC_SPM_VOCAB, norm),
                          train_spm(CORPUS / "train.de", Path(tmp) / f"target.{norm}", TGT_SPM_VOCAB, norm))
        for fx in fixtures:
            write_fixture(fx, args.out, *spms[fx.spm_normalization])
            print(f"wrote {args.out / fx.name}")


if __name__ == "__main__":
    main()
