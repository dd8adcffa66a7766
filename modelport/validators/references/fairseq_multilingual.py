"""fairseq as the reference for ports whose special tokens fairseq's task or hub
places: BART (``BARTHubInterface``: ``<s>`` before the source, ``<s>`` forced
as the first target token), mBART-50 / M2M100 / NLLB
(``translation_multi_simple_epoch``: language tokens from the task's dataset
for inference and its ``inference_step``) and mBART-25 fine-tunes
(``translation_from_pretrained_bart``: ``ids + </s> + [src]``,
``SequenceGenerator(eos=[tgt])``).

The hub's ``translate()`` raises a TypeError for the multilingual tasks, so
this drives what ``fairseq-generate`` drives: the checkpoint's task, set up by
fairseq for each direction, its ``build_dataset_for_inference``,
``build_generator`` and ``inference_step``, on explicit batches (both sides
see the same padded width, which sets fairseq's max_len). BART's sources are
the hub's ``encode``, and its generator gets the hub's ``<s>`` prefix. The
checkpoint fairseq loads is the plain-data copy of
:func:`~modelport.validators.references.sanitized_fairseq_checkpoints`.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modelport.errors import InvalidInputError
from modelport.validators.references import prepare_fairseq, sanitized_fairseq_checkpoints
from modelport.validators.references.fairseq_generator import checkpoint_paths


@dataclass(frozen=True)
class TaskPlacement:
    """How a fairseq task's inference places the special tokens: through BART's
    hub (``hub=True``: ``hub.encode`` sources, ``<s>`` as ``prefix_tokens``) or
    the task's own dataset for inference and ``inference_step``."""

    hub: bool
    directions: bool  # the task translates between languages chosen per run


# fairseq task name -> its placement (the tasks of the BART and multilingual converters)
PLACEMENTS = {
    "translation": TaskPlacement(hub=True, directions=False),
    "denoising": TaskPlacement(hub=True, directions=False),
    "multilingual_denoising": TaskPlacement(hub=True, directions=False),
    "translation_multi_simple_epoch": TaskPlacement(hub=False, directions=True),
    "translation_from_pretrained_bart": TaskPlacement(hub=False, directions=True),
}

# task options holding a file beside the checkpoint, recorded relative to where training ran
_TASK_FILES = ("lang_dict", "fixed_dictionary", "source_dict", "target_dict")
# BPE options holding a file (build_bpe reads them)
_BPE_FILES = ("gpt2_encoder_json", "gpt2_vocab_bpe", "sentencepiece_model")
# modelport's fairseq option -> fairseq-generate's argument that build_generator reads
_GENERATE_ARGS = {"beam": "beam", "lenpen": "lenpen", "max_len_a": "max_len_a", "max_len_b": "max_len_b",
                  "min_len": "min_len", "unkpen": "unkpen", "no_repeat_ngram_size": "no_repeat_ngram_size",
                  "temperature": "temperature"}


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    if isinstance(cfg, argparse.Namespace):
        return getattr(cfg, key, default)
    return cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)


def _beside(directory: Path, recorded: Any) -> str | None:
    """The file a relative path the checkpoint records names: beside the checkpoint."""
    if not isinstance(recorded, str) or not recorded.strip() or recorded.startswith(("http://", "https://")):
        return None
    path = Path(recorded)
    if path.is_absolute() and path.is_file():
        return None
    found = directory / path.name
    return str(found) if found.is_file() else None


def _split(value: Any) -> list[str]:
    if isinstance(value, str):
        return [x for x in value.split(",") if x]
    return [str(x) for x in value or []]


def _with_direction(task_cfg: Any, source_lang: str, target_lang: str) -> Any:
    """A copy of the task's options translating ``source_lang`` -> ``target_lang``
    (what fairseq-generate's ``--source-lang``/``--target-lang`` set)."""
    if isinstance(task_cfg, argparse.Namespace):
        return argparse.Namespace(**{**vars(task_cfg), "source_lang": source_lang, "target_lang": target_lang})
    from omegaconf import open_dict

    out = copy.deepcopy(task_cfg)
    with open_dict(out):
        out.source_lang, out.target_lang = source_lang, target_lang
    return out


def _legacy_args(task: Any) -> Any:
    # fairseq 0.12.3's translation_from_pretrained_bart reads `self.args` in build_dataset_for_inference and
    # build_generator, but TranslationTask keeps its options as `self.cfg` (fairseq-generate crashes the
    # same way): the same options under the name it reads
    if not hasattr(task, "args"):
        task.args = task.cfg
    return task


