"""README.md model cards for ported folders.

The metadata block is built with huggingface_hub's :class:`ModelCardData` and
:class:`EvalResult` (never hand-written YAML); the body is rendered from the
folder's own files: ``config.json`` (architecture), ``conversion.json``
(provenance, dropped keys, pass history), ``generation_config.json``
(decoding defaults), ``tokenizer/tokenizer_config.json`` (languages) and,
when ``modelport validate`` wrote one, ``parity_report.json``.

Nothing is invented: a license appears only when given or recorded in the
provenance (``conversion.json`` ``license``), eval results only when the
parity report holds BLEU/chrF.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modelport.errors import WRITE_ERRNOS, InvalidInputError, OutputWriteError
from modelport.model.folder import check_folder

CARD_NAME = "README.md"


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"`{path}` is not valid JSON ({e})") from None


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def _architecture(cfg: dict[str, Any], ensemble: int, params: int | None) -> list[str]:
    m = cfg.get("model", {})
    norm = f"{'pre' if m.get('pre_norm') else 'post'}-norm {m.get('norm', 'layernorm')}"
    # head-pruned models have per-layer counts
    per_layer = {side: m.get(f"{side}_layer_heads") for side in ("encoder", "decoder", "cross")}
    pruned = any(per_layer.values())
    lines = [
        f"- encoder-decoder transformer: {m.get('encoder_layers')} encoder and {m.get('decoder_layers')} decoder "
        f"layers, d_model {m.get('d_model')}, {m.get('encoder_heads')}/{m.get('decoder_heads')} attention heads"
        f"{' (before pruning)' if pruned else ''}, "
        f"FFN {m.get('encoder_ffn_dim')}/{m.get('decoder_ffn_dim')} ({m.get('activation')}"
        f"{', gated' if m.get('ffn_gated') else ''})",
        f"- {norm}, {m.get('positions')} positions"
        f"{', layernorm on embeddings' if m.get('layernorm_embedding') else ''}",
        f"- vocabulary: source {m.get('source_vocab_size')}, target {m.get('target_vocab_size')}"
        f"{' (shared embeddings)' if m.get('shared_embeddings') else ''}"
        f"{', output projection tied to the target embeddings' if m.get('tie_output_embeddings') else ''}",
    ]
    if pruned:
        lines.append("- attention heads per layer (pruned): " + "; ".join(
            f"{side} {', '.join(map(str, counts))}" for side, counts in per_layer.items() if counts))
    if ensemble > 1:
        lines.append(f"- ensemble of {ensemble} members (scores averaged in probability space at each step)")
    if params is not None:
        per = params // max(ensemble, 1)
        lines.append(f"- parameters: {_fmt_params(per)}" + (" per member" if ensemble > 1 else ""))
    return lines


def _bleu(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"modelport": {"bleu": x, "chrf": y}, "reference": {...}}`` or ``{}``."""
    section = report.get("bleu")
    if not isinstance(section, dict):
        return {}
    return {k: v for k, v in section.items() if isinstance(v, dict) and ("bleu" in v or "chrf" in v)}


def _eval_results(report: dict[str, Any], task: str) -> list[EvalResult]:
    scores = _bleu(report).get("modelport", {})
    lines = (report.get("meta") or {}).get("lines")
    out = []
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF")):
        if metric in scores:
            out.append(EvalResult(
                task_type=task, task_name="Translation", dataset_type="modelport-parity-data",
                dataset_name=f"modelport validate data ({lines} lines)" if lines else "modelport validate data",
                metric_type=metric, metric_name=name, metric_value=float(scores[metric])))
    return out


