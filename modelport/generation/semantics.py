"""Decoding options of each framework's search, and where they differ.

Each profile is a frozen dataclass holding the options that framework exposes,
with its defaults. The rules themselves are written next to the code that
reproduces them in :mod:`modelport.generation.beam`; this module is the
summary, for the reader choosing a profile.

fairseq (``SequenceGenerator`` + ``search.BeamSearch``, fairseq 0.12)
    * decoder starts from EOS; 2 x beam candidates per step (top-k over
      beam x vocab of cumulative scores; step 0 looks at beam 0 only);
    * masks act on log-softmax output, no renormalisation: NaN -> -inf, pad
      -inf, ``unk -= unkpen``, at ``step >= max_len`` every token but EOS -inf
      (EOS keeps its real log-prob), ``step < min_len`` EOS -inf, repeated
      n-grams -inf (0.12's CPU blocker compares with the pad-filled end of its
      token buffer and so blocks nothing in practice; its CUDA kernel blocks
      as intended: ``ngram_blocking``);
    * ``max_len = min(int(max_len_a * src_len + max_len_b), max_positions - 1)``
      with ``src_len`` the *padded* width of the batch (batching matters);
    * an EOS candidate is finalized only when it ranks among the first ``beam``
      candidates; finalized hypotheses are never evicted; a sentence is done
      once it holds ``beam`` finalized hypotheses (or at ``max_len``) and is
      dropped from the batch;
    * score = sum of log-probs (EOS included) / (length incl. EOS) ** lenpen;
      n-best sorted by that score; positional scores as fairseq returns them.

hf (transformers 5.x ``GenerationMixin._beam_search``)
    * decoder starts from ``decoder_start_token_id``; ``max_length`` counts it
      (``max_new_tokens`` + 1); 2 x beam candidates per step;
    * log-softmax first, then processors: no-repeat n-gram (start token
      included), min length (EOS -inf while ``cur_len < min_length``), forced
      BOS, forced EOS at ``max_length - 1`` (all -inf, EOS set to 0);
    * every candidate in the top ``beam`` positions that ends with EOS (or hits
      max length) competes for ``beam`` finished slots by
      ``score / (generated length incl. EOS) ** length_penalty``: a better
      hypothesis *evicts* a worse finished one;
    * stopping: ``early_stopping=True`` stops a sentence once ``beam`` slots
      are filled; ``False`` uses the heuristic "best running score / current
      length ** lp cannot beat the worst finished"; ``"never"`` uses
      ``max_length`` in that bound when ``lp > 0``.

marian (``marian-decoder``: ``src/translator/beam_search.cpp``, ``history.h``,
``nth_element.cpp``, ``scorers.cpp``, ``data/corpus.cpp``; marian-dev 1.12)
    * decoder starts from a zero embedding (a model flag); one row per
      sentence at step 0;
    * path score = sum over steps of ``sum_i weight_i * log_softmax_i`` (an
      ensemble is log-linear, ``--weights`` default 1 each; no logsumexp);
      ``<unk>`` is set to the lowest float unless ``allow_unk`` (no
      renormalisation);
    * each sentence keeps its own beam size ``k``: the best ``k`` of
      ``k x V`` path scores (step 0: ``beam_size`` from the one row); a
      hypothesis ending in EOS is finished and leaves the beam, so ``k``
      shrinks by one per finished hypothesis; finished ones are never evicted;
    * a sentence is done when its beam is empty; at step ``t`` (0-based) with
      ``t + 1 >= max_length_factor * W`` (``W`` the *padded* source width of
      the batch, ``</s>`` included: batching matters) every live hypothesis is
      finished without EOS and the whole batch stops;
    * final score ``(path score - word_penalty * L) / L ** normalize`` with
      ``L`` the number of generated tokens, EOS included; n-best sorted by it;
    * a source that is only ``</s>`` (an empty line) yields ``beam_size``
      hypotheses "``</s>``" with path score 0;
    * ``max_length`` bounds the *source* (tokens incl. ``</s>``); Marian skips
      longer lines silently or, with ``max_length_crop``, crops them to
      ``max_length`` tokens ending in ``</s>``. Here a longer line is an error
      unless ``max_length_crop``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

SEMANTICS = ("fairseq", "hf", "marian")


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


def split_options(cls: type, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Build ``cls`` from the keys of ``options`` it knows; return it and the rest."""
    names = {f.name for f in fields(cls)}
    known = {k: v for k, v in options.items() if k in names and v is not None}
    return cls(**known), {k: v for k, v in options.items() if k not in names}


def hf_length_limits(opts: Any, max_positions: int) -> tuple[int, int]:
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
