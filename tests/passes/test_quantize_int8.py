"""``quantize --mode int8``'s per-layer choice on the embedded trained model: which
linear layers run int8 matmuls, that loading follows the folder's record (and
that folders written before the record load as they did), and the BLEU/chrF
change the report gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

import modelport
from modelport.errors import InvalidInputError
from modelport.metrics import corpus_scores
from modelport.model.layers import FeedForward
from modelport.model.quantized import (INT8_LAYERS, INT8_WEIGHTS, FullRangeLinear, Int8LinearReLU, _saturation_free,
                                      full_range_int8)
from modelport.passes.quantize import MIN_INT8_ELEMENTS, Int8Options
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:12]
REFS = (CORPUS / "test.de").read_text(encoding="utf-8").splitlines()[:12]
FFN = 512 * 128  # the embedded model's FFN matrices; its attention projections are 128 x 128


def _int8_modules(ported: modelport.PortedModel) -> set[str]:
    return {name for name, m in ported.model.named_modules() if isinstance(m, DynamicLinear)}


def _record(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))["quantization"]


@pytest.fixture(scope="module")
def ffn_only(ported_default, tmp_path_factory) -> Path:
    """int8 matmuls in the layers of at least FFN weights: the FFN matrices, not the attention projections."""
    out = tmp_path_factory.mktemp("int8") / "ffn-only"
    modelport.quantize(ported_default.path, out, mode="int8", int8=Int8Options(min_elements=FFN))
    return out


def test_small_layers_stay_fp32_and_large_ones_run_int8(ported_default, ffn_only) -> None:
    loaded = modelport.load(ffn_only)
    ffn = {f"{side}.layers.{i}.ffn.{m}" for side, n in (("encoder", 3), ("decoder", 3)) for i in range(n)
           for m in ("up", "down")} | {"lm_head"}  # the tied output projection (128 x 8k) is larger still
    assert _int8_modules(loaded) == ffn
    assert sorted(_record(ffn_only)[INT8_LAYERS]) == sorted(ffn) and _record(ffn_only)[INT8_WEIGHTS] == "per-channel"
    small = loaded.model.get_submodule("decoder.layers.0.self_attn.q_proj")
    assert isinstance(small, nn.Linear)  # a float layer, not a quantized one
    # it computes in fp32 from the stored int8 weights: its output is the dequantized matrix's, exactly
    x = torch.randn(3, 128)
    fp32 = ported_default.model.get_submodule("decoder.layers.0.self_attn.q_proj")
    w = fp32.weight
    scale = w.abs().amax(dim=1) / 127.0
    expected = nn.functional.linear(x, torch.round(w / scale[:, None]) * scale[:, None], fp32.bias)
    assert torch.allclose(small(x), expected, atol=1e-6)


def test_default_runs_only_the_embedded_models_output_projection_int8(ported_default, tmp_path) -> None:
    """Every layer of the embedded model but its output projection (tied to the embeddings) is below the
    measured minimum: that one runs int8 matmuls, from a module of its own over the embedding matrix,
    which stays fp32 for the embedding lookups. With --int8-fp32-output-projection none runs int8, so the
    outputs differ from fp32 only by the int8 storage, as int8-weights' do."""
    assert 4 * FFN > MIN_INT8_ELEMENTS > FFN
    report = modelport.quantize(ported_default.path, tmp_path / "default", mode="int8")
    assert _record(tmp_path / "default")[INT8_LAYERS] == ["lm_head"]
    assert report.changed["int8_matmul_layers"] == 1 and report.changed["fp32_matmul_layers"] == 48
    loaded = modelport.load(tmp_path / "default")
    assert _int8_modules(loaded) == {"lm_head"} and ported_default.model.lm_head is None
    assert loaded.model.decoder.embed.embed_tokens.weight.dtype == torch.float32
    assert [h[0]["tokens"] for h in loaded.translate(LINES[:4])][0]

    modelport.quantize(ported_default.path, tmp_path / "fp32-head", mode="int8",
                       int8=Int8Options(fp32_output_projection=True))
    assert _record(tmp_path / "fp32-head")[INT8_LAYERS] == []
    modelport.quantize(ported_default.path, tmp_path / "weights", mode="int8-weights")
    assert not _int8_modules(modelport.load(tmp_path / "fp32-head"))
    ours = [h[0]["tokens"] for h in modelport.load(tmp_path / "fp32-head").translate(LINES[:4])]
    assert ours == [h[0]["tokens"] for h in modelport.load(tmp_path / "weights").translate(LINES[:4])]


