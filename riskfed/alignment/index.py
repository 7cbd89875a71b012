"""Matching tokens and the aligned index the rest of riskfed trains on.

Tokens are 32-byte values that are equal exactly when the underlying ids are equal:
HMAC digests (``keyed-hash``) or doubly blinded points (``ecdh``). :func:`match_positions`
pairs up the rows of the bank and one partner; :func:`intersect_all` keeps the bank rows
shared with *every* partner and returns an :class:`AlignedIndex`, which holds row
positions only — never ids — in the same order for every party.

Threat model: local computation by whichever party matches. Tokens reveal equality and
nothing else; positions index the parties' own tables. Error messages carry positions
in the token arrays and set sizes, which the parties learn from the protocol anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfed.errors import AlignmentError, ConfigurationError, ProtocolError, format_rows

METHODS = ("ecdh", "keyed-hash")
TOKEN_BYTES = 32


@dataclass(frozen=True, eq=False)
class AlignedIndex:
    """Row positions, in each party's own table, of the shared customers.

    The order is the same on every side.

    Row ``k`` of the aligned data is ``bank_table.iloc[bank_rows[k]]`` at the bank and
    ``table.iloc[partner_rows[name][k]]`` at fintech ``name``. Arrays are copied to
    read-only ``int64`` on construction.

    Parameters
    ----------
    bank_rows:
        Positions in the bank's table.
    partner_rows:
        Party name → positions in that party's table, same length and order as
        ``bank_rows``.
    method:
        ``"ecdh"`` or ``"keyed-hash"``.
    bank_count, partner_counts:
        Row counts of the full tables, for the report.

    Raises
    ------
    AlignmentError
        If lengths differ, positions fall outside a table, or a position repeats.
    ConfigurationError
        If ``method`` is unknown or ``partner_counts`` names other parties.

    Examples
    --------
    >>> idx = AlignedIndex(np.array([0, 2]), {"fintech_1": np.array([5, 1])},
    ...                    method="ecdh", bank_count=3, partner_counts={"fintech_1": 6})
    >>> idx.size, idx.counts()["match_rate"]
    (2, 0.6666666666666666)
    """

    bank_rows: np.ndarray
    partner_rows: dict[str, np.ndarray]
    method: str
    bank_count: int
    partner_counts: dict[str, int]

    def __post_init__(self) -> None:
        _check_method(self.method)
        if set(self.partner_rows) != set(self.partner_counts):
            raise ConfigurationError(
                f"AlignedIndex: partner_rows names {sorted(self.partner_rows)} but "
                f"partner_counts names {sorted(self.partner_counts)}; they must agree."
            )
        bank_rows = _positions(self.bank_rows, int(self.bank_count), party="bank")
        partner_rows = {}
        for name, rows in self.partner_rows.items():
            rows = _positions(rows, int(self.partner_counts[name]), party=name)
            if rows.shape != bank_rows.shape:
                raise AlignmentError(
                    f"AlignedIndex: {name} has {rows.size:,} aligned rows but the bank "
                    f"has {bank_rows.size:,}; both sides must list the same customers.",
                    party=name,
                )
            partner_rows[name] = rows
        # Frozen dataclass: normalise the fields once, here.
        object.__setattr__(self, "bank_rows", bank_rows)
        object.__setattr__(self, "partner_rows", partner_rows)
        object.__setattr__(self, "bank_count", int(self.bank_count))
        object.__setattr__(
            self, "partner_counts", {k: int(self.partner_counts[k]) for k in partner_rows}
        )

    @property
    def size(self) -> int:
        """Number of shared customers (rows of the aligned data)."""
        return int(self.bank_rows.size)

    def counts(self) -> dict[str, Any]:
        """Counts for the report.

        Returns
        -------
        dict
            ``method``, ``bank_rows`` (bank table size), ``fintechs`` (party names),
            ``fintech_rows`` (their table sizes, same order), ``intersection`` and
            ``match_rate`` (intersection / bank rows).
        """
        names = list(self.partner_rows)
        return {
            "method": self.method,
            "bank_rows": self.bank_count,
            "fintechs": names,
            "fintech_rows": [self.partner_counts[n] for n in names],
            "intersection": self.size,
            "match_rate": self.size / self.bank_count if self.bank_count else 0.0,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlignedIndex):
            return NotImplemented
        return (
            self.method == other.method
            and self.bank_count == other.bank_count
            and self.partner_counts == other.partner_counts
            and list(self.partner_rows) == list(other.partner_rows)
            and np.array_equal(self.bank_rows, other.bank_rows)
            and all(
                np.array_equal(r, other.partner_rows[n]) for n, r in self.partner_rows.items()
            )
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays: equality, no hashing


def match_positions(
    bank_tokens: np.ndarray | Sequence[bytes],
    partner_tokens: np.ndarray | Sequence[bytes],
    *,
    bank: str = "bank",
    partner: str = "partner",
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` with ``bank_tokens[i] == partner_tokens[j]``, ordered by ``i``.

    Parameters
    ----------
    bank_tokens, partner_tokens:
        ``"S32"`` arrays (digests or doubly blinded points), or sequences of 32-byte
        ``bytes``.
    bank, partner:
        Party names, for error messages.

    Returns
    -------
    tuple of numpy.ndarray
        ``(bank_positions, partner_positions)``, ``int64``, equal length, with
        ``bank_positions`` strictly increasing.

    Raises
    ------
    AlignmentError
        If a token occurs twice on one side (duplicate ids, or a broken peer).
    ProtocolError
        If tokens are not 32-byte values.

    Examples
    --------
    >>> a = np.array([b"x" * 32, b"y" * 32, b"z" * 32], dtype="S32")
    >>> b = np.array([b"z" * 32, b"x" * 32], dtype="S32")
    >>> [p.tolist() for p in match_positions(a, b)]
    [[0, 2], [1, 0]]
    """
    b_words = _words(bank_tokens, party=bank)
    p_words = _words(partner_tokens, party=partner)
    # Fast path: tokens are (pseudo)random, so their first 8 bytes are almost surely
    # distinct and a uint64 hash join is ~10x faster than joining 32-byte strings.
    # Every candidate pair is then checked on all 32 bytes.
    b_key, p_key = pd.Index(b_words[:, 0]), pd.Index(p_words[:, 0])
    if not (b_key.is_unique and p_key.is_unique):
        return _match_exact(b_words, p_words, bank=bank, partner=partner)
    j = p_key.get_indexer(b_words[:, 0])
    i = np.flatnonzero(j >= 0)
    j = j[i]
    # Prefixes are unique on both sides, so a prefix match that differs in the other
    # 24 bytes means "no match" (there is no other candidate to try).
    same = (b_words[i] == p_words[j]).all(axis=1)
    return i[same].astype(np.int64), j[same].astype(np.int64)


