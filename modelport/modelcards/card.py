"""README.md model cards for ported folders.

The metadata block is built with huggingface_hub's :class:`ModelCardData` and
:class:`EvalResult` (never hand-written YAML); the body is rendered from the
folder's own files: ``config.json`` (architecture), ``conversion.json``
(provenance, dropped keys, pass history), ``generation_config.json``
(decoding defaults), ``tokenizer/tokenizer_config.json`` (languages) and,
when ``modelport validate`` wrote one, ``parity_report.json`` (read as a
:class:`~modelport.reports.parity.ParityReport`). The folder is opened as a
checked :class:`~modelport.model.folder.PortedFolder`: a damaged or edited
folder gets no card.

Nothing is invented: a license appears only when given or recorded in the
provenance (``conversion.json`` ``license``), ``model-index`` eval results
only when the parity report holds BLEU/chrF *and* the user names the dataset
they were measured on (``eval_dataset``); the usage names the Hub repo once
published (``repo_id``), a placeholder before. Passes are a table of what each
measured (size, speed, agreement, BLEU).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modelport.errors import InvalidInputError, OutputExistsError, first_line
from modelport.files import atomic_text_file, not_a_folder, single_line
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import (CARD_NAME, CONFIG_NAME, CONVERSION_NAME, TOKENIZER_CONFIG_NAME, TOKENIZER_DIR,
                                    PortedFolder, not_a_port)
from modelport.reports.export import ExportReport, HfExportReport
from modelport.reports.parity import ParityReport
from modelport.reports.passes import PassMeasurement
from modelport.tokenizers.base import language_code_tokens


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"`{path}` is not valid JSON ({e})") from None


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def _architecture(m: Seq2SeqConfig, ensemble: int, params: int | None) -> list[str]:
    norm = f"{'pre' if m.pre_norm else 'post'}-norm {m.norm}"
    # head-pruned models have per-layer counts
    per_layer = {"encoder": m.encoder_layer_heads, "decoder": m.decoder_layer_heads, "cross": m.cross_layer_heads}
    pruned = any(per_layer.values())
    lines = [
        f"- encoder-decoder transformer: {m.encoder_layers} encoder and {m.decoder_layers} decoder "
        f"layers, d_model {m.d_model}, {m.encoder_heads}/{m.decoder_heads} attention heads"
        f"{' (before pruning)' if pruned else ''}, "
        f"FFN {m.encoder_ffn_dim}/{m.decoder_ffn_dim} ({m.activation}{', gated' if m.ffn_gated else ''})",
        f"- {norm}, {m.positions} positions{', layernorm on embeddings' if m.layernorm_embedding else ''}",
        f"- vocabulary: source {m.source_vocab_size}, target {m.target_vocab_size}"
        f"{' (shared embeddings)' if m.shared_embeddings else ''}"
        f"{', output projection tied to the target embeddings' if m.tie_output_embeddings else ''}",
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


def _eval_results(report: ParityReport | None, task: str, eval_dataset: str | None) -> list[EvalResult]:
    """BLEU and chrF of the port on ``eval_dataset``, the data the user says
    the parity report's BLEU was measured on. Without a named dataset there
    are no results: a number on "the lines validate ran" is no evaluation
    anyone can compare with (the parity summary in the text shows it)."""
    if report is None or report.bleu is None or not eval_dataset:
        return []
    scores = report.bleu.modelport
    return [EvalResult(task_type=task, task_name="Translation", dataset_type=eval_dataset, dataset_name=eval_dataset,
                       metric_type=metric, metric_name=name, metric_value=float(value),
                       metric_config=signature)
            for metric, name, value, signature in (
                ("bleu", "BLEU", scores.bleu, report.bleu.signature.bleu if report.bleu.signature else None),
                ("chrf", "chrF", scores.chrf, report.bleu.signature.chrf if report.bleu.signature else None))]


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
    out += ["", "### Passes applied after conversion", ""] + _passes_table(conv.get("history") or [])
    return out


def _pass_cells(entry: Mapping[str, Any]) -> list[str]:
    """One row of the passes table: name, options, parameters, size, speed, agreement, BLEU."""
    name = str(entry.get("pass") or entry.get("name") or entry.get("type") or "pass")
    options = entry.get("options")
    if not isinstance(options, Mapping):  # an entry written as {pass, option: value, ...}
        options = {k: v for k, v in entry.items() if k not in ("pass", "name", "type", "changed", "report")}
    shown = ", ".join(f"`{k}={json.dumps(v, ensure_ascii=False, default=str)}`" for k, v in options.items())
    cells = [f"`{name}`", shown or "–"] + ["–"] * 5
    try:
        m = PassMeasurement.from_json(entry["report"]) if isinstance(entry.get("report"), Mapping) else None
    except (KeyError, TypeError, ValueError):
        m = None  # a report this version cannot read: the name and options still say what ran
    if m is not None:
        p, b = m.parameters, m.bytes_on_disk
        cells[2] = f"{_fmt_params(p.before)} → {_fmt_params(p.after)}"
        cells[3] = f"{b.before / 1e6:.2f} MB → {b.after / 1e6:.2f} MB ({100 * b.after / max(b.before, 1):.0f}%)"
        if m.tokens_per_second is not None:
            t = m.tokens_per_second
            cells[4] = f"{t.before:g} → {t.after:g} tokens/s ({t.speedup:g}×, {t.how})"
        if m.agreement is not None:
            a = m.agreement
            direction = f", {m.languages[0]} → {m.languages[1]}" if m.languages else ""
            cells[5] = f"{a.identical_outputs}/{a.lines} identical outputs ({a.identical_percent:g}%{direction})"
        if m.quality is not None:
            q = m.quality
            cells[6] = f"{q.before.bleu:g} → {q.after.bleu:g} (chrF {q.before.chrf:g} → {q.after.chrf:g})"
    return [c.replace("|", "\\|") for c in cells]


def _passes_table(history: list[Any]) -> list[str]:
    """The pass history as a table (speed, agreement and BLEU as the pass measured them)."""
    if not history:
        return ["None: the weights are the converted source weights."]
    out = ["| # | pass | options | parameters | size on disk | speed | agreement | BLEU |",
           "|---|---|---|---|---|---|---|---|"]
    for i, entry in enumerate(history, 1):
        cells = _pass_cells(entry) if isinstance(entry, Mapping) else [str(entry).replace("|", "\\|")] + ["–"] * 6
        out.append(f"| {i} | " + " | ".join(cells) + " |")
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


LOCAL_PLACEHOLDER = "path/to/this/folder"  # what the usage names before the folder is published


def _target_codes(directory: Path, tok: Mapping[str, Any]) -> list[str]:
    """A Marian multi-target model's ``>>xxx<<`` tokens (its source vocabulary's), which begin each source line."""
    vocab = _read(directory / TOKENIZER_DIR / tok["vocab"]) if isinstance(tok.get("vocab"), str) else {}
    return language_code_tokens(vocab)


def trained_pairs(conv: Mapping[str, Any], tok: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The directions a multilingual fairseq checkpoint was trained in (its
    ``--lang-pairs``, which conversion.json records), those of its languages
    only: a model that knows 100 language tokens may have learnt two directions."""
    languages = set(tok.get("languages") or [])
    recorded = (conv.get("foreign_options") or {}).get("lang_pairs")
    if isinstance(recorded, str):
        recorded = recorded.split(",")
    if not languages or not isinstance(recorded, list):
        return []
    pairs = [tuple(p.strip().split("-", 1)) for p in recorded if isinstance(p, str) and p.count("-") == 1]
    return [(a, b) for a, b in pairs if a in languages and b in languages]


