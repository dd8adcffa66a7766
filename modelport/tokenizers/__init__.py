"""Tokenizers that reproduce each source framework's text-to-ids pipeline.

``tokenizer/tokenizer_config.json`` names the pipeline in ``type``; each type
maps to a class with ``from_dir(directory, cfg)`` and the common interface
``encode`` / ``encode_target`` / ``encode_batch`` / ``decode`` /
``decode_batch`` and ``pad_id`` / ``eos_id`` / ``unk_id``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.model.io import read_json

# tokenizer_config.json "type" -> "module:Class" (imported on use)
TOKENIZER_TYPES: dict[str, str] = {
    "fairseq_moses_bpe": "modelport.tokenizers.moses_bpe:MosesBpeTokenizer",
    "marian_spm": "modelport.tokenizers.sentencepiece:MarianSpmTokenizer",
    "t5_spm": "modelport.tokenizers.sentencepiece:T5SpmTokenizer",
}


def load_tokenizer(directory: str | Path) -> Any:
    """Load the tokenizer saved in a ported folder's ``tokenizer/``."""
    directory = Path(directory)
    cfg = read_json(directory / "tokenizer_config.json")
    kind = cfg.get("type")
    target = TOKENIZER_TYPES.get(kind) if isinstance(kind, str) else None
    if target is None:
        raise InvalidInputError(f"`{kind}` is not a known tokenizer type (known: {', '.join(sorted(TOKENIZER_TYPES))})")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_dir(directory, cfg)
