"""Batched beam search over the unified model: one loop, one step algorithm per
framework's semantics.

The loop (:func:`run_search`) owns the model side: it encodes the batch,
expands it by the beam, feeds the newest token of every live row to the
decoder (KV cache), and applies the step algorithm's reorder index to the
encoder outputs and caches. The step algorithms own the search side: masks,
candidate selection, finalization and stopping, each a transcription of its
framework's code, with that framework's rules written beside it. A step
returns the rows of the next batch as indices into the current one; sentences
that are done are simply left out, so the batch shrinks as sentences finish.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from modelport.errors import InvalidInputError
from modelport.generation.alignment import alignment_layer_index, parse_alignment
from modelport.generation.backend import SearchBackend
from modelport.generation.ensemble import Ensemble, LogLinearEnsemble
from modelport.generation.hypothesis import Hypothesis
from modelport.generation.options import FairseqOptions, HFOptions, MarianOptions, hf_length_limits
from modelport.generation.shortlist import LexicalShortlist, ShortlistBackend
from modelport.generation.topk import best_of_runs, topk
from modelport.model.layers import run_slots
from modelport.model.transformer import Seq2SeqModel


class StepAlgorithm(Protocol):
    """What :func:`run_search` (and :func:`~modelport.generation.translate.generate`)
    call on a step algorithm; :class:`SearchAlgorithm` gives the defaults."""

    # the decoder's raw fp32 logits instead of log-probabilities (sampling warps logits)
    wants_logits: bool
    # divides the logits before the log-softmax (fairseq's --temperature)
    temperature: float
    # the decoder layer (0-based) whose cross-attention the loop hands to
    # record_attention at every step (Marian's word alignments); None: none
    alignment_layer: int | None

    def prepare_source(self, src_tokens: Sequence[Sequence[int]] | Tensor) -> Sequence[Sequence[int]] | Tensor:
        """The source rows as this search reads them (Marian: ``--max-length`` on the source)."""

    def make_ensemble(self, models: Sequence[Seq2SeqModel]) -> Ensemble:
        """How the members' scores combine (fairseq/hf: mean probability; Marian: weighted sum)."""

    def make_backend(self, backend: SearchBackend) -> SearchBackend:
        """Another runtime's model as this search reads it (Marian: over a shortlist's rows)."""

    def start(self, bsz: int, src_tokens: Tensor) -> int:
        """Allocate buffers; return the beam size (rows per sentence)."""

    def next_tokens(self) -> Tensor:
        """The token each live row feeds the decoder next, ``[rows, 1]``."""

    def step(self, step: int, lprobs: Tensor) -> tuple[Tensor, bool] | None:
        """Consume the decoder's log-probs ``[rows, V]``; return (reorder index
        into the current rows, whether sentences were dropped), or None when done."""

    def rows_per_sentence(self, beam: int) -> int | list[int]:
        """The consecutive rows of each live sentence after the last :meth:`step`,
        one number for all or one per sentence (the loop lets each sentence's rows
        share one row of the encoder side); ``beam``: what :meth:`start` returned."""

    def results(self) -> list[list[Hypothesis]]:
        """n-best hypotheses per input sentence, in input order."""


class SearchAlgorithm:
    """Defaults of the :class:`StepAlgorithm` interface: log-probabilities at
    temperature 1, the source as given, fairseq's probability-averaging ensemble."""

    wants_logits: bool = False
    temperature: float = 1.0
    alignment_layer: int | None = None

    def prepare_source(self, src_tokens: Sequence[Sequence[int]] | Tensor) -> Sequence[Sequence[int]] | Tensor:
        return src_tokens

    def record_attention(self, weights: Tensor) -> None:
        """The cross-attention probabilities ``[rows, S]`` of ``alignment_layer`` at
        this step, one row per row of the coming :meth:`step`'s log-probs."""
        raise NotImplementedError(f"{type(self).__name__} records no attention")

    def make_ensemble(self, models: Sequence[Seq2SeqModel]) -> Ensemble:
        return Ensemble(models)

    def make_backend(self, backend: SearchBackend) -> SearchBackend:
        """Another runtime's model (one, no ensemble) as this search reads it."""
        return backend

    def rows_per_sentence(self, beam: int) -> int:
        return beam


class NaNLogProbs(ArithmeticError):
    """The model produced NaN log-probabilities at ``step`` (non-finite weights
    or an overflow in reduced precision); the caller names the input line."""

    def __init__(self, step: int) -> None:
        super().__init__(f"NaN log-probabilities at step {step}")
        self.step = step


@torch.inference_mode()
def run_search(models: Sequence[Seq2SeqModel] | Seq2SeqModel | Ensemble | SearchBackend, src_tokens: Tensor,
               algorithm: StepAlgorithm, temperature: float | None = None,
               encoder_runs: Sequence[tuple[int, int]] | None = None) -> list[list[Hypothesis]]:
    """The loop shared by every semantics: encode, decode the first step once
    per sentence, expand by beam, decode with the KV cache, reorder by the
    algorithm's index, stop when it says so.

    At step 0 every beam of a sentence holds the same single start token, so
    the decoder runs on one row per sentence and its output, the encoder
    states and the caches (incl. the cross-attention keys computed there)
    are then copied ``beam`` times. The frameworks compute all ``beam`` rows;
    each row's arithmetic is the same, so the results are too. ``temperature``
    overrides the algorithm's. ``encoder_runs``: runs of rows ``(start, end)``
    encoded apart (the batches of a group, see :func:`~modelport.generation.groups.encoder_runs`)."""
    ens = models if isinstance(models, (Ensemble, SearchBackend)) else Ensemble(models)
    if temperature is None:
        temperature = algorithm.temperature
    bsz = src_tokens.size(0)
    beam = algorithm.start(bsz, src_tokens)
    align_layer = algorithm.alignment_layer
    if align_layer is not None:
        if not isinstance(ens, Ensemble):
            raise InvalidInputError("word alignments (`alignment`) need the torch backend, not another runtime")
        ens.record_cross_attention(align_layer)
    ens.encode(src_tokens, encoder_runs)
    expand = torch.arange(bsz, device=src_tokens.device).repeat_interleave(beam)
    first = algorithm.next_tokens()
    shared_start = beam > 1 and torch.equal(first, first[::beam].index_select(0, expand))
    if not shared_start:  # rows of a sentence start differently: decode them all
        ens.reorder_encoder(expand)
    wants_logits = algorithm.wants_logits
    step = 0
    while True:
        tokens = algorithm.next_tokens()
        if step == 0 and shared_start:
            tokens = tokens[::beam]
        if wants_logits:
            lprobs = ens.logits(tokens)
        else:
            lprobs = ens.log_probs(tokens, temperature)
        # NaN spreads over a whole row through the log-softmax, so one column
        # tells (the search cannot rank NaN and would run to its length cap);
        # raw logits (wants_logits) may hold NaN elsewhere, which translate's
        # per-hypothesis score check catches
        if bool(torch.isnan(lprobs[:, -1]).any()):
            raise NaNLogProbs(step)
        if step == 0 and shared_start:
            lprobs = lprobs.index_select(0, expand)
            ens.reorder(expand, cross=True, group=beam)
        if align_layer is not None:
            weights = ens.cross_attention()
            algorithm.record_attention(weights.index_select(0, expand) if step == 0 and shared_start else weights)
        out = algorithm.step(step, lprobs)
        if out is None:
            break
        index, dropped = out
        # Beams of one sentence share their cross-attention keys, so a pure
        # within-sentence permutation keeps them; dropping sentences does not.
        ens.reorder(index, cross=dropped, group=algorithm.rows_per_sentence(beam))
        step += 1
    return algorithm.results()


