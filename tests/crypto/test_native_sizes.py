"""The C kernels refuse counts whose buffer sizes or loop bounds would overflow, before
allocating or reading anything (they once wrapped ``rows * width`` to a small number and
read or wrote past their buffers); riskfed's callers get the refusal as
EncodingOverflowError or CryptoError. Values the kernels cannot take (exponents past
int64) go to gmpy2 and give the same ciphertexts."""

from __future__ import annotations

import os

import numpy as np
import pytest

from riskfed.crypto import native, paillier
from riskfed.crypto.multiexp import multiexp
from riskfed.crypto.paillier import decrypt
from riskfed.errors import CryptoError, EncodingOverflowError

if os.environ.get("RISKFED_REQUIRE_NATIVE"):  # .ci/run: the extension must be built, not skipped
    from riskfed.crypto import _native as kernels
else:
    kernels = pytest.importorskip("riskfed.crypto._native")

needs_ifma = pytest.mark.skipif(not kernels.ifma_supported(), reason="this CPU has no AVX-512 IFMA")

MOD = b"\x07" * 8  # an odd 64-bit modulus: residues are 8 bytes wide
HUGE = 2**61  # times 8 bytes wraps to 0 in 64 bits


def test_planes_refuse_counts_whose_sizes_overflow():
    # rows * width and rows * cols * 8 both wrap to 0: empty buffers used to pass.
    with pytest.raises(OverflowError, match=r"planes takes fewer than 2\^48 rows; got 2305843009213693952"):
        kernels.planes(MOD, b"", b"", HUGE, 0, 4)
    with pytest.raises(OverflowError, match=r"planes takes fewer than 2\^48 columns"):
        kernels.planes(MOD, b"", b"", 0, 2**63 - 1, 4)
    with pytest.raises(OverflowError, match=r"planes: a buffer of 140737488355328 x 140737488355328 x 1 overflows"):
        kernels.planes(MOD, b"", b"", 2**47, 2**47, 4)
    with pytest.raises(ValueError, match="rows bases of the modulus' width"):
        kernels.planes(MOD, b"\x01" * 8, b"", 1, 2**47, 4)
    with pytest.raises(ValueError, match="non-negative rows"):
        kernels.planes(MOD, b"", b"", -1, 1, 4)


@needs_ifma
def test_ifma_kernels_refuse_counts_whose_sizes_overflow():
    with pytest.raises(OverflowError, match=r"windows takes fewer than 2\^48 rows"):
        kernels.windows(MOD, b"", b"", HUGE, 0, 3)
    with pytest.raises(OverflowError, match=r"windows takes fewer than 2\^48 columns"):
        kernels.windows(MOD, b"", b"", 0, 2**62, 3)
    with pytest.raises(OverflowError, match="windows: a buffer of .* overflows"):
        kernels.windows(MOD, b"", b"", 2**47, 2**47, 3)
    with pytest.raises(OverflowError, match=r"affine takes fewer than 2\^48 rows"):
        kernels.affine(MOD, b"", b"", b"", b"", b"", HUGE)
    with pytest.raises(ValueError, match="affine needs rows residues"):
        kernels.affine(MOD, b"", b"", b"", b"", b"", 2**47)
    with pytest.raises(ValueError, match="affine needs rows >= 0"):
        kernels.affine(MOD, b"", b"", b"", b"", b"", -1)
    with pytest.raises(OverflowError, match=r"pack takes fewer than 2\^48 ciphertexts"):
        kernels.pack(MOD, b"", HUGE, 1, 8)
    with pytest.raises(ValueError, match="pack needs count residues"):
        kernels.pack(MOD, b"", 2**47, 1, 8)


@needs_ifma
def test_pack_with_runs_longer_than_the_values_walks_only_the_values():
    """A run of 2^63 - 1 slots (once 2^63 loop steps, and count + per overflowed) packs
    the values there are, as a run of their own length does."""
    mod = (2**127 - 1).to_bytes(16, "little")
    cts = b"".join(v.to_bytes(16, "little") for v in (5, 9, 2))
    want = kernels.pack(mod, cts, 3, 3, 8)
    assert kernels.pack(mod, cts, 3, 2**63 - 1, 8) == want
    assert int.from_bytes(want, "little") == 5 * pow(9, 2**8, 2**127 - 1) * pow(2, 2**16, 2**127 - 1) % (2**127 - 1)
    assert kernels.pack(mod, b"", 0, 2**63 - 1, 8) == b""


