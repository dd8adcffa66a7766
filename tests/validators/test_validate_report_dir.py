"""`validate --report DIR` where no folder can be: refused in one line before the
work when a file is in the way (it was a FileExistsError traceback after the
whole validation), and one line naming the folder when the write fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import one_line_error
from tests.helpers.paths import DEFAULT_MODEL


@pytest.mark.parametrize("report, says", [
    ("notes.txt", "the report folder `{r}` cannot be written: `{r}` is a file"),
    ("notes.txt/sub", "the report folder `{r}` cannot be written: `{f}` is a file"),
])
def test_a_file_in_the_way_is_refused_before_the_work(report: str, says: str, ported_default, tmp_path: Path,
                                                       capsys, monkeypatch) -> None:
    import modelport.validators.run as run

    monkeypatch.setattr(run, "load", lambda *a, **k: pytest.fail("the port was loaded before the refusal"))
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    data = tmp_path / "d.en"
    data.write_text("Hello .\n", encoding="utf-8")
    target = tmp_path / report
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data",
                           str(data), "--report", str(target)], capsys)
    assert says.format(r=target, f=tmp_path / "notes.txt") in line, line
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine\n"


def test_a_folder_the_system_refuses_is_one_line(ported_default, tmp_path: Path, capsys) -> None:
    pytest.importorskip("fairseq")
    data = tmp_path / "d.en"
    data.write_text("Hello .\n", encoding="utf-8")
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data",
                           str(data), "--report", "/proc/modelport-report", "--only", "tokenizer"], capsys)
    assert "cannot write `/proc/modelport-report`: its folder cannot be made there" in line, line
