"""A fintech (passive party, feature holder).

Threat model for this role (the whole table, and what a cheating party can still do, are
in docs/threat-model.md):

* **Holds** its customer ids, its features ``X_k``, its preprocessing and weights
  ``w_k`` (never sent), and its ECDH secret for the session.
* **Receives** from the bank: blinded ids or a keyed-hash key, the intersection as
  positions in its own shuffled list, the training plan, batch positions, ``[[e]]``
  (encrypted under the coordinator's key, freshly randomized by the bank) and scoring
  requests. From the coordinator: the public key, its own masked gradient decrypted and
  (by default) the randomizers it encrypts with.
* **Sends** to the bank: double-blinded ids and its own blinded ids (or keyed digests),
  ``[[u_k]]`` per batch, an encrypted loss share, two aggregates per epoch and — at
  scoring time only — plaintext partial scores ``u_k`` of the rows asked about. To the
  coordinator: ``[[g_k + m_k]]`` and how many randomizers a batch needs.
* **Learns** the intersection, which shared customers train and which are held out (a
  split drawn from the bank's per-session secret) and its own gradients (hence the
  minimum batch size); never labels, bank features or weights, or residuals in plaintext.
* **Enforces**, whatever the bank's plan says, its own minimum batch size and epoch cap,
  a plan whose numbers add up and batches in the planned order and size, within the
  training rows, never repeating a row within an epoch; it accepts sessions only from
  the bank, and a running session is not replaced by another opening.
"""

from __future__ import annotations

import secrets

import numpy as np

from riskfed import settings
from riskfed.alignment.ecdh import EcdhKey
from riskfed.alignment.keyed_hash import keyed_digests
from riskfed.alignment.normalize import IdNormalization
from riskfed.crypto import paillier
from riskfed.crypto.keys import PublicKey, check_key_bits
from riskfed.crypto.multiexp import multiexp
from riskfed.data.preprocess import Preprocessor
from riskfed.data.schema import PartyTable
from riskfed.errors import AlignmentError, ConfigurationError, KeyMismatchError, ProtocolError
from riskfed.learning.linear.fixed_point import (
    draw_masks,
    encode_loss_partial,
    encode_partial,
    encode_square,
    mask_bits,
    packed_count,
    packing_slot_bits,
    quantize_features,
)
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.local import LocalModel
from riskfed.learning.linear.residuals import needs_loss_shares, needs_squares
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    Ack,
    BatchDone,
    BatchRequest,
    DecryptedMasked,
    EncryptedResiduals,
    EncryptedScores,
    EpochEnd,
    EpochReport,
    HashedIds,
    HashKeyShare,
    KeyRequest,
    MaskedGradient,
    PlanAccepted,
    PsiBlinded,
    PsiDoubleBlinded,
    PsiResult,
    PublicKeyAnnounce,
    Randomness,
    RandomnessRequest,
    ScoreRequest,
    SessionOpen,
    SessionReady,
    TrainingPlan,
    TrainingStop,
    epoch_end_round,
    round_of,
)
from riskfed.roles.base import (
    Role,
    check_positions,
    handles,
    public_key_from,
    randomizers_from,
    session_fintechs,
    unmask_packed,
)
from riskfed.roles.fintech_checkpoint import FintechCheckpointSteps
from riskfed.roles.fintech_scoring import FintechScoringSteps
from riskfed.roles.plan import EpochCursor, check_plan_limits
from riskfed.roles.state import FintechRound, TrainingPlanState

# A fintech's own limits, whatever the bank's plan says. Batches of at least 256 rows keep
# any one label or partial score buried in an aggregate (docs/threat-model.md); the epoch
# cap bounds how many rounds — hence decryptions — a session can have.
DEFAULT_MIN_BATCH_SIZE = 256
DEFAULT_MAX_EPOCHS = 100


