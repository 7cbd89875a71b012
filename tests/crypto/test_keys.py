"""Paillier keys: the 2048-bit floor, the test-only flag, the DJN base, no leaks."""

from __future__ import annotations

import pickle

import gmpy2
import pytest

from riskfed.crypto.keys import (
    MIN_KEY_BITS,
    MIN_TEST_KEY_BITS,
    PrivateKey,
    PublicKey,
    check_key_bits,
    generate_keypair,
)
from riskfed.errors import ConfigurationError, InsecureKeyError, KeyMismatchError


@pytest.mark.parametrize("bits", [512, 1024, 2046])
def test_key_below_2048_without_flag_is_refused(bits):
    with pytest.raises(InsecureKeyError, match=rf"{bits}-bit Paillier key is below the 2048-bit floor.*insecure"):
        generate_keypair(bits)


def test_check_key_bits_names_the_party():
    with pytest.raises(InsecureKeyError, match="below the 2048-bit floor") as info:
        check_key_bits(1024, party="fintech_1")
    assert info.value.party == "fintech_1"


def test_flag_admits_test_keys_but_not_toy_keys():
    check_key_bits(MIN_TEST_KEY_BITS, allow_insecure=True)
    check_key_bits(MIN_KEY_BITS)
    with pytest.raises(InsecureKeyError, match="cannot hold masked gradients"):
        check_key_bits(256, allow_insecure=True)


@pytest.mark.parametrize("bad", [2048.0, "2048", True, None])
def test_key_bits_must_be_an_int(bad):
    with pytest.raises(ConfigurationError, match="'key_bits' parameter must be an int"):
        check_key_bits(bad)


def test_key_bits_must_be_even():
    with pytest.raises(ConfigurationError, match="must be even"):
        check_key_bits(2049)


def test_generated_test_key_has_exact_size_and_an_nth_residue_base(keypair):
    pk, sk = keypair
    assert pk.key_bits == 512
    n = gmpy2.mpz(pk.n)
    assert pk.n_squared == n * n
    assert 0 < pk.h_s < pk.n_squared and gmpy2.gcd(pk.h_s, n) == 1
    # h_s = h^n is an n-th residue: its decryption (as a ciphertext) is 0.
    assert sk.raw_decrypt(pk.h_s) == 0
    assert sk.phe.public_key.n == pk.n
    assert pk.to_phe().n == pk.n


def test_384_bit_test_key_works():
    pk, _ = generate_keypair(384, allow_insecure_key=True)
    assert pk.key_bits == 384


def test_public_key_round_trips_through_dict_and_fingerprint_is_stable(public_key):
    again = PublicKey.from_dict(public_key.to_dict())
    assert again == public_key
    assert again.fingerprint == public_key.fingerprint
    assert len(public_key.fingerprint) == 16


def test_check_same_refuses_another_key(public_key):
    other, _ = generate_keypair(384, allow_insecure_key=True)
    public_key.check_same(PublicKey(public_key.n, public_key.h_s))
    with pytest.raises(KeyMismatchError, match=r"fintech_1 uses Paillier key .*\(384 bits\).*\(512 bits\)"):
        public_key.check_same(other, party="fintech_1")


def test_private_key_never_shows_its_primes_and_cannot_be_pickled(keypair):
    _, sk = keypair
    p, q = sk.phe.p, sk.phe.q
    for text in (repr(sk), str(sk)):
        assert str(p) not in text and str(q) not in text
        assert "fingerprint" in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(sk)


def test_private_key_must_match_public_key(keypair):
    pk, _ = keypair
    _, other = generate_keypair(384, allow_insecure_key=True)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        PrivateKey(pk, other.phe)
