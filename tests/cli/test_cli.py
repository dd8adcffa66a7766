"""The command line end to end on the embedded model: tokenize, translate,
validate (exit 0 on the faithful port, exit 3 on a perturbed one)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS
from tests.helpers.requires import requires
from modelport.cli import main



@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "in.en"
    path.write_text("\n".join((CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:6]) + "\n")
    return path


def test_tokenize_ids_tokens_and_decode(ported_default, lines, tmp_path, capsys) -> None:
    tok = ported_default.tokenizer
    text = lines.read_text().splitlines()
    assert main(["tokenize", str(ported_default.path), "-i", str(lines)]) == 0
    ids = capsys.readouterr().out.splitlines()
    assert [list(map(int, x.split())) for x in ids] == [tok.encode(x) for x in text]
    assert main(["tokenize", str(ported_default.path), "-i", str(lines), "--tokens"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == " ".join(tok.tokenize(text[0]))
    target_ids = tmp_path / "ids.txt"
    target_ids.write_text(" ".join(map(str, tok.encode_target("Das Haus ist klein."))) + "\n")
    assert main(["tokenize", str(ported_default.path), "-i", str(target_ids), "--decode"]) == 0
    assert capsys.readouterr().out.strip() == "Das Haus ist klein."
    bad = tmp_path / "bad.txt"
    bad.write_text("12 x 7\n")
    assert "integer ids" in one_line_error(["tokenize", str(ported_default.path), "-i", str(bad), "--decode"],
                                           capsys)


def test_translate_writes_atomically_and_respects_force(ported_default, lines, tmp_path, capsys) -> None:
    out = tmp_path / "out.de"
    assert main(["translate", str(ported_default.path), "-i", str(lines), "-o", str(out), "--beam", "4"]) == 0
    capsys.readouterr()  # the progress bar
    got = out.read_text().splitlines()
    assert got == [h[0]["text"] for h in ported_default.translate(lines.read_text().splitlines(), beam=4)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.de")]
    assert "--force" in one_line_error(["translate", str(ported_default.path), "-i", str(lines), "-o", str(out)],
                                       capsys)
    assert out.read_text().splitlines() == got
    # sampling ignores the folder's beam-search defaults
    assert main(["translate", str(ported_default.path), "-i", str(lines), "--sampling", "--seed", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(got)
    assert "needs --sampling" in one_line_error(["translate", str(ported_default.path), "-i", str(lines),
                                                 "--sampling-topk", "3"], capsys)


@pytest.mark.parametrize("argv,help_of", [(["translate", "{port}", "--bogus"], "modelport translate --help"),
                                          (["export", "onnx", "{port}", "{out}", "--bogus"],
                                           "modelport export onnx --help")])
def test_an_unknown_flag_points_at_its_commands_help(argv, help_of, ported_default, tmp_path, capsys) -> None:
    """It said `see modelport --help`, which does not list a command's flags."""
    argv = [a.format(port=ported_default.path, out=tmp_path / "out") for a in argv]
    with pytest.raises(SystemExit) as exit_:  # argparse's own exit, as for every usage error
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err == f"modelport: error: unrecognized arguments: --bogus (see `{help_of}`)\n"


@pytest.mark.parametrize("flag", [["--options"], ["--format", "fairseq"], ["--source-lang", "en"]])
def test_inspect_refuses_checkpoint_flags_on_a_ported_folder(flag, ported_default, capsys) -> None:
    """They were accepted and ignored, as if they had done something."""
    line = one_line_error(["inspect", str(ported_default.path), *flag], capsys)
    assert f"{flag[0]} applies to a foreign checkpoint" in line and "is a ported folder" in line


def test_compare_plot_must_be_named_png(ported_default, tmp_path, capsys) -> None:
    """A PNG was written under plot.txt."""
    line = one_line_error(["compare", str(ported_default.path), "--plot", str(tmp_path / "plot.txt")], capsys)
    assert "must be a .png file name" in line and not (tmp_path / "plot.txt").exists()


def test_translate_to_a_directory_is_refused_before_the_work(ported_default, lines, tmp_path, capsys) -> None:
    """`-o DIR --force` translated everything, then failed renaming into the directory (IsADirectoryError, exit 1)."""
    (tmp_path / "dir").mkdir()
    line = one_line_error(["translate", str(ported_default.path), "-i", str(lines), "-o", str(tmp_path / "dir"),
                           "--force"], capsys)
    assert "is a directory" in line and list((tmp_path / "dir").iterdir()) == []


def test_one_output_line_per_hypothesis_whatever_the_text_holds(ported_default, lines, tmp_path, capsys,
                                                               monkeypatch) -> None:
    """A byte-level BPE model (BART) decodes its \\n and \\r pieces into the text: written as they were, 100
    input lines gave 128 output lines. --json keeps the text whole."""
    import modelport.generation.translate as translate

    monkeypatch.setattr(translate, "decode_text", lambda tok, ids, keep=False: "one\ntwo\rthree\tfour")
    n = len(lines.read_text().splitlines())
    assert main(["translate", str(ported_default.path), "-i", str(lines), "--scores"]) == 0
    captured = capsys.readouterr()
    assert [line.split("\t", 1)[1] for line in captured.out.splitlines()] == ["one two three\tfour"] * n
    assert captured.err.count("line break") == 1
    assert main(["translate", str(ported_default.path), "-i", str(lines), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["hypotheses"][0]["text"] for r in rows] == ["one\ntwo\rthree\tfour"] * n


@requires("fairseq")
def test_validate_passes_then_fails_on_a_perturbed_port(ported_default, default_model_dir, lines, tmp_path,
                                                        capfd) -> None:
    # capfd, not capsys: the fairseq reference writes through the file descriptors
    code = main(["validate", str(ported_default.path), "--reference", str(default_model_dir), "--data", str(lines),
                 "--report", str(tmp_path / "ok")])
    captured = capfd.readouterr()
    out = captured.out
    assert code == 0, captured
    assert "parity:    passed" in out, captured
    assert (tmp_path / "ok" / "parity_report.md").is_file()
    # --json: stdout is the report and nothing else (fastBPE's C++ chatter goes to stderr)
    assert main(["validate", str(ported_default.path), "--reference", str(default_model_dir), "--data",
                 str(lines), "--report", str(tmp_path / "json"), "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["passed"] is True

    broken = tmp_path / "broken"
    shutil.copytree(ported_default.path, broken)
    weights = load_file(broken / "model.safetensors")
    weights["decoder.layers.0.ffn.up.weight"] = weights["decoder.layers.0.ffn.up.weight"] * 1.5
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt", "modelport_aliases": "{}"})
    line = one_line_error(["validate", str(broken), "--reference", str(default_model_dir), "--data", str(lines),
                           "--only", "forward"], capfd, code=3)
    assert "parity failed" in line
    report = json.loads((broken / "parity_report.json").read_text())
    assert report["forward"]["first_divergent_module"] == "decoder.layers.0.ffn.up"
    assert report["forward"]["first_divergent_reference_module"] == "decoder.layers.0.fc1"


def test_validate_without_the_reference_framework_is_one_line(ported_default, default_model_dir, lines,
                                                                monkeypatch, capsys) -> None:
    """Where fairseq is not installed, validate says so and how to install it (exit 2), no traceback."""
    monkeypatch.setitem(sys.modules, "fairseq", None)  # what Python reads as "not installed"
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(default_model_dir),
                           "--data", str(lines), "--only", "forward"], capsys)
    assert "validating against fairseq needs `fairseq`, which is not installed here" in line
    assert "modelport[reference]" in line
