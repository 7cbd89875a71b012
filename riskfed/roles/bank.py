"""The bank (active party, label holder) — the party that drives a session.

Threat model for this role (the whole table, and what a cheating party can still do, are
in docs/threat-model.md):

* **Holds** customer ids, default labels ``y``, its features ``X_B``, its preprocessing,
  weights and intercept, its ECDH secret, and the session secret (256 bits drawn afresh
  per session; never sent, logged or reported, kept only in its own checkpoint).
* **Sends** to fintechs: blinded ids or a keyed-hash key, the intersection as positions
  in each fintech's list (in a secret order), the training plan, batch positions and
  ``[[e]]`` under fresh randomness. To the coordinator: the session parameters, the plan
  (row count and each party's number of weights), randomness requests and its masked
  gradient and aggregate loss.
* **Receives** double-blinded ids or digests, ``[[u_k]]`` (unreadable without the
  private key), encrypted loss shares, two aggregates per fintech and epoch, its own
  masked values decrypted, randomizers, traffic counts — and at evaluation and scoring
  time the plaintext partial scores ``u_k`` of the rows it scores.
* **Learns** the intersection, its own gradients, the aggregate training loss per batch
  and the partial scores of the rows it scores (accepted); never a fintech feature value
  or weight, nor any per-row fintech partial score during training.

Its steps are read in session order in three parts: :mod:`riskfed.roles.bank_alignment`
(opening, alignment), :mod:`riskfed.roles.bank_training` (the plan, each round's four
steps, epochs) and :mod:`riskfed.roles.bank_checkpoint`; holdout scoring and the model
part are here. The scoring side is :class:`~riskfed.roles.bank_scoring.ScoringBank`.
"""

from __future__ import annotations

import numpy as np

from riskfed import settings
from riskfed.alignment.index import AlignedIndex
from riskfed.alignment.normalize import IdNormalization
from riskfed.crypto.keys import PublicKey
from riskfed.data.preprocess import Preprocessor
from riskfed.data.schema import PartyTable
from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.learning.linear.hyperparameters import MAX_FINTECHS, Hyperparameters
from riskfed.learning.linear.local import LocalModel
from riskfed.learning.linear.schedule import check_seed
from riskfed.protocol.messages import BANK, SCORING_ROUND_BASE, PartialScores, ScoreRequest
from riskfed.roles.bank_alignment import DEFAULT_MIN_INTERSECTION, BankAlignmentSteps
from riskfed.roles.bank_checkpoint import BankCheckpointSteps
from riskfed.roles.bank_training import BankTrainingSteps
from riskfed.roles.base import Role, handles
from riskfed.roles.state import BankAlignment, BankBatch, EpochClose, TrainingPlanState

PSI_METHODS = settings.param("psi").constraints[0].values

__all__ = ["DEFAULT_MIN_INTERSECTION", "PSI_METHODS", "Bank"]


