"""fairseq's text pipeline: Moses tokenization, BPE, fairseq dictionary.

This is what ``TransformerModel.from_pretrained(..., tokenizer='moses',
bpe='fastbpe' | 'subword_nmt')`` does in fairseq's hub interface:

encode
    ``sacremoses.MosesTokenizer(source_lang).tokenize(line,
    aggressive_dash_splits=<on unless --moses-no-dash-splits>, return_str=True,
    escape=<on unless --moses-no-escape>)``, then BPE on the result
    (:mod:`modelport.tokenizers.bpe`), then ``Dictionary.encode_line``: split
    on whitespace, unknown symbols to ``<unk>``, ``</s>`` appended, no BOS.
decode
    ``Dictionary.string`` (``</s>`` and ``<s>`` dropped, every other id
    rendered, ``<unk>`` as ``<unk>``), BPE removal
    (``(x + ' ').replace('@@ ', '').rstrip()``), then
    ``sacremoses.MosesDetokenizer(target_lang).detokenize(x.split())``.
    Padding ids are dropped too (fairseq would render them as ``<pad>``; they
    never occur in a hypothesis, but do in padded batches).

The Moses step is sacremoses itself; what is cached is the word → ids step,
per side, so a batch pays for BPE and dictionary look-up once per distinct
word.

``encode`` and ``decode`` run sacremoses with ``moses_source_lang`` /
``moses_target_lang`` (``encode_target``, which mirrors how the training
target was binarized, keeps the task's target language). These are not
always the task's languages: fairseq's hub builds its ``MosesTokenizer`` from
the checkpoint's tokenizer config, which for a ``cfg`` checkpoint that records
none is ``en`` on both sides (the converter works it out, see
:func:`modelport.converters.fairseq.moses_languages`). Folders written before
those keys existed use the task's languages, ``en`` when there are none.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.tokenizers.base import (CONFIG_NAME, TokenizerBase, as_ids, as_lines, as_text, check_keep_special_tokens,
                                      read_config, tokenizer_file)
from modelport.tokenizers.bpe import Bpe
from modelport.tokenizers.vocab import FairseqDictionary

SIDES = ("source", "target")
PARALLEL_MIN_LINES = 4096  # below this, forking costs more than it saves
_FORKED: MosesBpeTokenizer | None = None  # the tokenizer a forked worker inherits


def _encode_chunk(job: tuple[str, list[str]]) -> list[list[int]]:
    side, lines = job
    assert _FORKED is not None
    s = _FORKED._sides[side]
    return [_FORKED._encode(s, line) for line in lines]


MAX_PAD_MULTIPLE = 1024  # a dictionary padded to a multiple of at most this

class _Side:
    """Moses tokenizer + dictionary + word cache for one language side."""

    def __init__(self, lang: str, dictionary: FairseqDictionary, max_cache: int) -> None:
        from sacremoses import MosesTokenizer

        self.lang = lang
        self.dict = dictionary
        self.moses = MosesTokenizer(lang)
        self.cache: dict[str, tuple[int, ...]] = {}
        self.max_cache = max_cache


class MosesBpeTokenizer(TokenizerBase):
    """Moses + BPE + fairseq dictionaries, bit-identical to fairseq's hub interface."""

    kind = "fairseq_moses_bpe"
    vocab_sizes_rows = True

    def __init__(self, source_dict: FairseqDictionary, target_dict: FairseqDictionary, *,
                 source_lang: str | None = "en", target_lang: str | None = "en", bpe: Bpe | None = None,
                 moses_escape: bool = True, moses_aggressive_dash_splits: bool = True, append_eos: bool = True,
                 moses_source_lang: str | None = None, moses_target_lang: str | None = None,
                 max_cache: int = 1 << 20) -> None:
        """``source_lang``/``target_lang`` name the task's languages;
        ``moses_source_lang``/``moses_target_lang`` (default: the same) are
        the languages fairseq's hub runs sacremoses with: Moses on the source
        (``encode``) and the detokenizer (``decode``). ``encode_target`` keeps
        the task's target language."""
        from sacremoses import MosesDetokenizer

        self.source_lang = source_lang or "en"
        self.target_lang = target_lang or "en"
        self.moses_source_lang = moses_source_lang or self.source_lang
        self.moses_target_lang = moses_target_lang or self.target_lang
        self.bpe = bpe
        self.moses_escape = bool(moses_escape)
        self.moses_aggressive_dash_splits = bool(moses_aggressive_dash_splits)
        self.append_eos = bool(append_eos)
        # encode_target tokenizes as the training data was binarized (the task's
        # language); fairseq's hub has no target-side tokenizer to follow there
        self._sides = {"source": _Side(self.moses_source_lang, source_dict, max_cache),
                       "target": _Side(self.target_lang, target_dict, max_cache)}
        self._detok = {"source": MosesDetokenizer(self.moses_source_lang),
                       "target": MosesDetokenizer(self.moses_target_lang)}

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_dir(cls, directory: str | Path, cfg: dict[str, Any] | None = None) -> MosesBpeTokenizer:
        """Load from a ported folder's ``tokenizer/`` (``cfg``: its tokenizer_config.json)."""
        directory, cfg = read_config(directory, cfg)
        for key in ("source_dict", "target_dict"):
            if not cfg.get(key):
                raise InvalidInputError(f"`{directory / CONFIG_NAME}` must name `{key}`, but does not")
        for key in ("moses_source_lang", "moses_target_lang"):
            if cfg.get(key) is not None and not isinstance(cfg[key], str):
                raise InvalidInputError(f"`{key}` of `{directory / CONFIG_NAME}` must be a language "
                                        f"code, but is {type(cfg[key]).__name__}")
        src = FairseqDictionary.load(tokenizer_file(directory, cfg, "source_dict"))
        tgt = FairseqDictionary.load(tokenizer_file(directory, cfg, "target_dict"))
        multiple = cfg.get("dict_pad_to_multiple")
        if multiple:
            # fairseq's --padding-factor (8 by default); a crafted folder's 10**9 would pad a billion entries
            if isinstance(multiple, bool) or not isinstance(multiple, int) or not 1 <= multiple <= MAX_PAD_MULTIPLE:
                raise InvalidInputError(f"`dict_pad_to_multiple` of `{directory / CONFIG_NAME}` must be an integer "
                                        f"from 1 to {MAX_PAD_MULTIPLE}, but is {multiple!r}"[:300])
            src.pad_to_multiple_(multiple)
            tgt.pad_to_multiple_(multiple)
        bpe = None
        if cfg.get("bpe"):
            if not cfg.get("bpe_codes"):
                raise InvalidInputError(f"`{directory / CONFIG_NAME}` sets bpe={cfg['bpe']} but "
                                        "names no `bpe_codes` file")
            bpe = Bpe.load(tokenizer_file(directory, cfg, "bpe_codes"), cfg["bpe"],
                           separator=cfg.get("bpe_separator", "@@"))
        return cls(src, tgt, source_lang=cfg.get("source_lang"), target_lang=cfg.get("target_lang"), bpe=bpe,
                   moses_source_lang=cfg.get("moses_source_lang"), moses_target_lang=cfg.get("moses_target_lang"),
                   moses_escape=cfg.get("moses_escape", True),
                   moses_aggressive_dash_splits=cfg.get("moses_aggressive_dash_splits", True),
                   append_eos=cfg.get("append_eos", True))

    # -- properties ---------------------------------------------------------------
    @property
    def source_dict(self) -> FairseqDictionary:
        return self._sides["source"].dict

    @property
    def target_dict(self) -> FairseqDictionary:
        return self._sides["target"].dict

    @property
    def pad_id(self) -> int:
        return self.target_dict.pad_index

    @property
    def eos_id(self) -> int:
        return self.target_dict.eos_index

    @property
    def unk_id(self) -> int:
        return self.target_dict.unk_index

    @property
    def bos_id(self) -> int:
        return self.target_dict.bos_index

    # -- encoding -------------------------------------------------------------------
    def _side(self, side: str) -> _Side:
        try:
            return self._sides[side]
        except KeyError:
            raise InvalidInputError(f"`{side}` is not a known side (known: {', '.join(SIDES)})") from None

    def moses(self, line: str, *, side: str = "source") -> str:
        """The Moses-tokenized line, as fairseq's ``MosesTokenizer.encode`` returns it."""
        return self._side(side).moses.tokenize(line, aggressive_dash_splits=self.moses_aggressive_dash_splits,
                                               return_str=True, escape=self.moses_escape)

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        """The BPE pieces (``@@``-marked) that the dictionary looks up, without ``</s>``."""
        out: list[str] = []
        bpe = self.bpe
        for word in self.moses(line, side=side).split(" "):
            if word:
                out.extend(" ".join(bpe.word(word)).split() if bpe is not None else word.split())
        return out

    def _word_ids(self, s: _Side, word: str) -> tuple[int, ...]:
        pieces = " ".join(self.bpe.word(word)).split() if self.bpe is not None else word.split()
        index = s.dict.index
        ids = tuple(index(p) for p in pieces)
        if len(s.cache) >= s.max_cache:
            s.cache.clear()
        s.cache[word] = ids
        return ids

    def _encode(self, s: _Side, line: str) -> list[int]:
        text = s.moses.tokenize(as_text(line), aggressive_dash_splits=self.moses_aggressive_dash_splits,
                                return_str=True, escape=self.moses_escape)
        cache = s.cache
        ids: list[int] = []
        for word in text.split(" "):
            if word:
                got = cache.get(word)
                ids.extend(got if got is not None else self._word_ids(s, word))
        if self.append_eos:
            ids.append(s.dict.eos_index)
        return ids

    def encode(self, line: str) -> list[int]:
        """Source-side ids of one line, ``</s>`` appended (fairseq's ``hub.encode``)."""
        return self._encode(self._sides["source"], line)

    def encode_target(self, line: str) -> list[int]:
        """Target-side ids (target-language Moses, target dictionary), for
        teacher forcing and scoring, as fairseq-preprocess binarized the target."""
        return self._encode(self._sides["target"], line)

    def encode_batch(self, lines: Iterable[str], *, side: str = "source", workers: int = 1) -> list[list[int]]:
        """Ids of many lines; a line repeated in the batch is tokenized once.

        ``workers > 1`` splits a large batch (at least ``PARALLEL_MIN_LINES``
        distinct lines) over forked processes (Linux only): the Moses step,
        which is most of the time, runs in sacremoses' pure Python and does
        not share a core."""
        s = self._side(side)
        lines = as_lines(lines)
        unique = list(dict.fromkeys(lines))
        if workers > 1 and len(unique) >= PARALLEL_MIN_LINES and sys.platform.startswith("linux"):
            out = self._encode_parallel(unique, side, workers)
        else:
            out = [self._encode(s, line) for line in unique]
        if len(unique) == len(lines):
            return out
        encoded = dict(zip(unique, out))
        return [list(encoded[line]) for line in lines]

    def _encode_parallel(self, lines: list[str], side: str, workers: int) -> list[list[int]]:
        import multiprocessing

        global _FORKED
        _FORKED = self
        size = max(256, -(-len(lines) // (workers * 4)))
        chunks = [(side, lines[i:i + size]) for i in range(0, len(lines), size)]
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_encode_chunk, chunks)
        finally:
            _FORKED = None
        return [ids for part in parts for ids in part]

    # -- decoding -------------------------------------------------------------------
    def decode_tokens(self, ids: Sequence[int], *, side: str = "target") -> str:
        """``Dictionary.string``: symbols joined by spaces, ``</s>``/``<s>``/pad dropped."""
        d = self._side(side).dict
        return d.string(as_ids(ids), ignore=(d.pad_index,))

    def vocab_size_of(self, side: str = "target") -> int:
        """The size of ``side``'s dictionary."""
        return len(self._side(side).dict)

    own_vocab_size = vocab_size_of

    def id_to_tokens(self, ids: Sequence[int], *, side: str = "source") -> list[str]:
        """The dictionary symbol of each id (out-of-range ids read ``<unk>``, as in fairseq)."""
        d = self._side(side).dict
        return [d[i] for i in as_ids(ids)]

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        """Detokenized text of ``ids`` (fairseq's ``hub.decode``; ``<unk>`` is
        always rendered, so ``keep_special_tokens`` is refused). An id past the
        dictionary is refused, where fairseq would print ``<unk>``."""
        if keep_special_tokens:
            check_keep_special_tokens(self)
        text = self.decode_tokens(self.checked_ids(ids, side), side=side)
        if self.bpe is not None:
            text = self.bpe.decode(text)
        return self._detok[side].detokenize(text.split())

    def config(self) -> dict[str, Any]:
        """The behaviour flags, as recorded in tokenizer_config.json."""
        return {"type": self.kind, "source_lang": self.source_lang, "target_lang": self.target_lang,
                "moses_source_lang": self.moses_source_lang, "moses_target_lang": self.moses_target_lang,
                "bpe": self.bpe.fmt if self.bpe is not None else None,
                "moses_escape": self.moses_escape, "moses_aggressive_dash_splits": self.moses_aggressive_dash_splits,
                "append_eos": self.append_eos}

    def __repr__(self) -> str:
        return (f"MosesBpeTokenizer({self.source_lang}->{self.target_lang}, moses {self.moses_source_lang}/"
                f"{self.moses_target_lang}, bpe={self.bpe.fmt if self.bpe else None},"
                f" vocab={len(self.source_dict)}/{len(self.target_dict)})")
