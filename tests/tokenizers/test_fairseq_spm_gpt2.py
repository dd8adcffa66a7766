"""The fairseq SentencePiece and GPT-2 BPE tokenizers without fairseq: where language
tokens go, how unknown languages are refused, byte-level round trips. (Their ids
against fairseq itself: tests/converters/test_fairseq_multilingual.py and
test_fairseq_bart.py.)"""

from __future__ import annotations

import json

import pytest

from modelport.errors import InvalidInputError
from modelport.tokenizers import load_tokenizer
from tests.helpers.requires import requires


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory):
    from tests.helpers.fairseq_ref import train_spm, write_spm_dict

    d = tmp_path_factory.mktemp("spm")
    model = train_spm(d / "spm", vocab_size=120)
    write_spm_dict(model, d / "dict.txt", drop_last=0)
    (d / "sentencepiece.bpe.model").write_bytes(model.read_bytes())
    return d


def _spm_tok(d, **cfg):
    (d / "tokenizer_config.json").write_text(json.dumps({
        "type": "fairseq_spm", "spm": "sentencepiece.bpe.model", "dict": "dict.txt", **cfg}))
    return load_tokenizer(d)


@requires("sentencepiece")
def test_language_tokens_follow_the_dictionary(spm_dir) -> None:
    n = len(spm_dir.joinpath("dict.txt").read_text().splitlines()) + 4
    tok = _spm_tok(spm_dir, languages=["en", "de"], encoder_langtok="src", decoder_langtok=True)
    assert tok.lang_ids == {"en": n, "de": n + 1} and tok.id_to_tokens([n, n + 1]) == ["__en__", "__de__"]
    plan = tok.language_plan("en", "de")
    assert (plan.source_prefix, plan.source_suffix, plan.decoder_prefix, plan.generator_eos) == ([n], [], [n + 1], None)
    tgt = _spm_tok(spm_dir, languages=["en", "de"], encoder_langtok="tgt", decoder_langtok=False)
    assert tgt.language_prefixes("en", "de") == ([n + 1], [])
    mbart = _spm_tok(spm_dir, languages=["en_XX", "de_DE"], lang_tok_style="mbart", add_mask=True,
                     langtok_placement="mbart_finetune")
    assert mbart.id_to_tokens([n, n + 1, n + 2]) == ["[en_XX]", "[de_DE]", "<mask>"]
    plan = mbart.language_plan("en_XX", "de_DE")
    assert (plan.source_prefix, plan.source_suffix, plan.decoder_prefix, plan.generator_eos) == ([], [n], [], n + 1)


@requires("sentencepiece")
def test_missing_or_unknown_language_names_the_known_ones(spm_dir) -> None:
    tok = _spm_tok(spm_dir, languages=["en", "de"], encoder_langtok="src", decoder_langtok=True)
    with pytest.raises(InvalidInputError, match=r"pass the source language \(--source-lang; known: en, de\)"):
        tok.language_plan(None, "de")
    with pytest.raises(InvalidInputError, match="`xx` is not a known target language of this model"):
        tok.language_plan("en", "xx")
    plain = _spm_tok(spm_dir)
    assert plain.language_prefixes(None, None) == ([], [])
    with pytest.raises(InvalidInputError, match="no language tokens"):
        plain.language_plan("en", None)


@requires("sentencepiece")
def test_decode_is_fairseqs_string_then_sentencepiece_decode(spm_dir) -> None:
    tok = _spm_tok(spm_dir, languages=["en"], model_vocab_size=10_000)
    ids = tok.encode("Anna stays at work.")
    assert tok.decode(ids) == "Anna stays at work."
    assert tok.decode([0, 3, 2]) == "<unk>"  # <s> and </s> skipped, <unk> printed
    assert tok.decode([9_999]) == "<unk>"  # a row past the dictionary (padded embedding)


@requires("regex", "tokenizers")
def test_gpt2_bpe_round_trip_and_literal_specials(tmp_path) -> None:
    from tests.helpers.fairseq_ref import HARD_TEXT, make_gpt2_bpe

    d = make_gpt2_bpe(tmp_path)
    (d / "tokenizer_config.json").write_text(json.dumps({"type": "fairseq_gpt2_bpe", "add_mask": True}))
    tok = load_tokenizer(d)
    for line in HARD_TEXT:
        assert tok.decode(tok.encode(line)) == line
    mask = tok.dict.index("<mask>")
    assert mask == len(tok.dict) - 1
    assert tok.decode([tok.dict.index("13"), 3, mask]) == tok.bpe.decode([13]) + "<unk><mask>"
    assert tok.language_prefixes(None, None) == ([0], [0])


def test_tokenize_tokens_prints_bart_s_byte_level_pieces(tmp_path, capsys) -> None:
    """`tokenize --tokens` printed the GPT-2 ids the dictionary looks up (`39 269 ...`), not pieces."""
    import modelport
    from tests.helpers.cli import main
    from tests.helpers.paths import ROOT

    ported = modelport.convert(str(ROOT / "assets" / "fixture-bart"), tmp_path / "bart")
    line = "His coffee costs 2.10 euros."
    source = tmp_path / "in.en"
    source.write_text(line + "\n", encoding="utf-8")
    assert main(["tokenize", str(ported.path), "-i", str(source), "--tokens"]) == 0
    pieces = capsys.readouterr().out.split()
    assert "".join(pieces).replace("\u0120", " ") == line and "\u0120costs" in pieces
    # one piece per id the line encodes to (its </s> aside)
    assert len(pieces) == len(ported.tokenizer.encode(line)) - 1
