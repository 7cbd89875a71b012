"""The optional C kernel for the key holder's randomizers (riskfed/crypto/_native.c):
exact agreement with gmpy2, input checks, thread sharing and the gmpy2 fallback; on CPUs
with AVX-512 IFMA, exact agreement of the IFMA tables (riskfed/crypto/_ifma.h) with
GMP's."""

from __future__ import annotations

import os
import pickle
import threading

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.crypto import native, paillier, randomness
from riskfed.crypto.paillier import decrypt, encrypt_with

if os.environ.get("RISKFED_REQUIRE_NATIVE"):  # .ci/run: the extension must be built, not skipped
    from riskfed.crypto import _native as kernels
else:
    kernels = pytest.importorskip("riskfed.crypto._native")


def le(x, width: int) -> bytes:
    return int(x).to_bytes(width, "little")


def table_for(modulus, base, window: int, rows: int, **kw):
    width = (int(modulus).bit_length() + 7) // 8
    t = kernels.Table(le(modulus, width), le(base % modulus, width), window, rows, **kw)
    t.fill(0, rows)
    return t


needs_ifma = pytest.mark.skipif(not kernels.ifma_supported(), reason="this CPU has no AVX-512 IFMA")


def both_ways(monkeypatch, switch: str, make):
    """``make(on)`` with ``native.<switch>`` on and then off; the two must agree exactly.
    Returns what the switched-on path made."""
    made = {}
    for on in (True, False):
        monkeypatch.setattr(native, switch, on)
        made[on] = make(on)
    assert made[True] == made[False]
    return made[True]


def exponent(digits: np.ndarray, k: int, window: int) -> int:
    return sum(int(d) << (window * i) for i, d in enumerate(digits[:, k]))


def test_paillier_uses_the_c_kernel_when_it_is_built():
    assert native.kernels is kernels
    assert native.ENABLED == (os.environ.get("RISKFED_NATIVE", "1") != "0")


@settings(max_examples=25, deadline=None)
@given(window=st.integers(1, 9), rows=st.integers(1, 12), count=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_products_are_the_base_to_the_digits(keypair, window, rows, count, seed):
    pk, sk = keypair
    p2 = gmpy2.mpz(sk.phe.p) ** 2
    t = table_for(p2, pk.h_s, window, rows)
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 1 << window, size=(rows, count)).astype("<u2")
    if count:
        digits[:, 0] = 0  # exponent 0 gives 1
    blob = t.products(digits.tobytes(), count)
    width = t.limbs * 8
    assert len(blob) == count * width
    for k in range(count):
        got = int.from_bytes(blob[k * width : (k + 1) * width], "little")
        assert got == gmpy2.powmod(pk.h_s, exponent(digits, k, window), p2)


def fixed_digits(monkeypatch, pk, window: int, count: int, seed: int) -> np.ndarray:
    """Make riskfed draw these digits of ``r`` instead of fresh ones (to compare paths)."""
    rows = -(-paillier.randomness_bits(pk) // window)
    digits = np.random.default_rng(seed).integers(0, 1 << window, size=(rows, count)).astype(np.uint16)
    monkeypatch.setattr(randomness, "_random_digits", lambda count, windows, w: digits[:, :count])
    return digits


def test_native_and_gmpy2_randomizers_agree_on_the_same_digits(keypair, monkeypatch):
    pk, sk = keypair
    window = 6
    digits = fixed_digits(monkeypatch, pk, window, 50, seed=7)
    made = both_ways(monkeypatch, "ENABLED", lambda _: paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 50, window))
    assert made[3] == gmpy2.powmod(pk.h_s, exponent(digits, 3, window), pk.n_squared)


