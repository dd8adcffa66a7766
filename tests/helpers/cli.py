"""Helpers for command-line tests: run `modelport` in-process and check that a
failure is one clear line with the expected exit code."""

from __future__ import annotations

from modelport.cli import main


def one_line_error(argv: list[str], capsys, code: int = 2) -> str:
    """Run ``modelport argv``; assert exit ``code`` and exactly one
    ``modelport: error:`` line on stderr (no traceback); return that line."""
    got = main(argv)
    _, err = capsys.readouterr()
    assert got == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("modelport: error: ") and "Traceback" not in err
    return lines[0]
