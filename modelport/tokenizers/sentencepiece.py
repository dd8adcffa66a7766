"""SentencePiece pipelines of Marian/OPUS-MT and T5.

Both run the ``sentencepiece`` library itself; what differs is how pieces
become ids and which ids are special.

Marian / OPUS-MT (``type: "marian_spm"``)
    OPUS-MT preprocesses with ``spm_encode --model source.spm`` and Marian maps
    the pieces through its vocabulary YAML (``*.vocab.yml``, piece → id); a
    piece the YAML lacks is ``<unk>``; ``</s>`` is appended. A leading
    ``>>xx<<`` target-language token (multilingual models) is split off before
    SentencePiece and looked up whole. Marian's vocabularies have no padding
    symbol (Marian pads with ``</s>`` and masks); like transformers'
    conversion, ``<pad>`` is appended after the last id when absent, and
    ``pad_id`` records it. Decoding maps ids back to pieces (target
    vocabulary) and drops ``</s>``/pad; the text then follows the folder's
    ``decode_rule``, the rule of the pipeline the model was made for:

    * ``"opus_mt"`` (OPUS-MT's YAML vocabularies; a config without the key,
      written before it existed): ``<unk>`` kept literally, ``decode_pieces``
      of ``target.spm`` on the rest, ``▁`` as space, the text stripped, as
      transformers' ``MarianTokenizer`` does;
    * ``"sentencepiece"`` (Marian's own ``.spm`` vocabularies): the pieces
      decoded by ``target.spm`` as they are, as Marian's
      ``SentencePieceVocab::decode`` does (marian-dev
      src/data/sentencepiece_vocab.cpp: ``Decode`` of the ids, ``</s>``
      left out): a trailing space piece stays a trailing space and
      ``<unk>`` is sentencepiece's `` ⁇ ``.

    Encoding is the library's, except where Marian encodes the text itself
    (``.spm`` vocabularies: ``encode_rule: "marian"``): there ties between
    segmentations of equal score fall as in Marian's bundled SentencePiece
    (:mod:`modelport.tokenizers.marian_unigram`).

T5 (``type: "t5_spm"``)
    ids are SentencePiece ids of ``spiece.model`` (``<pad>`` 0, ``</s>`` 1,
    ``<unk>`` 2), followed by ``extra_ids`` (100) sentinels in T5's order:
    ``<extra_id_0>`` is the *last* id, ``<extra_id_N>`` is
    ``vocab + extra_ids - 1 - N``. Sentinel strings in the text are split off
    and looked up whole; each text chunk between them goes through
    ``encode``; ``</s>`` is appended. Decoding is transformers' (5.x)
    ``T5Tokenizer.decode``, what T5 users call: its special tokens
    (``<unk>`` and the sentinels; ``</s>`` and pad are always dropped) are
    skipped by default (``skip_special_tokens=True``) or, with
    ``keep_special_tokens=True``, rendered literally (``<unk>``,
    ``<extra_id_N>``); ids past the pieces (the model's padding rows)
    are dropped, a negative id (or one past the model's vocabulary, when the
    loader knows it) is refused; the pieces
    that remain are joined by the tokenizers library's ``Metaspace`` decoder:
    every ``▁`` of the *first* remaining piece is removed, every later ``▁``
    becomes a space. (``sentencepiece``'s own ``decode`` differs: it strips
    all leading whitespace pieces and prints ``<unk>`` as `` ⁇ ``.) When the
    source folder's ``tokenizer_config.json`` sets
    ``clean_up_tokenization_spaces``, transformers' clean-up follows
    (`` .`` → ``.``, `` 's`` → ``'s``, ...; transformers 5 defaults to off).

Files a converter must put into ``tokenizer/`` (``save_marian`` and
``save_t5`` write them; call them from the converter's plan step on a
directory that then becomes the plan's tokenizer files):

``marian_spm``
    ``source.spm``, ``target.spm`` (copies of the OPUS-MT files of those
    names), ``vocab.json`` (piece → id, from the YAML, ``<pad>`` added) and,
    for separate vocabularies, ``target_vocab.json``. tokenizer_config.json
    keys: ``type``, ``source_spm``, ``target_spm``, ``vocab``,
    ``target_vocab`` (file name or null), ``eos_token``, ``unk_token``,
    ``pad_token``, ``eos_id``, ``unk_id``, ``pad_id``,
    ``language_code_prefix`` (bool), ``append_eos`` (bool),
    ``decode_rule`` (``opus_mt`` when absent), ``encode_rule`` (``sentencepiece``
    when absent), ``source_lang``, ``target_lang``.
``t5_spm``
    ``spiece.model``. tokenizer_config.json keys: ``type``, ``spm``,
    ``extra_ids``, ``eos_id``, ``unk_id``, ``pad_id``, ``append_eos``,
    ``clean_up_tokenization_spaces``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError, first_line
from modelport.tokenizers.base import (CONFIG_NAME, TokenizerBase, as_ids, as_lines, as_text, check_ids,
                                       check_keep_special_tokens, language_code_tokens, read_config, tokenizer_file)
from modelport.tokenizers.marian_unigram import MarianUnigram, library_pieces, pieces_of

SPIECE_UNDERLINE = "▁"
# transformers' ``clean_up_tokenization``: spaces the tokenization put before
# punctuation and English clitics, removed in this order
CLEAN_UP_TOKENIZATION = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                         (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))
_SENTINEL = re.compile(r"<extra_id_(\d+)>")


def _load_spm(path: Path) -> Any:
    import sentencepiece

    if not path.is_file():
        raise InvalidInputError(f"SentencePiece model `{path}` does not exist")
    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.Load(str(path))
    except (OSError, RuntimeError) as exc:
        raise InvalidInputError(f"`{path}` is not a SentencePiece model ({exc})") from None
    return sp


_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def read_marian_vocab(path: str | os.PathLike[str]) -> dict[str, int]:
    """A Marian vocabulary (``.yml`` or ``.json``) as piece → id.

    YAML is read with ``BaseLoader`` so that pieces such as ``no``, ``null``
    or ``1`` stay strings (``safe_load`` would turn them into ``False``,
    ``None`` and ``1``)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"vocabulary `{path}` does not exist")
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else \
            yaml.load(text, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    except (UnicodeDecodeError, ValueError, yaml.YAMLError, RecursionError) as e:  # JSONDecodeError: a ValueError
        raise InvalidInputError(f"vocabulary `{path}` is not a readable Marian vocabulary ({first_line(e, 120)})") \
            from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"vocabulary `{path}` must map pieces to ids, but is {type(data).__name__}")
    # an id as plain decimal digits: int() also takes "1_0" (10), " 7", "+7" and other scripts' digits, which
    # Marian's YAML reader does not, and a leading zero is octal to it
    odd = next((k for k, v in data.items() if not (type(v) is int or (isinstance(v, str) and _DECIMAL.fullmatch(v)))),
               None)
    if odd is not None:
        raise InvalidInputError(f"vocabulary `{path}` must map pieces to integer ids (decimal digits), but gives "
                                f"{json.dumps(str(odd), ensure_ascii=False)[:80]} {json.dumps(data[odd])[:40]}")
    vocab = {str(k): int(v) for k, v in data.items()}
    if not vocab:  # Marian's DefaultVocab aborts on it too ("Empty vocabulary")
        raise InvalidInputError(f"vocabulary `{path}` is empty")
    negative = next((k for k, v in vocab.items() if v < 0), None)
    if negative is not None:  # Marian reads ids as unsigned word indices
        raise InvalidInputError(f"vocabulary `{path}` gives `{negative}`"[:200] + f" the negative id {vocab[negative]}")
    return vocab


