"""``modelport validate`` on fairseq's newer families, against fairseq itself:
BART (``BARTHubInterface``: ``<s>`` before the source and forced first),
M2M100-style and mBART-50-style ``translation_multi_simple_epoch`` models and
an mBART-25 fine-tune (``translation_from_pretrained_bart``), random weights
built by fairseq's own builders. A faithful port passes per language pair; a
port with one weight changed exits 3 naming the module; an unknown language
exits 2 naming the known ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import modelport
from modelport.cli import main
from modelport.reports.parity import ParityReport
from tests.helpers.cli import one_line_error
from tests.helpers.requires import requires

pytestmark = requires("fairseq", "sentencepiece", "regex")

BEAM = 5


def _lines() -> list[str]:
    from tests.helpers.fairseq_ref import HARD_TEXT, corpus_lines

    return corpus_lines(2) + HARD_TEXT[:4] + HARD_TEXT[-3:-1]  # corpus, odd spacing, Unicode, "<unk> <s> ..." text


def _port(root: Path, build) -> tuple[Path, Path, Path]:
    """(reference dir, ported dir, data file) of a checkpoint ``build`` writes into root/fairseq."""
    path = build(root / "fairseq")
    modelport.convert(str(path.parent), root / "ported")
    data = root / "data.txt"
    data.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    return path.parent, root / "ported", data


@pytest.fixture(scope="module")
def bart(tmp_path_factory):
    from tests.helpers.fairseq_ref import build_bart_model

    return _port(tmp_path_factory.mktemp("bart"), build_bart_model)


@pytest.fixture(scope="module")
def m2m(tmp_path_factory):
    """M2M100-style (--encoder-langtok src, --decoder-langtok), two recorded pairs."""
    from tests.helpers.fairseq_ref import build_multilingual_model

    return _port(tmp_path_factory.mktemp("m2m"), lambda d: build_multilingual_model(d, pairs="en-de,fr-en"))


@pytest.fixture(scope="module")
def nllb(tmp_path_factory):
    """NLLB-200 style: eng_Latn codes, a BPE SentencePiece model, dict.txt in its order."""
    from tests.helpers.fairseq_ref import build_multilingual_model

    return _port(tmp_path_factory.mktemp("nllb"), lambda d: build_multilingual_model(
        d, langs=("eng_Latn", "deu_Latn", "fra_Latn"), pairs="eng_Latn-deu_Latn,fra_Latn-eng_Latn",
        dict_order="spm", spm_type="bpe"))


@pytest.fixture(scope="module")
def mbart50(tmp_path_factory):
    from tests.helpers.fairseq_ref import build_multilingual_model

    return _port(tmp_path_factory.mktemp("mbart50"), lambda d: build_multilingual_model(
        d, langs=("en_XX", "de_DE", "fr_XX"), lang_tok_style="mbart", arch="mbart_large"))


@pytest.fixture(scope="module")
def mbart25(tmp_path_factory):
    from tests.helpers.fairseq_ref import build_mbart_finetune_model

    return _port(tmp_path_factory.mktemp("mbart25"), build_mbart_finetune_model)


def _validate(port, tmp_path: Path, *extra: str, code: int = 0, capsys=None) -> dict:
    ref, ported, data = port
    argv = ["validate", str(ported), "--reference", str(ref), "--data", str(data), "--beam", str(BEAM),
            "--report", str(tmp_path), *extra]
    if code:
        one_line_error(argv, capsys, code=code)
    else:
        assert main(argv) == 0
    return json.loads((tmp_path / "parity_report.json").read_text(encoding="utf-8"))


def _assert_parity(section: dict, lines: int) -> None:
    """inputs, forward and beam of one pair (or of a port without languages) all identical."""
    assert section["passed"], json.dumps(section, indent=1)[:3000]
    assert section["inputs"]["identical"] == section["inputs"]["lines"] == lines
    assert section["forward"]["passed"] and section["forward"]["max_abs_logit_diff"] <= 1e-4
    beam = section["beam"]
    assert beam["identical"] and beam["hypotheses"] == lines and beam["max_score_diff"] <= 1e-4


def _assert_tokenizer(report: dict, lines: int) -> None:
    tok = report["tokenizer"]
    assert tok["passed"] and tok["type"] in ("fairseq_spm", "fairseq_gpt2_bpe")
    fairseq = tok["references"]["fairseq_task"]
    assert fairseq["authoritative"] and fairseq["ids_equal"] == fairseq["target_ids_equal"] == lines
    assert fairseq["outputs_decoded_equal"] == fairseq["outputs"] > 0


def test_bart_passes_against_the_hub(bart, tmp_path) -> None:
    report = _validate(bart, tmp_path)
    n = len(_lines())
    assert report["passed"] and "pairs" not in report  # no languages: the sections at the top
    assert "BART hub" in report["meta"]["reference_framework"]
    _assert_tokenizer(report, n)
    _assert_parity(report, n)


def test_m2m_passes_on_the_recorded_pairs(m2m, tmp_path, capsys) -> None:
    report = _validate(m2m, tmp_path)
    assert report["passed"] and list(report["pairs"]) == ["en-de", "fr-en"]  # the checkpoint's --lang-pairs
    _assert_tokenizer(report, len(_lines()))
    for name, pair in report["pairs"].items():
        assert f"{pair['source_lang']}-{pair['target_lang']}" == name
        _assert_parity(pair, len(_lines()))
    out = capsys.readouterr().out
    assert "en-de: forward:   passed" in out and "fr-en: beam:      passed" in out
    typed = ParityReport.from_json(report)  # what the card reads back
    assert typed.to_json() == report and typed.pairs["fr-en"].beam.identical
    assert any(row.startswith("| fr-en: forward") for row in typed.card_lines())


def test_nllb_style_passes_on_the_recorded_pairs(nllb, tmp_path) -> None:
    report = _validate(nllb, tmp_path)
    assert report["passed"] and list(report["pairs"]) == ["eng_Latn-deu_Latn", "fra_Latn-eng_Latn"]
    _assert_tokenizer(report, len(_lines()))
    for pair in report["pairs"].values():
        _assert_parity(pair, len(_lines()))


def test_mbart50_passes_on_the_pair_given(mbart50, tmp_path) -> None:
    report = _validate(mbart50, tmp_path, "--source-lang", "de_DE", "--target-lang", "fr_XX")
    assert report["passed"] and list(report["pairs"]) == ["de_DE-fr_XX"]
    _assert_parity(report["pairs"]["de_DE-fr_XX"], len(_lines()))


def test_mbart25_finetune_passes_on_its_direction(mbart25, tmp_path) -> None:
    report = _validate(mbart25, tmp_path)
    assert report["passed"] and list(report["pairs"]) == ["en_XX-de_DE"]  # the fine-tune's -s/-t
    _assert_tokenizer(report, len(_lines()))
    _assert_parity(report["pairs"]["en_XX-de_DE"], len(_lines()))


def _perturbed(ported: Path, dest: Path, name: str) -> Path:
    shutil.copytree(ported, dest)
    with safe_open(dest / "model.safetensors", "pt") as f:
        metadata = f.metadata()  # keeps the record of tied names
    weights = load_file(dest / "model.safetensors")
    weights[name] = weights[name] * 1.5 + 0.1
    save_file(weights, dest / "model.safetensors", metadata=metadata)
    return dest


@pytest.mark.parametrize("family, extra", [("bart", ()), ("m2m", ("--lang-pairs", "fr-en")),
                                           ("mbart25", ())])
def test_perturbed_port_fails_naming_the_module(family, extra, request, tmp_path, capsys) -> None:
    ref, ported, data = request.getfixturevalue(family)
    broken = _perturbed(ported, tmp_path / "broken", "decoder.layers.0.ffn.down.weight")
    line = one_line_error(["validate", str(broken), "--reference", str(ref), "--data", str(data), "--beam", "5",
                           *extra], capsys, code=3)
    assert "first divergent module: decoder.layers.0.ffn.down" in line
    report = json.loads((broken / "parity_report.json").read_text(encoding="utf-8"))
    assert not report["passed"]
    forward = report["forward"] if family == "bart" else next(iter(report["pairs"].values()))["forward"]
    assert forward["first_divergent_module"] == "decoder.layers.0.ffn.down"
    assert forward["first_divergent_reference_module"] == "decoder.layers.0.fc2"


def test_unknown_language_names_the_known_ones(m2m, capsys) -> None:
    ref, ported, data = m2m
    line = one_line_error(["validate", str(ported), "--reference", str(ref), "--data", str(data),
                           "--source-lang", "en", "--target-lang", "xx"], capsys)
    assert "`xx` is not a known target language" in line and "en, de, fr" in line
    line = one_line_error(["validate", str(ported), "--reference", str(ref), "--data", str(data),
                           "--lang-pairs", "en-de,qq-fr"], capsys)
    assert "`qq` is not a known source language" in line


def test_languages_refused_for_bart(bart, capsys) -> None:
    ref, ported, data = bart
    line = one_line_error(["validate", str(ported), "--reference", str(ref), "--data", str(data),
                           "--source-lang", "en", "--target-lang", "de"], capsys)
    assert "no language tokens" in line


def test_many_recorded_pairs_ask_for_the_flags(m2m) -> None:
    """Beyond MAX_DEFAULT_PAIRS recorded pairs (M2M100 records 9,900), validate asks which to run."""
    from modelport.errors import InvalidInputError
    from modelport.validators.fairseq_tasks import MAX_DEFAULT_PAIRS, default_pairs

    ported = modelport.load(m2m[1])
    recorded = [("en", "de"), ("de", "fr"), ("fr", "en")] * (MAX_DEFAULT_PAIRS // 3 + 1)
    with pytest.raises(InvalidInputError, match="name what to validate with --source-lang and --target-lang"):
        default_pairs(ported, recorded)
    assert default_pairs(ported, [("de", "fr")]) == [("de", "fr")]


@pytest.mark.parametrize("fixture, pairs", [("fixture-m2m", ["en-de", "de-en"]), ("fixture-bart", None)])
def test_trained_fixtures_pass_with_references(fixture: str, pairs: list[str] | None, tmp_path) -> None:
    """The models trained by fairseq (scripts/make_m2m_trained_fixture.sh, make_bart_trained_fixture.sh):
    real stopping, every pair, BLEU against the references on 20 test lines."""
    root = Path(__file__).resolve().parents[2] / "assets" / fixture
    ported = tmp_path / "ported"
    modelport.convert(str(root), ported)
    for pair in pairs or [None]:
        src, tgt = pair.split("-") if pair else ("en", "de")
        data, refs = tmp_path / f"data.{src}", tmp_path / f"refs.{tgt}"
        data.write_text("\n".join((root / f"test.{src}").read_text(encoding="utf-8").splitlines()[:20]) + "\n",
                        encoding="utf-8")
        refs.write_text("\n".join((root / f"test.{tgt}").read_text(encoding="utf-8").splitlines()[:20]) + "\n",
                        encoding="utf-8")
        out = tmp_path / (pair or "report")
        languages = ["--source-lang", src, "--target-lang", tgt] if pair else []
        assert main(["validate", str(ported), "--reference", str(root), "--data", str(data), "--references",
                     str(refs), "--beam", str(BEAM), "--report", str(out), *languages]) == 0
        report = json.loads((out / "parity_report.json").read_text(encoding="utf-8"))
        section = report["pairs"][pair] if pair else report
        _assert_parity(section, 20)
        assert section["bleu"]["passed"] and section["bleu"]["modelport"] == section["bleu"]["reference"]


def test_fairseq_import_leaves_the_root_logger_alone(tmp_path) -> None:
    """fairseq's model registry runs logging.basicConfig(level=DEBUG) when imported; validate's output
    stays free of other libraries' DEBUG records (matplotlib's font search, ...)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2] / "assets" / "fixture-bart"
    modelport.convert(str(root), tmp_path / "ported")
    data = tmp_path / "data.txt"
    data.write_text("\n".join((root / "test.en").read_text(encoding="utf-8").splitlines()[:3]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "modelport.cli", "validate", str(tmp_path / "ported"), "--reference",
                           str(root), "--data", str(data), "--report", str(tmp_path / "report")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DEBUG" not in proc.stderr + proc.stdout
