"""Supervised optimal binning for the label holder, through optbinning.

Two entry points, both run by the bank (the only party with labels):

:func:`optimal_numeric`
    optbinning's optimal binning of one of the bank's own numeric characteristics on its
    rows: a CART pre-binning, then the constraint-programming solver picks the merge
    with the highest IV under a minimum bin share, a maximum number of bins and a
    monotonic event-rate trend. Missing and special values keep bins of their own.

:func:`optimal_merge`
    The same solver on *counts*: given the rows and events of each pre-bin of a
    characteristic (a fintech's, obtained under encryption, or the bank's own categorical
    levels), it returns which pre-bins to join. optbinning is fitted on one synthetic point
    per (pre-bin, class) weighted by its count, with a user split between every two
    pre-bins, so it sees exactly what it would see on the rows themselves restricted to
    those pre-bin boundaries (``tests/binning/test_optimal.py`` checks the equality).
    Categorical pre-bins are ordered by event rate first, as optbinning orders levels.
    :func:`plan_merges` does it for every characteristic a party shared.

Nothing fitted by optbinning is kept: the result is a plain
:class:`~riskfed.binning.bins.Characteristic` (cuts or level groups).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskfed.binning.bins import GROUP, INTERVAL, NUMERIC, OTHER, Characteristic, nice_cut, numeric_values
from riskfed.binning.prebin import _check_specials
from riskfed.binning.woe import BinStatistics
from riskfed.errors import ConfigurationError

MONOTONIC_TRENDS = ("auto", "ascending", "descending", "peak", "valley", None)
SOLVERS = ("cp", "mip")


def check_trend(monotonic_trend, owner: str) -> None:
    if monotonic_trend not in MONOTONIC_TRENDS:
        raise ConfigurationError(
            f"The 'monotonic_trend' parameter of {owner} must be one of {MONOTONIC_TRENDS}. "
            f"Got {monotonic_trend!r} instead."
        )


def _optbinning(**params):
    # Imported here: optbinning pulls in OR-Tools, which only the label holder needs.
    from optbinning import OptimalBinning

    return OptimalBinning(**params)


def _solver_params(max_bins: int, min_bin_share: float, monotonic_trend, solver: str, time_limit: float,
                   owner: str = "optimal_merge") -> dict:
    """optbinning's solver settings, checked first so a bad value reads like scikit-learn's message."""
    if not isinstance(max_bins, (int, np.integer)) or isinstance(max_bins, bool) or max_bins < 1:
        raise ConfigurationError(
            f"The 'max_bins' parameter of {owner} must be an int in the range [1, inf). Got {max_bins!r} instead."
        )
    split_share(min_bin_share, owner)
    check_trend(monotonic_trend, owner)
    if solver not in SOLVERS:
        raise ConfigurationError(f"The 'solver' parameter of {owner} must be one of {SOLVERS}. Got {solver!r} instead.")
    return {
        "solver": solver,
        "max_n_bins": max_bins,
        "min_bin_size": min_bin_share,
        "monotonic_trend": monotonic_trend,
        "time_limit": time_limit,
    }


def _fit_quietly(binning, x, y, sample_weight=None, *, party: str | None = None, column: str | None = None):
    with warnings.catch_warnings():
        # optbinning warns about pure pre-bins it merges itself; the result says it all.
        warnings.simplefilter("ignore")
        try:
            return binning.fit(x, y, sample_weight=sample_weight)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"{party or 'bank'}: optimal binning of {column!r} failed in optbinning: {exc}", party=party, column=column
            ) from None


def optimal_numeric(
    series: pd.Series,
    y: np.ndarray,
    *,
    party: str = "bank",
    specials: Sequence = (),
    max_bins: int = 10,
    min_bin_share: float = 0.03,
    monotonic_trend="auto",
    max_prebins: int = 20,
    solver: str = "cp",
    time_limit: float = 100.0,
) -> Characteristic:
    """Optimal bins of one numeric characteristic from its rows and labels.

    Parameters
    ----------
    series:
        The characteristic (named), NaN for missing.
    y:
        0/1 labels of the same rows.
    specials:
        Values with bins of their own (numbers).
    max_bins, min_bin_share, monotonic_trend:
        Constraints on the intervals; ``min_bin_share`` is a share of all rows.
    max_prebins:
        Bins of the CART pre-binning the solver merges.

    Returns
    -------
    Characteristic
        Its cuts are the shortest decimals that split the training rows as optbinning did.
    """
    name = str(series.name)
    params = _solver_params(max_bins, min_bin_share, monotonic_trend, solver, time_limit, "optimal_numeric")
    spec = _check_specials(specials, numeric=True, party=party, column=name)
    values = numeric_values(series, party=party, column=name)
    clean_rows = ~np.isnan(values) & ~np.isin(values, spec)
    labels = np.asarray(y, dtype=np.int64)
    if np.unique(values[clean_rows]).size < 2 or np.unique(labels[clean_rows]).size < 2:
        # Nothing to split (one value, or one class among the regular rows): one interval.
        return Characteristic(name, NUMERIC, specials=spec)
    binning = _optbinning(
        name=name,
        dtype="numerical",
        max_n_prebins=max_prebins,
        min_prebin_size=min(min_bin_share, 0.5),
        special_codes=list(spec) or None,
        **params,
    )
    _fit_quietly(binning, values, labels, party=party, column=name)
    clean = np.unique(values[clean_rows])
    cuts = []
    for split in np.asarray(binning.splits, dtype=np.float64):
        below, above = clean[clean < split], clean[clean >= split]
        if below.size and above.size:
            cuts.append(nice_cut(float(below[-1]), float(above[0])))
    return Characteristic(name, NUMERIC, cuts=tuple(cuts), specials=spec)


def _merge_order(kinds: Sequence[str], count: np.ndarray, events: np.ndarray, ordered: bool) -> np.ndarray:
    """Codes of the mergeable bins in the order the solver sees them."""
    free = np.array([i for i, k in enumerate(kinds) if k in (INTERVAL, GROUP, OTHER)], dtype=np.int64)
    if ordered:
        return free
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(count[free] > 0, events[free] / np.maximum(count[free], 1), np.inf)
    return free[np.lexsort((free, rate))]


def _synthetic_points(order: np.ndarray, n_bins: int, count: np.ndarray, events: np.ndarray):
    """One point per (bin, class) weighted by its count; fixed bins become NaN (missing) points.

    The fixed bins (missing, specials) still count in the total that ``min_bin_share``
    refers to, as their rows do when optbinning runs on rows.
    """
    position = np.full(n_bins, np.nan)
    position[order] = np.arange(order.size, dtype=np.float64)
    x = np.repeat(position, 2)
    y = np.tile([0, 1], n_bins)
    w = np.column_stack([count - events, events]).ravel().astype(np.float64)
    keep = w > 0
    return x[keep], y[keep], w[keep]


def optimal_merge(
    kinds: Sequence[str],
    count: Sequence[int],
    events: Sequence[int],
    *,
    ordered: bool,
    max_bins: int = 10,
    min_bin_share: float = 0.03,
    monotonic_trend="auto",
    solver: str = "cp",
    time_limit: float = 100.0,
) -> np.ndarray:
    """Which pre-bins to join, from rows and events per pre-bin only.

    Parameters
    ----------
    kinds:
        Kind of each pre-bin in code order (:attr:`Characteristic.kinds`); only
        ``interval``, ``group`` and ``other`` bins are merged.
    count, events:
        Rows and events per pre-bin.
    ordered:
        True for numeric intervals (only neighbours merge); False for categorical levels,
        which are ordered by event rate first.

    Returns
    -------
    numpy.ndarray
        A merge label per pre-bin code, for :meth:`Characteristic.merge`.
    """
    check_trend(monotonic_trend, "optimal_merge")
    params = _solver_params(max_bins, min_bin_share, monotonic_trend if ordered else "ascending", solver, time_limit)
    count = np.asarray(count, dtype=np.int64)
    events = np.asarray(events, dtype=np.int64)
    n_bins = len(kinds)
    if count.shape != (n_bins,) or events.shape != (n_bins,):
        raise ConfigurationError(f"optimal_merge needs one count and one event count per bin ({n_bins}).")
    if np.any(events < 0) or np.any(events > count):
        # Counts may come from another party's sums: never hand the solver impossible ones.
        raise ConfigurationError("optimal_merge needs 0 <= events <= rows in every bin.")
    partition = np.arange(n_bins)
    order = _merge_order(kinds, count, events, ordered)
    if order.size < 2 or not (0 < events.sum() < count.sum()):
        return partition
    x, y, w = _synthetic_points(order, n_bins, count, events)
    binning = _optbinning(
        dtype="numerical",
        user_splits=np.arange(order.size - 1) + 0.5,
        **params,
    )
    _fit_quietly(binning, x, y, sample_weight=w, column="merge from counts")
    group = np.digitize(np.arange(order.size), np.asarray(binning.splits, dtype=np.float64))
    partition[order] = group - n_bins  # negative labels: never clash with the fixed bins' own
    return partition


def plan_merges(
    layout: Mapping[str, Mapping],
    statistics: Mapping[str, BinStatistics],
    *,
    max_bins: int = 10,
    min_bin_share: float = 0.03,
    monotonic_trend: str | None = "auto",
    solver: str = "cp",
    time_limit: float = 100.0,
) -> dict[str, list[int]]:
    """The label holder's merge maps for another party's bins, from counts only.

    Parameters
    ----------
    layout:
        The other party's :meth:`~riskfed.binning.party.PartyBinner.layout`.
    statistics:
        Rows and events per bin of those characteristics (the bank gets them under
        encryption; only the characteristics the other party shared).
    max_bins, min_bin_share, monotonic_trend, solver, time_limit:
        As for :func:`optimal_merge`.

    Returns
    -------
    dict
        Characteristic → merge label per bin code, for :meth:`~riskfed.binning.party.PartyBinner.merge`.
    """
    out = {}
    for name, stats in statistics.items():
        if name not in layout:
            raise ConfigurationError(f"plan_merges: {name!r} has statistics but no layout.", column=name)
        kinds = layout[name]["kinds"]
        ordered = layout[name]["dtype"] == NUMERIC
        out[name] = optimal_merge(
            kinds, stats.count, stats.events, ordered=ordered, max_bins=max_bins, min_bin_share=min_bin_share,
            monotonic_trend=monotonic_trend, solver=solver, time_limit=time_limit,
        ).tolist()
    return out


def split_share(min_bin_share: float, owner: str) -> float:
    """Validate a share parameter in (0, 0.5], optbinning's range."""
    if not (isinstance(min_bin_share, (int, float)) and 0 < min_bin_share <= 0.5 and math.isfinite(min_bin_share)):
        raise ConfigurationError(
            f"The 'min_bin_share' parameter of {owner} must be a float in the range (0.0, 0.5]. "
            f"Got {min_bin_share!r} instead."
        )
    return float(min_bin_share)
