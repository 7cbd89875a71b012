"""One party's binning: fit on its own table, transform, merge by counts, statistics, JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.binning import BinStatistics, PartyBinner, plan_merges
from riskfed.data.schema import validate_table
from riskfed.errors import ConfigurationError, MissingColumnError, NotFittedError, SchemaError


def _frames(seed: int = 0, n: int = 2000):
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(10, 0.6, size=n), -2)
    late = rng.poisson(0.6, size=n).astype(float)
    region = rng.choice(["north", "south", "east", "west", "isle"], p=[0.4, 0.3, 0.2, 0.095, 0.005], size=n)
    logit = -1.5 + 0.9 * late - 0.6 * (np.log(income) - 10) + 0.4 * (region == "east")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    income[rng.random(n) < 0.03] = np.nan
    late[rng.random(n) < 0.05] = -1.0  # special: "no record"
    bank = pd.DataFrame({"income": income, "region": region})
    fintech = pd.DataFrame({"late_bills": late, "spend": np.round(rng.gamma(2, 300, size=n) * (1 + late.clip(0)), 1)})
    return bank, fintech, y


def _fintech(**kw):
    return PartyBinner("fintech_1", special_values={"late_bills": [-1]}, **kw)


def test_label_free_fit_for_a_fintech():
    _, fin, _ = _frames()
    binner = _fintech().fit(fin)
    assert binner.statistics_ == {} and binner.excluded_ == {}
    assert set(binner.characteristics_) == {"late_bills", "spend"}
    ind = binner.indicators(fin)
    assert ind.to_numpy().sum(axis=1).tolist() == [2] * len(fin)  # one bin per characteristic
    assert "late_bills=special: -1" in ind.columns
    assert binner.layout() == {name: {"dtype": "numeric", "kinds": c.kinds} for name, c in binner.characteristics_.items()}
    with pytest.raises(NotFittedError, match="no bin statistics for 'late_bills', 'spend'"):
        binner.woe(fin)


def test_bank_optimal_fit_from_a_party_table():
    bank, _, y = _frames()
    table = validate_table(bank.assign(id=range(len(bank)), y=y), party="bank", id_column="id", label_column="y")
    binner = PartyBinner(method="optimal", max_bins=5, min_bin_share=0.05).fit(table)
    assert binner.party_ == "bank"
    assert binner.characteristics_["region"].dtype == "categorical"
    attrs = binner.attribute_table()
    assert set(attrs["characteristic"]) == {"income", "region"}
    assert attrs.groupby("characteristic")["count"].sum().tolist() == [len(bank)] * 2
    woe = binner.woe(table)
    codes = binner.transform(table).codes
    stats = binner.statistics_["income"]
    assert np.allclose(woe["income"], stats.woe[codes["income"]])
    assert binner.characteristics_["income"].n_regular <= 5


def test_merge_by_counts_gives_the_fintech_merged_bins_and_the_same_statistics():
    _, fin, y = _frames(1)
    binner = _fintech(max_bins=20, min_bin_share=0.02).fit(fin)
    before = binner.transform(fin).codes
    # The bank's view: rows and events per fintech pre-bin, never a row's bin.
    stats = {n: BinStatistics.from_codes(n, [b.label for b in c.bins], before[n].to_numpy(), y)
             for n, c in binner.characteristics_.items()}
    merge_map = plan_merges(binner.layout(), stats, max_bins=4, min_bin_share=0.05, monotonic_trend="ascending")
    assert json.loads(json.dumps(merge_map)) == merge_map  # plain JSON goes back to the fintech
    old = {n: c for n, c in binner.characteristics_.items()}
    binner.set_statistics(stats).merge(merge_map)
    after = binner.transform(fin).codes
    for name in old:
        _, code_map = old[name].merge(merge_map[name])
        assert np.array_equal(after[name].to_numpy(), code_map[before[name].to_numpy()])
        direct = BinStatistics.from_codes(name, ["?"] * binner.characteristics_[name].n_bins, after[name].to_numpy(), y)
        assert binner.statistics_[name].events.tolist() == direct.events.tolist()
        assert binner.counts_[name].tolist() == direct.count.tolist()
        assert binner.characteristics_[name].n_regular <= 4


@given(st.integers(0, 1000))
@settings(max_examples=10)
def test_fit_and_transform_do_not_depend_on_row_order(seed):
    bank, fin, y = _frames(seed, n=600)
    frame = pd.concat([bank, fin], axis=1)
    order = np.random.default_rng(seed).permutation(len(frame))
    a = PartyBinner("p", special_values={"late_bills": [-1]}).fit(frame)
    b = PartyBinner("p", special_values={"late_bills": [-1]}).fit(frame.iloc[order])
    assert a.to_dict()["characteristics"] == b.to_dict()["characteristics"]
    assert np.array_equal(a.transform(frame).codes.to_numpy()[order], b.transform(frame.iloc[order]).codes.to_numpy())


@given(st.integers(0, 1000), st.sampled_from(["quantile", "optimal"]))
@settings(max_examples=8)
def test_serialisation_round_trips_to_the_same_outputs(seed, method):
    bank, fin, y = _frames(seed, n=800)
    frame = pd.concat([bank, fin], axis=1)
    binner = PartyBinner("bank", method=method, special_values={"late_bills": [-1]}, unseen="missing").fit(frame, y)
    again = PartyBinner.from_json(binner.to_json())
    new = frame.assign(region=frame["region"].where(frame.index % 7 != 0, "atlantis"))
    assert again.get_params() == binner.get_params()
    assert again.transform(new).unseen == binner.transform(new).unseen
    pd.testing.assert_frame_equal(again.woe(new), binner.woe(new))
    pd.testing.assert_frame_equal(again.indicators(new), binner.indicators(new))
    pd.testing.assert_frame_equal(again.attribute_table(), binner.attribute_table())


def test_constant_characteristic_is_flagged_not_fatal():
    bank, _, y = _frames()
    frame = bank.assign(const=5.0, empty=np.nan, one_level="x")
    binner = PartyBinner("bank", method="optimal").fit(frame, y)
    assert set(binner.excluded_) == {"const", "empty", "one_level"}
    assert binner.excluded_["const"] == f"constant after binning: all {len(frame)} rows are in the bin '[-inf, inf)'"
    assert binner.excluded_["empty"].endswith("rows are in the bin 'missing'")
    assert list(binner.transform(frame).codes.columns) == ["income", "region"]


def test_unseen_categories_are_counted_at_transform():
    bank, _, y = _frames()
    binner = PartyBinner("bank").fit(bank, y)
    scoring = bank.head(10).assign(region=["north", "mars", "mars", "east", None, "isle", "venus", "south", "west", "x"])
    out = binner.transform(scoring)
    assert out.unseen == {"region": 4}
    assert out.codes["region"].iloc[1] == binner.characteristics_["region"].other_code
    assert out.codes["region"].iloc[5] == binner.characteristics_["region"].other_code  # rare at fit, not unseen


def test_bad_input_gets_clear_typed_errors():
    bank, fin, y = _frames()
    with pytest.raises(ConfigurationError, match="fintech_1: the special value 'none' declared for the numeric characteristic 'spend'"):
        PartyBinner("fintech_1", special_values={"spend": ["none"]}).fit(fin)
    many = pd.DataFrame({"shop": [f"s{i}" for i in range(120)]})
    with pytest.raises(SchemaError, match="fintech_1: categorical characteristic 'shop' has 120 levels, more than the limit of 50"):
        PartyBinner("fintech_1").fit(many)
    with pytest.raises(ConfigurationError, match="fintech_1: method='optimal' needs labels"):
        PartyBinner("fintech_1", method="optimal").fit(fin)
    with pytest.raises(MissingColumnError, match="bank: column 'age' is declared"):
        PartyBinner("bank", categorical=["age"]).fit(bank)
    with pytest.raises(SchemaError, match=r"bank: labels must be 0 or 1; row\(s\) 0 are not"):
        PartyBinner("bank").fit(bank, np.r_[2, y[1:]])
    fitted = PartyBinner("bank").fit(bank)
    with pytest.raises(MissingColumnError, match="bank: characteristic 'region', used by the binning, is not in the table"):
        fitted.transform(bank.drop(columns="region"))
    with pytest.raises(SchemaError, match="bank: numeric characteristic 'income' holds text values"):
        fitted.transform(bank.assign(income=bank["income"].astype(object).where(bank.index != 3, "n/a")))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "best"}, r"The 'method' parameter of PartyBinner must be one of \('quantile', 'optimal'\). Got 'best' instead."),
        ({"max_bins": 0}, r"The 'max_bins' parameter of PartyBinner must be an int in the range \[1, inf\). Got 0 instead."),
        ({"min_bin_share": 0.7}, r"The 'min_bin_share' parameter of PartyBinner must be a float in the range \(0.0, 0.5\]. Got 0.7"),
        ({"monotonic_trend": "up"}, r"The 'monotonic_trend' parameter of PartyBinner must be one of"),
        ({"unseen": "drop"}, r"The 'unseen' parameter of PartyBinner must be one of \('other', 'missing'\)"),
    ],
)
def test_parameter_errors_read_like_scikit_learn(params, message):
    bank, _, _ = _frames()
    with pytest.raises(ConfigurationError, match=message):
        PartyBinner("bank", **params).fit(bank)


def test_not_fitted_and_foreign_json_are_errors():
    with pytest.raises(NotFittedError, match="The bank binning is not fitted yet"):
        PartyBinner("bank").transform(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ConfigurationError, match="Not a riskfed binning"):
        PartyBinner.from_dict({"format": "pickle"})


def test_stability_against_the_development_sample():
    bank, fin, _ = _frames()
    binner = _fintech().fit(fin)
    same = {s.name: s.index for s in binner.stability(fin)}
    assert same == {"late_bills": 0.0, "spend": 0.0}
    shifted = fin.assign(spend=fin["spend"] * 3)
    result = {s.name: s for s in binner.stability(shifted)}
    assert result["spend"].band == "major shift" and result["late_bills"].band == "stable"
