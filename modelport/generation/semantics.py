"""The registry of decoding semantics, their options, and the CLI's decoding flags.

:data:`SEMANTICS` maps each semantics' name to a :class:`Semantics` entry:
its options dataclass (the options that framework exposes, with its
defaults), the step algorithm that reproduces its search, and the aliases
that map modelport's fairseq-style option names (``beam``, ``lenpen``,
``nbest``) to its own. Adding a framework's semantics is one new entry.
:data:`DECODING_OPTIONS` lists every decoding flag of ``translate`` and
``validate``; the CLI builds its arguments from it
(:func:`add_decoding_arguments`) and turns them back into keyword options
(:func:`decoding_kwargs`).

This module imports no torch (``import modelport.cli`` must stay fast): the
step algorithms are imported when one is made. The rules themselves are
written next to the code that reproduces them in
:mod:`modelport.generation.beam`; what follows is the summary, for the reader
choosing a profile.

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
    * ``shortlist`` (``--shortlist``): per batch, only a list of target ids
      is scored (log-softmax over them), see :mod:`modelport.generation.shortlist`;
    * ``max_length`` bounds the *source* (tokens incl. ``</s>``); Marian skips
      longer lines silently or, with ``max_length_crop``, crops them to
      ``max_length`` tokens ending in ``</s>``. Here a longer line is an error
      unless ``max_length_crop``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInputError
from modelport.generation.options import (MARIAN_FLOAT, MARIAN_NONNEGATIVE_FLOAT, MARIAN_POSITIVE_FLOAT,
                                          POSITIVE_INT, TRANSLATE_BATCH_SIZE, VALIDATE_BATCH_SIZE, FairseqOptions,
                                          HFOptions, MarianOptions, SamplingOptions, early_stopping, finite_float,
                                          hf_length_limits, nonnegative_int, option_defaults, positive_float,
                                          positive_int, probability, split_options)

if TYPE_CHECKING:
    from modelport.generation.beam import StepAlgorithm


# ---------------------------------------------------------------------------
# the registry

# cfg, parsed options, the decoder's max positions -> the step algorithm
AlgorithmFactory = Callable[[Any, Any, int], "StepAlgorithm"]


@dataclass(frozen=True)
class Semantics:
    """One framework's decoding semantics.

    ``options``: its options dataclass. ``algorithm``: makes its step
    algorithm from a model config, parsed options and the decoder's max
    positions. ``aliases``: modelport's (fairseq-style) option name -> this
    semantics' name. ``alias_wins``: which one is kept when a caller gives
    both an alias and its target name. ``ignored``: keys dropped without
    complaint (a folder's ``generation_config.json`` entries another layer
    reads). ``batching``: options that choose the batches (read by
    ``translate``, not by the search). ``carried_over``: a folder's defaults
    that still apply when it is decoded with this semantics instead of its
    own (fairseq-style names).
    """

    name: str
    options: type
    algorithm: AlgorithmFactory
    aliases: Mapping[str, str] = field(default_factory=dict)
    alias_wins: bool = False
    ignored: frozenset[str] = frozenset()
    batching: tuple[str, ...] = ()
    carried_over: tuple[str, ...] = ()

    def rename(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` under this semantics' own names (a None alias is absent)."""
        opts = dict(options)
        for alias, name in self.aliases.items():
            if alias not in opts:
                continue
            value = opts.pop(alias)
            if value is not None and (self.alias_wins or opts.get(name) is None):
                opts[name] = value
        return opts

    def parse(self, options: Mapping[str, Any]) -> Any:
        """The options dataclass from keyword options (aliases renamed,
        ignored keys dropped); an option it does not know is an error."""
        opts = {k: v for k, v in self.rename(options).items() if k not in self.ignored}
        parsed, rest = split_options(self.options, opts)
        if rest:
            raise InvalidInputError(f"option(s) {', '.join(sorted(rest))} are not known to the {self.name} "
                                    "semantics")
        return parsed

    def make(self, cfg: Any, options: Mapping[str, Any], max_positions: int) -> StepAlgorithm:
        """The step algorithm for ``options`` (see :meth:`parse`)."""
        return self.algorithm(cfg, self.parse(options), max_positions)


# The step algorithms need torch and are imported when one is made, so that
# this registry (and the CLI reading it) stays torch-free.
def _fairseq_search(cfg: Any, opts: FairseqOptions, max_positions: int) -> StepAlgorithm:
    from modelport.generation.beam import FairseqBeamSearch

    return FairseqBeamSearch(cfg, opts, max_positions)


