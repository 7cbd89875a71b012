"""Label-free pre-binning: tie-aware quantiles, missing and special bins, categorical levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.binning import prebin_categorical, prebin_numeric, quantile_cuts
from riskfed.errors import ConfigurationError, SchemaError

values_st = st.lists(
    st.one_of(st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
    min_size=1,
    max_size=300,
)


@given(values_st, st.integers(1, 12), st.integers(1, 40))
@settings(max_examples=200)
def test_quantile_cuts_keep_ties_together_and_respect_limits(values, max_bins, min_count):
    x = np.asarray(values)
    cuts = np.asarray(quantile_cuts(x, max_bins=max_bins, min_count=min_count))
    assert np.all(np.diff(cuts) > 0)
    codes = np.digitize(x, cuts)
    counts = np.bincount(codes, minlength=cuts.size + 1)
    assert cuts.size + 1 <= max_bins
    assert np.all(counts > 0)  # every cut sits between two observed values
    if cuts.size:
        assert counts.min() >= min_count
    for v in np.unique(x):  # equal values share a bin
        assert np.unique(codes[x == v]).size == 1


def test_few_distinct_values_get_a_bin_each():
    x = np.repeat([-2.0, -1.0, 0.0, 1.0, 2.0], [100, 200, 400, 150, 150])
    assert quantile_cuts(x, max_bins=10, min_count=1) == (-1.5, -0.5, 0.5, 1.5)


def test_a_value_held_by_many_rows_is_a_bin_of_its_own():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(3000), rng.lognormal(8, 1, size=7000)])
    cuts = quantile_cuts(x, max_bins=10, min_count=100)
    codes = np.digitize(x, cuts)
    zero_bin = codes[0]
    assert set(np.flatnonzero(codes == zero_bin)) == set(range(3000))
    assert len(cuts) + 1 <= 10


def test_cuts_are_short_decimals_between_observed_values():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 10.25, 11.0, 12.0] * 10)
    cuts = quantile_cuts(x, max_bins=4, min_count=1)
    assert all(len(repr(c)) <= 5 for c in cuts)


def test_prebin_numeric_keeps_missing_and_specials_apart():
    s = pd.Series([-1.0, np.nan, 999999.0, 5.0, 6.0, 7.0, 8.0, -1.0] * 25, name="utilisation")
    char = prebin_numeric(s, party="fintech_1", specials=[-1, 999999], max_bins=2, min_bin_share=0.05)
    labels = [b.label for b in char.bins]
    assert labels == ["[-inf, 6.5)", "[6.5, inf)", "missing", "special: -1", "special: 999999"]
    codes, unseen = char.assign(s)
    assert unseen == 0
    assert list(codes[:8]) == [3, 2, 4, 0, 0, 1, 1, 3]


def test_special_value_that_is_not_a_number_is_a_clear_error():
    s = pd.Series([1.0, 2.0], name="income")
    with pytest.raises(ConfigurationError, match=r"fintech_1: the special value 'n/a' declared for the numeric characteristic 'income'"):
        prebin_numeric(s, party="fintech_1", specials=["n/a"])
    with pytest.raises(ConfigurationError, match="must be a finite number"):
        prebin_numeric(s, party="fintech_1", specials=[True])


def test_text_in_a_numeric_column_names_party_column_and_rows():
    s = pd.Series(["1", "2", "x", "4"], name="income", dtype=object)
    with pytest.raises(SchemaError, match=r"bank: numeric characteristic 'income' holds text values at row\(s\) 2"):
        prebin_numeric(s, party="bank")


def test_categorical_levels_rare_pooled_missing_and_unseen():
    s = pd.Series(["a"] * 50 + ["b"] * 40 + ["c"] * 2 + [None] * 8, name="region")
    char = prebin_categorical(s, party="bank", rare_level_share=0.05)
    assert [b.label for b in char.bins] == ["{a}", "{b}", "other", "missing"]
    assert char.rare_levels == ("c",)
    codes, unseen = char.assign(pd.Series(["a", "c", None, "zzz", "b", "zzz"]))
    assert list(codes) == [0, 2, 3, 2, 1, 2]
    assert unseen == 2  # "c" was seen (rare), "zzz" never


def test_unseen_levels_may_go_to_missing():
    s = pd.Series(["a", "b"] * 10, name="region")
    char = prebin_categorical(s, party="bank", unseen="missing")
    codes, unseen = char.assign(pd.Series(["new", "a"]))
    assert list(codes) == [char.missing_code, 0] and unseen == 1


def test_numeric_codes_as_categories_are_the_same_level_as_int_or_float():
    as_int = pd.Series([1, 2, 2, 3] * 10, name="EDUCATION")
    as_float = pd.Series([1.0, 2.0, np.nan, 3.0] * 10, name="EDUCATION")
    char = prebin_categorical(as_int, party="bank")
    assert [b.label for b in char.bins][:3] == ["{1}", "{2}", "{3}"]
    codes, unseen = char.assign(as_float)
    assert unseen == 0 and list(codes[:4]) == [0, 1, char.missing_code, 2]


def test_more_levels_than_the_limit_is_a_clear_error():
    s = pd.Series([f"shop{i:03d}" for i in range(80)], name="merchant")
    with pytest.raises(SchemaError, match=r"fintech_1: categorical characteristic 'merchant' has 80 levels, more than the limit of 50 \(levels 'shop000', 'shop001'"):
        prebin_categorical(s, party="fintech_1", max_levels=50)


def test_levels_sort_numerically_when_they_are_numbers():
    s = pd.Series(["10", "2", "1"] * 10, name="code")
    char = prebin_categorical(s, party="bank")
    assert [b.label for b in char.bins][:3] == ["{1}", "{2}", "{10}"]
