"""Adversarial parties: a curious or cheating fintech, a cheating bank, an outsider.

Each attack is made by a party that otherwise follows the protocol: it tries the attack,
is refused with a :class:`~riskfed.errors.ProtocolError`, and goes on honestly. The honest
parties' session survives every attempt and ends with exactly the model of an undisturbed
run (same seed; fresh keys, randomness and masks).

All parties run in memory with 512-bit test-only keys (``allow_insecure_key=True``).
"""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from riskfed.data.schema import validate_table
from riskfed.errors import ProtocolError
from riskfed.job import run_pipeline
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.schedule import SPLIT, session_rng, stratified_split
from riskfed.protocol import codec
from riskfed.protocol.messages import RandomnessRequest, SessionOpen, TrainingPlan, round_of
from riskfed.roles.bank import Bank
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import Fintech
from riskfed.roles.plan import round_after
from riskfed.session.progress import ProgressEvent
from riskfed.session.training import run_training_session
from riskfed.transport.memory import InMemoryTransport

INVENTED = 7_500_001  # epoch 7, batch 500000: in no plan here, and past every served round
SEED = 11  # the undisturbed run and every attacked run use it: same batches, same model
HYPER = Hyperparameters(batch_size=256, max_epochs=2, tol=0.0)  # 735 training rows: 2 batches an epoch


@pytest.fixture(scope="module")
def tables(small_pilot):
    bank = validate_table(
        small_pilot.bank, party="bank", id_column=small_pilot.id_column, label_column=small_pilot.label_column
    )
    fintech = validate_table(small_pilot.fintechs[0], party="fintech_1", id_column=small_pilot.id_column)
    return bank, fintech


class Attacker:
    """Mixin: a party that can reach the others through the transport and notes refusals."""

    transport: InMemoryTransport

    def attempt(self, message, match: str) -> None:
        with pytest.raises(ProtocolError, match=match):
            self.transport.request(message)
        self.refused = getattr(self, "refused", []) + [match]


def federation(tables, *, bank_cls=Bank, fintech_cls=Fintech):
    bank_table, fintech_table = tables
    transport = InMemoryTransport(keep_transcript=True)
    bank = bank_cls(bank_table, ["fintech_1"], allow_insecure_key=True, seed=SEED)
    fintech = fintech_cls("fintech_1", fintech_table, allow_insecure_key=True)
    coordinator = Coordinator(allow_insecure_key=True)
    for role in (bank, coordinator, fintech):
        transport.register(role)
        role.transport = transport
    return transport, bank, fintech, coordinator


def train(transport, bank, **kwargs):
    return run_training_session(bank, transport, hyper=HYPER, key_bits=512, psi_method="keyed-hash", **kwargs)


@pytest.fixture(scope="module")
def undisturbed(tables):
    transport, bank, fintech, coordinator = federation(tables)
    outcome = train(transport, bank)
    assert len(outcome.batch_losses) == 4  # two batches per epoch, and an epoch boundary
    return {"bank": bank.weights, "fintech": fintech.weights, "decryptions": coordinator.decryptions, "outcome": outcome}


def assert_same_model(bank, fintech, undisturbed) -> None:
    np.testing.assert_array_equal(bank.weights, undisturbed["bank"])
    np.testing.assert_array_equal(fintech.weights, undisturbed["fintech"])


# -- a curious fintech replays the split ---------------------------------------------------
def holdout_ranks(n: int, k: int, split) -> tuple[np.ndarray, np.ndarray]:
    """Which ranks within each class a seeded stratified split holds out. Such a split
    draws from class counts only, so labels sorted by class give the ranks for any data."""
    fake = np.r_[np.zeros(n - k, dtype=int), np.ones(k, dtype=int)]
    held = np.zeros(n, dtype=bool)
    held[split(fake)] = True
    return held[: n - k], held[n - k :]


def replay(holdout: np.ndarray, k: int, split) -> tuple[np.ndarray, np.ndarray] | None:
    """The fintech's attack: every labelling with ``k`` defaulters whose rows at the
    replayed ranks are exactly the holdout it was shown. Returns, per row, whether label 0
    and label 1 are possible (``None``: no labelling reproduces the split)."""
    n = len(holdout)
    h0, h1 = holdout_ranks(n, k, split)
    ones = np.arange(k + 1)  # state: defaulters among the rows before this one

    def allowed(p: int):
        zeros = p - ones
        one = (ones < k) & (np.r_[h1, False][np.minimum(ones, k)] == holdout[p])
        zero = (zeros >= 0) & (zeros < n - k) & (np.r_[h0, False][np.clip(zeros, 0, n - k)] == holdout[p])
        return one, zero

    moves = [allowed(p) for p in range(n)]
    ahead = np.zeros((n + 1, k + 1), dtype=bool)
    ahead[0, 0] = True
    for p, (one, zero) in enumerate(moves):
        ahead[p + 1] = (ahead[p] & zero) | np.r_[False, (ahead[p] & one)[:-1]]
    if not ahead[n, k]:
        return None
    behind = np.zeros((n + 1, k + 1), dtype=bool)
    behind[n, k] = True
    for p in range(n - 1, -1, -1):
        one, zero = moves[p]
        behind[p] = (zero & behind[p + 1]) | (one & np.r_[behind[p + 1][1:], False])
    can0 = np.array([np.any(ahead[p] & moves[p][1] & behind[p + 1]) for p in range(n)])
    can1 = np.array([np.any(ahead[p] & moves[p][0] & np.r_[behind[p + 1][1:], False]) for p in range(n)])
    return can0, can1


