"""Is ``--reference`` the checkpoint the port was converted from? Checked
from ``conversion.json`` before anything heavy is loaded.

``convert`` records every source file (``source_files``: path, name, bytes,
sha256). The reference's counterpart of each recorded file is found by its
path relative to the recorded source folder (by name when it lay outside),
in the reference's folder; a reference naming checkpoint files
(``dir/model.pt``, ``a.pt:b.pt``) must name recorded files, by content (a
renamed copy is the same checkpoint). A counterpart with other bytes is a
wrong reference: one line naming the file and both hashes (shortened), exit 2,
instead of a tensor-size error after the reference framework loaded it. A
copy with the same content in another folder passes; files the reference
folder lacks are left to the reference framework's own loader to report."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.converters.base import sha256, source_paths
from modelport.errors import InvalidInputError

SHORT = 12  # hex digits of a sha256 shown in a message


@dataclass(frozen=True)
class SourceFile:
    """One file ``conversion.json`` records the port was made from."""

    path: str
    name: str
    bytes: int | None
    sha256: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceFile | None:
        """The record, or None when it lacks a hash (nothing to compare with)."""
        digest = data.get("sha256")
        if not isinstance(digest, str) or not digest:
            return None
        path = str(data.get("path") or data.get("name") or "")
        size = data.get("bytes")
        return cls(path=path, name=str(data.get("name") or Path(path).name), sha256=digest,
                   bytes=size if isinstance(size, int) else None)


def _root(source: str) -> Path:
    first = source_paths(source)[0]
    return first if first.is_dir() else first.parent


def _recorded_root(source: str, records: Sequence[SourceFile]) -> Path:
    """The recorded source folder, spelled as the recorded paths spell it (it
    may no longer exist, and may be relative to another working directory):
    the source's parent when the source was itself one of the files."""
    first = source_paths(source)[0]
    return first.parent if any(Path(r.path) == first for r in records) else first


def _relative(recorded: SourceFile, root: Path) -> Path:
    """Where ``recorded`` lay inside the source folder (its name when outside)."""
    try:
        return Path(recorded.path).relative_to(root)
    except ValueError:
        return Path(recorded.name)


def _same(path: Path, recorded: SourceFile) -> tuple[bool, str]:
    """Whether ``path`` holds the recorded bytes; its sha256 when it was hashed."""
    if recorded.bytes is not None and path.stat().st_size != recorded.bytes:
        return False, sha256(path)  # a size that differs settles it; the hash is for the message
    digest = sha256(path)
    return digest == recorded.sha256, digest


def _wrong(reference: str, ported_dir: str, name: str, theirs: str, ours: str) -> InvalidInputError:
    return InvalidInputError(
        f"`{reference}` is not the checkpoint `{ported_dir}` was converted from: its `{name}` has sha256 "
        f"{theirs[:SHORT]}…, conversion.json records {ours[:SHORT]}…; pass the original checkpoint as "
        "--reference (or convert this one)")


def check_reference(conversion: Mapping[str, Any], reference: str, ported_dir: str | os.PathLike[str]) -> None:
    """Raise :class:`InvalidInputError` when ``reference``'s files are not
    those ``conversion`` (a port's ``conversion.json``) records. A reference
    that is not a local path (a Hub id), or a port recording no hashes, is
    not checked."""
    records = [r for r in (SourceFile.from_json(f) for f in conversion.get("source_files") or []
                           if isinstance(f, Mapping)) if r is not None]
    named = source_paths(reference)
    if not records or not all(p.exists() for p in named):
        return
    where = str(ported_dir)
    recorded_root = _recorded_root(str(conversion.get("source") or ""), records)
    # files the reference names explicitly: each must be one of the recorded ones, by content
    explicit = [p for p in named if p.is_file()]
    for path in explicit:
        candidates = [r for r in records if r.name == path.name] or _checkpoints(records, len(explicit))
        results = [(r, *_same(path, r)) for r in candidates]
        if not any(ok for _, ok, _ in results):
            record, _, digest = results[0]
            raise _wrong(reference, where, path.name, digest, record.sha256)
    # every recorded file the reference folder holds must hold the recorded bytes
    root = _root(reference)
    explicit_names = {p.name for p in explicit}
    for record in records:
        if record.name in explicit_names:
            continue
        path = root / _relative(record, recorded_root)
        if not path.is_file():
            continue  # a file the reference lacks: its loader says so, in its own words
        ok, digest = _same(path, record)
        if not ok:
            raise _wrong(reference, where, _relative(record, recorded_root).as_posix(), digest, record.sha256)


def _checkpoints(records: Sequence[SourceFile], n: int) -> list[SourceFile]:
    """The records a renamed checkpoint may stand for: converters record the
    checkpoint files first."""
    return list(records[:max(n, 1)])
