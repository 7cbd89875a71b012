"""One party's binning of its own table: fit, transform, merge, statistics, serialise.

:class:`PartyBinner` is what a bank or a fintech runs on its own rows, without any other
party's data:

* a fintech fits it with ``method="quantile"`` and no labels (label-free pre-bins);
* the bank fits it with ``method="optimal"`` and its labels (optbinning), or label-free
  and then merges its own pre-bins from counts;
* the bank turns per-bin event counts of a fintech's pre-bins into merge maps
  (:func:`riskfed.binning.optimal.plan_merges`); the fintech applies them
  (:meth:`PartyBinner.merge`).

What a party holds, sends and learns here:

holds
    its table, the fitted bins (cuts, level groups) and its own per-bin row counts; the
    label holder also its per-bin event counts.
sends (when the protocol asks)
    :meth:`PartyBinner.layout` — the kind of each bin, optionally its labels — so the
    label holder can merge bins by counts; never a row's bin.
receives
    a fintech: a merge map (a label per bin code) and per-bin statistics only if the
    protocol gives them back; the label holder: per-bin rows and events of a fintech's
    bins.
learns
    a fintech: at most the merge map it agreed to receive; the label holder: per-bin event
    counts of the bins a fintech chose to share.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskfed.binning import optimal
from riskfed.binning.bins import UNSEEN_POLICIES, Characteristic
from riskfed.binning.prebin import prebin_categorical, prebin_numeric
from riskfed.binning.stability import CharacteristicStability
from riskfed.binning.woe import BinStatistics
from riskfed.data.schema import MAX_CATEGORIES, PartyTable
from riskfed.errors import ConfigurationError, MissingColumnError, NotFittedError, SchemaError, format_rows

FORMAT = "riskfed.binning/1"
METHODS = ("quantile", "optimal")
PREBINNINGS = ("cart", "quantile")


@dataclass(frozen=True)
class BinCodes:
    """Bin codes of a table and the categorical levels unseen at fit time.

    Attributes
    ----------
    codes:
        One int32 column per kept characteristic, rows in input order.
    unseen:
        Characteristic → number of rows whose level was never seen at fit time (they are
        in the characteristic's declared ``unseen`` bin). A scoring run reports these.
    """

    codes: pd.DataFrame
    unseen: dict[str, int]


def _param_error(name: str, expected: str, value) -> ConfigurationError:
    return ConfigurationError(f"The '{name}' parameter of PartyBinner must be {expected}. Got {value!r} instead.")


class PartyBinner:
    """Bin one party's characteristics (scikit-learn estimator conventions).

    Parameters
    ----------
    party:
        Name used in messages (default: the ``PartyTable``'s party, else ``"party"``).
    method:
        ``"quantile"`` (label-free) or ``"optimal"`` (optbinning; needs labels).
    max_bins:
        At most this many interval / level-group bins per characteristic (missing and
        special bins come on top). Categorical levels are not capped by the label-free
        method: each frequent level keeps its bin.
    min_bin_share:
        Every interval bin holds at least this share of the rows, in (0, 0.5].
    monotonic_trend:
        ``"auto"``, ``"ascending"``, ``"descending"``, ``"peak"``, ``"valley"`` or
        ``None`` — the event-rate trend over the intervals (optimal method only).
    prebinning:
        Optimal method, numeric characteristics: ``"cart"`` (optbinning's pre-binning on
        rows) or ``"quantile"`` (label-free pre-bins merged from counts).
    max_prebins:
        Pre-bins the optimal method starts from.
    special_values:
        Column → values with a bin each (numbers for numeric columns).
    categorical:
        Columns to treat as categorical even if numeric (text columns always are).
    max_levels:
        More distinct levels than this in a categorical column is an error.
    rare_level_share:
        Levels held by fewer than this share of the rows are pooled into ``other``.
    unseen:
        Bin of a level never seen at fit time: ``"other"`` or ``"missing"``.
    solver, time_limit:
        optbinning's solver (``"cp"`` or ``"mip"``) and its time limit in seconds.
    """

    def __init__(
        self,
        party: str | None = None,
        *,
        method: str = "quantile",
        max_bins: int = 10,
        min_bin_share: float = 0.03,
        monotonic_trend: str | None = "auto",
        prebinning: str = "cart",
        max_prebins: int = 20,
        special_values: Mapping[str, Sequence] | None = None,
        categorical: Sequence[str] = (),
        max_levels: int = MAX_CATEGORIES,
        rare_level_share: float = 0.01,
        unseen: str = "other",
        solver: str = "cp",
        time_limit: float = 100.0,
    ) -> None:
        self.party = party
        self.method = method
        self.max_bins = max_bins
        self.min_bin_share = min_bin_share
        self.monotonic_trend = monotonic_trend
        self.prebinning = prebinning
        self.max_prebins = max_prebins
        self.special_values = special_values
        self.categorical = categorical
        self.max_levels = max_levels
        self.rare_level_share = rare_level_share
        self.unseen = unseen
        self.solver = solver
        self.time_limit = time_limit

    def get_params(self) -> dict:
        """The constructor parameters, as JSON types."""
        names = list(inspect.signature(PartyBinner.__init__).parameters)[1:]
        params = {name: getattr(self, name) for name in names}
        params["special_values"] = {k: list(v) for k, v in (self.special_values or {}).items()}
        params["categorical"] = list(self.categorical)
        return params

    # ------------------------------------------------------------- validation
    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise _param_error("method", f"one of {METHODS}", self.method)
        if self.prebinning not in PREBINNINGS:
            raise _param_error("prebinning", f"one of {PREBINNINGS}", self.prebinning)
        for name, low in (("max_bins", 1), ("max_prebins", 2), ("max_levels", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise _param_error(name, f"an int in the range [{low}, inf)", value)
        optimal.split_share(self.min_bin_share, "PartyBinner")
        share = self.rare_level_share
        if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share < 1:
            raise _param_error("rare_level_share", "a float in the range [0.0, 1.0)", share)
        optimal.check_trend(self.monotonic_trend, "PartyBinner")
        if self.unseen not in UNSEEN_POLICIES:
            raise _param_error("unseen", f"one of {UNSEEN_POLICIES}", self.unseen)
        if self.solver not in optimal.SOLVERS:
            raise _param_error("solver", f"one of {optimal.SOLVERS}", self.solver)
        if self.special_values is not None and not isinstance(self.special_values, Mapping):
            raise _param_error("special_values", "a mapping of column to a list of values", self.special_values)

    def _inputs(self, X, y) -> tuple[pd.DataFrame, set[str], np.ndarray | None]:
        categorical = set(self.categorical)
        if isinstance(X, PartyTable):
            self.party_ = self.party or X.party
            categorical |= set(X.categorical)
            y = X.labels if y is None else y
            X = X.features
        else:
            self.party_ = self.party or "party"
        if not isinstance(X, pd.DataFrame):
            raise ConfigurationError(f"{self.party_}: expected a pandas DataFrame or PartyTable, got {type(X).__name__}.")
        if len(X) == 0:
            raise SchemaError(f"{self.party_}: the table has no rows.", party=self.party_)
        for col in [*categorical, *(self.special_values or {})]:
            if col not in X.columns:
                raise MissingColumnError(
                    f"{self.party_}: column {col!r} is declared (categorical or special values) but not in the table.",
                    party=self.party_,
                    column=str(col),
                )
        return X, categorical, None if y is None else self._labels(y, len(X))

    def _labels(self, y, n_rows: int) -> np.ndarray:
        labels = pd.to_numeric(pd.Series(np.asarray(y).ravel()), errors="coerce")
        bad = ~labels.isin([0, 1]).to_numpy()
        if len(labels) != n_rows:
            raise SchemaError(f"{self.party_}: {len(labels)} labels for {n_rows} rows.", party=self.party_)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise SchemaError(
                f"{self.party_}: labels must be 0 or 1; row(s) {format_rows(rows, total=int(bad.sum()))} are not.",
                party=self.party_,
                rows=rows,
            )
        out = labels.to_numpy(dtype=np.int8)
        if out.min() == out.max():
            raise SchemaError(f"{self.party_}: the labels hold one class only; binning by label needs both.",
                              party=self.party_)
        return out

    # -------------------------------------------------------------------- fit
    def fit(self, X: pd.DataFrame | PartyTable, y=None) -> "PartyBinner":
        """Fit bins on the party's own rows.

        Parameters
        ----------
        X:
            The party's characteristics (a DataFrame of feature columns, or a
            ``PartyTable``, whose labels are then used when ``y`` is None).
        y:
            0/1 labels (label holder only). Required by ``method="optimal"``; with the
            quantile method they only give the per-bin statistics.

        Returns
        -------
        self

        Raises
        ------
        ConfigurationError, SchemaError, MissingColumnError
            Bad parameters, a non-numeric special value, too many levels, bad labels.
        """
        self._check_params()
        frame, categorical, labels = self._inputs(X, y)
        if self.method == "optimal" and labels is None:
            raise ConfigurationError(f"{self.party_}: method='optimal' needs labels; a party without labels "
                                     "uses method='quantile'.", party=self.party_)
        characteristics, counts, stats, excluded = {}, {}, {}, {}
        for col in frame.columns:
            series = frame[col].rename(str(col))
            is_cat = col in categorical or not _is_numeric(series)
            char = self._fit_one(series, is_cat, labels)
            codes, _ = char.assign(series, party=self.party_)
            count = np.bincount(codes, minlength=char.n_bins)
            reason = _constant_reason(char, count)
            if reason:
                excluded[char.name] = reason
                continue
            characteristics[char.name], counts[char.name] = char, count
            if labels is not None:
                stats[char.name] = BinStatistics.from_codes(char.name, [b.label for b in char.bins], codes, labels)
        self.characteristics_, self.counts_ = characteristics, counts
        self.statistics_, self.excluded_ = stats, excluded
        return self

    def _fit_one(self, series: pd.Series, is_cat: bool, labels: np.ndarray | None) -> Characteristic:
        specials = (self.special_values or {}).get(series.name, ())
        if is_cat:
            char = prebin_categorical(series, party=self.party_, specials=specials, max_levels=self.max_levels,
                                      rare_level_share=self.rare_level_share, unseen=self.unseen)
        elif self.method == "optimal" and self.prebinning == "cart":
            return optimal.optimal_numeric(
                series, labels, party=self.party_, specials=specials, max_bins=self.max_bins,
                min_bin_share=self.min_bin_share, monotonic_trend=self.monotonic_trend,
                max_prebins=self.max_prebins, solver=self.solver, time_limit=self.time_limit,
            )
        else:
            n_bins = self.max_prebins if self.method == "optimal" else self.max_bins
            char = prebin_numeric(series, party=self.party_, specials=specials, max_bins=n_bins,
                                  min_bin_share=self.min_bin_share)
        if self.method == "optimal":
            codes, _ = char.assign(series, party=self.party_)
            stats = BinStatistics.from_codes(char.name, [b.label for b in char.bins], codes, labels)
            char = char.merge(self._merge_partition(char.kinds, stats, ordered=not is_cat))[0]
        return char

    def _merge_partition(self, kinds, stats: BinStatistics, *, ordered: bool) -> np.ndarray:
        return optimal.optimal_merge(
            kinds, stats.count, stats.events, ordered=ordered, max_bins=self.max_bins,
            min_bin_share=self.min_bin_share, monotonic_trend=self.monotonic_trend,
            solver=self.solver, time_limit=self.time_limit,
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "characteristics_"):
            raise NotFittedError(f"The {self.party or 'party'} binning is not fitted yet; call fit first.")

    # -------------------------------------------------------------- transform
    def transform(self, X: pd.DataFrame | PartyTable) -> BinCodes:
        """Bin code of every row and kept characteristic, and the unseen-level counts.

        Raises
        ------
        MissingColumnError
            A characteristic of the binning is not in the table.
        SchemaError
            Text in a numeric characteristic.
        """
        self._check_fitted()
        frame = X.features if isinstance(X, PartyTable) else X
        codes, unseen = {}, {}
        for name, char in self.characteristics_.items():
            if name not in frame.columns:
                raise MissingColumnError(f"{self.party_}: characteristic {name!r}, used by the binning, is not in the table.",
                                         party=self.party_, column=name)
            codes[name], unseen[name] = char.assign(frame[name], party=self.party_)
        return BinCodes(pd.DataFrame(codes, index=frame.index), {k: v for k, v in unseen.items() if v})

    def _codes(self, X) -> pd.DataFrame:
        return X.codes if isinstance(X, BinCodes) else self.transform(X).codes

    def woe(self, X) -> pd.DataFrame:
        """WOE value of every row's bin (needs statistics: labels at fit, or :meth:`set_statistics`)."""
        self._check_fitted()
        codes = self._codes(X)
        missing = [name for name in self.characteristics_ if name not in self.statistics_]
        if missing:
            raise NotFittedError(f"{self.party_}: no bin statistics for {format_rows(missing)}; fit with labels or "
                                 "call set_statistics first.")
        return pd.DataFrame({name: self.statistics_[name].woe[codes[name].to_numpy()] for name in self.characteristics_},
                            index=codes.index)

    def indicator_names(self) -> list[str]:
        """``"<characteristic>=<bin label>"`` for every bin that held training rows."""
        self._check_fitted()
        return [f"{name}={b.label}" for name, char in self.characteristics_.items()
                for b in char.bins if self.counts_[name][b.code] > 0]

    def indicators(self, X) -> pd.DataFrame:
        """0/1 indicator columns, one per bin that held training rows (see :meth:`indicator_names`)."""
        self._check_fitted()
        codes = self._codes(X)
        blocks = {}
        for name, char in self.characteristics_.items():
            column = codes[name].to_numpy()
            for b in char.bins:
                if self.counts_[name][b.code] > 0:
                    blocks[f"{name}={b.label}"] = (column == b.code).astype(np.uint8)
        return pd.DataFrame(blocks, index=codes.index)

    # ----------------------------------------------------- counts and merges
    def layout(self, *, include_labels: bool = False) -> dict[str, dict]:
        """What the label holder needs to merge this party's bins by counts: kinds, optionally labels."""
        self._check_fitted()
        out = {}
        for name, char in self.characteristics_.items():
            out[name] = {"dtype": char.dtype, "kinds": char.kinds}
            if include_labels:
                out[name]["labels"] = [b.label for b in char.bins]
        return out

    def set_statistics(self, statistics: Mapping[str, BinStatistics]) -> "PartyBinner":
        """Attach per-bin event counts obtained elsewhere (e.g. summed under encryption)."""
        self._check_fitted()
        for name, stats in statistics.items():
            char = self.characteristics_.get(name)
            if char is None or len(stats.count) != char.n_bins:
                raise ConfigurationError(f"{self.party_}: statistics for {name!r} do not match its bins.",
                                         party=self.party_, column=name)
            self.statistics_[name] = stats
        return self

    def merge(self, merge_map: Mapping[str, Sequence[int]]) -> "PartyBinner":
        """Apply merge maps (characteristic → merge label per bin code); returns self.

        Row counts and any statistics are summed over the joined bins.
        """
        self._check_fitted()
        for name, partition in merge_map.items():
            if name not in self.characteristics_:
                raise ConfigurationError(f"{self.party_}: a merge map names {name!r}, which is not a characteristic "
                                         "of this binning.", party=self.party_, column=name)
            merged, code_map = self.characteristics_[name].merge(partition)
            self.characteristics_[name] = merged
            self.counts_[name] = np.bincount(code_map, weights=self.counts_[name], minlength=merged.n_bins).astype(np.int64)
            if name in self.statistics_:
                self.statistics_[name] = _merge_stats(self.statistics_[name], merged, code_map)
        return self

    def stability(self, X) -> list[CharacteristicStability]:
        """Characteristic stability of a scoring sample against the fit (development) rows."""
        self._check_fitted()
        codes = self._codes(X)
        out = []
        for name, char in self.characteristics_.items():
            scoring = np.bincount(codes[name].to_numpy(), minlength=char.n_bins)
            out.append(CharacteristicStability(name, tuple(b.label for b in char.bins), self.counts_[name], scoring))
        return out

    def attribute_table(self) -> pd.DataFrame:
        """Characteristic, bin, count, events, event rate, WOE and IV per bin (needs statistics)."""
        self._check_fitted()
        tables = [self.statistics_[name].table() for name in self.characteristics_ if name in self.statistics_]
        if not tables:
            raise NotFittedError(f"{self.party_}: no bin statistics yet; fit with labels or call set_statistics.")
        return pd.concat(tables, ignore_index=True)

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """The fitted binning as plain JSON types (never pickle)."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "party": self.party_,
            "params": self.get_params(),
            "characteristics": [c.to_dict() for c in self.characteristics_.values()],
            "counts": {k: v.tolist() for k, v in self.counts_.items()},
            "statistics": [s.to_dict() for s in self.statistics_.values()],
            "excluded": dict(self.excluded_),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "PartyBinner":
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ConfigurationError(f"Not a riskfed binning (expected format {FORMAT!r}).")
        binner = cls(**data["params"])
        binner.party_ = data["party"]
        binner.characteristics_ = {c["name"]: Characteristic.from_dict(c) for c in data["characteristics"]}
        binner.counts_ = {k: np.asarray(v, dtype=np.int64) for k, v in data["counts"].items()}
        binner.statistics_ = {s["name"]: BinStatistics.from_dict(s) for s in data["statistics"]}
        binner.excluded_ = dict(data["excluded"])
        return binner

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PartyBinner":
        return cls.from_dict(json.loads(text))


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _constant_reason(char: Characteristic, count: np.ndarray) -> str | None:
    occupied = np.flatnonzero(count)
    if occupied.size > 1:
        return None
    if occupied.size == 0:
        return "no rows"
    label = char.bins[int(occupied[0])].label
    return f"constant after binning: all {int(count.sum())} rows are in the bin {label!r}"


def _merge_stats(stats: BinStatistics, merged: Characteristic, code_map: np.ndarray) -> BinStatistics:
    n = merged.n_bins
    count = np.bincount(code_map, weights=stats.count, minlength=n).astype(np.int64)
    events = np.bincount(code_map, weights=stats.events, minlength=n).astype(np.int64)
    return BinStatistics(stats.name, tuple(b.label for b in merged.bins), count, events)


__all__ = ["BinCodes", "PartyBinner"]
