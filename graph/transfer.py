"""Moving records in and out of the graph: merging nodes and edges in batches (imports from a
lamindb instance and from dumps), and reading the whole graph, or a part of it, back out in
batches (exports, backups).

Writes are idempotent: a node is matched by its merge key (`uid`, or the unique `handle` of a
User, `root` of a Storage, `name` of a Feature) and an edge by its two ends, its type and its
`feature` property (the one property that tells parallel `LABELED_WITH` edges apart), so a batch
written twice changes nothing the second time. Each call here runs inside the caller's
transaction (`Connection.write`), so a batch of nodes and their edges is stored whole or not at
all, and an importer killed between batches is completed by running it again.

A new node keeps the `id` it is given (lamindb's, or the dumped graph's) when no node of its
label has that id yet; otherwise it gets the next one from its label's `:LineageCounter`, which is
first raised to the largest id kept, so ids lineage hands out later never collide with them.

Reading (`GraphReader`) runs in one explicit transaction, a page of records (in id order, with
their edges) per query, so memory stays flat whatever the size of the graph. With `pause_creates`
the transaction first write-locks every label's id counter, which every record creation takes
(`graph.records`): no record is created while the graph is read.

Labels, relationship types and property names in the text come from `graph.models` (checked);
every value is a parameter.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import neo4j

from graph.connection import Connection, plain
from graph.errors import FieldValidationError
from graph.features import HAS_VALUE, HOST_LABELS, LABEL_EDGE, VALUE_LABEL
from graph.lineage import LINEAGE_LABELS
from graph.models import (
    RECORD_LABELS,
    Relation,
    fields_of,
    model_for,
    relations_of,
)
from graph.query import _datetime_fields, _decode, _record_expr

# Provenance edges (docs/schema.md) an `--upstream-of` export follows from the record outwards, and the labels `--key` selects.
UPSTREAM_EDGES = ("GENERATED_BY", "USED", "EXECUTES", "CONTAINS", "HAS_META", "REVISES")
KEYED_LABELS = ("Artifact", "Collection", "Transform")
FETCH_SIZE = 1000  # rows the driver pulls at a time while reading
COUNTER_LABEL = "LineageCounter"
# Edges told apart by this property besides their ends and type (a label given to a record
# plainly, and the same label as a categorical feature's value, are two edges).
EDGE_IDENTITY = "feature"


def check_label(label: str) -> str:
    """`label` if it is a record label of the models, else `FieldValidationError`."""
    if label not in RECORD_LABELS:
        raise FieldValidationError(
            f"unknown record label {label!r}; known labels: {', '.join(RECORD_LABELS)}"
        )
    return label


def _check_props(label: str, props: dict[str, Any]) -> None:
    known = fields_of(label)
    unknown = sorted(set(props) - set(known))
    if unknown:
        raise FieldValidationError(
            f"{label} has no field {', '.join(map(repr, unknown))}; "
            f"fields: {', '.join(sorted(known))}"
        )


def _unique_fields(label: str) -> set[str]:
    model = model_for(label)
    return {
        prop.get_db_property_name(name)
        for name, prop in model.defined_properties(aliases=False, rels=False).items()
        if prop.unique_index
    }


@contextlib.contextmanager
def old_objects_frozen() -> Iterator[None]:
    """Inside the block, Python's cycle collector leaves the objects that existed before it
    alone (`gc.freeze`; `gc.unfreeze` on the way out hands them back to it).

    A transfer allocates millions of short-lived lists and dicts (the driver unpacking a page,
    the rows of a batch), and every full collection they trigger walked all of the process's
    objects (the modules of lineage, neo4j, pandas...): 26% of an export's CPU samples were in
    `gc_collect_main` (py-spy), and a 100k-artifact export took 5.7 s with them, 3.9 s frozen
    (3.7 s with the collector off). New objects are still collected.

    >>> with old_objects_frozen():
    ...     gc.get_freeze_count() > 0
    True
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# -- writing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Merged:
    """What `merge_nodes` did: the stored uid of each row's node by merge key, and how many
    nodes it created (the others existed and were updated, or left alone)."""

    uids: dict[Any, str]
    created: int


