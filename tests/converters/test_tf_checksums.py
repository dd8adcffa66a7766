"""Every tensor of a Mesh-TF checkpoint has its crc32c checked (issue #14,
item 12): the reader once skipped tensors over 1 MiB, so a flipped byte in a
large kernel converted silently. The checkpoints are written by TensorFlow
itself (``SaveV2``, as tests/converters/test_t5_tf_checkpoint.py does)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import main, one_line_error
from modelport.converters.tf_checkpoint import TFCheckpoint, crc32c
from modelport.errors import CorruptCheckpointError

DATA = Path(__file__).resolve().parents[1] / "data" / "t5_tf"
PREFIX = "model.ckpt-1000"
BIG_D_FF = 20_000  # a [16, d_ff] float32 kernel is 1.28 MB, past the old 1 MiB limit


def _tf():
    return pytest.importorskip("tensorflow")


def _flip(entry_name: str, ckpt: TFCheckpoint, at: float = 0.9) -> None:
    """Flip one bit of ``entry_name``'s bytes, ``at`` of the way into the tensor."""
    e = ckpt.entries[entry_name]
    shard = ckpt.shard_path(e.shard_id)
    raw = bytearray(shard.read_bytes())
    raw[e.offset + int(e.size * at)] ^= 0x01
    shard.write_bytes(bytes(raw))


def test_crc32c_known_values() -> None:
    """RFC 3720 (iSCSI) test vectors."""
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(bytes([0xFF] * 32)) == 0x62A8AB43


def test_large_tensor_is_read_and_checked(tmp_path: Path) -> None:
    tf = _tf()
    big = np.random.default_rng(0).standard_normal((1024, 600)).astype(np.float32)  # 2.4 MB
    small = np.arange(12, dtype=np.float32).reshape(3, 4)
    prefix = tmp_path / "ckpt" / "model.ckpt-1"
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=["big", "small"], shape_and_slices=["", ""],
                      tensors=[tf.constant(big), tf.constant(small)])
    ckpt = TFCheckpoint(tmp_path / "ckpt")
    assert ckpt.entries["big"].size > 1 << 20 and ckpt.entries["big"].crc32c is not None
    assert np.array_equal(ckpt.read("big").numpy(), big)
    _flip("big", ckpt)
    with pytest.raises(CorruptCheckpointError, match="checksum mismatch in variable `big`"):
        TFCheckpoint(tmp_path / "ckpt").read("big")
    assert np.array_equal(TFCheckpoint(tmp_path / "ckpt").read("small").numpy(), small)


@pytest.fixture()
def wide_ckpt(tmp_path: Path) -> Path:
    """The v1_0 fixture rewritten by TensorFlow with d_ff = BIG_D_FF, so every
    feed-forward kernel is over 1 MiB."""
    tf = _tf()
    ckpt = tmp_path / "ckpt"
    shutil.copytree(DATA / "v1_0", ckpt)
    reader = tf.train.load_checkpoint(str(ckpt / PREFIX))
    rng = np.random.default_rng(0)
    names, tensors = [], []
    for name, shape in reader.get_variable_to_shape_map().items():
        value = reader.get_tensor(name)
        if "DenseReluDense" in name and "_slot_" not in name:
            shape = [BIG_D_FF if d == 24 else d for d in shape]
            value = (rng.standard_normal(shape) * 0.05).astype(value.dtype)
        elif "DenseReluDense" in name:
            continue  # an optimizer slot of the old shape: dropped by the converter anyway
        names.append(name)
        tensors.append(tf.constant(value))
    for f in ckpt.glob(f"{PREFIX}.*"):
        f.unlink()
    tf.raw_ops.SaveV2(prefix=str(ckpt / PREFIX), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    gin = ckpt / "operative_config.gin"
    gin.write_text(re.sub(r"^d_ff = \d+$", f"d_ff = {BIG_D_FF}", gin.read_text(), flags=re.M))
    return ckpt


def test_corrupt_byte_in_a_large_tensor_is_exit_2(wide_ckpt: Path, tmp_path: Path, capsys) -> None:
    ckpt = TFCheckpoint(wide_ckpt)
    name = "encoder/block_001/layer_001/DenseReluDense/wo/kernel"
    assert ckpt.entries[name].size > 1 << 20
    assert main(["convert", str(wide_ckpt), str(tmp_path / "good")]) == 0  # intact, it converts
    capsys.readouterr()
    _flip(name, ckpt)
    line = one_line_error(["convert", str(wide_ckpt), str(tmp_path / "out")], capsys)
    assert "checksum mismatch" in line and name in line
    assert not (tmp_path / "out").exists()
