"""The benchmark scripts run: ``scripts/bench_translate.py`` on a few test
sentences through the embedded model, each system's pass in a process of its own (the default),
prints a row per system with its share of the GEMM (or int8 product) peak,
its agreement with the port and, over two rounds, its time ratio round by round;
``--marian --procs 2`` on a few lines (one chunk, which the two torchrun processes share)
prints the port's rows beside pymarian's, identical to it;
``scripts/bench_gemm.py --onnxruntime`` prints both of its tables, every product within float32
rounding of its peer's. Slow: they time every system, each pass in a process of its own.
``scripts/parity_table.py`` compares the port with fairseq's hub told the languages the
port was given (a lone ``--target-lang`` gave fairseq none, and its English Moses rules
joined "doesn't" where the port's Pig Latin rules do not: 144/200 lines).
Not slow: ``scripts/gpu_check.py --cpu-dry-run`` on 8 lines (the GPU script, which runs only where a
GPU is lent, goes through each of its steps on the CPU)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_translate_times_each_system_in_its_own_process() -> None:
    pytest.importorskip("ctranslate2")
    pytest.importorskip("fairseq")  # ct2-fairseq-converter reads the checkpoint with it
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_translate.py"), "--lines", "8",
                          "--rounds", "2", "--skip", "transformers", "fairseq", "onnx"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "each pass in a process of its own" in out
    assert out.startswith("8 lines of test.en"), out  # the trained model is given real text, not random ids
    rows = {m.group(1).strip(): m.group(0) for m in re.finditer(r"^(\S.*?)\s+[\d.]+ tok/s.*$", out, re.M)}
    assert set(rows) == {"modelport (fairseq semantics)", "modelport, one search per batch",
                         "modelport int8 (quantize)", "ctranslate2 float32", "ctranslate2 int8"}, out
    # batches decoded together or one by one: the same outputs
    assert "identical first-best 100%" in rows["modelport, one search per batch"], out
    assert "% of GEMM peak" in rows["ctranslate2 float32"] and "% of int8 peak" in rows["ctranslate2 int8"]
    # two rounds: every compared row also gives its ratio round by round (median and range)
    paired = re.compile(r"round by round: median [\d.]+x, ([\d.]+)-([\d.]+)x")
    for name in rows.keys() - {"modelport (fairseq semantics)"}:
        low, high = map(float, paired.search(rows[name]).groups())
        assert 0 < low <= high, rows[name]
    # the same beam search rule on the embedded model's 8 lines: CTranslate2 fp32 gives the port's outputs
    assert "identical first-best 100%" in rows["ctranslate2 float32"], out


@pytest.mark.slow
def test_bench_translate_marian_shares_one_chunk_between_two_processes() -> None:
    pytest.importorskip("pymarian")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_translate.py"), "--marian",
                          str(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied"), "--lines", "24",
                          "--batch-size", "4", "--rounds", "1", "--threads", "1", "--procs", "2", "--skip",
                          "ctranslate2", "onnx"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "share 1 chunk(s)" in out and "shares them" in out, out
    rows = {m.group(1).strip(): m.group(0) for m in re.finditer(r"^(\S.*?)\s+[\d.]+ tok/s.*$", out, re.M)}
    assert set(rows) == {"modelport (marian semantics)", "pymarian (Marian 1.12)",
                         "modelport, 2 torchrun processes x 1 thread"}, out
    assert all("identical to pymarian 100%" in row for row in rows.values()), out
    assert "differ from one process" not in out, out


@pytest.mark.slow
def test_bench_gemm_compares_the_ports_products_with_torch_and_onnxruntime() -> None:
    pytest.importorskip("onnxruntime")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_gemm.py"), "--onnxruntime", "--runs", "1"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    titles = [line for line in run.stdout.splitlines() if line.startswith("modelport's linear vs")]
    assert [t.split(",")[0] for t in titles] == ["modelport's linear vs F.linear",
                                                 "modelport's linear vs onnxruntime's MatMul + Add"], run.stdout
    rows = re.findall(r"^\| (\d+) x (\d+) \|(.*)\| ([\d.e+-]+) \|$", run.stdout, re.M)
    assert len(rows) == 40, run.stdout  # every shape in both tables
    for _, _, cells, diff in rows:
        assert all(re.fullmatch(r"\d+\.\d\dx|F\.linear", c.strip()) for c in cells.split("|")), cells
        assert float(diff) < 1e-5  # the same product: float32 rounding apart
    # onnxruntime's table times every cell: it has no "keeps F.linear" mark
    assert "F.linear" not in run.stdout.split(titles[1])[1]


@pytest.mark.slow
def test_parity_table_gives_fairseq_the_languages_the_port_was_given() -> None:
    pytest.importorskip("fairseq")
    fixture = ROOT / "assets" / "fixture-piglatin"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "parity_table.py"), str(fixture), "--data",
                          str(fixture / "test.en"), "--lines", "20", "--target-lang", "pg", "--case", "greedy"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| greedy | 20/20 | 20/20 |" in run.stdout, run.stdout  # lines 4, 5 and 16 hold "n't" / "'s"


def test_gpu_check_dry_run_goes_through_every_step_on_the_cpu() -> None:
    """The GPU script (scripts/gpu_check.sh), which runs only when a GPU is lent, kept working: ``--cpu-dry-run``
    takes each of its steps on the CPU (three precisions, then CTranslate2 beside the port's float32), and
    without the flag, on a machine without CUDA, it says so and exits 0."""
    script = str(ROOT / "scripts" / "gpu_check.py")
    run = subprocess.run([sys.executable, script, "--lines", "8", "--cpu-dry-run"], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = run.stdout
    assert out.startswith("gpu_check: CPU dry run") and "cpu  float32   reference" in out, out
    # the CPU's float32 run again (as on CUDA): the reference's every line
    assert re.search(r"^  cpu float32\s+8/8 lines identical to cpu float32", out, re.M), out
    for dtype in ("float16", "bfloat16"):  # half precision runs; its agreement is reported, not required
        assert re.search(rf"^  cpu {dtype}\s+\d/8 lines identical to cpu float32 .* tok/s$", out, re.M), out
    if importlib.util.find_spec("ctranslate2") is not None:
        assert re.search(r"^  ctranslate2 float32 .* modelport float32 is [\d.]+x its tokens/s; \d/8 lines", out,
                         re.M), out
    if not torch.cuda.is_available():
        run = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert run.returncode == 0 and run.stdout.startswith("gpu_check: skipped, CUDA is not available"), run.stdout
    bad = subprocess.run([sys.executable, script, "--lines", "0", "--cpu-dry-run"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "--lines" in bad.stderr, bad.stderr
