"""Cut-off strategy tables: approval rate against bad rate, cut-off by cut-off.

A credit policy approves an applicant when the predicted PD is at or below a cut-off.
Every function here and in :mod:`riskfed.validation.impact` follows that rule: ``approve
if p <= cutoff``. Applicants with the same PD always get the same decision, so with a
discrete score (scorecard points, rounded PDs) an approval rate can only be met
approximately; the functions never exceed a target approval rate and always report the
rate actually reached.

:func:`cutoff_for_approval_rate`
    The PD cut-off that approves a given share of applicants.
:func:`cutoff_table`, :func:`compare_cutoff_tables`
    The cut-off strategy table: for each approval rate (or PD cut-off), the approval
    rate, the bad rate among the approved, and goods and bads approved and declined.

"Bad" means defaulted (``y_true == 1``), "good" repaid. Rates are measured on the
applicants given, usually a holdout with known outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError
from riskfed.validation._checks import _check_inputs, _check_probabilities, check_float

# Default grid of the strategy table: approval rates 5 %, 10 %, ..., 100 %.
DEFAULT_APPROVAL_RATES = tuple(round(0.05 * k, 2) for k in range(1, 21))


@dataclass(frozen=True)
class _Cumulative:
    """Applicants and bads at or below each distinct PD, ascending."""

    cutoffs: np.ndarray
    approved: np.ndarray
    bads: np.ndarray
    n: int
    n_bads: int

    @classmethod
    def of(cls, y: np.ndarray, probs: np.ndarray) -> "_Cumulative":
        cutoffs, position = np.unique(probs, return_inverse=True)
        approved = np.cumsum(np.bincount(position))
        bads = np.cumsum(np.bincount(position, weights=y)).round().astype(np.int64)
        return cls(cutoffs, approved, bads, int(y.size), int(y.sum()))

    def at_rate(self, rate: float) -> int:
        """Index of the largest cut-off approving at most ``rate`` of applicants (-1: none)."""
        # The tiny slack keeps 0.7 * 1000 from rounding to 699.99... approvals.
        most = np.floor(rate * self.n + 1e-9)
        return int(np.searchsorted(self.approved, most, side="right")) - 1

    def at_cutoff(self, cutoff: float) -> int:
        """Index of the largest distinct PD at or below ``cutoff`` (-1: none)."""
        return int(np.searchsorted(self.cutoffs, cutoff, side="right")) - 1

    def at_bad_rate(self, bad_rate: float) -> int:
        """Index of the most approvals whose bad rate stays at or below ``bad_rate``."""
        ok = self.bads <= bad_rate * self.approved + 1e-9
        return int(np.flatnonzero(ok)[-1]) if ok.any() else -1

    def row(self, k: int) -> dict[str, float | int]:
        """Every column of the strategy table for cut-off index ``k``."""
        approved = int(self.approved[k]) if k >= 0 else 0
        bads = int(self.bads[k]) if k >= 0 else 0
        declined, bads_declined = self.n - approved, self.n_bads - bads
        goods = self.n - self.n_bads
        return {
            "cutoff": float(self.cutoffs[k]) if k >= 0 else -np.inf,
            "approved": approved,
            "declined": declined,
            "approval_rate": approved / self.n,
            "goods_approved": approved - bads,
            "bads_approved": bads,
            "goods_declined": declined - bads_declined,
            "bads_declined": bads_declined,
            "bad_rate_approved": bads / approved if approved else np.nan,
            "bad_rate_declined": bads_declined / declined if declined else np.nan,
            "bads_declined_share": bads_declined / self.n_bads if self.n_bads else np.nan,
            "goods_declined_share": (declined - bads_declined) / goods if goods else np.nan,
        }


def _check_grid(values: Any, name: str, owner: str) -> np.ndarray:
    """A non-empty 1-D sequence of finite numbers in [0, 1] (rates or PD cut-offs)."""
    try:
        grid = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        grid = np.array([np.nan])
    if grid.ndim != 1 or grid.size == 0 or not np.all((grid >= 0.0) & (grid <= 1.0)):
        raise ConfigurationError(
            f"The '{name}' parameter of {owner} must be a non-empty sequence of numbers "
            f"in [0, 1]. Got {values!r} instead."
        )
    return grid


def cutoff_for_approval_rate(p: Any, approval_rate: float) -> float:
    """The PD cut-off that approves at most ``approval_rate`` of the applicants.

    Parameters
    ----------
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    approval_rate : float
        Share of applicants to approve, in [0, 1].

    Returns
    -------
    float
        The largest PD ``c`` such that approving ``p <= c`` approves at most
        ``approval_rate * n`` applicants; ``-inf`` if even the lowest PD is shared by
        more applicants than that.

    Raises
    ------
    SchemaError
        On invalid PDs.
    ConfigurationError
        If ``approval_rate`` is not in [0, 1].

    Examples
    --------
    >>> cutoff_for_approval_rate([0.1, 0.4, 0.2, 0.3], 0.5)
    0.2
    """
    owner = "cutoff_for_approval_rate"
    rate = check_float(approval_rate, "approval_rate", owner, 0.0, 1.0, closed="both")
    probs = _check_probabilities(p)
    cum = _Cumulative.of(np.zeros(probs.size), probs)
    k = cum.at_rate(rate)
    return float(cum.cutoffs[k]) if k >= 0 else -np.inf


def cutoff_table(
    y_true: Any, p: Any, *, approval_rates: Any = None, cutoffs: Any = None
) -> pd.DataFrame:
    """Cut-off strategy table of one model.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    approval_rates : sequence of float, optional
        Target approval rates in [0, 1], one row each (default 5 %, 10 %, ..., 100 %).
    cutoffs : sequence of float, optional
        PD cut-offs in [0, 1] instead, one row each. Give at most one of the two.

    Returns
    -------
    pandas.DataFrame
        One row per target, in the given order: ``approval_rate_target`` (only with
        approval rates), ``cutoff`` (approve ``p <= cutoff``; ``-inf`` approves no one),
        ``approved``, ``declined``, ``approval_rate`` (reached), ``goods_approved``,
        ``bads_approved``, ``goods_declined``, ``bads_declined``, ``bad_rate_approved``
        (NaN when no one is approved), ``bad_rate_declined``, ``bads_declined_share``
        (share of all bads the policy declines) and ``goods_declined_share``.

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        If both ``approval_rates`` and ``cutoffs`` are given, or either is invalid.

    Examples
    --------
    >>> t = cutoff_table([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], approval_rates=[0.5])
    >>> t[["approval_rate", "bad_rate_approved"]].values.tolist()
    [[0.5, 0.0]]
    """
    owner = "cutoff_table"
    if approval_rates is not None and cutoffs is not None:
        raise ConfigurationError(
            f"The 'approval_rates' and 'cutoffs' parameters of {owner} are exclusive: "
            "give one or neither. Got both instead."
        )
    y, probs = _check_inputs(y_true, p)
    cum = _Cumulative.of(y, probs)
    if cutoffs is not None:
        grid = _check_grid(cutoffs, "cutoffs", owner)
        rows = [cum.row(cum.at_cutoff(c)) | {"cutoff": float(c)} for c in grid]
        return pd.DataFrame(rows)
    rates = DEFAULT_APPROVAL_RATES if approval_rates is None else approval_rates
    grid = _check_grid(rates, "approval_rates", owner)
    rows = [{"approval_rate_target": float(r)} | cum.row(cum.at_rate(r)) for r in grid]
    return pd.DataFrame(rows)


def compare_cutoff_tables(
    y_true: Any, predictions: Mapping[str, Any], *, approval_rates: Any = None, cutoffs: Any = None
) -> pd.DataFrame:
    """Cut-off strategy tables of several models on the same applicants, stacked.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    predictions : Mapping[str, array-like of shape (n,)]
        Model name to its PDs for the same applicants, in the same order.
    approval_rates, cutoffs : sequence of float, optional
        As in :func:`cutoff_table`.

    Returns
    -------
    pandas.DataFrame
        :func:`cutoff_table`'s columns after a first column ``model``, the models in the
        mapping's order: ready for an approval rate vs bad rate chart per model.

    Raises
    ------
    ConfigurationError
        If ``predictions`` is empty, or on the errors of :func:`cutoff_table`.
    SchemaError
        On invalid labels or PDs (the message names the model).
    """
    if not isinstance(predictions, Mapping) or len(predictions) == 0:
        raise ConfigurationError(
            "The 'predictions' parameter of compare_cutoff_tables must be a non-empty "
            f"mapping of model name to PDs. Got {type(predictions).__name__} instead."
        )
    tables = []
    for name, p in predictions.items():
        y, probs = _check_inputs(y_true, p, p_name=f"predictions[{name!r}]")
        table = cutoff_table(y, probs, approval_rates=approval_rates, cutoffs=cutoffs)
        tables.append(table.assign(model=name))
    stacked = pd.concat(tables, ignore_index=True)
    return stacked[["model", *[c for c in stacked.columns if c != "model"]]]


__all__ = [
    "DEFAULT_APPROVAL_RATES",
    "compare_cutoff_tables",
    "cutoff_for_approval_rate",
    "cutoff_table",
]
