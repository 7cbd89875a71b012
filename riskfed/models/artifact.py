"""The saved model: one part per party, each party's only.

A saved model is a directory with one sub-directory per party::

    model/
      bank/model.json        bank preprocessing, weights, intercept, fallback, scorecard
      fintech_1/model.json   fintech_1 preprocessing and weights only

The bank's part never contains fintech weights and vice versa; in a real deployment each
party keeps only its own directory. Every part is checked when it is read
(:mod:`riskfed.models.parts`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from riskfed.alignment.normalize import IdNormalization
from riskfed.data.io import write_json
from riskfed.errors import ConfigurationError, DataValidationError
from riskfed.models.baselines import FallbackModel
from riskfed.models.parts import read_model_part
from riskfed.protocol.messages import BANK
from riskfed.scoring.scorecard import Scorecard

MODEL_FILE = "model.json"


class FederatedModel:
    """A trained federated model as per-party parts.

    Parameters
    ----------
    bank:
        The bank's part (dict, JSON-ready).
    fintechs:
        Fintech name → that fintech's part. May be empty when only the bank's part is
        loaded (network deployments).
    """

    def __init__(self, bank: dict, fintechs: Mapping[str, dict] | None = None) -> None:
        self.bank = bank
        self.fintechs = dict(fintechs or {})

    @property
    def fintech_names(self) -> list[str]:
        return list(self.bank["fintechs"])

    @property
    def scorecard(self) -> Scorecard:
        return Scorecard.from_dict(self.bank["scorecard"])

    @property
    def fallback(self) -> FallbackModel:
        return FallbackModel.from_dict(self.bank["fallback"])

    @property
    def normalization(self) -> IdNormalization:
        return IdNormalization.from_dict(self.bank["id_normalization"])

    def save(self, path: str | Path) -> Path:
        """Write one directory per party under ``path``."""
        path = Path(path)
        for name, part in [(BANK, self.bank), *self.fintechs.items()]:
            (path / name).mkdir(parents=True, exist_ok=True)
            write_json(part, path / name / MODEL_FILE)
        return path

    @classmethod
    def load(cls, path: str | Path, *, parties: Sequence[str] | None = None) -> "FederatedModel":
        """Load the bank's part and (where present) the fintechs' parts from ``path``.

        Every part is checked before it is used (:mod:`riskfed.models.parts`): types,
        finite numbers, weights matching the feature names.

        Raises
        ------
        DataValidationError
            A part is missing, not JSON, of the wrong kind, lacks fields or holds
            malformed ones (damaged, edited or written by an incompatible riskfed).
        """
        path = Path(path)
        bank_file = path / BANK / MODEL_FILE
        if not bank_file.is_file():
            raise DataValidationError(
                f"bank: no model part at {str(bank_file)!r}; expected a directory written by 'riskfed run' or 'riskfed pilot'.",
                party=BANK,
            )
        bank = read_model_part(bank_file, BANK)
        fintechs = {}
        for name in parties if parties is not None else bank["fintechs"]:
            f_file = path / _check_name(name) / MODEL_FILE
            if f_file.is_file():
                fintechs[name] = read_model_part(f_file, name)
        return cls(bank, fintechs)


def _check_name(name) -> str:
    # Party names become directory names: nothing that could leave the model directory.
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ConfigurationError(f"{name!r} is not a party name (fintech_1, fintech_2, …).")
    return name
