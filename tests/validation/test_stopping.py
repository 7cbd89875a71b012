"""Early stopping on the validation loss, with the reason in words."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.validation import early_stopping_decision


def test_the_example_of_the_brief():
    decision = early_stopping_decision([0.60, 0.52, 0.5205, 0.5212], tol=0.001, patience=2)
    assert decision.stop and decision.epoch == 4 and decision.best_epoch == 2
    assert decision.reason == (
        "stopped after epoch 4: the validation loss has not improved by more than 0.001 "
        "for 2 epochs; the model from epoch 2 is kept (validation loss 0.52)"
    )
    assert json.loads(json.dumps(decision.to_dict()))["best_loss"] == 0.52


def test_continue_reasons():
    assert early_stopping_decision([]).reason == "continue: no validation loss yet"
    first = early_stopping_decision([0.61])
    assert (first.stop, first.best_epoch, first.reason) == (False, 1, "continue: epoch 1 sets the first validation loss, 0.61")
    improved = early_stopping_decision([0.61, 0.55])
    assert improved.reason == "continue: the validation loss improved by more than 0.001 at epoch 2, to 0.55"
    waiting = early_stopping_decision([0.61, 0.55, 0.56], patience=3)
    assert not waiting.stop and waiting.epochs_without_improvement == 1
    assert waiting.reason == (
        "continue: the validation loss has not improved by more than 0.001 for 1 epoch "
        "(patience 3); the best so far is epoch 2 (0.55)"
    )


def test_small_improvements_do_not_reset_patience_but_the_lowest_loss_is_kept():
    # Falls by 0.0004 per epoch: never more than tol=0.001 against the reference 0.5.
    decision = early_stopping_decision([0.5, 0.4996, 0.4992], tol=0.001, patience=2)
    assert decision.stop and decision.best_epoch == 3 and decision.best_loss == 0.4992
    # Slow progress that adds up to more than tol counts as an improvement.
    slow = early_stopping_decision([0.5, 0.4994, 0.4988, 0.4982], tol=0.001, patience=2)
    assert not slow.stop and slow.epochs_without_improvement == 1


def test_the_rising_loss_of_the_uci_walk_through_stops_and_keeps_the_best_epoch():
    # Validation loss falling, then rising as in the walk-through (0.44 -> 0.53).
    losses = [0.52, 0.47, 0.45, 0.44, 0.46, 0.49, 0.53]
    decision = early_stopping_decision(losses, tol=0.001, patience=2)
    assert decision.stop and decision.epoch == 6 and decision.best_epoch == 4
    assert "the model from epoch 4 is kept" in decision.reason


def test_divergence_and_max_epochs():
    diverged = early_stopping_decision([0.5, 0.45, np.nan], patience=5)
    assert diverged.stop and diverged.best_epoch == 2
    assert diverged.reason.startswith("stopped after epoch 3: the validation loss is not finite (nan), the training diverged")
    never = early_stopping_decision([np.inf])
    assert never.stop and never.best_epoch is None and never.best_loss is None
    assert never.reason.endswith("no epoch produced a finite validation loss, so there is no model to keep")
    capped = early_stopping_decision([0.5, 0.4, 0.3], max_epochs=3, unit="evaluation")
    assert capped.stop and capped.best_epoch == 3
    assert capped.reason == (
        "stopped after evaluation 3, the maximum (max_epochs=3); the validation loss was still "
        "improving; the model from evaluation 3 is kept (validation loss 0.3)"
    )


@given(
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=30),
    st.floats(0.0, 0.1),
    st.integers(1, 5),
)
def test_property_decision_is_consistent(losses, tol, patience):
    d = early_stopping_decision(losses, tol=tol, patience=patience)
    seen = np.array(losses[: d.epoch])
    assert d.best_loss == seen.min() and d.best_epoch == int(np.argmin(seen)) + 1
    assert d.stop == (d.epochs_without_improvement >= patience)
    if d.stop:  # at the first epoch the rule fires, never later
        assert d.epochs_without_improvement == patience
        assert f"the model from epoch {d.best_epoch} is kept" in d.reason
    else:
        assert d.epoch == len(losses)
    # Calling again with only the losses seen so far gives the same decision.
    assert early_stopping_decision(losses[: d.epoch], tol=tol, patience=patience) == d


def test_bad_parameters():
    with pytest.raises(ConfigurationError, match=r"The 'patience' parameter of early_stopping_decision must be an int in the range \[1, inf\)\. Got 0 instead"):
        early_stopping_decision([0.5], patience=0)
    with pytest.raises(ConfigurationError, match=r"The 'tol' parameter of early_stopping_decision must be a float in the range \[0, inf\)\. Got -0.001 instead"):
        early_stopping_decision([0.5], tol=-0.001)
    with pytest.raises(ConfigurationError, match=r"The 'unit' parameter of early_stopping_decision must be a non-empty str"):
        early_stopping_decision([0.5], unit="")
    with pytest.raises(SchemaError, match=r"losses must be numeric validation losses"):
        early_stopping_decision(["0.5", "low"])
    with pytest.raises(SchemaError, match=r"losses must be one-dimensional"):
        early_stopping_decision([[0.5, 0.4]])
