"""Batch scoring: federated where every fintech knows the applicant, bank-only fallback
otherwise; same answer in one chunk or many, CSV or Parquet, keyed-hash or ECDH."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskfed.alignment.normalize import IdNormalization
from riskfed.data.preprocess import Preprocessor
from riskfed.errors import ConfigurationError, MissingColumnError, SchemaError
from riskfed.models.artifact import FederatedModel
from riskfed.scoring.score import FALLBACK, FEDERATED, score_applicants, score_file
from riskfed.scoring.scorecard import Scorecard


@pytest.fixture(scope="module")
def scored(fitted_federation, small_pilot):
    return score_applicants(fitted_federation.model_, small_pilot.applicants, list(small_pilot.fintechs))


def _expected(model: FederatedModel, applicants: pd.DataFrame, fintech: pd.DataFrame):
    """Log-odds computed by hand from each party's saved part."""
    bank = model.bank
    pre_b = Preprocessor.from_dict(bank["preprocessing"])
    z_bank = pre_b.transform(applicants) @ np.asarray(bank["weights"]) + bank["intercept"]
    part = model.fintechs["fintech_1"]
    pre_f = Preprocessor.from_dict(part["preprocessing"])
    norm = IdNormalization()
    f_keys = norm.apply(fintech["customer_id"].to_numpy(dtype=object), party="f", column="id")
    u = dict(zip(f_keys.tolist(), pre_f.transform(fintech) @ np.asarray(part["weights"])))
    a_keys = norm.apply(applicants["customer_id"].to_numpy(dtype=object), party="b", column="id").tolist()
    known = np.array([k in u for k in a_keys])
    z_fed = z_bank + np.array([u.get(k, 0.0) for k in a_keys])
    z_fb = model.fallback.log_odds(applicants)[0]
    return known, np.where(known, z_fed, z_fb)


def test_one_row_per_applicant_in_input_order(scored, small_pilot):
    applicants = small_pilot.applicants
    assert len(scored) == len(applicants)
    assert scored["customer_id"].tolist() == applicants["customer_id"].tolist()
    assert {"probability_of_default", "score_points", "model", "reason_1", "points_1"} <= set(scored.columns)
    assert set(scored["model"]) == {FEDERATED, FALLBACK}
    p = scored["probability_of_default"]
    assert ((p > 0) & (p < 1)).all()


def test_probabilities_follow_the_saved_parts(scored, fitted_federation, small_pilot):
    known, z = _expected(fitted_federation.model_, small_pilot.applicants, small_pilot.fintechs[0])
    assert np.array_equal(scored["model"].to_numpy() == FEDERATED, known)
    assert 0.5 < known.mean() < 0.9  # the pilot's overlap (0.7) of applicants
    np.testing.assert_allclose(scored["probability_of_default"], 1 / (1 + np.exp(-z)), rtol=1e-9, atol=1e-12)


def test_points_follow_the_explicit_scorecard(scored, fitted_federation):
    card = fitted_federation.model_.scorecard
    assert (card.base_points, card.base_odds, card.pdo) == (600.0, 50.0, 20.0)
    p = scored["probability_of_default"].to_numpy()
    expected = card.offset + card.factor * np.log((1 - p) / p)
    np.testing.assert_allclose(scored["score_points"], np.round(expected, 1), atol=0.051)
    order = np.argsort(p)
    assert np.all(np.diff(scored["score_points"].to_numpy()[order]) <= 0.1)  # riskier → fewer points


def test_custom_scorecard(fitted_federation, small_pilot, scored):
    card = Scorecard(base_points=500, base_odds=20, pdo=40)
    out = score_applicants(fitted_federation.model_, small_pilot.applicants.head(20), list(small_pilot.fintechs), scorecard=card)
    p = out["probability_of_default"].to_numpy()
    np.testing.assert_allclose(out["score_points"], np.round(card.points(p), 1))
    np.testing.assert_allclose(p, scored["probability_of_default"].head(20))


def test_ecdh_matching_gives_the_same_scores(fitted_federation, small_pilot, scored):
    out = score_applicants(fitted_federation.model_, small_pilot.applicants, list(small_pilot.fintechs), psi="ecdh")
    assert out["model"].tolist() == scored["model"].tolist()
    np.testing.assert_allclose(out["probability_of_default"], scored["probability_of_default"], rtol=1e-12)


