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
    write_card(folder, license="apache-2.0", language=["en", "de"], base_model="facebook/wmt19-en-de",
               eval_dataset="wmt19")
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
    assert "| 1 | `quantize` | `mode=\"int8-weights\"` |" in card.text
    assert "## License" not in card.text
    assert str(make_card(folder, license="apache-2.0", base_model="facebook/wmt19-en-de",
                         eval_dataset="wmt19")) == \
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


def test_eval_results_only_with_a_named_dataset(folder: Path, capsys) -> None:
    """BLEU on the lines `validate` ran is no evaluation: without --eval-dataset
    the card has no model-index, only the parity summary in its text."""
    from modelport.cli import main
    from modelport.modelcards import make_card

    (folder / "parity_report.json").write_text(json.dumps(PARITY_REPORT))
    card = make_card(folder)
    assert not card.data.eval_results and "model-index" not in card.data.to_dict()
    assert "| modelport | BLEU 79.19, chrF 88.46 |" in card.text
    assert main(["card", str(folder), "--eval-dataset", "wmt19"]) == 0
    named = ModelCard.load(folder / "README.md")
    assert {r.dataset_name for r in named.data.eval_results} == {"wmt19"}
    assert {r.dataset_type for r in named.data.eval_results} == {"wmt19"}


def test_intended_use_and_limitations(folder: Path) -> None:
    from modelport.modelcards import make_card

    (folder / "parity_report.json").write_text(json.dumps(PARITY_REPORT))
    text = make_card(folder).text
    intended = text.split("## Intended use", 1)[1].split("\n## ", 1)[0]
    limitations = text.split("## Limitations", 1)[1].split("\n## ", 1)[0]
    assert "Parity was proven on 20 lines" in intended and "`default-model`" in intended  # the reference, named
    assert "quality is the original model's" in intended
    assert "`fairseq` semantics profile" in limitations and "`generate`" in limitations
    assert "## Intended use" in str(make_card(folder)) and "not been checked" not in intended


def test_passes_are_a_table_with_what_each_measured(folder: Path) -> None:
    from modelport.modelcards import make_card

    conv = json.loads((folder / "conversion.json").read_text())
    conv["history"] = [{"pass": "quantize", "options": {"mode": "int8"}, "changed": {"tensors_quantized": 50},
                        "report": {"parameters": {"before": 1627136, "after": 1627136},
                                   "bytes_on_disk": {"before": 6521928, "after": 1723520},
                                   "tokens_per_second": {"before": 400.0, "after": 332.0, "speedup": 0.83,
                                                         "timing": "best of 3 runs after a warm-up",
                                                         "runs_before": [390.0, 400.0, 380.0],
                                                         "runs_after": [332.0, 300.0, 310.0]},
                                   "agreement": {"lines": 50, "identical_outputs": 48, "identical_percent": 96.0,
                                                 "mean_abs_score_diff": 0.01, "mean_abs_token_logprob_diff": 0.002},
                                   "quality": {"before": {"bleu": 76.72, "chrf": 88.1},
                                               "after": {"bleu": 75.9, "chrf": 87.7}}}}]
    (folder / "conversion.json").write_text(json.dumps(conv))
    text = make_card(folder).text
    table = text.split("### Passes applied after conversion", 1)[1].split("\n## ", 1)[0]
    assert "| # | pass | options | parameters | size on disk | speed | agreement | BLEU |" in table
    row = [line for line in table.splitlines() if line.startswith("| 1 |")][0]
    assert "`quantize`" in row and '`mode="int8"`' in row and "1.63M → 1.63M" in row
    assert "6.52 MB → 1.72 MB (26%)" in row
    assert "400 → 332 tokens/s (0.83×, best of 3 runs after a warm-up)" in row
    assert "48/50 identical outputs (96%)" in row and "76.72 → 75.9" in row
    assert "{" not in table  # no raw JSON


def test_usage_names_the_repo_once_published(folder: Path) -> None:
    from modelport.modelcards import make_card

    local = make_card(folder).text
    assert 'modelport.load("path/to/this/folder")' in local
    published = make_card(folder, repo_id="org/tiny-en-de").text
    assert 'modelport.load("org/tiny-en-de")' in published and "modelport translate org/tiny-en-de" in published
    assert "path/to/this/folder" not in published


@pytest.mark.parametrize("base_model", ["bad id here", "a/b/c"])
def test_a_base_model_the_hub_would_refuse_is_refused(folder: Path, base_model: str, capsys) -> None:
    """The card was written with it, and the Hub then rejects the card's metadata on upload."""
    from tests.helpers.cli import one_line_error

    line = one_line_error(["card", str(folder), "--base-model", base_model], capsys)
    assert f"`{base_model}` is not a Hub model id (--base-model)" in line, line
    assert not (folder / "README.md").exists()
    assert "is not a Hub model id" in one_line_error(["publish", str(folder), "me/model", "--dry-run",
                                                      "--base-model", base_model], capsys)


def test_one_language_given_as_a_string_is_one_language(folder: Path) -> None:
    """`make_card(folder, language="en")` listed the languages `e` and `n`."""
    from modelport.modelcards import make_card

    assert make_card(folder, language="en").data.language == ["en"]
    assert make_card(folder, language=["en", "de"]).data.language == ["en", "de"]


