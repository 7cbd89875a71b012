"""The plaintext twin of federated training (for tests and benchmarks).

:func:`fit_reference` runs exactly the arithmetic of the encrypted protocol — the same
fixed-point partial scores, residual plan, integer gradient sums, optimizer and batch
order (drawn from the same session seed) — with no encryption, masks or messages. A
federated run must reproduce its weights bit for bit; any difference is a bug in the
protocol or the kernels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from riskfed.learning.linear.fixed_point import encode_partial, encode_square, exact_column_sums
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.learning.linear.local import LocalModel
from riskfed.learning.linear.residuals import exact_residuals, plan_residuals
from riskfed.learning.linear.schedule import make_batches


def fit_reference(
    bank_X_q: np.ndarray,
    partner_X_q: Mapping[str, np.ndarray],
    y: np.ndarray,
    train_rows: np.ndarray,
    hyper: Hyperparameters,
    *,
    seed: int,
    cross_terms: bool = False,
) -> dict:
    """Train on quantised aligned matrices; return each party's final weights and history.

    Parameters
    ----------
    bank_X_q, partner_X_q:
        Quantised standardised features of the aligned rows (bank; fintech name → matrix).
    y:
        Labels of the aligned rows.
    train_rows:
        Aligned positions used for training.
    hyper:
        The hyper-parameters (``parties`` and ``steps_per_epoch`` are filled in here).
    seed:
        The session's seed, from which the bank drew the batch order: the bank role's
        :attr:`~riskfed.roles.bank.Bank.session_seed` (a fresh secret unless the run fixed
        ``random_state``).
    cross_terms:
        Use the exact ``(Σ_k u_k)²`` in the second-order term instead of the protocol's
        ``Σ_k u_k²`` — what the left-out cross terms would buy with several fintechs
        (``benchmarks/bench_cross_terms.py``). The encrypted protocol has no such option.
    """
    train_rows = np.sort(np.asarray(train_rows, dtype=np.int64))
    hyper = dataclasses.replace(hyper, parties=1 + len(partner_X_q))
    hyper = dataclasses.replace(hyper, steps_per_epoch=len(make_batches(train_rows, seed, 0, hyper)))
    bank = LocalModel(bank_X_q, hyper, train_rows, bias=True)
    partners = {name: LocalModel(X, hyper, train_rows) for name, X in partner_X_q.items()}
    history = []
    for epoch in range(hyper.max_epochs):
        for rows in make_batches(train_rows, seed, epoch, hyper):
            scores = {name: m.partial_scores(rows) for name, m in partners.items()}
            partner_sum = np.sum([encode_partial(u, party=n) for n, u in scores.items()], axis=0)
            if cross_terms:
                square_sum = encode_square(np.sum(list(scores.values()), axis=0), party="all fintechs")
            else:
                square_sum = np.sum([encode_square(u, party=n) for n, u in scores.items()], axis=0)
            plan = plan_residuals(bank.partial_scores(rows), y[rows], hyper.expansion)
            e_q = exact_residuals(plan, partner_sum, square_sum)
            bank.apply_gradient(exact_column_sums(bank.exponents(rows, None), e_q), len(rows))
            for m in partners.values():
                m.apply_gradient(exact_column_sums(m.exponents(rows, None), e_q), len(rows))
        change, norm = bank.end_epoch()
        for m in partners.values():
            c, w = m.end_epoch()
            change += c
            norm += w
        rel = float(np.sqrt(change / norm)) if norm > 0 else float("inf")
        history.append({"epoch": epoch + 1, "relative_change": rel})
        if epoch > 0 and rel < hyper.tol:
            break
    return {
        "bank": bank.final_weights.copy(),
        **{name: m.final_weights.copy() for name, m in partners.items()},
        "history": history,
    }
