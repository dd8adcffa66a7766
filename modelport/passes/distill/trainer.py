"""The training loop of ``modelport distill``: teacher-forced cross-entropy on
the teacher's translations.

What it does, as fairseq's and Marian's trainers do: token-bucketed batches
(sentences sorted by length, cut at ``max_tokens`` padded tokens, the batch
order shuffled per epoch from the seed), AdamW with an inverse-square-root
schedule after a linear warm-up, label smoothing, gradient accumulation over
``accumulate`` batches (the loss normalised by the tokens of the whole
update, so it equals one big batch), optional bf16 autocast, a checkpoint
every ``save_every`` updates and on Ctrl-C, dev BLEU/chrF every
``eval_every`` updates with early stopping after ``patience`` evaluations
without a better score.

``accelerate`` does what it is made for: device placement, the
DistributedDataParallel wrapper under torchrun (gloo on CPU, nccl on CUDA),
gradient synchronisation only on an update's last batch, and bf16 autocast.
Checkpoints are modelport's own (safetensors for the weights, optimizer state
read back with ``torch.load(weights_only=True)``): ``Accelerator.save_state``
pickles RNG states that ``load_state`` unpickles, and a work directory must
never be a way to run code. Nothing here draws random numbers after the
student's initialisation, so the batch order (a function of seed and epoch)
is all a resumed run needs to continue exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import Tensor

from modelport.errors import InvalidInputError
from modelport.generation.scoring import teacher_forcing_batch
from modelport.generation.shards import World, broadcast
from modelport.generation.translate import make_batches, pad_batch
from modelport.model.transformer import Seq2SeqModel

TRAIN_DIR = "train"
METRICS = ("bleu", "chrf")
INTERRUPTED = "interrupted"


class _DeferredInterrupt:
    """Ctrl-C during an update is acted on when the update ends: the
    checkpoint then holds weights, optimizer state and counters of the same
    update, so ``--resume`` continues exactly there. A second Ctrl-C
    interrupts at once (the default handler is back)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass(frozen=True)
