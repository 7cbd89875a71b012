"""One party's sessions, one at a time: who may open them, failures, idle sessions.

:class:`PartyService` hosts a party across many sessions. Every ``SessionOpen`` from the
bank starts a fresh role (so nothing of an earlier session leaks into the next one, and
a failed session never blocks the next); every other message goes to the current
session's role through a :class:`~riskfed.transport.base.PartyNode`, which forwards
third-party messages (a fintech's masked gradient) over the service's own outbound
transport.

* **Who may open a session.** Only the bank opens sessions: a ``SessionOpen`` from anyone
  else (a fintech's certificate at the coordinator) is refused, logged and answered
  with an error to its sender, and the running session keeps its role, key and state.
  A new role is built and handed the ``SessionOpen`` first; it replaces the running
  session only once it has accepted it. Messages from parties that are not in the
  session are refused the same way and do not keep the session alive.
* **Failure handling.** A message from the bank that makes the role fail ends the
  session at this party (logged with the step and reason; the bank receives the error).
  A message from another party of the session that the role refuses (a fintech asking
  the coordinator for what the plan does not allow) is answered with the error and
  logged, and the session goes on for the honest parties: roles refuse before they
  change anything. An unexpected exception (a bug) ends the session whoever sent the
  message.
* **Idle sessions.** A session that hears nothing from its parties for
  ``session_timeout`` seconds is abandoned, so a bank that died or was cut off never
  leaves a service holding state forever.

Threat model: the service logs session ids, steps, party names and reasons — never
payloads, ids, features, weights or keys.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from riskfed.errors import ProtocolError, RiskfedError, TransportError
from riskfed.protocol.messages import BANK, Message, SessionOpen, TrafficReport, TrainingStop
from riskfed.roles.base import Role
from riskfed.transport.base import PartyNode, TrafficStats, Transport

log = logging.getLogger("riskfed.service")

DEFAULT_SESSION_TIMEOUT = 300.0


@dataclass
class _Session:
    session_id: str
    purpose: str
    opener: str
    parties: frozenset[str]
    opened: float
    last_activity: float
    traffic_at_open: dict
    finished: bool = False


def _traffic_snapshot(stats: TrafficStats) -> dict:
    return copy.deepcopy(stats.by_step)


def traffic_since(stats: TrafficStats, snapshot: dict) -> list[dict]:
    """Messages and bytes per (sender, recipient, step) counted since ``snapshot``."""
    rows = []
    for key, (count, size) in sorted(stats.by_step.items()):
        c0, b0 = snapshot.get(key, (0, 0))
        if count - c0:
            rows.append({"sender": key[0], "recipient": key[1], "step": key[2], "messages": count - c0, "bytes": size - b0})
    return rows


class PartyService:
    """One party hosted across sessions; subclasses make the role for each session.

    Parameters
    ----------
    name:
        The party's name (the role its certificate names).
    outbound:
        Transport for messages the role addresses to third parties (``None``: the
        role never sends to anyone but the caller).
    session_timeout:
        Seconds without a message after which an open session is dropped.
    stats:
        Traffic counter shared with the server and the outbound transport.
    """

    def __init__(
        self,
        name: str,
        *,
        outbound: Transport | None = None,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        stats: TrafficStats | None = None,
    ) -> None:
        self.name = name
        self.outbound = outbound
        self.session_timeout = float(session_timeout)
        self.stats = stats if stats is not None else TrafficStats()
        self.role: Role | None = None
        self._node: PartyNode | None = None
        self.session: _Session | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.sessions_failed = 0
        self.sessions_finished = 0

    #: Who may open a session here: the bank drives every session.
    openers: frozenset[str] = frozenset({BANK})

    # -- to override ----------------------------------------------------------------
    def new_role(self, message: SessionOpen) -> Role:  # pragma: no cover - abstract
        raise NotImplementedError

    def before(self, message: Message) -> None:
        """Checks on a message of the current session before the role sees it."""

    def after(self, message: Message, replies: list[Message]) -> None:
        """Work after the role handled a message (checkpoints, saving the model)."""

    # -- message entry point -----------------------------------------------------------
    def handle(self, message: Message) -> list[Message]:
        """Route one authenticated message to the session's role; return its replies."""
        with self._lock:
            self._busy = True
            try:
                return self._handle(message)
            finally:
                self._busy = False
                session = self.session
                # Only the session's own parties keep it alive.
                if session is not None and message.sender in session.parties:
                    session.last_activity = time.monotonic()

    def _handle(self, message: Message) -> list[Message]:
        step = message.STEP
        if isinstance(message, SessionOpen):
            return self._open(message)
        session = self.session
        if self.role is None or session is None:
            raise ProtocolError(
                f"{self.name} has no open session; refused a {step!r} message from {message.sender} for session "
                f"{message.session_id!r} (the session may have ended, failed or timed out).",
                party=message.sender,
            )
        if message.session_id != session.session_id:
            raise ProtocolError(
                f"{self.name} refused a {step!r} message from {message.sender} for session {message.session_id!r}; "
                f"the current session is {session.session_id!r}.",
                party=message.sender,
            )
        if message.sender not in session.parties:
            raise self._refused(message, f"{message.sender} is not a party of session {session.session_id!r}")
        # Limits refuse the message without ending the session.
        self.before(message)
        try:
            replies = self._node.handle(message)
            if isinstance(message, TrainingStop) and self.session is not None:
                replies = [*replies, self._traffic_report(message)]
            self.after(message, replies)
        except RiskfedError as exc:
            if message.sender == session.opener:
                self._fail(step, exc)
            else:
                log.warning(
                    "%s: session %s: refused %r from %s (the session goes on): %s",
                    self.name, session.session_id, step, message.sender, exc,
                )
            raise
        except Exception:
            self._fail(step, None)
            raise
        return replies

    def _refused(self, message: Message, reason: str) -> ProtocolError:
        """Log and return the refusal of a message that leaves the session untouched."""
        current = self.session.session_id if self.session is not None else "none"
        log.warning(
            "%s refused a %r message from %s (current session: %s, unchanged): %s",
            self.name, message.STEP, message.sender, current, reason,
        )
        return ProtocolError(f"{self.name} refused a {message.STEP!r} message from {message.sender}: {reason}.", party=message.sender)

    def _traffic_report(self, stop: TrainingStop) -> TrafficReport:
        """This service's traffic in the session so far (counts and sizes, no payloads)."""
        rows = traffic_since(self.stats, self.session.traffic_at_open)
        return TrafficReport(
            session_id=stop.session_id,
            sender=self.name,
            recipient=stop.sender,
            round=stop.round,
            senders=tuple(r["sender"] for r in rows),
            recipients=tuple(r["recipient"] for r in rows),
            steps=tuple(r["step"] for r in rows),
            messages=np.array([r["messages"] for r in rows], dtype=np.int64),
            sizes=np.array([r["bytes"] for r in rows], dtype=np.int64),
        )

    def _open(self, message: SessionOpen) -> list[Message]:
        """Start the session ``message`` opens; the running one stays until the new role
        has accepted it."""
        if message.sender not in self.openers:
            raise self._refused(message, f"only {', '.join(sorted(self.openers))} may open a session")
        role = self.new_role(message)
        node = PartyNode(role, self.outbound if self.outbound is not None else _NoOutbound(self.name))
        now = time.monotonic()
        snapshot = _traffic_snapshot(self.stats)
        try:
            replies = node.handle(message)
        except Exception:
            log.warning(
                "%s: session %s from %s was not opened (current session: %s, unchanged)",
                self.name, message.session_id, message.sender, self.session.session_id if self.session else "none",
            )
            raise
        current = self.session
        if current is not None:
            # Scoring sessions have no end message: a new session simply follows them.
            quiet = current.finished or current.purpose == "scoring"
            log.log(
                logging.INFO if quiet else logging.WARNING,
                "%s: session %s (%s) %s by a new session %s",
                self.name, current.session_id, current.purpose,
                "followed" if quiet else "replaced before it finished", message.session_id,
            )
        self.role, self._node = role, node
        parties = frozenset(message.parties) | {message.sender}
        self.session = _Session(message.session_id, message.purpose, message.sender, parties, now, now, snapshot)
        log.info("%s: session %s opened by %s (purpose: %s)", self.name, message.session_id, message.sender, message.purpose)
        return replies

    def _fail(self, step: str, exc: RiskfedError | None) -> None:
        session = self.session
        if session is None:
            return
        if exc is None:
            log.error("%s: session %s failed at step %r (internal error; see above)", self.name, session.session_id, step)
        else:
            log.warning("%s: session %s failed at step %r: %s", self.name, session.session_id, step, exc)
        self.sessions_failed += 1
        self._close()

    def _close(self) -> None:
        self.role = None
        self._node = None
        self.session = None

    # -- idle sessions --------------------------------------------------------------------
    def check_idle(self, now: float | None = None) -> bool:
        """Drop the session if it has been idle for ``session_timeout``; True if dropped."""
        if not self._lock.acquire(blocking=False):
            return False  # a message is being handled: not idle
        try:
            session = self.session
            if session is None or self._busy:
                return False
            now = time.monotonic() if now is None else now
            idle = now - session.last_activity
            if idle < self.session_timeout:
                return False
            if session.finished or session.purpose == "scoring":
                # Finished training and scoring sessions have no closing message: idle is normal.
                log.info("%s: session %s (%s) closed after %.0f s without messages", self.name, session.session_id, session.purpose, idle)
            else:
                expecting = ", ".join(sorted(self.role._expect)) if self.role is not None else "nothing"
                log.warning(
                    "%s: session %s abandoned: no message from %s for %.0f s (timeout %.0f s; was expecting: %s)",
                    self.name, session.session_id, BANK, idle, self.session_timeout, expecting,
                )
                self.sessions_failed += 1
            self._close()
            return True
        finally:
            self._lock.release()

    def start_watchdog(self) -> None:
        if self._watchdog is not None:
            return
        interval = max(0.05, min(1.0, self.session_timeout / 5))

        def loop() -> None:
            while not self._stop.wait(interval):
                self.check_idle()

        self._watchdog = threading.Thread(target=loop, name=f"riskfed-{self.name}-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
            self._watchdog = None
        if self.outbound is not None:
            self.outbound.close()


class _NoOutbound(Transport):
    """For parties that never address a third party (the coordinator)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = TrafficStats()

    def request(self, message: Message) -> list[Message]:
        raise TransportError(f"{self.name} has no connection to {message.recipient}.", party=message.recipient)


__all__ = ["DEFAULT_SESSION_TIMEOUT", "PartyService", "traffic_since"]
