"""Beam search with Marian's semantics, and the hf semantics on Marian ports.

No Marian binary is installable here, so the ``marian`` profile is checked
three ways:

* against a plain transcription of marian-dev's ``BeamSearch::search`` and
  ``History`` (one sentence at a time, lists, the whole prefix re-run each
  step, no cache) on tiny random models: beam shrinking, batching, scores;
* against hand-checkable consequences of the rules (the search ignores
  ``normalize``/``word_penalty``, which only rank the finished hypotheses; the
  length cap uses the padded width; ``<unk>`` suppression; empty lines);
* against CTranslate2's ``translate_batch`` on the OPUS-MT fixtures, in the
  region where the two searches coincide. They differ in: CT2 keeps ``beam``
  hypotheses alive (2 x beam candidates, finished ones replaced) where Marian
  shrinks the beam; CT2 stops once the best candidate finishes (penalty 0)
  or ``beam`` hypotheses finished; ``disable_unk`` masks logits *before* the
  log-softmax (renormalised), Marian after. They coincide in greedy search,
  and in beam search as long as no hypothesis finished before the length cap
  (then both rank ``score / L ** alpha`` with the same ``L``).

transformers' ``MarianMTModel.generate`` is the reference for the ``hf``
profile on the same ports (numerics flags switched as in test_marian_parity).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

import modelport
from modelport.errors import InvalidInputError
from modelport.generation import generate
from modelport.model.config import Seq2SeqConfig
from modelport.model.transformer import Seq2SeqModel

from tests.converters.test_marian_parity import _ct2_translator, _hf_model, _variant  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "marian"
TOL = 1e-4
PAD, EOS, UNK = 1, 2, 3
SCALE = 3.0  # output weights scaled up: peaky distributions, few near-ties


# ---------------------------------------------------------------------------
# tiny random models and a transcription of Marian's search


def _tiny(seed: int, vocab: int = 12, eos_bias: float = 0.0, unk_bias: float = 0.0) -> Seq2SeqModel:
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig(encoder_layers=1, decoder_layers=2, d_model=16, encoder_heads=2, decoder_heads=2,
                        encoder_ffn_dim=32, decoder_ffn_dim=32, source_vocab_size=vocab, target_vocab_size=vocab,
                        tie_output_embeddings=False, final_logits_bias=True, decoder_start_token_id=PAD,
                        decoder_start_zero_embedding=True, max_source_positions=64, max_target_positions=64)
    model = Seq2SeqModel(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(SCALE)
        bias = model.final_logits_bias
        bias[0] = bias[PAD] = -math.inf  # as a Marian port: only real target pieces are produced
        bias[EOS] += eos_bias
        bias[UNK] += unk_bias
    return model


def _sources(n: int, vocab: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, vocab, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g).tolist() + [EOS]
            for _ in range(n)]


def _reference(models: list[Seq2SeqModel], src: list[int], width: int, *, beam: int, normalize: float = 0.0,
               word_penalty: float = 0.0, factor: float = 3.0, allow_unk: bool = False,
               weights: list[float] | None = None) -> list[tuple[list[int], float]]:
    """marian-dev ``BeamSearch::search`` + ``History::add``/``nBest`` for one
    sentence of a batch whose padded width is ``width``: every finished
    hypothesis ``(tokens, normalized score)``, best first."""
    weights = weights or [1.0] * len(models)
    encs = [m.encode(torch.tensor([src])) for m in models]
    start = models[0].cfg.decoder_start_token_id
    hyps: list[tuple[list[int], float]] = [([], 0.0)]
    size = beam  # Beam(beamSize_, Hypothesis::New()): the start beam has beam_size entries
    finished: list[tuple[list[int], float]] = []
    for t in range(10_000):
        cands = []
        for h, (toks, score) in enumerate(hyps):
            path = torch.tensor(score, dtype=torch.float32)
            for m, enc, w in zip(models, encs, weights):
                path = path + w * m.log_probs(torch.tensor([[start] + toks]), enc)[0, -1]
            if not allow_unk:
                path[UNK] = -math.inf
            cands += [(s, h, word) for word, s in enumerate(path.tolist())]
        cands.sort(key=lambda c: -c[0])
        if src == [EOS]:  # an empty line: forced to </s> with path score 0
            cands = [(0.0, 0, EOS)] * size
        new = [(hyps[h][0] + [word], s) for s, h, word in cands[:size] if s > -math.inf]
        last = t + 1 >= factor * width
        length = t + 1
        finished += [(toks, (s - word_penalty * length) / length ** normalize) for toks, s in new
                     if toks[-1] == EOS or last]
        hyps = [(toks, s) for toks, s in new if toks[-1] != EOS]
        size = len(hyps)
        if last or not size:
            break
    return sorted(finished, key=lambda x: -x[1])


def _check_against_reference(models: list[Seq2SeqModel], srcs: list[list[int]], *, beam: int,
                             factor: float = 3.0, **opts) -> set[int]:
    """Ours (one batch) against the transcription; returns the hypothesis lengths seen."""
    ours = generate(models, srcs, semantics="marian", beam_size=beam, n_best=True, max_length_factor=factor, **opts)
    width = max(len(s) for s in srcs)
    lengths: set[int] = set()
    for src, hyps in zip(srcs, ours):
        ref = _reference(models, src, width, beam=beam, factor=factor, **opts)[:beam]
        assert [h["tokens"] for h in hyps] == [toks for toks, _ in ref], src
        assert np.allclose([h["score"] for h in hyps], [s for _, s in ref], atol=TOL)
        lengths |= {len(h["tokens"]) for h in hyps}
    return lengths


@torch.no_grad()
@pytest.mark.parametrize("beam, opts", [
    (1, {}), (3, {}), (5, {"normalize": 0.6}), (4, {"normalize": 1.0, "word_penalty": 0.5}),
    (4, {"factor": 1.5, "allow_unk": True}),
])
def test_matches_transcription(beam: int, opts: dict) -> None:
    lengths = _check_against_reference([_tiny(0)], _sources(5, 12, seed=1) + [[EOS]], beam=beam,
                                       **opts)
    assert len(lengths) > 2  # hypotheses finish at varied steps: the beams really shrink


@torch.no_grad()
def test_ensemble_is_log_linear() -> None:
    models = [_tiny(0), _tiny(7)]
    srcs = _sources(3, 12, seed=2)
    _check_against_reference(models, srcs, beam=3, weights=[0.3, 0.9])
    with pytest.raises(InvalidInputError, match="one weight per model"):
        generate(models, srcs, semantics="marian", weights=[1.0])


# ---------------------------------------------------------------------------
# the rules, checked by hand


def _teacher_forced_sum(model: Seq2SeqModel, src: list[int], toks: list[int]) -> float:
    prev = torch.tensor([[model.cfg.decoder_start_token_id] + toks[:-1]])
    lp = model.log_probs(prev, model.encode(torch.tensor([src])))[0]
    return float(lp.gather(-1, torch.tensor(toks)[:, None]).sum())


@torch.no_grad()
def test_penalties_only_rank_finished_hypotheses() -> None:
    """normalize and word_penalty leave the search alone: the same hypotheses
    finish, ranked by (sum of log-probs - wp * L) / L ** alpha, L counting </s>."""
    model = _tiny(3)
    srcs = _sources(4, 12, seed=3)
    sets = {}
    for alpha, wp in [(0.0, 0.0), (1.0, 0.0), (0.0, 3.0), (0.0, -3.0), (0.6, 0.4)]:
        out = generate(model, srcs, semantics="marian", beam_size=4, n_best=True, normalize=alpha, word_penalty=wp)
        for src, hyps in zip(srcs, out):
            for h in hyps:
                n = len(h["tokens"])
                path = _teacher_forced_sum(model, src, h["tokens"])
                assert abs(h["score"] - (path - wp * n) / n ** alpha) <= TOL
            assert [h["score"] for h in hyps] == sorted((h["score"] for h in hyps), reverse=True)
        sets[(alpha, wp)] = [sorted(map(tuple, (h["tokens"] for h in hyps))) for hyps in out]
        if wp == 3.0:  # a large word penalty prefers the shortest finished hypothesis
            assert all(len(hyps[0]["tokens"]) == min(len(h["tokens"]) for h in hyps) for hyps in out)
        if wp == -3.0:
            assert all(len(hyps[0]["tokens"]) == max(len(h["tokens"]) for h in hyps) for hyps in out)
    assert len({repr(v) for v in sets.values()}) == 1
    assert all(len(hyps) == 4 for hyps in sets[(0.0, 0.0)])  # every beam entry finishes exactly once


@torch.no_grad()
def test_length_cap_uses_padded_width() -> None:
    """max length = max_length_factor x the batch's padded width; hypotheses
    alive there are returned without </s>."""
    model = _tiny(4, eos_bias=-40.0)  # never ends by itself
    short, long_ = [5, 6, EOS], [5, 6, 7, 8, 9, 10, 11, EOS]
    alone = generate(model, [short], semantics="marian", beam_size=2, max_length_factor=1.5)[0][0]
    assert len(alone["tokens"]) == math.ceil(1.5 * 3) and EOS not in alone["tokens"]
    batched = generate(model, [short, long_], semantics="marian", beam_size=2, max_length_factor=1.5)
    assert [len(h[0]["tokens"]) for h in batched] == [12, 12]
    assert len(generate(model, [short], semantics="marian", beam_size=2, max_length_factor=0.1)[0][0]["tokens"]) == 1
    # a factor whose float32 product is infinite caps nothing but the positions (it raised OverflowError)
    for huge in (3e38, 3.4e38):  # past float32 (1e300) is refused, as marian-decoder aborts on it
        capped = generate(model, [short], semantics="marian", beam_size=2, max_length_factor=huge)[0][0]
        assert len(capped["tokens"]) == model.cfg.max_target_positions


@torch.no_grad()
def test_lines_of_several_batches_keep_their_own_caps() -> None:
    """``batch_widths`` (translate decodes consecutive Marian batches in one
    search): each line is capped by its own batch's width, and its hypotheses
    equal those of its batch decoded alone, n-best and scores."""
    model = _tiny(4, eos_bias=-40.0)  # never ends by itself: the cap decides every length
    batches = [[[5, 6, EOS], [7, EOS]], [[5, 6, 7, 8, 9, 10, 11, EOS]], _sources(3, 9, seed=2)]
    opts = dict(semantics="marian", beam_size=3, n_best=True, max_length_factor=1.5)
    alone = [h for b in batches for h in generate(model, b, **opts)]
    widths = tuple(max(len(x) for x in b) for b in batches for _ in b)
    together = generate(model, [x for b in batches for x in b], batch_widths=widths, **opts)
    assert [[h["tokens"] for h in hyps] for hyps in together] == [[h["tokens"] for h in hyps] for hyps in alone]
    for got, want in zip(together, alone):
        assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=1e-5)
    assert {len(hyps[0]["tokens"]) for hyps in together[:2]} == {math.ceil(1.5 * 3)}
    with pytest.raises(InvalidInputError, match="batch_widths"):
        generate(model, [[5, EOS]], batch_widths=(2, 2), **opts)


def test_decode_groups() -> None:
    from modelport.generation.groups import decode_groups

    lengths = [3, 5, 4, 9, 2, 7]
    groups, widths = decode_groups([[0, 1], [2], [3, 4], [5]], lengths, max_lines=3)
    assert groups == [[0, 1, 2], [3, 4, 5]]
    assert widths == [(5, 5, 4), (9, 9, 7)]
    assert decode_groups([[0, 1, 2, 3]], lengths, max_lines=2) == ([[0, 1, 2, 3]], [(9, 9, 9, 9)])
    # chunks of 2 lines (lines 0-1, 2-3, 4-5): without them the first group would join lines of chunks 0 and 1
    batches = [[1, 0], [2], [3], [4, 5]]
    assert decode_groups(batches, lengths, max_lines=4)[0] == [[1, 0, 2, 3], [4, 5]]
    assert decode_groups(batches, lengths, max_lines=4, chunk_lines=2)[0] == [[1, 0], [2, 3], [4, 5]]


def test_group_lines_shrink_as_models_widen() -> None:
    from modelport.generation.groups import group_lines

    assert [group_lines(d) for d in (32, 64, 128, 256, 512, 1024)] == [256, 256, 128, 64, 32, 32]


def test_groups_of_cheap_rows_grow_to_the_step_budget() -> None:
    """A model whose rows are cheap (the embedded model: 3 layers, d 128, 1,072 words) decodes more lines
    together than its width gives; one of the same width with 8,000 words, and the transformer-base
    proportions, keep their width's groups; an ensemble's members each count."""
    from modelport.generation.groups import group_lines
    from modelport.generation.translate import search_group_lines

    def cfg(layers: int, d: int, vocab: int) -> SimpleNamespace:
        return SimpleNamespace(decoder_layers=layers, d_model=d, decoder_ffn_dim=4 * d, target_vocab_size=vocab)

    assert search_group_lines(cfg(3, 128, 1072), beam=5) == 242
    assert search_group_lines(cfg(3, 128, 1072), beam=1) == 256  # never past the largest group
    assert search_group_lines(cfg(3, 128, 1072), beam=5, members=2) == 128  # the width's groups, not fewer
    assert search_group_lines(cfg(3, 128, 8000), beam=5) == group_lines(128) == 128
    assert search_group_lines(cfg(3, 256, 8000), beam=5) == group_lines(256) == 64
    assert search_group_lines(cfg(6, 512, 32000), beam=5) == group_lines(512) == 32


@torch.no_grad()
def test_unk_suppressed_unless_allowed() -> None:
    model = _tiny(5, unk_bias=6.0)
    srcs = _sources(4, 12, seed=5)
    banned = generate(model, srcs, semantics="marian", beam_size=3, n_best=True)
    allowed = generate(model, srcs, semantics="marian", beam_size=3, n_best=True, allow_unk=True)
    assert not any(UNK in h["tokens"] for hyps in banned for h in hyps)
    assert any(UNK in h["tokens"] for hyps in allowed for h in hyps)


@torch.no_grad()
def test_empty_line_and_source_length() -> None:
    model = _tiny(6)
    out = generate(model, [[EOS], [5, EOS]], semantics="marian", beam_size=3, n_best=True, word_penalty=0.5)
    assert out[0] == [{"tokens": [EOS], "score": -0.5, "positional_scores": [0.0]}] * 3
    long_ = [5, 6, 7, 8, EOS]
    with pytest.raises(InvalidInputError, match="max_length"):
        generate(model, [long_], semantics="marian", max_length=4)
    cropped = generate(model, [long_], semantics="marian", max_length=3, max_length_crop=True, beam_size=2)
    assert cropped == generate(model, [[5, 6, EOS]], semantics="marian", beam_size=2)


def test_options_are_checked() -> None:
    model = _tiny(0)
    with pytest.raises(InvalidInputError, match="not known to the marian"):
        generate(model, [[5, EOS]], semantics="marian", min_len=3)
    with pytest.raises(InvalidInputError, match="n_best"):
        generate(model, [[5, EOS]], semantics="marian", beam_size=2, n_best=3)


# ---------------------------------------------------------------------------
# the OPUS-MT fixtures: CTranslate2 (marian) and transformers (hf)


def _fixture(name: str, tmp: Path, eos_boost: float = 0.0) -> tuple[Path, Path]:
    """A copy of a fixture, its </s> logit bias raised by ``eos_boost``
    (random weights rarely end a sentence); returns (dir, npz)."""
    src = DATA / name
    npz_name = yaml.safe_load((src / "decoder.yml").read_text())["models"][0]
    out = tmp / f"{name}-{eos_boost}"
    shutil.copytree(src, out)
    if eos_boost:
        with np.load(src / npz_name, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        bias = arrays["decoder_ff_logit_out_b"].copy()
        bias.reshape(-1)[0] += eos_boost  # </s> is id 0 in Marian vocabularies
        arrays["decoder_ff_logit_out_b"] = bias
        np.savez(out / npz_name, **arrays)
    return out, out / npz_name


def _lines(n: int) -> list[str]:
    return (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[:n]


def _ct2_and_ours(name: str, tmp: Path, eos_boost: float, beam: int, alpha: float, n: int = 4):
    directory, _ = _fixture(name, tmp, eos_boost)
    p = modelport.convert(str(directory), tmp / f"ported-{name}-{eos_boost}")
    translator = _ct2_translator(directory, tmp / f"ct2-{name}-{eos_boost}")
    tok = p.tokenizer
    srcs = [tok.encode(line) for line in _lines(n)]
    width = max(len(s) for s in srcs)
    theirs = translator.translate_batch(
        [tok.id_to_tokens(s[:-1], side="source") for s in srcs], beam_size=beam, num_hypotheses=beam,
        length_penalty=alpha, max_decoding_length=math.ceil(3.0 * width), min_decoding_length=0, return_scores=True,
        return_end_token=True)  # hypothesis length counts </s>, as Marian's does
    # CTranslate2's numerics (see test_marian_parity): frequencies over dim/2, embeddings scaled
    model = _variant(p.models[0], sinusoidal_denominator_minus_one=False, scale_embeddings=True)
    ours = generate(model, srcs, semantics="marian", beam_size=beam, n_best=True, normalize=alpha,
                    max_length_factor=3.0, allow_unk=True)
    return tok, theirs, ours


def _compare_ct2(tok, theirs, ours, alpha: float) -> None:
    for r, hyps in zip(theirs, ours):
        assert len(r.hypotheses) == len(hyps)
        for toks, score, h in zip(r.hypotheses, r.scores, hyps):
            assert tok.id_to_tokens(h["tokens"], side="target") == toks
            # a sum of up to 75 log-probs, each within the forward tolerance of CT2's
            n = len(toks)
            assert abs(h["score"] - score) <= TOL * n / n ** alpha


@torch.no_grad()
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("name", ["post_tiedall_swish", "post_untied_relu"])
def test_capped_search_matches_ctranslate2(name: str, beam: int, alpha: float, tmp_path: Path) -> None:
    """These fixtures never produce </s>: every hypothesis runs to the cap,
    3 x the padded width of the batch (lines of different lengths)."""
    pytest.importorskip("ctranslate2")
    tok, theirs, ours = _ct2_and_ours(name, tmp_path, 0.0, beam, alpha)
    assert not any(t and t[-1] == "</s>" for r in theirs for t in r.hypotheses)  # the region where they agree
    _compare_ct2(tok, theirs, ours, alpha)


@torch.no_grad()
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_greedy_with_eos_matches_ctranslate2(alpha: float, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    tok, theirs, ours = _ct2_and_ours("post_tiedall_swish", tmp_path, 6.4, 1, alpha, n=8)
    ends = [r.hypotheses[0][-1] == "</s>" for r in theirs]
    assert any(ends) and len({len(r.hypotheses[0]) for r in theirs}) > 2  # lines end at varied steps
    _compare_ct2(tok, theirs, ours, alpha)


HF_CASES = {"post_tiedall_swish": 6.4, "post_untied_relu": 1.5}  # </s> boost: hypotheses end at varied steps


@pytest.fixture(scope="module")
def hf_pairs(tmp_path_factory):
    pytest.importorskip("transformers")
    tmp = tmp_path_factory.mktemp("marian_hf")
    out = {}
    for name, boost in HF_CASES.items():
        directory, npz = _fixture(name, tmp, boost)
        p = modelport.convert(str(directory), tmp / f"ported-{name}")
        hf = _hf_model(npz, p)
        with torch.no_grad():  # the port never produces the appended pad id; neither may the reference
            hf.final_logits_bias[0, p.config.pad_token_id] = -math.inf
        model = _variant(p.models[0], sinusoidal_denominator_minus_one=False, norm_eps=1e-5)
        out[name] = (p, hf, model)
    return out


@torch.no_grad()
@pytest.mark.parametrize("nret", [1, 4])
@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("name", list(HF_CASES))
def test_hf_semantics_match_marian_mt_model(hf_pairs, name: str, early_stopping, nret: int) -> None:
    p, hf, model = hf_pairs[name]
    pad, eos = p.config.pad_token_id, p.config.eos_token_id
    srcs = [p.tokenizer.encode(line) for line in _lines(4)]
    kw = dict(num_beams=4, length_penalty=1.0, max_new_tokens=15, num_return_sequences=nret,
              early_stopping=early_stopping)
    ids = torch.full((len(srcs), max(map(len, srcs))), pad)
    for i, s in enumerate(srcs):
        ids[i, : len(s)] = torch.tensor(s)
    out = hf.generate(input_ids=ids, attention_mask=ids.ne(pad), do_sample=False, decoder_start_token_id=pad,
                      forced_eos_token_id=eos, pad_token_id=pad, eos_token_id=eos, return_dict_in_generate=True,
                      output_scores=True, **kw)
    ours = generate(model, srcs, semantics="hf", forced_eos_token_id=eos, **kw)
    seqs, scores = out.sequences.tolist(), out.sequences_scores.tolist()
    lengths = set()
    for i, hyps in enumerate(ours):
        assert len(hyps) == nret
        for j, h in enumerate(hyps):
            toks = seqs[i * nret + j][1:]
            while toks and toks[-1] == pad:
                toks.pop()
            assert h["tokens"] == toks
            assert abs(h["score"] - scores[i * nret + j]) <= TOL
            lengths.add(len(toks))
    if nret > 1 and early_stopping is True:  # (length_penalty 1 lets long hypotheses win otherwise)
        assert len(lengths) > 1  # finished hypotheses of varied lengths compete
