"""The gRPC channel itself: mutual TLS with roles, limits, validation, errors, timeouts.

A stub party answers every message with an Ack, so these tests exercise the channel
without any protocol state. Servers listen on 127.0.0.1 only and are stopped by fixtures.
"""

from __future__ import annotations

import logging
import threading

import grpc
import msgpack
import numpy as np
import pytest

from riskfed.errors import KeyMismatchError, ProtocolError, TransportError
from riskfed.protocol import codec
from riskfed.protocol.messages import Ack, BatchRequest, PsiBlinded
from riskfed.transport import network
from riskfed.transport.network import NetworkLimits, NetworkTransport, PartyServer, decode_replies, encode_replies

LOOPBACK = "127.0.0.1:0"  # loopback only; the OS picks a free port


def batch(sender="bank", recipient="fintech_1", rows=8, session="s1", round=1):
    return BatchRequest(session_id=session, sender=sender, recipient=recipient, round=round, rows=np.arange(rows, dtype=np.int64))


class Stub:
    """Acks every message; can be told to stall, fail or misaddress its reply."""

    def __init__(self, name="fintech_1"):
        self.name = name
        self.received = []
        self.stall = None  # threading.Event to wait on
        self.fail_with = None
        self.reply_to = None

    def __call__(self, message):
        self.received.append(message)
        if self.stall is not None:
            self.stall.wait(timeout=30)
        if self.fail_with is not None:
            raise self.fail_with
        to = self.reply_to or message.sender
        return [Ack(session_id=message.session_id, sender=self.name, recipient=to, round=message.round)]


@pytest.fixture
def stub_server(request, identity):
    """``stub_server(role="fintech_1", allowed=("bank",), limits=None)`` → (server, stub)."""

    def start(role="fintech_1", allowed=("bank",), limits=None):
        stub = Stub(role)
        server = PartyServer(identity(role), LOOPBACK, stub, allowed_senders=allowed, limits=limits or NetworkLimits(timeout=10))
        server.start()

        def stop():
            if stub.stall is not None:
                stub.stall.set()
            server.stop(grace=0)

        request.addfinalizer(stop)
        return server, stub

    return start


def client(request, identity_obj, peers, **kw):
    transport = NetworkTransport(identity_obj, peers, **kw)
    request.addfinalizer(transport.close)
    return transport


def test_round_trip_counts_bytes_on_both_ends(request, stub_server, identity):
    server, stub = stub_server()
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    message = batch()
    replies = bank.request(message)
    assert [type(r) for r in replies] == [Ack]
    assert replies[0].sender == "fintech_1" and replies[0].recipient == "bank"
    assert stub.received[0].rows.tolist() == list(range(8))
    size = len(codec.encode(message))
    ack_size = len(codec.encode(replies[0]))
    for stats in (bank.stats, server.stats):
        assert stats.by_step[("bank", "fintech_1", "batch_request")] == [1, size]
        assert stats.by_step[("fintech_1", "bank", "ack")] == [1, ack_size]
        assert stats.bytes_sent == {"bank": size, "fintech_1": ack_size}


def test_garbage_is_refused_and_logged(request, stub_server, identity, caplog):
    server, stub = stub_server()
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    with caplog.at_level(logging.WARNING, logger="riskfed.network"):
        with pytest.raises(ProtocolError, match="not a msgpack document"):
            bank._exchange("fintech_1", "batch_request", b"\xc1 this is not msgpack")
    assert stub.received == []
    assert any("refused a call" in r.getMessage() and "msgpack" in r.getMessage() for r in caplog.records)
    # The log line names the problem, never the payload.
    assert all("this is not msgpack" not in r.getMessage() for r in caplog.records)


def test_other_protocol_version_is_refused(request, stub_server, identity):
    server, _ = stub_server()
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    blob = msgpack.unpackb(codec.encode(batch()), raw=False)
    blob["v"] = 99
    with pytest.raises(ProtocolError, match="protocol version 99"):
        bank._exchange("fintech_1", "batch_request", msgpack.packb(blob, use_bin_type=True))


