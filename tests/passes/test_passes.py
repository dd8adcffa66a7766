"""Quantization on the embedded trained model (pruning: tests/passes/test_prune.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

import modelport
import modelport.cli
from tests.helpers.paths import CORPUS

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:50]


@pytest.fixture(scope="module")
def int8(ported_default, tmp_path_factory):
    out = tmp_path_factory.mktemp("passes") / "int8"
    report = modelport.quantize(ported_default.path, out, mode="int8", data=LINES)
    return out, report


def test_int8_is_small_and_agrees(ported_default, int8) -> None:
    out, report = int8
    fp32 = (ported_default.path / "model.safetensors").stat().st_size
    assert (out / "model.safetensors").stat().st_size <= 0.30 * fp32
    assert report["agreement"]["identical_percent"] >= 90
    assert 0 <= report["agreement"]["mean_abs_token_logprob_diff"] < 0.05
    history = json.loads((out / "conversion.json").read_text())["history"]
    assert history[-1]["pass"] == "quantize" and history[-1]["report"]["agreement"]
    assert (out / "pass_report.md").is_file()
    # every layer of the embedded model but its output projection is below the int8 matmul minimum: they
    # compute in fp32 from int8 weights (tests/passes/test_quantize_int8.py covers the layers that run int8)
    assert json.loads((out / "config.json").read_text())["quantization"]["int8_layers"] == ["lm_head"]
    loaded = modelport.load(out)
    assert [n for n, m in loaded.model.named_modules() if isinstance(m, DynamicLinear)] == ["lm_head"]


def test_int8_translates_in_a_fresh_process(int8) -> None:
    out, _ = int8
    proc = subprocess.run([sys.executable, "-m", "modelport.cli", "translate", str(out)], input=LINES[0] + "\n",
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


@pytest.mark.parametrize("mode", ["int8-weights", "fp16", "bf16"])
def test_other_modes_load_and_translate(ported_default, tmp_path, mode) -> None:
    out = tmp_path / mode
    report = modelport.quantize(ported_default.path, out, mode=mode)
    assert report["bytes_on_disk"]["after"] < report["bytes_on_disk"]["before"]
    loaded = modelport.load(out)
    with torch.no_grad():
        src = torch.tensor([loaded.tokenizer.encode(LINES[0])])
        logits = loaded.model(src, torch.tensor([[2, 10, 11]]))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert loaded.translate(LINES[:2])[0][0]["text"]


@pytest.mark.parametrize("mode", ["int8", "int8-weights", "fp16", "bf16"])
def test_untied_output_projection(tmp_path, mode) -> None:
    """A separate output projection (lm_head) is quantized with the other
    linear layers and the model still decodes close to fp32."""
    pytest.importorskip("fairseq")
    from tests.helpers.fairseq_ref import build_fairseq_model

    from modelport.generation import generate

    build_fairseq_model(tmp_path / "src", seed=2)
    fp32 = modelport.convert(str(tmp_path / "src"), tmp_path / "fp32")
    assert fp32.model.lm_head is not None
    modelport.quantize(fp32.path, tmp_path / mode, mode=mode)
    loaded = modelport.load(tmp_path / mode)
    src, prev = torch.tensor([[5, 6, 7, 8, 2]]), torch.tensor([[2, 9, 10, 11]])
    with torch.no_grad():
        diff = (loaded.model(src, prev) - fp32.model(src, prev)).abs().max().item()
    assert diff < 0.1, diff
    assert generate(loaded.models, [[5, 6, 7, 8, 2]], beam=2, max_len_b=5)[0][0]["tokens"]


def test_bad_quantize_options(ported_default, tmp_path) -> None:
    src = str(ported_default.path)
    with pytest.raises(SystemExit) as info:  # argparse rejects the unknown mode itself
        modelport.cli.main(["quantize", src, str(tmp_path / "c"), "--mode", "int4"])
    assert info.value.code == 2
    with pytest.raises(modelport.ModelportError, match="not a known quantization mode"):
        modelport.quantize(src, tmp_path / "d", mode="int4")
