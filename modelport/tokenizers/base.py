"""The interface every tokenizer implements: :class:`Tokenizer`.

A tokenizer turns text into the ids the ported model reads (source side) or
was trained to produce (target side), and target ids back into text, exactly
as the source framework does. :class:`TokenizerBase` holds what the
implementations share.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from modelport import values
from modelport.errors import InvalidInputError, InvalidPortedFolderError
from modelport.files import check_lines, file_in_folder
from modelport.model.folder import TOKENIZER_CONFIG_NAME as CONFIG_NAME, read_json_object
from modelport.values import Kind


def language_code_tokens(vocab: Iterable[str]) -> list[str]:
    """The ``>>xxx<<`` tokens of a source vocabulary, sorted: a Marian multi-target
    model's target languages, which a user writes at the start of each source line."""
    return sorted(t for t in vocab if len(t) > 4 and t.startswith(">>") and t.endswith("<<"))


# the value kinds of tokenizer_config.json's settings (None or absent: the default); a file's name is
# checked where it is opened (tokenizer_file)
_TEXT = ("source_lang", "target_lang", "moses_source_lang", "moses_target_lang", "bpe", "bpe_separator",
         "eos_token", "unk_token", "pad_token", "decode_rule", "encode_rule", "lang_tok_style", "langtok_placement",
         "encoder_langtok")
_FLAGS = ("add_mask", "append_eos", "clean_up_tokenization_spaces", "decoder_bos", "decoder_langtok",
          "language_code_prefix", "moses_aggressive_dash_splits", "moses_escape", "source_bos")
_COUNTS = ("dict_pad_to_multiple", "eos_id", "extra_ids", "model_vocab_size", "pad_id", "unk_id")
_TEXT_LISTS = ("languages", "extra_symbols")
CONFIG_KINDS: dict[str, Kind] = {**{k: values.TEXT for k in _TEXT}, **{k: values.FLAG for k in _FLAGS},
                                  **{k: values.COUNT for k in _COUNTS}, **{k: values.TEXT_LIST for k in _TEXT_LISTS}}


