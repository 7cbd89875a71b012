"""DH-PSI on Curve25519: hashing to the curve, blinding, and a full two-party run."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
import gmpy2

from riskfed.alignment import ecdh
from riskfed.alignment.ecdh import EcdhKey, hash_to_curve
from riskfed.alignment.index import match_positions
from riskfed.errors import AlignmentError, ConfigurationError, ProtocolError, SchemaError

SECRET_A = bytes(range(32))  # test-only keys
SECRET_B = bytes(range(100, 132))
P = 2**255 - 19
# u-coordinates of small-order points: X25519 with any secret gives the identity.
LOW_ORDER = [
    0,
    1,
    P - 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
]

ids_strategy = st.lists(st.text(min_size=1, max_size=10), unique=True, max_size=12)


def x25519(secret: bytes, u: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(u))


# ---------------------------------------------------------------------- hash to curve


# RFC 9380 Appendix J, suite curve25519_XMD:SHA-512_ELL2_NU_ (DST
# "QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_NU_"): message, the field element u,
# map_to_curve(u).x and the cofactor-cleared P.x = x(8 Q), big-endian hex.
RFC9380_DST = b"QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_NU_"
RFC9380_NU = [
    (
        b"",
        "608d892b641f0328523802a6603427c26e55e6f27e71a91a478148d45b5093cd",
        "51125222da5e763d97f3c10fcc92ea6860b9ccbbd2eb1285728f566721c1e65b",
        "1bb913f0c9daefa0b3375378ffa534bda5526c97391952a7789eb976edfe4d08",
    ),
    (
        b"abc",
        "46f5b22494bfeaa7f232cc8d054be68561af50230234d7d1d63d1d9abeca8da5",
        "7d56d1e08cb0ccb92baf069c18c49bb5a0dcd927eff8dcf75ca921ef7f3e6eeb",
        "7c22950b7d900fa866334262fcaea47a441a578df43b894b4625c9b450f9a026",
    ),
    (
        b"abcdef0123456789",
        "235fe40c443766ce7e18111c33862d66c3b33267efa50d50f9e8e5d252a40aaa",
        "3fbe66b9c9883d79e8407150e7c2a1c8680bee496c62fabe4619a72b3cabe90f",
        "31ad08a8b0deeb2a4d8b0206ca25f567ab4e042746f792f4b7973f3ae2096c52",
    ),
]


def x_double(x: int) -> int:
    """x-coordinate of 2P on Curve25519 from x(P) (RFC 7748 ladder doubling)."""
    num = (x * x - 1) ** 2 % P
    den = 4 * x * (x * x + 486662 * x + 1) % P
    return num * pow(den, -1, P) % P


@pytest.mark.parametrize("msg,u,qx,px", RFC9380_NU)
def test_hash_to_curve_matches_rfc9380_vectors(msg, u, qx, px):
    field = int.from_bytes(ecdh._expander(RFC9380_DST)(msg), "big") % P
    assert format(field, "064x") == u
    (x,) = ecdh.map_to_curve_elligator2([gmpy2.mpz(field)])
    assert format(int(x), "064x") == qx
    # encode_to_curve clears the cofactor; riskfed leaves that to X25519's clamping.
    assert format(x_double(x_double(x_double(int(x)))), "064x") == px


def test_hashed_points_lie_on_the_curve_not_its_twist():
    raw = hash_to_curve([f"id{i}" for i in range(200)]).tobytes()
    for k in range(0, len(raw), 32):
        x = int.from_bytes(raw[k : k + 32], "little")
        assert x < P
        assert gmpy2.legendre((x**3 + 486662 * x * x + x) % P, P) >= 0


def test_hash_to_curve_is_deterministic_and_injective_on_examples():
    ids = [f"id{i}" for i in range(1000)]
    first = hash_to_curve(ids)
    assert np.array_equal(first, hash_to_curve(ids))
    assert len(set(first.tobytes()[i : i + 32] for i in range(0, 32 * 1000, 32))) == 1000


def test_hash_to_curve_rejects_non_str_ids():
    with pytest.raises(SchemaError, match=r"1 are not str \(positions 0\)"):
        hash_to_curve([b"raw", "ok"])


# ---------------------------------------------------------------------- blinding


def test_blind_is_x25519_of_the_hashed_point():
    ids = ["a", "b", "c"]
    out = EcdhKey(SECRET_A).blind(ids).tobytes()
    hashed = hash_to_curve(ids).tobytes()
    for k in range(3):
        assert out[32 * k : 32 * k + 32] == x25519(SECRET_A, hashed[32 * k : 32 * k + 32])


@settings(max_examples=40, deadline=None)
@given(ids_strategy, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_blinding_commutes(ids, secret_a, secret_b):
    a, b = EcdhKey(secret_a), EcdhKey(secret_b)
    assert np.array_equal(b.reblind(a.blind(ids)), a.reblind(b.blind(ids)))


def test_different_keys_give_unrelated_points():
    ids = [f"id{i}" for i in range(100)]
    a = EcdhKey(SECRET_A).blind(ids)
    b = EcdhKey(SECRET_B).blind(ids)
    assert not np.isin(a, b).any()


def test_points_ending_in_zero_bytes_survive_a_round_trip():
    """An S32 element drops trailing NULs when indexed; reblind must read raw bytes."""
    a, b = EcdhKey(SECRET_A), EcdhKey(SECRET_B)
    blinded = a.blind([f"id{i}" for i in range(2000)])
    raw = blinded.tobytes()
    zero_tail = [k for k in range(len(blinded)) if raw[32 * k + 31] == 0]
    assert zero_tail, "fixture should contain points whose last byte is zero"
    again = b.reblind(blinded).tobytes()
    for k in zero_tail:
        assert again[32 * k : 32 * k + 32] == x25519(SECRET_B, raw[32 * k : 32 * k + 32])
    # The same points given as a list of exact 32-byte strings.
    as_list = [raw[32 * k : 32 * k + 32] for k in range(len(blinded))]
    assert b.reblind(as_list).tobytes() == again


def test_parallel_equals_serial(monkeypatch):
    # Small chunks so the test exercises splitting without 10,000+ ids.
    monkeypatch.setattr(ecdh, "_MIN_CHUNK", 16)
    key = EcdhKey(SECRET_A)
    ids = [f"customer-{i}" for i in range(301)]
    serial = key.blind(ids)
    assert np.array_equal(key.blind(ids, n_jobs=2), serial)
    assert np.array_equal(key.blind(ids, n_jobs=-1), serial)
    other = EcdhKey(SECRET_B).blind(ids)
    assert np.array_equal(key.reblind(other, n_jobs=2), key.reblind(other))


def test_empty_inputs():
    key = EcdhKey(SECRET_A)
    assert key.blind([]).shape == (0,)
    assert key.reblind(np.empty(0, dtype="S32")).shape == (0,)
    assert hash_to_curve([]).dtype == np.dtype("S32")


# ---------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("u", LOW_ORDER)
def test_low_order_points_are_rejected(u):
    good = EcdhKey(SECRET_B).blind(["a", "b"]).tobytes()
    points = [good[:32], u.to_bytes(32, "little"), good[32:]]
    with pytest.raises(AlignmentError, match=r"^fintech_1: 1 of the 3 points received for re-blinding have small order \(positions 1\)") as err:
        EcdhKey(SECRET_A).reblind(points, party="fintech_1")
    assert err.value.party == "fintech_1" and err.value.rows == [1]


def test_low_order_positions_are_global_when_parallel(monkeypatch):
    monkeypatch.setattr(ecdh, "_MIN_CHUNK", 8)
    points = EcdhKey(SECRET_B).blind([f"id{i}" for i in range(64)])
    points[[5, 40, 63]] = bytes(32)
    with pytest.raises(AlignmentError, match=r"3 of the 64 points .* \(positions 5, 40, 63\)") as err:
        EcdhKey(SECRET_A).reblind(points, n_jobs=2, party="bank")
    assert err.value.rows == [5, 40, 63]


@pytest.mark.parametrize(
    "points, match",
    [
        ([bytes(32), bytes(31)], r"1 of the 2 points received are not 32-byte strings \(positions 1\)"),
        ([bytes(33)], r"1 of the 1 points received are not 32-byte strings \(positions 0\)"),
        (["x" * 32], r"are not 32-byte strings \(positions 0\)"),
        (np.zeros(2, dtype="S31"), r"1-D array of 32-byte values; got shape \(2,\) of dtype \|S31"),
        (np.zeros((2, 2), dtype="S32"), r"1-D array of 32-byte values; got shape \(2, 2\)"),
    ],
)
def test_malformed_points_are_protocol_errors(points, match):
    with pytest.raises(ProtocolError, match=r"^bank: .*" + match) as err:
        EcdhKey(SECRET_A).reblind(points, party="bank")
    assert err.value.party == "bank"


# ---------------------------------------------------------------------- the key


def test_repr_hides_the_secret():
    key = EcdhKey(SECRET_A)
    assert repr(key) == "EcdhKey(<secret hidden>)" == str(key)
    assert SECRET_A.hex() not in repr(key)


def test_generate_makes_distinct_keys():
    ids = ["same"]
    assert not np.array_equal(EcdhKey.generate().blind(ids), EcdhKey.generate().blind(ids))


@pytest.mark.parametrize("secret, got", [(bytes(31), "31 bytes"), ("s" * 32, "str")])
def test_secret_must_be_32_bytes(secret, got):
    with pytest.raises(ConfigurationError, match=rf"exactly 32 bytes\. Got {got} instead"):
        EcdhKey(secret)


@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2"])
def test_n_jobs_must_be_a_nonzero_int(n_jobs):
    with pytest.raises(ConfigurationError, match=r"'n_jobs' parameter must be a non-zero int"):
        EcdhKey(SECRET_A).blind(["a"], n_jobs=n_jobs)


# ---------------------------------------------------------------------- full protocol


def dh_psi(bank_ids: list[str], fintech_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Both roles of one DH-PSI run, in the order the messages would flow."""
    bank_key, fintech_key = EcdhKey(SECRET_A), EcdhKey(SECRET_B)
    to_fintech = bank_key.blind(bank_ids, party="bank")
    back_to_bank = fintech_key.reblind(to_fintech, party="fintech_1")
    fintech_blinded = fintech_key.blind(fintech_ids, party="fintech_1")
    fintech_double = bank_key.reblind(fintech_blinded, party="bank")
    return match_positions(back_to_bank, fintech_double, partner="fintech_1")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=25),
    st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=25),
    st.randoms(use_true_random=False),
)
def test_two_party_psi_finds_exactly_the_plaintext_intersection(bank_only, fintech_only, rnd):
    shared = [x for x in bank_only if x in set(fintech_only)]
    bank_ids = list(bank_only)
    fintech_ids = list(fintech_only)
    rnd.shuffle(bank_ids)
    rnd.shuffle(fintech_ids)
    i, j = dh_psi(bank_ids, fintech_ids)
    assert [bank_ids[k] for k in i] == [fintech_ids[k] for k in j]
    assert sorted(bank_ids[k] for k in i) == sorted(shared)
    assert list(i) == sorted(i)

    # Independent of row order: shuffling either table gives the same matched ids.
    bank_again, fintech_again = bank_ids[:], fintech_ids[:]
    rnd.shuffle(bank_again)
    rnd.shuffle(fintech_again)
    i2, j2 = dh_psi(bank_again, fintech_again)
    assert {(bank_again[a], fintech_again[b]) for a, b in zip(i2, j2)} == {
        (bank_ids[a], fintech_ids[b]) for a, b in zip(i, j)
    }


def test_psi_on_a_realistic_table():
    rng = random.Random(7)
    population = [f"1380013{n:04d}" for n in rng.sample(range(10_000), 3_000)]
    bank_ids = population[:2_000]
    fintech_ids = population[1_200:]
    rng.shuffle(fintech_ids)
    i, j = dh_psi(bank_ids, fintech_ids)
    assert len(i) == 800
    assert [bank_ids[k] for k in i] == [fintech_ids[k] for k in j]
