"""Where the repository's fixtures are: the embedded models, the corpus and tests/data."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "assets" / "default-model"
PRENORM_MODEL = ROOT / "assets" / "fixture-prenorm"
CORPUS = ROOT / "assets" / "corpus"
DATA = ROOT / "tests" / "data"


def corpus_lines(n: int, name: str = "test.en") -> list[str]:
    """The first ``n`` lines of the corpus file ``name``."""
    return (CORPUS / name).read_text(encoding="utf-8").splitlines()[:n]


def write_lines(path: Path, lines: list[str]) -> Path:
    """``lines`` written one per line to ``path`` (a --data file); returns ``path``."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
