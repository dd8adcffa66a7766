"""The commands on a Marian port (a trained multilingual-target fixture).

Such a model reads its target language from a ``>>xxx<<`` token that begins each source line (as Marian
does): ``inspect`` lists the tokens, and ``--target-lang`` is refused with how to write the token (it said
only that the tokenizer has no language tokens). ``translate --sampling`` works on a Marian port (it
failed: "batch_widths are not known to the sampling semantics")."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.cli import main
from tests.helpers.cli import one_line_error
from tests.helpers.paths import ROOT

MULTI = ROOT / "tests" / "data" / "marian-trained" / "multi_target"


@pytest.fixture(scope="module")
def ported_multi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multi") / "port"
    assert main(["convert", str(MULTI), str(out)]) == 0
    return out


def test_inspect_lists_the_target_language_tokens(ported_multi: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["inspect", str(ported_multi)]) == 0
    assert "target language tokens (2; begin each source line with one): >>deu<<, >>pgl<<" in capsys.readouterr().out


def test_target_lang_says_how_to_choose_the_language(ported_multi: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.en"
    src.write_text("Hello\n", encoding="utf-8")
    line = one_line_error(["translate", str(ported_multi), "-i", str(src), "--target-lang", "de"], capsys)
    assert "(`>>deu<< Hello`; it knows >>deu<<, >>pgl<<): write it in the input" in line


def test_sampling_translates(ported_multi: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.en"
    src.write_text(">>deu<< Hello\n>>deu<< The house is small.\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", str(ported_multi), "-i", str(src), "--sampling", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert len(first.splitlines()) == 2
    assert main(["translate", str(ported_multi), "-i", str(src), "--sampling", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first  # seeded


def test_lines_without_a_target_language_token_are_warned_about(ported_multi: Path, tmp_path: Path, capsys) -> None:
    """A multi-target model translates a line without `>>xxx<<` into no language in particular (Marian does
    the same, so the output stays); it did so silently. One warning line now says so, once per run."""
    import modelport

    src = tmp_path / "in.en"
    src.write_text(">>deu<< Good morning.\n\n>>pgl<< Hello.\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", str(ported_multi), "-i", str(src)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and err == ""  # every line marked (an empty line needs none)
    src.write_text("Good morning.\n>>pgl<< Hello.\nGood night.\n", encoding="utf-8")
    assert main(["translate", str(ported_multi), "-i", str(src)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert err.splitlines() == ["modelport: warning: some lines do not begin with a target-language token "
                                "(>>deu<<, >>pgl<<); this model translates them into no language in particular, as "
                                "Marian does: begin each line with one (`>>xxx<< text`)"]
    with pytest.warns(UserWarning, match="do not begin with a target-language token"):
        modelport.load(ported_multi).translate(["Good morning."])
