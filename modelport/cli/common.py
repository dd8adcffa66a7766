"""What every command shares: the parser class and its help formatter, the
``--shard-size`` value parser (the numeric ones are
modelport.generation.options'), common argument groups (a ported folder or
Hub repo id, the runtime flags); what reaches the terminal is
:mod:`modelport.cli.console`'s. The converters'
names for ``{formats}`` are looked up only when help is printed (that
imports torch; ``import modelport.cli`` must not)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelport.cli.console import add_console_options, progress_shown
from modelport.generation.options import positive_int
from modelport.generation.placement import DTYPE_NAMES, device_name


class HelpFormatter(argparse.HelpFormatter):
    """Help that tells the truth: every option with a default shows it,
    ``{formats}`` lists the registered converters (looked up only when help is
    printed: it imports torch), and an ``examples:`` epilog keeps its lines."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "{formats}" in text:
            from modelport.converters.base import converters  # lazy: imports torch

            text = text.replace("{formats}", ", ".join(sorted(converters())))
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and text:
            text += " (default: %(default)s)"
        return text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:\n"):
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (``modelport: error: `--beam`
    must be a positive integer, but is 0``) and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        m = re.fullmatch(r"argument (\S+): (.*)", message, flags=re.S)
        if m:
            sep = " " if m.group(2).startswith("must ") else ": "
            message = f"`{m.group(1)}`{sep}{m.group(2)}"
        message = " ".join(message.split())
        self.exit(2, f"modelport: error: {message} (see `{self.prog} --help`)\n")


# ---------------------------------------------------------------------------
# a byte count (the numeric value parsers are modelport.generation.options')

_BINARY_UNITS = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def size(text: str) -> int:
    """A byte count as huggingface_hub and transformers read it: ``2GB`` is
    2*10**9 bytes (huggingface_hub's ``parse_size_to_int``: KB, MB, GB, TB),
    ``2GiB`` is 2*2**30 (KiB, MiB, GiB, TiB), a bare integer is bytes."""
    from huggingface_hub.serialization._base import parse_size_to_int  # lazy; not re-exported by huggingface_hub

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


# ---------------------------------------------------------------------------
# arguments shared by several commands

PORTED_HELP = "a ported model folder (written by `modelport convert` or a pass)"
HUB_HELP = ", or a Hugging Face Hub repo id NAMESPACE/NAME (downloaded into huggingface_hub's cache)"
REVISION_HELP = "with a Hub repo id: the branch, tag or commit to load (default: main)"
KEEP_SPECIAL_HELP = ("T5 ports: print sentinels (<extra_id_N>) and <unk> instead of skipping them as "
                     "transformers' decode(skip_special_tokens=True) does")


def add_source_options(p: argparse.ArgumentParser) -> None:
    """How to read a foreign checkpoint (inspect, convert)."""
    p.add_argument("--format", metavar="FORMAT",
                   help="source format, one of: {formats} (default: detected from SOURCE)")
    p.add_argument("--checkpoint", metavar="A.pt[:B.pt]",
                   help="checkpoint file(s) inside SOURCE; several separated by ':' form an ensemble")
    p.add_argument("--source-lang", help="source language, when the checkpoint does not name it")
    p.add_argument("--target-lang", help="target language, when the checkpoint does not name it")


def add_language_options(p: argparse.ArgumentParser, what: str = "the input") -> None:
    """``--source-lang``/``--target-lang``: the direction of a multilingual port
    (translate, validate; the passes and exports, for ``what`` they translate)."""
    p.add_argument("--source-lang", help=f"multilingual ports (M2M100, NLLB-200, mBART-50): the language of {what} "
                                         "(`modelport inspect` lists them)")
    p.add_argument("--target-lang", help=f"multilingual ports: the language to translate {what} into")


