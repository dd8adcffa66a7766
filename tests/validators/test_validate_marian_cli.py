"""``modelport validate``'s Marian decoding flags (--normalize, --word-penalty,
--max-length[-factor|-crop], --mini-batch, --maxi-batch[-sort], --allow-unk,
--shortlist).

They come from the same :data:`~modelport.generation.semantics.DECODING_OPTIONS`
entries as ``translate``'s (``search_only_semantics``: Marian ports only). On a
Marian port both sides decode with them: the port, and ``pymarian decode``
given the same option (a spy on :class:`MarianReference` shows what it was
given, and identical n-best lists with scores within Marian's printed precision
show the port used the same values). A fairseq or T5 port refuses them by flag,
before its weights or its reference framework are loaded (exit 2, one line).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import modelport
from modelport.cli import build_parser, main
from modelport.errors import InvalidInputError
from modelport.generation.semantics import DECODING_OPTIONS
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS, DATA, DEFAULT_MODEL, corpus_lines, write_lines
from tests.helpers.requires import requires

pymarian = requires("pymarian")

SEP_TIED = DATA / "marian-trained" / "post_sep_tied"  # decoder.yml: beam 4, normalize 0.6, mini-batch 1
LEX = DATA / "marian-shortlist" / "post_sep_tied.lex.s2t"
MARIAN_FLAGS = ("--normalize", "--word-penalty", "--max-length", "--max-length-factor", "--max-length-crop",
                "--mini-batch", "--maxi-batch", "--maxi-batch-sort", "--allow-unk", "--shortlist")
N_LINES = 12


def _help(capsys) -> str:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["validate", "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def _lines(n: int = N_LINES) -> list[str]:
    return corpus_lines(n)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lines(tmp_path_factory.mktemp("data") / "data.en", _lines())


# ---------------------------------------------------------------------------
# the flags: offered, parsed, passed on


def test_help_lists_the_marian_flags_as_translate_has_them(capsys) -> None:
    text = _help(capsys)
    for flag in MARIAN_FLAGS:
        opt = next(o for o in DECODING_OPTIONS if o.flag == flag)
        both = flag == "--max-length"  # also generate's max_length: T5 ports take it too
        assert opt.search_only_semantics == (("marian", "hf") if both else ("marian",)), flag
        assert opt.search_only_help is not None and opt.search_only_help.startswith("Marian ports: ")
        assert " ".join(opt.search_only_help.split()) in text, flag
        assert opt.search_only_help.endswith("the reference is given the same option" if both else
                                             "pymarian decode is given the same option"), flag
    assert "--normalize [ALPHA]" in text and "--shortlist ARG [ARG ...]" in text
    assert "--shortlist opus-mt/lex.s2t 50 50 # Marian ports" in text  # the example


def _captured(monkeypatch: pytest.MonkeyPatch, folder: Path, argv: list[str]) -> dict[str, Any]:
    """The keywords ``modelport validate FOLDER ... ARGV`` gives ``validate()`` (stubbed: nothing is loaded)."""
    import modelport.validators.run as run

    got: dict[str, Any] = {}

    def fake(ported_dir: Any, reference: Any, lines: Any, **kwargs: Any) -> Any:
        got.update(kwargs)
        return SimpleNamespace(summary_lines=lambda: [], meta=SimpleNamespace(notes=[]), passed=True)

    monkeypatch.setattr(run, "validate", fake)
    assert main(["validate", str(folder), "--reference", "ref", "--data", str(CORPUS / "test.en"), *argv]) == 0
    return got


def test_flags_become_validate_keywords(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    got = _captured(monkeypatch, tmp_path, ["--beam", "4", "--normalize", "0.6", "--word-penalty", "0.1",
                                            "--max-length", "80", "--max-length-factor", "2.5", "--max-length-crop",
                                            "--mini-batch", "8", "--maxi-batch", "10", "--maxi-batch-sort", "trg",
                                            "--allow-unk", "--shortlist", "lex.s2t", "50", "10", "0.1"])
    marian = {k: got[k] for k in got if k in {o.name for o in DECODING_OPTIONS if o.search_only_semantics}}
    assert marian == {"normalize": 0.6, "word_penalty": 0.1, "max_length": 80, "max_length_factor": 2.5,
                      "max_length_crop": True, "mini_batch": 8, "maxi_batch": 10, "maxi_batch_sort": "trg",
                      "allow_unk": True, "shortlist": ["lex.s2t", "50", "10", "0.1"]}
    assert got["beam"] == 4


def test_flags_not_given_are_left_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    got = _captured(monkeypatch, tmp_path, ["--normalize", "--shortlist", "none"])
    assert got["normalize"] == 1.0 and got["shortlist"] == ["none"]  # a bare --normalize is 1.0, as Marian's
    assert not {"word_penalty", "max_length", "mini_batch", "allow_unk", "max_length_crop"} & set(got)


def test_bad_values_are_argparse_errors(capsys) -> None:
    for argv in (["--mini-batch", "0"], ["--maxi-batch-sort", "random"], ["--normalize", "-1"]):
        with pytest.raises(SystemExit) as info:
            main(["validate", "ported", "--reference", "ref", "--data", "x", *argv])
        assert info.value.code == 2
        assert argv[0] in capsys.readouterr().err


# ---------------------------------------------------------------------------
# other ports refuse them, before anything is loaded


@pytest.fixture
def nothing_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a port (its weights) is a test failure: the refusal must come first."""
    import modelport.validators.run as run

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the port was loaded before its options were checked")

    monkeypatch.setattr(run, "load", fail)


