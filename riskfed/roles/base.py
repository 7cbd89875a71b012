"""What every role shares: message checks and reply construction.

A role turns one received message into zero or more messages (replies to the sender or
requests to a third party). It never touches sockets or files; the transport moves the
messages (see :mod:`riskfed.transport`). Before a handler runs, :meth:`Role.handle`
checks that the message is addressed to this role, belongs to this session, is a step
the role expects now, and comes from a sender allowed to send it — a message that fails
any check is refused with a :class:`~riskfed.errors.ProtocolError` and changes nothing.

Refusals. Handlers check everything before they change anything, so a refused message
leaves the role exactly as it was and the session can go on for the parties that follow
the protocol. The refusal is logged (the step, the sender, the round and the reason —
never a payload) and raised to whoever delivered the message: in memory the sender's own
``transport.request`` call raises it; over the network the recipient's server answers
with an error carrying the class and the reason, and the sender's transport raises the
same class (:mod:`riskfed.transport.network`). Whether a service hosting the role ends
the session after a refusal is the service's choice; the role does not need it to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from riskfed.crypto import paillier
from riskfed.crypto.keys import PublicKey
from riskfed.errors import CryptoError, KeyMismatchError, ProtocolError
from riskfed.learning.linear.fixed_point import packing_slot_bits
from riskfed.learning.linear.hyperparameters import MAX_FINTECHS
from riskfed.protocol.messages import BANK, COORDINATOR, Message, SessionOpen

log = logging.getLogger("riskfed.roles")


def handles(message_type: type[Message]):
    """Register the decorated method as its role's handler of ``message_type``.

    A subclass that overrides the method (same name) is dispatched to its override.
    """

    def register(method):
        method.handles = message_type.STEP
        return method

    return register


def _step(step: str | type[Message]) -> str:
    return step if isinstance(step, str) else step.STEP


class Role:
    """Base class: dispatch by message type with header checks.

    Subclasses (and their mixins) mark their handlers with :func:`handles`;
    ``handlers`` (step → method name) is collected from them when the class is created.
    """

    handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, str] = {}
        # Every class of the MRO, mixins included, most derived last so that it wins.
        for base in reversed(cls.__mro__):
            for name, member in vars(base).items():
                step = getattr(member, "handles", None)
                if isinstance(step, str):
                    table[step] = name
        cls.handlers = table

    def __init__(self, name: str) -> None:
        self.name = name
        self.session_id: str | None = None
        # step → senders allowed to send it right now
        self._expect: dict[str, set[str]] = {}

    # -- expectations -------------------------------------------------------------
    def expect(self, step: str | type[Message], *senders: str) -> None:
        """Accept ``step`` (a message type) from ``senders`` from now on."""
        self._expect[_step(step)] = set(senders)

    def done(self, step: str | type[Message]) -> None:
        """Accept no more ``step`` messages."""
        self._expect.pop(_step(step), None)

    # -- dispatch -------------------------------------------------------------------
    def handle(self, message: Message) -> list[Message]:
        """Check the header, then run the handler for this step.

        Raises
        ------
        ProtocolError, CryptoError
            The message is refused (logged; the role is unchanged).
        """
        try:
            return self._dispatch(message)
        except (ProtocolError, CryptoError) as exc:
            log.warning(
                "%s refused %r from %s (session %s, round %d): %s",
                self.name, message.STEP, message.sender, message.session_id, message.round, exc,
            )
            raise

    def _dispatch(self, message: Message) -> list[Message]:
        step = message.STEP
        if message.recipient != self.name:
            raise ProtocolError(
                f"{self.name} received a {step!r} message addressed to {message.recipient!r}.", party=message.sender
            )
        if self.session_id is not None and message.session_id != self.session_id:
            raise ProtocolError(
                f"{self.name} refused a {step!r} message from {message.sender} for session "
                f"{message.session_id!r}; the current session is {self.session_id!r}.",
                party=message.sender,
            )
        allowed = self._expect.get(step)
        if allowed is None:
            expected = ", ".join(sorted(self._expect)) or "nothing"
            raise ProtocolError(
                f"{self.name} did not expect a {step!r} message from {message.sender} now "
                f"(expecting: {expected}).",
                party=message.sender,
            )
        if message.sender not in allowed:
            raise ProtocolError(
                f"{self.name} accepts {step!r} only from {', '.join(sorted(allowed))}, not from {message.sender}.",
                party=message.sender,
            )
        handler: Callable[[Message], list[Message]] = getattr(self, self.handlers[step])
        return handler(message)

    def check_round(self, message: Message, expected: int) -> None:
        if message.round != expected:
            raise ProtocolError(
                f"{self.name} received {message.STEP!r} for round {message.round} from {message.sender}; "
                f"the current round is {expected}.",
                party=message.sender,
            )

    def reply(self, cls: type[Message], to: str, round: int, **fields) -> Message:
        assert self.session_id is not None
        return cls(session_id=self.session_id, sender=self.name, recipient=to, round=round, **fields)


def session_fintechs(msg: SessionOpen, me: str, *, with_coordinator: bool) -> tuple[str, ...]:
    """The fintechs a ``SessionOpen`` names, after checking its list of parties: the bank,
    the coordinator when the session trains, ``me``, 1 to 63 fintechs, no repeats."""
    parties = tuple(msg.parties)
    fintechs = tuple(p for p in parties if p not in (BANK, COORDINATOR))
    problem = None
    if len(set(parties)) != len(parties):
        problem = "names a party twice"
    elif BANK not in parties or me not in parties:
        problem = f"does not name {'the bank' if BANK not in parties else me}"
    elif (COORDINATOR in parties) != with_coordinator:
        problem = "names the coordinator" if not with_coordinator else "does not name the coordinator"
    elif not 1 <= len(fintechs) <= MAX_FINTECHS:
        problem = f"names {len(fintechs)} fintechs; a session has 1 to {MAX_FINTECHS}"
    if problem is not None:
        raise ProtocolError(f"{me} refused a {msg.purpose!r} session from {msg.sender}: its list of parties {problem}.", party=msg.sender)
    return fintechs


def public_key_from(message, *, party: str):
    """Rebuild the public key from an announcement and check its fingerprint."""
    pk = PublicKey(n=int.from_bytes(message.n, "big"), h_s=int.from_bytes(message.h_s, "big"))
    if pk.fingerprint != message.fingerprint:
        raise KeyMismatchError(
            f"{party}: the public key from {message.sender} does not match its own fingerprint "
            f"({message.fingerprint} announced, {pk.fingerprint} computed).",
            party=message.sender,
        )
    return pk


def unpack_ints(blob: bytes, count: int, width: int, *, party: str) -> list[int]:
    """Fixed-width big-endian unsigned integers (decrypted masked values)."""
    if len(blob) != count * width:
        raise ProtocolError(
            f"{party} sent {len(blob)} bytes for {count} values of {width} bytes.", party=party
        )
    return [int.from_bytes(blob[i : i + width], "big") for i in range(0, len(blob), width)]


def randomizers_from(public_key, message, expected: int, *, me: str) -> list:
    """Decode the coordinator's randomizers, refusing the wrong count or key, the
    trivial randomizer 1 (it would leave a ciphertext readable) and any repeat."""
    sender = message.sender
    if message.key_fingerprint != public_key.fingerprint or message.count != expected:
        raise ProtocolError(
            f"{me}: {sender} sent {message.count} randomizers under key {message.key_fingerprint}; "
            f"expected {expected} under {public_key.fingerprint}.",
            party=sender,
        )
    values = paillier.from_bytes(public_key, message.values, count=message.count, party=sender)
    if len({int(v) for v in values}) != len(values) or any(v == 1 for v in values):
        raise ProtocolError(f"{me}: {sender} sent repeated or trivial randomizers; refusing them.", party=sender)
    return values


def check_positions(positions, size: int, *, party: str, what: str) -> None:
    """Row positions must be in range and distinct."""
    positions = np.asarray(positions)
    if positions.size and (positions.min() < 0 or positions.max() >= size):
        raise ProtocolError(f"{party} sent {what} outside 0..{size - 1}.", party=party)
    if np.unique(positions).size != positions.size:
        raise ProtocolError(f"{party} sent repeated {what}.", party=party)


def unmask_packed(public_key, message, masks: list[int], hyper) -> list[int]:
    """Unpack the coordinator's decryptions and remove this party's masks: exact ``g_j``."""
    width = (public_key.key_bits + 7) // 8
    values = unpack_ints(message.values, message.count, width, party=message.sender)
    slots = paillier.unpack(values, len(masks), packing_slot_bits(hyper), public_key)
    if len(slots) != len(masks):
        raise ProtocolError(
            f"{message.sender} returned {len(slots)} values for {len(masks)} masked slots.", party=message.sender
        )
    # g + m was never reduced mod n (both parts are far below n), so subtraction is exact.
    return [v - m for v, m in zip(slots, masks)]