def _opus_mt_text(pieces: Sequence[str], sp: Any, specials: Collection[str]) -> str:
    """OPUS-MT's text, as transformers' ``MarianTokenizer`` decodes: special
    pieces (``<unk>``) kept literally between spm-decoded runs, ``▁`` as space,
    the text stripped."""
    out, run = "", []
    for tok in pieces:
        if tok in specials:
            out += sp.decode_pieces(run) + tok + " "
            run = []
        else:
            run.append(tok)
    out += sp.decode_pieces(run)
    return out.replace(SPIECE_UNDERLINE, " ").strip()


def _sentencepiece_text(pieces: Sequence[str], sp: Any, specials: Collection[str]) -> str:
    """Marian's text with ``.spm`` vocabularies (``SentencePieceVocab::decode``):
    sentencepiece decodes every piece, whitespace kept as it comes (a trailing
    ``▁`` is a trailing space; ``<unk>`` is sentencepiece's `` ⁇ ``)."""
    return sp.decode_pieces(list(pieces))


# tokenizer_config.json ``decode_rule`` -> how target pieces become text; a
# config written before the key existed is OPUS-MT's rule
DECODE_RULES: dict[str, Callable[[Sequence[str], Any, Collection[str]], str]] = {
    "opus_mt": _opus_mt_text, "sentencepiece": _sentencepiece_text}
