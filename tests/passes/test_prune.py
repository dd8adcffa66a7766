"""Pruning on the embedded trained model: layers (distilBART table), FFN
neurons (weight magnitude), attention heads (weight magnitude, and Michel et
al. 2019 gradient importance with per-layer counts) and the vocabulary."""

from __future__ import annotations

import json
import math

import pytest
import torch

import modelport
import modelport.cli
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS, ROOT
from tests.helpers.requires import requires
from modelport.errors import ConfigError
from modelport.model.config import Seq2SeqConfig
from modelport.model.layers import Attention
from modelport.model.transformer import Seq2SeqModel
from modelport.passes.prune import head_gates, layers_to_keep
from modelport.generation.scoring import teacher_forcing_batch

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:50]
REFS = (CORPUS / "test.de").read_text(encoding="utf-8").splitlines()[:50]
DATA = (CORPUS / "valid.en").read_text(encoding="utf-8").splitlines()[:24]  # head importance


def _batch(ported: modelport.PortedModel, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing inputs of ``n`` test lines and their reference translations."""
    tok, cfg = ported.tokenizer, ported.config
    src, prev, _ = teacher_forcing_batch([tok.encode(x) for x in LINES[:n]],
                                         [tok.encode_target(x) for x in REFS[:n]],
                                         cfg.pad_token_id, cfg.decoder_start_token_id)
    return src, prev


@torch.no_grad()
def _logits(model: torch.nn.Module, src: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    return model(src, prev)


def _attention_count(cfg: Seq2SeqConfig) -> int:
    return cfg.encoder_layers + 2 * cfg.decoder_layers


# ---------------------------------------------------------------------------
# config: per-layer head counts


def test_per_layer_heads_round_trip_and_old_configs_load() -> None:
    base = dict(encoder_layers=2, decoder_layers=3, d_model=16, encoder_heads=4, decoder_heads=4,
                encoder_ffn_dim=32, decoder_ffn_dim=32, source_vocab_size=20, target_vocab_size=20)
    cfg = Seq2SeqConfig(**base, head_dim=4, encoder_layer_heads=(1, 4), decoder_layer_heads=(2, 3, 4),
                        cross_layer_heads=(4, 1, 1))
    again = Seq2SeqConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.layer_heads("cross") == (4, 1, 1)
    old = Seq2SeqConfig.from_dict(base)  # a config.json written before the fields existed
    assert old.layer_heads("encoder") == (4, 4) and old.layer_heads("cross") == (4, 4, 4)
    with pytest.raises(ConfigError, match=r"`decoder_layer_heads` must have one count per decoder layer \(3\)"):
        Seq2SeqConfig(**base, head_dim=4, decoder_layer_heads=(2, 3))
    with pytest.raises(ConfigError, match="count must be an integer >= 1"):
        Seq2SeqConfig(**base, head_dim=4, encoder_layer_heads=(0, 4))
    with pytest.raises(ConfigError, match="`head_dim` must be given"):
        Seq2SeqConfig(**base, cross_layer_heads=(4, 2, 4))


def test_model_builds_each_layer_with_its_head_count() -> None:
    cfg = Seq2SeqConfig(encoder_layers=2, decoder_layers=2, d_model=16, encoder_heads=4, decoder_heads=4,
                        encoder_ffn_dim=32, decoder_ffn_dim=32, source_vocab_size=20, target_vocab_size=20,
                        head_dim=4, encoder_layer_heads=(1, 3), decoder_layer_heads=(2, 4), cross_layer_heads=(3, 1))
    model = Seq2SeqModel(cfg).eval()
    got = [(name, m.heads, m.q_proj.out_features) for name, m in model.named_modules() if isinstance(m, Attention)]
    assert got == [("encoder.layers.0.self_attn", 1, 4), ("encoder.layers.1.self_attn", 3, 12),
                   ("decoder.layers.0.self_attn", 2, 8), ("decoder.layers.0.cross_attn", 3, 12),
                   ("decoder.layers.1.self_attn", 4, 16), ("decoder.layers.1.cross_attn", 1, 4)]
    logits = _logits(model, torch.tensor([[5, 6, 2]]), torch.tensor([[2, 7]]))
    assert logits.shape == (1, 2, 20) and torch.isfinite(logits).all()


# ---------------------------------------------------------------------------
# layers


@pytest.mark.parametrize("teacher, student, kept", [(12, 6, [0, 2, 4, 7, 9, 11]), (12, 3, [0, 6, 11]),
                                                    (6, 3, [0, 2, 5]), (3, 1, [0]), (3, 2, [0, 2]),
                                                    (5, 3, [0, 2, 4])])
def test_layer_table(teacher, student, kept) -> None:
    assert layers_to_keep(teacher, student) == kept


def test_decoder_shrink_copies_the_tabled_layers(ported_default, tmp_path) -> None:
    out = tmp_path / "small"
    report = modelport.prune(ported_default.path, out, decoder_layers=2)
    small = modelport.load(out)
    assert small.config.decoder_layers == 2 and small.config.encoder_layers == 3
    teacher = ported_default.model.state_dict()
    student = small.model.state_dict()
    for new, old in enumerate([0, 2]):
        for key, value in student.items():
            if key.startswith(f"decoder.layers.{new}."):
                assert torch.equal(value, teacher[key.replace(f"layers.{new}.", f"layers.{old}.")])
    layer_params = sum(v.numel() for k, v in teacher.items() if k.startswith("decoder.layers.1."))
    assert report["parameters"]["before"] - report["parameters"]["after"] == layer_params
    assert small.translate(LINES[:1])[0][0]["text"]


# ---------------------------------------------------------------------------
# FFN


def test_ffn_prune_removes_the_smallest_neurons(ported_default, tmp_path) -> None:
    out = tmp_path / "ffn"
    report = modelport.prune(ported_default.path, out, ffn=0.25)
    assert "||up[i,:]|| * ||down[:,i]||" in report["pass"]["changed"]["ffn_criterion"]
    small = modelport.load(out)
    d, width = ported_default.config.d_model, ported_default.config.encoder_ffn_dim
    removed = round(0.25 * width)
    assert small.config.encoder_ffn_dim == small.config.decoder_ffn_dim == width - removed
    teacher, student = ported_default.model.state_dict(), small.model.state_dict()
    masked = modelport.load(ported_default.path)  # the original, removed neurons' outputs zeroed
    for prefix in [f"{side}.layers.{i}.ffn" for side in ("encoder", "decoder") for i in range(3)]:
        up, down = teacher[f"{prefix}.up.weight"], teacher[f"{prefix}.down.weight"]
        score = up.norm(dim=1) * down.norm(dim=0)
        kept = sorted(score.argsort(descending=True)[: width - removed].tolist())
        assert torch.equal(student[f"{prefix}.up.weight"], up[kept])
        assert torch.equal(student[f"{prefix}.up.bias"], teacher[f"{prefix}.up.bias"][kept])
        assert torch.equal(student[f"{prefix}.down.weight"], down[:, kept])
        assert torch.equal(student[f"{prefix}.down.bias"], teacher[f"{prefix}.down.bias"])
        gone = [i for i in range(width) if i not in kept]
        with torch.no_grad():
            masked.model.get_submodule(prefix).down.weight[:, gone] = 0.0
    layers = ported_default.config.encoder_layers + ported_default.config.decoder_layers
    assert report["parameters"]["before"] - report["parameters"]["after"] == layers * removed * (2 * d + 1)
    src, prev = _batch(ported_default)
    assert (_logits(small.model, src, prev) - _logits(masked.model, src, prev)).abs().max() <= 1e-5
    assert (_logits(small.model, src, prev) - _logits(ported_default.model, src, prev)).abs().max() > 1e-3
    assert small.translate(LINES[:1])[0][0]["text"]


# ---------------------------------------------------------------------------
# heads by weight magnitude (no data)


def test_head_prune_removes_whole_heads_and_quantizes(ported_default, tmp_path) -> None:
    out = tmp_path / "heads"
    report = modelport.prune(ported_default.path, out, heads=0.5)
    assert "no --data" in report["pass"]["changed"]["heads_criterion"]
    small = modelport.load(out)
    cfg = ported_default.config
    hd = cfg.d_model // cfg.encoder_heads
    assert (small.config.encoder_heads, small.config.decoder_heads, small.config.head_dim) == (2, 2, hd)
    assert small.config.encoder_layer_heads is None and small.config.cross_layer_heads is None
    teacher, student = ported_default.model.state_dict(), small.model.state_dict()
    prefix = "decoder.layers.1.cross_attn"
    v, o = teacher[f"{prefix}.v_proj.weight"], teacher[f"{prefix}.out_proj.weight"]
    score = torch.tensor([v[h * hd:(h + 1) * hd].norm() * o[:, h * hd:(h + 1) * hd].norm() for h in range(4)])
    kept = sorted(score.argsort(descending=True)[:2].tolist())
    assert report["pass"]["changed"]["heads_removed"][prefix] == [h for h in range(4) if h not in kept]
    rows = [h * hd + i for h in kept for i in range(hd)]
    for name in ("q_proj", "k_proj", "v_proj"):
        assert torch.equal(student[f"{prefix}.{name}.weight"], teacher[f"{prefix}.{name}.weight"][rows])
        assert torch.equal(student[f"{prefix}.{name}.bias"], teacher[f"{prefix}.{name}.bias"][rows])
    assert torch.equal(student[f"{prefix}.out_proj.weight"], o[:, rows])
    per_attention = 4 * len(rows) * cfg.d_model + 3 * len(rows)
    assert report["parameters"]["before"] - report["parameters"]["after"] == _attention_count(cfg) * per_attention
    modelport.quantize(out, tmp_path / "heads-int8", mode="int8")
    assert modelport.load(tmp_path / "heads-int8").translate(LINES[:1])[0][0]["text"]


# ---------------------------------------------------------------------------
# heads by gradient importance (Michel et al. 2019)


@pytest.fixture(scope="module")
def gradient_pruned(ported_default, tmp_path_factory):
    out = tmp_path_factory.mktemp("prune") / "michel"
    return out, modelport.prune(ported_default.path, out, heads=0.5, data=DATA)


def test_gradient_pruning_equals_gating_the_removed_heads(ported_default, gradient_pruned) -> None:
    out, report = gradient_pruned
    removed = report["pass"]["changed"]["heads_removed"]
    small = modelport.load(out)
    src, prev = _batch(ported_default)
    reference = modelport.load(ported_default.path).model
    with head_gates(reference) as gates:
        assert set(removed) <= set(gates) and len(gates) == _attention_count(ported_default.config)
        ungated = _logits(reference, src, prev)
        with torch.no_grad():
            for name, heads in removed.items():
                gates[name][heads] = 0.0
        gated = _logits(reference, src, prev)
    assert all(m.head_gate is None for m in reference.modules() if isinstance(m, Attention))
    assert (_logits(reference, src, prev) - ungated).abs().max() == 0  # gates gone: the original again
    pruned = _logits(small.model, src, prev)
    assert (pruned - gated).abs().max() <= 1e-5
    assert (pruned - ungated).abs().max() > 1e-3


def test_gradient_pruning_gives_per_layer_counts(ported_default, gradient_pruned) -> None:
    out, report = gradient_pruned
    changed = report["pass"]["changed"]
    assert changed["heads_criterion"].startswith("Michel et al. 2019")
    small = modelport.load(out)
    cfg, new = ported_default.config, small.config
    total = 4 * _attention_count(cfg)
    assert changed["heads"] == [total, total - round(0.5 * total)]
    counts = {f"encoder.layers.{i}.self_attn": n for i, n in enumerate(new.layer_heads("encoder"))}
    counts |= {f"decoder.layers.{i}.self_attn": n for i, n in enumerate(new.layer_heads("decoder"))}
    counts |= {f"decoder.layers.{i}.cross_attn": n for i, n in enumerate(new.layer_heads("cross"))}
    assert counts == {name: 4 - len(changed["heads_removed"].get(name, [])) for name in counts}
    assert len(set(counts.values())) > 1 and min(counts.values()) >= 1
    assert new.head_dim == cfg.d_model // 4
    saved = json.loads((out / "config.json").read_text())["model"]
    assert saved["cross_layer_heads"] == list(new.layer_heads("cross"))
    hd = cfg.d_model // 4
    per_head = 4 * hd * cfg.d_model + 3 * hd  # q/k/v rows with biases, out_proj columns
    assert report["parameters"]["before"] - report["parameters"]["after"] == round(0.5 * total) * per_head
    # a kept head keeps its weights
    name, gone = next(iter(changed["heads_removed"].items()))
    kept = [h for h in range(4) if h not in gone]
    rows = [h * hd + i for h in kept for i in range(hd)]
    teacher, student = ported_default.model.state_dict(), small.model.state_dict()
    assert torch.equal(student[f"{name}.q_proj.weight"], teacher[f"{name}.q_proj.weight"][rows])
    assert torch.equal(student[f"{name}.out_proj.weight"], teacher[f"{name}.out_proj.weight"][:, rows])
    assert report["agreement"]["lines"] == len(DATA)
    assert small.translate(LINES[:2])[0][0]["text"]


@pytest.mark.parametrize("fraction", [0.25, 0.7])
def test_gradient_schedule_steps_of_ten_percent(ported_default, tmp_path, fraction) -> None:
    report = modelport.prune(ported_default.path, tmp_path / "out", heads=fraction, data=DATA[:8])
    changed = report["pass"]["changed"]
    total = 4 * _attention_count(ported_default.config)
    steps = changed["heads_removed_per_step"]
    assert len(steps) == math.ceil(fraction / 0.1)
    cumulative = [sum(steps[: i + 1]) for i in range(len(steps))]
    assert cumulative == [round(min((i + 1) * 0.1, fraction) * total) for i in range(len(steps))]
    assert all(len(heads) < 4 for heads in changed["heads_removed"].values())  # a head left everywhere
    new = modelport.load(tmp_path / "out").config
    assert min(new.layer_heads("encoder") + new.layer_heads("decoder") + new.layer_heads("cross")) >= 1


def test_first_step_removes_the_least_important_heads(ported_default, tmp_path) -> None:
    """One step (--heads 0.1): the removed heads are the lowest of |dNLL/dgate|
    normalised per attention, computed here with the folder's translations as targets."""
    lines = DATA[:8]
    report = modelport.prune(ported_default.path, tmp_path / "out", heads=0.1, data=lines)
    tok, cfg = ported_default.tokenizer, ported_default.config
    hyps = [h[0]["tokens"] for h in ported_default.translate(lines)]
    src, prev, _ = teacher_forcing_batch([tok.encode(x) for x in lines], hyps, cfg.pad_token_id,
                                         cfg.decoder_start_token_id)
    gold = torch.full(prev.shape, -100)
    for i, h in enumerate(hyps):
        gold[i, : len(h)] = torch.tensor(h)
    model = modelport.load(ported_default.path).model
    with head_gates(model) as gates:
        loss = torch.nn.functional.cross_entropy(model(src, prev).transpose(1, 2), gold, ignore_index=-100)
        grads = torch.autograd.grad(loss, list(gates.values()))
    scores = [(float(g.abs()[h] / g.abs().norm()), name, h) for name, g in zip(gates, grads) for h in range(4)]
    expected: dict[str, list[int]] = {}
    for _, name, h in sorted(scores)[: round(0.1 * len(scores))]:
        expected.setdefault(name, []).append(h)
    assert report["pass"]["changed"]["heads_removed"] == {k: sorted(v) for k, v in expected.items()}


# ---------------------------------------------------------------------------
# vocabulary


@pytest.fixture(scope="module")
def trimmed(ported_default, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vocab")
    (folder / "in-domain.en").write_text("\n".join(LINES[:20]) + "\n", encoding="utf-8")
    report = modelport.prune(ported_default.path, folder / "out", vocab_from=folder / "in-domain.en")
    return modelport.load(folder / "out"), report


def test_vocab_keeps_in_domain_tokens_and_outputs(ported_default, trimmed) -> None:
    small, report = trimmed
    before, after = ported_default.tokenizer, small.tokenizer
    cfg, new = ported_default.config, small.config
    assert new.source_vocab_size == len(after.source_dict) < cfg.source_vocab_size
    assert new.target_vocab_size == len(after.target_dict) < cfg.target_vocab_size
    assert (new.pad_token_id, new.eos_token_id, new.unk_token_id, new.bos_token_id) == (1, 2, 3, 0)
    for line in LINES[:20]:
        old_ids, new_ids = before.encode(line), after.encode(line)
        assert after.id_to_tokens(new_ids) == before.id_to_tokens(old_ids)
        assert after.unk_id not in new_ids or before.unk_id in old_ids
    # The removed tokens' share of each softmax is gone, so scores shift a little: outputs stay the
    # same except near-ties, where the trimmed model picks the original's runner-up.
    ours = ported_default.translate(LINES[:20], nbest=5)
    theirs = [h[0] for h in small.translate(LINES[:20])]
    same = 0
    for nbest, b in zip(ours, theirs):
        a = next(h for h in nbest if h["text"] == b["text"])
        assert a["score"] >= nbest[0]["score"] - 0.01, (b["text"], nbest[0]["text"])
        assert after.id_to_tokens(b["tokens"], side="target") == before.id_to_tokens(a["tokens"], side="target")
        same += a is nbest[0]
    assert same >= 18
    removed = (cfg.source_vocab_size - new.source_vocab_size) + (cfg.target_vocab_size - new.target_vocab_size)
    assert report["parameters"]["before"] - report["parameters"]["after"] == removed * cfg.d_model
    assert report["pass"]["changed"]["target_vocab_size"] == [cfg.target_vocab_size, new.target_vocab_size]


def test_vocab_pieces_outside_the_text_read_unk(ported_default, trimmed) -> None:
    small, _ = trimmed
    before, after = ported_default.tokenizer, small.tokenizer
    train = (CORPUS / "train.en").read_text(encoding="utf-8").splitlines()[:2000]
    line = next(x for x in train if before.unk_id not in before.encode(x)
                and any(p not in after.source_dict for p in before.id_to_tokens(before.encode(x))))
    old = before.id_to_tokens(before.encode(line))
    new = after.id_to_tokens(after.encode(line))
    assert len(new) == len(old) and "<unk>" in new
    assert new == [p if p in after.source_dict else "<unk>" for p in old]
    assert small.translate([line])[0][0]["text"]


@requires('fairseq')
def test_vocab_keeps_a_shared_embedding_tied(tmp_path) -> None:
    from tests.helpers.fairseq_ref import build_fairseq_model

    build_fairseq_model(tmp_path / "src", share_all_embeddings=True, src_vocab=44)
    ported = modelport.convert(str(tmp_path / "src"), tmp_path / "ported", source_lang="en", target_lang="de")
    assert ported.config.shared_embeddings
    (tmp_path / "text").write_text("w1 w5 w7\nw2 w9\n", encoding="utf-8")
    modelport.prune(ported.path, tmp_path / "out", vocab_from=tmp_path / "text")
    small = modelport.load(tmp_path / "out")
    assert small.config.source_vocab_size == small.config.target_vocab_size < 44
    assert small.model.encoder.embed.embed_tokens is small.model.decoder.embed.embed_tokens
    assert small.tokenizer.source_dict.symbols == small.tokenizer.target_dict.symbols
    for word in ("w1", "w5", "w7", "w2", "w9"):
        assert word in small.tokenizer.source_dict
    outputs = ported.translate(["w1 w5 w7", "w2 w9"])
    assert [h[0]["text"] for h in small.translate(["w1 w5 w7", "w2 w9"])] == [h[0]["text"] for h in outputs]


def test_vocab_refuses_sentencepiece(tmp_path, capsys) -> None:
    ported = modelport.convert(str(ROOT / "tests" / "data" / "marian" / "post_untied_relu"), tmp_path / "m")
    (tmp_path / "text").write_text("a line\n", encoding="utf-8")
    line = one_line_error(["prune", str(ported.path), str(tmp_path / "out"), "--vocab-from",
                           str(tmp_path / "text")], capsys)
    assert "marian_spm" in line and "fairseq_moses_bpe" in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# bad options


@pytest.mark.parametrize("argv, expected", [
    (["--decoder-layers", "7"], "[1, 3]"),
    ([], "nothing to prune"),
    (["--heads", "1.0"], "(0, 1)"),
    (["--heads", "0"], "(0, 1)"),
    (["--heads", "-0.2", "--data", "DATA"], "(0, 1)"),
    (["--heads", "0.9", "--data", "DATA"], "keeps at least one"),
    (["--ffn", "1e-4"], "removes no FFN neuron"),
    (["--ffn", "1"], "(0, 1)"),
    (["--vocab-from", "no-such-file"], "is not a file"),
])
def test_bad_prune_options(ported_default, tmp_path, capsys, argv, expected) -> None:
    data = tmp_path / "data.en"
    data.write_text("\n".join(LINES[:2]) + "\n", encoding="utf-8")
    argv = [str(data) if a == "DATA" else str(tmp_path / a) if a == "no-such-file" else a for a in argv]
    assert expected in one_line_error(["prune", str(ported_default.path), str(tmp_path / "out"), *argv], capsys)
    assert not (tmp_path / "out").exists()


def test_unparsable_prune_value_exits_2(ported_default, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:  # argparse rejects it itself, with its usage line
        modelport.cli.main(["prune", str(ported_default.path), str(tmp_path / "out"), "--heads", "half"])
    assert info.value.code == 2
    assert "invalid float value: 'half'" in capsys.readouterr().err
