"""Weight of evidence and information value from per-bin counts.

Everything here works on counts only — rows per bin and events (defaults) per bin — so
the same code serves the bank on its own rows and on a fintech's bins whose event counts
it obtained under encryption. Formulas (also in ``docs/scorecard.md``), with ``e_b``
events and ``g_b = n_b - e_b`` non-events in bin ``b``, ``E`` and ``G`` their totals::

    WOE_b = ln( (e_b / E) / (g_b / G) )          positive = riskier than average
    IV_b  = (e_b / E - g_b / G) * WOE_b          IV = sum_b IV_b

This sign (events over non-events) makes WOE grow with risk, as the default model's
log-odds do; optbinning and Siddiqi use the reciprocal, so their WOE has the other sign
and the same IV.

Empty classes: a bin with rows but no events (or no non-events) would have an infinite
WOE. Such a bin gets ``SMOOTHING`` (0.5) added to both of its counts — the usual
continuity correction — and the totals are left as they are. An empty bin (no rows at all,
e.g. ``missing`` when training had no missing value) has WOE 0: it carries no evidence,
so an applicant landing there is scored as average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError

SMOOTHING = 0.5

# Information value bands of Siddiqi, "Credit Risk Scorecards" (2006), ch. 6.
IV_BANDS = ((0.02, "not predictive"), (0.1, "weak"), (0.3, "medium"), (0.5, "strong"), (np.inf, "suspicious"))


def iv_strength(iv: float) -> str:
    """Siddiqi's reading of an information value (below 0.02 … above 0.5)."""
    for upper, text in IV_BANDS:
        if iv < upper:
            return text
    return IV_BANDS[-1][1]


def woe_iv(count: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin WOE and IV from rows and events per bin.

    Parameters
    ----------
    count, events:
        Integer arrays of the same length; ``0 <= events <= count``.

    Returns
    -------
    woe, iv
        Per-bin arrays; ``iv.sum()`` is the characteristic's information value.

    Raises
    ------
    ConfigurationError
        Negative counts, more events than rows, or no event / no non-event in total.
    """
    count = np.asarray(count, dtype=np.float64)
    events = np.asarray(events, dtype=np.float64)
    if count.shape != events.shape or np.any(events < 0) or np.any(events > count):
        raise ConfigurationError("Bin counts must be non-negative with 0 <= events <= rows in every bin.")
    non_events = count - events
    total_e, total_g = events.sum(), non_events.sum()
    if total_e == 0 or total_g == 0:
        raise ConfigurationError(
            f"WOE needs both events and non-events; got {int(total_e)} events and {int(total_g)} non-events."
        )
    occupied = count > 0
    pure = occupied & ((events == 0) | (non_events == 0))
    e = np.where(pure, events + SMOOTHING, events)
    g = np.where(pure, non_events + SMOOTHING, non_events)
    with np.errstate(divide="ignore", invalid="ignore"):
        woe = np.where(occupied, np.log((e / total_e) / (g / total_g)), 0.0)
    iv = np.where(occupied, (e / total_e - g / total_g) * woe, 0.0)
    return woe, iv


@dataclass(frozen=True)
class BinStatistics:
    """Rows and events per bin of one characteristic, with what follows from them.

    Attributes
    ----------
    name:
        The characteristic.
    labels:
        Bin labels in code order.
    count, events:
        Rows and events (defaults) per bin.
    """

    name: str
    labels: tuple[str, ...]
    count: np.ndarray
    events: np.ndarray

    @classmethod
    def from_codes(cls, name: str, labels: Sequence[str], codes: np.ndarray, y: np.ndarray) -> "BinStatistics":
        """Count rows and events per bin code (the label holder on its own rows)."""
        n_bins = len(labels)
        count = np.bincount(codes, minlength=n_bins)
        events = np.bincount(codes, weights=np.asarray(y, dtype=np.float64), minlength=n_bins).round().astype(np.int64)
        return cls(name, tuple(labels), count.astype(np.int64), events)

    @property
    def woe(self) -> np.ndarray:
        return woe_iv(self.count, self.events)[0]

    @property
    def iv_per_bin(self) -> np.ndarray:
        return woe_iv(self.count, self.events)[1]

    @property
    def iv(self) -> float:
        return float(self.iv_per_bin.sum())

    @property
    def event_rate(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.count > 0, self.events / np.maximum(self.count, 1), np.nan)

    def table(self) -> pd.DataFrame:
        """One row per bin: characteristic, code, bin, count, share, events, event rate, WOE, IV."""
        woe, iv = woe_iv(self.count, self.events)
        return pd.DataFrame(
            {
                "characteristic": self.name,
                "code": np.arange(len(self.labels)),
                "bin": list(self.labels),
                "count": self.count,
                "share": self.count / max(int(self.count.sum()), 1),
                "events": self.events,
                "event_rate": self.event_rate,
                "woe": woe,
                "iv": iv,
            }
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "count": self.count.tolist(), "events": self.events.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "BinStatistics":
        return cls(
            data["name"],
            tuple(data["labels"]),
            np.asarray(data["count"], dtype=np.int64),
            np.asarray(data["events"], dtype=np.int64),
        )


@dataclass(frozen=True)
class IVSelection:
    """Which characteristics an IV screen keeps, and why each other one is dropped."""

    kept: tuple[str, ...]
    dropped: dict[str, str]
    iv: dict[str, float]


def select_by_iv(
    statistics: Mapping[str, BinStatistics], *, min_iv: float = 0.02, max_iv: float | None = None
) -> IVSelection:
    """Keep characteristics with ``min_iv <= IV`` (and ``IV <= max_iv`` when given).

    A very high IV (above 0.5) often means a characteristic leaks the outcome; ``max_iv``
    lets a party drop those. Run by the label holder per party; the other party learns
    only the kept list.
    """
    if not 0 <= min_iv or (max_iv is not None and max_iv < min_iv):
        raise ConfigurationError(
            f"The 'min_iv' parameter of select_by_iv must be >= 0 and <= max_iv. Got {min_iv!r} instead."
        )
    ivs = {name: s.iv for name, s in statistics.items()}
    kept, dropped = [], {}
    for name, iv in ivs.items():
        if iv < min_iv:
            dropped[name] = f"IV {iv:.4f} below {min_iv} ({iv_strength(iv)})"
        elif max_iv is not None and iv > max_iv:
            dropped[name] = f"IV {iv:.4f} above {max_iv} (suspiciously strong)"
        else:
            kept.append(name)
    return IVSelection(tuple(kept), dropped, ivs)
