"""The student of ``modelport distill``: what ``--student`` says, and its
first weights.

- ``prune:decoder-layers=1,ffn=0.5`` (keys: ``encoder-layers``,
  ``decoder-layers``, ``heads``, ``ffn``): shrunk from the teacher by the
  prune pass, so it starts from the teacher's weights (distilBART's
  shrink-and-fine-tune; layers chosen by its table).
- ``tiny`` / ``base``: a fresh network of a deployed student's shape (tiny:
  Bergamot's tiny11 — 6 encoder layers, a 2-layer SSRU decoder, d 256, FFN
  1536, 8 heads; base: transformer-base, 6+6 layers, d 512, FFN 2048, 8
  heads), randomly initialised; everything else (vocabularies, positions,
  normalisation, special ids) is the teacher's, so the teacher's tokenizer
  serves it unchanged.
- ``config:FILE.json``: a JSON object of :class:`Seq2SeqConfig` fields that
  replace the teacher's (sizes, ``decoder_autoreg``, ``activation``, ...);
  the fields tied to the tokenizer cannot change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelport.errors import ConfigError, InvalidInputError
from modelport.model.config import Seq2SeqConfig
from modelport.model.transformer import Seq2SeqModel

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"encoder_layers": 6, "decoder_layers": 2, "decoder_autoreg": "ssru", "d_model": 256,
             "encoder_heads": 8, "decoder_heads": 8, "encoder_ffn_dim": 1536, "decoder_ffn_dim": 1536},
    "base": {"encoder_layers": 6, "decoder_layers": 6, "decoder_autoreg": "self-attention", "d_model": 512,
             "encoder_heads": 8, "decoder_heads": 8, "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048},
}

# prune: key -> (prune() keyword, type)
PRUNE_KEYS: dict[str, tuple[str, type]] = {"encoder-layers": ("encoder_layers", int),
                                           "decoder-layers": ("decoder_layers", int),
                                           "heads": ("heads", float), "ffn": ("ffn", float)}

# what the tokenizer, or the folder's decoding defaults, fix: a student keeps the teacher's
_FIXED = ("source_vocab_size", "target_vocab_size", "pad_token_id", "eos_token_id", "bos_token_id",
          "unk_token_id", "decoder_start_token_id", "decoder_start_zero_embedding", "shared_embeddings")
# sizes a preset or config replaces; per-layer head counts and head_dim follow the new sizes
_RESET = {"head_dim": None, "encoder_layer_heads": None, "decoder_layer_heads": None, "cross_layer_heads": None,
          "cached_self_kv_unnormed": False}

STUDENT_HELP = ("prune:KEY=VALUE,... (keys: " + ", ".join(PRUNE_KEYS) + "; starts from the teacher's weights), "
                + " or ".join(PRESETS) + " (a fresh network of that shape), or config:FILE.json")


@dataclass(frozen=True)
class StudentSpec:
    """A parsed ``--student``: exactly one of ``prune``, ``preset``, ``overrides`` is set."""

    text: str
    prune: dict[str, int | float] | None = None  # prune() keyword arguments
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # Seq2SeqConfig fields (preset or config file)

    @property
    def from_teacher(self) -> bool:
        """Whether the student starts from the teacher's weights."""
        return self.prune is not None


def parse_student(text: str) -> StudentSpec:
    """``--student`` as a :class:`StudentSpec`; a bad spec is an
    :class:`~modelport.errors.InvalidInputError` naming what is allowed."""
    text = text.strip()
    if text in PRESETS:
        return StudentSpec(text, preset=text, overrides=dict(PRESETS[text]))
    if text.startswith("prune:"):
        options: dict[str, int | float] = {}
        for item in filter(None, text[len("prune:"):].split(",")):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in PRUNE_KEYS:
                raise InvalidInputError(f"--student {text}: `{item}` is not KEY=VALUE with KEY one of "
                                        f"{', '.join(PRUNE_KEYS)}")
            name, kind = PRUNE_KEYS[key]
            try:
                options[name] = kind(value)
            except ValueError:
                raise InvalidInputError(f"--student {text}: {key} must be {'an integer' if kind is int else 'a number'}"
                                        f", but is `{value}`") from None
        if not options:
            raise InvalidInputError(f"--student {text}: name what to prune ({', '.join(PRUNE_KEYS)})")
        return StudentSpec(text, prune=options)
    if text.startswith("config:"):
        return StudentSpec(text, overrides=_read_overrides(Path(text[len("config:"):])))
    raise InvalidInputError(f"--student `{text}` is not one of: {STUDENT_HELP}")


