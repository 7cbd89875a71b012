"""Number formats shared by every page."""

from __future__ import annotations

import math

import pytest

from riskfed.ui import format as fmt


@pytest.mark.parametrize(
    ("func", "value", "expected"),
    [
        (fmt.count, 5000, "5,000"),
        (fmt.count, None, "–"),
        (fmt.percent, 0.7, "70.0%"),
        (fmt.percent, math.nan, "–"),
        (fmt.probability, 0.064, "6.4%"),
        (fmt.probability, 0.0042, "0.42%"),
        (fmt.decimal, 0.84253, "0.843"),
        (fmt.signed, 0.128, "+0.128"),
        (fmt.signed, -0.01, "−0.010"),
        (fmt.points, 564.5, "564 pts"),
        (fmt.points, 1234.0, "1,234 pts"),
        (fmt.lift, 2.345, "2.35×"),
        (fmt.data_size, 512, "512 B"),
        (fmt.data_size, 1_930_000, "1.9 MB"),
        (fmt.data_size, 15_400, "15.4 kB"),
        (fmt.data_size, 2_500_000_000, "2.5 GB"),
        (fmt.duration, 0.84, "0.8 s"),
        (fmt.duration, 12.3, "12 s"),
        (fmt.duration, 65, "1 min 05 s"),
        (fmt.duration, 3725, "1 h 02 min"),
        (fmt.duration, None, "–"),
    ],
)
def test_formats(func, value, expected):
    assert func(value) == expected


def test_party_names():
    assert fmt.party("bank") == "Bank"
    assert fmt.party("coordinator") == "Coordinator"
    assert fmt.party("fintech_2") == "Fintech 2"


def test_column_label_and_fingerprint():
    assert fmt.column_label("debt_to_income") == "Debt to income"
    assert fmt.key_fingerprint("ab12cd34ef567890") == "ab12 cd34 ef56 7890"
    assert fmt.key_fingerprint(None) == "–"
