"""fairseq ``transformer`` checkpoints → the unified model.

Reads ``model.pt``/``checkpoint*.pt`` (or ``a.pt:b.pt`` for an ensemble), the
``dict.<lang>.txt`` dictionaries and an optional ``bpecodes`` file, without
importing fairseq. ``translation_multi_simple_epoch`` checkpoints (M2M100,
NLLB-200, mBART-50) and BART/mBART (``bart_*``/``mbart_*`` archs) share these
weights; their dictionaries and tokenizers come from
:mod:`~modelport.converters.fairseq_multilingual` and
:mod:`~modelport.converters.fairseq_bart`. Both checkpoint generations are understood: old ones keep
an ``argparse.Namespace`` under ``args`` (and may use the legacy non-zip
serialization and fused ``in_proj`` attention weights); newer ones keep
``cfg`` (plain dicts, or omegaconf containers read through inert stand-ins).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from modelport import values
from modelport.converters.base import (
    Converter,
    KeyMapper,
    MappedWeights,
    Rule,
    TokenizerAssets,
    first_source_path,
    option_type_problems,
    register_converter,
    short_repr,
    split,
)
from modelport.converters.fairseq_bart import BART_ARCHS, BartTask, bart_task_problems, is_bart
from modelport.converters.fairseq_multilingual import MultilingualTask, is_multilingual, moe_problems, spm_path, \
    task_problems
from modelport.converters.safe_pickle import safe_torch_load, to_plain
from modelport.errors import (
    CorruptCheckpointError,
    InvalidInputError,
    UnsupportedCheckpointError,
    WeightMappingError,
)
from modelport.model.config import Seq2SeqConfig
from modelport.tokenizers.vocab import FairseqDictionary
from modelport.values import Kind

# ---------------------------------------------------------------------------
# options

# fairseq's architecture functions fill missing options with getattr defaults;
# old checkpoints rely on that, so the same defaults are applied here.
_BASE_DEFAULTS: dict[str, Any] = {
    "encoder_embed_dim": 512, "encoder_ffn_embed_dim": 2048, "encoder_layers": 6,
    "encoder_attention_heads": 8, "encoder_normalize_before": False, "encoder_learned_pos": False,
    "decoder_layers": 6, "decoder_attention_heads": 8, "decoder_normalize_before": False,
    "decoder_learned_pos": False, "activation_fn": "relu", "adaptive_softmax_cutoff": None,
    "share_decoder_input_output_embed": False, "share_all_embeddings": False, "merge_src_tgt_embed": False,
    "no_token_positional_embeddings": False, "adaptive_input": False, "no_cross_attention": False,
    "cross_self_attention": False, "no_scale_embedding": False, "layernorm_embedding": False,
    "tie_adaptive_weights": False, "encoder_layers_to_keep": None, "decoder_layers_to_keep": None,
    "max_source_positions": 1024, "max_target_positions": 1024, "char_inputs": False,
    "scale_attn": False, "scale_fc": False, "scale_heads": False, "scale_resids": False,
}
_BIG = {"encoder_embed_dim": 1024, "encoder_ffn_embed_dim": 4096, "encoder_attention_heads": 16,
        "decoder_embed_dim": 1024, "decoder_ffn_embed_dim": 4096, "decoder_attention_heads": 16}
# arch name -> defaults applied before the base ones (fairseq's transformer_legacy.py)
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "transformer": {},
    "transformer_tiny": {"encoder_embed_dim": 64, "encoder_ffn_embed_dim": 64, "encoder_layers": 2,
                         "encoder_attention_heads": 2, "decoder_layers": 2, "decoder_attention_heads": 2},
    "transformer_iwslt_de_en": {"encoder_embed_dim": 512, "encoder_ffn_embed_dim": 1024,
                                "encoder_attention_heads": 4, "decoder_embed_dim": 512,
                                "decoder_ffn_embed_dim": 1024, "decoder_attention_heads": 4},
    "transformer_wmt_en_de": {},
    "transformer_vaswani_wmt_en_de_big": _BIG,
    "transformer_vaswani_wmt_en_fr_big": _BIG,
    "transformer_wmt_en_de_big": _BIG,
    "transformer_wmt_en_de_big_t2t": {**_BIG, "encoder_normalize_before": True, "decoder_normalize_before": True},
}
# fairseq/models/bart/model.py's architectures (bart_base and mbart_* build on bart_large's)
_BART_LARGE = {"encoder_embed_dim": 1024, "encoder_ffn_embed_dim": 4096, "encoder_layers": 12,
               "encoder_attention_heads": 16, "encoder_normalize_before": False, "encoder_learned_pos": True,
               "decoder_layers": 12, "decoder_attention_heads": 16, "decoder_normalize_before": False,
               "decoder_learned_pos": True, "share_decoder_input_output_embed": True, "share_all_embeddings": True,
               "no_scale_embedding": True, "layernorm_embedding": True, "activation_fn": "gelu"}
_BART_BASE = {**_BART_LARGE, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_layers": 6,
              "encoder_attention_heads": 12, "decoder_layers": 6, "decoder_attention_heads": 12}
ARCHITECTURES.update({"bart_large": _BART_LARGE, "bart_base": _BART_BASE,
                      "mbart_large": {**_BART_LARGE, "no_scale_embedding": False},
                      "mbart_base": {**_BART_BASE, "no_scale_embedding": False}})
assert set(BART_ARCHS) <= set(ARCHITECTURES)
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_accurate": "gelu_tanh", "gelu_fast": "gelu_tanh",
               "swish": "silu"}

# TransformerConfig (fairseq >= 0.11) nests per-side options; map them to the flat legacy names.
_NESTED = {"embed_dim": "embed_dim", "ffn_embed_dim": "ffn_embed_dim", "layers": "layers",
           "attention_heads": "attention_heads", "normalize_before": "normalize_before",
           "learned_pos": "learned_pos", "layers_to_keep": "layers_to_keep", "input_dim": "input_dim",
           "output_dim": "output_dim"}


def _flatten_model_options(raw: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for side in ("encoder", "decoder"):
        nested = raw.get(side)
        if isinstance(nested, dict):
            for key, value in nested.items():
                if key in _NESTED:
                    flat.setdefault(f"{side}_{_NESTED[key]}", value)
    if isinstance(raw.get("quant_noise"), dict):
        flat.setdefault("quant_noise_pq", raw["quant_noise"].get("pq", 0))
    return flat


def _resolve_options(model: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults the way fairseq's architecture function would."""
    opts = dict(model)
    arch = opts.get("arch") or opts.get("_name")
    for key, value in ARCHITECTURES.get(arch, {}).items():
        if opts.get(key) is None:
            opts[key] = value
    for key, value in _BASE_DEFAULTS.items():
        opts.setdefault(key, value)
    for key in ("decoder_embed_dim", "decoder_input_dim", "decoder_output_dim"):
        if opts.get(key) is None:
            opts[key] = opts["encoder_embed_dim"] if key == "decoder_embed_dim" else opts["decoder_embed_dim"]
    if opts.get("decoder_ffn_embed_dim") is None:
        opts["decoder_ffn_embed_dim"] = opts["encoder_ffn_embed_dim"]
    return opts


