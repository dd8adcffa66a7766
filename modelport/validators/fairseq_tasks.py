"""``validate`` for fairseq ports whose special tokens fairseq's task or hub
places: BART (``fairseq_gpt2_bpe``; ``<s>`` before the source and forced
first), mBART-50 / M2M100 / NLLB and mBART-25 fine-tunes (``fairseq_spm``
with languages), against fairseq itself
(:mod:`~modelport.validators.references.fairseq_multilingual`).

For each language pair (one, without languages) the report compares the
source rows the model reads (``inputs``: the port's prefix + ids + suffix
against fairseq's own), the logits teacher-forced on fairseq's best outputs
(``forward``) and the n-best lists (``beam``); the ``tokenizer`` section
compares the text pipeline once (fairseq's BPE and the task's dictionary),
decoding the port's own outputs of every pair. A multilingual port's report
holds one :class:`~modelport.reports.parity.PairReport` per pair; a port
without languages has the sections at the top, as other ports do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelport.api import PortedModel
from modelport.converters.fairseq import NAME_TABLE
from modelport.errors import InvalidInputError
from modelport.generation.scoring import prefix_scorer
from modelport.generation.translate import generate, language_options, make_batches
from modelport.progress import Steps
from modelport.reports.parity import (BeamSection, ForwardSection, InputsSection, PairReport, ParityMeta,
                                      ParityReport, TokenizerSection, pair_name)
from modelport.validators.beam import compare_hypotheses
from modelport.validators.references.fairseq_multilingual import FairseqDirection, FairseqTaskReference
from modelport.validators.sections import FORWARD_TOL, bleu_section, figures, finish, forward_section, score_diffs
from modelport.validators.tokenizer import aligned_diff, validate_tokenizer

# the ported tokenizer types whose special tokens fairseq's task (or BART's hub) places: validated here
TASK_TOKENIZERS = ("fairseq_gpt2_bpe", "fairseq_spm")
# a multilingual port is validated on the pairs its checkpoint records when there are at most this many
MAX_DEFAULT_PAIRS = 12

Pair = tuple[str | None, str | None]


def parse_pairs(text: str | None) -> list[tuple[str, str]]:
    """``en-de,de-fr`` (fairseq's --lang-pairs spelling) as pairs."""
    pairs = []
    for item in (text or "").split(","):
        src, sep, tgt = item.strip().partition("-")
        if not (src and sep and tgt):
            raise InvalidInputError(f"`--lang-pairs` must be pairs such as en-de,de-fr, but holds `{item.strip()}`")
        pairs.append((src, tgt))
    return pairs


def requested_pairs(ported: PortedModel, source_lang: str | None, target_lang: str | None,
                    lang_pairs: str | None) -> list[Pair] | None:
    """The pairs asked for, each checked against the port's languages (None:
    none asked for, a multilingual port's default is the checkpoint's)."""
    asked: list[Pair] = [*parse_pairs(lang_pairs)] if lang_pairs else []
    if source_lang is not None or target_lang is not None:
        asked.append((source_lang, target_lang))
    for src, tgt in asked:
        language_options(ported.tokenizer, "fairseq", src, tgt)  # an unknown language names the known ones
    return list(dict.fromkeys(asked)) or None


def default_pairs(ported: PortedModel, recorded: Sequence[tuple[str, str]]) -> list[Pair]:
    """A multilingual port's pairs when none were asked for: the checkpoint's, when few."""
    languages = tuple(getattr(ported.tokenizer, "languages", ()))
    if not languages:
        return [(None, None)]
    if not recorded or len(recorded) > MAX_DEFAULT_PAIRS:
        found = f"records {len(recorded)} pairs" if recorded else "records no language pairs"
        raise InvalidInputError(f"this port translates between {len(languages)} languages ({', '.join(languages)}) "
                                f"and the checkpoint {found}: name what to validate with --source-lang and "
                                f"--target-lang, or --lang-pairs (at most {MAX_DEFAULT_PAIRS} pairs are validated "
                                "by default)")
    for src, tgt in recorded:
        language_options(ported.tokenizer, "fairseq", src, tgt)
    return list(recorded)


@dataclass
class PairRun:
    """What one pair produced: its report, the port's outputs (for the
    tokenizer's decoding check) and the per-sentence score differences."""

    report: PairReport
    outputs: list[list[int]]
    diffs: list[float]


def _inputs(ported: PortedModel, ref: FairseqTaskReference, ours: list[list[int]], theirs: list[list[int]],
            lines: Sequence[str], max_examples: int = 10) -> InputsSection:
    tok = ported.tokenizer
    mismatches = [{"line": n + 1, "text": lines[n], "diff": aligned_diff(a, b, tok.id_to_tokens(a), ref.tokens(b))}
                  for n, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    return InputsSection(lines=len(lines), identical=len(lines) - len(mismatches), passed=not mismatches,
                         mismatches=mismatches[:max_examples])


def _failure(name: str | None, inputs: InputsSection | None, forward: ForwardSection | None,
             beam: BeamSection | None) -> str | None:
    """One line naming what failed first."""
    where = f"{name}: " if name else ""
    if inputs is not None and not inputs.passed:
        return f"{where}inputs: {inputs.lines - inputs.identical} of {inputs.lines} source rows differ from fairseq's"
    if forward is not None and not forward.passed:
        return (f"{where}forward: max |logit diff| {forward.max_abs_logit_diff:.2e} (> {FORWARD_TOL:g}), first "
                f"divergent module: {forward.first_divergent_module}")
    if beam is not None and not beam.passed:
        return (f"{where}beam: {beam.real_divergences} real divergences, {beam.score_mismatches} score mismatches "
                f"in {beam.hypotheses} hypotheses")
    return None


def _run_pair(ported: PortedModel, ref: FairseqTaskReference, pair: Pair, lines: Sequence[str], *,
              checks: set[str], opts: dict[str, Any], batch_size: int, max_tokens: int | None,
              forward_batches: int, references: Sequence[str] | None, bar: Steps) -> PairRun:
    """Both frameworks on ``lines`` for one pair, in the same batches."""
    src_lang, tgt_lang = pair
    tok, cfg = ported.tokenizer, ported.config
    prefix, suffix, strip, lang_opts = language_options(tok, "fairseq", src_lang, tgt_lang)
    direction: FairseqDirection = ref.direction(src_lang, tgt_lang)
    ours_rows = [prefix + ids + suffix for ids in tok.encode_batch(list(lines))]
    theirs_rows = direction.source_rows(lines)
    inputs = _inputs(ported, ref, ours_rows, theirs_rows, lines) if "tokenizer" in checks else None
    batches = make_batches([len(r) for r in ours_rows], batch_size, max_tokens)
    ref_opts = {k: v for k, v in opts.items() if k != "ngram_blocking"}
    ref_all: list[Any] = [None] * len(lines)
    ours_all: list[Any] = [None] * len(lines)
    for batch in batches:
        ref_out = direction.generate([lines[i] for i in batch], **dict(ref_opts))
        ours_out = generate(ported.models, [ours_rows[i] for i in batch], semantics="fairseq", **opts, **lang_opts)
        for i, r, o in zip(batch, ref_out, ours_out):
            ref_all[i], ours_all[i] = r, o
        bar.advance(f"{pair_name(*pair)}: {len(batch)} lines" if src_lang else f"{len(batch)} lines")
    drop = {cfg.eos_token_id, cfg.pad_token_id, *strip}

    def decode(tokens: Sequence[int]) -> str:
        return tok.decode([t for t in tokens if t not in drop])

    start = direction.start
    forward = forward_section(ported, ref, NAME_TABLE, theirs_rows, ref_all, batches, forward_batches,
                              start=start) if "forward" in checks else None
    beam = compare_hypotheses(ours_rows, ours_all, ref_all, start=start, score_ours=prefix_scorer(ported.models),
                              score_ref=ref.prefix_scorer(), decode=decode) if "beam" in checks else None
    bleu = None
    if references is not None and "bleu" in checks:
        bleu = bleu_section([decode(h[0]["tokens"]) for h in ours_all], [ref.decode(
            [t for t in h[0]["tokens"] if t not in drop]) for h in ref_all], references)
    name = pair_name(*pair) if src_lang else None
    report = PairReport.of(src_lang, tgt_lang, inputs=inputs, forward=forward, beam=beam, bleu=bleu,
                           failure=_failure(name, inputs, forward, beam))
    outputs = [[t for t in h[0]["tokens"] if t not in drop] for h in ours_all]
    diffs = score_diffs([h[0]["score"] for h in ours_all], [h[0]["score"] for h in ref_all]) if beam else []
    return PairRun(report, outputs, diffs)


def validate_task_port(ported: PortedModel, ported_dir: str | os.PathLike[str], reference: str,
                       lines: Sequence[str] | None, *, pairs: list[Pair] | None, checks: set[str], semantics: str,
                       opts: dict[str, Any], notes: list[str], batch_size: int, max_tokens: int | None,
                       references: Sequence[str] | None, report_dir: str | os.PathLike[str] | None, write: bool,
                       forward_batches: int, progress: bool) -> ParityReport:
    """``validate`` of a BART, mBART or M2M100/NLLB-style port (``pairs``: those
    asked for, already checked against the port's languages; None: the default)."""
    if lines is None:
        raise InvalidInputError("fairseq BART and multilingual ports are validated on text lines (--data): fairseq's "
                                "task places the special tokens itself")
    if semantics != "fairseq":
        raise InvalidInputError(f"fairseq ports are validated with fairseq semantics, not `{semantics}`")
    lines = [line.rstrip("\n") for line in lines]
    ref = FairseqTaskReference(reference)
    pairs = pairs or default_pairs(ported, ref.recorded_pairs)
    if references is not None and len(pairs) > 1:
        raise InvalidInputError(f"`--references` translates --data into one language, but {len(pairs)} pairs are "
                                "validated: name one with --source-lang and --target-lang")
    batches = len(make_batches([len(line) for line in lines], batch_size, max_tokens))  # an estimate for the bar
    runs = []
    with Steps("validate", batches * len(pairs), progress) as bar:
        for pair in pairs:
            runs.append(_run_pair(ported, ref, pair, lines, checks=checks, opts=opts, batch_size=batch_size,
                                  max_tokens=max_tokens, forward_batches=forward_batches, references=references,
                                  bar=bar))
    tokenizer = None
    if "tokenizer" in checks:
        found = validate_tokenizer(ported_dir, reference, lines, target_lines=list(references) if references else None,
                                   outputs=[o for run in runs for o in run.outputs], prebuilt={"fairseq_task": ref})
        tokenizer = TokenizerSection.from_json(found["tokenizer"])
    meta = ParityMeta(ported_dir=str(ported_dir), reference=str(reference), lines=len(lines), semantics=semantics,
                      options=dict(opts), batch_size=batch_size, notes=notes,
                      reference_framework=f"fairseq ({ref.task_name} task{', BART hub' if ref.hub else ''})")
    diffs = [d for run in runs for d in run.diffs]
    failure = "tokenizer: ids or decoded text differ from fairseq's" if tokenizer and not tokenizer.passed else None
    failure = failure or next((run.report.failure for run in runs if run.report.failure), None)
    if pairs == [(None, None)]:  # no languages: the sections at the top, as other ports have them
        one = runs[0].report
        report = ParityReport.of(meta, tokenizer=tokenizer, inputs=one.inputs, forward=one.forward, beam=one.beam,
                                 bleu=one.bleu, failure=failure, figures=figures(diffs, write))
    else:
        report = ParityReport.of(meta, tokenizer=tokenizer, pairs=[run.report for run in runs], failure=failure,
                                 figures=figures(diffs, write))
    return finish(report, diffs, ported_dir, report_dir, write)


__all__ = ["MAX_DEFAULT_PAIRS", "TASK_TOKENIZERS", "default_pairs", "parse_pairs", "requested_pairs",
           "validate_task_port"]
