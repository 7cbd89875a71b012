"""A training session driven by the bank: open → align → plan → epochs → stop → holdout.

:func:`run_training_session` drives a :class:`~riskfed.roles.bank.Bank` over any
:class:`~riskfed.transport.base.Transport` — in memory for pilots, tests and the app, or
over the network — and returns what the bank may keep: the aligned index, the split,
the training history, the holdout scores and per-phase timings and traffic. Each step
is a method of :class:`TrainingSession`, in the order a session runs them; every
message goes through the one loop, :func:`~riskfed.transport.base.exchange`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from riskfed.alignment.index import AlignedIndex
from riskfed.errors import ConfigurationError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.roles.bank import DEFAULT_MIN_INTERSECTION, Bank
from riskfed.session.progress import ProgressCallback, ProgressEvent, check_cancel, quiet
from riskfed.transport.base import Transport, exchange


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


def check_resume(state: dict, hyper: Hyperparameters, key_bits: int) -> None:
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


class TrainingSession:
    """The steps of one training session, run by :func:`run_training_session`.

    Parameters
    ----------
    bank:
        The bank role (its table is validated already).
    transport:
        Connects the bank to the fintechs and the coordinator.
    hyper:
        Public training settings announced to every party.
    progress, cancel:
        Progress callback and cancellation poll (:mod:`riskfed.session.progress`).
    """

    def __init__(
        self,
        bank: Bank,
        transport: Transport,
        hyper: Hyperparameters,
        *,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> None:
        self.bank = bank
        self.transport = transport
        self.hyper = hyper
        self.notify = progress or quiet
        self.cancel = cancel
        self.timings: dict[str, float] = {}
        self.batch_losses: list[dict] = []
        self.stop_reason = f"reached max_epochs={hyper.max_epochs}"
        self._started = time.perf_counter()
        self._training_started = self._started
        self._total_batches = 0

    def send(self, messages) -> None:
        """Deliver the bank's messages and everything they lead to."""
        exchange(self.transport, self.bank, messages)

    # -- a new session -----------------------------------------------------------------
    def open(self, *, key_bits: int, psi_method: str) -> None:
        """Step 1: open the session; the coordinator makes the key."""
        self.notify(ProgressEvent("alignment", 0, 3, "opening session"))
        self.send(self.bank.open_session(key_bits=key_bits, psi_method=psi_method))
        self.timings["key_setup"] = time.perf_counter() - self._started
        check_cancel(self.cancel)

    def align(self, *, psi_method: str, min_intersection: int) -> None:
        """Step 2: private set intersection; every fintech learns its shared rows."""
        t1 = time.perf_counter()
        self.notify(ProgressEvent("alignment", 1, 3, f"private set intersection ({psi_method})", elapsed=t1 - self._started))
        self.send(self.bank.psi_requests())
        self.send(self.bank.finish_alignment(min_size=min_intersection))
        self.timings["alignment"] = time.perf_counter() - t1
        shared = f"{self.bank.aligned.size:,} shared customers"
        self.notify(ProgressEvent("alignment", 3, 3, shared, elapsed=time.perf_counter() - self._started))
        check_cancel(self.cancel)

    def plan(self, *, test_size: float) -> None:
        """Step 3: split the shared customers and announce the plan to the fintechs."""
        self._training_started = time.perf_counter()
        self.send(self.bank.plan_training(self.hyper, test_size=test_size))

    # -- a resumed session -------------------------------------------------------------
    def resume(self, state: dict, *, key_bits: int) -> None:
        """Steps 1–3 of an interrupted session: restore the bank's checkpoint and reopen
        the session under a fresh key (alignment and the plan are not repeated)."""
        check_resume(state, self.hyper, key_bits)
        bank = self.bank
        bank.restore_state(state)
        self.notify(ProgressEvent("alignment", 0, 1, f"resuming session {bank.session_id} after epoch {len(bank.history)}"))
        self.send(bank.resume_session())
        self.timings["key_setup"] = time.perf_counter() - self._started
        self.timings["alignment"] = 0.0
        shared = f"{bank.aligned.size:,} shared customers (from the checkpoint)"
        self.notify(ProgressEvent("alignment", 1, 1, shared, elapsed=self.timings["key_setup"]))
        self.batch_losses = [dict(b) for b in state.get("batch_losses", [])]
        check_cancel(self.cancel)
        self._training_started = time.perf_counter()

    # -- training ----------------------------------------------------------------------
    def announce_plan(self) -> None:
        """Step 4: the coordinator hears the plan (each party's weights, the row count)."""
        self.send([self.bank.coordinator_plan()])

    def run_batch(self, epoch: int, batch: int, rows: np.ndarray) -> float | None:
        """One round: encrypted scores → residuals → masked gradients → updates."""
        self.send(self.bank.batch_requests(epoch, batch, rows))
        self.send(self.bank.residual_messages())
        self.send([self.bank.masked_gradient()])
        loss = self.bank.last_batch_loss
        if loss is not None:
            self.batch_losses.append({"epoch": epoch + 1, "batch": batch + 1, "loss": loss})
        return loss

    def run_epoch(self, epoch: int, done: int, total: int) -> dict:
        """Every batch of ``epoch``, then the parties' epoch reports; the history entry."""
        batches = self.bank.epoch_batches(epoch)
        losses = []
        for b, rows in enumerate(batches):
            check_cancel(self.cancel)
            loss = self.run_batch(epoch, b, rows)
            if loss is not None:
                losses.append(loss)
            done += 1
            self.notify(
                ProgressEvent(
                    "training", done, total, f"epoch {epoch + 1}, batch {b + 1}/{len(batches)}",
                    epoch=epoch + 1, loss=loss, elapsed=time.perf_counter() - self._training_started,
                )
            )
        self.send(self.bank.epoch_end_messages(epoch))
        entry = self.bank.finish_epoch(epoch, losses)
        entry["seconds"] = time.perf_counter() - self._training_started
        return entry

    def train(self, checkpoint: Callable[[dict], None] | None = None) -> None:
        """Epochs until ``max_epochs`` or convergence (from the checkpoint's next epoch)."""
        hyper, bank = self.hyper, self.bank
        per_epoch = len(bank.epoch_batches(0))
        total = self._total_batches = per_epoch * hyper.max_epochs
        start = len(bank.history)
        if bank.history and bank.history[-1]["converged"]:
            # The interrupted session had already converged: stop straight away.
            self.stop_reason = _converged_reason(bank.history[-1], hyper.tol)
            start = hyper.max_epochs
        for epoch in range(start, hyper.max_epochs):
            entry = self.run_epoch(epoch, epoch * per_epoch, total)
            if checkpoint is not None:
                checkpoint(bank.checkpoint_state() | {"batch_losses": [dict(b) for b in self.batch_losses]})
            if entry["converged"]:
                self.stop_reason = _converged_reason(entry, hyper.tol)
                break

    def stop(self) -> None:
        """Step 5: tell every party to stop; each keeps its own final weights."""
        self.send(self.bank.stop_messages(self.stop_reason))
        self.timings["training"] = time.perf_counter() - self._training_started
        total = self._total_batches
        self.notify(ProgressEvent("training", total, total, self.stop_reason, elapsed=self.timings["training"]))

    def evaluate_holdout(self) -> np.ndarray:
        """Step 6: the federated log-odds of the holdout (each fintech sends its part)."""
        t3 = time.perf_counter()
        self.notify(ProgressEvent("evaluation", 0, 1, "scoring the holdout"))
        self.send(self.bank.score_requests(self.bank.holdout_rows))
        z = self.bank.aligned_scores(self.bank.holdout_rows)
        self.timings["evaluation"] = time.perf_counter() - t3
        self.notify(ProgressEvent("evaluation", 1, 1, "done", elapsed=self.timings["evaluation"]))
        return z

    def outcome(self, z: np.ndarray) -> SessionOutcome:
        """What the bank keeps."""
        bank = self.bank
        return SessionOutcome(
            aligned=bank.aligned,
            train_rows=bank.train_rows,
            holdout_rows=bank.holdout_rows,
            holdout_scores=1.0 / (1.0 + np.exp(-z)),
            holdout_labels=bank.y_aligned[bank.holdout_rows],
            history=list(bank.history),
            batch_losses=self.batch_losses,
            timings=self.timings,
            epochs=len(bank.history),
            stop_reason=self.stop_reason,
            key_bits=bank.public_key.key_bits,
            key_fingerprint=bank.public_key.fingerprint,
            session_id=bank.session_id,
            hyperparameters=self.hyper.to_dict(),
            traffic=self.transport.stats.with_peers(bank.name, bank.peer_traffic),
            party_features=bank.party_features,
        )


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
    session = TrainingSession(bank, transport, hyper, progress=progress, cancel=cancel)
    if resume is None:
        session.open(key_bits=key_bits, psi_method=psi_method)
        session.align(psi_method=psi_method, min_intersection=min_intersection)
        session.plan(test_size=test_size)
    else:
        session.resume(resume, key_bits=key_bits)
    session.announce_plan()
    session.train(checkpoint)
    session.stop()
    return session.outcome(session.evaluate_holdout())
