"""The embedded trained model converts and matches fairseq's own logits on its
real test sentences (ids from fairseq's hub interface: moses + fastBPE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("fairseq")
pytest.importorskip("fastBPE")

from tests.helpers.paths import CORPUS  # noqa: E402


@pytest.fixture(scope="module")
def hub(default_model_dir: Path):
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # reference side, our own fixture
    from fairseq.models.transformer import TransformerModel

    return TransformerModel.from_pretrained(
        str(default_model_dir), checkpoint_file="model.pt", bpe="fastbpe",
        bpe_codes=str(default_model_dir / "bpecodes"), tokenizer="moses", source_lang="en", target_lang="de",
    ).eval()


def _left_pad(seqs: list[torch.Tensor], pad: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, width - len(s):] = s
    return out


def test_embedded_model_logits_match_fairseq(hub, ported_default) -> None:
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:64]
    targets = (CORPUS / "test.de").read_text(encoding="utf-8").splitlines()[:64]
    ref_model = hub.models[0]
    tgt_dict = hub.task.target_dictionary
    worst = 0.0
    for start in range(0, len(lines), 16):
        src = _left_pad([hub.encode(x) for x in lines[start:start + 16]], 1)
        tgt = [tgt_dict.encode_line(hub.apply_bpe(hub.tokenize(x)), add_if_not_exist=False).long()
               for x in targets[start:start + 16]]
        width = max(len(t) for t in tgt)
        prev = torch.full((len(tgt), width), 1, dtype=torch.long)
        for i, t in enumerate(tgt):  # fairseq's teacher forcing input: </s> then the target, right-padded
            prev[i, 0] = 2
            prev[i, 1: len(t)] = t[:-1]
        with torch.no_grad():
            ref, _ = ref_model(src, src.ne(1).sum(1), prev)
            ours = ported_default.model(src, prev)
        real = prev.ne(1)
        worst = max(worst, (ours - ref.float()).abs()[real].max().item())
    assert worst <= 1e-4, worst


def test_embedded_model_summary(ported_default) -> None:
    cfg = ported_default.config
    assert (cfg.encoder_layers, cfg.decoder_layers, cfg.d_model) == (3, 3, 128)
    assert cfg.source_vocab_size != cfg.target_vocab_size
    assert ported_default.conversion["foreign_options"]["arch"] == "transformer"