class TrainOptions:
    """Every knob of the loop (the CLI's ``--max-tokens``, ``--lr``, ...)."""

    max_tokens: int = 4096
    lr: float = 5e-4
    warmup_updates: int = 200
    label_smoothing: float = 0.1
    weight_decay: float = 0.0
    clip_norm: float = 0.0  # 0: no clipping
    accumulate: int = 1
    bf16: bool = False
    max_updates: int | None = None
    max_epochs: int = 10
    max_minutes: float | None = None
    save_every: int = 200
    eval_every: int = 200
    patience: int = 5
    metric: str = "bleu"
    seed: int = 1
    log_every: int = 10

    def check(self) -> None:
        """Bad values as one :class:`InvalidInputError`, before any work."""
        problems = []
        for name in ("max_tokens", "warmup_updates", "accumulate", "max_epochs", "save_every", "eval_every",
                     "patience", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be >= 1, but is {getattr(self, name)}")
        if self.max_updates is not None and self.max_updates < 1:
            problems.append(f"--max-updates must be >= 1, but is {self.max_updates}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"--max-minutes must be > 0, but is {self.max_minutes}")
        if not self.lr > 0:
            problems.append(f"--lr must be > 0, but is {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"--label-smoothing must be in [0, 1), but is {self.label_smoothing}")
        if self.metric not in METRICS:
            problems.append(f"--metric must be one of {', '.join(METRICS)}, but is {self.metric}")
        if problems:
            raise InvalidInputError("; ".join(problems))


@dataclass
class TrainResult:
    """The weights kept (best dev score, else the last) and how training went."""

    state: dict[str, Tensor]
    log: list[dict[str, Any]]
    updates: int
    epochs_started: int
    stopped: str
    seconds: float
    best_update: int | None = None
    best_dev: float | None = None


@dataclass
class _Progress:
    """What a checkpoint records besides weights and optimizer state."""

    update: int = 0
    epoch: int = 0  # the epoch in progress (0-based)
    group: int = 0  # the next update's index within the epoch
    best: float | None = None
    best_update: int | None = None
    bad_evals: int = 0
    seconds: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)
    # (loss, target tokens) of each update since the last log line: after a resume the next line
    # averages the very updates an uninterrupted run's does, those before the interruption included
    window: list[tuple[float, int]] = field(default_factory=list)


Pairs = list[tuple[list[int], list[int]]]
Evaluate = Callable[[Seq2SeqModel], dict[str, float]]


def lr_factor(update: int, warmup: int) -> float:
    """Linear warm-up to 1 over ``warmup`` updates, then ``sqrt(warmup / update)``."""
    step = update + 1
    return step / warmup if step < warmup else math.sqrt(warmup / step)


def epoch_groups(pairs: Pairs, opts: TrainOptions, epoch: int, where: World) -> list[list[list[int]]]:
    """This rank's updates of ``epoch``: lists of ``accumulate`` batches (lists of pair indices).

    Batches are the same every epoch (length-sorted, cut at ``max_tokens``);
    their order is a permutation drawn from ``seed`` and ``epoch``. Each rank
    takes every ``world``-th batch, all ranks the same number (the remainder
    waits for the next epoch's shuffle), so DDP never waits on a missing one."""
    batches = make_batches([max(len(s), len(t)) for s, t in pairs], batch_size=None, max_tokens=opts.max_tokens)
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(opts.seed * 1000 + epoch)).tolist()
    per_rank = len(order) // where.size
    mine = [batches[i] for i in order[where.rank::where.size][:per_rank]]
    return [mine[i:i + opts.accumulate] for i in range(0, len(mine), opts.accumulate)]


def _tensors(pairs: Pairs, batch: list[int], pad: int, start: int, device: torch.device
             ) -> tuple[Tensor, Tensor, Tensor]:
    src, prev, _ = teacher_forcing_batch([pairs[i][0] for i in batch], [pairs[i][1] for i in batch], pad, start,
                                         device=device)
    target = pad_batch([pairs[i][1] for i in batch], -100, left=False, device=device)
    return src, prev, target


class _Checkpoints:
    """``train/last`` (resume) and ``train/best`` (the kept weights) in the work directory, rank 0 only."""

    def __init__(self, work_dir: Path) -> None:
        self.root = work_dir / TRAIN_DIR

    def exists(self) -> bool:
        return (self.root / "last" / "state.json").is_file()

    def save(self, name: str, model: Seq2SeqModel, optimizer: torch.optim.Optimizer | None = None,
             scheduler: Any = None, progress: _Progress | None = None) -> None:
        """Write ``train/<name>`` through a temporary sibling renamed into place."""
        final = self.root / name
        tmp = self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(model, str(tmp / "model.safetensors"))
        if optimizer is not None:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        if progress is not None:
            (tmp / "state.json").write_text(json.dumps(progress.__dict__, indent=1) + "\n", encoding="utf-8")
        old = self.root / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def load(self, name: str, model: Seq2SeqModel) -> None:
        missing, unexpected = load_model(model, str(self.root / name / "model.safetensors"), strict=False)
        if unexpected or [k for k in missing if k not in _aliases(model)]:
            raise InvalidInputError(f"checkpoint `{self.root / name}` does not fit the student (missing "
                                    f"{missing[:3]}, unexpected {unexpected[:3]}); start over with --force "
                                    "(without --resume)")

    def resume_state(self) -> tuple[dict[str, Any], _Progress]:
        last = self.root / "last"
        try:
            saved = torch.load(last / "optimizer.pt", map_location="cpu", weights_only=True)
            progress = _Progress(**json.loads((last / "state.json").read_text(encoding="utf-8")))
            progress.window = [(float(loss), int(tokens)) for loss, tokens in progress.window]  # JSON gave lists
        except (OSError, ValueError, TypeError, RuntimeError) as e:
            raise InvalidInputError(f"checkpoint `{last}` cannot be read ({type(e).__name__}: {e}); start over with "
                                    "--force (without --resume)") from None
        return saved, progress


def _aliases(model: Seq2SeqModel) -> set[str]:
    """State-dict names that are another name's tensor (shared embeddings)."""
    seen: dict[int, str] = {}
    out = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = id(tensor)
        if key in seen:
            out.add(name)
        seen[key] = name
    return out


def token_loss(logits: Tensor, target: Tensor, smoothing: float, emittable: Tensor | None = None) -> Tensor:
    """Summed cross-entropy of ``target`` (-100: ignored) under ``logits`` (rows x classes), with
    ``smoothing`` of the target mass spread evenly over the classes the model can emit (``emittable``,
    a mask; None: all, torch's own label smoothing). Spread over a class whose logit is -inf (the pad a
    Marian port appends, which Marian's vocabulary lacks), the loss was infinite."""
    if emittable is None or smoothing == 0:
        return F.cross_entropy(logits.float(), target, ignore_index=-100, label_smoothing=smoothing, reduction="sum")
    logp = logits.float().log_softmax(-1)
    kept = target.ne(-100)
    nll = -logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    spread = -logp.masked_fill(~emittable, 0.0).sum(-1) / emittable.sum()
    return ((1 - smoothing) * nll + smoothing * spread)[kept].sum()


def train(model: Seq2SeqModel, pairs: Pairs, opts: TrainOptions, work_dir: Path, where: World, *,
          evaluate: Evaluate | None = None, resume: bool = False, progress: bool = False) -> TrainResult:
    """Train ``model`` (rank 0's weights are the start: DDP copies them to
    the other ranks) on ``pairs`` of (source ids, target ids + EOS). With
    ``resume``, continue from ``work_dir``'s last checkpoint. ``evaluate``
    (rank 0) returns ``{"bleu", "chrf"}`` of a model on the dev set."""
    from accelerate import Accelerator  # lazy: only training needs it
    from accelerate.state import AcceleratorState

    opts.check()
    cfg = model.cfg
    checkpoints = _Checkpoints(work_dir)
    state = _Progress()
    saved: dict[str, Any] | None = None
    if resume and where.is_main and checkpoints.exists():
        saved, state = checkpoints.resume_state()
        checkpoints.load("last", model)
    saved, state = broadcast((saved, state), where)  # type: ignore[misc]
    torch.manual_seed(opts.seed)
    # accelerate keeps one process-wide state; a second training in this process (the Python API) may
    # ask for another precision: start that state over (the process group, PartialState, is kept)
    AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="bf16" if opts.bf16 else "no")
    model.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, betas=(0.9, 0.98), eps=1e-8,
                                  weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda u: lr_factor(u, opts.warmup_updates))
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    pad, start_id = cfg.pad_token_id, cfg.decoder_start_token_id
    vocab = cfg.target_vocab_size
    bias = model.final_logits_bias
    # a Marian port's appended pad (and filler) rows have a -inf logit: never emitted, never smoothed onto
    emittable = None if bias is None or bool(bias.isfinite().all()) else bias.isfinite().to(device)
    log_path = work_dir / TRAIN_DIR / "log.jsonl"
    started = time.perf_counter() - state.seconds
    stopped = ""

    def write_log(row: dict[str, Any]) -> None:
        state.log.append(row)
        if where.is_main:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    def decide(stop: str) -> str:
        """Rank 0's decision to stop, on every rank."""
        return str(broadcast(stop, where))

    if where.is_main:  # the log restarts from what the checkpoint recorded
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("".join(json.dumps(r) + "\n" for r in state.log), encoding="utf-8")
    total_updates = opts.max_updates or opts.max_epochs * len(epoch_groups(pairs, opts, 0, where))
    from tqdm.auto import tqdm  # only when training

    bar = tqdm(total=total_updates, initial=state.update, unit="update", desc="training", disable=not (
        progress and where.is_main), leave=False, dynamic_ncols=True)
    with _DeferredInterrupt() as interrupt, bar:
        while not stopped:
            if state.epoch >= opts.max_epochs:
                stopped = "max epochs"
                break
            if opts.max_updates is not None and state.update >= opts.max_updates:
                stopped = "max updates"  # a resumed run that had finished training
                break
            groups = epoch_groups(pairs, opts, state.epoch, where)
            if not groups:
                raise InvalidInputError(f"no full batch per process: {len(pairs)} pairs are too few for "
                                        f"{where.size} processes at --batch-tokens {opts.max_tokens}")
            for g in range(state.group, len(groups)):
                group = groups[g]
                tokens = sum(len(pairs[i][1]) for batch in group for i in batch)
                loss_sum = 0.0
                for j, batch in enumerate(group):
                    src, prev, target = _tensors(pairs, batch, pad, start_id, device)
                    sync = contextlib.nullcontext() if j == len(group) - 1 else accelerator.no_sync(wrapped)
                    with sync:
                        logits = wrapped(src, prev)
                        loss = token_loss(logits.reshape(-1, vocab), target.reshape(-1), opts.label_smoothing,
                                          emittable) / tokens
                        accelerator.backward(loss)
                    loss_sum += loss.item()
                if opts.clip_norm > 0:
                    accelerator.clip_grad_norm_(wrapped.parameters(), opts.clip_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.update += 1
                state.group = g + 1
                state.window.append((loss_sum, tokens))
                bar.update(1)
                if state.update % opts.log_every == 0:
                    mean = sum(x * n for x, n in state.window) / max(sum(n for _, n in state.window), 1)
                    state.window = []
                    state.seconds = round(time.perf_counter() - started, 1)
                    write_log({"update": state.update, "epoch": state.epoch + 1, "loss": round(mean, 5),
                               "lr": scheduler.get_last_lr()[0], "seconds": state.seconds})
                    bar.set_postfix_str(f"loss {mean:.3f}", refresh=False)
                    if opts.max_minutes is not None and state.seconds > 60 * opts.max_minutes:
                        stopped = "time limit"
                if evaluate is not None and state.update % opts.eval_every == 0:
                    stopped = _evaluate(accelerator.unwrap_model(wrapped), evaluate, state, opts, where,
                                        checkpoints, write_log) or stopped
                if opts.max_updates is not None and state.update >= opts.max_updates:
                    stopped = stopped or "max updates"
                if interrupt.requested:  # Ctrl-C (torchrun forwards it to every rank): rank 0 decides below
                    stopped = INTERRUPTED
                stopped = decide(stopped)
                state.seconds = round(time.perf_counter() - started, 1)
                if where.is_main and (state.update % opts.save_every == 0 or stopped):
                    checkpoints.save("last", accelerator.unwrap_model(wrapped), optimizer, scheduler, state)
                if stopped:
                    break
            else:
                state.epoch += 1
                state.group = 0
    if stopped == INTERRUPTED:
        raise KeyboardInterrupt
    student = accelerator.unwrap_model(wrapped)
    if evaluate is not None and where.is_main and (not state.log or state.log[-1].get("update") != state.update
                                                   or "dev_bleu" not in state.log[-1]):
        _evaluate(student, evaluate, state, opts, where, checkpoints, write_log, final=True)
    kept = None
    if where.is_main and state.best_update is not None:
        kept = Seq2SeqModel(cfg)
        checkpoints.load("best", kept)
    final = kept if kept is not None else student
    weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in final.state_dict().items()}
    seconds = round(time.perf_counter() - started, 1)
    return TrainResult(state=weights, log=state.log, updates=state.update, epochs_started=state.epoch + 1,
                       stopped=stopped, seconds=seconds, best_update=state.best_update, best_dev=state.best)


