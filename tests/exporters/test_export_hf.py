"""`modelport export hf`: a ported folder written for transformers.

Each format is exported through the CLI, loaded back with transformers'
Auto classes, and compared with the port: tokenizer ids, teacher-forced
logits on a right-padded batch, and ``generate`` beam search against
modelport's ``semantics="hf"`` search (transformers computes the reference
values here). Refusals exit 2 with one line; a failed verification exits 3
and leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import modelport
from modelport.cli import main
from modelport.generation import generate

transformers = pytest.importorskip("transformers")

from tests.helpers.cli import one_line_error  # noqa: E402
from tests.helpers.paths import PRENORM_MODEL  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MARIAN = ROOT / "tests" / "data" / "marian"
TOL = 1e-4
LINES = [
    "Hello world!",
    "Tom & Jerry's <best> [episode] | 2-3 \"fans\" said it's great",  # Moses escapes & ' < > [ ] | "
    "The quick brown fox jumps over the lazy dog.",
    "We met in 2019 at the north-east gate",
]


def _load(folder: Path):
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(folder)).eval()
    return tok, model


def _export(ported_dir: Path, out: Path, *extra: str, capsys=None) -> dict:
    assert main(["export", "hf", str(ported_dir), str(out), *extra]) == 0
    if capsys is not None:
        printed = capsys.readouterr().out
        assert "written to:" in printed and "generate:" in printed
    return json.loads((out / "export_report.json").read_text())


def _right_padded(ids: list[list[int]], pad: int) -> torch.Tensor:
    src = torch.full((len(ids), max(map(len, ids))), pad, dtype=torch.long)
    for i, x in enumerate(ids):
        src[i, : len(x)] = torch.tensor(x)
    return src


def _check_against(ported, tok, hf, lines: list[str], hf_only: dict | None = None, **gen) -> None:
    """ids, logits and beam outputs of the transformers folder against the port."""
    ours_ids = [ported.tokenizer.encode(line) for line in lines]
    assert [tok(line)["input_ids"] for line in lines] == ours_ids
    pad = ported.config.pad_token_id
    src = _right_padded(ours_ids, pad)
    start = ported.config.decoder_start_token_id
    prev = torch.tensor([[start] + [(7 * i + 5 * j) % 40 + 4 for j in range(6)] for i in range(len(lines))])
    with torch.no_grad():
        theirs = hf(input_ids=src, attention_mask=src.ne(pad), decoder_input_ids=prev, use_cache=False).logits
        ours = ported.model(src, prev)
    finite = torch.isfinite(theirs)
    assert torch.equal(finite, torch.isfinite(ours))
    assert (theirs - ours)[finite].abs().max().item() <= TOL
    # explicit options: the folder's generation_config.json would set others for transformers only
    gen = {"max_new_tokens": 12, "length_penalty": 1.0, "early_stopping": False, **gen}
    with torch.no_grad():
        out = hf.generate(input_ids=src, attention_mask=src.ne(pad), do_sample=False, output_scores=True,
                          return_dict_in_generate=True, **gen, **(hf_only or {}))
    got = generate(ported.models, src, semantics="hf", forced_eos_token_id=hf.generation_config.forced_eos_token_id,
                   **gen)
    for i, hyps in enumerate(got):
        seq = out.sequences[i].tolist()[1:]
        eos = ported.config.eos_token_id
        seq = seq[: seq.index(eos) + 1] if eos in seq else seq  # the rest is batch padding
        assert hyps[0]["tokens"] == seq
        assert abs(hyps[0]["score"] - out.sequences_scores[i].item()) <= TOL


# ---------------------------------------------------------------------------
# fairseq -> FSMT


@pytest.fixture(scope="module")
def fsmt(ported_default, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "fsmt"
    report = _export(ported_default.path, out)
    return out, report


def test_fairseq_loads_as_fsmt(fsmt, ported_default) -> None:
    out, report = fsmt
    tok, hf = _load(out)
    assert type(hf).__name__ == "FSMTForConditionalGeneration" and type(tok).__name__ == "FSMTTokenizer"
    _check_against(ported_default, tok, hf, LINES, num_beams=4, length_penalty=0.6)
    assert report["exact"] and report["verification"]["passed"]
    assert report["verification"]["forward"]["max_abs_logit_diff"] <= TOL
    # the fairseq generation defaults, in transformers' names
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["num_beams"] == ported_default.generation_config["beam"] and gen["early_stopping"] is True
    card = (out / "README.md").read_text()
    assert "Use with transformers" in card and "library_name: transformers" in card


def test_fsmt_decodes_like_the_port(fsmt, ported_default) -> None:
    tok, _ = _load(fsmt[0])
    ids = ported_default.tokenizer.encode_target("Guten Morgen, Welt!")
    assert tok.decode(ids, skip_special_tokens=True) == ported_default.tokenizer.decode(ids)


def test_existing_output_needs_force(fsmt, ported_default, capsys) -> None:
    out, _ = fsmt
    line = one_line_error(["export", "hf", str(ported_default.path), str(out)], capsys)
    assert "already exists" in line and "--force" in line


def test_failed_verification_exits_3_and_writes_nothing(ported_default, tmp_path, capsys) -> None:
    """FSMTTokenizer normalises punctuation (“ ” -> ") before Moses; fairseq does not."""
    data = tmp_path / "lines.txt"
    data.write_text("He said “hello” to me.\n", encoding="utf-8")
    out = tmp_path / "out"
    line = one_line_error(["export", "hf", str(ported_default.path), str(out), "--data", str(data)], capsys,
                          code=3)
    assert "tokenizer ids differ" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("positions", [None, 6])
def test_a_verification_line_longer_than_the_model_reads_is_one_line(positions, ported_default, tmp_path,
                                                                      capsys) -> None:
    """The line is named, as translate names it (was an IndexError in the position table); a port whose
    target table is that short verifies within it."""
    folder = ported_default.path
    if positions is not None:
        folder = tmp_path / "short"
        shutil.copytree(ported_default.path, folder)
        config = json.loads((folder / "config.json").read_text())
        config["model"]["max_source_positions"] = config["model"]["max_target_positions"] = positions
        (folder / "config.json").write_text(json.dumps(config))
    data = tmp_path / "lines.txt"
    data.write_text("Hello.\n" + "the house " * (positions or 1100) + "\n", encoding="utf-8")
    limit = positions or 1024
    line = one_line_error(["export", "hf", str(folder), str(tmp_path / "out"), "--data", str(data)], capsys)
    assert "line 2 of the verification data has" in line and f"the model reads at most {limit}" in line, line
    if positions is not None:
        data.write_text("Hello.\nThe house.\n", encoding="utf-8")
        assert main(["export", "hf", str(folder), str(tmp_path / "out"), "--data", str(data)]) == 0


# ---------------------------------------------------------------------------
# refusals


def test_prenorm_fairseq_is_refused(tmp_path, capsys) -> None:
    ported = modelport.convert(str(PRENORM_MODEL), tmp_path / "ported", source_lang="en", target_lang="de")
    line = one_line_error(["export", "hf", str(ported.path), str(tmp_path / "out")], capsys)
    assert "FSMTForConditionalGeneration" in line and "`pre_norm` True" in line
    assert not (tmp_path / "out").exists()


def test_ensemble_is_refused(ported_ensemble, tmp_path, capsys) -> None:
    line = one_line_error(["export", "hf", str(ported_ensemble.path), str(tmp_path / "out")], capsys)
    assert "ensemble of 2" in line


def _head_pruned_copy(src: Path, folder: Path) -> None:
    """A copy whose second encoder layer keeps 3 of its 4 heads, as `prune
    --heads F --data` records it: per-layer counts, explicit head_dim, and
    the weights cut to match (the folder must stay consistent to be read)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, folder)
    data = json.loads((folder / "config.json").read_text())
    head_dim = data["model"]["d_model"] // data["model"]["encoder_heads"]
    data["model"].update(encoder_layer_heads=[4, 3, 4], head_dim=head_dim)
    (folder / "config.json").write_text(json.dumps(data))
    weights = load_file(folder / "model.safetensors")
    keep = 3 * head_dim
    for name in ("q_proj", "k_proj", "v_proj"):
        for kind in ("weight", "bias"):
            key = f"encoder.layers.1.self_attn.{name}.{kind}"
            weights[key] = weights[key][:keep].clone()
    key = "encoder.layers.1.self_attn.out_proj.weight"
    weights[key] = weights[key][:, :keep].clone()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt", "modelport_aliases": "{}"})


@pytest.mark.parametrize("kind,expected", [
    ("head-pruned", "per-layer sizes (encoder_layer_heads"),
    ("quantized", "quantized folder (int8)"),
])
def test_pruned_or_quantized_folder_is_refused(ported_default, tmp_path, capsys, kind, expected) -> None:
    """Refused from config.json (the fields prune/quantize record), before the weights load."""
    folder = tmp_path / "folder"
    if kind == "quantized":
        modelport.quantize(ported_default.path, folder, mode="int8")
    else:
        _head_pruned_copy(ported_default.path, folder)
    line = one_line_error(["export", "hf", str(folder), str(tmp_path / "out")], capsys)
    assert expected in line


# ---------------------------------------------------------------------------
# Marian -> MarianMTModel


def _exact_marian(tmp_path: Path, name: str) -> Path:
    """A converted fixture with transformers' two numerics (sinusoid over
    dim/2, eps 1e-5) switched on: what MarianMTModel computes exactly."""
    folder = tmp_path / name
    modelport.convert(str(MARIAN / name), folder)
    data = json.loads((folder / "config.json").read_text())
    data["model"].update(sinusoidal_denominator_minus_one=False, norm_eps=1e-5)
    (folder / "config.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("name", ["post_tiedall_swish", "post_untied_relu"])
def test_marian_loads_as_marian_mt(name, tmp_path) -> None:
    folder = _exact_marian(tmp_path, name)
    report = _export(folder, tmp_path / "out")
    assert report["exact"] and report["verification"]["passed"]
    tok, hf = _load(tmp_path / "out")
    assert type(hf).__name__ == "MarianMTModel" and type(tok).__name__ == "MarianTokenizer"
    lines = (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[:4]
    _check_against(modelport.load(folder), tok, hf, lines, num_beams=3)


def test_marian_export_decodes_with_marians_defaults_where_the_folder_records_none(tmp_path) -> None:
    """generation_config.json took max_length 512 where the folder recorded none, while the port decodes with
    Marian's --max-length 1000 (MarianOptions' default): export and port now read the same defaults."""
    from modelport.generation.options import MarianOptions

    folder = _exact_marian(tmp_path, "post_untied_relu")
    gen_path = folder / "generation_config.json"
    gen = json.loads(gen_path.read_text())
    for key in ("beam_size", "normalize", "max_length"):
        gen.pop(key, None)
    gen_path.write_text(json.dumps(gen))
    _export(folder, tmp_path / "out")
    exported = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    cfg = modelport.load(folder).config
    assert exported["num_beams"] == MarianOptions.beam_size
    assert exported["length_penalty"] == MarianOptions.normalize
    assert exported["max_length"] == min(MarianOptions.max_length,
                                         max(cfg.max_source_positions, cfg.max_target_positions))


def test_marian_numerics_are_refused_unless_approximate(tmp_path, capsys) -> None:
    ported = modelport.convert(str(MARIAN / "post_untied_relu"), tmp_path / "ported")
    line = one_line_error(["export", "hf", str(ported.path), str(tmp_path / "out")], capsys)
    assert "sinusoidal_denominator_minus_one" in line and "norm_eps" in line and "--allow-approximate" in line
    report = _export(ported.path, tmp_path / "out", "--allow-approximate")
    assert not report["exact"] and len(report["approximations"]) == 2
    check = report["verification"]
    assert not check["logits_and_outputs_checked"]
    assert check["forward"]["max_abs_logit_diff"] > TOL  # measured and recorded, not hidden
    assert "Approximation" in (tmp_path / "out" / "README.md").read_text()


def test_marian_segmentation_rule_is_named_and_real(tmp_path, capsys) -> None:
    """A Marian port of `.spm` vocabularies segments ties as Marian does
    (``encode_rule: "marian"``); MarianTokenizer uses the sentencepiece library:
    the export names the difference, and on a tie line the ids do differ."""
    ported = modelport.convert(str(ROOT / "tests" / "data" / "marian-trained" / "post_sep_tied"),
                               tmp_path / "ported")
    line = one_line_error(["export", "hf", str(ported.path), str(tmp_path / "out")], capsys)
    assert "`encode_rule` 'marian'" in line
    report = _export(ported.path, tmp_path / "out", "--allow-approximate")
    assert any("encode_rule" in a for a in report["approximations"])
    tok, _ = _load(tmp_path / "out")
    tie = "Their car cost 65,000 euros."  # '000' is '0 00' or '00 0' at equal score
    assert tok(tie)["input_ids"] != ported.tokenizer.encode(tie)


def test_prenorm_marian_is_refused(tmp_path, capsys) -> None:
    ported = modelport.convert(str(MARIAN / "pre_tied_swish"), tmp_path / "ported")
    line = one_line_error(["export", "hf", str(ported.path), str(tmp_path / "out"), "--allow-approximate"], capsys)
    assert "MarianMTModel" in line and "`pre_norm` True" in line


# ---------------------------------------------------------------------------
# T5 -> T5ForConditionalGeneration


@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
def test_t5_round_trip(variant, tmp_path) -> None:
    from tests.converters.test_t5_parity import build_hf_t5

    original = build_hf_t5(tmp_path / "hf", variant)
    ported = modelport.convert(str(tmp_path / "hf"), tmp_path / "ported")
    report = _export(ported.path, tmp_path / "out")
    assert report["verification"]["passed"]
    tok, hf = _load(tmp_path / "out")
    assert type(hf).__name__ == "T5ForConditionalGeneration"
    assert hf.config.scale_decoder_outputs == original.config.scale_decoder_outputs
    lines = ["the quick brown fox", "translate English to German: that is good", "hello world"]
    # transformers' T5 cache is sized by num_layers: with more decoder layers (v1.0 here) generate needs
    # use_cache=False (the original model fails the same way), as the export notes
    uncached = {"use_cache": False} if hf.config.num_decoder_layers > hf.config.num_layers else None
    assert bool(uncached) == any("use_cache=False" in n for n in report["generation_notes"])
    _check_against(ported, tok, hf, lines, hf_only=uncached, num_beams=3)
    ids = torch.tensor([tok(lines[1])["input_ids"]])
    prev = torch.tensor([[0, 5, 9, 12]])
    with torch.no_grad():  # the exported folder computes what the original transformers model did
        a = original(input_ids=ids, decoder_input_ids=prev).logits
        b = hf(input_ids=ids, decoder_input_ids=prev).logits
    assert (a - b).abs().max().item() <= TOL
