"""What the bank's session secret decides: the aligned order, the split and the batches.

Every choice the bank makes at random derives from one seed per session — by default
256 bits from the operating system's CSPRNG (:func:`new_session_seed`) — through its own
stream (:func:`session_rng`), so no choice can be replayed without the seed. The seed is
never sent, logged or reported; a caller may fix it (``random_state`` / ``--seed``) for
reproducible tests and pilots, and then it reveals the split to whoever knows it
(docs/threat-model.md; docs/design.md, "The session secret", says why fixed seeds are
32-bit and the default 256-bit).

Batch sizes follow from public quantities only (:func:`batch_sizes`), so every party can
check the schedule.
"""

from __future__ import annotations

import math
import secrets

import numpy as np

from riskfed import settings
from riskfed.errors import ConfigurationError

SEED_BITS = 256
# Independent streams of the session seed: one per secret choice, never shared.
ALIGNED_ORDER, SPLIT, BATCHES = 0, 1, 2


def new_session_seed() -> int:
    """A fresh 256-bit session secret from the OS CSPRNG."""
    return secrets.randbits(SEED_BITS)


# A fixed seed is for reproducible tests and pilots: the customary 32-bit range.
MAX_FIXED_SEED = settings.MAX_FIXED_SEED


def check_seed(seed, *, name: str, owner: str) -> None:
    """``None`` (a fresh secret per session) or an int in ``[0, 2^32)``; anything else is an error."""
    settings.check("random_state", seed, owner, shown_as=name)


def session_rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A generator for one secret choice: ``stream`` (and e.g. the epoch) of ``seed``."""
    if seed is None:
        raise ConfigurationError("A session's secret choices need its seed; got None.")
    sequence = np.random.SeedSequence(int(seed), spawn_key=(stream, *keys), pool_size=SEED_BITS // 32)
    return np.random.Generator(np.random.PCG64(sequence))


def stratified_split(y: np.ndarray, test_size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a stratified train/holdout split of labels ``y`` (both sorted).

    The holdout has ``ceil(test_size * n)`` rows, shared between the classes in
    proportion to their counts (largest remainders, ties broken at random); within a
    class the rows are a uniformly random subset drawn from ``rng``.

    Raises
    ------
    ValueError
        Too few rows for one of the two parts to hold every class.
    """
    y = np.asarray(y)
    n = len(y)
    n_test = math.ceil(test_size * n)
    classes, counts = np.unique(y, return_counts=True)
    if n_test < len(classes) or n - n_test < len(classes):
        raise ValueError(
            f"a holdout of {n_test} and a training set of {n - n_test} rows cannot both hold all {len(classes)} classes"
        )
    exact = counts * (n_test / n)
    take = np.floor(exact).astype(np.int64)
    short = n_test - int(take.sum())
    # Largest remainders first; the random key only breaks ties.
    order = np.lexsort((rng.random(len(classes)), -(exact - take)))
    take[order[:short]] += 1
    holdout = np.zeros(n, dtype=bool)
    for label, k in zip(classes, take):
        holdout[rng.permutation(np.flatnonzero(y == label))[:k]] = True
    return np.flatnonzero(~holdout).astype(np.int64), np.flatnonzero(holdout).astype(np.int64)


def batch_sizes(train_size: int, hyper) -> list[int]:
    """Rows of each batch of an epoch (the same every epoch): ``batch_size`` rows, with a
    tail shorter than ``min_batch_size`` folded into the batch before it."""
    size = hyper.batch_size
    sizes = [min(size, train_size - start) for start in range(0, train_size, size)]
    if len(sizes) > 1 and sizes[-1] < hyper.min_batch_size:
        tail = sizes.pop()  # pop first: sizes[-2] += sizes.pop() would add to the wrong batch
        sizes[-1] += tail
    return sizes


def make_batches(train_rows: np.ndarray, seed: int, epoch: int, hyper) -> list[np.ndarray]:
    """Mini-batches of ``train_rows`` for ``epoch``: a secret order drawn from the session
    seed, cut as :func:`batch_sizes` says (none below the minimum size)."""
    order = session_rng(seed, BATCHES, epoch).permutation(np.asarray(train_rows))
    bounds = np.cumsum([0, *batch_sizes(len(order), hyper)])
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
