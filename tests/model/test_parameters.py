"""One parameter count for a ported folder (CheckedFolder.parameters): inspect,
the pass report and the model card agree on quantized copies of the embedded
model, and the number is fairseq's own parameter count of the checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import main
from tests.helpers.paths import DEFAULT_MODEL


@pytest.fixture(scope="module")
def fairseq_parameters() -> int:
    """fairseq's model.parameters() count of the embedded checkpoint: every tensor
    of its state dict once (the tied output projection shares the decoder
    embedding's storage), the `version` buffers not counted."""
    with torch.serialization.safe_globals([argparse.Namespace]):  # our own asset, weights only
        state = torch.load(DEFAULT_MODEL / "model.pt", weights_only=True, map_location="cpu")["model"]
    seen, total = set(), 0
    for name, t in state.items():
        if name.endswith((".version", "._float_tensor")):
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            total += t.numel()
    return total


@pytest.mark.parametrize("mode", ["int8", "fp16"])
def test_quantized_folder_counts_every_parameter_once(mode: str, ported_default, fairseq_parameters: int,
                                                      tmp_path: Path, capsys) -> None:
    out = tmp_path / mode
    assert main(["quantize", str(ported_default.path), str(out), "--mode", mode, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] == {"before": fairseq_parameters, "after": fairseq_parameters}

    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters_per_member"] == fairseq_parameters
    assert main(["inspect", str(out)]) == 0
    shown = f"{fairseq_parameters / 1e6:.2f}M"
    printed = capsys.readouterr().out
    assert f"parameters:    {shown} per member" in printed
    # what was done to the folder: its weights and the passes, in order (only "1 pass(es)" was printed)
    assert f"weights:       {mode}\n" in printed and "heads 4/4, ffn 512/512" in printed
    assert "passes:        1\n" in printed and f"  1. quantize mode={mode}" in printed

    assert main(["card", str(out)]) == 0
    assert f"- parameters: {shown}\n" in (out / "README.md").read_text(encoding="utf-8")


def test_ported_folder_count_is_fairseqs(ported_default, fairseq_parameters: int) -> None:
    from modelport.model.folder import check_folder

    assert check_folder(ported_default.path).parameters == fairseq_parameters
    assert ported_default.summary()["parameters_per_member"] == fairseq_parameters
