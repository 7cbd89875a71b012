"""The ``ecdh`` alignment method (default): commutative-encryption PSI on Curve25519.

Each party holds a secret scalar; an id ``x`` is hashed to a curve point ``H(x)`` (RFC
9380's ``curve25519_XMD:SHA-512_ELL2_NU_`` encoding) and blinded as ``a·H(x)`` with
X25519. Scalar multiplication commutes, so the doubly blinded values of a shared id
coincide, while a singly blinded value reveals nothing about ``x`` without the scalar::

    bank:    A  = a.blind(bank_ids)                  ─── A ──▶ fintech
    fintech: AB = b.reblind(A);  B = b.blind(ids)    ◀── AB, B ─── fintech
    bank:    BA = a.reblind(B)
             match_positions(AB, BA)   # equal tokens ⇔ equal ids

This module only computes and keeps the order of its input; shuffling and who learns
which positions belong to the protocol layer. Points travel as 32 little-endian bytes in
``"S32"`` arrays (use ``.tobytes()`` for the wire: indexing drops trailing zero bytes).
Why this hash-to-curve, X25519 and their costs: docs/design.md ("ECDH PSI").

Threat model (semi-honest parties): a party **holds** one :class:`EcdhKey` per session
(fresh each session: reuse would link sessions) and its own ids; **sends** its blinded
points and the peer's re-blinded; **receives** the peer's blinded points and its own
re-blinded; **learns** the size of the peer's set and the intersection, nothing about
ids outside it (under DDH). The secret reaches only the party's own joblib workers and
never a ``repr``, message or error. A peer that re-blinds with another scalar can only
make the intersection wrong; points of small order are refused (:exc:`AlignmentError`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import gmpy2
import joblib
import numpy as np
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import RuntimeError as NaclRuntimeError

from riskfed.errors import (
    AlignmentError,
    ConfigurationError,
    ProtocolError,
    SchemaError,
    format_rows,
)

SECRET_BYTES = 32  # an X25519 scalar: ~126 bits of security after clamping
POINT_BYTES = 32  # a Montgomery u-coordinate, little-endian

# Domain separation tag (RFC 9380 §3.1): riskfed's ids hash to points no other protocol
# produces, and an incompatible change bumps the version instead of silently mismatching.
_DST = b"riskfed-psi-v2-with-curve25519_XMD:SHA-512_ELL2_NU_"
_P = 2**255 - 19
_P_MPZ = gmpy2.mpz(_P)
_J = gmpy2.mpz(486662)  # Curve25519: v^2 = u^3 + J u^2 + u
_ZERO_POINT = bytes(POINT_BYTES)

# Below ~5,000 ids a chunk costs less than shipping it to a worker process.
_MIN_CHUNK = 5_000
_CHUNKS_PER_WORKER = 4  # a few chunks per worker evens out stragglers


def hash_to_curve(ids: Sequence[str]) -> np.ndarray:
    """Hash ids to points of Curve25519 (Montgomery u-coordinates, RFC 9380 Elligator 2).

    Parameters
    ----------
    ids:
        Normalised ids (``str``).

    Returns
    -------
    numpy.ndarray
        dtype ``"S32"``, one point per id, in order.

    Raises
    ------
    SchemaError
        If an id is not a ``str``.

    Examples
    --------
    >>> hash_to_curve(["c001", "c002"]).dtype
    dtype('S32')
    """
    return _from_joined(b"".join(_hash_chunk(_as_list(ids))))


class EcdhKey:
    """One party's secret scalar for one PSI session.

    Parameters
    ----------
    secret:
        32 bytes; a fresh ``os.urandom(32)`` when omitted (the normal case — pass bytes
        only in tests).

    Raises
    ------
    ConfigurationError
        If ``secret`` is not exactly 32 bytes.

    Examples
    --------
    >>> a, b = EcdhKey(bytes(range(32))), EcdhKey(bytes(32))  # test-only keys
    >>> bool((b.reblind(a.blind(["c001"])) == a.reblind(b.blind(["c001"]))).all())
    True
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is None:
            secret = os.urandom(SECRET_BYTES)
        if not isinstance(secret, (bytes, bytearray, memoryview)) or len(
            bytes(secret)
        ) != SECRET_BYTES:
            # Describe the mistake without echoing the would-be secret.
            got = (
                f"{len(bytes(secret))} bytes"
                if isinstance(secret, (bytes, bytearray, memoryview))
                else type(secret).__name__
            )
            raise ConfigurationError(
                f"An EcdhKey secret must be exactly {SECRET_BYTES} bytes. Got {got} instead."
            )
        self._secret = bytes(secret)

    @classmethod
    def generate(cls) -> EcdhKey:
        """A fresh random key (``os.urandom``)."""
        return cls()

    def __repr__(self) -> str:
        return "EcdhKey(<secret hidden>)"

    def blind(self, ids: Sequence[str], *, n_jobs: int = 1, party: str = "?") -> np.ndarray:
        """``X25519(k, H(id))`` for every id: the party's own ids, ready to send.

        Parameters
        ----------
        ids:
            Normalised ids (``str``).
        n_jobs:
            Worker processes (joblib; ``-1`` = all cores). The result does not depend on it.
        party:
            This party's name, for error messages.

        Returns
        -------
        numpy.ndarray
            dtype ``"S32"``, one blinded point per id, in order.

        Raises
        ------
        SchemaError
            If an id is not a ``str``.
        AlignmentError
            If an id hashes to a low-order point (probability ~2^-250; never seen).
        ConfigurationError
            If ``n_jobs`` is 0 or not an int.
        """
        items = _as_list(ids)
        out, bad = _run(_blind_chunk, self._secret, items, n_jobs)
        if bad:
            raise AlignmentError(
                f"{party}: {len(bad):,} id(s) hash to a low-order curve point (rows "
                f"{format_rows(bad[:5], total=len(bad))}); they cannot be blinded.",
                party=party,
                rows=bad[:5],
            )
        return out

    def reblind(
        self,
        points: np.ndarray | Sequence[bytes],
        *,
        n_jobs: int = 1,
        party: str = "?",
    ) -> np.ndarray:
        """``X25519(k, point)`` for every point received from the peer.

        Parameters
        ----------
        points:
            ``"S32"`` array as returned by :meth:`blind`, or a sequence of 32-byte
            ``bytes`` (not ``list(s32_array)``, which drops trailing zero bytes).
        n_jobs:
            Worker processes (joblib; ``-1`` = all cores). The result does not depend on it.
        party:
            This party's name (the receiver of ``points``), for error messages.

        Returns
        -------
        numpy.ndarray
            dtype ``"S32"``, in the order of ``points``.

        Raises
        ------
        ProtocolError
            If a point is not exactly 32 bytes.
        AlignmentError
            If a point has small order (the result would be the identity): the peer is
            broken or malicious. ``rows`` holds positions in ``points``.
        ConfigurationError
            If ``n_jobs`` is 0 or not an int.
        """
        items = _points_as_list(points, party=party)
        out, bad = _run(_exchange_chunk, self._secret, items, n_jobs)
        if bad:
            raise AlignmentError(
                f"{party}: {len(bad):,} of the {len(items):,} points received for "
                f"re-blinding have small order (positions "
                f"{format_rows(bad[:5], total=len(bad))}): any secret maps them to the "
                "identity. The sender is broken or malicious; alignment stopped.",
                party=party,
                rows=bad[:5],
            )
        return out


