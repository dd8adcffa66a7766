"""BPE application that reproduces fastBPE and subword-nmt exactly.

Why our own code rather than calling those libraries: parity is the point,
and neither is a dependency modelport can assume (fastBPE is a C++ extension
that needs a compiler; subword-nmt is not installed with fairseq). The code
below follows their sources line by line, quirks included, and is cached per
word, so a batch pays for each distinct word once. The parity tests compare it
against the real ``fastBPE`` module and ``subword_nmt.apply_bpe``.

fastBPE (``fastBPE.hpp``, ``BPEApplyer::apply`` and ``process_bpe``):

- a line is split on ``' '`` only (tabs and other spaces stay inside words),
  empty pieces are skipped;
- a word is split into characters (UTF-8 lead bytes, i.e. code points), the
  last one gets ``</w>``; the scan stops at a NUL character, whose character
  before it starts the last symbol (the rest of the word is kept whole);
- repeatedly the adjacent pair with the lowest rank is merged everywhere,
  left to right without overlap; on equal ranks the leftmost pair wins;
- ranks come from ``codes[pair] = codes.size()``: a pair listed twice is
  re-ranked to the number of distinct pairs read so far (the later line wins,
  and can tie with the next new pair); the third column (count) is ignored;
- non-final pieces get ``@@``, the final ``</w>`` is dropped.

subword-nmt (``apply_bpe.BPE``/``encode``): the ``#version: 0.2`` header
selects the final-character ``</w>`` scheme (no header: version 0.1, where
``</w>`` is a symbol of its own), a repeated pair keeps its *first* rank,
lines must have exactly two fields, and one-character words are never merged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from modelport.errors import InvalidInputError

END_WORD = "</w>"
FORMATS = ("fastbpe", "subword_nmt")


def detect_format(path: str | os.PathLike[str]) -> str:
    """``subword_nmt`` when the file starts with ``#version``, else ``fastbpe``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return "subword_nmt" if f.readline().startswith("#version") else "fastbpe"


