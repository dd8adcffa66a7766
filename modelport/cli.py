"""The ``modelport`` command.

Exit codes: 0 success, 1 internal error (a bug: traceback printed),
2 bad input or unsupported checkpoint (one clear line), 3 parity failed.
Progress bars go to stderr; results to stdout (``--json`` where a machine
reads them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from modelport import __version__
from modelport.errors import WRITE_ERRNOS, InvalidInputError, ModelportError, OutputExistsError, OutputWriteError


class _HelpFormatter(argparse.HelpFormatter):
    """Help that tells the truth: every option with a default shows it,
    ``{formats}`` lists the registered converters (looked up only when help is
    printed: it imports torch), and an ``examples:`` epilog keeps its lines."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "{formats}" in text:
            from modelport.converters.base import converters

            text = text.replace("{formats}", ", ".join(sorted(converters())))
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and text:
            text += " (default: %(default)s)"
        return text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:\n"):
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (``modelport: error: `--beam`
    must be a positive integer, but is 0``) and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        m = re.fullmatch(r"argument (\S+): (.*)", message, flags=re.S)
        if m:
            sep = " " if m.group(2).startswith("must ") else ": "
            message = f"`{m.group(1)}`{sep}{m.group(2)}"
        message = " ".join(message.split())
        self.exit(2, f"modelport: error: {message} (see `{self.prog} --help`)\n")


def _number(text: str, kind: type, wanted: str, ok) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, but is {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {wanted}, but is {text}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def _nonnegative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def _positive_float(text: str) -> float:
    return _number(text, float, "a number > 0", lambda v: math.isfinite(v) and v > 0)


def _nonnegative_float(text: str) -> float:
    return _number(text, float, "a number >= 0", lambda v: math.isfinite(v) and v >= 0)


def _finite_float(text: str) -> float:
    return _number(text, float, "a finite number", math.isfinite)


def _probability(text: str) -> float:
    return _number(text, float, "a number in (0, 1]", lambda v: 0 < v <= 1)


_BINARY_UNITS = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _size(text: str) -> int:
    """A byte count as huggingface_hub and transformers read it: ``2GB`` is
    2*10**9 bytes (huggingface_hub's ``parse_size_to_int``: KB, MB, GB, TB),
    ``2GiB`` is 2*2**30 (KiB, MiB, GiB, TiB), a bare integer is bytes."""
    from huggingface_hub.serialization._base import parse_size_to_int  # not re-exported by huggingface_hub

    t = text.strip()
    try:
        if t.isdigit():
            value = int(t)
        elif t[-3:].upper() in _BINARY_UNITS:
            value = int(float(t[:-3]) * _BINARY_UNITS[t[-3:].upper()])
        else:
            value = parse_size_to_int(t)
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a size in bytes (examples: 500MB, 2GB = 2*10**9, 2GiB = "
                                         f"2*2**30, 1048576), but is {text!r}")
    return value


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def _print_plan_summary(summary: dict[str, Any], written: str | None = None) -> None:
    arch = summary["architecture"]
    out = sys.stdout
    out.write(f"format:        {summary['format']}\n")
    out.write(f"source:        {summary['source']}\n")
    if written:
        out.write(f"written to:    {written}\n")
    members = summary["ensemble_size"]
    out.write(f"ensemble:      {members} member{'s' if members > 1 else ''}\n")
    out.write(f"parameters:    {_fmt_params(summary['parameters_per_member'])} per member\n")
    out.write(f"layers:        {arch['encoder_layers']} encoder, {arch['decoder_layers']} decoder; "
              f"d_model {arch['d_model']}, heads {arch['heads'][0]}/{arch['heads'][1]}, "
              f"ffn {arch['ffn_dim'][0]}/{arch['ffn_dim'][1]}\n")
    out.write(f"vocabulary:    source {arch['vocab'][0]}, target {arch['vocab'][1]}"
              f"{' (shared embeddings)' if arch['shared_embeddings'] else ''}"
              f"{', tied output' if arch['tied_output'] else ''}\n")
    out.write(f"behaviour:     {arch['norm']}, {arch['positions']} positions, {arch['activation']}\n")
    tok = summary.get("tokenizer") or {}
    if tok:
        out.write(f"tokenizer:     {tok.get('type')} {tok.get('source_lang')}->{tok.get('target_lang')}, "
                  f"bpe {tok.get('bpe') or 'none'}\n")
    gen = summary.get("generation") or {}
    if gen:
        out.write("generation:    " + ", ".join(f"{k}={v}" for k, v in gen.items()) + "\n")
    dropped = summary.get("dropped") or {}
    out.write(f"dropped:       {len(dropped)} entr{'y' if len(dropped) == 1 else 'ies'}\n")
    for key, reason in dropped.items():
        out.write(f"  - {key}: {reason}\n")


# ---------------------------------------------------------------------------
# commands


def cmd_inspect(args: argparse.Namespace) -> int:
    from modelport.api import inspect, load
    from modelport.model.folder import not_a_port

    source = Path(args.source)
    export = not_a_port(source, exports_only=True)  # a T5 transformers folder is a source to inspect
    if export is not None:
        raise export
    if (source / "config.json").is_file() and (source / "conversion.json").is_file():
        ported = load(source)
        summary = ported.summary()
        if args.json:
            _print_json(summary)
        else:
            cfg = summary["config"]
            sys.stdout.write(f"ported folder: {source}\nsource format: {summary['source_format']}\n"
                             f"ensemble:      {summary['ensemble_size']}\n"
                             f"parameters:    {_fmt_params(summary['parameters_per_member'])} per member\n"
                             f"layers:        {cfg['encoder_layers']} encoder, {cfg['decoder_layers']} decoder, "
                             f"d_model {cfg['d_model']}\n"
                             f"history:       {len(ported.conversion.get('history', []))} pass(es)\n")
        return 0
    plan = inspect(args.source, format=args.format, **_converter_options(args))
    summary = plan.summary()
    if args.json:
        _print_json(summary)
    else:
        _print_plan_summary(summary)
        if args.options:
            sys.stdout.write(f"{summary['format']} options found:\n")
            for key, value in summary.get("foreign_options", {}).items():
                sys.stdout.write(f"  {key}: {value}\n")
    return 0


def _converter_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"checkpoint": args.checkpoint, "source_lang": args.source_lang, "target_lang": args.target_lang}


