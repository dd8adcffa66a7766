"""Tokenizers that reproduce each source framework's text-to-ids pipeline.

``tokenizer/tokenizer_config.json`` names the pipeline in ``type``;
:data:`TOKENIZERS` maps each type to its class, which implements the
:class:`Tokenizer` protocol (``from_dir(directory, cfg)``, ``encode`` /
``encode_target`` / ``encode_batch`` / ``tokenize`` / ``id_to_tokens`` /
``decode`` / ``decode_batch`` / ``vocab_size_of`` and ``pad_id`` / ``eos_id`` / ``unk_id``).
Adding a pipeline is one class and one entry.
"""

from __future__ import annotations

from pathlib import Path

from modelport.errors import InvalidInputError
from modelport.tokenizers.base import (
    Tokenizer, TokenizerBase, check_ids, check_keep_special_tokens, check_model_rows, read_config,
)
from modelport.tokenizers.fairseq_spm import FairseqSpmTokenizer
from modelport.tokenizers.gpt2_bpe import Gpt2BpeTokenizer
from modelport.tokenizers.moses_bpe import MosesBpeTokenizer
from modelport.tokenizers.sentencepiece import MarianSpmTokenizer, T5SpmTokenizer

# tokenizer_config.json "type" -> the class that loads and runs it
TOKENIZERS: dict[str, type[Tokenizer]] = {cls.kind: cls for cls in (
    MosesBpeTokenizer, MarianSpmTokenizer, T5SpmTokenizer, FairseqSpmTokenizer, Gpt2BpeTokenizer)}


def load_tokenizer(directory: str | Path, *, model_rows: tuple[int, int] | None = None) -> Tokenizer:
    """Load the tokenizer saved in a ported folder's ``tokenizer/``.

    ``model_rows``: the model's (source, target) vocabulary sizes. The
    tokenizer is checked against them (:func:`check_model_rows`), and the
    target's bounds the ids a tokenizer whose own vocabulary is smaller than
    the model's accepts in ``decode`` (T5: 32100 pieces, 32128 rows); the
    others check their own."""
    directory, cfg = read_config(directory)
    if model_rows is not None:
        cfg = {**cfg, "model_vocab_size": model_rows[1]}
    kind = cfg.get("type")
    cls = TOKENIZERS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidInputError(f"`{kind}` is not a known tokenizer type (known: {', '.join(sorted(TOKENIZERS))})")
    tok = cls.from_dir(directory, cfg)
    if model_rows is not None:
        check_model_rows(tok, *model_rows, where=directory)
    return tok


__all__ = ["TOKENIZERS", "FairseqSpmTokenizer", "Gpt2BpeTokenizer", "MarianSpmTokenizer", "MosesBpeTokenizer",
           "T5SpmTokenizer", "Tokenizer", "TokenizerBase", "check_ids", "check_keep_special_tokens", "load_tokenizer"]