DEFAULT_DECODE_RULE = "opus_mt"


# tokenizer_config.json ``encode_rule`` -> how text becomes pieces: the library's
# encoding (a config without the key), or Marian's own unigram segmentation
# (modelport.tokenizers.marian_unigram), which the .spm vocabularies of a
# Marian model are encoded with by Marian itself
ENCODE_RULES = ("sentencepiece", "marian")
DEFAULT_ENCODE_RULE = "sentencepiece"


def checked_encode_rule(rule: Any) -> str:
    """``rule`` if it names an encode rule, else a typed error listing them."""
    if not isinstance(rule, str) or rule not in ENCODE_RULES:
        raise InvalidInputError(f"`{rule}` is not a known Marian encode rule (known: {', '.join(ENCODE_RULES)})"[:300])
    return rule


def checked_decode_rule(rule: Any) -> str:
    """``rule`` if it names a Marian decode rule, else a typed error listing them."""
    if not isinstance(rule, str) or rule not in DECODE_RULES:
        raise InvalidInputError(f"`{rule}` is not a known Marian decode rule (known: {', '.join(DECODE_RULES)})")
    return rule


class MarianSpmTokenizer(TokenizerBase):
    """SentencePiece + Marian vocabulary, as OPUS-MT and ``MarianTokenizer`` encode."""

    kind = "marian_spm"
    vocab_sizes_rows = True

    def __init__(self, source_spm: Any, target_spm: Any, vocab: Mapping[str, int],
                 target_vocab: Mapping[str, int] | None = None, *, eos_token: str = "</s>",
                 unk_token: str = "<unk>", pad_token: str = "<pad>", pad_id: int | None = None,
                 language_code_prefix: bool = True, append_eos: bool = True,
                 decode_rule: str = DEFAULT_DECODE_RULE, encode_rule: str = DEFAULT_ENCODE_RULE,
                 spm_paths: tuple[Path, Path] | None = None, max_cache: int = 1 << 18) -> None:
        self.decode_rule = checked_decode_rule(decode_rule)
        self.encode_rule = checked_encode_rule(encode_rule)
        # text -> pieces per side: the library's, or Marian's own segmentation (see marian_unigram)
        self._pieces: dict[str, Callable[[str], list[str]]] = {"source": library_pieces(source_spm),
                                                                "target": library_pieces(target_spm)}
        self._rules: list[MarianUnigram] = []  # Marian's segmentations, whose kept word paths clear_cache forgets
        if self.encode_rule == "marian":
            if spm_paths is None:
                raise InvalidInputError("encode_rule `marian` needs the paths of the two SentencePiece models")
            rules = [MarianUnigram.load(path, sp) for path, sp in zip(spm_paths, (source_spm, target_spm))]
            self._pieces = {side: pieces_of(rule, sp) for side, rule, sp
                            in zip(("source", "target"), rules, (source_spm, target_spm))}
            self._rules = [rule for rule in rules if rule is not None]
        self.spm_source = source_spm
        self.spm_target = target_spm
        self.vocab = dict(vocab)
        self.target_vocab = dict(target_vocab) if target_vocab is not None else self.vocab
        for name, v in (("vocab", self.vocab), ("target_vocab", self.target_vocab)):
            for tok in (eos_token, unk_token):
                if tok not in v:
                    raise InvalidInputError(f"`{tok}` must be in the Marian {name}, but is not")
        self.eos_token, self.unk_token, self.pad_token = eos_token, unk_token, pad_token
        self.eos_id = self.target_vocab[eos_token]
        self.unk_id = self.target_vocab[unk_token]
        self.pad_id = pad_id if pad_id is not None else self.target_vocab.get(pad_token, self.eos_id)
        # one past the largest id per side, computed once: decode checks every line's ids against it (a max
        # over 58,000 entries, an OPUS-MT-sized vocabulary, took 0.69 ms a line)
        self._sizes = {"source": max(self.vocab.values()) + 1, "target": max(self.target_vocab.values()) + 1}
        check_ids([self.pad_id], self._sizes["target"], where=f" (`pad_id` of {CONFIG_NAME})")
        self.language_code_prefix = language_code_prefix
        self.append_eos = append_eos
        self._inverse = {"source": {i: p for p, i in self.vocab.items()},
                         "target": {i: p for p, i in self.target_vocab.items()}}
        self._cache: dict[tuple[str, str], list[int]] = {}
        self.max_cache = max_cache

    @classmethod
    def from_dir(cls, directory: str | Path, cfg: dict[str, Any] | None = None) -> MarianSpmTokenizer:
        """Load from a ported folder's ``tokenizer/``."""
        directory, cfg = read_config(directory, cfg)
        paths = (tokenizer_file(directory, cfg, "source_spm", "source.spm"),
                 tokenizer_file(directory, cfg, "target_spm", "target.spm"))
        src, tgt = (_load_spm(path) for path in paths)
        vocab = read_marian_vocab(tokenizer_file(directory, cfg, "vocab", "vocab.json"))
        tvocab = read_marian_vocab(tokenizer_file(directory, cfg, "target_vocab")) if cfg.get("target_vocab") else None
        return cls(src, tgt, vocab, tvocab, eos_token=cfg.get("eos_token", "</s>"),
                   unk_token=cfg.get("unk_token", "<unk>"), pad_token=cfg.get("pad_token", "<pad>"),
                   pad_id=cfg.get("pad_id"), language_code_prefix=cfg.get("language_code_prefix", True),
                   append_eos=cfg.get("append_eos", True),
                   decode_rule=cfg.get("decode_rule", DEFAULT_DECODE_RULE),
                   encode_rule=cfg.get("encode_rule", DEFAULT_ENCODE_RULE), spm_paths=paths)

    @property
    def source_vocab_size(self) -> int:
        return self._sizes["source"]

    @property
    def target_vocab_size(self) -> int:
        return self._sizes["target"]

    def _vocab(self, side: str) -> dict[str, int]:
        if side not in self._inverse:
            raise InvalidInputError(f"`{side}` is not a known side (known: {', '.join(self._inverse)})")
        return self.vocab if side == "source" else self.target_vocab

    def vocab_size_of(self, side: str = "target") -> int:
        """One past the largest id of ``side``'s vocabulary."""
        self._vocab(side)  # refuses an unknown side
        return self._sizes[side]

    own_vocab_size = vocab_size_of

    @property
    def language_codes(self) -> list[str]:
        """The ``>>xxx<<`` tokens of the source vocabulary: a multilingual-target model's target
        languages, which a user writes at the start of each source line, as Marian reads them."""
        return language_code_tokens(self.vocab)

    def _split_code(self, line: str) -> tuple[list[str], str]:
        if self.language_code_prefix and line.startswith(">>"):
            end = line.find("<<")
            if end != -1:
                return [line[: end + 2]], line[end + 2:]
        return [], line

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        """The pieces (language code first, if any), without ``</s>``."""
        code, text = self._split_code(line)
        return code + self._pieces["source" if side == "source" else "target"](text)

    def clear_cache(self) -> None:
        """Forget the lines encoded so far and the word paths Marian's segmentation
        kept, so that the next lines are encoded as in a fresh process (a benchmark's
        timed rounds)."""
        self._cache.clear()
        for rule in self._rules:
            rule.forget()

    def _encode(self, line: str, side: str) -> list[int]:
        key = (side, as_text(line))
        got = self._cache.get(key)
        if got is None:
            vocab = self.vocab if side == "source" else self.target_vocab
            unk = vocab[self.unk_token]
            got = [vocab.get(p, unk) for p in self.tokenize(line, side=side)]
            if self.append_eos:
                got.append(vocab[self.eos_token])
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[key] = got
        return list(got)

    def encode(self, line: str) -> list[int]:
        """Source ids, ``</s>`` appended."""
        return self._encode(line, "source")

    def encode_target(self, line: str) -> list[int]:
        """Target ids (``target.spm``, target vocabulary), ``</s>`` appended."""
        return self._encode(line, "target")

    def encode_batch(self, lines: Iterable[str], *, side: str = "source") -> list[list[int]]:
        return [self._encode(line, side) for line in as_lines(lines)]

    def id_to_tokens(self, ids: Sequence[int], *, side: str = "source") -> list[str]:
        """The vocabulary piece of each id."""
        inverse = self._inverse[side]
        return [inverse.get(i, self.unk_token) for i in as_ids(ids)]

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        """Text of ``ids``: ``</s>``/pad dropped, the rest decoded with the
        side's spm by the folder's ``decode_rule`` (module docstring).
        ``<unk>`` is always rendered, so ``keep_special_tokens`` is refused.
        An id past the vocabulary is refused, where Marian would print
        ``<unk>``."""
        if keep_special_tokens:
            check_keep_special_tokens(self)
        vocab = self._vocab(side)
        ids = self.checked_ids(ids, side)
        eos, pad = vocab[self.eos_token], self.pad_id
        inverse = self._inverse[side]
        sp = self.spm_source if side == "source" else self.spm_target
        pieces = [inverse.get(i, self.unk_token) for i in ids if i not in (eos, pad)]
        return DECODE_RULES[self.decode_rule](pieces, sp, {self.eos_token, self.unk_token, self.pad_token})


