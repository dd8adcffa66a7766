"""The validator against fairseq: a faithful port passes; a port with one
weight changed fails as a real divergence, naming the module."""

from __future__ import annotations

import json

import pytest
import torch

import modelport
from modelport.model.io import load_weights

pytest.importorskip("fairseq")

from tests.helpers.fairseq_ref import build_fairseq_model  # noqa: E402

from modelport.validators.run import validate  # noqa: E402


def _sources(n: int = 6) -> list[list[int]]:
    g = torch.Generator().manual_seed(5)
    return [torch.randint(4, 44, (int(k),), generator=g).tolist() + [2] for k in torch.randint(3, 9, (n,), generator=g)]


@pytest.fixture(scope="module")
def fairseq_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("val") / "fairseq"
    build_fairseq_model(d, seed=3, max_target_positions=10)
    ckpt = torch.load(d / "model.pt", weights_only=False)
    for key in ckpt["model"]:
        if "embed_tokens" in key or "output_projection" in key:
            ckpt["model"][key] = ckpt["model"][key] * 4
    torch.save(ckpt, d / "model.pt")
    return d


def test_faithful_port_passes(fairseq_dir, tmp_path) -> None:
    modelport.convert(str(fairseq_dir), tmp_path / "ported")
    report = validate(tmp_path / "ported", str(fairseq_dir), src_tokens=_sources(), beam=4, nbest=2,
                      only=["forward", "beam"], report_dir=tmp_path / "report")
    assert report["passed"], report
    assert report["forward"]["max_abs_logit_diff"] < 1e-4
    assert report["beam"]["identical"]
    saved = json.loads((tmp_path / "report" / "parity_report.json").read_text())
    assert saved["passed"] is True
    assert (tmp_path / "report" / "parity_report.md").exists()


def test_perturbed_port_is_a_real_divergence_and_names_the_module(fairseq_dir, tmp_path) -> None:
    out = tmp_path / "ported"
    modelport.convert(str(fairseq_dir), out)
    from safetensors.torch import save_file

    weights = {k: v.clone() for k, v in load_weights(out).items()}
    key = "decoder.layers.1.ffn.down.weight"
    weights[key][0, 0] += 3.0
    files = list(out.glob("*.safetensors"))
    assert len(files) == 1
    save_file(weights, str(files[0]), metadata={"format": "pt"})
    report = validate(out, str(fairseq_dir), src_tokens=_sources(), beam=4, only=["forward", "beam"],
                      report_dir=tmp_path / "report")
    assert not report["passed"]
    fwd = report["forward"]
    assert fwd["max_abs_logit_diff"] > 1e-4
    assert fwd["first_divergent_module"] == "decoder.layers.1.ffn.down"
    assert fwd["first_divergent_reference_module"] == "decoder.layers.1.fc2"
    beam = report["beam"]
    assert beam["real_divergences"] > 0
    first = next(m for m in beam["mismatches"] if m["kind"] == "real divergence")
    assert first["gap"] >= 1e-5 and first["token_modelport"] != first["token_reference"]
