# Declarations of the route's C functions (``_native/route.pyx``), for a unit that reads the route
# of an audit event from the scanner's spans. The twin is ``processor/records/route.py``.

cdef object _route(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t* end)
cdef object _document_key(const unsigned char* s, Py_ssize_t n, Py_ssize_t* m, int count)
