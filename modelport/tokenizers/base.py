"""The interface every tokenizer implements: :class:`Tokenizer`.

A tokenizer turns text into the ids the ported model reads (source side) or
was trained to produce (target side), and target ids back into text, exactly
as the source framework does. :class:`TokenizerBase` holds what the
implementations share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from modelport.errors import InvalidInputError
from modelport.model.folder import TOKENIZER_CONFIG_NAME as CONFIG_NAME
from modelport.model.io import read_json


def read_config(directory: str | Path, cfg: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """``directory`` as a path and its :data:`CONFIG_NAME` (``cfg`` when the
    caller has read it already): what every ``from_dir`` starts from."""
    directory = Path(directory)
    return directory, (cfg if cfg is not None else read_json(directory / CONFIG_NAME))


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

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        """Text of ``ids``, as the framework's users decode it."""
        ...

    def decode_batch(self, batch: Iterable[Sequence[int]], *, side: str = "target",
                     keep_special_tokens: bool = False) -> list[str]:
        """:meth:`decode` of each sequence."""
        ...


def check_keep_special_tokens(tok: Tokenizer) -> None:
    """Refuse ``keep_special_tokens`` for a tokenizer that never skips special
    tokens: it prints what its framework prints, so keeping them is not an option."""
    if not tok.skips_special_tokens:
        raise InvalidInputError(f"`keep_special_tokens` applies to tokenizers that skip special tokens (T5), but "
                                f"this port's tokenizer is {tok.kind}, which never skips them")


class TokenizerBase:
    """Defaults shared by the tokenizers: no special tokens skipped; batches
    decoded one sequence at a time."""

    kind: ClassVar[str] = ""
    skips_special_tokens: ClassVar[bool] = False

    def decode(self, ids: Sequence[int], *, side: str = "target", keep_special_tokens: bool = False) -> str:
        raise NotImplementedError

    def decode_batch(self, batch: Iterable[Sequence[int]], *, side: str = "target",
                     keep_special_tokens: bool = False) -> list[str]:
        """:meth:`decode` for each sequence."""
        return [self.decode(ids, side=side, keep_special_tokens=keep_special_tokens) for ids in batch]
