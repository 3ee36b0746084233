"""The explorer's reads (`lineage serve`): search across registries, a record's page, the
neighbours of records one step at a time with paging, and the shortest provenance path.

Every function here only reads (auto-commit queries in read access mode) and takes its values
as parameters. Records are the four registries with provenance (`LINEAGE_LABELS`); a record is
found by its full uid with one index seek per registry (a `UNION` of four seeks: a label
disjunction in one `MATCH` scanned every label). Trashed records are left out of search results,
neighbours and paths, as the lineage traversals leave them out; a trashed record's own page
still opens.

A node comes back as one list in `NODE_FIELDS` order: the traversal's node fields
(`graph.lineage.NODE_FIELDS`, without `side`) and, for a run, its transform's key (what a run is
named after in the graph).

Neighbours are grouped by edge type and direction (`members` are `CONTAINS` out, `used by` is
`USED` in, ...): each group comes with its total and one page of its records, so a fan-out of
10,000 members costs one page of nodes, not 10,000. A group's order is stable for paging:
`CONTAINS` by position (the collection's order), every other group by creation time, then uid.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from graph.connection import Connection
from graph.features import HAS_VALUE, LABEL_EDGE, VALUE_LABEL, VALUES_EXPR
from graph.lineage import LINEAGE_LABELS, provenance_edges
from graph.lineage import NODE_FIELDS as _LINEAGE_FIELDS
from graph.models import TEXT_INDEXED, relations_of, uid_length

__all__ = [
    "GROUP_NAMES",
    "NODE_FIELDS",
    "find",
    "neighbours",
    "record",
    "search",
    "shortest_path",
    "versions",
]

# The fields of an explorer node, in the order the queries return them (a lineage node's,
# without its side and feature values: the record page reads those).
NODE_FIELDS: tuple[str, ...] = (
    *(f for f in _LINEAGE_FIELDS if f not in ("side", "features")),
    "transform",
)

SEARCH_SCORES = {"uid": 1000, "exact": 200, "prefix": 50, "contains": 10, "description": 1,
                 "feature": 20}  # fmt: skip


def _node(v: str) -> str:
    """The Cypher list for node variable `v`, in NODE_FIELDS order."""
    exe = relations_of("Run")["transform"].edge
    return (
        f"[{v}.uid, labels({v})[0], coalesce({v}.key, {v}.name), {v}.description, {v}.version, "
        f"{v}.is_latest, {v}.branch, toString({v}.created_at), toString({v}.started_at), "
        f"{v}.status, {v}.kind, {v}.suffix, "
        f"CASE WHEN {v}:Run THEN [({v})-[:`{exe}`]->(_t:Transform) | _t.key][0] END]"
    )


def _node_of(expr: str) -> str:
    """`_node` of an expression that is not a variable (`x[0]`)."""
    return f"head([_x IN [{expr}] | {_node('_x')}])"


def as_node(values: list[Any]) -> dict[str, Any]:
    """A node list (NODE_FIELDS order) as a dict."""
    return dict(zip(NODE_FIELDS, values, strict=True))


def _by_uid(var: str, uid: str, scope: str = "") -> str:
    """A `CALL` that binds `var` to the record whose uid is `uid` (a parameter, or a variable
    named in `scope`) in any lineage registry: one index seek per registry."""
    seeks = "\n  UNION ".join(
        f"MATCH ({var}:`{label}` {{uid: {uid}}}) RETURN {var}" for label in LINEAGE_LABELS
    )
    return f"CALL ({scope}) {{\n  {seeks}\n}}"


# -- group names ----------------------------------------------------------------------------------
# (edge type, direction as seen from the record) -> what the neighbours are to it.
GROUP_NAMES: dict[tuple[str, str], str] = {
    ("GENERATED_BY", "out"): "made by",
    ("GENERATED_BY", "in"): "outputs",
    ("USED", "out"): "inputs",
    ("USED", "in"): "used by",
    ("EXECUTES", "out"): "transform",
    ("EXECUTES", "in"): "runs",
    ("CONTAINS", "out"): "members",
    ("CONTAINS", "in"): "member of",
    ("HAS_META", "out"): "meta artifact",
    ("HAS_META", "in"): "meta artifact of",
    ("REVISES", "out"): "previous version",
    ("REVISES", "in"): "next version",
}


# -- find -----------------------------------------------------------------------------------------
@cache
def _find_query() -> str:
    return f"""
{_by_uid("n", "$uid")}
RETURN labels(n)[0] AS label
"""


def find(conn: Connection, uid: str) -> str | None:
    """The registry (label) of the record with this exact uid, or None."""
    rows = conn.read(_find_query(), {"uid": uid})
    return rows[0]["label"] if rows else None


# -- search ---------------------------------------------------------------------------------------
SEARCH_CAP = 200  # matches read per way of matching and registry; more: refine the text


@cache
def _search_query() -> str:
    sc = SEARCH_SCORES
    parts = []
    for label in LINEAGE_LABELS:
        guard = f"'{label}' IN $labels"
        name = "name" if label == "Run" else "key"
        parts.append(
            f"MATCH (n:`{label}`) WHERE {guard} AND n.uid STARTS WITH $q WITH n LIMIT $cap "
            f"RETURN n, CASE WHEN n.uid = $q THEN {sc['uid']} ELSE {sc['uid'] // 2} END AS score"
        )
        if label != "Run":  # an exact key is a range-index seek, found however many contain it
            parts.append(
                f"MATCH (n:`{label}`) WHERE {guard} AND n.key IN [$q, $lq] WITH n LIMIT $cap "
                f"RETURN n, {sc['exact']} AS score"
            )
        # CONTAINS on a TEXT index is case-sensitive: the text as typed, and in lower case.
        contains = " OR ".join(
            f"n.{field} CONTAINS {p}" for field in TEXT_INDEXED[label] for p in ("$q", "$lq")
        )
        described = "description" in TEXT_INDEXED[label]
        parts.append(
            f"MATCH (n:`{label}`) WHERE {guard} AND ({contains}) WITH n LIMIT $cap "
            f"WITH n, toLower(n.{name}) AS x, "
            f"{'toLower(n.description)' if described else 'null'} AS d "
            f"RETURN n, CASE WHEN x = $lq THEN {sc['exact']} "
            f"WHEN x STARTS WITH $lq THEN {sc['prefix']} "
            f"WHEN x CONTAINS $lq THEN {sc['contains']} ELSE 0 END "
            f"+ CASE WHEN d CONTAINS $lq THEN {sc['description']} ELSE 0 END AS score"
        )
    # Feature values equal to the text: a scalar value (the text as typed, in lower case, or as
    # a number) sought per feature in the (feature, value) index, or a categorical value (a
    # ULabel so named, linked with a feature).
    parts.append(
        "MATCH (f:Feature) WITH f.uid AS feature "
        f"MATCH (v:`{VALUE_LABEL}` {{feature: feature}}) WHERE v.value IN $values "
        f"MATCH (n)-[:`{HAS_VALUE}`]->(v) WHERE labels(n)[0] IN $labels "
        f"WITH n LIMIT $cap RETURN n, {sc['feature']} AS score"
    )
    parts.append(
        "MATCH (u:ULabel) WHERE u.name IN [$q, $lq] "
        f"MATCH (n)-[r:`{LABEL_EDGE}`]->(u) WHERE r.feature IS NOT NULL "
        f"AND labels(n)[0] IN $labels WITH n LIMIT $cap RETURN n, {sc['feature']} AS score"
    )
    union = "\n  UNION ALL\n  ".join(parts)
    return f"""
