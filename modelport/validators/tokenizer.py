"""Tokenizer parity: modelport's tokenizer against the original pipeline.

For every line, and for every reference that applies to the ported
tokenizer's type, the validator compares

- ``ids``: source-side ids (``encode``), ``</s>`` included;
- ``target_ids``: target-side ids (``encode_target``), where the reference
  can produce them (fairseq's hub interface and FSMTTokenizer cannot);
- ``decoded``: the text both sides decode from the same target ids (the
  reference's own target ids where it has them, modelport's otherwise);
- ``outputs_decoded``: the text both sides decode from the port's own
  translations of the lines (the hypotheses ``validate`` compares, else the
  port's greedy output). Reference text rarely contains what a model emits
  (e.g. ``etlay &apos;s``, which only an English detokenizer joins), so this
  is where a detokenizer set up with the wrong language shows.

References are *authoritative* (they decide ``passed``: the original
framework's code, or its libraries called directly) or second opinions
(transformers' ports, which are known to differ on some inputs; they are
reported, never decisive). A reference whose package is missing is reported
as skipped; if no authoritative reference could run, parity is not shown and
``passed`` is false.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.api import load
from modelport.errors import InvalidInputError, ParityError
from modelport.model.folder import CONFIG_NAME, TOKENIZER_CONFIG_NAME, TOKENIZER_DIR
from modelport.model.io import read_json
from modelport.tokenizers import load_tokenizer
from modelport.validators.references.fairseq_hub import FairseqHubReference, SacremosesBpeReference
from modelport.validators.references.fairseq_multilingual import FairseqTaskReference
from modelport.validators.references.sentencepiece_ref import MarianSpmReference, T5SpmReference
from modelport.validators.references.transformers_tok import FsmtReference, MarianReference, T5Reference


@dataclass(frozen=True)
class ReferenceAdapter:
    """One reference tokenizer: the modules it needs (checked before it is
    built) and how to build it on the original files, given the ported
    tokenizer's config."""

    requires: tuple[str, ...]
    build: Callable[[Path, Mapping[str, Any]], Any]


def _moses_langs(cfg: Mapping[str, Any]) -> tuple[str | None, str | None]:
    return cfg.get("moses_source_lang"), cfg.get("moses_target_lang")


def _fairseq_hub(reference: Path, cfg: Mapping[str, Any]) -> FairseqHubReference:
    # fairseq resolves its Moses languages itself; it is only told what a user tells from_pretrained
    return FairseqHubReference(reference, source_lang=cfg.get("source_lang"), target_lang=cfg.get("target_lang"),
                               from_pretrained_langs=cfg.get("from_pretrained_langs"), moses_langs=_moses_langs(cfg))


def _sacremoses(reference: Path, cfg: Mapping[str, Any]) -> SacremosesBpeReference:
    return SacremosesBpeReference(reference, source_lang=cfg.get("source_lang"), target_lang=cfg.get("target_lang"),
                                  escape=cfg.get("moses_escape", True),
                                  aggressive_dash_splits=cfg.get("moses_aggressive_dash_splits", True),
                                  moses_langs=_moses_langs(cfg))


def _fsmt(reference: Path, cfg: Mapping[str, Any]) -> FsmtReference:
    return FsmtReference(reference, source_lang=cfg.get("source_lang"), target_lang=cfg.get("target_lang"),
                         moses_langs=_moses_langs(cfg))


# the sentencepiece library driven as each framework drives it, by tokenizer type
_SENTENCEPIECE: dict[str, Callable[[Path, Mapping[str, Any]], Any]] = {
    "marian_spm": lambda reference, cfg: MarianSpmReference(reference),
    "t5_spm": lambda reference, cfg: T5SpmReference(reference, extra_ids=int(cfg.get("extra_ids", 100))),
}

