# cython: boundscheck=False, wraparound=False
"""Native CEL plans: a checked CEL syntax tree compiled into a tree of typed evaluation nodes.

The twin is ``processor/cel/plan.py``: the specification of every result and every error (same
public names, :func:`compile_plan` and :data:`LINKS`; same activation, a ``dict`` of variable
name to value, with the ``link()`` collector under :data:`LINKS`). This file only makes it fast.

Layout: :func:`compile_plan` turns each syntax node into a ``cdef class`` node (a :class:`Plan`)
whose ``cdef`` method ``eval(dict)`` computes its value: a parent calls its children through the
C vtable, so evaluating an expression is one Python call (the plan's ``__call__``), not one per
node, and there are no closures or generators. Typed fast paths run in C for what policies use:
literals, variables, select paths on maps (a variable's path fused into one node), ``has()``,
``==``/``!=`` (a string literal compared directly), ``<``/``<=``/``>``/``>=`` (with cel-go's
ordering check), ``in`` on a literal string list (a frozenset), on lists and on maps, list
indexing, ``&&``/``||``/``!`` with cel-go's error absorption, the ternary, ``size``,
``startsWith``/``endsWith``/``contains``/``matches`` (a literal pattern compiled once),
``type()`` and type names, ``string()`` and ``dyn()``, string (and double) ``+``, list and map literals, the comprehension
macros (``all``, ``exists``, ``exists_one``, ``map``, ``filter``), ``link()`` and its collector.

Delegated to the twin's runtime helpers (a Python call at that node). On the benchmark corpora
and policies the only one met is ``string()`` of a double, 64 times in 20,000 standard records
and never on the production mix (``tests/bench/plan_delegations.py``; docs/benchmarks.md, "The
translate path"):

- the other standard functions (conversions ``int``/``uint``/``double``/``bytes``/``bool``,
  ``string`` of bytes, timestamps and durations, ``timestamp``/``duration`` and their
  accessors): the implementation of :data:`processor.cel.functions.FUNCTIONS`; ``string`` of a
  double calls the twin's Go formatter (``format.go_float``);
- arithmetic other than ``string + string`` and ``double + double`` (``-``, ``*``, ``/``, ``%``,
  unary ``-``, ``int``/``uint``/list/time ``+``): :mod:`processor.cel.values`;
- equality of maps with non-string keys and indexing a map by a non-string key
  (``values.map_get``), and the messages of type errors (``values.no_overload``).

Errors made in C (a missing variable or key, a string index on a list) travel up the tree as
:class:`Err` values, as cel-go's do, and the plan's call raises them as ``CelEvalError``: where
``&&``, ``||`` or a macro absorbs one, no Python exception is made.

Invariants (cel-go semantics, as the twin): runtime errors are raised as ``CelEvalError`` and
absorbed by ``&&``/``||`` (``false && error`` is ``false`` in either order) and by the
comprehension macros as cel-go's macro expansions absorb them; the ternary propagates an error in
its condition; a missing map key is an error and ``has()`` on a missing parent is an error.
"""

from cpython.dict cimport PyDict_GetItemWithError
from cpython.object cimport Py_GE, Py_GT, Py_LE, Py_LT, PyObject, PyObject_RichCompare

import contextlib
from datetime import datetime, timedelta

from processor.cel import ast
from processor.cel.format import go_float, go_format
from processor.cel.functions import FUNCTIONS, compile_regex
from processor.cel.plan import LINKS
from processor.cel.types import TYPE_IDENTS
from processor.cel.values import (
    _TYPE_NAMES,
    TypeValue,
    UInt,
    add,
    div,
    map_get,
    map_has,
    mod,
    mul,
    neg,
    no_overload,
    sub,
    type_name,
)
from processor.errors import CelEvalError

__all__ = ["LINKS", "Plan", "compile_plan"]

cdef object _UInt = UInt
cdef object _TypeValue = TypeValue
cdef object _datetime = datetime
cdef object _timedelta = timedelta
cdef object _CelEvalError = CelEvalError
cdef object _no_overload = no_overload
cdef object _map_get = map_get
cdef object _map_has = map_has
cdef str _LINKS = LINKS


# -- values ---------------------------------------------------------------------------------------
cdef inline bint _numeric(object t):
    return t is int or t is float or t is _UInt


cdef bint _ordered(object t):
    return (t is str or t is float or t is int or t is _UInt or t is bool or t is bytes
            or t is _datetime or t is _timedelta)


