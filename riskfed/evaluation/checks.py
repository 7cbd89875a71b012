"""Input checks shared by every metric: labels 0/1 with both classes, finite PDs in [0, 1],
matching lengths; a violation names at most five offending rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError, SchemaError, format_rows


def _to_1d(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``values`` as a 1-D array together with the labels used to name its rows."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise SchemaError(
                f"{name} must be one-dimensional; got a DataFrame with "
                f"{values.shape[1]} columns."
            )
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series):
        labels = values.index.to_numpy()
        if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            # Nullable dtypes (Int64, Float64, boolean) hold pd.NA, which numpy cannot
            # compare; NaN keeps the missing rows visible to the checks below.
            array = values.to_numpy(dtype=float, na_value=np.nan)
        else:
            array = values.to_numpy(dtype=object)
    else:
        array = np.asarray(values)
        labels = np.arange(array.shape[0]) if array.ndim >= 1 else np.arange(1)
    if array.ndim != 1:
        hint = (
            " Pass the probability of default only, e.g. predict_proba(X)[:, 1]."
            if array.ndim == 2 and array.shape[1] == 2
            else ""
        )
        raise SchemaError(f"{name} must be one-dimensional; got shape {array.shape}.{hint}")
    return array, labels


def _rows_phrase(rows: np.ndarray, total: int) -> str:
    """'row 4 holds' / 'rows 1, 3 and 2 more hold': at most five labels, with the verb."""
    listed = format_rows(rows.tolist(), total=total)
    return f"row {listed} holds" if total == 1 else f"rows {listed} hold"


def _check_labels(y_true: Any, name: str = "y_true") -> tuple[np.ndarray, np.ndarray]:
    """Return ``y_true`` as an int array of 0/1 and its row labels; reject anything else."""
    array, labels = _to_1d(y_true, name)
    if array.size == 0:
        raise SchemaError(
            f"{name} is empty; at least one defaulter and one non-defaulter are needed."
        )
    if array.dtype.kind in "biuf":
        numeric = array.astype(float)
        bad = ~np.isin(numeric, (0.0, 1.0))
    else:
        # Object or string arrays: only genuine numbers 0/1 are labels. The string "1"
        # is rejected rather than coerced, so a mis-parsed column cannot pass silently.
        bad = np.array(
            [
                isinstance(v, str)
                or not isinstance(v, (bool, int, float, np.number))
                or v not in (0, 1)
                for v in array
            ],
            dtype=bool,
        )
        numeric = np.where(bad, np.nan, array.astype(object)).astype(float)
    if bad.any():
        rows = labels[bad]
        # repr for strings so that the text "1" is visibly not the number 1.
        shown = sorted({repr(str(v)) if isinstance(v, str) else str(v) for v in array[bad]})[:5]
        raise SchemaError(
            f"{name} must hold only 0 (repaid) and 1 (defaulted); "
            f"{_rows_phrase(rows, int(bad.sum()))} other values (found: {', '.join(shown)}).",
            column=name,
            rows=rows.tolist(),
        )
    y = numeric.astype(np.int64)
    if y.min() == y.max():
        present = int(y[0])
        raise SchemaError(
            f"{name} must contain both classes (0 and 1); all {y.size} rows are {present}. "
            "Ranking metrics are undefined without both defaulters and non-defaulters.",
            column=name,
        )
    return y, labels


def _check_probabilities(p: Any, name: str = "p") -> np.ndarray:
    """Return ``p`` as a float array; reject non-numeric, non-finite or out-of-[0, 1] values."""
    array, labels = _to_1d(p, name)
    try:
        values = array.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(
            f"{name} must be numeric probabilities of default; got dtype {array.dtype}.",
            column=name,
        ) from None
    bad = ~np.isfinite(values)
    if bad.any():
        rows = labels[bad]
        raise SchemaError(
            f"{name} must be finite; {_rows_phrase(rows, int(bad.sum()))} NaN or infinite.",
            column=name,
            rows=rows.tolist(),
        )
    bad = (values < 0.0) | (values > 1.0)
    if bad.any():
        rows = labels[bad]
        raise SchemaError(
            f"{name} must be probabilities in [0, 1]; {_rows_phrase(rows, int(bad.sum()))} "
            f"values outside that range (min {values.min():g}, max {values.max():g}).",
            column=name,
            rows=rows.tolist(),
        )
    return values


def _check_inputs(y_true: Any, p: Any, p_name: str = "p") -> tuple[np.ndarray, np.ndarray]:
    """Validate a (labels, probabilities) pair and return them as numpy arrays."""
    y, _ = _check_labels(y_true)
    probs = _check_probabilities(p, p_name)
    if y.shape[0] != probs.shape[0]:
        raise SchemaError(
            f"y_true and {p_name} must have the same length; got {y.shape[0]} labels and "
            f"{probs.shape[0]} probabilities."
        )
    return y, probs


def _check_int_param(value: Any, name: str, owner: str, low: int) -> int:
    """Validate an integer parameter with a scikit-learn style message."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigurationError(
            f"The '{name}' parameter of {owner} must be an int in the range "
            f"[{low}, inf). Got {value!r} instead."
        )
    return int(value)


def _downsample(n: int, max_points: int, keep: tuple[int, ...] = ()) -> np.ndarray:
    """At most ``max_points`` evenly spread row indices, always with first, last and ``keep``."""
    if n <= max_points:
        return np.arange(n)
    idx = np.unique(np.linspace(0, n - 1, max_points - len(keep)).round().astype(np.int64))
    return np.unique(np.concatenate([idx, np.asarray(keep, dtype=np.int64)]))


# ------------------------------------------------------------------------------ metrics


def _check_scores(values: Any, name: str) -> np.ndarray:
    """Return a non-empty, finite, numeric 1-D array of scores."""
    array, labels = _to_1d(values, name)
    if array.size == 0:
        raise SchemaError(f"{name} is empty; the population stability index needs scores.")
    try:
        scores = array.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(f"{name} must be numeric scores; got dtype {array.dtype}.") from None
    bad = ~np.isfinite(scores)
    if bad.any():
        rows = labels[bad]
        raise SchemaError(
            f"{name} must be finite; {_rows_phrase(rows, int(bad.sum()))} NaN or infinite.",
            column=name,
            rows=rows.tolist(),
        )
    return scores
