"""fairseq's own text pipeline as the tokenizer reference.

Two references live here:

``fairseq_hub``
    ``TransformerModel.from_pretrained(dir, tokenizer='moses', bpe=...)``,
    then ``hub.encode`` / ``hub.decode`` (fairseq's ``GeneratorHubInterface``
    code). fairseq's ``MosesTokenizerConfig`` defaults both languages to
    ``en`` when the checkpoint's config records no tokenizer; a fairseq user
    passes ``source_lang``/``target_lang`` then, so the tokenizer is rebuilt
    with the task's languages (fairseq's own reading of the checkpoint) when
    they differ. Without a checkpoint in the directory, the same hub code runs
    on fairseq's encoders and dictionaries assembled by hand.
``sacremoses_fastbpe`` / ``sacremoses_subword_nmt``
    sacremoses, the ``fastBPE`` module (or ``subword_nmt.apply_bpe``) and a
    plain dictionary look-up, called directly, without fairseq.

fairseq and the BPE modules are imported lazily: they are reference-side
dependencies only.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from modelport.validators.references import prepare_fairseq, sanitized_fairseq_checkpoints
from modelport.errors import InvalidInputError

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
                 target_lang: str | None = None) -> None:
        directory = Path(directory).resolve()
        if not directory.is_dir():
            raise InvalidInputError(f"reference `{directory}` is not a directory")
        codes = find_codes(directory)
        bpe = codes_format(codes) if codes is not None else None
        ckpt = _checkpoint(directory)
        if ckpt is not None:
            self.hub = self._from_pretrained(directory, ckpt, bpe, source_lang, target_lang)
            self.via = "hub_interface"
        else:
            self.hub = self._assembled(directory, codes, bpe, source_lang, target_lang)
            self.via = "hub_interface_code_on_fairseq_encoders"

    @staticmethod
    def _from_pretrained(directory: Path, ckpt: Path, bpe: str | None, source_lang: str | None,
                         target_lang: str | None) -> Any:
        prepare_fairseq()
        from fairseq.data.encoders.moses_tokenizer import MosesTokenizer, MosesTokenizerConfig
        from fairseq.models.transformer import TransformerModel

        kwargs: dict[str, Any] = {"tokenizer": "moses"}
        if bpe:
            kwargs["bpe"] = bpe
        # a checkpoint trained without --source-lang/--target-lang cannot infer
        # them from a model folder; fairseq users pass them, as done here
        if source_lang and target_lang:
            kwargs.update(source_lang=source_lang, target_lang=target_lang)
        # fairseq only ever sees a plain-data copy read by modelport's restricted unpickler;
        # an absolute checkpoint_file is joined onto the model folder as itself
        with sanitized_fairseq_checkpoints([ckpt]) as (copy,):
            hub = TransformerModel.from_pretrained(str(directory), checkpoint_file=str(copy),
                                                   data_name_or_path=str(directory), **kwargs)
        hub.eval()
        task = hub.cfg.task
        src = getattr(task, "source_lang", None) or source_lang
        tgt = getattr(task, "target_lang", None) or target_lang
        tok_cfg = hub.tokenizer.cfg
        if (src and tok_cfg.source_lang != src) or (tgt and tok_cfg.target_lang != tgt):
            hub.tokenizer = MosesTokenizer(MosesTokenizerConfig(
                source_lang=src or tok_cfg.source_lang, target_lang=tgt or tok_cfg.target_lang,
                moses_no_dash_splits=bool(tok_cfg.moses_no_dash_splits),
                moses_no_escape=bool(tok_cfg.moses_no_escape)))
        return hub

    @staticmethod
    def _assembled(directory: Path, codes: Path | None, bpe: str | None, source_lang: str | None,
                   target_lang: str | None) -> Any:
        import torch.nn as nn
        from fairseq.data import Dictionary
        from fairseq.data.encoders.moses_tokenizer import MosesTokenizer, MosesTokenizerConfig
        from fairseq.hub_utils import GeneratorHubInterface

        hub = GeneratorHubInterface.__new__(GeneratorHubInterface)
        nn.Module.__init__(hub)
        hub.src_dict = Dictionary.load(str(dict_path(directory, source_lang)))
        hub.tgt_dict = Dictionary.load(str(dict_path(directory, target_lang)))
        hub.tokenizer = MosesTokenizer(MosesTokenizerConfig(source_lang=source_lang or "en",
                                                            target_lang=target_lang or "en"))
        hub.bpe = _fairseq_bpe(codes, bpe) if codes is not None else None
        return hub

    def encode(self, line: str) -> list[int]:
        return self.hub.encode(line).tolist()

    def decode(self, ids: list[int]) -> str:
        import torch

        return self.hub.decode(torch.tensor(ids, dtype=torch.long))

    def tokens(self, ids: list[int], *, side: str = "source") -> list[str]:
        d = self.hub.src_dict if side == "source" else self.hub.tgt_dict
        return [d[i] for i in ids]


def _fairseq_bpe(codes: Path, bpe: str | None) -> Any:
    from fairseq.data import encoders

    if bpe == "subword_nmt":
        return encoders.build_bpe(argparse.Namespace(bpe="subword_nmt", bpe_codes=str(codes), bpe_separator="@@"))
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
                 escape: bool = True, aggressive_dash_splits: bool = True) -> None:
        from sacremoses import MosesDetokenizer, MosesTokenizer

        directory = Path(directory)
        self.source_lang, self.target_lang = source_lang or "en", target_lang or "en"
        self.escape, self.dash = escape, aggressive_dash_splits
        self.tok = {"source": MosesTokenizer(self.source_lang), "target": MosesTokenizer(self.target_lang)}
        self.detok = MosesDetokenizer(self.target_lang)
        self.dicts = {"source": _PlainDict(dict_path(directory, source_lang)),
                      "target": _PlainDict(dict_path(directory, target_lang))}
        codes = find_codes(directory)
        self.fmt = codes_format(codes) if codes is not None else None
        self.name = "sacremoses_subword_nmt" if self.fmt == "subword_nmt" else "sacremoses_fastbpe"
        self._apply = None
        if self.fmt == "fastbpe":
            import fastBPE

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
