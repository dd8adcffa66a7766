"""Export a ported folder as ONNX graphs for onnxruntime.

``export_onnx(PORTED_DIR, OUT)`` writes two graphs traced from the unified
:class:`~modelport.model.transformer.Seq2SeqModel` (fp32, TorchScript
exporter, so no onnxscript is needed):

* ``encoder.onnx``: ``input_ids`` ``[batch, src_len]`` int64 →
  ``encoder_hidden_states`` ``[batch, src_len, d_model]`` and
  ``encoder_attention_mask`` ``[batch, src_len]`` int64 (1 = real token,
  0 = pad: ``input_ids != pad``), which the decoder takes;
* ``decoder.onnx``: ``decoder_input_ids`` ``[batch, tgt_len]`` (the decoder
  start token first), ``encoder_hidden_states``, ``encoder_attention_mask`` →
  ``logits`` ``[batch, tgt_len, vocab]`` fp32. There is no KV cache: a
  decoding loop feeds the whole prefix every step, so step ``t`` costs ``t``
  positions (quadratic in the output length, fine for short outputs).

Batch and lengths are dynamic axes. The tokenizer folder, ``config.json``
and ``generation_config.json`` are copied beside the graphs, and
``export_report.json`` records versions, opset, the graphs' inputs and
outputs, the special token ids and the verification.

Verification (default on) runs both graphs with onnxruntime's CPU provider
and compares with the port: teacher-forced logits on a right-padded batch,
on each sentence alone and on a source longer than any seen at export time
(max |diff| ≤ :data:`~modelport.exporters.hf.TOL`), and greedy decoding with
the graphs against modelport's greedy search (identical tokens). A failure
raises :class:`~modelport.errors.ParityError` (exit 3) and leaves nothing.

Refused (:class:`~modelport.errors.InvalidInputError`, exit 2): ensembles (an
ONNX decoder is one network), Marian SSRU decoders (the trace would unroll
the recurrence to a fixed length), quantized folders (their int8 modules are not
plain ONNX ops; export before quantizing), and anything the exporter fails on
(the reason in one line).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from modelport._version import __version__
from modelport.api import PortedModel, load
from modelport.errors import InvalidInputError, ParityError
from modelport.exporters import REPORT_NAME
from modelport.exporters.common import max_abs_diff, open_for_export
from modelport.exporters.hf import DEFAULT_LINES, TOL
from modelport.generation import generate
from modelport.generation.translate import pad_batch
from modelport.model.folder import CONFIG_NAME, CONVERSION_NAME, GENERATION_NAME, TOKENIZER_DIR, PortedFolder
from modelport.model.io import atomic_output_dir, write_json
from modelport.model.transformer import EncoderOutput, Seq2SeqModel
from modelport.progress import Steps
from modelport.reports.export import OnnxExportReport, OnnxGraph, OnnxVerification

OPSET = 17  # LayerNormalization is a single op from 17 on; scaled_dot_product_attention exports from 14
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
ENCODER_INPUTS = ["input_ids"]
ENCODER_OUTPUTS = ["encoder_hidden_states", "encoder_attention_mask"]
DECODER_INPUTS = ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask"]
DECODER_OUTPUTS = ["logits"]
_GREEDY_MAX_NEW_TOKENS = 24  # verification only: enough to reach EOS or the length limit
_COPIED = (CONFIG_NAME, GENERATION_NAME, CONVERSION_NAME)  # beside the graphs, with the tokenizer


class EncoderGraph(nn.Module):
    """The encoder as traced: token ids → hidden states and the 0/1 source mask."""

    def __init__(self, model: Seq2SeqModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> tuple[Tensor, Tensor]:
        enc = self.model.encode(input_ids)
        return enc.hidden, (~enc.padding_mask).long()


class DecoderGraph(nn.Module):
    """The full-prefix decoder as traced (no KV cache): fp32 logits for every
    prefix position, so one graph serves teacher forcing and step-by-step decoding."""

    def __init__(self, model: Seq2SeqModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, decoder_input_ids: Tensor, encoder_hidden_states: Tensor,
                encoder_attention_mask: Tensor) -> Tensor:
        return self.model.decode(decoder_input_ids, EncoderOutput(encoder_hidden_states,
                                                                  encoder_attention_mask.eq(0)))


def _folder_problems(folder: PortedFolder) -> list[str]:
    """Refusals read from config.json before the weights load."""
    problems = []
    if folder.ensemble_size > 1:
        problems.append(f"an ensemble of {folder.ensemble_size} models is not supported (an ONNX decoder is "
                        "one network; convert a single checkpoint)")
    autoreg = folder.config.decoder_autoreg
    if autoreg != "self-attention":
        # the tracer would unroll the SSRU's loop over time to the example's length
        problems.append(f"a decoder with `decoder_autoreg` {autoreg} (Marian's SSRU decoder) is not supported (its "
                        "recurrence over time cannot be traced into the full-prefix decoder graph)")
    if folder.quantization:
        problems.append(f"a quantized folder ({folder.quantization}) is not supported (export the folder "
                        "before `modelport quantize`)")
    return problems


def _example_inputs(model: Seq2SeqModel) -> tuple[Tensor, Tensor]:
    """Small trace inputs: two sources and two prefixes, the second of each
    right-padded. Padding in the prefix matters: the decoder masks padded
    target keys only when the prefix has padding (a data-dependent branch the
    trace records), and the mask is the identity on unpadded rows."""
    cfg = model.cfg
    special = {cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id, cfg.decoder_start_token_id}
    ids = [i for i in range(min(cfg.source_vocab_size, cfg.target_vocab_size)) if i not in special][:3]
    pad, eos, start = cfg.pad_token_id, cfg.eos_token_id, cfg.decoder_start_token_id
    src = torch.tensor([[*ids, eos], [ids[0], eos, pad, pad]])
    prev = torch.tensor([[start, *ids[:2]], [start, pad, pad]])
    return src, prev


def _export_graphs(model: Seq2SeqModel, folder: Path, opset: int) -> None:
    """Trace both graphs into ``folder`` and check them with onnx's checker."""
    import onnx

    src, prev = _example_inputs(model)
    batch_src = {0: "batch", 1: "src_len"}
    with torch.no_grad():
        hidden, mask = EncoderGraph(model)(src)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about every Python bool/int it records as a constant (checked by verification)
        warnings.simplefilter("ignore")
        torch.onnx.export(EncoderGraph(model), (src,), str(folder / ENCODER_FILE), dynamo=False,
                          opset_version=opset, input_names=ENCODER_INPUTS, output_names=ENCODER_OUTPUTS,
                          dynamic_axes={"input_ids": batch_src, "encoder_hidden_states": batch_src,
                                        "encoder_attention_mask": batch_src})
        torch.onnx.export(DecoderGraph(model), (prev, hidden, mask), str(folder / DECODER_FILE), dynamo=False,
                          opset_version=opset, input_names=DECODER_INPUTS, output_names=DECODER_OUTPUTS,
                          dynamic_axes={"decoder_input_ids": {0: "batch", 1: "tgt_len"},
                                        "encoder_hidden_states": batch_src, "encoder_attention_mask": batch_src,
                                        "logits": {0: "batch", 1: "tgt_len"}})
    for name in (ENCODER_FILE, DECODER_FILE):
        _drop_noop_casts(folder / name)
        onnx.checker.check_model(str(folder / name))


