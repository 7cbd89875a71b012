"""Hostile frames: every malformed one is a ProtocolError, and none costs unbounded memory.

The shapes here are the ones an adversarial review sent: shapes whose element count
overflows int64, boolean or negative dimensions, a 2-D array where the field is 1-D,
non-finite numbers, dict fields of nested empty maps, documents nested 100,000 deep and
a 32 MiB ``SessionOpen`` where the step allows 8 MiB. Memory is measured with
tracemalloc around the one decode call; assertions are on bytes, never on time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import msgpack
import numpy as np
import pytest

from riskfed.errors import ProtocolError
from riskfed.protocol import codec
from riskfed.protocol.messages import (
    BatchRequest,
    EncryptedResiduals,
    EpochReport,
    Message,
    PartialScores,
    SessionOpen,
    TrainingPlan,
)
from riskfed.transport.network import NetworkLimits

from .strategies import MIB, decode_with_peak, memory_bound

HEADER = {"session_id": "s1", "sender": "bank", "recipient": "fintech_1", "round": 3}


def _raw(msg: Message) -> dict:
    return msgpack.unpackb(codec.encode(msg), raw=False)


def _pack(top) -> bytes:
    return msgpack.packb(top, use_bin_type=True)


def _refused(blob: bytes, reason: str, **kwargs) -> int:
    """Assert ``blob`` is refused with ``reason``; return the peak bytes the decode cost."""
    outcome, peak = decode_with_peak(blob, sender="fintech_1", **kwargs)
    assert isinstance(outcome, ProtocolError), outcome
    with pytest.raises(ProtocolError, match=reason):
        raise outcome
    assert peak <= memory_bound(len(blob)), (peak, len(blob))
    return peak


@dataclass(frozen=True)
class Grid(Message):
    """A test-only message with a 2-D field (no protocol message has one today)."""

    cells: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.int64), metadata={"ndim": 2})
    STEP: ClassVar[str] = "test_grid"


@pytest.fixture
def grid(monkeypatch):
    monkeypatch.setitem(codec.MESSAGE_TYPES, Grid.STEP, Grid)
    return Grid


# -- array shapes ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, data, reason",
    [
        ([2**62], b"", "field 'rows' has a bad shape"),
        ([2**63], b"", "field 'rows' has a bad shape"),
        ([2**64 - 1], b"", "field 'rows' has a bad shape"),
        ([True], np.zeros(1, np.int64).tobytes(), "field 'rows' has a bad shape"),
        ([-1], b"", "field 'rows' has a bad shape"),
        ([2.0], np.zeros(2, np.int64).tobytes(), "field 'rows' has a bad shape"),
        ([None], b"", "field 'rows' has a bad shape"),
        ([2, 2], np.zeros(4, np.int64).tobytes(), r"field 'rows' has 2 dimension\(s\); it takes 1"),
        ([], np.zeros(1, np.int64).tobytes(), r"field 'rows' has 0 dimension\(s\); it takes 1"),
        ([0, 2**63], b"", "field 'rows' has a bad shape"),
        ([1] * 40, np.zeros(1, np.int64).tobytes(), r"has 40 dimension\(s\)"),
    ],
)
def test_bad_shapes_are_protocol_errors(shape, data, reason):
    top = _raw(BatchRequest(**HEADER))
    top["f"]["rows"] = {"nd": "<i8", "shape": shape, "b": data}
    _refused(_pack(top), reason)


@pytest.mark.parametrize(
    "shape, data, reason",
    [
        ([2**62, 4], b"", "field 'cells' has a bad shape"),
        ([4, 2**62], np.zeros(4, np.int64).tobytes(), "field 'cells' has a bad shape"),
        # Within the per-dimension bound, yet 2^62 elements of 8 bytes: the count is
        # exact (no int64 wrap-around to 0), so it cannot match the empty buffer.
        ([2**31 - 1, 2**31 - 1], b"", r"field 'cells' has 0 bytes for shape \[2147483647, 2147483647\]"),
        ([2**31 - 1, 2**31 - 1], np.zeros(1, np.int64).tobytes(), "has 8 bytes for shape"),
        ([0, 2**63], b"", "field 'cells' has a bad shape"),
        ([2**31, 0], b"", "field 'cells' has a bad shape"),
        ([3], np.zeros(3, np.int64).tobytes(), r"has 1 dimension\(s\); it takes 2"),
    ],
)
def test_products_that_overflow_int64_are_protocol_errors(grid, shape, data, reason):
    top = {"v": 1, "type": grid.STEP, "f": {**HEADER, "cells": {"nd": "<i8", "shape": shape, "b": data}}}
    _refused(_pack(top), reason)


def test_a_declared_rank_is_honoured(grid):
    cells = np.arange(6, dtype=np.int64).reshape(2, 3)
    back = codec.decode(codec.encode(grid(**HEADER, cells=cells)))
    np.testing.assert_array_equal(back.cells, cells)
    empty = {"v": 1, "type": grid.STEP, "f": {**HEADER, "cells": {"nd": "<i8", "shape": [0, 2**31 - 1], "b": b""}}}
    assert codec.decode(_pack(empty)).cells.shape == (0, 2**31 - 1)


@pytest.mark.parametrize("nd", [5, b"<i8", None, ["<i8"]])
def test_a_dtype_that_is_not_a_string(nd):
    top = _raw(BatchRequest(**HEADER))
    top["f"]["rows"]["nd"] = nd
    _refused(_pack(top), "field 'rows' has dtype")


# -- numbers -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 3.0, True, "3", None])
def test_a_count_must_be_an_integer(value):
    top = _raw(EncryptedResiduals(**HEADER))
    top["f"]["count"] = value
    _refused(_pack(top), "field 'count' is not an integer")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_floats_must_be_finite(value):
    top = _raw(EpochReport(**HEADER))
    name = next(k for k, v in top["f"].items() if isinstance(v, float))
    top["f"][name] = value
    _refused(_pack(top), f"field '{name}' is not a finite number")
    scores = np.array([0.5, value])
    _refused(codec.encode(PartialScores(**HEADER, scores=scores, known=np.ones(2, bool))), "field 'scores' holds non-finite numbers")
    plan = _raw(TrainingPlan(**HEADER))
    plan["f"]["hyperparameters"] = {"learning_rate": value}
    _refused(_pack(plan), "hyperparameters.learning_rate is not a finite number")


# -- dict fields ------------------------------------------------------------------------
def _with_normalization(value) -> bytes:
    top = _raw(SessionOpen(**HEADER))
    top["f"]["id_normalization"] = value
    return _pack(top)


def _nested(depth: int):
    value: object = None
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "value, reason",
    [
        (_nested(9), "id_normalization is nested deeper than 8 levels"),
        ({"a": [[[[[[[[1]]]]]]]]}, "id_normalization is nested deeper than 8 levels"),
        ({"a": list(range(20_000))}, "id_normalization holds more than 16,384 values"),
        ({"k": "x" * 5000}, "id_normalization.k is longer than 4,096 characters"),
        ({"x" * 5000: 1}, "a key in id_normalization is longer than 4,096 characters"),
        ({"a": [1, {"b": b"raw"}]}, r"id_normalization.a\[1\].b holds a bytes"),
    ],
)
def test_dict_fields_are_small_json_documents(value, reason):
    _refused(_with_normalization(value), reason)


def test_a_small_document_within_the_bounds_is_kept():
    value = {"strip": True, "remove": " -", "nested": _nested(7), "list": list(range(100))}
    assert codec.decode(_with_normalization(value)).id_normalization == value


def test_repeated_keys_are_refused():
    # {"v": 1, "type": "ack", "type": "ack", "f": {...}} written by hand: msgpack itself
    # would let the last key win.
    ack = codec.encode(BatchRequest(**HEADER))
    top = _raw(BatchRequest(**HEADER))
    body = msgpack.packb(top["f"], use_bin_type=True)
    blob = b"\x84" + msgpack.packb("v") + msgpack.packb(1) + (msgpack.packb("type") + msgpack.packb("batch_request")) * 2
    blob += msgpack.packb("f") + body
    assert len(blob) > len(ack)
    _refused(blob, "a map repeats a key")


# -- structure bombs -----------------------------------------------------------------------
def test_eight_mib_of_empty_maps_cost_next_to_nothing():
    """The review's case: 8 MiB of empty maps in a dict field cost +578 MiB before."""
    n = 8 * MIB
    bomb = b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n  # array32 of n empty maps
    blob = _with_normalization({"x": None}).replace(b"\xa1x\xc0", b"\xa1x" + bomb)
    peak = _refused(blob, "an array of 8,388,608 entries")
    assert peak < MIB


