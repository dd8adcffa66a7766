"""Attention of a decoding step: ``attend`` with one row of keys shared by a
beam's queries and as matrix products equals torch's fused kernel on
ungrouped keys up to rounding, and beam search with both (the encoder side
kept once per sentence) gives the fused kernel's outputs under every
semantics, also when sentences finish and leave the batch. An encoder's
attention (several queries per row) as whole products equals it too, and
is taken only where ``whole_products`` allows; the softmax of short rows
(``softmax_rows``) equals torch's."""

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
    """Every query count as products (one: a decoding step's; three: whole products
    where the mask is a padding mask or none) against torch's fused kernel."""
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", ALWAYS)
    monkeypatch.setattr(layers, "WHOLE_PRODUCTS_MIN", 0)
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


def test_whole_products_only_for_padding_masks_in_their_size_range() -> None:
    like = torch.zeros(1)
    padding = torch.ones(4, 1, 1, 9, dtype=torch.bool)
    inside = layers.WHOLE_PRODUCTS_MIN
    assert layers.whole_products(inside, None, like)
    assert layers.whole_products(layers.WHOLE_PRODUCTS_MAX, padding, like)
    assert not layers.whole_products(inside - 1, padding, like)  # short sentences: the fused kernel's one call
    assert not layers.whole_products(layers.WHOLE_PRODUCTS_MAX + 1, padding, like)  # a large matrix: never whole
    assert not layers.whole_products(inside, torch.ones(1, 1, 9, 9, dtype=torch.bool), like)  # causal
    assert not layers.whole_products(inside, torch.zeros(1, 4, 9, 9), like)  # T5's additive position bias
    assert not layers.whole_products(inside, None, like.half())
    assert not layers.whole_products(inside, None, like.double())


@pytest.mark.parametrize("length", [1, 2, 7, 8, 15, 16, 17, 36])
def test_softmax_rows_equals_torchs(monkeypatch, length: int) -> None:
    """Rows shorter than the CPU's vector width through softmax_rows' own formula,
    longer ones through torch.softmax itself; -inf keys weigh 0, a row of only -inf is NaN as in torch."""
    monkeypatch.setattr(layers, "short_softmax_rows", lambda: 16)
    calls = []
    softmax = torch.softmax
    monkeypatch.setattr(torch, "softmax", lambda x, dim: calls.append(x.shape) or softmax(x, dim=dim))
    x = torch.randn(300, 5, length, generator=torch.Generator().manual_seed(length)) * 4
    x[:7, :, -1] = float("-inf")  # padded keys
    x[7, 0] = float("-inf")  # every key masked
    ours = layers.softmax_rows(x)
    ref = softmax(x, dim=-1)
    assert bool(calls) == (length >= 16)
    assert torch.equal(torch.isnan(ours), torch.isnan(ref)) and bool(torch.isnan(ref[7, 0]).all())
    finite = ~torch.isnan(ref)
    assert torch.allclose(ours[finite], ref[finite], atol=1e-6, rtol=1e-5)
    assert bool((ours[:7, :, -1] == 0).all()) if length > 1 else True


def test_softmax_rows_is_torchs_off_the_cpu_float32_path_and_in_training(monkeypatch) -> None:
    monkeypatch.setattr(layers, "short_softmax_rows", lambda: 16)
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    assert torch.equal(layers.softmax_rows(x), torch.softmax(x, dim=-1))
    assert torch.equal(layers.softmax_rows(x.half()), torch.softmax(x.half(), dim=-1))
    trained = x.float().requires_grad_()  # the in-place formula would break backward (distill's training)
    out = layers.softmax_rows(trained)
    assert torch.equal(out, torch.softmax(trained, dim=-1))
    out[..., 0].sum().backward()
    assert trained.grad is not None


def test_shared_rows() -> None:
    keys = torch.arange(3).repeat_interleave(4)  # step 0: each sentence copied to a beam of 4
    assert shared_rows(keys, [4, 4, 4]).tolist() == [0, 1, 2]
    # sentence 1 left the batch; the others' beams are permuted within themselves
    assert shared_rows(torch.tensor([0, 0, 2, 2, 3, 3, 3, 3]), [2, 2, 4]).tolist() == [0, 2, 3]
    assert shared_rows(torch.tensor([1, 1, 1, 3, 3, 3]), [3, 3]).tolist() == [1, 3]
    # a run mixing two sentences: no sharing
    assert shared_rows(torch.tensor([0, 1, 1, 1]), [2, 2]) is None
    assert shared_rows(torch.tensor([0, 0, 1, 2, 2]), [3, 2]) is None