# Datetimes, the cheap way (the write side of `graph.query`'s reads): the driver packs every
# Python datetime parameter in pure Python (pytz, calendar arithmetic): 0.75 ms each on the
# loaded 2-core machine, 35 s of a 124 s import of 22.5k lamindb records (cProfile:
# `dehydrate_datetime`). An instant in UTC is sent as its ISO 8601 text instead and parsed by
# Neo4j (`datetime()`), which stores the same value (offset 0 is zone 'Z' either way); other
# offsets and naive datetimes go through the driver as before.
_ZERO = timedelta(0)


def _texted(label: str, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """`rows` with their UTC datetimes as ISO text (copied rows), and the Cypher `SET` that
    turns them back into datetimes on node `n`."""
    fields = [
        f for f in _datetime_fields(label) if any(isinstance(r.get(f), datetime) for r in rows)
    ]
    if not fields:
        return rows, ""
    out = []
    for row in rows:
        row = dict(row)
        for f in fields:
            v = row.get(f)
            if isinstance(v, datetime) and v.utcoffset() == _ZERO:
                row[f] = v.isoformat()
        out.append(row)
    sets = ", ".join(
        f"n.`{f}` = CASE WHEN n.`{f}` IS :: STRING THEN datetime(n.`{f}`) ELSE n.`{f}` END"
        for f in fields
    )
    return out, f" SET {sets}"


def merge_nodes(
    tx: neo4j.ManagedTransaction,
    label: str,
    rows: Sequence[dict[str, Any]],
    *,
    key: str = "uid",
    update: bool = True,
) -> Merged:
    """Create the nodes of `rows` (stored properties, `uid` and `key` included, `id` optional)
    that do not exist yet, matched by `key`; with `update`, set the properties of those that do
    (never their `id`, `uid` or `key`). Ids: see the module docstring."""
    check_label(label)
    if key not in _unique_fields(label):
        raise FieldValidationError(f"{label}.{key} is not unique: nodes cannot be merged by it")
    for row in rows:
        _check_props(label, row)
        if row.get(key) is None or not row.get("uid"):
            raise FieldValidationError(f"a {label} row needs {key!r} and 'uid'")
    if not rows:
        return Merged({}, 0)
    keys = [row[key] for row in rows]
    existing = {
        r["k"]: r["uid"]
        for r in tx.run(
            f"UNWIND $keys AS k MATCH (n:`{label}` {{`{key}`: k}}) RETURN k, n.uid AS uid",
            keys=keys,
        )
    }
    new = [dict(row) for row in rows if row[key] not in existing]
    if new:
        wanted = [row["id"] for row in new if isinstance(row.get("id"), int)]
        taken = {
            r["i"]
            for r in tx.run(
                f"UNWIND $ids AS i MATCH (n:`{label}` {{id: i}}) RETURN i", ids=sorted(wanted)
            )
        }
        keep = [i for i in wanted if i not in taken]
        # The counter's write lock is taken here (as every record creation takes it), and it
        # is raised above every id kept before any new one is drawn from it.
        last = tx.run(
            f"MERGE (c:`{COUNTER_LABEL}` {{label: $label}}) ON CREATE SET c.value = 0 "
            "SET c.value = CASE WHEN c.value < $top THEN $top ELSE c.value END "
            "RETURN c.value AS last",
            label=label,
            top=max(keep, default=0),
        ).single(strict=True)["last"]
        kept = set(keep)
        for row in new:
            if row.get("id") not in kept:
                last += 1
                row["id"] = last
        tx.run(
            f"MATCH (c:`{COUNTER_LABEL}` {{label: $label}}) SET c.value = $last",
            label=label,
            last=last,
        ).consume()
        new, stamps = _texted(label, new)
        tx.run(f"UNWIND $rows AS row CREATE (n:`{label}`) SET n = row{stamps}", rows=new).consume()
    if update and existing:
        fixed = {"id", "uid", key}
        props, stamps = _texted(
            label,
            [
                {k: v for k, v in row.items() if k not in fixed}
                for row in rows
                if row[key] in existing
            ],
        )
        changes = [
            {"k": row[key], "props": p}
            for row, p in zip((r for r in rows if r[key] in existing), props, strict=True)
        ]
        tx.run(
            f"UNWIND $rows AS row MATCH (n:`{label}` {{`{key}`: row.k}}) SET n += row.props{stamps}",
            rows=changes,
        ).consume()
    uids = {row[key]: existing.get(row[key], row["uid"]) for row in rows}
    return Merged(uids, len(new))


class WriteBehind:
    """Writes that run one at a time in a worker thread, one batch behind the reading: the
    next batch is read and built while the server writes the last one (reading and building
    rows was a fifth of a dump import's time). `submit(work, done)` first waits for the batch
    before and runs its `done(result)` in the caller's thread, in order, then hands `work` to
    the thread; `drain()` waits for the last one. A write's error comes out of the `submit` or
    `drain` after it. Used as a context manager: leaving the block drains (unless an error is
    leaving it) and stops the thread.

    >>> with WriteBehind() as behind:
    ...     behind.submit(lambda: 2 + 2, print)
    4
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-write")
        self._last: tuple[Future[Any], Callable[[Any], None]] | None = None

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self.drain()
        self._last = (self._pool.submit(work), done)

    def drain(self) -> None:
        if self._last is not None:
            future, done = self._last
            self._last = None
            done(future.result())

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        try:
            if exc_type is None:
                self.drain()
        finally:
            self._last = None
            self._pool.shutdown(wait=True, cancel_futures=True)


def relation_for(label: str, edge: str, target: str) -> tuple[str, Relation]:
    """The relation of `label` that is an outgoing `edge` to `target` (name and `Relation`);
    `FieldValidationError` if the models declare none."""
    check_label(label)
    for name, rel in relations_of(label).items():
        if rel.direction == "out" and rel.edge == edge and rel.target == target:
            return name, rel
    raise FieldValidationError(f"the models declare no edge ({label})-[:{edge}]->({target})")


def merge_edges(
    tx: neo4j.ManagedTransaction,
    label: str,
    relation: str,
    pairs: Sequence[dict[str, Any]],
    *,
    replace: bool = False,
) -> int:
    """Merge edges along `relation` of `label`, from node uid `src` to node uid `dst` of each
    pair, with the pair's `props` (its properties; set on the edge). With `replace` (to-one
    relations), other edges of the relation from each `src` are removed. Returns how many pairs
    had both ends (the others are left out)."""
    check_label(label)
    rels = relations_of(label)
    if relation not in rels:
        raise FieldValidationError(f"{label} has no relation {relation!r}")
    rel = rels[relation]
    if not pairs:
        return 0
    rows = [{"src": p["src"], "dst": p["dst"], "props": dict(p.get("props") or {})} for p in pairs]
    ident = EDGE_IDENTITY
    found = tx.run(
        f"UNWIND $rows AS p MATCH (n:`{label}` {{uid: p.src}}) MATCH (m:`{rel.target}` {{uid: p.dst}}) "
        f"WITH n, m, p, [(n){rel.arrow('e')}(m) WHERE (e.`{ident}` IS NULL) = (p.props.`{ident}` IS NULL) "
        f"AND coalesce(e.`{ident}` = p.props.`{ident}`, true) | e] AS same "
        f"FOREACH (_ IN CASE WHEN size(same) = 0 THEN [1] ELSE [] END | "
        f"CREATE (n){rel.arrow('e')}(m) SET e = p.props) "
        "FOREACH (e IN same | SET e = p.props) "
        "RETURN count(*) AS found",
        rows=rows,
    ).single(strict=True)["found"]
    if replace:
        tx.run(
            f"UNWIND $rows AS p MATCH (n:`{label}` {{uid: p.src}}){rel.arrow('e')}(m:`{rel.target}`) "
            "WHERE m.uid <> p.dst DELETE e",
            rows=rows,
        ).consume()
    return found


def merge_values(tx: neo4j.ManagedTransaction, label: str, pairs: Sequence[dict[str, Any]]) -> int:
    """Merge scalar feature values: for each pair, the `(:FeatureValue {feature, value})` node
    and the `HAS_VALUE` edge to it from the `label` node with uid `src`. Returns how many
    pairs had their record."""
    if label not in HOST_LABELS:
        raise FieldValidationError(
            f"feature values live on {', '.join(HOST_LABELS)}, not {label!r}"
        )
    if not pairs:
        return 0
    return tx.run(
        f"UNWIND $rows AS p MATCH (n:`{label}` {{uid: p.src}}) "
        f"MERGE (v:`{VALUE_LABEL}` {{feature: p.feature, value: p.value}}) "
        f"MERGE (n)-[:`{HAS_VALUE}`]->(v) RETURN count(*) AS found",
        rows=[{"src": p["src"], "feature": p["feature"], "value": p["value"]} for p in pairs],
    ).single(strict=True)["found"]


def merge_value_nodes(tx: neo4j.ManagedTransaction, values: Sequence[dict[str, Any]]) -> None:
    """Merge `(:FeatureValue {feature, value})` nodes (a value no record holds any more is
    still a node, as deleting a record leaves it)."""
    if values:
        tx.run(
            f"UNWIND $rows AS p MERGE (:`{VALUE_LABEL}` {{feature: p.feature, value: p.value}})",
            rows=[{"feature": v["feature"], "value": v["value"]} for v in values],
        ).consume()


def raise_counters(tx: neo4j.ManagedTransaction, counters: dict[str, int]) -> None:
    """Raise each label's id counter to at least the given value (never lower it)."""
    rows = [{"label": check_label(label), "value": v} for label, v in counters.items()]
    if rows:
        tx.run(
            f"UNWIND $rows AS r MERGE (c:`{COUNTER_LABEL}` {{label: r.label}}) "
            "ON CREATE SET c.value = r.value "
            "SET c.value = CASE WHEN c.value < r.value THEN r.value ELSE c.value END",
            rows=rows,
        ).consume()


