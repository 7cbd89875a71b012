"""Calibrators: map a model's PDs to PDs that match observed default rates.

The bank fits a calibrator on applicants it holds labels for and the model was not fitted
on (a calibration split), then applies it to every PD the model produces. A calibrator
changes the PD levels, never the ranking (:class:`PlattCalibrator` with a positive slope
and :class:`InterceptShiftCalibrator` keep it exactly; :class:`IsotonicCalibrator` keeps
its order but may tie neighbours), so AUC, KS and Gini are unchanged or nearly so.

:class:`InterceptShiftCalibrator`
    Adds one constant to the log-odds so the mean PD equals a target default rate (the
    portfolio's long-run rate, or the calibration split's). Fixes calibration in the
    large only.
:class:`PlattCalibrator`
    Logistic regression on the log-odds: ``PD' = sigmoid(a * logit(PD) + b)``. Fixes a
    log-odds that is shifted and scaled.
:class:`IsotonicCalibrator`
    The best non-decreasing step function of PD (pool-adjacent-violators). Fixes any
    monotone distortion, but needs many defaults and can overfit small samples.

Every calibrator is stored as JSON-ready plain values by ``to_dict`` and restored by
``from_dict`` (or :func:`calibrator_from_dict`); nothing is pickled, so a calibration can
be reviewed, versioned and shared with the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from riskfed.errors import ConfigurationError, NotFittedError, SchemaError
from riskfed.validation._checks import (
    _check_inputs,
    _check_probabilities,
    check_float,
)

FORMAT_VERSION = 1

# PDs of exactly 0 or 1 have infinite log-odds. Platt scaling moves them to this distance
# from the ends first, so a calibrated PD is always finite and strictly inside (0, 1).
LOGIT_CLIP = 1e-12

# Default floor of an isotonic PD: 0.03 %, the PD floor of Basel II and of the original EU
# Capital Requirements Regulation (Art. 160(1), 163(1)); the final Basel III reforms raise
# it to 0.05 % for most exposures. A step with no defaults on the calibration split must
# not get a PD of zero; set pd_floor to the floor that applies to the portfolio.
PD_FLOOR = 0.0003


class _Calibrator:
    """Shared behaviour: the fit check, ``fit_transform`` and the JSON envelope."""

    kind: ClassVar[str] = ""
    _fitted: ClassVar[tuple[str, ...]] = ()

    def _check_fitted(self) -> None:
        if not all(hasattr(self, name) for name in self._fitted):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(p, y_true) on a "
                "calibration split first."
            )

    def _require_labels(self, y_true: Any) -> None:
        if y_true is None:
            raise ConfigurationError(
                f"The 'y_true' parameter of {type(self).__name__}.fit must be the default "
                "flags (0/1) of the calibration split. Got None instead."
            )

    def fit_transform(self, p: Any, y_true: Any = None) -> np.ndarray:
        """Fit on ``(p, y_true)`` and return the calibrated ``p``."""
        return self.fit(p, y_true).transform(p)

    def _params(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The fitted calibrator as JSON-ready plain values.

        Raises
        ------
        NotFittedError
            If called before ``fit``.
        """
        self._check_fitted()
        fitted = {}
        for name in self._fitted:
            value = getattr(self, name)
            fitted[name] = value.tolist() if isinstance(value, np.ndarray) else float(value)
        return {
            "kind": self.kind,
            "format_version": FORMAT_VERSION,
            "params": self._params(),
            "fitted": fitted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "_Calibrator":
        """Rebuild a fitted calibrator from :meth:`to_dict`'s output.

        Raises
        ------
        ConfigurationError
            If ``data`` is not a stored calibrator of this kind, or a value is missing
            or not finite.
        """
        owner = f"{cls.__name__}.from_dict"
        ok = (
            isinstance(data, Mapping)
            and data.get("kind") == cls.kind
            and data.get("format_version") == FORMAT_VERSION
            and isinstance(data.get("params"), Mapping)
            and isinstance(data.get("fitted"), Mapping)
            and set(data["fitted"]) == set(cls._fitted)
            and set(data["params"]) == set(cls()._params())
        )
        if not ok:
            shown = dict(data) if isinstance(data, Mapping) else data
            raise ConfigurationError(
                f"The 'data' parameter of {owner} must be a dict made by "
                f"{cls.__name__}.to_dict (kind {cls.kind!r}, format_version "
                f"{FORMAT_VERSION}, params {sorted(cls()._params())}, fitted values "
                f"{list(cls._fitted)}). "
                f"Got {str(shown)[:200]} instead."
            )
        calibrator = cls(**data["params"])
        for name in cls._fitted:
            value = np.asarray(data["fitted"][name], dtype=float)
            if value.size == 0 or not np.all(np.isfinite(value)):
                raise ConfigurationError(
                    f"The 'data' parameter of {owner} must hold finite fitted values; "
                    f"'{name}' is {data['fitted'][name]!r}."
                )
            setattr(calibrator, name, value if value.ndim else float(value))
        calibrator._check_state()
        return calibrator

    def _check_state(self) -> None:
        """Consistency of restored fitted values (subclasses add their own rules)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"


class InterceptShiftCalibrator(_Calibrator):
    """Shift the log-odds by a constant so the mean PD equals a target default rate.

    ``PD' = sigmoid(logit(PD) + shift_)``, with ``shift_`` solved (Brent's method) so that
    the mean of ``PD'`` over the calibration PDs equals the target. Ranking is unchanged.

    Parameters
    ----------
    target_rate : float or None, default None
        The default rate to calibrate to, strictly between 0 and 1, e.g. the portfolio's
        long-run rate. ``None`` uses the observed default rate of ``y_true`` in ``fit``.

    Attributes
    ----------
    shift_ : float
        The constant added to every log-odds.
    target_rate_ : float
        The default rate the mean PD was matched to.

    Notes
    -----
    PDs of exactly 0 or 1 stay 0 or 1 (their log-odds are infinite); all others move.
    Fitting fails if the target cannot be reached, e.g. when half the PDs are exactly 1
    and the target is below one half.

    Examples
    --------
    >>> cal = InterceptShiftCalibrator(target_rate=0.1).fit([0.2, 0.3, 0.1, 0.2])
    >>> round(float(cal.transform([0.2, 0.3, 0.1, 0.2]).mean()), 6)
    0.1
    """

    kind = "intercept_shift"
    _fitted = ("shift_", "target_rate_")

    def __init__(self, target_rate: float | None = None) -> None:
        self.target_rate = target_rate

    def _params(self) -> dict[str, Any]:
        return {"target_rate": self.target_rate}

    def fit(self, p: Any, y_true: Any = None) -> "InterceptShiftCalibrator":
        """Solve the shift on calibration PDs ``p`` (and labels, if no target rate is set).

        Raises
        ------
        SchemaError
            On invalid PDs or labels, or a target no shift can reach.
        ConfigurationError
            If ``target_rate`` is not strictly between 0 and 1, or both it and
            ``y_true`` are missing.
        """
        owner = "InterceptShiftCalibrator"
        if self.target_rate is None:
            if y_true is None:
                raise ConfigurationError(
                    f"The 'target_rate' parameter of {owner} must be a float in the range "
                    "(0, 1) when fit is called without y_true. Got None instead."
                )
            y, probs = _check_inputs(y_true, p)
            target = float(y.mean())
        else:
            target = check_float(self.target_rate, "target_rate", owner, 0.0, 1.0)
            probs = _check_probabilities(p) if y_true is None else _check_inputs(y_true, p)[1]
        self.shift_ = _solve_shift(logit(probs), target)
        self.target_rate_ = target
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated PDs."""
        self._check_fitted()
        return expit(logit(_check_probabilities(p)) + self.shift_)


