"""Writing records: one transaction per record (node, edges, `is_latest` flip), `UNWIND` for bulk.

What callers pass is plain data: a label, a dict of properties (stored names, validated here
against `graph.models`), and edges as `EdgeSpec`s naming a relation of the label and the uids at
the other end. Every value reaches Cypher as a parameter; labels, relationship types and
property names come from the models.

Integer ids come from one `(:LineageCounter {label})` node per label, incremented inside the
writing transaction: the write lock on that node serialises concurrent writers of a label for
the instant it takes, and ids are never reused. A version family is serialised the same way:
the writer locks every member of the family (in uid order, so two writers cannot deadlock each
other), then reads the family again and takes `max + 1` as the new version counter.

Content is stored once. Callers look for a record with the same hash before they write, but two
processes can both find none and both write. So a write that passes `unique_hash` looks again
inside its transaction, right after taking the label's counter lock: any writer of the label
that got the lock first has committed by then (Neo4j releases locks after the commit is
applied), so its node is seen, and the write stops with `DuplicateContent` carrying the stored
record instead of creating a second one. The transaction rolls back, counter included. A record
may narrow what counts as the same content (`NewRecord.same_content`: the same hash *and* key,
say). A key names one version family the same way: a record that starts a family under a key
another writer's family took meanwhile (`NewRecord.family`) stops with `FamilyExists`, naming
that family's head for the caller to revise instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import neo4j

from graph.connection import Connection, plain
from graph.errors import (
    DuplicateContent,
    FamilyExists,
    FieldValidationError,
    MissingTarget,
    VersionTagExists,
)
from graph.features import Annotation, write_values
from graph.ids import FIRST_VERSION, counter_string, counter_value
from graph.models import edge_fields_of, fields_of, is_versioned, relations_of, uid_length
from graph.query import Select, compile_select

BATCH_SIZE = 2000  # rows per UNWIND transaction in bulk writes


@dataclass(frozen=True)
class EdgeSpec:
    """Edges from the written node along one relation: to each uid, with optional properties."""

    relation: str
    uids: Sequence[str]
    properties: Sequence[dict[str, Any]] | None = None  # one dict per uid, e.g. {"position": 0}


@dataclass(frozen=True)
class RunInputs:
    """`(run)-[:USED]->` edges from one run to records that exist (`edges` name relations of
    `Run`: `input_artifacts`, `input_collections`). They are merged, so an input recorded before
    is not recorded twice, and never drawn to one of the run's own outputs: data a run made is
    not also its input (lamindb's rule)."""

    run: str  # the run's uid
    edges: Sequence[EdgeSpec]


@dataclass(frozen=True)
class RowsUsed:
    """Which rows of one artifact version a run saw, for its `USED` edge: `rows` is the row set
    (`loaders.rowsets`: a bitmap or row ranges), `n_rows` the rows the file has, `n_used` how many
    of them the run saw."""

    artifact: str  # the artifact's uid
    rows: bytes
    n_rows: int
    n_used: int


@dataclass
class NewRecord:
    """One node to create: its stored properties, its outgoing/incoming edges, the inputs its
    run used to make it (a collection's members) and its feature values, written in the same
    transaction.

    `same_content`: names of properties and to-one relations a stored node must share with this
    one, besides its `hash`, to count as the same content under `unique_hash` (a missing value
    matches a missing one); empty: the hash alone. `family`: names of properties and to-one
    relations that name a version family; a record that starts a new family while the latest
    version of a stored family (not trashed) shares all of them raises `FamilyExists`; empty:
    no such check.
    """

    props: dict[str, Any]
    edges: list[EdgeSpec] = field(default_factory=list)
    run_inputs: RunInputs | None = None
    same_content: tuple[str, ...] = ()
    family: tuple[str, ...] = ()
    # Feature values the new node holds from the start (a run's parameters that are features),
    # written in its transaction; their `uid` is replaced by the node's.
    annotation: Annotation | None = None


def now() -> datetime:
    return datetime.now(UTC)


# -- validation ------------------------------------------------------------------------------
def _check_props(label: str, props: dict[str, Any]) -> None:
    known = fields_of(label)
    unknown = sorted(set(props) - set(known))
    if unknown:
        raise FieldValidationError(
            f"{label} has no field {', '.join(map(repr, unknown))}; "
            f"fields: {', '.join(sorted(known))}"
        )


def _relation(label: str, name: str):
    rels = relations_of(label)
    if name not in rels:
        raise FieldValidationError(
            f"{label} has no relation {name!r}; relations: {', '.join(sorted(rels))}"
        )
    return rels[name]


# -- ids -------------------------------------------------------------------------------------
def _take_ids(tx: neo4j.ManagedTransaction, label: str, n: int) -> list[int]:
    # `strict=True` here and below, where the statement always returns exactly one row (a
    # MERGE, a CREATE, an aggregate without grouping): it types the row as present, and a
    # broken invariant raises the driver's ResultNotSingleError instead of a TypeError on None.
    row = tx.run(
        "MERGE (c:LineageCounter {label: $label}) ON CREATE SET c.value = 0 "
        "SET c.value = c.value + $n RETURN c.value AS last",
        label=label,
        n=n,
    ).single(strict=True)
    last = row["last"]
    return list(range(last - n + 1, last + 1))


def _scope_row(label: str, props: dict[str, Any], record: NewRecord, names: Sequence[str]) -> dict:
    """What `_scope_conditions` compares a stored node with: the new node's uid and hash, the
    values of the named properties (`p`) and the targets of the named to-one relations (`e`)."""
    fields = fields_of(label)
    targets = {e.relation: (e.uids[0] if e.uids else None) for e in record.edges}
    return {
        "uid": props["uid"],
        "hash": props.get("hash"),
        "p": {n: props.get(n) for n in names if n in fields},
        "e": {n: targets.get(n) for n in names if n not in fields},
    }


def _scope_conditions(label: str, names: Sequence[str], null_matches: bool) -> str:
    """` AND ...` conditions that node `n` shares the named properties and to-one relations
    with `row` (from `_scope_row`); with `null_matches`, a missing value matches a missing one."""
    fields = fields_of(label)
    parts = []
    for name in names:
        if name in fields:
            same = f"n.`{name}` = row.p.`{name}`"
            if null_matches:
                same = f"({same} OR (n.`{name}` IS NULL AND row.p.`{name}` IS NULL))"
            parts.append(same)
            continue
        rel = _relation(label, name)
        if rel.many:
            raise FieldValidationError(f"{label}.{name} is a many-relation; name a to-one one")
        target = f"EXISTS {{ MATCH (n){rel.arrow()}(:`{rel.target}` {{uid: row.e.`{name}`}}) }}"
        if null_matches:
            none = f"NOT EXISTS {{ MATCH (n){rel.arrow()}(:`{rel.target}`) }}"
            target = f"({target} OR (row.e.`{name}` IS NULL AND {none}))"
        parts.append(target)
    return "".join(f" AND {p}" for p in parts)


def _grouped(
    label: str, pairs: Sequence[tuple[dict[str, Any], NewRecord]], scope: str
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """`_scope_row`s grouped by the names in each record's `scope` attribute: one statement
    per group (a batch has one or two)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for props, record in pairs:
        names = getattr(record, scope)
        groups.setdefault(names, []).append(_scope_row(label, props, record, names))
    return groups


def _check_unique_hashes(
    tx: neo4j.ManagedTransaction,
    label: str,
    pairs: Sequence[tuple[dict[str, Any], NewRecord]],
    stem: str | None = None,
) -> None:
    """Raise `DuplicateContent` if a node of `label` (not trashed) is the same content as one of
    the new nodes (`props`, `record`): the same hash, within family `stem` if given, unless the
    record names what else must match (`NewRecord.same_content`). Call it after `_take_ids`,
    under the label's counter lock."""
    pairs = [(props, record) for props, record in pairs if props.get("hash") is not None]
    existing: dict[str, dict[str, Any]] = {}
    for names, rows in _grouped(label, pairs, "same_content").items():
        in_family = " AND n.uid STARTS WITH $stem" if stem is not None and not names else ""
        result = tx.run(
            f"UNWIND $rows AS row MATCH (n:`{label}` {{hash: row.hash}}) "
            f"WHERE n.branch <> -1{in_family}{_scope_conditions(label, names, True)} "
            "WITH row, n ORDER BY n.id RETURN row.uid AS uid, collect(n)[0] AS n",
            rows=rows,
            stem=stem,
        )
        existing.update({r["uid"]: plain(r["n"]) for r in result})
    if existing:
        raise DuplicateContent(label, existing)


def _check_new_families(
    tx: neo4j.ManagedTransaction, label: str, pairs: Sequence[tuple[dict[str, Any], NewRecord]]
) -> None:
    """Raise `FamilyExists` if the latest version of a stored family (not trashed) shares a
    new family's `family` names (a key, say) with it, naming that version: the main branch's
    first, else the newest elsewhere. Call it under the label's counter lock."""
    existing: dict[str, dict[str, Any]] = {}
    for names, rows in _grouped(label, [p for p in pairs if p[1].family], "family").items():
        result = tx.run(
            f"UNWIND $rows AS row MATCH (n:`{label}`) "
            f"WHERE n.is_latest AND n.branch <> -1{_scope_conditions(label, names, False)} "
            "WITH row, n ORDER BY n.branch = 1 DESC, n.created_at DESC, n.id DESC "
            "RETURN row.uid AS uid, collect(n)[0] AS n",
            rows=rows,
        )
        existing.update({r["uid"]: plain(r["n"]) for r in result})
    if existing:
        raise FamilyExists(label, existing)


# -- version families --------------------------------------------------------------------------
def _lock_family(tx: neo4j.ManagedTransaction, label: str, stem: str) -> list[dict[str, Any]]:
    """Write-lock every member of the family, then read it again (committed state)."""
    tx.run(
        f"MATCH (f:`{label}`) WHERE f.uid STARTS WITH $stem "
        "WITH f ORDER BY f.uid SET f._lock = true REMOVE f._lock",
        stem=stem,
    ).consume()
    return [
        dict(r)
        for r in tx.run(
            f"MATCH (f:`{label}`) WHERE f.uid STARTS WITH $stem "
            "RETURN f.uid AS uid, f.branch AS branch, f.version AS version, "
            "f.is_latest AS is_latest ORDER BY f.uid",
            stem=stem,
        )
    ]


def _next_counter(family: list[dict[str, Any]], stem_len: int) -> str:
    if not family:
        return FIRST_VERSION
    return counter_string(max(counter_value(m["uid"][stem_len:]) for m in family) + 1)


def _promote_latest(tx: neo4j.ManagedTransaction, label: str, stem: str, branch: int) -> None:
    """Make the newest member of `branch` the family's only `is_latest` there."""
    # The counter alphabet 0-9A-Za-z is in ASCII order, so uid order is version order.
    tx.run(
        f"MATCH (f:`{label}`) WHERE f.uid STARTS WITH $stem AND f.branch = $branch "
        "WITH f ORDER BY f.uid DESC "
        "WITH collect(f) AS members "
        "UNWIND range(0, size(members) - 1) AS i "
        "WITH members[i] AS f, i = 0 AS latest "
        "SET f.is_latest = latest",
        stem=stem,
        branch=branch,
    ).consume()


# -- create ------------------------------------------------------------------------------------
def create_record(
    conn: Connection,
    label: str,
    record: NewRecord,
    *,
    stem: str | None = None,
    new_family: bool = False,
    before_create: Callable[[str], dict[str, Any]] | None = None,
    unique_hash: bool = False,
) -> dict[str, Any]:
    """Create one node with its edges in one transaction; returns its stored properties.

    For a versioned label, `stem` names the version family: the uid becomes `stem + counter`
    with the counter taken inside the transaction, the new node becomes the family's only
    `is_latest` in its branch, and a `version` tag already used in the family raises
    `VersionTagExists`. Otherwise `record.props["uid"]` is used as given.

    `before_create(uid)` runs inside the transaction once the uid is known and while the family
    is locked, before the node exists; the properties it returns are stored too. An artifact
    writes its file there, so the file named after the uid exists before the node pointing at
    it, and no concurrent writer can be given that uid meanwhile. The driver may retry the
    transaction, so the callback may run more than once (with different uids).

    `new_family=True` says the caller drew `stem` at random just now: the family is empty, so
    there is nothing to lock, read or flip, and the uid is `stem + "0000"`.

    `unique_hash=True`: if a node with the same `hash` (not trashed; within the family when
    revising one, unless `record.same_content` says what else must match) exists by the time
    the label's counter is locked, nothing is written and `DuplicateContent` is raised (see the
    module docstring). `before_create` has run by then. A new family whose `record.family`
    values the latest version of a stored family shares raises `FamilyExists`.
    """
    _check_props(label, record.props)
    for edge in record.edges:
        _relation(label, edge.relation)
    versioned = is_versioned(label)
    if stem is not None and not versioned:
        raise FieldValidationError(f"{label} records are not versioned")

    def work(tx: neo4j.ManagedTransaction) -> dict[str, Any]:
        props = dict(record.props)
        if stem is not None and new_family:
            props["uid"] = stem + FIRST_VERSION
        elif stem is not None:
            family = _lock_family(tx, label, stem)
            uid = stem + _next_counter(family, len(stem))
            tag = props.get("version")
            if tag is not None and any(m["version"] == tag for m in family):
                raise VersionTagExists(
                    f"version {tag!r} already exists in the {label} family {stem}; "
                    "pass another version tag"
                )
            props["uid"] = uid
        if before_create is not None:
            extra = before_create(props["uid"])
            _check_props(label, extra)
            props.update(extra)
        (props["id"],) = _take_ids(tx, label, 1)
        if unique_hash:
            scope = stem if stem is not None and not new_family else None
            _check_unique_hashes(tx, label, [(props, record)], scope)
        if new_family:
            _check_new_families(tx, label, [(props, record)])
        branch = props.setdefault("branch", 1)
        if versioned:
            props["is_latest"] = True
        props.setdefault("created_at", now())
        props.setdefault("updated_at", props["created_at"])
        node = _create_with_edges(tx, label, props, record.edges)
        if record.run_inputs is not None:
            _merge_run_inputs(tx, [record.run_inputs])
        if record.annotation is not None:
            write_values(tx, label, [replace(record.annotation, uid=props["uid"])])
        if versioned and stem is not None and not new_family:
            tx.run(
                f"MATCH (f:`{label}`) WHERE f.uid STARTS WITH $stem AND f.uid <> $uid "
                "AND f.branch = $branch AND f.is_latest SET f.is_latest = false",
                stem=stem,
                uid=props["uid"],
                branch=branch,
            ).consume()
        return node

    return conn.write(work)


def _create_with_edges(
    tx: neo4j.ManagedTransaction, label: str, props: dict[str, Any], edges: Sequence[EdgeSpec]
) -> dict[str, Any]:
    """The node and all its edges in one statement: each distinct statement costs Neo4j a
    query plan the first time, and a record save used to send one per relation."""
    clauses = [f"CREATE (n:`{label}`) SET n = $props WITH n"]
    params: dict[str, Any] = {"props": props}
    expected = []
    for i, edge in enumerate(e for e in edges if e.uids):
        rel = _relation(label, edge.relation)
        arrow = rel.arrow("e")
        params[f"e{i}"] = [
            {"uid": uid, "props": (edge.properties[j] if edge.properties else {})}
            for j, uid in enumerate(edge.uids)
        ]
        clauses.append(
            f"CALL {{ WITH n UNWIND $e{i} AS row MATCH (m:`{rel.target}` {{uid: row.uid}}) "
            f"CREATE (n){arrow}(m) SET e = row.props RETURN count(e) AS c{i} }}"
        )
        expected.append((f"c{i}", edge, rel))
    clauses.append("RETURN n" + "".join(f", {name}" for name, _, _ in expected))
    row = tx.run(" ".join(clauses), params).single(strict=True)  # CREATE: one row
    for name, edge, rel in expected:
        if row[name] != len(edge.uids):
            missing = _missing(tx, rel.target, list(edge.uids))
            raise MissingTarget(
                f"{label}.{edge.relation} points at {rel.target} records that do not exist: "
                f"{', '.join(missing) or '(duplicates)'}",
                target=rel.target,
            )
    return plain(row["n"])


def _create_pairs(
    tx: neo4j.ManagedTransaction, label: str, relation: str, pairs: list[dict[str, Any]]
) -> None:
    """Edges of one relation from many sources: `pairs` of `{src, dst, props}` uids."""
    rel = _relation(label, relation)
    created = tx.run(
        f"UNWIND $pairs AS p MATCH (n:`{label}` {{uid: p.src}}) "
        f"MATCH (m:`{rel.target}` {{uid: p.dst}}) "
        f"CREATE (n){rel.arrow('e')}(m) SET e = p.props RETURN count(e) AS created",
        pairs=pairs,
    ).single(strict=True)["created"]
    if created != len(pairs):
        missing = _missing(tx, rel.target, sorted({p["dst"] for p in pairs}))
        raise MissingTarget(
            f"{label}.{relation} points at {rel.target} records that do not exist: "
            f"{', '.join(missing) or '(duplicates)'}",
            target=rel.target,
        )


def _create_edges(
    tx: neo4j.ManagedTransaction, label: str, sources: list[str], edge: EdgeSpec
) -> None:
    """Edges from each source node (same edge list for all) to the edge's targets."""
    rel = _relation(label, edge.relation)
    rows: list[dict[str, Any]] = [
        {"uid": uid, "props": (edge.properties[i] if edge.properties else {})}
        for i, uid in enumerate(edge.uids)
    ]
    if not rows:
        return
    arrow = rel.arrow("e")
    found = tx.run(
        f"UNWIND $sources AS src MATCH (n:`{label}` {{uid: src}}) "
        f"UNWIND $rows AS row MATCH (m:`{rel.target}` {{uid: row.uid}}) "
        f"CREATE (n){arrow}(m) SET e = row.props RETURN count(e) AS created",
        sources=sources,
        rows=rows,
    ).single(strict=True)["created"]
    if found != len(rows) * len(sources):
        missing = _missing(tx, rel.target, [r["uid"] for r in rows])
        raise MissingTarget(
            f"{label}.{edge.relation} points at {rel.target} records that do not exist: "
            f"{', '.join(missing) or '(duplicates)'}",
            target=rel.target,
        )


def _missing(tx: neo4j.ManagedTransaction, label: str, uids: list[str]) -> list[str]:
    rows = tx.run(
        f"UNWIND $uids AS uid OPTIONAL MATCH (m:`{label}` {{uid: uid}}) "
        "WITH uid, m WHERE m IS NULL RETURN uid",
        uids=uids,
    )
    return [r["uid"] for r in rows]


def create_many(
    conn: Connection, label: str, records: Sequence[NewRecord], *, unique_hash: bool = False
) -> list[dict[str, Any]]:
    """Create many nodes of a label that start new families (or are not versioned).

    Rows go in `UNWIND` batches of `BATCH_SIZE`, one transaction per batch: a batch is written
    whole or not at all. Edges are grouped per relation and target, so a batch costs a handful
    of statements however many records it holds.

    `unique_hash=True`: a batch in which any record's content is already stored (not trashed;
    the same hash, or what `same_content` names) by the time the label's counter is locked
    writes nothing and raises `DuplicateContent` naming all such records; so does a batch with a
    record whose `family` values a stored family's latest version shares (`FamilyExists`).
    Earlier batches stay written.
    """
    out: list[dict[str, Any]] = []
    for start in range(0, len(records), BATCH_SIZE):
        batch = records[start : start + BATCH_SIZE]
        out.extend(_create_batch(conn, label, batch, unique_hash))
    return out


def _create_batch(
    conn: Connection, label: str, batch: Sequence[NewRecord], unique_hash: bool = False
) -> list[dict]:
    for record in batch:
        _check_props(label, record.props)
        for edge in record.edges:
            _relation(label, edge.relation)
    versioned = is_versioned(label)
    # Edges grouped per relation: one statement per relation for the whole batch, whatever the
    # targets (artifacts share a storage, run and user; collections each have their members).
    pairs: dict[str, list[dict[str, Any]]] = {}
    stamp = now()
    rows = []
    for record in batch:
        props = dict(record.props)
        props.setdefault("branch", 1)
        if versioned:
            props["is_latest"] = True
        rows.append(props)
        for edge in record.edges:
            for j, target in enumerate(edge.uids):
                edge_props = edge.properties[j] if edge.properties else {}
                pairs.setdefault(edge.relation, []).append(
                    {"src": props["uid"], "dst": target, "props": edge_props}
                )

    def work(tx: neo4j.ManagedTransaction) -> list[dict[str, Any]]:
        ids = _take_ids(tx, label, len(rows))
        if unique_hash:
            _check_unique_hashes(tx, label, list(zip(rows, batch)))
        _check_new_families(tx, label, list(zip(rows, batch)))
        params = [{**props, "id": i} for props, i in zip(rows, ids)]
        # One timestamp parameter for the batch, and nothing returned: sending and reading
        # back two datetimes per row cost more than writing the rows.
        tx.run(
            f"UNWIND $rows AS row CREATE (n:`{label}`) SET n = row, "
            "n.created_at = coalesce(row.created_at, $stamp), "
            "n.updated_at = coalesce(row.updated_at, row.created_at, $stamp)",
            rows=params,
            stamp=stamp,
        ).consume()
        for relation, relation_pairs in pairs.items():
            _create_pairs(tx, label, relation, relation_pairs)
        _merge_run_inputs(tx, [r.run_inputs for r in batch if r.run_inputs is not None])
        annotations = [
            replace(r.annotation, uid=p["uid"])
            for p, r in zip(rows, batch)
            if r.annotation is not None
        ]
        if annotations:
            write_values(tx, label, annotations)
        return [
            {"created_at": stamp, "updated_at": p.get("created_at", stamp), **p} for p in params
        ]

    return conn.write(work)


def _merge_run_inputs(tx: neo4j.ManagedTransaction, inputs: Sequence[RunInputs]) -> None:
    """Merge the `USED` edges of `inputs`: one statement per relation; `MissingTarget` if a run
    or an input does not exist."""
    pairs: dict[str, set[tuple[str, str]]] = {}
    for run_inputs in inputs:
        for edge in run_inputs.edges:
            _relation("Run", edge.relation)
            pairs.setdefault(edge.relation, set()).update((run_inputs.run, u) for u in edge.uids)
    for relation, relation_pairs in pairs.items():
        rel = _relation("Run", relation)
        made_by = _relation(rel.target, "run")  # the input's own run: never also its input
        rows = [{"run": run, "dst": dst} for run, dst in sorted(relation_pairs)]
        found = tx.run(
            f"UNWIND $rows AS p MATCH (n:`Run` {{uid: p.run}}) "
            f"MATCH (m:`{rel.target}` {{uid: p.dst}}) "
            f"FOREACH (_ IN CASE WHEN EXISTS {{ (m){made_by.arrow()}(n) }} THEN [] ELSE [1] END "
            f"| MERGE (n){rel.arrow()}(m)) RETURN count(*) AS found",
            rows=rows,
        ).single(strict=True)["found"]
        if found != len(rows):
            runs = _missing(tx, "Run", sorted({r["run"] for r in rows}))
            missing = runs or _missing(tx, rel.target, sorted({r["dst"] for r in rows}))
            raise MissingTarget(
                f"Run.{relation} points at {'Run' if runs else rel.target} records that do not "
                f"exist: {', '.join(missing)}",
                target="Run" if runs else rel.target,
            )


def add_run_inputs(conn: Connection, inputs: RunInputs) -> None:
    """Record what a run read (`RunInputs`), in one transaction of its own."""
    for edge in inputs.edges:
        _relation("Run", edge.relation)
    conn.write(lambda tx: _merge_run_inputs(tx, [inputs]))


# The rows a run saw, on its `USED` edges (merged, never to one of its own outputs, as run
# inputs are): set when the run finishes, replacing any row set the edge held.
_ROWS_USED = """
UNWIND $rows AS p
MATCH (n:Run {uid: $run})
MATCH (m:Artifact {uid: p.artifact})
WITH n, m, p WHERE NOT EXISTS { (m)-[:GENERATED_BY]->(n) }
MERGE (n)-[e:USED]->(m)
SET e.rows = p.rows, e.n_rows = p.n_rows, e.n_used = p.n_used
RETURN count(*) AS written
"""


def finish_run(
    conn: Connection, uid: str, props: dict[str, Any], rows_used: Sequence[RowsUsed] = ()
) -> dict[str, Any]:
    """Set a run's properties (its status and `finished_at`) and record the rows it saw
    (`RowsUsed`, on its `USED` edges) in one transaction; returns the run's properties.
    `MissingTarget` if the run does not exist; an artifact deleted meanwhile gets no edge."""
    _check_props("Run", props)
    rows = [
        {"artifact": r.artifact, "rows": r.rows, "n_rows": r.n_rows, "n_used": r.n_used}
        for r in rows_used
    ]

    def work(tx: neo4j.ManagedTransaction) -> dict[str, Any]:
        row = tx.run(
            "MATCH (n:Run {uid: $uid}) SET n += $props, n.updated_at = $now RETURN n",
            uid=uid,
            props=props,
            now=now(),
        ).single()
        if row is None:
            raise MissingTarget(f"no Run with uid {uid!r}")
        if rows:
            tx.run(_ROWS_USED, run=uid, rows=rows).consume()
        return plain(row["n"])

    return conn.write(work)


def merge_record(
    conn: Connection,
    label: str,
    field_name: str,
    value: Any,
    props: dict[str, Any],
    edges: Sequence[EdgeSpec] = (),
) -> tuple[dict[str, Any], bool]:
    """Get the node whose unique `field_name` equals `value`, or create it with `props` and
    `edges` (its creator, say).

    Safe under concurrency because `field_name` carries a uniqueness constraint: MERGE waits on
    the constraint's lock, so two processes registering the same storage root get one node.
    Returns (properties, created).
    """
    _check_props(label, {field_name: value, **props})

    def work(tx: neo4j.ManagedTransaction) -> tuple[dict[str, Any], bool]:
        stamp = now()
        row = tx.run(
            f"MERGE (n:`{label}` {{`{field_name}`: $value}}) "
            "ON CREATE SET n += $props, n.created_at = $now, n.updated_at = $now, "
            "n.branch = 1 "
            "RETURN n, n.id IS NULL AS created",  # every node made here gets an id below
            value=value,
            props=props,
            now=stamp,
        ).single(strict=True)
        if not row["created"]:
            return plain(row["n"]), False
        (new_id,) = _take_ids(tx, label, 1)
        row = tx.run(
            f"MATCH (n:`{label}` {{`{field_name}`: $value}}) SET n.id = $id RETURN n",
            value=value,
            id=new_id,
        ).single(strict=True)  # the node MERGEd above, in this transaction
        node = plain(row["n"])
        for edge in edges:
            _create_edges(tx, label, [node["uid"]], edge)
        return node, True

    return conn.write(work)


# -- update --------------------------------------------------------------------------------------
def update_record(
    conn: Connection,
    label: str,
    uid: str,
    props: dict[str, Any],
    *,
    replace: Iterable[EdgeSpec] = (),
    add: Iterable[EdgeSpec] = (),
    remove: Iterable[EdgeSpec] = (),
) -> dict[str, Any]:
    """Set properties and change edges of one node in one transaction.

    `replace` swaps all edges of a relation for the given ones (a to-one relation such as
    `run`), `add` merges edges (never duplicates one), `remove` deletes the edges to the uids.
    """
    return _update(conn, label, uid, props, replace, add, remove)


def update_with_file(
    conn: Connection,
    label: str,
    uid: str,
    props: dict[str, Any],
    write_file: Callable[[], None],
    *,
    replace: Iterable[EdgeSpec] = (),
    add: Iterable[EdgeSpec] = (),
) -> dict[str, Any]:
    """`update_record`, with `write_file()` run inside the transaction while the node is
    write-locked, before the commit: an artifact's new bytes are written there, so concurrent
    writers of one artifact take turns. The driver may retry the transaction, so it may run
    more than once."""
    return _update(conn, label, uid, props, replace, add, (), write_file)


def _update(
    conn: Connection,
    label: str,
    uid: str,
    props: dict[str, Any],
    replace: Iterable[EdgeSpec],
    add: Iterable[EdgeSpec],
    remove: Iterable[EdgeSpec],
    before_update: Callable[[], None] | None = None,
) -> dict[str, Any]:
    _check_props(label, props)
    replace, add, remove = list(replace), list(add), list(remove)
    for edge in (*replace, *add, *remove):
        _relation(label, edge.relation)

    def work(tx: neo4j.ManagedTransaction) -> dict[str, Any]:
        row = tx.run(
            f"MATCH (n:`{label}` {{uid: $uid}}) SET n += $props, n.updated_at = $now RETURN n",
            uid=uid,
            props=props,
            now=now(),
        ).single()
        if row is None:
            raise MissingTarget(f"no {label} with uid {uid!r}")
        if before_update is not None:
            before_update()
        for edge in replace:
            _delete_edges(tx, label, uid, edge.relation, None)
            _create_edges(tx, label, [uid], edge)
        for edge in add:
            _merge_edges(tx, label, uid, edge)
        for edge in remove:
            _delete_edges(tx, label, uid, edge.relation, list(edge.uids))
        return plain(row["n"])

    return conn.write(work)


def update_selected(
    conn: Connection,
    select: Select,
    props: dict[str, Any],
    *,
    replace: Iterable[EdgeSpec] = (),
) -> int:
    """Set properties (and `updated_at`) and replace to-one edges on every node `select`
    matches, in one transaction; returns how many nodes were updated. Offset, limit and order
    of `select` are not used: callers refuse a sliced query."""
    label = select.label
    _check_props(label, props)
    replace = list(replace)
    for edge in replace:
        _relation(label, edge.relation)
    match, params = compile_select(select)
    # Names beginning with "_" cannot clash with the compiler's parameters ($p0, $branch, ...).
    params = {**params, "_props": props}

    def work(tx: neo4j.ManagedTransaction) -> int:
        # In uid order, like the family locks: two bulk updates never deadlock each other.
        uids = [
            r["uid"]
            for r in tx.run(
                f"{match} WITH DISTINCT n ORDER BY n.uid "
                "SET n += $_props, n.updated_at = $_now RETURN n.uid AS uid",
                {**params, "_now": now()},
            )
        ]
        for edge in replace:
            rel = _relation(label, edge.relation)
            tx.run(
                f"UNWIND $uids AS uid MATCH (n:`{label}` {{uid: uid}}) MATCH {rel.pattern} DELETE r",
                uids=uids,
            ).consume()
            if uids:
                _create_edges(tx, label, uids, edge)
        return len(uids)

    return conn.write(work)


def _delete_edges(
    tx: neo4j.ManagedTransaction, label: str, uid: str, relation: str, targets: list[str] | None
) -> None:
    rel = _relation(label, relation)
    where = "" if targets is None else "WHERE m.uid IN $targets "
    tx.run(
        f"MATCH (n:`{label}` {{uid: $uid}}) MATCH {rel.pattern} {where}DELETE r",
        uid=uid,
        targets=targets,
    ).consume()


def _merge_edges(tx: neo4j.ManagedTransaction, label: str, uid: str, edge: EdgeSpec) -> None:
    """Merge edges to the edge's targets: one per target, or with `properties` one per (target,
    properties), matched on those properties (a label edge per feature, say); an edge already
    there is kept, never doubled. The property names must be declared on the relation's edge
    model (`graph.models.edge_fields_of`): they go into the query text."""
    rel = _relation(label, edge.relation)
    declared = edge_fields_of(label, edge.relation)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    seen: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
    for i, target in enumerate(edge.uids):
        props = dict(edge.properties[i]) if edge.properties else {}
        unknown = sorted(set(props) - set(declared))
        if unknown:
            raise FieldValidationError(
                f"edge {label}.{edge.relation} has no property {', '.join(map(repr, unknown))}; "
                f"valid edge properties: {', '.join(sorted(declared)) or '(none)'}"
            )
        key = (target, tuple(sorted(props.items())))
        if key not in seen:
            seen.add(key)
            groups.setdefault(tuple(sorted(props)), []).append({"uid": target, "props": props})
    for names, rows in groups.items():
        match_props = ", ".join(f"`{name}`: t.props.`{name}`" for name in names)
        arrow = rel.arrow(props=f"{{{match_props}}}" if names else "")
        found = tx.run(
            f"MATCH (n:`{label}` {{uid: $uid}}) UNWIND $rows AS t "
            f"MATCH (m:`{rel.target}` {{uid: t.uid}}) MERGE (n){arrow}(m) RETURN count(m) AS found",
            uid=uid,
            rows=rows,
        ).single(strict=True)["found"]
        if found != len(rows):
            missing = _missing(tx, rel.target, sorted({r["uid"] for r in rows}))
            raise MissingTarget(
                f"{label}.{edge.relation} points at {rel.target} records that do not exist: "
                f"{', '.join(missing)}",
                target=rel.target,
            )


# -- trash, delete, restore ---------------------------------------------------------------------
def _stem_of(label: str, uid: str) -> str | None:
    return uid[: uid_length(label)] if is_versioned(label) else None


@dataclass(frozen=True)
class Guard:
    """What keeps a node from being trashed or deleted: records along `relation` (any branch),
    or with `having` only those of them with an edge along one of `having` (a transform's runs
    that made data). `refuse(count)` is called with their number when there are any, inside the
    deleting transaction, and raises the caller's error: nothing is changed.

    The count is taken after write-locking the node (and, with `having`, the records along
    `relation`, where those edges attach). Creating an edge locks both its nodes, so a
    concurrent write that adds a dependent either committed before the count, which then sees
    it, or waits for the delete and fails because its target is gone: no dependent is orphaned.
    """

    relation: str
    refuse: Callable[[int], None]
    having: tuple[str, ...] = ()


def _check_guard(tx: neo4j.ManagedTransaction, label: str, uid: str, guard: Guard) -> None:
    rel = _relation(label, guard.relation)
    having = [_relation(rel.target, name) for name in guard.having]
    tx.run(
        f"MATCH (n:`{label}` {{uid: $uid}}) SET n._lock = true REMOVE n._lock", uid=uid
    ).consume()
    condition = ""
    if having:
        tx.run(
            f"MATCH (n:`{label}` {{uid: $uid}}) MATCH {rel.pattern} "
            "WITH DISTINCT m ORDER BY m.uid SET m._lock = true REMOVE m._lock",
            uid=uid,
        ).consume()
        condition = " WHERE " + " OR ".join(
            f"EXISTS {{ (m){h.arrow()}(:`{h.target}`) }}" for h in having
        )
    count = tx.run(
        f"MATCH (n:`{label}` {{uid: $uid}}) OPTIONAL MATCH {rel.pattern}{condition} "
        "RETURN count(DISTINCT m) AS dependents",
        uid=uid,
    ).single(strict=True)["dependents"]  # an aggregate: one row
    if count:
        guard.refuse(count)


# What else a permanent delete removes, given the transaction and the deleted node's uid (a
# feature's values: `graph.features.delete_feature_values`).
AlsoDeleted = Callable[[neo4j.ManagedTransaction, str], None]


def _in_family(
    conn: Connection,
    label: str,
    uid: str,
    statement: str,
    guards: Sequence[Guard] = (),
    cascade: Sequence[str] = (),
    also: Sequence[AlsoDeleted] = (),
) -> None:
    """Run `statement` on node `uid` with its version family locked, then re-promote the
    family's newest main-branch version to `is_latest`. `guards` are checked first, `cascade`
    names relations whose records are deleted with the node and `also` deletes what else goes
    with it, all in the same transaction."""
    stem = _stem_of(label, uid)
    cascaded = [_relation(label, name) for name in cascade]

    def work(tx: neo4j.ManagedTransaction) -> None:
        if stem is not None:
            _lock_family(tx, label, stem)
        for guard in guards:
            _check_guard(tx, label, uid, guard)
        for rel in cascaded:
            tx.run(
                f"MATCH (n:`{label}` {{uid: $uid}}) MATCH {rel.pattern} DETACH DELETE m", uid=uid
            ).consume()
        for delete in also:
            delete(tx, uid)
        tx.run(f"MATCH (n:`{label}` {{uid: $uid}}) " + statement, uid=uid, now=now()).consume()
        if stem is not None:
            _promote_latest(tx, label, stem, 1)

    conn.write(work)


def trash_record(conn: Connection, label: str, uid: str, guards: Sequence[Guard] = ()) -> None:
    """Move a node to the trash (branch -1) and promote the family's newest main version;
    refused by any of `guards` that finds dependents."""
    latest = ", n.is_latest = false" if is_versioned(label) else ""
    _in_family(conn, label, uid, "SET n.branch = -1, n.updated_at = $now" + latest, guards)


def restore_record(conn: Connection, label: str, uid: str) -> None:
    """Bring a node back from the trash; it becomes latest again if it is the newest version."""
    _in_family(conn, label, uid, "SET n.branch = 1, n.updated_at = $now")


def delete_record(
    conn: Connection,
    label: str,
    uid: str,
    guards: Sequence[Guard] = (),
    cascade: Sequence[str] = (),
    also: Sequence[AlsoDeleted] = (),
) -> None:
    """Remove a node and its edges for good (never the nodes at the other end, except those
    along the `cascade` relations and what `also` deletes, which go with it, in the same
    transaction); refused by any of `guards` that finds dependents."""
    # An artifact's columns (OpenLineage, graph/openlineage.py) are not records: they go with it.
    statement = "OPTIONAL MATCH (n)-[:HAS_COLUMN]->(c:Column) DETACH DELETE c WITH DISTINCT n "
    _in_family(conn, label, uid, statement + "DETACH DELETE n", guards, cascade, also)
