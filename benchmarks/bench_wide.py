"""One epoch on wide data: bank 100,000 × 30 features, fintech 100,000 × 300, 2048-bit keys.

Prints wall time and core-seconds (CPU time of this process and its worker processes)
for one training epoch, next to FATE 2.0's published CoordinatedLR figure for the same
shape: 2 min 16 s per epoch with 16 cores per party at 1024-bit keys, about 2,200
core-seconds (FATE cannot run here).

    python benchmarks/bench_wide.py [--rows 100000] [--bank-features 30] [--fintech-features 300]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
import psutil

from riskfed import VerticalLogisticRegression

FATE_CORE_SECONDS = 2_200  # FATE 2.0's benchmark: 16 cores × 2 min 16 s (one party's cores)


def cpu_seconds() -> float:
    """CPU seconds of this process, its live worker processes and every finished one.

    Finished children (the coordinator's randomness workers stop with the session) are
    counted through ``RUSAGE_CHILDREN`` once reaped; live ones through psutil.
    """
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    total += done.ru_utime + done.ru_stime
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bank-features", type=int, default=30)
    ap.add_argument("--fintech-features", type=int, default=300)
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--expansion", default="bank")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    Xb = rng.normal(size=(n, args.bank_features))
    Xf = rng.normal(size=(n, args.fintech_features))
    logit = Xb[:, :5].sum(axis=1) * 0.3 + Xf[:, :10].sum(axis=1) * 0.2 - 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"C{i:08d}" for i in range(n)]
    bank = pd.DataFrame(Xb, columns=[f"b{j}" for j in range(Xb.shape[1])]).assign(id=ids, y=y)
    fintech = pd.DataFrame(Xf, columns=[f"f{j}" for j in range(Xf.shape[1])]).assign(id=ids)
    # Every row trains (a tiny holdout), one epoch: the shape FATE's figure describes.
    est = VerticalLogisticRegression(
        key_bits=args.key_bits, psi="keyed-hash", max_epochs=1, test_size=0.01, expansion=args.expansion,
        # --key-bits 1024 reproduces FATE's key size for a like-for-like comparison only.
        allow_insecure_key=args.key_bits < 2048,
    )
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    state = {}

    def progress(event):
        # Count from the end of alignment: the epoch, its plan and the holdout scoring.
        if event.phase == "alignment" and event.done == event.total:
            state["train_start"] = (cpu_seconds(), time.perf_counter())

    est.fit(bank, [fintech], id_column="id", label_column="y", progress=progress)
    t1 = time.perf_counter()
    time.sleep(2.0)  # let the coordinator's stopped workers be reaped, so they are counted
    cpu1 = cpu_seconds()
    c_train, t_train = state.get("train_start", (cpu0, t0))
    rows = len(est.outcome_.train_rows)
    core_s = cpu1 - c_train
    print(
        f"one epoch, {rows:,} training rows, bank {args.bank_features} + fintech {args.fintech_features} features, "
        f"{args.key_bits}-bit key, expansion={args.expansion}"
    )
    print(f"  wall {t1 - t_train:.1f} s, {core_s:.0f} core-seconds ({core_s / rows * 1e3:.2f} core-ms per row)")
    print(f"  FATE 2.0 CoordinatedLR (published, 1024-bit keys): ≈ {FATE_CORE_SECONDS:,} core-seconds → {FATE_CORE_SECONDS / core_s:.1f}x")


if __name__ == "__main__":
    main()
