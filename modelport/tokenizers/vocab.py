"""fairseq ``Dictionary`` semantics, without fairseq.

``<s>``, ``<pad>``, ``</s>``, ``<unk>`` take ids 0-3, then the file's symbols
in file order. A line is ``<symbol> <count> [#fairseq:overwrite]``; a repeated
symbol without the overwrite flag is an error (as in fairseq); with it, the
symbol is appended again and the later id wins. ``fairseq-preprocess`` pads
the dictionary with ``madeupwordNNNN`` entries to a multiple of 8 and writes
them into the file, so the file alone gives the embedding size.
"""

from __future__ import annotations

import os
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
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInputError(f"dictionary `{path}` does not exist") from None
        except UnicodeDecodeError:
            raise InvalidInputError(f"dictionary `{path}` is not UTF-8 text") from None
        symbols = list(SPECIALS)
        seen = set(SPECIALS)
        for lineno, raw in enumerate(text.splitlines(), 1):
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

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, word: str) -> bool:
        return word in self.indices

    def index(self, word: str) -> int:
        return self.indices.get(word, self.unk_index)

    def __getitem__(self, idx: int) -> str:
        return self.symbols[idx] if 0 <= idx < len(self.symbols) else SPECIALS[3]
