"""The flags a user of transformers / CTranslate2 reaches for: ``--device``,
``--dtype``, ``--threads`` on translate and validate (bad values: exit 2,
one line), and what reaches the terminal: ``--quiet`` (results and errors
only), ``--verbose`` (the other libraries' warnings and INFO logging) and, by
default, modelport's own warnings but not those of the libraries it drives,
with progress bars on a terminal only."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from modelport.cli import main
from modelport.cli.console import console, progress_shown
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS, ROOT
from tests.helpers.requires import requires

N_LINES = 40


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "test.en"
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines(True)[:N_LINES]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _error_line(argv: list[str], capsys) -> str:
    """The one ``modelport: error:`` line of a run that exits 2, whether
    argparse exits (a flag's value) or main returns (a typed error)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("modelport: error: "), err
    return lines[0]


def _translate(argv: list[str], capsys) -> list[str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out.splitlines()


def test_bfloat16_on_cpu_agrees_with_float32(ported_default, data: Path, capsys) -> None:
    port = str(ported_default.path)
    fp32 = _translate(["translate", port, "-i", str(data)], capsys)
    bf16 = _translate(["translate", port, "-i", str(data), "--device", "cpu", "--dtype", "bfloat16"], capsys)
    same = sum(a == b for a, b in zip(fp32, bf16))
    assert len(bf16) == len(fp32) == N_LINES
    assert same >= 0.9 * N_LINES, f"bf16 agrees with fp32 on {same}/{N_LINES} lines"


def test_threads_sets_torchs_thread_count(ported_default, data: Path, capsys) -> None:
    before = torch.get_num_threads()
    try:
        _translate(["translate", str(ported_default.path), "-i", str(data), "--threads", "1"], capsys)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["translate", "validate"])
@pytest.mark.parametrize("flags, expected", [
    (["--device", "gpu"], "`--device` must be cpu, cuda or cuda:N, but is 'gpu'"),
    (["--device", "cuda:x"], "`--device` must be cpu, cuda or cuda:N"),
    (["--threads", "0"], "`--threads` must be a positive integer, but is 0"),
    (["--dtype", "int8"], "`--dtype`: invalid choice: 'int8'"),
])
def test_bad_runtime_flags_exit_2(ported_default, data: Path, command: str, flags: list[str], expected: str,
                                  capsys) -> None:
    extra = ["--reference", str(ROOT / "assets" / "default-model"), "--data", str(data)] if command == "validate" \
        else []
    line = _error_line([command, str(ported_default.path), *extra, *flags], capsys)
    assert expected in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_exits_2_naming_it(ported_default, capsys) -> None:
    line = one_line_error(["translate", str(ported_default.path), "--device", "cuda"], capsys)
    assert "device `cuda` needs CUDA, but CUDA is not available" in line


@pytest.fixture(scope="module")
def int8_folder(ported_default, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import modelport

    out = tmp_path_factory.mktemp("int8") / "int8"
    modelport.quantize(ported_default.path, out, mode="int8")
    return out


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    """`modelport argv` in a fresh process (warnings fire once per process)."""
    return subprocess.run([sys.executable, "-m", "modelport.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("flag", [[], ["--quiet"]])
def test_an_int8_folder_translates_with_nothing_on_stderr(int8_folder: Path, data: Path, flag: list[str]) -> None:
    done = _run(*flag, "translate", str(int8_folder), "-i", str(data))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == N_LINES
    assert done.stderr == ""  # torch's deprecation notices on int8 loading do not reach the user


def test_quiet_after_the_command_name_too(ported_default, data: Path, capsys) -> None:
    _translate(["translate", str(ported_default.path), "-i", str(data), "-q"], capsys)
    line = _error_line(["-q", "translate", str(ported_default.path), "-i", str(data), "--verbose"], capsys)
    assert "not allowed with argument" in line  # one or the other


def test_quiet_still_prints_errors(capsys) -> None:
    line = one_line_error(["--quiet", "translate", "/nonexistent/port"], capsys)
    assert "/nonexistent/port" in line


def _emit() -> None:
    """One warning of a library modelport drives, one of modelport's own, one INFO record."""
    warnings.warn_explicit("third-party notice", UserWarning, "fairseq/x.py", 1, module="fairseq.x")
    warnings.warn_explicit("modelport notice", UserWarning, "modelport/x.py", 1, module="modelport.converters.base")
    logging.getLogger("modelport.test").info("info record")


@pytest.mark.parametrize("mode, shown", [
    ({}, ["modelport notice"]),
    ({"verbose": True}, ["third-party notice", "modelport notice", "info record"]),
    ({"quiet": True}, []),
])
def test_console_modes(mode: dict, shown: list[str], capsys) -> None:
    with warnings.catch_warnings(record=True) as caught:  # what would be shown, collected
        with console(**mode):
            _emit()
    seen = [str(w.message) for w in caught] + capsys.readouterr().err.splitlines()
    for text in ("third-party notice", "modelport notice", "info record"):
        assert any(text in line for line in seen) == (text in shown), (text, seen)


def test_console_restores_what_it_changed() -> None:
    filters, level = list(warnings.filters), logging.getLogger().level
    handlers = list(logging.getLogger().handlers)
    for mode in ({}, {"verbose": True}, {"quiet": True}):
        with console(**mode):
            pass
    assert warnings.filters == filters and logging.getLogger().level == level
    assert logging.getLogger().handlers == handlers and logging.root.manager.disable == 0


@pytest.mark.parametrize("tty, quiet, shown", [(True, False, True), (True, True, False), (False, False, False)])
def test_progress_bars_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch, tty: bool, quiet: bool,
                                          shown: bool) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert progress_shown(argparse.Namespace(quiet=quiet)) is shown


@requires("fairseq", "fastBPE")
def test_validate_leaks_no_native_output(ported_default, default_model_dir, tmp_path: Path, capfd) -> None:
    """fastBPE's C++ "Loading codes from ..." lines go straight to file descriptor 2: hidden."""
    data = tmp_path / "in.en"
    data.write_text("Hello world.\nThe house is small.\n", encoding="utf-8")
    code = main(["validate", str(ported_default.path), "--reference", str(default_model_dir), "--data", str(data),
                 "--only", "tokenizer", "--report", str(tmp_path)])
    err = capfd.readouterr().err
    assert code == 0, err
    assert "Loading codes" not in err and "Read " not in err
