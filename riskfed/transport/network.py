"""Network transport: the same channel interface over gRPC with mutual TLS.

Each non-driving party (a fintech, the coordinator) runs a
:class:`~riskfed.transport.server.PartyServer`; the bank and a fintech that forwards its
masked gradient to the coordinator talk to servers through a :class:`NetworkTransport`,
which implements :class:`~riskfed.transport.base.Transport` exactly like the in-memory
channel, so every protocol runs unchanged.

Wire format. One generic gRPC method, ``/riskfed.v1.Party/Deliver``, with raw bytes in
and out (no protobuf code generation): the request is one message encoded by
:mod:`riskfed.protocol.codec` (msgpack with the protocol version inside), announced by a
frame header in the request metadata (step, length, nonce; see
:mod:`riskfed.transport.wire`); the response is a msgpack map
``{"v": PROTOCOL_VERSION, "replies": [<encoded message>, ...]}``. Nothing is ever
unpickled; everything from a peer is decoded by the strict, bounded codec.

What a server checks before a message reaches a role is listed in
:mod:`riskfed.transport.server`: certificate role, the announced size against the
party's and the step's limit before the body is read, the codec, sender and recipient.
The role then checks session, step, round and sender as it does in memory.

A client checks that the server is the role it meant to reach, twice: the TLS handshake
demands the DNS name ``<role>.riskfed`` (see :mod:`riskfed.certs`), and every answer
must carry a proof, signed with the server's certificate key, that the certificate names
that role (:mod:`riskfed.transport.roleproof`). Every reply must come from that role,
be addressed back to the sender and fit its step's size limit, checked before the reply
is unpacked.

Failures. Every call carries a deadline (``timeout``); a server forwarding a message to a
third party (fintech → coordinator) uses what is left of its own caller's deadline, minus
a margin, so the error that reaches the bank names the party that actually failed.
Unreachable peers, expired deadlines and hang-ups become
:class:`~riskfed.errors.TransportError` naming the party and the step; a peer's refusal is
re-raised as the same riskfed error class with the peer's (secret-free) explanation.

Traffic. Both ends count the encoded bytes of every message by sender, recipient and step
in :class:`~riskfed.transport.base.TrafficStats` (TLS and HTTP/2 framing not included).

Threat model: the transport sees only encoded messages, whose contents the protocol
already restricts (ciphertexts, masked values, blinded points, positions). Logs carry step
names, sizes, party names, session ids and peer addresses — never payloads, ids or keys.
"""

from __future__ import annotations

import logging
import os
import threading
import time  # noqa: F401 - tests patch network.time.monotonic
from collections.abc import Mapping

import grpc

from riskfed.certs import TlsIdentity, tls_server_name
from riskfed.errors import ProtocolError, RiskfedError, TransportError
from riskfed.protocol import codec
from riskfed.protocol.messages import Message
from riskfed.transport.base import TrafficStats, Transport
from riskfed.transport.roleproof import ProofVerifier
from riskfed.transport.server import PartyServer
from riskfed.transport.wire import (
    BULK_STEPS,
    DEFAULT_MAX_BATCH_MESSAGE_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT,
    ERROR_HEADER,
    FULL_METHOD,
    MIB,
    NONCE_BYTES,
    PARTY_HEADER,
    NetworkLimits,
    _forward_timeout,
    _inbound,  # noqa: F401 - the deadline of the call a server thread handles
    _short,
    decode_replies,
    encode_replies,
    error_class,
    frame_header,
    grpc_options,
    parse_address,
)

log = logging.getLogger("riskfed.network")


