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
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

# sentences per batch when none is given: translate (and its CLI), validate
TRANSLATE_BATCH_SIZE = 32
VALIDATE_BATCH_SIZE = 16

# lines per chunk of a corpus translated under torchrun (generation/shards.py; the unit of resuming)
SHARD_CHUNK_LINES = 256


@dataclass(frozen=True, kw_only=True)
class FairseqOptions:
    """fairseq ``fairseq-generate``/hub options (same names, same defaults)."""

    beam: int = 5
    lenpen: float = 1.0
    max_len_a: float = 0.0
    max_len_b: int = 200
    min_len: int = 1
    unkpen: float = 0.0
    no_repeat_ngram_size: int = 0
    nbest: int = 1
    normalize_scores: bool = True
    temperature: float = 1.0
    # SequenceGenerator's ``max_len`` (0 = the decoder's max positions)
    max_len: int = 0
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
        if not isinstance(self.prefix_tokens, tuple):  # a list from JSON or a caller
            object.__setattr__(self, "prefix_tokens", tuple(self.prefix_tokens))
        if self.batch_widths is not None and not isinstance(self.batch_widths, tuple):
            object.__setattr__(self, "batch_widths", tuple(self.batch_widths))


@dataclass(frozen=True, kw_only=True)
class HFOptions:
    """transformers ``generate`` options for beam search (``num_beams`` > 1 or 1)."""

    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    max_length: int | None = None
    max_new_tokens: int | None = None
    min_length: int = 0
    min_new_tokens: int | None = None
    num_return_sequences: int = 1
    no_repeat_ngram_size: int = 0
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | None = None
    decoder_start_token_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class MarianOptions:
    """``marian-decoder`` options (decoder.yml names, ``-`` as ``_``; Marian's defaults).

    ``n_best``: False returns the best hypothesis, True ``beam_size`` of them
    (Marian's ``--n-best``), an int that many. ``weights``: one per ensemble member.
    ``alignment``: each hypothesis also gets its soft alignment (Marian's ``--alignment``).
    """

    beam_size: int = 12
    normalize: float = 0.0
    word_penalty: float = 0.0
    max_length: int = 1000
    max_length_factor: float = 3.0
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
        if self.weights is not None and not isinstance(self.weights, tuple):  # a list from JSON or a caller
            object.__setattr__(self, "weights", tuple(self.weights))
        if self.batch_widths is not None and not isinstance(self.batch_widths, tuple):
            object.__setattr__(self, "batch_widths", tuple(self.batch_widths))


@dataclass(frozen=True, kw_only=True)
class SamplingOptions:
    """transformers ``generate`` options for greedy search and sampling."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_length: int | None = None
    max_new_tokens: int | None = None
    min_length: int = 0
    min_new_tokens: int | None = None
    forced_eos_token_id: int | None = None
    decoder_start_token_id: int | None = None
    seed: int | None = None


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
        max_length = min(20 + 1, max_positions)
    min_length = opts.min_new_tokens + 1 if opts.min_new_tokens is not None else opts.min_length
    return max_length, min_length


# ---------------------------------------------------------------------------
# value parsers of the flags


def _number(text: str, kind: type, wanted: str, ok: Callable[[Any], bool]) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, but is {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {wanted}, but is {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def nonnegative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a number > 0", lambda v: math.isfinite(v) and v > 0)


def nonnegative_float(text: str) -> float:
    return _number(text, float, "a number >= 0", lambda v: math.isfinite(v) and v >= 0)


def finite_float(text: str) -> float:
    return _number(text, float, "a finite number", math.isfinite)


def probability(text: str) -> float:
    return _number(text, float, "a number in (0, 1]", lambda v: 0 < v <= 1)


def early_stopping(value: str) -> bool | str:
    """transformers' ``early_stopping`` from its flag spelling: true, false or never."""
    return {"true": True, "false": False}.get(value, value)


__all__ = ["TRANSLATE_BATCH_SIZE", "VALIDATE_BATCH_SIZE", "FairseqOptions", "HFOptions", "MarianOptions",
           "SamplingOptions", "early_stopping", "finite_float", "hf_length_limits", "nonnegative_float",
           "nonnegative_int", "positive_float", "positive_int", "probability", "split_options"]
