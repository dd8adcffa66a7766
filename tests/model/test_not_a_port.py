"""Folders that are not ported folders: `translate`, `inspect`, `quantize` on an
`export hf` or `export onnx` result (or a plain transformers folder) say in one
line what the folder is and what takes it, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import main, one_line_error


@pytest.fixture(scope="module")
def exports(ported_default, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("transformers")  # export hf writes and verifies a transformers folder
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for target in ("hf", "onnx"):
        out[target] = root / target
        assert main(["export", target, str(ported_default.path), str(out[target]), "--no-verify"]) == 0
    return out


@pytest.mark.parametrize("command", [["translate"], ["inspect"], ["quantize", "--mode", "int8"], ["card"]])
def test_export_hf_folder_is_named(command: list[str], exports, ported_default, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    extra = [str(tmp_path / "out")] if command[0] == "quantize" else []
    line = one_line_error([command[0], str(exports["hf"]), *extra, *command[1:]], capsys)
    assert "is a transformers model folder (FSMTForConditionalGeneration) written by `modelport export hf`" in line
    assert "AutoModelForSeq2SeqLM" in line and str(Path(ported_default.path).resolve()) in line
    assert "format version" not in line


@pytest.mark.parametrize("command", [["inspect"], ["quantize", "--mode", "int8"], ["card"]])  # translate runs it
def test_export_onnx_folder_is_named(command: list[str], exports, ported_default, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    extra = [str(tmp_path / "out")] if command[0] == "quantize" else []
    line = one_line_error([command[0], str(exports["onnx"]), *extra, *command[1:]], capsys)
    assert "is an ONNX export (encoder.onnx + decoder.onnx, written by `modelport export onnx`)" in line
    assert "onnxruntime" in line and str(Path(ported_default.path).resolve()) in line
    assert "model.safetensors" not in line


def test_plain_transformers_folder_is_named_for_translate(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "t5"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["T5ForConditionalGeneration"],
                                                    "model_type": "t5"}), encoding="utf-8")
    line = one_line_error(["translate", str(folder)], capsys)
    assert "is a transformers model folder (T5ForConditionalGeneration)" in line
    assert f"modelport convert {folder} OUTPUT_DIR" in line


@pytest.mark.parametrize("command", [["translate"], ["inspect"], ["quantize", "--mode", "int8"], ["card"],
                                     ["compare"], ["export", "onnx"]])
def test_export_ct2_folder_is_named(command: list[str], ported_default, tmp_path_factory, tmp_path: Path,
                                    capsys) -> None:
    """It was "`modelport_format_version` in config.json must be 1" (or "not a known checkpoint format")."""
    pytest.importorskip("ctranslate2")
    folder = tmp_path_factory.getbasetemp() / "ct2-export"
    if not folder.exists():
        assert main(["export", "ct2", str(ported_default.path), str(folder), "--no-verify"]) == 0
    capsys.readouterr()
    extra = [str(tmp_path / "out")] if command[0] in ("quantize", "export") else []
    line = one_line_error([*command[:1 + (command[0] == "export")], str(folder), *extra,
                           *command[1 + (command[0] == "export"):]], capsys)
    assert "is a CTranslate2 model directory (model.bin, written by `modelport export ct2`)" in line, line
    assert "ctranslate2.Translator" in line and str(Path(ported_default.path).resolve()) in line


def test_a_marian_model_bin_is_still_a_checkpoint_to_inspect(tmp_path: Path) -> None:
    """Marian's binary format is also model.bin: only CTranslate2's vocabulary files name an export."""
    from modelport.model.folder import not_a_port

    for name in ("model.bin", "vocab.spm", "decoder.yml"):
        (tmp_path / name).write_bytes(b"")
    assert not_a_port(tmp_path, exports_only=True) is None
    (tmp_path / "shared_vocabulary.json").write_text("[]")
    assert "CTranslate2" in str(not_a_port(tmp_path, exports_only=True))
