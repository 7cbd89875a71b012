"""The bank (active party, label holder) — the party that drives a session.

Threat model for this role (semi-honest; the coordinator colludes with no one):

* **Holds** customer ids, default labels ``y``, its features ``X_B``, its preprocessing,
  its weights ``w_B`` and the intercept, its ECDH secret and the session seed — 256 bits
  drawn afresh per session (:mod:`riskfed.roles.plan`) from which the secret order of the
  shared customers, the split and the batches derive; never sent, logged or reported,
  kept only in its own checkpoint.
* **Sends** to fintechs: blinded ids (ECDH) or a keyed-hash key, the intersection as
  positions in each fintech's shuffled list (in a secretly shuffled order), the training
  plan (row positions and public hyper-parameters), batch positions and ``[[e]]``
  (encrypted under the coordinator's key, each with fresh randomness the fintech does
  not know). To the coordinator: the session parameters, the training plan, how many
  randomizers a batch needs, and ``[[g_B + m_B]]`` (its masked gradient and the masked
  aggregate loss). The coordinator plan carries each party's number of weights and the
  number of training rows, from which the coordinator fixes every allowance itself.
* **Receives** double-blinded points / digests, ``[[u_k]]`` (encrypted: unreadable without
  the private key), encrypted loss shares, mean squares of each fintech's score change and scores per epoch,
  its own masked gradient decrypted, randomizers from the coordinator (by default) for
  refreshing ``[[e]]``, each party service's message counts and byte totals when
  training stops (network runs), and — at evaluation and scoring time only —
  plaintext partial scores ``u_k`` of the rows it scores.
* **Learns** the intersection, its own gradients, the aggregate training loss per batch
  and, at scoring time, partial scores of the applicants it scores (accepted). Never a
  fintech feature value or weight, nor any per-row fintech partial score during
  training.
* **Can still, if it cheats** (docs/threat-model.md): put ciphertexts of its choice —
  e.g. the fintechs' ``[[u_k]]`` — in its own masked-gradient request and read them,
  within the allowance the coordinator fixed per planned round (the ciphertexts its
  weights and loss column need: 3 of 2048 bits for 24 features; up to 58 partial scores
  per ciphertext if it gives up its own update, about two per slot if it does not). It
  cannot make a fintech serve batches below the fintech's own minimum, overlapping
  batches within an epoch, or more rounds than the fintech and the coordinator planned.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid

import gmpy2
import numpy as np

from riskfed import settings
from riskfed.alignment.ecdh import EcdhKey
from riskfed.alignment.index import AlignedIndex, intersect_all, match_positions
from riskfed.alignment.keyed_hash import keyed_digests, new_shared_key
from riskfed.alignment.normalize import IdNormalization
from riskfed.crypto import paillier
from riskfed.crypto.keys import DEFAULT_KEY_BITS, check_key_bits
from riskfed.crypto.multiexp import multiexp_many
from riskfed.data.preprocess import Preprocessor
from riskfed.data.schema import PartyTable
from riskfed.errors import AlignmentError, ConfigurationError, KeyMismatchError, ProtocolError
from riskfed.learning.linear.fixed_point import (
    draw_masks,
    mask_bits,
    packed_count,
    packing_slot_bits,
    quantize_features,
)
from riskfed.learning.linear.hyperparameters import MAX_FINTECHS, Hyperparameters
from riskfed.learning.linear.local import LocalModel
from riskfed.learning.linear.residuals import (
    LOSS_LIFT_BITS,
    batch_loss,
    needs_loss_shares,
    needs_squares,
    plan_residuals,
)
from riskfed.learning.linear.schedule import (
    ALIGNED_ORDER,
    SPLIT,
    check_seed,
    make_batches,
    new_session_seed,
    session_rng,
    stratified_split,
)
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    BatchDone,
    BatchRequest,
    DecryptedMasked,
    EncryptedResiduals,
    EncryptedScores,
    EpochEnd,
    EpochReport,
    HashedIds,
    HashKeyShare,
    MaskedGradient,
    PartialScores,
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
    TrafficReport,
    TrainingPlan,
    TrainingStop,
    round_of,
)
from riskfed.roles.base import Role, public_key_from, randomizers_from, unmask_packed

PSI_METHODS = settings.param("psi").constraints[0].values
# Fewer shared customers than this cannot support a train/holdout split worth reporting.
DEFAULT_MIN_INTERSECTION = settings.default("min_intersection")
SCORING_ROUND_BASE = 10**12


class Bank(Role):
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

    HANDLERS = {
        "public_key": "_on_public_key",
        "session_ready": "_on_ready",
        "psi_double_blinded": "_on_double_blinded",
        "hashed_ids": "_on_hashed",
        "ack": "_on_ack",
        "traffic_report": "_on_traffic_report",
        "plan_accepted": "_on_plan_accepted",
        "encrypted_scores": "_on_scores",
        "randomness": "_on_randomness",
        "batch_done": "_on_batch_done",
        "decrypted_masked": "_on_decrypted",
        "epoch_report": "_on_epoch_report",
        "partial_scores": "_on_partial_scores",
    }

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
        self.seed = None if seed is None else int(seed)
        self._session_seed: int | None = None
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
        self.table = table
        self.fintechs = list(fintechs)
        self.normalization = normalization or IdNormalization()
        self.n_jobs = n_jobs
        self.allow_insecure_key = allow_insecure_key
        self.public_key = None
        self.fintech_rows: dict[str, int] = {}
        self.aligned: AlignedIndex | None = None
        self.history: list[dict] = []
        self._matches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._acks: set[str] = set()
        # Traffic counts reported by party services at the end of training (network runs).
        self.peer_traffic: dict[str, list[dict]] = {}
        # Per fintech: its features and the ciphertexts it sends per round, as it declared them.
        self._fintech_weights: dict[str, int] = {}
        self._fintech_slots: dict[str, int] = {}
        self._enc_scores: dict[str, list] = {}
        self._loss_shares: dict[str, bytes] = {}
        self._reports: dict[str, tuple[float, float]] = {}
        self._partials: dict[str, PartialScores] = {}
        self._batch: dict | None = None
        self._norm_ids = self.normalization.apply(table.ids, party=BANK, column=table.id_column)

    def __repr__(self) -> str:
        return f"Bank(rows={self.table.n_rows}, fintechs={self.fintechs}, session={self.session_id!r})"

    @property
    def party_features(self) -> dict[str, int]:
        """Each party's number of features, as it declared them (public within the session)."""
        own = {BANK: self.local.n_features} if getattr(self, "local", None) is not None else {}
        return own | dict(self._fintech_weights)

    @property
    def session_seed(self) -> int | None:
        """The session's seed (secret: never send, log or report it). The plaintext twin
        (:func:`riskfed.learning.linear.reference.fit_reference`) needs it to draw the same batches."""
        return self._session_seed

    # -- session ----------------------------------------------------------------------
    def open_session(
        self,
        *,
        key_bits: int = DEFAULT_KEY_BITS,
        psi_method: str = "ecdh",
        purpose: str = "training",
        session_id: str | None = None,
    ) -> list[SessionOpen]:
        """Messages that open a session: to the coordinator first (training), then fintechs."""
        settings.check("psi", psi_method, "Bank")
        if purpose == "training":
            check_key_bits(key_bits, allow_insecure=self.allow_insecure_key, party=BANK)
        self.session_id = session_id or uuid.uuid4().hex
        # A fresh secret per session unless the caller fixed the seed.
        self._session_seed = self.seed if self.seed is not None else new_session_seed()
        self.purpose = purpose
        self.psi_method = psi_method
        self.key_bits = key_bits
        parties = (BANK, COORDINATOR, *self.fintechs) if purpose == "training" else (BANK, *self.fintechs)
        common = dict(
            purpose=purpose,
            parties=parties,
            key_bits=key_bits,
            allow_insecure_key=self.allow_insecure_key,
            psi_method=psi_method,
            id_normalization=self.normalization.to_dict(),
        )
        targets = ([COORDINATOR] if purpose == "training" else []) + self.fintechs
        if purpose == "training":
            self.expect("public_key", COORDINATOR)
        self.expect("session_ready", *self.fintechs)
        return [self.reply(SessionOpen, t, 0, **common) for t in targets]

    def _on_public_key(self, msg: PublicKeyAnnounce):
        pk = public_key_from(msg, party=BANK)
        if pk.key_bits != self.key_bits:
            raise KeyMismatchError(
                f"bank: the coordinator's key has {pk.key_bits} bits; the session asked for {self.key_bits}.",
                party=COORDINATOR,
            )
        self.public_key = pk
        self.done("public_key")
        return []

    def _on_ready(self, msg: SessionReady):
        if self.purpose == "training":
            if self.public_key is None or msg.key_fingerprint != self.public_key.fingerprint:
                raise KeyMismatchError(
                    f"{msg.sender} received Paillier key {msg.key_fingerprint or 'none'}, but the bank's is "
                    f"{self.public_key.fingerprint if self.public_key else 'none'}: the parties do not share one key.",
                    party=msg.sender,
                )
        self.fintech_rows[msg.sender] = msg.rows
        return []

    # -- alignment --------------------------------------------------------------------
    def psi_requests(self) -> list:
        """First alignment message to each fintech (shuffled blinded ids, or a hash key)."""
        self._perm = np.argsort(np.frombuffer(secrets.token_bytes(8 * len(self._norm_ids)), dtype=np.uint64), kind="stable")
        shuffled = self._norm_ids[self._perm].tolist()
        self.done("session_ready")
        out = []
        if self.psi_method == "ecdh":
            self._ecdh = EcdhKey.generate()
            points = self._ecdh.blind(shuffled, n_jobs=self.n_jobs, party=BANK)
            self.expect("psi_double_blinded", *self.fintechs)
            for f in self.fintechs:
                out.append(self.reply(PsiBlinded, f, 0, points=points))
        else:
            self.expect("hashed_ids", *self.fintechs)
            self._hash_keys = {}
            self._own_digests = {}
            for f in self.fintechs:
                # One key per fintech: a key leaked by one partner exposes nothing of another's.
                key = new_shared_key()
                self._hash_keys[f] = key
                self._own_digests[f] = keyed_digests(shuffled, key)
                out.append(self.reply(HashKeyShare, f, 0, key=key, purpose="alignment"))
        return out

    def _record_match(self, fintech: str, bank_tokens: np.ndarray, fintech_tokens: np.ndarray) -> None:
        b_pos, f_pos = match_positions(bank_tokens, fintech_tokens, bank=BANK, partner=fintech)
        # Shuffled-list positions → rows of the bank's own table.
        self._matches[fintech] = (self._perm[b_pos], f_pos)
        self._list_sizes = getattr(self, "_list_sizes", {})
        self._list_sizes[fintech] = len(fintech_tokens)

    def _on_double_blinded(self, msg: PsiDoubleBlinded):
        if len(msg.double_blinded) != len(self._norm_ids):
            raise AlignmentError(
                f"{msg.sender} returned {len(msg.double_blinded)} double-blinded ids for the bank's {len(self._norm_ids)}.",
                party=msg.sender,
            )
        theirs = self._ecdh.reblind(msg.partner_blinded, n_jobs=self.n_jobs, party=msg.sender)
        self._record_match(msg.sender, msg.double_blinded, theirs)
        return []

    def _on_hashed(self, msg: HashedIds):
        self._record_match(msg.sender, self._own_digests[msg.sender], msg.digests)
        return []

    @property
    def pairwise_matches(self) -> dict[str, int]:
        """Per fintech, how many of the bank's customers it shares (before intersecting)."""
        return {f: len(rows) for f, (rows, _) in self._matches.items()}

    def finish_alignment(self, *, min_size: int = DEFAULT_MIN_INTERSECTION) -> list[PsiResult]:
        """Intersect across fintechs and tell each one its shared rows (shuffled order)."""
        missing = [f for f in self.fintechs if f not in self._matches]
        if missing:
            raise ProtocolError(f"bank: no alignment reply from {', '.join(missing)}.", party=missing[0])
        index = intersect_all(
            len(self._norm_ids),
            {f: self._matches[f] for f in self.fintechs},
            method=self.psi_method,
            partner_counts={f: self._list_sizes[f] for f in self.fintechs},
            min_size=min_size,
        )
        # Re-order the shared rows by the session secret: in bank-row order they would
        # tell each fintech how the bank's table is sorted (e.g. by account opening date).
        order = session_rng(self._session_seed, ALIGNED_ORDER).permutation(index.size)
        self.aligned = AlignedIndex(
            bank_rows=index.bank_rows[order],
            partner_rows={f: rows[order] for f, rows in index.partner_rows.items()},
            method=index.method,
            bank_count=index.bank_count,
            partner_counts=index.partner_counts,
        )
        self.done("psi_double_blinded")
        self.done("hashed_ids")
        self._acks = set()
        self.expect("ack", *self.fintechs)
        return [
            self.reply(PsiResult, f, 0, positions=self.aligned.partner_rows[f], bank_rows=len(self._norm_ids))
            for f in self.fintechs
        ]

    def _on_ack(self, msg):
        self._acks.add(msg.sender)
        return []

    def _on_traffic_report(self, msg: TrafficReport):
        """Keep a party service's traffic counts for the report (one report per party)."""
        rows = len(msg.steps)
        if not (len(msg.senders) == len(msg.recipients) == rows == msg.messages.size == msg.sizes.size):
            raise ProtocolError(f"bank: {msg.sender} sent a traffic report with columns of different lengths.", party=msg.sender)
        if rows and (msg.messages.min() < 0 or msg.sizes.min() < 0):
            raise ProtocolError(f"bank: {msg.sender} sent negative traffic counts.", party=msg.sender)
        self.peer_traffic[msg.sender] = [
            {"sender": s, "recipient": r, "step": st, "messages": int(c), "bytes": int(b)}
            for s, r, st, c, b in zip(msg.senders, msg.recipients, msg.steps, msg.messages, msg.sizes)
        ]
        return []

    # -- training plan ----------------------------------------------------------------
    def plan_training(self, hyper: Hyperparameters, *, test_size: float = 0.3) -> list[TrainingPlan]:
        """Split the intersection (stratified) and announce the plan to the fintechs."""
        settings.check("test_size", test_size, "Bank")
        if self.aligned is None:
            raise ProtocolError("bank: align before planning training.")
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
        self.train_rows = np.sort(train).astype(np.int64)
        self.holdout_rows = np.sort(holdout).astype(np.int64)
        self.hyper = hyper
        hyper = dataclasses.replace(hyper, parties=1 + len(self.fintechs), steps_per_epoch=len(self.epoch_batches(0)))
        self.hyper = hyper
        self._prepare_local()
        if self.local.n_features > hyper.max_features:
            raise ConfigurationError(
                f"bank: {self.local.n_features:,} features after encoding; the plan allows at most {hyper.max_features:,} per party.",
                party=BANK,
            )
        self._fintech_weights, self._fintech_slots = {}, {}
        self.done("ack")
        self.expect("plan_accepted", *self.fintechs)
        return [
            self.reply(
                TrainingPlan,
                f,
                0,
                train_rows=self.train_rows,
                holdout_rows=self.holdout_rows,
                hyperparameters=hyper.to_dict(),
                key_fingerprint=self.public_key.fingerprint,
                train_size=len(self.train_rows),
            )
            for f in self.fintechs
        ]

    def _prepare_local(self) -> None:
        """Labels, preprocessing and local model for the aligned rows (also on resume)."""
        self.y_aligned = self.table.labels[self.aligned.bank_rows]
        frame = self.table.features.iloc[self.aligned.bank_rows]
        numeric = [c for c in self.table.feature_names if c not in self.table.categorical]
        self.preprocessor = Preprocessor(numeric, list(self.table.categorical), party=BANK)
        self.preprocessor.fit(frame.iloc[self.train_rows])
        self.X_full = self.preprocessor.transform(frame)
        X_q = quantize_features(self.X_full, party=BANK, columns=self.preprocessor.feature_names_)
        self.local = LocalModel(X_q, self.hyper, self.train_rows, bias=True)

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
        self.done("plan_accepted")
        self.expect("ack", COORDINATOR)
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

    # -- checkpoints ------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        """The bank's state at an epoch boundary, for :mod:`riskfed.checkpoint`.

        Alignment (row positions only), the split, the public plan, the epoch history,
        the optimizer state and the session secret (the batches of the remaining epochs
        come from it; this file is the only place it is written). No key and no
        ciphertext: every ciphertext of a batch is consumed within it, so a resumed
        session can run under a fresh key.
        """
        if self.aligned is None or getattr(self, "local", None) is None:
            raise ProtocolError("bank: nothing to checkpoint before training starts.", party=BANK)
        a = self.aligned
        return {
            "kind": "riskfed-bank-checkpoint",
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

    def restore_state(self, state: dict) -> None:
        """Load :meth:`checkpoint_state` into a fresh bank (same table and fintechs; the
        session seed comes from the checkpoint — a bank given a seed must be given the same)."""
        if state.get("kind") != "riskfed-bank-checkpoint":
            raise ProtocolError("bank: the checkpoint is not a bank checkpoint.", party=BANK)
        if list(state["fintechs"]) != self.fintechs:
            raise ConfigurationError(
                f"bank: the checkpoint was made with fintechs {', '.join(state['fintechs'])}, not {', '.join(self.fintechs)}.",
                party=BANK,
            )
        # Checkpoints without a secret were made when the seed was the session's.
        saved_seed = int(state["secret"], 16) if isinstance(state.get("secret"), str) else int(state.get("secret", state["seed"]))
        if self.seed is not None and saved_seed != self.seed:
            # Never print a drawn secret, only a seed the caller chose.
            made_with = f"seed {saved_seed}" if saved_seed == state["seed"] else "a fresh secret seed"
            raise ConfigurationError(
                f"bank: the checkpoint was made with {made_with}, not {self.seed}; resume with the same seed (or none).",
                party=BANK,
            )
        a = state["aligned"]
        self.aligned = AlignedIndex(
            bank_rows=a["bank_rows"],
            partner_rows=dict(a["partner_rows"]),
            method=a["method"],
            bank_count=a["bank_count"],
            partner_counts=dict(a["partner_counts"]),
        )
        if self.aligned.bank_count != self.table.n_rows:
            raise ConfigurationError(
                f"bank: the checkpoint was made on a table of {self.aligned.bank_count:,} rows; this one has {self.table.n_rows:,}.",
                party=BANK,
            )
        self.session_id = state["session_id"]
        self._session_seed = saved_seed
        self.purpose = "training"
        self.psi_method = state["psi_method"]
        self.key_bits = int(state["key_bits"])
        self.normalization = IdNormalization.from_dict(state["id_normalization"])
        self.fintech_rows = dict(state["fintech_rows"])
        self.train_rows = np.asarray(state["train_rows"], dtype=np.int64)
        self.holdout_rows = np.asarray(state["holdout_rows"], dtype=np.int64)
        self.hyper = Hyperparameters.from_dict(state["hyperparameters"])
        self.history = [dict(h) for h in state["history"]]
        self._prepare_local()
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
        if getattr(self, "local", None) is None:
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
        self.expect("public_key", COORDINATOR)
        self.expect("session_ready", *self.fintechs)
        # Each fintech states its features again (to the new coordinator, and to us).
        self.expect("plan_accepted", *self.fintechs)
        return [self.reply(SessionOpen, t, 0, **common) for t in (COORDINATOR, *self.fintechs)]

    # -- batches ----------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """Mini-batches of aligned positions for ``epoch`` (from the session secret; none
        below the minimum)."""
        return make_batches(self.train_rows, self._session_seed, epoch, self.hyper)

    def batch_requests(self, epoch: int, batch: int, rows: np.ndarray) -> list[BatchRequest]:
        rnd = round_of(epoch, batch)
        self._batch = {"round": rnd, "rows": np.asarray(rows, dtype=np.int64)}
        self._enc_scores = {}
        self._loss_shares = {}
        self.done("ack")
        self.expect("encrypted_scores", *self.fintechs)
        out: list = [self.reply(BatchRequest, f, rnd, epoch=epoch, batch=batch, rows=self._batch["rows"]) for f in self.fintechs]
        if self.hyper.randomness == "coordinator":
            # Fresh randomness for this batch's residuals, from the key holder.
            self.expect("randomness", COORDINATOR)
            out.append(
                self.reply(RandomnessRequest, COORDINATOR, rnd, count=len(rows), key_fingerprint=self.public_key.fingerprint)
            )
        return out

    def _on_randomness(self, msg: Randomness):
        self.check_round(msg, self._batch["round"])
        self._batch["randomizers"] = randomizers_from(self.public_key, msg, len(self._batch["rows"]), me=self.name)
        self.done("randomness")
        return []

    def _check_fp(self, msg, fingerprint: str) -> None:
        if fingerprint != self.public_key.fingerprint:
            raise KeyMismatchError(
                f"{msg.sender} used Paillier key {fingerprint}, not the session key {self.public_key.fingerprint}.",
                party=msg.sender,
            )

    def _on_scores(self, msg: EncryptedScores):
        self.check_round(msg, self._batch["round"])
        self._check_fp(msg, msg.key_fingerprint)
        rows = self._batch["rows"]
        scores = paillier.from_bytes(self.public_key, msg.ciphertexts, count=len(rows), party=msg.sender)
        squares = None
        if needs_squares(self.hyper.expansion):
            squares = paillier.from_bytes(self.public_key, msg.squares, count=len(rows), party=msg.sender)
        self._enc_scores[msg.sender] = (scores, squares)
        return []

    def residual_messages(self) -> list[EncryptedResiduals]:
        """``[[e_i]] = [[U_i]]^{s_i} · [[V_i]]^{t_i} ⊕ c_i`` (see :mod:`riskfed.learning.linear.residuals`)."""
        missing = [f for f in self.fintechs if f not in self._enc_scores]
        if missing:
            raise ProtocolError(f"bank: no encrypted scores from {', '.join(missing)} this round.", party=missing[0])
        rows = self._batch["rows"]
        u_b = self.local.partial_scores(rows)
        plan = plan_residuals(u_b, self.y_aligned[rows], self.hyper.expansion)
        partner_sum = paillier.add_encrypted(self.public_key, *(self._enc_scores[f][0] for f in self.fintechs))
        terms = [(partner_sum, plan.s_q)]
        square_sum = None
        if plan.t_q is not None:
            # V = Σ_k u_k^2: with several fintechs the cross terms of U^2 are left out.
            square_sum = paillier.add_encrypted(self.public_key, *(self._enc_scores[f][1] for f in self.fintechs))
            terms.append((square_sum, plan.t_q))
        # Enc(c) · [[U]]^s · [[V]]^t with fresh randomness in Enc(c): a fintech knows the
        # randomness of its own [[u]], [[u²]] and could otherwise solve for the short s, t
        # row by row and read c — the bank's residual, hence the label.
        randomizers = self._batch.pop("randomizers", None)
        if self.hyper.randomness == "coordinator" and randomizers is None:
            raise ProtocolError("bank: no randomness from the coordinator this round.", party=COORDINATOR)
        workload = 2 * len(self.train_rows)  # two epochs of refreshes (own randomness)
        residuals = paillier.affine(
            self.public_key, terms, plan.c_q, n_jobs=self.n_jobs, workload=workload, randomizers=randomizers
        )
        self._enc_scores = {}
        track = self.hyper.track_loss
        self._batch.update(
            residuals=residuals,
            plan=plan,
            partner_sum=partner_sum if track else None,
            square_sum=square_sum if track else None,
        )
        blob = paillier.to_bytes(self.public_key, residuals)
        self.done("encrypted_scores")
        self.expect("batch_done", *self.fintechs)
        rnd = self._batch["round"]
        return [
            self.reply(
                EncryptedResiduals,
                f,
                rnd,
                ciphertexts=blob,
                count=len(residuals),
                key_fingerprint=self.public_key.fingerprint,
                track_loss=self.hyper.track_loss,
            )
            for f in self.fintechs
        ]

    def _on_batch_done(self, msg: BatchDone):
        self.check_round(msg, self._batch["round"])
        if self.hyper.track_loss and needs_loss_shares(self.hyper.expansion):
            self._check_fp(msg, msg.key_fingerprint)
            self._loss_shares[msg.sender] = paillier.from_bytes(self.public_key, msg.loss_share, count=1, party=msg.sender)[0]
        else:
            self._loss_shares[msg.sender] = None
        return []

    def masked_gradient(self) -> MaskedGradient:
        """The bank's encrypted gradient (and aggregate loss), masked for the coordinator."""
        missing = [f for f in self.fintechs if f not in self._loss_shares]
        if missing:
            raise ProtocolError(f"bank: {', '.join(missing)} did not finish the round.", party=missing[0])
        rows = self._batch["rows"]
        plan = self._batch["plan"]
        track = self.hyper.track_loss
        exps = self.local.exponents(rows, plan.b_q if track else None)
        products = [(self._batch["residuals"], exps)]
        if track and plan.t_q is not None:
            # Aggregate second-order loss: 2 Σ (σ(a) - y) U + Σ σ'(a) V (see batch_loss): one
            # column over [[U]] and [[V]] together.
            loss_bases = list(self._batch["partner_sum"]) + list(self._batch["square_sum"])
            products.append((loss_bases, np.concatenate([2 * plan.cprime_q, plan.s_q]).reshape(-1, 1)))
        elif track:
            # First-order: Σ (σ(a) - y) U, lifted below to the fintechs' shares' scale.
            products.append((self._batch["partner_sum"], plan.cprime_q.reshape(-1, 1)))
        # The loss column runs beside the gradient's columns, not after them.
        sums, *loss = multiexp_many(self.public_key, products, n_jobs=self.n_jobs)
        if track and plan.t_q is not None:
            sums.append(loss[0][0])
        elif track:
            # Aggregate first-order loss: Σ_k Σ u_k e (fintech shares) + Σ (u_B - a) e (own
            # column, zero with the bank anchor) + Σ (σ(a) - y) U lifted to the same scale.
            lifted = gmpy2.powmod(loss[0][0], 1 << LOSS_LIFT_BITS, self.public_key.n_squared)
            shares = [[self._loss_shares[f]] for f in self.fintechs]
            own = [sums.pop()] if plan.b_q is not None else []
            total = paillier.add_encrypted(self.public_key, [lifted], *shares, *([own] if own else []))
            sums.append(total[0])
        masks = draw_masks(len(sums), mask_bits(len(rows), self.hyper.parties))
        # Mask before sending: the coordinator must not see the gradient or the loss.
        masked = paillier.pack(
            self.public_key, paillier.add_plain(self.public_key, sums, masks), packing_slot_bits(self.hyper)
        )
        self._batch.update(masks=masks, residuals=None, partner_sum=None, square_sum=None)
        self.done("batch_done")
        self.expect("decrypted_masked", COORDINATOR)
        return self.reply(
            MaskedGradient,
            COORDINATOR,
            self._batch["round"],
            ciphertexts=paillier.to_bytes(self.public_key, masked),
            count=len(masked),
            key_fingerprint=self.public_key.fingerprint,
        )

    def _on_decrypted(self, msg: DecryptedMasked):
        self.check_round(msg, self._batch["round"])
        masks = self._batch["masks"]
        sums = unmask_packed(self.public_key, msg, masks, self.hyper)
        rows = self._batch["rows"]
        n_weights = self.local.weights.size
        self.local.apply_gradient(sums[:n_weights], len(rows))
        loss = batch_loss(sums[n_weights], self._batch["plan"], len(rows)) if self.hyper.track_loss else None
        self._batch.update(loss=loss, masks=None)
        self.done("decrypted_masked")
        return []

    @property
    def last_batch_loss(self) -> float | None:
        return self._batch.get("loss") if self._batch else None

    # -- epochs -----------------------------------------------------------------------
    def epoch_end_messages(self, epoch: int) -> list[EpochEnd]:
        self._reports = {}
        self._epoch_round = round_of(epoch, 999_999)
        self.expect("epoch_report", *self.fintechs)
        return [self.reply(EpochEnd, f, self._epoch_round, epoch=epoch) for f in self.fintechs]

    def _on_epoch_report(self, msg: EpochReport):
        self.check_round(msg, self._epoch_round)
        if not all(np.isfinite(v) and v >= 0 for v in (msg.score_change_sq, msg.score_norm_sq)):
            raise ProtocolError(f"{msg.sender} reported an invalid epoch summary.", party=msg.sender)
        self._reports[msg.sender] = (msg.score_change_sq, msg.score_norm_sq)
        return []

    def finish_epoch(self, epoch: int, losses: list[float]) -> dict:
        """Combine the epoch reports: relative change of the model, mean loss, stop or not."""
        change, norm = self.local.end_epoch()
        for f in self.fintechs:
            c, w = self._reports[f]
            change += c
            norm += w
        self.done("epoch_report")
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
        epochs = len(self.history)
        self.weights = self.local.final_weights.copy()
        self.expect("ack", COORDINATOR, *self.fintechs)
        # Party services (network runs) answer with their own traffic as well.
        self.expect("traffic_report", COORDINATOR, *self.fintechs)
        self.peer_traffic = {}
        rnd = round_of(epochs, 999_999)
        return [self.reply(TrainingStop, t, rnd, epochs=epochs, reason=reason) for t in (COORDINATOR, *self.fintechs)]

    # -- scoring ----------------------------------------------------------------------
    def score_requests(self, rows: np.ndarray, *, index: str = "aligned", round: int = SCORING_ROUND_BASE) -> list[ScoreRequest]:
        self._partials = {}
        self.expect("partial_scores", *self.fintechs)
        return [self.reply(ScoreRequest, f, round, index=index, rows=np.asarray(rows, dtype=np.int64)) for f in self.fintechs]

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
        self.done("partial_scores")
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


