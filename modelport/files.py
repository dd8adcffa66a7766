"""Files written whole: a temporary sibling renamed into place when complete,
so that an interrupted or failed write leaves no half-written file, with the
permissions any new file gets here (the umask's; ``tempfile`` makes its files
and folders private, 0600 and 0700). And text read line by line, strictly
UTF-8, for every command and API that takes lines from a file."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from modelport.errors import WRITE_ERRNOS, InvalidInputError, OutputWriteError


def umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ordinary_mode(directory: bool = False) -> int:
    """The mode a new file (``directory``: folder) gets here: 0666 (0777) less the umask."""
    return (0o777 if directory else 0o666) & ~umask()


def unwritable(output: str | os.PathLike[str], err: OSError, *, on_the_way: bool = False,
               note: str = "") -> OutputWriteError | None:
    """A one-line :class:`OutputWriteError` naming ``output`` for an ``err`` the user can fix: a write
    the file system refuses (read-only, full, no permission), and, ``on_the_way`` (making the output's
    folders), a path that cannot hold a folder (a file on the way, under ``/proc``); None otherwise.
    ``note`` is added to the reason ("nothing was written")."""
    reason = err.strerror or str(err)
    if err.errno in WRITE_ERRNOS:
        return OutputWriteError(str(output), reason + note, err.errno)
    if on_the_way and err.errno in (errno.ENOENT, errno.ENOTDIR, errno.EEXIST):
        if err.errno == errno.EEXIST and err.filename:  # mkdir met a file where a folder was to be
            reason = f"`{err.filename}` is a file"
        elif err.errno == errno.ENOTDIR:
            reason = "a part of its path is a file"
        return OutputWriteError(str(output), f"its folder cannot be made there ({reason}){note}", err.errno)
    return None


@contextlib.contextmanager
def atomic_text_file(path: str | os.PathLike[str], newline: str | None = None) -> Iterator[TextIO]:
    """A UTF-8 text file written to a temporary sibling of ``path`` and renamed
    into place when the block ends without error (removed otherwise). A write the
    file system refuses (read-only, full, no permission) is an
    :class:`OutputWriteError` naming ``path``; other errors raised in the block
    (reading an input, say) pass through unchanged."""
    target = Path(path)
    if target.is_dir():  # before the work the block does (os.replace would refuse it at the end)
        raise InvalidInputError(f"`{path}` is a directory: name a file (nothing was written)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # as a folder output's are made
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    except OSError as e:
        raise (unwritable(path, e, on_the_way=True) or e) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            os.fchmod(f.fileno(), ordinary_mode())
            yield f
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        converted = (unwritable(path, e, note=" (nothing was written)")
                     if isinstance(e, OSError) and e.filename in (None, tmp, str(target)) else None)
        if converted is not None:
            raise converted from None
        raise


def not_a_folder(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is no folder to read ("no such directory", "it is a file,
    not a folder", ...), None when it is one."""
    if os.path.isdir(path):
        return None
    if os.path.isfile(path):
        return "it is a file, not a folder"
    return "it is not a folder" if os.path.lexists(path) else "no such directory"


def plain_file_name(name: object) -> bool:
    """Whether ``name`` names a file directly inside a folder: no path, no ``..``."""
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name \
        and name not in (".", "..") and "\0" not in name and not os.path.isabs(name)


def file_in_folder(folder: str | os.PathLike[str], name: object, what: str, *,
                   max_bytes: int | None = None) -> Path:
    """``folder / name`` for a plain file name that stays inside ``folder``, a
    regular file of at most ``max_bytes``: a name read from a folder's own
    files (a downloaded folder is untrusted) reaches no other file, no device
    and no unbounded read. Raises :class:`InvalidInputError` with the problem
    (the caller names the folder).

    A symlink is followed only when it resolves inside the folder, or, for a
    folder in huggingface_hub's cache (``.../snapshots/<rev>/...``), into that
    repository's ``blobs/``, where the cache keeps every file's bytes."""
    if not plain_file_name(name):
        raise InvalidInputError(f"{what} must be a file name inside the folder, but is {name!r}"[:300])
    root = Path(os.path.realpath(folder))
    path = Path(folder) / name
    try:
        target = Path(os.path.realpath(path))
        # a ported folder in the cache, or its tokenizer/ folder
        allowed = [root] + [a.parent.parent / "blobs" for a in (root, root.parent) if a.parent.name == "snapshots"]
        if not any(target.is_relative_to(a) for a in allowed):
            raise InvalidInputError(f"{what} `{name}` must stay inside the folder, but is a symlink to `{target}`")
        if not os.path.lexists(path):
            raise InvalidInputError(f"{what} `{name}` is missing")
        if not path.is_file():
            raise InvalidInputError(f"{what} `{name}` must be a regular file")
        size = path.stat().st_size
    except OSError as e:  # a name the file system refuses (too long, ...)
        raise InvalidInputError(f"{what} `{name[:80]}` cannot be read ({e.strerror or e})") from None
    if max_bytes is not None and size > max_bytes:
        raise InvalidInputError(f"{what} `{name}` is {size:,} bytes, more than such a file can be "
                                f"({max_bytes:,}): not one this folder wrote")
    return path