def _parity_lines(report: dict[str, Any]) -> list[str]:
    meta = report.get("meta") or {}
    out = [f"`modelport validate` ran the original framework and this port on {meta.get('lines', '?')} lines "
           f"(semantics `{meta.get('semantics', '?')}`): parity **{'passed' if report.get('passed') else 'FAILED'}**.",
           "", "| check | result |", "|---|---|"]
    tok = report.get("tokenizer")
    if isinstance(tok, dict):
        out.append(f"| tokenizer (ids and decoded text) | {'identical' if tok.get('passed') else 'differs'} |")
    fwd = report.get("forward")
    if isinstance(fwd, dict) and "max_abs_logit_diff" in fwd:
        out.append(f"| forward: max abs logit difference | {fwd['max_abs_logit_diff']:.3g} "
                   f"(tolerance {fwd.get('tolerance', 1e-4):.0e}) |")
    beam = report.get("beam")
    if isinstance(beam, dict):
        out.append(f"| beam search: identical outputs | {'yes' if beam.get('identical') else 'no'} "
                   f"(real divergences {beam.get('real_divergences', 0)}, near-ties {beam.get('near_ties', 0)}, "
                   f"score mismatches {beam.get('score_mismatches', 0)}) |")
        if beam.get("max_score_diff") is not None:
            out.append(f"| beam search: max score difference | {beam['max_score_diff']:.3g} |")
    for system, scores in _bleu(report).items():
        parts = [f"{name} {scores[k]:.2f}" for k, name in (("bleu", "BLEU"), ("chrf", "chrF")) if k in scores]
        out.append(f"| {system} | {', '.join(parts)} |")
    for note in meta.get("notes") or []:
        out.append(f"\nNote: {note}")
    return out


def _provenance_lines(conv: dict[str, Any]) -> list[str]:
    out = [f"Converted by `{conv.get('converter', '?')}` (modelport {conv.get('modelport_version', '?')}) "
           f"from `{Path(str(conv.get('source', '?'))).name}`.", "", "| source file | bytes | sha256 |",
           "|---|---|---|"]
    for f in conv.get("source_files") or []:
        out.append(f"| `{f.get('name')}` | {f.get('bytes', '?')} | `{f.get('sha256', '?')}` |")
    options = {k: v for k, v in (conv.get("options") or {}).items() if v is not None}
    out.append("")
    out.append("Converter options: " + (", ".join(f"`{k}={v}`" for k, v in options.items()) if options
                                        else "none (defaults)") + ".")
    dropped = conv.get("dropped") or {}
    if dropped:
        out += ["", "Dropped on purpose:", ""] + [f"- `{k}`: {v}" for k, v in dropped.items()]
    history = conv.get("history") or []
    out += ["", "### Passes applied after conversion", ""]
    if not history:
        out.append("None: the weights are the converted source weights.")
    for i, entry in enumerate(history, 1):
        if isinstance(entry, dict):
            name = entry.get("pass") or entry.get("name") or entry.get("type") or "pass"
            rest = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in entry.items()
                             if k not in ("pass", "name", "type"))
            out.append(f"{i}. `{name}`" + (f": {rest}" if rest else ""))
        else:
            out.append(f"{i}. {entry}")
    return out


_SEMANTICS_NOTE = {
    "fairseq": "beam search reproduces fairseq's `SequenceGenerator` (decoder starts from EOS, "
               "score = sum of log-probs / length ** lenpen, max length = a * padded source length + b)",
    "hf": "beam search reproduces transformers' `generate` (finished hypotheses can be evicted by better "
          "ones; `early_stopping` decides when a sentence stops)",
    "marian": "beam search reproduces Marian's (the beam shrinks as hypotheses finish, decoder starts from a "
              "zero embedding, score = (sum of log-probs - word penalty * length) / length ** normalize, "
              "max length = max-length-factor * padded source length)",
}


def _usage_lines(gen: dict[str, Any]) -> list[str]:
    sem = gen.get("semantics", "fairseq")
    defaults = ", ".join(f"`{k}={v}`" for k, v in gen.items() if k != "semantics")
    return [
        "```python", "import modelport", "", 'model = modelport.load("path/to/this/folder")',
        'print(model.translate(["Hello world."])[0][0]["text"])', "```", "",
        "```bash", "echo 'Hello world.' | modelport translate path/to/this/folder", "```", "",
        "### Generation defaults", "",
        f"From `generation_config.json`: semantics profile `{sem}`; {defaults}.", "",
        f"The semantics profile says whose search is reproduced: {_SEMANTICS_NOTE.get(sem, sem)}. "
        "Override any default per call (`translate(lines, beam=4)`, `--beam 4`) or switch profile with "
        "`semantics=` / `--semantics`; outputs are only guaranteed identical to the original framework under "
        "its own profile.",
    ]


