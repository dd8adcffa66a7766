"""Markdown reports show every field of their JSON: parity_report.md (BLEU/chrF
numbers, decoding options) and pass_report.md (the int8 mode, prune options,
removed heads), rendered by the one renderer in modelport/reports.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPUS, DEFAULT_MODEL


def _leaves(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every scalar in a JSON document, dict keys included as values."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}.{k}#key", k
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def _shown(value: Any) -> str:
    # how a value reads in Markdown: floats to 6 significant digits, `|` escaped in table cells
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|").replace("\n", "\\n")


def assert_every_leaf_shown(json_path: Path, md_path: Path) -> None:
    report = json.loads(json_path.read_text(encoding="utf-8"))
    md = md_path.read_text(encoding="utf-8")
    missing = [(p, v) for p, v in _leaves(report) if _shown(v) not in md and str(v) not in md]
    assert not missing, missing[:20]


def test_nested_fields_are_rendered(tmp_path: Path) -> None:
    from modelport.reports import write_report

    report = {
        "options": {"beam": 5, "lenpen": 0.6, "nbest": 2, "semantics": "fairseq"},
        "bleu": {"passed": True, "modelport": {"bleu": 76.71529551401215, "chrf": 80.25, "signature": "nrefs:1|x"},
                 "reference": {"bleu": 76.71529551401215, "chrf": 80.25}},
        "pass": {"name": "prune", "options": {"heads": 0.25, "decoder_layers": None},
                 "changed": {"heads_removed": {"encoder.layers.0.self_attn": [1, 3], "decoder.layers.1.cross": []},
                             "layer_map": {"decoder": [0, 2]}}},
        "tokenizer": {"passed": False, "references": {"hub": {"ids_equal": 3, "mismatches": [
            {"line": 7, "text": "a | b", "diff": ["~ 6 'b' | 8 'x'"], "ids": {"ours": [5, 6], "theirs": [5, 8]}}]}}},
        "passed": False,
    }
    json_path, md_path = write_report(report, tmp_path)
    assert_every_leaf_shown(json_path, md_path)
    md = md_path.read_text(encoding="utf-8")
    assert "**Overall: FAILED**" in md and "## tokenizer — **FAILED**" in md
    assert "hub: first mismatches" in md and "~ 6 'b' | 8 'x'" in md
    assert "| encoder.layers.0.self_attn | 1, 3 |" in md


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("data")
    for ext in ("en", "de"):
        lines = (CORPUS / f"test.{ext}").read_text(encoding="utf-8").splitlines()[:4]
        (d / f"d.{ext}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d / "d.en", d / "d.de"


def test_int8_pass_report_shows_mode_and_quality(ported_default, data_files, tmp_path: Path) -> None:
    from cli_util import main

    src, refs = data_files
    out = tmp_path / "int8"
    assert main(["quantize", str(ported_default.path), str(out), "--mode", "int8", "--data", str(src),
                 "--references", str(refs)]) == 0
    assert_every_leaf_shown(out / "pass_report.json", out / "pass_report.md")
    report = json.loads((out / "pass_report.json").read_text(encoding="utf-8"))
    md = (out / "pass_report.md").read_text(encoding="utf-8")
    assert report["pass"]["options"]["mode"] == "int8" and "| mode | int8 |" in md
    assert f"{report['quality']['after']['bleu']:.6g}" in md


def test_prune_report_shows_options_and_removed_heads(ported_default, data_files, tmp_path: Path) -> None:
    from cli_util import main

    src, _ = data_files
    out = tmp_path / "pruned"
    assert main(["prune", str(ported_default.path), str(out), "--heads", "0.25", "--decoder-layers", "2",
                 "--data", str(src)]) == 0
    assert_every_leaf_shown(out / "pass_report.json", out / "pass_report.md")
    md = (out / "pass_report.md").read_text(encoding="utf-8")
    assert "| heads | 0.25 |" in md and "| decoder_layers | 2 |" in md


def test_parity_report_shows_bleu_and_decoding_options(ported_default, data_files, tmp_path: Path) -> None:
    from cli_util import main

    src, refs = data_files
    assert main(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data", str(src),
                 "--references", str(refs), "--beam", "4", "--report", str(tmp_path)]) == 0
    assert_every_leaf_shown(tmp_path / "parity_report.json", tmp_path / "parity_report.md")
    report = json.loads((tmp_path / "parity_report.json").read_text(encoding="utf-8"))
    md = (tmp_path / "parity_report.md").read_text(encoding="utf-8")
    assert f"{report['bleu']['modelport']['bleu']:.6g}" in md
