"""``modelport export hf|onnx|ct2``: a ported folder in another library's format,
one subcommand per target, each with its own options."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.cli.common import PORTED_HELP, add_ported_argument
from modelport.cli.console import add_console_options, progress_shown
from modelport.cli.printing import print_lines
from modelport.cli.streams import print_json, read_optional_lines
from modelport.errors import InvalidInputError
from modelport.reports.ct2 import QUANTIZATIONS
from modelport.reports.export import ExportReport


@dataclass(frozen=True)
class _Option:
    """A flag only one target takes."""

    flag: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


_ALLOW_APPROXIMATE = _Option("--allow-approximate", {
    "action": "store_true",
    "help": "export even where transformers' numerics differ slightly (Marian's sinusoid denominator and "
            "layer-norm eps); logit and output differences are measured and recorded, not checked (tokenizer "
            "ids still are)"})
_OPSET = _Option("--opset", {"type": int, "metavar": "N", "help": "the ONNX opset, 14 to 23 (default 17)"})
_INT8 = _Option("--int8", {
    "action": "store_true",
    "help": "after verifying the fp32 graphs, quantize them with onnxruntime's dynamic int8 quantization and report "
            "their agreement with the fp32 port (beam outputs identical, logit difference, size)"})
_SOURCE_LANG = _Option("--source-lang", {
    "help": "multilingual ports (M2M100, NLLB-200, mBART-50): the language of --data, which the verification "
            "translates (onnx, ct2: required for them; hf: default their first language; `modelport inspect` "
            "lists the languages)"})
_TARGET_LANG = _Option("--target-lang", {"help": "multilingual ports: the language the verification translates "
                                                 "--data into (hf: default their second language)"})
_QUANTIZATION = _Option("--quantization", {
    "choices": QUANTIZATIONS, "metavar": "TYPE",
    "help": f"CTranslate2 weight type ({', '.join(QUANTIZATIONS)}; default: float32, verified token-identical)"})


@dataclass(frozen=True)
class _Target:
    """One export target: its subcommand, the library it writes for, its own options and its handler."""

    name: str
    library: str
    help: str
    description: str
    options: tuple[_Option, ...]
    run: Callable[[argparse.Namespace], int]
    data_default: str = "a few built-in sentences"  # what the verification translates without --data


def _run_hf(args: argparse.Namespace) -> int:
    """`export hf`: a transformers folder, checked with transformers."""
    _refuse_other_targets_options(args)
    from modelport.exporters.hf import export_hf  # lazy: imports torch

    report = export_hf(args.ported_dir, args.output_dir, force=args.force, verify=not args.no_verify,
                       progress=progress_shown(args), allow_approximate=args.allow_approximate,
                       lines=read_optional_lines(args.data), source_lang=args.source_lang,
                       target_lang=args.target_lang)
    _print_report(args, report)
    return 0


def _run_onnx(args: argparse.Namespace) -> int:
    """`export onnx`: encoder.onnx + decoder.onnx + decoder_with_past.onnx, checked with onnxruntime."""
    _refuse_other_targets_options(args)
    from modelport.exporters.onnx import OPSET, export_onnx  # lazy: imports torch

    report = export_onnx(args.ported_dir, args.output_dir, force=args.force, verify=not args.no_verify,
                         progress=progress_shown(args),
                         opset=args.opset or OPSET, lines=read_optional_lines(args.data), int8=args.int8,
                         source_lang=args.source_lang, target_lang=args.target_lang)
    _print_report(args, report)
    return 0


def _run_ct2(args: argparse.Namespace) -> int:
    """`export ct2`: a CTranslate2 model directory, checked with ctranslate2."""
    _refuse_other_targets_options(args)
    from modelport.exporters.ct2 import export_ct2  # lazy: imports torch

    report = export_ct2(args.ported_dir, args.output_dir, quantization=args.quantization, force=args.force,
                        verify=not args.no_verify, progress=progress_shown(args),
                        lines=read_optional_lines(args.data), source_lang=args.source_lang,
                        target_lang=args.target_lang)
    _print_report(args, report)
    return 0


_TARGETS = (
    _Target("hf", "transformers", "Hugging Face transformers: AutoModelForSeq2SeqLM + AutoTokenizer",
            "Write OUTPUT_DIR for transformers' AutoModelForSeq2SeqLM and AutoTokenizer (fairseq -> FSMT, "
            "Marian -> MarianMTModel, T5 -> T5ForConditionalGeneration). Only what the transformers class "
            "computes exactly is exported; anything else exits 2 naming the option. The folder is then loaded "
            "with transformers and compared with the port (tokenizer ids, logits within 1e-4, generate vs "
            "modelport's hf beam search); the result goes to export_report.json, and a mismatch exits 3 leaving "
            "nothing behind. A multilingual port's folder defaults to its first two languages (the tokenizer's "
            "src_lang/tgt_lang, generate's forced_bos_token_id) and is verified in them, unless --source-lang/"
            "--target-lang name another pair.",
            (_ALLOW_APPROXIMATE, _SOURCE_LANG, _TARGET_LANG), _run_hf),
    _Target("onnx", "onnxruntime", "onnxruntime: encoder.onnx + decoder.onnx + decoder_with_past.onnx (KV cache)",
            "Write encoder.onnx, decoder.onnx (the first step: logits and the cache, cross-attention keys/values "
            "included) and decoder_with_past.onnx (every later step: one token and the cache in, the token's "
            "own keys/values out, which the runtime appends; a Marian SSRU decoder's cache is one cell state per "
            "layer) with dynamic batch "
            "and lengths, plus the tokenizer, for fairseq, Marian and T5 ports. The graphs are run with "
            "onnxruntime and compared with the port: teacher-forced logits within 1e-4, greedy outputs identical, "
            "and modelport's beam search (beam 5, the folder's semantics) on onnxruntime token-identical to the "
            "port's; a mismatch exits 3 leaving nothing behind. Ensembles and quantized folders exit 2. Translate "
            "with the result: `modelport translate OUTPUT_DIR --backend onnx`.",
            (_OPSET, _INT8, _SOURCE_LANG, _TARGET_LANG), _run_onnx),
    _Target("ct2", "ctranslate2", "CTranslate2: a model directory for ctranslate2.Translator",
            "Write OUTPUT_DIR as a CTranslate2 model directory (model.bin, config.json, vocabularies, the port's "
            "tokenizer) through ctranslate2.specs, for fairseq, Marian and T5 ports; what CTranslate2 cannot "
            "represent (ensembles, Marian SSRU decoders, deeper FFNs, per-layer head counts) exits 2 naming it. The "
            "directory is then run with ctranslate2.Translator on --data (default: the first 20 lines of the bundled "
            "test corpus) and compared with the port: greedy outputs must be token-identical (exit 3 leaving nothing "
            "behind otherwise), beam-5 outputs are compared with the settings where the two search rules coincide, "
            "and where they cannot (Marian's shrinking beam) the differing lines and the rule are reported. A "
            "quantized export reports its agreement with the fp32 port instead. Sources and targets carry the "
            "special tokens `translate` places (a multilingual port's languages, given by --source-lang/"
            "--target-lang; BART's <s>), and the report says how to give them to CTranslate2.",
            (_QUANTIZATION, _SOURCE_LANG, _TARGET_LANG), _run_ct2,
            "the first 20 lines of the bundled test corpus in a source checkout, else a few built-in sentences"),
)


def _every_option() -> list[_Option]:
    """Every target's options, each once (targets share some, e.g. --source-lang)."""
    return list({option.flag: option for target in _TARGETS for option in target.options}.values())


