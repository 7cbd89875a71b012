"""Each party's own feature preparation: impute, one-hot, standardise.

A party fits its :class:`Preprocessor` on its own training rows and never shares the
fitted values; the same object (saved as JSON in that party's model part) transforms
applicants at scoring time, so training and scoring see identical features.

* Numeric columns: missing values → the training median, plus a ``<col>__missing``
  indicator column when the training rows had any missing values (missingness is often
  predictive in credit data).
* Categorical columns: one column per level seen in training plus ``<col>=__missing__``
  when needed; a level never seen in training maps to all zeros and is counted in
  :attr:`Preprocessor.last_unseen` so callers can report it.
* Every output column is standardised (mean 0, standard deviation 1 on the training
  rows); a constant column keeps scale 1 and contributes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskfed.errors import MissingColumnError, NotFittedError, SchemaError, format_rows

MISSING_LEVEL = "__missing__"


class Preprocessor:
    """Impute, one-hot encode and standardise one party's features.

    Parameters
    ----------
    numeric, categorical:
        Column names by kind (as validated by :func:`riskfed.data.schema.validate_table`).
    party:
        Used in error messages.
    """

    def __init__(self, numeric: list[str], categorical: list[str], *, party: str = "party") -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.party = party
        self.last_unseen: dict[str, int] = {}

    def fit(self, frame: pd.DataFrame) -> "Preprocessor":
        self.medians_ = {}
        self.missing_indicators_ = []
        for col in self.numeric:
            values = frame[col].astype(np.float64)
            med = values.median()
            if pd.isna(med):
                raise SchemaError(
                    f"{self.party}: feature {col!r} has no values on the training rows.",
                    party=self.party,
                    column=col,
                )
            self.medians_[col] = float(med)
            if values.isna().any():
                self.missing_indicators_.append(col)
        self.levels_ = {}
        for col in self.categorical:
            series = frame[col]
            levels = sorted(series.dropna().astype(str).unique().tolist())
            if series.isna().any():
                levels.append(MISSING_LEVEL)
            self.levels_[col] = levels
        raw = self._raw(frame, count_unseen=False)
        self.mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        # Test constancy exactly: the rounding error of the mean gives a constant column a
        # tiny non-zero std, which would blow any other value up to an enormous feature.
        constant = raw.max(axis=0, initial=-np.inf) <= raw.min(axis=0, initial=np.inf)
        # A spread below a billionth of the column's level is rounding noise too (the mean
        # itself is only known to an ulp of the level): scaling by it would amplify noise.
        constant |= std <= 1e-9 * np.abs(self.mean_)
        self.scale_ = np.where((std > 0) & ~constant, std, 1.0)
        return self

    @property
    def feature_names_(self) -> list[str]:
        self._check_fitted()
        names = list(self.numeric)
        names += [f"{c}__missing" for c in self.missing_indicators_]
        for col in self.categorical:
            names += [f"{col}={lvl}" for lvl in self.levels_[col]]
        return names

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError(f"The {self.party} preprocessor is not fitted yet; call fit first.")

    def _raw(self, frame: pd.DataFrame, *, count_unseen: bool) -> np.ndarray:
        for col in self.numeric + self.categorical:
            if col not in frame.columns:
                raise MissingColumnError(
                    f"{self.party}: feature {col!r}, used by the model, is not in the table.",
                    party=self.party,
                    column=col,
                )
        blocks = []
        if self.numeric:
            num = frame[self.numeric].astype(np.float64)
            blocks.append(num.fillna(self.medians_).to_numpy())
            if self.missing_indicators_:
                blocks.append(num[self.missing_indicators_].isna().to_numpy(dtype=np.float64))
        unseen: dict[str, int] = {}
        for col in self.categorical:
            series = frame[col].astype(object)
            filled = series.where(series.notna(), MISSING_LEVEL).astype(str)
            levels = self.levels_[col]
            onehot = (filled.to_numpy()[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(np.float64)
            if count_unseen:
                unseen[col] = int((onehot.sum(axis=1) == 0).sum())
            blocks.append(onehot)
        if count_unseen:
            self.last_unseen = {k: v for k, v in unseen.items() if v}
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the standardised float64 design matrix (rows in frame order)."""
        self._check_fitted()
        raw = self._raw(frame, count_unseen=True)
        if self.numeric:
            inf = np.isinf(raw[:, : len(self.numeric)])
            if inf.any():
                rows, cols = np.nonzero(inf)
                col = self.numeric[int(cols[0])]
                raise SchemaError(
                    f"{self.party}: feature {col!r} holds infinite values at row(s) "
                    f"{format_rows(rows.tolist())}.",
                    party=self.party,
                    column=col,
                    rows=rows.tolist(),
                )
        return (raw - self.mean_) / self.scale_

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "party": self.party,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "medians": self.medians_,
            "missing_indicators": self.missing_indicators_,
            "levels": self.levels_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "feature_names": self.feature_names_,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessor":
        pre = cls(data["numeric"], data["categorical"], party=data.get("party", "party"))
        pre.medians_ = {k: float(v) for k, v in data["medians"].items()}
        pre.missing_indicators_ = list(data["missing_indicators"])
        pre.levels_ = {k: list(v) for k, v in data["levels"].items()}
        pre.mean_ = np.asarray(data["mean"], dtype=np.float64)
        pre.scale_ = np.asarray(data["scale"], dtype=np.float64)
        return pre