class T5SpmTokenizer(TokenizerBase):
    """``spiece.model`` + 100 sentinels, as T5 encodes."""

    kind = "t5_spm"
    # decode skips <unk> and the sentinels unless keep_special_tokens=True
    skips_special_tokens = True

    def __init__(self, sp: Any, *, extra_ids: int = 100, append_eos: bool = True, pad_id: int | None = None,
                 eos_id: int | None = None, unk_id: int | None = None, clean_up_tokenization_spaces: bool = False,
                 model_vocab_size: int | None = None, max_cache: int = 1 << 18) -> None:
        self.sp = sp
        self.extra_ids = int(extra_ids)
        self.append_eos = append_eos
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        # the model's embedding rows (32128 for 32100 pieces in released T5):
        # ids below it and past the pieces are dropped by decode, ids past it refused
        self.model_vocab_size = int(model_vocab_size) if model_vocab_size is not None else None
        self.n_pieces = sp.get_piece_size()
        self.pad_id = pad_id if pad_id is not None else (sp.pad_id() if sp.pad_id() >= 0 else 0)
        self.eos_id = eos_id if eos_id is not None else sp.eos_id()
        self.unk_id = unk_id if unk_id is not None else sp.unk_id()
        if self.eos_id < 0:
            raise InvalidInputError("the T5 SentencePiece model must define </s> (eos_id), but does not")
        for key in ("eos_id", "pad_id", "unk_id"):  # an eos_id past them was appended to every source: IndexError
            check_ids([getattr(self, key)], self.vocab_size, where=f" (`{key}` of {CONFIG_NAME})")
        self._cache: dict[str, list[int]] = {}
        self.max_cache = max_cache

    @classmethod
    def from_dir(cls, directory: str | Path, cfg: dict[str, Any] | None = None) -> T5SpmTokenizer:
        """Load from a ported folder's ``tokenizer/``."""
        directory, cfg = read_config(directory, cfg)
        sp = _load_spm(tokenizer_file(directory, cfg, "spm", "spiece.model"))
        return cls(sp, extra_ids=cfg.get("extra_ids", 100), append_eos=cfg.get("append_eos", True),
                   pad_id=cfg.get("pad_id"), eos_id=cfg.get("eos_id"), unk_id=cfg.get("unk_id"),
                   clean_up_tokenization_spaces=cfg.get("clean_up_tokenization_spaces", False) is True,
                   model_vocab_size=cfg.get("model_vocab_size"))

    @property
    def vocab_size(self) -> int:
        return self.n_pieces + self.extra_ids

    def vocab_size_of(self, side: str = "target") -> int | None:
        """The model's vocabulary size when known (one vocabulary for both sides)."""
        return self.model_vocab_size

    def own_vocab_size(self, side: str = "target") -> int:
        """The pieces and sentinels (transformers' T5 has spare rows past them: 32100 of 32128)."""
        return self.vocab_size

    def sentinel_id(self, n: int) -> int:
        """The id of ``<extra_id_n>`` (``<extra_id_0>`` is the last id)."""
        if not 0 <= n < self.extra_ids:
            raise InvalidInputError(f"`<extra_id_{n}>` is not a known sentinel (known: <extra_id_0> .. "
                                    f"<extra_id_{self.extra_ids - 1}>)")
        return self.n_pieces + self.extra_ids - 1 - n

    def _chunks(self, line: str) -> list[str | int]:
        """Text chunks and sentinel ids, in order."""
        out: list[str | int] = []
        pos = 0
        for m in _SENTINEL.finditer(line):
            n = int(m.group(1))
            if n >= self.extra_ids or m.group(1) != str(n):
                continue  # not a sentinel of this vocabulary: ordinary text
            out.append(line[pos: m.start()])
            out.append(self.sentinel_id(n))
            pos = m.end()
        out.append(line[pos:])
        return out

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        """The pieces and sentinel strings, without ``</s>`` (one vocabulary for both sides)."""
        out: list[str] = []
        for chunk in self._chunks(line):
            if isinstance(chunk, int):
                out.append(f"<extra_id_{self.n_pieces + self.extra_ids - 1 - chunk}>")
            elif chunk:
                out.extend(self.sp.encode(chunk, out_type=str))
        return out

    def encode(self, line: str) -> list[int]:
        """ids, ``</s>`` appended."""
        got = self._cache.get(as_text(line))
        if got is None:
            got = []
            for chunk in self._chunks(line):
                if isinstance(chunk, int):
                    got.append(chunk)
                elif chunk:
                    got.extend(self.sp.encode(chunk))
            if self.append_eos:
                got.append(self.eos_id)
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[line] = got
        return list(got)

    encode_target = encode

    def encode_batch(self, lines: Iterable[str], *, side: str = "source") -> list[list[int]]:
        return [self.encode(line) for line in as_lines(lines)]

    def id_to_tokens(self, ids: Sequence[int], *, side: str = "source") -> list[str]:
        """The piece (or sentinel string) of each id."""
        top = self.n_pieces + self.extra_ids - 1
        return [self.sp.id_to_piece(i) if 0 <= i < self.n_pieces else
                f"<extra_id_{top - i}>" if i <= top else self.sp.id_to_piece(self.unk_id) for i in as_ids(ids)]

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        """Text of ``ids`` as transformers' ``T5Tokenizer.decode`` gives it.

        By default as ``decode(ids, skip_special_tokens=True)``: ``<unk>`` and
        the sentinels are dropped, as every T5 user's decode drops them;
        ``keep_special_tokens=True`` renders them literally, as
        ``skip_special_tokens=False`` does. ``</s>`` and pad are dropped in
        both modes; ids past the pieces are dropped (transformers knows
        no piece for them; the model's padding rows emit them); a negative id,
        or one past ``model_vocab_size`` when known, is refused. The remaining pieces are joined by the
        ``Metaspace`` decoder rule: no ``▁`` of the first piece is printed,
        every later ``▁`` is a space (so a sentinel dropped in front of
        ``▁word`` leaves no leading space, while one dropped between two
        pieces leaves them exactly as if it had never been generated); then
        transformers' clean-up when the folder asks for it."""
        top = self.n_pieces + self.extra_ids  # first id past the vocabulary
        pieces: list[str] = []
        for i in self.checked_ids(ids, side):
            if i in (self.eos_id, self.pad_id) or i >= top:
                continue
            if i >= self.n_pieces:  # a sentinel
                if keep_special_tokens:
                    pieces.append(f"<extra_id_{top - 1 - i}>")
            elif i == self.unk_id:
                if keep_special_tokens:
                    pieces.append(self.sp.id_to_piece(i))
            else:
                pieces.append(self.sp.id_to_piece(i))
        if not pieces:
            return ""
        text = pieces[0].replace(SPIECE_UNDERLINE, "") + "".join(pieces[1:]).replace(SPIECE_UNDERLINE, " ")
        if self.clean_up_tokenization_spaces:
            for spaced, joined in CLEAN_UP_TOKENIZATION:
                text = text.replace(spaced, joined)
        return text


