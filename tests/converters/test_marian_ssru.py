"""Marian's SSRU decoder (``transformer-decoder-autoreg: rnn``, ``dec-cell: ssru``).

No converter or library runs these models (CTranslate2 refuses them,
transformers has no class), so the reference is a plain numpy transcription
of Marian's forward pass that reads the npz by Marian's tensor names and
imports nothing from modelport:

* ``src/models/transformer.h``: embeddings scaled by sqrt(dim) plus Marian's
  sinusoid (sines then cosines, frequencies over ``dim/2 - 1``, positions
  from 0); the decoder starts from an all-zero embedding; post-norm ``dan``
  sublayers (residual, then layer norm with eps 1e-6); ``DecoderLayerRNN``:
  the cell's output plus the block input, normalised under ``..._rnn_ffn``,
  no output projection, state starting at zeros (``startState``); output
  layer tied to ``Wemb`` plus ``decoder_ff_logit_out_b``;
* ``src/rnn/cells.h`` ``SSRU``: ``c_t = highway(c_{t-1}, x W, x Wf + bf)``,
  ``h_t = relu(c_t)``, with ``highway(y, x, t) = sigmoid(t) y + (1 -
  sigmoid(t)) x`` (``HighwayForward``, ``src/tensors/cpu/tensor_operators.cpp``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import modelport
from tests.helpers.cli import one_line_error
from modelport.generation import generate

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "marian" / "post_ssru_relu"
TOL = 1e-4
N_LINES = 3


# ---------------------------------------------------------------------------
# the independent numpy reference


def _npz() -> dict[str, np.ndarray]:
    name = yaml.safe_load((FIXTURE / "decoder.yml").read_text())["models"][0]
    with np.load(FIXTURE / name, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


class MarianSSRUReference:
    """Marian's forward pass for a post-norm, tied-all, sinusoidal transformer
    with an SSRU decoder, in float64 numpy."""

    def __init__(self, w: dict[str, np.ndarray]) -> None:
        self.w = {k: v.astype(np.float64) for k, v in w.items() if k != "special:model.yml"}
        self.opts = yaml.safe_load(w["special:model.yml"].tobytes().split(b"\0", 1)[0])
        o = self.opts
        assert o["transformer-decoder-autoreg"] == "rnn" and o["dec-cell"] == "ssru"
        assert o["tied-embeddings-all"] and o["transformer-preprocess"] == "" and o["transformer-postprocess"] == "dan"
        self.dim, self.heads = o["dim-emb"], o["transformer-heads"]
        self.act = {"relu": lambda x: np.maximum(x, 0.0), "swish": lambda x: x / (1 + np.exp(-x))}[
            o["transformer-ffn-activation"]]

    def _sinusoid(self, n: int) -> np.ndarray:
        half = self.dim // 2
        inc = math.log(10000.0) / (half - 1)
        pos = np.arange(n)[:, None] * np.exp(np.arange(half) * -inc)[None, :]
        return np.concatenate([np.sin(pos), np.cos(pos)], axis=1)

    def _ln(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-6) * self.w[prefix + "_ln_scale"] + self.w[prefix + "_ln_bias"]

    def _attention(self, prefix: str, q_in: np.ndarray, kv: np.ndarray, causal: bool) -> np.ndarray:
        w, h = self.w, self.heads
        dk = self.dim // h
        q = (q_in @ w[prefix + "_Wq"] + w[prefix + "_bq"]).reshape(len(q_in), h, dk).transpose(1, 0, 2)
        k = (kv @ w[prefix + "_Wk"] + w[prefix + "_bk"]).reshape(len(kv), h, dk).transpose(1, 0, 2)
        v = (kv @ w[prefix + "_Wv"] + w[prefix + "_bv"]).reshape(len(kv), h, dk).transpose(1, 0, 2)
        z = q @ k.transpose(0, 2, 1) / math.sqrt(dk)
        if causal:
            z = z + np.triu(np.full((len(q_in), len(kv)), -np.inf), 1)
        a = np.exp(z - z.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        out = (a @ v).transpose(1, 0, 2).reshape(len(q_in), self.dim)
        return out @ w[prefix + "_Wo"] + w[prefix + "_bo"]

    def _ffn(self, prefix: str, x: np.ndarray) -> np.ndarray:
        w = self.w
        return self.act(x @ w[prefix + "_W1"] + w[prefix + "_b1"]) @ w[prefix + "_W2"] + w[prefix + "_b2"]

    def _ssru(self, prefix: str, x: np.ndarray) -> np.ndarray:
        w = self.w
        xw = x @ w[prefix + "_W"]
        f = 1.0 / (1.0 + np.exp(-(x @ w[prefix + "_Wf"] + w[prefix + "_bf"])))
        c = np.zeros(self.dim)  # startState: zeros
        out = []
        for t in range(len(x)):
            c = f[t] * c + (1.0 - f[t]) * xw[t]  # highway(c, xW, f)
            out.append(np.maximum(c, 0.0))  # relu
        return np.stack(out)

    def encode(self, src: list[int]) -> np.ndarray:
        w, o = self.w, self.opts
        x = w["Wemb"][src] * math.sqrt(self.dim) + self._sinusoid(len(src))
        for i in range(1, o["enc-depth"] + 1):
            p = f"encoder_l{i}"
            x = self._ln(self._attention(p + "_self", x, x, causal=False) + x, p + "_self_Wo")
            x = self._ln(self._ffn(p + "_ffn", x) + x, p + "_ffn_ffn")
        return x

    def logits(self, src: list[int], prev: list[int]) -> np.ndarray:
        """Logits ``[len(prev), dim-vocab]``; ``prev[0]`` is the start slot (a zero embedding)."""
        w, o = self.w, self.opts
        enc = self.encode(src)
        # the start slot is not a token (the port gives it the appended pad id)
        emb = np.concatenate([np.zeros((1, self.dim)), w["Wemb"][prev[1:]]])
        x = emb * math.sqrt(self.dim) + self._sinusoid(len(prev))
        for i in range(1, o["dec-depth"] + 1):
            p = f"decoder_l{i}"
            x = self._ln(self._ssru(p + "_rnn", x) + x, p + "_rnn_ffn")
            x = self._ln(self._attention(p + "_context", x, enc, causal=False) + x, p + "_context_Wo")
            x = self._ln(self._ffn(p + "_ffn", x) + x, p + "_ffn_ffn")
        return x @ w["Wemb"].T + w["decoder_ff_logit_out_b"]

    def log_probs(self, src: list[int], prev: list[int]) -> np.ndarray:
        z = self.logits(src, prev)
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> modelport.PortedModel:
    return modelport.convert(str(FIXTURE), tmp_path_factory.mktemp("ssru") / "ported")


@pytest.fixture(scope="module")
def reference() -> MarianSSRUReference:
    return MarianSSRUReference(_npz())


def _pairs(p: modelport.PortedModel) -> list[tuple[list[int], list[int]]]:
    corpus = ROOT / "assets" / "corpus"
    en = (corpus / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]
    de = (corpus / "test.de").read_text(encoding="utf-8").splitlines()[:N_LINES]
    return [(p.tokenizer.encode(s), p.tokenizer.encode_target(t)) for s, t in zip(en, de)]


# ---------------------------------------------------------------------------
# tests


def test_config_and_tensors(ported) -> None:
    assert ported.config.decoder_autoreg == "ssru"
    model = ported.models[0]
    assert model.decoder.layers[0].self_attn is None
    w = _npz()
    # Marian's W is [in, out]; the unified Linear is [out, in]
    np.testing.assert_array_equal(model.decoder.layers[1].ssru.in_proj.weight.detach().numpy(),
                                  w["decoder_l2_rnn_W"].T)
    np.testing.assert_array_equal(model.decoder.layers[0].ssru.forget_proj.bias.detach().numpy(),
                                  w["decoder_l1_rnn_bf"].reshape(-1))


def test_teacher_forced_logits_match_marian_transcription(ported, reference) -> None:
    model = ported.models[0]
    v_tgt = reference.opts["dim-vocabs"][1]
    for src, tgt in _pairs(ported):
        prev = [ported.config.decoder_start_token_id] + tgt[:-1]
        with torch.no_grad():
            ours = model(torch.tensor([src]), torch.tensor([prev]))[0, :, :v_tgt].double().numpy()
        ref = reference.logits(src, prev)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= TOL


def test_incremental_decoding_with_beam_reorder(ported) -> None:
    """Two hypotheses decoded step by step; halfway the beam is reordered
    (swapped, then both rows taken from one): the SSRU state must follow."""
    model = ported.models[0]
    (src, t_a), (_, t_b) = _pairs(ported)[:2]
    start = ported.config.decoder_start_token_id
    n = min(len(t_a), len(t_b))
    rows = [[start] + t_a[: n - 1], [start] + t_b[: n - 1]]
    src_t = torch.tensor([src, src])
    with torch.no_grad():
        v = ported.config.pad_token_id  # the appended pad's log-prob is -inf in both paths
        full = model.log_probs(torch.tensor(rows), model.encode(src_t))[..., :v]
        enc = model.encode(src_t)
        state = model.new_state()
        half = n // 2
        for t in range(half):
            lp = model.log_probs(torch.tensor([[rows[0][t]], [rows[1][t]]]), enc, state)[..., :v]
            assert (lp[:, 0] - full[:, t]).abs().max().item() <= 1e-5
        # beam reorder: row 0 continues hypothesis 1, row 1 continues hypothesis 1 too
        index = torch.tensor([1, 1])
        state.reorder(index)
        enc = enc.reorder(index)
        assert state.layers[0].ssru_state is not None
        for t in range(half, n):
            lp = model.log_probs(torch.tensor([[rows[1][t]], [rows[1][t]]]), enc, state)[..., :v]
            assert (lp[0, 0] - full[1, t]).abs().max().item() <= 1e-5
            assert (lp[1, 0] - full[1, t]).abs().max().item() <= 1e-5


def test_beam_search_scores_match_reference(ported, reference) -> None:
    """Marian-semantics beam search runs on the SSRU port, and every step
    score of every returned hypothesis is the reference's log-prob."""
    cfg = ported.config
    srcs = [s for s, _ in _pairs(ported)]
    out = generate(ported.models[0], srcs, semantics="marian", beam_size=3, n_best=True, max_length_factor=1.5)
    width = max(len(s) for s in srcs)
    for src, hyps in zip(srcs, out):
        assert hyps
        for hyp in hyps:
            tokens = hyp["tokens"]
            assert tokens[-1] == cfg.eos_token_id or len(tokens) >= int(1.5 * width) - 1
            ref = reference.log_probs(src, [cfg.decoder_start_token_id] + tokens[:-1])
            expected = ref[np.arange(len(tokens)), tokens]
            assert np.abs(np.array(hyp["positional_scores"]) - expected).max() <= TOL