def test_oversized_messages_are_refused_by_the_server(request, stub_server, identity):
    small = NetworkLimits(max_message_bytes=64 * 1024, max_batch_message_bytes=16 * 1024, timeout=10)
    server, stub = stub_server(limits=small)
    # The client allows more, so the server is the one that refuses.
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    points = np.frombuffer(bytes(32 * 3000), dtype="S32")
    psi = PsiBlinded(session_id="s1", sender="bank", recipient="fintech_1", round=0, points=points)
    with pytest.raises(ProtocolError, match=r"refused a 96,\d{3}-byte message from bank; the limit is 65,536"):
        bank.request(psi)
    # A batch step has the smaller, per-step limit.
    with pytest.raises(ProtocolError, match=r"'batch_request' message from bank; the limit for this step is 16,384"):
        bank.request(batch(rows=3000))
    assert stub.received == []
    # Within the limits everything still works.
    assert len(bank.request(batch(rows=100))) == 1


def test_client_refuses_to_send_oversized_messages(request, stub_server, identity):
    server, stub = stub_server()
    small = NetworkLimits(max_message_bytes=64 * 1024, max_batch_message_bytes=16 * 1024, timeout=10)
    bank = client(request, identity("bank"), {"fintech_1": server.address}, limits=small)
    with pytest.raises(ProtocolError, match="raise the message size limit on every party"):
        bank.request(batch(rows=3000))
    assert stub.received == []


def test_a_role_that_may_not_call_is_refused(request, stub_server, identity, caplog):
    server, stub = stub_server(allowed=("bank",))
    coordinator = client(request, identity("coordinator"), {"fintech_1": server.address})
    with caplog.at_level(logging.WARNING, logger="riskfed.network"):
        with pytest.raises(ProtocolError, match="does not accept connections from a certificate for 'coordinator'"):
            coordinator.request(batch(sender="coordinator"))
    assert stub.received == []
    assert any("certificate for 'coordinator'" in r.getMessage() for r in caplog.records)


def test_sender_must_match_the_certificate(request, stub_server, identity, caplog):
    server, stub = stub_server(role="coordinator", allowed=("bank", "fintech_2"))
    fintech = client(request, identity("fintech_2"), {"coordinator": server.address})
    # The transport itself will not send under another name ...
    with pytest.raises(ProtocolError, match="cannot send a 'batch_request' message as 'bank'"):
        fintech.request(batch(sender="bank", recipient="coordinator"))
    # ... and the server refuses a forged header that bypasses it.
    forged = codec.encode(batch(sender="bank", recipient="coordinator"))
    with caplog.at_level(logging.WARNING, logger="riskfed.network"):
        with pytest.raises(ProtocolError, match="claims to come from 'bank' over a connection authenticated as 'fintech_2'"):
            fintech._exchange("coordinator", "batch_request", forged)
    assert stub.received == []
    assert any("authenticated as 'fintech_2'" in r.getMessage() for r in caplog.records)


def test_message_for_another_party_is_refused(request, stub_server, identity):
    server, stub = stub_server()
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    with pytest.raises(ProtocolError, match="addressed to 'fintech_2'"):
        bank._exchange("fintech_1", "batch_request", codec.encode(batch(recipient="fintech_2")))
    assert stub.received == []


def test_server_certificate_must_name_the_expected_role(request, stub_server, identity):
    server, stub = stub_server(role="fintech_1")
    # The bank believes fintech_2 listens there: the TLS handshake fails.
    bank = client(request, identity("bank"), {"fintech_2": server.address})
    with pytest.raises(ProtocolError, match="does not present a certificate for fintech_2"):
        bank.request(batch(recipient="fintech_2"))
    assert stub.received == []


def test_client_from_another_ca_cannot_connect(request, stub_server, identity, other_certs_dir):
    server, stub = stub_server()
    stranger = client(request, identity("bank", other_certs_dir), {"fintech_1": server.address})
    with pytest.raises(TransportError, match="fintech_1 at 127.0.0.1:\\d+ is unreachable at step 'batch_request'"):
        stranger.request(batch())
    assert stub.received == []


def test_unreachable_peer_names_party_and_step(request, identity):
    # Bind and release a port so nothing listens there.
    server = PartyServer(identity("fintech_1"), LOOPBACK, Stub(), allowed_senders=("bank",))
    address = server.address
    server.stop()
    bank = client(request, identity("bank"), {"fintech_1": address})
    with pytest.raises(TransportError, match=r"fintech_1 at 127\.0\.0\.1:\d+ is unreachable at step 'batch_request'") as info:
        bank.request(batch())
    assert info.value.party == "fintech_1"


def test_unknown_party_has_no_address(request, identity):
    bank = client(request, identity("bank"), {})
    with pytest.raises(TransportError, match="no address for fintech_1 \\(step 'batch_request'\\)"):
        bank.request(batch())


