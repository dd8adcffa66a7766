"""A file given where a ported folder (or an export) belongs is named as a
file in every command; the message said "no such directory" (export, publish,
translate, compare) or "config.json ... missing" (card)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import one_line_error

COMMANDS = {
    "translate": lambda f, o: ["translate", f],
    "translate-onnx": lambda f, o: ["translate", f, "--backend", "onnx"],
    "quantize": lambda f, o: ["quantize", f, o, "--mode", "int8"],
    "prune": lambda f, o: ["prune", f, o, "--decoder-layers", "1"],
    "export-onnx": lambda f, o: ["export", "onnx", f, o],
    "export-ct2": lambda f, o: ["export", "ct2", f, o],
    "export-hf": lambda f, o: ["export", "hf", f, o],
    "card": lambda f, o: ["card", f],
    "compare": lambda f, o: ["compare", f],
    "publish": lambda f, o: ["publish", f, "me/model", "--dry-run"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_file_for_a_folder_is_named_as_a_file(command: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # translate reads no lines before the folder fails
    given = tmp_path / "notes.txt"
    given.write_text("not a model\n", encoding="utf-8")
    line = one_line_error(COMMANDS[command](str(given), str(tmp_path / "out")), capsys)
    assert "it is a file, not a folder" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
