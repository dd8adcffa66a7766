"""Export a ported folder as a CTranslate2 model directory, verified by running it.

``export_ct2(PORTED_DIR, OUT)`` fills CTranslate2's own spec classes
(``ctranslate2.specs.TransformerEncoderSpec`` / ``TransformerDecoderSpec`` in a
``TransformerSpec``, as CTranslate2's fairseq, Marian and T5 converters do)
from the unified :class:`~modelport.model.config.Seq2SeqConfig` and weights,
so no original framework is needed; ``spec.optimize(quantization)`` and
``spec.save`` write ``model.bin``, ``config.json`` and the vocabularies
(``shared_vocabulary.json`` or ``source_``/``target_vocabulary.json``: the
port's token strings in id order). The port's ``tokenizer/`` is copied beside
them (CTranslate2 reads token strings: tokenize with it) and
``export_report.json`` records the result. The source EOS is added by
CTranslate2 (``add_source_eos``, as its own converters set it).

What maps where (config flag -> spec):

* ``pre_norm`` / ``final_norm`` -> ``pre_norm`` / ``no_final_norm``; ``norm="rmsnorm"``
  -> ``rms_norm``; ``norm_eps`` -> ``layer_norm_epsilon``; ``layernorm_embedding``;
* ``activation`` -> ``Activation`` (Marian's sigmoid GELU is ``GELUSigmoid``);
  ``ffn_gated`` -> ``ffn_glu`` (the activated ``gate`` is ``linear_0``, ``up`` ``linear_0_noact``);
* sinusoidal and learned positions -> ``position_encodings`` (the port's own table from
  ``position_offset`` on, so fairseq's offset and Marian's layout are exact);
  ``positions="none"`` -> a zero table; ``relative`` -> ``relative_attention_bias``;
* ``scale_embeddings`` -> ``scale_embeddings`` (the factor), ``attention_scale`` ->
  ``queries_scale``, ``output_scale`` -> ``scale_outputs``, ``final_logits_bias`` ->
  the projection's bias, ``decoder_start_zero_embedding`` -> ``start_from_zero_embedding``;
  shared and tied embeddings are one array (CTranslate2 aliases equal variables).

Refused (:class:`~modelport.errors.InvalidInputError`, exit 2, one line naming
each feature): ensembles, Marian SSRU decoders, FFNs deeper than two layers,
per-layer head counts after head pruning, cross-attention heads unlike the
self-attention's, quantized folders (export before ``modelport quantize``; use
``quantization=`` for CTranslate2's own).

Verification (default on) loads the directory with ``ctranslate2.Translator``
on the CPU and decodes the same lines as the port (default: the first 20 lines
of ``assets/corpus/test.en`` in a source checkout), tokens given as
CTranslate2 token strings. Empty lines (no token before ``</s>``) are left out
and counted: CTranslate2 gives an empty source an empty translation without
running the model, where the port decodes the lone ``</s>`` as fairseq and
Marian do. Both sides get the special tokens ``translate`` places: a
multilingual port's source language before each source and its target
language forced first (``source_lang``/``target_lang``, required there;
CTranslate2's ``target_prefix``), BART's ``<s>`` likewise; the report
records them, which is how a user of the directory calls CTranslate2.
mBART-25 fine-tunes, which decode from and stop on the language token, are
not verified (refused; ``verify=False`` writes them).

* **greedy**: transformers' greedy rule, which is CTranslate2's ``beam_size=1``:
  argmax of the log-softmax each step, EOS banned for the first ``min`` tokens
  (1 for fairseq ports, as fairseq's ``min_len``; else 0), a hypothesis cut
  after ``max_decoding_length`` tokens. modelport runs ``generate(greedy=True,
  max_new_tokens=N, min_new_tokens=min)``. This equals fairseq's beam-1 search
  except that fairseq masks ``<pad>`` and forces EOS at ``max_len``, and
  Marian's except that Marian masks ``<unk>``: those rules are left out on
  both sides, so the outputs must be **token-identical**; a difference is a
  :class:`~modelport.errors.ParityError` (exit 3) and nothing is written.
* **beam** (5): the folder's own semantics against CTranslate2's beam search
  with the settings where their rules coincide, where there are some:
  fairseq's (2 x beam candidates, EOS finalized among the first ``beam``, a
  sentence done once ``beam`` hypotheses finished, ``score / len ** lenpen``
  with EOS counted: ``return_end_token=True``, ``<pad>`` suppressed) coincide
  except that fairseq forces EOS at ``max_len`` where CTranslate2 keeps the
  token it picked; transformers' with ``early_stopping=True``. Marian's cannot
  coincide (Marian shrinks the beam by one per finished hypothesis;
  CTranslate2 refills it from 2 x beam candidates). Beam results are
  reported (identical lines, which rule differs), never fatal.

Marian pre-norm ports whose incremental decoder caches un-normalised
self-attention inputs (``cached_self_kv_unnormed``) are decoded by
CTranslate2 as the port's full forward computes them: their greedy outputs are
checked against a full-forward greedy search of the port, and the agreement
with the port's own (Marian's) incremental search is reported as a known
difference. With ``quantization`` other than float32 the outputs are compared
with the fp32 port and reported as agreement, not required to be identical.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from modelport._version import __version__
from modelport.api import PortedModel, load
from modelport.errors import InvalidInputError, MissingReferenceError, ParityError
from modelport.exporters import REPORT_NAME
from modelport.exporters.common import nan_refused, open_for_export, verification_direction, verification_lines
from modelport.exporters.hf import DEFAULT_LINES
from modelport.files import copy_folder_files
from modelport.generation import generate
from modelport.generation.translate import Direction, pad_batch
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import TOKENIZER_DIR, PortedFolder
from modelport.model.io import atomic_output_dir, write_json
from modelport.model.transformer import Seq2SeqModel
from modelport.progress import Steps
from modelport.reports.ct2 import QUANTIZATIONS, Ct2Comparison, Ct2ExportReport, Ct2Verification
from modelport.tokenizers import Tokenizer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "assets" / "corpus" / "test.en"  # in a source checkout
DEFAULT_LINE_COUNT = 20
BEAM = 5
# verification only: the length cap of both searches, 2 x the longest source + 10, at most 128 (and the positions)
MAX_NEW_TOKENS = 128
_SHOWN = 5  # differing line indices kept in the report
# unified activation -> ctranslate2.specs.common_spec.Activation member computing the same function
_ACTIVATIONS = {"relu": "RELU", "gelu": "GELU", "gelu_tanh": "GELUTanh", "gelu_sigmoid": "GELUSigmoid",
                "silu": "SWISH"}


def default_lines() -> list[str]:
    """The first :data:`DEFAULT_LINE_COUNT` lines of the bundled test corpus
    (a source checkout), else the built-in verification sentences."""
    if DEFAULT_DATA.is_file():
        return DEFAULT_DATA.read_text(encoding="utf-8").splitlines()[:DEFAULT_LINE_COUNT]
    return list(DEFAULT_LINES)


def _folder_problems(folder: PortedFolder) -> list[str]:
    """What CTranslate2's Transformer spec cannot represent, read from config.json."""
    cfg, problems = folder.config, []
    if folder.ensemble_size > 1:
        problems.append(f"an ensemble of {folder.ensemble_size} models is not supported (a CTranslate2 model is "
                        "one network; convert a single checkpoint)")
    if cfg.decoder_autoreg != "self-attention":
        problems.append(f"a decoder with `decoder_autoreg` {cfg.decoder_autoreg} (Marian's SSRU decoder) is not "
                        "supported (CTranslate2's decoder layers have self-attention only)")
    if cfg.ffn_depth != 2:
        problems.append(f"`ffn_depth` {cfg.ffn_depth} (Marian's transformer-ffn-depth) is not supported "
                        "(CTranslate2's feed-forward has two linear layers)")
    for attention, side in (("encoder", "encoder"), ("decoder", "decoder"), ("cross", "decoder")):
        counts = set(cfg.layer_heads(attention))  # type: ignore[arg-type]
        if len(counts) > 1:
            problems.append(f"per-layer `{attention}_layer_heads` {sorted(counts)} are not supported (CTranslate2 "
                            f"gives every {side} layer the same heads)")
    if set(cfg.layer_heads("cross")) - set(cfg.layer_heads("decoder")):
        problems.append("cross-attention heads unlike the decoder self-attention's are not supported")
    if folder.quantization:
        problems.append(f"a quantized folder ({folder.quantization}) is not supported (export the folder "
                        "before `modelport quantize`; `--quantization` quantizes for CTranslate2)")
    return problems


