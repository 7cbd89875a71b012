"""Fixed-point gradients: bounds, exact sums and the packed encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskfed.errors import EncodingOverflowError, SchemaError
from riskfed.learning.trees import gradients as gr
from riskfed.learning.trees.histograms import bin_sums


def test_bounds_are_consistent():
    # The documented bound: a float64 accumulator is exact below 2^53 and int64 below 2^63.
    assert gr.SUM_G_BITS == 48 and gr.SUM_H_BITS == 46
    assert gr.SUM_G_BITS < 53 and gr.PACKED_BITS == 96
    assert gr.MAX_ROWS * gr.ROW_G_BOUND == 1 << gr.SUM_G_BITS
    assert gr.MAX_ROWS * gr.ROW_H_BOUND < 1 << gr.PACK_SHIFT


def test_quantised_values_stay_within_row_bounds_at_extreme_scores():
    raw = np.array([-800.0, -40.0, -1e-9, 0.0, 1e-9, 40.0, 800.0] * 2)
    y = np.array([0] * 7 + [1] * 7)
    q = gr.quantise_gradients(raw, y)
    assert q.g.dtype == np.int64 and q.h.dtype == np.int64
    assert np.all(np.abs(q.g) <= gr.ROW_G_BOUND)
    assert np.all((q.h >= 0) & (q.h <= gr.ROW_H_BOUND))
    # p = 1/2 at raw 0: g = ±2^23, h = 2^22 exactly.
    assert q.g[3] == 1 << 23 and q.g[10] == -(1 << 23) and q.h[3] == 1 << 22
    assert q.g[0] == 0 and q.g[7] == -gr.ROW_G_BOUND  # a confident miss has the largest |g|


def test_quantisation_error_is_below_half_a_step():
    rng = np.random.default_rng(1)
    raw = rng.normal(scale=3, size=1000)
    y = rng.integers(0, 2, size=1000)
    q = gr.quantise_gradients(raw, y)
    p = 1 / (1 + np.exp(-raw))
    assert np.max(np.abs(gr.dequantise(q.g) - (p - y))) <= 0.5 / gr.GRADIENT_SCALE + 1e-15
    assert np.max(np.abs(gr.dequantise(q.h) - p * (1 - p))) <= 0.5 / gr.GRADIENT_SCALE + 1e-15


def test_million_rows_at_the_bound_sum_exactly_without_overflow():
    # Worst case for one bin: 10^6 rows of the largest |g| and h. Sums stay below 2^44.
    n = 1_000_000
    g = np.full(n, -gr.ROW_G_BOUND, dtype=np.int64)
    h = np.full(n, gr.ROW_H_BOUND, dtype=np.int64)
    flat = np.zeros((n, 1), dtype=np.intp)
    hist = bin_sums(flat, np.arange(n), g.astype(float), h.astype(float), 1)
    assert int(hist.g[0]) == -n * (1 << 24) and int(hist.h[0]) == n * (1 << 22)
    assert abs(int(hist.g[0])) < 1 << 44
    # Alternating signs must not lose the low bits either.
    g[1::2] = gr.ROW_G_BOUND - 1
    hist = bin_sums(flat, np.arange(n), g.astype(float), h.astype(float), 1)
    assert int(hist.g[0]) == int(g.sum()) == -(n // 2)


def test_row_count_beyond_the_bound_is_refused():
    gr.check_row_count(gr.MAX_ROWS)
    with pytest.raises(EncodingOverflowError, match="exceed the 16777216 rows"):
        gr.check_row_count(gr.MAX_ROWS + 1, party="bank")


@given(
    st.lists(
        st.tuples(st.integers(-gr.ROW_G_BOUND, gr.ROW_G_BOUND), st.integers(0, gr.ROW_H_BOUND)), min_size=1, max_size=60
    )
)
def test_packed_sums_unpack_to_the_separate_sums(rows):
    g = np.array([r[0] for r in rows], dtype=np.int64)
    h = np.array([r[1] for r in rows], dtype=np.int64)
    packed = gr.pack(gr.Gradients(g, h))
    # Any subset sum (what a partner returns per bin) decodes to the exact pair.
    sums = [sum(packed), sum(packed[::2]), packed[0]]
    big_g, big_h = gr.unpack_sums(sums)
    assert big_g.tolist() == [int(g.sum()), int(g[::2].sum()), int(g[0])]
    assert big_h.tolist() == [int(h.sum()), int(h[::2].sum()), int(h[0])]
    assert all(abs(s) < 1 << gr.PACKED_BITS for s in sums)


def test_packed_worst_case_sum_fits_the_declared_width():
    n = gr.MAX_ROWS
    worst = n * ((-gr.ROW_G_BOUND << gr.PACK_SHIFT) + gr.ROW_H_BOUND)  # the sum of n packed rows
    assert abs(worst) < 1 << gr.PACKED_BITS
    big_g, big_h = gr.unpack_sums([worst])
    assert int(big_g[0]) == -n * gr.ROW_G_BOUND and int(big_h[0]) == n * gr.ROW_H_BOUND


def test_pack_refuses_out_of_bound_rows():
    with pytest.raises(EncodingOverflowError, match="row position"):
        gr.pack(gr.Gradients(np.array([0, gr.ROW_G_BOUND + 1]), np.array([0, 0])))
    with pytest.raises(EncodingOverflowError, match="packing bounds"):
        gr.pack(gr.Gradients(np.array([0]), np.array([-1])))


def test_unpack_refuses_a_sum_beyond_any_real_node():
    forged = (1 << (gr.SUM_G_BITS + 1)) << gr.PACK_SHIFT
    with pytest.raises(EncodingOverflowError, match="decode outside the bounds"):
        gr.unpack_sums([0, forged])


def test_labels_are_checked():
    assert gr.check_labels([0, 1, 1]).tolist() == [0, 1, 1]
    with pytest.raises(SchemaError, match=r"must be 0 or 1; row position\(s\) 1"):
        gr.check_labels([0, 2, 1])
    with pytest.raises(SchemaError, match="single class"):
        gr.check_labels([1, 1, 1])
    with pytest.raises(SchemaError, match="non-empty one-dimensional"):
        gr.check_labels([])
