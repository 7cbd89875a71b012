"""Tests for the synthetic pilot generator (riskfed.data.synthetic)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from riskfed.data.synthetic import (
    BANK_FEATURES,
    FINTECH_FEATURES,
    PilotData,
    generate_pilot,
    write_pilot,
)
from riskfed.errors import ConfigurationError

CATEGORICAL = ["home_ownership", "region"]


def normalise(ids: pd.Series) -> pd.Series:
    """The alignment rule the pilot is built for: trim, case-fold, drop " -_./"."""
    return ids.str.strip().str.casefold().str.replace(r"[ \-_./]", "", regex=True)


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("customer_id", "default")]


@pytest.fixture(scope="module")
def pilot() -> PilotData:
    return generate_pilot(20_000, seed=0)


@pytest.fixture(scope="module")
def pilot_k2() -> PilotData:
    return generate_pilot(5_000, fintechs=2, seed=3)


# ----------------------------------------------------------------------- shape and types


def test_tables_have_documented_columns_and_dtypes(pilot):
    assert list(pilot.bank.columns) == ["customer_id", "default", *BANK_FEATURES]
    assert list(pilot.applicants.columns) == ["customer_id", *BANK_FEATURES]
    assert list(pilot.applicant_outcomes.columns) == ["customer_id", "default"]
    assert len(pilot.fintechs) == 1
    assert list(pilot.fintechs[0].columns) == ["customer_id", *FINTECH_FEATURES]
    assert (pilot.id_column, pilot.label_column) == ("customer_id", "default")

    for df in (pilot.bank, pilot.applicants, pilot.applicant_outcomes, *pilot.fintechs):
        assert pd.api.types.is_string_dtype(df["customer_id"])
        for column in feature_columns(df):
            if column in CATEGORICAL:
                assert pd.api.types.is_string_dtype(df[column]), column
            else:
                dtype = df[column].dtype
                assert pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype), column
    assert pilot.bank["default"].dtype == np.int64
    assert set(pilot.bank["default"].unique()) == {0, 1}


def test_feature_ranges_are_realistic(pilot):
    bank, fintech = pilot.bank, pilot.fintechs[0]
    assert bank["age"].between(18, 85).all()
    assert (bank["annual_income"].dropna() > 0).all()
    assert bank["debt_to_income"].dropna().between(0, 1.5).all()
    utilisation = bank["credit_utilisation"]
    assert utilisation.between(0, 1.5).all() and (utilisation > 1).any()
    assert (bank["num_delinquencies_2y"] >= 0).all()
    assert (bank["months_on_book"].dropna() >= 1).all()
    assert set(bank["home_ownership"].dropna()) == {"RENT", "OWN", "MORTGAGE", "OTHER"}
    assert 3 <= bank["region"].nunique() <= 8
    for column in FINTECH_FEATURES:
        assert (fintech[column].dropna() >= 0).all(), column


def test_prevalence_is_between_5_and_15_percent(pilot):
    assert 0.05 <= pilot.bank["default"].mean() <= 0.15
    assert pilot.truth["prevalence"] == pytest.approx(pilot.bank["default"].mean())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_prevalence_holds_at_small_sizes(seed):
    data = generate_pilot(2_000, overlap=0.3, seed=seed)
    assert 0.05 <= data.bank["default"].mean() <= 0.15


# ----------------------------------------------------------------------------------- ids


def test_ids_unique_after_normalisation_in_every_table(pilot, pilot_k2):
    for data in (pilot, pilot_k2):
        for df in (data.bank, data.applicants, data.applicant_outcomes, *data.fintechs):
            assert normalise(df["customer_id"]).is_unique
    assert pilot.bank["customer_id"].str.fullmatch(r"C\d{7}").all()


def test_fintech_writes_some_ids_in_another_surface_form(pilot):
    bank_ids = set(pilot.bank["customer_id"])
    fintech = pilot.fintechs[0]
    known = normalise(fintech["customer_id"]).isin(set(normalise(pilot.bank["customer_id"])))
    raw_match = fintech["customer_id"].isin(bank_ids)
    # Every raw match is a normalised match, but a noticeable share needs normalising.
    assert not (raw_match & ~known).any()
    differs = (known & ~raw_match).sum() / known.sum()
    assert 0.2 <= differs <= 0.7
    assert fintech["customer_id"].str.contains(r"[-_. ]").any()
    assert fintech["customer_id"].str.contains(r"^c").any()


def test_overlap_fraction_matches_request(pilot):
    bank_keys = set(normalise(pilot.bank["customer_id"]))
    fintech_keys = set(normalise(pilot.fintechs[0]["customer_id"]))
    assert len(bank_keys & fintech_keys) / len(bank_keys) == pytest.approx(0.7, abs=0.02)

    other = generate_pilot(20_000, overlap=0.6, seed=4)
    bank_keys = set(normalise(other.bank["customer_id"]))
    fintech_keys = set(normalise(other.fintechs[0]["customer_id"]))
    assert len(bank_keys & fintech_keys) / len(bank_keys) == pytest.approx(0.6, abs=0.02)


def test_fintech_has_customers_of_its_own(pilot):
    bank_keys = set(normalise(pilot.bank["customer_id"]))
    applicant_keys = set(normalise(pilot.applicants["customer_id"]))
    fintech_keys = normalise(pilot.fintechs[0]["customer_id"])
    known_bank = fintech_keys.isin(bank_keys).sum()
    own = (~fintech_keys.isin(bank_keys | applicant_keys)).sum()
    assert own == pytest.approx(0.3 * known_bank, rel=0.01)
    assert pilot.truth["counts"]["fintech_own_customers"] == own


def test_rows_are_not_in_population_order(pilot):
    # If tables were in generation order, known customers would come first in the
    # fintech table and the bank's ids would follow the fintech's row order.
    fintech_keys = normalise(pilot.fintechs[0]["customer_id"])
    is_bank = fintech_keys.isin(set(normalise(pilot.bank["customer_id"]))).to_numpy()
    first, last = is_bank[: len(is_bank) // 2].mean(), is_bank[len(is_bank) // 2 :].mean()
    assert abs(first - last) < 0.05
    assert not pilot.bank["customer_id"].is_monotonic_increasing


# ----------------------------------------------------------------------------- fintechs


def test_two_fintechs_split_features_and_know_the_same_bank_customers(pilot_k2):
    tables = pilot_k2.fintechs
    assert len(tables) == 2
    features = [set(feature_columns(df)) for df in tables]
    assert all(features)
    assert features[0].isdisjoint(features[1])
    assert features[0] | features[1] == set(FINTECH_FEATURES)
    assert [sorted(f) for f in features] == [sorted(f) for f in pilot_k2.truth["fintech_features"]]

    bank_keys = set(normalise(pilot_k2.bank["customer_id"]))
    known = [set(normalise(df["customer_id"])) & bank_keys for df in tables]
    assert known[0] == known[1]
    assert len(known[0]) / len(bank_keys) == pytest.approx(0.7, abs=0.02)
    # Surface forms and row orders are each fintech's own.
    assert not tables[0]["customer_id"].equals(tables[1]["customer_id"])


def test_as_many_fintechs_as_features_gets_one_feature_each():
    data = generate_pilot(500, fintechs=len(FINTECH_FEATURES), seed=0)
    assert [len(feature_columns(df)) for df in data.fintechs] == [1] * len(FINTECH_FEATURES)


# ------------------------------------------------------------------------------ missing


def test_missing_values_present_in_a_few_columns(pilot):
    bank_missing = pilot.bank.isna().mean()
    fintech_missing = pilot.fintechs[0].isna().mean()
    assert bank_missing[["customer_id", "default", "age"]].eq(0).all()
    assert fintech_missing["customer_id"] == 0
    for missing in (bank_missing, fintech_missing):
        numeric = [c for c in missing.index if c not in ("customer_id", "default", *CATEGORICAL)]
        rates = missing[numeric]
        assert (rates > 0).sum() >= 2
        assert rates.max() <= 0.05
        assert rates[rates > 0].min() >= 0.005
    assert 0 < bank_missing["home_ownership"] <= 0.05


# ------------------------------------------------------------------------ reproducibility


def assert_pilots_equal(a: PilotData, b: PilotData) -> None:
    pd.testing.assert_frame_equal(a.bank, b.bank)
    pd.testing.assert_frame_equal(a.applicants, b.applicants)
    pd.testing.assert_frame_equal(a.applicant_outcomes, b.applicant_outcomes)
    assert len(a.fintechs) == len(b.fintechs)
    for x, y in zip(a.fintechs, b.fintechs):
        pd.testing.assert_frame_equal(x, y)
    assert a.truth == b.truth


def test_same_seed_gives_identical_pilot():
    first = generate_pilot(1_000, fintechs=2, seed=11)
    assert_pilots_equal(first, generate_pilot(1_000, fintechs=2, seed=11))


def test_different_seeds_give_different_pilots():
    a, b = generate_pilot(1_000, seed=1), generate_pilot(1_000, seed=2)
    assert set(a.bank["customer_id"]) != set(b.bank["customer_id"])
    assert not a.bank["annual_income"].equals(b.bank["annual_income"])
    assert a.truth["intercept"] != b.truth["intercept"]


# ------------------------------------------------------------------------------- signal


def _holdout_auc(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> float:
    categorical = [c for c in columns if c in CATEGORICAL]
    numeric = [c for c in columns if c not in CATEGORICAL]
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                    ),
                    categorical,
                ),
            ]
        ),
        LogisticRegression(max_iter=1_000),
    )
    model.fit(train[columns], train["default"])
    return roc_auc_score(test["default"], model.predict_proba(test[columns])[:, 1])


def test_fintech_features_clearly_improve_a_plain_logistic_regression(pilot):
    bank = pilot.bank.assign(key=normalise(pilot.bank["customer_id"]))
    fintech = pilot.fintechs[0].assign(key=normalise(pilot.fintechs[0]["customer_id"]))
    joined = bank.merge(fintech.drop(columns="customer_id"), on="key")
    train, test = train_test_split(joined, test_size=0.3, random_state=0, stratify=joined["default"])

    bank_only = _holdout_auc(train, test, list(BANK_FEATURES))
    both = _holdout_auc(train, test, [*BANK_FEATURES, *FINTECH_FEATURES])
    assert 0.65 <= bank_only <= 0.78
    assert 0.76 <= both <= 0.88
    assert both - bank_only >= 0.05


def test_truth_uses_both_sides_with_sensible_signs(pilot):
    coef = pilot.truth["coefficients"]
    risky = ("debt_to_income", "credit_utilisation", "num_delinquencies_2y", "late_bill_payments_12m",
             "lending_app_inquiries_30d", "spend_volatility")
    for term in risky:
        assert coef[term] > 0, term
    for term in ("log(annual_income)", "months_on_book", "account_age_months"):
        assert coef[term] < 0, term
    json.dumps(pilot.truth)  # written as truth.json, so it must serialise as is
    assert pilot.truth["seed"] == 0
    assert pilot.truth["parameters"]["customers"] == 20_000


def test_truth_reproduces_the_default_probabilities(pilot):
    """The published truth, applied to complete joined rows, is calibrated and sharp."""
    bank = pilot.bank.assign(key=normalise(pilot.bank["customer_id"]))
    fintech = pilot.fintechs[0].assign(key=normalise(pilot.fintechs[0]["customer_id"]))
    rows = bank.merge(fintech.drop(columns="customer_id"), on="key").dropna()
    eta = np.full(len(rows), pilot.truth["intercept"])
    for term, coef in pilot.truth["coefficients"].items():
        if term.startswith("log("):
            eta += coef * np.log(rows[term[4:-1]].to_numpy(dtype=float))
        elif "[" in term:
            column, level = term[:-1].split("[")
            eta += coef * (rows[column] == level).to_numpy()
        else:
            eta += coef * rows[term].to_numpy(dtype=float)
    probability = 1 / (1 + np.exp(-eta))
    assert probability.mean() == pytest.approx(rows["default"].mean(), abs=0.015)
    assert roc_auc_score(rows["default"], probability) >= 0.8


# ---------------------------------------------------------------------------- applicants


def test_applicants_are_new_people_without_labels(pilot):
    applicants = pilot.applicants
    assert len(applicants) == max(200, 20_000 // 10)
    assert "default" not in applicants.columns
    assert set(normalise(applicants["customer_id"])).isdisjoint(set(normalise(pilot.bank["customer_id"])))
    outcomes = pilot.applicant_outcomes
    assert list(outcomes["customer_id"]) == list(applicants["customer_id"])
    assert set(outcomes["default"].unique()) <= {0, 1}
    assert 0.03 <= outcomes["default"].mean() <= 0.2

    fintech_keys = set(normalise(pilot.fintechs[0]["customer_id"]))
    known = normalise(applicants["customer_id"]).isin(fintech_keys).mean()
    assert known == pytest.approx(0.7, abs=0.02)


def test_applicant_count_defaults_to_at_least_200_and_can_be_zero():
    assert len(generate_pilot(500, seed=0).applicants) == 200
    empty = generate_pilot(500, applicants=0, seed=0)
    assert empty.applicants.empty and list(empty.applicants.columns) == ["customer_id", *BANK_FEATURES]
    assert empty.applicant_outcomes.empty


# -------------------------------------------------------------------------------- writing


def test_write_pilot_round_trips_parquet_and_csv(tmp_path, pilot_k2):
    out = tmp_path / "pilot"
    paths = write_pilot(pilot_k2, out)
    expected = {
        "bank": ["bank"],
        "fintech": ["fintech_1", "fintech_2"],
        "applicants": ["applicants"],
        "applicant_outcomes": ["applicant_outcomes"],
    }
    for kind, stems in expected.items():
        names = sorted(f"{stem}.{fmt}" for stem in stems for fmt in ("parquet", "csv"))
        assert sorted(p.name for p in paths[kind]) == names
    assert paths["truth"] == [out / "truth.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for ps in paths.values() for p in ps)
    assert not [p for p in tmp_path.iterdir() if p != out]  # no staging directory left

    frames = {"bank": pilot_k2.bank, "fintech_1": pilot_k2.fintechs[0], "fintech_2": pilot_k2.fintechs[1],
              "applicants": pilot_k2.applicants, "applicant_outcomes": pilot_k2.applicant_outcomes}
    for stem, frame in frames.items():
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{stem}.parquet"), frame, check_dtype=False)
        pd.testing.assert_frame_equal(pd.read_csv(out / f"{stem}.csv"), frame, check_dtype=False)
    assert json.loads((out / "truth.json").read_text()) == pilot_k2.truth


def test_write_pilot_single_fintech_and_single_format(tmp_path):
    data = generate_pilot(300, seed=5)
    paths = write_pilot(data, tmp_path / "out", formats=["csv"])
    assert [p.name for p in paths["fintech"]] == ["fintech.csv"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "applicant_outcomes.csv", "applicants.csv", "bank.csv", "fintech.csv", "truth.json"
    ]


def test_write_pilot_leaves_nothing_behind_when_a_writer_fails(tmp_path, monkeypatch):
    data = generate_pilot(300, seed=5)

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    # Parquet files are written first, so the failure happens half-way through.
    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_pilot(data, tmp_path / "pilot")
    assert list(tmp_path.iterdir()) == []


def test_write_pilot_failure_while_moving_restores_previous_files(tmp_path, monkeypatch):
    out = tmp_path / "pilot"
    out.mkdir()
    (out / "bank.csv").write_text("old bank\n")
    (out / "notes.txt").write_text("mine\n")
    data = generate_pilot(300, seed=5)

    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError("device busy")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="device busy"):
        write_pilot(data, out, formats=["csv"])
    assert sorted(p.name for p in out.iterdir()) == ["bank.csv", "notes.txt"]
    assert (out / "bank.csv").read_text() == "old bank\n"
    assert [p for p in tmp_path.iterdir()] == [out]


def test_write_pilot_removes_directories_it_created_when_failing(tmp_path, monkeypatch):
    data = generate_pilot(300, seed=5)

    def over_quota(self, *args, **kwargs):
        raise OSError("quota exceeded")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", over_quota)
    with pytest.raises(OSError, match="quota exceeded"):
        write_pilot(data, tmp_path / "runs" / "2024" / "pilot")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("formats", [[], ["xlsx"], ["csv", "csv"]])
def test_write_pilot_rejects_bad_formats(tmp_path, formats):
    data = generate_pilot(300, seed=5)
    with pytest.raises(ConfigurationError, match=re.escape("The 'formats' parameter of write_pilot must be")):
        write_pilot(data, tmp_path / "x", formats=formats)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"customers": 99}, "'customers' parameter of generate_pilot must be an int in the range [100, inf). Got 99"),
        ({"customers": 1000.0}, "'customers' parameter of generate_pilot must be an int in the range [100, inf)."),
        ({"customers": True}, "'customers' parameter of generate_pilot must be an int in the range [100, inf)."),
        ({"overlap": 1.5}, "'overlap' parameter of generate_pilot must be a float in the range (0.0, 1.0]. Got 1.5"),
        ({"overlap": 0.0}, "'overlap' parameter of generate_pilot must be a float in the range (0.0, 1.0]. Got 0.0"),
        ({"overlap": float("nan")}, "'overlap' parameter of generate_pilot must be a float in the range (0.0, 1.0]."),
        ({"fintechs": 0}, "'fintechs' parameter of generate_pilot must be an int in the range [1, 7]. Got 0"),
        ({"fintechs": 8}, "'fintechs' parameter of generate_pilot must be an int in the range [1, 7]. Got 8"),
        ({"applicants": -1}, "'applicants' parameter of generate_pilot must be an int in the range [0, inf) or None."),
        ({"fintech_only_share": -0.1}, "'fintech_only_share' parameter of generate_pilot must be a float in the range"),
        ({"seed": -3}, "'seed' parameter of generate_pilot must be an int in the range [0, inf). Got -3"),
        ({"seed": "0"}, "'seed' parameter of generate_pilot must be an int in the range [0, inf). Got '0'"),
    ],
)
def test_bad_parameters_raise_configuration_error(kwargs, expected):
    params = {"customers": 200, **kwargs}
    with pytest.raises(ConfigurationError, match=rf"^The {re.escape(expected)}.* instead\.$"):
        generate_pilot(**params)


def test_numpy_integers_and_full_overlap_are_accepted():
    data = generate_pilot(np.int64(300), overlap=1, fintechs=np.int32(2), fintech_only_share=0, seed=np.uint8(1))
    bank_keys = set(normalise(data.bank["customer_id"]))
    for df in data.fintechs:
        assert set(normalise(df["customer_id"])) - bank_keys == set(normalise(data.applicants["customer_id"]))