def old_split(seed: int, test_size: float = 0.3):
    """riskfed's former split: scikit-learn's with ``random_state=seed`` (default 0)."""
    return lambda y: train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)[1]


def test_curious_fintech_cannot_replay_the_split_without_the_session_secret(make_estimator, small_pilot):
    model = make_estimator(random_state=None, max_epochs=1).fit(
        small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default", keep_transcript=True
    )
    [plan] = [m for m in model.transport_.received_by("fintech_1") if isinstance(m, TrainingPlan)]
    n = len(plan.train_rows) + len(plan.holdout_rows)
    seen = np.zeros(n, dtype=bool)
    seen[plan.holdout_rows] = True
    y = model.roles_["bank"].y_aligned  # the truth, to score the attack
    k = int(y.sum())  # the strongest attacker: it knows the exact number of defaulters

    # Against the former seed-0 split the replay works: only the true count reproduces
    # the split, and it pins down many labels, every one of them right.
    held = np.zeros(n, dtype=bool)
    held[old_split(0)(y)] = True
    assert [c for c in range(k - 15, k + 16) if replay(held, c, old_split(0)) is not None] == [k]
    can0, can1 = replay(held, k, old_split(0))
    certain = can0 ^ can1
    assert certain.mean() > 0.2 and np.array_equal(y[certain], can1[certain].astype(int))

    # riskfed's split comes from a fresh 256-bit secret: no seed the fintech can try
    # (the old default, small ints) reproduces what it was shown.
    for seed in range(32):
        assert replay(seen, k, old_split(seed)) is None, seed
        ours = lambda labels, s=seed: stratified_split(labels, 0.3, session_rng(s, SPLIT))[1]  # noqa: E731
        assert replay(seen, k, ours) is None, seed

    # A fixed seed reveals, as documented: knowing it, the same replay succeeds.
    known = make_estimator(random_state=SEED, max_epochs=1).fit(
        small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default"
    )
    fixed = np.zeros(n, dtype=bool)
    fixed[known.outcome_.holdout_rows] = True
    y_fixed = known.roles_["bank"].y_aligned
    ours = lambda labels: stratified_split(labels, 0.3, session_rng(SEED, SPLIT))[1]  # noqa: E731
    can0, can1 = replay(fixed, int(y_fixed.sum()), ours)
    certain = can0 ^ can1
    assert certain.any() and np.array_equal(y_fixed[certain], can1[certain].astype(int))


def test_every_session_draws_a_fresh_secret_that_is_never_sent_or_logged(make_estimator, small_pilot, caplog):
    fits = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            fits.append(
                make_estimator(random_state=None, max_epochs=1).fit(
                    small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default",
                    keep_transcript=True,
                )
            )
    seeds = [m.roles_["bank"].session_seed for m in fits]
    assert seeds[0] != seeds[1] and all(s.bit_length() > 200 for s in seeds)
    holdouts = [set(m.outcome_.aligned.bank_rows[m.outcome_.holdout_rows].tolist()) for m in fits]
    assert holdouts[0] != holdouts[1]
    for model, seed in zip(fits, seeds):
        forms = [str(seed).encode(), seed.to_bytes(32, "big"), seed.to_bytes(32, "little"), f"{seed:x}".encode()]
        for entry in model.transport_.transcript:
            blob = codec.encode(entry.message)
            assert not any(form in blob for form in forms), entry.step
        assert str(seed) not in caplog.text and f"{seed:x}" not in caplog.text
        assert str(seed) not in repr(model.roles_["bank"])
        assert str(seed) not in str(model.outcome_.hyperparameters)
    # Nor in report.json or the bank's model part.
    result = run_pipeline(
        small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default",
        estimator=make_estimator(random_state=None, max_epochs=1), centralized=False,
    )
    seed = result.estimator.roles_["bank"].session_seed
    written = json.dumps(result.report) + json.dumps(result.estimator.model_.bank)
    assert str(seed) not in written and f"{seed:x}" not in written


