"""The wire codec: every message type round-trips; a peer's garbage is a ProtocolError."""

from __future__ import annotations

import dataclasses
import pickle
import typing

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.protocol import codec
from riskfed.protocol.messages import (
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Ack,
    BatchRequest,
    EncryptedScores,
    EpochReport,
    Message,
    PartialScores,
    SessionOpen,
    TrainingPlan,
)
from riskfed.errors import ProtocolError

from .strategies import message_strategy

# A float field of EpochReport, whatever the protocol currently calls it.
FLOAT_FIELD = next(f.name for f in dataclasses.fields(EpochReport) if typing.get_type_hints(EpochReport)[f.name] is float)
HEADER = {"session_id": "s1", "sender": "bank", "recipient": "fintech_1", "round": 3}


def assert_same_message(a: Message, b: Message) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray)
            assert x.dtype == y.dtype and x.shape == y.shape
            assert np.array_equal(x, y)
            assert y.flags.writeable  # a private copy, not a view of the wire buffer
        else:
            assert type(x) is type(y), f.name
            assert x == y, f.name


@pytest.mark.parametrize("step", sorted(MESSAGE_TYPES))
def test_every_message_type_round_trips(step):
    cls = MESSAGE_TYPES[step]

    @settings(max_examples=25)
    @given(msg=message_strategy(cls))
    def check(msg):
        blob = codec.encode(msg)
        assert isinstance(blob, bytes)
        assert_same_message(codec.decode(blob), msg)

    check()


@pytest.mark.parametrize("step", sorted(MESSAGE_TYPES))
def test_default_messages_round_trip_and_are_not_pickles(step):
    msg = MESSAGE_TYPES[step](**HEADER)
    blob = codec.encode(msg)
    assert not blob.startswith(b"\x80")  # pickle protocol ≥ 2 opcode
    top = msgpack.unpackb(blob, raw=False)
    assert top["v"] == PROTOCOL_VERSION and top["type"] == step
    assert_same_message(codec.decode(blob), msg)


def test_message_types_are_unique_and_frozen():
    assert len(MESSAGE_TYPES) == len({cls.STEP for cls in MESSAGE_TYPES.values()})
    msg = Ack(**HEADER)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        msg.round = 4  # type: ignore[misc]


# -- decode refuses garbage ------------------------------------------------------------
def _raw(msg: Message) -> dict:
    return msgpack.unpackb(codec.encode(msg), raw=False)


def _pack(top: dict) -> bytes:
    return msgpack.packb(top, use_bin_type=True)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\xc1", b"\xc1\xc1garbage", b"\x93\x01\x02", b"not msgpack at all \xff\xfe", b"\x85"],
)
def test_garbage_bytes(blob):
    with pytest.raises(ProtocolError, match="Malformed message from fintech_1"):
        codec.decode(blob, sender="fintech_1")


@settings(max_examples=200)
@given(blob=st.binary(max_size=64))
def test_random_bytes_never_escape_as_other_errors(blob):
    try:
        msg = codec.decode(blob)
    except ProtocolError:
        return
    assert isinstance(msg, Message)  # astronomically unlikely, but then it must be valid


def test_pickle_is_refused():
    blob = pickle.dumps(Ack(**HEADER))
    with pytest.raises(ProtocolError, match="Malformed message"):
        codec.decode(blob)


def test_not_bytes():
    with pytest.raises(ProtocolError, match="not bytes"):
        codec.decode("a string")  # type: ignore[arg-type]


def test_unknown_type():
    top = _raw(Ack(**HEADER))
    top["type"] = "exec_code"
    with pytest.raises(ProtocolError, match="unknown message type 'exec_code'"):
        codec.decode(_pack(top))
    top["type"] = 7
    with pytest.raises(ProtocolError, match="unknown message type 7"):
        codec.decode(_pack(top))


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_wrong_version(version):
    top = _raw(Ack(**HEADER))
    top["v"] = version
    with pytest.raises(ProtocolError, match=rf"speaks protocol version {version!r}; this riskfed speaks {PROTOCOL_VERSION}"):
        codec.decode(_pack(top), sender="bank")


def test_missing_header_or_extra_keys():
    top = _raw(Ack(**HEADER))
    with pytest.raises(ProtocolError, match="missing header"):
        codec.decode(_pack({"v": 1, "type": "ack"}))
    with pytest.raises(ProtocolError, match="missing header"):
        codec.decode(_pack(top | {"extra": 1}))
    with pytest.raises(ProtocolError, match="missing header"):
        codec.decode(_pack([1, "ack", {}]))


def test_missing_or_extra_field():
    top = _raw(EpochReport(**HEADER))
    del top["f"]["epoch"]
    with pytest.raises(ProtocolError, match="fields of 'epoch_report' do not match its schema"):
        codec.decode(_pack(top))
    top = _raw(EpochReport(**HEADER))
    top["f"]["payload"] = b"x"
    with pytest.raises(ProtocolError, match="fields of 'epoch_report' do not match its schema"):
        codec.decode(_pack(top))


