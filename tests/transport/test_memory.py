"""The in-memory channel: every message really serialised, byte counts, transcript, routing."""

from __future__ import annotations

import numpy as np
import pytest

from riskfed.errors import TransportError
from riskfed.protocol import codec
from riskfed.protocol.messages import Ack, BatchRequest, EpochReport
from riskfed.roles.base import Role, handles
from riskfed.transport.base import PartyNode, TrafficStats
from riskfed.transport.memory import InMemoryTransport


class Echo(Role):
    """Answers a batch request with an Ack; asks ``relay_to`` first if set."""

    def __init__(self, name, relay_to=None):
        super().__init__(name)
        self.session_id = "s"
        self.relay_to = relay_to
        self.seen = []
        self.expect("batch_request", "a")
        self.expect("ack", "c")
        self.expect("epoch_report", "b")

    @handles(BatchRequest)
    def _on_batch(self, msg):
        self.seen.append(msg)
        out = []
        if self.relay_to:
            out.append(self.reply(EpochReport, self.relay_to, msg.round, epoch=1, score_change_sq=0.5))
        out.append(self.reply(Ack, msg.sender, msg.round))
        return out

    @handles(Ack)
    def _on_ack(self, msg):
        self.seen.append(msg)
        return []

    @handles(EpochReport)
    def _on_report(self, msg):
        self.seen.append(msg)
        return [self.reply(Ack, msg.sender, msg.round)]


def _request(rows):
    return BatchRequest(session_id="s", sender="a", recipient="b", round=1, epoch=0, batch=0, rows=rows)


def test_messages_arrive_as_decoded_copies_with_real_byte_counts():
    t = InMemoryTransport(keep_transcript=True)
    b = Echo("b")
    t.register(b)
    rows = np.arange(300, dtype=np.int64)
    msg = _request(rows)
    [reply] = t.request(msg)
    assert isinstance(reply, Ack) and reply.recipient == "a"
    [got] = b.seen
    assert got is not msg and got.rows is not rows
    assert np.array_equal(got.rows, rows)
    rows[0] = 99  # the sender's later changes do not reach the recipient
    assert got.rows[0] == 0
    sizes = [e.size for e in t.transcript]
    assert sizes == [len(codec.encode(msg)), len(codec.encode(reply))]
    assert t.stats.bytes_sent == {"a": sizes[0], "b": sizes[1]}
    assert t.stats.bytes_received == {"b": sizes[0], "a": sizes[1]}
    assert [(e.sender, e.recipient, e.step, e.round) for e in t.transcript] == [
        ("a", "b", "batch_request", 1),
        ("b", "a", "ack", 1),
    ]
    assert [type(m) for m in t.received_by("b")] == [BatchRequest]
    assert [type(m) for m in t.received_by("a")] == [Ack]


def test_without_transcript_only_sizes_are_kept():
    t = InMemoryTransport()
    t.register(Echo("b"))
    t.request(_request(np.arange(3, dtype=np.int64)))
    assert len(t.transcript) == 2
    assert all(e.message is None and e.size > 0 for e in t.transcript)
    assert t.received_by("b") == [None]


def test_unknown_recipient_is_a_transport_error():
    t = InMemoryTransport()
    with pytest.raises(TransportError, match="No party named 'b' is connected") as info:
        t.request(_request(np.arange(3, dtype=np.int64)))
    assert info.value.party == "b"


def test_third_party_messages_are_forwarded_through_the_transport():
    """b asks c directly (like a fintech asking the coordinator to decrypt), then answers a."""
    t = InMemoryTransport(keep_transcript=True)
    b = Echo("b", relay_to="c")
    c = Echo("c")
    t.register(b)
    t.register(c)
    replies = t.request(_request(np.arange(3, dtype=np.int64)))
    assert [type(r) for r in replies] == [Ack]
    assert [(e.sender, e.recipient, e.step) for e in t.transcript] == [
        ("a", "b", "batch_request"),
        ("b", "c", "epoch_report"),
        ("c", "b", "ack"),
        ("b", "a", "ack"),
    ]
    assert [m.STEP for m in c.seen] == ["epoch_report"]
    assert [m.STEP for m in b.seen] == ["batch_request", "ack"]
    assert t.stats.bytes_sent["b"] == t.transcript[1].size + t.transcript[3].size


def test_party_node_name_and_stats_table():
    t = InMemoryTransport()
    node = t.register(Echo("b"))
    assert isinstance(node, PartyNode) and node.name == "b"
    stats = TrafficStats()
    stats.record("a", "b", "ack", 10)
    stats.record("a", "b", "ack", 5)
    assert stats.table() == [{"sender": "a", "recipient": "b", "step": "ack", "messages": 2, "bytes": 15}]
    assert stats.to_dict()["bytes_sent"] == {"a": 15}


def test_peer_reports_add_only_the_links_the_bank_is_not_on_once_each():
    from riskfed.transport.base import TrafficStats

    stats = TrafficStats()
    stats.record("bank", "fintech_1", "batch_request", 10)
    stats.record("fintech_1", "bank", "encrypted_scores", 100)
    row = lambda s, r, st, c, b: {"sender": s, "recipient": r, "step": st, "messages": c, "bytes": b}  # noqa: E731
    peers = {
        # The fintech saw its link to the bank too (ignored: the bank's own counts win) ...
        "fintech_1": [row("fintech_1", "bank", "encrypted_scores", 1, 999), row("fintech_1", "coordinator", "masked_gradient", 2, 40),
                      row("coordinator", "fintech_1", "decrypted_masked", 2, 30)],
        # ... and the coordinator's view of the fintech's messages is not counted twice.
        "coordinator": [row("fintech_1", "coordinator", "masked_gradient", 2, 40), row("coordinator", "fintech_1", "decrypted_masked", 2, 30)],
    }
    merged = stats.with_peers("bank", peers)
    table = {(m["sender"], m["recipient"], m["step"]): (m["messages"], m["bytes"]) for m in merged["messages"]}
    assert table == {
        ("bank", "fintech_1", "batch_request"): (1, 10),
        ("fintech_1", "bank", "encrypted_scores"): (1, 100),
        ("fintech_1", "coordinator", "masked_gradient"): (2, 40),
        ("coordinator", "fintech_1", "decrypted_masked"): (2, 30),
    }
    assert merged["bytes_sent"] == {"bank": 10, "fintech_1": 140, "coordinator": 30}
    assert merged["bytes_received"] == {"fintech_1": 40, "bank": 100, "coordinator": 40}
    assert stats.to_dict()["bytes_sent"] == {"bank": 10, "fintech_1": 100}  # the counter itself is unchanged