def read_config(directory: str | Path, cfg: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """``directory`` as a path and its :data:`CONFIG_NAME` (``cfg`` when the
    caller has read it already): what every ``from_dir`` starts from. Each
    setting must be of its kind (:data:`CONFIG_KINDS`): ``"append_eos": "false"``
    read as true, ``"bpe_separator": 5`` failed inside the tokenizer."""
    directory = Path(directory)
    cfg = cfg if cfg is not None else read_json_object(directory, CONFIG_NAME)
    for key, kind in CONFIG_KINDS.items():
        value = cfg.get(key)
        if value is not None and not kind.admits(value):
            raise InvalidInputError(f"`{key}` of `{directory / CONFIG_NAME}` {kind.refusal(json.dumps(value)[:60])}")
    return directory, cfg


# the largest tokenizer file a folder may hold: NLLB-200's SentencePiece model is 4.8 MB, GPT-2's encoder.json 1 MB;
# a name pointing at something larger (a crafted folder) is refused before it is read
TOKENIZER_FILE_MAX_BYTES = 256 << 20


def tokenizer_file(directory: Path, cfg: Mapping[str, Any], key: str, default: str | None = None) -> Path:
    """The file that ``key`` of ``tokenizer_config.json`` names (``default``
    when absent): a plain name of a regular file inside ``directory``, at most
    :data:`TOKENIZER_FILE_MAX_BYTES` (:func:`~modelport.files.file_in_folder`).
    A downloaded folder is untrusted: its config must not make a command read
    ``/etc/passwd`` or ``/dev/zero``, nor a pass overwrite a file elsewhere."""
    name = cfg.get(key) or default
    try:
        if directory.is_symlink() and not Path(os.path.realpath(directory)).is_relative_to(
                Path(os.path.realpath(directory.parent))):
            raise InvalidInputError(f"the folder must stay inside its ported folder, but is a symlink to "
                                    f"`{os.path.realpath(directory)}`")
        return file_in_folder(directory, name, f"`{key}` of {CONFIG_NAME}", max_bytes=TOKENIZER_FILE_MAX_BYTES)
    except InvalidInputError as e:
        raise InvalidInputError(f"`{directory}`: {e}") from None


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> ids of one ported model, as its source framework computes them.

    ``kind`` is the ``type`` of ``tokenizer_config.json``. ``skips_special_tokens``:
    ``decode`` drops special tokens such as ``<unk>`` by default (T5, as
    transformers' ``skip_special_tokens=True``); ``keep_special_tokens=True``
    renders them. The others always render them and refuse the flag.
    """

    kind: ClassVar[str]
    skips_special_tokens: ClassVar[bool]
    # the framework sizes the model's embeddings from this vocabulary (fairseq's dictionaries, Marian's
    # vocabularies), so a matching model has exactly :meth:`own_vocab_size` rows per side
    vocab_sizes_rows: ClassVar[bool]

    @property
    def pad_id(self) -> int: ...

    @property
    def eos_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    @classmethod
    def from_dir(cls, directory: str | Path, cfg: dict[str, Any] | None = None) -> Tokenizer:
        """Load from a ported folder's ``tokenizer/`` (``cfg``: its tokenizer_config.json)."""
        ...

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        """The pieces the vocabulary looks up, without ``</s>``."""
        ...

    def pieces(self, line: str, *, side: str = "source") -> list[str]:
        """The subword pieces a person reads (``tokenize --tokens``): what
        :meth:`tokenize` returns, except where the vocabulary looks up other
        words (BART's dictionary holds GPT-2 ids, not the byte-level pieces)."""
        ...

    def encode(self, line: str) -> list[int]:
        """Source ids of one line (``</s>`` appended where the framework appends it)."""
        ...

    def encode_target(self, line: str) -> list[int]:
        """Target ids of one line, as the framework prepared its training targets."""
        ...

    def encode_batch(self, lines: Iterable[str], *, side: str = "source") -> list[list[int]]:
        """Ids of many lines."""
        ...

    def id_to_tokens(self, ids: Sequence[int], *, side: str = "source") -> list[str]:
        """The vocabulary entry of each id."""
        ...

    def vocab_size_of(self, side: str = "target") -> int | None:
        """How many ids ``decode`` accepts on ``side`` (ids ``0 .. n-1``);
        None when the tokenizer alone does not bound them (T5 without the
        model's vocabulary size: ids past its pieces are dropped)."""
        ...

    def own_vocab_size(self, side: str = "target") -> int:
        """One past the largest id of the tokenizer's own vocabulary on ``side``
        (what ``encode`` can emit, the model's spare rows not counted)."""
        ...

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        """Text of ``ids``, as the framework's users decode it; an id outside
        the vocabulary (negative ones too) is an :class:`InvalidInputError`."""
        ...

    def decode_batch(self, batch: Iterable[Sequence[int]], *, side: str = "target",
                     keep_special_tokens: bool = False) -> list[str]:
        """:meth:`decode` of each sequence."""
        ...


def as_text(line: object) -> str:
    """``line`` if it is a string; anything else is an :class:`InvalidInputError`
    (``None`` or a number would be encoded as its text)."""
    if not isinstance(line, str):
        raise InvalidInputError(f"a line to encode must be a str, but is {type(line).__name__} ({line!r:.40})")
    return line


def as_lines(lines: Iterable[str]) -> list[str]:
    """``lines`` as a list of strings (a single string would be encoded character by character)."""
    check_lines(lines)
    return [as_text(line) for line in lines]


def as_ids(ids: Any) -> list[int]:
    """Accept a list, a tuple or a 1-D tensor/array of integer ids; anything
    else (a string of ids, a float that ``int()`` would truncate) is an
    :class:`InvalidInputError`."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if type(ids) is list and all(type(i) is int for i in ids):  # the search's own: no ABC check per id
        return list(ids)
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError(f"ids must be a sequence of integers, not a {type(ids).__name__} ({ids[:40]!r})")
    out = []
    for n, i in enumerate(ids):
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise InvalidInputError(f"ids must be integers, but item {n} is {i!r} ({type(i).__name__})")
        out.append(int(i))
    return out


def check_ids(ids: Sequence[int], size: int | None, *, side: str = "target", where: str = "") -> None:
    """Refuse an id that names no vocabulary entry: a negative one always, one
    past ``size`` when the size is known. Frameworks print such an id as
    ``<unk>`` (fairseq, Marian) or crash, so the user would never learn that
    the input was wrong. ``where`` places the id (`` on line 3``)."""
    if not ids or (min(ids) >= 0 and (size is None or max(ids) < size)):
        return
    for i in ids:
        if i < 0 or (size is not None and i >= size):
            bound = f"size {size}: ids 0 to {size - 1}" if size is not None else "ids are never negative"
            raise InvalidInputError(f"id {i}{where} is outside the {side} vocabulary ({bound})")


def check_keep_special_tokens(tok: Tokenizer) -> None:
    """Refuse ``keep_special_tokens`` for a tokenizer that never skips special
    tokens: it prints what its framework prints, so keeping them is not an option."""
    if not tok.skips_special_tokens:
        raise InvalidInputError(f"`keep_special_tokens` applies to tokenizers that skip special tokens (T5), but "
                                f"this port's tokenizer is {tok.kind}, which never skips them")


def check_model_rows(tok: Tokenizer, source_rows: int, target_rows: int, *, where: Path) -> None:
    """Refuse a ``tokenizer/`` folder that cannot belong to the model: a side
    whose vocabulary spans more ids than the model's embedding has rows (the
    ids past them would crash the model), or, where the framework sizes the
    embedding from the vocabulary, a different count (a truncated or swapped
    dictionary maps words to the wrong rows: fluent garbage, exit 0)."""
    for side, rows in (("source", source_rows), ("target", target_rows)):
        own = tok.own_vocab_size(side)
        if own > rows or (tok.vocab_sizes_rows and own != rows):
            rule = "; the framework sizes the embedding from the vocabulary, so they must be equal" \
                if tok.vocab_sizes_rows else ""
            raise InvalidPortedFolderError(
                str(where.parent), f"its `{where.name}/` does not belong to the model: the {side} vocabulary spans "
                f"{own} ids, but the model's {side} embedding has {rows} rows{rule}")


class TokenizerBase:
    """Defaults shared by the tokenizers: no special tokens skipped; batches
    decoded one sequence at a time."""

    kind: ClassVar[str] = ""
    skips_special_tokens: ClassVar[bool] = False
    vocab_sizes_rows: ClassVar[bool] = False

    def vocab_size_of(self, side: str = "target") -> int | None:
        raise NotImplementedError

    def own_vocab_size(self, side: str = "target") -> int:
        raise NotImplementedError

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        raise NotImplementedError

    def tokenize(self, line: str, *, side: str = "source") -> list[str]:
        raise NotImplementedError

    def pieces(self, line: str, *, side: str = "source") -> list[str]:
        return self.tokenize(line, side=side)

    def checked_ids(self, ids: Sequence[int], side: str) -> list[int]:
        """``ids`` as a list of ints, each checked against :meth:`vocab_size_of`."""
        out = as_ids(ids)
        check_ids(out, self.vocab_size_of(side), side=side)
        return out

    def decode_batch(self, batch: Iterable[Sequence[int]], *, side: str = "target",
                     keep_special_tokens: bool = False) -> list[str]:
        """:meth:`decode` for each sequence."""
        return [self.decode(ids, side=side, keep_special_tokens=keep_special_tokens) for ids in batch]