def cmd_convert(args: argparse.Namespace) -> int:
    from modelport.api import plan_and_write

    plan = plan_and_write(args.source, args.output_dir, format=args.format, force=args.force, progress=True,
                          shard_bytes=args.shard_size, allow_nonfinite=args.allow_nonfinite,
                          **_converter_options(args))
    summary = plan.summary()
    if args.json:
        _print_json({**summary, "output_dir": args.output_dir})
    else:
        _print_plan_summary(summary, written=args.output_dir)
    return 0


def _read_lines(path: str | None) -> list[str]:
    """The lines of ``path`` (stdin for None or "-"), strictly UTF-8: a line
    that is not is an error naming it, whatever the locale says."""
    if path is None or path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text-only stream (no bytes underneath): check what it decoded
            return [_utf8_line(line, i, "stdin") for i, line in enumerate(sys.stdin, 1)]
        return [_utf8_line(raw, i, "stdin") for i, raw in enumerate(stream, 1)]
    try:
        with open(path, "rb") as f:
            return [_utf8_line(raw, i, f"input `{path}`") for i, raw in enumerate(f, 1)]
    except FileNotFoundError:
        raise InvalidInputError(f"input `{path}` does not exist") from None
    except IsADirectoryError:
        raise InvalidInputError(f"input `{path}` must be a file, but is a directory") from None


def _utf8_line(raw: bytes | str, number: int, where: str) -> str:
    try:
        # text from a surrogateescape stream (C/POSIX locale) holds undecodable bytes as surrogates
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw.encode("utf-8").decode("utf-8")
    except UnicodeError as e:
        bad = e.object[e.start]
        shown = f"byte 0x{bad:02x}" if isinstance(bad, int) else f"byte 0x{ord(bad) & 0xff:02x}"
        raise InvalidInputError(f"line {number} of {where} must be UTF-8 text, but has {shown} at column "
                                f"{e.start + 1}") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return text


def _load_ported(path: str):
    from modelport.api import load

    return load(path)


def cmd_tokenize(args: argparse.Namespace) -> int:
    from modelport.generation.translate import decode_text
    from modelport.tokenizers import load_tokenizer

    tok = load_tokenizer(Path(args.ported_dir) / "tokenizer")
    if args.keep_special_tokens and not args.decode:
        raise InvalidInputError("--keep-special-tokens needs --decode")
    out = sys.stdout
    for line in _read_lines(args.input):
        if args.decode:
            try:
                ids = [int(x) for x in line.split()]
            except ValueError:
                raise InvalidInputError(f"--decode expects lines of integer ids, but got {line[:60]!r}") from None
            out.write(decode_text(tok, ids, args.keep_special_tokens) + "\n")
        elif args.tokens:
            out.write(" ".join(tok.tokenize(line)) + "\n")
        else:
            ids = tok.encode_target(line) if args.side == "target" else tok.encode(line)
            out.write(" ".join(map(str, ids)) + "\n")
    return 0


_SEARCH_KEYS = ("beam", "lenpen", "nbest", "max_len_a", "max_len_b", "min_len", "unkpen",
                "no_repeat_ngram_size", "semantics", "batch_size", "max_tokens")
# Marian's decoding options (translate only), under their generation option names
_MARIAN_KEYS = ("normalize", "word_penalty", "max_length", "max_length_factor", "max_length_crop", "allow_unk",
                "mini_batch", "maxi_batch", "maxi_batch_sort")
# CLI flag -> option name of modelport.generation (transformers' names for sampling)
_SAMPLING_KEYS = {"sampling_topk": "top_k", "sampling_topp": "top_p", "temperature": "temperature",
                  "seed": "seed"}


def _decoding_options(args: argparse.Namespace, search_only: bool = False) -> dict[str, Any]:
    opts = {k: getattr(args, k) for k in _SEARCH_KEYS if getattr(args, k, None) is not None}
    if search_only:
        return opts
    opts.update({k: getattr(args, k) for k in _MARIAN_KEYS if getattr(args, k, None) is not None})
    if args.early_stopping is not None:
        opts["early_stopping"] = {"true": True, "false": False}.get(args.early_stopping, args.early_stopping)
    if args.sampling:
        opts["do_sample"] = True
    for flag, name in _SAMPLING_KEYS.items():
        if getattr(args, flag, None) is not None:
            if not args.sampling:
                raise InvalidInputError(f"--{flag.replace('_', '-')} needs --sampling")
            opts[name] = getattr(args, flag)
    return opts


