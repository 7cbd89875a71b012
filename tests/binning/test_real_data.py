"""Binning on the public credit data: the raw UCI extract and the standardised vertical split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from riskfed.binning import PartyBinner

BANK = ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
FINTECH = [f"BILL_AMT{i}" for i in range(1, 7)] + [f"PAY_AMT{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def uci(default_credit_dir) -> pd.DataFrame:
    path = default_credit_dir.parent / "uci_credit_card" / "UCI_Credit_Card.csv"
    if not path.is_file():
        pytest.skip(f"raw UCI extract not found at {path}")
    return pd.read_csv(path)


def test_raw_extract_bins_on_each_side(uci):
    y = uci["default.payment.next.month"].to_numpy()
    bank = PartyBinner("bank", method="optimal", categorical=["SEX", "EDUCATION", "MARRIAGE"], min_bin_share=0.03)
    bank.fit(uci[BANK], y)
    fintech = PartyBinner("fintech_1").fit(uci[FINTECH])
    assert bank.excluded_ == {} and fintech.excluded_ == {}
    # EDUCATION's undocumented codes 0, 5, 6 are rare: pooled, never an unseen level.
    education = bank.characteristics_["EDUCATION"]
    assert {"0", "5", "6"} <= set(education.rare_levels)
    assert bank.transform(uci[BANK]).unseen == {}
    # PAY_0 is the strongest characteristic; two months late or more is the riskiest bin.
    pay0 = bank.statistics_["PAY_0"]
    n_regular = bank.characteristics_["PAY_0"].n_regular
    assert pay0.iv > 0.5 and bank.characteristics_["PAY_0"].bins[n_regular - 1].label == "[1.5, inf)"
    assert pay0.event_rate[n_regular - 1] == np.nanmax(pay0.event_rate) > 0.6
    # PAY_AMT1: the many zero payments are a bin of their own.
    codes = fintech.transform(uci[FINTECH]).codes["PAY_AMT1"]
    zero_bin = codes[uci["PAY_AMT1"] == 0]
    assert zero_bin.nunique() == 1 and (codes == zero_bin.iloc[0]).sum() == len(zero_bin)
    assert np.isfinite(bank.woe(uci[BANK]).to_numpy()).all()


def _auc_indicators(guest: pd.DataFrame, host: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> float:
    y = guest["y"].to_numpy()
    bank_X, fin_X = guest.drop(columns=["id", "y"]), host.drop(columns=["id"])
    bank = PartyBinner("bank", method="optimal", min_bin_share=0.03).fit(bank_X.iloc[train], y[train])
    fintech = PartyBinner("fintech_1", min_bin_share=0.03).fit(fin_X.iloc[train])

    def design(rows):
        return pd.concat([bank.indicators(bank_X.iloc[rows]), fintech.indicators(fin_X.iloc[rows])], axis=1)

    model = LogisticRegression(C=0.01, max_iter=5000).fit(design(train), y[train])
    return roc_auc_score(y[test], model.predict_proba(design(test))[:, 1])


@pytest.mark.slow
def test_bin_indicators_on_both_sides_reach_the_scorecard_target(default_credit_dir):
    """The plaintext design the federated scorecard reproduces (see docs/scorecard.md)."""
    guest = pd.read_csv(default_credit_dir / "default_credit_hetero_guest.csv")
    host = pd.read_csv(default_credit_dir / "default_credit_hetero_host.csv").set_index("id").loc[guest["id"]].reset_index()
    rows = np.arange(len(guest))
    train, test = train_test_split(rows, test_size=0.3, stratify=guest["y"], random_state=0)
    assert _auc_indicators(guest, host, train, test) >= 0.768
    is_test = np.isin(guest["id"], np.random.default_rng(42).choice(guest["id"].to_numpy(), 6000, replace=False))
    assert _auc_indicators(guest, host, rows[~is_test], rows[is_test]) >= 0.775
