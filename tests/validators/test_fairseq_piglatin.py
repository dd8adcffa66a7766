"""Issue #18's parity table on a trained fixture of the repo's own:
``assets/fixture-piglatin`` (``scripts/make_piglatin_model.sh``), a fairseq
transformer translating English into Pig Latin (``pg``, a language code
sacremoses has no rules for), saved in the ``cfg`` layout fairseq-train 0.12
writes, recording no tokenizer.

The reference is what a fairseq user runs: ``TransformerModel.from_pretrained
(dir, tokenizer='moses', bpe='fastbpe')`` (the languages come from the
checkpoint), ``hub.generate`` for tokens and scores and ``hub.decode`` /
``hub.translate`` for the text. modelport's ``translate`` must give the same
text, tokens and scores (within 1e-4) for every hypothesis on 200 test lines
(20 of them three sentences long), with each decoding option of the issue.
The same weights saved in the WMT19-era ``args`` layout get other Moses
languages from fairseq (``en``/``pg`` instead of ``en``/``en``): the port of
each layout must follow its own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import modelport
from modelport.generation.translate import make_batches

pytest.importorskip("fairseq")

from tests.helpers.paths import ROOT  # noqa: E402
from tests.helpers.fairseq_ref import save_args_layout  # noqa: E402

from modelport.validators.references.fairseq_hub import FairseqHubReference  # noqa: E402

FIXTURE = ROOT / "assets" / "fixture-piglatin"
TOL = 1e-4
N_LINES = 200
BATCH = 32  # a batch fairseq's hub keeps whole (its max_tokens is 4096), so both sides pad alike

# name -> decoding options (fairseq's names); "nbest" hypotheses of each line are compared
CASES: dict[str, dict[str, Any]] = {
    "greedy": {"beam": 1},
    "beam5": {"beam": 5},
    "beam4-lenpen0.6": {"beam": 4, "lenpen": 0.6},
    "beam5-maxlenb12": {"beam": 5, "max_len_b": 12},
    "beam5-minlen8": {"beam": 5, "min_len": 8},
    "beam5-ngram3": {"beam": 5, "no_repeat_ngram_size": 3},
    "nbest5-scores": {"beam": 5, "nbest": 5},
}
SLOW: set[str] = set()  # every case takes a few seconds on an idle machine (the export comparison stays slow)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    if not (FIXTURE / "model.pt").exists():
        pytest.fail("assets/fixture-piglatin is missing: run scripts/make_piglatin_model.sh")
    return (FIXTURE / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]


@pytest.fixture(scope="module")
def cfg_side(tmp_path_factory, lines) -> tuple[Any, Any]:
    """(port, fairseq hub) of the fixture as shipped (``cfg`` layout)."""
    ported = modelport.convert(str(FIXTURE), tmp_path_factory.mktemp("piglatin") / "ported")
    return ported, _hub(FIXTURE, ported)


@pytest.fixture(scope="module")
def args_side(tmp_path_factory, lines) -> tuple[Any, Any]:
    """(port, fairseq hub) of the same weights in the ``args`` layout."""
    folder = tmp_path_factory.mktemp("piglatin-args") / "src"
    folder.mkdir()
    for name in ("dict.en.txt", "dict.pg.txt", "bpecodes"):
        shutil.copy(FIXTURE / name, folder / name)
    save_args_layout(FIXTURE / "model.pt", folder / "model.pt")
    ported = modelport.convert(str(folder), folder.parent / "ported")
    return ported, _hub(folder, ported)


def _hub(folder: Path, ported: Any) -> Any:
    tok = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    return FairseqHubReference(folder, source_lang=tok["source_lang"], target_lang=tok["target_lang"],
                               from_pretrained_langs=tok["from_pretrained_langs"]).hub


def fairseq_translate(hub: Any, lines: list[str], opts: dict[str, Any], *,
                      use_translate: bool = False) -> list[list[dict[str, Any]]]:
    """fairseq's hub on the batches modelport's translate makes: per line, the
    n-best ``{"tokens", "score", "text"}``: ``hub.generate``, texts by
    ``hub.decode`` (what ``hub.translate`` runs), or with ``use_translate`` the
    1-best texts from a second pass through ``hub.translate`` itself."""
    opts = dict(opts)
    nbest, beam = opts.pop("nbest", 1), opts.pop("beam")
    srcs = [hub.encode(line) for line in lines]
    out: list[Any] = [None] * len(lines)
    for batch in make_batches([len(s) for s in srcs], BATCH):
        with torch.no_grad():
            hyps = hub.generate([srcs[i] for i in batch], beam=beam, **opts)
            texts = hub.translate([lines[i] for i in batch], beam=beam, **opts) if use_translate else None
        for k, (i, hs) in enumerate(zip(batch, hyps)):
            out[i] = [{"tokens": h["tokens"].tolist(), "score": float(h["score"]),
                       "text": texts[k] if texts is not None and r == 0 else hub.decode(h["tokens"])}
                      for r, h in enumerate(hs[:nbest])]
    return out


def differences(ours: list[list[dict[str, Any]]], theirs: list[list[dict[str, Any]]]) -> list[tuple]:
    """Every hypothesis whose text, tokens or score (beyond 1e-4) differ."""
    bad = []
    for i, (xs, ys) in enumerate(zip(ours, theirs)):
        if len(xs) != len(ys):
            bad.append((i, "count", len(xs), len(ys)))
        for rank, (x, y) in enumerate(zip(xs, ys)):
            if x["text"] != y["text"] or x["tokens"] != y["tokens"] or abs(x["score"] - y["score"]) > TOL:
                bad.append((i, rank, x["text"], y["text"], x["score"], y["score"]))
    return bad


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES])
def test_translate_equals_fairseq_hub(cfg_side, lines, case) -> None:
    ported, hub = cfg_side
    opts = CASES[case]
    ours = ported.translate(lines, batch_size=BATCH, **opts)
    theirs = fairseq_translate(hub, lines, opts)
    bad = differences(ours, theirs)
    total = N_LINES * opts.get("nbest", 1)
    assert sum(len(h) for h in ours) == total
    assert not bad, f"{len(bad)}/{total} hypotheses differ, first: {bad[0]}"
    if "min_len" in opts:
        assert min(len(h["tokens"]) for hyps in ours for h in hyps) >= opts["min_len"] + 1  # EOS included
    if "max_len_b" in opts:
        assert max(len(h["tokens"]) for hyps in ours for h in hyps) == opts["max_len_b"] + 1  # it cuts


def test_fixture_exercises_the_detokenizer_language(cfg_side, args_side, lines) -> None:
    """fairseq itself detokenizes the two layouts of the same weights
    differently (``etlay's`` vs ``etlay 's``), and each port follows its own."""
    (cfg_port, cfg_hub), (args_port, args_hub) = cfg_side, args_side
    assert (cfg_hub.tokenizer.cfg.source_lang, cfg_hub.tokenizer.cfg.target_lang) == ("en", "en")
    assert (args_hub.tokenizer.cfg.source_lang, args_hub.tokenizer.cfg.target_lang) == ("en", "pg")
    opts = {"beam": 5}
    cfg_ref = fairseq_translate(cfg_hub, lines, opts, use_translate=True)
    args_ref = fairseq_translate(args_hub, lines, opts, use_translate=True)
    assert [h[0]["tokens"] for h in cfg_ref] == [h[0]["tokens"] for h in args_ref]  # same weights
    apart = [i for i, (a, b) in enumerate(zip(cfg_ref, args_ref)) if a[0]["text"] != b[0]["text"]]
    assert len(apart) >= 10, apart
    assert any("'s" in cfg_ref[i][0]["text"] and " 's" in args_ref[i][0]["text"] for i in apart)
    bad = differences(args_port.translate(lines, batch_size=BATCH, **opts), args_ref)
    assert not bad, f"args layout: {len(bad)} hypotheses differ, first: {bad[0]}"
    bad = differences(cfg_port.translate(lines, batch_size=BATCH, **opts), cfg_ref)
    assert not bad, f"cfg layout: {len(bad)} hypotheses differ, first: {bad[0]}"


def test_validate_passes(cfg_side, lines, tmp_path, capfd) -> None:
    from modelport.cli import main

    data = tmp_path / "test.en"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["validate", str(cfg_side[0].path), "--reference", str(FIXTURE), "--data", str(data),
                 "--report", str(tmp_path), "--json"])
    captured = capfd.readouterr()
    assert code == 0, captured.err[-3000:]
    report = json.loads(captured.out)
    hub = report["tokenizer"]["references"]["fairseq_hub"]
    assert hub["moses_langs"] == ["en", "en"] and hub["outputs_decoded_equal"] == hub["outputs"] == N_LINES


def test_validate_fails_on_the_wrong_detokenizer_language(cfg_side, lines, tmp_path) -> None:
    """A port that detokenizes with the task's target language (what modelport
    recorded before) decodes its own outputs unlike fairseq: the tokenizer
    check fails on them, while the reference text alone would not show it."""
    from modelport.validators.tokenizer import validate_tokenizer

    wrong = tmp_path / "wrong"
    shutil.copytree(cfg_side[0].path, wrong)
    path = wrong / "tokenizer" / "tokenizer_config.json"
    tok = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**tok, "moses_target_lang": "pg"}), encoding="utf-8")
    report = validate_tokenizer(wrong, FIXTURE, lines, references=("fairseq_hub",))["tokenizer"]
    hub = report["references"]["fairseq_hub"]
    assert not report["passed"] and hub["ids_equal"] == N_LINES
    assert hub["outputs_decoded_equal"] < N_LINES - 10
    first = next(m for m in hub["mismatches"] if m["kind"] == "outputs_decoded")
    assert " 's" in first["modelport"] or " '" in first["modelport"]


@pytest.mark.slow
def test_export_hf_generate_equals_the_ports_hf_search(cfg_side, lines, tmp_path) -> None:
    """Issue #18 item 5: ``AutoModelForSeq2SeqLM.generate`` (beam 5) and
    ``AutoTokenizer`` on ``export hf`` of the fixture give the port's ids and
    strings (``translate --semantics hf --beam 5``) on every test line."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from modelport.exporters.hf import export_hf

    ported = cfg_side[0]
    export_hf(ported.path, tmp_path / "hf", card=False)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "hf")).eval()
    assert tok.src_lang == tok.tgt_lang == "en"  # fairseq's hub Moses languages for this checkpoint
    assert [tok(line)["input_ids"] for line in lines] == [ported.tokenizer.encode(line) for line in lines]
    ours = ported.translate(lines, semantics="hf", beam=5, batch_size=BATCH)
    eos = ported.config.eos_token_id
    texts: list[Any] = [None] * len(lines)
    ids: list[Any] = [None] * len(lines)
    for batch in make_batches([len(ported.tokenizer.encode(line)) for line in lines], BATCH):  # translate's
        enc = tok([lines[i] for i in batch], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**enc, num_beams=5).tolist()
        for i, text, row in zip(batch, tok.batch_decode(out, skip_special_tokens=True), out):
            texts[i], ids[i] = text, row[1:row.index(eos, 1) + 1] if eos in row[1:] else row[1:]
    same_ids = sum(h[0]["tokens"] == t for h, t in zip(ours, ids))
    same_text = sum(h[0]["text"] == t for h, t in zip(ours, texts))
    assert (same_ids, same_text) == (N_LINES, N_LINES)
