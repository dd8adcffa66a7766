"""MarianNMT / OPUS-MT transformer models → the unified model.

Reads what Marian and OPUS-MT ship, without Marian itself:

* ``*.npz``: the weights, plus ``special:model.yml`` (the training
  configuration, a char array holding YAML), read with
  ``numpy.load(allow_pickle=False)``; or ``*.bin``, Marian's binary format
  (``marian-conv``/``pymarian convert``), float32/float16 items only;
* ``decoder.yml`` (OPUS-MT): which npz and vocabularies to use, and the
  decoding defaults (``beam-size``, ``normalize``, ``word-penalty``,
  ``max-length-factor``, ``allow-unk``, ``alignment``, ``shortlist``: its text
  file copied into the port's ``tokenizer/``); several ``models`` are an ensemble (members of one
  architecture, combined log-linearly with ``weights``). Every other
  marian-decoder 1.12 option is ignored on purpose (``HARMLESS``: threads,
  logging, devices) or refused by name (``REFUSED``, unknown keys, see
  :func:`decoder_refusals`); decoding keys in ``special:model.yml`` win over
  decoder.yml's, as in Marian;
* vocabularies: Marian YAML (``*.vocab.yml``, joint or separate) or
  SentencePiece models used directly as vocabularies (``vocabs:
  [source.spm, target.spm]``, ids are then the spm ids);
* ``source.spm``/``target.spm`` for the tokenizer;
* ``README.md``/``LICENSE`` (OPUS-MT), recorded in the provenance.

Marian in unified-config terms (``marian/src/models/transformer.h``): W
matrices stored ``[in, out]``; layer norm with eps 1e-6 after (``dan``) or
before (``n``/``da`` + top ``n``) each sublayer; embeddings scaled by
sqrt(dim) and sinusoidal positions added (sines then cosines, frequencies
``exp(-i log(10000) / (dim/2 - 1))``, positions from 0), also when the npz
holds a learned ``Wpos`` (marian-decoder ignores it: see
``LEARNED_POSITIONS``); ``gelu`` the exact erf GELU; an FFN of
``transformer-ffn-depth`` layers; logits bias ``decoder_ff_logit_out_b``; the
decoder starts from an all-zero embedding vector.

Marian has no padding symbol (it pads with ``</s>`` and masks). Like
transformers' conversion, ``<pad>`` is appended after the last id: the
embedding tables get zero rows up to it and its logit is -inf, so it is
never produced and the log-probs over the real vocabulary are Marian's.

Marian's SSRU decoder (``transformer-decoder-autoreg: rnn`` with ``dec-cell:
ssru``, Bergamot's fast students) maps onto ``decoder_autoreg="ssru"``: the
self-attention block of each decoder layer is the recurrence of
:class:`~modelport.model.layers.SSRU` (see ``SSRU_TABLE`` for the names).

Known deviations of the parity references from Marian (the port follows
Marian): CTranslate2 and transformers compute the sinusoidal frequencies with
``dim/2`` instead of ``dim/2 - 1``; CTranslate2 adds ``Wpos`` whenever the
npz holds it and computes ``gelu`` as x * sigmoid(1.702 x) (Marian before
1.12); transformers' layer norm eps is 1e-5.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece
import torch
import yaml

from modelport import values
from modelport.converters.base import (ON_OFF, Converter, KeyMapper, MappedWeights, Rule, TensorShapeError,
                                      TokenizerAssets, drop, one_line, option_type_problems, register_converter,
                                      short_repr, source_root)
from modelport.errors import (
    CorruptCheckpointError,
    InvalidInputError,
    ResourceLimitError,
    UnsupportedCheckpointError,
)
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import TOKENIZER_DIR
from modelport.tokenizers.marian_shortlist import GZIP_MAGIC, ShortlistSpec, open_shortlist, read_entries
from modelport.tokenizers.sentencepiece import read_marian_vocab, save_marian
from modelport.values import Kind, fits_float32

# ---------------------------------------------------------------------------
# options

# Marian's `gelu` is the exact erf GELU since 1.12 (marian-dev PR 28128, March 2023: GeluNodeOp in
# src/graph/node_operators_unary.h); before, it was x * sigmoid(1.702 x). The port computes what today's
# marian-decoder computes, whatever version trained the model (see GELU_NOTE).
ACTIVATIONS = {"swish": "silu", "relu": "relu", "gelu": "gelu"}
GELU_NOTE = ("Marian's `gelu` is computed as the exact erf GELU, as marian-decoder 1.12 and later compute it; "
             "Marian before 1.12 computed x * sigmoid(1.702 x)")
# Marian's transformer adds a learned position matrix `Wpos` only under `transformer-train-positions`
# (src/models/transformer.h addSpecialEmbeddings), a key its command line stopped writing in January 2019
# (renamed `--transformer-train-position-embeddings`, which only Marian's BERT-style models read): under the
# new key marian-decoder ignores `Wpos` and adds sinusoidal positions, and so does the port. Under the old key
# marian-decoder 1.12 aborts (its position Embedding layer asks for an option `inference` that decoding never
# sets), so there is no Marian behaviour to reproduce: refused.
LEARNED_POSITIONS = "transformer-train-positions"
WPOS_IGNORED = ("not used by marian-decoder: its transformer reads `transformer-train-positions`, not "
                "`transformer-train-position-embeddings`, and adds sinusoidal positions")
# decoders of Marian's fast students that the unified model does not have
REFUSED_AUTOREG = {
    "average-attention": "the average-attention (AAN) decoder is not supported",
}
# --transformer-decoder-autoreg rnn: the --dec-cell values the unified model runs
# (marian-dev src/rnn/constructors.h builds the cell by this name)
RNN_CELLS = ("ssru",)
# Marian's defaults for options an older model.yml may lack
DEFAULTS: dict[str, Any] = {
    "type": "transformer", "transformer-heads": 8, "transformer-dim-ffn": 2048, "transformer-ffn-depth": 2,
    "transformer-decoder-dim-ffn": 0, "transformer-decoder-ffn-depth": 0, "transformer-ffn-activation": "swish",
    "transformer-decoder-autoreg": "self-attention", "transformer-preprocess": "", "transformer-postprocess": "dan",
    "transformer-postprocess-emb": "d", "transformer-postprocess-top": "", "transformer-no-projection": False,
    "transformer-pool": False, "transformer-tied-layers": [], "tied-embeddings": False,
    "tied-embeddings-src": False, "tied-embeddings-all": False, "output-omit-bias": False, "right-left": False,
    "ulr": False, "factors-dim-emb": 0, "lemma-dim-emb": 0, "dec-cell": "gru", "max-length": 50,
    LEARNED_POSITIONS: False,
}
REQUIRED = ("dim-emb", "enc-depth", "dec-depth", "dim-vocabs")
NORM_EPS = 1e-6  # marian::layerNorm(x, scale, bias, 1e-6f) in transformer.h
SINUSOIDAL_POSITIONS = 1024
# decoder.yml key -> (generation_config key, Marian's default)
DECODER_DEFAULTS = {"beam-size": ("beam_size", 12), "normalize": ("normalize", 0.0),
                    "word-penalty": ("word_penalty", 0.0), "max-length-factor": ("max_length_factor", 3.0),
                    "max-length": ("max_length", 1000), "max-length-crop": ("max_length_crop", False),
                    "n-best": ("n_best", False), "allow-unk": ("allow_unk", False),
                    # marian-decoder's batching: it sets each line's length cap (generation/marian_batching.py)
                    "mini-batch": ("mini_batch", 1), "maxi-batch": ("maxi_batch", 1),
                    "maxi-batch-sort": ("maxi_batch_sort", "none"), "mini-batch-words": ("mini_batch_words", 0)}
MAXI_BATCH_SORTS = ("none", "src", "trg")

# Every option marian-decoder 1.12 accepts in a decoder.yml, by what the converter does with it.
# Honoured: recorded in generation_config.json (DECODER_DEFAULTS, weights, allow-unk, alignment,
# shortlist) or used to find the files (models, vocabs, relative-paths: paths are read relative to
# the model directory, as OPUS-MT's `relative-paths: true` says, and a copied file must stay inside it).
HONOURED = frozenset({*DECODER_DEFAULTS, "weights", "allow-unk", "alignment", "shortlist", "models", "vocabs",
                      "relative-paths"})
# ignored on purpose: they change how Marian runs or logs, not what it translates
HARMLESS: dict[str, str] = {
    **dict.fromkeys(("authors", "cite", "build-info", "dump-config"), "an action of Marian's command line"),
    "config": "Marian reads further config files only from its command line",
    **dict.fromkeys(("version", "special-vocab", "num-devices"), "skipped by Marian (an older version's option)"),
    **dict.fromkeys(("workspace", "model-mmap", "cpu-threads", "devices", "data-threads"),
                    "memory, threads and devices"),
    **dict.fromkeys(("log", "log-level", "log-time-zone", "quiet", "quiet-translation", "stat-freq"), "logging"),
    **dict.fromkeys(("input", "output"), "files (translate has -i/-o)"),
    "word-scores": "what an n-best line prints (translate --json has each token's score)",
    "seed": "read only by --output-sampling (refused when set)",
    "check-nan": "a training check",
    "quantize-range": "read only by a quantized --gemm-type (refused)",
    "tsv-fields": "read only with --tsv (refused when set)",
}
_FP32 = "remove it from decoder.yml to convert the fp32 model (`modelport quantize` makes smaller ports)"
# output-changing and not reproduced: refused by name when set (value -> whether it is set, what to do)
REFUSED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "ignore-model-config": (bool, "Marian then builds the model from decoder.yml instead of special:model.yml; "
                                  "remove it"),
    "interpolate-env-vars": (bool, "paths with environment variables; write the paths out and remove it"),
    "encryption-key-path": (bool, "encrypted models are not supported; decrypt the model and remove it"),
    "allow-special": (bool, "special symbols in the output are not supported; remove it"),
    "force-decode": (bool, "forced decoding of prefixes is not supported; remove it"),
    "no-spm-decode": (bool, "translate prints text, not SentencePiece pieces; remove it"),
    "no-spm-encode": (bool, "translate reads text, not SentencePiece pieces; remove it"),
    "tsv": (bool, "tab-separated input is not supported; remove it"),
    "input-reorder": (bool, "multi-source input is not supported; remove it"),
    "input-join-fields": (bool, "multi-source input is not supported; remove it"),
    "fp16": (bool, "half-precision decoding; " + _FP32),
    "precision": (lambda v: (v if isinstance(v, str) else (list(v or []) or ["float32"])[0]) != "float32",
                  "decoding in another precision than float32; " + _FP32),
    "optimize": (bool, "Marian's optimised int16 GEMM; " + _FP32),
    "gemm-type": (lambda v: v not in (None, "float32"), "quantized GEMM; " + _FP32),
    "skip-cost": (bool, "scores without the model's cost (other translations with beam-size > 1); remove it"),
    "output-sampling": (bool, "Marian's sampling is not supported; remove it (translate --sampling samples by "
                              "modelport's rules)"),
    "output-approx-knn": (bool, "the approximate-kNN output layer is not supported; remove it (a shortlist is)"),
}
# Marian's model options: Marian lays the model's special:model.yml over them (Config::loadModelParameters,
# createScorers), so in decoder.yml they are harmless when the model's options agree or hold the key
MODEL_OPTIONS = frozenset("""type dim-vocabs dim-emb factors-dim-emb factors-combine lemma-dependency lemma-dim-emb
    dim-rnn enc-type enc-cell enc-cell-depth enc-depth dec-cell dec-cell-base-depth dec-cell-high-depth dec-depth skip
    layer-normalization right-left input-types best-deep tied-embeddings tied-embeddings-src tied-embeddings-all
    output-omit-bias transformer-heads transformer-no-projection transformer-rnn-projection transformer-pool
    transformer-dim-ffn transformer-decoder-dim-ffn transformer-ffn-depth transformer-decoder-ffn-depth
    transformer-ffn-activation transformer-dim-aan transformer-aan-depth transformer-aan-activation
    transformer-aan-nogate transformer-decoder-autoreg transformer-tied-layers transformer-guided-alignment-layer
    transformer-preprocess transformer-postprocess-emb transformer-postprocess transformer-postprocess-top
    transformer-train-position-embeddings transformer-depth-scaling transformer-attention-mask transformer-alibi-shift
    separator-symbol transformer-disable-position-embeddings transformer-alibi-trainable alibi transformer-no-bias
    transformer-no-affine bert-mask-symbol bert-sep-symbol bert-class-symbol bert-masking-fraction
    bert-train-type-embeddings bert-type-vocab-size comet-final-sigmoid comet-stop-grad comet-mix comet-mix-norm
    comet-pool comet-mix-transformation comet-dropout comet-mixup comet-mixup-reg comet-augment-bad comet-pooler-ffn
    comet-prepend-zero comet-use-separator""".split())
# decoding keys special:model.yml may also hold: Marian lays them over decoder.yml (Config::loadModelParameters
# overrides every key with the first model's), files excepted here
_FILE_KEYS = ("models", "vocabs", "shortlist", "relative-paths", "input", "output", "config")
DECODING_KEYS = (HONOURED | HARMLESS.keys() | REFUSED.keys()).difference(_FILE_KEYS)
ALIGNMENT_MODES = ("hard", "soft")
# the shortlist's name inside the port's tokenizer/ (it maps the tokenizer's pieces; passes and exports copy it)
SHORTLIST_NAME = "lex.s2t"


def decoding_config(decoder: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """decoder.yml as marian-decoder runs it: the decoding keys of the (first) model's special:model.yml laid
    over it, as Config::loadModelParameters overrides every key with the model's."""
    return {**decoder, **{k: v for k, v in raw.items() if k in DECODING_KEYS}}


