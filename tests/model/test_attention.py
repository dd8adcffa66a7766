"""Attention of a decoding step: ``attend`` with one row of keys shared by a
beam's queries and as matrix products equals torch's fused kernel on
ungrouped keys up to rounding, and beam search with both (the encoder side
kept once per sentence) gives the fused kernel's outputs under every
semantics, also when sentences finish and leave the batch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from modelport.generation import generate
from modelport.generation import ensemble as ensemble_module
from modelport.generation.ensemble import shared_rows
from modelport.model import layers
from modelport.model.config import Seq2SeqConfig
from modelport.model.layers import attend
from modelport.model.transformer import Seq2SeqModel

ALWAYS, NEVER = 0, 1 << 62  # MATMUL_ATTENTION_MIN that takes the products for every step / for none
SCALE = 0.15  # output embeddings scaled: distributions neither flat nor one-hot


def _fused(q, k, v, mask, scale):
    group = q.size(0) // k.size(0)
    if mask is not None and mask.size(0) > 1:
        mask = mask.repeat_interleave(group, 0)
    return F.scaled_dot_product_attention(q, k.repeat_interleave(group, 0), v.repeat_interleave(group, 0),
                                          attn_mask=mask, scale=scale)


@pytest.mark.parametrize("group", [1, 5])
@pytest.mark.parametrize("mask_kind", [None, "padding", "additive"])
@pytest.mark.parametrize("queries", [1, 3])
def test_attend_equals_the_fused_kernel(monkeypatch, group: int, mask_kind: str | None, queries: int) -> None:
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", ALWAYS)
    g = torch.Generator().manual_seed(group * 10 + queries)
    rows, heads, keys, dh = 10, 4, 7, 8
    q = torch.randn(rows, heads, queries, dh, generator=g)
    k = torch.randn(rows // group, heads, keys, dh, generator=g)
    v = torch.randn(rows // group, heads, keys, dh, generator=g)
    mask = None
    if mask_kind == "padding":  # a source padding mask, one row per key row; one row pads 3 keys
        mask = torch.ones(rows // group, 1, 1, keys, dtype=torch.bool)
        mask[0, ..., -3:] = False
    elif mask_kind == "additive":  # a position bias broadcast over rows (T5's)
        mask = torch.randn(1, heads, queries, keys, generator=g)
    with torch.inference_mode():
        ours = attend(q, k, v, mask, 0.3)
    ref = _fused(q, k, v, mask, 0.3)
    assert ours.shape == ref.shape == (rows, heads, queries, dh)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=1e-5)


def test_shared_rows() -> None:
    expand = torch.arange(3).repeat_interleave(4)  # step 0: each sentence copied to a beam of 4
    rows, group = shared_rows(expand, 1, 4)
    assert rows.tolist() == [0, 1, 2] and group == 4
    # sentence 1 leaves the batch; the others' beams are permuted within themselves
    rows, group = shared_rows(torch.tensor([1, 1, 3, 0, 9, 8, 8, 11]), 4, 4)
    assert rows.tolist() == [0, 2] and group == 4
    # a run mixing two sentences: one encoder row per batch row again
    rows, group = shared_rows(torch.tensor([0, 4, 1, 2]), 4, 4)
    assert rows.tolist() == [0, 1, 0, 0] and group == 1
    rows, group = shared_rows(torch.tensor([2, 0, 1]), 1, 1)
    assert rows.tolist() == [2, 0, 1] and group == 1


def _model(seed: int) -> Seq2SeqModel:
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig(encoder_layers=2, decoder_layers=2, d_model=32, encoder_heads=4, decoder_heads=4,
                        encoder_ffn_dim=64, decoder_ffn_dim=64, source_vocab_size=40, target_vocab_size=40,
                        final_logits_bias=True, max_source_positions=64, max_target_positions=64)
    model = Seq2SeqModel(cfg).eval()
    with torch.no_grad():  # an EOS that ends sentences at different steps
        model.decoder.embed.embed_tokens.weight.mul_(SCALE)
        model.final_logits_bias[cfg.eos_token_id] = 2.0
    return model


def _sources(seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 12, (7,), generator=g)
    return [torch.randint(4, 40, (int(n),), generator=g).tolist() + [2] for n in lengths]


@pytest.mark.parametrize(("semantics", "options"), [
    ("fairseq", {"beam": 5, "max_len_a": 1.0, "max_len_b": 3}),
    ("hf", {"num_beams": 3, "max_new_tokens": 12}),
    ("marian", {"beam_size": 4, "normalize": 0.6}),  # beams shrink as hypotheses finish: the grid narrows
])
def test_search_with_shared_keys_is_the_fused_kernels(monkeypatch, semantics: str, options: dict) -> None:
    model = _model(7)
    srcs = _sources(3)
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", NEVER)
    monkeypatch.setattr(layers, "SHARED_KEYS_MIN", NEVER)
    ref = generate(model, srcs, semantics=semantics, **options)

    groups: list[tuple[int, int]] = []  # (old group, new group) of every reorder of the encoder side
    real = ensemble_module.shared_rows

    def spy(index, old_group, group):
        rows, new = real(index, old_group, group)
        groups.append((old_group, new))
        return rows, new

    monkeypatch.setattr(ensemble_module, "shared_rows", spy)
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", ALWAYS)
    ours = generate(model, srcs, semantics=semantics, **options)
    assert groups and groups[0] == (1, groups[0][1]) and groups[0][1] > 1  # step 0 kept one row per sentence
    if semantics == "marian":  # a grid of sentences x their widest beam, padded; it stayed grouped as it narrowed
        assert any(old > new > 1 for old, new in groups[1:])
    if semantics == "fairseq":  # finished sentences left the batch, which stayed grouped
        assert any(old > 1 and new > 1 for old, new in groups[1:])
    assert [[h["tokens"] for h in hyps] for hyps in ours] == [[h["tokens"] for h in hyps] for hyps in ref]
    for hyps, refs in zip(ours, ref):
        for h, r in zip(hyps, refs):
            assert math.isclose(float(h["score"]), float(r["score"]), rel_tol=1e-5, abs_tol=1e-5)