class Bpe:
    """Apply a BPE codes file the way fastBPE (or subword-nmt) does.

    ``word(w)`` gives the pieces of one word (``@@``-marked), cached;
    ``apply(line)`` gives the whole line as the original library returns it.
    """

    def __init__(self, ranks: dict[tuple[str, str], int], *, fmt: str = "fastbpe", version: tuple[int, ...] = (0, 2),
                 separator: str = "@@", max_cache: int = 1 << 20) -> None:
        if fmt not in FORMATS:
            raise InvalidInputError(f"`{fmt}` is not a known BPE codes format (known: {', '.join(FORMATS)})")
        if fmt == "subword_nmt" and version not in ((0, 1), (0, 2)):
            raise InvalidInputError(f"subword-nmt codes version must be 0.1 or 0.2, but is "
                                    f"{'.'.join(map(str, version))}")
        self.ranks = ranks
        self.fmt = fmt
        self.version = version
        self.separator = separator
        self.max_cache = max_cache
        self._cache: dict[str, tuple[str, ...]] = {}

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], fmt: str | None = None, *, separator: str = "@@") -> Bpe:
        """Read a codes file; ``fmt`` None detects it from the ``#version`` header."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise InvalidInputError(f"BPE codes `{path}` does not exist") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"BPE codes `{path}` is not UTF-8 text") from None
        fmt = fmt or ("subword_nmt" if text.startswith("#version") else "fastbpe")
        if fmt == "fastbpe":
            return cls(_fastbpe_ranks(text, path), fmt=fmt, separator=separator)
        if fmt == "subword_nmt":
            ranks, version = _subword_nmt_ranks(text, path)
            return cls(ranks, fmt=fmt, version=version, separator=separator)
        raise InvalidInputError(f"`{fmt}` is not a known BPE codes format (known: {', '.join(FORMATS)})")

    # -- application ------------------------------------------------------------
    def word(self, word: str) -> tuple[str, ...]:
        """The pieces of one (non-empty, space-free) word, non-final ones ending in ``@@``."""
        pieces = self._cache.get(word)
        if pieces is None:
            if not word:
                return ()
            units = self._fastbpe_word(word) if self.fmt == "fastbpe" else self._subword_nmt_word(word)
            sep = self.separator
            pieces = tuple(u + sep for u in units[:-1]) + (units[-1],)
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[word] = pieces
        return pieces

    def apply(self, line: str) -> str:
        """The line as ``fastBPE.apply([line])[0]`` (or subword-nmt's ``process_line``) returns it."""
        if self.fmt == "fastbpe":
            return " ".join(" ".join(self.word(w)) for w in line.split(" ") if w)
        stripped = line.strip("\r\n ")
        lead = line[: len(line) - len(line.lstrip("\r\n "))]
        trail_n = len(line) - len(line.rstrip("\r\n "))
        trail = line[-trail_n:] if trail_n and trail_n != len(line) else ""
        return lead + " ".join(" ".join(self.word(w)) for w in stripped.split(" ") if w) + trail

    def decode(self, text: str) -> str:
        """Remove the continuation markers (fairseq's ``(x + ' ').replace('@@ ', '').rstrip()``)."""
        return (text + " ").replace(self.separator + " ", "").rstrip()

    # -- the two algorithms ----------------------------------------------------------
    def _fastbpe_word(self, word: str) -> list[str]:
        # fastBPE walks a C string: the character scan ends at the first NUL.
        nul = word.find("\0")
        if nul == -1:
            symbols = list(word[:-1]) + [word[-1] + END_WORD]
        elif nul == 0:
            symbols = [word + END_WORD]
        else:
            symbols = list(word[: nul - 1]) + [word[nul - 1:] + END_WORD]
        ranks = self.ranks
        while len(symbols) > 1:
            best = -1
            best_rank = 0
            for i in range(len(symbols) - 1):
                r = ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best == -1 or best_rank > r):
                    best, best_rank = i, r
            if best == -1:
                break
            first, second = symbols[best], symbols[best + 1]
            merged: list[str] = []
            just_merged = False
            n = len(symbols)
            for i in range(n):
                if i + 1 < n and not just_merged and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    just_merged = True
                else:
                    if not just_merged:
                        merged.append(symbols[i])
                    just_merged = False
            symbols = merged
        symbols[-1] = symbols[-1][: -len(END_WORD)]
        return symbols

    def _subword_nmt_word(self, word: str) -> list[str]:
        if len(word) == 1:
            return [word]
        if self.version == (0, 1):
            symbols = list(word) + [END_WORD]
        else:
            symbols = list(word[:-1]) + [word[-1] + END_WORD]
        ranks = self.ranks
        while len(symbols) > 1:
            pairs = [(ranks[p], i, p) for i, p in enumerate(zip(symbols, symbols[1:])) if p in ranks]
            if not pairs:
                break
            bigram = min(pairs)[2]
            positions = [i for (_, i, p) in pairs if p == bigram]
            joined = "".join(bigram)
            out: list[str] = []
            i = 0
            for j in positions:
                if j < i:  # overlapping pair (x x x -> xx x)
                    continue
                out.extend(symbols[i:j])
                out.append(joined)
                i = j + 2
            out.extend(symbols[i:])
            symbols = out
        if symbols[-1] == END_WORD:
            symbols = symbols[:-1]
        elif symbols[-1].endswith(END_WORD):
            symbols[-1] = symbols[-1][: -len(END_WORD)]
        return symbols


def _fastbpe_ranks(text: str, path: Path) -> dict[tuple[str, str], int]:
    """``readCodes``: ``getline`` lines (``\\n`` only), fields split on ``' '``."""
    ranks: dict[tuple[str, str], int] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        fields = [f for f in line.split(" ") if f]
        if len(fields) < 2:
            raise InvalidInputError(f"BPE codes `{path}` line {lineno} must be '<left> <right> <count>', "
                                    f"but is {line!r}")
        # codes[pair] = codes.size(): the size is taken before a new pair is inserted
        ranks[(fields[0], fields[1])] = len(ranks)
    return ranks


_VERSION_TAIL = re.compile(r"(\.0+)*$")


def _subword_nmt_ranks(text: str, path: Path) -> tuple[dict[tuple[str, str], int], tuple[int, ...]]:
    """``apply_bpe.BPE.__init__``: optional ``#version:`` header, two fields a line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # text-mode read (universal newlines)
    first, _, rest = text.partition("\n")
    version: tuple[int, ...] = (0, 1)
    offset = 1
    if first.startswith("#version:"):
        try:
            version = tuple(int(x) for x in _VERSION_TAIL.sub("", first.split()[-1]).split("."))
        except ValueError:
            raise InvalidInputError(f"BPE codes `{path}` has an unreadable version line {first!r}") from None
        offset = 2
        body = rest
    else:
        body = text
    ranks: dict[tuple[str, str], int] = {}
    for n, item in enumerate(body.rstrip("\n").split("\n")):
        pair = tuple(item.strip("\r\n ").split(" "))
        if len(pair) != 2:
            raise InvalidInputError(f"BPE codes `{path}` line {n + offset} must be two subword units "
                                    f"separated by a space, but is {item!r}")
        ranks.setdefault(pair, n)  # type: ignore[arg-type]  # duplicates: the first one counts
    return ranks, version
