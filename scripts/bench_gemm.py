#!/usr/bin/env python
"""The CPU products behind a decoding step: torch's ``F.linear`` (MKL sgemm)
against modelport's :func:`modelport.model.gemm.linear` (oneDNN on a prepacked
weight, where it is used), one weight shape and row count at a time.

    .venv/bin/python scripts/bench_gemm.py [--threads 2] [--runs 5]

Shapes are those of the models bench_translate.py decodes (d_model 32 to
1024, FFN 4x-6x, 500-piece to 32k vocabularies); rows are one sentence greedy (1), one
sentence's beam (5), a batch of 4 and of 16 sentences x beam 5 (20, 80), an
encoder batch of tokens (400) and a grouped search's step (128 lines x beam 5,
640). Printed per cell: the speed of modelport's product as a ratio to
``F.linear``'s (> 1: faster), the best of ``--runs`` timings of each,
alternated; ``F.linear`` marks a cell where modelport keeps torch's own
product (the thresholds of :func:`modelport.model.gemm.onednn_applies`). The last column is the
largest difference between the two results, relative to the largest output.

``--onnxruntime``: a second table, modelport's product against onnxruntime's
at the same shapes and threads (a two-node graph, ``MatMul`` by a constant
weight then ``Add`` of the bias, as ``export onnx`` writes a linear layer;
onnxruntime prepacks the constant weight for its MLAS kernels), speed ratio
(> 1: modelport faster). It is what bounds the ONNX row of bench_translate.py
at large sizes, where a decoding step is nearly all such products.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelport.model import gemm  # noqa: E402

SHAPES = ((32, 192), (32, 501), (64, 64), (64, 256), (128, 128), (128, 512), (512, 128), (256, 256), (256, 1024),
          (1024, 256), (384, 384), (512, 512), (512, 2048), (2048, 512), (1024, 1024), (1024, 4096), (4096, 1024),
          (256, 32000), (512, 32000), (1024, 32000))
ROWS = (1, 5, 20, 80, 400, 640)


def _timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def onnxruntime_linear(weight: torch.Tensor, bias: torch.Tensor, threads: int):
    """``x -> x @ weight.T + bias`` run by onnxruntime on a graph of two nodes whose weight is a constant."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from modelport.runtimes.onnx import session_options

    fan_out, fan_in = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, fan_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, fan_out])],
        [numpy_helper.from_array(weight.t().contiguous().numpy(), "w"), numpy_helper.from_array(bias.numpy(), "b")])
    # modelport's ONNX runtime's settings: its idle workers sleep, where spinning ones would take the cores
    # from torch's products timed in turn with them
    session = onnxruntime.InferenceSession(helper.make_model(graph).SerializeToString(), session_options(threads),
                                           providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def table(title: str, peer, runs: int, only_packed: bool) -> None:
    """One markdown table: per weight shape and row count, the speed of modelport's product as a ratio
    to ``peer(weight, bias)``'s (a callable of ``x``), best of ``runs`` timings alternated; with
    ``only_packed``, cells where modelport keeps ``F.linear`` are marked, not timed."""
    print(f"{title}\n\n| in x out | " + " | ".join(f"{r} rows" for r in ROWS) + " | max rel. diff |\n"
          "| --- |" + " --- |" * (len(ROWS) + 1))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # not inference mode: the port's weights are not inference tensors
        for fan_in, fan_out in SHAPES:
            weight = torch.randn(fan_out, fan_in, generator=g) / fan_in ** 0.5
            bias = torch.randn(fan_out, generator=g)
            theirs = peer(weight, bias)
            cells, diff = [], 0.0
            for rows in ROWS:
                x = torch.randn(rows, fan_in, generator=g)
                ours, ref = gemm.linear(x, weight, bias), theirs(x)
                diff = max(diff, ((ours - ref).abs().max() / ref.abs().max()).item())
                if only_packed and not gemm.onednn_applies(x, weight):
                    cells.append("F.linear")
                    continue
                calls = max(3, int(2e7 / (rows * fan_in * fan_out)))
                peer_time = ours_time = float("inf")
                for _ in range(runs):  # alternated: a drift of the machine hits both
                    peer_time = min(peer_time, _timed(lambda: theirs(x), calls))
                    ours_time = min(ours_time, _timed(lambda: gemm.linear(x, weight, bias), calls))
                cells.append(f"{peer_time / ours_time:.2f}x")
            print(f"| {fan_in} x {fan_out} | " + " | ".join(cells) + f" | {diff:.1e} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--onnxruntime", action="store_true",
                    help="also modelport's product against onnxruntime's MatMul (see above)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not gemm.onednn_enabled():
        sys.exit("oneDNN's prepacked linear is not available here (or MODELPORT_ONEDNN=0): nothing to compare")
    table(f"modelport's linear vs F.linear, {args.threads} thread(s), best of {args.runs}",
          lambda weight, bias: lambda x: F.linear(x, weight, bias), args.runs, only_packed=True)
    if args.onnxruntime:
        print()
        table(f"modelport's linear vs onnxruntime's MatMul + Add, {args.threads} thread(s), best of {args.runs}",
              lambda weight, bias: onnxruntime_linear(weight, bias, args.threads), args.runs, only_packed=False)


if __name__ == "__main__":
    main()
