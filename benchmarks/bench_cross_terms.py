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
import dataclasses

import numpy as np

from riskfed import VerticalLogisticRegression, generate_pilot, run_pipeline
from riskfed.evaluation import roc_auc
from riskfed.roles.local import (
    Hyperparameters,
    LocalModel,
    encode_partial,
    encode_square,
    exact_column_sums,
    exact_residuals,
    make_batches,
    plan_residuals,
)


def train_twin(bank_X, partner_X, y, train_rows, hyper, seed: int, *, cross_terms: bool) -> dict:
    """The plaintext twin's training loop, with ``(Σ u_k)²`` or riskfed's ``Σ u_k²``."""
    train_rows = np.sort(np.asarray(train_rows, dtype=np.int64))
    hyper = dataclasses.replace(hyper, parties=1 + len(partner_X))
    hyper = dataclasses.replace(hyper, steps_per_epoch=len(make_batches(train_rows, seed, 0, hyper)))
    bank = LocalModel(bank_X, hyper, train_rows, bias=True)
    partners = {name: LocalModel(X, hyper, train_rows) for name, X in partner_X.items()}
    for epoch in range(hyper.max_epochs):
        for rows in make_batches(train_rows, seed, epoch, hyper):
            scores = {name: m.partial_scores(rows) for name, m in partners.items()}
            partner_sum = np.sum([encode_partial(u, party=n) for n, u in scores.items()], axis=0)
            if cross_terms:
                squares = encode_square(np.sum(list(scores.values()), axis=0), party="all fintechs")
            else:
                squares = np.sum([encode_square(u, party=n) for n, u in scores.items()], axis=0)
            e_q = exact_residuals(plan_residuals(bank.partial_scores(rows), y[rows], hyper.expansion), partner_sum, squares)
            bank.apply_gradient(exact_column_sums(bank.exponents(rows, None), e_q), len(rows))
            for m in partners.values():
                m.apply_gradient(exact_column_sums(m.exponents(rows, None), e_q), len(rows))
        change, norm = bank.end_epoch()
        for m in partners.values():
            c, w = m.end_epoch()
            change += c
            norm += w
        if epoch > 0 and np.sqrt(change / norm) < hyper.tol:
            break
    return {"bank": bank, **partners}


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
                models = train_twin(
                    bank.local.X_q, {n: r._local.X_q for n, r in fintechs.items()}, bank.y_aligned,
                    est.outcome_.train_rows, hyper, est.random_state, cross_terms=cross,
                )
                z = bank.local.design(hold) @ models["bank"].final_weights
                for name, role in fintechs.items():
                    z = z + role._local.design(hold) @ models[name].final_weights
                aucs.append(roc_auc(bank.y_aligned[hold], 1 / (1 + np.exp(-z))))
            m = result.report["metrics"]
            print(
                f"{count} fintechs, seed {seed}: {m['federated']['auc']:.4f} | {aucs[0]:.4f} | {aucs[1]:.4f} "
                f"(cross terms {aucs[1] - aucs[0]:+.4f}) | {m['centralized']['auc']:.4f}"
            )


if __name__ == "__main__":
    main()
