"""Structured pruning of a ported folder: fewer layers, fewer attention heads,
narrower feed-forward layers, a smaller vocabulary. Every cut removes
rows/columns physically, so the result is an ordinary (smaller) ported folder.
The steps run in that order: layers, FFN, heads, vocabulary.

- Layers: which teacher layers a shallower stack keeps follows Shleifer &
  Rush's distilBART table (``LAYERS_TO_COPY`` in their ``distillation.py``):
  e.g. 12 -> 6 keeps 0, 2, 4, 7, 9, 11 and 6 -> 3 keeps 0, 2, 5. Sizes
  outside the table keep evenly spaced layers, the first and the last always
  included.
- FFN (``ffn=F``): every layer loses ``round(F * ffn_dim)`` hidden neurons,
  those of smallest weight magnitude ``||up[i, :]|| * ||down[:, i]||`` (times
  ``||gate[i, :]||`` for gated FFNs): the norm of the neuron's input and
  output paths. Data-free; every layer keeps the same width, so the config
  stays one ``*_ffn_dim``.
- Heads (``heads=F``), with ``data``: Michel, Levy & Neubig 2019 ("Are Sixteen
  Heads Really Better than One?"). Every attention (encoder self, decoder
  self, decoder cross) gets a gate per head (:func:`head_gates`); the
  importance of a head is ``sum over batches |dL/dgate|`` of the teacher-forced
  NLL, L2-normalised per attention. The targets are ``references`` when given,
  else the original folder's own first-best translations of ``data`` (its
  decoding defaults), so the pruned model is scored against what it should
  keep saying. ``round(F * all heads)`` heads go, the least important first,
  in steps of 10% of all heads with the importance recomputed after each step
  (removed heads gated to 0); every attention keeps at least one head, so
  counts differ per layer (``*_layer_heads`` in the config).
- Heads without ``data``: every attention loses ``round(F * heads)`` heads,
  those of smallest ``||W_v[h]|| * ||W_o[:, h]||`` (the size of what the head
  can add to the residual stream); counts stay equal per layer.
  Either way ``head_dim`` is written explicitly and the removed head indices
  are recorded in ``changed["heads_removed"]``.
- Vocabulary (``vocab_from=FILE``, fairseq Moses+BPE ports only): keep the
  source ids of FILE's lines, the target ids of the folder's n-best
  translations of them (n = its beam size) plus those with probability >=
  ``VOCAB_MIN_PROB`` at any step of those translations, and the special
  tokens; a tied source/target embedding keeps the union. Beam outputs on
  such text stay the same unless a removed token's share of a step's softmax
  tips a close call. Embeddings, output projection and
  final logits bias keep those rows; the dictionaries keep those symbols, in
  order, so any other piece reads ``<unk>``. sentencepiece ports are refused:
  their ``.spm`` models would still produce the removed pieces.

``data`` also feeds the report (speed, agreement, BLEU/chrF with ``references``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelport.api import PortedModel, load
from modelport.errors import InvalidInputError
from modelport.files import lines_of, read_text_lines, references_for
from modelport.generation.scoring import teacher_forcing_batch
from modelport.generation.translate import Direction, make_batches, pad_batch
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import TOKENIZER_CONFIG_NAME, PortedFolder, check_writable, read_json_object
from modelport.model.layers import Attention
from modelport.model.transformer import Seq2SeqModel
from modelport.passes.common import check_direction, finish, measure, pass_output
from modelport.reports.passes import PassReport

# teacher layers -> {student layers: kept teacher layers}
LAYERS_TO_COPY: dict[int, dict[int, list[int]]] = {
    6: {1: [0], 2: [0, 5], 3: [0, 2, 5], 4: [0, 1, 3, 5], 6: [0, 1, 2, 3, 4, 5]},
    12: {1: [0], 2: [0, 11], 3: [0, 6, 11], 4: [0, 4, 8, 11], 6: [0, 2, 4, 7, 9, 11],
         9: [0, 1, 2, 4, 5, 7, 9, 10, 11], 12: list(range(12))},
    16: {1: [0], 2: [0, 15], 3: [0, 8, 15], 4: [0, 5, 10, 15], 6: [0, 3, 6, 9, 12, 15],
         8: [0, 2, 4, 6, 8, 10, 12, 15], 9: [0, 1, 3, 5, 7, 9, 11, 13, 15], 12: [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15],
         16: list(range(16))},
}

HEAD_STEP = 0.1  # gradient head pruning removes this fraction of all heads per step

_MEMBER = re.compile(r"^members\.\d+\.")
_LAYER = re.compile(r"^((?:members\.\d+\.)?)(encoder|decoder)\.layers\.(\d+)\.(.*)$")
_FFN = re.compile(r"^(.*\.layers\.\d+\.ffn)\.(up|gate|down)\.(weight|bias)$")
_ATTN = re.compile(r"^(.*\.layers\.\d+\.(?:self_attn|cross_attn))\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)$")


def layers_to_keep(teacher: int, student: int, option: str = "the number of layers") -> list[int]:
    """The teacher layers a ``student``-layer stack copies (``option`` names the count in an error)."""
    if isinstance(student, bool) or not isinstance(student, numbers.Integral) or not 1 <= student <= teacher:
        raise InvalidInputError(f"{option} must be an integer in [1, {teacher}], but is {student!r}")
    table = LAYERS_TO_COPY.get(teacher, {})
    if student in table:
        return table[student]
    if student == 1:
        return [0]
    return sorted({round(i * (teacher - 1) / (student - 1)) for i in range(student)})


def _removed(fraction: float, total: int, what: str, option: str) -> int:
    """How many of ``total`` units ``fraction`` removes; at least one, never all."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 < fraction < 1.0:
        raise InvalidInputError(f"{option} must be a fraction in (0, 1), but is {fraction!r}")
    n = round(fraction * total)
    if n < 1:
        raise InvalidInputError(f"{option} {fraction} removes no {what} of {total} "
                                f"(use at least {0.5 / total:.3g})")
    if n >= total:
        raise InvalidInputError(f"{option} {fraction} would remove all {total} {what}s (keep at least one)")
    return n


