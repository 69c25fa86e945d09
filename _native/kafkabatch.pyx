# cython: boundscheck=False, wraparound=False, cdivision=True
# distutils: libraries = dl pthread
"""Native twin of ``processor.kafka.batches``: Kafka record sets decoded into deliveries.

The pure-Python module ``processor/kafka/batches.py`` is the specification (same functions,
same results, same reasons); this file only makes it fast, and lets the decode thread run while
the event loop does. What runs in C without the GIL (``kafkabatch.h``): the walk over the
batches, CRC-32C (SSE4.2 or a table), zstd and lz4 decompression (libzstd.so.1, liblz4.so.1
opened at import), the varint parsing of the records into spans. With the GIL: gzip and snappy
(aiokafka's Python codecs, as zstd and lz4 when their library is missing), and one pass at the
end that makes the bytes and the :class:`KafkaDelivery` objects.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int32_t, int64_t, uint32_t
from libc.string cimport memset

from processor.kafka.batches import MAX_DECOMPRESSED, UnsupportedBatch

cdef extern from "kafkabatch.h" nogil:
    int KB_DONE, KB_NEED_PY, KB_NO_MEMORY
    ctypedef struct kb_span:
        int64_t offset
        const unsigned char* key
        const unsigned char* value
        int64_t key_len
        int64_t value_len
    ctypedef struct kb_state:
        const unsigned char* data
        size_t size
        int check_crcs
        int hw_crc
        size_t pos
        kb_span* spans
        size_t n
        int64_t corrupt_at
        int corrupt
        char reason[192]
        int codec
        size_t payload
        size_t batch_end
        const unsigned char* given
        size_t given_len
        int has_given
    void kb_crc_init()
    void kb_codecs_init()
    uint32_t kb_crc32c(const unsigned char* p, size_t n, int hw)
    int kb_headers(const unsigned char* data, size_t size, int* found, int64_t* last_base,
                   int32_t* last_delta, int64_t* legacy_base, int* legacy_magic,
                   int64_t* short_pos, int32_t* short_len)
    int kb_run(kb_state* st)
    void kb_free(kb_state* st)
    void kb_set_expected(kb_state* st, int64_t value)
    void kb_set_force_python(int flag)
    const char* kb_codec_name(int codec)
    int kb_native_codec(int codec)

kb_crc_init()
kb_codecs_init()

_PYTHON_CODECS = {}


cdef object _python_codec(int codec):
    """aiokafka's decode function of ``codec`` (imported on first use)."""
    fn = _PYTHON_CODECS.get(codec)
    if fn is None:
        from aiokafka import codec as kc

        fn = getattr(kc, kb_codec_name(codec).decode() + "_decode")
        _PYTHON_CODECS[codec] = fn
    return fn


@cython.freelist(256)
@cython.no_gc
cdef class KafkaDelivery:
    """One Kafka input record as the pipeline sees it (:class:`~processor.transport.Message`).

    ``chunk`` is shared by the deliveries of one decode (the transport's ``Chunk``). Outside the
    cyclic garbage collector (a delivery holds bytes, ints, a str and its chunk, which refers to
    no delivery): the collector does not walk the deliveries of every fetch.
    """

    cdef public object data
    cdef public object topic
    cdef public object partition
    cdef public object offset
    cdef public object key
    cdef public object chunk

    def __init__(self, data, topic, partition, offset, key, chunk):
        self.data = data
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.chunk = chunk

    def __repr__(self):
        return (
            f"KafkaDelivery(data={self.data!r}, topic={self.topic!r}, "
            f"partition={self.partition!r}, offset={self.offset!r}, key={self.key!r}, "
            f"chunk={self.chunk!r})"
        )

    def _fields(self):
        return (self.data, self.topic, self.partition, self.offset, self.key, self.chunk)

    def __eq__(self, other):
        if type(other) is not KafkaDelivery:
            return NotImplemented
        return self._fields() == (<KafkaDelivery>other)._fields()

    __hash__ = None


def codecs():
    """Codec name -> what decompresses it here: ``libzstd.so.1 (nogil)``, ``liblz4.so.1
    (nogil)`` or ``python`` (aiokafka's codec, with the GIL)."""
    return {
        "gzip": "python",
        "snappy": "python",
        "lz4": "liblz4.so.1 (nogil)" if kb_native_codec(3) else "python",
        "zstd": "libzstd.so.1 (nogil)" if kb_native_codec(4) else "python",
    }


