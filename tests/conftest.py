"""Shared fixtures. Reference frameworks (fairseq) are imported lazily by the
tests that need them; tests/fairseq_ref.py builds tiny fairseq checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_MODEL = ROOT / "assets" / "default-model"
PRENORM_MODEL = ROOT / "assets" / "fixture-prenorm"
CORPUS = ROOT / "assets" / "corpus"


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    if not (DEFAULT_MODEL / "model.pt").exists():
        pytest.fail("the embedded default model is missing: run scripts/make_default_model.sh")
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def ported_default(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path):
    """The embedded default model converted once per test session."""
    import modelport

    out = tmp_path_factory.mktemp("ported") / "default"
    return modelport.convert(str(default_model_dir), out)


@pytest.fixture(scope="session")
def ported_ensemble(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path):
    """A two-member ensemble (the embedded model twice) converted once per session."""
    import shutil

    import modelport

    src = tmp_path_factory.mktemp("ensemble") / "src"
    shutil.copytree(default_model_dir, src)
    shutil.copy(src / "model.pt", src / "b.pt")
    return modelport.convert(str(src), src.parent / "ported", checkpoint="model.pt:b.pt")
