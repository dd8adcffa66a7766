"""`modelport export onnx`: encoder.onnx + decoder.onnx (first step) +
decoder_with_past.onnx (KV cache) run in onnxruntime give the port's logits
(step by step through the cache and in one pass) and greedy outputs (fairseq,
T5, Marian; a Marian SSRU decoder carries its cell state as the cache), and
Marian-trained models translate as pymarian does, with either kind of cache;
ensembles, quantized folders and exporter failures are refused in one line.
The runtime side (`translate --backend onnx`, `modelport.load(onnx_dir)`) is
tested in tests/runtimes/test_onnx_runtime.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import modelport
from modelport.cli import main
from modelport.errors import InvalidInputError
from modelport.generation import generate

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.helpers.cli import one_line_error  # noqa: E402
from tests.helpers.paths import CORPUS  # noqa: E402

from modelport.exporters import onnx as onnx_exporter  # noqa: E402
from modelport.exporters.common import max_abs_diff  # noqa: E402
from modelport.exporters.onnx import port_incremental  # noqa: E402
from modelport.generation.translate import pad_batch  # noqa: E402
from modelport.runtimes.onnx import OnnxSeq2Seq  # noqa: E402
from modelport.tokenizers import load_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MARIAN = ROOT / "tests" / "data" / "marian"
TRAINED = ROOT / "tests" / "data" / "marian-trained"
TOL = 1e-4


def _export(ported_dir: Path, out: Path, *extra: str) -> dict:
    assert main(["export", "onnx", str(ported_dir), str(out), *extra]) == 0
    return json.loads((out / "export_report.json").read_text())


def _corpus(n: int) -> list[str]:
    return (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:n]


def _real(prev: torch.Tensor, pad: int) -> torch.Tensor:
    real = prev.ne(pad)
    real[:, 0] = True  # the start slot (Marian's is the pad id)
    return real


def _check_logits(ported, runtime: OnnxSeq2Seq, lines: list[str]) -> None:
    """Teacher-forced logits of a right-padded batch (batch size and lengths
    unlike the export's trace inputs) equal the port's at every real target
    position: through the cache one step at a time against the port's own
    incremental decoding, and through decoder.onnx in one pass against its forward."""
    cfg = ported.config
    ids = [ported.tokenizer.encode(line) for line in lines]
    src = pad_batch(ids, cfg.pad_token_id, left=False)
    hyps = generate(ported.model, src, semantics="hf", greedy=True, max_new_tokens=12, pad_left=False)
    prev = pad_batch([[cfg.decoder_start_token_id, *h[0]["tokens"]] for h in hyps], cfg.pad_token_id, left=False)
    assert src.size(1) > 4 and prev.size(1) > 3  # longer than the trace inputs: the axes are dynamic
    real = _real(prev, cfg.pad_token_id)
    with torch.no_grad():
        stepped, forward = port_incremental(ported.model, src, prev), ported.model(src, prev)
    theirs = runtime.teacher_forced(src, prev)
    assert theirs.dtype == torch.float32 and theirs.shape == stepped.shape
    assert max_abs_diff(theirs[real], stepped[real]) <= TOL  # -inf logits (Marian's masked pad) must agree too
    assert max_abs_diff(runtime.full_prefix(src, prev)[real], forward[real]) <= TOL


def _check_greedy(ported, runtime: OnnxSeq2Seq, lines: list[str]) -> None:
    cfg = ported.config
    src = pad_batch([ported.tokenizer.encode(line) for line in lines], cfg.pad_token_id, left=False)
    ours = [h[0]["tokens"] for h in generate(ported.model, src, greedy=True, max_new_tokens=16, pad_left=False)]
    theirs = runtime.greedy(src, start=cfg.decoder_start_token_id, eos=cfg.eos_token_id, pad=cfg.pad_token_id,
                            max_new_tokens=16)
    assert theirs == ours


# ---------------------------------------------------------------------------
# fairseq (the embedded default model)


@pytest.fixture(scope="module")
def onnx_default(ported_default, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "out"
    return out, _export(ported_default.path, out)


def test_fairseq_folder_and_report(onnx_default, ported_default) -> None:
    out, report = onnx_default
    names = {p.name for p in out.iterdir()}
    assert {"encoder.onnx", "decoder.onnx", "decoder_with_past.onnx", "tokenizer", "config.json",
            "generation_config.json", "export_report.json"} <= names
    assert report["opset"] == onnx_exporter.OPSET and report["onnx_version"] and report["onnxruntime_version"]
    assert report["decoder"]["kv_cache"] is False and report["decoder_with_past"]["kv_cache"] is True
    layers = ported_default.config.decoder_layers
    assert report["decoder_with_past"]["inputs"][:3] == ["decoder_input_ids", "encoder_attention_mask",
                                                         "past_key_values.0.decoder.key"]
    assert len(report["decoder_with_past"]["inputs"]) == 2 + 4 * layers
    assert len(report["decoder"]["outputs"]) == 1 + 4 * layers  # logits + self and cross keys/values
    assert len(report["decoder_with_past"]["outputs"]) == 1 + 2 * layers  # logits + self keys/values
    check = report["verification"]
    assert check["passed"] and check["forward"]["max_abs_logit_diff"] <= TOL
    assert check["greedy"]["identical"] == check["sentences"]
    assert check["beam"]["beam"] == 5 and check["beam"]["identical"] == check["lines"]
    assert check["beam"]["max_score_diff"] <= TOL
    assert "int8" not in report and report["dtype"] == "float32"
    # the copied tokenizer is the port's
    tok = load_tokenizer(out / "tokenizer")
    assert tok.encode("Hello world!") == ported_default.tokenizer.encode("Hello world!")


def test_fairseq_graphs_have_dynamic_axes(onnx_default) -> None:
    import onnx

    out, _ = onnx_default
    for name, tensor in (("encoder.onnx", "input_ids"), ("decoder.onnx", "decoder_input_ids"),
                         ("decoder_with_past.onnx", "encoder_attention_mask")):
        graph = onnx.load(str(out / name)).graph
        dims = next(i for i in graph.input if i.name == tensor).type.tensor_type.shape.dim
        assert all(d.dim_param for d in dims), (name, dims)
    graph = onnx.load(str(out / "decoder_with_past.onnx")).graph
    past = next(i for i in graph.input if i.name == "past_key_values.0.decoder.key").type.tensor_type.shape.dim
    assert [d.dim_param for d in past] == ["batch", "", "past_len", ""]  # heads and head size are fixed


def test_fairseq_logits_and_greedy_match_the_port(onnx_default, ported_default) -> None:
    out, _ = onnx_default
    runtime = OnnxSeq2Seq(out)
    lines = _corpus(7)
    _check_logits(ported_default, runtime, lines)
    _check_greedy(ported_default, runtime, lines)


def test_the_cache_is_reordered_between_steps(onnx_default, ported_default) -> None:
    """Rows of the cache follow the beam's index: decoding a batch, swapping
    its rows after the second step, equals decoding the swapped batch."""
    out, _ = onnx_default
    runtime = OnnxSeq2Seq(out)
    cfg = ported_default.config
    src = pad_batch([ported_default.tokenizer.encode(x) for x in _corpus(2)], cfg.pad_token_id, left=False)
    start = torch.full((2, 1), cfg.decoder_start_token_id)
    runtime.encode(src)
    first = runtime.logits(start).argmax(-1, keepdim=True)
    runtime.logits(first)
    swap = torch.tensor([1, 0])
    runtime.reorder(swap, cross=True)
    after = runtime.logits(first.index_select(0, swap))
    runtime.encode(src.index_select(0, swap))
    runtime.logits(start)
    runtime.logits(first.index_select(0, swap))
    assert max_abs_diff(runtime.logits(first.index_select(0, swap)), after) <= 1e-6


def test_a_later_step_returns_only_its_own_keys(onnx_default, ported_default) -> None:
    """decoder_with_past.onnx returns the step's own self-attention keys/values
    (one position), not the cache one position longer; the runtime appends them at
    the next step, applying every reorder since: two reorders between two steps
    (rows swapped, then the first row twice) give the logits of decoding the
    first sentence twice."""
    out, _ = onnx_default
    runtime = OnnxSeq2Seq(out)
    assert runtime.past_apart
    shapes = {o.name: o.shape for o in runtime.decoder_with_past.get_outputs()}
    heads, dh = ported_default.config.layer_heads("decoder")[0], ported_default.config.decoder_head_dim
    assert shapes["present.0.decoder.key"] == ["batch", heads, 1, dh]
    cfg = ported_default.config
    src = pad_batch([ported_default.tokenizer.encode(x) for x in _corpus(2)], cfg.pad_token_id, left=False)
    start = torch.full((2, 1), cfg.decoder_start_token_id)
    runtime.encode(src)
    first = runtime.logits(start).argmax(-1, keepdim=True)
    second = runtime.logits(first).argmax(-1, keepdim=True)
    assert runtime.self_new and runtime.self_new[0].size(2) == 1 and runtime.self_kv[0].size(2) == 1
    for index in (torch.tensor([1, 0]), torch.tensor([1, 1])):
        runtime.reorder(index, cross=True)
    after = runtime.logits(second[:1].expand(2, 1))
    assert runtime.self_kv[0].size(2) == 2
    runtime.encode(src[:1].expand(2, -1))
    runtime.logits(start)
    runtime.logits(first[:1].expand(2, 1))
    assert max_abs_diff(runtime.logits(second[:1].expand(2, 1)), after) <= 1e-6


def test_graphs_returning_the_whole_cache_translate_as_the_port(onnx_default, ported_default, tmp_path) -> None:
    """An export whose decoder_with_past.onnx returns the whole cache one position
    longer (written before the steps kept their keys apart) is told by its output's
    shape and translates as the port."""
    out, _ = onnx_default
    old = tmp_path / "old"
    shutil.copytree(out, old)
    onnx_exporter._export_graphs(ported_default.model, old, onnx_exporter.OPSET, past_apart=False)
    runtime = OnnxSeq2Seq(old)
    assert not runtime.past_apart
    shapes = {o.name: o.shape for o in runtime.decoder_with_past.get_outputs()}
    assert shapes["present.0.decoder.key"][2] == "past_len_plus_1"
    cfg = ported_default.config
    src = pad_batch([ported_default.tokenizer.encode(x) for x in _corpus(8)], cfg.pad_token_id, left=False)
    ours = [h[0]["tokens"] for h in generate(ported_default.model, src, beam=4)]
    assert [h[0]["tokens"] for h in generate(runtime, src, beam=4)] == ours
    assert not runtime.self_new


def _first_steps(runtime: OnnxSeq2Seq, src: torch.Tensor, start: int, beam: int, lengths: bool) -> list[torch.Tensor]:
    """Logits of a beam search's first two steps by hand: the batch expanded to
    ``beam`` rows per sentence, then the middle sentence dropped and each beam's
    rows reversed; each reorder told the runs of ``beam`` rows per sentence as
    one size, or with ``lengths`` as one length per sentence (as Marian's search does)."""
    n = src.size(0)
    runtime.encode(src)
    runtime.reorder(torch.arange(n).repeat_interleave(beam), cross=True, group=[beam] * n if lengths else beam)
    first = runtime.logits(torch.full((n * beam, 1), start))
    tokens = first.topk(beam, dim=-1).indices[:, :1]  # a different token per row of a beam
    keep = torch.tensor([i for s in (0, 2) for i in reversed(range(s * beam, (s + 1) * beam))])
    runtime.reorder(keep, cross=True, group=[beam] * 2 if lengths else beam)
    return [first, runtime.logits(tokens.index_select(0, keep))]


def test_beams_share_one_row_of_the_encoder_side(onnx_default, ported_default) -> None:
    """The decoder graphs take one encoder-side row per sentence's beam (the
    metadata entry says so): the runtime keeps 3, then 2 rows for 12, then 8
    decoder rows, also when told the runs as equal lengths (Marian's beams),
    and one row per decoder row once the lengths differ; the logits equal those
    of one row per decoder row throughout."""
    out, _ = onnx_default
    cfg = ported_default.config
    src = pad_batch([ported_default.tokenizer.encode(x) for x in _corpus(3)], cfg.pad_token_id, left=False)
    per_row = OnnxSeq2Seq(out)
    per_row.shared = False  # as for graphs without the entry
    theirs = _first_steps(per_row, src, cfg.decoder_start_token_id, 4, lengths=False)
    assert per_row.group == 1 and per_row.mask.size(0) == 8
    for lengths in (False, True):
        shared = OnnxSeq2Seq(out)
        assert shared.shared
        ours = _first_steps(shared, src, cfg.decoder_start_token_id, 4, lengths=lengths)
        assert shared.group == 4 and shared.mask.size(0) == 2 and shared.cross_kv[0].size(0) == 2
        for a, b in zip(ours, theirs):
            assert max_abs_diff(a, b) <= 1e-5
    tokens = ours[1].argmax(-1, keepdim=True)
    uneven = torch.tensor([0, 1, 2, 3, 5, 6, 7])  # the second sentence's beam one row shorter
    for runtime in (shared, per_row):
        runtime.reorder(uneven, cross=True, group=[4, 3])
    assert shared.group == 1 and shared.mask.size(0) == 7
    picked = tokens.index_select(0, uneven)
    assert max_abs_diff(shared.logits(picked), per_row.logits(picked)) <= 1e-5


def test_graphs_without_the_entry_get_one_row_per_decoder_row(onnx_default, ported_default, tmp_path) -> None:
    """A folder whose graphs lack the metadata entry (written before it existed)
    is fed one encoder-side row per decoder row, and translates as the port."""
    import onnx

    out, _ = onnx_default
    old = tmp_path / "old"
    shutil.copytree(out, old)
    for name in ("decoder.onnx", "decoder_with_past.onnx"):
        graph = onnx.load(str(old / name))
        del graph.metadata_props[:]
        onnx.save(graph, str(old / name))
    runtime = OnnxSeq2Seq(old)
    assert not runtime.shared
    cfg = ported_default.config
    src = pad_batch([ported_default.tokenizer.encode(x) for x in _corpus(8)], cfg.pad_token_id, left=False)
    ours = [h[0]["tokens"] for h in generate(ported_default.model, src, beam=4)]
    assert [h[0]["tokens"] for h in generate(runtime, src, beam=4)] == ours
    assert runtime.group == 1


def test_existing_output_needs_force(onnx_default, ported_default, capsys) -> None:
    out, _ = onnx_default
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out)], capsys)
    assert "already exists" in line and "--force" in line


