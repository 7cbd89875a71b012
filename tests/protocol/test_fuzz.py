"""A bounded, reproducible fuzz run of the codec.

Random bytes, valid frames of every message type mutated byte by byte, random msgpack
documents under real message headers, and deep nesting: ``decode`` either returns a
valid message or raises ProtocolError — never another exception — and no input costs
more memory than :func:`strategies.memory_bound` allows (measured with tracemalloc).

Hypothesis runs derandomized (a fixed seed per test) without its example database, so
every run tries the same few thousand inputs.
"""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskfed.errors import ProtocolError
from riskfed.protocol import codec
from riskfed.protocol.messages import MESSAGE_TYPES, Message

from .strategies import decode_with_peak, memory_bound, message_strategy

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STEPS = sorted(MESSAGE_TYPES)


def check(blob: bytes) -> None:
    """The property every input must satisfy."""
    outcome, peak = decode_with_peak(blob, max_bytes=1 << 24)
    if isinstance(outcome, Message):
        # Whatever decodes is a valid message: it encodes back to a frame that decodes
        # to the same fields.
        again = codec.decode(codec.encode(outcome))
        assert type(again) is type(outcome)
        for f in dataclasses.fields(outcome):
            assert repr(getattr(again, f.name)) == repr(getattr(outcome, f.name)), f.name
    else:
        assert isinstance(outcome, ProtocolError)
    assert peak <= memory_bound(len(blob)), (peak, len(blob))


# -- random bytes -----------------------------------------------------------------------
@settings(FUZZ, max_examples=1500)
@given(blob=st.binary(max_size=512))
def test_random_bytes(blob):
    check(blob)


@settings(FUZZ, max_examples=400)
@given(prefix=st.sampled_from([b"\x83\xa1v\x01\xa4type", b"\x83", b"\xde\x00\x03", b"\x83\xa1v\x01"]), tail=st.binary(max_size=256))
def test_random_bytes_behind_a_plausible_header(prefix, tail):
    check(prefix + tail)


# -- mutated valid frames -----------------------------------------------------------------
_HEADERS = [bytes([b]) for b in (0x80, 0x90, 0xA0, 0xC0, 0xC1, 0xC4, 0xCB, 0xD4, 0xDC, 0xDD, 0xDE, 0xDF)]
mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.one_of(st.sampled_from(_HEADERS), st.binary(min_size=1, max_size=8))),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 16)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 1 << 16), st.integers(1, 64)),
    st.tuples(st.just("length"), st.integers(0, 1 << 16), st.sampled_from([b"\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00"])),
)


def mutate(blob: bytes, edits) -> bytes:
    data = bytearray(blob)
    for op, at, arg in edits:
        i = at % (len(data) + 1)
        if op == "flip" and i < len(data):
            data[i] ^= arg
        elif op == "insert":
            data[i:i] = arg
        elif op == "delete":
            del data[i : i + arg]
        elif op == "truncate":
            del data[i:]
        elif op == "repeat":
            data[i:i] = data[i : i + arg] * 4
        elif op == "length" and i < len(data):
            data[i + 1 : i + 1 + len(arg)] = arg  # a length field claiming more than there is
    return bytes(data)


@settings(FUZZ, max_examples=1200)
@given(data=st.data(), step=st.sampled_from(STEPS), edits=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_frames_of_every_message_type(data, step, edits):
    message = data.draw(message_strategy(MESSAGE_TYPES[step]))
    check(mutate(codec.encode(message), edits))


# -- random documents under real headers -------------------------------------------------
msgpack_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),  # NaN and infinities included
        st.text(max_size=8),
        st.binary(max_size=16),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(-3, 3)), inner, max_size=5),
    ),
    max_leaves=10,
)
array_like = st.fixed_dictionaries(
    {"nd": st.sampled_from(["<i8", "|S32", "<f8", "|b1", "|O", 3]), "shape": st.lists(st.one_of(st.integers(-2, 2**64 - 1), st.booleans()), max_size=3), "b": st.binary(max_size=64)}
)


@settings(FUZZ, max_examples=500)
@given(data=st.data(), step=st.sampled_from(STEPS))
def test_random_fields_under_a_real_header(data, step):
    names = [spec.name for spec in codec._schema(MESSAGE_TYPES[step])]
    keep = data.draw(st.lists(st.sampled_from(names), unique=True, min_size=max(0, len(names) - 1), max_size=len(names)))
    fields = {name: data.draw(st.one_of(msgpack_values, array_like)) for name in keep}
    top = {"v": data.draw(st.sampled_from([1, 1, 1, 2, "1"])), "type": step, "f": fields}
    check(msgpack.packb(top, use_bin_type=True, strict_types=False))


# -- deep and wide nesting ------------------------------------------------------------------
@settings(FUZZ, max_examples=200)
@given(
    opener=st.sampled_from([b"\x91", b"\x92\xc0", b"\x81\xa1k", b"\xdc\x00\x01", b"\xdd\x00\x00\x00\x01", b"\xde\x00\x01\xa1k"]),
    depth=st.integers(1, 200_000),
    where=st.sampled_from(["top", "field"]),
)
def test_deep_nesting(opener, depth, where):
    bomb = opener * depth + b"\xc0"
    if where == "top":
        blob = bomb
    else:
        blob = codec.encode(MESSAGE_TYPES["session_open"](session_id="s", sender="bank", recipient="coordinator", round=0))
        blob = blob.replace(b"\xb0id_normalization\x80", b"\xb0id_normalization\x81\xa1x" + bomb)
    check(blob)


@pytest.mark.parametrize("kind", [b"\x80", b"\x90", b"\xa0", b"\xc0"])
@pytest.mark.parametrize("count", [1_000, 70_000, 1 << 22])
def test_wide_documents_of_empty_values(kind, count):
    head = b"\xdd" + count.to_bytes(4, "big")
    check(head + kind * count)
    check(b"\x81\xa1k" + head + kind * count)
