"""One party's local half of vertical logistic regression: its weights and optimiser.

Each party updates only its own weights with its own optimiser state, from the exact
integer gradient sums it unmasks. The default optimiser preconditions the gradient with
the inverse of the party's own features' Gram matrix and returns the running
(Polyak–Ruppert) average of the iterates; docs/design.md says why ("Local optimiser").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from riskfed.crypto.encoding import FEATURE_FRAC_BITS, RESIDUAL_FRAC_BITS
from riskfed.errors import ConfigurationError
from riskfed.learning.linear.hyperparameters import Hyperparameters

# Ridge added to the local Gram matrix so one-hot blocks and constant columns invert.
_GRAM_RIDGE = 1e-3


@dataclass
class LocalModel:
    """One party's weights, optimizer state and quantised training design matrix.

    ``X_q`` holds the party's aligned rows (training and holdout) quantised; ``bias``
    marks the bank, which also owns the intercept (stored as the last weight).
    """

    X_q: np.ndarray
    hyper: Hyperparameters
    train_rows: np.ndarray
    bias: bool = False
    weights: np.ndarray = field(init=False)
    steps: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        width = self.X_q.shape[1] + (1 if self.bias else 0)
        self.weights = np.zeros(width)
        self.average = np.zeros(width)
        self.velocity = np.zeros(width)
        self.second = np.zeros(width)
        self._epoch_start = self.average.copy()
        self._gram = None
        self._precond = None
        if self.hyper.optimizer == "preconditioned":
            X = self.design(self.train_rows)
            gram = X.T @ X / (4.0 * len(X))
            gram += (_GRAM_RIDGE + self.hyper.l2) * np.eye(gram.shape[0])
            self._precond = np.linalg.inv(gram)

    @property
    def n_features(self) -> int:
        return self.X_q.shape[1]

    def design(self, rows: np.ndarray) -> np.ndarray:
        """Quantised features as floats (exact), with the bank's column of ones."""
        X = self.X_q[rows].astype(np.float64) * (1.0 / (1 << FEATURE_FRAC_BITS))
        if self.bias:
            X = np.hstack([X, np.ones((len(rows), 1))])
        return X

    def partial_scores(self, rows: np.ndarray, *, averaged: bool = False) -> np.ndarray:
        w = self.average if averaged and self.hyper.averaging else self.weights
        return self.design(rows) @ w

    def exponents(self, rows: np.ndarray, loss_column: np.ndarray | None) -> np.ndarray:
        """Integer exponent matrix of the encrypted gradient: features, ones, loss column."""
        cols = [self.X_q[rows]]
        if self.bias:
            cols.append(np.ones((len(rows), 1), dtype=np.int64))
        if loss_column is not None:
            cols.append(loss_column.reshape(-1, 1))
        return np.hstack(cols).astype(np.int64)

    def apply_gradient(self, sums: list[int], rows: int) -> None:
        """Update from exact integer sums ``Σ_i x_ij e_i`` (one per weight)."""
        h = self.hyper
        scale = rows * float(1 << (FEATURE_FRAC_BITS + RESIDUAL_FRAC_BITS))
        grad = np.array([s / scale for s in sums[: self.n_features]])
        if self.bias:
            # The intercept column is all ones, not scaled by 2^-FEATURE_FRAC_BITS.
            grad = np.append(grad, sums[self.n_features] / (rows * float(1 << RESIDUAL_FRAC_BITS)))
        penalty = h.l2 * self.weights
        if self.bias:
            penalty[-1] = 0.0
        grad = grad + penalty
        lr = h.learning_rate
        if h.decay:
            lr = lr / (1.0 + self.steps / h.steps_per_epoch)
        self.steps += 1
        if h.optimizer == "preconditioned":
            step = lr * (2.0 / h.parties) * (self._precond @ grad)
        elif h.optimizer == "sgd":
            step = lr * grad
        elif h.optimizer == "momentum":
            self.velocity = h.momentum * self.velocity + grad
            step = lr * self.velocity
        elif h.optimizer == "nesterov":
            self.velocity = h.momentum * self.velocity + grad
            step = lr * (grad + h.momentum * self.velocity)
        else:  # adam
            b1, b2 = h.momentum, 0.999
            self.velocity = b1 * self.velocity + (1 - b1) * grad
            self.second = b2 * self.second + (1 - b2) * grad * grad
            m_hat = self.velocity / (1 - b1**self.steps)
            v_hat = self.second / (1 - b2**self.steps)
            step = lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        self.weights = self.weights - step
        self.average = self.average + (self.weights - self.average) / self.steps

    @property
    def final_weights(self) -> np.ndarray:
        return self.average if self.hyper.averaging else self.weights

    def end_epoch(self) -> tuple[float, float]:
        """How far this party's scores moved over the epoch, and their size.

        Returns ``(Δw^T G Δw, w^T G w)`` with ``G`` the Gram matrix of the party's own
        training rows: the mean squared change of its partial scores and their mean square.
        Scores, unlike raw weights, do not count shifts between correlated features that
        cancel out. Both numbers are aggregates over all training rows.
        """
        if self._gram is None:
            X = self.design(self.train_rows)
            self._gram = X.T @ X / len(X)
        current = self.final_weights
        delta = current - self._epoch_start
        self._epoch_start = current.copy()
        return float(delta @ self._gram @ delta), float(current @ self._gram @ current)

    # -- checkpoints (riskfed.checkpoint) -------------------------------------------------
    _STATE_ARRAYS = ("weights", "average", "velocity", "second", "_epoch_start")

    def get_state(self) -> dict:
        """The optimizer state at an epoch boundary: float64 arrays and the step count.

        Everything else (design matrix, preconditioner, Gram matrix) is rebuilt from the
        party's data, deterministically, so a restored model continues bit for bit.
        """
        return {"steps": int(self.steps)} | {name.lstrip("_"): getattr(self, name).copy() for name in self._STATE_ARRAYS}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` (shapes are checked against this model)."""
        width = self.weights.shape
        for name in self._STATE_ARRAYS:
            value = np.asarray(state[name.lstrip("_")], dtype=np.float64)
            if value.shape != width:
                raise ConfigurationError(
                    f"Checkpoint: {name.lstrip('_')!r} has shape {value.shape}, the model has {width}."
                )
            setattr(self, name, value.copy())
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ConfigurationError(f"Checkpoint: 'steps' must be an int ≥ 0. Got {steps!r} instead.")
        self.steps = int(steps)
