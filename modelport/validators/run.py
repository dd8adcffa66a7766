"""``modelport validate``: run the reference framework and the port on the same
lines, in the same batches, with the same decoding options, and report.

The result is a :class:`~modelport.reports.parity.ParityReport` with the
sections ``tokenizer`` (from :mod:`modelport.validators.tokenizer`),
``forward`` (max |logit diff| teacher-forced on the reference's outputs; on
failure, the first divergent module), ``beam`` (token sequences and scores,
every mismatch explained), ``bleu`` (with ``references``). Parity passes when
the tokenizer and forward sections pass and beam search has no real
divergence and no score mismatch; numerical near-ties are reported but do not
fail it.

Decoding options come as one mapping (``decoding=``, or keywords collected
into it): fairseq's names (modelport's aliases under hf semantics) for fairseq
and T5 ports; ``beam``/``lenpen``/``nbest`` and Marian's own names for Marian
ports, which are checked against Marian itself (pymarian): with the shortlist the
folder records from decoder.yml on both sides, and, where decoder.yml asked for
word alignments or ``alignment=`` is given, the alignments too. fairseq ports whose
special tokens a fairseq task places (BART, mBART, M2M100/NLLB) are validated
by :mod:`modelport.validators.fairseq_tasks` (an ``inputs`` section, one
report per language pair).
"""

from __future__ import annotations

import filecmp
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from modelport.api import PortedModel, convert, load
from modelport.converters.fairseq import NAME_TABLE as FAIRSEQ_NAME_TABLE
from modelport.converters.t5 import NAME_TABLE as T5_NAME_TABLE
from modelport.errors import InvalidInputError
from modelport.files import lines_of, output_folder_problem, references_for
from modelport.generation.alignment import OFF, parse_alignment
from modelport.generation.options import VALIDATE_BATCH_SIZE
from modelport.generation.scoring import prefix_scorer, token_log_probs
from modelport.generation.semantics import SEMANTICS, TOKEN_IDS, beam_width, check_options, decoding_flags
from modelport.generation.shortlist import ShortlistSpec, folder_shortlist, shortlist_for_tokenizer
from modelport.generation.translate import generate, make_batches, resolve_options, translate
from modelport.model.folder import TOKENIZER_CONFIG_NAME, PortedFolder
from modelport.model.io import read_json
from modelport.progress import Steps
from modelport.reports.parity import (MarianBeamSection, MarianForwardSection, ParityMeta, ParityReport,
                                      TokenizerSection, WeightDivergence)
from modelport.validators.beam import AlignmentCheck, compare_alignments, compare_hypotheses
from modelport.validators.fairseq_tasks import TASK_TOKENIZERS, requested_pairs, validate_task_port
from modelport.validators.provenance import check_reference
from modelport.validators.sections import FORWARD_TOL, bleu_section, figures, finish, forward_section, score_diffs
from modelport.validators.references.fairseq_generator import FairseqReference, fairseq_cpu_ngram_noop
from modelport.validators.references.marian import WORD_SCORE_PRECISION, MarianReference, printed_tolerance
from modelport.validators.references.transformers_generator import TransformersReference
from modelport.validators.tokenizer import validate_tokenizer

CHECKS = ("tokenizer", "forward", "beam", "bleu")

# validate()'s own keywords among the decoding flags the CLI gives it
_KEYWORDS = ("semantics", "batch_size", "max_tokens")
# the decoding options of a fairseq or T5 port's search: those of `modelport validate`'s flags every port takes
# (fairseq's names; modelport's aliases under hf semantics)
SEARCH_OPTIONS = tuple(o.name for o in decoding_flags(search_only=True)
                       if o.name not in _KEYWORDS and not o.search_only_semantics)
# validate's flags only ports validated with some semantics take (Marian's: --normalize, --shortlist, ...;
# fairseq's: --max-len-a, --unkpen, ...), with those semantics
PORT_OPTIONS = tuple((o, o.search_only_semantics or o.semantics) for o in decoding_flags(search_only=True)
                     if o.search_only_semantics or o.semantics)
# a Marian port's: modelport's aliases and Marian's own names (decoder.yml, ``-`` as ``_``)
_MARIAN = SEMANTICS["marian"]
MARIAN_OPTIONS = (*_MARIAN.aliases, *(f.name for f in fields(_MARIAN.options)), *_MARIAN.batching)


