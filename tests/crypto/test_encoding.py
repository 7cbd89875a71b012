"""Fixed-point encoding, residues, protocol bounds and gradient masks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from riskfed.crypto.encoding import (
    FEATURE_BOUND_BITS,
    FEATURE_FRAC_BITS,
    PARTIAL_SCORE_BOUND_BITS,
    SCORE_FRAC_BITS,
    STATISTICAL_SECURITY_BITS,
    bit_bound,
    decode,
    from_residue,
    quantize,
    to_residue,
)
from riskfed.crypto.paillier import add_plain, decrypt, encrypt
from riskfed.errors import EncodingOverflowError
from riskfed.learning.linear.fixed_point import (
    draw_masks,
    encode_partial,
    gradient_bound_bits,
    mask_bits,
    quantize_features,
)

FRAC = st.integers(0, 30)


@given(
    frac=FRAC,
    x=arrays(np.float64, st.integers(0, 20), elements=st.floats(-1e6, 1e6, allow_nan=False)),
)
def test_quantize_then_decode_is_within_half_a_step(frac, x):
    q = quantize(x, frac, 62)
    assert q.dtype == np.int64
    back = np.array([decode(v, frac) for v in q.tolist()])
    assert np.all(np.abs(back - x) <= 0.5 / (1 << frac) + 1e-9 * np.abs(x))


@given(v=st.integers(-(2**62), 2**62))
def test_integers_are_exact(v):
    assert decode(v << 3, 3) == float(v)


@given(v=st.integers(-(2**500), 2**500))
def test_residue_round_trip(public_key, v):
    n = public_key.n
    r = to_residue(v, n)
    assert 0 <= r < n
    assert from_residue(r, n) == v


def test_negative_values_are_n_minus_abs(public_key):
    n = public_key.n
    assert to_residue(-1, n) == n - 1
    assert from_residue(n - 1, n) == -1
    assert from_residue(n // 2, n) == n // 2  # the largest positive value


@pytest.mark.parametrize("bits", [3, 10, 40])
def test_quantize_bounds_are_strict(bits):
    frac = 2
    limit = 2.0 ** (bits - frac)  # encoded magnitude must stay below 2^bits
    just_inside = limit - 2.0**-frac
    assert quantize([just_inside, -just_inside], frac, bits).tolist() == [(1 << bits) - 1, -((1 << bits) - 1)]
    with pytest.raises(EncodingOverflowError, match=re.escape(f"exceeds the protocol bound ±{limit:g}")):
        quantize([limit], frac, bits)
    with pytest.raises(EncodingOverflowError, match="not finite or exceeds"):
        quantize([-limit], frac, bits)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_refuses_non_finite(bad):
    with pytest.raises(EncodingOverflowError, match=r"fintech_1: partial score at row position\(s\) 1 is not finite"):
        encode_partial(np.array([0.5, bad]), party="fintech_1")


def test_overflow_error_names_party_column_and_rows():
    X = np.zeros((8, 3))
    X[[2, 5], 1] = 2.0 ** (FEATURE_BOUND_BITS - FEATURE_FRAC_BITS) * 1.5
    with pytest.raises(EncodingOverflowError, match=r"bank: standardised feature at row position\(s\) 2, 5 in column 'income'") as info:
        quantize_features(X, party="bank", columns=["age", "income", "tenure"])
    err = info.value
    assert (err.party, err.column, err.rows) == ("bank", "income", [2, 5])


def test_partial_score_bound():
    limit = 2.0**PARTIAL_SCORE_BOUND_BITS
    assert encode_partial(np.array([limit - 1.0]), party="fintech_1")[0] == int((limit - 1) * 2**SCORE_FRAC_BITS)
    with pytest.raises(EncodingOverflowError, match="fintech_1: partial score"):
        encode_partial(np.array([limit]), party="fintech_1")


def test_bound_bits_above_62_are_refused():
    with pytest.raises(ValueError, match="limited to 62 bits"):
        quantize([1.0], 0, 63)


def test_bit_bound():
    assert [bit_bound(v) for v in (0, 1, 2, 255, 256)] == [0, 1, 2, 8, 9]


# -- masks -----------------------------------------------------------------------------
@pytest.mark.parametrize("rows", [256, 1024, 30_000])
def test_masks_are_in_range_and_fresh(rows):
    bits = mask_bits(rows)
    assert bits == gradient_bound_bits(rows) + STATISTICAL_SECURITY_BITS
    masks = draw_masks(200, bits)
    low = 1 << (bits - STATISTICAL_SECURITY_BITS)
    assert all(low <= m < (1 << bits) for m in masks)
    assert len(set(masks)) == len(masks)
    # Not clustered at the bottom of the range: they spread over the whole top bits.
    assert max(masks).bit_length() == bits


@given(
    rows=st.sampled_from([256, 1000, 4096]),
    data=st.data(),
)
def test_unmask_of_mask_is_the_gradient(keypair, rows, data):
    """The protocol's masking round trip: [[g]] ⊕ m → decrypt → (g + m) - m = g."""
    pk, sk = keypair
    bound = 1 << gradient_bound_bits(rows)
    g = data.draw(st.lists(st.integers(-bound + 1, bound - 1), min_size=1, max_size=5))
    bits = mask_bits(rows)
    masks = draw_masks(len(g), bits)
    masked = decrypt(sk, add_plain(pk, encrypt(pk, g), masks), signed=False)
    # What the coordinator sees: non-negative, at least 2^(bits-80), and within the mask
    # range widened by the gradient bound (g ≪ the smallest mask).
    assert all((1 << (bits - STATISTICAL_SECURITY_BITS)) - bound < v < (1 << bits) + bound for v in masked)
    assert all(v >= 0 for v in masked)
    assert [from_residue(v - m, pk.n) for v, m in zip(masked, masks)] == g
