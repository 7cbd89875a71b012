"""The channel interface every transport implements, and the one message loop.

Roles never open sockets; a transport delivers a message to the recipient party's
:class:`PartyNode` and returns that party's replies. :func:`exchange` is the loop that
moves a role's messages: it sends each one, hands every reply back to the role and sends
whatever the role answers, until nothing is left. The bank's sessions (training,
scoring) drive it directly; a :class:`PartyNode` runs it for the party it hosts, so a
fintech's masked gradient goes to the coordinator directly (never through the bank) and
the same loop works in memory and over the network.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from riskfed.protocol.messages import Message


@dataclass
class TrafficStats:
    """Bytes and message counts by sender, recipient and step (no payloads)."""

    bytes_sent: dict[str, int] = field(default_factory=dict)
    bytes_received: dict[str, int] = field(default_factory=dict)
    by_step: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def record(self, sender: str, recipient: str, step: str, size: int) -> None:
        self.bytes_sent[sender] = self.bytes_sent.get(sender, 0) + size
        self.bytes_received[recipient] = self.bytes_received.get(recipient, 0) + size
        entry = self.by_step.setdefault((sender, recipient, step), [0, 0])
        entry[0] += 1
        entry[1] += size

    def table(self) -> list[dict]:
        """One row per (sender, recipient, step): messages and bytes."""
        return [
            {"sender": s, "recipient": r, "step": st, "messages": c, "bytes": b}
            for (s, r, st), (c, b) in sorted(self.by_step.items())
        ]

    def to_dict(self) -> dict:
        return {"bytes_sent": dict(self.bytes_sent), "bytes_received": dict(self.bytes_received), "messages": self.table()}

    def with_peers(self, name: str, peers: dict[str, list[dict]]) -> dict:
        """:meth:`to_dict` plus the links ``name`` is not on, as the peers reported them.

        ``peers`` maps a party to its own traffic table (rows as in :meth:`table`). Each
        link between two peers is counted once, from its sender's report; links that
        involve ``name`` come from this counter only.
        """
        merged = TrafficStats(dict(self.bytes_sent), dict(self.bytes_received), {k: list(v) for k, v in self.by_step.items()})
        for party, rows in sorted(peers.items()):
            for row in rows:
                key = (row["sender"], row["recipient"], row["step"])
                if row["sender"] != party or name in key[:2] or key in merged.by_step:
                    continue
                merged.by_step[key] = [row["messages"], row["bytes"]]
                merged.bytes_sent[key[0]] = merged.bytes_sent.get(key[0], 0) + row["bytes"]
                merged.bytes_received[key[1]] = merged.bytes_received.get(key[1], 0) + row["bytes"]
        return merged.to_dict()


class Transport(ABC):
    """Moves one message to its recipient and returns the recipient's replies."""

    stats: TrafficStats

    @abstractmethod
    def request(self, message: Message) -> list[Message]:
        """Deliver ``message`` to ``message.recipient``; return its replies to the sender."""

    def close(self) -> None:  # pragma: no cover - optional
        """Release connections."""


def exchange(transport: Transport, role, messages, *, reply_to: str | None = None) -> list[Message]:
    """Send ``role``'s messages and keep going until it has nothing more to say.

    Each message goes out through ``transport``; each reply is handled by ``role``, and
    what the role answers is sent in turn (first in, first out). Messages addressed to
    ``reply_to`` are not sent but returned: they answer the party whose message started
    the exchange (a node's replies to its caller).

    Parameters
    ----------
    transport:
        Carries each message to its recipient and returns the recipient's replies.
    role:
        The role whose messages these are; it handles every reply.
    messages:
        What the role sends first.
    reply_to:
        The party that started the exchange, if it is waiting for replies.

    Returns
    -------
    list[Message]
        The messages for ``reply_to``, in the order the role produced them.
    """
    pending = deque(messages)
    back: list[Message] = []
    while pending:
        out = pending.popleft()
        if reply_to is not None and out.recipient == reply_to:
            back.append(out)
            continue
        for reply in transport.request(out):
            pending.extend(role.handle(reply))
    return back


class PartyNode:
    """Runs one role: handles a message, forwards third-party messages, returns replies."""

    def __init__(self, role, transport: Transport) -> None:
        self.role = role
        self.transport = transport

    @property
    def name(self) -> str:
        return self.role.name

    def handle(self, message: Message) -> list[Message]:
        """The role's replies to ``message``; what it addresses to others goes through
        :func:`exchange` first."""
        return exchange(self.transport, self.role, self.role.handle(message), reply_to=message.sender)
