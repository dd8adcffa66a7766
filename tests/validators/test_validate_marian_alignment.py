"""``modelport validate`` on Marian ports: word alignments and lexical shortlists against pymarian.

Alignments: ``--alignment hard|soft|THRESHOLD`` (or decoder.yml's ``alignment``,
which the folder records) makes validate decode with ``pymarian decode
--alignment`` and compare Marian's printed alignment of every n-best entry with
the port's, on ``post_guided_align`` (trained with ``--guided-alignment``,
tests/data/marian-trained). A port that records another decoder layer than
Marian reads (``alignment_layer``) prints other alignments: exit 3, the first
differing line named. Shortlists: a copy of that model whose decoder.yml names
``lex.s2t 0 3 0.1`` (tests/data/marian-shortlist, built for these pieces) and
``alignment: hard``: validate checks both by default, pymarian with the
original file, the port with its folder's copy; the shortlist changes every
one of these lines, so identical outputs prove both sides applied it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import modelport
from modelport.cli import main
from tests.helpers.cli import one_line_error
from tests.helpers.paths import DATA, DEFAULT_MODEL, corpus_lines, write_lines
from tests.helpers.requires import requires

GUIDED = DATA / "marian-trained" / "post_guided_align"
LEX = DATA / "marian-shortlist" / "post_sep_tied.lex.s2t"  # post_guided_align's pieces (see its README.md)
N_LINES = 6
# decoder.yml's additions in the shortlist fixture: few words per batch, so the shortlist decides the outputs
DECODER_ADDITIONS = "shortlist:\n- lex.s2t\n- 0\n- 3\n- 0.1\nalignment: hard\n"

pymarian = requires("pymarian")


def _lines(n: int = N_LINES) -> list[str]:
    return corpus_lines(n)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lines(tmp_path_factory.mktemp("data") / "data.en", _lines())


@pytest.fixture(scope="module")
def guided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """post_guided_align converted (its decoder.yml asks for no alignment)."""
    return modelport.convert(str(GUIDED), tmp_path_factory.mktemp("guided") / "ported").path


@pytest.fixture(scope="module")
def shortlisted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the model directory whose decoder.yml names a shortlist and hard alignments, its port)."""
    root = tmp_path_factory.mktemp("shortlisted")
    source = root / "model"
    shutil.copytree(GUIDED, source)
    shutil.copy(LEX, source / "lex.s2t")
    with open(source / "decoder.yml", "a", encoding="utf-8") as f:
        f.write(DECODER_ADDITIONS)
    return source, modelport.convert(str(source), root / "ported").path


def _report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "parity_report.json").read_text(encoding="utf-8"))


def _validate(ported: Path, reference: Path, data: Path, *extra: str) -> list[str]:
    return ["validate", str(ported), "--reference", str(reference), "--data", str(data), "--only", "beam",
            "--nbest", "2", *extra]


def _alignment_note(report: dict[str, Any]) -> str:
    return next(n for n in report["meta"]["notes"] if n.startswith("alignments"))


def _edit_generation_config(folder: Path, **changes: Any) -> None:
    path = folder / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**config, **changes}), encoding="utf-8")


# ---------------------------------------------------------------------------
# alignments


@pymarian
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_alignments_agree_with_pymarian(mode: str, guided: Path, data: Path, capsys) -> None:
    assert main(_validate(guided, GUIDED, data, "--alignment", mode)) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    report = _report(guided)
    assert report["meta"]["options"]["alignment"] == mode
    note = _alignment_note(report)
    assert f"--alignment {mode}): {2 * N_LINES} of {2 * N_LINES} hypotheses on {N_LINES} of {N_LINES} lines" in note
    assert note in out  # the CLI prints the counts too
    assert report["beam"]["identical_lines"] == N_LINES and report["passed"]


@pymarian
def test_alignments_are_not_compared_unless_asked(guided: Path, data: Path, capsys) -> None:
    """decoder.yml asks for none: the default run prints and compares none."""
    assert main(_validate(guided, GUIDED, data)) == 0, capsys.readouterr().out
    report = _report(guided)
    assert not any(n.startswith("alignments") for n in report["meta"]["notes"])
    assert "alignment" not in report["meta"]["options"]


