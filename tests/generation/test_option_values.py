"""Decoding options given from Python are checked as the command line checks them
(one rule per kind of value, modelport/generation/options.py): a bad value is an
InvalidInputError naming the option. Before, ``beam=0`` was a ZeroDivisionError,
``max_len_a=inf`` an OverflowError (``--max-len-a inf`` exited 1 with a traceback: see
tests/hostile/test_cli_faults.py),
``lenpen=nan`` was blamed on the weights, and ``no_repeat_ngram_size=-1`` or
``batch_size=-1`` were used as given."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import InvalidInputError

BAD = [
    ({"beam": 0}, "`beam` must be a positive integer, but is 0"),
    ({"beam": -1}, "`beam` must be a positive integer"),
    ({"beam": "5"}, "`beam` must be a positive integer, but is '5'"),
    ({"beam": 2.5}, "`beam` must be a positive integer"),
    ({"beam": True}, "`beam` must be a positive integer, but is True"),
    ({"nbest": 0}, "`nbest` must be a positive integer"),
    ({"lenpen": float("nan")}, "`lenpen` must be a finite number, but is nan"),
    ({"lenpen": 10**400}, r"`lenpen` must be a finite number, but is 10{36}\.\.\.$"),  # was an OverflowError
    ({"max_len_a": float("inf")}, "`max_len_a` must be a finite number, but is inf"),
    ({"unkpen": "1"}, "`unkpen` must be a finite number"),
    ({"no_repeat_ngram_size": -1}, "`no_repeat_ngram_size` must be an integer >= 0"),
    ({"batch_size": -1}, "`batch_size` must be a positive integer"),
    ({"max_tokens": 0}, "`max_tokens` must be a positive integer"),
    ({"semantics": "marian", "beam_size": 0}, "`beam_size` must be a positive integer"),
    ({"semantics": "marian", "n_best": 0}, "`n_best` must be a positive integer"),
    ({"semantics": "marian", "weights": [float("nan")]}, "`weights` must be a number that a float32 holds"),
    ({"semantics": "marian", "word_penalty": -10**400}, "`word_penalty` must be a number that a float32 holds"),
    ({"semantics": "marian", "normalize": 10**39}, "`normalize` must be a number >= 0 that a float32 holds"),
    ({"semantics": "marian", "mini_batch": "2"}, "`mini_batch` must be a positive integer"),
    ({"semantics": "marian", "allow_unk": "yes"}, "`allow_unk` must be True or False"),
    ({"semantics": "hf", "num_beams": 0}, "`num_beams` must be a positive integer"),
    ({"semantics": "hf", "early_stopping": "sometimes"}, "`early_stopping` must be True, False or \"never\""),
    ({"semantics": "hf", "do_sample": True, "temperature": 0}, "`temperature` must be a number > 0"),
    ({"semantics": "hf", "do_sample": True, "top_p": 2.0}, r"`top_p` must be a number in \(0, 1\]"),
    ({"ngram_blocking": "bogus"}, "`ngram_blocking` must be \"intended\" or \"cpu-0.12\", but is 'bogus'"),
    ({"beam": 2, "nbest": 3}, r"`nbest` must be at most the beam size \(2\), but is 3"),  # was cut to 2
    # fairseq asserts (step < max_len): the cap forces </s>, which a blocked unigram bans
    ({"no_repeat_ngram_size": 1, "ngram_blocking": "intended"}, "blocks </s>, the token the decoder starts from"),
    # buffers of beam x length for every line: terabytes, a RuntimeError from the allocator
    ({"semantics": "hf", "num_beams": 10**6}, "this search would hold 1,000,000 hypotheses"),
    # the folder's min_len 1 over a length cap of 0: fairseq refuses it too; the message says what to change
    ({"max_len_b": 0}, r"which is 0 here, but is 1 \(fairseq refuses it too\): lower --min-len or raise "),
]


@pytest.mark.parametrize("options,message", BAD, ids=[str(o) for o, _ in BAD])
def test_bad_option_values_from_python_are_refused_by_name(ported_default, options, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ported_default.translate(["Hello"], **options)


def test_hf_max_length_is_capped_by_the_positions(ported_default) -> None:
    """10**8 allocated a buffer of 10**8 steps per hypothesis (RuntimeError: 12 GB)."""
    cap = ported_default.config.max_target_positions
    assert ported_default.translate(["Hello"], semantics="hf", max_length=10**8)[0][0].tokens == \
        ported_default.translate(["Hello"], semantics="hf", max_length=cap)[0][0].tokens


def test_a_huge_finite_max_len_a_is_capped_by_the_positions(ported_default) -> None:
    """1e308 x the source width is inf, which int() refused (OverflowError, exit 1 from the CLI)."""
    assert ported_default.translate(["Hello"], max_len_a=1e308)[0][0].text == ported_default.translate(
        ["Hello"], max_len_a=1000)[0][0].text


def test_numpy_numbers_are_taken_as_python_numbers(ported_default) -> None:
    plain = ported_default.translate(["Hello world"], beam=3, lenpen=0.5)
    assert ported_default.translate(["Hello world"], beam=np.int64(3), lenpen=np.float32(0.5)) == plain


def test_a_callers_marian_name_overrides_the_value_carried_over_from_a_fairseq_folder(ported_default) -> None:
    """The folder's fairseq ``beam`` (5) is carried over to Marian's ``beam_size``; a caller's ``beam_size=``
    must win over it (it lost to the carried-over alias: 5 hypotheses for beam_size=2)."""
    hyps = ported_default.translate(["Hello world"], semantics="marian", beam_size=2, n_best=True)
    assert len(hyps[0]) == 2
    assert len(ported_default.translate(["Hello world"], semantics="marian", n_best=True)[0]) == 5

