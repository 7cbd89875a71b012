"""Federated training equals its plaintext twin, is deterministic, and lands near sklearn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from riskfed.alignment.normalize import IdNormalization
from riskfed.data.synthetic import generate_pilot
from riskfed.learning.linear.reference import fit_reference
from riskfed.session.progress import Cancelled, ProgressEvent


def assert_matches_reference(model, rebuild, *, atol=1e-12):
    inputs = rebuild(model)
    ref = fit_reference(
        inputs["bank_X_q"],
        inputs["partner_X_q"],
        inputs["y"],
        inputs["train_rows"],
        inputs["hyper"],
        seed=model.roles_["bank"].session_seed,  # the session's (secret) seed material
    )
    np.testing.assert_allclose(model.coef_["bank"], ref["bank"][:-1], rtol=0, atol=atol)
    np.testing.assert_allclose(model.intercept_, ref["bank"][-1], rtol=0, atol=atol)
    for name in inputs["partner_X_q"]:
        np.testing.assert_allclose(model.coef_[name], ref[name], rtol=0, atol=atol)
    # The same stopping decisions, from the same per-epoch model changes.
    assert model.n_iter_ == len(ref["history"])
    np.testing.assert_allclose(
        [h["relative_change"] for h in model.history_], [h["relative_change"] for h in ref["history"]], rtol=1e-12
    )
    return ref


def _fit(make_estimator, pilot, **params):
    return make_estimator(**params).fit(
        pilot.bank, list(pilot.fintechs), id_column=pilot.id_column, label_column=pilot.label_column
    )


def test_shared_federation_matches_plaintext_reference_bit_for_bit(fitted_federation, rebuild):
    ref = assert_matches_reference(fitted_federation, rebuild, atol=0.0)
    assert np.array_equal(fitted_federation.coef_["bank"], ref["bank"][:-1])
    # Several batches per epoch, so the optimizer path is really exercised.
    assert len(fitted_federation.outcome_.train_rows) > 2 * fitted_federation.batch_size
    assert all(np.any(w != 0) for w in fitted_federation.coef_.values())


def test_a_fresh_secret_session_matches_its_plaintext_twin(make_estimator, small_pilot, rebuild):
    model = _fit(make_estimator, small_pilot, random_state=None, max_epochs=2)
    assert model.roles_["bank"].session_seed.bit_length() > 200  # drawn, not fixed
    assert_matches_reference(model, rebuild, atol=0.0)


@pytest.mark.parametrize("expansion", ["bank-linear", "zero"])
def test_other_expansions_match_plaintext_reference(make_estimator, small_pilot, rebuild, expansion):
    model = _fit(make_estimator, small_pilot, expansion=expansion, max_epochs=2)
    assert model.outcome_.hyperparameters["expansion"] == expansion
    assert_matches_reference(model, rebuild)


def test_two_fintechs_match_plaintext_reference(make_estimator, rebuild):
    pilot = generate_pilot(1200, fintechs=2, seed=4)
    model = _fit(make_estimator, pilot, max_epochs=2)
    assert set(model.coef_) == {"bank", "fintech_1", "fintech_2"}
    assert_matches_reference(model, rebuild)


def test_result_does_not_depend_on_n_jobs(fitted_federation, make_estimator, small_pilot):
    parallel = _fit(make_estimator, small_pilot, n_jobs=2)
    for party, w in fitted_federation.coef_.items():
        assert np.array_equal(parallel.coef_[party], w), party
    assert parallel.intercept_ == fitted_federation.intercept_
    assert np.array_equal(parallel.outcome_.holdout_scores, fitted_federation.outcome_.holdout_scores)


def test_same_seed_same_model_other_seed_other_split(fitted_federation, make_estimator, small_pilot):
    again = _fit(make_estimator, small_pilot)
    # Fresh Paillier keys, randomness and masks, yet the same model.
    assert again.outcome_.key_fingerprint != fitted_federation.outcome_.key_fingerprint
    for party, w in fitted_federation.coef_.items():
        assert np.array_equal(again.coef_[party], w), party
    assert again.intercept_ == fitted_federation.intercept_
    assert np.array_equal(again.outcome_.train_rows, fitted_federation.outcome_.train_rows)
    assert [(h["relative_change"], h["loss"]) for h in again.history_] == [
        (h["relative_change"], h["loss"]) for h in fitted_federation.history_
    ]
    other = _fit(make_estimator, small_pilot, random_state=12, max_epochs=1)
    held = lambda m: set(m.outcome_.aligned.bank_rows[m.outcome_.holdout_rows].tolist())  # noqa: E731
    assert held(other) != held(fitted_federation)


def _joined_design(model, pilot):
    """The joined (centralised) table of the shared customers, in aligned order."""
    norm = IdNormalization()
    bank = pilot.bank.copy()
    bank["_key"] = norm.apply(bank[pilot.id_column].to_numpy(dtype=object), party="bank", column="id")
    fin = pilot.fintechs[0].copy()
    fin["_key"] = norm.apply(fin[pilot.id_column].to_numpy(dtype=object), party="fintech_1", column="id")
    aligned_bank = bank.iloc[model.outcome_.aligned.bank_rows]
    joined = aligned_bank.merge(fin.drop(columns=[pilot.id_column]), on="_key", how="left", validate="1:1")
    assert len(joined) == model.outcome_.aligned.size
    y = joined[pilot.label_column].to_numpy()
    X = joined.drop(columns=[pilot.id_column, pilot.label_column, "_key"])
    X = pd.get_dummies(X, columns=["home_ownership", "region"], dummy_na=True, dtype=float)
    X = X.fillna(X.iloc[model.outcome_.train_rows].median())
    X = (X - X.iloc[model.outcome_.train_rows].mean()) / X.iloc[model.outcome_.train_rows].std().replace(0, 1)
    return X.to_numpy(dtype=float), y


def test_auc_lands_close_to_sklearn_on_joined_data(fitted_federation, small_pilot):
    X, y = _joined_design(fitted_federation, small_pilot)
    train, hold = fitted_federation.outcome_.train_rows, fitted_federation.outcome_.holdout_rows
    # The holdout labels the federation reports are the joined data's labels, row for row.
    assert np.array_equal(fitted_federation.outcome_.holdout_labels, y[hold])
    sk = LogisticRegression(max_iter=2000).fit(X[train], y[train])
    sk_auc = roc_auc_score(y[hold], sk.predict_proba(X[hold])[:, 1])
    fed_auc = roc_auc_score(y[hold], fitted_federation.outcome_.holdout_scores)
    assert fed_auc > 0.75
    assert abs(fed_auc - sk_auc) < 0.015, (fed_auc, sk_auc)
    # The two models also agree row by row (log-odds), not just in rank statistics.
    p = fitted_federation.outcome_.holdout_scores
    corr = np.corrcoef(np.log(p / (1 - p)), sk.decision_function(X[hold]))[0, 1]
    assert corr > 0.8


def test_progress_events_and_cancel(make_estimator, small_pilot):
    events: list[ProgressEvent] = []
    model = make_estimator(max_epochs=1)
    model.fit(
        small_pilot.bank,
        list(small_pilot.fintechs),
        id_column="customer_id",
        label_column="default",
        progress=events.append,
    )
    phases = [e.phase for e in events]
    assert phases[0] == "alignment" and phases[-1] == "evaluation"
    training = [e for e in events if e.phase == "training"]
    assert training and training[-1].done == training[-1].total
    assert all(e.done <= e.total for e in events)

    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(Cancelled, match="Training was cancelled; nothing was saved"):
        make_estimator().fit(
            small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default", cancel=cancel
        )
    fresh = make_estimator()
    assert not hasattr(fresh, "model_")


def test_ecdh_alignment_trains_the_same_model_as_keyed_hash(fitted_federation, make_estimator, small_pilot):
    ecdh = _fit(make_estimator, small_pilot, psi="ecdh")
    assert ecdh.outcome_.aligned.method == "ecdh"
    assert np.array_equal(ecdh.outcome_.aligned.bank_rows, fitted_federation.outcome_.aligned.bank_rows)
    assert np.array_equal(ecdh.fintech_aligned_rows_["fintech_1"], fitted_federation.fintech_aligned_rows_["fintech_1"])
    for party, w in fitted_federation.coef_.items():
        assert np.array_equal(ecdh.coef_[party], w), party