def test_fairseq_port_refuses_marian_flags(ported_default, data: Path, nothing_loads, capsys) -> None:
    base = ["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data", str(data)]
    line = one_line_error([*base, "--normalize", "0.6"], capsys)
    assert line == ("modelport: error: `--normalize` needs a marian port (validate gives it to that port's "
                    "reference too), but this is a fairseq port; leave it out")
    line = one_line_error([*base, "--beam", "4", "--shortlist", str(LEX), "--mini-batch", "8", "--allow-unk"],
                          capsys)
    assert line.endswith("`--mini-batch`, `--allow-unk`, `--shortlist` need a marian port (validate gives them "
                         "to that port's reference too), but this is a fairseq port; leave them out")


def test_api_refuses_them_too(ported_default, nothing_loads) -> None:
    from modelport.validators.run import validate

    with pytest.raises(InvalidInputError, match="`--word-penalty` needs a marian port .*, but this is a fairseq port"):
        validate(ported_default.path, str(DEFAULT_MODEL), ["Hello."], word_penalty=0.5)


@requires("transformers")
def test_t5_port_refuses_marian_only_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A T5 port refuses Marian's --normalize; --max-length, also generate's
    max_length, it takes (tests/validators/test_validate_t5.py runs it)."""
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "hf", "v1.1", seed=5)
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "ported").path
    import modelport.validators.run as run

    monkeypatch.setattr(run, "load", lambda *a, **k: pytest.fail("the port was loaded"))
    capsys.readouterr()  # transformers' and convert's progress
    line = one_line_error(["validate", str(ported), "--reference", str(tmp_path / "hf"), "--data",
                           str(CORPUS / "test.en"), "--max-length", "20", "--normalize", "1"], capsys)
    assert line.endswith("`--normalize` needs a marian port (validate gives it to that port's reference too), but "
                         "this is a t5 port; leave it out")


def test_marian_port_refuses_batch_size_and_max_tokens(nothing_loads, data: Path, capsys) -> None:
    """Both sides of a Marian port are batched as marian-decoder does (its caps depend on it):
    --batch-size and --max-tokens are refused, not ignored."""
    port = modelport.convert(str(SEP_TIED), data.parent / "refuse_port").path
    line = one_line_error(["validate", str(port), "--reference", str(SEP_TIED), "--data", str(data),
                           "--batch-size", "8", "--max-tokens", "100"], capsys)
    assert line.startswith("modelport: error: `--batch-size`, `--max-tokens` cannot batch a Marian port")
    from modelport.validators.run import validate

    with pytest.raises(InvalidInputError, match="`--batch-size` cannot batch a Marian port"):
        validate(port, str(SEP_TIED), ["Hello."], batch_size=4)


# ---------------------------------------------------------------------------
# Marian ports: both sides decode with them


@pytest.fixture(scope="module")
def sep_tied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return modelport.convert(str(SEP_TIED), tmp_path_factory.mktemp("sep_tied") / "ported").path


def test_marian_port_refuses_fairseq_flags(sep_tied: Path, data: Path, nothing_loads, capsys) -> None:
    """The other way round: options only fairseq's (or transformers') search reads are refused
    on a Marian port, not ignored: Marian has no minimum length, no unknown-word penalty."""
    line = one_line_error(["validate", str(sep_tied), "--reference", str(SEP_TIED), "--data", str(data),
                           "--beam", "4", "--min-len", "3", "--unkpen", "1"], capsys)
    assert line == ("modelport: error: `--min-len` needs a fairseq or t5 port (validate gives it to that port's "
                    "reference too); `--unkpen` needs a fairseq port (validate gives it to that port's reference "
                    "too), but this is a marian port; leave them out")


@pytest.fixture
def pymarian_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keywords each ``MarianReference.decode`` call was given (the call itself runs)."""
    from modelport.validators.references.marian import MarianReference

    calls: list[dict[str, Any]] = []
    decode = MarianReference.decode

    def spy(self: MarianReference, lines: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return decode(self, lines, **kwargs)

    monkeypatch.setattr(MarianReference, "decode", spy)
    return calls


def _report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "parity_report.json").read_text(encoding="utf-8"))