# ---------------------------------------------------------------------------
# vocabularies


def _vocabulary(tok: Tokenizer, side: str, size: int) -> list[str]:
    """``size`` unique token strings in id order: the tokenizer's entries; an id
    it has no entry for, or whose string an earlier id already has, gets a
    placeholder (CTranslate2 maps each string to one id, and the tokenizer
    never produces those ids from text)."""
    known = tok.vocab_size_of(side)
    n = size if known is None else min(size, known)
    tokens = tok.id_to_tokens(range(n), side=side)
    out, seen = [], set()
    for i in range(size):
        token = tokens[i] if i < n else None
        if token is None or token in seen:
            token = f"<modelport_unused_{i}>"
        seen.add(token)
        out.append(token)
    return out


@dataclass(frozen=True)
class Vocabularies:
    """The token strings the CTranslate2 model reads (source) and writes (target), in id order."""

    source: list[str]
    target: list[str]

    @property
    def shared(self) -> bool:
        return self.source == self.target

    @property
    def files(self) -> list[str]:
        """What ``ModelSpec.save`` writes: one shared file when the two are equal."""
        if self.shared:
            return ["shared_vocabulary.json"]
        return ["source_vocabulary.json", "target_vocabulary.json"]

    @classmethod
    def of(cls, tok: Tokenizer, cfg: Seq2SeqConfig) -> Vocabularies:
        source = _vocabulary(tok, "source", cfg.source_vocab_size)
        target = _vocabulary(tok, "target", cfg.target_vocab_size)
        return cls(source, target)


