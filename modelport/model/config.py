"""The unified encoder-decoder configuration.

Every flag names a behaviour (``pre_norm``, ``norm="rmsnorm"``,
``positions="relative"``), never a model family, so one architecture covers
fairseq transformers, Marian/OPUS-MT and T5. Combinations that no real
checkpoint uses are rejected at construction.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelport.errors import ConfigError, InvalidInputError

Activation = Literal["relu", "gelu", "gelu_tanh", "gelu_sigmoid", "silu"]
NormKind = Literal["layernorm", "rmsnorm"]
Positions = Literal["sinusoidal", "learned", "relative", "none"]
SinusoidalLayout = Literal["sin_cos", "interleaved"]
DecoderAutoreg = Literal["self-attention", "ssru"]

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "gelu_sigmoid", "silu")
NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("sinusoidal", "learned", "relative", "none")
LAYOUTS = ("sin_cos", "interleaved")
DECODER_AUTOREGS = ("self-attention", "ssru")

CONFIG_FORMAT_VERSION = 1

# per-layer head count field prefix -> the stack whose layers it counts
_LAYER_HEADS = {"encoder": "encoder", "decoder": "decoder", "cross": "decoder"}


@dataclass(frozen=True, kw_only=True)
class Seq2SeqConfig:
    """Architecture of a ported encoder-decoder.

    Position handling, in one place: a real token at index ``i`` of its
    sequence (padding not counted) gets position ``position_offset + i``;
    padding tokens get position ``position_pad_index``. fairseq uses
    ``padding_idx + 1`` and ``padding_idx`` (its table row for padding is zero),
    Marian and T5 start at 0.
    """

    # sizes
    encoder_layers: int
    decoder_layers: int
    d_model: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    head_dim: int | None = None
    # Head counts per layer after head pruning (None: every layer has
    # ``encoder_heads`` / ``decoder_heads``); ``cross_layer_heads`` are the
    # decoder's cross-attentions. Counts other than ``*_heads`` need an
    # explicit ``head_dim``.
    encoder_layer_heads: tuple[int, ...] | None = None
    decoder_layer_heads: tuple[int, ...] | None = None
    cross_layer_heads: tuple[int, ...] | None = None
    source_vocab_size: int
    target_vocab_size: int

    # The decoder's autoregressive block: causal self-attention, or Marian's
    # SSRU (simpler simple recurrent unit, ``transformer-decoder-autoreg: rnn``
    # with ``dec-cell: ssru``), a gated linear recurrence in its place.
    decoder_autoreg: DecoderAutoreg = "self-attention"

    # feed-forward
    activation: Activation = "relu"
    ffn_gated: bool = False
    # Number of linear layers in the FFN (Marian's transformer-ffn-depth):
    # up, depth - 2 hidden-to-hidden layers (each followed by the activation), down.
    ffn_depth: int = 2

    # normalisation
    norm: NormKind = "layernorm"
    norm_eps: float = 1e-5
    pre_norm: bool = False
    # Marian's incremental decoder with pre-norm (marian-dev
    # src/models/transformer.h: DecoderLayerSelfAttention caches the layer's
    # *input*, and LayerAttention swaps in the normalised input for keys and
    # values only when they are that same input, i.e. at decoding position 0
    # and in the full-sequence forward of training and scoring). From the
    # second decoding step on, decoder self-attention keys and values are the
    # cached un-normalised layer inputs; the query is normalised as usual.
    # The full-sequence forward is unchanged by this flag.
    cached_self_kv_unnormed: bool = False
    final_norm: bool = False
    layernorm_embedding: bool = False
    # fp16 only: clamp the residual stream to the fp16 range after every
    # sublayer, as transformers' T5Block does (T5 activations overflow fp16).
    clamp_fp16_activations: bool = False

    # positions
    positions: Positions = "sinusoidal"
    sinusoidal_layout: SinusoidalLayout = "sin_cos"
    # fairseq/tensor2tensor divide log(10000) by (half_dim - 1); some
    # implementations divide by half_dim.
    sinusoidal_denominator_minus_one: bool = True
    position_offset: int = 0
    position_pad_index: int = 0
    max_source_positions: int = 1024
    max_target_positions: int = 1024
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128

    # embeddings and output
    scale_embeddings: bool = True
    shared_embeddings: bool = False
    tie_output_embeddings: bool = True
    final_logits_bias: bool = False
    output_scale: float = 1.0

    # Mask pad tokens of the decoder input as self-attention keys (fairseq).
    # False for T5: its decoder starts from the pad token, and right padding
    # is hidden from real tokens by the causal mask anyway.
    mask_target_padding: bool = True

    # attention
    attention_bias: bool = True
    ffn_bias: bool = True
    # None means head_dim ** -0.5; T5 uses 1.0 (its scale is folded into the weights).
    attention_scale: float | None = None

    # special tokens
    pad_token_id: int = 1
    eos_token_id: int = 2
    bos_token_id: int | None = 0
    unk_token_id: int = 3
    decoder_start_token_id: int = 2
    # Marian starts the decoder from an all-zero embedding vector, not a token:
    # the first target position's token embedding is replaced by zeros (it
    # still gets its position signal), and it counts as a real token even when
    # ``decoder_start_token_id`` is the pad id.
    decoder_start_zero_embedding: bool = False

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError("invalid Seq2SeqConfig: " + "; ".join(problems))

    def _problems(self):
        for name in ("encoder_layers", "decoder_layers"):
            if getattr(self, name) < 0:
                yield f"`{name}` must be >= 0, but is {getattr(self, name)}"
        for name in ("d_model", "encoder_heads", "decoder_heads", "encoder_ffn_dim", "decoder_ffn_dim",
                     "source_vocab_size", "target_vocab_size"):
            if getattr(self, name) <= 0:
                yield f"`{name}` must be > 0, but is {getattr(self, name)}"
        if self.ffn_depth < 2:
            yield f"`ffn_depth` must be >= 2, but is {self.ffn_depth}"
        if self.ffn_gated and self.ffn_depth != 2:
            yield "a gated FFN of `ffn_depth` other than 2 is not a known architecture"
        if self.activation not in ACTIVATIONS:
            yield f"`{self.activation}` is not a known activation (known: {', '.join(ACTIVATIONS)})"
        if self.norm not in NORMS:
            yield f"`{self.norm}` is not a known norm (known: {', '.join(NORMS)})"
        if self.positions not in POSITIONS:
            yield f"`{self.positions}` is not a known position kind (known: {', '.join(POSITIONS)})"
        if self.decoder_autoreg not in DECODER_AUTOREGS:
            yield (f"`{self.decoder_autoreg}` is not a known decoder autoregressive block (known: "
                   f"{', '.join(DECODER_AUTOREGS)})")
        elif self.decoder_autoreg == "ssru":
            if self.decoder_layer_heads is not None:
                yield "`decoder_layer_heads` must be None with `decoder_autoreg` ssru (no decoder self-attention)"
            if self.positions == "relative":
                yield "`decoder_autoreg` ssru with relative positions is not a known architecture"
        if self.positions == "relative":  # T5's log buckets: exact below num_buckets // 2 (decoder), // 4 (encoder)
            buckets, distance = self.relative_attention_num_buckets, self.relative_attention_max_distance
            if buckets < 4 or distance <= buckets // 2:  # else log(0) or negative bucket ids, at translate time
                yield (f"relative positions need `relative_attention_num_buckets` >= 4 and "
                       f"`relative_attention_max_distance` > half of it, but they are {buckets} and {distance}")
        if self.sinusoidal_layout not in LAYOUTS:
            yield f"`{self.sinusoidal_layout}` is not a known sinusoidal layout (known: {', '.join(LAYOUTS)})"
        if self.head_dim is None:
            for side in ("encoder", "decoder"):
                heads = getattr(self, f"{side}_heads")
                if heads > 0 and self.d_model % heads:
                    yield f"`d_model` ({self.d_model}) must be divisible by `{side}_heads` ({heads})"
        yield from self._layer_head_problems()
        if self.positions == "sinusoidal" and self.sinusoidal_layout == "sin_cos" and self.d_model % 2:
            yield "sinusoidal positions need an even `d_model`"
        if self.shared_embeddings and self.source_vocab_size != self.target_vocab_size:
            yield ("`shared_embeddings` needs equal vocabularies, but source has "
                   f"{self.source_vocab_size} and target {self.target_vocab_size}")
        if self.cached_self_kv_unnormed and not (self.pre_norm and self.decoder_autoreg == "self-attention"):
            yield "`cached_self_kv_unnormed` is only used with `pre_norm` and decoder self-attention"
        if self.final_norm and not self.pre_norm:
            yield "`final_norm` is only used with `pre_norm` (no known checkpoint normalises twice)"
        if self.norm == "rmsnorm" and self.positions in ("sinusoidal", "learned") and not self.pre_norm:
            yield "post-norm RMSNorm with absolute positions is not a known architecture"
        if self.positions == "relative" and self.relative_attention_num_buckets < 2:
            yield "`relative_attention_num_buckets` must be >= 2"
        for name in ("pad_token_id", "eos_token_id", "unk_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if not 0 <= value < self.target_vocab_size:
                yield f"`{name}` must be in [0, {self.target_vocab_size}), but is {value}"
        if self.position_offset < 0 or self.position_pad_index < 0:
            yield "position offsets must be >= 0"
        elif self.positions in ("learned", "sinusoidal"):
            rows = min(self.position_table_size("source"), self.position_table_size("target"))
            if self.position_pad_index >= rows:  # padding reads that row of the position table
                yield f"`position_pad_index` must be a row of the position tables (< {rows}), but is " \
                      f"{self.position_pad_index}"
        if self.bos_token_id is not None and not 0 <= self.bos_token_id < self.target_vocab_size:
            yield f"`bos_token_id` must be in [0, {self.target_vocab_size}), but is {self.bos_token_id}"
        if self.head_dim is not None and self.head_dim < 1:
            yield f"`head_dim` must be >= 1, but is {self.head_dim}"
        if not (math.isfinite(self.norm_eps) and self.norm_eps > 0):  # -1: a square root of a negative number
            yield f"`norm_eps` must be a number > 0, but is {self.norm_eps}"
        if self.attention_scale is not None and not (math.isfinite(self.attention_scale) and self.attention_scale > 0):
            yield f"`attention_scale` must be a number > 0, but is {self.attention_scale}"
        for name in ("max_source_positions", "max_target_positions"):
            if getattr(self, name) < 1:
                yield f"`{name}` must be >= 1, but is {getattr(self, name)}"

    def _layer_head_problems(self):
        for attention, side in _LAYER_HEADS.items():
            name = f"{attention}_layer_heads"
            counts = getattr(self, name)
            if counts is None:
                continue
            layers, uniform = getattr(self, f"{side}_layers"), getattr(self, f"{side}_heads")
            if len(counts) != layers:
                yield f"`{name}` must have one count per {side} layer ({layers}), but has {len(counts)}"
            if not all(isinstance(c, int) and c >= 1 for c in counts):
                yield f"every `{name}` count must be an integer >= 1, but they are {list(counts)}"
            elif any(c != uniform for c in counts):
                if self.head_dim is None:
                    yield f"`{name}` differs from `{side}_heads` ({uniform}), so `head_dim` must be given"
                if self.positions == "relative":
                    yield (f"`{name}` differs from `{side}_heads` ({uniform}), but the relative position "
                           "bias gives every layer the same heads")

    # ---- derived values -------------------------------------------------
    def layer_heads(self, attention: Literal["encoder", "decoder", "cross"]) -> tuple[int, ...]:
        """Head count of every layer's ``attention``: encoder self-attention,
        decoder self-attention or decoder cross-attention."""
        side = _LAYER_HEADS[attention]
        counts = getattr(self, f"{attention}_layer_heads")
        return counts if counts is not None else (getattr(self, f"{side}_heads"),) * getattr(self, f"{side}_layers")

    @property
    def encoder_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.encoder_heads

    @property
    def decoder_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.decoder_heads

    @property
    def vocab_rows(self) -> tuple[int, int]:
        """The (source, target) embedding rows, as :func:`modelport.tokenizers.load_tokenizer` checks them."""
        return self.source_vocab_size, self.target_vocab_size

    @property
    def embed_scale(self) -> float:
        return math.sqrt(self.d_model) if self.scale_embeddings else 1.0

    def approx_parameters(self) -> int:
        """About how many weights a model of this shape holds (its matrices and
        embeddings; biases and norms left out): enough to refuse, before
        building it, a shape no machine holds (``d_model`` 10**9)."""
        d = self.d_model
        encoder = self.encoder_layers * (4 * d * d + 2 * d * self.encoder_ffn_dim)
        decoder = self.decoder_layers * (8 * d * d + 2 * d * self.decoder_ffn_dim)
        return encoder + decoder + (self.source_vocab_size + self.target_vocab_size) * d

    def check_source_lengths(self, sources: Sequence[Sequence[int]], what: str = "") -> None:
        """Refuse the first source (ids, special tokens included) longer than the encoder reads;
        ``what`` follows the line number in the message (" of --data")."""
        for number, ids in enumerate(sources, 1):
            if len(ids) > self.max_source_positions:
                raise InvalidInputError(f"line {number}{what} has {len(ids)} tokens, but the model reads at most "
                                        f"{self.max_source_positions}")

    def position_table_size(self, side: Literal["source", "target"]) -> int:
        """Rows of a learned/sinusoidal table: offset rows plus max positions."""
        limit = self.max_source_positions if side == "source" else self.max_target_positions
        return limit + self.position_offset

    def architecture(self) -> dict[str, Any]:
        """The shape in brief, as ``inspect`` and ``convert`` print it (JSON-ready)."""
        return {
            "encoder_layers": self.encoder_layers, "decoder_layers": self.decoder_layers,
            "d_model": self.d_model, "heads": [self.encoder_heads, self.decoder_heads],
            "ffn_dim": [self.encoder_ffn_dim, self.decoder_ffn_dim],
            "vocab": [self.source_vocab_size, self.target_vocab_size],
            "norm": f"{'pre' if self.pre_norm else 'post'}-{self.norm}",
            "positions": self.positions, "activation": self.activation,
            "shared_embeddings": self.shared_embeddings, "tied_output": self.tie_output_embeddings,
        }

    # ---- (de)serialisation ---------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        """Build from JSON data (a ported folder's config.json): unknown
        fields, missing fields and values of the wrong JSON type are errors,
        all listed in one line."""
        if not isinstance(data, dict):
            raise ConfigError(f"a Seq2SeqConfig must be a JSON object, but is {_json_type(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [f"`{name}` is missing" for name, f in fields.items() if name not in data
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        return cls(**_checked_values(data, missing))

    def replace(self, **changes: Any) -> Seq2SeqConfig:
        """A copy with ``changes`` (for passes: pruned head counts, a smaller
        vocabulary, ...), checked as :meth:`from_dict` checks a config.json:
        unknown fields and values of the wrong type are errors, lists become
        tuples, and the new combination must be one the constructor accepts."""
        return dataclasses.replace(self, **_checked_values(changes))


def _checked_values(data: dict[str, Any], problems: list[str] | None = None) -> dict[str, Any]:
    """``data`` (field name -> value) with lists as tuples, after checking that
    every name is a field and every value has the field's type; all problems
    (``problems`` first) in one :class:`ConfigError`."""
    fields = {f.name for f in dataclasses.fields(Seq2SeqConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown Seq2SeqConfig fields: {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    hints = _field_types()
    problems = list(problems or []) + [p for name, value in data.items()
                                       if (p := _type_problem(name, value, hints[name]))]
    if problems:
        raise ConfigError("invalid Seq2SeqConfig: " + "; ".join(problems))
    # JSON has no tuples; the dataclass is frozen and hashable, so lists become tuples
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Seq2SeqConfig)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _type_problem(name: str, value: Any, hint: Any) -> str | None:
    """"`name` must be B, but is C" when JSON ``value`` does not fit the field's type."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    wanted = []
    for option in options:
        if option is type(None):
            continue
        origin = typing.get_origin(option)
        if option is bool:
            wanted.append("a boolean")
            ok = isinstance(value, bool)
        elif option is int:
            wanted.append("an integer")
            ok = _is_int(value)
        elif option is float:
            wanted.append("a finite number")
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        elif origin is Literal:  # the value itself is checked against the known ones in _problems
            wanted.append("a string")
            ok = isinstance(value, str)
        elif origin is tuple:
            wanted.append("a list of integers")
            ok = isinstance(value, (list, tuple)) and all(_is_int(x) for x in value)
        else:  # a field type this checker does not know: let the constructor decide
            return None
        if ok:
            return None
    shown = repr(value)
    if len(shown) > 40:
        shown = f"{_json_type(value)} ({shown[:30]}...)"
    return f"`{name}` must be {' or '.join(wanted)}{' or null' if type(None) in options else ''}, but is {shown}"


__all__ = ["Seq2SeqConfig", "CONFIG_FORMAT_VERSION"]
