"""Gradient-boosted trees in plaintext: integer histograms, split search, tree growth.

The core that a federated boosting protocol reuses unchanged: histograms come from
pluggable providers (a party's own rows, or encrypted sums from another party), and each
split is held by the party that owns its characteristic (others see only a handle).
:class:`~riskfed.learning.trees.estimator.GradientBoostedTrees` is the single-process
estimator on top.
"""