def _read_overrides(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"--student config `{path}` does not exist") from None
    except (OSError, UnicodeError, ValueError) as e:
        raise InvalidInputError(f"--student config `{path}` is not a JSON file ({e})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"--student config `{path}` must hold a JSON object of config fields")
    fixed = sorted(set(data) & set(_FIXED))
    if fixed:
        raise InvalidInputError(f"--student config `{path}` sets {', '.join(fixed)}: a student keeps the "
                                "teacher's tokenizer, so these stay the teacher's")
    return data


def student_config(teacher: Seq2SeqConfig, spec: StudentSpec) -> Seq2SeqConfig:
    """The teacher's config with a preset's or config file's fields (not for ``prune:`` specs)."""
    changes = {**_RESET, **spec.overrides}
    if changes.get("decoder_autoreg") == "ssru" and teacher.positions == "relative":
        raise InvalidInputError(f"--student {spec.text}: an SSRU decoder needs absolute positions, but the teacher "
                                "uses relative position buckets (T5); use --student base or a prune: student")
    try:
        cfg = teacher.replace(**changes)
    except (ConfigError, TypeError) as e:
        raise InvalidInputError(f"--student {spec.text}: {e}") from None
    need, have = cfg.approx_parameters() * TRAINING_BYTES_PER_WEIGHT, usable_memory()
    if need > have:  # d_model 10**9 asked the allocator for 3 TB; 10**5 layers ran out of memory building them
        raise InvalidInputError(f"--student {spec.text}: a student of about {cfg.approx_parameters():,} weights "
                                f"needs about {need / 2**30:,.0f} GiB to train, more than the "
                                f"{have / 2**30:,.1f} GiB this process may use")
    return cfg


# fp32 weights, their gradients and Adam's two moments
TRAINING_BYTES_PER_WEIGHT = 16


def usable_memory(cgroup_root: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int:
    """The memory this process may use, in bytes: the machine's, or less where
    a control group caps it (a container, a CI runner, a batch job's
    allocation), as cgroup v2's ``memory.max`` or v1's
    ``memory.limit_in_bytes`` says for this process's group or the root."""
    try:
        limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows) or no such name
        limits = []
    groups = {"": [""], "memory": [""]}  # cgroup v2 (hierarchy "0::") and v1's memory controller: their paths
    try:
        for line in own.read_text(encoding="utf-8").splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(","):
                if name in groups:
                    groups[name].append(path.strip("/"))
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    files = [cgroup_root / p / "memory.max" for p in groups[""]]
    files += [cgroup_root / "memory" / p / "memory.limit_in_bytes" for p in groups["memory"]]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():  # "max": no limit
            limits.append(int(text))
    return min(limits) if limits else 1 << 62  # nothing known: the check is left to the allocator


def fresh_student(cfg: Seq2SeqConfig, seed: int, logits_bias: torch.Tensor | None = None) -> Seq2SeqModel:
    """A randomly initialised student, the same for the same seed: Xavier-uniform
    matrices, N(0, d_model**-0.5) embeddings with a zero padding row (fairseq's
    and Marian's transformer initialisation), zero biases, unit norm gains.
    ``logits_bias``: the teacher's ``final_logits_bias`` (a fixed buffer, not
    learnt), whose -inf rows (a Marian port's appended pad, which Marian's
    vocabulary lacks) the student must never emit either."""
    generator = torch.Generator().manual_seed(seed)
    model = Seq2SeqModel(cfg)
    if logits_bias is not None and model.final_logits_bias is not None:
        model.final_logits_bias.copy_(logits_bias)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_tokens" in name or "embed_positions" in name:
                nn.init.normal_(p, 0.0, cfg.d_model ** -0.5, generator=generator)
                if "embed_tokens" in name:
                    p[cfg.pad_token_id].zero_()
            elif p.dim() >= 2:
                nn.init.xavier_uniform_(p, generator=generator)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
    return model


def describe(spec: StudentSpec, vocab_from: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The spec as conversion.json records it."""
    out: dict[str, Any] = {"spec": spec.text}
    if spec.prune is not None:
        out["prune"] = spec.prune
    else:
        out["config"] = spec.overrides
    if vocab_from is not None:
        out["vocab_from"] = str(vocab_from)
    return out


__all__ = ["PRESETS", "PRUNE_KEYS", "STUDENT_HELP", "StudentSpec", "describe", "fresh_student", "parse_student",
           "student_config"]
