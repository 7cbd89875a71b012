"""Paillier kernels: agreement with phe both ways, homomorphic algebra, wire format,
ciphertext validation and fresh randomness."""

from __future__ import annotations

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phe import paillier as phe

from riskfed.crypto import paillier
from riskfed.crypto.paillier import (
    add_encrypted,
    add_plain,
    add_scalars,
    check_ciphertexts,
    decrypt,
    encrypt,
    fixed_base_table,
    affine,
    from_bytes,
    to_bytes,
)
from riskfed.errors import InvalidCiphertextError, ProtocolError

# Plaintexts well inside the signed range of a 512-bit key (|v| < n/2, and < n/3 for phe).
BOUND = 2**200
values = st.integers(min_value=-BOUND, max_value=BOUND)
small = st.integers(min_value=-(2**62), max_value=2**62)


# -- agreement with phe ----------------------------------------------------------------
def test_riskfed_ciphertexts_decrypt_with_phe(keypair):
    pk, sk = keypair
    plain = [0, 1, -1, 123456789, -(2**150), 2**199]
    cts = encrypt(pk, plain)
    phe_pk = pk.to_phe()
    for c, v in zip(cts, plain):
        enc = phe.EncryptedNumber(phe_pk, int(c), exponent=0)
        assert sk.phe.decrypt(enc) == v  # phe's own decoding (negatives above n - max_int)
        assert sk.phe.raw_decrypt(int(c)) == v % pk.n


def test_phe_ciphertexts_decrypt_with_riskfed(keypair):
    pk, sk = keypair
    phe_pk = pk.to_phe()
    plain = [0, 7, -7, 2**100, -(2**100) + 3]
    encs = [phe_pk.encrypt(v) for v in plain]
    assert all(e.exponent == 0 for e in encs)
    assert decrypt(sk, [e.ciphertext() for e in encs]) == plain


@settings(max_examples=30)
@given(a=values, b=values)
def test_mixed_phe_and_riskfed_ciphertexts_add_up(keypair, a, b):
    pk, sk = keypair
    c_phe = pk.to_phe().encrypt(a).ciphertext()
    [c_rf] = encrypt(pk, [b])
    [total] = add_encrypted(pk, [c_phe], [c_rf])
    assert decrypt(sk, [total]) == [a + b]
    assert sk.phe.decrypt(phe.EncryptedNumber(pk.to_phe(), int(total), 0)) == a + b


# -- homomorphic properties ------------------------------------------------------------
@given(a=st.lists(values, min_size=1, max_size=6), data=st.data())
def test_decrypt_of_encrypted_sum_is_the_sum(keypair, a, data):
    pk, sk = keypair
    b = data.draw(st.lists(values, min_size=len(a), max_size=len(a)))
    out = add_encrypted(pk, encrypt(pk, a), encrypt(pk, b))
    assert decrypt(sk, out) == [x + y for x, y in zip(a, b)]


@given(vectors=st.lists(st.lists(small, min_size=3, max_size=3), min_size=1, max_size=5))
def test_add_encrypted_over_several_vectors(keypair, vectors):
    pk, sk = keypair
    out = add_encrypted(pk, *(encrypt(pk, v) for v in vectors))
    assert decrypt(sk, out) == [sum(col) for col in zip(*vectors)]


@given(a=st.lists(values, min_size=0, max_size=6), data=st.data())
def test_add_plain(keypair, a, data):
    pk, sk = keypair
    b = data.draw(st.lists(values, min_size=len(a), max_size=len(a)))
    assert decrypt(sk, add_plain(pk, encrypt(pk, a), b)) == [x + y for x, y in zip(a, b)]
    assert decrypt(sk, add_plain(pk, encrypt(pk, a), np.array(b, dtype=object))) == [x + y for x, y in zip(a, b)]


def test_add_plain_needs_one_value_per_ciphertext(keypair):
    pk, _ = keypair
    with pytest.raises(ValueError, match="one plaintext per ciphertext"):
        add_plain(pk, encrypt(pk, [1, 2]), [1])


short = st.integers(-(2**12), 2**12)


