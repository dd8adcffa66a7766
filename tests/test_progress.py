"""Long commands draw one bar on stderr when asked (the CLI asks when stderr is a
terminal and --quiet is off), and nothing when not."""

from __future__ import annotations

from pathlib import Path

from modelport.passes import quantize
from modelport.progress import Steps
from tests.helpers.paths import CORPUS


def test_steps_draw_only_when_enabled(capsys) -> None:
    with Steps("validate", 2, True) as bar:
        bar.advance("8 lines")
        bar.advance("8 lines")
    assert "validate" in capsys.readouterr().err
    with Steps("validate", 2, False) as bar:
        bar.advance("8 lines")
    assert capsys.readouterr().err == ""


def test_a_pass_shows_its_timed_runs(ported_default, tmp_path: Path, capsys) -> None:
    data = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:3]
    quantize(ported_default.path, tmp_path / "q", mode="fp16", data=data, progress=True)
    err = capsys.readouterr().err
    assert "measuring" in err and "/7 " in err and "timed run" in err  # a warm-up, 3 timed runs of each
    quantize(ported_default.path, tmp_path / "q2", mode="fp16", data=data)
    assert capsys.readouterr().err == ""
