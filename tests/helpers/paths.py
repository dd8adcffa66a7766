"""Where the repository's fixtures are: the embedded models, the corpus and tests/data."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "assets" / "default-model"
PRENORM_MODEL = ROOT / "assets" / "fixture-prenorm"
CORPUS = ROOT / "assets" / "corpus"
DATA = ROOT / "tests" / "data"
