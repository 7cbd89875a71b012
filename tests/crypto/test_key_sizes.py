"""Production key sizes on every kernel path: 3072-bit keys (n² of 6,144 bits, 119 limbs
of 52 bits for the IFMA kernels) give exactly the same ciphertexts on AVX-512 IFMA, on
GMP's products and in gmpy2, and decrypt to the right values; a training session at
3072 bits completes on each path and equals its plaintext twin; 4096-bit keys work on
the default path; moduli beyond the IFMA kernels' size go to GMP's."""

from __future__ import annotations

import numpy as np
import pytest

from riskfed.crypto import multiexp as multiexp_module
from riskfed.crypto import native, paillier, randomness
from riskfed.crypto.keys import PublicKey, generate_keypair
from riskfed.crypto.multiexp import multiexp
from riskfed.crypto.paillier import decrypt, encrypt_with
from riskfed.data.synthetic import generate_pilot
from riskfed.learning.linear.reference import fit_reference

# (native.ENABLED, native.IFMA) of each path; RISKFED_NATIVE=0 and RISKFED_IFMA=0 set the same.
PATHS = {"ifma": (True, True), "mpn": (True, False), "gmpy2": (False, False)}
WINDOW = 6
SLOT_BITS = 100


def on_path(monkeypatch, path: str) -> None:
    enabled, ifma = PATHS[path]
    if enabled and native.kernels is None:
        pytest.skip("the C kernels are not built")
    if ifma and not native.kernels.ifma_supported():
        pytest.skip("this CPU has no AVX-512 IFMA")
    monkeypatch.setattr(native, "ENABLED", enabled)
    monkeypatch.setattr(native, "IFMA", ifma)


@pytest.fixture(scope="module")
def key3072():
    return generate_keypair(3072)


