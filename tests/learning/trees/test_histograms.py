"""Histograms: bin sums, sibling subtraction, and a provider fed by packed (decrypted) sums."""

from __future__ import annotations

import numpy as np

from riskfed.learning.trees.boosting import BoostingParams, fit_boosting
from riskfed.learning.trees.gradients import Gradients, pack, quantise_gradients, unpack_sums
from riskfed.learning.trees.histograms import NodeHistograms, NodeRequest, PartyHistogram, bin_sums, flatten_codes, sibling
from riskfed.learning.trees.local import LocalHistogramProvider, LocalParty


def reference_sums(codes, layout, rows, grads: Gradients) -> PartyHistogram:
    g = np.zeros(layout.total_bins, dtype=np.int64)
    h = np.zeros(layout.total_bins, dtype=np.int64)
    flat = flatten_codes(codes, layout)[rows]
    for j in range(layout.n_features):
        np.add.at(g, flat[:, j], grads.g[rows])
        np.add.at(h, flat[:, j], grads.h[rows])
    return PartyHistogram(g, h)


def test_bin_sums_equal_integer_accumulation(parties):
    grads = quantise_gradients(np.linspace(-3, 3, len(parties.y)), parties.y)
    rows = np.arange(0, len(parties.y), 3)
    for layout, codes in zip(parties.layouts, parties.train):
        got = bin_sums(flatten_codes(codes, layout), rows, grads.g.astype(float), grads.h.astype(float), layout.total_bins)
        assert got == reference_sums(codes, layout, rows, grads)
        assert got.g.dtype == np.int64


def test_sibling_by_subtraction_equals_the_direct_histogram(parties):
    grads = quantise_gradients(np.random.default_rng(2).normal(size=len(parties.y)), parties.y)
    local = [LocalParty(lay, codes) for lay, codes in zip(parties.layouts, parties.train)]
    provider = LocalHistogramProvider(local)
    provider.begin_tree(grads, np.arange(len(parties.y)), [])
    parent_rows = np.arange(len(parties.y))[parties.train[1][:, 1] != 3]
    left = parent_rows[parties.train[0][parent_rows, 2] <= 4]
    right = np.setdiff1d(parent_rows, left)
    parent, small, direct = provider.histograms([NodeRequest(0, parent_rows), NodeRequest(1, left), NodeRequest(2, right)])
    derived = sibling(parent, small)
    assert all(a == b for a, b in zip(derived.parties, direct.parties))


class PackedSumProvider(LocalHistogramProvider):
    """Stands in for the federated provider: the label holder packs each row's (g, h) into
    one integer, partners sum the packed integers per bin (what they would do under
    encryption), and the label holder unpacks the sums."""

    def begin_tree(self, gradients, sample, features):
        super().begin_tree(gradients, sample, features)
        self.packed = np.array(pack(gradients), dtype=object)
        self.requests = []

    def histograms(self, requests):
        self.requests.append([r.rows.size for r in requests])
        out = []
        for r in requests:
            parts = [self.parties[0].histogram(r.rows)]  # the label holder's own, in the clear
            for party in self.parties[1:]:
                flat = flatten_codes(party.train, party.layout)[r.rows]
                sums = [0] * party.layout.total_bins
                for j in range(flat.shape[1]):
                    for b, v in zip(flat[:, j].tolist(), self.packed[r.rows].tolist()):
                        sums[b] += v
                parts.append(PartyHistogram(*unpack_sums(sums)))
            out.append(NodeHistograms(tuple(parts)))
        return out


def test_trees_from_packed_partner_sums_are_bit_identical(parties_factory):
    data = parties_factory(n=300, n_valid=100, seed=4)
    params = BoostingParams(n_estimators=4, max_depth=3, learning_rate=0.3, subsample=0.8, min_child_weight=0.1)
    results = []
    for provider_cls in (LocalHistogramProvider, PackedSumProvider):
        local = [LocalParty(lay, tr, va) for lay, tr, va in zip(data.layouts, data.train, data.valid)]
        provider = provider_cls(local)
        res = fit_boosting(params, data.layouts, data.y, provider, local, np.random.default_rng(9), y_valid=data.y_valid)
        results.append((res, local, provider))
    (a, la, _), (b, lb, packed) = results
    assert a.model.to_dict() == b.model.to_dict()
    assert [p.handles.to_dict() for p in la] == [p.handles.to_dict() for p in lb]
    assert a.valid_loss == b.valid_loss
    # Sibling subtraction: each level asks for one child per split, never both.
    for sizes in packed.requests[1:]:
        assert all(s > 0 for s in sizes)
    assert packed.requests[0] == [240]


class RecordingProvider(LocalHistogramProvider):
    def histograms(self, requests):
        self.levels = getattr(self, "levels", []) + [[r.rows for r in requests]]
        return super().histograms(requests)


def test_provider_sums_only_the_smaller_children(parties):
    local = [LocalParty(lay, tr) for lay, tr in zip(parties.layouts, parties.train)]
    provider = RecordingProvider(local)
    params = BoostingParams(n_estimators=1, max_depth=3, min_child_weight=0.0)
    res = fit_boosting(params, parties.layouts, parties.y, provider, local, np.random.default_rng(0))
    n = len(parties.y)
    # Levels 0, 1, 2 need histograms (depth-3 nodes are leaves): the root, then one child
    # per split, at most half of each parent's rows; computing both children would sum n per level.
    assert [len(level) for level in provider.levels] == [1, 1, 2]
    assert provider.levels[0][0].size == n
    for level in provider.levels[1:]:
        assert sum(rows.size for rows in level) <= n // 2
        rows = np.concatenate(level)
        assert np.unique(rows).size == rows.size  # disjoint nodes
    assert res.model.trees[0].depth() == 3