@pymarian
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_another_layer_exits_3_naming_the_first_line(mode: str, guided: Path, data: Path, tmp_path: Path,
                                                     capsys) -> None:
    """A port that records layer 1 where Marian reads the last (2 of 2): the
    translations are the same, the alignments are not."""
    broken = tmp_path / "broken"
    shutil.copytree(guided, broken)
    _edit_generation_config(broken, alignment_layer="1")
    line = one_line_error(_validate(broken, GUIDED, data, "--alignment", mode), capsys, code=3)
    assert f"alignments (--alignment {mode}) of" in line and "first: line 1, n-best entry 1: pymarian `" in line
    report = _report(broken)
    beam = report["beam"]
    assert {m["kind"] for m in beam["mismatches"]} == {"alignment"}  # nothing else differs
    assert beam["real_divergences"] == len(beam["mismatches"]) > 0 and not report["passed"]
    agreeing = int(_alignment_note(report).split("): ")[1].split(" of ")[0])
    assert agreeing == 2 * N_LINES - beam["real_divergences"]  # the counts: every mismatch is one disagreement


def test_comparison_rules() -> None:
    """Hard and threshold: Marian's string exactly; soft: each probability
    within half a unit of Marian's 6th printed digit (+2e-6 of float noise)."""
    from modelport.validators.beam import compare_alignments

    soft = [[0.7, 0.2, 0.1], [0.1, 0.15, 0.75]]
    assert compare_alignments("hard", [[(0, "0-0 2-1", soft)]]).passed
    assert compare_alignments(0.15, [[(0, "0-0 1-0 2-1", soft)]]).passed  # 0.15 is not above the threshold
    # per line the n-best ranks both sides translated alike (line 1's second differed: the beam check's)
    wrong = compare_alignments("hard", [[(0, "0-0 2-1", soft), (2, "0-0 1-1", soft)], [], [(0, "0-0 2-1", soft)]])
    assert (wrong.hypotheses, wrong.agreeing, wrong.lines, wrong.agreeing_lines) == (3, 2, 2, 1)
    assert wrong.mismatches == [{"line": 0, "hypothesis": 2, "kind": "alignment", "mode": "hard",
                                 "reference": "0-0 1-1", "modelport": "0-0 2-1"}]
    assert wrong.failure() == ("alignments (--alignment hard) of 1 of 2 lines differ from pymarian decode; first: "
                               "line 1, n-best entry 3: pymarian `0-0 1-1`, modelport `0-0 2-1`")
    printed = "0.700001,0.2,0.1 0.1,0.15,0.75"  # 1e-6 off: within the printed 6 digits
    assert compare_alignments("soft", [[(0, printed, soft)]]).passed
    far = compare_alignments("soft", [[(0, "0.70001,0.2,0.1 0.1,0.15,0.75", soft)]])
    assert not far.passed and far.mismatches[0]["beyond_printed_precision"] > 2e-6
    assert not compare_alignments("soft", [[(0, "0.7,0.2,0.1", soft)]]).passed  # a row missing
    assert not compare_alignments("hard", [[(0, None, soft)]]).passed  # Marian printed none


def test_alignment_on_another_port_is_refused(ported_default, data: Path, capsys) -> None:
    """Refused before anything is loaded: fairseq prints no Marian alignments."""
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data",
                           str(data), "--alignment", "hard"], capsys)
    assert "`alignment` compares Marian's word alignments" in line and "fairseq port" in line
    with pytest.raises(SystemExit) as info:  # argparse's type check, one line
        main(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data", str(data),
              "--alignment", "0"])
    assert info.value.code == 2
    assert "`--alignment` must be hard, soft or a threshold number > 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# decoder.yml's shortlist (and alignments): both on by default


@pymarian
def test_decoder_yml_shortlist_and_alignments_are_checked(shortlisted: tuple[Path, Path], data: Path,
                                                          capsys) -> None:
    from modelport.generation.translate import translate
    from modelport.validators.references.marian import MarianReference

    source, ported = shortlisted
    assert main(_validate(ported, source, data)) == 0, capsys.readouterr().out
    report = _report(ported)
    notes = report["meta"]["notes"]
    assert any(n.startswith("shortlist applied on both sides") and f"{source / 'lex.s2t'} 0 3 0.1" in n
               and "tokenizer/lex.s2t 0 3 0.1` (a byte-identical copy)" in n for n in notes), notes
    assert f"--alignment hard): {2 * N_LINES} of {2 * N_LINES}" in _alignment_note(report)
    assert report["beam"]["identical_lines"] == N_LINES
    # the shortlist decides these lines: without it Marian and the port translate otherwise, so the equal
    # outputs above mean both sides applied it
    ref = MarianReference(source)
    with_list = ref.decode(_lines(), beam_size=4)
    assert all(a[0].pieces != b[0].pieces for a, b in zip(with_list, ref.decode(_lines(), beam_size=4,
                                                                                  shortlist="none")))
    whole = translate(modelport.load(ported), _lines(), semantics="marian", shortlist="none")
    assert all(h[0].text != r[0].text for h, r in zip(whole, with_list))


