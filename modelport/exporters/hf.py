"""Export a ported folder as a transformers model folder.

``export_hf(PORTED_DIR, OUT)`` writes what ``AutoModelForSeq2SeqLM`` and
``AutoTokenizer.from_pretrained(OUT)`` load:

* fairseq ports → ``FSMTForConditionalGeneration`` + ``FSMTTokenizer``
  (transformers' port of fairseq's WMT19 transformer: post-norm, sinusoidal
  positions in fairseq's layout from ``pad + 1``, fairseq dictionaries
  rewritten to ``</w>``-marked json vocabularies, the BPE codes as merges);
* fairseq BART ports → ``BartForConditionalGeneration``; mBART-50 and mBART-25
  fine-tunes → ``MBartForConditionalGeneration``; M2M100 and NLLB-200 style
  ports → ``M2M100ForConditionalGeneration`` (``M2M100Tokenizer`` for its own
  language lists; otherwise the SentencePiece tokenizers of
  :mod:`modelport.exporters.hf_tokenizers`: ``MBart50Tokenizer``,
  ``MBartTokenizer``, ``NllbTokenizer`` where they give the port's ids,
  else ``PreTrainedTokenizerFast`` on modelport's exact ``tokenizer.json``,
  else no tokenizer, named in the report);
* Marian ports → ``MarianMTModel`` + ``MarianTokenizer``;
* T5 ports → ``T5ForConditionalGeneration`` + ``T5Tokenizer``.

Only what the transformers class computes *exactly* is exported; anything
else is refused with the option named. Two Marian numerics are the
exception, because transformers' Marian differs from Marian's C++ in them
(see ``tests/converters/test_marian_parity.py``): the sinusoid's frequency denominator
(``dim/2`` vs ``dim/2 - 1``) and the layer-norm eps (1e-5 vs 1e-6). A folder
using Marian's values is refused unless ``allow_approximate``, and then the
measured logit difference is recorded, never hidden.

After writing, the folder is loaded back with transformers and compared with
the port (tokenizer ids, teacher-forced logits, ``generate`` beam search
against modelport's ``semantics="hf"`` search); the result goes to
``export_report.json``. A failed check removes the half-written folder and
raises :class:`~modelport.errors.ParityError` (exit 3).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from modelport._version import __version__
from modelport.api import PortedModel, load
from modelport.converters import fairseq as fairseq_converter
from modelport.converters import t5 as t5_converter
from modelport.converters.base import KeyMapper
from modelport.errors import InvalidInputError, MissingReferenceError, ParityError
from modelport.exporters import REPORT_NAME
from modelport.exporters.common import (
    max_abs_diff, nan_refused, open_for_export, verification_direction, verification_lines,
)
from modelport.exporters.hf_tokenizers import (SpmPort, languages_follow, spm_model_type, spm_ordered, spm_problems,
                                               write_spm_tokenizer)
from modelport.files import ordinary_mode
from modelport.generation import generate
from modelport.generation.options import FairseqOptions, MarianOptions, option_defaults
from modelport.generation.translate import Direction, fairseq_defaults_as_hf
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import CARD_NAME, TOKENIZER_CONFIG_NAME, PortedFolder
from modelport.model.io import atomic_output_dir, read_json, write_json
from modelport.modelcards.card import make_card
from modelport.progress import Steps
from modelport.reports.export import HfExportReport, HfVerification
from modelport.tokenizers.base import tokenizer_file
from modelport.tokenizers.fsmt_vocab import rewrite_dict_keys

TOL = 1e-4
# Default verification lines: plain text plus the characters Moses escapes
# (& < > [ ] | ') and splits (dashes, numbers), none of which FSMTTokenizer's
# extra punctuation normalisation changes.
DEFAULT_LINES = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "Tom & Jerry's <best> [episode] costs 3.50 | 2-3 people",
    "Machine translation is fun; isn't it?",
    "We met in 2019 at the north-east gate",
]
# unified activation -> transformers ACT2FN name computing the same function
HF_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "silu": "silu",
                  "gelu_sigmoid": "quick_gelu"}  # quick_gelu: x * sigmoid(1.702 x), Marian's gelu
HF_TOKENIZER_CONFIG_NAME = "tokenizer_config.json"  # transformers' name (the port's file has the same one)
_GENERATE_MAX_NEW_TOKENS = 24  # verification only: enough to reach EOS or the length limit

_TARGETS: dict[str, type[HfTarget]] = {}


def register_target(source_format: str) -> Callable[[type[HfTarget]], type[HfTarget]]:
    """Class decorator: the transformers family that represents ports of ``source_format``."""

    def wrap(cls: type[HfTarget]) -> type[HfTarget]:
        _TARGETS[source_format] = cls
        return cls

    return wrap


def invert_table(table: Mapping[str, str | None], skip: Callable[[str], bool] = lambda _: False) -> dict[str, str]:
    """A converter's foreign → unified name table turned around (unified →
    foreign), so an exporter writes the names the converter reads. Foreign
    aliases of one slot (old fairseq spellings, gated/plain FFN names) are
    left out with ``skip``; a slot still named twice is a bug."""
    out: dict[str, str] = {}
    for foreign, unified in table.items():
        if unified is None or skip(foreign):
            continue
        if unified in out:
            raise AssertionError(f"`{unified}` has two foreign names: `{out[unified]}`, `{foreign}`")
        out[unified] = foreign
    return out


def rename(state: Mapping[str, torch.Tensor], table: Mapping[str, str], what: str) -> dict[str, torch.Tensor]:
    """Apply an inverted table to the unified state dict; every tensor must map."""
    mapper = KeyMapper(state, table)
    out = dict(mapper.apply())
    if mapper.leftovers():
        raise InvalidInputError(f"unified tensors {', '.join(mapper.leftovers())} have no {what} name")
    return out


# ---------------------------------------------------------------------------
# targets


class HfTarget(ABC):
    """How one transformers model family represents a ported folder."""

    model_class: ClassVar[str]
    tokenizer_class: str  # the class written (a SentencePiece port's is decided when writing)

    def __init__(self, ported: PortedModel, *, allow_approximate: bool = False) -> None:
        self.ported = ported
        self.cfg = ported.config
        self.allow_approximate = allow_approximate  # a tokenizer class that is not exact may be written

    @functools.cached_property
    def tokenizer_config(self) -> dict[str, Any]:
        """The port's ``tokenizer_config.json``, read once."""
        return read_json(self.ported.tokenizer_dir / TOKENIZER_CONFIG_NAME)

    def problems(self) -> list[str]:
        """What the transformers class cannot compute at all (always refused)."""
        return []

    def approximations(self) -> list[str]:
        """Numerics the transformers class computes slightly differently
        (refused unless ``allow_approximate``; the difference is measured)."""
        return []

    @abstractmethod
    def config(self) -> Any:
        """The transformers config object."""

    @abstractmethod
    def weights(self) -> dict[str, torch.Tensor]:
        """Tensors in the transformers names; names transformers ties to
        another are left out (it ties them on load)."""

    @abstractmethod
    def write_tokenizer(self, out: Path) -> None:
        """The tokenizer files and ``tokenizer_config.json``."""

    @abstractmethod
    def generation(self) -> tuple[dict[str, Any], list[str]]:
        """The folder's decoding defaults in transformers' names, and notes on
        the ones transformers has no equivalent for."""

    def verify_generate_options(self) -> dict[str, Any]:
        """Extra ``generate`` options verification needs to run transformers at all."""
        return {}

    # shared checks -------------------------------------------------------
    def _require(self, problems: list[str], **expected: Any) -> None:
        """Append a problem for every config flag whose value is not ``expected``."""
        for name, value in expected.items():
            got = getattr(self.cfg, name)
            ok = value(got) if callable(value) else got == value
            if not ok:
                want = "" if callable(value) else f" (supported: {value!r})"
                problems.append(f"`{name}` {got!r} is not supported by {self.model_class}{want}")

    def _activation(self, problems: list[str]) -> str | None:
        act = HF_ACTIVATIONS.get(self.cfg.activation)
        if act is None:
            problems.append(f"activation `{self.cfg.activation}` is not supported by {self.model_class} "
                            f"(supported: {', '.join(HF_ACTIVATIONS)})")
        return act

    def _state(self) -> dict[str, torch.Tensor]:
        return dict(self.ported.model.state_dict())

    def _tokenizer_config(self, problems: list[str], kind: str) -> dict[str, Any] | None:
        """The port's ``tokenizer_config.json``; None (and a problem) when its
        tokenizer type is not ``kind``, the one ``tokenizer_class`` reproduces."""
        tok = self.tokenizer_config
        if tok.get("type") != kind:
            problems.append(f"tokenizer `{tok.get('type')}` is not supported by {self.tokenizer_class} "
                            f"(supported: {kind})")
            return None
        return tok

    def _require_options(self, problems: list[str], tok_cfg: dict[str, Any], wanted: dict[str, Any]) -> None:
        """A problem per tokenizer option whose value is not the one the export reproduces."""
        for key, value in wanted.items():
            if tok_cfg.get(key) != value:
                problems.append(f"tokenizer option `{key}` {tok_cfg.get(key)!r} is not supported by "
                                f"{self.model_class} export (supported: {value!r})")