# reference name (a key of the report) -> adapter
REFERENCES: dict[str, ReferenceAdapter] = {
    "fairseq_hub": ReferenceAdapter(("fairseq", "sacremoses"), _fairseq_hub),
    "sacremoses_fastbpe": ReferenceAdapter(("sacremoses", "fastBPE"), _sacremoses),
    "sacremoses_subword_nmt": ReferenceAdapter(("sacremoses", "subword_nmt"), _sacremoses),
    "sacremoses": ReferenceAdapter(("sacremoses",), _sacremoses),
    "transformers_fsmt": ReferenceAdapter(("transformers", "sacremoses"), _fsmt),
    "sentencepiece": ReferenceAdapter(("sentencepiece",), lambda ref, cfg: _SENTENCEPIECE[cfg["type"]](ref, cfg)),
    "transformers_marian": ReferenceAdapter(("transformers", "sentencepiece"), lambda ref, cfg: MarianReference(ref)),
    "transformers_t5": ReferenceAdapter(("transformers", "sentencepiece", "tokenizers"),
                                        lambda ref, cfg: T5Reference(ref)),
    # fairseq's BPE (gpt2, sentencepiece) and the checkpoint's task dictionary, as fairseq loads them
    "fairseq_task": ReferenceAdapter(("fairseq",), lambda ref, cfg: FairseqTaskReference(str(ref))),
}

# fairseq's BPE library -> the reference calling it directly under sacremoses
_MOSES_BPE_DIRECT = {"fastbpe": "sacremoses_fastbpe", "subword_nmt": "sacremoses_subword_nmt"}