@given(
    rows=st.lists(
        st.tuples(st.integers(-(2**120), 2**120), short, st.integers(-(2**60), 2**60), short, small),
        min_size=1,
        max_size=6,
    )
)
def test_affine_is_the_signed_linear_combination(keypair, rows):
    pk, sk = keypair
    a, s, b, t, c = (list(col) for col in zip(*rows))
    ca, cb = encrypt(pk, a), encrypt(pk, b)
    two = affine(pk, [(ca, s), (cb, np.array(t, dtype=np.int64))], np.array(c, dtype=np.int64))
    assert decrypt(sk, two) == [x * y + v * w + k for x, y, v, w, k in zip(a, s, b, t, c)]
    one = affine(pk, [(ca, s)], c)
    assert decrypt(sk, one) == [x * y + k for x, y, k in zip(a, s, c)]


def test_affine_by_zero_one_and_minus_one(keypair):
    pk, sk = keypair
    cts = encrypt(pk, [5, 5, 5, 5])
    out = affine(pk, [(cts, [0, 1, -1, 0]), (cts, [0, 0, 0, -1])], [0, 0, 0, 2])
    assert decrypt(sk, out) == [0, 5, -5, -3]
    # A zero combination is still a fresh encryption, never the trivial ciphertext 1.
    assert int(out[0]) != 1 and int(out[0]) % pk.n != 1


def _randomness(sk, c):
    """``ρ`` with ``c = (1 + m n) ρ mod n²`` — recoverable only with the private key."""
    pk = sk.public_key
    n, n2 = gmpy2.mpz(pk.n), gmpy2.mpz(pk.n) ** 2
    m = decrypt(sk, [c], signed=False)[0]
    return gmpy2.mpz(c) * gmpy2.invert(1 + m * n, n2) % n2


def test_affine_output_does_not_carry_the_senders_randomness(keypair):
    """Whoever encrypted [[u]] knows its randomness ρ; if [[s u + c]] were
    [[u]]^s (1 + c n), its randomness would be ρ^s and the sender could try the few short
    s, then read c. The output must carry fresh randomness instead."""
    pk, sk = keypair
    n2 = pk.n_squared
    u, v = encrypt(pk, [7, 11]), encrypt(pk, [3, 2])
    s, t = [3, 5], [2, -1]
    out = affine(pk, [(u, s), (v, t)], [100, -40])
    for i in range(2):
        inherited = gmpy2.powmod(_randomness(sk, u[i]), s[i], n2) * gmpy2.powmod(_randomness(sk, v[i]), t[i], n2) % n2
        assert _randomness(sk, out[i]) != inherited
    assert decrypt(sk, out) == [3 * 7 + 2 * 3 + 100, 5 * 11 - 2 - 40]


def test_affine_refuses_mismatched_lengths(keypair):
    pk, _ = keypair
    cts = encrypt(pk, [1, 2])
    with pytest.raises(ValueError):
        affine(pk, [(cts, [1])], [0, 0])
    with pytest.raises(ValueError):
        affine(pk, [], [0, 0])


@given(a=st.lists(values, max_size=8))
def test_add_scalars_is_the_total(keypair, a):
    pk, sk = keypair
    assert decrypt(sk, [add_scalars(pk, encrypt(pk, a))]) == [sum(a)]


def test_decrypt_unsigned_returns_residues(keypair):
    pk, sk = keypair
    assert decrypt(sk, encrypt(pk, [-3, 4]), signed=False) == [pk.n - 3, 4]


def test_encryption_uses_fresh_randomness(keypair):
    pk, sk = keypair
    c1 = encrypt(pk, [42, 42, 42])
    c2 = encrypt(pk, [42])
    assert len({int(c) for c in c1 + c2}) == 4
    assert decrypt(sk, c1 + c2) == [42] * 4
    # Not the trivial encryption 1 + m n: the randomness term is really there.
    assert all(int(c) % pk.n != 1 for c in c1 + c2)


def test_parallel_encryption_matches_serial_decryption(keypair):
    pk, sk = keypair
    plain = list(range(-300, 300))
    cts = encrypt(pk, np.array(plain, dtype=np.int64), n_jobs=2)
    assert decrypt(sk, cts) == plain
    assert len({int(c) for c in cts}) == len(plain)
    doubled = affine(pk, [(cts, [2] * len(cts))], [1] * len(cts), n_jobs=2)
    assert decrypt(sk, doubled) == [2 * v + 1 for v in plain]


def test_fixed_base_table_holds_powers_of_h_s(public_key, monkeypatch):
    from riskfed.crypto import native

    monkeypatch.setattr(native, "ENABLED", False)  # the gmpy2 table, whose rows are readable
    window = 4
    table = fixed_base_table(public_key.n, public_key.h_s, window)
    n2 = public_key.n_squared
    for i in (0, 1, len(table.tables) - 1):
        for d in (1, 5, 15):
            assert table.tables[i][d] == gmpy2.powmod(public_key.h_s, d << (window * i), n2)
    # The table covers r of n_bits/2 bits.
    assert len(table.tables) * window >= paillier.randomness_bits(public_key)
    assert fixed_base_table(public_key.n, public_key.h_s, window) is table