def test_tables_refuse_batches_whose_sizes_overflow(keypair):
    pk, sk = keypair
    p2 = int(sk.phe.p) ** 2
    width = (p2.bit_length() + 7) // 8
    t = kernels.Table(p2.to_bytes(width, "little"), (3).to_bytes(width, "little"), 4, 3)
    t.fill(0, 3)
    with pytest.raises(OverflowError, match="products takes at most 2147483647 values per call; got 2305843009213693952"):
        t.products(b"", HUGE)
    with pytest.raises(OverflowError, match="products takes at most 2147483647 values per call"):
        t.products(b"", 2**31)
    with pytest.raises(ValueError, match="rows \\* count"):
        t.products(b"", 2**30)
    with pytest.raises(ValueError, match="rows \\* count"):
        t.products(b"", -1)


def test_moduli_past_32_kib_are_refused():
    big = b"\x01" + b"\x00" * 40_000 + b"\x01"
    with pytest.raises(ValueError, match="modulus must be at most 32768 bytes; got 40002"):
        kernels.Table(big, b"\x03", 4, 3)
    with pytest.raises(ValueError, match="modulus must be at most 32768 bytes"):
        kernels.planes(big, b"", b"", 0, 1, 4)


def test_the_kernel_limits_are_published():
    assert kernels.IFMA_MAX_BITS == native.IFMA_MAX_BITS == 8318  # 160 limbs of 52 bits, 4m < 2^(52L)
    assert kernels.MAX_MODULUS_BITS == 8 * 32768


def test_riskfeds_callers_get_typed_errors():
    with pytest.raises(EncodingOverflowError, match=r"C kernel 'planes' cannot take input of this size: planes takes fewer than 2\^48 rows"):
        with native.refusals("planes"):
            kernels.planes(MOD, b"", b"", HUGE, 0, 4)
    with pytest.raises(CryptoError, match="C kernel 'planes' refused its input: planes needs 1 <= g <= 16"):
        with native.refusals("planes"):
            kernels.planes(MOD, b"", b"", 0, 0, 17)
    with pytest.raises(EncodingOverflowError, match="C kernel 'windows' cannot take input of this size"):
        with native.refusals("windows"):
            native.residue_bytes([2**64], 8)  # wider than the modulus


def test_exponents_past_2_to_62_are_refused_on_every_path(keypair, monkeypatch):
    """Shifting a column by its minimum must not wrap int64 (it did, silently)."""
    pk, _ = keypair
    cts = paillier.encrypt(pk, [1, 2])
    for enabled in (True, False):
        monkeypatch.setattr(native, "ENABLED", enabled)
        with pytest.raises(EncodingOverflowError, match="Exponents must be below 2\\^62 in magnitude; got one of 63 bits"):
            multiexp(pk, cts, np.array([[2**62, 0], [-(2**62), 1]]))
        with pytest.raises(EncodingOverflowError, match="some do not fit int64"):
            multiexp(pk, cts, [[2**70, 0], [1, 1]])


@needs_ifma
def test_unreduced_ciphertexts_are_refused_by_the_packing_kernel(keypair, monkeypatch):
    pk, _ = keypair
    monkeypatch.setattr(native, "ENABLED", True)  # also under RISKFED_NATIVE=0
    monkeypatch.setattr(native, "IFMA", True)
    per = paillier.slots_per_ciphertext(pk, 40)
    cts = paillier.encrypt(pk, list(range(4 * per)))  # four runs: the kernel packs them
    cts[3] = pk.n_squared  # as wide as the modulus, not reduced
    with pytest.raises(CryptoError, match="kernel 'pack' refused its input: pack needs residues reduced modulo the modulus"):
        paillier.pack(pk, cts, 40)
    _, width = native.modulus_bytes(pk.n_squared)
    cts[3] = 1 << (8 * width)  # wider than the kernel's residues
    with pytest.raises(EncodingOverflowError, match="kernel 'pack' cannot take input of this size: mpz too big to convert"):
        paillier.pack(pk, cts, 40)


@needs_ifma
def test_affine_exponents_past_int64_take_gmpy2_and_agree(keypair, monkeypatch):
    pk, sk = keypair
    u = paillier.encrypt(pk, [3, -2, 5])
    s = [2**64 + 1, 7, 0]
    randomizers = paillier.crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 3, 5)
    made = {}
    for ifma in (True, False):
        monkeypatch.setattr(native, "IFMA", ifma)
        made[ifma] = paillier.affine(pk, [(u, s)], [1, 1, 1], randomizers=randomizers)
    assert made[True] == made[False]
    assert decrypt(sk, made[True]) == [1 + 3 * (2**64 + 1), 1 - 14, 1]
