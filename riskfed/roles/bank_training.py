"""The bank's training steps (part of :class:`~riskfed.roles.bank.Bank`), in the order of
a session: the plan, then each round's four steps, then the end of each epoch.

A round (one mini-batch ``S``):

1. :meth:`~BankTrainingSteps.batch_requests` — the batch's positions to every fintech
   (each answers ``[[u_k]]``, ``[[u_k²]]``), randomizers from the coordinator.
2. :meth:`~BankTrainingSteps.residual_messages` — ``[[e]] = [[U]]^s · [[V]]^t ⊕ c`` with
   fresh randomness, to every fintech (each masks its gradient for the coordinator).
3. :meth:`~BankTrainingSteps.masked_gradient` — the bank's own gradient and aggregate
   loss, masked, to the coordinator.
4. ``_on_decrypted`` — unmask and update the bank's weights.
"""

from __future__ import annotations

import dataclasses

import gmpy2
import numpy as np

from riskfed import settings
from riskfed.crypto import paillier
from riskfed.crypto.multiexp import multiexp_many
from riskfed.data.preprocess import Preprocessor
from riskfed.errors import AlignmentError, ConfigurationError, KeyMismatchError, ProtocolError
from riskfed.learning.linear.fixed_point import (
    draw_masks,
    mask_bits,
    packed_count,
    packing_slot_bits,
    quantize_features,
)
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.local import LocalModel
from riskfed.learning.linear.residuals import (
    LOSS_LIFT_BITS,
    batch_loss,
    needs_loss_shares,
    needs_squares,
    plan_residuals,
)
from riskfed.learning.linear.schedule import SPLIT, batch_sizes, make_batches, session_rng, stratified_split
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
    MaskedGradient,
    PlanAccepted,
    Randomness,
    RandomnessRequest,
    SessionReady,
    TrafficReport,
    TrainingPlan,
    TrainingStop,
    epoch_end_round,
    round_of,
    stop_round,
)
from riskfed.roles.base import handles, randomizers_from, unmask_packed
from riskfed.roles.state import BankBatch, EpochClose, TrainingPlanState


