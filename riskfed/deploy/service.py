"""Long-running party services: a fintech or the coordinator behind ``riskfed serve``.

A service hosts one party across many sessions, one at a time (the session machinery —
who may open a session, failures, idle sessions — is :class:`~riskfed.deploy.session.
PartyService`). What the two services add around their role:

* **Key pair per session (coordinator).** A fresh role, hence a fresh key pair, for every
  session; nothing is persisted, and the role and its private key are dropped as soon as
  training stops.
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

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from riskfed.certs import TlsIdentity
from riskfed.checkpoint import read_checkpoint, table_fingerprint, write_checkpoint
from riskfed.data.io import atomic_write
from riskfed.data.schema import PartyTable
from riskfed.deploy.session import DEFAULT_SESSION_TIMEOUT, PartyService, traffic_since
from riskfed.errors import ConfigurationError, DataValidationError, ProtocolError, TransportError
from riskfed.models.parts import read_model_part
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    EpochEnd,
    Message,
    PsiBlinded,
    ScoreRequest,
    SessionOpen,
    TrainingStop,
)
from riskfed.roles.base import Role
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import DEFAULT_MIN_BATCH_SIZE, Fintech
from riskfed.transport.base import TrafficStats, Transport
from riskfed.transport.network import NetworkLimits, NetworkTransport, PartyServer

log = logging.getLogger("riskfed.service")

MODEL_FILE = "model.json"
SESSION_FILE = "training_session.json"


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
        # The same checks as FederatedModel.load: a part with NaN or absurd weights must
        # not answer scoring requests.
        part = read_model_part(path, self.name)
        if part.get("party") != self.name:
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
            state = read_checkpoint(
                self.checkpoint_dir, self.name, message.session_id, message.resume_epoch, table_rows=self.table.n_rows
            )
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
        traffic = traffic_since(self.stats, session.traffic_at_open)
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
    "DEFAULT_SESSION_TIMEOUT",
    "CoordinatorService",
    "FintechService",
    "PartyService",
    "RunningService",
    "ScoringLimits",
    "TokenBucket",
    "start_coordinator",
    "start_fintech",
]
