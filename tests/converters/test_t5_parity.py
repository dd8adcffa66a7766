"""T5 forward parity against transformers' own T5/mT5 models with random
weights: each variant is saved with ``save_pretrained``, converted with
``modelport.convert`` and compared logit for logit (padded batches and
incremental decoding included), in fp32 to 1e-4 and in fp16/bf16 for
staying finite where transformers does.

The builders here are imported by the other ``test_t5_*`` modules.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch

import modelport

transformers = pytest.importorskip("transformers")

TOL = 1e-4
_TEXT = ["the quick brown fox jumps over the lazy dog", "hello world this is a test of t5",
         "translate English to German: that is good", "summarize: owning a dog is good for you"] * 20


def write_spm(path: Path, vocab_size: int = 48) -> Path:
    """A tiny SentencePiece model with T5's special ids (pad 0, eos 1, unk 2)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_TEXT), model_writer=buf, vocab_size=vocab_size,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, normalization_rule_name="identity", minloglevel=2)
    path.write_bytes(buf.getvalue())
    return path


# name -> (config class, config kwargs, untie lm_head)
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    # original T5: ReLU, tied output scaled by d_model**-0.5; 3 decoder layers vs 2 encoder layers
    "v1.0": ("T5Config", dict(feed_forward_proj="relu", num_layers=2, num_decoder_layers=3), False),
    # T5 v1.1 / Flan-T5: gated GELU, untied lm_head, no output scaling
    "v1.1": ("T5Config", dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_layers=2), True),
    # mT5 shapes: heads * d_kv != d_model, gated GELU, untied
    "mt5": ("MT5Config", dict(num_heads=6, d_kv=8, num_layers=2, tie_word_embeddings=False), True),
    # non-default buckets and max distance (exercised by long inputs), gated SiLU
    "relative": ("T5Config", dict(feed_forward_proj="gated-silu", relative_attention_num_buckets=8,
                                  relative_attention_max_distance=12, num_layers=2, tie_word_embeddings=False),
                 True),
}


def build_hf_t5(directory: Path, variant: str, *, fmt: str = "safetensors", seed: int = 0,
                spm: bool = True) -> torch.nn.Module:
    """Save a random-weight transformers T5 of ``variant`` into ``directory``
    (``fmt``: ``safetensors`` or ``bin``) and return the reference model."""
    cls_name, kwargs, untie = VARIANTS[variant]
    cfg_cls = getattr(transformers, cls_name)
    model_cls = transformers.MT5ForConditionalGeneration if cls_name == "MT5Config" else \
        transformers.T5ForConditionalGeneration
    base = dict(vocab_size=160, d_model=32, d_kv=8, d_ff=48, num_heads=4, dropout_rate=0.0)
    cfg = cfg_cls(**{**base, **kwargs})
    torch.manual_seed(seed)
    model = model_cls(cfg).eval()
    with torch.no_grad():
        # norms start at 1.0: perturb them so a missed or swapped norm shows
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
        if untie:
            model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight) * 0.5)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    if fmt == "bin":
        # transformers 5 writes safetensors only; older releases wrote the full
        # state dict (tied names included, sharing one storage) with torch.save
        (directory / "model.safetensors").unlink()
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    if spm:
        write_spm(directory / "spiece.model")
    return model