@pymarian
def test_marian_flags_reach_both_sides(sep_tied: Path, data: Path, tmp_path: Path,
                                       pymarian_calls: list[dict[str, Any]], capsys) -> None:
    """Values other than decoder.yml's (normalize 0.6, beam 4, batches of 1):
    were one side to keep decoder.yml's, the scores would differ (exit 3)."""
    argv = ["validate", str(sep_tied), "--reference", str(SEP_TIED), "--data", str(data), "--only", "beam",
            "--report", str(tmp_path), "--beam", "3", "--nbest", "2", "--normalize", "1.0", "--word-penalty", "0.1",
            "--mini-batch", "8", "--maxi-batch", "10", "--maxi-batch-sort", "none", "--max-length-factor", "2"]
    assert main(argv) == 0, capsys.readouterr().out
    given = {"beam_size": 3, "normalize": 1.0, "word_penalty": 0.1, "mini_batch": 8, "maxi_batch": 10,
             "maxi_batch_sort": "none", "max_length_factor": 2.0}
    assert len(pymarian_calls) == 1 and given.items() <= pymarian_calls[0].items()
    report = _report(tmp_path)
    assert given.items() <= report["meta"]["options"].items()
    assert report["passed"] and report["beam"]["identical_lines"] == N_LINES
    assert report["beam"]["hypotheses"] == 2 * N_LINES


@pymarian
def test_shortlist_flag_reaches_both_sides(sep_tied: Path, data: Path, tmp_path: Path,
                                           pymarian_calls: list[dict[str, Any]], capsys) -> None:
    """``--shortlist FILE 0 3 0.1`` (decoder.yml names none): pymarian decode
    and the port both apply it; it changes Marian's translations of these
    lines, so identical outputs mean the port applied it too."""
    from modelport.validators.references.marian import MarianReference

    argv = ["validate", str(sep_tied), "--reference", str(SEP_TIED), "--data", str(data), "--only", "beam",
            "--report", str(tmp_path), "--shortlist", str(LEX), "0", "3", "0.1"]
    assert main(argv) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    note = f"shortlist applied on both sides: {LEX} 0 3 0.1 (given to validate)"
    assert f"note:      {note}" in out
    report = _report(tmp_path)
    assert report["meta"]["notes"] == [note] and report["passed"]
    assert report["meta"]["options"]["shortlist"] == [str(LEX), "0", "3", "0.1"]
    assert report["beam"]["identical_lines"] == N_LINES
    assert pymarian_calls[0]["shortlist"] == [str(LEX), "0", "3", "0.1"]
    pymarian_calls.clear()
    lines = _lines()
    ref = MarianReference(SEP_TIED)
    with_list = ref.decode(lines, shortlist=[str(LEX), "0", "3", "0.1"])
    without = ref.decode(lines)
    assert sum(a[0].pieces != b[0].pieces for a, b in zip(with_list, without)) >= N_LINES // 2


@pytest.mark.parametrize("argv,said", [
    (["--word-penalty", "1e308"], "`--word-penalty` must be a number that a float32 holds"),
    (["--max-length-factor", "1e300"], "`--max-length-factor` must be a number > 0 that a float32 holds"),
    (["--shortlist", "{missing}"], "does not exist"),
    (["--shortlist", "{folder}"], "must be a file, but is a directory"),
])
def test_values_marian_aborts_on_are_one_line_before_pymarian_runs(argv: list[str], said: str, sep_tied: Path,
                                                                   data: Path, tmp_path: Path,
                                                                   pymarian_calls: list[dict[str, Any]],
                                                                   capsys) -> None:
    """pymarian aborted on them (its options are float32; a shortlist it cannot open), a RuntimeError exit 1."""
    argv = ["validate", str(sep_tied), "--reference", str(SEP_TIED), "--data", str(data), "--report", str(tmp_path),
            *(a.format(missing=tmp_path / "missing.lex", folder=tmp_path) for a in argv)]
    if "float32" in said:  # refused by the flag's parser (argparse exits 2)
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        line = capsys.readouterr().err.strip()
    else:
        line = one_line_error(argv, capsys)
    assert said in line and "\n" not in line, line
    assert pymarian_calls == []


def test_marian_float_options_past_float32_are_refused_from_python(sep_tied: Path, tmp_path: Path,
                                                                   pymarian_calls: list[dict[str, Any]]) -> None:
    """marian-decoder reads them as float32 and aborts past its range ("Not implemented")."""
    from modelport.validators.run import validate

    with pytest.raises(InvalidInputError, match="`word_penalty` must be a number that a float32 holds"):
        validate(sep_tied, str(SEP_TIED), _lines(2), decoding={"word_penalty": 1e308}, report_dir=tmp_path)
    assert pymarian_calls == []
    port = modelport.load(sep_tied)
    for name, value in (("word_penalty", -1e39), ("max_length_factor", 1e300), ("normalize", 1e39)):
        with pytest.raises(InvalidInputError, match=f"`{name}` must be a number .*that a float32 holds"):
            port.translate(["Hello"], **{name: value})
    assert port.translate(["Hello"], max_length_factor=3e38)[0][0].text  # within float32: no cap but positions
