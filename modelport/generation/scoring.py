"""Teacher-forced scoring: the model's log-probs of given target tokens.

Decoding searches for the target; scoring feeds a known one (the reference
framework's output, a training target, a decoder prefix) and reads the
model's distribution at each position. The validators compare these numbers
with the reference framework's, and the prune pass measures head importance
on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from modelport.generation.ensemble import Ensemble
from modelport.generation.translate import model_device, pad_batch
from modelport.model.transformer import Seq2SeqModel

# (source token ids, decoder prefix token ids incl. the start token) -> log-probs [V] of the next token
PrefixScorer = Callable[[list[int], list[int]], Tensor]


def teacher_forcing_batch(src: list[list[int]], targets: list[list[int]], pad: int, start: int,
                          device: torch.device | str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Left-padded sources, right-padded decoder inputs ``[start] + target[:-1]``
    and the mask of real target positions, on ``device`` (the model's; default: the CPU)."""
    s = pad_batch(src, pad, left=True, device=device)
    prev_lists = [[start] + list(t[:-1]) for t in targets]
    prev = pad_batch(prev_lists, pad, left=False, device=device)
    mask = prev.ne(pad)
    mask[:, 0] = True
    return s, prev, mask


def prefix_scorer(models: Sequence[Seq2SeqModel]) -> PrefixScorer:
    """The ensemble's next-token log-probs after a decoder prefix, decoded
    incrementally as a search does (so a search's scores are reproduced)."""

    device = model_device(models)

    @torch.no_grad()
    def score(src: list[int], prefix: list[int]) -> Tensor:
        ens = Ensemble(models)
        ens.encode(torch.tensor([src], device=device))
        lp = None
        for t in prefix:
            lp = ens.log_probs(torch.tensor([[t]], device=device))
        return lp[0]

    return score


@torch.no_grad()
def token_log_probs(model: Seq2SeqModel, src: list[int], target: list[int], start: int) -> Tensor:
    """log p(target[i] | source, target[:i]) for every position of ``target``,
    from one full (not incremental) forward pass."""
    device = model_device(model)
    prev = torch.tensor([[start] + list(target[:-1])], device=device)
    lp = model.log_probs(prev, model.encode(torch.tensor([src], device=device)))[0]
    return lp.gather(-1, torch.tensor(list(target), device=device)[:, None])[:, 0]


__all__ = ["PrefixScorer", "prefix_scorer", "teacher_forcing_batch", "token_log_probs"]
