"""Django/lamindb-style queries compiled to parameterised Cypher, and run.

`Select` describes a query on one record label: a `Q` filter tree of `field__op=value` lookups,
an optional `Anchor` (start from one node and follow one of its relations), ordering, distinct,
offset/limit and the branch. `compile_select` turns it into the `MATCH ... WHERE ...` part;
`fetch`, `count` and `exists` complete and run it; `search` ranks records by a string the way
lamindb does.

Safety rules, kept by construction:
- every value is a Cypher parameter (`$p0`, `$p1`, ... and `$branch`, `$anchor_uid`, `$skip`,
  `$limit`, `$s`, `$rx_*`), never formatted into the query text;
- every field and relation name a user writes is resolved against `graph.models` (stored
  property names, aliases such as Collection `name` -> `key`, relations per label) before any
  text is built; an unknown name raises `FieldValidationError` naming the label, the bad name
  and the sorted valid choices. Labels and edge types in the text come from the models only.

Query shape. Own-field conditions are plain comparisons on `n` (`n.uid = $p0`,
`n.key STARTS WITH $p0`), so the planner uses the uid constraint and the range indexes;
case-insensitive lookups compare `toLower()` of both sides. Conditions across relations
(`run__transform__key`, `artifacts__key`, `run__isnull`) compile to `EXISTS { MATCH ... }`
subqueries, so they never multiply rows and ignore the related nodes' branch. Under a negation
(`~Q(...)`) an own-field comparison with a missing property counts as false, so
`~Q(suffix=".csv")` keeps records without a suffix (Django's `exclude()` does the same).
`a__b__f__isnull=True` (and `a__b__f=None`) means "no path reaches a node whose `f` is set".

Reading (`fetch`): one auto-commit query whose rows are lists of up to 1000 records each (the
driver's per-row cost was more than the decoding; a LIMIT of at most 4 reads row by row), every
record a property map and a list of its datetime fields, a UTC datetime as an int of
microseconds (the driver's own datetime conversion was 60% of a 1000-record fetch). `fetch` returns the same dicts, values and types as reading the nodes
through the driver would (`tests/test_fetch_speedpath.py`); only the order of keys within a
dict is Neo4j's map order rather than its node property order. `fetch_columns` (what `df()` reads)
returns the same values by column, one list per field per batch, with the records' feature
values in the same statement. Needs Neo4j 5.23 or later (`CALL (x) {}` subqueries in
`fetch_columns`; type predicates needed 5.9, `COLLECT {}` subqueries 5.6).

Search scores in Cypher: candidates are the rows where some searched field contains the string
(`CONTAINS`, `toLower()` on both sides unless case-sensitive); each field adds 200 (equal),
10 (whole word), 8 (start of a word), 2 (end of a word) and 1 (contains), where word boundaries
are the start/end of the value or a character that is not a Unicode letter or digit. The word
tests are Java regular expressions (`=~`) passed as parameters; the search string is escaped
character by character (a backslash before every ASCII character that is not a letter or
digit), so metacharacters, backslashes and `\\E` in the string are matched literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any

import pytz  # type: ignore[import-untyped]  # the driver's own time-zone library (a dependency)

from graph.connection import plain
from graph.errors import FieldValidationError
from graph.features import (
    FEATURE_COLUMNS,
    FEATURE_KEYS,
    HAS_VALUE,
    HOST_LABELS,
    LABEL_EDGE,
    VALUE_COLUMNS,
    VALUE_LABEL,
    VALUE_RETURNS,
    FeatureRef,
    value_columns,
)
from graph.models import (
    RECORD_LABELS,
    Relation,
    aliases_of,
    edge_fields_of,
    fields_of,
    is_versioned,
    relations_of,
)

__all__ = [
    "LOOKUPS",
    "Anchor",
    "Q",
    "Select",
    "Uid",
    "compile_columns",
    "compile_fetch",
    "compile_select",
    "count",
    "edge_properties",
    "exists",
    "fetch",
    "fetch_columns",
    "mentions_branch",
    "search",
    "search_fields",
]

STRING_OPS = (
    "startswith", "istartswith", "endswith", "iendswith", "contains", "icontains", "iexact",
)  # fmt: skip
COMPARISON_OPS = ("gt", "gte", "lt", "lte")
LOOKUPS: tuple[str, ...] = ("exact", "in", "isnull", *STRING_OPS, *COMPARISON_OPS)
_RELATION_OPS = ("exact", "in", "isnull")

_CYPHER_OPS = {
    "exact": "{x} = {p}",
    "iexact": "toLower({x}) = toLower({p})",
    "in": "{x} IN {p}",
    "startswith": "{x} STARTS WITH {p}",
    "istartswith": "toLower({x}) STARTS WITH toLower({p})",
    "endswith": "{x} ENDS WITH {p}",
    "iendswith": "toLower({x}) ENDS WITH toLower({p})",
    "contains": "{x} CONTAINS {p}",
    "icontains": "toLower({x}) CONTAINS toLower({p})",
    "gt": "{x} > {p}",
    "gte": "{x} >= {p}",
    "lt": "{x} < {p}",
    "lte": "{x} <= {p}",
}

# Fields `search()` skips by default: identifiers, hashes, paths, code and machine-readable text.
_SEARCH_EXCLUDED = frozenset(
    {"uid", "hash", "hash_type", "storage_path", "source_code", "params", "status"}
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------
class Q:
    """Django-style filter: `Q(key__startswith="a") & ~Q(suffix=".csv") | Q(id__in=[1, 2])`.

    All positional children and keyword lookups are AND-ed. Plain data: `connector` ("AND" or
    "OR"), `negated` (bool), `children` (a list of `Q` or `(lookup, value)` tuples).
    """

    AND = "AND"
    OR = "OR"

    def __init__(self, *children: Q | tuple[str, Any], **lookups: Any) -> None:
        for child in children:
            if not isinstance(child, Q) and not (
                isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str)
            ):
                raise TypeError(f"Q() takes Q objects or (lookup, value) pairs, got {child!r}")
        self.connector: str = self.AND
        self.negated: bool = False
        self.children: list[Q | tuple[str, Any]] = [*children, *lookups.items()]

    @classmethod
    def _make(cls, connector: str, negated: bool, children: list) -> Q:
        q = cls()
        q.connector, q.negated, q.children = connector, negated, children
        return q

    def _combine(self, other: object, connector: str) -> Q:
        if not isinstance(other, Q):
            return NotImplemented
        if not other.children:
            return Q._make(self.connector, self.negated, list(self.children))
        if not self.children:
            return Q._make(other.connector, other.negated, list(other.children))
        if self.connector == connector and not self.negated:
            return Q._make(connector, False, [*self.children, other])
        return Q._make(connector, False, [self, other])

    def __and__(self, other: Q) -> Q:
        return self._combine(other, self.AND)

    def __or__(self, other: Q) -> Q:
        return self._combine(other, self.OR)

    def __invert__(self) -> Q:
        return Q._make(self.connector, not self.negated, list(self.children))

    def __bool__(self) -> bool:
        return bool(self.children)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Q):
            return NotImplemented
        return (self.connector, self.negated, self.children) == (
            other.connector,
            other.negated,
            other.children,
        )

    def __hash__(self) -> int:  # children may hold lists: hash the shape only
        return hash((self.connector, self.negated, len(self.children)))

    def __repr__(self) -> str:
        parts = [repr(c) if isinstance(c, Q) else f"{c[0]}={c[1]!r}" for c in self.children]
        body = f"({self.connector}: {', '.join(parts)})"
        return f"<Q: NOT {body}>" if self.negated else f"<Q: {body}>"


class Uid(str):
    """A record's uid standing for the record in a lookup value (`filter(cell_type=label)`):
    a categorical feature compares it with the ULabel's uid, a plain str with its name."""

    __slots__ = ()


