"""``modelport validate`` on a Marian port: Marian itself (pymarian) is the
reference, run on the original model directory. A faithful port passes
(exit 0); a port with one weight changed fails with exit 3, naming the module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import modelport
from modelport.cli import main

pytest.importorskip("pymarian")

from tests.helpers.cli import one_line_error  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "marian" / "post_tiedall_swish"
N_LINES = 6


@pytest.fixture(scope="module")
def port_and_data(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("validate_marian")
    modelport.convert(str(FIXTURE), tmp / "ported")
    corpus = ROOT / "assets" / "corpus"
    data, refs = tmp / "data.en", tmp / "refs.de"
    data.write_text("\n".join((corpus / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]) + "\n",
                    encoding="utf-8")
    refs.write_text("\n".join((corpus / "test.de").read_text(encoding="utf-8").splitlines()[:N_LINES]) + "\n",
                    encoding="utf-8")
    return tmp / "ported", data, refs


def test_marian_port_passes_against_pymarian(port_and_data, capsys) -> None:
    ported, data, refs = port_and_data
    code = main(["validate", str(ported), "--reference", str(FIXTURE), "--data", str(data), "--references",
                 str(refs), "--beam", "2", "--nbest", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((ported / "parity_report.json").read_text())
    assert report["meta"]["reference_framework"].startswith("pymarian")
    assert report["tokenizer"]["passed"]
    assert report["forward"]["max_abs_logprob_diff"] <= 1e-4
    assert "5 decimals" in report["forward"]["reference_precision"]
    beam = report["beam"]
    assert beam["identical_lines"] == N_LINES and beam["hypotheses"] == 2 * N_LINES
    assert report["bleu"]["modelport"] == report["bleu"]["reference"]


def test_perturbed_marian_port_fails_naming_the_module(port_and_data, tmp_path: Path, capsys) -> None:
    ported, data, _ = port_and_data
    broken = tmp_path / "broken"
    shutil.copytree(ported, broken)
    with safe_open(broken / "model.safetensors", "pt") as f:
        metadata = f.metadata()
    weights = load_file(broken / "model.safetensors")
    name = "decoder.layers.1.ffn.down.weight"
    weights[name] = weights[name] * 1.5
    save_file(weights, broken / "model.safetensors", metadata=metadata)
    line = one_line_error(["validate", str(broken), "--reference", str(FIXTURE), "--data", str(data),
                           "--only", "forward"], capsys, code=3)
    assert "parity failed" in line and "decoder.layers.1.ffn.down" in line
    fwd = json.loads((broken / "parity_report.json").read_text())["forward"]
    assert fwd["max_abs_logprob_diff"] > 1e-4
    assert fwd["first_divergent_module"] == "decoder.layers.1.ffn.down"


TRAINED = ROOT / "tests" / "data" / "marian-trained"
TRAINED_MODELS = sorted(p.name for p in TRAINED.iterdir() if (p / "decoder.yml").is_file())


@pytest.mark.parametrize("name", TRAINED_MODELS)
def test_marian_trained_models_validate(name: str, tmp_path: Path, capsys) -> None:
    """Every model trained by Marian (tests/data/marian-trained): exit 0 against pymarian (Marian's own spm
    vocabularies or OPUS-MT's YAML one), and exit 3 naming the module when one weight is perturbed."""
    reference = TRAINED / name
    ported = modelport.convert(str(reference), tmp_path / "ported").path
    lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]
    if name in ("multi_target", "opus_yaml_multi"):  # multilingual targets: a >>xxx<< token leads each line
        lines = [f">>{'deu' if i % 2 else 'pgl'}<< {line}" for i, line in enumerate(lines)]
    data = tmp_path / "data.en"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["validate", str(ported), "--reference", str(reference), "--data", str(data), "--beam", "4",
                 "--nbest", "2"]) == 0, capsys.readouterr().out
    report = json.loads((ported / "parity_report.json").read_text())
    assert report["tokenizer"]["passed"] and report["forward"]["max_abs_logprob_diff"] <= 1e-4
    assert report["beam"]["identical_lines"] == N_LINES
    with safe_open(ported / "model.safetensors", "pt") as f:
        metadata = f.metadata()
    weights = load_file(ported / "model.safetensors")
    weights["decoder.layers.1.ffn.down.weight"] = weights["decoder.layers.1.ffn.down.weight"] * 1.5
    save_file(weights, ported / "model.safetensors", metadata=metadata)
    line = one_line_error(["validate", str(ported), "--reference", str(reference), "--data", str(data),
                           "--only", "forward"], capsys, code=3)
    assert "decoder.layers.1.ffn.down" in line