class FairseqTaskReference:
    """fairseq's models (an ensemble when several checkpoints), the checkpoint's
    task and BPE, loaded once; :meth:`direction` sets the task up for a pair.
    As a tokenizer reference (``fairseq_task``): fairseq's BPE and the task's dictionary."""

    name = "fairseq_task"
    authoritative = True

    def __init__(self, source: str) -> None:
        prepare_fairseq()
        from fairseq import checkpoint_utils
        from fairseq.data import encoders

        paths = checkpoint_paths(source)
        for p in paths:
            if not p.is_file():
                raise InvalidInputError(f"reference checkpoint `{p}` does not exist")
        self.directory = directory = paths[0].parent
        # fairseq only ever sees plain-data copies read by modelport's restricted unpickler
        with sanitized_fairseq_checkpoints(paths) as copies:
            overrides = {"data": str(directory), **self._file_overrides(copies[0])}
            models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
                [str(p) for p in copies], arg_overrides=overrides)
        self.models = [m.eval() for m in models]
        self.cfg, self.task = cfg, _legacy_args(task)
        self.task_name = str(_get(cfg.task, "_name") or _get(cfg.task, "task"))
        if self.task_name not in PLACEMENTS:
            raise InvalidInputError(f"`{self.task_name}` is not a fairseq task this reference runs "
                                    f"(known: {', '.join(PLACEMENTS)})")
        self.placement = PLACEMENTS[self.task_name]
        self.dict = task.source_dictionary
        bpe_cfg = self._bpe_config(cfg)
        self.bpe = encoders.build_bpe(bpe_cfg)
        self.hub = None
        if self.placement.hub:
            from fairseq.models.bart import BARTHubInterface

            if len(self.models) > 1:
                raise InvalidInputError("BART's hub interface runs one checkpoint, not an ensemble")
            cfg.bpe = bpe_cfg
            self.hub = BARTHubInterface(cfg, task, self.models[0]).eval()

    def _file_overrides(self, copy_path: Path) -> dict[str, str]:
        """The task's files (language list, dictionaries) beside the checkpoint."""
        state = torch.load(copy_path, map_location="cpu", weights_only=True, mmap=True)  # the options, not weights
        cfg = state.get("cfg") or {}
        task = cfg.get("task") if isinstance(cfg, dict) else None
        task = task if task is not None else state.get("args")
        found = {k: _beside(self.directory, _get(task, k)) for k in _TASK_FILES}
        return {k: v for k, v in found.items() if v is not None}

    def _bpe_config(self, cfg: Any) -> argparse.Namespace:
        """The checkpoint's BPE options (``cfg.bpe``, or the task's), files beside the checkpoint."""
        raw = cfg.bpe if _get(cfg, "bpe") is not None and _get(cfg.bpe, "_name") else None
        name = _get(raw, "_name") or _get(cfg.task, "bpe")
        if name is None:  # applied before fairseq-preprocess (mBART-50, NLLB): the files beside the checkpoint
            name = "gpt2" if (self.directory / "encoder.json").is_file() else "sentencepiece"
        if name not in ("gpt2", "sentencepiece"):
            raise InvalidInputError(f"the reference checkpoint's BPE `{name}` is not one this reference builds "
                                    "(known: gpt2, sentencepiece)")
        opts = {"bpe": name, "sentencepiece_enable_sampling": False, "sentencepiece_alpha": None}
        for key in _BPE_FILES:
            value = _get(raw, key) or _get(cfg.task, key)
            opts[key] = _beside(self.directory, value) or value
        if name == "gpt2":
            for key, default in (("gpt2_encoder_json", "encoder.json"), ("gpt2_vocab_bpe", "vocab.bpe")):
                opts[key] = _beside(self.directory, opts[key]) or opts[key] or str(self.directory / default)
        elif not Path(str(opts["sentencepiece_model"])).is_file():
            found = sorted(self.directory.glob("*.model"))
            if len(found) != 1:
                raise InvalidInputError(f"`{self.directory}` must hold the checkpoint's SentencePiece model (one "
                                        f"*.model file; found: {', '.join(p.name for p in found) or 'none'})")
            opts["sentencepiece_model"] = str(found[0])
        return argparse.Namespace(**opts)

    @property
    def recorded_pairs(self) -> list[tuple[str, str]]:
        """The directions the checkpoint's task records: ``--lang-pairs``, else ``-s``/``-t``."""
        pairs = [tuple(p.split("-", 1)) for p in _split(_get(self.cfg.task, "lang_pairs")) if "-" in p]
        if pairs:
            return [(a, b) for a, b in pairs]
        src, tgt = _get(self.cfg.task, "source_lang"), _get(self.cfg.task, "target_lang")
        return [(str(src), str(tgt))] if src and tgt else []

    def encode(self, line: str) -> list[int]:
        """fairseq's own text pipeline: the BPE, then the task's dictionary (``encode_line``, ``</s>``)."""
        return self.dict.encode_line(self.bpe.encode(line), add_if_not_exist=False,
                                     append_eos=True).long().tolist()

    encode_target = encode  # one dictionary for both sides

    def decode(self, ids: Sequence[int]) -> str:
        """``Dictionary.string`` then the BPE's decode (what fairseq-generate prints as D-)."""
        return self.bpe.decode(self.dict.string(torch.tensor(list(ids), dtype=torch.long)))

    def tokens(self, ids: Sequence[int], *, side: str = "source") -> list[str]:
        return [self.dict[i] for i in ids]

    def direction(self, source_lang: str | None, target_lang: str | None) -> FairseqDirection:
        """The reference for one pair (None, None: a task without directions)."""
        if not self.placement.directions or source_lang is None or target_lang is None:
            return FairseqDirection(self, self.task)
        from fairseq import tasks

        task = tasks.setup_task(_with_direction(self.cfg.task, source_lang, target_lang), from_checkpoint=True)
        return FairseqDirection(self, _legacy_args(task))

    # -- direction-independent model calls (the validator's forward check and hooks)

    def _single_beam(self) -> None:
        """Undo what a search left in BART's cross-attention (``set_beam_size``)."""
        for m in self.models:
            if hasattr(m, "set_beam_size"):
                m.set_beam_size(1)

    @torch.no_grad()
    def logits(self, src: Tensor, prev: Tensor, member: int = 0) -> Tensor:
        """Teacher-forced fp32 logits of one member."""
        self._single_beam()
        out, _ = self.models[member](src, src.ne(self.dict.pad()).sum(1), prev)
        return out.float()

    def run_forward(self, src: Tensor, prev: Tensor) -> Any:
        """The first member's forward, for the validator's activation hooks."""
        self._single_beam()
        return self.models[0](src, src.ne(self.dict.pad()).sum(1), prev)

    def prefix_scorer(self):
        """(source ids, decoder prefix incl. start) -> the ensemble's log-probs of the next token."""

        @torch.no_grad()
        def score(src: list[int], prefix: list[int]) -> Tensor:
            from fairseq.sequence_generator import EnsembleModel

            self._single_beam()
            ens = EnsembleModel(self.models)
            tokens = torch.tensor([src])
            enc = ens.forward_encoder({"src_tokens": tokens, "src_lengths": torch.tensor([len(src)])})
            lp, _ = ens.forward_decoder(torch.tensor([prefix]), enc, [{} for _ in self.models])
            return lp[0]

        return score


