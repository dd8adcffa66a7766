"""Quantization and pruning (layers, FFN neurons, heads) on the embedded trained model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import modelport
from cli_util import one_line_error
from conftest import CORPUS
from modelport.passes.prune import layers_to_keep

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
    loaded = modelport.load(out)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in loaded.model.modules())


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


@pytest.mark.parametrize("teacher, student, kept", [(12, 6, [0, 2, 4, 7, 9, 11]), (12, 3, [0, 6, 11]),
                                                    (6, 3, [0, 2, 5]), (3, 1, [0]), (3, 2, [0, 2]),
                                                    (5, 3, [0, 2, 4])])
def test_layer_table(teacher, student, kept) -> None:
    assert layers_to_keep(teacher, student) == kept


def test_decoder_shrink_copies_the_tabled_layers(ported_default, tmp_path) -> None:
    out = tmp_path / "small"
    report = modelport.prune(ported_default.path, out, decoder_layers=2)
    small = modelport.load(out)
    assert small.config.decoder_layers == 2 and small.config.encoder_layers == 3
    teacher = ported_default.model.state_dict()
    student = small.model.state_dict()
    for new, old in enumerate([0, 2]):
        for key, value in student.items():
            if key.startswith(f"decoder.layers.{new}."):
                assert torch.equal(value, teacher[key.replace(f"layers.{new}.", f"layers.{old}.")])
    layer_params = sum(v.numel() for k, v in teacher.items() if k.startswith("decoder.layers.1."))
    assert report["parameters"]["before"] - report["parameters"]["after"] == layer_params
    assert small.translate(LINES[:1])[0][0]["text"]


def test_ffn_prune_removes_the_smallest_neurons(ported_default, tmp_path) -> None:
    out = tmp_path / "ffn"
    report = modelport.prune(ported_default.path, out, ffn=0.25)
    small = modelport.load(out)
    d, width = ported_default.config.d_model, ported_default.config.encoder_ffn_dim
    removed = round(0.25 * width)
    assert small.config.encoder_ffn_dim == small.config.decoder_ffn_dim == width - removed
    teacher, student = ported_default.model.state_dict(), small.model.state_dict()
    for prefix in ("encoder.layers.0.ffn", "decoder.layers.2.ffn"):
        up, down = teacher[f"{prefix}.up.weight"], teacher[f"{prefix}.down.weight"]
        score = up.norm(dim=1) * down.norm(dim=0)
        kept = sorted(score.argsort(descending=True)[: width - removed].tolist())
        assert torch.equal(student[f"{prefix}.up.weight"], up[kept])
        assert torch.equal(student[f"{prefix}.up.bias"], teacher[f"{prefix}.up.bias"][kept])
        assert torch.equal(student[f"{prefix}.down.weight"], down[:, kept])
        assert torch.equal(student[f"{prefix}.down.bias"], teacher[f"{prefix}.down.bias"])
    layers = ported_default.config.encoder_layers + ported_default.config.decoder_layers
    assert report["parameters"]["before"] - report["parameters"]["after"] == layers * removed * (2 * d + 1)
    assert small.translate(LINES[:1])[0][0]["text"]


def test_head_prune_removes_whole_heads_and_quantizes(ported_default, tmp_path) -> None:
    out = tmp_path / "heads"
    report = modelport.prune(ported_default.path, out, heads=0.5)
    small = modelport.load(out)
    cfg = ported_default.config
    hd = cfg.d_model // cfg.encoder_heads
    assert (small.config.encoder_heads, small.config.decoder_heads, small.config.head_dim) == (2, 2, hd)
    teacher, student = ported_default.model.state_dict(), small.model.state_dict()
    prefix = "decoder.layers.1.cross_attn"
    v, o = teacher[f"{prefix}.v_proj.weight"], teacher[f"{prefix}.out_proj.weight"]
    score = torch.tensor([v[h * hd:(h + 1) * hd].norm() * o[:, h * hd:(h + 1) * hd].norm() for h in range(4)])
    rows = [h * hd + i for h in sorted(score.argsort(descending=True)[:2].tolist()) for i in range(hd)]
    for name in ("q_proj", "k_proj", "v_proj"):
        assert torch.equal(student[f"{prefix}.{name}.weight"], teacher[f"{prefix}.{name}.weight"][rows])
        assert torch.equal(student[f"{prefix}.{name}.bias"], teacher[f"{prefix}.{name}.bias"][rows])
    assert torch.equal(student[f"{prefix}.out_proj.weight"], o[:, rows])
    attentions = cfg.encoder_layers + 2 * cfg.decoder_layers
    per_attention = 4 * len(rows) * cfg.d_model + 3 * len(rows)
    assert report["parameters"]["before"] - report["parameters"]["after"] == attentions * per_attention
    modelport.quantize(out, tmp_path / "heads-int8", mode="int8")
    assert modelport.load(tmp_path / "heads-int8").translate(LINES[:1])[0][0]["text"]


def test_bad_pass_options(ported_default, tmp_path, capsys) -> None:
    src = str(ported_default.path)
    assert "[1, 3]" in one_line_error(["prune", src, str(tmp_path / "a"), "--decoder-layers", "7"], capsys)
    assert "nothing to prune" in one_line_error(["prune", src, str(tmp_path / "b")], capsys)
    assert "(0, 1)" in one_line_error(["prune", src, str(tmp_path / "b"), "--heads", "1.0"], capsys)
    assert "removes no FFN neuron" in one_line_error(["prune", src, str(tmp_path / "b"), "--ffn", "1e-4"], capsys)
    assert "not implemented" in one_line_error(["prune", src, str(tmp_path / "b"), "--vocab-from", "x"], capsys)
    with pytest.raises(SystemExit) as info:  # argparse rejects the unknown mode itself
        modelport.cli.main(["quantize", src, str(tmp_path / "c"), "--mode", "int4"])
    assert info.value.code == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(modelport.ModelportError, match="not a known quantization mode"):
        modelport.quantize(src, tmp_path / "d", mode="int4")