cdef bint _cel_eq(object a, object b) except -1:
    """``values.cel_eq``: heterogeneous values are unequal; numbers compare by value."""
    cdef object ta = type(a)
    cdef object tb = type(b)
    cdef Py_ssize_t i, n
    cdef PyObject* found
    if ta is tb:
        if ta is str:
            return (<str>a) == (<str>b)
        if ta is list:
            n = len(<list>a)
            if n != len(<list>b):
                return False
            for i in range(n):
                if not _cel_eq((<list>a)[i], (<list>b)[i]):
                    return False
            return True
        if ta is dict:
            if len(<dict>a) != len(<dict>b):
                return False
            for k, v in (<dict>a).items():
                if type(k) is str:
                    found = PyDict_GetItemWithError(b, k)
                    if found is NULL or not _cel_eq(v, <object>found):
                        return False
                else:  # numeric keys match across int, uint and double: the twin's lookup
                    if not _map_has(b, k) or not _cel_eq(v, _map_get(b, k)):
                        return False
            return True
        if ta is _TypeValue:
            return (<object>a).name == (<object>b).name
        return bool(a == b)
    if _numeric(ta) and _numeric(tb):
        return bool(a == b)
    return False


cdef bint _cel_in(object item, object container) except -1:
    """``values.cel_in``: list membership by CEL equality, map membership by key."""
    cdef object tc = type(container)
    if tc is list:
        if type(item) is str:  # a str equals only a str
            return item in <list>container
        for x in <list>container:
            if _cel_eq(item, x):
                return True
        return False
    if tc is dict:
        if type(item) is str:
            return item in <dict>container
        return bool(_map_has(container, item))
    raise _no_overload("@in", item, container)


cdef dict _TYPE_VALUES = {}


cdef dict _TYPE_NAMES_OF = _TYPE_NAMES


cdef object _type_value(object value):
    """``type(value)``: one :class:`TypeValue` per type name (equal by name, as the twin's)."""
    cdef PyObject* found = PyDict_GetItemWithError(_TYPE_NAMES_OF, type(value))
    cdef object name = <object>found if found is not NULL else type_name(value)  # raises
    cdef object tv = _TYPE_VALUES.get(name)
    if tv is None:
        tv = _TYPE_VALUES[name] = _TypeValue(name)
    return tv


cdef class Err:
    """A runtime error made in C, passed up the tree as a value (as cel-go passes its error
    values) and raised as ``CelEvalError`` by :meth:`Plan.__call__`: where ``&&``, ``||`` or a
    macro absorbs it, no Python exception, traceback or ``except`` is involved. A node returns
    at once the ``Err`` of a child (evaluating no later child, as the twin's raise does); errors
    of the twin's Python helpers are raised, and the absorbing nodes take both forms."""

    cdef str message


cdef inline Err _err(str message):
    cdef Err err = Err.__new__(Err)
    err.message = message
    return err


cdef object _fail(object error):
    """The error ``error`` (an :class:`Err` or a raised ``CelEvalError``) as the result."""
    if type(error) is Err:
        return error
    raise error


cdef object _field(object value, str field):
    """``value.field``, or an :class:`Err`: the twin's ``_field`` (cel-go's refQualify)."""
    cdef PyObject* found
    if type(value) is dict:
        found = PyDict_GetItemWithError(value, field)
        if found is NULL:
            return _err(f"no such key: {field}")
        return <object>found
    if type(value) is list:
        return _err("unsupported index type 'string' in list")
    return _err(f"no such key: {field}")


cdef str _type_label(object value):
    try:
        return type_name(value)
    except CelEvalError:
        return type(value).__name__


# -- nodes ----------------------------------------------------------------------------------------
cdef class Plan:
    """A compiled expression (or sub-expression): call it with the activation dict."""

    cdef object eval(self, dict a):
        raise NotImplementedError

    def __call__(self, dict a):
        cdef object v = self.eval(a)
        if type(v) is Err:
            raise _CelEvalError((<Err>v).message)
        return v


cdef class Literal(Plan):
    cdef object value

    def __init__(self, value):
        self.value = value

    cdef object eval(self, dict a):
        return self.value


cdef class Ident(Plan):
    cdef str name

    def __init__(self, name):
        self.name = name

    cdef object eval(self, dict a):
        cdef PyObject* found = PyDict_GetItemWithError(a, self.name)
        if found is NULL:
            return _err(f"no such attribute: {self.name}")
        return <object>found


