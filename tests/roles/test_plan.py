"""The session secret, the public schedule and the limits each party applies on its own:
batch sizes, the stratified split, seeds, mask widths for up to 63 fintechs, the
coordinator's allowances and a fintech's view of the plan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskfed.crypto import paillier
from riskfed.crypto.encoding import STATISTICAL_SECURITY_BITS
from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.learning.linear.fixed_point import draw_masks, gradient_bound_bits, mask_bits, packing_slot_bits
from riskfed.learning.linear.hyperparameters import MAX_FINTECHS, Hyperparameters
from riskfed.learning.linear.schedule import (
    BATCHES,
    SPLIT,
    batch_sizes,
    check_seed,
    make_batches,
    session_rng,
    stratified_split,
)
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.protocol.messages import PlanAccepted, SessionOpen, TrainingPlan, round_of
from riskfed.roles.bank import Bank
from riskfed.roles.base import public_key_from
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.plan import EpochCursor, round_after

SESSION = "s" * 32


# -- the schedule --------------------------------------------------------------------------
@pytest.mark.parametrize("train", [256, 257, 511, 512, 700, 1023, 1024, 1279, 1280, 5000])
def test_batch_sizes_fold_a_short_tail_into_the_batch_before(train):
    hyper = Hyperparameters(batch_size=512, min_batch_size=256)
    sizes = batch_sizes(train, hyper)
    chunks = [min(512, train - s) for s in range(0, train, 512)]
    if len(chunks) > 1 and chunks[-1] < 256:
        chunks = chunks[:-2] + [chunks[-2] + chunks[-1]]
    assert sizes == chunks and sum(sizes) == train
    assert min(sizes) >= 256 or len(sizes) == 1


def test_batches_partition_the_training_rows_in_a_secret_order_per_epoch():
    hyper = Hyperparameters(batch_size=256)
    rows = np.arange(0, 3000, 3)
    first = make_batches(rows, 7, 0, hyper)
    assert [len(b) for b in first] == batch_sizes(len(rows), hyper)
    assert sorted(np.concatenate(first).tolist()) == rows.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(first, make_batches(rows, 7, 0, hyper)))
    assert not np.array_equal(np.concatenate(first), np.concatenate(make_batches(rows, 7, 1, hyper)))
    # Every bit of the seed counts: seeds that differ only far above 32 bits differ.
    high = make_batches(rows, 7 + (1 << 200), 0, hyper)
    assert not np.array_equal(np.concatenate(first), np.concatenate(high))


def test_secret_choices_use_separate_streams():
    a = session_rng(5, SPLIT).permutation(1000)
    b = session_rng(5, BATCHES, 0).permutation(1000)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, session_rng(5, SPLIT).permutation(1000))


def test_rounds_follow_the_plan():
    hyper = Hyperparameters(max_epochs=2, steps_per_epoch=3)
    rounds = [round_of(0, 0)]
    while (nxt := round_after(rounds[-1], hyper)) is not None:
        rounds.append(nxt)
    assert rounds == [round_of(e, b) for e in range(2) for b in range(3)]


# -- the split -------------------------------------------------------------------------------
@pytest.mark.parametrize("n, defaulters, test_size", [(1000, 213, 0.3), (300, 2, 0.3), (101, 50, 0.5), (5000, 700, 0.2)])
def test_stratified_split_keeps_class_shares_and_is_fresh_per_seed(n, defaulters, test_size):
    y = np.zeros(n, dtype=int)
    y[np.random.default_rng(0).choice(n, defaulters, replace=False)] = 1
    train, hold = stratified_split(y, test_size, session_rng(1, SPLIT))
    assert len(hold) == math.ceil(test_size * n) and sorted(np.r_[train, hold].tolist()) == list(range(n))
    assert abs(y[hold].sum() - defaulters * len(hold) / n) < 1
    again, _ = stratified_split(y, test_size, session_rng(1, SPLIT))
    other, _ = stratified_split(y, test_size, session_rng(2, SPLIT))
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_stratified_split_refuses_too_few_rows():
    with pytest.raises(ValueError, match="cannot both hold all 2 classes"):
        stratified_split(np.array([0, 1, 0, 1]), 0.1, session_rng(1, SPLIT))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", 1 << 32])
def test_seeds_are_none_or_32_bit_ints(seed):
    check_seed(None, name="random_state", owner="X")
    check_seed((1 << 32) - 1, name="random_state", owner="X")
    with pytest.raises(ConfigurationError, match=rf"The 'random_state' parameter of VerticalLogisticRegression must be None \(a fresh secret per session\) or an int in the range \[0, 4294967295\]. Got {seed!r} instead"):
        VerticalLogisticRegression(random_state=seed, key_bits=512, allow_insecure_key=True)._validate_params()


def test_estimator_defaults_to_a_fresh_secret():
    assert VerticalLogisticRegression().random_state is None


# -- the mask width grows with the number of parties ------------------------------------------
def test_mask_bits_cover_every_party_and_the_limit_is_enforced():
    rows = 1280
    for parties in range(2, MAX_FINTECHS + 2):
        extra = math.ceil(math.log2(parties))
        assert gradient_bound_bits(rows, parties) == gradient_bound_bits(rows, 2) - 1 + extra
        assert mask_bits(rows, parties) == gradient_bound_bits(rows, parties) + STATISTICAL_SECURITY_BITS
    for parties in (1, MAX_FINTECHS + 2):
        with pytest.raises(ConfigurationError, match="the bank and 1 to 63 fintechs"):
            gradient_bound_bits(rows, parties)
    with pytest.raises(ConfigurationError, match=r"'parties' parameter of VerticalLogisticRegression must be an int in the range \[2, 64\]"):
        Hyperparameters(parties=65)


def test_a_bank_with_more_fintechs_than_the_encoding_supports_is_refused(tiny_bank):
    from riskfed.data.schema import validate_table

    table = validate_table(tiny_bank, party="bank", id_column="id", label_column="y")
    with pytest.raises(ConfigurationError, match="A session has 1 to 63 distinct fintechs .*; got 64"):
        Bank(table, [f"fintech_{k}" for k in range(1, 65)])


@pytest.mark.parametrize("parties", [2, 3, 64])
def test_no_carry_between_packed_slots_at_the_worst_gradient(keypair, parties):
    """|g| just below the bound, masks at both ends of their range: packed, decrypted and
    unpacked, every slot gives back exactly g + m."""
    pk, sk = keypair
    hyper = Hyperparameters(batch_size=256, parties=parties)
    rows = hyper.batch_size + hyper.min_batch_size - 1  # the largest batch a folded tail makes
    bound = (1 << gradient_bound_bits(rows, parties)) - 1
    bits = mask_bits(rows, parties)
    low, high = 1 << (bits - STATISTICAL_SECURITY_BITS), (1 << bits) - 1
    gradients = [bound, -bound, bound, -bound, 0, 1]
    masks = [high, low, low, high, *draw_masks(2, bits)]
    masked = paillier.add_plain(pk, paillier.encrypt(pk, gradients), masks)
    packed = paillier.pack(pk, masked, packing_slot_bits(hyper))
    slots = paillier.unpack(paillier.decrypt(sk, packed, signed=False), len(gradients), packing_slot_bits(hyper), pk)
    assert [s - m for s, m in zip(slots, masks)] == gradients


# -- the coordinator's allowances ------------------------------------------------------------
def _coordinator(*, max_features=1024, purpose="training", resume_epoch=0, fintechs=("fintech_1",)):
    c = Coordinator(allow_insecure_key=True, max_features=max_features)
    [announce] = c.handle(
        SessionOpen(
            session_id=SESSION, sender="bank", recipient="coordinator", round=0, purpose=purpose,
            parties=("bank", "coordinator", *fintechs), key_bits=512, allow_insecure_key=True, resume_epoch=resume_epoch,
        )
    )
    return c, public_key_from(announce, party="bank")


def _declare(c, sender="fintech_1", features=2, slots=1):
    return c.handle(PlanAccepted(session_id=SESSION, sender=sender, recipient="coordinator", round=0, features=features, slots=slots))


def _plan(pk, weights=None, **hyper):
    hyper = dict(batch_size=256, steps_per_epoch=4, max_epochs=2) | hyper
    return TrainingPlan(
        session_id=SESSION, sender="bank", recipient="coordinator", round=0, hyperparameters=hyper,
        key_fingerprint=pk.fingerprint, train_size=1024, party_weights=weights or {"bank": 3, "fintech_1": 2},
    )


def test_coordinator_computes_allowances_from_declared_weights_and_its_own_ceiling():
    c, pk = _coordinator(max_features=4)
    with pytest.raises(ProtocolError, match="fintech_1 announced 5 weight\\(s\\) in 3 ciphertext\\(s\\); the coordinator allows 1 to 4 weights per party"):
        _declare(c, features=5, slots=3)
    with pytest.raises(ProtocolError, match="fintech_1 has not told the coordinator its number of weights"):
        c.handle(_plan(pk))
    _declare(c)
    with pytest.raises(ProtocolError, match="fintech_1 already told the coordinator its number of weights"):
        _declare(c)
    with pytest.raises(ProtocolError, match=r"The training plan gives fintech_1 3 weight\(s\) in 2 ciphertext\(s\) per round; fintech_1 told the coordinator 2 in 1"):
        c.handle(_plan(pk, {"bank": 3, "fintech_1": 3}))
    # The bank's weights include its intercept: 4 features + 1 at most, under either ceiling.
    with pytest.raises(ProtocolError, match=r"The training plan gives bank 6 weight\(s\); a party may have 1 to 4 features"):
        c.handle(_plan(pk, {"bank": 6, "fintech_1": 2}))
    with pytest.raises(ProtocolError, match=r"gives bank 4 weight\(s\); a party may have 1 to 2 features"):
        c.handle(_plan(pk, {"bank": 4, "fintech_1": 2}, max_features=2))
    with pytest.raises(ProtocolError, match="The training plan counts 3 parties; the session opened with the bank and 1 fintech"):
        c.handle(_plan(pk, parties=3))
    with pytest.raises(ProtocolError, match="The training plan has 3 batch\\(es\\) per epoch, which 1024 training rows"):
        c.handle(_plan(pk, steps_per_epoch=3))
    assert "masked_gradient" not in c._expect
    c.handle(_plan(pk))
    assert {p: a.slots for p, a in c._allowances.items()} == {"bank": 2, "fintech_1": 1}
    with pytest.raises(ProtocolError, match="did not expect a 'training_plan' message from bank now"):
        c.handle(_plan(pk))


def test_a_resumed_session_is_served_from_its_first_epoch_on():
    c, pk = _coordinator(purpose="resume", resume_epoch=1)
    _declare(c)
    c.handle(_plan(pk))
    assert {a.next_decryption for a in c._allowances.values()} == {round_of(1, 0)}


def test_coordinator_refuses_a_session_open_that_does_not_add_up():
    c = Coordinator(allow_insecure_key=True)
    base = dict(session_id=SESSION, sender="bank", recipient="coordinator", round=0, key_bits=512, allow_insecure_key=True)
    with pytest.raises(ProtocolError, match="takes part in training sessions only, not 'scoring'"):
        c.handle(SessionOpen(**base, purpose="scoring", parties=("bank", "fintech_1")))
    with pytest.raises(ProtocolError, match="its list of parties names 64 fintechs; a session has 1 to 63"):
        c.handle(SessionOpen(**base, parties=("bank", "coordinator", *(f"fintech_{k}" for k in range(1, 65)))))
    with pytest.raises(ProtocolError, match="a training session cannot start after epoch 2"):
        c.handle(SessionOpen(**base, parties=("bank", "coordinator", "fintech_1"), resume_epoch=2))
    assert c.session_id is None and c.public_key is None


# -- a fintech's view of the plan ---------------------------------------------------------------
def test_epoch_cursor_wants_the_planned_batches_in_order_and_disjoint():
    hyper = Hyperparameters(batch_size=256, max_epochs=2, steps_per_epoch=2)
    train = np.zeros(700, dtype=bool)
    train[:600] = True
    cursor = EpochCursor(hyper, train)
    first, second = np.arange(256), np.arange(256, 600)
    with pytest.raises(ProtocolError, match="batch 1 of epoch 0 is out of sequence; the plan's next is batch 0 of epoch 0"):
        cursor.check_batch(0, 1, second, me="f", min_rows=256)
    with pytest.raises(ProtocolError, match="batch 2 of epoch 0 is not in the plan \\(2 epoch\\(s\\) of 2 batch\\(es\\)\\)"):
        cursor.check_batch(0, 2, first, me="f", min_rows=256)
    with pytest.raises(ProtocolError, match="batch 0 has 300 rows; the plan's batch 0 has 256"):
        cursor.check_batch(0, 0, np.arange(300), me="f", min_rows=256)
    with pytest.raises(ProtocolError, match="f: the batch includes rows outside the training set"):
        cursor.check_batch(0, 0, np.arange(444, 700), me="f", min_rows=256)
    cursor.check_batch(0, 0, first, me="f", min_rows=256)
    cursor.take(first)
    with pytest.raises(ProtocolError, match="the end of epoch 0 comes after 1 of the 2 batch\\(es\\) of epoch 0"):
        cursor.check_epoch_end(0, me="f")
    with pytest.raises(ProtocolError, match="f refuses a batch that repeats 88 row\\(s\\) of an earlier batch of epoch 0"):
        cursor.check_batch(0, 1, np.arange(168, 512), me="f", min_rows=256)
    cursor.check_batch(0, 1, second, me="f", min_rows=256)
    cursor.take(second)
    cursor.check_epoch_end(0, me="f")
    cursor.next_epoch()
    cursor.check_batch(1, 0, second[:256], me="f", min_rows=256)  # a new epoch may reuse any row


def test_fintech_limits_are_checked_when_it_is_made():
    from riskfed.roles.fintech import Fintech

    for param in ("min_batch_size", "max_epochs"):
        with pytest.raises(ConfigurationError, match=rf"The '{param}' parameter of Fintech must be an int in the range \[1, inf\). Got 0 instead"):
            Fintech("fintech_1", None, **{param: 0})
