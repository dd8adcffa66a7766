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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError, ParityError
from modelport.model.io import read_json

# reference name -> modules it needs (checked before building it)
REQUIRES: dict[str, tuple[str, ...]] = {
    "fairseq_hub": ("fairseq", "sacremoses"),
    "sacremoses_fastbpe": ("sacremoses", "fastBPE"),
    "sacremoses_subword_nmt": ("sacremoses", "subword_nmt"),
    "sacremoses": ("sacremoses",),
    "transformers_fsmt": ("transformers", "sacremoses"),
    "sentencepiece": ("sentencepiece",),
    "transformers_marian": ("transformers", "sentencepiece"),
    "transformers_t5": ("transformers", "sentencepiece", "tokenizers"),
}


def applicable_references(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The references that apply to a tokenizer config, authoritative ones first."""
    kind = cfg.get("type")
    if kind == "fairseq_moses_bpe":
        bpe = cfg.get("bpe")
        direct = {"fastbpe": "sacremoses_fastbpe", "subword_nmt": "sacremoses_subword_nmt"}.get(bpe, "sacremoses")
        extra = ("transformers_fsmt",) if bpe == "fastbpe" else ()
        return ("fairseq_hub", direct) + extra
    if kind == "marian_spm":
        return ("sentencepiece", "transformers_marian")
    if kind == "t5_spm":
        return ("sentencepiece", "transformers_t5")
    raise InvalidInputError(f"`{kind}` is not a known tokenizer type (known: fairseq_moses_bpe, marian_spm, t5_spm)")


def build_reference(name: str, reference: Path, cfg: dict[str, Any]) -> Any:
    """Instantiate reference ``name`` on the original files in ``reference``."""
    src, tgt = cfg.get("source_lang"), cfg.get("target_lang")
    moses = (cfg.get("moses_source_lang"), cfg.get("moses_target_lang"))
    if name == "fairseq_hub":
        from modelport.validators.references.fairseq_hub import FairseqHubReference

        # fairseq resolves its Moses languages itself; it is only told what a user tells from_pretrained
        return FairseqHubReference(reference, source_lang=src, target_lang=tgt,
                                   from_pretrained_langs=cfg.get("from_pretrained_langs"), moses_langs=moses)
    if name in ("sacremoses_fastbpe", "sacremoses_subword_nmt", "sacremoses"):
        from modelport.validators.references.fairseq_hub import SacremosesBpeReference

        return SacremosesBpeReference(reference, source_lang=src, target_lang=tgt,
                                      escape=cfg.get("moses_escape", True),
                                      aggressive_dash_splits=cfg.get("moses_aggressive_dash_splits", True),
                                      moses_langs=moses)
    if name == "transformers_fsmt":
        from modelport.validators.references.transformers_tok import FsmtReference

        return FsmtReference(reference, source_lang=src, target_lang=tgt, moses_langs=moses)
    if name == "sentencepiece":
        from modelport.validators.references import sentencepiece_ref as ref

        if cfg["type"] == "t5_spm":
            return ref.T5SpmReference(reference, extra_ids=int(cfg.get("extra_ids", 100)))
        return ref.MarianSpmReference(reference)
    if name == "transformers_marian":
        from modelport.validators.references.transformers_tok import MarianReference

        return MarianReference(reference)
    if name == "transformers_t5":
        from modelport.validators.references.transformers_tok import T5Reference

        return T5Reference(reference)
    raise InvalidInputError(f"`{name}` is not a known tokenizer reference (known: {', '.join(REQUIRES)})")


def _missing(name: str) -> list[str]:
    return [m for m in REQUIRES.get(name, ()) if importlib.util.find_spec(m) is None]


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

    for n, line in enumerate(lines, 1):
        ours, err = _safe(tok.encode, line)
        theirs, rerr = _safe(ref.encode, line)
        if rerr:
            counts["reference_errors"] += 1
            note("reference_error", n, line, ours, rerr)
            continue
        if err:
            counts["modelport_errors"] += 1
            note("modelport_error", n, line, err, theirs)
            continue
        if ours == theirs:
            counts["ids_equal"] += 1
        else:
            note("ids", n, line, ours, theirs)
        # target side: the reference translation when given, else the same text
        tline = target_lines[n - 1] if target_lines is not None and n - 1 < len(target_lines) else line
        ours_t, err = _safe(tok.encode_target, tline)
        if err:
            counts["modelport_errors"] += 1
            note("modelport_error", n, line, err, None)
            continue
        dec_ids = ours_t
        if has_target:
            theirs_t, rerr = _safe(ref.encode_target, tline)
            if rerr:
                counts["reference_errors"] += 1
                note("reference_error", n, line, ours_t, rerr)
                continue
            if ours_t == theirs_t:
                counts["target_ids_equal"] += 1
            else:
                note("target_ids", n, line, ours_t, theirs_t, side="target")
            dec_ids = theirs_t
        ours_d, err = _safe(tok.decode, dec_ids)
        theirs_d, rerr = _safe(ref.decode, dec_ids)
        if rerr or err:
            counts["reference_errors" if rerr else "modelport_errors"] += 1
            note("reference_error" if rerr else "modelport_error", n, line, err or ours_d, rerr or theirs_d)
            continue
        if ours_d == theirs_d:
            counts["decoded_equal"] += 1
        else:
            note("decoded", n, line, ours_d, theirs_d)
    for n, ids in enumerate(outputs or [], 1):
        ours_d, err = _safe(tok.decode, ids)
        theirs_d, rerr = _safe(ref.decode, ids)
        if rerr or err:
            counts["reference_errors" if rerr else "modelport_errors"] += 1
            note("reference_error" if rerr else "modelport_error", n, f"output {n}", err or ours_d, rerr or theirs_d)
        elif ours_d == theirs_d:
            counts["outputs_decoded_equal"] += 1
        else:
            note("outputs_decoded", n, f"output {n}: {ids}", ours_d, theirs_d)
    total = len(lines)
    passed = (counts["ids_equal"] == total and counts["decoded_equal"] == total
              and counts["target_ids_equal"] in (None, total)
              and counts["outputs_decoded_equal"] in (None, len(outputs or [])))
    if outputs is not None:
        counts["outputs"] = len(outputs)
    return {**counts, "passed": passed, "mismatches": mismatches}


def port_outputs(ported_dir: Path, lines: list[str]) -> list[list[int]]:
    """The port's greedy translations of ``lines`` as target ids (EOS and
    padding dropped): text the model itself emits, for ``outputs_decoded``.
    Lines longer than the model reads are left out."""
    import modelport

    ported = modelport.load(ported_dir)
    cfg = ported.config
    drop = {cfg.eos_token_id, cfg.pad_token_id}
    fits = [line for line in lines if len(ported.tokenizer.encode(line)) <= cfg.max_source_positions]
    hyps = ported.translate(fits, beam=1, batch_size=32) if fits else []
    return [[t for t in h[0]["tokens"] if t not in drop] for h in hyps]


def validate_tokenizer(ported_dir: str | Path, reference: str | Path, lines: list[str], *,
                       references: tuple[str, ...] | None = None, max_examples: int = 10,
                       target_lines: list[str] | None = None,
                       outputs: list[list[int]] | None = None) -> dict[str, Any]:
    """Encode and decode every line with the port and with each reference.

    ``target_lines`` (e.g. reference translations) are used for the target
    side (target ids and decoding); without them the source text is used.
    ``outputs`` are the port's translations (target ids, EOS and padding
    dropped) that both sides decode; without them the port translates
    ``lines`` greedily (a folder holding only a tokenizer has none).

    ``reference`` is the original model folder (fairseq: checkpoint,
    ``dict.*.txt``, bpecodes; Marian: ``*.spm`` + vocabulary; T5:
    ``spiece.model``). Returns ``{"tokenizer": {...}, "passed": bool}``.
    """
    from modelport.tokenizers import load_tokenizer

    ported_dir, reference = Path(ported_dir), Path(reference)
    if reference.is_file():
        reference = reference.parent
    if not reference.is_dir():
        raise InvalidInputError(f"reference `{reference}` does not exist")
    tok_dir = ported_dir / "tokenizer" if (ported_dir / "tokenizer").is_dir() else ported_dir
    cfg = read_json(tok_dir / "tokenizer_config.json")
    tok = load_tokenizer(tok_dir)
    known = applicable_references(cfg)
    names = tuple(references) if references else known
    for name in names:
        if name not in known:
            raise InvalidInputError(f"`{name}` is not a known tokenizer reference for {cfg['type']} "
                                    f"(known: {', '.join(known)})")
    lines = [line.rstrip("\n") for line in lines]
    if outputs is None and (ported_dir / "config.json").is_file():  # a folder with a model, not only a tokenizer
        outputs = port_outputs(ported_dir, lines)
    outputs = [list(o) for o in outputs] if outputs is not None else None
    results: dict[str, Any] = {}
    for name in names:
        missing = _missing(name)
        if missing:
            results[name] = {"skipped": f"{', '.join(missing)} not installed", "authoritative": None}
            continue
        ref = build_reference(name, reference, cfg)
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
