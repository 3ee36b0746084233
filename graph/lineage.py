"""Provenance traversals: the upstream and downstream subgraph of one record, in one query.

Provenance edges (docs/schema.md), all pointing from the newer thing to what it came from:

    (data)-[:GENERATED_BY]->(run)        (run)-[:USED]->(data)        (run)-[:EXECUTES]->(transform)
    (collection)-[:CONTAINS {position}]->(artifact)   (collection)-[:HAS_META]->(artifact)
    (new)-[:REVISES]->(old)

Upstream follows them forwards (what a record was made from), downstream backwards (what was made
from it). A collection's upstream includes its members and the runs that made them; a run's
upstream is its inputs; a transform's upstream is its earlier versions and its downstream its runs
and everything they made. Transforms are leaves: a run's transform is shown, but the traversal
never continues from a transform to its other runs or versions (unless it is the focus).

Depth counts run hops: the number of runs on the path from the focus to a node, the focus itself
not counted. Depth 0 is the focus with what is reached without passing a run (a collection's
members and meta artifact, earlier versions; a run's transform and inputs). Depth 1 of an
artifact adds the run that generated it, that run's transform and its inputs (with their members
and versions); depth 2 adds the runs that generated those inputs, and so on. `None` is unbounded.
This is the depth of lamindb's `_get_all_parent_runs` loop, which goes one run back per round.

Trashed records (branch -1) are left out, as lamindb leaves them out; the focus always appears.

The query. Bounded depth is a breadth-first search by levels of runs, written as a `reduce` over
`range(1, $depth)` whose step is a `COLLECT { }` subquery: from the frontier (data reached at the
previous level) to the runs one hop further, then to their transforms and inputs (and those
inputs' members and versions). Each node is visited once (`NOT y IN seen`; Neo4j answers `IN`
on a list it sees again from a hash set), so diamonds in the graph never multiply the work the
way enumerating paths would. Unbounded depth needs no levels: one pruning breadth-first
var-length expand (`VarLengthExpand(Pruning,BFS)`) from the focus, then the runs' transforms.
Edges are the provenance edges between the collected nodes. The result comes back as one row of
lists of plain values: decoding one small row is much cheaper for the driver than one row (or
one node object) per node.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, TypedDict

from graph.errors import FieldValidationError
from graph.features import VALUES_EXPR, FeatureRef, as_dict
from graph.models import relations_of

__all__ = [
    "LINEAGE_LABELS",
    "NODE_FIELDS",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "lineage_query",
    "parse_datetime",
    "provenance_edges",
    "traverse",
]

# Records whose provenance can be traversed (the others carry no provenance edges).
LINEAGE_LABELS: tuple[str, ...] = ("Artifact", "Collection", "Run", "Transform")

DEPTH_LIMIT = 100_000  # above any real chain of runs; keeps `range()` small for silly inputs


class LineageNode(TypedDict):
    uid: str
    label: str  # Artifact, Collection, Run or Transform
    key: str | None  # key (artifacts, collections, transforms) or name (runs)
    description: str | None
    version: str | None
    is_latest: bool | None
    branch: int | None
    created_at: datetime | None
    started_at: datetime | None  # runs
    status: str | None  # runs
    kind: str | None  # transforms
    suffix: str | None  # artifacts
    side: str  # "focus", "upstream", "downstream" or "both"
    # {feature name: value} as `record.features.get_values()` gives it (artifacts, collections
    # and runs; asked for with `features=True`, else empty)
    features: dict[str, Any]


class LineageEdge(TypedDict):
    source: str  # uid of the node the edge leaves
    target: str  # uid of the node it points at
    type: str  # GENERATED_BY, USED, EXECUTES, CONTAINS, HAS_META or REVISES
    position: int | None  # CONTAINS only


# The columns of a lineage node and edge, in the order the query returns them: said once, by the
# TypedDicts above (the query, `ln.lineage.graph()`'s DataFrames and the page read these).
NODE_FIELDS: tuple[str, ...] = tuple(LineageNode.__annotations__)
EDGE_FIELDS: tuple[str, ...] = tuple(LineageEdge.__annotations__)


class LineageGraph(TypedDict):
    focus: str
    label: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]


# -- edge names, from the models ------------------------------------------------------------------
@cache
def _edges() -> dict[str, str]:
    art, coll, run = relations_of("Artifact"), relations_of("Collection"), relations_of("Run")
    names = {
        "GEN": art["run"].edge,  # (data)-[:GENERATED_BY]->(run)
        "USED": run["input_artifacts"].edge,  # (run)-[:USED]->(data)
        "EXE": run["transform"].edge,  # (run)-[:EXECUTES]->(transform)
        "CONTAINS": coll["artifacts"].edge,
        "META": coll["meta_artifact"].edge,
        "REVISES": art["revises"].edge,
    }
    for name in names.values():  # defence in depth: these go into query text
        assert name.isidentifier() and name.isupper(), name
    return names


def provenance_edges() -> tuple[str, ...]:
    """The edge types lineage follows, as stored: GENERATED_BY, USED, EXECUTES, CONTAINS,
    HAS_META, REVISES (names from the models)."""
    e = _edges()
    return tuple(e[k] for k in ("GEN", "USED", "EXE", "CONTAINS", "META", "REVISES"))


def _direction(up: bool) -> dict[str, str]:
    """Patterns for one direction; `up` follows edges forwards, downstream backwards."""
    e = _edges()
    zero = f"{e['CONTAINS']}|{e['META']}|{e['REVISES']}"  # hops that pass no run
    if up:
        return {
            # from data (or, for a transform focus, nothing) one run further
            "enter": f"(x)-[:{e['GEN']}]->(r:Run)",
            # a run's inputs, with their members and earlier versions
            "leave": f"(r)-[:{e['USED']}]->()-[:{zero}*0..]->(y)",
            "zero": f"(s)-[:{zero}*0..]->(y)",
            "hop": f"(()-[:{e['GEN']}|{e['USED']}|{zero}]->(q) WHERE {_keep('q')})",
        }
    return {
        "enter": f"(x)<-[:{e['USED']}|{e['EXE']}]-(r:Run)",
        "leave": f"(r)<-[:{e['GEN']}]-()<-[:{zero}*0..]-(y)",
        "zero": f"(s)<-[:{zero}*0..]-(y)",
        "hop": f"(()<-[:{e['GEN']}|{e['USED']}|{e['EXE']}|{zero}]-(q) WHERE {_keep('q')})",
    }


def _keep(var: str) -> str:
    # Not trashed; and never through a transform, except from a transform focus ($from_transform)
    return f"coalesce({var}.branch, 1) <> -1 AND (NOT {var}:Transform OR $from_transform)"


def _side(up: bool, label: str) -> str:
    """The Cypher for one direction, as an expression over `s` giving a list of nodes."""
    p = _direction(up)
    exe = _edges()["EXE"]
    run_closure = (
        "CALL (r) {\n"
        "        RETURN r AS y\n"
        f"        UNION MATCH (r)-[:{exe}]->(y) RETURN y\n"
        f"        UNION MATCH {p['leave']} WHERE {_keep('y')} RETURN y\n"
        "      }"
    )
    if label == "Run":
        level0 = f"COLLECT {{ WITH s AS r {run_closure} RETURN DISTINCT y }}"
    else:
        level0 = f"COLLECT {{ MATCH {p['zero']} WHERE y = s OR {_keep('y')} RETURN DISTINCT y }}"
    front0 = "[y IN level0 WHERE y:Artifact OR y:Collection OR (y:Transform AND NOT s:Run)]"
    bounded = (
        f"reduce(st = {{seen: level0, front: {front0}}}, i IN range(1, $depth) |\n"
        "    CASE WHEN st.front = [] THEN st ELSE\n"
        "    head([new IN [COLLECT {\n"
        f"      UNWIND st.front AS x MATCH {p['enter']} WHERE {_keep('r')}\n"
        "      WITH DISTINCT r\n"
        f"      {run_closure}\n"
        "      WITH DISTINCT y WHERE NOT y IN st.seen RETURN y\n"
        "    }] | {seen: st.seen + new, front: [y IN new WHERE y:Artifact OR y:Collection]}])\n"
        "    END).seen"
    )
    unbounded = (
        "COLLECT {\n"
        f"      MATCH (s) {p['hop']}* (x)\n"
        "      WITH DISTINCT x\n"
        f"      CALL (x) {{ RETURN x AS y UNION MATCH (x:Run)-[:{exe}]->(y) RETURN y }}\n"
        "      RETURN y\n"
        "      UNION UNWIND level0 AS y RETURN y\n"
        "    }"
    )
    return (
        f"CALL (s) {{\n"
        f"  WITH s, {level0} AS level0\n"
        f"  RETURN CASE WHEN $depth IS NULL THEN {unbounded}\n"
        f"  ELSE {bounded} END AS found\n"
        "}"
    )


@cache
def lineage_query(label: str) -> str:
    """The traversal query for a focus of `label`; parameters `$uid`, `$depth` (int or null),
    `$up`, `$down` (booleans), `$from_transform` (whether the focus is a transform) and
    `$features` (whether to read feature values).

    Returns one row: `nodes`, a list of `[uid, label, key, description, version, is_latest,
    branch, created_at, started_at, status, kind, suffix, side, values]` (datetimes as ISO
    strings; `values` a flat `[feature uid, value, ...]` list, `graph.features.VALUES_EXPR`, or
    null without `$features`), `edges`, a list of `[source uid, target uid, type, position]`,
    and `features`, `[uid, name, dtype]` of every feature (null without `$features`).
    """
    _check_label(label)
    types = "|".join(provenance_edges())
    up, down = _side(True, label), _side(False, label)
    return f"""
