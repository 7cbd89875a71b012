"""Vectorised Paillier kernels over gmpy2 integers.

Pure functions: integers and numpy arrays in, integers out; no files, sockets or party
knowledge. Where the work is large they fan out over local cores with joblib (or a Dask
cluster through joblib's Dask backend, see :mod:`riskfed.crypto.parallel`). Encryption
is DJN's ``(1 + m·n) · h_s^r mod n²`` with randomizers from :mod:`riskfed.crypto.randomness`;
only masked aggregates are ever decrypted. docs/design.md ("Making Paillier fast") says
what makes them fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import gmpy2
import numpy as np

from riskfed.crypto import native as native_kernels
from riskfed.crypto.encoding import from_residue, to_residue
from riskfed.crypto.keys import PrivateKey, PublicKey
from riskfed.crypto.multiexp import small_pow
from riskfed.crypto.parallel import chunk_bounds, effective_jobs, run_chunks
from riskfed.crypto.randomness import (  # noqa: F401 - also re-exported: riskfed.crypto.paillier.<name>
    _CRT_CACHE,
    _ENCRYPT_BATCH,
    _TABLE_CACHE,
    _FixedBase,
    _native_table,
    _products,
    _randomizers,
    cached_window,
    choose_window,
    crt_randomizers,
    crt_window,
    fixed_base_table,
    randomness_bits,
)
from riskfed.errors import InvalidCiphertextError, ProtocolError, format_rows

mpz = gmpy2.mpz

_MIN_PARALLEL_ITEMS = 256


def _seal(m: int, r, n_mpz, n2):
    """``(1 + m*n) * r mod n^2`` as ``r + n * (m*r mod n)``: two short products instead
    of a full multiplication modulo ``n^2`` (``r = None`` stands for 1)."""
    m = mpz(m)
    if r is None:  # every digit zero: probability 2^-(n_bits/2)
        return 1 + m * n_mpz
    c = r + n_mpz * (m * r % n_mpz)
    return c - n2 if c >= n2 else c


def _encrypt_chunk(n: int, h_s: int, window: int, residues: Sequence[int]) -> list:
    fb = fixed_base_table(n, h_s, window)
    out: list = []
    for start in range(0, len(residues), _ENCRYPT_BATCH):
        batch = residues[start : start + _ENCRYPT_BATCH]
        out.extend(_seal(m, r, fb.n, fb.n2) for m, r in zip(batch, _randomizers(fb, len(batch))))
    return out


def encrypt_with(public_key: PublicKey, values: Sequence[int] | np.ndarray, randomizers: Sequence) -> list:
    """Encrypt signed integers with randomizers from the key holder, one each, used once.

    ``(1 + m*n) · ρ`` costs two short products: the expensive part of an encryption,
    ``ρ = h_s^r``, was made by the coordinator (see :func:`crt_randomizers`).

    Examples
    --------
    >>> from riskfed.crypto.keys import generate_keypair
    >>> pk, sk = generate_keypair(512, allow_insecure_key=True)
    >>> rho = crt_randomizers(sk.phe.p, sk.phe.q, pk.h_s, 2, 6)
    >>> decrypt(sk, encrypt_with(pk, [5, -3], rho))
    [5, -3]
    """
    vals = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if len(randomizers) != len(vals):
        raise ValueError(f"encrypt_with needs one randomizer per value ({len(vals)}); got {len(randomizers)}")
    n_mpz, n2 = mpz(public_key.n), public_key.n_squared
    n = int(public_key.n)
    return [_seal(to_residue(int(v), n), mpz(r), n_mpz, n2) for v, r in zip(vals, randomizers)]


def _table_workload(workload: int | None, bounds: list, n_jobs: int, threads: bool) -> int:
    """Encryptions one fixed-base table will serve: the whole ``workload`` when this
    process's threads share the table, a worker's share when each worker process builds
    its own, and without a workload this call's largest chunk."""
    if workload is None:
        return max((b - a for a, b in bounds), default=0)
    return workload if threads else workload // effective_jobs(n_jobs)