@dataclass(frozen=True)
class Anchor:
    """Start from one node and follow one of its relations: `collection.artifacts`."""

    label: str  # label of the start node, e.g. "Collection"
    uid: str  # its uid
    relation: str  # relation name of `label`, e.g. "artifacts"; the queried label is its target
    edge_order: str | None = None  # an edge property to order by first, e.g. "position"
    # A relation of `label` whose records are followed along `relation` too: `collection.ulabels`
    # is Anchor("Collection", uid, "ulabels", through="artifacts"), the labels of the collection
    # and of its members. A record reached both ways comes once per path: select `distinct`.
    through: str | None = None


@dataclass(frozen=True)
class Select:
    """One query on one record label.

    `order_by`: own field names of `label` (aliases allowed), "-" prefix for descending; `id`
    ascending is always the final tiebreak. `branch`: 1 (main) by default, None for every
    branch; if `where` mentions the own field `branch` (or `branch_id`) anywhere, no default
    branch condition is added.
    """

    label: str
    where: Q | None = None
    anchor: Anchor | None = None
    order_by: tuple[str, ...] = ()
    distinct: bool = False
    offset: int = 0
    limit: int | None = None
    branch: int | None = 1
    # Features the lookups may name (`filter(temperature__gt=20)`), resolved by the caller from
    # the Feature registry; a lookup whose first part is no field or relation is looked up here.
    features: tuple[FeatureRef, ...] = ()


# --------------------------------------------------------------------------------------------
# Model look-ups (validated names only)
# --------------------------------------------------------------------------------------------
def _check_label(label: Any) -> str:
    if not isinstance(label, str) or label not in RECORD_LABELS:
        raise FieldValidationError(
            f"unknown record label {label!r}; valid labels: {', '.join(sorted(RECORD_LABELS))}"
        )
    return label


@cache
def _fields(label: str) -> dict[str, str]:
    fields = fields_of(label)
    for name in fields:  # defence in depth: model names go into query text
        assert _IDENTIFIER.fullmatch(name), name
    return fields


def _valid_field_names(label: str) -> list[str]:
    return sorted(set(_fields(label)) | set(aliases_of(label)))


def _field(label: str, name: str) -> str | None:
    """The stored property name for a user-written field name, or None if it is not one."""
    stored = aliases_of(label).get(name, name)
    return stored if stored in _fields(label) else None


def _unknown_name(
    label: str, name: str, *, relations: bool = True, features: bool = False
) -> FieldValidationError:
    what = "field or relation" if relations else "field"
    valid = ", ".join(_valid_field_names(label))
    message = f"{label} has no {what} {name!r}; valid fields: {valid}"
    if relations:
        message += f"; valid relations: {', '.join(sorted(relations_of(label)))}"
    if features:
        message += (
            f"; nor a feature named {name!r} (create it first: "
            "ln.Feature(name=..., dtype=...).save())"
        )
    return FieldValidationError(message)


def _own_field(label: str, name: Any) -> str:
    if not isinstance(name, str) or _field(label, name) is None:
        raise _unknown_name(label, name if isinstance(name, str) else repr(name), relations=False)
    return _field(label, name)  # type: ignore[return-value]


def search_fields(label: str) -> list[str]:
    """The fields `search()` looks at by default for `label`."""
    _check_label(label)
    return [
        f
        for f, kind in _fields(label).items()
        if kind == "StringProperty" and f not in _SEARCH_EXCLUDED and not f.startswith("branch")
    ]


# --------------------------------------------------------------------------------------------
# Lookup resolution and value checks
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lookup:
    text: str  # what the user wrote
    hops: tuple[Relation, ...]
    label: str  # label at the end of the hops
    field: str | None  # stored property name; None: the lookup ends on a relation
    op: str
    feature: FeatureRef | None = None  # a feature lookup: `temperature__gt`


def _resolve(label: str, lookup: Any, features: dict[str, FeatureRef] | None = None) -> _Lookup:
    if not isinstance(lookup, str) or not lookup:
        raise FieldValidationError(f"a lookup must be a non-empty string, got {lookup!r}")
    parts = lookup.split("__")
    if (
        features
        and parts[0] in features
        and _field(label, parts[0]) is None
        and parts[0] not in relations_of(label)
    ):
        return _feature_lookup(lookup, label, features[parts[0]], parts[1:])
    current, hops, i = label, [], 0
    while (
        i < len(parts) and parts[i] in relations_of(current) and _field(current, parts[i]) is None
    ):
        rel = relations_of(current)[parts[i]]
        hops.append(rel)
        current = rel.target
        i += 1
    rest = parts[i:]
    if not rest:
        return _Lookup(lookup, tuple(hops), current, None, "exact")
    field = _field(current, rest[0])
    if field is None:
        if len(rest) == 1 and hops and rest[0] in LOOKUPS:
            op = rest[0]
            if op not in _RELATION_OPS:
                raise FieldValidationError(
                    f"lookup {op!r} in {lookup!r} cannot be used on relation {current} itself; "
                    f"valid lookups on a relation: {', '.join(sorted(_RELATION_OPS))}"
                )
            return _Lookup(lookup, tuple(hops), current, None, op)
        raise _unknown_name(current, rest[0], features=not hops and label in HOST_LABELS)
    if len(rest) == 1:
        return _Lookup(lookup, tuple(hops), current, field, "exact")
    if len(rest) == 2 and rest[1] in LOOKUPS:
        return _Lookup(lookup, tuple(hops), current, field, rest[1])
    raise FieldValidationError(
        f"unknown lookup {'__'.join(rest[1:])!r} after field {current}.{rest[0]} in {lookup!r}; "
        f"valid lookups: {', '.join(sorted(LOOKUPS))}"
    )


# Lookups each feature dtype takes (a list feature takes its element's: any element matches).
_FEATURE_OPS = {
    "int": ("exact", "in", "isnull", *COMPARISON_OPS),
    "float": ("exact", "in", "isnull", *COMPARISON_OPS),
    "date": ("exact", "in", "isnull", *COMPARISON_OPS),
    "datetime": ("exact", "in", "isnull", *COMPARISON_OPS),
    "str": ("exact", "in", "isnull", *STRING_OPS, *COMPARISON_OPS),
    "cat": ("exact", "in", "isnull", *STRING_OPS),
    "bool": ("exact", "in", "isnull"),
    "dict": ("isnull",),
}