# ---------------------------------------------------------------------------
# the spec


def _array(tensor: Tensor) -> np.ndarray:
    """A float32 numpy copy: ``spec.optimize`` quantizes the arrays in place,
    which must not reach the port's own weights (``.numpy()`` shares memory)."""
    return tensor.detach().float().cpu().numpy().copy()


class _Weights:
    """The model's float32 tensors as numpy arrays (copies), by unified name."""

    def __init__(self, model: Seq2SeqModel) -> None:
        self.state = model.state_dict()

    def __call__(self, name: str) -> np.ndarray:
        return _array(self.state[name])

    def has(self, name: str) -> bool:
        return name in self.state


def _linear(spec: Any, w: _Weights, prefix: str) -> None:
    spec.weight = w(f"{prefix}.weight")
    if w.has(f"{prefix}.bias"):
        spec.bias = w(f"{prefix}.bias")


def _norm(spec: Any, w: _Weights, prefix: str) -> None:
    spec.gamma = w(f"{prefix}.weight")
    if w.has(f"{prefix}.bias"):  # RMSNorm has none
        spec.beta = w(f"{prefix}.bias")


def _attention(spec: Any, w: _Weights, prefix: str, *, self_attention: bool, scale: float | None) -> None:
    """Q, K, V fused as CTranslate2 computes them: one matrix for self-attention,
    Q apart from the fused K, V for cross-attention (the keys come from the encoder)."""
    from ctranslate2.converters import utils
    from ctranslate2.specs import common_spec

    q, k, v = (common_spec.LinearSpec() for _ in range(3))
    for part, name in ((q, "q_proj"), (k, "k_proj"), (v, "v_proj")):
        _linear(part, w, f"{prefix}.{name}")
    if self_attention:
        utils.fuse_linear(spec.linear[0], [q, k, v])
    else:
        utils.fuse_linear(spec.linear[0], [q])
        utils.fuse_linear(spec.linear[1], [k, v])
    _linear(spec.linear[-1], w, f"{prefix}.out_proj")
    if scale is not None:
        spec.queries_scale = np.float32(scale)


def _ffn(spec: Any, w: _Weights, prefix: str, gated: bool) -> None:
    if gated:  # down(act(gate(x)) * up(x)): CTranslate2 activates linear_0 and multiplies linear_0_noact
        _linear(spec.linear_0, w, f"{prefix}.gate")
        _linear(spec.linear_0_noact, w, f"{prefix}.up")
    else:
        _linear(spec.linear_0, w, f"{prefix}.up")
    _linear(spec.linear_1, w, f"{prefix}.down")


def _inputs(spec: Any, embeddings: Any, model: Seq2SeqModel, w: _Weights, side: str) -> None:
    """Token embeddings, their scale, positions and the embedding norm of one stack."""
    cfg = model.cfg
    stack = model.encoder if side == "encoder" else model.decoder
    embeddings.weight = w(f"{side}.embed.embed_tokens.weight")
    spec.scale_embeddings = float(cfg.embed_scale) if cfg.scale_embeddings else False
    if cfg.positions == "learned":
        spec.position_encodings.encodings = w(f"{side}.embed.embed_positions.weight")[cfg.position_offset:]
    elif cfg.positions == "sinusoidal":  # the port's own table: layout, denominator and offset exact
        spec.position_encodings.encodings = _array(stack.embed.sinusoidal)[cfg.position_offset:]
    elif cfg.positions == "none":  # CTranslate2 would otherwise compute its own sinusoids
        rows = cfg.max_source_positions if side == "encoder" else cfg.max_target_positions
        spec.position_encodings.encodings = np.zeros((rows, cfg.d_model), dtype=np.float32)
    if cfg.layernorm_embedding:
        _norm(spec.layernorm_embedding, w, f"{side}.embed.layernorm_embedding")
    if cfg.final_norm:
        _norm(spec.layer_norm, w, f"{side}.final_norm")


