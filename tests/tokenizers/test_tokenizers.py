"""Tokenizer parity against the real reference pipelines.

Every expected value here is computed by the reference itself (the fastBPE
module, subword-nmt, sacremoses, fairseq's Dictionary and hub interface,
sentencepiece, transformers), never by modelport. The helpers at the top
build small fixtures (BPE codes, dictionaries, a tiny fairseq checkpoint,
SentencePiece models) from the hard corpus in tests/data and the English and
German training text in assets/corpus; the other tokenizer test modules
import them.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

import modelport
from modelport.errors import InvalidInputError
from modelport.tokenizers import load_tokenizer
from modelport.tokenizers.bpe import Bpe
from modelport.tokenizers.moses_bpe import MosesBpeTokenizer
from modelport.tokenizers.vocab import FairseqDictionary

ROOT = Path(__file__).resolve().parents[2]
HARD = Path(__file__).resolve().parents[1] / "data" / "tokenizer_corpus.txt"
TRAIN = ROOT / "assets" / "corpus"


def read_lines(path: Path) -> list[str]:
    """Lines split on ``\\n`` only: the corpus has U+2028, U+0085 and 0x1C inside lines."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def hard_lines() -> list[str]:
    return read_lines(HARD)


def train_lines(lang: str, n: int = 600) -> list[str]:
    return read_lines(TRAIN / f"train.{lang}")[:n]


# ---------------------------------------------------------------------------
# fixture builders (reference side)


def moses_words(lines: list[str], lang: str) -> Counter:
    from sacremoses import MosesTokenizer

    tok = MosesTokenizer(lang)
    words: Counter = Counter()
    for line in lines:
        words.update(w for w in tok.tokenize(line, aggressive_dash_splits=True, return_str=True, escape=True)
                     .split(" ") if w)
    return words


def learn_codes(words: Counter, n_merges: int) -> list[str]:
    """fastBPE ``learnbpe`` semantics in plain Python (most frequent pair, ties
    to the smallest pair), output as ``left right count`` lines. The codes are
    only test data: parity is then checked against the fastBPE module."""
    vocab = {tuple(w[:-1]) + (w[-1] + "</w>",): c for w, c in words.items()}
    codes = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for sym, c in vocab.items():
            for pair in zip(sym, sym[1:]):
                pairs[pair] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        codes.append(f"{best[0]} {best[1]} {pairs[best]}")
        merged = {}
        for sym, c in vocab.items():
            if best[0] in sym:
                out, i = [], 0
                while i < len(sym):
                    if i + 1 < len(sym) and sym[i] == best[0] and sym[i + 1] == best[1]:
                        out.append(sym[i] + sym[i + 1])
                        i += 2
                    else:
                        out.append(sym[i])
                        i += 1
                sym = tuple(out)
            merged[sym] = merged.get(sym, 0) + c
        vocab = merged
    return codes


def write_codes(path: Path, codes: list[str], fmt: str = "fastbpe") -> Path:
    if fmt == "subword_nmt":
        body = "#version: 0.2\n" + "\n".join(" ".join(c.split(" ")[:2]) for c in codes) + "\n"
    else:
        body = "\n".join(codes) + "\n"
    path.write_text(body, encoding="utf-8")
    return path


def reference_bpe(codes: Path, fmt: str):
    """The real library for a codes file: ``line -> bpe line``."""
    if fmt == "subword_nmt":
        apply_bpe = pytest.importorskip("subword_nmt.apply_bpe")
        with open(codes, encoding="utf-8") as f:
            bpe = apply_bpe.BPE(f, -1, "@@", None, None)
        return bpe.process_line
    fastBPE = pytest.importorskip("fastBPE")
    bpe = fastBPE.fastBPE(str(codes))
    return lambda s: bpe.apply([s])[0]


