"""A scoring session: the bank asks each fintech for the partial scores of applicants.

:class:`ScoringSession` opens one session (keyed-hash digests under a fresh key per
session by default, or ECDH PSI) and then serves any number of chunks of applicants
through it. In memory it builds the fintech roles from their model parts and tables;
given a transport already connected to fintech services it scores over the network.
What the bank does with the partial scores (its own part, the fallback, points and
reasons) is :mod:`riskfed.scoring.score`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from riskfed.alignment.normalize import IdNormalization
from riskfed.data.schema import PartyTable
from riskfed.errors import ConfigurationError
from riskfed.roles.bank_scoring import ScoringBank
from riskfed.roles.fintech import Fintech
from riskfed.transport.base import Transport, exchange
from riskfed.transport.memory import InMemoryTransport


@dataclass(frozen=True)
class PartnerScores:
    """The fintechs' part of a chunk's log-odds."""

    total: np.ndarray  # Σ_k u_k per applicant (0 where a fintech does not know it)
    known: np.ndarray  # whether every fintech knows the applicant
    per_fintech: dict[str, np.ndarray]  # each fintech's u_k (0 where unknown)


class ScoringSession:
    """An open scoring session between the bank and its fintechs.

    Parameters
    ----------
    fintechs:
        The fintechs' names, in model order.
    normalization:
        The id normalisation the model was trained with.
    psi:
        ``keyed-hash`` (fresh key per session) or ``ecdh``.
    transport:
        Connected to the fintech services; ``None``: build the fintechs in memory from
        ``parts`` (name → model part) and ``tables`` (name → table).
    n_jobs:
        Worker processes for ECDH blinding.
    """

    def __init__(
        self,
        fintechs: list[str],
        *,
        normalization: IdNormalization,
        psi: str,
        transport: Transport | None = None,
        parts: Mapping[str, dict] | None = None,
        tables: Mapping[str, PartyTable] | None = None,
        n_jobs: int = 1,
    ) -> None:
        self.names = list(fintechs)
        if transport is None:
            transport = self._in_memory(parts or {}, tables or {}, n_jobs)
        self.transport = transport
        self.bank = ScoringBank(self.names, normalization=normalization, psi_method=psi, n_jobs=n_jobs)
        if isinstance(transport, InMemoryTransport):
            transport.register(self.bank)
        exchange(transport, self.bank, self.bank.open_session())
        exchange(transport, self.bank, self.bank.setup_messages())

    def _in_memory(self, parts: Mapping[str, dict], tables: Mapping[str, PartyTable], n_jobs: int) -> InMemoryTransport:
        """Every fintech of the model as a role in this process, from its part and table."""
        missing = [n for n in self.names if n not in tables]
        if missing:
            raise ConfigurationError(
                f"Scoring needs the data of every fintech in the model ({', '.join(self.names)}); "
                f"missing: {', '.join(missing)}."
            )
        transport = InMemoryTransport()
        for name in self.names:
            part = parts.get(name)
            if part is None:
                raise ConfigurationError(f"{name}: its model part is not available for in-memory scoring.", party=name)
            transport.register(Fintech(name, tables[name], model=part, n_jobs=n_jobs))
        return transport

    def partial_scores(self, normalized_ids: np.ndarray) -> PartnerScores:
        """The fintechs' partial scores of one chunk of (normalised) applicant ids."""
        exchange(self.transport, self.bank, self.bank.chunk_messages(normalized_ids))
        total, known, per = self.bank.chunk_result()
        return PartnerScores(total, known, per)