# numeric options read into the unified config, and the decoding defaults a
# checkpoint's `generation` records: checked before anything is built from them
_OPTION_KINDS: dict[str, Kind] = {**{k: values.POSITIVE_INTEGER for k in (
    "encoder_embed_dim", "decoder_embed_dim", "encoder_ffn_embed_dim", "decoder_ffn_embed_dim", "encoder_layers",
    "decoder_layers", "encoder_attention_heads", "decoder_attention_heads", "max_source_positions",
    "max_target_positions", "decoder_input_dim", "decoder_output_dim")},
    "activation_fn": values.TEXT}
_GENERATION_KINDS: dict[str, Kind] = {
    "beam": values.POSITIVE_INTEGER, "lenpen": values.FINITE, "max_len_a": values.FINITE, "max_len_b": values.COUNT,
    "min_len": values.COUNT, "unkpen": values.FINITE, "no_repeat_ngram_size": values.COUNT,
    "nbest": values.POSITIVE_INTEGER}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_options(opts: dict[str, Any]) -> list[str]:
    """Every unsupported option, in fairseq's own names, with supported values."""
    problems: list[str] = option_type_problems(opts, _OPTION_KINDS, _flag)
    if problems:  # the checks below compare values these must hold first
        return problems
    arch = opts.get("arch") or opts.get("_name")
    if arch not in ARCHITECTURES:
        problems.append(f"--arch {arch} is not supported (supported: {', '.join(ARCHITECTURES)})")
    act = opts.get("activation_fn")
    if act not in ACTIVATIONS:
        problems.append(f"--activation-fn {act} is not supported (supported: {', '.join(ACTIVATIONS)})")
    flags = ("adaptive_input", "cross_self_attention", "no_cross_attention", "tie_adaptive_weights",
             "merge_src_tgt_embed", "char_inputs", "scale_attn", "scale_fc", "scale_heads", "scale_resids")
    for flag in flags:
        if opts.get(flag):
            problems.append(f"--{flag.replace('_', '-')} is not supported (supported: off)")
    if opts.get("adaptive_softmax_cutoff"):
        problems.append(f"--adaptive-softmax-cutoff {opts['adaptive_softmax_cutoff']} is not supported "
                        "(supported: none)")
    for side in ("encoder", "decoder"):
        if opts.get(f"{side}_layers_to_keep"):
            problems.append(f"--{side}-layers-to-keep is not supported (supported: none; prune the "
                            "checkpoint with fairseq first)")
    d = opts["decoder_embed_dim"]
    if opts["encoder_embed_dim"] != d:
        problems.append(f"--encoder-embed-dim {opts['encoder_embed_dim']} with --decoder-embed-dim {d} "
                        "is not supported (supported: equal dimensions)")
    for key in ("decoder_input_dim", "decoder_output_dim"):
        if opts[key] != d:
            problems.append(f"--{key.replace('_', '-')} {opts[key]} is not supported (supported: equal to "
                            f"--decoder-embed-dim {d})")
    for key in ("normalize_before", "learned_pos"):
        if bool(opts[f"encoder_{key}"]) != bool(opts[f"decoder_{key}"]):
            problems.append(f"--encoder-{key.replace('_', '-')} {opts[f'encoder_{key}']} with "
                            f"--decoder-{key.replace('_', '-')} {opts[f'decoder_{key}']} is not supported "
                            "(supported: the same value on both sides)")
    return problems


