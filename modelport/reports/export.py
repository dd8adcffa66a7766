"""What an export reports: :class:`ExportReport`, one subclass per target
(:class:`HfExportReport` for ``export hf``, :class:`OnnxExportReport` for
``export onnx``), written as ``export_report.json`` in the exported folder and
read back with :meth:`ExportReport.from_json` (dispatched on ``target``).
Plain data: imports nothing of modelport but the renderer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from modelport.reports.base import direction_lines, languages_from_json, languages_json
from modelport.reports.markdown import render_markdown
from modelport.reports.base import JsonView

EXPORT_REPORT_NAME = "export_report.json"  # in the exported folder

_TARGETS: dict[str, type[ExportReport]] = {}


def export_target(name: str) -> Callable[[type[ExportReport]], type[ExportReport]]:
    """Class decorator: the report type of the exporter ``name``."""

    def wrap(cls: type[ExportReport]) -> type[ExportReport]:
        cls.target = name
        _TARGETS[name] = cls
        return cls

    return wrap


@dataclass(frozen=True, kw_only=True)
class ExportReport(JsonView):
    """What every export records: modelport's version, the ported folder it
    came from and its source format; subclasses add their target's fields."""

    target: ClassVar[str]
    # the JSON keys after ``target``, in the order the exporter has always written them
    _json_order: ClassVar[tuple[str, ...]]
    # fields whose JSON is an object with its own from_json
    _nested: ClassVar[dict[str, Any]] = {}
    modelport_version: str
    ported_dir: str
    source_format: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target}
        for name in self._json_order:
            value = getattr(self, name)
            if value is None and name in ("verification", "tokenizer_note"):  # --no-verify; older reports
                continue
            out[name] = value.to_json() if hasattr(value, "to_json") else \
                type(value)(value) if isinstance(value, (list, dict)) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportReport:
        """The report of the exporter ``data["target"]`` names."""
        target = data.get("target")
        if target not in _TARGETS:
            raise ValueError(f"`{target}` is not a known export target (known: {', '.join(sorted(_TARGETS))})")
        return _TARGETS[target]._from_json(data)

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> ExportReport:
        kwargs = {}
        text = {f.name for f in fields(cls) if f.type == "str"}  # annotations are strings here (__future__)
        for name in cls._json_order:
            if name in data:  # a missing optional field takes its default
                value, kind = data[name], cls._nested.get(name)
                if name in text and not isinstance(value, str):  # a path or a name: Path(5) would fail later
                    raise ValueError(f"`{name}` must be a string, not {type(value).__name__}")
                kwargs[name] = kind.from_json(value) if kind is not None and value is not None else value
        return cls(**kwargs)

    @property
    def passed(self) -> bool | None:
        """The verification's verdict; None when it was skipped."""
        check = getattr(self, "verification", None)
        return None if check is None else check.passed

    def to_markdown(self) -> str:
        return render_markdown(self.to_json(), f"Export report ({self.target})")

    def summary_lines(self, output_dir: str | os.PathLike[str]) -> list[str]:
        """What ``modelport export <target>`` prints for an export written to ``output_dir``."""
        check = getattr(self, "verification", None)
        lines = [f"written to:    {output_dir}", *self._head_lines()]
        lines += ["verification:  skipped (--no-verify)"] if check is None else check.summary_lines(self)
        lines += self._tail_lines()
        lines.append(f"report:        {Path(output_dir) / EXPORT_REPORT_NAME}")
        return lines

    def _head_lines(self) -> list[str]:
        return []

    def _tail_lines(self) -> list[str]:
        return []


# ---------------------------------------------------------------------------
# export hf


@dataclass(frozen=True)
class HfVerification:
    """The transformers folder loaded back and compared with the port."""

    lines: int
    tolerance: float
    logits_and_outputs_checked: bool  # False for an approximate export: measured, not fatal
    classes: list[str]  # what the Auto classes loaded
    ids_equal: int
    tokenizer_mismatches: list[dict[str, Any]]  # the first few: line, modelport ids, transformers ids
    max_abs_logit_diff: float
    generate_identical: int
    generate_max_score_diff: float
    generate_options: dict[str, Any]
    passed: bool
    failure: str | None
    languages: tuple[str, str] | None = None  # a multilingual port's direction (source, target)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "tolerance": self.tolerance, **languages_json(self.languages),
                "logits_and_outputs_checked": self.logits_and_outputs_checked, "classes": list(self.classes),
                "tokenizer": {"ids_equal": self.ids_equal, "mismatches": list(self.tokenizer_mismatches)},
                "forward": {"max_abs_logit_diff": self.max_abs_logit_diff},
                "generate": {"identical": self.generate_identical, "max_score_diff": self.generate_max_score_diff,
                             "options": dict(self.generate_options)},
                "passed": self.passed, "failure": self.failure}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HfVerification:
        tok, fwd, gen = data["tokenizer"], data["forward"], data["generate"]
        return cls(lines=data["lines"], tolerance=data["tolerance"],
                   logits_and_outputs_checked=data["logits_and_outputs_checked"], classes=list(data["classes"]),
                   ids_equal=tok["ids_equal"], tokenizer_mismatches=list(tok["mismatches"]),
                   max_abs_logit_diff=fwd["max_abs_logit_diff"], generate_identical=gen["identical"],
                   generate_max_score_diff=gen["max_score_diff"], generate_options=dict(gen["options"]),
                   passed=data["passed"], failure=data["failure"], languages=languages_from_json(data))

    def summary_lines(self, report: ExportReport) -> list[str]:
        return [*direction_lines(self.languages),
                f"tokenizer:     {self.ids_equal}/{self.lines} lines with identical ids",
                f"forward:       max |logit diff| {self.max_abs_logit_diff:.2e}",
                f"generate:      {self.generate_identical}/{self.lines} identical beam outputs "
                "(modelport semantics hf)"]


