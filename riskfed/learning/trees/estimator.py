"""Gradient-boosted trees on pre-binned codes held in one process (scikit-learn style).

:class:`GradientBoostedTrees` runs the learning core with every party local: the pooled
plaintext twin of a federated SecureBoost run (give it the parties' code matrices in
session order, label holder first, with the same bins and generator) and the bank's own
tree baseline (give it the bank's codes alone). Split finding, sampling and early
stopping are exactly those of the federated run (:func:`~riskfed.learning.trees.boosting.fit_boosting`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from riskfed.errors import ConfigurationError, NotFittedError, SchemaError
from riskfed.learning.trees.boosting import BoostingParams, BoostingResult, fit_boosting
from riskfed.learning.trees.gradients import check_labels, sigmoid
from riskfed.learning.trees.layout import NO_MISSING, BinLayout
from riskfed.learning.trees.local import LocalHistogramProvider, LocalParty
from riskfed.learning.trees.model import model_parts, read_model_parts

Codes = np.ndarray | Sequence[np.ndarray]


class GradientBoostedTrees(BaseEstimator):
    """Logistic-loss gradient boosting on integer bin codes.

    Parameters
    ----------
    n_estimators, max_depth, learning_rate, reg_lambda, min_child_weight, gamma,
    subsample, colsample_bytree, early_stopping_rounds, first_tree_label_holder_only:
        See :class:`~riskfed.learning.trees.boosting.BoostingParams`.
    random_state:
        ``None`` (fresh entropy), an int seed, or a :class:`numpy.random.Generator`
        (consumed as is: a federated session passes one derived from its secret).

    Attributes
    ----------
    model_:
        The label holder's part (:class:`~riskfed.learning.trees.model.BoostedModel`).
    parties_:
        One :class:`~riskfed.learning.trees.local.LocalParty` per party (layout and handles).
    n_estimators_, best_iteration_:
        Trees kept and the index of the best one.
    train_loss_, validation_loss_:
        Log loss after each grown tree.
    feature_importances_:
        Total gain per characteristic (parties concatenated), normalised to sum 1.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int = 3,
        learning_rate: float = 0.1,
        *,
        reg_lambda: float = 1.0,
        min_child_weight: float = 1.0,
        gamma: float = 0.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        early_stopping_rounds: int | None = None,
        first_tree_label_holder_only: bool = False,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.reg_lambda = reg_lambda
        self.min_child_weight = min_child_weight
        self.gamma = gamma
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.early_stopping_rounds = early_stopping_rounds
        self.first_tree_label_holder_only = first_tree_label_holder_only
        self.random_state = random_state

    def fit(
        self,
        codes: Codes,
        y: np.ndarray,
        *,
        layouts: BinLayout | Sequence[BinLayout] | None = None,
        eval_set: tuple[Codes, np.ndarray] | None = None,
    ) -> "GradientBoostedTrees":
        """Boost trees on the codes of one or several parties.

        Parameters
        ----------
        codes:
            An ``(n, m)`` integer matrix, or one per party (label holder first).
        y:
            Labels in {0, 1}.
        layouts:
            One :class:`~riskfed.learning.trees.layout.BinLayout` per party; by default each
            characteristic gets ``max code + 1`` bins and no missing code.
        eval_set:
            ``(codes, y)`` of validation rows, for the validation loss and early stopping.

        Returns
        -------
        self
        """
        params = BoostingParams.from_owner(self.get_params(), type(self).__name__)
        parts = _parts(codes)
        y = check_labels(y)
        layouts = _layouts(layouts, parts)
        valid_parts, y_valid = [None] * len(parts), None
        if eval_set is not None:
            valid_parts = _parts(eval_set[0])
            y_valid = check_labels(eval_set[1], column="eval_set y")
            _check_rows(valid_parts, len(y_valid), "eval_set")
        _check_rows(parts, len(y), "codes")
        if len(valid_parts) != len(parts):
            raise SchemaError(f"eval_set has {len(valid_parts)} parties; codes have {len(parts)}.")
        self.parties_ = [LocalParty(lay, tr, va) for lay, tr, va in zip(layouts, parts, valid_parts)]
        result: BoostingResult = fit_boosting(
            params, layouts, y, LocalHistogramProvider(self.parties_), self.parties_, _generator(self.random_state),
            y_valid=y_valid,
        )
        for party, count in zip(self.parties_, result.handle_counts):
            party.handles.truncate(count)
        self.model_ = result.model
        self.n_estimators_ = len(result.model.trees)
        self.best_iteration_ = result.best_iteration
        self.train_loss_ = result.train_loss
        self.validation_loss_ = result.valid_loss
        gain = np.concatenate(result.model.importance.gain)
        self.feature_importances_ = gain / gain.sum() if gain.sum() > 0 else gain
        self.classes_ = np.array([0, 1])
        return self

    def to_parts(self) -> list[dict]:
        """Each party's JSON part (see :func:`~riskfed.learning.trees.model.model_parts`)."""
        self._check_fitted()
        return model_parts(self.model_, [(p.layout, p.handles) for p in self.parties_])

    @classmethod
    def from_parts(cls, parts: Sequence[dict]) -> "GradientBoostedTrees":
        """A scoring-only estimator from the parts of :meth:`to_parts` (read as JSON, never pickled)."""
        model, owners = read_model_parts(parts)
        estimator = cls()
        estimator.model_ = model
        estimator.parties_ = [
            LocalParty(layout, np.zeros((0, layout.n_features), dtype=np.int32), handles=handles)
            for layout, handles in owners
        ]
        estimator.n_estimators_ = len(model.trees)
        estimator.classes_ = np.array([0, 1])
        return estimator

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("This GradientBoostedTrees is not fitted yet; call fit first.")

    def decision_function(self, codes: Codes) -> np.ndarray:
        """Raw scores (log-odds of default)."""
        self._check_fitted()
        parts = _parts(codes)
        if len(parts) != len(self.parties_):
            raise SchemaError(f"The model was fitted on {len(self.parties_)} parties; got codes of {len(parts)}.")
        _check_rows(parts, parts[0].shape[0], "codes")
        decisions = [p.handles.decide(p.layout.check_codes(c), p.layout) for p, c in zip(self.parties_, parts)]
        return self.model_.decision_function(decisions)[0]

    def predict_proba(self, codes: Codes) -> np.ndarray:
        """``(n, 2)`` probabilities of no default and default."""
        p = sigmoid(self.decision_function(codes))
        return np.column_stack([1.0 - p, p])

    def predict(self, codes: Codes, threshold: float = 0.5) -> np.ndarray:
        """1 where the probability of default reaches ``threshold``."""
        return (self.predict_proba(codes)[:, 1] >= threshold).astype(np.int64)


