"""Checkpoints whose options or tensors have the wrong type or shape: every
case is exit 2 with one line naming the problem (never a traceback), and
nothing is written."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import yaml

from tests.helpers.cli import one_line_error
from tests.converters.test_marian_bad_input import _rewrite
from tests.hostile import payloads

MARIAN = Path(__file__).resolve().parents[1] / "data" / "marian"


def _refused(source: Path, tmp_path: Path, capsys, *extra: str) -> str:
    out = tmp_path / "out"
    line = one_line_error(["convert", str(source), str(out), *extra], capsys)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    return line


# ---------------------------------------------------------------------------
# fairseq


def _fairseq_state() -> dict[str, Any]:
    from modelport.converters.safe_pickle import safe_torch_load, to_plain

    state = safe_torch_load(payloads.DEFAULT_MODEL / "model.pt")
    return {"model": dict(state["model"]), "cfg": to_plain(state["cfg"]), "args": None}


def _fairseq_folder(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    state = _fairseq_state()
    edit(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    return payloads.fairseq_folder(tmp_path / "src", buf.getvalue())


FAIRSEQ_CASES = {
    "int key": (lambda s: s["model"].update({7: torch.zeros(2)}), "7"),
    "bare in_proj key": (lambda s: s["model"].update({"x.in_proj_weight": torch.zeros(6, 2)}), "in_proj"),
    "string weight": (lambda s: s["model"].update({"encoder.layers.0.fc1.bias": "oops"}), "fc1.bias"),
    "encoder_layers three": (lambda s: s["cfg"]["model"].update(encoder_layers="three"), "--encoder-layers"),
    "int64 weight": (lambda s: s["model"].update({"encoder.layers.0.fc1.bias": torch.zeros(512, dtype=torch.long)}),
                     "floating-point"),
    "beam lots": (lambda s: s["cfg"]["generation"].update(beam="lots"), "beam"),
    "model not a dict": (lambda s: s.update(model=[1, 2]), "model"),
}


@pytest.mark.parametrize("case", list(FAIRSEQ_CASES))
def test_fairseq_malformed(tmp_path: Path, capsys, case: str) -> None:
    edit, expected = FAIRSEQ_CASES[case]
    line = _refused(_fairseq_folder(tmp_path, edit), tmp_path, capsys)
    assert expected in line


def test_fairseq_fp16_weights_convert_and_translate(tmp_path: Path) -> None:
    import modelport

    folder = _fairseq_folder(tmp_path, lambda s: s.update(model={k: v.half() for k, v in s["model"].items()}))
    ported = modelport.convert(str(folder), tmp_path / "out")
    out = ported.translate(["Hello world."], beam=2)
    assert out[0][0]["text"]


# ---------------------------------------------------------------------------
# Marian


@pytest.fixture()
def marian_dir(tmp_path: Path) -> Path:
    shutil.copytree(MARIAN / "post_tiedall_swish", tmp_path / "src")
    return tmp_path / "src"


_edit_npz = _rewrite  # the npz editor of the Marian bad-input tests


def _edit_yml(directory: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    def inner(arrays: dict[str, np.ndarray]) -> None:
        raw = bytes(arrays["special:model.yml"]).rstrip(b"\0").decode()
        cfg = yaml.safe_load(raw)
        edit(cfg)
        arrays["special:model.yml"] = np.frombuffer(yaml.safe_dump(cfg).encode() + b"\0", dtype=np.int8)

    _edit_npz(directory, inner)


def _vocab(directory: Path) -> Path:
    return directory / yaml.safe_load((directory / "decoder.yml").read_text())["vocabs"][0]


MARIAN_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "non-UTF-8 vocab": (lambda d: _vocab(d).write_bytes(b"\xff\xfe: 0\n"), "vocab"),
    "invalid YAML vocab": (lambda d: _vocab(d).write_text("a: [\n"), "vocab"),
    "1-D embedding": (lambda d: _edit_npz(d, lambda a: a.update(Wemb=a["Wemb"].reshape(-1))), "Wemb"),
    "string weight": (lambda d: _edit_npz(d, lambda a: a.update(
        encoder_l1_ffn_b1=np.array(["x"] * a["encoder_l1_ffn_b1"].size))), "encoder_l1_ffn_b1"),
    "fractional dim-vocabs": (lambda d: _edit_yml(d, lambda c: c.update({"dim-vocabs": [1.5, 2.5]})), "dim-vocabs"),
    "float dim-vocabs": (lambda d: _edit_yml(d, lambda c: c.update(
        {"dim-vocabs": [float(v) for v in c["dim-vocabs"]]})), "dim-vocabs"),
    "string enc-depth": (lambda d: _edit_yml(d, lambda c: c.update({"enc-depth": "2"})), "enc-depth"),
    "vocabs a number": (lambda d: (d / "decoder.yml").write_text(
        yaml.safe_dump({**yaml.safe_load((d / "decoder.yml").read_text()), "vocabs": 5})), "vocabs"),
    "python tag in decoder.yml": (lambda d: (d / "decoder.yml").write_text(
        "models: !!python/object/apply:os.system ['true']\n"), "decoder.yml"),
    "beam-size lots": (lambda d: (d / "decoder.yml").write_text(
        yaml.safe_dump({**yaml.safe_load((d / "decoder.yml").read_text()), "beam-size": "lots"})), "beam-size"),
    "alias bomb": (lambda d: (d / "decoder.yml").write_text(
        yaml.safe_dump(yaml.safe_load((d / "decoder.yml").read_text()))
        + "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]\n"
                  for i in range(1, 9))
        + "beam-size: *a8\n"), "beam-size"),
}


def test_marian_1d_logit_matrix(tmp_path: Path, capsys) -> None:
    shutil.copytree(MARIAN / "post_untied_relu", tmp_path / "src")
    _edit_npz(tmp_path / "src", lambda a: a.update(decoder_ff_logit_out_W=a["decoder_ff_logit_out_W"].reshape(-1)))
    line = _refused(tmp_path / "src", tmp_path, capsys, "--format", "marian")
    assert "decoder_ff_logit_out_W" in line


@pytest.mark.parametrize("case", list(MARIAN_CASES))
def test_marian_malformed(marian_dir: Path, tmp_path: Path, capsys, case: str) -> None:
    edit, expected = MARIAN_CASES[case]
    edit(marian_dir)
    line = _refused(marian_dir, tmp_path, capsys, "--format", "marian")
    assert expected in line and len(line) < 2000


# ---------------------------------------------------------------------------
# T5


@pytest.fixture()
def t5_dir(tmp_path: Path) -> Path:
    pytest.importorskip("transformers")
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "src", "v1.0")
    return tmp_path / "src"


T5_CASES = {
    "feed_forward_proj list": ("config.json", {"feed_forward_proj": ["relu"]}, "feed_forward_proj"),
    "model_type list": ("config.json", {"model_type": ["t5"]}, "model_type"),
    "layer_norm_epsilon tiny": ("config.json", {"layer_norm_epsilon": "tiny"}, "layer_norm_epsilon"),
    "architectures 5": ("config.json", {"architectures": 5}, "architectures"),
    "eos_token_id nested": ("config.json", {"eos_token_id": [[1]]}, "eos_token_id"),
    "num_layers huge": ("config.json", {"num_layers": 200000}, "200000"),
    "config a list": ("config.json", [1, 2], "JSON object"),
    "num_beams many": ("generation_config.json", {"num_beams": "many"}, "num_beams"),
}


@pytest.mark.parametrize("case", list(T5_CASES))
def test_t5_malformed(t5_dir: Path, tmp_path: Path, capsys, case: str) -> None:
    name, changes, expected = T5_CASES[case]
    path = t5_dir / name
    if isinstance(changes, dict):
        cfg = json.loads(path.read_text()) if path.exists() else {}
        cfg.update(changes)
        changes = cfg
    path.write_text(json.dumps(changes))
    line = _refused(t5_dir, tmp_path, capsys, "--format", "t5")
    assert expected in line


def test_a_thread_count_the_machine_cannot_run_is_refused(ported_default, tmp_path: Path, capsys) -> None:
    """`--threads 100000` crashed torch's OpenMP (a segfault; 20000: "libgomp: Thread creation failed")."""
    src = tmp_path / "in.txt"
    src.write_text("Hello world.\n", encoding="utf-8")
    line = one_line_error(["translate", str(ported_default.path), "-i", str(src), "--threads", "100000"], capsys)
    assert "`threads` must be an integer from 1 to" in line and "per core" in line, line


def test_onnx_session_threads_are_checked() -> None:
    pytest.importorskip("onnxruntime")
    from modelport.errors import InvalidInputError
    from modelport.runtimes.onnx import session_options

    assert session_options(2).intra_op_num_threads == 2
    with pytest.raises(InvalidInputError, match="`threads` must be an integer"):
        session_options(10**6)
