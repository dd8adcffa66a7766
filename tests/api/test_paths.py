"""The public API takes paths as ``str`` or ``os.PathLike`` alike (``modelport.convert(Path(...), ...)``
once failed inside the converter lookup with a TypeError)."""

from __future__ import annotations

from pathlib import Path

import modelport


def test_public_functions_accept_pathlib_paths(default_model_dir: Path, tmp_path: Path) -> None:
    source = Path(default_model_dir)
    assert modelport.inspect(source).format == "fairseq"
    ported = modelport.convert(source, tmp_path / "port")
    assert modelport.load(tmp_path / "port").translate(["Hello"]) == ported.translate(["Hello"])
    modelport.quantize(tmp_path / "port", tmp_path / "int8", mode="int8")
    modelport.prune(tmp_path / "port", tmp_path / "pruned", decoder_layers=1)
    for folder in ("int8", "pruned"):
        assert (tmp_path / folder / "config.json").is_file()
    assert "modelport" in str(modelport.make_card(tmp_path / "port"))
    modelport.publish(tmp_path / "port", "user/repo", dry_run=True)
