"""The explorer's Cypher console: a user's own query, which must not write or reach outside the
database, answered as a table and, where it returns nodes and relationships, as a graph.

Three walls, each enough against a write on its own:

1. The plan. The query is `EXPLAIN`ed first (nothing runs) and refused unless the server calls
   it a read (`query_type` "r": no `CREATE`, `MERGE`, `SET`, `DELETE`, schema or administration
   command) and no operator of its plan is refused: `LOAD CSV` (it reads files and URLs from the
   server's machine), procedure calls other than the read-only catalog ones in
   `ALLOWED_PROCEDURES` (so no `dbms.*`), `SHOW ...`/`TERMINATE ...` commands (another user's
   queries, the server's settings, ending transactions: `TERMINATE TRANSACTIONS` is planned as
   a read), and any operator on another database (`@system`).
2. The transaction. It runs in a read transaction (access mode READ), in which the server
   refuses any write, and it is rolled back, never committed.
3. The limits. The server ends the transaction after `timeout` seconds, and at most `limit`
   rows are read (the rest is never pulled).
"""

from __future__ import annotations

import base64
import math
from typing import Any

from neo4j.graph import Node, Path, Relationship
from neo4j.spatial import Point

from graph.connection import Connection
from graph.errors import QueryError

__all__ = ["ALLOWED_PROCEDURES", "ReadOnlyRefused", "run_read_only"]

ALLOWED_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.schema.visualization",
        "db.schema.nodeTypeProperties",
        "db.schema.relTypeProperties",
    }
)
_REFUSED_OPERATORS = ("LoadCSV",)
_REFUSED_PREFIXES = ("Show", "Terminate", "Administration", "Create", "Drop", "Alter")
MAX_GRAPH = 2000  # nodes drawn from one result; more are listed in the table only
MAX_TEXT = 10_000  # characters of one string value sent back


class ReadOnlyRefused(QueryError):
    """The console's query would write or reach outside the database."""


def _operators(plan: Any) -> list[tuple[str, str, str]]:
    """(operator, database, details) for every operator of a plan tree."""
    found = []
    stack = [plan] if plan else []
    while stack:
        node = stack.pop()
        name, _, database = str(node.get("operatorType", "")).partition("@")
        args = node.get("args") or {}
        details = str(args.get("Signature") or args.get("Details") or "")
        found.append((name, database, details))
        stack.extend(node.get("children") or [])
    return found


def check_read_only(conn: Connection, query: str, parameters: dict[str, Any]) -> None:
    """Raise `ReadOnlyRefused` naming what is refused, unless `query` only reads this
    database (wall 1 above)."""
    query_type, plan = conn.explain(query, parameters)
    operators = _operators(plan)
    for name, _, details in operators:  # named first: `CALL dbms...` is also not a read
        if name in _REFUSED_OPERATORS:
            raise ReadOnlyRefused(
                "LOAD CSV is refused in the console: it reads files and URLs from the server"
            )
        if name == "ProcedureCall":
            procedure = details.split("(", 1)[0].strip()
            if procedure not in ALLOWED_PROCEDURES:
                allowed = ", ".join(sorted(ALLOWED_PROCEDURES))
                raise ReadOnlyRefused(
                    f"procedure {procedure or details!r} is refused in the console; "
                    f"it calls only {allowed}"
                )
    if query_type != "r":
        what = {"rw": "reads and writes", "w": "writes", "s": "changes the schema or the server"}
        raise ReadOnlyRefused(
            f"the console only reads: this query {what.get(query_type, 'is not a read')} "
            f"(query type {query_type!r})"
        )
    databases = {db for _, db, _ in operators if db}
    if len(databases) > 1 or "system" in databases:
        raise ReadOnlyRefused("the console reads this database only, not the system database")
    for name, _, _ in operators:
        if name.startswith(_REFUSED_PREFIXES):
            raise ReadOnlyRefused(f"{name} is refused in the console: it reads graph data only")


def _value(value: Any) -> Any:
    """A driver value as JSON: nodes, relationships and paths as tagged dicts (`_type`)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "\u2026"
    if isinstance(value, Node):
        return {
            "_type": "node",
            "id": value.element_id,
            "labels": sorted(value.labels),
            "properties": {k: _value(v) for k, v in value.items()},
        }
    if isinstance(value, Relationship):
        start, end = value.start_node, value.end_node
        return {
            "_type": "relationship",
            "id": value.element_id,
            "type": value.type,
            "start": start.element_id if start is not None else None,
            "end": end.element_id if end is not None else None,
            "properties": {k: _value(v) for k, v in value.items()},
        }
    if isinstance(value, Path):
        return {
            "_type": "path",
            "nodes": [_value(n) for n in value.nodes],
            "relationships": [_value(r) for r in value.relationships],
        }
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return {
            "_type": "bytes",
            "size": len(value),
            "base64": base64.b64encode(value[:64]).decode(),
        }
    if isinstance(value, Point):
        return {"_type": "point", "srid": value.srid, "coordinates": list(value)}
    iso = getattr(value, "iso_format", None)  # neo4j.time Date, Time, DateTime, Duration
    if callable(iso):
        return iso()
    return str(value)


def _graph(rows: list[list[Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The nodes and relationships anywhere in the rows (inside lists, maps and paths too),
    each once; a relationship's end nodes are added when the rows hold them, and relationships
    whose ends are not drawn are left out."""
    nodes: dict[str, dict[str, Any]] = {}
    rels: dict[str, dict[str, Any]] = {}
    stack: list[Any] = [v for row in rows for v in row]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            kind = value.get("_type")
            if kind == "node" and len(nodes) < MAX_GRAPH:
                nodes.setdefault(value["id"], value)
            elif kind == "relationship":
                rels.setdefault(value["id"], value)
            elif kind == "path":
                stack.extend(value["nodes"])
                stack.extend(value["relationships"])
            elif kind is None:
                stack.extend(value.values())
    edges = [r for r in rels.values() if r["start"] in nodes and r["end"] in nodes]
    return list(nodes.values()), edges


def run_read_only(
    conn: Connection,
    query: str,
    parameters: dict[str, Any],
    *,
    timeout: float,
    limit: int,
) -> dict[str, Any]:
    """Check and run a console query: `columns`, `rows` (JSON values), `truncated` (more rows
    than `limit`), and the `nodes` and `relationships` found in the rows."""
    check_read_only(conn, query, parameters)
    columns, rows, truncated = conn.read_limited(
        query, parameters, timeout=timeout, limit=limit, convert=_value
    )
    nodes, relationships = _graph(rows)
    return {
        "columns": columns,
        "rows": rows,
        "truncated": truncated,
        "nodes": nodes,
        "relationships": relationships,
    }
