"""Feature values in the graph: dtypes, writing, reading and removing them.

Two shapes (docs/architecture.md, "Features"):
- a scalar value (int, float, str, bool, date, datetime, dict as JSON text) is a
  `(:FeatureValue {feature: <feature uid>, value})` node, one per distinct pair, shared by every
  record that holds it: `(record)-[:HAS_VALUE]->(value)`. The composite uniqueness constraint on
  `(feature, value)` (graph/schema.py) is the index `filter(temperature__gt=20)` seeks;
- a categorical value is an edge `(record)-[:LABELED_WITH {feature: <feature uid>}]->(:ULabel)`,
  the edge `record.ulabels` already follows (lamindb's label links carry their feature too).

A `list[...]` feature holds one value node or label edge per element. Records are `Artifact`,
`Collection` and `Run` nodes. Every name in the text below comes from this module or the
models; feature uids, values and record uids are parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import neo4j

from graph.connection import Connection, plain
from graph.errors import FieldValidationError, MissingTarget

HOST_LABELS = ("Artifact", "Collection", "Run")
VALUE_LABEL = "FeatureValue"
HAS_VALUE = "HAS_VALUE"
LABEL_EDGE = "LABELED_WITH"
SCALAR_DTYPES = ("int", "float", "num", "str", "bool", "date", "datetime", "dict")

_DTYPE = re.compile(
    r"(?P<list>list\[)?(?:(?P<scalar>int|float|num|str|bool|date|datetime|dict)"
    r"|cat(?:\[ULabel(?:\[(?P<type>[^\[\]]+)\])?\])?)(?(list)\])"
)


@dataclass(frozen=True)
class Dtype:
    """A parsed feature dtype: `base` is a scalar dtype (`num` read as `float`) or "cat"."""

    base: str
    many: bool  # list[...]
    label_type: str | None = None  # cat[ULabel[<type>]]: the ULabel type's name

    @property
    def categorical(self) -> bool:
        return self.base == "cat"


@cache
def parse_dtype(text: str) -> Dtype | None:
    """`Dtype` of lamindb's dtype spelling, or None if `text` is not one."""
    match = _DTYPE.fullmatch(text)
    if match is None:
        return None
    scalar = match["scalar"]
    base = "float" if scalar == "num" else (scalar or "cat")
    return Dtype(base, match["list"] is not None, match["type"])


@dataclass(frozen=True)
class FeatureRef:
    """A stored feature as queries and writes need it."""

    name: str
    uid: str
    dtype: str

    @property
    def parsed(self) -> Dtype | None:
        return parse_dtype(self.dtype) if self.dtype else None


# The one statement that resolves names to features (a filter naming a feature sends it first):
# the names are a parameter, whatever text they hold.
FEATURES_BY_NAME = (
    "MATCH (f:Feature) WHERE f.branch = 1 AND NOT coalesce(f.is_type, false) "
    "AND ($names IS NULL OR f.name IN $names) "
    "RETURN f.name AS name, f.uid AS uid, f.dtype AS dtype"
)


def feature_refs(conn: Connection, names: Iterable[str] | None = None) -> dict[str, FeatureRef]:
    """Features in the main branch by name (all of them if `names` is None), types excluded.
    Names that are not valid Unicode (no feature can have one) are not sent."""
    wanted = None if names is None else sorted(n for n in set(names) if encodable(n))
    if wanted == []:
        return {}
    rows = conn.read(FEATURES_BY_NAME, {"names": wanted})
    return {r["name"]: FeatureRef(r["name"], r["uid"], r["dtype"]) for r in rows}


def features_by_uid(conn: Connection) -> dict[str, FeatureRef]:
    """Every feature by uid, every branch (values of a trashed feature still show its name)."""
    rows = conn.read("MATCH (f:Feature) RETURN f.uid AS uid, f.name AS name, f.dtype AS dtype")
    return {r["uid"]: FeatureRef(r["name"], r["uid"], r["dtype"]) for r in rows}


_PLAIN = frozenset({str, int, float, bool})


def as_dict(flat: Sequence[Any], features: dict[str, FeatureRef]) -> dict[str, Any]:
    """A flat `[feature uid, value, ...]` list (`get_values`) as `{feature name: value}`,
    sorted by name: a sorted list where the dtype is a list or there are several values; dict
    values decoded from their JSON."""
    grouped: dict[str, list[Any]] = {}
    for i in range(0, len(flat), 2):
        value = flat[i + 1]
        grouped.setdefault(flat[i], []).append(value if type(value) in _PLAIN else plain(value))
    out: dict[str, Any] = {}
    for uid in sorted(grouped, key=lambda u: features[u].name if u in features else u):
        values = grouped[uid]
        ref = features.get(uid)
        dtype = ref.parsed if ref is not None else None
        if dtype is not None and dtype.base == "dict":
            values = [json.loads(v) for v in values]
        elif len(values) > 1:
            values.sort()
        many = dtype is not None and dtype.many
        out[ref.name if ref is not None else uid] = values if many or len(values) > 1 else values[0]
    return out