def _relative_bias(spec: Any, w: _Weights, side: str, cfg: Seq2SeqConfig) -> None:
    """T5's bias: one table for the stack, given to every layer (CTranslate2 aliases the copies)."""
    if cfg.positions != "relative":
        return
    table = w(f"{side}.relative_bias.embedding.weight")  # [buckets, heads], as transformers' T5
    for layer in spec.layer:
        layer.self_attention.relative_attention_bias = table
        layer.self_attention.relative_attention_max_distance = np.int32(cfg.relative_attention_max_distance)


def build_spec(model: Seq2SeqModel, vocab: Vocabularies) -> Any:
    """The ``ctranslate2.specs.TransformerSpec`` of ``model`` (float32 weights),
    its vocabularies registered and its ``config.json`` fields set."""
    from ctranslate2.specs import common_spec, transformer_spec

    cfg = model.cfg
    w = _Weights(model)
    relative = cfg.positions == "relative"
    common = dict(pre_norm=cfg.pre_norm, no_final_norm=not cfg.final_norm,
                  activation=common_spec.Activation[_ACTIVATIONS[cfg.activation]],
                  layernorm_embedding=cfg.layernorm_embedding, relative_attention_bias=relative,
                  ffn_glu=cfg.ffn_gated, rms_norm=cfg.norm == "rmsnorm")
    encoder = transformer_spec.TransformerEncoderSpec(cfg.encoder_layers, cfg.encoder_heads,
                                                      head_dim=cfg.encoder_head_dim, **common)
    decoder = transformer_spec.TransformerDecoderSpec(cfg.decoder_layers, cfg.decoder_heads,
                                                      head_dim=cfg.decoder_head_dim, **common)
    spec = transformer_spec.TransformerSpec(encoder, decoder)
    scale = cfg.attention_scale

    _inputs(encoder, encoder.embeddings[0], model, w, "encoder")
    for i, layer in enumerate(encoder.layer):
        p = f"encoder.layers.{i}"
        _attention(layer.self_attention, w, f"{p}.self_attn", self_attention=True, scale=scale)
        _norm(layer.self_attention.layer_norm, w, f"{p}.self_attn_norm")
        _ffn(layer.ffn, w, f"{p}.ffn", cfg.ffn_gated)
        _norm(layer.ffn.layer_norm, w, f"{p}.ffn_norm")
    _relative_bias(encoder, w, "encoder", cfg)

    _inputs(decoder, decoder.embeddings, model, w, "decoder")
    decoder.start_from_zero_embedding = cfg.decoder_start_zero_embedding
    for i, layer in enumerate(decoder.layer):
        p = f"decoder.layers.{i}"
        _attention(layer.self_attention, w, f"{p}.self_attn", self_attention=True, scale=scale)
        _norm(layer.self_attention.layer_norm, w, f"{p}.self_attn_norm")
        _attention(layer.attention, w, f"{p}.cross_attn", self_attention=False, scale=scale)
        _norm(layer.attention.layer_norm, w, f"{p}.cross_attn_norm")
        _ffn(layer.ffn, w, f"{p}.ffn", cfg.ffn_gated)
        _norm(layer.ffn.layer_norm, w, f"{p}.ffn_norm")
    _relative_bias(decoder, w, "decoder", cfg)
    decoder.projection.weight = _array(model.output_weight)
    if cfg.final_logits_bias:
        decoder.projection.bias = w("final_logits_bias")
    if cfg.output_scale != 1.0:
        decoder.scale_outputs = np.float32(cfg.output_scale)

    spec.register_source_vocabulary(vocab.source)
    spec.register_target_vocabulary(vocab.target)
    conf = spec.config
    conf.unk_token = vocab.target[cfg.unk_token_id]
    conf.eos_token = vocab.target[cfg.eos_token_id]
    conf.decoder_start_token = vocab.target[cfg.decoder_start_token_id]
    conf.bos_token = vocab.target[cfg.bos_token_id if cfg.bos_token_id is not None else cfg.decoder_start_token_id]
    conf.add_source_eos = True  # the port's tokenizer appends </s>; CTranslate2 adds it to the tokens it is given
    conf.layer_norm_epsilon = float(cfg.norm_eps)
    return spec