def decoder_refusals(decoder: Mapping[str, Any], raw: Mapping[str, Any], opts: Mapping[str, Any]) -> list[str]:
    """Every decoder.yml option that changes Marian's output and is not reproduced, by its name.

    An option marian-decoder 1.12 does not know is refused, not noted: Marian 1.12 refuses such a file itself
    ("There are option(s) in a config file that are not expected"), so there is no reference output to
    reproduce, and such keys (Bergamot's gemm-precision, max-length-break, ssplit-mode) come from forks whose
    decoding differs; a port that quietly dropped them would claim a parity it does not have."""
    known = HONOURED | HARMLESS.keys() | REFUSED.keys() | MODEL_OPTIONS
    problems = []
    unknown = [k for k in decoder if k not in known]
    if unknown:
        problems.append("decoder.yml option(s) " + ", ".join(f"--{k}" for k in unknown) + " are not options of "
                        "marian-decoder 1.12, which refuses them too (another build's, e.g. Bergamot's; remove "
                        "them)")
    effective = decoding_config(decoder, raw)
    for key, (is_set, why) in REFUSED.items():
        if effective.get(key) is not None and is_set(effective[key]):
            problems.append(f"Option --{key} {short_repr(effective[key])} is not supported ({why})")
    for key in (k for k in decoder if k in MODEL_OPTIONS and k not in raw and decoder[k] != opts.get(k)):
        problems.append(f"Option --{key} {short_repr(decoder[key])} in decoder.yml is not supported: the model's "
                        "special:model.yml lacks it, so Marian would build the model with it (remove it)")
    return problems