def value_columns(
    features: dict[str, FeatureRef],
    n: int,
    rows: Sequence[int],
    uids: Sequence[str],
    values: Sequence[Any],
    wanted: Sequence[str] | None,
) -> dict[str, list[Any]]:
    """One column of `n` cells per feature (those that occur, by name, or `wanted` in its
    order) from the values of `n` records as three parallel lists (`VALUE_COLUMNS`: the
    record's position, the feature uid, the value); a cell is what `as_dict` gives for that
    record and feature, None where it has no value. An unknown wanted name raises."""
    if wanted is not None:
        known = {ref.name for ref in features.values()}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise FieldValidationError(
                f"df(features=...): no feature named {', '.join(map(repr, unknown))}; "
                f"features: {', '.join(sorted(known)) or '(none)'}"
            )
    # A plain value of a one-value dtype goes straight into its cell (one dict lookup per
    # value); the values of a record that need more (a second value of the feature, a list or
    # dict dtype) are gathered per record and go through `as_dict`. A dict per record first
    # cost a fifth of a 1,000-row `df(features=True)`.
    simple = {
        uid: ref.name
        for uid, ref in features.items()
        if ref.parsed is not None and not ref.parsed.many and ref.parsed.base != "dict"
    }
    cells = {uid: [None] * n for uid in set(uids) if uid in simple}  # by feature uid
    odd: dict[int, list[Any]] = {}  # record position -> flat [feature uid, value, ...]
    get = cells.get
    for row, uid, value in zip(rows, uids, values):
        column = get(uid)
        if column is not None and column[row] is None and type(value) in _PLAIN:
            column[row] = value  # stored values are never null: None is "no value yet"
            continue
        if column is None:
            odd.setdefault(row, []).extend((uid, value))
        elif column[row] is None:
            column[row] = plain(value)
        else:  # a second value: this record's values of the feature go to `as_dict`
            flat = odd.setdefault(row, [])
            if uid not in flat[0::2]:
                flat.extend((uid, column[row]))
            flat.extend((uid, value))
    columns = {simple[uid]: column for uid, column in cells.items()}
    for row, flat in odd.items():
        for name, value in as_dict(flat, features).items():
            columns.setdefault(name, [None] * n)[row] = value
    names = sorted(columns) if wanted is None else list(wanted)
    return {name: columns.get(name) or [None] * n for name in names}


def find_labels(
    conn: Connection, names: Sequence[str], label_type: str | None
) -> dict[str, list[str]]:
    """ULabel uids in the main branch by name (within the type `label_type` if given)."""
    type_cond = (
        "" if label_type is None else "AND EXISTS { MATCH (u)-[:OF_TYPE]->(:ULabel {name: $type}) }"
    )
    rows = conn.read(
        "UNWIND $names AS name MATCH (u:ULabel {name: name}) "
        f"WHERE u.branch = 1 AND NOT coalesce(u.is_type, false) {type_cond} "
        "RETURN name, collect(u.uid) AS uids",
        {"names": sorted(set(names)), "type": label_type},
    )
    return {r["name"]: r["uids"] for r in rows}


def labels_by_lower_name(
    conn: Connection, names: Sequence[str], label_type: str | None
) -> dict[str, list[str]]:
    """ULabel names in the main branch (within the type `label_type` if given) equal to one of
    `names` but for case: each name as given -> the stored names (sorted). What a curator
    offers to standardize a value to (lamindb's case-insensitive match)."""
    lowered = sorted({n.lower() for n in names})
    if not lowered:
        return {}
    type_cond = (
        "" if label_type is None else "AND EXISTS { MATCH (u)-[:OF_TYPE]->(:ULabel {name: $type}) }"
    )
    rows = conn.read(
        "MATCH (u:ULabel) WHERE u.branch = 1 AND NOT coalesce(u.is_type, false) "
        f"AND toLower(u.name) IN $lowered {type_cond} "
        "RETURN toLower(u.name) AS lower, collect(DISTINCT u.name) AS names",
        {"lowered": lowered, "type": label_type},
    )
    by_lower = {r["lower"]: sorted(r["names"]) for r in rows}
    return {n: by_lower[n.lower()] for n in names if n.lower() in by_lower}


@dataclass
class Annotation:
    """What to add to (or keep on) one record: `values` are (feature uid, value) pairs, `labels`
    (feature uid, ULabel uid) pairs."""

    uid: str
    values: list[tuple[str, Any]]
    labels: list[tuple[str, str]]


