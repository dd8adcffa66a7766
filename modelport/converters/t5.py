"""T5 checkpoints → the unified model.

Two sources, one architecture:

* a transformers directory (``config.json`` + ``model.safetensors`` or
  ``pytorch_model.bin``, possibly sharded with an ``*.index.json``, and
  ``spiece.model``): T5 v1.0, v1.1, Flan-T5 (``model_type`` ``t5``) and mT5
  (``mt5``);
* an original Mesh-TensorFlow checkpoint (``model.ckpt-N.index`` +
  ``.data-*`` shards + ``operative_config.gin``), read without TensorFlow by
  :mod:`modelport.converters.tf_checkpoint`.

Both are first reduced to :class:`T5Hyper` (the few numbers T5 needs) and a
state dict in transformers' names, so the config and the name table below are
shared. T5 in unified-config terms: pre-norm RMSNorm with final norms, no
position embeddings but one relative attention bias per stack, no query
scaling, no biases, ReLU or gated GELU/SiLU, the decoder starting from the
pad token, and (v1.0) the output tied to the embedding and scaled by
``d_model ** -0.5``.
"""

from __future__ import annotations

import ast
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import sentencepiece
import torch
from safetensors import SafetensorError, safe_open

from modelport import values
from modelport.converters.base import (ON_OFF, Converter, KeyMapper, MappedWeights, Rule, TokenizerAssets, drop,
                                      one_line, option_type_problems, register_converter, short_repr, transpose)
from modelport.converters.safe_pickle import safe_torch_load
from modelport.converters.tf_checkpoint import TFCheckpoint
from modelport.errors import CorruptCheckpointError, InvalidInputError, UnsupportedCheckpointError, WeightMappingError
from modelport.files import file_in_folder
from modelport.model.config import Seq2SeqConfig
from modelport.tokenizers.sentencepiece import t5_config
from modelport.values import Kind

# ---------------------------------------------------------------------------
# options

MODEL_TYPES = ("t5", "mt5")
# model types that look like T5 but need what the unified model does not have
REFUSED_MODEL_TYPES = {
    "umt5": "UMT5 gives every layer its own relative attention bias; the unified model shares one per stack",
    "longt5": "LongT5 uses local/transient-global attention",
    "switch_transformers": "Switch Transformers use mixture-of-experts feed-forward layers",
}
# feed_forward_proj -> (unified activation, gated). transformers maps
# "gated-gelu" to its tanh approximation ("gelu_new"), as Mesh-TF's gelu is.
FEED_FORWARD = {"relu": ("relu", False), "gated-gelu": ("gelu_tanh", True), "gated-silu": ("silu", True)}
ARCHITECTURES = ("T5ForConditionalGeneration", "MT5ForConditionalGeneration", "T5WithLMHeadModel", "T5Model",
                 "MT5Model")
REQUIRED_FIELDS = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
DEFAULT_EXTRA_IDS = 100
SPM_NAMES = ("spiece.model", "sentencepiece.model")
# transformers' generation defaults, overridden by the source's generation_config.json
_GENERATION_KEYS = {"num_beams": 1, "max_length": 20, "max_new_tokens": None, "min_length": 0,
                    "early_stopping": False, "length_penalty": 1.0, "no_repeat_ngram_size": 0}


@dataclass(frozen=True, kw_only=True)
class T5Hyper:
    """The architecture numbers of a T5 checkpoint, whatever its source."""

    vocab_size: int
    d_model: int
    d_kv: int
    d_ff: int
    num_layers: int
    num_decoder_layers: int
    num_heads: int
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"
    scale_decoder_outputs: bool = True
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0


def hf_scale_decoder_outputs(cfg: dict[str, Any]) -> bool:
    """Whether transformers multiplies the decoder output by ``d_model ** -0.5``.

    Original T5 (v1.0) always did, v1.1/Flan/mT5 never do. transformers keys
    it on the saved ``tie_word_embeddings`` (v1.1 configs say ``false``) or,
    since 5.x, on an explicit ``scale_decoder_outputs``; its mT5 class never
    scales.
    """
    if cfg.get("model_type") == "mt5":
        return False
    if "scale_decoder_outputs" in cfg:
        return bool(cfg["scale_decoder_outputs"])
    return cfg.get("tie_word_embeddings", True) is not False


def _shown(value: Any) -> str:
    """A config value as JSON when it is a short string, else a bounded description."""
    return json.dumps(value) if isinstance(value, str) and len(value) <= 60 else short_repr(value)