# fairseq's layer names are also BART/Marian's (transformers kept them); the
# old-fairseq spellings and the pre-0.10 output name are aliases, not written.
_FAIRSEQ_NAMES = invert_table(fairseq_converter.NAME_TABLE,
                              skip=lambda k: ".layer_norms." in k or k == "decoder.embed_out")


def _post_norm_sinusoidal_problems(target: HfTarget, problems: list[str], *, offset: int, pad_index: int,
                                   what: str) -> None:
    """The behaviours FSMT and MarianMTModel share: post-norm layer norm,
    sin-then-cos sinusoidal positions, biases, a plain two-layer FFN."""
    cfg = target.cfg
    target._require(problems, pre_norm=False, final_norm=False, layernorm_embedding=False, norm="layernorm",
                    positions="sinusoidal", sinusoidal_layout="sin_cos", ffn_depth=2, ffn_gated=False,
                    attention_bias=True, ffn_bias=True, attention_scale=None, output_scale=1.0)
    if cfg.head_dim is not None and (cfg.head_dim * cfg.encoder_heads != cfg.d_model
                                     or cfg.head_dim * cfg.decoder_heads != cfg.d_model):
        problems.append(f"`head_dim` {cfg.head_dim} is not supported by {target.model_class} (supported: "
                        "d_model / heads)")
    if cfg.positions == "sinusoidal" and (cfg.position_offset, cfg.position_pad_index) != (offset, pad_index):
        problems.append(f"positions from {cfg.position_offset} (pad at {cfg.position_pad_index}) are not "
                        f"supported by {target.model_class} (supported: {what})")