def intersect_all(
    bank_count: int,
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    method: str,
    partner_counts: Mapping[str, int],
    min_size: int = 1,
) -> AlignedIndex:
    """The bank rows shared with *every* partner, in bank-row order.

    Parameters
    ----------
    bank_count:
        Rows in the bank's table.
    pairs:
        Party name → ``(bank_positions, partner_positions)`` from
        :func:`match_positions`. Iteration order fixes the party order of the result.
    method:
        ``"ecdh"`` or ``"keyed-hash"``, recorded in the index.
    partner_counts:
        Party name → rows in that party's table.
    min_size:
        Smallest acceptable intersection (≥ 1).

    Returns
    -------
    AlignedIndex

    Raises
    ------
    AlignmentError
        If the intersection has fewer than ``min_size`` customers (the message gives
        every party's table size and, with several partners, each pairwise overlap;
        ``party`` is the partner with the smallest overlap), or if positions are
        inconsistent.
    ConfigurationError
        If ``pairs`` is empty, names differ from ``partner_counts``, or ``min_size``
        or ``method`` is invalid.

    Examples
    --------
    >>> idx = intersect_all(4, {"f1": (np.array([0, 1, 3]), np.array([2, 0, 1]))},
    ...                     method="keyed-hash", partner_counts={"f1": 3})
    >>> idx.bank_rows.tolist(), idx.partner_rows["f1"].tolist()
    ([0, 1, 3], [2, 0, 1])
    """
    _check_method(method)
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ConfigurationError(
            "The 'min_size' parameter of intersect_all must be an int >= 1. "
            f"Got {min_size!r} instead."
        )
    if not pairs:
        raise ConfigurationError("intersect_all needs at least one partner; got none.")
    if set(pairs) != set(partner_counts):
        raise ConfigurationError(
            f"intersect_all: pairs names {sorted(pairs)} but partner_counts names "
            f"{sorted(partner_counts)}; they must agree."
        )
    bank_count = int(bank_count)
    # One lookup column per partner: partner position of each bank row, or -1. Memory
    # is 8 bytes × bank rows × partners, linear and vectorised.
    lookup: dict[str, np.ndarray] = {}
    for name, (b_pos, p_pos) in pairs.items():
        b_pos = _positions(b_pos, bank_count, party="bank", context=f"matches with {name}")
        p_pos = _positions(p_pos, int(partner_counts[name]), party=name)
        if b_pos.shape != p_pos.shape:
            raise AlignmentError(
                f"intersect_all: {name} has {p_pos.size:,} matched positions but the "
                f"bank side has {b_pos.size:,}; they must pair up.",
                party=name,
            )
        col = np.full(bank_count, -1, dtype=np.int64)
        col[b_pos] = p_pos
        lookup[name] = col
    shared = np.ones(bank_count, dtype=bool)
    for col in lookup.values():
        shared &= col >= 0
    bank_rows = np.flatnonzero(shared).astype(np.int64)
    if bank_rows.size < min_size:
        _raise_too_small(bank_count, pairs, partner_counts, bank_rows.size, min_size)
    return AlignedIndex(
        bank_rows=bank_rows,
        partner_rows={name: col[bank_rows] for name, col in lookup.items()},
        method=method,
        bank_count=bank_count,
        partner_counts={name: int(partner_counts[name]) for name in pairs},
    )


