"""The session secret's streams, the stratified split, the batches and the seeds
(riskfed.learning.linear.schedule)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskfed.errors import ConfigurationError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.schedule import (
    BATCHES,
    SPLIT,
    batch_sizes,
    check_seed,
    make_batches,
    session_rng,
    stratified_split,
)
from riskfed.models.estimator import VerticalLogisticRegression

SESSION = "s" * 32


# -- the schedule --------------------------------------------------------------------------


@pytest.mark.parametrize("train", [256, 257, 511, 512, 700, 1023, 1024, 1279, 1280, 5000])
def test_batch_sizes_fold_a_short_tail_into_the_batch_before(train):
    hyper = Hyperparameters(batch_size=512, min_batch_size=256)
    sizes = batch_sizes(train, hyper)
    chunks = [min(512, train - s) for s in range(0, train, 512)]
    if len(chunks) > 1 and chunks[-1] < 256:
        chunks = chunks[:-2] + [chunks[-2] + chunks[-1]]
    assert sizes == chunks and sum(sizes) == train
    assert min(sizes) >= 256 or len(sizes) == 1


def test_batches_partition_the_training_rows_in_a_secret_order_per_epoch():
    hyper = Hyperparameters(batch_size=256)
    rows = np.arange(0, 3000, 3)
    first = make_batches(rows, 7, 0, hyper)
    assert [len(b) for b in first] == batch_sizes(len(rows), hyper)
    assert sorted(np.concatenate(first).tolist()) == rows.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(first, make_batches(rows, 7, 0, hyper)))
    assert not np.array_equal(np.concatenate(first), np.concatenate(make_batches(rows, 7, 1, hyper)))
    # Every bit of the seed counts: seeds that differ only far above 32 bits differ.
    high = make_batches(rows, 7 + (1 << 200), 0, hyper)
    assert not np.array_equal(np.concatenate(first), np.concatenate(high))


def test_secret_choices_use_separate_streams():
    a = session_rng(5, SPLIT).permutation(1000)
    b = session_rng(5, BATCHES, 0).permutation(1000)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, session_rng(5, SPLIT).permutation(1000))


@pytest.mark.parametrize("n, defaulters, test_size", [(1000, 213, 0.3), (300, 2, 0.3), (101, 50, 0.5), (5000, 700, 0.2)])
def test_stratified_split_keeps_class_shares_and_is_fresh_per_seed(n, defaulters, test_size):
    y = np.zeros(n, dtype=int)
    y[np.random.default_rng(0).choice(n, defaulters, replace=False)] = 1
    train, hold = stratified_split(y, test_size, session_rng(1, SPLIT))
    assert len(hold) == math.ceil(test_size * n) and sorted(np.r_[train, hold].tolist()) == list(range(n))
    assert abs(y[hold].sum() - defaulters * len(hold) / n) < 1
    again, _ = stratified_split(y, test_size, session_rng(1, SPLIT))
    other, _ = stratified_split(y, test_size, session_rng(2, SPLIT))
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_stratified_split_refuses_too_few_rows():
    with pytest.raises(ValueError, match="cannot both hold all 2 classes"):
        stratified_split(np.array([0, 1, 0, 1]), 0.1, session_rng(1, SPLIT))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", 1 << 32])
def test_seeds_are_none_or_32_bit_ints(seed):
    check_seed(None, name="random_state", owner="X")
    check_seed((1 << 32) - 1, name="random_state", owner="X")
    with pytest.raises(ConfigurationError, match=rf"The 'random_state' parameter of VerticalLogisticRegression must be None \(a fresh secret per session\) or an int in the range \[0, 4294967295\]. Got {seed!r} instead"):
        VerticalLogisticRegression(random_state=seed, key_bits=512, allow_insecure_key=True)._validate_params()
