"""A party's local half of vertical logistic regression (plaintext, private to the party).

The same functions drive the encrypted protocol (:mod:`riskfed.roles`) and the plaintext
reference (:mod:`riskfed.models.reference`), so that the two agree bit for bit: every
quantity that crosses a boundary is computed here as an exact fixed-point integer.

Taylor-loss vertical LR (Hardy et al. 2017): with ``z = Σ_P u_P`` the residual is
``e = z/4 + 1/2 - y`` and the gradient ``X^T e / |S|``; parties exchange ``4e`` (so the
bank's contribution ``u_B + 2 - 4y`` is a plain addition).

Each party updates only its own weights with its own optimizer state. The default
optimizer preconditions the party's gradient with the inverse of its *own* features'
Gram matrix (block-Jacobi Newton for the quadratic Taylor loss: it uses only data the
party already holds, so it reveals nothing new), and the model returned is the running
(Polyak–Ruppert) average of the iterates, which removes most mini-batch noise. On the
UCI default data this reaches the Taylor optimum's AUC within one epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from riskfed.crypto.encoding import (
    FEATURE_BOUND_BITS,
    FEATURE_FRAC_BITS,
    LOSS_FRAC_BITS,
    PARTIAL_SCORE_BOUND_BITS,
    RESIDUAL_BOUND_BITS,
    SCORE_FRAC_BITS,
    STATISTICAL_SECURITY_BITS,
    quantize,
)
from riskfed.errors import ConfigurationError

OPTIMIZERS = ("preconditioned", "sgd", "momentum", "nesterov", "adam")
# Ridge added to the local Gram matrix so one-hot blocks and constant columns invert.
_GRAM_RIDGE = 1e-3


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings the bank announces to every party (all public).

    Parameters
    ----------
    learning_rate:
        Step size (for ``preconditioned``, a fraction of the local Newton step).
    optimizer:
        One of ``preconditioned`` (default), ``sgd``, ``momentum``, ``nesterov``, ``adam``.
    l2:
        L2 penalty on the (standardised) feature weights; the intercept is not penalised.
    batch_size:
        Rows per mini-batch; at least ``min_batch_size`` so a party's own gradient does not
        expose individual labels.
    max_epochs, tol:
        Stop after ``max_epochs`` or when the averaged weights move less than ``tol``
        (relative) over an epoch.
    averaging:
        Return the running average of the iterates (Polyak–Ruppert).
    track_loss:
        Compute the aggregate Taylor training loss per batch (one extra encrypted column
        per party; the bank learns the batch loss, an aggregate).
    decay:
        Scale the step by ``1 / (1 + t / steps_per_epoch)`` (halved after one epoch).
    parties, steps_per_epoch:
        Set by the bank: the number of parties (the ``preconditioned`` step is damped by
        ``2 / parties``, which keeps block-Jacobi iterations stable for any correlation
        between parties' features) and the batches per epoch.
    """

    learning_rate: float = 1.0
    optimizer: str = "preconditioned"
    l2: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 3
    tol: float = 0.02
    averaging: bool = True
    track_loss: bool = True
    momentum: float = 0.9
    min_batch_size: int = 256
    decay: bool = True
    # Filled in by the bank when it plans the session:
    parties: int = 2
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        def bad(name, kind, value):
            return ConfigurationError(
                f"The {name!r} parameter of VerticalLogisticRegression must be {kind}. Got {value!r} instead."
            )

        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < np.inf):
            raise bad("learning_rate", "a float in the range (0.0, inf)", self.learning_rate)
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {', '.join(OPTIMIZERS)}", self.optimizer)
        if not (isinstance(self.l2, (int, float)) and 0 <= self.l2 < np.inf):
            raise bad("l2", "a float in the range [0.0, inf)", self.l2)
        if not isinstance(self.min_batch_size, int) or self.min_batch_size < 1:
            raise bad("min_batch_size", "an int in the range [1, inf)", self.min_batch_size)
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < self.min_batch_size:
            raise bad("batch_size", f"an int in the range [{self.min_batch_size}, inf)", self.batch_size)
        if not isinstance(self.max_epochs, int) or isinstance(self.max_epochs, bool) or self.max_epochs < 1:
            raise bad("max_epochs", "an int in the range [1, inf)", self.max_epochs)
        if not (isinstance(self.tol, (int, float)) and 0 <= self.tol < np.inf):
            raise bad("tol", "a float in the range [0.0, inf)", self.tol)
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise bad("momentum", "a float in the range [0.0, 1.0)", self.momentum)
        if not isinstance(self.parties, int) or self.parties < 2:
            raise bad("parties", "an int in the range [2, inf)", self.parties)
        if not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1:
            raise bad("steps_per_epoch", "an int in the range [1, inf)", self.steps_per_epoch)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict) -> "Hyperparameters":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def gradient_bound_bits(batch_rows: int) -> int:
    """Bits that bound ``|Σ_i x_ij (4e)_i|`` (and the loss column) for a batch."""
    return int(batch_rows).bit_length() + max(FEATURE_BOUND_BITS, PARTIAL_SCORE_BOUND_BITS + LOSS_FRAC_BITS + 1) + RESIDUAL_BOUND_BITS