def test_estimator_predict_proba(fitted_federation, small_pilot, scored):
    proba = fitted_federation.predict_proba(small_pilot.applicants, list(small_pilot.fintechs))
    assert proba.shape == (len(small_pilot.applicants), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], scored["probability_of_default"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunked_file_scoring_equals_one_chunk(tmp_path, saved_model_dir, small_pilot, scored, suffix):
    model = FederatedModel.load(saved_model_dir)
    src = tmp_path / f"applicants{suffix}"
    if suffix == ".csv":
        small_pilot.applicants.to_csv(src, index=False)
    else:
        small_pilot.applicants.to_parquet(src, index=False)
    out_small = tmp_path / f"small{suffix}"
    out_one = tmp_path / f"one{suffix}"
    seen = []
    summary = score_file(
        model, src, list(small_pilot.fintechs), out_small, chunk_rows=37, progress=lambda rows, total: seen.append(rows)
    )
    score_file(model, src, list(small_pilot.fintechs), out_one, chunk_rows=10_000)
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    a, b = read(out_small), read(out_one)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(small_pilot.applicants)
    np.testing.assert_allclose(a["probability_of_default"], scored["probability_of_default"], rtol=1e-12)
    assert a["model"].tolist() == scored["model"].tolist()
    assert seen == list(range(37, len(a), 37)) + [len(a)]
    assert summary.rows == len(a) and summary.federated + summary.fallback == len(a)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, out_small.name, out_one.name])


def test_missing_model_feature_at_scoring_time(tmp_path, saved_model_dir, small_pilot):
    model = FederatedModel.load(saved_model_dir)
    applicants = small_pilot.applicants.drop(columns="annual_income")
    with pytest.raises(MissingColumnError, match="bank: the feature column 'annual_income' is not in the table") as info:
        score_applicants(model, applicants, list(small_pilot.fintechs))
    assert (info.value.party, info.value.column) == ("bank", "annual_income")
    src = tmp_path / "a.csv"
    applicants.to_csv(src, index=False)
    out = tmp_path / "scores.csv"
    with pytest.raises(MissingColumnError, match="annual_income"):
        score_file(model, src, list(small_pilot.fintechs), out, chunk_rows=50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]  # nothing half-written


def test_duplicate_applicants_across_chunks(tmp_path, saved_model_dir, small_pilot):
    model = FederatedModel.load(saved_model_dir)
    applicants = pd.concat([small_pilot.applicants.head(30), small_pilot.applicants.head(1)], ignore_index=True)
    first = applicants["customer_id"].iloc[0]
    src = tmp_path / "a.csv"
    applicants.to_csv(src, index=False)
    with pytest.raises(SchemaError, match=rf"bank: applicant id\(s\) '{first.lower()}' appear more than once"):
        score_file(model, src, list(small_pilot.fintechs), tmp_path / "s.csv", chunk_rows=10)
    assert not (tmp_path / "s.csv").exists()
    # Within a chunk, normalisation catches them with a row-level message.
    with pytest.raises(SchemaError, match="occur more than once after normalisation"):
        score_applicants(model, applicants, list(small_pilot.fintechs))


def test_wrong_number_of_fintech_tables(fitted_federation, small_pilot):
    with pytest.raises(ConfigurationError, match=r"The model has 1 fintech\(s\) \(fintech_1\); got 2 table\(s\)"):
        score_applicants(fitted_federation.model_, small_pilot.applicants, [small_pilot.fintechs[0]] * 2)


def test_model_parts_are_separate_and_loadable(saved_model_dir, fitted_federation):
    import json

    bank = json.loads((saved_model_dir / "bank" / "model.json").read_text())
    fin = json.loads((saved_model_dir / "fintech_1" / "model.json").read_text())
    assert bank["kind"] == "riskfed-bank-model" and fin["kind"] == "riskfed-fintech-model"
    fin_names = fitted_federation.feature_names_["fintech_1"]
    bank_names = fitted_federation.feature_names_["bank"]
    bank_text = json.dumps(bank)
    fin_text = json.dumps(fin)
    assert not any(f'"{n}"' in bank_text for n in fin_names)
    assert not any(f'"{n}"' in fin_text for n in bank_names)
    assert "intercept" not in fin and len(fin["weights"]) == len(fin_names)
    assert len(bank["weights"]) == len(bank_names)
    loaded = FederatedModel.load(saved_model_dir)
    assert loaded.fintech_names == ["fintech_1"]
    assert loaded.fintechs["fintech_1"]["weights"] == fin["weights"]


@pytest.mark.parametrize(
    "content,match",
    [
        ("not json", r"bank: .*model\.json' is not valid JSON"),
        ('{"kind": "something else"}', r"is not a riskfed bank model part"),
        ('{"kind": "riskfed-bank-model", "weights": []}', r"lacks id_normalization, preprocessing, intercept"),
    ],
)
def test_a_damaged_model_part_is_a_clear_error(tmp_path, content, match):
    from riskfed.errors import DataValidationError

    (tmp_path / "bank").mkdir()
    (tmp_path / "bank" / "model.json").write_text(content)
    with pytest.raises(DataValidationError, match=match):
        FederatedModel.load(tmp_path)
