"""Property-based tests: arbitrary Unicode never crashes a tokenizer, the BPE
matches fastBPE/subword-nmt on arbitrary text, and encode(decode(ids)) is
stable where the pipeline guarantees it."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.tokenizers.test_tokenizers import (  # noqa: F401  (fixtures)
    fairseq_dir,
    ported_dir,
    spm_models,
    train_lines,
    write_codes,
    write_marian_dir,
)

from modelport.errors import InvalidInputError
from modelport.tokenizers import load_tokenizer
from modelport.tokenizers.bpe import Bpe

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# any code point, surrogates included (a Python str can hold them; the C++ references cannot encode them)
ANY_TEXT = st.text(max_size=60)
# what a UTF-8 file can hold: the references run on it
VALID_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
MIXED_TEXT = st.one_of(VALID_TEXT, st.text(alphabet="ab cdéü'\"&<>|-.,@😀\u0301\u00a0\t", max_size=40))
WORD = st.text(alphabet=string.ascii_letters + string.digits + "äöüßéÄÖÜ", min_size=1, max_size=12)
PLAIN_SENTENCE = st.lists(WORD, min_size=0, max_size=8).map(" ".join)
# alphanumeric words of the German training text: BPE covers them without <unk>
_DE_WORDS = sorted({w for line in train_lines("de", 600) for w in line.split() if w.isalnum()})
KNOWN_SENTENCE = st.lists(st.sampled_from(_DE_WORDS) | WORD, min_size=0, max_size=8).map(" ".join)


@pytest.fixture(scope="module")
def moses_bpe(ported_dir: Path):
    return load_tokenizer(ported_dir / "tokenizer")


@pytest.fixture(scope="module")
def fairseq_pipeline(fairseq_dir: Path):
    """fairseq's own MosesTokenizer + fastBPE + Dictionary (the hub's pieces)."""
    import argparse

    from fairseq.data import Dictionary, encoders
    from fairseq.data.encoders.moses_tokenizer import MosesTokenizer, MosesTokenizerConfig

    moses = MosesTokenizer(MosesTokenizerConfig(source_lang="en", target_lang="de"))
    bpe = encoders.build_bpe(argparse.Namespace(bpe="fastbpe", bpe_codes=str(fairseq_dir / "bpecodes")))
    src = Dictionary.load(str(fairseq_dir / "dict.en.txt"))
    return lambda line: src.encode_line(bpe.encode(moses.encode(line)), add_if_not_exist=False).tolist()


@pytest.fixture(scope="module")
def spm_tokenizers(tmp_path_factory: pytest.TempPathFactory, spm_models):
    from modelport.tokenizers.sentencepiece import save_marian, save_t5

    d = tmp_path_factory.mktemp("spmtok")
    save_t5(d / "t5", spm=spm_models["t5"])
    orig = write_marian_dir(d / "opus", spm_models)
    save_marian(d / "marian", source_spm=orig / "source.spm", target_spm=orig / "target.spm",
                vocab=next(orig.glob("*.vocab.yml")))
    return {"t5": load_tokenizer(d / "t5"), "marian": load_tokenizer(d / "marian")}


@SETTINGS
@given(text=ANY_TEXT, junk=st.lists(st.integers(min_value=-3, max_value=5000), max_size=20))
def test_moses_bpe_never_crashes(moses_bpe, text: str, junk: list[int]) -> None:
    ids = moses_bpe.encode(text)
    assert ids[-1] == moses_bpe.eos_id
    assert all(0 <= i < len(moses_bpe.source_dict) for i in ids)
    t = moses_bpe.encode_target(text)
    assert all(0 <= i < len(moses_bpe.target_dict) for i in t)
    assert isinstance(moses_bpe.decode(t), str)
    _decodes_or_refuses(moses_bpe, junk, len(moses_bpe.target_dict))
    assert moses_bpe.encode_batch([text, text]) == [ids, ids]


@SETTINGS
@given(text=MIXED_TEXT)
def test_moses_bpe_matches_fairseq_on_arbitrary_text(moses_bpe, fairseq_pipeline, text: str) -> None:
    assert moses_bpe.encode(text) == fairseq_pipeline(text)


@pytest.fixture(scope="module")
def codes_pair(tmp_path_factory: pytest.TempPathFactory, fairseq_dir: Path):
    """The fixture's codes in both formats, with their real appliers."""
    fastBPE = pytest.importorskip("fastBPE")
    d = tmp_path_factory.mktemp("codes")
    lines = (fairseq_dir / "bpecodes").read_text(encoding="utf-8").splitlines()
    fb = write_codes(d / "fast", lines)
    ref_fast = fastBPE.fastBPE(str(fb))
    out = {"fastbpe": (Bpe.load(fb), lambda s: ref_fast.apply([s])[0])}
    try:
        from subword_nmt import apply_bpe
    except ImportError:
        return out
    sn = write_codes(d / "snmt", lines, "subword_nmt")
    with open(sn, encoding="utf-8") as f:
        ref_sn = apply_bpe.BPE(f, -1, "@@", None, None)
    out["subword_nmt"] = (Bpe.load(sn), ref_sn.process_line)
    return out


