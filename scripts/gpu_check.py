"""Translate the embedded model on CUDA in float32, float16 and bfloat16 and
print how many output lines agree with float32 on the CPU (the reference),
with each run's tokens/s; then CTranslate2 float16 on the same GPU (the
port's ``export ct2 --quantization float16``, beam 5 as the port's default
search) beside the port's float16: tokens/s and the ratio, and how many lines
agree (CTranslate2's stopping rule is not fairseq's: reported, not required).

    .venv/bin/python scripts/gpu_check.py [PORTED_DIR] [--lines N] [--cpu-dry-run]

Without PORTED_DIR the embedded model (assets/default-model) is converted
into a temporary folder first. Without CUDA it prints why and exits 0, so it
can run anywhere (``--cpu-dry-run`` runs every step on the CPU instead, to
check the script itself); on a GPU machine it exits 1 when a run fails or
float32 on CUDA does not reproduce the CPU's lines exactly (half precision may
differ on a few near-ties: its agreement is reported, not required). Each
timed run follows an untimed one on 8 lines (CUDA's and the kernels' first-call
costs are not the search's).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import modelport
from modelport.generation.options import positive_int

ROOT = Path(__file__).resolve().parents[1]


def _translate(port: Path, lines: list[str], device: str, dtype: str) -> tuple[list[str], int, float]:
    """The port's first-best texts, their tokens (</s> included) and the seconds of the timed run."""
    ported = modelport.load(port, device=device, dtype=dtype)
    ported.translate(lines[:8])
    _sync(device)
    start = time.perf_counter()
    hyps = [h[0] for h in ported.translate(lines)]
    _sync(device)
    return [h.text for h in hyps], sum(len(h.tokens) for h in hyps), time.perf_counter() - start


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _ctranslate2(port: Path, lines: list[str], device: str, compute_type: str,
                 tmp: Path) -> tuple[list[str], int, float] | str:
    """CTranslate2 on the port's ``export ct2`` (beam 5): texts, tokens, seconds; or why it did not run."""
    try:
        import ctranslate2
    except ImportError:
        return "ctranslate2 is not installed"
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        return "this ctranslate2 build sees no CUDA device"
    from modelport.exporters.ct2 import Vocabularies, export_ct2

    out = tmp / f"ct2-{compute_type}"
    export_ct2(port, out, quantization=compute_type, verify=False)
    ported = modelport.load(port)
    vocab = Vocabularies.of(ported.tokenizer, ported.config)
    index = {token: i for i, token in enumerate(vocab.target)}
    ids = [ported.tokenizer.encode(line) for line in lines]
    sources = [[vocab.source[i] for i in s[:-1]] for s in ids]  # CTranslate2 appends </s> itself
    translator = ctranslate2.Translator(str(out), device=device, compute_type=compute_type)
    translator.translate_batch(sources[:8], beam_size=5)
    start = time.perf_counter()
    results = translator.translate_batch(sources, beam_size=5, max_batch_size=64)
    seconds = time.perf_counter() - start
    outputs = [[index[t] for t in r.hypotheses[0]] + [ported.config.eos_token_id] for r in results]
    texts = [ported.tokenizer.decode(o) for o in outputs]
    return texts, sum(map(len, outputs)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ported_dir", nargs="?", help="a ported folder (default: the embedded model, converted)")
    parser.add_argument("--lines", type=positive_int, default=200, help="lines of assets/corpus/test.en (default: 200)")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run every step on the CPU (float32 for CTranslate2): checks the script without a GPU")
    args = parser.parse_args()
    device = "cpu" if args.cpu_dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: skipped, CUDA is not available (torch {torch.__version__})")
        return 0
    lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[: args.lines]
    with tempfile.TemporaryDirectory() as tmp:
        port = Path(args.ported_dir) if args.ported_dir else Path(tmp) / "port"
        if not args.ported_dir:
            modelport.convert(str(ROOT / "assets" / "default-model"), port)
        name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU dry run"
        print(f"gpu_check: {name}, torch {torch.__version__}, {len(lines)} lines of {port}")
        reference, tokens, seconds = _translate(port, lines, "cpu", "float32")
        print(f"  cpu  float32   reference      {seconds:6.2f} s {tokens / seconds:9.0f} tok/s")
        failed = False
        rates: dict[str, tuple[list[str], float]] = {}
        for dtype in ("float32", "float16", "bfloat16"):
            try:
                texts, tokens, seconds = _translate(port, lines, device, dtype)
            except Exception as e:  # noqa: BLE001 -- reported per precision; the others still run
                print(f"  {device} {dtype:9s} FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                failed = True
                continue
            rates[dtype] = texts, tokens / seconds
            same = sum(a == b for a, b in zip(texts, reference))
            print(f"  {device} {dtype:9s} {same:4d}/{len(lines)} lines identical to cpu float32  {seconds:6.2f} s "
                  f"{tokens / seconds:9.0f} tok/s")
            failed |= dtype == "float32" and same != len(lines)
        compute = "float32" if device == "cpu" else "float16"
        try:
            ct2 = _ctranslate2(port, lines, device, compute, Path(tmp))
        except Exception as e:  # noqa: BLE001 -- the port's figures above stand without it
            ct2 = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        if isinstance(ct2, str):
            print(f"  ctranslate2 {compute}: not run ({ct2})")
        elif compute in rates:
            texts, tokens, seconds = ct2
            ours_texts, ours_rate = rates[compute]
            same = sum(a == b for a, b in zip(texts, ours_texts))
            print(f"  ctranslate2 {compute} {seconds:6.2f} s {tokens / seconds:9.0f} tok/s; modelport {compute} is "
                  f"{ours_rate / (tokens / seconds):.2f}x its tokens/s; {same}/{len(lines)} lines identical to "
                  f"modelport {compute}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