def _force_python_codecs(bint flag):
    """Tests: decompress zstd and lz4 with aiokafka's Python codecs too (``flag``) or not."""
    kb_set_force_python(1 if flag else 0)


def _crc32c(bytes data, bint hw):
    """Tests: the CRC-32C of ``data`` by the SSE4.2 form (``hw``, when the CPU has it) or the
    table."""
    return kb_crc32c(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), hw)


cdef object _walk_headers(bytes data):
    """The twin's ``_headers``: (last base, last delta) or None; UnsupportedBatch on a legacy
    batch."""
    cdef int found = 0, magic = 0
    cdef int64_t last_base = 0, legacy_base = 0, short_pos = -1
    cdef int32_t last_delta = 0, short_len = 0
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef size_t size = PyBytes_GET_SIZE(data)
    cdef int legacy
    with nogil:
        legacy = kb_headers(p, size, &found, &last_base, &last_delta, &legacy_base, &magic,
                            &short_pos, &short_len)
    if legacy:
        raise UnsupportedBatch(f"batch at offset {legacy_base} has magic {magic}, not 2")
    if not found:
        return None
    return last_base, last_delta


def scan(bytes data):
    """The offset after the last complete batch in ``data`` (``baseOffset + lastOffsetDelta +
    1``), or -1 when ``data`` holds no complete batch (see the twin)."""
    last = _walk_headers(data)
    if last is None:
        return -1
    return last[0] + last[1] + 1


def decode(bytes data, fetch_offset, str topic, partition, bint check_crcs, chunk_type):
    """The deliveries of the complete batches in ``data``: ``(deliveries, corrupt_at,
    reason)`` (see the twin)."""
    cdef kb_state st
    cdef int rc
    cdef list keep = []
    cdef bytes out
    cdef Py_ssize_t i, n
    cdef kb_span* span
    cdef KafkaDelivery d
    cdef list deliveries
    _walk_headers(data)
    memset(&st, 0, sizeof(kb_state))
    st.data = <const unsigned char*>PyBytes_AS_STRING(data)
    st.size = PyBytes_GET_SIZE(data)
    st.check_crcs = check_crcs
    st.hw_crc = 1
    kb_set_expected(&st, fetch_offset)
    corrupt_at, reason = -1, ""
    try:
        while True:
            with nogil:
                rc = kb_run(&st)
            if rc == KB_NO_MEMORY:
                raise MemoryError()
            if rc == KB_NEED_PY:
                name = kb_codec_name(st.codec).decode()
                try:
                    out = bytes(_python_codec(st.codec)(data[st.payload:st.batch_end]))
                except Exception:  # every codec failure is a corrupt batch
                    corrupt_at = int(_base_at(data, st.pos))
                    reason = f"{name} decompression failed"
                    break
                if len(out) > MAX_DECOMPRESSED:
                    corrupt_at = int(_base_at(data, st.pos))
                    reason = f"{name} output over {MAX_DECOMPRESSED} bytes"
                    break
                keep.append(out)
                st.given = <const unsigned char*>PyBytes_AS_STRING(out)
                st.given_len = PyBytes_GET_SIZE(out)
                st.has_given = 1
                continue
            if st.corrupt:
                corrupt_at, reason = st.corrupt_at, st.reason.decode()
            break
        n = st.n
        if n == 0:
            return [], corrupt_at, reason
        chunk = chunk_type(st.spans[0].offset, int(st.spans[n - 1].offset) + 1, n)
        deliveries = PyList_New(n)
        for i in range(n):
            span = &st.spans[i]
            d = KafkaDelivery.__new__(KafkaDelivery)
            d.data = (
                None if span.value == NULL
                else PyBytes_FromStringAndSize(<const char*>span.value, span.value_len)
            )
            d.topic = topic
            d.partition = partition
            d.offset = span.offset
            d.key = (
                None if span.key == NULL
                else PyBytes_FromStringAndSize(<const char*>span.key, span.key_len)
            )
            d.chunk = chunk
            Py_INCREF(d)
            PyList_SET_ITEM(deliveries, i, d)
        return deliveries, corrupt_at, reason
    finally:
        kb_free(&st)


cdef inline int64_t _base_at(bytes data, size_t pos):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data) + pos
    cdef unsigned long long v = 0
    cdef int k
    for k in range(8):
        v = (v << 8) | p[k]
    return <int64_t>v

