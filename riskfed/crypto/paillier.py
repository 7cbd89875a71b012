"""Vectorised Paillier kernels over gmpy2 integers.

Pure functions: integers and numpy arrays in, integers out; no files, sockets or party
knowledge. Where the work is large they fan out over local cores with joblib (or a Dask
cluster through joblib's Dask backend, see :mod:`riskfed.crypto.parallel`).

What makes them fast (DESIGN §3):

* **DJN encryption** ``c = (1 + m*n) * h_s^r mod n^2`` with ``r`` of ``n_bits/2`` bits,
  and ``h_s^r`` from a fixed-base window table built once per key and process: one
  modular multiplication per ``window`` bits of ``r`` (79 at 2048 bits) instead of a
  2048-bit exponentiation. ``1 + m*n`` needs no reduction because ``m < n``.
* **Plaintext addition** multiplies by ``1 + m*n`` in two short products.
* **Decryption** only of masked aggregates, with phe's CRT implementation.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import gmpy2
import numpy as np

from riskfed.crypto.encoding import from_residue, to_residue
from riskfed.crypto.keys import PrivateKey, PublicKey
from riskfed.crypto import native as native_kernels
from riskfed.crypto.multiexp import small_pow
from riskfed.crypto.parallel import chunk_bounds, effective_jobs, run_chunks
from riskfed.errors import InvalidCiphertextError, ProtocolError, format_rows

mpz = gmpy2.mpz

# Table memory per key and process is windows * 2^window * entry bytes: at 2048 bits,
# 13-bit windows give 79 multiplications per encryption for ≈ 360 MB through gmpy2,
# 330 MB in the C table's 64-bit limbs and 410 MB in its 52-bit IFMA limbs (12 bits: 86
# multiplications for about half). The table costs windows * 2^window multiplications
# to build, so small workloads get smaller windows (see choose_window).
_TABLE_BUDGET_BYTES = 400 * 2**20
_MIN_PARALLEL_ITEMS = 256


@dataclass(frozen=True)
class _FixedBase:
    """``tables[i][d] = h_s^(d * 2^(window*i)) mod n^2``: the DJN randomness table (a
    tuple of rows, or the C kernel's table in Montgomery form)."""

    n: object
    n2: object
    window: int
    tables: tuple[tuple, ...]


def randomness_bits(public_key: PublicKey) -> int:
    """Bit length of the DJN exponent ``r`` (half the modulus, rounded up)."""
    return (public_key.key_bits + 1) // 2


def _entry_bytes(public_key: PublicKey, tables: int) -> int:
    """Bytes per table entry: one table modulo ``n^2``, or two modulo ``p^2`` and ``q^2``."""
    bits = public_key.n_squared.bit_length() if tables == 1 else public_key.key_bits
    if native_kernels.ENABLED:
        return native_kernels.table_entry_bytes(bits)
    return (bits + 7) // 8 + 48  # plus a gmpy2 object's header and the allocator's share


def choose_window(
    public_key: PublicKey,
    workload: int | None = None,
    budget_bytes: int = _TABLE_BUDGET_BYTES,
    *,
    tables: int = 1,
) -> int:
    """Fixed-base window (bits) for a process that will encrypt ``workload`` values.

    Minimises build plus use, ``windows * 2^window + workload * windows`` modular
    multiplications, among windows whose ``tables`` tables (1: modulo ``n^2``; 2: the key
    holder's modulo ``p^2`` and ``q^2``) fit ``budget_bytes``; ``None`` means a
    long-running workload (the largest window that fits). A process that already holds a
    table for the key keeps using it (see :func:`encrypt`).
    """
    r_bits = randomness_bits(public_key)
    width = tables * _entry_bytes(public_key, tables)
    best, best_cost = 4, None
    for window in range(4, 17):
        windows = -(-r_bits // window)
        if windows * (1 << window) * width > budget_bytes:
            continue
        cost = 0 if workload is None else windows * (1 << window) + workload * windows
        if best_cost is None or cost <= best_cost:
            best, best_cost = window, cost
    return best


_TABLE_CACHE: dict[tuple[int, int, int, str], _FixedBase] = {}


def fixed_base_table(n: int, h_s: int, window: int) -> _FixedBase:
    """Build (or fetch from this process's cache) the fixed-base table for ``h_s``.

    The table is derived from public values only, so caching it is safe. With the C
    kernels (:mod:`riskfed.crypto.native`) it is a C table: ≈ 8 % faster products at
    this modulus size, and a tenth less memory.
    """
    use_c = native_kernels.ENABLED
    key = (int(n), int(h_s), int(window), native_kernels.mode())
    table = _TABLE_CACHE.get(key)
    if table is not None:
        return table
    with _TABLE_LOCK:  # kernel threads asking at once wait for the first to build it
        table = _TABLE_CACHE.get(key)
        if table is None:
            table = _build_fixed_base(n, h_s, window, use_c, key)
    return table


_TABLE_LOCK = threading.Lock()


def _build_fixed_base(n: int, h_s: int, window: int, use_c: bool, key: tuple) -> _FixedBase:
    n_mpz = mpz(n)
    n2 = n_mpz * n_mpz
    r_bits = (n_mpz.bit_length() + 1) // 2
    count = -(-r_bits // window)
    rows = _native_table(n2, mpz(h_s) % n2, window, count, 1) if use_c else _python_table(n2, h_s, window, count)
    table = _FixedBase(n=n_mpz, n2=n2, window=window, tables=rows)
    # One key per session: keep only the latest key's tables so long-lived workers do not
    # accumulate tables of keys that are no longer used.
    for old in [k for k in _TABLE_CACHE if k[:2] != key[:2]]:
        del _TABLE_CACHE[old]
    _TABLE_CACHE[key] = table
    _tolerate_in_worker(count * (1 << window) * (n2.bit_length() // 8 + 48))
    return table


def cached_window(n: int, h_s: int) -> int | None:
    """Largest window of a table this process already holds for the key, if any."""
    windows = [k[2] for k in _TABLE_CACHE if k[:2] == (int(n), int(h_s)) and k[3] == native_kernels.mode()]
    return max(windows) if windows else None


def _tolerate_in_worker(table_bytes: int) -> None:
    """Tell a loky worker that a table is not a memory leak.

    loky restarts a worker whose memory grew by more than 300 MB after its first task,
    taking that for a leak; a restarted worker would rebuild its table. Raising the limit
    by the table's size keeps the check for real leaks. Outside a loky worker this only
    sets an unused module attribute.
    """
    try:
        from joblib.externals.loky import process_executor
    except ImportError:  # pragma: no cover - joblib always vendors loky
        return
    limit = getattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", None)
    if isinstance(limit, int):
        process_executor._MAX_MEMORY_LEAK_SIZE = max(limit, int(3e8) + table_bytes)


def _random_digits(count: int, windows: int, window: int) -> np.ndarray:
    """Uniform ``window``-bit digits of fresh randomness from the OS CSPRNG.

    Shape ``(windows, count)``: window-major, so the kernel walks one table row at a time.
    """
    raw = np.frombuffer(secrets.token_bytes(count * windows * 2), dtype=np.uint16)
    return (raw & np.uint16((1 << window) - 1)).reshape(windows, count)


# Encryptions are computed in batches, one table row at a time across the batch, and
# within a row in increasing digit order: the row (2^window entries of |n^2| bytes) is
# then streamed through the cache once per batch, where walking one encryption through
# every row would miss the cache on almost every lookup (≈ 20 % of the time at 13 bits).
_ENCRYPT_BATCH = 2048


def _table_products(tables: Sequence, modulus, digits: np.ndarray) -> list:
    """``Π_i tables[i][digits[i, k]] mod modulus`` for each column ``k`` (``None``: all zero)."""
    acc: list = [tables[0][d] if d else None for d in digits[0].tolist()]
    order = np.argsort(digits[1:], axis=1)
    ordered = np.take_along_axis(digits[1:], order, axis=1)
    for row, ds, idx in zip(tables[1:], ordered.tolist(), order.tolist()):
        for i, d in zip(idx, ds):
            if d:
                a = acc[i]
                acc[i] = row[d] if a is None else a * row[d] % modulus
    return acc


def _products(tables, modulus, digits: np.ndarray) -> list:
    """``Π_i tables[i][digits[i, k]] mod modulus`` for each column ``k``, from either kind
    of table (gmpy2 rows, or the C kernel's; ``None`` or 1 stands for an all-zero column)."""
    if isinstance(tables, tuple):
        return _table_products(tables, modulus, digits)
    count = digits.shape[1]
    with native_kernels.refusals("products"):
        blob = tables.products(np.ascontiguousarray(digits, dtype="<u2").tobytes(), count)
    return native_kernels.residues(blob, tables.limbs * 8)


def _rows(tables) -> int:
    """Digits per exponent that either kind of table covers."""
    return len(tables) if isinstance(tables, tuple) else tables.rows


def _randomizers(fb: _FixedBase, count: int) -> list:
    """``count`` fresh ``h_s^r mod n^2`` with uniform ``r`` of ``window * rows`` bits."""
    return _products(fb.tables, fb.n2, _random_digits(count, _rows(fb.tables), fb.window))


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


# -- randomness made by the key holder ------------------------------------------------
_CRT_CACHE: dict[tuple, tuple] = {}
_CRT_LOCK = threading.Lock()


def _crt_tables(p: int, q: int, h_s: int, window: int, *, threads: int = 1) -> tuple:
    """Fixed-base tables of ``h_s`` modulo ``p^2`` and ``q^2`` (secret: they reveal p).

    With the C kernels (:mod:`riskfed.crypto.native`) they are C tables in Montgomery
    form, built by ``threads`` threads and shareable by any number of threads; otherwise
    gmpy2 rows. One table set per process; threads asking at once wait for the first to
    build it.
    """
    native = native_kernels.ENABLED
    key = (int(p) * int(q), int(h_s), int(window), native_kernels.mode())
    with _CRT_LOCK:
        cached = _CRT_CACHE.get(key)
        if cached is not None:
            return cached
        p2, q2 = mpz(p) ** 2, mpz(q) ** 2
        r_bits = ((mpz(p) * mpz(q)).bit_length() + 1) // 2
        count = -(-r_bits // window)
        out = [_native_table(m, mpz(h_s) % m, window, count, threads) if native else _python_table(m, h_s, window, count) for m in (p2, q2)]
        _CRT_CACHE.clear()
        _CRT_CACHE[key] = (p2, q2, gmpy2.invert(q2, p2), out[0], out[1])
        if not native:
            _tolerate_in_worker(2 * count * (1 << window) * (p2.bit_length() // 8 + 48))
        return _CRT_CACHE[key]


def _python_table(modulus, h_s: int, window: int, count: int) -> tuple:
    """``count`` rows ``(None, b, b^2, …, b^(2^window − 1))`` with ``b = h_s^(2^(window·i))``."""
    base, tables = mpz(h_s) % modulus, []
    for _ in range(count):
        row = [None, base]
        for _d in range(2, 1 << window):
            row.append(row[-1] * base % modulus)
        tables.append(tuple(row))
        base = row[-1] * base % modulus  # base^(2^window)
    return tuple(tables)


def _native_table(modulus, base, window: int, count: int, threads: int):
    """The C kernel's table of ``base`` modulo ``modulus``; ``threads`` threads fill it."""
    width = (modulus.bit_length() + 7) // 8
    with native_kernels.refusals("Table"):
        table = native_kernels.kernels.Table(
            int(modulus).to_bytes(width, "little"), int(base).to_bytes(width, "little"), window, count, ifma=int(native_kernels.use_ifma(modulus))
        )
    if threads <= 1:
        table.fill(0, count)
        return table
    # Rows are independent once their bases are known, and fill() releases the GIL.
    from concurrent.futures import ThreadPoolExecutor

    cuts = [count * k // threads for k in range(threads + 1)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(table.fill, cuts[:-1], cuts[1:]))
    return table


def _crt_products(tables: tuple, digits: np.ndarray) -> list:
    """Randomizers ``h_s^r mod n^2`` for the exponents whose digits are ``digits``."""
    p2, q2, q2_inv, tables_p, tables_q = tables
    rps, rqs = _products(tables_p, p2, digits), _products(tables_q, q2, digits)
    out = []
    for rp, rq in zip(rps, rqs):
        rp = mpz(1) if rp is None else rp
        rq = mpz(1) if rq is None else rq
        out.append(rq + q2 * ((rp - rq) * q2_inv % p2))
    return out


def crt_randomizers(p: int, q: int, h_s: int, count: int, window: int, *, threads: int = 1) -> list:
    """``count`` fresh DJN randomizers ``h_s^r mod n^2``, made with the factorisation.

    The distribution is exactly :func:`encrypt`'s (``r`` uniform over ``window * rows``
    ≥ ``n_bits/2`` bits, from the OS CSPRNG); the products are taken modulo ``p^2`` and
    ``q^2`` — multiplications a third as costly — and joined by the Chinese remainder
    theorem, in C where the extension is built (:mod:`riskfed.crypto.native`). Only the key holder can
    run this; its tables reveal ``p`` and never leave the key holder's own process.
    ``threads`` only speeds up building the tables (the first call per key).
    """
    tables = _crt_tables(p, q, h_s, window, threads=threads)
    rows = _rows(tables[3])
    out: list = []
    for start in range(0, count, _ENCRYPT_BATCH):
        out.extend(_crt_products(tables, _random_digits(min(_ENCRYPT_BATCH, count - start), rows, window)))
    return out


def crt_window(public_key: PublicKey, workload: int | None = None) -> int:
    """Window for :func:`crt_randomizers`: two tables of half-width entries."""
    return choose_window(public_key, workload, tables=2)


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
