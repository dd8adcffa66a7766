"""Export a ported folder as ONNX graphs with a KV cache for onnxruntime.

``export_onnx(PORTED_DIR, OUT)`` writes three graphs traced from the unified
:class:`~modelport.model.transformer.Seq2SeqModel` (fp32, TorchScript
exporter, so no onnxscript is needed), laid out as Optimum's seq2seq exports
(names and shapes in :mod:`modelport.runtimes.onnx`, which runs them):

* ``encoder.onnx``: ``input_ids`` → ``encoder_hidden_states``, ``encoder_attention_mask``;
* ``decoder.onnx``: the first decoding step (or a whole prefix): ``decoder_input_ids``
  + the encoder outputs → ``logits`` and the cache it leaves, per layer the
  self-attention keys/values and the cross-attention keys/values of the
  encoder states (computed here, once per sentence);
* ``decoder_with_past.onnx``: every later step: one new token per row, the
  source mask and the cache → ``logits`` and the new token's own
  self-attention keys/values (attended apart from the cache, which the
  runtime extends: :class:`DecoderWithPastGraph`). The new token's position
  (learned or sinusoidal tables, T5's relative position bias, Marian's
  unnormalised cached keys) is the past length, read from the cache's shape
  inside the graph, so a step costs the same whatever the output length (the
  prefix is never recomputed).

Batch, source length, prefix and past lengths are dynamic axes. The
tokenizer folder, ``config.json`` and ``generation_config.json`` are copied
beside the graphs, and ``export_report.json`` records versions, opset, the
graphs' inputs and outputs, the special token ids and the verification.

Verification (default on) runs the graphs with onnxruntime's CPU provider
and compares with the port: teacher-forced logits (max |diff| ≤
:data:`~modelport.exporters.hf.TOL` on every real target position) through
the cache one step at a time and through ``decoder.onnx`` in one pass, on a
right-padded batch of every line, on each line alone and on a source longer
than any line; greedy outputs identical; and modelport's own beam search
(the folder's semantics, beam :data:`VERIFY_BEAM`) on onnxruntime
(:class:`~modelport.runtimes.onnx.OnnxSeq2Seq`) token-identical to the same
search on the port. A failure raises :class:`~modelport.errors.ParityError`
(exit 3) and leaves nothing.

``int8=True`` then quantizes the verified graphs with onnxruntime's dynamic
quantization (int8 weights of the MatMuls with a constant weight, activations
quantized per call) and records their agreement with the fp32 port
(:class:`~modelport.reports.export.OnnxInt8Agreement`; measured, not gated).

A Marian SSRU decoder's cache is its cell state per layer (see
:mod:`modelport.runtimes.onnx`). Refused (:class:`~modelport.errors.InvalidInputError`,
exit 2): ensembles, quantized folders (see
:func:`~modelport.runtimes.onnx.export_problems`), and anything the exporter
fails on (the reason in one line).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from modelport._version import __version__
from modelport.api import PortedModel, load
from modelport.errors import InvalidInputError, ParityError, first_line
from modelport.exporters import REPORT_NAME
from modelport.exporters.common import (
    max_abs_diff, nan_refused, open_for_export, verification_direction, verification_lines,
)
from modelport.exporters.hf import DEFAULT_LINES, TOL
from modelport.files import copy_folder_files, file_in_folder
from modelport.generation import generate
from modelport.generation.translate import Direction, pad_batch
from modelport.model.folder import CONFIG_NAME, CONVERSION_NAME, GENERATION_NAME, TOKENIZER_DIR
from modelport.model.io import atomic_output_dir, write_json
from modelport.model.layers import LayerCache
from modelport.model.transformer import DecoderState, EncoderOutput, Seq2SeqModel
from modelport.progress import Steps
from modelport.reports.export import OnnxExportReport, OnnxGraph, OnnxInt8Agreement, OnnxVerification
from modelport.runtimes.onnx import (
    DECODER_FILE,
    DECODER_INPUTS,
    DECODER_WITH_PAST_FILE,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    GRAPH_FILES,
    PAST_POSITIONS,
    SHARED_CROSS_KEYS,
    OnnxModel,
    OnnxSeq2Seq,
    decoder_outputs,
    decoder_with_past_inputs,
    decoder_with_past_outputs,
    export_problems,
    load_onnx,
)

if TYPE_CHECKING:
    import onnx

OPSET = 17  # LayerNormalization is a single op from 17 on; scaled_dot_product_attention exports from 14
MIN_OPSET = 14  # below it torch's exporter fails on the attention, after printing the whole graph
MAX_OPSET = 23  # torch 2.13's highest (torch.onnx._constants.ONNX_MAX_OPSET); 24 fails the same way, on stdout
VERIFY_BEAM = 5  # the beam of the verification's search on onnxruntime
INT8_METHOD = "onnxruntime quantize_dynamic: QInt8 weights of MatMuls with a constant weight, per tensor"
_GREEDY_MAX_NEW_TOKENS = 24  # verification only: enough to reach EOS or the length limit
_COPIED = (CONFIG_NAME, GENERATION_NAME, CONVERSION_NAME)  # beside the graphs, with the tokenizer
# the report's notes on the two decoder graphs: self-attention cache (False) or SSRU cell states (True)
_FIRST_NOTE = {
    False: "the first step (or a whole prefix): returns the logits of every position and the cache (present.*: "
           "self-attention and cross-attention keys/values)",
    True: "the first step (one position: the SSRU recurrence is not traced over time): returns its logits and the "
          "cache (present.*: each SSRU layer's cell state and the cross-attention keys/values)"}
_STEP_NOTE = {
    False: "every later step: one new token per row, the source mask and the cache (past_key_values.*, the present.* "
           "of the previous step with this step's own appended; encoder keys/values unchanged) -> the next logits "
           "and this step's own self-attention keys/values (present.*: one position)",
    True: "every later step: one new token per row, the source mask, past_positions (zeros: its length is the new "
          "token's position) and the cache (past_key_values.*, the present.* of the previous step; encoder "
          "keys/values unchanged) -> the next logits and the SSRU cell states after the new token"}


class EncoderGraph(nn.Module):
    """The encoder as traced: token ids → hidden states and the 0/1 source mask."""

    def __init__(self, model: Seq2SeqModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> tuple[Tensor, Tensor]:
        enc = self.model.encode(input_ids)
        return enc.hidden, (~enc.padding_mask).long()


def _recurrent(model: Seq2SeqModel) -> bool:
    """Whether the decoder is Marian's SSRU one (a cell state per layer, not a KV cache)."""
    return model.cfg.decoder_autoreg == "ssru"


