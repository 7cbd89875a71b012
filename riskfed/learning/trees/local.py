"""Parties whose codes sit in this process: the plaintext twin and the label holder's own part.

:class:`LocalParty` is one party's side of the learning core: its codes (training and
validation rows), its layout and its :class:`~riskfed.learning.trees.trees.HandleTable`. It
answers the two questions the tree grower asks a party — "your per-bin sums for these
rows" and "record this split and tell me which rows go left" — in the clear.
:class:`LocalHistogramProvider` asks every local party for a node's histograms.

In a federated session the label holder uses a :class:`LocalParty` for its own
characteristics and network proxies for the partners'; the pooled plaintext twin uses
local parties for everyone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskfed.learning.trees.gradients import Gradients
from riskfed.learning.trees.histograms import NodeHistograms, NodeRequest, PartyHistogram, bin_sums, flatten_codes
from riskfed.learning.trees.layout import BinLayout
from riskfed.learning.trees.splits import SplitCandidate
from riskfed.learning.trees.trees import HandleTable, NodeRows


class LocalParty:
    """One party's codes, layout and split handles.

    Parameters
    ----------
    layout:
        The party's bin layout.
    train:
        ``(n_train, m)`` bin codes of the training rows (in the session's row order).
    valid:
        ``(n_valid, m)`` bin codes of the validation rows, or ``None``.
    handles:
        An existing handle table to extend (default: a new one).
    """

    def __init__(
        self,
        layout: BinLayout,
        train: np.ndarray,
        valid: np.ndarray | None = None,
        handles: HandleTable | None = None,
    ) -> None:
        self.layout = layout
        self.train = layout.check_codes(train)
        m = layout.n_features
        self.valid = layout.check_codes(valid) if valid is not None else np.zeros((0, m), dtype=np.int32)
        self.handles = handles if handles is not None else HandleTable()
        self._flat = flatten_codes(self.train, layout)
        self._g = self._h = np.zeros(0)

    def begin_tree(self, gradients: Gradients) -> None:
        # Exact: every |g|, |h| ≤ 2^24 is a float64 integer (see riskfed.learning.trees.gradients).
        self._g = gradients.g.astype(np.float64)
        self._h = gradients.h.astype(np.float64)

    def histogram(self, rows: np.ndarray) -> PartyHistogram:
        """Per-bin sums of the current tree's gradients over ``rows``."""
        return bin_sums(self._flat, rows, self._g, self._h, self.layout.total_bins)

    def apply_split(self, split: SplitCandidate, rows: NodeRows) -> tuple[int, np.ndarray, np.ndarray]:
        """Record the split as a handle and route the node's training and validation rows."""
        handle = self.handles.add(split.feature, split.threshold, split.default_left)
        column = split.feature
        left_train = self.handles.decide_column(self.train[rows.train, column], self.layout, handle)
        left_valid = self.handles.decide_column(self.valid[rows.valid, column], self.layout, handle)
        return handle, left_train, left_valid


class LocalHistogramProvider:
    """Histograms computed in the clear from every party's codes (the plaintext twin).

    Parameters
    ----------
    parties:
        The local parties, in session order.
    """

    def __init__(self, parties: Sequence[LocalParty]) -> None:
        self.parties = list(parties)
        self.requested_rows = 0  # rows summed so far (shows the sibling-subtraction savings)

    def begin_tree(self, gradients: Gradients, sample: np.ndarray, features: Sequence[np.ndarray]) -> None:
        for party in self.parties:
            party.begin_tree(gradients)

    def histograms(self, requests: Sequence[NodeRequest]) -> list[NodeHistograms]:
        self.requested_rows += sum(int(r.rows.size) for r in requests)
        return [NodeHistograms(tuple(p.histogram(r.rows) for p in self.parties)) for r in requests]