@export_target("hf")
@dataclass(frozen=True, kw_only=True)
class HfExportReport(ExportReport):
    """``export hf``: the transformers classes written, whether they compute
    the port exactly, the exported decoding defaults and the verification."""

    transformers_version: str
    model_class: str
    tokenizer_class: str
    exact: bool
    approximations: list[str] = field(default_factory=list)
    generation_config: dict[str, Any] = field(default_factory=dict)  # transformers' GenerationConfig fields
    generation_notes: list[str] = field(default_factory=list)
    verification: HfVerification | None = None
    tokenizer_note: str | None = None  # which tokenizer was written and why ("none": refused, the reason)

    _json_order = ("modelport_version", "transformers_version", "ported_dir", "source_format", "model_class",
                   "tokenizer_class", "tokenizer_note", "exact", "approximations", "generation_config",
                   "generation_notes", "verification")
    _nested = {"verification": HfVerification}

    def _head_lines(self) -> list[str]:
        return [f"classes:       {self.model_class} + {self.tokenizer_class} "
                f"(transformers {self.transformers_version})",
                f"exact:         {'yes' if self.exact else 'no: ' + '; '.join(self.approximations)}"]

    def _tail_lines(self) -> list[str]:
        tokenizer = [f"tokenizer:     {self.tokenizer_note}"] if self.tokenizer_note else []
        return tokenizer + [f"note:          {note}" for note in self.generation_notes]


# ---------------------------------------------------------------------------
# export onnx


@dataclass(frozen=True)
class OnnxGraph:
    """One exported graph: its file and its input and output names."""

    file: str
    inputs: list[str]
    outputs: list[str]
    kv_cache: bool | None = None  # the decoder's: whether it takes a KV cache
    note: str | None = None  # the decoder's: how to drive it

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "inputs": list(self.inputs), "outputs": list(self.outputs)}
        if self.kv_cache is not None:
            out["kv_cache"] = self.kv_cache
        if self.note is not None:
            out["note"] = self.note
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OnnxGraph:
        return cls(file=data["file"], inputs=list(data["inputs"]), outputs=list(data["outputs"]),
                   kv_cache=data.get("kv_cache"), note=data.get("note"))


@dataclass(frozen=True)
class OnnxVerification:
    """Both graphs run in onnxruntime and compared with the port."""

    lines: int
    sentences: int  # the lines and one longer source
    tolerance: float
    provider: str
    batch: int
    src_len: list[int]  # shortest and longest source
    tgt_len_max: int
    max_abs_logit_diff: float  # the worst case
    padded_batch_logit_diff: float
    greedy_identical: int
    greedy_max_new_tokens: int
    semantics: str
    passed: bool
    failure: str | None
    # the KV-cache runtime driven by modelport's beam search (exports with decoder_with_past.onnx)
    beam_size: int | None = None
    beam_identical: int | None = None  # of `lines`: the same output tokens as the port's search
    beam_max_score_diff: float | None = None
    languages: tuple[str, str] | None = None  # a multilingual port: (source, target) the verification translated

    def to_json(self) -> dict[str, Any]:
        out = {"lines": self.lines, "sentences": self.sentences, "tolerance": self.tolerance,
               "provider": self.provider,
               "shapes": {"batch": self.batch, "src_len": list(self.src_len), "tgt_len_max": self.tgt_len_max},
               "forward": {"max_abs_logit_diff": self.max_abs_logit_diff,
                           "padded_batch": self.padded_batch_logit_diff},
               "greedy": {"identical": self.greedy_identical, "max_new_tokens": self.greedy_max_new_tokens,
                          "semantics": self.semantics}}
        if self.beam_size is not None:
            out["beam"] = {"beam": self.beam_size, "identical": self.beam_identical,
                           "max_score_diff": self.beam_max_score_diff, "semantics": self.semantics}
        return {**out, **languages_json(self.languages), "passed": self.passed, "failure": self.failure}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OnnxVerification:
        shapes, fwd, greedy = data["shapes"], data["forward"], data["greedy"]
        return cls(lines=data["lines"], sentences=data["sentences"], tolerance=data["tolerance"],
                   provider=data["provider"], batch=shapes["batch"], src_len=list(shapes["src_len"]),
                   tgt_len_max=shapes["tgt_len_max"], max_abs_logit_diff=fwd["max_abs_logit_diff"],
                   padded_batch_logit_diff=fwd["padded_batch"], greedy_identical=greedy["identical"],
                   greedy_max_new_tokens=greedy["max_new_tokens"], semantics=greedy["semantics"],
                   passed=data["passed"], failure=data["failure"], beam_size=data.get("beam", {}).get("beam"),
                   beam_identical=data.get("beam", {}).get("identical"),
                   beam_max_score_diff=data.get("beam", {}).get("max_score_diff"),
                   languages=languages_from_json(data))

    def summary_lines(self, report: ExportReport) -> list[str]:
        runtime = getattr(report, "onnxruntime_version", "?")
        return [f"forward:       max |logit diff| {self.max_abs_logit_diff:.2e} "
                f"(onnxruntime {runtime}, batch {self.batch})",
                f"greedy:        {self.greedy_identical}/{self.sentences} identical outputs "
                f"(modelport greedy, semantics {self.semantics})"] + (
            [] if self.beam_size is None else
            [f"beam {self.beam_size}:        {self.beam_identical}/{self.lines} identical outputs (modelport's "
             f"search on onnxruntime vs the port; max score diff {self.beam_max_score_diff:.1e}"
             f"{'; ' + '->'.join(self.languages) if self.languages else ''})"])


