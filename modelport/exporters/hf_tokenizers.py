"""transformers tokenizers for fairseq SentencePiece ports (mBART, NLLB-200).

fairseq encodes a line with SentencePiece, then looks every piece up in
``dict.txt`` (ids by the dictionary, not by the SentencePiece model) and adds
the language tokens its task places. :func:`spm_tokenizer_json` writes that
as one ``tokenizer.json`` (the ``tokenizers`` library): the SentencePiece
model (Unigram with its scores, or BPE with merges in SentencePiece's order)
whose vocabulary *is* the dictionary (each piece at its dictionary id), the
SentencePiece normalizer (its precompiled character map, extra whitespace
removed as ``remove_extra_whitespaces`` removes it), ``▁`` as the word
boundary, and a post-processor placing ``</s>`` and the language token as
fairseq places them for one direction. Symbols that are no SentencePiece
piece (``<s>``, language tokens, ``<mask>``, ``madeupword`` padding) can
never be produced by the model (a Unigram score of :data:`UNREACHABLE`, no
BPE merge). The special tokens are matched in raw text by transformers
unless ``split_special_tokens`` is set: fairseq never matches them, so the
written ``tokenizer_config.json`` sets it.

transformers' own classes (``MBart50Tokenizer``, ``MBartTokenizer``,
``NllbTokenizer``) rebuild their normalizer and model in ``__init__`` from
the vocabulary of ``tokenizer.json``; they are written only where the port
is what they assume (dictionary = SentencePiece order + fairseq's offset,
their language list, their model type) *and* they give the port's ids on
:data:`PROBE_LINES` and the verification lines; otherwise the same
``tokenizer.json`` is written for ``PreTrainedTokenizerFast``, and the
report says why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.model.io import write_json
from modelport.tokenizers.vocab import FairseqDictionary

UNREACHABLE = -1e9  # Unigram score of dictionary symbols that are no SentencePiece piece
GENERIC_CLASS = "PreTrainedTokenizerFast"
# Lines a transformers class must also tokenize as the port does: SentencePiece's
# whitespace removal, NFKC, fairseq's special symbols as plain text, an empty line
PROBE_LINES = [
    "   leading and trailing spaces   ", "multiple     spaces\tand\ttabs",
    "non\u00a0breaking and ideographic\u3000space",
    "\ufb01 ligature, \uff21\uff22 full width, e\u0301 combining", "x < y <unk> </s> <pad> <s> <mask> madeupword0000",
    "line\u2028separator, next\x85line", "", "Hello world!",
]
_SPM_NORMAL, _SPM_UNIGRAM, _SPM_BPE = 1, 1, 2  # sentencepiece_model.proto: piece type NORMAL; model types
# what Python's str.split() splits on besides " " (▁ by then): fairseq's tokenize_line splits the joined
# pieces with it, so a piece that is one of these characters (an unknown one) is dropped and splits a word
PY_WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@dataclass(frozen=True)
class SpmPort:
    """What a fairseq SentencePiece port's tokenizer is made of, for one direction."""

    spm_path: Path
    dictionary: FairseqDictionary
    names: dict[int, str]  # dictionary id -> transformers token name (language codes undecorated)
    source_prefix: list[int]
    source_suffix: list[int]
    model_max_length: int


def _proto(path: Path) -> Any:
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def spm_model_type(path: Path) -> str:
    """``unigram``, ``bpe`` or the proto's number."""
    kind = _proto(path).trainer_spec.model_type
    return {_SPM_UNIGRAM: "unigram", _SPM_BPE: "bpe"}.get(kind, str(kind))


