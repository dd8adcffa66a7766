"""Structured pruning of a ported folder. This increment: shrinking the
encoder or decoder by copying layers from the teacher.

Which layers are kept follows Shleifer & Rush's distilBART table
(``LAYERS_TO_COPY`` in their ``distillation.py``): e.g. 12 -> 6 keeps
0, 2, 4, 7, 9, 11 and 6 -> 3 keeps 0, 2, 5. Sizes outside the table keep
evenly spaced layers, the first and the last always included.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from modelport.errors import InvalidInputError, OutputExistsError
from modelport.model.io import read_json
from modelport.passes.common import finish, load_state, measure, write_pass_output

# teacher layers -> {student layers: kept teacher layers}
LAYERS_TO_COPY: dict[int, dict[int, list[int]]] = {
    6: {1: [0], 2: [0, 5], 3: [0, 2, 5], 4: [0, 1, 3, 5], 6: [0, 1, 2, 3, 4, 5]},
    12: {1: [0], 2: [0, 11], 3: [0, 6, 11], 4: [0, 4, 8, 11], 6: [0, 2, 4, 7, 9, 11],
         9: [0, 1, 2, 4, 5, 7, 9, 10, 11], 12: list(range(12))},
    16: {1: [0], 2: [0, 15], 3: [0, 8, 15], 4: [0, 5, 10, 15], 6: [0, 3, 6, 9, 12, 15],
         8: [0, 2, 4, 6, 8, 10, 12, 15], 9: [0, 1, 3, 5, 7, 9, 11, 13, 15], 12: [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15],
         16: list(range(16))},
}


def layers_to_keep(teacher: int, student: int) -> list[int]:
    """The teacher layers a ``student``-layer stack copies."""
    if not 1 <= student <= teacher:
        raise InvalidInputError(f"the number of layers must be in [1, {teacher}], but is {student}")
    table = LAYERS_TO_COPY.get(teacher, {})
    if student in table:
        return table[student]
    if student == 1:
        return [0]
    return sorted({round(i * (teacher - 1) / (student - 1)) for i in range(student)})


def prune(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
          encoder_layers: int | None = None, decoder_layers: int | None = None, data: list[str] | None = None,
          references: list[str] | None = None, force: bool = False) -> dict:
    """Write ``ported_dir`` with fewer encoder/decoder layers to ``output_dir``
    and return the report."""
    if encoder_layers is None and decoder_layers is None:
        raise InvalidInputError("nothing to prune: give --encoder-layers and/or --decoder-layers")
    source = Path(ported_dir)
    config = read_json(source / "config.json")
    if config.get("quantization"):
        raise InvalidInputError(f"`{ported_dir}` is quantized; prune the unquantized folder, then quantize")
    if Path(output_dir).exists() and not force:
        raise OutputExistsError(str(output_dir))
    model_cfg = config["model"]
    keep: dict[str, list[int]] = {}
    for side, wanted in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        if wanted is not None:
            keep[side] = layers_to_keep(model_cfg[f"{side}_layers"], wanted)
    state = load_state(source)
    pattern = re.compile(r"^((?:members\.\d+\.)?)(encoder|decoder)\.layers\.(\d+)\.(.*)$")
    tensors: list[tuple[str, torch.Tensor]] = []
    for name, t in state.items():
        m = pattern.match(name)
        if m and m.group(2) in keep:
            kept = keep[m.group(2)]
            layer = int(m.group(3))
            if layer not in kept:
                continue
            name = f"{m.group(1)}{m.group(2)}.layers.{kept.index(layer)}.{m.group(4)}"
        tensors.append((name, t))
    for side, kept in keep.items():
        model_cfg[f"{side}_layers"] = len(kept)
    options = {"encoder_layers": encoder_layers, "decoder_layers": decoder_layers}
    changed = {f"{side}_layers_kept": kept for side, kept in keep.items()}
    out = write_pass_output(source, output_dir, tensors, config,
                            {"pass": "prune", "options": options, "changed": changed}, force)
    return finish(out, "prune", options, changed, measure(source, out, data, references))
