"""What every report type shares: the read-only dict view of its JSON, plain
sections, and the BLEU/chrF pair (parity and pass reports both carry it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


class JsonView:
    """Read-only dict-style access to a report's :meth:`to_json` (``report["parameters"]["after"]``,
    ``"quality" in report``, ``{**report}``), for callers written against the
    dicts the reports used to be. New code reads the typed fields."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_json()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def keys(self) -> Any:
        return self.to_json().keys()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)


class Flat:
    """A report section of plain fields: its JSON is its fields, in order."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass


@dataclass(frozen=True)
class Scores(Flat):
    """sacreBLEU corpus BLEU and chrF against the references."""

    bleu: float
    chrf: float
