"""Network transport: the same channel interface over gRPC with mutual TLS.

Each non-driving party (a fintech, the coordinator) runs a :class:`PartyServer`; the bank
and a fintech that forwards its masked gradient to the coordinator talk to servers
through a :class:`NetworkTransport`, which implements
:class:`~riskfed.transport.base.Transport` exactly like the in-memory channel, so every
protocol runs unchanged.

Wire format. One generic unary gRPC method, ``/riskfed.v1.Party/Deliver``, with raw
bytes in and out (no protobuf code generation): the request is one message encoded by
:mod:`riskfed.protocol.codec` (msgpack with the protocol version inside); the response is
a msgpack map ``{"v": PROTOCOL_VERSION, "replies": [<encoded message>, ...]}``. Nothing
is ever unpickled; everything from a peer is decoded by the strict codec.

What a server checks before a message reaches a role, in order (each failure is logged
without payload and refused with a clear error; the session is not touched):

1. the TLS handshake: the client's certificate chains to the federation CA (gRPC);
2. the certificate names a role allowed to call this party (``PERMISSION_DENIED``);
3. the size against the party's limit (``RESOURCE_EXHAUSTED``);
4. the codec: version, type, every field (``INVALID_ARGUMENT``);
5. the per-step size limit: ciphertext-per-batch steps are far smaller than PSI lists;
6. the header's ``sender`` equals the certificate's role — a fintech's certificate cannot
   speak for the bank — and ``recipient`` is this party.

The role then checks session, step, round and sender as it does in memory. A client
checks that the server's certificate names the role it meant to reach (the TLS handshake
demands the DNS name ``<role>.riskfed``, see :mod:`riskfed.certs`) and that every reply
comes from that role and is addressed back to the sender.

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
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass

import grpc
import msgpack

import riskfed.errors as _errors
from riskfed.certs import TlsIdentity, certificate_role, tls_server_name
from riskfed.errors import ConfigurationError, ProtocolError, RiskfedError, TransportError
from riskfed.protocol import codec
from riskfed.protocol.messages import PROTOCOL_VERSION, Message
from riskfed.transport.base import TrafficStats, Transport

log = logging.getLogger("riskfed.network")

SERVICE = "riskfed.v1.Party"
METHOD = "Deliver"
FULL_METHOD = f"/{SERVICE}/{METHOD}"

MIB = 1 << 20
# A PsiDoubleBlinded message carries two lists of 32-byte points (the bank's, blinded
# again, and the fintech's own): 1M customers on each side is 64,000,000 bytes plus a
# few hundred bytes of framing, which 64 MiB holds. Bigger federations raise the limit.
DEFAULT_MAX_MESSAGE_BYTES = 64 * MIB
# Per-batch messages: a 1024-row batch under a 2048-bit key is 1024 × 512 bytes of
# ciphertexts, twice with the second-order expansion (~1 MiB); 8 MiB leaves room for
# 4096-row batches or 4096-bit keys and refuses anything that is clearly not a batch.
DEFAULT_MAX_BATCH_MESSAGE_BYTES = 8 * MIB
DEFAULT_TIMEOUT = 300.0

# Steps whose size grows with a party's table (id lists, positions, scoring requests);
# every other step is bounded by the batch size and gets the smaller limit.
BULK_STEPS = frozenset(
    {"psi_blinded", "psi_double_blinded", "hashed_ids", "psi_result", "training_plan", "score_request", "partial_scores"}
)

_ERROR_HEADER = "riskfed-error"
_PARTY_HEADER = "riskfed-party"
# Leave the caller this much of its deadline to carry our error back to it.
_FORWARD_MARGIN_FRACTION = 0.1
_FORWARD_MARGIN_MIN = 0.5


@dataclass(frozen=True)
class NetworkLimits:
    """Size limits (bytes) and the reply timeout (seconds) of one party's connections.

    Parameters
    ----------
    max_message_bytes:
        Largest message of any step (PSI lists, training plans, scoring requests).
    max_batch_message_bytes:
        Largest message of a per-batch step (encrypted scores, residuals, gradients).
    timeout:
        How long to wait for the reply to any one message before failing with a
        :class:`~riskfed.errors.TransportError`; also how long a service keeps an idle
        session. It must exceed the longest single computation of any party (id
        alignment of the largest table).
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_batch_message_bytes: int = DEFAULT_MAX_BATCH_MESSAGE_BYTES
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_batch_message_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise ConfigurationError(f"The {name!r} parameter must be an int in the range [1024, inf). Got {value!r} instead.")
        if self.max_batch_message_bytes > self.max_message_bytes:
            raise ConfigurationError(
                f"The 'max_batch_message_bytes' limit ({self.max_batch_message_bytes:,}) must not exceed "
                f"'max_message_bytes' ({self.max_message_bytes:,})."
            )
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or not 0 < self.timeout < float("inf"):
            raise ConfigurationError(f"The 'timeout' parameter must be a number of seconds in the range (0, inf). Got {self.timeout!r} instead.")

    def for_step(self, step: str) -> int:
        """The size limit of a message of ``step``."""
        return self.max_message_bytes if step in BULK_STEPS else self.max_batch_message_bytes

    @property
    def grpc_limit(self) -> int:
        # gRPC's own ceiling sits a little above ours so that our handler, not the gRPC
        # core, refuses (and logs) messages just over the limit; the reply envelope adds
        # a few bytes per message.
        return self.max_message_bytes + MIB


