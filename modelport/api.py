"""The Python API: :func:`convert`, :func:`inspect` and :func:`load`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from modelport.converters.base import ConversionPlan, make_plan, source_paths, write_ported
from modelport.errors import InvalidInputError
from modelport.generation.hypothesis import Hypothesis
from modelport.generation.placement import dtype_name, resolve_device, resolve_dtype
from modelport.generation.semantics import check_generation_config
from modelport.generation.translate import translate, translate_windows
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import GENERATION_NAME, check_folder, check_writable, load_checked_weights, parity_report
from modelport.model.quantized import apply_on_load, dequantize_state
from modelport.model.remote import resolve_ported
from modelport.model.transformer import Seq2SeqModel
from modelport.runtimes.onnx import OnnxModel, is_onnx_export, load_onnx
from modelport.tokenizers import Tokenizer, load_tokenizer


BACKENDS = ("torch", "onnx")  # what computes the logits: the ported folder in torch, an ONNX export in onnxruntime


@dataclass
class PortedModel:
    """A ported model folder, loaded: config, one model per ensemble member,
    tokenizer assets, generation defaults and provenance."""

    path: Path
    config: Seq2SeqConfig
    models: list[Seq2SeqModel]
    generation_config: dict[str, Any]
    conversion: dict[str, Any]
    source_format: str
    parameters: int = 0  # stored parameters, all members (see CheckedFolder.parameters)
    quantization: str | None = None  # config.json's quantization mode (int8 runs on CPU in float32)
    _tokenizer: Tokenizer | None = field(default=None, repr=False)

    @property
    def model(self) -> Seq2SeqModel:
        """The first (for single models: the only) ensemble member."""
        return self.models[0]

    @property
    def device(self) -> torch.device:
        """The device the model computes on."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point precision of the model's weights (an int8 folder: float32)."""
        return next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)

    def to(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> PortedModel:
        """Move every ensemble member to ``device`` (``"cpu"``, ``"cuda"``,
        ``"cuda:1"``) and/or cast it to ``dtype`` (``"float32"``,
        ``"float16"``, ``"bfloat16"`` or the torch dtype), in place, as
        ``nn.Module.to`` does; returns the model. Logits and search scores
        stay float32 whatever the weights' precision. None keeps what is."""
        target_device = resolve_device(device) if device is not None else None
        target_dtype = resolve_dtype(dtype)
        if self.quantization == "int8":
            _check_int8_placement(target_device, target_dtype)
        if target_device is None and target_dtype is None:
            return self
        for model in self.models:
            model.to(device=target_device, dtype=target_dtype)
        return self

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / "tokenizer"

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer saved in ``tokenizer/`` (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_dir, model_rows=self.config.vocab_rows)
        return self._tokenizer

    def translate(self, lines: list[str], **options: Any) -> list[list[Hypothesis]]:
        """Translate ``lines``; options default to ``generation_config.json``.

        Returns, per input line, the n-best :class:`~modelport.generation.hypothesis.Hypothesis`
        list (``text``, ``tokens``, ``score``, ``positional_scores``; ``h["text"]`` reads as before).
        Multilingual ports (M2M100, NLLB-200, mBART) take ``source_lang=`` and ``target_lang=``.
        """
        return translate(self, lines, **options)

    def translate_iterable(self, lines: Iterable[str], *, batch_size: int = 32, window: int = 16,
                           **options: Any) -> Iterator[list[Hypothesis]]:
        """Translate a stream of lines, yielding each line's n-best list in
        input order (as CTranslate2's ``translate_iterable``): ``batch_size *
        window`` lines are read at a time, batched by length within that
        window, and translated before more is read, so an endless iterable
        works and memory stays bounded. ``options`` as for :meth:`translate`."""
        return translate_windows(self, lines, batch_size=batch_size, window=window, **options)

    def summary(self) -> dict[str, Any]:
        """What ``inspect PORTED_DIR`` prints: provenance, shape, weights, decoding defaults, the passes
        applied (name and options, in order) and the verdict of ``modelport validate`` if it ran here
        (None if not)."""
        params = self.parameters // len(self.models)
        passes = [{"pass": entry.get("pass"), "options": entry.get("options", {})}
                  for entry in self.conversion.get("history", [])]
        report = parity_report(self.path)
        parity = None if report is None else {
            "passed": report.passed, "reference": report.meta.reference, "lines": report.meta.lines,
            "semantics": report.meta.semantics, "checks": report.checks(), "failure": report.failure}
        return {"path": str(self.path), "source_format": self.source_format,
                "source": self.conversion.get("source"), "ensemble_size": len(self.models),
                "parameters_per_member": params, "architecture": self.config.architecture(),
                "quantization": self.quantization, "config": self.config.to_dict(),
                "generation": self.generation_config, "passes": passes, "parity": parity}


def inspect(source: str | os.PathLike[str], *, format: str | None = None, **options: Any) -> ConversionPlan:
    """Read and check a foreign checkpoint without writing anything."""
    return make_plan(source, format=format, **options)


def plan_and_write(source: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, format: str | None = None,
                   force: bool = False, progress: bool = False, shard_bytes: int | None = None,
                   **options: Any) -> ConversionPlan:
    """Check, map and write ``source`` as a ported folder; return the plan
    (its summary is what ``modelport convert`` prints). An existing
    ``output_dir`` is refused before any work unless ``force``."""
    check_writable(output_dir, force, reads=source_paths(os.fspath(source)))
    plan = make_plan(source, format=format, progress=progress, **options)
    write_ported(plan, output_dir, force=force, progress=progress, shard_bytes=shard_bytes)
    return plan


def convert(source: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, format: str | None = None,
            force: bool = False, progress: bool = False, shard_bytes: int | None = None,
            **options: Any) -> PortedModel:
    """Convert a foreign checkpoint into a ported folder and load it.

    ``options`` are passed to the converter (fairseq: ``checkpoint``,
    ``source_lang``, ``target_lang``). The folder is written atomically; an
    existing ``output_dir`` is refused unless ``force``.
    """
    plan_and_write(source, output_dir, format=format, force=force, progress=progress, shard_bytes=shard_bytes,
                   **options)
    return load(output_dir)


def read_config(directory: Path) -> tuple[dict[str, Any], Seq2SeqConfig]:
    """config.json of a ported folder and its model config, checked (see
    :func:`modelport.model.folder.check_folder`)."""
    checked = check_folder(directory)
    return checked.data, checked.config


def _check_int8_placement(device: torch.device | None, dtype: torch.dtype | None) -> None:
    """int8 folders run torch's dynamic quantization: CPU kernels, float32 activations."""
    if device is not None and device.type != "cpu":
        raise InvalidInputError(f"an int8 folder computes on the CPU only (torch's dynamic quantization), but "
                                f"device `{device}` was asked for: use a float16/bfloat16 copy "
                                "(`modelport quantize --mode fp16|bf16`) on a GPU")
    if dtype is not None and dtype != torch.float32:
        raise InvalidInputError(f"an int8 folder computes in float32 (torch's dynamic quantization), but dtype "
                                f"`{dtype_name(dtype)}` was asked for")


def load(path: str | os.PathLike[str], *, revision: str | None = None, device: str | torch.device | None = None,
         dtype: str | torch.dtype | None = None, backend: str | None = None) -> PortedModel | OnnxModel:
    """Load a ported folder written by :func:`convert` (or a pass), or one
    published on the Hugging Face Hub: ``path`` is a local folder, or else a
    repo id ``"org/name"`` (at ``revision``), downloaded into huggingface_hub's
    cache (see :mod:`modelport.model.remote`).

    ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``) and ``dtype``
    (``"float32"``, ``"float16"``, ``"bfloat16"``) place the model as
    :meth:`PortedModel.to` does; by default it stays on the CPU in the
    folder's precision. The folder is checked before anything is built: a
    damaged or edited one raises
    :class:`~modelport.errors.InvalidPortedFolderError` naming the problem.

    ``backend``: ``"torch"`` (a ported folder), ``"onnx"`` (an ``export onnx``
    folder, run by onnxruntime with modelport's search: an
    :class:`~modelport.runtimes.onnx.OnnxModel`, whose ``translate`` takes the
    same options), or None: whichever the folder is."""
    if backend not in BACKENDS + (None,):
        raise InvalidInputError(f"`{backend}` is not a known backend (known: {', '.join(BACKENDS)})")
    directory = resolve_ported(path, revision)
    if backend == "onnx" or (backend is None and is_onnx_export(directory)):
        return load_onnx(directory, device=device, dtype=dtype)
    target_device = resolve_device(device) if device is not None else None  # checked before the weights are read
    target_dtype = resolve_dtype(dtype)
    checked = check_folder(directory)
    check_generation_config(checked.generation_config, f"`{directory / GENERATION_NAME}`")
    config, quantization, n = checked.config, checked.quantization, checked.ensemble_size
    if quantization == "int8":
        _check_int8_placement(target_device, target_dtype)
    weights = load_checked_weights(checked)
    if quantization:
        weights = dequantize_state(weights)
    models = []
    for i in range(n):
        if n == 1:
            state = weights
        else:
            prefix = f"members.{i}."
            state = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        model = Seq2SeqModel.from_state_dict(config, state)
        if quantization:
            model = apply_on_load(model, checked.data["quantization"])
        models.append(model)
    ported = PortedModel(
        path=directory, config=config, models=models,
        generation_config=checked.generation_config,
        conversion=checked.conversion,
        source_format=checked.data.get("source_format", "unknown"), parameters=checked.parameters,
        quantization=quantization,
    )
    return ported.to(target_device, target_dtype)
