"""A bounded scan of msgpack bytes before anything is unpacked.

msgpack turns every value into a Python object: a few bytes per empty map on the wire
become a dict of 64 bytes or more in memory, so 8 MiB of nested empty maps would cost
hundreds of MiB before any field check could refuse them. :func:`scan` reads only the
type headers and lengths, builds no Python object, and refuses a document that has

* more values in total than ``max_objects`` (it stops counting at the limit, so its
  own cost is bounded too),
* containers nested deeper than ``max_depth``,
* an array or map longer than ``max_container_len`` or than the bytes left could hold,
* a string longer than ``max_str_len`` or binary data longer than ``max_bin_len``,
* an extension type (riskfed uses none), the reserved byte ``0xc1``, truncated or
  trailing bytes.

It also returns the message type (the string value of key ``"type"`` in the top-level
map) so that a per-step size limit can refuse a message before it is unpacked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "DecodeLimits", "FrameError", "scan"]


class FrameError(ValueError):
    """The bytes are not a well-formed, bounded msgpack document (internal to the codec)."""


@dataclass(frozen=True)
class DecodeLimits:
    """Structure bounds for decoding one message.

    Parameters
    ----------
    max_objects:
        Values in the whole document (every scalar, string, binary and container counts
        one). A training message holds a few dozen; a traffic report a few per link.
    max_depth:
        Container nesting (the message map, its field map and a dict field's own levels).
    max_container_len:
        Entries of one array or pairs of one map.
    max_str_len:
        Bytes of one UTF-8 string.
    """

    max_objects: int = 65_536
    max_depth: int = 16
    max_container_len: int = 65_536
    max_str_len: int = 1 << 20


DEFAULT_LIMITS = DecodeLimits()

_UNPACK = {1: struct.Struct(">B").unpack_from, 2: struct.Struct(">H").unpack_from, 4: struct.Struct(">I").unpack_from}
# Fixed-size scalars: first byte → total size in bytes (nil, bools, floats, ints).
_FIXED = {0xC0: 1, 0xC2: 1, 0xC3: 1, 0xCA: 5, 0xCB: 9}
_FIXED.update({0xCC + i: 1 + (1 << i) for i in range(4)})  # uint8 … uint64
_FIXED.update({0xD0 + i: 1 + (1 << i) for i in range(4)})  # int8 … int64
_SCALAR, _STR, _BIN, _ARRAY, _MAP = range(5)
_TRUNCATED = "not a msgpack document (truncated)"
_LENGTH_BYTES = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}


def _header(blob: bytes, pos: int) -> tuple[int, int, int]:
    """(kind, header size, count or payload length) of the value at ``pos``."""
    b = blob[pos]
    if b <= 0x7F or b >= 0xE0:
        return _SCALAR, 1, 0
    if b <= 0x8F:
        return _MAP, 1, b & 0x0F
    if b <= 0x9F:
        return _ARRAY, 1, b & 0x0F
    if b <= 0xBF:
        return _STR, 1, b & 0x1F
    if b in _FIXED:
        return _SCALAR, _FIXED[b], 0
    width = _LENGTH_BYTES.get(b)
    if width is None:  # 0xc1 (never used) and the extension types
        raise FrameError(f"not a msgpack document riskfed sends (byte 0x{b:02x}: an extension type or reserved)")
    if pos + 1 + width > len(blob):
        raise FrameError(_TRUNCATED)
    n = _UNPACK[width](blob, pos + 1)[0]
    kind = _BIN if b <= 0xC6 else _STR if b <= 0xDB else _ARRAY if b <= 0xDD else _MAP
    return kind, 1 + width, n


def _container(kind: int, n: int, room: int, depth: int, limits: DecodeLimits) -> int:
    """The values an array or map of ``n`` entries holds, once it passes the bounds."""
    entries = 2 * n if kind == _MAP else n
    what = "a map" if kind == _MAP else "an array"
    if n > limits.max_container_len:
        raise FrameError(f"{what} of {n:,} entries (the limit is {limits.max_container_len:,})")
    if entries > room:  # every value takes at least one byte
        raise FrameError(f"{what} of {n:,} entries in {room:,} bytes")
    if depth >= limits.max_depth:
        raise FrameError(f"containers nested deeper than {limits.max_depth} levels")
    return entries


def scan(blob: bytes, *, max_bin_len: int, limits: DecodeLimits = DEFAULT_LIMITS) -> str | None:
    """Check the structure of one msgpack document; return its top-level ``"type"``.

    Raises
    ------
    FrameError
        Any bound exceeded, a malformed or truncated document, or trailing bytes.
    """
    size, pos, objects = len(blob), 0, 0
    stack: list[int] = []  # values still to read in each open container
    root_entries = 0  # entries of the top-level map (0: the top level is not a map)
    type_key_at, step = -2, None  # where the "type" key is in the top-level map; its value
    while True:
        if pos >= size:
            raise FrameError(_TRUNCATED if size else "not a msgpack document (empty)")
        objects += 1
        if objects > limits.max_objects:
            raise FrameError(f"more than {limits.max_objects:,} values")
        kind, head, n = _header(blob, pos)
        start = pos + head
        if kind >= _ARRAY:
            entries = _container(kind, n, size - start, len(stack), limits)
            pos = start
            if objects == 1 and kind == _MAP:
                root_entries = entries
            if entries:
                stack.append(entries)
                continue
        else:
            cap = limits.max_str_len if kind == _STR else max_bin_len if kind == _BIN else n
            if n > cap:
                what = "string" if kind == _STR else "binary value"
                raise FrameError(f"a {what} of {n:,} bytes (the limit is {cap:,})")
            pos = start + n
            if pos > size:
                raise FrameError(_TRUNCATED)
            if kind == _STR and root_entries and len(stack) == 1:
                index = root_entries - stack[0]  # position of this string in the top-level map
                if index % 2 == 0 and blob[start:pos] == b"type":
                    type_key_at = index
                elif index == type_key_at + 1 and n <= 64:
                    step = blob[start:pos].decode("utf-8", "replace")
        # One value is complete: close every container it completes.
        while stack:
            stack[-1] -= 1
            if stack[-1]:
                break
            stack.pop()
        if not stack:
            break
    if pos != size:
        raise FrameError(f"not a msgpack document ({size - pos:,} trailing bytes)")
    return step
