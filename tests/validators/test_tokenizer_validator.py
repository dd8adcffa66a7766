"""The tokenizer parity validator and the shared report writer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.requires import requires
from tests.tokenizers.test_tokenizers import (  # noqa: F401  (fixtures)
    fairseq_dir,
    hard_lines,
    ported_dir,
    read_lines,
    spm_models,
    train_lines,
    write_marian_dir,
)

from modelport.errors import InvalidInputError, ParityError
from modelport.validators.report import merge_reports, render_markdown, write_report
from modelport.validators.tokenizer import aligned_diff, raise_for_parity, validate_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def test_fairseq_port_passes_against_all_references(ported_dir: Path, fairseq_dir: Path) -> None:
    lines = hard_lines() + train_lines("en", 100)
    report = validate_tokenizer(ported_dir, fairseq_dir, lines)
    sec = report["tokenizer"]
    assert report["passed"] and sec["passed"], json.dumps(sec, indent=1, ensure_ascii=False)[:3000]
    refs = sec["references"]
    assert set(refs) == {"fairseq_hub", "sacremoses_fastbpe", "transformers_fsmt"}
    for name in ("fairseq_hub", "sacremoses_fastbpe"):
        r = refs[name]
        assert r["authoritative"] and r["passed"]
        assert r["ids_equal"] == r["decoded_equal"] == len(lines)
        assert r["mismatches"] == []
    assert refs["fairseq_hub"]["via"] == "hub_interface"
    assert refs["fairseq_hub"]["target_ids_equal"] is None  # the hub has no target-side encode
    assert refs["sacremoses_fastbpe"]["target_ids_equal"] == len(lines)
    # FSMTTokenizer normalizes punctuation first: a second opinion that
    # disagrees on part of the hard corpus, reported but not decisive.
    fsmt = refs["transformers_fsmt"]
    assert fsmt["authoritative"] is False
    assert fsmt["ids_equal"] >= 100
    assert fsmt["ids_equal"] < len(lines)


def test_mismatches_are_reported_with_an_aligned_diff(tmp_path: Path, ported_dir: Path, fairseq_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(ported_dir / "tokenizer", broken / "tokenizer")
    cfg_path = broken / "tokenizer" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["moses_escape"] = False  # a port that forgot fairseq's XML escaping
    cfg_path.write_text(json.dumps(cfg))
    lines = hard_lines()
    report = validate_tokenizer(broken, fairseq_dir, lines, references=("fairseq_hub",), max_examples=3)
    hub = report["tokenizer"]["references"]["fairseq_hub"]
    assert not report["passed"] and not hub["passed"]
    assert 0 < hub["ids_equal"] < len(lines)
    assert len(hub["mismatches"]) == 3
    first = hub["mismatches"][0]
    assert first["kind"] == "ids" and "&" in first["text"] or "'" in first["text"] or '"' in first["text"]
    assert any(row.startswith(("~", "-", "+")) for row in first["diff"])
    with pytest.raises(ParityError) as err:
        raise_for_parity(report)
    assert err.value.exit_code == 3
    json_path, md_path = write_report(report, tmp_path / "report")
    assert json.loads(json_path.read_text(encoding="utf-8")) == report
    md = md_path.read_text(encoding="utf-8")
    assert "## tokenizer — **FAILED**" in md and "fairseq_hub: first mismatches" in md and "```" in md


def test_hub_code_without_a_checkpoint(tmp_path: Path, ported_dir: Path, fairseq_dir: Path) -> None:
    """A reference folder with only dictionaries and codes: fairseq's hub
    encode/decode code runs on fairseq's encoders and dictionaries."""
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("dict.en.txt", "dict.de.txt", "bpecodes"):
        shutil.copyfile(fairseq_dir / name, ref / name)
    report = validate_tokenizer(ported_dir, ref, hard_lines(), references=("fairseq_hub",))
    hub = report["tokenizer"]["references"]["fairseq_hub"]
    assert hub["via"] == "hub_interface_code_on_fairseq_encoders"
    assert report["passed"] and hub["ids_equal"] == hub["decoded_equal"] == len(hard_lines())


