"""The roles' state between messages, as typed records.

Each role creates every record in ``__init__`` (``None`` until its step comes) and
replaces it whole at the step that starts it, so what a role holds at any point of a
session can be read off its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from riskfed.alignment.ecdh import EcdhKey
from riskfed.data.preprocess import Preprocessor
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.local import LocalModel
from riskfed.learning.linear.residuals import ResidualPlan


@dataclass
class BankAlignment:
    """The bank's side of private set intersection, for one session."""

    perm: np.ndarray  # the secret shuffle of its own normalised ids
    ecdh: EcdhKey | None = None  # ECDH: this session's blinding secret
    hash_keys: dict[str, bytes] = field(default_factory=dict)  # keyed hash: one key per fintech
    own_digests: dict[str, np.ndarray] = field(default_factory=dict)
    # fintech → (bank table rows, positions in the fintech's list) of the shared ids
    matches: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    list_sizes: dict[str, int] = field(default_factory=dict)  # fintech → length of its list


@dataclass
class TrainingPlanState:
    """What a party keeps of the training plan: the public settings, the split and its
    own quantised rows with the local model built on them."""

    hyper: Hyperparameters
    train_rows: np.ndarray  # aligned positions used for training (sorted)
    holdout_rows: np.ndarray  # aligned positions held out (sorted; empty at a fintech)
    preprocessor: Preprocessor
    X_full: np.ndarray  # every aligned row, preprocessed (training and holdout)
    local: LocalModel
    y_aligned: np.ndarray | None = None  # the labels of the aligned rows (the bank only)


@dataclass
class BankBatch:
    """One round as the bank sees it, from the batch request to its own update.

    Filled step by step: the coordinator's randomizers and the fintechs' encrypted
    scores (step 1), the residual plan and ``[[e]]`` (step 2), its masks (step 3), the
    batch loss (step 4). What a later step no longer needs is dropped.
    """

    round: int
    rows: np.ndarray
    randomizers: list | None = None
    scores: dict[str, tuple[list, list | None]] = field(default_factory=dict)  # fintech → [[u_k]], [[u_k²]]
    plan: ResidualPlan | None = None
    residuals: list | None = None  # [[e]]
    partner_sum: list | None = None  # [[U]] for the loss column
    square_sum: list | None = None  # [[V]] for the loss column
    loss_shares: dict[str, object] = field(default_factory=dict)  # fintech → [[Σ u_k e]] (or None)
    masks: list[int] | None = None
    loss: float | None = None


@dataclass
class EpochClose:
    """The end of an epoch at the bank: its round and each fintech's two aggregates."""

    round: int
    reports: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class FintechRound:
    """One round as a fintech sees it: the batch, then its masks until it unmasks."""

    rows: np.ndarray
    loss_exponents: np.ndarray | None  # u_k at 2^-12 when it owes the bank a loss share
    plain: np.ndarray | None = None  # encodings waiting for the coordinator's randomizers
    masks: list[int] | None = None
    loss_share: bytes = b""


@dataclass
class ScoringChunk:
    """One chunk of applicants in a scoring session, at the bank."""

    size: int
    matches: dict[str, np.ndarray] = field(default_factory=dict)  # ECDH: fintech → applicant positions it knows
    partials: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # fintech → scores, known
