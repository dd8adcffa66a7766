"""The passes on a multilingual port (assets/fixture-m2m, en<->de): `--data`
is translated between the languages given by --source-lang/--target-lang, as
`translate` needs them. quantize and prune with --data failed on such a port,
asking for a --source-lang they did not offer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu

import modelport
from modelport.generation.translate import Direction
from modelport.passes import prune, quantize
from tests.helpers.cli import main, one_line_error
from tests.helpers.paths import ROOT

M2M = ROOT / "assets" / "fixture-m2m"
LINES = (M2M / "test.en").read_text(encoding="utf-8").splitlines()[:6]
REFS = (M2M / "test.de").read_text(encoding="utf-8").splitlines()[:6]


@pytest.fixture
def m2m(ported_m2m) -> modelport.api.PortedModel:
    return ported_m2m


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    source, refs = tmp_path / "data.en", tmp_path / "data.de"
    source.write_text("".join(x + "\n" for x in LINES), encoding="utf-8")
    refs.write_text("".join(x + "\n" for x in REFS), encoding="utf-8")
    return source, refs


@pytest.mark.parametrize("command", [["quantize", "--mode", "int8"], ["prune", "--decoder-layers", "1"]])
def test_data_on_a_multilingual_port_needs_the_languages_before_any_work(command, m2m, data, tmp_path,
                                                                         capsys) -> None:
    out = tmp_path / "out"
    base = [command[0], str(m2m.path), str(out), *command[1:], "--data", str(data[0])]
    assert "pass the source language (--source-lang" in one_line_error(base, capsys)
    assert "`xx` is not a known target language" in one_line_error(
        base + ["--source-lang", "en", "--target-lang", "xx"], capsys)
    assert not out.exists()


def test_quantize_measures_in_the_given_direction(m2m, data, tmp_path, capsys) -> None:
    out = tmp_path / "q"
    assert main(["quantize", str(m2m.path), str(out), "--mode", "int8", "--data", str(data[0]), "--references",
                 str(data[1]), "--source-lang", "en", "--target-lang", "de", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the BLEU before is the original's en->de translations of --data, scored by sacreBLEU here
    ours = [h[0].text for h in m2m.translate(LINES, source_lang="en", target_lang="de")]
    assert report["quality"]["before"]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(ours, [REFS]).score, abs=0.01)
    assert report["agreement"]["lines"] == len(LINES)
    # the report says which direction it measured (it did not), and the card's usage translates in it
    assert report["languages"] == {"source": "en", "target": "de"}
    from modelport.modelcards import make_card

    card = make_card(out).text
    assert "--source-lang en --target-lang de" in card and "identical outputs (" in card and "en → de)" in card
    capsys.readouterr()
    assert main(["compare", str(m2m.path), str(out)]) == 0
    assert "(a pass: with the folder it was made from, translating en -> de)" in capsys.readouterr().out
    # the API takes the same keywords
    again = quantize(m2m.path, tmp_path / "q2", mode="int8", data=LINES, source_lang="en", target_lang="de")
    assert again.measured.agreement.lines == len(LINES) and again.measured.languages == ("en", "de")
    assert "direction:     en -> de" in again.summary_lines(tmp_path / "q2")


def test_prune_heads_by_importance_places_the_language_tokens(m2m, data, tmp_path) -> None:
    from modelport.passes.prune import _language_tokens, _teacher_forcing_batches

    tokens = _language_tokens(m2m, Direction("en", "de"))
    en, de = m2m.tokenizer.lang_ids["en"], m2m.tokenizer.lang_ids["de"]
    assert (tokens.before_source, tokens.after_source, tokens.forced_target) == ([en], [], [de])
    translations = [h[0].tokens for h in m2m.translate(LINES[:2], source_lang="en", target_lang="de")]
    reference = m2m.tokenizer.encode(REFS[0])
    batches = _teacher_forcing_batches(m2m.config, m2m.tokenizer, LINES[:2] + LINES[:1],
                                       translations + [reference], tokens)
    rows = {tuple(src[src.ne(m2m.config.pad_token_id)].tolist()): gold.tolist()
            for src_b, _, gold_b in batches for src, gold in zip(src_b, gold_b)}
    for line in LINES[:2]:
        assert (en, *m2m.tokenizer.encode(line)) in rows  # the source as translate encodes it
    for src_b, prev_b, gold_b in batches:
        assert gold_b[:, 0].eq(-100).all()  # the forced language token is not scored
        assert prev_b[:, 1].eq(de).all()  # and the decoder reads it, reference or translation
    report = prune(m2m.path, tmp_path / "p", heads=0.25, data=LINES, references=REFS, source_lang="en",
                   target_lang="de")
    assert "Michel" in report.changed["heads_criterion"]


def test_languages_apply_to_multilingual_ports_and_to_data_only(ported_default, data, tmp_path, capsys) -> None:
    base = ["quantize", str(ported_default.path), str(tmp_path / "q"), "--mode", "int8", "--source-lang", "en"]
    assert "give --data" in one_line_error(base, capsys)
    assert "has no language tokens" in one_line_error(base + ["--data", str(data[0])], capsys)


def test_distill_refuses_a_multilingual_teacher_before_making_anything(m2m, data, tmp_path, capsys) -> None:
    """It made its work directory, then failed asking for a --source-lang it does not offer."""
    out = tmp_path / "student"
    line = one_line_error(["distill", str(m2m.path), str(out), "--data", str(data[0])], capsys)
    assert "is a multilingual port (100 languages); distilling one is not supported" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.de", "data.en"]
