"""Command-line faults (issue #12, item 9): symlinked outputs, read-only and
full file systems, Ctrl-C during imports and during a pass's measurement,
non-UTF-8 input, nonsensical decoding options, an error while a progress bar
is drawn. Each ends with exit 2 (130 for Ctrl-C) and one line, and leaves
nothing half-written."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import DEFAULT_MODEL
from tests.helpers.cli import one_line_error
from modelport.cli import main

LINES = ["Hello world.", "The cat sleeps on the sofa."]


def _no_leftovers(parent: Path, name: str) -> None:
    assert not os.path.lexists(parent / name), list(parent.iterdir())
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")], list(parent.iterdir())


def _input(tmp_path: Path, lines: list[str] = LINES) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _code_and_err(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code of ``modelport argv`` whether argparse exits or main returns."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _single_error_line(err: str) -> str:
    """The one error line, as a terminal shows stderr: a progress bar erased
    with carriage returns leaves nothing, and the message starts a line."""
    lines = [line.rsplit("\r", 1)[-1] for line in err.split("\n")]
    lines = [line for line in lines if line.strip()]
    assert len(lines) == 1, repr(err)
    assert lines[0].startswith("modelport: error: ") and "Traceback" not in err, repr(err)
    return lines[0]


# ---------------------------------------------------------------------------
# outputs that are symlinks


def test_cli_convert_to_dangling_symlink_is_refused_without_force(default_model_dir, tmp_path: Path,
                                                                   capsys) -> None:
    link = tmp_path / "out"
    os.symlink(tmp_path / "nowhere", link)
    line = one_line_error(["convert", str(default_model_dir), str(link)], capsys)
    assert "already exists" in line and "--force" in line
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    # with --force the link itself is replaced by the folder; its target is never written
    assert main(["convert", str(default_model_dir), str(link), "--force"]) == 0
    capsys.readouterr()
    assert not link.is_symlink() and (link / "config.json").is_file()
    assert not (tmp_path / "nowhere").exists()


def test_cli_translate_output_dangling_symlink_is_not_replaced(ported_default, tmp_path: Path, capsys) -> None:
    link = tmp_path / "out.txt"
    os.symlink(tmp_path / "nowhere.txt", link)
    line = one_line_error(["translate", str(ported_default.path), "-i", str(_input(tmp_path)), "-o", str(link)],
                          capsys)
    assert "already exists" in line and "--force" in line
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "nowhere.txt")


# ---------------------------------------------------------------------------
# outputs that are the input, or hold it: refused even with --force (writing them would delete the input)


@pytest.mark.parametrize("verb,options", [
    (["export", "onnx"], []), (["export", "hf"], []), (["export", "ct2"], []), (["quantize"], ["--mode", "int8"]),
    (["prune"], ["--decoder-layers", "1"]), (["distill"], ["--data", "{data}"]), (["convert"], []),
])
@pytest.mark.parametrize("where", ["itself", "its folder", "a part of it"])
def test_cli_output_that_would_delete_the_input_is_refused(verb: list[str], options: list[str], where: str,
                                                           ported_default, default_model_dir, tmp_path: Path,
                                                           capsys) -> None:
    import shutil

    source = tmp_path / "input"  # a copy: were the refusal missing, the shared fixture would be deleted
    shutil.copytree(default_model_dir if verb == ["convert"] else ported_default.path, source)
    before = sorted((p.name, p.is_dir()) for p in source.iterdir())
    part = source / ("tokenizer" if verb != ["convert"] else before[0][0])  # `export onnx port port/tokenizer`
    output = {"itself": source, "its folder": tmp_path, "a part of it": part}[where]
    options = [o.format(data=_input(tmp_path)) for o in options]
    line = one_line_error([*verb, str(source), str(output), *options, "--force"], capsys)
    said = {"itself": "is the input", "its folder": "holds the input", "a part of it": "is a part of the input"}
    assert f"the input `{source}`" in line and said[where] in line, line
    assert sorted((p.name, p.is_dir()) for p in source.iterdir()) == before


@pytest.mark.parametrize("target", ["the input file", "a file of the model", "the model folder"])
def test_cli_translate_output_onto_its_input_or_model_is_refused(target: str, ported_default, tmp_path: Path,
                                                                  capsys) -> None:
    import shutil

    folder = tmp_path / "port"  # a copy: were the refusal missing, the shared fixture would be overwritten
    shutil.copytree(ported_default.path, folder)
    source = _input(tmp_path)
    output = {"the input file": source, "a file of the model": folder / "config.json",
              "the model folder": folder}[target]
    before = {p: p.read_bytes() for p in [source, *folder.rglob("*")] if p.is_file()}
    line = one_line_error(["translate", str(folder), "-i", str(source), "-o", str(output), "--force"], capsys)
    assert f"output `{output}`" in line and "choose another output" in line, line
    assert {p: p.read_bytes() for p in [source, *folder.rglob("*")] if p.is_file()} == before


def test_cli_output_holding_an_ensemble_member_is_refused(default_model_dir, tmp_path: Path, capsys) -> None:
    import shutil

    source = tmp_path / "src"
    shutil.copytree(default_model_dir, source)
    shutil.copy(source / "model.pt", source / "b.pt")
    line = one_line_error(["convert", f"{source}/model.pt:{source}/b.pt", str(source), "--force"], capsys)
    assert f"holds the input `{source}/model.pt`" in line
    assert (source / "b.pt").is_file() and (source / "model.pt").is_file()


def test_cli_export_hf_without_transformers_is_one_line(ported_default, tmp_path: Path, capsys,
                                                        monkeypatch) -> None:
    """It was a ModuleNotFoundError traceback (exit 1) after loading the port."""
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)
    line = one_line_error(["export", "hf", str(ported_default.path), str(tmp_path / "out")], capsys)
    assert "`export hf` needs `transformers`, which is not installed here" in line
    assert not (tmp_path / "out").exists()


def test_cli_convert_with_a_language_it_has_no_dictionary_for(default_model_dir, tmp_path: Path, capsys) -> None:
    """The message said "the checkpoint translates fr->de" of an en->de checkpoint: fr was the user's."""
    line = one_line_error(["convert", str(default_model_dir), str(tmp_path / "out"), "--source-lang", "fr",
                           "--target-lang", "de"], capsys)
    assert "dict.fr.txt` does not exist (translating fr->de needs dict.fr.txt and dict.de.txt" in line
    # one language given, the other neither recorded nor found: it said to pass both
    line = one_line_error(["convert", str(default_model_dir), str(tmp_path / "out"), "--source-lang", "fr"], capsys)
    assert "no pair of dictionaries with fr fits its embeddings (found: dict.de.txt, dict.en.txt); pass " \
           "--target-lang too" in line