@dataclass(frozen=True)
class OnnxInt8Agreement:
    """``export onnx --int8``: the graphs quantized by onnxruntime's dynamic
    int8 quantization, compared with the fp32 port (measured, not gated)."""

    method: str
    beam_size: int
    lines: int
    identical: int  # of `lines`: int8 outputs token-identical to the fp32 port's
    max_abs_logit_diff: float  # teacher-forced, on the port's own outputs
    bytes_fp32: int
    bytes_int8: int

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "beam": self.beam_size, "lines": self.lines, "identical": self.identical,
                "max_abs_logit_diff": self.max_abs_logit_diff, "bytes_fp32": self.bytes_fp32,
                "bytes_int8": self.bytes_int8}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OnnxInt8Agreement:
        return cls(method=data["method"], beam_size=data["beam"], lines=data["lines"], identical=data["identical"],
                   max_abs_logit_diff=data["max_abs_logit_diff"], bytes_fp32=data["bytes_fp32"],
                   bytes_int8=data["bytes_int8"])


@export_target("onnx")
@dataclass(frozen=True, kw_only=True)
class OnnxExportReport(ExportReport):
    """``export onnx``: library versions, opset, the two graphs, the special
    token ids a decoding loop needs, the folder's semantics and the verification."""

    torch_version: str
    onnx_version: str
    onnxruntime_version: str
    opset: int
    dtype: str
    encoder: OnnxGraph
    decoder: OnnxGraph
    decoder_with_past: OnnxGraph | None = None  # absent in exports without a KV cache
    special_tokens: dict[str, int | None]  # pad, eos, bos, decoder_start
    semantics: str
    verification: OnnxVerification | None = None
    int8: OnnxInt8Agreement | None = None  # `export onnx --int8` only

    _json_order = ("modelport_version", "torch_version", "onnx_version", "onnxruntime_version", "opset",
                   "ported_dir", "source_format", "dtype", "encoder", "decoder", "decoder_with_past",
                   "special_tokens", "semantics", "verification", "int8")
    _nested = {"encoder": OnnxGraph, "decoder": OnnxGraph, "decoder_with_past": OnnxGraph,
               "verification": OnnxVerification, "int8": OnnxInt8Agreement}

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        for name in ("decoder_with_past", "int8"):  # optional sections: absent rather than null
            if out.get(name, 0) is None:
                del out[name]
        return out

    def _head_lines(self) -> list[str]:
        if self.decoder_with_past is None:
            return [f"graphs:        {self.encoder.file} + {self.decoder.file} (opset {self.opset}, fp32; decoder "
                    "without KV cache: the prefix is recomputed each step)"]
        own = "SSRU cell states" if "past_positions" in self.decoder_with_past.inputs else "self-attention KV cache"
        return [f"graphs:        {self.encoder.file} + {self.decoder.file} + {self.decoder_with_past.file} (opset "
                f"{self.opset}, {self.dtype}; {own}, cross-attention keys computed once)"]

    def _tail_lines(self) -> list[str]:
        if self.int8 is None:
            return []
        q = self.int8
        return [f"int8:          {q.identical}/{q.lines} beam-{q.beam_size} outputs identical to the fp32 port, max "
                f"|logit diff| {q.max_abs_logit_diff:.2e}, {q.bytes_int8 / 2**20:.1f} MiB "
                f"(fp32 {q.bytes_fp32 / 2**20:.1f} MiB; {q.method})"]


__all__ = ["EXPORT_REPORT_NAME", "ExportReport", "HfExportReport", "HfVerification", "OnnxExportReport",
           "OnnxGraph", "OnnxInt8Agreement", "OnnxVerification"]
