"""``modelport translate``: lines in, hypotheses out."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from modelport.cli.common import (KEEP_SPECIAL_HELP, PORTED_HELP, add_command, add_language_options,
                                  add_runtime_options, runtime_kwargs)
from modelport.cli.console import progress_shown
from modelport.cli.streams import one_output_line, output, read_lines, stdin_chunks, streaming_stdin
from modelport.errors import InvalidInputError, NonFiniteOutputError
from modelport.generation.alignment import MODES_HELP, OFF, alignment_flag, alignment_json, format_alignment
from modelport.generation.semantics import DECODING_GROUP_TITLE, add_decoding_arguments, decoding_kwargs


DESCRIPTION = """\
Translate each input line (stdin or -i) and write one line per hypothesis (stdout or -o). Batches
are sorted by length and restored to input order. From a terminal or a pipe, the lines that have
arrived are translated and written at once (at most 512 together), so answers come before the input
ends. Under torchrun (`torchrun --standalone --nproc_per_node N -m modelport.cli translate ... -i FILE -o OUT`,
also across nodes) each process translates its share of -i, 256-line chunks at a time, and rank 0
writes the output in input order: the hypotheses of one process (batches are formed within a chunk,
so a score can differ in its last digits). Under marian semantics with Marian's batching (no
--batch-size/--max-tokens) a chunk is whole pools of mini-batch x maxi-batch lines (the fewest holding
256 lines), so every batch, hence every length cap and output, is the one process's, which is
marian-decoder's on the whole corpus."""  # argparse re-flows it


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``translate``."""
    p = add_command(sub, "translate", run, help="translate lines with a ported model",
                    description=DESCRIPTION,
                    ported_dir=PORTED_HELP, hub=True,
                    examples=["echo 'Hello world!' | modelport translate ported/en-de",
                              "modelport translate ported/en-de -i test.en --device cuda --dtype bfloat16",
                              "modelport translate my-org/en-de-port --revision v1.0 -i test.en  # from the Hub",
                              "modelport translate ported/en-de -i test.en -o test.out --beam 5 --lenpen 0.6",
                              "modelport translate ported/en-de -i test.en --nbest 3 --scores",
                              "modelport translate ported/opus-mt-en-de -i test.en --alignment hard  # Marian ports",
                              "modelport translate exported/en-de-onnx --backend onnx -i test.en --beam 5"])
    p.add_argument("-i", "--input", help="input file (default: stdin)")
    p.add_argument("-o", "--output", help="output file, written whole when the translation ends (its missing "
                                          "folders are made; default: stdout)")
    p.add_argument("--scores", action="store_true", help="prefix each hypothesis with its score and a tab")
    p.add_argument("--json", action="store_true", help="one JSON object per input line (tokens, scores)")
    p.add_argument("--force", action="store_true", help="overwrite the -o file if it exists")
    p.add_argument("--keep-special-tokens", action="store_true", help=KEEP_SPECIAL_HELP)
    p.add_argument("--alignment", type=alignment_flag, metavar="MODE",
                   help=f"marian semantics: word alignments as marian-decoder --alignment prints them after the "
                        f"text (` ||| 0-0 1-1 ...`; --json: pairs or soft rows), MODE one of {MODES_HELP}, or "
                        "none to turn the folder's off (default: the folder's decoder.yml alignment, else none)")
    p.add_argument("--backend", choices=("torch", "onnx"), default=None,
                   help="what computes the logits: torch (PORTED_DIR is a ported folder) or onnx (PORTED_DIR is an "
                        "`export onnx` folder, run by onnxruntime on the CPU with modelport's own search: the same "
                        "decoding options and semantics); default: whichever PORTED_DIR is")
    add_language_options(p)
    add_decoding_arguments(p.add_argument_group(DECODING_GROUP_TITLE))
    add_runtime_options(p)


def _check_decoding(args: argparse.Namespace, generation_config: dict[str, Any] | None = None) -> None:
    """Decoding options that only mean something together (argparse checks each alone)."""
    gen = generation_config or {}
    beam = args.beam if args.beam is not None else next(
        (gen[k] for k in ("beam", "beam_size", "num_beams") if isinstance(gen.get(k), int)), None)
    if args.nbest is not None and beam is not None and not args.sampling and args.nbest > beam:
        raise InvalidInputError(f"`--nbest` must be at most the beam size ({beam}), but is {args.nbest}")
    semantics = args.semantics or gen.get("semantics")
    if args.alignment is not None and (semantics or generation_config is not None) and semantics != "marian":
        raise InvalidInputError(f"`--alignment` needs marian semantics (Marian ports), but the semantics is "
                                f"{semantics or 'fairseq'}")
    if semantics == "marian" and args.lenpen is not None and args.lenpen < 0:
        raise InvalidInputError(f"`--lenpen` must be >= 0 under marian semantics (the exponent of Marian's "
                                f"--normalize), but is {args.lenpen}")


def run(args: argparse.Namespace) -> int:
    """Translate the input, a chunk of lines at a time, into the output."""
    from modelport.api import load  # lazy: imports torch

    from modelport.model.folder import check_writable  # lazy: imports torch

    if args.output:  # before the work; the input file and the model are never overwritten, --force or not
        read = [p for p in (args.input, args.ported_dir) if p not in (None, "-")]
        check_writable(args.output, args.force, reads=read)
    _check_decoding(args)
    ported = load(args.ported_dir, backend=args.backend, **runtime_kwargs(args))
    _check_decoding(args, ported.generation_config)
    if args.alignment is None and (args.semantics or ported.generation_config.get("semantics")) == "marian":
        args.alignment = ported.generation_config.get("alignment")  # decoder.yml's, printed as marian-decoder does
    options = decoding_kwargs(vars(args))
    if args.alignment is not None:
        options["alignment"] = args.alignment  # OFF too: it overrides the folder's in translate()
        if args.alignment == OFF:
            args.alignment = None  # nothing printed after the text
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun: a sharded corpus
        return _run_sharded(args, ported, options)
    fd = streaming_stdin() if args.input in (None, "-") else None
    # a file is read whole; a terminal or pipe in chunks of the lines that have arrived, each translated and
    # written before waiting for more (as fairseq-interactive flushes), so the first answer does not wait for EOF
    chunks = stdin_chunks(fd) if fd is not None else iter([read_lines(args.input)])
    first = 0
    with output(args.output) as out:  # opened first: an output that cannot be written fails before the work
        for lines in chunks:
            try:
                results = ported.translate(lines, progress=(fd is None or len(lines) > 1) and progress_shown(args),
                                           keep_special_tokens=args.keep_special_tokens,
                                           source_lang=args.source_lang, target_lang=args.target_lang,
                                           first_line=first, **options)
            except NonFiniteOutputError as e:  # numbered within the chunk
                raise NonFiniteOutputError(first + e.line) from None
            for i, hyps in enumerate(results):
                out.writelines(line + "\n" for line in _hypothesis_lines(args, first + i, lines[i], hyps))
            out.flush()
            first += len(lines)
    return 0


def _hypothesis_lines(args: argparse.Namespace, index: int, source: str, hyps: list[Any]) -> list[str]:
    """What the output holds for input line ``index`` (0-based): one JSON object, or a line per hypothesis."""
    mode = args.alignment
    if args.json:
        objects = [hyp.to_json() for hyp in hyps]
        if mode is not None:
            for obj, hyp in zip(objects, hyps):
                obj["alignment"] = alignment_json(hyp.alignment or [], mode)
        return [json.dumps({"id": index, "source": source, "hypotheses": objects}, ensure_ascii=False)]
    texts = [_one_line(hyp.text) if mode is None else f"{_one_line(hyp.text)} ||| "
             f"{format_alignment(hyp.alignment or [], mode)}" for hyp in hyps]
    return [f"{hyp.score:.6f}\t{text}" if args.scores else text for hyp, text in zip(hyps, texts)]


def _one_line(text: str) -> str:
    """A hypothesis as one output line: its line breaks (a byte-level BPE model's ``\\n`` pieces) as spaces."""
    return one_output_line(text, "a translation held a line break, written as a space so that the output keeps "
                                 "one line per hypothesis (--json keeps the text as it is)")


def _run_sharded(args: argparse.Namespace, ported: Any, options: dict[str, Any]) -> int:
    """Under torchrun: every process translates its share of -i's chunks;
    rank 0 writes the output in input order (see modelport.generation.shards)."""
    from modelport.generation.shards import leave, sharded_map, translate_chunk_lines, world  # lazy: imports torch

    if args.input in (None, "-"):
        raise InvalidInputError("under torchrun, give the corpus with -i FILE (stdin is read by one process only)")
    lines = read_lines(args.input)  # before the process group starts: a bad input is said once (by rank 0)
    where = world()

    def work(chunk: list[str], first: int, part: tuple[int, int]) -> list[str | None]:
        try:
            results = ported.translate(chunk, keep_special_tokens=args.keep_special_tokens,
                                       source_lang=args.source_lang, target_lang=args.target_lang,
                                       first_line=first, part=part, **options)
        except NonFiniteOutputError as e:
            raise NonFiniteOutputError(first + e.line) from None
        # one entry per input line (n-best lists hold several output lines): the order is rank 0's to keep;
        # None for a line of another process's part (a translated line has at least one hypothesis)
        return ["\n".join(_hypothesis_lines(args, first + i, line, hyps)) if hyps else None
                for i, (line, hyps) in enumerate(zip(chunk, results))]

    # marian semantics: chunks of whole Marian pools, so that the batches are marian-decoder's on the whole corpus;
    # a round of fewer chunks than processes shares them (each process a part of a chunk's batches)
    outputs = sharded_map(lines, work, chunk_lines=translate_chunk_lines(ported, options), where=where, share=True)
    if where.is_main:
        with output(args.output) as out:
            for chunk in outputs:
                out.writelines(entry + "\n" for entry in chunk)
                out.flush()
    else:
        for _ in outputs:  # rank 0 yields; the others only take part in the rounds
            pass
    leave(where)
    return 0