CALL () {{
  {union}
}}
WITH n, max(score) AS score WHERE coalesce(n.branch, 1) <> -1
WITH n, score ORDER BY score DESC, n.created_at DESC, n.uid
WITH collect([n, score]) AS hits
RETURN size(hits) AS total,
       [h IN hits[$offset..$offset + $limit] | [{_node_of("h[0]")}, h[1]]] AS page
"""


def search(
    conn: Connection, text: str, labels: list[str], offset: int, limit: int
) -> tuple[int, bool, list[tuple[dict[str, Any], int]]]:
    """Records of `labels` whose uid starts with `text`, whose key (a run's name) or description
    contains it (as typed or in lower case: the TEXT indexes are case-sensitive), or that hold a
    feature value equal to it; best first (`SEARCH_SCORES`: the best way a record matched),
    then newest. Returns the total, whether a way of matching stopped at `SEARCH_CAP` records
    (the total is then a lower bound), and one page of `(node, score)`."""
    values: list[Any] = [text, text.lower()]
    try:
        values.append(float(text))
        values.append(int(text))
    except ValueError:
        pass
    params = {
        "q": text,
        "lq": text.lower(),
        "values": values,
        "labels": [x for x in labels if x in LINEAGE_LABELS],
        "offset": offset,
        "limit": limit,
        "cap": SEARCH_CAP,
    }
    row = conn.read_values(_search_query(), params)
    total, page = row if row else (0, [])
    return total, total >= SEARCH_CAP, [(as_node(node), score) for node, score in page]


# -- a record's page ------------------------------------------------------------------------------
def _record_query(label: str) -> str:
    rel = relations_of(label)
    parts = [
        f"MATCH (n:`{label}` {{uid: $uid}})",
        f"RETURN {_node('n')} AS node, properties(n) AS props,",
    ]
    one = {
        "created_by": ("User", "[x.uid, x.handle, x.name]"),
        "storage": ("Storage", "[x.uid, x.root]"),
        "space": ("Space", "[x.uid, x.name]"),
        "initiated_by": ("Run", _node("x")),
        "meta_artifact": ("Artifact", _node("x")),
    }
    for name, (target, expr) in one.items():
        if name in rel:
            parts.append(f"  [(n){rel[name].arrow()}(x:`{target}`) | {expr}][0] AS {name},")
        else:
            parts.append(f"  null AS {name},")
    for name in ("ulabels", "projects", "references"):
        if name in rel:
            r = rel[name]
            parts.append(
                f"  [(n){r.arrow()}(x:`{r.target}`) WHERE coalesce(x.branch, 1) <> -1 "
                f"| [x.uid, x.name]][..50] AS {name},"
            )
        else:
            parts.append(f"  [] AS {name},")
    features = VALUES_EXPR if label in ("Artifact", "Collection", "Run") else "[]"
    parts.append(f"  {features} AS features")
    return "\n".join(parts)


@cache
def _record_queries() -> dict[str, str]:
    return {label: _record_query(label) for label in LINEAGE_LABELS}


RECORD_COLUMNS = (
    "node", "props", "created_by", "storage", "space", "initiated_by", "meta_artifact", "ulabels",
    "projects", "references", "features",
)  # fmt: skip


def record(conn: Connection, label: str, uid: str) -> dict[str, Any] | None:
    """What a record's page shows beyond its neighbours: its node (NODE_FIELDS), its
    properties (plain values), its
    creator, storage and space, the run that initiated it (runs), its meta artifact
    (collections), its annotations (up to 50 each, `[uid, name]`) and its feature values (the
    flat `[feature uid, value, ...]` list of `graph.features.VALUES_EXPR`). None if missing."""
    rows = conn.read(_record_queries()[_check_label(label)], {"uid": uid})
    return rows[0] if rows else None


@cache
def _versions_query(label: str) -> str:
    return f"""
MATCH (v:`{label}`) WHERE v.uid STARTS WITH $stem
RETURN collect({_node("v")}) AS versions
"""


def versions(conn: Connection, label: str, uid: str) -> list[dict[str, Any]]:
    """Every version of the record's family (trashed ones too, marked by `branch`), oldest
    first; [] for a run (runs have no versions)."""
    if _check_label(label) == "Run":
        return []
    values = conn.read_values(_versions_query(label), {"stem": uid[: uid_length(label)]})
    found = [as_node(v) for v in (values[0] if values else [])]
    return sorted(found, key=lambda n: n["uid"])


def _check_label(label: str) -> str:
    if label not in LINEAGE_LABELS:  # defence in depth: labels go into query text
        raise ValueError(f"the explorer shows {', '.join(LINEAGE_LABELS)} records, not {label!r}")
    return label


# -- neighbours -----------------------------------------------------------------------------------
def _group(edge: str, direction: str) -> str:
    """The Cypher list `[type, out, total, items]` of one group of `n`'s neighbours.

    The total is the node's degree for that edge type (Neo4j keeps it: nothing is read), and
    one page of items is read: a collection's members by position range (positions are
    0..n-1), any other group in the order its edges were written (`id(e)`: a top-k of edge ids,
    no neighbour is read beyond the page). Trashed neighbours are included (their `branch`
    says so), so totals and pages agree.
    """
    arrow = f"-[e:`{edge}`]->" if direction == "out" else f"<-[e:`{edge}`]-"
    if (edge, direction) == ("CONTAINS", "out"):
        page = "WHERE e.position >= $offset AND e.position < $offset + $limit ORDER BY e.position"
    else:
        page = "ORDER BY id(e) SKIP $offset LIMIT $limit"
    return (
        f"['{edge}', {str(direction == 'out').lower()}, COUNT {{ (n){arrow}() }}, "
        f"COLLECT {{ MATCH (n){arrow}(m) WITH e, m {page} "
        f"RETURN [{_node('m')}, e.position] }}]"
    )


@cache
def _neighbours_query() -> str:
    groups = []
    for edge, direction in GROUP_NAMES:
        wanted = (
            f"($type IS NULL OR ($type = '{edge}' AND $out = {str(direction == 'out').lower()}))"
        )
        groups.append(f"CASE WHEN {wanted} THEN {_group(edge, direction)} END")
    listed = ",\n    ".join(groups)
    return f"""
