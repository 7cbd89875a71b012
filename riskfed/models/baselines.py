"""What the bank could do alone, and what a (forbidden) data merge would give.

* :func:`make_baseline_pipeline` — a plain scikit-learn pipeline (median imputation with
  missing indicators, one-hot encoding, standard scaling, ``LogisticRegression``) used
  for the **bank-only** baseline and the **centralised** reference. Being independent of
  riskfed's own preprocessing, it is an honest yardstick.
* The centralised reference joins the parties' raw tables, which no real deployment may
  do; riskfed computes it only in pilots and tests, where one process holds every table.
* :class:`FallbackModel` scores applicants a fintech does not know. It is trained on the
  bank's own rows only and stored as JSON (preprocessing + coefficients), never pickled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from riskfed.data.preprocess import Preprocessor
from riskfed.data.schema import PartyTable


def make_baseline_pipeline(numeric: list[str], categorical: list[str], *, C: float = 1.0) -> Pipeline:
    """A plain scikit-learn credit baseline: impute, one-hot, scale, logistic regression."""
    transformers = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline(
        [("features", ColumnTransformer(transformers)), ("model", LogisticRegression(C=C, max_iter=2000))]
    )


def _columns(table: PartyTable, prefix: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    frame = table.features.add_prefix(prefix)
    categorical = [prefix + c for c in table.categorical]
    numeric = [c for c in frame.columns if c not in set(categorical)]
    # sklearn's imputers want object columns with np.nan as the missing marker.
    for c in categorical:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), np.nan)
    return frame, numeric, categorical


def fit_predict_bank_only(
    bank: PartyTable, train_rows: np.ndarray, score_rows: np.ndarray
) -> np.ndarray:
    """Bank-only baseline: fit on ``train_rows`` of the bank table, return PD of ``score_rows``."""
    frame, numeric, categorical = _columns(bank, "")
    pipe = make_baseline_pipeline(numeric, categorical)
    pipe.fit(frame.iloc[train_rows], bank.labels[train_rows])
    return pipe.predict_proba(frame.iloc[score_rows])[:, 1]


def fit_predict_centralized(
    bank: PartyTable,
    bank_rows: np.ndarray,
    partners: dict[str, tuple[PartyTable, np.ndarray]],
    train: np.ndarray,
    holdout: np.ndarray,
) -> np.ndarray:
    """Centralised reference on the joined aligned rows (pilots and tests only).

    ``bank_rows`` and each partner's row array list the aligned customers in the same
    order; ``train`` and ``holdout`` are positions in that order.
    """
    parts, numeric, categorical = [], [], []
    frame, num, cat = _columns(bank, "bank:")
    parts.append(frame.iloc[bank_rows].reset_index(drop=True))
    numeric += num
    categorical += cat
    for name, (table, rows) in partners.items():
        frame, num, cat = _columns(table, f"{name}:")
        parts.append(frame.iloc[rows].reset_index(drop=True))
        numeric += num
        categorical += cat
    joined = pd.concat(parts, axis=1)
    y = bank.labels[bank_rows]
    pipe = make_baseline_pipeline(numeric, categorical)
    pipe.fit(joined.iloc[train], y[train])
    return pipe.predict_proba(joined.iloc[holdout])[:, 1]


class FallbackModel:
    """Bank-only logistic regression for applicants no fintech knows (JSON-serialisable)."""

    def __init__(self, preprocessor: Preprocessor, coef: np.ndarray, intercept: float) -> None:
        self.preprocessor = preprocessor
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)

    @classmethod
    def fit(cls, bank: PartyTable, rows: np.ndarray) -> "FallbackModel":
        numeric = [c for c in bank.feature_names if c not in bank.categorical]
        pre = Preprocessor(numeric, list(bank.categorical), party="bank")
        X = pre.fit_transform(bank.features.iloc[rows])
        lr = LogisticRegression(max_iter=2000).fit(X, bank.labels[rows])
        return cls(pre, lr.coef_[0], lr.intercept_[0])

    def log_odds(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Log-odds of default and the standardised design matrix (for reason codes)."""
        X = self.preprocessor.transform(frame)
        return X @ self.coef + self.intercept, X

    def to_dict(self) -> dict:
        return {
            "preprocessing": self.preprocessor.to_dict(),
            "feature_names": self.preprocessor.feature_names_,
            "weights": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FallbackModel":
        return cls(Preprocessor.from_dict(data["preprocessing"]), np.asarray(data["weights"]), data["intercept"])
