#!/usr/bin/env python
"""Conversion time and peak RSS: modelport vs CTranslate2's fairseq converter.

Each converter runs in its own fresh process; peak RSS comes from that
process's rusage (os.wait4) and is reported raw and as a ratio of the
checkpoint's tensor bytes (each storage once). A process that only imports
torch and modelport gives the interpreter baseline. The cases (``--cases``):

- ``embedded``: the repo's default model;
- ``transformer-big``: a random transformer-big sized fairseq checkpoint (~200M parameters, 32k vocabulary);
- ``nllb-600m``: a random checkpoint shaped like NLLB-200-distilled-600M (12+12 layers, d_model 1024, FFN 4096,
  16 heads, 256,206 embedding rows), built by fairseq's own parser, task and builders for
  ``translation_multi_simple_epoch`` (arch ``transformer``, pre-norm, ``--share-all-embeddings``, sinusoidal
  positions, ``--encoder-langtok src --decoder-langtok``) and saved as fairseq-train 0.12 saves it. NLLB's
  SentencePiece model cannot be downloaded here, so a small one is trained on the repo's corpus; its pieces
  start ``dictionary.txt``, synthetic ``synNNNNNN`` symbols (which no text encodes to) fill it to 255,996
  entries and four ``madeupword`` lines end it: 4 specials + 256,000 + NLLB's 202 language tokens
  (``__eng_Latn__`` ...) = 256,206 rows, as in NLLB. Besides the random weights, only the pieces differ from
  a release.

    .venv/bin/python scripts/bench_convert.py [--cases embedded,transformer-big,nllb-600m] [--work DIR]

Measured 2026-11-30 (2 cores, one busy; OMP_NUM_THREADS=1; torch 2.13 CPU, ctranslate2 4.8.5):

    model              tensors tool          time s  peak RSS RSS/tensors
    embedded             6.2Mi modelport       8.10     318Mi       51.24
    embedded             6.2Mi ctranslate2     9.05     377Mi       60.76
    transformer-big    797.8Mi modelport      13.95    1150Mi        1.44
    transformer-big    797.8Mi ctranslate2    29.34    2173Mi        2.72
    nllb-600m         2346.3Mi modelport      39.33    2690Mi        1.15
    nllb-600m         2346.3Mi ctranslate2    85.86    6119Mi        2.61

The interpreter with torch and modelport imported is 219Mi. Wall times move
with the load of the shared machine (nllb-600m alone, minutes earlier:
modelport 23.55 s, ct2 64.22 s, the same peaks). modelport's RSS is the
memory-mapped checkpoint's pages it read plus the interpreter: nothing is
copied. Its nllb-600m peak was 1.57x (3,678Mi) before ``all_finite`` checked
tensors in blocks: ``torch.isfinite`` builds ``abs(t)`` and a bool mask as
large as the 1 GB embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _bench_utils import scratch_dir  # scripts/: the script's own directory is on sys.path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CASES = ("embedded", "transformer-big", "nllb-600m")
NLLB_ROWS = 256_206  # NLLB-200's embedding: 4 specials + 256,000 dictionary lines + 202 language tokens
NLLB_LANG_COUNT = 202


class ChildFailed(Exception):
    """A measured child process exited with an error."""


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""  # before waiting: a full pipe blocks
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise ChildFailed(f"exit {os.waitstatus_to_exitcode(status)}: {' '.join(cmd)}\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def tensor_bytes(checkpoint: Path) -> int:
    code = ("import sys, torch; from modelport.converters.safe_pickle import safe_torch_load;"
            "m = safe_torch_load(sys.argv[1])['model'];"
            "seen = {}; [seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())"
            " for t in m.values() if torch.is_tensor(t)]; print(sum(seen.values()))")
    return int(subprocess.check_output([sys.executable, "-c", code, str(checkpoint)]).decode().strip())


def make_big(directory: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.helpers.fairseq_ref import build_big_model  # reference-side builder, fairseq's own code

    return build_big_model(directory)


def nllb_languages() -> list[str]:
    """NLLB-200's language codes (transformers' copy of fairseq's list), else 202 made-up ones."""
    try:
        from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES
        return list(FAIRSEQ_LANGUAGE_CODES)
    except ImportError:
        return ["eng_Latn", "fra_Latn"] + [f"l{i:03d}_Latn" for i in range(NLLB_LANG_COUNT - 2)]


