"""Best split of a node: a pure function of its integer histograms.

For a candidate that sends the non-missing codes ``≤ t`` of a characteristic left and
its missing rows to the side ``d``, with left sums ``(G_L, H_L)`` and right sums
``(G_R, H_R)`` of a node with sums ``(G, H)`` (in loss units), the loss reduction is
XGBoost's

    gain = ½ [ G_L² / (H_L + λ) + G_R² / (H_R + λ) − G² / (H + λ) ]

and the candidate is admissible when both children have ``H ≥ min_child_weight`` and a
positive integer hessian sum (a child with none would be empty), and ``gain > γ``.

Both directions for missing values are tried (missing-left, then missing-right). When the
node has no missing rows for the chosen characteristic the two are the same split; the
default direction then goes to the child with the larger hessian sum, so applicants with
a value missing at scoring time follow the bulk of the training rows.

Ties are broken deterministically by the order of the candidates: party (in session
order, label holder first), characteristic, threshold, then missing-left before
missing-right; the first candidate with the largest gain wins. Everything is computed
from the integer sums with the same elementwise float64 operations, so equal histograms
give the same split on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from riskfed.learning.trees.gradients import dequantise
from riskfed.learning.trees.histograms import NodeHistograms, PartyHistogram
from riskfed.learning.trees.layout import BinLayout

# A gain this small is rounding noise of the float arithmetic, not a split.
GAIN_EPSILON = 1e-12


@dataclass(frozen=True)
class SplitParams:
    """Regularisation of split finding (all in loss units).

    Attributes
    ----------
    reg_lambda:
        L2 penalty on leaf values (λ).
    min_child_weight:
        Least hessian sum of either child.
    gamma:
        Least loss reduction of a split (γ).
    """

    reg_lambda: float = 1.0
    min_child_weight: float = 1.0
    gamma: float = 0.0


@dataclass(frozen=True)
class SplitCandidate:
    """The best split of a node, as the label holder sees it.

    Attributes
    ----------
    party, feature, threshold:
        Owner of the characteristic, its index within the owner's columns, and the
        largest non-missing code that goes left.
    default_left:
        Whether missing (and, at scoring, unknown) rows go left.
    gain:
        Loss reduction (before γ is subtracted).
    left_g, left_h, right_g, right_h:
        Exact integer sums of the children.
    """

    party: int
    feature: int
    threshold: int
    default_left: bool
    gain: float
    left_g: int
    left_h: int
    right_g: int
    right_h: int


def leaf_weight(big_g: int, big_h: int, reg_lambda: float) -> float:
    """The optimal leaf value ``−G / (H + λ)`` of a node (0 when the denominator is 0)."""
    denominator = float(dequantise(big_h)) + reg_lambda
    return -float(dequantise(big_g)) / denominator if denominator > 0 else 0.0


def _score(big_g: np.ndarray, big_h: np.ndarray, reg_lambda: float) -> np.ndarray:
    g = dequantise(big_g)
    denominator = dequantise(big_h) + reg_lambda
    # With λ = 0 an empty side has a zero denominator; it scores 0 (and is inadmissible).
    return np.divide(g * g, denominator, out=np.zeros(np.shape(denominator)), where=denominator > 0)


def _left_sums(hist: PartyHistogram, layout: BinLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-child sums of every (code, missing direction) of one party, shape (bins, 2),
    and the non-missing mask of the flat bins."""
    seg = layout.segment
    flat_miss = layout.flat_missing
    has_miss = flat_miss >= 0
    non_missing = layout.non_missing
    sums = []
    for arr in (hist.g, hist.h):
        cum = np.cumsum(np.where(non_missing, arr, 0))
        before = np.concatenate([[0], cum[layout.offsets[1:-1] - 1]])  # cumulative sum before each segment
        within = cum - before[seg]
        miss = np.where(has_miss, arr[np.maximum(flat_miss, 0)], 0)[seg]
        sums.append(np.stack([within + miss, within], axis=1))  # column 0: missing left
    return sums[0], sums[1], non_missing


def party_gains(
    hist: PartyHistogram, layout: BinLayout, total: tuple[int, int], params: SplitParams, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gain of every candidate of one party, ``-inf`` where inadmissible.

    Returns
    -------
    gains, left_g, left_h
        Arrays of shape ``(total_bins, 2)``: flat bin position × (missing left, right).
    """
    left_g, left_h, non_missing = _left_sums(hist, layout)
    big_g, big_h = total
    right_g, right_h = big_g - left_g, big_h - left_h
    seg = layout.segment
    mcw = params.min_child_weight
    ok = (non_missing & np.asarray(allowed, dtype=bool)[seg])[:, None]
    ok = ok & (left_h > 0) & (right_h > 0) & (dequantise(left_h) >= mcw) & (dequantise(right_h) >= mcw)
    lam = params.reg_lambda
    gains = 0.5 * (_score(left_g, left_h, lam) + _score(right_g, right_h, lam) - _score(big_g, big_h, lam))
    return np.where(ok, gains, -np.inf), left_g, left_h


def find_best_split(
    hists: NodeHistograms,
    layouts: Sequence[BinLayout],
    total: tuple[int, int],
    params: SplitParams,
    allowed: Sequence[np.ndarray],
) -> SplitCandidate | None:
    """The best admissible split of a node over every party's characteristics, or ``None``.

    Parameters
    ----------
    hists:
        The node's histograms, one per party in session order.
    layouts:
        The parties' bin layouts, same order.
    total:
        The node's exact sums ``(G, H)`` (the label holder computes them from its own
        gradients).
    params:
        λ, minimum child weight, γ.
    allowed:
        Per party, a boolean mask of the characteristics this tree may use.

    Returns
    -------
    SplitCandidate or None
        ``None`` when no candidate is admissible (the node becomes a leaf).
    """
    best, best_gain = None, -np.inf
    for party, (hist, layout, mask) in enumerate(zip(hists.parties, layouts, allowed, strict=True)):
        gains, left_g, left_h = party_gains(hist, layout, total, params, mask)
        if gains.size == 0:
            continue
        i = int(np.argmax(gains))  # first maximum: lowest characteristic, threshold, left first
        gain = float(gains.flat[i])
        if gain > best_gain:  # strict: an earlier party keeps a tie
            best_gain = gain
            best = (party, layout, i // 2, i % 2, hist, int(left_g.flat[i]), int(left_h.flat[i]))
    if best is None or not (best_gain > params.gamma and best_gain > GAIN_EPSILON):
        return None
    party, layout, flat, direction, hist, lg, lh = best
    feature = int(np.searchsorted(layout.offsets, flat, side="right") - 1)
    threshold = flat - int(layout.offsets[feature])
    rg, rh = total[0] - lg, total[1] - lh
    default_left = direction == 0
    miss = layout.flat_missing[feature]
    if miss < 0 or (hist.g[miss] == 0 and hist.h[miss] == 0):
        # No missing rows here: both directions are the same split; send future missing
        # values where most of the weight went.
        default_left = lh >= rh
    return SplitCandidate(party, feature, threshold, default_left, best_gain, lg, lh, rg, rh)