# ---------------------------------------------------------------------------
# writers for converters


def save_marian(directory: str | os.PathLike[str], *, source_spm: str | os.PathLike[str],
                target_spm: str | os.PathLike[str] | None = None,
                vocab: str | os.PathLike[str] | Mapping[str, int],
                target_vocab: str | os.PathLike[str] | Mapping[str, int] | None = None,
                source_lang: str | None = None, target_lang: str | None = None, add_pad: bool = True,
                language_code_prefix: bool = True, decode_rule: str = DEFAULT_DECODE_RULE,
                encode_rule: str = DEFAULT_ENCODE_RULE) -> dict[str, Any]:
    """Write a ``marian_spm`` tokenizer into ``directory`` and return its config.

    ``vocab`` is a Marian ``.yml``/``.json`` path or a mapping; ``<pad>`` is
    appended after the largest id when absent and ``add_pad`` (what
    transformers' Marian conversion does, since Marian itself has none).
    ``decode_rule``: a key of ``DECODE_RULES`` (``sentencepiece`` for a model
    with Marian's ``.spm`` vocabularies, ``opus_mt`` for OPUS-MT's YAML ones);
    ``encode_rule``: one of ``ENCODE_RULES`` (``marian`` where Marian encodes the
    text itself: ``.spm`` vocabularies)."""
    checked_decode_rule(decode_rule)
    checked_encode_rule(encode_rule)
    directory = Path(directory)
    for spm in {Path(source_spm), Path(target_spm or source_spm)}:  # a damaged model fails here, not in translate
        _load_spm(spm)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_spm, directory / "source.spm")
    shutil.copyfile(target_spm or source_spm, directory / "target.spm")

    def prepared(v: str | os.PathLike[str] | Mapping[str, int]) -> dict[str, int]:
        out = dict(v) if isinstance(v, Mapping) else read_marian_vocab(v)
        if add_pad and "<pad>" not in out:
            out["<pad>"] = max(out.values()) + 1
        return out

    src_vocab = prepared(vocab)
    (directory / "vocab.json").write_text(json.dumps(src_vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    cfg: dict[str, Any] = {"type": MarianSpmTokenizer.kind, "source_spm": "source.spm", "target_spm": "target.spm",
                           "vocab": "vocab.json", "target_vocab": None, "source_lang": source_lang,
                           "target_lang": target_lang, "eos_token": "</s>", "unk_token": "<unk>",
                           "pad_token": "<pad>", "language_code_prefix": language_code_prefix, "append_eos": True,
                           "decode_rule": decode_rule, "encode_rule": encode_rule}
    tgt_vocab = src_vocab
    if target_vocab is not None:
        tgt_vocab = prepared(target_vocab)
        (directory / "target_vocab.json").write_text(json.dumps(tgt_vocab, ensure_ascii=False, indent=0),
                                                     encoding="utf-8")
        cfg["target_vocab"] = "target_vocab.json"
    for key, tok in (("eos_id", "</s>"), ("unk_id", "<unk>"), ("pad_id", "<pad>")):
        if tok not in tgt_vocab:
            raise InvalidInputError(f"`{tok}` must be in the Marian vocabulary, but is not")
        cfg[key] = tgt_vocab[tok]
    (directory / CONFIG_NAME).write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return cfg


def t5_config(spm: str | os.PathLike[str], extra_ids: int = 100,
              clean_up_tokenization_spaces: bool = False) -> dict[str, Any]:
    """The ``tokenizer_config.json`` of a ``t5_spm`` tokenizer whose model is
    copied as ``spiece.model`` (converters hand it to the writer with the file).
    ``clean_up_tokenization_spaces``: the source tokenizer's own setting."""
    sp = _load_spm(Path(spm))
    return {"type": T5SpmTokenizer.kind, "spm": "spiece.model", "extra_ids": int(extra_ids),
            "pad_id": sp.pad_id() if sp.pad_id() >= 0 else 0, "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
            "append_eos": True, "clean_up_tokenization_spaces": bool(clean_up_tokenization_spaces)}


def save_t5(directory: str | os.PathLike[str], *, spm: str | os.PathLike[str], extra_ids: int = 100,
            clean_up_tokenization_spaces: bool = False) -> dict[str, Any]:
    """Write a ``t5_spm`` tokenizer into ``directory`` and return its config."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spm, directory / "spiece.model")
    cfg = t5_config(directory / "spiece.model", extra_ids, clean_up_tokenization_spaces)
    (directory / CONFIG_NAME).write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return cfg