def _refuse_other_targets_options(args: argparse.Namespace) -> None:
    """Another target's flag is accepted by the parser (hidden from help) so
    that it is refused here with a message naming the target, not as unknown."""
    own = next(target.options for target in _TARGETS if target.name == args.target)
    wrong = [option.flag for option in _every_option()
             if option not in own and getattr(args, option.dest) not in (None, False)]
    if wrong:
        raise InvalidInputError(f"{', '.join(wrong)} does not apply to `export {args.target}`")


def _print_report(args: argparse.Namespace, report: ExportReport) -> None:
    if args.json:
        print_json({**report.to_json(), "output_dir": args.output_dir})
    else:
        print_lines(report.summary_lines(args.output_dir))


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``export`` and one subcommand per target."""
    p = sub.add_parser("export", help="write a ported folder in another library's format",
                       description="Write a ported folder in another library's format and check the result "
                                   "in that library. Each target has its own options: see `modelport export "
                                   "TARGET --help`.")
    p.epilog = ("examples:\n"
                "  modelport export hf ported/en-de exported/en-de-hf\n"
                "  modelport export onnx ported/en-de exported/en-de-onnx --opset 17\n"
                "  modelport export ct2 ported/en-de exported/en-de-ct2 --quantization int8")
    targets = p.add_subparsers(dest="target", metavar="TARGET", help="the library to write for")
    targets.required = True
    for target in _TARGETS:
        t = targets.add_parser(target.name, help=target.help, description=target.description)
        add_console_options(t, command=True)
        add_ported_argument(t, PORTED_HELP)
        t.add_argument("output_dir", help="folder to write")
        t.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
        t.add_argument("--data", metavar="FILE",
                       help=f"source lines to verify on (default: {target.data_default})")
        t.add_argument("--no-verify", action="store_true",
                       help=f"skip comparing the result with the port (in {target.library})")
        for option in _every_option():
            hidden = {} if option in target.options else {"help": argparse.SUPPRESS}
            t.add_argument(option.flag, **{**option.kwargs, **hidden})
        t.add_argument("--json", action="store_true", help="print the export report as JSON")
        t.set_defaults(func=target.run, command_parser=t)
