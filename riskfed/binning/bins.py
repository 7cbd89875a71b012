"""The bins of one characteristic: what they are, how a value lands in one, how they merge.

A :class:`Characteristic` is pure data (JSON-serialisable, no fitted library objects) and
the single place that decides which bin a value falls into, so training, scoring and the
SQL export (:mod:`riskfed.binning.export`) cannot disagree.

Bin codes are integers ``0 … n_bins - 1`` in a fixed layout:

numeric
    ``len(cuts) + 1`` intervals ``[-inf, c1)``, ``[c1, c2)``, …, ``[ck, inf)`` (closed on
    the left, as optbinning and ``numpy.digitize`` cut), then ``missing``, then one bin
    per special value in declared order.
categorical
    one bin per group of levels, then ``other`` (levels too rare to stand alone, and
    unseen levels when ``unseen="other"``) unless it was merged into a group, then
    ``missing``, then the special levels.

Missing values are tested first, then special values, then the intervals or levels, so
each value lands in exactly one bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError, SchemaError, format_rows

NUMERIC = "numeric"
CATEGORICAL = "categorical"
UNSEEN_POLICIES = ("other", "missing")

# Bin kinds. "interval", "group" and "other" are the mergeable ones; "missing" and
# "special" bins always stay on their own (a credit team reads them separately).
INTERVAL, GROUP, OTHER, MISSING, SPECIAL = "interval", "group", "other", "missing", "special"


@dataclass(frozen=True)
class Bin:
    """One bin of a characteristic, as an analyst reads it.

    Attributes
    ----------
    code:
        Its integer code (position in the layout).
    kind:
        ``"interval"``, ``"group"``, ``"other"``, ``"missing"`` or ``"special"``.
    label:
        Readable text: ``"[-inf, 1.5)"``, ``"{1, 2}"``, ``"other"``, ``"missing"``,
        ``"special: -1"``.
    """

    code: int
    kind: str
    label: str


def number_text(value: float) -> str:
    """Shortest text that reads back as the same float (``2`` rather than ``2.0``)."""
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def level_text(series: pd.Series) -> pd.Series:
    """Categorical values as text, missing kept as NaN.

    Integral numbers read as integers (``1`` and ``1.0`` are the same level ``"1"``), so
    a coded column means the same whether pandas parsed it as int or float.
    """
    values = series.to_numpy(dtype=object, copy=True)
    present = pd.notna(series).to_numpy()
    out = np.full(len(values), np.nan, dtype=object)
    for i in np.flatnonzero(present):
        v = values[i]
        if isinstance(v, (float, np.floating)) and not isinstance(v, bool):
            out[i] = number_text(v)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return pd.Series(out, index=series.index, dtype=object)


def nice_cut(low: float, high: float) -> float:
    """The shortest decimal strictly between ``low`` and ``high`` (else ``high``).

    A cut between two observed values may sit anywhere in ``(low, high]`` without moving a
    training row; a short decimal near the midpoint reads well ("[-inf, 1.5)"), leaves
    unseen values in between to the nearer side, and parses back to the same double in
    SQL engines.
    """
    mid = low + (high - low) / 2.0
    for digits in range(1, 18):
        candidate = float(f"{mid:.{digits}g}")
        if low < candidate < high:
            return candidate
    return high


@dataclass(frozen=True)
class Characteristic:
    """The bins of one characteristic (a feature as credit teams call it).

    Parameters
    ----------
    name:
        Column name.
    dtype:
        ``"numeric"`` or ``"categorical"``.
    cuts:
        Numeric only: increasing cut points between intervals.
    groups:
        Categorical only: the levels (as text) of each group bin, disjoint.
    specials:
        Special values with a bin each: floats for numeric, text for categorical.
    unseen:
        Categorical only: the bin of a level never seen at fit time, ``"other"`` or
        ``"missing"``.
    other_in:
        Categorical only: the group that the ``other`` bin was merged into, or ``None``
        when ``other`` is a bin of its own.
    rare_levels:
        Categorical only: levels seen at fit time but pooled into ``other`` (too rare);
        unlike unseen levels they are not counted at transform time.
    """

    name: str
    dtype: str
    cuts: tuple[float, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    specials: tuple = ()
    unseen: str = "other"
    other_in: int | None = None
    rare_levels: tuple[str, ...] = ()
    _level_code: dict = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.dtype not in (NUMERIC, CATEGORICAL):
            raise ConfigurationError(
                f"The 'dtype' parameter of Characteristic must be 'numeric' or 'categorical'. Got {self.dtype!r} instead."
            )
        if self.unseen not in UNSEEN_POLICIES:
            raise ConfigurationError(
                f"The 'unseen' parameter of Characteristic must be one of {UNSEEN_POLICIES}. Got {self.unseen!r} instead."
            )
        cuts = np.asarray(self.cuts, dtype=np.float64)
        if cuts.size and (not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) <= 0)):
            raise ConfigurationError(f"{self.name}: cuts must be finite and strictly increasing; got {list(self.cuts)}.")
        level_code = {}
        for code, group in enumerate(self.groups):
            for level in group:
                if level in level_code:
                    raise ConfigurationError(f"{self.name}: level {level!r} is in two groups.")
                level_code[level] = code
        overlap = set(self.rare_levels) & set(level_code)
        if overlap:
            raise ConfigurationError(f"{self.name}: level(s) {format_rows(sorted(overlap))} are both rare and in a group.")
        object.__setattr__(self, "_level_code", level_code)

    # ------------------------------------------------------------------ layout
    @property
    def n_regular(self) -> int:
        """Number of interval / group / other bins (the ones a merge may join)."""
        if self.dtype == NUMERIC:
            return len(self.cuts) + 1
        return len(self.groups) + (1 if self.other_in is None else 0)

    @property
    def missing_code(self) -> int:
        return self.n_regular

    @property
    def other_code(self) -> int | None:
        """Code of the bin holding rare (and, by default, unseen) levels."""
        if self.dtype == NUMERIC:
            return None
        return len(self.groups) if self.other_in is None else self.other_in

    @property
    def unseen_code(self) -> int | None:
        if self.dtype == NUMERIC:
            return None
        return self.other_code if self.unseen == "other" else self.missing_code

    @property
    def n_bins(self) -> int:
        return self.n_regular + 1 + len(self.specials)

    def special_code(self, index: int) -> int:
        return self.n_regular + 1 + index

    @property
    def bins(self) -> list[Bin]:
        """Every bin in code order, with kind and readable label."""
        out = []
        if self.dtype == NUMERIC:
            edges = ["-inf", *(number_text(c) for c in self.cuts), "inf"]
            out += [Bin(i, INTERVAL, f"[{edges[i]}, {edges[i + 1]})") for i in range(len(edges) - 1)]
        else:
            for i, group in enumerate(self.groups):
                text = ", ".join(group)
                out.append(Bin(i, GROUP, "{" + text + ("}" if i != self.other_in else ", other}")))
            if self.other_in is None:
                out.append(Bin(len(self.groups), OTHER, "other"))
        out.append(Bin(self.missing_code, MISSING, "missing"))
        for j, special in enumerate(self.specials):
            text = number_text(special) if self.dtype == NUMERIC else str(special)
            out.append(Bin(self.special_code(j), SPECIAL, f"special: {text}"))
        return out

    @property
    def kinds(self) -> list[str]:
        """The kind of each bin in code order: all a peer needs to merge bins by counts."""
        return [b.kind for b in self.bins]

    def describe(self, code: int) -> str:
        """``"PAY_0 in [1.5, inf)"``, ``"EDUCATION in {1, 2}"``, ``"AGE missing"``."""
        b = self.bins[code]
        if b.kind in (INTERVAL, GROUP):
            return f"{self.name} in {b.label}"
        if b.kind == OTHER:
            return f"{self.name}: other levels"
        return f"{self.name} {b.label}"

    # --------------------------------------------------------------- assignment
    def assign(self, series: pd.Series, *, party: str = "party") -> tuple[np.ndarray, int]:
        """Bin code of every value, and how many categorical levels were unseen.

        Raises
        ------
        SchemaError
            A numeric characteristic receives text.
        """
        if self.dtype == NUMERIC:
            return self._assign_numeric(series, party), 0
        return self._assign_categorical(series)

    def _assign_numeric(self, series: pd.Series, party: str) -> np.ndarray:
        values = numeric_values(series, party=party, column=self.name)
        codes = np.digitize(values, np.asarray(self.cuts, dtype=np.float64), right=False).astype(np.int32)
        for j, special in enumerate(self.specials):
            codes[values == special] = self.special_code(j)
        codes[np.isnan(values)] = self.missing_code
        return codes

    def _assign_categorical(self, series: pd.Series) -> tuple[np.ndarray, int]:
        text = level_text(series)
        missing = text.isna().to_numpy()
        mapping = dict(self._level_code)
        specials = {s: self.special_code(j) for j, s in enumerate(self.specials)}
        mapping.update(specials)
        codes = text.map(mapping).to_numpy(dtype=object)
        unknown = pd.isna(codes) & ~missing
        # A level not in any group is "other" if fit pooled it there (rare) or unseen.
        rare = np.zeros(len(codes), dtype=bool)
        if unknown.any() and self.rare_levels:
            rare = unknown & text.isin(self.rare_levels).to_numpy()
        unseen = unknown & ~rare
        out = np.empty(len(codes), dtype=np.int32)
        known = ~unknown & ~missing
        out[known] = codes[known].astype(np.int32)
        out[missing] = self.missing_code
        out[rare] = self.other_code
        out[unseen] = self.unseen_code
        return out, int(unseen.sum())

    # ------------------------------------------------------------------- merge
    def merge(self, partition: Sequence[int]) -> tuple["Characteristic", np.ndarray]:
        """Join bins that share a label in ``partition`` (one label per current code).

        Intervals may join only adjacent intervals; groups and ``other`` may join freely;
        ``missing`` and special bins stay alone.

        Returns
        -------
        merged, code_map
            The merged characteristic and ``code_map[old_code] = new_code``.

        Raises
        ------
        ConfigurationError
            The partition has the wrong length or joins bins that may not be joined.
        """
        part = np.asarray(partition)
        if part.shape != (self.n_bins,):
            raise ConfigurationError(
                f"{self.name}: a merge map needs one entry per bin ({self.n_bins}); got {part.size}."
            )
        fixed = range(self.n_regular, self.n_bins)
        for code in fixed:
            if np.sum(part == part[code]) != 1:
                raise ConfigurationError(f"{self.name}: the {self.bins[code].label!r} bin cannot be merged with another bin.")
        merged = self._merge_numeric(part) if self.dtype == NUMERIC else self._merge_categorical(part)
        code_map = np.empty(self.n_bins, dtype=np.int32)
        for code in range(self.n_regular):
            code_map[code] = merged._regular_target(self, code, part)
        code_map[self.n_regular :] = np.arange(merged.n_regular, merged.n_bins)
        return merged, code_map

    def _merge_numeric(self, part: np.ndarray) -> "Characteristic":
        regular = part[: self.n_regular]
        boundary = regular[1:] != regular[:-1]
        labels_seen = [regular[0]] + [regular[i + 1] for i in np.flatnonzero(boundary)]
        if len(set(labels_seen)) != len(labels_seen):
            raise ConfigurationError(f"{self.name}: a merge may only join adjacent intervals.")
        cuts = tuple(c for c, keep in zip(self.cuts, boundary) if keep)
        return Characteristic(self.name, NUMERIC, cuts=cuts, specials=self.specials)

    def _merge_categorical(self, part: np.ndarray) -> "Characteristic":
        regular = part[: self.n_regular]
        order = list(dict.fromkeys(regular.tolist()))  # first appearance keeps a stable order
        groups: list[list[str]] = [[] for _ in order]
        other_in = None
        for code, label in enumerate(regular.tolist()):
            target = order.index(label)
            if code < len(self.groups):
                groups[target].extend(self.groups[code])
            if code == self.other_code:
                other_in = target
        keep = [i for i, g in enumerate(groups) if g]
        if other_in is not None and other_in not in keep:
            other_in = None  # "other" joined nothing: it stays a bin of its own
        new_groups = tuple(tuple(groups[i]) for i in keep)
        new_other = None if other_in is None else keep.index(other_in)
        return Characteristic(
            self.name,
            CATEGORICAL,
            groups=new_groups,
            specials=self.specials,
            unseen=self.unseen,
            other_in=new_other,
            rare_levels=self.rare_levels,
        )

    def _regular_target(self, old: "Characteristic", code: int, part: np.ndarray) -> int:
        """New code of ``old``'s regular bin ``code`` in this (merged) characteristic."""
        if self.dtype == NUMERIC:
            return int(np.sum(part[1 : code + 1] != part[:code]))
        if code == old.other_code:
            return self.other_code
        return self._level_code[old.groups[code][0]]

    # ----------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """Plain JSON types only (no pickle)."""
        out = {"name": self.name, "dtype": self.dtype, "specials": list(self.specials)}
        if self.dtype == NUMERIC:
            out["cuts"] = [float(c) for c in self.cuts]
        else:
            out |= {
                "groups": [list(g) for g in self.groups],
                "rare_levels": list(self.rare_levels),
                "unseen": self.unseen,
                "other_in": self.other_in,
            }
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Characteristic":
        dtype = data["dtype"]
        if dtype == NUMERIC:
            return cls(data["name"], NUMERIC, cuts=tuple(float(c) for c in data["cuts"]),
                       specials=tuple(float(s) for s in data["specials"]))
        return cls(
            data["name"],
            CATEGORICAL,
            groups=tuple(tuple(str(v) for v in g) for g in data["groups"]),
            specials=tuple(str(s) for s in data["specials"]),
            unseen=data.get("unseen", "other"),
            other_in=data.get("other_in"),
            rare_levels=tuple(str(v) for v in data.get("rare_levels", ())),
        )


def numeric_values(series: pd.Series, *, party: str, column: str) -> np.ndarray:
    """A numeric column as float64 (NaN = missing); text values are an error, not NaN."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    coerced = pd.to_numeric(series, errors="coerce")
    stray = (coerced.isna() & series.notna()).to_numpy()
    if stray.any():
        rows = [int(i) for i in np.flatnonzero(stray)[:5]]
        raise SchemaError(
            f"{party}: numeric characteristic {column!r} holds text values at row(s) "
            f"{format_rows(rows, total=int(stray.sum()))}.",
            party=party,
            column=column,
            rows=rows,
        )
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)