class Bank(BankAlignmentSteps, BankTrainingSteps, BankCheckpointSteps, Role):
    """The label holder and session driver.

    Parameters
    ----------
    table:
        The bank's validated table (with labels).
    fintechs:
        Names of the fintechs in the session.
    normalization:
        The id normalisation rule announced to every party.
    n_jobs:
        Local worker processes for the bank's kernels.
    seed:
        ``None`` (default): a fresh 256-bit secret per session decides the order of the
        shared rows, the holdout split and the batches. An int fixes them, for
        reproducible tests and pilots — it reveals: whoever knows it and the class counts
        can replay the split.
    """

    def __init__(
        self,
        table: PartyTable,
        fintechs: list[str],
        *,
        normalization: IdNormalization | None = None,
        n_jobs: int = 1,
        allow_insecure_key: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(BANK)
        check_seed(seed, name="seed", owner="Bank")
        if table.labels is None:
            raise ConfigurationError("The bank's table needs a label column.", party=BANK)
        if not fintechs:
            raise ConfigurationError("A session needs at least one fintech.", party=BANK)
        if len(fintechs) > MAX_FINTECHS or len(set(fintechs)) != len(fintechs):
            raise ConfigurationError(
                f"A session has 1 to {MAX_FINTECHS} distinct fintechs (the encoding's bound); got {len(fintechs)}"
                f"{'' if len(set(fintechs)) == len(fintechs) else ' with repeats'}.",
                party=BANK,
            )
        # What the bank is given.
        self.table = table
        self.fintechs = list(fintechs)
        self.normalization = normalization or IdNormalization()
        self.n_jobs = n_jobs
        self.allow_insecure_key = allow_insecure_key
        self.seed = None if seed is None else int(seed)
        self._norm_ids = self.normalization.apply(table.ids, party=BANK, column=table.id_column)
        # The session (open_session or restore_state).
        self.purpose: str | None = None
        self.psi_method: str | None = None
        self.key_bits: int | None = None
        self.public_key: PublicKey | None = None
        self._session_seed: int | None = None
        self.fintech_rows: dict[str, int] = {}  # fintech → its table's row count
        # Alignment, then its result.
        self._alignment: BankAlignment | None = None
        self.aligned: AlignedIndex | None = None
        # The training plan, each fintech's declared features and ciphertexts per round,
        # the round and the epoch in flight, and what training leaves.
        self.plan: TrainingPlanState | None = None
        self._fintech_weights: dict[str, int] = {}
        self._fintech_slots: dict[str, int] = {}
        self._batch: BankBatch | None = None
        self._epoch: EpochClose | None = None
        self.history: list[dict] = []
        self.weights: np.ndarray | None = None
        # Traffic counts reported by party services at the end of training (network runs).
        self.peer_traffic: dict[str, list[dict]] = {}
        # Holdout scoring: each fintech's partial scores of the requested rows.
        self._partials: dict[str, PartialScores] = {}

    def __repr__(self) -> str:
        return f"Bank(rows={self.table.n_rows}, fintechs={self.fintechs}, session={self.session_id!r})"

    # -- the plan's parts, by name (None before the plan) ---------------------------------
    @property
    def hyper(self) -> Hyperparameters | None:
        return self.plan.hyper if self.plan is not None else None

    @property
    def local(self) -> LocalModel | None:
        return self.plan.local if self.plan is not None else None

    @property
    def train_rows(self) -> np.ndarray | None:
        return self.plan.train_rows if self.plan is not None else None

    @property
    def holdout_rows(self) -> np.ndarray | None:
        return self.plan.holdout_rows if self.plan is not None else None

    @property
    def y_aligned(self) -> np.ndarray | None:
        return self.plan.y_aligned if self.plan is not None else None

    @property
    def preprocessor(self) -> Preprocessor | None:
        return self.plan.preprocessor if self.plan is not None else None

    @property
    def X_full(self) -> np.ndarray | None:
        return self.plan.X_full if self.plan is not None else None

    @property
    def party_features(self) -> dict[str, int]:
        """Each party's number of features, as it declared them (public within the session)."""
        own = {BANK: self.local.n_features} if self.plan is not None else {}
        return own | dict(self._fintech_weights)

    @property
    def session_seed(self) -> int | None:
        """The session's seed (secret: never send, log or report it). The plaintext twin
        (:func:`riskfed.learning.linear.reference.fit_reference`) needs it to draw the same batches."""
        return self._session_seed

    # -- holdout scoring ---------------------------------------------------------------
    def score_requests(self, rows: np.ndarray, *, index: str = "aligned", round: int = SCORING_ROUND_BASE) -> list[ScoreRequest]:
        """Ask every fintech for its partial scores of aligned positions."""
        self._partials = {}
        self.expect(PartialScores, *self.fintechs)
        return [self.reply(ScoreRequest, f, round, index=index, rows=np.asarray(rows, dtype=np.int64)) for f in self.fintechs]

    @handles(PartialScores)
    def _on_partial_scores(self, msg: PartialScores):
        if not np.isfinite(msg.scores).all():
            raise ProtocolError(f"{msg.sender} returned non-finite partial scores.", party=msg.sender)
        self._partials[msg.sender] = msg
        return []

    def aligned_scores(self, rows: np.ndarray) -> np.ndarray:
        """Federated log-odds for aligned positions: bank part + every fintech's part."""
        rows = np.asarray(rows, dtype=np.int64)
        z = self.X_full[rows] @ self.weights[:-1] + self.weights[-1]
        for f in self.fintechs:
            part = self._partials.get(f)
            if part is None or len(part.scores) != len(rows):
                raise ProtocolError(f"bank: {f} did not return one partial score per requested row.", party=f)
            z = z + part.scores
        self.done(PartialScores)
        return z

    # -- model part -------------------------------------------------------------------
    def export_model(self) -> dict:
        """The bank's model part: its preprocessing, weights and intercept — no fintech weights."""
        return {
            "party": BANK,
            "kind": "riskfed-bank-model",
            "format_version": 1,
            "id_normalization": self.normalization.to_dict(),
            "preprocessing": self.preprocessor.to_dict(),
            "feature_names": self.preprocessor.feature_names_,
            "weights": self.weights[:-1].tolist(),
            "intercept": float(self.weights[-1]),
            "fintechs": list(self.fintechs),
            "id_column": self.table.id_column,
        }
