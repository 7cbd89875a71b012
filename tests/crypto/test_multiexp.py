"""Bucket multi-exponentiation equals the naive product Π c_i^x_ij (and X^T e)."""

from __future__ import annotations

import contextlib

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from riskfed.crypto import native
from riskfed.crypto.multiexp import multiexp
from riskfed.crypto.paillier import decrypt, encrypt
from riskfed.errors import CryptoError


def naive(pk, cts, matrix):
    """Π_i c_i^{x_ij} mod n^2 column by column (negative exponents invert)."""
    n2 = pk.n_squared
    out = []
    for j in range(matrix.shape[1]):
        acc = gmpy2.mpz(1)
        for c, x in zip(cts, matrix[:, j].tolist()):
            acc = acc * gmpy2.powmod(c, x, n2) % n2
        out.append(acc)
    return out


shapes = st.tuples(st.integers(0, 7), st.integers(1, 4))
exponent = st.integers(-(2**20), 2**20)


@settings(max_examples=60)
@given(data=st.data(), shape=shapes)
def test_multiexp_equals_naive_product(keypair, data, shape):
    pk, sk = keypair
    rows, cols = shape
    matrix = data.draw(arrays(np.int64, shape, elements=exponent))
    # Zero columns and single-signed columns are the edge cases of the shift trick.
    if cols > 1 and data.draw(st.booleans()):
        matrix[:, 0] = 0
    e = data.draw(st.lists(st.integers(-(2**60), 2**60), min_size=rows, max_size=rows))
    cts = encrypt(pk, e)
    got = multiexp(pk, cts, matrix)
    assert got == naive(pk, cts, matrix)
    expected = [sum(int(x) * v for x, v in zip(matrix[:, j].tolist(), e)) for j in range(cols)]
    assert decrypt(sk, got) == expected


def test_negative_zero_and_extreme_columns(keypair):
    pk, sk = keypair
    e = [3, -5, 7, 11]
    cts = encrypt(pk, e)
    matrix = np.array(
        [
            [0, -1, 2**24, -(2**24), 1],
            [0, -1, 2**24, -(2**24), -1],
            [0, -1, 2**24, -(2**24), 0],
            [0, -1, 2**24, -(2**24), 5],
        ],
        dtype=np.int64,
    )
    got = multiexp(pk, cts, matrix)
    assert got == naive(pk, cts, matrix)
    s = sum(e)
    assert decrypt(sk, got) == [0, -s, s * 2**24, -s * 2**24, 3 + 5 + 0 + 55]


def test_parallel_columns_match_serial(keypair):
    pk, sk = keypair
    rng = np.random.default_rng(0)
    rows, cols = 1100, 4  # ≥ 4096 terms: the parallel path
    e = rng.integers(-(2**40), 2**40, size=rows).tolist()
    matrix = rng.integers(-(2**14), 2**14, size=(rows, cols)).astype(np.int64)
    cts = encrypt(pk, e)
    serial = multiexp(pk, cts, matrix, n_jobs=1)
    parallel = multiexp(pk, cts, matrix, n_jobs=2)
    assert serial == parallel
    assert decrypt(sk, serial) == [int(v) for v in (matrix.T.astype(object) @ np.array(e, dtype=object))]


