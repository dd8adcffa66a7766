"""The decoder interface the search loop drives, for runtimes other than torch.

:func:`~modelport.generation.beam.run_search` talks to the model only
through an :class:`~modelport.generation.ensemble.Ensemble`: ``encode`` a
batch, ``reorder_encoder``/``reorder`` the batch rows (beam search's index),
and ``logits``/``log_probs`` of the next token after one new token per row
(the runtime keeps the KV cache). :class:`SearchBackend` is that interface
for a model that is not a :class:`~modelport.model.transformer.Seq2SeqModel`
(the ONNX runtime, :mod:`modelport.runtimes.onnx`): :func:`~modelport.generation.translate.generate`
passes it to the loop as it is, so the search, its semantics and the
hypotheses are modelport's whatever computes the logits.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


class SearchBackend(abc.ABC):
    """One model behind the search loop's decoder interface (no ensemble).

    ``cfg`` is the model's :class:`~modelport.model.config.Seq2SeqConfig`;
    tensors in and out are CPU torch tensors (logits fp32 ``[rows, V]``)."""

    cfg: Any
    device: torch.device = torch.device("cpu")

    @property
    def max_target_positions(self) -> int:
        return int(self.cfg.max_target_positions)

    @abc.abstractmethod
    def encode(self, src_tokens: Tensor, runs: Sequence[tuple[int, int]] | None = None) -> None:
        """Run the encoder on ``[B, S]`` source ids and start a fresh cache; ``runs``: row
        ranges that may be encoded apart, each at its own width (see
        :func:`~modelport.model.transformer.encode_in_runs`), or all at once."""

    @abc.abstractmethod
    def reorder_encoder(self, index: Tensor) -> None:
        """Select rows of the encoder outputs (and cross-attention keys/values)."""

    @abc.abstractmethod
    def reorder(self, index: Tensor, cross: bool = True, group: int | Sequence[int] = 1) -> None:
        """Select rows of the self-attention cache; also of the encoder side when ``cross``.
        ``group``: after it, runs of ``group`` consecutive rows (or of the given lengths, one per
        sentence) hold one sentence (its beam), so a backend may keep one row of the encoder side
        per run (the torch model does; optional)."""

    @abc.abstractmethod
    def logits(self, new_tokens: Tensor) -> Tensor:
        """fp32 logits ``[rows, V]`` of the next token after ``new_tokens`` ``[rows, 1]``; extends the cache."""

    def log_probs(self, new_tokens: Tensor, temperature: float = 1.0) -> Tensor:
        """As :meth:`Ensemble.log_probs <modelport.generation.ensemble.Ensemble.log_probs>`
        for one model: the log-softmax (in fp32) of the logits divided by ``temperature``."""
        logits = self.logits(new_tokens)
        if temperature != 1.0:
            logits = logits / temperature
        return torch.log_softmax(logits, dim=-1)


__all__ = ["SearchBackend"]
