"""The one wire codec: msgpack maps with explicit, typed fields. Never pickle.

Layout of an encoded message (a msgpack map)::

    {"v": PROTOCOL_VERSION, "type": "<step>", "f": {field: value, ...}}

numpy arrays travel as ``{"nd": dtype, "shape": [...], "b": raw bytes}``; only the
dtype and the rank (1 unless a field's metadata says ``ndim``) the message type declares
are accepted; ciphertexts are already fixed-width bytes.

Decoding a peer's bytes costs bounded memory and time, whatever they hold:

1. the total size is checked against ``max_bytes``;
2. a scan of the msgpack headers (:mod:`riskfed.protocol.framescan`), which builds no
   Python object, refuses more than ``max_objects`` values, containers nested deeper
   than ``max_depth``, longer containers or strings than the limits, extension types
   and truncated or trailing bytes; it also reads the message type, so a per-step size
   limit (``step_limit``) is applied before anything is unpacked;
3. msgpack unpacks with the same limits on arrays, maps, strings and binaries;
4. every field is validated: version, type name, presence, Python type, array dtype,
   rank and shape (the element count is computed exactly, without overflow), finite
   floats, and JSON-like dict fields of bounded depth, size and string length.

Whatever a peer sends, :func:`decode` returns a valid message or raises
:class:`~riskfed.errors.ProtocolError`, never another exception.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from functools import cache

import msgpack
import numpy as np

from riskfed.errors import ProtocolError
from riskfed.protocol.framescan import DEFAULT_LIMITS, DecodeLimits, FrameError, scan
from riskfed.protocol.messages import MESSAGE_TYPES, PROTOCOL_VERSION, Message

DEFAULT_MAX_MESSAGE_BYTES = 2**31 - 1
# Dict fields (hyper-parameters, the id normalisation rule) hold a few dozen plain
# values; these bounds leave ample room and refuse anything that is not a small document.
JSON_MAX_DEPTH = 8
JSON_MAX_ITEMS = 16_384
JSON_MAX_STR_LEN = 4096
# No array dimension on the wire comes near this (messages are < 2 GiB); the bound keeps
# every shape product inside numpy's int64 before numpy sees it.
MAX_DIMENSION = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    tp: object
    dtype: np.dtype | None = None
    ndim: int = 1


@cache
def _schema(cls: type[Message]) -> tuple[_Field, ...]:
    """Each field's name, Python type and, for arrays, dtype and rank."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if tp is np.ndarray:
            dtype = np.dtype(f.default_factory().dtype)  # type: ignore[misc]
            out.append(_Field(f.name, tp, dtype, int(f.metadata.get("ndim", 1))))
        else:
            out.append(_Field(f.name, tp))
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
    fields = {f.name: _encode_value(getattr(message, f.name)) for f in _schema(type(message))}
    return msgpack.packb({"v": PROTOCOL_VERSION, "type": message.STEP, "f": fields}, use_bin_type=True)


def _fail(reason: str, sender: str | None = None) -> ProtocolError:
    return ProtocolError(f"Malformed message{f' from {sender}' if sender else ''}: {reason}.", party=sender)


_JSON_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value, path: str, sender) -> None:
    """Dict fields hold JSON-like data only, of bounded depth, size and string length.

    Iterative (a deep document costs no Python recursion); a value's path is spelled
    out only for the error message.
    """
    items = 1
    stack: list[tuple[object, tuple, int]] = [(value, (), 0)]
    while stack:
        value, keys, depth = stack.pop()
        where = lambda: path + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)  # noqa: E731
        if isinstance(value, (dict, list)):
            if depth >= JSON_MAX_DEPTH:
                raise _fail(f"{path} is nested deeper than {JSON_MAX_DEPTH} levels", sender)
            items += len(value)
            if items > JSON_MAX_ITEMS:
                raise _fail(f"{path} holds more than {JSON_MAX_ITEMS:,} values", sender)
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in pairs:
                if isinstance(value, dict) and not isinstance(k, str):
                    raise _fail(f"non-string key in {where()}", sender)
                if isinstance(k, str) and len(k) > JSON_MAX_STR_LEN:
                    raise _fail(f"a key in {where()} is longer than {JSON_MAX_STR_LEN:,} characters", sender)
                stack.append((v, (*keys, k), depth + 1))
        elif not isinstance(value, _JSON_SCALARS):
            raise _fail(f"{where()} holds a {type(value).__name__}", sender)
        elif isinstance(value, float) and not math.isfinite(value):
            raise _fail(f"{where()} is not a finite number", sender)
        elif isinstance(value, str) and len(value) > JSON_MAX_STR_LEN:
            raise _fail(f"{where()} is longer than {JSON_MAX_STR_LEN:,} characters", sender)


