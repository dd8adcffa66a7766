"""Quantization of a ported folder.

Modes:
- ``int8``: 2-D weights (linear layers and embeddings) stored as int8 with
  one symmetric fp32 scale per output row (``<name>_scale``), so the folder is
  ~4x smaller; at load the linear layers with at least
  :attr:`Int8Options.min_elements` weights run as
  ``torch.ao.nn.quantized.dynamic.Linear`` (int8 matrix products,
  dynamically quantized activations: 256 levels where the CPU cannot
  saturate, :func:`modelport.model.quantized.full_range_int8`) and the
  smaller ones in fp32 from the dequantized weights: below that size torch's
  int8 kernels are slower than
  fp32 (``scripts/bench_int8.py`` measures it), so int8 only costs accuracy
  there. Which layers run int8 is recorded in config.json's ``quantization``
  (``int8_layers``, ``weights``), so loading reproduces what the pass
  measured. Re-quantizing the stored values with the same per-row symmetric
  scheme reproduces them exactly. Embeddings are dequantized to fp32 at load;
  an output projection tied to them is a linear layer of the plan like the
  others (``lm_head``: at load it gets its own int8 module over those
  weights), the largest of a big-vocabulary model.
- ``int8-weights``: the same storage, fp32 compute (a smaller download).
- ``fp16`` / ``bf16``: storage and compute in that dtype; logits and
  log-softmax stay fp32 (the model computes them in fp32), T5 ports keep their
  fp16 clamp.

Loading such a folder is the model layer's (:mod:`modelport.model.quantized`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from modelport.errors import InvalidInputError
from modelport.files import lines_of, references_for
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import QUANTIZATION_MODES, SCALE_SUFFIX, PortedFolder, check_writable
from modelport.model.quantized import INT8_LAYERS, INT8_WEIGHTS, TIED_HEAD, WEIGHT_GRANULARITIES, linear_layers
from modelport.generation.translate import Direction
from modelport.model.transformer import Seq2SeqModel
from modelport.passes.common import check_direction, finish, measure, pass_output
from modelport.reports.passes import PassReport

MODES = QUANTIZATION_MODES

# The smallest linear layer (in_features * out_features) that runs int8 matmuls: the smallest size measured where
# torch's int8 kernels beat fp32 at every row count (`scripts/bench_int8.py --layers`, 1 thread, int8 speed vs fp32
# on 5 / 80 / 400 rows: 128x128 0.43 / 0.71 / 1.09x; 65,536 weights 0.80 / 1.11-1.27 / 1.30-1.49x; 131,072
# 1.17-1.26 / 1.40-1.45 / 1.54-1.59x; 262,144 and more 1.6-3.8x; 5 rows is one sentence's beam). End to end the
# same holds where the weights stay in cache: the embedded model one sentence at a time is 0.80x fp32 with every
# layer int8, 0.91x with its 65,536-weight FFNs int8, 0.98x with none. A model whose weights stream from memory
# gains from int8 in smaller layers too (d_model 256: 1.63x with its 65,536-weight attention projections int8,
# 1.49x without): `--int8-min-weights 65536` there, measured with scripts/bench_int8.py --mid.
MIN_INT8_ELEMENTS = 131_072


@dataclass(frozen=True)
class Int8Options:
    """How ``--mode int8`` chooses per layer: linear layers with at least
    ``min_elements`` weights run int8 matmuls with ``weights`` granularity
    (per-channel: one scale per output row, as stored; per-tensor: one per
    matrix), the others compute in fp32 from their stored int8 weights (or
    from fp32 ones with ``fp32_small_layers``); ``fp32_embeddings`` stores the
    token embeddings (and so a tied output projection) unquantized;
    ``fp32_output_projection`` computes the output projection in fp32 whatever
    its size (by default it is a linear layer like the others: int8 from
    ``min_elements`` weights, tied to the embeddings or not)."""

    min_elements: int = MIN_INT8_ELEMENTS
    weights: str = "per-channel"
    fp32_small_layers: bool = False
    fp32_embeddings: bool = False
    fp32_output_projection: bool = False

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_GRANULARITIES:
            raise InvalidInputError(f"`{self.weights}` is not a known int8 weight granularity "
                                    f"(known: {', '.join(WEIGHT_GRANULARITIES)})")
        if self.min_elements < 0:
            raise InvalidInputError(f"the int8 minimum layer size must be >= 0, but is {self.min_elements}")


def _quantizable(name: str, t: torch.Tensor) -> bool:
    # learned position tables stay fp32: small, and their rows are reused at every step
    return t.dim() == 2 and t.is_floating_point() and name.endswith(".weight") and "embed_positions" not in name


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``w ~= q * scale[:, None]``, ``|q| <= 127``."""
    w = w.float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def int8_plan(config: Seq2SeqConfig, options: Int8Options) -> tuple[list[str], list[str]]:
    """The linear layers (module names) that run int8 and those that stay fp32 under ``options``;
    a tied output projection counts as the layer ``lm_head`` (it gets that module at load)."""
    with torch.device("meta"):
        sizes = linear_layers(Seq2SeqModel(config))
    if config.tie_output_embeddings:
        sizes[TIED_HEAD] = config.d_model * config.target_vocab_size
    if options.fp32_output_projection:
        sizes.pop(TIED_HEAD, None)
    return ([n for n, size in sizes.items() if size >= options.min_elements],
            [n for n, size in sizes.items() if size < options.min_elements])