def _language_lines(directory: Path, tok: Mapping[str, Any], trained: list[tuple[str, str]]) -> list[str]:
    """The Model section's line on a multilingual port's languages (none for a one-pair model)."""
    def listed(names: list[str]) -> str:
        return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")

    languages = list(tok.get("languages") or [])
    if languages:
        return [f"- languages ({len(languages)}; translate in a direction with `--source-lang`/`--target-lang`): "
                f"{listed(languages)}"] + ([f"- trained directions (the checkpoint's `--lang-pairs`): "
                                            f"{listed([f'{a}-{b}' for a, b in trained])}"] if trained else [])
    codes = _target_codes(directory, tok)
    return [f"- target languages ({len(codes)}; begin each source line with one): {listed(codes)}"] if codes else []


@dataclass(frozen=True)
class _Example:
    """The usage example's input line and the direction it is translated in: a
    multilingual port needs its languages (``translate`` refuses a line without
    them), a Marian multi-target model a ``>>xxx<<`` token at the line's start."""

    line: str = "Hello world."
    source_lang: str | None = None
    target_lang: str | None = None

    @classmethod
    def of(cls, directory: Path, tok: Mapping[str, Any], report: ParityReport | None,
           measured: tuple[str, str] | None = None, trained: Sequence[tuple[str, str]] = ()) -> _Example:
        """``report``'s first validated direction, else the one a pass measured in (``measured``), else
        the first trained direction, else the first two languages, for a multilingual port."""
        languages = tok.get("languages") or []
        if languages:
            pairs = [(p.source_lang, p.target_lang) for p in (report.pairs or {}).values()] if report else []
            pairs = [p for p in pairs if None not in p] + ([measured] if measured else []) + list(trained)
            src, tgt = pairs[0] if pairs else (languages[0], languages[1 % len(languages)])
            return cls(source_lang=src, target_lang=tgt)
        codes = _target_codes(directory, tok)
        return cls(line=f"{codes[0]} Hello world.") if codes else cls()

    def python(self) -> str:
        direction = (f', source_lang="{self.source_lang}", target_lang="{self.target_lang}"'
                     if self.source_lang else "")
        return f'print(model.translate(["{self.line}"]{direction})[0][0]["text"])'

    def shell(self, where: str) -> str:
        direction = f" --source-lang {self.source_lang} --target-lang {self.target_lang}" if self.source_lang else ""
        return f"echo '{self.line}' | modelport translate {where}{direction}"