def _int8(layer: nn.Linear) -> DynamicLinear:
    """torch's dynamic int8 layer (128 activation levels) over ``layer``'s weights, per channel."""
    qconfig = {"0": torch.ao.quantization.per_channel_dynamic_qconfig}
    return torch.ao.quantization.quantize_dynamic(nn.Sequential(layer), qconfig)[0]


@pytest.fixture
def fresh_probe():
    _saturation_free.cache_clear()
    yield
    _saturation_free.cache_clear()


def test_activations_take_256_levels_only_where_the_kernel_cannot_saturate(ported_default, tmp_path,
                                                                         fresh_probe, monkeypatch) -> None:
    """Full-range int8 activations where the probe finds no 16-bit saturation (VNNI CPUs), checked here
    at other shapes than the probe's; torch's 128 levels elsewhere or when asked; twice as precise."""
    modelport.quantize(ported_default.path, tmp_path / "all", mode="int8", int8=Int8Options(min_elements=0))
    full = full_range_int8()
    layers = [m for m in modelport.load(tmp_path / "all").model.modules() if isinstance(m, DynamicLinear)]
    assert layers and all(_full_range(m) == full for m in layers)
    if full:
        for rows, width in ((1, 64), (80, 1024), (7, 4096)):  # every pair sum 2 x 255 x 127 > 32767
            layer = nn.Linear(width, 48, bias=False)
            nn.init.constant_(layer.weight, 1.0)
            q = _int8(layer)
            q.__class__ = FullRangeLinear
            # saturated: about half; rounding of the activations' scale: under 1%
            assert torch.allclose(q(torch.ones(rows, width)), torch.full((rows, 48), float(width)), rtol=0.01)
        g = torch.Generator().manual_seed(0)
        layer = nn.Linear(512, 512)
        x = torch.randn(40, 512, generator=g)
        q = _int8(layer)
        torch_error = (q(x) - layer(x)).abs().mean()
        q.__class__ = FullRangeLinear
        assert (q(x) - layer(x)).abs().mean() < 0.7 * torch_error
    monkeypatch.setenv("MODELPORT_INT8_FULL_RANGE", "0")
    assert not full_range_int8()
    layers = [m for m in modelport.load(tmp_path / "all").model.modules() if isinstance(m, DynamicLinear)]
    assert layers and not any(_full_range(m) for m in layers)


def _full_range(layer: DynamicLinear) -> bool:
    return type(layer) is FullRangeLinear or (type(layer) is Int8LinearReLU and layer.full_range)


