"""Split finding against a brute-force reference, missing directions and tie-breaking."""

from __future__ import annotations

import numpy as np
import pytest

from riskfed.learning.trees.gradients import GRADIENT_SCALE, Gradients, quantise_gradients
from riskfed.learning.trees.histograms import NodeHistograms, bin_sums, flatten_codes
from riskfed.learning.trees.layout import NO_MISSING, BinLayout
from riskfed.learning.trees.splits import GAIN_EPSILON, SplitParams, find_best_split


def histograms(layouts, codes, grads: Gradients, rows) -> NodeHistograms:
    g, h = grads.g.astype(float), grads.h.astype(float)
    return NodeHistograms(
        tuple(bin_sums(flatten_codes(c, lay), rows, g, h, lay.total_bins) for lay, c in zip(layouts, codes))
    )


def _score(big_g: int, big_h: int, lam: float) -> float:
    g = big_g * (1.0 / GRADIENT_SCALE)
    den = big_h * (1.0 / GRADIENT_SCALE) + lam
    return g * g / den if den > 0 else 0.0


def brute_force(layouts, codes, grads: Gradients, rows, params: SplitParams, allowed):
    """Every (party, characteristic, threshold, direction) from the rows themselves."""
    g, h = grads.g[rows].tolist(), grads.h[rows].tolist()
    big_g, big_h = sum(g), sum(h)
    best, best_gain = None, -np.inf
    for p, (lay, part) in enumerate(zip(layouts, codes)):
        for j in range(lay.n_features):
            if not allowed[p][j]:
                continue
            col = part[rows, j].tolist()
            miss = lay.missing[j]
            for t in (c for c in range(lay.n_bins[j]) if c != miss):
                for default_left in (True, False):
                    left = [(c == miss and default_left) or (c != miss and c <= t) for c in col]
                    lg = sum(x for x, go in zip(g, left) if go)
                    lh = sum(x for x, go in zip(h, left) if go)
                    rg, rh = big_g - lg, big_h - lh
                    w = params.min_child_weight
                    if lh <= 0 or rh <= 0 or lh / GRADIENT_SCALE < w or rh / GRADIENT_SCALE < w:
                        continue
                    lam = params.reg_lambda
                    gain = 0.5 * (_score(lg, lh, lam) + _score(rg, rh, lam) - _score(big_g, big_h, lam))
                    if gain > best_gain:
                        no_missing = miss == NO_MISSING or not any(c == miss for c in col)
                        direction = lh >= rh if no_missing else default_left
                        best, best_gain = (p, j, t, direction, lg, lh), gain
    if best is None or not (best_gain > params.gamma and best_gain > GAIN_EPSILON):
        return None
    return best, best_gain


@pytest.mark.parametrize("seed", range(12))
def test_best_split_equals_brute_force(parties_factory, seed):
    data = parties_factory(n=160, n_valid=0, seed=seed, missing_rate=0.15 if seed % 3 else 0.0)
    rng = np.random.default_rng(100 + seed)
    raw = rng.normal(scale=0.8, size=len(data.y))
    grads = quantise_gradients(raw, data.y)
    rows = np.sort(rng.choice(len(data.y), size=90 + seed * 5, replace=False))
    params = SplitParams(reg_lambda=[0.0, 1.0, 5.0][seed % 3], min_child_weight=[0.0, 0.5, 2.0][seed % 3],
                         gamma=[0.0, 0.01][seed % 2])
    allowed = [np.ones(lay.n_features, bool) for lay in data.layouts]
    if seed % 4 == 3:
        allowed[0][1] = allowed[1][0] = False
    hists = histograms(data.layouts, data.train, grads, rows)
    split = find_best_split(hists, data.layouts, grads.total(rows), params, allowed)
    expected = brute_force(data.layouts, data.train, grads, rows, params, allowed)
    assert (split is None) == (expected is None)
    if split is not None:
        (p, j, t, default_left, lg, lh), gain = expected
        assert (split.party, split.feature, split.threshold, split.default_left) == (p, j, t, default_left)
        assert (split.left_g, split.left_h) == (lg, lh)
        assert split.gain == pytest.approx(gain, rel=1e-12)
        assert (split.right_g, split.right_h) == (grads.total(rows)[0] - lg, grads.total(rows)[1] - lh)