def _check_decoding(args: argparse.Namespace, generation_config: dict[str, Any] | None = None) -> None:
    """Decoding options that only mean something together (argparse checks each alone)."""
    gen = generation_config or {}
    beam = args.beam if args.beam is not None else next(
        (gen[k] for k in ("beam", "beam_size", "num_beams") if isinstance(gen.get(k), int)), None)
    if getattr(args, "nbest", None) is not None and beam is not None and not getattr(args, "sampling", None) \
            and args.nbest > beam:
        raise InvalidInputError(f"`--nbest` must be at most the beam size ({beam}), but is {args.nbest}")
    semantics = args.semantics or gen.get("semantics")
    if semantics == "marian" and args.lenpen is not None and args.lenpen < 0:
        raise InvalidInputError(f"`--lenpen` must be >= 0 under marian semantics (the exponent of Marian's "
                                f"--normalize), but is {args.lenpen}")


def cmd_translate(args: argparse.Namespace) -> int:
    if args.output and os.path.lexists(args.output) and not args.force:  # a dangling symlink exists too
        raise OutputExistsError(args.output, "--force")
    _check_decoding(args)
    ported = _load_ported(args.ported_dir)
    _check_decoding(args, ported.generation_config)
    from modelport.errors import NonFiniteOutputError

    options = _decoding_options(args)
    fd = _streaming_stdin() if args.input in (None, "-") else None
    # a file is read whole; a terminal or pipe in chunks of the lines that have arrived, each translated and
    # written before waiting for more (as fairseq-interactive flushes), so the first answer does not wait for EOF
    chunks = _stdin_chunks(fd) if fd is not None else iter([_read_lines(args.input)])
    first = 0
    with _output(args.output) as out:  # opened first: an output that cannot be written fails before the work
        for lines in chunks:
            try:
                results = ported.translate(lines, progress=fd is None or len(lines) > 1,
                                           keep_special_tokens=args.keep_special_tokens, **options)
            except NonFiniteOutputError as e:  # numbered within the chunk
                raise NonFiniteOutputError(first + e.line) from None
            for i, hyps in enumerate(results):
                if args.json:
                    out.write(json.dumps({"id": first + i, "source": lines[i], "hypotheses": hyps},
                                         ensure_ascii=False) + "\n")
                    continue
                for hyp in hyps:
                    if args.scores:
                        out.write(f"{hyp['score']:.6f}\t{hyp['text']}\n")
                    else:
                        out.write(hyp["text"] + "\n")
            out.flush()
            first += len(lines)
    return 0


# stdin lines translated together at most while more keep arriving
STREAM_CHUNK_LINES = 512


def _streaming_stdin() -> int | None:
    """stdin's file descriptor when it is a terminal, pipe or socket (read as
    lines arrive); None for a regular file or a replaced stream (read whole)."""
    import stat

    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else fd


def _stdin_chunks(fd: int, limit: int = STREAM_CHUNK_LINES) -> Iterator[list[str]]:
    """Lists of stdin lines (strictly UTF-8): the complete lines that have
    arrived, at most ``limit``, as soon as reading more would wait."""
    import select

    pending, ready, number, done = b"", [], 0, False
    while not done or ready:
        if not done and len(ready) < limit:
            readable, _, _ = select.select([fd], [], [], 0 if ready else None)
            if readable:
                data = os.read(fd, 1 << 16)
                if data:
                    *complete, pending = (pending + data).split(b"\n")
                    ready += complete
                    continue
                done = True
                if pending:
                    ready.append(pending)
        if ready:
            batch, ready = ready[:limit], ready[limit:]
            lines = []
            for raw in batch:
                number += 1
                lines.append(_utf8_line(raw + b"\n", number, "stdin"))
            yield lines


@contextlib.contextmanager
def _output(path: str | None):
    """stdout, or a file written to a temporary sibling and renamed into place
    when complete (an interrupted run leaves no half-written file)."""
    if not path:
        yield sys.stdout
        return
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise OutputWriteError(path, e.strerror or str(e), e.errno) from None
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS and e.filename in (None, tmp, str(target)):
            raise OutputWriteError(path, f"{e.strerror or e} (nothing was written)", e.errno) from None
        raise


def cmd_validate(args: argparse.Namespace) -> int:
    from modelport.errors import ParityError
    from modelport.validators.run import validate

    lines = _read_lines(args.data)
    refs = _read_lines(args.references) if args.references else None
    report = validate(args.ported_dir, args.reference, lines, references=refs,
                      report_dir=args.report, only=args.only, **_decoding_options(args, search_only=True))
    if args.json:
        _print_json(report)
    else:
        for line in _report_summary(report):
            sys.stdout.write(line + "\n")
        where = args.report or args.ported_dir
        sys.stdout.write(f"report: {Path(where) / 'parity_report.md'}\n")
    if not report.get("passed", False):
        raise ParityError(f"parity failed: {report.get('failure', 'see the report')} "
                          f"({Path(args.report or args.ported_dir) / 'parity_report.md'})")
    return 0