def alignment_mode(value: Any) -> str | float | None:
    """decoder.yml's ``alignment`` (marian-decoder --alignment): "hard", "soft", a threshold > 0, or None.
    The rule of generation/alignment.py's ``parse_alignment``, written here again on purpose: converters may
    not import generation, and a shared copy in the tokenizers package would make ``import modelport.cli``
    (whose translate command parses ``--alignment``) load torch through that package."""
    if value is None or value is False or value == "":
        return None
    text = str(value).strip().lower()
    if text in ALIGNMENT_MODES:
        return text
    try:
        threshold = float(text)
    except ValueError:
        threshold = math.nan
    if value is True or not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"decoder.yml: `alignment` must be hard, soft or a threshold number > 0, but is "
                                f"{short_repr(value)}")
    return threshold


def shortlist_spec(decoder: Mapping[str, Any], directory: Path, root: Path) -> ShortlistSpec | None:
    """decoder.yml's ``shortlist`` (FILE [FIRST [BEST [THRESHOLD]]]) with FILE resolved in the model
    directory as ``models``/``vocabs`` are; a file that resolves outside ``root`` (the source folder) is
    refused before it is read, as are a missing and a binary one."""
    value = decoder.get("shortlist")
    if value is None or value is False or value == [] or value == "":
        return None
    values = list(value) if isinstance(value, list) else [value]
    real = _resolved_inside(directory, str(values[0]), "shortlist", root)
    open_shortlist(real).close()  # a missing or binary file, before its values are read
    return dataclasses.replace(ShortlistSpec.parse(values), path=real)




def _ops(value: Any) -> str:
    """Marian's pre/post-processing op string without ``d`` (dropout, a no-op at inference)."""
    return str(value or "").replace("d", "")


def resolve_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``special:model.yml`` with Marian's defaults for the options it lacks."""
    return {**DEFAULTS, **raw}


# value kinds of the options read into the unified config and of decoder.yml's decoding defaults
OPTION_KINDS: dict[str, Kind] = {
    **{k: values.POSITIVE_INTEGER for k in ("dim-emb", "enc-depth", "dec-depth", "transformer-heads",
                                            "transformer-dim-ffn", "transformer-ffn-depth")},
    **{k: values.COUNT for k in ("transformer-decoder-dim-ffn", "transformer-decoder-ffn-depth", "max-length")},
    **{k: values.TEXT for k in ("transformer-ffn-activation", "transformer-decoder-autoreg", "type",
                                "transformer-preprocess", "transformer-postprocess", "transformer-postprocess-emb",
                                "transformer-postprocess-top")},
    "dim-vocabs": values.INTEGER_LIST, LEARNED_POSITIONS: ON_OFF}
DECODER_KINDS: dict[str, Kind] = {
    "beam-size": values.POSITIVE_INTEGER, "normalize": values.NONNEGATIVE_FLOAT32, "word-penalty": values.FLOAT32,
    "max-length-factor": values.POSITIVE_FLOAT32, "max-length": values.COUNT, "max-length-crop": ON_OFF,
    "n-best": ON_OFF, "mini-batch": values.POSITIVE_INTEGER, "maxi-batch": values.POSITIVE_INTEGER,
    "maxi-batch-sort": values.TEXT, "mini-batch-words": values.COUNT, "allow-unk": ON_OFF}


def _flag(key: str) -> str:
    return f"--{key}"


def check_options(opts: Mapping[str, Any]) -> list[str]:
    """Every unsupported option, in Marian's own option names, with what is supported."""
    problems: list[str] = []
    missing = [k for k in REQUIRED if opts.get(k) is None]
    if missing:
        problems.append("special:model.yml has no " + ", ".join(f"--{k}" for k in missing)
                        + f" (required: {', '.join('--' + k for k in REQUIRED)})")
    problems += option_type_problems(opts, OPTION_KINDS, _flag)
    dims = opts.get("dim-vocabs")
    if isinstance(dims, (list, tuple)) and (len(dims) != 2 or not all(type(d) is int and d > 0 for d in dims)):
        problems.append(f"`--dim-vocabs` must be two positive integers, but is {short_repr(dims)}")
    if problems:  # the checks below read these values
        return problems
    if opts["type"] != "transformer":
        problems.append(f"Option --type {opts['type']} is not supported (supported: transformer)")
    if opts[LEARNED_POSITIONS]:
        problems.append(f"Option {LEARNED_POSITIONS} true (learned positions, `Wpos`) is not supported: "
                        "marian-decoder 1.12 aborts on such a model (`Required option 'inference' has not been "
                        "set`), so there is no Marian behaviour to reproduce")
    autoreg = opts["transformer-decoder-autoreg"]
    if autoreg in REFUSED_AUTOREG:
        problems.append(f"Option --transformer-decoder-autoreg {autoreg} is not supported: "
                        + REFUSED_AUTOREG[autoreg] + " (supported: self-attention, rnn)")
    elif autoreg == "rnn":
        cell = opts.get("dec-cell")
        if cell not in RNN_CELLS:
            problems.append(f"Option --dec-cell {cell} with --transformer-decoder-autoreg rnn is not supported "
                            f"(supported: {', '.join(RNN_CELLS)})")
        if opts.get("layer-normalization"):
            # SSRU's layer-normalised variant (_gamma, _gammaf in src/rnn/cells.h)
            problems.append("Option --layer-normalization true with --transformer-decoder-autoreg rnn is not "
                            "supported (supported: false)")
    elif autoreg != "self-attention":
        problems.append(f"Option --transformer-decoder-autoreg {autoreg} is not supported (supported: "
                        "self-attention, rnn)")
    act = opts["transformer-ffn-activation"]
    if act not in ACTIVATIONS:
        problems.append(f"Option --transformer-ffn-activation {act} is not supported "
                        f"(supported: {', '.join(ACTIVATIONS)})")
    for key in ("transformer-no-projection", "transformer-pool", "right-left", "ulr"):
        if opts.get(key):
            problems.append(f"Option --{key} is not supported (supported: false)")
    if opts.get("transformer-tied-layers"):
        problems.append(f"Option --transformer-tied-layers {opts['transformer-tied-layers']} is not supported "
                        "(supported: [])")
    for key in ("factors-dim-emb", "lemma-dim-emb"):
        if opts.get(key):
            problems.append(f"Option --{key} {opts[key]} is not supported (supported: 0; factored vocabularies "
                            "are not supported)")
    depth = opts["transformer-ffn-depth"]
    if not isinstance(depth, int) or depth < 2:
        problems.append(f"Option --transformer-ffn-depth {depth} is not supported (supported: 2 or more)")
    dec_depth = opts["transformer-decoder-ffn-depth"]
    if dec_depth not in (0, depth):
        problems.append(f"Option --transformer-decoder-ffn-depth {dec_depth} with --transformer-ffn-depth {depth} "
                        "is not supported (supported: 0 or the same depth)")
    pre, post, top = (_ops(opts[k]) for k in ("transformer-preprocess", "transformer-postprocess",
                                              "transformer-postprocess-top"))
    if (pre, post) not in (("", "an"), ("n", "a")):
        problems.append(f"Option --transformer-preprocess '{opts['transformer-preprocess']}' with "
                        f"--transformer-postprocess '{opts['transformer-postprocess']}' is not supported "
                        "(supported: '' with 'dan' (post-norm), 'n' with 'da' (pre-norm))")
    elif top not in (("", "n") if pre == "n" else ("",)):
        problems.append(f"Option --transformer-postprocess-top '{opts['transformer-postprocess-top']}' is not "
                        f"supported with --transformer-preprocess '{opts['transformer-preprocess']}' (supported: "
                        + ("'' or 'n'" if pre == "n" else "''") + ")")
    emb = _ops(opts["transformer-postprocess-emb"])
    if emb not in ("", "n"):
        problems.append(f"Option --transformer-postprocess-emb '{opts['transformer-postprocess-emb']}' is not "
                        "supported (supported: '', 'd', 'n', 'nd')")
    dim, heads = opts.get("dim-emb"), opts["transformer-heads"]
    if isinstance(dim, int) and isinstance(heads, int) and heads > 0 and dim % heads:
        problems.append(f"Option --transformer-heads {heads} with --dim-emb {dim} is not supported (supported: "
                        "a divisor of --dim-emb)")
    vocabs = opts.get("dim-vocabs")
    if vocabs is not None and (not isinstance(vocabs, list) or len(vocabs) != 2):
        problems.append(f"Option --dim-vocabs {vocabs} is not supported (supported: one source and one target "
                        "vocabulary; multi-source models are not supported)")
    if (opts["tied-embeddings-all"] or opts["tied-embeddings-src"]) and isinstance(vocabs, list) \
            and len(vocabs) == 2 and vocabs[0] != vocabs[1]:
        problems.append(f"Option --tied-embeddings-all/--tied-embeddings-src with --dim-vocabs {vocabs} is not "
                        "supported (supported: equal vocabulary sizes)")
    return problems


