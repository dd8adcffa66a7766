"""Beam search with transformers' semantics against transformers' own generate.

A random tiny fairseq transformer is converted by modelport and loaded, with
the same weights, into transformers' FSMTForConditionalGeneration (FSMT is
transformers' port of fairseq's WMT19 architecture); both decode the same
batch and must return identical sequences and sequence scores.
"""

from __future__ import annotations

import pytest
import torch

import modelport
from modelport.generation import generate

transformers = pytest.importorskip("transformers")
pytest.importorskip("fairseq")

from tests.helpers.fairseq_ref import build_fairseq_model  # noqa: E402

from modelport.model import layers  # noqa: E402

TOL = 1e-4
PAD = 1


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from transformers import FSMTConfig, FSMTForConditionalGeneration

    tmp = tmp_path_factory.mktemp("hf")
    src_dir = tmp / "fairseq"
    build_fairseq_model(src_dir, seed=3)
    ckpt = torch.load(src_dir / "model.pt", weights_only=False)
    state = ckpt["model"]
    for key in state:  # peaky distributions: few near-ties
        if "embed_tokens" in key or "output_projection" in key:
            state[key] = state[key] * 4
    # generating pad mid-sequence makes the two decoders treat it differently
    # (a model matter, not a search one): keep pad unlikely
    out_w = state["decoder.output_projection.weight"]
    out_w[PAD] = 0
    out_w[2] = 0.95 * out_w[32]  # EOS competes with a frequent token: hypotheses end at varied lengths
    torch.save(ckpt, src_dir / "model.pt")
    ported = modelport.convert(str(src_dir), tmp / "ported")
    cfg = ported.config
    hf_cfg = FSMTConfig(langs=["en", "de"], src_vocab_size=cfg.source_vocab_size,
                        tgt_vocab_size=cfg.target_vocab_size, d_model=cfg.d_model, encoder_layers=2,
                        decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64, dropout=0.0,
                        scale_embedding=True, tie_word_embeddings=False)
    hf = FSMTForConditionalGeneration(hf_cfg).eval()
    weights = {f"model.{k}": v for k, v in state.items() if "embed_positions" not in k and "version" not in k}
    missing, unexpected = hf.load_state_dict(weights, strict=False)
    assert not unexpected and all("embed_positions" in k for k in missing)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, cfg.source_vocab_size, (4, 8), generator=g)
    src[:, -1] = 2
    src[2, -3:] = torch.tensor([2, PAD, PAD])  # right padding, as transformers' tokenizers pad
    with torch.no_grad():  # the two models agree teacher-forced (use_cache=False: FSMT's cached
        prev = torch.randint(4, cfg.target_vocab_size, (4, 5), generator=g)  # path drops the causal mask)
        prev[:, 0] = 2
        a = hf(input_ids=src, attention_mask=src.ne(PAD), decoder_input_ids=prev, use_cache=False).logits
        b = ported.model(src, prev)
    assert (a - b).abs().max().item() < 1e-4
    return hf, ported, src


def _hf(hf, src, **kw):
    out = hf.generate(input_ids=src, attention_mask=src.ne(PAD), do_sample=False, output_scores=True,
                      return_dict_in_generate=True, **kw)
    n = kw.get("num_return_sequences", 1)
    seqs, scores = out.sequences.tolist(), out.sequences_scores.tolist()
    result = []
    for i in range(src.size(0)):
        hyps = []
        for j in range(n):
            toks = seqs[i * n + j][1:]
            while toks and toks[-1] == PAD:
                toks.pop()
            hyps.append((toks, scores[i * n + j]))
        result.append(hyps)
    return result


CASES = {
    "beam3-lp0.6": {"num_beams": 3, "length_penalty": 0.6, "max_new_tokens": 12},
    "beam5-lp2-nret5": {"num_beams": 5, "length_penalty": 2.0, "max_new_tokens": 12, "num_return_sequences": 5},
    "min-new-tokens": {"num_beams": 4, "min_new_tokens": 7, "max_new_tokens": 12, "num_return_sequences": 2},
    "min-length-ngram": {"num_beams": 4, "min_length": 6, "max_length": 12, "no_repeat_ngram_size": 2},
    "short-max": {"num_beams": 4, "max_new_tokens": 4, "num_return_sequences": 4},
}


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("case", list(CASES))
def test_beam_matches_transformers(pair, case, early_stopping) -> None:
    hf, ported, src = pair
    kw = dict(CASES[case], early_stopping=early_stopping)
    theirs = _hf(hf, src, **kw)
    ours = generate(ported.models, src, semantics="hf", forced_eos_token_id=2, **kw)
    for xs, ys in zip(ours, theirs):
        assert len(xs) == len(ys)
        for x, (toks, score) in zip(xs, ys):
            assert x["tokens"] == toks
            assert abs(x["score"] - score) <= TOL


@pytest.mark.parametrize("case", ["beam5-lp2-nret5", "short-max"])
def test_beam_matches_transformers_with_attention_as_products(pair, case, monkeypatch) -> None:
    """The same with every decoding step's attention as matrix products and one row of
    cross-attention keys per sentence (``layers.attend``, taken from d_model ~512)."""
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", 0)
    monkeypatch.setattr(layers, "WHOLE_PRODUCTS_MIN", 0)  # the encoder's attention as products too
    test_beam_matches_transformers(pair, case, False)


def test_early_stopping_values_differ(pair) -> None:
    """The matrix above can fail: the three stopping rules give different n-best lists here."""
    hf, ported, src = pair
    kw = dict(num_beams=5, length_penalty=2.0, max_new_tokens=12, num_return_sequences=5)
    outs = {str(es): generate(ported.models, src, semantics="hf", forced_eos_token_id=2, early_stopping=es, **kw)
            for es in (False, True, "never")}
    flat = {k: [[h["tokens"] for h in x] for x in v] for k, v in outs.items()}
    assert len({repr(v) for v in flat.values()}) > 1
