"""The coordinator: holds the Paillier private key and decrypts masked values.

Threat model for this role (semi-honest, colludes with no one; the whole table, and
what a cheating party can still do, are in docs/threat-model.md):

* **Holds** the Paillier private key (generated here, never sent, never pickled).
* **Receives** the session parameters and the plan from the bank (the number of training
  rows and each party's number of weights), each fintech's own statement of its weights,
  randomness requests (counts) and ``[[g + m]]`` from every party.
* **Sends** the public key to each party directly (nobody can substitute a key it
  controls), the decryptions ``g + m``, and fresh DJN randomizers ``h_s^r mod n²`` —
  encryptions of zero, made ahead of time with the factorisation; it keeps no copy.
* **Learns** only masked values, statistically independent of the gradients (masks 2^80
  times wider than any gradient), the batches' row counts and each party's number of
  features — never features, labels, weights, residuals, partial scores or ids.
* **Guards** against being used as a decryption oracle: it fixes each party's allowance
  itself from public, bounded numbers and decrypts, per party, exactly one request per
  planned round, in sequence, of exactly that many ciphertexts (randomness likewise);
  anything else is refused, logged, and changes nothing.
"""

from __future__ import annotations

import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from joblib.externals.loky import ProcessPoolExecutor

from riskfed import settings
from riskfed.crypto import native, paillier
from riskfed.crypto.keys import check_key_bits, generate_keypair
from riskfed.crypto.parallel import local_jobs
from riskfed.errors import ConfigurationError, CryptoError, ProtocolError
from riskfed.learning.linear.fixed_point import masked_values, packed_count
from riskfed.learning.linear.hyperparameters import MAX_FEATURES_PER_PARTY, Hyperparameters
from riskfed.learning.linear.residuals import needs_squares
from riskfed.learning.linear.schedule import batch_sizes
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    Ack,
    DecryptedMasked,
    KeyRequest,
    MaskedGradient,
    PlanAccepted,
    PublicKeyAnnounce,
    Randomness,
    RandomnessRequest,
    SessionOpen,
    TrainingPlan,
    TrainingStop,
    epoch_and_batch,
    round_of,
)
from riskfed.roles.base import Role, handles, session_fintechs
from riskfed.roles.plan import is_planned, round_after

# Rounds of randomness the coordinator keeps in the making for each party: enough to keep
# its threads busy while the parties run single-threaded code, few enough that little is
# wasted when training stops early at an epoch's end.
_AHEAD_ROUNDS = 3


@dataclass
class _Allowance:
    """What the coordinator serves one party in a session, fixed when the plan arrives."""

    slots: int  # ciphertexts per masked-gradient request
    per_row: int  # randomizers per batch row
    next_decryption: int | None  # the one round it may have decrypted next
    next_randomness: int | None
    last_decryption: int = 0
    last_randomness: int = 0