def batch(vocab: int, lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids (pad 0, real ids >= 3) and their attention mask."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(3, vocab, (n,), generator=g)
    return ids, ids.ne(0).long()


def decoder_inputs(vocab: int, lengths: list[int], seed: int = 2) -> torch.Tensor:
    """Decoder inputs starting with T5's start token (pad = 0), right-padded."""
    ids, _ = batch(vocab, [n - 1 for n in lengths], seed)
    return torch.cat([torch.zeros(len(lengths), 1, dtype=torch.long), ids], dim=1)


def hf_logits(ref: torch.nn.Module, src: torch.Tensor, mask: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ref(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).logits.float()


def _real_rows(tgt_lengths: list[int], width: int) -> torch.Tensor:
    return torch.arange(width)[None, :] < torch.tensor(tgt_lengths)[:, None]


CASES = [("v1.0", "safetensors"), ("v1.0", "bin"), ("v1.1", "bin"), ("mt5", "safetensors"),
         ("relative", "safetensors")]


@pytest.mark.parametrize("variant, fmt", CASES)
def test_forward_parity_padded_batch(tmp_path: Path, variant: str, fmt: str) -> None:
    ref = build_hf_t5(tmp_path / "src", variant, fmt=fmt)
    ported = modelport.convert(str(tmp_path / "src"), tmp_path / "out")
    model = ported.model
    # long sources reach the logarithmic buckets (max_distance 12 / 128)
    src_lengths = [23, 9, 1] if variant == "relative" else [11, 6, 1]
    tgt_lengths = [7, 4, 2]
    src, mask = batch(160, src_lengths)
    tgt = decoder_inputs(160, tgt_lengths)

    expected = hf_logits(ref, src, mask, tgt)
    with torch.no_grad():
        got = model(src, tgt)
    real = _real_rows(tgt_lengths, tgt.size(1))
    diff = (got - expected).abs()[real].max().item()
    assert diff <= TOL, f"{variant}/{fmt}: max |logit diff| {diff}"
    # one sentence alone gives the same logits as inside the padded batch
    with torch.no_grad():
        alone = model(src[1:2, : src_lengths[1]], tgt[1:2, : tgt_lengths[1]])
    assert (alone[0] - expected[1, : tgt_lengths[1]]).abs().max().item() <= TOL


@pytest.mark.parametrize("variant", ["v1.0", "v1.1", "relative"])
def test_incremental_decoding_matches_reference(tmp_path: Path, variant: str) -> None:
    ref = build_hf_t5(tmp_path / "src", variant)
    model = modelport.convert(str(tmp_path / "src"), tmp_path / "out").model
    steps = 16 if variant == "relative" else 6  # past max_distance in the causal buckets
    src, mask = batch(160, [10, 5], seed=3)
    tgt = decoder_inputs(160, [steps, steps], seed=4)
    expected = hf_logits(ref, src, mask, tgt)
    with torch.no_grad():
        enc = model.encode(src)
        state = model.new_state()
        for t in range(steps):
            step = model.decode(tgt[:, t: t + 1], enc, state)
            diff = (step[:, 0] - expected[:, t]).abs().max().item()
            assert diff <= TOL, f"{variant}: step {t} max |logit diff| {diff}"


def test_conversion_records_t5_behaviour(tmp_path: Path) -> None:
    """The flags the port chose are the ones transformers uses for each variant."""
    build_hf_t5(tmp_path / "v10", "v1.0")
    build_hf_t5(tmp_path / "v11", "v1.1")
    v10 = modelport.convert(str(tmp_path / "v10"), tmp_path / "o10")
    v11 = modelport.convert(str(tmp_path / "v11"), tmp_path / "o11")
    assert v10.config.tie_output_embeddings and v10.config.output_scale == pytest.approx(32 ** -0.5)
    assert not v11.config.tie_output_embeddings and v11.config.output_scale == 1.0
    assert v10.config.activation == "relu" and not v10.config.ffn_gated
    assert v11.config.activation == "gelu_tanh" and v11.config.ffn_gated
    for ported in (v10, v11):
        gen = ported.generation_config
        assert gen["semantics"] == "hf" and gen["decoder_start_token_id"] == 0 == ported.config.pad_token_id
        assert (ported.tokenizer_dir / "spiece.model").is_file()
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "v10" / "spiece.model"))
        text = "translate English to German: the house is small"
        assert ported.tokenizer.encode(text) == sp.encode(text) + [sp.eos_id()]


# ---------------------------------------------------------------------------
# half precision


def _overflowing_t5(directory: Path) -> torch.nn.Module:
    """A v1.0 model whose first encoder FFN overflows fp16 (as real T5 does)."""
    ref = build_hf_t5(directory, "v1.0")
    with torch.no_grad():
        ref.encoder.block[0].layer[1].DenseReluDense.wo.weight.mul_(3e4)
        ref.decoder.block[0].layer[2].DenseReluDense.wo.weight.mul_(3e4)
    ref.save_pretrained(directory)
    return ref


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_stays_finite_like_reference(tmp_path: Path, dtype: torch.dtype) -> None:
    ref32 = _overflowing_t5(tmp_path / "src")
    modelport.convert(str(tmp_path / "src"), tmp_path / "out")
    src, mask = batch(160, [11, 6], seed=5)
    tgt = decoder_inputs(160, [5, 5], seed=6)
    fp32 = hf_logits(ref32, src, mask, tgt)
    ref = ref32.to(dtype)  # every weight in half precision, transformers' clamps active in fp16
    expected = hf_logits(ref, src, mask, tgt)
    assert torch.isfinite(expected).all(), "the reference itself overflows: the fixture is wrong"

    model = modelport.load(tmp_path / "out", dtype=dtype).model
    with torch.no_grad():
        got = model(src, tgt)
        enc = model.encode(src)
        state = model.new_state()
        steps = torch.cat([model.decode(tgt[:, t: t + 1], enc, state) for t in range(tgt.size(1))], dim=1)
    assert torch.isfinite(got).all() and torch.isfinite(steps).all()
    scale = fp32.abs().max().item()
    # same numerics as the reference in the same dtype, up to half-precision rounding
    assert (got - expected).abs().max().item() <= 0.05 * scale
    assert (steps - expected).abs().max().item() <= 0.05 * scale

    if dtype == torch.float16:
        # the clamp is what keeps it finite: without it the activations overflow
        from modelport.model.transformer import Seq2SeqModel

        unclamped = Seq2SeqModel(model.cfg.replace(clamp_fp16_activations=False)).to(dtype)
        unclamped.load_state_dict(model.state_dict())
        with torch.no_grad():
            assert not torch.isfinite(unclamped.eval()(src, tgt)).all()
