"""The ONNX runtime: an `export onnx` folder run by onnxruntime with
modelport's own beam search (`modelport translate ONNX_DIR --backend onnx`,
`modelport.load(onnx_dir).translate(...)`) gives the PyTorch port's outputs
token for token (fairseq, Marian, T5; beam 1 and 5), and on the trained
embedded model fairseq's own n-best lists; what it cannot run exits 2 with
one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import modelport
from modelport.cli import main

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.helpers.cli import one_line_error  # noqa: E402
from tests.helpers.paths import CORPUS, DEFAULT_MODEL  # noqa: E402

from modelport.exporters.onnx import export_onnx  # noqa: E402
from modelport.runtimes.onnx import OnnxModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MARIAN = ROOT / "tests" / "data" / "marian"
SHORT = ["Hello world.", "The quick brown fox jumps over the lazy dog.", "", "Good morning, how are you?"]


def _translate(folder: Path, lines_file: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["translate", str(folder), "-i", str(lines_file), "-o", str(out), "--json", "--force",
                 *extra]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _assert_same(torch_out: list[dict], onnx_out: list[dict]) -> None:
    """Identical tokens and text for every hypothesis; scores within 1e-4."""
    assert len(torch_out) == len(onnx_out)
    for a, b in zip(torch_out, onnx_out):
        assert [h["tokens"] for h in a["hypotheses"]] == [h["tokens"] for h in b["hypotheses"]], a["source"]
        assert [h["text"] for h in a["hypotheses"]] == [h["text"] for h in b["hypotheses"]]
        for x, y in zip(a["hypotheses"], b["hypotheses"]):
            assert abs(x["score"] - y["score"]) <= 1e-4


def _compare_cli(ported_dir: Path, onnx_dir: Path, lines: list[str], tmp_path: Path, *extra: str) -> None:
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for beam in ("1", "5"):
        ours = _translate(ported_dir, src, tmp_path / "torch.jsonl", "--beam", beam, *extra)
        theirs = _translate(onnx_dir, src, tmp_path / "onnx.jsonl", "--beam", beam, "--backend", "onnx", *extra)
        _assert_same(ours, theirs)


# ---------------------------------------------------------------------------
# fairseq (the embedded default model)


@pytest.fixture(scope="module")
def onnx_default(ported_default, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "out"
    export_onnx(ported_default.path, out)
    return out


def test_fairseq_translate_backend_onnx_is_the_port(ported_default, onnx_default, tmp_path) -> None:
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:24] + [""]
    _compare_cli(ported_default.path, onnx_default, lines, tmp_path)


def test_fairseq_other_semantics_and_nbest(ported_default, onnx_default, tmp_path) -> None:
    """The search is modelport's: hf semantics and n-best lists on the ONNX backend too."""
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:8]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for extra in (["--semantics", "hf", "--beam", "4"], ["--beam", "5", "--nbest", "3", "--lenpen", "0.6"]):
        ours = _translate(ported_default.path, src, tmp_path / "t.jsonl", *extra)
        # the backend follows the folder without --backend (it was a torch default, refusing an export)
        backend = ["--backend", "onnx"] if "--semantics" in extra else []
        theirs = _translate(onnx_default, src, tmp_path / "o.jsonl", *backend, *extra)
        _assert_same(ours, theirs)
        assert any(len(x["hypotheses"]) == 3 for x in theirs) or "--nbest" not in extra


def test_load_onnx_dir_translates_like_the_port(ported_default, onnx_default) -> None:
    exported = modelport.load(onnx_default)
    assert isinstance(exported, OnnxModel) and exported.config == ported_default.config
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:10]
    ours, theirs = ported_default.translate(lines, beam=5), exported.translate(lines, beam=5)
    assert [[h.tokens for h in x] for x in ours] == [[h.tokens for h in x] for x in theirs]
    assert [x[0].text for x in ours] == [x[0].text for x in theirs]
    streamed = list(exported.translate_iterable(iter(lines), batch_size=3, window=1, beam=5))
    assert [x[0].tokens for x in streamed] == [x[0].tokens for x in ours]


def test_fairseq_onnx_equals_fairseq_on_200_lines(onnx_default) -> None:
    """The export of the trained embedded model, run by onnxruntime under modelport's search,
    against fairseq's own SequenceGenerator on the checkpoint (not against the port): the 200
    test lines in the batches translate forms, beam 5, n-best lists of 5, identical tokens
    and scores within 1e-4 for every hypothesis."""
    pytest.importorskip("fairseq")
    from modelport.validators.references.fairseq_generator import FairseqReference
    from tests.helpers.fairseq_ref import in_translate_batches

    exported = modelport.load(onnx_default)
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:200]
    ours = exported.translate(lines, batch_size=64, beam=5, nbest=5)
    ref = FairseqReference(str(DEFAULT_MODEL), "en", "de")
    srcs = [exported.tokenizer.encode(line) for line in lines]
    theirs = in_translate_batches(lambda batch: ref.generate(batch, beam=5, nbest=5), srcs, 64)
    bad = [(i, x.tokens, y["tokens"], x.score, y["score"]) for i, (xs, ys) in enumerate(zip(ours, theirs))
           for x, y in zip(xs, ys, strict=True) if x.tokens != y["tokens"] or abs(x.score - y["score"]) > 1e-4]
    assert not bad, f"{len(bad)} of {5 * len(lines)} hypotheses differ, first: {bad[0]}"
    assert sum(len(hyps[0]["tokens"]) for hyps in theirs) > 5 * len(lines)  # real translations, not stubs