# ---------------------------------------------------------------------------
# fairseq


def _block_ngrams(tokens: Tensor, lprobs: Tensor, step: int, n: int) -> Tensor:
    """fairseq's intended n-gram blocking (<= 0.10, and 0.12's CUDA kernel):
    the last ``n - 1`` tokens of ``tokens[:, :step + 1]`` (the leading EOS
    included) may not be followed by a token that followed them before."""
    if step + 2 - n < 0:
        return lprobs
    rows = tokens[:, : step + 1].tolist()
    for r, toks in enumerate(rows):
        key = toks[step + 2 - n: step + 1]
        banned = [toks[i + n - 1] for i in range(step + 2 - n) if toks[i: i + n - 1] == key]
        if banned:
            lprobs[r, banned] = -math.inf
    return lprobs


def _block_ngrams_cpu_012(tokens: Tensor, lprobs: Tensor, step: int, n: int) -> Tensor:
    """fairseq 0.12's CPU n-gram blocker (``NGramRepeatBlock._no_repeat_ngram``,
    the pure-Python path taken whenever the CUDA extension is not usable).

    ``SequenceGenerator._generate`` hands it the *whole* token buffer
    (``bsz * beam`` rows of ``max_len + 2`` columns: the leading EOS, the
    tokens so far, then pad up to the end), after the unk/max_len/min_len
    masks and before the beam step. Nothing happens while ``step + 2 - n < 0``.
    Otherwise the n-gram prefix it looks for is the last ``n - 1`` entries
    *of the buffer row* (``row[-(n - 1):]``; for ``n == 1`` that slice is the
    whole row), compared with every window ``row[i:i + n - 1]``,
    ``i < step + 2 - n``, the token after a matching window being banned.
    Those windows hold only written tokens, while the buffer's end is pad
    (its last column is never written), so a match needs generated pad
    tokens: in practice it blocks nothing. The rule is reproduced as
    written, on a buffer of the same shape, so that it stays exact."""
    count = step + 2 - n  # windows i = 0 .. count - 1
    if count <= 0 or n < 2:  # n == 1: an empty window never equals the whole row
        return lprobs
    key = tokens[:, -(n - 1):]  # the buffer's tail, not the last generated tokens
    written = tokens[:, : step + 1]
    windows = written.unfold(1, n - 1, 1)[:, :count]  # [rows, count, n - 1]
    match = windows.eq(key.unsqueeze(1)).all(-1)
    if bool(match.any()):
        rows, idx = match.nonzero(as_tuple=True)
        lprobs[rows, written[rows, idx + n - 1]] = -math.inf
    return lprobs


# the most hypotheses x tokens a beam search's buffers may hold (about 1.5 GB of token ids and scores; a
# 256-line group at beam 50 and 1,024 positions holds 13M): a --beam of 10**6 or a max_length of 10**8, from a
# flag or a downloaded folder's generation_config.json, asked for terabytes
MAX_SEARCH_CELLS = 1 << 27


def check_search_size(rows: int, length: int, flags: str) -> None:
    """Refuse, before allocating, a search whose buffers would hold more than :data:`MAX_SEARCH_CELLS`."""
    if rows * length > MAX_SEARCH_CELLS:
        raise InvalidInputError(f"this search would hold {rows:,} hypotheses of up to {length:,} tokens, more than "
                                f"{MAX_SEARCH_CELLS:,} in all: lower {flags}")


def line_widths(batch_widths: Sequence[int] | None, src_tokens: Tensor) -> Sequence[int]:
    """The padded source width of each line's batch, which sets its length cap (fairseq's and Marian's):
    ``batch_widths`` when lines of several batches are decoded together, else the width of ``src_tokens``."""
    bsz = src_tokens.size(0)
    if batch_widths is None:
        return (src_tokens.size(1),) * bsz
    if len(batch_widths) != bsz:
        raise InvalidInputError(f"`batch_widths` must give one width per line ({bsz}), but gives {len(batch_widths)}")
    return batch_widths


