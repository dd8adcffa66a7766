"""One decoder interface over a single model or an ensemble.

fairseq's ``EnsembleModel.forward_decoder`` averages members in probability
space and returns the log of the mean probability::

    logsumexp(stack(log_probs), dim=0) - log(n_members)

A single model returns its own log-softmax untouched (no logsumexp round trip),
exactly as fairseq's ``models_size == 1`` shortcut does. Temperature divides the
logits before the log-softmax, as fairseq's ``decoder_out[0].div_(temperature)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from modelport.generation.shortlist import LexicalShortlist, scatter_rows
from modelport.model.layers import KeyRuns, shared_keys
from modelport.model.transformer import DecoderState, EncoderOutput, Seq2SeqModel


class Ensemble:
    """Encoder outputs and KV caches of every member, reordered together."""

    def __init__(self, models: Sequence[Seq2SeqModel] | Seq2SeqModel) -> None:
        self.models = [models] if isinstance(models, Seq2SeqModel) else list(models)
        if not self.models:
            raise ValueError("an ensemble needs at least one model")
        self.cfg = self.models[0].cfg
        self.enc: list[EncoderOutput] = []
        self.states: list[DecoderState] = []
        self.align_layer: int | None = None  # see record_cross_attention
        self.group = 1  # consecutive batch rows that share one row of the encoder side (see reorder)
        self.runs: KeyRuns | None = None  # or runs of unequal lengths that do

    @property
    def max_target_positions(self) -> int:
        return min(m.cfg.max_target_positions for m in self.models)

    def encode(self, src_tokens: Tensor, runs: Sequence[tuple[int, int]] | None = None) -> None:
        """Run every encoder (on ``runs`` of rows apart, see :meth:`Seq2SeqModel.encode
        <modelport.model.transformer.Seq2SeqModel.encode>`) and start fresh decoder states."""
        self.enc = [m.encode(src_tokens, runs) for m in self.models]
        self.states = [m.new_state() for m in self.models]
        self.states[0].align_layer = self.align_layer
        self.group, self.runs = 1, None

    def record_cross_attention(self, layer: int | None) -> None:
        """From the next :meth:`encode` on, keep the cross-attention of decoder
        ``layer`` (0-based) of the first member at every step, as Marian takes
        its word alignments from its first scorer only (``BeamSearch::toHyps``)."""
        self.align_layer = layer

    def cross_attention(self) -> Tensor:
        """The last step's cross-attention probabilities of head 0 (Marian's
        ``collectOneHead``) of the recorded layer, fp32 ``[B, S]``."""
        weights = self.states[0].cross_weights if self.states else None
        if weights is None:
            raise RuntimeError("no cross-attention was recorded (record_cross_attention before encode)")
        return weights[:, 0, -1, :]

    def reorder_encoder(self, index: Tensor) -> None:
        """Select rows of the encoder outputs, before decoding starts (one row per batch row after it)."""
        self.enc = [e.reorder(index) for e in self.enc]
        self.group, self.runs = 1, None

    def reorder(self, index: Tensor, cross: bool = True, group: int | Sequence[int] = 1) -> None:
        """Reorder the batch dimension of the caches by ``index``, and of the
        encoder outputs and cross-attention keys when ``cross`` (without it,
        ``index`` only permutes rows of one sentence, which share them).

        ``group``: after the reorder, runs of ``group`` consecutive rows hold one
        sentence (its beam), or runs of the given lengths, one per sentence
        (Marian's beams, which shrink). Where ``index`` keeps every run within one
        row of the encoder side, that side keeps one row per run: fewer rows to
        copy, and each read once per step for the whole run
        (:func:`~modelport.model.layers.attend`); otherwise one row per batch row."""
        if not cross:
            for s in self.states:
                s.reorder(index, cross=False)
            return
        n = index.numel()
        if isinstance(group, int):
            runs = [group] * (n // group) if n % group == 0 else []
        else:
            runs = list(group)
        keys = self._key_rows(index)
        states = self.enc[0].states
        shared = None
        if runs and max(runs) > 1 and sum(runs) == n and shared_keys(n, states.size(1), self.cfg.d_model, states):
            shared = shared_rows(keys, runs)
        self.group, self.runs = 1, None
        if shared is not None:
            keys = shared
            if min(runs) == max(runs):
                self.group = runs[0]
            else:
                self.runs = KeyRuns.of(runs, index.device)
        self.enc = [e.reorder(keys) for e in self.enc]
        for s in self.states:
            s.reorder(index, cross=True, cross_index=keys, runs=self.runs)

    def _key_rows(self, index: Tensor) -> Tensor:
        """The encoder-side row that each row of ``index`` reads now."""
        if self.runs is not None:
            return self.runs.rows.index_select(0, index)
        return torch.div(index, self.group, rounding_mode="floor") if self.group > 1 else index

    def logits(self, new_tokens: Tensor) -> Tensor:
        """Raw fp32 logits ``[B, V]`` of a single model (ensembles: log of the mean probability)."""
        if len(self.models) > 1:
            return self.log_probs(new_tokens)
        return self.models[0].decode(new_tokens, self.enc[0], self.states[0])[:, -1, :]

    def log_probs(self, new_tokens: Tensor, temperature: float = 1.0) -> Tensor:
        """fp32 log-probabilities ``[B, V]`` of the next token after ``new_tokens`` ``[B, 1]``."""
        outs = []
        for model, enc, state in zip(self.models, self.enc, self.states):
            if temperature == 1.0:
                lp = model.log_probs(new_tokens, enc, state)[:, -1, :]
            else:
                lp = torch.log_softmax(model.decode(new_tokens, enc, state)[:, -1, :] / temperature, dim=-1)
            if len(self.models) == 1:
                return lp
            outs.append(lp)
        return torch.logsumexp(torch.stack(outs, dim=0), dim=0) - math.log(len(self.models))


def shared_rows(keys: Tensor, runs: Sequence[int]) -> Tensor | None:
    """The encoder-side row of each run of consecutive batch rows (``runs``: their
    lengths) where every row of a run reads the same one (``keys``: the row each
    batch row reads); None where a run mixes two. In numpy: a search step's
    bookkeeping over a few hundred ids, where each torch operation costs more
    than its work (93 calls of a 200-line Marian search: 27 against 8 us a call;
    on a GPU the ids make one trip to the host)."""
    rows = keys.cpu().numpy()
    lengths = np.asarray(runs)
    first = rows[np.cumsum(lengths) - lengths]
    same = np.array_equal(np.repeat(first, lengths), rows)
    return torch.from_numpy(first).to(keys.device) if same else None


class LogLinearEnsemble(Ensemble):
    """Marian's ensemble: the weighted *sum* of the members' log-softmax
    (``expandedPathScores + scorer->getWeight() * logProbs`` in
    ``beam_search.cpp``; ``--weights`` default 1 each), not renormalised.

    With a ``shortlist`` (Marian's ``--shortlist``, see
    :mod:`modelport.generation.shortlist`) each batch's list of target ids is
    made when it is encoded; every member then computes the logits of those
    rows only and its log-softmax over them, and the weighted sum is returned
    in a full row of -inf, so the search needs no change. ``suppressed_unk``:
    the ``<unk>`` id the search suppresses (checked against Marian's rule)."""

    def __init__(self, models: Sequence[Seq2SeqModel] | Seq2SeqModel, weights: Sequence[float] | None = None,
                 shortlist: LexicalShortlist | None = None, suppressed_unk: int | None = None) -> None:
        super().__init__(models)
        self.shortlist, self.suppressed_unk = shortlist, suppressed_unk
        self.rows: Tensor | None = None  # this batch's shortlist
        self.heads: list[Callable[[Tensor], Tensor]] = []  # each member's output layer over those rows
        self.weights = [1.0] * len(self.models) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.models):
            raise ValueError(f"`weights` must give one weight per model ({len(self.models)}), but gives "
                             f"{len(self.weights)}")

    def encode(self, src_tokens: Tensor, runs: Sequence[tuple[int, int]] | None = None) -> None:
        super().encode(src_tokens, runs)
        if self.shortlist is not None:
            self.rows = self.shortlist.indices(src_tokens, self.cfg.pad_token_id, self.suppressed_unk)
            self.heads = [m.output_rows(self.rows) for m in self.models]

    def log_probs(self, new_tokens: Tensor, temperature: float = 1.0) -> Tensor:
        total: Tensor | None = None
        for i, (model, enc, state, w) in enumerate(zip(self.models, self.enc, self.states, self.weights)):
            if self.rows is None:
                lp = model.log_probs(new_tokens, enc, state)[:, -1, :]
            else:
                lp = torch.log_softmax(self.heads[i](model.decoder(new_tokens, enc, state)[:, -1, :]), dim=-1)
            if w != 1.0:
                lp = lp * w
            total = lp if total is None else total + lp
        assert total is not None
        return total if self.rows is None else self._scatter(total)

    def _scatter(self, short: Tensor) -> Tensor:
        assert self.rows is not None
        return scatter_rows(short, self.rows, self.cfg.target_vocab_size)