def _cache_tensors(layers: list[LayerCache], cross: bool) -> list[Tensor]:
    out: list[Tensor] = []
    for c in layers:
        if c.ssru_state is not None:
            out.append(c.ssru_state)
        else:
            assert c.self_k is not None and c.self_v is not None
            out += [c.self_k, c.self_v]
        if cross:
            assert c.cross_k is not None and c.cross_v is not None
            out += [c.cross_k, c.cross_v]
    return out


class DecoderGraph(nn.Module):
    """The first step (or a whole prefix, teacher forcing) as traced: the
    model's own incremental decoder from an empty cache, returning the logits
    of every position and the cache it leaves (the cross-attention keys and
    values of the encoder states included)."""

    def __init__(self, model: Seq2SeqModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, decoder_input_ids: Tensor, encoder_hidden_states: Tensor,
                encoder_attention_mask: Tensor) -> tuple[Tensor, ...]:
        state = DecoderState()
        enc = EncoderOutput(encoder_hidden_states, encoder_attention_mask.eq(0))
        logits = self.model.decode(decoder_input_ids, enc, state)
        return (logits, *_cache_tensors(state.layers, cross=True))


class DecoderWithPastGraph(nn.Module):
    """One later step as traced: the model's incremental decoder on a cache
    given as inputs; the past length (the step's position) is the cache's
    shape, so the tracer records it as a dynamic value, not a constant. An
    SSRU decoder's cache (a cell state per layer) has no length: its first
    input after the mask, ``past_positions`` ``[1, past_len]``, gives it.

    ``past_apart`` (the default): the step attends to the past keys/values and
    to its own apart and returns only its own as ``present.*.decoder.*`` (one
    position), which the runtime appends to the cache in the copy that applies
    the search's reorder; otherwise (graphs written before) the cache one
    position longer, a second copy of it at every step."""

    def __init__(self, model: Seq2SeqModel, past_apart: bool = True) -> None:
        super().__init__()
        self.model = model
        self.past_apart = past_apart

    def forward(self, decoder_input_ids: Tensor, encoder_attention_mask: Tensor, *past: Tensor) -> tuple[Tensor, ...]:
        if _recurrent(self.model):
            steps, past = past[0].size(1), past[1:]
            layers = [LayerCache(ssru_state=past[i], cross_k=past[i + 1], cross_v=past[i + 2])
                      for i in range(0, len(past), 3)]
        else:
            steps = past[0].size(2)
            layers = [LayerCache(self_k=past[i], self_v=past[i + 1], cross_k=past[i + 2], cross_v=past[i + 3],
                                 past_apart=self.past_apart) for i in range(0, len(past), 4)]
        state = DecoderState(layers=layers, steps=steps)
        # the encoder states are not read once the cross-attention keys are cached: the mask stands in
        enc = EncoderOutput(encoder_attention_mask, encoder_attention_mask.eq(0))
        logits = self.model.decode(decoder_input_ids, enc, state)
        return (logits, *_cache_tensors(layers, cross=False))


