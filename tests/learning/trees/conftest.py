"""Fixtures of the learning-core tests: small synthetic parties and the default_credit codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from riskfed.learning.trees.layout import NO_MISSING, BinLayout
from riskfed.learning.trees.prebin import prebin_parties


@dataclass
class Parties:
    """Synthetic pre-binned parties: layouts, codes (train/valid) and labels."""

    layouts: list[BinLayout]
    train: list[np.ndarray]
    valid: list[np.ndarray]
    y: np.ndarray
    y_valid: np.ndarray


# Per party: (n_bins, missing code) per characteristic. Missing codes sit last, in the
# middle (as riskfed.binning lays them out) or nowhere.
SHAPES = [
    [(6, 5), (4, NO_MISSING), (9, 3)],
    [(5, 4), (7, NO_MISSING)],
]


def _codes(rng: np.random.Generator, n: int, shape: list[tuple[int, int]], missing_rate: float) -> np.ndarray:
    cols = []
    for n_bins, miss in shape:
        ordered = [c for c in range(n_bins) if c != miss]
        col = rng.choice(ordered, size=n)
        if miss != NO_MISSING:
            col = np.where(rng.random(n) < missing_rate, miss, col)
        cols.append(col)
    return np.column_stack(cols).astype(np.int32)


def make_parties(n: int = 600, n_valid: int = 300, seed: int = 0, missing_rate: float = 0.1) -> Parties:
    """Two parties whose codes all carry signal; labels drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    layouts = [
        BinLayout(tuple(b for b, _ in shape), tuple(m for _, m in shape), party=f"party_{k}")
        for k, shape in enumerate(SHAPES)
    ]
    total = n + n_valid
    codes = [_codes(rng, total, shape, missing_rate) for shape in SHAPES]
    logit = -1.0
    for part, shape in zip(codes, SHAPES):
        for j, (n_bins, miss) in enumerate(shape):
            effect = rng.normal(scale=0.6, size=n_bins)
            logit = logit + effect[part[:, j]]
    y = (rng.random(total) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    return Parties(layouts, [c[:n] for c in codes], [c[n:] for c in codes], y[:n], y[n:])


@pytest.fixture
def parties() -> Parties:
    return make_parties()


@pytest.fixture(scope="session")
def parties_factory():
    """:func:`make_parties` as a fixture (test modules cannot import conftest)."""
    return make_parties


@dataclass
class CreditCodes:
    layouts: list[BinLayout]
    train: list[np.ndarray]
    test: list[np.ndarray]
    y: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="session")
def default_credit_codes(default_credit_dir) -> CreditCodes:
    """default_credit joined on id, stratified 70/30 (seed 0), ≤ 32 quantile bins, bank first."""
    guest = pd.read_csv(default_credit_dir / "default_credit_hetero_guest.csv")
    host = pd.read_csv(default_credit_dir / "default_credit_hetero_host.csv")
    joined = guest.merge(host, on="id", suffixes=("_bank", "_fintech"))
    bank_cols = [c for c in guest.columns if c not in ("id", "y")]
    bank = joined[[c + "_bank" if c in host.columns else c for c in bank_cols]].to_numpy(float)
    fintech = joined[[c + "_fintech" if c in guest.columns else c for c in host.columns if c != "id"]].to_numpy(float)
    y = joined["y"].to_numpy()
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    layouts, train, (test,) = prebin_parties([bank[tr], fintech[tr]], [bank[te], fintech[te]], parties=["bank", "fintech"])
    return CreditCodes(layouts, train, test, y[tr], y[te])
