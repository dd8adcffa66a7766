"""fairseq dictionaries in the vocabulary layout of transformers' FSMT port.

transformers' conversion script (``convert_fsmt_original_pytorch_checkpoint_to_pytorch.py``)
writes ``vocab-src.json``/``vocab-tgt.json`` from fairseq's ``dict.*.txt``
with BPE continuation marks moved: fairseq marks a piece that continues the
word (``le@@``), FSMTTokenizer marks a word-final one (``er</w>``). Used by
``export hf`` (writing an FSMT folder) and by the FSMTTokenizer reference of
the tokenizer validator (building one from the original files).
"""

from __future__ import annotations

import re

# fairseq's special symbols: kept as they are (no ``</w>``), at their own ids
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def rewrite_dict_keys(symbols: list[str]) -> dict[str, int]:
    """transformers' ``rewrite_dict_keys``: ``le@@`` → ``le``, ``er`` → ``er</w>``, specials kept."""
    out: dict[str, int] = {}
    for i, k in enumerate(symbols):
        out[re.sub(r"@@$", "", k) if k.endswith("@@") else k + "</w>"] = i
    for k in SPECIALS:
        del out[f"{k}</w>"]
        out[k] = symbols.index(k)
    return out


__all__ = ["SPECIALS", "rewrite_dict_keys"]
