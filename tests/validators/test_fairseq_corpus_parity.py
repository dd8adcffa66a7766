"""fairseq semantics on 200 real lines: n-gram blocking, n-best lists with
scores, min_len and max_len_b, against fairseq's own ``SequenceGenerator``.

Each trained fixture (the embedded en->de ``assets/default-model``; the
en->pg ``assets/fixture-piglatin`` once built) translates the 200 lines of
its ``test.en`` with ``modelport``'s ``translate`` (its own
length-sorted batches) and with fairseq (the same batches, left-padded as
fairseq collates them); every hypothesis of every n-best list must have
identical tokens and a score within 1e-4 of fairseq's. fairseq's
``NGramRepeatBlock`` itself is also compared, call by call, with modelport's
transcription on token buffers built to make it block.
"""

from __future__ import annotations

import json

import pytest
import torch

import modelport
from modelport.generation.beam import _block_ngrams, _block_ngrams_cpu_012

pytest.importorskip("fairseq")

from tests.helpers.fairseq_ref import in_translate_batches  # noqa: E402
from tests.helpers.paths import CORPUS, DEFAULT_MODEL, ROOT  # noqa: E402

from modelport.validators.references.fairseq_generator import FairseqReference  # noqa: E402

TOL = 1e-4
N_LINES = 200
PIGLATIN_MODEL = ROOT / "assets" / "fixture-piglatin"

# name -> decoding options (fairseq-generate names): the cases of issue #18's table, with n-best lists
CASES = {
    "greedy": {"beam": 1},
    "beam5-nbest5": {"beam": 5, "nbest": 5},
    "beam4-lenpen0.6-nbest4": {"beam": 4, "lenpen": 0.6, "nbest": 4},
    "beam5-maxlenb12-nbest5": {"beam": 5, "nbest": 5, "max_len_b": 12},
    "beam5-minlen8-nbest5": {"beam": 5, "nbest": 5, "min_len": 8},
    "ngram2-nbest5": {"beam": 5, "nbest": 5, "no_repeat_ngram_size": 2},
    "ngram3-nbest5": {"beam": 5, "nbest": 5, "no_repeat_ngram_size": 3},
    "ngram3-nbest5-minlen8": {"beam": 5, "nbest": 5, "no_repeat_ngram_size": 3, "min_len": 8},
    "lenpen0.6-nbest5-maxlenb12": {"beam": 5, "nbest": 5, "lenpen": 0.6, "max_len_b": 12},
}


# trained fixtures: (model folder, target language, test lines)
FIXTURES = {
    "default": (DEFAULT_MODEL, "de", CORPUS / "test.en"),  # en->de, shipped
    "piglatin": (PIGLATIN_MODEL, "pg", PIGLATIN_MODEL / "test.en"),  # en->pg: scripts/make_piglatin_model.sh
}


@pytest.fixture(scope="module", params=list(FIXTURES))
def setup(request, tmp_path_factory):
    model, target_lang, test_lines = FIXTURES[request.param]
    if not (model / "model.pt").exists() or not test_lines.exists():
        pytest.skip(f"trained fixture {model.name} not built")
    ported = modelport.convert(str(model), tmp_path_factory.mktemp("corpus") / "ported",
                               source_lang="en", target_lang=target_lang)
    tok = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text())
    ref = FairseqReference(str(model), tok["source_lang"], tok["target_lang"])
    lines = test_lines.read_text(encoding="utf-8").splitlines()[:N_LINES]
    return ported, ref, lines


@pytest.mark.parametrize("case", list(CASES))
def test_translate_equals_fairseq_on_200_lines(setup, case) -> None:
    ported, ref, lines = setup
    opts = CASES[case]
    ours = ported.translate(lines, batch_size=64, **opts)
    srcs = [ported.tokenizer.encode(line) for line in lines]
    theirs = in_translate_batches(lambda batch: ref.generate(batch, **dict(opts)), srcs, 64)
    nbest = opts.get("nbest", 1)
    bad = []
    for i, (xs, ys) in enumerate(zip(ours, theirs)):
        assert len(xs) == len(ys) == nbest, i
        for rank, (x, y) in enumerate(zip(xs, ys)):
            if x["tokens"] != y["tokens"] or abs(x["score"] - y["score"]) > TOL:
                bad.append((i, rank, x["tokens"], y["tokens"], x["score"], y["score"]))
    assert not bad, f"{len(bad)}/{N_LINES * nbest} hypotheses differ, first: {bad[0]}"
    assert sum(len(hyps[0]["tokens"]) for hyps in theirs) > 5 * N_LINES  # real translations, not stubs
    if "min_len" in opts:
        assert min(len(h["tokens"]) for hyps in ours for h in hyps) >= opts["min_len"] + 1  # EOS included
    if "max_len_b" in opts:
        assert max(len(h["tokens"]) for hyps in ours for h in hyps) == opts["max_len_b"] + 1  # it cuts


def _buffers(n: int, seed: int) -> list[tuple[torch.Tensor, int]]:
    """Token buffers as SequenceGenerator holds them (EOS, tokens, pad to
    ``max_len + 2``), from a vocabulary of 6 so n-grams repeat, some with pad
    tokens written and some written to the last column, so that fairseq
    0.12's CPU rule (which reads the buffer's end) does block."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(40):
        rows, width = 6, int(torch.randint(3, 12, (1,), generator=g))
        step = int(torch.randint(0, width - 1, (1,), generator=g))
        tokens = torch.full((rows, width), 1)
        tokens[:, 0] = 2
        tokens[:, 1: step + 1] = torch.randint(1, 7, (rows, step), generator=g)  # 1 = pad, sometimes
        if step + 1 < width and bool(torch.rand(1, generator=g) < 0.3):
            tokens[:, step + 1:] = torch.randint(1, 7, (rows, width - step - 1), generator=g)
        out.append((tokens, step))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_cpu_rule_equals_fairseq_ngram_repeat_block(n) -> None:
    """``ngram_blocking="cpu-0.12"`` is fairseq 0.12's ``NGramRepeatBlock`` on
    CPU, call by call; ``"intended"`` is the same code given only the written
    part of the buffer (what its CUDA kernel and fairseq <= 0.10 look at), for
    n >= 2."""
    from fairseq.ngram_repeat_block import NGramRepeatBlock

    blocker = NGramRepeatBlock(n, use_extension=False)
    blocked_any = {"cpu": 0, "intended": 0}
    for tokens, step in _buffers(n, seed=n):
        lprobs = torch.randn(tokens.size(0), 8)
        expected = blocker(tokens, lprobs.clone(), tokens.size(0), 1, step)
        got = _block_ngrams_cpu_012(tokens, lprobs.clone(), step, n)
        assert torch.equal(got, expected), (tokens, step)
        blocked_any["cpu"] += int(torch.isinf(expected).sum())
        if n == 1:  # the Python rule's empty window never matches; the CUDA kernel bans every earlier token
            continue
        written = tokens[:, : step + 1]
        expected = blocker(written, lprobs.clone(), tokens.size(0), 1, step)
        got = _block_ngrams(tokens, lprobs.clone(), step, n)
        assert torch.equal(got, expected), (tokens, step)
        blocked_any["intended"] += int(torch.isinf(expected).sum())
    if n > 1:  # the buffers make both rules bite
        assert blocked_any["cpu"] > 0 and blocked_any["intended"] > 0