def _report_summary(report: dict[str, Any]) -> list[str]:
    """One line per section of a parity report."""
    def verdict(section: dict[str, Any]) -> str:
        return "passed" if section.get("passed") else "FAILED"

    lines = []
    tok = report.get("tokenizer")
    if isinstance(tok, dict) and "references" in tok:
        parts = [f"{name} {r.get('ids_equal', 0)}/{tok.get('lines')} ids" + ("" if r.get("authoritative") else
                 " (second opinion)") for name, r in tok["references"].items() if "ids_equal" in r]
        lines.append(f"tokenizer: {verdict(tok)} ({'; '.join(parts)})")
    fwd = report.get("forward")
    if isinstance(fwd, dict) and "max_abs_logit_diff" in fwd:
        where = f", first divergent module: {fwd['first_divergent_module']}" if fwd.get("first_divergent_module") else ""
        lines.append(f"forward:   {verdict(fwd)} (max |logit diff| {fwd['max_abs_logit_diff']:.2e}{where})")
    beam = report.get("beam")
    if isinstance(beam, dict) and "hypotheses" in beam:
        lines.append(f"beam:      {verdict(beam)} ({beam['hypotheses']} hypotheses, {beam['real_divergences']} real "
                     f"divergences, {beam['near_ties']} near-ties, max score diff {beam['max_score_diff']:.2e})")
    bleu = report.get("bleu")
    if isinstance(bleu, dict) and "modelport" in bleu:
        m, r = bleu["modelport"], bleu["reference"]
        lines.append(f"bleu:      port {m['bleu']:.2f} / chrF {m['chrf']:.2f}; reference {r['bleu']:.2f} / "
                     f"chrF {r['chrf']:.2f}")
    lines.append(f"parity:    {verdict(report)}")
    return lines


def _card_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"license": args.license, "language": args.language, "base_model": args.base_model}


def cmd_card(args: argparse.Namespace) -> int:
    from modelport.modelcards import write_card

    path = write_card(args.ported_dir, **_card_options(args))
    sys.stdout.write(f"card: {path}\n")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from modelport.hub import publish

    result = publish(args.ported_dir, args.repo_id, private=args.private, revision=args.revision,
                     commit_message=args.commit_message, dry_run=args.dry_run, endpoint=args.endpoint,
                     timeout=args.timeout, **_card_options(args))
    if args.json:
        _print_json(result)
        return 0
    out = sys.stdout
    if args.dry_run:
        out.write(f"dry run: would upload {len(result['files'])} files to {args.repo_id}@{result['revision']}"
                  f"{' (private)' if args.private else ''}\n")
        for f in result["files"]:
            out.write(f"{f['size']:>12}  {f['sha256']}  {f['path']}\n")
    else:
        out.write(f"published {len(result['files'])} files to {args.repo_id}@{result['revision']}: "
                  f"{result['commit_url']}\n")
    return 0


def _pass_summary(report: dict[str, Any], output_dir: str) -> None:
    out = sys.stdout
    p, b = report["parameters"], report["bytes_on_disk"]
    out.write(f"written to:    {output_dir}\n")
    out.write(f"parameters:    {p['before']:,} -> {p['after']:,}\n")
    out.write(f"bytes on disk: {b['before']:,} -> {b['after']:,} ({100 * b['after'] / b['before']:.0f}%)\n")
    if "tokens_per_second" in report:
        t, a = report["tokens_per_second"], report["agreement"]
        out.write(f"tokens/s:      {t['before']} -> {t['after']} ({t['speedup']}x, same run)\n")
        out.write(f"agreement:     {a['identical_outputs']}/{a['lines']} identical beam outputs "
                  f"({a['identical_percent']}%)\n")
        if a.get("mean_abs_token_logprob_diff") is not None:
            out.write(f"log-prob diff: {a['mean_abs_token_logprob_diff']} mean |difference| per token "
                      "where identical\n")
    if "quality" in report:
        q = report["quality"]
        out.write(f"BLEU / chrF:   {q['before']['bleu']} / {q['before']['chrf']} -> "
                  f"{q['after']['bleu']} / {q['after']['chrf']}\n")
    out.write(f"report:        {Path(output_dir) / 'pass_report.md'}\n")