def spm_problems(port: SpmPort) -> list[str]:
    """Why no ``tokenizer.json`` reproduces the port exactly (empty: one does)."""
    proto, d = _proto(port.spm_path), port.dictionary
    scores = {p.piece: p.score for p in proto.pieces if p.type == _SPM_NORMAL}
    problems = []
    model_type = proto.trainer_spec.model_type
    if model_type not in (_SPM_UNIGRAM, _SPM_BPE):
        problems.append(f"SentencePiece model type {model_type} is not supported (supported: unigram, bpe)")
    norm = proto.normalizer_spec
    if proto.trainer_spec.byte_fallback:
        problems.append("SentencePiece byte fallback is not supported")
    if not proto.trainer_spec.split_by_whitespace:
        problems.append("SentencePiece split_by_whitespace false is not supported")
    if norm.name == "user_defined" or not norm.escape_whitespaces:
        problems.append(f"SentencePiece normalizer `{norm.name}` (escape_whitespaces {norm.escape_whitespaces}) is not "
                        "supported")
    user = [p.piece for p in proto.pieces if p.type == 4]
    if user:
        problems.append(f"SentencePiece user-defined symbols ({', '.join(user[:3])}) are not supported")
    missing = [p.piece for p in proto.pieces if p.type == _SPM_NORMAL and p.piece not in d.indices]
    if missing:
        problems.append(f"{len(missing)} SentencePiece pieces are not in dict.txt (e.g. {missing[0]!r}; fairseq maps "
                        "them to <unk>, a tokenizers model cannot map a piece it segments with to another id)")
    ws = [p.piece for p in proto.pieces if p.type == _SPM_NORMAL and re.search(f"[{PY_WHITESPACE}]", p.piece)]
    if ws:
        problems.append(f"SentencePiece pieces with whitespace other than ▁ ({ws[0]!r}) are not supported (fairseq "
                        "splits them)")
    names = [port.names.get(i, s) for i, s in enumerate(d.symbols)]
    # a symbol that is no piece is unreachable for a Unigram model only where every character of it has a
    # piece: a character without one is an <unk> node, and tokenizers scores <unk> below any symbol
    chars = {p.piece for p in proto.pieces if p.type == _SPM_NORMAL and len(p.piece) == 1}
    uncovered = [n for n, sym in zip(names, d.symbols) if sym not in scores and set(n) - chars]
    if model_type == _SPM_UNIGRAM and uncovered:
        problems.append(f"dictionary symbols with characters the SentencePiece model has no piece for ("
                        f"{', '.join(uncovered[:4])}: {''.join(sorted(set(''.join(uncovered)) - chars))!r}) would be "
                        "produced by tokenizers' Unigram model from plain text")
    dup = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if dup:
        problems.append(f"dictionary symbols named twice ({', '.join(dup[:3])}) are not supported")
    return problems


def _normalizer(proto: Any) -> Any:
    from tokenizers import Regex, normalizers

    steps = []
    if proto.normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap))
    if proto.normalizer_spec.remove_extra_whitespaces:  # leading, trailing and repeated spaces
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Replace(Regex("^ | $"), "")]
    return normalizers.Sequence(steps)


def build_backend(port: SpmPort) -> Any:
    """The ``tokenizers.Tokenizer`` of the port (see the module docstring); call
    only when :func:`spm_problems` is empty."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE, Unigram
    from transformers.tokenization_utils_base import generate_merges

    proto, d = _proto(port.spm_path), port.dictionary
    scores = {p.piece: p.score for p in proto.pieces if p.type == _SPM_NORMAL}
    names = [port.names.get(i, s) for i, s in enumerate(d.symbols)]
    if proto.trainer_spec.model_type == _SPM_UNIGRAM:
        model = Unigram([(n, scores.get(s, UNREACHABLE)) for n, s in zip(names, d.symbols)], unk_id=d.unk_index,
                        byte_fallback=False)
    else:  # merges ranked as SentencePiece ranks its pieces (by id), over the pieces only
        spm_ids = {p.piece: i for i, p in enumerate(proto.pieces) if p.type == _SPM_NORMAL}
        model = BPE({n: i for i, n in enumerate(names)}, generate_merges(spm_ids), unk_token=names[d.unk_index],
                    fuse_unk=True, byte_fallback=False)
    tok = Tokenizer(model)
    tok.normalizer = _normalizer(proto)
    scheme = "always" if proto.normalizer_spec.add_dummy_prefix else "never"
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=True),
        pre_tokenizers.Split(Regex(f"[{PY_WHITESPACE}]+"), behavior="removed")])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=True)
    special = sorted({d.bos_index, d.pad_index, d.eos_index, d.unk_index, *port.names,
                      *(i for i, s in enumerate(d.symbols) if s == "<mask>")})
    tok.add_special_tokens([AddedToken(names[i], special=True, normalized=False) for i in special])
    after = [d.eos_index] + port.source_suffix  # Dictionary.encode_line appends </s>
    placed = port.source_prefix + after
    tok.post_processor = processors.TemplateProcessing(
        single=[names[i] for i in port.source_prefix] + ["$A"] + [names[i] for i in after],
        special_tokens=[(names[i], i) for i in dict.fromkeys(placed)])
    return tok


def tokenizer_config(port: SpmPort, tokenizer_class: str, **extra: Any) -> dict[str, Any]:
    d = port.dictionary
    config = {"tokenizer_class": tokenizer_class, "bos_token": d.symbols[d.bos_index],
              "eos_token": d.symbols[d.eos_index], "unk_token": d.symbols[d.unk_index],
              "pad_token": d.symbols[d.pad_index], "model_max_length": port.model_max_length,
              "split_special_tokens": True, "clean_up_tokenization_spaces": False, **extra}
    if "<mask>" in d.indices:
        config["mask_token"] = "<mask>"
    return config


def spm_ordered(port: SpmPort) -> bool:
    """The released layout transformers' classes assume: ``dict.txt`` is the
    SentencePiece pieces in their order (dictionary id = piece id + 1)."""
    proto, d = _proto(port.spm_path), port.dictionary
    pieces = [p.piece for p in proto.pieces]
    if pieces[:3] != [d.symbols[d.unk_index], d.symbols[d.bos_index], d.symbols[d.eos_index]]:
        return False
    return d.symbols[4:len(pieces) + 1] == pieces[3:]


def languages_follow(port: SpmPort, languages: Sequence[str]) -> bool:
    """The port's language tokens are ``languages``, in order, right after the pieces."""
    n = len(_proto(port.spm_path).pieces) + 1
    return [port.names.get(i) for i in range(n, n + len(languages))] == list(languages) and \
        len(port.names) == len(languages)