def _example_inputs(model: Seq2SeqModel) -> tuple[Tensor, Tensor]:
    """Small trace inputs: two sources (the second right-padded) and a
    three-token prefix (more than one position, so the causal mask is traced)."""
    cfg = model.cfg
    special = {cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id, cfg.decoder_start_token_id}
    ids = [i for i in range(min(cfg.source_vocab_size, cfg.target_vocab_size)) if i not in special][:3]
    pad, eos, start = cfg.pad_token_id, cfg.eos_token_id, cfg.decoder_start_token_id
    src = torch.tensor([[*ids, eos], [ids[0], eos, pad, pad]])
    prev = torch.tensor([[start, *ids[:2]], [start, ids[1], ids[0]]])
    return src, prev


def _export_graphs(model: Seq2SeqModel, folder: Path, opset: int, past_apart: bool = True) -> None:
    """Trace the three graphs into ``folder`` and check them with onnx's checker
    (``past_apart``: see :class:`DecoderWithPastGraph`)."""
    import onnx

    n, recurrent = len(model.decoder.layers), _recurrent(model)
    src, prev = _example_inputs(model)
    if recurrent:  # the SSRU recurrence over a prefix is a Python loop, traced as unrolled: first step only
        prev = prev[:, :1]
    prefix = {0: "batch"} if recurrent else {0: "batch", 1: "tgt_len"}
    batch_src = {0: "batch", 1: "src_len"}
    with torch.no_grad():
        hidden, mask = EncoderGraph(model)(src)
        first = DecoderGraph(model)(prev, hidden, mask)
    cache: tuple[Tensor, ...] = first[1:]
    if recurrent:  # past_positions: the prefix's length as a shape
        cache = (torch.zeros(1, prev.size(1), dtype=torch.long), *cache)
    new = prev[:, -1:]

    def axes(name: str, length: str) -> dict[int, str]:
        if name == PAST_POSITIONS:
            return {1: "past_len"}
        if name.endswith(".decoder.state"):  # [batch, d_model]
            return {0: "batch"}
        return {0: "batch", 2: "src_len" if ".encoder." in name else length}

    first_axes = {name: axes(name, "tgt_len") for name in decoder_outputs(n, recurrent)[1:]}
    past_axes = {name: axes(name, "past_len") for name in decoder_with_past_inputs(n, recurrent)[2:]}
    step_axes = {name: axes(name, "past_len_plus_1") for name in decoder_with_past_outputs(n, recurrent)[1:]}
    if past_apart:  # the step's own keys/values: one position
        step_axes = {name: {0: "batch"} if ".decoder." in name else ax for name, ax in step_axes.items()}
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about every Python bool/int it records as a constant (checked by verification)
        warnings.simplefilter("ignore")
        torch.onnx.export(EncoderGraph(model), (src,), str(folder / ENCODER_FILE), dynamo=False,
                          opset_version=opset, input_names=ENCODER_INPUTS, output_names=ENCODER_OUTPUTS,
                          dynamic_axes={"input_ids": batch_src, "encoder_hidden_states": batch_src,
                                        "encoder_attention_mask": batch_src})
        torch.onnx.export(DecoderGraph(model), (prev, hidden, mask), str(folder / DECODER_FILE), dynamo=False,
                          opset_version=opset, input_names=DECODER_INPUTS,
                          output_names=decoder_outputs(n, recurrent),
                          dynamic_axes={"decoder_input_ids": prefix,
                                        "encoder_hidden_states": batch_src, "encoder_attention_mask": batch_src,
                                        "logits": prefix, **first_axes})
        torch.onnx.export(DecoderWithPastGraph(model, past_apart), (new, mask, *cache),
                          str(folder / DECODER_WITH_PAST_FILE),
                          dynamo=False, opset_version=opset, input_names=decoder_with_past_inputs(n, recurrent),
                          output_names=decoder_with_past_outputs(n, recurrent),
                          dynamic_axes={"decoder_input_ids": {0: "batch"}, "encoder_attention_mask": batch_src,
                                        "logits": {0: "batch"}, **past_axes, **step_axes})
    for name in GRAPH_FILES:
        graph = onnx.load(str(folder / name))
        changed = _drop_noop_casts(graph)
        if name != ENCODER_FILE:  # traced with Attention(shared=True): see modelport.runtimes.onnx
            onnx.helper.set_model_props(graph, {SHARED_CROSS_KEYS: "1"})
            changed = True
        if changed:
            onnx.save(graph, str(folder / name))
        onnx.checker.check_model(str(folder / name))


