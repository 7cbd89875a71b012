"""Business impact: cut-off strategy tables, comparisons at a held approval or bad rate,
swap sets, cumulative gains and the KS point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.evaluation import decile_table, ks_curve, ks_statistic
from riskfed.validation import (
    compare_at_approval_rate,
    compare_at_bad_rate,
    compare_cutoff_tables,
    cutoff_for_approval_rate,
    cutoff_table,
    gains_table,
    ks_point,
    swap_set,
)


@pytest.fixture(scope="module")
def portfolio():
    """A bank-only PD and a better federated PD for the same 5,000 applicants."""
    rng = np.random.default_rng(0)
    bank, fintech = rng.normal(size=(2, 5000))
    y = (rng.random(5000) < expit(-1.6 + 0.9 * bank + 0.9 * fintech)).astype(int)
    p_bank = expit(-1.6 + 0.9 * bank + rng.normal(scale=0.3, size=5000))
    p_fed = expit(-1.6 + 0.9 * bank + 0.9 * fintech + rng.normal(scale=0.3, size=5000))
    return y, p_bank, p_fed


def _brute_force(y, p, cutoff):
    approve = p <= cutoff
    return approve.sum(), y[approve].sum(), y[~approve].sum()


# ------------------------------------------------------------------- strategy table


def test_cutoff_table_counts_agree_with_brute_force(portfolio):
    y, p, _ = portfolio
    p = np.round(p, 2)  # ties at the cut-off
    table = cutoff_table(y, p)
    assert table["approval_rate_target"].tolist() == pytest.approx([0.05 * k for k in range(1, 21)])
    for row in table.itertuples():
        approved, bads_approved, bads_declined = _brute_force(y, p, row.cutoff)
        assert (row.approved, row.bads_approved, row.bads_declined) == (approved, bads_approved, bads_declined)
        assert row.approval_rate <= row.approval_rate_target + 1e-12
        assert row.approved + row.declined == y.size
        assert row.goods_approved + row.bads_approved == row.approved
        assert row.bads_declined_share == pytest.approx(bads_declined / y.sum())
    # Never more than the target, and the next distinct PD would exceed it.
    for row in table.itertuples():
        above = p[p > row.cutoff]
        if above.size:
            assert (p <= above.min()).sum() > row.approval_rate_target * y.size
    assert table["approval_rate"].iloc[-1] == 1.0 and np.isnan(table["bad_rate_declined"].iloc[-1])


def test_cutoff_table_by_pd_cutoffs_and_its_errors(portfolio):
    y, p, _ = portfolio
    table = cutoff_table(y, p, cutoffs=[0.05, 0.1, 0.2, 0.0])
    assert table["cutoff"].tolist() == [0.05, 0.1, 0.2, 0.0]
    assert table["approved"].tolist()[:3] == [int((p <= c).sum()) for c in (0.05, 0.1, 0.2)]
    assert table["approved"].iloc[3] == 0 and np.isnan(table["bad_rate_approved"].iloc[3])
    with pytest.raises(ConfigurationError, match=r"The 'approval_rates' and 'cutoffs' parameters of cutoff_table are exclusive"):
        cutoff_table(y, p, approval_rates=[0.5], cutoffs=[0.1])
    with pytest.raises(ConfigurationError, match=r"The 'approval_rates' parameter of cutoff_table must be a non-empty sequence of numbers in \[0, 1\]\. Got \[70\] instead"):
        cutoff_table(y, p, approval_rates=[70])


def test_approving_no_one_is_explicit():
    # Half the applicants share the lowest PD: approving at most 30 % approves no one.
    y, p = [0, 1, 0, 1], [0.1, 0.1, 0.3, 0.4]
    assert cutoff_for_approval_rate(p, 0.3) == -np.inf
    row = cutoff_table(y, p, approval_rates=[0.3]).iloc[0]
    assert (row["approved"], row["cutoff"]) == (0, -np.inf)


def test_compare_cutoff_tables_stacks_models(portfolio):
    y, p_bank, p_fed = portfolio
    table = compare_cutoff_tables(y, {"bank-only": p_bank, "federated": p_fed}, approval_rates=[0.5, 0.8])
    assert table.columns[0] == "model"
    assert table["model"].tolist() == ["bank-only", "bank-only", "federated", "federated"]
    with pytest.raises(SchemaError, match=r"predictions\['federated'\] must be finite"):
        compare_cutoff_tables(y, {"bank-only": p_bank, "federated": np.full(5000, np.nan)})
    with pytest.raises(ConfigurationError, match=r"The 'predictions' parameter of compare_cutoff_tables must be a non-empty mapping"):
        compare_cutoff_tables(y, {})


# ----------------------------------------------------------------------- comparisons


def test_better_model_lowers_the_bad_rate_and_raises_approval(portfolio):
    y, p_bank, p_fed = portfolio
    at_rate = compare_at_approval_rate(y, p_bank, p_fed, 0.7)
    b, f = at_rate.baseline, at_rate.challenger
    assert b.approval_rate == f.approval_rate == 0.7
    assert f.bad_rate < b.bad_rate
    assert b.bad_rate == pytest.approx(y[p_bank <= b.cutoff].mean())
    assert at_rate.sentence == (
        f"At an approval rate of 70.0 %, the bad rate falls from {100 * b.bad_rate:.1f} % "
        f"(bank-only) to {100 * f.bad_rate:.1f} % (federated)."
    )
    at_bad = compare_at_bad_rate(y, p_bank, p_fed, b.bad_rate)
    assert at_bad.baseline.approval_rate >= 0.7
    assert at_bad.challenger.approval_rate > at_bad.baseline.approval_rate
    assert at_bad.challenger.bad_rate <= b.bad_rate
    assert at_bad.sentence.startswith(f"At a constant bad rate of {100 * b.bad_rate:.1f} %, the approval rate rises from")
    json.dumps(at_bad.to_dict())


def test_compare_at_bad_rate_takes_the_largest_approval_within_the_limit():
    # Cut-offs by PD: bad rates 0, 1/2, 1/3, 1/4, 2/5, 3/6 -> at 25 % the most is 4 of 6.
    y = [0, 1, 0, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    result = compare_at_bad_rate(y, p, p[::-1], 0.25, names=("old", "new"))
    assert result.baseline.approved == 4 and result.baseline.cutoff == 0.4
    assert result.challenger.approved == 0 and result.challenger.cutoff == -np.inf
    assert "changes from 66.7 % (old) to 0.0 % (new)" not in result.sentence
    assert result.sentence.endswith("falls from 66.7 % (old) to 0.0 % (new).")


def test_sentences_with_ties_and_no_change():
    y, p = [0, 1, 0, 1, 0, 0], [0.1, 0.2, 0.2, 0.4, 0.5, 0.6]
    # At most 30 % of six is one applicant: the two tied at 0.2 cannot both come in.
    same = compare_at_approval_rate(y, p, p, 0.3, names=("a", "b"))
    assert same.sentence == (
        "At an approval rate of 30.0 %, the bad rate stays at 0.0 % (a and b); "
        "tied PDs allow approval rates of 16.7 % and 16.7 %."
    )
    with pytest.raises(ConfigurationError, match=r"The 'names' parameter of compare_at_approval_rate must be a pair of two different non-empty strings"):
        compare_at_approval_rate(y, p, p, 0.5, names=("a", "a"))
    with pytest.raises(ConfigurationError, match=r"The 'approval_rate' parameter of compare_at_approval_rate must be a float in the range \[0, 1\]\. Got 70 instead"):
        compare_at_approval_rate(y, p, p, 70)


# -------------------------------------------------------------------------- swap set


def test_swap_set_partitions_the_applicants(portfolio):
    y, p_bank, p_fed = portfolio
    cut_bank = cutoff_for_approval_rate(p_bank, 0.7)
    cut_fed = cutoff_for_approval_rate(p_fed, 0.7)
    table = swap_set(y, p_bank, p_fed, cutoff_a=cut_bank, cutoff_b=cut_fed).set_index("segment")
    assert table.index.tolist() == ["both_approve", "only_a_approves", "only_b_approves", "both_decline"]
    assert table["n"].sum() == y.size and table["bads"].sum() == y.sum()
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc["only_b_approves", "description"] == "only federated approves"
    only_fed = (p_bank > cut_bank) & (p_fed <= cut_fed)
    assert table.loc["only_b_approves", "n"] == only_fed.sum()
    assert table.loc["only_b_approves", "bad_rate"] == pytest.approx(y[only_fed].mean())
    # Same approval rate: equal swap-in and swap-out volumes, fewer bads swapped in.
    assert table.loc["only_a_approves", "n"] == table.loc["only_b_approves", "n"]
    assert table.loc["only_b_approves", "bad_rate"] < table.loc["only_a_approves", "bad_rate"]
    with pytest.raises(ConfigurationError, match=r"The 'cutoff_a' parameter of swap_set must be a float \(a PD cut-off; -inf approves no one\)\. Got None instead"):
        swap_set(y, p_bank, p_fed, cutoff_a=None, cutoff_b=cut_fed)
    with pytest.raises(ConfigurationError, match=r"The 'cutoff_b' parameter of swap_set must be a float .*Got nan instead"):
        swap_set(y, p_bank, p_fed, cutoff_a=cut_bank, cutoff_b=float("nan"))
    everyone_declined = swap_set(y, p_bank, p_fed, cutoff_a=-np.inf, cutoff_b=-np.inf)
    assert everyone_declined["n"].tolist() == [0, 0, 0, y.size]
    assert swap_set(y, p_bank, p_fed, cutoff_a=np.inf, cutoff_b=1)["n"].tolist() == [y.size, 0, 0, 0]


# ------------------------------------------------------------------------ properties


@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=60),
    st.floats(0, 1),
)
def test_property_strategy_never_exceeds_the_target_and_is_monotone(rows, rate):
    y = np.array([r[0] for r in rows])
    y[0], y[1] = 0, 1
    p = np.array([r[1] for r in rows]) / 20
    row = cutoff_table(y, p, approval_rates=[rate]).iloc[0]
    assert row["approved"] <= rate * y.size + 1e-9
    assert row["approved"] == (p <= row["cutoff"]).sum()
    table = cutoff_table(y, p, approval_rates=np.linspace(0, 1, 11))
    assert table["approved"].is_monotonic_increasing and table["bads_approved"].is_monotonic_increasing


# ---------------------------------------------------------------- gains and KS point


def test_gains_table_extends_the_decile_table(portfolio):
    y, _, p = portfolio
    table = gains_table(y, p)
    base = decile_table(y, p)
    pd.testing.assert_frame_equal(table[base.columns], base)
    assert table["cum_population_share"].iloc[-1] == 1.0 and table["cum_lift"].iloc[-1] == pytest.approx(1.0)
    assert table["cum_default_rate"].iloc[0] == pytest.approx(table["default_rate"].iloc[0])
    assert table["cum_lift"].iloc[0] > 2 and table["cum_lift"].is_monotonic_decreasing
    assert table["cum_default_capture"].tolist() == pytest.approx((table["cum_defaults"] / y.sum()).tolist())


@pytest.mark.parametrize("decimals", [None, 2])
def test_ks_point_is_on_the_ks_curve(portfolio, decimals):
    y, _, p = portfolio
    p = p if decimals is None else np.round(p, decimals)
    point = ks_point(y, p)
    assert point.ks == pytest.approx(ks_statistic(y, p), abs=1e-12)
    curve = ks_curve(y, p)  # keeps the peak, so the point is one of its rows
    row = curve.loc[curve["threshold"] == point.threshold].iloc[0]
    assert (row["cum_bad"], row["cum_good"]) == pytest.approx((point.cum_bad, point.cum_good))
    assert point.cum_bad == pytest.approx((p[y == 1] >= point.threshold).mean())
    assert point.cum_good == pytest.approx((p[y == 0] >= point.threshold).mean())
    assert point.population_share == pytest.approx((p >= point.threshold).mean())
    json.dumps(point.to_dict(), allow_nan=False)
