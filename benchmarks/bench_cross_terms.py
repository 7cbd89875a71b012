"""What the left-out cross terms u_k·u_l would buy with several fintechs.

With the default second-order expansion the bank's residual uses ``Σ_k u_k²`` where the
exact expansion has ``(Σ_k u_k)²``: the cross terms ``2 u_k u_l`` are left out, because
no party can form ``[[u_k u_l]]`` without a secure product per pair and row. This script
trains riskfed's plaintext twin (the same fixed-point arithmetic as the encrypted run,
whose weights it equals bit for bit) both ways on multi-fintech pilots and prints the
holdout AUCs next to the encrypted run and the centralised reference.

    python benchmarks/bench_cross_terms.py [--fintechs 2 3] [--seeds 0 1] [--customers 20000]
"""

from __future__ import annotations

import argparse

import numpy as np

from riskfed import VerticalLogisticRegression, generate_pilot, run_pipeline
from riskfed.evaluation import roc_auc
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.reference import fit_reference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fintechs", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--customers", type=int, default=20_000)
    args = ap.parse_args()
    print("holdout AUC: encrypted run | twin without cross terms (riskfed) | twin with them | centralised")
    for count in args.fintechs:
        for seed in args.seeds:
            pilot = generate_pilot(args.customers, fintechs=count, seed=seed)
            # The weights do not depend on the key (exact arithmetic), so a short
            # test-only key keeps this quick.
            est = VerticalLogisticRegression(key_bits=512, allow_insecure_key=True, psi="keyed-hash", random_state=seed)
            result = run_pipeline(pilot.bank, pilot.fintechs, id_column="customer_id", label_column="default", estimator=est)
            bank = est.roles_["bank"]
            fintechs = {name: role for name, role in est.roles_.items() if name.startswith("fintech")}
            hyper = Hyperparameters.from_dict(est.outcome_.hyperparameters)
            hold = est.outcome_.holdout_rows
            aucs = []
            for cross in (False, True):
                weights = fit_reference(
                    bank.local.X_q, {n: r._local.X_q for n, r in fintechs.items()}, bank.y_aligned,
                    est.outcome_.train_rows, hyper, seed=est.random_state, cross_terms=cross,
                )
                z = bank.local.design(hold) @ weights["bank"]
                for name, role in fintechs.items():
                    z = z + role._local.design(hold) @ weights[name]
                aucs.append(roc_auc(bank.y_aligned[hold], 1 / (1 + np.exp(-z))))
            m = result.report["metrics"]
            print(
                f"{count} fintechs, seed {seed}: {m['federated']['auc']:.4f} | {aucs[0]:.4f} | {aucs[1]:.4f} "
                f"(cross terms {aucs[1] - aucs[0]:+.4f}) | {m['centralized']['auc']:.4f}"
            )


if __name__ == "__main__":
    main()