@register_target("fairseq")
class FsmtTarget(HfTarget):
    """fairseq transformer → ``FSMTForConditionalGeneration``."""

    model_class = "FSMTForConditionalGeneration"
    tokenizer_class = "FSMTTokenizer"

    def problems(self) -> list[str]:
        cfg, problems = self.cfg, []
        _post_norm_sinusoidal_problems(self, problems, offset=cfg.pad_token_id + 1, pad_index=cfg.pad_token_id,
                                       what="pad + 1, fairseq's make_positions")
        self._require(problems, sinusoidal_denominator_minus_one=True, norm_eps=1e-5, final_logits_bias=False,
                      decoder_start_zero_embedding=False)
        self._activation(problems)
        tok = self._tokenizer_config(problems, "fairseq_moses_bpe")
        if tok is None:
            return problems
        # FSMTTokenizer always escapes, splits dashes aggressively and applies BPE with `</w>` word ends
        for flag in ("moses_escape", "moses_aggressive_dash_splits", "append_eos"):
            if not tok.get(flag, True):
                problems.append(f"tokenizer option `{flag}` false is not supported by {self.tokenizer_class} "
                                "(supported: true)")
        if not tok.get("bpe"):
            problems.append(f"a tokenizer without BPE is not supported by {self.tokenizer_class} (it always "
                            "applies its merges)")
        elif self.ported.tokenizer.bpe.fmt == "subword_nmt" and self.ported.tokenizer.bpe.version != (0, 2):
            problems.append(f"subword-nmt codes version 0.1 are not supported by {self.tokenizer_class} "
                            "(supported: fastBPE or subword-nmt 0.2 codes)")
        if tok.get("bpe_separator", "@@") != "@@":
            problems.append(f"BPE separator `{tok['bpe_separator']}` is not supported by {self.tokenizer_class} "
                            "(supported: @@)")
        return problems

    @property
    def tied(self) -> bool:
        # FSMT's tie_word_embeddings ties all three matrices; anything less is saved untied
        return self.cfg.shared_embeddings and self.cfg.tie_output_embeddings

    def config(self) -> Any:
        from transformers import FSMTConfig

        cfg = self.cfg
        tok = self.ported.tokenizer
        gen, _ = self.generation()
        hf = FSMTConfig(
            langs=[tok.moses_source_lang, tok.moses_target_lang], src_vocab_size=cfg.source_vocab_size,
            tgt_vocab_size=cfg.target_vocab_size, activation_function=HF_ACTIVATIONS[cfg.activation],
            d_model=cfg.d_model, max_position_embeddings=max(cfg.max_source_positions, cfg.max_target_positions),
            encoder_ffn_dim=cfg.encoder_ffn_dim, encoder_layers=cfg.encoder_layers,
            encoder_attention_heads=cfg.encoder_heads, decoder_ffn_dim=cfg.decoder_ffn_dim,
            decoder_layers=cfg.decoder_layers, decoder_attention_heads=cfg.decoder_heads, dropout=0.0,
            scale_embedding=cfg.scale_embeddings, tie_word_embeddings=self.tied,
            pad_token_id=cfg.pad_token_id, bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id,
            decoder_start_token_id=cfg.decoder_start_token_id, forced_eos_token_id=cfg.eos_token_id,
            num_beams=gen["num_beams"], length_penalty=gen["length_penalty"],
            early_stopping=gen["early_stopping"], max_length=gen["max_length"])
        hf.architectures = [self.model_class]
        return hf

    def weights(self) -> dict[str, torch.Tensor]:
        state = self._state()
        out = {f"model.{k}": v for k, v in rename(state, _FAIRSEQ_NAMES, "fairseq/FSMT").items()}
        if self.cfg.tie_output_embeddings:
            out["model.decoder.output_projection.weight"] = state["decoder.embed.embed_tokens.weight"]
        if self.tied:
            for key in ("model.encoder.embed_tokens.weight", "model.decoder.output_projection.weight"):
                del out[key]  # FSMT ties them to model.decoder.embed_tokens.weight
        return out

    def write_tokenizer(self, out: Path) -> None:
        # transformers' own conversion (convert_fsmt_original_pytorch_checkpoint_to_pytorch.py)
        tok = self.ported.tokenizer
        write_json(out / "vocab-src.json", rewrite_dict_keys(tok.source_dict.symbols))
        write_json(out / "vocab-tgt.json", rewrite_dict_keys(tok.target_dict.symbols))
        # merges in rank order: FSMTTokenizer ranks a merge by its line number
        merges = sorted(tok.bpe.ranks.items(), key=lambda kv: kv[1])
        (out / "merges.txt").write_text("".join(f"{a} {b}\n" for (a, b), _ in merges), encoding="utf-8")
        # FSMTTokenizer runs Moses (and its punctuation normaliser) with `langs`: the
        # languages fairseq's hub tokenizes with, not necessarily the task's
        write_json(out / HF_TOKENIZER_CONFIG_NAME, {
            "tokenizer_class": self.tokenizer_class, "langs": [tok.moses_source_lang, tok.moses_target_lang],
            "do_lower_case": False, "model_max_length": self.cfg.max_source_positions,
            "src_vocab_file": "vocab-src.json", "tgt_vocab_file": "vocab-tgt.json", "merges_file": "merges.txt",
            # what FSMTTokenizer does (fixed in its code), recorded for the reader
            "moses_escape": True, "moses_aggressive_dash_splits": True})

    def generation(self) -> tuple[dict[str, Any], list[str]]:
        g, cfg = _with_defaults(FairseqOptions, self.ported.generation_config), self.cfg
        # early stopping, length limit and forced EOS as modelport's --semantics hf reads
        # a fairseq folder, so that generate() on the export is that search
        gen = {"num_beams": int(g["beam"]), "length_penalty": float(g["lenpen"]),
               "no_repeat_ngram_size": int(g["no_repeat_ngram_size"]),
               "max_length": min(cfg.max_source_positions, cfg.max_target_positions),
               **fairseq_defaults_as_hf(g, cfg.eos_token_id),
               "decoder_start_token_id": cfg.decoder_start_token_id,
               "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id}
        notes = []
        if g["max_len_a"] or g["max_len_b"] != 200:
            notes.append(f"fairseq's max length {g['max_len_a']} * source length + {g['max_len_b']} "
                         "has no transformers equivalent; max_length is the model's position limit")
        if g["unkpen"]:
            notes.append(f"fairseq's --unkpen {g['unkpen']} has no transformers equivalent (not exported)")
        if g["min_len"] != 1:
            notes.append(f"fairseq's --min-len {g['min_len']} is not exported (transformers counts min_length "
                         "differently)")
        notes.append("transformers' beam search differs from fairseq's (see modelport's semantics profiles): "
                     "outputs match modelport with semantics='hf', not fairseq-generate")
        return gen, notes


def _with_defaults(options: type, generation_config: Mapping[str, Any]) -> dict[str, Any]:
    """A folder's generation_config.json over the defaults of its semantics' options
    dataclass (what translate decodes with where the folder records nothing)."""
    return {**option_defaults(options), **{k: v for k, v in generation_config.items() if v is not None}}


def _bart_family_config(cfg: Seq2SeqConfig) -> dict[str, Any]:
    """The config fields BartConfig and M2M100Config share (same names, same meaning), for a port."""
    return dict(
        vocab_size=cfg.target_vocab_size, d_model=cfg.d_model, encoder_layers=cfg.encoder_layers,
        decoder_layers=cfg.decoder_layers, encoder_attention_heads=cfg.encoder_heads,
        decoder_attention_heads=cfg.decoder_heads, encoder_ffn_dim=cfg.encoder_ffn_dim,
        decoder_ffn_dim=cfg.decoder_ffn_dim, activation_function=HF_ACTIVATIONS[cfg.activation],
        max_position_embeddings=cfg.max_source_positions, scale_embedding=cfg.scale_embeddings,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, tie_word_embeddings=True,
        pad_token_id=cfg.pad_token_id, bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id,
        decoder_start_token_id=cfg.decoder_start_token_id, forced_eos_token_id=cfg.eos_token_id)


class BartTarget(HfTarget):
    """fairseq BART (GPT-2 BPE, hub semantics) → ``BartForConditionalGeneration``:
    post-norm, learned positions offset 2, ``layernorm_embedding``, one shared
    embedding tied to the output; ``vocab.json`` in fairseq's dictionary ids
    (the GPT-2 piece of each ``dict.txt`` word), ``merges.txt`` = ``vocab.bpe``.
    transformers' positions are ``arange + 2`` whatever the padding (fairseq's
    skip pads), so sources are right-padded there, as its tokenizers pad."""

    model_class = "BartForConditionalGeneration"
    # tokenizer_config.json names BartTokenizer; transformers 5 loads it as RobertaTokenizer (an alias)
    tokenizer_class = "RobertaTokenizer"

    def problems(self) -> list[str]:
        problems: list[str] = []
        self._require(problems, pre_norm=False, final_norm=False, layernorm_embedding=True, norm="layernorm",
                      norm_eps=1e-5, positions="learned", position_offset=2, position_pad_index=1, ffn_depth=2,
                      ffn_gated=False, attention_bias=True, ffn_bias=True, attention_scale=None, output_scale=1.0,
                      shared_embeddings=True, tie_output_embeddings=True, final_logits_bias=False,
                      decoder_start_zero_embedding=False, head_dim=None)
        if self.cfg.max_source_positions != self.cfg.max_target_positions:
            problems.append(f"different source/target position limits ({self.cfg.max_source_positions}, "
                            f"{self.cfg.max_target_positions}) are not supported by {self.model_class}")
        self._activation(problems)
        self._tokenizer_config(problems, "fairseq_gpt2_bpe")
        return problems

    def config(self) -> Any:
        from transformers import BartConfig

        cfg = self.cfg
        gen, _ = self.generation()
        hf = BartConfig(**_bart_family_config(cfg), forced_bos_token_id=gen["forced_bos_token_id"])
        hf.architectures = [self.model_class]
        return hf

    def weights(self) -> dict[str, torch.Tensor]:
        state = self._state()
        out = {f"model.{k}": v for k, v in rename(state, _FAIRSEQ_NAMES, "fairseq/BART").items()}
        for key in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                    "model.decoder.output_projection.weight"):
            out.pop(key, None)  # tied to model.shared.weight on load
        out["model.shared.weight"] = state["decoder.embed.embed_tokens.weight"]
        out["final_logits_bias"] = torch.zeros(1, self.cfg.target_vocab_size)
        return out

    def write_tokenizer(self, out: Path) -> None:
        tok = self.ported.tokenizer
        vocab: dict[str, int] = {}
        for i, word in enumerate(tok.dict.symbols):  # fairseq's ids, each word's GPT-2 piece
            piece = tok.bpe.decoder.get(int(word), word) if word.isdigit() and word.isascii() else word
            vocab.setdefault(piece, i)
        write_json(out / "vocab.json", vocab)
        src = self.ported.tokenizer_dir
        cfg = self.tokenizer_config
        shutil.copyfile(tokenizer_file(src, cfg, "vocab_bpe", "vocab.bpe"), out / "merges.txt")
        write_json(out / HF_TOKENIZER_CONFIG_NAME, {
            "tokenizer_class": "BartTokenizer", "model_max_length": self.cfg.max_source_positions,
            "add_prefix_space": False, "errors": "replace", "bos_token": "<s>", "eos_token": "</s>",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "cls_token": "<s>",
            "sep_token": "</s>"})

    def generation(self) -> tuple[dict[str, Any], list[str]]:
        gen, notes = FsmtTarget.generation(self)  # type: ignore[arg-type]  # fairseq's defaults, same rules
        gen["forced_bos_token_id"] = self.cfg.bos_token_id  # BARTHubInterface forces <s> first
        return gen, notes