def _usage_lines(gen: dict[str, Any], where: str, example: _Example) -> list[str]:
    sem = gen.get("semantics", "fairseq")
    defaults = ", ".join(f"`{k}={v}`" for k, v in gen.items() if k != "semantics")
    return [
        "```python", "import modelport", "", f'model = modelport.load("{where}")', example.python(), "```", "",
        "```bash", example.shell(where), "```", "",
        "### Generation defaults", "",
        f"From `generation_config.json`: semantics profile `{sem}`; {defaults}.", "",
        f"The semantics profile says whose search is reproduced: {_SEMANTICS_NOTE.get(sem, sem)}. "
        "Override any default per call (`translate(lines, beam=4)`, `--beam 4`) or switch profile with "
        "`semantics=` / `--semantics`; outputs are only guaranteed identical to the original framework under "
        "its own profile.",
    ]


def _transformers_usage_lines(export: HfExportReport, where: str) -> list[str]:
    """Usage of a folder written by `modelport export hf` (loaded by transformers, not modelport)."""
    check = export.verification
    beams = export.generation_config.get("num_beams")  # transformers' GenerationConfig field
    out = [
        "### Use with transformers", "",
        "```python", "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer", "",
        f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
        f'model = AutoModelForSeq2SeqLM.from_pretrained("{where}")',
        'batch = tokenizer(["Hello world."], return_tensors="pt", padding=True)',
        "print(tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True))", "```", "",
        f"`modelport export hf` wrote this folder as `{export.model_class}` + "
        f"`{export.tokenizer_class}` (transformers {export.transformers_version})"
        + (f"; `generate` defaults to {beams} beams" if beams else "") + ".",
    ]
    if check is not None:
        out += ["", f"Checked against the modelport port on {check.lines} lines: tokenizer ids "
                f"{check.ids_equal}/{check.lines} identical, max |logit difference| {check.max_abs_logit_diff:.3g}, "
                f"`generate` outputs {check.generate_identical}/{check.lines} identical to modelport's "
                f"`semantics=\"hf\"` search."]
    for note in export.approximations:
        out += ["", f"Approximation (exported with --allow-approximate): {note}."]
    for note in export.generation_notes:
        out += ["", f"Note: {note}."]
    return out


