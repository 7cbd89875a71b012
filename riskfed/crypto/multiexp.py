"""Encrypted matrix–vector products by bucket multi-exponentiation.

The encrypted gradient of feature j is ``Σ_i x_ij [[e_i]] = Π_i c_i^{x_ij} mod n^2``
with small fixed-point integers ``x_ij``. Instead of a full exponentiation per term,
every ``c_i`` is multiplied into a *bucket* (one modular multiplication per term) and the
buckets are folded: window buckets (Pippenger: about two multiplications per term for
uniform 14-bit exponents), value buckets (about one per term for the categorical and
integer-valued features that make up most of a credit file), bit planes shared by many
columns (:func:`_by_planes`), or — on CPUs with AVX-512 IFMA — the C kernel's window
buckets for eight columns at a time (:func:`multiexp_many`). Each column is split by
sign (``Π c^x = P · N^{-1}``); each part takes whichever method its cost model says is
cheaper. The methods and their costs: docs/design.md ("Multi-exponentiation").
"""

from __future__ import annotations

from collections.abc import Sequence

import gmpy2
import numpy as np

from riskfed.crypto import native
from riskfed.crypto.keys import PublicKey
from riskfed.crypto.parallel import effective_jobs, run_chunks
from riskfed.errors import EncodingOverflowError

mpz = gmpy2.mpz

