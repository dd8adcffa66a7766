#!/usr/bin/env python3
"""Issue #18's parity table for a fairseq checkpoint: ``modelport translate``
against fairseq's hub interface (``TransformerModel.from_pretrained`` +
``generate`` + ``decode``, what fairseq users run), case by case.

A line counts as identical when it has as many hypotheses as fairseq's and
every one has the same text and a score within 1e-4 of fairseq's ``score``.

    .venv/bin/python scripts/parity_table.py assets/default-model \\
        --data assets/corpus/test.en --source-lang en --target-lang de

Prints a Markdown table (``--json``: one JSON object per case). Reference-side
tooling: it needs fairseq, fastBPE/subword-nmt and sacremoses installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOL = 1e-4
# name -> decoding options (fairseq's generation option names)
CASES: dict[str, dict[str, Any]] = {
    "greedy": {"beam": 1},
    "beam 5": {"beam": 5},
    "beam 4, lenpen 0.6": {"beam": 4, "lenpen": 0.6},
    "beam 5, max_len_b 12": {"beam": 5, "max_len_b": 12},
    "beam 5, min_len 8": {"beam": 5, "min_len": 8},
    "beam 5, no_repeat_ngram_size 3": {"beam": 5, "no_repeat_ngram_size": 3},
    "n-best 5 with scores": {"beam": 5, "nbest": 5},
}


def compare(ours: list[list[dict[str, Any]]], theirs: list[list[dict[str, Any]]], decode: Any,
            nbest: int) -> tuple[int, int, int, list[dict[str, Any]]]:
    """(identical lines, identical hypotheses, hypotheses, first differences)."""
    lines = same = total = 0
    examples: list[dict[str, Any]] = []
    for i, (xs, ys) in enumerate(zip(ours, theirs)):
        ys = ys[:nbest]
        ok = len(xs) == len(ys)
        for rank, (x, y) in enumerate(zip(xs, ys)):
            total += 1
            text, score = decode(y["tokens"]), float(y["score"])
            good = x["text"] == text and abs(x["score"] - score) <= TOL
            same += good
            ok &= good
            if not good and len(examples) < 3:
                examples.append({"line": i + 1, "rank": rank, "modelport": [x["text"], x["score"]],
                                 "fairseq": [text, score]})
        lines += ok
    return lines, same, total, examples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="fairseq model folder (checkpoint, dict.*.txt, BPE codes)")
    p.add_argument("--data", required=True, help="source lines")
    p.add_argument("--lines", type=int, default=200, help="first N lines of --data (default 200)")
    p.add_argument("--source-lang")
    p.add_argument("--target-lang")
    p.add_argument("--ported", help="an existing ported folder (default: convert SOURCE into a temporary one)")
    p.add_argument("--case", action="append", choices=list(CASES), help="run only these cases")
    p.add_argument("--json", action="store_true", help="one JSON object per case")
    args = p.parse_args(argv)

    import torch

    import modelport
    from modelport.validators.tokenizer import build_reference

    lines = Path(args.data).read_text(encoding="utf-8").splitlines()[: args.lines]
    with tempfile.TemporaryDirectory(prefix="parity-table-") as tmp:
        if args.ported:
            ported = modelport.load(args.ported)
        else:
            ported = modelport.convert(args.source, Path(tmp) / "ported", source_lang=args.source_lang,
                                       target_lang=args.target_lang)
        # fairseq's hub as `validate` builds it: told the languages the port records were given (a lone
        # --target-lang reaches from_pretrained alone, and fairseq then picks its Moses languages itself)
        cfg = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
        hub = build_reference("fairseq_hub", Path(args.source), cfg).hub
        sources = [hub.encode(line) for line in lines]
        if not args.json:
            print("| case | identical lines | identical hypotheses |\n|---|---|---|")
        for name in args.case or list(CASES):
            opts = dict(CASES[name])
            start = time.time()
            ours = ported.translate(lines, **opts)
            nbest = opts.pop("nbest", 1)
            with torch.no_grad():
                theirs = hub.generate(sources, beam=opts.pop("beam"), nbest=nbest, **opts)
            same_lines, same, total, examples = compare(ours, theirs, hub.decode, nbest)
            if args.json:
                print(json.dumps({"case": name, "options": CASES[name], "identical_lines": same_lines,
                                  "lines": len(lines), "identical_hypotheses": same, "hypotheses": total,
                                  "examples": examples, "seconds": round(time.time() - start, 1)},
                                 ensure_ascii=False), flush=True)
            else:
                print(f"| {name} | {same_lines}/{len(lines)} | {same}/{total} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