@pymarian
def test_shortlist_and_alignments_turned_off_on_both_sides(shortlisted: tuple[Path, Path]) -> None:
    """``shortlist="none"``: pymarian reads decoder.yml without its shortlist
    (Marian has no flag for that), the port decodes the whole vocabulary."""
    from modelport.validators.run import validate

    source, ported = shortlisted
    report = validate(ported, str(source), _lines(), only="beam", shortlist="none", alignment="none", write=False)
    assert report.passed and report.beam.identical_lines == N_LINES  # type: ignore[union-attr]
    assert report.meta.notes == ["shortlist: none on either side (shortlist='none'; pymarian read decoder.yml "
                                 "without its own)"]


@pymarian
@pytest.mark.parametrize("change", ["values", "file"])
def test_a_port_with_another_shortlist_exits_3(change: str, shortlisted: tuple[Path, Path], data: Path,
                                               tmp_path: Path, capsys) -> None:
    source, ported = shortlisted
    broken = tmp_path / "broken"
    shutil.copytree(ported, broken)
    if change == "values":
        _edit_generation_config(broken, shortlist=["tokenizer/lex.s2t", 50, 10, 0.0])
    else:  # one word's translations dropped from the folder's copy
        lex = broken / "tokenizer" / "lex.s2t"
        rows = lex.read_text(encoding="utf-8").splitlines(keepends=True)
        word = rows[0].split()[1]
        lex.write_text("".join(r for r in rows if r.split()[1] != word), encoding="utf-8")
    line = one_line_error(_validate(broken, source, data), capsys, code=3)
    assert "the port's shortlist differs from the reference's decoder.yml shortlist" in line
    assert ("values" if change == "values" else "file contents") in line


# ---------------------------------------------------------------------------
# more modes, Marian's batching, longer n-best lists


@pymarian
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hard", "soft", 0.3, 0.05])
def test_alignment_modes_batched(mode: str | float, guided: Path, shortlisted: tuple[Path, Path]) -> None:
    """30 lines in Marian's batches of 8 (padding between sources), beam 4, 4-best, with and without the shortlist."""
    from modelport.validators.run import validate

    lines = _lines(30)
    for ported, reference in ((guided, GUIDED), (shortlisted[1], shortlisted[0])):
        report = validate(ported, str(reference), lines, only="beam", beam=4, nbest=4, alignment=mode,
                          mini_batch=8, maxi_batch=4, maxi_batch_sort="src", write=False)
        assert report.passed, report.failure
        assert report.beam.identical_lines == 30  # type: ignore[union-attr]
        assert "120 of 120 hypotheses on 30 of 30 lines" in report.meta.notes[-1]


@pymarian
@pytest.mark.slow
@pytest.mark.parametrize(("name", "mode"), [("post_sep_tied", "soft"), ("tiny11_ssru", "hard"),
                                            ("multi_target", 0.3)])
def test_other_trained_models_with_their_shortlist(name: str, mode: str | float, tmp_path: Path) -> None:
    """Models trained without guided alignment (Marian prints the same head),
    the SSRU student and a multilingual target, each with its shortlist in
    decoder.yml and alignments asked for there: exit 0 by default."""
    from modelport.validators.run import validate
    from tests.validators.test_marian_pymarian import _trained_lines

    source = tmp_path / "model"
    shutil.copytree(DATA / "marian-trained" / name, source)
    shutil.copy(DATA / "marian-shortlist" / f"{name}.lex.s2t", source / "lex.s2t")
    with open(source / "decoder.yml", "a", encoding="utf-8") as f:
        f.write(f"shortlist:\n- lex.s2t\n- 20\n- 5\nalignment: {mode}\n")
    ported = modelport.convert(str(source), tmp_path / "ported").path
    lines = _trained_lines(name, 30)
    report = validate(ported, str(source), lines, only="beam", beam=4, nbest=2, mini_batch=8, maxi_batch=4,
                      maxi_batch_sort="src", write=False)
    assert report.passed, report.failure
    assert report.meta.notes[0].startswith("shortlist applied on both sides")
    assert f"--alignment {mode}): 60 of 60 hypotheses on 30 of 30 lines" in report.meta.notes[1]
