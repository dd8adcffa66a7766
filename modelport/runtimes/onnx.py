"""An ``export onnx`` folder run by onnxruntime with modelport's beam search.

The folder holds three graphs (written by :mod:`modelport.exporters.onnx`),
laid out as Optimum's seq2seq exports are:

* ``encoder.onnx``: ``input_ids`` ``[batch, src_len]`` → ``encoder_hidden_states``
  and ``encoder_attention_mask`` (1 = real token, 0 = pad);
* ``decoder.onnx`` (the first step, or a whole prefix; an SSRU decoder's: the
  first step only): ``decoder_input_ids`` ``[batch, tgt_len]``,
  ``encoder_hidden_states``, ``encoder_attention_mask`` →
  ``logits`` ``[batch, tgt_len, vocab]`` and, per decoder layer ``i``,
  ``present.{i}.decoder.key/value`` (self-attention cache, ``[batch, heads,
  tgt_len, head_dim]``) and ``present.{i}.encoder.key/value`` (the
  cross-attention keys/values of the encoder states, computed once);
* ``decoder_with_past.onnx`` (every later step): ``decoder_input_ids``
  ``[batch, 1]``, ``encoder_attention_mask`` and ``past_key_values.{i}.decoder.key/value``
  + ``past_key_values.{i}.encoder.key/value`` → ``logits`` ``[batch, 1, vocab]``
  and ``present.{i}.decoder.key/value``, the new token's own keys/values ``[batch,
  heads, 1, head_dim]``: the graph attends to the cache and to them apart, and
  :class:`OnnxSeq2Seq` appends them to the cache at the next step, in the copy
  that applies the search's reorders (the cache is copied once a step, not also
  by the graph; exports written before return the cache one position longer,
  told by that output's shape). The position of the new token
  (sinusoidal/learned tables, T5's relative bias) is the past length, read from
  the cache's shape inside the graph.

Decoder graphs that ``export onnx`` writes carry the metadata entry
``modelport.shared_cross_keys`` (:data:`SHARED_CROSS_KEYS`): their
cross-attention lets runs of ``g`` consecutive ``decoder_input_ids`` rows share
one row of ``encoder_hidden_states``/``encoder_attention_mask`` and of the
encoder keys/values, ``g`` = decoder rows / encoder rows read when the graph
runs. Fed one row per decoder row (``g`` = 1), they run as Optimum's do;
:class:`OnnxSeq2Seq` feeds one row per sentence's beam where the search allows
(graphs without the entry, from earlier exports, one row per decoder row).

A Marian SSRU decoder (``decoder_autoreg`` ssru) has no self-attention: its
cache per layer is the cell state ``decoder.state`` ``[batch, d_model]`` in
place of ``decoder.key/value``, and ``decoder_with_past.onnx`` takes
``past_positions`` ``[1, past_len]`` (zeros), whose length gives the new
token's position, as the cache's shape does elsewhere.

:class:`OnnxSeq2Seq` holds the sessions and the cache and implements
:class:`~modelport.generation.backend.SearchBackend`, so
:func:`~modelport.generation.translate.generate` runs fairseq's, transformers'
or Marian's search on it exactly as on the torch port (the caches' batch rows
are reordered by the search's index with ``index_select``).
:func:`load_onnx` gives the folder the surface of a
:class:`~modelport.api.PortedModel` (``translate``), which is what
``modelport.load(onnx_dir)`` and ``modelport translate ONNX_DIR --backend onnx``
return and use. onnxruntime is imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from modelport.errors import InvalidInputError, MissingReferenceError, first_line
from modelport.files import file_in_folder, not_a_folder
from modelport.generation.backend import SearchBackend
from modelport.generation.ensemble import shared_rows
from modelport.generation.hypothesis import Hypothesis
from modelport.generation.placement import check_threads, resolve_device
from modelport.generation.semantics import check_generation_config
from modelport.generation.translate import translate, translate_windows
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import CONFIG_NAME, GENERATION_NAME, TOKENIZER_DIR, _read_config, read_json_object
from modelport.model.layers import appended
from modelport.model.transformer import encode_in_runs
from modelport.reports.export import EXPORT_REPORT_NAME
from modelport.tokenizers import Tokenizer, load_tokenizer

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"  # the first step (no past), or a whole prefix (teacher forcing)
DECODER_WITH_PAST_FILE = "decoder_with_past.onnx"
GRAPH_FILES = (ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE)
ENCODER_INPUTS = ["input_ids"]
ENCODER_OUTPUTS = ["encoder_hidden_states", "encoder_attention_mask"]
DECODER_INPUTS = ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask"]
SPIN = False  # onnxruntime's idle workers spin-wait (its default) or sleep: see session_options
# the decoder graphs' metadata entry (value "1") saying that their cross-attention takes shared rows (see above)
SHARED_CROSS_KEYS = "modelport.shared_cross_keys"
PAST_POSITIONS = "past_positions"  # an SSRU decoder's past length, as the input's shape (see above)
_ONE_POSITION = ("an SSRU decoder's graphs run one position per call (its recurrence is not traced over time): "
                 "decode a prefix one position at a time (teacher_forced)")


def self_kinds(recurrent: bool) -> tuple[str, ...]:
    """A decoder layer's own cache tensors: the SSRU cell state, or self-attention key and value."""
    return ("state",) if recurrent else ("key", "value")