# source format -> the semantics its original framework's search has: the only one validate can compare
VALIDATED_SEMANTICS = {"fairseq": "fairseq", "t5": "hf", "marian": "marian"}


def check_semantics(source_format: str, semantics: str | None) -> None:
    """Refuse, before any work, a semantics ``validate`` cannot compare for a
    port of ``source_format``: the reference runs its own search, so only
    the original framework's semantics has anything to be identical to."""
    expected = VALIDATED_SEMANTICS.get(source_format)
    if semantics is None or expected is None or semantics == expected:
        return
    known = "; ".join(f"{fmt} ports: {sem}" for fmt, sem in VALIDATED_SEMANTICS.items())
    raise InvalidInputError(f"`--semantics {semantics}` cannot be validated on a {source_format} port: validate "
                            f"compares with the original framework's own search ({known}); use `modelport "
                            f"translate --semantics {semantics}` to decode with it")


def check_port_options(source_format: str, decoding: Mapping[str, Any]) -> None:
    """Refuse, before any work, the options only another framework's search
    reads (:data:`PORT_OPTIONS`: Marian's on a fairseq or T5 port, fairseq's
    on a Marian port), by flag and all at once, rather than ignore them."""
    semantics = VALIDATED_SEMANTICS.get(source_format)
    if semantics is None:  # refused later, naming the formats validate knows
        return
    needs: dict[str, list[str]] = {}
    for opt, readers in PORT_OPTIONS:
        if decoding.get(opt.name) is not None and semantics not in readers:
            ports = " or ".join(f for f, s in VALIDATED_SEMANTICS.items() if s in readers)
            needs.setdefault(ports, []).append(f"`{opt.flag}`")
    if needs:
        one = sum(map(len, needs.values())) == 1
        parts = [f"{', '.join(flags)} {'needs' if len(flags) == 1 else 'need'} a {ports} port (validate gives "
                 f"{'it' if len(flags) == 1 else 'them'} to that port's reference too)"
                 for ports, flags in needs.items()]
        raise InvalidInputError(f"{'; '.join(parts)}, but this is a {source_format} port; leave "
                                f"{'it' if one else 'them'} out")


def _check_semantics(ported: PortedModel, semantics: str, expected: str) -> None:
    if semantics != expected:
        raise InvalidInputError(f"{ported.source_format} ports are validated with {expected} semantics, "
                                f"not `{semantics}`")


def _preflight(ported_dir: str | os.PathLike[str], source_format: str, conversion: Mapping[str, Any],
               reference: str, semantics: str | None, decoding: Mapping[str, Any]) -> None:
    """What can be refused from the folder's records alone, before a model is loaded
    (``decoding`` holds validate's ``batch_size``/``max_tokens`` too)."""
    check_semantics(source_format, semantics)
    check_port_options(source_format, decoding)
    batching = [flag for name, flag in (("batch_size", "--batch-size"), ("max_tokens", "--max-tokens"))
                if decoding.get(name) is not None]
    if batching and source_format == "marian":
        raise InvalidInputError(f"`{'`, `'.join(batching)}` cannot batch a Marian port: both sides are batched as "
                                "marian-decoder does (--mini-batch, --maxi-batch, --maxi-batch-sort, else "
                                "decoder.yml), so the length caps match; leave "
                                f"{'it' if len(batching) == 1 else 'them'} out")
    if decoding.get("alignment") is not None and source_format != "marian":
        raise InvalidInputError(f"`alignment` compares Marian's word alignments (marian-decoder --alignment): it "
                                f"needs a Marian port, but this is a {source_format} port")
    check_reference(conversion, str(reference), ported_dir)