def check_hf_config(cfg: dict[str, Any]) -> list[str]:
    """Every unsupported or missing ``config.json`` field, in transformers' names."""
    problems: list[str] = []
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str):
        problems.append(f"model_type {_shown(model_type)} is not supported (supported: {', '.join(MODEL_TYPES)})")
        model_type = None
    elif model_type in REFUSED_MODEL_TYPES:
        problems.append(f"model_type \"{model_type}\" is not supported ({REFUSED_MODEL_TYPES[model_type]}; "
                        f"supported: {', '.join(MODEL_TYPES)})")
    elif model_type not in MODEL_TYPES:
        problems.append(f"model_type {_shown(model_type)} is not supported (supported: {', '.join(MODEL_TYPES)})")
    missing = [k for k in REQUIRED_FIELDS if cfg.get(k) is None]
    if missing:
        problems.append(f"config.json has no {', '.join(missing)} (required: {', '.join(REQUIRED_FIELDS)})")
    for k in REQUIRED_FIELDS + ("num_decoder_layers", "relative_attention_num_buckets",
                                "relative_attention_max_distance", "pad_token_id", "decoder_start_token_id"):
        v = cfg.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            problems.append(f"{k} {json.dumps(v)} is not supported (supported: a non-negative integer)")
    ffp = cfg.get("feed_forward_proj", "gated-gelu" if model_type == "mt5" else "relu")
    if not isinstance(ffp, str) or ffp not in FEED_FORWARD:
        problems.append(f"feed_forward_proj {_shown(ffp)} is not supported (supported: {', '.join(FEED_FORWARD)})")
    problems += option_type_problems(cfg, {"layer_norm_epsilon": values.POSITIVE, "tie_word_embeddings": ON_OFF})
    eos = cfg.get("eos_token_id", 1)
    if not (type(eos) is int or isinstance(eos, list) and len(eos) == 1 and type(eos[0]) is int):
        problems.append(f"eos_token_id {short_repr(eos)} is not supported (supported: one token id)")
    if cfg.get("is_encoder_decoder", True) is not True or cfg.get("is_decoder", False) is not False:
        problems.append("is_encoder_decoder false / is_decoder true is not supported (supported: the "
                        "encoder-decoder model)")
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        problems.append(f"architectures {short_repr(archs)} is not supported (supported: a list of "
                        f"{', '.join(ARCHITECTURES)})")
    else:
        bad = [a for a in archs if a not in ARCHITECTURES]
        if bad:
            problems.append(f"architectures {json.dumps(bad)[:200]} is not supported (supported: "
                            f"{', '.join(ARCHITECTURES)})")
    return problems


def hf_hyper(cfg: dict[str, Any]) -> T5Hyper:
    """:class:`T5Hyper` from a checked ``config.json``, with transformers' defaults."""
    eos = cfg.get("eos_token_id", 1)
    pad = cfg.get("pad_token_id")
    pad = 0 if pad is None else pad
    start = cfg.get("decoder_start_token_id")
    return T5Hyper(
        vocab_size=cfg["vocab_size"], d_model=cfg["d_model"], d_kv=cfg["d_kv"], d_ff=cfg["d_ff"],
        num_layers=cfg["num_layers"],
        num_decoder_layers=cfg.get("num_decoder_layers") if cfg.get("num_decoder_layers") is not None
        else cfg["num_layers"],
        num_heads=cfg["num_heads"],
        relative_attention_num_buckets=cfg.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=cfg.get("relative_attention_max_distance", 128),
        layer_norm_epsilon=float(cfg.get("layer_norm_epsilon", 1e-6)),
        feed_forward_proj=cfg.get("feed_forward_proj", "gated-gelu" if cfg.get("model_type") == "mt5" else "relu"),
        scale_decoder_outputs=hf_scale_decoder_outputs(cfg),
        pad_token_id=pad, eos_token_id=eos[0] if isinstance(eos, list) else eos,
        decoder_start_token_id=pad if start is None else start,
    )


