"""The Align page: how many customers the bank shares with each fintech, before training.

:func:`check_overlap` runs a real alignment session — the bank and fintech roles over an
in-memory transport, exactly the messages a training session starts with, with fresh
per-party secrets and no Paillier key (:func:`riskfed.federation.run_alignment_session`).
It keeps counts only, never ids or tokens. The training session repeats alignment under
its own fresh secrets (secrets are per session by design); the Align page shows both
counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from riskfed.data.schema import PartyTable
from riskfed.errors import ConfigurationError
from riskfed.session import Cancelled, ProgressEvent, run_alignment_session
from riskfed.roles.bank import DEFAULT_MIN_INTERSECTION, Bank
from riskfed.roles.fintech import Fintech
from riskfed.transport.memory import InMemoryTransport

METHODS = {
    "ecdh": "ECDH private set intersection",
    "keyed-hash": "Keyed hash (HMAC-SHA256)",
}

KEYED_HASH_WARNING = (
    "Keyed hashing is fast but weaker: anyone holding the shared key can hash guesses "
    "(every phone number, every national id) and see which of the other side's customers "
    "match. Use it only when ids are not guessable, or when both sides accept that risk. "
    "ECDH reveals nothing about customers outside the overlap."
)


@dataclass(frozen=True)
class OverlapSummary:
    """Counts from an overlap check (no ids).

    Attributes
    ----------
    method:
        ``ecdh`` or ``keyed-hash``.
    bank_rows:
        Customers in the bank's table.
    fintech_rows, pairwise:
        Per fintech: its table size, and how many of the bank's customers it knows.
    intersection:
        Customers every party knows (the rows training can use).
    seconds:
        Wall time of the check.
    normalization:
        The id clean-up rule, in words.
    """

    method: str
    bank_rows: int
    fintech_rows: dict[str, int]
    pairwise: dict[str, int]
    intersection: int
    seconds: float
    normalization: str

    @property
    def match_rate(self) -> float:
        """Share of the bank's customers that every fintech knows."""
        return self.intersection / self.bank_rows if self.bank_rows else 0.0

    def fintech_share(self, name: str) -> float:
        """Share of fintech ``name``'s customers who are also bank customers."""
        rows = self.fintech_rows.get(name, 0)
        return self.pairwise.get(name, 0) / rows if rows else 0.0


def check_overlap(
    bank: PartyTable,
    fintechs: Sequence[PartyTable],
    *,
    method: str = "ecdh",
    min_intersection: int = DEFAULT_MIN_INTERSECTION,
    progress: Callable[[ProgressEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    n_jobs: int = 1,
) -> OverlapSummary:
    """Count the customers shared by the bank and each fintech with a real PSI.

    Parameters
    ----------
    bank, fintechs:
        Validated party tables.
    method:
        ``ecdh`` (default) or ``keyed-hash``.
    min_intersection:
        Raise when fewer customers are shared (training would refuse them too).
    progress, cancel:
        Progress callback, and a cancellation poll checked before the check starts.
    n_jobs:
        Worker processes for the ECDH blinding.

    Raises
    ------
    AlignmentError
        If the overlap is below ``min_intersection`` (the message gives every count).
    SchemaError
        If ids are duplicated or empty after normalisation.
    Cancelled
        If ``cancel()`` became true.
    """
    if method not in METHODS:
        raise ConfigurationError(f"The alignment method must be one of {', '.join(METHODS)}. Got {method!r} instead.")
    if cancel is not None and cancel():
        raise Cancelled("The overlap check was cancelled.")
    t0 = time.perf_counter()
    names = [t.party for t in fintechs]
    bank_role = Bank(bank, names, n_jobs=n_jobs)
    transport = InMemoryTransport()
    transport.register(bank_role)
    for table in fintechs:
        transport.register(Fintech(table.party, table, n_jobs=n_jobs))
    index = run_alignment_session(
        bank_role, transport, psi_method=method, min_intersection=min_intersection, progress=progress
    )
    seconds = time.perf_counter() - t0
    return OverlapSummary(
        method=method,
        bank_rows=bank.n_rows,
        fintech_rows={t.party: t.n_rows for t in fintechs},
        pairwise=bank_role.pairwise_matches,
        intersection=index.size,
        seconds=seconds,
        normalization=bank_role.normalization.describe(),
    )
