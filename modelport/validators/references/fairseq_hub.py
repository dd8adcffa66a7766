"""fairseq's own text pipeline as the tokenizer reference.

Two references live here:

``fairseq_hub``
    ``TransformerModel.from_pretrained(dir, tokenizer='moses', bpe=...)``,
    then ``hub.encode`` / ``hub.decode`` (fairseq's ``GeneratorHubInterface``
    code), with the tokenizer fairseq builds itself: its Moses languages are
    fairseq's own resolution of the checkpoint (for a ``cfg`` checkpoint that
    records no tokenizer, ``en`` on both sides whatever the task), never
    rebuilt here. ``source_lang``/``target_lang`` are passed to
    ``from_pretrained`` only as the port records a fairseq user passing them
    (``from_pretrained_langs``: the languages given to ``convert``, or both
    when the checkpoint names none). Without a checkpoint in the directory,
    the same hub code runs on fairseq's encoders and dictionaries assembled
    by hand, with the Moses languages the port records.
``sacremoses_fastbpe`` / ``sacremoses_subword_nmt``
    sacremoses, the ``fastBPE`` module (or ``subword_nmt.apply_bpe``) and a
    plain dictionary look-up, called directly, without fairseq.

fairseq and the BPE modules are imported lazily: they are reference-side
dependencies only.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelport.errors import InvalidInputError
from modelport.validators.references import native_stderr_hidden, prepare_fairseq, sanitized_fairseq_checkpoints

CODES_NAMES = ("bpecodes", "codes", "bpe.codes", "code")


def find_codes(directory: Path) -> Path | None:
    """The BPE codes file next to a fairseq checkpoint, if any."""
    for name in CODES_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def codes_format(path: Path) -> str:
    """``subword_nmt`` for a ``#version`` header, else ``fastbpe`` (as fairseq users choose)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return "subword_nmt" if f.readline().startswith("#version") else "fastbpe"


def dict_path(directory: Path, lang: str | None) -> Path:
    """``dict.<lang>.txt``, or the joined ``dict.txt``."""
    if lang and (directory / f"dict.{lang}.txt").is_file():
        return directory / f"dict.{lang}.txt"
    if (directory / "dict.txt").is_file():
        return directory / "dict.txt"
    raise InvalidInputError(f"`{directory}` has no dict.{lang}.txt (nor dict.txt)")


def _checkpoint(directory: Path) -> Path | None:
    if (directory / "model.pt").is_file():
        return directory / "model.pt"
    cands = sorted(directory.glob("checkpoint*.pt")) or sorted(directory.glob("*.pt"))
    return cands[0] if cands else None


class FairseqHubReference:
    """fairseq's ``GeneratorHubInterface`` encode/decode."""

    name = "fairseq_hub"
    authoritative = True

    def __init__(self, directory: str | os.PathLike[str], *, source_lang: str | None = None,
                 target_lang: str | None = None, from_pretrained_langs: dict[str, str] | None = None,
                 moses_langs: tuple[str | None, str | None] | None = None) -> None:
        """``source_lang``/``target_lang``: the task's languages (dictionaries);
        ``from_pretrained_langs``: the languages handed to ``from_pretrained``
        (None: both task languages, when known, as ports written before this
        was recorded did); ``moses_langs``: the Moses languages of the
        hand-assembled pipeline when there is no checkpoint."""
        directory = Path(directory).resolve()
        if not directory.is_dir():
            raise InvalidInputError(f"reference `{directory}` is not a directory")
        codes = find_codes(directory)
        bpe = codes_format(codes) if codes is not None else None
        ckpt = _checkpoint(directory)
        if from_pretrained_langs is None:
            from_pretrained_langs = ({"source_lang": source_lang, "target_lang": target_lang}
                                     if source_lang and target_lang else {})
        _check_langs(from_pretrained_langs)
        if ckpt is not None:
            self.hub = self._from_pretrained(directory, ckpt, bpe, from_pretrained_langs)
            self.via = "hub_interface"
        else:
            src, tgt = moses_langs or (source_lang, target_lang)
            self.hub = self._assembled(directory, codes, bpe, source_lang, target_lang, src, tgt)
            self.via = "hub_interface_code_on_fairseq_encoders"
        # what fairseq's hub tokenizes and detokenizes with
        self.moses_langs = (self.hub.tokenizer.cfg.source_lang, self.hub.tokenizer.cfg.target_lang)

    @staticmethod
    def _from_pretrained(directory: Path, ckpt: Path, bpe: str | None, langs: dict[str, str]) -> Any:
        prepare_fairseq()
        from fairseq.models.transformer import TransformerModel

        kwargs: dict[str, Any] = {"tokenizer": "moses", **langs}
        if bpe:
            kwargs["bpe"] = bpe
        # fairseq only ever sees a plain-data copy read by modelport's restricted unpickler;
        # an absolute checkpoint_file is joined onto the model folder as itself
        with sanitized_fairseq_checkpoints([ckpt]) as (copy,), native_stderr_hidden():
            hub = TransformerModel.from_pretrained(str(directory), checkpoint_file=str(copy),
                                                   data_name_or_path=str(directory), **kwargs)
        hub.eval()
        return hub

    @staticmethod
    def _assembled(directory: Path, codes: Path | None, bpe: str | None, source_lang: str | None,
                   target_lang: str | None, moses_source: str | None, moses_target: str | None) -> Any:
        from fairseq.data import Dictionary
        from fairseq.data.encoders.moses_tokenizer import MosesTokenizer, MosesTokenizerConfig
        from fairseq.hub_utils import GeneratorHubInterface

        hub = GeneratorHubInterface.__new__(GeneratorHubInterface)
        nn.Module.__init__(hub)
        hub.src_dict = Dictionary.load(str(dict_path(directory, source_lang)))
        hub.tgt_dict = Dictionary.load(str(dict_path(directory, target_lang)))
        hub.tokenizer = MosesTokenizer(MosesTokenizerConfig(source_lang=moses_source or "en",
                                                            target_lang=moses_target or "en"))
        hub.bpe = _fairseq_bpe(codes, bpe) if codes is not None else None
        return hub

    def encode(self, line: str) -> list[int]:
        return self.hub.encode(line).tolist()

    def decode(self, ids: list[int]) -> str:
        return self.hub.decode(torch.tensor(ids, dtype=torch.long))

    def tokens(self, ids: list[int], *, side: str = "source") -> list[str]:
        d = self.hub.src_dict if side == "source" else self.hub.tgt_dict
        return [d[i] for i in ids]


