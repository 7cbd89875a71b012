"""The plaintext boosting core beside scikit-learn's HistGradientBoostingClassifier.

Runs riskfed's learning core (riskfed.learning.trees.estimator.GradientBoostedTrees: the plaintext twin of
SecureBoost) and scikit-learn's HistGradientBoostingClassifier with comparable settings
in one process, and prints holdout AUC, fit time and the time ratio, on:

* default_credit (standardised vertical split; bank = guest file with y, fintech = host
  file, joined on id): both parties, and the bank's characteristics alone;
* the raw UCI extract split naturally (bank: LIMIT_BAL, SEX, EDUCATION, MARRIAGE, AGE,
  PAY_0, PAY_2…PAY_6; fintech: BILL_AMT1–6, PAY_AMT1–6).

Each set is split stratified 70/30 with seed 0. riskfed trains on ≤ 32 label-free
quantile bins per characteristic (cut on the training rows, a missing code on top);
scikit-learn bins the same columns itself with max_bins=32. Both: 50 trees of depth 4,
learning rate 0.1, L2 1.0, no early stopping (riskfed: minimum child hessian 1;
scikit-learn: its default of 20 rows per leaf). The riskfed core is single-threaded
numpy, so scikit-learn runs on one OpenMP thread too unless --threads says otherwise.
Times are the median wall-clock seconds of --repeats fits, and the CPU seconds of the
process over those fits divided by their number (steadier on a loaded machine).

    python benchmarks/bench_boosting_plain.py [--trees 50] [--depth 4] [--repeats 3] [--threads 1] [--gbc]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from riskfed.learning.trees.estimator import GradientBoostedTrees
from riskfed.learning.trees.boosting import BoostingParams, fit_boosting
from riskfed.learning.trees.local import LocalHistogramProvider, LocalParty
from riskfed.learning.trees.prebin import prebin_parties

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UCI_BANK = ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
UCI_FINTECH = [f"BILL_AMT{i}" for i in range(1, 7)] + [f"PAY_AMT{i}" for i in range(1, 7)]


def default_credit(root: Path) -> tuple[list[np.ndarray], np.ndarray]:
    guest = pd.read_csv(root / "default_credit" / "default_credit_hetero_guest.csv")
    host = pd.read_csv(root / "default_credit" / "default_credit_hetero_host.csv")
    # Column names are only unique within a party: join on id and keep each party's columns apart.
    joined = guest.merge(host, on="id", suffixes=("_bank", "_fintech"))
    bank = [c + "_bank" if c in host.columns else c for c in guest.columns if c not in ("id", "y")]
    fintech = [c + "_fintech" if c in guest.columns else c for c in host.columns if c != "id"]
    return [joined[bank].to_numpy(float), joined[fintech].to_numpy(float)], joined["y"].to_numpy()


def uci_raw(root: Path) -> tuple[list[np.ndarray], np.ndarray]:
    frame = pd.read_csv(root / "uci_credit_card" / "UCI_Credit_Card.csv")
    bank = frame[["ID", "default.payment.next.month", *UCI_BANK]]
    fintech = frame[["ID", *UCI_FINTECH]].sample(frac=1.0, random_state=1)  # its own row order
    joined = bank.merge(fintech, on="ID")
    return [joined[UCI_BANK].to_numpy(float), joined[UCI_FINTECH].to_numpy(float)], joined[
        "default.payment.next.month"
    ].to_numpy()


def timed(fit: Callable[[], object], repeats: int) -> tuple[object, float, float]:
    """The fitted model, the median wall-clock seconds and the mean CPU seconds of a fit."""
    times, model = [], None
    cpu = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return model, statistics.median(times), (time.process_time() - cpu) / repeats


def compare(name: str, parties: list[np.ndarray], y: np.ndarray, args: argparse.Namespace) -> dict:
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    layouts, train, (test,) = prebin_parties([X[tr] for X in parties], [X[te] for X in parties], max_bins=32)
    ours = GradientBoostedTrees(args.trees, args.depth, 0.1, reg_lambda=1.0, min_child_weight=1.0, random_state=0)
    ours, t_ours, cpu_ours = timed(lambda: ours.fit(train, y[tr], layouts=layouts), args.repeats)
    auc_ours = roc_auc_score(y[te], ours.predict_proba(test)[:, 1])
    X = np.hstack(parties)
    hgb = HistGradientBoostingClassifier(
        max_iter=args.trees, max_depth=args.depth, learning_rate=0.1, max_bins=32, l2_regularization=1.0,
        max_leaf_nodes=None, min_samples_leaf=20, early_stopping=False, random_state=0,
    )
    with threadpool_limits(args.threads):
        hgb, t_hgb, cpu_hgb = timed(lambda: hgb.fit(X[tr], y[tr]), args.repeats)
    auc_hgb = roc_auc_score(y[te], hgb.predict_proba(X[te])[:, 1])
    row = {
        "data": name,
        "riskfed_auc": round(auc_ours, 4),
        "sklearn_hgb_auc": round(auc_hgb, 4),
        "riskfed_s": round(t_ours, 3),
        "sklearn_hgb_s": round(t_hgb, 3),
        "time_ratio": round(t_ours / t_hgb, 2),
        "riskfed_cpu_s": round(cpu_ours, 3),
        "sklearn_hgb_cpu_s": round(cpu_hgb, 3),
        "cpu_ratio": round(cpu_ours / cpu_hgb, 2),
    }
    if args.gbc:
        gbc, _, _ = timed(lambda: GradientBoostingClassifier(random_state=0).fit(X[tr], y[tr]), 1)
        row["sklearn_gb_auc"] = round(roc_auc_score(y[te], gbc.predict_proba(X[te])[:, 1]), 4)
    return row


def sibling_savings(parties: list[np.ndarray], y: np.ndarray, args: argparse.Namespace) -> str:
    """Rows summed into histograms, against summing both children of every split."""
    layouts, train, _ = prebin_parties(parties, max_bins=32)
    local = [LocalParty(layout, codes) for layout, codes in zip(layouts, train)]
    provider = LocalHistogramProvider(local)
    params = BoostingParams(n_estimators=args.trees, max_depth=args.depth, learning_rate=0.1)
    fit_boosting(params, layouts, y, provider, local, np.random.default_rng(0))
    both_children = args.trees * len(y) * args.depth  # levels 0 … depth-1 each sum every row
    return f"rows summed into histograms {provider.requested_rows:,}; both children at every level {both_children:,}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--trees", type=int, default=50)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="fits per model; the median time is shown")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP threads for scikit-learn")
    ap.add_argument("--gbc", action="store_true", help="also GradientBoostingClassifier (defaults; slow)")
    args = ap.parse_args()
    credit, y = default_credit(args.data)
    raw, y_raw = uci_raw(args.data)
    rows = [
        compare("default_credit bank+fintech", credit, y, args),
        compare("default_credit bank only", credit[:1], y, args),
        compare("uci raw bank+fintech", raw, y_raw, args),
        compare("uci raw bank only", raw[:1], y_raw, args),
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))
    print(
        f"{args.trees} trees of depth {args.depth}, ≤ 32 bins; wall = median of {args.repeats} fits, "
        f"cpu = mean per fit (s); scikit-learn on {args.threads} thread(s); ratio = riskfed / scikit-learn"
    )
    print("default_credit, all rows:", sibling_savings(credit, y, args))


if __name__ == "__main__":
    main()