class BankTrainingSteps:
    """Planning and running training; state lives on :class:`~riskfed.roles.bank.Bank`."""

    # -- the plan ----------------------------------------------------------------------
    def plan_training(self, hyper: Hyperparameters, *, test_size: float = 0.3) -> list[TrainingPlan]:
        """Split the intersection (stratified) and announce the plan to the fintechs."""
        settings.check("test_size", test_size, "Bank")
        if self.aligned is None:
            raise ProtocolError("bank: align before planning training.")
        train, holdout = self._split(test_size, hyper)
        hyper = dataclasses.replace(hyper, parties=1 + len(self.fintechs), steps_per_epoch=len(batch_sizes(len(train), hyper)))
        plan = self._build_plan(hyper, train, holdout)
        if plan.local.n_features > hyper.max_features:
            raise ConfigurationError(
                f"bank: {plan.local.n_features:,} features after encoding; the plan allows at most {hyper.max_features:,} per party.",
                party=BANK,
            )
        self.plan = plan
        self._fintech_weights, self._fintech_slots = {}, {}
        self.done(Ack)
        self.expect(PlanAccepted, *self.fintechs)
        return [
            self.reply(
                TrainingPlan,
                f,
                0,
                train_rows=plan.train_rows,
                holdout_rows=plan.holdout_rows,
                hyperparameters=hyper.to_dict(),
                key_fingerprint=self.public_key.fingerprint,
                train_size=len(plan.train_rows),
            )
            for f in self.fintechs
        ]

    def _split(self, test_size: float, hyper: Hyperparameters) -> tuple[np.ndarray, np.ndarray]:
        """The stratified train/holdout split of the aligned rows, sorted."""
        y = self.table.labels[self.aligned.bank_rows]
        counts = np.bincount(y, minlength=2)
        if counts.min() < 2:
            raise AlignmentError(
                f"bank: the {self.aligned.size} shared customers include {int(counts[1])} defaulter(s) and "
                f"{int(counts[0])} non-defaulter(s); both classes need at least 2 rows to split.",
                party=BANK,
            )
        try:
            # From the session secret: a fintech sees the split, and a split it could
            # replay (a known or small seed) would tell it which rows default.
            train, holdout = stratified_split(y, test_size, session_rng(self._session_seed, SPLIT))
        except ValueError as exc:
            raise AlignmentError(f"bank: cannot split the {self.aligned.size} shared customers: {exc}", party=BANK) from None
        if len(train) < hyper.min_batch_size:
            raise AlignmentError(
                f"bank: only {len(train)} shared customers are left for training; the minimum batch size is "
                f"{hyper.min_batch_size}.",
                party=BANK,
            )
        return np.sort(train).astype(np.int64), np.sort(holdout).astype(np.int64)

    def _build_plan(self, hyper: Hyperparameters, train_rows: np.ndarray, holdout_rows: np.ndarray) -> TrainingPlanState:
        """Labels, preprocessing and local model for the aligned rows (also on resume)."""
        frame = self.table.features.iloc[self.aligned.bank_rows]
        numeric = [c for c in self.table.feature_names if c not in self.table.categorical]
        preprocessor = Preprocessor(numeric, list(self.table.categorical), party=BANK)
        preprocessor.fit(frame.iloc[train_rows])
        X_full = preprocessor.transform(frame)
        X_q = quantize_features(X_full, party=BANK, columns=preprocessor.feature_names_)
        return TrainingPlanState(
            hyper=hyper,
            train_rows=train_rows,
            holdout_rows=holdout_rows,
            preprocessor=preprocessor,
            X_full=X_full,
            local=LocalModel(X_q, hyper, train_rows, bias=True),
            y_aligned=self.table.labels[self.aligned.bank_rows],
        )

    @handles(PlanAccepted)
    def _on_plan_accepted(self, msg: PlanAccepted):
        """A fintech's features (again on resume, where they must fit the checkpoint)."""
        if msg.slots != self._fintech_slots.get(msg.sender, msg.slots):
            raise ProtocolError(
                f"{msg.sender} announced {msg.slots} ciphertexts per round; it sent {self._fintech_slots[msg.sender]} "
                "before the session was resumed.",
                party=msg.sender,
            )
        if not 1 <= msg.features <= self.hyper.max_features:
            raise ProtocolError(
                f"{msg.sender} announced {msg.features} features; the plan allows 1 to {self.hyper.max_features}.",
                party=msg.sender,
            )
        if msg.slots != packed_count(msg.features, self.public_key.key_bits, self.hyper):
            raise ProtocolError(f"{msg.sender} announced {msg.slots} ciphertexts per round for {msg.features} features.", party=msg.sender)
        self._fintech_weights[msg.sender] = msg.features
        self._fintech_slots[msg.sender] = msg.slots
        return []

    def coordinator_plan(self) -> TrainingPlan:
        """The plan for the coordinator: the number of training rows and each party's
        number of weights (it computes every allowance from them), no row positions."""
        missing = [f for f in self.fintechs if f not in self._fintech_weights]
        if missing:
            raise ProtocolError(f"bank: {', '.join(missing)} did not accept the training plan.", party=missing[0])
        # Every fintech is ready by now (a resumed session has no alignment step to say so).
        self.done(SessionReady)
        self.done(PlanAccepted)
        self.expect(Ack, COORDINATOR)
        return self.reply(
            TrainingPlan,
            COORDINATOR,
            0,
            train_rows=np.empty(0, np.int64),
            holdout_rows=np.empty(0, np.int64),
            hyperparameters=self.hyper.to_dict(),
            key_fingerprint=self.public_key.fingerprint,
            train_size=len(self.train_rows),
            party_weights={BANK: int(self.local.weights.size), **self._fintech_weights},
        )

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """Mini-batches of aligned positions for ``epoch`` (from the session secret; none
        below the minimum)."""
        return make_batches(self.train_rows, self._session_seed, epoch, self.hyper)

    # -- step 1: the batch -------------------------------------------------------------
    def batch_requests(self, epoch: int, batch: int, rows: np.ndarray) -> list[BatchRequest]:
        """The batch's positions to every fintech; a randomness request to the coordinator."""
        rnd = round_of(epoch, batch)
        current = self._batch = BankBatch(rnd, np.asarray(rows, dtype=np.int64))
        self.done(Ack)
        self.expect(EncryptedScores, *self.fintechs)
        out: list = [self.reply(BatchRequest, f, rnd, epoch=epoch, batch=batch, rows=current.rows) for f in self.fintechs]
        if self.hyper.randomness == "coordinator":
            # Fresh randomness for this batch's residuals, from the key holder.
            self.expect(Randomness, COORDINATOR)
            out.append(
                self.reply(RandomnessRequest, COORDINATOR, rnd, count=len(rows), key_fingerprint=self.public_key.fingerprint)
            )
        return out

    @handles(Randomness)
    def _on_randomness(self, msg: Randomness):
        self.check_round(msg, self._batch.round)
        self._batch.randomizers = randomizers_from(self.public_key, msg, len(self._batch.rows), me=self.name)
        self.done(Randomness)
        return []

    def _check_fp(self, msg, fingerprint: str) -> None:
        if fingerprint != self.public_key.fingerprint:
            raise KeyMismatchError(
                f"{msg.sender} used Paillier key {fingerprint}, not the session key {self.public_key.fingerprint}.",
                party=msg.sender,
            )

    @handles(EncryptedScores)
    def _on_scores(self, msg: EncryptedScores):
        self.check_round(msg, self._batch.round)
        self._check_fp(msg, msg.key_fingerprint)
        rows = self._batch.rows
        scores = paillier.from_bytes(self.public_key, msg.ciphertexts, count=len(rows), party=msg.sender)
        squares = None
        if needs_squares(self.hyper.expansion):
            squares = paillier.from_bytes(self.public_key, msg.squares, count=len(rows), party=msg.sender)
        self._batch.scores[msg.sender] = (scores, squares)
        return []

    # -- step 2: the residuals ---------------------------------------------------------
    def residual_messages(self) -> list[EncryptedResiduals]:
        """``[[e_i]] = [[U_i]]^{s_i} · [[V_i]]^{t_i} ⊕ c_i`` (:mod:`riskfed.learning.linear.residuals`)."""
        current = self._batch
        missing = [f for f in self.fintechs if f not in current.scores]
        if missing:
            raise ProtocolError(f"bank: no encrypted scores from {', '.join(missing)} this round.", party=missing[0])
        rows = current.rows
        plan = plan_residuals(self.local.partial_scores(rows), self.y_aligned[rows], self.hyper.expansion)
        partner_sum = paillier.add_encrypted(self.public_key, *(current.scores[f][0] for f in self.fintechs))
        terms = [(partner_sum, plan.s_q)]
        square_sum = None
        if plan.t_q is not None:
            # V = Σ_k u_k^2: with several fintechs the cross terms of U^2 are left out.
            square_sum = paillier.add_encrypted(self.public_key, *(current.scores[f][1] for f in self.fintechs))
            terms.append((square_sum, plan.t_q))
        # Enc(c) · [[U]]^s · [[V]]^t with fresh randomness in Enc(c): a fintech knows the
        # randomness of its own [[u]], [[u²]] and could otherwise solve for the short s, t
        # row by row and read c — the bank's residual, hence the label.
        randomizers, current.randomizers = current.randomizers, None
        if self.hyper.randomness == "coordinator" and randomizers is None:
            raise ProtocolError("bank: no randomness from the coordinator this round.", party=COORDINATOR)
        workload = 2 * len(self.train_rows)  # two epochs of refreshes (own randomness)
        residuals = paillier.affine(
            self.public_key, terms, plan.c_q, n_jobs=self.n_jobs, workload=workload, randomizers=randomizers
        )
        track = self.hyper.track_loss
        current.scores = {}
        current.residuals, current.plan = residuals, plan
        current.partner_sum = partner_sum if track else None
        current.square_sum = square_sum if track else None
        blob = paillier.to_bytes(self.public_key, residuals)
        self.done(EncryptedScores)
        self.expect(BatchDone, *self.fintechs)
        return [
            self.reply(
                EncryptedResiduals,
                f,
                current.round,
                ciphertexts=blob,
                count=len(residuals),
                key_fingerprint=self.public_key.fingerprint,
                track_loss=track,
            )
            for f in self.fintechs
        ]

    @handles(BatchDone)
    def _on_batch_done(self, msg: BatchDone):
        self.check_round(msg, self._batch.round)
        if self.hyper.track_loss and needs_loss_shares(self.hyper.expansion):
            self._check_fp(msg, msg.key_fingerprint)
            share = paillier.from_bytes(self.public_key, msg.loss_share, count=1, party=msg.sender)[0]
            self._batch.loss_shares[msg.sender] = share
        else:
            self._batch.loss_shares[msg.sender] = None
        return []

    # -- step 3: the bank's masked gradient -------------------------------------------------
    def masked_gradient(self) -> MaskedGradient:
        """The bank's encrypted gradient (and aggregate loss), masked for the coordinator."""
        current = self._batch
        missing = [f for f in self.fintechs if f not in current.loss_shares]
        if missing:
            raise ProtocolError(f"bank: {', '.join(missing)} did not finish the round.", party=missing[0])
        sums = self._gradient_sums(current)
        masks = draw_masks(len(sums), mask_bits(len(current.rows), self.hyper.parties))
        # Mask before sending: the coordinator must not see the gradient or the loss.
        masked = paillier.pack(
            self.public_key, paillier.add_plain(self.public_key, sums, masks), packing_slot_bits(self.hyper)
        )
        current.masks = masks
        current.residuals = current.partner_sum = current.square_sum = None
        self.done(BatchDone)
        self.expect(DecryptedMasked, COORDINATOR)
        return self.reply(
            MaskedGradient,
            COORDINATOR,
            current.round,
            ciphertexts=paillier.to_bytes(self.public_key, masked),
            count=len(masked),
            key_fingerprint=self.public_key.fingerprint,
        )

    def _gradient_sums(self, current: BankBatch) -> list:
        """``[[Σ_i x_ij e_i]]`` per weight, then the aggregate loss column when tracked."""
        plan = current.plan
        track = self.hyper.track_loss
        exps = self.local.exponents(current.rows, plan.b_q if track else None)
        products = [(current.residuals, exps)]
        if track and plan.t_q is not None:
            # Aggregate second-order loss: 2 Σ (σ(a) - y) U + Σ σ'(a) V (see batch_loss): one
            # column over [[U]] and [[V]] together.
            loss_bases = list(current.partner_sum) + list(current.square_sum)
            products.append((loss_bases, np.concatenate([2 * plan.cprime_q, plan.s_q]).reshape(-1, 1)))
        elif track:
            # First-order: Σ (σ(a) - y) U, lifted below to the fintechs' shares' scale.
            products.append((current.partner_sum, plan.cprime_q.reshape(-1, 1)))
        # The loss column runs beside the gradient's columns, not after them.
        sums, *loss = multiexp_many(self.public_key, products, n_jobs=self.n_jobs)
        if track and plan.t_q is not None:
            sums.append(loss[0][0])
        elif track:
            # Aggregate first-order loss: Σ_k Σ u_k e (fintech shares) + Σ (u_B - a) e (own
            # column, zero with the bank anchor) + Σ (σ(a) - y) U lifted to the same scale.
            lifted = gmpy2.powmod(loss[0][0], 1 << LOSS_LIFT_BITS, self.public_key.n_squared)
            shares = [[current.loss_shares[f]] for f in self.fintechs]
            own = [sums.pop()] if plan.b_q is not None else []
            total = paillier.add_encrypted(self.public_key, [lifted], *shares, *([own] if own else []))
            sums.append(total[0])
        return sums

    # -- step 4: the update ------------------------------------------------------------
    @handles(DecryptedMasked)
    def _on_decrypted(self, msg: DecryptedMasked):
        current = self._batch
        self.check_round(msg, current.round)
        sums = unmask_packed(self.public_key, msg, current.masks, self.hyper)
        n_weights = self.local.weights.size
        self.local.apply_gradient(sums[:n_weights], len(current.rows))
        current.loss = batch_loss(sums[n_weights], current.plan, len(current.rows)) if self.hyper.track_loss else None
        current.masks = None
        self.done(DecryptedMasked)
        return []

    @property
    def last_batch_loss(self) -> float | None:
        return self._batch.loss if self._batch is not None else None

    # -- epochs ------------------------------------------------------------------------
    def epoch_end_messages(self, epoch: int) -> list[EpochEnd]:
        """Ask every fintech for its epoch summary (two aggregates)."""
        self._epoch = EpochClose(epoch_end_round(epoch))
        self.expect(EpochReport, *self.fintechs)
        return [self.reply(EpochEnd, f, self._epoch.round, epoch=epoch) for f in self.fintechs]

    @handles(EpochReport)
    def _on_epoch_report(self, msg: EpochReport):
        self.check_round(msg, self._epoch.round)
        if not all(np.isfinite(v) and v >= 0 for v in (msg.score_change_sq, msg.score_norm_sq)):
            raise ProtocolError(f"{msg.sender} reported an invalid epoch summary.", party=msg.sender)
        self._epoch.reports[msg.sender] = (msg.score_change_sq, msg.score_norm_sq)
        return []

    def finish_epoch(self, epoch: int, losses: list[float]) -> dict:
        """Combine the epoch reports: relative change of the model, mean loss, stop or not."""
        change, norm = self.local.end_epoch()
        for f in self.fintechs:
            c, w = self._epoch.reports[f]
            change += c
            norm += w
        self.done(EpochReport)
        rel = float(np.sqrt(change / norm)) if norm > 0 else float("inf")
        entry = {
            "epoch": epoch + 1,
            "relative_change": rel,
            "loss": float(np.mean(losses)) if losses else None,
        }
        entry["converged"] = bool(epoch > 0 and rel < self.hyper.tol)
        self.history.append(entry)
        return entry

    def stop_messages(self, reason: str) -> list[TrainingStop]:
        """Tell every party to stop; keep the bank's final weights."""
        epochs = len(self.history)
        self.weights = self.local.final_weights.copy()
        self.expect(Ack, COORDINATOR, *self.fintechs)
        # Party services (network runs) answer with their own traffic as well.
        self.expect(TrafficReport, COORDINATOR, *self.fintechs)
        self.peer_traffic = {}
        rnd = stop_round(epochs)
        return [self.reply(TrainingStop, t, rnd, epochs=epochs, reason=reason) for t in (COORDINATOR, *self.fintechs)]
