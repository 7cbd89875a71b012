"""The coordinator: holds the Paillier private key and decrypts masked values.

Threat model for this role (semi-honest, colludes with no one):

* **Holds** the Paillier private key (generated here, never sent, never pickled).
* **Receives** ``SessionOpen`` and ``TrainingPlan`` from the bank (parameters, row counts,
  how many gradient slots each party may send), ``KeyRequest`` from fintechs, and
  ``MaskedGradient`` — ciphertexts of ``g + m`` — from every party.
* **Sends** the public key to each party directly (so nobody can substitute a key it
  controls), and the decryptions ``g + m``.
* **Learns** only masked values: each mask is uniform over a range 2^80 times larger
  than any gradient, so ``g + m`` is statistically independent of ``g`` (distance <
  2^-80). It never sees features, labels, weights, residuals, partial scores or ids.
* **Guards** against being used as a decryption oracle: per round each party gets at
  most one decryption of exactly the number of slots announced in the training plan.
"""

from __future__ import annotations

from riskfed.crypto import paillier
from riskfed.crypto.keys import check_key_bits, generate_keypair
from riskfed.errors import CryptoError, ProtocolError
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    Ack,
    DecryptedMasked,
    KeyRequest,
    MaskedGradient,
    PublicKeyAnnounce,
    SessionOpen,
    TrainingPlan,
    TrainingStop,
)
from riskfed.roles.base import Role


class Coordinator(Role):
    """The key holder.

    Parameters
    ----------
    allow_insecure_key:
        Test-only: accept a session that asks for a key below 2048 bits.
    """

    HANDLERS = {
        "session_open": "_on_open",
        "key_request": "_on_key_request",
        "training_plan": "_on_plan",
        "masked_gradient": "_on_masked",
        "training_stop": "_on_stop",
    }

    def __init__(self, *, allow_insecure_key: bool = False, name: str = COORDINATOR) -> None:
        super().__init__(name)
        self.allow_insecure_key = allow_insecure_key
        self.public_key = None
        self._private_key = None
        self._slots: dict[str, int] = {}
        self._last_round: dict[str, int] = {}
        self.decryptions = 0
        self.expect("session_open", BANK)

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

    def _on_open(self, msg: SessionOpen):
        check_key_bits(msg.key_bits, allow_insecure=self.allow_insecure_key and msg.allow_insecure_key, party=self.name)
        self.session_id = msg.session_id
        self.public_key, self._private_key = generate_keypair(msg.key_bits, allow_insecure_key=msg.allow_insecure_key)
        self.done("session_open")
        fintechs = [p for p in msg.parties if p not in (BANK, COORDINATOR)]
        self.expect("key_request", *fintechs)
        self.expect("training_plan", BANK)
        return [self._announce(BANK, msg.round)]

    def _on_key_request(self, msg: KeyRequest):
        return [self._announce(msg.sender, msg.round)]

    def _on_plan(self, msg: TrainingPlan):
        if msg.key_fingerprint != self.public_key.fingerprint:
            raise ProtocolError(
                f"The training plan names key {msg.key_fingerprint}, not this session's key "
                f"{self.public_key.fingerprint}.",
                party=msg.sender,
            )
        slots = msg.hyperparameters.get("slots")
        if not isinstance(slots, dict) or not all(isinstance(v, int) and v > 0 for v in slots.values()):
            raise ProtocolError("The training plan does not say how many gradient slots each party sends.", party=msg.sender)
        self._slots = dict(slots)
        self._last_round = {}
        self.done("key_request")
        self.expect("masked_gradient", *self._slots)
        self.expect("training_stop", BANK)
        return [self.reply(Ack, msg.sender, msg.round)]

    def _on_masked(self, msg: MaskedGradient):
        party = msg.sender
        if msg.key_fingerprint != self.public_key.fingerprint:
            raise CryptoError(
                f"{party} encrypted under key {msg.key_fingerprint}, not the session key {self.public_key.fingerprint}.",
                party=party,
            )
        if msg.count != self._slots[party]:
            raise ProtocolError(
                f"{party} asked for {msg.count} decryptions; the training plan allows {self._slots[party]} per round.",
                party=party,
            )
        last = self._last_round.get(party, 0)
        if msg.round <= last:
            raise ProtocolError(
                f"{party} already had round {msg.round} decrypted (last served: round {last}); refusing a replay.",
                party=party,
            )
        cts = paillier.from_bytes(self.public_key, msg.ciphertexts, count=msg.count, party=party)
        paillier.check_ciphertexts(self.public_key, cts, party=party, full=True)
        plain = paillier.decrypt(self._private_key, cts, signed=False)
        self._last_round[party] = msg.round
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

    def _on_stop(self, msg: TrainingStop):
        self.done("masked_gradient")
        self.done("training_stop")
        return [self.reply(Ack, msg.sender, msg.round)]
