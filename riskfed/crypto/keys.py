"""Paillier keys with Damgård–Jurik–Nielsen fast-encryption parameters.

The coordinator generates the key pair and publishes :class:`PublicKey`; nobody else ever
holds :class:`PrivateKey`. Keys are made by python-paillier (``phe``), which stays the
reference implementation: every ciphertext riskfed produces decrypts with phe's private
key and vice versa (tested).

The public key carries one value beyond ``n``: ``h_s = h^n mod n^2`` for a random
``h = -x^2 mod n``. Encryption then uses ``(1 + m*n) * h_s^r mod n^2`` with a short
``r`` of ``n_bits/2`` bits (DJN 2010, §4.2; the same trick as SecretFlow HEU's
ZPaillier). ``h_s^r`` is an n-th residue, so the ciphertext is an ordinary Paillier
ciphertext; semantic security now also rests on the assumption that a short exponent of a
random n-th residue is indistinguishable from a random n-th residue (see
``docs/threat-model.md``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from functools import cached_property

import gmpy2
from phe import paillier

from riskfed import settings
from riskfed.errors import ConfigurationError, InsecureKeyError, KeyMismatchError

# NIST SP 800-57 Part 1 rates a 2048-bit factoring modulus at 112 bits of security, the
# lowest level it still accepts; anything shorter is for tests only.
MIN_KEY_BITS = 2048
DEFAULT_KEY_BITS = settings.default("key_bits")
# Test keys below this cannot hold a masked gradient (≈ 230 bits) with room to spare.
MIN_TEST_KEY_BITS = 384


@dataclass(frozen=True)
class PublicKey:
    """The coordinator's public key: ``n`` and the DJN base ``h_s``.

    Parameters
    ----------
    n:
        The Paillier modulus.
    h_s:
        ``h^n mod n^2`` for a random ``h = -x^2 mod n`` (fast-encryption base).
    """

    n: int
    h_s: int
    _n2: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_n2", gmpy2.mpz(self.n) ** 2)

    @property
    def key_bits(self) -> int:
        return int(self.n).bit_length()

    @property
    def n_squared(self):
        """``n^2`` as a gmpy2 integer (the ciphertext modulus)."""
        return self._n2

    @property
    def ciphertext_bytes(self) -> int:
        """Fixed width of one ciphertext on the wire."""
        return (int(self._n2).bit_length() + 7) // 8

    @cached_property
    def fingerprint(self) -> str:
        """First 16 hex digits of SHA-256 over ``n`` and ``h_s`` (shown to operators)."""
        width = self.ciphertext_bytes
        digest = hashlib.sha256(
            b"riskfed-paillier-v1" + int(self.n).to_bytes(width, "big") + int(self.h_s).to_bytes(width, "big")
        )
        return digest.hexdigest()[:16]

    def to_phe(self) -> paillier.PaillierPublicKey:
        return paillier.PaillierPublicKey(int(self.n))

    def check_same(self, other: "PublicKey", *, party: str | None = None) -> None:
        """Raise :class:`KeyMismatchError` unless ``other`` is this key."""
        if other.n != self.n or other.h_s != self.h_s:
            raise KeyMismatchError(
                f"{party or 'A party'} uses Paillier key {other.fingerprint} ({other.key_bits} bits) "
                f"but the session key is {self.fingerprint} ({self.key_bits} bits).",
                party=party,
            )

    def to_dict(self) -> dict:
        return {"n": str(int(self.n)), "h_s": str(int(self.h_s)), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: dict) -> "PublicKey":
        return cls(n=int(data["n"]), h_s=int(data["h_s"]))


class PrivateKey:
    """The coordinator's private key (wraps phe's CRT private key).

    ``repr`` and ``str`` never show the primes.
    """

    def __init__(self, public_key: PublicKey, phe_private_key: paillier.PaillierPrivateKey) -> None:
        if phe_private_key.public_key.n != public_key.n:
            raise KeyMismatchError("The private key does not belong to the given public key.")
        self.public_key = public_key
        self._sk = phe_private_key

    @property
    def phe(self) -> paillier.PaillierPrivateKey:
        """The underlying phe private key (for cross-checks against the reference)."""
        return self._sk

    def raw_decrypt(self, ciphertext: int) -> int:
        """CRT decryption to the residue in ``[0, n)`` (phe's own implementation)."""
        return self._sk.raw_decrypt(int(ciphertext))

    def __repr__(self) -> str:
        return f"PrivateKey(fingerprint={self.public_key.fingerprint}, key_bits={self.public_key.key_bits})"

    __str__ = __repr__

    def __reduce__(self):
        # Private keys must never be pickled (nothing is pickled between parties, and a
        # joblib worker has no business holding the key).
        raise TypeError("riskfed PrivateKey objects cannot be pickled")


def check_key_bits(key_bits: int, *, allow_insecure: bool = False, party: str | None = None) -> None:
    """Enforce the 2048-bit floor unless the explicit test-only flag is set."""
    if not isinstance(key_bits, int) or isinstance(key_bits, bool):
        raise ConfigurationError(f"The 'key_bits' parameter must be an int. Got {key_bits!r} instead.")
    if key_bits < MIN_KEY_BITS:
        if not allow_insecure:
            raise InsecureKeyError(
                f"A {key_bits}-bit Paillier key is below the {MIN_KEY_BITS}-bit floor. "
                "Shorter keys are for tests only: pass allow_insecure_key=True "
                "(CLI: --insecure-test-key) to use one.",
                party=party,
            )
        if key_bits < MIN_TEST_KEY_BITS:
            raise InsecureKeyError(
                f"A {key_bits}-bit key cannot hold masked gradients; test keys need at least "
                f"{MIN_TEST_KEY_BITS} bits.",
                party=party,
            )
    if key_bits % 2:
        raise ConfigurationError(f"The 'key_bits' parameter must be even. Got {key_bits} instead.")


def generate_keypair(
    key_bits: int = DEFAULT_KEY_BITS, *, allow_insecure_key: bool = False
) -> tuple[PublicKey, PrivateKey]:
    """Generate a Paillier key pair with the DJN fast-encryption base.

    Parameters
    ----------
    key_bits:
        Bit length of ``n``; at least 2048 unless ``allow_insecure_key``.
    allow_insecure_key:
        Test-only flag that admits shorter keys (never use it with real data).

    Returns
    -------
    (PublicKey, PrivateKey)

    Raises
    ------
    InsecureKeyError
        ``key_bits`` is below the floor without the test-only flag.

    Examples
    --------
    >>> pk, sk = generate_keypair(512, allow_insecure_key=True)
    >>> pk.key_bits
    512
    """
    check_key_bits(key_bits, allow_insecure=allow_insecure_key)
    while True:
        phe_pk, phe_sk = paillier.generate_paillier_keypair(n_length=key_bits)
        if int(phe_pk.n).bit_length() == key_bits:
            break
    n = gmpy2.mpz(phe_pk.n)
    n2 = n * n
    while True:
        x = gmpy2.mpz(secrets.randbelow(int(n) - 2) + 2)
        if gmpy2.gcd(x, n) == 1:
            break
    h = (-(x * x)) % n
    h_s = gmpy2.powmod(h, n, n2)
    public = PublicKey(n=int(n), h_s=int(h_s))
    return public, PrivateKey(public, phe_sk)
