"""What the bank's session secret decides, and the schedule every party checks.

**The session secret.** Every choice the bank makes at random — the secret order of the
shared customers, the stratified train/holdout split and the batch order of each epoch —
derives from one seed per session: by default 256 bits drawn from the operating system's
CSPRNG (:func:`new_session_seed`, the ``secrets`` module) when the session opens. Each
choice uses its own stream of a numpy :class:`~numpy.random.SeedSequence` with a 256-bit
pool feeding a PCG64 generator, so no choice can be replayed without the seed. The seed
is never sent to anyone, logged or written to a report; it is kept only in the bank's own
checkpoint (a resumed session must draw the same batches).

A caller may fix the seed (``random_state`` / ``--seed``) to reproduce a run in tests
and pilots. A fixed seed *reveals*: anyone who knows it and the class counts of the
shared customers can replay the split, hence learn which holdout/training pattern goes
with which labels. A seed from a small range is as good as known (it can be guessed by
trying them all), which is why the default is a 256-bit secret and not a 32-bit
``random_state`` such as scikit-learn's (fixed seeds are 32-bit: they reveal anyway).

**The schedule.** Batches follow from public quantities — the number of training rows,
``batch_size`` and ``min_batch_size`` — so every party can check them: the coordinator
knows exactly which rounds exist and how many rows each batch has, and a fintech knows
how many batches an epoch has (:func:`batch_sizes`, :func:`round_after`).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field

import numpy as np

from riskfed import settings
from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.protocol.messages import BANK, round_of

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


def epoch_and_batch(rnd: int) -> tuple[int, int]:
    """The (0-based) epoch and batch of a training round (inverse of ``round_of``)."""
    epoch, batch = divmod(rnd - 1, 1_000_000)
    return epoch, batch


def is_planned(rnd: int, hyper, *, first_epoch: int = 0) -> bool:
    """Whether ``rnd`` is a training round of the plan (from ``first_epoch`` on)."""
    if isinstance(rnd, bool) or not isinstance(rnd, int) or rnd < 1:
        return False
    epoch, batch = epoch_and_batch(rnd)
    return first_epoch <= epoch < hyper.max_epochs and batch < hyper.steps_per_epoch


def round_after(rnd: int, hyper) -> int | None:
    """The planned round that follows round ``rnd``, or ``None`` after the last one."""
    epoch, batch = epoch_and_batch(rnd)
    if batch + 1 < hyper.steps_per_epoch:
        return round_of(epoch, batch + 1)
    return round_of(epoch + 1, 0) if epoch + 1 < hyper.max_epochs else None


def check_plan_limits(hyper, train_size: int, parties: int, *, me: str, min_batch_size: int, max_epochs: int) -> None:
    """A fintech's own limits on the bank's plan, whatever the plan says.

    Raises
    ------
    ProtocolError
        Batches may be smaller than ``min_batch_size`` (a small batch exposes single
        labels through the fintech's gradient and single partial scores through the
        bank's loss), more than ``max_epochs`` epochs, or a plan that does not add up.
    """
    smallest = min(hyper.batch_size, hyper.min_batch_size)
    if smallest < min_batch_size:
        raise ProtocolError(
            f"{me} refuses the training plan: it allows batches of {smallest} row(s) (batch_size={hyper.batch_size}, "
            f"min_batch_size={hyper.min_batch_size}); {me}'s minimum batch size is {min_batch_size}, because smaller "
            "batches expose individual labels and scores through the gradients.",
            party=BANK,
        )
    if hyper.max_epochs > max_epochs:
        raise ProtocolError(
            f"{me} refuses the training plan: {hyper.max_epochs} epochs; {me} allows at most {max_epochs}.", party=BANK
        )
    if hyper.parties != parties:
        raise ProtocolError(
            f"{me} refuses the training plan: it counts {hyper.parties} parties; the session has {parties}.", party=BANK
        )
    steps = len(batch_sizes(train_size, hyper))
    if steps != hyper.steps_per_epoch:
        raise ProtocolError(
            f"{me} refuses the training plan: {train_size} training rows make {steps} batch(es) per epoch, not "
            f"{hyper.steps_per_epoch}.",
            party=BANK,
        )


@dataclass
class EpochCursor:
    """Where a fintech is in the plan: the epoch, its next batch and the rows used so far.

    Batches must come in the planned order, have the planned size, lie in the training
    rows and not repeat a row within an epoch: the bank cannot difference two overlapping
    batches' gradients or losses.
    """

    hyper: object
    train: np.ndarray  # bool mask over the aligned rows
    epoch: int = 0
    batch: int = 0
    used: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.used = np.zeros(len(self.train), dtype=bool)
        self._sizes = batch_sizes(int(self.train.sum()), self.hyper)

    def check_batch(self, epoch: int, batch: int, rows: np.ndarray, *, me: str, min_rows: int) -> None:
        """Refuse a batch that is not the plan's next one (rows already checked in range, distinct)."""
        h = self.hyper
        if len(rows) < min_rows:
            raise ProtocolError(
                f"{me} refuses a batch of {len(rows)} rows; the minimum is {min_rows} "
                "(smaller batches expose individual labels through the gradient).",
                party=BANK,
            )
        if not self.train[rows].all():
            raise ProtocolError(f"{me}: the batch includes rows outside the training set.", party=BANK)
        if not (epoch < h.max_epochs and batch < h.steps_per_epoch):
            raise ProtocolError(
                f"{me}: batch {batch} of epoch {epoch} is not in the plan ({h.max_epochs} epoch(s) of "
                f"{h.steps_per_epoch} batch(es)).",
                party=BANK,
            )
        if (epoch, batch) != (self.epoch, self.batch):
            raise ProtocolError(
                f"{me}: batch {batch} of epoch {epoch} is out of sequence; the plan's next is batch {self.batch} of "
                f"epoch {self.epoch}.",
                party=BANK,
            )
        if len(rows) != self._sizes[batch]:
            raise ProtocolError(
                f"{me}: batch {batch} has {len(rows)} rows; the plan's batch {batch} has {self._sizes[batch]}.", party=BANK
            )
        if self.used[rows].any():
            raise ProtocolError(
                f"{me} refuses a batch that repeats {int(self.used[rows].sum())} row(s) of an earlier batch of epoch "
                f"{epoch}: overlapping batches would let their gradients be told apart row by row.",
                party=BANK,
            )

    def take(self, rows: np.ndarray) -> None:
        self.used[rows] = True
        self.batch += 1

    def check_epoch_end(self, epoch: int, *, me: str) -> None:
        if epoch != self.epoch or self.batch != self.hyper.steps_per_epoch:
            raise ProtocolError(
                f"{me}: the end of epoch {epoch} comes after {self.batch} of the {self.hyper.steps_per_epoch} batch(es) "
                f"of epoch {self.epoch}.",
                party=BANK,
            )

    def next_epoch(self) -> None:
        self.epoch += 1
        self.batch = 0
        self.used[:] = False


__all__ = [
    "ALIGNED_ORDER",
    "BATCHES",
    "SEED_BITS",
    "SPLIT",
    "EpochCursor",
    "MAX_FIXED_SEED",
    "batch_sizes",
    "check_plan_limits",
    "check_seed",
    "epoch_and_batch",
    "is_planned",
    "make_batches",
    "new_session_seed",
    "round_after",
    "session_rng",
    "stratified_split",
]
