"""The unified encoder-decoder: encoder, decoder with cross-attention and an
incremental-decoding KV cache, and :class:`Seq2SeqModel` tying them together.

Nothing here knows which framework a checkpoint came from; behaviours are
selected by :class:`~modelport.model.config.Seq2SeqConfig` flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from modelport.model.config import Seq2SeqConfig
from modelport.model.gemm import Linear, linear
from modelport.model.layers import (
    Attention,
    FeedForward,
    SSRU,
    KeyRuns,
    LayerCache,
    RelativePositionBias,
    clamp_fp16,
    make_norm,
    make_positions,
    sinusoidal_table,
)


@dataclass
class EncoderOutput:
    """Encoder states ``[B, S, D]`` (:attr:`hidden`) and the source padding mask (True = pad).

    A :meth:`reorder` selects the mask's rows at once and the states' rows only
    when :attr:`hidden` is read (``rows``, composed over reorders): after a
    search's first step the decoder reads its cached cross-attention keys, not
    the states, so the states are not copied at every step where sentences finish
    (``tiny11_ssru``, 200 lines: about 2 ms of a ~170 ms translation, line-profiled)."""

    states: Tensor  # as encoded: `hidden` is its `rows`
    padding_mask: Tensor
    rows: Tensor | None = None
    _key_mask: Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def hidden(self) -> Tensor:
        """The encoder states of the current rows ``[B, S, D]``."""
        return self.states if self.rows is None else self.states.index_select(0, self.rows)

    @property
    def key_mask(self) -> Tensor:
        """The cross-attention mask ``[B, 1, 1, S]`` (True = attend), made once
        and reused by every decoding step until the next reorder."""
        if self._key_mask is None:
            self._key_mask = (~self.padding_mask)[:, None, None, :]
        return self._key_mask

    def reorder(self, index: Tensor) -> EncoderOutput:
        rows = index if self.rows is None else self.rows.index_select(0, index)
        return EncoderOutput(self.states, self.padding_mask.index_select(0, index), rows)


@dataclass
class DecoderState:
    """Incremental decoding state: one :class:`LayerCache` per decoder layer
    and the number of target tokens already consumed. ``align_layer``: the
    decoder layer (0-based) whose cross-attention probabilities each step keeps
    (Marian's word alignments, :attr:`cross_weights`); None keeps none."""

    layers: list[LayerCache] = field(default_factory=list)
    steps: int = 0
    align_layer: int | None = None

    @property
    def cross_weights(self) -> Tensor | None:
        """The last step's cross-attention probabilities ``[B, H, T, S]`` of ``align_layer``."""
        if self.align_layer is None or not self.layers:
            return None
        return self.layers[self.align_layer].cross_weights

    def reorder(self, index: Tensor, cross: bool = True, cross_index: Tensor | None = None,
                runs: KeyRuns | None = None) -> None:
        """Reorder the batch dimension (beam search); ``cross=False`` keeps the
        cross-attention keys, valid when beams of one sentence are permuted;
        ``cross_index`` selects their rows where runs of batch rows share one
        (:func:`~modelport.model.layers.attend`; ``runs`` where the runs differ
        in length), default ``index``."""
        for layer in self.layers:
            layer.reorder(index, cross=cross, cross_index=cross_index, runs=runs)


class _Embeddings(nn.Module):
    """Token embedding, scale, positions and optional embedding norm."""

    def __init__(self, cfg: Seq2SeqConfig, vocab_size: int, side: str) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(vocab_size, cfg.d_model)
        self.scale = cfg.embed_scale
        rows = cfg.position_table_size(side)
        if cfg.positions == "learned":
            self.embed_positions = nn.Embedding(rows, cfg.d_model)
        elif cfg.positions == "sinusoidal":
            self.register_buffer("sinusoidal", self._table(rows), persistent=False)
            self.embed_positions = None
        else:
            self.embed_positions = None
        self.layernorm_embedding = (make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
                                    if cfg.layernorm_embedding else None)

    def _table(self, rows: int) -> Tensor:
        cfg = self.cfg
        pad_row = cfg.position_pad_index if cfg.position_pad_index < cfg.position_offset else None
        return sinusoidal_table(rows, cfg.d_model, layout=cfg.sinusoidal_layout,
                                denominator_minus_one=cfg.sinusoidal_denominator_minus_one, zero_row=pad_row)

    def materialize(self) -> None:
        """Recompute the (non-persistent) sinusoidal table after a meta-device build."""
        if self.cfg.positions == "sinusoidal" and self.sinusoidal.is_meta:
            self.sinusoidal = self._table(self.sinusoidal.shape[0]).to(self.embed_tokens.weight.device)

    def forward(self, tokens: Tensor, real: Tensor, start: int = 0, zero_first: bool = False) -> Tensor:
        x = self.embed_tokens(tokens)
        if zero_first:  # Marian's decoder start: an all-zero embedding, not a token
            x = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:]], dim=1)
        if self.scale != 1.0:
            x = x * self.scale
        if self.cfg.positions in ("learned", "sinusoidal"):
            pos = make_positions(real, self.cfg.position_offset, self.cfg.position_pad_index, start)
            if self.embed_positions is not None:
                x = x + self.embed_positions(pos)
            else:
                x = x + self.sinusoidal.to(x.dtype)[pos]
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        return x


