"""`modelport tokenize` on a multilingual port (assets/fixture-m2m): the source
ids as `translate` gives them to the encoder, the language tokens placed."""

from __future__ import annotations

from tests.helpers.cli import main, one_line_error
from tests.helpers.paths import ROOT

LINES = (ROOT / "assets" / "fixture-m2m" / "test.en").read_text(encoding="utf-8").splitlines()[:4]


def test_tokenize_shows_the_source_as_the_encoder_reads_it(ported_m2m, tmp_path, capsys) -> None:
    """`tokenize` printed a multilingual port's ids without the language token that `translate` puts first, so
    it did not show what the encoder reads; --source-lang/--target-lang place it."""
    data = tmp_path / "in.en"
    data.write_text("".join(x + "\n" for x in LINES), encoding="utf-8")
    base = ["tokenize", str(ported_m2m.path), "-i", str(data)]
    capsys.readouterr()
    assert main([*base, "--source-lang", "en", "--target-lang", "de"]) == 0
    en, tok = ported_m2m.tokenizer.lang_ids["en"], ported_m2m.tokenizer
    assert capsys.readouterr().out.splitlines() == [" ".join(map(str, [en, *tok.encode(x)])) for x in LINES]
    assert main([*base, "--source-lang", "en", "--target-lang", "de", "--tokens"]) == 0
    assert capsys.readouterr().out.splitlines() == [" ".join(["__en__", *tok.pieces(x)]) for x in LINES]
    assert "pass the target language" in one_line_error([*base, "--source-lang", "en"], capsys)
    assert "do not apply to --decode" in one_line_error([*base, "--decode", "--source-lang", "en",
                                                         "--target-lang", "de"], capsys)