cdef class IdentOrType(Plan):
    """A type name (``map``, ``string``...) unless a variable of that name is bound."""

    cdef str name
    cdef object type_value

    def __init__(self, name, type_value):
        self.name = name
        self.type_value = type_value

    cdef object eval(self, dict a):
        cdef PyObject* found = PyDict_GetItemWithError(a, self.name)
        if found is NULL:
            return self.type_value
        return <object>found


cdef class VarPath(Plan):
    """``var.f1.f2...``: a variable and a select path, in one node."""

    cdef str name
    cdef tuple fields

    def __init__(self, name, fields):
        self.name = name
        self.fields = fields

    cdef object eval(self, dict a):
        cdef PyObject* found = PyDict_GetItemWithError(a, self.name)
        if found is NULL:
            return _err(f"no such attribute: {self.name}")
        cdef object v = <object>found
        for f in self.fields:
            v = _field(v, <str>f)
            if type(v) is Err:
                return v
        return v


cdef class SelectPath(Plan):
    cdef Plan root
    cdef tuple fields

    def __init__(self, root, fields):
        self.root = root
        self.fields = fields

    cdef object eval(self, dict a):
        cdef object v = self.root.eval(a)
        for f in self.fields:
            if type(v) is Err:
                return v
            v = _field(v, <str>f)
        return v


cdef class Has(Plan):
    cdef Plan operand
    cdef str field

    def __init__(self, operand, field):
        self.operand = operand
        self.field = field

    cdef object eval(self, dict a):
        cdef object v = self.operand.eval(a)
        if type(v) is dict:
            return self.field in <dict>v
        if type(v) is Err:
            return v
        # cel-go's presence test (refQualify): a list rejects the string index, a scalar or null
        # parent simply has no such field
        if type(v) is list:
            return _err("unsupported index type 'string' in list")
        return False


cdef class Index(Plan):
    cdef Plan operand
    cdef Plan index

    def __init__(self, operand, index):
        self.operand = operand
        self.index = index

    cdef object eval(self, dict a):
        cdef object v = self.operand.eval(a)
        if type(v) is Err:
            return v
        cdef object i = self.index.eval(a)
        if type(i) is Err:
            return i
        cdef object ti
        cdef Py_ssize_t n
        if type(v) is dict:
            if type(i) is str:
                return _field(v, <str>i)
            return _map_get(v, i)
        if type(v) is list:
            ti = type(i)
            # cel-go qualifies indexes as attributes (refQualify, IndexOrError), with these messages
            if ti is float:
                if not i.is_integer():
                    raise _CelEvalError(f"unsupported index value {go_float(i)} in list")
                i = int(i)
            elif ti is bool or not isinstance(i, int):
                raise _CelEvalError(f"unsupported index type '{_type_label(i)}' in list")
            n = len(<list>v)
            if 0 <= i < n:
                return (<list>v)[<Py_ssize_t>i]
            raise _CelEvalError(f"index out of bounds: {i}")
        raise _CelEvalError(f"no such key: {go_format(i)}")  # cel-go's refQualify


cdef class ListLit(Plan):
    cdef tuple items

    def __init__(self, items):
        self.items = items

    cdef object eval(self, dict a):
        cdef list out = []
        cdef object v
        for item in self.items:
            v = (<Plan>item).eval(a)
            if type(v) is Err:
                return v
            out.append(v)
        return out


cdef class MapLit(Plan):
    cdef tuple keys
    cdef tuple values

    def __init__(self, keys, values):
        self.keys = keys
        self.values = values

    cdef object eval(self, dict a):
        cdef dict out = {}
        cdef Py_ssize_t i
        for i in range(len(self.keys)):
            k = (<Plan>self.keys[i]).eval(a)
            if type(k) is Err:
                return k
            if (k in out) if type(k) is str else _map_has(out, k):
                raise _CelEvalError(f"Failed with repeated key: {k}")
            v = (<Plan>self.values[i]).eval(a)
            if type(v) is Err:
                return v
            out[k] = v
        return out