def _kinds(recurrent: bool, cross: bool = True) -> list[tuple[str, str]]:
    return [("decoder", kind) for kind in self_kinds(recurrent)] + \
        ([("encoder", "key"), ("encoder", "value")] if cross else [])


def present_names(layers: int, *, cross: bool = True, recurrent: bool = False) -> list[str]:
    """Cache outputs, per layer: the layer's own cache (then cross-attention key/value when ``cross``)."""
    return [f"present.{i}.{side}.{kind}" for i in range(layers) for side, kind in _kinds(recurrent, cross)]


def past_names(layers: int, recurrent: bool = False) -> list[str]:
    """Cache inputs of ``decoder_with_past.onnx``, per layer: the layer's own cache, cross key/value."""
    return [f"past_key_values.{i}.{side}.{kind}" for i in range(layers) for side, kind in _kinds(recurrent)]


def decoder_outputs(layers: int, recurrent: bool = False) -> list[str]:
    return ["logits", *present_names(layers, recurrent=recurrent)]


def decoder_with_past_inputs(layers: int, recurrent: bool = False) -> list[str]:
    return ["decoder_input_ids", "encoder_attention_mask", *([PAST_POSITIONS] if recurrent else []),
            *past_names(layers, recurrent)]


def decoder_with_past_outputs(layers: int, recurrent: bool = False) -> list[str]:
    return ["logits", *present_names(layers, cross=False, recurrent=recurrent)]


def export_problems(config: Seq2SeqConfig, ensemble_size: int, quantization: str | None) -> list[str]:
    """Why a ported folder cannot be exported to (and run by) ONNX, read from config.json."""
    problems = []
    if ensemble_size > 1:
        problems.append(f"an ensemble of {ensemble_size} models is not supported (an ONNX decoder is "
                        "one network; convert a single checkpoint)")
    if quantization:
        problems.append(f"a quantized folder ({quantization}) is not supported (export the folder "
                        "before `modelport quantize`; `export onnx --int8` quantizes the graphs for onnxruntime)")
    return problems


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with ONNX graphs (an ``export onnx`` result, old or new)."""
    folder = Path(path)
    return (folder / ENCODER_FILE).is_file() or (folder / DECODER_FILE).is_file()


def session_options(threads: int | None = None, spin: bool | None = None) -> Any:
    """onnxruntime session options: ``threads`` intra-op threads (default: torch's count, so
    ``--threads`` sets both runtimes), one inter-op thread, all graph optimizations, and
    idle workers that sleep unless ``spin``."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    # onnxruntime's warnings (unused initializers) are noise here, and its errors reach the user as the exception
    # they raise, in one line (load_onnx, OnnxSeq2Seq._run): only fatal messages are logged
    opts.log_severity_level = 4
    opts.intra_op_num_threads = check_threads(threads) if threads is not None else torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    if not (SPIN if spin is None else spin):
        # onnxruntime's idle workers spin after each run by default, taking the cores from torch's threads,
        # which run the search between two decoder steps
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _require_onnxruntime() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingReferenceError("onnxruntime", "running an ONNX export") from None


