"""A fintech's checkpoints (part of :class:`~riskfed.roles.fintech.Fintech`): its state at
an epoch boundary, and resuming the checkpointed session under the new coordinator's key."""

from __future__ import annotations

import numpy as np

from riskfed.alignment.normalize import IdNormalization
from riskfed.errors import ProtocolError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    BatchRequest,
    EpochEnd,
    KeyRequest,
    PublicKeyAnnounce,
    SessionOpen,
    TrainingStop,
    completed_epochs,
)
from riskfed.roles.base import check_positions
from riskfed.roles.plan import check_plan_limits

CHECKPOINT_KIND = "riskfed-fintech-checkpoint"


class FintechCheckpointSteps:
    """Checkpoint and resume; state lives on :class:`~riskfed.roles.fintech.Fintech`."""

    def checkpoint_state(self) -> dict:
        """This fintech's state at an epoch boundary, for :mod:`riskfed.checkpoint`.

        Its aligned rows (which of its customers the bank shares, in the session order),
        the training rows, the public hyper-parameters, the last round served and its
        optimizer state. No key and no ciphertext: nothing encrypted outlives a batch.
        """
        if self._local is None or self.aligned_rows is None:
            raise ProtocolError(f"{self.name}: nothing to checkpoint before training starts.", party=self.name)
        return {
            "kind": CHECKPOINT_KIND,
            "party": self.name,
            "session_id": self.session_id,
            "round": int(self._round),
            "id_normalization": self.normalization.to_dict(),
            "hyperparameters": self.hyper.to_dict(),
            "aligned_rows": np.asarray(self.aligned_rows, dtype=np.int64),
            "train_rows": np.asarray(self.plan.train_rows, dtype=np.int64),
            "local": self._local.get_state(),
        }

    def restore_state(self, state: dict) -> None:
        """Arm this (fresh) role to resume the checkpointed session.

        The next ``SessionOpen`` with purpose ``resume`` for that session rebuilds the
        local model from this state and fetches the session's new key from the
        coordinator; alignment and the training plan are not repeated.
        """
        if state.get("kind") != CHECKPOINT_KIND or state.get("party") != self.name:
            raise ProtocolError(f"{self.name}: the checkpoint is not one of {self.name}'s.", party=self.name)
        rows = np.asarray(state["aligned_rows"], dtype=np.int64)
        check_positions(rows, self.table.n_rows, party=self.name, what="checkpointed aligned rows")
        self._resume_state = state

    def _on_resume(self, msg: SessionOpen, parties: int):
        state = self._resume_state
        if state is None or state["session_id"] != msg.session_id:
            raise ProtocolError(
                f"{self.name} has no checkpoint of session {msg.session_id!r} to resume.", party=BANK
            )
        rnd = int(state["round"])
        epoch = completed_epochs(rnd)
        if epoch is None or epoch != msg.resume_epoch:
            raise ProtocolError(
                f"{self.name}'s checkpoint of session {msg.session_id!r} is not the end of epoch {msg.resume_epoch}.", party=BANK
            )
        hyper = Hyperparameters.from_dict(state["hyperparameters"])
        check_plan_limits(
            hyper, len(state["train_rows"]), parties, me=self.name, min_batch_size=self.min_batch_size, max_epochs=self.max_epochs
        )
        self._prepare_local(hyper, state["train_rows"], np.asarray(state["aligned_rows"], dtype=np.int64))
        self._local.set_state(state["local"])
        self.session_id = msg.session_id
        self.purpose = "training"
        self._parties = parties
        self.normalization = IdNormalization.from_dict(state["id_normalization"])
        self._round = rnd
        self._cursor.epoch = epoch  # the checkpoint ends an epoch: its first batch is next
        self._session_key_bits = msg.key_bits
        self._resuming = True
        self._resume_state = None
        self.done(SessionOpen)
        self.expect(PublicKeyAnnounce, COORDINATOR)
        self.expect(BatchRequest, BANK)
        self.expect(EpochEnd, BANK)
        self.expect(TrainingStop, BANK)
        # A fresh key for the resumed session, fetched from the coordinator itself.
        return [self.reply(KeyRequest, COORDINATOR, msg.round)]