def build_config(opts: Mapping[str, Any], vocab_rows: int, pad: int, eos: int, unk: int) -> Seq2SeqConfig:
    """The unified config of checked Marian options. ``vocab_rows`` includes
    the appended pad row. Positions are sinusoidal (see ``LEARNED_POSITIONS``)."""
    ffn = opts["transformer-dim-ffn"]
    return Seq2SeqConfig(
        encoder_layers=opts["enc-depth"], decoder_layers=opts["dec-depth"], d_model=opts["dim-emb"],
        encoder_heads=opts["transformer-heads"], decoder_heads=opts["transformer-heads"],
        encoder_ffn_dim=ffn, decoder_ffn_dim=opts["transformer-decoder-dim-ffn"] or ffn,
        source_vocab_size=vocab_rows, target_vocab_size=vocab_rows,
        activation=ACTIVATIONS[opts["transformer-ffn-activation"]], ffn_depth=opts["transformer-ffn-depth"],
        norm="layernorm", norm_eps=NORM_EPS, pre_norm=_ops(opts["transformer-preprocess"]) == "n",
        # marian-decoder's incremental self-attention reads the cached raw inputs (transformer.h)
        cached_self_kv_unnormed=(_ops(opts["transformer-preprocess"]) == "n"
                                 and opts["transformer-decoder-autoreg"] != "rnn"),
        final_norm=_ops(opts["transformer-postprocess-top"]) == "n",
        layernorm_embedding=_ops(opts["transformer-postprocess-emb"]) == "n",
        positions="sinusoidal", sinusoidal_layout="sin_cos",
        sinusoidal_denominator_minus_one=True, position_offset=0, position_pad_index=0,
        max_source_positions=SINUSOIDAL_POSITIONS, max_target_positions=SINUSOIDAL_POSITIONS,
        scale_embeddings=True,  # by sqrt(dim), transformer.h's sinusoidal branch
        shared_embeddings=bool(opts["tied-embeddings-all"] or opts["tied-embeddings-src"]),
        tie_output_embeddings=bool(opts["tied-embeddings-all"] or opts["tied-embeddings"]),
        final_logits_bias=True, mask_target_padding=True, attention_bias=True, ffn_bias=True,
        pad_token_id=pad, eos_token_id=eos, bos_token_id=None, unk_token_id=unk,
        decoder_start_token_id=pad, decoder_start_zero_embedding=True,
        decoder_autoreg="ssru" if opts["transformer-decoder-autoreg"] == "rnn" else "self-attention",
    )


# ---------------------------------------------------------------------------
# weights

# Per-layer Marian name (after "{side}_l{n}_") -> unified name (after
# "{side}.layers.{n-1}."). {ln} is "" (post-norm) or "_pre" (pre-norm).
# FFN matrices W1..Wdepth are mapped by ffn_slot().
_ATTN = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}
LAYER_TABLE: dict[str, str] = {}
for _marian, _unified in (("self", "self_attn"), ("context", "cross_attn")):
    for _p, _u in _ATTN.items():
        LAYER_TABLE[f"{_marian}_W{_p}"] = f"{_unified}.{_u}.weight"
        LAYER_TABLE[f"{_marian}_b{_p}"] = f"{_unified}.{_u}.bias"
    LAYER_TABLE[f"{_marian}_Wo_ln_scale{{ln}}"] = f"{_unified}_norm.weight"
    LAYER_TABLE[f"{_marian}_Wo_ln_bias{{ln}}"] = f"{_unified}_norm.bias"
LAYER_TABLE["ffn_ffn_ln_scale{ln}"] = "ffn_norm.weight"
LAYER_TABLE["ffn_ffn_ln_bias{ln}"] = "ffn_norm.bias"

# Decoder layers of --transformer-decoder-autoreg rnn with --dec-cell ssru
# (marian-dev src/models/transformer.h DecoderLayerRNN, src/rnn/cells.h SSRU):
# the cell's prefix is "decoder_l{n}_rnn"; W [dim, dim] has no bias, Wf/bf
# the forget gate. The block is pre-processed under "..._rnn" (layer norm
# "_rnn_ln_*_pre") but post-processed under "..._rnn_ffn" ("_rnn_ffn_ln_*").
SSRU_TABLE: dict[str, str] = {"rnn_W": "ssru.in_proj.weight", "rnn_Wf": "ssru.forget_proj.weight",
                              "rnn_bf": "ssru.forget_proj.bias"}
SSRU_NORM = {"_pre": {"rnn_ln_scale_pre": "ssru_norm.weight", "rnn_ln_bias_pre": "ssru_norm.bias"},
             "": {"rnn_ffn_ln_scale": "ssru_norm.weight", "rnn_ffn_ln_bias": "ssru_norm.bias"}}

# Marian name -> unified name, outside the layers (embeddings are resolve_embeddings()'s)
GLOBAL_TABLE: dict[str, str] = {}
for _side in ("encoder", "decoder"):
    GLOBAL_TABLE[f"{_side}_emb_ln_scale_pre"] = f"{_side}.embed.layernorm_embedding.weight"
    GLOBAL_TABLE[f"{_side}_emb_ln_bias_pre"] = f"{_side}.embed.layernorm_embedding.bias"
    GLOBAL_TABLE[f"{_side}_top_ln_scale"] = f"{_side}.final_norm.weight"
    GLOBAL_TABLE[f"{_side}_top_ln_bias"] = f"{_side}.final_norm.bias"

IGNORED = {"special:model.yml": "Marian's training configuration; read as the model options"}
UNMATCHED = "Marian tensor `{}` has no slot in the unified model (unknown tensor; not dropped silently)"


def ffn_slot(index: int, depth: int) -> str | None:
    """Unified name (after ``ffn.``) of Marian's ``ffn_W``/``ffn_b`` number
    ``index`` counted from 0 (Marian's ``W1`` is 0) in an FFN of ``depth``
    layers: the first is ``up``, the last ``down``, the ones between ``inner.{i}``."""
    if not 0 <= index < depth:
        return None
    return "up" if index == 0 else "down" if index == depth - 1 else f"inner.{index - 1}"


def _linear(w: np.ndarray) -> torch.Tensor:
    """Marian stores W as ``[in, out]``; torch's Linear wants ``[out, in]``."""
    return torch.from_numpy(np.ascontiguousarray(w.T))


def _vector(b: np.ndarray) -> torch.Tensor:
    """Biases and norm parameters are stored as ``[1, dim]``; another layout of as many numbers
    (``[2, dim / 2]``) is no Marian parameter, whose shape Marian checks on load."""
    if b.ndim != 2 or b.shape[0] != 1:
        raise TensorShapeError(f"has shape {list(b.shape)}, but Marian stores a bias or norm parameter as [1, dim]")
    return torch.from_numpy(np.ascontiguousarray(b.reshape(-1)))


def pad_rows(table: np.ndarray, rows: int) -> torch.Tensor:
    """``table`` with zero rows appended up to ``rows``: Marian has no pad
    symbol, the unified model needs one (see the module docstring)."""
    out = torch.zeros(rows, table.shape[1], dtype=torch.float32)
    out[: table.shape[0]] = torch.from_numpy(table.astype(np.float32, copy=False))
    return out


