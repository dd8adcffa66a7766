"""Token-level :func:`generate` and text-level :func:`translate`.

``generate`` decodes one batch of source token ids with the chosen
semantics. ``translate`` tokenizes lines, batches them sorted by length (so
padding is small), decodes, detokenizes, and restores the input order. The
ported folder's ``generation_config.json`` supplies every option not given.
"""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from modelport.errors import InvalidInputError, NonFiniteOutputError
from modelport.files import check_lines, check_text_line
from modelport.generation.alignment import OFF
from modelport.generation.backend import SearchBackend
from modelport.generation.beam import NaNLogProbs, StepAlgorithm, run_search
from modelport.generation.hypothesis import Hypothesis
from modelport.generation.groups import decode_groups, encoder_runs, group_lines, row_step_flops
from modelport.generation.marian_batching import marian_batches, pool_chunk_lines, pool_lines
from modelport.generation.options import (NONNEGATIVE_INT, POSITIVE_INT, TRANSLATE_BATCH_SIZE, MarianOptions,
                                          part_seed)
from modelport.generation.semantics import (SAMPLING, SEMANTICS, beam_width, get_semantics, is_sampling,
                                           more_than_one_best)
from modelport.generation.shortlist import folder_shortlist, shortlist_for_tokenizer
from modelport.model.transformer import Seq2SeqModel
from modelport.tokenizers import Tokenizer, check_keep_special_tokens

def pad_batch(src: Sequence[Sequence[int]] | Tensor, pad: int, left: bool = True,
              device: torch.device | str | None = None) -> Tensor:
    """Pad token lists into ``[B, S]`` on ``device`` (default: the CPU); left
    padding as fairseq collates sources. A tensor is only moved to ``device``."""
    if isinstance(src, Tensor):
        return src if device is None else src.to(device)
    width = max(len(s) for s in src)
    rows = [[pad] * (width - len(s)) + list(s) if left else list(s) + [pad] * (width - len(s)) for s in src]
    return torch.tensor(rows, dtype=torch.long, device=device)


def model_device(models: Sequence[Seq2SeqModel] | Seq2SeqModel) -> torch.device:
    """The device of a model (an ensemble: of its first member), where the search puts its tensors."""
    first = models if isinstance(models, Seq2SeqModel) else models[0]
    return next(first.parameters()).device


def make_algorithm(cfg: Any, max_positions: int, semantics: str, options: dict[str, Any]) -> StepAlgorithm:
    """The step algorithm of ``semantics`` (greedy search or sampling when
    ``options`` ask for it) from ``options``; unknown options are an error."""
    sampling = is_sampling(options)
    if options.get("sampling"):  # modelport's name (`translate --sampling`) for transformers' do_sample
        if options.get("do_sample") is False:
            raise InvalidInputError("`sampling=True` asks for sampling, but `do_sample=False` for greedy search")
        options = {**options, "do_sample": True}
    options = {k: v for k, v in options.items() if k != "sampling"}
    if sampling:
        search = "sampling" if options.get("do_sample") else "greedy search"
        if options.get("generator_eos") is not None:
            raise InvalidInputError(f"{search} cannot decode from and stop on the target language token, as this "
                                    "port's task does (an mBART-25 fine-tune); use beam search")
        if options.get("beam") not in (None, 1):
            raise InvalidInputError(f"`beam` must be 1 with {search}, but is {options['beam']}")
        many = more_than_one_best(options)  # one output per line: more were dropped silently
        if many is not None:
            raise InvalidInputError(f"`{many}` must be 1 with {search} (one output per line), but is "
                                    f"{options[many]}")
        forced = options.pop("forced_bos_token_id", None)  # transformers' name of a one-token forced prefix
        if forced is not None:  # (hf semantics places a target language or BART's <s> so)
            if options.get("prefix_tokens"):
                raise InvalidInputError(f"give `forced_bos_token_id` or `prefix_tokens` to {search}, not both")
            options["prefix_tokens"] = (forced,)
        return SAMPLING.make(cfg, options, max_positions)
    return get_semantics(semantics).make(cfg, options, max_positions)


