"""Tampered tokenizer folders: the file names in ``tokenizer/tokenizer_config.json``
and the files of ``tokenizer/`` are as untrusted as the weights.

A name must be a plain file name of a regular file inside ``tokenizer/`` (a
symlink may not leave it), of bounded size: before, a crafted folder made
``prune --vocab-from`` rewrite a file elsewhere, ``translate`` read
``/etc/passwd`` (and quote its first line in the error), ``inspect`` read
``/dev/zero`` until the machine's memory ran out, and a pass copied the
target of a symlink (a secret) into its output as an ordinary file."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.cli import one_line_error


def _tok_config(folder: Path) -> dict:
    return json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())


def _set(folder: Path, **changes) -> None:
    (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps({**_tok_config(folder), **changes}))


@pytest.fixture
def port_copy(ported_default, tmp_path: Path) -> Callable[[], Path]:
    def make() -> Path:
        folder = tmp_path / "port"
        shutil.copytree(ported_default.path, folder)
        return folder
    return make


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "in.txt"
    src.write_text("Hello world.\nThe cat sleeps.\n", encoding="utf-8")
    return src


def test_prune_never_writes_the_dictionary_a_name_points_at_outside_the_output(port_copy, tmp_path, capsys):
    folder = port_copy()
    victim = tmp_path / "victim"
    victim.mkdir()
    shutil.move(folder / "tokenizer" / "dict.en.txt", victim / "dict.en.txt")
    before = (victim / "dict.en.txt").read_bytes()
    _set(folder, source_dict=str(victim / "dict.en.txt"))
    line = one_line_error(["prune", str(folder), str(tmp_path / "out"), "--vocab-from", str(_source(tmp_path))],
                          capsys)
    assert "source_dict" in line and "must be a file name inside the folder" in line
    assert (victim / "dict.en.txt").read_bytes() == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["../../port/tokenizer/dict.en.txt", "sub/dict.en.txt", "", 5])
def test_a_name_must_be_a_plain_file_name(name, port_copy, tmp_path, capsys):
    folder = port_copy()
    _set(folder, source_dict=name)
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert "source_dict" in line


def _link_to_a_secret(folder: Path, tmp_path: Path, name: str, text: str) -> None:
    """``tokenizer/<name>``: a symlink to a file outside the folder that holds ``text``."""
    secret = tmp_path / "secret.txt"
    secret.write_text(text)
    (folder / "tokenizer" / name).symlink_to(secret)


def test_a_file_outside_is_neither_read_nor_quoted(port_copy, tmp_path, capsys):
    folder = port_copy()
    _link_to_a_secret(folder, tmp_path, "leak.txt", "root:x:0:0:root:/root:/bin/bash\n")
    _set(folder, source_dict="leak.txt")
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert "must stay inside the folder" in line and "root:x" not in line


def test_a_device_is_refused_before_it_is_read(port_copy, tmp_path, capsys):
    folder = port_copy()
    (folder / "tokenizer" / "zero").symlink_to("/dev/zero")
    _set(folder, bpe_codes="zero")
    assert "bpe_codes" in one_line_error(["inspect", str(folder)], capsys)


def test_a_file_larger_than_any_tokenizer_file_is_refused(port_copy, tmp_path, capsys, monkeypatch):
    import modelport.tokenizers.base as base

    monkeypatch.setattr(base, "TOKENIZER_FILE_MAX_BYTES", 1000)  # the default model's dictionaries are ~7 kB
    folder = port_copy()
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert "more than such a file can be" in line


def test_a_pass_does_not_copy_a_symlinks_target_into_its_output(port_copy, tmp_path, capsys):
    folder = port_copy()
    _link_to_a_secret(folder, tmp_path, "notes.txt", "SECRET-TOKEN-123\n")
    line = one_line_error(["quantize", str(folder), str(tmp_path / "out"), "--mode", "fp16"], capsys)
    assert "notes.txt" in line and "must stay inside the folder" in line
    assert not (tmp_path / "out").exists()


def test_a_symlink_inside_the_folder_is_copied_as_its_file(port_copy, tmp_path, capsys):
    """A link that stays in tokenizer/ (as huggingface_hub's cache has them, into its blobs) is fine."""
    from tests.helpers.cli import main

    folder = port_copy()
    tok = folder / "tokenizer"
    os.rename(tok / "dict.de.txt", tok / "real.de.txt")
    (tok / "dict.de.txt").symlink_to("real.de.txt")
    assert main(["quantize", str(folder), str(tmp_path / "out"), "--mode", "fp16"]) == 0
    copied = tmp_path / "out" / "tokenizer" / "dict.de.txt"
    assert not copied.is_symlink() and copied.read_bytes() == (tok / "real.de.txt").read_bytes()


def test_a_tokenizer_folder_that_leaves_the_port_is_refused(port_copy, tmp_path, capsys):
    folder = port_copy()
    shutil.move(folder / "tokenizer", tmp_path / "elsewhere")
    (folder / "tokenizer").symlink_to(tmp_path / "elsewhere")
    assert "symlink" in one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)


