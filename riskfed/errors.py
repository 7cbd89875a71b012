"""Every error riskfed raises on purpose.

The hierarchy, drawn once so callers know what to catch::

    RiskfedError                      base: catch this to handle any riskfed failure
    ├── DataValidationError           a party's table is unusable as given
    │   ├── SchemaError               wrong type, nulls, infinities, bad labels, duplicates
    │   └── MissingColumnError        a named column is absent
    ├── AlignmentError                id alignment failed (e.g. empty or tiny intersection)
    ├── CryptoError                   a cryptographic precondition does not hold
    │   ├── KeyMismatchError          a value was made under a different key
    │   ├── InsecureKeyError          key shorter than the floor without the test-only flag
    │   ├── EncodingOverflowError     a fixed-point value does not fit the protocol bounds
    │   └── InvalidCiphertextError    a ciphertext outside Z*_{n^2}
    ├── ProtocolError                 a message of the wrong step, round, session or shape
    ├── TransportError                a peer could not be reached, timed out or hung up
    ├── ConfigurationError            a parameter outside its documented range
    └── NotFittedError                a model used before ``fit``

Every error carries structured attributes (``party``, ``column``, ``rows``) when they
apply, and its message names them. Messages never contain secrets: at most five row
labels (ids or positions) of the party's *own* table, never another party's values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

_MAX_LISTED = 5


def format_rows(rows: Iterable[Any], *, total: int | None = None) -> str:
    """Render at most five row labels, with a count of the rest.

    >>> format_rows([3, 7, 9, 11, 12, 15, 20])
    '3, 7, 9, 11, 12 and 2 more'
    """
    rows = list(rows)
    total = len(rows) if total is None else total
    shown = ", ".join(repr(r) if isinstance(r, str) else str(r) for r in rows[:_MAX_LISTED])
    rest = total - min(len(rows), _MAX_LISTED)
    return f"{shown} and {rest} more" if rest > 0 else shown


class RiskfedError(Exception):
    """Base class of every error riskfed raises deliberately.

    Parameters
    ----------
    message:
        The human-readable explanation (already naming party, column and rows).
    party, column, rows:
        Structured context for programmatic handling; ``rows`` holds at most five labels.
    """

    def __init__(
        self,
        message: str,
        *,
        party: str | None = None,
        column: str | None = None,
        rows: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.party = party
        self.column = column
        self.rows = list(rows)[:_MAX_LISTED] if rows is not None else None


class DataValidationError(RiskfedError):
    """A party's table cannot be used as given."""


class SchemaError(DataValidationError):
    """Wrong dtype, nulls, infinities, duplicate ids, or labels that are not 0/1."""


class MissingColumnError(DataValidationError):
    """A column the caller named does not exist in the party's table."""


class AlignmentError(RiskfedError):
    """Id alignment failed: no usable intersection, or inconsistent alignment messages."""


class CryptoError(RiskfedError):
    """A cryptographic precondition does not hold."""


class KeyMismatchError(CryptoError):
    """Values made under different Paillier keys were combined."""


class InsecureKeyError(CryptoError):
    """A key shorter than the security floor was requested without the test-only flag."""


class EncodingOverflowError(CryptoError):
    """A fixed-point value falls outside the bounds that keep homomorphic sums exact."""


class InvalidCiphertextError(CryptoError):
    """A ciphertext is not an element of Z*_{n^2} (out of range or not invertible)."""


class ProtocolError(RiskfedError):
    """A message arrived for the wrong step, round or session, or is malformed."""


class TransportError(RiskfedError):
    """A peer could not be reached, timed out, or closed the connection."""


class ConfigurationError(RiskfedError):
    """A parameter is outside its documented range."""


class NotFittedError(RiskfedError, ValueError):
    """An estimator was used before ``fit`` (also a ``ValueError`` as in scikit-learn)."""


__all__ = [
    "AlignmentError",
    "ConfigurationError",
    "CryptoError",
    "DataValidationError",
    "EncodingOverflowError",
    "InsecureKeyError",
    "InvalidCiphertextError",
    "KeyMismatchError",
    "MissingColumnError",
    "NotFittedError",
    "ProtocolError",
    "RiskfedError",
    "SchemaError",
    "TransportError",
    "format_rows",
]
