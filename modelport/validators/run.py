"""``modelport validate``: run the reference framework and the port on the same
lines, in the same batches, with the same decoding options, and report.

Sections: ``tokenizer`` (from :mod:`modelport.validators.tokenizer`),
``forward`` (max |logit diff| teacher-forced on the reference's outputs; on
failure, the first divergent module), ``beam`` (token sequences and scores,
every mismatch explained), ``bleu`` (with ``references``). Parity passes when
the tokenizer and forward sections pass and beam search has no real
divergence and no score mismatch; numerical near-ties are reported but do not
fail it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from modelport.generation.translate import generate, make_batches, resolve_options
from modelport.validators.beam import compare_hypotheses
from modelport.validators.metrics import bleu_chrf
from modelport.validators.forward import localize_divergence, max_logit_diff, teacher_forcing_batch

FORWARD_TOL = 1e-4


def fairseq_cpu_ngram_noop() -> bool:
    """Whether the installed fairseq's CPU ``NGramRepeatBlock`` is 0.12's,
    which compares against the pad-filled end of its token buffer and blocks
    nothing (modelport's default ``ngram_blocking="cpu-0.12"``), rather than
    one that blocks the last generated tokens (fairseq <= 0.10, later
    releases: ``"intended"``). Probed on a buffer where the two differ."""
    from fairseq.ngram_repeat_block import NGramRepeatBlock

    blocker = NGramRepeatBlock(2, use_extension=False)
    tokens = torch.tensor([[2, 5, 6, 5, 1, 1]])  # step 3: last token 5 followed 5 -> 6 before
    lprobs = torch.zeros(1, 8)
    out = blocker(tokens, lprobs.clone(), 1, 1, 3)
    return bool(out[0, 6] == 0)


def _prefix_scorer(models: Sequence[Any], pad_left: bool = True):
    from modelport.generation.ensemble import Ensemble

    @torch.no_grad()
    def score(src: list[int], prefix: list[int]) -> torch.Tensor:
        ens = Ensemble(models)
        ens.encode(torch.tensor([src]))
        lp = None
        for t in prefix:
            lp = ens.log_probs(torch.tensor([[t]]))
        return lp[0]

    return score


def _fairseq_reference(ported: Any, reference: str, semantics: str, opts: dict[str, Any]
                       ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """fairseq's loader and SequenceGenerator, with fairseq's option names."""
    from modelport.converters.fairseq import NAME_TABLE
    from modelport.validators.references.fairseq_generator import FairseqReference

    if semantics != "fairseq":
        from modelport.errors import InvalidInputError

        raise InvalidInputError(f"fairseq ports are validated with fairseq semantics, not `{semantics}`")
    tok_cfg = _tokenizer_config(ported)
    ref = FairseqReference(reference, tok_cfg.get("source_lang"), tok_cfg.get("target_lang"))
    return ref, NAME_TABLE, {k: v for k, v in opts.items() if k != "ngram_blocking"}


def _transformers_reference(ported: Any, reference: str, semantics: str, opts: dict[str, Any]
                            ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """transformers' own model and ``generate`` (hf semantics; modelport's
    fairseq-style aliases beam/lenpen/nbest/min_len renamed)."""
    from modelport.converters.t5 import NAME_TABLE
    from modelport.generation.translate import hf_option_names
    from modelport.validators.references.transformers_generator import TransformersReference

    if semantics != "hf":
        from modelport.errors import InvalidInputError

        raise InvalidInputError(f"{ported.source_format} ports are validated with hf semantics, not `{semantics}`")
    ref_opts = hf_option_names(opts)
    ref_opts.setdefault("decoder_start_token_id", ported.config.decoder_start_token_id)
    return TransformersReference(reference), NAME_TABLE, ref_opts


# source format -> (ported, reference path, semantics, options) -> (reference, name table, its options)
REFERENCES = {"fairseq": _fairseq_reference, "t5": _transformers_reference}


def _tokenizer_config(ported: Any) -> dict[str, Any]:
    import json

    path = Path(ported.tokenizer_dir) / "tokenizer_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def validate(ported_dir: str | os.PathLike[str], reference: str, data_lines: Sequence[str] | None = None, *,
             src_tokens: Sequence[list[int]] | None = None, semantics: str | None = None,
             beam: int | None = None, lenpen: float | None = None, nbest: int | None = None,
             max_len_a: float | None = None, max_len_b: int | None = None, min_len: int | None = None,
             unkpen: float | None = None, no_repeat_ngram_size: int | None = None,
             batch_size: int = 16, max_tokens: int | None = None, references: Sequence[str] | None = None,
             report_dir: str | os.PathLike[str] | None = None, only: Sequence[str] | None = None,
             forward_batches: int = 2, write: bool = True, marian: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate a ported folder against its source checkpoint ``reference``.

    ``data_lines`` are raw text lines (tokenized by the port's tokenizer);
    ``src_tokens`` may be given instead (token ids, EOS included). ``only``
    restricts the sections ("tokenizer", "forward", "beam", "bleu"). Marian
    ports are checked against Marian itself (pymarian, ``reference`` the
    original model directory) with ``marian`` holding Marian-named options
    (word_penalty, max_length_factor, allow_unk, mini_batch, ...). The
    report is written to ``report_dir`` (default: the ported folder) as
    parity_report.json/.md unless ``write`` is False; ``report["passed"]``
    says whether parity holds (the CLI exits 3 when it does not).
    """
    import modelport

    known = ("tokenizer", "forward", "beam", "bleu")
    if isinstance(only, str):
        only = (only,)
    sections = set(only or known)
    if not sections <= set(known):
        from modelport.errors import InvalidInputError

        raise InvalidInputError(f"`{', '.join(sorted(sections - set(known)))}` is not a known check "
                                f"(known: {', '.join(known)})")
    ported = modelport.load(ported_dir)
    if ported.source_format == "marian":
        if data_lines is None:
            from modelport.errors import InvalidInputError

            raise InvalidInputError("Marian ports are validated on text lines (--data): pymarian reads text, "
                                    "not token ids")
        return validate_marian(ported, ported_dir, reference, data_lines, sections=sections,
                               options={"beam": beam, "lenpen": lenpen, "nbest": nbest, **(marian or {})},
                               references=references, report_dir=report_dir, write=write)
    if ported.source_format not in REFERENCES:
        from modelport.errors import InvalidInputError

        raise InvalidInputError(f"`{ported.source_format}` ports cannot be validated by `modelport validate` yet "
                                f"(known: {', '.join(REFERENCES)})")
    report: dict[str, Any] = {"meta": {"ported_dir": str(ported_dir), "reference": str(reference),
                                       "lines": len(src_tokens if src_tokens is not None else data_lines or [])}}

    if data_lines is not None and "tokenizer" in sections:
        try:
            from modelport.validators.tokenizer import validate_tokenizer
        except ImportError:
            validate_tokenizer = None
        if validate_tokenizer is not None:
            tok_report = validate_tokenizer(ported_dir, reference, list(data_lines),
                                            target_lines=list(references) if references else None)
            report["tokenizer"] = tok_report.get("tokenizer", tok_report)
    if src_tokens is None:
        src_tokens = [ported.tokenizer.encode(line) for line in data_lines or []]
    src_tokens = [list(s) for s in src_tokens]

    sem, opts = resolve_options(ported.generation_config, semantics, {
        "beam": beam, "lenpen": lenpen, "nbest": nbest, "max_len_a": max_len_a, "max_len_b": max_len_b,
        "min_len": min_len, "unkpen": unkpen, "no_repeat_ngram_size": no_repeat_ngram_size})
    ref, name_table, ref_opts = REFERENCES[ported.source_format](ported, reference, sem, opts)
    notes = []
    if opts.get("no_repeat_ngram_size") and ported.source_format == "fairseq":
        if fairseq_cpu_ngram_noop():
            opts["ngram_blocking"] = "cpu-0.12"
            notes.append("the installed fairseq's CPU n-gram blocker (0.12) compares with the pad-filled end of "
                         "its token buffer and blocks nothing; modelport reproduces it (ngram_blocking='cpu-0.12', "
                         "the default of fairseq semantics)")
        else:
            opts["ngram_blocking"] = "intended"
            notes.append("the installed fairseq blocks repeated n-grams of the last generated tokens; modelport "
                         "did the same (ngram_blocking='intended')")
    report["meta"].update({"semantics": sem, "options": dict(opts), "batch_size": batch_size, "notes": notes,
                           "reference_framework": type(ref).__name__})

    batches = make_batches([len(s) for s in src_tokens], batch_size, max_tokens)
    ours_all: list[Any] = [None] * len(src_tokens)
    ref_all: list[Any] = [None] * len(src_tokens)
    for batch in batches:
        srcs = [src_tokens[i] for i in batch]
        ref_out = ref.generate(srcs, **dict(ref_opts))
        ours_out = generate(ported.models, srcs, semantics=sem, **opts) if "beam" in sections or \
            "bleu" in sections else [None] * len(batch)
        for i, r, o in zip(batch, ref_out, ours_out):
            ref_all[i], ours_all[i] = r, o

    cfg = ported.config
    if "forward" in sections:
        diffs = []
        for member in range(len(ported.models)):
            for batch in batches[:forward_batches]:
                src, prev, mask = teacher_forcing_batch([src_tokens[i] for i in batch],
                                                        [ref_all[i][0]["tokens"] for i in batch],
                                                        cfg.pad_token_id, cfg.decoder_start_token_id)
                diffs.append(max_logit_diff(ported.models[member],
                                            lambda s, p, m=member: ref.logits(s, p, m), src, prev, mask))
        worst = max(diffs) if diffs else 0.0
        fwd: dict[str, Any] = {"max_abs_logit_diff": worst, "tolerance": FORWARD_TOL,
                               "passed": worst <= FORWARD_TOL}
        if not worst <= FORWARD_TOL:
            i = batches[0][0]
            src, prev, _ = teacher_forcing_batch([src_tokens[i]], [ref_all[i][0]["tokens"]], cfg.pad_token_id,
                                                 cfg.decoder_start_token_id)
            found = localize_divergence(ref.models[0], ported.models[0], lambda: ref.run_forward(src, prev),
                                        lambda: ported.models[0](src, prev), name_table, tol=FORWARD_TOL)
            fwd["first_divergent_module"] = found["module"]
            fwd["first_divergent_reference_module"] = found["reference_module"]
            fwd["module_max_abs_diff"] = found["max_abs_diff"]
        report["forward"] = fwd

    if "beam" in sections:
        beam_rep = compare_hypotheses(src_tokens, ours_all, ref_all, start=cfg.decoder_start_token_id,
                                      score_ours=_prefix_scorer(ported.models),
                                      score_ref=ref.prefix_scorer())
        report["beam"] = beam_rep

    if references is not None and "bleu" in sections:
        def text(h: dict[str, Any]) -> str:
            ids = [t for t in h["tokens"] if t not in (cfg.eos_token_id, cfg.pad_token_id)]
            return ported.tokenizer.decode(ids)

        ours_txt = [text(h[0]) for h in ours_all]
        ref_txt = [text(h[0]) for h in ref_all]
        refs = list(references)
        report["bleu"] = {"modelport": bleu_chrf(ours_txt, refs), "reference": bleu_chrf(ref_txt, refs), "passed": True}

    checked = [v for k, v in report.items() if isinstance(v, dict) and k != "meta"]
    # nothing checked is not parity: a validator that cannot fail is a defect
    report["passed"] = bool(checked) and all(v.get("passed", True) for v in checked)
    if write:
        write_parity_report(report, Path(report_dir) if report_dir is not None else Path(ported_dir))
    return report


