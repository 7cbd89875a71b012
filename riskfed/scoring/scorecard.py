"""Scorecard points and adverse-action reason codes.

A scorecard restates a probability of default ``p`` on the points scale credit teams
use: higher points mean a safer applicant, and every ``pdo`` points double the good:bad
odds. Three numbers define the scale and are always explicit (as in optbinning's
``scaling_method="pdo_odds"``)::

    odds   = (1 - p) / p                          good:bad odds
    factor = pdo / ln(2)
    offset = base_points - factor * ln(base_odds)
    points = offset + factor * ln(odds)

so an applicant at ``base_odds`` scores exactly ``base_points``.

Reason codes explain a low score: :func:`linear_contributions` splits a logistic
model's log-odds of default into one term per feature relative to a reference applicant,
and :func:`reason_codes` names, per applicant, the features that cost the most points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from riskfed import settings
from riskfed.errors import ConfigurationError, MissingColumnError, SchemaError, format_rows

# Probabilities are clipped to [P_CLIP, 1 - P_CLIP] before taking log-odds: p = 0 or 1
# would give infinite points. 1e-12 keeps points finite (about +-800 around the offset
# at pdo = 20) while leaving every probability a model realistically outputs untouched.
P_CLIP = 1e-12


def _as_float_array(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``values`` as a float array and the labels naming its rows (flattened)."""
    try:
        if isinstance(values, pd.Series):
            labels = values.index.to_numpy()
            array = values.to_numpy(dtype=float, na_value=np.nan)
        else:
            array = np.asarray(values, dtype=float)
            labels = np.arange(array.size)
    except (TypeError, ValueError):
        raise SchemaError(f"{name} must be numeric.", column=name) from None
    return array, labels


def _raise_rows(bad: np.ndarray, labels: np.ndarray, name: str, problem: str) -> None:
    """Raise a SchemaError naming at most five of the rows flagged in ``bad``."""
    flat = bad.ravel()
    rows = labels[flat].tolist()
    total = int(flat.sum())
    where = f"row {format_rows(rows, total=total)} is" if total == 1 else (
        f"rows {format_rows(rows, total=total)} are"
    )
    raise SchemaError(f"{name} must be {problem}; {where} not.", column=name, rows=rows)