def _grpc_options(limits: NetworkLimits) -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_send_message_length", limits.grpc_limit),
        ("grpc.max_receive_message_length", limits.grpc_limit),
        # Keepalive notices a silently vanished peer even while a long computation keeps
        # the call open; the per-call deadline bounds everything else.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _server_options(limits: NetworkLimits) -> list[tuple[str, int | str]]:
    return _grpc_options(limits) + [
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


# -- the reply envelope ----------------------------------------------------------------
def encode_replies(blobs: Iterable[bytes]) -> bytes:
    return msgpack.packb({"v": PROTOCOL_VERSION, "replies": list(blobs)}, use_bin_type=True)


def decode_replies(blob: bytes, *, max_bytes: int, peer: str) -> list[bytes]:
    """The encoded replies in a response envelope (validated, not yet decoded)."""
    try:
        top = msgpack.unpackb(blob, raw=False, strict_map_key=True, max_bin_len=max_bytes, max_str_len=1024)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise ProtocolError(f"{peer} answered with something that is not a riskfed reply ({type(exc).__name__}).", party=peer) from None
    if not (isinstance(top, dict) and set(top) == {"v", "replies"}):
        raise ProtocolError(f"{peer} answered with a malformed reply envelope.", party=peer)
    if top["v"] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{peer} speaks protocol version {top['v']!r}; this riskfed speaks {PROTOCOL_VERSION}.", party=peer
        )
    replies = top["replies"]
    if not (isinstance(replies, list) and all(isinstance(r, bytes) for r in replies)):
        raise ProtocolError(f"{peer} answered with a malformed reply list.", party=peer)
    return replies


# -- errors across the wire ------------------------------------------------------------
_STATUS_OF = (
    (ProtocolError, grpc.StatusCode.INVALID_ARGUMENT),
    (TransportError, grpc.StatusCode.UNAVAILABLE),
)


def _status_for(exc: RiskfedError) -> grpc.StatusCode:
    for cls, code in _STATUS_OF:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def _error_class(name: str | None) -> type[RiskfedError] | None:
    cls = getattr(_errors, name, None) if name else None
    return cls if isinstance(cls, type) and issubclass(cls, RiskfedError) else None


class _Refusal(Exception):
    """Internal: abort the call with this status and log line."""

    def __init__(self, code: grpc.StatusCode, error: RiskfedError) -> None:
        super().__init__(str(error))
        self.code = code
        self.error = error


# Deadline of the call a server thread is handling, so that a forwarded call (fintech →
# coordinator) ends before the caller (bank) gives up on the fintech.
_inbound = threading.local()