def test_config_json_may_not_leave_the_folder(port_copy, tmp_path, capsys):
    folder = port_copy()
    shutil.move(folder / "config.json", tmp_path / "config.json")
    (folder / "config.json").symlink_to(tmp_path / "config.json")
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert "config.json" in line and "must stay inside the folder" in line


@pytest.mark.parametrize("value", [10**9, "abc", [1], True, 0.5])
def test_dict_pad_to_multiple_is_bounded(value, port_copy, tmp_path, capsys):
    """10**9 padded both dictionaries to a billion entries (5 GB, then MemoryError); "abc" was a ValueError."""
    folder = port_copy()
    _set(folder, dict_pad_to_multiple=value)
    assert "dict_pad_to_multiple" in one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)


@pytest.mark.parametrize("setting,value,wanted", [
    ("target_lang", [1], "a string"), ("bpe_separator", 5, "a string"), ("append_eos", "false", "true or false"),
    ("moses_escape", 0, "true or false"), ("pad_id", -1, "an integer >= 0"), ("languages", "en", "a list of strings"),
])
@pytest.mark.parametrize("command", ["translate", "tokenize"])
def test_a_tokenizer_setting_of_the_wrong_kind_is_one_line(setting, value, wanted, command, port_copy, tmp_path,
                                                          capsys):
    """`"append_eos": "false"` was read as true; `bpe_separator: 5` and `target_lang: [1]` were TypeErrors."""
    folder = port_copy()
    _set(folder, **{setting: value})
    line = one_line_error([command, str(folder), "-i", str(_source(tmp_path))], capsys)
    assert f"`{setting}` of `{folder / 'tokenizer' / 'tokenizer_config.json'}` must be {wanted}, but is" in line, line


@pytest.mark.parametrize("raw", [b"[]", b'{"type": "\xff"}', b"{"])
def test_a_damaged_tokenizer_config_is_one_line(raw, port_copy, tmp_path, capsys):
    folder = port_copy()
    (folder / "tokenizer" / "tokenizer_config.json").write_bytes(raw)
    assert "tokenizer_config.json" in one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))],
                                                     capsys)


