"""Validate one party's table before anything leaves it.

:func:`validate_table` turns a raw DataFrame into a :class:`PartyTable` or raises a typed
error that names the party, the column and at most five offending rows (by id where the
id column is usable, by row position otherwise). The checks are the ones that would
otherwise end in a traceback or — worse — a silently wrong model:

* the id column exists and has no nulls (duplicates are caught after normalisation, in
  :mod:`riskfed.alignment.normalize`);
* the label column (bank only) holds 0/1 and both classes;
* every feature is numeric, or categorical text with a bounded number of levels; a
  numeric column with stray text ("n/a", "12,5") is an error, not a coercion;
* no feature is entirely null, and none holds ±inf;
* no column name occurs twice (files are checked on their raw header in
  :mod:`riskfed.data.io`, before pandas would rename a copy to ``income.1``).

Missing values (NaN) in features are allowed: they are imputed by the party's own
preprocessor, and their counts are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError, MissingColumnError, SchemaError, format_rows

# A text column with more distinct values than this is an identifier or free text, not a
# category: one-hot encoding it would make a feature per customer.
MAX_CATEGORIES = 50


@dataclass(frozen=True)
class PartyTable:
    """One party's validated data: ids, features and (bank only) labels.

    Attributes
    ----------
    party:
        ``"bank"`` or ``"fintech_k"``.
    ids:
        The raw ids as strings (normalisation happens in alignment).
    features:
        Feature columns: float64 for numeric, object (str or NaN) for categorical.
    labels:
        int8 0/1 array for the bank, ``None`` for a fintech.
    categorical:
        Names of the categorical feature columns.
    """

    party: str
    ids: np.ndarray
    features: pd.DataFrame
    labels: np.ndarray | None
    id_column: str
    label_column: str | None = None
    categorical: tuple[str, ...] = ()
    source: str | None = None
    missing: dict[str, int] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    @property
    def feature_names(self) -> list[str]:
        return list(self.features.columns)

    def summary(self) -> dict:
        """Counts a report may show (no values)."""
        out = {
            "party": self.party,
            "rows": self.n_rows,
            "features": len(self.features.columns),
            "categorical": list(self.categorical),
            "missing_values": {k: v for k, v in self.missing.items() if v},
        }
        if self.labels is not None:
            out["default_rate"] = float(self.labels.mean())
        return out


def duplicate_columns(names) -> list[str]:
    """Column names that occur more than once, in order of first appearance."""
    seen: set[str] = set()
    dups: list[str] = []
    for name in map(str, names):
        if name in seen and name not in dups:
            dups.append(name)
        seen.add(name)
    return dups


def duplicate_columns_error(party: str, names: list[str], where: str) -> SchemaError:
    """The one message for repeated column names, whether in a file or a DataFrame."""
    return SchemaError(
        f"{party}: column name(s) {format_rows(names)} appear more than once in {where}; give each column its own "
        "name (riskfed never renames or drops a column for you).",
        party=party,
        column=names[0],
    )


def _row_labels(ids: pd.Series | None, mask: np.ndarray, index: pd.Index) -> list:
    """Ids of the flagged rows when ids are usable, else their row numbers."""
    positions = np.flatnonzero(mask)
    if ids is not None:
        return [str(ids.iloc[p]) for p in positions[:5]]
    return [int(p) for p in positions[:5]]


def _flagged(party: str, column: str, what: str, mask: np.ndarray, ids, index) -> SchemaError:
    rows = _row_labels(ids, mask, index)
    total = int(mask.sum())
    where = "id(s)" if ids is not None else "row(s)"
    return SchemaError(
        f"{party}: column {column!r} {what} in {total} row(s): {where} {format_rows(rows, total=total)}.",
        party=party,
        column=column,
        rows=rows,
    )


def _require_columns(df: pd.DataFrame, columns: Sequence[str], party: str, role: str) -> None:
    for col in columns:
        if col not in df.columns:
            available = format_rows([str(c) for c in df.columns], total=len(df.columns))
            raise MissingColumnError(
                f"{party}: the {role} column {col!r} is not in the table (columns: {available}).",
                party=party,
                column=col,
            )


def _validate_labels(series: pd.Series, party: str, column: str, ids: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(series, errors="coerce")
    bad = numeric.isna().to_numpy() | ~numeric.isin([0, 1]).to_numpy()
    if bad.any():
        raise _flagged(party, column, "must hold 0 (no default) or 1 (default) but has other values", bad, ids, series.index)
    labels = numeric.to_numpy().astype(np.int8)
    if labels.min() == labels.max():
        raise SchemaError(
            f"{party}: column {column!r} holds only the class {int(labels[0])}; a default model needs "
            "both defaulters (1) and non-defaulters (0).",
            party=party,
            column=column,
        )
    return labels


def _as_text(series: pd.Series) -> pd.Series:
    """Categorical values as Python strings (object dtype), missing kept as NaN."""
    out = series.astype(object)
    present = out.notna().to_numpy()
    values = out.to_numpy(dtype=object, copy=True)
    values[present] = values[present].astype(str)
    values[~present] = np.nan
    return pd.Series(values, index=series.index, dtype=object)


def _validate_feature(
    series: pd.Series, party: str, column: str, ids: pd.Series, declared_categorical: bool, allow_empty: bool = False
) -> tuple[pd.Series, bool]:
    """Return the cleaned column and whether it is categorical."""
    if declared_categorical and series.isna().all() and allow_empty:
        return series.astype(object), True
    if series.isna().all() and allow_empty:
        return series.astype(np.float64), False
    if series.isna().all():
        raise SchemaError(f"{party}: feature {column!r} is empty (every value is missing).", party=party, column=column)
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(np.float64)
    if declared_categorical:
        return _as_text(series), True
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype(np.float64)
    else:
        text = series.astype(object)
        numeric = pd.to_numeric(text, errors="coerce")
        stray = numeric.isna().to_numpy() & text.notna().to_numpy()
        n_text = int(stray.sum())
        n_present = int(text.notna().sum())
        if n_text == 0:
            values = numeric.astype(np.float64)
        elif n_text < 0.5 * n_present:
            # Mostly numbers with some text: a data error, never a silent coercion to NaN.
            raise _flagged(party, column, "is numeric but holds text values", stray, ids, series.index)
        else:
            levels = text.dropna().astype(str).nunique()
            if levels > MAX_CATEGORIES:
                raise SchemaError(
                    f"{party}: feature {column!r} is text with {levels} distinct values; riskfed "
                    f"treats text columns with at most {MAX_CATEGORIES} values as categories. Drop it "
                    "(it looks like an identifier or free text) or encode it first.",
                    party=party,
                    column=column,
                )
            return _as_text(text), True
    inf = np.isinf(values.to_numpy())
    if inf.any():
        raise _flagged(party, column, "holds infinite values", inf, ids, series.index)
    return values, False


def _validate_ids(df: pd.DataFrame, party: str, id_column: str, label_column: str | None) -> pd.Series:
    """The id column as text (the id and label columns must exist; no id may be missing)."""
    _require_columns(df, [id_column], party, "id")
    if label_column is not None:
        _require_columns(df, [label_column], party, "label")
    raw_ids = df[id_column]
    null_ids = raw_ids.isna().to_numpy()
    if null_ids.any():
        raise _flagged(party, id_column, "has missing ids", null_ids, None, df.index)
    return raw_ids.astype(str)


def _feature_columns(df, party: str, id_column: str, label_column, features, exclude, categorical) -> list:
    """The feature columns asked for (default: every column but the id and the label)."""
    reserved = {id_column} | ({label_column} if label_column else set())
    if features is None:
        feature_cols = [c for c in df.columns if c not in reserved and c not in set(exclude)]
    else:
        feature_cols = list(features)
        _require_columns(df, feature_cols, party, "feature")
        clash = [c for c in feature_cols if c in reserved]
        if clash:
            raise ConfigurationError(f"{party}: {clash[0]!r} cannot be both a feature and the id/label column.", party=party)
    _require_columns(df, list(categorical), party, "categorical")
    if not feature_cols:
        raise SchemaError(f"{party}: the table has no feature columns besides id and label.", party=party)
    return feature_cols


def validate_table(
    df: pd.DataFrame,
    *,
    party: str,
    id_column: str,
    label_column: str | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
    source: str | None = None,
    allow_empty_features: bool = False,
) -> PartyTable:
    """Check a party's table and return it as a :class:`PartyTable`.

    Parameters
    ----------
    df:
        The party's raw table.
    party:
        The party's name, used in every message.
    id_column:
        Customer identifier column.
    label_column:
        The default flag (bank only).
    features:
        Feature columns to use; default: every other column.
    exclude:
        Columns to leave out of the default feature list.
    categorical:
        Columns to treat as categories even if they look numeric.
    allow_empty_features:
        Accept a feature column with no values (scoring a small chunk of applicants,
        whose missing values the trained preprocessor imputes).

    Raises
    ------
    MissingColumnError, SchemaError
        With ``party``, ``column`` and ``rows`` set.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigurationError(f"{party}: expected a pandas DataFrame, got {type(df).__name__}.")
    if len(df) == 0:
        raise SchemaError(f"{party}: the table has no rows.", party=party)
    dup = duplicate_columns(df.columns)
    if dup:
        raise duplicate_columns_error(party, dup, repr(source) if source else "the table")
    df = df.reset_index(drop=True)
    ids = _validate_ids(df, party, id_column, label_column)
    feature_cols = _feature_columns(df, party, id_column, label_column, features, exclude, categorical)
    labels = _validate_labels(df[label_column], party, label_column, ids) if label_column else None

    cleaned: dict[str, pd.Series] = {}
    cats: list[str] = []
    for col in feature_cols:
        series, is_cat = _validate_feature(
            df[col], party, str(col), ids, col in set(categorical), allow_empty=allow_empty_features
        )
        cleaned[str(col)] = series
        if is_cat:
            cats.append(str(col))
    frame = pd.DataFrame(cleaned, index=df.index)
    missing = {c: int(frame[c].isna().sum()) for c in frame.columns}
    return PartyTable(
        party=party,
        ids=ids.to_numpy(dtype=object),
        features=frame,
        labels=labels,
        id_column=id_column,
        label_column=label_column,
        categorical=tuple(cats),
        source=source,
        missing=missing,
    )
