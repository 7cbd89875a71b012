"""`riskfed run` on the UCI default data, all phases, at 2048 bits.

Runs the same job as

    riskfed run --bank .../default_credit_hetero_guest.csv --fintech .../default_credit_hetero_host.csv \
                --id-column id --label-column y

in-process, prints per-phase seconds, epochs, the AUC gap to the centralised reference,
and how many epochs the plaintext twin of the same training needs to come within 0.002
AUC of the final model (its weights equal the encrypted run's bit for bit). Reference
figures, measured separately on the same 2-core machine with those systems' own
installations (they cannot run in riskfed's process): FATE 2.2 CoordinatedLR ≈ 100–130 s
per epoch at 2048 bits; SecretFlow 1.14 secret-sharing LR 8.5 s for 10 epochs (no Paillier).

    python benchmarks/bench_end_to_end.py [--expansion bank] [--randomness coordinator] [--psi ecdh] [--key-bits 2048] [--epochs N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed import VerticalLogisticRegression, run_pipeline
from riskfed.evaluation import roc_auc
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.reference import fit_reference

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "default_credit"
FATE_SECONDS_PER_EPOCH = (100.0, 130.0)


def epochs_to_final(est, result) -> list[float]:
    """Holdout AUC after each epoch, from the plaintext twin of the same run."""
    bank = est.roles_["bank"]
    fintechs = {name: role for name, role in est.roles_.items() if name.startswith("fintech")}
    hyper = Hyperparameters.from_dict(est.outcome_.hyperparameters)
    aucs = []
    hold = est.outcome_.holdout_rows
    for k in range(1, est.n_iter_ + 1):
        h = dataclasses.replace(hyper, max_epochs=k, tol=0.0)
        ref = fit_reference(
            bank.local.X_q,
            {n: r._local.X_q for n, r in fintechs.items()},
            bank.y_aligned,
            est.outcome_.train_rows,
            h,
            seed=bank.session_seed,
        )
        z = bank.local.design(hold) @ ref["bank"]
        for n, r in fintechs.items():
            z = z + r._local.design(hold) @ ref[n]
        aucs.append(roc_auc(bank.y_aligned[hold], 1 / (1 + np.exp(-z))))
    return aucs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--psi", default="ecdh")
    ap.add_argument("--expansion", default="bank")
    ap.add_argument("--randomness", default="coordinator", help="coordinator (default) or own")
    ap.add_argument("--epochs", type=int, default=None, help="at most this many epochs (default: riskfed's)")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    bank = pd.read_csv(args.data / "default_credit_hetero_guest.csv")
    fintech = pd.read_csv(args.data / "default_credit_hetero_host.csv")
    limits = {} if args.epochs is None else {"max_epochs": args.epochs}
    est = VerticalLogisticRegression(key_bits=args.key_bits, psi=args.psi, expansion=args.expansion, randomness=args.randomness, **limits)
    t = time.perf_counter()
    result = run_pipeline(bank, [fintech], id_column="id", label_column="y", estimator=est)
    wall = time.perf_counter() - t
    r = result.report
    tm = r["timings"]
    epochs = r["training"]["epochs"]
    per_epoch = tm["training"] / epochs
    print(
        f"riskfed run, default_credit, {args.key_bits}-bit key, psi={args.psi}, expansion={args.expansion}, "
        f"randomness={args.randomness}" + ("" if args.epochs is None else f", at most {args.epochs} epoch(s)")
    )
    print(f"  wall clock, all phases: {wall:.1f} s")
    for phase in ("key_setup", "alignment", "training", "evaluation", "baselines"):
        print(f"    {phase:<11} {tm[phase]:7.1f} s")
    print(f"  epochs: {epochs} ({per_epoch:.1f} s each); {r['training']['stop_reason']}")
    m = r["metrics"]
    print(
        f"  AUC federated {m['federated']['auc']:.4f}, centralised {m['centralized']['auc']:.4f} "
        f"(gap {r['comparison']['auc_gap_to_centralized']:+.4f}), bank-only {m['bank_only']['auc']:.4f}"
    )
    if hasattr(est, "roles_"):
        aucs = epochs_to_final(est, result)
        reach = next(k + 1 for k, a in enumerate(aucs) if abs(a - aucs[-1]) <= 0.002)
        print(f"  holdout AUC by epoch: {', '.join(f'{a:.4f}' for a in aucs)} → within 0.002 of final after {reach} epoch(s), "
              f"≈ {tm['key_setup'] + tm['alignment'] + reach * per_epoch:.1f} s from start")
    lo, hi = FATE_SECONDS_PER_EPOCH
    print(f"  per epoch vs FATE 2.2 CoordinatedLR (quoted {lo:.0f}–{hi:.0f} s): {lo / per_epoch:.1f}–{hi / per_epoch:.1f}x faster")


if __name__ == "__main__":
    main()
