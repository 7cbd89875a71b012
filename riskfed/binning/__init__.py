"""Binning, weight of evidence and information value, each party on its own table.

The plaintext foundation of riskfed's scorecard (formulas in ``docs/scorecard.md``)::

    from riskfed.binning import PartyBinner, plan_merges

    fintech = PartyBinner("fintech_1").fit(fintech_features)          # label-free
    bank = PartyBinner("bank", method="optimal").fit(bank_features, y)  # optbinning
    bank_woe = bank.woe(bank_features)
    fintech_ind = fintech.indicators(fintech_features)

Modules: :mod:`~riskfed.binning.bins` (a characteristic's bins, assignment, merges),
:mod:`~riskfed.binning.prebin` (label-free), :mod:`~riskfed.binning.optimal`
(optbinning, merges from counts), :mod:`~riskfed.binning.woe` (WOE, IV, selection),
:mod:`~riskfed.binning.stability` (CSI), :mod:`~riskfed.binning.export` (SQL, JSON),
:mod:`~riskfed.binning.party` (one party's estimator).
"""

from riskfed.binning.bins import Bin, Characteristic
from riskfed.binning.export import json_table, sql_case, sql_select
from riskfed.binning.optimal import MONOTONIC_TRENDS, optimal_merge, optimal_numeric, plan_merges
from riskfed.binning.party import BinCodes, PartyBinner
from riskfed.binning.prebin import prebin_categorical, prebin_numeric, quantile_cuts
from riskfed.binning.stability import CharacteristicStability, stability_band, stability_index
from riskfed.binning.woe import BinStatistics, IVSelection, iv_strength, select_by_iv, woe_iv

__all__ = [
    "MONOTONIC_TRENDS",
    "Bin",
    "BinCodes",
    "BinStatistics",
    "Characteristic",
    "CharacteristicStability",
    "IVSelection",
    "PartyBinner",
    "iv_strength",
    "json_table",
    "optimal_merge",
    "optimal_numeric",
    "plan_merges",
    "prebin_categorical",
    "prebin_numeric",
    "quantile_cuts",
    "select_by_iv",
    "sql_case",
    "sql_select",
    "stability_band",
    "stability_index",
    "woe_iv",
]
