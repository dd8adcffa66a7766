"""``modelport validate`` with the options a user decodes with:
``--no-repeat-ngram-size``, ``--min-len``, ``--nbest`` (every hypothesis of
every n-best list compared: tokens identical, scores within 1e-4), on the
embedded trained model against fairseq, through the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import CORPUS
from modelport.cli import main

pytest.importorskip("fairseq")

N_LINES = 30
FLAGS = ["--beam", "5", "--nbest", "5", "--no-repeat-ngram-size", "3", "--min-len", "6"]


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("valopts") / "in.en"
    path.write_text("\n".join((CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]) + "\n")
    return path


def _spy(monkeypatch) -> dict[str, list[Any]]:
    """Record the options and outputs each side's search gets and gives."""
    import modelport.validators.run as run
    from modelport.validators.references.fairseq_generator import FairseqReference

    seen: dict[str, list[Any]] = {"port": [], "reference": []}
    port_generate, ref_generate = run.generate, FairseqReference.generate

    def port(models, src, **opts):
        out = port_generate(models, src, **opts)
        seen["port"].append((dict(opts), out))
        return out

    def reference(self, src, **opts):
        out = ref_generate(self, src, **dict(opts))
        seen["reference"].append((dict(opts), out))
        return out

    monkeypatch.setattr(run, "generate", port)
    monkeypatch.setattr(FairseqReference, "generate", reference)
    return seen


def test_validate_with_ngram_min_len_nbest_passes(ported_default, default_model_dir, lines, tmp_path, capfd,
                                                  monkeypatch) -> None:
    seen = _spy(monkeypatch)
    code = main(["validate", str(ported_default.path), "--reference", str(default_model_dir), "--data", str(lines),
                 "--only", "beam", "--report", str(tmp_path), "--json", *FLAGS])
    captured = capfd.readouterr()
    assert code == 0, captured.err[-2000:]
    report = json.loads(captured.out)
    beam = report["beam"]
    assert beam["passed"] and beam["identical"], beam["mismatches"][:2]
    assert beam["hypotheses"] == 5 * N_LINES  # every hypothesis of every n-best list
    assert beam["max_score_diff"] <= 1e-4
    opts = report["meta"]["options"]
    assert (opts["nbest"], opts["no_repeat_ngram_size"], opts["min_len"], opts["beam"]) == (5, 3, 6, 5)
    # both sides decoded with the options, and the options acted
    for side in ("port", "reference"):
        assert seen[side], side
        for got, out in seen[side]:
            assert (got["nbest"], got["no_repeat_ngram_size"], got["min_len"]) == (5, 3, 6), side
            assert all(len(hyps) == 5 and min(len(h["tokens"]) for h in hyps) >= 7 for hyps in out), side


def test_validate_fails_on_a_score_mismatch_past_the_first_hypothesis(ported_default, default_model_dir, lines,
                                                                      tmp_path, capfd, monkeypatch) -> None:
    """A port whose 5th hypothesis is scored 1e-3 off fails (exit 3): the
    whole n-best list is compared, not only the best."""
    import modelport.validators.run as run

    port_generate = run.generate

    def off(models, src, **opts):
        out = port_generate(models, src, **opts)
        out[0][4] = dataclasses.replace(out[0][4], score=out[0][4].score + 1e-3)  # hypotheses are frozen
        return out

    monkeypatch.setattr(run, "generate", off)
    code = main(["validate", str(ported_default.path), "--reference", str(default_model_dir), "--data", str(lines),
                 "--only", "beam", "--report", str(tmp_path), "--json", *FLAGS])
    captured = capfd.readouterr()
    assert code == 3, captured.err[-2000:]
    report = json.loads((tmp_path / "parity_report.json").read_text())
    assert report["beam"]["score_mismatches"] >= 1
    assert {m["rank"] for m in report["beam"]["mismatches"]} == {4}
