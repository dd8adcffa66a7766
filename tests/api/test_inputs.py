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
    for nothing in (None, 5):  # a TypeError from iterating it
        with pytest.raises(InvalidInputError, match=f"not {type(nothing).__name__}"):
            ported_default.translate(nothing)
        with pytest.raises(InvalidInputError, match=f"not {type(nothing).__name__}"):
            next(ported_default.translate_iterable(nothing))


def test_passes_take_data_as_a_file_or_a_list_of_lines(ported_default, tmp_path: Path) -> None:
    """quantize/prune's ``data``/``references`` as a path (a str was taken as a list of one-character lines)."""
    import pytest

    from modelport.errors import InvalidInputError

    data = tmp_path / "data.en"
    data.write_text("Hello world.\nThe house is small.\n", encoding="utf-8")
    from_file = modelport.quantize(ported_default.path, tmp_path / "a", mode="int8", data=str(data))
    from_list = modelport.quantize(ported_default.path, tmp_path / "b", mode="int8",
                                   data=data.read_text(encoding="utf-8").splitlines())
    assert from_file.measured.agreement == from_list.measured.agreement
    assert from_file.measured.agreement is not None
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"fine\n\xff\n")
    with pytest.raises(InvalidInputError, match=r"line 2 of data `.*bad.en` must be UTF-8 text"):
        modelport.prune(ported_default.path, tmp_path / "c", decoder_layers=1, data=bad)
    with pytest.raises(InvalidInputError, match=r"line 2 of --data `.*bad.en` must be UTF-8 text"):
        modelport.distill(ported_default.path, tmp_path / "d", data=bad)
    with pytest.raises(InvalidInputError, match="line 2 of references is NoneType"):
        modelport.quantize(ported_default.path, tmp_path / "e", mode="int8", data=["a", "b"], references=["a", None])
    with pytest.raises(InvalidInputError, match=r"must be an integer in \[1, 3\], but is '2'"):
        modelport.prune(ported_default.path, tmp_path / "f", decoder_layers="2")


def test_validate_takes_data_as_a_file(ported_default, default_model_dir: Path, tmp_path: Path) -> None:
    """As the passes do (a str path was iterated as one-character lines)."""
    import pytest

    pytest.importorskip("fairseq")
    from modelport.validators.run import validate

    data = tmp_path / "data.en"
    data.write_text("Hello world.\nThe house is small.\n", encoding="utf-8")
    report = validate(ported_default.path, str(default_model_dir), str(data), write=False, only="tokenizer")
    assert report.passed and report.tokenizer is not None
    assert "2/2" in report.summary_lines()[0]


def test_a_byte_order_mark_is_not_text(ported_default, tmp_path: Path, capsys) -> None:
    """A file that begins with a UTF-8 byte-order mark (Windows editors write one) gave its first line a
    U+FEFF character, which the tokenizer read as text (`<unk>` or a piece of its own); it is now dropped,
    on line 1 only, from files and stdin alike."""
    from modelport.cli import main
    from modelport.files import read_text_lines, utf8_line

    lines = ["Hello world.", "Good morning."]
    plain, marked = tmp_path / "plain.en", tmp_path / "marked.en"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    marked.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_text_lines(marked, "input") == lines
    assert utf8_line("\ufeffHello\n", 2, "input") == "\ufeffHello"  # not line 1: left as it is
    outs = []
    for path in (plain, marked):
        capsys.readouterr()
        assert main(["translate", str(ported_default.path), "-i", str(path)]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