def test_failed_verification_exits_3_and_writes_nothing(ported_default, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(onnx_exporter, "TOL", -1.0)  # any difference, even 0, now fails
    out = tmp_path / "out"
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out)], capsys, code=3)
    assert "max |logit diff|" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_beam_mismatch_exits_3(ported_default, tmp_path, capsys, monkeypatch) -> None:
    """Beam outputs of the runtime that differ from the port's fail the export
    (the logits checks pass: only the beam check can fail here)."""
    monkeypatch.setattr(onnx_exporter, "beam_agreement",
                        lambda ported, exported, lines, beam, direction: (len(lines) - 1, 0.0, 2))
    out = tmp_path / "out"
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out)], capsys, code=3)
    assert "beam-5 outputs differ on 1/5 lines (first: line 3)" in line
    assert not out.exists()


@pytest.mark.slow
def test_int8_export_reports_its_agreement(ported_default, tmp_path) -> None:
    report = _export(ported_default.path, tmp_path / "out", "--int8")
    assert report["dtype"] == "int8" and report["verification"]["passed"]  # the fp32 graphs, before quantizing
    q = report["int8"]
    assert q["lines"] == 5 and 0 <= q["identical"] <= 5 and q["beam"] == 5
    assert 0 < q["max_abs_logit_diff"] < 5.0 and q["bytes_int8"] < q["bytes_fp32"] / 2
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "out" / "decoder_with_past.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
    assert OnnxSeq2Seq(tmp_path / "out").shared  # quantizing kept the graphs' metadata entry


