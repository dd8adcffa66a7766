"""The pymarian adapter (modelport/validators/references/marian.py) on the
Marian fixtures: what it reads back from ``pymarian decode``/``score`` is
consistent with Marian's own printed numbers, and Marian's teacher-forced
scores equal the port's forward pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import modelport

pytest.importorskip("pymarian")

from modelport.validators.references.marian import (  # noqa: E402
    WORD_SCORE_PRECISION,
    MarianReference,
    printed_tolerance,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "marian"
N_LINES = 5


def _lines(name: str) -> list[str]:
    return (ROOT / "assets" / "corpus" / name).read_text(encoding="utf-8").splitlines()[:N_LINES]


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> dict[str, modelport.PortedModel]:
    out = tmp_path_factory.mktemp("marian_ref")
    return {name: modelport.convert(str(DATA / name), out / name) for name in ("post_tiedall_swish", "pre_tied_swish")}


def test_source_is_fed_as_pieces_for_yaml_vocabularies() -> None:
    ref = MarianReference(DATA / "post_tiedall_swish")
    assert ref.pre_encoded
    line = _lines("test.en")[0]
    fed = ref.source_text([line])[0]
    assert "▁" in fed and fed.split() == ref._source_spm.encode(line, out_type=str)


def test_decode_nbest_is_consistent_with_marians_own_numbers() -> None:
    """Per hypothesis: word scores (5 decimals) sum to F0 and the final score
    is (F0 - wp * L) / L ** normalize, L counting </s> when present."""
    ref = MarianReference(DATA / "post_tiedall_swish")
    beam, norm, wp = 4, 0.6, 0.3
    out = ref.decode(_lines("test.en"), beam_size=beam, normalize=norm, word_penalty=wp)
    assert [len(n) for n in out] == [beam] * N_LINES
    for nbest in out:
        assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
        for h in nbest:
            n = len(h.word_scores)
            assert n in (len(h.pieces), len(h.pieces) + 1)
            assert abs(sum(h.word_scores) - h.path_score) <= n * WORD_SCORE_PRECISION + printed_tolerance(h.path_score)
            expect = (h.path_score - wp * n) / n ** norm
            assert abs(expect - h.score) <= printed_tolerance(h.score) + 2 * printed_tolerance(h.path_score)
            assert h.text == ref.detokenize(h.pieces)


@pytest.mark.parametrize("name", ["post_tiedall_swish", "pre_tied_swish"])
def test_score_matches_the_ports_forward(name: str, ported) -> None:
    """``pymarian score --word-scores`` (Marian's full-sequence forward) vs
    the port's teacher-forced log-probs: within Marian's printed 5 decimals
    plus float noise, and well inside validate's 1e-4."""
    p = ported[name]
    ref = MarianReference(DATA / name)
    src, trg = _lines("test.en"), _lines("test.de")
    scores = ref.score(src, trg)
    model, cfg, tok = p.models[0], p.config, p.tokenizer
    worst = 0.0
    for s, t, (total, words) in zip(src, trg, scores):
        ids = tok.encode_target(t)
        assert len(ids) == len(words)
        prev = torch.tensor([[cfg.decoder_start_token_id] + ids[:-1]])
        with torch.no_grad():
            lp = model.log_probs(prev, model.encode(torch.tensor([tok.encode(s)])))[0]
        ours = lp.gather(-1, torch.tensor(ids)[:, None])[:, 0]
        worst = max(worst, (ours - torch.tensor(words)).abs().max().item())
        assert abs(sum(words) - total) <= len(words) * WORD_SCORE_PRECISION + 1e-6
    assert worst <= WORD_SCORE_PRECISION + 2e-5, worst