def _decode_array(spec: _Field, raw, sender) -> np.ndarray:
    name, dtype = spec.name, spec.dtype
    if not (isinstance(raw, dict) and set(raw) == {"nd", "shape", "b"}):
        raise _fail(f"field {name!r} is not an array", sender)
    if raw["nd"] != dtype.str:
        raise _fail(f"field {name!r} has dtype {raw['nd']!r}, expected {dtype.str!r}", sender)
    shape = raw["shape"]
    if not (
        isinstance(shape, list)
        and all(type(s) is int and 0 <= s <= MAX_DIMENSION for s in shape)  # noqa: E721 - bool is not a size
    ):
        raise _fail(f"field {name!r} has a bad shape", sender)
    if len(shape) != spec.ndim:
        raise _fail(f"field {name!r} has {len(shape)} dimension(s); it takes {spec.ndim}", sender)
    data = raw["b"]
    # math.prod on Python ints is exact: a shape whose product overflows int64 cannot
    # match the byte count, and numpy never sees it.
    if not isinstance(data, bytes) or len(data) != math.prod(shape) * dtype.itemsize:
        raise _fail(f"field {name!r} has {len(data) if isinstance(data, bytes) else '?'} bytes for shape {shape}", sender)
    array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise _fail(f"field {name!r} holds non-finite numbers", sender)
    return array


def _decode_value(spec: _Field, raw, sender):
    name, tp = spec.name, spec.tp
    if spec.dtype is not None:
        return _decode_array(spec, raw, sender)
    if typing.get_origin(tp) is tuple:
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
        if not math.isfinite(raw):
            raise _fail(f"field {name!r} is not a finite number", sender)
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


def _too_large(size: int, limit: int, sender, step: str | None = None) -> ProtocolError:
    who = f" from {sender}" if sender else ""
    if step is None:
        return ProtocolError(f"Message{who} is {size:,} bytes; the limit is {limit:,}.", party=sender)
    return ProtocolError(f"A {step!r} message{who} is {size:,} bytes; the limit for this step is {limit:,}.", party=sender)


def decode(
    blob: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    sender: str | None = None,
    step_limit: typing.Callable[[str], int] | None = None,
    expect_step: str | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Message:
    """Parse and validate bytes from a peer into a message.

    Parameters
    ----------
    blob:
        The encoded message.
    max_bytes:
        Largest message accepted.
    sender:
        Who sent it (for error messages).
    step_limit:
        ``step_limit(step)`` → the size limit of a message of that step, checked once
        the scan has read the type and before anything is unpacked.
    expect_step:
        The step the frame header announced; a message of another step is refused.
    limits:
        Bounds of the structure scan (objects, depth, container and string lengths).

    Raises
    ------
    ProtocolError
        Oversized, too many values or too deep, not msgpack, unknown type, wrong
        version, missing or mistyped field, bad array shape, non-finite number.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise _fail("not bytes", sender)
    blob = bytes(blob)
    if len(blob) > max_bytes:
        raise _too_large(len(blob), max_bytes, sender)
    try:
        step = scan(blob, max_bin_len=max_bytes, limits=limits)
    except FrameError as exc:
        raise _fail(str(exc), sender) from None
    if expect_step is not None and step != expect_step:
        raise _fail(f"the frame header announces a {expect_step!r} message, but it holds {step!r}", sender)
    if step_limit is not None and step in MESSAGE_TYPES and len(blob) > step_limit(step):
        raise _too_large(len(blob), step_limit(step), sender, step)
    try:
        top = msgpack.unpackb(
            blob,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=_unique_keys,
            max_bin_len=max_bytes,
            max_str_len=limits.max_str_len,
            max_array_len=limits.max_container_len,
            max_map_len=limits.max_container_len,
            max_ext_len=0,
        )
    except FrameError as exc:
        raise _fail(str(exc), sender) from None
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise _fail(f"not a msgpack document ({type(exc).__name__})", sender) from None
    return _message(top, sender)


def _unique_keys(pairs: list[tuple]) -> dict:
    """A map from its pairs; a repeated key (which msgpack would silently let the last
    one win) is a malformed message."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise FrameError("a map repeats a key")
    return out


def _message(top, sender) -> Message:
    """The message a validated top-level map describes."""
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
    if not isinstance(fields, dict) or set(fields) != {f.name for f in schema}:
        raise _fail(f"fields of {cls.STEP!r} do not match its schema", sender)
    values = {}
    for spec in schema:
        try:
            values[spec.name] = _decode_value(spec, fields[spec.name], sender)
        except (ValueError, TypeError, OverflowError) as exc:  # a last belt: numpy's own refusals
            raise _fail(f"field {spec.name!r} cannot be decoded ({type(exc).__name__})", sender) from None
    return cls(**values)


__all__ = ["DEFAULT_LIMITS", "DEFAULT_MAX_MESSAGE_BYTES", "DecodeLimits", "decode", "encode"]
