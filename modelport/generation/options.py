"""Decoding options: each semantics' options dataclass, and the value parsers
of the decoding flags.

The dataclasses hold the options each framework exposes, with its defaults
(the registry in :mod:`modelport.generation.semantics` says which belongs to
which semantics). Each parser takes the text of a command-line value and
returns it converted, or raises :class:`argparse.ArgumentTypeError` with
"must be B, but is C" so argparse prints one line naming the flag; the CLI
and the option table share them. Imports no torch (``import modelport.cli``
must stay fast).
"""

from __future__ import annotations

import argparse
import hashlib
import numbers
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

from modelport import values
from modelport.errors import InvalidInputError
from modelport.values import Kind

# sentences per batch when none is given: translate (and its CLI), validate
TRANSLATE_BATCH_SIZE = 32
VALIDATE_BATCH_SIZE = 16

# lines per chunk of a corpus translated under torchrun (generation/shards.py; the unit of resuming)
SHARD_CHUNK_LINES = 256


# ---------------------------------------------------------------------------
# what a number option may be: the flags' value parsers and the options' checks


@dataclass(frozen=True)
class Rule:
    """A number option: its type (int or float) and the values it takes
    (:class:`~modelport.values.Kind`, shared with the converters, which read the
    same options from files). One rule serves the command line (:meth:`parse`)
    and the Python API (:meth:`check`), so both refuse the same values with the
    same words."""

    kind: type
    values: Kind

    def parse(self, text: str) -> Any:
        """A flag's value from its text; argparse prints the error naming the flag."""
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(self.values.refusal(repr(text))) from None
        if not self.values.admits(value):
            raise argparse.ArgumentTypeError(self.values.refusal(_shown(text, quoted=False)))
        return value

    def check(self, name: str, value: Any) -> Any:
        """``value`` of option ``name`` given from Python, as a Python int or float
        (numpy's numbers taken too); refused unless it passes (a bool is not a number here)."""
        kind = numbers.Integral if self.kind is int else numbers.Real
        if not isinstance(value, bool) and isinstance(value, kind):
            number = int(value) if self.kind is int or type(value) is int else float(value)
            if self.values.admits(number):
                return number
        raise InvalidInputError(f"`{name}` {self.values.refusal(_shown(value))}")