cdef class Cond(Plan):
    cdef Plan cond
    cdef Plan then
    cdef Plan otherwise

    def __init__(self, cond, then, otherwise):
        self.cond = cond
        self.then = then
        self.otherwise = otherwise

    cdef object eval(self, dict a):
        cdef object c = self.cond.eval(a)
        if c is True:
            return self.then.eval(a)
        if c is False:
            return self.otherwise.eval(a)
        if type(c) is Err:
            return c
        raise _no_overload("_?_:_", c)


cdef class Junction(Plan):
    """``&&`` (``short`` False) or ``||`` (``short`` True), with cel-go's absorption: the value
    ``short`` on either side decides, whatever error the other side gave."""
    cdef Plan left
    cdef Plan right
    cdef object short
    cdef str op

    def __init__(self, left, right, bint short):
        self.left = left
        self.right = right
        self.short = short
        self.op = "_||_" if short else "_&&_"

    cdef object eval(self, dict a):
        cdef object lv = None, rv, error = None
        cdef object short = self.short
        try:
            lv = self.left.eval(a)
        except CelEvalError as exc:
            error = exc
        if error is None and type(lv) is Err:
            error = lv
        if error is not None:  # the right side decides, or the left error stands
            try:
                rv = self.right.eval(a)
            except CelEvalError:
                return _fail(error)
            if rv is short:
                return short
            return _fail(error)
        if lv is short:
            return short
        rv = self.right.eval(a)
        if rv is short:
            return short
        if lv is (not short) and rv is (not short):
            return not short
        if type(rv) is Err:
            return rv
        raise _no_overload(self.op, lv, rv)


cdef class Not(Plan):
    cdef Plan operand

    def __init__(self, operand):
        self.operand = operand

    cdef object eval(self, dict a):
        cdef object v = self.operand.eval(a)
        if v is True:
            return False
        if v is False:
            return True
        if type(v) is Err:
            return v
        raise _no_overload("!_", v)


cdef class Unary(Plan):
    """A unary operator of the twin's runtime (``-x``)."""

    cdef object fn
    cdef Plan operand

    def __init__(self, fn, operand):
        self.fn = fn
        self.operand = operand

    cdef object eval(self, dict a):
        cdef object v = self.operand.eval(a)
        if type(v) is Err:
            return v
        return self.fn(v)


cdef class EqStr(Plan):
    """``x == 'literal'`` / ``x != 'literal'``: a string equals only an equal string."""

    cdef Plan left
    cdef str literal
    cdef bint negate

    def __init__(self, left, literal, negate):
        self.left = left
        self.literal = literal
        self.negate = negate

    cdef object eval(self, dict a):
        cdef object v = self.left.eval(a)
        cdef bint eq
        if type(v) is str:
            eq = (<str>v) == self.literal
        elif type(v) is Err:
            return v
        else:
            eq = bool(v == self.literal)
        return eq != self.negate


cdef class Eq(Plan):
    cdef Plan left
    cdef Plan right
    cdef bint negate

    def __init__(self, left, right, negate):
        self.left = left
        self.right = right
        self.negate = negate

    cdef object eval(self, dict a):
        cdef object lv = self.left.eval(a)
        if type(lv) is Err:
            return lv
        cdef object rv = self.right.eval(a)
        if type(rv) is Err:
            return rv
        return _cel_eq(lv, rv) != self.negate


cdef class InStrings(Plan):
    """``x in ['a', 'b']`` with string literals only: a frozenset lookup."""

    cdef Plan left
    cdef frozenset choices

    def __init__(self, left, choices):
        self.left = left
        self.choices = choices

    cdef object eval(self, dict a):
        cdef object v = self.left.eval(a)
        if type(v) is Err:
            return v
        return type(v) is str and v in self.choices


cdef class In(Plan):
    cdef Plan left
    cdef Plan right

    def __init__(self, left, right):
        self.left = left
        self.right = right

    cdef object eval(self, dict a):
        cdef object item = self.left.eval(a)
        if type(item) is Err:
            return item
        cdef object container = self.right.eval(a)
        if type(container) is Err:
            return container
        return _cel_in(item, container)


cdef class Order(Plan):
    """``<``, ``<=``, ``>``, ``>=``: defined for one type, or across numbers (cel-go)."""

    cdef Plan left
    cdef Plan right
    cdef int op
    cdef str name

    def __init__(self, left, right, op, name):
        self.left = left
        self.right = right
        self.op = op
        self.name = name

    cdef object eval(self, dict a):
        cdef object x = self.left.eval(a)
        if type(x) is Err:
            return x
        cdef object y = self.right.eval(a)
        if type(y) is Err:
            return y
        cdef object tx = type(x)
        cdef object ty = type(y)
        if not ((tx is ty and _ordered(tx)) or (_numeric(tx) and _numeric(ty))):
            raise _no_overload(self.name, x, y)
        return bool(PyObject_RichCompare(x, y, self.op))


