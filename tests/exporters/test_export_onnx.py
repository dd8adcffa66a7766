"""`modelport export onnx`: encoder.onnx + full-prefix decoder.onnx run in
onnxruntime give the port's logits and greedy outputs (fairseq, T5, Marian);
ensembles, quantized folders and exporter failures are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import modelport
from modelport.cli import main
from modelport.generation import generate

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.helpers.cli import one_line_error  # noqa: E402
from tests.helpers.paths import CORPUS  # noqa: E402

from modelport.exporters import onnx as onnx_exporter  # noqa: E402
from modelport.exporters.common import max_abs_diff  # noqa: E402
from modelport.exporters.onnx import OnnxSeq2Seq  # noqa: E402
from modelport.generation.translate import pad_batch  # noqa: E402
from modelport.tokenizers import load_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MARIAN = ROOT / "tests" / "data" / "marian"
TOL = 1e-4


def _export(ported_dir: Path, out: Path, *extra: str) -> dict:
    assert main(["export", "onnx", str(ported_dir), str(out), *extra]) == 0
    return json.loads((out / "export_report.json").read_text())


def _corpus(n: int) -> list[str]:
    return (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:n]


def _check_logits(ported, runtime: OnnxSeq2Seq, lines: list[str]) -> None:
    """Teacher-forced logits of a right-padded batch (batch size and lengths
    unlike the export's trace inputs) equal the port's."""
    cfg = ported.config
    ids = [ported.tokenizer.encode(line) for line in lines]
    src = pad_batch(ids, cfg.pad_token_id, left=False)
    hyps = generate(ported.model, src, semantics="hf", greedy=True, max_new_tokens=12, pad_left=False)
    prev = pad_batch([[cfg.decoder_start_token_id, *h[0]["tokens"]] for h in hyps], cfg.pad_token_id, left=False)
    assert src.size(1) > 4 and prev.size(1) > 3  # longer than the trace inputs: the axes are dynamic
    with torch.no_grad():
        ours = ported.model(src, prev)
    theirs = runtime.logits(src, prev)
    assert theirs.dtype == torch.float32 and theirs.shape == ours.shape
    assert max_abs_diff(theirs, ours) <= TOL  # -inf logits (Marian's masked pad) must agree too


def _check_greedy(ported, runtime: OnnxSeq2Seq, lines: list[str]) -> None:
    cfg = ported.config
    src = pad_batch([ported.tokenizer.encode(line) for line in lines], cfg.pad_token_id, left=False)
    ours = [h[0]["tokens"] for h in generate(ported.model, src, greedy=True, max_new_tokens=16, pad_left=False)]
    theirs = runtime.greedy(src, start=cfg.decoder_start_token_id, eos=cfg.eos_token_id, pad=cfg.pad_token_id,
                            max_new_tokens=16)
    assert theirs == ours


# ---------------------------------------------------------------------------
# fairseq (the embedded default model)


@pytest.fixture(scope="module")
def onnx_default(ported_default, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "out"
    return out, _export(ported_default.path, out)


def test_fairseq_folder_and_report(onnx_default, ported_default) -> None:
    out, report = onnx_default
    names = {p.name for p in out.iterdir()}
    assert {"encoder.onnx", "decoder.onnx", "tokenizer", "config.json", "generation_config.json",
            "export_report.json"} <= names
    assert report["opset"] == onnx_exporter.OPSET and report["onnx_version"] and report["onnxruntime_version"]
    assert report["decoder"]["kv_cache"] is False
    check = report["verification"]
    assert check["passed"] and check["forward"]["max_abs_logit_diff"] <= TOL
    assert check["greedy"]["identical"] == check["sentences"]
    # the copied tokenizer is the port's
    tok = load_tokenizer(out / "tokenizer")
    assert tok.encode("Hello world!") == ported_default.tokenizer.encode("Hello world!")


def test_fairseq_graphs_have_dynamic_axes(onnx_default) -> None:
    import onnx

    out, _ = onnx_default
    for name, tensor in (("encoder.onnx", "input_ids"), ("decoder.onnx", "decoder_input_ids")):
        graph = onnx.load(str(out / name)).graph
        dims = next(i for i in graph.input if i.name == tensor).type.tensor_type.shape.dim
        assert all(d.dim_param for d in dims), (name, dims)


def test_fairseq_logits_and_greedy_match_the_port(onnx_default, ported_default) -> None:
    out, _ = onnx_default
    runtime = OnnxSeq2Seq(out)
    lines = _corpus(7)
    _check_logits(ported_default, runtime, lines)
    _check_greedy(ported_default, runtime, lines)


def test_existing_output_needs_force(onnx_default, ported_default, capsys) -> None:
    out, _ = onnx_default
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out)], capsys)
    assert "already exists" in line and "--force" in line


def test_failed_verification_exits_3_and_writes_nothing(ported_default, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(onnx_exporter, "TOL", -1.0)  # any difference, even 0, now fails
    out = tmp_path / "out"
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out)], capsys, code=3)
    assert "max |logit diff|" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


# ---------------------------------------------------------------------------
# T5 (relative position bias, RMS norm) and Marian (zero start embedding)


@pytest.mark.parametrize("variant", ["v1.0", "relative"])
def test_t5_exports(variant, tmp_path) -> None:
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "hf", variant)
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "ported")
    report = _export(ported.path, tmp_path / "out")
    assert report["verification"]["passed"] and report["source_format"] == "t5"
    runtime = OnnxSeq2Seq(tmp_path / "out")
    lines = ["the quick brown fox", "translate English to German: that is good and long enough", "hello"]
    _check_logits(ported, runtime, lines)
    _check_greedy(ported, runtime, lines)


def test_marian_exports(tmp_path) -> None:
    ported = modelport.convert(str(MARIAN / "post_tiedall_swish"), tmp_path / "ported")
    assert ported.config.decoder_start_zero_embedding
    report = _export(ported.path, tmp_path / "out", "--opset", "18")
    assert report["verification"]["passed"] and report["opset"] == 18
    runtime = OnnxSeq2Seq(tmp_path / "out")
    _check_logits(ported, runtime, _corpus(5))
    _check_greedy(ported, runtime, _corpus(5))


# ---------------------------------------------------------------------------
# refusals


def test_ensemble_is_refused(ported_ensemble, tmp_path, capsys) -> None:
    line = one_line_error(["export", "onnx", str(ported_ensemble.path), str(tmp_path / "out")], capsys)
    assert "ensemble of 2" in line
    assert not (tmp_path / "out").exists()


def test_quantized_folder_is_refused(ported_default, tmp_path, capsys) -> None:
    folder = tmp_path / "folder"
    shutil.copytree(ported_default.path, folder)
    data = json.loads((folder / "config.json").read_text())
    data["quantization"] = {"mode": "int8"}  # what `modelport quantize` records
    (folder / "config.json").write_text(json.dumps(data))
    line = one_line_error(["export", "onnx", str(folder), str(tmp_path / "out")], capsys)
    assert "quantized folder (int8)" in line


def test_exporter_failure_is_one_line(ported_default, tmp_path, capsys) -> None:
    """scaled_dot_product_attention has no ONNX form before opset 14."""
    out = tmp_path / "out"
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out), "--opset", "11"], capsys)
    assert "cannot be exported to ONNX" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_options_of_the_other_target_are_refused(ported_default, tmp_path, capsys) -> None:
    line = one_line_error(["export", "onnx", str(ported_default.path), str(tmp_path / "o"), "--allow-approximate"],
                          capsys)
    assert "--allow-approximate does not apply to `export onnx`" in line
