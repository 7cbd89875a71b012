"""The boosting loop: determinism, sampling, early stopping, the first-tree option, settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskfed.errors import ConfigurationError
from riskfed.learning.trees.boosting import BoostingParams, base_score, draw_tree_sample, fit_boosting, log_loss
from riskfed.learning.trees.estimator import GradientBoostedTrees
from riskfed.learning.trees.local import LocalHistogramProvider, LocalParty

SAMPLED = dict(n_estimators=10, max_depth=3, learning_rate=0.3, subsample=0.7, colsample_bytree=0.6, min_child_weight=0.5)


def fit(parties, **kw):
    return GradientBoostedTrees(**kw).fit(
        parties.train, parties.y, layouts=parties.layouts, eval_set=(parties.valid, parties.y_valid)
    )


def test_same_seed_same_model_other_seed_other_model(parties):
    a = fit(parties, **SAMPLED, random_state=5)
    b = fit(parties, **SAMPLED, random_state=5)
    c = fit(parties, **SAMPLED, random_state=6)
    assert a.model_.to_dict() == b.model_.to_dict()
    assert [p.handles.to_dict() for p in a.parties_] == [p.handles.to_dict() for p in b.parties_]
    assert a.model_.to_dict() != c.model_.to_dict()
    # A Generator passed in (as a session derives one from its secret) is used as is.
    d = fit(parties, **SAMPLED, random_state=np.random.default_rng(5))
    assert d.model_.to_dict() == a.model_.to_dict()


def test_without_subsampling_the_generator_is_not_used(parties):
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    fit(parties, n_estimators=3, random_state=rng)
    assert rng.bit_generator.state == state


def test_tree_sample_draws_rows_then_each_party_in_order(parties):
    params = BoostingParams(subsample=0.5, colsample_bytree=0.5)
    sample = draw_tree_sample(np.random.default_rng(3), 100, parties.layouts, params, tree=1)
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(100, size=50, replace=False))
    first = rng.choice(3, size=1, replace=False)
    second = rng.choice(2, size=1, replace=False)
    assert np.array_equal(sample.rows, rows)
    assert np.flatnonzero(sample.features[0]).tolist() == sorted(first.tolist())
    assert np.flatnonzero(sample.features[1]).tolist() == sorted(second.tolist())


def test_first_tree_uses_only_the_label_holders_characteristics(parties):
    plain = fit(parties, n_estimators=4, max_depth=3, learning_rate=0.3, random_state=0)
    assert 1 in plain.model_.trees[0].party  # the partner's characteristics win when allowed
    guarded = fit(parties, n_estimators=4, max_depth=3, learning_rate=0.3, random_state=0, first_tree_label_holder_only=True)
    first = guarded.model_.trees[0]
    assert set(first.party[first.left >= 0].tolist()) == {0}
    assert any(1 in t.party for t in guarded.model_.trees[1:])


def test_early_stopping_keeps_the_best_iteration(parties_factory):
    data = parties_factory(n=400, n_valid=400, seed=7)
    # A large learning rate overfits fast, so the validation loss turns up early.
    model = fit(data, n_estimators=60, max_depth=4, learning_rate=0.8, min_child_weight=0.0, early_stopping_rounds=5,
                random_state=0)
    best = model.best_iteration_
    grown = len(model.validation_loss_)
    assert grown < 60 and grown == best + 1 + 5
    assert model.n_estimators_ == best + 1 == len(model.model_.trees)
    assert model.validation_loss_[best] == min(model.validation_loss_)
    assert all(loss >= model.validation_loss_[best] for loss in model.validation_loss_[best + 1:])
    # The kept model is the one a run of best + 1 trees would give, handles included.
    short = fit(data, n_estimators=best + 1, max_depth=4, learning_rate=0.8, min_child_weight=0.0, random_state=0)
    assert short.model_.to_dict() == model.model_.to_dict()
    assert [p.handles.to_dict() for p in short.parties_] == [p.handles.to_dict() for p in model.parties_]
    assert np.isclose(log_loss(data.y_valid, model.decision_function(data.valid)), model.validation_loss_[best])


def test_scores_start_at_the_training_log_odds_and_the_loss_falls(parties):
    model = fit(parties, n_estimators=5, random_state=0)
    rate = parties.y.mean()
    assert model.model_.base_score == pytest.approx(math.log(rate / (1 - rate)))
    assert base_score(np.array([0, 0, 0, 1])) == pytest.approx(math.log(1 / 3))
    assert all(b < a for a, b in zip(model.train_loss_, model.train_loss_[1:]))


def test_importance_counts_every_split_and_sums_its_gain(parties):
    model = fit(parties, n_estimators=6, max_depth=3, learning_rate=0.3, random_state=0)
    imp = model.model_.importance
    n_splits = sum(int((t.left >= 0).sum()) for t in model.model_.trees)
    assert sum(int(c.sum()) for c in imp.splits) == n_splits
    gain = sum(float(t.gain[t.left >= 0].sum()) for t in model.model_.trees)
    assert sum(float(g.sum()) for g in imp.gain) == pytest.approx(gain)
    assert model.feature_importances_.shape == (5,) and model.feature_importances_.sum() == pytest.approx(1.0)
    for p, party in enumerate(model.parties_):
        counts = np.bincount(party.handles.feature, minlength=party.layout.n_features)
        assert np.array_equal(counts, imp.splits[p])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_depth", 0, r"The 'max_depth' parameter of GradientBoostedTrees must be an int in the range \[1, 16\]. Got 0 instead."),
        ("n_estimators", 2.5, r"'n_estimators' parameter .* an int in the range \[1, inf\). Got 2.5"),
        ("learning_rate", 0.0, r"'learning_rate' parameter .* a float in the range \(0.0, 1.0\]. Got 0.0"),
        ("subsample", 1.5, r"'subsample' .* Got 1.5 instead"),
        ("colsample_bytree", float("nan"), r"'colsample_bytree' .* Got nan instead"),
        ("reg_lambda", -1, r"'reg_lambda' .* \[0.0, inf\)"),
        ("early_stopping_rounds", 0, r"'early_stopping_rounds' .* None or an int"),
        ("first_tree_label_holder_only", "yes", r"must be a bool. Got 'yes'"),
        ("max_depth", True, r"'max_depth' .* Got True instead"),
    ],
)
def test_bad_settings_read_like_scikit_learn(parties, name, value, message):
    with pytest.raises(ConfigurationError, match=message):
        GradientBoostedTrees(**{name: value}).fit(parties.train, parties.y, layouts=parties.layouts)


def test_settings_are_checked_in_the_cores_name_too(parties):
    with pytest.raises(ConfigurationError, match="parameter of BoostingParams must be"):
        BoostingParams(gamma=-1.0)
    local = [LocalParty(lay, tr) for lay, tr in zip(parties.layouts, parties.train)]
    with pytest.raises(ConfigurationError, match="early_stopping_rounds needs a validation set"):
        fit_boosting(BoostingParams(early_stopping_rounds=3), parties.layouts, parties.y,
                     LocalHistogramProvider(local), local, np.random.default_rng(0))
    with pytest.raises(ConfigurationError, match="'random_state' parameter"):
        GradientBoostedTrees(random_state="seed").fit(parties.train, parties.y, layouts=parties.layouts)
