"""A minimal label-free quantile pre-binner, for the learning core's tests and benchmarks.

:mod:`riskfed.binning` is the pre-binner parties use (tie-aware cuts, special values,
categories); this one only cuts each numeric column at its distinct quantiles so the tree
core can be exercised on real data on its own. Codes follow the same conventions: the
intervals ``[-inf, c1)``, ``[c1, c2)``, … ``[ck, inf)`` get codes ``0 … k`` and missing
values (NaN) the code ``k + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskfed.errors import ConfigurationError, NotFittedError, SchemaError
from riskfed.learning.trees.layout import BinLayout


class QuantilePrebinner:
    """Cut each column at up to ``max_bins - 1`` distinct quantiles of its non-missing values.

    Parameters
    ----------
    max_bins:
        At most this many interval bins per column (the missing bin comes on top).
    party:
        Name used in error messages and in the layout.
    """

    def __init__(self, max_bins: int = 32, *, party: str = "party") -> None:
        self.max_bins = max_bins
        self.party = party

    def fit(self, X: np.ndarray) -> "QuantilePrebinner":
        """Learn the cuts of every column of ``X`` (float matrix, NaN for missing).

        Returns
        -------
        self
        """
        if not isinstance(self.max_bins, (int, np.integer)) or self.max_bins < 2:
            raise ConfigurationError(
                "The 'max_bins' parameter of QuantilePrebinner must be an int in the range [2, inf). "
                f"Got {self.max_bins!r} instead."
            )
        X = _as_float(X, self.party)
        probs = np.linspace(0.0, 1.0, self.max_bins + 1)[1:-1]
        self.cuts_ = []
        for j in range(X.shape[1]):
            col = X[:, j][~np.isnan(X[:, j])]
            cuts = np.unique(np.quantile(col, probs, method="lower")) if col.size else np.empty(0)
            # A cut at the minimum would leave the first interval empty.
            self.cuts_.append(cuts[cuts > col.min()] if col.size else cuts)
        self.layout_ = BinLayout(
            tuple(len(c) + 2 for c in self.cuts_), tuple(len(c) + 1 for c in self.cuts_), self.party
        )
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Bin codes (int32) of ``X``; NaN goes to each column's missing code."""
        if not hasattr(self, "cuts_"):
            raise NotFittedError(f"{self.party}: this QuantilePrebinner is not fitted yet; call fit first.")
        X = _as_float(X, self.party)
        if X.shape[1] != len(self.cuts_):
            raise SchemaError(
                f"{self.party}: expected {len(self.cuts_)} columns; got {X.shape[1]}.", party=self.party
            )
        codes = np.empty(X.shape, dtype=np.int32)
        for j, cuts in enumerate(self.cuts_):
            col = X[:, j]
            codes[:, j] = np.where(np.isnan(col), len(cuts) + 1, np.searchsorted(cuts, col, side="right"))
        return codes

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)


def prebin_parties(
    train: Sequence[np.ndarray],
    *others: Sequence[np.ndarray],
    max_bins: int = 32,
    parties: Sequence[str] | None = None,
) -> tuple[list[BinLayout], list[np.ndarray], list[list[np.ndarray]]]:
    """Fit one pre-binner per party on its training columns and bin every given set.

    Returns
    -------
    layouts, train_codes, other_codes
        One layout and one code matrix per party; ``other_codes[i]`` holds the codes of
        ``others[i]`` per party.
    """
    names = list(parties) if parties is not None else [f"party_{k}" for k in range(len(train))]
    binners = [QuantilePrebinner(max_bins, party=name).fit(X) for X, name in zip(train, names)]
    return (
        [b.layout_ for b in binners],
        [b.transform(X) for b, X in zip(binners, train)],
        [[b.transform(X) for b, X in zip(binners, group)] for group in others],
    )


def _as_float(X: np.ndarray, party: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise SchemaError(f"{party}: expected a 2-D matrix; got shape {X.shape}.", party=party)
    if np.isinf(X).any():
        raise SchemaError(f"{party}: infinite values cannot be binned.", party=party)
    return X
