"""Vertical logistic regression's maths, plaintext and private to each party.

The encrypted protocol (:mod:`riskfed.roles`) and the plaintext twin (:func:`fit_reference`)
run the same functions, so they agree bit for bit: every quantity that crosses a party
boundary is computed here as an exact fixed-point integer.

* :mod:`.hyperparameters` — the training plan's public settings.
* :mod:`.fixed_point` — encodings, bounds, mask and slot widths, exact column sums.
* :mod:`.residuals` — the bank's residual plan and the batch loss.
* :mod:`.local` — one party's weights and optimiser (:class:`LocalModel`).
* :mod:`.schedule` — the session secret's streams, the split and the batches.
* :mod:`.reference` — the plaintext twin of federated training.
"""

from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.local import LocalModel

__all__ = ["Hyperparameters", "LocalModel"]