def mask_bits(batch_rows: int) -> int:
    """Mask width: the gradient bound plus 80 bits of statistical hiding."""
    return gradient_bound_bits(batch_rows) + STATISTICAL_SECURITY_BITS


def quantize_features(X: np.ndarray, *, party: str, columns: list[str]) -> np.ndarray:
    """Standardised features → int64 at 2^-10 (refusing outliers beyond ±2^15 sd)."""
    return quantize(X, FEATURE_FRAC_BITS, FEATURE_BOUND_BITS, party=party, what="standardised feature", columns=columns)


def encode_partial(u: np.ndarray, *, party: str) -> np.ndarray:
    """A partial score ``u_P`` as int64 at 2^-24, bounded by ±2^10."""
    return quantize(u, SCORE_FRAC_BITS, PARTIAL_SCORE_BOUND_BITS + SCORE_FRAC_BITS, party=party, what="partial score")


def encode_loss_partial(u: np.ndarray, *, party: str) -> np.ndarray:
    """``u_P`` at 2^-12, the exponent of the loss column."""
    return quantize(u, LOSS_FRAC_BITS, PARTIAL_SCORE_BOUND_BITS + LOSS_FRAC_BITS, party=party, what="partial score")


def label_offset(y: np.ndarray) -> np.ndarray:
    """``(2 - 4y) * 2^24`` as exact int64: the bank's label part of ``4e``."""
    return (2 - 4 * y.astype(np.int64)) << SCORE_FRAC_BITS


def label_signs(y: np.ndarray) -> np.ndarray:
    """``1 - 2y``: +1 for non-defaulters, -1 for defaulters."""
    return 1 - 2 * y.astype(np.int64)


# Σ_i u_i (1 - 2y_i) enters the loss at 2^-24 and is lifted to the loss scale 2^-36,
# times 2 (see batch_loss): a shift by 12 + 1 bits.
LOSS_LABEL_SHIFT = LOSS_FRAC_BITS + 1


def batch_loss(total: int, rows: int) -> float:
    """Mean Taylor loss of a batch from the decrypted aggregate ``Q``.

    With ``y ∈ {0, 1}`` the Taylor loss is ``ln 2 + (1/2 - y) z + z^2/8
    = ln 2 + z (4e)/8 + z (1 - 2y)/4``, so over a batch
    ``Σ_i L_i = |S| ln 2 + (T + 2 Y)/8`` with ``T = Σ_i z_i (4e)_i`` (each party's share
    ``Σ_i u_P,i (4e)_i`` from its encrypted loss column) and ``Y = Σ_i z_i (1 - 2y_i)``
    (the bank adds its own part in plaintext and each fintech's part from the ``[[u_k]]``
    it already holds). ``Q = T + 2Y`` arrives at scale 2^36.
    """
    return float(np.log(2.0) + total / float(1 << (SCORE_FRAC_BITS + LOSS_FRAC_BITS)) / 8.0 / rows)


def exact_column_sums(X_q: np.ndarray, v: np.ndarray) -> list[int]:
    """``X_q^T v`` in exact integers (the plaintext twin of the encrypted multi-exponentiation).

    ``v`` may exceed 2^41 and ``X_q`` 2^25, so products overflow int64; split ``v`` into
    21-bit limbs whose partial sums stay exact in int64.
    """
    v = v.astype(np.int64)
    lo = v & ((1 << 21) - 1)
    hi = v >> 21  # arithmetic shift keeps the sign: v = hi * 2^21 + lo
    s_lo = X_q.T.astype(np.int64) @ lo
    s_hi = X_q.T.astype(np.int64) @ hi
    return [int(h) * (1 << 21) + int(low) for h, low in zip(s_hi.tolist(), s_lo.tolist())]


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
        """Update from exact integer sums ``Σ_i x_ij (4e)_i`` (one per weight)."""
        h = self.hyper
        scale = 4.0 * rows * float(1 << (FEATURE_FRAC_BITS + SCORE_FRAC_BITS))
        grad = np.array([s / scale for s in sums[: self.n_features]])
        if self.bias:
            # The intercept column is all ones, not scaled by 2^-10.
            grad = np.append(grad, sums[self.n_features] / (4.0 * rows * float(1 << SCORE_FRAC_BITS)))
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
        """Squared norms of the model's change over the epoch and of the model itself."""
        current = self.final_weights
        change = float(np.sum((current - self._epoch_start) ** 2))
        self._epoch_start = current.copy()
        return change, float(np.sum(current**2))


def draw_masks(count: int, bits: int) -> list[int]:
    """Fresh masks, uniform in ``[2^(bits-80), 2^bits)``.

    The lower limit exceeds any gradient magnitude, so ``g + m`` is never negative and
    packed slots never borrow; the range still hides ``g`` to within 2^-80.
    """
    import secrets

    low = 1 << (bits - STATISTICAL_SECURITY_BITS)
    return [low + secrets.randbelow((1 << bits) - low) for _ in range(count)]
