"""A characteristic's bins: layout, labels, assignment, merges, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.binning import Characteristic
from riskfed.binning.bins import nice_cut
from riskfed.errors import ConfigurationError

NUM = Characteristic("PAY_0", "numeric", cuts=(-0.5, 0.5, 1.5), specials=(-9.0, 999999.0))
CAT = Characteristic("EDUCATION", "categorical", groups=(("1",), ("2",), ("3",)), rare_levels=("0", "5"))

cuts_st = st.lists(st.integers(-50, 50), min_size=0, max_size=6, unique=True).map(
    lambda v: tuple(float(c) / 2 for c in sorted(v))
)
numeric_values_st = st.lists(
    st.one_of(st.just(np.nan), st.just(-9.0), st.integers(-30, 30).map(lambda v: v / 2), st.floats(-1e9, 1e9)),
    min_size=1,
    max_size=80,
)


def test_labels_and_layout():
    assert [b.label for b in NUM.bins] == [
        "[-inf, -0.5)", "[-0.5, 0.5)", "[0.5, 1.5)", "[1.5, inf)", "missing", "special: -9", "special: 999999",
    ]
    assert NUM.kinds == ["interval"] * 4 + ["missing", "special", "special"]
    assert [b.label for b in CAT.bins] == ["{1}", "{2}", "{3}", "other", "missing"]
    assert NUM.describe(3) == "PAY_0 in [1.5, inf)"
    assert CAT.describe(3) == "EDUCATION: other levels"
    assert NUM.describe(5) == "PAY_0 special: -9"


@given(cuts_st, numeric_values_st)
@settings(max_examples=150)
def test_every_numeric_value_lands_in_exactly_the_bin_that_contains_it(cuts, values):
    char = Characteristic("x", "numeric", cuts=cuts, specials=(-9.0,))
    x = np.asarray(values, dtype=float)
    codes, _ = char.assign(pd.Series(x))
    assert codes.shape == x.shape and codes.min() >= 0 and codes.max() < char.n_bins
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    for v, code in zip(x, codes):
        if np.isnan(v):
            assert code == char.missing_code
        elif v == -9.0:
            assert code == char.special_code(0)
        else:
            assert edges[code] <= v < edges[code + 1]


@given(cuts_st, numeric_values_st, st.randoms(use_true_random=False))
@settings(max_examples=60)
def test_assignment_does_not_depend_on_row_order(cuts, values, rnd):
    char = Characteristic("x", "numeric", cuts=cuts)
    x = pd.Series(values, dtype=float)
    order = list(range(len(x)))
    rnd.shuffle(order)
    codes, _ = char.assign(x)
    shuffled, _ = char.assign(x.iloc[order])
    assert np.array_equal(codes[order], shuffled)


def test_a_value_equal_to_a_cut_goes_to_the_upper_interval():
    codes, _ = NUM.assign(pd.Series([-0.5, 0.5, 1.5, 1.4999]))
    assert list(codes) == [1, 2, 3, 2]


def test_merge_numeric_joins_adjacent_intervals_and_keeps_missing_and_specials():
    merged, code_map = NUM.merge([0, 0, 1, 1, 10, 11, 12])
    assert merged.cuts == (0.5,)
    assert list(code_map) == [0, 0, 1, 1, 2, 3, 4]
    x = pd.Series([-3.0, 0.0, 1.0, 7.0, np.nan, -9.0, 999999.0])
    assert np.array_equal(merged.assign(x)[0], code_map[NUM.assign(x)[0]])


def test_merge_rejects_non_adjacent_intervals_and_merging_missing():
    with pytest.raises(ConfigurationError, match="only join adjacent intervals"):
        NUM.merge([0, 1, 0, 2, 10, 11, 12])
    with pytest.raises(ConfigurationError, match="the 'missing' bin cannot be merged"):
        NUM.merge([0, 1, 2, 3, 3, 11, 12])
    with pytest.raises(ConfigurationError, match="needs one entry per bin"):
        NUM.merge([0, 1])


def test_merge_categorical_groups_levels_and_other():
    merged, code_map = CAT.merge([0, 1, 1, 0, 9])
    assert [b.label for b in merged.bins] == ["{1, other}", "{2, 3}", "missing"]
    assert list(code_map) == [0, 1, 1, 0, 2]
    x = pd.Series(["1", "2", "3", "0", None, "never"])
    codes, unseen = merged.assign(x)
    assert list(codes) == [0, 1, 1, 0, 2, 0] and unseen == 1
    # A second merge of an already merged characteristic.
    again, code_map2 = merged.merge([0, 0, 5])
    assert [b.label for b in again.bins] == ["{1, 2, 3, other}", "missing"]
    assert list(code_map2) == [0, 0, 1]


@given(cuts_st, st.lists(st.text(min_size=1, max_size=3), max_size=5, unique=True), st.booleans())
@settings(max_examples=80)
def test_serialisation_round_trips_through_json(cuts, levels, numeric):
    if numeric:
        char = Characteristic("x", "numeric", cuts=cuts, specials=(-1.0,))
    else:
        char = Characteristic("x", "categorical", groups=tuple((lvl,) for lvl in levels[1:]),
                              rare_levels=tuple(levels[:1]), unseen="missing")
    again = Characteristic.from_dict(json.loads(json.dumps(char.to_dict())))
    assert again == char
    assert [b.label for b in again.bins] == [b.label for b in char.bins]


@given(st.floats(-1e12, 1e12), st.floats(1e-6, 1e6))
def test_nice_cut_lies_between_the_two_values(low, gap):
    high = low + gap
    if high == low:
        return
    c = nice_cut(low, high)
    assert low < c <= high


def test_bad_definitions_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="cuts must be finite and strictly increasing"):
        Characteristic("x", "numeric", cuts=(1.0, 1.0))
    with pytest.raises(ConfigurationError, match="The 'dtype' parameter of Characteristic must be"):
        Characteristic("x", "text")
    with pytest.raises(ConfigurationError, match="level 'a' is in two groups"):
        Characteristic("x", "categorical", groups=(("a",), ("a", "b")))