def _run_usage(card: str, folder: Path, capsys) -> list[str]:
    """The card's two usage examples run as written (the folder for its placeholder): what each printed."""
    import re
    import shlex

    from modelport.cli import main

    code = re.search(r"```python\n(.*?)```", card, re.S).group(1).replace("path/to/this/folder", str(folder))
    capsys.readouterr()
    exec(code, {})  # noqa: S102 - the card's own example
    printed = capsys.readouterr().out.strip()
    shell = re.search(r"```bash\n(.*?)```", card, re.S).group(1).strip().replace("path/to/this/folder", str(folder))
    echoed, command = shell.split(" | ")
    line = shlex.split(echoed)[1]
    argv = shlex.split(command)[1:]  # after `modelport`
    src = folder.parent / "usage.txt"
    src.write_text(line + "\n", encoding="utf-8")
    assert main([*argv, "-i", str(src)]) == 0
    return [printed, capsys.readouterr().out.strip()]


def test_usage_examples_run_on_multilingual_ports(ported_m2m, tmp_path: Path, capsys) -> None:
    """The usage examples translated "Hello world." without languages: on a multilingual port (M2M100/NLLB)
    both failed (a direction is required), and on a Marian multi-target model the line lacked its
    `>>xxx<<` token. They now name the direction validated (else the first two languages) or the token."""
    from modelport.cli import main
    from modelport.modelcards import make_card
    from tests.helpers.paths import ROOT

    made = make_card(ported_m2m.path)
    card = made.text
    # not validated: the first direction the checkpoint was trained in (--lang-pairs en-de,de-en), not the
    # first two of its 100 language tokens (af -> am, in which the model says nothing sensible)
    assert 'source_lang="en", target_lang="de"' in card
    assert "- languages (100; translate in a direction with `--source-lang`/`--target-lang`): af, am, ar," in card
    assert "- trained directions (the checkpoint's `--lang-pairs`): en-de, de-en" in card
    assert made.data.language == ["en", "de"]
    printed = _run_usage(card, ported_m2m.path, capsys)
    assert printed[0] == printed[1] == ported_m2m.translate(["Hello world."], source_lang="en",
                                                            target_lang="de")[0][0].text
    multi = tmp_path / "multi"
    assert main(["convert", str(ROOT / "tests" / "data" / "marian-trained" / "multi_target"), str(multi)]) == 0
    card = make_card(multi).text
    assert "'>>deu<< Hello world.'" in card
    assert "- target languages (2; begin each source line with one): >>deu<<, >>pgl<<" in card
    printed = _run_usage(card, multi, capsys)
    assert printed[0] == printed[1] and printed[0]


def test_usage_example_takes_the_validated_direction(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from modelport.modelcards.card import _Example

    tok = {"languages": ["af", "de", "en"]}
    report = SimpleNamespace(pairs={"de-en": SimpleNamespace(source_lang="de", target_lang="en")})
    example = _Example.of(tmp_path, tok, report)  # type: ignore[arg-type]
    assert (example.source_lang, example.target_lang) == ("de", "en")
    assert example.shell("x") == "echo 'Hello world.' | modelport translate x --source-lang de --target-lang en"
    assert (_Example.of(tmp_path, tok, None).source_lang, _Example.of(tmp_path, {}, None).source_lang) == ("af", None)
    assert _Example.of(tmp_path, tok, None, trained=[("en", "de")]).source_lang == "en"
    assert _Example.of(tmp_path, tok, report, trained=[("en", "de")]).source_lang == "de"  # validated first


def test_a_readme_written_by_hand_is_kept_without_force(folder: Path, capsys) -> None:
    """`card` refreshes the card it wrote; a README.md someone wrote is theirs until --force."""
    from modelport.cli import main
    from tests.helpers.cli import one_line_error

    assert main(["card", str(folder)]) == 0
    assert main(["card", str(folder), "--license", "mit"]) == 0  # its own card: refreshed
    assert ModelCard.load(folder / "README.md").data.license == "mit"
    (folder / "README.md").write_text("# My model\n\nNotes I wrote by hand.\n", encoding="utf-8")
    line = one_line_error(["card", str(folder)], capsys)
    assert f"`{folder / 'README.md'}` already exists and is not a card modelport wrote" in line
    assert "--force" in line
    assert (folder / "README.md").read_text(encoding="utf-8") == "# My model\n\nNotes I wrote by hand.\n"
    capsys.readouterr()
    assert main(["card", str(folder), "--force"]) == 0
    assert "Notes I wrote by hand" not in (folder / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("option,value,said", [
    ("--license", "mit\nbase_model: evil/model", "`--license` must be a license id"),
    ("--license", "", "`--license` must be a license id"),
    ("--language", "en\nlicense: mit", "`--language` takes language codes"),
    ("--eval-dataset", "wmt19\n- injected", "`--eval-dataset` must be a dataset's name on one line"),
])
def test_card_options_that_are_not_one_word_are_refused(folder: Path, option: str, value: str, said: str,
                                                         capsys) -> None:
    from tests.helpers.cli import one_line_error

    (folder / "parity_report.json").write_text(json.dumps(PARITY_REPORT))
    assert said in one_line_error(["card", str(folder), option, value], capsys)
    assert not (folder / "README.md").exists()


def test_a_license_in_conversion_json_that_is_not_an_id_is_refused(folder: Path, capsys) -> None:
    from tests.helpers.cli import one_line_error

    conv = json.loads((folder / "conversion.json").read_text())
    conv["license"] = ["mit", "gpl"]
    (folder / "conversion.json").write_text(json.dumps(conv))
    assert "`license` in conversion.json must be a license id" in one_line_error(["card", str(folder)], capsys)