class FairseqDirection:
    """The checkpoint's task set up for one direction: its sources, its generator."""

    def __init__(self, ref: FairseqTaskReference, task: Any) -> None:
        self.ref, self.task = ref, task
        self.models = ref.models

    def source_rows(self, lines: Sequence[str]) -> list[list[int]]:
        """Each line's source ids as fairseq's inference builds them (special tokens included)."""
        sample = self._sample([self._encode(line) for line in lines])
        pad = self.ref.dict.pad()
        rows: list[list[int]] = [[] for _ in lines]
        for i, sid in enumerate(sample["id"].tolist()):
            rows[sid] = [t for t in sample["net_input"]["src_tokens"][i].tolist() if t != pad]
        return rows

    def _encode(self, line: str) -> Tensor:
        if self.ref.hub is not None:
            return self.ref.hub.encode(line)  # BART's hub: <s> ... </s>
        return torch.tensor(self.ref.encode(line), dtype=torch.long)

    def _sample(self, tokens: list[Tensor]) -> dict[str, Any]:
        ds = self.task.build_dataset_for_inference(tokens, [t.numel() for t in tokens])
        return ds.collater([ds[i] for i in range(len(tokens))])

    @property
    def start(self) -> int:
        """The token the decoder starts from (``SequenceGenerator``'s ``eos``)."""
        return int(self._generator(beam=1).eos)

    def _generator(self, **options: Any) -> Any:
        opts = {k: v for k, v in options.items() if v is not None}
        args = argparse.Namespace(**{_GENERATE_ARGS[k]: v for k, v in opts.items() if k in _GENERATE_ARGS},
                                  unnormalized=not opts.get("normalize_scores", True))
        extra = {"max_len": int(opts["max_len"])} if opts.get("max_len") else None
        return self.task.build_generator(self.models, args, extra_gen_cls_kwargs=extra)

    @torch.no_grad()
    def generate(self, lines: Sequence[str], **options: Any) -> list[list[dict[str, Any]]]:
        """One batch through ``build_generator`` and ``inference_step`` (fairseq-generate's
        option names; BART: the hub's ``<s>`` prefix): per line the n-best hypotheses."""
        nbest = int(options.pop("nbest", None) or 1)
        options.pop("ngram_blocking", None)
        unknown = sorted(k for k in options if k not in _GENERATE_ARGS and k not in ("normalize_scores", "max_len"))
        if unknown:
            raise InvalidInputError(f"`{', '.join(unknown)}` is not a fairseq generation option "
                                    f"(known: {', '.join([*_GENERATE_ARGS, 'normalize_scores', 'max_len'])})")
        gen = self._generator(**options)
        sample = self._sample([self._encode(line) for line in lines])
        prefix = None
        if self.ref.hub is not None:  # BARTHubInterface.generate forces <s> first
            src = sample["net_input"]["src_tokens"]
            prefix = src.new_full((src.size(0), 1), fill_value=self.ref.dict.bos())
        out = self.task.inference_step(gen, self.models, sample, prefix_tokens=prefix)
        res: list[list[dict[str, Any]]] = [[] for _ in lines]
        for i, sid in enumerate(sample["id"].tolist()):
            res[sid] = [{"tokens": h["tokens"].tolist(), "score": float(h["score"]),
                         "positional_scores": h["positional_scores"].tolist()} for h in out[i][:nbest]]
        return res


__all__ = ["PLACEMENTS", "FairseqDirection", "FairseqTaskReference", "TaskPlacement"]