def _drop_noop_casts(path: Path) -> None:
    """Remove ``Cast`` nodes whose input already has the target type.

    The unified model's fp32 up-casts (T5's RMS norm computes in fp32 and
    casts back) trace to chained no-op casts, and onnxruntime's basic graph
    optimizer (1.2x-1.3x) drops one of them but leaves its consumer pointing at
    the removed output, so the session fails to load. Consumers are rewired
    to the cast's input instead; a cast that is a graph output stays.
    """
    import onnx

    model = onnx.load(str(path))
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
        onnx.save(model, str(path))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def export_onnx(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, force: bool = False,
                opset: int = OPSET, verify: bool = True, progress: bool = False,
                lines: Sequence[str] | None = None) -> OnnxExportReport:
    """Write ``ported_dir`` as ``encoder.onnx`` + ``decoder.onnx`` in ``output_dir``; return the report.

    Refuses (:class:`InvalidInputError`) ensembles, quantized folders and
    graphs the exporter fails on. With ``verify`` the graphs run in
    onnxruntime against the port on ``lines`` (default: a few built-in
    sentences); a mismatch raises :class:`ParityError` and leaves nothing.
    """
    folder = open_for_export(ported_dir, output_dir, force)  # checked, weights not loaded yet
    problems = _folder_problems(folder)
    if problems:
        raise InvalidInputError(f"`{ported_dir}` cannot be exported to ONNX: " + "; ".join(problems))
    try:  # heavy, and only this exporter needs them: imported when an export runs
        import onnx
        import onnxruntime
    except ImportError as e:
        raise InvalidInputError(f"ONNX export needs the `onnx` and `onnxruntime` packages ({e}); install "
                                "modelport's [onnx] extra") from None
    with Steps("export onnx", 3 if verify else 2, progress) as bar:
        ported = load(folder.path)
        model = ported.model.float().eval()  # fp32 graphs whatever the folder's dtype
        cfg = model.cfg
        bar.advance("loaded")

        with atomic_output_dir(output_dir, force=force) as tmp:
            try:
                _export_graphs(model, tmp, opset)
                runtime = OnnxSeq2Seq(tmp)  # onnxruntime must load what was written, verified or not
            except Exception as e:  # the exporter's reasons are many; the user gets one line
                raise InvalidInputError(f"`{ported_dir}` cannot be exported to ONNX: {_one_line(e)}") from e
            shutil.copytree(ported.tokenizer_dir, tmp / TOKENIZER_DIR)
            for name in _COPIED:
                if (folder.path / name).exists():
                    shutil.copy2(folder.path / name, tmp / name)
            semantics = ported.generation_config.get("semantics", "fairseq")
            bar.advance("written")
            report = OnnxExportReport(
                modelport_version=__version__, torch_version=torch.__version__, onnx_version=onnx.__version__,
                onnxruntime_version=onnxruntime.__version__, opset=opset, ported_dir=str(folder.path.resolve()),
                source_format=ported.source_format, dtype="float32",
                encoder=OnnxGraph(ENCODER_FILE, ENCODER_INPUTS, ENCODER_OUTPUTS),
                decoder=OnnxGraph(DECODER_FILE, DECODER_INPUTS, DECODER_OUTPUTS, kv_cache=False,
                                  note="full-prefix decoder: feed the decoder start token plus every token so far "
                                       "each step and read the last position's logits (the prefix is recomputed)"),
                special_tokens={"pad": cfg.pad_token_id, "eos": cfg.eos_token_id, "bos": cfg.bos_token_id,
                                "decoder_start": cfg.decoder_start_token_id},
                semantics=semantics,
                verification=verify_export(runtime, ported, list(lines or DEFAULT_LINES)) if verify else None)
            if verify:
                bar.advance("verified")
            write_json(tmp / REPORT_NAME, report.to_json())
            check = report.verification
            if check is not None and not check.passed:
                raise ParityError(f"the ONNX export of `{ported_dir}` does not match the port: {check.failure} "
                                  "(nothing was written)")
        return report


