"""Reference side for the parity tests: tiny fairseq models built with fairseq's
own builders, saved the way fairseq saves them, and run by fairseq.

Only this file (and other reference adapters) import fairseq; modelport's
converter never does.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # reference side only, fixtures we made

LAYOUTS = ("cfg-dict", "cfg-omegaconf", "args-legacy")


def write_dict(path: Path, n_symbols: int, prefix: str) -> None:
    """A fairseq dictionary file with ``n_symbols`` entries after the 4 specials."""
    lines = [f"{prefix}{i} {1000 - i}" for i in range(n_symbols)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_HISTORY = {"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "Adam",
            "lr_scheduler_state": {"best": 3.2}, "num_updates": 3}


class _Task:
    def __init__(self, src_dict: Any, tgt_dict: Any) -> None:
        self.source_dictionary = src_dict
        self.target_dictionary = tgt_dict


def build_fairseq_model(directory: Path, *, layout: str = "cfg-dict", src_vocab: int = 44, tgt_vocab: int = 52,
                        seed: int = 0, **overrides: Any) -> tuple[Any, Path]:
    """Build a random fairseq transformer, save it into ``directory`` with
    dictionaries, and return (fairseq model in eval mode, checkpoint path)."""
    from fairseq.data import Dictionary
    from fairseq.models.transformer import TransformerModel
    from fairseq.models.transformer.transformer_legacy import base_architecture

    directory.mkdir(parents=True, exist_ok=True)
    joined = overrides.get("share_all_embeddings", False)
    if joined:
        tgt_vocab = src_vocab
    write_dict(directory / "dict.en.txt", src_vocab - 4, "s" if not joined else "w")
    write_dict(directory / "dict.de.txt", tgt_vocab - 4, "t" if not joined else "w")
    src_dict = Dictionary.load(str(directory / "dict.en.txt"))
    tgt_dict = Dictionary.load(str(directory / "dict.de.txt"))

    args = argparse.Namespace(
        arch="transformer", encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_layers=2,
        encoder_attention_heads=4, decoder_layers=2, decoder_attention_heads=4, dropout=0.0,
        max_source_positions=64, max_target_positions=64, source_lang="en", target_lang="de",
        task="translation", data=str(directory), left_pad_source=True, left_pad_target=False,
    )
    for k, v in overrides.items():
        setattr(args, k, v)
    base_architecture(args)
    torch.manual_seed(seed)
    model = TransformerModel.build_model(args, _Task(src_dict, tgt_dict))
    # make every norm and bias non-trivial so a mis-mapped one shows up in the logits
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
            if "embed_positions" in name:
                p.normal_(0, 0.5)
    model.eval()
    state = model.state_dict()
    path = directory / "model.pt"
    if layout == "args-legacy":
        state = _fuse_in_proj(state)
        ckpt = {"args": args, "model": state,
                "optimizer_history": [_HISTORY],
                "extra_state": {"epoch": 1}}
        torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    else:
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf
        from omegaconf import OmegaConf

        cfg = convert_namespace_to_omegaconf(args)
        cfg_obj = (OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if layout == "cfg-dict" else cfg)
        ckpt = {"args": None, "cfg": cfg_obj, "model": state, "criterion": None,
                "optimizer_history": [_HISTORY],
                "task_state": {}, "extra_state": {"epoch": 1}, "last_optimizer_state": {"state": {}}}
        torch.save(ckpt, path)
    return model, path


def build_base_model(directory: Path, vocab: int = 32000) -> Path:
    """A random transformer-base-sized fairseq model (6+6 layers, d_model 512,
    FFN 2048, 8 heads, separate ``vocab``-sized dictionaries) for benchmarks."""
    build_fairseq_model(directory, src_vocab=vocab, tgt_vocab=vocab, encoder_embed_dim=512,
                        encoder_ffn_embed_dim=2048, encoder_layers=6, encoder_attention_heads=8,
                        decoder_layers=6, decoder_attention_heads=8, max_source_positions=1024,
                        max_target_positions=1024)
    return directory


def _fuse_in_proj(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The pre-0.7 fairseq layout: q/k/v fused into in_proj_weight/in_proj_bias."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".q_proj." in key:
            base, suffix = key.split(".q_proj.")
            out[f"{base}.in_proj_{suffix}"] = torch.cat(
                [value, state[f"{base}.k_proj.{suffix}"], state[f"{base}.v_proj.{suffix}"]], dim=0)
        elif ".k_proj." in key or ".v_proj." in key:
            continue
        else:
            out[key] = value
    return out


def load_with_fairseq(path: Path) -> Any:
    """Load a checkpoint with fairseq's own loader (the reference reading the file)."""
    from fairseq import checkpoint_utils

    models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task(
        [str(path)], arg_overrides={"data": str(path.parent)})
    return models[0].eval()


@torch.no_grad()
def fairseq_full_logits(model: Any, src: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    lengths = src.ne(1).sum(1)
    logits, _ = model(src, lengths, prev)
    return logits.float()


@torch.no_grad()
def fairseq_incremental_logits(model: Any, src: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    lengths = src.ne(1).sum(1)
    enc = model.encoder(src, src_lengths=lengths)
    state: dict = {}
    steps = []
    for t in range(prev.size(1)):
        out, _ = model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
        steps.append(out[:, -1:])
    return torch.cat(steps, dim=1).float()


def save_args_layout(cfg_checkpoint: Path, dest: Path) -> Path:
    """The weights of a ``cfg`` checkpoint that fairseq-train 0.12 wrote, saved
    again in the WMT19-era layout: the flat ``argparse.Namespace`` (which
    fairseq-train keeps as ``cfg['model']`` for legacy architectures) under
    ``args``, no ``cfg``, legacy (non-zip) serialization."""
    import copy

    ckpt = torch.load(cfg_checkpoint, map_location="cpu", weights_only=False)
    args = copy.copy(ckpt["cfg"]["model"])
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"{cfg_checkpoint}: cfg['model'] is {type(args).__name__}, not the flat Namespace")
    out = {"args": args, "model": ckpt["model"], "optimizer_history": ckpt.get("optimizer_history") or [_HISTORY],
           "extra_state": ckpt.get("extra_state") or {"epoch": 1}}
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, dest, _use_new_zipfile_serialization=False)
    return dest