# ---------------------------------------------------------------------------
# export


def _known_differences(ported: PortedModel) -> list[str]:
    """What CTranslate2 computes unlike the port's own decoding, from the folder alone."""
    cfg, gen = ported.config, ported.generation_config
    notes = []
    if cfg.cached_self_kv_unnormed:
        notes.append("Marian's incremental pre-norm decoder attends to cached un-normalised inputs from step 2 "
                     "on (`cached_self_kv_unnormed`); CTranslate2 decodes as the full forward does, so its "
                     "outputs can differ from Marian's and the port's own search")
    if cfg.clamp_fp16_activations:
        notes.append("the port clamps fp16 activations as transformers' T5 does; CTranslate2 float16 does not")
    semantics = gen.get("semantics", "fairseq")
    if semantics == "hf" and gen.get("early_stopping") is not True:
        notes.append(f"the folder's transformers default early_stopping={gen.get('early_stopping', False)} "
                     "stops beam search by a heuristic; CTranslate2 stops at beam x patience finished "
                     "hypotheses (as early_stopping=True)")
    if semantics == "marian":
        notes.append("Marian shrinks the beam by one per finished hypothesis; CTranslate2 keeps `beam_size` "
                     "live hypotheses, refilled from 2 x beam candidates: beam outputs can differ")
    if semantics == "fairseq":
        notes.append("at the length limit fairseq forces EOS where CTranslate2 keeps the token it picked")
    if gen.get("shortlist"):
        notes.append("the folder's lexical shortlist (decoder.yml) is not carried: CTranslate2 scores the whole "
                     "vocabulary (its vocabulary maps are another rule), so outputs can differ from the port's "
                     "and Marian's with the shortlist")
    if gen.get("alignment"):
        notes.append("the folder's word alignments (decoder.yml `alignment`) are not exported: CTranslate2's "
                     "return_attention gives attention of its own layer choice, not Marian's alignment")
    return notes


def export_ct2(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
               quantization: str | None = None, force: bool = False, verify: bool = True, progress: bool = False,
               lines: Sequence[str] | None = None, source_lang: str | None = None,
               target_lang: str | None = None) -> Ct2ExportReport:
    """Write ``ported_dir`` as a CTranslate2 model directory ``output_dir``; return the report.

    ``quantization``: CTranslate2's weight type (:data:`QUANTIZATIONS`;
    None keeps float32). Refuses (:class:`InvalidInputError`) what
    CTranslate2 cannot represent. With ``verify`` CTranslate2 decodes
    ``lines`` (default :func:`default_lines`) against the port; a greedy
    difference in an unquantized export raises :class:`ParityError` and
    leaves nothing behind. ``source_lang``/``target_lang``: the direction the
    verification translates in, for a multilingual port (required there, as
    for ``translate``).
    """
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise InvalidInputError(f"`{quantization}` is not a known CTranslate2 quantization "
                                f"(known: {', '.join(QUANTIZATIONS)})")
    folder = open_for_export(ported_dir, output_dir, force)  # checked, weights not loaded yet
    problems = _folder_problems(folder)
    if problems:
        raise InvalidInputError(f"`{ported_dir}` cannot be exported to CTranslate2: " + "; ".join(problems))
    try:
        import ctranslate2
    except ImportError:
        raise MissingReferenceError("ctranslate2", "`export ct2`") from None
    with Steps("export ct2", 3 if verify else 2, progress) as bar:
        ported = load(folder.path)
        direction = verification_direction(ported, source_lang, target_lang, verify)  # before any work
        placement = _placement(ported, direction) if verify else None
        model = ported.model.float().eval()
        vocab = Vocabularies.of(ported.tokenizer, model.cfg)
        try:
            spec = build_spec(model, vocab)
            spec.validate()
            spec.optimize(quantization=quantization)
        except (ValueError, TypeError, KeyError) as e:  # the spec's own checks: one line naming the problem
            raise InvalidInputError(f"`{ported_dir}` cannot be exported to CTranslate2: {e}".splitlines()[0]) from e
        bar.advance("loaded")

        with atomic_output_dir(output_dir, force=force) as tmp:
            spec.save(str(tmp))
            copy_folder_files(ported.tokenizer_dir, tmp / TOKENIZER_DIR)
            conf = spec.config
            bar.advance("written")
            with nan_refused(ported_dir), _ct2_logs(ctranslate2):
                check = verify_export(tmp, ported, vocab, verification_lines(lines, default_lines()),
                                      quantization, placement) if verify else None
            if verify:
                bar.advance("verified")
            report = Ct2ExportReport(
                modelport_version=__version__, ctranslate2_version=ctranslate2.__version__,
                ported_dir=str(folder.path.resolve()), source_format=ported.source_format, spec=spec.name,
                quantization=quantization, vocabulary=vocab.files,
                special_tokens={"unk": conf.unk_token, "bos": conf.bos_token, "eos": conf.eos_token,
                                "decoder_start": conf.decoder_start_token},
                add_source_eos=True, known_differences=_known_differences(ported), verification=check)
            write_json(tmp / REPORT_NAME, report.to_json())
            if check is not None and not check.passed:
                raise ParityError(f"the CTranslate2 export of `{ported_dir}` does not match the port: {check.failure} "
                                  "(nothing was written)")
        return report


