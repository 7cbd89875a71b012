"""An alignment-only session: how many customers the bank shares with its fintechs.

Runs the same alignment messages as a training session, under the session's own fresh
secrets, with no key and no training; the analyst app uses it to show the overlap before
training.
"""

from __future__ import annotations

import time

from riskfed.alignment.index import AlignedIndex
from riskfed.roles.bank import DEFAULT_MIN_INTERSECTION, Bank
from riskfed.session.progress import ProgressCallback, ProgressEvent, quiet
from riskfed.transport.base import Transport, exchange


def run_alignment_session(
    bank: Bank,
    transport: Transport,
    *,
    psi_method: str = "ecdh",
    min_intersection: int = DEFAULT_MIN_INTERSECTION,
    progress: ProgressCallback | None = None,
) -> AlignedIndex:
    """Private set intersection only (no key, no training): the shared customers.

    Raises
    ------
    AlignmentError, ProtocolError, TransportError, ConfigurationError
    """
    notify = progress or quiet
    t0 = time.perf_counter()
    notify(ProgressEvent("alignment", 0, 2, "opening session"))
    exchange(transport, bank, bank.open_session(purpose="alignment", psi_method=psi_method))
    notify(ProgressEvent("alignment", 1, 2, f"private set intersection ({psi_method})", elapsed=time.perf_counter() - t0))
    exchange(transport, bank, bank.psi_requests())
    exchange(transport, bank, bank.finish_alignment(min_size=min_intersection))
    notify(ProgressEvent("alignment", 2, 2, f"{bank.aligned.size:,} shared customers", elapsed=time.perf_counter() - t0))
    return bank.aligned
