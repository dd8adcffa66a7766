"""What every report type shares: the read-only dict view of its JSON, plain
sections, and the BLEU/chrF pair and its sacreBLEU signatures (parity and
pass reports both carry them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any


def options_text(options: Mapping[str, Any]) -> str:
    """A pass's options as one short line (``mode=int8, min_int8_elements=131072``):
    the options it was given or chose, those left off (None) or off (False) not
    shown; what ``inspect`` and ``compare`` print (the JSON holds every one)."""
    return ", ".join(f"{k}={v}" for k, v in options.items() if v is not None and v is not False)


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
    """A report section of plain fields: its JSON is its fields, in order
    (those named in ``OPTIONAL`` left out while None: fields added later, so
    the JSON of older reports reads back unchanged)."""

    OPTIONAL: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass
        return {k: v for k, v in data.items() if not (k in self.OPTIONAL and v is None)}


@dataclass(frozen=True)
class Scores(Flat):
    """sacreBLEU corpus BLEU and chrF against the references."""

    bleu: float
    chrf: float


@dataclass(frozen=True)
class Signatures(Flat):
    """sacreBLEU's signatures of the BLEU and chrF scores (``nrefs:1|case:mixed|
    eff:no|tok:13a|smooth:exp|version:2.6.0``): how they were computed, so a
    reader knows which other scores they compare with."""

    bleu: str
    chrf: str

    @classmethod
    def from_json(cls, data: Any) -> Signatures | None:
        """The signatures of a report's JSON, None when absent (reports written before they were recorded)."""
        return cls(bleu=str(data["bleu"]), chrf=str(data["chrf"])) if isinstance(data, dict) else None

    def lines(self) -> list[str]:
        """One Markdown line per metric (inline code: the signature holds ``|``)."""
        return [f"sacreBLEU signature: BLEU `{self.bleu}`; chrF `{self.chrf}`"]


def languages_json(languages: tuple[str, str] | None) -> dict[str, Any]:
    """A direction (a multilingual port's languages) in a report:
    ``{"languages": {"source": .., "target": ..}}``, or nothing."""
    return {} if languages is None else {"languages": {"source": languages[0], "target": languages[1]}}


def languages_from_json(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """:func:`languages_json` read back."""
    got = data.get("languages")
    return (got["source"], got["target"]) if got else None


def direction_lines(languages: tuple[str, str] | None) -> list[str]:
    """The summary line of a report's direction, if it has one."""
    return [] if languages is None else [f"direction:     {languages[0]} -> {languages[1]}"]