@torch.no_grad()
def generate(models: Sequence[Seq2SeqModel] | Seq2SeqModel | SearchBackend,
             src_tokens: Sequence[Sequence[int]] | Tensor, *,
             semantics: str = "fairseq", encoder_runs: Sequence[tuple[int, int]] | None = None,
             **options: Any) -> list[list[Hypothesis]]:
    """Decode one batch of source token ids (EOS included, as the tokenizer
    returns them) with ``semantics`` ("fairseq", "hf" or "marian"; ``do_sample=True``
    or ``greedy=True`` for sampling/greedy). Lists are padded on the left for
    fairseq, on the right for hf and marian (``pad_left`` overrides). The whole
    batch is decoded together: under fairseq and marian semantics its padded
    width sets the maximum output length. ``models`` may also be a
    :class:`~modelport.generation.backend.SearchBackend` (the ONNX runtime):
    the same search runs on its logits. ``encoder_runs``: runs of rows
    ``(start, end)`` that the encoder computes apart, each at its own width
    (the batches of a group, :func:`~modelport.generation.groups.encoder_runs`).

    Returns, per sentence, the n-best :class:`Hypothesis` list (tokens end
    with EOS unless cut at the maximum length; scores as the framework
    reports them).
    """
    opts = dict(options)
    left = opts.pop("pad_left", semantics == "fairseq")
    if isinstance(models, SearchBackend):  # another runtime (ONNX) behind the loop's decoder interface
        cfg, max_positions = models.cfg, models.max_target_positions
        algorithm = make_algorithm(cfg, max_positions, semantics, opts)
        src = pad_batch(algorithm.prepare_source(src_tokens), cfg.pad_token_id, left=left, device=models.device)
        return run_search(algorithm.make_backend(models), src, algorithm,  # type: ignore[arg-type]
                          encoder_runs=encoder_runs)
    members = [models] if isinstance(models, Seq2SeqModel) else list(models)
    cfg = members[0].cfg
    max_positions = min(m.cfg.max_target_positions for m in members)
    algorithm = make_algorithm(cfg, max_positions, semantics, opts)
    src = pad_batch(algorithm.prepare_source(src_tokens), cfg.pad_token_id, left=left, device=model_device(members))
    return run_search(algorithm.make_ensemble(members), src, algorithm, encoder_runs=encoder_runs)


