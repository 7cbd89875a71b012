"""Integer gradient histograms of a node, and the interface of whoever computes them.

A node's histogram holds, for every bin of every characteristic of every party, the
exact integer sums ``G`` and ``H`` of the quantised gradients and hessians of the node's
(sampled) rows in that bin (:mod:`riskfed.learning.trees.gradients`). Split finding
(:mod:`riskfed.learning.trees.splits`) reads nothing else, so a histogram made by decrypting
exact encrypted sums gives the same tree as one computed here in the clear.

Where histograms come from is pluggable (:class:`HistogramProvider`):
:class:`~riskfed.learning.trees.local.LocalHistogramProvider` computes them from the codes in
the clear; a federated provider asks each partner for encrypted per-bin sums and has the
label holder decrypt them. The tree grower asks once per tree level, for a batch of nodes,
and only for the *smaller* child of each split; the sibling is the parent minus that
child (:func:`sibling`), an exact integer subtraction on the label holder's side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from riskfed.learning.trees.gradients import Gradients
from riskfed.learning.trees.layout import BinLayout


@dataclass(frozen=True)
class PartyHistogram:
    """Per-bin sums over one party's flat bin axis (``BinLayout.offsets`` gives each
    characteristic's slice).

    Attributes
    ----------
    g, h:
        int64 arrays of length ``layout.total_bins``.
    """

    g: np.ndarray
    h: np.ndarray

    def __sub__(self, other: "PartyHistogram") -> "PartyHistogram":
        return PartyHistogram(self.g - other.g, self.h - other.h)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PartyHistogram)
            and np.array_equal(self.g, other.g)
            and np.array_equal(self.h, other.h)
        )

    __hash__ = None  # mutable arrays inside


@dataclass(frozen=True)
class NodeHistograms:
    """One node's histograms, one :class:`PartyHistogram` per party in party order."""

    parties: tuple[PartyHistogram, ...]

    def __sub__(self, other: "NodeHistograms") -> "NodeHistograms":
        return NodeHistograms(tuple(a - b for a, b in zip(self.parties, other.parties, strict=True)))


@dataclass(frozen=True)
class NodeRequest:
    """A node whose histograms are wanted: its id in the tree and its sampled rows.

    Attributes
    ----------
    node:
        The node's id within the tree being grown (lets a provider cache per node).
    rows:
        Sorted positions of the node's sampled training rows.
    """

    node: int
    rows: np.ndarray


class HistogramProvider(Protocol):
    """Computes node histograms for every party (the label holder's side of the interface)."""

    def begin_tree(self, gradients: Gradients, sample: np.ndarray, features: Sequence[np.ndarray]) -> None:
        """Start a tree: the quantised gradients of all training rows, the positions of
        the rows sampled for this tree, and per party the characteristics it may use
        (the federated provider encrypts and sends the sampled rows' gradients here)."""

    def histograms(self, requests: Sequence[NodeRequest]) -> list[NodeHistograms]:
        """Exact histograms of each requested node (one call per tree level)."""


def bin_sums(
    flat_codes: np.ndarray, rows: np.ndarray, g: np.ndarray, h: np.ndarray, total_bins: int
) -> PartyHistogram:
    """Per-bin integer sums of ``g`` and ``h`` over ``rows``, for one party.

    Parameters
    ----------
    flat_codes:
        ``(n_rows, m)`` bin codes already offset onto the party's flat bin axis.
    rows:
        Positions of the rows to sum.
    g, h:
        float64 copies of the quantised gradients (every value an integer ≤ 2^24 in
        magnitude, so the float64 sums are exact: see :mod:`riskfed.learning.trees.gradients`).
    total_bins:
        Length of the flat bin axis.

    Returns
    -------
    PartyHistogram
        int64 sums.
    """
    idx = flat_codes[rows]
    m = idx.shape[1]
    idx = idx.ravel()
    # One bincount over all characteristics at once: bins of different characteristics
    # never share a flat position.
    big_g = np.bincount(idx, weights=np.repeat(g[rows], m), minlength=total_bins)
    big_h = np.bincount(idx, weights=np.repeat(h[rows], m), minlength=total_bins)
    return PartyHistogram(big_g.astype(np.int64), big_h.astype(np.int64))


def flatten_codes(codes: np.ndarray, layout: BinLayout) -> np.ndarray:
    """Codes shifted onto the party's flat bin axis (``codes[:, j] + offsets[j]``), as intp."""
    return codes.astype(np.intp) + layout.offsets[:-1].astype(np.intp)


def sibling(parent: NodeHistograms, child: NodeHistograms) -> NodeHistograms:
    """The other child's histograms: parent minus the child that was computed (exact)."""
    return parent - child