def _evaluate(model: Seq2SeqModel, evaluate: Evaluate, state: _Progress, opts: TrainOptions, where: World,
              checkpoints: _Checkpoints, write_log: Callable[[dict[str, Any]], None], final: bool = False) -> str:
    """Rank 0 scores the dev set; a better score saves ``train/best``; returns
    "early stopping (...)" after ``patience`` evaluations without one."""
    if not where.is_main:
        return ""
    model.eval()
    with torch.no_grad():
        scores = evaluate(model)
    model.train()
    write_log({"update": state.update, "dev_bleu": round(scores["bleu"], 2), "dev_chrf": round(scores["chrf"], 2)})
    score = scores[opts.metric]
    if state.best is None or score > state.best:
        state.best, state.best_update, state.bad_evals = round(score, 2), state.update, 0
        checkpoints.save("best", model)
        return ""
    state.bad_evals += 1
    if not final and state.bad_evals >= opts.patience:
        return f"early stopping (no better dev {opts.metric} in {opts.patience} evaluations)"
    return ""


def remove_checkpoints(work_dir: Path) -> None:
    """Forget any training state (a fresh start)."""
    shutil.rmtree(work_dir / TRAIN_DIR, ignore_errors=True)


__all__ = ["METRICS", "TRAIN_DIR", "TrainOptions", "TrainResult", "epoch_groups", "lr_factor",
           "remove_checkpoints", "train"]