UNWIND $uids AS uid
{_by_uid("n", "uid", "uid")}
WITH n, [
    {listed}
  ] AS groups
RETURN collect([n.uid, [g IN groups WHERE g IS NOT NULL AND g[2] > 0]]) AS found
"""


def neighbours(
    conn: Connection,
    uids: list[str],
    *,
    offset: int = 0,
    limit: int = 25,
    edge_type: str | None = None,
    out: bool | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The neighbours of each record, grouped: `{uid: [{type, direction, name, total, offset,
    items}]}` in `GROUP_NAMES` order, where items are `(node dict, position)` pairs (position: a
    member's, else None); groups with no neighbour are left out. `edge_type` and `out` pick one
    group (to page through it). Uids that are no record are left out."""
    if edge_type is not None and (edge_type, "out" if out else "in") not in GROUP_NAMES:
        raise ValueError(f"{edge_type!r} is not a provenance edge type")
    params = {
        "uids": list(uids),
        "offset": offset,
        "limit": limit,
        "type": edge_type,
        "out": bool(out),
    }
    result: dict[str, list[dict[str, Any]]] = {}
    values = conn.read_values(_neighbours_query(), params)
    for uid, groups in values[0] if values else []:
        listed = []
        for kind, is_out, total, items in groups:
            direction = "out" if is_out else "in"
            listed.append(
                {
                    "type": kind,
                    "direction": direction,
                    "name": GROUP_NAMES[(kind, direction)],
                    "total": total,
                    "offset": offset,
                    "items": [(as_node(node), position) for node, position in items],
                }
            )
        result[uid] = listed
    return result