def _window_cost(bits: int, rows: int) -> tuple[int, int]:
    """Cheapest window for the bucket method and its cost in multiplications."""
    best_w, best_cost = 1, None
    for w in range(1, min(bits, 16) + 1):
        windows = -(-bits // w)
        cost = windows * (rows + (2 << w)) + bits
        if best_cost is None or cost < best_cost:
            best_w, best_cost = w, cost
    return best_w, best_cost


def _pow_cost(gap: np.ndarray) -> np.ndarray:
    """Multiplications for ``S^gap`` by square-and-multiply (0 for ``gap == 1``)."""
    bits = np.floor(np.log2(np.maximum(gap, 1))).astype(np.int64)
    ones = np.zeros_like(gap)
    g = gap.copy()
    while np.any(g):
        ones += g & 1
        g >>= 1
    return bits + ones - 1


def small_pow(base, e: int, n2):
    """``base^e mod n^2`` for a short ``e`` (square-and-multiply, no Montgomery set-up)."""
    if e > 1 << 16:
        return gmpy2.powmod(base, e, n2)
    acc = base
    for bit in bin(e)[3:]:
        acc = acc * acc % n2
        if bit == "1":
            acc = acc * base % n2
    return acc


def _window_product(cs: Sequence, digits: list[int], top: int, n2) -> object | None:
    """``Π_d B_d^d`` where ``B_d`` is the product of the ``c_i`` whose digit is ``d``."""
    buckets: list = [None] * (top + 1)
    for c, d in zip(cs, digits):
        if d:
            b = buckets[d]
            buckets[d] = c if b is None else b * c % n2
    running = acc = None
    for d in range(top, 0, -1):
        b = buckets[d]
        if b is not None:
            running = b if running is None else running * b % n2
        if running is not None:
            acc = running if acc is None else acc * running % n2
    return acc


def _by_windows(cs: Sequence, exps: np.ndarray, w: int, n2) -> object | None:
    """``Π c_i^{e_i}`` for non-negative ``e_i`` by window buckets."""
    bits = int(exps.max()).bit_length()
    mask = (1 << w) - 1
    result = None
    for k in range(-(-bits // w) - 1, -1, -1):
        if result is not None:
            for _ in range(w):
                result = result * result % n2
        digits = (exps >> (w * k)) & mask
        top = int(digits.max())
        if top:
            part = _window_product(cs, digits.tolist(), top, n2)
            if part is not None:
                result = part if result is None else result * part % n2
    return result


def _by_values(cs: Sequence, exps: np.ndarray, n2, fold_window: int = 0) -> object:
    """``Π c_i^{e_i}`` for positive ``e_i`` by value buckets, folded in decreasing order —
    or, with ``fold_window``, by window buckets over the distinct values (many of them)."""
    order = np.argsort(-exps, kind="stable")
    ordered = exps[order]
    buckets: list = []
    values: list[int] = []
    previous = None
    for i, v in zip(order.tolist(), ordered.tolist()):
        c = cs[i]
        if v == previous:
            buckets[-1] = buckets[-1] * c % n2
        else:
            buckets.append(c)
            values.append(v)
            previous = v
    if fold_window:
        return _by_windows(buckets, np.asarray(values, dtype=np.int64), fold_window, n2)
    running = acc = None
    for k, (b, v) in enumerate(zip(buckets, values)):
        running = b if running is None else running * b % n2
        gap = v - (values[k + 1] if k + 1 < len(values) else 0)
        term = running if gap == 1 else small_pow(running, gap, n2)
        acc = term if acc is None else acc * term % n2
    return acc


def _part_plan(exps: np.ndarray) -> tuple[str, int, int]:
    """The cheapest bucket method for positive ``exps``: (method, window, multiplications).

    ``values`` folds the value buckets in order (cheap when the distinct values are few or
    close together); ``values+windows`` folds them by window buckets instead (many
    distinct values that still repeat); ``windows`` skips value buckets altogether.
    """
    bits = int(exps.max()).bit_length()
    w, by_windows = _window_cost(bits, exps.size)
    distinct = np.unique(exps)[::-1]
    gaps = distinct - np.append(distinct[1:], 0)
    repeats = exps.size - distinct.size
    by_values = repeats + 2 * distinct.size + int(_pow_cost(gaps).sum())
    fold_w, fold = _window_cost(bits, distinct.size)
    plans = [("values", 0, by_values), ("values+windows", fold_w, repeats + fold), ("windows", w, by_windows)]
    return min(plans, key=lambda plan: plan[2])


Plan = tuple[str, int, int]  # (method, window, multiplications), see _part_plan


def _power_product(cs: Sequence, exps: np.ndarray, plan: Plan | None, n2) -> object | None:
    """``Π c_i^{e_i}`` for positive ``e_i`` by the planned bucket method."""
    if plan is None:
        return None
    method, w, _ = plan
    if method == "windows":
        return _by_windows(cs, exps, w, n2)
    return _by_values(cs, exps, n2, fold_window=w)


def _column_plan(column: np.ndarray) -> tuple[Plan | None, Plan | None, int]:
    """Plans for a column's positive and negative parts, and the multiplications they
    cost (an inversion counts as ≈ 6)."""
    plans = [_part_plan(part) if part.size else None for part in (column[column > 0], -column[column < 0])]
    cost = sum(plan[2] for plan in plans if plan) + (6 if plans[1] else 0)
    return plans[0], plans[1], cost


def _column(cs: Sequence, column: np.ndarray, n2, plan: tuple) -> object:
    """One column's ``Π c_i^{x_i}`` (planned by :func:`_column_plan`): positive part
    times the inverse of the negative part."""
    pos_plan, neg_plan, _ = plan
    pos = np.flatnonzero(column > 0)
    neg = np.flatnonzero(column < 0)
    p = _power_product([cs[i] for i in pos.tolist()], column[pos], pos_plan, n2)
    q = _power_product([cs[i] for i in neg.tolist()], -column[neg], neg_plan, n2)
    if q is not None:
        q = gmpy2.invert(q, n2)
        p = q if p is None else p * q % n2
    return mpz(1) if p is None else p


def _planes_plan(matrix: np.ndarray) -> tuple[int, int]:
    """Best group size for :func:`_by_planes` and its cost in multiplications."""
    rows, cols = matrix.shape
    low = np.minimum(matrix.min(axis=0), 0)
    bits = int((matrix - low).max()).bit_length() if matrix.size else 0
    best = (0, None)
    for g in range(4, 13):
        groups = -(-rows // g)
        cost = groups * (1 << g) + cols * bits * (groups + 1) + cols * (2 * 16 + 6)
        if best[1] is None or cost < best[1]:
            best = (g, cost)
    return best


def _by_planes(cs: Sequence, matrix: np.ndarray, g: int, n2, low: np.ndarray | None = None) -> list:
    """Every column's ``Π c_i^{x_ij}`` at once (see :func:`_planes_share`)."""
    if low is None:
        low = np.minimum(matrix.min(axis=0), 0)
    results, total = _planes_share(cs, matrix, g, n2, low)
    return _shift_back(results, low, total, n2)


def _planes_share(cs: Sequence, matrix: np.ndarray, g: int, n2, low: np.ndarray) -> tuple[list, object]:
    """Every column at once, for many columns over the same ciphertexts.

    Rows are cut into groups of ``g``; for each group all ``2^g`` subset products are
    built once (one multiplication each). Each column is then read bit plane by bit plane
    from the top: square the accumulator, and multiply in, for each group, the subset
    product named by that group's bits — ``⌈B/g⌉`` multiplications per plane instead of
    one per row and window, so about ``b/g`` per term for ``b``-bit exponents. Columns are
    shifted by ``-low`` (each column's minimum over all rows, or 0) to be non-negative;
    this returns the shifted products (``None`` for an empty one) and ``Π c_i``, so that
    workers can each do a share of the rows and :func:`_shift_back` corrects once.
    """
    rows, cols = matrix.shape
    exps = matrix - low
    if native.ENABLED and rows:
        return _native_planes(cs, exps, g, n2)
    bits = int(exps.max()).bit_length() if exps.size else 0
    groups = -(-rows // g)
    padded = np.zeros((groups * g, cols), dtype=np.int64)
    padded[:rows] = exps
    tables = []
    for k in range(groups):
        members = cs[k * g : (k + 1) * g]
        table: list = [None] * (1 << len(members))
        for mask in range(1, len(table)):
            low_bit = mask & -mask
            rest = table[mask ^ low_bit]
            c = members[low_bit.bit_length() - 1]
            table[mask] = c if rest is None else rest * c % n2
        tables.append(table)
    weights = (1 << np.arange(g, dtype=np.int64)).reshape(1, g, 1)
    results = [None] * cols
    for p in range(bits - 1, -1, -1):
        plane = ((padded >> p) & 1).reshape(groups, g, cols)
        masks = (plane * weights).sum(axis=1).T.tolist()  # (cols, groups)
        for j in range(cols):
            acc = results[j]
            if acc is not None:
                acc = acc * acc % n2
            for table, mask in zip(tables, masks[j]):
                if mask:
                    acc = table[mask] if acc is None else acc * table[mask] % n2
            results[j] = acc
    total = None
    if (low < 0).any():
        for table in tables:
            full = table[-1]
            if full is not None:
                total = full if total is None else total * full % n2
    return results, total


def _shift_back(results: list, low: np.ndarray, total, n2) -> list:
    """Undo the shift by each column's minimum: divide by ``(Π c_i)^(-low_j)``, with
    one inversion and about one multiplication per distinct shift (shifts of a batch's
    columns are close together) instead of a power and an inversion per column."""
    out = [mpz(1) if acc is None else acc for acc in results]
    shifts = [-int(v) for v in low]
    if total is None or not any(shifts):
        return out
    inverse = gmpy2.invert(total, n2)
    powers, power, at = {}, mpz(1), 0
    for s in sorted(set(shifts) - {0}):
        power = power * small_pow(inverse, s - at, n2) % n2
        powers[s], at = power, s
    return [acc * powers[s] % n2 if s else acc for acc, s in zip(out, shifts)]


def _native_planes(cs: Sequence, exps: np.ndarray, g: int, n2) -> tuple[list, object]:
    """:func:`_by_planes`'s products by the C kernel: every column's ``Π c_i^{exps_ij}``
    (non-negative exponents) and ``Π c_i``."""
    rows, cols = exps.shape
    modulus, width = native.modulus_bytes(n2)
    with native.refusals("planes"):
        bases = native.residue_bytes(cs, width)
        blob = native.kernels.planes(modulus, bases, np.ascontiguousarray(exps, dtype="<i8").tobytes(), rows, cols, g)
    values = native.residues(blob, width)
    return values[:cols], values[cols]


def _windows_plan(rows: int, cols: int, bits: int) -> tuple[int, int]:
    """Window for :func:`_windows_share` and its cost in eight-lane products: each group
    of eight (column, digit position) pairs takes a product per row and two per bucket,
    and each column ``w + 1`` per position to join them."""
    best = (1, None)
    for w in range(1, 13):
        positions = max(1, -(-bits // w))
        cost = -(-cols * positions // 8) * (rows + (2 << w)) + -(-cols // 8) * positions * (w + 1)
        if best[1] is None or cost < best[1]:
            best = (w, cost)
    return best


def _windows_share(cs: Sequence, matrix: np.ndarray, w: int, n2, low: np.ndarray) -> tuple[list, object]:
    """Every column's ``Π c_i^{x_ij − low_j}`` and ``Π c_i`` by the C kernel's window
    buckets on AVX-512 IFMA (see ``riskfed/crypto/_native.c``, ``windows``): eight
    (column, digit position) pairs per vector product, about twice the gradient terms
    per second of the best gmpy2 method on a UCI batch and three times GMP's bit planes
    on 300 columns. Same contract as :func:`_planes_share`."""
    exps = np.ascontiguousarray(matrix - low, dtype="<i8")
    rows, cols = exps.shape
    modulus, width = native.modulus_bytes(n2)
    with native.refusals("windows"):
        bases = native.residue_bytes(cs, width)
        blob = native.kernels.windows(modulus, bases, exps.tobytes(), rows, cols, w)
    values = native.residues(blob, width)
    return values[:cols], values[cols]


def _join_shares(share, cs: Sequence, matrix: np.ndarray, param: int, n2, low: np.ndarray, bounds: list, n_jobs) -> list:
    """Run ``share`` (:func:`_planes_share` or :func:`_windows_share`) on the row slices
    between ``bounds``, multiply the shares, and correct the shift once for all rows."""
    shares = run_chunks(
        share,
        [(cs[a:b], matrix[a:b], param, n2, low) for a, b in zip(bounds[:-1], bounds[1:]) if b > a],
        n_jobs=n_jobs,
    )
    return _joined(shares, low, n2)


def _joined(shares: list, low: np.ndarray, n2) -> list:
    """Multiply row shares ``(products, Π c_i)`` column by column and undo the shift."""
    columns = [_product([v for v in column if v is not None], n2) for column in zip(*(r for r, _ in shares))]
    totals = [t for _, t in shares if t is not None]
    return _shift_back(columns, low, _product(totals, n2) if totals else None, n2)


# Exponents stay below 2^62 in magnitude, so that shifting a column by its minimum
# (matrix - low) cannot overflow int64.
_EXPONENT_BOUND_BITS = 62


def _exponent_matrix(exponents, rows: int) -> np.ndarray:
    """``exponents`` as a ``(rows, F)`` int64 matrix with entries below ``2^62`` in
    magnitude (EncodingOverflowError otherwise; riskfed's features are below 2^21)."""
    try:
        matrix = np.asarray(exponents, dtype=np.int64)
    except OverflowError:
        raise EncodingOverflowError(f"Exponents must be below 2^{_EXPONENT_BOUND_BITS} in magnitude; some do not fit int64.") from None
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise ValueError(f"exponents must have shape ({rows}, F); got {matrix.shape}")
    largest = max(int(matrix.max()), -int(matrix.min())) if matrix.size else 0
    if largest >= 1 << _EXPONENT_BOUND_BITS:
        raise EncodingOverflowError(
            f"Exponents must be below 2^{_EXPONENT_BOUND_BITS} in magnitude; got one of {largest.bit_length()} bits."
        )
    return matrix


def multiexp_many(public_key: PublicKey, products: Sequence[tuple[Sequence, np.ndarray]], *, n_jobs: int = 1) -> list[list]:
    """:func:`multiexp` of several ``(ciphertexts, exponents)`` pairs in one dispatch.

    With the IFMA kernel every pair's rows are cut into one share per thread and all
    shares go to the threads together, so a small product (the bank's one-column loss
    terms) runs beside a large one (its gradient) instead of after it. Without IFMA
    each pair is a :func:`multiexp` call.
    """
    n2 = public_key.n_squared
    if not native.use_ifma(n2):
        return [multiexp(public_key, cs, x, n_jobs=n_jobs) for cs, x in products]
    jobs = effective_jobs(n_jobs)
    tasks, parts = [], []
    for cs, x in products:
        matrix = _exponent_matrix(x, len(cs))
        cs = list(cs)
        low = np.minimum(matrix.min(axis=0), 0) if matrix.size else np.zeros(matrix.shape[1], dtype=np.int64)
        bits = int((matrix - low).max()).bit_length() if matrix.size else 0
        # Every product in `jobs` row shares (tiny ones whole): the threads take the
        # shares in order, so each gets half of every product whatever their costs.
        pieces = max(1, min(jobs, len(cs) // 64))
        w = _windows_plan(-(-len(cs) // pieces), matrix.shape[1], bits)[0]
        parts.append((len(tasks), low))
        bounds = [len(cs) * k // pieces for k in range(pieces + 1)]
        tasks += [(cs[a:b], matrix[a:b], w, n2, low) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    shares = run_chunks(_windows_share, tasks, n_jobs=n_jobs, threads=True)  # the kernel releases the GIL
    ends = [start for start, _ in parts[1:]] + [len(tasks)]
    return [_joined(shares[start:end], low, n2) if end > start else [mpz(1)] * len(low) for (start, low), end in zip(parts, ends)]


# The IFMA window buckets need this many columns to beat a single column's value buckets.
_IFMA_MIN_COLUMNS = 2

# From this many columns on, whether bit planes beat per-column buckets is judged on an
# evenly spread sample of columns first (the per-column cost model takes ≈ 0.2 ms a
# column: 2 % of a 300-column epoch once the multiplications are in C).
_SAMPLED_PLANNING_COLUMNS = 64
_PLANNING_SAMPLE = 16


def _product(values: Sequence, n2):
    if not values:
        return None
    out = values[0]
    for v in values[1:]:
        out = out * v % n2
    return out


def _planes_group(matrix: np.ndarray, per_column_cost: int) -> int:
    """The bit-plane group size when that method beats per-column buckets, else 0."""
    if matrix.shape[1] < 8 or not matrix.shape[0]:
        return 0
    g, shared = _planes_plan(matrix)
    # In Python its inner loop does more interpreter work per multiplication than the
    # buckets' (demand a 10 % margin); in C it does less (allow 10 % more).
    return g if (0.9 if native.ENABLED else 1.1) * shared < per_column_cost else 0


def _columns_chunk(n2, cs: Sequence, matrix: np.ndarray, plans: list) -> list:
    return [_column(cs, matrix[:, j], n2, plan) for j, plan in enumerate(plans)]


def multiexp(
    public_key: PublicKey, ciphertexts: Sequence, exponents: np.ndarray, *, n_jobs: int = 1
) -> list:
    """``[Π_i c_i^{X_ij} mod n^2 for each column j]`` — an encrypted ``X^T [[e]]``.

    Parameters
    ----------
    public_key:
        The session key.
    ciphertexts:
        ``B`` ciphertexts ``[[e_i]]``.
    exponents:
        ``(B, F)`` signed int64 matrix (fixed-point encoded features).
    n_jobs:
        Columns are split across this many workers.

    Returns
    -------
    list of ``F`` ciphertexts of ``Σ_i X_ij e_i``.

    Examples
    --------
    >>> import numpy as np
    >>> from riskfed.crypto.keys import generate_keypair
    >>> from riskfed.crypto.paillier import encrypt, decrypt
    >>> pk, sk = generate_keypair(512, allow_insecure_key=True)
    >>> cs = encrypt(pk, [2, -1, 4])
    >>> decrypt(sk, multiexp(pk, cs, np.array([[1, 0], [3, -2], [-1, 5]])))
    [-5, 18]
    """
    matrix = _exponent_matrix(exponents, len(ciphertexts))
    n2 = public_key.n_squared
    n_cols = matrix.shape[1]
    cs = list(ciphertexts)
    jobs = effective_jobs(n_jobs) if len(cs) * n_cols >= 4_096 else 1
    if native.use_ifma(n2) and n_cols >= _IFMA_MIN_COLUMNS and cs:
        # Window buckets on AVX-512 IFMA beat every gmpy2 and GMP method from two columns
        # on (single columns: no faster than value buckets); rows are split as below.
        return multiexp_many(public_key, [(cs, matrix)], n_jobs=n_jobs)[0]
    plans: list = []
    if n_cols >= _SAMPLED_PLANNING_COLUMNS:
        # Many columns: decide between bit planes and buckets on a sample of columns, and
        # plan every column only if buckets win (planning costs ≈ 0.2 ms per column).
        sample = np.linspace(0, n_cols - 1, _PLANNING_SAMPLE).astype(int)
        g = _planes_group(matrix, sum(_column_plan(matrix[:, j])[2] for j in sample) * n_cols // _PLANNING_SAMPLE)
    else:
        g = 0
    if not g:
        # Plan every column once, here; the plans travel with the columns to the workers.
        plans = [_column_plan(matrix[:, j]) for j in range(n_cols)]
        g = _planes_group(matrix, sum(plan[2] for plan in plans))
    if g:
        # Many columns: split the rows, not the columns, so no worker repeats another's
        # subset products; each returns its rows' share of every column.
        low = np.minimum(matrix.min(axis=0), 0)
        groups = -(-len(cs) // g)
        bounds = [g * (groups * k // jobs) for k in range(jobs)] + [len(cs)]
        return _join_shares(_planes_share, cs, matrix, g, n2, low, bounds, n_jobs)
    jobs = min(jobs, n_cols)
    if jobs <= 1:
        return _columns_chunk(n2, cs, matrix, plans)
    # Balance by work: columns are similar in cost, so contiguous equal slices suffice.
    bounds = np.linspace(0, n_cols, jobs + 1).astype(int)
    parts = run_chunks(
        _columns_chunk,
        [(n2, cs, matrix[:, a:b], plans[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a],
        n_jobs=n_jobs,
    )
    return [c for part in parts for c in part]
