"""A fintech's scoring side and its model part (part of :class:`~riskfed.roles.fintech.Fintech`).

At scoring time a fintech returns the plaintext partial scores ``u_k`` of the rows the
bank asks about — aligned positions, positions in its own PSI list, or keyed-hash digests
of applicants (it learns which of those are its customers) — and nothing else.
"""

from __future__ import annotations

import numpy as np

from riskfed.alignment.keyed_hash import keyed_digests
from riskfed.alignment.normalize import IdNormalization
from riskfed.data.preprocess import Preprocessor
from riskfed.errors import ProtocolError
from riskfed.protocol.messages import BANK, PartialScores, ScoreRequest
from riskfed.roles.base import check_positions, handles

MODEL_KIND = "riskfed-fintech-model"


class FintechScoringSteps:
    """Partial scores and the model part; state lives on :class:`~riskfed.roles.fintech.Fintech`."""

    def _partial(self, table_rows: np.ndarray) -> np.ndarray:
        X = self.preprocessor.transform(self.table.features.iloc[table_rows])
        return X @ self.weights

    @handles(ScoreRequest)
    def _on_score(self, msg: ScoreRequest):
        if msg.index == "aligned":
            if self.aligned_rows is None:
                raise ProtocolError(f"{self.name} has no aligned rows in this session.", party=BANK)
            rows = np.asarray(msg.rows, dtype=np.int64)
            check_positions(rows, len(self.aligned_rows), party=BANK, what="scoring rows")
            if self.plan is not None:
                scores = self.plan.X_full[rows] @ self.weights
            else:
                scores = self._partial(self.aligned_rows[rows])
            return [self.reply(PartialScores, BANK, msg.round, scores=scores, known=np.ones(len(rows), dtype=bool))]
        if msg.index == "psi_list":
            rows = np.asarray(msg.rows, dtype=np.int64)
            check_positions(rows, len(self._perm), party=BANK, what="scoring rows")
            scores = self._partial(self._perm[rows]) if len(rows) else np.empty(0)
            return [self.reply(PartialScores, BANK, msg.round, scores=scores, known=np.ones(len(rows), dtype=bool))]
        if msg.index == "digests":
            if self._hash_key is None:
                raise ProtocolError(f"{self.name} has no keyed-hash key for this scoring session.", party=BANK)
            if self._digest_lookup is None:
                own = keyed_digests(self._norm_ids.tolist(), self._hash_key)
                self._digest_lookup = dict(zip(own.tolist(), range(len(own))))
            lookup = self._digest_lookup
            positions = np.fromiter((lookup.get(d, -1) for d in msg.digests.tolist()), dtype=np.int64, count=len(msg.digests))
            known = positions >= 0
            scores = np.zeros(len(positions))
            if known.any():
                scores[known] = self._partial(positions[known])
            return [self.reply(PartialScores, BANK, msg.round, scores=scores, known=known)]
        raise ProtocolError(f"{self.name}: unknown scoring index {msg.index!r}.", party=BANK)

    def export_model(self) -> dict:
        """This fintech's model part: its preprocessing and weights, nothing of the bank's."""
        if self.weights is None:
            raise ProtocolError(f"{self.name} has not finished training.")
        return {
            "party": self.name,
            "kind": MODEL_KIND,
            "format_version": 1,
            "id_normalization": self.normalization.to_dict(),
            "preprocessing": self.preprocessor.to_dict(),
            "feature_names": self.preprocessor.feature_names_,
            "weights": self.weights.tolist(),
        }

    def _load_model(self, model: dict) -> None:
        if model.get("kind") != MODEL_KIND:
            raise ProtocolError(f"{self.name}: the model part is not a fintech model part.")
        self.preprocessor = Preprocessor.from_dict(model["preprocessing"])
        self.weights = np.asarray(model["weights"], dtype=np.float64)
        self.normalization = IdNormalization.from_dict(model["id_normalization"])
