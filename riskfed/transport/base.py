"""The channel interface every transport implements, and the per-party message loop.

Roles never open sockets; a transport delivers a message to the recipient party's
:class:`PartyNode` and returns that party's replies. A node runs its role's handler and,
when the role addresses a message to a third party (a fintech asking the coordinator to
decrypt its masked gradient), forwards it through the transport itself and feeds the
answer back to the role — so the same loop works in memory and over the network, and a
fintech's masked gradient goes to the coordinator directly, never through the bank.
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


class PartyNode:
    """Runs one role: handles a message, forwards third-party messages, returns replies."""

    def __init__(self, role, transport: Transport) -> None:
        self.role = role
        self.transport = transport

    @property
    def name(self) -> str:
        return self.role.name

    def handle(self, message: Message) -> list[Message]:
        pending = deque(self.role.handle(message))
        back: list[Message] = []
        while pending:
            out = pending.popleft()
            if out.recipient == message.sender:
                back.append(out)
                continue
            for reply in self.transport.request(out):
                pending.extend(self.role.handle(reply))
        return back