def storage_uid(conn: Connection, root: str) -> str | None:
    """The uid of the Storage record of `root`, None when there is none."""
    found = conn.read("MATCH (s:Storage {root: $root}) RETURN s.uid AS uid", {"root": root})
    return found[0]["uid"] if found else None


def is_empty(conn: Connection) -> bool:
    """Whether the graph holds no record and no feature value."""
    labels = [*RECORD_LABELS, VALUE_LABEL]
    rows = conn.read(
        "CALL () { " + " UNION ".join(f"MATCH (n:`{lb}`) RETURN n LIMIT 1" for lb in labels) + " } "
        "RETURN count(n) AS n"
    )
    return rows[0]["n"] == 0


def wipe(conn: Connection) -> None:
    """Delete every node but the schema-version node: first every edge, then the nodes, each
    in transactions of 10,000 rows.

    Edges first, because `DETACH DELETE` of a node deletes all of its edges in the node's
    transaction, and a Storage or User node holds one edge per artifact: at 100k artifacts
    (608k edges) the first batch ran out of Neo4j's transaction memory
    (`MemoryPoolOutOfMemoryError`, 1 GB heap); edges first took 6.4 s, the nodes 4.8 s. The
    scans are lazy (`TransactionForeach` over an all-relationships scan, no `Eager`), so the
    outer transaction holds nothing either. Not atomic: a wipe cut short leaves part of the
    graph (callers check what they load before they wipe).
    """
    conn.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS")
    conn.run(
        "MATCH (n) WHERE NOT n:LineageSchema "
        "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
    )


