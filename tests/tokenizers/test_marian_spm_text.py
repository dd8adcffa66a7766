"""The text of a Marian port with ``.spm`` vocabularies equals Marian's own, trailing space included.

Marian decodes ``.spm`` vocabularies with sentencepiece itself (marian-dev
src/data/sentencepiece_vocab.cpp, ``SentencePieceVocab::decode``), so a
translation whose last piece is a lone ``▁`` ends in a space; OPUS-MT's YAML
layout (and transformers' ``MarianTokenizer``) strips it. Lines 136 and 159 of
assets/corpus/test.en are such cases for tests/data/marian-trained/post_sep_tied
(found by ``scripts/bench_translate.py --marian``). A folder converted before
``decode_rule`` was recorded keeps the stripped text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelport
from modelport.errors import InvalidInputError
from modelport.tokenizers import load_tokenizer

pytest.importorskip("pymarian")

from modelport.generation.translate import translate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "tests" / "data" / "marian-trained"
SPACE_ENDED = (136, 159)  # 0-based lines of test.en whose Marian output ends in a space
BENCH_LINES = 200
# (lines, options): one sentence per batch (a line's output is then independent of its neighbours),
# and scripts/bench_translate.py --marian --beam 4's run, where the difference was found
CASES = {"one-per-batch": (SPACE_ENDED + tuple(range(12)), {"mini_batch": 1, "maxi_batch": 1}),
         "bench": (tuple(range(BENCH_LINES)), {"mini_batch": 16, "maxi_batch": 100, "maxi_batch_sort": "src"})}


def _corpus() -> list[str]:
    return (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()


def _marian(model_dir: Path, lines: list[str], options: dict[str, Any]) -> list[str]:
    """Marian's own text (pymarian's Translator decodes with Marian's vocabulary objects)."""
    import pymarian

    decoder = yaml.safe_load((model_dir / "decoder.yml").read_text(encoding="utf-8"))
    translator = pymarian.Translator(models=str(model_dir / decoder["models"][0]),
                                     vocabs=[str(model_dir / v) for v in decoder["vocabs"]], cpu_threads=1,
                                     quiet=True, beam_size=4, normalize=0.6, **options)
    return list(translator.translate(lines))


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sep_tied") / "ported"
    modelport.convert(str(TRAINED / "post_sep_tied"), out)
    return out


def _both(ported: Path, case: str) -> tuple[list[str], list[list[int]], list[str]]:
    """(Marian's text, the port's first-best ids, the port's text) on ``case``'s lines, space-ended ones first."""
    indices, options = CASES[case]
    corpus = _corpus()
    lines = [corpus[i] for i in indices]
    hyps = translate(modelport.load(str(ported)), lines, semantics="marian", beam_size=4, normalize=0.6, **options)
    return (_marian(TRAINED / "post_sep_tied", lines, options), [h[0]["tokens"] for h in hyps],
            [h[0]["text"] for h in hyps])


@pytest.mark.parametrize("case", CASES)
def test_text_equals_marian_trailing_space_included(ported: Path, case: str) -> None:
    marian, ids, texts = _both(ported, case)
    ended = [marian[CASES[case][0].index(i)] for i in SPACE_ENDED]
    assert all(m.endswith(" ") for m in ended), ended
    assert json.loads((ported / "tokenizer" / "tokenizer_config.json").read_text())["decode_rule"] == "sentencepiece"
    assert texts == marian
    tok = load_tokenizer(ported / "tokenizer")
    assert [tok.decode(x) for x in ids] == marian


def test_folder_without_decode_rule_keeps_stripped_text(ported: Path, tmp_path: Path) -> None:
    """A folder written before ``decode_rule`` existed decodes as it did: OPUS-MT's stripped text."""
    marian, ids, _ = _both(ported, "one-per-batch")
    old = tmp_path / "tokenizer"
    shutil.copytree(ported / "tokenizer", old)
    cfg_path = old / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["decode_rule"]
    cfg_path.write_text(json.dumps(cfg))
    texts = [load_tokenizer(old).decode(x) for x in ids]
    assert texts == [m.strip() for m in marian]
    assert texts[: len(SPACE_ENDED)] != marian[: len(SPACE_ENDED)]


def test_yaml_vocabulary_folder_keeps_opus_mt_rule(tmp_path: Path) -> None:
    ported = modelport.convert(str(TRAINED / "opus_yaml_multi"), tmp_path / "ported")
    cfg = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text())
    assert cfg["decode_rule"] == "opus_mt"
    tok = load_tokenizer(ported.tokenizer_dir)
    vocab = yaml.load((TRAINED / "opus_yaml_multi" / "opus.vocab.yml").read_text(encoding="utf-8"),
                      Loader=yaml.BaseLoader)
    word = next(p for p in vocab if p.startswith("▁") and len(p) > 2 and p[1:].isalpha())
    # OPUS-MT's postprocessing (and MarianTokenizer) strips the space a final lone ▁ leaves
    assert tok.decode([int(vocab[word]), int(vocab["▁"])]) == word[1:]


def test_unknown_decode_rule_is_refused(ported: Path, tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer"
    shutil.copytree(ported / "tokenizer", bad)
    cfg = json.loads((bad / "tokenizer_config.json").read_text())
    (bad / "tokenizer_config.json").write_text(json.dumps({**cfg, "decode_rule": "moses"}))
    with pytest.raises(InvalidInputError, match="`moses` is not a known Marian decode rule"):
        load_tokenizer(bad)