def _moses_bpe_references(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    bpe = cfg.get("bpe")
    extra = ("transformers_fsmt",) if bpe == "fastbpe" else ()  # FSMT ports only fastBPE models
    return ("fairseq_hub", _MOSES_BPE_DIRECT.get(bpe, "sacremoses")) + extra


# tokenizer type -> the references that apply to its config, authoritative ones first
APPLICABLE: dict[str, Callable[[Mapping[str, Any]], tuple[str, ...]]] = {
    "fairseq_moses_bpe": _moses_bpe_references,
    # transformers' MarianTokenizer reads OPUS-MT's YAML/JSON vocabulary (the models whose language token is
    # split off first); a model with Marian's own .spm vocabularies has none
    "marian_spm": lambda cfg: ("sentencepiece",) + (("transformers_marian",) if cfg.get("language_code_prefix", True)
                                                   else ()),
    "t5_spm": lambda cfg: ("sentencepiece", "transformers_t5"),
    "fairseq_spm": lambda cfg: ("fairseq_task",),
    "fairseq_gpt2_bpe": lambda cfg: ("fairseq_task",),
}


def applicable_references(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The references that apply to a tokenizer config, authoritative ones first."""
    kind = cfg.get("type")
    if not isinstance(kind, str) or kind not in APPLICABLE:
        raise InvalidInputError(f"`{kind}` is not a known tokenizer type (known: {', '.join(APPLICABLE)})")
    return APPLICABLE[kind](cfg)


def build_reference(name: str, reference: Path, cfg: Mapping[str, Any]) -> Any:
    """Instantiate reference ``name`` on the original files in ``reference``."""
    if name not in REFERENCES:
        raise InvalidInputError(f"`{name}` is not a known tokenizer reference (known: {', '.join(REFERENCES)})")
    return REFERENCES[name].build(reference, cfg)


def _missing(name: str) -> list[str]:
    return [m for m in REFERENCES[name].requires if importlib.util.find_spec(m) is None]


def aligned_diff(left: Sequence[int], right: Sequence[int], left_tokens: Sequence[str],
                 right_tokens: Sequence[str], *, context: int = 2) -> list[str]:
    """Rows ``op  id token | id token`` aligning two id sequences (``=`` same,
    ``~`` replaced, ``-`` only modelport, ``+`` only the reference); runs of
    equal rows longer than ``2*context`` are elided."""
    a = [f"{i} {t!r}" for i, t in zip(left, left_tokens)]
    b = [f"{i} {t!r}" for i, t in zip(right, right_tokens)]
    width = max([len(x) for x in a] + [9])
    rows = [f"  {'modelport':<{width}} | reference"]
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            block = [f"= {x:<{width}} | {y}" for x, y in zip(a[i1:i2], b[j1:j2])]
            if len(block) > 2 * context + 1:
                block = block[:context] + [f"  … {len(block) - 2 * context} equal"] + block[-context:]
            rows += block
            continue
        mark = {"replace": "~", "delete": "-", "insert": "+"}[op]
        la, lb = a[i1:i2], b[j1:j2]
        for k in range(max(len(la), len(lb))):
            x = la[k] if k < len(la) else ""
            y = lb[k] if k < len(lb) else ""
            rows.append(f"{mark if x and y else ('-' if x else '+')} {x:<{width}} | {y}")
    return rows


def _first_difference(x: str, y: str) -> int:
    for k, (p, q) in enumerate(zip(x, y)):
        if p != q:
            return k
    return min(len(x), len(y))


def _safe(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # a reference crashing on a line is a finding, not a bug of ours
        return None, f"{type(exc).__name__}: {exc}"


def _compare(tok: Any, ref: Any, lines: list[str], max_examples: int,
             target_lines: list[str] | None = None, outputs: list[list[int]] | None = None) -> dict[str, Any]:
    has_target = hasattr(ref, "encode_target")
    counts = {"ids_equal": 0, "target_ids_equal": 0 if has_target else None, "decoded_equal": 0,
              "outputs_decoded_equal": 0 if outputs is not None else None,
              "reference_errors": 0, "modelport_errors": 0}
    mismatches: list[dict[str, Any]] = []

    def note(kind: str, n: int, line: str, ours: Any, theirs: Any, side: str = "source") -> None:
        if len(mismatches) >= max_examples:
            return
        entry: dict[str, Any] = {"line": n, "kind": kind, "text": line}
        if kind in ("ids", "target_ids") and isinstance(ours, list) and isinstance(theirs, list):
            entry["diff"] = aligned_diff(ours, theirs, tok.id_to_tokens(ours, side=side),
                                         ref.tokens(theirs, side=side))
        elif kind in ("decoded", "outputs_decoded") and isinstance(ours, str) and isinstance(theirs, str):
            entry.update(modelport=ours, reference=theirs, first_difference=_first_difference(ours, theirs))
        else:
            entry.update(modelport=ours, reference=theirs)
        mismatches.append(entry)

    def failed(who: str, n: int, text: str, ours: Any, theirs: Any) -> None:
        """``who`` ("reference" or "modelport") raised on line ``n``."""
        counts[f"{who}_errors"] += 1
        note(f"{who}_error", n, text, ours, theirs)

    def tally(kind: str, n: int, text: str, ours: Any, theirs: Any, side: str = "source") -> None:
        """Count ``{kind}_equal`` or note the mismatch."""
        if ours == theirs:
            counts[f"{kind}_equal"] += 1
        else:
            note(kind, n, text, ours, theirs, side)

    def decoded(kind: str, n: int, ids: list[int], error_text: str, mismatch_text: str) -> None:
        """Both sides decode ``ids``."""
        ours_d, err = _safe(tok.decode, ids)
        theirs_d, rerr = _safe(ref.decode, ids)
        if rerr or err:
            failed("reference" if rerr else "modelport", n, error_text, err or ours_d, rerr or theirs_d)
        else:
            tally(kind, n, mismatch_text, ours_d, theirs_d)

    for n, line in enumerate(lines, 1):
        ours, err = _safe(tok.encode, line)
        theirs, rerr = _safe(ref.encode, line)
        if rerr or err:
            failed("reference" if rerr else "modelport", n, line, ours if rerr else err, rerr or theirs)
            continue
        tally("ids", n, line, ours, theirs)
        # target side: the reference translation when given, else the same text
        tline = target_lines[n - 1] if target_lines is not None and n - 1 < len(target_lines) else line
        dec_ids, err = _safe(tok.encode_target, tline)
        if err:
            failed("modelport", n, line, err, None)
            continue
        if has_target:
            theirs_t, rerr = _safe(ref.encode_target, tline)
            if rerr:
                failed("reference", n, line, dec_ids, rerr)
                continue
            tally("target_ids", n, line, dec_ids, theirs_t, side="target")
            dec_ids = theirs_t
        decoded("decoded", n, dec_ids, line, line)
    for n, ids in enumerate(outputs or [], 1):
        decoded("outputs_decoded", n, ids, f"output {n}", f"output {n}: {ids}")
    total = len(lines)
    passed = (counts["ids_equal"] == total and counts["decoded_equal"] == total
              and counts["target_ids_equal"] in (None, total)
              and counts["outputs_decoded_equal"] in (None, len(outputs or [])))
    if outputs is not None:
        counts["outputs"] = len(outputs)
    return {**counts, "passed": passed, "mismatches": mismatches}


def port_outputs(ported_dir: Path, lines: list[str]) -> list[list[int]] | None:
    """The port's greedy translations of ``lines`` as target ids (EOS and
    padding dropped): text the model itself emits, for ``outputs_decoded``.
    Lines longer than the model reads are left out. None for a multilingual
    port: no direction is known here (``validate`` passes each pair's outputs)."""
    ported = load(ported_dir)
    if getattr(ported.tokenizer, "languages", ()):
        return None
    cfg = ported.config
    drop = {cfg.eos_token_id, cfg.pad_token_id}
    fits = [line for line in lines if len(ported.tokenizer.encode(line)) <= cfg.max_source_positions]
    hyps = ported.translate(fits, beam=1, batch_size=32) if fits else []
    return [[t for t in h[0]["tokens"] if t not in drop] for h in hyps]


def validate_tokenizer(ported_dir: str | Path, reference: str | Path, lines: list[str], *,
                       references: tuple[str, ...] | None = None, max_examples: int = 10,
                       target_lines: list[str] | None = None, outputs: list[list[int]] | None = None,
                       prebuilt: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Encode and decode every line with the port and with each reference.

    ``target_lines`` (e.g. reference translations) are used for the target
    side (target ids and decoding); without them the source text is used.
    ``outputs`` are the port's translations (target ids, EOS and padding
    dropped) that both sides decode; without them the port translates
    ``lines`` greedily (a folder holding only a tokenizer has none).

    ``reference`` is the original model folder (fairseq: checkpoint,
    ``dict.*.txt``, bpecodes; Marian: ``*.spm`` + vocabulary; T5:
    ``spiece.model``). ``prebuilt``: references already built, by name (the
    validator's loaded fairseq models serve as ``fairseq_task``). Returns
    ``{"tokenizer": {...}, "passed": bool}``.
    """
    ported_dir, reference = Path(ported_dir), Path(reference)
    if reference.is_file():
        reference = reference.parent
    if not reference.is_dir():
        raise InvalidInputError(f"reference `{reference}` does not exist")
    tok_dir = ported_dir / TOKENIZER_DIR if (ported_dir / TOKENIZER_DIR).is_dir() else ported_dir
    cfg = read_json(tok_dir / TOKENIZER_CONFIG_NAME)
    tok = load_tokenizer(tok_dir)
    known = applicable_references(cfg)
    names = tuple(references) if references else known
    for name in names:
        if name not in known:
            raise InvalidInputError(f"`{name}` is not a known tokenizer reference for {cfg['type']} "
                                    f"(known: {', '.join(known)})")
    lines = [line.rstrip("\n") for line in lines]
    if outputs is None and (ported_dir / CONFIG_NAME).is_file():  # a folder with a model, not only a tokenizer
        outputs = port_outputs(ported_dir, lines)
    outputs = [list(o) for o in outputs] if outputs is not None else None
    results: dict[str, Any] = {}
    for name in names:
        missing = _missing(name)
        if missing:
            results[name] = {"skipped": f"{', '.join(missing)} not installed", "authoritative": None}
            continue
        ref = (prebuilt or {}).get(name) or build_reference(name, reference, cfg)
        entry = {"authoritative": ref.authoritative}
        if getattr(ref, "via", None):
            entry["via"] = ref.via
        if getattr(ref, "moses_langs", None):
            entry["moses_langs"] = list(ref.moses_langs)
        entry.update(_compare(tok, ref, lines, max_examples, target_lines, outputs))
        results[name] = entry
    ran = [r for r in results.values() if r.get("authoritative")]
    passed = bool(ran) and all(r["passed"] for r in ran)
    section: dict[str, Any] = {"type": cfg.get("type"), "lines": len(lines), "passed": passed,
                               "references": results}
    if not ran:
        section["note"] = "no authoritative reference could run; install the reference frameworks"
    return {"tokenizer": section, "passed": passed}


def raise_for_parity(report: dict[str, Any]) -> None:
    """Raise :class:`ParityError` (exit code 3) when a report did not pass."""
    if report.get("passed"):
        return
    failed = [f"{sec}: {name}" for sec, body in report.items() if isinstance(body, dict)
              for name, r in (body.get("references") or {}).items() if r.get("authoritative") and not r["passed"]]
    raise ParityError("parity failed (" + ("; ".join(failed) or "no reference could run") + ")")