class Fintech(FintechCheckpointSteps, FintechScoringSteps, Role):
    """A feature holder.

    Parameters
    ----------
    name:
        ``fintech_k``.
    table:
        The fintech's validated table (:func:`riskfed.data.schema.validate_table`).
    model:
        A saved model part (from :meth:`export_model`) for scoring sessions.
    allow_insecure_key:
        Test-only: accept a Paillier key below 2048 bits.
    n_jobs:
        Local worker processes for encryption and multi-exponentiation.
    min_batch_size:
        The smallest batch this fintech serves, whatever the bank's plan says: a plan
        whose batches may be smaller is refused, and so is any smaller batch.
    max_epochs:
        The most epochs this fintech trains in one session.
    """

    def __init__(
        self,
        name: str,
        table: PartyTable,
        *,
        model: dict | None = None,
        allow_insecure_key: bool = False,
        n_jobs: int = 1,
        min_batch_size: int = DEFAULT_MIN_BATCH_SIZE,
        max_epochs: int = DEFAULT_MAX_EPOCHS,
    ) -> None:
        super().__init__(name)
        for param, value in (("min_batch_size", min_batch_size), ("max_epochs", max_epochs)):
            settings.check_value(param, value, settings.Interval(int, 1, None, "left"), "Fintech")
        # What the fintech is given, and its own limits.
        self.min_batch_size = min_batch_size
        self.max_epochs = max_epochs
        self.table = table
        self.allow_insecure_key = allow_insecure_key
        self.n_jobs = n_jobs
        # The session (SessionOpen).
        self.purpose: str | None = None
        self.public_key: PublicKey | None = None
        self._session_key_bits: int | None = None
        self._parties = 0
        self.normalization = IdNormalization()
        self._norm_ids: np.ndarray | None = None
        # Alignment: a private shuffle of its rows, its PSI secret or the keyed-hash key.
        self._perm: np.ndarray | None = None
        self._ecdh: EcdhKey | None = None
        self._sent_own_points = False
        self._hash_key: bytes | None = None
        self._digest_lookup: dict[bytes, int] | None = None
        self.aligned_rows: np.ndarray | None = None
        # Training: the plan, where the bank is in it, the round in flight, the last round
        # served; then the model (or a saved model part, for scoring).
        self.plan: TrainingPlanState | None = None
        self._cursor: EpochCursor | None = None
        self._batch: FintechRound | None = None
        self._round = 0
        self.preprocessor: Preprocessor | None = None
        self.weights: np.ndarray | None = None
        # A checkpoint to resume from, and whether the resumed session still needs its key.
        self._resume_state: dict | None = None
        self._resuming = False
        if model is not None:
            self._load_model(model)
        self.expect(SessionOpen, BANK)

    def __repr__(self) -> str:
        return f"Fintech(name={self.name!r}, rows={self.table.n_rows}, session={self.session_id!r})"

    @property
    def hyper(self) -> Hyperparameters | None:
        return self.plan.hyper if self.plan is not None else None

    @property
    def _local(self) -> LocalModel | None:
        return self.plan.local if self.plan is not None else None

    # -- session ----------------------------------------------------------------------
    @handles(SessionOpen)
    def _on_open(self, msg: SessionOpen):
        # Every check before anything changes: a refused opening leaves no trace.
        if msg.purpose not in ("training", "alignment", "scoring", "resume"):
            raise ProtocolError(f"{self.name}: unknown session purpose {msg.purpose!r}.", party=BANK)
        fintechs = session_fintechs(msg, self.name, with_coordinator=msg.purpose in ("training", "resume"))
        if msg.purpose in ("training", "resume"):
            check_key_bits(msg.key_bits, allow_insecure=self.allow_insecure_key and msg.allow_insecure_key, party=self.name)
        if msg.purpose == "resume":
            return self._on_resume(msg, 1 + len(fintechs))
        if msg.purpose == "scoring" and self.weights is None:
            raise ProtocolError(f"{self.name} has no trained model to score with.", party=BANK)
        normalization = IdNormalization.from_dict(msg.id_normalization) if msg.id_normalization else IdNormalization()
        norm_ids = normalization.apply(self.table.ids, party=self.name, column=self.table.id_column)
        self._parties = 1 + len(fintechs)
        self.session_id = msg.session_id
        self.purpose = msg.purpose
        self._ecdh = None  # a fresh PSI secret per session: reuse would link sessions
        self.normalization, self._norm_ids = normalization, norm_ids
        # A fresh private shuffle of our own rows: the bank sees our list in this order only.
        self._perm = np.argsort(np.frombuffer(secrets.token_bytes(8 * len(self._norm_ids)), dtype=np.uint64), kind="stable")
        self._sent_own_points = False
        self.done(SessionOpen)
        self.expect(PsiBlinded, BANK)
        self.expect(HashKeyShare, BANK)
        if msg.purpose == "training":
            self._session_key_bits = msg.key_bits
            self.expect(PublicKeyAnnounce, COORDINATOR)
            # Ask the coordinator itself: a key relayed by the bank could be the bank's own.
            return [self.reply(KeyRequest, COORDINATOR, msg.round)]
        if msg.purpose == "alignment":
            # Alignment only (the analyst's overlap check): no key, no model.
            return [self.reply(SessionReady, BANK, msg.round, rows=self.table.n_rows, key_fingerprint="")]
        self.expect(ScoreRequest, BANK)
        return [self.reply(SessionReady, BANK, msg.round, rows=self.table.n_rows, key_fingerprint="")]

    @handles(PublicKeyAnnounce)
    def _on_public_key(self, msg: PublicKeyAnnounce):
        pk = public_key_from(msg, party=self.name)
        if pk.key_bits != self._session_key_bits:
            raise KeyMismatchError(
                f"{self.name}: the coordinator's key has {pk.key_bits} bits but the session asked for "
                f"{self._session_key_bits}.",
                party=COORDINATOR,
            )
        check_key_bits(pk.key_bits, allow_insecure=self.allow_insecure_key, party=self.name)
        self.public_key = pk
        self.done(PublicKeyAnnounce)
        ready = self.reply(SessionReady, BANK, msg.round, rows=self.table.n_rows, key_fingerprint=pk.fingerprint)
        if self._resuming:
            # The resumed session's coordinator is new: tell it (and the bank) our number
            # of weights again.
            self._resuming = False
            return [self._accepted(COORDINATOR, msg.round), self._accepted(BANK, msg.round), ready]
        return [ready]

    # -- alignment --------------------------------------------------------------------
    def _shuffled_ids(self) -> np.ndarray:
        return self._norm_ids[self._perm]

    @handles(PsiBlinded)
    def _on_psi_blinded(self, msg: PsiBlinded):
        if self._ecdh is None:
            self._ecdh = EcdhKey.generate()
        double = self._ecdh.reblind(msg.points, n_jobs=self.n_jobs, party=self.name)
        own = np.empty(0, "S32")
        if not self._sent_own_points:
            own = self._ecdh.blind(self._shuffled_ids().tolist(), n_jobs=self.n_jobs, party=self.name)
            self._sent_own_points = True
        self.done(HashKeyShare)
        if self.purpose != "scoring":
            self.expect(PsiResult, BANK)
        return [self.reply(PsiDoubleBlinded, BANK, msg.round, double_blinded=double, partner_blinded=own)]

    @handles(HashKeyShare)
    def _on_hash_key(self, msg: HashKeyShare):
        self._hash_key = bytes(msg.key)
        self._digest_lookup = None
        self.done(PsiBlinded)
        if self.purpose != "scoring":
            self.done(HashKeyShare)
            self.expect(PsiResult, BANK)
            digests = keyed_digests(self._shuffled_ids().tolist(), self._hash_key)
            return [self.reply(HashedIds, BANK, msg.round, digests=digests)]
        return [self.reply(Ack, BANK, msg.round)]

    @handles(PsiResult)
    def _on_psi_result(self, msg: PsiResult):
        positions = np.asarray(msg.positions, dtype=np.int64)
        try:
            check_positions(positions, len(self._perm), party=BANK, what="intersection positions")
        except ProtocolError as exc:
            raise AlignmentError(str(exc), party=BANK) from None
        self.aligned_rows = self._perm[positions]
        self.done(PsiBlinded)
        self.done(HashKeyShare)
        self.done(PsiResult)
        self.expect(TrainingPlan, BANK)
        return [self.reply(Ack, BANK, msg.round)]

    # -- training ---------------------------------------------------------------------
    @handles(TrainingPlan)
    def _on_plan(self, msg: TrainingPlan):
        if self.public_key is None or msg.key_fingerprint != self.public_key.fingerprint:
            raise KeyMismatchError(
                f"{self.name}: the training plan names key {msg.key_fingerprint}, but the coordinator gave "
                f"{self.public_key.fingerprint if self.public_key else 'no key'}.",
                party=BANK,
            )
        size = len(self.aligned_rows)
        check_positions(msg.train_rows, size, party=BANK, what="training rows")
        check_positions(msg.holdout_rows, size, party=BANK, what="holdout rows")
        try:
            hyper = Hyperparameters.from_dict(msg.hyperparameters)
        except (ConfigurationError, TypeError) as exc:
            raise ProtocolError(f"{self.name}: the training plan's hyper-parameters are invalid: {exc}", party=BANK) from None
        check_plan_limits(
            hyper, len(msg.train_rows), self._parties, me=self.name, min_batch_size=self.min_batch_size, max_epochs=self.max_epochs
        )
        self._prepare_local(hyper, msg.train_rows, self.aligned_rows)
        self.done(TrainingPlan)
        self.expect(BatchRequest, BANK)
        self.expect(EpochEnd, BANK)
        self.expect(TrainingStop, BANK)
        # The coordinator hears our number of weights from us, not only from the bank.
        return [self._accepted(COORDINATOR, msg.round), self._accepted(BANK, msg.round)]

    def _accepted(self, to: str, rnd: int) -> PlanAccepted:
        n_feat = self._local.n_features
        slots = packed_count(n_feat, self.public_key.key_bits, self.hyper)
        return self.reply(PlanAccepted, to, rnd, slots=slots, features=n_feat)

    def _prepare_local(self, hyper: Hyperparameters, train_rows, aligned_rows: np.ndarray) -> None:
        """Fit preprocessing on the training rows and build the local model (also on resume)."""
        train = np.asarray(train_rows, dtype=np.int64)
        train_set = np.zeros(len(aligned_rows), dtype=bool)
        train_set[train] = True
        frame = self.table.features.iloc[aligned_rows]
        numeric = [c for c in self.table.feature_names if c not in self.table.categorical]
        preprocessor = Preprocessor(numeric, list(self.table.categorical), party=self.name)
        preprocessor.fit(frame.iloc[train])
        if len(preprocessor.feature_names_) > hyper.max_features:
            raise ConfigurationError(
                f"{self.name} has {len(preprocessor.feature_names_):,} features after encoding; the training plan "
                f"allows at most {hyper.max_features:,} per party.",
                party=self.name,
            )
        X_full = preprocessor.transform(frame)
        X_q = quantize_features(X_full, party=self.name, columns=preprocessor.feature_names_)
        # Nothing changes before every check has passed.
        self.aligned_rows, self.preprocessor = aligned_rows, preprocessor
        self.plan = TrainingPlanState(
            hyper, train, np.empty(0, np.int64), preprocessor, X_full, LocalModel(X_q, hyper, train)
        )
        self._cursor = EpochCursor(hyper, train_set)

    @handles(BatchRequest)
    def _on_batch(self, msg: BatchRequest):
        self.check_round(msg, round_of(msg.epoch, msg.batch))
        if msg.round <= self._round:
            raise ProtocolError(f"{self.name}: round {msg.round} was already served.", party=BANK)
        rows = np.asarray(msg.rows, dtype=np.int64)
        check_positions(rows, len(self.aligned_rows), party=BANK, what="batch rows")
        # Our own minimum, not the plan's: the plan is the bank's word.
        self._cursor.check_batch(msg.epoch, msg.batch, rows, me=self.name, min_rows=self.min_batch_size)
        u = self._local.partial_scores(rows)
        plain = encode_partial(u, party=self.name)
        squares = needs_squares(self.hyper.expansion)
        if squares:
            plain = np.concatenate([plain, encode_square(u, party=self.name)])
        self._round = msg.round
        self._cursor.take(rows)
        track = self.hyper.track_loss and needs_loss_shares(self.hyper.expansion)
        self._batch = FintechRound(rows, encode_loss_partial(u, party=self.name) if track else None)
        if self.hyper.randomness == "coordinator":
            # The key holder makes the randomizers (faster, and ahead of time).
            self._batch.plain = plain
            self.expect(Randomness, COORDINATOR)
            return [
                self.reply(
                    RandomnessRequest, COORDINATOR, msg.round, count=len(plain), key_fingerprint=self.public_key.fingerprint
                )
            ]
        # One call for both vectors keeps every core busy. The workload (two epochs of
        # this session's encryptions) sizes the fixed-base table.
        workload = 2 * len(plain) * self.hyper.steps_per_epoch
        cts = paillier.encrypt(self.public_key, plain, n_jobs=self.n_jobs, workload=workload)
        return [self._scores_reply(msg.round, cts)]

    @handles(Randomness)
    def _on_randomness(self, msg: Randomness):
        self.check_round(msg, self._round)
        plain = self._batch.plain
        randomizers = randomizers_from(self.public_key, msg, len(plain), me=self.name)
        self._batch.plain = None
        self.done(Randomness)
        return [self._scores_reply(msg.round, paillier.encrypt_with(self.public_key, plain, randomizers))]

    def _scores_reply(self, rnd: int, cts: list) -> EncryptedScores:
        n = len(self._batch.rows)
        self.expect(EncryptedResiduals, BANK)
        return self.reply(
            EncryptedScores,
            BANK,
            rnd,
            ciphertexts=paillier.to_bytes(self.public_key, cts[:n]),
            squares=paillier.to_bytes(self.public_key, cts[n:]),
            count=n,
            key_fingerprint=self.public_key.fingerprint,
        )

    @handles(EncryptedResiduals)
    def _on_residuals(self, msg: EncryptedResiduals):
        self.check_round(msg, self._round)
        if msg.key_fingerprint != self.public_key.fingerprint:
            raise KeyMismatchError(f"{self.name}: residuals were encrypted under another key.", party=BANK)
        rows = self._batch.rows
        residuals = paillier.from_bytes(self.public_key, msg.ciphertexts, count=len(rows), party=BANK)
        loss_exp = self._batch.loss_exponents
        exps = self._local.exponents(rows, loss_exp)
        sums = multiexp(self.public_key, residuals, exps, n_jobs=self.n_jobs)
        n_feat = self._local.n_features
        masks = draw_masks(n_feat, mask_bits(len(rows), self.hyper.parties))
        # Mask before sending: the coordinator must never see the raw gradient. Packing
        # several masked values per ciphertext saves the coordinator decryptions.
        masked = paillier.pack(
            self.public_key, paillier.add_plain(self.public_key, sums[:n_feat], masks), packing_slot_bits(self.hyper)
        )
        loss_share = b""
        if loss_exp is not None:
            # Σ_i u_k,i e_i, still encrypted: only the bank's aggregate is ever decrypted.
            loss_share = paillier.to_bytes(self.public_key, [sums[n_feat]])
        self._batch.masks, self._batch.loss_share = masks, loss_share
        self.done(EncryptedResiduals)
        self.expect(DecryptedMasked, COORDINATOR)
        return [
            self.reply(
                MaskedGradient,
                COORDINATOR,
                msg.round,
                ciphertexts=paillier.to_bytes(self.public_key, masked),
                count=len(masked),
                key_fingerprint=self.public_key.fingerprint,
            )
        ]

    @handles(DecryptedMasked)
    def _on_decrypted(self, msg: DecryptedMasked):
        self.check_round(msg, self._round)
        sums = unmask_packed(self.public_key, msg, self._batch.masks, self.hyper)
        self._local.apply_gradient(sums, len(self._batch.rows))
        self.done(DecryptedMasked)
        share = self._batch.loss_share
        self._batch = None
        return [self.reply(BatchDone, BANK, msg.round, loss_share=share, key_fingerprint=self.public_key.fingerprint)]

    @handles(EpochEnd)
    def _on_epoch_end(self, msg: EpochEnd):
        # A stale or replayed "end of epoch" must not reset this party's epoch summary.
        self.check_round(msg, epoch_end_round(msg.epoch))
        if msg.round <= self._round:
            raise ProtocolError(f"{self.name}: round {msg.round} was already served.", party=BANK)
        self._cursor.check_epoch_end(msg.epoch, me=self.name)
        self._round = msg.round
        self._cursor.next_epoch()
        change, norm = self._local.end_epoch()
        return [self.reply(EpochReport, BANK, msg.round, epoch=msg.epoch, score_change_sq=change, score_norm_sq=norm)]

    @handles(TrainingStop)
    def _on_stop(self, msg: TrainingStop):
        self.weights = self._local.final_weights.copy()
        for step in (BatchRequest, EpochEnd, TrainingStop, EncryptedResiduals):
            self.done(step)
        self.expect(ScoreRequest, BANK)
        return [self.reply(Ack, BANK, msg.round)]