cdef class Add(Plan):
    cdef Plan left
    cdef Plan right

    def __init__(self, left, right):
        self.left = left
        self.right = right

    cdef object eval(self, dict a):
        cdef object x = self.left.eval(a)
        if type(x) is Err:
            return x
        cdef object y = self.right.eval(a)
        if type(y) is Err:
            return y
        cdef object tx = type(x)
        if tx is type(y) and (tx is str or tx is float):
            return x + y
        return add(x, y)


cdef class Arith(Plan):
    """``-``, ``*``, ``/``, ``%``: the twin's runtime (:mod:`processor.cel.values`)."""

    cdef object fn
    cdef Plan left
    cdef Plan right

    def __init__(self, fn, left, right):
        self.fn = fn
        self.left = left
        self.right = right

    cdef object eval(self, dict a):
        cdef object x = self.left.eval(a)
        if type(x) is Err:
            return x
        cdef object y = self.right.eval(a)
        if type(y) is Err:
            return y
        return self.fn(x, y)


cdef class Size(Plan):
    cdef Plan operand

    def __init__(self, operand):
        self.operand = operand

    cdef object eval(self, dict a):
        cdef object x = self.operand.eval(a)
        if type(x) is Err:
            return x
        cdef object t = type(x)
        if t is str or t is bytes or t is list or t is dict:
            return len(x)
        raise _no_overload("size", x)


cdef enum:
    STARTS = 0
    ENDS = 1
    CONTAINS = 2


cdef class StrPair(Plan):
    """``s.startsWith(x)``, ``s.endsWith(x)``, ``s.contains(x)`` on two strings."""

    cdef Plan target
    cdef Plan arg
    cdef int which
    cdef str name

    def __init__(self, target, arg, which, name):
        self.target = target
        self.arg = arg
        self.which = which
        self.name = name

    cdef object eval(self, dict a):
        cdef object s = self.target.eval(a)
        if type(s) is Err:
            return s
        cdef object x = self.arg.eval(a)
        if type(x) is Err:
            return x
        if type(s) is not str or type(x) is not str:
            raise _no_overload(self.name, s, x)
        if self.which == STARTS:
            return (<str>s).startswith(<str>x)
        if self.which == ENDS:
            return (<str>s).endswith(<str>x)
        return (<str>x) in (<str>s)


cdef class Matches(Plan):
    """``s.matches(re)``: a literal pattern is compiled once; RE2 search semantics as the twin's."""

    cdef Plan target
    cdef Plan pattern
    cdef object search  # the compiled literal pattern's ``search``, or None

    def __init__(self, target, pattern, search):
        self.target = target
        self.pattern = pattern
        self.search = search

    cdef object eval(self, dict a):
        cdef object s = self.target.eval(a)
        if type(s) is Err:
            return s
        cdef object p = self.pattern.eval(a)
        if type(p) is Err:
            return p
        if type(s) is not str or type(p) is not str:
            raise _no_overload("matches", s, p)
        if self.search is not None:
            return self.search(s) is not None
        return compile_regex(p).search(s) is not None


cdef class TypeOf(Plan):
    cdef Plan operand

    def __init__(self, operand):
        self.operand = operand

    cdef object eval(self, dict a):
        cdef object v = self.operand.eval(a)
        if type(v) is Err:
            return v
        return _type_value(v)


cdef class ToString(Plan):
    """``string(x)``: strings, ints and bools here; doubles by the twin's Go formatter
    (``go_float``), other types by the twin's conversion."""

    cdef Plan operand
    cdef object convert

    def __init__(self, operand, convert):
        self.operand = operand
        self.convert = convert

    cdef object eval(self, dict a):
        cdef object x = self.operand.eval(a)
        if type(x) is Err:
            return x
        cdef object t = type(x)
        if t is str:
            return x
        if t is int:
            return str(x)
        if t is bool:
            return "true" if x is True else "false"
        if t is float:
            return go_float(x)
        return self.convert(x)


