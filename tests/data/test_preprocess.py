"""Each party's preprocessor: impute, one-hot, standardise — fitted on training rows only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from riskfed.data.preprocess import MISSING_LEVEL, Preprocessor
from riskfed.errors import MissingColumnError, NotFittedError, SchemaError


def _frame():
    return pd.DataFrame(
        {
            "income": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "age": [30.0, 40.0, 50.0, 60.0, 20.0, 35.0],
            "const": [7.0] * 6,
            "region": ["n", "s", None, "n", "e", "s"],
        }
    )


def test_fit_transform_imputes_encodes_and_standardises():
    pre = Preprocessor(["income", "age", "const"], ["region"], party="bank")
    X = pre.fit_transform(_frame())
    assert pre.feature_names_ == [
        "income",
        "age",
        "const",
        "income__missing",
        "region=e",
        "region=n",
        "region=s",
        f"region={MISSING_LEVEL}",
    ]
    assert pre.medians_["income"] == 4.0
    assert X.shape == (6, 8)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    std = X.std(axis=0)
    np.testing.assert_allclose(std[[0, 1, 3, 4, 5, 6, 7]], 1.0)
    assert std[2] == 0.0 and pre.scale_[2] == 1.0  # a constant column contributes nothing
    # The imputed row has the median's standardised value and its missing flag set.
    assert X[2, 0] == pytest.approx((4.0 - pre.mean_[0]) / pre.scale_[0])
    assert X[2, 3] > 0 and X[0, 3] < 0


def test_fitted_on_training_rows_only():
    frame = _frame()
    pre = Preprocessor(["age"], [], party="bank").fit(frame.iloc[:3])
    assert pre.mean_[0] == pytest.approx(40.0)
    X = pre.transform(frame)
    assert X.shape == (6, 1)
    assert X[3, 0] == pytest.approx((60.0 - 40.0) / pre.scale_[0])


def test_unseen_levels_map_to_zero_and_are_counted():
    pre = Preprocessor([], ["region"], party="bank").fit(_frame())
    new = pd.DataFrame({"region": ["w", "n", "w"]})
    X = pre.transform(new)
    raw = X * pre.scale_ + pre.mean_
    np.testing.assert_allclose(raw[0], 0.0, atol=1e-12)
    assert pre.last_unseen == {"region": 2}
    pre.transform(_frame())
    assert pre.last_unseen == {}


def test_round_trip_through_json_gives_identical_features():
    pre = Preprocessor(["income", "age", "const"], ["region"], party="fintech_1").fit(_frame())
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert again.feature_names_ == pre.feature_names_
    assert np.array_equal(again.transform(_frame()), pre.transform(_frame()))
    assert again.party == "fintech_1"


@given(arrays(np.float64, st.integers(3, 30), elements=st.floats(-1e6, 1e6)))
def test_standardised_training_columns_have_mean_zero(values):
    pre = Preprocessor(["x"], [], party="bank")
    X = pre.fit_transform(pd.DataFrame({"x": values}))
    assert abs(X.mean()) < 1e-6
    assert np.all(np.isfinite(X))


def test_missing_column_at_transform():
    pre = Preprocessor(["income", "age"], ["region"], party="bank").fit(_frame())
    with pytest.raises(MissingColumnError, match="bank: feature 'age', used by the model, is not in the table") as info:
        pre.transform(_frame().drop(columns="age"))
    assert (info.value.party, info.value.column) == ("bank", "age")


def test_infinite_value_at_transform():
    pre = Preprocessor(["income", "age"], [], party="bank").fit(_frame())
    bad = _frame()
    bad.loc[4, "age"] = np.inf
    with pytest.raises(SchemaError, match=r"bank: feature 'age' holds infinite values at row\(s\) 4") as info:
        pre.transform(bad)
    assert info.value.rows == [4]


def test_feature_without_training_values():
    frame = _frame()
    frame["income"] = np.nan
    with pytest.raises(SchemaError, match="fintech_1: feature 'income' has no values on the training rows"):
        Preprocessor(["income"], [], party="fintech_1").fit(frame)


def test_not_fitted():
    pre = Preprocessor(["income"], [], party="bank")
    with pytest.raises(NotFittedError, match="The bank preprocessor is not fitted yet"):
        pre.transform(_frame())
    with pytest.raises(NotFittedError, match="not fitted yet"):
        pre.to_dict()


def test_constant_column_with_rounding_in_its_mean_stays_harmless():
    # mean([0.1] * 5) is 0.10000000000000002: the column must still count as constant,
    # or an applicant with 0.2 would get a feature of ~1e16 standard deviations.
    pre = Preprocessor(["rate"], [], party="bank").fit(pd.DataFrame({"rate": [0.1] * 5}))
    assert pre.scale_[0] == 1.0
    X = pre.transform(pd.DataFrame({"rate": [0.1, 0.2]}))
    np.testing.assert_allclose(X[:, 0], [0.0, 0.1], atol=1e-12)