# ---------------------------------------------------------------------------
# weights

# fairseq name -> unified name. {} is a layer number. None: dropped on purpose.
_ATTN = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "out_proj": "out_proj"}
NAME_TABLE: dict[str, str | None] = {
    "encoder.embed_tokens.weight": "encoder.embed.embed_tokens.weight",
    "encoder.embed_positions.weight": "encoder.embed.embed_positions.weight",
    "encoder.layernorm_embedding.weight": "encoder.embed.layernorm_embedding.weight",
    "encoder.layernorm_embedding.bias": "encoder.embed.layernorm_embedding.bias",
    "encoder.layer_norm.weight": "encoder.final_norm.weight",
    "encoder.layer_norm.bias": "encoder.final_norm.bias",
    "decoder.embed_tokens.weight": "decoder.embed.embed_tokens.weight",
    "decoder.embed_positions.weight": "decoder.embed.embed_positions.weight",
    "decoder.layernorm_embedding.weight": "decoder.embed.layernorm_embedding.weight",
    "decoder.layernorm_embedding.bias": "decoder.embed.layernorm_embedding.bias",
    "decoder.layer_norm.weight": "decoder.final_norm.weight",
    "decoder.layer_norm.bias": "decoder.final_norm.bias",
    "decoder.embed_out": "lm_head.weight",  # untied output projection, fairseq < 0.10
    "decoder.output_projection.weight": "lm_head.weight",
    "encoder.version": None,
    "decoder.version": None,
    "encoder.embed_positions._float_tensor": None,
    "decoder.embed_positions._float_tensor": None,
    "encoder.embed_positions.weights": None,
    "decoder.embed_positions.weights": None,
}
# Old fairseq fused q/k/v into ``in_proj_weight``/``in_proj_bias`` ([3*D, D]);
# they are cut into thirds (views, no copy), as fairseq's
# ``upgrade_state_dict_named`` does.
FUSED_TABLE: dict[str, Rule] = {}
for _side, _attns in (("encoder", ("self_attn",)), ("decoder", ("self_attn", "encoder_attn"))):
    for _attn in _attns:
        _unified = "self_attn" if _attn == "self_attn" else "cross_attn"
        for _proj in _ATTN:
            for _p in ("weight", "bias"):
                NAME_TABLE[f"{_side}.layers.{{}}.{_attn}.{_proj}.{_p}"] = f"{_side}.layers.{{}}.{_unified}.{_proj}.{_p}"
        for _p in ("weight", "bias"):
            FUSED_TABLE[f"{_side}.layers.{{}}.{_attn}.in_proj_{_p}"] = Rule(
                tuple(f"{_side}.layers.{{}}.{_unified}.{_x}_proj.{_p}" for _x in "qkv"), split(3))
        for _p in ("weight", "bias"):
            NAME_TABLE[f"{_side}.layers.{{}}.{_attn}_layer_norm.{_p}"] = f"{_side}.layers.{{}}.{_unified}_norm.{_p}"
    for _p in ("weight", "bias"):
        NAME_TABLE[f"{_side}.layers.{{}}.fc1.{_p}"] = f"{_side}.layers.{{}}.ffn.up.{_p}"
        NAME_TABLE[f"{_side}.layers.{{}}.fc2.{_p}"] = f"{_side}.layers.{{}}.ffn.down.{_p}"
        NAME_TABLE[f"{_side}.layers.{{}}.final_layer_norm.{_p}"] = f"{_side}.layers.{{}}.ffn_norm.{_p}"
        # fairseq < 0.6 kept the encoder's two norms in a list
        if _side == "encoder":
            NAME_TABLE[f"encoder.layers.{{}}.layer_norms.0.{_p}"] = f"encoder.layers.{{}}.self_attn_norm.{_p}"
            NAME_TABLE[f"encoder.layers.{{}}.layer_norms.1.{_p}"] = f"encoder.layers.{{}}.ffn_norm.{_p}"

DROP_REASONS = {
    "encoder.version": "fairseq's record of its state-dict format version, not a weight",
    "decoder.version": "fairseq's record of its state-dict format version, not a weight",
    "encoder.embed_positions._float_tensor": "placeholder buffer of the sinusoidal table, recomputed",
    "decoder.embed_positions._float_tensor": "placeholder buffer of the sinusoidal table, recomputed",
    "encoder.embed_positions.weights": "cached sinusoidal table, recomputed from the formula",
    "decoder.embed_positions.weights": "cached sinusoidal table, recomputed from the formula",
}
TOP_LEVEL_DROPS = {
    "optimizer_history": "training history, not needed for inference",
    "last_optimizer_state": "optimizer state, not needed for inference",
    "extra_state": "trainer state (data iterator, meters), not needed for inference",
    "criterion": "training criterion state, not needed for inference",
    "task_state": "task state, not needed for inference",
    "ema": "EMA copy of the weights kept for training; the main weights are converted",
}


