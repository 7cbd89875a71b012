"""Characteristic stability: has a characteristic's distribution over its bins moved?

The characteristic stability index (CSI) is the population stability index computed on a
characteristic's bins instead of score bands. With ``d_b`` and ``s_b`` the shares of the
development and the scoring sample in bin ``b``::

    CSI = sum_b (s_b - d_b) * ln(s_b / d_b)

An empty share is raised to ``PSI_EPSILON`` (1e-4), as in
:func:`riskfed.evaluation.population_stability_index`, so the index stays finite. Each
party computes it on its own characteristics from bin counts; no label is involved.
Bands (the usual reading): below 0.1 stable, 0.1 to 0.25 a shift worth a look, 0.25 and
above a significant shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError
from riskfed.evaluation import PSI_EPSILON

STABLE_BELOW = 0.1
SHIFT_FROM = 0.25


def stability_band(index: float) -> str:
    """``"stable"`` (< 0.1), ``"minor shift"`` (0.1–0.25) or ``"major shift"`` (≥ 0.25)."""
    if index < STABLE_BELOW:
        return "stable"
    if index < SHIFT_FROM:
        return "minor shift"
    return "major shift"


@dataclass(frozen=True)
class CharacteristicStability:
    """CSI of one characteristic, with the per-bin shares behind it."""

    name: str
    labels: tuple[str, ...]
    development: np.ndarray
    scoring: np.ndarray

    @property
    def index(self) -> float:
        return stability_index(self.development, self.scoring)

    @property
    def band(self) -> str:
        return stability_band(self.index)

    def table(self) -> pd.DataFrame:
        """Per bin: development and scoring counts and shares, and the bin's CSI term."""
        d, s = _shares(self.development), _shares(self.scoring)
        return pd.DataFrame(
            {
                "characteristic": self.name,
                "bin": list(self.labels),
                "development_count": self.development,
                "scoring_count": self.scoring,
                "development_share": d,
                "scoring_share": s,
                "csi": (s - d) * np.log(s / d),
            }
        )


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return np.maximum(counts / counts.sum(), PSI_EPSILON)


def stability_index(development_counts, scoring_counts) -> float:
    """CSI (or PSI) from per-bin counts of two samples over the same bins.

    Raises
    ------
    ConfigurationError
        Different numbers of bins, negative counts or an empty sample.
    """
    d = np.asarray(development_counts, dtype=np.float64)
    s = np.asarray(scoring_counts, dtype=np.float64)
    if d.shape != s.shape or d.ndim != 1:
        raise ConfigurationError(f"Stability needs the same bins in both samples; got {d.shape} and {s.shape}.")
    if np.any(d < 0) or np.any(s < 0) or d.sum() == 0 or s.sum() == 0:
        raise ConfigurationError("Stability needs non-negative bin counts and at least one row in each sample.")
    dev, sco = _shares(d), _shares(s)
    return float(np.sum((sco - dev) * np.log(sco / dev)))
