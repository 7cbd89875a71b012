"""Long-running party services: a fintech or the coordinator behind ``riskfed serve``.

A service hosts one party across many sessions, one at a time. Every ``SessionOpen``
from the bank starts a fresh role (so nothing of an earlier session leaks into the next
one, and a failed session never blocks the next); every other message goes to the
current session's role through a :class:`~riskfed.transport.base.PartyNode`, which
forwards third-party messages (a fintech's masked gradient) over the service's own
outbound transport.

What a service adds around the role:

* **Failure handling.** A message that makes the role fail ends the session at this
  party (logged with the step and reason; the bank receives the error). A session that
  hears nothing for ``session_timeout`` seconds is abandoned, so a bank that died or was
  cut off never leaves a service holding state forever.
* **Checkpoints (fintech).** After each ``EpochEnd`` the fintech writes its own state
  (:mod:`riskfed.checkpoint`); ``SessionOpen(purpose="resume")`` reloads it.
* **Model part (fintech).** When training stops, the fintech writes its model part to
  ``MODEL_DIR/<name>/model.json`` and answers later scoring sessions with it; a part
  found there at start-up is loaded, so a restarted service can score without retraining.
* **Scoring limits (fintech).** In scoring sessions, requests for more than
  ``max_rows`` applicants are refused, and a token bucket limits the request rate.

Threat model: as for the hosted role (see :mod:`riskfed.roles.fintech` and
:mod:`riskfed.roles.coordinator`). The service logs session ids, steps, sizes, epoch
numbers and file paths — never payloads, ids, features, weights or keys.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskfed.certs import TlsIdentity
from riskfed.checkpoint import atomic_write, read_checkpoint, table_fingerprint, write_checkpoint
from riskfed.data.schema import PartyTable
from riskfed.errors import ConfigurationError, DataValidationError, ProtocolError, RiskfedError, TransportError
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    EpochEnd,
    Message,
    PsiBlinded,
    ScoreRequest,
    SessionOpen,
    TrafficReport,
    TrainingStop,
)
from riskfed.roles.base import Role
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import DEFAULT_MIN_BATCH_SIZE, Fintech
from riskfed.transport.base import PartyNode, TrafficStats, Transport
from riskfed.transport.network import NetworkLimits, NetworkTransport, PartyServer

log = logging.getLogger("riskfed.service")

MODEL_FILE = "model.json"
SESSION_FILE = "training_session.json"
DEFAULT_SESSION_TIMEOUT = 300.0


@dataclass(frozen=True)
class ScoringLimits:
    """What a fintech service allows in scoring sessions.

    Parameters
    ----------
    max_rows:
        Most applicants in one request (``riskfed score --chunk-rows`` must not exceed it).
    rate:
        Sustained requests per second (token bucket).
    burst:
        Requests allowed back to back before the rate applies.
    """

    max_rows: int = 100_000
    rate: float = 5.0
    burst: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise ConfigurationError(f"The 'max_rows' scoring limit must be an int ≥ 1. Got {self.max_rows!r} instead.")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not self.rate > 0:
            raise ConfigurationError(f"The scoring 'rate' must be a number > 0 (requests per second). Got {self.rate!r} instead.")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"The scoring 'burst' must be an int ≥ 1. Got {self.burst!r} instead.")


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; :meth:`take` spends one or says no."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclass
class _Session:
    session_id: str
    purpose: str
    opened: float
    last_activity: float
    traffic_at_open: dict
    finished: bool = False


def _traffic_snapshot(stats: TrafficStats) -> dict:
    return copy.deepcopy(stats.by_step)


def _traffic_since(stats: TrafficStats, snapshot: dict) -> list[dict]:
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
                if self.session is not None:
                    self.session.last_activity = time.monotonic()

    def _handle(self, message: Message) -> list[Message]:
        step = message.STEP
        if isinstance(message, SessionOpen):
            self._open(message)
        elif self.role is None or self.session is None:
            raise ProtocolError(
                f"{self.name} has no open session; refused a {step!r} message from {message.sender} for session "
                f"{message.session_id!r} (the session may have ended, failed or timed out).",
                party=message.sender,
            )
        elif message.session_id != self.session.session_id:
            raise ProtocolError(
                f"{self.name} refused a {step!r} message from {message.sender} for session {message.session_id!r}; "
                f"the current session is {self.session.session_id!r}.",
                party=message.sender,
            )
        else:
            # Limits refuse the message without ending the session.
            self.before(message)
        try:
            replies = self._node.handle(message)
            if isinstance(message, TrainingStop) and self.session is not None:
                replies = [*replies, self._traffic_report(message)]
            self.after(message, replies)
        except RiskfedError as exc:
            self._fail(step, exc)
            raise
        except Exception:
            self._fail(step, None)
            raise
        return replies

    def _traffic_report(self, stop: TrainingStop) -> TrafficReport:
        """This service's traffic in the session so far (counts and sizes, no payloads)."""
        rows = _traffic_since(self.stats, self.session.traffic_at_open)
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

    def _open(self, message: SessionOpen) -> None:
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
        self.role = None
        self._node = None
        self.session = None
        role = self.new_role(message)
        self.role = role
        self._node = PartyNode(role, self.outbound) if self.outbound is not None else PartyNode(role, _NoOutbound(self.name))
        now = time.monotonic()
        self.session = _Session(message.session_id, message.purpose, now, now, _traffic_snapshot(self.stats))
        log.info("%s: session %s opened by %s (purpose: %s)", self.name, message.session_id, message.sender, message.purpose)

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