def test_runs_of_unequal_length_attend_as_their_grid(monkeypatch) -> None:
    """Marian's shrinking beams: queries of runs 3, 1 and 2 over three key rows,
    with the grid (each run padded with its first row) and without it."""
    g = torch.Generator().manual_seed(5)
    heads, keys, dh = 4, 6, 8
    runs = layers.KeyRuns.of([3, 1, 2], torch.device("cpu"))
    assert runs.width == 3 and runs.grid.tolist() == [0, 1, 2, 3, 3, 3, 4, 5, 4]
    assert runs.slots.tolist() == [0, 1, 2, 3, 6, 7] and runs.rows.tolist() == [0, 0, 0, 1, 2, 2]
    q = torch.randn(6, heads, 1, dh, generator=g)
    k = torch.randn(3, heads, keys, dh, generator=g)
    v = torch.randn(3, heads, keys, dh, generator=g)
    mask = torch.ones(3, 1, 1, keys, dtype=torch.bool)
    mask[1, ..., -2:] = False
    per_row = runs.rows
    ref = F.scaled_dot_product_attention(q, k[per_row], v[per_row], attn_mask=mask[per_row], scale=0.3)
    with torch.inference_mode():
        assert torch.allclose(attend(q, k, v, mask, 0.3, runs), ref, atol=1e-6, rtol=1e-5)
        q3 = torch.randn(6, heads, 2, dh, generator=g)  # two queries a row: keys per row, the fused kernel
        ref3 = F.scaled_dot_product_attention(q3, k[per_row], v[per_row], attn_mask=mask[per_row], scale=0.3)
        assert torch.allclose(attend(q3, k, v, mask, 0.3, runs), ref3, atol=1e-6, rtol=1e-5)


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
    ("marian", {"beam_size": 4, "normalize": 0.6}),  # beams shrink as hypotheses finish: runs of unequal lengths
    ("marian", {"beam_size": 4, "normalize": 0.6, "alignment": "soft"}),  # the cross-attention weights too
])
def test_search_with_shared_keys_is_the_fused_kernels(monkeypatch, semantics: str, options: dict) -> None:
    model = _model(7)
    srcs = _sources(3)
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", NEVER)
    monkeypatch.setattr(layers, "SHARED_KEYS_MIN", NEVER)
    ref = generate(model, srcs, semantics=semantics, **options)

    shared: list[list[int]] = []  # the run lengths of every reorder of the encoder side that kept it shared
    real = ensemble_module.shared_rows

    def spy(keys, runs):
        rows = real(keys, runs)
        if rows is not None:
            shared.append(list(runs))
        return rows

    monkeypatch.setattr(ensemble_module, "shared_rows", spy)
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", ALWAYS)
    ours = generate(model, srcs, semantics=semantics, **options)
    assert shared and len(shared[0]) == len(srcs) and shared[0][0] > 1  # step 0 kept one row per sentence
    if semantics == "marian":  # beams of unequal sizes kept one row per sentence
        assert any(min(runs) < max(runs) for runs in shared)
    if semantics == "fairseq":  # finished sentences left the batch, which stayed grouped
        assert any(len(runs) < len(srcs) for runs in shared[1:])
    assert [[h["tokens"] for h in hyps] for hyps in ours] == [[h["tokens"] for h in hyps] for hyps in ref]
    for hyps, refs in zip(ours, ref):
        for h, r in zip(hyps, refs):
            assert math.isclose(float(h["score"]), float(r["score"]), rel_tol=1e-5, abs_tol=1e-5)
            if "alignment" in options:
                assert torch.allclose(torch.tensor(h["alignment"]), torch.tensor(r["alignment"]), atol=1e-6)


def test_cache_reorders_apply_with_the_next_append() -> None:
    """Two reorders between steps, then a step's append: the cache the step reads
    is the reordered one followed by the new keys, in one copy."""
    g = torch.Generator().manual_seed(11)
    cache = layers.LayerCache()
    k0, v0 = torch.randn(4, 2, 3, 5, generator=g), torch.randn(4, 2, 3, 5, generator=g)
    assert cache.extend_self(k0, v0) == (k0, v0)
    a, b = torch.tensor([2, 2, 0, 1]), torch.tensor([3, 0, 0, 1, 2])
    cache.reorder(a, cross=False)
    cache.reorder(b, cross=False)
    assert torch.equal(cache.self_k, k0)  # nothing copied yet
    k1, v1 = torch.randn(5, 2, 1, 5, generator=g), torch.randn(5, 2, 1, 5, generator=g)
    k, v = cache.extend_self(k1, v1)
    assert torch.equal(k, torch.cat([k0[a][b], k1], dim=2)) and torch.equal(v, torch.cat([v0[a][b], v1], dim=2))
    assert cache.self_index is None and cache.self_k is k
    k2 = torch.randn(5, 2, 1, 5, generator=g)
    assert torch.equal(cache.extend_self(k2, k2)[0], torch.cat([k, k2], dim=2))  # no reorder: appended