def test_cli_marian_max_length_names_the_line(ported_default, tmp_path: Path, capsys) -> None:
    """--max-length without --max-length-crop refuses a longer line by its number (the search only said
    "a source line")."""
    src = tmp_path / "in.en"
    src.write_text("Hi\nThe house is small and the garden is green.\n", encoding="utf-8")
    line = one_line_error(["translate", str(ported_default.path), "-i", str(src), "--semantics", "marian",
                           "--max-length", "4"], capsys)
    assert "line 2 has" in line and "`max_length` is 4" in line
    # sampling follows transformers' rules, where max_length is the output's: no source cap
    assert main(["translate", str(ported_default.path), "-i", str(src), "--semantics", "marian", "--max-length", "4",
                 "--sampling", "--seed", "1"]) == 0


@pytest.mark.parametrize("verb", [["validate", "--reference", "{model}"], ["quantize", "{out}", "--mode", "int8"],
                                  ["prune", "{out}", "--heads", "0.25"]])
def test_cli_references_must_pair_with_the_data(verb: list[str], ported_default, default_model_dir, tmp_path: Path,
                                                capsys) -> None:
    """sacreBLEU scored the first lines only: 5 references for 20 lines gave a BLEU and exit 0."""
    data, refs = tmp_path / "data.en", tmp_path / "refs.de"
    data.write_text("a\nb\nc\n", encoding="utf-8")
    refs.write_text("x\n", encoding="utf-8")
    args = [v.format(model=default_model_dir, out=tmp_path / "out") for v in verb]
    line = one_line_error([args[0], str(ported_default.path), *args[1:], "--data", str(data), "--references",
                           str(refs)], capsys)
    assert "references: 1 lines for 3 data lines (one reference per data line)" in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# what an output's permissions are: those of any new file (they were private, 0600, for translate -o and card)