def _rule(target: str) -> Rule:
    """A per-layer or global rule: matrices transposed, vectors flattened."""
    return Rule(target, _linear if target.endswith(".weight") and "norm" not in target else _vector)


def _ffn_rule(side: str, kind: str, depth: int) -> Rule:
    """``{side}_l{n}_ffn_W{i}`` (``kind`` weight) or ``..._ffn_b{i}`` (bias)."""

    def target(layer: str, index: str) -> str | None:
        slot = ffn_slot(int(index), depth)
        return None if slot is None else f"{side}.layers.{layer}.ffn.{slot}.{kind}"

    return Rule(target, _linear if kind == "weight" else _vector)


def weight_table(opts: Mapping[str, Any]) -> dict[str, Rule]:
    """The name table of a Marian model with checked options ``opts``, for a
    :class:`KeyMapper` counting layers (and FFN matrices) from 1, as Marian does."""
    ln = "_pre" if _ops(opts["transformer-preprocess"]) == "n" else ""
    layer = {k.format(ln=ln): v for k, v in LAYER_TABLE.items()}
    # an SSRU decoder has no self-attention: a decoder `_self_` tensor is then unknown
    decoder_layer = ({**{k: v for k, v in layer.items() if not v.startswith("self_attn")}, **SSRU_TABLE,
                      **SSRU_NORM[ln]} if opts["transformer-decoder-autoreg"] == "rnn" else layer)
    depth = opts["transformer-ffn-depth"]
    table: dict[str, Rule] = {key: drop(reason) for key, reason in IGNORED.items()}
    table.update({key: Rule(target, _vector) for key, target in GLOBAL_TABLE.items()})
    table["Wpos"] = drop(WPOS_IGNORED)
    for side, names in (("encoder", layer), ("decoder", decoder_layer)):
        table.update({f"{side}_l{{}}_{key}": _rule(f"{side}.layers.{{}}.{target}") for key, target in names.items()})
        table[f"{side}_l{{}}_ffn_W{{}}"] = _ffn_rule(side, "weight", depth)
        table[f"{side}_l{{}}_ffn_b{{}}"] = _ffn_rule(side, "bias", depth)
    return table


def resolve_embeddings(mapper: KeyMapper, opts: Mapping[str, Any], rows: int, v_src: int,
                       v_tgt: int) -> list[tuple[str, torch.Tensor]]:
    """The embedding, output and logits-bias slots (problems go to ``mapper.problems``).

    Marian's tying: ``tied-embeddings-all``/``-src`` share one ``Wemb``
    between encoder and decoder (else ``encoder_Wemb``/``decoder_Wemb``);
    ``tied-embeddings``/``-all`` reuse the decoder embedding as the output
    matrix (else ``decoder_ff_logit_out_Wt``, ``[vocab, dim]``, or in older
    models ``decoder_ff_logit_out_W``, ``[dim, vocab]``)."""
    arrays, problems = mapper.state, mapper.problems
    out: list[tuple[str, torch.Tensor]] = []
    shared = bool(opts["tied-embeddings-all"] or opts["tied-embeddings-src"])
    names = ("Wemb", "Wemb") if shared else ("encoder_Wemb", "decoder_Wemb")
    tables = {}
    for side, name, vocab in (("encoder", names[0], v_src), ("decoder", names[1], v_tgt)):
        if name not in arrays:
            problems.append(f"Marian tensor `{name}` is missing (the {side} embedding; "
                            f"--tied-embeddings-all {opts['tied-embeddings-all']}, "
                            f"--tied-embeddings-src {opts['tied-embeddings-src']})")
            return out
        if name not in tables:
            table = mapper.take(name)
            if table.ndim != 2 or table.shape[0] != vocab:
                problems.append(f"Marian tensor `{name}` has shape {list(table.shape)}, but --dim-vocabs "
                                f"says {vocab} rows")
                return out
            tables[name] = pad_rows(table, rows)
        out.append((f"{side}.embed.embed_tokens.weight", tables[name]))
    if not (opts["tied-embeddings-all"] or opts["tied-embeddings"]):
        # src/layers/output.cpp: `_Wt` [vocab, dim] as Marian 1.12 writes it; older models hold `_W` [dim, vocab]
        legacy = "decoder_ff_logit_out_W" in arrays
        name = "decoder_ff_logit_out_W" if legacy else "decoder_ff_logit_out_Wt"
        if name not in arrays:
            problems.append("Marian tensor `decoder_ff_logit_out_Wt` (or the older `decoder_ff_logit_out_W`) "
                            "is missing (the output matrix of an untied model)")
        else:
            w = mapper.take(name)
            w = w.T if legacy and w.ndim == 2 else w
            if w.ndim != 2 or w.shape[0] != v_tgt:
                problems.append(f"Marian tensor `{name}` has shape {list(w.shape)}, but must be "
                                + (f"[dim-emb, {v_tgt}]" if legacy else f"[{v_tgt}, dim-emb]") + " (--dim-vocabs)")
            else:
                out.append(("lm_head.weight", pad_rows(np.ascontiguousarray(w), rows)))
    bias = torch.zeros(rows, dtype=torch.float32)
    if "decoder_ff_logit_out_b" in arrays:
        b = mapper.take("decoder_ff_logit_out_b")
        if list(b.shape) != [1, v_tgt]:
            problems.append(f"Marian tensor `decoder_ff_logit_out_b` has shape {list(b.shape)}, but must be "
                            f"[1, {v_tgt}] (--dim-vocabs)")
            return out
        b = b.reshape(-1)
        bias[:v_tgt] = torch.from_numpy(b.astype(np.float32, copy=False))
    elif not opts["output-omit-bias"]:
        problems.append("Marian tensor `decoder_ff_logit_out_b` is missing (pass a model trained with "
                        "--output-omit-bias, or the complete npz)")
    bias[v_tgt:] = float("-inf")  # the appended pad (and filler) rows are never produced
    out.append(("final_logits_bias", bias))
    return out


def check_ffn_depth(arrays: Mapping[str, np.ndarray], depth: int) -> list[str]:
    """``transformer-ffn-depth`` against the FFN matrices the npz holds, so a
    third layer is never dropped (nor a missing one invented)."""
    found = [int(m.group(1)) for k in arrays if (m := re.fullmatch(r"(?:encoder|decoder)_l\d+_ffn_W(\d+)", k))]
    if found and max(found) != depth:
        return [f"Option --transformer-ffn-depth {depth} does not match the npz, whose FFNs have {max(found)} "
                f"layers (ffn_W1..ffn_W{max(found)})"]
    return []


def map_weights(source: str, arrays: Mapping[str, np.ndarray], opts: Mapping[str, Any], rows: int,
                v_src: int, v_tgt: int) -> tuple[list[tuple[str, torch.Tensor]], dict[str, str]]:
    """Map every npz tensor; unknown or missing tensors are all reported together."""
    mapper = KeyMapper(arrays, weight_table(opts), first_index=1, unmatched=UNMATCHED)
    mapper.problems += check_ffn_depth(arrays, opts["transformer-ffn-depth"])
    out = resolve_embeddings(mapper, opts, rows, v_src, v_tgt)
    out += mapper.apply()
    mapper.check(source)
    return out, mapper.dropped


# ---------------------------------------------------------------------------
# files


# decompressed bytes of deflated npz members (np.savez_compressed) beyond the
# archive's own size that a file may claim before it is called a zip bomb
NPZ_INFLATION_SLACK = 256 * 1024**2
NPZ_MAX_INFLATION = 16