cdef class Call(Plan):
    """Any other standard function: the twin's implementation (``FUNCTIONS[name].impl``)."""

    cdef object impl
    cdef tuple args

    def __init__(self, impl, args):
        self.impl = impl
        self.args = args

    cdef object eval(self, dict a):
        cdef list values = []
        cdef object v
        for f in self.args:
            v = (<Plan>f).eval(a)
            if type(v) is Err:
                return v
            values.append(v)
        return self.impl(*values)


cdef class Link(Plan):
    """``link(text, ref)``: the text; ``(text, ref)`` appended to the collector when there is one."""

    cdef Plan text
    cdef Plan ref

    def __init__(self, text, ref):
        self.text = text
        self.ref = ref

    cdef object eval(self, dict a):
        cdef object text = self.text.eval(a)
        if type(text) is Err:
            return text
        cdef object ref = self.ref.eval(a)
        if type(ref) is Err:
            return ref
        if type(text) is not str:
            raise _no_overload("link", text, ref)
        cdef PyObject* found = PyDict_GetItemWithError(a, _LINKS)
        if found is not NULL and <object>found is not None and type(ref) is dict:
            for k in <dict>ref:
                if type(k) is not str:
                    ref = {k: v for k, v in (<dict>ref).items() if type(k) is str}
                    break
            (<object>found).append((text, ref))
        return text


cdef enum:
    ALL = 0
    EXISTS = 1
    EXISTS_ONE = 2
    COLLECT = 3  # map and filter


cdef class Comprehension(Plan):
    cdef Plan range
    cdef str var
    cdef Plan predicate  # None for map/2
    cdef Plan transform  # None for filter
    cdef int macro

    def __init__(self, range, var, predicate, transform, macro):
        self.range = range
        self.var = var
        self.predicate = predicate
        self.transform = transform
        self.macro = macro

    cdef object eval(self, dict a):
        cdef object rng = self.range.eval(a)
        if type(rng) is Err:
            return rng
        cdef list items
        if type(rng) is list:
            items = <list>rng
        elif type(rng) is dict:
            items = list(<dict>rng)
        else:
            raise _no_overload("comprehension range", rng)
        cdef dict inner = a.copy()
        cdef object v, error = None
        cdef object stop, go_on
        cdef Py_ssize_t count
        cdef list out
        if self.macro == ALL or self.macro == EXISTS:
            # ``stop``: the value of the predicate that decides the result; ``go_on`` the other
            stop = True if self.macro == EXISTS else False
            go_on = False if self.macro == EXISTS else True
            for item in items:
                inner[self.var] = item
                try:
                    v = self.predicate.eval(inner)
                except CelEvalError as exc:
                    if error is None:
                        error = exc
                    continue
                if type(v) is Err:
                    if error is None:
                        error = v
                    continue
                if v is stop:
                    return stop
                if v is not go_on and error is None:
                    error = _no_overload("_&&_" if self.macro == ALL else "_||_", v)
            if error is not None:
                return _fail(error)
            return go_on
        if self.macro == EXISTS_ONE:
            count = 0
            for item in items:
                inner[self.var] = item
                v = self.predicate.eval(inner)
                if v is True:
                    count += 1
                elif type(v) is Err:
                    return v
                elif v is not False:
                    raise _no_overload("_?_:_", v)
            return count == 1
        out = []
        for item in items:
            inner[self.var] = item
            if self.predicate is not None:
                v = self.predicate.eval(inner)
                if v is False:
                    continue
                if type(v) is Err:
                    return v
                if v is not True:
                    raise _no_overload("_?_:_", v)
            if self.transform is None:
                out.append(item)
                continue
            v = self.transform.eval(inner)
            if type(v) is Err:
                return v
            out.append(v)
        return out


# -- compiling ------------------------------------------------------------------------------------
def compile_plan(node) -> Plan:
    """Compile ``node`` (already type-checked) into a plan called with an activation dict."""
    return _compile(node)