class SpmTokenizerExport:
    """The tokenizer of a fairseq SentencePiece port with languages, as
    :mod:`modelport.exporters.hf_tokenizers` writes it: a transformers class
    (:meth:`tokenizer_candidate`) where it gives the port's ids, else
    ``PreTrainedTokenizerFast`` on the same ``tokenizer.json``, else (no exact
    ``tokenizer.json`` exists) no tokenizer, the model still exported."""

    ported: PortedModel
    cfg: Seq2SeqConfig
    tokenizer_class: str
    tokenizer_note: str | None = None
    allow_approximate: bool
    tokenizer_approximations: tuple[str, ...] = ()  # how an admitted (allow_approximate) class differs
    # the pair the written tokenizer (src_lang, tgt_lang) and generate (forced_bos_token_id) default to:
    # the one given to export_hf, else the first two languages
    direction: tuple[str, str] | None = None

    def _direction(self) -> tuple[str, str]:
        if self.direction is not None:
            return self.direction
        langs = self.ported.tokenizer.languages
        return langs[0], langs[1 % len(langs)]

    def _spm_port(self) -> SpmPort:
        tok = self.ported.tokenizer
        plan = tok.language_plan(*self._direction())
        spm = tokenizer_file(self.ported.tokenizer_dir, self.tokenizer_config, "spm", "sentencepiece.bpe.model")
        return SpmPort(spm_path=spm, dictionary=tok.dict,
                       names={tok.lang_ids[x]: x for x in tok.languages}, source_prefix=plan.source_prefix,
                       source_suffix=plan.source_suffix, model_max_length=self.cfg.max_source_positions)

    def tokenizer_candidate(self, port: SpmPort) -> tuple[tuple[str, dict[str, Any]] | None, str | None]:
        """(the transformers class and its tokenizer_config keys, or None; why not)."""
        return None, "no transformers tokenizer class has these languages"

    def _class_fits(self, port: SpmPort, cls: str, languages: Sequence[str], model_type: str) -> str | None:
        """Why ``cls`` (its fixed ``languages``, its model type) does not fit the port, or None."""
        if spm_model_type(port.spm_path) != model_type:
            return f"{cls} builds a {model_type} model, the port's SentencePiece model is not {model_type}"
        if not spm_ordered(port):
            return f"{cls} assumes dict.txt in SentencePiece order (id = piece id + 1), the port's is not"
        if not languages_follow(port, languages):
            langs = self.ported.tokenizer.languages
            return (f"{cls} numbers its own {len(languages)} languages ({', '.join(list(languages)[:3])}, ...) "
                    f"after the pieces, the port has {len(langs)} ({', '.join(langs[:3])}{', ...' * (len(langs) > 3)})")
        return None

    def write_spm_tokenizer(self, out: Path) -> None:
        port = self._spm_port()
        problems = spm_problems(port)
        if problems:  # refused by name; the model is still exported
            self.tokenizer_class = "none"
            self.tokenizer_note = "no tokenizer written: " + "; ".join(problems)
            return
        candidate, why_not = self.tokenizer_candidate(port)
        choice = write_spm_tokenizer(out, port, self.ported.tokenizer.encode, DEFAULT_LINES, candidate, why_not,
                                     allow_approximate=self.allow_approximate)
        self.tokenizer_class, self.tokenizer_note = choice.tokenizer_class, choice.note
        self.tokenizer_approximations = (choice.approximation,) if choice.approximation else ()

    def language_generation(self, gen: dict[str, Any]) -> None:
        """The default direction's target language forced first, and every language's token id."""
        tok = self.ported.tokenizer
        gen["forced_bos_token_id"] = tok.lang_ids[self._direction()[1]]
        gen["lang_code_to_id"] = {x: tok.lang_ids[x] for x in tok.languages}


class M2M100Target(SpmTokenizerExport, HfTarget):
    """M2M100-style ports (``translation_multi_simple_epoch``: pre-norm with final
    norms, sinusoidal positions from ``pad + 1`` in fairseq's layout, one
    shared embedding) → ``M2M100ForConditionalGeneration``. M2M100's own
    language lists (``language_codes`` ``m2m100`` or ``wmt21``, numbered right
    after ``vocab.json``) get ``M2M100Tokenizer``; any other list (NLLB-200's
    ``eng_Latn`` codes, ``--encoder-langtok src``: the source token first, as
    ``NllbTokenizer`` places it with ``legacy_behaviour`` false) gets
    ``NllbTokenizer`` where it fits, else ``PreTrainedTokenizerFast``
    (:class:`SpmTokenizerExport`). ``generation_config.json`` forces the
    second language (``forced_bos_token_id``) and lists every language's id."""

    model_class = "M2M100ForConditionalGeneration"
    tokenizer_class = "M2M100Tokenizer"

    def _language_codes(self) -> str | None:
        from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

        langs = list(getattr(self.ported.tokenizer, "languages", ()))
        return next((name for name, codes in FAIRSEQ_LANGUAGE_CODES.items() if list(codes) == langs), None)

    def problems(self) -> list[str]:
        cfg, problems = self.cfg, []
        self._require(problems, pre_norm=True, final_norm=True, layernorm_embedding=False, norm="layernorm",
                      norm_eps=1e-5, positions="sinusoidal", sinusoidal_layout="sin_cos",
                      sinusoidal_denominator_minus_one=True, position_offset=cfg.pad_token_id + 1, ffn_depth=2,
                      ffn_gated=False, attention_bias=True, ffn_bias=True, attention_scale=None, output_scale=1.0,
                      shared_embeddings=True, tie_output_embeddings=True, final_logits_bias=False,
                      decoder_start_zero_embedding=False, head_dim=None)
        if cfg.max_source_positions != cfg.max_target_positions:
            problems.append(f"different source/target position limits are not supported by {self.model_class}")
        self._activation(problems)
        tok_cfg = self._tokenizer_config(problems, "fairseq_spm")
        if tok_cfg is None:
            return problems
        tok = self.ported.tokenizer
        self._require_options(problems, tok_cfg, {"lang_tok_style": "multilingual", "encoder_langtok": "src",
                                                  "decoder_langtok": True, "add_mask": False})
        if not tok.languages:
            problems.append(f"a port without languages is not supported by {self.model_class} export")
        elif self._language_codes() is not None:
            base = len(tok.dict) - len(tok.languages)
            if [tok.lang_ids[x] for x in tok.languages] != list(range(base, base + len(tok.languages))):
                problems.append(f"language tokens that are not the last {len(tok.languages)} dictionary ids are "
                                f"not supported by {self.tokenizer_class}")
            if tok.model_vocab_size != len(tok.dict):
                problems.append(f"embedding rows past the dictionary ({tok.model_vocab_size} rows, {len(tok.dict)} "
                                f"symbols) are not supported by {self.tokenizer_class}")
        return problems

    def config(self) -> Any:
        from transformers import M2M100Config

        hf = M2M100Config(**_bart_family_config(self.cfg), encoder_layerdrop=0.0, decoder_layerdrop=0.0)
        hf.architectures = [self.model_class]
        return hf

    def weights(self) -> dict[str, torch.Tensor]:
        out = BartTarget.weights(self)  # type: ignore[arg-type]  # the same names, with model.shared
        del out["final_logits_bias"]  # M2M100 has none
        return out

    def tokenizer_candidate(self, port: SpmPort) -> tuple[tuple[str, dict[str, Any]] | None, str | None]:
        from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

        langs = list(self.ported.tokenizer.languages)
        unknown = [x for x in langs if x not in FAIRSEQ_LANGUAGE_CODES]
        if unknown:
            return None, f"languages {', '.join(unknown[:3])} are not NllbTokenizer's (nor M2M100Tokenizer's lists)"
        why = self._class_fits(port, "NllbTokenizer", langs, "bpe")
        if why is not None:
            return None, why
        # a subset of NLLB's codes works: tokenizer.json numbers them, extra_special_tokens lists them
        src, tgt = self._direction()
        return ("NllbTokenizer", {"src_lang": src, "tgt_lang": tgt, "legacy_behaviour": False,
                                  "extra_special_tokens": langs}), None

    def write_tokenizer(self, out: Path) -> None:
        codes = self._language_codes()
        if codes is None:
            self.write_spm_tokenizer(out)
            return
        tok = self.ported.tokenizer
        n = len(tok.dict) - len(tok.languages)
        write_json(out / "vocab.json", {sym: i for i, sym in enumerate(tok.dict.symbols[:n])})
        src = self.ported.tokenizer_dir
        shutil.copyfile(tokenizer_file(src, self.tokenizer_config, "spm", "sentencepiece.bpe.model"),
                        out / "sentencepiece.bpe.model")
        source_lang, target_lang = self._direction()
        write_json(out / HF_TOKENIZER_CONFIG_NAME, {
            "tokenizer_class": self.tokenizer_class, "language_codes": codes,
            "vocab_file": "vocab.json", "spm_file": "sentencepiece.bpe.model",
            "src_lang": source_lang, "tgt_lang": target_lang,
            "model_max_length": self.cfg.max_source_positions, "bos_token": "<s>", "eos_token": "</s>",
            "sep_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
            # transformers 5's M2M100Tokenizer makes its __xx__ tokens special (decode's skip_special_tokens
            # drops them) only when the config lists them
            "extra_special_tokens": [tok.dict.symbols[tok.lang_ids[x]] for x in tok.languages]})
        self.tokenizer_note = f"M2M100Tokenizer: the languages are its `{codes}` list, after the dictionary"

    def generation(self) -> tuple[dict[str, Any], list[str]]:
        gen, notes = FsmtTarget.generation(self)  # type: ignore[arg-type]
        self.language_generation(gen)
        notes.append("forced_bos_token_id is the default direction's target language; for another one pass "
                     "generate(..., forced_bos_token_id=lang_code_to_id[lang]), as fairseq forces it with "
                     "prefix_tokens")
        return gen, notes


