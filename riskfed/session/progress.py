"""Progress and cancellation of a long-running session.

Progress is reported through a callback ``progress(event: ProgressEvent)`` (the CLI draws
bars from it, the app a progress widget), and a ``cancel`` callable is polled between
steps: when it returns true the session stops cleanly with :class:`Cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from riskfed.errors import RiskfedError


class Cancelled(RiskfedError):
    """The user cancelled a long-running session."""


@dataclass(frozen=True)
class ProgressEvent:
    """One progress update: ``phase`` is ``alignment``, ``training`` or ``evaluation``."""

    phase: str
    done: int
    total: int
    message: str = ""
    epoch: int | None = None
    loss: float | None = None
    elapsed: float = 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.done <= 0 or self.total <= 0 or self.done >= self.total:
            return None
        return self.elapsed / self.done * (self.total - self.done)


ProgressCallback = Callable[[ProgressEvent], None]


def quiet(event: ProgressEvent) -> None:
    """The progress callback that reports nothing."""


def check_cancel(cancel: Callable[[], bool] | None, what: str = "Training") -> None:
    """Raise :class:`Cancelled` if ``cancel`` says so."""
    if cancel is not None and cancel():
        raise Cancelled(f"{what} was cancelled; nothing was saved.")