def test_threads_share_one_table_and_make_fresh_randomizers(keypair, monkeypatch):
    """Two threads at once (the coordinator's pool): one table build, distinct valid output."""
    pk, sk = keypair
    monkeypatch.setattr(native, "ENABLED", True)
    paillier._CRT_CACHE.clear()
    out: dict[int, list] = {}

    def work(i):
        out[i] = paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 300, 7, threads=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(paillier._CRT_CACHE) == 1
    both = out[0] + out[1]
    assert len({int(r) for r in both}) == 600
    values = list(range(-300, 300))
    assert decrypt(sk, encrypt_with(pk, values, both)) == values


def test_bad_inputs_are_refused(keypair):
    pk, sk = keypair
    p2 = gmpy2.mpz(sk.phe.p) ** 2
    width = (int(p2).bit_length() + 7) // 8
    with pytest.raises(ValueError, match="odd"):
        kernels.Table(le(p2 + 1, width), le(3, width), 4, 3)
    with pytest.raises(ValueError, match="reduced"):
        kernels.Table(le(p2, width), le(p2 + 5, width), 4, 3)
    with pytest.raises(ValueError, match="window"):
        kernels.Table(le(p2, width), le(3, width), 17, 3)
    t = kernels.Table(le(p2, width), le(3, width), 4, 3)
    with pytest.raises(ValueError, match="not filled"):
        t.products(np.zeros(3, dtype="<u2").tobytes(), 1)
    t.fill(0, 2)
    with pytest.raises(ValueError, match="not filled"):
        t.products(np.zeros(3, dtype="<u2").tobytes(), 1)
    t.fill(2, 3)
    with pytest.raises(ValueError, match="fill"):
        t.fill(2, 4)
    with pytest.raises(ValueError, match="rows \\* count"):
        t.products(np.zeros(4, dtype="<u2").tobytes(), 1)
    with pytest.raises(ValueError, match="out of range"):
        t.products(np.array([0, 16, 0], dtype="<u2").tobytes(), 1)
    assert int.from_bytes(t.products(np.zeros(3, dtype="<u2").tobytes(), 1), "little") == 1


def test_tables_hold_key_material_and_cannot_be_pickled(keypair):
    pk, sk = keypair
    t = table_for(gmpy2.mpz(sk.phe.p) ** 2, pk.h_s, 3, 2)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(t)


def test_party_randomizers_agree_between_c_and_gmpy2_tables(keypair, monkeypatch):
    """A party's own randomness (randomness="own"): the C table modulo n^2 gives exactly
    the gmpy2 table's products for the same digits, and encryptions decrypt."""
    pk, sk = keypair
    window = 5
    digits = fixed_digits(monkeypatch, pk, window, 40, seed=11)
    def make(use_c):
        table = paillier.fixed_base_table(pk.n, pk.h_s, window)
        assert isinstance(table.tables, tuple) != use_c
        return paillier._randomizers(table, 40)

    made = both_ways(monkeypatch, "ENABLED", make)
    assert made[7] == gmpy2.powmod(pk.h_s, exponent(digits, 7, window), pk.n_squared)
    monkeypatch.undo()
    values = list(range(-20, 20))
    assert decrypt(sk, paillier.encrypt(pk, values, window=window)) == values


