"""Bad Marian input: exit code 2 and one clear line naming the problem, in
Marian's own option names; unknown tensors never dropped silently; nothing
half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers.cli import one_line_error  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "marian"


def _one_line_error(argv: list[str], capsys) -> str:
    return one_line_error(argv, capsys)


def _no_leftovers(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")], list(parent.iterdir())


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "post_tiedall_swish", tmp_path / "src")
    return tmp_path / "src"


def _npz(directory: Path) -> Path:
    return directory / yaml.safe_load((directory / "decoder.yml").read_text())["models"][0]


def _rewrite(directory: Path, edit) -> None:
    path = _npz(directory)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    edit(arrays)
    np.savez(path, **arrays)


def _convert(model_dir: Path, tmp_path: Path, capsys) -> str:
    out = tmp_path / "out"
    line = _one_line_error(["convert", str(model_dir), str(out), "--format", "marian"], capsys)
    _no_leftovers(tmp_path, "out")
    return line


def test_unknown_tensor_is_an_error(model_dir: Path, tmp_path: Path, capsys) -> None:
    _rewrite(model_dir, lambda a: a.update({"decoder_l1_self_Wx": np.zeros((32, 32), np.float32)}))
    line = _convert(model_dir, tmp_path, capsys)
    assert "decoder_l1_self_Wx" in line and "unknown tensor" in line


@pytest.mark.parametrize("name", ["encoder_l1_ffn_b1", "decoder_ff_logit_out_b"])
def test_a_vector_of_another_shape_is_not_flattened(name: str, model_dir: Path, tmp_path: Path, capsys) -> None:
    """A [1, dim] bias stored as [2, dim / 2] holds as many numbers: it was flattened and converted."""
    def edit(arrays):
        a = arrays[name]
        arrays[name] = a.reshape(2, a.shape[1] // 2)

    _rewrite(model_dir, edit)
    line = _convert(model_dir, tmp_path, capsys)
    assert f"`{name}`" in line and "has shape [2, " in line, line


def test_unsupported_options_reported_together(model_dir: Path, tmp_path: Path, capsys) -> None:
    def edit(arrays):
        cfg = yaml.safe_load(arrays["special:model.yml"].tobytes()[:-1])
        cfg.update({"transformer-ffn-activation": "gelu2", "transformer-decoder-autoreg": "rnn", "dec-cell": "gru",
                    "transformer-no-projection": True})
        arrays["special:model.yml"] = np.frombuffer(yaml.safe_dump(cfg).encode() + b"\0", dtype=np.int8)

    _rewrite(model_dir, edit)
    line = _convert(model_dir, tmp_path, capsys)
    assert "--transformer-ffn-activation gelu2 is not supported (supported: swish, relu, gelu)" in line
    assert "--dec-cell gru with --transformer-decoder-autoreg rnn is not supported (supported: ssru)" in line
    assert "--transformer-no-projection" in line


def test_average_attention_decoder_refused_by_name(model_dir: Path, tmp_path: Path, capsys) -> None:
    def edit(arrays):
        cfg = yaml.safe_load(arrays["special:model.yml"].tobytes()[:-1])
        cfg["transformer-decoder-autoreg"] = "average-attention"
        arrays["special:model.yml"] = np.frombuffer(yaml.safe_dump(cfg).encode() + b"\0", dtype=np.int8)

    _rewrite(model_dir, edit)
    assert "average-attention" in _convert(model_dir, tmp_path, capsys)


@pytest.mark.parametrize("cell", ["lstm", "gru", "ssru_int8"])
def test_rnn_decoder_cells_other_than_ssru_refused_by_name(cell: str, model_dir: Path, tmp_path: Path,
                                                          capsys) -> None:
    def edit(arrays):
        cfg = yaml.safe_load(arrays["special:model.yml"].tobytes()[:-1])
        cfg.update({"transformer-decoder-autoreg": "rnn", "dec-cell": cell})
        arrays["special:model.yml"] = np.frombuffer(yaml.safe_dump(cfg).encode() + b"\0", dtype=np.int8)

    _rewrite(model_dir, edit)
    line = _convert(model_dir, tmp_path, capsys)
    assert f"--dec-cell {cell} with --transformer-decoder-autoreg rnn is not supported (supported: ssru)" in line


def test_ssru_decoder_with_layer_normalization_refused(tmp_path: Path, capsys) -> None:
    """SSRU's layer-normalised variant (`_gamma`, `_gammaf`) is refused by name."""
    shutil.copytree(DATA / "post_ssru_relu", tmp_path / "src")

    def edit(arrays):
        cfg = yaml.safe_load(arrays["special:model.yml"].tobytes()[:-1])
        cfg["layer-normalization"] = True
        arrays["special:model.yml"] = np.frombuffer(yaml.safe_dump(cfg).encode() + b"\0", dtype=np.int8)

    _rewrite(tmp_path / "src", edit)
    assert "--layer-normalization true with --transformer-decoder-autoreg rnn" in _convert(tmp_path / "src",
                                                                                          tmp_path, capsys)