# BART's sentence-classification heads (``--num-classes``, MNLI fine-tunes): not part of seq2seq
EXTRA_RULES: dict[Any, Rule] = {
    re.compile(r"classification_heads\..+"): Rule(None, reason="BART classification head, not used for generation"),
}


def _check_state_dict(path: Path, state: Any) -> None:
    """The `model` entry is a mapping of names to tensors (all problems at once)."""
    if not isinstance(state, dict):
        raise CorruptCheckpointError(str(path), f"its `model` entry must be a mapping of weights, but is "
                                     f"{type(state).__name__}")
    problems = [f"key {short_repr(k)} of `model` must be a string, but is {type(k).__name__}"
                for k in state if not isinstance(k, str)]
    problems += [f"`{k}` must be a tensor, but is {type(v).__name__}" for k, v in state.items()
                 if isinstance(k, str) and not isinstance(v, torch.Tensor)]
    if problems:
        raise WeightMappingError(str(path), problems)


def map_state(source: str, state: dict[str, torch.Tensor],
              config: Seq2SeqConfig) -> tuple[list[tuple[str, torch.Tensor]], dict[str, str]]:
    """One member's weights in unified names, and the keys dropped with their reasons."""
    mapper = KeyMapper(state, {**NAME_TABLE, **FUSED_TABLE, **EXTRA_RULES}, DROP_REASONS,
                       unmatched="fairseq key `{}` has no slot in the unified model")
    if config.tie_output_embeddings:
        tied_output_alias(mapper, state, source)
    out = list(mapper.apply())
    if config.shared_embeddings:
        shared_embedding_alias(out, source)
    mapper.check(source)
    return out, mapper.dropped


# ---------------------------------------------------------------------------
# files


def _split_sources(source: str, checkpoint: str | None) -> tuple[Path, list[Path]]:
    """The directory and checkpoint files named by ``source`` (and ``--checkpoint``)."""
    spec = checkpoint
    path = Path(source)
    if spec is None and ":" in source and not path.exists():
        spec = source
        path = Path(source.split(":")[0]).parent
    if spec is not None:
        base = path if path.is_dir() else path.parent
        files = [Path(p) if os.path.isabs(p) or Path(p).exists() else base / p for p in spec.split(":")]
        return (base if path.is_dir() else files[0].parent), files
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise InvalidInputError(f"`{source}` does not exist")
    if (path / "model.pt").exists():
        return path, [path / "model.pt"]
    cands = sorted(path.glob("checkpoint*.pt")) + sorted(p for p in path.glob("*.pt")
                                                         if not p.name.startswith("checkpoint"))
    if len(cands) == 1:
        return path, cands
    if not cands:
        raise InvalidInputError(f"`{source}` has no model.pt or checkpoint*.pt")
    names = ", ".join(p.name for p in cands)
    raise InvalidInputError(f"`{source}` has several checkpoints ({names}); choose with --checkpoint "
                            "a.pt or an ensemble a.pt:b.pt")


def _find_codes(directory: Path) -> Path | None:
    for name in ("bpecodes", "codes", "bpe.codes", "code"):
        if (directory / name).is_file():
            return directory / name
    return None


def _infer_languages(directory: Path, state: dict[str, Any], src: str | None,
                     tgt: str | None) -> tuple[str | None, str | None]:
    """Checkpoints trained without ``-s/-t`` do not name their languages (fairseq
    read them from the binarized data's file names). With exactly two
    ``dict.<lang>.txt`` files, the direction is the one whose dictionary sizes
    match the encoder and decoder embeddings."""
    if (directory / "dict.txt").is_file():
        return src, tgt
    langs = sorted(p.name[len("dict."):-len(".txt")] for p in directory.glob("dict.*.txt"))
    if len(langs) != 2:
        return src, tgt
    rows = {side: state[f"{side}.embed_tokens.weight"].shape[0] for side in ("encoder", "decoder")
            if f"{side}.embed_tokens.weight" in state}
    if len(rows) != 2:
        return src, tgt
    sizes = {lang: len(FairseqDictionary.load(directory / f"dict.{lang}.txt")) for lang in langs}
    fits = [(a, b) for a, b in (langs, langs[::-1])
            if sizes[a] == rows["encoder"] and sizes[b] == rows["decoder"]
            and (src in (None, a)) and (tgt in (None, b))]
    if len(fits) == 1:
        return fits[0]
    if len(fits) == 2:
        raise InvalidInputError(f"`{directory}`: the checkpoint does not name its languages and both "
                                f"directions fit ({langs[0]}<->{langs[1]}); pass --source-lang and --target-lang")
    return src, tgt


