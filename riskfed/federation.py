"""The one loop that runs a session: alignment → training → holdout evaluation.

:func:`run_training_session` drives a :class:`~riskfed.roles.bank.Bank` over any
:class:`~riskfed.transport.base.Transport` — in memory for pilots, tests and the app, or
over the network — and returns what the bank may keep: the aligned index, its model
part, the training history, the holdout scores and per-phase timings and traffic.

Progress is reported through a callback ``progress(event: ProgressEvent)`` (the CLI draws
bars from it, the app a progress widget), and a ``cancel`` callable is polled between
batches: when it returns true the session stops cleanly with :class:`Cancelled`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from riskfed.alignment.index import AlignedIndex
from riskfed.errors import ConfigurationError, RiskfedError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.protocol.messages import Message
from riskfed.roles.bank import DEFAULT_MIN_INTERSECTION, Bank
from riskfed.transport.base import Transport


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


@dataclass
class SessionOutcome:
    """What the bank keeps from a training session."""

    aligned: AlignedIndex
    train_rows: np.ndarray
    holdout_rows: np.ndarray
    holdout_scores: np.ndarray
    holdout_labels: np.ndarray
    history: list[dict]
    batch_losses: list[dict]
    timings: dict[str, float]
    epochs: int
    stop_reason: str
    key_bits: int
    key_fingerprint: str
    session_id: str
    hyperparameters: dict
    traffic: dict = field(default_factory=dict)
    # Party → the features it declared (they fix its decryption allowance per round: a
    # partner declaring more than agreed could have more decrypted; docs/threat-model.md).
    party_features: dict = field(default_factory=dict)


def _deliver(transport: Transport, bank: Bank, messages: list[Message]) -> None:
    for msg in messages:
        for reply in transport.request(msg):
            bank.handle(reply)


def _check_resume(state: dict, hyper: Hyperparameters, key_bits: int) -> None:
    """A resumed session must train exactly as the interrupted one did."""
    saved = Hyperparameters.from_dict(state["hyperparameters"])
    mine = dataclasses.replace(hyper, parties=saved.parties, steps_per_epoch=saved.steps_per_epoch)
    changed = [f.name for f in dataclasses.fields(Hyperparameters) if getattr(mine, f.name) != getattr(saved, f.name)]
    if changed:
        name = changed[0]
        raise ConfigurationError(
            f"Cannot resume: the checkpoint was trained with {name}={getattr(saved, name)!r}, this run asks for "
            f"{getattr(mine, name)!r}; resume with the same settings."
        )
    if int(state["key_bits"]) != key_bits:
        raise ConfigurationError(
            f"Cannot resume: the checkpoint was trained with {state['key_bits']}-bit keys, this run asks for {key_bits}."
        )


def _converged_reason(entry: dict, tol: float) -> str:
    return f"converged: model moved {entry['relative_change']:.4f} < tol={tol} in epoch {entry['epoch']}"


def run_alignment_session(
    bank: Bank,
    transport: Transport,
    *,
    psi_method: str = "ecdh",
    min_intersection: int = DEFAULT_MIN_INTERSECTION,
    progress: ProgressCallback | None = None,
) -> AlignedIndex:
    """Private set intersection only (no key, no training): how many customers are shared.

    Runs the same alignment messages as a training session, under the session's own
    fresh secrets; the analyst app uses it to show the overlap before training.
    """
    notify = progress or (lambda event: None)
    t0 = time.perf_counter()
    notify(ProgressEvent("alignment", 0, 2, "opening session"))
    _deliver(transport, bank, bank.open_session(purpose="alignment", psi_method=psi_method))
    notify(ProgressEvent("alignment", 1, 2, f"private set intersection ({psi_method})", elapsed=time.perf_counter() - t0))
    _deliver(transport, bank, bank.psi_requests())
    _deliver(transport, bank, bank.finish_alignment(min_size=min_intersection))
    notify(ProgressEvent("alignment", 2, 2, f"{bank.aligned.size:,} shared customers", elapsed=time.perf_counter() - t0))
    return bank.aligned


def run_training_session(
    bank: Bank,
    transport: Transport,
    *,
    hyper: Hyperparameters,
    key_bits: int,
    psi_method: str = "ecdh",
    test_size: float = 0.3,
    min_intersection: int = DEFAULT_MIN_INTERSECTION,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> SessionOutcome:
    """Run alignment, federated training and holdout scoring, driven by the bank.

    Parameters
    ----------
    bank:
        The bank role (its table is validated already).
    transport:
        Connects the bank to the fintechs and the coordinator.
    hyper:
        Public training settings announced to every party.
    key_bits:
        Paillier key size the coordinator must generate.
    psi_method:
        ``ecdh`` (default) or ``keyed-hash``.
    test_size:
        Stratified holdout share (the split and batch order follow the bank's session
        seed: a fresh secret unless the bank was given one).
    progress, cancel:
        Progress callback and cancellation poll.
    checkpoint:
        Called after every complete epoch with the bank's state
        (:meth:`Bank.checkpoint_state` plus ``batch_losses`` so far), e.g. to write it
        with :func:`riskfed.checkpoint.write_checkpoint`.
    resume:
        Such a state: continue that session after its last complete epoch, under a fresh
        key, without repeating alignment or the plan (every fintech reloads its own
        checkpoint of the same epoch). ``hyper`` and ``key_bits`` must equal the
        checkpoint's; the final model equals an uninterrupted run's.

    Raises
    ------
    AlignmentError, ProtocolError, CryptoError, TransportError, ConfigurationError, Cancelled
    """
    notify = progress or (lambda event: None)
    timings: dict[str, float] = {}

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("Training was cancelled; nothing was saved.")

    t0 = time.perf_counter()
    batch_losses: list[dict] = []
    if resume is None:
        notify(ProgressEvent("alignment", 0, 3, "opening session"))
        _deliver(transport, bank, bank.open_session(key_bits=key_bits, psi_method=psi_method))
        timings["key_setup"] = time.perf_counter() - t0
        check_cancel()

        t1 = time.perf_counter()
        notify(ProgressEvent("alignment", 1, 3, f"private set intersection ({psi_method})", elapsed=t1 - t0))
        _deliver(transport, bank, bank.psi_requests())
        _deliver(transport, bank, bank.finish_alignment(min_size=min_intersection))
        timings["alignment"] = time.perf_counter() - t1
        notify(ProgressEvent("alignment", 3, 3, f"{bank.aligned.size:,} shared customers", elapsed=time.perf_counter() - t0))
        check_cancel()

        t2 = time.perf_counter()
        _deliver(transport, bank, bank.plan_training(hyper, test_size=test_size))
    else:
        _check_resume(resume, hyper, key_bits)
        bank.restore_state(resume)
        notify(ProgressEvent("alignment", 0, 1, f"resuming session {bank.session_id} after epoch {len(bank.history)}"))
        _deliver(transport, bank, bank.resume_session())
        bank.done("session_ready")
        timings["key_setup"] = time.perf_counter() - t0
        timings["alignment"] = 0.0
        notify(ProgressEvent("alignment", 1, 1, f"{bank.aligned.size:,} shared customers (from the checkpoint)", elapsed=timings["key_setup"]))
        batch_losses = [dict(b) for b in resume.get("batch_losses", [])]
        check_cancel()
        t2 = time.perf_counter()
    _deliver(transport, bank, [bank.coordinator_plan()])
    batches_per_epoch = len(bank.epoch_batches(0))
    total = batches_per_epoch * hyper.max_epochs
    start_epoch = len(bank.history)
    done = start_epoch * batches_per_epoch
    stop_reason = f"reached max_epochs={hyper.max_epochs}"
    if bank.history and bank.history[-1]["converged"]:
        # The interrupted session had already converged: stop straight away.
        stop_reason = _converged_reason(bank.history[-1], hyper.tol)
        start_epoch = hyper.max_epochs
    for epoch in range(start_epoch, hyper.max_epochs):
        losses = []
        for b, rows in enumerate(bank.epoch_batches(epoch)):
            check_cancel()
            _deliver(transport, bank, bank.batch_requests(epoch, b, rows))
            _deliver(transport, bank, bank.residual_messages())
            _deliver(transport, bank, [bank.masked_gradient()])
            loss = bank.last_batch_loss
            if loss is not None:
                losses.append(loss)
                batch_losses.append({"epoch": epoch + 1, "batch": b + 1, "loss": loss})
            done += 1
            notify(
                ProgressEvent(
                    "training",
                    done,
                    total,
                    f"epoch {epoch + 1}, batch {b + 1}/{batches_per_epoch}",
                    epoch=epoch + 1,
                    loss=loss,
                    elapsed=time.perf_counter() - t2,
                )
            )
        _deliver(transport, bank, bank.epoch_end_messages(epoch))
        entry = bank.finish_epoch(epoch, losses)
        entry["seconds"] = time.perf_counter() - t2
        if checkpoint is not None:
            checkpoint(bank.checkpoint_state() | {"batch_losses": [dict(b) for b in batch_losses]})
        if entry["converged"]:
            stop_reason = _converged_reason(entry, hyper.tol)
            break
    _deliver(transport, bank, bank.stop_messages(stop_reason))
    timings["training"] = time.perf_counter() - t2
    notify(ProgressEvent("training", total, total, stop_reason, elapsed=timings["training"]))

    t3 = time.perf_counter()
    notify(ProgressEvent("evaluation", 0, 1, "scoring the holdout"))
    _deliver(transport, bank, bank.score_requests(bank.holdout_rows))
    z = bank.aligned_scores(bank.holdout_rows)
    timings["evaluation"] = time.perf_counter() - t3
    notify(ProgressEvent("evaluation", 1, 1, "done", elapsed=timings["evaluation"]))

    return SessionOutcome(
        aligned=bank.aligned,
        train_rows=bank.train_rows,
        holdout_rows=bank.holdout_rows,
        holdout_scores=1.0 / (1.0 + np.exp(-z)),
        holdout_labels=bank.y_aligned[bank.holdout_rows],
        history=list(bank.history),
        batch_losses=batch_losses,
        timings=timings,
        epochs=len(bank.history),
        stop_reason=stop_reason,
        key_bits=bank.public_key.key_bits,
        key_fingerprint=bank.public_key.fingerprint,
        session_id=bank.session_id,
        hyperparameters=hyper.to_dict(),
        traffic=transport.stats.with_peers(bank.name, bank.peer_traffic),
        party_features=bank.party_features,
    )
