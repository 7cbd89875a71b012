"""The bank in a scoring session: asks each fintech for partial scores of applicants.

Threat model for this role (docs/threat-model.md): the bank's, restricted to scoring. It
**sends** keyed-hash digests of the applicants under a fresh key per session and fintech
(or ECDH-blinded ids), **receives** each fintech's partial scores ``u_k`` for the
applicants it knows, and **learns** those scores — the accepted inference-time leak —
and which applicants each fintech knows. With ``ecdh`` a fintech learns only which of
its own customers applied.
"""

from __future__ import annotations

import uuid

import numpy as np

from riskfed import settings
from riskfed.alignment.ecdh import EcdhKey
from riskfed.alignment.index import match_positions
from riskfed.alignment.keyed_hash import keyed_digests, new_shared_key
from riskfed.alignment.normalize import IdNormalization
from riskfed.errors import AlignmentError, ProtocolError
from riskfed.protocol.messages import (
    BANK,
    SCORING_ROUND_BASE,
    Ack,
    HashKeyShare,
    PartialScores,
    PsiBlinded,
    PsiDoubleBlinded,
    ScoreRequest,
    SessionOpen,
    SessionReady,
)
from riskfed.roles.base import Role, handles
from riskfed.roles.state import ScoringChunk


class ScoringBank(Role):
    """The bank in a scoring session (one session, any number of chunks of applicants).

    Parameters
    ----------
    fintechs:
        The fintechs' names, in model order.
    normalization:
        The id normalisation the model was trained with.
    psi_method:
        ``keyed-hash`` (a fresh key per session and fintech) or ``ecdh``.
    n_jobs:
        Worker processes for ECDH blinding.
    """

    def __init__(
        self,
        fintechs: list[str],
        *,
        normalization: IdNormalization | None = None,
        psi_method: str = settings.default("scoring_psi"),
        n_jobs: int = 1,
    ) -> None:
        super().__init__(BANK)
        settings.check("scoring_psi", psi_method, "ScoringBank")
        self.fintechs = list(fintechs)
        self.normalization = normalization or IdNormalization()
        self.psi_method = psi_method
        self.n_jobs = n_jobs
        self._round = SCORING_ROUND_BASE
        self._ecdh: EcdhKey | None = None  # ECDH: this session's blinding secret
        self._keys: dict[str, bytes] = {}  # keyed hash: this session's key per fintech
        self._partner_points: dict[str, np.ndarray] = {}
        self._chunk: ScoringChunk | None = None

    def open_session(self, session_id: str | None = None) -> list[SessionOpen]:
        self.session_id = session_id or uuid.uuid4().hex
        self.expect(SessionReady, *self.fintechs)
        return [
            self.reply(
                SessionOpen,
                f,
                0,
                purpose="scoring",
                parties=(BANK, *self.fintechs),
                psi_method=self.psi_method,
                id_normalization=self.normalization.to_dict(),
            )
            for f in self.fintechs
        ]

    @handles(SessionReady)
    def _on_ready(self, msg: SessionReady):
        return []

    @handles(Ack)
    def _on_ack(self, msg: Ack):
        return []

    def setup_messages(self) -> list:
        """Keyed-hash: one fresh key per fintech for this session. ECDH: nothing yet."""
        self.done(SessionReady)
        if self.psi_method == "ecdh":
            self._ecdh = EcdhKey.generate()
            return []
        self._keys = {f: new_shared_key() for f in self.fintechs}
        self.expect(Ack, *self.fintechs)
        return [self.reply(HashKeyShare, f, 0, key=self._keys[f], purpose="scoring") for f in self.fintechs]

    def chunk_messages(self, norm_ids: np.ndarray) -> list:
        """First request for a chunk of (normalised) applicant ids."""
        self._round += 1
        self._chunk = ScoringChunk(len(norm_ids))
        ids = norm_ids.tolist()
        if self.psi_method == "ecdh":
            self.expect(PsiDoubleBlinded, *self.fintechs)
            points = self._ecdh.blind(ids, n_jobs=self.n_jobs, party=BANK)
            return [self.reply(PsiBlinded, f, self._round, points=points) for f in self.fintechs]
        self.expect(PartialScores, *self.fintechs)
        return [
            self.reply(ScoreRequest, f, self._round, index="digests", digests=keyed_digests(ids, self._keys[f]))
            for f in self.fintechs
        ]

    @handles(PsiDoubleBlinded)
    def _on_double_blinded(self, msg: PsiDoubleBlinded):
        self.check_round(msg, self._round)
        if len(msg.double_blinded) != self._chunk.size:
            raise AlignmentError(f"{msg.sender} returned the wrong number of double-blinded ids.", party=msg.sender)
        if msg.sender not in self._partner_points:
            # The fintech's own blinded list arrives once per session; blind it once too.
            self._partner_points[msg.sender] = self._ecdh.reblind(msg.partner_blinded, n_jobs=self.n_jobs, party=msg.sender)
        b_pos, f_pos = match_positions(msg.double_blinded, self._partner_points[msg.sender], bank=BANK, partner=msg.sender)
        self._chunk.matches[msg.sender] = b_pos
        self.expect(PartialScores, *self.fintechs)
        return [self.reply(ScoreRequest, msg.sender, self._round, index="psi_list", rows=f_pos)]

    @handles(PartialScores)
    def _on_partial_scores(self, msg: PartialScores):
        self.check_round(msg, self._round)
        size = self._chunk.size
        scores = np.zeros(size)
        known = np.zeros(size, dtype=bool)
        if self.psi_method == "ecdh":
            rows = self._chunk.matches[msg.sender]
            if len(msg.scores) != len(rows):
                raise ProtocolError(f"{msg.sender} returned {len(msg.scores)} scores for {len(rows)} rows.", party=msg.sender)
            scores[rows] = msg.scores
            known[rows] = True
        else:
            if len(msg.scores) != size or len(msg.known) != size:
                raise ProtocolError(f"{msg.sender} returned {len(msg.scores)} scores for {size} applicants.", party=msg.sender)
            scores, known = msg.scores.copy(), msg.known.copy()
            scores[~known] = 0.0
        if not np.isfinite(scores).all():
            raise ProtocolError(f"{msg.sender} returned non-finite partial scores.", party=msg.sender)
        self._chunk.partials[msg.sender] = (scores, known)
        return []

    def chunk_result(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Σ_k u_k per applicant, whether every fintech knew it, and per-fintech scores."""
        missing = [f for f in self.fintechs if f not in self._chunk.partials]
        if missing:
            raise ProtocolError(f"bank: no partial scores from {', '.join(missing)}.", party=missing[0])
        self.done(PartialScores)
        self.done(PsiDoubleBlinded)
        size = self._chunk.size
        total = np.zeros(size)
        known_all = np.ones(size, dtype=bool)
        per = {}
        for f in self.fintechs:
            scores, known = self._chunk.partials[f]
            total += scores
            known_all &= known
            per[f] = scores
        return total, known_all, per
