"""transformers' tokenizers as a second opinion (not authoritative).

``FSMTTokenizer`` (the fairseq WMT19 port) is built from the fairseq
dictionaries and codes the way transformers' conversion script
(``convert_fsmt_original_pytorch_checkpoint_to_pytorch.py``) writes them:
``vocab-src.json``/``vocab-tgt.json`` with ``@@`` removed from continuation
pieces and ``</w>`` added to word-final ones (specials kept), and
``merges.txt`` = the codes without their counts. FSMTTokenizer also
normalizes punctuation (``MosesPunctNormalizer``, ``replace_unicode_punct``,
non-printing characters removed) before Moses, which fairseq's hub never
does, so it disagrees on text with such characters: that is why it is a
second opinion only.

``MarianTokenizer`` reads ``source.spm``/``target.spm`` and a ``vocab.json``
(the YAML converted, ``<pad>`` appended, as transformers' Marian conversion
does); ``T5Tokenizer`` (tokenizers-backed in transformers 5) converts
``spiece.model`` itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modelport.tokenizers.fsmt_vocab import SPECIALS, rewrite_dict_keys
from modelport.validators.references.fairseq_hub import dict_path, find_codes
from modelport.validators.references.sentencepiece_ref import read_vocab, marian_files


def _fairseq_symbols(path: Path) -> list[str]:
    symbols = list(SPECIALS)
    with open(path, encoding="utf-8") as f:
        for line in f.readlines():
            word, field = line.rstrip().rsplit(" ", 1)
            if field == "#fairseq:overwrite":
                word = word.rsplit(" ", 1)[0]
            symbols.append(word)
    return symbols


class _HfReference:
    authoritative = False
    tok: Any
    _tmp: str | None = None

    def encode(self, line: str) -> list[int]:
        return list(self.tok(line)["input_ids"])

    def _drop(self) -> set[int]:
        """Ids of ``</s>`` and ``<pad>`` (FSMT calls its ``</s>`` the sep token)."""
        t = self.tok
        return {i for i in (t.eos_token_id, t.pad_token_id, getattr(t, "sep_token_id", None)) if i is not None}

    def decode(self, ids: list[int]) -> str:
        drop = self._drop()
        return self.tok.decode([i for i in ids if i not in drop], skip_special_tokens=False,
                               clean_up_tokenization_spaces=False)

    def tokens(self, ids: list[int], *, side: str = "source") -> list[str]:
        return list(self.tok.convert_ids_to_tokens(ids))

    def __del__(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


class FsmtReference(_HfReference):
    name = "transformers_fsmt"

    def __init__(self, directory: str | os.PathLike[str], *, source_lang: str | None,
                 target_lang: str | None, moses_langs: tuple[str | None, str | None] | None = None) -> None:
        """``source_lang``/``target_lang`` find the dictionaries; FSMTTokenizer's
        ``langs`` (its Moses languages) are ``moses_langs``, default the same."""
        from transformers import FSMTTokenizer

        directory = Path(directory)
        self._tmp = tempfile.mkdtemp(prefix="modelport-fsmt-")
        tmp = Path(self._tmp)
        for side, lang in (("src", source_lang), ("tgt", target_lang)):
            vocab = rewrite_dict_keys(_fairseq_symbols(dict_path(directory, lang)))
            (tmp / f"vocab-{side}.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        codes = find_codes(directory)
        merges = codes.read_text(encoding="utf-8") if codes is not None else ""
        merges = re.sub(r" \d+$", "", merges, flags=re.M)
        (tmp / "merges.txt").write_text(merges, encoding="utf-8")
        msrc, mtgt = moses_langs or (None, None)
        self.tok = FSMTTokenizer(langs=[msrc or source_lang or "en", mtgt or target_lang or "en"],
                                 src_vocab_file=str(tmp / "vocab-src.json"),
                                 tgt_vocab_file=str(tmp / "vocab-tgt.json"), merges_file=str(tmp / "merges.txt"))


class MarianReference(_HfReference):
    name = "transformers_marian"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from transformers import MarianTokenizer

        src, tgt, vocab_path, tvocab_path = marian_files(Path(directory))
        self._tmp = tempfile.mkdtemp(prefix="modelport-marian-")
        tmp = Path(self._tmp)

        def converted(path: Path, name: str) -> str:
            vocab = read_vocab(path)
            if "<pad>" not in vocab:
                vocab["<pad>"] = max(vocab.values()) + 1
            (tmp / name).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            return str(tmp / name)

        vocab = converted(vocab_path, "vocab.json")
        kwargs: dict[str, Any] = {}
        if tvocab_path is not None:
            kwargs = {"target_vocab_file": converted(tvocab_path, "target_vocab.json"), "separate_vocabs": True}
        self.tok = MarianTokenizer(source_spm=str(src), target_spm=str(tgt), vocab=vocab, **kwargs)

    def decode(self, ids: list[int]) -> str:
        # MarianTokenizer decodes with source.spm when the vocabulary is joint
        # (its use_source_tokenizer default); Marian decodes with target.spm.
        drop = self._drop()
        return self.tok.decode([i for i in ids if i not in drop], skip_special_tokens=False,
                               clean_up_tokenization_spaces=False, use_source_tokenizer=False)


class T5Reference(_HfReference):
    name = "transformers_t5"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from transformers import T5Tokenizer

        directory = Path(directory)
        self._tmp = tempfile.mkdtemp(prefix="modelport-t5-")
        shutil.copyfile(directory / "spiece.model", Path(self._tmp) / "spiece.model")
        self.tok = T5Tokenizer.from_pretrained(self._tmp)
        self.clean_up = _t5_clean_up(directory)

    def decode(self, ids: list[int]) -> str:
        # what T5 users call, and what a T5 port's decode reproduces by default
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=self.clean_up)


def _t5_clean_up(directory: Path) -> bool:
    """The folder's ``clean_up_tokenization_spaces`` (transformers 5: false when absent)."""
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return False
    cfg = json.loads(path.read_text(encoding="utf-8"))
    return isinstance(cfg, dict) and cfg.get("clean_up_tokenization_spaces") is True
