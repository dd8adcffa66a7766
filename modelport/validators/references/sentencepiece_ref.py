"""The ``sentencepiece`` library called directly, as OPUS-MT/Marian and T5 use it.

Marian/OPUS-MT: ``spm_encode`` pieces of ``source.spm`` (a leading ``>>xx<<``
kept whole), looked up in the original vocabulary YAML (or JSON), ``<unk>``
for missing pieces, ``</s>`` appended; decoding through ``target.spm``'s
``decode_pieces`` with ``<unk>`` kept literally, stripped (transformers'
``MarianTokenizer``); with Marian's own ``.spm`` vocabularies, ``decode`` of
the ids without ``</s>``, whitespace kept (Marian's ``SentencePieceVocab::decode``).
T5: ``spiece.model`` ids, ``<extra_id_N>`` = ``size + 99 - N``, sentinel
strings in the text looked up whole, ``</s>`` appended; decoding as T5 users
decode (transformers' ``decode(skip_special_tokens=True)``): the pieces of the
ordinary ids (``</s>``, pad, ``<unk>``, sentinels and unknown ids dropped),
``▁`` a space except in the first piece, where it is dropped (the
``Metaspace`` decoder; ``sentencepiece``'s ``decode`` strips every leading
whitespace piece instead), then transformers' clean-up of spaces before
punctuation when the folder's ``tokenizer_config.json`` sets
``clean_up_tokenization_spaces``.
The reference reads the *original* files, never the ported folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modelport.errors import InvalidInputError
from modelport.tokenizers.marian_unigram import library_pieces, marian_pieces


def _spm(path: Path) -> Any:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(path))


def marian_files(directory: Path) -> tuple[Path, Path, Path, Path | None]:
    """(source.spm, target.spm, vocab, target vocab or None) of an OPUS-MT folder."""
    src = directory / "source.spm"
    tgt = directory / "target.spm"
    if not src.is_file():
        raise InvalidInputError(f"`{directory}` has no source.spm (is it an OPUS-MT/Marian model folder?)")
    vocabs = sorted(directory.glob("*vocab*.yml")) + sorted(directory.glob("*vocab*.json"))
    vocabs = [v for v in vocabs if "target" not in v.name and "trg" not in v.name] or vocabs
    tvocabs = [v for v in directory.glob("*vocab*") if "target" in v.name or "trg" in v.name]
    if not vocabs:
        raise InvalidInputError(f"`{directory}` has no vocabulary (*.vocab.yml or vocab.json)")
    return src, (tgt if tgt.is_file() else src), vocabs[0], (tvocabs[0] if tvocabs else None)


def read_vocab(path: Path) -> dict[str, int]:
    """A Marian vocabulary (``vocab.json`` or ``*.vocab.yml``): piece -> id."""
    if path.suffix == ".json":
        return {k: int(v) for k, v in json.loads(path.read_text("utf-8")).items()}
    return {str(k): int(v) for k, v in yaml.load(path.read_text("utf-8"), Loader=yaml.BaseLoader).items()}


def spm_vocabularies(directory: Path) -> tuple[Path, Path] | None:
    """(source, target) when decoder.yml names SentencePiece models as the
    vocabularies (Marian's own spm vocabularies: ids are the model's ids), else None."""
    yml = directory / "decoder.yml"
    if not yml.is_file():
        return None
    vocabs = (yaml.safe_load(yml.read_text(encoding="utf-8")) or {}).get("vocabs") or []
    if not vocabs or not all(isinstance(v, str) and v.endswith(".spm") for v in vocabs):
        return None
    return directory / vocabs[0], directory / vocabs[-1]


class MarianSpmReference:
    """Marian's pieces and ids. With spm vocabularies Marian's SentencePieceVocab
    encodes the whole line (a leading ``>>xx<<`` included) and uses the model's
    ids, ``</s>`` appended; with OPUS-MT's YAML vocabulary the pieces are looked
    up in it (the text is pre-encoded there, the language token split off first)."""

    name = "sentencepiece"
    authoritative = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        directory = Path(directory)
        spm_vocabs = spm_vocabularies(directory)
        if spm_vocabs is not None:
            self.sp_src, self.sp_tgt = _spm(spm_vocabs[0]), _spm(spm_vocabs[1])
            # Marian encodes .spm vocabularies itself, breaking ties of equal score its own way: no
            # library exposes it, so its rule (marian_unigram; checked against pymarian's scores and
            # translations in tests/validators/test_marian_spm_ties.py) stands for it
            self.src_pieces = marian_pieces(spm_vocabs[0], self.sp_src)
            self.tgt_pieces = marian_pieces(spm_vocabs[1], self.sp_tgt)
            self.vocab, self.tvocab = (
                {sp.id_to_piece(i): i for i in range(sp.get_piece_size())} for sp in (self.sp_src, self.sp_tgt))
        else:
            src, tgt, vocab, tvocab = marian_files(directory)
            self.sp_src, self.sp_tgt = _spm(src), _spm(tgt)
            # OPUS-MT's layout comes pre-encoded by the library (spm_encode)
            self.src_pieces, self.tgt_pieces = library_pieces(self.sp_src), library_pieces(self.sp_tgt)
            self.vocab = read_vocab(vocab)
            self.tvocab = read_vocab(tvocab) if tvocab is not None else self.vocab
        self.split_language_token = spm_vocabs is None
        self.inverse = {i: p for p, i in self.tvocab.items()}
        self.src_inverse = {i: p for p, i in self.vocab.items()}

    def _encode(self, line: str, pieces: Callable[[str], list[str]], vocab: dict[str, int]) -> list[int]:
        code: list[str] = []
        if self.split_language_token and line.startswith(">>") and "<<" in line:
            end = line.index("<<") + 2
            code, line = [line[:end]], line[end:]
        return [vocab.get(p, vocab["<unk>"]) for p in code + pieces(line)] + [vocab["</s>"]]

    def encode(self, line: str) -> list[int]:
        return self._encode(line, self.src_pieces, self.vocab)

    def encode_target(self, line: str) -> list[int]:
        return self._encode(line, self.tgt_pieces, self.tvocab)

    def decode(self, ids: list[int]) -> str:
        if not self.split_language_token:  # .spm vocabularies: Marian decodes the spm ids, </s> left out
            size = self.sp_tgt.get_piece_size()  # the port's appended <pad> is no Marian id
            return self.sp_tgt.decode([i for i in ids if i != self.tvocab["</s>"] and 0 <= i < size])
        pad = self.tvocab.get("<pad>", max(self.tvocab.values()) + 1)
        pieces = [self.inverse.get(i, "<unk>") for i in ids if i not in (self.tvocab["</s>"], pad)]
        text, run = "", []
        for p in pieces:
            if p == "<unk>":
                text += self.sp_tgt.decode_pieces(run) + p + " "
                run = []
            else:
                run.append(p)
        text += self.sp_tgt.decode_pieces(run)
        return text.replace("\u2581", " ").strip()

    def tokens(self, ids: list[int], *, side: str = "source") -> list[str]:
        inv = self.src_inverse if side == "source" else self.inverse
        return [inv.get(i, "<pad>") for i in ids]


_SENTINEL = re.compile(r"<extra_id_(\d+)>")


class T5SpmReference:
    name = "sentencepiece"
    authoritative = True

    def __init__(self, directory: str | os.PathLike[str], extra_ids: int = 100) -> None:
        directory = Path(directory)
        path = directory / "spiece.model" if directory.is_dir() else directory
        if not path.is_file():
            raise InvalidInputError(f"`{directory}` has no spiece.model (is it a T5 model folder?)")
        self.sp = _spm(path)
        self.size = self.sp.get_piece_size()
        self.extra_ids = extra_ids
        cfg_path = path.parent / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
        self.clean_up = isinstance(cfg, dict) and cfg.get("clean_up_tokenization_spaces") is True

    def encode(self, line: str) -> list[int]:
        ids: list[int] = []
        pos = 0
        for m in _SENTINEL.finditer(line):
            if m.group(1) != str(int(m.group(1))) or int(m.group(1)) >= self.extra_ids:
                continue
            if line[pos:m.start()]:
                ids += self.sp.encode(line[pos:m.start()])
            ids.append(self.size + self.extra_ids - 1 - int(m.group(1)))
            pos = m.end()
        if line[pos:]:
            ids += self.sp.encode(line[pos:])
        return ids + [self.sp.eos_id()]

    encode_target = encode

    def decode(self, ids: list[int]) -> str:
        specials = {self.sp.eos_id(), max(self.sp.pad_id(), 0), self.sp.unk_id()}
        pieces = [self.sp.id_to_piece(i) for i in ids if 0 <= i < self.size and i not in specials]
        text = "".join(p if k else p.replace("\u2581", "") for k, p in enumerate(pieces)).replace("\u2581", " ")
        if self.clean_up:  # transformers' clean_up_tokenization
            for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                         (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(a, b)
        return text

    def tokens(self, ids: list[int], *, side: str = "source") -> list[str]:
        return [self.sp.id_to_piece(i) if i < self.size else f"<extra_id_{self.size + self.extra_ids - 1 - i}>"
                for i in ids]
