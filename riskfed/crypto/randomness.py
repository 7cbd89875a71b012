"""DJN randomness ``h_s^r mod n²``: the fixed-base tables and the key holder's CRT randomizers.

Every encryption needs a fresh randomizer ``h_s^r`` with ``r`` of ``n_bits/2`` bits.
From a fixed-base window table built once per key and process it costs one modular
multiplication per ``window`` bits of ``r`` instead of a full exponentiation; the key
holder, which knows ``p`` and ``q``, makes them modulo ``p²`` and ``q²`` (a third of the
cost) and joins them by the Chinese remainder theorem. docs/design.md ("Making Paillier
fast") says why these choices.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import gmpy2
import numpy as np

from riskfed.crypto import native as native_kernels
from riskfed.crypto.keys import PublicKey

mpz = gmpy2.mpz

# Table memory per key and process is windows * 2^window * entry bytes: at 2048 bits,
# 13-bit windows give 79 multiplications per encryption for ≈ 360 MB through gmpy2,
# 330 MB in the C table's 64-bit limbs and 410 MB in its 52-bit IFMA limbs (12 bits: 86
# multiplications for about half). The table costs windows * 2^window multiplications
# to build, so small workloads get smaller windows (see choose_window).
_TABLE_BUDGET_BYTES = 400 * 2**20


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
