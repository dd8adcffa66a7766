"""``translate`` decodes consecutive batches in one search (modelport/generation/groups.py)
under fairseq and hf semantics, and not where a search's result depends on its batch
(sampling, fairseq 0.12's n-gram blocker, --max-tokens): the outputs are those of the
batches decoded one by one, which the reference tests (tests/generation/test_generation_*.py)
compare with fairseq and transformers."""

from __future__ import annotations

import pytest

from modelport.generation import translate as translate_module
from modelport.generation.translate import generate, translate
from tests.helpers.paths import CORPUS

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:24]


def _searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of lines of each search ``translate`` runs from now on."""
    sizes: list[int] = []

    def counted(models, src, **options):
        sizes.append(len(src))
        return generate(models, src, **options)

    monkeypatch.setattr(translate_module, "generate", counted)
    return sizes


def _first_best(hyps) -> list[list[int]]:
    return [nbest[0].tokens for nbest in hyps]


@pytest.mark.parametrize("semantics, options", [
    ("fairseq", {"beam": 4, "max_len_a": 0.5, "max_len_b": 2}),  # caps of width / 2 + 2: some lines reach theirs
    ("hf", {"num_beams": 4, "max_new_tokens": 9, "length_penalty": 0.6}),
])
def test_batches_are_decoded_together(ported_default, monkeypatch, semantics, options) -> None:
    """Six batches of 4 lines in one search (up to 128 lines at d_model 128) give
    what the six searches give (groups of one batch: ``group_lines`` 1)."""
    with monkeypatch.context() as apart:
        apart.setattr(translate_module, "group_lines", lambda d_model, step_flops=0.0: 1)
        sizes = _searches(apart)
        want = _first_best(translate(ported_default, LINES, semantics=semantics, batch_size=4, **options))
        assert sizes == [4] * 6
    sizes = _searches(monkeypatch)
    got = _first_best(translate(ported_default, LINES, semantics=semantics, batch_size=4, **options))
    assert sizes == [len(LINES)]
    assert got == want
    assert len(set(map(len, want))) > 2


@pytest.mark.parametrize("semantics, options", [
    ("fairseq", {"sampling": True, "top_k": 5, "seed": 1}),
    ("fairseq", {"beam": 4, "no_repeat_ngram_size": 2}),
    ("hf", {"do_sample": True, "top_k": 5, "seed": 1}),
])
def test_batches_stay_apart_where_the_batch_matters(ported_default, monkeypatch, semantics, options) -> None:
    sizes = _searches(monkeypatch)
    translate(ported_default, LINES, semantics=semantics, batch_size=4, **options)
    assert sizes == [4] * 6


def test_encoder_runs_end_where_padding_would_grow() -> None:
    """Lines join a run while padding them to its widest costs at most
    ENCODER_RUN_SLACK x their own batches' widths."""
    from modelport.generation.groups import encoder_runs

    assert encoder_runs([5] * 4 + [6] * 4 + [12] * 4) == [(0, 8), (8, 12)]  # 9 x 12 > 1.25 x (44 + 12)
    assert encoder_runs([7] * 5) == [(0, 5)]
    assert encoder_runs([12] * 2 + [4] * 6) == [(0, 2), (2, 8)]  # 3 x 12 > 1.25 x 28
    assert encoder_runs([]) == []


@pytest.mark.parametrize("left", [True, False])  # fairseq pads on the left, Marian and hf on the right
def test_each_run_is_encoded_as_its_batch_alone(ported_default, left) -> None:
    """A group's encoder states, run by run, are those of each run's lines
    encoded as a batch of their own (at its own width), and zeros in the
    columns of padding beyond it."""
    import torch

    from modelport.generation.translate import pad_batch

    model, cfg = ported_default.models[0], ported_default.config
    ids = ported_default.tokenizer.encode_batch(LINES[:12])
    batches = [sorted(ids, key=len)[:6], sorted(ids, key=len)[6:]]  # a narrow batch, then a wide one
    src = pad_batch(batches[0] + batches[1], cfg.pad_token_id, left=left)
    with torch.inference_mode():
        got = model.encode(src, [(0, 6), (6, 12)]).hidden
        for rows, batch in zip((slice(0, 6), slice(6, 12)), batches):
            alone = model.encode(pad_batch(batch, cfg.pad_token_id, left=left)).hidden
            width = alone.size(1)
            assert width < src.size(1) or rows.start == 6
            cols = slice(src.size(1) - width, None) if left else slice(0, width)
            assert torch.equal(got[rows, cols], alone)
            rest = slice(0, src.size(1) - width) if left else slice(width, None)
            assert not got[rows, rest].any()


@pytest.mark.parametrize("semantics, options", [
    ("fairseq", {"beam": 2, "batch_size": 4}),
    ("hf", {"num_beams": 2, "max_new_tokens": 5, "batch_size": 4}),
    ("marian", {"beam_size": 2, "mini_batch": 4, "maxi_batch": 6}),  # Marian's own batching
])
def test_a_group_encodes_its_batches_apart(ported_default, tmp_path, monkeypatch, semantics, options) -> None:
    """translate hands each search the runs of its group's batches (encoder_runs of their widths)."""
    import modelport
    from tests.helpers.paths import DATA

    ported = (modelport.convert(str(DATA / "marian-trained" / "tiny11_ssru"), tmp_path / "ported")
              if semantics == "marian" else ported_default)
    seen = []

    def recorded(models, src, **kwargs):
        seen.append((len(src), kwargs.get("encoder_runs")))
        return generate(models, src, **kwargs)

    monkeypatch.setattr(translate_module, "generate", recorded)
    translate(ported, LINES, semantics=semantics, **options)
    assert len(seen) == 1
    lines, runs = seen[0]
    assert lines == len(LINES) and len(runs) > 1
    assert runs[0][0] == 0 and runs[-1][1] == lines and all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
