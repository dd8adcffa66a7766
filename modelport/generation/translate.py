"""Token-level :func:`generate` and text-level :func:`translate`.

``generate`` decodes one batch of source token ids with the chosen
semantics. ``translate`` tokenizes lines, batches them sorted by length (so
padding is small), decodes, detokenizes, and restores the input order. The
ported folder's ``generation_config.json`` supplies every option not given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from modelport.errors import InvalidInputError, NonFiniteOutputError
from modelport.generation.beam import (FairseqBeamSearch, HFBeamSearch, Hypothesis, MarianBeamSearch, NaNLogProbs,
                                       run_search)
from modelport.generation.marian_batching import marian_batches
from modelport.generation.sampling import SamplingOptions, SamplingSearch
from modelport.generation.semantics import SEMANTICS, FairseqOptions, HFOptions, MarianOptions, split_options
from modelport.model.transformer import Seq2SeqModel

# CLI/fairseq option names -> transformers' names, for --semantics hf
_HF_ALIASES = {"beam": "num_beams", "lenpen": "length_penalty", "nbest": "num_return_sequences",
               "min_len": "min_length"}
# marian-decoder's batching options (decoder.yml names, ``-`` as ``_``): they
# choose the batches, which set each line's length cap (marian_batching.py)
MARIAN_BATCHING = ("mini_batch", "maxi_batch", "maxi_batch_sort", "mini_batch_words")
# CLI/fairseq option names -> Marian's names, for --semantics marian
_MARIAN_ALIASES = {"beam": "beam_size", "lenpen": "normalize", "nbest": "n_best"}
# generation_config.json keys the model config already holds
_TOKEN_IDS = ("decoder_start_token_id", "pad_token_id", "eos_token_id")
# generation_config.json keys that only one semantics understands
_FAIRSEQ_ONLY = {"semantics", "max_positions", "unkpen", "max_len_a", "max_len_b"}


def hf_option_names(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the fairseq-style aliases renamed to transformers' names
    (an explicit transformers name wins over its alias)."""
    opts = dict(options)
    for k, v in _HF_ALIASES.items():
        if k in opts:
            opts.setdefault(v, opts.pop(k))
    return opts