def test_a_damaged_marian_vocabulary_is_one_line(tmp_path, capsys):
    """vocab.json `{` was a JSONDecodeError traceback; converting, the message held its own error twice."""
    from tests.helpers.cli import main
    from tests.helpers.paths import ROOT

    folder = tmp_path / "port"
    assert main(["convert", str(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied"), str(folder)]) == 0
    (folder / "tokenizer" / "vocab.json").write_text("{")
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert line.count("not a readable Marian vocabulary") == 1 and "JSONDecodeError" in line


def test_a_decoder_yml_nested_too_deep_is_one_line(tmp_path, capsys):
    """A list nested 5,000 deep exhausted the YAML parser's recursion (RecursionError, exit 1)."""
    from tests.helpers.paths import ROOT

    model = tmp_path / "marian"
    shutil.copytree(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied", model)
    with open(model / "decoder.yml", "a", encoding="utf-8") as f:
        f.write("x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "decoder.yml" in one_line_error(["convert", str(model), str(tmp_path / "out")], capsys)
    assert not (tmp_path / "out").exists()


def test_prune_vocab_from_a_file_that_is_not_utf8(port_copy, tmp_path, capsys):
    folder = port_copy()
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"Hello \xff\xfe world\n")
    line = one_line_error(["prune", str(folder), str(tmp_path / "out"), "--vocab-from", str(bad)], capsys)
    assert "must be UTF-8 text" in line


@pytest.mark.parametrize("line,replacement,message", [
    ("- source.spm", "- {outside}", "vocabulary `{outside}` resolves to"),
    ("- model.npz", "- ../elsewhere/model.npz", "outside the model directory"),
    ("- model.npz", "- sub", "must be a regular file"),
])
def test_decoder_yml_names_files_inside_the_model_directory(line, replacement, message, tmp_path, capsys):
    """models/vocabs outside the directory were read (a downloaded model could name any file), as its
    shortlist already was not; a device or folder was said not to exist."""
    from tests.helpers.paths import ROOT

    model = tmp_path / "marian"
    shutil.copytree(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied", model)
    (model / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(model / "model.npz", tmp_path / "elsewhere" / "model.npz")
    outside = tmp_path / "outside.spm"
    shutil.copy(model / "source.spm", outside)
    text = (model / "decoder.yml").read_text()
    assert line in text
    (model / "decoder.yml").write_text(text.replace(line, replacement.format(outside=outside), 1))
    got = one_line_error(["convert", str(model), str(tmp_path / "out")], capsys)
    assert message.format(outside=outside) in got


# ---------------------------------------------------------------------------
# a tokenizer that does not fit the model's embeddings


def _truncate_source_dict(folder: Path) -> None:
    path = folder / "tokenizer" / "dict.en.txt"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:100]), encoding="utf-8")


def _empty_target_dict(folder: Path) -> None:
    (folder / "tokenizer" / "dict.de.txt").write_text("", encoding="utf-8")


def _swapped_source_dict(folder: Path) -> None:
    _set(folder, source_dict="dict.de.txt")


@pytest.mark.parametrize("tamper, side, own", [(_truncate_source_dict, "source", 104),
                                               (_empty_target_dict, "target", 4),
                                               (_swapped_source_dict, "source", 1072)])
@pytest.mark.parametrize("command", ["translate", "tokenize"])
def test_a_dictionary_that_does_not_fit_the_model_is_refused(tamper, side, own, command, port_copy, tmp_path,
                                                              capsys):
    """Before, a truncated source dictionary translated all-`<unk>` input into fluent garbage with exit 0, a
    swapped one crashed in the embedding (IndexError, exit 1), an empty target one failed only after
    decoding; fairseq sizes each embedding from its dictionary, so the counts must be equal."""
    folder = port_copy()
    tamper(folder)
    line = one_line_error([command, str(folder), "-i", str(_source(tmp_path))], capsys)
    assert "`tokenizer/` does not belong to the model" in line, line
    assert f"the {side} vocabulary spans {own} ids" in line and "so they must be equal" in line, line


def test_the_python_api_refuses_a_dictionary_that_does_not_fit(port_copy) -> None:
    import modelport
    from modelport.errors import InvalidPortedFolderError

    folder = port_copy()
    _truncate_source_dict(folder)
    with pytest.raises(InvalidPortedFolderError, match="source embedding has 792 rows"):
        modelport.load(folder).translate(["Hello world."])


@pytest.mark.parametrize("text, message", [("{}", "is empty"), ('{"</s>": 0, "a": -3}', "negative id -3"),
                                           ("</s>: 0\na: 1_0\n", 'gives "a" "1_0"'), ("a: 010\n", "decimal digits"),
                                           ('{"a": 1.0}', "decimal digits"), ("a: '+1'\n", "decimal digits")])
def test_a_marian_vocabulary_marian_would_refuse_is_refused(text, message, tmp_path) -> None:
    """An empty one crashed in `max()` (exit 1); Marian reads ids as unsigned indices; int() read `1_0` as 10
    and the leading zero Marian's YAML reader takes for octal as decimal."""
    from modelport.errors import InvalidInputError
    from modelport.tokenizers.sentencepiece import read_marian_vocab

    path = tmp_path / ("vocab.json" if text.startswith("{") else "vocab.yml")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        read_marian_vocab(path)


@pytest.fixture(scope="module")
def t5_port(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from tests.converters.test_t5_parity import build_hf_t5
    from tests.helpers.cli import main

    root = tmp_path_factory.mktemp("t5")
    build_hf_t5(root / "src", "v1.0")
    assert main(["convert", str(root / "src"), str(root / "port")]) == 0
    return root / "port"


@pytest.mark.parametrize("setting", ["eos_id", "pad_id", "unk_id"])
@pytest.mark.parametrize("value", [5000, 10**9])
def test_a_t5_special_id_past_the_vocabulary_is_one_line(setting, value, t5_port, tmp_path, capsys):
    """`"eos_id": 5000` was appended to every source and indexed past the embedding: an IndexError
    traceback; a pad or unk id there was kept without a word."""
    folder = tmp_path / "port"
    shutil.copytree(t5_port, folder)
    _set(folder, **{setting: value})
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert f"id {value} (`{setting}` of tokenizer_config.json) is outside the target vocabulary (size" in line, line


def test_a_marian_pad_id_past_the_vocabulary_is_one_line(tmp_path, capsys):
    from tests.helpers.cli import main
    from tests.helpers.paths import ROOT

    folder = tmp_path / "port"
    assert main(["convert", str(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied"), str(folder)]) == 0
    _set(folder, pad_id=10**6)
    line = one_line_error(["translate", str(folder), "-i", str(_source(tmp_path))], capsys)
    assert "id 1000000 (`pad_id` of tokenizer_config.json) is outside the target vocabulary (size" in line, line
