"""Consistency checks of the graph, for `lineage doctor` (read-only Cypher).

Every write lineage makes is one transaction, so a crash (of Neo4j or of the writing process)
leaves each record whole or absent. These queries find what would still be wrong: a version
family without exactly one `is_latest` on the main branch, a collection whose `CONTAINS`
positions are not `0..n-1`, an artifact without its storage, a record without its creator, a
to-one relation with several edges. They also give the storage paths the artifacts point at,
so the caller can find files nobody points at.

>>> find_issues(conn)  # conn: an open graph.Connection
[]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graph.connection import Connection
from graph.models import uid_length

LIMIT = 1000  # rows per kind of issue: a report, not a dump of a broken database

_VERSIONED = ("Artifact", "Collection", "Transform")
_CREATED = ("Artifact", "Collection", "Transform", "Run")
# (label, outgoing relation type) of to-one relations that must never have several edges.
_TO_ONE = (
    ("Artifact", "STORED_IN"),
    ("Artifact", "CREATED_BY"),
    ("Artifact", "GENERATED_BY"),
    ("Collection", "CREATED_BY"),
    ("Collection", "GENERATED_BY"),
    ("Collection", "HAS_META"),
    ("Run", "EXECUTES"),
)


@dataclass(frozen=True)
class Issue:
    """One inconsistency: what kind, on which record (label and uid or stem), and details."""

    kind: str
    label: str
    uid: str
    detail: str

    def describe(self) -> str:
        return f"{self.kind}: {self.label} {self.uid}: {self.detail}"


def storage_roots(conn: Connection) -> list[str]:
    """The roots of every registered Storage node, sorted.

    >>> storage_roots(conn)
    ['/.../storage']
    """
    row = conn.read_values(
        "MATCH (s:Storage) WHERE s.root IS NOT NULL RETURN collect(s.root) AS roots"
    )
    return sorted(row[0]) if row else []


def paths_under(conn: Connection, prefix: str) -> set[str]:
    """`storage_path` of every artifact (any branch) that starts with `prefix`.

    >>> found = paths_under(conn, storage_roots(conn)[0])
    >>> sorted(path.rsplit(".", 1)[1] for path in found)
    ['csv', 'h5ad', 'h5ad', 'h5ad']
    >>> artifact.path.as_posix() in found
    True
    """
    row = conn.read_values(
        "MATCH (a:Artifact) WHERE a.storage_path STARTS WITH $prefix "
        "RETURN collect(a.storage_path) AS paths",
        {"prefix": prefix},
    )
    return set(row[0]) if row else set()


def referenced(conn: Connection, paths: list[str]) -> set[str]:
    """The subset of `paths` that some artifact's `storage_path` equals (a last check before
    a file is removed)."""
    if not paths:
        return set()
    row = conn.read_values(
        "MATCH (a:Artifact) WHERE a.storage_path IN $paths "
        "RETURN collect(DISTINCT a.storage_path) AS paths",
        {"paths": paths},
    )
    return set(row[0]) if row else set()


def find_issues(conn: Connection) -> list[Issue]:
    """Every graph inconsistency `lineage doctor` knows of (at most `LIMIT` per kind)."""
    issues: list[Issue] = []
    for label in _VERSIONED:
        issues += _latest_issues(conn, label)
    issues += _position_issues(conn)
    issues += _storage_issues(conn)
    # Named functions, not lambdas: mypy cannot infer a lambda whose defaults bind the loop
    # variables (bound so that bugbear's B023 holds, though `_rows` calls them at once).
    for label in _CREATED:

        def no_creator(r: dict[str, Any], label: str = label) -> Issue:
            return Issue("no creator", label, r["uid"], "no CREATED_BY edge")

        issues += _rows(
            conn,
            f"MATCH (n:`{label}`) WHERE NOT (n)-[:CREATED_BY]->(:User) "
            "RETURN n.uid AS uid LIMIT $limit",
            no_creator,
        )
    for label, rel in _TO_ONE:

        def several_edges(r: dict[str, Any], label: str = label, rel: str = rel) -> Issue:
            return Issue(
                "several edges", label, r["uid"], f"{r['k']} {rel} edges (at most 1 expected)"
            )

        issues += _rows(
            conn,
            f"MATCH (n:`{label}`) WITH n, COUNT {{ (n)-[:`{rel}`]->() }} AS k WHERE k > 1 "
            "RETURN n.uid AS uid, k LIMIT $limit",
            several_edges,
        )
    return issues


def _latest_issues(conn: Connection, label: str) -> list[Issue]:
    # The stem is the uid without its 4-character version counter.
    return _rows(
        conn,
        f"MATCH (n:`{label}`) WHERE n.branch = 1 "
        "WITH substring(n.uid, 0, $stem) AS stem, count(n) AS members, "
        "sum(CASE WHEN n.is_latest THEN 1 ELSE 0 END) AS latest "
        "WHERE latest <> 1 RETURN stem, members, latest LIMIT $limit",
        lambda r: Issue(
            "is_latest",
            label,
            r["stem"],
            f"version family has {r['latest']} is_latest among {r['members']} main-branch "
            "members (exactly 1 expected)",
        ),
        stem=uid_length(label),
    )


def _position_issues(conn: Connection) -> list[Issue]:
    # count(DISTINCT) skips nulls, so a membership without a position shows as a gap too.
    return _rows(
        conn,
        "MATCH (c:Collection) "
        "OPTIONAL MATCH (c)-[r:CONTAINS]->(:Artifact) "
        "WITH c, count(r) AS n, count(DISTINCT r.position) AS distinct_positions, "
        "min(r.position) AS lo, max(r.position) AS hi "
        "WHERE n = 0 OR distinct_positions <> n OR lo <> 0 OR hi <> n - 1 "
        "RETURN c.uid AS uid, n, lo, hi, distinct_positions LIMIT $limit",
        lambda r: Issue(
            "positions",
            "Collection",
            r["uid"],
            "no CONTAINS edges"
            if r["n"] == 0
            else f"{r['n']} CONTAINS edges with {r['distinct_positions']} distinct positions "
            f"{r['lo']}..{r['hi']} (0..{r['n'] - 1} expected)",
        ),
    )


def _storage_issues(conn: Connection) -> list[Issue]:
    no_storage = _rows(
        conn,
        # An OpenLineage dataset (`ol_namespace`) lineage did not store has no storage root.
        "MATCH (a:Artifact) WHERE NOT (a)-[:STORED_IN]->(:Storage) AND a.ol_namespace IS NULL "
        "RETURN a.uid AS uid LIMIT $limit",
        lambda r: Issue("no storage", "Artifact", r["uid"], "no STORED_IN edge"),
    )
    no_path = _rows(
        conn,
        # ... and no path when it is a table or a topic rather than files.
        "MATCH (a:Artifact) WHERE a.storage_path IS NULL AND a.ol_namespace IS NULL "
        "RETURN a.uid AS uid LIMIT $limit",
        lambda r: Issue("no storage_path", "Artifact", r["uid"], "storage_path is not set"),
    )
    return no_storage + no_path


def _rows(
    conn: Connection, query: str, make: Callable[[dict[str, Any]], Issue], **params: Any
) -> list[Issue]:
    return [make(row) for row in conn.read(query, {"limit": LIMIT, **params})]
