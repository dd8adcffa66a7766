"""Seq2SeqConfig: behaviour flags, derived values, rejected combinations."""

from __future__ import annotations

import pytest

from modelport.errors import ConfigError
from modelport.model.config import Seq2SeqConfig

BASE = dict(encoder_layers=2, decoder_layers=2, d_model=32, encoder_heads=4, decoder_heads=4, encoder_ffn_dim=64,
            decoder_ffn_dim=64, source_vocab_size=40, target_vocab_size=48)


def test_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Seq2SeqConfig(2, 2)  # type: ignore[misc]
    cfg = Seq2SeqConfig(**BASE)
    with pytest.raises(Exception):
        cfg.d_model = 3  # type: ignore[misc]
    assert cfg.encoder_head_dim == 8 and cfg.embed_scale == pytest.approx(32 ** 0.5)
    assert Seq2SeqConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("changes, words", [
    ({"activation": "tanh"}, "not a known activation"),
    ({"norm": "batchnorm"}, "not a known norm"),
    ({"positions": "rotary"}, "not a known position kind"),
    ({"encoder_heads": 5}, "divisible"),
    ({"shared_embeddings": True}, "equal vocabularies"),
    ({"final_norm": True}, "only used with `pre_norm`"),
    ({"norm": "rmsnorm"}, "post-norm RMSNorm"),
    ({"eos_token_id": 99}, "`eos_token_id` must be in"),
])
def test_rejected_combinations(changes, words) -> None:
    with pytest.raises(ConfigError, match=words):
        Seq2SeqConfig(**{**BASE, **changes})


def test_unknown_field_in_saved_config() -> None:
    with pytest.raises(ConfigError, match="unknown Seq2SeqConfig fields: is_marian"):
        Seq2SeqConfig.from_dict({**Seq2SeqConfig(**BASE).to_dict(), "is_marian": True})