def test_many_small_containers_within_one_frame_stay_bounded():
    """As many empty maps as the value limit allows: refused by the dict bound after a
    decode whose cost the value limit caps."""
    blob = _with_normalization({"x": [{} for _ in range(65_000)]})
    peak = _refused(blob, "id_normalization holds more than 16,384 values")
    assert peak < 16 * MIB
    blob = _with_normalization({"x": [{} for _ in range(70_000)]})
    assert _refused(blob, "an array of 70,000 entries|more than 65,536 values") < MIB


@pytest.mark.parametrize("opener", [b"\x91", b"\x81\xa1k", b"\xdc\x00\x01", b"\xde\x00\x01\xa1k"])
def test_deep_nesting_is_refused_before_unpacking(opener):
    depth = 100_000
    blob = _with_normalization({"x": None}).replace(b"\xa1x\xc0", b"\xa1x" + opener * depth + b"\xc0")
    assert _refused(blob, "containers nested deeper than 16 levels") < MIB


def test_a_32_mib_session_open_is_refused_by_its_step_limit_before_unpacking():
    """The review's case: a 32 MiB SessionOpen (limit 8 MiB) cost the coordinator 2.4 GB."""
    limits = NetworkLimits()
    top = _raw(SessionOpen(**HEADER))
    top["f"]["id_normalization"] = {"pad": "x" * 1000}
    top["f"]["session_id"] = b"\x00" * (32 * MIB)
    blob = _pack(top)
    peak = _refused(
        blob, r"A 'session_open' message from fintech_1 is 33,55\d,\d{3} bytes; the limit for this step is 8,388,608",
        max_bytes=limits.max_message_bytes, step_limit=limits.for_step,
    )
    assert peak < MIB


