"""Beam search with fairseq semantics against fairseq's own SequenceGenerator.

Golden parity as a data table of cases: every case decodes the same batches
with fairseq (the real SequenceGenerator on fairseq's own models) and with
modelport, and asserts identical token sequences and scores within 1e-4.
Fixtures: the embedded trained model, the pre-norm/joined-dictionary/learned-
position trained fixture, and a random tiny model made peaky (always there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import modelport
from modelport.generation import generate

pytest.importorskip("fairseq")

from tests.helpers.paths import CORPUS, DEFAULT_MODEL, PRENORM_MODEL  # noqa: E402
from tests.helpers.fairseq_ref import build_fairseq_model  # noqa: E402

from modelport.model import layers  # noqa: E402
from modelport.validators.references.fairseq_generator import FairseqReference  # noqa: E402

TOL = 1e-4
N_LINES = 16

# name -> decoding options (fairseq-generate names)
CASES = {
    "beam5": {"beam": 5},
    "beam1": {"beam": 1},
    "beam4-lenpen0.6-nbest3": {"beam": 4, "lenpen": 0.6, "nbest": 3},
    "beam5-lenpen1.2-nbest3": {"beam": 5, "lenpen": 1.2, "nbest": 3},
    "min-len": {"beam": 4, "min_len": 6},
    "max-len-cuts": {"beam": 4, "max_len_a": 0, "max_len_b": 4, "nbest": 3},
    "unk-penalty": {"beam": 4, "unkpen": -3.0},
    "no-repeat-ngram": {"beam": 4, "no_repeat_ngram_size": 2},
}


def _peaky(directory: Path, seed: int, scale: float = 4.0) -> None:
    """Scale a random model's embeddings so its distributions are peaky (few near-ties)."""
    ckpt = torch.load(directory / "model.pt", weights_only=False)
    for key in ckpt["model"]:
        if "embed_tokens" in key or "output_projection" in key:
            ckpt["model"][key] = ckpt["model"][key] * scale
    torch.save(ckpt, directory / "model.pt")


def _sources(ported: modelport.PortedModel, trained: bool, n: int = N_LINES) -> list[list[int]]:
    if trained:
        lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:n]
        return [ported.tokenizer.encode(line) for line in lines]
    g = torch.Generator().manual_seed(7)
    lengths = torch.randint(2, 14, (n,), generator=g).tolist()
    return [torch.randint(4, ported.config.source_vocab_size, (k,), generator=g).tolist() + [2] for k in lengths]


@pytest.fixture(scope="module", params=["random", "default", "prenorm"])
def setup(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"gen-{request.param}")
    if request.param == "random":
        src_dir = tmp / "fairseq"
        build_fairseq_model(src_dir, seed=3, max_target_positions=12)
        _peaky(src_dir, 3)
    else:
        src_dir = DEFAULT_MODEL if request.param == "default" else PRENORM_MODEL
        if not (src_dir / "model.pt").exists():
            pytest.skip(f"trained fixture {src_dir.name} not built yet")
    # the trained fixtures do not record their languages (fairseq took them from
    # the binarized data's file names); the pre-norm one has a joined dictionary,
    # so only the user can say which way it translates
    ported = modelport.convert(str(src_dir), tmp / "ported", source_lang="en", target_lang="de")
    tok = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text())
    ref = FairseqReference(str(src_dir), tok["source_lang"], tok["target_lang"])
    return src_dir, ported, ref, _sources(ported, request.param != "random")


