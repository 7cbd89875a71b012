"""Vectorised Paillier kernels over gmpy2 integers.

Pure functions: integers and numpy arrays in, integers out; no files, sockets or party
knowledge. Where the work is large they fan out over local cores with joblib (or a Dask
cluster through joblib's Dask backend, see :mod:`riskfed.crypto.parallel`).

What makes them fast (DESIGN §3):

* **DJN encryption** ``c = (1 + m*n) * h_s^r mod n^2`` with ``r`` of ``n_bits/2`` bits,
  and ``h_s^r`` from a fixed-base window table built once per key and process: one
  modular multiplication per ``window`` bits of ``r`` (≈ 86 at 2048 bits) instead of a
  2048-bit exponentiation. ``1 + m*n`` needs no reduction because ``m < n``.
* **Plaintext addition** is a single multiplication by ``1 + m*n``.
* **Decryption** only of masked aggregates, with phe's CRT implementation.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import gmpy2
import numpy as np

from riskfed.crypto.encoding import from_residue, to_residue
from riskfed.crypto.keys import PrivateKey, PublicKey
from riskfed.crypto.parallel import chunk_bounds, run_chunks
from riskfed.errors import InvalidCiphertextError, ProtocolError, format_rows

mpz = gmpy2.mpz

# Table memory per key and process is windows * 2^window * |n^2| bytes. 11 bits gives
# ≈ 94 multiplications per encryption for ≈ 105 MB at 2048 bits. Larger tables are a
# few per cent faster but push a worker past loky's 300 MB "memory leak" threshold, and a
# restarted worker must rebuild its table.
_TABLE_BUDGET_BYTES = 128 * 2**20
_MIN_PARALLEL_ITEMS = 256


@dataclass(frozen=True)
class _FixedBase:
    """``tables[i][d] = h_s^(d * 2^(window*i)) mod n^2``: the DJN randomness table."""

    n: object
    n2: object
    window: int
    tables: tuple[tuple, ...]


def randomness_bits(public_key: PublicKey) -> int:
    """Bit length of the DJN exponent ``r`` (half the modulus, rounded up)."""
    return (public_key.key_bits + 1) // 2


def choose_window(public_key: PublicKey, budget_bytes: int = _TABLE_BUDGET_BYTES) -> int:
    """Largest window whose table fits the memory budget (fewest multiplications)."""
    r_bits = randomness_bits(public_key)
    width = public_key.ciphertext_bytes + 32  # gmpy2 object overhead
    best = 4
    for window in range(4, 17):
        windows = -(-r_bits // window)
        if windows * (1 << window) * width <= budget_bytes:
            best = window
    return best


_TABLE_CACHE: dict[tuple[int, int, int], _FixedBase] = {}


def fixed_base_table(n: int, h_s: int, window: int) -> _FixedBase:
    """Build (or fetch from this process's cache) the fixed-base table for ``h_s``.

    The table is derived from public values only, so caching it is safe.
    """
    key = (int(n), int(h_s), int(window))
    table = _TABLE_CACHE.get(key)
    if table is not None:
        return table
    n_mpz = mpz(n)
    n2 = n_mpz * n_mpz
    r_bits = (n_mpz.bit_length() + 1) // 2
    count = -(-r_bits // window)
    tables = []
    base = mpz(h_s)
    for _ in range(count):
        row = [None, base]
        for _d in range(2, 1 << window):
            row.append(row[-1] * base % n2)
        tables.append(tuple(row))
        base = row[-1] * base % n2  # base^(2^window)
    table = _FixedBase(n=n_mpz, n2=n2, window=window, tables=tuple(tables))
    # One key per session: keep only the latest table so long-lived workers do not
    # accumulate tables of keys that are no longer used.
    _TABLE_CACHE.clear()
    _TABLE_CACHE[key] = table
    return table


def _random_digits(count: int, windows: int, window: int) -> list[list[int]]:
    """Uniform ``window``-bit digits of fresh randomness from the OS CSPRNG."""
    raw = np.frombuffer(secrets.token_bytes(count * windows * 2), dtype=np.uint16)
    return (raw & np.uint16((1 << window) - 1)).reshape(count, windows).tolist()


def _encrypt_chunk(n: int, h_s: int, window: int, residues: Sequence[int]) -> list:
    fb = fixed_base_table(n, h_s, window)
    n_mpz, n2, tables = fb.n, fb.n2, fb.tables
    out = []
    for m, digits in zip(residues, _random_digits(len(residues), len(tables), window)):
        acc = None
        for row, d in zip(tables, digits):
            if d:
                acc = row[d] if acc is None else acc * row[d] % n2
        g_m = 1 + mpz(m) * n_mpz  # (1+n)^m = 1 + m*n mod n^2, already reduced (m < n)
        out.append(g_m if acc is None else acc * g_m % n2)
    return out


def encrypt(
    public_key: PublicKey,
    values: Sequence[int] | np.ndarray,
    *,
    n_jobs: int = 1,
    window: int | None = None,
) -> list:
    """Encrypt signed integers (already fixed-point encoded).

    Parameters
    ----------
    public_key:
        The session key.
    values:
        Signed integers with ``|v| < n/2``; negatives become ``n - |v|``.
    n_jobs:
        Worker processes (joblib semantics; ``-1`` = all cores).
    window:
        Fixed-base window in bits (default: :func:`choose_window`).

    Returns
    -------
    list of gmpy2.mpz ciphertexts, one per value; fresh randomness for each.

    Examples
    --------
    >>> from riskfed.crypto.keys import generate_keypair
    >>> pk, sk = generate_keypair(512, allow_insecure_key=True)
    >>> decrypt(sk, encrypt(pk, [5, -3]))
    [5, -3]
    """
    n = int(public_key.n)
    residues = [to_residue(int(v), n) for v in (values.tolist() if isinstance(values, np.ndarray) else values)]
    window = window or choose_window(public_key)
    h_s = int(public_key.h_s)
    parts = run_chunks(
        _encrypt_chunk,
        [(n, h_s, window, residues[a:b]) for a, b in chunk_bounds(len(residues), n_jobs, _MIN_PARALLEL_ITEMS)],
        n_jobs=n_jobs,
    )
    return [c for part in parts for c in part]


def add_plain(public_key: PublicKey, ciphertexts: Sequence, values: Sequence[int] | np.ndarray) -> list:
    """``[[a_i]] ⊕ b_i`` for each i: one multiplication by ``1 + b_i*n``."""
    n = mpz(public_key.n)
    n2 = public_key.n_squared
    vals = values.tolist() if isinstance(values, np.ndarray) else values
    if len(vals) != len(ciphertexts):
        raise ValueError("add_plain needs one plaintext per ciphertext")
    return [c * (1 + (mpz(v) % n) * n) % n2 for c, v in zip(ciphertexts, vals)]


def _scalar_mul_chunk(n2, ciphertexts: Sequence, scalars: list[int]) -> list:
    powmod = gmpy2.powmod
    return [powmod(c, k, n2) if k != 1 else c for c, k in zip(ciphertexts, scalars)]


def scalar_mul(public_key: PublicKey, ciphertexts: Sequence, scalars: Sequence[int] | np.ndarray, *, n_jobs: int = 1) -> list:
    """``[[k_i * a_i]] = c_i^{k_i}`` for small signed integers ``k_i``.

    Short exponents (expansion coefficients have at most 10 bits) make this a dozen
    multiplications per element; a negative ``k`` inverts the ciphertext once. Large
    vectors are split across workers.
    """
    ks = scalars.tolist() if isinstance(scalars, np.ndarray) else list(scalars)
    if len(ks) != len(ciphertexts):
        raise ValueError("scalar_mul needs one scalar per ciphertext")
    n2 = public_key.n_squared
    cs = list(ciphertexts)
    parts = run_chunks(
        _scalar_mul_chunk,
        [(n2, cs[a:b], ks[a:b]) for a, b in chunk_bounds(len(cs), n_jobs, 2 * _MIN_PARALLEL_ITEMS)],
        n_jobs=n_jobs,
    )
    return [c for part in parts for c in part]


def add_encrypted(public_key: PublicKey, *vectors: Sequence) -> list:
    """Element-wise homomorphic sum of several ciphertext vectors of equal length."""
    n2 = public_key.n_squared
    if len({len(v) for v in vectors}) > 1:
        raise ValueError("add_encrypted needs vectors of equal length")
    out = list(vectors[0])
    for vec in vectors[1:]:
        out = [a * b % n2 for a, b in zip(out, vec)]
    return out


def add_scalars(public_key: PublicKey, ciphertexts: Sequence) -> object:
    """Homomorphic sum of all ciphertexts in a vector (one ciphertext out)."""
    n2 = public_key.n_squared
    acc = mpz(1)
    for c in ciphertexts:
        acc = acc * c % n2
    return acc


def slots_per_ciphertext(public_key: PublicKey, slot_bits: int) -> int:
    """How many ``slot_bits``-wide non-negative values one plaintext holds without overflow."""
    return max(1, (public_key.key_bits - 2) // slot_bits)


def pack(public_key: PublicKey, ciphertexts: Sequence, slot_bits: int) -> list:
    """Pack encrypted non-negative values ``v_j < 2^slot_bits`` into few ciphertexts.

    ``[[Σ_j v_j 2^(slot_bits·j)]]`` by Horner's rule: ``slot_bits`` squarings per packed
    value, against a full decryption (two 1024-bit exponentiations) saved for each.
    Used for masked gradients, so the coordinator decrypts a handful of values per round.
    """
    n2 = public_key.n_squared
    per = slots_per_ciphertext(public_key, slot_bits)
    out = []
    for start in range(0, len(ciphertexts), per):
        group = list(ciphertexts[start : start + per])
        acc = group[-1]
        for c in reversed(group[:-1]):
            for _ in range(slot_bits):
                acc = acc * acc % n2
            acc = acc * c % n2
        out.append(acc)
    return out


def unpack(values: Sequence[int], count: int, slot_bits: int, public_key: PublicKey) -> list[int]:
    """Split decrypted packed plaintexts back into ``count`` slot values."""
    per = slots_per_ciphertext(public_key, slot_bits)
    mask = (1 << slot_bits) - 1
    out: list[int] = []
    for v in values:
        v = int(v)
        for _ in range(min(per, count - len(out))):
            out.append(v & mask)
            v >>= slot_bits
    return out


def decrypt(private_key: PrivateKey, ciphertexts: Sequence, *, signed: bool = True) -> list[int]:
    """Decrypt with phe's CRT implementation; map residues above ``n/2`` to negatives."""
    n = int(private_key.public_key.n)
    plain = [private_key.raw_decrypt(int(c)) for c in ciphertexts]
    return [from_residue(m, n) for m in plain] if signed else plain


def check_ciphertexts(
    public_key: PublicKey, ciphertexts: Sequence, *, party: str | None = None, full: bool = False
) -> None:
    """Refuse ciphertexts outside ``Z*_{n^2}``.

    The range check (``0 < c < n^2``) is cheap and always done; ``full`` adds the
    ``gcd(c, n) = 1`` test (≈ 13 µs each), used by the coordinator on what it decrypts.
    """
    n2 = public_key.n_squared
    n = mpz(public_key.n)
    bad = [i for i, c in enumerate(ciphertexts) if not (0 < c < n2)]
    if full and not bad:
        bad = [i for i, c in enumerate(ciphertexts) if gmpy2.gcd(c, n) != 1]
    if bad:
        raise InvalidCiphertextError(
            f"{party or 'A peer'} sent {len(bad)} ciphertext(s) outside Z*_(n^2) at position(s) "
            f"{format_rows(bad)}; refusing them.",
            party=party,
            rows=bad,
        )


def to_bytes(public_key: PublicKey, ciphertexts: Sequence) -> bytes:
    """Fixed-width big-endian encoding of a ciphertext vector (the wire format)."""
    width = public_key.ciphertext_bytes
    return b"".join(mpz(c).to_bytes(width, "big") for c in ciphertexts)


def from_bytes(public_key: PublicKey, blob: bytes, *, count: int | None = None, party: str | None = None) -> list:
    """Decode :func:`to_bytes` output, checking length and range."""
    width = public_key.ciphertext_bytes
    if len(blob) % width or (count is not None and len(blob) != count * width):
        expected = f"{count} ciphertexts of {width} bytes" if count is not None else f"a multiple of {width} bytes"
        raise ProtocolError(
            f"{party or 'A peer'} sent {len(blob)} bytes of ciphertexts; expected {expected}.", party=party
        )
    frm = mpz.from_bytes
    out = [frm(blob[i : i + width], "big") for i in range(0, len(blob), width)]
    check_ciphertexts(public_key, out, party=party)
    return out