# ---------------------------------------------------------------------- helpers


def _raise_too_small(
    bank_count: int,
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    partner_counts: Mapping[str, int],
    size: int,
    min_size: int,
) -> None:
    parties = [f"bank ({bank_count:,} rows)"] + [
        f"{name} ({int(partner_counts[name]):,} rows)" for name in pairs
    ]
    who = parties[0] + " and " + parties[1] if len(parties) == 2 else (
        ", ".join(parties[:-1]) + " and " + parties[-1]
    )
    overlaps = {name: len(pair[0]) for name, pair in pairs.items()}
    detail = ""
    if len(pairs) > 1:
        detail = " (pairwise: " + ", ".join(
            f"bank ∩ {name} = {n:,}" for name, n in overlaps.items()
        ) + ")"
    noun = "customer" if size == 1 else "customers"
    need = f"at least {min_size:,} {'is' if min_size == 1 else 'are'} required"
    raise AlignmentError(
        f"The intersection of {who} has {size:,} {noun}{detail}; {need}.",
        party=min(overlaps, key=overlaps.__getitem__),
    )


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigurationError(
            f"The 'method' parameter must be one of {', '.join(map(repr, METHODS))}. "
            f"Got {method!r} instead."
        )


def _positions(rows: Any, count: int, *, party: str, context: str = "") -> np.ndarray:
    """Read-only int64 copy of row positions, checked to be unique and in ``[0, count)``."""
    where = f" ({context})" if context else ""
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise AlignmentError(
            f"{party}: row positions{where} must be a 1-D integer array; got shape "
            f"{arr.shape} of dtype {arr.dtype}.",
            party=party,
        )
    arr = arr.astype(np.int64, copy=True)
    outside = np.flatnonzero((arr < 0) | (arr >= count))
    if outside.size:
        raise AlignmentError(
            f"{party}: {outside.size:,} row position(s){where} fall outside its table of "
            f"{count:,} rows: {format_rows(arr[outside[:5]].tolist(), total=outside.size)}.",
            party=party,
            rows=arr[outside[:5]].tolist(),
        )
    repeated = np.flatnonzero(pd.Index(arr).duplicated())
    if repeated.size:
        raise AlignmentError(
            f"{party}: row position(s){where} "
            f"{format_rows(arr[repeated[:5]].tolist(), total=repeated.size)} occur "
            "more than once; each customer can be aligned once.",
            party=party,
            rows=arr[repeated[:5]].tolist(),
        )
    arr.setflags(write=False)
    return arr


