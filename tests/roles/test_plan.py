"""The public schedule and the limits each party applies on its own: the rounds, the
coordinator's allowances, a fintech's view of the plan, the bank's fintech limit."""

from __future__ import annotations

import numpy as np
import pytest

from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.protocol.messages import PlanAccepted, SessionOpen, TrainingPlan, round_of
from riskfed.roles.bank import Bank
from riskfed.roles.base import public_key_from
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.plan import EpochCursor, round_after

SESSION = "s" * 32


# -- the schedule --------------------------------------------------------------------------


def test_rounds_follow_the_plan():
    hyper = Hyperparameters(max_epochs=2, steps_per_epoch=3)
    rounds = [round_of(0, 0)]
    while (nxt := round_after(rounds[-1], hyper)) is not None:
        rounds.append(nxt)
    assert rounds == [round_of(e, b) for e in range(2) for b in range(3)]


# -- the split -------------------------------------------------------------------------------


def test_estimator_defaults_to_a_fresh_secret():
    assert VerticalLogisticRegression().random_state is None


# -- the mask width grows with the number of parties ------------------------------------------


def test_a_bank_with_more_fintechs_than_the_encoding_supports_is_refused(tiny_bank):
    from riskfed.data.schema import validate_table

    table = validate_table(tiny_bank, party="bank", id_column="id", label_column="y")
    with pytest.raises(ConfigurationError, match="A session has 1 to 63 distinct fintechs .*; got 64"):
        Bank(table, [f"fintech_{k}" for k in range(1, 65)])


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