def test_shape_mismatch_is_refused(keypair):
    pk, _ = keypair
    with pytest.raises(ValueError, match=r"exponents must have shape \(2, F\)"):
        multiexp(pk, encrypt(pk, [1, 2]), np.ones((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"exponents must have shape"):
        multiexp(pk, encrypt(pk, [1, 2]), np.ones(2, dtype=np.int64))


@contextlib.contextmanager
def c_kernels(use: bool):
    """Run with riskfed's C kernels on or off (skip when they are not built)."""
    if use and native.kernels is None:
        pytest.skip("the C kernels are not built")
    saved = native.ENABLED
    native.ENABLED = use
    try:
        yield
    finally:
        native.ENABLED = saved


@pytest.mark.parametrize("use_c", [False, True], ids=["gmpy2", "C"])
@settings(max_examples=25, deadline=None)
@given(data=st.data(), rows=st.integers(1, 30), cols=st.integers(1, 6), g=st.integers(4, 7))
def test_bit_planes_equal_naive_product(keypair, use_c, data, rows, cols, g):
    """The shared subset-product method used for many columns (any group size, ragged
    last group, negative and zero columns), in Python and in C."""
    from riskfed.crypto.multiexp import _by_planes

    pk, sk = keypair
    matrix = data.draw(arrays(np.int64, (rows, cols), elements=st.integers(-(2**12), 2**12)))
    cts = encrypt(pk, data.draw(st.lists(st.integers(-(2**60), 2**60), min_size=rows, max_size=rows)))
    with c_kernels(use_c):
        assert _by_planes(cts, matrix, g, pk.n_squared) == naive(pk, cts, matrix)


def test_c_planes_refuse_bad_input(keypair):
    from riskfed.crypto.multiexp import _native_planes

    if native.kernels is None:
        pytest.skip("the C kernels are not built")
    pk, _ = keypair
    cts = encrypt(pk, [1, 2, 3])
    # riskfed's callers get its typed errors; the kernel itself raises ValueError.
    with pytest.raises(CryptoError, match="kernel 'planes' refused its input: planes needs non-negative exponents"):
        _native_planes(cts, np.array([[1], [-1], [0]]), 4, pk.n_squared)
    with pytest.raises(CryptoError, match="1 <= g <= 16"):
        _native_planes(cts, np.array([[1], [1], [0]]), 17, pk.n_squared)
    with pytest.raises(ValueError, match="rows bases"):
        native.kernels.planes(b"\x07" * 8, b"\x01" * 16, np.zeros(3, "<i8").tobytes(), 3, 1, 4)
    with pytest.raises(ValueError, match="reduced"):
        native.kernels.planes(b"\x07" + b"\x01" * 7, b"\xff" * 8, np.zeros(1, "<i8").tobytes(), 1, 1, 4)
    # No rows: every column's product is empty (1), and so is the product of the bases.
    products, total = _native_planes([], np.zeros((0, 2), dtype=np.int64), 4, pk.n_squared)
    assert products == [1, 1] and total == 1


def test_wide_matrices_take_the_shared_path_and_agree(keypair, monkeypatch):
    from riskfed.crypto import multiexp as module

    pk, sk = keypair
    rng = np.random.default_rng(1)
    rows, cols = 200, 40
    matrix = np.rint(rng.normal(scale=900, size=(rows, cols))).astype(np.int64)
    e = rng.integers(-(2**30), 2**30, size=rows).tolist()
    cts = encrypt(pk, e)
    used = []
    real = module._planes_share
    monkeypatch.setattr(module, "_planes_share", lambda *a: used.append(a[2]) or real(*a))
    monkeypatch.setattr(native, "IFMA", False)  # with IFMA, window buckets win (below)
    got = multiexp(pk, cts, matrix, n_jobs=1)
    assert used, "a 200 x 40 Gaussian matrix should use the shared bit-plane method"
    assert decrypt(sk, got) == [int(v) for v in (matrix.T.astype(object) @ np.array(e, dtype=object))]


def test_wide_matrices_split_rows_across_workers(keypair):
    """With many columns the rows are split across workers (each returns its rows'
    share of every column); the product of the shares is the whole answer."""
    pk, sk = keypair
    rng = np.random.default_rng(2)
    rows, cols = 203, 40  # a ragged last group
    matrix = np.rint(rng.normal(scale=900, size=(rows, cols))).astype(np.int64)
    matrix[:, 0] = np.abs(matrix[:, 0])  # a column with no negative entry
    matrix[:101, 1] = 0  # a column that is zero in the first worker's rows
    e = rng.integers(-(2**30), 2**30, size=rows).tolist()
    cts = encrypt(pk, e)
    serial = multiexp(pk, cts, matrix, n_jobs=1)
    assert multiexp(pk, cts, matrix, n_jobs=2) == serial
    assert decrypt(sk, serial) == [int(v) for v in (matrix.T.astype(object) @ np.array(e, dtype=object))]


@settings(max_examples=25, deadline=None)
@given(data=st.data(), rows=st.integers(1, 40), fold=st.sampled_from([0, 1, 3, 6]))
def test_value_buckets_with_either_fold_equal_naive(keypair, data, rows, fold):
    """Value buckets folded in order (fold=0) or by window buckets over the distinct
    values, on exponents with many repeats."""
    from riskfed.crypto.multiexp import _by_values, _by_windows

    pk, sk = keypair
    exps = np.array(data.draw(st.lists(st.integers(1, 40), min_size=rows, max_size=rows)), dtype=np.int64)
    cts = encrypt(pk, data.draw(st.lists(st.integers(-(2**60), 2**60), min_size=rows, max_size=rows)))
    expected = naive(pk, cts, exps.reshape(-1, 1))[0]
    assert _by_values(cts, exps, pk.n_squared, fold_window=fold) == expected
    assert _by_windows(cts, exps, 3, pk.n_squared) == expected


needs_ifma = pytest.mark.skipif(not native.IFMA, reason="needs riskfed's C kernels on a CPU with AVX-512 IFMA")


@needs_ifma
@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    rows=st.integers(1, 40),
    cols=st.integers(1, 20),
    w=st.integers(1, 12),
    top=st.sampled_from([2**3, 2**12, 2**45]),
)
def test_ifma_window_buckets_equal_naive_product(keypair, data, rows, cols, w, top):
    """The C kernel's window buckets, eight (column, position) pairs per vector: ragged
    groups of eight, zero columns and rows, negative entries, long exponents (many digit
    positions), and the shift undone."""
    from riskfed.crypto.multiexp import _join_shares, _windows_share

    pk, sk = keypair
    matrix = data.draw(arrays(np.int64, (rows, cols), elements=st.integers(-top, top)))
    if data.draw(st.booleans()):
        matrix[:, 0] = 0
    cts = encrypt(pk, data.draw(st.lists(st.integers(-(2**60), 2**60), min_size=rows, max_size=rows)))
    low = np.minimum(matrix.min(axis=0), 0)
    bounds = [0, rows // 2, rows] if rows > 1 else [0, rows]
    assert _join_shares(_windows_share, cts, matrix, w, pk.n_squared, low, bounds, 1) == naive(pk, cts, matrix)


@needs_ifma
def test_ifma_multiexp_agrees_with_gmpy2_and_splits_rows(keypair, monkeypatch):
    pk, sk = keypair
    rng = np.random.default_rng(5)
    rows, cols = 301, 13
    matrix = np.rint(rng.normal(scale=300, size=(rows, cols))).astype(np.int64)
    matrix[:, 2] = np.abs(matrix[:, 2])
    e = rng.integers(-(2**30), 2**30, size=rows).tolist()
    cts = encrypt(pk, e)
    used = []
    from riskfed.crypto import multiexp as module

    real = module._windows_share
    monkeypatch.setattr(module, "_windows_share", lambda *a: used.append(a[2]) or real(*a))
    fast = multiexp(pk, cts, matrix, n_jobs=1)
    assert used, "13 columns should take the IFMA window buckets"
    monkeypatch.setattr(native, "IFMA", False)
    assert multiexp(pk, cts, matrix, n_jobs=1) == fast
    monkeypatch.undo()
    assert multiexp(pk, cts, matrix, n_jobs=2) == fast  # rows split across workers
    assert decrypt(sk, fast) == [int(v) for v in (matrix.T.astype(object) @ np.array(e, dtype=object))]


@needs_ifma
def test_ifma_windows_refuse_bad_input(keypair):
    pk, _ = keypair
    n2 = pk.n_squared
    width = -(-n2.bit_length() // 64) * 8
    mod = int(n2).to_bytes((n2.bit_length() + 7) // 8, "little")
    one = (3).to_bytes(width, "little")
    with pytest.raises(ValueError, match="non-negative"):
        native.kernels.windows(mod, one, np.array([-1], "<i8").tobytes(), 1, 1, 3)
    with pytest.raises(ValueError, match="w <= 12"):
        native.kernels.windows(mod, one, np.array([1], "<i8").tobytes(), 1, 1, 13)
    with pytest.raises(ValueError, match="rows bases"):
        native.kernels.windows(mod, one, np.array([1], "<i8").tobytes(), 2, 1, 3)
    with pytest.raises(ValueError, match="reduced"):
        native.kernels.windows(mod, int(n2).to_bytes(width, "little"), np.array([1], "<i8").tobytes(), 1, 1, 3)
    # No rows: every column's product is empty (1), and so is the product of the bases.
    blob = native.kernels.windows(mod, b"", b"", 0, 2, 3)
    assert native.residues(blob, width) == [1, 1, 1]


@pytest.mark.parametrize("ifma", [False, True], ids=["without IFMA", "IFMA"])
def test_several_products_in_one_dispatch_equal_separate_calls(keypair, monkeypatch, ifma):
    """multiexp_many (the bank's gradient and loss column together): each pair's result
    is multiexp's, for wide and one-column pairs, negative entries, an empty pair, and
    rows split across two workers."""
    from riskfed.crypto.multiexp import multiexp_many

    if ifma and not native.IFMA:
        pytest.skip("needs riskfed's C kernels on a CPU with AVX-512 IFMA")
    monkeypatch.setattr(native, "IFMA", ifma)
    pk, sk = keypair
    rng = np.random.default_rng(9)
    a = encrypt(pk, rng.integers(-(2**20), 2**20, size=70).tolist())
    b = encrypt(pk, rng.integers(-(2**20), 2**20, size=140).tolist())
    xa = rng.integers(-600, 600, size=(70, 9))
    xb = rng.integers(-(2**13), 2**13, size=(140, 1))
    got = multiexp_many(pk, [(a, xa), (b, xb), ([], np.zeros((0, 2), dtype=np.int64))], n_jobs=2)
    assert got[0] == naive(pk, a, xa)
    assert got[1] == naive(pk, b, xb)
    assert got[2] == [1, 1]