def copy_folder_files(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
    """Copy the files of the flat folder ``source`` into the new folder
    ``destination``, each checked by :func:`file_in_folder` (a symlink that
    leaves ``source``, a device or a subfolder is refused, where
    ``shutil.copytree`` would copy the file it points to into the output)."""
    os.mkdir(destination)
    for entry in sorted(os.listdir(source)):
        try:
            path = file_in_folder(source, entry, "file")
        except InvalidInputError as e:
            raise InvalidInputError(f"`{source}`: {e}") from None
        with open(path, "rb") as src, open(Path(destination) / entry, "wb") as dst:
            shutil.copyfileobj(src, dst)


def output_folder_problem(path: str | os.PathLike[str]) -> str | None:
    """Why no folder can be at (or made at) ``path``, checked before the work
    that would write there: it, or the nearest part of its path that exists,
    is not a folder (the reason names that part). None when it can
    (permissions are the write's to say)."""
    target = os.path.abspath(path)
    probe = target
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.isdir(probe):
        return None
    shown = os.fspath(path) if probe == target else probe
    return f"`{shown}` is {'a file' if os.path.isfile(probe) else 'not a folder'}"


def utf8_line(raw: bytes | str, number: int, where: str) -> str:
    """``raw`` decoded as UTF-8 without its line ending; an error names line
    ``number`` of ``where`` and the first bad byte. Line 1 loses a byte-order
    mark (``U+FEFF``, which Windows editors write first): it marks the
    encoding, it is not text, and the tokenizers would read it as a character."""
    try:
        # text from a surrogateescape stream (C/POSIX locale) holds undecodable bytes as surrogates
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw.encode("utf-8").decode("utf-8")
    except UnicodeError as e:
        bad = e.object[e.start]
        shown = f"byte 0x{bad:02x}" if isinstance(bad, int) else f"byte 0x{ord(bad) & 0xff:02x}"
        raise InvalidInputError(f"line {number} of {where} must be UTF-8 text, but has {shown} at column "
                                f"{e.start + 1}") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return text[1:] if number == 1 and text.startswith("\ufeff") else text


LINE_BREAKS = str.maketrans({"\r": " ", "\n": " "})


def single_line(text: str) -> str:
    """``text`` with its line breaks (``\\n``, ``\\r``) as spaces, for outputs
    that hold one text per line: a GPT-2 byte-level model (BART) can emit the
    pieces of ``\\n`` and ``\\r``, and written as they are they split a
    translation over several lines, so the output no longer has one line per input line."""
    return text.translate(LINE_BREAKS)


def named_path(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute with its folder resolved and its last part kept as named (an output
    that is a symlink is replaced itself, never its target)."""
    named = Path(os.path.abspath(path))
    return named.parent.resolve() / named.name


def nested(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are one path, or one lies inside the other (:func:`named_path`)."""
    x, y = named_path(a), named_path(b)
    return x == y or x in y.parents or y in x.parents


def read_text_lines(path: str | os.PathLike[str], where: str) -> list[str]:
    """The lines of the file ``path`` without their endings, strictly UTF-8; errors name ``where``
    (``input `test.en```, ``--data `train.en```)."""
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):  # /dev/zero has no lines and no end: no memory bounds it
                raise InvalidInputError(f"{where} must be a file or a pipe, but is a device")
            return [utf8_line(raw, i, where) for i, raw in enumerate(f, 1)]
    except FileNotFoundError:
        raise InvalidInputError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{where} must be a file, but is a directory") from None


def read_utf8_text(path: str | os.PathLike[str], where: str) -> str:
    """The whole text of the file ``path``, strictly UTF-8; a byte that is not is an error naming
    ``where`` and its offset (a report or card someone edited with another encoding)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{where} must be UTF-8 text, but has byte 0x{data[e.start]:02x} at offset "
                                f"{e.start}") from None


def lines_of(data: str | os.PathLike[str] | Sequence[str], what: str) -> list[str]:
    """Lines given to a Python API as a file path (read with :func:`read_text_lines`) or as
    strings, checked to be strings; ``what`` names the argument in errors (``--data``)."""
    if isinstance(data, (str, os.PathLike)):
        return read_text_lines(data, f"{what} `{os.fspath(data)}`")
    lines = list(data)
    for number, line in enumerate(lines, 1):
        check_text_line(number, line, what)
    return lines


def check_lines(lines: Iterable[str]) -> None:
    """Refuse a single string where lines are expected (iterating it would
    take each character as a line of its own)."""
    if isinstance(lines, (str, bytes)):
        raise InvalidInputError("`lines` must be a list of strings, one per sentence, not a single "
                                f"{type(lines).__name__} (wrap it in a list: [text])")
    if not isinstance(lines, Iterable):  # None, a number: iterating it raised TypeError
        raise InvalidInputError(f"`lines` must be a list of strings, one per sentence, not {type(lines).__name__}")


def check_text_line(number: int, line: object, what: str | None = None) -> None:
    """Refuse line ``number`` (of ``what``) unless it is a string: ``None`` would be translated
    as the text "None"."""
    if not isinstance(line, str):
        where = f" of {what}" if what else ""
        raise InvalidInputError(f"line {number}{where} is {type(line).__name__}, not str: every line must be a "
                                "string")


def references_for(references: str | os.PathLike[str] | Sequence[str] | None, lines: Sequence[str] | None,
                   what: str = "references") -> list[str] | None:
    """:func:`lines_of` ``references``, one per line of ``lines`` (the data they translate): a count that
    differs is an error, found before any translating (sacreBLEU scored the first lines only)."""
    if references is None:
        return None
    refs = lines_of(references, what)
    if lines is None:
        raise InvalidInputError(f"{what} need the data lines they translate (--data)")
    if len(refs) != len(lines):
        raise InvalidInputError(f"{what}: {len(refs)} lines for {len(lines)} data lines (one reference per data "
                                "line)")
    return refs


__all__ = ["atomic_text_file", "check_lines", "check_text_line", "lines_of", "not_a_folder", "ordinary_mode",
           "output_folder_problem", "read_text_lines", "references_for", "umask", "unwritable", "utf8_line"]
