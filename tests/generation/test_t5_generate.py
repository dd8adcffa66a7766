"""T5 ports decode like transformers' ``generate`` (hf semantics, decoder
starting from pad): beam 1 and 4, each ``early_stopping`` value, several
returned sequences."""

from __future__ import annotations

import pytest
import torch

import modelport
from modelport.generation import generate

transformers = pytest.importorskip("transformers")

from tests.converters.test_t5_parity import VARIANTS, batch, build_hf_t5  # noqa: E402

from modelport.model import layers  # noqa: E402

# transformers 5.x's generate fails (IndexError in its cache) when the decoder
# has more layers than the encoder, as the parity tests' "v1.0" variant does:
# decode a v1.0 model with equal depths instead.
VARIANTS.setdefault("v1.0-equal-depth", ("T5Config", dict(feed_forward_proj="relu", num_layers=2), False))

TOL = 1e-4


@pytest.fixture(scope="module", params=["v1.0-equal-depth", "v1.1"])
def pair(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"t5gen-{request.param}")
    ref = build_hf_t5(tmp / "hf", request.param, seed=4)
    with torch.no_grad():  # peaky distributions: few near-ties between beams
        ref.shared.weight.mul_(4)
        if not ref.config.tie_word_embeddings:
            ref.lm_head.weight.mul_(4)
        ref.lm_head.weight[ref.config.eos_token_id] = 0.9 * ref.lm_head.weight[7]  # varied lengths
    ref.save_pretrained(tmp / "hf")
    ported = modelport.convert(str(tmp / "hf"), tmp / "ported")
    src, mask = batch(ref.config.vocab_size, [7, 4, 6])
    src[torch.arange(3), mask.sum(1) - 1] = ref.config.eos_token_id  # sentences end with </s>
    return ref, ported, src, mask


CASES = {
    "greedy": {"num_beams": 1, "max_new_tokens": 10},
    "beam4": {"num_beams": 4, "max_new_tokens": 10},
    "beam4-nret3-lp0.7": {"num_beams": 4, "max_new_tokens": 10, "num_return_sequences": 3, "length_penalty": 0.7},
}


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("case", list(CASES))
def test_t5_generate_matches_transformers(pair, case, early_stopping) -> None:
    ref, ported, src, mask = pair
    kw = dict(CASES[case])
    if kw["num_beams"] > 1:
        kw["early_stopping"] = early_stopping
    elif early_stopping is not False:
        pytest.skip("early_stopping only applies to beam search")
    with torch.no_grad():
        out = ref.generate(input_ids=src, attention_mask=mask, do_sample=False, output_scores=True,
                           decoder_start_token_id=ref.config.pad_token_id,  # as released T5 configs set it
                           return_dict_in_generate=True, **kw)
    n = kw.get("num_return_sequences", 1)
    ours = generate(ported.models, src, semantics="hf", **kw)
    eos = ref.config.eos_token_id
    for i, hyps in enumerate(ours):
        assert len(hyps) == n
        for j, hyp in enumerate(hyps):
            toks = out.sequences[i * n + j].tolist()[1:]  # drop the decoder start (pad)
            if eos in toks:  # transformers pads finished sequences after their EOS
                toks = toks[: toks.index(eos) + 1]
            assert hyp["tokens"] == toks, (i, j)
            if kw["num_beams"] > 1:
                assert abs(hyp["score"] - out.sequences_scores[i * n + j].item()) <= TOL


@pytest.mark.parametrize("case", ["greedy", "beam4-nret3-lp0.7"])
def test_t5_generate_matches_transformers_with_attention_as_products(pair, case, monkeypatch) -> None:
    """The same with every decoding step's attention as matrix products (T5's relative position bias added
    to the scores, its query scale 1.0) and one row of cross-attention keys per sentence (``layers.attend``)."""
    monkeypatch.setattr(layers, "MATMUL_ATTENTION_MIN", 0)
    monkeypatch.setattr(layers, "WHOLE_PRODUCTS_MIN", 0)  # the encoder's attention as products too
    test_t5_generate_matches_transformers(pair, case, False)