def _feature_lookup(lookup: str, label: str, feature: FeatureRef, rest: list[str]) -> _Lookup:
    dtype = feature.parsed
    if dtype is None:
        raise FieldValidationError(
            f"feature {feature.name!r} has no valid dtype ({feature.dtype!r}) to filter by"
        )
    if not rest:
        op = "exact"
    elif len(rest) == 1 and rest[0] in LOOKUPS:
        op = rest[0]
    else:
        raise FieldValidationError(
            f"unknown lookup {'__'.join(rest)!r} after feature {feature.name!r} in {lookup!r}; "
            f"valid lookups for dtype {feature.dtype}: {', '.join(_FEATURE_OPS[dtype.base])}"
        )
    if op not in _FEATURE_OPS[dtype.base]:
        raise FieldValidationError(
            f"lookup {op!r} does not apply to feature {feature.name!r} (dtype {feature.dtype}) "
            f"in {lookup!r}; valid lookups: {', '.join(_FEATURE_OPS[dtype.base])}"
        )
    return _Lookup(lookup, (), label, None, op, feature)


def _check_feature_item(lk: _Lookup, value: Any) -> Any:
    """One lookup value for a feature of `lk.feature`'s dtype, as its parameter."""
    feature = lk.feature
    assert feature is not None and feature.parsed is not None
    base = feature.parsed.base

    def bad(expected: str) -> FieldValidationError:
        return FieldValidationError(
            f"feature {feature.name!r} (dtype {feature.dtype}) needs {expected} in "
            f"{lk.text!r}, got {type(value).__name__} {value!r}"
        )

    if value is None:
        raise bad("a value, not None, in a list")
    if base in ("str", "cat"):
        if not isinstance(value, str):
            raise bad("a str" if base == "str" else "a ULabel or its name")
    elif base in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if base == "int" and isinstance(value, float) and lk.op not in COMPARISON_OPS:
            raise bad("an int")
    elif base == "bool":
        if not isinstance(value, bool):
            raise bad("a bool")
    elif base == "date":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise bad("a date (or an ISO 8601 string)") from None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise bad("a date")
    elif base == "datetime":
        value = _as_datetime(value, bad)
    return _check_sendable(lk, value)


def _check_feature_value(lk: _Lookup, value: Any) -> Any:
    if lk.op == "isnull":
        if not isinstance(value, bool):
            raise FieldValidationError(
                f"{lk.text!r} needs True or False, got {type(value).__name__} {value!r}"
            )
        return value
    if value is None:
        return None  # `feature=None`: no value (as `feature__isnull=True`)
    if lk.op == "in":
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise FieldValidationError(
                f"{lk.text!r} needs a list, tuple or set, got {type(value).__name__} {value!r}"
            )
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_check_feature_item(lk, v) for v in items]
    return _check_feature_item(lk, value)


def _check_scalar(lk: _Lookup, kind: str, value: Any) -> Any:
    """`value` as a parameter for a field of neomodel type `kind`; wrong types raise."""

    def bad(expected: str) -> FieldValidationError:
        return FieldValidationError(
            f"{lk.label}.{lk.field} ({kind}) needs {expected} in {lk.text!r}, "
            f"got {type(value).__name__} {value!r}"
        )

    if kind == "StringProperty":
        if not isinstance(value, str):
            raise bad("a str")
    elif kind == "IntegerProperty":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and lk.op in COMPARISON_OPS:
                return value
            raise bad("an int")
    elif kind == "FloatProperty":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
    elif kind == "BooleanProperty":
        if not isinstance(value, bool):
            raise bad("a bool")
    elif kind.startswith("DateTime"):
        return _as_datetime(value, bad)
    return value


