"""Bad T5 input: exit code 2 and one clear line naming every problem, in
transformers' own field names; nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file


pytest.importorskip("transformers")
from tests.converters.test_t5_parity import build_hf_t5  # noqa: E402
from tests.helpers.cli import one_line_error  # noqa: E402


def _one_line_error(argv: list[str], capsys) -> str:
    return one_line_error(argv, capsys)


def _edit_config(directory: Path, **changes) -> None:
    path = directory / "config.json"
    cfg = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    path.write_text(json.dumps(cfg))


@pytest.fixture()
def t5_dir(tmp_path: Path) -> Path:
    build_hf_t5(tmp_path / "src", "v1.0")
    return tmp_path / "src"


def test_unsupported_fields_reported_together(t5_dir: Path, tmp_path: Path, capsys) -> None:
    _edit_config(t5_dir, feed_forward_proj="gated-swish", d_model=None, num_heads=None)
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert 'feed_forward_proj "gated-swish" is not supported (supported: relu, gated-gelu, gated-silu)' in line
    assert "config.json has no d_model, num_heads" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("changes, said", [
    ({"d_model": 0}, "`d_model` must be > 0, but is 0"),  # ZeroDivisionError (d_model ** -0.5)
    ({"relative_attention_max_distance": 0}, "are 32 and 0"),  # converted; translate: math domain error
    ({"relative_attention_max_distance": 16}, "are 32 and 16"),  # converted; translate: IndexError
    ({"relative_attention_num_buckets": 2}, "are 2 and 128"),
])
def test_sizes_no_t5_can_run_are_refused_at_convert(changes: dict, said: str, t5_dir: Path, tmp_path: Path,
                                                    capsys) -> None:
    _edit_config(t5_dir, **changes)
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert said in line, line
    assert not (tmp_path / "out").exists()


def test_umt5_is_refused_by_name(t5_dir: Path, tmp_path: Path, capsys) -> None:
    _edit_config(t5_dir, model_type="umt5")
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert 'model_type "umt5" is not supported' in line and "every layer its own relative attention bias" in line


def test_unknown_tensor_name(t5_dir: Path, tmp_path: Path, capsys) -> None:
    state = load_file(t5_dir / "model.safetensors")
    state["encoder.block.0.layer.0.SelfAttention.gate.weight"] = torch.zeros(4, 4)
    # a per-layer bias in block 1 is UMT5's layout, which a t5 config must not carry
    state["encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"] = torch.zeros(32, 4)
    save_file(state, t5_dir / "model.safetensors", metadata={"format": "pt"})
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert "`encoder.block.0.layer.0.SelfAttention.gate.weight` has no slot" in line
    assert "`encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight` has no slot" in line


def test_missing_tensor_is_named(t5_dir: Path, tmp_path: Path, capsys) -> None:
    state = load_file(t5_dir / "model.safetensors")
    del state["decoder.block.1.layer.2.DenseReluDense.wo.weight"]
    save_file(state, t5_dir / "model.safetensors", metadata={"format": "pt"})
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert "slot `decoder.layers.1.ffn.down.weight` is not filled" in line


def test_missing_spiece_model(t5_dir: Path, tmp_path: Path, capsys) -> None:
    (t5_dir / "spiece.model").unlink()
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert "has no spiece.model" in line


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pytorch_model_bin_is_loaded_safely(t5_dir: Path, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    state = load_file(t5_dir / "model.safetensors")
    (t5_dir / "model.safetensors").unlink()
    torch.save({**state, "payload": _Payload(marker)}, t5_dir / "pytorch_model.bin")
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert "system" in line and "not allowed" in line
    assert not marker.exists()


def _shard(directory: Path, names: tuple[str, str]) -> None:
    """Split model.safetensors into two shards named ``names`` (paths relative to ``directory``) and an index."""
    state = load_file(directory / "model.safetensors")
    keys = sorted(state)
    parts = (keys[: len(keys) // 2], keys[len(keys) // 2:])
    for name, part in zip(names, parts):
        save_file({k: state[k].contiguous() for k in part}, str(directory / name))
    (directory / "model.safetensors").unlink()
    weight_map = {k: name for name, part in zip(names, parts) for k in part}
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_sharded_checkpoint_is_read(t5_dir: Path, tmp_path: Path) -> None:
    import modelport

    _shard(t5_dir, ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"))
    assert modelport.convert(str(t5_dir), tmp_path / "out").translate(["translate English to German: Hi."])


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_shard_outside_the_directory_is_refused(where: str, t5_dir: Path, tmp_path: Path, capsys) -> None:
    """The index's file names were joined to the directory unchecked: another model's weights were read."""
    (tmp_path / "elsewhere").mkdir()
    outside = "../elsewhere/b.safetensors" if where == "parent" else str(tmp_path / "elsewhere" / "b.safetensors")
    _shard(t5_dir, ("a.safetensors", outside))
    line = _one_line_error(["convert", str(t5_dir), str(tmp_path / "out")], capsys)
    assert "weight shard (listed in `model.safetensors.index.json`) must be a file name inside the folder" in line
    assert not (tmp_path / "out").exists()
