"""Hypothesis strategies for protocol messages (shared by the codec tests and the fuzz run).

Every generated message is valid: arrays have the dtype and rank their field declares,
floats are finite, dict fields are small JSON-like documents.
"""

from __future__ import annotations

import typing

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from riskfed.protocol import codec
from riskfed.protocol.messages import Message

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_like = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _array_strategy(dtype: np.dtype, ndim: int):
    if dtype.kind == "S":
        # numpy strips trailing NULs from an element (the buffer keeps them; see
        # test_digests_with_trailing_zero_bytes_survive).
        elements = st.binary(min_size=dtype.itemsize - 1, max_size=dtype.itemsize - 1).map(lambda b: b + b"\x01")
    elif dtype.kind == "f":
        elements = st.floats(allow_nan=False, allow_infinity=False, width=64)
    else:
        elements = None
    return arrays(dtype, array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=5), elements=elements)


def _field_strategy(spec):
    tp = spec.tp
    if spec.dtype is not None:
        return _array_strategy(spec.dtype, spec.ndim)
    if typing.get_origin(tp) is tuple:
        return st.lists(st.text(max_size=12), max_size=4).map(tuple)
    if tp is dict:
        return st.dictionaries(st.text(max_size=8), json_like, max_size=4)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is int:
        return st.integers(-(2**63), 2**64 - 1)
    if tp is bool:
        return st.booleans()
    if tp is bytes:
        return st.binary(max_size=300)
    if tp is str:
        return st.text(max_size=40)
    raise AssertionError(f"no strategy for {tp}")


def message_strategy(cls: type[Message]):
    """Valid messages of type ``cls`` (arrays of the rank and dtype the codec declares)."""
    fields = {spec.name: _field_strategy(spec) for spec in codec._schema(cls)}
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


# -- memory ------------------------------------------------------------------------------
MIB = 1 << 20


def decode_with_peak(blob: bytes, **kwargs):
    """``(message or ProtocolError, peak bytes allocated)`` of one :func:`codec.decode`.

    The peak is measured with ``tracemalloc`` (Python objects, msgpack's and numpy's
    buffers) from the allocations live just before the call.
    """
    import tracemalloc

    from riskfed.errors import ProtocolError

    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            outcome = codec.decode(blob, **kwargs)
        except ProtocolError as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()


def memory_bound(size: int) -> int:
    """What decoding ``size`` bytes may cost at most: a few copies of the bytes (msgpack's
    binaries, numpy's arrays) plus ~128 bytes per value, whose count the scan caps."""
    return 2 * MIB + 4 * size + 128 * min(size, 65_536)