class MBartTarget(SpmTokenizerExport, HfTarget):
    """mBART ports → ``MBartForConditionalGeneration``: pre-norm with final
    norms, ``layernorm_embedding``, learned positions offset 2, scaled
    embeddings, one shared embedding tied to the output.

    * mBART-50 (``translation_multi_simple_epoch``, ``--lang-tok-style mbart``):
      ``[src] ids </s>``, the decoder starts from ``</s>`` and is forced to
      ``[tgt]`` (``forced_bos_token_id``): ``MBart50Tokenizer``'s placement.
    * mBART-25 fine-tunes (``translation_from_pretrained_bart``): ``ids </s>
      [src]``, the decoder starts from ``[tgt]`` (``decoder_start_token_id``),
      ``MBartTokenizer``'s placement. fairseq also *stops* on ``[tgt]``
      (``SequenceGenerator(eos=[tgt])``); transformers stops on ``</s>``, so the
      export's ``generate`` is modelport's hf search started from ``[tgt]``.

    The tokenizer: :class:`SpmTokenizerExport`, with ``MBart50Tokenizer`` /
    ``MBartTokenizer`` as the candidate classes."""

    model_class = "MBartForConditionalGeneration"
    tokenizer_class = "MBart50Tokenizer"

    @property
    def finetune(self) -> bool:
        return self.ported.tokenizer.langtok_placement == "mbart_finetune"

    def problems(self) -> list[str]:
        problems: list[str] = []
        self._require(problems, pre_norm=True, final_norm=True, layernorm_embedding=True, norm="layernorm",
                      norm_eps=1e-5, positions="learned", position_offset=2, position_pad_index=1, ffn_depth=2,
                      ffn_gated=False, attention_bias=True, ffn_bias=True, attention_scale=None, output_scale=1.0,
                      shared_embeddings=True, tie_output_embeddings=True, final_logits_bias=False,
                      decoder_start_zero_embedding=False, head_dim=None)
        if self.cfg.max_source_positions != self.cfg.max_target_positions:
            problems.append(f"different source/target position limits are not supported by {self.model_class}")
        self._activation(problems)
        tok_cfg = self._tokenizer_config(problems, "fairseq_spm")
        if tok_cfg is None:
            return problems
        if not self.ported.tokenizer.languages:
            problems.append(f"an mBART port without placed language tokens (pre-training's BARTHubInterface: <s> "
                            f"placement) is not supported by {self.model_class} export (supported: mBART-50 "
                            "translation_multi_simple_epoch, mBART-25 translation_from_pretrained_bart fine-tunes)")
        elif not self.finetune:
            self._require_options(problems, tok_cfg, {"encoder_langtok": "src", "decoder_langtok": True})
        return problems

    def config(self) -> Any:
        from transformers import MBartConfig

        hf = MBartConfig(**_bart_family_config(self.cfg), encoder_layerdrop=0.0, decoder_layerdrop=0.0)
        hf.architectures = [self.model_class]
        return hf

    def weights(self) -> dict[str, torch.Tensor]:
        return BartTarget.weights(self)  # type: ignore[arg-type]  # BART's names, final norms included

    def tokenizer_candidate(self, port: SpmPort) -> tuple[tuple[str, dict[str, Any]] | None, str | None]:
        if self.finetune:
            from transformers.models.mbart.tokenization_mbart import FAIRSEQ_LANGUAGE_CODES as codes
            cls = "MBartTokenizer"
        else:
            from transformers.models.mbart50.tokenization_mbart50 import FAIRSEQ_LANGUAGE_CODES as codes
            cls = "MBart50Tokenizer"
        why = self._class_fits(port, cls, codes, "unigram")
        if why is not None:
            return None, why
        src, tgt = self._direction()
        return (cls, {"src_lang": src, "tgt_lang": tgt}), None

    def write_tokenizer(self, out: Path) -> None:
        self.write_spm_tokenizer(out)

    def generation(self) -> tuple[dict[str, Any], list[str]]:
        gen, notes = FsmtTarget.generation(self)  # type: ignore[arg-type]
        self.language_generation(gen)
        if self.finetune:
            gen["decoder_start_token_id"] = gen.pop("forced_bos_token_id")
            notes.append("mBART-25 fine-tune: the decoder starts from the target language token "
                         "(decoder_start_token_id); fairseq also stops on it, transformers stops on </s>")
        else:
            notes.append("forced_bos_token_id is the default direction's target language; for another one pass "
                         "generate(..., forced_bos_token_id=lang_code_to_id[lang])")
        return gen, notes


def _fairseq_target(ported: PortedModel, allow_approximate: bool = False) -> HfTarget:
    """The transformers family of a fairseq port, by its tokenizer (one entry per family)."""
    tok = read_json(ported.tokenizer_dir / TOKENIZER_CONFIG_NAME)
    kind = tok.get("type")
    families: dict[str, type[HfTarget]] = {"fairseq_moses_bpe": FsmtTarget, "fairseq_gpt2_bpe": BartTarget,
                                           "fairseq_spm": M2M100Target}
    if kind not in families:
        raise InvalidInputError(f"a fairseq port with tokenizer `{kind}` cannot be exported to transformers "
                                f"(supported: {', '.join(families)})")
    if kind == "fairseq_spm" and (tok.get("lang_tok_style") == "mbart"):
        return MBartTarget(ported, allow_approximate=allow_approximate)  # mBART-50, mBART-25 fine-tunes
    return families[kind](ported, allow_approximate=allow_approximate)