def _hf_search(cfg: Any, opts: HFOptions, max_positions: int) -> StepAlgorithm:
    from modelport.generation.beam import HFBeamSearch

    return HFBeamSearch(cfg, opts, max_positions)


def _marian_search(cfg: Any, opts: MarianOptions, max_positions: int) -> StepAlgorithm:
    from modelport.generation.beam import MarianBeamSearch

    return MarianBeamSearch(cfg, opts, max_positions)


def _sampling_search(cfg: Any, opts: SamplingOptions, max_positions: int) -> StepAlgorithm:
    from modelport.generation.sampling import SamplingSearch

    return SamplingSearch(cfg, opts, max_positions)


# modelport's option names -> transformers' names (hf semantics and sampling)
HF_ALIASES = {"beam": "num_beams", "lenpen": "length_penalty", "nbest": "num_return_sequences",
              "min_len": "min_length"}
# modelport's option names -> Marian's names
MARIAN_ALIASES = {"beam": "beam_size", "lenpen": "normalize", "nbest": "n_best"}
# how many hypotheses per line, by each semantics' name for it (sampling and distill take one)
NBEST_OPTIONS = ("nbest", "num_return_sequences", "n_best")


def more_than_one_best(options: Mapping[str, Any]) -> str | None:
    """The name of an n-best option in ``options`` that asks for more than one hypothesis
    per line (Marian's ``n_best=True`` does: a beam's worth), or None."""
    for name in NBEST_OPTIONS:
        value = options.get(name)
        if value is True or (value not in (None, False) and value != 1):
            return name
    return None

# generation_config.json keys the model config already holds
TOKEN_IDS = ("decoder_start_token_id", "pad_token_id", "eos_token_id")
# marian-decoder's batching options (decoder.yml names, ``-`` as ``_``): they
# choose the batches, which set each line's length cap (marian_batching.py)
MARIAN_BATCHING = ("mini_batch", "maxi_batch", "maxi_batch_sort", "mini_batch_words")

SEMANTICS: dict[str, Semantics] = {s.name: s for s in (
    Semantics("fairseq", FairseqOptions, _fairseq_search, ignored=frozenset({"semantics", "max_positions"})),
    Semantics("hf", HFOptions, _hf_search, HF_ALIASES, ignored=frozenset({"semantics"}),
              carried_over=("beam", "lenpen", "nbest", "no_repeat_ngram_size")),
    # the caller's alias wins: translate passes it next to the folder's own Marian names
    Semantics("marian", MarianOptions, _marian_search, MARIAN_ALIASES, alias_wins=True,
              ignored=frozenset({"semantics", "max_positions", *TOKEN_IDS}), batching=MARIAN_BATCHING,
              carried_over=("beam", "nbest")),
)}

# greedy search and sampling (``do_sample``/``greedy``/``sampling``): transformers'
# rules whatever the semantics; beam-search options of any framework are dropped
SAMPLING = Semantics("sampling", SamplingOptions, _sampling_search, HF_ALIASES,
                     ignored=frozenset({"semantics", "sampling", "greedy", "num_beams", "num_return_sequences",
                                        "length_penalty"}))


def get_semantics(name: str) -> Semantics:
    """The registry entry of ``name``; an unknown name is an error listing the known ones."""
    try:
        return SEMANTICS[name]
    except (KeyError, TypeError):
        raise InvalidInputError(f"`{name}` is not a known semantics (known: {', '.join(SEMANTICS)})") from None


def is_sampling(options: Mapping[str, Any]) -> bool:
    """Whether ``options`` ask for greedy search or sampling instead of beam search."""
    return bool(options.get("sampling") or options.get("do_sample") or options.get("greedy"))


def parse_options(semantics: str, options: Mapping[str, Any]) -> Any:
    """Decoding keyword options (modelport's aliases or the semantics' own
    names) as that semantics' options dataclass, e.g. ``FairseqOptions`` for
    ``validate``'s fairseq options; unknown options are an error."""
    return get_semantics(semantics).parse(options)


def check_options(semantics: str, options: Mapping[str, Any]) -> None:
    """:func:`parse_options` of everything in ``options`` but the batching options (which
    choose batches, not the search): their values checked before any work."""
    entry = get_semantics(semantics)
    entry.parse({k: v for k, v in options.items() if k not in entry.batching})


# each semantics' option for the hypotheses a sentence keeps per decoding step
BEAM_OPTION = {"fairseq": "beam", "hf": "num_beams", "marian": "beam_size"}


