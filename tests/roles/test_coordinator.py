"""The coordinator on its own: key floor, allowances it computes itself, one decryption per
planned round in sequence, Z*_{n^2}."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from riskfed.crypto import paillier, randomness
from riskfed.errors import CryptoError, InsecureKeyError, InvalidCiphertextError, ProtocolError
from riskfed.protocol.messages import (
    Ack,
    DecryptedMasked,
    KeyRequest,
    MaskedGradient,
    PlanAccepted,
    PublicKeyAnnounce,
    SessionOpen,
    TrainingPlan,
    TrainingStop,
)
from riskfed.roles.base import public_key_from
from riskfed.roles.coordinator import Coordinator

SESSION = "s" * 32


def _open(coordinator, *, key_bits=512, allow=True, parties=("bank", "coordinator", "fintech_1")):
    msg = SessionOpen(
        session_id=SESSION,
        sender="bank",
        recipient="coordinator",
        round=0,
        parties=parties,
        key_bits=key_bits,
        allow_insecure_key=allow,
    )
    return coordinator.handle(msg)


# At 512 bits with 256-row batches a ciphertext packs two masked values: the bank's 3
# weights and its loss column take 2 ciphertexts per round, fintech_1's 2 weights 1.
WEIGHTS = {"bank": 3, "fintech_1": 2}
PLANNED = dict(batch_size=256, steps_per_epoch=4)  # 1024 training rows


def _declare(c, features=2, slots=1, sender="fintech_1"):
    """A fintech tells the coordinator its number of weights itself."""
    msg = PlanAccepted(session_id=SESSION, sender=sender, recipient="coordinator", round=0, features=features, slots=slots)
    return c.handle(msg)


def _opened(c, *, train_size=None, weights=WEIGHTS, **hyper):
    """Open a session on ``c`` and let fintech_1 declare its 2 weights; return the public
    key and the bank's plan (bank 2 slots, fintech_1 1 slot, plus ``hyper``), not yet
    delivered."""
    [announce] = _open(c)
    pk = public_key_from(announce, party="bank")
    _declare(c)
    hyper = PLANNED | hyper
    if train_size is None:
        train_size = hyper["batch_size"] * hyper["steps_per_epoch"]
    plan = TrainingPlan(
        session_id=SESSION,
        sender="bank",
        recipient="coordinator",
        round=0,
        hyperparameters=hyper,
        key_fingerprint=pk.fingerprint,
        train_size=train_size,
        party_weights=dict(weights),
    )
    return pk, plan


@pytest.fixture
def coordinator():
    """A coordinator with an open session and a plan: bank 2 slots, fintech_1 1 slot."""
    c = Coordinator(allow_insecure_key=True)
    pk, plan = _opened(c)
    assert isinstance(c.handle(plan)[0], Ack)
    return c, pk


def _masked(pk, sender, values, rnd, count=None):
    cts = paillier.encrypt(pk, values)
    return MaskedGradient(
        session_id=SESSION,
        sender=sender,
        recipient="coordinator",
        round=rnd,
        ciphertexts=paillier.to_bytes(pk, cts),
        count=len(values) if count is None else count,
        key_fingerprint=pk.fingerprint,
    )


def _values(msg: DecryptedMasked, pk) -> list[int]:
    width = (pk.key_bits + 7) // 8
    return [int.from_bytes(msg.values[i : i + width], "big") for i in range(0, len(msg.values), width)]


def test_announces_its_key_to_bank_and_fintechs():
    c = Coordinator(allow_insecure_key=True)
    [announce] = _open(c)
    assert isinstance(announce, PublicKeyAnnounce) and announce.recipient == "bank"
    pk = public_key_from(announce, party="bank")
    assert pk.key_bits == 512 and pk == c.public_key
    [again] = c.handle(KeyRequest(session_id=SESSION, sender="fintech_1", recipient="coordinator", round=0))
    assert again.recipient == "fintech_1" and again.fingerprint == pk.fingerprint
    with pytest.raises(ProtocolError, match="accepts 'key_request' only from fintech_1, not from mallory"):
        c.handle(KeyRequest(session_id=SESSION, sender="mallory", recipient="coordinator", round=0))


@pytest.mark.parametrize("coordinator_flag, message_flag", [(False, True), (True, False), (False, False)])
def test_small_key_needs_the_flag_on_both_sides(coordinator_flag, message_flag):
    c = Coordinator(allow_insecure_key=coordinator_flag)
    with pytest.raises(InsecureKeyError, match="512-bit Paillier key is below the 2048-bit floor") as info:
        _open(c, allow=message_flag)
    assert info.value.party == "coordinator"
    assert c.public_key is None and c.session_id is None


def test_decrypts_exactly_the_announced_slots_once_per_round(coordinator):
    c, pk = coordinator
    [reply] = c.handle(_masked(pk, "bank", [11, 2**100], rnd=1))
    assert isinstance(reply, DecryptedMasked) and reply.recipient == "bank" and reply.count == 2
    assert _values(reply, pk) == [11, 2**100]
    [reply] = c.handle(_masked(pk, "fintech_1", [5], rnd=1))
    assert _values(reply, pk) == [5]
    assert c.decryptions == 3

    with pytest.raises(ProtocolError, match=r"bank already had round 1 decrypted \(last served: round 1\); refusing a replay"):
        c.handle(_masked(pk, "bank", [1, 2], rnd=1))
    with pytest.raises(ProtocolError, match="already had round 0 decrypted"):
        c.handle(_masked(pk, "fintech_1", [1], rnd=0))
    with pytest.raises(ProtocolError, match="bank asked for 3 decryptions; the training plan allows 2 per round"):
        c.handle(_masked(pk, "bank", [1, 2, 3], rnd=2))
    with pytest.raises(ProtocolError, match="fintech_1 asked for 2 decryptions; the training plan allows 1 per round"):
        c.handle(_masked(pk, "fintech_1", [1, 2], rnd=2))
    # A count that lies about the payload is caught by the wire check.
    with pytest.raises(ProtocolError, match=r"fintech_1 sent 256 bytes of ciphertexts; expected 1 ciphertexts of 128 bytes"):
        c.handle(_masked(pk, "fintech_1", [1, 2], rnd=2, count=1))
    assert c.decryptions == 3
    # The next round is served normally.
    [reply] = c.handle(_masked(pk, "bank", [3, 4], rnd=2))
    assert _values(reply, pk) == [3, 4]


def test_refuses_ciphertexts_outside_z_star(coordinator):
    c, pk = coordinator
    width = pk.ciphertext_bytes
    p = c._private_key.phe.p
    for bad in (0, int(pk.n_squared), p, int(pk.n) * 5):
        msg = _masked(pk, "fintech_1", [1], rnd=1)
        forged = MaskedGradient(**{**msg.__dict__, "ciphertexts": int(bad).to_bytes(width, "big")})
        with pytest.raises(InvalidCiphertextError, match=r"fintech_1 sent 1 ciphertext\(s\) outside Z\*_\(n\^2\) at position\(s\) 0"):
            c.handle(forged)
    # None of the refusals consumed the round.
    assert c.decryptions == 0
    [reply] = c.handle(_masked(pk, "fintech_1", [9], rnd=1))
    assert _values(reply, pk) == [9]


def test_refuses_another_keys_ciphertexts(coordinator):
    c, pk = coordinator
    msg = _masked(pk, "bank", [1, 2], rnd=1)
    forged = MaskedGradient(**{**msg.__dict__, "key_fingerprint": "0123456789abcdef"})
    with pytest.raises(CryptoError, match="bank encrypted under key 0123456789abcdef, not the session key"):
        c.handle(forged)


def test_training_plan_must_name_the_key_and_every_partys_weights():
    c = Coordinator(allow_insecure_key=True)
    pk, plan = _opened(c)
    with pytest.raises(ProtocolError, match="names key 0000000000000000, not this session's key"):
        c.handle(dataclasses.replace(plan, key_fingerprint="0" * 16))
    for weights in ({}, {"bank": 3}, {"bank": 3, "fintech_1": "2"}, {"bank": 3, "fintech_1": 2, "fintech_2": 2}):
        with pytest.raises(ProtocolError, match="does not say how many weights each party has"):
            c.handle(dataclasses.replace(plan, party_weights=weights))
    # Nothing was accepted: the good plan still is.
    assert isinstance(c.handle(plan)[0], Ack)


def test_after_stop_no_more_decryptions(coordinator):
    c, pk = coordinator
    [ack] = c.handle(TrainingStop(session_id=SESSION, sender="bank", recipient="coordinator", round=5))
    assert isinstance(ack, Ack)
    with pytest.raises(ProtocolError, match="did not expect a 'masked_gradient' message from bank now"):
        c.handle(_masked(pk, "bank", [1, 2], rnd=9))


def test_role_checks_recipient_session_step_and_sender_before_anything():
    c = Coordinator(allow_insecure_key=True)
    good = dict(session_id=SESSION, sender="bank", recipient="coordinator", round=0, key_bits=512, allow_insecure_key=True)
    with pytest.raises(ProtocolError, match="coordinator received a 'session_open' message addressed to 'fintech_1'"):
        c.handle(SessionOpen(**{**good, "recipient": "fintech_1"}))
    with pytest.raises(ProtocolError, match="accepts 'session_open' only from bank, not from fintech_1"):
        c.handle(SessionOpen(**{**good, "sender": "fintech_1"}))
    with pytest.raises(ProtocolError, match=r"did not expect a 'masked_gradient' message from bank now \(expecting: session_open\)"):
        c.handle(MaskedGradient(session_id=SESSION, sender="bank", recipient="coordinator", round=1))
    assert c.session_id is None and c.public_key is None
    _open(c)
    with pytest.raises(ProtocolError, match=f"for session 'other'; the current session is '{SESSION}'"):
        c.handle(KeyRequest(session_id="other", sender="fintech_1", recipient="coordinator", round=0))
    with pytest.raises(ProtocolError, match="did not expect a 'session_open'"):
        _open(c)
    assert np.all([c.decryptions == 0])


# -- randomness from the key holder ------------------------------------------------------
@pytest.fixture(params=[1, 2], ids=["in-process", "worker-pool"])
def random_source(request):
    """A coordinator planned for coordinator randomness: batches of 300, second order."""
    c = Coordinator(allow_insecure_key=True, n_jobs=request.param)
    pk, plan = _opened(c, randomness="coordinator", batch_size=300, steps_per_epoch=4, expansion="bank")
    c.handle(plan)
    return c, pk


def _ask(pk, sender, count, rnd, fingerprint=None):
    from riskfed.protocol.messages import RandomnessRequest

    return RandomnessRequest(
        session_id=SESSION,
        sender=sender,
        recipient="coordinator",
        round=rnd,
        count=count,
        key_fingerprint=fingerprint or pk.fingerprint,
    )


def test_randomness_is_fresh_and_encrypts(random_source, keypair):
    c, pk = random_source
    [first] = c.handle(_ask(pk, "fintech_1", 600, 1))
    [second] = c.handle(_ask(pk, "fintech_1", 600, 2))
    [bank] = c.handle(_ask(pk, "bank", 300, 1))
    values = [paillier.from_bytes(pk, m.values, count=m.count) for m in (first, second, bank)]
    assert [len(v) for v in values] == [600, 600, 300]
    every = [int(r) for v in values for r in v]
    assert len(set(every)) == len(every), "a randomizer was issued twice"
    assert all(r != 1 for r in every)
    # They are encryptions of zero under the session key: (1 + m n)·ρ decrypts to m.
    sk = c._private_key
    plain = list(range(-300, 300))
    assert paillier.decrypt(sk, paillier.encrypt_with(pk, plain, values[0])) == plain
    assert c.randomizers_issued == 1500
    c.close()


def test_randomness_limits_per_round(random_source):
    c, pk = random_source
    with pytest.raises(ProtocolError, match="asked for 601 randomizers for round 1; its batch of 300 rows needs exactly 300"):
        c.handle(_ask(pk, "bank", 601, 1))
    with pytest.raises(ProtocolError, match="asked for 1201 randomizers for round 1; its batch of 300 rows needs exactly 600"):
        c.handle(_ask(pk, "fintech_1", 1201, 1))
    with pytest.raises(ProtocolError, match="only from bank, fintech_1"):
        c.handle(_ask(pk, "fintech_9", 10, 1))
    with pytest.raises(ProtocolError, match="asked for randomness for round 500001, which is not in the training plan"):
        c.handle(_ask(pk, "bank", 300, 500_001))
    with pytest.raises(ProtocolError, match="asked for randomness for round 3 out of sequence; its next planned round is 1"):
        c.handle(_ask(pk, "bank", 300, 3))
    c.handle(_ask(pk, "bank", 300, 1))
    with pytest.raises(ProtocolError, match="already had randomness for round 1"):
        c.handle(_ask(pk, "bank", 300, 1))
    with pytest.raises(CryptoError, match="not this session's"):
        c.handle(_ask(pk, "bank", 300, 2, fingerprint="0" * 16))


def test_crt_randomizers_are_exactly_h_s_to_the_r(keypair, monkeypatch):
    """The key holder's CRT shortcut gives h_s^r mod n² for the same digits of r."""
    import gmpy2

    pk, sk = keypair
    window = 5
    rows = -(-paillier.randomness_bits(pk) // window)
    digits = np.random.default_rng(3).integers(0, 1 << window, size=(rows, 4)).astype(np.uint16)
    digits[:, 3] = 0  # r = 0: the randomizer is 1
    monkeypatch.setattr(randomness, "_random_digits", lambda count, windows, w: digits[:, :count])
    got = paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 4, window)
    for k in range(4):
        r = sum(int(digits[i, k]) << (window * i) for i in range(rows))
        assert got[k] == gmpy2.powmod(pk.h_s, r, pk.n_squared)


