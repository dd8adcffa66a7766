"""Greedy search and sampling (top-k, top-p, temperature), transformers' semantics.

transformers 5.x ``GenerationMixin._sample`` per step, with ``cur_len``
tokens so far (the decoder start token included):

1. processors on the raw fp32 logits (not log-probs): min length
   (``cur_len < min_length``: EOS -inf), forced EOS at ``max_length - 1``,
   a forced decoder prefix (``prefix_tokens``: token ``cur_len - 1`` of it
   while ``cur_len <= len(prefix)``; one token is transformers'
   ``forced_bos_token_id``, which a multilingual port's target language and
   BART's ``<s>`` are);
   then, when sampling, the warpers in this order: temperature
   (``logits / T``), top-k (``< k-th largest`` -> -inf), top-p (ascending
   sort, drop tokens whose cumulative probability is ``<= 1 - p``, keep at
   least one);
2. greedy: ``argmax``; sampling: ``multinomial(softmax(scores), 1)``;
3. rows already finished emit pad but stay in the batch (they still draw
   random numbers, so a seeded run reproduces transformers' draws);
4. a row finishes on EOS; everything stops at ``max_length``.

``SamplingOptions`` (in :mod:`modelport.generation.options`) holds the
options. ``seed`` makes a private ``torch.Generator``; without it the global RNG is
used (``torch.manual_seed`` before the call reproduces transformers).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from modelport.generation.beam import SearchAlgorithm
from modelport.generation.hypothesis import Hypothesis
from modelport.generation.options import SamplingOptions, hf_length_limits


def warp(scores: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
    """transformers' temperature, top-k and top-p warpers, in that order."""
    if temperature != 1.0:
        scores = scores / temperature
    if top_k > 0:
        k = min(top_k, scores.size(-1))
        scores = scores.masked_fill(scores < torch.topk(scores, k)[0][..., -1, None], -math.inf)
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - top_p)
        remove[..., -1:] = 0  # keep at least one token
        scores = scores.masked_fill(remove.scatter(1, sorted_indices, remove), -math.inf)
    return scores


class SamplingSearch(SearchAlgorithm):
    """Greedy/sampling step algorithm for :func:`~modelport.generation.beam.run_search`
    (temperature is a warper here, applied to the logits it asks for)."""

    wants_logits = True

    def __init__(self, cfg: Any, opts: SamplingOptions, max_positions: int) -> None:
        self.opts = opts
        self.pad, self.eos = cfg.pad_token_id, cfg.eos_token_id
        self.start_token = (opts.decoder_start_token_id if opts.decoder_start_token_id is not None
                            else cfg.decoder_start_token_id)
        self.max_length, self.min_length = hf_length_limits(opts, max_positions)
        self.generator: torch.Generator | None = None

    def start(self, bsz: int, src_tokens: Tensor) -> int:
        if self.opts.seed is not None:  # on the device that draws (multinomial wants them together)
            self.generator = torch.Generator(device=src_tokens.device).manual_seed(self.opts.seed)
        self.tokens = torch.full((bsz, 1), self.start_token, dtype=torch.long, device=src_tokens.device)
        self.unfinished = torch.ones(bsz, dtype=torch.bool, device=src_tokens.device)
        self.lengths = torch.zeros(bsz, dtype=torch.long, device=src_tokens.device)
        self.logps: list[Tensor] = []
        return 1

    def next_tokens(self) -> Tensor:
        return self.tokens[:, -1:]

    def step(self, step: int, logits: Tensor) -> tuple[Tensor, bool] | None:
        o = self.opts
        cur_len = self.tokens.size(1)
        raw_lp = torch.log_softmax(logits, dim=-1)
        scores = logits.clone()
        if cur_len < self.min_length:
            scores[:, self.eos] = -math.inf
        if o.forced_eos_token_id is not None and cur_len == self.max_length - 1:
            scores = torch.full_like(scores, -math.inf)
            scores[:, o.forced_eos_token_id] = 0
        if cur_len <= len(o.prefix_tokens):  # a forced token (transformers' forced_bos_token_id for the first)
            scores = torch.full_like(scores, -math.inf)
            scores[:, o.prefix_tokens[cur_len - 1]] = 0
        if o.do_sample:
            scores = warp(scores, o.temperature, o.top_k, o.top_p)
            probs = torch.softmax(scores, dim=-1)
            nxt = torch.multinomial(probs, num_samples=1, generator=self.generator).squeeze(1)
        else:
            nxt = torch.argmax(scores, dim=-1)
        nxt = torch.where(self.unfinished, nxt, torch.full_like(nxt, self.pad))
        self.logps.append(raw_lp.gather(1, nxt[:, None])[:, 0])
        self.lengths += self.unfinished.long()
        self.tokens = torch.cat([self.tokens, nxt[:, None]], dim=1)
        self.unfinished &= nxt.ne(self.eos)
        if not bool(self.unfinished.any()) or self.tokens.size(1) >= self.max_length:
            return None
        return torch.arange(self.tokens.size(0), device=nxt.device), False

    def results(self) -> list[list[Hypothesis]]:
        logps = torch.stack(self.logps, dim=1)
        out = []
        for row, n in enumerate(self.lengths.tolist()):
            pos = logps[row, :n].tolist()
            out.append([Hypothesis(tokens=self.tokens[row, 1: n + 1].tolist(), score=float(sum(pos)),
                                   positional_scores=pos)])
        return out
