"""Per-row gradients and hessians of the logistic loss as exact integers, and their packing.

Boosting on the logistic loss needs, per row, ``g = p - y`` and ``h = p (1 - p)``. Every
split decision is taken from sums of these over the rows of a bin, and in SecureBoost
those sums are computed under Paillier encryption and decrypted by the label holder. So
that a decrypted histogram gives *bit-identical* trees to a plaintext run, ``g`` and ``h``
are quantised once, here, to integers at a fixed-point scale; from then on only integer
sums are used, and integer sums do not depend on the order of addition.

Scale and bounds (the numbers every other module relies on)
-----------------------------------------------------------
* ``g_q = round(p · 2^24) - y · 2^24``, so ``|g_q| ≤ 2^24`` (because ``|p - y| ≤ 1``).
* ``h_q = round(p (1 - p) · 2^24)``, so ``0 ≤ h_q ≤ 2^22`` (because ``p (1 - p) ≤ 1/4``).
* At most ``2^24`` (16,777,216) rows per training set, so over any set of rows
  ``|G| ≤ 2^48`` and ``0 ≤ H ≤ 2^46``. Both stay below ``2^53``: a float64 accumulator
  (``numpy.bincount`` with weights) sums them *exactly*, and far below the int64 limit
  ``2^63``. For a million rows the sums stay below ``2^44``.

Packing (for one ciphertext per row)
------------------------------------
``m = g_q · 2^47 + h_q``. Summing packed values over any rows gives
``S = G · 2^47 + H`` with ``0 ≤ H < 2^47``, so ``H = S mod 2^47`` and ``G = S >> 47``
(floor division, exact for negative ``G`` too). ``|S| < 2^96``: under Paillier the signed
residue decodes it for any modulus of more than 97 bits. :func:`pack` and
:func:`unpack_sums` are the only encoder and decoder; they refuse values outside the
bounds (:class:`~riskfed.errors.EncodingOverflowError`) rather than return a wrapped sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from riskfed.errors import EncodingOverflowError, SchemaError, format_rows

# 2^-24 ≈ 6e-8: a hessian p(1-p) of a 1-in-1000 default risk is still held to 0.006 %.
GRADIENT_FRAC_BITS = 24
GRADIENT_SCALE = 1 << GRADIENT_FRAC_BITS
# Rows per training set: 2^24 keeps every sum below 2^53 (exact in float64 accumulators).
MAX_ROWS_BITS = 24
MAX_ROWS = 1 << MAX_ROWS_BITS
ROW_G_BOUND = GRADIENT_SCALE  # |g_q| ≤ 2^24
ROW_H_BOUND = GRADIENT_SCALE >> 2  # 0 ≤ h_q ≤ 2^22
SUM_G_BITS = GRADIENT_FRAC_BITS + MAX_ROWS_BITS  # |G| ≤ 2^48
SUM_H_BITS = GRADIENT_FRAC_BITS - 2 + MAX_ROWS_BITS  # 0 ≤ H ≤ 2^46
# The hessian field of a packed value holds any sum H ≤ 2^46 < 2^47.
PACK_SHIFT = SUM_H_BITS + 1
# |S| = |G · 2^47 + H| < 2^48 · 2^47 + 2^47 ≤ 2^96: a signed value of 97 bits.
PACKED_BITS = SUM_G_BITS + PACK_SHIFT + 1


@dataclass(frozen=True)
class Gradients:
    """Quantised per-row gradients and hessians (int64, at scale ``2^GRADIENT_FRAC_BITS``).

    Attributes
    ----------
    g, h:
        One integer per training row.
    """

    g: np.ndarray
    h: np.ndarray

    def total(self, rows: np.ndarray | None = None) -> tuple[int, int]:
        """Exact integer sums ``(G, H)`` over ``rows`` (all rows when ``None``)."""
        g = self.g if rows is None else self.g[rows]
        h = self.h if rows is None else self.h[rows]
        return int(g.sum()), int(h.sum())


def sigmoid(raw: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large ``|raw|``."""
    raw = np.asarray(raw, dtype=np.float64)
    out = np.empty_like(raw)
    pos = raw >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-raw[pos]))
    e = np.exp(raw[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def check_row_count(n_rows: int, *, party: str | None = None) -> None:
    """Refuse a training set larger than the bound that keeps every sum exact.

    Raises
    ------
    EncodingOverflowError
        ``n_rows`` exceeds ``MAX_ROWS`` (2^24).
    """
    if n_rows > MAX_ROWS:
        raise EncodingOverflowError(
            f"{party or 'The label holder'}: {n_rows} training rows exceed the {MAX_ROWS} rows for which "
            "gradient and hessian sums stay exact; train on a sample.",
            party=party,
        )


def quantise_gradients(raw: np.ndarray, y: np.ndarray) -> Gradients:
    """Logistic-loss gradients and hessians at raw scores ``raw``, as exact integers.

    Parameters
    ----------
    raw:
        Current raw scores (log-odds), one per training row.
    y:
        Labels in {0, 1}.

    Returns
    -------
    Gradients
        ``g_q = round(p 2^24) - y 2^24`` and ``h_q = round(p (1 - p) 2^24)``.
    """
    check_row_count(len(raw))
    p = sigmoid(raw)
    p_q = np.rint(p * GRADIENT_SCALE).astype(np.int64)
    g = p_q - np.asarray(y, dtype=np.int64) * GRADIENT_SCALE
    h = np.rint(p * (1.0 - p) * GRADIENT_SCALE).astype(np.int64)
    return Gradients(g=g, h=h)


def dequantise(value: np.ndarray | int) -> np.ndarray | float:
    """An integer sum back in loss units (exact: a power-of-two scaling)."""
    return np.asarray(value, dtype=np.float64) * (1.0 / GRADIENT_SCALE)


def pack(gradients: Gradients) -> list[int]:
    """One integer per row holding both ``g_q`` and ``h_q``: ``g_q · 2^47 + h_q``.

    Raises
    ------
    EncodingOverflowError
        A row's ``g_q`` or ``h_q`` lies outside its bound (not produced by
        :func:`quantise_gradients`).
    """
    g, h = gradients.g, gradients.h
    bad = (np.abs(g) > ROW_G_BOUND) | (h < 0) | (h > ROW_H_BOUND)
    if bad.any():
        rows = np.flatnonzero(bad).tolist()
        raise EncodingOverflowError(
            f"Gradient or hessian at row position(s) {format_rows(rows)} outside the packing bounds "
            f"(|g| ≤ 2^{GRADIENT_FRAC_BITS}, 0 ≤ h ≤ 2^{GRADIENT_FRAC_BITS - 2}).",
            rows=rows,
        )
    return [(int(gi) << PACK_SHIFT) + int(hi) for gi, hi in zip(g.tolist(), h.tolist())]


def unpack_sums(sums: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Split summed packed values (signed integers) into ``G`` and ``H`` (int64 arrays).

    Raises
    ------
    EncodingOverflowError
        A sum decodes to a ``G`` or ``H`` outside the bounds of ``MAX_ROWS`` rows (a
        wrapped or forged sum).
    """
    mask = (1 << PACK_SHIFT) - 1
    big_g = [int(s) >> PACK_SHIFT for s in sums]
    big_h = [int(s) & mask for s in sums]
    bad = [i for i, (gs, hs) in enumerate(zip(big_g, big_h)) if abs(gs) > 1 << SUM_G_BITS or hs > 1 << SUM_H_BITS]
    if bad:
        raise EncodingOverflowError(
            f"Packed gradient sum(s) at bin position(s) {format_rows(bad)} decode outside the bounds of "
            f"{MAX_ROWS} rows; the sums wrapped or were not made from packed gradients.",
            rows=bad,
        )
    return np.array(big_g, dtype=np.int64), np.array(big_h, dtype=np.int64)


def check_labels(y: np.ndarray, *, party: str = "label holder", column: str = "y") -> np.ndarray:
    """Labels as an int8 array of 0/1, both classes present.

    Raises
    ------
    SchemaError
        A label other than 0 or 1, or a single class.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise SchemaError(
            f"{party}: labels must be a non-empty one-dimensional array; got shape {y.shape}.",
            party=party,
            column=column,
        )
    with np.errstate(invalid="ignore"):
        ok = np.isin(y, (0, 1))
    if not ok.all():
        rows = np.flatnonzero(~ok).tolist()
        raise SchemaError(
            f"{party}: label {column!r} must be 0 or 1; row position(s) {format_rows(rows)} are not.",
            party=party,
            column=column,
            rows=rows,
        )
    y = y.astype(np.int8)
    if y.min() == y.max():
        raise SchemaError(
            f"{party}: label {column!r} holds a single class ({int(y[0])}); boosting needs defaults and non-defaults.",
            party=party,
            column=column,
        )
    return y