def first_mismatch(folder: Path, port: SpmPort, encode: Any, lines: Sequence[str]) -> str | None:
    """Load ``folder``'s tokenizer with ``AutoTokenizer``; how its ids differ
    from the port's (``encode``) on :data:`PROBE_LINES` and ``lines``, or None."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(folder))
    probes = [*PROBE_LINES, *lines]
    bad = []
    for line in probes:
        ours, theirs = port.source_prefix + encode(line) + port.source_suffix, hf(line)["input_ids"]
        if ours != theirs:
            at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            bad.append(f"{line!r} (from id {at}: {theirs[at:at + 4]} vs the port's {ours[at:at + 4]})")
    if not bad:
        return None
    return f"{type(hf).__name__} gives other ids on {len(bad)}/{len(probes)} check lines, first {bad[0]}"


@dataclass(frozen=True)
class TokenizerChoice:
    """The tokenizer written: its class, why, and (a class admitted with
    ``allow_approximate``) how it differs from the port."""

    tokenizer_class: str
    note: str
    approximation: str | None = None


def write_spm_tokenizer(out: Path, port: SpmPort, encode: Any, lines: Sequence[str],
                        candidate: tuple[str, dict[str, Any]] | None, why_not: str | None, *,
                        allow_approximate: bool = False) -> TokenizerChoice:
    """Write ``tokenizer.json`` and ``tokenizer_config.json``: for ``candidate``
    (a transformers class and its config keys) when it gives the port's ids
    (or, with ``allow_approximate``, whatever it gives: the difference is
    returned), else for :data:`GENERIC_CLASS`."""
    build_backend(port).save(str(out / "tokenizer.json"))
    if candidate is not None:
        cls, extra = candidate
        write_json(out / "tokenizer_config.json", tokenizer_config(port, cls, **extra))
        mismatch = first_mismatch(out, port, encode, lines)
        if mismatch is None:
            return TokenizerChoice(cls, f"{cls}: the dictionary is SentencePiece order + 1, the languages its own")
        if allow_approximate:
            return TokenizerChoice(cls, f"{cls} (admitted by allow_approximate): {mismatch}",
                                   approximation=f"tokenizer {cls}: {mismatch}")
        why_not = f"{cls} is not exact: {mismatch} (allow_approximate writes it anyway)"
    write_json(out / "tokenizer_config.json", tokenizer_config(port, GENERIC_CLASS))
    return TokenizerChoice(GENERIC_CLASS, f"{GENERIC_CLASS} on modelport's tokenizer.json (the default direction's "
                                          f"source language token is fixed in its post-processor), because {why_not}")


__all__ = ["GENERIC_CLASS", "PROBE_LINES", "SpmPort", "TokenizerChoice", "build_backend", "first_mismatch",
           "languages_follow", "spm_model_type", "spm_ordered", "spm_problems", "tokenizer_config",
           "write_spm_tokenizer"]
