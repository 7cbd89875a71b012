"""In-memory transport: every party in one process, every message still serialised.

Used by the pilot, the app and the tests. Each message is encoded with the wire codec
and decoded on arrival exactly as over a network, so byte counts are real and no Python
object ever passes between parties by reference. With ``keep_transcript`` the decoded
messages are kept for audits ("what did the coordinator receive?").
"""

from __future__ import annotations

from dataclasses import dataclass

from riskfed.errors import TransportError
from riskfed.protocol import codec
from riskfed.protocol.messages import Message
from riskfed.transport.base import PartyNode, TrafficStats, Transport


@dataclass(frozen=True)
class TranscriptEntry:
    sender: str
    recipient: str
    step: str
    round: int
    size: int
    message: Message | None


class InMemoryTransport(Transport):
    """Deliver messages to registered roles in this process.

    Parameters
    ----------
    keep_transcript:
        Keep every decoded message (for privacy audits in tests); sizes are always kept.
    """

    def __init__(self, *, keep_transcript: bool = False) -> None:
        self.nodes: dict[str, PartyNode] = {}
        self.stats = TrafficStats()
        self.keep_transcript = keep_transcript
        self.transcript: list[TranscriptEntry] = []

    def register(self, role) -> PartyNode:
        node = PartyNode(role, self)
        self.nodes[role.name] = node
        return node

    def _carry(self, message: Message) -> Message:
        blob = codec.encode(message)
        self.stats.record(message.sender, message.recipient, message.STEP, len(blob))
        received = codec.decode(blob, sender=message.sender)
        self.transcript.append(
            TranscriptEntry(
                message.sender,
                message.recipient,
                message.STEP,
                message.round,
                len(blob),
                received if self.keep_transcript else None,
            )
        )
        return received

    def request(self, message: Message) -> list[Message]:
        node = self.nodes.get(message.recipient)
        if node is None:
            raise TransportError(f"No party named {message.recipient!r} is connected.", party=message.recipient)
        replies = node.handle(self._carry(message))
        return [self._carry(r) for r in replies]

    def received_by(self, party: str) -> list[Message]:
        """Every message ``party`` received (needs ``keep_transcript``)."""
        return [e.message for e in self.transcript if e.recipient == party]