# ---------------------------------------------------------------------------
# Marian and T5


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["post_tiedall_swish", "pre_tied_swish"])
def test_marian_translate_backend_onnx_is_the_port(fixture, tmp_path) -> None:
    ported = modelport.convert(str(MARIAN / fixture), tmp_path / "ported")
    export_onnx(ported.path, tmp_path / "onnx", verify=False)  # the comparison is this test's
    _compare_cli(ported.path, tmp_path / "onnx", SHORT, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["v1.0", "relative"])
def test_t5_translate_backend_onnx_is_the_port(variant, tmp_path) -> None:
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "hf", variant)
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "ported")
    export_onnx(ported.path, tmp_path / "onnx", verify=False)
    _compare_cli(ported.path, tmp_path / "onnx", SHORT, tmp_path, "--max-length", "40")


# ---------------------------------------------------------------------------
# what the ONNX backend cannot run


def test_ported_folder_given_to_backend_onnx(ported_default, capsys) -> None:
    line = one_line_error(["translate", str(ported_default.path), "--backend", "onnx"], capsys)
    assert "is a ported folder, not an ONNX export" in line and "modelport export onnx" in line


def test_quantized_folder_given_to_backend_onnx(ported_default, tmp_path, capsys) -> None:
    modelport.quantize(ported_default.path, tmp_path / "int8", mode="int8")
    line = one_line_error(["translate", str(tmp_path / "int8"), "--backend", "onnx"], capsys)
    assert "cannot be exported to ONNX: a quantized folder (int8)" in line


def test_ssru_port_given_to_backend_onnx(tmp_path, capsys) -> None:
    """An SSRU port exports (its cell state is the cache): the folder given to --backend onnx says to export it."""
    ported = modelport.convert(str(MARIAN / "post_ssru_relu"), tmp_path / "ssru")
    line = one_line_error(["translate", str(ported.path), "--backend", "onnx"], capsys)
    assert "is a ported folder, not an ONNX export" in line and "modelport export onnx" in line


def test_folder_without_graphs(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    line = one_line_error(["translate", str(tmp_path / "empty"), "--backend", "onnx"], capsys)
    assert "has no ONNX graphs" in line and "modelport export onnx" in line


def test_export_without_the_cached_decoder(onnx_default, tmp_path, capsys) -> None:
    """An export from before the KV cache (encoder.onnx + decoder.onnx only) is named as such."""
    old = tmp_path / "old"
    shutil.copytree(onnx_default, old)
    (old / "decoder_with_past.onnx").unlink()
    line = one_line_error(["translate", str(old), "--backend", "onnx"], capsys)
    assert "without decoder_with_past.onnx" in line and "export the ported folder again" in line


def test_damaged_graph(onnx_default, tmp_path, capsys) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(onnx_default, bad)
    (bad / "decoder_with_past.onnx").write_bytes(b"not a graph")
    line = one_line_error(["translate", str(bad), "--backend", "onnx"], capsys)
    assert "onnxruntime cannot load its graphs" in line


@pytest.mark.parametrize("how", ["decoder swapped in", "layers edited"])
def test_a_graph_that_is_not_the_exports_is_named(how: str, onnx_default, tmp_path, capsys) -> None:
    """decoder.onnx copied over decoder_with_past.onnx failed in the search (AssertionError "encode first",
    exit 1); so did a config.json whose decoder layers differ from the graphs'."""
    import json

    bad = tmp_path / "bad"
    shutil.copytree(onnx_default, bad)
    if how == "decoder swapped in":
        shutil.copyfile(bad / "decoder.onnx", bad / "decoder_with_past.onnx")
    else:
        config = json.loads((bad / "config.json").read_text())
        config["model"]["decoder_layers"] -= 1
        (bad / "config.json").write_text(json.dumps(config))
    line = one_line_error(["translate", str(bad), "--backend", "onnx", "-i", str(bad / "config.json")], capsys)
    assert "does not have the inputs and outputs the export writes" in line, line


def test_a_graph_that_is_a_symlink_out_of_the_folder_is_refused(onnx_default, tmp_path, capsys) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(onnx_default, bad)
    outside = tmp_path / "elsewhere.onnx"
    (bad / "encoder.onnx").rename(outside)
    (bad / "encoder.onnx").symlink_to(outside)
    line = one_line_error(["translate", str(bad), "--backend", "onnx", "-i", str(bad / "config.json")], capsys)
    assert "the graph `encoder.onnx` must stay inside the folder, but is a symlink" in line, line


@pytest.mark.parametrize("report", [b"{bad", b"\xff\xfe", b"[1, 2]"])
def test_damaged_export_report(report: bytes, onnx_default, tmp_path, capsys) -> None:
    """export_report.json is as untrusted as config.json: these raised JSONDecodeError, UnicodeDecodeError,
    and (a list) AttributeError on `.quantization`."""
    bad = tmp_path / "bad"
    shutil.copytree(onnx_default, bad)
    (bad / "export_report.json").write_bytes(report)
    line = one_line_error(["translate", str(bad), "--backend", "onnx"], capsys)
    assert "export_report.json" in line and "is not a valid ported model folder" in line, line


def test_unknown_device_is_named(onnx_default) -> None:
    from modelport.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="foo"):  # a bare RuntimeError from torch.device before
        modelport.load(onnx_default, device="foo")


