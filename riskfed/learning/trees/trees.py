"""Trees whose splits belong to the party that owns the characteristic.

An internal node of a :class:`Tree` stores a *split handle*: the owning party and a handle
id. The owner keeps a :class:`HandleTable` (handle id → characteristic, bin threshold,
default direction) and is the only one that can evaluate its nodes; the label holder keeps
the tree structure, the default directions and the leaf values. Prediction therefore runs
in two steps:

1. each party answers the decisions of its own handles for the rows it knows
   (:meth:`HandleTable.decide`, a boolean "goes left" per row and handle);
2. the label holder walks the trees with those answers (:func:`leaf_indices`); rows a
   party does not know follow the node's default direction, and are flagged.

Missing values are resolved by the owner with the same default direction. In the
plaintext twin every party's table sits in one process and the two steps are the same.

:func:`grow_tree` grows one tree depth-wise on the label holder's side. It talks to the
parties only through two interfaces, so the federated version reuses it unchanged: a
:class:`~riskfed.learning.trees.histograms.HistogramProvider` (one call per level, for the
smaller child of each split) and one :class:`SplitOwner` per party (records a chosen split
as a handle and says which of the node's rows go left).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from riskfed.errors import ProtocolError
from riskfed.learning.trees.gradients import Gradients, dequantise
from riskfed.learning.trees.histograms import HistogramProvider, NodeHistograms, NodeRequest, sibling
from riskfed.learning.trees.layout import BinLayout
from riskfed.learning.trees.splits import SplitCandidate, SplitParams, find_best_split, leaf_weight

LEAF = -1


@dataclass
class HandleTable:
    """One party's split handles (the owner's private lookup).

    Attributes
    ----------
    feature, threshold, default_left:
        Per handle id: characteristic index, largest non-missing code going left, and
        where missing values go.
    """

    feature: list[int] = field(default_factory=list)
    threshold: list[int] = field(default_factory=list)
    default_left: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.feature)

    def add(self, feature: int, threshold: int, default_left: bool) -> int:
        """Record a split and return its handle id."""
        self.feature.append(int(feature))
        self.threshold.append(int(threshold))
        self.default_left.append(bool(default_left))
        return len(self.feature) - 1

    def truncate(self, n_handles: int) -> None:
        """Forget every handle from ``n_handles`` on (trees dropped by early stopping)."""
        del self.feature[n_handles:], self.threshold[n_handles:], self.default_left[n_handles:]

    def decide(
        self, codes: np.ndarray, layout: BinLayout, handles: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Whether each row goes left at each handle.

        Parameters
        ----------
        codes:
            The owner's ``(n_rows, m)`` bin codes.
        layout:
            The owner's layout (for the missing codes).
        handles:
            Handle ids to answer (default: all).

        Returns
        -------
        numpy.ndarray
            Boolean ``(n_rows, len(handles))``.
        """
        ids = np.arange(len(self)) if handles is None else np.asarray(handles, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ProtocolError(f"{layout.party}: asked for a split handle it never issued.", party=layout.party)
        feature = np.asarray(self.feature, dtype=np.int64)[ids]
        return self._goes_left(codes[:, feature], ids, np.asarray(layout.missing, dtype=np.int64)[feature])

    def decide_column(self, values: np.ndarray, layout: BinLayout, handle: int) -> np.ndarray:
        """Whether each row goes left at ``handle``, given only the codes of its characteristic."""
        if not 0 <= handle < len(self):
            raise ProtocolError(f"{layout.party}: asked for a split handle it never issued.", party=layout.party)
        ids = np.array([handle])
        return self._goes_left(values[:, None], ids, np.array([layout.missing[self.feature[handle]]]))[:, 0]

    def _goes_left(self, values: np.ndarray, ids: np.ndarray, missing: np.ndarray) -> np.ndarray:
        go_left = values <= np.asarray(self.threshold, dtype=np.int64)[ids]
        return np.where(values == missing, np.asarray(self.default_left, dtype=bool)[ids], go_left)

    def to_dict(self) -> dict:
        return {
            "feature": list(self.feature),
            "threshold": list(self.threshold),
            "default_left": list(self.default_left),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "HandleTable":
        return cls(
            [int(v) for v in data["feature"]],
            [int(v) for v in data["threshold"]],
            [bool(v) for v in data["default_left"]],
        )


@dataclass(frozen=True)
class Tree:
    """One tree as the label holder keeps it (array per node attribute, root = node 0).

    Attributes
    ----------
    left, right:
        Child node ids, ``-1`` at leaves.
    party, handle:
        Owner of the node's split and its handle id there, ``-1`` at leaves.
    default_left:
        Where missing and unknown rows go.
    value:
        Leaf values (learning rate applied), 0 at internal nodes.
    gain, cover:
        Loss reduction of the split and hessian sum of the node (for importance and
        inspection).
    """

    left: np.ndarray
    right: np.ndarray
    party: np.ndarray
    handle: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    gain: np.ndarray
    cover: np.ndarray

    _FIELDS = ("left", "right", "party", "handle", "default_left", "value", "gain", "cover")
    _TYPES = (np.int32, np.int32, np.int32, np.int32, bool, np.float64, np.float64, np.float64)

    @property
    def n_nodes(self) -> int:
        return len(self.left)

    def depth(self) -> int:
        """Number of edges from the root to the deepest leaf."""
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for node in range(self.n_nodes):  # children always have larger ids than parents
            if self.left[node] != LEAF:
                depth[[self.left[node], self.right[node]]] = depth[node] + 1
        return int(depth.max())

    def is_well_formed(self, n_parties: int) -> bool:
        """Same-length arrays, children after their parent and inside the tree (so a walk
        ends), owners among the parties: what a tree read from outside must satisfy."""
        if len({len(getattr(self, name)) for name in self._FIELDS}) != 1 or self.n_nodes == 0:
            return False
        ids = np.arange(self.n_nodes)
        internal = self.left != LEAF
        children_ok = (self.left > ids) & (self.right > ids) & (self.left < self.n_nodes) & (self.right < self.n_nodes)
        owner_ok = (self.party >= 0) & (self.party < n_parties) & (self.handle >= 0)
        return bool(np.all(children_ok[internal] & owner_ok[internal]) and np.all(self.right[~internal] == LEAF))

    def to_dict(self) -> dict:
        return {name: getattr(self, name).tolist() for name in self._FIELDS}

    @classmethod
    def from_dict(cls, data: dict) -> "Tree":
        return cls(*(np.asarray(data[name], dtype=kind) for name, kind in zip(cls._FIELDS, cls._TYPES)))


def leaf_indices(
    tree: Tree, decisions: Sequence[np.ndarray], known: Sequence[np.ndarray | None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Walk ``tree`` with each party's decisions.

    Parameters
    ----------
    decisions:
        Per party, the boolean matrix of :meth:`HandleTable.decide` over *all* of its
        handles (rows in the label holder's order).
    known:
        Per party, a boolean mask of the rows it knows, or ``None`` for all.

    Returns
    -------
    leaves, defaulted
        The leaf reached by each row, and whether a row took a default direction because
        the owner of a node on its path did not know it.
    """
    n = decisions[0].shape[0]
    node = np.zeros(n, dtype=np.int64)
    defaulted = np.zeros(n, dtype=bool)
    known = [None] * len(decisions) if known is None else known
    while True:
        child = tree.left[node]
        active = np.flatnonzero(child != LEAF)
        if active.size == 0:
            return node, defaulted
        at = node[active]
        go_left = tree.default_left[at].copy()
        owner = tree.party[at]
        for p, (dec, mask) in enumerate(zip(decisions, known)):
            sel = owner == p
            if mask is not None:
                defaulted[active[sel & ~mask[active]]] = True
                sel &= mask[active]
            go_left[sel] = dec[active[sel], tree.handle[at[sel]]]
        node[active] = np.where(go_left, tree.left[at], tree.right[at])


@dataclass(frozen=True)
class NodeRows:
    """The rows a node holds: all its training rows and its validation rows (sorted)."""

    train: np.ndarray
    valid: np.ndarray


class SplitOwner(Protocol):
    """A party as the tree grower sees it when one of its characteristics wins a node."""

    def apply_split(self, split: SplitCandidate, rows: NodeRows) -> tuple[int, np.ndarray, np.ndarray]:
        """Record ``split`` as a new handle; return its id and "goes left" masks over
        ``rows.train`` and ``rows.valid``."""


@dataclass(frozen=True)
class GrownTree:
    """A tree and what the grower learned while growing it.

    Attributes
    ----------
    tree:
        The label holder's tree.
    splits:
        The winning candidate of each internal node, in node order.
    leaf_rows:
        Per leaf: its value, training rows and validation rows.
    """

    tree: Tree
    splits: list[SplitCandidate]
    leaf_rows: list[tuple[float, NodeRows]]


@dataclass
class _Node:
    id: int
    depth: int
    rows: NodeRows
    sample: np.ndarray


class _TreeBuilder:
    def __init__(self) -> None:
        self.nodes: dict[int, tuple] = {}
        self.splits: list[SplitCandidate] = []
        self.leaves: list[tuple[float, NodeRows]] = []

    def leaf(self, node: _Node, value: float, cover: float) -> None:
        self.nodes[node.id] = (LEAF, LEAF, LEAF, LEAF, False, value, 0.0, cover)
        self.leaves.append((value, node.rows))

    def internal(self, node: _Node, split: SplitCandidate, handle: int, left: int, right: int, cover: float) -> None:
        self.nodes[node.id] = (left, right, split.party, handle, split.default_left, 0.0, split.gain, cover)
        self.splits.append(split)

    def build(self) -> GrownTree:
        columns = list(zip(*(self.nodes[i] for i in range(len(self.nodes)))))
        tree = Tree(*(np.asarray(col, dtype=kind) for col, kind in zip(columns, Tree._TYPES)))
        return GrownTree(tree, self.splits, self.leaves)


@dataclass(frozen=True)
class GrowthSettings:
    """What :func:`grow_tree` needs besides the parties: depth, shrinkage, regularisation."""

    max_depth: int
    learning_rate: float
    split: SplitParams


@dataclass
class _Split:
    """A node just split: its children and, when they will be split in turn, the parent's
    histograms (to derive the larger child's from the smaller one's)."""

    parent_hist: NodeHistograms | None
    left: _Node
    right: _Node

    @property
    def small(self) -> _Node:
        return self.left if self.left.sample.size <= self.right.sample.size else self.right

    def children(self, answers) -> list[tuple[_Node, NodeHistograms | None]]:
        if self.parent_hist is None:
            return [(self.left, None), (self.right, None)]
        small_hist = next(answers)
        other_hist = sibling(self.parent_hist, small_hist)
        if self.small is self.left:
            return [(self.left, small_hist), (self.right, other_hist)]
        return [(self.left, other_hist), (self.right, small_hist)]


class _Grower:
    """The label holder's side of growing one tree: picks splits, makes leaves."""

    def __init__(self, settings: GrowthSettings, layouts, gradients: Gradients, in_sample, allowed, owners) -> None:
        self.settings, self.layouts, self.gradients = settings, layouts, gradients
        self.in_sample, self.allowed, self.owners = in_sample, allowed, owners
        self.builder = _TreeBuilder()
        self.next_id = 1

    def visit(self, node: _Node, hist: NodeHistograms | None) -> _Split | None:
        """Split ``node`` if it can be split (asking the owner to route its rows), else make it a leaf."""
        big_g, big_h = self.gradients.total(node.sample)
        cover = float(dequantise(big_h))
        params = self.settings.split
        split = None if hist is None else find_best_split(hist, self.layouts, (big_g, big_h), params, self.allowed)
        if split is None:
            self.builder.leaf(node, self.settings.learning_rate * leaf_weight(big_g, big_h, params.reg_lambda), cover)
            return None
        handle, left_train, left_valid = self.owners[split.party].apply_split(split, node.rows)
        left, right = self._children(node, np.asarray(left_train, bool), np.asarray(left_valid, bool))
        self.builder.internal(node, split, handle, left.id, right.id, cover)
        # Children at the maximum depth become leaves: no histograms needed for them.
        return _Split(hist if left.depth < self.settings.max_depth else None, left, right)

    def _children(self, node: _Node, left_train: np.ndarray, left_valid: np.ndarray) -> tuple[_Node, _Node]:
        def child(node_id: int, train: np.ndarray, valid: np.ndarray) -> _Node:
            return _Node(node_id, node.depth + 1, NodeRows(train, valid), train[self.in_sample[train]])

        rows, first = node.rows, self.next_id
        self.next_id += 2
        return (
            child(first, rows.train[left_train], rows.valid[left_valid]),
            child(first + 1, rows.train[~left_train], rows.valid[~left_valid]),
        )


def grow_tree(
    settings: GrowthSettings,
    layouts: Sequence[BinLayout],
    gradients: Gradients,
    rows: NodeRows,
    in_sample: np.ndarray,
    allowed: Sequence[np.ndarray],
    provider: HistogramProvider,
    owners: Sequence[SplitOwner],
) -> GrownTree:
    """Grow one tree level by level from the root holding ``rows``.

    Parameters
    ----------
    settings:
        Depth, learning rate and split regularisation.
    layouts:
        Every party's layout, in session order (label holder first).
    gradients:
        Quantised gradients of all training rows (already passed to ``provider``).
    rows:
        All training and validation rows (the root).
    in_sample:
        Boolean mask over training rows: the rows this tree learns from.
    allowed:
        Per party, the characteristics this tree may split on.
    provider, owners:
        Where histograms come from; who records and applies each party's splits.

    Returns
    -------
    GrownTree
    """
    grower = _Grower(settings, layouts, gradients, in_sample, allowed, owners)
    root = _Node(0, 0, rows, rows.train[in_sample[rows.train]])
    level = [(root, provider.histograms([NodeRequest(0, root.sample)])[0])]
    while level:
        splits = [s for s in (grower.visit(node, hist) for node, hist in level) if s is not None]
        # One request per level, for the smaller child of each split whose children go on.
        requests = [NodeRequest(s.small.id, s.small.sample) for s in splits if s.parent_hist is not None]
        answers = iter(provider.histograms(requests) if requests else [])
        level = [item for s in splits for item in s.children(answers)]
    return grower.builder.build()
