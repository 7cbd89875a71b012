"""Paillier kernels: riskfed next to python-paillier (phe), in one process.

Prints throughput and the riskfed/phe ratio for encryption (one core and all cores),
encrypted gradient terms (Σ_i c_i^{x_ij}: uniform 15-bit exponents, the worst case, and
one training batch of each UCI party's real features), plaintext addition and
decryption. The machine is shared and noisy: read the ratios, not the absolute numbers.

    python benchmarks/bench_kernels.py [--key-bits 2048] [--n 4000] [--rows 4096] [--features 16]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from phe import paillier as phe_paillier

from riskfed.crypto import native, paillier
from riskfed.crypto.encoding import FEATURE_FRAC_BITS
from riskfed.crypto.keys import generate_keypair
from riskfed.crypto.multiexp import multiexp
from riskfed.data.preprocess import Preprocessor
from riskfed.learning.linear.fixed_point import quantize_features

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "default_credit"


def uci_batches(data: Path, batch: int):
    """One random training batch of each UCI party's features, quantised as in training."""
    files = {"bank (13 features)": "default_credit_hetero_guest.csv", "fintech (10 features)": "default_credit_hetero_host.csv"}
    for party, name in files.items():
        if not (data / name).is_file():
            continue
        frame = pd.read_csv(data / name).drop(columns=["id", "y"], errors="ignore")
        pre = Preprocessor(list(frame.columns), [], party=party)
        X = quantize_features(pre.fit(frame).transform(frame), party=party, columns=pre.feature_names_)
        rows = np.random.default_rng(0).choice(len(X), size=min(batch, len(X)), replace=False)
        yield party, X[rows]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


@dataclass
class Bench:
    """What every section needs: the arguments, the key, the values and their ciphertexts."""

    args: argparse.Namespace
    pk: object
    sk: object
    values: list
    rows: list = field(default_factory=list)  # (kernel, riskfed per second, phe per second)
    cts: list = field(default_factory=list)
    crt_window: int = 0

    @property
    def pq(self) -> tuple[int, int]:
        return int(self.sk.phe.p), int(self.sk.phe.q)

    def randomizers(self, count: int) -> list:
        p, q = self.pq
        return paillier.crt_randomizers(p, q, self.pk.h_s, count, self.crt_window)


def without(flag: str, fn):
    """Run ``fn`` with one of riskfed's C kernel switches off, then on again."""
    setattr(native, flag, False)
    try:
        return timed(fn)
    finally:
        setattr(native, flag, True)


def bench_encryption(b: Bench) -> None:
    """phe.encrypt of raw integers vs riskfed's DJN fixed base, and the key holder's randomness."""
    args, pk, values = b.args, b.pk, b.values
    _, t_phe = timed(lambda: [pk.to_phe().raw_encrypt(v % pk.n) for v in values[: args.phe_n]])
    r_phe = rate(args.phe_n, t_phe)
    # A long-running party (workload=None: many encryptions per key) gets the largest
    # table that fits the budget; its build time is printed separately.
    window = paillier.choose_window(pk)
    long_run = 10**6
    _, t_build = timed(lambda: paillier.fixed_base_table(pk.n, pk.h_s, window))
    b.cts, t_one = timed(lambda: paillier.encrypt(pk, values, n_jobs=1, workload=long_run))
    paillier.encrypt(pk, values[:600], n_jobs=-1, workload=long_run)  # warm the workers' tables
    _, t_all = timed(lambda: paillier.encrypt(pk, values, n_jobs=-1, workload=long_run))
    b.rows.append(("encryption, 1 core", rate(args.n, t_one), r_phe))
    b.rows.append(("encryption, all cores", rate(args.n, t_all), r_phe))
    # riskfed's default: the key holder makes the randomizers (CRT, its table warm) and
    # the party seals each value with one in two short products.
    b.crt_window = paillier.crt_window(pk)
    _, t_crt_build = timed(lambda: b.randomizers(1))
    rho, t_crt = timed(lambda: b.randomizers(args.n))
    _, t_seal = timed(lambda: paillier.encrypt_with(pk, values, rho))
    b.rows.append(("encryption, key holder's randomness", rate(args.n, t_crt + t_seal), r_phe))
    b.rows.append(("  of which the party's part", rate(args.n, t_seal), r_phe))
    builds = bench_key_holder_paths(b, t_seal, r_phe) if native.ENABLED else {}
    print(f"  fixed-base table build: {t_build:.2f} s once per key and process (window {window} bits)")
    kernel = {"ifma": "C kernel, AVX-512 IFMA", "mpn": "C kernel, GMP", "gmpy2": "gmpy2; the C kernel is not built"}[native.mode()]
    print(f"  key holder's CRT tables: {t_crt_build:.2f} s once per key and process (window {b.crt_window} bits, {kernel})")
    if "mpn" in builds:
        print(f"  the same tables with GMP's products: {builds['mpn']:.2f} s")
    if "gmpy2" in builds:
        print(f"  the same tables without the C kernel: {builds['gmpy2']:.2f} s once per key and worker process")