# ---------------------------------------------------------------------------
# T5 (relative position bias with the cache, RMS norm) and Marian (zero start embedding, pre-norm cache)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["v1.0", "relative"])
def test_t5_exports(variant, tmp_path) -> None:
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "hf", variant)
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "ported")
    report = _export(ported.path, tmp_path / "out", "--data", str(_lines_file(tmp_path)))
    assert report["verification"]["passed"] and report["source_format"] == "t5"
    runtime = OnnxSeq2Seq(tmp_path / "out")
    lines = ["the quick brown fox", "translate English to German: that is good and long enough", "hello"]
    _check_logits(ported, runtime, lines)
    _check_greedy(ported, runtime, lines)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["post_tiedall_swish", "pre_tied_swish"])
def test_marian_exports(fixture, tmp_path) -> None:
    """post: Marian's zero start embedding; pre: its pre-norm decoder caches
    unnormalised keys (incremental decoding differs from a forward by design)."""
    ported = modelport.convert(str(MARIAN / fixture), tmp_path / "ported")
    assert ported.config.decoder_start_zero_embedding
    report = _export(ported.path, tmp_path / "out", "--opset", "18", "--data", str(_lines_file(tmp_path)))
    assert report["verification"]["passed"] and report["opset"] == 18
    runtime = OnnxSeq2Seq(tmp_path / "out")
    _check_logits(ported, runtime, _corpus(5))
    _check_greedy(ported, runtime, _corpus(5))