def beam_width(semantics: str, options: Mapping[str, Any]) -> int:
    """The beam ``options`` (the semantics' own names) ask for, else the semantics' default."""
    entry = get_semantics(semantics)
    name = BEAM_OPTION[entry.name]
    value = entry.rename(options).get(name)
    if value is None:
        value = option_defaults(entry.options)[name]
    return POSITIVE_INT.check(name, value)  # the search's own check, before it runs


def check_generation_config(generation_config: Mapping[str, Any], where: str = "generation_config.json") -> None:
    """A folder's decoding defaults as its semantics reads them: a value of the wrong kind
    (``"beam": "5"``) is an error naming the file when the folder is loaded, not a value an
    exporter coerces or copies."""
    try:
        check_options(generation_config.get("semantics", "fairseq"),
                      {k: v for k, v in generation_config.items() if k != "max_positions"})
    except InvalidInputError as e:
        raise InvalidInputError(f"{where}: {e}") from None


# ---------------------------------------------------------------------------
# the decoding flags of translate and validate


DECODING_GROUP_TITLE = "decoding (defaults: the ported folder's generation_config.json)"


@dataclass(frozen=True, kw_only=True)
class DecodingOption:
    """One decoding flag: how argparse reads it and which keyword option of
    ``translate()`` (``name``) it becomes.

    ``semantics``: the semantics that read it (empty: all, or not a search
    option). ``search_only``: ``validate`` offers it too (with
    ``search_only_help`` / ``search_only_choices`` where they differ).
    ``search_only_semantics``: ``validate`` takes it only on ports validated
    with these semantics (Marian ports: marian), whose reference is given
    it too; a port validated with another refuses it by flag, since its
    reference could not be given it (empty: every port takes it).
    ``requires``: a flag without which it is an error. ``convert``: turns the
    parsed value into the option's value.
    """

    name: str
    flag: str
    help: str
    parse: Callable[[str], Any] | None = None
    semantics: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    nargs: str | None = None
    const: Any = None
    metavar: str | None = None
    store_true: bool = False
    search_only: bool = False
    search_only_help: str | None = None
    search_only_choices: tuple[str, ...] | None = None
    search_only_semantics: tuple[str, ...] = ()
    requires: str | None = None
    convert: Callable[[Any], Any] | None = None

    @property
    def dest(self) -> str:
        """The argparse destination (the flag's name, ``-`` as ``_``)."""
        return self.flag[2:].replace("-", "_")

    def argparse_kwargs(self, search_only: bool = False) -> dict[str, Any]:
        """Keyword arguments of ``add_argument(self.flag, ...)``."""
        kw: dict[str, Any] = {"help": self.search_only_help if search_only and self.search_only_help else self.help}
        if self.store_true:
            kw.update(action="store_true", default=None)  # None: not given, the folder's default applies
            return kw
        if self.parse is not None:
            kw["type"] = self.parse
        choices = self.search_only_choices if search_only and self.search_only_choices else self.choices
        if choices is not None:
            kw["choices"] = list(choices)
        if self.nargs is not None:
            kw.update(nargs=self.nargs, const=self.const)
        if self.metavar is not None:
            kw["metavar"] = self.metavar
        return kw


_MARIAN = ("marian",)


def _marian_port(what: str) -> str:
    """``validate``'s help of a Marian flag (both sides decode with it)."""
    return f"Marian ports: {what}; pymarian decode is given the same option"