def build_config(hyper: T5Hyper, *, shared: bool, tied: bool, unk_token_id: int = 2) -> Seq2SeqConfig:
    """The unified config of a T5 checkpoint."""
    activation, gated = FEED_FORWARD[hyper.feed_forward_proj]
    return Seq2SeqConfig(
        encoder_layers=hyper.num_layers, decoder_layers=hyper.num_decoder_layers, d_model=hyper.d_model,
        encoder_heads=hyper.num_heads, decoder_heads=hyper.num_heads, head_dim=hyper.d_kv,
        encoder_ffn_dim=hyper.d_ff, decoder_ffn_dim=hyper.d_ff,
        source_vocab_size=hyper.vocab_size, target_vocab_size=hyper.vocab_size,
        activation=activation, ffn_gated=gated,
        norm="rmsnorm", norm_eps=hyper.layer_norm_epsilon, pre_norm=True, final_norm=True,
        clamp_fp16_activations=True,
        positions="relative", relative_attention_num_buckets=hyper.relative_attention_num_buckets,
        relative_attention_max_distance=hyper.relative_attention_max_distance,
        position_offset=0, position_pad_index=0,
        scale_embeddings=False, shared_embeddings=shared, tie_output_embeddings=tied,
        output_scale=hyper.d_model ** -0.5 if hyper.scale_decoder_outputs and hyper.d_model > 0 else 1.0,  # 0: refused
        mask_target_padding=False,
        attention_bias=False, ffn_bias=False, attention_scale=1.0,
        pad_token_id=hyper.pad_token_id, eos_token_id=hyper.eos_token_id, bos_token_id=None,
        unk_token_id=unk_token_id, decoder_start_token_id=hyper.decoder_start_token_id,
    )


# ---------------------------------------------------------------------------
# weights (transformers names; the Mesh-TF reader renames into these first)

# transformers name -> unified name. {} is a block number. None: dropped on purpose.
_ATTN = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}
# T5's block keeps its sublayers in a list: [self-attn, (cross-attn,) ffn]
_SUBLAYERS = {"encoder": (("SelfAttention", "self_attn"), (None, "ffn")),
              "decoder": (("SelfAttention", "self_attn"), ("EncDecAttention", "cross_attn"), (None, "ffn"))}
NAME_TABLE: dict[str, str | None] = {
    "encoder.final_layer_norm.weight": "encoder.final_norm.weight",
    "decoder.final_layer_norm.weight": "decoder.final_norm.weight",
    # the bias is computed in block 0 and shared by the other blocks
    "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": "encoder.relative_bias.embedding.weight",
    "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": "decoder.relative_bias.embedding.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight": None,
}
for _side, _subs in _SUBLAYERS.items():
    for _i, (_foreign, _unified) in enumerate(_subs):
        _pre = f"{_side}.block.{{}}.layer.{_i}"
        NAME_TABLE[f"{_pre}.layer_norm.weight"] = f"{_side}.layers.{{}}.{_unified}_norm.weight"
        if _foreign is None:
            NAME_TABLE[f"{_pre}.DenseReluDense.wi.weight"] = f"{_side}.layers.{{}}.ffn.up.weight"
            # gated: act(wi_0 x) * (wi_1 x)
            NAME_TABLE[f"{_pre}.DenseReluDense.wi_0.weight"] = f"{_side}.layers.{{}}.ffn.gate.weight"
            NAME_TABLE[f"{_pre}.DenseReluDense.wi_1.weight"] = f"{_side}.layers.{{}}.ffn.up.weight"
            NAME_TABLE[f"{_pre}.DenseReluDense.wo.weight"] = f"{_side}.layers.{{}}.ffn.down.weight"
        else:
            for _p, _u in _ATTN.items():
                NAME_TABLE[f"{_pre}.{_foreign}.{_p}.weight"] = f"{_side}.layers.{{}}.{_unified}.{_u}.weight"

DROP_REASONS = {
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight":
        "cross-attention has no position bias; old checkpoints carry this unused table (transformers ignores it)",
}
EMBEDDING_KEYS = ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and (a.data_ptr() == b.data_ptr() or torch.equal(a, b))


