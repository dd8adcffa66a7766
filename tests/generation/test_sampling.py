"""Greedy search and seeded sampling against transformers' generate (same
weights in FSMT, see test_generation_hf), and seed determinism."""

from __future__ import annotations

import pytest
import torch

from modelport.errors import InvalidInputError
from modelport.generation import generate

pytest.importorskip("transformers")
pytest.importorskip("fairseq")

from tests.generation.test_generation_hf import PAD, pair  # noqa: E402,F401


def _hf_tokens(hf, src, **kw) -> list[list[int]]:
    out = hf.generate(input_ids=src, attention_mask=src.ne(PAD), num_beams=1, **kw).tolist()
    result = []
    for row in out:
        toks = row[1:]
        while toks and toks[-1] == PAD:
            toks.pop()
        result.append(toks)
    return result


def test_greedy_matches_transformers(pair) -> None:  # noqa: F811
    hf, ported, src = pair
    theirs = _hf_tokens(hf, src, do_sample=False, max_new_tokens=10)
    ours = generate(ported.models, src, greedy=True, max_new_tokens=10, forced_eos_token_id=2)
    assert [h[0]["tokens"] for h in ours] == theirs


@pytest.mark.parametrize("warpers", [{"temperature": 0.7, "top_k": 0}, {"top_k": 5}, {"top_p": 0.8, "top_k": 0},
                                     {"temperature": 1.3, "top_k": 8, "top_p": 0.9}])
def test_sampling_matches_transformers(pair, warpers) -> None:  # noqa: F811
    hf, ported, src = pair
    torch.manual_seed(11)
    theirs = _hf_tokens(hf, src, do_sample=True, max_new_tokens=10, **warpers)
    torch.manual_seed(11)
    ours = generate(ported.models, src, do_sample=True, max_new_tokens=10, forced_eos_token_id=2, **warpers)
    assert [h[0]["tokens"] for h in ours] == theirs


def test_seeded_sampling_is_reproducible_and_seed_dependent(pair) -> None:  # noqa: F811
    _, ported, src = pair
    runs = [generate(ported.models, src, do_sample=True, max_new_tokens=10, seed=s) for s in (1, 1, 2)]
    toks = [[h[0]["tokens"] for h in r] for r in runs]
    assert toks[0] == toks[1] and toks[0] != toks[2]
    h = runs[0][0][0]
    assert abs(h["score"] - sum(h["positional_scores"])) < 1e-5


def test_sampling_true_samples_as_do_sample_does(ported_default) -> None:
    """`translate(lines, sampling=True)` (the name of `translate --sampling`) ran greedy search, its
    top_k/seed/temperature silently unused."""
    lines = ["The very tired bakers are hungry .", "His coffee costs 2.10 euros .", "My big girl does not want to "
             "build her church ."] * 4
    greedy = [h[0].tokens for h in ported_default.translate(lines, greedy=True)]
    sampled = [h[0].tokens for h in ported_default.translate(lines, sampling=True, seed=1, temperature=1.5)]
    assert sampled == [h[0].tokens for h in ported_default.translate(lines, do_sample=True, seed=1, temperature=1.5)]
    assert sampled != greedy
    with pytest.raises(InvalidInputError, match="`do_sample=False` for greedy search"):
        ported_default.translate(lines, sampling=True, do_sample=False)


SAME = "My big girl does not want to build her church ."


def test_a_seeded_run_draws_anew_in_every_batch(ported_default) -> None:
    """Every batch of a seeded run reseeded with the seed itself, so line i + batch_size was line i's sample
    again: 600 copies of a line gave 8 distinct outputs at --batch-size 8."""
    kw = {"sampling": True, "seed": 1, "temperature": 1.5}
    out = [h[0].tokens for h in ported_default.translate([SAME] * 32, batch_size=4, **kw)]
    assert out == [h[0].tokens for h in ported_default.translate([SAME] * 32, batch_size=4, **kw)]  # reproducible
    batches = [tuple(map(tuple, out[i:i + 4])) for i in range(0, 32, 4)]
    assert len(set(batches)) == 8 and len(set(map(tuple, out))) > 8
    # the run's first batch draws as one seeded generate call (transformers after torch.manual_seed)
    assert out[:4] == [h[0].tokens for h in ported_default.translate([SAME] * 4, **kw)]
    # a part of a larger input (a chunk of a stream, a torchrun process's share) draws its own
    part = [h[0].tokens for h in ported_default.translate([SAME] * 4, first_line=4, **kw)]
    assert part != out[:4]
    assert part == [h[0].tokens for h in ported_default.translate([SAME] * 4, first_line=4, **kw)]


def test_a_seeded_stream_draws_anew_in_every_window(ported_default) -> None:
    kw = {"sampling": True, "seed": 3, "temperature": 1.5}
    out = [h[0].tokens for h in ported_default.translate_iterable(iter([SAME] * 8), batch_size=2, window=2, **kw)]
    assert out[:4] != out[4:]
    assert out[:4] == [h[0].tokens for h in ported_default.translate([SAME] * 4, batch_size=2, **kw)]
    with pytest.raises(InvalidInputError, match="first_line"):
        ported_default.translate([SAME], first_line=-1)


def test_the_cli_samples_a_file_without_repeating_batches(ported_default, tmp_path, capsys) -> None:
    from tests.helpers.cli import main

    source = tmp_path / "same.en"
    source.write_text(f"{SAME}\n" * 48, encoding="utf-8")
    args = ["translate", str(ported_default.path), "-i", str(source), "--sampling", "--seed", "1",
            "--temperature", "1.5", "--batch-size", "8"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 48 and len(set(out)) > 8
    assert main(args) == 0 and capsys.readouterr().out.splitlines() == out


def test_greedy_and_sampling_take_the_length_limits_export_hf_writes(ported_default) -> None:
    """A fairseq port sampled with transformers' default of 20 new tokens (outputs cut there); it now has
    what `export hf` writes, as transformers' generate on the export has."""
    from modelport.generation.translate import resolve_options, sampling_defaults

    gc = ported_default.generation_config
    eos = ported_default.config.eos_token_id
    _, opts = resolve_options(gc, None, {"do_sample": True, "top_k": 5}, eos_token_id=eos)
    assert opts == {"max_length": gc["max_positions"], "forced_eos_token_id": eos, "do_sample": True, "top_k": 5}
    _, opts = resolve_options(gc, None, {"greedy": True, "max_length": 7}, eos_token_id=eos)
    assert opts["max_length"] == 7  # the caller's own wins
    assert sampling_defaults({"semantics": "hf", "max_length": 20, "min_length": 0, "num_beams": 4}) == {
        "max_length": 20, "min_length": 0}
    assert sampling_defaults({"semantics": "marian", "max_length": 1000, "beam_size": 6}) == {}


def test_forced_bos_token_id_is_a_one_token_prefix_for_greedy_search_and_sampling(ported_default) -> None:
    """hf semantics gives a multilingual port's target language (BART's <s>) as forced_bos_token_id, which
    greedy search and sampling refused as an unknown option; it is their one-token forced prefix."""
    lines = ["Hello world."]
    forced = ported_default.translate(lines, greedy=True, forced_bos_token_id=100)
    assert forced[0][0].tokens[0] == 100
    assert forced[0][0].tokens == ported_default.translate(lines, greedy=True, prefix_tokens=(100,))[0][0].tokens
    with pytest.raises(InvalidInputError, match="not both"):
        ported_default.translate(lines, do_sample=True, forced_bos_token_id=100, prefix_tokens=(100,))