def add_values(conn: Connection, label: str, annotations: Sequence[Annotation]) -> None:
    """Add feature values to records of `label`, all in one transaction (one UNWIND statement
    per shape for the whole batch); values and edges already there are kept, not doubled.
    A record or ULabel that no longer exists raises `MissingTarget` and nothing is written."""
    _check_host(label)
    conn.write(lambda tx: write_values(tx, label, annotations))


def write_values(
    tx: neo4j.ManagedTransaction, label: str, annotations: Sequence[Annotation]
) -> None:
    """`add_values` inside a transaction the caller runs: a record created with its values
    (`graph.records.NewRecord.annotation`) writes them in the transaction that creates it."""
    _check_host(label)
    rows = [
        {
            "uid": a.uid,
            "values": [{"f": f, "v": v} for f, v in a.values],
            "labels": [{"f": f, "u": u} for f, u in a.labels],
        }
        for a in annotations
    ]
    if not rows:
        return
    label_uids = sorted({u for a in annotations for _, u in a.labels})
    found = tx.run(
        f"UNWIND $uids AS uid MATCH (n:`{label}` {{uid: uid}}) RETURN count(n) AS c",
        uids=sorted({r["uid"] for r in rows}),
    ).single()
    if found is None or found["c"] != len({r["uid"] for r in rows}):
        raise MissingTarget(f"some {label} records to annotate no longer exist", label)
    if label_uids:
        seen = tx.run(
            "UNWIND $uids AS uid MATCH (u:ULabel {uid: uid}) RETURN count(u) AS c",
            uids=label_uids,
        ).single()
        if seen is None or seen["c"] != len(label_uids):
            raise MissingTarget("some ULabels to annotate with no longer exist", "ULabel")
    tx.run(
        f"UNWIND $rows AS row MATCH (n:`{label}` {{uid: row.uid}}) "
        "UNWIND row.values AS fv "
        f"MERGE (v:`{VALUE_LABEL}` {{feature: fv.f, value: fv.v}}) "
        f"MERGE (n)-[:`{HAS_VALUE}`]->(v)",
        rows=[r for r in rows if r["values"]],
    ).consume()
    tx.run(
        f"UNWIND $rows AS row MATCH (n:`{label}` {{uid: row.uid}}) "
        "UNWIND row.labels AS fl MATCH (u:ULabel {uid: fl.u}) "
        f"MERGE (n)-[:`{LABEL_EDGE}` {{feature: fl.f}}]->(u)",
        rows=[r for r in rows if r["labels"]],
    ).consume()


def remove_values(
    conn: Connection,
    label: str,
    uid: str,
    features: Sequence[str],
    values: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
) -> int:
    """Remove the values of features (uids) from one record, in one transaction: all of them,
    or only `values` (scalars) and `labels` (ULabel uids). Returns how many were removed."""
    _check_host(label)

    def work(tx: neo4j.ManagedTransaction) -> int:
        removed = tx.run(
            f"MATCH (n:`{label}` {{uid: $uid}})-[r:`{HAS_VALUE}`]->(v:`{VALUE_LABEL}`) "
            "WHERE v.feature IN $features AND ($values IS NULL OR v.value IN $values) "
            "DELETE r RETURN count(r) AS c",
            uid=uid,
            features=list(features),
            values=None if values is None else list(values),
        ).single()
        unlinked = tx.run(
            f"MATCH (n:`{label}` {{uid: $uid}})-[r:`{LABEL_EDGE}`]->(u:ULabel) "
            "WHERE r.feature IN $features AND ($labels IS NULL OR u.uid IN $labels) "
            "DELETE r RETURN count(r) AS c",
            uid=uid,
            features=list(features),
            labels=None if labels is None else list(labels),
        ).single()
        return (removed["c"] if removed else 0) + (unlinked["c"] if unlinked else 0)

    return conn.write(work)


def delete_feature_values(tx: neo4j.ManagedTransaction, feature_uid: str) -> None:
    """Inside the transaction that deletes a feature for good: its value nodes (one per value,
    used by no other feature) with their `HAS_VALUE` edges, and the `LABELED_WITH {feature}`
    edges of its categorical values (the ULabels stay). `graph.records.delete_record(...,
    also=[delete_feature_values])` runs it."""
    # `value IS NOT NULL` (always true) lets the planner seek the (feature, value) index.
    tx.run(
        f"MATCH (v:`{VALUE_LABEL}`) WHERE v.feature = $uid AND v.value IS NOT NULL DETACH DELETE v",
        uid=feature_uid,
    ).consume()
    # No index on the edge property: a scan of the LABELED_WITH edges, for a rare operation.
    tx.run(
        f"MATCH ()-[r:`{LABEL_EDGE}`]->(:ULabel) WHERE r.feature = $uid DELETE r",
        uid=feature_uid,
    ).consume()