class EncoderLayer(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig, heads: int) -> None:
        super().__init__()
        self.pre_norm = cfg.pre_norm
        self.clamp = clamp_fp16 if cfg.clamp_fp16_activations else _identity
        self.self_attn = Attention(cfg.d_model, heads, cfg.encoder_head_dim, cfg.attention_bias, cfg.attention_scale)
        self.self_attn_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
        self.ffn = FeedForward(cfg.d_model, cfg.encoder_ffn_dim, cfg.activation, cfg.ffn_gated, cfg.ffn_bias,
                               cfg.ffn_depth)
        self.ffn_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.self_attn_norm(x) if self.pre_norm else x
        k, v = self.self_attn.project_kv(h)
        x = self.clamp(x + self.self_attn(h, k, v, mask))
        if not self.pre_norm:
            x = self.self_attn_norm(x)
        h = self.ffn_norm(x) if self.pre_norm else x
        x = self.clamp(x + self.ffn(h))
        if not self.pre_norm:
            x = self.ffn_norm(x)
        return x


class DecoderLayer(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig, heads: int, cross_heads: int) -> None:
        super().__init__()
        self.pre_norm = cfg.pre_norm
        self.cached_kv_unnormed = cfg.cached_self_kv_unnormed
        self.clamp = clamp_fp16 if cfg.clamp_fp16_activations else _identity
        hd = cfg.decoder_head_dim
        if cfg.decoder_autoreg == "ssru":
            # Marian's `transformer-decoder-autoreg: rnn` block in place of self-attention
            self.ssru: SSRU | None = SSRU(cfg.d_model)
            self.ssru_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
            self.self_attn: Attention | None = None
        else:
            self.ssru = None
            self.self_attn = Attention(cfg.d_model, heads, hd, cfg.attention_bias, cfg.attention_scale)
            self.self_attn_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
        self.cross_attn = Attention(cfg.d_model, cross_heads, hd, cfg.attention_bias, cfg.attention_scale)
        self.cross_attn_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
        self.ffn = FeedForward(cfg.d_model, cfg.decoder_ffn_dim, cfg.activation, cfg.ffn_gated, cfg.ffn_bias,
                               cfg.ffn_depth)
        self.ffn_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)

    def forward(self, x: Tensor, enc: Tensor | None, self_mask: Tensor | None, cross_mask: Tensor,
                cache: LayerCache | None, keep_cross_weights: bool = False) -> Tensor:
        """One layer; ``keep_cross_weights`` also puts the cross-attention
        probabilities in ``cache.cross_weights`` (an extra computation, opt-in).
        ``enc``: the encoder states, None where ``cache`` holds the cross-attention keys."""
        if self.ssru is not None:
            x = self._ssru_block(x, cache)
        else:
            h = self.self_attn_norm(x) if self.pre_norm else x
            if cache is not None and cache.past_apart:  # a traced step: the cache and this step's keys apart
                assert cache.self_k is not None and cache.self_v is not None, "a step after the first"
                past = (cache.self_k, cache.self_v)
                k, v = self.self_attn.project_kv(x if self.cached_kv_unnormed else h)
                cache.self_k, cache.self_v = k, v  # the graph's present.*: this step's own
                x = self.clamp(x + self.self_attn(h, k, v, self_mask, past=past))
            else:
                k, v = self._self_kv(x, h, cache)
                x = self.clamp(x + self.self_attn(h, k, v, self_mask))
            if not self.pre_norm:
                x = self.self_attn_norm(x)

        h = self.cross_attn_norm(x) if self.pre_norm else x
        if cache is not None and cache.cross_k is not None:
            ck, cv = cache.cross_k, cache.cross_v
        else:
            if enc is None:
                raise ValueError("a decoder layer without cached cross-attention keys needs the encoder states")
            ck, cv = self.cross_attn.project_kv(enc)
            if cache is not None:  # contiguous: a decoding step's products then read them without a copy
                ck, cv = ck.contiguous(), cv.contiguous()
                cache.cross_k, cache.cross_v = ck, cv
        runs = cache.cross_runs if cache is not None else None
        if keep_cross_weights and cache is not None:
            cache.cross_weights = self.cross_attn.weights(h, ck, cross_mask, runs)
        x = self.clamp(x + self.cross_attn(h, ck, cv, cross_mask, runs, shared=True))
        if not self.pre_norm:
            x = self.cross_attn_norm(x)

        h = self.ffn_norm(x) if self.pre_norm else x
        x = self.clamp(x + self.ffn(h))
        if not self.pre_norm:
            x = self.ffn_norm(x)
        return x


    def _self_kv(self, x: Tensor, h: Tensor, cache: LayerCache | None) -> tuple[Tensor, Tensor]:
        """Self-attention keys/values over the cached and the new positions.

        Normally projected from the (pre-)normalised input ``h`` and cached as
        such. With ``cached_self_kv_unnormed`` (Marian's pre-norm decoder, see
        the config flag) the cache holds projections of the raw input ``x``:
        the first call attends over ``h`` as the full forward does, every
        later call over the raw inputs of all positions."""
        if cache is None:
            return self.self_attn.project_kv(h)
        if self.cached_kv_unnormed:
            first = cache.self_k is None
            rk, rv = cache.extend_self(*self.self_attn.project_kv(x))
            return self.self_attn.project_kv(h) if first else (rk, rv)
        return cache.extend_self(*self.self_attn.project_kv(h))

    def _ssru_block(self, x: Tensor, cache: LayerCache | None) -> Tensor:
        """Marian's ``DecoderLayerRNN`` (marian-dev ``src/models/transformer.h``):
        the same pre/post-processing as the other sublayers around the cell,
        the residual from the block's input, no output projection. The cell
        state continues from ``cache.ssru_state`` (zeros at the start)."""
        h = self.ssru_norm(x) if self.pre_norm else x
        out, last = self.ssru(h, cache.ssru_state if cache is not None else None)
        if cache is not None:
            cache.ssru_state = last
        x = self.clamp(x + out)
        if not self.pre_norm:
            x = self.ssru_norm(x)
        return x


