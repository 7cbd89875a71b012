"""The public schedule every party checks, and a fintech's own limits on the plan.

Batches follow from public quantities — the number of training rows, ``batch_size`` and
``min_batch_size`` (:func:`~riskfed.learning.linear.schedule.batch_sizes`) — so the
coordinator knows exactly which rounds exist (:func:`is_planned`, :func:`round_after`)
and a fintech checks every batch against the plan (:class:`EpochCursor`), whatever the
bank's plan says (:func:`check_plan_limits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from riskfed.errors import ProtocolError
from riskfed.learning.linear.schedule import batch_sizes
from riskfed.protocol.messages import BANK, epoch_and_batch, round_of


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


__all__ = ["EpochCursor", "check_plan_limits", "is_planned", "round_after"]