def test_marian_ssru_exports_and_translates_as_marian(tmp_path) -> None:
    """The Marian-trained tiny11 student (6 encoder layers, 2-layer SSRU decoder): its cache is one cell
    state per layer (no past length of its own: past_positions gives it), the first-step graph takes one
    position; logits through the cache equal the port's, and beam search on onnxruntime gives pymarian's
    own translations (beam 4, normalize 0.6, batches of 8 sorted by length) with its n-best scores."""
    ported = modelport.convert(str(TRAINED / "tiny11_ssru"), tmp_path / "ported")
    assert ported.config.decoder_autoreg == "ssru"
    report = _export(ported.path, tmp_path / "out")
    assert report["verification"]["passed"] and report["verification"]["beam"]["identical"] == 5
    with_past = report["decoder_with_past"]
    assert with_past["inputs"][2] == "past_positions" and "past_key_values.1.decoder.state" in with_past["inputs"]
    assert not any(name.endswith(".decoder.key") for name in with_past["inputs"] + with_past["outputs"])
    runtime = OnnxSeq2Seq(tmp_path / "out")
    assert runtime.recurrent and runtime.layers == 2
    lines = _corpus(12)
    cfg = ported.config
    ids = [ported.tokenizer.encode(line) for line in lines]
    src = pad_batch(ids, cfg.pad_token_id, left=False)
    hyps = generate(ported.model, src, semantics="hf", greedy=True, max_new_tokens=12, pad_left=False)
    prev = pad_batch([[cfg.decoder_start_token_id, *h[0]["tokens"]] for h in hyps], cfg.pad_token_id, left=False)
    with torch.no_grad():
        stepped = port_incremental(ported.model, src, prev)
    real = _real(prev, cfg.pad_token_id)
    assert max_abs_diff(runtime.teacher_forced(src, prev)[real], stepped[real]) <= TOL
    with pytest.raises(InvalidInputError, match="one position"):
        runtime.full_prefix(src, prev)
    runtime.encode(src)
    runtime.logits(prev[:, :1])
    with pytest.raises(InvalidInputError, match="one position"):  # the graph with the cache: one position too
        runtime.logits(prev[:, 1:3])

    _assert_translates_as_marian(tmp_path / "out", TRAINED / "tiny11_ssru", ported)


