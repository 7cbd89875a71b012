"""Business impact of a challenger model: same approvals, fewer bads -- and who swaps.

:func:`compare_at_approval_rate`, :func:`compare_at_bad_rate`
    "At the bank's approval rate of X %, the bad rate falls from A to B" and "at a
    constant bad rate of A, approval rises from X to Y", as numbers and a sentence.
:func:`swap_set`
    Two models at their cut-offs: counts and bad rates of the applicants both approve,
    only one approves, and both decline.

Decisions follow :mod:`riskfed.validation.strategy`: approve ``p <= cutoff``, never
more than a target approval rate, the reached rate always reported. "Bad" means
defaulted (``y_true == 1``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError
from riskfed.validation._checks import check_float, check_names, check_pair
from riskfed.validation.strategy import _Cumulative

@dataclass(frozen=True)
class StrategyPoint:
    """One model's policy at a cut-off.

    Attributes
    ----------
    model : str
        Display name.
    cutoff : float
        Approve ``p <= cutoff`` (``-inf``: approve no one).
    approval_rate, bad_rate : float
        Reached approval rate and bad rate among the approved (NaN if none).
    approved, bads_approved : int
        Counts behind the rates.
    """

    model: str
    cutoff: float
    approval_rate: float
    bad_rate: float
    approved: int
    bads_approved: int


@dataclass(frozen=True)
class StrategyComparison:
    """Two models compared at the same approval rate or at the same bad rate.

    Attributes
    ----------
    held : str
        ``"approval_rate"`` or ``"bad_rate"``: what is kept constant.
    value : float
        The approval rate or bad rate held.
    baseline, challenger : StrategyPoint
        E.g. the bank-only and the federated model.
    """

    held: str
    value: float
    baseline: StrategyPoint
    challenger: StrategyPoint

    @property
    def sentence(self) -> str:
        """The comparison in one sentence an analyst can put in a credit paper."""
        b, c = self.baseline, self.challenger
        if self.held == "approval_rate":
            text = f"At an approval rate of {_pct(self.value)}, the bad rate " + _change(
                b.bad_rate, c.bad_rate, b.model, c.model
            )
            if max(abs(b.approval_rate - self.value), abs(c.approval_rate - self.value)) > 5e-4:
                text += (
                    f"; tied PDs allow approval rates of {_pct(b.approval_rate)} and "
                    f"{_pct(c.approval_rate)}"
                )
            return text + "."
        return (
            f"At a constant bad rate of {_pct(self.value)}, the approval rate "
            + _change(b.approval_rate, c.approval_rate, b.model, c.model)
            + "."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (with the sentence), ready for JSON."""
        return dataclasses.asdict(self) | {"sentence": self.sentence}


def _pct(rate: float) -> str:
    return "n/a" if np.isnan(rate) else f"{100 * rate:.1f} %"


def _change(before: float, after: float, name_before: str, name_after: str) -> str:
    """'falls from 12.0 % (bank-only) to 10.5 % (federated)', or 'stays at ...'."""
    if not (np.isnan(before) or np.isnan(after)) and _pct(before) == _pct(after):
        return f"stays at {_pct(before)} ({name_before} and {name_after})"
    if np.isnan(before) or np.isnan(after):
        verb = "changes"  # a model that approves no one has no bad rate
    else:
        verb = "rises" if after > before else "falls"
    return f"{verb} from {_pct(before)} ({name_before}) to {_pct(after)} ({name_after})"


def _point(name: str, cum: _Cumulative, k: int) -> StrategyPoint:
    row = cum.row(k)
    return StrategyPoint(
        name, row["cutoff"], row["approval_rate"], row["bad_rate_approved"],
        row["approved"], row["bads_approved"],
    )


def compare_at_approval_rate(
    y_true: Any,
    p_baseline: Any,
    p_challenger: Any,
    approval_rate: float,
    *,
    names: tuple[str, str] = ("bank-only", "federated"),
) -> StrategyComparison:
    """Bad rates of two models when each approves the same share of applicants.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p_baseline, p_challenger : array-like of shape (n,)
        PDs of the current model (e.g. bank-only) and the challenger (e.g. federated)
        for the same applicants.
    approval_rate : float
        The bank's approval rate, in [0, 1].
    names : (str, str), default ("bank-only", "federated")
        Display names of the baseline and the challenger.

    Returns
    -------
    StrategyComparison
        ``held="approval_rate"``; each model at :func:`cutoff_for_approval_rate`.

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        On an invalid ``approval_rate`` or ``names``.

    Examples
    --------
    >>> y = [0, 0, 1, 1]
    >>> c = compare_at_approval_rate(y, [.3, .1, .2, .4], [.1, .2, .3, .4], 0.5)
    >>> print(c.sentence)  # doctest: +NORMALIZE_WHITESPACE
    At an approval rate of 50.0 %, the bad rate falls from 50.0 % (bank-only)
    to 0.0 % (federated).
    """
    owner = "compare_at_approval_rate"
    rate = check_float(approval_rate, "approval_rate", owner, 0.0, 1.0, closed="both")
    names = check_names(names, owner)
    y, base, chal = check_pair(y_true, p_baseline, p_challenger)
    points = []
    for name, probs in zip(names, (base, chal), strict=True):
        cum = _Cumulative.of(y, probs)
        points.append(_point(name, cum, cum.at_rate(rate)))
    return StrategyComparison("approval_rate", rate, *points)


