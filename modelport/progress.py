"""Progress of a long command on stderr: one bar advanced step by step
(batches validated, timed runs of a pass, phases of an export).

Drawn only when the caller asks: the CLI asks when stderr is a terminal and
``--quiet`` is off, so logs never collect ``0%`` lines. Imports nothing of
modelport (tqdm only), so every layer may use it.
"""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm.auto import tqdm


class Steps:
    """A bar of ``total`` steps named ``description``; :meth:`advance` after each."""

    def __init__(self, description: str, total: int, enabled: bool, *, unit: str = "step") -> None:
        self._bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=not enabled,
                         leave=False, dynamic_ncols=True)

    def advance(self, label: str = "") -> None:
        """One step done; ``label`` says which (shown after the bar)."""
        if label:
            self._bar.set_postfix_str(label, refresh=False)
        self._bar.update(1)

    def advance_to(self, done: int, label: str = "") -> None:
        """``done`` steps done in all (a resumed run starts past 0)."""
        if label:
            self._bar.set_postfix_str(label, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
