"""Tokenizers that reproduce each source framework's text-to-ids pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.model.io import read_json


def load_tokenizer(directory: str | Path) -> Any:
    """Load the tokenizer saved in a ported folder's ``tokenizer/``."""
    directory = Path(directory)
    cfg = read_json(directory / "tokenizer_config.json")
    kind = cfg.get("type")
    if kind == "fairseq_moses_bpe":
        from modelport.tokenizers.moses_bpe import MosesBpeTokenizer

        return MosesBpeTokenizer.from_dir(directory, cfg)
    raise InvalidInputError(f"`{kind}` is not a known tokenizer type (known: fairseq_moses_bpe)")
