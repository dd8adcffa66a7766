"""fairseq as the reference: its own checkpoint loader, models and
``SequenceGenerator``, fed explicit batches so both sides see the same padded
source width (which sets fairseq's max_len). fairseq is imported lazily; it is
only needed when validating fairseq ports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modelport.errors import InvalidInputError
from modelport.validators.references import prepare_fairseq, sanitized_fairseq_checkpoints

_GEN_KEYS = {"beam": "beam_size", "lenpen": "len_penalty", "max_len_a": "max_len_a", "max_len_b": "max_len_b",
             "min_len": "min_len", "unkpen": "unk_penalty", "no_repeat_ngram_size": "no_repeat_ngram_size",
             "normalize_scores": "normalize_scores", "temperature": "temperature", "max_len": "max_len"}


def checkpoint_paths(source: str) -> list[Path]:
    """``dir`` (model.pt or the only *.pt), ``file.pt`` or ``a.pt:b.pt`` (ensemble)."""
    path = Path(source)
    if ":" in source and not path.exists():
        first = Path(source.split(":")[0])
        return [first] + [p if p.is_absolute() or p.exists() else first.parent / p
                          for p in map(Path, source.split(":")[1:])]
    if path.is_file():
        return [path]
    if (path / "model.pt").exists():
        return [path / "model.pt"]
    cands = sorted(path.glob("*.pt"))
    if len(cands) != 1:
        raise InvalidInputError(f"`{source}` must hold model.pt or exactly one *.pt (found {len(cands)})")
    return cands


def fairseq_cpu_ngram_noop() -> bool:
    """Whether the installed fairseq's CPU ``NGramRepeatBlock`` is 0.12's,
    which compares against the pad-filled end of its token buffer and blocks
    nothing (modelport's default ``ngram_blocking="cpu-0.12"``), rather than
    one that blocks the last generated tokens (fairseq <= 0.10, later
    releases: ``"intended"``). Probed on a buffer where the two differ."""
    from fairseq.ngram_repeat_block import NGramRepeatBlock

    blocker = NGramRepeatBlock(2, use_extension=False)
    tokens = torch.tensor([[2, 5, 6, 5, 1, 1]])  # step 3: last token 5 followed 5 -> 6 before
    lprobs = torch.zeros(1, 8)
    out = blocker(tokens, lprobs.clone(), 1, 1, 3)
    return bool(out[0, 6] == 0)


class FairseqReference:
    """fairseq models (an ensemble when several checkpoints) and their target dictionary."""

    def __init__(self, source: str, source_lang: str | None = None, target_lang: str | None = None) -> None:
        """``source_lang``/``target_lang`` are needed for checkpoints that do not
        record them (fairseq read them from the binarized data's file names)."""
        prepare_fairseq()
        from fairseq import checkpoint_utils

        paths = checkpoint_paths(source)
        for p in paths:
            if not p.is_file():
                raise InvalidInputError(f"reference checkpoint `{p}` does not exist")
        overrides: dict[str, Any] = {"data": str(paths[0].parent)}
        if source_lang and target_lang:
            overrides.update(source_lang=source_lang, target_lang=target_lang)
        # fairseq only ever sees plain-data copies read by modelport's restricted unpickler
        with sanitized_fairseq_checkpoints(paths) as copies:
            models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
                [str(p) for p in copies], arg_overrides=overrides)
        self.models = [m.eval() for m in models]
        self.task = task
        self.src_dict = task.source_dictionary
        self.tgt_dict = task.target_dictionary

    def pad_batch(self, src: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Left-padded sources and their lengths, as fairseq's LanguagePairDataset collates."""
        from fairseq.data import data_utils

        tensors = [torch.tensor(list(s), dtype=torch.long) for s in src]
        tokens = data_utils.collate_tokens(tensors, self.src_dict.pad(), self.src_dict.eos(), left_pad=True)
        return tokens, torch.tensor([len(t) for t in tensors])

    @torch.no_grad()
    def generate(self, src: Sequence[Sequence[int]], **options: Any) -> list[list[dict[str, Any]]]:
        """Run ``SequenceGenerator`` on one batch with fairseq-generate option names."""
        from fairseq.sequence_generator import SequenceGenerator

        nbest = int(options.pop("nbest", 1))
        options.pop("ngram_blocking", None)
        kwargs = {_GEN_KEYS[k]: v for k, v in options.items() if k in _GEN_KEYS and v is not None}
        unknown = sorted(k for k in options if k not in _GEN_KEYS)
        if unknown:
            raise InvalidInputError(f"option(s) {', '.join(unknown)} are not fairseq generation options")
        gen = SequenceGenerator(self.models, self.tgt_dict, **kwargs)
        tokens, lengths = self.pad_batch(src)
        out = gen.generate(self.models, {"net_input": {"src_tokens": tokens, "src_lengths": lengths}})
        return [[{"tokens": h["tokens"].tolist(), "score": float(h["score"]),
                  "positional_scores": h["positional_scores"].tolist()} for h in hyps[:nbest]] for hyps in out]

    @torch.no_grad()
    def logits(self, src: Tensor, prev: Tensor, member: int = 0) -> Tensor:
        """Teacher-forced fp32 logits of one member."""
        model = self.models[member]
        lengths = src.ne(self.src_dict.pad()).sum(1)
        out, _ = model(src, lengths, prev)
        return out.float()

    def run_forward(self, src: Tensor, prev: Tensor) -> Any:
        """The first member's forward, for the validator's activation hooks."""
        return self.models[0](src, src.ne(self.src_dict.pad()).sum(1), prev)

    def prefix_scorer(self):
        """(source ids, decoder prefix incl. start) -> the ensemble's log-probs of the next token."""

        @torch.no_grad()
        def score(src: list[int], prefix: list[int]) -> Tensor:
            from fairseq.sequence_generator import EnsembleModel

            ens = EnsembleModel(self.models)
            tokens, lengths = self.pad_batch([src])
            enc = ens.forward_encoder({"src_tokens": tokens, "src_lengths": lengths})
            lp, _ = ens.forward_decoder(torch.tensor([prefix]), enc, [{} for _ in self.models])
            return lp[0]

        return score
