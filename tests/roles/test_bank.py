"""The bank's handling of a party service's TrafficReport (network runs)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from riskfed.errors import ProtocolError
from riskfed.protocol.codec import decode, encode
from riskfed.protocol.messages import TrafficReport
from riskfed.roles.bank import Bank


def report(**fields):
    base = dict(session_id="s", sender="fintech_1", recipient="bank", round=5)
    columns = dict(
        senders=("fintech_1", "coordinator"),
        recipients=("coordinator", "fintech_1"),
        steps=("masked_gradient", "decrypted_masked"),
        messages=np.array([3, 3], dtype=np.int64),
        sizes=np.array([300, 120], dtype=np.int64),
    )
    return TrafficReport(**(base | columns | fields))


def test_report_survives_the_wire_and_is_kept_as_rows():
    bank = types.SimpleNamespace(peer_traffic={})
    assert Bank._on_traffic_report(bank, decode(encode(report()))) == []
    assert bank.peer_traffic["fintech_1"] == [
        {"sender": "fintech_1", "recipient": "coordinator", "step": "masked_gradient", "messages": 3, "bytes": 300},
        {"sender": "coordinator", "recipient": "fintech_1", "step": "decrypted_masked", "messages": 3, "bytes": 120},
    ]


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"steps": ("masked_gradient",)}, "different lengths"),
        ({"sizes": np.array([300], dtype=np.int64)}, "different lengths"),
        ({"messages": np.array([3, -1], dtype=np.int64)}, "negative"),
    ],
)
def test_malformed_reports_are_refused(fields, match):
    bank = types.SimpleNamespace(peer_traffic={})
    with pytest.raises(ProtocolError, match=match):
        Bank._on_traffic_report(bank, report(**fields))
    assert bank.peer_traffic == {}
