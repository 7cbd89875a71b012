"""A party's local half of vertical logistic regression (plaintext, private to the party).

The same functions drive the encrypted protocol (:mod:`riskfed.roles`) and the plaintext
reference (:mod:`riskfed.models.reference`), so that the two agree bit for bit: every
quantity that crosses a boundary is computed here as an exact fixed-point integer.

The residual. With ``z = u_B + U`` (``U = Σ_k u_k``, the fintechs' part), the gradient
of the logistic loss needs ``σ(z_i) - y_i`` per row, which no party can compute (the bank
must not learn ``U_i``; the fintechs must not learn ``y`` or ``u_B``). riskfed expands
``σ`` around an *anchor* ``a_i`` that the bank knows:

    e_i = σ(a_i) - y_i + σ'(a_i)(z_i - a_i) + ½ σ''(a_i)(z_i - a_i)^2

which is linear in encrypted quantities the fintechs can supply, ``[[U_i]]`` and
``[[V_i]]`` with ``V = Σ_k u_k^2``; the bank forms
``[[e_i]] = [[U_i]]^{s_i} · [[V_i]]^{t_i} ⊕ c_i`` with two short scalar multiplications
per row. Three expansions are offered:

* ``zero`` — Hardy et al. (2017): ``a = 0``, first order, ``e = z/4 + 1/2 - y``. This is
  least squares in disguise and costs ≈ 0.005 AUC against a centralised logistic
  regression on the UCI default data.
* ``bank-linear`` — first order around the bank's own partial score ``a_i = u_B,i``: the
  non-linearity in the bank's part is exact, only the fintechs' part is linearised.
* ``bank`` (default) — the same anchor, second order. On pilot data, where the fintech's
  contribution is large, this keeps the gap to the centralised model near what plain
  logistic regression with the same optimizer reaches (docs/protocol.md has figures).
  It costs a second encryption per row at the fintech; with several fintechs the
  cross terms ``u_k u_l`` of ``U^2`` are left out.

Nothing new is revealed: the anchor and the coefficients are the bank's own, and the
fintechs only ever see ``[[e]]``.

Each party updates only its own weights with its own optimizer state. The default
optimizer preconditions the party's gradient with the inverse of its *own* features'
Gram matrix, scaled by the largest curvature 1/4 (block-Jacobi Newton for the expanded
loss: it uses only data the party already holds, so it reveals nothing new), and the
model returned is the running (Polyak–Ruppert) average of the iterates, which removes
most mini-batch noise. On the UCI default data one epoch gets within 0.003 AUC of a
centralised logistic regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from riskfed.crypto.encoding import (
    CURVATURE_FRAC_BITS,
    FEATURE_BOUND_BITS,
    FEATURE_FRAC_BITS,
    LOSS_FRAC_BITS,
    MAX_PARTIES_BITS,
    PARTIAL_SCORE_BOUND_BITS,
    RESIDUAL_BOUND_BITS,
    RESIDUAL_FRAC_BITS,
    SCORE_FRAC_BITS,
    SQUARE_BOUND_BITS,
    STATISTICAL_SECURITY_BITS,
    quantize,
)
from riskfed import settings
from riskfed.errors import ConfigurationError

OPTIMIZERS = settings.param("optimizer").constraints[0].values
RANDOMNESS = settings.param("randomness").constraints[0].values
EXPANSIONS = settings.param("expansion").constraints[0].values
# Ridge added to the local Gram matrix so one-hot blocks and constant columns invert.
_GRAM_RIDGE = 1e-3
# The bank and at most 63 fintechs (the residual bound of riskfed.crypto.encoding).
MAX_FINTECHS = settings.MAX_FINTECHS
assert MAX_FINTECHS == (1 << MAX_PARTIES_BITS) - 1
# Public limit on any party's weights (its features after encoding). A party may ask the
# coordinator to decrypt, per round, as many ciphertexts as its weights need, and a
# cheating party can put ciphertexts of its choice in them (docs/threat-model.md): the
# limit bounds what it could learn. The bank may announce a lower one in its plan.
MAX_FEATURES_PER_PARTY = settings.default("max_features")
# Settings declared in riskfed.settings (the estimator's checks and messages); the
# others are set by the bank when it plans the session.
_DECLARED = tuple(p.name for p in settings.params(owner="hyperparameters") if p.name != "batch_size")
_OWNER = "VerticalLogisticRegression"
_D = settings.defaults(owner="hyperparameters")


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings the bank announces to every party (all public).

    Parameters
    ----------
    learning_rate:
        Step size (for ``preconditioned``, a fraction of the local Newton step).
    optimizer:
        One of ``preconditioned`` (default), ``sgd``, ``momentum``, ``nesterov``, ``adam``.
    expansion:
        How the logistic loss is approximated: ``bank`` (default: second order around
        the bank's own partial score; fintechs also send ``[[u_k^2]]``), ``bank-linear``
        (first order there: half the encryptions) or ``zero`` (Hardy et al.'s Taylor loss).
    l2:
        L2 penalty on the (standardised) feature weights; the intercept is not penalised.
    batch_size:
        Rows per mini-batch; at least ``min_batch_size`` so a party's own gradient does not
        expose individual labels.
    max_epochs, tol:
        Stop after ``max_epochs``, or once the model's scores moved by less than ``tol``
        of their spread over an epoch (root mean square change of the partial scores over
        their root mean square, summed over parties; never before the second epoch).
    averaging:
        Return the running average of the iterates (Polyak–Ruppert).
    track_loss:
        Compute the aggregate (expanded logistic) training loss per batch: one extra
        encrypted column per party; the bank learns the batch loss, an aggregate.
    decay:
        Scale the step by ``1 / (1 + t / steps_per_epoch)`` (halved after one epoch).
    max_features:
        Most weights any party may have (its features after encoding; the bank's
        intercept and loss column come on top). It fixes how many ciphertexts a party may
        ask the coordinator to decrypt per round, so set it no higher than the parties
        need; the coordinator also applies its own ceiling (default 1024).
    randomness:
        Who makes the DJN randomizers ``h_s^r`` that every encryption needs:
        ``coordinator`` (default: the key holder makes them with the factorisation,
        1.5–1.7 times as fast with riskfed's C kernels, ahead of time; see
        :mod:`riskfed.roles.coordinator`) or ``own`` (each party makes its own from the
        public key).
    parties, steps_per_epoch:
        Set by the bank: the number of parties — the bank and at most 63 fintechs (the
        ``preconditioned`` step is damped by ``2 / parties``, which keeps block-Jacobi
        iterations stable for any correlation between parties' features; the mask width
        grows with it) — and the batches per epoch.
    """

    learning_rate: float = _D["learning_rate"]
    optimizer: str = _D["optimizer"]
    expansion: str = _D["expansion"]
    l2: float = _D["l2"]
    batch_size: int = _D["batch_size"]
    max_epochs: int = _D["max_epochs"]
    tol: float = _D["tol"]
    averaging: bool = _D["averaging"]
    track_loss: bool = _D["track_loss"]
    momentum: float = _D["momentum"]
    min_batch_size: int = _D["min_batch_size"]
    decay: bool = _D["decay"]
    randomness: str = _D["randomness"]
    max_features: int = _D["max_features"]
    # Filled in by the bank when it plans the session:
    parties: int = 2
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        for name in _DECLARED:
            settings.check(name, getattr(self, name), _OWNER)
        # The plan's own minimum, not the declared one: a party checks it against its own.
        settings.check_value("min_batch_size", self.min_batch_size, settings.Interval(int, 1, None, "left"), _OWNER)
        settings.check_value("batch_size", self.batch_size, settings.Interval(int, self.min_batch_size, None, "left"), _OWNER)
        parties = settings.Interval(int, 2, MAX_FINTECHS + 1)
        settings.check_value("parties", self.parties, parties, _OWNER, note=f"(the bank and at most {MAX_FINTECHS} fintechs)")
        steps = settings.Interval(int, 1, settings.MAX_STEPS_PER_EPOCH)
        settings.check_value("steps_per_epoch", self.steps_per_epoch, steps, _OWNER)
        for name, value in self.to_dict().items():
            # numpy scalars pass the checks; the plan travels as builtin ints and bools.
            if isinstance(value, (np.bool_, np.integer)):
                object.__setattr__(self, name, bool(value) if isinstance(value, np.bool_) else int(value))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict) -> "Hyperparameters":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def gradient_bound_bits(batch_rows: int, parties: int = 2) -> int:
    """Bits that bound ``|Σ_i x_ij e_i|`` (and the loss columns) for a batch.

    A row contributes at most ``2^max(feature, score + loss) · 2^residual``; the first-order
    aggregate loss adds one such term per party (the fintechs' shares, the bank's own
    column), so ``ceil(log2(parties))`` more bits cover ``parties`` = the bank plus its
    fintechs (at most 63, :data:`MAX_FINTECHS`).
    """
    if isinstance(parties, bool) or not isinstance(parties, int) or not 2 <= parties <= MAX_FINTECHS + 1:
        raise ConfigurationError(
            f"A session has the bank and 1 to {MAX_FINTECHS} fintechs (the encoding's bound); got {parties} parties."
        )
    per_row = max(FEATURE_BOUND_BITS, PARTIAL_SCORE_BOUND_BITS + LOSS_FRAC_BITS + 1) + RESIDUAL_BOUND_BITS
    return int(batch_rows).bit_length() + per_row + (parties - 1).bit_length()