# ---------------------------------------------------------------------------
# verification


@dataclass(frozen=True)
class _Placement:
    """Where the verification puts the port's special tokens, as ``translate``
    places them: ``source_prefix`` before each source's ids (CTranslate2 is
    given them as source tokens), ``target_prefix`` forced first on the target
    (CTranslate2's ``target_prefix``; the port's ``prefix_tokens``, or
    ``search``, the folder semantics' own option for it). A multilingual
    port's languages (``languages``), BART's ``<s>``; empty for the others."""

    source_prefix: list[int]
    target_prefix: list[int]
    search: dict[str, Any]
    languages: tuple[str, str] | None = None


def _placement(ported: PortedModel, direction: Direction) -> _Placement:
    """The special tokens of ``direction`` (checked by the caller) where ``translate`` places them."""
    before, after, forced, search = direction.tokens(ported.tokenizer, ported.generation_config,
                                                     ported.config.eos_token_id)
    if after or search.get("generator_eos") is not None:
        raise InvalidInputError("this port decodes from and stops on the target language token (an mBART-25 "
                                "fine-tune), which CTranslate2's search does not: the export cannot be verified "
                                "(--no-verify writes it unverified)")
    return _Placement(before, forced, search, direction.pair)


@dataclass(frozen=True)
class _Run:
    """One decoding rule on both sides: modelport's ``generate`` options and
    CTranslate2's ``translate_batch`` options, and how the two relate."""

    rule: str
    port: dict[str, Any]
    ct2: dict[str, Any]
    coincide: bool
    difference: str | None = None


def _greedy_run(cfg: Seq2SeqConfig, semantics: str, max_new: int) -> _Run:
    """transformers' greedy rule, which is CTranslate2's ``beam_size=1``; EOS
    banned at the first step for fairseq ports (fairseq's ``min_len`` 1)."""
    min_new = 1 if semantics == "fairseq" else 0
    return _Run(f"greedy, at most {max_new} tokens, EOS allowed from token {min_new + 1}",
                {"greedy": True, "max_new_tokens": max_new, "min_new_tokens": min_new, "pad_left": False},
                {"beam_size": 1, "max_decoding_length": max_new, "min_decoding_length": min_new}, True)


