"""Early stopping on a validation loss, with the reason in plain words.

A trainer calls :func:`early_stopping_decision` after every epoch with the validation
losses so far (the loss on applicants the model is not fitted on, e.g. a validation split
the bank holds). The decision says whether to stop, which epoch's model to keep, and why,
in a sentence an analyst can read in the app or the validation report.

The rule, as in Keras' ``EarlyStopping`` (``min_delta``, ``patience``): an epoch
*improves* when its loss is lower than the reference by more than ``tol``; the reference
is the loss of the last improving epoch (so slow steady progress still counts once it
adds up to ``tol``). Training stops when ``patience`` epochs in a row have not improved,
when the loss is not a finite number (diverged), or at ``max_epochs``. The model kept is
the one with the lowest validation loss seen, which may be a later epoch than the last
improving one when the loss kept falling by less than ``tol``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.validation._checks import _check_int_param, _to_1d, check_float


@dataclass(frozen=True)
class StoppingDecision:
    """Whether to stop training, which model to keep, and why.

    Attributes
    ----------
    stop : bool
        True to stop now.
    epoch : int
        The epoch the decision is taken at (1-based; 0 before any loss). Losses after
        the first epoch at which the rule fires are not looked at.
    best_epoch : int or None
        Epoch (1-based) of the lowest finite validation loss so far: the model to keep.
        None if no epoch has a finite loss.
    best_loss : float or None
        That loss.
    epochs_without_improvement : int
        Epochs since the last one that improved by more than ``tol``.
    reason : str
        The decision in words, e.g. "stopped after epoch 4: the validation loss has not
        improved by more than 0.001 for 2 epochs; the model from epoch 2 is kept".
    """

    stop: bool
    epoch: int
    best_epoch: int | None
    best_loss: float | None
    epochs_without_improvement: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values, ready for JSON."""
        return dataclasses.asdict(self)


def _check_losses(losses: Any) -> np.ndarray:
    """A 1-D numeric sequence (NaN and infinities allowed: they mean divergence)."""
    array, _ = _to_1d(losses, "losses")
    try:
        return array.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(
            f"losses must be numeric validation losses; got dtype {array.dtype}.",
            column="losses",
        ) from None


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _kept(best: int | None, losses: np.ndarray, unit: str) -> str:
    if best is None:
        return f"no {unit} produced a finite validation loss, so there is no model to keep"
    return f"the model from {unit} {best + 1} is kept (validation loss {losses[best]:.4g})"


def early_stopping_decision(
    losses: Any,
    *,
    tol: float = 1e-3,
    patience: int = 2,
    max_epochs: int | None = None,
    unit: str = "epoch",
) -> StoppingDecision:
    """Decide from the validation losses so far whether training should stop.

    Parameters
    ----------
    losses : sequence of float
        Validation loss after each epoch, oldest first (``losses[0]`` after epoch 1).
        NaN or infinite values mean the training diverged.
    tol : float, default 1e-3
        Smallest decrease of the loss that counts as an improvement (absolute, in the
        loss's units), at least 0.
    patience : int, default 2
        Epochs in a row without improvement after which training stops, at least 1.
    max_epochs : int or None, default None
        Stop once this many epochs have run, whatever the losses.
    unit : str, default "epoch"
        The word for one step in the reason (e.g. "evaluation" when the loss is
        computed every few batches).

    Returns
    -------
    StoppingDecision

    Raises
    ------
    SchemaError
        If ``losses`` is not a one-dimensional numeric sequence.
    ConfigurationError
        If ``tol``, ``patience``, ``max_epochs`` or ``unit`` is out of range.

    Examples
    --------
    >>> d = early_stopping_decision([0.52, 0.47, 0.4695, 0.4702], tol=0.001, patience=2)
    >>> d.stop, d.best_epoch
    (True, 3)
    >>> print(d.reason)  # doctest: +NORMALIZE_WHITESPACE
    stopped after epoch 4: the validation loss has not improved by more than 0.001
    for 2 epochs; the model from epoch 3 is kept (validation loss 0.4695)
    """
    owner = "early_stopping_decision"
    tol = check_float(tol, "tol", owner, 0.0, np.inf, closed="left")
    patience = _check_int_param(patience, "patience", owner, 1)
    if max_epochs is not None:
        max_epochs = _check_int_param(max_epochs, "max_epochs", owner, 1)
    if not isinstance(unit, str) or not unit.strip():
        raise ConfigurationError(
            f"The 'unit' parameter of {owner} must be a non-empty str. Got {unit!r} instead."
        )
    values = _check_losses(losses)
    if values.size == 0:
        return StoppingDecision(False, 0, None, None, 0, "continue: no validation loss yet")
    best = reference = None
    waited = 0
    for i, loss in enumerate(values):
        if not np.isfinite(loss):
            reason = (
                f"stopped after {unit} {i + 1}: the validation loss is not finite ({loss}), "
                f"the training diverged; {_kept(best, values, unit)}"
            )
            return _decision(True, i, best, values, waited, reason)
        if best is None or loss < values[best]:
            best = i
        if reference is None or loss < reference - tol:
            reference, waited = loss, 0
        else:
            waited += 1
        if waited >= patience:
            reason = (
                f"stopped after {unit} {i + 1}: the validation loss has not improved by "
                f"more than {tol:g} for {_plural(waited, unit)}; {_kept(best, values, unit)}"
            )
            return _decision(True, i, best, values, waited, reason)
        if max_epochs is not None and i + 1 >= max_epochs:
            trend = (
                "the validation loss was still improving"
                if waited == 0
                else f"the validation loss had not improved for {_plural(waited, unit)}"
            )
            reason = (
                f"stopped after {unit} {i + 1}, the maximum (max_epochs={max_epochs}); "
                f"{trend}; {_kept(best, values, unit)}"
            )
            return _decision(True, i, best, values, waited, reason)
    reason = _continue_reason(values, best, waited, tol, patience, unit)
    return _decision(False, i, best, values, waited, reason)


def _continue_reason(
    values: np.ndarray, best: int, waited: int, tol: float, patience: int, unit: str
) -> str:
    last = values.size
    if last == 1:
        return f"continue: {unit} 1 sets the first validation loss, {values[0]:.4g}"
    if waited == 0:
        return (
            f"continue: the validation loss improved by more than {tol:g} at {unit} {last}, "
            f"to {values[-1]:.4g}"
        )
    return (
        f"continue: the validation loss has not improved by more than {tol:g} for "
        f"{_plural(waited, unit)} (patience {patience}); the best so far is {unit} "
        f"{best + 1} ({values[best]:.4g})"
    )


def _decision(
    stop: bool, i: int, best: int | None, values: np.ndarray, waited: int, reason: str
) -> StoppingDecision:
    best_loss = None if best is None else float(values[best])
    best_epoch = None if best is None else best + 1
    return StoppingDecision(stop, i + 1, best_epoch, best_loss, waited, reason)


__all__ = ["StoppingDecision", "early_stopping_decision"]
