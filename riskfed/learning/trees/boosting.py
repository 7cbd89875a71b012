"""The boosting loop on the label holder's side: settings, per-tree sampling, early stopping.

:func:`fit_boosting` runs gradient boosting on the logistic loss over parties it reaches
only through a :class:`~riskfed.learning.trees.histograms.HistogramProvider` and one
:class:`~riskfed.learning.trees.trees.SplitOwner` per party, so the same loop trains the pooled
plaintext twin and the federated model. Each tree:

1. draw the tree's rows and characteristics from the session generator
   (:func:`draw_tree_sample`; the order of draws is fixed so both runs draw alike);
2. quantise the gradients at the current scores (:func:`~riskfed.learning.trees.gradients.quantise_gradients`);
3. hand them to the provider and grow the tree (:func:`~riskfed.learning.trees.trees.grow_tree`);
4. add each leaf's value to the scores of its training and validation rows — the grower
   knows every row's leaf, so no routing round is needed;
5. record the losses; stop after ``early_stopping_rounds`` trees without a better
   validation loss and keep the trees up to the best one.

The first score is the log-odds of the training default rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from riskfed.errors import ConfigurationError
from riskfed.learning.trees.gradients import check_row_count, quantise_gradients
from riskfed.learning.trees.histograms import HistogramProvider
from riskfed.learning.trees.layout import BinLayout
from riskfed.learning.trees.model import BoostedModel, Importance
from riskfed.learning.trees.splits import SplitParams
from riskfed.learning.trees.trees import GrowthSettings, NodeRows, SplitOwner, Tree, grow_tree

INF = math.inf
# Name → (type, low, high, closed side(s), allows None). One declaration that the core,
# the estimators and their error messages derive from.
PARAMETER_CONSTRAINTS: dict[str, tuple] = {
    "n_estimators": (int, 1, INF, "left", False),
    "max_depth": (int, 1, 16, "both", False),
    "learning_rate": (float, 0.0, 1.0, "right", False),
    "reg_lambda": (float, 0.0, INF, "left", False),
    "min_child_weight": (float, 0.0, INF, "left", False),
    "gamma": (float, 0.0, INF, "left", False),
    "subsample": (float, 0.0, 1.0, "right", False),
    "colsample_bytree": (float, 0.0, 1.0, "right", False),
    "early_stopping_rounds": (int, 1, INF, "left", True),
    "first_tree_label_holder_only": (bool, None, None, None, False),
}


def _describe(kind: type, low, high, closed: str | None, allow_none: bool) -> str:
    if kind is bool:
        text = "a bool"
    else:
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        upper = "inf" if high == INF else high
        text = f"{'an int' if kind is int else 'a float'} in the range {left}{low}, {upper}{right}"
    return f"None or {text}" if allow_none else text


def _satisfies(value, kind: type, low, high, closed: str | None) -> bool:
    if kind is bool:
        return isinstance(value, (bool, np.bool_))
    numeric = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numeric):
        return False
    if not math.isfinite(value) and value != INF:
        return False
    above = value >= low if closed in ("left", "both") else value > low
    below = value <= high if closed in ("right", "both") else value < high
    return above and below


def check_params(values: Mapping[str, object], owner: str) -> None:
    """Raise a scikit-learn-style :class:`ConfigurationError` for the first bad parameter.

    Raises
    ------
    ConfigurationError
        "The 'max_depth' parameter of ``owner`` must be an int in the range [1, 16]. Got 0 instead."
    """
    for name, (kind, low, high, closed, allow_none) in PARAMETER_CONSTRAINTS.items():
        value = values[name]
        if value is None and allow_none:
            continue
        if not _satisfies(value, kind, low, high, closed):
            raise ConfigurationError(
                f"The {name!r} parameter of {owner} must be {_describe(kind, low, high, closed, allow_none)}. "
                f"Got {value!r} instead."
            )


@dataclass(frozen=True)
class BoostingParams:
    """Boosting settings (all public to every party of a session).

    Attributes
    ----------
    n_estimators, max_depth, learning_rate:
        Trees, depth (edges from root to deepest leaf), shrinkage of leaf values.
    reg_lambda, min_child_weight, gamma:
        L2 on leaf values, least child hessian sum, least loss reduction of a split.
    subsample, colsample_bytree:
        Share of training rows per tree (without replacement) and share of each party's
        characteristics per tree.
    early_stopping_rounds:
        Stop after this many trees without a better validation loss (needs a validation
        set); the best iteration's trees are kept.
    first_tree_label_holder_only:
        Grow the first tree from the label holder's characteristics only (a published
        SecureBoost mitigation: the partners' first-tree splits would reveal the most
        about the labels).
    """

    n_estimators: int = 100
    max_depth: int = 3
    learning_rate: float = 0.1
    reg_lambda: float = 1.0
    min_child_weight: float = 1.0
    gamma: float = 0.0
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    early_stopping_rounds: int | None = None
    first_tree_label_holder_only: bool = False

    def __post_init__(self) -> None:
        check_params(asdict(self), type(self).__name__)

    @classmethod
    def from_owner(cls, values: Mapping[str, object], owner: str) -> "BoostingParams":
        """Validate ``values`` in the name of ``owner`` (an estimator) and build the settings."""
        values = {f.name: values[f.name] for f in fields(cls)}
        check_params(values, owner)
        return cls(**values)

    def growth(self) -> GrowthSettings:
        return GrowthSettings(
            self.max_depth, self.learning_rate, SplitParams(self.reg_lambda, self.min_child_weight, self.gamma)
        )


@dataclass(frozen=True)
class TreeSample:
    """The rows and characteristics one tree may use.

    Attributes
    ----------
    rows:
        Sorted positions of the sampled training rows.
    features:
        Per party, a boolean mask over its characteristics.
    """

    rows: np.ndarray
    features: list[np.ndarray]


def draw_tree_sample(
    rng: np.random.Generator, n_rows: int, layouts: Sequence[BinLayout], params: BoostingParams, tree: int
) -> TreeSample:
    """Draw a tree's rows, then each party's characteristics in session order.

    Nothing is drawn for a share of 1.0, so the draws (and the trees) of a run without
    subsampling do not depend on the generator.
    """
    rows = np.arange(n_rows)
    if params.subsample < 1.0:
        k = max(1, int(math.floor(params.subsample * n_rows + 1e-9)))
        rows = np.sort(rng.choice(n_rows, size=k, replace=False))
    features = []
    for layout in layouts:
        m = layout.n_features
        mask = np.ones(m, dtype=bool)
        if params.colsample_bytree < 1.0 and m:
            k = max(1, int(math.floor(params.colsample_bytree * m + 1e-9)))
            mask[:] = False
            mask[rng.choice(m, size=k, replace=False)] = True
        features.append(mask)
    if tree == 0 and params.first_tree_label_holder_only:
        features = [features[0]] + [np.zeros_like(f) for f in features[1:]]
    return TreeSample(rows, features)


def log_loss(y: np.ndarray, raw: np.ndarray) -> float:
    """Mean logistic loss at raw scores ``raw`` (stable for large scores)."""
    return float(np.mean(np.logaddexp(0.0, raw) - y * raw)) if len(y) else float("nan")


@dataclass
class BoostingResult:
    """What :func:`fit_boosting` returns.

    Attributes
    ----------
    model:
        The label holder's view of the kept trees (partners' handle tables not included).
    best_iteration:
        Index of the last kept tree.
    train_loss, valid_loss:
        Loss after each grown tree (``valid_loss`` empty without a validation set).
    handle_counts:
        Per party, how many handles the kept trees use: each owner keeps its first
        ``handle_counts[p]`` handles and forgets the rest.
    """

    model: BoostedModel
    best_iteration: int
    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    handle_counts: list[int] = field(default_factory=list)


def base_score(y: np.ndarray) -> float:
    """Log-odds of the training default rate (the score before any tree)."""
    rate = float(np.mean(y))
    return math.log(rate / (1.0 - rate))


def fit_boosting(
    params: BoostingParams,
    layouts: Sequence[BinLayout],
    y: np.ndarray,
    provider: HistogramProvider,
    owners: Sequence[SplitOwner],
    rng: np.random.Generator,
    *,
    y_valid: np.ndarray | None = None,
) -> BoostingResult:
    """Boost trees over the parties behind ``provider`` and ``owners``.

    Parameters
    ----------
    params:
        The settings.
    layouts:
        Every party's layout, label holder first.
    y:
        Training labels (0/1, both present).
    provider, owners:
        Histogram source and the per-party split owners (same party order).
    rng:
        The session generator (row and characteristic sampling).
    y_valid:
        Validation labels (rows in the owners' validation order), for early stopping.

    Returns
    -------
    BoostingResult
    """
    if params.early_stopping_rounds is not None and (y_valid is None or len(y_valid) == 0):
        raise ConfigurationError("early_stopping_rounds needs a validation set (eval_set) with at least one row.")
    check_row_count(len(y))
    y_valid = np.zeros(0) if y_valid is None else np.asarray(y_valid)
    start = base_score(y)
    raw, raw_valid = np.full(len(y), start), np.full(len(y_valid), start)
    rows = NodeRows(np.arange(len(y)), np.arange(len(y_valid)))
    trees: list[Tree] = []
    importances = [Importance.empty([layout.n_features for layout in layouts])]
    train_loss: list[float] = []
    valid_loss: list[float] = []
    best = -1
    for t in range(params.n_estimators):
        sample = draw_tree_sample(rng, len(y), layouts, params, t)
        grown = _boost_one(params, layouts, y, raw, rows, provider, owners, sample)
        for value, leaf in grown.leaf_rows:
            raw[leaf.train] += value
            raw_valid[leaf.valid] += value
        trees.append(grown.tree)
        importances.append(importances[-1].plus(grown.splits))
        train_loss.append(log_loss(y, raw))
        if len(y_valid):
            valid_loss.append(log_loss(y_valid, raw_valid))
        best, stop = _early_stopping(valid_loss, best, params.early_stopping_rounds, t)
        if stop:
            break
    model = BoostedModel(start, trees[: best + 1], [layout.n_features for layout in layouts], importances[best + 1])
    return BoostingResult(model, best, train_loss, valid_loss, model.handle_counts())


def _early_stopping(valid_loss: list[float], best: int, rounds: int | None, t: int) -> tuple[int, bool]:
    """The best tree so far after tree ``t``, and whether patience ran out."""
    if rounds is None or t == 0 or valid_loss[-1] < valid_loss[best]:
        return t, False
    return best, t - best >= rounds


def _boost_one(params, layouts, y, raw, rows, provider, owners, sample: TreeSample):
    gradients = quantise_gradients(raw, y)
    provider.begin_tree(gradients, sample.rows, sample.features)
    in_sample = np.zeros(len(y), dtype=bool)
    in_sample[sample.rows] = True
    return grow_tree(params.growth(), layouts, gradients, rows, in_sample, sample.features, provider, owners)