@dataclass(frozen=True)
class Scorecard:
    """Points scale for probabilities of default ("pdo / odds" scaling).

    Parameters
    ----------
    base_points : float, default 600.0
        Points given to an applicant whose good:bad odds equal ``base_odds``.
    base_odds : float, default 50.0
        Good:bad odds at ``base_points`` (50 means 50:1, a PD of 1/51).
    pdo : float, default 20.0
        Points to double the odds: ``pdo`` more points means half the bad odds.

    Raises
    ------
    ConfigurationError
        If any parameter is not a finite number > 0.

    Examples
    --------
    >>> card = Scorecard(base_points=600, base_odds=50, pdo=20)
    >>> float(card.points(1 / 51))
    600.0
    >>> round(float(card.points(1 / 101)) - 600, 1)  # odds 100:1, twice the base odds
    20.0
    """

    base_points: float = settings.default("base_points")
    base_odds: float = settings.default("base_odds")
    pdo: float = settings.default("pdo")

    def __post_init__(self) -> None:
        for name in ("base_points", "base_odds", "pdo"):
            # Stored as plain floats so that to_dict() is JSON-ready whatever was passed.
            object.__setattr__(self, name, float(settings.check(name, getattr(self, name), "Scorecard")))

    @property
    def factor(self) -> float:
        """Points per unit of log-odds: ``pdo / ln 2``."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """Points at even (1:1) odds: ``base_points - factor * ln(base_odds)``."""
        return self.base_points - self.factor * math.log(self.base_odds)

    def points(self, p: Any) -> np.ndarray | float:
        """Scorecard points for probabilities of default.

        Parameters
        ----------
        p : float or array-like
            Probability of default, finite and in [0, 1].

        Returns
        -------
        numpy.ndarray or float
            ``offset + factor * ln((1 - p) / p)``, same shape as ``p`` (a float for a
            scalar). Decreasing in ``p``. ``p`` is clipped to ``[1e-12, 1 - 1e-12]``
            first (``P_CLIP``) so that 0 and 1 give large but finite points.

        Raises
        ------
        SchemaError
            If ``p`` is not numeric, is NaN or infinite, or lies outside [0, 1]; the
            message names at most five rows.

        Examples
        --------
        >>> Scorecard().points([0.5, 1 / 51]).round(2).tolist()
        [487.12, 600.0]
        """
        values, labels = _as_float_array(p, "p")
        if not np.isfinite(values).all():
            _raise_rows(~np.isfinite(values), labels, "p", "finite")
        out_of_range = (values < 0.0) | (values > 1.0)
        if out_of_range.any():
            _raise_rows(out_of_range, labels, "p", "a probability in [0, 1]")
        clipped = np.clip(values, P_CLIP, 1.0 - P_CLIP)
        # logit(p) = ln(p / (1 - p)) is the log-odds of default, minus the good:bad log-odds;
        # scipy's version stays accurate near 0 and 1 where the naive ratio loses digits.
        result = self.offset - self.factor * logit(clipped)
        return float(result) if result.ndim == 0 else result

    def probability(self, points: Any) -> np.ndarray | float:
        """Probability of default for scorecard points: the inverse of :meth:`points`.

        Parameters
        ----------
        points : float or array-like
            Scorecard points, finite.

        Returns
        -------
        numpy.ndarray or float
            ``1 / (1 + exp((points - offset) / factor))``, same shape as ``points`` (a
            float for a scalar).

        Raises
        ------
        SchemaError
            If ``points`` is not numeric or is NaN or infinite.

        Examples
        --------
        >>> round(Scorecard().probability(600.0), 6)
        0.019608
        """
        values, labels = _as_float_array(points, "points")
        if not np.isfinite(values).all():
            _raise_rows(~np.isfinite(values), labels, "points", "finite")
        # expit is the overflow-safe logistic function: extreme points give 0 or 1, not NaN.
        result = expit(-(values - self.offset) / self.factor)
        return float(result) if result.ndim == 0 else result

    def to_dict(self) -> dict[str, float]:
        """The three scaling parameters as a JSON-ready dict.

        Examples
        --------
        >>> Scorecard().to_dict()
        {'base_points': 600.0, 'base_odds': 50.0, 'pdo': 20.0}
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scorecard:
        """Rebuild a scorecard from :meth:`to_dict` output.

        Parameters
        ----------
        d : Mapping[str, float]
            Keys ``base_points``, ``base_odds`` and ``pdo``; a missing key takes its
            default.

        Returns
        -------
        Scorecard

        Raises
        ------
        ConfigurationError
            If ``d`` has keys other than the three, or a value out of range.

        Examples
        --------
        >>> Scorecard.from_dict({"base_points": 500, "base_odds": 20, "pdo": 40}).pdo
        40.0
        """
        if not isinstance(d, Mapping):
            raise ConfigurationError(
                f"Scorecard.from_dict expects a mapping; got {type(d).__name__}."
            )
        # An unknown key is most likely a typo ("pd0"); ignoring it would silently fall
        # back to a default scale.
        unknown = sorted(set(d) - {"base_points", "base_odds", "pdo"}, key=str)
        if unknown:
            raise ConfigurationError(
                f"Scorecard.from_dict got unknown keys {format_rows(unknown)}; expected "
                "'base_points', 'base_odds' and 'pdo'."
            )
        return cls(**d)


