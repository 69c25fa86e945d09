"""Native twins of ``processor.activity.activity_name`` and ``processor.subjects.partition_of``.

The twin is the specification; these give identical results, with less per-call overhead.
"""

from hashlib import sha256

from zlib import crc32

_HEX = b"0123456789abcdef"


def activity_name(str origin_type, str origin_id, str api_group, str kind):
    """``act-`` + the first 12 hex digits of sha256(type NUL id NUL apiGroup NUL kind)."""
    cdef bytes digest = sha256(
        (origin_type + "\x00" + origin_id + "\x00" + api_group + "\x00" + kind).encode()
    ).digest()
    cdef const unsigned char* d = digest
    cdef char out[16]
    cdef int i
    out[0] = 97; out[1] = 99; out[2] = 116; out[3] = 45  # act-
    for i in range(6):
        out[4 + 2 * i] = _HEX[d[i] >> 4]
        out[5 + 2 * i] = _HEX[d[i] & 15]
    return out[:16].decode("ascii")


def partition_of(str api_group, str resource, str namespace, str name, long count):
    """CRC-32 of ``g/r/ns/name`` (UTF-8, surrogatepass) modulo ``count``."""
    if count < 1:
        raise ValueError(f"partition count must be >= 1, got {count}")
    if count == 1:
        return 0
    key = (api_group + "/" + resource + "/" + namespace + "/" + name).encode(
        "utf-8", "surrogatepass"
    )
    return crc32(key) % count
