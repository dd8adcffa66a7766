"""The Hypothesis type every search returns: its attributes, its read-only
dict view (what callers written against the former dicts read) and its JSON."""

from __future__ import annotations

import json

import pytest
import torch

from modelport.generation import generate
from modelport.generation.hypothesis import Hypothesis
from modelport.model.config import Seq2SeqConfig
from modelport.model.transformer import Seq2SeqModel

PAD, EOS = 1, 2


def _hyp(**kw) -> Hypothesis:
    return Hypothesis(**{"tokens": [5, 7, EOS], "score": -1.25, "positional_scores": [-0.5, -0.5, -0.25], **kw})


def test_dict_view_reads_as_the_former_dict() -> None:
    h = _hyp()
    assert h["tokens"] == [5, 7, EOS] and h["score"] == -1.25 and h["positional_scores"] == [-0.5, -0.5, -0.25]
    assert list(h.keys()) == ["tokens", "score", "positional_scores"]
    assert "text" not in h and h.get("text") is None and h.get("text", "-") == "-"
    with pytest.raises(KeyError):
        h["text"]
    assert {**h} == {"tokens": [5, 7, EOS], "score": -1.25, "positional_scores": [-0.5, -0.5, -0.25]}
    assert h == {"tokens": [5, 7, EOS], "score": -1.25, "positional_scores": [-0.5, -0.5, -0.25]}
    assert h != {"tokens": [5, 7, EOS], "score": -1.0, "positional_scores": [-0.5, -0.5, -0.25]}


def test_text_is_a_key_once_set_and_json_keeps_the_former_order() -> None:
    h = _hyp().with_text("hello")
    assert h.text == "hello" and h["text"] == "hello" and "text" in h
    assert json.dumps(h.to_json()) == ('{"tokens": [5, 7, 2], "score": -1.25, '
                                       '"positional_scores": [-0.5, -0.5, -0.25], "text": "hello"}')
    with pytest.raises(Exception):  # frozen: a hypothesis is a result, not a buffer
        h.score = 0.0  # type: ignore[misc]


def _model() -> Seq2SeqModel:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(encoder_layers=1, decoder_layers=1, d_model=16, encoder_heads=2, decoder_heads=2,
                        encoder_ffn_dim=32, decoder_ffn_dim=32, source_vocab_size=12, target_vocab_size=12,
                        max_source_positions=32, max_target_positions=32)
    return Seq2SeqModel(cfg).eval()


@pytest.mark.parametrize("options", [{"semantics": "fairseq", "beam": 2, "nbest": 2, "max_len_b": 5},
                                     {"semantics": "hf", "beam": 2, "nbest": 2, "max_new_tokens": 5},
                                     {"semantics": "marian", "beam": 2, "nbest": 2, "max_length_factor": 2.0},
                                     {"greedy": True, "max_new_tokens": 5}])
def test_every_search_returns_hypotheses(options) -> None:
    out = generate(_model(), [[4, 5, 6, EOS], [7, EOS]], **options)
    assert len(out) == 2
    for nbest in out:
        assert nbest and all(isinstance(h, Hypothesis) and h.text is None for h in nbest)
        for h in nbest:
            assert h["tokens"] == h.tokens and len(h.positional_scores) == len(h.tokens)


def test_translate_returns_hypotheses_with_text(ported_default) -> None:
    from modelport.tokenizers import Tokenizer

    tok = ported_default.tokenizer
    assert isinstance(tok, Tokenizer)
    out = ported_default.translate(["Hello world .", "a b c"], beam=2, nbest=2)
    for nbest in out:
        assert len(nbest) == 2
        for h in nbest:
            assert isinstance(h, Hypothesis)
            cfg = ported_default.config
            assert h.text == h["text"] == tok.decode([t for t in h.tokens if t not in (cfg.eos_token_id,
                                                                                       cfg.pad_token_id)])
