"""``tokenize --decode --side`` and ids outside the vocabulary (issue #14, item 3).

On the embedded model (en->de) the source and target dictionaries differ, so
decoding source ids with the target dictionary gives other text: the
expected strings are the input lines themselves (and what fairseq's own
``Dictionary`` holds at each id), never what the code under test computed.
"""

from __future__ import annotations

import re

import pytest
import torch

import modelport

from tests.helpers.cli import main, one_line_error
from tests.helpers.paths import DEFAULT_MODEL, ROOT
from modelport.errors import InvalidInputError
from modelport.tokenizers import load_tokenizer
from modelport.tokenizers.sentencepiece import save_marian, save_t5

# lines whose Moses round trip (tokenize, detokenize) is the line itself
LINE = "the house is small."
GERMAN = "Das Haus ist klein."


def _dict_symbols(lang: str) -> list[str]:
    """fairseq's Dictionary order, read from the embedded model's own file."""
    words = [line.rsplit(" ", 1)[0] for line in (DEFAULT_MODEL / f"dict.{lang}.txt").read_text(
        encoding="utf-8").splitlines()]
    return ["<s>", "<pad>", "</s>", "<unk>", *words]


def _write(tmp_path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_two_dictionaries_differ() -> None:
    """The premise of the --side tests: an id names other words on each side."""
    src, tgt = _dict_symbols("en"), _dict_symbols("de")
    assert src[4:40] != tgt[4:40]


def test_decode_side_source_uses_the_source_dictionary(ported_default, tmp_path, capsys) -> None:
    folder = str(ported_default.path)
    text = _write(tmp_path, "in.en", [LINE])
    assert main(["tokenize", folder, "-i", str(text)]) == 0  # encodes with the source side, as before
    src_ids = capsys.readouterr().out.split()
    ids = _write(tmp_path, "ids.txt", [" ".join(src_ids)])
    assert main(["tokenize", folder, "--decode", "--side", "source", "-i", str(ids)]) == 0
    assert capsys.readouterr().out.splitlines() == [LINE]
    # without --side, --decode reads target ids, as before: other words
    assert main(["tokenize", folder, "--decode", "-i", str(ids)]) == 0
    assert capsys.readouterr().out.splitlines() != [LINE]


def test_side_target_encodes_and_decodes_with_the_target_dictionary(ported_default, tmp_path, capsys) -> None:
    folder = str(ported_default.path)
    text = _write(tmp_path, "in.de", [GERMAN])
    assert main(["tokenize", folder, "--side", "target", "-i", str(text)]) == 0
    tgt_ids = [int(x) for x in capsys.readouterr().out.split()]
    symbols = _dict_symbols("de")
    assert [symbols[i] for i in tgt_ids[:-1]] == ported_default.tokenizer.tokenize(GERMAN, side="target")
    assert symbols[tgt_ids[-1]] == "</s>"
    ids = _write(tmp_path, "ids.txt", [" ".join(map(str, tgt_ids))])
    assert main(["tokenize", folder, "--decode", "--side", "target", "-i", str(ids)]) == 0
    assert capsys.readouterr().out.splitlines() == [GERMAN]
    # --tokens follows --side too: the target pieces are target-dictionary entries
    assert main(["tokenize", folder, "--tokens", "--side", "target", "-i", str(text)]) == 0
    assert all(p in symbols for p in capsys.readouterr().out.split())


@pytest.mark.parametrize("side,lang", [("target", "de"), ("source", "en")])
@pytest.mark.parametrize("bad", ["size", "-1", "100000"])
def test_out_of_range_ids_are_exit_2_naming_id_line_and_size(ported_default, tmp_path, capsys, side, lang,
                                                            bad) -> None:
    size = len(_dict_symbols(lang))
    assert size == ported_default.tokenizer.vocab_size_of(side)
    bad_id = str(size) if bad == "size" else bad
    ids = _write(tmp_path, "ids.txt", ["4 5 6", f"4 {bad_id} 5"])
    line = one_line_error(["tokenize", str(ported_default.path), "--decode", "--side", side, "-i", str(ids)],
                          capsys)
    assert f"id {bad_id} on line 2" in line and f"{side} vocabulary" in line and f"size {size}" in line, line
    # the last valid id still decodes
    ok = _write(tmp_path, "ok.txt", [str(size - 1)])
    assert main(["tokenize", str(ported_default.path), "--decode", "--side", side, "-i", str(ok)]) == 0
    assert capsys.readouterr().out.strip() == _dict_symbols(lang)[size - 1]


@pytest.mark.parametrize("bad", [-1, "size", 10**6])
def test_tokenizer_decode_refuses_out_of_range_ids(ported_default, bad) -> None:
    tok = ported_default.tokenizer
    bad_id = tok.vocab_size_of("target") if bad == "size" else bad
    with pytest.raises(InvalidInputError, match=f"id {bad_id} is outside the target vocabulary"):
        tok.decode([4, bad_id])
    with pytest.raises(InvalidInputError, match="outside the source vocabulary"):
        tok.decode_batch([[4], [bad_id]], side="source")
    with pytest.raises(InvalidInputError):
        tok.decode(torch.tensor([4, bad_id]))


def test_unknown_side_is_refused(ported_default) -> None:
    with pytest.raises(InvalidInputError, match="`middle` is not a known side"):
        ported_default.tokenizer.decode([4], side="middle")



def test_marian_decode_refuses_ids_past_its_vocabulary(tmp_path) -> None:
    """Marian (and MarianTokenizer) would print such an id as ``<unk>``."""
    opus = ROOT / "tests" / "data" / "marian" / "pre_tied_swish"
    save_marian(tmp_path / "tok", source_spm=opus / "source.spm", target_spm=opus / "target.spm",
                vocab=next(opus.glob("*.vocab.yml")))
    tok = load_tokenizer(tmp_path / "tok")
    size = len(tok.target_vocab)  # ids 0..n-1, <pad> appended last
    assert tok.vocab_size_of("target") == size == tok.pad_id + 1
    assert tok.decode([size - 1]) == ""  # <pad> is dropped, as before
    for bad in (size, -1):
        with pytest.raises(InvalidInputError, match=f"id {bad} is outside the target vocabulary"):
            tok.decode([4, bad])


def test_t5_drops_padding_rows_and_refuses_ids_past_the_model(tmp_path) -> None:
    """transformers' T5Tokenizer drops ids past its pieces (the model's padding
    rows emit them: 32128 rows for 32100 pieces), so those still decode to
    nothing; a negative id, or one past the model's vocabulary once the loader
    knows it, is refused."""
    save_t5(tmp_path / "tok", spm=ROOT / "tests" / "data" / "t5_tf" / "v1_0" / "spiece.model")
    tok = load_tokenizer(tmp_path / "tok")
    top = tok.vocab_size  # pieces + sentinels
    assert tok.vocab_size_of("target") is None
    assert tok.decode([5, top, top + 27, 6]) == tok.decode([5, 6])
    with pytest.raises(InvalidInputError, match="id -1 is outside the target vocabulary"):
        tok.decode([5, -1])
    bounded = load_tokenizer(tmp_path / "tok", model_rows=(top + 28, top + 28))
    assert bounded.vocab_size_of("target") == top + 28
    assert bounded.decode([5, top + 27, 6]) == tok.decode([5, 6])
    with pytest.raises(InvalidInputError, match=f"id {top + 28} is outside the target vocabulary \\(size {top + 28}"):
        bounded.decode([5, top + 28])


def test_t5_port_decode_is_bounded_by_the_model(tmp_path, capsys) -> None:
    """`tokenize --decode` on a T5 port checks ids against the model's
    vocabulary (config.json), the only bound a T5 tokenizer has."""
    ported = modelport.convert(str(ROOT / "tests" / "data" / "t5_tf" / "v1_0"), tmp_path / "t5")
    size = ported.config.target_vocab_size
    good = _write(tmp_path, "good.txt", [f"5 6 {size - 1} 1"])
    assert main(["tokenize", str(ported.path), "--decode", "-i", str(good)]) == 0
    assert capsys.readouterr().out.splitlines() == [ported.tokenizer.decode([5, 6, size - 1, 1])]
    bad = _write(tmp_path, "bad.txt", ["5 6", "", f"7 {size}"])
    line = one_line_error(["tokenize", str(ported.path), "--decode", "-i", str(bad)], capsys)
    assert f"id {size} on line 3 is outside the target vocabulary (size {size}" in line, line


@pytest.mark.parametrize("ids, says", [
    ("1 2 3", "ids must be a sequence of integers, not a str"),  # was a ValueError from int(" ")
    ([18, 1.5, 2], "item 1 is 1.5 (float)"),  # was truncated to 1 and decoded
    ([True, 2], "item 0 is True (bool)"),
])
def test_ids_that_are_not_integers_are_refused(ported_default, ids, says: str) -> None:
    from modelport.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=re.escape(says)):
        ported_default.tokenizer.decode(ids)


@pytest.mark.parametrize("source", ["default", "assets/fixture-m2m", "assets/fixture-bart",
                                    "tests/data/marian-trained/post_sep_tied", "tests/data/t5_tf/v1_1"])
def test_encode_refuses_what_is_not_a_line(source: str, ported_default, tmp_path) -> None:
    """`encode(None)` encoded the text "None"; `encode_batch("hello")` each character as a line."""
    ported = ported_default if source == "default" else modelport.convert(str(ROOT / source), tmp_path / "port")
    tok = ported.tokenizer
    for bad in (None, 5, b"bytes"):
        with pytest.raises(InvalidInputError, match="a line to encode must be a str"):
            tok.encode(bad)
    with pytest.raises(InvalidInputError, match="not a single str"):
        tok.encode_batch("hello")
    with pytest.raises(InvalidInputError, match="must be a str, but is NoneType"):
        tok.encode_batch(["hello", None])
    assert tok.encode_batch(["hello"]) == [tok.encode("hello")]