@SETTINGS
@given(text=MIXED_TEXT)
def test_bpe_matches_references_on_arbitrary_text(codes_pair, text: str) -> None:
    for fmt, (ours, ref) in codes_pair.items():
        if fmt == "subword_nmt" and ("\r" in text or "\n" in text):
            continue  # subword-nmt reads files line by line; a line never holds these
        assert ours.apply(text) == ref(text), fmt


@SETTINGS
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
                                           blacklist_characters="@"), max_size=40)
       .flatmap(lambda t: st.just(t) | st.just(t.replace("a", " "))))
def test_bpe_removal_inverts_bpe(codes_pair, text: str) -> None:
    """BPE removal is fairseq's own (which keeps a leading space, e.g. for
    " 0") and gives back the words, always."""
    from types import SimpleNamespace

    from fairseq.data.encoders.fastbpe import fastBPE

    for ours, _ in codes_pair.values():
        encoded = ours.apply(text)
        decoded = ours.decode(encoded)
        assert decoded == fastBPE.decode(SimpleNamespace(bpe_symbol="@@ "), encoded)
        assert [w for w in decoded.split(" ") if w] == [w for w in text.split(" ") if w]


@SETTINGS
@given(sentence=KNOWN_SENTENCE)
def test_moses_bpe_roundtrip_is_stable(moses_bpe, sentence: str) -> None:
    """Alphanumeric words are left alone by Moses and its detokenizer, so
    without <unk> decode then encode gives back the same ids."""
    ids = moses_bpe.encode_target(sentence)
    if moses_bpe.unk_id in ids:
        return
    assert moses_bpe.encode_target(moses_bpe.decode(ids)) == ids


def test_roundtrip_property_is_not_vacuous(moses_bpe) -> None:
    sentence = " ".join(_DE_WORDS[:40])
    ids = moses_bpe.encode_target(sentence)
    assert moses_bpe.unk_id not in ids and moses_bpe.encode_target(moses_bpe.decode(ids)) == ids


@SETTINGS
@given(text=ANY_TEXT, junk=st.lists(st.integers(min_value=-3, max_value=1000), max_size=20))
def test_sentencepiece_never_crashes(spm_tokenizers, text: str, junk: list[int]) -> None:
    for name, tok in spm_tokenizers.items():
        ids = tok.encode(text)
        assert ids[-1] == tok.eos_id
        assert isinstance(tok.decode(ids), str)
        # T5's tokenizer alone does not bound ids from above (the model's padding rows decode to nothing)
        _decodes_or_refuses(tok, junk, tok.target_vocab_size if name == "marian" else None)


@SETTINGS
@given(text=st.one_of(VALID_TEXT, PLAIN_SENTENCE, st.text(alphabet="ab <>_extraid0123456789", max_size=40)))
def test_sentencepiece_roundtrip_is_stable(spm_tokenizers, text: str) -> None:
    """SentencePiece decode gives the normalized text, and normalization is
    idempotent: without <unk>, encode(decode(ids)) == ids."""
    for name, tok in spm_tokenizers.items():
        ids = tok.encode(text) if name == "t5" else tok.encode_target(text)
        if tok.unk_id in ids or (name == "marian" and text.startswith(">>")):
            continue
        again = tok.encode(tok.decode(ids)) if name == "t5" else tok.encode_target(tok.decode(ids))
        assert again == ids, name


def _decodes_or_refuses(tok, ids: list[int], size: int | None) -> None:
    """Any ids decode to text, except ids outside the vocabulary (negative, or
    ``size`` and past), which are an InvalidInputError (issue #14), never a crash."""
    if any(i < 0 or (size is not None and i >= size) for i in ids):
        with pytest.raises(InvalidInputError, match="outside the target vocabulary"):
            tok.decode(ids)
    else:
        assert isinstance(tok.decode(ids), str)