def test_references_are_checked(ported_dir: Path, fairseq_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="`sentencepiece` is not a known tokenizer reference"):
        validate_tokenizer(ported_dir, fairseq_dir, ["x"], references=("sentencepiece",))
    with pytest.raises(InvalidInputError, match="does not exist"):
        validate_tokenizer(ported_dir, fairseq_dir / "nope", ["x"])


@requires('transformers')
def test_marian_and_t5_ports_pass(tmp_path: Path, spm_models) -> None:
    from modelport.tokenizers.sentencepiece import save_marian, save_t5

    orig = write_marian_dir(tmp_path / "opus", spm_models)
    save_marian(tmp_path / "marian" / "tokenizer", source_spm=orig / "source.spm", target_spm=orig / "target.spm",
                vocab=next(orig.glob("*.vocab.yml")))
    lines = [x for x in hard_lines() if not any(s in x for s in ("<unk>", "</s>", "<pad>"))]
    report = validate_tokenizer(tmp_path / "marian", orig, lines)
    refs = report["tokenizer"]["references"]
    assert report["passed"], json.dumps(refs, ensure_ascii=False)[:2000]
    assert refs["sentencepiece"]["ids_equal"] == refs["sentencepiece"]["target_ids_equal"] == len(lines)
    assert refs["transformers_marian"]["passed"]

    t5 = tmp_path / "t5src"
    t5.mkdir()
    shutil.copyfile(spm_models["t5"], t5 / "spiece.model")
    save_t5(tmp_path / "t5" / "tokenizer", spm=t5 / "spiece.model")
    report = validate_tokenizer(tmp_path / "t5", t5, hard_lines() + ["a <extra_id_0> b <extra_id_7>"])
    refs = report["tokenizer"]["references"]
    assert report["passed"] and refs["sentencepiece"]["passed"]
    assert refs["transformers_t5"]["authoritative"] is False
    assert refs["transformers_t5"]["ids_equal"] > 0


def test_aligned_diff_and_generic_markdown() -> None:
    rows = aligned_diff([5, 6, 7, 2], [5, 8, 7, 9, 2], ["a", "b", "c", "</s>"], ["a", "x", "c", "y", "</s>"])
    assert rows[0].split() == ["modelport", "|", "reference"]
    assert any(r.startswith("~ 6 'b'") and r.endswith("8 'x'") for r in rows)
    assert any(r.startswith("+") and r.endswith("9 'y'") for r in rows)
    report = merge_reports(
        {"tokenizer": {"lines": 2, "passed": True, "references": {"r": {"ids_equal": 2, "mismatches": []}}},
         "passed": True},
        {"beam": {"sentences": 3, "passed": False, "max_score_diff": 1.5e-6,
                  "mismatches": [{"line": 1, "step": 4, "diff": ["= a | a", "~ b | c"]}]}, "passed": False})
    assert report["passed"] is False
    md = render_markdown(report)
    assert "**Overall: FAILED**" in md
    assert "## tokenizer — passed" in md and "## beam — **FAILED**" in md
    assert "| r | 2 |" in md and "| max_score_diff | 1.5e-06 |" in md
    assert "~ b | c" in md


@requires('fairseq', 'transformers')
def test_embedded_model_validates(ported_default, default_model_dir: Path) -> None:
    lines = read_lines(ROOT / "assets" / "corpus" / "test.en")
    report = validate_tokenizer(ported_default.path, default_model_dir, lines, references=("fairseq_hub",
                                                                                            "sacremoses_fastbpe"))
    assert report["passed"], json.dumps(report, ensure_ascii=False)[:2000]
    assert report["tokenizer"]["references"]["fairseq_hub"]["ids_equal"] == len(lines)
