"""The registries behind decoding and tokenization: the semantics table (its
options, aliases and step algorithms), the decoding flags built from it, and
the tokenizer types."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass

import pytest

from modelport.errors import InvalidInputError
from modelport.generation.options import positive_int, probability
from modelport.generation.semantics import (DECODING_GROUP_TITLE, DECODING_OPTIONS, SEMANTICS, FairseqOptions,
                                            HFOptions, MarianOptions, Semantics, add_decoding_arguments,
                                            decoding_kwargs, parse_options)


def test_the_registry_and_the_flags_import_no_torch() -> None:
    code = ("import sys, modelport.generation.semantics, modelport.generation.options, modelport.generation; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_each_semantics_parses_its_options_and_the_aliases() -> None:
    assert set(SEMANTICS) == {"fairseq", "hf", "marian"}
    assert parse_options("fairseq", {"beam": 4, "lenpen": 0.5, "semantics": "fairseq"}) == \
        FairseqOptions(beam=4, lenpen=0.5)
    assert parse_options("hf", {"beam": 3, "lenpen": 2.0, "nbest": 2, "min_len": 4}) == \
        HFOptions(num_beams=3, length_penalty=2.0, num_return_sequences=2, min_length=4)
    assert parse_options("marian", {"beam": 6, "lenpen": 0.6, "nbest": 2, "weights": [1, 0.5]}) == \
        MarianOptions(beam_size=6, normalize=0.6, n_best=2, weights=(1, 0.5))
    # which one wins when both are given: hf keeps its own name, marian the caller's alias
    assert parse_options("hf", {"beam": 3, "num_beams": 5}).num_beams == 5
    assert parse_options("marian", {"beam": 3, "beam_size": 5}).beam_size == 3
    assert parse_options("fairseq", {"beam": None}).beam == 5  # None: the default


def test_unknown_options_and_semantics_name_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="option\\(s\\) normalize are not known to the fairseq semantics"):
        parse_options("fairseq", {"normalize": 1.0})
    with pytest.raises(InvalidInputError, match="`sockeye` is not a known semantics \\(known: fairseq, hf, marian\\)"):
        parse_options("sockeye", {})


def test_a_new_semantics_is_one_entry(monkeypatch) -> None:
    from modelport.generation.translate import make_algorithm

    @dataclass(frozen=True, kw_only=True)
    class ToyOptions:
        width: int = 1

    made = []

    def toy(cfg, opts, max_positions):
        made.append((cfg, opts, max_positions))
        return "toy-search"

    monkeypatch.setitem(SEMANTICS, "toy", Semantics("toy", ToyOptions, toy, {"beam": "width"}))
    assert make_algorithm("cfg", 9, "toy", {"beam": 3}) == "toy-search"
    assert made == [("cfg", ToyOptions(width=3), 9)]


def _parser(search_only: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelport")
    add_decoding_arguments(p.add_argument_group(DECODING_GROUP_TITLE), search_only)
    return p


def test_translate_and_validate_flags_come_from_the_table() -> None:
    translate = {a.option_strings[0] for a in _parser(False)._actions if a.option_strings[0] != "-h"}
    validate = {a.option_strings[0] for a in _parser(True)._actions if a.option_strings[0] != "-h"}
    assert translate == {o.flag for o in DECODING_OPTIONS}
    marian = {"--normalize", "--word-penalty", "--max-length", "--max-length-factor", "--max-length-crop",
              "--mini-batch", "--maxi-batch", "--maxi-batch-sort", "--allow-unk", "--shortlist"}
    assert validate == {"--beam", "--lenpen", "--nbest", "--max-len-a", "--max-len-b", "--min-len", "--unkpen",
                        "--no-repeat-ngram-size", "--semantics", "--batch-size", "--max-tokens", *marian}
    # validate takes Marian's own flags on Marian ports only (refused on others before loading)
    assert {o.flag for o in DECODING_OPTIONS if o.search_only_semantics} == marian
    for o in DECODING_OPTIONS:
        assert set(o.semantics) <= set(SEMANTICS), o.flag
    choices = {p: next(a.choices for a in _parser(p)._actions if a.dest == "semantics") for p in (False, True)}
    assert choices == {False: ["fairseq", "hf", "marian"], True: ["fairseq", "hf", "marian"]}
    assert "(default: 16)" in _parser(True).format_help() and "(default: 32;" in _parser(False).format_help()


def test_flags_become_keyword_options() -> None:
    args = _parser(False).parse_args(["--beam", "4", "--normalize", "--early-stopping", "never", "--allow-unk",
                                      "--sampling", "--sampling-topk", "5", "--sampling-topp", "0.9"])
    assert decoding_kwargs(vars(args)) == {"beam": 4, "normalize": 1.0, "early_stopping": "never",
                                           "allow_unk": True, "do_sample": True, "top_k": 5, "top_p": 0.9}
    args = _parser(False).parse_args(["--early-stopping", "true"])
    assert decoding_kwargs(vars(args)) == {"early_stopping": True}
    with pytest.raises(InvalidInputError, match="--sampling-topk needs --sampling"):
        decoding_kwargs(vars(_parser(False).parse_args(["--sampling-topk", "5"])))
    args = _parser(True).parse_args(["--beam", "2", "--semantics", "hf", "--batch-size", "3"])
    assert decoding_kwargs(vars(args), search_only=True) == {"beam": 2, "semantics": "hf", "batch_size": 3}


def test_value_parsers_say_what_they_want() -> None:
    assert positive_int("3") == 3 and probability("1") == 1.0
    with pytest.raises(argparse.ArgumentTypeError, match="must be a positive integer, but is 0"):
        positive_int("0")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number in \\(0, 1\\], but is 'x'"):
        probability("x")


def test_tokenizer_types_are_one_registry_of_full_tokenizers(tmp_path) -> None:
    from modelport.tokenizers import TOKENIZERS, Tokenizer, load_tokenizer

    assert set(TOKENIZERS) == {"fairseq_moses_bpe", "fairseq_spm", "fairseq_gpt2_bpe", "marian_spm", "t5_spm"}
    for kind, cls in TOKENIZERS.items():
        assert cls.kind == kind
        for name in ("from_dir", "tokenize", "encode", "encode_target", "encode_batch", "id_to_tokens", "decode",
                     "decode_batch", "skips_special_tokens"):
            assert hasattr(cls, name), (kind, name)
    (tmp_path / "tokenizer_config.json").write_text('{"type": "bpe"}')
    with pytest.raises(InvalidInputError, match="`bpe` is not a known tokenizer type \\(known: fairseq_gpt2_bpe, "
                                                "fairseq_moses_bpe, fairseq_spm, marian_spm, t5_spm\\)"):
        load_tokenizer(tmp_path)
    assert isinstance(Tokenizer, type)