def _beam_run(ported: PortedModel, vocab: Vocabularies, max_new: int, src_width: int) -> _Run:
    """The folder's semantics at beam :data:`BEAM` and CTranslate2's beam
    search with the settings where the two rules coincide (if any)."""
    cfg, gen = ported.config, ported.generation_config
    semantics = gen.get("semantics", "fairseq")
    if semantics == "fairseq":
        lenpen, min_len, unkpen = float(gen.get("lenpen", 1.0)), int(gen.get("min_len", 1)), float(gen.get("unkpen", 0))
        differs = []
        if lenpen == 0:
            differs.append("with lenpen 0 CTranslate2 stops once the best hypothesis finished; fairseq waits for "
                           "beam finished hypotheses")
        if unkpen:
            differs.append(f"fairseq's unkpen {unkpen} has no CTranslate2 equivalent")
        return _Run(f"fairseq beam {BEAM}, lenpen {lenpen:g}; CTranslate2 with <pad> suppressed",
                    {"semantics": "fairseq", "beam": BEAM, "lenpen": lenpen, "max_len_a": 0, "max_len_b": max_new,
                     "min_len": min_len, "unkpen": unkpen, "nbest": 1},
                    {"beam_size": BEAM, "length_penalty": lenpen, "max_decoding_length": max_new + 1,
                     "min_decoding_length": min_len, "suppress_sequences": [[vocab.target[cfg.pad_token_id]]]},
                    not differs, "; ".join(differs) or "fairseq forces EOS at max_len, CTranslate2 keeps the "
                                                       "token it picked (only for outputs that reach the limit)")
    if semantics == "hf":
        lp = float(gen.get("length_penalty", gen.get("lenpen", 1.0)))
        return _Run(f"transformers beam {BEAM}, length_penalty {lp:g}, early_stopping=True",
                    {"semantics": "hf", "num_beams": BEAM, "length_penalty": lp, "early_stopping": True,
                     "max_new_tokens": max_new, "pad_left": False},
                    {"beam_size": BEAM, "length_penalty": lp, "max_decoding_length": max_new,
                     "min_decoding_length": 0}, lp != 0,
                    None if lp != 0 else "with length_penalty 0 CTranslate2 stops once the best hypothesis finished")
    # marian: no setting makes the rules coincide; compare with the folder's own options
    normalize = float(gen.get("normalize", 0.0))
    factor = float(gen.get("max_length_factor", 3.0))
    allow_unk = bool(gen.get("allow_unk", False))
    cap = min(math.ceil(factor * src_width), cfg.max_target_positions - 1)
    return _Run(f"Marian beam {BEAM}, normalize {normalize:g}; CTranslate2 beam {BEAM}",
                {"semantics": "marian", "beam_size": BEAM, "normalize": normalize, "max_length_factor": factor,
                 "allow_unk": allow_unk, "word_penalty": float(gen.get("word_penalty", 0.0))},
                {"beam_size": BEAM, "length_penalty": normalize, "max_decoding_length": cap,
                 "min_decoding_length": 0, "disable_unk": not allow_unk}, False,
                "Marian shrinks the beam by one per finished hypothesis and stops a sentence when it is empty; "
                "CTranslate2 keeps beam live hypotheses (refilled from 2 x beam candidates) and stops at beam "
                "finished ones")


def _ct2_outputs(translator: Any, sources: list[list[str]], index: dict[str, int], options: dict[str, Any],
                 target_prefix: list[str]) -> list[list[int]]:
    """CTranslate2's best hypothesis per source, as target ids (EOS included when it ended there;
    ``target_prefix`` forced first, and part of the hypothesis as of the port's)."""
    prefix = {"target_prefix": [target_prefix] * len(sources)} if target_prefix else {}
    results = translator.translate_batch(sources, return_end_token=True, max_input_length=0, **options, **prefix)
    return [[index[t] for t in r.hypotheses[0]] for r in results]


@torch.no_grad()
def full_forward_greedy(model: Seq2SeqModel, ids: list[list[int]], *, max_new: int, min_new: int) -> list[list[int]]:
    """Greedy search that recomputes the whole prefix every step (no KV cache):
    what the port's full forward computes, for models whose incremental decoder
    differs from it (``cached_self_kv_unnormed``). Same rule as ``generate(greedy=True)``."""
    cfg = model.cfg
    src = pad_batch(ids, cfg.pad_token_id, left=False)
    enc = model.encode(src)
    prev = torch.full((len(ids), 1), cfg.decoder_start_token_id, dtype=torch.long)
    out: list[list[int]] = [[] for _ in ids]
    live = list(range(len(ids)))
    for step in range(max_new):
        logits = model.decode(prev[live], enc.reorder(torch.tensor(live)))[:, -1]
        if step < min_new:
            logits[:, cfg.eos_token_id] = -math.inf
        nxt = logits.argmax(-1)
        column = torch.full((len(ids), 1), cfg.pad_token_id, dtype=torch.long)
        column[live, 0] = nxt
        prev = torch.cat([prev, column], dim=1)
        for row, token in zip(live, nxt.tolist()):
            out[row].append(token)
        live = [row for row in live if out[row][-1] != cfg.eos_token_id]
        if not live:
            break
    return out