def test_silent_peer_times_out(request, stub_server, identity):
    server, stub = stub_server()
    stub.stall = threading.Event()
    bank = client(request, identity("bank"), {"fintech_1": server.address}, limits=NetworkLimits(timeout=0.5))
    with pytest.raises(TransportError, match="fintech_1 at .* did not answer the 'batch_request' message within 0.5 s") as info:
        bank.request(batch())
    assert info.value.party == "fintech_1"
    stub.stall.set()


def test_remote_riskfed_error_keeps_its_class(request, stub_server, identity):
    server, stub = stub_server()
    stub.fail_with = KeyMismatchError("fintech_1: residuals were encrypted under another key.", party="bank")
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    with pytest.raises(KeyMismatchError, match="residuals were encrypted under another key") as info:
        bank.request(batch())
    assert info.value.party == "bank"


def test_unexpected_server_bug_is_reported_without_internals(request, stub_server, identity):
    server, stub = stub_server()
    stub.fail_with = ValueError("secret internal detail")
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    with pytest.raises(Exception, match=r"fintech_1 failed internally while handling 'batch_request' \(ValueError\)") as info:
        bank.request(batch())
    assert "secret internal detail" not in str(info.value)


def test_misaddressed_reply_is_not_sent(request, stub_server, identity):
    server, stub = stub_server()
    stub.reply_to = "coordinator"
    bank = client(request, identity("bank"), {"fintech_1": server.address})
    with pytest.raises(ProtocolError, match="produced a 'ack' reply from 'fintech_1' to 'coordinator'"):
        bank.request(batch())


def test_reply_envelope_is_validated():
    assert decode_replies(encode_replies([b"a", b"b"]), max_bytes=100, peer="x") == [b"a", b"b"]
    with pytest.raises(ProtocolError, match="not a riskfed reply"):
        decode_replies(b"\xc1", max_bytes=100, peer="fintech_1")
    with pytest.raises(ProtocolError, match="malformed reply envelope"):
        decode_replies(msgpack.packb({"v": 1}), max_bytes=100, peer="fintech_1")
    with pytest.raises(ProtocolError, match="malformed reply list"):
        decode_replies(msgpack.packb({"v": 1, "replies": ["text"]}), max_bytes=100, peer="fintech_1")
    with pytest.raises(ProtocolError, match="speaks protocol version 7"):
        decode_replies(msgpack.packb({"v": 7, "replies": []}), max_bytes=100, peer="fintech_1")


def test_forwarded_calls_end_before_the_callers_deadline(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(network.time, "monotonic", lambda: now[0])
    network._inbound.deadline = None
    assert network._forward_timeout(30.0) == 30.0
    try:
        network._inbound.deadline = now[0] + 10.0
        # 10 s left for the caller: leave it a margin of 10 % (at least 0.5 s).
        assert network._forward_timeout(30.0) == pytest.approx(9.0)
        assert network._forward_timeout(5.0) == 5.0
        network._inbound.deadline = now[0] + 1.0
        assert network._forward_timeout(30.0) == pytest.approx(0.5)
    finally:
        network._inbound.deadline = None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_message_bytes": 10}, "'max_message_bytes' parameter must be an int in the range \\[1024, 2145386495\\]"),
        ({"max_message_bytes": 2**31}, "'max_message_bytes' parameter must be an int in the range \\[1024, 2145386495\\]"),
        ({"max_message_bytes": 4096, "max_batch_message_bytes": 8192}, "must not exceed 'max_message_bytes'"),
        ({"timeout": 0}, "'timeout' parameter must be a number of seconds"),
    ],
)
def test_limits_are_validated(kwargs, message):
    from riskfed.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        NetworkLimits(**kwargs)


def test_listening_twice_on_one_port_fails(request, stub_server, identity):
    server, _ = stub_server()
    with pytest.raises(TransportError, match=f"fintech_1 cannot listen on {server.address}"):
        PartyServer(identity("fintech_1"), server.address, Stub(), allowed_senders=("bank",))


def test_insecure_channel_is_refused(stub_server):
    server, stub = stub_server()
    channel = grpc.insecure_channel(server.address)
    try:
        with pytest.raises(grpc.RpcError):
            channel.unary_unary(network.FULL_METHOD, _registered_method=False)(codec.encode(batch()), timeout=5)
    finally:
        channel.close()
    assert stub.received == []