class FairseqBeamSearch(SearchAlgorithm):
    """fairseq 0.12 ``SequenceGenerator._generate`` with ``search.BeamSearch``.

    Per step, in this order (``sequence_generator.py``):
      1. ``lprobs[nan] = -inf``; ``lprobs[:, pad] = -inf``; ``lprobs[:, unk] -= unk_penalty``.
      2. ``step >= max_len``: every token but EOS -inf; EOS keeps its log-prob. ``max_len`` is
         ``max_len_a * W + max_len_b`` for ``W`` the padded source width of the batch, or of each line's own
         batch (``batch_widths``) when several batches are decoded together.
      3. ``step < len(prefix_tokens)``: every token but the prefix's -inf (it keeps
         its log-prob); otherwise ``step < min_len``: EOS -inf.  4. n-gram blocking (``ngram_blocking``:
         fairseq 0.12's CPU blocker by default, see :func:`_block_ngrams_cpu_012`;
         ``"intended"`` as its CUDA kernel and fairseq <= 0.10, :func:`_block_ngrams`).
      5. ``BeamSearch.step``: step 0 uses beam 0 only, else add the cumulative
         score; ``topk(min(2 * beam, beam * V - 1))`` over beam x V.
      6. EOS candidates with finite score among the first ``beam`` (and not
         ignored) are finalized: score / (step + 1) ** lenpen; a sentence keeps
         at most ``beam`` and is finished when it has ``beam`` or ``step == max_len`` (its own).
      7. Finished sentences leave the batch; the first ``beam`` non-EOS
         candidates continue.
    """

    def __init__(self, cfg: Any, opts: FairseqOptions, max_positions: int) -> None:
        self.opts = opts
        self.temperature = opts.temperature
        self.pad, self.unk, self.eos = cfg.pad_token_id, cfg.unk_token_id, cfg.eos_token_id
        self.start_token = cfg.decoder_start_token_id
        self.vocab = cfg.target_vocab_size
        self.max_positions = opts.max_len or max_positions
        # the max beam size is the dictionary size - 1, since pad is never selected
        self.beam = min(opts.beam, self.vocab - 1)
        if opts.generator_eos is not None:  # SequenceGenerator(eos=...): start from it, stop on it
            self.eos = self.start_token = opts.generator_eos
        if self.eos in opts.prefix_tokens:
            raise InvalidInputError("`prefix_tokens` must not hold </s> (fairseq then copies the beams; not supported)")

    def start(self, bsz: int, src_tokens: Tensor) -> int:
        o, beam = self.opts, self.beam
        widths = line_widths(o.batch_widths, src_tokens)  # the padded width of each line's batch, as fairseq uses it
        # each sentence's max_len; the buffers are as wide as the largest
        # the minimum before int(): max_len_a 1e308 times a width is inf, which int() refuses (the same value else)
        self.caps = [int(min(o.max_len_a * w + o.max_len_b, self.max_positions - 1)) for w in widths]
        self.max_len, self.min_cap = max(self.caps), min(self.caps)
        if o.min_len > self.min_cap:
            raise InvalidInputError(f"`min_len` must be <= the length cap (max_len_a x the batch's source width + "
                                    f"max_len_b, below the model's positions), which is {self.min_cap} here, but is "
                                    f"{o.min_len} (fairseq refuses it too): lower --min-len or raise --max-len-a/"
                                    "--max-len-b")
        if self.min_cap < self.max_len and o.no_repeat_ngram_size > 0 and o.ngram_blocking != "intended":
            raise InvalidInputError("`batch_widths` of unequal length caps cannot be decoded together with fairseq "
                                    "0.12's CPU n-gram blocker, which reads the token buffer as wide as the cap")
        dev = src_tokens.device
        # per live sentence, while the caps differ (None: one cap for all, fairseq's own case)
        self.live_caps = None if self.min_cap == self.max_len else torch.tensor(self.caps, device=dev)
        self.bsz = bsz
        check_search_size(bsz * beam, self.max_len + 2, "--beam, --max-len-b or --batch-size")
        self.scores = torch.zeros(bsz * beam, self.max_len + 1, device=dev)
        self.tokens = torch.full((bsz * beam, self.max_len + 2), self.pad, dtype=torch.long, device=dev)
        self.tokens[:, 0] = self.start_token
        self.cands_to_ignore = torch.zeros(bsz, beam, dtype=torch.bool, device=dev)
        self.finalized: list[list[Hypothesis]] = [[] for _ in range(bsz)]
        self.finished = [False] * bsz
        self.sent_ids = torch.arange(bsz, device=dev)  # live row -> input sentence
        self.cand_size = 2 * beam
        self.step_no = 0
        return beam

    def next_tokens(self) -> Tensor:
        return self.tokens[:, self.step_no: self.step_no + 1]

    def step(self, step: int, lprobs: Tensor) -> tuple[Tensor, bool] | None:
        o, beam, bsz = self.opts, self.beam, self.bsz
        V = lprobs.size(-1)
        # A NaN fills its whole row after the log-softmax, so one column tells whether
        # fairseq's mask has anything to do (it never has under run_search, which
        # stops at NaN); a full pass over beam x vocabulary costs 3% at 32k words.
        if bool(torch.isnan(lprobs[:, -1]).any()):
            lprobs.masked_fill_(lprobs.isnan(), -math.inf)
        lprobs[:, self.pad] = -math.inf  # never select pad
        lprobs[:, self.unk] -= o.unkpen
        capped = None  # rows at their sentence's max_len, while only some are
        if step >= self.max_len:  # only EOS, with its real log-prob
            lprobs[:, : self.eos] = -math.inf
            lprobs[:, self.eos + 1:] = -math.inf
        elif self.live_caps is not None and step >= self.min_cap:
            capped = self.live_caps.le(step).repeat_interleave(beam)
            lprobs[capped, : self.eos] = -math.inf
            lprobs[capped, self.eos + 1:] = -math.inf
        if step < len(o.prefix_tokens) and step < self.max_len:
            # _prefix_tokens: only the prefix token, with its own log-prob (a pad prefix forces nothing); a row
            # at its max_len takes fairseq's other branch (min_len), which cannot apply there (min_len <= max_len)
            forced = o.prefix_tokens[step]
            if forced != self.pad:
                kept = lprobs[:, forced].clone()
                if capped is None:
                    lprobs.fill_(-math.inf)
                    lprobs[:, forced] = kept
                else:
                    free = ~capped
                    lprobs[free] = -math.inf
                    lprobs[:, forced] = torch.where(free, kept, lprobs[:, forced])
        elif step < o.min_len:  # min_len does not apply while the prefix is forced
            lprobs[:, self.eos] = -math.inf
        if o.no_repeat_ngram_size > 0:
            block = _block_ngrams if o.ngram_blocking == "intended" else _block_ngrams_cpu_012
            lprobs = block(self.tokens, lprobs, step, o.no_repeat_ngram_size)

        # search.BeamSearch.step
        lp = lprobs.view(bsz, -1, V)
        if step == 0:  # all beams are equal: look at the first one only
            lp = lp[:, ::beam, :].contiguous()
        else:  # in place: the log-probs are this step's own buffer
            lp = lp.add_(self.scores.view(bsz, beam, -1)[:, :, step - 1].unsqueeze(-1))
        flat = lp.view(bsz, -1)
        cand_scores, cand_idx = topk(flat, min(2 * beam, flat.size(1) - 1))
        cand_beams = torch.div(cand_idx, V, rounding_mode="trunc")
        cand_indices = cand_idx.fmod(V)

        bbsz_offsets = (torch.arange(0, bsz, device=lprobs.device) * beam).unsqueeze(1)
        cand_bbsz_idx = cand_beams.add(bbsz_offsets)
        # EOS is finalized only from the first `beam` candidates
        eos_mask = cand_indices.eq(self.eos) & cand_scores.ne(-math.inf)
        eos_mask[:, :beam][self.cands_to_ignore] = False
        eos_bbsz_idx = torch.masked_select(cand_bbsz_idx[:, :beam], mask=eos_mask[:, :beam])
        finalized_rows: list[int] = []
        if eos_bbsz_idx.numel() > 0:
            eos_scores = torch.masked_select(cand_scores[:, :beam], mask=eos_mask[:, :beam])
            finalized_rows = self._finalize(step, eos_bbsz_idx, eos_scores)
        if all(self.finished):
            return None
        assert step < self.max_len

        batch_idxs: Tensor | None = None
        if finalized_rows:
            new_bsz = bsz - len(finalized_rows)
            keep = torch.ones(bsz, dtype=torch.bool, device=lprobs.device)
            keep[finalized_rows] = False
            batch_idxs = torch.arange(bsz, device=lprobs.device).masked_select(keep)
            eos_mask = eos_mask[batch_idxs]
            cand_beams = cand_beams[batch_idxs]
            bbsz_offsets = bbsz_offsets[:new_bsz]
            cand_bbsz_idx = cand_beams.add(bbsz_offsets)
            cand_scores = cand_scores[batch_idxs]
            cand_indices = cand_indices[batch_idxs]
            self.cands_to_ignore = self.cands_to_ignore[batch_idxs]
            self.sent_ids = self.sent_ids[batch_idxs]
            if self.live_caps is not None:
                self.live_caps = self.live_caps[batch_idxs]
            self.scores = self.scores.view(bsz, -1)[batch_idxs].view(new_bsz * beam, -1)
            self.tokens = self.tokens.view(bsz, -1)[batch_idxs].view(new_bsz * beam, -1)
            self.bsz = bsz = new_bsz

        # the first `beam` candidates that are neither EOS nor ignored continue
        eos_mask[:, :beam] = ~((~self.cands_to_ignore) & (~eos_mask[:, :beam]))
        cand_offsets = torch.arange(0, self.cand_size, device=lprobs.device)
        active_mask = torch.add(eos_mask.long() * self.cand_size, cand_offsets[: eos_mask.size(1)])
        new_cands_to_ignore, active_hypos = torch.topk(active_mask, k=beam, dim=1, largest=False)
        self.cands_to_ignore = new_cands_to_ignore.ge(self.cand_size)[:, :beam]
        assert (~self.cands_to_ignore).any(dim=1).all()
        active_bbsz_idx = torch.gather(cand_bbsz_idx, dim=1, index=active_hypos).view(-1)

        self.tokens[:, : step + 1] = torch.index_select(self.tokens[:, : step + 1], dim=0, index=active_bbsz_idx)
        self.tokens.view(bsz, beam, -1)[:, :, step + 1] = torch.gather(cand_indices, dim=1, index=active_hypos)
        if step > 0:
            self.scores[:, :step] = torch.index_select(self.scores[:, :step], dim=0, index=active_bbsz_idx)
        self.scores.view(bsz, beam, -1)[:, :, step] = torch.gather(cand_scores, dim=1, index=active_hypos)
        self.step_no = step + 1

        # index into the rows the caches hold now (before dropping sentences)
        reorder = active_bbsz_idx
        if batch_idxs is not None:
            corr = batch_idxs - torch.arange(batch_idxs.numel(), device=batch_idxs.device)
            reorder = (reorder.view(-1, beam) + corr.unsqueeze(-1) * beam).view(-1)
        return reorder, batch_idxs is not None

    def _finalize(self, step: int, bbsz_idx: Tensor, eos_scores: Tensor) -> list[int]:
        """``SequenceGenerator.finalize_hypos``: returns the live rows (sentence
        positions in the current batch) that became finished."""
        beam = self.beam
        tokens_clone = self.tokens.index_select(0, bbsz_idx)[:, 1: step + 2]  # skip the leading EOS
        tokens_clone[:, step] = self.eos
        pos_scores = self.scores.index_select(0, bbsz_idx)[:, : step + 1]
        pos_scores[:, step] = eos_scores
        pos_scores[:, 1:] = pos_scores[:, 1:] - pos_scores[:, :-1]  # cumulative -> per position
        if self.opts.normalize_scores:
            eos_scores = eos_scores / (step + 1) ** self.opts.lenpen
        unfin_idx = torch.div(bbsz_idx, beam, rounding_mode="trunc")
        sent = self.sent_ids[unfin_idx].tolist()
        tok_list, pos_list, score_list = tokens_clone.tolist(), pos_scores.tolist(), eos_scores.tolist()
        for i, s in enumerate(sent):
            if len(self.finalized[s]) < beam:
                self.finalized[s].append(Hypothesis(tokens=tok_list[i], score=score_list[i],
                                                    positional_scores=pos_list[i]))
        newly: list[int] = []
        for s, u in sorted(set(zip(sent, unfin_idx.tolist()))):
            if not self.finished[s] and (len(self.finalized[s]) == beam or step == self.caps[s]):
                self.finished[s] = True
                newly.append(u)
        return newly

    def results(self) -> list[list[Hypothesis]]:
        out = []
        for hyps in self.finalized:
            # fairseq: torch.sort(scores, descending=True) over the finalized list
            # (Python floats sorted on the CPU, not a tensor of the search)
            order = torch.sort(torch.tensor([h.score for h in hyps], device="cpu"), descending=True)[1].tolist()
            out.append([hyps[i] for i in order][: self.opts.nbest])
        return out


