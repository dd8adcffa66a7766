"""Tokenizers that reproduce each source framework's text-to-ids pipeline.

``tokenizer/tokenizer_config.json`` names the pipeline in ``type``;
:data:`TOKENIZERS` maps each type to its class, which implements the
:class:`Tokenizer` protocol (``from_dir(directory, cfg)``, ``encode`` /
``encode_target`` / ``encode_batch`` / ``tokenize`` / ``id_to_tokens`` /
``decode`` / ``decode_batch`` and ``pad_id`` / ``eos_id`` / ``unk_id``).
Adding a pipeline is one class and one entry.
"""

from __future__ import annotations

from pathlib import Path

from modelport.errors import InvalidInputError
from modelport.tokenizers.base import Tokenizer, TokenizerBase, check_keep_special_tokens, read_config
from modelport.tokenizers.moses_bpe import MosesBpeTokenizer
from modelport.tokenizers.sentencepiece import MarianSpmTokenizer, T5SpmTokenizer

# tokenizer_config.json "type" -> the class that loads and runs it
TOKENIZERS: dict[str, type[Tokenizer]] = {cls.kind: cls for cls in (
    MosesBpeTokenizer, MarianSpmTokenizer, T5SpmTokenizer)}


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Load the tokenizer saved in a ported folder's ``tokenizer/``."""
    directory, cfg = read_config(directory)
    kind = cfg.get("type")
    cls = TOKENIZERS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidInputError(f"`{kind}` is not a known tokenizer type (known: {', '.join(sorted(TOKENIZERS))})")
    return cls.from_dir(directory, cfg)


__all__ = ["TOKENIZERS", "MarianSpmTokenizer", "MosesBpeTokenizer", "T5SpmTokenizer", "Tokenizer", "TokenizerBase",
           "check_keep_special_tokens", "load_tokenizer"]
