#!/usr/bin/env python
"""Agreement of `export ct2` with the port, per model family.

Converts each model (the embedded fairseq model, the pre-norm fairseq
fixture, the Marian test models of tests/data/marian (those CTranslate2 cannot
represent are listed as refused), and
random-weight transformers T5 models when transformers is installed), exports
it with `modelport.exporters.ct2.export_ct2` and prints what the verification
measured on the first N lines of assets/corpus/test.en: greedy and beam-5
outputs identical to modelport's, whether the two search rules coincide, and
with --int8 the agreement of CTranslate2 int8 with the fp32 port.

    .venv/bin/python scripts/bench_ct2_export.py [--lines 20] [--int8] [--work DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _bench_utils import scratch_dir  # scripts/: the script's own directory is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import modelport  # noqa: E402
from modelport.errors import InvalidInputError  # noqa: E402
from modelport.exporters.ct2 import export_ct2  # noqa: E402

MARIAN = ROOT / "tests" / "data" / "marian"


def sources(work: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(family, source to convert, converter options) for every model measured."""
    out = [("fairseq post-norm (embedded)", str(ROOT / "assets" / "default-model"), {}),
           ("fairseq pre-norm (fixture)", str(ROOT / "assets" / "fixture-prenorm"),
            {"source_lang": "en", "target_lang": "de"})]
    out += [(f"marian {d.name}", str(d), {}) for d in sorted(MARIAN.iterdir())
            if d.is_dir()]
    try:
        from tests.converters.test_t5_parity import build_hf_t5
    except ImportError:
        print("transformers is not installed: T5 skipped", file=sys.stderr)
        return out
    for variant in ("v1.0", "v1.1", "relative"):
        build_hf_t5(work / f"t5-{variant}", variant)
        out.append((f"t5 {variant} (random)", str(work / f"t5-{variant}"), {}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--int8", action="store_true", help="also export with --quantization int8")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, kept (default: a temporary one, removed at exit)")
    args = parser.parse_args()
    work = scratch_dir(args.work, "bench-ct2-")
    lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[: args.lines]
    print("| model | quantization | greedy identical | beam 5 identical | beam rules coincide | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for i, (family, source, options) in enumerate(sources(work)):
        ported = modelport.convert(source, work / f"port-{i}", force=True, **options)
        for quant in (None, "int8") if args.int8 else (None,):
            start = time.perf_counter()
            try:
                report = export_ct2(ported.path, work / f"ct2-{i}-{quant}", quantization=quant, force=True,
                                    lines=lines)
            except InvalidInputError as e:
                print(f"| {family} | {quant or 'float32'} | refused: {str(e).split(': ', 1)[-1]} | | | |")
                break
            check = report.verification
            assert check is not None
            greedy = f"{check.greedy.identical}/{check.greedy.lines}"
            if check.port_greedy_identical is not None:
                greedy += f" (vs full forward; port's own: {check.port_greedy_identical}/{check.lines})"
            beam = f"{check.beam.identical}/{check.beam.lines}"
            coincide = "yes" if check.beam.rules_coincide else f"no: {check.beam.rule_difference}"
            print(f"| {family} | {quant or 'float32'} | {greedy} | {beam} | {coincide} | "
                  f"{time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
