"""Private set intersection: riskfed's ECDH and keyed-hash alignment next to OpenMined PSI.

Runs the real alignment protocol (bank and fintech roles over the in-memory transport,
with id normalisation, shuffles and matching) and, in the same process, OpenMined's PSI
(`openmined.psi`, the reference; install with `pip install -e '.[bench]'`) on the same
sizes, and prints seconds per id and the ratio. Then the large runs alone.

    python benchmarks/bench_psi.py [--n 100000] [--large 1000000] [--skip-large]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from riskfed.data.schema import validate_table
from riskfed.protocol.messages import COORDINATOR
from riskfed.roles.bank import Bank
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import Fintech
from riskfed.transport.memory import InMemoryTransport


def tables(n: int, overlap: float = 0.7, seed: int = 0):
    rng = np.random.default_rng(seed)
    bank_ids = np.arange(n)
    shared = rng.choice(bank_ids, int(n * overlap), replace=False)
    own = np.arange(n, n + n - len(shared))
    fintech_ids = np.concatenate([shared, own])
    rng.shuffle(fintech_ids)
    bank = pd.DataFrame({"id": [f"C{i:09d}" for i in bank_ids], "y": rng.integers(0, 2, n), "x": rng.normal(size=n)})
    fintech = pd.DataFrame({"id": [f"c-{i:09d}" for i in fintech_ids], "z": rng.normal(size=n)})
    return (
        validate_table(bank, party="bank", id_column="id", label_column="y"),
        validate_table(fintech, party="fintech_1", id_column="id"),
        len(shared),
    )


def riskfed_psi(n: int, method: str, n_jobs: int = -1) -> tuple[float, int]:
    bank_t, fintech_t, expected = tables(n)
    transport = InMemoryTransport()
    bank = Bank(bank_t, ["fintech_1"], n_jobs=n_jobs)
    for role in (bank, Fintech("fintech_1", fintech_t, n_jobs=n_jobs), Coordinator()):
        transport.register(role)

    def deliver(messages):
        for m in messages:
            for r in transport.request(m):
                bank.handle(r)

    deliver(bank.open_session(key_bits=2048, psi_method=method))
    t = time.perf_counter()
    deliver(bank.psi_requests())
    deliver(bank.finish_alignment(min_size=1))
    seconds = time.perf_counter() - t
    assert bank.aligned.size == expected, (bank.aligned.size, expected)
    return seconds, bank.aligned.size


def openmined_psi(n: int) -> float | None:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    client_items = [f"c{i}" for i in range(n)]
    server_items = [f"c{i}" for i in rng.choice(2 * n, n, replace=False)]
    t = time.perf_counter()
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(client_items), server_items, psi.DataStructure.RAW)
    response = server.ProcessRequest(client.CreateRequest(client_items))
    client.GetIntersection(setup, response)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="ids per side for the side-by-side run")
    ap.add_argument("--large", type=int, default=1_000_000, help="ids per side for the large runs")
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()

    ids = 2 * args.n
    # Start the worker processes once (a one-off cost of every long-lived process).
    riskfed_psi(20_000, "ecdh")
    ref = openmined_psi(args.n)
    ours, _ = riskfed_psi(args.n, "ecdh")
    ours1, _ = riskfed_psi(args.n, "ecdh", n_jobs=1)
    print(f"{args.n:,} × {args.n:,} ids")
    print(f"{'method':<34}{'seconds':>9}{'µs per id':>12}{'vs OpenMined':>14}")
    if ref is not None:
        print(f"{'OpenMined PSI (P-256, 1 core)':<34}{ref:>9.1f}{ref / ids * 1e6:>12.1f}{'1.0x':>14}")
    for name, sec in (("riskfed ecdh, 1 core", ours1), ("riskfed ecdh, all cores", ours)):
        ratio = f"{ref / sec:.1f}x" if ref else "n/a"
        print(f"{name:<34}{sec:>9.1f}{sec / ids * 1e6:>12.1f}{ratio:>14}")
    if args.skip_large:
        return
    for method in ("keyed-hash", "ecdh"):
        sec, size = riskfed_psi(args.large, method)
        print(f"riskfed {method:<11} {args.large:,} × {args.large:,}: {sec:.1f} s ({size:,} shared)")


if __name__ == "__main__":
    main()