@register_target("marian")
class MarianTarget(HfTarget):
    """Marian/OPUS-MT transformer → ``MarianMTModel``."""

    model_class = "MarianMTModel"
    tokenizer_class = "MarianTokenizer"

    def problems(self) -> list[str]:
        cfg, problems = self.cfg, []
        _post_norm_sinusoidal_problems(self, problems, offset=0, pad_index=0, what="0, Marian's")
        self._activation(problems)
        if cfg.decoder_autoreg != "self-attention":
            problems.append(f"the {cfg.decoder_autoreg.upper()} decoder (`decoder_autoreg` {cfg.decoder_autoreg!r}, "
                            "Marian's --transformer-decoder-autoreg rnn) is not supported by MarianMTModel "
                            "(supported: 'self-attention')")
        if cfg.source_vocab_size != cfg.target_vocab_size:
            problems.append("different source and target vocabulary sizes are not supported by MarianMTModel")
        if cfg.decoder_start_zero_embedding:
            # transformers starts from the pad token: its (zero) embedding row gives Marian's zero vector
            row = self.ported.model.decoder.embed.embed_tokens.weight[cfg.decoder_start_token_id]
            if row.abs().max().item() != 0:
                problems.append("the decoder start (an all-zero embedding in Marian) needs a zero embedding row "
                                f"for id {cfg.decoder_start_token_id}, but it is not zero")
        self._tokenizer_config(problems, "marian_spm")
        return problems

    def approximations(self) -> list[str]:
        out = []
        if self.cfg.sinusoidal_denominator_minus_one:
            out.append("`sinusoidal_denominator_minus_one` true (Marian's frequencies over dim/2 - 1): "
                       "MarianMTModel divides by dim/2")
        if self.cfg.norm_eps != 1e-5:
            out.append(f"`norm_eps` {self.cfg.norm_eps:g} (Marian's layer norm): MarianMTModel uses 1e-5")
        if self.tokenizer_config.get("encode_rule") == "marian":
            out.append("tokenizer `encode_rule` 'marian' (ties between segmentations of equal score split as "
                       "the SentencePiece Marian bundles splits them, e.g. '000' in '65,000'): MarianTokenizer "
                       "uses the sentencepiece library, which splits such ties otherwise")
        return out

    def config(self) -> Any:
        from transformers import MarianConfig

        cfg = self.cfg
        gen, _ = self.generation()
        hf = MarianConfig(
            vocab_size=cfg.source_vocab_size, decoder_vocab_size=cfg.target_vocab_size, d_model=cfg.d_model,
            encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers,
            encoder_attention_heads=cfg.encoder_heads, decoder_attention_heads=cfg.decoder_heads,
            encoder_ffn_dim=cfg.encoder_ffn_dim, decoder_ffn_dim=cfg.decoder_ffn_dim,
            activation_function=HF_ACTIVATIONS[cfg.activation],
            max_position_embeddings=max(cfg.max_source_positions, cfg.max_target_positions),
            scale_embedding=cfg.scale_embeddings, share_encoder_decoder_embeddings=cfg.shared_embeddings,
            tie_word_embeddings=cfg.tie_output_embeddings, pad_token_id=cfg.pad_token_id,
            eos_token_id=cfg.eos_token_id, decoder_start_token_id=cfg.decoder_start_token_id,
            forced_eos_token_id=cfg.eos_token_id, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
            max_length=gen["max_length"], num_beams=gen["num_beams"])
        hf.architectures = [self.model_class]
        return hf

    def weights(self) -> dict[str, torch.Tensor]:
        cfg, state = self.cfg, self._state()
        bias = state.pop("final_logits_bias", None)
        names = {**_FAIRSEQ_NAMES, "lm_head.weight": "lm_head.weight"}
        out = {(k if k == "lm_head.weight" else f"model.{k}"): v for k, v in rename(state, names, "Marian").items()}
        out["final_logits_bias"] = (bias if bias is not None else torch.zeros(cfg.target_vocab_size))[None, :]
        if cfg.shared_embeddings:  # MarianModel keeps the shared table as model.shared and ties both sides to it
            out["model.shared.weight"] = out.pop("model.encoder.embed_tokens.weight")
            del out["model.decoder.embed_tokens.weight"]
        return out  # a tied lm_head is absent from the unified state: MarianMTModel ties it

    def write_tokenizer(self, out: Path) -> None:
        src = self.ported.tokenizer_dir
        tok = self.tokenizer_config
        names = {"source_spm": "source.spm", "target_spm": "target.spm", "vocab": "vocab.json",
                 "target_vocab": "target_vocab.json"}
        for key, name in names.items():
            if tok.get(key):
                shutil.copyfile(tokenizer_file(src, tok, key), out / name)
        write_json(out / HF_TOKENIZER_CONFIG_NAME, {
            "tokenizer_class": self.tokenizer_class, "source_lang": tok.get("source_lang"),
            "target_lang": tok.get("target_lang"), "separate_vocabs": bool(tok.get("target_vocab")),
            "eos_token": tok.get("eos_token", "</s>"), "unk_token": tok.get("unk_token", "<unk>"),
            "pad_token": tok.get("pad_token", "<pad>"), "model_max_length": 512})

    def generation(self) -> tuple[dict[str, Any], list[str]]:
        g, cfg = _with_defaults(MarianOptions, self.ported.generation_config), self.cfg
        limit = max(cfg.max_source_positions, cfg.max_target_positions)
        gen = {"num_beams": int(g["beam_size"]), "length_penalty": float(g["normalize"]),
               "max_length": min(int(g["max_length"]), limit),
               "decoder_start_token_id": cfg.decoder_start_token_id, "forced_eos_token_id": cfg.eos_token_id,
               "eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id}
        notes = ["Marian's normalize alpha is exported as length_penalty; transformers' beam search differs "
                 "from Marian's: outputs match modelport with semantics='hf'"]
        if g["word_penalty"]:
            notes.append(f"Marian's word-penalty {g['word_penalty']} has no transformers equivalent (not exported)")
        if "max_length_factor" in self.ported.generation_config:
            notes.append(f"Marian's max-length-factor {g['max_length_factor']} has no transformers equivalent; "
                         "max_length is Marian's max-length, capped by the positions")
        return gen, notes


# T5: transformers' own names are what the converter reads; the plain FFN
# name `wi` and the gated pair `wi_0`/`wi_1` both exist, one is chosen per model.
def _t5_names(gated: bool) -> dict[str, str]:
    return invert_table(t5_converter.NAME_TABLE,
                        skip=lambda k: k.endswith(".wi.weight") if gated else k.endswith((".wi_0.weight",
                                                                                          ".wi_1.weight")))


T5_FFN = {("relu", False): "relu", ("gelu_tanh", True): "gated-gelu", ("silu", True): "gated-silu"}


@register_target("t5")
class T5Target(HfTarget):
    """T5 / mT5 → ``T5ForConditionalGeneration``."""

    model_class = "T5ForConditionalGeneration"
    tokenizer_class = "T5Tokenizer"

    def problems(self) -> list[str]:
        cfg, problems = self.cfg, []
        self._require(problems, pre_norm=True, final_norm=True, norm="rmsnorm", positions="relative",
                      layernorm_embedding=False, attention_bias=False, ffn_bias=False, attention_scale=1.0,
                      scale_embeddings=False, final_logits_bias=False, ffn_depth=2,
                      decoder_start_zero_embedding=False)
        if (cfg.activation, cfg.ffn_gated) not in T5_FFN:
            problems.append(f"activation `{cfg.activation}`{' (gated)' if cfg.ffn_gated else ''} is not supported "
                            "by T5ForConditionalGeneration (supported: relu, gated gelu_tanh, gated silu)")
        if cfg.encoder_heads != cfg.decoder_heads or cfg.encoder_ffn_dim != cfg.decoder_ffn_dim:
            problems.append("different encoder and decoder head counts or FFN sizes are not supported by "
                            "T5ForConditionalGeneration")
        if not (math.isclose(cfg.output_scale, 1.0) or math.isclose(cfg.output_scale, cfg.d_model ** -0.5)):
            problems.append(f"`output_scale` {cfg.output_scale} is not supported by T5ForConditionalGeneration "
                            "(supported: 1.0 or d_model ** -0.5)")
        self._tokenizer_config(problems, "t5_spm")
        return problems

    def config(self) -> Any:
        from transformers import T5Config

        cfg = self.cfg
        hf = T5Config(
            vocab_size=cfg.target_vocab_size, d_model=cfg.d_model, d_kv=cfg.encoder_head_dim, d_ff=cfg.encoder_ffn_dim,
            num_layers=cfg.encoder_layers, num_decoder_layers=cfg.decoder_layers, num_heads=cfg.encoder_heads,
            relative_attention_num_buckets=cfg.relative_attention_num_buckets,
            relative_attention_max_distance=cfg.relative_attention_max_distance, dropout_rate=0.0,
            layer_norm_epsilon=cfg.norm_eps, feed_forward_proj=T5_FFN[(cfg.activation, cfg.ffn_gated)],
            pad_token_id=cfg.pad_token_id, eos_token_id=cfg.eos_token_id,
            decoder_start_token_id=cfg.decoder_start_token_id,
            # transformers reads "scale the decoder output by d_model ** -0.5" from this flag (T5 v1.0 vs v1.1)
            tie_word_embeddings=not math.isclose(cfg.output_scale, 1.0))
        hf.architectures = [self.model_class]
        return hf

    def weights(self) -> dict[str, torch.Tensor]:
        state = self._state()
        enc = state.pop("encoder.embed.embed_tokens.weight")
        dec = state.pop("decoder.embed.embed_tokens.weight")
        lm_head = state.pop("lm_head.weight", None)
        out = rename(state, _t5_names(self.cfg.ffn_gated), "T5")
        # transformers ties encoder/decoder embeddings and the lm_head to `shared`; a copy
        # that differs is stored and transformers keeps it untied
        out["shared.weight"] = enc
        if dec is not enc and not torch.equal(dec, enc):
            out["decoder.embed_tokens.weight"] = dec
        if lm_head is not None and not torch.equal(lm_head, dec):
            out["lm_head.weight"] = lm_head
        elif dec is not enc and not torch.equal(dec, enc):
            out["lm_head.weight"] = dec
        return out

    def write_tokenizer(self, out: Path) -> None:
        src = self.ported.tokenizer_dir
        tok = self.tokenizer_config
        shutil.copyfile(tokenizer_file(src, tok, "spm", "spiece.model"), out / "spiece.model")
        write_json(out / HF_TOKENIZER_CONFIG_NAME, {
            "tokenizer_class": self.tokenizer_class, "extra_ids": int(tok.get("extra_ids", 100)),
            "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 512,
            # the source tokenizer's setting, which the port's decode follows
            "clean_up_tokenization_spaces": tok.get("clean_up_tokenization_spaces", False) is True})

    def generation(self) -> tuple[dict[str, Any], list[str]]:
        g, cfg = self.ported.generation_config, self.cfg
        keys = ("num_beams", "max_length", "max_new_tokens", "min_length", "early_stopping", "length_penalty",
                "no_repeat_ngram_size")
        gen = {k: g[k] for k in keys if g.get(k) is not None}
        gen.update(decoder_start_token_id=cfg.decoder_start_token_id, eos_token_id=cfg.eos_token_id,
                   pad_token_id=cfg.pad_token_id)
        notes = []
        if self.verify_generate_options():
            notes.append("transformers' generate fails with its KV cache when num_decoder_layers > num_layers "
                         "(the cache is sized by num_layers): pass use_cache=False")
        return gen, notes

    def verify_generate_options(self) -> dict[str, Any]:
        return {"use_cache": False} if self.cfg.decoder_layers > self.cfg.encoder_layers else {}


# ---------------------------------------------------------------------------
# the export


def _common_problems(folder: PortedFolder) -> list[str]:
    """Folder-level refusals, read from config.json before the weights load."""
    problems = []
    if folder.ensemble_size > 1:
        problems.append(f"an ensemble of {folder.ensemble_size} models is not supported (a transformers model is "
                        "one network; convert a single checkpoint)")
    if folder.quantization:
        problems.append(f"a quantized folder ({folder.quantization}) is not supported (export the folder "
                        "before `modelport quantize`)")
    per_layer = sorted(k for k, v in folder.config.to_dict().items() if "_layer_" in k and v is not None)
    if per_layer:
        problems.append(f"per-layer sizes ({', '.join(per_layer)}, from pruning) are not supported (transformers "
                        "configs have one head count and FFN size per stack)")
    return problems


def export_hf(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, force: bool = False,
              verify: bool = True, progress: bool = False, allow_approximate: bool = False,
              lines: Sequence[str] | None = None, card: bool = True, source_lang: str | None = None,
              target_lang: str | None = None) -> HfExportReport:
    """Write ``ported_dir`` as a transformers folder in ``output_dir``; return the export report.

    Refuses (:class:`InvalidInputError`) what the transformers class cannot
    represent exactly (``allow_approximate`` admits named numeric
    differences). With ``verify`` the written folder is loaded with
    transformers and compared with the port on ``lines`` (default: a few
    built-in sentences); a failed check raises :class:`ParityError` and leaves
    nothing behind. ``source_lang``/``target_lang``: a multilingual port's
    default direction in the written folder (the tokenizer's ``src_lang``/
    ``tgt_lang``, generate's ``forced_bos_token_id``) and the one it is
    verified in; default: its first two languages.
    """
    folder = open_for_export(ported_dir, output_dir, force)  # checked, weights not loaded yet
    problems = _common_problems(folder)  # refusals come before the weights load
    if problems:
        raise InvalidInputError(f"`{ported_dir}` cannot be exported to transformers: " + "; ".join(problems))
    fmt = folder.data.get("source_format", "unknown")
    if fmt not in _TARGETS:
        raise InvalidInputError(f"`{fmt}` is not a known source format for transformers export "
                                f"(known: {', '.join(sorted(_TARGETS))})")
    with Steps("export hf", 3 if verify else 2, progress) as bar:
        ported = load(folder.path)
        given = source_lang is not None or target_lang is not None  # else the tokenizer's default pair
        direction = verification_direction(ported, source_lang, target_lang, verify) if given else Direction()
        try:  # what the port cannot be in transformers is said first, transformers installed or not
            target = (_fairseq_target(ported, allow_approximate) if fmt == "fairseq"
                      else _TARGETS[fmt](ported, allow_approximate=allow_approximate))
            if direction.given and isinstance(target, SpmTokenizerExport):  # the export's default pair
                target.direction = direction.pair
            problems = target.problems()
            approx = [] if problems else target.approximations()
        except ImportError as e:  # multilingual targets read transformers' language codes
            if not (e.name or "").startswith("transformers"):
                raise
            raise MissingReferenceError("transformers", "`export hf`") from None
        if problems:
            raise InvalidInputError(f"`{ported_dir}` cannot be exported to {target.model_class}: "
                                    + "; ".join(problems))
        if approx and not allow_approximate:
            raise InvalidInputError(f"`{ported_dir}` is not exactly representable by {target.model_class}: "
                                    + "; ".join(approx) + " (pass --allow-approximate to export anyway; the measured "
                                    "difference is recorded)")

        bar.advance("loaded")
        try:  # heavy, and only the exporters need it: imported when an export runs
            import transformers
        except ImportError:
            raise MissingReferenceError("transformers", "`export hf`") from None
        with atomic_output_dir(output_dir, force=force) as tmp:
            hf_config = target.config()
            hf_config.save_pretrained(tmp)
            _save_safetensors(tmp / "model.safetensors", target.weights())
            gen, notes = target.generation()
            transformers.GenerationConfig(**gen).save_pretrained(tmp)
            target.write_tokenizer(tmp)
            approx = approx + list(getattr(target, "tokenizer_approximations", []))
            bar.advance("written")
            with nan_refused(ported_dir):
                verification = verify_export(tmp, ported, target, verification_lines(lines, DEFAULT_LINES),
                                             tolerate=bool(target.approximations()), direction=direction) \
                    if verify else None
            report = HfExportReport(
                modelport_version=__version__, transformers_version=transformers.__version__,
                ported_dir=str(folder.path.resolve()), source_format=fmt, model_class=target.model_class,
                tokenizer_class=target.tokenizer_class, tokenizer_note=getattr(target, "tokenizer_note", None),
                exact=not approx, approximations=approx, generation_config=gen,
                generation_notes=notes, verification=verification)
            if verify:
                bar.advance("verified")
            write_json(tmp / REPORT_NAME, report.to_json())
            if card:
                (tmp / CARD_NAME).write_text(str(make_card(folder.path, export=report.to_json())), encoding="utf-8")
            check = report.verification
            if check is not None and not check.passed:
                raise ParityError(f"the transformers export of `{ported_dir}` does not match the port: "
                                  f"{check.failure} (nothing was written)")
        return report


def _save_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """safetensors refuses tensors sharing memory: names left in ``tensors``
    that share one are separate weights in transformers, so each gets a copy."""
    from safetensors.torch import save_file

    seen: set[tuple[int, int]] = set()
    out = {}
    for name, t in tensors.items():
        t = t.detach()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        out[name] = t.clone().contiguous() if key in seen else t.contiguous()
        seen.add(key)
    save_file(out, str(path), metadata={"format": "pt"})
    os.chmod(path, ordinary_mode())  # safetensors creates it 0600, the folder's other files are ordinary ones


# ---------------------------------------------------------------------------
# verification


def _until_eos(tokens: list[int], eos: int) -> list[int]:
    """A transformers output row up to its first EOS: what follows is batch
    padding (a model may also generate the pad id itself, so pads are not stripped)."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def verify_export(folder: Path, ported: PortedModel, target: HfTarget, lines: list[str], *,
                  tolerate: bool = False, direction: Direction = Direction()) -> HfVerification:
    """Load ``folder`` with transformers' Auto classes and compare with the port.

    Tokenizer ids must be identical on every line, teacher-forced logits
    within :data:`TOL`, ``generate`` (the folder's beam settings) identical to
    modelport's ``semantics="hf"`` search. With ``tolerate`` (an approximate
    export) logit and output differences are measured and recorded, not fatal.
    ``direction``: a multilingual port's languages (default: its first two).
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # transformers' notes and load bars would drown the summary
    hf_logging.disable_progress_bar()
    try:
        return _verify(folder, ported, target, lines, tolerate, direction)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _verify(folder: Path, ported: PortedModel, target: HfTarget, lines: list[str], tolerate: bool,
            direction: Direction) -> HfVerification:
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    # a refused tokenizer ("none"): the model is checked on the port's ids
    hf_tok = AutoTokenizer.from_pretrained(str(folder)) if target.tokenizer_class != "none" else None
    hf, info = AutoModelForSeq2SeqLM.from_pretrained(str(folder), output_loading_info=True)
    hf = hf.eval().float()
    failures: list[str] = []
    loading = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    loading["missing_keys"] = [k for k in loading.get("missing_keys", []) if "embed_positions" not in k]
    if any(loading.values()):
        failures.append(f"transformers loaded the weights with {json.dumps(loading)}")
    tok_name = type(hf_tok).__name__ if hf_tok is not None else "none"
    # PreTrainedTokenizerFast is an alias in transformers 5 (TokenizersBackend)
    expected = {target.tokenizer_class, target.tokenizer_class + "Fast",
                getattr(getattr(transformers, target.tokenizer_class, None), "__name__", "")}
    if type(hf).__name__ != target.model_class or tok_name not in expected:
        failures.append(f"the Auto classes loaded {type(hf).__name__}/{tok_name}, not "
                        f"{target.model_class}/{target.tokenizer_class}")

    tok = ported.tokenizer
    # BART's hub: <s> before the source; multilingual: the direction given, else the first two languages, their
    # tokens where fairseq puts them ([src] before or after the source, [tgt] forced first or the decoder start)
    planner, langs = getattr(tok, "language_plan", None), list(getattr(tok, "languages", ()))
    pair = direction.pair or ((langs[0], langs[1 % len(langs)]) if langs else (None, None))
    if langs and hf_tok is not None and hasattr(type(hf_tok), "src_lang"):
        hf_tok.src_lang = pair[0]
    plan = planner(*pair) if planner is not None else None
    prefix, suffix = (plan.source_prefix, plan.source_suffix) if plan is not None else ([], [])
    forced = plan.decoder_prefix if plan is not None else []
    ours_ids = [prefix + tok.encode(line) + suffix for line in lines]
    ported.config.check_source_lengths(ours_ids, " of the verification data")
    theirs_ids = [hf_tok(line)["input_ids"] for line in lines] if hf_tok is not None else ours_ids
    bad = [i for i, (a, b) in enumerate(zip(ours_ids, theirs_ids)) if a != b]
    if bad:
        failures.append(f"tokenizer ids differ on {len(bad)}/{len(lines)} lines (first: {lines[bad[0]]!r})")

    gen = {k: v for k, v in hf.generation_config.to_diff_dict().items()
           if k in ("num_beams", "length_penalty", "early_stopping", "no_repeat_ngram_size", "min_length",
                    "forced_eos_token_id", "decoder_start_token_id", "forced_bos_token_id")}
    # a learned position table has no row past max_target_positions (the start token takes one)
    gen["max_new_tokens"] = min(_GENERATE_MAX_NEW_TOKENS, ported.config.max_target_positions - 1)
    if langs and forced:
        gen["forced_bos_token_id"] = forced[-1]
    pad = ported.config.pad_token_id
    src = torch.full((len(lines), max(len(x) for x in ours_ids)), pad, dtype=torch.long)
    for i, ids in enumerate(ours_ids):  # right padding, as transformers' tokenizers pad
        src[i, : len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        out = hf.generate(input_ids=src, attention_mask=src.ne(pad), do_sample=False, output_scores=True,
                          return_dict_in_generate=True, **gen, **target.verify_generate_options())
    ours = generate(ported.models, src, semantics="hf", **gen)
    seqs = out.sequences.tolist()
    scores = out.sequences_scores.tolist() if getattr(out, "sequences_scores", None) is not None else None
    same, score_diff, max_logit = 0, 0.0, 0.0
    eos = ported.config.eos_token_id
    for i, hyps in enumerate(ours):
        theirs = _until_eos(seqs[i][1:], eos)
        if hyps[0]["tokens"] == theirs:
            same += 1
            if scores is not None:
                score_diff = max(score_diff, abs(hyps[0]["score"] - scores[i]))
        # teacher-forced logits on the port's own output
        prev = torch.tensor([[ported.config.decoder_start_token_id] + hyps[0]["tokens"]])
        s = torch.tensor([ours_ids[i]])
        with torch.no_grad():
            a = hf(input_ids=s, decoder_input_ids=prev, use_cache=False).logits.float()
            b = ported.model(s, prev)
        max_logit = max(max_logit, max_abs_diff(a, b))
    if not tolerate:
        if not max_logit <= TOL:
            failures.append(f"max |logit diff| {max_logit:.2e} > {TOL:.0e}")
        if same != len(lines):
            failures.append(f"generate outputs differ on {len(lines) - same}/{len(lines)} lines")
        elif score_diff > TOL:
            failures.append(f"generate scores differ by {score_diff:.2e} > {TOL:.0e}")
    return HfVerification(
        lines=len(lines), tolerance=TOL, logits_and_outputs_checked=not tolerate,
        classes=[type(hf).__name__, tok_name], ids_equal=len(lines) - len(bad),
        tokenizer_mismatches=[{"line": lines[i], "modelport": ours_ids[i], "transformers": theirs_ids[i]}
                              for i in bad[:3]],
        max_abs_logit_diff=max_logit, generate_identical=same, generate_max_score_diff=score_diff,
        generate_options=dict(gen), passed=not failures, failure="; ".join(failures) or None,
        languages=pair if langs else None)  # type: ignore[arg-type]


__all__ = ["export_hf", "verify_export", "register_target", "HfTarget", "DEFAULT_LINES", "REPORT_NAME"]
