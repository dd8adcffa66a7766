"""transformers as the reference for ports of transformers checkpoints (T5):
the original folder loaded by ``AutoModelForSeq2SeqLM`` and decoded with its
own ``generate``, fed the same batches as the port (right padding with an
attention mask, as transformers' tokenizers pad).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modelport.errors import InvalidInputError
from modelport.validators.references import check_transformers_folder, require


class TransformersReference:
    """One transformers seq2seq model; ``models`` holds it for the validator's hooks."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        require("transformers", "validating against transformers")
        from transformers import AutoModelForSeq2SeqLM

        directory = Path(source)
        if not (directory / "config.json").is_file():
            raise InvalidInputError(f"reference `{source}` is not a transformers model folder (no config.json); "
                                    "validate T5 ports against the transformers checkpoint they came from")
        check_transformers_folder(directory)  # pickled weights pass the restricted reader first
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its per-load bar would interleave with the validator's output
        try:
            model = AutoModelForSeq2SeqLM.from_pretrained(str(directory), dtype=torch.float32)
        except (OSError, ValueError) as err:
            raise InvalidInputError(f"transformers cannot load reference `{source}`: "
                                    f"{str(err).splitlines()[0]}") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.model = model.eval()
        self.models = [self.model]
        self.pad = self.model.config.pad_token_id
        self.eos = self.model.config.eos_token_id

    def pad_batch(self, src: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Right-padded ids and their attention mask."""
        width = max(len(s) for s in src)
        ids = torch.full((len(src), width), self.pad, dtype=torch.long)
        for i, s in enumerate(src):
            ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        return ids, (torch.arange(width)[None, :] < torch.tensor([len(s) for s in src])[:, None]).long()

    @torch.no_grad()
    def generate(self, src: Sequence[Sequence[int]], **options: Any) -> list[list[dict[str, Any]]]:
        """``generate`` on one batch with transformers' option names. Tokens
        are returned without the decoder start and cut after EOS; the score
        is ``sequences_scores`` for beam search. Greedy search reports no
        sequence score: its per-token log-probs are compared, and the score is
        beam search's formula on them (sum / length ** length_penalty)."""
        ids, mask = self.pad_batch(src)
        n = int(options.get("num_return_sequences") or 1)
        out = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, output_scores=True,
                                  return_dict_in_generate=True, **options)
        beams = int(options.get("num_beams") or 1)
        if beams == 1:
            steps = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1)
        results: list[list[dict[str, Any]]] = []
        for i in range(len(src)):
            hyps = []
            for j in range(n):
                row = i * n + j
                toks = out.sequences[row].tolist()[1:]
                if self.eos in toks:  # finished sequences are padded after their EOS
                    toks = toks[: toks.index(self.eos) + 1]
                if beams > 1:
                    score = float(out.sequences_scores[row])
                    positional: list[float] = []
                else:
                    positional = [float(steps[row, t, tok]) for t, tok in enumerate(toks)]
                    score = sum(positional) / max(len(toks), 1) ** float(options.get("length_penalty", 1.0))
                hyps.append({"tokens": toks, "score": score, "positional_scores": positional})
            results.append(hyps)
        return results

    @torch.no_grad()
    def logits(self, src: Tensor, prev: Tensor, member: int = 0) -> Tensor:
        """Teacher-forced fp32 logits (no cache: every decoder position at once)."""
        return self.model(input_ids=src, attention_mask=src.ne(self.pad).long(), decoder_input_ids=prev,
                          use_cache=False).logits.float()

    def prefix_scorer(self):
        """(source ids, decoder prefix incl. start) -> log-probs of the next token."""

        @torch.no_grad()
        def score(src: list[int], prefix: list[int]) -> Tensor:
            logits = self.logits(torch.tensor([src]), torch.tensor([prefix]))
            return torch.log_softmax(logits[0, -1], dim=-1)

        return score

    def run_forward(self, src: Tensor, prev: Tensor) -> Any:
        return self.logits(src, prev)
