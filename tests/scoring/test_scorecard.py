"""Tests for riskfed.scoring.scorecard: points scale, reason codes, linear contributions."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, seed
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from riskfed.errors import ConfigurationError, MissingColumnError, SchemaError
from riskfed.scoring.scorecard import Scorecard, linear_contributions, reason_codes

# Scales a credit team might plausibly pick, kept in ranges where float error stays tiny.
cards = st.builds(
    Scorecard,
    base_points=st.floats(100.0, 1_000.0),
    base_odds=st.floats(0.5, 500.0),
    pdo=st.floats(5.0, 100.0),
)


def _pd_at_odds(odds: float) -> float:
    """Probability of default for good:bad odds ``odds``."""
    return 1.0 / (1.0 + odds)


# --------------------------------------------------------------------------- the scale


@pytest.mark.parametrize(
    ("base_points", "base_odds", "pdo"), [(600, 50, 20), (500, 20, 40), (300, 1, 50)]
)
def test_base_odds_score_base_points(base_points, base_odds, pdo):
    card = Scorecard(base_points=base_points, base_odds=base_odds, pdo=pdo)
    assert card.points(_pd_at_odds(base_odds)) == pytest.approx(base_points, rel=1e-13)


def test_factor_and_offset():
    card = Scorecard()
    assert card.factor == pytest.approx(20 / math.log(2))
    assert card.offset == pytest.approx(600 - 20 / math.log(2) * math.log(50))
    # At even odds (p = 0.5) the score is the offset.
    assert card.points(0.5) == pytest.approx(card.offset)


@seed(20240601)
@given(card=cards, odds=st.floats(1e-3, 1e5))
def test_doubling_the_odds_adds_pdo(card, odds):
    gain = card.points(_pd_at_odds(2 * odds)) - card.points(_pd_at_odds(odds))
    assert gain == pytest.approx(card.pdo, rel=1e-6)


@seed(20240601)
@given(card=cards, p=st.floats(1e-10, 1 - 1e-10))
def test_probability_inverts_points(card, p):
    assert card.probability(card.points(p)) == pytest.approx(p, rel=1e-9, abs=1e-15)


@seed(20240601)
@given(card=cards, z=st.floats(-10.0, 25.0))
def test_points_invert_probability(card, z):
    # z = good:bad log-odds. Up to 25 keeps p above the 1e-12 clip. Below -10, p is so
    # close to 1 that the float p itself cannot hold 1 - p to 1e-9 relative precision,
    # so the round trip loses digits by representation, not by the scorecard.
    score = card.offset + card.factor * z
    assert card.points(card.probability(score)) == pytest.approx(score, rel=1e-9, abs=1e-9)


def test_points_decrease_with_probability_of_default():
    p = np.linspace(0.0, 1.0, 1_001)
    points = Scorecard().points(p)
    assert np.all(np.diff(points) < 0)


def test_extreme_probabilities_are_clipped_to_finite_points():
    card = Scorecard()
    extremes = card.points(np.array([0.0, 1.0]))
    assert np.all(np.isfinite(extremes))
    assert extremes.tolist() == pytest.approx(card.points(np.array([1e-12, 1 - 1e-12])).tolist())


def test_shapes_are_preserved():
    card = Scorecard()
    assert isinstance(card.points(0.1), float)
    assert isinstance(card.probability(600), float)
    grid = np.array([[0.1, 0.2], [0.3, 0.4]])
    assert card.points(grid).shape == (2, 2)
    assert card.probability(card.points(grid)).shape == (2, 2)
    series = pd.Series([0.02, 0.5])
    assert card.points(series).tolist() == pytest.approx([card.points(0.02), card.points(0.5)])


def test_points_reject_nan_and_out_of_range():
    card = Scorecard()
    with pytest.raises(SchemaError, match=r"p must be finite; row 1 is not"):
        card.points([0.1, np.nan])
    with pytest.raises(SchemaError, match=r"p must be a probability in \[0, 1\]; row 'b' is not"):
        card.points(pd.Series([0.2, 1.5], index=["a", "b"]))
    with pytest.raises(SchemaError, match=r"points must be finite; rows 0, 2 are not"):
        card.probability([np.inf, 600.0, np.nan])
    with pytest.raises(SchemaError, match="p must be numeric"):
        card.points("high")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["base_points", "base_odds", "pdo"])
@pytest.mark.parametrize("value", [-1, 0, 0.0, float("nan"), float("inf"), True, "20", None])
def test_parameters_must_be_positive_finite_numbers(name, value):
    pattern = (
        rf"The '{name}' parameter of Scorecard must be a float in the range "
        rf"\(0\.0, inf\)\. Got {re.escape(repr(value))} instead\."
    )
    with pytest.raises(ConfigurationError, match=pattern):
        Scorecard(**{name: value})


def test_negative_pdo_message_reads_like_sklearn():
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'pdo' parameter of Scorecard must be a float in the range \(0\.0, inf\)\. "
        r"Got -1 instead\.$",
    ):
        Scorecard(pdo=-1)


def test_scorecard_is_frozen():
    card = Scorecard()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'pdo'"):
        card.pdo = 40.0  # type: ignore[misc]


def test_dict_round_trip_through_json():
    card = Scorecard(base_points=np.int64(500), base_odds=np.float32(20.0), pdo=40)
    text = json.dumps(card.to_dict())
    assert json.loads(text) == {"base_points": 500.0, "base_odds": 20.0, "pdo": 40.0}
    assert Scorecard.from_dict(json.loads(text)) == card
    assert Scorecard.from_dict({}) == Scorecard()


def test_from_dict_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ConfigurationError, match=r"unknown keys 'pd0'"):
        Scorecard.from_dict({"base_points": 600, "pd0": 20})
    with pytest.raises(ConfigurationError, match=r"'base_odds' parameter of Scorecard .* Got -5"):
        Scorecard.from_dict({"base_odds": -5})
    with pytest.raises(ConfigurationError, match="expects a mapping; got list"):
        Scorecard.from_dict([600, 50, 20])  # type: ignore[arg-type]


# ------------------------------------------------------------------------- reason codes


def test_reason_codes_pick_largest_positive_contributions_in_order():
    contributions = pd.DataFrame(
        {
            "bank:debt_to_income": [0.9, -0.3, 0.0],
            "bank:utilisation": [0.2, -0.1, 0.0],
            "fintech_1:late_bill_payments_12m": [1.4, 0.5, 0.0],
            "fintech_1:months_on_book": [-0.6, -0.2, 0.0],
            "fintech_2:income_volatility": [0.4, 0.3, 0.0],
        },
        index=["app-1", "app-2", "app-3"],
    )
    codes = reason_codes(contributions, top=4)
    factor = Scorecard().factor

    assert list(codes.columns) == [
        "reason_1", "reason_2", "reason_3", "reason_4",
        "points_1", "points_2", "points_3", "points_4",
    ]
    assert list(codes.index) == ["app-1", "app-2", "app-3"]
    assert codes.loc["app-1", ["reason_1", "reason_2", "reason_3", "reason_4"]].tolist() == [
        "fintech_1:late_bill_payments_12m",
        "bank:debt_to_income",
        "fintech_2:income_volatility",
        "bank:utilisation",
    ]
    assert codes.loc["app-1", ["points_1", "points_2", "points_3", "points_4"]].tolist() == [
        round(factor * c, 1) for c in (1.4, 0.9, 0.4, 0.2)
    ]
    # Only two features raise app-2's risk; negative ones are never reasons.
    assert codes.loc["app-2", ["reason_1", "reason_2", "reason_3", "reason_4"]].tolist() == [
        "fintech_1:late_bill_payments_12m", "fintech_2:income_volatility", None, None,
    ]
    assert np.isnan(codes.loc["app-2", ["points_3", "points_4"]].astype(float)).all()
    # A zero contribution costs nothing, so it is not a reason either.
    assert codes.loc["app-3", ["reason_1", "reason_2"]].tolist() == [None, None]


def test_reason_codes_points_follow_the_scorecard_scale():
    contributions = pd.DataFrame({"a": [1.0], "b": [0.5]})
    steep = Scorecard(pdo=40)
    codes = reason_codes(contributions, top=2, scorecard=steep)
    assert codes[["points_1", "points_2"]].iloc[0].tolist() == [
        round(steep.factor * 1.0, 1), round(steep.factor * 0.5, 1),
    ]


def test_reason_codes_more_reasons_than_features_and_ties():
    contributions = pd.DataFrame({"a": [0.3], "b": [0.7], "c": [0.3]})
    codes = reason_codes(contributions, top=5)
    # Ties keep column order.
    reasons = codes.iloc[0][[f"reason_{k}" for k in range(1, 6)]].tolist()
    assert reasons == ["b", "a", "c", None, None]


@seed(20240601)
@given(
    values=st.lists(
        st.lists(st.floats(-5.0, 5.0), min_size=6, max_size=6), min_size=1, max_size=20
    ),
    top=st.integers(1, 8),
)
def test_reason_codes_are_the_top_positive_contributions(values, top):
    contributions = pd.DataFrame(values, columns=[f"f{j}" for j in range(6)])
    codes = reason_codes(contributions, top=top)
    for i, row in contributions.iterrows():
        ranked = [name for name, v in sorted(row.items(), key=lambda kv: -kv[1]) if v > 0][:top]
        got = [codes.loc[i, f"reason_{k + 1}"] for k in range(top)]
        assert got == ranked + [None] * (top - len(ranked))
        costs = [codes.loc[i, f"points_{k + 1}"] for k in range(len(ranked))]
        assert costs == sorted(costs, reverse=True)


def test_reason_codes_reject_bad_input():
    with pytest.raises(
        ConfigurationError,
        match=r"The 'top' parameter of reason_codes must be an int in the range \[1, inf\)\. "
        r"Got 0 instead\.",
    ):
        reason_codes(pd.DataFrame({"a": [0.1]}), top=0)
    bad = pd.DataFrame({"a": [0.1, np.nan]}, index=["app-1", "app-2"])
    pattern = r"Column 'a' of contributions must be finite; row 'app-2' is NaN"
    with pytest.raises(SchemaError, match=pattern) as info:
        reason_codes(bad)
    assert info.value.column == "a" and info.value.rows == ["app-2"]
    with pytest.raises(SchemaError, match="contributions must be a pandas DataFrame; got ndarray"):
        reason_codes(np.zeros((2, 2)))  # type: ignore[arg-type]


# ------------------------------------------------------------------ linear contributions


@pytest.fixture(scope="module")
def fitted_model() -> tuple[pd.DataFrame, LogisticRegression]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(500, 3)),
        columns=["bank:debt_to_income", "bank:utilisation", "fintech_1:late_bill_payments_12m"],
    )
    logit = X.to_numpy() @ np.array([1.2, 0.4, 0.8]) - 2.0
    y = (rng.random(500) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, LogisticRegression().fit(X.to_numpy(), y)


def test_linear_contributions_sum_to_the_model_log_odds(fitted_model):
    X, model = fitted_model
    coef = dict(zip(X.columns, model.coef_[0]))
    contributions = linear_contributions(X, coef)
    assert list(contributions.columns) == list(X.columns)
    assert contributions.index.equals(X.index)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + model.intercept_[0], model.decision_function(X.to_numpy())
    )


def test_reason_points_explain_the_score_gap_to_the_reference(fitted_model):
    X, model = fitted_model
    coef = dict(zip(X.columns, model.coef_[0]))
    card = Scorecard()
    contributions = linear_contributions(X, coef)
    p = model.predict_proba(X.to_numpy())[:, 1]
    p_reference = 1 / (1 + np.exp(-model.intercept_[0]))  # everyone at the mean (0)
    # Every unit of log-odds of default costs `factor` points against the reference.
    np.testing.assert_allclose(
        card.points(p_reference) - card.points(p), card.factor * contributions.sum(axis=1)
    )


def test_linear_contributions_with_reference():
    X = pd.DataFrame({"a": [1.0, 3.0], "b": [0.0, -1.0], "unused_id": [7, 8]}, index=[10, 11])
    out = linear_contributions(X, {"b": 2.0, "a": 0.5}, reference={"a": 1.0, "b": 1.0})
    assert list(out.columns) == ["b", "a"]
    assert out.loc[10].tolist() == [-2.0, 0.0]
    assert out.loc[11].tolist() == [-4.0, 1.0]


def test_linear_contributions_reject_bad_input():
    X = pd.DataFrame({"a": [1.0, np.inf], "b": ["x", "y"]})
    with pytest.raises(MissingColumnError, match=r"X has no column 'c' named in coef"):
        linear_contributions(X, {"a": 1.0, "c": 1.0})
    with pytest.raises(SchemaError, match=r"Column 'b' of X must be numeric; got dtype"):
        linear_contributions(X, {"b": 1.0})
    with pytest.raises(SchemaError, match=r"Column 'a' of X must be finite; row 1 is NaN"):
        linear_contributions(X, {"a": 1.0})
    with pytest.raises(ConfigurationError, match=r"Missing: 'a'; unknown: 'z'"):
        linear_contributions(X, {"a": 1.0}, reference={"z": 0.0})
    with pytest.raises(ConfigurationError, match=r"must be finite; feature 'a' is not"):
        linear_contributions(X.iloc[:1], {"a": float("nan")})