def _as_datetime(value: Any, bad: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise bad("a datetime (or an ISO 8601 string)") from None
    if isinstance(value, datetime):
        # Neo4j compares DateTimes of different zones by zone as well as instant: normalise to
        # UTC (the zone lineage stores), so equal instants compare equal.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    raise bad("a datetime")


def _check_value(lk: _Lookup, value: Any) -> Any:
    """Validate the op against the field type and the value against both; return the param."""
    op = lk.op
    if op == "isnull":
        if not isinstance(value, bool):
            raise FieldValidationError(
                f"{lk.text!r} needs True or False, got {type(value).__name__} {value!r}"
            )
        return value
    if op == "in":
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise FieldValidationError(
                f"{lk.text!r} needs a list, tuple or set, got {type(value).__name__} {value!r}"
            )
        items: Iterable[Any] = value
        if isinstance(value, (set, frozenset)):
            items = sorted(value, key=repr)  # a stable parameter
        return [_check_item(lk, v) for v in items]
    if value is None:
        if op == "exact":
            return None
        raise FieldValidationError(f"{lk.text!r} cannot compare with None")
    return _check_item(lk, value)


_INT64 = (-(2**63), 2**63 - 1)


def _check_sendable(lk: _Lookup, value: Any) -> Any:
    """Refuse values the driver cannot send (it would fail outside our error types)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FieldValidationError(
                f"{lk.text!r} got a str that is not valid Unicode (a lone surrogate at "
                f"position {exc.start}); Neo4j stores UTF-8 text"
            ) from None
    elif (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64[0] <= value <= _INT64[1]
    ):
        raise FieldValidationError(f"{lk.text!r} got {value}, outside Neo4j's 64-bit integer range")
    return value


def _check_item(lk: _Lookup, value: Any) -> Any:
    return _check_sendable(lk, _check_item_type(lk, value))


def _check_item_type(lk: _Lookup, value: Any) -> Any:
    if lk.field is None:  # a relation: uid (str) or id (int)
        uid = getattr(value, "uid", None)
        if not isinstance(value, (str, int)) and isinstance(uid, str):
            value = uid  # a record object
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise FieldValidationError(
                f"{lk.text!r} compares the related {lk.label}'s uid (str) or id (int), "
                f"got {type(value).__name__} {value!r}"
            )
        return value
    kind = _fields(lk.label)[lk.field]
    op = lk.op
    if op in STRING_OPS and kind != "StringProperty":
        raise FieldValidationError(
            f"lookup {op!r} needs a string field, but {lk.label}.{lk.field} is {kind} "
            f"(in {lk.text!r})"
        )
    if op in COMPARISON_OPS and kind == "BooleanProperty":
        raise FieldValidationError(
            f"lookup {op!r} cannot order {lk.label}.{lk.field} ({kind}) (in {lk.text!r})"
        )
    if value is None:
        raise FieldValidationError(f"{lk.text!r} cannot hold None in a list")
    return _check_scalar(lk, kind, value)


def mentions_branch(label: str, q: Q) -> bool:
    """Whether `q` names the own field `branch` (or `branch_id`) anywhere."""
    for child in q.children:
        if isinstance(child, Q):
            if mentions_branch(label, child):
                return True
            continue
        first = child[0].split("__")[0]
        if first not in relations_of(label) and _field(label, first) == "branch":
            return True
    return False


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------
def _hop(rel: Relation, src: str, dst: str, rvar: str = "") -> str:
    """`(src)-[:EDGE]->(dst:Target)`, direction-aware; edge and label from the models."""
    return f"({src}){rel.arrow(rvar)}({dst}:`{rel.target}`)"


def _chain(hops: Sequence[Relation], prefix: str) -> tuple[str, str]:
    """`MATCH` clauses from `n` along `hops`; returns them and the last node's variable.

    One `MATCH` per hop: within one pattern Cypher never reuses a relationship, but a lookup
    like Run `output_artifacts__run` must be able to walk the same edge back (as a SQL join can).
    """
    clauses, src = [], "n"
    for j, rel in enumerate(hops, 1):
        dst = f"{prefix}_{j}"
        clauses.append("MATCH " + _hop(rel, src, dst))
        src = dst
    return " ".join(clauses), src


# Feature lookups the (feature, value) index answers with a seek (an index hint for these).
_SEEKABLE = frozenset({"exact", "in", *COMPARISON_OPS})


def _label_property(lk: _Lookup, value: Any) -> str:
    """The ULabel property a categorical feature lookup compares: `uid` where the values are
    records (`Uid`), else `name`; a mix of both is refused."""
    values = value if lk.op == "in" else [value]
    uids = [isinstance(v, Uid) for v in values]
    if any(uids) and not all(uids):
        raise FieldValidationError(
            f"{lk.text!r} needs ULabel records or names, not a mix: {value!r}"
        )
    return "uid" if uids and all(uids) else "name"


class _Compiler:
    def __init__(self, label: str, features: Sequence[FeatureRef] = ()) -> None:
        self.label = label
        self.features = {f.name: f for f in features}
        self.params: dict[str, Any] = {}
        self._n_params = 0
        self._n_paths = 0
        self._n_features = 0

    def param(self, value: Any) -> str:
        name = f"p{self._n_params}"
        self._n_params += 1
        self.params[name] = value
        return f"${name}"

    def q(self, q: Q, negated_context: bool) -> str | None:
        inner_negated = negated_context or q.negated
        parts = []
        for child in q.children:
            if isinstance(child, Q):
                part = self.q(child, inner_negated)
            else:
                part = self.leaf(child[0], child[1], inner_negated)
            if part is not None:
                parts.append(part)
        if not parts:
            return None
        if q.connector not in (Q.AND, Q.OR):
            raise FieldValidationError(f"Q connector must be 'AND' or 'OR', got {q.connector!r}")
        body = parts[0] if len(parts) == 1 else f" {q.connector} ".join(f"({p})" for p in parts)
        return f"NOT ({body})" if q.negated else body

    def feature_parts(self, lk: _Lookup, value: Any) -> tuple[str, str]:
        """The pattern from `n` to a feature's values and the condition on them, for a lookup
        that compares values (not isnull): `(n)-[:HAS_VALUE]->(fv1:FeatureValue)`, `fv1.feature
        = $p0 AND fv1.value > $p1`. A categorical feature compares the ULabel's name, or its
        uid where the value is a record (`Uid`)."""
        feature, dtype = lk.feature, lk.feature.parsed if lk.feature else None
        assert feature is not None and dtype is not None
        self._n_features += 1
        k = self._n_features
        if dtype.categorical:
            prop = _label_property(lk, value)
            pattern = f"(n)-[fr{k}:`{LABEL_EDGE}`]->(fl{k}:ULabel)"
            if lk.op in ("exact", "in"):
                # Seek the labels too. Beside a value condition the planner then joins the
                # records of the two seeks (a hash join on `n`) rather than expanding each record
                # the value seek finds to its labels: 100k artifacts, `temperature__gt` matching
                # 10% of them and `cell_type=` one label of 100: 10,020 records expanded,
                # 23.6 ms (Neo4j's CPU 37.5 ms), against 5.0 ms (6.3 ms) joined.
                pattern += f" USING INDEX fl{k}:ULabel({prop})"
            cond = f"fr{k}.feature = {self.param(feature.uid)} AND " + self._compare(
                f"fl{k}.{prop}", lk.op, value, nullable_guard=False
            )
            return pattern, cond
        pattern = f"(n)-[:`{HAS_VALUE}`]->(fv{k}:`{VALUE_LABEL}`)"
        if lk.op in _SEEKABLE:
            # Seek the (feature, value) index: left alone (or told only `USING INDEX`), the
            # planner scans the whole index and filters once the pattern expands to records
            # (10k artifacts: 18,928 entries read to find 984).
            pattern += f" USING INDEX SEEK fv{k}:`{VALUE_LABEL}`(feature, value)"
        cond = f"fv{k}.feature = {self.param(feature.uid)} AND " + self._compare(
            f"fv{k}.value", lk.op, value, nullable_guard=False
        )
        return pattern, cond

    def feature_leaf(self, lk: _Lookup, value: Any) -> str:
        """A feature condition that is not a top-level pattern (under OR or NOT, `isnull`): a
        list of the record's own values for the feature, tested with `any()`/`size()`. Not an
        `EXISTS {}`: for that, the planner seeks the (feature, value) index once per record
        (10k artifacts: 22 s); a pattern comprehension always expands from the record, whose
        values are few."""
        feature, dtype = lk.feature, lk.feature.parsed if lk.feature else None
        assert feature is not None and dtype is not None
        f = self.param(feature.uid)
        self._n_features += 1
        k = self._n_features
        values = f"[(n)-[:`{HAS_VALUE}`]->(fv{k}:`{VALUE_LABEL}`) WHERE fv{k}.feature = {f} | fv{k}.value]"
        labels = f"[(n)-[fr{k}:`{LABEL_EDGE}`]->(fl{k}:ULabel) WHERE fr{k}.feature = {f} | fl{k}"
        if lk.op == "isnull" or value is None:
            is_null = True if value is None else value
            has = f"(size({values}) + size({labels}.uid]) > 0)"
            return f"NOT {has}" if is_null else has
        if dtype.categorical:
            prop = _label_property(lk, value)
            cond = self._compare(f"_x{k}", lk.op, value, nullable_guard=False)
            return f"any(_x{k} IN {labels}.{prop}] WHERE {cond})"
        cond = self._compare(f"_x{k}", lk.op, value, nullable_guard=False)
        return f"any(_x{k} IN {values} WHERE {cond})"

    def seed(self, child: tuple[str, Any]) -> tuple[str, str] | None:
        """A top-level feature condition as a pattern to MATCH (see `_compile`), or None."""
        lk = _resolve(self.label, child[0], self.features)
        if lk.feature is None or lk.op == "isnull":
            return None
        value = _check_feature_value(lk, child[1])
        if value is None:
            return None
        return self.feature_parts(lk, value)

    def leaf(self, lookup: str, value: Any, negated: bool) -> str:
        lk = _resolve(self.label, lookup, self.features)
        if lk.feature is not None:
            return self.feature_leaf(lk, _check_feature_value(lk, value))
        value = _check_value(lk, value)
        if not lk.hops:
            return self._compare(f"n.{lk.field}", lk.op, value, nullable_guard=negated)
        self._n_paths += 1
        pattern, last = _chain(lk.hops, f"m{self._n_paths}")
        if lk.field is None:
            if lk.op == "isnull" or value is None:
                is_null = True if value is None else value
                return f"{'NOT ' if is_null else ''}EXISTS {{ {pattern} }}"
            values = value if lk.op == "in" else [value]
            if all(isinstance(v, int) for v in values) and values:
                prop = "id"
            elif all(isinstance(v, str) for v in values):
                prop = "uid"
            else:
                raise FieldValidationError(
                    f"{lookup!r} needs uids (str) or ids (int), not a mix: {value!r}"
                )
            cond = self._compare(f"{last}.{prop}", lk.op, value, nullable_guard=False)
            return f"EXISTS {{ {pattern} WHERE {cond} }}"
        prop = f"{last}.{lk.field}"
        if lk.op == "isnull" or value is None:
            is_null = True if value is None else value
            return f"{'NOT ' if is_null else ''}EXISTS {{ {pattern} WHERE {prop} IS NOT NULL }}"
        cond = self._compare(prop, lk.op, value, nullable_guard=False)
        return f"EXISTS {{ {pattern} WHERE {cond} }}"

    def _compare(self, x: str, op: str, value: Any, *, nullable_guard: bool) -> str:
        if op == "isnull":
            return f"{x} IS NULL" if value else f"{x} IS NOT NULL"
        if op == "exact" and value is None:
            return f"{x} IS NULL"
        expr = _CYPHER_OPS[op].format(x=x, p=self.param(value))
        # Under NOT, a missing property must read as false (not null), as in Django's exclude().
        return f"coalesce({expr}, false)" if nullable_guard else expr


def _check_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldValidationError(f"{name} must be an int, got {type(value).__name__} {value!r}")


def _compile(sel: Select, extra: Sequence[str] = ()) -> tuple[str, dict[str, Any], _Compiler]:
    if not isinstance(sel, Select):
        raise TypeError(f"expected a Select, got {type(sel).__name__}")
    label = _check_label(sel.label)
    _check_int("branch", sel.branch, allow_none=True)
    _check_int("offset", sel.offset)
    _check_int("limit", sel.limit, allow_none=True)
    if sel.offset < 0 or (sel.limit is not None and sel.limit < 0):
        raise FieldValidationError(f"offset and limit must be >= 0, got {sel.offset}, {sel.limit}")
    if sel.where is not None and not isinstance(sel.where, Q):
        raise TypeError(f"where must be a Q, got {type(sel.where).__name__}")
    comp = _Compiler(label, sel.features)
    conditions: list[str] = []

    where = sel.where
    seeds: list[tuple[str, str]] = []
    if sel.anchor is not None:
        match = _anchor_match(sel.anchor, label, comp)
    else:
        match = f"MATCH (n:`{label}`)"
        if where is not None and comp.features and where.connector == Q.AND and not where.negated:
            # Feature conditions AND-ed at the top become patterns of the MATCH itself, so the
            # planner can start from the (feature, value) index or a ULabel's name and expand
            # to the few records, instead of testing every record's values (an EXISTS per row).
            # Several values of one feature can match: `WITH DISTINCT n` after the WHERE.
            rest = []
            for child in _conjuncts(where):
                seeded = comp.seed(child) if isinstance(child, tuple) else None
                if seeded is None:
                    rest.append(child)
                else:
                    seeds.append(seeded)
            if seeds:
                # One MATCH each, with its own WHERE: within one MATCH Cypher never binds a
                # relationship twice, so `temperature__gt=20, temperature__lt=30` could not both
                # use one value's edge. The rest is tested after `WITH DISTINCT n`.
                match += "".join(f"\nMATCH {p}\nWHERE {c}" for p, c in seeds)
                match += "\nWITH DISTINCT n"
                where = Q._make(Q.AND, False, rest)

    where_expr = comp.q(where, False) if where is not None else None
    names_branch = sel.where is not None and mentions_branch(label, sel.where)
    if sel.branch is not None and not names_branch:
        comp.params["branch"] = sel.branch
        conditions.append("n.branch = $branch")
    if where_expr is not None:
        conditions.append(where_expr)
    conditions.extend(extra)
    if not conditions:
        return match, comp.params, comp
    if len(conditions) == 1:
        return f"{match}\nWHERE {conditions[0]}", comp.params, comp
    where_text = " AND ".join(f"({c})" for c in conditions)
    return f"{match}\nWHERE {where_text}", comp.params, comp


def _conjuncts(q: Q) -> list[Q | tuple[str, Any]]:
    """The children of an AND, with nested non-negated ANDs flattened (`filter().filter()`
    nests the second call's conditions)."""
    out: list[Q | tuple[str, Any]] = []
    for child in q.children:
        if isinstance(child, Q) and child.connector == Q.AND and not child.negated:
            out += _conjuncts(child)
        else:
            out.append(child)
    return out


def _anchor_match(anchor: Anchor, label: str, comp: _Compiler) -> str:
    if not isinstance(anchor, Anchor):
        raise TypeError(f"anchor must be an Anchor, got {type(anchor).__name__}")
    start = _check_label(anchor.label)
    rel = relations_of(start).get(anchor.relation) if isinstance(anchor.relation, str) else None
    if rel is None:
        raise FieldValidationError(
            f"{start} has no relation {anchor.relation!r}; valid relations: "
            f"{', '.join(sorted(relations_of(start)))}"
        )
    if rel.target != label:
        raise FieldValidationError(
            f"{start}.{anchor.relation} leads to {rel.target}, not to the queried label {label}"
        )
    if not isinstance(anchor.uid, str):
        raise FieldValidationError(f"anchor uid must be a str, got {anchor.uid!r}")
    if anchor.edge_order is not None and anchor.through is not None:
        raise FieldValidationError("an anchor with `through` has no edge order")
    if anchor.edge_order is not None:
        _edge_order(anchor)
    comp.params["anchor_uid"] = anchor.uid
    if anchor.through is None:
        return "MATCH " + _hop(rel, f"a:`{start}` {{uid: $anchor_uid}}", "n", "r")
    via = relations_of(start).get(anchor.through) if isinstance(anchor.through, str) else None
    if via is None or not via.many:
        raise FieldValidationError(
            f"{start} has no many-relation {anchor.through!r} to go through; valid: "
            f"{', '.join(sorted(n for n, r in relations_of(start).items() if r.many))}"
        )
    far = relations_of(via.target).get(anchor.relation)
    if far is None or (far.edge, far.target, far.direction) != (
        rel.edge,
        rel.target,
        rel.direction,
    ):
        raise FieldValidationError(
            f"{via.target} records ({start}.{anchor.through}) have no relation "
            f"{anchor.relation!r} like {start}'s"
        )
    # `*0..1`: the start itself (no hop) or a record one hop along `through`; then `relation`.
    return (
        f"MATCH (a:`{start}` {{uid: $anchor_uid}}){via.arrow(length='*0..1')}(via)\n"
        f"MATCH (via){rel.arrow('r')}(n:`{label}`)"
    )


def _edge_order(anchor: Anchor) -> tuple[str, bool]:
    name = anchor.edge_order
    if name is None:  # callers only ask when the anchor has an edge_order
        raise FieldValidationError(f"edge {anchor.label}.{anchor.relation}: no edge_order given")
    descending = isinstance(name, str) and name.startswith("-")
    prop = name[1:] if descending else name
    valid = edge_fields_of(anchor.label, anchor.relation)
    if prop not in valid:
        raise FieldValidationError(
            f"edge {anchor.label}.{anchor.relation} has no property {prop!r}; valid edge "
            f"properties: {', '.join(sorted(valid)) or '(none)'}"
        )
    return prop, descending


def _order_terms(sel: Select) -> list[str]:
    order_by = (sel.order_by,) if isinstance(sel.order_by, str) else tuple(sel.order_by)
    terms, seen_id = [], False
    for item in order_by:
        if not isinstance(item, str) or not item:
            raise FieldValidationError(f"order_by takes field names, got {item!r}")
        descending = item.startswith("-")
        field = _own_field(sel.label, item[1:] if descending else item)
        terms.append(f"n.{field}{' DESC' if descending else ''}")
        seen_id = seen_id or field == "id"
    if not seen_id:
        terms.append("n.id")
    return terms


def compile_select(sel: Select) -> tuple[str, dict[str, Any]]:
    """The `MATCH ... [WHERE ...]` part of `sel` and its parameters.

    The queried node is `n`; with an anchor, the start node is `a` and the edge `r`. Ordering,
    distinct, offset and limit are not part of it (see `compile_fetch`).
    """
    query, params, _ = _compile(sel)
    return query, params


def _ordered(sel: Select) -> tuple[str, dict[str, Any]]:
    """`compile_select`'s query continued to the ordered records: `WITH n ORDER BY ...` with
    `SKIP`/`LIMIT` (what `compile_fetch` and `compile_columns` both return from)."""
    query, params, _ = _compile(sel)
    terms = _order_terms(sel)
    if sel.anchor is not None and sel.anchor.edge_order is not None:
        prop, descending = _edge_order(sel.anchor)
        if sel.distinct:
            agg = "max" if descending else "min"
            query += f"\nWITH n, {agg}(r.{prop}) AS _edge_order"
        else:
            query += f"\nWITH n, r.{prop} AS _edge_order"
        terms.insert(0, f"_edge_order{' DESC' if descending else ''}")
    else:
        query += "\nWITH DISTINCT n" if sel.distinct else "\nWITH n"
    query += "\nORDER BY " + ", ".join(terms)
    if sel.offset:
        params["skip"] = sel.offset
        query += " SKIP $skip"
    if sel.limit is not None:
        params["limit"] = sel.limit
        query += " LIMIT $limit"
    return query, params


def compile_fetch(sel: Select, include: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The whole query `fetch` runs, in order, in batches of up to `_BATCH` records.

    Each result row has one column, a list with one item per record (or, with a LIMIT of at
    most `_ROW_BY_ROW`, one record itself): `[properties, datetimes, include 0, include 1,
    ...]`, where `properties` is the node's property map with its datetime fields set to null
    and `datetimes` holds those fields in the form `_STAMP` gives. `fetch` decodes it.
    """
    query, params = _ordered(sel)
    label = sel.label
    include_exprs = [_include_expr(label, path, i) for i, path in enumerate(_as_paths(include))]
    # Rows come back in lists of _BATCH records, not one row per record: per row the driver
    # spends ~10 us of Python (message framing, Record objects), more than decoding the row
    # itself (1000 artifacts at 100k: 11.7 ms to return only their uids row by row, 1.5 ms to
    # count them; a 1000-record fetch took 29 ms row by row, 14 ms in one list). `collect(n)`
    # holds node references only (the sort before it holds them anyway); the property maps are
    # built one batch per row, so the server never holds more than one batch of them. Neo4j's
    # manual ("WITH: Sort results before using collect on them"): a list collected after
    # ORDER BY keeps that order. 100 and 1000 per batch measured the same.
    # A query that returns at most _ROW_BY_ROW records (get, first, one, the duplicate check
    # before every new artifact) returns them row by row: collecting has a fixed cost (a
    # duplicate check that finds nothing, 0 rows: 451 us as before row by row, 497 us
    # collected), more than the driver's ~10 us per row saves at a few rows.
    record = _record_expr(label, tuple(include_exprs))
    if _row_by_row(sel):
        return query + f"\nRETURN {record} AS _row", params
    params["batch"] = _BATCH
    query += (
        "\nWITH collect(n) AS _nodes"
        "\nUNWIND range(0, size(_nodes) - 1, $batch) AS _at"
        f"\nRETURN [n IN _nodes[_at.._at + $batch] | {record}] AS _rows"
    )
    return query, params


def compile_columns(
    sel: Select, fields: Sequence[str], include: Sequence[str] = (), features: bool = False
) -> tuple[str, dict[str, Any]]:
    """The query `fetch_columns` runs: the records of `sel` in order, by column.

    Each result row is one batch of up to `_BATCH` records: one list per field in `fields`
    (a datetime field in the form `_STAMP` gives), then one per include path; with `features`,
    then the batch's feature values (`graph.features.VALUE_COLUMNS`: record positions,
    feature uids, values) and, on the first row only, every feature's uid, name and dtype
    (`graph.features.FEATURE_COLUMNS`; empty lists on later rows). There is always at least
    one row, with empty lists when nothing matches, so the features come back then too.
    """
    query, params = _ordered(sel)
    label = sel.label
    stamps = _datetime_fields(label)
    columns = []
    for name in fields:
        field = _own_field(label, name)
        if field in stamps:
            columns.append(f"[_t IN [n IN _part | n.{field}] | {_STAMP}]")
        else:
            columns.append(f"[n IN _part | n.{field}]")
    for i, path in enumerate(_as_paths(include)):
        columns.append(f"[n IN _part | {_include_expr(label, path, i)}]")
    if features and label not in HOST_LABELS:
        raise FieldValidationError(
            f"{label} records hold no feature values; {', '.join(HOST_LABELS)} do"
        )
    params["batch"] = _BATCH
    # By column, not a map per record: pandas builds a frame from lists far faster than from
    # a dict per record, and nothing is walked per record in Python. CPU time of one
    # `df(features=True)` of 1,000 artifacts with 5 features each (process times, so the
    # machine's load does not enter): Neo4j 17 ms + Python 17 ms as a property map per record
    # with a flat value list, plus a second statement for the features' names; 12.5 + 5.5 ms by
    # column in one statement (wall p50, the two run back to back at load ~5: 54 ms, 13.4 ms).
    query += "\nWITH collect(n) AS _nodes"
    carried = "_part, _at"
    if features:
        query += f"\n{FEATURE_COLUMNS}"
        carried += ", " + ", ".join(FEATURE_KEYS)
    query += (
        "\nUNWIND range(0, CASE size(_nodes) WHEN 0 THEN 0 ELSE size(_nodes) - 1 END, $batch)"
        " AS _at"
        f"\nWITH _nodes[_at.._at + $batch] AS {carried}"
    )
    if features:
        query += f"\n{VALUE_COLUMNS}"
        columns += [
            *VALUE_RETURNS,
            *(f"CASE _at WHEN 0 THEN {k} ELSE [] END" for k in FEATURE_KEYS),
        ]
    # Named by position: unnamed, each column's name would be its whole expression, sent back
    # with every result.
    return query + "\nRETURN " + ", ".join(f"{c} AS _c{i}" for i, c in enumerate(columns)), params


# Records per result row of `fetch` (see `compile_fetch`).
_BATCH = 1000
# Up to this LIMIT, `fetch` reads one record per row (see `compile_fetch`).
_ROW_BY_ROW = 4


def _row_by_row(sel: Select) -> bool:
    return sel.limit is not None and sel.limit <= _ROW_BY_ROW


# Datetimes, the cheap way. The driver builds a `neo4j.time.DateTime` in pure Python for every
# temporal value it reads (calendar arithmetic, pytz), and `plain()` then converts it with
# `to_native()`: at 1000 artifacts (two datetimes each) that was 60% of `filter().to_list()`
# (cProfile at 100k: `hydrate_datetime` 4.7 s of 7.8 s for 30 calls). So a datetime field is
# sent as an int when it is what lineage writes, an instant in UTC (zone 'Z', offset 0),
# within Python's years 1..9999: microseconds since the epoch, rounded down as the driver's
# `to_native()` truncates nanoseconds, turned back into `_EPOCH + timedelta(microseconds=...)`
# with the tzinfo `to_native()` gives (pytz's UTC). The micros are `epochMillis * 1000 +
# microsecond % 1000`: `epochMillis` is the floor (Java's `toEpochMilli`), but Neo4j 5.26's
# `epochSeconds` is `epochMillis / 1000` rounded towards zero, one second late for an instant
# before 1970 with a fraction (1969-12-31T23:59:59.5Z gives 0).
# Anything else comes wrapped in a one-item list: another offset or a named zone goes through
# the driver as before, a value of another type is returned as it is, and `[null]` is a missing
# property (a stored list never holds a null), left out of the dict again.
# One CASE over a list of the fields, not one per field: Neo4j plans each new query text once,
# and a CASE per field cost 52 ms to plan against 40 ms for the list (18 ms for `RETURN n`).
# CASE tests its WHENs in order, so the accessors only ever see a ZONED DATETIME.
_STAMP = (
    "CASE WHEN _t IS :: ZONED DATETIME NOT NULL THEN CASE"
    " WHEN _t.timezone = 'Z' AND _t.epochMillis >= -62135596800000"  # 0001-01-01T00:00Z
    " AND _t.epochMillis < 253402300800000"  # 10000-01-01T00:00Z
    " THEN _t.epochMillis * 1000 + _t.microsecond % 1000 ELSE [_t] END ELSE [_t] END"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=pytz.utc)
# Values a node property map can hold that need no conversion.
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


@cache
def _datetime_fields(label: str) -> tuple[str, ...]:
    return tuple(f for f, kind in _fields(label).items() if kind.startswith("DateTime"))


@lru_cache(maxsize=256)  # built for every fetch (get, first, every duplicate check) otherwise
def _record_expr(label: str, include_exprs: tuple[str, ...]) -> str:
    """One record of node `n` for `fetch`: `[properties, datetimes, includes...]`."""
    stamps = _datetime_fields(label)
    props = ", ".join([".*", *(f"{f}: null" for f in stamps)])
    listed = ", ".join(f"n.{f}" for f in stamps)
    items = [f"n {{{props}}}", f"[_t IN [{listed}] | {_STAMP}]", *include_exprs]
    return f"[{', '.join(items)}]"


def _stamped(value: Any) -> Any:
    """A datetime field's value from the form `_STAMP` gives; None for a missing property."""
    if type(value) is int:
        return _EPOCH + timedelta(microseconds=value)
    return None if value[0] is None else plain(value[0])


def _decode(props: dict[str, Any], stamps: tuple[str, ...], times: list[Any]) -> dict[str, Any]:
    """The plain property dict of one `_record_expr` record (decoded in place: it is ours)."""
    for key, value in props.items():
        if type(value) not in _PLAIN_TYPES:  # lists; temporal or spatial values
            props[key] = plain(value)
    for key, value in zip(stamps, times):
        stamped = _stamped(value)
        if stamped is None:  # missing stays missing
            del props[key]
        else:
            props[key] = stamped
    return props


def _as_paths(include: Sequence[str]) -> list[str]:
    if isinstance(include, str):
        return [include]
    return list(include)


def _include_expr(label: str, path: Any, i: int) -> str:
    """A scalar (every hop to-one) or a list ordered by the target's id, for one include path."""
    if not isinstance(path, str) or not path:
        raise FieldValidationError(f"include takes paths like 'created_by__name', got {path!r}")
    parts = path.split("__")
    current, hops = label, []
    for seg in parts[:-1]:
        rel = relations_of(current).get(seg)
        if rel is None:
            raise FieldValidationError(
                f"{current} has no relation {seg!r} (in include {path!r}); valid relations: "
                f"{', '.join(sorted(relations_of(current)))}"
            )
        hops.append(rel)
        current = rel.target
    field = _field(current, parts[-1])
    if field is None:
        raise _unknown_name(current, parts[-1], relations=False)
    if not hops:
        return f"n.{field}"
    pattern, last = _chain(hops, f"i{i}")
    collect = (
        f"COLLECT {{ {pattern} WITH DISTINCT {last} "
        f"RETURN {last}.{field} AS v ORDER BY {last}.id }}"
    )
    if all(not rel.many for rel in hops):
        return f"head({collect})"
    return collect


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------
def fetch(conn: Any, sel: Select, include: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Node property dicts of `sel`, in order; each include path adds a key (the path
    itself)."""
    paths = _as_paths(include)
    query, params = compile_fetch(sel, paths)
    stamps = _datetime_fields(sel.label)
    rows = conn.read_column(query, params)
    batches = [rows] if _row_by_row(sel) else rows
    out: list[dict[str, Any]] = []
    for batch in batches:
        if not paths:
            out += [_decode(props, stamps, times) for props, times in batch]
            continue
        for props, times, *values in batch:
            record = _decode(props, stamps, times)
            for path, value in zip(paths, values):
                record[path] = plain(value)
            out.append(record)
    return out


def edge_properties(conn: Any, anchor: Anchor) -> dict[str, dict[str, Any]]:
    """The properties of each edge along an anchored relation, by the uid at its far end
    (`{component uid: {"slot": "obs"}}` for a schema's components): what `fetch` does not
    return, since it returns the records."""
    comp = _Compiler(_check_label(anchor.label))
    rel = (
        relations_of(anchor.label).get(anchor.relation)
        if isinstance(anchor.relation, str)
        else None
    )
    target = rel.target if rel is not None else anchor.label
    match = _anchor_match(anchor, target, comp)
    rows = conn.read(f"{match}\nRETURN n.uid AS uid, properties(r) AS props", comp.params)
    return {r["uid"]: plain(r["props"]) for r in rows}


def family_heads(conn: Any, label: str, stems: Sequence[str]) -> dict[str, str]:
    """The newest main-branch member (by uid, which is version order) of each version family
    `stems` names: `{stem: uid}`, families without one left out. One index seek per stem.

    The main branch's newest member is the family's `is_latest` one (`graph.records` keeps it
    so), but read by its uid alone: a concurrent commit of a new version becomes visible in the
    uid index as a whole node, whereas a query by `is_latest` can see the old head's flag cleared
    before it sees the new head (docs/reliability.md)."""
    label = _check_label(label)
    if not is_versioned(label):
        raise FieldValidationError(f"{label} records have no version families")
    rows = conn.read(
        f"UNWIND $stems AS stem CALL (stem) {{ MATCH (h:`{label}`) "
        "WHERE h.uid STARTS WITH stem AND h.branch = 1 "
        "RETURN h.uid AS head ORDER BY h.uid DESC LIMIT 1 } RETURN stem, head",
        {"stems": sorted(set(stems))},
    )
    return {r["stem"]: r["head"] for r in rows}


def fetch_columns(
    conn: Any,
    sel: Select,
    fields: Sequence[str],
    include: Sequence[str] = (),
    features: bool | Sequence[str] = False,
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The records of `sel` by column, in one query: `{field or include path: values}` with
    the values `fetch` gives (None where a record lacks the property), and with `features`
    (True, or the names wanted) one column per feature as `graph.features.value_columns` builds
    it (else `{}`)."""
    paths = _as_paths(include)
    query, params = compile_columns(sel, fields, paths, features is not False)
    rows = conn.read_rows(query, params)
    names = [*fields, *paths]
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        for column, part in zip(columns, row):
            column += part
    stamps = _datetime_fields(sel.label)
    out: dict[str, list[Any]] = {}
    for i, (name, column) in enumerate(zip(names, columns)):
        if i < len(fields) and name in stamps:
            column = [_stamped(value) for value in column]
        elif not set(map(type, column)) <= _PLAIN_TYPES:  # lists; temporal or spatial values
            column = [plain(value) for value in column]
        out[name] = column
    if features is False:
        return out, {}
    rows_at, uids, values = [], [], []
    k = len(names)
    for row in rows:
        rows_at += row[k]
        uids += row[k + 1]
        values += row[k + 2]
    first = rows[0]
    refs = {
        uid: FeatureRef(name, uid, dtype)
        for uid, name, dtype in zip(first[k + 3], first[k + 4], first[k + 5])
    }
    wanted = None if features is True else list(features)
    n = len(columns[0]) if columns else 0
    return out, value_columns(refs, n, rows_at, uids, values, wanted)


def count(conn: Any, sel: Select) -> int:
    """How many records `sel` selects, respecting offset/limit like `len(qs[a:b])`."""
    query, params, _ = _compile(sel)
    _order_terms(sel)  # validate like fetch
    query += "\nRETURN count(DISTINCT n) AS c" if sel.distinct else "\nRETURN count(n) AS c"
    total = conn.read(query, params)[0]["c"]
    total = max(0, total - sel.offset)
    return total if sel.limit is None else min(total, sel.limit)


def exists(conn: Any, sel: Select) -> bool:
    """Whether `sel` selects at least one record (after offset, within limit)."""
    query, params, _ = _compile(sel)
    _order_terms(sel)
    if sel.limit == 0:
        return False
    if sel.offset:
        params["skip"] = sel.offset
        query += "\nWITH DISTINCT n" if sel.distinct else "\nWITH n"
        query += " SKIP $skip"
    query += "\nRETURN true AS found LIMIT 1"
    return bool(conn.read(query, params))


def _regex_literal(s: str) -> str:
    """`s` as a Java regex matching itself: every ASCII non-alphanumeric char backslashed."""
    return "".join("\\" + c if ord(c) < 128 and not c.isalnum() else c for c in s)


def search(
    conn: Any,
    label: str,
    string: str,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = 20,
    case_sensitive: bool = False,
    branch: int | None = 1,
    where: Q | None = None,
) -> list[tuple[dict[str, Any], float]]:
    """Records of `label` matching `string`, best first, with lamindb's scores.

    Per searched field: +200 equal, +10 whole word, +8 start of a word, +2 end of a word,
    +1 contains. Only records where some field contains `string` are returned; ties by id.
    """
    label = _check_label(label)
    if not isinstance(string, str):
        raise TypeError(f"search() needs a str, got {type(string).__name__} {string!r}")
    _check_sendable(_Lookup("search", (), label, None, "search"), string)
    _check_int("limit", limit, allow_none=True)
    if limit is not None and limit < 0:
        raise FieldValidationError(f"limit must be >= 0, got {limit}")
    if fields is None:
        names = search_fields(label)
    else:
        if isinstance(fields, str):
            fields = [fields]
        names = []
        for name in fields:
            stored = _own_field(label, name)
            if _fields(label)[stored] != "StringProperty":
                raise FieldValidationError(
                    f"search needs string fields; {label}.{stored} is {_fields(label)[stored]}"
                )
            if stored not in names:
                names.append(stored)
    if not names:
        raise FieldValidationError(f"{label} has no string fields to search")

    def lower(x: str) -> str:
        return x if case_sensitive else f"toLower({x})"

    contains = " OR ".join(f"{lower(f'n.{f}')} CONTAINS {lower('$s')}" for f in names)
    query, params, _ = _compile(Select(label, where=where, branch=branch), [contains])
    flags = "(?s)" if case_sensitive else "(?siu)"
    lit = _regex_literal(string)
    boundary = r"[^\p{L}\p{N}]"
    params.update(
        s=string,
        rx_word=f"{flags}(?:.*{boundary})?{lit}(?:{boundary}.*)?",
        rx_start=f"{flags}(?:.*{boundary})?{lit}.*",
        rx_end=f"{flags}.*{lit}(?:{boundary}.*)?",
    )
    scores = []
    for f in names:
        x = f"n.{f}"
        scores += [
            f"CASE WHEN {lower(x)} = {lower('$s')} THEN 200 ELSE 0 END",
            f"CASE WHEN {x} =~ $rx_word THEN 10 ELSE 0 END",
            f"CASE WHEN {x} =~ $rx_start THEN 8 ELSE 0 END",
            f"CASE WHEN {x} =~ $rx_end THEN 2 ELSE 0 END",
            f"CASE WHEN {lower(x)} CONTAINS {lower('$s')} THEN 1 ELSE 0 END",
        ]
    query += "\nWITH n, " + "\n  + ".join(scores) + " AS score"
    query += "\nORDER BY score DESC, n.id"
    if limit is not None:
        params["limit"] = limit
        query += " LIMIT $limit"
    query += "\nRETURN n, score"
    return [(dict(row["n"]), float(row["score"])) for row in conn.read(query, params)]
