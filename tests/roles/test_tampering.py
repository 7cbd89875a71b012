"""Messages of the wrong step, round, session or sender — and bad ciphertexts or keys —
are refused with a typed error and change nothing.

The sweep runs a whole federated session through a transport that, before handing each
real message to its recipient, first hands it forged variants: wrong session, wrong
recipient, a sender that may not send this step, a wrong round, every step the recipient
does not expect now, ciphertexts outside Z*_{n^2}, another key's fingerprint, the wrong
number of decryption slots, and replays of earlier messages. Each forgery must raise and
leave the role's state untouched; the session then finishes with exactly the weights of
an untampered run (which equal the plaintext reference).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from riskfed.crypto.keys import generate_keypair
from riskfed.errors import CryptoError, InvalidCiphertextError, KeyMismatchError, ProtocolError
from riskfed.models import estimator
from riskfed.protocol.messages import MESSAGE_TYPES, PublicKeyAnnounce
from riskfed.transport.memory import InMemoryTransport

PARTIES = ("bank", "coordinator", "fintech_1", "mallory")
# Steps whose round the recipient checks against the batch it is working on.
ROUND_CHECKED = {
    ("bank", "encrypted_scores"),
    ("bank", "batch_done"),
    ("bank", "decrypted_masked"),
    ("bank", "epoch_report"),
    ("fintech_1", "batch_request"),
    ("fintech_1", "encrypted_residuals"),
    ("fintech_1", "decrypted_masked"),
    ("fintech_1", "epoch_end"),
}
CIPHERTEXT_FIELDS = {"encrypted_scores": "ciphertexts", "encrypted_residuals": "ciphertexts", "masked_gradient": "ciphertexts"}


def _summary(value, depth=0):
    """What must stay identical: object identities, container contents, array bytes."""
    if isinstance(value, np.ndarray):
        return ("nd", value.dtype.str, value.shape, hash(value.tobytes()))
    if isinstance(value, dict):
        return ("dict", id(value), {k: _summary(v, depth + 1) if depth < 2 else id(v) for k, v in value.items()})
    if isinstance(value, (list, tuple, set, frozenset)):
        return (type(value).__name__, id(value), sorted(map(id, value)))
    if hasattr(value, "__dict__") and type(value).__module__.startswith("riskfed.roles") and depth < 2:
        return ("obj", id(value), {k: _summary(v, depth + 1) for k, v in vars(value).items()})
    return ("id", id(value))


def snapshot(role) -> dict:
    return {k: _summary(v) for k, v in vars(role).items()}


class ForgeryTransport(InMemoryTransport):
    """Probes every recipient with forged variants of each real message it carries."""

    def __init__(self, *, keep_transcript: bool = False) -> None:
        super().__init__(keep_transcript=keep_transcript)
        self.refused: Counter = Counter()
        self.last_masked: dict[str, object] = {}
        self.last_epoch_end = None

    def _probe(self, role, forged, expected: type[Exception], match: str, kind: str) -> None:
        before = snapshot(role)
        with pytest.raises(expected, match=match):
            role.handle(forged)
        assert snapshot(role) == before, f"{kind} forgery of {forged.STEP!r} changed {role.name}'s state"
        self.refused[(role.name, kind)] += 1

    def _carry(self, message):
        msg = super()._carry(message)
        role = self.nodes[msg.recipient].role
        step, to = msg.STEP, msg.recipient
        rep = dataclasses.replace
        if role.session_id is not None:
            self._probe(role, rep(msg, session_id="f" * 32), ProtocolError, "refused a .* for session 'f+'", "session")
        self._probe(role, rep(msg, recipient="mallory"), ProtocolError, "addressed to 'mallory'", "recipient")
        allowed = role._expect.get(step, set())
        for sender in PARTIES:
            if sender != msg.sender and sender not in allowed:
                self._probe(role, rep(msg, sender=sender), ProtocolError, f"only from .*not from {sender}", "sender")
        if (to, step) in ROUND_CHECKED:
            self._probe(role, rep(msg, round=msg.round + 7), ProtocolError, f"round {msg.round + 7}", "round")
        for other, cls in MESSAGE_TYPES.items():
            if other not in role._expect:
                forged = cls(session_id=msg.session_id, sender=msg.sender, recipient=to, round=msg.round)
                self._probe(role, forged, ProtocolError, f"did not expect a '{other}' message", "step")
        self._ciphertext_forgeries(role, msg)
        if step == "batch_request":
            self._batch_forgeries(role, msg)
        self._replays(role, msg)
        return msg

    def _ciphertext_forgeries(self, role, msg) -> None:
        field = CIPHERTEXT_FIELDS.get(msg.STEP)
        if field is None:
            return
        pk = role.public_key
        width = pk.ciphertext_bytes
        blob = getattr(msg, field)
        for bad in (0, int(pk.n_squared), 2 ** (8 * width) - 1):
            forged = dataclasses.replace(msg, **{field: bad.to_bytes(width, "big") + blob[width:]})
            self._probe(role, forged, InvalidCiphertextError, rf"{msg.sender} sent 1 ciphertext\(s\) outside Z\*_\(n\^2\) at position\(s\) 0", "ciphertext")
        if msg.STEP == "masked_gradient":
            # Not a unit: a multiple of a secret prime, which only the full gcd check sees.
            p = role._private_key.phe.p
            forged = dataclasses.replace(msg, **{field: (p * 7).to_bytes(width, "big") + blob[width:]})
            self._probe(role, forged, InvalidCiphertextError, r"outside Z\*_\(n\^2\)", "ciphertext")
            forged = dataclasses.replace(msg, count=msg.count + 1, ciphertexts=blob + blob[:width])
            self._probe(role, forged, ProtocolError, r"asked for \d+ decryptions; the training plan allows", "slots")
            forged = dataclasses.replace(msg, key_fingerprint="0" * 16)
            self._probe(role, forged, CryptoError, "encrypted under key 0{16}", "fingerprint")
        else:
            forged = dataclasses.replace(msg, key_fingerprint="0" * 16)
            self._probe(role, forged, (KeyMismatchError, ProtocolError), "0{16}|another key", "fingerprint")

    def _batch_forgeries(self, role, msg) -> None:
        rows = msg.rows
        holdout = self.nodes["bank"].role.holdout_rows
        rep = dataclasses.replace
        # A tiny batch would expose individual labels through the fintech's own gradient.
        self._probe(role, rep(msg, rows=rows[:10]), ProtocolError, "refuses a batch of 10 rows; the minimum is 256", "rows")
        self._probe(role, rep(msg, rows=np.concatenate([rows[:-1], holdout[:1]])), ProtocolError, "outside the training set", "rows")
        self._probe(role, rep(msg, rows=np.concatenate([rows[:-1], rows[:1]])), ProtocolError, "repeated batch rows", "rows")
        self._probe(role, rep(msg, rows=np.concatenate([rows[:-1], [10**6]])), ProtocolError, "batch rows outside", "rows")

    def _replays(self, role, msg) -> None:
        if msg.STEP == "masked_gradient":
            self.last_masked[msg.sender] = msg
        if msg.STEP == "decrypted_masked":
            # The coordinator has just served this round: a second decryption is refused.
            coordinator = self.nodes["coordinator"].role
            served = self.last_masked[msg.recipient]
            self._probe(coordinator, served, ProtocolError, rf"already had round {served.round} decrypted", "replay")
        if msg.STEP == "epoch_end":
            if self.last_epoch_end is not None:
                # Last epoch's "end of epoch" again: stale, must not reset the fintech's epoch.
                self._probe(role, self.last_epoch_end, ProtocolError, "round", "replay")
            self.last_epoch_end = msg


@pytest.fixture
def forgery_transport(monkeypatch):
    made = []

    def factory(*, keep_transcript=False):
        t = ForgeryTransport(keep_transcript=keep_transcript)
        made.append(t)
        return t

    monkeypatch.setattr(estimator, "InMemoryTransport", factory)
    return made


def test_forged_messages_are_refused_and_change_nothing(forgery_transport, fitted_federation, make_estimator, small_pilot):
    model = make_estimator().fit(
        small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default"
    )
    [transport] = forgery_transport
    refused = transport.refused
    for party in ("bank", "coordinator", "fintech_1"):
        for kind in ("session", "recipient", "sender", "step"):
            assert refused[(party, kind)] > 0, (party, kind)
    assert refused[("fintech_1", "rows")] == 4 * len(model.outcome_.batch_losses)
    for party in ("bank", "fintech_1"):
        assert refused[(party, "round")] > 0
        assert refused[(party, "ciphertext")] > 0
    assert refused[("coordinator", "ciphertext")] > 0
    assert refused[("coordinator", "slots")] > 0
    batches = len(model.outcome_.batch_losses)  # one per batch of every epoch
    assert batches > model.outcome_.epochs
    assert refused[("coordinator", "replay")] == 2 * batches  # bank and fintech, every round
    assert refused[("fintech_1", "replay")] == model.outcome_.epochs - 1
    # Nothing the forgeries did leaked into training.
    for party, w in fitted_federation.coef_.items():
        assert np.array_equal(model.coef_[party], w), party
    assert model.intercept_ == fitted_federation.intercept_


# -- keys that do not match ------------------------------------------------------------
def _announcement(template, pk, *, fingerprint=None):
    return dataclasses.replace(
        template,
        n=int(pk.n).to_bytes((pk.key_bits + 7) // 8, "big"),
        h_s=int(pk.h_s).to_bytes(pk.ciphertext_bytes, "big"),
        fingerprint=fingerprint or pk.fingerprint,
    )


class KeySwapTransport(InMemoryTransport):
    """Hands ``victim`` another public key than the coordinator announced."""

    victim = "fintech_1"
    substitute = None
    fingerprint = None

    def _carry(self, message):
        msg = super()._carry(message)
        if isinstance(msg, PublicKeyAnnounce) and msg.recipient == self.victim:
            return _announcement(msg, self.substitute, fingerprint=self.fingerprint)
        return msg


def _fit_with_swapped_key(monkeypatch, make_estimator, pilot, *, victim, substitute, fingerprint=None):
    def factory(*, keep_transcript=False):
        t = KeySwapTransport(keep_transcript=keep_transcript)
        t.victim, t.substitute, t.fingerprint = victim, substitute, fingerprint
        return t

    monkeypatch.setattr(estimator, "InMemoryTransport", factory)
    make_estimator().fit(pilot.bank, list(pilot.fintechs), id_column="customer_id", label_column="default")


def test_fintech_given_a_key_of_another_size(monkeypatch, make_estimator, small_pilot):
    other, _ = generate_keypair(384, allow_insecure_key=True)
    with pytest.raises(KeyMismatchError, match="fintech_1: the coordinator's key has 384 bits but the session asked for 512") as info:
        _fit_with_swapped_key(monkeypatch, make_estimator, small_pilot, victim="fintech_1", substitute=other)
    assert info.value.party == "coordinator"


def test_bank_given_a_key_of_another_size(monkeypatch, make_estimator, small_pilot):
    other, _ = generate_keypair(384, allow_insecure_key=True)
    with pytest.raises(KeyMismatchError, match="bank: the coordinator's key has 384 bits; the session asked for 512"):
        _fit_with_swapped_key(monkeypatch, make_estimator, small_pilot, victim="bank", substitute=other)


def test_parties_holding_different_keys_of_the_same_size(monkeypatch, make_estimator, small_pilot, public_key):
    with pytest.raises(KeyMismatchError, match=rf"fintech_1 received Paillier key {public_key.fingerprint}, but the bank's is [0-9a-f]{{16}}: the parties do not share one key") as info:
        _fit_with_swapped_key(monkeypatch, make_estimator, small_pilot, victim="fintech_1", substitute=public_key)
    assert info.value.party == "fintech_1"


def test_announced_fingerprint_must_match_the_key(monkeypatch, make_estimator, small_pilot, public_key):
    with pytest.raises(KeyMismatchError, match="fintech_1: the public key from coordinator does not match its own fingerprint"):
        _fit_with_swapped_key(
            monkeypatch, make_estimator, small_pilot, victim="fintech_1", substitute=public_key, fingerprint="0" * 16
        )