def test_graph_that_fails_to_run(ported_default, tmp_path, capsys, monkeypatch) -> None:
    """Graphs that load but fail on the inputs the runtime feeds: decoder graphs
    whose cross-attention takes one row of keys per decoder row (traced without
    ``shared``) yet carry the entry that says they share them. One line, exit 2."""
    from modelport.model import layers

    plain = layers.attend
    monkeypatch.setattr(layers, "attend", lambda q, k, v, mask, scale, runs=None, shared=False:
                        plain(q, k, v, mask, scale, runs))
    export_onnx(ported_default.path, tmp_path / "out", verify=False)
    monkeypatch.undo()
    src = tmp_path / "in.txt"
    src.write_text("\n".join(SHORT) + "\n", encoding="utf-8")
    line = one_line_error(["translate", str(tmp_path / "out"), "-i", str(src), "--backend", "onnx"], capsys)
    assert "onnxruntime cannot run decoder_with_past.onnx" in line


def test_backend_onnx_refuses_half_precision(onnx_default, capsys) -> None:
    line = one_line_error(["translate", str(onnx_default), "--backend", "onnx", "--dtype", "float16"], capsys)
    assert "the ONNX backend computes in the graphs' precision" in line


def test_onnx_dir_with_backend_torch_is_named(onnx_default, capsys) -> None:
    line = one_line_error(["translate", str(onnx_default), "--backend", "torch"], capsys)
    assert "is an ONNX export" in line and f"`modelport translate {onnx_default}`" in line


def test_marian_short_outputs(tmp_path) -> None:
    """The quick version of the Marian test above (run by default): the
    pre-norm decoder (unnormalised cached keys, zero start embedding) and
    Marian's shrinking beam, on short outputs."""
    ported = modelport.convert(str(MARIAN / "pre_tied_swish"), tmp_path / "marian")
    export_onnx(ported.path, tmp_path / "onnx", verify=False)
    _compare_cli(ported.path, tmp_path / "onnx", SHORT[:2], tmp_path, "--max-length-factor", "1")


def test_t5_short_outputs(tmp_path) -> None:
    """The quick version of the T5 test above: the relative position bias through the cache."""
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "hf", "relative")
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "t5")
    export_onnx(ported.path, tmp_path / "onnx", verify=False)
    _compare_cli(ported.path, tmp_path / "onnx", SHORT[:2], tmp_path, "--max-length", "12")


def test_marian_shortlist_on_the_onnx_runtime(tmp_path) -> None:
    """Marian's shortlist on the ONNX export: the graphs compute every row and the
    log-softmax takes the batch's list (generation/shortlist.py ShortlistBackend);
    the n-best lists equal the torch port's with the shortlist (itself equal to
    pymarian decode --shortlist, tests/generation/test_marian_shortlist.py), and
    differ from the export's without it, so an ignored shortlist would fail."""
    from modelport.generation.translate import translate
    from modelport.runtimes.onnx import load_onnx

    root = Path(__file__).resolve().parents[2]
    ported = modelport.convert(str(root / "tests" / "data" / "marian-trained" / "post_sep_tied"), tmp_path / "p")
    export_onnx(ported.path, tmp_path / "onnx", verify=False)  # the comparison is this test's
    onnx = load_onnx(tmp_path / "onnx")
    lines = (root / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[:16]
    options = {"semantics": "marian", "beam_size": 4, "n_best": True, "mini_batch": 8, "maxi_batch": 2,
               "shortlist": [str(root / "tests" / "data" / "marian-shortlist" / "post_sep_tied.lex.s2t"), 0, 3, 0.1]}

    def nbest(model, **extra) -> list[list[tuple[list[int], float]]]:
        return [[(h["tokens"], h["score"]) for h in hyps] for hyps in translate(model, lines, **{**options, **extra})]

    ours, theirs = nbest(ported), nbest(onnx)
    assert [[t for t, _ in line] for line in ours] == [[t for t, _ in line] for line in theirs]
    assert max(abs(a - b) for x, y in zip(ours, theirs) for (_, a), (_, b) in zip(x, y)) < 1e-4
    assert [[t for t, _ in line] for line in nbest(onnx, shortlist="none")] != [[t for t, _ in line] for line in theirs]