def _identity(x: Tensor) -> Tensor:
    return x


class Encoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = _Embeddings(cfg, cfg.source_vocab_size, "source")
        self.layers = nn.ModuleList(EncoderLayer(cfg, h) for h in cfg.layer_heads("encoder"))
        self.final_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps) if cfg.final_norm else None
        self.relative_bias = (RelativePositionBias(cfg.relative_attention_num_buckets,
                                                   cfg.relative_attention_max_distance, cfg.encoder_heads, True)
                              if cfg.positions == "relative" else None)

    def forward(self, src_tokens: Tensor) -> EncoderOutput:
        pad = src_tokens.eq(self.cfg.pad_token_id)
        x = self.embed(src_tokens, ~pad)
        # fairseq zeroes padded positions after the embedding; harmless elsewhere
        # because padded keys are masked out of every attention.
        x = x * (~pad).unsqueeze(-1).to(x.dtype)
        mask: Tensor = (~pad)[:, None, None, :]
        if self.relative_bias is not None:
            s = src_tokens.size(1)
            bias = self.relative_bias(s, s)
            mask = bias.to(x.dtype).masked_fill(~mask, float("-inf"))
        for layer in self.layers:
            x = layer(x, mask)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return EncoderOutput(x, pad)


class Decoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = _Embeddings(cfg, cfg.target_vocab_size, "target")
        self.layers = nn.ModuleList(DecoderLayer(cfg, h, c)
                                    for h, c in zip(cfg.layer_heads("decoder"), cfg.layer_heads("cross")))
        self.final_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps) if cfg.final_norm else None
        self.relative_bias = (RelativePositionBias(cfg.relative_attention_num_buckets,
                                                   cfg.relative_attention_max_distance, cfg.decoder_heads, False)
                              if cfg.positions == "relative" else None)

    def forward(self, prev_tokens: Tensor, enc: EncoderOutput, state: DecoderState | None = None) -> Tensor:
        past = state.steps if state is not None else 0
        if state is not None and not state.layers:
            state.layers = [LayerCache() for _ in self.layers]
        real = prev_tokens.ne(self.cfg.pad_token_id)
        zero_first = self.cfg.decoder_start_zero_embedding and past == 0
        if zero_first:  # the start slot is a real position even when its id is the pad id
            real = torch.cat([torch.ones_like(real[:, :1]), real[:, 1:]], dim=1)
        x = self.embed(prev_tokens, real, start=past, zero_first=zero_first)
        t = prev_tokens.size(1)
        total = past + t
        self_mask: Tensor | None = None  # a decoding step without bias: one query attends to every cached key
        if self.relative_bias is not None or t > 1 or state is None:
            # causal mask over [past + t] keys, plus padding of the new tokens as keys
            q_idx = torch.arange(past, total, device=x.device)[:, None]
            k_idx = torch.arange(total, device=x.device)[None, :]
            self_mask = (k_idx <= q_idx)[None, None]
            if self.cfg.mask_target_padding and state is None and not bool(real.all()):
                self_mask = self_mask & real[:, None, None, :]
            if self.relative_bias is not None:
                bias = self.relative_bias(t, total, q_start=past).to(x.dtype)
                self_mask = bias.masked_fill(~self_mask, float("-inf"))
        cross_mask = enc.key_mask
        keep = state.align_layer if state is not None else None
        # the states, where a layer has no cross-attention keys cached yet (read: rows selected, see EncoderOutput)
        hidden = enc.hidden if state is None or any(c.cross_k is None for c in state.layers) else None
        for i, layer in enumerate(self.layers):
            x = layer(x, hidden, self_mask, cross_mask, state.layers[i] if state is not None else None,
                      keep_cross_weights=i == keep)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if state is not None:
            state.steps = total
        return x


