"""`modelport export ct2`: a CTranslate2 model directory written through
ctranslate2.specs, run with ctranslate2.Translator and compared with the port
(greedy identical for fairseq post-/pre-norm, Marian and T5 ports); what
CTranslate2 cannot represent is refused in one line, a mismatch exits 3 and
leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.cli import main
from modelport.generation import generate

pytest.importorskip("ctranslate2")

from tests.helpers.cli import one_line_error  # noqa: E402
from tests.helpers.paths import CORPUS, DATA, PRENORM_MODEL  # noqa: E402
from tests.helpers.requires import requires  # noqa: E402

from modelport.exporters import ct2 as ct2_exporter  # noqa: E402
from modelport.reports.export import ExportReport  # noqa: E402

MARIAN = DATA / "marian"


def _corpus(n: int) -> list[str]:
    return (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:n]


def _data(tmp_path: Path, n: int) -> str:
    path = tmp_path / "data.txt"
    path.write_text("\n".join(_corpus(n)) + "\n", encoding="utf-8")
    return str(path)


def _export(ported_dir: Path, out: Path, *extra: str) -> dict:
    assert main(["export", "ct2", str(ported_dir), str(out), *extra]) == 0
    return json.loads((out / "export_report.json").read_text())


def _ct2_greedy(out: Path, ported, lines: list[str], max_new: int = 24) -> tuple[list[list[int]], list[list[int]]]:
    """Greedy outputs of ctranslate2.Translator on the written directory (its
    own vocabulary files mapping tokens) and of the port, as target ids."""
    import ctranslate2

    vocab_file = out / "shared_vocabulary.json"
    if vocab_file.exists():
        src_vocab = tgt_vocab = json.loads(vocab_file.read_text())
    else:
        src_vocab = json.loads((out / "source_vocabulary.json").read_text())
        tgt_vocab = json.loads((out / "target_vocabulary.json").read_text())
    ids = [ported.tokenizer.encode(line) for line in lines]
    sources = [[src_vocab[i] for i in s[:-1]] for s in ids]  # CTranslate2 appends </s> (add_source_eos)
    results = ctranslate2.Translator(str(out)).translate_batch(
        sources, beam_size=1, max_decoding_length=max_new, min_decoding_length=0, return_end_token=True)
    index = {t: i for i, t in enumerate(tgt_vocab)}
    theirs = [[index[t] for t in r.hypotheses[0]] for r in results]
    ours = [h[0]["tokens"] for h in generate(ported.model, ids, greedy=True, max_new_tokens=max_new, pad_left=False)]
    return ours, theirs


# ---------------------------------------------------------------------------
# fairseq: the embedded post-norm model and the pre-norm fixture


@pytest.fixture(scope="module")
def ct2_default(ported_default, tmp_path_factory):
    out = tmp_path_factory.mktemp("ct2") / "out"
    assert main(["export", "ct2", str(ported_default.path), str(out)]) == 0
    return out, json.loads((out / "export_report.json").read_text())


def test_fairseq_export_verifies_greedy_and_beam(ct2_default, ported_default) -> None:
    out, report = ct2_default
    assert report["target"] == "ct2" and report["source_format"] == "fairseq" and report["spec"] == "TransformerSpec"
    assert {"model.bin", "config.json", "source_vocabulary.json", "target_vocabulary.json", "tokenizer"} <= \
        {p.name for p in out.iterdir()}
    check = report["verification"]
    assert check["passed"] and check["exact"] and check["lines"] == 20
    assert check["greedy"]["identical"] == 20
    assert check["beam"]["rules_coincide"] and check["beam"]["identical"] == 20
    config = json.loads((out / "config.json").read_text())
    assert config["add_source_eos"] and config["decoder_start_token"] == "</s>"
    # the directory computes the port's greedy outputs, read here with CTranslate2's own vocabulary files
    ours, theirs = _ct2_greedy(out, ported_default, _corpus(4))
    assert theirs == ours and all(len(t) > 1 for t in theirs)


def test_report_reads_back_and_prints(ct2_default) -> None:
    out, data = ct2_default
    report = ExportReport.from_json(data)
    assert report.to_json() == data and report.passed is True
    lines = report.summary_lines(out)
    assert any(line.startswith("greedy:") and "20/20 identical" in line for line in lines)
    assert "Export report (ct2)" in report.to_markdown()


def test_prenorm_fixture_exports(tmp_path) -> None:
    ported = modelport.convert(str(PRENORM_MODEL), tmp_path / "ported", source_lang="en", target_lang="de")
    assert ported.config.pre_norm and ported.config.final_norm
    report = ct2_exporter.export_ct2(ported.path, tmp_path / "out")
    check = report.verification
    assert check is not None and check.passed and check.greedy.identical == 20 == check.lines
    assert check.beam.rules_coincide


def test_existing_output_needs_force(ct2_default, ported_default, capsys) -> None:
    out, _ = ct2_default
    line = one_line_error(["export", "ct2", str(ported_default.path), str(out)], capsys)
    assert "already exists" in line and "--force" in line


def test_mismatch_exits_3_and_writes_nothing(ported_default, tmp_path, capsys, monkeypatch) -> None:
    """A weight changed between the port and the written model (here: the
    output projection, once the spec is built) fails the greedy check."""
    build = ct2_exporter.build_spec

    def perturbed(*args, **kwargs):
        spec = build(*args, **kwargs)
        weight = spec.decoder.projection.weight
        spec.decoder.projection.weight = weight + np.random.default_rng(0).normal(0, 1.0, weight.shape).astype(
            np.float32)
        return spec

    monkeypatch.setattr(ct2_exporter, "build_spec", perturbed)
    out = tmp_path / "out"
    line = one_line_error(["export", "ct2", str(ported_default.path), str(out), "--data", _data(tmp_path, 5)],
                          capsys, code=3)
    assert "greedy outputs differ" in line and "nothing was written" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_empty_lines_are_left_out_and_counted(ported_default, tmp_path, capsys) -> None:
    """CTranslate2 gives an empty source an empty output without decoding, where the port (as fairseq)
    decodes the lone </s>: an empty --data line failed the export with exit 3."""
    data = tmp_path / "gaps.txt"
    lines = _corpus(3)
    data.write_text(f"{lines[0]}\n\n{lines[1]}\n \n{lines[2]}\n", encoding="utf-8")
    report = _export(ported_default.path, tmp_path / "out", "--data", str(data))
    check = report["verification"]
    assert check["passed"] and check["lines"] == 3 and check["empty_lines"] == 2
    assert check["greedy"]["identical"] == 3
    assert "left out:      2 empty line(s)" in capsys.readouterr().out
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    line = one_line_error(["export", "ct2", str(ported_default.path), str(tmp_path / "out2"), "--data", str(blank)],
                          capsys)
    assert "only empty lines" in line


def test_int8_reports_agreement(ported_default, tmp_path) -> None:
    report = _export(ported_default.path, tmp_path / "out", "--quantization", "int8", "--data", _data(tmp_path, 5))
    check = report["verification"]
    assert report["quantization"] == "int8" and check["passed"] and not check["exact"]
    assert check["compute_type"].startswith("int8") and 1 <= check["greedy"]["identical"] <= 5
    # int8 agreement measured on the trained model (2/5 here, 15/20 on 20 lines): quantizing the spec must not
    # touch the port it is compared with (CTranslate2 scales the arrays in place), which made it 0


# ---------------------------------------------------------------------------
# Marian (zero start embedding, sinusoids of Marian's layout) and T5 (relative bias, RMS norm, output scale)


def test_ctranslate2_log_lines_only_with_verbose(ported_default, tmp_path) -> None:
    """Loading a float16 export on a CPU logs a C++ warning straight to stderr (below Python's capture):
    a note for its developers, shown with --verbose as the other libraries' are."""
    import subprocess
    import sys

    def stderr(*extra: str) -> str:
        argv = [sys.executable, "-m", "modelport.cli", "export", "ct2", str(ported_default.path),
                str(tmp_path / "f16"), "--quantization", "float16", "--force", *extra]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "[ctranslate2]" not in stderr()
    assert "[ctranslate2]" in stderr("--verbose")


def test_marian_exports(tmp_path) -> None:
    ported = modelport.convert(str(MARIAN / "post_tiedall_swish"), tmp_path / "ported")
    assert ported.config.decoder_start_zero_embedding
    report = _export(ported.path, tmp_path / "out", "--data", _data(tmp_path, 5))
    check = report["verification"]
    assert check["passed"] and check["greedy"]["identical"] == 5
    assert not check["beam"]["rules_coincide"] and "shrinks the beam" in check["beam"]["rule_difference"]
    ours, theirs = _ct2_greedy(tmp_path / "out", ported, _corpus(3))
    assert theirs == ours


def test_marian_shortlist_and_alignment_are_named_as_not_carried(tmp_path) -> None:
    """A folder recording decoder.yml's shortlist and alignment exports; the report says neither is carried."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "marian"
    shutil.copytree(root / "tests" / "data" / "marian-trained" / "post_sep_tied", src)
    shutil.copyfile(root / "tests" / "data" / "marian-shortlist" / "post_sep_tied.lex.s2t", src / "lex.s2t")
    with open(src / "decoder.yml", "a", encoding="utf-8") as f:
        f.write("shortlist:\n- lex.s2t\n- 0\n- 3\n- 0.1\nalignment: hard\n")
    ported = modelport.convert(str(src), tmp_path / "ported")
    notes = _export(ported.path, tmp_path / "out", "--data", _data(tmp_path, 3))["known_differences"]
    assert any("lexical shortlist" in n and "not carried" in n for n in notes)
    assert any("word alignments" in n and "not exported" in n for n in notes)


@requires("transformers")
def test_t5_exports(tmp_path) -> None:
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "hf", "v1.0")  # tied output scaled by d_model ** -0.5, 3 decoder vs 2 encoder layers
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "ported")
    report = _export(ported.path, tmp_path / "out", "--data", _data(tmp_path, 5))
    check = report["verification"]
    assert report["vocabulary"] == ["shared_vocabulary.json"]
    assert check["passed"] and check["greedy"]["identical"] == 5
    assert check["beam"]["rules_coincide"] and check["beam"]["identical"] == 5
    ours, theirs = _ct2_greedy(tmp_path / "out", ported, ["translate English to German: that is good", "hello"])
    assert theirs == ours


# ---------------------------------------------------------------------------
# refusals


def test_ssru_decoder_is_refused(tmp_path, capsys) -> None:
    ported = modelport.convert(str(MARIAN / "post_ssru_relu"), tmp_path / "ported")
    line = one_line_error(["export", "ct2", str(ported.path), str(tmp_path / "out")], capsys)
    assert "SSRU" in line and "cannot be exported to CTranslate2" in line
    assert not (tmp_path / "out").exists()


def test_ensemble_is_refused(ported_ensemble, tmp_path, capsys) -> None:
    line = one_line_error(["export", "ct2", str(ported_ensemble.path), str(tmp_path / "out")], capsys)
    assert "ensemble of 2" in line


def test_options_of_other_targets_are_refused(ported_default, tmp_path, capsys) -> None:
    line = one_line_error(["export", "hf", str(ported_default.path), str(tmp_path / "o"), "--quantization", "int8"],
                          capsys)
    assert "--quantization does not apply to `export hf`" in line


# ---------------------------------------------------------------------------
# special tokens: a multilingual port's languages, BART's <s>


def _ct2_as_reported(out: Path, ported, lines: list[str], report: dict) -> list[str]:
    """CTranslate2 run on ``out`` as the report says to call it (its source and target prefixes), greedy,
    decoded with the port's tokenizer: what a user of the export gets."""
    import ctranslate2

    check = report["verification"]
    vocab = json.loads((out / "shared_vocabulary.json").read_text())
    sources = [check["source_prefix"] + [vocab[i] for i in ported.tokenizer.encode(line)[:-1]] for line in lines]
    prefix = [check["target_prefix"]] * len(lines) if check["target_prefix"] else None
    results = ctranslate2.Translator(str(out)).translate_batch(sources, beam_size=1, target_prefix=prefix,
                                                               max_decoding_length=60, min_decoding_length=1)
    index = {t: i for i, t in enumerate(vocab)}
    special = {ported.config.eos_token_id, ported.config.pad_token_id}
    return [ported.tokenizer.decode([index[t] for t in r.hypotheses[0][len(check["target_prefix"]):]
                                     if index[t] not in special]) for r in results]


@requires("fairseq", "sentencepiece")
@pytest.mark.parametrize("src,tgt", [("en", "de"), ("de", "en")])
def test_multilingual_export_is_verified_in_the_direction_given(ported_m2m, tmp_path, src, tgt) -> None:
    """A multilingual port's export was verified on sources without language tokens (the numerics, not a
    direction a user translates in); the sources now begin with the source language and CTranslate2 is
    given the target language as its target_prefix, as `translate` places them, and the report says so."""
    lines = _corpus(12) if src == "en" else (CORPUS / "test.de").read_text(encoding="utf-8").splitlines()[:12]
    data = tmp_path / "data.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    report = _export(ported_m2m.path, out, "--data", str(data), "--source-lang", src, "--target-lang", tgt)
    check = report["verification"]
    assert check["languages"] == {"source": src, "target": tgt}
    assert check["source_prefix"] == [f"__{src}__"] and check["target_prefix"] == [f"__{tgt}__"]
    assert check["greedy"]["identical"] == check["lines"] == 12 and check["beam"]["identical"] == 12
    ours = [h[0].text for h in ported_m2m.translate(lines, greedy=True, source_lang=src, target_lang=tgt,
                                                     max_new_tokens=60)]
    assert _ct2_as_reported(out, ported_m2m, lines, report) == ours


@requires("fairseq", "sentencepiece")
def test_multilingual_export_needs_the_direction(ported_m2m, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    line = one_line_error(["export", "ct2", str(ported_m2m.path), str(out)], capsys)
    assert "--source-lang" in line and not out.exists()
    line = one_line_error(["export", "ct2", str(ported_m2m.path), str(out), "--no-verify", "--source-lang", "en",
                           "--target-lang", "de"], capsys)
    assert "do not apply with --no-verify" in line and not out.exists()
    line = one_line_error(["export", "ct2", str(ported_m2m.path), str(out), "--source-lang", "xx",
                           "--target-lang", "de"], capsys)
    assert "`xx` is not a known source language" in line and not out.exists()
    assert main(["export", "ct2", str(ported_m2m.path), str(out), "--no-verify"]) == 0


@requires("fairseq", "sentencepiece")
def test_bart_export_is_verified_with_its_bos(tmp_path) -> None:
    """BART reads `<s>` before the source and starts its output with a forced `<s>` (fairseq's hub); the
    verification decoded without either. It now places them, and the report says how."""
    from tests.helpers.paths import ROOT

    ported = modelport.convert(str(ROOT / "assets" / "fixture-bart"), tmp_path / "ported")
    lines = _corpus(8)
    out = tmp_path / "out"
    report = _export(ported.path, out, "--data", _data(tmp_path, 8))
    check = report["verification"]
    assert check["source_prefix"] == ["<s>"] and check["target_prefix"] == ["<s>"] and "languages" not in check
    assert check["greedy"]["identical"] == 8
    ours = [h[0].text for h in ported.translate(lines, greedy=True, max_new_tokens=60)]
    assert _ct2_as_reported(out, ported, lines, report) == ours