@pytest.fixture(scope="module")
def inputs(key3072):
    """Ciphertexts and exponents of the shapes riskfed uses, made once on the default path."""
    pk, _ = key3072
    rng = np.random.default_rng(30)
    e = rng.integers(-(2**40), 2**40, size=64).tolist()
    per = paillier.slots_per_ciphertext(pk, SLOT_BITS)
    packed = rng.integers(0, 2**62, size=5 * per, dtype=np.uint64).tolist()  # five runs: the IFMA kernel
    rows = -(-paillier.randomness_bits(pk) // WINDOW)
    return {
        "e": e,
        "cts": paillier.encrypt(pk, e),
        "narrow": rng.integers(-(2**11), 2**11, size=(64, 2)),  # IFMA window buckets
        "wide": rng.integers(-(2**10), 2**10, size=(64, 40)),  # GMP bit planes without IFMA
        "column": rng.integers(-(2**13), 2**13, size=(64, 1)),
        "s": rng.integers(0, 2**10, size=64),
        "t": rng.integers(-300, 300, size=64),
        "c": rng.integers(-(2**40), 2**40, size=64),
        "packed": packed,
        "packed_cts": paillier.encrypt(pk, packed),
        "digits": rng.integers(0, 1 << WINDOW, size=(rows, 64)).astype(np.uint16),
    }


def compute(monkeypatch, key, data: dict) -> dict:
    """Every kernel's output on the path now switched on, with the same randomness digits."""
    pk, sk = key
    p, q = int(sk.phe.p), int(sk.phe.q)
    monkeypatch.setattr(randomness, "_random_digits", lambda count, windows, w: data["digits"][:, :count])
    crt = paillier.crt_randomizers(p, q, pk.h_s, 64, WINDOW)
    cts, u, v = data["cts"], data["cts"], data["cts"][::-1]
    return {
        "crt": crt,
        "own": paillier._randomizers(paillier.fixed_base_table(pk.n, pk.h_s, WINDOW), 64),
        "narrow": multiexp(pk, cts, data["narrow"]),
        "wide": multiexp(pk, cts, data["wide"]),
        "column": multiexp(pk, cts, data["column"]),
        "affine": paillier.affine(pk, [(u, data["s"]), (v, data["t"])], data["c"], randomizers=crt),
        "pack": paillier.pack(pk, data["packed_cts"], SLOT_BITS),
    }


@pytest.fixture(scope="module")
def reference(key3072, inputs):
    """The gmpy2 path's values (no C kernel)."""
    with pytest.MonkeyPatch.context() as mp:
        on_path(mp, "gmpy2")
        return compute(mp, key3072, inputs)


def spy_on_kernels(monkeypatch) -> list:
    """Record the names of the C kernels called (not the tables' products)."""
    called: list = []
    if native.kernels is None:
        return called
    for name in ("windows", "planes", "affine", "pack"):
        real = getattr(native.kernels, name)
        monkeypatch.setattr(native.kernels, name, lambda *a, _n=name, _f=real: called.append(_n) or _f(*a))
    return called


@pytest.mark.parametrize("path", list(PATHS))
def test_3072_bit_keys_give_the_same_ciphertexts_on_every_path(key3072, inputs, reference, monkeypatch, path):
    pk, sk = key3072
    on_path(monkeypatch, path)
    called = spy_on_kernels(monkeypatch)
    made = compute(monkeypatch, key3072, inputs)
    expected_kernels = {"ifma": {"windows", "affine", "pack"}, "mpn": {"planes"}, "gmpy2": set()}[path]
    assert set(called) == expected_kernels
    if path != "gmpy2":
        table = paillier.fixed_base_table(pk.n, pk.h_s, WINDOW).tables
        assert table.ifma == (path == "ifma")  # n² of 6,144 bits in the IFMA table
    for name, values in reference.items():
        assert made[name] == values, name
    # ... and they are right: randomizers seal values that decrypt, products decrypt to X^T e.
    exponent = sum(int(d) << (WINDOW * i) for i, d in enumerate(inputs["digits"][:, 5]))
    assert made["crt"][5] == pow(int(pk.h_s), exponent, int(pk.n_squared))
    assert made["own"] == made["crt"]
    values = list(range(-32, 32))
    assert decrypt(sk, encrypt_with(pk, values, made["crt"])) == values
    e = np.array(inputs["e"], dtype=object)
    for name in ("narrow", "wide", "column"):
        assert decrypt(sk, made[name]) == list(inputs[name].T.astype(object) @ e), name
    s, t, c = (inputs[k].astype(object) for k in "stc")
    assert decrypt(sk, made["affine"]) == list(c + s * e + t * e[::-1])
    packed = inputs["packed"]
    assert paillier.unpack(decrypt(sk, made["pack"], signed=False), len(packed), SLOT_BITS, pk) == packed


@pytest.mark.parametrize("path", list(PATHS))
def test_training_at_3072_bits_completes_and_equals_its_plaintext_twin(make_estimator, rebuild, monkeypatch, path):
    on_path(monkeypatch, path)
    pilot = generate_pilot(600, seed=6)
    model = make_estimator(key_bits=3072, allow_insecure_key=False, max_epochs=1).fit(
        pilot.bank, list(pilot.fintechs), id_column=pilot.id_column, label_column=pilot.label_column
    )
    assert model.outcome_.key_bits == 3072
    inputs = rebuild(model)
    ref = fit_reference(
        inputs["bank_X_q"], inputs["partner_X_q"], inputs["y"], inputs["train_rows"], inputs["hyper"], seed=model.random_state
    )
    assert np.array_equal(model.coef_["bank"], ref["bank"][:-1])
    assert np.array_equal(model.coef_["fintech_1"], ref["fintech_1"])
    assert len(model.outcome_.train_rows) > model.batch_size  # more than one batch


def test_4096_bit_keys_work_on_the_default_path(monkeypatch):
    """n² of 8,192 bits: 158 limbs of 52 bits, the IFMA kernels' largest production size."""
    pk, sk = generate_keypair(4096)
    called = spy_on_kernels(monkeypatch)
    p, q = int(sk.phe.p), int(sk.phe.q)
    rng = np.random.default_rng(40)
    e = rng.integers(-(2**40), 2**40, size=24).tolist()
    cts = paillier.encrypt(pk, e, window=5)
    assert decrypt(sk, cts) == e
    values = list(range(-12, 12))
    assert decrypt(sk, encrypt_with(pk, values, paillier.crt_randomizers(p, q, pk.h_s, 24, 5))) == values
    matrix = rng.integers(-(2**11), 2**11, size=(24, 3))
    assert decrypt(sk, multiexp(pk, cts, matrix)) == list(matrix.T.astype(object) @ np.array(e, dtype=object))
    s = rng.integers(-(2**10), 2**10, size=24)
    assert decrypt(sk, paillier.affine(pk, [(cts, s)], [7] * 24)) == [7 + int(a) * b for a, b in zip(s, e)]
    per = paillier.slots_per_ciphertext(pk, SLOT_BITS)
    small = list(range(3 * per))
    packed = paillier.pack(pk, paillier.encrypt(pk, small, window=5), SLOT_BITS)
    assert paillier.unpack(decrypt(sk, packed, signed=False), len(small), SLOT_BITS, pk) == small
    if native.use_ifma():
        assert set(called) == {"windows", "affine", "pack"}


def test_moduli_beyond_the_ifma_kernels_go_to_gmp(monkeypatch):
    """A key of 4,160 bits (n² of 8,320 bits, past IFMA_MAX_BITS): the IFMA kernels are
    not asked; GMP's table and bit planes, or gmpy2, compute the products."""
    if native.kernels is None:
        pytest.skip("the C kernels are not built")
    monkeypatch.setattr(native, "ENABLED", True)
    rng = np.random.default_rng(41)
    n = int.from_bytes(rng.bytes(520), "little") | (1 << 4159) | 1  # only n² matters here
    assert n.bit_length() == 4160
    pk = PublicKey(n=n, h_s=3)
    n2 = int(pk.n_squared)
    assert n2.bit_length() > native.IFMA_MAX_BITS
    assert not native.use_ifma(n2)
    table = paillier._native_table(pk.n_squared, 3, 4, 3, 1)
    assert not table.ifma
    digits = np.array([[1, 15], [0, 2], [7, 0]], dtype=np.uint16)
    got = paillier._products(table, pk.n_squared, digits)
    assert got == [pow(3, 1 + (7 << 8), n2), pow(3, 15 + (2 << 4), n2)]
    cts = [int.from_bytes(rng.bytes(1040), "little") % n2 for _ in range(10)]
    matrix = rng.integers(0, 50, size=(10, 12))  # no inverses: this n is not a key's
    want = [
        np.prod([pow(c, int(x), n2) for c, x in zip(cts, matrix[:, j])], dtype=object) % n2 for j in range(matrix.shape[1])
    ]
    called = spy_on_kernels(monkeypatch)
    assert multiexp(pk, cts, matrix) == want
    assert multiexp_module.multiexp_many(pk, [(cts, matrix[:, :2])])[0] == want[:2]
    assert "windows" not in called