def compare_at_bad_rate(
    y_true: Any,
    p_baseline: Any,
    p_challenger: Any,
    bad_rate: float,
    *,
    names: tuple[str, str] = ("bank-only", "federated"),
) -> StrategyComparison:
    """Approval rates of two models when each may approve up to the same bad rate.

    For each model, the highest approval rate whose bad rate among the approved is at
    most ``bad_rate`` (scanning every cut-off, so a noisy low-approval stretch above the
    limit does not stop the search).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p_baseline, p_challenger : array-like of shape (n,)
        PDs of the current model and the challenger for the same applicants.
    bad_rate : float
        The bad rate to hold, in [0, 1]; typically the baseline's bad rate at the bank's
        approval rate (from :func:`compare_at_approval_rate`).
    names : (str, str), default ("bank-only", "federated")
        Display names of the baseline and the challenger.

    Returns
    -------
    StrategyComparison
        ``held="bad_rate"``. A model that cannot reach the bad rate at any cut-off
        approves no one (approval rate 0, cutoff ``-inf``).

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        On an invalid ``bad_rate`` or ``names``.

    Examples
    --------
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> c = compare_at_bad_rate(y, [.5, .1, .2, .3, .4, .6], [.1, .2, .5, .3, .4, .6], 0.0)
    >>> c.baseline.approval_rate, c.challenger.approval_rate
    (0.16666666666666666, 0.5)
    """
    owner = "compare_at_bad_rate"
    limit = check_float(bad_rate, "bad_rate", owner, 0.0, 1.0, closed="both")
    names = check_names(names, owner)
    y, base, chal = check_pair(y_true, p_baseline, p_challenger)
    points = []
    for name, probs in zip(names, (base, chal), strict=True):
        cum = _Cumulative.of(y, probs)
        points.append(_point(name, cum, cum.at_bad_rate(limit)))
    return StrategyComparison("bad_rate", limit, *points)


# ---------------------------------------------------------------------------- swap set


def swap_set(
    y_true: Any,
    p_a: Any,
    p_b: Any,
    *,
    cutoff_a: float,
    cutoff_b: float,
    names: tuple[str, str] = ("bank-only", "federated"),
) -> pd.DataFrame:
    """Who changes decision between two models at their cut-offs.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p_a, p_b : array-like of shape (n,)
        The two models' PDs for the same applicants.
    cutoff_a, cutoff_b : float
        Each model approves ``p <= cutoff`` (e.g. from :func:`cutoff_for_approval_rate`
        at the bank's approval rate).
    names : (str, str), default ("bank-only", "federated")
        Display names of models A and B.

    Returns
    -------
    pandas.DataFrame
        Four rows -- ``segment`` ``both_approve``, ``only_a_approves``,
        ``only_b_approves``, ``both_decline`` -- with ``description`` (using the names),
        ``n``, ``share`` (of all applicants), ``bads`` and ``bad_rate`` (NaN if empty).
        The swap-in (``only_b_approves``) and swap-out (``only_a_approves``) rows show
        what changing model does: similar sizes and a lower bad rate swapped in than
        out mean better decisions at the same volume.

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        On a cut-off that is not a number (NaN included), or invalid ``names``.

    Examples
    --------
    >>> s = swap_set([0, 0, 1, 1], [.1, .4, .2, .3], [.1, .2, .4, .3], cutoff_a=.2, cutoff_b=.2)
    >>> s.set_index("segment")["bads"].tolist()
    [0, 1, 0, 1]
    """
    owner = "swap_set"
    names = check_names(names, owner)
    limits = []
    for name, value in (("cutoff_a", cutoff_a), ("cutoff_b", cutoff_b)):
        # -inf (approve no one, from cutoff_for_approval_rate) and inf are valid policies.
        real = isinstance(value, (int, float, np.integer, np.floating))
        if isinstance(value, bool) or not real or np.isnan(value):
            raise ConfigurationError(
                f"The '{name}' parameter of {owner} must be a float (a PD cut-off; -inf "
                f"approves no one). Got {value!r} instead."
            )
        limits.append(float(value))
    y, a, b = check_pair(y_true, p_a, p_b)
    approve_a, approve_b = a <= limits[0], b <= limits[1]
    masks = {
        "both_approve": (approve_a & approve_b, "both approve"),
        "only_a_approves": (approve_a & ~approve_b, f"only {names[0]} approves"),
        "only_b_approves": (~approve_a & approve_b, f"only {names[1]} approves"),
        "both_decline": (~approve_a & ~approve_b, "both decline"),
    }
    rows = []
    for segment, (mask, description) in masks.items():
        n, bads = int(mask.sum()), int(y[mask].sum())
        rows.append(
            {
                "segment": segment,
                "description": description,
                "n": n,
                "share": n / y.size,
                "bads": bads,
                "bad_rate": bads / n if n else np.nan,
            }
        )
    return pd.DataFrame(rows)


__all__ = [
    "StrategyComparison",
    "StrategyPoint",
    "compare_at_approval_rate",
    "compare_at_bad_rate",
    "swap_set",
]
