"""Mesh-TensorFlow T5 checkpoints: the fixtures in tests/data/t5_tf were
written by TensorFlow (scripts/make_t5_tf_fixture.py); modelport reads them
without TensorFlow. TensorFlow is the reference for the tensors, transformers
for the model built from the same weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import modelport
from modelport.converters.tf_checkpoint import TFCheckpoint
from tests.helpers.cli import one_line_error  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "t5_tf"
FIXTURES = ["v1_0", "v1_1"]
PREFIX = "model.ckpt-1000"


def _tf():
    return pytest.importorskip("tensorflow")


def _one_line_error(argv: list[str], capsys) -> str:
    return one_line_error(argv, capsys)


@pytest.fixture()
def ckpt_copy(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "v1_0", tmp_path / "ckpt")
    return tmp_path / "ckpt"


@pytest.mark.parametrize("name", FIXTURES)
def test_reader_matches_tensorflow_bit_for_bit(name: str) -> None:
    tf = _tf()
    reader = tf.train.load_checkpoint(str(DATA / name / PREFIX))
    expected = reader.get_variable_to_shape_map()
    ours = TFCheckpoint(DATA / name)
    assert ours.num_shards == 2
    assert sorted(ours.names()) == sorted(expected)
    dtypes = reader.get_variable_to_dtype_map()
    assert any(dtypes[n] == tf.bfloat16 for n in expected) and any(dtypes[n] == tf.int64 for n in expected)
    for var in expected:
        ref = np.asarray(reader.get_tensor(var))
        got = ours.read(var)
        assert list(got.shape) == list(ref.shape), var
        got_bytes = got.view(torch.int16).numpy().tobytes() if got.dtype == torch.bfloat16 else got.numpy().tobytes()
        assert got_bytes == ref.tobytes(), var


def _hf_from_tf(name: str):
    """transformers' T5 with the fixture's weights, loaded by TensorFlow and
    placed the way transformers' own TF loader (load_tf_weights_in_t5) did:
    every variable but the embedding transposed, ``rms/layer_norm scale`` ->
    ``layer_norm.weight``, ``decoder/logits`` -> ``lm_head``."""
    tf = _tf()
    transformers = pytest.importorskip("transformers")
    reader = tf.train.load_checkpoint(str(DATA / name / PREFIX))
    gated = name == "v1_1"
    cfg = transformers.T5Config(vocab_size=160, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_heads=2,
                                relative_attention_num_buckets=32, dropout_rate=0.0,
                                feed_forward_proj="gated-gelu" if gated else "relu",
                                tie_word_embeddings=not gated)
    model = transformers.T5ForConditionalGeneration(cfg).eval()
    if gated:  # transformers ties lm_head at construction; a real v1.1 load unties it
        model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.lm_head.weight))
    state = {}
    for var in reader.get_variable_to_shape_map():
        if "_slot_" in var or var == "global_step":
            continue
        arr = torch.from_numpy(np.asarray(reader.get_tensor(var), dtype=np.float32))
        parts = var.split("/")
        if var == "shared/embedding":
            state["shared.weight"] = arr
            continue
        if var == "decoder/logits/kernel":
            state["lm_head.weight"] = arr.T
            continue
        if parts[1] == "final_layer_norm":
            state[f"{parts[0]}.final_layer_norm.weight"] = arr
            continue
        side, block, layer = parts[0], int(parts[1][6:]), int(parts[2][6:])
        key = f"{side}.block.{block}.layer.{layer}." + ".".join(p for p in parts[3:] if p != "kernel")
        key = key.replace("layer_norm.scale", "layer_norm") + ".weight"
        state[key] = arr.T if arr.dim() == 2 else arr
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    assert set(missing) <= {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}
    if not gated:
        model.lm_head.weight = model.shared.weight
    model.encoder.embed_tokens.weight = model.shared.weight
    model.decoder.embed_tokens.weight = model.shared.weight
    return model


@pytest.mark.parametrize("name", FIXTURES)
def test_converted_matches_transformers_from_same_weights(tmp_path: Path, name: str) -> None:
    ref = _hf_from_tf(name)
    model = modelport.convert(str(DATA / name), tmp_path / "out").model
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, 160, (2, 9), generator=g)
    src[1, 5:] = 0
    tgt = torch.cat([torch.zeros(2, 1, dtype=torch.long), torch.randint(3, 160, (2, 5), generator=g)], dim=1)
    with torch.no_grad():
        expected = ref(input_ids=src, attention_mask=src.ne(0).long(), decoder_input_ids=tgt).logits
        got = model(src, tgt)
    assert (got - expected).abs().max().item() <= 1e-4


def test_conversion_drops_optimizer_slots_with_reason(tmp_path: Path) -> None:
    ported = modelport.convert(str(DATA / "v1_1"), tmp_path / "out")
    dropped = ported.conversion["dropped"]
    assert "Adafactor" in dropped["shared/embedding_slot_vr"]
    assert "global_step" in dropped
    assert not ported.config.tie_output_embeddings and ported.config.output_scale == 1.0
    assert (ported.tokenizer_dir / "spiece.model").is_file()


# ---------------------------------------------------------------------------
# bad input


def test_corrupt_index(ckpt_copy: Path, tmp_path: Path, capsys) -> None:
    index = ckpt_copy / f"{PREFIX}.index"
    raw = bytearray(index.read_bytes())
    raw[100] ^= 0xFF
    index.write_bytes(bytes(raw))
    line = _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
    assert "not a valid checkpoint index" in line and "checksum" in line
    index.write_bytes(bytes(raw[:-20]))
    line = _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
    assert "not a valid checkpoint index" in line
    assert not (tmp_path / "out").exists()


def test_missing_data_shard(ckpt_copy: Path, tmp_path: Path, capsys) -> None:
    (ckpt_copy / f"{PREFIX}.data-00001-of-00002").unlink()
    line = _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
    assert "data-00001-of-00002" in line and "missing" in line


def test_corrupt_tensor_data(ckpt_copy: Path, tmp_path: Path, capsys) -> None:
    shard = ckpt_copy / f"{PREFIX}.data-00000-of-00002"
    raw = bytearray(shard.read_bytes())
    raw[10] ^= 0x01
    shard.write_bytes(bytes(raw))
    line = _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
    assert "checksum mismatch" in line


def test_unknown_variable(ckpt_copy: Path, tmp_path: Path, capsys) -> None:
    tf = _tf()
    reader = tf.train.load_checkpoint(str(ckpt_copy / PREFIX))
    names = list(reader.get_variable_to_shape_map())
    tensors = [tf.constant(reader.get_tensor(n)) for n in names]
    names.append("encoder/block_000/layer_000/SelfAttention/gate")
    tensors.append(tf.zeros((16, 8)))
    for f in ckpt_copy.glob(f"{PREFIX}.*"):
        f.unlink()
    tf.raw_ops.SaveV2(prefix=str(ckpt_copy / PREFIX), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    line = _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
    assert "Mesh-TF variable `encoder/block_000/layer_000/SelfAttention/gate` has no slot" in line


def test_unsupported_gin_activation(ckpt_copy: Path, tmp_path: Path, capsys) -> None:
    gin = ckpt_copy / "operative_config.gin"
    gin.write_text(gin.read_text().replace("DenseReluDense.activation = 'relu'",
                                           "DenseReluDense.activation = ['relu', 'linear']"))
    line = _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
    assert "DenseReluDense.activation = ['relu', 'linear'] is not supported" in line


@pytest.mark.parametrize("binding,message", [
    (b"x = '\xff'", "must be UTF-8 text, but has byte 0xff"),
    (b"SelfAttention.relative_attention_num_buckets = 'x'", "relative_attention_num_buckets = 'x' must be a positive"),
    (b"LayerStack.norm_epsilon = [1]", "LayerStack.norm_epsilon = [1] must be a number > 0"),
    # these three were read as 100 sentinels: the port's sentinel ids then named other pieces
    (b"vocabularies.SentencePieceVocabulary.extra_ids = %EXTRA", "extra_ids = %EXTRA is not supported"),
    (b"vocabularies.SentencePieceVocabulary.extra_ids = -3", "extra_ids = -3 is not supported"),
    (b"vocabularies.SentencePieceVocabulary.extra_ids = True", "extra_ids = True is not supported"),
])
def test_gin_values_of_the_wrong_kind(binding: bytes, message: str, ckpt_copy: Path, tmp_path: Path, capsys) -> None:
    """Each was a traceback (UnicodeDecodeError, TypeError) deep in the converter, or a silent default."""
    gin = ckpt_copy / "operative_config.gin"
    gin.write_bytes(gin.read_bytes() + b"\n" + binding + b"\n")
    assert message in _one_line_error(["convert", str(ckpt_copy), str(tmp_path / "out")], capsys)