# ---------------------------------------------------------------------- workers
# Module-level functions so joblib's loky workers can import them by name.


def _expander(dst: bytes):
    """RFC 9380 ``expand_message_xmd`` with SHA-512 for 48 output bytes (one field element).

    The first block of the message hash is always 128 zero bytes, so its state is kept
    and copied per id.
    """
    dst_prime = dst + bytes([len(dst)])
    first = hashlib.sha512(bytes(128))
    tail = (48).to_bytes(2, "big") + b"\x00" + dst_prime
    last = b"\x01" + dst_prime
    sha512 = hashlib.sha512

    def expand(msg: bytes) -> bytes:
        h = first.copy()
        h.update(msg + tail)
        return sha512(h.digest() + last).digest()[:48]

    return expand


def map_to_curve_elligator2(us: list) -> list:
    """RFC 9380 §6.7.1 Elligator 2 onto Curve25519 (``Z = 2``): Montgomery u-coordinates.

    One modular inversion for the whole list (Montgomery's trick) and one Legendre
    symbol per element. Not constant time: the ids hashed are the hashing party's own,
    and timing is observable only on its own machine.
    """
    den = [1 if t == _P_MPZ - 1 else t + 1 for t in ((2 * u * u) % _P_MPZ for u in us)]
    prefix = []
    acc = gmpy2.mpz(1)
    for d in den:
        prefix.append(acc)
        acc = acc * d % _P_MPZ
    inv = gmpy2.invert(acc, _P_MPZ)
    out = [None] * len(den)
    legendre = gmpy2.legendre
    for pos in range(len(den) - 1, -1, -1):
        d_inv = inv * prefix[pos] % _P_MPZ
        inv = inv * den[pos] % _P_MPZ
        x1 = (-_J * d_inv) % _P_MPZ
        gx1 = x1 * ((x1 * x1 + _J * x1 + 1) % _P_MPZ) % _P_MPZ
        out[pos] = x1 if legendre(gx1, _P_MPZ) >= 0 else (-x1 - _J) % _P_MPZ
    return out