class CoordinatorService(PartyService):
    """The coordinator: a fresh role, hence a fresh key pair, for every session.

    It persists nothing — in particular not its private key; a resumed training session
    gets a new key (no ciphertext crosses an epoch boundary, see :mod:`riskfed.checkpoint`).
    """

    def __init__(self, name: str = "coordinator", *, allow_insecure_key: bool = False, n_jobs: int = 1, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.allow_insecure_key = allow_insecure_key
        self.n_jobs = n_jobs

    def new_role(self, message: SessionOpen) -> Role:
        if message.purpose not in ("training", "resume"):
            raise ProtocolError(f"{self.name} takes part in training sessions only, not {message.purpose!r}.", party=message.sender)
        return Coordinator(allow_insecure_key=self.allow_insecure_key, n_jobs=self.n_jobs, name=self.name)

    def after(self, message: Message, replies: list[Message]) -> None:
        if isinstance(message, TrainingStop):
            self.sessions_finished += 1
            log.info(
                "%s: session %s finished after %d epoch(s); %d value(s) decrypted, %d randomizer(s) made; "
                "its key pair is dropped",
                self.name, self.session.session_id, message.epochs, self.role.decryptions, self.role.randomizers_issued,
            )
            # Nothing after TrainingStop needs the coordinator: drop the role and its private key now.
            self._close()


class FintechService(PartyService):
    """A fintech: trains with the bank, saves its model part, then answers scoring.

    Parameters
    ----------
    name:
        ``fintech_k`` (from its certificate).
    table:
        The fintech's validated table.
    coordinator:
        Transport connected to the coordinator (for key requests and masked gradients).
    model_dir:
        Where ``<name>/model.json`` is written when training stops (and read at start).
    checkpoint_dir:
        Where per-epoch checkpoints are written (``None``: no checkpoints, no resume).
    allow_insecure_key:
        Test-only: accept keys below 2048 bits.
    n_jobs:
        Worker processes for encryption and multi-exponentiation.
    scoring:
        Request-size and rate limits for scoring sessions.
    min_batch_size:
        The smallest training batch this fintech serves, whatever the bank's plan says.
    """

    def __init__(
        self,
        name: str,
        table: PartyTable,
        *,
        coordinator: Transport,
        model_dir: str | Path | None = None,
        checkpoint_dir: str | Path | None = None,
        allow_insecure_key: bool = False,
        n_jobs: int = 1,
        scoring: ScoringLimits | None = None,
        min_batch_size: int = DEFAULT_MIN_BATCH_SIZE,
        **kwargs,
    ) -> None:
        super().__init__(name, outbound=coordinator, **kwargs)
        self.min_batch_size = min_batch_size
        self.table = table
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.allow_insecure_key = allow_insecure_key
        self.n_jobs = n_jobs
        self.scoring = scoring or ScoringLimits()
        self._bucket = TokenBucket(self.scoring.rate, self.scoring.burst)
        self._fingerprint = table_fingerprint(table.ids, table.features)
        self.model_part: dict | None = self._load_saved_model()

    # -- model part on disk -------------------------------------------------------------
    @property
    def model_path(self) -> Path | None:
        return self.model_dir / self.name / MODEL_FILE if self.model_dir is not None else None

    def _load_saved_model(self) -> dict | None:
        path = self.model_path
        if path is None or not path.is_file():
            return None
        try:
            part = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataValidationError(f"{self.name}: cannot read the model part {str(path)!r} ({exc}).", party=self.name) from None
        if part.get("kind") != "riskfed-fintech-model" or part.get("party") != self.name:
            raise DataValidationError(f"{self.name}: {str(path)!r} is not {self.name}'s model part.", party=self.name)
        log.info("%s: loaded its model part from %s; ready to score", self.name, path)
        return part

    # -- sessions ------------------------------------------------------------------------
    def new_role(self, message: SessionOpen) -> Role:
        if message.purpose == "scoring":
            self._rate_limit(message)
            if self.model_part is None:
                raise ProtocolError(
                    f"{self.name} has no trained model part yet; it answers scoring requests only after training "
                    "(or with a model part in its --model-dir).",
                    party=message.sender,
                )
        role = Fintech(
            self.name,
            self.table,
            model=self.model_part if message.purpose == "scoring" else None,
            allow_insecure_key=self.allow_insecure_key,
            n_jobs=self.n_jobs,
            min_batch_size=self.min_batch_size,
        )
        if message.purpose == "resume":
            role.restore_state(self._load_checkpoint(message))
        return role

    def _load_checkpoint(self, message: SessionOpen) -> dict:
        if self.checkpoint_dir is None:
            raise ProtocolError(
                f"{self.name} keeps no checkpoints (started without --checkpoint-dir); it cannot resume session "
                f"{message.session_id!r}.",
                party=message.sender,
            )
        try:
            state = read_checkpoint(self.checkpoint_dir, self.name, message.session_id, message.resume_epoch)
        except (DataValidationError, ConfigurationError) as exc:
            raise ProtocolError(f"{self.name} cannot resume: {exc}", party=self.name) from None
        if state.get("data_fingerprint") != self._fingerprint:
            raise ProtocolError(
                f"{self.name} cannot resume session {message.session_id!r}: its data changed since the checkpoint.",
                party=self.name,
            )
        log.info("%s: resuming session %s after epoch %d from %s", self.name, message.session_id, message.resume_epoch, self.checkpoint_dir)
        return state

    def _rate_limit(self, message: Message) -> None:
        if not self._bucket.take():
            raise TransportError(
                f"{self.name} is rate-limiting scoring requests ({self.scoring.rate:g}/s, bursts of {self.scoring.burst}); "
                f"the {message.STEP!r} message was refused, retry later.",
                party=self.name,
            )

    def before(self, message: Message) -> None:
        if self.session is None or self.session.purpose != "scoring":
            return
        if isinstance(message, (ScoreRequest, PsiBlinded)):
            self._rate_limit(message)
            if isinstance(message, ScoreRequest):
                rows = len(message.digests) if message.index == "digests" else len(message.rows)
            else:
                rows = len(message.points)
            if rows > self.scoring.max_rows:
                raise ProtocolError(
                    f"{self.name} refuses a scoring request for {rows:,} applicants; the limit is "
                    f"{self.scoring.max_rows:,} per request (score in smaller chunks, e.g. --chunk-rows).",
                    party=message.sender,
                )
            log.info("%s: session %s: %r for %d applicant(s)", self.name, self.session.session_id, message.STEP, rows)

    def after(self, message: Message, replies: list[Message]) -> None:
        if isinstance(message, EpochEnd):
            self._checkpoint(message.epoch + 1)
        elif isinstance(message, TrainingStop):
            self._finish_training(message)

    def _checkpoint(self, epochs: int) -> None:
        if self.checkpoint_dir is None:
            return
        state = self.role.checkpoint_state() | {"data_fingerprint": self._fingerprint}
        path = write_checkpoint(self.checkpoint_dir, self.name, self.session.session_id, epochs, state)
        log.info("%s: session %s checkpointed after epoch %d (%s)", self.name, self.session.session_id, epochs, path)

    def _finish_training(self, message: TrainingStop) -> None:
        part = self.role.export_model()
        self.model_part = part
        session = self.session
        session.finished = True
        self.sessions_finished += 1
        traffic = _traffic_since(self.stats, session.traffic_at_open)
        sent = sum(r["bytes"] for r in traffic if r["sender"] == self.name)
        received = sum(r["bytes"] for r in traffic if r["recipient"] == self.name)
        if self.model_path is not None:
            atomic_write(self.model_path, json.dumps(part, indent=2).encode())
            summary = {
                "session_id": session.session_id,
                "epochs": message.epochs,
                "stop_reason": message.reason,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "traffic": traffic,
            }
            atomic_write(self.model_path.with_name(SESSION_FILE), json.dumps(summary, indent=2).encode())
            log.info("%s: session %s finished after %d epoch(s); model part written to %s", self.name, session.session_id, message.epochs, self.model_path)
        else:
            log.info("%s: session %s finished after %d epoch(s); model part kept in memory (no --model-dir)", self.name, session.session_id, message.epochs)
        log.info("%s: session %s traffic: sent %d bytes, received %d bytes", self.name, session.session_id, sent, received)


@dataclass
class RunningService:
    """A service and the server that exposes it; :meth:`stop` ends both."""

    service: PartyService
    server: PartyServer

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def name(self) -> str:
        return self.service.name

    def stop(self, grace: float | None = 0.5) -> None:
        self.server.stop(grace)
        self.service.stop()

    def __enter__(self) -> "RunningService":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_coordinator(
    identity: TlsIdentity,
    listen: str,
    *,
    limits: NetworkLimits | None = None,
    allow_insecure_key: bool = False,
    n_jobs: int = 1,
) -> RunningService:
    """Serve the coordinator on ``listen``; it accepts the bank and any fintech. ``n_jobs``
    worker processes make the session's encryption randomness."""
    if identity.role != COORDINATOR:
        raise ConfigurationError(f"The coordinator needs a certificate for 'coordinator'; this one is for {identity.role!r}.")
    limits = limits or NetworkLimits()
    stats = TrafficStats()
    service = CoordinatorService(
        identity.role, allow_insecure_key=allow_insecure_key, n_jobs=n_jobs, session_timeout=limits.timeout, stats=stats
    )
    server = PartyServer(
        identity,
        listen,
        service.handle,
        allowed_senders=lambda role: role == BANK or role.startswith("fintech_"),
        limits=limits,
        stats=stats,
    )
    server.start()
    service.start_watchdog()
    return RunningService(service, server)


def start_fintech(
    identity: TlsIdentity,
    listen: str,
    table: PartyTable,
    *,
    coordinator_at: str,
    limits: NetworkLimits | None = None,
    model_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    allow_insecure_key: bool = False,
    n_jobs: int = 1,
    scoring: ScoringLimits | None = None,
    min_batch_size: int = DEFAULT_MIN_BATCH_SIZE,
) -> RunningService:
    """Serve fintech ``identity.role`` on ``listen``; it accepts the bank only and
    reaches the coordinator at ``coordinator_at``; it serves no training batch below
    ``min_batch_size`` rows."""
    if not identity.role.startswith("fintech_"):
        raise ConfigurationError(f"A fintech needs a certificate for 'fintech_<k>'; this one is for {identity.role!r}.")
    limits = limits or NetworkLimits()
    stats = TrafficStats()
    outbound = NetworkTransport(identity, {COORDINATOR: coordinator_at}, limits=limits, stats=stats)
    service = FintechService(
        identity.role,
        table,
        coordinator=outbound,
        model_dir=model_dir,
        checkpoint_dir=checkpoint_dir,
        allow_insecure_key=allow_insecure_key,
        n_jobs=n_jobs,
        scoring=scoring,
        min_batch_size=min_batch_size,
        session_timeout=limits.timeout,
        stats=stats,
    )
    server = PartyServer(identity, listen, service.handle, allowed_senders={BANK}, limits=limits, stats=stats)
    server.start()
    service.start_watchdog()
    return RunningService(service, server)


__all__ = [
    "CoordinatorService",
    "FintechService",
    "PartyService",
    "RunningService",
    "ScoringLimits",
    "TokenBucket",
    "start_coordinator",
    "start_fintech",
]
