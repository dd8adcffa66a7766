"""Write tiny Mesh-TensorFlow-style T5 checkpoints with TensorFlow (test fixtures).

Output (committed): tests/data/t5_tf/{v1_0,v1_1}/ with model.ckpt-1000.index,
two data shards, the ``checkpoint`` state file, operative_config.gin and a
tiny spiece.model. Variable names, layouts ([in, out] kernels, [heads,
buckets] relative bias) and Adafactor slot variables follow the released T5
checkpoints. Only this script and the reference tests import TensorFlow;
modelport reads the result without it.

    .venv/bin/python scripts/make_t5_tf_fixture.py [OUT_DIR]
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = dict(vocab=160, d_model=16, d_kv=4, num_heads=2, d_ff=24, num_layers=2, buckets=32)
_TEXT = ["the quick brown fox jumps over the lazy dog", "hello world this is a test of t5",
         "translate English to German: that is good", "summarize: owning a dog is good for you"] * 20

GIN = """\
# Macros:
# ==============================================================================
d_ff = {d_ff}
d_kv = {d_kv}
d_model = {d_model}
dropout_rate = 0.1
inputs_length = 512
num_heads = {num_heads}
num_layers = {num_layers}

# Parameters for AdafactorOptimizer:
# ==============================================================================
AdafactorOptimizer.beta1 = 0.0
AdafactorOptimizer.decay_rate = 0.8
AdafactorOptimizer.factored = True

# Parameters for Bitransformer:
# ==============================================================================
Bitransformer.shared_embedding = True

# Parameters for DenseReluDense:
# ==============================================================================
DenseReluDense.activation = {activation}
DenseReluDense.dropout_rate = %dropout_rate
DenseReluDense.hidden_size = %d_ff

# Parameters for decoder/LayerStack:
# ==============================================================================
decoder/LayerStack.dropout_rate = %dropout_rate
decoder/LayerStack.norm_epsilon = 1e-06

# Parameters for encoder/LayerStack:
# ==============================================================================
encoder/LayerStack.dropout_rate = %dropout_rate
encoder/LayerStack.norm_epsilon = 1e-06

# Parameters for decoder/make_layer_stack:
# ==============================================================================
decoder/make_layer_stack.block_scope = True
decoder/make_layer_stack.layers = \\
    [@mesh_tensorflow.transformer.transformer_layers.SelfAttention,
     @mesh_tensorflow.transformer.transformer_layers.EncDecAttention,
     @mesh_tensorflow.transformer.transformer_layers.DenseReluDense]
decoder/make_layer_stack.num_layers = %num_layers

# Parameters for SelfAttention:
# ==============================================================================
SelfAttention.attention_kernel_dropout_rate = %dropout_rate
SelfAttention.key_value_size = %d_kv
SelfAttention.num_heads = %num_heads
SelfAttention.relative_attention_num_buckets = {buckets}
SelfAttention.relative_attention_type = 'bias_shared'

# Parameters for Unitransformer:
# ==============================================================================
Unitransformer.d_model = %d_model
Unitransformer.positional_embedding = False
Unitransformer.shared_embedding_and_softmax_weights = {shared}
Unitransformer.z_loss = 0.0001

# Parameters for vocabularies.SentencePieceVocabulary:
# ==============================================================================
vocabularies.SentencePieceVocabulary.extra_ids = 100
vocabularies.SentencePieceVocabulary.sentencepiece_model_file = \\
    'gs://t5-data/vocabs/cc_all.32000/sentencepiece.model'
