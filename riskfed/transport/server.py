"""The server end of the network transport: one party behind gRPC with mutual TLS.

What a server checks before a message reaches the party, in order (each failure is
logged without payload and refused with a clear error; the session is not touched):

1. the TLS handshake: the client's certificate chains to the federation CA (gRPC);
2. the certificate names a role allowed to call this party (``PERMISSION_DENIED``);
3. the frame header (:mod:`riskfed.transport.wire`): a known step and a length within
   the party's limit and the step's limit (``RESOURCE_EXHAUSTED``) — all *before* the
   body is read off the connection;
4. the body has the announced length; the codec's bounded decode (version, type, every
   field, structure limits; ``INVALID_ARGUMENT``) finds a message of the announced step;
5. the header's ``sender`` equals the certificate's role — a fintech's certificate
   cannot speak for the bank — and ``recipient`` is this party.

Every answer, reply or refusal, carries this server's role proof
(:mod:`riskfed.transport.roleproof`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent import futures

import grpc

from riskfed.certs import TlsIdentity, certificate_role
from riskfed.errors import ProtocolError, RiskfedError, TransportError
from riskfed.protocol import codec
from riskfed.protocol.messages import Message
from riskfed.transport.base import TrafficStats
from riskfed.transport.roleproof import ServerProver
from riskfed.transport.wire import (
    ERROR_HEADER,
    METHOD,
    NONCE_BYTES,
    NONCE_HEADER,
    PARTY_HEADER,
    SERVICE,
    NetworkLimits,
    _inbound,
    encode_replies,
    public_text,
    read_frame_header,
    server_options,
    status_for,
)

log = logging.getLogger("riskfed.network")

Handler = Callable[[Message], list[Message]]


class _Refusal(Exception):
    """Internal: abort the call with this status and log line."""

    def __init__(self, code: grpc.StatusCode, error: RiskfedError) -> None:
        super().__init__(str(error))
        self.code = code
        self.error = error


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
        be answered while a long call runs. At most this many calls are served at once,
        so at most this many bodies (each within the size limit) are held in memory.
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
        self._prover = ServerProver(identity)
        self.listen = listen
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"riskfed-{self.name}"),
            options=server_options(self.limits),
            maximum_concurrent_rpcs=max_workers,
        )
        # A stream-request handler (the client's unary call is the same on the wire):
        # gRPC reads the body only when the handler asks for it, after the header checks.
        rpc = grpc.stream_unary_rpc_method_handler(self._deliver)
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

    def _deliver(self, requests, context) -> bytes:
        peer = context.peer()
        remaining = context.time_remaining()
        _inbound.deadline = None if remaining is None else time.monotonic() + remaining
        role = self._peer_role(context)
        metadata = context.invocation_metadata()
        nonce = next((v for k, v in metadata or () if k == NONCE_HEADER and isinstance(v, bytes) and len(v) == NONCE_BYTES), None)
        proof = self._prover.trailers(role, nonce)
        try:
            answer = self._serve(requests, metadata, role, peer)
            context.set_trailing_metadata(proof)
            return answer
        except _Refusal as refusal:
            err = refusal.error
            context.set_trailing_metadata(((ERROR_HEADER, type(err).__name__), (PARTY_HEADER, err.party or ""), *proof))
            context.abort(refusal.code, public_text(err, self.name))
        finally:
            _inbound.deadline = None

    def _refuse(self, code: grpc.StatusCode, error: RiskfedError, peer: str, *, level: int = logging.WARNING) -> _Refusal:
        log.log(level, "%s refused a call from %s: %s", self.name, peer, error)
        return _Refusal(code, error)

    def _read(self, requests, metadata, role: str, peer: str) -> tuple[bytes, str]:
        """The body of the call, once its announced step and length are acceptable."""
        try:
            header = read_frame_header(metadata)
        except ValueError as exc:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, ProtocolError(f"{self.name} refused a call from {role}: {exc}.", party=role), peer) from None
        size, step = header.size, header.step
        for limit, what in ((self.limits.max_message_bytes, ""), (self.limits.for_step(step), f" {step!r}")):
            if size > limit:
                scope = "the limit for this step is" if what else "the limit is"
                raise self._refuse(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    ProtocolError(f"{self.name} refused a {size:,}-byte{what} message from {role}; {scope} {limit:,} bytes.", party=role),
                    peer,
                )
        try:
            body = next(requests, None)
        except grpc.RpcError:  # gRPC refused the body itself (over its ceiling) or the call ended
            body = None
        if not isinstance(body, bytes) or len(body) != size:
            got = f"{len(body):,} bytes" if isinstance(body, bytes) else "no readable message"
            raise self._refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                ProtocolError(f"{self.name} refused a {step!r} call from {role}: its header announced {size:,} bytes, it sent {got}.", party=role),
                peer,
            )
        return body, step

    def _serve(self, requests, metadata, role: str | None, peer: str) -> bytes:
        if role is None or not self._allowed(role):
            who = f"a certificate for {role!r}" if role else "a certificate that names no riskfed role"
            raise self._refuse(
                grpc.StatusCode.PERMISSION_DENIED,
                ProtocolError(f"{self.name} does not accept connections from {who}.", party=role),
                peer,
            )
        request, step = self._read(requests, metadata, role, peer)
        try:
            message = codec.decode(request, max_bytes=self.limits.for_step(step), sender=role, expect_step=step)
        except ProtocolError as exc:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, ProtocolError(f"{self.name} refused: {exc}", party=role), peer) from None
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
        self.stats.record(message.sender, message.recipient, step, len(request))
        log.debug("%s received %r (round %d, %d bytes) from %s", self.name, step, message.round, len(request), role)
        return encode_replies(self._answer(message, role, peer))

    def _answer(self, message: Message, role: str, peer: str) -> list[bytes]:
        """The party's replies to ``message``, checked and encoded."""
        step = message.STEP
        try:
            replies = self.handler(message)
        except RiskfedError as exc:
            raise self._refuse(status_for(exc), exc, peer) from None
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
        return blobs


__all__ = ["PartyServer"]