# ---------------------------------------------------------------------------
# transformers


def _hf_banned_ngrams(seqs: list[list[int]], n: int, cur_len: int) -> list[list[int]]:
    """transformers ``NoRepeatNGramLogitsProcessor`` (start token included)."""
    if cur_len + 1 < n:
        return [[] for _ in seqs]
    out = []
    for toks in seqs:
        key = toks[cur_len + 1 - n: cur_len]
        out.append([toks[i + n - 1] for i in range(cur_len - n + 1) if toks[i: i + n - 1] == key])
    return out


class HFBeamSearch(SearchAlgorithm):
    """transformers 5.x ``GenerationMixin._beam_search`` (static buffers of
    ``max_length``; finished sentences are dropped from the batch here, which
    changes nothing because their finished set can no longer change).

    Per step, with ``cur_len`` tokens so far (start token included):
      1. log-softmax, then processors: no-repeat n-gram, min length
         (``cur_len < min_length``: EOS -inf), forced BOS at ``cur_len == 1``,
         forced EOS at ``cur_len == max_length - 1`` (all -inf, EOS 0).
      2. ``topk(2 * beam)`` of running score + log-prob over beam x V.
      3. A candidate "hits stopping criteria" when it is EOS or
         ``cur_len + 1 >= max_length``; the best ``beam`` non-hitting ones run on.
      4. Hitting candidates among the first ``beam`` compete with the finished
         set by ``score / (cur_len + 1 - 1) ** length_penalty``; the best
         ``beam`` of the union are kept (evictions happen), unless
         ``early_stopping is True`` and the set is already full, or the
         early-stop heuristic says no improvement is possible.
      5. Heuristic: best running score / L ** lp > worst finished, with
         ``L = max_length - 1`` for ``"never"`` and lp > 0, else ``cur_len - 1``.
    """

    def __init__(self, cfg: Any, opts: HFOptions, max_positions: int) -> None:
        self.opts = opts
        self.pad, self.eos = cfg.pad_token_id, cfg.eos_token_id
        self.start_token = (opts.decoder_start_token_id if opts.decoder_start_token_id is not None
                            else cfg.decoder_start_token_id)
        self.max_length, self.min_length = hf_length_limits(opts, max_positions)
        self.beam = opts.num_beams
        if opts.num_return_sequences > self.beam:
            raise InvalidInputError(f"`num_return_sequences` must be <= num_beams ({self.beam}), "
                             f"but is {opts.num_return_sequences}")

    def start(self, bsz: int, src_tokens: Tensor) -> int:
        beam, L, dev = self.beam, self.max_length, src_tokens.device
        check_search_size(bsz * beam, L, "--beam, --max-length or --batch-size")
        self.bsz = bsz
        self.running = torch.full((bsz, beam, L), self.pad, dtype=torch.long, device=dev)
        self.running[:, :, 0] = self.start_token
        self.running_cum = torch.zeros(bsz, beam, L, device=dev)  # cumulative score after each token
        self.running_scores = torch.zeros(bsz, beam, device=dev)
        self.running_scores[:, 1:] = -1e9  # only beam 0 is looked at first
        self.sequences = self.running.clone()
        self.seq_cum = self.running_cum.clone()
        self.seq_len = torch.zeros(bsz, beam, dtype=torch.long, device=dev)
        self.beam_scores = torch.full((bsz, beam), -1e9, device=dev)
        self.is_finished = torch.zeros(bsz, beam, dtype=torch.bool, device=dev)
        self.unsatisfied = torch.ones(bsz, 1, dtype=torch.bool, device=dev)
        self.sent_ids = torch.arange(bsz, device=dev)
        self.done: list[tuple[int, Tensor, Tensor, Tensor, Tensor]] = []
        self.cur_len = 1
        self.top_mask = torch.arange(2 * beam, device=dev) < beam  # the first `beam` candidates
        return beam

    def next_tokens(self) -> Tensor:
        return self.running[:, :, self.cur_len - 1].reshape(-1, 1)

    def _process(self, lprobs: Tensor) -> Tensor:
        o, cur_len = self.opts, self.cur_len
        if o.no_repeat_ngram_size > 0:
            seqs = self.running[:, :, :cur_len].reshape(-1, cur_len).tolist()
            for r, banned in enumerate(_hf_banned_ngrams(seqs, o.no_repeat_ngram_size, cur_len)):
                if banned:
                    lprobs[r, banned] = -math.inf
        if cur_len < self.min_length:
            lprobs[:, self.eos] = -math.inf
        if o.forced_bos_token_id is not None and cur_len == 1:
            lprobs = torch.full_like(lprobs, -math.inf)
            lprobs[:, o.forced_bos_token_id] = 0
        if o.forced_eos_token_id is not None and cur_len == self.max_length - 1:
            lprobs = torch.full_like(lprobs, -math.inf)
            lprobs[:, o.forced_eos_token_id] = 0
        return lprobs

    def step(self, step: int, lprobs: Tensor) -> tuple[Tensor, bool] | None:
        o, beam, bsz, cur_len = self.opts, self.beam, self.bsz, self.cur_len
        V = lprobs.size(-1)
        lprobs = self._process(lprobs)
        acc = (lprobs.view(bsz, beam, V) + self.running_scores[:, :, None]).reshape(bsz, -1)
        topk_lp, topk_idx = topk(acc, 2 * beam)
        src_beam = topk_idx // V
        ids = topk_idx % V

        def gather(t: Tensor, idx: Tensor) -> Tensor:
            while idx.dim() < t.dim():
                idx = idx.unsqueeze(-1)
            return torch.take_along_dim(t, idx, dim=1)

        topk_seq = gather(self.running, src_beam)
        topk_seq[:, :, cur_len] = ids
        topk_cum = gather(self.running_cum, src_beam)
        topk_cum[:, :, cur_len] = topk_lp
        hits = ids.eq(self.eos) | (cur_len + 1 >= self.max_length)

        # running beams for the next step: the best `beam` that did not stop
        run_lp = topk_lp + hits.to(torch.float32) * -1.0e9
        nxt = torch.topk(run_lp, k=beam)[1]
        self.running = gather(topk_seq, nxt)
        self.running_cum = gather(topk_cum, nxt)
        self.running_scores = gather(run_lp, nxt)
        next_src_beam = gather(src_beam, nxt)

        # finished set: stopping candidates among the first `beam` compete by normalized score
        did = hits & self.top_mask[None, :]
        norm = topk_lp / ((cur_len + 1 - 1) ** o.length_penalty)
        full = torch.all(self.is_finished, dim=-1, keepdim=True) & (o.early_stopping is True)
        norm = norm + full.to(torch.float32) * -1.0e9
        norm = norm + (~self.unsatisfied).to(torch.float32) * -1.0e9
        norm = norm + (~did) * -1.0e9
        merged_scores = torch.cat((self.beam_scores, norm), dim=1)
        keep = torch.topk(merged_scores, k=beam)[1]
        self.sequences = gather(torch.cat((self.sequences, topk_seq), dim=1), keep)
        self.seq_cum = gather(torch.cat((self.seq_cum, topk_cum), dim=1), keep)
        new_len = torch.full_like(ids, cur_len)
        self.seq_len = gather(torch.cat((self.seq_len, new_len), dim=1), keep)
        self.beam_scores = gather(merged_scores, keep)
        self.is_finished = gather(torch.cat((self.is_finished, did), dim=1), keep)

        self.cur_len = cur_len = cur_len + 1
        # early-stop heuristic
        if o.early_stopping == "never" and o.length_penalty > 0.0:
            best_len = self.max_length - 1
        else:
            best_len = cur_len - 1
        best_possible = self.running_scores[:, :1] / (best_len ** o.length_penalty)
        worst = torch.where(self.is_finished, torch.min(self.beam_scores, dim=1, keepdim=True)[0], -1.0e9)
        self.unsatisfied = self.unsatisfied & torch.any(best_possible > worst, dim=-1, keepdim=True)

        all_hit = bool(hits.all())
        sent_done = ~self.unsatisfied[:, 0]
        if o.early_stopping is True:
            sent_done = sent_done | self.is_finished.all(dim=1)
        if all_hit:
            sent_done = torch.ones_like(sent_done)
        reorder = (next_src_beam + torch.arange(bsz, device=ids.device)[:, None] * beam).view(-1)
        if bool(sent_done.any()):
            for r in sent_done.nonzero().view(-1).tolist():
                self.done.append((int(self.sent_ids[r]), self.sequences[r], self.seq_cum[r], self.seq_len[r],
                                  self.beam_scores[r]))
            live = (~sent_done).nonzero().view(-1)
            if live.numel() == 0:
                return None
            for name in ("running", "running_cum", "running_scores", "sequences", "seq_cum", "seq_len",
                         "beam_scores", "is_finished", "unsatisfied", "sent_ids"):
                setattr(self, name, getattr(self, name)[live])
            self.bsz = live.numel()
            reorder = reorder.view(bsz, beam)[live].view(-1)
            return reorder, True
        return reorder, False

    def results(self) -> list[list[Hypothesis]]:
        out: list[list[Hypothesis]] = [[] for _ in range(len(self.done))]
        for sent, seqs, cums, lens, scores in self.done:
            hyps = []
            for j in range(self.opts.num_return_sequences):
                n = int(lens[j])
                cum = cums[j, : n + 1]
                pos = (cum[1:] - cum[:-1]).tolist()
                hyps.append(Hypothesis(tokens=seqs[j, 1: n + 1].tolist(), score=float(scores[j]),
                                       positional_scores=pos))
            out[sent] = hyps
        return out