@pytest.mark.parametrize("full_range", [False, True])
def test_relu_ffns_apply_the_relu_in_their_int8_layer(ported_default, ffn_only, full_range: bool) -> None:
    """Each ReLU FFN's int8 ``up`` layer applies the ReLU itself, bit-identical to a separate ReLU."""
    ffns = [m for m in modelport.load(ffn_only).model.modules() if isinstance(m, FeedForward)]
    assert ffns and all(type(f.up) is Int8LinearReLU and f.up_activates for f in ffns)
    up = ffns[0].up
    up.full_range = full_range
    x = torch.randn(37, up.in_features, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        fused = up(x)
        plain = torch.ops.quantized.linear_dynamic(x, up._packed_params._packed_params, reduce_range=not full_range)
    assert fused.min() >= 0 and torch.equal(fused, torch.relu(plain))


def test_every_layer_when_the_minimum_is_zero(ported_default, tmp_path) -> None:
    modelport.quantize(ported_default.path, tmp_path / "all", mode="int8", int8=Int8Options(min_elements=0))
    expected = {n for n, m in ported_default.model.named_modules() if isinstance(m, nn.Linear)} | {"lm_head"}
    assert _int8_modules(modelport.load(tmp_path / "all")) == expected and len(expected) == 49


def test_a_folder_written_before_the_per_layer_record_loads_as_before(ported_default, tmp_path) -> None:
    """The old pass stored what a minimum of 0 stores (every 2-D weight int8) and recorded only the mode and
    scheme: such a folder runs every linear layer int8 per-channel, whatever its size (the tied output
    projection, which had no module then, in fp32)."""
    new, old = tmp_path / "new", tmp_path / "old"
    modelport.quantize(ported_default.path, new, mode="int8",
                       int8=Int8Options(min_elements=0, fp32_output_projection=True))
    shutil.copytree(new, old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    config["quantization"] = {"mode": "int8", "scheme": "int8 weights, per-row symmetric scales; int8 dynamic "
                                                        "matmuls for linear layers"}
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    loaded = modelport.load(old)
    assert _int8_modules(loaded) == _int8_modules(modelport.load(new)) and len(_int8_modules(loaded)) == 48
    ours = [h[0] for h in loaded.translate(LINES[:4])]
    theirs = [h[0] for h in modelport.load(new).translate(LINES[:4])]
    assert [h["tokens"] for h in ours] == [h["tokens"] for h in theirs] and ours[0]["text"]
    assert [h["score"] for h in ours] == [h["score"] for h in theirs]


def test_report_gives_the_quality_change_of_real_translations(ported_default, tmp_path) -> None:
    out = tmp_path / "measured"
    report = modelport.quantize(ported_default.path, out, mode="int8", data=LINES, references=REFS,
                                int8=Int8Options(min_elements=FFN))
    quality = report["quality"]
    before = corpus_scores([h[0]["text"] for h in ported_default.translate(LINES)], REFS)
    after = corpus_scores([h[0]["text"] for h in modelport.load(out).translate(LINES)], REFS)
    assert quality["before"] == {"bleu": round(before.bleu, 2), "chrf": round(before.chrf, 2)}
    assert quality["after"] == {"bleu": round(after.bleu, 2), "chrf": round(after.chrf, 2)}
    assert quality["delta"] == {"bleu": round(quality["after"]["bleu"] - quality["before"]["bleu"], 2),
                                "chrf": round(quality["after"]["chrf"] - quality["before"]["chrf"], 2)}
    assert json.loads((out / "pass_report.json").read_text(encoding="utf-8"))["quality"]["delta"] == quality["delta"]
    assert report.options["min_int8_elements"] == FFN
    assert any(line.startswith("BLEU / chrF:") and "(BLEU " in line for line in report.summary_lines(out))


@pytest.mark.parametrize(("key", "value", "message"), [
    (INT8_LAYERS, ["decoder.embed.embed_tokens"], "must be a list of the model's linear layers"),
    (INT8_LAYERS, 3, "must be a list of the model's linear layers"),
    (INT8_LAYERS, [{"name": 1}], "must be a list of the model's linear layers"),
    (INT8_WEIGHTS, "per-row", "must be one of per-channel, per-tensor")])
def test_a_bad_record_is_refused(ffn_only, tmp_path, key: str, value: object, message: str) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(ffn_only, bad)
    config = json.loads((bad / "config.json").read_text(encoding="utf-8"))
    config["quantization"][key] = value
    (bad / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        modelport.load(bad)


def test_cli_minimum_and_its_help(ported_default, tmp_path, capsys) -> None:
    from modelport.cli import main
    from modelport.cli.quantize import MIN_INT8_WEIGHTS_HELP

    assert MIN_INT8_WEIGHTS_HELP == str(MIN_INT8_ELEMENTS)
    assert main(["quantize", str(ported_default.path), str(tmp_path / "q"), "--mode", "int8",
                 "--int8-min-weights", str(FFN)]) == 0
    assert len(_record(tmp_path / "q")[INT8_LAYERS]) == 13  # the 12 FFN matrices and the output projection
    assert main(["quantize", str(ported_default.path), str(tmp_path / "h"), "--mode", "int8",
                 "--int8-min-weights", str(FFN), "--int8-fp32-output-projection"]) == 0
    assert len(_record(tmp_path / "h")[INT8_LAYERS]) == 12 and "lm_head" not in _record(tmp_path / "h")[INT8_LAYERS]
    capsys.readouterr()
    for flag in (["--int8-min-weights", "10"], ["--int8-fp32-output-projection"]):
        assert flag[0] in one_line_error(["quantize", str(ported_default.path), str(tmp_path / "f"),
                                          "--mode", "fp16", *flag], capsys)


def test_bad_int8_options(ported_default, tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="not a known int8 weight granularity"):
        Int8Options(weights="per-row")
    with pytest.raises(InvalidInputError, match="must be >= 0"):
        Int8Options(min_elements=-1)
    with pytest.raises(InvalidInputError, match="apply to mode `int8`, but the mode is `fp16`"):
        modelport.quantize(ported_default.path, tmp_path / "x", mode="fp16", int8=Int8Options())
    assert not (tmp_path / "x").exists()