def _check_npz_members(path: Path) -> None:
    """Every member's declared array (from its .npy header) fits the bytes the
    member holds, and compressed members inflate to a bounded size, before
    numpy allocates anything."""
    size = path.stat().st_size
    inflated = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                inflated += info.file_size
                if inflated > NPZ_MAX_INFLATION * size + NPZ_INFLATION_SLACK:
                    raise ResourceLimitError(str(path), "the decompressed size of its compressed members",
                                             f"{NPZ_MAX_INFLATION}x the file + {NPZ_INFLATION_SLACK} bytes")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _fortran, dtype = reader(f)
                if dtype.hasobject:
                    raise CorruptCheckpointError(str(path), f"member `{info.filename}` holds Python objects "
                                                 "(a pickle), which a Marian model never does")
                need = math.prod(shape) * dtype.itemsize
                have = info.file_size - f.tell()
                if need > have:
                    raise CorruptCheckpointError(str(path), f"member `{info.filename}` declares {need} bytes "
                                                 f"but holds {have}")


# Marian's binary model format (`marian-conv` / `pymarian convert`, src/common/binary.cpp): version 1,
# then per item a header (name length, type, shape length, data length: 4 x uint64), the names, the shapes
# (int32), a padding length and padding, then each item's data (padded; the array is its first bytes).
# Types (src/common/types.h): the size in the low byte, the class above it.
MARIAN_BIN_VERSION = 1
MARIAN_BIN_TYPES = {0x0404: np.float32, 0x0402: np.float16, 0x0101: np.int8}
MARIAN_BIN_MAX_ITEMS = 1_000_000


def read_marian_bin(path: Path) -> dict[str, np.ndarray]:
    """Every array of a Marian ``.bin`` model (float32/float16 weights; the
    packed and integer GEMM types are refused by name). Every length is
    checked against the file before anything is allocated."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    size = data.size

    def take(offset: int, count: int, dtype: type) -> np.ndarray:
        end = offset + count * np.dtype(dtype).itemsize
        if count < 0 or end > size:
            raise CorruptCheckpointError(str(path), f"it ends at byte {size}, inside an item that needs {end}")
        return np.frombuffer(data, dtype=dtype, count=count, offset=offset)

    version, count = (int(x) for x in take(0, 2, np.uint64))
    if version != MARIAN_BIN_VERSION or count > MARIAN_BIN_MAX_ITEMS:
        raise CorruptCheckpointError(str(path), f"it is not a Marian binary model (version {version}, {count} items)")
    headers = take(16, 4 * count, np.uint64).reshape(count, 4).astype(np.int64)
    offset = 16 + 32 * count
    names = []
    for name_len in headers[:, 0]:
        names.append(take(offset, int(name_len), np.uint8).tobytes().split(b"\0", 1)[0].decode("utf-8", "replace"))
        offset += int(name_len)
    shapes = []
    for shape_len in headers[:, 2]:
        shapes.append(tuple(int(d) for d in take(offset, int(shape_len), np.int32)))
        offset += 4 * int(shape_len)
    offset += 8 + int(take(offset, 1, np.uint64)[0])
    arrays = {}
    for name, (_, kind, _, length), shape in zip(names, headers, shapes):
        dtype = MARIAN_BIN_TYPES.get(int(kind))
        if dtype is None:
            raise UnsupportedCheckpointError(str(path), [
                f"item `{name}` has Marian type {int(kind):#06x} (a packed or integer GEMM type, as `marian-conv "
                "--gemm-type` writes); only float32/float16 .bin models are read (convert the npz, or write the "
                ".bin with --gemm-type float32)"])
        n = math.prod(shape)
        if min(shape, default=0) < 0 or n * np.dtype(dtype).itemsize > length:
            raise CorruptCheckpointError(str(path), f"item `{name}` declares shape {shape} but holds {length} bytes")
        arrays[name] = take(offset, n, dtype).reshape(shape).astype(np.float32 if dtype is np.float16 else dtype)
        offset += int(length)
    return arrays


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a Marian npz (or ``.bin``: :func:`read_marian_bin`),
    read without pickle; a truncated or corrupt file is a
    :class:`CorruptCheckpointError`."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if len(magic) == 8 and int.from_bytes(magic, "little") == MARIAN_BIN_VERSION:
        return read_marian_bin(path)
    try:
        _check_npz_members(path)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (CorruptCheckpointError, ResourceLimitError):
        raise
    # numpy parses .npy headers with Python's tokenizer: SyntaxError and
    # TokenError are what a damaged header raises
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError, SyntaxError,
            tokenize.TokenError, OverflowError, MemoryError, NotImplementedError) as e:
        raise CorruptCheckpointError(str(path), f"it is not a complete npz archive ({type(e).__name__}: "
                                     f"{one_line(e)})") from None


def read_model_yml(arrays: Mapping[str, np.ndarray], path: Path) -> dict[str, Any]:
    """``special:model.yml``: the YAML text as a char array, NUL-terminated."""
    item = arrays.get("special:model.yml")
    if item is None:
        raise CorruptCheckpointError(str(path), "it has no `special:model.yml` entry (is it a Marian model? "
                                                "Marian stores its options there)")
    text = item.tobytes().split(b"\0", 1)[0].decode("utf-8", errors="replace")
    try:
        cfg = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as e:  # a list nested 5,000 deep exhausts the parser's recursion
        raise CorruptCheckpointError(str(path), f"its `special:model.yml` is not valid YAML ({one_line(e)})") \
            from None
    if not isinstance(cfg, dict):
        raise CorruptCheckpointError(str(path), "its `special:model.yml` is not a YAML mapping")
    return cfg


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:  # RecursionError: nested 5,000 deep
        raise InvalidInputError(f"`{path}` is not a readable YAML file ({one_line(e) or type(e).__name__})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"`{path}` must be a YAML mapping, but is {type(data).__name__}")
    return data


def find_inputs(source: str) -> tuple[Path, list[Path], list[Path], dict[str, Any]]:
    """(directory, npz files, vocabulary files, decoder.yml contents) of ``source``:
    an OPUS-MT directory (``decoder.yml`` names the rest; several ``models`` are
    an ensemble), a directory with one npz, or an npz file."""
    path = Path(source)
    directory = path if path.is_dir() else path.parent
    decoder: dict[str, Any] = {}
    if (directory / "decoder.yml").is_file():
        decoder = _read_yaml(directory / "decoder.yml")
    for key in ("models", "vocabs"):
        value = decoder.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise InvalidInputError(f"decoder.yml: `{key}` must be a list of file names, but is {short_repr(value)}")
    if path.is_file():
        npzs = [path]
    elif decoder.get("models"):
        npzs = [_named_in_decoder_yml(directory, str(m), "model") for m in decoder["models"]]
    else:
        cands = (sorted(p for p in directory.glob("*.npz") if not p.name.endswith(".optimizer.npz"))
                 or sorted(directory.glob("model*.bin")))  # Marian's binary format (marian-conv)
        if len(cands) != 1:
            found = ", ".join(p.name for p in cands) or "none"
            raise InvalidInputError(f"`{source}` must hold one Marian .npz model, but holds {found} (point at the "
                                    ".npz file or add a decoder.yml)")
        npzs = cands
    for npz in npzs:
        if not npz.is_file():
            raise InvalidInputError(f"Marian model `{npz}` does not exist (named in decoder.yml)")
    if decoder.get("vocabs"):
        vocabs = [_named_in_decoder_yml(directory, str(v), "vocabulary") for v in decoder["vocabs"]]
    else:
        vocabs = sorted(directory.glob("*.vocab.yml"))
        if len(vocabs) == 2:  # separate vocabularies: *.src.vocab.yml / *.trg.vocab.yml
            vocabs.sort(key=lambda p: 0 if ".src." in p.name or ".source." in p.name else 1)
        elif len(vocabs) == 1:
            vocabs = vocabs * 2
    if len(vocabs) != 2:
        found = ", ".join(p.name for p in vocabs) or "none"
        raise InvalidInputError(f"`{source}` needs a Marian vocabulary (*.vocab.yml, or `vocabs:` in decoder.yml), "
                                f"but has {found}")
    for v in vocabs:
        if not v.is_file():
            raise InvalidInputError(f"vocabulary `{v}` does not exist (Marian needs it to map pieces to ids; copy "
                                    "the model's *.vocab.yml or source.spm/target.spm beside the npz)")
    return directory, npzs, vocabs, decoder


def _resolved_inside(directory: Path, name: str, what: str, root: Path) -> Path:
    """The real path of the file decoder.yml names ``name``, resolved in the model ``directory``; one that
    resolves outside ``root`` is refused before it is read (a downloaded model is untrusted)."""
    real = Path(os.path.realpath(directory / name))
    if not real.is_relative_to(root):
        raise InvalidInputError(f"decoder.yml: {what} `{name}` resolves to `{real}`, outside the model directory "
                                f"`{root}` (copy the file into the directory)")
    return real


def _named_in_decoder_yml(directory: Path, name: str, what: str) -> Path:
    """A model or vocabulary decoder.yml names, inside the model directory (:func:`_resolved_inside`, as its
    shortlist); a device or a folder is refused as such."""
    path = directory / name
    _resolved_inside(directory, name, what, Path(os.path.realpath(directory)))
    if os.path.exists(path) and not path.is_file():
        raise InvalidInputError(f"decoder.yml: {what} `{name}` must be a regular file")
    return path


def load_vocab(path: Path) -> dict[str, int]:
    """A Marian vocabulary: YAML (piece → id) or a SentencePiece model used
    directly (Marian then uses the spm ids)."""
    if path.suffix in (".spm", ".model"):
        sp = sentencepiece.SentencePieceProcessor()
        try:
            sp.Load(str(path))
        except (OSError, RuntimeError) as e:
            raise InvalidInputError(f"`{path}` is not a SentencePiece model ({e})") from None
        return {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    vocab = read_marian_vocab(path)
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise InvalidInputError(f"vocabulary `{path}` must number its pieces 0..{len(ids) - 1} without gaps or "
                                "repeats, but does not")
    return vocab


def _language(readme: Path | None, key: str) -> str | None:
    if readme is None:
        return None
    m = re.search(rf"{key} language\(s\):\s*([^\n]+)", readme.read_text(encoding="utf-8", errors="replace"))
    return m.group(1).strip() if m else None


def check_decoder_values(decoder: Mapping[str, Any]) -> None:
    """decoder.yml's honoured values, each of the right kind (one error naming every bad one)."""
    problems = option_type_problems(decoder, DECODER_KINDS, _flag)
    sort = decoder.get("maxi-batch-sort", "none")
    if isinstance(sort, str) and sort not in MAXI_BATCH_SORTS:
        problems.append(f"Option --maxi-batch-sort {sort} is not supported (supported: "
                        f"{', '.join(MAXI_BATCH_SORTS)})")
    # an ensemble's scorer weights (--weights, one per model; Marian's default 1 each)
    weights, models = decoder.get("weights"), decoder.get("models") or [None]
    if weights is not None and not (isinstance(weights, list) and len(weights) == len(models) and all(
            fits_float32(w) for w in weights)):
        problems.append(f"`--weights` must be one number a float32 holds per model ({len(models)}), but is "
                        f"{short_repr(weights)}")
    if problems:
        raise InvalidInputError("decoder.yml: " + "; ".join(problems))
    alignment_mode(decoder.get("alignment"))


