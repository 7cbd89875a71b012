"""Every quantity that crosses a party boundary as an exact fixed-point integer.

Features, partial scores and their squares are quantised here (bounds checked: a value
out of range is an :class:`~riskfed.errors.EncodingOverflowError`, never a wrapped sum);
the mask width and the slot width of packed masked values follow from the bounds, so
that ``g + m`` hides ``g`` to within 2^-80 and never overflows its slot.
:func:`exact_column_sums` is the plaintext twin of the encrypted multi-exponentiation.
"""

from __future__ import annotations

import secrets

import numpy as np

from riskfed.crypto.encoding import (
    FEATURE_BOUND_BITS,
    FEATURE_FRAC_BITS,
    LOSS_FRAC_BITS,
    PARTIAL_SCORE_BOUND_BITS,
    RESIDUAL_BOUND_BITS,
    SCORE_FRAC_BITS,
    SQUARE_BOUND_BITS,
    STATISTICAL_SECURITY_BITS,
    quantize,
)
from riskfed.errors import ConfigurationError
from riskfed.learning.linear.hyperparameters import MAX_FINTECHS, Hyperparameters


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


def encode_square(u: np.ndarray, *, party: str) -> np.ndarray:
    """``u^2`` at 2^-24 for the second-order term."""
    return quantize(np.square(u), SCORE_FRAC_BITS, SQUARE_BOUND_BITS, party=party, what="squared partial score")


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


def draw_masks(count: int, bits: int) -> list[int]:
    """Fresh masks, uniform in ``[2^(bits-80), 2^bits)``.

    The lower limit exceeds any gradient magnitude, so ``g + m`` is never negative and
    packed slots never borrow; the range still hides ``g`` to within 2^-80.
    """
    low = 1 << (bits - STATISTICAL_SECURITY_BITS)
    return [low + secrets.randbelow((1 << bits) - low) for _ in range(count)]