def make_batches(lengths: Sequence[int], batch_size: int | None = None,
                 max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (sorted by length,
    stable); a batch holds at most ``batch_size`` sentences and at most
    ``max_tokens`` padded source tokens."""
    if batch_size is None and max_tokens is None:
        batch_size = TRANSLATE_BATCH_SIZE
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


# the length limits of an hf folder's generation_config.json, which transformers' greedy search and sampling read
HF_LENGTH_KEYS = ("max_length", "max_new_tokens", "min_length", "min_new_tokens", "forced_eos_token_id")


def sampling_defaults(generation_config: dict[str, Any], eos_token_id: int | None = None) -> dict[str, Any]:
    """The folder's length limits for greedy search and sampling, which follow
    transformers' rules: those ``export hf`` writes, so that sampling a port is
    what transformers' ``generate(do_sample=True)`` does with the export. A
    fairseq folder: the position limit and EOS forced there
    (:func:`fairseq_defaults_as_hf`; it was transformers' default of 20 new
    tokens, which cut longer outputs); an hf folder (T5): its own. A Marian
    folder's ``max_length`` caps the source, not the output: none carried."""
    sem = generation_config.get("semantics", "fairseq")
    if sem == "fairseq":
        return {k: v for k, v in fairseq_defaults_as_hf(generation_config, eos_token_id).items()
                if k != "early_stopping"}  # a beam-search option
    if sem == "hf":
        return {k: generation_config[k] for k in HF_LENGTH_KEYS if generation_config.get(k) is not None}
    return {}


def resolve_options(generation_config: dict[str, Any], semantics: str | None,
                    options: dict[str, Any], *, eos_token_id: int | None = None) -> tuple[str, dict[str, Any]]:
    """The folder's defaults overlaid with the given options (None = absent).
    Under hf semantics a fairseq folder's defaults are those ``export hf``
    writes (:func:`fairseq_defaults_as_hf`; ``eos_token_id`` for its forced EOS)."""
    given = {k: v for k, v in options.items() if v is not None}
    default_sem = generation_config.get("semantics", "fairseq")
    sem = semantics or default_sem
    entry = SEMANTICS.get(sem)  # an unknown name fails in make_algorithm, with the known ones
    if entry is not None and not entry.alias_wins:  # a given alias (beam) must override the folder's name
        given = entry.rename(given)                  # (num_beams); alias_wins semantics see both and take it
    merged: dict[str, Any] = {}
    if is_sampling(given):  # the folder's beam-search defaults do not apply, its length limits do
        return sem, {**sampling_defaults(generation_config, eos_token_id), **given}
    if sem == default_sem:
        merged.update({k: v for k, v in generation_config.items() if k not in ("semantics", "max_positions")})
    elif entry is not None:  # another framework's folder: only what carries over
        if sem == "hf" and default_sem == "fairseq":
            merged.update(fairseq_defaults_as_hf(generation_config, eos_token_id))
        # under this semantics' own names, so that a caller's option overrides them by either name
        # (a fairseq folder's beam, carried over to Marian's beam_size, must yield to beam_size=)
        carried = entry.rename({k: v for k, v in generation_config.items() if k in entry.carried_over})
        merged.update({k: v for k, v in carried.items() if k not in merged})
    merged.update(given)
    return sem, merged


def decode_text(tok: Tokenizer, ids: Sequence[int], keep_special_tokens: bool = False) -> str:
    """``tok.decode(ids)``; ``keep_special_tokens`` is passed on only to
    tokenizers that skip special tokens by default (T5: sentinels and
    ``<unk>``, as transformers' ``decode(skip_special_tokens=True)``). The
    others print what their framework prints (fairseq and Marian keep
    ``<unk>``), so asking them to keep special tokens is an error, not a no-op."""
    if not keep_special_tokens:
        return tok.decode(ids)
    check_keep_special_tokens(tok)
    return tok.decode(ids, keep_special_tokens=True)


def _is_nan(hyp: Hypothesis) -> bool:
    """A hypothesis scored NaN: the model's log-probabilities were not numbers
    (non-finite weights), so its tokens mean nothing."""
    return (isinstance(hyp.score, float) and math.isnan(hyp.score)) or any(
        isinstance(s, float) and math.isnan(s) for s in hyp.positional_scores)


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


@dataclass(frozen=True)
class Direction:
    """The languages a multilingual port (M2M100, NLLB-200, mBART-50)
    translates between, for the commands that translate on the user's behalf
    (the passes' measurements, an export's verification); both None for a
    port without language tokens."""

    source_lang: str | None = None
    target_lang: str | None = None

    @property
    def given(self) -> bool:
        return self.source_lang is not None or self.target_lang is not None

    @property
    def pair(self) -> tuple[str, str] | None:
        """(source, target) as the reports record a direction; None when none was given."""
        return (self.source_lang, self.target_lang) if self.given else None  # type: ignore[return-value]

    def options(self) -> dict[str, str | None]:
        """The keywords of :func:`translate` that carry it."""
        return {"source_lang": self.source_lang, "target_lang": self.target_lang}

    def tokens(self, tok: Tokenizer, generation_config: dict[str, Any],
               eos_token_id: int | None = None) -> tuple[list[int], list[int], list[int], dict[str, Any]]:
        """:func:`language_options` under the folder's semantics, raising what
        :func:`translate` would raise (call it before any work): a
        multilingual port needs both languages, known to it; any other port, none."""
        sem, _ = resolve_options(generation_config, None, {}, eos_token_id=eos_token_id)
        return language_options(tok, sem, self.source_lang, self.target_lang)


def language_options(tok: Tokenizer, sem: str, source_lang: str | None,
                     target_lang: str | None) -> tuple[list[int], list[int], list[int], dict[str, Any]]:
    """(tokens before each source, tokens after it, tokens stripped from the
    output, search options) that place a port's special tokens where its
    framework places them (``language_plan`` of the tokenizer): the decoder
    prefix as fairseq's ``prefix_tokens`` (transformers'
    ``forced_bos_token_id`` under hf semantics), a ``SequenceGenerator``
    ``eos=`` as ``generator_eos``. A tokenizer without languages refuses them."""
    planner = getattr(tok, "language_plan", None)
    if planner is None:
        codes = list(getattr(tok, "language_codes", ()))
        if (source_lang is not None or target_lang is not None) and codes:
            shown = ", ".join(codes[:12]) + (", ..." if len(codes) > 12 else "")
            raise InvalidInputError(f"this model reads its target language from a token that begins each source "
                                    f"line, as Marian does (`{codes[0]} Hello`; it knows {shown}): write it in "
                                    "the input; --source-lang/--target-lang do not apply")
        if source_lang is not None or target_lang is not None:
            raise InvalidInputError(f"this port's tokenizer ({tok.kind}) has no language tokens: "
                                    "--source-lang/--target-lang do not apply")
        return [], [], [], {}
    plan = planner(source_lang, target_lang)
    opts: dict[str, Any] = {}
    strip = list(plan.decoder_prefix)
    if plan.generator_eos is not None:
        if sem != "fairseq":
            raise InvalidInputError(f"`{sem}` semantics cannot decode from and stop on the target language token "
                                    "(supported: fairseq)")
        opts["generator_eos"] = plan.generator_eos
        strip.append(plan.generator_eos)
    if plan.decoder_prefix:
        if sem == "fairseq":
            opts["prefix_tokens"] = tuple(plan.decoder_prefix)
        elif sem == "hf" and len(plan.decoder_prefix) == 1:
            opts["forced_bos_token_id"] = plan.decoder_prefix[0]
        else:
            raise InvalidInputError(f"`{sem}` semantics cannot force the decoder's first tokens {plan.decoder_prefix} "
                                    "(the target language token, BART's <s>; supported: fairseq, hf)")
    return plan.source_prefix, plan.source_suffix, strip, opts


def warn_unmarked_lines(tok: Tokenizer, lines: Sequence[str]) -> None:
    """Warn where a Marian multi-target model (``>>xxx<<`` tokens in its
    vocabulary) gets non-empty lines that do not begin with one: Marian
    translates them all the same, into no language in particular, so the
    port does too (parity), but a user who forgot the token should hear of it."""
    codes = set(getattr(tok, "language_codes", ()))
    if not codes:
        return
    if any(line.strip() and not (line.startswith(">>") and line[: line.find("<<") + 2] in codes) for line in lines):
        shown = ", ".join(sorted(codes)[:6]) + (", ..." if len(codes) > 6 else "")
        # one text: shown once per place (a long input is translated in windows)
        warnings.warn(f"some lines do not begin with a target-language token ({shown}); this model translates "
                      "them into no language in particular, as Marian does: begin each line with one "
                      "(`>>xxx<< text`)", stacklevel=3)


def search_group_lines(cfg: Any, beam: int, members: int = 1) -> int:
    """Lines of consecutive batches :func:`translate` decodes in one search (see
    :func:`~modelport.generation.groups.group_lines`) for a model of ``cfg``, ``members``
    of them in an ensemble, at ``beam``: a decoding step's FLOPs per line size it."""
    return group_lines(cfg.d_model, beam * members * row_step_flops(cfg.decoder_layers, cfg.d_model,
                                                                    cfg.decoder_ffn_dim, cfg.target_vocab_size))


def translate_windows(ported: Any, lines: Iterable[str], *, batch_size: int = 32, window: int = 16,
                      **options: Any) -> Iterator[list[Hypothesis]]:
    """``ported.translate`` over a stream, ``batch_size * window`` lines at a
    time (batched by length within that window), each line's n-best list
    yielded in input order before more is read: an endless iterable works and
    memory stays bounded (CTranslate2's ``translate_iterable``)."""
    batch_size, window = POSITIVE_INT.check("batch_size", batch_size), POSITIVE_INT.check("window", window)
    check_lines(lines)
    buffer: list[str] = []
    first = options.pop("first_line", 0)  # where the buffer begins: a seeded sampling run draws anew in every window
    for number, line in enumerate(lines, 1):
        check_text_line(number, line)
        buffer.append(line)
        if len(buffer) >= batch_size * window:
            yield from ported.translate(buffer, batch_size=batch_size, first_line=first, **options)
            first, buffer = first + len(buffer), []
    if buffer:
        yield from ported.translate(buffer, batch_size=batch_size, first_line=first, **options)


def framework_batching(sem: str, opts: dict[str, Any], batch_size: int | None = None,
                       max_tokens: int | None = None) -> dict[str, Any] | None:
    """Take the batching options of semantics ``sem`` (marian: mini_batch,
    maxi_batch, ...) out of the resolved ``opts``; return those given (not
    None) when lines are batched as the framework batches them, which is when
    the semantics has such options and neither ``batch_size`` nor
    ``max_tokens`` is given, else None (batches of similar length)."""
    keys = SEMANTICS[sem].batching if sem in SEMANTICS else ()
    batching = {k: opts.pop(k) for k in keys if k in opts}
    if not keys or batch_size is not None or max_tokens is not None:
        return None
    return {k: v for k, v in batching.items() if v is not None}


def translate(ported: Any, lines: Sequence[str], *, semantics: str | None = None, batch_size: int | None = None,
              max_tokens: int | None = None, progress: bool = False, keep_special_tokens: bool = False,
              source_lang: str | None = None, target_lang: str | None = None, first_line: int = 0,
              part: tuple[int, int] | None = None, **options: Any) -> list[list[Hypothesis]]:
    """Translate ``lines`` with a :class:`~modelport.api.PortedModel`.

    Options are the decoding options of the semantics (fairseq names: beam,
    lenpen, nbest, max_len_a, max_len_b, min_len, unkpen,
    no_repeat_ngram_size; hf names or the fairseq aliases beam/lenpen/nbest
    under ``semantics="hf"``; Marian names (beam_size, normalize, word_penalty,
    max_length, max_length_factor, max_length_crop, allow_unk, n_best, weights)
    or the aliases beam/lenpen/nbest under ``semantics="marian"``); absent ones come from the folder's
    ``generation_config.json``. Lines are batched by length and the results
    returned in input order: per line, the n-best :class:`Hypothesis` list,
    ``text`` set. ``text`` is decoded
    as the source framework's users decode (T5: transformers' default,
    sentinels and ``<unk>`` skipped; ``keep_special_tokens=True`` keeps them).
    ``source_lang``/``target_lang``: the direction of a multilingual port
    (M2M100, NLLB-200, mBART-50), required there (see :func:`language_options`).
    ``first_line``: where ``lines`` begin in the whole input (0-based), when
    they are a part of it (a chunk of a stream, a torchrun process's share):
    with sampling and a ``seed``, each batch draws from its own seed
    (:func:`~modelport.generation.options.part_seed`), so a seeded run
    repeats no draws from batch to batch or part to part.
    ``part``: ``(index, count)``, translate only that share of the batches the
    lines form (every ``count``-th, from the ``index``-th; torchrun processes
    sharing one chunk, :func:`~modelport.generation.shards.sharded_map`); the
    other lines' lists are empty. Each line is still decoded in its own batch.
    """
    check_lines(lines)
    first_line = NONNEGATIVE_INT.check("first_line", first_line)
    index, count = check_part(part)
    lines = list(lines)
    for number, line in enumerate(lines, 1):
        check_text_line(number, line)
    if batch_size is not None:
        batch_size = POSITIVE_INT.check("batch_size", batch_size)
    if max_tokens is not None:
        max_tokens = POSITIVE_INT.check("max_tokens", max_tokens)
    sem, opts = resolve_options(ported.generation_config, semantics, options,
                                eos_token_id=ported.config.eos_token_id)
    tok = ported.tokenizer
    for key in ("shortlist", "alignment"):  # "none" turns off what the folder records (decoder.yml's)
        if opts.get(key) in (OFF, [OFF], (OFF,)):
            del opts[key]
    if sem == "marian" and opts.get("shortlist") is not None:  # other semantics refuse it by name
        spec = opts["shortlist"]
        if spec == ported.generation_config.get("shortlist"):  # the folder's own (convert copied it in)
            spec = folder_shortlist(getattr(ported, "path", "."), spec)
        opts["shortlist"] = shortlist_for_tokenizer(spec, tok)
    if keep_special_tokens:
        check_keep_special_tokens(tok)
    cfg = ported.config
    source_prefix, source_suffix, forced, lang_opts = language_options(tok, sem, source_lang, target_lang)
    opts.update(lang_opts)
    warn_unmarked_lines(tok, lines)
    encoded = [source_prefix + ids + source_suffix for ids in tok.encode_batch(lines)]
    # Marian's --max-length without --max-length-crop (the search refuses such a line too, without its number);
    # sampling follows transformers' rules, where max_length is the output's
    marian_cap = (POSITIVE_INT.check("max_length", opts.get("max_length", MarianOptions.max_length))
                  if sem == "marian" and not opts.get("max_length_crop") and not is_sampling(opts) else None)
    cfg.check_source_lengths(encoded)
    for i, ids in enumerate(encoded):
        if marian_cap is not None and len(ids) > marian_cap:
            raise InvalidInputError(f"line {i + 1} has {len(ids)} tokens (</s> included), but `max_length` is "
                                    f"{marian_cap} (Marian skips such lines; raise `max_length` or set "
                                    "`max_length_crop`)")
    widths: list[tuple[int, ...]] = []  # per group of batches: each line's own batch width (its length cap)
    runs: list[list[tuple[int, int]]] = []  # per group of batches: the runs of lines it encodes apart
    batching = framework_batching(sem, opts, batch_size, max_tokens)
    members = len(ported.models) if isinstance(ported.models, Sequence) else 1  # a runtime (ONNX) is one
    max_lines = search_group_lines(cfg, beam_width(sem, opts), members)
    if batching is not None:
        # the length cap depends on the batch (marian): group lines as marian-decoder does
        cap = opts.get("max_length") if opts.get("max_length_crop") else None
        lengths = [len(x) if cap is None else min(len(x), cap) for x in encoded]
        numbers, batches = part_batches(marian_batches(lengths, **batching), index, count)
        # a shortlist is made per Marian batch, and sampling's draws depend on the batch: those stay apart
        if opts.get("shortlist") is None and not is_sampling(opts):
            batches, widths = decode_groups(batches, lengths, max_lines,
                                            chunk_lines=pool_chunk_lines(pool_lines(**batching)))
            runs = [encoder_runs(w) for w in widths]
    else:
        lengths = [len(x) for x in encoded]
        numbers, batches = part_batches(make_batches(lengths, batch_size, max_tokens), index, count)
        if max_tokens is None and not is_sampling(opts) and (
                sem == "hf" or (sem == "fairseq" and not opts.get("no_repeat_ngram_size"))):
            # several batches decoded together, each line as in its own batch. fairseq: the cap is max_len_a x the
            # batch's width + max_len_b, so each line keeps its own (not with fairseq 0.12's n-gram blocker, which
            # reads a buffer as wide as the cap); hf: no limit depends on the batch. Not when sampling, whose
            # draws depend on the batch; --max-tokens bounds a search's size itself
            batches, group_widths = decode_groups(batches, lengths, max_lines)
            widths = group_widths if sem == "fairseq" else []
            runs = [encoder_runs(w) for w in group_widths]  # each batch encoded at its own width, as apart
    results: list[list[Hypothesis]] = [[] for _ in lines]
    bar = None
    if progress:
        from tqdm.auto import tqdm  # only when a bar is drawn

        # this part's lines (all without `part`); no bar in logs
        bar = tqdm(total=sum(map(len, batches)), unit="line", file=sys.stderr, disable=None, leave=False)
    strip = {cfg.eos_token_id, cfg.pad_token_id, *forced}  # fairseq's symbols_to_strip_from_output
    seed = opts.pop("seed", None) if is_sampling(opts) else None
    for n, batch in enumerate(batches):
        if seed is not None:
            opts["seed"] = part_seed(seed, first_line, numbers[n])  # sampling decodes each batch apart
        try:
            hyps = generate(ported.models, [encoded[i] for i in batch], semantics=sem,
                            encoder_runs=runs[n] if runs else None, **opts,
                            **({"batch_widths": widths[n]} if widths else {}))
        except NaNLogProbs:
            raise NonFiniteOutputError(_first_nan_line(ported, [encoded[i] for i in batch], batch, sem, opts)) \
                from None
        for i, nbest in zip(batch, hyps):
            if any(_is_nan(h) for h in nbest):
                raise NonFiniteOutputError(i + 1)
            results[i] = [h.with_text(decode_text(tok, [t for t in h.tokens if t not in strip], keep_special_tokens))
                          for h in nbest]
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return results


def check_part(part: tuple[int, int] | None) -> tuple[int, int]:
    """``translate``'s ``part`` as ``(index, count)``, ``(0, 1)`` for None; a typed error if it is not one."""
    if part is None:
        return 0, 1
    if not (isinstance(part, (tuple, list)) and len(part) == 2):
        raise InvalidInputError(f"`part` must be (index, count), but is {part!r}")
    index, count = NONNEGATIVE_INT.check("part index", part[0]), POSITIVE_INT.check("part count", part[1])
    if index >= count:
        raise InvalidInputError(f"`part` index must be below its count, but is {index} of {count}")
    return index, count


def part_batches(batches: list[list[int]], index: int, count: int) -> tuple[list[int], list[list[int]]]:
    """The numbers and the batches of part ``index`` of ``count`` (:func:`check_part`):
    every ``count``-th batch, from the ``index``-th."""
    numbers = list(range(index, len(batches), count))
    return numbers, [batches[n] for n in numbers]


# translate()'s own keywords, which are not decoding options of a semantics
TRANSLATE_KEYWORDS = tuple(name for name, p in inspect.signature(translate).parameters.items()
                           if p.kind is inspect.Parameter.KEYWORD_ONLY)