"""


def variables(gated: bool, untied: bool, seed: int) -> dict[str, np.ndarray]:
    """Mesh-TF variables of a tiny T5, with Adafactor slots and global_step."""
    import tensorflow as tf

    s = SIZES
    rng = np.random.default_rng(seed)
    inner = s["num_heads"] * s["d_kv"]

    def w(*shape: int, std: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    out: dict[str, np.ndarray] = {"shared/embedding": w(s["vocab"], s["d_model"], std=1.0)}
    for side in ("encoder", "decoder"):
        for b in range(s["num_layers"]):
            attns = ["SelfAttention"] + (["EncDecAttention"] if side == "decoder" else [])
            for li, attn in enumerate(attns):
                pre = f"{side}/block_{b:03d}/layer_{li:03d}"
                out[f"{pre}/{attn}/q"] = w(s["d_model"], inner)
                out[f"{pre}/{attn}/k"] = w(s["d_model"], inner)
                out[f"{pre}/{attn}/v"] = w(s["d_model"], inner)
                out[f"{pre}/{attn}/o"] = w(inner, s["d_model"])
                out[f"{pre}/layer_norm/scale"] = 1.0 + w(s["d_model"], std=0.2)
                if b == 0 and attn == "SelfAttention":
                    out[f"{pre}/{attn}/relative_attention_bias"] = w(s["num_heads"], s["buckets"])
            pre = f"{side}/block_{b:03d}/layer_{len(attns):03d}"
            if gated:
                out[f"{pre}/DenseReluDense/wi_0/kernel"] = w(s["d_model"], s["d_ff"])
                out[f"{pre}/DenseReluDense/wi_1/kernel"] = w(s["d_model"], s["d_ff"])
            else:
                out[f"{pre}/DenseReluDense/wi/kernel"] = w(s["d_model"], s["d_ff"])
            out[f"{pre}/DenseReluDense/wo/kernel"] = w(s["d_ff"], s["d_model"])
            out[f"{pre}/layer_norm/scale"] = 1.0 + w(s["d_model"], std=0.2)
        out[f"{side}/final_layer_norm/scale"] = 1.0 + w(s["d_model"], std=0.2)
    if untied:
        out["decoder/logits/kernel"] = w(s["d_model"], s["vocab"])
    # Adafactor keeps factored second moments (row/column) for matrices and a
    # full one for vectors; stored in bfloat16 here to cover that dtype
    slots: dict[str, np.ndarray] = {}
    for name, arr in out.items():
        if arr.ndim == 2:
            slots[f"{name}_slot_vr"] = np.abs(w(arr.shape[0])).astype(tf.bfloat16.as_numpy_dtype)
            slots[f"{name}_slot_vc"] = np.abs(w(arr.shape[1]))
        else:
            slots[f"{name}_slot_v"] = np.abs(w(*arr.shape))
    out.update(slots)
    out["global_step"] = np.array(1000, dtype=np.int64)
    return out


def write_bundle(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """Two shards, merged as TensorFlow's sharded Saver does."""
    import tensorflow as tf

    names = sorted(tensors)
    halves = [names[::2], names[1::2]]
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, part in enumerate(halves):
            p = f"{tmp}/part{i}"
            tf.raw_ops.SaveV2(prefix=p, tensor_names=part, shape_and_slices=[""] * len(part),
                              tensors=[tf.constant(tensors[n]) for n in part])
            parts.append(p)
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=str(prefix),
                                      delete_old_dirs=True)


def write_spm(path: Path) -> None:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_TEXT), model_writer=buf, vocab_size=48,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, normalization_rule_name="identity", minloglevel=2)
    path.write_bytes(buf.getvalue())


def main(out_dir: Path) -> None:
    for name, gated, untied, activation, seed in (("v1_0", False, False, "'relu'", 0),
                                                   ("v1_1", True, True, "['gelu', 'linear']", 1)):
        d = out_dir / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        write_bundle(d / "model.ckpt-1000", variables(gated, untied, seed))
        (d / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1000"\n'
                                      'all_model_checkpoint_paths: "model.ckpt-1000"\n')
        (d / "operative_config.gin").write_text(GIN.format(**SIZES, activation=activation,
                                                           shared=str(not untied)))
        write_spm(d / "spiece.model")
        print(f"wrote {d}: " + ", ".join(f"{p.name} ({p.stat().st_size} B)" for p in sorted(d.iterdir())))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "t5_tf")