@needs_ifma
@settings(max_examples=30, deadline=None)
@given(
    window=st.integers(1, 8),
    rows=st.integers(1, 20),
    count=st.integers(0, 30),
    square=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_ifma_tables_give_gmps_products(keypair, window, rows, count, square, seed):
    """Eight lanes at a time, partial last groups, rows filled in two calls (lanes past
    the stop), modulo p^2 and n^2: exactly GMP's products, which equal powmod."""
    pk, sk = keypair
    modulus = pk.n_squared if square else gmpy2.mpz(sk.phe.p) ** 2
    width = (int(modulus).bit_length() + 7) // 8
    tables = {}
    for ifma in (0, 1):
        t = kernels.Table(le(modulus, width), le(pk.h_s % modulus, width), window, rows, ifma=ifma)
        assert t.ifma == bool(ifma)
        t.fill(0, rows // 3)
        t.fill(rows // 3, rows)
        tables[ifma] = t
    digits = np.random.default_rng(seed).integers(0, 1 << window, size=(rows, count)).astype("<u2")
    if count > 1:
        digits[:, 1] = (1 << window) - 1  # the largest entry of every row
    got = tables[1].products(digits.tobytes(), count)
    assert got == tables[0].products(digits.tobytes(), count)
    size = tables[1].limbs * 8
    for k in range(count):
        assert int.from_bytes(got[k * size : (k + 1) * size], "little") == gmpy2.powmod(pk.h_s, exponent(digits, k, window), modulus)


@needs_ifma
def test_ifma_is_the_default_where_the_cpu_has_it(keypair, monkeypatch):
    pk, sk = keypair
    assert table_for(gmpy2.mpz(sk.phe.p) ** 2, pk.h_s, 3, 2).ifma
    assert native.mode() == ("ifma" if native.IFMA and native.ENABLED else "mpn" if native.ENABLED else "gmpy2")
    monkeypatch.setattr(native, "ENABLED", True)  # also under RISKFED_NATIVE=0
    digits = fixed_digits(monkeypatch, pk, 6, 20, seed=3)
    def make(ifma):
        table = paillier.fixed_base_table(pk.n, pk.h_s, 6)
        assert table.tables.ifma == ifma
        return paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 20, 6) + paillier._randomizers(table, 20)

    made = both_ways(monkeypatch, "IFMA", make)
    assert made[20] == gmpy2.powmod(pk.h_s, exponent(digits, 0, 6), pk.n_squared)


@needs_ifma
@settings(max_examples=20, deadline=None)
@given(
    rows=st.integers(1, 19),
    two=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_ifma_affine_gives_the_gmpy2_residuals(keypair, monkeypatch, rows, two, seed):
    """The bank's residuals Enc(c; ρ)·[[U]]^s·[[V]]^t: with the same randomizers the C
    kernel returns exactly the gmpy2 path's ciphertexts (negative, zero and long
    exponents, partial groups of eight, one or two terms)."""
    pk, sk = keypair
    rng = np.random.default_rng(seed)
    u = paillier.encrypt(pk, rng.integers(-1000, 1000, rows).tolist())
    v = paillier.encrypt(pk, rng.integers(0, 10**6, rows).tolist())
    s = rng.integers(-2**12, 2**12, rows)
    t = rng.integers(-300, 300, rows)
    s[0] = 0
    if rows > 2:
        s[1], t[1] = 2**40 + 3, 0
    c = rng.integers(-2**30, 2**30, rows)
    randomizers = paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, rows, 5)
    terms = [(u, s), (v, t)] if two else [(u, s)]
    made = both_ways(monkeypatch, "IFMA", lambda _: paillier.affine(pk, terms, c, randomizers=randomizers))
    plain_u, plain_v = decrypt(sk, u), decrypt(sk, v)
    want = [int(c[i]) + int(s[i]) * plain_u[i] + (int(t[i]) * plain_v[i] if two else 0) for i in range(rows)]
    assert decrypt(sk, made) == want


@needs_ifma
def test_ifma_affine_refuses_bad_input(keypair):
    pk, _ = keypair
    n2 = pk.n_squared
    width = -(-n2.bit_length() // 64) * 8
    mod = le(n2, (n2.bit_length() + 7) // 8)
    one = le(5, width)
    ex = np.array([1], dtype="<i8").tobytes()
    assert int.from_bytes(kernels.affine(mod, one, one, b"", ex, b"", 1), "little") == 25
    with pytest.raises(ValueError, match="odd"):
        kernels.affine(le(n2 + 1, len(mod)), one, one, b"", ex, b"", 1)
    with pytest.raises(ValueError, match="width"):
        kernels.affine(mod, one, one, b"", ex, b"", 2)
    with pytest.raises(ValueError, match="non-negative"):
        kernels.affine(mod, one, one, b"", np.array([-1], dtype="<i8").tobytes(), b"", 1)
    with pytest.raises(ValueError, match="reduced"):
        kernels.affine(mod, le(n2, width), one, b"", ex, b"", 1)


@needs_ifma
def test_ifma_kernels_at_the_production_key_size(monkeypatch):
    """At 2048 bits (p² of 40 limbs of 52 bits, n² of 79) the IFMA tables, window
    buckets and residual refresh give GMP's and gmpy2's values (3072 and 4096 bits:
    test_key_sizes.py)."""
    from riskfed.crypto.keys import generate_keypair
    from riskfed.crypto.multiexp import multiexp

    pk, sk = generate_keypair(2048)
    rng = np.random.default_rng(4)
    for modulus in (gmpy2.mpz(sk.phe.p) ** 2, pk.n_squared):
        rows, window, count = 6, 4, 11
        digits = rng.integers(0, 1 << window, size=(rows, count)).astype("<u2").tobytes()
        fast, slow = (table_for(modulus, pk.h_s, window, rows, ifma=f) for f in (1, 0))
        assert fast.products(digits, count) == slow.products(digits, count)
    cts = paillier.encrypt(pk, rng.integers(-(2**40), 2**40, size=30).tolist())
    matrix = rng.integers(-(2**11), 2**11, size=(30, 9))
    s, t, c = rng.integers(0, 2**10, 30), rng.integers(-200, 200, 30), rng.integers(-(2**40), 2**40, 30)
    randomizers = paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 30, 6)
    both_ways(
        monkeypatch,
        "IFMA",
        lambda _: (multiexp(pk, cts, matrix, n_jobs=1), paillier.affine(pk, [(cts, s), (cts[::-1], t)], c, randomizers=randomizers)),
    )


@needs_ifma
@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 60), slot_bits=st.sampled_from([8, 40, 61]), seed=st.integers(0, 2**32 - 1))
def test_ifma_packing_gives_gmpy2s_packed_ciphertexts(keypair, monkeypatch, count, slot_bits, seed):
    """Packing eight runs per vector (a short last run, fewer runs than lanes, more than
    eight) gives exactly the gmpy2 Horner's ciphertexts, which unpack to the values."""
    pk, sk = keypair
    values = np.random.default_rng(seed).integers(0, 2**slot_bits - 1, size=count, dtype=np.uint64).tolist()
    cts = paillier.encrypt(pk, values)
    n2 = pk.n_squared
    width = -(-n2.bit_length() // 64) * 8
    per = paillier.slots_per_ciphertext(pk, slot_bits)
    blob = kernels.pack(le(n2, (n2.bit_length() + 7) // 8), b"".join(le(c, width) for c in cts), count, per, slot_bits)
    fast = native.residues(blob, width)
    monkeypatch.setattr(native, "IFMA", False)
    assert fast == paillier.pack(pk, cts, slot_bits)
    assert paillier.unpack(decrypt(sk, fast, signed=False), count, slot_bits, pk) == values


@needs_ifma
def test_packing_takes_the_ifma_kernel_for_many_runs(keypair, monkeypatch):
    pk, sk = keypair
    monkeypatch.setattr(native, "ENABLED", True)  # also under RISKFED_NATIVE=0
    monkeypatch.setattr(native, "IFMA", True)
    slot_bits = 40
    per = paillier.slots_per_ciphertext(pk, slot_bits)
    values = list(range(5 * per))  # five full runs: the kernel pays
    cts = paillier.encrypt(pk, values)
    calls = []
    real = kernels.pack
    monkeypatch.setattr(native.kernels, "pack", lambda *a: calls.append(a[2]) or real(*a))
    packed = paillier.pack(pk, cts, slot_bits)
    assert calls == [len(values)]
    assert paillier.unpack(decrypt(sk, packed, signed=False), len(values), slot_bits, pk) == values
    assert paillier.pack(pk, cts[:per], slot_bits)  # one run: gmpy2
    assert calls == [len(values)]
