"""Does riskfed scale linearly? Pilots of growing size, and batch scoring of a million.

For each size it runs `riskfed pilot --customers N` as a separate process (so peak
memory is that run's alone) and prints wall time, time per shared customer and per
training row-epoch, and peak resident memory. Then it scores a million applicants with
the model of the smallest run and prints the rate.

    python benchmarks/bench_scaling.py [--sizes 10000 100000 1000000] [--key-bits 2048] [--score 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def run_pilot(n: int, key_bits: int, out: Path, extra: list[str]) -> tuple[float, float, dict]:
    cmd = [sys.executable, "-m", "riskfed.cli", "pilot", "--customers", str(n), "--key-bits", str(key_bits), "--out", str(out), "--quiet", *extra]
    if key_bits < 2048:
        cmd.append("--insecure-test-key")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads((out / "report.json").read_text())
    return wall, max(peak_kb, before) / 2**20, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--score", type=int, default=1_000_000, help="applicants for the scoring run (0 to skip)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more pilot options")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="riskfed-scaling-"))
    print(f"{'customers':>10}{'shared':>10}{'epochs':>7}{'wall s':>9}{'ms/shared':>11}{'µs/row-epoch':>14}{'align s':>9}{'train s':>9}{'peak GB*':>9}")
    first_model = None
    for n in args.sizes:
        out = tmp / f"pilot_{n}"
        wall, peak_gb, r = run_pilot(n, args.key_bits, out, args.extra)
        shared = r["alignment"]["intersection"]
        rows = r["training"]["train_rows"] * r["training"]["epochs"]
        print(
            f"{n:>10,}{shared:>10,}{r['training']['epochs']:>7}{wall:>9.1f}{wall / shared * 1e3:>11.2f}"
            f"{r['timings']['training'] / rows * 1e6:>14.0f}{r['alignment']['seconds']:>9.1f}"
            f"{r['timings']['training']:>9.1f}{peak_gb:>9.2f}",
            flush=True,
        )
        first_model = first_model or out
    print("* peak resident memory of the largest child process so far (ru_maxrss)")
    if args.score:
        from riskfed.data.synthetic import generate_pilot
        from riskfed.models.artifact import FederatedModel
        from riskfed.scoring.score import score_file

        pilot = generate_pilot(max(100, args.score // 10) * 10, applicants=args.score, seed=11)
        app_path = tmp / "applicants.parquet"
        pilot.applicants.to_parquet(app_path, index=False)
        model = FederatedModel.load(first_model / "model")
        fintech = pilot.fintechs[0]
        t = time.perf_counter()
        summary = score_file(model, app_path, [fintech], tmp / "scores.parquet", id_column="customer_id")
        sec = time.perf_counter() - t
        print(
            f"scoring {summary.rows:,} applicants (fintech table {len(fintech):,} rows): {sec:.1f} s, "
            f"{summary.rows / sec:,.0f} per second ({summary.federated:,} federated, {summary.fallback:,} fallback)"
        )
        scored = pd.read_parquet(tmp / "scores.parquet")
        assert len(scored) == summary.rows and np.isfinite(scored["probability_of_default"]).all()


if __name__ == "__main__":
    main()