# -- wire format -----------------------------------------------------------------------
@given(a=st.lists(values, max_size=6))
def test_to_bytes_from_bytes_round_trip(keypair, a):
    pk, sk = keypair
    cts = encrypt(pk, a)
    blob = to_bytes(pk, cts)
    assert len(blob) == len(a) * pk.ciphertext_bytes
    back = from_bytes(pk, blob, count=len(a))
    assert back == cts
    assert decrypt(sk, back) == a


def test_from_bytes_rejects_wrong_lengths(public_key):
    blob = to_bytes(public_key, encrypt(public_key, [1, 2, 3]))
    with pytest.raises(ProtocolError, match=r"bank sent 383 bytes of ciphertexts; expected a multiple of 128 bytes"):
        from_bytes(public_key, blob[:-1], party="bank")
    with pytest.raises(ProtocolError, match=r"fintech_1 sent 384 bytes.*expected 2 ciphertexts of 128 bytes"):
        from_bytes(public_key, blob, count=2, party="fintech_1")


@pytest.mark.parametrize("where", [0, 2])
@pytest.mark.parametrize("bad", ["zero", "n_squared", "max"])
def test_from_bytes_rejects_values_outside_the_range(public_key, bad, where):
    width = public_key.ciphertext_bytes
    cts = [int(c) for c in encrypt(public_key, [1, 2, 3])]
    cts[where] = {"zero": 0, "n_squared": int(public_key.n_squared), "max": 2 ** (8 * width) - 1}[bad]
    blob = b"".join(c.to_bytes(width, "big") for c in cts)
    with pytest.raises(InvalidCiphertextError, match=rf"fintech_1 sent 1 ciphertext\(s\) outside Z\*_\(n\^2\) at position\(s\) {where}") as info:
        from_bytes(public_key, blob, count=3, party="fintech_1")
    assert info.value.rows == [where] and info.value.party == "fintech_1"


def test_check_ciphertexts_full_rejects_non_units(keypair):
    pk, sk = keypair
    p = sk.phe.p
    good = encrypt(pk, [1, 2])
    multiple_of_p = gmpy2.mpz(p) * 12345 % pk.n_squared
    multiple_of_n = gmpy2.mpz(pk.n) * 3
    check_ciphertexts(pk, good, full=True)
    # The cheap range check alone cannot see a non-unit...
    check_ciphertexts(pk, [*good, multiple_of_p])
    # ...the full check can.
    with pytest.raises(InvalidCiphertextError, match=r"bank sent 1 ciphertext\(s\) outside Z\*_\(n\^2\) at position\(s\) 2"):
        check_ciphertexts(pk, [*good, multiple_of_p], party="bank", full=True)
    with pytest.raises(InvalidCiphertextError, match=r"position\(s\) 0, 1"):
        check_ciphertexts(pk, [multiple_of_n, multiple_of_p], full=True)
    with pytest.raises(InvalidCiphertextError, match=r"position\(s\) 1"):
        check_ciphertexts(pk, [good[0], 0], full=True)
    with pytest.raises(InvalidCiphertextError, match=r"position\(s\) 0"):
        check_ciphertexts(pk, [pk.n_squared + 1], full=True)
    with pytest.raises(InvalidCiphertextError, match=r"position\(s\) 0"):
        check_ciphertexts(pk, [-5])


# -- packing masked values -------------------------------------------------------------
@given(data=st.data(), slot_bits=st.sampled_from([40, 100, 175, 250]))
def test_pack_then_decrypt_then_unpack_round_trips(keypair, data, slot_bits):
    pk, sk = keypair
    per = paillier.slots_per_ciphertext(pk, slot_bits)
    assert per == max(1, (pk.key_bits - 2) // slot_bits)
    values = data.draw(st.lists(st.integers(0, 2**slot_bits - 1), min_size=1, max_size=3 * per + 1))
    packed = paillier.pack(pk, encrypt(pk, values), slot_bits)
    assert len(packed) == -(-len(values) // per)
    plain = decrypt(sk, packed, signed=False)
    assert all(0 <= v < pk.n for v in plain)  # packed plaintexts never wrap around n
    assert paillier.unpack(plain, len(values), slot_bits, pk) == values