DECODING_OPTIONS: tuple[DecodingOption, ...] = (
    DecodingOption(name="beam", flag="--beam", parse=positive_int, help="beam size", search_only=True),
    DecodingOption(name="lenpen", flag="--lenpen", parse=finite_float, search_only=True,
                   help="length penalty (fairseq: score / len**lenpen; marian: as --normalize)"),
    DecodingOption(name="nbest", flag="--nbest", parse=positive_int, search_only=True,
                   help="hypotheses returned per input (at most the beam size)"),
    DecodingOption(name="max_len_a", flag="--max-len-a", parse=finite_float, semantics=("fairseq",), search_only=True,
                   help="max length = a * source length + b"),
    DecodingOption(name="max_len_b", flag="--max-len-b", parse=int, semantics=("fairseq",), search_only=True,
                   help="max length = a * source length + b"),
    DecodingOption(name="min_len", flag="--min-len", parse=nonnegative_int, semantics=("fairseq", "hf"),
                   search_only=True, help="minimum output length (EOS blocked before)"),
    DecodingOption(name="unkpen", flag="--unkpen", parse=finite_float, semantics=("fairseq",), search_only=True,
                   help="unknown-word penalty"),
    DecodingOption(name="no_repeat_ngram_size", flag="--no-repeat-ngram-size", parse=nonnegative_int,
                   semantics=("fairseq", "hf"), search_only=True,
                   help="block repeated n-grams of this size (fairseq semantics: as fairseq 0.12 on CPU, whose "
                        "blocker reads the pad-filled end of its buffer and so blocks nothing in practice)"),
    DecodingOption(name="semantics", flag="--semantics", choices=tuple(SEMANTICS), search_only=True,
                   help="whose beam search to reproduce",
                   search_only_help="whose beam search to compare: the port's own framework's (fairseq ports: "
                                    "fairseq; T5 ports: hf; Marian ports: marian); any other is refused at once"),
    DecodingOption(name="batch_size", flag="--batch-size", parse=positive_int, search_only=True,
                   help=f"sentences per batch, batches sorted by length (default: {TRANSLATE_BATCH_SIZE}; fairseq "
                        "semantics: a batch's width sets its lines' length cap, as in fairseq, and consecutive batches "
                        "are decoded together, each line keeping its own cap, up to 256 lines by the model's width; "
                        "hf semantics: no cap depends on the batch, and batches are decoded together alike; "
                        "marian semantics: as marian-decoder, see --mini-batch)",
                   search_only_help=f"sentences per batch, batches sorted by length (default: {VALIDATE_BATCH_SIZE}); "
                                    "refused on Marian ports, batched as marian-decoder does (see --mini-batch)"),
    DecodingOption(name="max_tokens", flag="--max-tokens", parse=positive_int, search_only=True,
                   help="source tokens per batch (instead of --batch-size)",
                   search_only_help="source tokens per batch (instead of --batch-size; refused on Marian ports)"),
    DecodingOption(name="early_stopping", flag="--early-stopping", choices=("true", "false", "never"),
                   semantics=("hf",), convert=early_stopping, help="hf semantics: stopping rule"),
    DecodingOption(name="normalize", flag="--normalize", parse=MARIAN_NONNEGATIVE_FLOAT.parse, nargs="?", const=1.0,
                   metavar="ALPHA", semantics=_MARIAN, search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: score / length**ALPHA (bare flag: 1.0)",
                   search_only_help=_marian_port("score / length**ALPHA (bare flag: 1.0)")),
    DecodingOption(name="word_penalty", flag="--word-penalty", parse=MARIAN_FLOAT.parse, metavar="WP",
                   semantics=_MARIAN, search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: subtract WP x length from the score",
                   search_only_help=_marian_port("subtract WP x length from the score")),
    DecodingOption(name="max_length", flag="--max-length", parse=positive_int, metavar="N",
                   semantics=("marian", "hf"), search_only=True, search_only_semantics=("marian", "hf"),
                   help="marian semantics: longest source in tokens, </s> included (longer lines are an error "
                        "unless --max-length-crop); hf semantics: max_length",
                   search_only_help="Marian ports: longest source in tokens, </s> included (a longer line is an "
                                    "error unless --max-length-crop); T5 ports: generate's max_length (decoder "
                                    "start included); the reference is given the same option"),
    DecodingOption(name="max_length_factor", flag="--max-length-factor", parse=MARIAN_POSITIVE_FLOAT.parse,
                   metavar="F", semantics=_MARIAN, search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: max output length = F x the batch's padded source length",
                   search_only_help=_marian_port("max output length = F x the batch's padded source length")),
    DecodingOption(name="max_length_crop", flag="--max-length-crop", store_true=True, semantics=_MARIAN,
                   search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: crop sources longer than --max-length",
                   search_only_help=_marian_port("crop sources longer than --max-length")),
    DecodingOption(name="mini_batch", flag="--mini-batch", parse=positive_int, metavar="N", semantics=_MARIAN,
                   search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics, without --batch-size/--max-tokens: lines per batch as marian-decoder "
                        "forms them (default: decoder.yml's, else 1); the batch's padded width sets the length cap",
                   search_only_help=_marian_port("lines per batch as marian-decoder forms them (default: "
                                                 "decoder.yml's, else 1); the batch's padded width sets the "
                                                 "length cap")),
    DecodingOption(name="maxi_batch", flag="--maxi-batch", parse=positive_int, metavar="N", semantics=_MARIAN,
                   search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: mini-batches read and sorted together, as marian-decoder does",
                   search_only_help=_marian_port("mini-batches read and sorted together")),
    DecodingOption(name="maxi_batch_sort", flag="--maxi-batch-sort", choices=("none", "src", "trg"),
                   semantics=_MARIAN, search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: order within a maxi-batch, as marian-decoder's",
                   search_only_help=_marian_port("order within a maxi-batch")),
    DecodingOption(name="allow_unk", flag="--allow-unk", store_true=True, semantics=_MARIAN,
                   search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: allow <unk> in the output (suppressed by default)",
                   search_only_help=_marian_port("allow <unk> in the output (suppressed by default)")),
    DecodingOption(name="shortlist", flag="--shortlist", nargs="+", metavar="ARG", semantics=_MARIAN,
                   search_only=True, search_only_semantics=_MARIAN,
                   help="marian semantics: Marian's lexical shortlist, FILE [FIRST [BEST [THRESHOLD]]] (a text "
                        "lex.s2t; defaults 100 100 0): per batch only the FIRST target ids and the BEST "
                        "translations above THRESHOLD of its source words are scored; none turns the folder's off "
                        "(default: the folder's decoder.yml shortlist, else none)",
                   search_only_help=_marian_port("Marian's lexical shortlist FILE [FIRST [BEST [THRESHOLD]]] (a "
                                                 "text lex.s2t; defaults 100 100 0) instead of decoder.yml's; none: "
                                                 "none on either side (default: decoder.yml's, the port reading "
                                                 "the folder's copy, checked to be the same)")),
    DecodingOption(name="do_sample", flag="--sampling", store_true=True, help="sample instead of beam search"),
    DecodingOption(name="top_k", flag="--sampling-topk", parse=positive_int, requires="--sampling",
                   help="sample from the k most likely tokens"),
    DecodingOption(name="top_p", flag="--sampling-topp", parse=probability, requires="--sampling",
                   help="sample from the smallest set with this mass"),
    DecodingOption(name="temperature", flag="--temperature", parse=positive_float, requires="--sampling",
                   help="sampling temperature (> 0)"),
    DecodingOption(name="seed", flag="--seed", parse=int, requires="--sampling",
                   help="random seed for sampling: the same input, seed and batching give the same output; "
                   "each batch draws its own numbers (the first from the seed itself)"),
)


