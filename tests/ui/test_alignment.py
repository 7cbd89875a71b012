"""The Align page's overlap check."""

from __future__ import annotations

import pytest

from riskfed.errors import AlignmentError, ConfigurationError
from riskfed.session.progress import Cancelled
from riskfed.ui.alignment import check_overlap
from riskfed.ui.data import generate_pilot_bundle


@pytest.mark.parametrize("method", ["ecdh", "keyed-hash"])
def test_counts_match_the_training_session(ui_bundle, ui_run, method):
    events = []
    summary = check_overlap(ui_bundle.bank, list(ui_bundle.fintechs), method=method, progress=events.append)
    report = ui_run[1].report["alignment"]
    assert summary.method == method
    assert summary.bank_rows == report["bank_rows"] == 2000
    assert list(summary.fintech_rows.values()) == report["fintech_rows"]
    assert summary.intersection == report["intersection"] == 1400
    assert summary.match_rate == pytest.approx(0.7)
    assert summary.pairwise == {"fintech_1": 1400}
    assert summary.fintech_share("fintech_1") == pytest.approx(1400 / summary.fintech_rows["fintech_1"])
    assert events[-1].done == events[-1].total and "1,400 shared customers" in events[-1].message
    assert "case-fold" in summary.normalization


def test_two_fintechs_pairwise_and_common_overlap():
    bundle = generate_pilot_bundle(1000, overlap=0.6, fintechs=2, seed=1)
    summary = check_overlap(bundle.bank, list(bundle.fintechs), method="keyed-hash")
    assert set(summary.pairwise) == {"fintech_1", "fintech_2"}
    assert summary.intersection <= min(summary.pairwise.values())


def test_too_small_overlap_is_a_readable_error(ui_bundle):
    with pytest.raises(AlignmentError, match="bank"):
        check_overlap(ui_bundle.bank, list(ui_bundle.fintechs), method="keyed-hash", min_intersection=5000)


def test_cancel_and_unknown_method(ui_bundle):
    with pytest.raises(Cancelled, match="cancelled"):
        check_overlap(ui_bundle.bank, list(ui_bundle.fintechs), cancel=lambda: True)
    with pytest.raises(ConfigurationError, match="must be one of ecdh, keyed-hash"):
        check_overlap(ui_bundle.bank, list(ui_bundle.fintechs), method="plain")