def make_nllb(directory: Path) -> Path:
    """An NLLB-200-distilled-600M shaped random checkpoint (see the module docstring)."""
    import sentencepiece as spm

    sys.path.insert(0, str(ROOT))
    from tests.helpers.fairseq_ref import _fairseq_build, _save_cfg_checkpoint, train_spm

    directory.mkdir(parents=True, exist_ok=True)
    model = train_spm(directory / "spm", vocab_size=1000)
    model.rename(directory / "sentencepiece.bpe.model")
    (directory / "spm.vocab").unlink(missing_ok=True)
    sp = spm.SentencePieceProcessor(model_file=str(directory / "sentencepiece.bpe.model"))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    langs = nllb_languages()
    assert len(langs) == NLLB_LANG_COUNT
    file_lines = NLLB_ROWS - 4 - len(langs)
    pieces += [f"syn{i:06d}" for i in range(file_lines - 4 - len(pieces))]
    assert len(set(pieces)) == len(pieces)
    lines = [f"{p} {len(pieces) - i}" for i, p in enumerate(pieces)] + [f"madeupword{i:04d} 0" for i in range(4)]
    (directory / "dictionary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "lang_dict.txt").write_text("\n".join(langs) + "\n", encoding="utf-8")
    dims = {"layers": "12", "embed-dim": "1024", "ffn-embed-dim": "4096", "attention-heads": "16"}
    argv = [".", "--task", "translation_multi_simple_epoch", "--arch", "transformer", "--lang-dict", "lang_dict.txt",
            "--lang-pairs", "eng_Latn-fra_Latn,fra_Latn-eng_Latn", "--fixed-dictionary", "dictionary.txt",
            "--encoder-langtok", "src", "--decoder-langtok", "--share-all-embeddings",
            "--encoder-normalize-before", "--decoder-normalize-before",
            *[a for side in ("encoder", "decoder") for k, v in dims.items() for a in (f"--{side}-{k}", v)],
            "--max-source-positions", "1024", "--max-target-positions", "1024", "--dropout", "0.1",
            "--bpe", "sentencepiece", "--sentencepiece-model", "sentencepiece.bpe.model"]
    args, _task, net = _fairseq_build(directory, argv, seed=0)
    rows = net.encoder.embed_tokens.weight.shape[0]
    assert rows == NLLB_ROWS, rows
    return _save_cfg_checkpoint(args, net, directory / "checkpoint.pt")


# per built case: (checkpoint builder, checkpoint file name)
BUILDERS = {"transformer-big": (make_big, "model.pt"), "nllb-600m": (make_nllb, "checkpoint.pt")}


def ct2_arguments(name: str, checkpoint: Path) -> list[str]:
    if name == "nllb-600m":
        return ["--source_lang", "eng_Latn", "--target_lang", "fra_Latn",
                "--fixed_dictionary", str(checkpoint.parent / "dictionary.txt")]
    return ["--source_lang", "en", "--target_lang", "de"]


def measured(tool: str, cmd: list[str], nbytes: int, env: dict[str, str] | None = None) -> dict:
    """One converter's row: seconds, peak RSS and its ratio, or the error it stopped with."""
    try:
        seconds, rss = run_measured(cmd, env)
    except ChildFailed as e:
        lines = [line for line in str(e).splitlines() if line.strip()]
        print(f"{tool} failed: {e}", file=sys.stderr)
        return {"error": lines[-1][:300] if lines else "failed"}
    return {"seconds": round(seconds, 2), "peak_rss": rss, "rss_ratio": round(rss / nbytes, 2)}


def bench(name: str, checkpoint: Path, work: Path) -> dict:
    nbytes = tensor_bytes(checkpoint)
    out_mp = work / f"{name}-modelport"
    out_ct2 = work / f"{name}-ct2"
    shutil.rmtree(out_mp, ignore_errors=True)
    shutil.rmtree(out_ct2, ignore_errors=True)
    _, rss_base = run_measured([sys.executable, "-c", "import torch, modelport"])
    row = {"model": name, "tensor_bytes": nbytes, "baseline_rss": rss_base}
    row["modelport"] = measured("modelport", [str(BIN / "modelport"), "convert", str(checkpoint.parent),
                                              str(out_mp), "--checkpoint", checkpoint.name], nbytes)
    shutil.rmtree(out_mp, ignore_errors=True)
    ct2 = shutil.which("ct2-fairseq-converter", path=str(BIN)) or shutil.which("ct2-fairseq-converter")
    if ct2:
        row["ctranslate2"] = measured(
            "ctranslate2", [ct2, "--model_path", str(checkpoint), "--data_dir", str(checkpoint.parent),
                            "--output_dir", str(out_ct2), *ct2_arguments(name, checkpoint),
                            # CTranslate2 (and fairseq underneath it) can only read fairseq checkpoints with full,
                            # unrestricted unpickling; modelport reads the same file with its restricted unpickler.
                            "--unsafe_deserialization"], nbytes, env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
        shutil.rmtree(out_ct2, ignore_errors=True)
        if "seconds" in row["modelport"] and "seconds" in row["ctranslate2"]:
            row["time_ratio_modelport_over_ct2"] = round(row["modelport"]["seconds"] / row["ctranslate2"]["seconds"],
                                                         2)
    return row


def checkpoint_for(name: str, work: Path) -> Path:
    """The case's checkpoint, built on first use in a child process: Linux children inherit the
    parent's RSS high-water mark across fork+exec, so this process must stay small."""
    if name == "embedded":
        return ROOT / "assets" / "default-model" / "model.pt"
    path = work / f"{name}-src" / BUILDERS[name][1]
    if not path.exists():
        print(f"building the random {name} fairseq checkpoint ...", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--make", name, str(path.parent)], check=True)
    return path


def print_table(rows: list[dict]) -> None:
    mib = 1024 ** 2
    print(f"{'model':<16} {'tensors':>9} {'tool':<12} {'time s':>7} {'peak RSS':>9} {'RSS/tensors':>11}")
    for r in rows:
        for tool in ("modelport", "ctranslate2"):
            m = r.get(tool)
            if m is None:
                continue
            if "error" in m:
                print(f"{r['model']:<16} {r['tensor_bytes'] / mib:>7.1f}Mi {tool:<12} failed: {m['error']}")
                continue
            print(f"{r['model']:<16} {r['tensor_bytes'] / mib:>7.1f}Mi {tool:<12} {m['seconds']:>7.2f} "
                  f"{m['peak_rss'] / mib:>7.0f}Mi {m['rss_ratio']:>11.2f}")
        ratio = r.get("time_ratio_modelport_over_ct2")
        print(f"{'':<16} {'time modelport/ct2 = ' + format(ratio, '.2f') + '; ' if ratio else ''}"
              f"interpreter+torch baseline RSS {r['baseline_rss'] / mib:.0f}Mi")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated cases to run (default: all of {', '.join(CASES)})")
    parser.add_argument("--skip-big", action="store_true", help="only the embedded model (same as --cases embedded)")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, kept (default: a temporary one, removed at exit)")
    parser.add_argument("--make", nargs=2, metavar=("CASE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        BUILDERS[args.make[0]][0](Path(args.make[1]))
        return
    cases = ["embedded"] if args.skip_big else [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"{', '.join(unknown)} is not a known case (known: {', '.join(CASES)})")
    work = scratch_dir(args.work, "bench-convert-")
    rows = [bench(name, checkpoint_for(name, work), work) for name in cases]
    print_table(rows)
    print(json.dumps(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
