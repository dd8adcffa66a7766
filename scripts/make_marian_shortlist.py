#!/usr/bin/env python3
"""Write a Marian text lexical shortlist (``lex.s2t``) for a Marian model with
SentencePiece vocabularies, from the repo corpus, for the shortlist parity
tests (tests/generation/test_marian_shortlist.py, issue #19).

The file has the layout Marian 1.12's ``LexicalShortlistGenerator`` reads
(marian-dev src/data/shortlist.h) and ``extract-lex`` writes: one entry per
line, ``TARGET_PIECE SOURCE_PIECE P(target|source)``, ``NULL`` as the empty
source word. The probabilities come from a few EM iterations of IBM model 1
over the SentencePiece pieces of the first ``--lines`` sentence pairs of
``assets/corpus/train.{en,de}`` (the lines the models were trained on),
encoded with the model's own ``.spm`` vocabularies; per source piece the
``--top`` most probable target pieces of probability at least ``--min-prob``
are written. Deterministic (no randomness, one thread, fixed formatting);
a few seconds.

Usage: ``.venv/bin/python scripts/make_marian_shortlist.py MODEL_DIR OUT_FILE``
(tests/data/marian-shortlist/ holds the files written for the models of
tests/data/marian-trained/, see the README.md there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import sentencepiece as spm
import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "assets" / "corpus"


def read_vocabs(model_dir: Path) -> tuple[spm.SentencePieceProcessor, spm.SentencePieceProcessor]:
    """The source and target SentencePiece vocabularies named by ``decoder.yml``."""
    config = yaml.safe_load((model_dir / "decoder.yml").read_text(encoding="utf-8"))
    paths = [model_dir / v for v in config["vocabs"]]
    if any(p.suffix != ".spm" for p in paths):
        sys.exit(f"{model_dir}: only .spm vocabularies are supported, but decoder.yml names {config['vocabs']}")
    return spm.SentencePieceProcessor(model_file=str(paths[0])), spm.SentencePieceProcessor(model_file=str(paths[-1]))


def ibm1(pairs: list[tuple[np.ndarray, np.ndarray]], sources: int, targets: int, iterations: int) -> np.ndarray:
    """IBM model 1 ``t[s, t] = p(t | s)``; row ``sources`` is the NULL word."""
    table = np.full((sources + 1, targets), 1.0 / targets)
    null = np.array([sources])
    for _ in range(iterations):
        counts = np.zeros_like(table)
        for src, trg in pairs:
            s = np.concatenate([src, null])
            probs = table[np.ix_(s, trg)]
            np.add.at(counts, (s[:, None], trg[None, :]), probs / probs.sum(0, keepdims=True))
        totals = counts.sum(1, keepdims=True)
        table = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="Marian model directory (decoder.yml, .spm vocabularies)")
    parser.add_argument("output", type=Path, help="the lex.s2t file to write")
    parser.add_argument("--lines", type=int, default=5000, help="training sentence pairs read (default: 5000)")
    parser.add_argument("--iterations", type=int, default=5, help="EM iterations (default: 5)")
    parser.add_argument("--top", type=int, default=16, help="target pieces written per source piece (default: 16)")
    parser.add_argument("--min-prob", type=float, default=0.01, help="smallest probability written (default: 0.01)")
    args = parser.parse_args()
    src_spm, trg_spm = read_vocabs(args.model_dir)
    with open(CORPUS / "train.en", encoding="utf-8") as fs, open(CORPUS / "train.de", encoding="utf-8") as ft:
        lines = [(s.rstrip("\n"), t.rstrip("\n")) for s, t, _ in zip(fs, ft, range(args.lines))]
    pairs = [(np.array(src_spm.encode(s), dtype=np.int64), np.array(trg_spm.encode(t), dtype=np.int64))
             for s, t in lines]
    pairs = [(s, t) for s, t in pairs if len(s) and len(t)]
    n_src, n_trg = src_spm.get_piece_size(), trg_spm.get_piece_size()
    table = ibm1(pairs, n_src, n_trg, args.iterations)
    out = []
    for s in range(n_src + 1):
        order = np.argsort(-table[s], kind="stable")[: args.top]
        src_piece = "NULL" if s == n_src else src_spm.id_to_piece(s)
        out += [f"{trg_spm.id_to_piece(int(t))} {src_piece} {table[s, t]:.6f}\n"
                for t in order if table[s, t] >= args.min_prob]
    if not out or not any(line.split()[1] == src_spm.id_to_piece(n_src - 1) for line in out):
        # Marian sizes its table by the largest source id read and indexes it unchecked per batch
        sys.exit(f"no entry for the last source piece `{src_spm.id_to_piece(n_src - 1)}`: Marian would read "
                 "past its table for it (lower --min-prob or raise --top)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(out), encoding="utf-8")
    print(f"{args.output}: {len(out)} entries from {len(pairs)} sentence pairs")


if __name__ == "__main__":
    main()