def _hash_chunk(ids: list[str]) -> list[bytes]:
    """Montgomery u-coordinates (32 bytes LE) of ``H(id)`` for a list of ids."""
    expand = _expander(_DST)
    try:
        us = [gmpy2.mpz(int.from_bytes(expand(i.encode("utf-8")), "big")) % _P_MPZ for i in ids]
    except AttributeError:
        bad = [pos for pos, i in enumerate(ids) if not isinstance(i, str)]
        raise SchemaError(
            f"PSI needs normalised str ids; {len(bad):,} are not str (positions "
            f"{format_rows(bad[:5], total=len(bad))}).",
            rows=bad[:5],
        ) from None
    return [int(x).to_bytes(POINT_BYTES, "little") for x in map_to_curve_elligator2(us)]


def _exchange_chunk(secret: bytes, points: list[bytes]) -> tuple[bytes, list[int]]:
    """``X25519(secret, u)`` for each point: (concatenated results, low-order positions)."""
    # libsodium's X25519 through PyNaCl: the same function as OpenSSL's, without building
    # a key object per point (≈ 10 % faster here).
    scalarmult = crypto_scalarmult
    out = []
    bad = []
    for pos, u in enumerate(points):
        try:
            out.append(scalarmult(secret, u))
        except NaclRuntimeError:  # libsodium refuses the all-zero result of a small-order point
            bad.append(pos)
            out.append(_ZERO_POINT)
    return b"".join(out), bad


def _blind_chunk(secret: bytes, ids: list[str]) -> tuple[bytes, list[int]]:
    return _exchange_chunk(secret, _hash_chunk(ids))


def _run(
    func: Any, secret: bytes, items: list[Any], n_jobs: int
) -> tuple[np.ndarray, list[int]]:
    """Apply a chunk worker to ``items``, in chunks on ``n_jobs`` processes if asked.

    Returns the ``S32`` results in input order and the positions that were low-order.
    """
    workers = _effective_workers(n_jobs)
    n_chunks = min(len(items) // _MIN_CHUNK, _CHUNKS_PER_WORKER * workers)
    if workers == 1 or n_chunks <= 1:
        joined, bad = func(secret, items)
        return _from_joined(joined), bad
    bounds = np.linspace(0, len(items), n_chunks + 1).astype(int).tolist()
    # max_nbytes=None: never memory-map inputs to a temporary file; ids stay in memory.
    results = joblib.Parallel(n_jobs=workers, max_nbytes=None)(
        joblib.delayed(func)(secret, items[lo:hi]) for lo, hi in zip(bounds, bounds[1:])
    )
    bad = [lo + pos for lo, (_, chunk_bad) in zip(bounds, results) for pos in chunk_bad]
    return _from_joined(b"".join(joined for joined, _ in results)), bad


def _effective_workers(n_jobs: int) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ConfigurationError(
            "The 'n_jobs' parameter must be a non-zero int (1 = this process, -1 = all "
            f"cores). Got {n_jobs!r} instead."
        )
    return int(joblib.effective_n_jobs(int(n_jobs)))


# ---------------------------------------------------------------------- conversions


def _as_list(ids: Sequence[str]) -> list[str]:
    return ids.tolist() if isinstance(ids, np.ndarray) else list(ids)


def _points_as_list(points: np.ndarray | Sequence[bytes], *, party: str) -> list[bytes]:
    """Received points as a list of exactly-32-byte ``bytes`` (ProtocolError otherwise)."""
    if isinstance(points, np.ndarray) and points.dtype.kind == "S":
        if points.ndim != 1 or points.dtype.itemsize != POINT_BYTES:
            raise ProtocolError(
                f"{party}: received points must be a 1-D array of {POINT_BYTES}-byte "
                f"values; got shape {points.shape} of dtype {points.dtype}.",
                party=party,
            )
        # Slice the raw buffer: element access would drop trailing zero bytes.
        buf = np.ascontiguousarray(points).tobytes()
        return [buf[i : i + POINT_BYTES] for i in range(0, len(buf), POINT_BYTES)]
    items = points.tolist() if isinstance(points, np.ndarray) else list(points)
    bad = [
        pos
        for pos, p in enumerate(items)
        if not isinstance(p, (bytes, bytearray, memoryview)) or len(p) != POINT_BYTES
    ]
    if bad:
        raise ProtocolError(
            f"{party}: {len(bad):,} of the {len(items):,} points received are not "
            f"{POINT_BYTES}-byte strings (positions "
            f"{format_rows(bad[:5], total=len(bad))}); the sender is broken or speaks "
            "another protocol.",
            party=party,
            rows=bad[:5],
        )
    return [bytes(p) for p in items]


def _from_joined(joined: bytes) -> np.ndarray:
    # A writable copy: np.frombuffer over bytes is read-only.
    return np.frombuffer(joined, dtype=f"S{POINT_BYTES}").copy()


__all__ = ["POINT_BYTES", "SECRET_BYTES", "EcdhKey", "hash_to_curve"]