def test_cli_outputs_get_the_mode_of_any_new_file(ported_default, tmp_path: Path, capsys) -> None:
    import shutil
    import stat

    folder = tmp_path / "port"
    shutil.copytree(ported_default.path, folder)
    old = os.umask(0o027)
    try:
        assert main(["translate", str(folder), "-i", str(_input(tmp_path)), "-o", str(tmp_path / "out.txt")]) == 0
        assert main(["card", str(folder)]) == 0
        assert main(["quantize", str(folder), str(tmp_path / "fp16"), "--mode", "fp16"]) == 0
        assert main(["convert", str(DEFAULT_MODEL), str(tmp_path / "conv")]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "out.txt") == mode(folder / "README.md") == 0o640
    assert mode(tmp_path / "fp16") == 0o750
    # safetensors made the weights 0600, unreadable by a serving account that reads every other file
    assert {p.name: mode(p) for p in (tmp_path / "fp16").iterdir() if p.is_file()} == \
        {p.name: 0o640 for p in (tmp_path / "fp16").iterdir() if p.is_file()}
    assert mode(tmp_path / "conv" / "model.safetensors") == mode(tmp_path / "conv" / "config.json") == 0o640


# ---------------------------------------------------------------------------
# read-only and full file systems

WRITE_ERRORS = [(errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied"),
                (errno.ENOSPC, "No space left on device")]


def _raiser(code: int, text: str):
    def fail(*args, **kwargs):
        raise OSError(code, text, str(args[0]) if args else None)
    return fail


@pytest.mark.parametrize("code,text", WRITE_ERRORS)
def test_cli_convert_write_failure_is_one_line(default_model_dir, tmp_path: Path, capsys, monkeypatch,
                                               code: int, text: str) -> None:
    import modelport.model.io

    monkeypatch.setattr(modelport.model.io, "_write_shard", _raiser(code, text))
    got, err = _code_and_err(["convert", str(default_model_dir), str(tmp_path / "out")], capsys)
    assert got == 2
    line = _single_error_line(err)  # the "writing weights" bar was drawn and erased
    assert text in line
    _no_leftovers(tmp_path, "out")


@pytest.mark.parametrize("code,text", WRITE_ERRORS)
def test_cli_quantize_write_failure_is_one_line(ported_default, tmp_path: Path, capsys, monkeypatch,
                                                code: int, text: str) -> None:
    import modelport.model.io

    monkeypatch.setattr(modelport.model.io, "_write_shard", _raiser(code, text))
    line = one_line_error(["quantize", str(ported_default.path), str(tmp_path / "q"), "--mode", "fp16"], capsys)
    assert text in line
    _no_leftovers(tmp_path, "q")


@pytest.mark.parametrize("code,text", WRITE_ERRORS)
def test_cli_translate_output_write_failure_is_one_line(ported_default, tmp_path: Path, capsys, monkeypatch,
                                                        code: int, text: str) -> None:
    import tempfile

    src = _input(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", _raiser(code, text))
    line = one_line_error(["translate", str(ported_default.path), "-i", str(src), "-o", str(tmp_path / "o.txt")],
                          capsys)
    assert text in line
    _no_leftovers(tmp_path, "o.txt")


@pytest.mark.parametrize("verb", [["translate", "{port}", "-i", "{src}", "-o"], ["convert", "{model}"],
                                  ["quantize", "{port}", "--mode", "fp16"], ["prune", "{port}", "--ffn", "0.5"],
                                  ["export", "onnx", "{port}"], ["distill", "{port}", "--data", "{src}"]])
def test_cli_output_below_a_file_is_one_line(verb: list[str], ported_default, default_model_dir, tmp_path: Path,
                                            capsys, monkeypatch) -> None:
    """An output path through a file exited 1 with a FileExistsError traceback (translate -o, and every
    folder output); a missing folder on the way is made. The folder outputs are refused before the work
    (no weight is read), not when the finished folder is renamed into place."""
    if verb[0] != "translate":
        monkeypatch.setattr("modelport.model.folder.load_checked_weights",
                            lambda *a, **k: pytest.fail("weights were read before the output was refused"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x\n", encoding="utf-8")
    args = [v.format(port=ported_default.path, src=_input(tmp_path), model=default_model_dir) for v in verb]
    line = one_line_error([*args, str(blocker / "out")], capsys)
    assert f"cannot write `{blocker / 'out'}`: its folder cannot be made there (`" in line and "is a file" in line
    assert blocker.read_text(encoding="utf-8") == "x\n"
    if verb[0] == "translate":
        assert main([*args, str(tmp_path / "new" / "deeper" / "out.txt")]) == 0
        assert (tmp_path / "new" / "deeper" / "out.txt").read_text(encoding="utf-8")


def test_cli_card_write_failure_is_one_line(ported_default, tmp_path: Path, capsys, monkeypatch) -> None:
    import shutil
    import tempfile

    folder = tmp_path / "port"
    shutil.copytree(ported_default.path, folder)
    monkeypatch.setattr(tempfile, "mkstemp", _raiser(errno.EROFS, "Read-only file system"))
    line = one_line_error(["card", str(folder)], capsys)
    assert "Read-only file system" in line
    assert not (folder / "README.md").exists()


# ---------------------------------------------------------------------------
# Ctrl-C

_INTERRUPT_ON_TORCH_IMPORT = """
import importlib.abc, sys

class Interrupt(importlib.abc.MetaPathFinder):
    # what a Ctrl-C while torch is being imported looks like to Python
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
from modelport.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_interrupt_during_imports_exits_130_without_traceback(ported_default, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_ON_TORCH_IMPORT, "translate", str(ported_default.path),
                           "-i", str(_input(tmp_path))], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert proc.stderr == "modelport: interrupted\n"


def test_cli_interrupt_while_parsing_exits_130(monkeypatch, capsys) -> None:
    import modelport.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(modelport.cli, "build_parser", interrupted)
    try:
        code = main(["--version"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped modelport.cli.main")
    assert code == 130
    assert capsys.readouterr().err == "modelport: interrupted\n"


@pytest.mark.parametrize("command", ["quantize", "prune"])
def test_cli_interrupt_while_measuring_leaves_no_output(command: str, ported_default, tmp_path: Path, capsys,
                                                        monkeypatch) -> None:
    """Ctrl-C while a pass measures its result: the output folder is written
    only after the measurement (with its report), so nothing is left."""
    import importlib

    module = importlib.import_module(f"modelport.passes.{command}")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "measure", interrupted)
    options = ["--mode", "fp16"] if command == "quantize" else ["--decoder-layers", "2"]
    code = main([command, str(ported_default.path), str(tmp_path / "out"), *options,
                 "--data", str(_input(tmp_path))])
    assert code == 130
    assert capsys.readouterr().err.endswith("modelport: interrupted\n")
    _no_leftovers(tmp_path, "out")


# ---------------------------------------------------------------------------
# non-UTF-8 input


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])  # a UTF-8 locale, and the C/POSIX locale
@pytest.mark.parametrize("command", ["tokenize", "translate"])
def test_cli_non_utf8_stdin_names_the_line(command: str, errors: str, ported_default, capsys,
                                           monkeypatch) -> None:
    data = b"Hello world.\nBad \xff\xfe bytes.\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors=errors))
    line = one_line_error([command, str(ported_default.path)], capsys)
    assert "line 2" in line and "UTF-8" in line


def test_cli_non_utf8_input_file_names_the_line(ported_default, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(b"one\ntwo\nthree \xc3\x28\n")
    line = one_line_error(["translate", str(ported_default.path), "-i", str(src)], capsys)
    assert "line 3" in line and "UTF-8" in line


# ---------------------------------------------------------------------------
# decoding options that mean nothing


@pytest.mark.parametrize("options,flag", [
    (["--beam", "0"], "--beam"),
    (["--beam", "-3"], "--beam"),
    (["--nbest", "0"], "--nbest"),
    (["--beam", "2", "--nbest", "3"], "--nbest"),
    (["--batch-size", "0"], "--batch-size"),
    (["--max-tokens", "-5"], "--max-tokens"),
    (["--sampling", "--temperature", "0"], "--temperature"),
    (["--sampling", "--temperature", "-1"], "--temperature"),
    (["--sampling", "--sampling-topp", "1.5"], "--sampling-topp"),
    (["--sampling", "--sampling-topk", "0"], "--sampling-topk"),
    (["--sampling", "--nbest", "2"], "nbest"),  # one sample per line was printed, the request dropped silently
    (["--min-len", "-1"], "--min-len"),
    (["--max-len-b", "-1"], "min_len"),  # a length cap below min_len (1): the message says what the cap is
    (["--semantics", "marian", "--lenpen", "-0.5"], "--lenpen"),
    (["--semantics", "marian", "--normalize", "-1"], "--normalize"),
    (["--max-len-a", "inf"], "--max-len-a"),  # these three exited 1 with a traceback
    (["--unkpen", "nan"], "--unkpen"),
    (["--semantics", "marian", "--word-penalty", "nan"], "--word-penalty"),
])
def test_cli_bad_decoding_option_exits_2_with_one_line(options: list[str], flag: str, ported_default,
                                                       tmp_path: Path, capsys) -> None:
    code, err = _code_and_err(["translate", str(ported_default.path), "-i", str(_input(tmp_path)), *options],
                              capsys)
    assert code == 2, err
    line = _single_error_line(err)
    assert f"`{flag}`" in line, line


# ---------------------------------------------------------------------------
# an error while the progress bar is drawn


def test_cli_error_after_progress_bar_starts_on_its_own_line(ported_default, tmp_path: Path, capsys,
                                                             monkeypatch) -> None:
    """The second batch fails while the bar is drawn (stderr a terminal): the
    error line starts at the left margin, not after the bar."""
    import importlib

    from modelport.errors import InvalidInputError

    translate_module = importlib.import_module("modelport.generation.translate")
    real = translate_module.generate
    calls = []

    def second_batch_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise InvalidInputError("`line 2` cannot be decoded")
        return real(*args, **kwargs)

    monkeypatch.setattr(translate_module, "generate", second_batch_fails)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress bars are drawn on terminals
    # --max-tokens 1: one line per search (translate decodes consecutive --batch-size batches together)
    code = main(["translate", str(ported_default.path), "-i", str(_input(tmp_path)), "--max-tokens", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "|" in err  # the bar was drawn
    assert err.endswith("\n") and err.count("modelport: error:") == 1
    # what a terminal shows of the last line: the text after its last carriage return
    assert err[:-1].split("\n")[-1].rsplit("\r", 1)[-1] == "modelport: error: `line 2` cannot be decoded", repr(err)


@pytest.mark.parametrize("command", ["translate", "tokenize"])
def test_a_device_as_input_is_refused(command: str, ported_default, capsys) -> None:
    """`-i /dev/zero` read until memory ran out (MemoryError after 5.5 GB): it has no lines and no end."""
    line = one_line_error([command, str(ported_default.path), "-i", "/dev/zero"], capsys)
    assert "must be a file or a pipe, but is a device" in line