# -- client ----------------------------------------------------------------------------
class NetworkTransport(Transport):
    """Deliver messages to parties on other hosts over gRPC with mutual TLS.

    Parameters
    ----------
    identity:
        This party's certificate, key and the federation CA.
    peers:
        Role → ``HOST:PORT`` of every party this party sends to.
    limits:
        Size limits and the reply timeout.
    stats:
        Traffic counter to add to (default: a new one).

    Examples
    --------
    >>> transport = NetworkTransport(identity, {"fintech_1": "10.0.0.5:7001",
    ...                                         "coordinator": "10.0.0.9:7000"})  # doctest: +SKIP
    >>> replies = transport.request(message)  # doctest: +SKIP
    """

    def __init__(
        self,
        identity: TlsIdentity,
        peers: Mapping[str, str],
        *,
        limits: NetworkLimits | None = None,
        stats: TrafficStats | None = None,
    ) -> None:
        self.identity = identity
        self.name = identity.role
        self.peers = dict(peers)
        self.limits = limits or NetworkLimits()
        self.stats = stats if stats is not None else TrafficStats()
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=identity.ca, private_key=identity.private_key, certificate_chain=identity.certificate
        )
        self._verifier = ProofVerifier(identity)

    def __repr__(self) -> str:
        return f"NetworkTransport(as={self.name!r}, peers={self.peers!r})"

    def _channel(self, role: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(role)
            if channel is None:
                options = grpc_options(self.limits) + [
                    # Demand the peer's role in the TLS handshake: the server's
                    # certificate must carry the DNS name <role>.riskfed.
                    ("grpc.ssl_target_name_override", tls_server_name(role)),
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.min_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 2_000),
                ]
                channel = grpc.secure_channel(self.peers[role], self._credentials, options=options)
                self._channels[role] = channel
            return channel

    def _drop_channel(self, role: str) -> None:
        with self._lock:
            channel = self._channels.pop(role, None)
        if channel is not None:
            channel.close()

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    def __enter__(self) -> "NetworkTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, message: Message) -> list[Message]:
        """Deliver ``message``; return the recipient's replies, each from a server that
        proved its role, within its step's size limit and addressed back to this party."""
        recipient, step = message.recipient, message.STEP
        if message.sender != self.name:
            raise ProtocolError(
                f"{self.name} cannot send a {step!r} message as {message.sender!r}: its certificate is for {self.name!r}.",
                party=self.name,
            )
        address = self.peers.get(recipient)
        if address is None:
            known = ", ".join(sorted(self.peers)) or "none"
            raise TransportError(
                f"{self.name} has no address for {recipient} (step {step!r}); known parties: {known}.", party=recipient
            )
        blob = codec.encode(message)
        limit = self.limits.for_step(step)
        if len(blob) > limit:
            raise ProtocolError(
                f"{self.name}: the {step!r} message to {recipient} is {len(blob):,} bytes; the limit for this step is "
                f"{limit:,} (raise the message size limit on every party).",
                party=self.name,
            )
        self.stats.record(message.sender, recipient, step, len(blob))
        response = self._exchange(recipient, step, blob)
        replies = []
        for raw in decode_replies(response, max_bytes=self.limits.max_message_bytes, peer=recipient):
            # The reply's step limit applies before it is unpacked.
            reply = codec.decode(raw, max_bytes=self.limits.max_message_bytes, sender=recipient, step_limit=self.limits.for_step)
            if reply.sender != recipient or reply.recipient != self.name:
                raise ProtocolError(
                    f"{recipient} answered {step!r} with a {reply.STEP!r} message from {reply.sender!r} to "
                    f"{reply.recipient!r}; replies must come from {recipient} to {self.name}.",
                    party=recipient,
                )
            self.stats.record(reply.sender, reply.recipient, reply.STEP, len(raw))
            replies.append(reply)
        return replies

    def _exchange(self, recipient: str, step: str, blob: bytes) -> bytes:
        """One call: ``blob`` to ``recipient``, its raw response back (errors mapped).

        The call announces the step and size in its header; the answer, reply or
        refusal, is accepted only with the server's proof of its role.
        """
        address = self.peers[recipient]
        timeout = _forward_timeout(self.limits.timeout)
        nonce = os.urandom(NONCE_BYTES)
        call = self._channel(recipient).unary_unary(FULL_METHOD, _registered_method=False)
        try:
            response, outcome = call.with_call(blob, timeout=timeout, metadata=frame_header(step, len(blob), nonce))
        except grpc.RpcError as exc:
            raise self._map_error(exc, recipient, address, step, timeout, nonce) from None
        self._prove(recipient, nonce, outcome.trailing_metadata(), address, step)
        return response

    def _prove(self, recipient: str, nonce: bytes, trailers, address: str, step: str) -> None:
        try:
            self._verifier.check(recipient, nonce, trailers, address=address, step=step)
        except ProtocolError as exc:
            log.warning("%s: %s", self.name, exc)  # a server of the wrong role: a security event
            raise

    def _map_error(
        self, exc: grpc.RpcError, recipient: str, address: str, step: str, timeout: float, nonce: bytes
    ) -> RiskfedError:
        code = exc.code()
        details = exc.details() or ""
        trailing = exc.trailing_metadata() or ()
        remote_cls = error_class(dict(trailing).get(ERROR_HEADER))
        if remote_cls is not None:
            # The peer refused with a riskfed error: same class, its own explanation —
            # once it has proved it is the party we called.
            try:
                self._prove(recipient, nonce, trailing, address, step)
            except ProtocolError as refused:
                return refused
            party = dict(trailing).get(PARTY_HEADER) or recipient
            err = remote_cls(details, party=party)
            log.info("%s: %s refused %r: %s", self.name, recipient, step, details)
            return err
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            err: RiskfedError = TransportError(
                f"{recipient} at {address} did not answer the {step!r} message within {timeout:.3g} s "
                "(it may have stopped or been cut off).",
                party=recipient,
            )
        elif code == grpc.StatusCode.UNAVAILABLE:
            self._drop_channel(recipient)
            if "Hostname Verification" in details or "not in peer certificate" in details or "server name" in details:
                err = ProtocolError(
                    f"the server at {address} does not present a certificate for {recipient} "
                    f"(its certificate must name {tls_server_name(recipient)!r}); {self.name} refused to send {step!r}.",
                    party=recipient,
                )
            else:
                err = TransportError(f"{recipient} at {address} is unreachable at step {step!r}: {_short(details)}", party=recipient)
        elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            err = ProtocolError(f"{recipient} at {address} refused the {step!r} message as too large or too frequent: {_short(details)}", party=recipient)
        elif code == grpc.StatusCode.CANCELLED:
            err = TransportError(f"the {step!r} call to {recipient} at {address} was cancelled: {_short(details)}", party=recipient)
        else:
            err = TransportError(
                f"{recipient} at {address} failed at step {step!r} ({code.name}): {_short(details)}", party=recipient
            )
        # The caller raises this error and reports it (a service logs the failed session),
        # so INFO is enough — except for a peer with the wrong certificate: a security event.
        log.log(logging.WARNING if isinstance(err, ProtocolError) else logging.INFO, "%s: %s", self.name, err)
        return err


__all__ = [
    "BULK_STEPS",
    "DEFAULT_MAX_BATCH_MESSAGE_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TIMEOUT",
    "FULL_METHOD",
    "MIB",
    "NetworkLimits",
    "NetworkTransport",
    "PartyServer",
    "decode_replies",
    "encode_replies",
    "parse_address",
]
