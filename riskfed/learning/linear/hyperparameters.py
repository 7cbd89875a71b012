"""The training plan's public settings (:class:`Hyperparameters`), checked against
:mod:`riskfed.settings`, and the protocol-wide limits on parties and features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskfed import settings
from riskfed.crypto.encoding import MAX_PARTIES_BITS

OPTIMIZERS = settings.param("optimizer").constraints[0].values
RANDOMNESS = settings.param("randomness").constraints[0].values
EXPANSIONS = settings.param("expansion").constraints[0].values
# The bank and at most 63 fintechs (the residual bound of riskfed.crypto.encoding).
MAX_FINTECHS = settings.MAX_FINTECHS
assert MAX_FINTECHS == (1 << MAX_PARTIES_BITS) - 1
# Public limit on any party's weights (its features after encoding). A party may ask the
# coordinator to decrypt, per round, as many ciphertexts as its weights need, and a
# cheating party can put ciphertexts of its choice in them (docs/threat-model.md): the
# limit bounds what it could learn. The bank may announce a lower one in its plan.
MAX_FEATURES_PER_PARTY = settings.default("max_features")
# Settings declared in riskfed.settings (the estimator's checks and messages); the
# others are set by the bank when it plans the session.
_DECLARED = tuple(p.name for p in settings.params(owner="hyperparameters") if p.name != "batch_size")
_OWNER = "VerticalLogisticRegression"
_D = settings.defaults(owner="hyperparameters")


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings the bank announces to every party (all public).

    Parameters
    ----------
    learning_rate:
        Step size (for ``preconditioned``, a fraction of the local Newton step).
    optimizer:
        One of ``preconditioned`` (default), ``sgd``, ``momentum``, ``nesterov``, ``adam``.
    expansion:
        How the logistic loss is approximated: ``bank`` (default: second order around
        the bank's own partial score; fintechs also send ``[[u_k^2]]``), ``bank-linear``
        (first order there: half the encryptions) or ``zero`` (Hardy et al.'s Taylor loss).
    l2:
        L2 penalty on the (standardised) feature weights; the intercept is not penalised.
    batch_size:
        Rows per mini-batch; at least ``min_batch_size`` so a party's own gradient does not
        expose individual labels.
    max_epochs, tol:
        Stop after ``max_epochs``, or once the model's scores moved by less than ``tol``
        of their spread over an epoch (root mean square change of the partial scores over
        their root mean square, summed over parties; never before the second epoch).
    averaging:
        Return the running average of the iterates (Polyak–Ruppert).
    track_loss:
        Compute the aggregate (expanded logistic) training loss per batch: one extra
        encrypted column per party; the bank learns the batch loss, an aggregate.
    decay:
        Scale the step by ``1 / (1 + t / steps_per_epoch)`` (halved after one epoch).
    max_features:
        Most weights any party may have (its features after encoding; the bank's
        intercept and loss column come on top). It fixes how many ciphertexts a party may
        ask the coordinator to decrypt per round, so set it no higher than the parties
        need; the coordinator also applies its own ceiling (default 1024).
    randomness:
        Who makes the DJN randomizers ``h_s^r`` that every encryption needs:
        ``coordinator`` (default: the key holder makes them with the factorisation,
        1.5–1.7 times as fast with riskfed's C kernels, ahead of time; see
        :mod:`riskfed.roles.coordinator`) or ``own`` (each party makes its own from the
        public key).
    parties, steps_per_epoch:
        Set by the bank: the number of parties — the bank and at most 63 fintechs (the
        ``preconditioned`` step is damped by ``2 / parties``, which keeps block-Jacobi
        iterations stable for any correlation between parties' features; the mask width
        grows with it) — and the batches per epoch.
    """

    learning_rate: float = _D["learning_rate"]
    optimizer: str = _D["optimizer"]
    expansion: str = _D["expansion"]
    l2: float = _D["l2"]
    batch_size: int = _D["batch_size"]
    max_epochs: int = _D["max_epochs"]
    tol: float = _D["tol"]
    averaging: bool = _D["averaging"]
    track_loss: bool = _D["track_loss"]
    momentum: float = _D["momentum"]
    min_batch_size: int = _D["min_batch_size"]
    decay: bool = _D["decay"]
    randomness: str = _D["randomness"]
    max_features: int = _D["max_features"]
    # Filled in by the bank when it plans the session:
    parties: int = 2
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        for name in _DECLARED:
            settings.check(name, getattr(self, name), _OWNER)
        # The plan's own minimum, not the declared one: a party checks it against its own.
        settings.check_value("min_batch_size", self.min_batch_size, settings.Interval(int, 1, None, "left"), _OWNER)
        settings.check_value("batch_size", self.batch_size, settings.Interval(int, self.min_batch_size, None, "left"), _OWNER)
        parties = settings.Interval(int, 2, MAX_FINTECHS + 1)
        settings.check_value("parties", self.parties, parties, _OWNER, note=f"(the bank and at most {MAX_FINTECHS} fintechs)")
        steps = settings.Interval(int, 1, settings.MAX_STEPS_PER_EPOCH)
        settings.check_value("steps_per_epoch", self.steps_per_epoch, steps, _OWNER)
        for name, value in self.to_dict().items():
            # numpy scalars pass the checks; the plan travels as builtin ints and bools.
            if isinstance(value, (np.bool_, np.integer)):
                object.__setattr__(self, name, bool(value) if isinstance(value, np.bool_) else int(value))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict) -> "Hyperparameters":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