def write_dict(path: Path, lines: list[str], lang: str, apply, min_count: int = 2) -> int:
    """A fairseq dictionary of the BPE pieces of ``lines`` (rare pieces left
    out so that ``<unk>`` occurs); returns the number of symbols (with specials)."""
    from sacremoses import MosesTokenizer

    tok = MosesTokenizer(lang)
    counts: Counter = Counter()
    for line in lines:
        counts.update(apply(tok.tokenize(line, aggressive_dash_splits=True, return_str=True, escape=True)).split())
    kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda x: (-x[1], x[0]))
    path.write_text("".join(f"{w} {c}\n" for w, c in kept), encoding="utf-8")
    return len(kept) + 4


def build_fairseq_dir(directory: Path, *, fmt: str = "fastbpe", joined: bool = False, n_merges: int = 250,
                      checkpoint: bool = True, extra_codes: list[str] | None = None) -> Path:
    """A fairseq model folder: bpecodes, dict.en.txt/dict.de.txt from real
    text and, optionally, a tiny random checkpoint of matching vocabulary sizes."""
    directory.mkdir(parents=True, exist_ok=True)
    en = train_lines("en") + hard_lines()
    de = train_lines("de") + hard_lines()
    words = moses_words(en, "en") + moses_words(de, "de")
    codes = learn_codes(words, n_merges) + (extra_codes or [])
    write_codes(directory / "bpecodes", codes, fmt)
    apply = reference_bpe(directory / "bpecodes", fmt)
    if joined:
        n_src = n_tgt = write_dict(directory / "dict.en.txt", en + de, "en", apply)
        shutil.copyfile(directory / "dict.en.txt", directory / "dict.de.txt")
    else:
        n_src = write_dict(directory / "dict.en.txt", en, "en", apply)
        n_tgt = write_dict(directory / "dict.de.txt", de, "de", apply)
    if checkpoint:
        from tests.helpers.fairseq_ref import build_fairseq_model

        saved = {p: p.read_bytes() for p in (directory / "dict.en.txt", directory / "dict.de.txt")}
        build_fairseq_model(directory, src_vocab=n_src, tgt_vocab=n_tgt, share_all_embeddings=joined)
        for p, data in saved.items():  # the builder writes placeholder dictionaries of the same sizes
            p.write_bytes(data)
    return directory


@pytest.fixture(scope="session")
def fairseq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("fairseq")
    pytest.importorskip("fastBPE")
    return build_fairseq_dir(tmp_path_factory.mktemp("fsq") / "model")


