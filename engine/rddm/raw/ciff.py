"""Make and model from Canon's CIFF container (.CRW), which EXIF readers do not parse."""

from __future__ import annotations

import struct
from pathlib import Path

_MAKE_MODEL = 0x080A
_SUBDIRECTORY_TYPES = (0x2800, 0x3000)
_MAX_DEPTH = 4


def _find_make_model(data: bytes, start: int, end: int, depth: int) -> bytes | None:
    if depth > _MAX_DEPTH or end - start < 6:
        return None
    (table,) = struct.unpack_from("<I", data, end - 4)
    table += start
    if not start <= table < end - 2:
        return None
    (count,) = struct.unpack_from("<H", data, table)
    for index in range(count):
        offset = table + 2 + 10 * index
        if offset + 10 > end:
            return None
        tag, size, value_offset = struct.unpack_from("<HII", data, offset)
        value_start, value_end = start + value_offset, start + value_offset + size
        if tag & 0xC000 or value_end > end:  # value stored in the entry itself, or out of range
            continue
        if tag & 0x3FFF == _MAKE_MODEL:
            return data[value_start:value_end]
        if tag & 0x3800 in _SUBDIRECTORY_TYPES:
            found = _find_make_model(data, value_start, value_end, depth + 1)
            if found:
                return found
    return None


def ciff_make_model(path: str | Path) -> tuple[str | None, str | None]:
    """(make, model) of a little-endian CIFF file, or (None, None) when it is not one."""
    data = Path(path).read_bytes()
    if len(data) < 26 or data[:2] != b"II" or data[6:14] != b"HEAPCCDR":
        return None, None
    (header_length,) = struct.unpack_from("<I", data, 2)
    try:
        record = _find_make_model(data, header_length, len(data), 0)
    except struct.error:
        return None, None
    if not record:
        return None, None
    parts = [p.decode("latin-1").strip() for p in record.split(b"\0") if p.strip()]
    return (parts[0] if parts else None), (parts[1] if len(parts) > 1 else None)
