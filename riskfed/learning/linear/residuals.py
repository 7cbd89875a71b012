"""The bank's side of a batch's residuals ``e = s·U + t·V + c`` and the batch loss.

The logistic loss's gradient needs ``σ(z_i) - y_i`` per row, which no party can compute
alone; riskfed expands ``σ`` around an anchor the bank knows, so that the residual is
linear in what the fintechs supply encrypted (``[[U]]``, ``[[V]]``). The three
expansions (``bank``, ``bank-linear``, ``zero``) and why the default is second order
around the bank's own partial score are in docs/design.md ("The residual expansion").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskfed.crypto.encoding import (
    CURVATURE_FRAC_BITS,
    LOSS_FRAC_BITS,
    RESIDUAL_BOUND_BITS,
    RESIDUAL_FRAC_BITS,
    SCORE_FRAC_BITS,
    quantize,
)
from riskfed.learning.linear.fixed_point import encode_loss_partial, encode_partial


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def needs_squares(expansion: str) -> bool:
    """Whether fintechs also send ``[[u_k^2]]`` (the second-order expansion)."""
    return expansion == "bank"


def needs_loss_shares(expansion: str) -> bool:
    """Whether the aggregate loss needs each fintech's ``Σ u_k e`` (first-order expansions)."""
    return expansion != "bank"


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