def _member_name(name: str) -> str:
    """A weight's name inside its ensemble member (``members.<i>.`` dropped)."""
    return name.split(".", 2)[2] if name.startswith("members.") else name


def _stored_int8(name: str, t: torch.Tensor, mode: str, fp32_modules: set[str], options: Int8Options) -> bool:
    """Whether ``name`` is stored as int8 + scale in ``mode``."""
    if not _quantizable(name, t):
        return False
    module = _member_name(name).removesuffix(".weight")
    if mode == "int8" and options.fp32_small_layers and module in fp32_modules:
        return False
    return not (mode == "int8" and options.fp32_embeddings and module.endswith("embed_tokens"))


def quantize(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, mode: str,
             data: str | os.PathLike[str] | list[str] | None = None,
             references: str | os.PathLike[str] | list[str] | None = None, force: bool = False,
             progress: bool = False, int8: Int8Options | None = None, source_lang: str | None = None,
             target_lang: str | None = None) -> PassReport:
    """Write a quantized copy of ``ported_dir`` to ``output_dir`` and return its
    report (size, speed, agreement with the original, BLEU/chrF and their
    change when ``references`` are given). ``int8``: the per-layer choice of
    ``mode="int8"`` (default :class:`Int8Options`, what was measured best).
    ``data`` and ``references``: lists of lines or text files;
    ``source_lang``/``target_lang``: the languages ``data`` is translated
    between, for a multilingual port (required there, as for ``translate``)."""
    if mode not in MODES:
        raise InvalidInputError(f"`{mode}` is not a known quantization mode (known: {', '.join(MODES)})")
    if int8 is not None and mode != "int8":
        raise InvalidInputError(f"int8 options apply to mode `int8`, but the mode is `{mode}`")
    options = int8 or Int8Options()
    data = lines_of(data, "data") if data is not None else None
    references = references_for(references, data)
    source = PortedFolder.open(ported_dir)
    if source.quantization:
        raise InvalidInputError(f"`{ported_dir}` is already quantized ({source.quantization}); "
                                "quantize the unquantized folder instead")
    check_writable(output_dir, force, reads=[ported_dir])
    direction = Direction(source_lang, target_lang)
    check_direction(source, direction, data)
    int8_layers, fp32_layers = int8_plan(source.config, options) if mode == "int8" else ([], [])
    fp32_modules = set(fp32_layers)
    state = source.load_weights()
    tensors: list[tuple[str, torch.Tensor]] = []
    converted: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
    count = 0
    for name, t in state.items():
        key = id(t)
        if key not in converted:
            if mode in ("int8", "int8-weights") and _stored_int8(name, t, mode, fp32_modules, options):
                converted[key] = quantize_rows(t)
                count += 1
            elif mode in ("fp16", "bf16") and t.is_floating_point():
                converted[key] = (t.to(torch.float16 if mode == "fp16" else torch.bfloat16), None)
                count += 1
            else:
                converted[key] = (t, None)
        q, scale = converted[key]
        tensors.append((name, q))  # the same object for aliases: stored once
        if scale is not None:
            tensors.append((name + SCALE_SUFFIX, scale))
    scheme = {"int8": (f"int8 weights, per-row symmetric scales; int8 dynamic matmuls ({options.weights} weights) "
                       f"for the linear layers of at least {options.min_elements:,} weights, fp32 for the others"),
              "int8-weights": "int8 weights, per-row symmetric scales; fp32 compute",
              "fp16": "float16 storage and compute; fp32 logits", "bf16": "bfloat16 storage and compute; fp32 logits"}
    record = {"mode": mode, "scheme": scheme[mode]}
    pass_options: dict[str, object] = {"mode": mode}
    changed: dict[str, object] = {"tensors_quantized": count}
    if mode == "int8":
        record.update({INT8_WEIGHTS: options.weights, INT8_LAYERS: int8_layers})
        pass_options.update(min_int8_elements=options.min_elements, int8_weights=options.weights,
                            fp32_small_layers=options.fp32_small_layers, fp32_embeddings=options.fp32_embeddings,
                            fp32_output_projection=options.fp32_output_projection)
        changed.update(int8_matmul_layers=len(int8_layers), fp32_matmul_layers=len(fp32_layers))
    with pass_output(source, output_dir, tensors, source.config,
                     {"pass": "quantize", "options": pass_options, "changed": changed}, force,
                     quantization=record) as out:
        # measured before the folder is renamed into place: an interrupted run leaves nothing
        measured = measure(source, out.path, data, references, progress=progress, direction=direction)
        if measured.quality is not None:  # what the user weighs: the BLEU/chrF change from the original
            measured = replace(measured, quality=measured.quality.with_delta())
        return finish(out, PassReport("quantize", pass_options, changed, measured))