def _transformers_usage_lines(export: dict[str, Any]) -> list[str]:
    """Usage of a folder written by `modelport export hf` (loaded by transformers, not modelport)."""
    check = export.get("verification") or {}
    gen = export.get("generation_config") or {}
    beams = gen.get("num_beams")
    out = [
        "### Use with transformers", "",
        "```python", "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer", "",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        'model = AutoModelForSeq2SeqLM.from_pretrained("path/to/this/folder")',
        'batch = tokenizer(["Hello world."], return_tensors="pt", padding=True)',
        "print(tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True))", "```", "",
        f"`modelport export hf` wrote this folder as `{export.get('model_class')}` + "
        f"`{export.get('tokenizer_class')}` (transformers {export.get('transformers_version')})"
        + (f"; `generate` defaults to {beams} beams" if beams else "") + ".",
    ]
    if check:
        fwd = (check.get("forward") or {}).get("max_abs_logit_diff")
        out += ["", f"Checked against the modelport port on {check.get('lines')} lines: tokenizer ids "
                f"{(check.get('tokenizer') or {}).get('ids_equal')}/{check.get('lines')} identical, max |logit "
                f"difference| {fwd:.3g}, `generate` outputs {(check.get('generate') or {}).get('identical')}/"
                f"{check.get('lines')} identical to modelport's `semantics=\"hf\"` search."]
    for note in export.get("approximations") or []:
        out += ["", f"Approximation (exported with --allow-approximate): {note}."]
    for note in export.get("generation_notes") or []:
        out += ["", f"Note: {note}."]
    return out


def make_card(ported_dir: str | os.PathLike[str], *, license: str | None = None,
              language: list[str] | None = None, base_model: str | None = None,
              export: dict[str, Any] | None = None) -> ModelCard:
    """Build the model card of a ported folder (metadata + Markdown body).

    ``export`` (the report of ``modelport export hf``) makes it the card of
    the transformers folder exported from it: transformers usage instead of
    modelport's."""
    directory = Path(ported_dir)
    if not (directory / "config.json").is_file() or not (directory / "conversion.json").is_file():
        raise InvalidInputError(f"`{ported_dir}` is not a ported model folder (config.json or conversion.json "
                                "missing; create one with `modelport convert`)")
    checked = check_folder(directory)  # a damaged or edited folder gets no card
    cfg = _read(directory / "config.json")
    conv = _read(directory / "conversion.json")
    gen = _read(directory / "generation_config.json")
    tok = _read(directory / "tokenizer" / "tokenizer_config.json")
    report = _read(directory / "parity_report.json")
    fmt = cfg.get("source_format", "unknown")
    ensemble = int(cfg.get("ensemble_size", 1))

    langs = list(language) if language else [x for x in (tok.get("source_lang"), tok.get("target_lang")) if x]
    lic = license or conv.get("license")
    name = directory.resolve().name
    task = "translation"
    results = _eval_results(report, task)
    data = ModelCardData(
        language=langs or None, license=lic, library_name="transformers" if export else "modelport",
        tags=[task, fmt, "modelport"],
        pipeline_tag=task, base_model=base_model, model_name=name if results else None,
        eval_results=results or None,
    )
    pair = f" ({tok['source_lang']} → {tok['target_lang']})" if tok.get("source_lang") and tok.get("target_lang") \
        else ""
    params = checked.parameters
    body = [f"# {name}", "",
            f"A {fmt} translation model{pair} ported by modelport into its unified "
            "PyTorch encoder-decoder" + (f", converted from `{base_model}`" if base_model else "")
            + (f", exported as transformers' `{export.get('model_class')}`" if export else "") + ".", "",
            "## Model", ""] + _architecture(cfg, ensemble, params) + ["", "## Conversion", ""] \
        + _provenance_lines(conv) + ["", "## Parity with the original framework", ""]
    body += _parity_lines(report) if report else \
        ["Not validated yet: run `modelport validate PORTED_DIR --reference SOURCE --data FILE` to compare "
         "tokenizer ids, logits and beam-search outputs with the original framework."]
    body += ["", "## Usage", ""] + (_transformers_usage_lines(export) if export else _usage_lines(gen))
    if lic is None:
        body += ["", "## License", "", "No license was given or recorded for the source checkpoint; check the "
                 "original model's terms before use."]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"
    return ModelCard(content)


def write_card(ported_dir: str | os.PathLike[str], **kw: Any) -> Path:
    """Write the card as ``README.md`` into the folder (temp file + rename)."""
    directory = Path(ported_dir)
    card = make_card(directory, **kw)
    target = directory / CARD_NAME
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{CARD_NAME}.", dir=directory)
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise OutputWriteError(str(target), e.strerror or str(e), e.errno) from None
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(str(card))
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise OutputWriteError(str(target), f"{e.strerror or e} (nothing was written)", e.errno) from None
        raise
    return target