@pytest.mark.parametrize("fixture", ["post_sep_tied", "pre_ffn3_swish"])
def test_marian_trained_cache_translates_as_marian(fixture: str, tmp_path) -> None:
    """Marian-trained models whose decoder keeps a self-attention cache, exported and run by
    onnxruntime under modelport's search: pymarian's own translations and scores. The later
    step attends to the cache and to its own key apart (``past_and_new``), and the runtime
    appends that key under the search's reorders. post_sep_tied is post-norm with tied
    embeddings; pre_ffn3_swish is pre-norm, and its cache holds the keys of the un-normalised
    input (``cached_self_kv_unnormed``), the step's other branch."""
    ported = modelport.convert(str(TRAINED / fixture), tmp_path / "ported")
    assert ported.config.cached_self_kv_unnormed == (fixture == "pre_ffn3_swish")
    report = _export(ported.path, tmp_path / "out")
    assert report["verification"]["passed"]
    _assert_translates_as_marian(tmp_path / "out", TRAINED / fixture, ported)


def _assert_translates_as_marian(onnx_dir: Path, marian_dir: Path, ported) -> None:
    """The export in ``onnx_dir`` translates 40 corpus lines as pymarian decodes the Marian model
    in ``marian_dir`` (beam 4, normalize 0.6, batches of 8 sorted by length): the whole n-best
    lists and their scores, checked as the port's own are against pymarian (``compare``)."""
    pytest.importorskip("pymarian")
    from modelport.generation.translate import translate
    from modelport.validators.references.marian import MarianReference
    from tests.validators.test_marian_pymarian import compare

    lines = _corpus(40)
    options = {"beam_size": 4, "normalize": 0.6, "mini_batch": 8, "maxi_batch": 4, "maxi_batch_sort": "src"}
    ref = MarianReference(marian_dir).decode(lines, **options)
    ours = translate(modelport.load(onnx_dir), lines, semantics="marian", n_best=True, **options)
    problems = compare(ported, ref, ours)
    assert not problems, f"{len(problems)} of {len(lines)} lines differ: " + "; ".join(problems[:3])


