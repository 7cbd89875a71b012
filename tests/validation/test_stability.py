"""Population stability table and its 0.1 / 0.25 reading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.evaluation import population_stability_index
from riskfed.validation import population_stability_table, stability_label


@pytest.mark.parametrize(
    ("shift", "decimals", "n_bins"),
    [(0.0, None, 10), (0.3, None, 10), (1.0, None, 5), (0.2, 1, 10), (3.0, None, 10)],
)
def test_contributions_add_up_to_the_evaluation_index(shift, decimals, n_bins):
    rng = np.random.default_rng(0)
    expected = rng.normal(size=4000)
    actual = rng.normal(loc=shift, size=3000)
    if decimals is not None:  # ties merge quantile bands
        expected, actual = np.round(expected, decimals), np.round(actual, decimals)
    result = population_stability_table(expected, actual, n_bins=n_bins)
    assert result.psi == pytest.approx(population_stability_index(expected, actual, n_bins=n_bins), abs=1e-12)
    table = result.table
    assert table["contribution"].sum() == pytest.approx(result.psi)
    assert table["expected_n"].sum() == expected.size and table["actual_n"].sum() == actual.size
    assert table["expected_share"].sum() == pytest.approx(1.0)
    assert table["lower"].iloc[0] == -np.inf and table["upper"].iloc[-1] == np.inf
    assert (table["upper"].iloc[:-1].to_numpy() == table["lower"].iloc[1:].to_numpy()).all()
    assert (table["contribution"] >= 0).all()


def test_band_counts_are_right_closed():
    result = population_stability_table([1, 2, 3, 4], [2, 2, 5, 0], n_bins=2)
    # One cut at the median 2.5: (-inf, 2.5] and (2.5, inf).
    assert result.table["upper"].iloc[0] == 2.5
    assert result.table["actual_n"].tolist() == [3, 1]


def test_labels_and_flags():
    assert [stability_label(v) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "stable", "stable", "moderate shift", "moderate shift", "significant shift", "significant shift",
    ]
    rng = np.random.default_rng(1)
    base = rng.normal(size=5000)
    for shift, label, flag in [(0.0, "stable", "green"), (0.45, "moderate shift", "amber"), (1.0, "significant shift", "red")]:
        result = population_stability_table(base, rng.normal(loc=shift, size=5000))
        assert (result.label, result.flag) == (label, flag), shift
    stored = json.loads(json.dumps(result.to_dict()))
    assert stored["label"] == "significant shift" and len(stored["table"]) == 10


def test_bad_input():
    with pytest.raises(ConfigurationError, match=r"The 'psi' parameter of stability_label must be a float in the range \[0, inf\)\. Got -0.1 instead"):
        stability_label(-0.1)
    with pytest.raises(ConfigurationError, match=r"The 'n_bins' parameter of population_stability_table must be an int in the range \[2, inf\)\. Got 1 instead"):
        population_stability_table([1, 2], [1, 2], n_bins=1)
    with pytest.raises(SchemaError, match=r"actual must be finite; row 1 holds NaN or infinite"):
        population_stability_table([1, 2, 3], [1, np.nan])
