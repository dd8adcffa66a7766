"""Reports worth reading: sacreBLEU's signature next to BLEU/chrF, beam
mismatches as decoded text (port vs reference) beside the ids, and the
per-sentence score-difference histogram (parity_scores.png) linked from
parity_report.md."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from modelport.reports.parity import BleuSection, ParityMeta, ParityReport, Scores
from modelport.reports.base import Signatures
from modelport.reports.plots import score_histogram
from modelport.validators.beam import compare_hypotheses
from tests.helpers.paths import CORPUS, DEFAULT_MODEL
from tests.helpers.requires import requires

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WORDS = {4: "the", 5: "cat", 6: "dog", 7: "sleeps"}


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > 1000


def test_beam_mismatch_shows_both_outputs_as_text() -> None:
    ours = [[{"tokens": [4, 5, 7, 2], "score": -1.0, "positional_scores": [-0.2, -0.3, -0.4, -0.1]}]]
    ref = [[{"tokens": [4, 6, 7, 2], "score": -1.1, "positional_scores": [-0.2, -0.4, -0.4, -0.1]}]]

    def scorer(src, prefix):
        lp = torch.full((10,), -9.0)
        lp[5], lp[6] = -0.3, -0.4
        return lp

    beam = compare_hypotheses([[8, 2]], ours, ref, start=2, score_ours=scorer, score_ref=scorer,
                              decode=lambda ids: " ".join(WORDS[t] for t in ids if t in WORDS))
    mismatch = beam.mismatches[0]
    assert mismatch["text_modelport"] == "the cat sleeps" and mismatch["text_reference"] == "the dog sleeps"
    assert mismatch["tokens_modelport"] == [4, 5, 7, 2]  # the ids stay
    md = ParityReport.of(ParityMeta(ported_dir="p", reference="r"), beam=beam).to_markdown()
    assert "text_modelport: the cat sleeps" in md and "text_reference: the dog sleeps" in md


def test_signature_and_figures_round_trip_and_render(tmp_path: Path) -> None:
    signature = Signatures(bleu="nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
                           chrf="nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0")
    bleu = BleuSection(modelport=Scores(bleu=30.0, chrf=50.0), reference=Scores(bleu=30.0, chrf=50.0),
                       signature=signature)
    report = ParityReport.of(ParityMeta(ported_dir="p", reference="r", lines=3), bleu=bleu,
                             figures={"per-sentence score differences": "parity_scores.png"})
    again = ParityReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again == report
    md = report.to_markdown()
    assert "![per-sentence score differences](parity_scores.png)" in md
    assert "nrefs:1\\|case:mixed\\|eff:no\\|tok:13a" in md  # escaped in its table cell
    assert "sacreBLEU nrefs:1|case:mixed" in bleu.summary_line()
    assert any("sacreBLEU signature: BLEU `nrefs:1|" in line for line in report.card_lines())
    # a report written before signatures and figures were recorded reads back unchanged
    old = {k: v for k, v in report.to_json().items() if k != "figures"}
    del old["bleu"]["signature"]
    assert ParityReport.from_json(old).to_json() == old


def test_score_histogram_is_a_png(tmp_path: Path) -> None:
    path = score_histogram([1e-7, -2e-7, 0.0, 3e-8], tmp_path / "h.png")
    assert _is_png(path)
    assert _is_png(score_histogram([], tmp_path / "empty.png"))  # nothing compared: an empty histogram


@requires("fairseq")
def test_validate_writes_the_histogram_next_to_the_report(ported_default, tmp_path: Path) -> None:
    from tests.helpers.cli import main

    src, refs = tmp_path / "in.en", tmp_path / "ref.de"
    src.write_text("\n".join((CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:6]) + "\n")
    refs.write_text("\n".join((CORPUS / "test.de").read_text(encoding="utf-8").splitlines()[:6]) + "\n")
    report_dir = tmp_path / "report"
    assert main(["validate", str(ported_default.path), "--reference", str(DEFAULT_MODEL), "--data", str(src),
                 "--references", str(refs), "--report", str(report_dir)]) == 0
    assert _is_png(report_dir / "parity_scores.png")
    md = (report_dir / "parity_report.md").read_text(encoding="utf-8")
    assert "](parity_scores.png)" in md
    saved = json.loads((report_dir / "parity_report.json").read_text(encoding="utf-8"))
    assert saved["figures"] == {"per-sentence score differences": "parity_scores.png"}
    assert saved["bleu"]["signature"]["bleu"].startswith("nrefs:1|") and "version:" in md