def encode_in_runs(encode: Callable[[Tensor], Tensor], src_tokens: Tensor, runs: Sequence[tuple[int, int]],
                   pad_id: int) -> Tensor:
    """``encode``'s states ``[B, S, D]`` of the source rows ``src_tokens`` ``[B, S]``,
    computed for each run of rows ``(start, end)`` at the width of its widest row,
    the padding side's surplus columns left out (zeros there in the result).

    Several batches decoded together (:mod:`modelport.generation.groups`) are
    padded to the widest line of all, where the frameworks encode each batch at
    its own width; run by run the encoder computes (nearly) what they compute,
    and not the padding (on a d_model 32 Marian student, 200 test lines in
    Marian's sorted 16-line batches, one group padded to 36 tokens: whole 73 ms,
    in the 4 runs of :func:`~modelport.generation.groups.encoder_runs` 44 ms).
    Every attention over encoder states masks the padded columns, so what they
    hold (here zeros, there the encoder's output at a padded position) is never read."""
    rows, width = src_tokens.shape
    real = src_tokens.ne(pad_id)
    left = bool((~real[:, 0]).any())  # right-padded rows start with a token
    col = torch.arange(width, device=src_tokens.device)
    if left:  # each row's width counted from its last column: tokens sit at the right
        extent = (width - torch.where(real, col, width).min(1).values).tolist()
    else:
        extent = (torch.where(real, col, -1).max(1).values + 1).tolist()
    out: Tensor | None = None
    for start, end in runs:
        w = max(1, max(extent[start:end]))
        cols = slice(width - w, width) if left else slice(0, w)
        part = encode(src_tokens[start:end, cols])
        if out is None:
            out = part.new_zeros(rows, width, part.size(-1))
        out[start:end, cols] = part
    assert out is not None, "no runs"
    return out