# the framework whose outputs each source format's port reproduces, under its own semantics profile
_ORIGINAL = {"fairseq": "fairseq", "marian": "Marian", "t5": "transformers"}


def _intended_use_lines(fmt: str, report: ParityReport | None, history: list[Any],
                        export: HfExportReport | None) -> list[str]:
    """What the port is for and what was proven about it."""
    original = _ORIGINAL.get(fmt, f"the {fmt} framework")
    distilled = _distill_entry(history)
    if distilled is not None:
        return _distilled_lines(distilled)
    what = (f"This is the {fmt} checkpoint named under Conversion, in another framework's format: the same "
            f"translation model, for use where {original} is not available or not wanted"
            + (" (loaded by transformers)" if export is not None else " (loaded by modelport)") + ".")
    out = [what, ""]
    if report is not None:
        reference = Path(report.meta.reference).name or report.meta.reference
        out.append(f"Parity was {'proven' if report.passed else 'checked, and **failed**,'} on "
                   f"{report.meta.lines if report.meta.lines is not None else 'an unknown number of'} lines of "
                   f"the publisher's own data against the original checkpoint (`{reference}`, run by "
                   f"{report.meta.reference_framework or original}); see the parity section.")
    else:
        out.append("Parity with the original framework has not been checked for this folder.")
    out += ["", "Translation quality is the original model's"
            + (" (changed by the passes listed above, as measured there)" if history else "")
            + ": read the original model's documentation for its training data, languages, domains and "
              "evaluation; this port adds no training and no new evaluation."]
    return out


def _distilled_lines(entry: Mapping[str, Any]) -> list[str]:
    """What a student written by ``modelport distill`` is, and whose student."""
    changed = entry.get("changed") or {}
    teacher, data, training = changed.get("teacher") or {}, changed.get("data") or {}, changed.get("training") or {}
    return [f"This model is a **distilled student** of the teacher `{Path(str(teacher.get('path', '?'))).name}` "
            f"(weights sha256 `{teacher.get('sha256', '?')}`): student `{training.get('student', '?')}`, trained by "
            f"`modelport distill` for {training.get('updates', '?')} updates (seed {training.get('seed', '?')}) on the "
            f"teacher's translations of {data.get('lines', '?')} lines of `{data.get('path', '?')}` (sha256 "
            f"`{data.get('sha256', '?')}`), for use where the teacher is too large or too slow.", "",
            "Its quality is its own, not the teacher's: `distill_report.md` in this folder compares them (BLEU/chrF, "
            "agreement, tokens/s, size). Parity with an original framework does not apply to a trained student; "
            "it does to exports made from it."]


def _distill_entry(history: list[Any]) -> Mapping[str, Any] | None:
    """The last ``modelport distill`` entry of a folder's pass history, if any."""
    return next((h for h in reversed(history) if isinstance(h, Mapping) and h.get("pass") == "distill"), None)


def _limitations_lines(fmt: str, sem: str, history: list[Any], export: HfExportReport | None) -> list[str]:
    """Known ways this folder's outputs can differ from the original's."""
    out = [f"- Outputs are guaranteed identical to the original framework's only under the `{sem}` semantics "
           "profile with the same decoding options. Other profiles reproduce other frameworks' beam searches "
           "(e.g. transformers' `generate` keeps finished hypotheses differently from fairseq's "
           "`SequenceGenerator` and normalises length differently), so they can give other translations."]
    if export is not None:
        out.append("- transformers' `generate` is hf beam search: on a port of a "
                   f"{fmt} checkpoint its outputs can differ from {_ORIGINAL.get(fmt, fmt)}'s own search.")
    if history:
        out.append("- The weights were changed by the passes listed under Conversion (quantization, pruning): "
                   "outputs differ from the original on some inputs (see each pass's agreement and BLEU).")
    out += ["- Parity is proven on the lines it was run on, with fp32 on CPU; other devices and dtypes "
            "(fp16/bf16, GPUs) agree up to numerical near-ties.",
            "- Whatever the original model cannot do (languages, domains, biases in its training data), this "
            "port cannot either."]
    return out


