"""``modelport.load(..., device=, dtype=)`` and ``PortedModel.to``: the
precision and device a user of transformers names, checked before anything
moves; reduced precision agrees with float32 on the embedded model; the
search makes its tensors on the model's device."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import modelport
from modelport.errors import InvalidInputError
from tests.helpers.paths import CORPUS, ROOT

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:40]


@pytest.fixture(scope="module")
def fp32_outputs(ported_default) -> list[str]:
    return [h[0].text for h in modelport.load(ported_default.path).translate(LINES)]


@pytest.mark.parametrize("dtype", ["bfloat16", torch.bfloat16])
def test_load_in_bfloat16_on_cpu_agrees_with_float32(ported_default, fp32_outputs: list[str], dtype) -> None:
    ported = modelport.load(ported_default.path, device="cpu", dtype=dtype)
    assert ported.dtype == torch.bfloat16 and ported.device == torch.device("cpu")
    assert all(p.dtype == torch.bfloat16 for p in ported.model.parameters())
    hyps = ported.translate(LINES)
    same = sum(h[0].text == ref for h, ref in zip(hyps, fp32_outputs))
    assert same >= 0.9 * len(LINES), f"bf16 agrees with fp32 on {same}/{len(LINES)} lines"
    assert all(isinstance(h[0].score, float) and h[0].score == h[0].score for h in hyps)  # scores stay numbers


def test_to_moves_every_member_and_returns_the_model(ported_ensemble) -> None:
    ported = modelport.load(ported_ensemble.path)
    assert ported.to(dtype="float16") is ported
    assert [m.decoder.embed.embed_tokens.weight.dtype for m in ported.models] == [torch.float16] * 2
    ported.to(dtype=torch.float32)
    assert ported.dtype == torch.float32


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "gpu"}, "`device` must be cpu, cuda or cuda:N, but is 'gpu'"),
    ({"dtype": "int8"}, "`dtype` must be one of float32, float16, bfloat16, but is 'int8'"),
    ({"dtype": torch.int64}, "`dtype` must be one of float32, float16, bfloat16, but is torch.int64"),
])
def test_bad_placement_is_a_typed_error(ported_default, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        modelport.load(ported_default.path, **kwargs)
    assert message in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_typed_error(ported_default) -> None:
    with pytest.raises(InvalidInputError, match="device `cuda:1` needs CUDA, but CUDA is not available"):
        modelport.load(ported_default.path, device="cuda:1")


@pytest.fixture(scope="module")
def int8_folder(ported_default, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "int8"
    modelport.quantize(ported_default.path, out, mode="int8")
    return out


def test_int8_refuses_another_precision(int8_folder: Path) -> None:
    with pytest.raises(InvalidInputError, match="an int8 folder computes in float32"):
        modelport.load(int8_folder, dtype="bfloat16")
    with pytest.raises(InvalidInputError, match="an int8 folder computes in float32"):
        modelport.load(int8_folder).to(dtype="float16")


def test_int8_load_shows_no_deprecation_notice(int8_folder: Path) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ported = modelport.load(int8_folder)
        ported.translate(["Hello world!"])
    assert [str(w.message)[:80] for w in caught] == []


# every tensor the search creates lives on the model's device: the constructors in
# modelport/generation/ name their device (the few CPU ones say device="cpu"), or copy
# a tensor's (*_like, new_*)
_CONSTRUCTORS = {"tensor", "full", "zeros", "ones", "arange", "empty", "rand", "randn", "eye", "linspace"}


def _device_less_constructors() -> list[str]:
    found = []
    for path in sorted((ROOT / "modelport" / "generation").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                        and node.func.attr in _CONSTRUCTORS
                        and not any(k.arg == "device" for k in node.keywords)):
                    found.append(f"{path.name}:{node.lineno} torch.{node.func.attr} in {func.name}()")
    return found


def test_the_search_creates_its_tensors_on_the_models_device() -> None:
    assert _device_less_constructors() == []