def _words(tokens: np.ndarray | Sequence[bytes], *, party: str) -> np.ndarray:
    """Tokens as an ``(n, 4)`` uint64 view of their raw 32 bytes."""
    if isinstance(tokens, np.ndarray) and tokens.dtype.kind == "S":
        if tokens.ndim != 1 or tokens.dtype.itemsize != TOKEN_BYTES:
            raise ProtocolError(
                f"{party}: tokens must be a 1-D array of {TOKEN_BYTES}-byte values; got "
                f"shape {tokens.shape} of dtype {tokens.dtype}.",
                party=party,
            )
        buf = np.ascontiguousarray(tokens)
    else:
        items = tokens.tolist() if isinstance(tokens, np.ndarray) else list(tokens)
        bad = [
            pos
            for pos, t in enumerate(items)
            if not isinstance(t, (bytes, bytearray, memoryview)) or len(t) != TOKEN_BYTES
        ]
        if bad:
            raise ProtocolError(
                f"{party}: {len(bad):,} of the {len(items):,} tokens are not "
                f"{TOKEN_BYTES}-byte strings (positions {format_rows(bad[:5], total=len(bad))}).",
                party=party,
                rows=bad[:5],
            )
        buf = np.frombuffer(b"".join(bytes(t) for t in items), dtype=f"S{TOKEN_BYTES}")
    return buf.view(np.uint64).reshape(-1, TOKEN_BYTES // 8)


def _match_exact(
    b_words: np.ndarray, p_words: np.ndarray, *, bank: str, partner: str
) -> tuple[np.ndarray, np.ndarray]:
    """Join on all 32 bytes (slow path: only when 8-byte prefixes collide)."""
    b_obj = _as_objects(b_words)
    p_obj = _as_objects(p_words)
    for name, obj in ((bank, b_obj), (partner, p_obj)):
        dup = np.flatnonzero(pd.Index(obj).duplicated(keep=False))
        if dup.size:
            raise AlignmentError(
                f"{name}: {dup.size:,} tokens are not unique (positions "
                f"{format_rows(dup[:5].tolist(), total=dup.size)}); each id must be "
                "blinded or hashed once. Duplicate ids, or a broken peer.",
                party=name,
                rows=dup[:5].tolist(),
            )
    j = pd.Index(p_obj).get_indexer(b_obj)
    i = np.flatnonzero(j >= 0)
    return i.astype(np.int64), j[i].astype(np.int64)


def _as_objects(words: np.ndarray) -> np.ndarray:
    # Trailing zero bytes are dropped by the S→object conversion; with a fixed width
    # that is still one-to-one, so equality of the objects is equality of the tokens.
    return np.ascontiguousarray(words).view(f"S{TOKEN_BYTES}").ravel().astype(object)


__all__ = ["METHODS", "AlignedIndex", "intersect_all", "match_positions"]