def _generator(random_state) -> np.random.Generator:
    if random_state is None or isinstance(random_state, (int, np.integer, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise ConfigurationError(
        "The 'random_state' parameter of GradientBoostedTrees must be None, an int or a numpy Generator. "
        f"Got {random_state!r} instead."
    )


def _parts(codes: Codes) -> list[np.ndarray]:
    if isinstance(codes, np.ndarray):
        return [codes]
    parts = [np.asarray(c) for c in codes]
    if not parts:
        raise SchemaError("No code matrix given: pass one (n, m) matrix or one per party.")
    return parts


def _layouts(layouts, parts: list[np.ndarray]) -> list[BinLayout]:
    if layouts is None:
        inferred = []
        for k, part in enumerate(parts):
            if part.ndim != 2 or part.shape[0] == 0:
                raise SchemaError(f"party {k}: expected a non-empty 2-D matrix of bin codes; got shape {part.shape}.")
            n_bins = tuple(int(b) + 1 for b in part.max(axis=0))
            inferred.append(BinLayout(n_bins, (NO_MISSING,) * part.shape[1], f"party {k}"))
        return inferred
    layouts = [layouts] if isinstance(layouts, BinLayout) else list(layouts)
    if len(layouts) != len(parts):
        raise SchemaError(f"Got {len(layouts)} layouts for {len(parts)} code matrices; give one per party.")
    return layouts


def _check_rows(parts: list[np.ndarray], n: int, what: str) -> None:
    for k, part in enumerate(parts):
        if part.ndim != 2 or part.shape[0] != n:
            raise SchemaError(f"{what}: party {k} has shape {part.shape}; expected {n} rows (one per label).")
