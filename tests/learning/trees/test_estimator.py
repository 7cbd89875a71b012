"""The plaintext estimator on real data and on bad input, and the local pre-binner."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from riskfed.errors import ConfigurationError, NotFittedError, SchemaError
from riskfed.learning.trees.estimator import GradientBoostedTrees
from riskfed.learning.trees.layout import BinLayout
from riskfed.learning.trees.prebin import QuantilePrebinner


def test_default_credit_holdout_auc(default_credit_codes):
    data = default_credit_codes
    model = GradientBoostedTrees(50, 4, 0.1, random_state=0).fit(data.train, data.y, layouts=data.layouts)
    auc = roc_auc_score(data.y_test, model.predict_proba(data.test)[:, 1])
    assert auc >= 0.775  # the target; scikit-learn's gradient boosting reaches 0.781
    bank = GradientBoostedTrees(50, 4, 0.1, random_state=0).fit(data.train[0], data.y, layouts=data.layouts[0])
    bank_auc = roc_auc_score(data.y_test, bank.predict_proba(data.test[0])[:, 1])
    assert bank_auc < auc - 0.01  # the fintech's characteristics carry signal the bank lacks
    proba = model.predict_proba(data.test)
    assert proba.shape == (len(data.y_test), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(data.test).tolist()) <= {0, 1}


def test_layouts_can_be_inferred_from_the_codes(parties):
    codes = np.hstack(parties.train)
    model = GradientBoostedTrees(5, random_state=0).fit(codes, parties.y)
    layout = model.parties_[0].layout
    assert layout.n_bins == tuple(int(v) + 1 for v in codes.max(axis=0)) and set(layout.missing) == {-1}


def test_bad_codes_name_the_party_the_characteristic_and_the_rows(parties):
    model = GradientBoostedTrees(3, random_state=0)
    bad = [parties.train[0], parties.train[1].copy()]
    bad[1][[4, 9], 1] = 7
    with pytest.raises(SchemaError, match=r"party_1: bin codes of characteristic 1 must lie in \[0, 7\); row position\(s\) 4, 9"):
        model.fit(bad, parties.y, layouts=parties.layouts)
    with pytest.raises(SchemaError, match="bin codes must be integers"):
        model.fit([parties.train[0].astype(float), parties.train[1]], parties.y, layouts=parties.layouts)
    with pytest.raises(SchemaError, match="with 2 columns; got shape"):
        model.fit([parties.train[0], parties.train[0]], parties.y, layouts=parties.layouts)
    with pytest.raises(SchemaError, match="party 1 has shape .* expected 600 rows"):
        model.fit([parties.train[0], parties.train[1][:-1]], parties.y, layouts=parties.layouts)
    with pytest.raises(SchemaError, match="Got 1 layouts for 2 code matrices"):
        model.fit(parties.train, parties.y, layouts=parties.layouts[:1])
    with pytest.raises(SchemaError, match="eval_set has 1 parties; codes have 2"):
        model.fit(parties.train, parties.y, layouts=parties.layouts, eval_set=(parties.valid[:1], parties.y_valid))
    with pytest.raises(SchemaError, match="label 'y' must be 0 or 1"):
        model.fit(parties.train, parties.y * 2, layouts=parties.layouts)


def test_scoring_before_fit_or_with_the_wrong_parties_is_refused(parties):
    model = GradientBoostedTrees(3, random_state=0)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.predict_proba(parties.valid)
    model.fit(parties.train, parties.y, layouts=parties.layouts)
    with pytest.raises(SchemaError, match="fitted on 2 parties; got codes of 1"):
        model.predict_proba(parties.valid[0])


def test_layout_is_validated():
    with pytest.raises(ConfigurationError, match="missing code of characteristic 0 must be -1 or in"):
        BinLayout((3,), (3,))
    with pytest.raises(ConfigurationError, match="between 1 and 4096 bins"):
        BinLayout((0,), (-1,))
    with pytest.raises(ConfigurationError, match="one missing code per characteristic"):
        BinLayout((3, 3), (-1,))


def test_prebinner_cuts_at_quantiles_and_codes_missing_last():
    X = np.array([[1.0, 5.0], [2.0, np.nan], [3.0, 5.0], [4.0, 6.0], [np.nan, 7.0]])
    binner = QuantilePrebinner(max_bins=4, party="bank").fit(X)
    codes = binner.transform(X)
    layout = binner.layout_
    assert layout.missing == (layout.n_bins[0] - 1, layout.n_bins[1] - 1)
    assert codes[4, 0] == layout.missing[0] and codes[1, 1] == layout.missing[1]
    present = codes[:4, 0]
    assert np.all(np.diff(present) >= 0) and present[0] == 0  # ordered, first interval used
    assert codes[0, 1] == codes[2, 1] == 0  # ties share a bin
    layout.check_codes(codes)
    with pytest.raises(ConfigurationError, match=r"'max_bins' parameter of QuantilePrebinner .* Got 1 instead"):
        QuantilePrebinner(max_bins=1).fit(X)
    with pytest.raises(NotFittedError, match="not fitted"):
        QuantilePrebinner().transform(X)
    with pytest.raises(SchemaError, match="infinite values"):
        binner.transform(np.array([[np.inf, 1.0]]))