# ---------------------------------------------------------------------------
# Marian


@dataclass(frozen=True)
class _Finished:
    """The hypotheses :class:`MarianBeamSearch` finished at one step: each one's
    input sentence, the row it extended, its last token and path score, its
    normalized score and (``--alignment``) its soft alignment."""

    step: int
    sent: np.ndarray
    prev: np.ndarray
    tok: np.ndarray
    path: np.ndarray
    score: list[float]
    alignments: list[list[list[float]]] | None


class MarianBeamSearch(SearchAlgorithm):
    """marian-dev ``BeamSearch::search`` (``src/translator/beam_search.cpp``),
    scores as ``History::add`` (``history.h``) keeps them.

    Per step ``t`` (0-based), for every live sentence with beam size ``k``:
      1. path scores: previous path score + (weighted sum of) log-softmax;
         ``<unk>`` suppressed unless ``allow_unk`` (``suppressWord``).
      2. the best ``k`` of its ``rows x V`` path scores, best first
         (``nth_element.cpp``: ``partial_sort``); step 0 expands the single
         start row into ``beam_size`` hypotheses.
      3. hypotheses ending in EOS are finished (``purgeBeams``) with score
         ``(path - word_penalty * L) / L ** normalize``, ``L = t + 1``; the
         beam shrinks to the unfinished ones; a sentence with none is done.
      4. ``t + 1 >= max_length_factor * W`` (``W`` the padded source width of
         the sentence's Marian batch, ``batch_widths`` when several batches are
         decoded together): every live hypothesis of the sentence is finished
         as it is (Marian's batch stops there: its sentences share ``W``).
    A candidate with path score -inf is skipped (Marian aborts there; it only
    happens when a beam is wider than the finite candidates). The cap is also
    bounded by the decoder's positions (Marian has none for sinusoidal ones).
    """

    def __init__(self, cfg: Any, opts: MarianOptions, max_positions: int) -> None:
        self.opts = opts
        self.eos, self.unk, self.pad = cfg.eos_token_id, cfg.unk_token_id, cfg.pad_token_id
        self.start_token = cfg.decoder_start_token_id
        self.max_positions = max_positions
        if opts.beam_size < 1:
            raise InvalidInputError(f"`beam_size` must be >= 1, but is {opts.beam_size}")
        self.beam = opts.beam_size
        n = opts.n_best
        self.nbest = self.beam if n is True else 1 if n is False else int(n)
        if not 1 <= self.nbest <= self.beam:
            raise InvalidInputError(f"`n_best` must be between 1 and beam_size ({self.beam}), but is {n}")
        if opts.alignment is not None:  # --alignment: run_search hands this layer's attention to record_attention
            parse_alignment(opts.alignment)
            self.alignment_layer = alignment_layer_index(opts.alignment_layer, cfg.decoder_layers)

    def make_ensemble(self, models: Sequence[Seq2SeqModel]) -> LogLinearEnsemble:
        """Members combined as Marian's scorers are: weighted sum of log-probs."""
        weights = self.opts.weights
        if weights is not None and len(weights) != len(models):
            raise InvalidInputError(f"`weights` must give one weight per model ({len(models)}), but gives "
                                    f"{len(weights)}")
        return LogLinearEnsemble(models, weights, self._shortlist(), None if self.opts.allow_unk else self.unk)

    def make_backend(self, backend: SearchBackend) -> SearchBackend:
        """Another runtime's model as Marian's one scorer (weight 1), over the
        shortlist's rows when there is one (:class:`~modelport.generation.shortlist.ShortlistBackend`)."""
        weights = self.opts.weights
        if weights is not None and [float(w) for w in weights] != [1.0]:
            raise InvalidInputError(f"`weights` must be [1.0] for one model on another runtime, but is {list(weights)}")
        shortlist = self._shortlist()
        if shortlist is None:
            return backend
        return ShortlistBackend(backend, shortlist, None if self.opts.allow_unk else self.unk)

    def _shortlist(self) -> LexicalShortlist | None:
        shortlist = self.opts.shortlist
        if shortlist is not None and not isinstance(shortlist, LexicalShortlist):
            raise InvalidInputError("`shortlist` must be a LexicalShortlist loaded with the port's vocabularies "
                                    "here (translate() loads a file itself)")
        return shortlist

    def prepare_source(self, src_tokens: Sequence[Sequence[int]] | Tensor) -> list[list[int]]:
        """The rows without padding, limited by :meth:`limit_source` (``--max-length``
        acts on the source)."""
        rows = src_tokens.tolist() if isinstance(src_tokens, Tensor) else src_tokens
        return self.limit_source([[t for t in r if t != self.pad] for r in rows])

    def limit_source(self, src: Sequence[Sequence[int]]) -> list[list[int]]:
        """``--max-length`` on the source (``data/corpus.cpp``): ``--max-length-crop``
        keeps the first ``max_length`` tokens with ``</s>`` last; without it Marian
        skips the line silently, which a batch API cannot, so it is an error."""
        o, out = self.opts, []
        for s in src:
            s = list(s)
            if len(s) > o.max_length:
                if not o.max_length_crop:
                    raise InvalidInputError(f"a source line has {len(s)} tokens (</s> included), but `max_length` is "
                                            f"{o.max_length} (Marian skips such lines; raise `max_length` or set "
                                            "`max_length_crop`)")
                s = s[: o.max_length]
                s[-1] = self.eos
            out.append(s)
        return out

    def start(self, bsz: int, src_tokens: Tensor) -> int:
        dev = src_tokens.device
        # ``histories[b]->size() >= max-length-factor * batchWidth()`` in float32;
        # the history holds t + 1 entries at step t. The width is that of each
        # line's own Marian batch (``batch_widths``: several decoded together).
        widths = line_widths(self.opts.batch_widths, src_tokens)
        factor = torch.tensor(self.opts.max_length_factor, dtype=torch.float32, device="cpu")
        limits = (torch.tensor(widths, dtype=torch.float32, device="cpu") * factor).tolist()
        # each input's last step: its cap (numpy, read per live sentence at every step); a factor such as
        # 1e300 makes the float32 product infinite, no cap at all (ceil(inf) raised OverflowError)
        self.last_step = np.array([min(max(0, math.ceil(limit) - 1) if math.isfinite(limit) else self.max_positions,
                                       self.max_positions - 1) for limit in limits])
        self.device = dev
        self.next = torch.full((bsz, 1), self.start_token, dtype=torch.long, device=dev)
        self.path_score = torch.zeros(bsz, device=dev)  # path score of each live row
        # The bookkeeping runs in numpy on the host: per step a few dozen array ops over the
        # live sentences' candidates, where a Python loop over every candidate (a thousand in
        # a 200-line search) or torch's ops (~10 us each) cost as much as a tiny student's
        # decoder step (Bergamot's tiny11) itself.
        self.sent_ids = np.arange(bsz)  # live sentence -> input sentence
        self.k = np.full(bsz, self.beam)  # beam size per live sentence
        # rows per live sentence (Marian's first step: one); they shrink as hypotheses finish, and beam
        # search keeps each sentence's cross-attention keys once for them (rows_per_sentence)
        self.rows = [1] * bsz
        # back-pointers, one entry per step: (previous row, token, path score) of each row
        self.history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # a line that is only </s>: all hypotheses forced to </s> with path score 0
        self.empty = src_tokens[:, 0].eq(self.eos)
        self.any_empty = bool(self.empty.any())
        # finished hypotheses, one entry per step that finished some: their paths are traced
        # back through the history once, in results()
        self.done: list[_Finished] = []
        # --alignment: each step's attention of its rows, and each input's source length (no padding)
        self.attention: list[list[list[float]]] = []
        self.src_len = src_tokens.ne(self.pad).sum(1).tolist() if self.alignment_layer is not None else []
        return 1  # Marian's first step runs one row per sentence

    def next_tokens(self) -> Tensor:
        return self.next

    def rows_per_sentence(self, beam: int) -> list[int]:
        return self.rows

    def step(self, step: int, lprobs: Tensor) -> tuple[Tensor, bool] | None:
        V = lprobs.size(-1)
        if not self.opts.allow_unk:
            lprobs[:, self.unk] = -math.inf
        scores = lprobs.add_(self.path_score.unsqueeze(1))
        rows = self.rows
        # after the first step each sentence keeps as many candidates as it has rows (k == rows)
        best = best_of_runs(scores, self.k) if step > 0 else None
        if best is not None:
            top_np, flat_np = best
            prev, tok = flat_np // V, flat_np % V  # the candidate's row in this step's batch, its token
        else:
            top_np, prev, tok = self._top_k(step, scores)
        # each sentence takes its best k finite candidates: the first k (sorted best first, -inf last)
        taken = (np.arange(top_np.shape[1]) < self.k[:, None]) & np.isfinite(top_np)
        last = (self.last_step[self.sent_ids] <= step)[:, None]  # the cap: every candidate is finished as it is
        eos = tok == self.eos
        done = taken & (eos | last)
        alive = taken & ~eos & ~last
        if done.any():
            self._finalize(step, done, prev, tok, top_np)
        counts = alive.sum(1)
        if not counts.any():
            return None
        prev_rows, tokens, path = prev[alive], tok[alive], top_np[alive]  # sentence by sentence, best first
        self.history.append((prev_rows, tokens, path))
        dev = self.device
        self.next = torch.from_numpy(tokens).to(dev).unsqueeze(1)
        self.path_score = torch.from_numpy(path).to(dev)
        # rows keep their sentence only when no beam changed size
        same_layout = step > 0 and counts.tolist() == rows
        keep = counts > 0
        self.sent_ids, self.k = self.sent_ids[keep], counts[keep]
        self.rows = self.k.tolist()
        return torch.from_numpy(prev_rows).to(dev), not same_layout

    def _top_k(self, step: int, scores: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each sentence's best ``max(k)`` candidates by ``torch.topk`` over its rows side
        by side (padded with -inf to the widest): path scores, rows in this step's batch
        and tokens, ``[sentences, max(k)]``. The first step (one row per sentence, ``k``
        the beam size), and a step :func:`~modelport.generation.topk.best_of_runs` declines."""
        V, rows, nsent = scores.size(-1), self.rows, len(self.rows)
        width = max(rows)
        if min(rows) == width:  # every sentence has as many rows: already the [sentence, rows x V] grid
            flat = scores.view(nsent, width * V)
        else:  # pad each sentence's rows to the widest with -inf (only the padding rows filled: a pass less)
            grid = scores.new_empty((nsent * width, V))
            grid.index_copy_(0, run_slots(rows, width).to(scores.device), scores)
            padding = np.flatnonzero(np.arange(width) >= np.asarray(rows)[:, None])
            grid.index_fill_(0, torch.from_numpy(padding).to(scores.device), -math.inf)
            flat = grid.view(nsent, width * V)
        top, idx = topk(flat, min(int(self.k.max()), flat.size(1)))
        if step == 0 and self.any_empty:  # toHyps' dropHyp: EOS with path score 0
            top[self.empty], idx[self.empty] = 0.0, self.eos
        top_np, idx_np = top.cpu().numpy(), idx.cpu().numpy()
        return top_np, (np.cumsum(rows) - rows)[:, None] + idx_np // V, idx_np % V

    def _finalize(self, step: int, done: np.ndarray, prev: np.ndarray, tok: np.ndarray, path: np.ndarray) -> None:
        """``History::add``: ``(pathScore - wp * L) / pow(L, normalize)`` in float32, for the
        candidates ``done`` marks (sentence by sentence, best first); their tokens are traced in results()."""
        o, length, dev = self.opts, step + 1, self.device
        live, prev, path = np.nonzero(done)[0], prev[done], path[done]
        score = torch.from_numpy(path).to(dev)
        norm = (score - o.word_penalty * length) / torch.tensor(float(length), device=dev).pow(o.normalize)
        aligns = self._alignments(step, live, prev) if self.alignment_layer is not None else None
        self.done.append(_Finished(step, self.sent_ids[live], prev, tok[done], path, norm.tolist(), aligns))

    def record_attention(self, weights: Tensor) -> None:
        self.attention.append(weights.float().tolist())  # read row by row when hypotheses finish

    def _alignments(self, step: int, live: np.ndarray, prev: np.ndarray) -> list[list[list[float]]]:
        """Marian's soft alignment of each finished hypothesis (``Hypothesis::
        tracebackAlignment``): per step, the attention of the row it extended
        (``toHyps``), over its source tokens without padding; ``live`` its live
        sentence, ``prev`` that row."""
        out = []
        for s, row in zip(live.tolist(), prev.tolist()):
            n = self.src_len[int(self.sent_ids[s])]
            rows = [self.attention[step][row][:n]]
            for i in range(step - 1, -1, -1):  # history[i] maps the rows of step i + 1 to those of step i
                row = int(self.history[i][0][row])
                rows.append(self.attention[i][row][:n])
            out.append(rows[::-1])
        return out

    def results(self) -> list[list[Hypothesis]]:
        """Each input's hypotheses, best normalized score first (``History::nBest``),
        their tokens and path scores traced back through the history, all at once."""
        out: list[list[Hypothesis]] = [[] for _ in range(len(self.last_step))]
        if not self.done:
            return out
        steps = np.concatenate([np.full(len(d.sent), d.step) for d in self.done])
        row = np.concatenate([d.prev for d in self.done])
        n, width = len(steps), int(steps.max()) + 1
        tokens = np.zeros((n, width), dtype=np.int64)
        cum = np.zeros((n, width + 1), dtype=np.float32)  # path scores, the start's 0 first
        every = np.arange(n)
        tokens[every, steps] = np.concatenate([d.tok for d in self.done])
        cum[every, steps + 1] = np.concatenate([d.path for d in self.done])
        for t in range(width - 2, -1, -1):  # history[t]: the rows of step t + 1, by the rows of step t
            on = np.nonzero(steps > t)[0]
            prev, tok, path = self.history[t]
            r = row[on]
            tokens[on, t], cum[on, t + 1], row[on] = tok[r], path[r], prev[r]
        positional = cum[:, 1:] - cum[:, :-1]
        # per sentence (score, row, length, alignment) as they finished; a stable sort by score keeps equal
        # ones in that order, and only the n-best become Hypothesis objects (at n-best 1 and beam 5, a fifth)
        finished: list[list[tuple[float, int, int, Any]]] = [[] for _ in out]
        i = 0
        for d in self.done:
            aligns = d.alignments or [None] * len(d.sent)
            for sent, score, a in zip(d.sent.tolist(), d.score, aligns):
                finished[sent].append((score, i, d.step + 1, a))
                i += 1
        for sent, hyps in enumerate(finished):
            hyps.sort(key=lambda h: -h[0])
            out[sent] = [Hypothesis(tokens=tokens[at, :n].tolist(), score=score,
                                    positional_scores=positional[at, :n].tolist(), alignment=a)
                         for score, at, n, a in hyps[: self.nbest]]
        return out
