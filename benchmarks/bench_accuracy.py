"""Holdout AUC of the three loss expansions against the centralised reference.

Runs the full federated pipeline (alignment, encrypted training, baselines) for each
expansion on the UCI default data and on pilot data, for several seeds, and prints the
AUC gap to a centralised scikit-learn logistic regression on the same split. The trained
weights do not depend on the key (the arithmetic is exact; see
tests/models/test_estimator.py), so a short test-only key keeps this quick.

    python benchmarks/bench_accuracy.py [--seeds 0 1 2] [--pilot-customers 20000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from riskfed import VerticalLogisticRegression, generate_pilot, run_pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "default_credit"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pilot-customers", type=int, default=20_000)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    sets = {
        "default_credit": (
            pd.read_csv(args.data / "default_credit_hetero_guest.csv"),
            [pd.read_csv(args.data / "default_credit_hetero_host.csv")],
            "id",
            "y",
        )
    }
    rows = []
    for seed in args.seeds:
        pilot = generate_pilot(args.pilot_customers, seed=seed)
        sets[f"pilot"] = (pilot.bank, list(pilot.fintechs), pilot.id_column, pilot.label_column)
        for name, (bank, fintechs, id_col, label) in sets.items():
            for expansion in ("zero", "bank-linear", "bank"):
                est = VerticalLogisticRegression(
                    key_bits=512, allow_insecure_key=True, psi="keyed-hash", expansion=expansion, random_state=seed
                )
                t = time.perf_counter()
                r = run_pipeline(bank, fintechs, id_column=id_col, label_column=label, estimator=est)
                m = r.report["metrics"]
                rows.append(
                    {
                        "data": name,
                        "seed": seed,
                        "expansion": expansion,
                        "epochs": r.report["training"]["epochs"],
                        "federated_auc": m["federated"]["auc"],
                        "centralised_auc": m["centralized"]["auc"],
                        "bank_only_auc": m["bank_only"]["auc"],
                        "gap_to_centralised": m["centralized"]["auc"] - m["federated"]["auc"],
                        "seconds": time.perf_counter() - t,
                    }
                )
                print(
                    f"{name:<15} seed {seed} {expansion:<12} epochs {rows[-1]['epochs']}  "
                    f"federated {rows[-1]['federated_auc']:.4f}  centralised {rows[-1]['centralised_auc']:.4f}  "
                    f"gap {rows[-1]['gap_to_centralised']:+.4f}",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    summary = df.groupby(["data", "expansion"])["gap_to_centralised"].agg(["mean", "max"]).round(4)
    print("\nAUC gap to the centralised reference (positive = federated below):")
    print(summary.to_string())


if __name__ == "__main__":
    main()