def mask_bits(batch_rows: int, parties: int = 2) -> int:
    """Mask width: the gradient bound plus 80 bits of statistical hiding."""
    return gradient_bound_bits(batch_rows, parties) + STATISTICAL_SECURITY_BITS


def packing_slot_bits(hyper: "Hyperparameters") -> int:
    """Slot width for packed masked values: the mask width of the largest possible batch
    (a folded tail makes a batch up to ``batch_size + min_batch_size`` rows) with the
    session's number of parties, plus one bit, because ``g + m`` may exceed
    ``2^mask_bits`` by at most ``|g|``."""
    return mask_bits(hyper.batch_size + hyper.min_batch_size, hyper.parties) + 1


def masked_values(weights: int, *, bank: bool, hyper: "Hyperparameters") -> int:
    """Masked values a party sends the coordinator per round: one per weight, plus the
    aggregate loss column for the bank when the plan tracks the loss."""
    return weights + (1 if bank and hyper.track_loss else 0)


def packed_count(values: int, key_bits: int, hyper: "Hyperparameters") -> int:
    """Ciphertexts a party sends the coordinator for ``values`` masked values."""
    per = max(1, (key_bits - 2) // packing_slot_bits(hyper))
    return -(-values // per)


def quantize_features(X: np.ndarray, *, party: str, columns: list[str]) -> np.ndarray:
    """Standardised features → int64 at 2^-FEATURE_FRAC_BITS (refusing outliers beyond ±2^15 sd)."""
    return quantize(X, FEATURE_FRAC_BITS, FEATURE_BOUND_BITS, party=party, what="standardised feature", columns=columns)


def encode_partial(u: np.ndarray, *, party: str) -> np.ndarray:
    """A partial score ``u_P`` as int64 at 2^-24, bounded by ±2^10."""
    return quantize(u, SCORE_FRAC_BITS, PARTIAL_SCORE_BOUND_BITS + SCORE_FRAC_BITS, party=party, what="partial score")


def encode_loss_partial(u: np.ndarray, *, party: str) -> np.ndarray:
    """``u_P`` at 2^-12, the exponent of the loss column."""
    return quantize(u, LOSS_FRAC_BITS, PARTIAL_SCORE_BOUND_BITS + LOSS_FRAC_BITS, party=party, what="partial score")


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def needs_squares(expansion: str) -> bool:
    """Whether fintechs also send ``[[u_k^2]]`` (the second-order expansion)."""
    return expansion == "bank"


def needs_loss_shares(expansion: str) -> bool:
    """Whether the aggregate loss needs each fintech's ``Σ u_k e`` (first-order expansions)."""
    return expansion != "bank"


def encode_square(u: np.ndarray, *, party: str) -> np.ndarray:
    """``u^2`` at 2^-24 for the second-order term."""
    return quantize(np.square(u), SCORE_FRAC_BITS, SQUARE_BOUND_BITS, party=party, what="squared partial score")


@dataclass(frozen=True)
class ResidualPlan:
    """The bank's plaintext side of one batch's residuals ``e = s*U + t*V + c``.

    ``U = Σ_k u_k`` and ``V = Σ_k u_k^2`` arrive encrypted; everything here is the bank's.

    Attributes
    ----------
    s_q:
        ``σ'(a)`` (or 1/4) at 2^-12: per-row exponents of ``[[U_i]]``.
    t_q:
        ``σ''(a)/2`` at 2^-12: per-row (signed) exponents of ``[[V_i]]``; ``None`` for
        first-order expansions.
    c_q:
        Plaintext part at 2^-36, including ``s_i * (u_B,i - a_i)``.
    cprime_q:
        ``σ(a) - y`` at 2^-12: exponents of the loss column over ``[[U]]``.
    b_q:
        ``u_B - a`` at 2^-12 (loss column over ``[[e]]``), or ``None`` when it is zero.
    plain_loss:
        The part of the batch loss the bank knows in plaintext.
    """

    s_q: np.ndarray
    t_q: np.ndarray | None
    c_q: np.ndarray
    cprime_q: np.ndarray
    b_q: np.ndarray | None
    plain_loss: float


def plan_residuals(u_b: np.ndarray, y: np.ndarray, expansion: str) -> ResidualPlan:
    """Anchor, expansion coefficients and plaintext residual part for a batch (bank only)."""
    u_b = np.asarray(u_b, dtype=np.float64)
    y = y.astype(np.float64)
    one = float(1 << CURVATURE_FRAC_BITS)
    t_q = b_q = None
    if expansion in ("bank", "bank-linear"):
        anchor = u_b
        sig = _sigmoid(anchor)
        slope = sig * (1.0 - sig)
        s_q = np.rint(slope * one).astype(np.int64)
        if expansion == "bank":
            t_q = np.rint(0.5 * slope * (1.0 - 2.0 * sig) * one).astype(np.int64)
        b_int = np.zeros(len(u_b), dtype=np.int64)
    else:  # Hardy et al.: expand around zero
        anchor = np.zeros(len(u_b))
        sig = np.full(len(u_b), 0.5)
        s_q = np.full(len(u_b), 1 << (CURVATURE_FRAC_BITS - 2), dtype=np.int64)
        b_int = encode_partial(u_b, party="bank")
        b_q = encode_loss_partial(u_b, party="bank")
    cprime = sig - y
    c_q = quantize(cprime, RESIDUAL_FRAC_BITS, RESIDUAL_BOUND_BITS, party="bank", what="residual") + s_q * b_int
    # ℓ(a) = log(1 + e^a) - y a, the logistic loss at the anchor.
    plain = np.logaddexp(0.0, anchor) - y * anchor
    if expansion != "bank":
        plain = plain + 0.5 * cprime * (u_b - anchor)
    cprime_q = quantize(cprime, LOSS_FRAC_BITS, LOSS_FRAC_BITS + 2, party="bank", what="residual")
    return ResidualPlan(s_q=s_q, t_q=t_q, c_q=c_q, cprime_q=cprime_q, b_q=b_q, plain_loss=float(plain.sum()))


def exact_residuals(plan: ResidualPlan, partner_sum_q: np.ndarray, square_sum_q: np.ndarray | None = None) -> np.ndarray:
    """``e_q = s_q U_q + t_q V_q + c_q`` in exact int64 (the plaintext twin of the encrypted step)."""
    e = plan.s_q * partner_sum_q.astype(np.int64) + plan.c_q
    if plan.t_q is not None:
        e = e + plan.t_q * square_sum_q.astype(np.int64)
    return e


# Loss columns over [[U]] or [[V]] land at 2^-(12+24); the fintech shares Σ u_k e at
# 2^-(12+36). First-order losses lift the former to the latter with a scalar
# multiplication by 2^12.
LOSS_LIFT_BITS = RESIDUAL_FRAC_BITS - SCORE_FRAC_BITS


def batch_loss(encrypted_total: int, plan: ResidualPlan, rows: int) -> float:
    """Mean expanded logistic loss of a batch from the decrypted aggregate.

    Second order (``bank``): ``Σ L ≈ Σ ℓ(a) + Σ (σ(a) - y) U + ½ Σ σ'(a) V`` — the
    aggregate is ``Q = 2 Σ c' U + Σ s V`` at 2^-36 (it uses ``V = Σ u_k^2``; the cubic
    term of the expansion is left out of the reported loss).

    First order: ``Σ L = Σ ℓ(a) + ½ Σ c'(u_B - a) + ½ (Σ c' U + Σ d e)`` with
    ``d = z - a``; the bracket — fintech shares ``Σ u_k e``, the bank's ``Σ (u_B - a) e``
    and the lifted ``Σ c' U`` — arrives at 2^-48.
    """
    if plan.t_q is not None:
        return float((plan.plain_loss + 0.5 * encrypted_total / float(1 << (LOSS_FRAC_BITS + SCORE_FRAC_BITS))) / rows)
    scale = float(1 << (LOSS_FRAC_BITS + RESIDUAL_FRAC_BITS))
    return float((plan.plain_loss + 0.5 * encrypted_total / scale) / rows)


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


def draw_masks(count: int, bits: int) -> list[int]:
    """Fresh masks, uniform in ``[2^(bits-80), 2^bits)``.

    The lower limit exceeds any gradient magnitude, so ``g + m`` is never negative and
    packed slots never borrow; the range still hides ``g`` to within 2^-80.
    """
    import secrets

    low = 1 << (bits - STATISTICAL_SECURITY_BITS)
    return [low + secrets.randbelow((1 << bits) - low) for _ in range(count)]