def write_parity_report(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    from modelport.validators.report import write_report

    return write_report(report, directory)


# ---------------------------------------------------------------------------
# Marian ports: Marian itself (pymarian) as the reference

# options pymarian decode takes under the same names as modelport's marian semantics
_PYMARIAN_OPTIONS = ("beam_size", "normalize", "word_penalty", "max_length_factor", "max_length", "max_length_crop",
                     "allow_unk", "mini_batch", "maxi_batch", "maxi_batch_sort", "weights")


def _module_of(param: str) -> str:
    return param.rsplit(".", 1)[0] if param.endswith((".weight", ".bias")) else param


def _weights_differ_from(ported: Any, reference: str) -> tuple[str | None, float]:
    """The first module (in the port's own order) whose weights differ from a
    fresh conversion of the reference directory, and by how much."""
    import tempfile

    import modelport

    with tempfile.TemporaryDirectory(prefix="modelport-validate-") as tmp:
        fresh = modelport.convert(reference, Path(tmp) / "fresh")
        ref_state = fresh.models[0].state_dict()
    for name, value in ported.models[0].state_dict().items():
        other = ref_state.get(name)
        if other is None or other.shape != value.shape:
            return _module_of(name), float("inf")
        diff = (value.float() - other.float()).abs().max().item() if value.numel() else 0.0
        if diff > 0:
            return _module_of(name), diff
    return None, 0.0


def _marian_forward(ported: Any, ref: Any, lines: list[str], ref_out: list[Any], reference: str) -> dict[str, Any]:
    """Teacher-forced per-token log-probs of Marian's best hypotheses:
    ``pymarian score --word-scores`` vs the port's full forward."""
    from modelport.validators.references.marian import WORD_SCORE_PRECISION

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
    with torch.no_grad():
        for i, (line, t, (_, words)) in enumerate(zip(lines, ids, scores)):
            if len(words) != len(t):
                worst, where = float("inf"), i
                break
            prev = torch.tensor([[cfg.decoder_start_token_id] + t[:-1]])
            lp = model.log_probs(prev, model.encode(torch.tensor([tok.encode(line)])))[0]
            ours = lp.gather(-1, torch.tensor(t)[:, None])[:, 0]
            d = (ours - torch.tensor(words)).abs().max().item()
            if not d <= worst:
                worst, where = d, i
    fwd: dict[str, Any] = {
        "max_abs_logprob_diff": worst, "max_abs_logit_diff": worst, "tolerance": FORWARD_TOL,
        "compared": "per-token log-probabilities of Marian's best hypotheses (pymarian score --word-scores)",
        "reference_precision": f"Marian prints word scores with 5 decimals (±{WORD_SCORE_PRECISION:g})",
        "passed": worst <= FORWARD_TOL}
    if len(ported.models) > 1:
        fwd["note"] = "ensemble: only the first member's forward pass is compared"
    if not fwd["passed"]:
        fwd["worst_line"] = where
        module, diff = _weights_differ_from(ported, reference)
        fwd["first_divergent_module"] = module
        fwd["module_max_abs_diff"] = diff
        fwd["localized_by"] = "the port's weights against a fresh conversion of the reference directory"
    return fwd


def _marian_beam(ported: Any, ref_out: list[Any], ours: list[Any], nbest: int) -> dict[str, Any]:
    """n-best lists piece for piece; scores within Marian's printed precision
    plus 1e-4. A differing hypothesis is located at its first differing step
    and classified by the port's own log-probs of the two tokens there."""
    from modelport.validators.references.marian import WORD_SCORE_PRECISION, printed_tolerance

    cfg, tok = ported.config, ported.tokenizer
    eos = cfg.eos_token_id
    mismatches: list[dict[str, Any]] = []
    hyps = real = ties = 0
    max_diff = 0.0
    for i, (r, o) in enumerate(zip(ref_out, ours)):
        for j in range(min(nbest, len(r))):
            hyps += 1
            mine = tuple(tok.id_to_tokens([t for t in o[j]["tokens"] if t != eos], side="target")) \
                if j < len(o) else None
            theirs = r[j].pieces
            if mine != theirs:
                mine = mine or ()
                step = next((k for k, (a, b) in enumerate(zip(theirs, mine)) if a != b), min(len(theirs), len(mine)))
                word_gap = abs(r[j].word_scores[step] - o[j]["positional_scores"][step]) \
                    if j < len(o) and step < min(len(r[j].word_scores), len(o[j]["positional_scores"])) else None
                tie = word_gap is not None and word_gap < 1e-5
                ties += tie
                real += not tie
                mismatches.append({"line": i, "hypothesis": j, "step": step,
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
    return {"hypotheses": hyps, "lines": len(ref_out), "identical_lines": sum(
                not any(m["line"] == i for m in mismatches) for i in range(len(ref_out))),
            "real_divergences": real, "near_ties": ties, "max_score_diff": max_diff,
            "reference_precision": "Marian prints word scores with 5 decimals and scores with 6 significant digits; "
                                   "scores must agree within half a printed unit + 1e-4",
            "mismatches": mismatches[:20], "passed": real == 0}


def validate_marian(ported: Any, ported_dir: str | os.PathLike[str], reference: str, lines: Sequence[str], *,
                    sections: set[str], options: dict[str, Any], references: Sequence[str] | None,
                    report_dir: str | os.PathLike[str] | None, write: bool) -> dict[str, Any]:
    """``validate`` for Marian ports against pymarian on the original directory."""
    from modelport.generation.translate import _MARIAN_ALIASES, _TOKEN_IDS, translate
    from modelport.validators.references.marian import MarianReference

    lines = list(lines)
    sem, opts = resolve_options(ported.generation_config, "marian", options)
    for alias, name in _MARIAN_ALIASES.items():  # beam/lenpen/nbest: an explicit alias wins over the folder's
        if alias in opts:
            opts[name] = opts.pop(alias)
    opts = {k: v for k, v in opts.items() if k not in _TOKEN_IDS}
    ref = MarianReference(reference)
    report: dict[str, Any] = {"meta": {"ported_dir": str(ported_dir), "reference": str(reference),
                                       "lines": len(lines), "semantics": sem, "options": dict(opts),
                                       "reference_framework": "pymarian (Marian 1.12)", "notes": []}}
    if "tokenizer" in sections:
        from modelport.validators.tokenizer import validate_tokenizer

        tok_report = validate_tokenizer(ported_dir, reference, lines,
                                        target_lines=list(references) if references else None)
        report["tokenizer"] = tok_report.get("tokenizer", tok_report)
    n = opts.get("n_best", False)
    beam_size = int(opts.get("beam_size", 12))
    nbest = beam_size if n is True else 1 if n is False else int(n)
    ref_opts = {k: opts[k] for k in _PYMARIAN_OPTIONS if opts.get(k) is not None}
    ref_out = ref.decode(lines, **ref_opts)
    ours = None
    if sections & {"beam", "bleu"}:
        ours = translate(ported, lines, semantics="marian", **{**opts, "n_best": True})
    if "forward" in sections:
        report["forward"] = _marian_forward(ported, ref, lines, ref_out, reference)
    if "beam" in sections:
        report["beam"] = _marian_beam(ported, ref_out, ours, nbest)
    if references is not None and "bleu" in sections:
        refs = list(references)
        report["bleu"] = {"modelport": bleu_chrf([o[0]["text"] for o in ours], refs),
                          "reference": bleu_chrf([r[0].text for r in ref_out], refs), "passed": True}
    checked = [v for k, v in report.items() if isinstance(v, dict) and k != "meta"]
    report["passed"] = bool(checked) and all(v.get("passed", True) for v in checked)
    fwd, beam = report.get("forward", {}), report.get("beam", {})
    if not fwd.get("passed", True):
        report["failure"] = (f"forward: per-token log-probs differ from pymarian score by "
                             f"{fwd['max_abs_logprob_diff']:.2e} (> {FORWARD_TOL:g}); first module whose weights "
                             f"differ from the reference: {fwd.get('first_divergent_module')}")
    elif not beam.get("passed", True):
        report["failure"] = (f"beam: {beam['lines'] - beam['identical_lines']} of {beam['lines']} lines differ "
                             "from pymarian decode")
    if write:
        write_parity_report(report, Path(report_dir) if report_dir is not None else Path(ported_dir))
    return report
