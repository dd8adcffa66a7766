"""Structured pruning of a ported folder: fewer layers, fewer attention heads,
narrower feed-forward layers. Every cut removes rows/columns physically, so
the result is an ordinary (smaller) ported folder.

- Layers: which teacher layers a shallower stack keeps follows Shleifer &
  Rush's distilBART table (``LAYERS_TO_COPY`` in their ``distillation.py``):
  e.g. 12 -> 6 keeps 0, 2, 4, 7, 9, 11 and 6 -> 3 keeps 0, 2, 5. Sizes
  outside the table keep evenly spaced layers, the first and the last always
  included.
- FFN (``ffn=F``): every layer loses ``round(F * ffn_dim)`` hidden neurons,
  those of smallest weight magnitude ``||up[i, :]|| * ||down[:, i]||`` (times
  ``||gate[i, :]||`` for gated FFNs): the norm of the neuron's input and
  output paths. Every layer keeps the same width, so the config stays one
  ``*_ffn_dim``.
- Heads (``heads=F``): every attention (self and cross) loses
  ``round(F * heads)`` heads, those of smallest ``||W_v[h]|| * ||W_o[:, h]||``
  (the Frobenius norms of the head's value and output projections: the size
  of what the head can add to the residual stream). Every layer keeps the same
  head count; ``head_dim`` is written explicitly because ``d_model / heads``
  no longer gives it.

All criteria are data-free weight magnitudes; ``data`` only feeds the report.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from modelport.errors import InvalidInputError, OutputExistsError
from modelport.model.io import load_weights, read_json
from modelport.passes.common import finish, measure, write_pass_output

# teacher layers -> {student layers: kept teacher layers}
LAYERS_TO_COPY: dict[int, dict[int, list[int]]] = {
    6: {1: [0], 2: [0, 5], 3: [0, 2, 5], 4: [0, 1, 3, 5], 6: [0, 1, 2, 3, 4, 5]},
    12: {1: [0], 2: [0, 11], 3: [0, 6, 11], 4: [0, 4, 8, 11], 6: [0, 2, 4, 7, 9, 11],
         9: [0, 1, 2, 4, 5, 7, 9, 10, 11], 12: list(range(12))},
    16: {1: [0], 2: [0, 15], 3: [0, 8, 15], 4: [0, 5, 10, 15], 6: [0, 3, 6, 9, 12, 15],
         8: [0, 2, 4, 6, 8, 10, 12, 15], 9: [0, 1, 3, 5, 7, 9, 11, 13, 15], 12: [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15],
         16: list(range(16))},
}

_LAYER = re.compile(r"^((?:members\.\d+\.)?)(encoder|decoder)\.layers\.(\d+)\.(.*)$")
_FFN = re.compile(r"^(.*\.layers\.\d+\.ffn)\.(up|gate|down)\.(weight|bias)$")
_ATTN = re.compile(r"^(.*\.layers\.\d+\.(?:self_attn|cross_attn))\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)$")


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


def _removed(fraction: float, total: int, what: str, option: str) -> int:
    """How many of ``total`` units ``fraction`` removes; at least one, never all."""
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(f"{option} must be a fraction in (0, 1), but is {fraction}")
    n = round(fraction * total)
    if n < 1:
        raise InvalidInputError(f"{option} {fraction} removes no {what} of {total} "
                                f"(use at least {0.5 / total:.3g})")
    if n >= total:
        raise InvalidInputError(f"{option} {fraction} would remove all {total} {what}s (keep at least one)")
    return n


def _shrink_layers(state: dict[str, torch.Tensor], keep: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        m = _LAYER.match(name)
        if m and m.group(2) in keep:
            kept = keep[m.group(2)]
            layer = int(m.group(3))
            if layer not in kept:
                continue
            name = f"{m.group(1)}{m.group(2)}.layers.{kept.index(layer)}.{m.group(4)}"
        out[name] = t
    return out


def _groups(state: dict[str, torch.Tensor], pattern: re.Pattern[str]) -> dict[str, dict[str, torch.Tensor]]:
    """``{module prefix: {"up.weight": tensor, ...}}`` for names matching ``pattern``."""
    groups: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for name, t in state.items():
        m = pattern.match(name)
        if m:
            groups[m.group(1)][f"{m.group(2)}.{m.group(3)}"] = t
    return groups


def _prune_ffn(state: dict[str, torch.Tensor], fraction: float, dims: dict[str, int]) -> dict[str, int]:
    """Remove the smallest-magnitude FFN neurons in place; returns the new widths."""
    new_dims = {side: dim - _removed(fraction, dim, "FFN neuron", "--ffn") for side, dim in dims.items()}
    for prefix, parts in _groups(state, _FFN).items():
        side = "encoder" if ".encoder." in f".{prefix}" else "decoder"
        up, down = parts["up.weight"].float(), parts["down.weight"].float()
        score = up.norm(dim=1) * down.norm(dim=0)
        if "gate.weight" in parts:
            score = score * parts["gate.weight"].float().norm(dim=1)
        kept = torch.sort(torch.topk(score, new_dims[side]).indices).values
        for key, t in parts.items():
            state[f"{prefix}.{key}"] = (t.index_select(1, kept) if key == "down.weight" else
                                        t if key == "down.bias" else t.index_select(0, kept)).contiguous()
    return new_dims


def _prune_heads(state: dict[str, torch.Tensor], fraction: float, heads: dict[str, int],
                 head_dim: int) -> dict[str, int]:
    """Remove the smallest-magnitude attention heads in place; returns the new head counts."""
    new_heads = {side: n - _removed(fraction, n, "attention head", "--heads") for side, n in heads.items()}
    for prefix, parts in _groups(state, _ATTN).items():
        side = "encoder" if ".encoder." in f".{prefix}" else "decoder"
        n = heads[side]
        v = parts["v_proj.weight"].float().reshape(n, head_dim, -1)
        o = parts["out_proj.weight"].float().reshape(-1, n, head_dim)
        score = v.flatten(1).norm(dim=1) * o.transpose(0, 1).flatten(1).norm(dim=1)
        kept_heads = torch.sort(torch.topk(score, new_heads[side]).indices).values
        rows = (kept_heads[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
        for key, t in parts.items():
            if key == "out_proj.weight":
                t = t.index_select(1, rows)
            elif key != "out_proj.bias":
                t = t.index_select(0, rows)
            state[f"{prefix}.{key}"] = t.contiguous()
    return new_heads


def prune(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
          encoder_layers: int | None = None, decoder_layers: int | None = None, heads: float | None = None,
          ffn: float | None = None, vocab_from: str | os.PathLike[str] | None = None,
          data: list[str] | None = None, references: list[str] | None = None, force: bool = False) -> dict:
    """Write a pruned copy of ``ported_dir`` to ``output_dir`` and return the
    report: layers first (``encoder_layers``/``decoder_layers``), then FFN
    neurons (``ffn``, a fraction) and attention heads (``heads``, a fraction)
    of the kept layers. ``vocab_from`` is not implemented yet."""
    if vocab_from is not None:
        raise InvalidInputError("--vocab-from is not implemented yet (supported: --encoder-layers, "
                                "--decoder-layers, --heads, --ffn)")
    if encoder_layers is None and decoder_layers is None and heads is None and ffn is None:
        raise InvalidInputError("nothing to prune: give --encoder-layers, --decoder-layers, --heads and/or --ffn")
    source = Path(ported_dir)
    config = read_json(source / "config.json")
    if config.get("quantization"):
        raise InvalidInputError(f"`{ported_dir}` is quantized; prune the unquantized folder, then quantize")
    if Path(output_dir).exists() and not force:
        raise OutputExistsError(str(output_dir))
    model_cfg: dict[str, Any] = config["model"]
    # check every option before the (slow) weight work
    keep: dict[str, list[int]] = {}
    for side, wanted in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        if wanted is not None:
            keep[side] = layers_to_keep(model_cfg[f"{side}_layers"], wanted)
    sides = ("encoder", "decoder")
    if ffn is not None:
        if model_cfg.get("ffn_depth", 2) != 2:
            raise InvalidInputError(f"--ffn supports FFNs of depth 2, but `{ported_dir}` has depth "
                                    f"{model_cfg['ffn_depth']}")
        for side in sides:
            _removed(ffn, model_cfg[f"{side}_ffn_dim"], "FFN neuron", "--ffn")
    head_dim = None
    if heads is not None:
        if model_cfg.get("positions") == "relative":
            raise InvalidInputError("--heads is not supported for relative-position (T5-style) models yet: "
                                    "their position bias is shared by every layer's heads")
        dims = {(model_cfg["head_dim"] or model_cfg["d_model"] // model_cfg[f"{side}_heads"]) for side in sides}
        if len(dims) != 1:
            raise InvalidInputError("--heads needs equal encoder and decoder head sizes, but they are "
                                    f"{sorted(dims)}")
        head_dim = dims.pop()
        for side in sides:
            _removed(heads, model_cfg[f"{side}_heads"], "attention head", "--heads")

    state = _shrink_layers(load_weights(source), keep)
    changed: dict[str, Any] = {f"{side}_layers_kept": kept for side, kept in keep.items()}
    for side, kept in keep.items():
        model_cfg[f"{side}_layers"] = len(kept)
    if ffn is not None:
        widths = _prune_ffn(state, ffn, {side: model_cfg[f"{side}_ffn_dim"] for side in sides})
        for side, width in widths.items():
            changed[f"{side}_ffn_dim"] = [model_cfg[f"{side}_ffn_dim"], width]
            model_cfg[f"{side}_ffn_dim"] = width
        changed["ffn_criterion"] = "||up[i,:]|| * ||down[:,i]|| (x ||gate[i,:]||), smallest removed per layer"
    if heads is not None:
        counts = _prune_heads(state, heads, {side: model_cfg[f"{side}_heads"] for side in sides}, head_dim)
        for side, count in counts.items():
            changed[f"{side}_heads"] = [model_cfg[f"{side}_heads"], count]
            model_cfg[f"{side}_heads"] = count
        model_cfg["head_dim"] = head_dim
        changed["heads_criterion"] = "||W_v[h]|| * ||W_o[:,h]||, smallest removed per attention"
    options = {"encoder_layers": encoder_layers, "decoder_layers": decoder_layers, "heads": heads, "ffn": ffn}
    out = write_pass_output(source, output_dir, list(state.items()), config,
                            {"pass": "prune", "options": options, "changed": changed}, force)
    return finish(out, "prune", options, changed, measure(source, out, data, references))
