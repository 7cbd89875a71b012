"""What both ends of a network call share: limits, the frame header, the reply envelope,
errors across the wire and deadlines.

The frame header. Every call carries, in its gRPC request metadata (sent before the
body), the message's step (``riskfed-step``) and its encoded length in bytes
(``riskfed-length``), and a fresh 16-byte nonce (``riskfed-nonce-bin``) the server signs
to prove its role (:mod:`riskfed.transport.roleproof`). A server checks the announced
length against the party's limit and the step's limit *before it reads the body off the
connection*, so an oversized message costs it no more than the HTTP/2 flow-control
window; then it checks that the body has the announced length and holds a message of
the announced step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
import msgpack

import riskfed.errors as _errors
from riskfed.errors import ConfigurationError, ProtocolError, RiskfedError, TransportError
from riskfed.protocol.framescan import DecodeLimits, scan
from riskfed.protocol.messages import MESSAGE_TYPES, PROTOCOL_VERSION

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
# gRPC counts a message's length in a signed 32-bit integer; its own ceiling sits 1 MiB
# above ours (see NetworkLimits.grpc_limit).
MAX_MESSAGE_BYTES_CEILING = 2**31 - 1 - 2 * MIB

# Steps whose size grows with a party's table (id lists, positions, scoring requests);
# every other step is bounded by the batch size and gets the smaller limit.
BULK_STEPS = frozenset(
    {"psi_blinded", "psi_double_blinded", "hashed_ids", "psi_result", "training_plan", "score_request", "partial_scores"}
)

STEP_HEADER = "riskfed-step"
LENGTH_HEADER = "riskfed-length"
NONCE_HEADER = "riskfed-nonce-bin"
ERROR_HEADER = "riskfed-error"
PARTY_HEADER = "riskfed-party"
NONCE_BYTES = 16
# A reply envelope holds a handful of replies (the protocol sends at most one per party).
MAX_REPLIES = 64
_ENVELOPE_LIMITS = DecodeLimits(max_objects=2 * MAX_REPLIES + 8, max_depth=2, max_container_len=MAX_REPLIES, max_str_len=64)
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
        Largest message of a per-batch step (encrypted scores, residuals, gradients) and
        of every other step not in :data:`BULK_STEPS` (session set-up, acknowledgements).
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
            if isinstance(value, bool) or not isinstance(value, int) or not 1024 <= value <= MAX_MESSAGE_BYTES_CEILING:
                raise ConfigurationError(
                    f"The {name!r} parameter must be an int in the range [1024, {MAX_MESSAGE_BYTES_CEILING}]. Got {value!r} instead."
                )
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


def grpc_options(limits: NetworkLimits) -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_send_message_length", limits.grpc_limit),
        ("grpc.max_receive_message_length", limits.grpc_limit),
        # Keepalive notices a silently vanished peer even while a long computation keeps
        # the call open; the per-call deadline bounds everything else.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def server_options(limits: NetworkLimits) -> list[tuple[str, int | str]]:
    return grpc_options(limits) + [
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


# -- the frame header ------------------------------------------------------------------
def frame_header(step: str, size: int, nonce: bytes) -> tuple[tuple[str, str | bytes], ...]:
    """The request metadata announcing a message of ``step`` and ``size`` bytes."""
    return ((STEP_HEADER, step), (LENGTH_HEADER, str(size)), (NONCE_HEADER, nonce))


@dataclass(frozen=True)
class FrameHeader:
    step: str
    size: int
    nonce: bytes | None


def read_frame_header(metadata: Iterable[tuple[str, str | bytes]]) -> FrameHeader:
    """The announced step and size (and the nonce) of a call.

    Raises
    ------
    ValueError
        The header is missing, names no known step, or announces no sane size.
    """
    values = {}
    for key, value in metadata or ():
        if key in (STEP_HEADER, LENGTH_HEADER, NONCE_HEADER):
            if key in values:
                raise ValueError(f"{key} appears twice")
            values[key] = value
    step, size, nonce = values.get(STEP_HEADER), values.get(LENGTH_HEADER), values.get(NONCE_HEADER)
    if not isinstance(step, str) or step not in MESSAGE_TYPES:
        raise ValueError("no known message step in the call's header")
    if not (isinstance(size, str) and size.isascii() and size.isdigit() and len(size) <= 12):
        raise ValueError("no message length in the call's header")
    if nonce is not None and not (isinstance(nonce, bytes) and len(nonce) == NONCE_BYTES):
        nonce = None
    return FrameHeader(step, int(size), nonce)


# -- the reply envelope ----------------------------------------------------------------
def encode_replies(blobs: Iterable[bytes]) -> bytes:
    return msgpack.packb({"v": PROTOCOL_VERSION, "replies": list(blobs)}, use_bin_type=True)


def decode_replies(blob: bytes, *, max_bytes: int, peer: str) -> list[bytes]:
    """The encoded replies in a response envelope (validated, not yet decoded)."""
    try:
        scan(blob, max_bin_len=max_bytes, limits=_ENVELOPE_LIMITS)
        top = msgpack.unpackb(
            blob, raw=False, strict_map_key=True, max_bin_len=max_bytes, max_str_len=64,
            max_array_len=MAX_REPLIES, max_map_len=8, max_ext_len=0,
        )
    except Exception as exc:  # the scan's FrameError, and msgpack's several unrelated types for garbage
        raise ProtocolError(f"{peer} answered with something that is not a riskfed reply ({_short(str(exc), 120)}).", party=peer) from None
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


def status_for(exc: RiskfedError) -> grpc.StatusCode:
    for cls, code in _STATUS_OF:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def error_class(name: str | None) -> type[RiskfedError] | None:
    cls = getattr(_errors, name, None) if name else None
    return cls if isinstance(cls, type) and issubclass(cls, RiskfedError) else None


def public_text(error: RiskfedError, me: str) -> str:
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


def _short(details: str, limit: int = 300) -> str:
    details = " ".join(details.split())
    return details if len(details) <= limit else details[: limit - 1] + "…"


# -- deadlines -------------------------------------------------------------------------
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


def parse_address(text: str, *, what: str = "address") -> str:
    """Check ``HOST:PORT`` (IPv6 as ``[::1]:PORT``) and return it unchanged."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigurationError(f"The {what} must look like HOST:PORT (e.g. 127.0.0.1:7001). Got {text!r} instead.")
    return text
