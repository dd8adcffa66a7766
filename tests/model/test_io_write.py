"""Weights are written by the libraries (issue #14, item 12): safetensors'
``save_file`` and huggingface_hub's shard split, so a sharded folder has the
file names and index transformers writes. The reference layout is
huggingface_hub's own ``save_torch_state_dict`` on the same tensors."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub import save_torch_state_dict
from safetensors import safe_open
from safetensors.torch import load_file

from modelport.errors import InvalidInputError
from modelport.model.io import INDEX_NAME, WEIGHTS_NAME, load_weights, save_weights


def _state() -> dict[str, torch.Tensor]:
    """Small tensors around one larger than the shard size (4 KiB float32 each
    vs 16 KiB), so where the large one goes decides the layout."""
    g = torch.Generator().manual_seed(0)
    state = {f"layers.{i}.weight": torch.randn(32, 32, generator=g) for i in range(5)}
    state["embed.weight"] = torch.randn(64, 128, generator=g)  # 32 KiB: a shard of its own
    state.update({f"layers.{i}.bias": torch.randn(32, generator=g) for i in range(5, 9)})
    return state


SHARD = 10_000


def test_sharded_layout_is_huggingface_hubs(tmp_path) -> None:
    state = _state()
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    ours.mkdir()
    ref.mkdir()
    summary = save_weights(ours, list(state.items()), shard_bytes=SHARD)
    save_torch_state_dict(state, ref, max_shard_size=SHARD)
    ref_index = json.loads((ref / INDEX_NAME).read_text())
    index = json.loads((ours / INDEX_NAME).read_text())
    assert index["weight_map"] == ref_index["weight_map"]
    assert index["metadata"]["total_size"] == ref_index["metadata"]["total_size"] == summary["bytes"]
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in ref.iterdir())
    assert summary["files"][-1] == INDEX_NAME and len(summary["files"]) == len(set(index["weight_map"].values())) + 1
    for fname in set(index["weight_map"].values()):  # every shard reads back with the official reader
        got = load_file(ours / fname)
        assert got.keys() == load_file(ref / fname).keys()
        for name, t in got.items():
            assert torch.equal(t, state[name])


def test_tied_aliases_survive_sharding(tmp_path) -> None:
    state = _state()
    tensors = [*state.items(), ("lm_head.weight", state["embed.weight"])]  # tied: one tensor, two names
    summary = save_weights(tmp_path, tensors, shard_bytes=SHARD)
    assert summary["aliases"] == {"lm_head.weight": "embed.weight"} and summary["tensors"] == len(state)
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert "lm_head.weight" not in index["weight_map"]
    assert index["metadata"]["modelport_aliases"] == {"lm_head.weight": "embed.weight"}
    loaded = load_weights(tmp_path)
    assert loaded["lm_head.weight"] is loaded["embed.weight"]
    assert torch.equal(loaded["embed.weight"], state["embed.weight"])
    assert set(loaded) == set(state) | {"lm_head.weight"}


def test_single_file_below_the_shard_size(tmp_path) -> None:
    state = _state()
    summary = save_weights(tmp_path, list(state.items()), metadata={"note": "x"})
    assert summary["files"] == [WEIGHTS_NAME] and not (tmp_path / INDEX_NAME).exists()
    with safe_open(str(tmp_path / WEIGHTS_NAME), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["note"] == "x" and json.loads(meta["modelport_aliases"]) == {}
    assert all(torch.equal(t, state[k]) for k, t in load_weights(tmp_path).items())


def test_views_are_written_as_their_values(tmp_path) -> None:
    """Disjoint slices of one storage (a split fused projection) and a
    transposed view are written as the tensors they show."""
    fused = torch.arange(48.0).reshape(12, 4)
    q, k, v = fused.chunk(3)
    tensors = [("q", q), ("k", k), ("v", v), ("t", fused.t())]
    save_weights(tmp_path, tensors)
    loaded = load_weights(tmp_path)
    for name, t in tensors:
        assert torch.equal(loaded[name], t)


def test_unstorable_dtype_is_invalid_input(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="complex64"):
        save_weights(tmp_path, [("x", torch.zeros(2, dtype=torch.complex64))])