def _shrink_layers(state: dict[str, torch.Tensor], keep: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        m = _LAYER.match(name)
        if m and m.group(2) in keep:
            kept = keep[m.group(2)]
            layer = int(m.group(3))
            if layer not in kept:
                continue
            name = f"{m.group(1)}{m.group(2)}.layers.{kept.index(layer)}.{m.group(4)}"
        out[name] = t
    return out


def _groups(state: dict[str, torch.Tensor], pattern: re.Pattern[str]) -> dict[str, dict[str, torch.Tensor]]:
    """``{module prefix: {"up.weight": tensor, ...}}`` for names matching ``pattern``."""
    groups: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for name, t in state.items():
        m = pattern.match(name)
        if m:
            groups[m.group(1)][f"{m.group(2)}.{m.group(3)}"] = t
    return groups


def _prune_ffn(state: dict[str, torch.Tensor], fraction: float, dims: dict[str, int]) -> dict[str, int]:
    """Remove the smallest-magnitude FFN neurons in place; returns the new widths."""
    new_dims = {side: dim - _removed(fraction, dim, "FFN neuron", "--ffn") for side, dim in dims.items()}
    for prefix, parts in _groups(state, _FFN).items():
        side = "encoder" if ".encoder." in f".{prefix}" else "decoder"
        up, down = parts["up.weight"].float(), parts["down.weight"].float()
        score = up.norm(dim=1) * down.norm(dim=0)
        if "gate.weight" in parts:
            score = score * parts["gate.weight"].float().norm(dim=1)
        kept = torch.sort(torch.topk(score, new_dims[side]).indices).values
        for key, t in parts.items():
            state[f"{prefix}.{key}"] = (t.index_select(1, kept) if key == "down.weight" else
                                        t if key == "down.bias" else t.index_select(0, kept)).contiguous()
    return new_dims


def _attention_heads(cfg: Seq2SeqConfig) -> dict[str, int]:
    """``{module name: head count}`` of every attention of one model."""
    out = {f"encoder.layers.{i}.self_attn": n for i, n in enumerate(cfg.layer_heads("encoder"))}
    for i, (n, c) in enumerate(zip(cfg.layer_heads("decoder"), cfg.layer_heads("cross"))):
        out[f"decoder.layers.{i}.self_attn"] = n
        out[f"decoder.layers.{i}.cross_attn"] = c
    return out


def _magnitude_heads(state: dict[str, torch.Tensor], fraction: float, head_dim: int) -> dict[str, list[int]]:
    """The ``round(fraction * heads)`` heads of smallest ``||W_v[h]|| * ||W_o[:, h]||``
    in every attention: ``{module prefix: removed head indices}``."""
    removed: dict[str, list[int]] = {}
    for prefix, parts in _groups(state, _ATTN).items():
        n = parts["v_proj.weight"].shape[0] // head_dim
        v = parts["v_proj.weight"].float().reshape(n, head_dim, -1)
        o = parts["out_proj.weight"].float().reshape(-1, n, head_dim)
        score = v.flatten(1).norm(dim=1) * o.transpose(0, 1).flatten(1).norm(dim=1)
        kept = set(torch.topk(score, n - _removed(fraction, n, "attention head", "--heads")).indices.tolist())
        removed[prefix] = [h for h in range(n) if h not in kept]
    return removed


@contextlib.contextmanager
def head_gates(model: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Give every attention of ``model`` a gate for the duration of the block:
    ``{module name: gate}``, one scalar per head, 1.0, requiring grad. A head
    whose gate is 0 contributes exactly what a removed head does (nothing but
    the shared ``out_proj`` bias). The gates are taken off on exit, so normal
    inference never pays for them."""
    attentions = {name: m for name, m in model.named_modules() if isinstance(m, Attention)}
    for m in attentions.values():
        m.head_gate = torch.ones(m.heads, requires_grad=True, device=m.out_proj.weight.device)
    try:
        yield {name: m.head_gate for name, m in attentions.items()}
    finally:
        for m in attentions.values():
            m.head_gate = None


@dataclass(frozen=True)
class LanguageTokens:
    """A multilingual port's tokens around the source ids and forced at the
    start of the target (empty for other ports)."""

    before_source: list[int] = field(default_factory=list)
    after_source: list[int] = field(default_factory=list)
    forced_target: list[int] = field(default_factory=list)


def _language_tokens(ported: PortedModel, direction: Direction) -> LanguageTokens:
    """Where ``translate`` puts a multilingual port's language tokens for
    ``direction`` (none for other ports), for teacher forcing as it decodes."""
    before, after, _, opts = direction.tokens(ported.tokenizer, ported.generation_config, ported.config.eos_token_id)
    if "generator_eos" in opts:
        raise InvalidInputError("--heads with --data on a port that decodes from and stops on the target language "
                                "token (an mBART fine-tune) is not supported; leave out --data (weight magnitude)")
    forced = list(opts.get("prefix_tokens", ())) or (
        [opts["forced_bos_token_id"]] if "forced_bos_token_id" in opts else [])
    return LanguageTokens(before, after, forced)


def _teacher_forcing_batches(cfg: Seq2SeqConfig, tokenizer: Any, sources: list[str], targets: list[list[int]],
                             languages: LanguageTokens | None = None) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Batches ``(src, prev, target)`` of source lines and target ids; padded
    target positions are -100. ``languages``: the language tokens are placed
    as ``translate`` places them, the forced ones (which a translation holds,
    a reference does not) not scored."""
    languages = languages or LanguageTokens()
    src = tokenizer.encode_batch(sources) if hasattr(tokenizer, "encode_batch") else [tokenizer.encode(x)
                                                                                     for x in sources]
    src = [languages.before_source + ids + languages.after_source for ids in src]
    forced = languages.forced_target
    targets = [t if t[:len(forced)] == forced else forced + list(t) for t in targets]
    out = []
    for batch in make_batches([len(s) + len(t) for s, t in zip(src, targets)], batch_size=32):
        s, prev, _ = teacher_forcing_batch([src[i] for i in batch], [targets[i] for i in batch],
                                           cfg.pad_token_id, cfg.decoder_start_token_id)
        gold = pad_batch([targets[i] for i in batch], -100, left=False)
        gold[:, :len(forced)] = -100
        out.append((s, prev, gold))
    return out


def _head_importance(model: nn.Module, batches: list[tuple[Tensor, Tensor, Tensor]], gates: dict[str, Tensor],
                     removed: dict[str, list[int]]) -> dict[str, Tensor]:
    """Michel et al.'s importance: ``sum over batches |dNLL/dgate|``, removed
    heads 0, divided by each attention's L2 norm (their per-layer normalisation)."""
    total = {name: torch.zeros_like(g, requires_grad=False) for name, g in gates.items()}
    for src, prev, target in batches:
        logits = model(src, prev)
        loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100)
        for name, grad in zip(gates, torch.autograd.grad(loss, list(gates.values()))):
            total[name] += grad.abs()
    for name, score in total.items():
        score[removed[name]] = 0.0
        score /= score.norm() + 1e-20
    return total


def _gradient_heads(model: nn.Module, batches: list[tuple[Tensor, Tensor, Tensor]], fraction: float,
                    ) -> tuple[dict[str, list[int]], list[int]]:
    """Remove ``round(fraction * all heads)`` heads in steps of ``HEAD_STEP`` of
    all heads, least important first, recomputing the importance after every
    step with the removed heads gated to 0; every attention keeps a head.
    Returns ``{module: removed heads}`` and the heads removed per step."""
    model.requires_grad_(False)  # only the gates need gradients
    with head_gates(model) as gates:
        total = sum(g.numel() for g in gates.values())
        goal = round(fraction * total)
        removed: dict[str, list[int]] = {name: [] for name in gates}
        per_step: list[int] = []
        steps = math.ceil(round(fraction / HEAD_STEP, 6))
        for step in range(1, steps + 1):
            need = (goal if step == steps else round(step * HEAD_STEP * total)) - sum(map(len, removed.values()))
            importance = _head_importance(model, batches, gates, removed)
            ranked = sorted((float(score[h]), name, h) for name, score in importance.items()
                            for h in range(score.numel()) if h not in removed[name])
            taken = 0
            for _, name, h in ranked:
                if taken == need:
                    break
                if len(removed[name]) + 1 < gates[name].numel():
                    removed[name].append(h)
                    taken += 1
            per_step.append(taken)
            with torch.no_grad():
                for name, heads in removed.items():
                    gates[name][heads] = 0.0
    return {name: sorted(heads) for name, heads in removed.items() if heads}, per_step


def _remove_heads(state: dict[str, torch.Tensor], removed: dict[str, list[int]], head_dim: int) -> None:
    """Drop the removed heads' rows of q/k/v and columns of ``out_proj`` in place."""
    for prefix, parts in _groups(state, _ATTN).items():
        if not removed.get(prefix):
            continue
        n = parts["q_proj.weight"].shape[0] // head_dim
        kept = torch.tensor([h for h in range(n) if h not in removed[prefix]])
        rows = (kept[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
        for key, t in parts.items():
            if key == "out_proj.weight":
                t = t.index_select(1, rows)
            elif key != "out_proj.bias":
                t = t.index_select(0, rows)
            state[f"{prefix}.{key}"] = t.contiguous()


def _head_counts(cfg: Seq2SeqConfig, counts: dict[str, int]) -> dict[str, Any]:
    """The config changes for the heads left per attention: one ``*_heads``
    where a stack's attentions all agree, ``*_layer_heads`` lists otherwise."""
    per = {att: tuple(counts[f"{side}.layers.{i}.{kind}"] for i in range(getattr(cfg, f"{side}_layers")))
           for att, side, kind in (("encoder", "encoder", "self_attn"), ("decoder", "decoder", "self_attn"),
                                   ("cross", "decoder", "cross_attn"))}
    changes: dict[str, Any] = {}
    for side, atts in (("encoder", ("encoder",)), ("decoder", ("decoder", "cross"))):
        values = {c for att in atts for c in per[att]}
        for att in atts:
            changes[f"{att}_layer_heads"] = None if len(values) <= 1 else per[att]
        if len(values) == 1:
            changes[f"{side}_heads"] = values.pop()
    return changes


def _check_heads(cfg: Seq2SeqConfig, fraction: float, gradient: bool, ensemble: int) -> int:
    """Refuse what head pruning cannot do, before any weight work; returns ``head_dim``."""
    if cfg.positions == "relative":
        raise InvalidInputError("--heads is not supported for relative-position (T5-style) models yet: "
                                "their position bias is shared by every layer's heads")
    if cfg.decoder_autoreg != "self-attention":
        raise InvalidInputError(f"--heads is not supported for a decoder with `decoder_autoreg` "
                                f"{cfg.decoder_autoreg} (Marian's SSRU decoder has no self-attention "
                                "heads) yet; use --encoder-layers, --decoder-layers or --ffn")
    dims = {cfg.encoder_head_dim, cfg.decoder_head_dim}
    if len(dims) != 1:
        raise InvalidInputError(f"--heads needs equal encoder and decoder head sizes, but they are {sorted(dims)}")
    heads = _attention_heads(cfg)
    if not gradient:
        for n in set(heads.values()):
            _removed(fraction, n, "attention head", "--heads")
        return dims.pop()
    if ensemble > 1:
        raise InvalidInputError(f"--heads with --data prunes single models, but this folder is an ensemble of "
                                f"{ensemble} (leave out --data for the weight-magnitude criterion)")
    total = sum(heads.values())
    n = _removed(fraction, total, "attention head", "--heads")
    if n > total - len(heads):
        raise InvalidInputError(f"--heads {fraction} would remove {n} of {total} heads, but every one of the "
                                f"{len(heads)} attentions keeps at least one (at most {total - len(heads)})")
    return dims.pop()


def _prune_heads(state: dict[str, torch.Tensor], cfg: Seq2SeqConfig, fraction: float, head_dim: int,
                 importance_data: tuple[Any, list[str], list[list[int]], LanguageTokens | None] | None,
                 ) -> tuple[Seq2SeqConfig, dict[str, Any]]:
    """Remove heads (by gradient importance when ``importance_data`` =
    (tokenizer, sources, target ids, language tokens) is given, else by weight magnitude);
    returns the new config and what changed."""
    before = _attention_heads(cfg)
    changed: dict[str, Any] = {}
    if importance_data is not None:
        model = Seq2SeqModel.from_state_dict(cfg, state)
        removed, per_step = _gradient_heads(model, _teacher_forcing_batches(model.cfg, *importance_data), fraction)
        changed["heads_criterion"] = ("Michel et al. 2019: sum |dNLL/dgate| over --data (teacher-forced), "
                                      "L2-normalised per attention, removed in 10% steps, globally")
        changed["heads_removed_per_step"] = per_step
    else:
        removed = _magnitude_heads(state, fraction, head_dim)
        changed["heads_criterion"] = "||W_v[h]|| * ||W_o[:,h]||, smallest removed per attention (no --data)"
    _remove_heads(state, removed, head_dim)
    after = dict(before)
    for prefix, gone in removed.items():  # an ensemble's members lose equally many heads per attention
        name = _MEMBER.sub("", prefix)
        after[name] = before[name] - len(gone)
    changed["heads"] = [sum(before.values()), sum(after.values())]
    changed["heads_removed"] = removed
    return cfg.replace(**_head_counts(cfg, after), head_dim=head_dim), changed


# ---------------------------------------------------------------------------
# vocabulary

VOCAB_TOKENIZERS = ("fairseq_moses_bpe",)
VOCAB_MIN_PROB = 0.01  # a target id this likely at a step of an n-best translation is kept
# tensor name (without an ensemble prefix) -> the vocabulary its rows index
_VOCAB_ROWS = {"encoder.embed.embed_tokens.weight": "source", "decoder.embed.embed_tokens.weight": "target",
               "lm_head.weight": "target", "final_logits_bias": "target"}


def _vocab_keep(ported: PortedModel, lines: list[str]) -> dict[str, list[int]]:
    """The ids to keep per side: the source ids of ``lines``; the target ids
    of the folder's n-best translations of them and those with probability
    >= ``VOCAB_MIN_PROB`` at any of their steps (beam search weighs them
    too, and they are part of every step's softmax); every special id."""
    tok, cfg = ported.tokenizer, ported.config
    specials = set(range(tok.source_dict.nspecial)) | {
        i for i in (cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id, cfg.unk_token_id,
                    cfg.decoder_start_token_id) if i is not None}
    source = specials | {i for ids in tok.encode_batch(lines) for i in ids}
    beam = int(ported.generation_config.get("beam", 1))
    pairs = [(line, h["tokens"]) for line, nbest in zip(lines, ported.translate(lines, nbest=beam)) for h in nbest]
    target = specials | {i for _, ids in pairs for i in ids}
    with torch.no_grad():
        for src, prev, gold in _teacher_forcing_batches(cfg, tok, [x for x, _ in pairs], [y for _, y in pairs]):
            for model in ported.models:
                probs = torch.softmax(model(src, prev), dim=-1)[gold.ne(-100)]
                target.update((probs >= VOCAB_MIN_PROB).any(dim=0).nonzero().flatten().tolist())
    if cfg.shared_embeddings:  # one tensor: both sides keep the union
        source = target = source | target
    return {"source": sorted(source), "target": sorted(target)}


def _trim_vocab(state: dict[str, torch.Tensor], keep: dict[str, list[int]]) -> None:
    """Keep the rows of the vocabulary-indexed tensors in ``keep``, in place;
    a tensor stored under several names stays one tensor."""
    done: dict[int, torch.Tensor] = {}
    for name, t in state.items():
        side = _VOCAB_ROWS.get(_MEMBER.sub("", name))
        if side is not None:
            if id(t) not in done:
                done[id(t)] = t.index_select(0, torch.tensor(keep[side])).contiguous()
            state[name] = done[id(t)]


def _vocab_lines(source: PortedFolder, vocab_from: str | os.PathLike[str]) -> list[str]:
    """The lines of ``vocab_from``, after checking that the folder's tokenizer can be trimmed."""
    kind = read_json_object(source.tokenizer_dir, TOKENIZER_CONFIG_NAME).get("type")
    if kind not in VOCAB_TOKENIZERS:
        raise InvalidInputError(f"--vocab-from supports {', '.join(VOCAB_TOKENIZERS)} tokenizers, but "
                                f"`{source.path}` uses {kind} (a SentencePiece model cannot be trimmed)")
    path = Path(vocab_from)
    if not path.is_file():
        raise InvalidInputError(f"--vocab-from `{vocab_from}` is not a file")
    lines = [line for line in read_text_lines(path, f"--vocab-from `{vocab_from}`") if line.strip()]
    if not lines:
        raise InvalidInputError(f"--vocab-from `{vocab_from}` has no non-empty lines")
    return lines


def _trimmed_tokenizer(tokenizer_dir: Path, tok: Any, keep: dict[str, list[int]],
                       ) -> dict[str, str | dict[str, Any]]:
    """``tokenizer/`` files for the kept ids: each dictionary keeps its kept
    symbols' lines in id order (the four specials are implicit), so the kept
    ids become 0..n-1 and every other piece reads ``<unk>``."""
    cfg = read_json_object(tokenizer_dir, TOKENIZER_CONFIG_NAME)
    cfg.pop("dict_pad_to_multiple", None)  # the padding rows are gone with the rest
    if cfg["source_dict"] == cfg["target_dict"] and keep["source"] != keep["target"]:
        cfg["target_dict"] = f"target.{cfg['target_dict']}"  # one joint file, now two vocabularies
    files: dict[str, str | dict[str, Any]] = {}
    for side, dictionary in (("source", tok.source_dict), ("target", tok.target_dict)):
        original = Path(dictionary.path).read_text(encoding="utf-8").split("\n")
        lines = [original[i - dictionary.nspecial] if i - dictionary.nspecial < len(original) and
                 original[i - dictionary.nspecial] else f"{dictionary.symbols[i]} 0"  # madeupword padding
                 for i in keep[side] if i >= dictionary.nspecial]
        files[cfg[f"{side}_dict"]] = "".join(line + "\n" for line in lines)
    files[TOKENIZER_CONFIG_NAME] = cfg
    return files


def _prune_vocab(ported: PortedModel, cfg: Seq2SeqConfig, state: dict[str, torch.Tensor], lines: list[str],
                 name: str) -> tuple[Seq2SeqConfig, dict[str, Any], dict[str, str | dict[str, Any]], list[int]]:
    """Trim the vocabularies to what ``lines`` (of the file ``name``) use;
    returns the new config, what changed, the tokenizer files to write and
    the new -> old target ids."""
    keep = _vocab_keep(ported, lines)
    _trim_vocab(state, keep)
    new_id = {old: new for new, old in enumerate(keep["target"])}
    # the specials are the lowest ids of both sides, so the source side numbers them the same
    changed: dict[str, Any] = {f"{side}_vocab_size": [getattr(cfg, f"{side}_vocab_size"), len(keep[side])]
                               for side in keep}
    changes: dict[str, Any] = {f"{side}_vocab_size": len(keep[side]) for side in keep}
    for key in ("pad_token_id", "eos_token_id", "bos_token_id", "unk_token_id", "decoder_start_token_id"):
        if getattr(cfg, key) is not None:
            changes[key] = new_id[getattr(cfg, key)]
    changed["vocab_criterion"] = (f"source ids of {name} ({len(lines)} lines); target ids of the folder's "
                                  f"{ported.generation_config.get('beam', 1)}-best translations of it and those "
                                  f"with probability >= {VOCAB_MIN_PROB} at any of their steps; specials")
    return (cfg.replace(**changes), changed, _trimmed_tokenizer(ported.tokenizer_dir, ported.tokenizer, keep),
            keep["target"])


def _keep_layers(cfg: Seq2SeqConfig, keep: dict[str, list[int]]) -> Seq2SeqConfig:
    """The config with only the ``keep`` layers of each side (per-layer head counts follow)."""
    changes: dict[str, Any] = {}
    for side, kept in keep.items():
        changes[f"{side}_layers"] = len(kept)
        for att in ((side,) if side == "encoder" else ("decoder", "cross")):
            counts = getattr(cfg, f"{att}_layer_heads")
            if counts:
                changes[f"{att}_layer_heads"] = tuple(counts[i] for i in kept)
    return cfg.replace(**changes)


def plan_prune(folder: PortedFolder, *, encoder_layers: int | None = None, decoder_layers: int | None = None,
               heads: float | None = None, ffn: float | None = None,
               gradient: bool = False) -> tuple[dict[str, list[int]], int | None]:
    """Check the layer, FFN and head options against ``folder`` without touching
    its weights (``prune`` before its work, ``distill`` before making its work
    directory); return the layers kept per side and, with ``heads``, the head
    size. ``gradient``: heads ranked on data (single models only)."""
    cfg = folder.config
    keep: dict[str, list[int]] = {}
    for side, wanted in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        if wanted is not None:
            keep[side] = layers_to_keep(getattr(cfg, f"{side}_layers"), wanted, f"--{side}-layers")
    if ffn is not None:
        if cfg.ffn_depth != 2:
            raise InvalidInputError(f"--ffn supports FFNs of depth 2, but `{folder.path}` has depth {cfg.ffn_depth}")
        for side in ("encoder", "decoder"):
            _removed(ffn, getattr(cfg, f"{side}_ffn_dim"), "FFN neuron", "--ffn")
    head_dim = None if heads is None else _check_heads(_keep_layers(cfg, keep), heads, gradient, folder.ensemble_size)
    return keep, head_dim


def prune(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
          encoder_layers: int | None = None, decoder_layers: int | None = None, heads: float | None = None,
          ffn: float | None = None, vocab_from: str | os.PathLike[str] | None = None,
          data: str | os.PathLike[str] | list[str] | None = None,
          references: str | os.PathLike[str] | list[str] | None = None, force: bool = False,
          progress: bool = False, source_lang: str | None = None, target_lang: str | None = None) -> PassReport:
    """Write a pruned copy of ``ported_dir`` to ``output_dir`` and return the
    report: layers first (``encoder_layers``/``decoder_layers``), then FFN
    neurons (``ffn``, a fraction per layer), attention heads (``heads``, a
    fraction; by gradient importance on ``data`` when given, see the module
    docstring) and the vocabulary (``vocab_from``, a text file). ``data`` and
    ``references``: lists of lines or text files; ``source_lang``/``target_lang``:
    the languages ``data`` is translated between, for a multilingual port
    (required there, as for ``translate``)."""
    if all(x is None for x in (encoder_layers, decoder_layers, heads, ffn, vocab_from)):
        raise InvalidInputError("nothing to prune: give --encoder-layers, --decoder-layers, --heads, --ffn "
                                "and/or --vocab-from")
    data = lines_of(data, "data") if data is not None else None
    references = references_for(references, data)
    # numpy's numbers as Python's (they are recorded in JSON); other types are refused where each is checked
    encoder_layers, decoder_layers = (int(n) if isinstance(n, numbers.Integral) and not isinstance(n, bool) else n
                                      for n in (encoder_layers, decoder_layers))
    heads, ffn = (float(f) if isinstance(f, numbers.Real) and not isinstance(f, bool) else f for f in (heads, ffn))
    source = PortedFolder.open(ported_dir)
    if source.quantization:
        raise InvalidInputError(f"`{ported_dir}` is quantized; prune the unquantized folder, then quantize")
    check_writable(output_dir, force, reads=[ported_dir])
    direction = Direction(source_lang, target_lang)
    check_direction(source, direction, data)
    keep, head_dim = plan_prune(source, encoder_layers=encoder_layers, decoder_layers=decoder_layers, heads=heads,
                                ffn=ffn, gradient=bool(data))  # every option, before the (slow) weight work
    sides = ("encoder", "decoder")
    state = _shrink_layers(source.load_weights(), keep)
    changed: dict[str, Any] = {f"{side}_layers_kept": kept for side, kept in keep.items()}
    cfg = _keep_layers(source.config, keep)
    vocab_lines = None if vocab_from is None else _vocab_lines(source, vocab_from)
    original = load(source.path) if vocab_from is not None or (heads is not None and data) else None
    language_tokens = _language_tokens(original, direction) if heads is not None and data else None
    if ffn is not None:
        widths = _prune_ffn(state, ffn, {side: getattr(cfg, f"{side}_ffn_dim") for side in sides})
        for side, width in widths.items():
            changed[f"{side}_ffn_dim"] = [getattr(cfg, f"{side}_ffn_dim"), width]
        cfg = cfg.replace(**{f"{side}_ffn_dim": width for side, width in widths.items()})
        changed["ffn_criterion"] = "||up[i,:]|| * ||down[:,i]|| (x ||gate[i,:]||), smallest removed per layer"
    if heads is not None:
        importance_data = None
        if data:
            tok = original.tokenizer
            encode_target = getattr(tok, "encode_target", tok.encode)
            targets = ([encode_target(line) for line in references] if references else
                       [h[0]["tokens"] for h in original.translate(data, **direction.options())])
            importance_data = (tok, data, targets, language_tokens)
        cfg, heads_changed = _prune_heads(state, cfg, heads, head_dim, importance_data)
        changed.update(heads_changed)
    tokenizer_files, target_ids = None, None
    if vocab_from is not None:
        cfg, vocab_changed, tokenizer_files, target_ids = _prune_vocab(original, cfg, state, vocab_lines,
                                                                       Path(vocab_from).name)
        changed.update(vocab_changed)
    options = {"encoder_layers": encoder_layers, "decoder_layers": decoder_layers, "heads": heads, "ffn": ffn,
               "vocab_from": None if vocab_from is None else str(vocab_from)}
    with pass_output(source, output_dir, list(state.items()), cfg,
                     {"pass": "prune", "options": options, "changed": changed}, force,
                     tokenizer_files=tokenizer_files) as out:
        # measured before the folder is renamed into place: an interrupted run leaves nothing
        return finish(out, PassReport("prune", options, changed,
                                      measure(source, out.path, data, references, target_ids=target_ids,
                                              progress=progress, direction=direction)))