def encrypt(
    public_key: PublicKey,
    values: Sequence[int] | np.ndarray,
    *,
    n_jobs: int = 1,
    window: int | None = None,
    workload: int | None = None,
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
        Fixed-base window in bits (default: :func:`choose_window` for ``workload``).
    workload:
        How many values this party expects to encrypt under this key over the session,
        which sizes the fixed-base table (default: this call's largest chunk). Threads
        share one table; worker processes build one each, sized for their share.

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
    h_s = int(public_key.h_s)
    bounds = chunk_bounds(len(residues), n_jobs, _MIN_PARALLEL_ITEMS)
    # The C table's products release the GIL: the chunks run on this process's threads,
    # which share one table (gmpy2's go to worker processes, one table each).
    threads = native_kernels.ENABLED
    if window is None:
        window = choose_window(public_key, _table_workload(workload, bounds, n_jobs, threads))
        held = cached_window(n, h_s) if len(bounds) == 1 or threads else None
        if held is not None and (workload is None or held >= window):
            window = held  # in-process: a table this process already built is free
    parts = run_chunks(_encrypt_chunk, [(n, h_s, window, residues[a:b]) for a, b in bounds], n_jobs=n_jobs, threads=threads)
    return [c for part in parts for c in part]


def add_plain(public_key: PublicKey, ciphertexts: Sequence, values: Sequence[int] | np.ndarray) -> list:
    """``[[a_i]] ⊕ b_i`` for each i: ``[[a_i]] · (1 + b_i*n)``, by the same two short
    products an encryption uses (:func:`_seal`). The result keeps ``[[a_i]]``'s
    randomness: use it only on ciphertexts whose randomness the recipient does not know
    (masks on a party's own gradient), never to return another party's ciphertexts."""
    n = mpz(public_key.n)
    n2 = public_key.n_squared
    vals = values.tolist() if isinstance(values, np.ndarray) else values
    if len(vals) != len(ciphertexts):
        raise ValueError("add_plain needs one plaintext per ciphertext")
    return [_seal(mpz(v) % n, mpz(c), n, n2) for c, v in zip(ciphertexts, vals)]


def _batch_invert(values: list, n2) -> list:
    """Inverses of ``values`` mod ``n2`` with one inversion and three multiplications each."""
    prefix, acc = [], mpz(1)
    for v in values:
        acc = acc * v % n2
        prefix.append(acc)
    try:
        inv = gmpy2.invert(acc, n2)
    except ZeroDivisionError:
        raise InvalidCiphertextError("A ciphertext is not invertible modulo n^2; refusing it.") from None
    out = [None] * len(values)
    for k in range(len(values) - 1, 0, -1):
        out[k] = inv * prefix[k - 1] % n2
        inv = inv * values[k] % n2
    if values:
        out[0] = inv
    return out


def _double_pow(a, x: int, b, y: int, n2):
    """``a^x · b^y mod n2`` for short ``x, y ≥ 0`` with shared squarings (Shamir's trick)."""
    if not y:
        return small_pow(a, x, n2) if x else None
    if not x:
        return small_pow(b, y, n2)
    ab = a * b % n2
    acc = None
    for i in range(max(x.bit_length(), y.bit_length()) - 1, -1, -1):
        if acc is not None:
            acc = acc * acc % n2
        bx, by = (x >> i) & 1, (y >> i) & 1
        f = (ab if by else a) if bx else (b if by else None)
        if f is not None:
            acc = f if acc is None else acc * f % n2
    return acc


def _affine_chunk(n: int, h_s: int, window: int, bases: list, scalars: list, constants: list, randomizers=None) -> list:
    n_mpz = mpz(n)
    n2 = n_mpz * n_mpz
    terms = []
    for cs, ks in zip(bases, scalars):
        negative = [i for i, k in enumerate(ks) if k < 0]
        if negative:  # c^(-k) = (c^-1)^k: one batch inversion for the whole chunk
            cs = list(cs)
            for i, inv in zip(negative, _batch_invert([cs[i] for i in negative], n2)):
                cs[i] = inv
            ks = [abs(k) for k in ks]
        terms.append((cs, ks))
    if randomizers is None:
        fresh = _encrypt_chunk(n, h_s, window, constants)
    else:
        fresh = [_seal(m, mpz(r), n_mpz, n2) for m, r in zip(constants, randomizers)]
    # The kernel takes int64 exponents; longer ones (never made by riskfed) stay in gmpy2.
    if native_kernels.use_ifma(n2) and fresh and all(max(ks, default=0) < 1 << 63 for _, ks in terms):
        return _native_affine(n2, fresh, terms)
    if len(terms) == 1:
        (a, x), = terms
        powers = [small_pow(c, k, n2) if k else None for c, k in zip(a, x)]
    else:
        (a, x), (b, y) = terms
        powers = [_double_pow(*args, n2) for args in zip(a, x, b, y)]
    return [e if p is None else e * p % n2 for e, p in zip(fresh, powers)]


def _native_affine(n2, fresh: list, terms: list) -> list:
    """:func:`_affine_chunk`'s products by the C kernel (AVX-512 IFMA, eight rows at a
    time): ``fresh_i · Π_k a_ki^{s_ki}`` for non-negative ``s``."""
    modulus, width = native_kernels.modulus_bytes(n2)
    (a, x), *rest = terms
    b, y = rest[0] if rest else ((), ())
    with native_kernels.refusals("affine"):
        u, v, f = (native_kernels.residue_bytes(cs, width) for cs in (a, b, fresh))
        exps = [np.asarray(e, dtype="<i8").tobytes() for e in (x, y)]
        blob = native_kernels.kernels.affine(modulus, f, u, v, exps[0], exps[1], len(fresh))
    return native_kernels.residues(blob, width)


def affine(
    public_key: PublicKey,
    terms: Sequence[tuple[Sequence, Sequence[int] | np.ndarray]],
    constants: Sequence[int] | np.ndarray,
    *,
    n_jobs: int = 1,
    workload: int | None = None,
    randomizers: Sequence | None = None,
) -> list:
    """Fresh encryptions of ``Σ_k s_ki · a_ki + c_i``, row by row.

    Parameters
    ----------
    public_key:
        The session key.
    terms:
        One or two pairs ``(ciphertexts [[a_k]], signed short integers s_k)``.
    constants:
        Signed integers ``c_i``, one per row.
    n_jobs, workload:
        As for :func:`encrypt`.
    randomizers:
        One fresh randomizer per row from the key holder (:func:`crt_randomizers`), used
        instead of making new ones here.

    Each output is ``Enc(c_i) · Π_k [[a_ki]]^{s_ki}`` with ``Enc(c_i)`` a fresh
    encryption: its randomness is new, so whoever made the ``[[a_k]]`` — and knows their
    randomness — cannot strip it off and solve for the short ``s_ki`` and then ``c_i``.
    Without that refresh the result would carry only randomness the sender of ``[[a_k]]``
    chose. Two terms share their squarings (Shamir's trick); negative scalars invert
    their bases with one batch inversion per chunk.

    Examples
    --------
    >>> from riskfed.crypto.keys import generate_keypair
    >>> pk, sk = generate_keypair(512, allow_insecure_key=True)
    >>> u, v = encrypt(pk, [2, 3]), encrypt(pk, [5, -1])
    >>> decrypt(sk, affine(pk, [(u, [4, 1]), (v, [-1, 0])], [10, 0]))
    [13, 3]
    """
    n = int(public_key.n)
    rows = len(constants)
    if not 1 <= len(terms) <= 2:
        raise ValueError("affine takes one or two (ciphertexts, scalars) terms")
    bases, scalars = [], []
    for cs, ks in terms:
        ks = ks.tolist() if isinstance(ks, np.ndarray) else list(ks)
        if len(cs) != rows or len(ks) != rows:
            raise ValueError("affine needs one ciphertext and one scalar per constant")
        bases.append(list(cs))
        scalars.append([int(k) for k in ks])
    residues = [to_residue(int(v), n) for v in (constants.tolist() if isinstance(constants, np.ndarray) else constants)]
    if randomizers is not None and len(randomizers) != rows:
        raise ValueError("affine needs one randomizer per constant")
    bounds = chunk_bounds(rows, n_jobs, _MIN_PARALLEL_ITEMS)
    threads = native_kernels.use_ifma(public_key.n_squared)  # the IFMA kernel releases the GIL
    window = choose_window(public_key, _table_workload(workload, bounds, n_jobs, threads))
    h_s = int(public_key.h_s)
    parts = run_chunks(
        _affine_chunk,
        [
            (
                n,
                h_s,
                window,
                [cs[a:b] for cs in bases],
                [ks[a:b] for ks in scalars],
                residues[a:b],
                None if randomizers is None else list(randomizers[a:b]),
            )
            for a, b in bounds
        ],
        n_jobs=n_jobs,
        threads=threads,
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
    With the IFMA kernel (:mod:`riskfed.crypto.native`) and enough values, eight packed
    ciphertexts are built at once.
    """
    n2 = public_key.n_squared
    per = slots_per_ciphertext(public_key, slot_bits)
    runs = -(-len(ciphertexts) // per)
    # The IFMA kernel packs eight runs at a time at about 2.2 times a gmpy2 squaring's
    # cost: it pays from three full runs on (a wide party's hundreds of values).
    if native_kernels.use_ifma(n2) and -(-runs // 8) * (per - 1) * 2.2 < len(ciphertexts) - runs:
        modulus, width = native_kernels.modulus_bytes(n2)
        with native_kernels.refusals("pack"):
            cts = native_kernels.residue_bytes(ciphertexts, width)
            blob = native_kernels.kernels.pack(modulus, cts, len(ciphertexts), per, slot_bits)
        return native_kernels.residues(blob, width)
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