@pytest.fixture(scope="session")
def ported_dir(tmp_path_factory: pytest.TempPathFactory, fairseq_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("ported") / "m"
    modelport.convert(str(fairseq_dir), out)
    return out


@pytest.fixture(scope="session")
def hub(fairseq_dir: Path):
    from modelport.validators.references.fairseq_hub import FairseqHubReference

    ref = FairseqHubReference(fairseq_dir)
    assert ref.via == "hub_interface"
    return ref.hub


@pytest.fixture(scope="session")
def spm_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SentencePiece models trained on English+German+hard text: T5-style
    (pad 0, eos 1, unk 2) and Marian-style (eos 0, unk 1, no pad)."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("spm")
    text = d / "train.txt"
    text.write_text("\n".join(train_lines("en", 1500) + train_lines("de", 1500) + hard_lines()), encoding="utf-8")
    common = dict(input=str(text), vocab_size=400, character_coverage=0.995, minloglevel=2,
                  max_sentence_length=20000)
    spm.SentencePieceTrainer.train(model_prefix=str(d / "t5"), pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   model_type="unigram", **common)
    spm.SentencePieceTrainer.train(model_prefix=str(d / "marian_src"), eos_id=0, unk_id=1, bos_id=-1, pad_id=-1,
                                   model_type="unigram", **common)
    spm.SentencePieceTrainer.train(model_prefix=str(d / "marian_tgt"), eos_id=0, unk_id=1, bos_id=-1, pad_id=-1,
                                   model_type="bpe", **common)
    return {"t5": d / "t5.model", "marian_src": d / "marian_src.model", "marian_tgt": d / "marian_tgt.model"}


def write_marian_dir(directory: Path, spm_models: dict[str, Path], *, separate: bool = False) -> Path:
    """An OPUS-MT style folder: source.spm, target.spm and a vocabulary YAML
    (written like Marian writes it; the YAML includes pieces such as ``no`` and
    ``null`` that a naive YAML reader turns into booleans)."""
    import sentencepiece as spm

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spm_models["marian_src"], directory / "source.spm")
    shutil.copyfile(spm_models["marian_tgt"], directory / "target.spm")

    def pieces(path: Path) -> list[str]:
        sp = spm.SentencePieceProcessor(model_file=str(path))
        return [sp.id_to_piece(i) for i in range(2, sp.get_piece_size())]

    def yaml_vocab(path: Path, plist: list[str]) -> None:
        out = ['"</s>": 0', '"<unk>": 1']
        seen = {"</s>", "<unk>"}
        extra = [">>de<<", ">>fr<<", "no", "null", "yes", "1", "~"]
        for p in extra + plist[: len(plist) * 9 // 10]:  # leave some pieces out: <unk>
            if p not in seen:
                seen.add(p)
                out.append(f"{json.dumps(p, ensure_ascii=False)}: {len(out)}")
        path.write_text("\n".join(out) + "\n", encoding="utf-8")

    src_pieces, tgt_pieces = pieces(spm_models["marian_src"]), pieces(spm_models["marian_tgt"])
    if separate:
        yaml_vocab(directory / "opus.src.vocab.yml", src_pieces)
        yaml_vocab(directory / "opus.target.vocab.yml", tgt_pieces)
    else:
        yaml_vocab(directory / "opus.spm32k-spm32k.vocab.yml", list(dict.fromkeys(src_pieces + tgt_pieces)))
    return directory


# ---------------------------------------------------------------------------
# BPE: fastBPE and subword-nmt

EDGE_WORDS = [
    "th\x00e the", "\x00lead", "tail\x00", "a  b", " x ", "", "the\tthe", "a" * 3000, "ab" * 500,
    "the the the the", "é e\u0301 😀👍🏽 東京", "</w> @@ a@@ b</w>c", "x\u2028y", "ü" * 40,
]


@pytest.fixture(scope="module")
def learned_codes(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    words = moses_words(train_lines("en", 400) + hard_lines(), "en")
    return learn_codes(words, 200)


@pytest.mark.parametrize("variant", ["learned", "duplicates", "exhausted", "crlf"])
def test_fastbpe_matches_fastbpe_module(tmp_path: Path, learned_codes: list[str], variant: str) -> None:
    codes = list(learned_codes)
    if variant == "duplicates":  # a pair listed again is re-ranked by fastBPE (the later line wins)
        codes = codes[:50] + codes[:10] + codes[50:] + [codes[3], codes[0]]
    elif variant == "exhausted":  # what `fast learnbpe` emits once no pair is left: one pair repeated, count 0
        codes = codes + [f"{' '.join(codes[-1].split()[:2])} 0"] * 5
    path = write_codes(tmp_path / "codes", codes)
    if variant == "crlf":
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    ref = reference_bpe(path, "fastbpe")
    ours = Bpe.load(path)
    assert ours.fmt == "fastbpe"
    from sacremoses import MosesTokenizer

    tok = MosesTokenizer("en")
    lines = hard_lines() + train_lines("en", 300) + EDGE_WORDS
    for line in lines + [tok.tokenize(x, aggressive_dash_splits=True, return_str=True, escape=True) for x in lines]:
        assert ours.apply(line) == ref(line), repr(line)


def test_fastbpe_hand_written_ranks(tmp_path: Path) -> None:
    """The rank rules on tiny codes where the order decides the result."""
    fastBPE = pytest.importorskip("fastBPE")
    cases = {
        "dup_later_wins": "a b 10\nb c</w> 9\na b 8\n",
        "dup_ties_next_new": "a b 10\nb c 9\na b 8\nc d</w> 7\n",
        "overlap": "a a 10\naa a</w> 5\n",
        "two_fields": "a b\nab c</w>\n",
    }
    words = ["abc", "abcd", "aaa", "aaaa", "aaaaa", "abab", "cab", "bcd", "abcabc", "a", "b"]
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        ref = fastBPE.fastBPE(str(path))
        ours = Bpe.load(path)
        for w in words:
            assert ours.apply(w) == ref.apply([w])[0], (name, w)


@pytest.mark.parametrize("version", ["0.2", "0.1"])
def test_subword_nmt_matches_apply_bpe(tmp_path: Path, learned_codes: list[str], version: str) -> None:
    pairs = [" ".join(c.split()[:2]) for c in learned_codes]
    if version == "0.1":  # version 0.1 codes treat </w> as a separate symbol
        pairs = [p.replace("</w>", "") for p in pairs if p.replace("</w>", "").count(" ") == 1
                 and "" not in p.replace("</w>", "").split(" ")]
        pairs += ["e </w>", "s </w>", "t h", "th e"]
    pairs = pairs[:40] + pairs[:5] + pairs[40:]  # duplicates: subword-nmt keeps the first rank
    path = tmp_path / "codes"
    path.write_text(f"#version: {version}\n" + "\n".join(pairs) + "\n", encoding="utf-8")
    ref = reference_bpe(path, "subword_nmt")
    ours = Bpe.load(path)
    assert ours.fmt == "subword_nmt" and ours.version == tuple(int(x) for x in version.split("."))
    for line in hard_lines() + train_lines("en", 300) + EDGE_WORDS:
        if "\x00" in line or "\r" in line:
            continue
        assert ours.apply(line) == ref(line), repr(line)


def test_bad_codes_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "codes"
    bad.write_text("a b 3\nlonely\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 2"):
        Bpe.load(bad)
    bad.write_text("#version: 0.2\na b 3\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="two subword units"):
        Bpe.load(bad)
    with pytest.raises(InvalidInputError, match="not a known BPE codes format"):
        Bpe.load(bad, "wordpiece")


# ---------------------------------------------------------------------------
# fairseq Dictionary


def test_dictionary_matches_fairseq(tmp_path: Path) -> None:
    Dictionary = pytest.importorskip("fairseq.data").Dictionary
    path = tmp_path / "dict.txt"
    path.write_text("the 100\nof 50\nline\u2028sep 9\nx\x1cy 8\nnel\x85x 7\nthe 3 #fairseq:overwrite\n"
                    "a\u00a0b 2\nmadeupword0001 0\n", encoding="utf-8")
    ref = Dictionary.load(str(path))
    ours = FairseqDictionary.load(path)
    assert ours.symbols == ref.symbols
    assert len(ours) == len(ref)
    for w in ref.symbols + ["unknown", "<unk>", "</s>", "<pad>", "<s>"]:
        assert ours.index(w) == ref.index(w), w
    assert (ours.bos_index, ours.pad_index, ours.eos_index, ours.unk_index) == \
           (ref.bos(), ref.pad(), ref.eos(), ref.unk())
    for factor in (8, 16):
        ref.pad_to_multiple_(factor)
        ours.pad_to_multiple_(factor)
        assert ours.symbols == ref.symbols
        assert [ours.index(s) for s in ref.symbols] == [ref.index(s) for s in ref.symbols]
    ids = list(range(len(ref))) + [len(ref) + 5]
    import torch

    assert ours.string(ids) == ref.string(torch.tensor(ids))


def test_dictionary_rejects_duplicates_like_fairseq(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("a 1\nb 1\na 1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="repeats `a` on line 3"):
        FairseqDictionary.load(path)
    path.write_text("a 1\n\nb 1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 2"):
        FairseqDictionary.load(path)


# ---------------------------------------------------------------------------
# Moses + BPE + dictionary against fairseq's hub interface


def test_hub_interface_parity_on_hard_corpus(ported_dir: Path, hub) -> None:
    tok = load_tokenizer(ported_dir / "tokenizer")
    assert isinstance(tok, MosesBpeTokenizer)
    lines = hard_lines() + train_lines("en", 200)
    n_unk = 0
    for line in lines:
        ref_ids = hub.encode(line).tolist()
        assert tok.encode(line) == ref_ids, repr(line)
        n_unk += ref_ids.count(3)
        # decode the target ids of the line (German side) with both
        t_ids = tok.encode_target(line)
        import torch

        assert tok.decode(t_ids) == hub.decode(torch.tensor(t_ids)), repr(line)
        assert tok.tokenize(line) == hub.apply_bpe(hub.tokenize(line)).split()
    assert n_unk > 0, "the corpus must exercise <unk>"
    assert tok.encode_batch(lines) == [hub.encode(x).tolist() for x in lines]


def test_hub_decode_of_arbitrary_ids(ported_dir: Path, hub) -> None:
    import torch

    tok = load_tokenizer(ported_dir / "tokenizer")
    n = len(tok.target_dict)
    rows = [[5, 6, 7, 2], [0, 9, 3, 3, 2], list(range(4, min(n, 80))), [2], [], [n - 1, 4, n - 2]]
    for ids in rows:
        assert tok.decode(ids) == hub.decode(torch.tensor(ids, dtype=torch.long)), ids
        assert tok.decode(torch.tensor(ids, dtype=torch.long)) == tok.decode(ids)


def test_target_side_matches_fairseq_components(ported_dir: Path, fairseq_dir: Path) -> None:
    """encode_target = German Moses + fastBPE + German dictionary, as fairseq
    binarizes the target (fairseq's own MosesTokenizer, fastBPE and Dictionary)."""
    import argparse

    from fairseq.data import Dictionary, encoders
    from fairseq.data.encoders.moses_tokenizer import MosesTokenizer, MosesTokenizerConfig

    tok = load_tokenizer(ported_dir / "tokenizer")
    moses = MosesTokenizer(MosesTokenizerConfig(source_lang="de", target_lang="de"))
    bpe = encoders.build_bpe(argparse.Namespace(bpe="fastbpe", bpe_codes=str(fairseq_dir / "bpecodes")))
    d = Dictionary.load(str(fairseq_dir / "dict.de.txt"))
    for line in hard_lines() + train_lines("de", 200):
        ref = d.encode_line(bpe.encode(moses.encode(line)), add_if_not_exist=False).tolist()
        assert tok.encode_target(line) == ref, repr(line)


@pytest.mark.parametrize("escape", [True, False])
@pytest.mark.parametrize("dash", [True, False])
@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_moses_flags_and_languages(fairseq_dir: Path, escape: bool, dash: bool, lang: str) -> None:
    """Every combination of fairseq's Moses flags and a language with its own
    apostrophe rules (fr), against fairseq's MosesTokenizer + fastBPE + Dictionary."""
    import argparse

    import torch
    from fairseq.data import Dictionary, encoders
    from fairseq.data.encoders.moses_tokenizer import MosesTokenizer, MosesTokenizerConfig

    moses = MosesTokenizer(MosesTokenizerConfig(source_lang=lang, target_lang=lang, moses_no_escape=not escape,
                                                moses_no_dash_splits=not dash))
    bpe = encoders.build_bpe(argparse.Namespace(bpe="fastbpe", bpe_codes=str(fairseq_dir / "bpecodes")))
    d = Dictionary.load(str(fairseq_dir / "dict.en.txt"))
    ours = MosesBpeTokenizer(FairseqDictionary.load(fairseq_dir / "dict.en.txt"),
                             FairseqDictionary.load(fairseq_dir / "dict.en.txt"), source_lang=lang,
                             target_lang=lang, bpe=Bpe.load(fairseq_dir / "bpecodes"), moses_escape=escape,
                             moses_aggressive_dash_splits=dash)
    for line in hard_lines():
        ids = d.encode_line(bpe.encode(moses.encode(line)), add_if_not_exist=False).tolist()
        assert ours.encode(line) == ids, repr(line)
        ref_text = moses.decode(bpe.decode(d.string(torch.tensor(ids))))
        assert ours.decode(ids) == ref_text, repr(line)


@pytest.mark.parametrize("fmt,joined", [("subword_nmt", False), ("fastbpe", True)])
def test_other_fixtures_match_hub(tmp_path: Path, fmt: str, joined: bool) -> None:
    """subword-nmt codes (fairseq bpe='subword_nmt') and a joined dictionary."""
    pytest.importorskip("fairseq")
    if fmt == "subword_nmt":
        pytest.importorskip("subword_nmt")
    src = build_fairseq_dir(tmp_path / "src", fmt=fmt, joined=joined, n_merges=150)
    ported = modelport.convert(str(src), tmp_path / "ported")
    tok = ported.tokenizer
    assert tok.bpe.fmt == fmt
    from modelport.validators.references.fairseq_hub import FairseqHubReference

    ref = FairseqHubReference(src)
    for line in hard_lines():
        assert tok.encode(line) == ref.encode(line), repr(line)
        t = tok.encode_target(line)
        assert tok.decode(t) == ref.decode(t), repr(line)


def test_embedded_model_matches_hub_on_test_sentences(ported_default, default_model_dir: Path) -> None:
    """The embedded en→de model: every test sentence, both sides, against the hub interface."""
    pytest.importorskip("fairseq")
    import torch

    from modelport.validators.references.fairseq_hub import FairseqHubReference

    tok = ported_default.tokenizer
    ref = FairseqHubReference(default_model_dir, source_lang=tok.source_lang, target_lang=tok.target_lang)
    hub = ref.hub
    src = read_lines(ROOT / "assets" / "corpus" / "test.en")
    tgt = read_lines(ROOT / "assets" / "corpus" / "test.de")
    assert tok.encode_batch(src) == [hub.encode(x).tolist() for x in src]
    for line in tgt:
        ids = tok.encode_target(line)
        assert tok.decode(ids) == hub.decode(torch.tensor(ids))
    for line in hard_lines():
        assert tok.encode(line) == hub.encode(line).tolist(), repr(line)


def test_encode_is_cache_independent(ported_dir: Path) -> None:
    lines = hard_lines()
    warm = load_tokenizer(ported_dir / "tokenizer")
    first = [warm.encode(x) for x in lines]
    assert [warm.encode(x) for x in reversed(lines)] == first[::-1]
    assert warm.encode_batch(lines + lines) == first + first
    cold = load_tokenizer(ported_dir / "tokenizer")
    cold._sides["source"].max_cache = 3  # forces evictions on every few words
    assert [cold.encode(x) for x in lines] == first


def test_parallel_encode_batch_is_identical(ported_dir: Path) -> None:
    from modelport.tokenizers.moses_bpe import PARALLEL_MIN_LINES

    lines = read_lines(TRAIN / "train.en")[:PARALLEL_MIN_LINES] + hard_lines()
    tok = load_tokenizer(ported_dir / "tokenizer")
    serial = tok.encode_batch(lines)
    assert load_tokenizer(ported_dir / "tokenizer").encode_batch(lines, workers=2) == serial
    assert serial[-len(hard_lines()):] == [tok.encode(x) for x in hard_lines()]


def test_unknown_tokenizer_type(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text('{"type": "wordpiece"}', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="`wordpiece` is not a known tokenizer type"):
        load_tokenizer(tmp_path)


# ---------------------------------------------------------------------------
# SentencePiece: Marian and T5


@pytest.mark.parametrize("separate", [False, True])
def test_marian_matches_sentencepiece_and_transformers(tmp_path: Path, spm_models, separate: bool) -> None:
    from modelport.tokenizers.sentencepiece import MarianSpmTokenizer, save_marian
    from modelport.validators.references.sentencepiece_ref import MarianSpmReference

    orig = write_marian_dir(tmp_path / "opus", spm_models, separate=separate)
    vocab = next(orig.glob("*.vocab.yml")) if not separate else orig / "opus.src.vocab.yml"
    cfg = save_marian(tmp_path / "tok", source_spm=orig / "source.spm", target_spm=orig / "target.spm",
                      vocab=vocab, target_vocab=orig / "opus.target.vocab.yml" if separate else None)
    tok = load_tokenizer(tmp_path / "tok")
    assert isinstance(tok, MarianSpmTokenizer)
    assert cfg["pad_id"] == tok.pad_id == max(tok.target_vocab.values())
    assert "no" in tok.vocab and "null" in tok.vocab  # YAML pieces stay strings
    ref = MarianSpmReference(orig)
    transformers = pytest.importorskip("transformers")
    from modelport.validators.references.transformers_tok import MarianReference

    hf = MarianReference(orig)
    assert isinstance(hf.tok, transformers.MarianTokenizer)
    lines = hard_lines() + [">>de<< Hello world", ">>fr<<Bonjour", "no null yes 1 ~"]
    n_unk = 0
    for line in lines:
        ids = tok.encode(line)
        assert ids == ref.encode(line), repr(line)
        n_unk += ids.count(tok.unk_id)
        t = tok.encode_target(line)
        assert t == ref.encode_target(line)
        assert tok.decode(t) == ref.decode(t), repr(line)
        # MarianTokenizer (second opinion) splits the literal strings <unk>,
        # </s> and <pad> out of the text as special tokens; Marian and
        # spm_encode see them as ordinary text. Everywhere else it agrees.
        if not any(s in line for s in ("<unk>", "</s>", "<pad>")):
            assert ids == hf.encode(line), repr(line)
            assert tok.decode(t) == hf.decode(t), repr(line)
    assert n_unk > 0


def test_t5_matches_sentencepiece_and_transformers(tmp_path: Path, spm_models) -> None:
    from modelport.tokenizers.sentencepiece import T5SpmTokenizer, save_t5
    from modelport.validators.references.sentencepiece_ref import T5SpmReference

    orig = tmp_path / "t5"
    orig.mkdir()
    shutil.copyfile(spm_models["t5"], orig / "spiece.model")
    save_t5(tmp_path / "tok", spm=orig / "spiece.model")
    tok = load_tokenizer(tmp_path / "tok")
    assert isinstance(tok, T5SpmTokenizer)
    assert (tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2)
    assert tok.vocab_size == 500 and tok.sentinel_id(0) == 499 and tok.sentinel_id(99) == 400
    ref = T5SpmReference(orig)
    pytest.importorskip("transformers")
    from modelport.validators.references.transformers_tok import T5Reference

    hf = T5Reference(orig)
    assert hf.tok.convert_tokens_to_ids("<extra_id_0>") == tok.sentinel_id(0)
    assert hf.tok.convert_tokens_to_ids("<extra_id_99>") == tok.sentinel_id(99)
    sentinel_lines = ["Hello <extra_id_0> world <extra_id_1>.", "a<extra_id_5>b<extra_id_99>",
                      "<extra_id_0>", "not a sentinel <extra_id_100> <extra_id_01>"]
    for line in hard_lines() + sentinel_lines:
        ids = tok.encode(line)
        assert ids == ref.encode(line), repr(line)
        assert tok.decode(ids) == ref.decode(ids), repr(line)
    # transformers' T5Tokenizer (tokenizers Unigram + Metaspace) as a second
    # opinion on encoding. Known, principled differences: it splits the literal
    # strings <unk>, </s>, <pad> out of the text as special tokens, and splits
    # on Unicode whitespace (U+2028, U+0085, ...) that T5's normalizer keeps.
    # Decoding follows transformers everywhere: skip_special_tokens=True by
    # default, skip_special_tokens=False with keep_special_tokens.
    compared = 0
    for line in hard_lines() + train_lines("en", 100) + train_lines("de", 100) + sentinel_lines:
        ids = tok.encode(line)
        assert tok.decode(ids) == hf.tok.decode(ids, skip_special_tokens=True), repr(line)
        kept = [i for i in ids if i not in (tok.eos_id, tok.pad_id)]
        assert tok.decode(ids, keep_special_tokens=True) == hf.tok.decode(kept, skip_special_tokens=False), repr(line)
        if (tok.unk_id in ids or any(s in line for s in ("<unk>", "</s>", "<pad>"))
                or any(c.isspace() and c not in " \t" for c in line)):
            continue
        compared += 1
        assert ids == hf.encode(line), repr(line)
    assert compared > 200
    assert "<extra_id_0>" not in tok.decode(tok.encode("<extra_id_0>"))
    assert tok.decode(tok.encode("<extra_id_0>"), keep_special_tokens=True) == "<extra_id_0>"
