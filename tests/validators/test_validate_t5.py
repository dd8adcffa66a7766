"""``modelport validate`` on a T5 port: transformers is the reference (its own
model class loaded from the checkpoint folder, its own ``generate``), hf
semantics on both sides. A faithful port passes; a port with one weight
changed fails with exit 3 and the first divergent module named in both
frameworks' names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import modelport
from modelport.cli import main
from modelport.validators.run import validate

pytest.importorskip("transformers")

from tests.helpers.cli import one_line_error  # noqa: E402
from tests.converters.test_t5_parity import build_hf_t5  # noqa: E402

LINES = ["The cat sleeps.", "Hello world, this is a test.", "A", "Translate English to German: good morning"]


@pytest.fixture(scope="module")
def t5_pair(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("t5val")
    ref = build_hf_t5(tmp / "hf", "v1.1", seed=5)
    with torch.no_grad():  # peaky distributions: few near-ties between beams
        ref.shared.weight.mul_(4)
        ref.lm_head.weight.mul_(4)
        ref.lm_head.weight[ref.config.eos_token_id] = 0.9 * ref.lm_head.weight[7]  # varied lengths
    ref.save_pretrained(tmp / "hf")
    modelport.convert(str(tmp / "hf"), tmp / "ported")
    return tmp / "hf", tmp / "ported"


@pytest.mark.parametrize("beam", [1, 4])
def test_t5_port_passes_against_transformers(t5_pair, beam: int, tmp_path: Path) -> None:
    hf_dir, ported = t5_pair
    report = validate(ported, str(hf_dir), LINES, beam=beam, nbest=min(beam, 2), max_len_b=None,
                      report_dir=tmp_path)
    assert report["passed"], json.dumps({k: v for k, v in report.items() if k != "tokenizer"}, indent=1)[:3000]
    assert report["meta"]["semantics"] == "hf"
    assert report["meta"]["reference_framework"] == "TransformersReference"
    assert report["tokenizer"]["passed"]
    assert report["forward"]["max_abs_logit_diff"] < 1e-4
    assert report["beam"]["hypotheses"] == len(LINES) * min(beam, 2)
    assert report["beam"]["identical"]


def test_perturbed_t5_port_fails_naming_the_module(t5_pair, tmp_path: Path, capsys) -> None:
    hf_dir, ported = t5_pair
    broken = tmp_path / "broken"
    shutil.copytree(ported, broken)
    with safe_open(broken / "model.safetensors", "pt") as f:
        metadata = f.metadata()  # keeps the record of tied names
    weights = load_file(broken / "model.safetensors")
    name = "decoder.layers.1.ffn.down.weight"
    weights[name] = weights[name] * 1.5
    save_file(weights, broken / "model.safetensors", metadata=metadata)
    data = tmp_path / "data.txt"
    data.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    line = one_line_error(["validate", str(broken), "--reference", str(hf_dir), "--data", str(data),
                           "--only", "forward"], capsys, code=3)
    assert "parity failed" in line
    fwd = json.loads((broken / "parity_report.json").read_text())["forward"]
    assert fwd["first_divergent_module"] == "decoder.layers.1.ffn.down"
    assert fwd["first_divergent_reference_module"] == "decoder.block.1.layer.2.DenseReluDense.wo"


def test_reference_that_is_not_a_transformers_folder(t5_pair, tmp_path: Path, capsys) -> None:
    _, ported = t5_pair
    data = tmp_path / "data.txt"
    data.write_text("Hello\n", encoding="utf-8")
    line = one_line_error(["validate", str(ported), "--reference", str(tmp_path), "--data", str(data)], capsys)
    assert "has no spiece.model" in line  # the tokenizer check runs first
    line = one_line_error(["validate", str(ported), "--reference", str(tmp_path), "--data", str(data),
                           "--only", "beam"], capsys)
    assert "not a transformers model folder" in line


def test_translate_cli_uses_the_folders_defaults(t5_pair, tmp_path: Path, capsys) -> None:
    """The T5 folder's generation_config.json holds only hf decoding options."""
    _, ported = t5_pair
    data = tmp_path / "data.txt"
    data.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    assert main(["translate", str(ported), "-i", str(data)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(LINES)


def test_max_length_reaches_both_sides(t5_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--max-length`` on a T5 port is generate's ``max_length`` (decoder start
    included) on both sides: transformers gets it, the port stops there too
    (a port ignoring it would decode past the cap and differ: exit 3)."""
    from modelport.validators.references.transformers_generator import TransformersReference

    hf_dir, ported = t5_pair
    uncapped = [len(h[0]["tokens"]) for h in modelport.load(ported).translate(LINES, max_len_b=None)]
    assert max(uncapped) > 3  # the cap below cuts some line: the case can fail
    seen: list[object] = []
    generate = TransformersReference.generate

    def spy(self: TransformersReference, src: object, **options: object) -> object:
        seen.append(options.get("max_length"))
        return generate(self, src, **options)

    monkeypatch.setattr(TransformersReference, "generate", spy)
    data = tmp_path / "data.txt"
    data.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    assert main(["validate", str(ported), "--reference", str(hf_dir), "--data", str(data), "--max-length", "4",
                 "--only", "beam", "--report", str(tmp_path)]) == 0
    assert seen and set(seen) == {4}
    report = json.loads((tmp_path / "parity_report.json").read_text())
    assert report["meta"]["options"]["max_length"] == 4 and report["beam"]["identical"]