# -- reading -------------------------------------------------------------------------------------
# Outgoing edges a sub-graph follows from its records to what they need to be complete: the run
# and transform that made them, their creator, space, storage, members, meta artifact, earlier
# versions, annotations, feature values and types, and the run that started a run.
DEPENDENCY_EDGES = (
    "GENERATED_BY",
    "EXECUTES",
    "INITIATED_BY",
    "CREATED_BY",
    "IN_SPACE",
    "STORED_IN",
    "CONTAINS",
    "HAS_META",
    "REVISES",
    LABEL_EDGE,
    "IN_PROJECT",
    "CITES",
    "OF_TYPE",
    HAS_VALUE,
)


def _as_is(value: Any) -> Any:
    return value


class GraphReader:
    """The graph's nodes and edges in batches of plain values, read in one transaction.

    Used as a context manager; `scope` (node element ids, from `subgraph`) limits what is read
    to those nodes and the edges between them.
    """

    def __init__(self, conn: Connection, *, pause_creates: bool = False) -> None:
        self._conn = conn
        self._pause = pause_creates
        self._session: Any = None
        self._tx: Any = None

    def __enter__(self) -> GraphReader:
        mode = neo4j.WRITE_ACCESS if self._pause else neo4j.READ_ACCESS
        with self._conn._errors():
            self._session = self._conn.driver.session(
                database=self._conn.settings.database,
                default_access_mode=mode,
                fetch_size=FETCH_SIZE,
            )
            self._tx = self._session.begin_transaction()
            if self._pause:
                self._tx.run(
                    f"MATCH (c:`{COUNTER_LABEL}`) WITH c ORDER BY c.label "
                    "SET c._lock = true REMOVE c._lock"
                ).consume()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._tx is not None:
                self._tx.rollback()  # nothing was written: the locks only
        finally:
            if self._session is not None:
                self._session.close()

    def _rows(
        self,
        query: str,
        params: dict[str, Any],
        batch: int,
        convert: Callable[[Any], Any] = plain,
    ) -> Iterator[list[Any]]:
        with self._conn._errors():
            out: list[Any] = []
            for record in self._tx.run(query, params):
                out.append(convert(record[0]))
                if len(out) >= batch:
                    yield out
                    out = []
            if out:
                yield out

    def counters(self) -> dict[str, int]:
        first: list[Any] = next(
            self._rows(f"MATCH (c:`{COUNTER_LABEL}`) RETURN collect([c.label, c.value])", {}, 1),
            [[]],
        )
        rows = first[0]
        return {label: value for label, value in rows if label in RECORD_LABELS}

    def values(self, scope: Sequence[str] | None = None, batch: int = 2000) -> Iterator[list[Any]]:
        """Batches of `{"label": "FeatureValue", "props"}` for the feature-value nodes (with
        `scope`, those in it), in no particular order (sorting would hold them all in the
        server)."""
        where = "" if scope is None else "WHERE elementId(n) IN $scope "
        query = f"MATCH (n:`{VALUE_LABEL}`) {where}RETURN {{label: '{VALUE_LABEL}', props: properties(n)}}"
        yield from self._rows(query, {"scope": list(scope or [])}, batch)

    def records(
        self, label: str, scope: Sequence[str] | None = None, batch: int = 2000
    ) -> Iterator[list[tuple[dict[str, Any], list[list[Any]]]]]:
        """Batches of `(props, edges)` for the records of `label`, in id order: the node's
        properties as plain values, and the edges leaving it as the server sent them, each
        `[type, props, label, uid]`, or `[type, props, "FeatureValue", feature, value]` for a
        feature value (`props`: the edge's properties, driver values); with `scope`, only nodes
        in it and edges whose other end is in it too.

        A batch is one query and one row: the next `batch` records after the last id (a seek
        of the label's unique id index, in its order), each with its edges in a list. The
        driver's cost is per row: 100k artifacts with their 475k edges took 10.0 s read as a
        row per edge, 3.9 s as a row per artifact, and still 12 of a 17 s export went to the
        driver's per-row work (cProfile); a row per batch leaves it nothing. The next batch is
        read in a worker thread (the same transaction, used by one thread at a time) while the
        caller writes this one out: the server's time per batch (3 of a 13 s export of 112k
        records) overlaps the caller's. A record's datetimes come as integers (`graph.query`'s
        cheap way): the driver's own datetime values took half of an export's time before (a
        22.5k-node export: `plain` 33 s and the driver's unpacking 29 s of 143 s). Records
        without an id (none that lineage writes) come last, in one query, asked only when the
        pages did not hold every record of the label.
        """
        check_label(label)
        stamps = _datetime_fields(label)
        inside = "" if scope is None else " AND elementId(n) IN $scope"
        edges = f"[(n)-[r]->(b){'' if scope is None else ' WHERE elementId(b) IN $scope'} | "
        # Lists, not maps: the driver unpacks a map's keys for every edge (and `_plain_map`
        # looked at every value: 4 s of a 17 s export).
        edges += (
            f"CASE WHEN b:`{VALUE_LABEL}` THEN [type(r), properties(r), '{VALUE_LABEL}', b.feature, b.value] "
            "ELSE [type(r), properties(r), head(labels(b)), b.uid] END]"
        )
        record = f"[{_record_expr(label, ())}, {edges}]"
        page = (
            f"MATCH (n:`{label}`) WHERE n.id > $after{inside} "
            f"WITH n ORDER BY n.id LIMIT $batch "
            f"RETURN [collect({record}), max(n.id)]"
        )
        params: dict[str, Any] = {"scope": list(scope or []), "batch": batch}

        def fetch(after: Any) -> list[Any]:
            found = self._rows(page, {**params, "after": after}, 1, _as_is)
            [(rows, last)] = next(found, [[[], None]])
            return [rows, last]

        def row(value: list[Any]) -> tuple[dict[str, Any], list[list[Any]]]:
            (props, times), out = value
            return _decode(props, stamps, times), out

        paged = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-read") as ahead:
            coming = ahead.submit(fetch, -(2**63))
            while True:
                rows, last = coming.result()
                if not rows:
                    break
                coming = ahead.submit(fetch, last)
                paged += len(rows)
                yield [row(r) for r in rows]
        if scope is None:
            # The label's count comes from Neo4j's count store (no scan). When the pages held
            # every record, the query for id-less ones is not even planned: planning it took
            # 0.25 s a label on a server that had not run it yet (3 s of a 100k export's 8).
            [total] = next(self._rows(f"MATCH (n:`{label}`) RETURN count(n)", {}, 1), [0])
            if total <= paged:
                return
        unnumbered = f"MATCH (n:`{label}`) WHERE n.id IS NULL{inside} RETURN {record}"
        yield from self._rows(unnumbered, params, batch, row)

    def keyed(self, prefix: str) -> list[str]:
        """`subgraph` of the artifacts, collections and transforms whose key starts with
        `prefix`."""
        labels = " OR ".join(f"s:`{lb}`" for lb in KEYED_LABELS)
        return self.subgraph(
            f"MATCH (s) WHERE ({labels}) AND s.key STARTS WITH $prefix RETURN s",
            {"prefix": prefix},
        )

    def upstream_of(self, uid: str) -> list[str] | None:
        """`subgraph` of the lineage record `uid` and everything upstream of it (the
        `UPSTREAM_EDGES` followed outwards); None when no lineage record has that uid."""
        labels = " OR ".join(f"f:`{lb}`" for lb in LINEAGE_LABELS)
        found = self._conn.read(
            f"MATCH (f) WHERE ({labels}) AND f.uid = $uid RETURN f.uid AS uid", {"uid": uid}
        )
        if not found:
            return None
        types = "|".join(f"`{t}`" for t in UPSTREAM_EDGES)
        return self.subgraph(
            f"MATCH (f) WHERE ({labels}) AND f.uid = $uid MATCH (f)-[:{types}*0..]->(s) RETURN s",
            {"uid": uid},
        )

    def subgraph(self, start: str, params: dict[str, Any]) -> list[str]:
        """Element ids of the nodes `start` (a `MATCH ... RETURN s`-shaped query fragment
        binding `s`, built from the models by the caller) finds, and of everything they need:
        the `DEPENDENCY_EDGES` followed outwards, then the features their values and
        categorical labels name, with those features' types."""
        types = "|".join(f"`{t}`" for t in DEPENDENCY_EDGES)
        query = (
            f"CALL () {{ {start} }} "
            f"MATCH (s)-[:{types}*0..]->(d) WITH collect(DISTINCT d) AS ds "
            "CALL (ds) { "
            "  UNWIND ds AS d "
            f"  OPTIONAL MATCH (d)-[e:`{LABEL_EDGE}`]->() "
            f"  WITH d, collect(e.feature) AS fs "
            f"  RETURN collect(CASE WHEN d:`{VALUE_LABEL}` THEN d.feature END) "
            "    + reduce(a = [], x IN collect(fs) | a + x) AS named "
            "} "
            "OPTIONAL MATCH (g:Feature) WHERE g.uid IN named "
            "WITH ds, collect(g) AS gs "
            "UNWIND ds + gs AS x "
            f"MATCH (x)-[:{types}*0..]->(y) "
            "RETURN collect(DISTINCT elementId(y))"
        )
        first: list[Any] = next(self._rows(query, params, 1), [[]])
        return list(first[0] or [])


def edge_statement(edge: str, src: str, dst: str) -> tuple[str, str]:
    """The relation a dumped edge is (by its type and end labels), checked against the
    models; `(relation name or "", kind)`, kind "relation" or "value" (a `HAS_VALUE`)."""
    if edge == HAS_VALUE and dst == VALUE_LABEL:
        if src not in HOST_LABELS:
            raise FieldValidationError(f"the models declare no edge ({src})-[:{edge}]->({dst})")
        return "", "value"
    name, _ = relation_for(src, edge, dst)
    return name, "relation"