def _forward_timeout(timeout: float) -> float:
    deadline = getattr(_inbound, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    margin = max(_FORWARD_MARGIN_MIN, _FORWARD_MARGIN_FRACTION * left)
    return max(0.05, min(timeout, left - margin))


# -- server ----------------------------------------------------------------------------
Handler = Callable[[Message], list[Message]]


class PartyServer:
    """A gRPC server with mutual TLS that delivers authenticated messages to one party.

    Parameters
    ----------
    identity:
        This party's certificate, key and the federation CA; its role is the party name.
    listen:
        ``HOST:PORT`` to bind (port ``0``: any free port, see :attr:`port`).
    handler:
        ``handler(message) -> replies`` — usually a service hosting the party's role.
    allowed_senders:
        Roles allowed to call this party (e.g. only ``bank`` for a fintech), or a
        predicate on the role name.
    limits:
        Size limits; the server refuses larger messages.
    stats:
        Traffic counter to add to (default: a new one).
    max_workers:
        Threads serving calls. The protocol is sequential; a few threads let a refusal
        be answered while a long call runs.
    """

    def __init__(
        self,
        identity: TlsIdentity,
        listen: str,
        handler: Handler,
        *,
        allowed_senders: Iterable[str] | Callable[[str], bool],
        limits: NetworkLimits | None = None,
        stats: TrafficStats | None = None,
        max_workers: int = 4,
    ) -> None:
        self.identity = identity
        self.name = identity.role
        self.handler = handler
        self.limits = limits or NetworkLimits()
        self.stats = stats if stats is not None else TrafficStats()
        if callable(allowed_senders):
            self._allowed = allowed_senders
        else:
            allowed = frozenset(allowed_senders)
            self._allowed = allowed.__contains__
        self.listen = listen
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"riskfed-{self.name}"),
            options=_server_options(self.limits),
            # Each call may hold a message of up to max_message_bytes: bound the memory.
            maximum_concurrent_rpcs=max_workers,
        )
        rpc = grpc.unary_unary_rpc_method_handler(self._deliver)  # bytes in, bytes out
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {METHOD: rpc}),))
        credentials = grpc.ssl_server_credentials(
            [(identity.private_key, identity.certificate)], root_certificates=identity.ca, require_client_auth=True
        )
        try:
            self.port = self._server.add_secure_port(listen, credentials)
        except RuntimeError as exc:
            raise TransportError(f"{self.name} cannot listen on {listen}: {exc}", party=self.name) from None
        if not self.port:
            raise TransportError(f"{self.name} cannot listen on {listen} (address in use or not local).", party=self.name)
        host = listen.rsplit(":", 1)[0]
        self.address = f"{host}:{self.port}"
        self._started = False

    def start(self) -> "PartyServer":
        self._server.start()
        self._started = True
        log.info("%s listening on %s (mutual TLS)", self.name, self.address)
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        """Stop accepting calls; wait up to ``grace`` seconds for running ones."""
        if self._started:
            self._server.stop(grace).wait()
            self._started = False
            log.info("%s stopped listening on %s", self.name, self.address)

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)

    def __enter__(self) -> "PartyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- one call --------------------------------------------------------------------
    def _peer_role(self, context) -> str | None:
        pem = context.auth_context().get("x509_pem_cert")
        if not pem:
            return None
        try:
            return certificate_role(pem[0])
        except ValueError:
            return None

    def _deliver(self, request: bytes, context) -> bytes:
        peer = context.peer()
        remaining = context.time_remaining()
        _inbound.deadline = None if remaining is None else time.monotonic() + remaining
        try:
            return self._serve(request, context, peer)
        except _Refusal as refusal:
            err = refusal.error
            context.set_trailing_metadata(((_ERROR_HEADER, type(err).__name__), (_PARTY_HEADER, err.party or "")))
            context.abort(refusal.code, _public_text(err, self.name))
        finally:
            _inbound.deadline = None

    def _refuse(self, code: grpc.StatusCode, error: RiskfedError, peer: str, *, level: int = logging.WARNING) -> _Refusal:
        log.log(level, "%s refused a call from %s: %s", self.name, peer, error)
        return _Refusal(code, error)

    def _serve(self, request: bytes, context, peer: str) -> bytes:
        role = self._peer_role(context)
        if role is None or not self._allowed(role):
            who = f"a certificate for {role!r}" if role else "a certificate that names no riskfed role"
            raise self._refuse(
                grpc.StatusCode.PERMISSION_DENIED,
                ProtocolError(f"{self.name} does not accept connections from {who}.", party=role),
                peer,
            )
        size = len(request)
        if size > self.limits.max_message_bytes:
            raise self._refuse(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                ProtocolError(
                    f"{self.name} refused a {size:,}-byte message from {role}; the limit is {self.limits.max_message_bytes:,} bytes.",
                    party=role,
                ),
                peer,
            )
        try:
            message = codec.decode(request, max_bytes=self.limits.max_message_bytes, sender=role)
        except ProtocolError as exc:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, ProtocolError(f"{self.name} refused: {exc}", party=role), peer) from None
        step = message.STEP
        limit = self.limits.for_step(step)
        if size > limit:
            raise self._refuse(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                ProtocolError(
                    f"{self.name} refused a {size:,}-byte {step!r} message from {role}; the limit for this step is {limit:,} bytes.",
                    party=role,
                ),
                peer,
            )
        if message.sender != role:
            raise self._refuse(
                grpc.StatusCode.PERMISSION_DENIED,
                ProtocolError(
                    f"{self.name} refused a {step!r} message that claims to come from {message.sender!r} "
                    f"over a connection authenticated as {role!r}.",
                    party=role,
                ),
                peer,
            )
        if message.recipient != self.name:
            raise self._refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                ProtocolError(f"{self.name} received a {step!r} message addressed to {message.recipient!r}.", party=role),
                peer,
            )
        self.stats.record(message.sender, message.recipient, step, size)
        log.debug("%s received %r (round %d, %d bytes) from %s", self.name, step, message.round, size, role)
        try:
            replies = self.handler(message)
        except RiskfedError as exc:
            raise self._refuse(_status_for(exc), exc, peer) from None
        except Exception as exc:  # a bug, not a peer's fault: say so without internals
            log.exception("%s failed while handling %r from %s", self.name, step, role)
            raise _Refusal(
                grpc.StatusCode.INTERNAL,
                RiskfedError(f"{self.name} failed internally while handling {step!r} ({type(exc).__name__}); see its log.", party=self.name),
            ) from None
        blobs = []
        for reply in replies:
            if reply.recipient != message.sender or reply.sender != self.name:
                raise self._refuse(
                    grpc.StatusCode.INTERNAL,
                    ProtocolError(
                        f"{self.name} produced a {reply.STEP!r} reply from {reply.sender!r} to {reply.recipient!r} "
                        f"for a call from {role}; not sent.",
                        party=self.name,
                    ),
                    peer,
                    level=logging.ERROR,
                )
            blob = codec.encode(reply)
            if len(blob) > self.limits.for_step(reply.STEP):
                raise self._refuse(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    ProtocolError(
                        f"{self.name}'s {reply.STEP!r} reply is {len(blob):,} bytes; the limit for this step is "
                        f"{self.limits.for_step(reply.STEP):,} (raise the message size limit on every party).",
                        party=self.name,
                    ),
                    peer,
                )
            self.stats.record(reply.sender, reply.recipient, reply.STEP, len(blob))
            blobs.append(blob)
        return encode_replies(blobs)