def _drop_noop_casts(model: onnx.ModelProto) -> bool:
    """Remove ``Cast`` nodes whose input already has the target type (in place); whether any was.

    The unified model's fp32 up-casts (T5's RMS norm computes in fp32 and
    casts back) trace to chained no-op casts, and onnxruntime's basic graph
    optimizer (1.2x-1.3x) drops one of them but leaves its consumer pointing at
    the removed output, so the session fails to load. Consumers are rewired
    to the cast's input instead; a cast that is a graph output stays.
    """
    import onnx

    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    outputs = {o.name for o in model.graph.output}
    renamed: dict[str, str] = {}
    kept = []
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        if node.op_type == "Cast" and node.output[0] not in outputs:
            to = next(a.i for a in node.attribute if a.name == "to")
            if types.get(node.input[0]) == to:
                renamed[node.output[0]] = node.input[0]
                continue
        kept.append(node)
    if renamed:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return bool(renamed)


def _graph_bytes(folder: Path) -> int:
    return sum((folder / name).stat().st_size for name in GRAPH_FILES)


def export_onnx(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, force: bool = False,
                opset: int = OPSET, verify: bool = True, progress: bool = False,
                lines: Sequence[str] | None = None, int8: bool = False, source_lang: str | None = None,
                target_lang: str | None = None) -> OnnxExportReport:
    """Write ``ported_dir`` as ``encoder.onnx`` + ``decoder.onnx`` +
    ``decoder_with_past.onnx`` in ``output_dir``; return the report.

    Refuses (:class:`InvalidInputError`) ensembles, quantized folders and
    graphs the exporter fails on. With ``verify`` the graphs run
    in onnxruntime against the port on ``lines`` (default: a few built-in
    sentences); a mismatch raises :class:`ParityError` and leaves nothing.
    ``int8``: the verified graphs are then quantized (onnxruntime dynamic
    int8) and their agreement with the fp32 port is reported.
    ``source_lang``/``target_lang``: the direction the verification
    translates in, for a multilingual port (required there, as for ``translate``).
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise InvalidInputError(f"the ONNX opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, but is {opset!r}")
    folder = open_for_export(ported_dir, output_dir, force)  # checked, weights not loaded yet
    problems = export_problems(folder.config, folder.ensemble_size, folder.quantization)
    if problems:
        raise InvalidInputError(f"`{ported_dir}` cannot be exported to ONNX: " + "; ".join(problems))
    try:  # heavy, and only this exporter needs them: imported when an export runs
        import onnx
        import onnxruntime
    except ImportError as e:
        raise InvalidInputError(f"ONNX export needs the `onnx` and `onnxruntime` packages ({e}); install "
                                "modelport's [onnx] extra") from None
    lines = verification_lines(lines, DEFAULT_LINES)
    with Steps("export onnx", 2 + verify + int8, progress) as bar:
        ported = load(folder.path)
        direction = verification_direction(ported, source_lang, target_lang, verify)  # before any work
        model = ported.model.float().eval()  # fp32 graphs whatever the folder's dtype
        cfg = model.cfg
        n, recurrent = len(model.decoder.layers), _recurrent(model)
        bar.advance("loaded")

        with atomic_output_dir(output_dir, force=force) as tmp:
            try:
                _export_graphs(model, tmp, opset)
                copy_folder_files(ported.tokenizer_dir, tmp / TOKENIZER_DIR)
                for name in _COPIED:
                    if (folder.path / name).exists():
                        shutil.copy2(file_in_folder(folder.path, name, name), tmp / name)
                exported = load_onnx(tmp)  # onnxruntime must load what was written, verified or not
            except Exception as e:  # the exporter's reasons are many; the user gets one line
                raise InvalidInputError(f"`{ported_dir}` cannot be exported to ONNX: {first_line(e)}") from e
            semantics = ported.generation_config.get("semantics", "fairseq")
            bar.advance("written")
            with nan_refused(ported_dir):
                check = verify_export(exported.runtime, ported, lines, exported, direction=direction) \
                    if verify else None
            if verify:
                bar.advance("verified")
            if check is not None and not check.passed:
                raise ParityError(f"the ONNX export of `{ported_dir}` does not match the port: {check.failure} "
                                  "(nothing was written)")
            agreement = _quantize(tmp, ported, lines, direction) if int8 else None
            if int8:
                bar.advance("quantized")
            report = OnnxExportReport(
                modelport_version=__version__, torch_version=torch.__version__, onnx_version=onnx.__version__,
                onnxruntime_version=onnxruntime.__version__, opset=opset, ported_dir=str(folder.path.resolve()),
                source_format=ported.source_format, dtype="int8" if int8 else "float32",
                encoder=OnnxGraph(ENCODER_FILE, ENCODER_INPUTS, ENCODER_OUTPUTS),
                decoder=OnnxGraph(DECODER_FILE, DECODER_INPUTS, decoder_outputs(n, recurrent), kv_cache=False,
                                  note=_FIRST_NOTE[recurrent]),
                decoder_with_past=OnnxGraph(
                    DECODER_WITH_PAST_FILE, decoder_with_past_inputs(n, recurrent),
                    decoder_with_past_outputs(n, recurrent), kv_cache=True, note=_STEP_NOTE[recurrent]),
                special_tokens={"pad": cfg.pad_token_id, "eos": cfg.eos_token_id, "bos": cfg.bos_token_id,
                                "decoder_start": cfg.decoder_start_token_id},
                semantics=semantics, verification=check, int8=agreement)
            write_json(tmp / REPORT_NAME, report.to_json())
        return report


# ---------------------------------------------------------------------------
# verification


def _real_diff(a: Tensor, b: Tensor, prev: Tensor, pad: int) -> float:
    """max |a - b| over the real target positions of ``prev`` (the start slot always counts)."""
    if a.shape != b.shape:
        return float("inf")
    real = prev.ne(pad)
    real[:, 0] = True
    return max_abs_diff(a[real], b[real])


@torch.no_grad()
def port_incremental(model: Seq2SeqModel, src: Tensor, prev: Tensor) -> Tensor:
    """The port's logits ``[B, T, V]`` of ``prev`` fed one position at a time
    through its KV cache, as beam search runs it. This is what the cached
    graphs must reproduce: with ``cached_self_kv_unnormed`` (Marian's pre-norm
    decoder) incremental decoding differs from a one-pass forward by design."""
    enc, state = model.encode(src), model.new_state()
    return torch.cat([model.decode(prev[:, t: t + 1], enc, state) for t in range(prev.size(1))], dim=1)


def verify_export(runtime: OnnxSeq2Seq, ported: PortedModel, lines: list[str],
                  exported: OnnxModel | None = None, beam: int = VERIFY_BEAM,
                  direction: Direction = Direction()) -> OnnxVerification:
    """Run the exported graphs with onnxruntime and compare with the port.

    Teacher-forced logits (on the port's own greedy outputs) within
    :data:`TOL` at every real target position, through the cache step by step
    (``decoder.onnx`` then ``decoder_with_past.onnx``, against the port's
    incremental decoding, :func:`port_incremental`) and, except for an SSRU
    decoder (its ``decoder.onnx`` takes one position), through ``decoder.onnx``
    in one pass (against the port's forward), on a right-padded batch of every line, on
    each line alone and on one source longer than any line (all lines joined:
    a length not seen at export time); greedy tokens identical to modelport's
    greedy search; and with ``exported`` (the folder loaded by
    :func:`~modelport.runtimes.onnx.load_onnx`), ``translate`` with beam
    ``beam`` under the folder's semantics on onnxruntime token-identical to
    the port's. Sources longer than the model's position limit are cut to it.
    A multilingual port's sources carry the language tokens of ``direction``
    where ``translate`` puts them.
    """
    cfg, model = ported.config, ported.model
    pad, eos, start = cfg.pad_token_id, cfg.eos_token_id, cfg.decoder_start_token_id
    ids = _source_ids(ported, [*lines, " ".join(lines)], direction)  # the last longer than any single line
    limit = cfg.max_source_positions  # the port's own limit (a learned position table has no more rows)
    ids = [s if len(s) <= limit else [*s[: limit - 1], eos] for s in ids]
    max_new = min(_GREEDY_MAX_NEW_TOKENS, cfg.max_target_positions - 1)
    semantics = ported.generation_config.get("semantics", "fairseq")
    src = pad_batch(ids, pad, left=False)
    ours = [h[0]["tokens"] for h in generate(model, src, semantics=semantics, greedy=True,
                                             max_new_tokens=max_new, pad_left=False)]
    prev = pad_batch([[start, *t] for t in ours], pad, left=False)

    failures: list[str] = []
    cases = {"padded_batch": (src, prev)}
    for i, (s, t) in enumerate(zip(ids, ours)):
        cases[f"line_{i}"] = (torch.tensor([s]), torch.tensor([[start, *t]]))
    diffs = {}
    with torch.no_grad():
        for name, (s, p) in cases.items():
            diffs[name] = _real_diff(runtime.teacher_forced(s, p), port_incremental(model, s, p), p, pad)
            if not runtime.recurrent:  # an SSRU decoder's decoder.onnx runs the first position only
                diffs[f"{name} (decoder.onnx, one pass)"] = _real_diff(runtime.full_prefix(s, p), model(s, p), p, pad)
    worst = max(diffs, key=lambda k: diffs[k])
    if not diffs[worst] <= TOL:
        failures.append(f"max |logit diff| {diffs[worst]:.2e} > {TOL:.0e} ({worst})")
    theirs = runtime.greedy(src, start=start, eos=eos, pad=pad, max_new_tokens=max_new)
    same = sum(a == b for a, b in zip(ours, theirs))
    if same != len(ids):
        failures.append(f"greedy outputs differ on {len(ids) - same}/{len(ids)} sentences")
    beam_same, score_diff = None, None
    if exported is not None:
        beam_same, score_diff, first_diff = beam_agreement(ported, exported, lines, beam, direction)
        if beam_same != len(lines):
            failures.append(f"beam-{beam} outputs differ on {len(lines) - beam_same}/{len(lines)} lines (first: "
                            f"line {first_diff + 1})")
    return OnnxVerification(
        lines=len(lines), sentences=len(ids), tolerance=TOL, provider="CPUExecutionProvider", batch=src.size(0),
        src_len=[min(map(len, ids)), max(map(len, ids))], tgt_len_max=prev.size(1),
        max_abs_logit_diff=diffs[worst], padded_batch_logit_diff=diffs["padded_batch"], greedy_identical=same,
        greedy_max_new_tokens=max_new, semantics=semantics, passed=not failures,
        failure="; ".join(failures) or None, beam_size=beam if exported is not None else None,
        beam_identical=beam_same, beam_max_score_diff=score_diff,
        languages=direction.pair)


def _source_ids(ported: PortedModel, lines: list[str], direction: Direction) -> list[list[int]]:
    """``lines`` encoded as ``translate`` encodes them (a multilingual port's language tokens placed)."""
    before, after, _, _ = direction.tokens(ported.tokenizer, ported.generation_config, ported.config.eos_token_id)
    return [before + ported.tokenizer.encode(line) + after for line in lines]


def beam_agreement(ported: PortedModel, exported: OnnxModel, lines: list[str],
                   beam: int, direction: Direction = Direction()) -> tuple[int, float, int]:
    """``translate(lines, beam=beam)`` on the port and on onnxruntime, the
    folder's semantics and defaults for both (``direction``: a multilingual
    port's languages): the number of lines with identical n-best token
    lists, the largest score difference among them, and the first differing
    line (-1 when none)."""
    ours = ported.translate(lines, beam=beam, **direction.options())
    theirs = exported.translate(lines, beam=beam, **direction.options())
    same, worst, first = 0, 0.0, -1
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if [h.tokens for h in a] == [h.tokens for h in b]:
            same += 1
            worst = max([worst, *(abs(x.score - y.score) for x, y in zip(a, b))])
        elif first < 0:
            first = i
    return same, worst, first


def _quantize(folder: Path, ported: PortedModel, lines: list[str], direction: Direction) -> OnnxInt8Agreement:
    """Replace the fp32 graphs in ``folder`` by onnxruntime's dynamic int8
    quantization of them and measure the result against the fp32 port."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    before = _graph_bytes(folder)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger per graph
    try:
        for name in GRAPH_FILES:
            path = folder / name
            quantized = path.with_name(path.stem + ".int8.onnx")
            # MatMulConstBOnly: only weight MatMuls (attention's activation x activation products stay fp32)
            quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8,
                             extra_options={"MatMulConstBOnly": True})
            quantized.replace(path)
    finally:
        root.setLevel(level)
    exported = load_onnx(folder)
    same, _, _ = beam_agreement(ported, exported, lines, VERIFY_BEAM, direction)
    cfg = ported.config
    ids = _source_ids(ported, lines, direction)
    src = pad_batch(ids, cfg.pad_token_id, left=False)
    hyps = generate(ported.model, src, semantics="hf", greedy=True, pad_left=False,
                    max_new_tokens=min(_GREEDY_MAX_NEW_TOKENS, cfg.max_target_positions - 1))
    prev = pad_batch([[cfg.decoder_start_token_id, *h[0].tokens] for h in hyps], cfg.pad_token_id, left=False)
    with torch.no_grad():
        diff = _real_diff(exported.runtime.teacher_forced(src, prev), port_incremental(ported.model, src, prev), prev,
                          cfg.pad_token_id)
    return OnnxInt8Agreement(method=INT8_METHOD, beam_size=VERIFY_BEAM, lines=len(lines), identical=same,
                             max_abs_logit_diff=diff, bytes_fp32=before, bytes_int8=_graph_bytes(folder))


__all__ = ["export_onnx", "verify_export", "beam_agreement", "port_incremental", "EncoderGraph", "DecoderGraph",
           "DecoderWithPastGraph", "OPSET", "VERIFY_BEAM"]