class OnnxSeq2Seq(SearchBackend):
    """The exported graphs in onnxruntime (CPU), with the decoder's KV cache.

    As a :class:`~modelport.generation.backend.SearchBackend`: :meth:`encode`,
    then :meth:`logits` of one new token per row (``decoder.onnx`` the first
    time, ``decoder_with_past.onnx`` after), :meth:`reorder` between steps.
    :meth:`teacher_forced` and :meth:`greedy` serve the export's verification."""

    def __init__(self, folder: str | os.PathLike[str], config: Seq2SeqConfig | None = None, *,
                 threads: int | None = None) -> None:
        import onnxruntime

        self.folder = Path(folder)
        if config is None:
            _, config, _, _ = _read_config(self.folder)
        self.cfg = config
        opts = session_options(threads)
        paths = {name: self._graph_path(name) for name in GRAPH_FILES}
        make = lambda name: onnxruntime.InferenceSession(  # noqa: E731
            str(paths[name]), opts, providers=["CPUExecutionProvider"])
        self.encoder, self.decoder, self.decoder_with_past = (make(name) for name in GRAPH_FILES)
        self._sessions = dict(zip(GRAPH_FILES, (self.encoder, self.decoder, self.decoder_with_past)))
        self.recurrent = config.decoder_autoreg == "ssru"  # an SSRU decoder: a cell state per layer
        self.layers = config.decoder_layers
        self._check_signatures()  # the graphs are those of this decoder
        self.own = len(self_kinds(self.recurrent))  # a layer's own cache tensors
        self._past_names = past_names(self.layers, self.recurrent)
        self._with_past_outputs = decoder_with_past_outputs(self.layers, self.recurrent)
        self._decoder_outputs = decoder_outputs(self.layers, self.recurrent)
        # whether runs of decoder rows may share one encoder-side row (graphs written before: one row per decoder row)
        self.shared = all(s.get_modelmeta().custom_metadata_map.get(SHARED_CROSS_KEYS) == "1"
                          for s in (self.decoder, self.decoder_with_past))
        self.group = 1  # consecutive decoder rows per encoder-side row
        self.hidden: Tensor | None = None  # the encoder output, until the first decoder step has read it
        self.mask: Tensor | None = None
        self.self_kv: list[Tensor] = []   # per layer: key, value (an SSRU decoder's: the cell state)
        # graphs whose later step returns its own keys/values only (a step's present.*.decoder.* one position long):
        # kept apart (reordered as they are: one position) until the next step appends them to the cache, in the
        # copy that applies the reorders since (pending)
        self.past_apart = not self.recurrent and _one_position(self.decoder_with_past)
        self.self_new: list[Tensor] = []
        self.pending: Tensor | None = None
        self.cross_kv: list[Tensor] = []  # per layer: key, value (empty before the first decoder step)
        self.steps = 0  # positions consumed since encode

    def _graph_path(self, name: str) -> Path:
        """``name`` in the folder: a regular file inside it (a symlink may not lead elsewhere)."""
        try:
            return file_in_folder(self.folder, name, "the graph")
        except InvalidInputError as e:
            raise InvalidInputError(f"`{self.folder}`: {e}") from None

    def _check_signatures(self) -> None:
        """Each graph takes and gives what the export writes for config.json's decoder (its layers, an
        SSRU's state): a graph swapped for another, or a config.json edited after the export, is one
        line naming the graph, not a failure in the middle of a search."""
        for name, (inputs, outputs) in graph_names(self.layers, self.recurrent).items():
            session = self._sessions[name]
            got = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
            if got != (list(inputs), list(outputs)):
                raise InvalidInputError(
                    f"`{self.folder}`: {name} does not have the inputs and outputs the export writes for "
                    f"config.json's {self.layers}-layer {'SSRU ' if self.recurrent else ''}decoder (a graph "
                    "swapped or config.json edited; export the ported folder again)")

    # ---- the search loop's interface ---------------------------------------
    def encode(self, src_tokens: Tensor, runs: Sequence[tuple[int, int]] | None = None) -> None:
        if runs is not None and len(runs) > 1:  # the graph's mask is the source's 0/1 mask (int64)
            self.hidden = encode_in_runs(self._encoder_states, src_tokens, runs, self.cfg.pad_token_id)
            self.mask = src_tokens.ne(self.cfg.pad_token_id).long()
        else:
            hidden, mask = self._run(ENCODER_FILE, ENCODER_OUTPUTS, {"input_ids": _np(src_tokens)})
            self.hidden, self.mask = torch.from_numpy(hidden), torch.from_numpy(mask)
        self.self_kv, self.cross_kv, self.self_new, self.pending = [], [], [], None
        self.steps, self.group = 0, 1

    def _encoder_states(self, src_tokens: Tensor) -> Tensor:
        return torch.from_numpy(self._run(ENCODER_FILE, ENCODER_OUTPUTS[:1], {"input_ids": _np(src_tokens)})[0])

    def reorder_encoder(self, index: Tensor) -> None:
        self._select_encoder(index)
        self.group = 1

    def reorder(self, index: Tensor, cross: bool = True, group: int | Sequence[int] = 1) -> None:
        """As the torch port's :meth:`~modelport.generation.ensemble.Ensemble.reorder`: with graphs
        that take shared rows (``self.shared``) and runs of one size (``group``, or its lengths all
        equal) each reading one encoder-side row, one such row per run is kept; otherwise one per
        decoder row (Marian's beams once they differ in size, graphs written before)."""
        if self.self_new:  # the cache's rows: selected when the next step appends to it
            self.self_new = [t.index_select(0, index) for t in self.self_new]
            self.pending = index if self.pending is None else self.pending.index_select(0, index)
        else:
            self.self_kv = [t.index_select(0, index) for t in self.self_kv]
        if not cross:  # rows permuted within a run, which reads one encoder-side row
            return
        keys = torch.div(index, self.group, rounding_mode="floor") if self.group > 1 else index
        self.group = 1
        if not isinstance(group, int):  # one length per sentence (Marian's beams): shared while all are equal
            group = group[0] if len(group) and min(group) == max(group) else 1
        if self.shared and group > 1 and index.numel() % group == 0:
            rows = shared_rows(keys, [group] * (index.numel() // group))
            if rows is not None:
                keys, self.group = rows, group
        self._select_encoder(keys)

    def _select_encoder(self, rows: Tensor) -> None:
        assert self.mask is not None, "encode first"
        if self.hidden is not None:
            self.hidden = self.hidden.index_select(0, rows)
        self.mask = self.mask.index_select(0, rows)
        self.cross_kv = [t.index_select(0, rows) for t in self.cross_kv]

    def logits(self, new_tokens: Tensor) -> Tensor:
        return self._step(new_tokens)[:, -1]

    # ---- decoding ------------------------------------------------------------
    def _step(self, tokens: Tensor) -> Tensor:
        """Logits ``[rows, t, V]`` of ``tokens`` ``[rows, t]`` after the cached positions; extends the cache."""
        assert self.mask is not None, "encode first"
        if self.recurrent and tokens.size(1) > 1:
            raise InvalidInputError(_ONE_POSITION)
        own, per_layer = self.own, self.own + 2
        past, self.steps = self.steps, self.steps + tokens.size(1)
        if not self.cross_kv:
            assert self.hidden is not None, "encode first"
            out = self._run(DECODER_FILE, self._decoder_outputs, {
                "decoder_input_ids": _np(tokens), "encoder_hidden_states": _np(self.hidden),
                "encoder_attention_mask": _np(self.mask)})
            cache = [torch.from_numpy(a) for a in out[1:]]
            self.self_kv = [t for i, t in enumerate(cache) if i % per_layer < own]
            self.cross_kv = [t for i, t in enumerate(cache) if i % per_layer >= own]
            # the later steps read the encoder only through cross_kv: not kept, so reorders do not copy it
            self.hidden = None
            return torch.from_numpy(out[0])
        if self.self_new:
            self.self_kv = [appended(t, new, self.pending) for t, new in zip(self.self_kv, self.self_new)]
            self.self_new, self.pending = [], None
        feeds = {"decoder_input_ids": _np(tokens), "encoder_attention_mask": _np(self.mask)}
        if self.recurrent:
            feeds[PAST_POSITIONS] = np.zeros((1, past), dtype=np.int64)
        for layer in range(self.layers):
            names = self._past_names[per_layer * layer: per_layer * (layer + 1)]
            tensors = (*self.self_kv[own * layer: own * (layer + 1)], *self.cross_kv[2 * layer: 2 * layer + 2])
            feeds.update({n: _np(t) for n, t in zip(names, tensors)})
        out = self._run(DECODER_WITH_PAST_FILE, self._with_past_outputs, feeds)
        if self.past_apart:
            self.self_new = [torch.from_numpy(a) for a in out[1:]]
        else:
            self.self_kv = [torch.from_numpy(a) for a in out[1:]]
        return torch.from_numpy(out[0])

    def _run(self, graph: str, outputs: Sequence[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run ``graph`` (one of :data:`GRAPH_FILES`); a graph that loaded but fails on these inputs (a
        damaged or edited folder) is one typed line, not onnxruntime's traceback."""
        try:
            return self._sessions[graph].run(outputs, feeds)
        except Exception as e:  # onnxruntime's Fail, InvalidArgument, RuntimeException, ...
            raise InvalidInputError(f"`{self.folder}`: onnxruntime cannot run {graph} ({first_line(e, 200)})") from None

    def teacher_forced(self, src: Tensor, prev: Tensor) -> Tensor:
        """Logits ``[B, T, V]`` of the prefix ``prev`` (start token first), one
        position at a time through the cache, as a decoding loop runs it:
        ``decoder.onnx`` on the first position, ``decoder_with_past.onnx`` on each next."""
        self.encode(src)
        steps = [self._step(prev[:, :1])]
        for t in range(1, prev.size(1)):
            steps.append(self._step(prev[:, t: t + 1]))
        return torch.cat(steps, dim=1)

    def full_prefix(self, src: Tensor, prev: Tensor) -> Tensor:
        """Logits ``[B, T, V]`` of the whole prefix ``prev`` in one ``decoder.onnx`` run (no cache read);
        not for an SSRU decoder, whose ``decoder.onnx`` takes one position."""
        if self.recurrent and prev.size(1) > 1:
            raise InvalidInputError(_ONE_POSITION)
        self.encode(src)
        assert self.hidden is not None and self.mask is not None
        out = self._run(DECODER_FILE, ["logits"], {"decoder_input_ids": _np(prev),
                                                   "encoder_hidden_states": _np(self.hidden),
                                                   "encoder_attention_mask": _np(self.mask)})
        return torch.from_numpy(out[0])

    def greedy(self, src: Tensor, *, start: int, eos: int, pad: int, max_new_tokens: int) -> list[list[int]]:
        """transformers' greedy loop (argmax of the raw logits; finished rows
        emit pad) through the cache: per row, the tokens after the start token up to EOS."""
        self.encode(src)
        tokens = torch.full((src.size(0), 1), start, dtype=torch.long)
        out = tokens
        unfinished = torch.ones(src.size(0), dtype=torch.bool)
        lengths = torch.zeros(src.size(0), dtype=torch.long)
        for _ in range(max_new_tokens):
            nxt = self.logits(tokens).argmax(-1)
            nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
            lengths += unfinished.long()
            tokens = nxt[:, None]
            out = torch.cat([out, tokens], dim=1)
            unfinished &= nxt.ne(eos)
            if not bool(unfinished.any()):
                break
        return [out[i, 1: n + 1].tolist() for i, n in enumerate(lengths.tolist())]


def _one_position(session: Any) -> bool:
    """Whether ``session`` (a ``decoder_with_past.onnx``) returns only its step's own
    self-attention keys (``present.0.decoder.key``'s positions fixed at 1), not the
    whole cache (a dynamic length: graphs written before)."""
    shape = next(o.shape for o in session.get_outputs() if o.name == "present.0.decoder.key")
    return len(shape) == 4 and shape[2] == 1


def _np(t: Tensor) -> np.ndarray:
    return t.contiguous().numpy()


@dataclass
class OnnxModel:
    """An ``export onnx`` folder, loaded: what :func:`modelport.load` returns
    for one. ``translate`` runs modelport's search (the folder's semantics and
    decoding defaults) on onnxruntime, with the options of
    :meth:`PortedModel.translate <modelport.api.PortedModel.translate>`."""

    path: Path
    config: Seq2SeqConfig
    runtime: OnnxSeq2Seq
    generation_config: dict[str, Any]
    source_format: str
    export_report: dict[str, Any] = field(default_factory=dict)
    _tokenizer: Tokenizer | None = field(default=None, repr=False)

    backend = "onnx"

    @property
    def models(self) -> OnnxSeq2Seq:
        """What :func:`~modelport.generation.translate.generate` decodes with."""
        return self.runtime

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / TOKENIZER_DIR

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_dir, model_rows=self.config.vocab_rows)
        return self._tokenizer

    @property
    def quantization(self) -> str | None:
        """``int8`` when the graphs were quantized by ``export onnx --int8``."""
        return "int8" if self.export_report.get("dtype") == "int8" else None

    def translate(self, lines: list[str], **options: Any) -> list[list[Hypothesis]]:
        """Translate ``lines``; options default to the folder's ``generation_config.json``."""
        return translate(self, lines, **options)

    def translate_iterable(self, lines: Iterable[str], *, batch_size: int = 32, window: int = 16,
                           **options: Any) -> Iterator[list[Hypothesis]]:
        """As :meth:`PortedModel.translate_iterable <modelport.api.PortedModel.translate_iterable>`."""
        return translate_windows(self, lines, batch_size=batch_size, window=window, **options)


def _not_an_export(directory: Path) -> InvalidInputError:
    """The one-line refusal of a folder without the three graphs."""
    missing = [name for name in GRAPH_FILES if not (directory / name).is_file()]
    if is_onnx_export(directory):
        return InvalidInputError(f"`{directory}` is an ONNX export without {', '.join(missing)} (written by an older "
                                 "`modelport export onnx`, whose decoder has no KV cache): export the ported folder "
                                 "again")
    config = directory / CONFIG_NAME
    try:
        _, cfg, ensemble, quantization = _read_config(directory) if config.is_file() else (None, None, 1, None)
    except InvalidInputError:
        cfg = None
    if cfg is not None:
        problems = export_problems(cfg, ensemble, quantization)
        why = (" and cannot be exported to ONNX: " + "; ".join(problems)) if problems else \
            f": export it first with `modelport export onnx {directory} OUTPUT_DIR` (or use --backend torch)"
        return InvalidInputError(f"`{directory}` is a ported folder, not an ONNX export{why}")
    return InvalidInputError(f"`{directory}` has no ONNX graphs ({', '.join(GRAPH_FILES)}): write them with "
                             "`modelport export onnx PORTED_DIR OUTPUT_DIR`")


def load_onnx(directory: str | os.PathLike[str], *, device: str | torch.device | None = None,
              dtype: str | torch.dtype | None = None, threads: int | None = None) -> OnnxModel:
    """An ``export onnx`` folder for translation with onnxruntime (CPU, the graphs' precision)."""
    directory = Path(directory)
    problem = not_a_folder(directory)
    if problem is not None:
        raise InvalidInputError(f"`{directory}` is not an ONNX export ({problem})")
    if any(not (directory / name).is_file() for name in GRAPH_FILES):
        raise _not_an_export(directory)
    if device is not None and resolve_device(device).type != "cpu":  # torch.device("foo"): a bare RuntimeError
        raise InvalidInputError(f"the ONNX backend computes on the CPU (onnxruntime's CPU provider), but device "
                                f"`{device}` was asked for")
    if dtype is not None and dtype not in ("float32", torch.float32):
        raise InvalidInputError(f"the ONNX backend computes in the graphs' precision (float32, or int8 weights), but "
                                f"dtype `{dtype}` was asked for")
    _require_onnxruntime()
    data, config, _, _ = _read_config(directory)
    generation = read_json_object(directory, GENERATION_NAME)
    check_generation_config(generation, f"`{directory / GENERATION_NAME}`")
    # checked as untrusted as config.json: a damaged report raised JSONDecodeError, a list AttributeError
    report = read_json_object(directory, EXPORT_REPORT_NAME) if os.path.lexists(directory / EXPORT_REPORT_NAME) else {}
    try:
        runtime = OnnxSeq2Seq(directory, config, threads=threads)
    except InvalidInputError:  # said already (a graph that is not the export's)
        raise
    except Exception as e:  # onnxruntime's load errors (a damaged graph) are many
        raise InvalidInputError(f"`{directory}`: onnxruntime cannot load its graphs ({first_line(e, 200)})") from None
    return OnnxModel(path=directory, config=config, runtime=runtime, generation_config=generation,
                     source_format=str(data.get("source_format", "unknown")), export_report=report)


def graph_names(layers: int, recurrent: bool = False) -> dict[str, tuple[Sequence[str], Sequence[str]]]:
    """Each graph's input and output names (``recurrent``: an SSRU decoder's)."""
    return {ENCODER_FILE: (ENCODER_INPUTS, ENCODER_OUTPUTS),
            DECODER_FILE: (DECODER_INPUTS, decoder_outputs(layers, recurrent)),
            DECODER_WITH_PAST_FILE: (decoder_with_past_inputs(layers, recurrent),
                                     decoder_with_past_outputs(layers, recurrent))}


__all__ = ["OnnxSeq2Seq", "OnnxModel", "load_onnx", "is_onnx_export", "export_problems", "graph_names",
           "GRAPH_FILES", "ENCODER_FILE", "DECODER_FILE", "DECODER_WITH_PAST_FILE", "PAST_POSITIONS", "self_kinds"]