class ScoringBank(Role):
    """The bank in a scoring session: asks each fintech for partial scores of applicants.

    Same threat model as :class:`Bank`, restricted to scoring: it sends keyed-hash
    digests (or ECDH-blinded ids) of the applicants and learns the partial score ``u_k``
    of each applicant a fintech knows — the accepted inference-time leak — and which
    applicants each fintech knows. With ``keyed-hash`` a fresh key is made per session
    and shared only with that fintech; with ``ecdh`` a fintech learns only which of its
    own customers applied.
    """

    HANDLERS = {
        "session_ready": "_on_ready",
        "ack": "_on_ack",
        "psi_double_blinded": "_on_double_blinded",
        "partial_scores": "_on_partial_scores",
    }

    def __init__(
        self,
        fintechs: list[str],
        *,
        normalization: IdNormalization | None = None,
        psi_method: str = "keyed-hash",
        n_jobs: int = 1,
    ) -> None:
        super().__init__(BANK)
        settings.check("scoring_psi", psi_method, "ScoringBank")
        self.fintechs = list(fintechs)
        self.normalization = normalization or IdNormalization()
        self.psi_method = psi_method
        self.n_jobs = n_jobs
        self._round = SCORING_ROUND_BASE
        self._partner_points: dict[str, np.ndarray] = {}
        self._chunk: dict = {}

    def open_session(self, session_id: str | None = None) -> list[SessionOpen]:
        self.session_id = session_id or uuid.uuid4().hex
        self.expect("session_ready", *self.fintechs)
        return [
            self.reply(
                SessionOpen,
                f,
                0,
                purpose="scoring",
                parties=(BANK, *self.fintechs),
                psi_method=self.psi_method,
                id_normalization=self.normalization.to_dict(),
            )
            for f in self.fintechs
        ]

    def _on_ready(self, msg: SessionReady):
        return []

    def _on_ack(self, msg):
        return []

    def setup_messages(self) -> list:
        """Keyed-hash: one fresh key per fintech for this session. ECDH: nothing yet."""
        self.done("session_ready")
        if self.psi_method == "ecdh":
            self._ecdh = EcdhKey.generate()
            return []
        self._keys = {f: new_shared_key() for f in self.fintechs}
        self.expect("ack", *self.fintechs)
        return [self.reply(HashKeyShare, f, 0, key=self._keys[f], purpose="scoring") for f in self.fintechs]

    def chunk_messages(self, norm_ids: np.ndarray) -> list:
        """First request for a chunk of (normalised) applicant ids."""
        self._round += 1
        self._chunk = {"size": len(norm_ids), "partials": {}}
        ids = norm_ids.tolist()
        if self.psi_method == "ecdh":
            self.expect("psi_double_blinded", *self.fintechs)
            points = self._ecdh.blind(ids, n_jobs=self.n_jobs, party=BANK)
            return [self.reply(PsiBlinded, f, self._round, points=points) for f in self.fintechs]
        self.expect("partial_scores", *self.fintechs)
        return [
            self.reply(ScoreRequest, f, self._round, index="digests", digests=keyed_digests(ids, self._keys[f]))
            for f in self.fintechs
        ]

    def _on_double_blinded(self, msg: PsiDoubleBlinded):
        self.check_round(msg, self._round)
        if len(msg.double_blinded) != self._chunk["size"]:
            raise AlignmentError(f"{msg.sender} returned the wrong number of double-blinded ids.", party=msg.sender)
        if msg.sender not in self._partner_points:
            # The fintech's own blinded list arrives once per session; blind it once too.
            self._partner_points[msg.sender] = self._ecdh.reblind(msg.partner_blinded, n_jobs=self.n_jobs, party=msg.sender)
        b_pos, f_pos = match_positions(msg.double_blinded, self._partner_points[msg.sender], bank=BANK, partner=msg.sender)
        self._chunk.setdefault("matches", {})[msg.sender] = b_pos
        self.expect("partial_scores", *self.fintechs)
        return [self.reply(ScoreRequest, msg.sender, self._round, index="psi_list", rows=f_pos)]

    def _on_partial_scores(self, msg: PartialScores):
        self.check_round(msg, self._round)
        size = self._chunk["size"]
        scores = np.zeros(size)
        known = np.zeros(size, dtype=bool)
        if self.psi_method == "ecdh":
            rows = self._chunk["matches"][msg.sender]
            if len(msg.scores) != len(rows):
                raise ProtocolError(f"{msg.sender} returned {len(msg.scores)} scores for {len(rows)} rows.", party=msg.sender)
            scores[rows] = msg.scores
            known[rows] = True
        else:
            if len(msg.scores) != size or len(msg.known) != size:
                raise ProtocolError(f"{msg.sender} returned {len(msg.scores)} scores for {size} applicants.", party=msg.sender)
            scores, known = msg.scores.copy(), msg.known.copy()
            scores[~known] = 0.0
        if not np.isfinite(scores).all():
            raise ProtocolError(f"{msg.sender} returned non-finite partial scores.", party=msg.sender)
        self._chunk["partials"][msg.sender] = (scores, known)
        return []

    def chunk_result(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Σ_k u_k per applicant, whether every fintech knew it, and per-fintech scores."""
        missing = [f for f in self.fintechs if f not in self._chunk["partials"]]
        if missing:
            raise ProtocolError(f"bank: no partial scores from {', '.join(missing)}.", party=missing[0])
        self.done("partial_scores")
        self.done("psi_double_blinded")
        size = self._chunk["size"]
        total = np.zeros(size)
        known_all = np.ones(size, dtype=bool)
        per = {}
        for f in self.fintechs:
            scores, known = self._chunk["partials"][f]
            total += scores
            known_all &= known
            per[f] = scores
        return total, known_all, per
