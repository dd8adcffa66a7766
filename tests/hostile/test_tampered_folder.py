"""Tampered ported folders (issue #12, item 7).

A ported folder is a directory anyone can edit or download. Every command
that reads one (translate, quantize, prune, export, card, inspect) must check
it before use: config.json's schema, the safetensors files (header, offsets,
dtypes, shapes against what the config implies), the alias metadata and the
sharded index (entries inside the folder). A tampered folder exits 2 with one
line naming the problem, and no output folder is left behind."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.helpers.cli import one_line_error

# ---------------------------------------------------------------------------
# helpers that tamper with a copy of the ported default model


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder: Path, data) -> None:
    (folder / "config.json").write_text(json.dumps(data))


def _edit_model(folder: Path, **changes) -> None:
    data = _config(folder)
    data["model"].update(changes)
    _write_config(folder, data)


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _read_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def _rewrite(path: Path, change: Callable[[dict[str, torch.Tensor], dict[str, str]], None]) -> None:
    tensors, meta = _read_file(path)
    change(tensors, meta)
    save_file(tensors, str(path), metadata=meta)


def _header(path: Path) -> tuple[int, dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n]), raw[8 + n:]


def _write_header(path: Path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _bad_offsets(folder: Path) -> None:
    path = folder / "model.safetensors"
    _, header, data = _header(path)
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"] = [len(data) + 64, len(data) + 64 + 4 * _numel(header[name]["shape"])]
    _write_header(path, header, data)


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _header_not_json(folder: Path) -> None:
    path = folder / "model.safetensors"
    n, _, data = _header(path)
    path.write_bytes(struct.pack("<Q", n) + b"{" * n + data)


def _huge_header_length(folder: Path) -> None:
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 1 << 62) + raw[8:])


def _dtype_list(folder: Path) -> None:
    path = folder / "model.safetensors"
    _, header, data = _header(path)
    name = next(k for k in header if k != "__metadata__")
    header[name]["dtype"] = ["F32"]
    _write_header(path, header, data)


def _truncate(folder: Path) -> None:
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _shape_changed(folder: Path) -> None:
    def change(t, meta):
        t["encoder.layers.0.ffn.up.weight"] = t["encoder.layers.0.ffn.up.weight"][:-1].clone()
    _rewrite(folder / "model.safetensors", change)


def _dtype_changed(folder: Path) -> None:
    def change(t, meta):
        t["encoder.layers.1.self_attn.q_proj.weight"] = t["encoder.layers.1.self_attn.q_proj.weight"].long()
    _rewrite(folder / "model.safetensors", change)


def _tensor_removed(folder: Path) -> None:
    _rewrite(folder / "model.safetensors", lambda t, meta: t.pop("decoder.layers.2.ffn_norm.bias"))


def _layer_added(folder: Path) -> None:
    def change(t, meta):
        t["decoder.layers.7.ffn.up.weight"] = torch.zeros(4, 4)
    _rewrite(folder / "model.safetensors", change)


def _tensor_added(folder: Path) -> None:
    def change(t, meta):
        t["encoder.extra.weight"] = torch.zeros(4, 4)
    _rewrite(folder / "model.safetensors", change)


def _aliases_not_json(folder: Path) -> None:
    _rewrite(folder / "model.safetensors", lambda t, meta: meta.update(modelport_aliases="{not json"))


def _alias_to_missing(folder: Path) -> None:
    _rewrite(folder / "model.safetensors",
             lambda t, meta: meta.update(modelport_aliases=json.dumps({"lm_head.weight": "no.such.tensor"})))


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    # name: (tamper, a word the one-line error must contain)
    "config_list": (lambda f: _write_config(f, [1, 2]), "config.json"),
    "config_not_utf8": (lambda f: (f / "config.json").write_bytes(b'{"model": "\xff"}'), "config.json"),
    "config_a_directory": (lambda f: ((f / "config.json").unlink(), (f / "config.json").mkdir()), "config.json"),
    "generation_config_a_fifo": (lambda f: ((f / "generation_config.json").unlink(),
                                            os.mkfifo(f / "generation_config.json")), "generation_config.json"),
    "model_key_removed": (lambda f: _write_config(f, {k: v for k, v in _config(f).items() if k != "model"}),
                          "model"),
    "d_model_changed": (lambda f: _edit_model(f, d_model=256), "d_model"),
    "d_model_string": (lambda f: _edit_model(f, d_model="128"), "d_model"),
    "layers_float": (lambda f: _edit_model(f, encoder_layers=2.5), "encoder_layers"),
    "layers_bool": (lambda f: _edit_model(f, pre_norm="yes"), "pre_norm"),
    "vocab_changed": (lambda f: _edit_model(f, target_vocab_size=2000), "target_vocab_size"),
    "ffn_depth_changed": (lambda f: _edit_model(f, ffn_depth=3), "ffn_depth"),
    "huge_positions": (lambda f: _edit_model(f, max_source_positions=10**12), "max_source_positions"),
    "ensemble_size_string": (lambda f: _write_config(f, {**_config(f), "ensemble_size": "two"}), "ensemble_size"),
    "ensemble_size_wrong": (lambda f: _write_config(f, {**_config(f), "ensemble_size": 3}), "ensemble_size"),
    "quantization_string": (lambda f: _write_config(f, {**_config(f), "quantization": "int8"}), "quantization"),
    "quantization_unknown": (lambda f: _write_config(f, {**_config(f), "quantization": {"mode": "int3"}}),
                             "quantization"),
    "generation_config_list": (lambda f: (f / "generation_config.json").write_text("[]"),
                               "generation_config.json"),
    "d_model_astronomic": (lambda f: _edit_model(f, d_model=10**30), "d_model"),
    "positions_negative": (lambda f: _edit_model(f, max_source_positions=-1), "max_source_positions"),
    "header_dtype_list": (_dtype_list, "dtype"),
    "truncated_weights": (_truncate, "model.safetensors"),
    "bad_offsets": (_bad_offsets, "model.safetensors"),
    "header_not_json": (_header_not_json, "model.safetensors"),
    "huge_header_length": (_huge_header_length, "model.safetensors"),
    "weight_shape_changed": (_shape_changed, "encoder.layers.0.ffn.up.weight"),
    "weight_dtype_changed": (_dtype_changed, "encoder.layers.1.self_attn.q_proj.weight"),
    "weight_removed": (_tensor_removed, "decoder.layers.2.ffn_norm.bias"),
    "layer_added": (_layer_added, "decoder_layers"),
    "weight_added": (_tensor_added, "encoder.extra.weight"),
    "aliases_not_json": (_aliases_not_json, "alias"),
    "alias_to_missing_tensor": (_alias_to_missing, "no.such.tensor"),
    # values a converter never writes, which failed deep inside (ZeroDivisionError, IndexError, a NaN error)
    "head_dim_zero": (lambda f: _edit_model(f, head_dim=0), "head_dim"),
    "position_pad_index_past_the_table": (lambda f: _edit_model(f, position_pad_index=10**6), "position_pad_index"),
    "norm_eps_negative": (lambda f: _edit_model(f, norm_eps=-1.0), "norm_eps"),
    "attention_scale_negative": (lambda f: _edit_model(f, attention_scale=-3.0), "attention_scale"),
    "bos_past_the_vocabulary": (lambda f: _edit_model(f, bos_token_id=10**6), "bos_token_id"),
    # conversion.json's records, which inspect, card and publish read (AttributeError, TypeError)
    "history_of_numbers": (lambda f: _edit_json(f / "conversion.json", history=[1]), "history"),
    "source_files_a_number": (lambda f: _edit_json(f / "conversion.json", source_files=5), "source_files"),
}


@pytest.fixture
def tampered_copy(ported_default, tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        folder = tmp_path / "port"
        shutil.copytree(ported_default.path, folder)
        TAMPERS[name][0](folder)
        return folder
    return make


def _no_output(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")], list(parent.iterdir())


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_folder_translate_exits_2_naming_the_problem(name: str, tampered_copy, tmp_path: Path,
                                                                capsys) -> None:
    folder = tampered_copy(name)
    src = tmp_path / "in.txt"
    src.write_text("Hello world.\n", encoding="utf-8")
    line = one_line_error(["translate", str(folder), "-i", str(src), "-o", str(tmp_path / "out.txt")], capsys)
    assert TAMPERS[name][1] in line, line
    _no_output(tmp_path, "out.txt")


@pytest.mark.parametrize("name", ["config_list", "d_model_changed", "truncated_weights", "weight_dtype_changed",
                                  "alias_to_missing_tensor"])
def test_tampered_folder_load_raises_typed_error(name: str, tampered_copy) -> None:
    import modelport
    from modelport.errors import InvalidInputError, InvalidPortedFolderError

    folder = tampered_copy(name)
    with pytest.raises(InvalidPortedFolderError) as info:
        modelport.load(folder)
    assert isinstance(info.value, InvalidInputError)
    assert Path(info.value.folder) == folder
    assert TAMPERS[name][1] in info.value.problem
    assert "\n" not in str(info.value)


COMMANDS = {
    "quantize": lambda d, o: ["quantize", d, o, "--mode", "int8"],
    "prune": lambda d, o: ["prune", d, o, "--decoder-layers", "2"],
    "export-hf": lambda d, o: ["export", "hf", d, o],
    "export-onnx": lambda d, o: ["export", "onnx", d, o],
    "card": lambda d, o: ["card", d],
    "inspect": lambda d, o: ["inspect", d],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name", ["config_list", "d_model_changed", "weight_shape_changed", "truncated_weights",
                                  "alias_to_missing_tensor"])
def test_tampered_folder_other_commands_exit_2_and_leave_nothing(command: str, name: str, tampered_copy,
                                                                   tmp_path: Path, capsys) -> None:
    folder = tampered_copy(name)
    line = one_line_error(COMMANDS[command](str(folder), str(tmp_path / "out")), capsys)
    assert TAMPERS[name][1] in line, line
    _no_output(tmp_path, "out")
    assert not (folder / "README.md").exists()  # card wrote nothing into the tampered folder


@pytest.mark.parametrize("command", ["translate", "export-hf", "export-onnx"])
@pytest.mark.parametrize("change,said", [({"beam": "5"}, "`beam` must be a positive integer, but is '5'"),
                                         ({"lenpen": [1]}, "`lenpen` must be a finite number"),
                                         ({"semantics": "moses"}, "`moses` is not a known semantics")])
def test_generation_config_of_the_wrong_kind_is_refused_on_load(command: str, change: dict, said: str,
                                                                ported_default, tmp_path: Path, capsys) -> None:
    """export hf coerced `"beam": "5"` into num_beams 5 and export onnx copied it; translate said so only then."""
    folder = tmp_path / "port"
    shutil.copytree(ported_default.path, folder)
    _edit_json(folder / "generation_config.json", **change)
    argv = {"translate": ["translate", str(folder), "-i", str(folder / "config.json")],
            **{k: v(str(folder), str(tmp_path / "out")) for k, v in COMMANDS.items()}}[command]
    line = one_line_error(argv, capsys)
    assert f"`{folder / 'generation_config.json'}`: {said}" in line, line
    _no_output(tmp_path, "out")


# ---------------------------------------------------------------------------
# sharded folders: the index must stay inside the folder


@pytest.fixture
def sharded_copy(ported_default, tmp_path: Path) -> Path:
    """The default port with its weights in three shards and an index."""
    from modelport.model.io import save_weights

    folder = tmp_path / "sharded"
    shutil.copytree(ported_default.path, folder)
    tensors, _ = _read_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    save_weights(folder, list(tensors.items()), shard_bytes=3 * 1024 * 1024)
    assert (folder / "model.safetensors.index.json").is_file()
    return folder


def _index(folder: Path) -> dict:
    return json.loads((folder / "model.safetensors.index.json").read_text())


def _point_first_shard(folder: Path, target: str) -> None:
    index = _index(folder)
    first = sorted(set(index["weight_map"].values()))[0]
    index["weight_map"] = {k: (target if v == first else v) for k, v in index["weight_map"].items()}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "index_not_json", "index_no_weight_map",
                                 "index_missing_shard", "index_wrong_shard", "index_file_a_number",
                                 "index_name_too_long"])
def test_tampered_folder_index_stays_inside(how: str, sharded_copy: Path, tmp_path: Path, capsys) -> None:
    import modelport

    folder = sharded_copy
    assert modelport.load(folder).config.d_model == 128  # untampered, the sharded folder loads
    first = sorted(set(_index(folder)["weight_map"].values()))[0]
    outside = tmp_path / "outside.safetensors"  # a valid shard, but outside the folder
    shutil.copy(folder / first, outside)
    if how == "parent":
        _point_first_shard(folder, "../outside.safetensors")
    elif how == "absolute":
        _point_first_shard(folder, str(outside))
    elif how == "symlink":
        (folder / first).unlink()
        os.symlink(outside, folder / first)
    elif how == "index_not_json":
        (folder / "model.safetensors.index.json").write_text("{")
    elif how == "index_no_weight_map":
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    elif how == "index_missing_shard":
        (folder / first).unlink()
    elif how == "index_file_a_number":
        _point_first_shard(folder, 7)
    elif how == "index_name_too_long":
        _point_first_shard(folder, "x" * 300 + ".safetensors")
    elif how == "index_wrong_shard":
        index = _index(folder)
        name = next(k for k, v in index["weight_map"].items() if v == first)
        other = sorted(set(index["weight_map"].values()))[1]
        index["weight_map"][name] = other
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    src = tmp_path / "in.txt"
    src.write_text("Hello world.\n", encoding="utf-8")
    line = one_line_error(["translate", str(folder), "-i", str(src)], capsys)
    assert "model.safetensors.index.json" in line or first in line, line


def test_tampered_folder_huge_layer_count_fails_fast(ported_default, tmp_path: Path) -> None:
    """`encoder_layers: 200000` must be refused from the tensors present,
    before a 200000-layer model is built (that took minutes)."""
    folder = tmp_path / "port"
    shutil.copytree(ported_default.path, folder)
    _edit_model(folder, encoder_layers=200000)
    src = tmp_path / "in.txt"
    src.write_text("Hello world.\n", encoding="utf-8")
    code = "import sys; from modelport.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "translate", str(folder), "-i", str(src)],
                          capture_output=True, text=True, timeout=45)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelport: error: ") and "encoder_layers" in lines[0]


@pytest.mark.parametrize("size", [3, 10**9])
def test_tampered_folder_ensemble_size_must_match_the_members(size: int, ported_ensemble, tmp_path: Path,
                                                              capsys) -> None:
    folder = tmp_path / "ens"
    shutil.copytree(ported_ensemble.path, folder)
    _write_config(folder, {**_config(folder), "ensemble_size": size})
    src = tmp_path / "in.txt"
    src.write_text("Hello world.\n", encoding="utf-8")
    line = one_line_error(["translate", str(folder), "-i", str(src)], capsys)
    assert "`ensemble_size`" in line and "2 members" in line, line
