"""GPT-2 byte-level BPE + fairseq dictionary, as BART's hub encodes (``type: "fairseq_gpt2_bpe"``).

fairseq 0.12's ``GPT2BPE`` (``data/encoders/gpt2_bpe.py`` and
``gpt2_bpe_utils.py``, itself OpenAI's GPT-2 ``encoder.py``, MIT) and its
dictionary remapping, reproduced without fairseq:

encode
    The text is split with GPT-2's pattern (``'s|'t|...| ?\\p{L}+| ?\\p{N}+|...``,
    the ``regex`` module); each chunk's UTF-8 bytes become the printable
    characters of ``bytes_to_unicode``; ``vocab.bpe``'s merges are applied by
    rank; each piece is looked up in ``encoder.json`` (a byte-level
    vocabulary holds every single byte, so every piece is found). The GPT-2
    ids, written as decimal strings, are then words of fairseq's
    ``dict.txt`` (``"<id> <count>"`` lines): a GPT-2 id the dictionary lacks
    is ``<unk>``. BART's hub then wraps the source as ``<s> ... </s>``
    (``source_bos``).
dictionary
    ``dict.txt`` after ``<s> <pad> </s> <unk>``, then ``<mask>`` when the
    task adds it (``denoising``); the model's embedding may hold more rows
    (ids past the symbols decode as ``<unk>``).
decode
    ``Dictionary.string`` (``<s>``/``</s>`` skipped), then ``GPT2BPE.decode``:
    each word back to its GPT-2 id (``<unk>``/``<mask>`` kept as text; fairseq
    raises on any other non-numeric symbol, which is rendered literally here),
    pieces joined, bytes decoded as UTF-8 with ``errors="replace"``.

tokenizer_config.json keys: ``type``, ``encoder_json``, ``vocab_bpe``, ``dict``,
``add_mask``, ``source_bos``, ``decoder_bos``, ``model_vocab_size``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.tokenizers.base import check_keep_special_tokens, read_config, tokenizer_file
from modelport.tokenizers.fairseq_spm import DictionaryTokenizer, augment_dictionary
from modelport.tokenizers.vocab import FairseqDictionary

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def read_merges(path: Path) -> list[tuple[str, ...]]:
    """``vocab.bpe`` as fairseq reads it: the first line (``#version``) and the
    text after the last newline are skipped."""
    text = path.read_text(encoding="utf-8")
    return [tuple(line.split()) for line in text.split("\n")[1:-1]]


class Gpt2Bpe:
    """GPT-2's ``Encoder`` (byte-level BPE with merge ranks)."""

    def __init__(self, encoder: dict[str, int], merges: list[tuple[str, ...]]) -> None:
        import regex

        self.encoder = encoder
        self.decoder = {v: k for k, v in encoder.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.ranks = dict(zip(merges, range(len(merges))))
        self.cache: dict[str, str] = {}
        self.pattern = regex.compile(GPT2_PATTERN)

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = set(zip(word, word[1:]))
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
            if len(word) == 1:
                break
            pairs = set(zip(word, word[1:]))
        out = " ".join(word)
        self.cache[token] = out
        return out

    def pieces(self, text: str) -> list[str]:
        """The byte-level BPE pieces of ``text`` (``Ġ`` marks a space)."""
        out: list[str] = []
        for chunk in self.pattern.findall(text):
            out += self.bpe("".join(self.byte_encoder[b] for b in chunk.encode("utf-8"))).split(" ")
        return out

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in self.pieces(text):
            if piece not in self.encoder:
                raise InvalidInputError(f"GPT-2 piece {piece!r} is not in encoder.json (a byte-level "
                                        "vocabulary holds every byte; is the file complete?)")
            ids.append(self.encoder[piece])
        return ids

    def decode(self, tokens: Sequence[int | str]) -> str:
        text = "".join(self.decoder.get(t, str(t)) if isinstance(t, int) else t for t in tokens)
        data = bytearray(self.byte_decoder[c] if c in self.byte_decoder else ord(c) & 0xFF for c in text)
        return data.decode("utf-8", errors="replace")


class Gpt2BpeTokenizer(DictionaryTokenizer):
    """fairseq's ``gpt2`` BPE + dictionary (BART, bart-large-cnn)."""

    kind = "fairseq_gpt2_bpe"

    def __init__(self, bpe: Gpt2Bpe, dictionary: FairseqDictionary, *, source_bos: bool = True,
                 decoder_bos: bool = True, model_vocab_size: int | None = None) -> None:
        self.bpe = bpe
        self.init_dictionary(dictionary, model_vocab_size)
        self.init_prefix_rules(source_bos=source_bos, decoder_bos=decoder_bos)

    @classmethod
    def from_dir(cls, directory: str | Path, cfg: dict[str, Any] | None = None) -> Gpt2BpeTokenizer:
        directory, cfg = read_config(directory, cfg)
        enc_path = tokenizer_file(directory, cfg, "encoder_json", "encoder.json")
        try:
            encoder = json.loads(enc_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"`{enc_path}` is not a readable GPT-2 encoder.json ({e})") from None
        if not isinstance(encoder, dict) or not all(isinstance(v, int) for v in encoder.values()):
            raise InvalidInputError(f"`{enc_path}` must map pieces to integer ids")
        merges = read_merges(tokenizer_file(directory, cfg, "vocab_bpe", "vocab.bpe"))
        d = FairseqDictionary.load(tokenizer_file(directory, cfg, "dict", "dict.txt"))
        augment_dictionary(d, [], "multilingual", bool(cfg.get("add_mask", False)))
        return cls(Gpt2Bpe(encoder, merges), d, source_bos=bool(cfg.get("source_bos", True)),
                   decoder_bos=bool(cfg.get("decoder_bos", True)), model_vocab_size=cfg.get("model_vocab_size"))

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        """The dictionary words (GPT-2 ids as strings), without ``</s>``."""
        return " ".join(map(str, self.bpe.encode(line))).split()

    def pieces(self, line: str, *, side: str = "source") -> list[str]:
        """The byte-level BPE pieces (``ĠHello``), which :meth:`tokenize`'s GPT-2 ids stand for."""
        return self.bpe.pieces(line)

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        if keep_special_tokens:
            check_keep_special_tokens(self)
        words = self.dict.string(self.checked_ids(ids, side)).split()
        return self.bpe.decode([int(w) if w.isdigit() and w.isascii() else w for w in words])


__all__ = ["GPT2_PATTERN", "Gpt2Bpe", "Gpt2BpeTokenizer", "bytes_to_unicode", "read_merges"]