def _export_report(export: HfExportReport | Mapping[str, Any]) -> HfExportReport:
    """``export`` typed (it may still come as its JSON, ``export_report.json``)."""
    report = export if isinstance(export, HfExportReport) else ExportReport.from_json(export)
    if not isinstance(report, HfExportReport):
        raise InvalidInputError(f"a card describes a `modelport export hf` folder, not an `export {report.target}` "
                                "one")
    return report


def check_repo_id(repo_id: str, what: str = "a valid Hub repository id") -> None:
    """Refuse what huggingface_hub (and the Hub) would refuse as a repo id
    (NAME or NAMESPACE/NAME), saying why: a card's ``base_model`` must be one
    too, or the Hub rejects the card's metadata on upload."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise InvalidInputError(f"`{repo_id}` is not {what}: {first_line(e)}") from None


# the line that says a README.md is modelport's card (refreshed by `modelport card`, kept otherwise), read
# within the first MARKER_WINDOW bytes: after the metadata block, whose size the language list bounds
CARD_MARKER = "<!-- model card written by `modelport card` from this folder's files; it rewrites it -->"
MARKER_WINDOW = 1 << 16
# a license as the Hub's metadata names it (apache-2.0, cc-by-nc-4.0, other): one word, never text
LICENSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,99}")
# a language as the metadata lists it (en, pt-BR, eng_Latn, zh_CN)
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8})*")


def check_license(value: object, where: str) -> str:
    """``value`` when it is a license id (:data:`LICENSE_ID`), else :class:`InvalidInputError`."""
    if not isinstance(value, str) or not LICENSE_ID.fullmatch(value):
        raise InvalidInputError(f"{where} must be a license id such as apache-2.0, mit or cc-by-4.0 (letters, digits, "
                                f"'.', '+', '_' and '-'), not {json.dumps(value, ensure_ascii=False)[:80]}")
    return value


def make_card(ported_dir: str | os.PathLike[str], *, license: str | None = None,
              language: str | list[str] | None = None, base_model: str | None = None,
              export: HfExportReport | Mapping[str, Any] | None = None, repo_id: str | None = None,
              eval_dataset: str | None = None) -> ModelCard:
    """Build the model card of a ported folder (metadata + Markdown body).

    ``export`` (the report of ``modelport export hf``) makes it the card of
    the transformers folder exported from it: transformers usage instead of
    modelport's. ``repo_id`` (known once published) is what the usage loads;
    ``eval_dataset`` names the data the parity report's BLEU/chrF were
    measured on, and only then are they ``model-index`` evaluation results."""
    if base_model is not None:
        check_repo_id(base_model, "a Hub model id (--base-model)")
    export = _export_report(export) if export is not None else None
    directory = Path(ported_dir)
    other = not_a_port(directory)  # an export or a transformers folder, named as what it is
    if other is not None:
        raise other
    problem = not_a_folder(directory)
    if problem is not None:
        raise InvalidInputError(f"`{ported_dir}` is not a ported model folder ({problem})")
    if not (directory / CONFIG_NAME).is_file() or not (directory / CONVERSION_NAME).is_file():
        raise InvalidInputError(f"`{ported_dir}` is not a ported model folder ({CONFIG_NAME} or {CONVERSION_NAME} "
                                "missing; create one with `modelport convert`)")
    folder = PortedFolder.open(directory)  # a damaged or edited folder gets no card
    conv, gen = folder.conversion, folder.generation_config
    tok = _read(directory / TOKENIZER_DIR / TOKENIZER_CONFIG_NAME)
    report = folder.parity_report()
    made_by = folder.pass_report()
    measured = made_by.measured.languages if made_by is not None else None  # the direction a pass measured in
    fmt = folder.data.get("source_format", "unknown")
    ensemble = folder.ensemble_size

    if isinstance(language, str):  # one language, not its characters
        language = [language]
    for code in language or ():
        if not isinstance(code, str) or not LANGUAGE_CODE.fullmatch(code):
            raise InvalidInputError(f"`--language` takes language codes such as en, de or eng_Latn, not "
                                    f"{json.dumps(code, ensure_ascii=False)[:80]}")
    if eval_dataset is not None and (not isinstance(eval_dataset, str) or not eval_dataset.strip()
                                     or single_line(eval_dataset) != eval_dataset):
        raise InvalidInputError(f"`--eval-dataset` must be a dataset's name on one line, not "
                                f"{json.dumps(eval_dataset, ensure_ascii=False)[:80]}")
    trained = trained_pairs(conv, tok)
    langs = list(language) if language else [x for x in (tok.get("source_lang"), tok.get("target_lang")) if x] \
        or list(dict.fromkeys(lang for pair in trained for lang in pair))
    lic = check_license(license, "`--license`") if license is not None else \
        check_license(conv["license"], f"`license` in {CONVERSION_NAME}") if conv.get("license") is not None else None
    name = directory.resolve().name
    task = "translation"
    results = _eval_results(report, task, eval_dataset)
    data = ModelCardData(
        language=langs or None, license=lic, library_name="transformers" if export is not None else "modelport",
        tags=[task, fmt, "modelport"],
        pipeline_tag=task, base_model=base_model, model_name=name if results else None,
        eval_results=results or None,
    )
    pair = f" ({tok['source_lang']} → {tok['target_lang']})" if tok.get("source_lang") and tok.get("target_lang") \
        else ""
    params = folder.parameters
    body = [f"# {name}", "",
            f"A {fmt} translation model{pair} ported by modelport into its unified "
            "PyTorch encoder-decoder" + (f", converted from `{base_model}`" if base_model else "")
            + (f", exported as transformers' `{export.model_class}`" if export is not None else "") + ".", "",
            "## Model", ""] + _architecture(folder.config, ensemble, params) \
        + _language_lines(directory, tok, trained) + ["", "## Conversion", ""] \
        + _provenance_lines(conv) + ["", "## Parity with the original framework", ""]
    body += report.card_lines() if report is not None else \
        ["Not validated yet: run `modelport validate PORTED_DIR --reference SOURCE --data FILE` to compare "
         "tokenizer ids, logits and beam-search outputs with the original framework."]
    history = conv.get("history") or []
    body += ["", "## Intended use", ""] + _intended_use_lines(fmt, report, history, export)
    body += ["", "## Limitations", ""] + _limitations_lines(fmt, str(gen.get("semantics", "fairseq")), history,
                                                           export)
    where = repo_id or LOCAL_PLACEHOLDER
    usage = (_transformers_usage_lines(export, where) if export is not None
             else _usage_lines(gen, where, _Example.of(directory, tok, report, measured, trained)))
    body += ["", "## Usage", ""] + usage
    if lic is None:
        body += ["", "## License", "", "No license was given or recorded for the source checkpoint; check the "
                 "original model's terms before use."]
    content = f"---\n{data.to_yaml()}\n---\n\n{CARD_MARKER}\n\n" + "\n".join(body) + "\n"
    return ModelCard(content)


def write_card(ported_dir: str | os.PathLike[str], *, force: bool = False, **kw: Any) -> Path:
    """Write the card as ``README.md`` into the folder (temp file + rename).

    A README.md modelport wrote (it holds :data:`CARD_MARKER`) is refreshed;
    any other (a card written by hand, a symlink) is kept unless ``force``."""
    directory = Path(ported_dir)
    card = make_card(directory, **kw)
    target = directory / CARD_NAME
    if os.path.lexists(target) and not force and not written_by_modelport(target):
        raise OutputExistsError(str(target), detail="and is not a card modelport wrote")
    with atomic_text_file(target, newline="") as f:
        f.write(str(card))
    return target


def written_by_modelport(path: Path) -> bool:
    """Whether ``path`` is a regular file whose start holds :data:`CARD_MARKER`."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        return card_text_by_modelport(f.read(MARKER_WINDOW))


def card_text_by_modelport(start: bytes) -> bool:
    """Whether a card whose first bytes are ``start`` is one modelport wrote (holds :data:`CARD_MARKER`)."""
    return CARD_MARKER.encode("utf-8") in start[:MARKER_WINDOW]
