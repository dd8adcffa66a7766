"""Shared fixtures. Reference frameworks (fairseq) are imported lazily by the
tests that need them; tests/helpers/fairseq_ref.py builds tiny fairseq checkpoints.

``MODELPORT_TEST_WITHOUT=fairseq,transformers`` makes those frameworks
unimportable for the run, as on a machine that has only modelport: tests that
need them skip, every other test must pass (``bash scripts/test.sh`` with it
set shows which tests need a reference framework).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


# A None entry in sys.modules is what Python itself reads as "not importable":
# `import fairseq` raises ModuleNotFoundError and importlib.util.find_spec
# returns None, exactly as on a machine without it.
for _name in os.environ.get("MODELPORT_TEST_WITHOUT", "").split(","):
    if _name.strip():
        sys.modules[_name.strip()] = None  # type: ignore[assignment]

from tests.helpers.paths import DEFAULT_MODEL


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
def ported_m2m(tmp_path_factory: pytest.TempPathFactory):
    """assets/fixture-m2m (a trained M2M100-style en<->de model) converted once per session."""
    import modelport
    from tests.helpers.paths import ROOT

    return modelport.convert(str(ROOT / "assets" / "fixture-m2m"), tmp_path_factory.mktemp("ported") / "m2m")


@pytest.fixture(scope="session")
def ported_ensemble(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path):
    """A two-member ensemble (the embedded model twice) converted once per session."""
    import shutil

    import modelport

    src = tmp_path_factory.mktemp("ensemble") / "src"
    shutil.copytree(default_model_dir, src)
    shutil.copy(src / "model.pt", src / "b.pt")
    return modelport.convert(str(src), src.parent / "ported", checkpoint="model.pt:b.pt")
