"""Model cards: metadata built through huggingface_hub, numbers taken from the
folder's own files. (``ModelCard.validate`` posts to the Hub, so the metadata
is checked by a round trip through ``ModelCardData`` instead; the publish
tests also send it through the Hub's ``validate-yaml`` route.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, ModelCardData

# the structure modelport/validators/run.py writes (meta, tokenizer, forward, beam, bleu, passed)
PARITY_REPORT = {
    "meta": {"ported_dir": "x", "reference": "assets/default-model", "lines": 20, "semantics": "fairseq",
             "options": {"beam": 5, "lenpen": 1.0}, "batch_size": 16, "notes": []},
    "tokenizer": {"type": "fairseq_moses_bpe", "lines": 20, "passed": True, "references": {}},
    "forward": {"max_abs_logit_diff": 1.9073486328125e-06, "tolerance": 1e-4, "passed": True},
    "beam": {"hypotheses": 20, "identical": True, "near_ties": 0, "real_divergences": 0, "score_mismatches": 0,
             "max_score_diff": 2.384185791015625e-07, "passed": True, "mismatches": []},
    "bleu": {"modelport": {"bleu": 79.19347221, "chrf": 88.45671}, "reference": {"bleu": 79.19347221,
                                                                                  "chrf": 88.45671},
             "passed": True},
    "passed": True,
}


@pytest.fixture
def folder(ported_default, tmp_path: Path) -> Path:
    out = tmp_path / "tiny-en-de"
    shutil.copytree(ported_default.path, out)
    return out


def test_card_without_report_or_license(folder: Path) -> None:
    from modelport.modelcards import write_card

    path = write_card(folder)
    assert path == folder / "README.md"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["language"] == ["en", "de"]  # from tokenizer/tokenizer_config.json
    assert "license" not in data  # never invented
    assert data["tags"] == ["translation", "fairseq", "modelport"]
    assert data["pipeline_tag"] == "translation"
    assert "model-index" not in data and "eval_results" not in data and "base_model" not in data
    conv = json.loads((folder / "conversion.json").read_text())
    for f in conv["source_files"]:
        assert f["sha256"] in card.text
    for key in conv["dropped"]:
        assert key in card.text
    assert "3 encoder and 3 decoder layers, d_model 128" in card.text
    assert "parameters: 1.63M" in card.text  # assets/default-model/README.md: 1,627,136 parameters
    assert "Not validated yet" in card.text
    assert "modelport translate" in card.text and "modelport.load" in card.text
    assert "semantics profile `fairseq`" in card.text and "`beam=5`" in card.text


def test_card_with_parity_report_and_options(folder: Path) -> None:
    from modelport.modelcards import make_card, write_card

    (folder / "parity_report.json").write_text(json.dumps(PARITY_REPORT))
    conv = json.loads((folder / "conversion.json").read_text())
    conv["history"] = [{"pass": "quantize", "mode": "int8-weights"}]
    (folder / "conversion.json").write_text(json.dumps(conv))
    write_card(folder, license="apache-2.0", language=["en", "de"], base_model="facebook/wmt19-en-de")
    card = ModelCard.load(folder / "README.md")
    # round trip of the metadata through ModelCardData
    again = ModelCardData(**card.data.to_dict())
    assert again.to_dict() == card.data.to_dict()
    assert card.data.license == "apache-2.0"
    assert card.data.base_model == "facebook/wmt19-en-de"
    assert card.data.model_name == "tiny-en-de"
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"bleu", "chrf"}
    assert results["bleu"].metric_value == PARITY_REPORT["bleu"]["modelport"]["bleu"]
    assert results["chrf"].metric_value == PARITY_REPORT["bleu"]["modelport"]["chrf"]
    assert all(r.task_type == "translation" for r in results.values())
    assert "parity **passed**" in card.text
    assert "| modelport | BLEU 79.19, chrF 88.46 |" in card.text
    assert "1.91e-06" in card.text and "2.38e-07" in card.text
    assert "1. `quantize`: mode=\"int8-weights\"" in card.text
    assert "## License" not in card.text
    assert str(make_card(folder, license="apache-2.0", base_model="facebook/wmt19-en-de")) == \
        (folder / "README.md").read_text()


def test_license_from_provenance_and_cli(folder: Path, capsys) -> None:
    from modelport.cli import main

    conv = json.loads((folder / "conversion.json").read_text())
    conv["license"] = "cc-by-4.0"
    (folder / "conversion.json").write_text(json.dumps(conv))
    assert main(["card", str(folder)]) == 0
    assert ModelCard.load(folder / "README.md").data.license == "cc-by-4.0"
    assert main(["card", str(folder / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a ported model folder" in err


def test_card_of_a_head_pruned_folder_lists_heads_per_layer(ported_default, tmp_path: Path) -> None:
    import modelport
    from modelport.modelcards import make_card

    lines = (Path(__file__).resolve().parents[2] / "assets" / "corpus" / "test.en").read_text().splitlines()[:8]
    out = tmp_path / "heads"
    modelport.prune(ported_default.path, out, heads=0.25, data=lines)
    model = json.loads((out / "config.json").read_text())["model"]
    card = str(make_card(out))
    assert "attention heads (before pruning)" in card
    for side in ("encoder", "decoder", "cross"):
        if model[f"{side}_layer_heads"]:
            assert f"{side} {', '.join(map(str, model[f'{side}_layer_heads']))}" in card
    assert "prune" in card  # the pass history
