#!/usr/bin/env python
"""Write a tiny GPT-2 byte-level BPE (``encoder.json`` + ``vocab.bpe``) and the
fairseq ``dict.txt`` that remaps its ids, learned from the repo's corpus
(nothing is downloaded): what BART fixtures need instead of GPT-2's 50k files.

``encoder.json`` holds the 256 byte symbols then the learned merges' pieces
(GPT-2's layout); ``vocab.bpe`` is ``#version: 0.2`` then one merge per line;
``dict.txt`` lists the GPT-2 ids of the corpus as fairseq-preprocess writes
them (``<id> <count>``, most frequent first, every id of encoder.json as in
BART's own dict.txt), padded with ``madeupword``s to a multiple of 8.

    .venv/bin/python scripts/make_gpt2_bpe.py OUT_DIR [--merges 300]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def corpus(n: int = 4000) -> list[str]:
    lines: list[str] = []
    for name in ("train.en", "train.de"):
        lines += (ROOT / "assets" / "corpus" / name).read_text(encoding="utf-8").splitlines()[:n]
    return lines


def make_gpt2_bpe(out: Path, merges: int = 300, lines: list[str] | None = None) -> Path:
    """Write encoder.json, vocab.bpe and dict.txt into ``out``; return it."""
    from tokenizers import ByteLevelBPETokenizer

    from modelport.tokenizers.gpt2_bpe import Gpt2Bpe, bytes_to_unicode, read_merges

    out.mkdir(parents=True, exist_ok=True)
    lines = lines if lines is not None else corpus()
    alphabet = list(bytes_to_unicode().values())
    trainer = ByteLevelBPETokenizer(add_prefix_space=False)
    trainer.train_from_iterator(lines, vocab_size=len(alphabet) + merges, min_frequency=2, show_progress=False,
                                special_tokens=[])
    model = json.loads(trainer._tokenizer.to_str())["model"]
    learned = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    encoder = {ch: i for i, ch in enumerate(alphabet)}  # the 256 bytes first, as GPT-2's file
    for a, b in learned:
        encoder.setdefault(a + b, len(encoder))
    (out / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    (out / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in learned), encoding="utf-8")
    bpe = Gpt2Bpe(encoder, read_merges(out / "vocab.bpe"))
    counts = Counter(i for line in lines for i in bpe.encode(line))
    # every GPT-2 id, as BART's dict.txt holds them (its hub's encode_line adds an
    # unknown word to the dictionary, past the embedding), most frequent first
    rows = [f"{i} {counts.get(i, 0)}" for i in sorted(encoder.values(), key=lambda i: (-counts.get(i, 0), i))]
    n, k = len(rows) + 4, 0
    while n % 8:
        rows.append(f"madeupword{k:04d} 0")
        n, k = n + 1, k + 1
    (out / "dict.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--merges", type=int, default=300)
    args = p.parse_args()
    make_gpt2_bpe(args.out, args.merges)
    print(f"wrote {args.out}/encoder.json, vocab.bpe, dict.txt")


if __name__ == "__main__":
    main()
