"""Marian's binary model format (``.bin``, as ``pymarian convert`` writes it):
float32 models convert to exactly the npz's port; packed/integer GEMM types
and damaged files are exit 2, one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

import modelport
from tests.helpers.cli import one_line_error

pytest.importorskip("pymarian")

MODEL = Path(__file__).resolve().parents[1] / "data" / "marian-trained" / "post_sep_tied"
PYMARIAN = Path(sys.executable).parent / "pymarian"


def _bin_model(tmp: Path, gemm: str = "float32") -> Path:
    """A copy of the trained model whose weights are a .bin made by Marian itself."""
    out = tmp / f"bin-{gemm}"
    shutil.copytree(MODEL, out)
    subprocess.run([str(PYMARIAN), "convert", "-f", str(out / "model.npz"), "-t", str(out / "model.bin"), "-g", gemm],
                   check=True, capture_output=True, timeout=300)
    (out / "model.npz").unlink()
    yml = out / "decoder.yml"
    yml.write_text(yml.read_text(encoding="utf-8").replace("model.npz", "model.bin"), encoding="utf-8")
    return out


def test_float32_bin_converts_to_the_npz_port(tmp_path) -> None:
    npz_port = modelport.convert(str(MODEL), tmp_path / "from-npz")
    bin_port = modelport.convert(str(_bin_model(tmp_path)), tmp_path / "from-bin")
    a, b = load_file(npz_port.path / "model.safetensors"), load_file(bin_port.path / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    lines = (Path(__file__).resolve().parents[2] / "assets" / "corpus" / "test.en").read_text().splitlines()[:5]
    assert [h[0].text for h in npz_port.translate(lines)] == [h[0].text for h in bin_port.translate(lines)]


def test_intgemm_bin_is_refused_by_name(tmp_path, capsys) -> None:
    model = _bin_model(tmp_path, "intgemm8")
    err = one_line_error(["convert", str(model), str(tmp_path / "out")], capsys, code=2)
    assert "packed or integer GEMM type" in err and not (tmp_path / "out").exists()


def test_truncated_bin_is_refused(tmp_path, capsys) -> None:
    model = _bin_model(tmp_path)
    data = (model / "model.bin").read_bytes()
    (model / "model.bin").write_bytes(data[: len(data) // 2])
    err = one_line_error(["convert", str(model), str(tmp_path / "out")], capsys, code=2)
    assert "model.bin" in err and not (tmp_path / "out").exists()


def test_bin_with_a_negative_dimension_is_refused(tmp_path, capsys) -> None:
    import numpy as np

    model = _bin_model(tmp_path)
    data = bytearray((model / "model.bin").read_bytes())
    count = int(np.frombuffer(data, np.uint64, 1, 8)[0])
    headers = np.frombuffer(data, np.uint64, 4 * count, 16).reshape(count, 4)
    first_shape = 16 + 32 * count + int(headers[:, 0].sum())  # the first item's dims follow the names
    data[first_shape:first_shape + 8] = np.array([-2, -4], dtype=np.int32).tobytes()
    (model / "model.bin").write_bytes(bytes(data))
    err = one_line_error(["convert", str(model), str(tmp_path / "out")], capsys, code=2)
    assert "declares shape" in err and not (tmp_path / "out").exists()