# -- a fintech packs foreign ciphertexts, invents or replays rounds -------------------------
class GreedyFintech(Attacker, Fintech):
    """Before each honest masked-gradient request it tries to have more decrypted: the
    residuals it received packed into extra slots, an invented round, the next round,
    last round again; and more randomness, for an invented round."""

    def _on_batch(self, msg):
        [request] = super()._on_batch(msg)
        self.attempt(
            dataclasses.replace(request, round=INVENTED),
            f"fintech_1 asked for randomness for round {INVENTED}, which is not in the training plan",
        )
        self.attempt(
            dataclasses.replace(request, count=2 * request.count),
            rf"asked for {2 * request.count} randomizers for round {msg.round}; its batch of {len(msg.rows)} rows needs exactly {request.count}",
        )
        return [request]

    def _on_residuals(self, msg):
        [honest] = super()._on_residuals(msg)
        width = self.public_key.ciphertext_bytes
        foreign = dataclasses.replace(
            honest, ciphertexts=honest.ciphertexts + msg.ciphertexts[: 8 * width], count=honest.count + 8
        )
        self.attempt(foreign, rf"fintech_1 asked for {honest.count + 8} decryptions; the training plan allows {honest.count} per round")
        self.attempt(
            dataclasses.replace(honest, round=INVENTED),
            rf"fintech_1 asked for round {INVENTED} decrypted, which is not in the training plan",
        )
        after = round_after(honest.round, self.hyper)
        if after is not None:
            self.attempt(
                dataclasses.replace(honest, round=after),
                rf"fintech_1 asked for round {after} decrypted out of sequence; its next planned round is {honest.round}",
            )
        if getattr(self, "last_request", None) is not None:
            self.attempt(self.last_request, rf"already had round {self.last_request.round} decrypted .*refusing a replay")
        self.last_request = honest
        return [honest]


def test_fintech_cannot_have_foreign_ciphertexts_or_extra_rounds_decrypted(tables, undisturbed):
    transport, bank, fintech, coordinator = federation(tables, fintech_cls=GreedyFintech)
    outcome = train(transport, bank)
    rounds = len(outcome.batch_losses)
    assert len(fintech.refused) == 2 * rounds + 2 * rounds + (rounds - 1) + (rounds - 1)
    # Not one extra value was decrypted, and the session ended with the undisturbed model.
    assert coordinator.decryptions == undisturbed["decryptions"]
    assert_same_model(bank, fintech, undisturbed)


def test_fintech_must_tell_the_coordinator_what_it_tells_the_bank(tables):
    class Inflating(Fintech):
        def _accepted(self, to, rnd):
            msg = super()._accepted(to, rnd)
            # 200 extra "features" for the coordinator only: 100 more decryptions a round.
            return dataclasses.replace(msg, features=msg.features + 200, slots=msg.slots + 100) if to == "coordinator" else msg

    transport, bank, _, coordinator = federation(tables, fintech_cls=Inflating)
    with pytest.raises(ProtocolError, match=r"The training plan gives fintech_1 \d+ weight\(s\) in \d+ ciphertext\(s\) per round; fintech_1 told the coordinator \d+ in \d+"):
        train(transport, bank)
    assert coordinator.decryptions == 0 and "masked_gradient" not in coordinator._expect


# -- a bank asks for tiny or overlapping batches ----------------------------------------------
class PryingBank(Attacker, Bank):
    """Tries a plan with batches of one row, then single-row and overlapping batches,
    before each honest step."""

    def plan_training(self, hyper, **kwargs):
        plans = super().plan_training(hyper, **kwargs)
        tiny = plans[0].hyperparameters | {"batch_size": 1, "min_batch_size": 1, "steps_per_epoch": plans[0].train_size}
        self.attempt(
            dataclasses.replace(plans[0], hyperparameters=tiny),
            r"fintech_1 refuses the training plan: it allows batches of 1 row\(s\) \(batch_size=1, min_batch_size=1\); "
            "fintech_1's minimum batch size is 256",
        )
        return plans

    def batch_requests(self, epoch, batch, rows):
        out = super().batch_requests(epoch, batch, rows)
        request = out[0]
        self.attempt(dataclasses.replace(request, rows=request.rows[:1]), "fintech_1 refuses a batch of 1 rows; the minimum is 256")
        if batch > 0:
            # Reuse 10 rows of the epoch's first batch: the difference of the two gradients
            # (or losses) would isolate them.
            mixed = np.concatenate([self.first_batch[:10], request.rows[10:]])
            self.attempt(
                dataclasses.replace(request, rows=mixed),
                "fintech_1 refuses a batch that repeats 10 row\\(s\\) of an earlier batch of epoch " + str(epoch),
            )
        else:
            self.first_batch = request.rows
        return out


