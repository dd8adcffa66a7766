"""fairseq ``Dictionary`` semantics, without fairseq.

``<s>``, ``<pad>``, ``</s>``, ``<unk>`` take ids 0-3, then the file's symbols
in file order. A line is ``<symbol> <count> [#fairseq:overwrite]``; a repeated
symbol without the overwrite flag is an error (as in fairseq); with it, the
symbol is appended again and the later id wins. ``fairseq-preprocess`` pads
the dictionary with ``madeupwordNNNN`` entries to a multiple of 8 and writes
them into the file, so the file alone usually gives the embedding size; for a
checkpoint whose embedding was padded after the file was written,
:meth:`FairseqDictionary.pad_to_multiple_` adds them the way fairseq does.

Lines are split the way fairseq's ``f.readlines()`` splits them (universal
newlines only), not with ``str.splitlines()``, which would also break symbols
that contain U+2028, U+0085 or the ASCII separators 0x1C-0x1E.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from modelport.errors import InvalidInputError

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


class FairseqDictionary:
    """Symbols and ids of a fairseq ``dict.<lang>.txt``."""

    def __init__(self, symbols: list[str], path: str | None = None) -> None:
        self.symbols = symbols
        self.path = path
        self.indices: dict[str, int] = {}
        for i, s in enumerate(symbols):
            self.indices[s] = i
        self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3
        self.nspecial = len(SPECIALS)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FairseqDictionary:
        """Read a dictionary file exactly as ``fairseq.data.Dictionary.load`` does."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInputError(f"dictionary `{path}` does not exist") from None
        except UnicodeDecodeError:
            raise InvalidInputError(f"dictionary `{path}` is not UTF-8 text") from None
        lines = text.split("\n")  # read_text already turned \r\n and \r into \n, like readlines()
        if lines and lines[-1] == "":
            lines.pop()
        symbols = list(SPECIALS)
        seen = set(SPECIALS)
        for lineno, raw in enumerate(lines, 1):
            line = raw.rstrip()
            try:
                word, field = line.rsplit(" ", 1)
                overwrite = field == "#fairseq:overwrite"
                if overwrite:
                    word, field = word.rsplit(" ", 1)
                int(field)
            except ValueError:
                raise InvalidInputError(
                    f"dictionary `{path}` line {lineno} must be '<token> <count> [flags]', but is {raw!r}"
                ) from None
            if word in seen and not overwrite:
                raise InvalidInputError(
                    f"dictionary `{path}` repeats `{word}` on line {lineno} without #fairseq:overwrite"
                )
            seen.add(word)
            symbols.append(word)
        return cls(symbols, str(path))

    def pad_to_multiple_(self, padding_factor: int) -> None:
        """Append ``madeupword0000``, ... until the size is a multiple of
        ``padding_factor`` (fairseq's ``Dictionary.pad_to_multiple_``)."""
        i = 0
        while padding_factor > 1 and len(self.symbols) % padding_factor != 0:
            symbol = f"madeupword{i:04d}"
            if symbol not in self.indices:  # fairseq's add_symbol only counts an existing one
                self.indices[symbol] = len(self.symbols)
                self.symbols.append(symbol)
            i += 1

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, word: str) -> bool:
        return word in self.indices

    def index(self, word: str) -> int:
        """The id of ``word``; unknown words (and only those) give ``<unk>``."""
        return self.indices.get(word, self.unk_index)

    def __getitem__(self, idx: int) -> str:
        # fairseq: ``symbols[idx] if idx < len else unk_word`` (ids are never negative in practice)
        return self.symbols[idx] if 0 <= idx < len(self.symbols) else SPECIALS[3]

    def string(self, ids: Iterable[int], *, ignore: Iterable[int] | None = None) -> str:
        """Symbols joined by spaces, skipping ``</s>`` and ``<s>`` (and ``ignore``),
        as ``fairseq.data.Dictionary.string`` renders them with its defaults."""
        skip = {self.eos_index, self.bos_index, *(ignore or ())}
        return " ".join(self[i] for i in ids if i not in skip)