def _lines_file(tmp_path: Path) -> Path:
    """Two short verification lines (random-weight models decode to their length cap: keep it short)."""
    path = tmp_path / "lines.txt"
    path.write_text("Hello world.\nThe quick brown fox jumps.\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# refusals


def test_ensemble_is_refused(ported_ensemble, tmp_path, capsys) -> None:
    line = one_line_error(["export", "onnx", str(ported_ensemble.path), str(tmp_path / "out")], capsys)
    assert "ensemble of 2" in line
    assert not (tmp_path / "out").exists()


def test_quantized_folder_is_refused(ported_default, tmp_path, capsys) -> None:
    folder = tmp_path / "folder"
    shutil.copytree(ported_default.path, folder)
    data = json.loads((folder / "config.json").read_text())
    data["quantization"] = {"mode": "int8"}  # what `modelport quantize` records
    (folder / "config.json").write_text(json.dumps(data))
    line = one_line_error(["export", "onnx", str(folder), str(tmp_path / "out")], capsys)
    assert "quantized folder (int8)" in line and "--int8" in line


def test_exporter_failure_is_one_line(ported_default, tmp_path, capsys, monkeypatch) -> None:
    """An opset below 14 (scaled_dot_product_attention has no ONNX form there) is refused before torch's
    exporter runs, which fails only after printing the whole graph; the exporter's own failures are one line."""
    out = tmp_path / "out"
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out), "--opset", "11"], capsys)
    assert "the ONNX opset must be an integer from 14 to 23, but is 11" in line
    # above torch's highest the same (55 KB of graph on stdout, under --json too, before the error)
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out), "--opset", "24"], capsys)
    assert "the ONNX opset must be an integer from 14 to 23, but is 24" in line

    def fails(*args, **kwargs):
        raise RuntimeError("Unsupported onnx_opset_version: 99\nand more lines")

    monkeypatch.setattr(torch.onnx, "export", fails)
    line = one_line_error(["export", "onnx", str(ported_default.path), str(out)], capsys)
    assert "cannot be exported to ONNX: RuntimeError: Unsupported onnx_opset_version: 99" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("target", ["onnx", "hf", "ct2"])
def test_empty_verification_data_is_refused(target: str, ported_default, tmp_path, capsys) -> None:
    """A verification on no lines would pass whatever was written (onnx and hf took their built-in lines)."""
    pytest.importorskip({"onnx": "onnxruntime", "hf": "transformers", "ct2": "ctranslate2"}[target])
    data = tmp_path / "empty.txt"
    data.write_text("", encoding="utf-8")
    line = one_line_error(["export", target, str(ported_default.path), str(tmp_path / "out"), "--data", str(data)],
                          capsys)
    assert "--data holds no lines to verify the export on" in line


def test_options_of_the_other_target_are_refused(ported_default, tmp_path, capsys) -> None:
    line = one_line_error(["export", "onnx", str(ported_default.path), str(tmp_path / "o"), "--allow-approximate"],
                          capsys)
    assert "--allow-approximate does not apply to `export onnx`" in line
    line = one_line_error(["export", "ct2", str(ported_default.path), str(tmp_path / "o"), "--int8"], capsys)
    assert "--int8 does not apply to `export ct2`" in line