# ---------------------------------------------------------------------------
# verification


class OnnxSeq2Seq:
    """The two exported graphs in onnxruntime (CPU): teacher-forced logits and
    greedy decoding with the full-prefix decoder."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.log_severity_level = 3  # onnxruntime's warnings about unused initializers are noise here
        make = lambda name: onnxruntime.InferenceSession(  # noqa: E731
            str(folder / name), opts, providers=["CPUExecutionProvider"])
        self.encoder, self.decoder = make(ENCODER_FILE), make(DECODER_FILE)

    def encode(self, src: Tensor) -> tuple[Any, Any]:
        hidden, mask = self.encoder.run(ENCODER_OUTPUTS, {"input_ids": src.numpy()})
        return hidden, mask

    def logits(self, src: Tensor, prev: Tensor, enc: tuple[Any, Any] | None = None) -> Tensor:
        hidden, mask = enc if enc is not None else self.encode(src)
        out = self.decoder.run(DECODER_OUTPUTS, {"decoder_input_ids": prev.numpy(),
                                                 "encoder_hidden_states": hidden, "encoder_attention_mask": mask})
        return torch.from_numpy(out[0])

    def greedy(self, src: Tensor, *, start: int, eos: int, pad: int, max_new_tokens: int) -> list[list[int]]:
        """transformers' greedy loop (argmax of the raw logits; finished rows
        emit pad): per row, the tokens after the start token up to EOS."""
        enc = self.encode(src)
        tokens = torch.full((src.size(0), 1), start, dtype=torch.long)
        unfinished = torch.ones(src.size(0), dtype=torch.bool)
        lengths = torch.zeros(src.size(0), dtype=torch.long)
        for _ in range(max_new_tokens):
            nxt = self.logits(src, tokens, enc)[:, -1].argmax(-1)
            nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
            lengths += unfinished.long()
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            unfinished &= nxt.ne(eos)
            if not bool(unfinished.any()):
                break
        return [tokens[i, 1: n + 1].tolist() for i, n in enumerate(lengths.tolist())]


def verify_export(runtime: OnnxSeq2Seq, ported: PortedModel, lines: list[str]) -> OnnxVerification:
    """Run the exported graphs with onnxruntime and compare with the port.

    Teacher-forced logits (on the port's own greedy outputs) within
    :data:`TOL` on a right-padded batch of every line, on each line alone and
    on one source longer than any line (all lines joined: a length not seen
    at export time); greedy tokens identical to modelport's greedy search
    under the folder's semantics. Sources longer than the model's position
    limit are cut to it (the port cannot run them either).
    """
    cfg, model = ported.config, ported.model
    pad, eos, start = cfg.pad_token_id, cfg.eos_token_id, cfg.decoder_start_token_id
    ids = [ported.tokenizer.encode(line) for line in lines]
    ids.append(ported.tokenizer.encode(" ".join(lines)))  # longer than any single line
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
            diffs[name] = max_abs_diff(runtime.logits(s, p), model(s, p))
    worst = max(diffs, key=lambda k: diffs[k])
    if not diffs[worst] <= TOL:
        failures.append(f"max |logit diff| {diffs[worst]:.2e} > {TOL:.0e} ({worst})")
    theirs = runtime.greedy(src, start=start, eos=eos, pad=pad, max_new_tokens=max_new)
    same = sum(a == b for a, b in zip(ours, theirs))
    if same != len(ids):
        failures.append(f"greedy outputs differ on {len(ids) - same}/{len(ids)} sentences")
    return OnnxVerification(
        lines=len(lines), sentences=len(ids), tolerance=TOL, provider="CPUExecutionProvider", batch=src.size(0),
        src_len=[min(map(len, ids)), max(map(len, ids))], tgt_len_max=prev.size(1),
        max_abs_logit_diff=diffs[worst], padded_batch_logit_diff=diffs["padded_batch"], greedy_identical=same,
        greedy_max_new_tokens=max_new, semantics=semantics, passed=not failures,
        failure="; ".join(failures) or None)


__all__ = ["export_onnx", "verify_export", "OnnxSeq2Seq", "EncoderGraph", "DecoderGraph", "OPSET"]
