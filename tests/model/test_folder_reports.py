"""The reports a ported folder holds (parity_report.json from `validate`,
pass_report.json from a pass) are read by one reader for inspect, card and
compare: inspect says whether and how the folder was validated, and a report
that is not one modelport wrote is one line (exit 2) in every command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import main, one_line_error


@pytest.fixture
def folder(ported_default, tmp_path: Path) -> Path:
    out = tmp_path / "port"
    shutil.copytree(ported_default.path, out)
    return out


def _write_parity(folder: Path, passed: bool, failure: str | None = None) -> None:
    from modelport.reports.parity import ForwardSection, ParityMeta, ParityReport

    meta = ParityMeta(ported_dir=str(folder), reference="assets/default-model", lines=20, semantics="fairseq")
    forward = ForwardSection(max_abs_logit_diff=1e-6, tolerance=1e-4, passed=True)  # as `validate --only forward`
    report = ParityReport.of(meta, failure=failure, forward=forward)
    data = report.to_json() | {"passed": passed}
    (folder / "parity_report.json").write_text(json.dumps(data), encoding="utf-8")


def test_inspect_says_whether_the_folder_was_validated(folder: Path, capsys) -> None:
    assert main(["inspect", str(folder)]) == 0
    assert "parity:        not validated here (run `modelport validate`)\n" in capsys.readouterr().out
    assert main(["inspect", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parity"] is None

    _write_parity(folder, passed=True)
    assert main(["inspect", str(folder)]) == 0
    assert "parity:        passed against assets/default-model (20 lines, semantics fairseq, checks: forward)\n" \
        in capsys.readouterr().out
    assert main(["inspect", str(folder), "--json"]) == 0
    parity = json.loads(capsys.readouterr().out)["parity"]
    assert parity == {"passed": True, "reference": "assets/default-model", "lines": 20, "semantics": "fairseq",
                      "checks": ["forward"], "failure": None}

    _write_parity(folder, passed=False, failure="beam: 3 of 20 lines differ")
    assert main(["inspect", str(folder)]) == 0
    assert "parity:        FAILED against assets/default-model (20 lines, semantics fairseq, checks: forward): beam: " \
        "3 of 20 lines differ\n" in capsys.readouterr().out


COMMANDS = {"inspect": lambda d: ["inspect", str(d)], "card": lambda d: ["card", str(d)],
            "compare": lambda d: ["compare", str(d)]}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("content, says", [
    ('{"meta": 5}', "is not a report modelport wrote (AttributeError"),
    ("[1, 2]", "must be a JSON object, but is a list"),
    ('{"meta": ', "must be JSON, but is not"),
    (b"\xff\xfe", "must be UTF-8 JSON"),
])
def test_a_damaged_parity_report_is_one_line(command: str, content: str | bytes, says: str, folder: Path,
                                             capsys) -> None:
    path = folder / "parity_report.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = one_line_error(COMMANDS[command](folder), capsys)
    assert "parity_report.json" in line and says in line, line
    assert not (folder / "README.md").exists()


def test_a_parity_report_that_is_not_a_file_is_refused(folder: Path, capsys) -> None:
    """A FIFO in place of the report would block a reader forever."""
    os.mkfifo(folder / "parity_report.json")
    line = one_line_error(["inspect", str(folder)], capsys)
    assert "`parity_report.json` must be a regular file" in line, line


def test_a_damaged_pass_report_is_one_line(folder: Path, capsys) -> None:
    (folder / "pass_report.json").write_text('{"name": "quantize", "options": 3}', encoding="utf-8")
    line = one_line_error(["compare", str(folder)], capsys)
    assert "`pass_report.json` is not a report modelport wrote" in line and "run the pass again" in line, line
