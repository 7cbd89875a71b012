"""Label-free pre-binning: what a fintech computes on its own table, and the bank's start.

Nothing here sees a label. Numeric characteristics are cut at tie-aware quantiles,
categorical ones get a bin per level with rare levels pooled into ``other``.

Tie-aware quantiles (:func:`quantile_cuts`)
    Each distinct value is put in the quantile bin its mid-rank falls in, so equal values
    always share a bin; a value held by at least ``1 / max_bins`` of the rows is a bin of
    its own; with at most ``max_bins`` distinct values each value is a bin. Bins below the
    minimum size are then joined to their smaller neighbour, and the smallest bins are
    joined until at most ``max_bins`` remain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskfed.binning.bins import CATEGORICAL, NUMERIC, Characteristic, level_text, nice_cut, numeric_values
from riskfed.errors import ConfigurationError, SchemaError, format_rows


def _merge_smallest(sizes: list[int], starts: list[int], *, max_bins: int, min_count: int) -> list[int]:
    """Join adjacent segments until none is below ``min_count`` and at most ``max_bins`` remain.

    ``starts[i]`` is the first distinct-value index of segment ``i``; returns the new starts.
    """
    sizes, starts = list(sizes), list(starts)
    while len(sizes) > 1 and (len(sizes) > max_bins or min(sizes) < min_count):
        i = int(np.argmin(sizes))
        if i == 0:
            j = 1
        elif i == len(sizes) - 1:
            j = i - 1
        else:
            j = i - 1 if sizes[i - 1] <= sizes[i + 1] else i + 1
        lo, hi = min(i, j), max(i, j)
        sizes[lo] += sizes[hi]
        del sizes[hi], starts[hi]
    return starts


def quantile_cuts(values: np.ndarray, *, max_bins: int, min_count: int) -> tuple[float, ...]:
    """Tie-aware quantile cut points of the finite ``values``.

    Parameters
    ----------
    values:
        The values to cut (no NaN, no special values).
    max_bins:
        At most this many intervals.
    min_count:
        Every interval holds at least this many values (unless there is only one).

    Returns
    -------
    tuple of float
        Increasing cuts; each lies in ``(a, b]`` for consecutive distinct values ``a < b``
        and is the shortest decimal there (see :func:`~riskfed.binning.bins.nice_cut`).
    """
    if values.size == 0:
        return ()
    uniq, counts = np.unique(values, return_counts=True)
    if uniq.size == 1:
        return ()
    n = int(counts.sum())
    if uniq.size <= max_bins:
        starts = list(range(uniq.size))
    else:
        width = n / max_bins
        mid_rank = np.cumsum(counts) - counts / 2.0
        slot = np.minimum((mid_rank / width).astype(np.int64), max_bins - 1)
        heavy = counts >= width
        boundary = (slot[1:] != slot[:-1]) | heavy[1:] | heavy[:-1]
        starts = [0, *(int(i) + 1 for i in np.flatnonzero(boundary))]
    sizes = np.add.reduceat(counts, starts).tolist()
    starts = _merge_smallest(sizes, starts, max_bins=max_bins, min_count=min_count)
    return tuple(nice_cut(float(uniq[s - 1]), float(uniq[s])) for s in starts[1:])


def _check_specials(specials: Sequence, *, numeric: bool, party: str, column: str) -> tuple:
    """Specials as floats (numeric) or text (categorical); a non-number for a numeric column is an error."""
    out = []
    for value in specials:
        if numeric:
            is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            if not is_number or not math.isfinite(float(value)):
                raise ConfigurationError(
                    f"{party}: the special value {value!r} declared for the numeric characteristic {column!r} "
                    "must be a finite number (e.g. -1 or 999999).",
                    party=party,
                    column=column,
                )
            out.append(float(value))
        else:
            out.append(level_text(pd.Series([value], dtype=object)).iloc[0])
    if len(set(out)) != len(out):
        raise ConfigurationError(f"{party}: special values of {column!r} are declared twice: {list(specials)}.",
                                 party=party, column=column)
    return tuple(out)


def prebin_numeric(
    series: pd.Series,
    *,
    party: str,
    specials: Sequence = (),
    max_bins: int = 10,
    min_bin_share: float = 0.03,
) -> Characteristic:
    """Label-free bins of one numeric column: tie-aware quantiles, missing, specials.

    ``min_bin_share`` is a share of all the column's rows (missing and special included),
    as in optbinning.

    Raises
    ------
    ConfigurationError
        A special value is not a number.
    SchemaError
        The column holds text.
    """
    name = str(series.name)
    spec = _check_specials(specials, numeric=True, party=party, column=name)
    values = numeric_values(series, party=party, column=name)
    clean = values[~np.isnan(values) & ~np.isin(values, spec)]
    min_count = max(1, math.ceil(min_bin_share * len(values)))
    cuts = quantile_cuts(clean, max_bins=max_bins, min_count=min_count)
    return Characteristic(name, NUMERIC, cuts=cuts, specials=spec)


def prebin_categorical(
    series: pd.Series,
    *,
    party: str,
    specials: Sequence = (),
    max_levels: int = 50,
    rare_level_share: float = 0.01,
    unseen: str = "other",
) -> Characteristic:
    """One bin per level; levels below ``rare_level_share`` of the rows pooled in ``other``.

    Raises
    ------
    SchemaError
        More than ``max_levels`` distinct levels (naming party, column and a few levels).
    """
    name = str(series.name)
    spec = _check_specials(specials, numeric=False, party=party, column=name)
    text = level_text(series)
    present = text[text.notna() & ~text.isin(spec)]
    counts = present.value_counts(sort=False)
    if len(counts) > max_levels:
        shown = sorted(counts.index.tolist())
        raise SchemaError(
            f"{party}: categorical characteristic {name!r} has {len(counts)} levels, more than the limit "
            f"of {max_levels} (levels {format_rows(shown, total=len(shown))}). Group its levels first, "
            "treat it as numeric, or raise max_levels.",
            party=party,
            column=name,
        )
    rare_below = rare_level_share * len(series)
    levels = sorted(counts.index.tolist(), key=_level_sort_key)
    kept = tuple((lvl,) for lvl in levels if counts[lvl] >= rare_below)
    rare = tuple(lvl for lvl in levels if counts[lvl] < rare_below)
    return Characteristic(name, CATEGORICAL, groups=kept, specials=spec, unseen=unseen, rare_levels=rare)


def _level_sort_key(level: str) -> tuple:
    """Numeric codes in numeric order ("2" before "10"), then text."""
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)