def cmd_quantize(args: argparse.Namespace) -> int:
    from modelport.passes import quantize

    report = quantize(args.ported_dir, args.output_dir, mode=args.mode,
                      data=_read_lines(args.data) if args.data else None,
                      references=_read_lines(args.references) if args.references else None, force=args.force)
    _print_json(report) if args.json else _pass_summary(report, args.output_dir)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from modelport.passes import prune

    report = prune(args.ported_dir, args.output_dir, encoder_layers=args.encoder_layers,
                   decoder_layers=args.decoder_layers, heads=args.heads, ffn=args.ffn, vocab_from=args.vocab_from,
                   data=_read_lines(args.data) if args.data else None,
                   references=_read_lines(args.references) if args.references else None, force=args.force)
    _print_json(report) if args.json else _pass_summary(report, args.output_dir)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from modelport.exporters.hf import export_hf

    wrong = [flag for flag, given, target in (("--opset", args.opset is not None, "onnx"),
                                              ("--allow-approximate", args.allow_approximate, "hf"))
             if given and args.target != target]
    if wrong:
        raise InvalidInputError(f"{', '.join(wrong)} does not apply to `export {args.target}`")
    if args.target == "onnx":
        return _export_onnx(args)
    report = export_hf(args.ported_dir, args.output_dir, force=args.force, verify=not args.no_verify,
                       allow_approximate=args.allow_approximate,
                       lines=_read_lines(args.data) if args.data else None)
    if args.json:
        _print_json({**report, "output_dir": args.output_dir})
        return 0
    out = sys.stdout
    out.write(f"written to:    {args.output_dir}\n")
    out.write(f"classes:       {report['model_class']} + {report['tokenizer_class']} "
              f"(transformers {report['transformers_version']})\n")
    out.write(f"exact:         {'yes' if report['exact'] else 'no: ' + '; '.join(report['approximations'])}\n")
    check = report.get("verification")
    if check is None:
        out.write("verification:  skipped (--no-verify)\n")
    else:
        n = check["lines"]
        out.write(f"tokenizer:     {check['tokenizer']['ids_equal']}/{n} lines with identical ids\n")
        out.write(f"forward:       max |logit diff| {check['forward']['max_abs_logit_diff']:.2e}\n")
        out.write(f"generate:      {check['generate']['identical']}/{n} identical beam outputs "
                  f"(modelport semantics hf)\n")
    for note in report.get("generation_notes") or []:
        out.write(f"note:          {note}\n")
    out.write(f"report:        {Path(args.output_dir) / 'export_report.json'}\n")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    """`export onnx`: encoder.onnx + decoder.onnx, checked with onnxruntime."""
    from modelport.exporters.onnx import OPSET, export_onnx

    report = export_onnx(args.ported_dir, args.output_dir, force=args.force, verify=not args.no_verify,
                         opset=args.opset or OPSET, lines=_read_lines(args.data) if args.data else None)
    if args.json:
        _print_json({**report, "output_dir": args.output_dir})
        return 0
    out = sys.stdout
    out.write(f"written to:    {args.output_dir}\n")
    out.write(f"graphs:        {report['encoder']['file']} + {report['decoder']['file']} (opset {report['opset']}, "
              f"fp32; decoder without KV cache: the prefix is recomputed each step)\n")
    check = report.get("verification")
    if check is None:
        out.write("verification:  skipped (--no-verify)\n")
    else:
        n = check["sentences"]
        out.write(f"forward:       max |logit diff| {check['forward']['max_abs_logit_diff']:.2e} "
                  f"(onnxruntime {report['onnxruntime_version']}, batch {check['shapes']['batch']})\n")
        out.write(f"greedy:        {check['greedy']['identical']}/{n} identical outputs "
                  f"(modelport greedy, semantics {check['greedy']['semantics']})\n")
    out.write(f"report:        {Path(args.output_dir) / 'export_report.json'}\n")
    return 0


def _add_pass_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("ported_dir", help=_PORTED_HELP)
    p.add_argument("output_dir", help="the new ported folder")
    p.add_argument("--data", help="source sentences: measure speed and agreement with the original on them")
    p.add_argument("--references", help="reference translations of --data: adds BLEU and chrF before/after")
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_decoding_options(p: argparse.ArgumentParser, search_only: bool = False) -> None:
    g = p.add_argument_group("decoding (defaults: the ported folder's generation_config.json)")
    g.add_argument("--beam", type=_positive_int, help="beam size")
    g.add_argument("--lenpen", type=_finite_float,
                   help="length penalty (fairseq: score / len**lenpen; marian: as --normalize)")
    g.add_argument("--nbest", type=_positive_int, help="hypotheses returned per input (at most the beam size)")
    g.add_argument("--max-len-a", type=float, help="max length = a * source length + b")
    g.add_argument("--max-len-b", type=int, help="max length = a * source length + b")
    g.add_argument("--min-len", type=_nonnegative_int, help="minimum output length (EOS blocked before)")
    g.add_argument("--unkpen", type=float, help="unknown-word penalty")
    g.add_argument("--no-repeat-ngram-size", type=_nonnegative_int,
                   help="block repeated n-grams of this size (fairseq semantics: as fairseq 0.12 on CPU, whose "
                        "blocker reads the pad-filled end of its buffer and so blocks nothing in practice)")
    g.add_argument("--semantics", choices=["fairseq", "hf"] if search_only else ["fairseq", "hf", "marian"],
                   help="whose beam search to reproduce")
    g.add_argument("--batch-size", type=_positive_int,
                   help=f"sentences per batch, batches sorted by length (default: "
                        f"{VALIDATE_BATCH_SIZE if search_only else TRANSLATE_BATCH_SIZE}"
                        f"{'' if search_only else '; marian semantics: as marian-decoder, see --mini-batch'})")
    g.add_argument("--max-tokens", type=_positive_int, help="source tokens per batch (instead of --batch-size)")
    if search_only:
        return
    g.add_argument("--early-stopping", choices=["true", "false", "never"], help="hf semantics: stopping rule")
    g.add_argument("--normalize", type=_nonnegative_float, nargs="?", const=1.0, metavar="ALPHA",
                   help="marian semantics: score / length**ALPHA (bare flag: 1.0)")
    g.add_argument("--word-penalty", type=float, metavar="WP",
                   help="marian semantics: subtract WP x length from the score")
    g.add_argument("--max-length", type=_positive_int, metavar="N",
                   help="marian semantics: longest source in tokens, </s> included (longer lines are an error "
                        "unless --max-length-crop); hf semantics: max_length")
    g.add_argument("--max-length-factor", type=_positive_float, metavar="F",
                   help="marian semantics: max output length = F x the batch's padded source length")
    g.add_argument("--max-length-crop", action="store_true", default=None,
                   help="marian semantics: crop sources longer than --max-length")
    g.add_argument("--mini-batch", type=_positive_int, metavar="N",
                   help="marian semantics, without --batch-size/--max-tokens: lines per batch as marian-decoder "
                        "forms them (default: decoder.yml's, else 1); the batch's padded width sets the length cap")
    g.add_argument("--maxi-batch", type=_positive_int, metavar="N",
                   help="marian semantics: mini-batches read and sorted together, as marian-decoder does")
    g.add_argument("--maxi-batch-sort", choices=["none", "src", "trg"],
                   help="marian semantics: order within a maxi-batch, as marian-decoder's")
    g.add_argument("--allow-unk", action="store_true", default=None,
                   help="marian semantics: allow <unk> in the output (suppressed by default)")
    g.add_argument("--sampling", action="store_true", default=None, help="sample instead of beam search")
    g.add_argument("--sampling-topk", type=_positive_int, help="sample from the k most likely tokens")
    g.add_argument("--sampling-topp", type=_probability, help="sample from the smallest set with this mass")
    g.add_argument("--temperature", type=_positive_float, help="sampling temperature (> 0)")
    g.add_argument("--seed", type=int, help="random seed for sampling")


