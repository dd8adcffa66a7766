"""Forward parity against fairseq's own model (cheap parity: tiny random
checkpoints built with fairseq's builders, saved as fairseq saves them, read
back by fairseq's own loader, and converted by modelport)."""

from __future__ import annotations

import pytest
import torch

import modelport

fairseq = pytest.importorskip("fairseq")

from tests.helpers.fairseq_ref import (  # noqa: E402
    LAYOUTS,
    build_fairseq_model,
    fairseq_full_logits,
    fairseq_incremental_logits,
    load_with_fairseq,
)

TOL = 1e-5

# Each case flips behaviours the unified config must reproduce.
CASES = {
    "post-norm-sinusoidal": {},
    "pre-norm": {"encoder_normalize_before": True, "decoder_normalize_before": True},
    "learned-pos": {"encoder_learned_pos": True, "decoder_learned_pos": True},
    "shared-vocab": {"share_all_embeddings": True},
    "tied-output": {"share_decoder_input_output_embed": True},
    "unscaled-embeddings": {"no_scale_embedding": True},
    "layernorm-embedding": {"layernorm_embedding": True},
    "gelu": {"activation_fn": "gelu"},
    "gelu-accurate": {"activation_fn": "gelu_accurate"},
    "no-positions": {"no_token_positional_embeddings": True},
    "big-mix": {"encoder_normalize_before": True, "decoder_normalize_before": True,
                "encoder_learned_pos": True, "decoder_learned_pos": True, "share_all_embeddings": True,
                "layernorm_embedding": True, "no_scale_embedding": True, "encoder_layers": 3,
                "decoder_layers": 1, "encoder_ffn_embed_dim": 48, "decoder_ffn_embed_dim": 80},
}


def _batch(src_vocab: int, tgt_vocab: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, src_vocab, (4, 9), generator=g)
    src[0, :3] = 1  # left padding, as fairseq batches sources
    src[1, :1] = 1
    src[:, -1] = 2
    prev = torch.randint(4, tgt_vocab, (4, 6), generator=g)
    prev[:, 0] = 2  # fairseq's decoder starts from </s>
    return src, prev


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", list(CASES))
def test_forward_parity(tmp_path, case: str, layout: str) -> None:
    src_dir = tmp_path / "fairseq"
    _, path = build_fairseq_model(src_dir, layout=layout, **CASES[case])
    reference = load_with_fairseq(path)
    ported = modelport.convert(str(src_dir), tmp_path / "ported")
    cfg = ported.config
    src, prev = _batch(cfg.source_vocab_size, cfg.target_vocab_size)

    ref_full = fairseq_full_logits(reference, src, prev)
    with torch.no_grad():
        ours_full = ported.model(src, prev)
    assert ours_full.shape == ref_full.shape
    assert (ours_full - ref_full).abs().max().item() <= TOL

    ref_inc = fairseq_incremental_logits(reference, src, prev)
    with torch.no_grad():
        enc = ported.model.encode(src)
        state = ported.model.new_state()
        ours_inc = torch.cat([ported.model.decode(prev[:, t: t + 1], enc, state) for t in range(prev.size(1))], 1)
    assert (ours_inc - ref_inc).abs().max().item() <= TOL


def test_right_padded_target_batch(tmp_path) -> None:
    """Teacher forcing with padded targets (scoring): padding masked as keys."""
    src_dir = tmp_path / "fairseq"
    _, path = build_fairseq_model(src_dir, encoder_learned_pos=True, decoder_learned_pos=True)
    reference = load_with_fairseq(path)
    ported = modelport.convert(str(src_dir), tmp_path / "ported")
    src, prev = _batch(ported.config.source_vocab_size, ported.config.target_vocab_size, seed=3)
    prev[0, 4:] = 1
    ref = fairseq_full_logits(reference, src, prev)
    with torch.no_grad():
        ours = ported.model(src, prev)
    real = prev.ne(1)
    assert (ours - ref).abs()[real].max().item() <= TOL


def test_ensemble_members_kept(tmp_path) -> None:
    src_dir = tmp_path / "fairseq"
    build_fairseq_model(src_dir, seed=0)
    (src_dir / "model.pt").rename(src_dir / "model1.pt")
    m2, _ = build_fairseq_model(src_dir, seed=5)
    (src_dir / "model.pt").rename(src_dir / "model2.pt")
    r1 = load_with_fairseq(src_dir / "model1.pt")
    r2 = load_with_fairseq(src_dir / "model2.pt")
    ported = modelport.convert(str(src_dir), tmp_path / "ported", checkpoint="model1.pt:model2.pt")
    assert len(ported.models) == 2
    src, prev = _batch(ported.config.source_vocab_size, ported.config.target_vocab_size)
    with torch.no_grad():
        for ours, ref in zip(ported.models, (r1, r2)):
            assert (ours(src, prev) - fairseq_full_logits(ref, src, prev)).abs().max().item() <= TOL
    assert {f["name"] for f in ported.conversion["source_files"]} >= {"model1.pt", "model2.pt"}


def test_sharded_weights_round_trip(tmp_path) -> None:
    src_dir = tmp_path / "fairseq"
    _, path = build_fairseq_model(src_dir)
    reference = load_with_fairseq(path)
    ported = modelport.convert(str(src_dir), tmp_path / "ported", shard_bytes=20_000)
    files = ported.conversion["weights"]["files"]
    assert "model.safetensors.index.json" in files and len(files) > 3
    src, prev = _batch(ported.config.source_vocab_size, ported.config.target_vocab_size)
    with torch.no_grad():
        assert (ported.model(src, prev) - fairseq_full_logits(reference, src, prev)).abs().max().item() <= TOL


def test_provenance_records_drops_and_hashes(tmp_path) -> None:
    import hashlib

    src_dir = tmp_path / "fairseq"
    _, path = build_fairseq_model(src_dir, layout="cfg-dict")
    ported = modelport.convert(str(src_dir), tmp_path / "ported")
    conv = ported.conversion
    entry = next(f for f in conv["source_files"] if f["name"] == "model.pt")
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "model.pt:last_optimizer_state" in conv["dropped"]
    assert "encoder.version" in conv["dropped"]
    assert ported.generation_config["semantics"] == "fairseq"
    assert (ported.path / "tokenizer" / "dict.en.txt").read_text() == (src_dir / "dict.en.txt").read_text()