class Coordinator(Role):
    """The key holder.

    Parameters
    ----------
    allow_insecure_key:
        Test-only: accept a session that asks for a key below 2048 bits.
    n_jobs:
        Workers for making randomness (joblib semantics; 1 = in-process): threads sharing
        one table with the C kernel, else processes.
    max_features:
        The coordinator's own ceiling on any party's number of features (weights), on top
        of the one the bank's plan announces: it bounds how many ciphertexts a party may
        have decrypted per round, whatever the plan says.
    """

    def __init__(
        self,
        *,
        allow_insecure_key: bool = False,
        n_jobs: int = 1,
        name: str = COORDINATOR,
        max_features: int = MAX_FEATURES_PER_PARTY,
    ) -> None:
        super().__init__(name)
        settings.check("max_features", max_features, "Coordinator")
        self.allow_insecure_key = allow_insecure_key
        self.n_jobs = n_jobs
        self.max_features = max_features
        self._pool: ProcessPoolExecutor | None = None
        self._stock: dict[str, list] = {}
        self._window = 0
        self.randomizers_issued = 0
        self.public_key = None
        self._private_key = None
        self._fintechs: tuple[str, ...] = ()
        self._first_epoch = 0
        # fintech → (weights, ciphertexts per round) it told the coordinator itself
        self._declared: dict[str, tuple[int, int]] = {}
        self._hyper: Hyperparameters | None = None
        self._batch_rows: list[int] = []
        self._allowances: dict[str, _Allowance] = {}
        # Randomness made ahead: per party per round, the plan's last round, its shape.
        self._per_round: dict[str, int] = {}
        self._final_round = 0
        self._steps = self._epochs = 0
        self.decryptions = 0
        self.expect(SessionOpen, BANK)

    def __repr__(self) -> str:
        fp = self.public_key.fingerprint if self.public_key else None
        return f"Coordinator(session={self.session_id!r}, key={fp})"

    def _announce(self, to: str, round: int) -> PublicKeyAnnounce:
        pk = self.public_key
        width = (pk.key_bits + 7) // 8
        return self.reply(
            PublicKeyAnnounce,
            to,
            round,
            n=int(pk.n).to_bytes(width, "big"),
            h_s=int(pk.h_s).to_bytes(pk.ciphertext_bytes, "big"),
            fingerprint=pk.fingerprint,
        )

    @handles(SessionOpen)
    def _on_open(self, msg: SessionOpen):
        # Every check before anything changes: a refused opening leaves no trace.
        if msg.purpose not in ("training", "resume"):
            raise ProtocolError(f"{self.name} takes part in training sessions only, not {msg.purpose!r}.", party=msg.sender)
        fintechs = session_fintechs(msg, self.name, with_coordinator=True)
        if isinstance(msg.resume_epoch, bool) or msg.resume_epoch < 0 or (msg.purpose == "training" and msg.resume_epoch):
            raise ProtocolError(f"{self.name}: a {msg.purpose} session cannot start after epoch {msg.resume_epoch}.", party=msg.sender)
        check_key_bits(msg.key_bits, allow_insecure=self.allow_insecure_key and msg.allow_insecure_key, party=self.name)
        self.session_id = msg.session_id
        self.public_key, self._private_key = generate_keypair(msg.key_bits, allow_insecure_key=msg.allow_insecure_key)
        self._fintechs = fintechs
        self._first_epoch = msg.resume_epoch
        self.done(SessionOpen)
        self.expect(KeyRequest, *fintechs)
        # Each fintech tells the coordinator its number of weights itself (PlanAccepted),
        # so the bank alone cannot set another party's allowance.
        self.expect(PlanAccepted, *fintechs)
        self.expect(TrainingPlan, BANK)
        return [self._announce(BANK, msg.round)]

    @handles(KeyRequest)
    def _on_key_request(self, msg: KeyRequest):
        return [self._announce(msg.sender, msg.round)]

    @handles(PlanAccepted)
    def _on_declared(self, msg: PlanAccepted):
        """A fintech's own statement of its number of weights (checked against the plan)."""
        party = msg.sender
        if party in self._declared:
            raise ProtocolError(f"{party} already told the coordinator its number of weights in this session.", party=party)
        if not 1 <= msg.features <= self.max_features or msg.slots < 1:
            raise ProtocolError(
                f"{party} announced {msg.features} weight(s) in {msg.slots} ciphertext(s); the coordinator allows 1 to "
                f"{self.max_features} weights per party.",
                party=party,
            )
        self._declared[party] = (msg.features, msg.slots)
        return []

    @handles(TrainingPlan)
    def _on_plan(self, msg: TrainingPlan):
        if msg.key_fingerprint != self.public_key.fingerprint:
            raise ProtocolError(
                f"The training plan names key {msg.key_fingerprint}, not this session's key "
                f"{self.public_key.fingerprint}.",
                party=msg.sender,
            )
        try:
            hyper = Hyperparameters.from_dict(msg.hyperparameters)
        except (ConfigurationError, TypeError) as exc:
            raise ProtocolError(f"The training plan's hyper-parameters are invalid: {exc}", party=msg.sender) from None
        batch_rows = self._check_schedule(msg, hyper)
        allowances = self._allowances_for(msg, hyper)
        self._hyper, self._batch_rows, self._allowances = hyper, batch_rows, allowances
        for step in (KeyRequest, PlanAccepted, TrainingPlan):
            self.done(step)
        self.expect(MaskedGradient, *allowances)
        if hyper.randomness == "coordinator":
            self._plan_randomness(hyper)
        self.expect(TrainingStop, BANK)
        return [self.reply(Ack, msg.sender, msg.round)]

    def _check_schedule(self, msg: TrainingPlan, hyper: Hyperparameters) -> list[int]:
        """Rows per batch, from the public training-set size; the plan must agree with it."""
        if hyper.parties != 1 + len(self._fintechs):
            raise ProtocolError(
                f"The training plan counts {hyper.parties} parties; the session opened with the bank and "
                f"{len(self._fintechs)} fintech(s).",
                party=msg.sender,
            )
        size = msg.train_size
        sizes = batch_sizes(size, hyper) if size >= hyper.min_batch_size else []
        if len(sizes) != hyper.steps_per_epoch:
            raise ProtocolError(
                f"The training plan has {hyper.steps_per_epoch} batch(es) per epoch, which {size} training rows in "
                f"batches of {hyper.batch_size} do not make.",
                party=msg.sender,
            )
        return sizes

    def _allowances_for(self, msg: TrainingPlan, hyper: Hyperparameters) -> dict[str, _Allowance]:
        """Each party's allowance, computed here from public, bounded weight counts."""
        weights = msg.party_weights
        if set(weights) != {BANK, *self._fintechs} or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in weights.values()
        ):
            raise ProtocolError(
                f"The training plan does not say how many weights each party has (expected the bank and "
                f"{', '.join(self._fintechs)}).",
                party=msg.sender,
            )
        cap = min(hyper.max_features, self.max_features)
        key_bits = self.public_key.key_bits
        first = round_of(self._first_epoch, 0) if self._first_epoch < hyper.max_epochs else None
        per_row = 2 if needs_squares(hyper.expansion) else 1
        out = {}
        for party, count in weights.items():
            bank = party == BANK
            # The bank's weights include its intercept.
            if not 1 + bank <= count <= cap + bank:
                raise ProtocolError(
                    f"The training plan gives {party} {count} weight(s); a party may have 1 to {cap} features.",
                    party=msg.sender,
                )
            slots = packed_count(masked_values(count, bank=bank, hyper=hyper), key_bits, hyper)
            if not bank:
                told = self._declared.get(party)
                if told is None:
                    raise ProtocolError(f"{party} has not told the coordinator its number of weights.", party=party)
                if told != (count, slots):
                    raise ProtocolError(
                        f"The training plan gives {party} {count} weight(s) in {slots} ciphertext(s) per round; {party} "
                        f"told the coordinator {told[0]} in {told[1]}.",
                        party=party,
                    )
            out[party] = _Allowance(slots, 1 if bank else per_row, first, first)
        return out

    def _check_round(self, msg, last: int, expected: int | None, what: str) -> None:
        """Only the party's next planned round, once: no replays, no invented or skipped rounds."""
        party, rnd = msg.sender, msg.round
        if last and rnd <= last:
            raise ProtocolError(
                f"{party} already had {what.format(rnd)} (last served: round {last}); refusing a replay.", party=party
            )
        if not is_planned(rnd, self._hyper, first_epoch=self._first_epoch):
            raise ProtocolError(
                f"{party} asked for {what.format(rnd)}, which is not in the training plan "
                f"(epochs {self._first_epoch + 1}–{self._hyper.max_epochs} of {self._hyper.steps_per_epoch} batch(es)).",
                party=party,
            )
        if rnd != expected:
            raise ProtocolError(
                f"{party} asked for {what.format(rnd)} out of sequence; its next planned round is {expected}.",
                party=party,
            )

    @handles(MaskedGradient)
    def _on_masked(self, msg: MaskedGradient):
        party = msg.sender
        if msg.key_fingerprint != self.public_key.fingerprint:
            raise CryptoError(
                f"{party} encrypted under key {msg.key_fingerprint}, not the session key {self.public_key.fingerprint}.",
                party=party,
            )
        allowance = self._allowances[party]
        self._check_round(msg, allowance.last_decryption, allowance.next_decryption, "round {} decrypted")
        if msg.count != allowance.slots:
            raise ProtocolError(
                f"{party} asked for {msg.count} decryptions; the training plan allows {allowance.slots} per round.",
                party=party,
            )
        cts = paillier.from_bytes(self.public_key, msg.ciphertexts, count=msg.count, party=party)
        paillier.check_ciphertexts(self.public_key, cts, party=party, full=True)
        plain = paillier.decrypt(self._private_key, cts, signed=False)
        allowance.last_decryption = msg.round
        allowance.next_decryption = round_after(msg.round, self._hyper)
        self.decryptions += len(plain)
        width = (self.public_key.key_bits + 7) // 8
        return [
            self.reply(
                DecryptedMasked,
                party,
                msg.round,
                values=b"".join(int(v).to_bytes(width, "big") for v in plain),
                count=len(plain),
                key_fingerprint=self.public_key.fingerprint,
            )
        ]

    @handles(TrainingStop)
    def _on_stop(self, msg: TrainingStop):
        self.done(MaskedGradient)
        self.done(RandomnessRequest)
        self.done(TrainingStop)
        self.close()
        return [self.reply(Ack, msg.sender, msg.round)]

    # -- randomness ------------------------------------------------------------------
    def _plan_randomness(self, hyper: Hyperparameters) -> None:
        """Randomness made ahead per party, and the table size for the session."""
        fintech_per_row = 2 if needs_squares(hyper.expansion) else 1
        self._per_round = {p: hyper.batch_size * a.per_row for p, a in self._allowances.items()}
        self._final_round = round_of(hyper.max_epochs - 1, hyper.steps_per_epoch - 1)
        self._steps, self._epochs = hyper.steps_per_epoch, hyper.max_epochs
        self._stock.clear()
        # Row counts only (the plan has no positions): steps per epoch times the batch size,
        # for the one or two epochs most sessions take.
        train_rows = hyper.steps_per_epoch * hyper.batch_size
        per_session = min(hyper.max_epochs, 2) * train_rows * (1 + fintech_per_row * len(self._fintechs))
        jobs = local_jobs(self.n_jobs)
        # Threads share one table (C kernel); worker processes build one each.
        self._window = paillier.crt_window(self.public_key, per_session if native.ENABLED else per_session // jobs)
        self.expect(RandomnessRequest, *self._allowances)
        # Start the first rounds' randomness (and the tables) now, while the parties prepare.
        if jobs > 1:
            rounds = min(_AHEAD_ROUNDS, self._steps * (self._epochs - self._first_epoch))
            self._stock = {p: self._make(rounds * k) for p, k in self._per_round.items()}

    def _make(self, count: int) -> list[Future]:
        """Start making ``count`` randomizers (on the worker pool when there is one)."""
        sk, pk = self._private_key, self.public_key
        args = (int(sk.phe.p), int(sk.phe.q), int(pk.h_s))
        jobs = local_jobs(self.n_jobs)
        if count <= 0:
            return []
        if jobs <= 1 or count < 256:
            return [_ready(paillier.crt_randomizers(*args, count, self._window))]
        if self._pool is None:
            if native.ENABLED:
                # The C kernel releases the GIL: threads of this process share one table.
                self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="riskfed-randomness")
            else:
                # The coordinator's own processes (a private loky pool: fresh interpreters
                # that inherit nothing and need no __main__ guard in the caller's script);
                # they receive p and q with each call and keep them only in their table cache.
                self._pool = ProcessPoolExecutor(max_workers=jobs)
            weakref.finalize(self, _shutdown, self._pool, self._stock)
        sizes = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
        futures = []
        for k in sizes:
            if k:
                futures.append(self._pool.submit(paillier.crt_randomizers, *args, k, self._window, threads=jobs))
                futures[-1].size = k  # how many it will make (the stock's count of what is queued)
        return futures

    @handles(RandomnessRequest)
    def _on_randomness_request(self, msg: RandomnessRequest):
        party = msg.sender
        if msg.key_fingerprint != self.public_key.fingerprint:
            raise CryptoError(f"{party} asked for randomness under key {msg.key_fingerprint}, not this session's.", party=party)
        allowance = self._allowances[party]
        self._check_round(msg, allowance.last_randomness, allowance.next_randomness, "randomness for round {}")
        rows = self._batch_rows[epoch_and_batch(msg.round)[1]]
        if msg.count != rows * allowance.per_row:
            raise ProtocolError(
                f"{party} asked for {msg.count} randomizers for round {msg.round}; its batch of {rows} rows needs "
                f"exactly {rows * allowance.per_row}.",
                party=party,
            )
        stock = self._stock.pop(party, [])
        ready: list = []
        while len(ready) < msg.count and stock:  # oldest first; later shares keep going
            ready += stock.pop(0).result()
        if len(ready) < msg.count:
            ready += [r for f in self._make(msg.count - len(ready)) for r in f.result()]
        values, rest = ready[: msg.count], ready[msg.count :]
        # Each randomizer is sent once: what is left over stays in stock for this party.
        # Shares for the next few rounds (a full batch's worth each) are kept in the
        # making, so the coordinator's threads fill the time the parties spend in
        # single-threaded code; nothing is made past the last round the plan allows.
        self._stock[party] = [_ready(rest)] + stock
        if self._pool is not None and msg.round < self._final_round:
            ahead = min(_AHEAD_ROUNDS, self._rounds_after(msg.round)) * self._per_round[party]
            queued = sum(f.size for f in self._stock[party])
            if ahead > queued:
                self._stock[party] += self._make(ahead - queued)
        allowance.last_randomness = msg.round
        allowance.next_randomness = round_after(msg.round, self._hyper)
        self.randomizers_issued += len(values)
        return [
            self.reply(
                Randomness,
                party,
                msg.round,
                values=paillier.to_bytes(self.public_key, values),
                count=len(values),
                key_fingerprint=self.public_key.fingerprint,
            )
        ]

    def _rounds_after(self, rnd: int) -> int:
        """How many training rounds the plan allows after round ``rnd``."""
        epoch, batch = epoch_and_batch(rnd)
        return (self._epochs - 1 - epoch) * self._steps + (self._steps - 1 - batch)

    def close(self) -> None:
        """Stop the randomness workers and drop unsent randomizers."""
        if self._pool is not None:
            _shutdown(self._pool, self._stock)
            self._pool = None
        self._stock.clear()


def _shutdown(pool: ProcessPoolExecutor | ThreadPoolExecutor, stock: dict[str, list]) -> None:
    """Cancel the shares not started, let one being made finish (a fraction of a second:
    killing workers under loky's bookkeeping races its manager thread), stop the pool."""
    for futures in stock.values():
        for f in futures:
            f.cancel()
    stock.clear()
    pool.shutdown(wait=True)


def _ready(values: list) -> Future:
    done: Future = Future()
    done.set_result(values)
    done.size = len(values)
    return done