# -- shortest provenance path ---------------------------------------------------------------------
@cache
def _path_query() -> str:
    types = "|".join(provenance_edges())
    keep = "all(x IN nodes(p) WHERE coalesce(x.branch, 1) <> -1 OR x = a OR x = b)"
    return f"""
{_by_uid("a", "$source")}
{_by_uid("b", "$target")}
OPTIONAL MATCH p = shortestPath((a)-[:{types}*]->(b)) WHERE {keep}
WITH a, b, p AS up
OPTIONAL MATCH p = shortestPath((b)-[:{types}*]->(a)) WHERE {keep}
WITH up IS NOT NULL AND (p IS NULL OR length(up) <= length(p)) AS upstream, up, p AS down
WITH upstream, CASE WHEN upstream THEN up ELSE down END AS p
WHERE p IS NOT NULL
RETURN upstream,
       [x IN nodes(p) | {_node("x")}] AS nodes,
       [r IN relationships(p) | [startNode(r).uid, endNode(r).uid, type(r), r.position]] AS edges
"""


def shortest_path(conn: Connection, source: str, target: str) -> dict[str, Any] | None:
    """The shortest chain of provenance edges between two records, following the edges one way
    (`upstream` True: `target` is in `source`'s history; False: `source` is in `target`'s);
    trashed records are not passed through. None if there is no such path (or no such
    records). Nodes from `source` to `target`; edges as stored (`source` uid, `target` uid,
    type, position)."""
    values = conn.read_values(_path_query(), {"source": source, "target": target})
    if values is None:
        return None
    upstream, nodes, edges = values
    if not upstream:  # the path was found from `target` to `source`
        nodes = nodes[::-1]
    return {
        "upstream": upstream,
        "nodes": [as_node(n) for n in nodes],
        "edges": [{"source": a, "target": b, "type": t, "position": pos} for a, b, t, pos in edges],
    }