class Seq2SeqModel(nn.Module):
    """The unified encoder-decoder.

    ``forward(src, prev)`` returns fp32 logits ``[B, T, V]``;
    :meth:`encode` + :meth:`decode_step` give incremental decoding with a KV
    cache whose batch dimension beam search reorders by index.
    """

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        if cfg.shared_embeddings:
            # one tensor, two names; model/io.py saves it once and records the alias
            self.decoder.embed.embed_tokens = self.encoder.embed.embed_tokens
        self.lm_head = None if cfg.tie_output_embeddings else Linear(cfg.d_model, cfg.target_vocab_size,
                                                                     bias=False)
        if cfg.final_logits_bias:
            self.register_buffer("final_logits_bias", torch.zeros(cfg.target_vocab_size))
        else:
            self.final_logits_bias = None

    def untie_output_projection(self) -> None:
        """Give a tied output projection a module of its own, ``lm_head``, over
        the same weight tensor (no copy), so that int8 loading can run it as an
        int8 linear layer while the embeddings stay fp32; an untied model is left
        as it is."""
        if self.lm_head is None:
            weight = self.decoder.embed.embed_tokens.weight
            with torch.device("meta"):
                head = Linear(self.cfg.d_model, self.cfg.target_vocab_size, bias=False)
            head.weight = weight
            self.lm_head = head

    @property
    def output_weight(self) -> Tensor:
        return self.decoder.embed.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def encode(self, src_tokens: Tensor, runs: Sequence[tuple[int, int]] | None = None) -> EncoderOutput:
        """The encoder's states of ``src_tokens`` ``[B, S]``; with ``runs``, computed
        run by run (:func:`encode_in_runs`), as the frameworks encode batch by batch."""
        if runs is None or len(runs) < 2:
            return self.encoder(src_tokens)
        pad = src_tokens.eq(self.cfg.pad_token_id)
        return EncoderOutput(encode_in_runs(lambda x: self.encoder(x).hidden, src_tokens, runs,
                                            self.cfg.pad_token_id), pad)

    def logits(self, hidden: Tensor) -> Tensor:
        """Output projection; logits are returned in fp32."""
        # an untied head runs as a module, so int8 loading (which swaps Linear modules) covers it too
        head = self.lm_head if self.lm_head is not None else self.output_weight
        return self._project(hidden, head, self.final_logits_bias)

    def _project(self, hidden: Tensor, head: nn.Module | Tensor, bias: Tensor | None) -> Tensor:
        """Scale, multiply by ``head`` (a module, or a matrix of vocabulary rows), add ``bias``; fp32."""
        if self.cfg.output_scale != 1.0:
            hidden = hidden * self.cfg.output_scale
        if isinstance(head, nn.Module):
            out = head(hidden)
            if bias is not None:
                out = out + bias
        else:  # the bias added in the product's own pass (the same sums: bit-identical, and one pass less)
            out = linear(hidden, head, bias)
        # not .float() on fp32 logits: traced for ONNX, it is a Cast that copies the logits at every step
        return out if out.dtype == torch.float32 else out.float()

    def output_rows(self, rows: Tensor) -> Callable[[Tensor], Tensor]:
        """The output projection restricted to the vocabulary ids ``rows``: a
        function of decoder states returning fp32 logits ``[..., len(rows)]``,
        with the matrix rows and bias selected once (Marian's lexical shortlist
        slices them once per batch). An int8 head (a quantized module) computes
        every row, then keeps ``rows``."""
        head = self.lm_head
        if head is not None and (not isinstance(head, nn.Linear) or head.bias is not None):
            return lambda hidden: self.logits(hidden).index_select(-1, rows)
        weight = self.output_weight.index_select(0, rows)
        bias = self.final_logits_bias.index_select(0, rows) if self.final_logits_bias is not None else None
        return lambda hidden: self._project(hidden, weight, bias)

    def decode(self, prev_tokens: Tensor, enc: EncoderOutput, state: DecoderState | None = None) -> Tensor:
        """Logits for ``prev_tokens``; with ``state``, only the new tokens are
        passed and the cache is extended."""
        return self.logits(self.decoder(prev_tokens, enc, state))

    def log_probs(self, prev_tokens: Tensor, enc: EncoderOutput, state: DecoderState | None = None) -> Tensor:
        """Log-softmax of :meth:`decode`, computed in fp32."""
        return torch.log_softmax(self.decode(prev_tokens, enc, state), dim=-1)

    def forward(self, src_tokens: Tensor, prev_tokens: Tensor) -> Tensor:
        return self.decode(prev_tokens, self.encode(src_tokens))

    def new_state(self) -> DecoderState:
        return DecoderState()

    @classmethod
    def from_state_dict(cls, cfg: Seq2SeqConfig, state: dict[str, Tensor], strict: bool = True) -> Seq2SeqModel:
        """Build without random initialisation and adopt ``state``'s tensors (no copy)."""
        with torch.device("meta"):
            model = cls(cfg)
        model.load_state_dict(state, strict=strict, assign=True)
        if cfg.shared_embeddings:  # assign replaced the shared module's tensor once per name
            model.decoder.embed.embed_tokens = model.encoder.embed.embed_tokens
        model.encoder.embed.materialize()
        model.decoder.embed.materialize()
        return model.eval()