def test_parties_refuse_trivial_or_repeated_randomizers(keypair):
    from riskfed.protocol.messages import Randomness
    from riskfed.roles.base import randomizers_from

    pk, sk = keypair
    good = paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 3, 5)

    def sent(values, count=None, fingerprint=None):
        return Randomness(
            session_id=SESSION,
            sender="coordinator",
            recipient="fintech_1",
            round=1,
            values=paillier.to_bytes(pk, values),
            count=len(values) if count is None else count,
            key_fingerprint=fingerprint or pk.fingerprint,
        )

    assert randomizers_from(pk, sent(good), 3, me="fintech_1") == good
    with pytest.raises(ProtocolError, match="repeated or trivial"):
        randomizers_from(pk, sent([good[0], 1, good[2]]), 3, me="fintech_1")
    with pytest.raises(ProtocolError, match="repeated or trivial"):
        randomizers_from(pk, sent([good[0], good[0], good[2]]), 3, me="fintech_1")
    with pytest.raises(ProtocolError, match="expected 4"):
        randomizers_from(pk, sent(good), 4, me="fintech_1")
    with pytest.raises(ProtocolError, match="under key 0000"):
        randomizers_from(pk, sent(good, fingerprint="0" * 16), 3, me="fintech_1")


def test_invalid_plan_settings_are_a_protocol_error_naming_the_bank():
    c = Coordinator(allow_insecure_key=True)
    _, plan = _opened(c, randomness="coordinator", batch_size="many")
    with pytest.raises(ProtocolError, match="training plan's hyper-parameters are invalid") as info:
        c.handle(plan)
    assert info.value.party == "bank"


def test_randomness_is_made_ahead_but_not_past_the_plans_last_round(keypair):
    """Shares for the next few rounds start with the plan and are kept in the making;
    nothing is made past the plan's last round."""
    from riskfed.roles import coordinator as module

    c = Coordinator(allow_insecure_key=True, n_jobs=2)
    pk, plan = _opened(
        c, randomness="coordinator", batch_size=300, steps_per_epoch=3, max_epochs=1, expansion="bank", train_size=860
    )
    assert module._AHEAD_ROUNDS == 3
    c.handle(plan)

    def stocked(party):
        return sum(len(f.result()) for f in c._stock.get(party, []))

    assert stocked("fintech_1") == 3 * 600 and stocked("bank") == 3 * 300  # three rounds' worth each
    c.handle(_ask(pk, "fintech_1", 600, 1))
    assert stocked("fintech_1") == 2 * 600  # the plan has two rounds left
    c.handle(_ask(pk, "fintech_1", 600, 2))
    assert stocked("fintech_1") == 600
    [last] = c.handle(_ask(pk, "fintech_1", 520, 3))  # a short last batch (260 rows)
    assert last.count == 520
    assert stocked("fintech_1") == 80  # only the leftover: the plan has no round 4
    c.close()