def converter_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``modelport.api.inspect``/``plan_and_write`` that
    :func:`add_source_options` collects."""
    return {"checkpoint": args.checkpoint, "source_lang": args.source_lang, "target_lang": args.target_lang}


def add_command(sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int], *,
                ported_dir: str | None = None, hub: bool = False, examples: Sequence[str] = (),
                **parser_options: Any) -> argparse.ArgumentParser:
    """Register command ``name`` (``help``/``description`` in ``parser_options``) to
    call ``run``: with a first positional ``ported_dir`` (its help text) when
    given, which with ``hub`` also takes a Hub repo id (:func:`add_ported_argument`),
    and ``examples`` (command lines) as an ``examples:`` epilog."""
    p = sub.add_parser(name, **parser_options)
    p.set_defaults(command_parser=p)  # main() reports an unknown argument with this parser's name
    add_console_options(p, command=True)
    if ported_dir is not None:
        if hub:
            add_ported_argument(p, ported_dir)
        else:
            p.add_argument("ported_dir", help=ported_dir)
    if examples:
        p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    p.set_defaults(func=run)
    return p


def add_ported_argument(p: argparse.ArgumentParser, help: str = PORTED_HELP, dest: str = "ported_dir",
                        checkpoints: bool = False) -> None:
    """The positional ``dest``: a local folder, or a Hub repo id with
    ``--revision``. :func:`modelport.cli.main` replaces a repo id by the path of
    its downloaded snapshot (:func:`resolve_hub_argument`) before the command
    runs, so every command reads a local folder. ``checkpoints``: the argument
    may also name a foreign checkpoint (``inspect``), left as it is when it is
    no repo id."""
    p.add_argument(dest, help=help + HUB_HELP)
    p.add_argument("--revision", metavar="REV", help=REVISION_HELP)
    p.set_defaults(hub_argument=dest, hub_checkpoints=checkpoints, hub_repo=None)


def resolve_hub_argument(args: argparse.Namespace) -> None:
    """Replace the command's Hub repo id argument (see :func:`add_ported_argument`)
    by the local snapshot folder (``args.hub_repo``: the repo id, None for a
    local path, which stays as it is)."""
    dest = getattr(args, "hub_argument", None)
    if dest is None:
        return
    from modelport.model.remote import resolve_ported  # lazy: imports torch

    given = getattr(args, dest)
    folder = resolve_ported(given, args.revision, progress=progress_shown(args), other_sources=args.hub_checkpoints)
    args.hub_repo = None if folder == Path(given) else given
    setattr(args, dest, str(folder))


def add_runtime_options(p: argparse.ArgumentParser, side: str = "") -> None:
    """``--device``, ``--dtype``, ``--threads``: where and in which precision
    the model computes (``side``: whose model, in the group's title)."""
    g = p.add_argument_group(f"runtime{side}")
    g.add_argument("--device", type=device_name, metavar="DEVICE", default="cpu",
                   help="where the model computes: cpu, cuda or cuda:N (default: cpu)")
    g.add_argument("--dtype", choices=DTYPE_NAMES,
                   help="compute in this precision (default: the folder's, float32 unless quantized)")
    g.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads torch uses (default: torch's, one per core)")


def runtime_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``device``/``dtype`` keyword arguments of ``modelport.load`` from
    :func:`add_runtime_options`' flags; sets ``--threads`` (torch's thread count
    is process-wide)."""
    from modelport.generation.placement import set_threads  # lazy: set_threads imports torch

    set_threads(args.threads)
    return {"device": args.device, "dtype": args.dtype}


def add_pass_options(p: argparse.ArgumentParser) -> None:
    """The arguments every pass (quantize, prune) takes."""
    add_ported_argument(p)
    p.add_argument("output_dir", help="the new ported folder")
    p.add_argument("--data", help="source sentences: measure speed and agreement with the original on them")
    p.add_argument("--references", help="reference translations of --data: adds BLEU and chrF before/after")
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_language_options(p, "--data")