def test_bank_cannot_make_a_fintech_serve_tiny_or_overlapping_batches(tables, undisturbed):
    transport, bank, fintech, _ = federation(tables, bank_cls=PryingBank)
    outcome = train(transport, bank)
    rounds = len(outcome.batch_losses)
    assert len(bank.refused) == 1 + rounds + (rounds - HYPER.max_epochs)
    assert_same_model(bank, fintech, undisturbed)


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"min_batch_size": 300}, r"fintech_1 refuses the training plan: it allows batches of 256 row\(s\) .*minimum batch size is 300"),
        ({"max_epochs": 1}, "fintech_1 refuses the training plan: 2 epochs; fintech_1 allows at most 1"),
    ],
)
def test_fintech_limits_hold_whatever_the_plan_says(tables, limits, message):
    """The fintech's own limits, not the plan's: refused before it prepares anything."""
    transport, bank, fintech, _ = federation(tables, fintech_cls=lambda *a, **kw: Fintech(*a, **kw, **limits))
    with pytest.raises(ProtocolError, match=message):
        train(transport, bank)
    assert fintech._local is None and "batch_request" not in fintech._expect


# -- someone other than the bank opens a session ------------------------------------------------
def test_only_the_bank_opens_sessions_and_a_second_opening_replaces_nothing(tables, undisturbed):
    transport, bank, fintech, coordinator = federation(tables)
    common = dict(round=0, key_bits=512, allow_insecure_key=True, parties=("bank", "coordinator", "fintech_1", "fintech_2"))

    def intrude(event: ProgressEvent) -> None:
        if event.phase != "training" or getattr(intrude, "done", False):
            return
        intrude.done = True
        running = bank.session_id
        for target in ("coordinator", "fintech_1"):
            role = transport.nodes[target].role
            # An outsider with a valid certificate, for a new session and for the running one.
            with pytest.raises(ProtocolError, match=rf"{target} refused a 'session_open' message from fintech_2 for session 'f+'"):
                transport.request(SessionOpen(session_id="f" * 32, sender="fintech_2", recipient=target, **common))
            with pytest.raises(ProtocolError, match=f"{target} did not expect a 'session_open' message from fintech_2 now"):
                transport.request(SessionOpen(session_id=running, sender="fintech_2", recipient=target, **common))
            # The bank itself cannot replace the running session either.
            with pytest.raises(ProtocolError, match=rf"{target} refused a 'session_open' message from bank for session 'b+'"):
                transport.request(SessionOpen(session_id="b" * 32, sender="bank", recipient=target, **common))
            assert role.session_id == running

    outcome = train(transport, bank, progress=intrude)
    assert intrude.done and outcome.session_id == bank.session_id
    assert_same_model(bank, fintech, undisturbed)
    assert coordinator.decryptions == undisturbed["decryptions"]


def test_fresh_roles_accept_a_session_only_from_the_bank(tables):
    _, fintech_table = tables
    opening = dict(session_id="s" * 32, round=0, key_bits=512, allow_insecure_key=True)
    good = ("bank", "coordinator", "fintech_1")
    for role in (Coordinator(allow_insecure_key=True), Fintech("fintech_1", fintech_table, allow_insecure_key=True)):
        with pytest.raises(ProtocolError, match=f"{role.name} accepts 'session_open' only from bank, not from fintech_2"):
            role.handle(SessionOpen(sender="fintech_2", recipient=role.name, parties=good, **opening))
        # The bank's opening must name the parties properly: each once, the recipient too.
        bad = {("bank", "coordinator", "fintech_1", "fintech_1"): "names a party twice"}
        if role.name == "fintech_1":
            bad[("bank", "coordinator", "fintech_9")] = "does not name fintech_1"
        for parties, problem in bad.items():
            with pytest.raises(ProtocolError, match=f"{role.name} refused a 'training' session from bank: its list of parties {problem}"):
                role.handle(SessionOpen(sender="bank", recipient=role.name, parties=parties, **opening))
        assert role.session_id is None and set(role._expect) == {"session_open"}


def test_coordinator_serves_randomness_only_for_planned_rounds(tables, undisturbed):
    """The bank asks for randomness for an invented round and for too many rows."""

    class Hoarding(Attacker, Bank):
        def batch_requests(self, epoch, batch, rows):
            out = super().batch_requests(epoch, batch, rows)
            [ask] = [m for m in out if isinstance(m, RandomnessRequest)]
            self.attempt(dataclasses.replace(ask, round=round_of(epoch, 999)), rf"bank asked for randomness for round {round_of(epoch, 999)}, which is not in the training plan")
            self.attempt(dataclasses.replace(ask, count=ask.count + 1), "needs exactly")
            return out

    transport, bank, fintech, _ = federation(tables, bank_cls=Hoarding)
    outcome = train(transport, bank)
    assert len(bank.refused) == 2 * len(outcome.batch_losses)
    assert_same_model(bank, fintech, undisturbed)
