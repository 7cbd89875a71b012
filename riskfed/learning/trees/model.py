"""A boosted tree model split by owner, its scoring and its JSON parts.

The label holder's part (:class:`BoostedModel`) holds the base score, every tree's
structure, default directions and leaf values, the number of characteristics of each
party and the importance of each characteristic (gain and split count, by index). Each
party, the label holder included, keeps its own :class:`~riskfed.learning.trees.trees.HandleTable`
(handle id → characteristic, bin threshold, default direction) in its own part, with its
layout. Nothing is pickled: :func:`model_parts` gives one JSON dict per party (the label
holder's holds the trees and, under ``"own"``, its own handles) and
:func:`read_model_parts` reads them back with validation.

A partner's handle also carries the default direction, so the partner resolves its own
missing values and the label holder does not learn which of the partner's values are
missing; the label holder keeps the direction too, for applicants the partner does not
know.

Scoring: each party computes :meth:`HandleTable.decide` on its codes; the label holder
combines the answers with :meth:`BoostedModel.decision_function`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from riskfed.errors import DataValidationError
from riskfed.learning.trees.gradients import sigmoid
from riskfed.learning.trees.layout import BinLayout
from riskfed.learning.trees.splits import SplitCandidate
from riskfed.learning.trees.trees import LEAF, HandleTable, Tree, leaf_indices

MODEL_KIND = "riskfed-boosted-trees"
PARTY_KIND = "riskfed-boosted-trees-party"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Importance:
    """Per party and characteristic: total split gain and number of splits.

    Attributes
    ----------
    gain, splits:
        One float64 / int64 array per party, indexed by characteristic.
    """

    gain: tuple[np.ndarray, ...]
    splits: tuple[np.ndarray, ...]

    @classmethod
    def empty(cls, n_features: Sequence[int]) -> "Importance":
        return cls(tuple(np.zeros(m) for m in n_features), tuple(np.zeros(m, dtype=np.int64) for m in n_features))

    def plus(self, splits: Sequence[SplitCandidate]) -> "Importance":
        """A new record with ``splits`` added (the order of additions is the tree order)."""
        gain = [g.copy() for g in self.gain]
        count = [c.copy() for c in self.splits]
        for s in splits:
            gain[s.party][s.feature] += s.gain
            count[s.party][s.feature] += 1
        return Importance(tuple(gain), tuple(count))

    def to_dict(self) -> dict:
        return {"gain": [g.tolist() for g in self.gain], "splits": [c.tolist() for c in self.splits]}

    @classmethod
    def from_dict(cls, data: dict) -> "Importance":
        return cls(
            tuple(np.asarray(g, dtype=np.float64) for g in data["gain"]),
            tuple(np.asarray(c, dtype=np.int64) for c in data["splits"]),
        )


@dataclass(frozen=True)
class BoostedModel:
    """The label holder's part of a boosted tree model.

    Attributes
    ----------
    base_score:
        Log-odds before the first tree.
    trees:
        The kept trees.
    n_features:
        Characteristics per party (session order, label holder first).
    importance:
        Gain and split count per party and characteristic.
    """

    base_score: float
    trees: list[Tree]
    n_features: list[int]
    importance: Importance

    @property
    def n_parties(self) -> int:
        return len(self.n_features)

    def handle_counts(self) -> list[int]:
        """Per party, one more than the largest handle id the trees use (0 for none)."""
        counts = [0] * self.n_parties
        for tree in self.trees:
            for p, h in zip(tree.party[tree.left != LEAF].tolist(), tree.handle[tree.left != LEAF].tolist()):
                counts[p] = max(counts[p], h + 1)
        return counts

    def decision_function(
        self, decisions: Sequence[np.ndarray], known: Sequence[np.ndarray | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores (log-odds) from each party's decisions.

        Parameters
        ----------
        decisions:
            Per party, :meth:`HandleTable.decide` over all its handles for the rows.
        known:
            Per party, which rows it knows (``None``: all); unknown rows follow the
            default direction at that party's nodes.

        Returns
        -------
        raw, defaulted
            Scores, and whether each row took a default direction for an unknown row.
        """
        if len(decisions) != self.n_parties:
            raise DataValidationError(f"The model has {self.n_parties} parties; got decisions from {len(decisions)}.")
        n = decisions[0].shape[0]
        raw = np.full(n, self.base_score)
        defaulted = np.zeros(n, dtype=bool)
        for tree in self.trees:
            leaves, flagged = leaf_indices(tree, decisions, known)
            raw += tree.value[leaves]
            defaulted |= flagged
        return raw, defaulted

    def predict_proba(self, decisions: Sequence[np.ndarray], known=None) -> np.ndarray:
        """Probability of default (one column) from the parties' decisions."""
        return sigmoid(self.decision_function(decisions, known)[0])

    def to_dict(self) -> dict:
        """The label holder's JSON part (no partner thresholds: partners' nodes are handles)."""
        return {
            "kind": MODEL_KIND,
            "format": FORMAT_VERSION,
            "base_score": self.base_score,
            "n_features": list(self.n_features),
            "trees": [t.to_dict() for t in self.trees],
            "importance": self.importance.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BoostedModel":
        """Read the label holder's part back.

        Raises
        ------
        DataValidationError
            Not a boosted-tree model part, a newer format, or a damaged tree.
        """
        _check_kind(data, MODEL_KIND, "label holder")
        try:
            trees = [Tree.from_dict(t) for t in data["trees"]]
            n_features = [int(m) for m in data["n_features"]]
            model = cls(float(data["base_score"]), trees, n_features, Importance.from_dict(data["importance"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataValidationError(f"label holder: the boosted-tree model part is damaged ({exc}).") from exc
        for i, tree in enumerate(model.trees):
            if not tree.is_well_formed(model.n_parties):
                raise DataValidationError(
                    f"label holder: tree {i} of the model part is malformed (children, owners or handles out of range)."
                )
        return model


def party_part(layout: BinLayout, handles: HandleTable) -> dict:
    """One party's JSON part: its layout and its handles (its thresholds stay with it)."""
    return {"kind": PARTY_KIND, "format": FORMAT_VERSION, "layout": layout.to_dict(), "handles": handles.to_dict()}


def read_party_part(data: dict, *, party: str = "party") -> tuple[BinLayout, HandleTable]:
    """Read a party's part back.

    Raises
    ------
    DataValidationError
        Not a party part, a newer format, or a handle naming a characteristic or bin
        outside the layout.
    """
    _check_kind(data, PARTY_KIND, party)
    try:
        layout = BinLayout.from_dict(data["layout"], party=party)
        handles = HandleTable.from_dict(data["handles"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataValidationError(f"{party}: the boosted-tree model part is damaged ({exc}).", party=party) from exc
    for f, t in zip(handles.feature, handles.threshold):
        if not (0 <= f < layout.n_features and 0 <= t < layout.n_bins[f]):
            raise DataValidationError(
                f"{party}: a split handle names a characteristic or bin outside its layout.", party=party
            )
    return layout, handles


def _check_kind(data: dict, kind: str, party: str) -> None:
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise DataValidationError(f"{party}: expected a {kind!r} model part; got {found!r}.", party=party)
    if data.get("format") != FORMAT_VERSION:
        raise DataValidationError(
            f"{party}: model part format {data.get('format')!r} is not the supported {FORMAT_VERSION}.", party=party
        )


def model_parts(model: BoostedModel, owners: Sequence[tuple[BinLayout, HandleTable]]) -> list[dict]:
    """Every party's JSON part of a trained model.

    Parameters
    ----------
    model:
        The label holder's part.
    owners:
        Per party (label holder first), its layout and handle table.

    Returns
    -------
    list of dict
        Part 0, the label holder's: trees, leaf values, default directions, importance,
        and its own handles under ``"own"``. Part ``k``: party ``k``'s layout and handles
        only. No part holds another party's thresholds.
    """
    return [model.to_dict() | {"own": party_part(*owners[0])}] + [party_part(*o) for o in owners[1:]]


def read_model_parts(
    parts: Sequence[dict], *, names: Sequence[str] | None = None
) -> tuple[BoostedModel, list[tuple[BinLayout, HandleTable]]]:
    """Read the parts written by :func:`model_parts` (all of them, in party order).

    Raises
    ------
    DataValidationError
        A damaged part, or a party whose handles do not cover the model's nodes.
    """
    names = list(names) if names is not None else [f"party_{k}" for k in range(len(parts))]
    if not parts or not isinstance(parts[0], dict) or "own" not in parts[0]:
        raise DataValidationError("label holder: the first part must be the label holder's model part.")
    model = BoostedModel.from_dict({k: v for k, v in parts[0].items() if k != "own"})
    if len(parts) != model.n_parties:
        raise DataValidationError(f"The model has {model.n_parties} parties; got {len(parts)} parts.")
    owners = [read_party_part(parts[0]["own"], party=names[0])]
    owners += [read_party_part(part, party=name) for part, name in zip(parts[1:], names[1:])]
    for (layout, handles), needed, m, name in zip(owners, model.handle_counts(), model.n_features, names):
        if len(handles) < needed or layout.n_features != m:
            raise DataValidationError(
                f"{name}: its part does not match the model ({len(handles)} handles, {needed} used; "
                f"{layout.n_features} characteristics, {m} expected).",
                party=name,
            )
    return model, owners