_LANG = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _check_langs(langs: Any) -> None:
    """Only language codes reach ``from_pretrained``: its keyword arguments
    also take options that import code (``user_dir``), and this mapping comes
    from the ported folder's tokenizer_config.json."""
    if not isinstance(langs, dict) or not set(langs) <= {"source_lang", "target_lang"} or not all(
            isinstance(v, str) and _LANG.fullmatch(v) for v in langs.values()):
        raise InvalidInputError(f"`from_pretrained_langs` must map source_lang/target_lang to language codes, "
                                f"but is {str(langs)[:80]}")


def _fairseq_bpe(codes: Path, bpe: str | None) -> Any:
    from fairseq.data import encoders

    if bpe == "subword_nmt":
        return encoders.build_bpe(argparse.Namespace(bpe="subword_nmt", bpe_codes=str(codes), bpe_separator="@@"))
    with native_stderr_hidden():
        return encoders.build_bpe(argparse.Namespace(bpe="fastbpe", bpe_codes=str(codes)))


class _PlainDict:
    """A dictionary look-up written from fairseq's file format, independent of modelport."""

    def __init__(self, path: Path) -> None:
        self.symbols = ["<s>", "<pad>", "</s>", "<unk>"]
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        with open(path, encoding="utf-8") as f:
            for line in f.readlines():
                word, field = line.rstrip().rsplit(" ", 1)
                if field == "#fairseq:overwrite":
                    word, _ = word.rsplit(" ", 1)
                self.indices[word] = len(self.symbols)
                self.symbols.append(word)

    def encode_line(self, line: str) -> list[int]:
        return [self.indices.get(w, 3) for w in line.split()] + [2]

    def string(self, ids: list[int]) -> str:
        return " ".join(self.symbols[i] if i < len(self.symbols) else "<unk>" for i in ids if i not in (0, 2))


class SacremosesBpeReference:
    """sacremoses + fastBPE (or subword-nmt) + dictionary, called directly."""

    authoritative = True

    def __init__(self, directory: str | os.PathLike[str], *, source_lang: str | None, target_lang: str | None,
                 escape: bool = True, aggressive_dash_splits: bool = True,
                 moses_langs: tuple[str | None, str | None] | None = None) -> None:
        """``moses_langs``: sacremoses' languages for the source and the
        detokenizer, as fairseq's hub uses them (default: the task's)."""
        from sacremoses import MosesDetokenizer, MosesTokenizer

        directory = Path(directory)
        self.source_lang, self.target_lang = source_lang or "en", target_lang or "en"
        msrc, mtgt = moses_langs or (None, None)
        self.moses_langs = (msrc or self.source_lang, mtgt or self.target_lang)
        self.escape, self.dash = escape, aggressive_dash_splits
        # the target side encodes as the training data was binarized (the task's language)
        self.tok = {"source": MosesTokenizer(self.moses_langs[0]), "target": MosesTokenizer(self.target_lang)}
        self.detok = MosesDetokenizer(self.moses_langs[1])
        self.dicts = {"source": _PlainDict(dict_path(directory, source_lang)),
                      "target": _PlainDict(dict_path(directory, target_lang))}
        codes = find_codes(directory)
        self.fmt = codes_format(codes) if codes is not None else None
        self.name = "sacremoses_subword_nmt" if self.fmt == "subword_nmt" else "sacremoses_fastbpe"
        self._apply = None
        if self.fmt == "fastbpe":
            import fastBPE

            with native_stderr_hidden():
                bpe = fastBPE.fastBPE(str(codes))
            self._apply = lambda s: bpe.apply([s])[0]
        elif self.fmt == "subword_nmt":
            from subword_nmt import apply_bpe

            with open(codes, encoding="utf-8") as f:
                sbpe = apply_bpe.BPE(f, -1, "@@", None, None)
            self._apply = sbpe.process_line

    def bpe_line(self, line: str, *, side: str = "source") -> str:
        text = self.tok[side].tokenize(line, aggressive_dash_splits=self.dash, return_str=True, escape=self.escape)
        return self._apply(text) if self._apply is not None else text

    def encode(self, line: str) -> list[int]:
        return self.dicts["source"].encode_line(self.bpe_line(line))

    def encode_target(self, line: str) -> list[int]:
        return self.dicts["target"].encode_line(self.bpe_line(line, side="target"))

    def decode(self, ids: list[int]) -> str:
        text = self.dicts["target"].string(ids)
        if self._apply is not None:
            text = (text + " ").replace("@@ ", "").rstrip()
        return self.detok.detokenize(text.split())

    def tokens(self, ids: list[int], *, side: str = "source") -> list[str]:
        d = self.dicts[side]
        return [d.symbols[i] if i < len(d.symbols) else "<unk>" for i in ids]