def generation_defaults(decoder: Mapping[str, Any], pad: int, eos: int, *,
                        shortlist: ShortlistSpec | None = None, shortlist_name: str = SHORTLIST_NAME) -> dict[str, Any]:
    """decoder.yml's decoding defaults (Marian's own defaults where absent; ``decoder`` as
    :func:`decoding_config` makes it). ``shortlist``: its values, recorded with the file's name in the
    port's tokenizer folder, so that ``translate`` uses it by default."""
    check_decoder_values(decoder)
    weights = decoder.get("weights")
    gen: dict[str, Any] = {"semantics": "marian"}
    for key, (name, default) in DECODER_DEFAULTS.items():
        value = decoder.get(key, default)
        gen[name] = default if value is None else value
    if weights is not None:
        gen["weights"] = [float(w) for w in weights]
    alignment = alignment_mode(decoder.get("alignment"))
    if alignment is not None:  # marian-decoder prints alignments after each translation: so does translate
        gen["alignment"] = alignment
    if shortlist is not None:  # a path inside the port (generation/shortlist.py's folder_shortlist resolves it)
        gen["shortlist"] = [f"{TOKENIZER_DIR}/{shortlist_name}", shortlist.first, shortlist.best, shortlist.threshold]
    gen.update(decoder_start_token_id=pad, pad_token_id=pad, eos_token_id=eos)
    return gen


@dataclass
class MarianVocabularies:
    """The model's checked vocabularies and the ids the unified model gives them."""

    source: dict[str, int]
    target: dict[str, int]
    v_src: int  # --dim-vocabs
    v_tgt: int
    pad: int  # one pad id for both sides, after the larger vocabulary
    eos: int
    unk: int

    @property
    def rows(self) -> int:
        return self.pad + 1


@dataclass
class MarianSource:
    """What :meth:`MarianConverter.load_source` read; the vocabularies are read
    (and checked against the options) when the config is built."""

    source: str
    directory: Path
    npz: Path
    vocab_paths: list[Path]
    decoder: dict[str, Any]  # decoder.yml
    arrays: dict[str, np.ndarray]
    raw: dict[str, Any]  # special:model.yml
    opts: dict[str, Any]  # raw with Marian's defaults
    # the other members of an ensemble (decoder.yml `models`): npz, arrays, opts
    others: list[tuple[Path, dict[str, np.ndarray], dict[str, Any]]] = field(default_factory=list)

    @cached_property
    def shortlist(self) -> ShortlistSpec | None:
        """decoder.yml's shortlist, its file resolved inside the source folder."""
        return shortlist_spec(self.decoder, self.directory, source_root(self.source))

    @cached_property
    def shortlist_name(self) -> str:
        """The shortlist's name in the port (gzipped files keep their bytes and say so)."""
        with open(self.shortlist.path, "rb") as f:  # type: ignore[union-attr]  # only called with a shortlist
            return SHORTLIST_NAME + (".gz" if f.read(2) == GZIP_MAGIC else "")

    @cached_property
    def vocabs(self) -> MarianVocabularies:
        src_vocab, tgt_vocab = (load_vocab(p) for p in self.vocab_paths)
        v_src, v_tgt = self.opts["dim-vocabs"]
        for name, vocab, size, path in (("source", src_vocab, v_src, self.vocab_paths[0]),
                                        ("target", tgt_vocab, v_tgt, self.vocab_paths[1])):
            if len(vocab) != size:
                raise UnsupportedCheckpointError(self.source, [
                    f"the {name} vocabulary `{path.name}` has {len(vocab)} entries, but --dim-vocabs says {size} "
                    "(use the vocabulary the model was trained with)"])
            for tok in ("</s>", "<unk>"):
                if tok not in vocab:
                    raise InvalidInputError(f"`{tok}` must be in the {name} vocabulary `{path.name}`, but is not")
        eos, unk = tgt_vocab["</s>"], tgt_vocab["<unk>"]
        if src_vocab["</s>"] != eos:
            raise UnsupportedCheckpointError(self.source, ["source and target vocabularies give `</s>` different "
                                                           "ids (supported: the same id)"])
        return MarianVocabularies(source=src_vocab, target=tgt_vocab, v_src=v_src, v_tgt=v_tgt,
                                  pad=max(v_src, v_tgt), eos=eos, unk=unk)