# ---------------------------------------------------------------------------
# parser


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", metavar="FORMAT",
                   help="source format, one of: {formats} (default: detected from SOURCE)")
    p.add_argument("--checkpoint", metavar="A.pt[:B.pt]",
                   help="checkpoint file(s) inside SOURCE; several separated by ':' form an ensemble")
    p.add_argument("--source-lang", help="source language, when the checkpoint does not name it")
    p.add_argument("--target-lang", help="target language, when the checkpoint does not name it")


_PORTED_HELP = "a ported model folder (written by `modelport convert` or a pass)"
# the batch sizes modelport.generation.translate and modelport.validators.run use when none is given
# (tests/test_cli_help.py checks these against them; importing them here would import torch)
TRANSLATE_BATCH_SIZE = 32
VALIDATE_BATCH_SIZE = 16

_KEEP_SPECIAL_HELP = ("T5 ports: print sentinels (<extra_id_N>) and <unk> instead of skipping them as "
                      "transformers' decode(skip_special_tokens=True) does")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modelport",
        description="Port seq2seq checkpoints (fairseq, Marian/OPUS-MT, T5) into one PyTorch encoder-decoder, prove parity, "
                    "shrink and publish them.",
        epilog="exit codes: 0 ok, 1 internal error (a bug), 2 bad input or unsupported checkpoint, "
               "3 parity failed",
    )
    parser.add_argument("--version", action="version", version=f"modelport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("inspect", help="show what a checkpoint or ported folder contains",
                       description="Detect the format of SOURCE, check every option and weight against the "
                                   "unified model, and print the architecture, parameter count and what "
                                   "would be dropped. Writes nothing. Unsupported options exit 2, all listed.")
    p.add_argument("source", help="foreign checkpoint (file or directory) or ported folder")
    _add_source_options(p)
    p.add_argument("--options", action="store_true",
                   help="also list every option the checkpoint records, in the source framework's names")
    p.add_argument("--json", action="store_true", help="print JSON (includes the options)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("convert", help="convert a foreign checkpoint into a ported folder",
                       description="Convert SOURCE into OUTPUT_DIR (config.json, model.safetensors, tokenizer/, "
                                   "generation_config.json, conversion.json). The folder is written to a "
                                   "temporary sibling and renamed into place, so a failed run leaves nothing.")
    p.add_argument("source", help="foreign checkpoint: directory or file (fairseq: model.pt + dict.*.txt; "
                   "Marian: model .npz + vocabularies; T5: config.json + weights + spiece.model)")
    p.add_argument("output_dir", help="ported folder to write")
    _add_source_options(p)
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
    p.add_argument("--shard-size", type=_size, default=None, metavar="SIZE",
                   help="largest safetensors file before sharding, as huggingface_hub reads sizes: 2GB = "
                        "2*10**9 bytes, 2GiB = 2*2**30, or a number of bytes (default: 2GiB)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="convert even if weights hold NaN or infinity (refused by default; a warning names them)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.epilog = ("examples:\n"
                "  modelport convert assets/default-model ported/en-de\n"
                "  modelport convert fairseq-dir/ ported/ens --checkpoint a.pt:b.pt --force\n"
                "  modelport convert opus-mt-en-de/ ported/marian --format marian --shard-size 500MB")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("tokenize", help="text to ids (or pieces), or ids back to text",
                       description="Tokenize each input line with the ported folder's tokenizer: ids "
                                   "(</s> appended) by default, BPE pieces with --tokens, or decode lines of "
                                   "ids with --decode. One output line per input line.")
    p.add_argument("ported_dir", help=_PORTED_HELP)
    p.add_argument("-i", "--input", help="input file (default: stdin)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--decode", action="store_true", help="input lines are target ids; print text")
    mode.add_argument("--tokens", action="store_true", help="print subword pieces instead of ids")
    p.add_argument("--side", choices=["source", "target"], default="source",
                   help="which vocabulary encodes the text (default: source)")
    p.add_argument("--keep-special-tokens", action="store_true",
                   help=_KEEP_SPECIAL_HELP + " (with --decode)")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("translate", help="translate lines with a ported model",
                       description="Translate each input line (stdin or -i) and write one line per hypothesis "
                                   "(stdout or -o). Batches are sorted by length and restored to input order. "
                                   "From a terminal or a pipe, the lines that have arrived are translated and "
                                   "written at once (at most 512 together), so answers come before the input "
                                   "ends.")
    p.add_argument("ported_dir", help=_PORTED_HELP)
    p.add_argument("-i", "--input", help="input file (default: stdin)")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--scores", action="store_true", help="prefix each hypothesis with its score and a tab")
    p.add_argument("--json", action="store_true", help="one JSON object per input line (tokens, scores)")
    p.add_argument("--force", action="store_true", help="overwrite the -o file if it exists")
    p.add_argument("--keep-special-tokens", action="store_true", help=_KEEP_SPECIAL_HELP)
    _add_decoding_options(p)
    p.epilog = ("examples:\n"
                "  echo 'Hello world!' | modelport translate ported/en-de\n"
                "  modelport translate ported/en-de -i test.en -o test.out --beam 5 --lenpen 0.6\n"
                "  modelport translate ported/en-de -i test.en --nbest 3 --scores")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("quantize", help="write an 8-bit or half-precision copy of a ported folder",
                       description="int8: int8 weights with per-row scales and int8 matrix products on CPU; "
                                   "int8-weights: int8 storage, fp32 compute; fp16/bf16: half storage and "
                                   "compute. Reports size, tokens/s and agreement with the original (--data), "
                                   "and BLEU/chrF (--references).")
    _add_pass_options(p)
    p.add_argument("--mode", required=True, choices=["int8", "int8-weights", "fp16", "bf16"])
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("prune", help="write a copy with fewer layers, attention heads, FFN neurons or "
                                     "vocabulary entries",
                       description="Copy layers from the teacher with distilBART's table (12->6 keeps "
                                   "0,2,4,7,9,11; 6->3 keeps 0,2,5; evenly spaced otherwise), then remove "
                                   "the fraction --ffn of every layer's FFN neurons (smallest weight "
                                   "magnitude), the fraction --heads of the attention heads and the "
                                   "vocabulary entries --vocab-from does not use. With --data, heads are "
                                   "ranked by Michel et al. 2019 gradient importance on --data (targets: "
                                   "--references, else the model's own translations) and removed in 10% "
                                   "steps, so head counts differ per layer; without --data, by weight "
                                   "magnitude, equally in every attention. No fine-tuning: expect a quality "
                                   "drop (see the report).")
    _add_pass_options(p)
    p.add_argument("--encoder-layers", type=int, metavar="N", help="encoder layers to keep")
    p.add_argument("--decoder-layers", type=int, metavar="N", help="decoder layers to keep")
    p.add_argument("--heads", type=float, metavar="F",
                   help="fraction of attention heads to remove, in (0, 1): with --data, of all heads by "
                        "gradient importance (every attention keeps one); without, of every attention's "
                        "heads by ||W_v[h]||*||W_o[:,h]||")
    p.add_argument("--ffn", type=float, metavar="F",
                   help="fraction of FFN neurons to remove per layer, in (0, 1), by ||up[i,:]||*||down[:,i]||")
    p.add_argument("--vocab-from", metavar="FILE",
                   help="in-domain source text: keep only its source tokens, the target tokens of the "
                        "model's n-best translations of it and the special tokens (fairseq Moses+BPE ports "
                        "only); other pieces then read <unk>")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("export", help="write a ported folder in another library's format",
                       description="hf: write OUTPUT_DIR for transformers' AutoModelForSeq2SeqLM and "
                                   "AutoTokenizer (fairseq -> FSMT, Marian -> MarianMTModel, T5 -> "
                                   "T5ForConditionalGeneration). Only what the transformers class computes "
                                   "exactly is exported; anything else exits 2 naming the option. The folder "
                                   "is then loaded with transformers and compared with the port (tokenizer "
                                   "ids, logits within 1e-4, generate vs modelport's hf beam search); the "
                                   "result goes to export_report.json, and a mismatch exits 3 leaving "
                                   "nothing behind. onnx: write encoder.onnx and a full-prefix decoder.onnx "
                                   "(no KV cache) with dynamic batch and lengths, plus the tokenizer; both are "
                                   "run with onnxruntime and compared with the port (logits within 1e-4, "
                                   "greedy outputs identical); ensembles and quantized folders exit 2.")
    p.add_argument("target", choices=["hf", "onnx"], help="hf: Hugging Face transformers; onnx: onnxruntime")
    p.add_argument("ported_dir", help=_PORTED_HELP)
    p.add_argument("output_dir", help="folder to write")
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
    p.add_argument("--data", metavar="FILE", help="source lines to verify on (default: a few built-in sentences)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip comparing the result with the port (in transformers or onnxruntime)")
    p.add_argument("--opset", type=int, metavar="N", help="onnx only: the ONNX opset (default 17)")
    p.add_argument("--allow-approximate", action="store_true",
                   help="export even where transformers' numerics differ slightly (Marian's sinusoid "
                        "denominator and layer-norm eps); logit and output differences are measured and recorded, not "
                        "checked (tokenizer ids still are)")
    p.add_argument("--json", action="store_true", help="print the export report as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("validate", help="prove parity against the original framework",
                       description="Run the reference framework (fairseq for fairseq ports, transformers for "
                                   "T5 ports) and the port on the same lines and compare tokenizer ids, "
                                   "forward logits and beam-search outputs. Writes parity_report.json/.md; "
                                   "exit 3 when parity fails.")
    p.add_argument("ported_dir", help=_PORTED_HELP)
    p.add_argument("--reference", required=True,
                   help="the original checkpoint the folder was converted from (fairseq: its directory, file or "
                        "a.pt:b.pt ensemble; T5: the transformers folder)")
    p.add_argument("--data", required=True, help="source sentences, one per line")
    p.add_argument("--references", help="reference translations: adds BLEU and chrF for both systems")
    p.add_argument("--report", help="directory for the report (default: PORTED_DIR)")
    p.add_argument("--only", choices=["tokenizer", "forward", "beam"], help="run one check only")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    _add_decoding_options(p, search_only=True)
    p.epilog = ("examples:\n"
                "  modelport validate ported/en-de --reference assets/default-model --data test.en\n"
                "  modelport validate ported/en-de --reference assets/default-model --data test.en "
                "--references test.de --beam 5 --report reports/")
    p.set_defaults(func=cmd_validate)

    def card_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--license", help="license id for the card (default: the one recorded in conversion.json; "
                                         "omitted when unknown, never guessed)")
        p.add_argument("--language", nargs="+", metavar="LANG",
                       help="language codes (default: the tokenizer's source and target languages)")
        p.add_argument("--base-model", metavar="REPO_ID", help="Hub id of the model this port was made from")

    p = sub.add_parser("card", help="write the model card (README.md) of a ported folder",
                       description="Generate README.md in PORTED_DIR from its files: Hub metadata (languages, "
                                   "license, tags, eval results from parity_report.json), architecture, "
                                   "provenance with sha256, parity summary, passes, usage and generation "
                                   "defaults. Written to a temporary file and renamed into place.")
    p.add_argument("ported_dir", help=_PORTED_HELP)
    card_args(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("publish", help="upload a ported folder and its model card to the Hub",
                       description="Regenerate the model card (in memory; PORTED_DIR is not modified), create "
                                   "REPO_ID if needed and upload every file in one commit. PORTED_DIR may also "
                                   "be a `modelport export hf` folder: its card is regenerated from the port it "
                                   "came from, with transformers usage. The token comes from HF_TOKEN or `hf auth "
                                   "login` and is never printed. Hub failures exit 2.")
    p.add_argument("ported_dir", help="a ported folder, or a folder written by `modelport export hf`")
    p.add_argument("repo_id", help="NAMESPACE/NAME on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="existing branch to commit to (default: main)")
    p.add_argument("--commit-message", help="commit message (default: names the folder and modelport version)")
    p.add_argument("--dry-run", action="store_true",
                   help="contact nothing; list the files (size, sha256, path) that would be uploaded")
    p.add_argument("--endpoint", metavar="URL", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="give up when the endpoint leaves a request unanswered this long "
                        "(default: MODELPORT_HUB_TIMEOUT, else 30)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    card_args(p)
    p.set_defaults(func=cmd_publish)
    return parser


def _end_progress_bars() -> None:
    """Close the progress bars still drawn on stderr, so that a message
    starts on its own line instead of at the end of a bar."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        with contextlib.suppress(Exception):
            bar.close()


def _error(message: str, code: int) -> int:
    _end_progress_bars()
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    sys.stderr.write(f"modelport: error: {one_line}\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    # Everything, imports included, runs inside the try: a Ctrl-C at any point
    # is "interrupted" (exit 130), never a traceback. Heavy modules (torch) are
    # imported by the commands, not by `import modelport.cli`.
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except ModelportError as e:
        if isinstance(e, OutputExistsError):  # the API names its keyword (force=True); here it is a flag
            e.option = "--force"
        return _error(str(e), e.exit_code)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        _end_progress_bars()
        sys.stderr.write("modelport: interrupted\n")
        return 130
    except FileNotFoundError as e:  # raised before a typed check could run (e.g. -i FILE)
        return _error(str(InvalidInputError(f"`{e.filename}` does not exist")), 2)
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        where = f"`{e.filename}`: " if e.filename else ""
        return _error(f"{where}{e.strerror or e}", 2)


if __name__ == "__main__":
    sys.exit(main())
