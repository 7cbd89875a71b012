"""The learning maths under the roles: plaintext, no messages, no I/O.

* :mod:`riskfed.learning.linear` — vertical logistic regression: the training plan's
  hyper-parameters, the fixed-point encodings and mask widths, the residual expansion,
  each party's local optimiser and the plaintext twin of the encrypted protocol.
* :mod:`riskfed.learning.trees` — the gradient-boosted tree core.

The roles (:mod:`riskfed.roles`) run the same functions on the values they hold, so the
encrypted protocol and the plaintext twin agree bit for bit.
"""