@register_converter("marian")
class MarianConverter(Converter[MarianSource]):
    """MarianNMT transformer models, OPUS-MT directories included."""

    description = "MarianNMT / OPUS-MT (dir with *.npz + decoder.yml + *.vocab.yml + source.spm/target.spm)"

    @classmethod
    def detect(cls, source: str) -> bool:
        path = Path(source)
        if path.is_file():
            return path.suffix == ".npz"
        return path.is_dir() and (any(path.glob("*.npz")) or (path / "decoder.yml").is_file())

    def load_source(self, progress: bool) -> MarianSource:
        directory, npzs, vocab_paths, decoder = find_inputs(self.source)
        members = []
        for npz in npzs:
            arrays = read_npz(npz)
            not_float = [k for k, a in arrays.items() if not k.startswith("special:")
                         and not np.issubdtype(a.dtype, np.floating)]
            if not_float:
                raise CorruptCheckpointError(str(npz), "weights must be floating-point arrays, but " + ", ".join(
                    f"`{k}` is {arrays[k].dtype}" for k in not_float[:5]) + (" ..." if len(not_float) > 5 else ""))
            members.append((npz, arrays, read_model_yml(arrays, npz)))
        (npz, arrays, raw), others = members[0], members[1:]
        return MarianSource(source=self.source, directory=directory, npz=npz, vocab_paths=vocab_paths,
                            decoder=decoder, arrays=arrays, raw=raw, opts=resolve_options(raw),
                            others=[(n, a, resolve_options(r)) for n, a, r in others])

    def check_options(self, loaded: MarianSource) -> None:
        opts = loaded.opts
        problems = check_options(opts)
        check_decoder_values(decoding_config(loaded.decoder, loaded.raw))  # bad values first, then refusals
        problems += decoder_refusals(loaded.decoder, loaded.raw, opts)
        self.unsupported(self.source, problems)
        _ = loaded.shortlist  # its path and file checked before anything is built

    def build_config(self, loaded: MarianSource) -> Seq2SeqConfig:
        v = loaded.vocabs
        return build_config(loaded.opts, v.rows, v.pad, v.eos, v.unk)

    def map_weights(self, loaded: MarianSource, config: Seq2SeqConfig) -> MappedWeights:
        v = loaded.vocabs
        mapped, dropped = map_weights(str(loaded.npz), loaded.arrays, loaded.opts, v.rows, v.v_src, v.v_tgt)
        # an ensemble (Marian's scorers, combined by generation/ensemble.py's LogLinearEnsemble):
        # one unified config and one pair of vocabularies, so every member must build the same config
        problems = []
        for npz, arrays, opts in loaded.others:
            own = check_options(opts)
            if not own and (opts["dim-vocabs"] != loaded.opts["dim-vocabs"]
                            or build_config(opts, v.rows, v.pad, v.eos, v.unk) != config):
                own.append(f"ensemble member `{npz.name}` has other options than `{loaded.npz.name}` "
                           "(supported: members of one architecture and vocabulary)")
            problems += own
        self.unsupported(self.source, problems)
        members = [mapped] + [map_weights(str(npz), arrays, opts, v.rows, v.v_src, v.v_tgt)[0]
                              for npz, arrays, opts in loaded.others]
        if loaded.opts["transformer-ffn-activation"] == "gelu":
            dropped["(computed) gelu"] = GELU_NOTE
        if v.rows > v.v_src or v.rows > v.v_tgt:
            dropped["(added) <pad>"] = (f"Marian has no pad symbol: id {v.pad} appended with zero embedding rows "
                                        "and a -inf logit, as transformers' Marian conversion does")
        return MappedWeights(members, dropped)

    def tokenizer_assets(self, loaded: MarianSource, config: Seq2SeqConfig) -> TokenizerAssets:
        """``marian_spm`` tokenizer files, written by the tokenizer module into
        a temporary directory that lives as long as the returned assets."""
        directory, vocab_paths, v = loaded.directory, loaded.vocab_paths, loaded.vocabs
        # Marian segments with the .spm vocabularies decoder.yml names (a stray source.spm beside them is not
        # read: preferring it gave fluent garbage, exit 0); YAML vocabularies take OPUS-MT's source/target.spm
        spms = [vocab_paths[i] if vocab_paths[i].suffix == ".spm" else directory / name
                for i, name in enumerate(("source.spm", "target.spm"))]
        missing = [p.name for p in spms if not p.is_file()]
        if missing:
            raise InvalidInputError(f"`{directory}` has no {' or '.join(missing)} (the SentencePiece models "
                                    "OPUS-MT preprocesses with; put them beside the npz)")
        tmp = tempfile.TemporaryDirectory(prefix="modelport-marian-tok-")
        separate = v.source != v.target
        # a leading >>xxx<< is one piece before the spm-encoded rest in OPUS-MT's pipeline (YAML
        # vocabularies, pieces in); with .spm vocabularies Marian encodes the whole line itself
        codes = any(re.fullmatch(r">>.+<<", p) for p in v.target | v.source)
        spm_vocab = vocab_paths[0].suffix in (".spm", ".model")
        cfg = save_marian(tmp.name, source_spm=spms[0], target_spm=spms[1], vocab={**v.source, "<pad>": v.pad},
                          target_vocab={**v.target, "<pad>": v.pad} if separate else None,
                          language_code_prefix=codes and not spm_vocab,
                          # Marian prints sentencepiece's text of .spm vocabularies (a trailing space kept);
                          # OPUS-MT's YAML layout is postprocessed as transformers' MarianTokenizer does
                          decode_rule="sentencepiece" if spm_vocab else "opus_mt",
                          # Marian segments the text of .spm vocabularies itself, ties as its bundled
                          # SentencePiece breaks them; OPUS-MT's YAML layout comes pre-encoded (the library)
                          encode_rule="marian" if spm_vocab else "sentencepiece")
        readme = directory / "README.md" if (directory / "README.md").is_file() else None
        cfg["source_lang"] = _language(readme, "source")
        cfg["target_lang"] = _language(readme, "target")
        names = ["source.spm", "target.spm", "vocab.json"] + (["target_vocab.json"] if separate else [])
        files = {n: Path(tmp.name) / n for n in names}
        inputs = [*spms, *vocab_paths]
        if loaded.shortlist is not None:  # read once with the model's vocabularies: a bad line fails here
            path = loaded.shortlist.path
            read_entries(path, v.source, v.target, v.source["<unk>"], v.unk)
            files[loaded.shortlist_name] = path
            inputs.append(path)
        assets = TokenizerAssets(files=files, config=cfg, inputs=list(dict.fromkeys(inputs)))
        assets._keepalive = tmp  # type: ignore[attr-defined]  # removed with the plan
        return assets

    def generation_defaults(self, loaded: MarianSource, config: Seq2SeqConfig) -> dict[str, Any]:
        shortlist = loaded.shortlist
        gen = generation_defaults(decoding_config(loaded.decoder, loaded.raw), loaded.vocabs.pad, loaded.vocabs.eos,
                                  shortlist=shortlist, shortlist_name=loaded.shortlist_name if shortlist else "")
        # whose cross-attention `--alignment` prints: the first model's (scorer 0's) layer; a folder
        # without it means "last", Marian's default (checked only when alignments are asked for)
        gen["alignment_layer"] = str(loaded.raw.get("transformer-guided-alignment-layer") or "last")
        return gen

    def source_files(self, loaded: MarianSource, tokenizer: TokenizerAssets) -> list[Path]:
        extra = [loaded.directory / n for n in ("decoder.yml", "README.md", "LICENSE")
                 if (loaded.directory / n).is_file()]
        return list(dict.fromkeys([loaded.npz, *(o[0] for o in loaded.others), *loaded.vocab_paths,
                                   *tokenizer.inputs, *extra]))

    def foreign_options(self, loaded: MarianSource) -> dict[str, Any]:
        raw = loaded.raw
        foreign = {k: v for k, v in sorted(raw.items()) if isinstance(v, (str, int, float, bool, type(None)))}
        foreign.update({k: v for k, v in raw.items() if isinstance(v, list) and all(
            isinstance(x, (str, int, float, bool)) for x in v)})
        return foreign


__all__ = ["MarianConverter", "check_options", "build_config", "map_weights", "weight_table", "read_npz",
           "read_model_yml", "ffn_slot"]