def pad_batch(src: Sequence[Sequence[int]] | Tensor, pad: int, left: bool = True) -> Tensor:
    """Pad token lists into ``[B, S]``; left padding as fairseq collates sources."""
    if isinstance(src, Tensor):
        return src
    width = max(len(s) for s in src)
    out = torch.full((len(src), width), pad, dtype=torch.long)
    for i, s in enumerate(src):
        if len(s):
            if left:
                out[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
            else:
                out[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return out


def make_algorithm(cfg: Any, max_positions: int, semantics: str, options: dict[str, Any]) -> tuple[Any, float]:
    """The step algorithm for ``semantics`` from ``options``; unknown options are an error."""
    opts = dict(options)
    sampling = opts.pop("sampling", None) or opts.get("do_sample") or opts.get("greedy")
    if sampling:
        opts.pop("greedy", None)
        if "beam" in opts and opts["beam"] not in (None, 1):
            raise InvalidInputError(f"`beam` must be 1 with sampling, but is {opts['beam']}")
        for k in ("beam", "nbest", "semantics"):
            opts.pop(k, None)
        opts = hf_option_names(opts)
        opts.pop("num_beams", None)
        opts.pop("num_return_sequences", None)
        opts.pop("length_penalty", None)
        parsed, rest = split_options(SamplingOptions, opts)
        _reject(rest, "sampling")
        return SamplingSearch(cfg, parsed, max_positions), 1.0
    if semantics == "fairseq":
        parsed, rest = split_options(FairseqOptions, {k: v for k, v in opts.items() if k != "semantics"})
        rest.pop("max_positions", None)
        _reject(rest, "fairseq")
        return FairseqBeamSearch(cfg, parsed, max_positions), parsed.temperature
    if semantics == "hf":
        opts = hf_option_names(opts)
        parsed, rest = split_options(HFOptions, {k: v for k, v in opts.items() if k != "semantics"})
        _reject(rest, "hf")
        return HFBeamSearch(cfg, parsed, max_positions), 1.0
    if semantics == "marian":
        for k, v in _MARIAN_ALIASES.items():
            if k in opts and opts[k] is not None:  # given by the caller: wins over the folder's default
                opts[v] = opts.pop(k)
        if opts.get("weights") is not None:
            opts["weights"] = tuple(opts["weights"])
        parsed, rest = split_options(MarianOptions, {k: v for k, v in opts.items()
                                                     if k not in ("semantics", "max_positions", *_TOKEN_IDS)})
        _reject(rest, "marian")
        return MarianBeamSearch(cfg, parsed, max_positions), 1.0
    raise InvalidInputError(f"`{semantics}` is not a known semantics (known: {', '.join(SEMANTICS)})")


def _reject(rest: dict[str, Any], semantics: str) -> None:
    if rest:
        raise InvalidInputError(f"option(s) {', '.join(sorted(rest))} are not known to the {semantics} "
                                "semantics")


@torch.no_grad()
def generate(models: Sequence[Seq2SeqModel] | Seq2SeqModel, src_tokens: Sequence[Sequence[int]] | Tensor, *,
             semantics: str = "fairseq", **options: Any) -> list[list[Hypothesis]]:
    """Decode one batch of source token ids (EOS included, as the tokenizer
    returns them) with ``semantics`` ("fairseq", "hf" or "marian"; ``do_sample=True``
    or ``greedy=True`` for sampling/greedy). Lists are padded on the left for
    fairseq, on the right for hf and marian (``pad_left`` overrides). The whole
    batch is decoded together: under fairseq and marian semantics its padded
    width sets the maximum output length.

    Returns, per sentence, the n-best hypotheses ``{"tokens", "score",
    "positional_scores"}`` (tokens end with EOS unless cut at the maximum
    length; scores as the framework reports them).
    """
    members = [models] if isinstance(models, Seq2SeqModel) else list(models)
    cfg = members[0].cfg
    opts = dict(options)
    left = opts.pop("pad_left", semantics == "fairseq")
    max_positions = min(m.cfg.max_target_positions for m in members)
    algorithm, temperature = make_algorithm(cfg, max_positions, semantics, opts)
    if hasattr(algorithm, "limit_source"):  # marian: --max-length acts on the source
        rows = src_tokens.tolist() if isinstance(src_tokens, Tensor) else src_tokens
        src_tokens = algorithm.limit_source([[t for t in r if t != cfg.pad_token_id] for r in rows])
    src = pad_batch(src_tokens, cfg.pad_token_id, left=left)
    ensemble = algorithm.make_ensemble(members) if hasattr(algorithm, "make_ensemble") else members
    return run_search(ensemble, src, algorithm, temperature=temperature)


def make_batches(lengths: Sequence[int], batch_size: int | None = None,
                 max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (sorted by length,
    stable); a batch holds at most ``batch_size`` sentences and at most
    ``max_tokens`` padded source tokens."""
    if batch_size is None and max_tokens is None:
        batch_size = 32
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = max([lengths[j] for j in cur] + [lengths[i]])
        too_many = batch_size is not None and len(cur) + 1 > batch_size
        too_big = max_tokens is not None and width * (len(cur) + 1) > max_tokens and cur
        if cur and (too_many or too_big):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def fairseq_defaults_as_hf(generation_config: dict[str, Any], eos_token_id: int | None = None) -> dict[str, Any]:
    """A fairseq folder's decoding defaults in transformers' terms, as ``export
    hf`` writes them to ``generation_config.json``, so that ``semantics="hf"``
    is what transformers' ``generate`` does with the export:
    ``early_stopping=True`` (fairseq finalizes a sentence once ``beam``
    hypotheses ended), ``max_length`` the position limit (fairseq's ``a * len
    + b`` has no transformers equivalent) and EOS forced at that limit."""
    out: dict[str, Any] = {"early_stopping": True}
    if generation_config.get("max_positions"):
        out["max_length"] = int(generation_config["max_positions"])
    if eos_token_id is not None:
        out["forced_eos_token_id"] = int(eos_token_id)
    return out


def resolve_options(generation_config: dict[str, Any], semantics: str | None,
                    options: dict[str, Any], *, eos_token_id: int | None = None) -> tuple[str, dict[str, Any]]:
    """The folder's defaults overlaid with the given options (None = absent).
    Under hf semantics a fairseq folder's defaults are those ``export hf``
    writes (:func:`fairseq_defaults_as_hf`; ``eos_token_id`` for its forced EOS)."""
    given = {k: v for k, v in options.items() if v is not None}
    default_sem = generation_config.get("semantics", "fairseq")
    sem = semantics or default_sem
    if sem == "hf":  # a given alias (beam) must override the folder's own name (num_beams)
        given = hf_option_names(given)
    merged: dict[str, Any] = {}
    if given.get("do_sample") or given.get("greedy") or given.get("sampling"):
        return sem, given  # the folder's beam-search defaults do not apply to sampling
    if sem == default_sem:
        merged.update({k: v for k, v in generation_config.items() if k not in ("semantics", "max_positions")})
    elif sem == "marian":  # only the beam size and n-best carry over from another framework
        merged.update({k: v for k, v in generation_config.items() if k in ("beam", "nbest")})
    elif sem == "hf":
        if default_sem == "fairseq":
            merged.update(fairseq_defaults_as_hf(generation_config, eos_token_id))
        merged.update({k: v for k, v in generation_config.items() if k not in _FAIRSEQ_ONLY
                       and k in ("beam", "lenpen", "nbest", "no_repeat_ngram_size")})
    merged.update(given)
    return sem, merged


def decode_text(tok: Any, ids: Sequence[int], keep_special_tokens: bool = False) -> str:
    """``tok.decode(ids)``; ``keep_special_tokens`` is passed on only to
    tokenizers that skip special tokens by default (T5: sentinels and
    ``<unk>``, as transformers' ``decode(skip_special_tokens=True)``). The
    others print what their framework prints (fairseq and Marian keep
    ``<unk>``), so asking them to keep special tokens is an error, not a no-op."""
    if not keep_special_tokens:
        return tok.decode(ids)
    check_keep_special_tokens(tok)
    return tok.decode(ids, keep_special_tokens=True)


def check_keep_special_tokens(tok: Any) -> None:
    """Refuse ``keep_special_tokens`` for a tokenizer that never skips any."""
    if not getattr(tok, "skips_special_tokens", False):
        raise InvalidInputError(f"`keep_special_tokens` applies to tokenizers that skip special tokens (T5), but "
                                f"this port's tokenizer is {getattr(tok, 'kind', type(tok).__name__)}, which "
                                "never skips them")


def _is_nan(hyp: dict[str, Any]) -> bool:
    """A hypothesis scored NaN: the model's log-probabilities were not numbers
    (non-finite weights), so its tokens mean nothing."""
    score = hyp.get("score")
    return (isinstance(score, float) and math.isnan(score)) or any(
        isinstance(s, float) and math.isnan(s) for s in hyp.get("positional_scores") or ())


def _first_nan_line(ported: Any, sources: list[list[int]], batch: list[int], sem: str,
                    opts: dict[str, Any]) -> int:
    """The first input line (1-based) of a failed batch that decodes to NaN on
    its own; only run on that error path."""
    for i in sorted(range(len(batch)), key=lambda k: batch[k]):
        try:
            generate(ported.models, [sources[i]], semantics=sem, **opts)
        except NaNLogProbs:
            return batch[i] + 1
    return min(batch) + 1  # NaN only in company (a padding interaction): name the batch's first line


def translate(ported: Any, lines: Sequence[str], *, semantics: str | None = None, batch_size: int | None = None,
              max_tokens: int | None = None, progress: bool = False, keep_special_tokens: bool = False,
              **options: Any) -> list[list[dict[str, Any]]]:
    """Translate ``lines`` with a :class:`~modelport.api.PortedModel`.

    Options are the decoding options of the semantics (fairseq names: beam,
    lenpen, nbest, max_len_a, max_len_b, min_len, unkpen,
    no_repeat_ngram_size; hf names or the fairseq aliases beam/lenpen/nbest
    under ``semantics="hf"``; Marian names (beam_size, normalize, word_penalty,
    max_length, max_length_factor, max_length_crop, allow_unk, n_best, weights)
    or the aliases beam/lenpen/nbest under ``semantics="marian"``); absent ones come from the folder's
    ``generation_config.json``. Lines are batched by length and the results
    returned in input order: per line, the n-best
    ``{"tokens", "text", "score", "positional_scores"}``. ``text`` is decoded
    as the source framework's users decode (T5: transformers' default,
    sentinels and ``<unk>`` skipped; ``keep_special_tokens=True`` keeps them).
    """
    sem, opts = resolve_options(ported.generation_config, semantics, options,
                                eos_token_id=ported.config.eos_token_id)
    tok = ported.tokenizer
    if keep_special_tokens:
        check_keep_special_tokens(tok)
    cfg = ported.config
    encoded = tok.encode_batch(list(lines)) if hasattr(tok, "encode_batch") else [tok.encode(x) for x in lines]
    for i, ids in enumerate(encoded):
        if len(ids) > cfg.max_source_positions:
            raise InvalidInputError(f"line {i + 1} has {len(ids)} tokens, but the model reads at most "
                                    f"{cfg.max_source_positions}")
    batching = {k: opts.pop(k) for k in MARIAN_BATCHING if k in opts} if sem == "marian" else {}
    if sem == "marian" and batch_size is None and max_tokens is None:
        # the length cap depends on the batch: group lines as marian-decoder does
        cap = opts.get("max_length") if opts.get("max_length_crop") else None
        batches = marian_batches([len(x) if cap is None else min(len(x), cap) for x in encoded],
                                 **{k: v for k, v in batching.items() if v is not None})
    else:
        batches = make_batches([len(x) for x in encoded], batch_size, max_tokens)
    results: list[list[dict[str, Any]]] = [[] for _ in lines]
    bar = None
    if progress:
        import sys

        from tqdm.auto import tqdm

        bar = tqdm(total=len(lines), unit="line", file=sys.stderr, disable=None, leave=False)  # no bar in logs
    strip = {cfg.eos_token_id, cfg.pad_token_id}
    for batch in batches:
        try:
            hyps = generate(ported.models, [encoded[i] for i in batch], semantics=sem, **opts)
        except NaNLogProbs:
            raise NonFiniteOutputError(_first_nan_line(ported, [encoded[i] for i in batch], batch, sem, opts)) \
                from None
        for i, nbest in zip(batch, hyps):
            if any(_is_nan(h) for h in nbest):
                raise NonFiniteOutputError(i + 1)
            results[i] = [{**h, "text": decode_text(tok, [t for t in h["tokens"] if t not in strip],
                                                    keep_special_tokens)} for h in nbest]
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return results
