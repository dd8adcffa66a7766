"""Adapters that drive fairseq, transformers, ctranslate2 and sentencepiece as references."""

from __future__ import annotations

import logging
import os


def prepare_fairseq() -> None:
    """Reference side only: fairseq's own checkpoint loader needs unrestricted
    unpickling under torch >= 2.6 (modelport's loader never does), and its INFO
    logging (a full config dump per load) would drown the validator's output."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    for name in ("fairseq", "fairseq.models.fairseq_model", "fairseq.file_utils", "fairseq.tasks"):
        logging.getLogger(name).setLevel(logging.WARNING)