# The values of record `n` as one flat list `[feature uid, value, feature uid, value, ...]`:
# scalar values, then label names, for a traversal that returns one row per node
# (`graph.lineage`; many records by column use `VALUE_COLUMNS`). Flat and built with pattern
# comprehensions: nested pairs cost the driver and `plain()` a list each, and two `COLLECT {}` subqueries per
# record cost the server more (1,000 records: 45 ms for the query with them, 28 ms without).
VALUES_EXPR = (
    f"reduce(_a = [], _p IN [(n)-[:`{HAS_VALUE}`]->(_v:`{VALUE_LABEL}`) | [_v.feature, _v.value]]"
    f" + [(n)-[_r:`{LABEL_EDGE}`]->(_u:ULabel) WHERE _r.feature IS NOT NULL "
    "| [_r.feature, _u.name]] | _a + _p)"
)


# The values of many records by column, for `graph.query.compile_columns` and `get_values`: in
# scope are `_part` (a list of record nodes) and `_at` (the position of its first record among
# all); the three `VALUE_RETURNS` are parallel lists, one item per value (scalar values, then
# label names): the record's position, the feature uid and the value. Three flat lists rather
# than a list per record: for 1,000 records with 5 values each the driver decodes them in
# 1.2 ms of Python CPU against 1.6-3.7 ms for 1,000 small lists (pattern comprehensions),
# while Neo4j spends about the same (6.5 against 6.75 ms CPU).
VALUE_COLUMNS = (
    "CALL (_part, _at) { UNWIND range(0, size(_part) - 1) AS _i WITH _i, _part[_i] AS _m "
    f"MATCH (_m)-[:`{HAS_VALUE}`]->(_v:`{VALUE_LABEL}`) "
    "RETURN collect(_at + _i) AS _vi, collect(_v.feature) AS _vf, collect(_v.value) AS _vv }\n"
    "CALL (_part, _at) { UNWIND range(0, size(_part) - 1) AS _i WITH _i, _part[_i] AS _m "
    f"MATCH (_m)-[_r:`{LABEL_EDGE}`]->(_u:ULabel) WHERE _r.feature IS NOT NULL "
    "RETURN collect(_at + _i) AS _li, collect(_r.feature) AS _lf, collect(_u.name) AS _lv }"
)
VALUE_RETURNS = ("_vi + _li", "_vf + _lf", "_vv + _lv")
# Every feature (every branch, as `features_by_uid`) as three lists: uids, names, dtypes.
FEATURE_COLUMNS = (
    "CALL () { MATCH (_f:Feature) "
    "RETURN collect(_f.uid) AS _fu, collect(_f.name) AS _fn, collect(_f.dtype) AS _fd }"
)
FEATURE_KEYS = ("_fu", "_fn", "_fd")


def get_values(conn: Connection, label: str, uid: str) -> list[Any]:
    """The values of one record as a flat `[feature uid, value, ...]` list (what `as_dict`
    reads), read as `df(features=True)` reads them (`VALUE_COLUMNS`); labels by name."""
    _check_host(label)
    row = conn.read_values(
        f"MATCH (n:`{label}` {{uid: $uid}}) WITH [n] AS _part, 0 AS _at\n{VALUE_COLUMNS}\n"
        f"RETURN {', '.join(VALUE_RETURNS[1:])}",
        {"uid": uid},
    )
    if row is None:
        return []
    uids, values = row
    return [item for pair in zip(uids, values) for item in pair]


# How many of a collection's members carry each ULabel, most first: through any categorical
# feature or a direct `ulabels` link, or only through the feature named `$feature` when it is
# not null. Members in the trash count (they are still members); labels in the trash do not.
# `Collection.label_counts` runs it; it is also cookbook recipe 22.
MEMBER_LABEL_COUNTS = """
OPTIONAL MATCH (f:Feature {name: $feature})
WITH f
MATCH (:Collection {uid: $uid})-[:CONTAINS]->(a:Artifact)-[r:LABELED_WITH]->(u:ULabel)
WHERE u.branch = 1 AND ($feature IS NULL OR r.feature = f.uid)
RETURN u.name AS label, u.uid AS uid, count(DISTINCT a) AS artifacts
ORDER BY artifacts DESC, label, uid
"""


def member_label_counts(
    conn: Connection, collection_uid: str, feature: str | None = None
) -> list[dict[str, Any]]:
    """`MEMBER_LABEL_COUNTS` for one collection: rows of `label`, `uid`, `artifacts`."""
    return conn.read(MEMBER_LABEL_COUNTS, {"uid": collection_uid, "feature": feature})


def encodable(text: str) -> bool:
    """Whether `text` can be sent to Neo4j (UTF-8: no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_host(label: str) -> None:
    if label not in HOST_LABELS:
        raise ValueError(f"feature values live on {', '.join(HOST_LABELS)}, not {label!r}")