def _fairseq_reference(ported: PortedModel, reference: str, semantics: str, opts: dict[str, Any]
                       ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """fairseq's loader and SequenceGenerator, with fairseq's option names."""
    _check_semantics(ported, semantics, "fairseq")
    tok_cfg = _tokenizer_config(ported)
    ref = FairseqReference(reference, tok_cfg.get("source_lang"), tok_cfg.get("target_lang"))
    return ref, FAIRSEQ_NAME_TABLE, {k: v for k, v in opts.items() if k != "ngram_blocking"}


def _transformers_reference(ported: PortedModel, reference: str, semantics: str, opts: dict[str, Any]
                            ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """transformers' own model and ``generate`` (hf semantics; modelport's
    fairseq-style aliases beam/lenpen/nbest/min_len renamed)."""
    _check_semantics(ported, semantics, "hf")
    ref_opts = SEMANTICS["hf"].rename(opts)
    ref_opts.setdefault("decoder_start_token_id", ported.config.decoder_start_token_id)
    return TransformersReference(reference), T5_NAME_TABLE, ref_opts


# (ported, reference path, semantics, options) -> (reference, its converter's name table, its options)
ReferenceFactory = Callable[[PortedModel, str, str, dict[str, Any]], tuple[Any, dict[str, Any], dict[str, Any]]]
# source format -> the reference framework that validates its ports (Marian: validate_marian)
REFERENCES: dict[str, ReferenceFactory] = {"fairseq": _fairseq_reference, "t5": _transformers_reference}


def _tokenizer_config(ported: PortedModel) -> dict[str, Any]:
    path = Path(ported.tokenizer_dir) / TOKENIZER_CONFIG_NAME
    return read_json(path) if path.is_file() else {}


def _decoding_options(decoding: Mapping[str, Any], known: Sequence[str], source_format: str) -> dict[str, Any]:
    """The options of ``decoding`` a port of ``source_format`` decodes with
    (None = not given; another framework's options were refused by
    :func:`check_port_options`)."""
    known = (*known, *(o.name for o, readers in PORT_OPTIONS
                       if o.search_only_semantics and VALIDATED_SEMANTICS.get(source_format) in readers))
    unknown = [k for k in decoding if k not in known and k not in SEARCH_OPTIONS]
    if unknown:
        raise InvalidInputError(f"`{', '.join(unknown)}` is not a decoding option of {source_format} ports "
                                f"(known: {', '.join(known)})")
    return {k: v for k, v in decoding.items() if k in known}


def _checks(only: Sequence[str] | str | None) -> set[str]:
    if isinstance(only, str):
        only = (only,)
    checks = set(only or CHECKS)
    if not checks <= set(CHECKS):
        raise InvalidInputError(f"`{', '.join(sorted(checks - set(CHECKS)))}` is not a known check "
                                f"(known: {', '.join(CHECKS)})")
    return checks


def _tokenizer_section(ported_dir: str | os.PathLike[str], reference: str, lines: Sequence[str],
                       references: Sequence[str] | None) -> TokenizerSection:
    found = validate_tokenizer(ported_dir, reference, list(lines),
                               target_lines=list(references) if references else None)
    return TokenizerSection.from_json(found["tokenizer"])


def _ngram_blocking_note(opts: dict[str, Any]) -> str:
    """Set ``opts["ngram_blocking"]`` to what the installed fairseq does; the note saying so."""
    if fairseq_cpu_ngram_noop():
        opts["ngram_blocking"] = "cpu-0.12"
        return ("the installed fairseq's CPU n-gram blocker (0.12) compares with the pad-filled end of its token "
                "buffer and blocks nothing; modelport reproduces it (ngram_blocking='cpu-0.12', the default of "
                "fairseq semantics)")
    opts["ngram_blocking"] = "intended"
    return ("the installed fairseq blocks repeated n-grams of the last generated tokens; modelport did the same "
            "(ngram_blocking='intended')")


def validate(ported_dir: str | os.PathLike[str], reference: str,
             data_lines: str | os.PathLike[str] | Sequence[str] | None = None, *,
             src_tokens: Sequence[list[int]] | None = None, semantics: str | None = None,
             decoding: Mapping[str, Any] | None = None, batch_size: int | None = None,
             max_tokens: int | None = None, references: str | os.PathLike[str] | Sequence[str] | None = None,
             report_dir: str | os.PathLike[str] | None = None, only: Sequence[str] | str | None = None,
             forward_batches: int = 2, write: bool = True, device: str | None = None, dtype: Any = None,
             progress: bool = False, source_lang: str | None = None, target_lang: str | None = None,
             lang_pairs: str | None = None, **options: Any) -> ParityReport:
    """Validate a ported folder against its source checkpoint ``reference``.

    ``data_lines`` are raw text lines, or a text file of them (tokenized by the port's tokenizer);
    ``src_tokens`` may be given instead (token ids, EOS included). ``only``
    restricts the checks ("tokenizer", "forward", "beam", "bleu").
    ``decoding`` holds the decoding options, and keyword ``options``
    (``beam=4``, ``nbest=2``, ... ; None = not given) are added to it (see the
    module docstring for the names). Marian ports are checked against Marian
    itself (pymarian, ``reference`` the original model directory). The report
    is written to ``report_dir`` (default: the ported folder) as
    parity_report.json/.md unless ``write`` is False; ``report.passed`` says
    whether parity holds (the CLI exits 3 when it does not). ``progress``
    draws a bar over the batches on stderr. ``source_lang``/``target_lang``
    and ``lang_pairs`` (``en-de,de-fr``): the directions of a multilingual
    port to validate (default: those its checkpoint records, when few); BART
    and multilingual fairseq ports are run through fairseq's own task
    (:mod:`modelport.validators.fairseq_tasks`). ``batch_size`` (default
    ``VALIDATE_BATCH_SIZE``) or ``max_tokens`` batch fairseq and T5 ports; a
    Marian port refuses both: both sides are batched as marian-decoder does.
    """
    decoding = {**(decoding or {}), **options}
    data_lines = lines_of(data_lines, "data") if data_lines is not None else None
    references = references_for(references, data_lines if data_lines is not None else src_tokens)
    checks = _checks(only)
    problem = output_folder_problem(report_dir) if write and report_dir is not None else None
    if problem is not None:  # before any work
        raise InvalidInputError(f"the report folder `{report_dir}` cannot be written: {problem}")
    local = Path(ported_dir).is_dir()
    preflight = {**decoding, "batch_size": batch_size, "max_tokens": max_tokens}
    if local:  # refused before anything heavy is loaded (this port's weights, the reference framework)
        folder = PortedFolder.open(ported_dir)
        _preflight(ported_dir, folder.data.get("source_format", "unknown"), folder.conversion, reference, semantics,
                   preflight)
    ported = load(ported_dir, device=device, dtype=dtype)
    if not local:
        _preflight(ported_dir, ported.source_format, ported.conversion, reference, semantics, preflight)
    batch_size = VALIDATE_BATCH_SIZE if batch_size is None else batch_size
    pairs = requested_pairs(ported, source_lang, target_lang, lang_pairs)  # unknown languages: before the reference
    if ported.source_format == "marian":
        if data_lines is None:
            raise InvalidInputError("Marian ports are validated on text lines (--data): pymarian reads text, "
                                    "not token ids")
        return validate_marian(ported, ported_dir, reference, data_lines, sections=checks,
                               options=_decoding_options(decoding, MARIAN_OPTIONS, "marian"),
                               references=references, report_dir=report_dir, write=write)
    if ported.source_format not in REFERENCES:
        raise InvalidInputError(f"`{ported.source_format}` ports cannot be validated by `modelport validate` yet "
                                f"(known: {', '.join(REFERENCES)})")
    given = _decoding_options(decoding, SEARCH_OPTIONS, ported.source_format)
    if ported.source_format == "fairseq" and _tokenizer_config(ported).get("type") in TASK_TOKENIZERS:
        sem, opts = resolve_options(ported.generation_config, semantics, given)
        notes = [_ngram_blocking_note(opts)] if opts.get("no_repeat_ngram_size") else []
        return validate_task_port(ported, ported_dir, reference, data_lines, pairs=pairs, checks=checks,
                                  semantics=sem, opts=opts, notes=notes, batch_size=batch_size, max_tokens=max_tokens,
                                  references=references, report_dir=report_dir, write=write,
                                  forward_batches=forward_batches, progress=progress)
    tokenizer = None
    if data_lines is not None and "tokenizer" in checks:
        tokenizer = _tokenizer_section(ported_dir, reference, data_lines, references)
    if src_tokens is None:
        src_tokens = [ported.tokenizer.encode(line) for line in data_lines or []]
    src_tokens = [list(s) for s in src_tokens]

    sem, opts = resolve_options(ported.generation_config, semantics, given)
    ref, name_table, ref_opts = REFERENCES[ported.source_format](ported, reference, sem, opts)
    notes = []
    if opts.get("no_repeat_ngram_size") and ported.source_format == "fairseq":
        notes.append(_ngram_blocking_note(opts))
    meta = ParityMeta(ported_dir=str(ported_dir), reference=str(reference), lines=len(src_tokens), semantics=sem,
                      options=dict(opts), batch_size=batch_size, notes=notes,
                      reference_framework=type(ref).__name__)

    batches = make_batches([len(s) for s in src_tokens], batch_size, max_tokens)
    ours_all: list[Any] = [None] * len(src_tokens)
    ref_all: list[Any] = [None] * len(src_tokens)
    search = bool(checks & {"beam", "bleu"})
    with Steps("validate", len(batches), progress) as bar:
        for batch in batches:
            srcs = [src_tokens[i] for i in batch]
            ref_out = ref.generate(srcs, **dict(ref_opts))
            ours_out = generate(ported.models, srcs, semantics=sem, **opts) if search else [None] * len(batch)
            for i, r, o in zip(batch, ref_out, ours_out):
                ref_all[i], ours_all[i] = r, o
            bar.advance(f"{len(batch)} lines")

    cfg = ported.config

    def decode(tokens: Sequence[int]) -> str:
        return ported.tokenizer.decode([t for t in tokens if t not in (cfg.eos_token_id, cfg.pad_token_id)])

    forward = beam = bleu = None
    if "forward" in checks:
        forward = forward_section(ported, ref, name_table, src_tokens, ref_all, batches, forward_batches)
    if "beam" in checks:
        beam = compare_hypotheses(src_tokens, ours_all, ref_all, start=cfg.decoder_start_token_id,
                                  score_ours=prefix_scorer(ported.models), score_ref=ref.prefix_scorer(),
                                  decode=decode)
    if references is not None and "bleu" in checks:
        bleu = bleu_section([decode(h[0]["tokens"]) for h in ours_all], [decode(h[0]["tokens"]) for h in ref_all],
                            references)
    diffs = score_diffs([h[0]["score"] for h in ours_all if h], [h[0]["score"] for h in ref_all if h]) \
        if search and "beam" in checks else []
    return finish(ParityReport.of(meta, tokenizer=tokenizer, forward=forward, beam=beam, bleu=bleu,
                                   figures=figures(diffs, write)), diffs, ported_dir, report_dir, write)


# ---------------------------------------------------------------------------
# Marian ports: Marian itself (pymarian) as the reference

# options pymarian decode takes under the same names as modelport's marian semantics
_PYMARIAN_OPTIONS = ("beam_size", "normalize", "word_penalty", "max_length_factor", "max_length", "max_length_crop",
                     "allow_unk", "mini_batch", "maxi_batch", "maxi_batch_sort", "weights")


def _module_of(param: str) -> str:
    return param.rsplit(".", 1)[0] if param.endswith((".weight", ".bias")) else param


def _weights_differ_from(ported: PortedModel, reference: str) -> tuple[str | None, float]:
    """The first module (in the port's own order) whose weights differ from a
    fresh conversion of the reference directory, and by how much."""
    with tempfile.TemporaryDirectory(prefix="modelport-validate-") as tmp:
        fresh = convert(reference, Path(tmp) / "fresh")
        ref_state = fresh.models[0].state_dict()
    for name, value in ported.models[0].state_dict().items():
        other = ref_state.get(name)
        if other is None or other.shape != value.shape:
            return _module_of(name), float("inf")
        diff = (value.float() - other.float()).abs().max().item() if value.numel() else 0.0
        if diff > 0:
            return _module_of(name), diff
    return None, 0.0


def _marian_forward(ported: PortedModel, ref: MarianReference, lines: list[str], ref_out: list[Any],
                    reference: str) -> MarianForwardSection:
    """Teacher-forced per-token log-probs of Marian's best hypotheses:
    ``pymarian score --word-scores`` vs the port's full forward."""
    cfg, tok, model = ported.config, ported.tokenizer, ported.models[0]
    unk = cfg.unk_token_id
    if ref.pre_encoded:
        targets: list[Any] = [r[0].pieces for r in ref_out]
        ids = [[tok.target_vocab.get(p, unk) for p in t] + [cfg.eos_token_id] for t in targets]
    else:
        targets = [r[0].text for r in ref_out]
        ids = [tok.encode_target(t) for t in targets]
    scores = ref.score(lines, targets)
    worst, where = 0.0, None
    for i, (line, t, (_, words)) in enumerate(zip(lines, ids, scores)):
        if len(words) != len(t):
            worst, where = float("inf"), i
            break
        ours = token_log_probs(model, tok.encode(line), t, cfg.decoder_start_token_id)
        d = (ours - torch.tensor(words, device=ours.device)).abs().max().item()
        if not d <= worst:
            worst, where = d, i
    passed = worst <= FORWARD_TOL
    divergence = None
    if not passed:
        module, diff = _weights_differ_from(ported, reference)
        divergence = WeightDivergence(
            worst_line=where, module=module, max_abs_diff=diff,
            localized_by="the port's weights against a fresh conversion of the reference directory")
    return MarianForwardSection(
        max_abs_logprob_diff=worst, tolerance=FORWARD_TOL,
        compared="per-token log-probabilities of Marian's best hypotheses (pymarian score --word-scores)",
        reference_precision=f"Marian prints word scores with 5 decimals (±{WORD_SCORE_PRECISION:g})",
        passed=passed, note="ensemble: only the first member's forward pass is compared"
        if len(ported.models) > 1 else None, divergence=divergence)


def _pieces(ported: PortedModel, hyp: Any) -> tuple[str, ...]:
    """A hypothesis of the port as Marian prints it: target pieces, ``</s>`` left out."""
    eos = ported.config.eos_token_id
    return tuple(ported.tokenizer.id_to_tokens([t for t in hyp["tokens"] if t != eos], side="target"))


def _marian_alignments(ported: PortedModel, ref_out: list[Any], ours: list[Any], nbest: int,
                       mode: str | float) -> AlignmentCheck:
    """The alignments of each n-best entry both sides translated alike (Marian's
    printed string, the port's soft rows), compared in ``mode``."""
    entries = [[(j, r[j].alignment, o[j].alignment) for j in range(min(nbest, len(r), len(o)))
                if _pieces(ported, o[j]) == r[j].pieces] for r, o in zip(ref_out, ours)]
    return compare_alignments(mode, entries)


def _marian_beam(ported: PortedModel, ref_out: list[Any], ours: list[Any], nbest: int,
                 extra: Sequence[dict[str, Any]] = ()) -> MarianBeamSection:
    """n-best lists piece for piece; scores within Marian's printed precision
    plus 1e-4. A differing hypothesis is located at its first differing step
    and classified by the port's own log-probs of the two tokens there.
    ``extra``: further differences found (alignments, the shortlist), each a
    real divergence (a ``line`` key makes that line not identical)."""
    mismatches: list[dict[str, Any]] = []
    hyps = real = ties = 0
    max_diff = 0.0
    for i, (r, o) in enumerate(zip(ref_out, ours)):
        for j in range(min(nbest, len(r))):
            hyps += 1
            mine = _pieces(ported, o[j]) if j < len(o) else None
            theirs = r[j].pieces
            if mine != theirs:
                mine = mine or ()
                step = next((k for k, (a, b) in enumerate(zip(theirs, mine)) if a != b), min(len(theirs), len(mine)))
                word_gap = abs(r[j].word_scores[step] - o[j]["positional_scores"][step]) \
                    if j < len(o) and step < min(len(r[j].word_scores), len(o[j]["positional_scores"])) else None
                tie = word_gap is not None and word_gap < 1e-5
                ties += tie
                real += not tie
                mismatches.append({"line": i, "hypothesis": j,
                                   "text_modelport": o[j]["text"] if j < len(o) else None,
                                   "text_reference": r[j].text, "step": step,
                                   "reference_token": theirs[step] if step < len(theirs) else "</s>",
                                   "modelport_token": mine[step] if step < len(mine) else "</s>",
                                   "word_score_gap": word_gap, "kind": "near-tie" if tie else "divergence"})
                continue
            h, m = r[j], o[j]
            words = max((abs(a - b) for a, b in zip(h.word_scores, m["positional_scores"])), default=0.0)
            score = abs(h.score - m["score"])
            max_diff = max(max_diff, score)
            if words > WORD_SCORE_PRECISION + FORWARD_TOL or score > printed_tolerance(h.score) + FORWARD_TOL:
                real += 1
                mismatches.append({"line": i, "hypothesis": j, "kind": "score", "word_score_diff": words,
                                   "score_diff": score})
    mismatches += extra
    real += len(extra)
    differing = {m["line"] for m in mismatches if "line" in m}
    return MarianBeamSection(
        hypotheses=hyps, lines=len(ref_out), identical_lines=sum(i not in differing for i in range(len(ref_out))),
        real_divergences=real, near_ties=ties, max_score_diff=max_diff,
        reference_precision="Marian prints word scores with 5 decimals and scores with 6 significant digits; "
                            "scores must agree within half a printed unit + 1e-4",
        mismatches=mismatches[:20], passed=real == 0)


def _marian_failure(forward: MarianForwardSection | None, beam: MarianBeamSection | None,
                    alignment: AlignmentCheck | None = None, shortlist: str | None = None) -> str | None:
    """One line naming what failed first (the CLI's exit-3 message): the
    forward pass, the shortlist both sides decode with, the translations, the alignments."""
    if forward is not None and not forward.passed:
        return (f"forward: per-token log-probs differ from pymarian score by {forward.max_abs_logprob_diff:.2e} "
                f"(> {FORWARD_TOL:g}); first module whose weights differ from the reference: "
                f"{forward.first_divergent_module}")
    if beam is None or beam.passed:
        return None
    if shortlist is not None:
        return f"beam: {shortlist}"
    aligned = alignment.failure() if alignment is not None else None
    if aligned is None or beam.real_divergences > len(alignment.mismatches):  # type: ignore[union-attr]
        return f"beam: {beam.lines - beam.identical_lines} of {beam.lines} lines differ from pymarian decode"
    return f"beam: {aligned}"


def _alignment_mode(opts: dict[str, Any]) -> str | float | None:
    """The alignments to compare: ``opts["alignment"]`` (given, else decoder.yml's
    as the folder records it) parsed, or None when there is none or it is ``none``."""
    value = opts.get("alignment")
    if value is None or value == OFF:
        return None
    opts["alignment"] = parse_alignment(value)
    return opts["alignment"]


def _spelled(spec: ShortlistSpec, path: str | os.PathLike[str]) -> str:
    return f"{path} {spec.first} {spec.best} {spec.threshold:g}"


def _marian_shortlist(ported: PortedModel, ref: MarianReference, given: Any, folder_spec: Any
                      ) -> tuple[Any, str | None, str | None]:
    """The shortlist both sides decode with: (what pymarian is given, None for
    decoder.yml's own; the report's note; a difference between the two sides,
    None when they agree). A shortlist passed to validate goes to both; else
    pymarian reads the original file with decoder.yml's values, the port its
    folder's copy (tokenizer/) with the values convert recorded."""
    theirs = ref.shortlist
    if given is not None:
        if given in (OFF, [OFF], (OFF,)):
            note = "shortlist: none on either side (shortlist='none'; pymarian read decoder.yml without its own)"
            return OFF, note if theirs or folder_spec else None, None
        values = [str(v) for v in ([given] if isinstance(given, (str, os.PathLike)) else given)]
        return values, f"shortlist applied on both sides: {_spelled(ShortlistSpec.parse(values), values[0])} " \
                       "(given to validate)", None
    if theirs is None and folder_spec is None:
        return None, None, None
    if theirs is None or folder_spec is None:
        which = "the reference's decoder.yml names one, the port records none" if folder_spec is None \
            else "the port records one, the reference's decoder.yml names none"
        return None, None, f"the two sides decode with different shortlists ({which})"
    spec_ref, spec_ours = ShortlistSpec.parse(theirs), ShortlistSpec.parse(folder_spec)
    ours_path = folder_shortlist(getattr(ported, "path", "."), spec_ours).path
    same_values = (spec_ref.first, spec_ref.best, spec_ref.threshold) == \
        (spec_ours.first, spec_ours.best, spec_ours.threshold)
    same_file = spec_ref.path.is_file() and filecmp.cmp(spec_ref.path, ours_path, shallow=False)
    note = (f"shortlist applied on both sides: pymarian decode with decoder.yml's "
            f"`{_spelled(spec_ref, spec_ref.path)}`, modelport with the folder's "
            f"`{_spelled(spec_ours, spec_ours.path)}`{' (a byte-identical copy)' if same_file else ''}; "
            "the forward check scores the whole vocabulary on both sides")
    if same_values and same_file:
        return None, note, None
    what = "values" if not same_values else "file contents"
    return None, note, (f"the port's shortlist differs from the reference's decoder.yml shortlist ({what}: "
                        f"`{_spelled(spec_ours, spec_ours.path)}` vs `{_spelled(spec_ref, spec_ref.path)}`)")


def validate_marian(ported: PortedModel, ported_dir: str | os.PathLike[str], reference: str, lines: Sequence[str], *,
                    sections: set[str], options: dict[str, Any], references: Sequence[str] | None,
                    report_dir: str | os.PathLike[str] | None, write: bool) -> ParityReport:
    """``validate`` for Marian ports against pymarian on the original directory.

    Both sides decode with the same shortlist (:func:`_marian_shortlist`) and,
    when an alignment mode is asked for (``alignment=``, else decoder.yml's as
    the folder records it; ``"none"``: not compared), print alignments that
    are compared line by line (:func:`~modelport.validators.beam.compare_alignments`)."""
    lines = list(lines)
    sem, opts = resolve_options(ported.generation_config, "marian", options)
    # beam/lenpen/nbest under Marian's names: an explicit alias wins over the folder's default
    opts = {k: v for k, v in _MARIAN.rename(opts).items() if k not in TOKEN_IDS}
    mode = _alignment_mode(opts)
    # the port's own checks before pymarian is even looked for: a value Marian aborts on (a number past
    # float32, a shortlist that is not a file) is one line, not a pymarian crash, with pymarian or without
    check_options("marian", opts)
    if options.get("shortlist") not in (None, OFF, [OFF], (OFF,)):
        shortlist_for_tokenizer(options["shortlist"], ported.tokenizer)  # kept: the port's decode reuses the load
    ref = MarianReference(reference)
    ref_shortlist, shortlist_note, shortlist_problem = _marian_shortlist(
        ported, ref, options.get("shortlist"), ported.generation_config.get("shortlist"))
    tokenizer = _tokenizer_section(ported_dir, reference, lines, references) if "tokenizer" in sections else None
    n = opts.get("n_best", False)
    beam_size = beam_width("marian", opts)
    nbest = beam_size if n is True else 1 if n is False else int(n)
    ref_opts = {k: opts[k] for k in _PYMARIAN_OPTIONS if opts.get(k) is not None}
    ref_opts.update(alignment=mode if mode is not None else OFF, shortlist=ref_shortlist)
    ref_out = ref.decode(lines, **ref_opts)
    ours = None
    if sections & {"beam", "bleu"}:
        ours = translate(ported, lines, semantics="marian", **{**opts, "n_best": True})
    forward = _marian_forward(ported, ref, lines, ref_out, reference) if "forward" in sections else None
    beam = alignment = None
    notes = [shortlist_note] if shortlist_note is not None else []
    if "beam" in sections:
        extra: list[dict[str, Any]] = []
        if shortlist_problem is not None:
            extra.append({"kind": "shortlist", "detail": shortlist_problem})
        if mode is not None:
            alignment = _marian_alignments(ported, ref_out, ours, nbest, mode)  # type: ignore[arg-type]
            notes.append(alignment.note())
            extra += alignment.mismatches
        beam = _marian_beam(ported, ref_out, ours, nbest, extra)  # type: ignore[arg-type]
    meta = ParityMeta(ported_dir=str(ported_dir), reference=str(reference), lines=len(lines), semantics=sem,
                      options=dict(opts), notes=notes, reference_framework="pymarian (Marian 1.12)")
    bleu = None
    if references is not None and "bleu" in sections:
        bleu = bleu_section([o[0]["text"] for o in ours], [r[0].text for r in ref_out], references)
    diffs = score_diffs([o[0]["score"] for o in ours], [r[0].score for r in ref_out]) \
        if ours is not None and "beam" in sections else []
    return finish(ParityReport.of(meta, tokenizer=tokenizer, forward=forward, beam=beam, bleu=bleu,
                                   failure=_marian_failure(forward, beam, alignment, shortlist_problem),
                                   figures=figures(diffs, write)),
                   diffs, ported_dir, report_dir, write)