cdef Plan _compile(object node):
    kind = type(node)
    if kind is ast.Literal:
        return Literal(node.value)
    if kind is ast.Ident:
        return _ident(node.name)
    if kind is ast.Select:
        return _select(node)
    if kind is ast.Has:
        return Has(_compile(node.operand), node.field)
    if kind is ast.Index:
        return Index(_compile(node.operand), _compile(node.index))
    if kind is ast.ListLit:
        return ListLit(tuple([_compile(i) for i in node.items]))
    if kind is ast.MapLit:
        return MapLit(
            tuple([_compile(k) for k, _ in node.entries]),
            tuple([_compile(v) for _, v in node.entries]),
        )
    if kind is ast.Cond:
        return Cond(_compile(node.cond), _compile(node.then), _compile(node.otherwise))
    if kind is ast.And:
        return Junction(_compile(node.left), _compile(node.right), False)
    if kind is ast.Or:
        return Junction(_compile(node.left), _compile(node.right), True)
    if kind is ast.Not:
        return Not(_compile(node.operand))
    if kind is ast.Neg:
        return Unary(neg, _compile(node.operand))
    if kind is ast.Binary:
        return _binary(node)
    if kind is ast.Call:
        return _call(node)
    if kind is ast.Comprehension:
        return _comprehension(node)
    raise TypeError(f"no plan for {kind.__name__}")


cdef Plan _ident(str name):
    if name in TYPE_IDENTS:
        return IdentOrType(name, _TypeValue(TYPE_IDENTS[name].name))
    return Ident(name)


cdef Plan _select(object node):
    # Flatten ``var.a.b.c`` into one node walking a path: the common case in policies.
    cdef list path = []
    cur = node
    while type(cur) is ast.Select:
        path.append(cur.field)
        cur = cur.operand
    path.reverse()
    if type(cur) is ast.Ident and cur.name not in TYPE_IDENTS:
        return VarPath(cur.name, tuple(path))
    return SelectPath(_compile(cur), tuple(path))


cdef dict _ORDERS = {"<": Py_LT, "<=": Py_LE, ">": Py_GT, ">=": Py_GE}
cdef dict _ARITH = {"-": sub, "*": mul, "/": div, "%": mod}


cdef Plan _binary(object node):
    cdef str op = node.op
    left = _compile(node.left)
    right_node = node.right
    if op == "==" or op == "!=":
        # A string literal equals only an equal string, so Python's == is exact CEL equality.
        if type(right_node) is ast.Literal and type(right_node.value) is str:
            return EqStr(left, right_node.value, op == "!=")
        return Eq(left, _compile(right_node), op == "!=")
    if op == "in":
        if (
            type(right_node) is ast.ListLit
            and right_node.items
            and all([type(i) is ast.Literal and type(i.value) is str for i in right_node.items])
        ):
            return InStrings(left, frozenset([i.value for i in right_node.items]))
        return In(left, _compile(right_node))
    right = _compile(right_node)
    if op in _ORDERS:
        return Order(left, right, _ORDERS[op], f"_{op}_")
    if op == "+":
        return Add(left, right)
    return Arith(_ARITH[op], left, right)


cdef dict _STR_PAIRS = {"startsWith": STARTS, "endsWith": ENDS, "contains": CONTAINS}


cdef Plan _call(object node):
    cdef str name = node.function
    if name == "link":
        return Link(_compile(node.args[0]), _compile(node.args[1]))
    impl = FUNCTIONS[name].impl
    assert impl is not None
    cdef list args = [_compile(x) for x in ([node.target] if node.target else []) + node.args]
    if name == "size" and len(args) == 1:
        return Size(args[0])
    if name == "type" and len(args) == 1:
        return TypeOf(args[0])
    if name == "string" and len(args) == 1:
        return ToString(args[0], impl)
    if name == "dyn" and len(args) == 1:
        return args[0]  # the identity
    if name in _STR_PAIRS and len(args) == 2:
        return StrPair(args[0], args[1], _STR_PAIRS[name], name)
    if name == "matches" and len(args) == 2:
        search = None
        last = node.args[len(node.args) - 1]
        if type(last) is ast.Literal and type(last.value) is str:
            # An invalid literal pattern is a runtime error, as in cel-go (its Compile does not
            # validate regex literals): the expression still compiles.
            with contextlib.suppress(CelEvalError):
                search = compile_regex(last.value).search
        return Matches(args[0], args[1], search)
    return Call(impl, tuple(args))


cdef dict _MACROS = {
    "all": ALL, "exists": EXISTS, "exists_one": EXISTS_ONE, "map": COLLECT, "filter": COLLECT
}


cdef Plan _comprehension(object node):
    return Comprehension(
        _compile(node.range),
        node.var,
        _compile(node.predicate) if node.predicate is not None else None,
        _compile(node.transform) if node.transform is not None else None,
        _MACROS[node.macro],
    )