def _untied(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The embedding copies (``encoder``/``decoder`` ``embed_tokens``, ``lm_head``)
    a checkpoint stores with values of their own; the others are ``shared.weight``.

    transformers ties the encoder and decoder embeddings and the lm_head to
    ``shared.weight``, but unties any of them that a checkpoint stores with
    different values (real v1.1/Flan/mT5 checkpoints store a separate lm_head).
    """
    if "shared.weight" not in state:
        raise WeightMappingError("checkpoint", ["transformers key `shared.weight` (the token embedding) is missing"])
    shared = state["shared.weight"]
    return {k: state[k] for k in EMBEDDING_KEYS[1:] if k in state and not _same(state[k], shared)}


def embedding_ties(state: Mapping[str, torch.Tensor]) -> tuple[bool, bool]:
    """(shared_embeddings, tie_output_embeddings) of a state dict in transformers' names."""
    own = _untied(state)
    enc, dec, out = (own.get(k) for k in EMBEDDING_KEYS[1:])  # None: shared.weight
    return enc is dec, out is dec


def resolve_embeddings(mapper: KeyMapper, tied: bool) -> list[tuple[str, torch.Tensor]]:
    """The embedding and output slots from ``shared``/``embed_tokens``/``lm_head``
    (see :func:`_untied`); copies equal to ``shared`` are dropped as aliases."""
    shared = mapper.take("shared.weight")
    own = _untied(mapper.state)
    for key in EMBEDDING_KEYS[1:]:
        if key in own:
            mapper.take(key)
        elif key in mapper.state:
            mapper.drop(key, "alias of shared.weight (tied embedding)")
    enc, dec, out = (own.get(k, shared) for k in EMBEDDING_KEYS[1:])
    slots = [("encoder.embed.embed_tokens.weight", enc), ("decoder.embed.embed_tokens.weight", dec)]
    if not tied:
        slots.append(("lm_head.weight", out))
    return slots


def map_weights(source: str, state: Mapping[str, torch.Tensor], tied: bool,
                prefix: str = "transformers") -> tuple[list[tuple[str, torch.Tensor]], dict[str, str]]:
    """Map a state dict in transformers' names; returns (slots, dropped)."""
    mapper = KeyMapper(state, NAME_TABLE, DROP_REASONS, unmatched=f"{prefix} key `{{}}` has no slot in the unified model")
    out = resolve_embeddings(mapper, tied)
    out += mapper.apply()
    mapper.check(source)
    return out, mapper.dropped


# ---------------------------------------------------------------------------
# files


def load_hf_state(directory: Path) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """Weights of a transformers directory: safetensors preferred, ``.bin``
    only through the restricted unpickler; sharded checkpoints via their index."""
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = directory / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = list(dict.fromkeys(weight_map.values()))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise CorruptCheckpointError(str(index), f"it is not a shard index ({e})") from None
            # each a file of the directory: "../other/model.safetensors" or an absolute path read another model
            files = [file_in_folder(directory, name, f"weight shard (listed in `{index_name}`)") for name in names]
        elif (directory / single).is_file():
            files = [directory / single]
        else:
            continue
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(_read_safetensors(f) if f.suffix == ".safetensors" else _read_bin(f))
        return state, files
    raise InvalidInputError(f"`{directory}` has no model.safetensors or pytorch_model.bin (a transformers T5 "
                            "directory needs its weights beside config.json)")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptCheckpointError(str(path), f"it is truncated or corrupt ({e})") from None


def _read_bin(path: Path) -> dict[str, torch.Tensor]:
    state = safe_torch_load(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptCheckpointError(str(path), "it is not a state dict of tensors")
    return dict(state)


def find_spm(directory: Path) -> Path:
    for name in SPM_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise InvalidInputError(f"`{directory}` has no spiece.model (the T5 SentencePiece model; put the one the "
                            "checkpoint was trained with beside it)")


def spm_size(path: Path) -> int:
    proc = sentencepiece.SentencePieceProcessor()
    try:
        proc.Load(str(path))
    except (OSError, RuntimeError) as e:
        raise CorruptCheckpointError(str(path), f"it is not a SentencePiece model ({e})") from None
    return proc.GetPieceSize()


def tokenizer_assets(spm: Path, extra_ids: int, vocab_size: int, source: str) -> TokenizerAssets:
    """``tokenizer/`` of a T5 port: the spm model plus ``extra_ids`` sentinels
    (``<extra_id_0>`` is the last id before padding rows), EOS appended."""
    pieces = spm_size(spm)
    if pieces + extra_ids > vocab_size:
        raise UnsupportedCheckpointError(source, [
            f"`{spm.name}` has {pieces} pieces, plus {extra_ids} extra_ids that is more than the model's "
            f"vocab_size {vocab_size}; use the SentencePiece model the checkpoint was trained with"])
    return TokenizerAssets(files={"spiece.model": spm},
                           config=t5_config(spm, extra_ids, _clean_up_tokenization_spaces(spm, source)))


def _clean_up_tokenization_spaces(spm: Path, source: str) -> bool:
    """The ``clean_up_tokenization_spaces`` of the ``tokenizer_config.json``
    beside the spm model: transformers' ``decode`` applies its clean-up when
    it is true (``" ."`` -> ``"."``, ...), so the port's decode must too.
    Absent (or no such file, e.g. Mesh-TF checkpoints): transformers 5's
    default, false."""
    path = spm.parent / "tokenizer_config.json"
    if not path.is_file():
        return False
    value = _read_json(path).get("clean_up_tokenization_spaces", False)
    if not isinstance(value, bool):
        raise UnsupportedCheckpointError(source, [f"tokenizer_config.json clean_up_tokenization_spaces {value!r} is "
                                                  "not supported (supported: true, false)"])
    return value


_GENERATION_KINDS: dict[str, Kind] = {
    "num_beams": values.POSITIVE_INTEGER, "max_length": values.COUNT, "max_new_tokens": values.COUNT,
    "min_length": values.COUNT, "length_penalty": values.FINITE, "no_repeat_ngram_size": values.COUNT}


def generation_defaults(hyper: T5Hyper, source_gen: dict[str, Any]) -> dict[str, Any]:
    """transformers' decoding defaults, overridden by the source's generation_config.json (checked)."""
    problems = option_type_problems(source_gen, _GENERATION_KINDS)
    early = source_gen.get("early_stopping")
    if early is not None and early not in (True, False, "never"):
        problems.append(f"`early_stopping` must be true, false or \"never\", but is {short_repr(early)}")
    if problems:
        raise UnsupportedCheckpointError("generation_config.json", problems)
    gen: dict[str, Any] = {"semantics": "hf"}
    for key, default in _GENERATION_KEYS.items():
        gen[key] = source_gen.get(key, default)
    # pad/eos are model facts (config.json), not decoding options
    gen["decoder_start_token_id"] = hyper.decoder_start_token_id
    return gen


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptCheckpointError(str(path), f"it is not valid JSON ({one_line(e)})") from None
    if not isinstance(data, dict):
        raise CorruptCheckpointError(str(path), "it is not a JSON object")
    return data


# ---------------------------------------------------------------------------
# Mesh-TensorFlow checkpoints

# Mesh-TF variable -> transformers name, for a KeyMapper reading block and
# layer numbers as integers (Mesh-TF zero-pads them). Mesh-TF stores kernels as
# [in, out] and the relative bias as [heads, buckets]; torch Linear and
# Embedding want them the other way round. The embedding is [vocab, d_model]
# in both. Training state in the checkpoint is dropped with a reason.
_B = r"(encoder|decoder)/block_(\d+)/layer_(\d+)"
MESH_TABLE: dict[re.Pattern[str], Rule] = {
    re.compile(r".*_slot_(vc|vr|v|m)"): drop("Adafactor optimizer slot (moment statistics), not needed for inference"),
    re.compile(r"global_step"): drop("training step counter, not a weight"),
    re.compile(r"shared/embedding"): Rule("shared.weight"),
    re.compile(_B + r"/(SelfAttention|EncDecAttention)/([qkvo])"): Rule("{0}.block.{1}.layer.{2}.{3}.{4}.weight",
                                                                        transpose),
    re.compile(_B + r"/(SelfAttention)/relative_attention_bias"):
        Rule("{0}.block.{1}.layer.{2}.{3}.relative_attention_bias.weight", transpose),
    re.compile(_B + r"/(?:layer_norm|rms_norm)/scale"): Rule("{0}.block.{1}.layer.{2}.layer_norm.weight"),
    re.compile(_B + r"/DenseReluDense/(wi|wi_0|wi_1|wo)/kernel"):
        Rule("{0}.block.{1}.layer.{2}.DenseReluDense.{3}.weight", transpose),
    re.compile(r"(encoder|decoder)/(?:final_layer_norm|rms_norm)/scale"): Rule("{0}.final_layer_norm.weight"),
    re.compile(r"decoder/logits/kernel"): Rule("lm_head.weight", transpose),
}
# gin activation value -> transformers' feed_forward_proj
MESH_ACTIVATIONS = {"'relu'": "relu", "['gelu', 'linear']": "gated-gelu", "['swish', 'linear']": "gated-silu",
                    "['silu', 'linear']": "gated-silu"}


def mesh_state(ckpt: TFCheckpoint, source: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Mesh-TF variables renamed to transformers' names (read lazily; training
    state dropped); all unknown variables reported together."""
    mapper = KeyMapper(ckpt, MESH_TABLE, first_index=0,
                       unmatched="Mesh-TF variable `{}` has no slot in the unified model")
    state = dict(mapper.apply())
    mapper.check(source)
    return state, mapper.dropped


def _strip_comment(line: str) -> str:
    """``line`` without a ``#`` comment (a ``#`` inside quotes is kept)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i].rstrip()
    return line.rstrip()


def parse_gin(text: str) -> dict[str, str]:
    """Bindings of an ``operative_config.gin``: ``[scope/]Name.param`` or a
    macro name -> the value's source text (continuation lines joined,
    ``%macro`` references resolved)."""
    bindings: dict[str, str] = {}
    pending = ""
    for line in text.splitlines():
        line = _strip_comment(line)
        if not line.strip() and not pending:
            continue
        pending = f"{pending} {line.strip()}" if pending else line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending.count("[") > pending.count("]") or pending.count("(") > pending.count(")"):
            continue
        stmt, pending = pending, ""
        if stmt.startswith(("import ", "include ", "from ")) or "=" not in stmt:
            continue
        key, value = (part.strip() for part in stmt.split("=", 1))
        bindings[key] = re.sub(r"\[\s+", "[", re.sub(r",\s*", ", ", value))
    for key, value in bindings.items():
        if value.startswith("%") and value[1:] in bindings:
            bindings[key] = bindings[value[1:]]
    return bindings


def _gin_get(bindings: dict[str, str], *names: str) -> str | None:
    """The first bound name, trying the encoder/ and decoder/ scopes too."""
    for name in names:
        for scope in ("", "encoder/", "decoder/"):
            if scope + name in bindings:
                return bindings[scope + name]
    return None


def _gin_literal(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _checked_extra_ids(value: Any, source: str, named: str) -> int:
    """``extra_ids`` (T5's sentinel count) as read from ``source``: a non-negative
    integer, or :class:`UnsupportedCheckpointError` quoting ``named``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UnsupportedCheckpointError(source, [f"{named} is not supported (supported: a non-negative integer)"])
    return value


def mesh_hyper(bindings: dict[str, str], vocab_size: int) -> tuple[T5Hyper | None, list[str]]:
    """:class:`T5Hyper` from gin bindings, or every problem in gin's own names."""
    problems: list[str] = []
    sizes: dict[str, int] = {}
    for macro, fallback in (("d_model", "Unitransformer.d_model"), ("d_kv", "SelfAttention.key_value_size"),
                            ("d_ff", "DenseReluDense.hidden_size"), ("num_heads", "SelfAttention.num_heads"),
                            ("num_layers", "make_layer_stack.num_layers")):
        value = _gin_literal(bindings.get(macro) or _gin_get(bindings, fallback))
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"operative_config.gin sets no integer {macro} (nor {fallback})")
        else:
            sizes[macro] = value
    act = _gin_get(bindings, "DenseReluDense.activation") or "'relu'"
    if act not in MESH_ACTIVATIONS:
        problems.append(f"DenseReluDense.activation = {act} is not supported (supported: "
                        f"{', '.join(MESH_ACTIVATIONS)})")
    rel = _gin_literal(_gin_get(bindings, "SelfAttention.relative_attention_type"))
    if rel not in (None, "bias_shared"):
        problems.append(f"SelfAttention.relative_attention_type = {rel!r} is not supported (supported: "
                        "'bias_shared'; 'bias' gives every layer its own bias)")
    if _gin_literal(_gin_get(bindings, "Unitransformer.positional_embedding")) is True:
        problems.append("Unitransformer.positional_embedding = True is not supported (supported: False; T5 uses "
                        "relative attention only)")
    numbers = {"SelfAttention.relative_attention_num_buckets": 32, "SelfAttention.relative_attention_max_distance": 128,
               "LayerStack.norm_epsilon": 1e-6}
    for name, default in numbers.items():  # a string or a list here failed deep in the converter (TypeError)
        value = _gin_literal(_gin_get(bindings, name))
        numbers[name] = default if value is None else value
        kind = int if isinstance(default, int) else (int, float)
        if isinstance(numbers[name], bool) or not isinstance(numbers[name], kind) or not numbers[name] > 0:
            problems.append(f"{name} = {value!r} must be a {'positive integer' if kind is int else 'number > 0'}")
    if problems:
        return None, problems
    dec_layers = _gin_literal(bindings.get("decoder/make_layer_stack.num_layers"))
    shared = _gin_literal(_gin_get(bindings, "Unitransformer.shared_embedding_and_softmax_weights"))
    hyper = T5Hyper(
        vocab_size=vocab_size, d_model=sizes["d_model"], d_kv=sizes["d_kv"], d_ff=sizes["d_ff"],
        num_layers=sizes["num_layers"],
        num_decoder_layers=dec_layers if isinstance(dec_layers, int) else sizes["num_layers"],
        num_heads=sizes["num_heads"],
        relative_attention_num_buckets=numbers["SelfAttention.relative_attention_num_buckets"],
        relative_attention_max_distance=numbers["SelfAttention.relative_attention_max_distance"],
        layer_norm_epsilon=float(numbers["LayerStack.norm_epsilon"]),
        feed_forward_proj=MESH_ACTIVATIONS[act],
        # Mesh-TF scales the decoder output by d_model**-0.5 exactly when the
        # softmax reuses the embedding
        scale_decoder_outputs=shared is not False,
    )
    return hyper, []


def _is_tf_dir(path: Path) -> bool:
    return path.is_dir() and not (path / "config.json").is_file() and (
        any(path.glob("*.index")) and ((path / "operative_config.gin").is_file() or (path / "checkpoint").is_file()))


@dataclass
class T5Weights:
    """A T5 state dict in transformers' names, and what reading it dropped."""

    state: Mapping[str, torch.Tensor]
    dropped: dict[str, str]
    label: str  # the source errors name
    prefix: str  # how an unmatched key is described
    files: list[Path]


class T5Source(ABC):
    """What :meth:`T5Converter.load_source` read: a transformers directory or a
    Mesh-TF checkpoint, each reduced to :class:`T5Hyper` and transformers' names.
    The weights are read when the config needs them (their ties)."""

    source: str
    directory: Path

    @abstractmethod
    def option_problems(self) -> tuple[str, list[str]]:
        """(the file the options come from, every unsupported option in its own names)."""

    @abstractmethod
    def read_hyper(self) -> T5Hyper:
        """The architecture numbers of checked options."""

    @abstractmethod
    def read_weights(self) -> T5Weights:
        """The state dict in transformers' names."""

    @abstractmethod
    def extra_ids(self) -> int:
        """How many sentinel ids follow the SentencePiece pieces."""

    @abstractmethod
    def source_generation(self) -> dict[str, Any]:
        """The source's own decoding defaults (transformers' names)."""

    @abstractmethod
    def source_files(self, spm: Path) -> list[Path]:
        """The files the port is made from."""

    @abstractmethod
    def foreign_options(self) -> dict[str, Any]:
        """The source's options as it names them."""

    @cached_property
    def hyper(self) -> T5Hyper:
        return self.read_hyper()

    @cached_property
    def weights(self) -> T5Weights:
        return self.read_weights()


@dataclass
class HfT5Source(T5Source):
    """A transformers T5 directory."""

    source: str
    directory: Path
    raw: dict[str, Any]  # config.json

    def option_problems(self) -> tuple[str, list[str]]:
        return self.source, check_hf_config(self.raw)

    def read_hyper(self) -> T5Hyper:
        return hf_hyper(self.raw)

    def read_weights(self) -> T5Weights:
        state, files = load_hf_state(self.directory)
        return T5Weights(state=state, dropped={}, label=self.source, prefix="transformers", files=files)

    def extra_ids(self) -> int:
        path = self.directory / "tokenizer_config.json"
        extra_ids = (_read_json(path) if path.is_file() else {}).get("extra_ids", DEFAULT_EXTRA_IDS)
        return _checked_extra_ids(extra_ids, self.source, f"tokenizer_config.json extra_ids {extra_ids!r}")

    def source_generation(self) -> dict[str, Any]:
        path = self.directory / "generation_config.json"
        return _read_json(path) if path.is_file() else {}

    def source_files(self, spm: Path) -> list[Path]:
        return [self.directory / "config.json", *self.weights.files, spm]

    def foreign_options(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.raw.items()) if isinstance(v, (str, int, float, bool, type(None)))}


@dataclass
class MeshT5Source(T5Source):
    """An original Mesh-TensorFlow T5 checkpoint and its ``operative_config.gin``."""

    source: str
    directory: Path
    ckpt: TFCheckpoint
    gin_path: Path
    bindings: dict[str, str]

    @classmethod
    def open(cls, source: str, path: Path) -> MeshT5Source:
        ckpt = TFCheckpoint(path)
        directory = ckpt.prefix.parent
        ckpt.check_shards()
        gin_path = directory / "operative_config.gin"
        if not gin_path.is_file():
            raise InvalidInputError(f"`{directory}` has no operative_config.gin (the Mesh-TF architecture; it is "
                                    "released beside every T5 checkpoint)")
        try:
            bindings = parse_gin(gin_path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise InvalidInputError(f"`{gin_path}` must be UTF-8 text, but has byte 0x{e.object[e.start]:02x} at "
                                    f"offset {e.start}") from None
        if "shared/embedding" not in ckpt.entries or len(ckpt.entries["shared/embedding"].shape) != 2:
            raise WeightMappingError(str(ckpt.index_path), ["Mesh-TF variable `shared/embedding` is missing"])
        return cls(source=source, directory=directory, ckpt=ckpt, gin_path=gin_path, bindings=bindings)

    def _mesh_hyper(self) -> tuple[T5Hyper | None, list[str]]:
        return mesh_hyper(self.bindings, self.ckpt.entries["shared/embedding"].shape[0])

    def option_problems(self) -> tuple[str, list[str]]:
        return str(self.gin_path), self._mesh_hyper()[1]

    def read_hyper(self) -> T5Hyper:
        hyper = self._mesh_hyper()[0]
        assert hyper is not None  # options checked
        return hyper

    def read_weights(self) -> T5Weights:
        label = str(self.ckpt.index_path)
        state, dropped = mesh_state(self.ckpt, label)
        return T5Weights(state=state, dropped=dropped, label=label, prefix="Mesh-TF (renamed)",
                         files=[self.ckpt.index_path, *self.ckpt.shard_paths()])

    def extra_ids(self) -> int:
        names = ("vocabularies.SentencePieceVocabulary.extra_ids", "SentencePieceVocabulary.extra_ids")
        bound = self.bindings.get(names[0]) or _gin_get(self.bindings, names[1])
        if bound is None:
            return DEFAULT_EXTRA_IDS
        # a value the converter cannot read (a macro, a string) was taken as 100: the sentinels' ids then
        # silently named other pieces
        return _checked_extra_ids(_gin_literal(bound), str(self.gin_path), f"operative_config.gin extra_ids = {bound}")

    def source_generation(self) -> dict[str, Any]:
        return {}

    def source_files(self, spm: Path) -> list[Path]:
        return [self.ckpt.index_path, *self.ckpt.shard_paths(), self.gin_path, spm]

    def foreign_options(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.bindings.items())}


@register_converter("t5")
class T5Converter(Converter[T5Source]):
    """T5 v1.0/v1.1/Flan-T5/mT5: transformers directories and Mesh-TF checkpoints."""

    description = ("T5/mT5/Flan-T5 (transformers dir with config.json + model.safetensors|pytorch_model.bin + "
                   "spiece.model, or a Mesh-TF model.ckpt-N + operative_config.gin)")

    @classmethod
    def detect(cls, source: str) -> bool:
        path = Path(source)
        if path.is_file() and path.suffix == ".index":
            return True
        if not path.is_dir():
            return False
        if _is_tf_dir(path):
            return True
        cfg = path / "config.json"
        if not cfg.is_file():
            return False
        try:
            model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError, RecursionError):
            return False
        return isinstance(model_type, str) and (model_type in MODEL_TYPES or model_type in REFUSED_MODEL_TYPES)

    def load_source(self, progress: bool) -> T5Source:
        path = Path(self.source)
        if (path.is_file() and path.suffix == ".index") or _is_tf_dir(path):
            return MeshT5Source.open(self.source, path)
        if not path.is_dir():
            raise InvalidInputError(f"`{self.source}` is not a T5 directory (config.json + weights + spiece.model)")
        if not (path / "config.json").is_file():
            raise InvalidInputError(f"`{self.source}` has no config.json")
        return HfT5Source(source=self.source, directory=path, raw=_read_json(path / "config.json"))

    def check_options(self, loaded: T5Source) -> None:
        self.unsupported(*loaded.option_problems())

    def build_config(self, loaded: T5Source) -> Seq2SeqConfig:
        shared, tied = embedding_ties(loaded.weights.state)
        return build_config(loaded.hyper, shared=shared, tied=tied)

    def map_weights(self, loaded: T5Source, config: Seq2SeqConfig) -> MappedWeights:
        w = loaded.weights
        mapped, dropped = map_weights(w.label, w.state, config.tie_output_embeddings, prefix=w.prefix)
        return MappedWeights([mapped], {**w.dropped, **dropped})

    def tokenizer_assets(self, loaded: T5Source, config: Seq2SeqConfig) -> TokenizerAssets:
        spm = find_spm(loaded.directory)
        return tokenizer_assets(spm, loaded.extra_ids(), loaded.hyper.vocab_size, self.source)

    def generation_defaults(self, loaded: T5Source, config: Seq2SeqConfig) -> dict[str, Any]:
        return generation_defaults(loaded.hyper, loaded.source_generation())

    def source_files(self, loaded: T5Source, tokenizer: TokenizerAssets) -> list[Path]:
        return loaded.source_files(tokenizer.files["spiece.model"])

    def foreign_options(self, loaded: T5Source) -> dict[str, Any]:
        return loaded.foreign_options()