def test_translate(ported) -> None:
    out = ported.translate(["Hello world.", "This is a test."], beam=2)
    assert len(out) == 2 and all(isinstance(h[0]["text"], str) and h[0]["tokens"] for h in out)


def test_export_hf_refuses_ssru(ported, tmp_path: Path, capsys) -> None:
    line = one_line_error(["export", "hf", str(ported.path), str(tmp_path / "hf")], capsys)
    assert "SSRU decoder" in line and "MarianMTModel" in line
    assert not (tmp_path / "hf").exists()


def test_prune(ported, tmp_path: Path, capsys) -> None:
    line = one_line_error(["prune", str(ported.path), str(tmp_path / "heads"), "--heads", "0.5"], capsys)
    assert "--heads" in line and "ssru" in line
    modelport.prune(ported.path, tmp_path / "layers", decoder_layers=1)
    pruned = modelport.load(tmp_path / "layers")
    assert pruned.config.decoder_layers == 1 and pruned.config.decoder_autoreg == "ssru"
    # a 1-layer student copies the teacher's first layer (prune.layers_to_keep(2, 1) == [0])
    np.testing.assert_array_equal(pruned.models[0].decoder.layers[0].ssru.in_proj.weight.detach().numpy(),
                                  ported.models[0].decoder.layers[0].ssru.in_proj.weight.detach().numpy())