def _codes_format(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    return "subword_nmt" if first.startswith("#version") else "fastbpe"


def _checkpoint_options(ckpt: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model options, task options, generation options) as plain dicts."""
    args = ckpt.get("args")
    cfg = ckpt.get("cfg")
    if cfg is not None:
        cfg = to_plain(cfg, source=str(path))
        if not isinstance(cfg, dict):
            raise CorruptCheckpointError(str(path), "its `cfg` entry is not a mapping")
        model = cfg.get("model") or {}
        task = cfg.get("task") or {}
        gen = cfg.get("generation") or {}
        tok = cfg.get("tokenizer") or {}
        bpe = cfg.get("bpe") or {}
        if not isinstance(model, dict):
            raise CorruptCheckpointError(str(path), "its `cfg.model` entry is not a mapping")
        model = _flatten_model_options(model)
        if isinstance(tok, dict):
            task = {**task, **{f"tokenizer.{k}": v for k, v in tok.items()}}
        if isinstance(bpe, dict):
            task = {**task, **{f"bpe.{k}": v for k, v in bpe.items()}}
        return model, task, gen if isinstance(gen, dict) else {}
    if args is not None:
        opts = to_plain(args, source=str(path))
        if not isinstance(opts, dict):
            raise CorruptCheckpointError(str(path), "its `args` entry is not an argparse.Namespace")
        return opts, opts, opts
    raise CorruptCheckpointError(str(path), "it has neither `args` nor `cfg` (is it a fairseq checkpoint?)")


# fairseq's MosesTokenizerConfig default for a side nobody set (fairseq 0.12)
MOSES_DEFAULT_LANG = "en"


def moses_languages(layout: str, task: dict[str, Any], langs: tuple[str | None, str | None],
                    passed: dict[str, str]) -> tuple[str, str, str]:
    """The sacremoses languages of ``TransformerModel.from_pretrained(dir,
    tokenizer='moses', bpe=..., **passed)`` in fairseq 0.12, and the rule that
    gave them. ``langs``: the task's (source, target) after ``passed``.

    fairseq turns an ``args`` Namespace into its config by copying the flat
    ``source_lang``/``target_lang`` (the task's) into the tokenizer's fields
    of the same names (``moses_source_lang`` and the like are not read). A
    ``cfg`` checkpoint keeps its own ``tokenizer`` entry: the one it records,
    or, when it records none, a fresh ``MosesTokenizerConfig`` whose languages
    default to ``en`` whatever the task translates; only the languages passed
    to ``from_pretrained`` override it, field by field. sacremoses takes any
    code: one it has no rules for (``pg``) gets its language-neutral rules,
    which differ from ``en`` on apostrophes."""
    if layout == "args":
        src, tgt = (lang or MOSES_DEFAULT_LANG for lang in langs)
        return src, tgt, "the task's languages (args checkpoint: fairseq copies them into the tokenizer)"
    picked = []
    for side in ("source", "target"):
        recorded = task.get(f"tokenizer.{side}_lang")
        if side in passed:
            picked.append(passed[side])
        elif isinstance(recorded, str) and recorded:
            picked.append(recorded)
        else:
            picked.append(MOSES_DEFAULT_LANG)
    recorded_any = any(f"tokenizer.{side}_lang" in task for side in ("source", "target"))
    rule = ("the checkpoint's tokenizer entry" if recorded_any
            else f"cfg checkpoint without a tokenizer entry: fairseq's MosesTokenizerConfig default "
                 f"({MOSES_DEFAULT_LANG})")
    if passed:
        rule += f", overridden by the languages passed to from_pretrained ({', '.join(sorted(passed))})"
    return picked[0], picked[1], rule


def tokenizer_problems(layout: str, task: dict[str, Any]) -> list[str]:
    """A ``cfg`` checkpoint that records another tokenizer keeps it in fairseq's
    hub even when the user asks for ``tokenizer='moses'``: not portable here."""
    name = task.get("tokenizer._name")
    if layout == "cfg" and name not in (None, "moses"):
        return [f"--tokenizer {name} is not supported (supported: moses, none)"]
    return []


_GENERATION_KEYS = {"beam": 5, "lenpen": 1.0, "max_len_a": 0.0, "max_len_b": 200, "min_len": 1,
                    "unkpen": 0.0, "no_repeat_ngram_size": 0, "nbest": 1}


@dataclass
class FairseqMember:
    """One checkpoint file of a (possibly ensembled) fairseq model."""

    path: Path
    state: dict[str, torch.Tensor]
    opts: dict[str, Any]  # model options with fairseq's architecture defaults applied
    layout: str  # "cfg" (fairseq >= 0.10 dataclass config) or "args" (argparse Namespace)
    task: dict[str, Any]
    gen: dict[str, Any]


@dataclass
class FairseqSource:
    """What :meth:`FairseqConverter.load_source` read; languages and
    dictionaries are read when the config is built."""

    directory: Path
    members: list[FairseqMember]
    dropped: dict[str, str]  # checkpoint entries outside the weights, by "file:key"
    source_lang: str | None = None  # given to convert
    target_lang: str | None = None

    @property
    def opts(self) -> dict[str, Any]:
        return self.members[0].opts

    @cached_property
    def langs(self) -> tuple[str | None, str | None, dict[str, str], tuple[str, str, str]]:
        """(source, target, the languages passed to from_pretrained, (moses source, moses target, rule))."""
        task, layout = self.members[-1].task, self.members[-1].layout
        src_lang = self.source_lang or task.get("source_lang")
        tgt_lang = self.target_lang or task.get("target_lang")
        # what a fairseq user passes to from_pretrained: the languages given to
        # convert, and both when the checkpoint lacks one (fairseq cannot load it otherwise)
        recorded = bool(task.get("source_lang")) and bool(task.get("target_lang"))
        if not (src_lang and tgt_lang):
            src_lang, tgt_lang = _infer_languages(self.directory, self.members[0].state, src_lang, tgt_lang)
        given = {"source": self.source_lang, "target": self.target_lang}
        passed = {side: lang for side, lang in (("source", src_lang), ("target", tgt_lang))
                  if lang and (not recorded or given[side])}
        return src_lang, tgt_lang, passed, moses_languages(layout, task, (src_lang, tgt_lang), passed)

    @cached_property
    def multilingual(self) -> MultilingualTask | BartTask | None:
        """The dictionary and text side of a ``translation_multi_simple_epoch``
        (M2M100, NLLB, mBART-50) or BART/mBART checkpoint, whose embedding rows
        are read from the checkpoint (None: the WMT ``transformer`` family)."""
        task = self.members[-1].task
        if is_multilingual(task):
            return MultilingualTask.read(self.directory, task)
        if is_bart(self.opts):
            return BartTask.read(self.directory, task, _dict_paths(self.directory, *self.langs[:2])[0])
        return None

    @cached_property
    def dictionaries(self) -> tuple[Path, Path, FairseqDictionary, FairseqDictionary]:
        if self.multilingual is not None:
            m = self.multilingual
            return m.dict_path, m.dict_path, m.dictionary, m.dictionary
        src_lang, tgt_lang = self.langs[:2]
        src_path, tgt_path = _dict_paths(self.directory, src_lang, tgt_lang)
        return src_path, tgt_path, FairseqDictionary.load(src_path), FairseqDictionary.load(tgt_path)


@register_converter("fairseq")
class FairseqConverter(Converter[FairseqSource]):
    """fairseq ``transformer`` family (WMT19 and variants, M2M100, NLLB-200 dense) and BART/mBART,
    single models and ensembles."""

    description = ("fairseq transformer / BART / multilingual checkpoints (model.pt + dict*.txt [+ bpecodes | "
                   "SentencePiece model | encoder.json + vocab.bpe])")

    @classmethod
    def detect(cls, source: str) -> bool:
        path = first_source_path(source)
        if path.is_dir():
            # dict.<lang>.txt; M2M100's model_dict.128k.txt, NLLB's dictionary.txt
            return any(path.glob("*.pt")) and any(path.glob("*dict*.txt"))
        return path.suffix == ".pt"

    def load_source(self, progress: bool) -> FairseqSource:
        directory, files = _split_sources(self.source, self.options.get("checkpoint"))
        for f in files:
            if not f.is_file():
                raise InvalidInputError(f"checkpoint `{f}` does not exist")
        members: list[FairseqMember] = []
        dropped: dict[str, str] = {}
        for f in tqdm(files, desc="loading checkpoints", unit="file", disable=not progress or len(files) < 2,
                      leave=False):
            ckpt = safe_torch_load(f)
            if not isinstance(ckpt, dict) or "model" not in ckpt:
                raise CorruptCheckpointError(str(f), "it has no `model` entry (is it a fairseq checkpoint?)")
            _check_state_dict(f, ckpt["model"])
            model_opts, task, gen = _checkpoint_options(ckpt, f)
            for key in ckpt:
                if key in TOP_LEVEL_DROPS:
                    dropped[f"{f.name}:{key}"] = TOP_LEVEL_DROPS[key]
                elif key not in ("model", "args", "cfg"):
                    dropped[f"{f.name}:{key}"] = "checkpoint entry outside the model weights"
            members.append(FairseqMember(path=f, state=ckpt["model"], opts=_resolve_options(model_opts),
                                         layout="cfg" if ckpt.get("cfg") is not None else "args", task=task,
                                         gen=gen))
        return FairseqSource(directory=directory, members=members, dropped=dropped,
                             source_lang=self.options.get("source_lang"),
                             target_lang=self.options.get("target_lang"))

    def check_options(self, loaded: FairseqSource) -> None:
        first = loaded.members[0]
        problems = check_options(first.opts) + tokenizer_problems(first.layout, first.task)
        problems += moe_problems(first.opts, first.state)
        if is_multilingual(first.task):
            problems += task_problems(first.task)
        elif is_bart(first.opts):
            problems += bart_task_problems(first.task)
        for member in loaded.members[1:]:
            diff = sorted(k for k in _BASE_DEFAULTS if member.opts.get(k) != first.opts.get(k))
            if diff:
                problems.append(f"ensemble member `{member.path.name}` differs from `{first.path.name}` in "
                                + ", ".join(f"--{k.replace('_', '-')}" for k in diff))
        self.unsupported(self.source, problems)

    def build_config(self, loaded: FairseqSource) -> Seq2SeqConfig:
        _, _, src_dict, tgt_dict = loaded.dictionaries
        config = fairseq_config(loaded.opts, src_dict, tgt_dict)
        if loaded.multilingual is None:
            return config
        # the embedding's rows: the task's dictionary, possibly padded further (derived, never assumed)
        rows = embedding_rows(loaded.members[0].state)
        self.unsupported(self.source, loaded.multilingual.embedding_problems(rows))
        return config.replace(source_vocab_size=rows.get("encoder", config.source_vocab_size),
                              target_vocab_size=rows.get("decoder", config.target_vocab_size))

    def map_weights(self, loaded: FairseqSource, config: Seq2SeqConfig) -> MappedWeights:
        members: list[list[tuple[str, torch.Tensor]]] = []
        dropped = dict(loaded.dropped)
        for member in loaded.members:
            mapped, member_dropped = map_state(str(member.path), member.state, config)
            members.append(mapped)
            for k, reason in member_dropped.items():
                dropped.setdefault(k, reason)
        if loaded.multilingual is None:
            _check_vocab(members[0], *loaded.dictionaries)
        return MappedWeights(members, dropped)

    def tokenizer_assets(self, loaded: FairseqSource, config: Seq2SeqConfig) -> TokenizerAssets:
        if isinstance(loaded.multilingual, BartTask):
            return loaded.multilingual.tokenizer_assets(config.target_vocab_size)
        if loaded.multilingual is not None:
            spm = spm_path(loaded.directory, loaded.members[-1].task)
            return loaded.multilingual.tokenizer_assets(spm, config.target_vocab_size)
        src_lang, tgt_lang, passed, (moses_src, moses_tgt, moses_rule) = loaded.langs
        src_dict_path, tgt_dict_path = loaded.dictionaries[:2]
        task = loaded.members[-1].task
        tok_files = {src_dict_path.name: src_dict_path}
        tok_files.setdefault(tgt_dict_path.name, tgt_dict_path)
        codes = _find_codes(loaded.directory)
        if codes is not None:
            tok_files["bpecodes"] = codes
        return TokenizerAssets(files=tok_files, config={
            "type": "fairseq_moses_bpe",
            "source_lang": src_lang,
            "target_lang": tgt_lang,
            # sacremoses' languages as fairseq's hub builds them (see moses_languages)
            "moses_source_lang": moses_src,
            "moses_target_lang": moses_tgt,
            "moses_langs_rule": moses_rule,
            # the languages given to from_pretrained for that result (the reference passes them too)
            "from_pretrained_langs": {f"{side}_lang": lang for side, lang in passed.items()},
            "source_dict": src_dict_path.name,
            "target_dict": tgt_dict_path.name,
            "bpe": _codes_format(codes) if codes is not None else None,
            "bpe_codes": "bpecodes" if codes is not None else None,
            "moses_escape": not bool(task.get("tokenizer.moses_no_escape", False)),
            "moses_aggressive_dash_splits": not bool(task.get("tokenizer.moses_no_dash_splits", False)),
            "append_eos": True,
        })

    def generation_defaults(self, loaded: FairseqSource, config: Seq2SeqConfig) -> dict[str, Any]:
        gen = loaded.members[-1].gen
        self.unsupported(self.source, [f"generation option {p}" for p in option_type_problems(
            gen if isinstance(gen, dict) else {}, _GENERATION_KINDS, _flag)])
        generation: dict[str, Any] = {"semantics": "fairseq"}
        for key, default in _GENERATION_KEYS.items():
            value = gen.get(key, default) if isinstance(gen, dict) else default
            generation[key] = default if value is None else value
        generation["max_positions"] = min(config.max_source_positions, config.max_target_positions)
        return generation

    def source_files(self, loaded: FairseqSource, tokenizer: TokenizerAssets) -> list[Path]:
        return [m.path for m in loaded.members] + list(dict.fromkeys(tokenizer.files.values()))

    def foreign_options(self, loaded: FairseqSource) -> dict[str, Any]:
        return {k: v for k, v in sorted(loaded.opts.items()) if isinstance(v, (str, int, float, bool, type(None)))}


def _dict_paths(directory: Path, src: str | None, tgt: str | None) -> tuple[Path, Path]:
    """The source and target dictionaries of a checkpoint translating ``src`` -> ``tgt``."""
    if src and tgt:
        s, t = directory / f"dict.{src}.txt", directory / f"dict.{tgt}.txt"
        if s.is_file() and t.is_file():
            return s, t
        if (directory / "dict.txt").is_file():
            return directory / "dict.txt", directory / "dict.txt"
        missing = s if not s.is_file() else t
        raise InvalidInputError(f"dictionary `{missing}` does not exist (translating {src}->{tgt} needs "
                                f"dict.{src}.txt and dict.{tgt}.txt beside the checkpoint)")
    if (directory / "dict.txt").is_file():
        return directory / "dict.txt", directory / "dict.txt"
    dicts = sorted(directory.glob("dict.*.txt"))
    found = ", ".join(d.name for d in dicts) or "none"
    if src or tgt:  # one side given, the other neither recorded nor read from the dictionaries that fit
        missing = "--target-lang" if src else "--source-lang"
        raise InvalidInputError(f"`{directory}`: the checkpoint does not name its other language and no pair of "
                                f"dictionaries with {src or tgt} fits its embeddings (found: {found}); pass "
                                f"{missing} too")
    raise InvalidInputError(f"`{directory}`: the checkpoint names no source/target language and there is "
                            f"no dict.txt (found: {found}); pass --source-lang and --target-lang")


def fairseq_config(opts: dict[str, Any], src_dict: FairseqDictionary, tgt_dict: FairseqDictionary) -> Seq2SeqConfig:
    """The unified config of checked fairseq options and the model's dictionaries."""
    pad = src_dict.pad_index
    positions = ("none" if opts["no_token_positional_embeddings"]
                 else "learned" if opts["encoder_learned_pos"] else "sinusoidal")
    pre = bool(opts["encoder_normalize_before"])
    return Seq2SeqConfig(
        encoder_layers=int(opts["encoder_layers"]), decoder_layers=int(opts["decoder_layers"]),
        d_model=int(opts["encoder_embed_dim"]),
        encoder_heads=int(opts["encoder_attention_heads"]), decoder_heads=int(opts["decoder_attention_heads"]),
        encoder_ffn_dim=int(opts["encoder_ffn_embed_dim"]), decoder_ffn_dim=int(opts["decoder_ffn_embed_dim"]),
        source_vocab_size=len(src_dict), target_vocab_size=len(tgt_dict),
        activation=ACTIVATIONS[opts["activation_fn"]], norm="layernorm", norm_eps=1e-5,
        pre_norm=pre, final_norm=pre, layernorm_embedding=bool(opts["layernorm_embedding"]),
        positions=positions, sinusoidal_layout="sin_cos", sinusoidal_denominator_minus_one=True,
        position_offset=pad + 1, position_pad_index=pad,
        max_source_positions=int(opts["max_source_positions"]),
        max_target_positions=int(opts["max_target_positions"]),
        scale_embeddings=not opts["no_scale_embedding"],
        shared_embeddings=bool(opts["share_all_embeddings"]),
        tie_output_embeddings=bool(opts["share_all_embeddings"] or opts["share_decoder_input_output_embed"]),
        pad_token_id=tgt_dict.pad_index, eos_token_id=tgt_dict.eos_index, bos_token_id=tgt_dict.bos_index,
        unk_token_id=tgt_dict.unk_index, decoder_start_token_id=tgt_dict.eos_index,
    )


def embedding_rows(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Rows of the encoder and decoder token embeddings the checkpoint holds."""
    return {side: int(state[f"{side}.embed_tokens.weight"].shape[0]) for side in ("encoder", "decoder")
            if isinstance(state.get(f"{side}.embed_tokens.weight"), torch.Tensor)
            and state[f"{side}.embed_tokens.weight"].dim() == 2}


def _check_vocab(mapped: list[tuple[str, torch.Tensor]], src_path: Path, tgt_path: Path,
                 src_dict: FairseqDictionary, tgt_dict: FairseqDictionary) -> None:
    """The dictionaries give the embeddings' row counts."""
    rows = {name: t.shape[0] for name, t in mapped if name.endswith("embed_tokens.weight")}
    problems = []
    for name, d, p in (("encoder.embed.embed_tokens.weight", src_dict, src_path),
                       ("decoder.embed.embed_tokens.weight", tgt_dict, tgt_path)):
        if name in rows and rows[name] != len(d):
            problems.append(f"dictionary `{p.name}` gives {len(d)} symbols (4 special + {len(d) - 4} "
                            f"from the file) but the checkpoint's {name.split('.')[0]} embedding has "
                            f"{rows[name]} rows; use the dictionary the model was trained with")
    if problems:
        raise UnsupportedCheckpointError(str(src_path.parent), problems)


def tied_output_alias(mapper: KeyMapper, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """fairseq >= 0.10 stores the tied output projection under its own name too;
    it must be the embedding (same values), and is dropped as an alias."""
    key = "decoder.output_projection.weight"
    if key in state:
        emb = state.get("decoder.embed_tokens.weight")
        if emb is not None and emb.shape == state[key].shape and (
                emb.data_ptr() == state[key].data_ptr() or torch.equal(emb, state[key])):
            mapper.drop(key, "alias of decoder.embed_tokens.weight (tied output projection)")
        else:
            raise WeightMappingError(source, [
                "--share-decoder-input-output-embed is set but decoder.output_projection.weight differs from "
                "decoder.embed_tokens.weight (the checkpoint was edited after training?)"])


def shared_embedding_alias(out: list[tuple[str, torch.Tensor]], source: str = "checkpoint") -> None:
    """With --share-all-embeddings fairseq stores one matrix under both names;
    if only one name is present, fill the other slot with the same tensor."""
    enc, dec = "encoder.embed.embed_tokens.weight", "decoder.embed.embed_tokens.weight"
    found = dict(out)
    if enc in found and dec in found:
        if found[enc].data_ptr() != found[dec].data_ptr():
            if found[enc].shape != found[dec].shape or not torch.equal(found[enc], found[dec]):
                raise WeightMappingError(source, ["--share-all-embeddings is set but the encoder and "
                                                        "decoder embeddings differ"])
            out[:] = [(n, found[enc] if n == dec else t) for n, t in out]
    elif enc in found:
        out.append((dec, found[enc]))
    elif dec in found:
        out.append((enc, found[dec]))