def bench_key_holder_paths(b: Bench, t_seal: float, r_phe: float) -> dict[str, float]:
    """The key holder's randomness on all cores, without IFMA and without the C kernel."""
    from concurrent.futures import ThreadPoolExecutor

    n = b.args.n
    # The C kernel releases the GIL: the coordinator's threads share one table.
    jobs = os.cpu_count() or 1
    with ThreadPoolExecutor(jobs) as pool:
        share = -(-n // jobs)
        _, t_threads = timed(lambda: list(pool.map(lambda _: b.randomizers(share), range(jobs))))
    b.rows.append(("  key holder, all cores (threads)", rate(share * jobs, t_threads + t_seal), r_phe))
    builds = {}
    if native.IFMA:
        # GMP's Montgomery products instead of AVX-512 IFMA.
        builds["mpn"] = without("IFMA", lambda: b.randomizers(1))[1]
        t_mpn = without("IFMA", lambda: b.randomizers(n))[1]
        b.rows.append(("  key holder, GMP products (no IFMA)", rate(n, t_mpn + t_seal), r_phe))
    builds["gmpy2"] = without("ENABLED", lambda: b.randomizers(1))[1]  # the gmpy2 path, for the record
    t_py = without("ENABLED", lambda: b.randomizers(n))[1]
    b.rows.append(("  key holder without the C kernel", rate(n, t_py + t_seal), r_phe))
    return builds


def bench_gradients(b: Bench) -> None:
    """Gradient terms: phe ciphertext × scalar, summed, vs bucket multi-exponentiation."""
    args, pk, cts = b.args, b.pk, b.cts
    X = np.random.default_rng(0).integers(-(2**14), 2**14, size=(args.rows, args.features))
    base = (cts * (args.rows // len(cts) + 1))[: args.rows]
    phe_cts = [phe_paillier.EncryptedNumber(pk.to_phe(), int(c), 0) for c in base[: args.phe_n]]
    col = X[: args.phe_n, 0].tolist()

    def phe_terms():
        acc = phe_cts[0] * col[0]
        for c, x in zip(phe_cts[1:], col[1:]):
            acc = acc + c * x
        return acc

    r_phe = rate(args.phe_n, timed(phe_terms)[1])
    terms = args.rows * args.features
    b.rows.append(("gradient terms, uniform, 1 core", rate(terms, timed(lambda: multiexp(pk, base, X, n_jobs=1))[1]), r_phe))
    b.rows.append(("gradient terms, uniform, all cores", rate(terms, timed(lambda: multiexp(pk, base, X, n_jobs=-1))[1]), r_phe))
    # The same on real features: each UCI file standardised and quantised as in training,
    # one training batch (1,024 rows) — the shape of every gradient riskfed computes.
    for party, features in uci_batches(args.data, args.batch):
        batch_cts = (cts * (len(features) // len(cts) + 1))[: len(features)]
        _, t_real = timed(lambda: multiexp(pk, batch_cts, features, n_jobs=1))
        b.rows.append((f"  UCI {party} batch, 1 core", rate(features.size, t_real), r_phe))
        if native.IFMA:
            _, t_real = without("IFMA", lambda: multiexp(pk, batch_cts, features, n_jobs=1))
            b.rows.append(("    the same without IFMA (gmpy2 buckets)", rate(features.size, t_real), r_phe))
    # A wide fintech's batch: 300 standard-normal features at riskfed's precision, where
    # the bit-plane method (in C when built) shares work across columns.
    wide = np.rint(np.random.default_rng(1).normal(size=(args.batch, 300)) * (1 << FEATURE_FRAC_BITS)).astype(np.int64)
    wide_cts = (cts * (args.batch // len(cts) + 1))[: args.batch]
    _, t_wide = timed(lambda: multiexp(pk, wide_cts, wide, n_jobs=1))
    b.rows.append(("  300 normal features batch, 1 core", rate(wide.size, t_wide), r_phe))
    if native.IFMA:
        _, t_wide_mpn = without("IFMA", lambda: multiexp(pk, wide_cts, wide, n_jobs=1))
        b.rows.append(("    the same without IFMA (GMP bit planes)", rate(wide.size, t_wide_mpn), r_phe))
    if native.ENABLED:
        _, t_wide_py = without("ENABLED", lambda: multiexp(pk, wide_cts, wide, n_jobs=1))
        b.rows.append(("    the same without the C kernels", rate(wide.size, t_wide_py), r_phe))


def bench_residuals(b: Bench) -> None:
    """The bank's residual refresh, Enc(c; ρ)·[[U]]^s·[[V]]^t per row (s, t short), against
    phe's U*s + V*t + c with its own encryption of c."""
    args, pk, cts = b.args, b.pk, b.cts
    batch = min(args.batch, len(cts) // 2)
    u_cts, v_cts = cts[:batch], cts[batch : 2 * batch]
    s_q = np.random.default_rng(2).integers(0, 1 << 10, batch)
    t_q = np.random.default_rng(3).integers(-(1 << 7), 1 << 8, batch)
    c_q = b.values[:batch]
    rho_b = b.randomizers(batch)
    _, t_aff = timed(lambda: paillier.affine(pk, [(u_cts, s_q), (v_cts, t_q)], c_q, n_jobs=1, randomizers=rho_b))
    phe_pk = pk.to_phe()
    phe_u = [phe_paillier.EncryptedNumber(phe_pk, int(c), 0) for c in u_cts[: args.phe_n // 3]]
    phe_v = [phe_paillier.EncryptedNumber(phe_pk, int(c), 0) for c in v_cts[: args.phe_n // 3]]
    _, t_phe_aff = timed(
        lambda: [u * int(a) + v * int(b_) + phe_pk.encrypt(int(k)) for u, v, a, b_, k in zip(phe_u, phe_v, s_q, t_q, c_q)]
    )
    r_phe_aff = rate(len(phe_u), t_phe_aff)
    b.rows.append(("residual refresh Enc(c)·U^s·V^t, 1 core", rate(batch, t_aff), r_phe_aff))
    if native.IFMA:
        _, t_aff_py = without("IFMA", lambda: paillier.affine(pk, [(u_cts, s_q), (v_cts, t_q)], c_q, n_jobs=1, randomizers=rho_b))
        b.rows.append(("  the same without IFMA (gmpy2)", rate(batch, t_aff_py), r_phe_aff))


def bench_addition_and_decryption(b: Bench) -> None:
    """Plaintext addition, and decryption (both CRT through phe's key; riskfed decrypts
    only packed masked values)."""
    args, pk, sk, cts, values = b.args, b.pk, b.sk, b.cts, b.values
    _, t_add = timed(lambda: paillier.add_plain(pk, cts, values))
    phe_enc = [phe_paillier.EncryptedNumber(pk.to_phe(), int(c), 0) for c in cts[: args.phe_n]]
    _, t_phe_add = timed(lambda: [c._add_scalar(v) if hasattr(c, "_add_scalar") else c + v for c, v in zip(phe_enc, values)])
    b.rows.append(("plaintext addition", rate(args.n, t_add), rate(args.phe_n, t_phe_add)))
    few = cts[:200]
    _, t_dec = timed(lambda: paillier.decrypt(sk, few))
    _, t_phe_dec = timed(lambda: [sk.phe.raw_decrypt(int(c)) for c in few])
    b.rows.append(("decryption", rate(len(few), t_dec), rate(len(few), t_phe_dec)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--n", type=int, default=4000, help="values to encrypt")
    ap.add_argument("--rows", type=int, default=4096, help="rows of the gradient multi-exponentiation")
    ap.add_argument("--features", type=int, default=16, help="columns of the gradient multi-exponentiation")
    ap.add_argument("--phe-n", type=int, default=300, help="values for the (slow) phe reference")
    ap.add_argument("--data", type=Path, default=DATA, help="the vertically split UCI default data")
    ap.add_argument("--batch", type=int, default=1024, help="rows per training batch for the UCI rows")
    args = ap.parse_args()

    pk, sk = generate_keypair(args.key_bits, allow_insecure_key=args.key_bits < 2048)
    rng = random.Random(0)
    values = [rng.randrange(-(2**40), 2**40) for _ in range(args.n)]
    print(f"riskfed kernels vs phe {getattr(phe_paillier, '__version__', '')} — {args.key_bits}-bit key")
    bench = Bench(args, pk, sk, values)
    for section in (bench_encryption, bench_gradients, bench_residuals, bench_addition_and_decryption):
        section(bench)
    print(f"{'kernel':<38}{'riskfed /s':>14}{'phe /s':>12}{'ratio':>9}")
    for name, ours, ref in bench.rows:
        print(f"{name:<38}{ours:>14,.0f}{ref:>12,.0f}{ours / ref:>8.1f}x")


if __name__ == "__main__":
    main()