@pytest.mark.parametrize(
    "blob, reason",
    [
        (b"\xd4\x01\x00", "extension type"),
        (b"\xc7\x05\x01hello", "extension type"),
        (b"\x80\x80", "trailing bytes"),
        (b"\xdf\xff\xff\xff\xff", r"a map of 4,294,967,295 entries \(the limit is 65,536\)"),
        (b"\xdc\x10\x00\x01", r"an array of 4,096 entries in 1 bytes"),
        (b"\xdb\x7f\xff\xff\xff", r"a string of 2,147,483,647 bytes"),
        (b"\xc6\x7f\xff\xff\xff", r"a binary value of 2,147,483,647 bytes"),
        (b"\xda\x00\x05ab", "truncated"),
        (b"\xcb\x00", "truncated"),
        (b"\xdd\x00", "truncated"),
        (b"", "empty"),
    ],
)
def test_bad_msgpack_is_refused_by_the_scan(blob, reason):
    _refused(blob, reason, max_bytes=1 << 30)


def test_too_many_values_are_refused():
    top = _raw(SessionOpen(**HEADER))
    top["f"]["parties"] = ["a"] * 65_600
    _refused(_pack(top), r"an array of 65,600 entries \(the limit is 65,536\)")
    top["f"]["parties"] = ["a"] * 40_000
    top["f"]["id_normalization"] = {"b": ["b"] * 40_000}
    _refused(_pack(top), "more than 65,536 values")
    top["f"]["id_normalization"] = {}
    top["f"]["parties"] = ["a"] * 60_000  # within the limits: a (large) valid message
    assert len(codec.decode(_pack(top)).parties) == 60_000


def test_the_frame_header_must_match_the_message():
    blob = codec.encode(BatchRequest(**HEADER))
    assert codec.decode(blob, expect_step="batch_request").STEP == "batch_request"
    _refused(blob, "the frame header announces a 'ack' message, but it holds 'batch_request'", expect_step="ack")