def _assert_same(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for i, (xs, ys) in enumerate(zip(ours, theirs)):
        assert len(xs) == len(ys), f"line {i}: {len(xs)} vs {len(ys)} hypotheses"
        for x, y in zip(xs, ys):
            assert x["tokens"] == y["tokens"], f"line {i}"
            assert abs(x["score"] - y["score"]) <= TOL
            assert max(abs(p - q) for p, q in zip(x["positional_scores"], y["positional_scores"])) <= TOL


def _run(ported, ref, srcs, batch_size, **opts):
    ours, theirs = [], []
    for k in range(0, len(srcs), batch_size):
        batch = srcs[k: k + batch_size]
        theirs += ref.generate(batch, **dict(opts))
        ours += generate(ported.models, batch, semantics="fairseq", **opts)
    return ours, theirs


@pytest.mark.parametrize("case", list(CASES))
def test_beam_matches_fairseq(setup, case) -> None:
    _, ported, ref, srcs = setup
    opts = dict(CASES[case])
    ours, theirs = _run(ported, ref, srcs, 16, **opts)
    _assert_same(ours, theirs)
    assert any(len(h[0]["tokens"]) > 1 for h in ours)


@pytest.mark.parametrize("case", ["beam5", "beam4-lenpen0.6-nbest3", "max-len-cuts"])
def test_beam_matches_fairseq_with_attention_as_products(setup, case, monkeypatch) -> None:
    """Every decoding step's attention as matrix products, each sentence's
    cross-attention keys kept once for its beam (what models from d_model ~512
    get, see ``layers.attend``): still fairseq's outputs, sentences leaving the
    batch as they finish."""
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", 0)
    monkeypatch.setattr(layers, "WHOLE_PRODUCTS_MIN", 0)  # the encoder's attention as products too
    _, ported, ref, srcs = setup
    ours, theirs = _run(ported, ref, srcs, 16, **CASES[case])
    _assert_same(ours, theirs)


GROUPED_CASES = {**{k: CASES[k] for k in ("beam5", "min-len", "max-len-cuts")},
                 "width-caps": {"beam": 4, "max_len_a": 1.0, "max_len_b": 1, "nbest": 3}}


@pytest.mark.parametrize("case", list(GROUPED_CASES))
def test_batches_decoded_together_keep_their_own_caps(setup, case) -> None:
    """``batch_widths`` (translate decodes consecutive batches in one search):
    fairseq decoding 4-line batches one by one, the port all 16 lines at once,
    each line capped by its own batch's width (``width-caps``: a cap of
    width + 1, which the shorter batches' lines reach)."""
    _, ported, ref, srcs = setup
    opts = GROUPED_CASES[case]
    batches = [srcs[k: k + 4] for k in range(0, len(srcs), 4)]
    theirs = [h for batch in batches for h in ref.generate(batch, **dict(opts))]
    widths = tuple(max(map(len, batch)) for batch in batches for _ in batch)
    ours = generate(ported.models, srcs, semantics="fairseq", batch_widths=widths, **opts)
    _assert_same(ours, theirs)


def test_grouped_caps_with_a_forced_prefix(setup) -> None:
    """A forced prefix longer than some lines' caps (1 or 2 tokens here): rows at
    their cap emit </s> while the others still take the prefix, as each batch
    decoded alone does (the path fairseq's own tests above check)."""
    _, ported, _, srcs = setup
    short = sorted(srcs, key=len)
    batches = [short[:3], short[-3:]]  # widths apart, so their caps differ
    opts = dict(semantics="fairseq", beam=3, nbest=3, max_len_a=0.2, max_len_b=0, prefix_tokens=(7, 8, 9))
    caps = {int(0.2 * max(map(len, b))) for b in batches}
    assert len(caps) == 2 and min(caps) < 3, caps
    alone = [h for b in batches for h in generate(ported.models, b, **opts)]
    widths = tuple(max(map(len, b)) for b in batches for _ in b)
    together = generate(ported.models, [x for b in batches for x in b], batch_widths=list(widths), **opts)
    assert [[h["tokens"] for h in hyps] for hyps in together] == [[h["tokens"] for h in hyps] for hyps in alone]
    for got, want in zip(together, alone):
        assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=TOL)


def test_batch_size_one(setup) -> None:
    """Each sentence alone: fairseq's max_len uses the padded width, so this differs from batch 16."""
    _, ported, ref, srcs = setup
    ours, theirs = _run(ported, ref, srcs[:4], 1, beam=5, max_len_a=1.0, max_len_b=2)
    _assert_same(ours, theirs)


def test_intended_ngram_blocking_matches_fairseq_blocker(setup, monkeypatch) -> None:
    """``ngram_blocking="intended"`` equals fairseq's own blocker given the
    written part of its token buffer (what 0.10 and the CUDA kernel do)."""
    from fairseq.ngram_repeat_block import NGramRepeatBlock

    original = NGramRepeatBlock._no_repeat_ngram

    def fixed(self, tokens, lprobs, bsz, beam_size, step):
        return original(self, tokens[:, : step + 1], lprobs, bsz, beam_size, step)

    monkeypatch.setattr(NGramRepeatBlock, "_no_repeat_ngram", fixed)
    src_dir, ported, ref, srcs = setup
    ours, theirs = _run(ported, ref, srcs, 16, beam=4, no_repeat_ngram_size=2, ngram_blocking="intended")
    _assert_same(ours, theirs)
    if src_dir.name == "fairseq":  # the random model repeats itself; the trained ones rarely do
        plain = generate(ported.models, srcs, beam=4, no_repeat_ngram_size=2)  # default: fairseq 0.12's CPU rule
        assert [h[0]["tokens"] for h in plain] != [h[0]["tokens"] for h in ours]  # the option bites


def test_two_member_ensemble(setup, tmp_path) -> None:
    src_dir, _, _, srcs = setup
    ens_dir = tmp_path / "ens"
    ens_dir.mkdir()
    for f in src_dir.iterdir():
        if f.name.startswith("dict") or f.name == "bpecodes":
            shutil.copy(f, ens_dir / f.name)
    ckpt = torch.load(src_dir / "model.pt", weights_only=False)
    torch.save(ckpt, ens_dir / "a.pt")
    g = torch.Generator().manual_seed(1)
    noisy: dict[int, torch.Tensor] = {}  # one perturbation per storage, so tied weights stay tied
    for k, v in ckpt["model"].items():
        if v.is_floating_point() and v.numel() > 1 and v.data_ptr() not in noisy:
            noisy[v.data_ptr()] = v + 0.05 * v.std() * torch.randn(v.shape, generator=g)
    ckpt["model"] = {k: noisy.get(v.data_ptr(), v) for k, v in ckpt["model"].items()}
    torch.save(ckpt, ens_dir / "b.pt")
    ported = modelport.convert(str(ens_dir), tmp_path / "ported", checkpoint="a.pt:b.pt", source_lang="en",
                               target_lang="de")
    assert len(ported.models) == 2
    tok = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text())
    ref = FairseqReference(f"{ens_dir / 'a.pt'}:{ens_dir / 'b.pt'}", tok["source_lang"], tok["target_lang"])
    assert len(ref.models) == 2
    ours, theirs = _run(ported, ref, srcs, 16, beam=4, nbest=2)
    _assert_same(ours, theirs)
