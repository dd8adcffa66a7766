"""Forward-pass parity: max |logit difference| against the reference model, and
localization of the first module whose activations diverge.

Localization registers forward hooks on both models, maps the reference's
module names to unified ones through the converter's name table (parameter
names with ``.weight``/``.bias`` stripped, plus the attention blocks and
layers that own them), runs both on the same teacher-forced input and walks
the reference's modules in execution order: the first whose output differs
by more than ``tol`` is the culprit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from modelport.reports.parity import ModuleDivergence

_SUFFIX = re.compile(r"\.(weight|bias)$")


def module_name_table(name_table: Mapping[str, str | None]) -> dict[str, str]:
    """Reference module pattern -> unified module pattern (``{}`` = layer)."""
    out: dict[str, str] = {}
    for src, dst in name_table.items():
        if dst is None or not _SUFFIX.search(src) or not _SUFFIX.search(dst):
            continue
        s, d = _SUFFIX.sub("", src), _SUFFIX.sub("", dst)
        out.setdefault(s, d)
        # q_proj -> q_proj: the owning blocks map too (self_attn, encoder_attn -> cross_attn, the layer)
        while "." in s and "." in d and s.rsplit(".", 1)[1] == d.rsplit(".", 1)[1]:
            s, d = s.rsplit(".", 1)[0], d.rsplit(".", 1)[0]
            if s.endswith("{}") != d.endswith("{}"):
                break
            out.setdefault(s, d)
    for side in ("encoder", "decoder"):
        out.setdefault(f"{side}.layers.{{}}", f"{side}.layers.{{}}")
    return out


def _resolve(name: str, table: Mapping[str, str]) -> str | None:
    """Map a concrete reference module name (``decoder.layers.1.fc2``)."""
    if name in table:
        return table[name]
    m = re.search(r"\.(\d+)(\.|$)", name)
    if m:
        pattern = name[: m.start(1)] + "{}" + name[m.end(1):]
        if pattern in table:
            return table[pattern].replace("{}", m.group(1), 1)
    return None


def _first_tensor(out: Any) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    return None


def _capture(model: nn.Module, names: set[str] | None, order: list[str] | None) -> tuple[dict[str, Tensor], list]:
    acts: dict[str, Tensor] = {}
    handles = []
    for name, mod in model.named_modules():
        if not name or (names is not None and name not in names):
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            t = _first_tensor(out)
            if t is not None and name not in acts:  # first call: cross-attn k/v are called once
                acts[name] = t.detach().clone().float()  # clone: fairseq scales q in place
                if order is not None:
                    order.append(name)

        handles.append(mod.register_forward_hook(hook))
    return acts, handles


def _align(ref: Tensor, ours: Tensor) -> Tensor | None:
    """The reference activation in the unified layout (fairseq is time-major)."""
    if ref.shape == ours.shape:
        return ref
    if ref.dim() >= 2 and ref.transpose(0, 1).shape == ours.shape:
        return ref.transpose(0, 1)
    return None


@torch.no_grad()
def localize_divergence(reference: nn.Module, ours: nn.Module, run_reference: Callable[[], Any],
                        run_ours: Callable[[], Any], name_table: Mapping[str, str | None],
                        tol: float = 1e-4) -> ModuleDivergence:
    """Run both models once with hooks and return the first reference module
    (execution order) whose mapped unified module's output differs by > ``tol``,
    with that module's unified name (both None when none differs)."""
    table = module_name_table(name_table)
    order: list[str] = []
    ref_acts, h1 = _capture(reference, None, order)
    try:
        run_reference()
    finally:
        for h in h1:
            h.remove()
    mapped = {n: _resolve(n, table) for n in order}
    ours_acts, h2 = _capture(ours, {m for m in mapped.values() if m}, None)
    try:
        run_ours()
    finally:
        for h in h2:
            h.remove()
    for name in order:
        target = mapped[name]
        if target is None or target not in ours_acts:
            continue
        ref = _align(ref_acts[name], ours_acts[target])
        if ref is None:
            continue
        diff = (ref - ours_acts[target]).abs().max().item()
        if not diff <= tol:
            return ModuleDivergence(module=target, reference_module=name, max_abs_diff=diff)
    return ModuleDivergence(module=None, reference_module=None, max_abs_diff=0.0)


@torch.no_grad()
def max_logit_diff(ours: nn.Module, reference_logits: Callable[[Tensor, Tensor], Tensor], src: Tensor,
                   prev: Tensor, mask: Tensor) -> float:
    """max |logit difference| over the real target positions of one batch."""
    a = ours(src, prev)
    b = reference_logits(src, prev)
    return (a - b).abs()[mask].max().item()


__all__ = ["localize_divergence", "max_logit_diff", "module_name_table"]