def _public_text(error: RiskfedError, me: str) -> str:
    """What a peer may read of our error.

    A problem with this party's *own* data names up to five of its rows (customer ids):
    those stay in this party's log, and the peer learns only the kind of problem and the
    column.
    """
    if isinstance(error, _errors.DataValidationError) and error.party in (me, None):
        column = f" in column {error.column!r}" if error.column else ""
        return (
            f"{me}: its own data failed validation ({type(error).__name__}{column}); "
            f"the details, with the rows concerned, are in {me}'s log."
        )
    return str(error)


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

    def __repr__(self) -> str:
        return f"NetworkTransport(as={self.name!r}, peers={self.peers!r})"

    def _channel(self, role: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(role)
            if channel is None:
                options = _grpc_options(self.limits) + [
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
            reply = codec.decode(raw, max_bytes=self.limits.max_message_bytes, sender=recipient)
            if len(raw) > self.limits.for_step(reply.STEP):
                raise ProtocolError(
                    f"{recipient} answered {step!r} with a {len(raw):,}-byte {reply.STEP!r}; the limit for that step is "
                    f"{self.limits.for_step(reply.STEP):,} bytes.",
                    party=recipient,
                )
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
        """One call: ``blob`` to ``recipient``, its raw response back (errors mapped)."""
        address = self.peers[recipient]
        timeout = _forward_timeout(self.limits.timeout)
        call = self._channel(recipient).unary_unary(FULL_METHOD, _registered_method=False)
        try:
            return call(blob, timeout=timeout)
        except grpc.RpcError as exc:
            raise self._map_error(exc, recipient, address, step, timeout) from None

    def _map_error(self, exc: grpc.RpcError, recipient: str, address: str, step: str, timeout: float) -> RiskfedError:
        code = exc.code()
        details = exc.details() or ""
        trailing = dict(exc.trailing_metadata() or ())
        remote_cls = _error_class(trailing.get(_ERROR_HEADER))
        if remote_cls is not None:
            # The peer refused with a riskfed error: same class, its own explanation.
            party = trailing.get(_PARTY_HEADER) or recipient
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


def _short(details: str, limit: int = 300) -> str:
    details = " ".join(details.split())
    return details if len(details) <= limit else details[: limit - 1] + "…"


def parse_address(text: str, *, what: str = "address") -> str:
    """Check ``HOST:PORT`` (IPv6 as ``[::1]:PORT``) and return it unchanged."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigurationError(f"The {what} must look like HOST:PORT (e.g. 127.0.0.1:7001). Got {text!r} instead.")
    return text


__all__ = [
    "BULK_STEPS",
    "DEFAULT_MAX_BATCH_MESSAGE_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TIMEOUT",
    "NetworkLimits",
    "NetworkTransport",
    "PartyServer",
    "parse_address",
]
