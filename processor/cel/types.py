"""CEL types as the checker sees them, named and printed the way cel-go prints them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CelType:
    """A CEL type: a primitive (``params == ()``) or ``list(T)``, ``map(K, V)``, ``type(T)``."""

    name: str
    params: tuple[CelType, ...] = ()

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(str(p) for p in self.params)})"

    @property
    def is_dyn(self) -> bool:
        return self.name == "dyn"


BOOL = CelType("bool")
INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null_type")
DYN = CelType("dyn")
TIMESTAMP = CelType("google.protobuf.Timestamp")
DURATION = CelType("google.protobuf.Duration")
TYPE = CelType("type")
NUMERIC = (INT, UINT, DOUBLE)


def list_of(elem: CelType) -> CelType:
    return CelType("list", (elem,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


def type_of(t: CelType) -> CelType:
    return CelType("type", (t,))


DYN_MAP = map_of(STRING, DYN)
DYN_LIST = list_of(DYN)

# Type denotations usable as identifiers (``type(x) == string``).
TYPE_IDENTS: dict[str, CelType] = {
    "bool": BOOL,
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "null_type": NULL,
    "list": CelType("list", (DYN,)),
    "map": CelType("map", (DYN, DYN)),
    "type": TYPE,
    "dyn": DYN,
}


def is_assignable(want: CelType, got: CelType) -> bool:
    """Whether a ``got`` value may be passed where ``want`` is declared (dyn matches anything)."""
    if want.is_dyn or got.is_dyn or want == got:
        return True
    if want.name != got.name:
        return False
    if want.name == "type" or len(want.params) != len(got.params):
        return want.name == "type"
    return all(is_assignable(w, g) for w, g in zip(want.params, got.params, strict=True))


def join(a: CelType, b: CelType) -> CelType:
    """The common type of two branches (ternary, list elements): equal types stay, else dyn."""
    if a == b:
        return a
    if a.name == b.name and a.params and len(a.params) == len(b.params):
        return CelType(a.name, tuple(join(x, y) for x, y in zip(a.params, b.params, strict=True)))
    return DYN