@pytest.mark.parametrize(
    "cls, field, value, reason",
    [
        (Ack, "round", "3", "field 'round' is not an integer"),
        (Ack, "round", True, "field 'round' is not an integer"),
        (Ack, "round", 3.0, "field 'round' is not an integer"),
        (Ack, "session_id", 5, "field 'session_id' is not str"),
        (EpochReport, FLOAT_FIELD, "0.1", f"field '{FLOAT_FIELD}' is not a number"),
        (EpochReport, FLOAT_FIELD, False, f"field '{FLOAT_FIELD}' is not a number"),
        (EncryptedScores, "ciphertexts", "abc", "field 'ciphertexts' is not bytes"),
        (SessionOpen, "allow_insecure_key", 1, "field 'allow_insecure_key' is not bool"),
        (SessionOpen, "parties", ["bank", 3], "field 'parties' is not a list of strings"),
        (SessionOpen, "parties", "bank", "field 'parties' is not a list of strings"),
        (SessionOpen, "id_normalization", [1], "field 'id_normalization' is not a map"),
        (SessionOpen, "id_normalization", {"a": b"bytes"}, "id_normalization.a holds a bytes"),
        (TrainingPlan, "hyperparameters", {"slots": {"bank": [1, b"x"]}}, r"hyperparameters.slots.bank\[1\] holds a bytes"),
        (BatchRequest, "rows", [1, 2, 3], "field 'rows' is not an array"),
    ],
)
def test_wrong_field_type(cls, field, value, reason):
    top = _raw(cls(**HEADER))
    top["f"][field] = value
    with pytest.raises(ProtocolError, match=rf"Malformed message from bank: {reason}"):
        codec.decode(_pack(top), sender="bank")


def test_non_string_key_in_a_map():
    top = _raw(TrainingPlan(**HEADER))
    blob = msgpack.packb(
        {"v": top["v"], "type": top["type"], "f": top["f"] | {"hyperparameters": {1: "x"}}}, use_bin_type=True
    )
    with pytest.raises(ProtocolError, match="Malformed message"):
        codec.decode(blob)


@pytest.mark.parametrize("dtype", ["<i4", "<f8", "|O", "<u8", ">i8"])
def test_wrong_ndarray_dtype(dtype):
    msg = BatchRequest(**HEADER, rows=np.arange(4, dtype=np.int64))
    top = _raw(msg)
    top["f"]["rows"]["nd"] = dtype
    with pytest.raises(ProtocolError, match=rf"field 'rows' has dtype '{dtype}', expected '<i8'"):
        codec.decode(_pack(top))


def test_float_array_sent_where_int_expected():
    top = _raw(BatchRequest(**HEADER))
    top["f"]["rows"] = {"nd": "<f8", "shape": [2], "b": np.array([0.5, 1.5]).tobytes()}
    with pytest.raises(ProtocolError, match=r"field 'rows' has dtype '<f8', expected '<i8'"):
        codec.decode(_pack(top))


@pytest.mark.parametrize(
    "shape, data, reason",
    [
        ([3], np.arange(4, dtype=np.int64).tobytes(), r"field 'rows' has 32 bytes for shape \[3\]"),
        ([-1], b"", "field 'rows' has a bad shape"),
        ("4", b"", "field 'rows' has a bad shape"),
        ([4], "text", r"field 'rows' has \? bytes"),
    ],
)
def test_inconsistent_ndarray(shape, data, reason):
    top = _raw(BatchRequest(**HEADER))
    top["f"]["rows"] = {"nd": "<i8", "shape": shape, "b": data}
    with pytest.raises(ProtocolError, match=reason):
        codec.decode(_pack(top))


def test_extra_keys_in_an_ndarray_are_refused():
    top = _raw(BatchRequest(**HEADER))
    top["f"]["rows"]["py/object"] = "os.system"
    with pytest.raises(ProtocolError, match="field 'rows' is not an array"):
        codec.decode(_pack(top))


def test_oversized_message():
    msg = EncryptedScores(**HEADER, ciphertexts=b"\x01" * 5000, count=1)
    blob = codec.encode(msg)
    with pytest.raises(ProtocolError, match=rf"Message from fintech_1 is {len(blob):,} bytes; the limit is 4,096"):
        codec.decode(blob, max_bytes=4096, sender="fintech_1")
    assert codec.decode(blob, max_bytes=len(blob)).ciphertexts == msg.ciphertexts


def test_partial_scores_keep_float_dtype_exactly():
    scores = np.array([0.1, -2.5e-300, 1e308, -0.0])
    msg = PartialScores(**HEADER, scores=scores, known=np.array([True, False, True, True]))
    back = codec.decode(codec.encode(msg))
    assert back.scores.tobytes() == scores.tobytes()
    assert back.known.dtype == np.bool_


def test_digests_with_trailing_zero_bytes_survive():
    raw = bytes(range(1, 31)) + b"\x00\x00" + b"\x00" * 32
    digests = np.frombuffer(raw, dtype="S32")
    back = codec.decode(codec.encode(BatchRequest(**HEADER)))  # sanity: default arrays too
    assert back.rows.shape == (0,)
    from riskfed.protocol.messages import HashedIds

    out = codec.decode(codec.encode(HashedIds(**HEADER, digests=digests)))
    assert out.digests.tobytes() == raw
