"""The bank's checkpoints (part of :class:`~riskfed.roles.bank.Bank`): its state at an
epoch boundary, restoring it, and resuming the session under a fresh key."""

from __future__ import annotations

import numpy as np

from riskfed.alignment.index import AlignedIndex
from riskfed.alignment.normalize import IdNormalization
from riskfed.crypto.keys import check_key_bits
from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.protocol.messages import BANK, COORDINATOR, PlanAccepted, PublicKeyAnnounce, SessionOpen, SessionReady

CHECKPOINT_KIND = "riskfed-bank-checkpoint"


class BankCheckpointSteps:
    """Checkpoint and resume; state lives on :class:`~riskfed.roles.bank.Bank`."""

    def checkpoint_state(self) -> dict:
        """The bank's state at an epoch boundary, for :mod:`riskfed.checkpoint`.

        Alignment (row positions only), the split, the public plan, the epoch history,
        the optimizer state and the session secret (the batches of the remaining epochs
        come from it; this file is the only place it is written). No key and no
        ciphertext: every ciphertext of a batch is consumed within it, so a resumed
        session can run under a fresh key.
        """
        if self.aligned is None or self.plan is None:
            raise ProtocolError("bank: nothing to checkpoint before training starts.", party=BANK)
        a = self.aligned
        return {
            "kind": CHECKPOINT_KIND,
            "party": BANK,
            "session_id": self.session_id,
            # The seed the caller fixed (0 if none) and the session secret drawn from it or
            # afresh (hex): a resumed session must draw the same batches.
            "seed": int(self.seed or 0),
            "secret": f"{self._session_seed:x}",
            "psi_method": self.psi_method,
            "key_bits": int(self.key_bits),
            "fintechs": list(self.fintechs),
            "fintech_rows": {k: int(v) for k, v in self.fintech_rows.items()},
            "slots": {k: int(v) for k, v in self._fintech_slots.items()},
            "id_normalization": self.normalization.to_dict(),
            "hyperparameters": self.hyper.to_dict(),
            "history": [dict(h) for h in self.history],
            "aligned": {
                "method": a.method,
                "bank_count": int(a.bank_count),
                "partner_counts": {k: int(v) for k, v in a.partner_counts.items()},
                "bank_rows": a.bank_rows,
                "partner_rows": dict(a.partner_rows),
            },
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "local": self.local.get_state(),
        }

    def _saved_seed(self, state: dict) -> int:
        """The checkpoint's session secret; a bank given a seed must be given the same."""
        # Checkpoints without a secret were made when the seed was the session's.
        saved = int(state["secret"], 16) if isinstance(state.get("secret"), str) else int(state.get("secret", state["seed"]))
        if self.seed is not None and saved != self.seed:
            # Never print a drawn secret, only a seed the caller chose.
            made_with = f"seed {saved}" if saved == state["seed"] else "a fresh secret seed"
            raise ConfigurationError(
                f"bank: the checkpoint was made with {made_with}, not {self.seed}; resume with the same seed (or none).",
                party=BANK,
            )
        return saved

    def restore_state(self, state: dict) -> None:
        """Load :meth:`checkpoint_state` into a fresh bank (same table and fintechs; the
        session seed comes from the checkpoint — a bank given a seed must be given the same)."""
        if state.get("kind") != CHECKPOINT_KIND:
            raise ProtocolError("bank: the checkpoint is not a bank checkpoint.", party=BANK)
        if list(state["fintechs"]) != self.fintechs:
            raise ConfigurationError(
                f"bank: the checkpoint was made with fintechs {', '.join(state['fintechs'])}, not {', '.join(self.fintechs)}.",
                party=BANK,
            )
        saved_seed = self._saved_seed(state)
        a = state["aligned"]
        aligned = AlignedIndex(
            bank_rows=a["bank_rows"],
            partner_rows=dict(a["partner_rows"]),
            method=a["method"],
            bank_count=a["bank_count"],
            partner_counts=dict(a["partner_counts"]),
        )
        if aligned.bank_count != self.table.n_rows:
            raise ConfigurationError(
                f"bank: the checkpoint was made on a table of {aligned.bank_count:,} rows; this one has {self.table.n_rows:,}.",
                party=BANK,
            )
        self.aligned = aligned
        self.session_id = state["session_id"]
        self._session_seed = saved_seed
        self.purpose = "training"
        self.psi_method = state["psi_method"]
        self.key_bits = int(state["key_bits"])
        self.normalization = IdNormalization.from_dict(state["id_normalization"])
        self.fintech_rows = dict(state["fintech_rows"])
        self.history = [dict(h) for h in state["history"]]
        self.plan = self._build_plan(
            Hyperparameters.from_dict(state["hyperparameters"]),
            np.asarray(state["train_rows"], dtype=np.int64),
            np.asarray(state["holdout_rows"], dtype=np.int64),
        )
        self.local.set_state(state["local"])
        # Each fintech declares its features again when it resumes; they must fit these.
        self._fintech_slots = {k: int(v) for k, v in state["slots"].items()}
        self._fintech_weights = {}

    def resume_session(self) -> list[SessionOpen]:
        """Messages that resume the restored session after its last complete epoch.

        The coordinator makes a fresh key (it kept none); each fintech reloads its own
        checkpoint of that epoch and fetches the new key. Alignment and the plan are not
        repeated; send :meth:`coordinator_plan` next, then the next epoch's batches.
        """
        if self.plan is None:
            raise ProtocolError("bank: restore a checkpoint before resuming.", party=BANK)
        check_key_bits(self.key_bits, allow_insecure=self.allow_insecure_key, party=BANK)
        self.public_key = None
        common = dict(
            purpose="resume",
            parties=(BANK, COORDINATOR, *self.fintechs),
            key_bits=self.key_bits,
            allow_insecure_key=self.allow_insecure_key,
            psi_method=self.psi_method,
            id_normalization=self.normalization.to_dict(),
            resume_epoch=len(self.history),
        )
        self.expect(PublicKeyAnnounce, COORDINATOR)
        self.expect(SessionReady, *self.fintechs)
        # Each fintech states its features again (to the new coordinator, and to us).
        self.expect(PlanAccepted, *self.fintechs)
        return [self.reply(SessionOpen, t, 0, **common) for t in (COORDINATOR, *self.fintechs)]
