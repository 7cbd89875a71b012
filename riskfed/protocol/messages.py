"""One immutable message type per protocol step.

Every message carries the same header: protocol version (added by the codec), session
id, sender, recipient and round. ``round`` numbers the step within the session (alignment
is round 0, training batch ``b`` of epoch ``e`` is round ``(e, b)`` flattened by the bank
as ``e * 1_000_000 + b + 1``, scoring requests count on from there) so a replayed or
stale message is refused. Messages that carry Paillier values also carry the key
fingerprint.

Ciphertext vectors are fixed-width big-endian byte strings (see
:func:`riskfed.crypto.paillier.to_bytes`); row positions and plain numbers are numpy
arrays of a declared dtype. The codec (:mod:`riskfed.protocol.codec`) never pickles.

Who sends what (B = bank, F = a fintech, C = coordinator)::

    SessionOpen          B → F, C   session id, purpose (training, resume, scoring), parties,
                                    parameters, the epoch a resumed session continues from
    KeyRequest           F → C      a fintech asks the coordinator itself for the key
    PublicKeyAnnounce    C → B, F   n, h_s, fingerprint (reply to SessionOpen/KeyRequest)
    SessionReady         F → B      the fintech's row count and the key it received
    PsiBlinded           B → F      H(id)^a for the bank's ids (ECDH, bank-shuffled)
    PsiDoubleBlinded     F → B      (H(id)^a)^b in the same order + H(id')^b, shuffled
    HashKeyShare         B → F      the keyed-hash secret (never sent to C)
    HashedIds            F → B      HMAC(key, id') in fintech-shuffled order
    PsiResult            B → F      intersection as positions in the fintech's list
    TrainingPlan         B → F, C   training rows (to C only their number), hyper-parameters,
                                    to C each party's number of weights
    PlanAccepted         F → B, C   the fintech's number of weights and the ciphertexts it
                                    will send per round (told to C directly, too)
    BatchRequest         B → F      row positions of one mini-batch
    EncryptedScores      F → B      [[u_k]] (and [[u_k^2]]) for the batch rows
    EncryptedResiduals   B → F      [[e]] for the batch rows
    RandomnessRequest    B/F → C    how many fresh DJN randomizers this round needs
    Randomness           C → B/F    h_s^r mod n^2, each to be used once
    MaskedGradient       B/F → C    [[g + m]] per feature
    DecryptedMasked      C → B/F    g + m per feature
    BatchDone            F → B      [[loss share]] (optional) after the fintech updated
    EpochReport          F → B      mean squares of the fintech's score change and scores
    TrainingStop         B → F, C   converged / epochs exhausted
    ScoreRequest         B → F      aligned rows, positions in the fintech's PSI list,
                                    or keyed-hash digests of applicants
    PartialScores        F → B      u_k for the requested rows it knows (scoring time)
    Ack                  any        acknowledgement carrying no data
    ErrorNotice          any        a party aborts the session, with a reason
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from riskfed import settings

PROTOCOL_VERSION = 1

BANK = "bank"
COORDINATOR = "coordinator"


def fintech_name(k: int) -> str:
    """Canonical name of the k-th fintech (1-based)."""
    return f"fintech_{k}"


@dataclass(frozen=True)
class Message:
    """Header common to every protocol message."""

    session_id: str
    sender: str
    recipient: str
    round: int

    STEP: ClassVar[str] = "message"


@dataclass(frozen=True)
class SessionOpen(Message):
    purpose: str = "training"
    parties: tuple[str, ...] = ()
    key_bits: int = 2048
    allow_insecure_key: bool = False
    psi_method: str = "ecdh"
    id_normalization: dict = field(default_factory=dict)
    # purpose "resume": continue session ``session_id`` after this many complete epochs,
    # from each party's own checkpoint and under a fresh key (see riskfed.checkpoint).
    resume_epoch: int = 0
    STEP: ClassVar[str] = "session_open"


@dataclass(frozen=True)
class KeyRequest(Message):
    STEP: ClassVar[str] = "key_request"


@dataclass(frozen=True)
class PublicKeyAnnounce(Message):
    n: bytes = b""
    h_s: bytes = b""
    fingerprint: str = ""
    STEP: ClassVar[str] = "public_key"


@dataclass(frozen=True)
class SessionReady(Message):
    rows: int = 0
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "session_ready"


@dataclass(frozen=True)
class PsiBlinded(Message):
    points: np.ndarray = field(default_factory=lambda: np.empty(0, "S32"))
    STEP: ClassVar[str] = "psi_blinded"


@dataclass(frozen=True)
class PsiDoubleBlinded(Message):
    double_blinded: np.ndarray = field(default_factory=lambda: np.empty(0, "S32"))
    partner_blinded: np.ndarray = field(default_factory=lambda: np.empty(0, "S32"))
    STEP: ClassVar[str] = "psi_double_blinded"


@dataclass(frozen=True)
class HashKeyShare(Message):
    key: bytes = b""
    purpose: str = "alignment"
    STEP: ClassVar[str] = "hash_key"


@dataclass(frozen=True)
class HashedIds(Message):
    digests: np.ndarray = field(default_factory=lambda: np.empty(0, "S32"))
    STEP: ClassVar[str] = "hashed_ids"


@dataclass(frozen=True)
class PsiResult(Message):
    positions: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    bank_rows: int = 0
    STEP: ClassVar[str] = "psi_result"


@dataclass(frozen=True)
class TrainingPlan(Message):
    train_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    holdout_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    hyperparameters: dict = field(default_factory=dict)
    key_fingerprint: str = ""
    # The number of training rows (the coordinator gets no positions, only this).
    train_size: int = 0
    # To the coordinator: party → its number of weights (features; the bank's include
    # the intercept), from which the coordinator computes each party's allowance.
    party_weights: dict = field(default_factory=dict)
    STEP: ClassVar[str] = "training_plan"


@dataclass(frozen=True)
class PlanAccepted(Message):
    slots: int = 0
    features: int = 0
    STEP: ClassVar[str] = "plan_accepted"


@dataclass(frozen=True)
class BatchRequest(Message):
    epoch: int = 0
    batch: int = 0
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    STEP: ClassVar[str] = "batch_request"


@dataclass(frozen=True)
class EncryptedScores(Message):
    ciphertexts: bytes = b""
    squares: bytes = b""
    count: int = 0
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "encrypted_scores"


@dataclass(frozen=True)
class EncryptedResiduals(Message):
    ciphertexts: bytes = b""
    count: int = 0
    key_fingerprint: str = ""
    track_loss: bool = True
    STEP: ClassVar[str] = "encrypted_residuals"


@dataclass(frozen=True)
class RandomnessRequest(Message):
    count: int = 0
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "randomness_request"


@dataclass(frozen=True)
class Randomness(Message):
    values: bytes = b""
    count: int = 0
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "randomness"


@dataclass(frozen=True)
class MaskedGradient(Message):
    ciphertexts: bytes = b""
    count: int = 0
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "masked_gradient"


@dataclass(frozen=True)
class DecryptedMasked(Message):
    values: bytes = b""
    count: int = 0
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "decrypted_masked"


@dataclass(frozen=True)
class BatchDone(Message):
    loss_share: bytes = b""
    key_fingerprint: str = ""
    STEP: ClassVar[str] = "batch_done"


@dataclass(frozen=True)
class EpochReport(Message):
    epoch: int = 0
    score_change_sq: float = 0.0
    score_norm_sq: float = 0.0
    STEP: ClassVar[str] = "epoch_report"


@dataclass(frozen=True)
class EpochEnd(Message):
    epoch: int = 0
    STEP: ClassVar[str] = "epoch_end"


@dataclass(frozen=True)
class TrainingStop(Message):
    epochs: int = 0
    reason: str = ""
    STEP: ClassVar[str] = "training_stop"


@dataclass(frozen=True)
class ScoreRequest(Message):
    index: str = "aligned"
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    digests: np.ndarray = field(default_factory=lambda: np.empty(0, "S32"))
    STEP: ClassVar[str] = "score_request"


@dataclass(frozen=True)
class PartialScores(Message):
    scores: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    known: np.ndarray = field(default_factory=lambda: np.empty(0, np.bool_))
    STEP: ClassVar[str] = "partial_scores"


@dataclass(frozen=True)
class Ack(Message):
    STEP: ClassVar[str] = "ack"


@dataclass(frozen=True)
class TrafficReport(Message):
    """A party service's own traffic in the session, sent to the bank with its answer to
    ``TrainingStop`` so the bank's report covers links it is not on (a fintech and the
    coordinator). Counts and byte totals per (sender, recipient, step) only."""

    senders: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    messages: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sizes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    STEP: ClassVar[str] = "traffic_report"


@dataclass(frozen=True)
class ErrorNotice(Message):
    error_type: str = ""
    reason: str = ""
    STEP: ClassVar[str] = "error"


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.STEP: cls
    for cls in (
        SessionOpen,
        KeyRequest,
        PublicKeyAnnounce,
        SessionReady,
        PsiBlinded,
        PsiDoubleBlinded,
        HashKeyShare,
        HashedIds,
        PsiResult,
        TrainingPlan,
        PlanAccepted,
        BatchRequest,
        EncryptedScores,
        EncryptedResiduals,
        RandomnessRequest,
        Randomness,
        MaskedGradient,
        DecryptedMasked,
        BatchDone,
        EpochReport,
        EpochEnd,
        TrainingStop,
        ScoreRequest,
        PartialScores,
        Ack,
        TrafficReport,
        ErrorNotice,
    )
}


# Rounds: 0 for a session's opening and alignment; epoch * ROUND_STRIDE + batch + 1 for a
# training batch; the last slot of an epoch's block for its end (and of the block after
# the last epoch for the stop); scoring rounds from SCORING_ROUND_BASE on, above every
# training round (settings.MAX_EPOCHS bounds the epochs).
ROUND_STRIDE = 1_000_000
EPOCH_END_BATCH = ROUND_STRIDE - 1
SCORING_ROUND_BASE = 10**12


def round_of(epoch: int, batch: int) -> int:
    """The round number of training batch ``batch`` (0-based) in ``epoch`` (0-based)."""
    return epoch * ROUND_STRIDE + batch + 1


def epoch_end_round(epoch: int) -> int:
    """The round of the end of ``epoch`` (0-based): after every batch of that epoch."""
    return round_of(epoch, EPOCH_END_BATCH)


def stop_round(epochs: int) -> int:
    """The round of the stop after ``epochs`` complete epochs."""
    return epoch_end_round(epochs)


def epoch_and_batch(rnd: int) -> tuple[int, int]:
    """The (0-based) epoch and batch of a training round (inverse of :func:`round_of`)."""
    return divmod(rnd - 1, ROUND_STRIDE)


# The declared limits (riskfed.settings) keep every training round below the scoring rounds
# and every batch below the end-of-epoch slot.
assert epoch_end_round(settings.MAX_EPOCHS - 1) < SCORING_ROUND_BASE
assert settings.MAX_STEPS_PER_EPOCH < EPOCH_END_BATCH


def completed_epochs(rnd: int) -> int | None:
    """The number of epochs a checkpoint taken at round ``rnd`` has completed, or
    ``None`` if ``rnd`` is not the end of an epoch (nor the start of a session)."""
    epoch, rest = divmod(rnd, ROUND_STRIDE)
    return None if rest else epoch
