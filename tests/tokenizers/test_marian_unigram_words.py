"""Marian's SentencePiece segmentation word by word (modelport/tokenizers/marian_unigram.py).

``MarianUnigram.encode`` takes each word's kept best path while its gap to the
runner-up exceeds what float32 rounding can move, and searches the whole line
otherwise. Its pieces must be the whole-line search's (``search``, Marian's
rule, tested against pymarian in tests/validators/test_marian_spm_ties.py) on
every line: here on corpus lines of both languages, lines led by a
user-defined ``>>xxx<<`` piece (its score moves every later sum), unknown
characters and ties. The whole-line search is also shown to be needed: keeping
every word's path regardless of its gap gives other pieces on tie lines.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sentencepiece

from modelport.tokenizers.marian_unigram import MarianUnigram, _Word

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "tests" / "data" / "marian-trained"
CORPUS = ROOT / "assets" / "corpus"
# a joint vocabulary, a source one of separate vocabularies, one with >>xxx<< user-defined pieces
VOCABS = ("tiny11_ssru/vocab.spm", "post_sep_tied/source.spm", "multi_target/source.spm")
ODD = ["65,000", "a 65,000 b 1,000,000", "数据 and 数据数据 x", "  a  b ", "", "ÄÖÜ ß € ½ ﬁ", "▁", "a▁b",
       "x" * 300, "1" * 200, "don't \"quoted\" 'x'"]


def _rule(name: str) -> tuple[sentencepiece.SentencePieceProcessor, MarianUnigram]:
    path = TRAINED / name
    sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    rule = MarianUnigram.load(path, sp)
    assert rule is not None
    return sp, rule


def _lines() -> list[str]:
    lines: list[str] = []
    for f in ("test.en", "valid.en", "test.de", "valid.de"):
        lines += (CORPUS / f).read_text(encoding="utf-8").splitlines()
    return lines + [f">>deu<< {x}" for x in lines[:300]] + [f">>pgl<< {x}" for x in lines[300:600]] + ODD


@pytest.mark.parametrize("name", VOCABS)
def test_word_paths_equal_the_whole_line_search(name: str) -> None:
    sp, rule = _rule(name)
    assert rule.words_apart
    lines = _lines()
    differ = [x for x in lines if rule.encode(x) != rule.search(sp.normalize(x))]
    assert not differ, f"{name}: {len(differ)} lines differ, e.g. {differ[:3]}"
    # and once more from the kept words (the first pass filled them)
    assert all(rule.encode(x) == rule.search(sp.normalize(x)) for x in lines[:500] + ODD)


def test_a_tie_is_searched_over_the_whole_line() -> None:
    """"65,000" ties exactly (``▁6 5 , 0 00`` against ``▁6 5 , 00 0``): its word has no gap, so the
    line is searched; kept regardless of the gap, the word paths give other pieces on such lines."""
    sp, rule = _rule("post_sep_tied/source.spm")
    assert rule.encode("65,000") == ["▁6", "5", ",", "00", "0"]
    assert rule._words["▁65,000"].limit < 0
    lines = _lines()
    careless = MarianUnigram.load(TRAINED / "post_sep_tied/source.spm", sp)
    assert careless is not None
    for x in lines:
        rule.encode(x)
    for w, kept in rule._words.items():
        careless._words[w] = _Word(kept.pieces, kept.total, math.inf)
    wrong = sum(careless.encode(x) != rule.search(sp.normalize(x)) for x in lines)
    assert wrong >= 3, f"keeping every word's path changed only {wrong} lines: the test cannot tell"


def test_a_piece_with_an_inner_space_searches_every_line() -> None:
    """Words are apart only where no piece holds ``▁`` past its first character."""
    sp, rule = _rule("tiny11_ssru/vocab.spm")
    scores = dict(rule.scores)
    scores["a▁b"] = (5, -1.0)
    joined = MarianUnigram(sp, scores, rule.prefixes | {"a▁", "a▁b"}, rule.unk_score)
    assert not joined.words_apart
    assert joined.encode("a b") == joined.search(sp.normalize("a b"))
    assert not joined._words


def test_clear_cache_forgets_the_word_paths(tmp_path: Path) -> None:
    """A benchmark's timed round starts as a fresh process: no lines, no word paths kept."""
    import modelport

    ported = modelport.convert(str(TRAINED / "tiny11_ssru"), tmp_path / "port")
    tok = ported.tokenizer
    before = tok.encode("The house costs 96 euros.")
    rules = tok._rules
    assert rules and all(r._words for r in rules[:1])
    tok.clear_cache()
    assert not tok._cache and not any(r._words for r in rules)
    assert tok.encode("The house costs 96 euros.") == before