def _one_feature(codes, g, h, layout, params=SplitParams(reg_lambda=1.0, min_child_weight=0.0)):
    grads = Gradients(np.asarray(g, np.int64) * GRADIENT_SCALE // 4, np.asarray(h, np.int64) * GRADIENT_SCALE // 4)
    rows = np.arange(len(codes))
    codes = [np.asarray(codes, np.int32).reshape(-1, 1)]
    hists = histograms([layout], codes, grads, rows)
    return find_best_split(hists, [layout], grads.total(rows), params, [np.ones(1, bool)])


def test_missing_rows_go_to_the_side_they_resemble():
    layout = BinLayout((4,), (3,))  # codes 0-2 ordered, 3 missing
    codes = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3]
    # Rows with a positive gradient sit in codes 0-1 and the missing rows have one too:
    # the missing rows must go left.
    g = [3, 3, 3, 3, 3, -3, -3, -3, 3, 3, 3]
    split = _one_feature(codes, g, [1] * 11, layout)
    assert (split.threshold, split.default_left) == (1, True)
    # Mirror image: missing rows resemble the right side.
    g = [3, 3, 3, 3, 3, -3, -3, -3, -3, -3, -3]
    split = _one_feature(codes, g, [1] * 11, layout)
    assert (split.threshold, split.default_left) == (1, False)


def test_missing_against_present_is_a_split_of_its_own():
    layout = BinLayout((3,), (2,))
    codes = [0, 1, 0, 1, 2, 2]  # every present value alike, the missing ones differ
    split = _one_feature(codes, [1, 1, 1, 1, -3, -3], [1] * 6, layout)
    assert (split.threshold, split.default_left) == (1, False)
    assert (split.left_h, split.right_h) == (4 * GRADIENT_SCALE // 4, 2 * GRADIENT_SCALE // 4)


def test_without_missing_rows_the_default_goes_to_the_heavier_child():
    layout = BinLayout((4,), (3,))
    split = _one_feature([0, 1, 1, 2, 2, 2], [3, -1, -1, -1, -1, -1], [1] * 6, layout)
    assert split.threshold == 0 and split.default_left is False  # right child holds 5 of 6
    split = _one_feature([0, 0, 0, 0, 1, 2], [1, 1, 1, 1, -1, -3], [1] * 6, layout)
    assert split.threshold == 0 and split.default_left is True
    split = _one_feature([0, 0, 0, 0, 1, 2], [1, 1, 1, 1, -1, -3], [1] * 6, BinLayout((4,), (NO_MISSING,)))
    assert split.default_left is True


def test_ties_go_to_the_earlier_party_characteristic_and_threshold():
    rng = np.random.default_rng(3)
    col = rng.integers(0, 5, size=200).astype(np.int32)
    raw = np.zeros(200)
    y = (col >= 2).astype(int)
    grads = quantise_gradients(raw, y)
    rows = np.arange(200)
    layout = BinLayout((5, 5), (NO_MISSING, NO_MISSING))
    twice = [np.column_stack([col, col]), np.column_stack([col, col])]
    hists = histograms([layout, layout], twice, grads, rows)
    split = find_best_split(hists, [layout, layout], grads.total(rows), SplitParams(), [np.ones(2, bool)] * 2)
    assert (split.party, split.feature, split.threshold) == (0, 0, 1)
    allowed = [np.zeros(2, bool), np.array([False, True])]
    split = find_best_split(hists, [layout, layout], grads.total(rows), SplitParams(), allowed)
    assert (split.party, split.feature, split.threshold) == (1, 1, 1)
    # An empty code between two used ones gives the same partition twice: the lower wins.
    gap = np.where(col >= 2, col + 1, col).astype(np.int32)  # code 2 unused
    wide = BinLayout((6,), (NO_MISSING,))
    hists = histograms([wide], [gap.reshape(-1, 1)], grads, rows)
    split = find_best_split(hists, [wide], grads.total(rows), SplitParams(), [np.ones(1, bool)])
    assert split.threshold == 1


def test_no_admissible_split_makes_a_leaf():
    layout = BinLayout((3,), (NO_MISSING,))
    assert _one_feature([1, 1, 1, 1], [1, -1, 1, -1], [1] * 4, layout) is None  # one code only
    heavy = SplitParams(reg_lambda=1.0, min_child_weight=10.0)
    assert _one_feature([0, 0, 1, 1], [3, 3, -3, -3], [1] * 4, layout, heavy) is None
    picky = SplitParams(reg_lambda=1.0, min_child_weight=0.0, gamma=100.0)
    assert _one_feature([0, 0, 1, 1], [3, 3, -3, -3], [1] * 4, layout, picky) is None
    assert _one_feature([0, 0, 1, 1], [3, 3, -3, -3], [1] * 4, layout) is not None