def _compare(run: _Run, ours: list[list[int]], theirs: list[list[int]], positions: list[int]) -> Ct2Comparison:
    """The two searches' outputs compared; ``positions``: each output's 0-based line in the data."""
    differing = [positions[i] for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    options = {**run.ct2, "return_end_token": True}
    return Ct2Comparison(rule=run.rule, options=options, identical=len(ours) - len(differing), lines=len(ours),
                         rules_coincide=run.coincide, rule_difference=run.difference, differing=differing[:_SHOWN])


def _tokens(hyps: list[list[Any]]) -> list[list[int]]:
    return [list(h[0].tokens) for h in hyps]


@contextlib.contextmanager
def _ct2_logs(ctranslate2: Any) -> Iterator[None]:
    """CTranslate2's C++ log lines (a float16 export loaded on a CPU: "converted to use the float32 compute
    type") shown only when the root logger shows INFO (``--verbose``), as the other libraries' notes are."""
    before = ctranslate2.get_log_level()
    ctranslate2.set_log_level(logging.INFO if logging.getLogger().isEnabledFor(logging.INFO) else logging.ERROR)
    try:
        yield
    finally:
        ctranslate2.set_log_level(before)


def verify_export(directory: Path, ported: PortedModel, vocab: Vocabularies, lines: list[str],
                  quantization: str | None, placement: _Placement | None = None) -> Ct2Verification:
    """Load ``directory`` with ``ctranslate2.Translator`` (CPU) and decode
    ``lines`` greedily and with beam search on both sides (see the module
    docstring for the rules); greedy must be identical unless quantized.
    ``placement``: the special tokens around the sources and forced on the
    targets (default: the port's own, for a port without languages)."""
    import ctranslate2

    if not lines:
        raise InvalidInputError("the verification data is empty (give lines to translate, or --no-verify)")
    cfg, model = ported.config, ported.model
    semantics = ported.generation_config.get("semantics", "fairseq")
    tok = ported.tokenizer
    placement = placement or _placement(ported, Direction())
    limit = cfg.max_source_positions
    ids = [placement.source_prefix + tok.encode(line) for line in lines]
    ids = [s if len(s) <= limit else [*s[: limit - 1], cfg.eos_token_id] for s in ids]
    if any(not s or s[-1] != cfg.eos_token_id for s in ids):
        raise InvalidInputError("the port's tokenizer does not end every source with </s>, which the CTranslate2 "
                                "export adds (add_source_eos)")
    # CTranslate2 answers an empty source (no token before </s>) with an empty translation without running
    # the model, where the port decodes the lone </s> as fairseq and Marian do: such lines are left out
    positions = [i for i, s in enumerate(ids) if len(s) > 1]
    if not positions:
        raise InvalidInputError("the verification data holds only empty lines, which CTranslate2 does not "
                                "translate (an empty source gets an empty output); give lines with text")
    empty_lines = len(ids) - len(positions)
    ids = [ids[i] for i in positions]
    sources = [[vocab.source[i] for i in s[:-1]] for s in ids]
    index = {t: i for i, t in enumerate(vocab.target)}
    translator = ctranslate2.Translator(str(directory), device="cpu", compute_type="default",
                                        intra_threads=max(1, torch.get_num_threads()))
    max_new = min(MAX_NEW_TOKENS, 2 * max(map(len, ids)) + 10, cfg.max_target_positions - 1)

    target_prefix = [vocab.target[t] for t in placement.target_prefix]

    greedy = _greedy_run(cfg, semantics, max_new)
    full_forward = cfg.cached_self_kv_unnormed
    assert not (full_forward and target_prefix), "a Marian pre-norm port has no forced target tokens"
    forced = {"prefix_tokens": tuple(placement.target_prefix)} if target_prefix else {}
    port_greedy = _tokens(generate(model, ids, **greedy.port, **forced))
    ref_greedy = (full_forward_greedy(model, ids, max_new=max_new, min_new=greedy.ct2["min_decoding_length"])
                  if full_forward else port_greedy)
    greedy_cmp = _compare(greedy, ref_greedy, _ct2_outputs(translator, sources, index, greedy.ct2, target_prefix),
                          positions)

    beam = _beam_run(ported, vocab, max_new, max(map(len, ids)))
    beam_cmp = _compare(beam, _tokens(generate(model, ids, **beam.port, **placement.search)),
                        _ct2_outputs(translator, sources, index, beam.ct2, target_prefix), positions)

    exact = quantization in (None, "float32")
    failure = None
    if exact and greedy_cmp.identical != len(ids):
        failure = (f"greedy outputs differ on {len(ids) - greedy_cmp.identical}/{len(ids)} lines (first: line "
                   f"{greedy_cmp.differing[0] + 1})")
    return Ct2Verification(
        lines=len(ids), compute_type=translator.compute_type, exact=exact, empty_lines=empty_lines,
        reference="the port's full-forward greedy search (no KV cache)" if full_forward
        else "the port's greedy search",
        greedy=greedy_cmp, beam=beam_cmp,
        port_greedy_identical=sum(a == b for a, b in zip(port_greedy, ref_greedy)) if full_forward else None,
        passed=failure is None, failure=failure, languages=placement.languages,
        source_prefix=[vocab.source[t] for t in placement.source_prefix], target_prefix=target_prefix)


__all__ = ["BEAM", "DEFAULT_DATA", "QUANTIZATIONS", "Vocabularies", "build_spec", "default_lines", "export_ct2",
           "full_forward_greedy", "verify_export"]