def _solve_shift(z: np.ndarray, target: float) -> float:
    """The constant ``s`` with ``mean(sigmoid(z + s)) == target``."""
    # Infinite log-odds (PDs of exactly 0 or 1) never move, which bounds the reachable
    # mean to (share of ones, 1 - share of zeros).
    lowest, highest = float(np.mean(z == np.inf)), 1.0 - float(np.mean(z == -np.inf))
    if not lowest < target < highest:
        raise SchemaError(
            f"No intercept shift can bring the mean PD to {target:g}: the PDs equal to 1 "
            f"and 0 alone keep it within [{lowest:g}, {highest:g}].",
            column="p",
        )
    gap = lambda s: float(np.mean(expit(z + s))) - target  # noqa: E731
    width = 1.0
    while gap(-width) > 0 or gap(width) < 0:  # the gap is increasing in s
        width *= 2.0
    return float(brentq(gap, -width, width, xtol=1e-12))


class PlattCalibrator(_Calibrator):
    """Platt scaling: a logistic regression of the defaults on the model's log-odds.

    ``PD' = sigmoid(slope_ * logit(PD) + intercept_)``, fitted by unpenalised maximum
    likelihood (:class:`sklearn.linear_model.LogisticRegression` with ``C=inf``) on the
    calibration split. A slope of 1 and intercept of 0 leave the PDs as they are.

    Attributes
    ----------
    slope_, intercept_ : float
        The fitted coefficients. A slope below 1 means the model's PDs were too spread
        out (over-confident), above 1 too compressed; a slope of 0 or less means the
        score does not rank defaulters above non-defaulters on the calibration split,
        and calibrating it is not the fix.

    Notes
    -----
    PDs are first clipped to ``[LOGIT_CLIP, 1 - LOGIT_CLIP]`` (1e-12), so PDs of 0 and 1
    map to finite log-odds and calibrated PDs lie strictly inside (0, 1). Platt's
    original target smoothing is not applied: on calibration splits of thousands of
    applicants it changes the coefficients negligibly.

    Examples
    --------
    >>> cal = PlattCalibrator().fit([.1, .2, .3, .4, .6, .7], [0, 0, 1, 0, 1, 1])
    >>> bool(cal.slope_ > 0)
    True
    """

    kind = "platt"
    _fitted = ("slope_", "intercept_")

    def fit(self, p: Any, y_true: Any = None) -> "PlattCalibrator":
        """Fit the slope and intercept on calibration PDs ``p`` and labels ``y_true``.

        Raises
        ------
        SchemaError
            On invalid PDs or labels, or PDs that are all the same.
        ConfigurationError
            If ``y_true`` is missing.
        """
        self._require_labels(y_true)
        y, probs = _check_inputs(y_true, p)
        z = _clipped_logit(probs)
        if np.ptp(z) == 0.0:
            raise SchemaError(
                "p holds a single value on the calibration split; Platt scaling needs at "
                "least two distinct PDs to fit a slope.",
                column="p",
            )
        model = LogisticRegression(C=np.inf).fit(z[:, np.newaxis], y)
        self.slope_ = float(model.coef_[0, 0])
        self.intercept_ = float(model.intercept_[0])
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated PDs."""
        self._check_fitted()
        return expit(self.slope_ * _clipped_logit(_check_probabilities(p)) + self.intercept_)


def _clipped_logit(probs: np.ndarray) -> np.ndarray:
    return logit(np.clip(probs, LOGIT_CLIP, 1.0 - LOGIT_CLIP))


class IsotonicCalibrator(_Calibrator):
    """Isotonic calibration: the best non-decreasing map from PD to default rate.

    Fitted by :class:`sklearn.isotonic.IsotonicRegression`. The fitted function is stored
    as its breakpoints: ``thresholds_`` (PDs, increasing) and ``values_`` (calibrated
    PDs, non-decreasing). Between breakpoints the calibrated PD is interpolated linearly
    (as scikit-learn does); flat stretches are the steps of the pooled blocks.

    Parameters
    ----------
    pd_floor : float, default 0.0003
        Smallest calibrated PD (0.03 %, the Basel II floor; 0.05 % under the final
        Basel III rules for most exposures). A step with no defaults on the calibration
        split would otherwise get a PD of 0.
    pd_cap : float, default 0.9997
        Largest calibrated PD, the same distance from 1, so log-odds and scorecard
        points stay finite.

    Attributes
    ----------
    thresholds_, values_ : numpy.ndarray
        Breakpoints of the fitted function.

    Notes
    -----
    PDs below the smallest calibration PD get the first value, above the largest the
    last (no extrapolation). Each step is estimated from the applicants in it: with few
    defaults the steps are noisy, and the calibrated PDs tie within a step (AUC may drop
    slightly). Prefer Platt scaling unless the calibration split has several hundred
    defaults.

    Examples
    --------
    >>> cal = IsotonicCalibrator().fit([.1, .2, .3, .4], [0, 1, 0, 1])
    >>> cal.transform([.1, .25, .9]).round(4).tolist()
    [0.0003, 0.5, 0.9997]
    """

    kind = "isotonic"
    _fitted = ("thresholds_", "values_")

    def __init__(self, pd_floor: float = PD_FLOOR, pd_cap: float = 1.0 - PD_FLOOR) -> None:
        self.pd_floor = pd_floor
        self.pd_cap = pd_cap

    def _params(self) -> dict[str, Any]:
        return {"pd_floor": self.pd_floor, "pd_cap": self.pd_cap}

    def fit(self, p: Any, y_true: Any = None) -> "IsotonicCalibrator":
        """Fit the step function on calibration PDs ``p`` and labels ``y_true``.

        Raises
        ------
        SchemaError
            On invalid PDs or labels.
        ConfigurationError
            If ``pd_floor`` and ``pd_cap`` are not ``0 <= pd_floor < pd_cap <= 1``, or
            ``y_true`` is missing.
        """
        owner = "IsotonicCalibrator"
        self._require_labels(y_true)
        floor = check_float(self.pd_floor, "pd_floor", owner, 0.0, 1.0, closed="left")
        cap = check_float(self.pd_cap, "pd_cap", owner, floor, 1.0, closed="right")
        y, probs = _check_inputs(y_true, p)
        model = IsotonicRegression(y_min=floor, y_max=cap, increasing=True, out_of_bounds="clip")
        model.fit(probs, y)
        self.thresholds_ = np.asarray(model.X_thresholds_, dtype=float)
        self.values_ = np.asarray(model.y_thresholds_, dtype=float)
        return self

    def _check_state(self) -> None:
        x, v = np.atleast_1d(self.thresholds_), np.atleast_1d(self.values_)
        if x.shape != v.shape or np.any(np.diff(x) <= 0) or np.any(np.diff(v) < 0):
            raise ConfigurationError(
                "The 'data' parameter of IsotonicCalibrator.from_dict must hold increasing "
                "thresholds_ and non-decreasing values_ of the same length."
            )
        self.thresholds_, self.values_ = x, v

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated PDs."""
        self._check_fitted()
        # np.interp holds the end values outside the range: scikit-learn's "clip".
        return np.interp(_check_probabilities(p), self.thresholds_, self.values_)


CALIBRATORS: dict[str, type[_Calibrator]] = {
    c.kind: c for c in (InterceptShiftCalibrator, PlattCalibrator, IsotonicCalibrator)
}


def calibrator_from_dict(data: Mapping[str, Any]) -> _Calibrator:
    """Rebuild any stored calibrator, choosing the class from ``data["kind"]``.

    Raises
    ------
    ConfigurationError
        If the kind is unknown or the values are invalid.

    Examples
    --------
    >>> cal = PlattCalibrator().fit([.1, .2, .3, .4, .6, .7], [0, 0, 1, 0, 1, 1])
    >>> type(calibrator_from_dict(cal.to_dict())).__name__
    'PlattCalibrator'
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in CALIBRATORS:
        raise ConfigurationError(
            "The 'data' parameter of calibrator_from_dict must be a dict whose 'kind' is "
            f"one of {sorted(CALIBRATORS)}. Got kind {kind!r} instead."
        )
    return CALIBRATORS[kind].from_dict(data)


__all__ = [
    "CALIBRATORS",
    "LOGIT_CLIP",
    "PD_FLOOR",
    "InterceptShiftCalibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "calibrator_from_dict",
]
