"""Split handles, routing by owner, and a model split across parties equal to the pooled one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from riskfed.errors import DataValidationError, ProtocolError
from riskfed.learning.trees.estimator import GradientBoostedTrees
from riskfed.learning.trees.layout import BinLayout
from riskfed.learning.trees.model import BoostedModel, party_part, read_party_part
from riskfed.learning.trees.trees import HandleTable, leaf_indices

PARAMS = dict(n_estimators=8, max_depth=3, learning_rate=0.3, min_child_weight=0.5, random_state=0)


def test_handles_decide_by_threshold_and_route_missing_by_default():
    layout = BinLayout((5, 4), (2, 3), party="fintech")  # missing in the middle / last
    table = HandleTable()
    assert table.add(0, 3, True) == 0
    assert table.add(1, 0, False) == 1
    codes = np.array([[0, 0], [1, 1], [2, 3], [3, 2], [4, 3]], dtype=np.int32)
    decided = table.decide(codes, layout)
    # Handle 0: code ≤ 3 left, code 2 is missing → default left.
    assert decided[:, 0].tolist() == [True, True, True, True, False]
    # Handle 1: code ≤ 0 left, code 3 is missing → default right.
    assert decided[:, 1].tolist() == [True, False, False, False, False]
    assert table.decide(codes, layout, [1]).tolist() == decided[:, [1]].tolist()
    with pytest.raises(ProtocolError, match="never issued"):
        table.decide(codes, layout, [2])


def pooled_layout(layouts) -> BinLayout:
    return BinLayout(sum((lay.n_bins for lay in layouts), ()), sum((lay.missing for lay in layouts), ()))


def test_model_split_across_two_parties_equals_the_pooled_model(parties):
    split = GradientBoostedTrees(**PARAMS).fit(parties.train, parties.y, layouts=parties.layouts)
    pooled = GradientBoostedTrees(**PARAMS).fit(
        np.hstack(parties.train), parties.y, layouts=pooled_layout(parties.layouts)
    )
    m0 = parties.layouts[0].n_features
    # Same splits: the pooled characteristic index is the party's index shifted by m0.
    for ts, tp in zip(split.model_.trees, pooled.model_.trees):
        assert np.array_equal(ts.left, tp.left) and np.array_equal(ts.value, tp.value)
        internal = ts.left >= 0
        for node in np.flatnonzero(internal):
            owner = split.parties_[ts.party[node]].handles
            feature = owner.feature[ts.handle[node]] + (m0 if ts.party[node] == 1 else 0)
            assert feature == pooled.parties_[0].handles.feature[tp.handle[node]]
    assert {int(p) for t in split.model_.trees for p in t.party[t.left >= 0]} == {0, 1}
    probs = split.predict_proba(parties.valid)
    assert np.array_equal(probs, pooled.predict_proba(np.hstack(parties.valid)))
    # Routing by asking each party for its own decisions gives the same scores.
    decisions = [p.handles.decide(c, p.layout) for p, c in zip(split.parties_, parties.valid)]
    raw, defaulted = split.model_.decision_function(decisions)
    assert np.array_equal(raw, pooled.decision_function(np.hstack(parties.valid)))
    assert not defaulted.any()


def test_rows_a_party_does_not_know_follow_the_default_direction_and_are_flagged(parties):
    model = GradientBoostedTrees(**PARAMS).fit(parties.train, parties.y, layouts=parties.layouts)
    decisions = [p.handles.decide(c, p.layout) for p, c in zip(model.parties_, parties.valid)]
    known = np.ones(len(parties.y_valid), bool)
    known[:40] = False
    raw, defaulted = model.model_.decision_function(decisions, [None, known])
    full, _ = model.model_.decision_function(decisions)
    # Expected: the fintech's answers for the unknown rows replaced by each node's default.
    forced = [decisions[0], decisions[1].copy()]
    for tree in model.model_.trees:
        for node in np.flatnonzero((tree.left >= 0) & (tree.party == 1)):
            forced[1][:40, tree.handle[node]] = tree.default_left[node]
    expected, _ = model.model_.decision_function(forced)
    assert np.array_equal(raw, expected)
    assert np.array_equal(raw[40:], full[40:])
    # Flagged: exactly the unknown rows whose path meets a fintech node (the root of a
    # tree split by the fintech is met by every row).
    meets = np.zeros(len(known), bool)
    for tree in model.model_.trees:
        _, flagged = leaf_indices(tree, decisions, [None, known])
        meets |= flagged
        if tree.party[0] == 1:
            assert flagged[:40].all()
    assert np.array_equal(defaulted, meets)
    assert defaulted[:40].any() and not defaulted[40:].any()


def test_json_parts_round_trip_to_identical_predictions(parties):
    model = GradientBoostedTrees(**PARAMS, subsample=0.8, colsample_bytree=0.5).fit(
        parties.train, parties.y, layouts=parties.layouts
    )
    parts = json.loads(json.dumps(model.to_parts()))
    restored = GradientBoostedTrees.from_parts(parts)
    assert np.array_equal(restored.decision_function(parties.valid), model.decision_function(parties.valid))
    # Scoring as deployed: each party reads only its own part and answers its decisions.
    bank = BoostedModel.from_dict({k: v for k, v in parts[0].items() if k != "own"})
    owners = [read_party_part(parts[0]["own"], party="bank"), read_party_part(parts[1], party="fintech")]
    decisions = [handles.decide(codes, layout) for (layout, handles), codes in zip(owners, parties.valid)]
    raw, _ = bank.decision_function(decisions)
    assert np.array_equal(raw, model.decision_function(parties.valid))
    assert bank.to_dict() == model.model_.to_dict()


def test_each_part_holds_only_its_owners_thresholds(parties):
    model = GradientBoostedTrees(**PARAMS).fit(parties.train, parties.y, layouts=parties.layouts)
    bank_part, fintech_part = model.to_parts()
    trees = bank_part["trees"]
    bank_nodes = sum(1 for t in trees for p in t["party"] if p == 0)
    fintech_nodes = sum(1 for t in trees for p in t["party"] if p == 1)
    assert len(bank_part["own"]["handles"]["threshold"]) == bank_nodes
    assert len(fintech_part["handles"]["threshold"]) == fintech_nodes > 0
    # Outside "own", the label holder's part names partners' nodes by (party, handle) only.
    shared = json.dumps({k: v for k, v in bank_part.items() if k != "own"})
    assert "threshold" not in shared and "\"feature\"" not in shared
    assert set(trees[0]) == {"left", "right", "party", "handle", "default_left", "value", "gain", "cover"}
    assert set(fintech_part) == {"kind", "format", "layout", "handles"}


def test_damaged_parts_are_refused(parties):
    model = GradientBoostedTrees(**PARAMS).fit(parties.train, parties.y, layouts=parties.layouts)
    bank_part = model.model_.to_dict()
    with pytest.raises(DataValidationError, match="expected a 'riskfed-boosted-trees' model part"):
        BoostedModel.from_dict({**bank_part, "kind": "something"})
    with pytest.raises(DataValidationError, match="format 2 is not the supported 1"):
        BoostedModel.from_dict({**bank_part, "format": 2})
    broken = json.loads(json.dumps(bank_part))
    del broken["trees"][0]["value"]
    with pytest.raises(DataValidationError, match="damaged"):
        BoostedModel.from_dict(broken)
    broken = json.loads(json.dumps(bank_part))
    broken["trees"][0]["party"][0] = 7
    with pytest.raises(DataValidationError, match="tree 0 of the model part is malformed"):
        BoostedModel.from_dict(broken)
    cyclic = json.loads(json.dumps(bank_part))
    cyclic["trees"][1]["left"][1] = 0  # a child pointing back at the root would never end a walk
    with pytest.raises(DataValidationError, match="tree 1 of the model part is malformed"):
        BoostedModel.from_dict(cyclic)
    part = party_part(model.parties_[1].layout, model.parties_[1].handles)
    part["handles"]["threshold"][0] = 99
    with pytest.raises(DataValidationError, match="outside its layout"):
        read_party_part(part, party="fintech")
    parts = model.to_parts()
    parts[1]["handles"] = {"feature": [], "threshold": [], "default_left": []}
    with pytest.raises(DataValidationError, match=r"party_1: its part does not match the model \(0 handles"):
        GradientBoostedTrees.from_parts(parts)
    with pytest.raises(DataValidationError, match="got 1 parts"):
        GradientBoostedTrees.from_parts(model.to_parts()[:1])