def decoding_flags(search_only: bool = False, without: Collection[str] = ()) -> tuple[DecodingOption, ...]:
    """The flags ``translate`` offers, or (``search_only``) those ``validate``
    offers (some for some ports only: ``search_only_semantics``); ``without``:
    option names a command leaves out (``distill`` trains on first-best translations: no ``nbest``)."""
    return tuple(o for o in DECODING_OPTIONS if (o.search_only or not search_only) and o.name not in without)


def add_decoding_arguments(group: argparse._ActionsContainer, search_only: bool = False,
                           without: Collection[str] = ()) -> None:
    """Add the decoding flags to an argparse parser or argument group
    (``search_only``, ``without``: as :func:`decoding_flags`)."""
    for opt in decoding_flags(search_only, without):
        group.add_argument(opt.flag, **opt.argparse_kwargs(search_only))


def decoding_kwargs(values: Mapping[str, Any], search_only: bool = False,
                    without: Collection[str] = ()) -> dict[str, Any]:
    """The keyword options for ``translate()`` (``validate()`` with
    ``search_only``) from parsed flag values (``vars(args)``): flags not
    given (None) are left out; a flag given without the flag it requires is
    an error."""
    by_flag = {o.flag: o for o in DECODING_OPTIONS}
    out: dict[str, Any] = {}
    for opt in decoding_flags(search_only, without):
        value = values.get(opt.dest)
        if value is None:
            continue
        if opt.requires is not None and not values.get(by_flag[opt.requires].dest):
            raise InvalidInputError(f"{opt.flag} needs {opt.requires}")
        out[opt.name] = opt.convert(value) if opt.convert is not None else value
    return out


__all__ = ["BEAM_OPTION", "DECODING_GROUP_TITLE", "DECODING_OPTIONS", "HF_ALIASES", "MARIAN_ALIASES", "MARIAN_BATCHING",
           "NBEST_OPTIONS", "SAMPLING", "SEMANTICS", "TOKEN_IDS", "DecodingOption", "FairseqOptions", "HFOptions",
           "MarianOptions", "SamplingOptions", "Semantics", "add_decoding_arguments", "beam_width",
           "check_generation_config", "check_options", "decoding_flags", "decoding_kwargs", "get_semantics",
           "hf_length_limits", "is_sampling", "more_than_one_best", "parse_options", "split_options"]
