"""Markdown reports show every field of their JSON: parity_report.md (BLEU/chrF
numbers, decoding options) and pass_report.md (the int8 mode, prune options,
removed heads), rendered by the one renderer in modelport/reports.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import CORPUS, DEFAULT_MODEL
from tests.helpers.requires import requires


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
    from tests.helpers.cli import main

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
    from tests.helpers.cli import main

    src, _ = data_files
    out = tmp_path / "pruned"
    assert main(["prune", str(ported_default.path), str(out), "--heads", "0.25", "--decoder-layers", "2",
                 "--data", str(src)]) == 0
    assert_every_leaf_shown(out / "pass_report.json", out / "pass_report.md")
    md = (out / "pass_report.md").read_text(encoding="utf-8")
    assert "| heads | 0.25 |" in md and "| decoder_layers | 2 |" in md


@requires('fairseq')
def test_parity_report_shows_bleu_and_decoding_options(ported_default, data_files, tmp_path: Path) -> None:
    from tests.helpers.cli import main

    src, refs = data_files
    assert main(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data", str(src),
                 "--references", str(refs), "--beam", "4", "--report", str(tmp_path)]) == 0
    assert_every_leaf_shown(tmp_path / "parity_report.json", tmp_path / "parity_report.md")
    report = json.loads((tmp_path / "parity_report.json").read_text(encoding="utf-8"))
    md = (tmp_path / "parity_report.md").read_text(encoding="utf-8")
    assert f"{report['bleu']['modelport']['bleu']:.6g}" in md


PASS_JSON = {
    "pass": {"name": "quantize", "options": {"mode": "int8"}, "changed": {"tensors_quantized": 38}},
    "parameters": {"before": 1627136, "after": 1627136}, "bytes_on_disk": {"before": 6600000, "after": 1700000},
    "tokens_per_second": {"before": 812.3, "after": 1020.5, "speedup": 1.26},
    "agreement": {"lines": 4, "identical_outputs": 3, "identical_percent": 75.0, "mean_abs_score_diff": 0.012,
                  "mean_abs_token_logprob_diff": 0.004},
    "quality": {"before": {"bleu": 30.12, "chrf": 55.5}, "after": {"bleu": 29.8, "chrf": 55.1}},
}


def test_pass_report_round_trips_and_prints_the_cli_summary() -> None:
    from modelport.reports.passes import PassReport

    report = PassReport.from_json(PASS_JSON)
    assert report.to_json() == PASS_JSON and list(report.to_json()) == list(PASS_JSON)
    assert report["agreement"]["lines"] == 4 and "quality" in report  # read-only dict view of to_json()
    assert report.summary_lines("out") == [
        "written to:    out", "parameters:    1,627,136 -> 1,627,136", "bytes on disk: 6,600,000 -> 1,700,000 (26%)",
        "tokens/s:      812.3 -> 1020.5 (1.26x, same run)", "agreement:     3/4 identical beam outputs (75.0%)",
        "log-prob diff: 0.004 mean |difference| per token where identical",
        "BLEU / chrF:   30.12 / 55.5 -> 29.8 / 55.1", f"report:        {Path('out') / 'pass_report.md'}"]
    size_only = {k: PASS_JSON[k] for k in ("pass", "parameters", "bytes_on_disk")}
    assert PassReport.from_json(size_only).to_json() == size_only
    assert len(PassReport.from_json(size_only).summary_lines("out")) == 4
    assert "| mode | int8 |" in report.to_markdown()


def test_export_reports_round_trip_by_target(tmp_path: Path) -> None:
    from modelport.reports.export import ExportReport, HfExportReport, OnnxExportReport

    hf = {"target": "hf", "modelport_version": "0.1", "transformers_version": "4.0", "ported_dir": "/p",
          "source_format": "fairseq", "model_class": "FSMTForConditionalGeneration", "tokenizer_class": "FSMTTokenizer",
          "exact": True, "approximations": [], "generation_config": {"num_beams": 5}, "generation_notes": ["n"],
          "verification": {"lines": 5, "tolerance": 1e-4, "logits_and_outputs_checked": True, "classes": ["A", "B"],
                           "tokenizer": {"ids_equal": 5, "mismatches": []}, "forward": {"max_abs_logit_diff": 2e-6},
                           "generate": {"identical": 5, "max_score_diff": 0.0, "options": {"num_beams": 5}},
                           "passed": True, "failure": None}}
    onnx = {"target": "onnx", "modelport_version": "0.1", "torch_version": "2", "onnx_version": "1",
            "onnxruntime_version": "1.2", "opset": 17, "ported_dir": "/p", "source_format": "t5", "dtype": "float32",
            "encoder": {"file": "encoder.onnx", "inputs": ["input_ids"], "outputs": ["h", "m"]},
            "decoder": {"file": "decoder.onnx", "inputs": ["d", "h", "m"], "outputs": ["logits"], "kv_cache": False,
                        "note": "full prefix"},
            "special_tokens": {"pad": 0, "eos": 1, "bos": None, "decoder_start": 0}, "semantics": "hf"}
    for data, kind in ((hf, HfExportReport), (onnx, OnnxExportReport)):
        report = ExportReport.from_json(data)
        assert isinstance(report, kind) and report.to_json() == data and list(report.to_json()) == list(data)
    assert ExportReport.from_json(hf).summary_lines("out") == [
        "written to:    out", "classes:       FSMTForConditionalGeneration + FSMTTokenizer (transformers 4.0)",
        "exact:         yes", "tokenizer:     5/5 lines with identical ids", "forward:       max |logit diff| 2.00e-06",
        "generate:      5/5 identical beam outputs (modelport semantics hf)", "note:          n",
        f"report:        {Path('out') / 'export_report.json'}"]
    assert ExportReport.from_json(onnx).summary_lines("out")[2] == "verification:  skipped (--no-verify)"
    with pytest.raises(ValueError, match="not a known export target"):
        ExportReport.from_json({**hf, "target": "tflite"})


# parity_report.json as `modelport validate` writes it: a fairseq port whose forward check failed
# (tokenizer: one reference ran, one skipped) and a Marian port checked against pymarian
FAIRSEQ_PARITY_JSON = {
    "meta": {"ported_dir": "p", "reference": "r", "lines": 2, "semantics": "fairseq", "options": {"beam": 4},
             "batch_size": 16, "notes": [], "reference_framework": "FairseqReference"},
    "tokenizer": {"type": "fairseq_moses_bpe", "lines": 2, "passed": True, "references": {
        "fairseq_hub": {"authoritative": True, "ids_equal": 2, "target_ids_equal": None, "decoded_equal": 2,
                        "outputs_decoded_equal": 2, "reference_errors": 0, "modelport_errors": 0, "outputs": 2,
                        "passed": True, "mismatches": []},
        "transformers_fsmt": {"skipped": "transformers not installed", "authoritative": None}}},
    "forward": {"max_abs_logit_diff": 0.25, "tolerance": 1e-4, "passed": False,
                "first_divergent_module": "decoder.layers.1.ffn.down",
                "first_divergent_reference_module": "decoder.layers.1.fc2", "module_max_abs_diff": 0.5},
    "beam": {"hypotheses": 8, "identical": False, "near_ties": 0, "real_divergences": 1, "score_mismatches": 0,
             "max_score_diff": 1.5e-6, "passed": False, "mismatches": [{"line": 1, "rank": 0, "kind": "real divergence",
                                                                        "step": 3, "gap": 0.2}]},
    "passed": False,
}
MARIAN_PARITY_JSON = {
    "meta": {"ported_dir": "p", "reference": "r", "lines": 3, "semantics": "marian", "options": {"beam_size": 2},
             "notes": [], "reference_framework": "pymarian (Marian 1.12)"},
    "forward": {"max_abs_logprob_diff": 3e-6, "max_abs_logit_diff": 3e-6, "tolerance": 1e-4, "compared": "c",
                "reference_precision": "5 decimals", "passed": True},
    "beam": {"hypotheses": 6, "lines": 3, "identical_lines": 3, "real_divergences": 0, "near_ties": 0,
             "max_score_diff": 2e-6, "reference_precision": "p", "mismatches": [], "passed": True},
    "bleu": {"modelport": {"bleu": 30.5, "chrf": 55.25}, "reference": {"bleu": 30.5, "chrf": 55.25}, "passed": True},
    "passed": True,
}


def test_parity_report_round_trips_and_prints_the_cli_summary() -> None:
    from modelport.reports.parity import MarianForwardSection, ParityReport, SkippedReference

    for data in (FAIRSEQ_PARITY_JSON, MARIAN_PARITY_JSON):
        report = ParityReport.from_json(data)
        assert json.dumps(report.to_json()) == json.dumps(data)  # same keys, values and order
        assert ParityReport.from_json(report.to_json()) == report
    report = ParityReport.from_json(FAIRSEQ_PARITY_JSON)
    assert not report.passed and isinstance(report.tokenizer.references["transformers_fsmt"], SkippedReference)
    assert report["forward"]["first_divergent_module"] == "decoder.layers.1.ffn.down" and "bleu" not in report
    assert report.summary_lines() == [
        "tokenizer: passed (fairseq_hub 2/2 ids)",
        "forward:   FAILED (max |logit diff| 2.50e-01, first divergent module: decoder.layers.1.ffn.down)",
        "beam:      FAILED (8 hypotheses, 1 real divergences, 0 near-ties, max score diff 1.50e-06)",
        "parity:    FAILED"]
    marian = ParityReport.from_json(MARIAN_PARITY_JSON)
    assert isinstance(marian.forward, MarianForwardSection) and marian.beam.identical
    assert marian.summary_lines()[-2:] == ["bleu:      port 30.50 / chrF 55.25; reference 30.50 / chrF 55.25",
                                           "parity:    passed"]
    assert "| modelport | BLEU 30.50, chrF 55.25 |" in marian.card_lines()
    md = report.to_markdown()
    assert "**Overall: FAILED**" in md and "| first_divergent_reference_module | decoder.layers.1.fc2 |" in md
