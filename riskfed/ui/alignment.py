"""The Align page: how many customers the bank shares with each fintech, before training.

:func:`check_overlap` runs the same private set intersection the training session
runs — same id normalisation, fresh per-party secrets, the library's own primitives
(:class:`~riskfed.alignment.ecdh.EcdhKey`, :func:`~riskfed.alignment.keyed_hash.keyed_digests`,
:func:`~riskfed.alignment.index.match_positions`, :func:`~riskfed.alignment.index.intersect_all`)
— but locally, without opening a training session or generating a Paillier key. It keeps
counts only, never ids or tokens. The training session repeats alignment under its own
fresh secrets (secrets are per session by design); the Align page shows both counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from riskfed.alignment.ecdh import EcdhKey
from riskfed.alignment.index import intersect_all, match_positions
from riskfed.alignment.keyed_hash import keyed_digests, new_shared_key
from riskfed.alignment.normalize import IdNormalization
from riskfed.data.schema import PartyTable
from riskfed.errors import ConfigurationError
from riskfed.federation import Cancelled, ProgressEvent
from riskfed.roles.bank import DEFAULT_MIN_INTERSECTION

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
        Progress callback and cancellation poll, as for training.
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
    notify = progress or (lambda event: None)
    t0 = time.perf_counter()
    total = 1 + len(fintechs)
    norm = IdNormalization()

    def step(done: int, message: str) -> None:
        if cancel is not None and cancel():
            raise Cancelled("The overlap check was cancelled.")
        notify(ProgressEvent("alignment", done, total, message, elapsed=time.perf_counter() - t0))

    step(0, f"bank prepares its {bank.n_rows:,} ids")
    bank_ids = norm.apply(bank.ids, party=bank.party, column=bank.id_column).tolist()
    bank_key = EcdhKey.generate() if method == "ecdh" else None
    bank_points = bank_key.blind(bank_ids, n_jobs=n_jobs, party=bank.party) if bank_key else None
    pairs = {}
    for k, table in enumerate(fintechs):
        step(k + 1, f"matching with {table.party} ({table.n_rows:,} ids)")
        ids = norm.apply(table.ids, party=table.party, column=table.id_column).tolist()
        if bank_key is not None:
            # Each side blinds its own ids with its own secret and re-blinds the other's.
            fintech_key = EcdhKey.generate()
            bank_tokens = fintech_key.reblind(bank_points, n_jobs=n_jobs, party=table.party)
            fintech_tokens = bank_key.reblind(
                fintech_key.blind(ids, n_jobs=n_jobs, party=table.party), n_jobs=n_jobs, party=bank.party
            )
        else:
            key = new_shared_key()
            bank_tokens, fintech_tokens = keyed_digests(bank_ids, key), keyed_digests(ids, key)
        pairs[table.party] = match_positions(bank_tokens, fintech_tokens, bank=bank.party, partner=table.party)
    index = intersect_all(
        len(bank_ids),
        pairs,
        method=method,
        partner_counts={t.party: t.n_rows for t in fintechs},
        min_size=min_intersection,
    )
    seconds = time.perf_counter() - t0
    notify(ProgressEvent("alignment", total, total, f"{index.size:,} shared customers", elapsed=seconds))
    return OverlapSummary(
        method=method,
        bank_rows=len(bank_ids),
        fintech_rows={t.party: t.n_rows for t in fintechs},
        pairwise={name: len(b) for name, (b, _) in pairs.items()},
        intersection=index.size,
        seconds=seconds,
        normalization=norm.describe(),
    )
