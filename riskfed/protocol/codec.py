"""The one wire codec: msgpack maps with explicit, typed fields. Never pickle.

Layout of an encoded message (a msgpack map)::

    {"v": PROTOCOL_VERSION, "type": "<step>", "f": {field: value, ...}}

numpy arrays travel as ``{"nd": dtype, "shape": [...], "b": raw bytes}`` and only the
dtype the message type declares is accepted; ciphertexts are already fixed-width bytes.
Decoding validates the version, the type name, every field's presence and type, and the
total size, so a peer's garbage becomes a :class:`~riskfed.errors.ProtocolError`, never
an arbitrary object.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache

import msgpack
import numpy as np

from riskfed.errors import ProtocolError
from riskfed.protocol.messages import MESSAGE_TYPES, PROTOCOL_VERSION, Message

DEFAULT_MAX_MESSAGE_BYTES = 2**31 - 1


@cache
def _schema(cls: type[Message]) -> tuple[tuple[str, object, object], ...]:
    """(name, python type, default numpy dtype or None) per field."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        dtype = None
        if tp is np.ndarray:
            dtype = f.default_factory().dtype  # type: ignore[misc]
        out.append((f.name, tp, dtype))
    return tuple(out)


def _encode_value(value):
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"nd": arr.dtype.str, "shape": list(arr.shape), "b": arr.tobytes()}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def encode(message: Message) -> bytes:
    """Serialise a message to bytes."""
    fields = {name: _encode_value(getattr(message, name)) for name, _, _ in _schema(type(message))}
    return msgpack.packb({"v": PROTOCOL_VERSION, "type": message.STEP, "f": fields}, use_bin_type=True)


def _fail(reason: str, sender: str | None = None) -> ProtocolError:
    return ProtocolError(f"Malformed message{f' from {sender}' if sender else ''}: {reason}.", party=sender)


_JSON_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value, path: str, sender) -> None:
    """Dict fields hold JSON-like data only."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _fail(f"non-string key in {path}", sender)
            _check_plain(v, f"{path}.{k}", sender)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{path}[{i}]", sender)
    elif not isinstance(value, _JSON_SCALARS):
        raise _fail(f"{path} holds a {type(value).__name__}", sender)


def _decode_value(name: str, tp, dtype, raw, sender):
    if dtype is not None:
        if not (isinstance(raw, dict) and set(raw) == {"nd", "shape", "b"}):
            raise _fail(f"field {name!r} is not an array", sender)
        if raw["nd"] != np.dtype(dtype).str:
            raise _fail(f"field {name!r} has dtype {raw['nd']!r}, expected {np.dtype(dtype).str!r}", sender)
        shape = raw["shape"]
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise _fail(f"field {name!r} has a bad shape", sender)
        data = raw["b"]
        if not isinstance(data, bytes) or len(data) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise _fail(f"field {name!r} has {len(data) if isinstance(data, bytes) else '?'} bytes for shape {shape}", sender)
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not (isinstance(raw, list) and all(isinstance(x, str) for x in raw)):
            raise _fail(f"field {name!r} is not a list of strings", sender)
        return tuple(raw)
    if tp is dict:
        if not isinstance(raw, dict):
            raise _fail(f"field {name!r} is not a map", sender)
        _check_plain(raw, name, sender)
        return raw
    if tp is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise _fail(f"field {name!r} is not a number", sender)
        return float(raw)
    if tp is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _fail(f"field {name!r} is not an integer", sender)
        return raw
    if tp in (str, bytes, bool):
        if type(raw) is not tp:
            raise _fail(f"field {name!r} is not {tp.__name__}", sender)
        return raw
    raise _fail(f"field {name!r} has an unsupported type", sender)  # pragma: no cover


def decode(blob: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, sender: str | None = None) -> Message:
    """Parse and validate bytes from a peer into a message.

    Raises
    ------
    ProtocolError
        Oversized, not msgpack, unknown type, wrong version, missing or mistyped field.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise _fail("not bytes", sender)
    if len(blob) > max_bytes:
        raise ProtocolError(
            f"Message{f' from {sender}' if sender else ''} is {len(blob):,} bytes; the limit is {max_bytes:,}.",
            party=sender,
        )
    try:
        top = msgpack.unpackb(blob, raw=False, strict_map_key=True, max_bin_len=max_bytes, max_str_len=2**20)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise _fail(f"not a msgpack document ({type(exc).__name__})", sender) from None
    if not (isinstance(top, dict) and set(top) == {"v", "type", "f"}):
        raise _fail("missing header", sender)
    if top["v"] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"Message{f' from {sender}' if sender else ''} speaks protocol version {top['v']!r}; "
            f"this riskfed speaks {PROTOCOL_VERSION}.",
            party=sender,
        )
    cls = MESSAGE_TYPES.get(top["type"]) if isinstance(top["type"], str) else None
    if cls is None:
        raise _fail(f"unknown message type {top['type']!r}", sender)
    fields = top["f"]
    schema = _schema(cls)
    if not isinstance(fields, dict) or set(fields) != {name for name, _, _ in schema}:
        raise _fail(f"fields of {cls.STEP!r} do not match its schema", sender)
    values = {name: _decode_value(name, tp, dtype, fields[name], sender) for name, tp, dtype in schema}
    return cls(**values)