MATCH (s:`{label}` {{uid: $uid}})
CALL (s) {{
  WITH s WHERE $up
  {up.replace(chr(10), chr(10) + "  ")}
  RETURN found
  UNION
  WITH s WHERE NOT $up
  RETURN [] AS found
}}
WITH s, found AS ups
CALL (s) {{
  WITH s WHERE $down
  {down.replace(chr(10), chr(10) + "  ")}
  RETURN found
  UNION
  WITH s WHERE NOT $down
  RETURN [] AS found
}}
WITH s, ups, found AS downs
WITH s, ups, downs, COLLECT {{
  UNWIND [s] + ups + downs AS n RETURN DISTINCT n
}} AS ns
CALL (ns) {{
  UNWIND ns AS a
  MATCH (a)-[e:{types}]->(b) WHERE b IN ns
  RETURN collect([a.uid, b.uid, type(e), e.position]) AS edges
}}
RETURN [n IN ns | [  // one list per node, in NODE_FIELDS order
  n.uid, labels(n)[0], coalesce(n.key, n.name), n.description, n.version, n.is_latest,
  n.branch, toString(n.created_at), toString(n.started_at), n.status, n.kind, n.suffix,
  CASE WHEN n = s THEN 'focus'
       WHEN n IN ups AND n IN downs THEN 'both'
       WHEN n IN ups THEN 'upstream' ELSE 'downstream' END,
  CASE WHEN $features THEN {VALUES_EXPR} END
]] AS nodes, edges,
CASE WHEN $features THEN COLLECT {{
  MATCH (f:Feature) RETURN [f.uid, f.name, f.dtype] AS feature
}} END AS features
"""


def _check_label(label: Any) -> str:
    if label not in LINEAGE_LABELS:
        raise FieldValidationError(
            f"lineage is traversed from {', '.join(LINEAGE_LABELS)} records, not {label!r}"
        )
    return label


def check_depth(depth: Any) -> int | None:
    """`depth` as the query takes it: None (unbounded) or an int >= 0."""
    if depth is None:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise FieldValidationError(
            f"depth must be an int >= 0 or None, got {type(depth).__name__} {depth!r}"
        )
    if depth < 0:
        raise FieldValidationError(f"depth must be >= 0 or None, got {depth}")
    return min(depth, DEPTH_LIMIT)


def parse_datetime(value: str | None) -> datetime | None:
    """A datetime the traversal returned as an ISO string (`toString()`), as a UTC datetime."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)  # Neo4j writes nanoseconds; Python keeps micro
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def traverse(
    conn: Any,
    label: str,
    uid: str,
    *,
    upstream: bool = True,
    downstream: bool = False,
    depth: int | None = None,
    features: bool = False,
) -> LineageGraph | None:
    """The provenance subgraph around one record, in one query; None if there is no such record.
    With `features`, each node's feature values come too (in the same query).

    >>> g = traverse(conn, "Artifact", artifact1.uid, downstream=True, depth=2)
    >>> sorted((n["label"], n["key"]) for n in g["nodes"])
    [('Artifact', 'scrna/sample1.h5ad'), ('Collection', 'scrna')]
    >>> [e["type"] for e in g["edges"]]
    ['CONTAINS']
    >>> traverse(conn, "Artifact", "no-such-uid") is None
    True
    """
    label = _check_label(label)
    if not isinstance(uid, str):
        raise FieldValidationError(f"uid must be a str, got {type(uid).__name__} {uid!r}")
    params = {
        "uid": uid,
        "depth": check_depth(depth),
        "up": bool(upstream),
        "down": bool(downstream),
        "from_transform": label == "Transform",
        "features": bool(features),
    }
    row = conn.read_values(lineage_query(label), params)
    if row is None:
        return None
    raw_nodes, raw_edges, raw_features = row
    refs = {uid: FeatureRef(name, uid, dtype) for uid, name, dtype in raw_features or []}
    nodes: list[LineageNode] = []
    for values in raw_nodes:
        node = dict(zip(NODE_FIELDS, values))
        node["created_at"] = parse_datetime(node["created_at"])
        node["started_at"] = parse_datetime(node["started_at"])
        node["features"] = as_dict(node["features"], refs) if node["features"] else {}
        nodes.append(node)  # type: ignore[arg-type]
    edges: list[LineageEdge] = [
        {"source": a, "target": b, "type": t, "position": pos} for a, b, t, pos in raw_edges
    ]
    return {"focus": uid, "label": label, "nodes": nodes, "edges": edges}
