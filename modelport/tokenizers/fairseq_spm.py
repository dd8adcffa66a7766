"""SentencePiece + fairseq dictionary, with language tokens (``type: "fairseq_spm"``).

What M2M100, NLLB-200 and mBART ports read, as fairseq 0.12 computes it:

encode
    ``SentencepieceBPE.encode`` joins the pieces of ``sp.Encode(line,
    out_type=str)`` with spaces; ``Dictionary.encode_line`` splits that again
    with ``tokenize_line`` (``\\s+`` collapsed, stripped, ``str.split()``),
    maps each word through the dictionary (a piece the dictionary lacks is
    ``<unk>``) and appends ``</s>``. No language token: the task places those
    (:meth:`FairseqSpmTokenizer.language_prefixes`).
dictionary
    The checkpoint's ``dict.txt`` (``<s> <pad> </s> <unk>`` first, then the
    file, ``madeupword`` padding included), then what
    ``multilingual_utils.augment_dictionary`` adds: one token per language
    of the language list, in its order (``__xx__``, or ``[xx]`` with
    ``--lang-tok-style mbart``), then ``<mask>`` for the mbart style; a
    symbol already in the file keeps its id (``Dictionary.add_symbol``).
    The model's embedding may hold more rows than that (``model_vocab_size``):
    those ids name no symbol and decode as ``<unk>``, as fairseq's
    ``Dictionary.__getitem__`` renders an id past its symbols.
language tokens
    ``--encoder-langtok src|tgt``: the source is ``[langtok] + ids + [</s>]``
    (``PrependTokenDataset``); ``--decoder-langtok``: the target language's
    token is the decoder's first forced token (``prefix_tokens`` of
    ``SequenceGenerator``), stripped from the output
    (``symbols_to_strip_from_output``).
decode
    ``Dictionary.string`` (``</s>`` and ``<s>`` skipped, ``<unk>`` printed as
    ``<unk>``, symbols joined by spaces), then ``SentencepieceBPE.decode``:
    spaces removed, ``▁`` to space, stripped.

tokenizer_config.json keys: ``type``, ``spm``, ``dict``, ``languages``
(the language list, in order), ``lang_tok_style`` (``multilingual`` or
``mbart``), ``add_mask``, ``encoder_langtok`` (null, ``src`` or ``tgt``),
``decoder_langtok`` (bool), ``source_bos`` / ``decoder_bos`` (BART's hub: ``<s>``
before the source, ``<s>`` forced first), ``model_vocab_size`` (the embedding's rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.tokenizers.base import (TokenizerBase, as_ids, as_lines, as_text, check_keep_special_tokens, read_config,
                                       tokenizer_file)
from modelport.tokenizers.sentencepiece import _load_spm
from modelport.tokenizers.vocab import FairseqDictionary

# fairseq.tokenizer.SPACE_NORMALIZER
_SPACE = re.compile(r"\s+")
# multilingual_utils.get_lang_tok's TOKEN_STYLES
LANG_TOK_STYLES = {"multilingual": "__{}__", "mbart": "[{}]"}
ENCODER_LANGTOKS = (None, "src", "tgt")


def lang_token(lang: str, style: str) -> str:
    """The dictionary symbol of language ``lang`` (``get_lang_tok`` for the main spec)."""
    if style not in LANG_TOK_STYLES:
        raise InvalidInputError(f"`{style}` is not a known language token style (known: {', '.join(LANG_TOK_STYLES)})")
    return LANG_TOK_STYLES[style].format(lang)


def augment_dictionary(d: FairseqDictionary, languages: Sequence[str], style: str, add_mask: bool,
                       extra: Sequence[str] = ()) -> None:
    """``multilingual_utils.augment_dictionary`` for the main spec: a token per
    language, then ``extra`` symbols (mBART pre-training's ``[lang]`` tokens),
    then ``<mask>`` (mbart style, denoising); existing symbols keep their id."""
    for symbol in [lang_token(lang, style) for lang in languages] + list(extra) + (["<mask>"] if add_mask else []):
        if symbol not in d.indices:
            d.indices[symbol] = len(d.symbols)
            d.symbols.append(symbol)


@dataclass(frozen=True)
class LanguagePlan:
    """Where fairseq puts the special tokens of one direction: before and after
    the source ids, forced at the start of the target (``prefix_tokens``), and
    the token ``SequenceGenerator`` starts from and stops on instead of
    ``</s>`` (``eos=``; None: ``</s>``)."""

    source_prefix: list[int]
    source_suffix: list[int]
    decoder_prefix: list[int]
    generator_eos: int | None = None


# langtok_placement values: the multilingual task's (source langtok before the
# ids, target langtok forced), or translation_from_pretrained_bart's (mBART-25
# fine-tunes: ids + </s> + [src], decoding from and stopping on [tgt])
PLACEMENTS = ("multilingual", "mbart_finetune")


class PrefixRules:
    """Where fairseq puts the tokens around a sentence's ids: language tokens
    (``translation_multi_simple_epoch``; ``translation_from_pretrained_bart``),
    or BART's hub ``<s>`` before the source and as the first forced target token."""

    languages: tuple[str, ...] = ()
    lang_ids: dict[str, int]
    encoder_langtok: str | None = None
    decoder_langtok: bool = False
    source_bos: bool = False
    decoder_bos: bool = False
    bos_id: int = 0
    langtok_placement: str = "multilingual"

    def init_prefix_rules(self, *, languages: Sequence[str] = (), lang_ids: dict[str, int] | None = None,
                          encoder_langtok: str | None = None, decoder_langtok: bool = False,
                          source_bos: bool = False, decoder_bos: bool = False,
                          langtok_placement: str = "multilingual") -> None:
        if encoder_langtok not in ENCODER_LANGTOKS:
            raise InvalidInputError(f"`encoder_langtok` must be one of none, src, tgt, but is {encoder_langtok!r}")
        if langtok_placement not in PLACEMENTS:
            raise InvalidInputError(f"`langtok_placement` must be one of {', '.join(PLACEMENTS)}, but is "
                                    f"{langtok_placement!r}")
        self.langtok_placement = langtok_placement
        self.languages = tuple(languages)
        self.lang_ids = dict(lang_ids or {})
        self.encoder_langtok, self.decoder_langtok = encoder_langtok, bool(decoder_langtok)
        self.source_bos, self.decoder_bos = bool(source_bos), bool(decoder_bos)

    def _lang(self, lang: str | None, side: str) -> int:
        known = ", ".join(self.languages)
        if lang is None:
            raise InvalidInputError(f"this model translates between languages: pass the {side} language "
                                    f"(--{side}-lang; known: {known})")
        if lang not in self.lang_ids:
            raise InvalidInputError(f"`{lang}` is not a known {side} language of this model (known: {known})")
        return self.lang_ids[lang]

    def language_plan(self, source_lang: str | None, target_lang: str | None) -> LanguagePlan:
        """The special tokens of ``source_lang`` -> ``target_lang``, as fairseq
        places them. Without languages giving one is an error."""
        source = [self.bos_id] if self.source_bos else []
        decoder = [self.bos_id] if self.decoder_bos else []
        if not self.languages:
            if source_lang is not None or target_lang is not None:
                raise InvalidInputError("this model has no language tokens: --source-lang/--target-lang do not "
                                        "apply")
            return LanguagePlan(source, [], decoder)
        src, tgt = self._lang(source_lang, "source"), self._lang(target_lang, "target")
        if self.langtok_placement == "mbart_finetune":
            return LanguagePlan(source, [src], decoder, generator_eos=tgt)
        source += {None: [], "src": [src], "tgt": [tgt]}[self.encoder_langtok]
        return LanguagePlan(source, [], decoder + ([tgt] if self.decoder_langtok else []))

    def language_prefixes(self, source_lang: str | None, target_lang: str | None) -> tuple[list[int], list[int]]:
        """(tokens before the source ids, tokens the decoder is forced to start with)."""
        plan = self.language_plan(source_lang, target_lang)
        return plan.source_prefix, plan.decoder_prefix


class DictionaryTokenizer(PrefixRules, TokenizerBase):
    """A subword model whose words are looked up in a fairseq dictionary
    (``Dictionary.encode_line``): subclasses say how a line becomes words
    (:meth:`tokenize`) and how ids become text (``decode``)."""

    dict: FairseqDictionary
    model_vocab_size: int
    eos_id: int

    def init_dictionary(self, dictionary: FairseqDictionary, model_vocab_size: int | None) -> None:
        self.dict = dictionary
        self.model_vocab_size = max(int(model_vocab_size or 0), len(dictionary))
        self.pad_id, self.eos_id, self.unk_id = dictionary.pad_index, dictionary.eos_index, dictionary.unk_index
        self.bos_id = dictionary.bos_index

    def vocab_size_of(self, side: str = "target") -> int:
        """The model's rows (ids past the dictionary decode as ``<unk>``)."""
        return self.model_vocab_size

    def own_vocab_size(self, side: str = "target") -> int:
        """The dictionary's symbols, language tokens included."""
        return len(self.dict)

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        raise NotImplementedError

    def encode(self, line: str) -> list[int]:
        """Dictionary ids of the words, ``</s>`` appended (prefix tokens are the prefix rules')."""
        return [self.dict.index(w) for w in self.tokenize(as_text(line))] + [self.eos_id]

    encode_target = encode

    def encode_batch(self, lines: Iterable[str], *, side: str = "source") -> list[list[int]]:
        return [self.encode(line) for line in as_lines(lines)]

    def id_to_tokens(self, ids: Sequence[int], *, side: str = "source") -> list[str]:
        return [self.dict[i] for i in as_ids(ids)]


class FairseqSpmTokenizer(DictionaryTokenizer):
    """fairseq's ``sentencepiece`` BPE + dictionary (+ language tokens)."""

    kind = "fairseq_spm"

    def __init__(self, sp: Any, dictionary: FairseqDictionary, *, languages: Sequence[str] = (),
                 lang_tok_style: str = "multilingual", encoder_langtok: str | None = None,
                 decoder_langtok: bool = False, source_bos: bool = False, decoder_bos: bool = False,
                 langtok_placement: str = "multilingual", model_vocab_size: int | None = None) -> None:
        self.sp = sp
        self.lang_tok_style = lang_tok_style
        self.init_dictionary(dictionary, model_vocab_size)
        self.init_prefix_rules(languages=languages, encoder_langtok=encoder_langtok, decoder_langtok=decoder_langtok,
                               source_bos=source_bos, decoder_bos=decoder_bos, langtok_placement=langtok_placement,
                               lang_ids={x: dictionary.index(lang_token(x, lang_tok_style)) for x in languages})

    @classmethod
    def from_dir(cls, directory: str | Path, cfg: dict[str, Any] | None = None) -> FairseqSpmTokenizer:
        """Load from a ported folder's ``tokenizer/``."""
        directory, cfg = read_config(directory, cfg)
        sp = _load_spm(tokenizer_file(directory, cfg, "spm", "sentencepiece.bpe.model"))
        d = FairseqDictionary.load(tokenizer_file(directory, cfg, "dict", "dict.txt"))
        languages = [str(x) for x in cfg.get("languages") or []]
        style = cfg.get("lang_tok_style", "multilingual")
        augment_dictionary(d, languages, style, bool(cfg.get("add_mask", False)),
                           [str(x) for x in cfg.get("extra_symbols") or []])
        return cls(sp, d, languages=languages, lang_tok_style=style, encoder_langtok=cfg.get("encoder_langtok"),
                   decoder_langtok=bool(cfg.get("decoder_langtok", False)),
                   source_bos=bool(cfg.get("source_bos", False)), decoder_bos=bool(cfg.get("decoder_bos", False)),
                   langtok_placement=cfg.get("langtok_placement", "multilingual"),
                   model_vocab_size=cfg.get("model_vocab_size"))

    # -- text <-> ids

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        """The words ``encode_line`` looks up, without ``</s>``."""
        return _SPACE.sub(" ", " ".join(self.sp.encode(line, out_type=str))).strip().split()

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        """``Dictionary.string`` then ``SentencepieceBPE.decode`` (language tokens
        are printed like any symbol: the caller strips the forced prefix)."""
        if keep_special_tokens:
            check_keep_special_tokens(self)
        text = self.dict.string(self.checked_ids(ids, side))
        return text.replace(" ", "").replace("\u2581", " ").strip()


__all__ = ["LANG_TOK_STYLES", "PLACEMENTS", "FairseqSpmTokenizer", "LanguagePlan", "PrefixRules", "augment_dictionary",
           "lang_token"]
