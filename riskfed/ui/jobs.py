"""Long work in a background thread, one per browser session, with progress and cancel.

Streamlit runs a page's script top to bottom on every interaction; a 20-second
training run inside the script would freeze the page. Instead the page starts a
:class:`Job`, stores it in the session's workspace and returns at once. A fragment
re-run every second reads :meth:`Job.snapshot` (progress, per-batch loss, ETA) and
offers a cancel button; when the job ends, the page reruns and shows the result.

Why a thread and not a process: the job's result — the fitted estimator, including
the coordinator's Paillier private key — must stay in this browser session's memory
(``st.session_state``), never be serialised or shared. The heavy Paillier kernels
already run in worker processes (joblib), so the thread mostly waits.

The job never touches Streamlit: it only calls the work function and records events,
under a lock, for the page to read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from riskfed.errors import RiskfedError
from riskfed.session import Cancelled, ProgressEvent

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"

Work = Callable[[Callable[[ProgressEvent], None], Callable[[], bool]], Any]


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for one page render."""

    status: str
    latest: ProgressEvent | None
    phase_latest: dict[str, ProgressEvent]
    losses: list[dict]
    elapsed: float
    cancel_requested: bool
    error: str | None = None

    @property
    def training_fraction(self) -> float:
        """Share of training batches done (0 before training starts)."""
        event = self.phase_latest.get("training")
        if event is None or event.total <= 0:
            return 0.0
        return min(1.0, event.done / event.total)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left in the current training phase, when it can be estimated."""
        event = self.phase_latest.get("training")
        return None if event is None else event.eta_seconds


@dataclass
class Job:
    """Run ``work(progress, cancelled)`` in a daemon thread.

    Parameters
    ----------
    name:
        What the job does, for messages ("training", "alignment").
    work:
        Called in the thread with a progress callback and a cancellation poll; its
        return value becomes :attr:`result`.
    fingerprint:
        The settings the job runs with, so the page can tell whether a finished result
        still matches what is on screen.

    Attributes
    ----------
    status:
        ``running``, ``done``, ``failed`` or ``cancelled``.
    result:
        The work's return value once ``done``.
    error:
        A one-line description once ``failed`` (a riskfed error's own message; for an
        unexpected error, its type and message — never a traceback). For developers:
        the page shows :attr:`exception` through :mod:`riskfed.ui.boundary`, which
        keeps an unexpected error's text away from the analyst.
    exception:
        The exception the work raised, once ``failed``.
    """

    name: str
    work: Work
    fingerprint: Any = None
    status: str = field(default=RUNNING, init=False)
    result: Any = field(default=None, init=False)
    error: str | None = field(default=None, init=False)
    error_type: str | None = field(default=None, init=False)
    exception: Exception | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._events: list[ProgressEvent] = []
        self._phase_latest: dict[str, ProgressEvent] = {}
        self._losses: list[dict] = []
        self._started = time.monotonic()
        self._finished: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"riskfed-{self.name}", daemon=True)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> Job:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            result = self.work(self.progress, self.cancelled)
        except Cancelled as exc:
            self._finish(CANCELLED, error=str(exc), error_type="Cancelled")
        except RiskfedError as exc:
            self.exception = exc
            self._finish(FAILED, error=str(exc), error_type=type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - kept for the page's error boundary, never raised in the thread
            self.exception = exc
            self._finish(FAILED, error=f"Unexpected {type(exc).__name__}: {exc}", error_type=type(exc).__name__)
        else:
            with self._lock:
                self.result = result
            self._finish(DONE)

    def _finish(self, status: str, *, error: str | None = None, error_type: str | None = None) -> None:
        with self._lock:
            self.error = error
            self.error_type = error_type
            self._finished = time.monotonic()
            self.status = status

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; ``True`` once it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- called from the work function (background thread) ---------------------------
    def progress(self, event: ProgressEvent) -> None:
        with self._lock:
            self._events.append(event)
            self._phase_latest[event.phase] = event
            if event.phase == "training" and event.loss is not None:
                self._losses.append(
                    {"step": event.done, "epoch": event.epoch, "loss": float(event.loss)}
                )

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- called from the page ---------------------------------------------------------
    def cancel(self) -> None:
        """Ask the work to stop at its next check (between training batches)."""
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    @property
    def elapsed(self) -> float:
        end = self._finished if self._finished is not None else time.monotonic()
        return end - self._started

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                status=self.status,
                latest=self._events[-1] if self._events else None,
                phase_latest=dict(self._phase_latest),
                losses=list(self._losses),
                elapsed=self.elapsed,
                cancel_requested=self._cancel.is_set(),
                error=self.error,
            )


def start_job(name: str, work: Work, *, fingerprint: Any = None) -> Job:
    """Create and start a :class:`Job`."""
    return Job(name, work, fingerprint=fingerprint).start()
