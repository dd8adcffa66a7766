#!/usr/bin/env python
"""Build the tiny random fairseq fixtures of the multilingual and BART tests into
OUT_DIR (what tests/converters/test_fairseq_multilingual.py and
test_fairseq_bart.py build in temporary folders), for trying the CLI by hand:

    .venv/bin/python scripts/make_multilingual_bart_fixtures.py /tmp/fixtures
    modelport convert /tmp/fixtures/m2m100 /tmp/m2m-port
    echo "Anna stays." | modelport translate /tmp/m2m-port --source-lang en --target-lang de

Each model is built by fairseq's own option parser, task and builders (needs
fairseq and sentencepiece; the BART BPE files come from scripts/make_gpt2_bpe.py):
``m2m100`` (translation_multi_simple_epoch, en/de/fr), ``mbart50``
(the same task, mbart_large, --lang-tok-style mbart), ``mbart25``
(translation_from_pretrained_bart), ``bart`` (bart_base, translation task).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.helpers.fairseq_ref import build_bart_model, build_mbart_finetune_model, build_multilingual_model

    built = [build_multilingual_model(args.out / "m2m100"),
             build_multilingual_model(args.out / "mbart50", langs=("en_XX", "de_DE", "fr_XX"),
                                      lang_tok_style="mbart", arch="mbart_large"),
             build_mbart_finetune_model(args.out / "mbart25"),
             build_bart_model(args.out / "bart")]
    for path in built:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
