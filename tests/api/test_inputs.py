"""What the public API accepts: paths as ``str`` or ``os.PathLike`` alike (``modelport.convert(Path(...),
...)`` once failed inside the converter lookup with a TypeError), and lines only as strings."""

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


def test_translate_refuses_a_single_string_and_lines_that_are_not_strings(ported_default) -> None:
    """A str is iterable: without the check each character was translated as a line, and a None
    line was translated as the text "None"."""
    import pytest

    from modelport.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not a single str"):
        ported_default.translate("Hello world")
    with pytest.raises(InvalidInputError, match="not a single str"):
        next(ported_default.translate_iterable("Hello world"))
    with pytest.raises(InvalidInputError, match="line 2 is NoneType"):
        ported_default.translate(["Hello", None])
    with pytest.raises(InvalidInputError, match="line 3 is int"):
        list(ported_default.translate_iterable(iter(["a", "b", 3])))
    assert len(ported_default.translate(line for line in ["Hello", "world"])) == 2
