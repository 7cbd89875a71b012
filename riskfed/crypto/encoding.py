"""Fixed-point encoding: real numbers cross party boundaries as scaled integers.

A value ``v`` travels as ``round(v * 2**frac_bits)``; a negative integer ``-a`` is the
residue ``n - a`` modulo the Paillier modulus. Every protocol quantity has a declared
bound, and encoders refuse values outside it (:class:`EncodingOverflowError`), because a
homomorphic sum that wraps around ``n`` decrypts to a wrong but plausible number.

The scales are protocol-wide constants: every party uses the same ones, fixed by the
protocol version (:data:`riskfed.protocol.messages.PROTOCOL_VERSION`).
"""

from __future__ import annotations

import numpy as np

from riskfed.errors import EncodingOverflowError, format_rows

# Features are standardised by each party, then quantised to 2^-6 of a standard
# deviation. Finer steps cost speed and buy nothing: every bit of feature precision is
# one more bit plane in the encrypted gradient (≈ 15 % of a wide epoch per two bits),
# and 2^-6, 2^-5 and 2^-10 give the same holdout AUC to within 0.0004 on the UCI data and
# the pilots (benchmarks/bench_accuracy.py; scorecards bin far more coarsely).
FEATURE_FRAC_BITS = 6
# Partial scores: 2^-24 ≈ 6e-8 in log-odds, far below optimisation noise.
SCORE_FRAC_BITS = 24
# Expansion coefficients (σ'(a) ∈ (0, 1/4], σ''(a)/2 ∈ [-0.05, 0.05]) are exponents of
# per-row scalar multiplications, so they stay short: 2^-12 (at most 10 bits, about 13
# modular multiplications per row), fine enough for applicants with a 1 % default risk.
CURVATURE_FRAC_BITS = 12
# Residuals e = s*U + t*V + c carry score × coefficient scale.
RESIDUAL_FRAC_BITS = SCORE_FRAC_BITS + CURVATURE_FRAC_BITS
# Partial scores used only for the aggregate training loss.
LOSS_FRAC_BITS = 12
# No party's partial score may exceed 2^10 in log-odds (a probability of e^-1024);
# a larger one means diverged training and is refused rather than wrapped.
PARTIAL_SCORE_BOUND_BITS = 10
# At most 63 fintechs plus the bank contribute to a residual.
MAX_PARTIES_BITS = 6
# Squared partial scores V = u^2 (second-order expansion), at 2^-24 and below 2^20.
SQUARE_BOUND_BITS = 2 * PARTIAL_SCORE_BOUND_BITS + SCORE_FRAC_BITS
# |e| = |c + s U + t V| ≤ (1 + 2^10/4) + 2^6·2^10/4 + 0.05·2^6·2^20 < 2^23 in log-odds
# units (|s| ≤ 1/4, |t| ≤ 0.05, at most 2^6 fintechs), so below 2^59 as a scaled integer —
# and int64 arithmetic on it stays exact.
RESIDUAL_BOUND_BITS = 2 * PARTIAL_SCORE_BOUND_BITS + MAX_PARTIES_BITS - 3 + RESIDUAL_FRAC_BITS
# Largest standardised feature magnitude, in standard deviations: 2^15 leaves any real
# outlier representable while bounding the gradient.
FEATURE_BOUND_BITS = 15 + FEATURE_FRAC_BITS
# Masks hide a gradient with this many bits of statistical security.
STATISTICAL_SECURITY_BITS = 80


def quantize(
    values: np.ndarray,
    frac_bits: int,
    bound_bits: int,
    *,
    party: str | None = None,
    what: str = "value",
    columns: list[str] | None = None,
) -> np.ndarray:
    """Scale by ``2**frac_bits`` and round to int64, refusing out-of-bound values.

    Parameters
    ----------
    values:
        A 1-D or 2-D float array.
    frac_bits:
        Number of fractional bits.
    bound_bits:
        The encoded magnitude must stay strictly below ``2**bound_bits`` (≤ 62).
    party, what, columns:
        Context for the error message.

    Raises
    ------
    EncodingOverflowError
        A value is not finite or too large for the protocol bound.
    """
    if bound_bits > 62:
        raise ValueError("int64 fixed-point encodings are limited to 62 bits")
    arr = np.asarray(values, dtype=np.float64)
    scaled = np.rint(arr * float(1 << frac_bits))
    bad = ~np.isfinite(scaled) | (np.abs(scaled) >= float(1 << bound_bits))
    if bad.any():
        where = np.argwhere(bad)
        rows = [int(i[0]) for i in where]
        column = None
        if arr.ndim == 2 and columns is not None:
            column = columns[int(where[0][1])]
        limit = 2.0 ** (bound_bits - frac_bits)
        raise EncodingOverflowError(
            f"{party or 'A party'}: {what} at row position(s) {format_rows(rows, total=len(rows))}"
            + (f" in column {column!r}" if column else "")
            + f" is not finite or exceeds the protocol bound ±{limit:g}.",
            party=party,
            column=column,
            rows=rows,
        )
    return scaled.astype(np.int64)


def to_residue(value: int, n: int) -> int:
    """Map a signed integer to its residue modulo ``n`` (negative ``-a`` → ``n - a``)."""
    return value % n


def from_residue(residue: int, n: int) -> int:
    """Inverse of :func:`to_residue` for values with ``|v| < n/2``."""
    residue = int(residue) % n
    return residue - n if residue > n // 2 else residue


def decode(value: int, frac_bits: int) -> float:
    """Turn a scaled integer back into a float."""
    # int / int is correctly rounded in Python even for values beyond 2^53.
    return int(value) / (1 << frac_bits)


def bit_bound(max_abs: int) -> int:
    """Smallest ``b`` with ``max_abs < 2**b``."""
    return int(max_abs).bit_length()