def linear_contributions(
    X: pd.DataFrame,
    coef: Mapping[str, float],
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Per-feature contributions of a linear model to the log-odds of default.

    Parameters
    ----------
    X : pandas.DataFrame
        Applicants' features, already standardised the way the model saw them.
        Columns not named in ``coef`` are not used.
    coef : Mapping[str, float]
        Model weight of each feature on the log-odds of default (positive = raises
        risk), e.g. ``{"bank:debt_to_income": 0.8, "fintech_1:late_bill_payments_12m":
        0.5}``.
    reference : Mapping[str, float], optional
        The reference applicant's feature values. Defaults to 0 for every feature,
        which is the population mean after standard scaling.

    Returns
    -------
    pandas.DataFrame
        Same index as ``X``, one column per ``coef`` key (in its order), holding
        ``coef_j * (x_j - reference_j)``. Each row sums to the applicant's log-odds of
        default minus the reference applicant's.

    Raises
    ------
    MissingColumnError
        If a feature in ``coef`` is not a column of ``X``.
    SchemaError
        If a used column is non-numeric or holds NaN or infinite values.
    ConfigurationError
        If ``reference`` misses a feature of ``coef`` or names one it does not have, or
        a weight or reference value is not finite.

    Examples
    --------
    >>> X = pd.DataFrame({"bank:dti": [1.0, -0.5], "fintech_1:late": [0.0, 2.0]})
    >>> linear_contributions(X, {"bank:dti": 0.8, "fintech_1:late": 0.5}).values.tolist()
    [[0.8, 0.0], [-0.4, 1.0]]
    """
    if not isinstance(X, pd.DataFrame):
        raise SchemaError(f"X must be a pandas DataFrame; got {type(X).__name__}.")
    features = list(coef)
    missing = [f for f in features if f not in X.columns]
    if missing:
        raise MissingColumnError(
            f"X has no column {format_rows(missing)} named in coef.", column=missing[0]
        )
    if reference is None:
        ref = dict.fromkeys(features, 0.0)
    else:
        absent = [f for f in features if f not in reference]
        extra = [f for f in reference if f not in coef]
        if absent or extra:
            raise ConfigurationError(
                "The 'reference' parameter of linear_contributions must have exactly the "
                f"features of coef. Missing: {format_rows(absent) or 'none'}; "
                f"unknown: {format_rows(extra) or 'none'}."
            )
        ref = {f: reference[f] for f in features}
    weights = np.array([coef[f] for f in features], dtype=float)
    ref_values = np.array([ref[f] for f in features], dtype=float)
    if not (np.isfinite(weights).all() and np.isfinite(ref_values).all()):
        bad = [f for f, w, r in zip(features, weights, ref_values) if not np.isfinite([w, r]).all()]
        raise ConfigurationError(
            f"Weights and reference values must be finite; feature {format_rows(bad)} is not."
        )
    values = _numeric_frame(X[features], "X")
    return pd.DataFrame((values - ref_values) * weights, index=X.index, columns=features)


def _numeric_frame(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Return a DataFrame's values as floats; name the column and rows of any bad value."""
    for column in frame.columns:
        series = frame[column]
        dtype = series.dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise SchemaError(
                f"Column {column!r} of {name} must be numeric; got dtype {series.dtype}.",
                column=str(column),
            )
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = frame.index[bad].tolist()
            listed = format_rows(rows)
            where = f"row {listed} is" if len(rows) == 1 else f"rows {listed} are"
            raise SchemaError(
                f"Column {column!r} of {name} must be finite; {where} NaN or infinite.",
                column=str(column),
                rows=rows,
            )
    return frame.to_numpy(dtype=float)


def reason_codes(
    contributions: pd.DataFrame,
    *,
    top: int = 4,
    scorecard: Scorecard | None = None,
) -> pd.DataFrame:
    """The features that cost each applicant the most points, largest first.

    Parameters
    ----------
    contributions : pandas.DataFrame
        One row per applicant, one column per feature (e.g. ``"bank:debt_to_income"``),
        holding the feature's contribution to the log-odds of default relative to a
        reference applicant (see :func:`linear_contributions`). Positive raises risk.
    top : int, default 4
        How many reasons to report per applicant (at least 1).
    scorecard : Scorecard, optional
        Scale used to turn log-odds into points; defaults to ``Scorecard()``
        (600 points at 50:1, pdo 20).

    Returns
    -------
    pandas.DataFrame
        Same index as ``contributions`` with columns ``reason_1`` ... ``reason_{top}``
        (feature names, ``None`` once the applicant has no more positive
        contributions) followed by ``points_1`` ... ``points_{top}`` (the points each
        reason costs, ``factor * contribution`` rounded to 0.1; NaN where the reason is
        ``None``). Only positive contributions are reasons; ties keep column order.

    Raises
    ------
    SchemaError
        If ``contributions`` is not a DataFrame, or a column is non-numeric or holds
        NaN or infinite values.
    ConfigurationError
        If ``top`` is not an int >= 1.

    Examples
    --------
    >>> c = pd.DataFrame({"bank:dti": [0.5, -0.2], "fintech_1:late": [0.1, -0.1]})
    >>> reason_codes(c, top=2).to_dict("records")[0]
    {'reason_1': 'bank:dti', 'reason_2': 'fintech_1:late', 'points_1': 14.4, 'points_2': 2.9}
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ConfigurationError(
            f"The 'top' parameter of reason_codes must be an int in the range [1, inf). "
            f"Got {top!r} instead."
        )
    if not isinstance(contributions, pd.DataFrame):
        raise SchemaError(
            f"contributions must be a pandas DataFrame; got {type(contributions).__name__}."
        )
    card = Scorecard() if scorecard is None else scorecard
    values = _numeric_frame(contributions, "contributions")
    n_rows, n_features = values.shape
    names = np.array([str(c) for c in contributions.columns], dtype=object)

    # Pad with -inf columns so that top may exceed the number of features.
    width = max(top, n_features)
    padded = np.full((n_rows, width), -np.inf)
    padded[:, :n_features] = values
    order = np.argsort(-padded, axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(padded, order, axis=1)
    is_reason = picked > 0

    reasons = np.full((n_rows, top), None, dtype=object)
    reasons[is_reason] = names[order[is_reason]]
    points = np.full((n_rows, top), np.nan)
    # A contribution c to the log-odds of default lowers ln(good:bad odds) by c, which
    # costs factor * c points.
    points[is_reason] = np.round(card.factor * picked[is_reason], 1)

    index = contributions.index
    # dtype=object keeps None as None; pandas would otherwise infer a string dtype and
    # turn the missing reasons into NaN.
    columns: dict[str, Any] = {
        f"reason_{k + 1}": pd.Series(reasons[:, k], index=index, dtype=object) for k in range(top)
    }
    columns.update(
        {f"points_{k + 1}": pd.Series(points[:, k], index=index) for k in range(top)}
    )
    return pd.DataFrame(columns, index=index)


__all__ = ["P_CLIP", "Scorecard", "linear_contributions", "reason_codes"]