def test_ssru_decoder_with_self_attention_tensor_is_an_error(tmp_path: Path, capsys) -> None:
    shutil.copytree(DATA / "post_ssru_relu", tmp_path / "src")
    _rewrite(tmp_path / "src", lambda a: a.update({"decoder_l1_self_Wq": np.zeros((32, 32), np.float32)}))
    line = _convert(tmp_path / "src", tmp_path, capsys)
    assert "decoder_l1_self_Wq" in line and "unknown tensor" in line


def test_ffn_depth_must_match_the_npz(model_dir: Path, tmp_path: Path, capsys) -> None:
    def edit(arrays):
        for k in [k for k in arrays if k.endswith("_ffn_W2")]:
            arrays[k[:-1] + "3"] = np.zeros((32, 32), np.float32)

    _rewrite(model_dir, edit)
    assert "--transformer-ffn-depth 2 does not match the npz" in _convert(model_dir, tmp_path, capsys)


def test_missing_vocabulary(model_dir: Path, tmp_path: Path, capsys) -> None:
    for p in model_dir.glob("*.vocab.yml"):
        p.unlink()
    line = _convert(model_dir, tmp_path, capsys)
    assert "vocab.yml" in line and "does not exist" in line


def test_truncated_npz(model_dir: Path, tmp_path: Path, capsys) -> None:
    path = _npz(model_dir)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = _convert(model_dir, tmp_path, capsys)
    assert "cannot be read as a checkpoint" in line and path.name in line


def test_npz_without_model_yml(model_dir: Path, tmp_path: Path, capsys) -> None:
    _rewrite(model_dir, lambda a: a.pop("special:model.yml"))
    assert "special:model.yml" in _convert(model_dir, tmp_path, capsys)


def test_pickled_npz_is_not_loaded(model_dir: Path, tmp_path: Path, capsys) -> None:
    """An object array needs pickle; numpy.load(allow_pickle=False) refuses it."""
    _rewrite(model_dir, lambda a: a.update({"Wemb": np.array([{"x": 1}], dtype=object)}))
    assert "cannot be read as a checkpoint" in _convert(model_dir, tmp_path, capsys)


def test_stray_spm_files_do_not_replace_the_vocabularies_decoder_yml_names(tmp_path: Path) -> None:
    """A source.spm/target.spm beside a model whose decoder.yml names `vocab.spm` were taken instead of it
    (Marian reads only the named vocabulary): every line came out as another model's pieces, exit 0."""
    import modelport

    trained = DATA.parent / "marian-trained"
    shutil.copytree(trained / "tiny11_ssru", tmp_path / "stray")
    for name in ("source.spm", "target.spm"):
        shutil.copy(trained / "post_sep_tied" / name, tmp_path / "stray" / name)
    lines = ["Hello world.", "The house is small."]
    clean = modelport.convert(str(trained / "tiny11_ssru"), tmp_path / "clean")
    stray = modelport.convert(str(tmp_path / "stray"), tmp_path / "stray_port")
    assert [stray.tokenizer.encode(x) for x in lines] == [clean.tokenizer.encode(x) for x in lines]
    assert [h[0].text for h in stray.translate(lines)] == [h[0].text for h in clean.translate(lines)]


def test_a_truncated_opus_mt_sentencepiece_model_is_refused_at_convert(tmp_path: Path, capsys) -> None:
    """OPUS-MT's source.spm was copied without being read: the port converted, and translate failed later."""
    src = tmp_path / "opus"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "marian-trained" / "opus_yaml_multi", src)
    data = (src / "source.spm").read_bytes()
    (src / "source.spm").write_bytes(data[: len(data) // 3])
    line = _convert(src, tmp_path, capsys)
    assert "source.spm` is not a SentencePiece model" in line, line
