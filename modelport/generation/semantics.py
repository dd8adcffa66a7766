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
      n-grams -inf;
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

marian: left for the Marian issue (``normalize`` alpha, word penalty).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

SEMANTICS = ("fairseq", "hf")


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
    # fairseq 0.12's CPU n-gram blocker compares against the pad-filled end of
    # its token buffer and never blocks anything; "cpu-0.12" reproduces that.
    # "intended" blocks as fairseq <= 0.10 and 0.12's CUDA kernel do.
    ngram_blocking: Literal["intended", "cpu-0.12"] = "intended"


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