def _shown(value: Any, quoted: bool = True) -> str:
    """``value`` as an error shows it, cut to 40 characters (a 400-digit number is one word, not a screen)."""
    text = repr(value) if quoted else str(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


POSITIVE_INT = Rule(int, values.POSITIVE_INTEGER)
NONNEGATIVE_INT = Rule(int, values.COUNT)
ANY_INT = Rule(int, values.INTEGER)
POSITIVE_FLOAT = Rule(float, values.POSITIVE)
NONNEGATIVE_FLOAT = Rule(float, values.NONNEGATIVE)
FINITE_FLOAT = Rule(float, values.FINITE)
MARIAN_NONNEGATIVE_FLOAT = Rule(float, values.NONNEGATIVE_FLOAT32)
MARIAN_POSITIVE_FLOAT = Rule(float, values.POSITIVE_FLOAT32)
MARIAN_FLOAT = Rule(float, values.FLOAT32)
PROBABILITY = Rule(float, values.PROBABILITY)
SMOOTHING = Rule(float, values.SMOOTHING)

positive_int = POSITIVE_INT.parse
nonnegative_int = NONNEGATIVE_INT.parse
positive_float = POSITIVE_FLOAT.parse
nonnegative_float = NONNEGATIVE_FLOAT.parse
finite_float = FINITE_FLOAT.parse
probability = PROBABILITY.parse
smoothing = SMOOTHING.parse


def ruled(default: Any, rule: Rule) -> Any:
    """A dataclass field whose values (None excepted) :func:`check_fields` tests with ``rule``."""
    return field(default=default, metadata={"rule": rule})


def check_fields(options: Any) -> None:
    """Test every field of a (frozen) options dataclass that has a rule (:func:`ruled`), keeping the value
    :meth:`Rule.check` returns; None is "not given"."""
    for f in fields(options):
        rule = f.metadata.get("rule")
        value = getattr(options, f.name)
        if rule is not None and value is not None:
            object.__setattr__(options, f.name, rule.check(f.name, value))


def option_defaults(options: type) -> dict[str, Any]:
    """Each field of an options dataclass with its default: what a search decodes with where nothing is given."""
    return {f.name: f.default for f in fields(options) if f.default is not MISSING}


def _check_bools(options: Any, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if not isinstance(value, bool):
            raise InvalidInputError(f"`{name}` must be True or False, but is {value!r}")


def _as_tuples(options: Any, *names: str) -> None:
    """Hold the sequences ``names`` (a list from JSON or a caller; None stays None) as tuples."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not isinstance(value, tuple):
            object.__setattr__(options, name, tuple(value))


@dataclass(frozen=True, kw_only=True)
class FairseqOptions:
    """fairseq ``fairseq-generate``/hub options (same names, same defaults)."""

    beam: int = ruled(5, POSITIVE_INT)
    lenpen: float = ruled(1.0, FINITE_FLOAT)
    max_len_a: float = ruled(0.0, FINITE_FLOAT)
    max_len_b: int = ruled(200, ANY_INT)
    min_len: int = ruled(1, NONNEGATIVE_INT)
    unkpen: float = ruled(0.0, FINITE_FLOAT)
    no_repeat_ngram_size: int = ruled(0, NONNEGATIVE_INT)
    nbest: int = ruled(1, POSITIVE_INT)
    normalize_scores: bool = True
    temperature: float = ruled(1.0, POSITIVE_FLOAT)
    # SequenceGenerator's ``max_len`` (0 = the decoder's max positions)
    max_len: int = ruled(0, NONNEGATIVE_INT)
    # fairseq 0.12's CPU n-gram blocker (what fairseq-generate and the hub run
    # without the CUDA extension) looks for the pad-filled end of its token
    # buffer instead of the last generated tokens, so it blocks nothing;
    # "cpu-0.12" reproduces it as written and is the default: it is what the
    # reference computes. "intended" blocks as fairseq <= 0.10 and 0.12's CUDA
    # kernel do (the last n - 1 tokens, leading EOS included).
    ngram_blocking: Literal["intended", "cpu-0.12"] = "cpu-0.12"
    # SequenceGenerator's ``prefix_tokens`` (the same for every sentence): at
    # step i < len, every token but prefix_tokens[i] is -inf (it keeps its
    # log-prob) and min_len does not apply; multilingual ports force the
    # target language token this way
    prefix_tokens: tuple[int, ...] = ()
    # SequenceGenerator's ``eos`` argument (None: the dictionary's </s>): the
    # token the decoder starts from and the search stops on. mBART-25 fine-tunes
    # (translation_from_pretrained_bart) pass the target language token
    generator_eos: int | None = None
    # the padded source width of each line's batch, which sets its length cap (``max_len_a * width +
    # max_len_b``), when lines of several batches are decoded together (translate does); None: the width of
    # the lines given
    batch_widths: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        _check_bools(self, "normalize_scores")
        _as_tuples(self, "prefix_tokens", "batch_widths")
        if self.ngram_blocking not in ("intended", "cpu-0.12"):
            raise InvalidInputError(f"`ngram_blocking` must be \"intended\" or \"cpu-0.12\", but is "
                                    f"{self.ngram_blocking!r}"[:200])
        if self.nbest > self.beam:  # fairseq returns at most a beam's worth; the CLI refuses it alike
            raise InvalidInputError(f"`nbest` must be at most the beam size ({self.beam}), but is {self.nbest}")
        if self.ngram_blocking == "intended" and self.no_repeat_ngram_size == 1:
            # fairseq's search fails on it too (assert step < max_len): the cap forces </s>, which is blocked
            raise InvalidInputError("`no_repeat_ngram_size` 1 with intended blocking blocks </s>, the token the "
                                    "decoder starts from, so no hypothesis can end: use 2 or more")


@dataclass(frozen=True, kw_only=True)
class HFOptions:
    """transformers ``generate`` options for beam search (``num_beams`` > 1 or 1)."""

    num_beams: int = ruled(1, POSITIVE_INT)
    length_penalty: float = ruled(1.0, FINITE_FLOAT)
    early_stopping: bool | str = False
    max_length: int | None = ruled(None, POSITIVE_INT)
    max_new_tokens: int | None = ruled(None, POSITIVE_INT)
    min_length: int = ruled(0, NONNEGATIVE_INT)
    min_new_tokens: int | None = ruled(None, NONNEGATIVE_INT)
    num_return_sequences: int = ruled(1, POSITIVE_INT)
    no_repeat_ngram_size: int = ruled(0, NONNEGATIVE_INT)
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | None = None
    decoder_start_token_id: int | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.early_stopping not in (True, False, "never"):
            raise InvalidInputError(f"`early_stopping` must be True, False or \"never\", "
                                    f"but is {self.early_stopping!r}")


@dataclass(frozen=True, kw_only=True)
class MarianOptions:
    """``marian-decoder`` options (decoder.yml names, ``-`` as ``_``; Marian's defaults).

    ``n_best``: False returns the best hypothesis, True ``beam_size`` of them
    (Marian's ``--n-best``), an int that many. ``weights``: one per ensemble member.
    ``alignment``: each hypothesis also gets its soft alignment (Marian's ``--alignment``).
    """

    beam_size: int = ruled(12, POSITIVE_INT)
    normalize: float = ruled(0.0, MARIAN_NONNEGATIVE_FLOAT)
    word_penalty: float = ruled(0.0, MARIAN_FLOAT)
    max_length: int = ruled(1000, POSITIVE_INT)
    max_length_factor: float = ruled(3.0, MARIAN_POSITIVE_FLOAT)
    max_length_crop: bool = False
    allow_unk: bool = False
    n_best: bool | int = False
    weights: tuple[float, ...] | None = None
    # the padded source width of each line's Marian batch, which sets its length cap, when lines of several
    # batches are decoded together (translate does); None: the width of the lines given
    batch_widths: tuple[int, ...] | None = None
    # --alignment: "hard", "soft" or a threshold (generation/alignment.py); None records nothing
    alignment: str | float | None = None
    # --transformer-guided-alignment-layer of the model (its model.yml): "last" or a 1-based layer number
    alignment_layer: str = "last"
    # --shortlist: a LexicalShortlist (generation/shortlist.py); translate() loads Marian's values
    # (FILE [FIRST [BEST [THRESHOLD]]]) with the port's vocabularies. None: the whole vocabulary
    shortlist: Any = None

    def __post_init__(self) -> None:
        check_fields(self)
        _check_bools(self, "max_length_crop", "allow_unk")
        if not isinstance(self.n_best, bool):  # True/False, or how many
            object.__setattr__(self, "n_best", POSITIVE_INT.check("n_best", self.n_best))
        if self.weights is not None:  # a tuple, also from a list (JSON or a caller)
            object.__setattr__(self, "weights", tuple(MARIAN_FLOAT.check("weights", w) for w in self.weights))
        _as_tuples(self, "batch_widths")


@dataclass(frozen=True, kw_only=True)
class SamplingOptions:
    """transformers ``generate`` options for greedy search and sampling."""

    do_sample: bool = False
    temperature: float = ruled(1.0, POSITIVE_FLOAT)
    top_k: int = ruled(0, NONNEGATIVE_INT)
    top_p: float = ruled(1.0, PROBABILITY)
    max_length: int | None = ruled(None, POSITIVE_INT)
    max_new_tokens: int | None = ruled(None, POSITIVE_INT)
    min_length: int = ruled(0, NONNEGATIVE_INT)
    min_new_tokens: int | None = ruled(None, NONNEGATIVE_INT)
    forced_eos_token_id: int | None = None
    decoder_start_token_id: int | None = None
    seed: int | None = ruled(None, ANY_INT)
    # the tokens the decoder is forced to start with (a multilingual port's target language, BART's <s>:
    # ``translate`` places them as the folder's framework does); the first is transformers' forced_bos_token_id
    prefix_tokens: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self)
        _check_bools(self, "do_sample")
        _as_tuples(self, "prefix_tokens")


def split_options(cls: type, options: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Build ``cls`` from the keys of ``options`` it knows (None = its default); return it and the rest."""
    names = {f.name for f in fields(cls)}
    known = {k: v for k, v in options.items() if k in names and v is not None}
    return cls(**known), {k: v for k, v in options.items() if k not in names}


def hf_length_limits(opts: HFOptions | SamplingOptions, max_positions: int) -> tuple[int, int]:
    """transformers' ``(max_length, min_length)``, both counting the decoder
    start token: ``max_new_tokens`` wins over ``max_length`` (default 20 new
    tokens, capped by the positions); ``min_new_tokens`` over ``min_length``."""
    if opts.max_new_tokens is not None:
        max_length = opts.max_new_tokens + 1
    elif opts.max_length is not None:
        max_length = opts.max_length
    else:
        max_length = 20 + 1
    # the model has no positions past its own (as fairseq semantics caps max_len): 10**8 asked for a buffer of
    # 10**8 steps and failed allocating it, where transformers' generate fails at the first position past them
    max_length = min(max_length, max_positions)
    min_length = opts.min_new_tokens + 1 if opts.min_new_tokens is not None else opts.min_length
    return max_length, min_length


def part_seed(seed: int, first_line: int, batch: int) -> int:
    """The seed of one search of a seeded sampling run: batch ``batch`` of the
    lines that begin at input line ``first_line`` (0-based; a chunk of a
    stream, a window, a torchrun process's share). The run's first search
    takes ``seed`` itself (one batch draws as transformers' ``generate``
    after ``torch.manual_seed(seed)``); every other takes its own seed derived
    from the three numbers, so no two searches of a run repeat the same
    random draws, and a part draws the same whichever process translates it."""
    if first_line == 0 and batch == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{first_line}:{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch.Generator.manual_seed takes a 64-bit value


def early_stopping(value: str) -> bool | str:
    """transformers' ``early_stopping`` from its flag spelling: true, false or never."""
    return {"true": True, "false": False}.get(value, value)


__all__ = ["TRANSLATE_BATCH_SIZE", "VALIDATE_BATCH_SIZE", "FairseqOptions", "HFOptions", "MarianOptions",
           "SamplingOptions", "early_stopping", "finite_float", "hf_length_limits", "nonnegative_float",
           "nonnegative_int", "option_defaults", "part_seed", "positive_float", "positive_int", "probability",
           "smoothing", "split_options"]
