"""The queries behind `ln.lineage.diff`, `impact` and `stale`: what changed between two records,
what is built on a record, and what was built on an input that has since moved on.

Each question is one parameterised query (a diff of collections may add one small look-up of the
moved members' keys); the queries are written out in full, as they are shown in
`docs/cypher-cookbook.md` (`graph/cookbook.py` names the same strings). The functions below run
them and return plain values; `lineage/_questions.py` turns those into typed results.

- Diff: `COLLECTION_DIFF`, `ARTIFACT_DIFF`, `TRANSFORM_DIFF` and `RUN_DIFF` read both records in
  one round trip. Changed properties are compared in Cypher (`fields`: `[name, old, new]` for
  each property whose value differs, a missing one counting as null); collection members come
  back as the two orders (uids by `position`) with the added and removed ones picked out,
  because which members *moved* is the longest order kept in common, which Python finds in
  O(n log n) and Cypher cannot.
- Impact follows the conventions of `graph/lineage.py` downstream: depth counts runs on the
  path (depth 0: the records themselves with what is reached without passing a run), a run's
  transform is an end point, trashed records are left out. It is the same breadth-first search
  by levels of runs, keeping each level apart so each record comes back with its depth.
- Stale starts from the versions that are no longer latest (`is_latest` is false for a version
  with a newer one in the main branch, and for a trashed one), so it reads only the inputs that
  can make something stale, never the whole graph. `USED` edges point at the exact version a
  run read, so the version used is the edge's end.
- Samples: the rows of each artifact version a run saw are properties of its `USED` edge to that
  version (`rows`, a bitmap or row ranges, `n_rows`, `n_used`: `graph.records.finish_run` writes
  them). `RUN_ROWS` reads a run's row sets; `ROWS_USED` finds the runs that saw given rows of
  given artifact versions, with each run's transform and outputs: a bitmap row set is tested in
  the query by reading the asked rows' bytes (so a megabyte of bitmaps never leaves the server),
  a row set stored as ranges (small by construction) comes back for Python to test
  (`loaders.rowsets`).
"""

from __future__ import annotations

from typing import Any

from graph.connection import Connection, plain
from graph.lineage import DEPTH_LIMIT, LINEAGE_LABELS
from graph.models import uid_length

__all__ = [
    "ARTIFACT_DIFF",
    "COLLECTION_DIFF",
    "IMPACT",
    "RUN_DIFF",
    "STALE",
    "TRANSFORM_DIFF",
    "impact",
    "member_keys",
    "previous",
    "record_diff",
    "record_states",
    "rows_used",
    "run_rows",
    "stale",
    "versions_of",
]

# The properties of two nodes `old` and `new` that differ, as [name, old value, new value].
# A property one node lacks counts as null; `<>` on a null is null, hence the coalesce.
_FIELDS = """[k IN keys(old) + [k IN keys(new) WHERE NOT k IN keys(old)]
        WHERE coalesce(old[k] <> new[k], old[k] IS NULL <> new[k] IS NULL)
        | [k, old[k], new[k]]] AS fields"""

# Two collections: changed properties, meta artifacts, both member orders, added and removed.
COLLECTION_DIFF = f"""
MATCH (old:Collection {{uid: $old}})
MATCH (new:Collection {{uid: $new}})
WITH old, new,
     COLLECT {{ MATCH (old)-[m:CONTAINS]->(a:Artifact) WITH a, m ORDER BY m.position
               RETURN a.uid }} AS old_members,
     COLLECT {{ MATCH (new)-[m:CONTAINS]->(a:Artifact) WITH a, m ORDER BY m.position
               RETURN a.uid }} AS new_members
WITH old, new, old_members, new_members,
     [i IN range(0, size(new_members) - 1) WHERE NOT new_members[i] IN old_members] AS added,
     [i IN range(0, size(old_members) - 1) WHERE NOT old_members[i] IN new_members] AS removed
RETURN {_FIELDS},
       COLLECT {{ MATCH (old)-[:HAS_META]->(m:Artifact) RETURN m.uid }} AS old_meta,
       COLLECT {{ MATCH (new)-[:HAS_META]->(m:Artifact) RETURN m.uid }} AS new_meta,
       old_members, new_members,
       [i IN added | [i, new_members[i],
         COLLECT {{ MATCH (a:Artifact {{uid: new_members[i]}}) RETURN a.key }}[0]]] AS added,
       [i IN removed | [i, old_members[i],
         COLLECT {{ MATCH (a:Artifact {{uid: old_members[i]}}) RETURN a.key }}[0]]] AS removed
"""

# Two artifacts: changed properties, and what the files' metadata are read from.
ARTIFACT_DIFF = f"""
MATCH (old:Artifact {{uid: $old}})
MATCH (new:Artifact {{uid: $new}})
RETURN {_FIELDS},
       [old.storage_path, old.suffix, old.hash] AS old_file,
       [new.storage_path, new.suffix, new.hash] AS new_file
"""

# Two transforms: changed properties.
TRANSFORM_DIFF = f"""
MATCH (old:Transform {{uid: $old}})
MATCH (new:Transform {{uid: $new}})
RETURN {_FIELDS}
"""

# Two runs: changed properties, transforms, inputs and outputs ([label, uid, key, version]).
RUN_DIFF = f"""
MATCH (old:Run {{uid: $old}})
MATCH (new:Run {{uid: $new}})
RETURN {_FIELDS},
       COLLECT {{ MATCH (old)-[:EXECUTES]->(t:Transform) RETURN [t.uid, t.key, t.version] }}
         AS old_transform,
       COLLECT {{ MATCH (new)-[:EXECUTES]->(t:Transform) RETURN [t.uid, t.key, t.version] }}
         AS new_transform,
       COLLECT {{ MATCH (old)-[:USED]->(x) RETURN [labels(x)[0], x.uid, x.key, x.version] }}
         AS old_inputs,
       COLLECT {{ MATCH (new)-[:USED]->(x) RETURN [labels(x)[0], x.uid, x.key, x.version] }}
         AS new_inputs,
       COLLECT {{ MATCH (old)<-[:GENERATED_BY]-(x) RETURN [labels(x)[0], x.uid, x.key, x.version] }}
         AS old_outputs,
       COLLECT {{ MATCH (new)<-[:GENERATED_BY]-(x) RETURN [labels(x)[0], x.uid, x.key, x.version] }}
         AS new_outputs
"""

_DIFFS = {
    "Artifact": ARTIFACT_DIFF,
    "Collection": COLLECTION_DIFF,
    "Run": RUN_DIFF,
    "Transform": TRANSFORM_DIFF,
}

# Everything downstream of records, by run depth, with the run and transform that made each
# and its creator. $depth: runs to go (null: all). Depth 0 is the records themselves with what
# they reach without passing a run: the collections holding them, their later versions, and
# for a run its outputs; each further level is the runs that read the previous level (or, from
# a transform, execute it), their transforms and their outputs. The records given are not rows.
IMPACT = """
MATCH (s:Artifact|Collection|Run|Transform) WHERE s.uid IN $uids
WITH collect(s) AS roots
WITH roots, COLLECT {
  UNWIND roots AS s
  CALL (s) {
    WITH s WHERE s:Run
    CALL (s) {
      RETURN s AS y
      UNION MATCH (s)-[:EXECUTES]->(y) RETURN y
      UNION MATCH (s)<-[:GENERATED_BY]-()<-[:CONTAINS|HAS_META|REVISES*0..]-(y)
            WHERE coalesce(y.branch, 1) <> -1 RETURN y
    }
    RETURN y
    UNION
    WITH s WHERE NOT s:Run
    MATCH (s)<-[:CONTAINS|HAS_META|REVISES*0..]-(y) WHERE y = s OR coalesce(y.branch, 1) <> -1
    RETURN y
  }
  RETURN DISTINCT [y, y:Artifact OR y:Collection OR (y:Transform AND NOT s:Run)] AS pair
} AS pairs
WITH roots, [p IN pairs | p[0]] AS level0, [p IN pairs WHERE p[1] | p[0]] AS front0
WITH roots, reduce(st = {seen: level0, front: front0, levels: [level0]},
                   i IN range(1, coalesce($depth, 100000)) |
  CASE WHEN st.front = [] THEN st ELSE
  head([new IN [COLLECT {
    UNWIND st.front AS x
    MATCH (x)<-[:USED|EXECUTES]-(r:Run) WHERE coalesce(r.branch, 1) <> -1
    WITH DISTINCT r
    CALL (r) {
      RETURN r AS y
      UNION MATCH (r)-[:EXECUTES]->(y) RETURN y
      UNION MATCH (r)<-[:GENERATED_BY]-()<-[:CONTAINS|HAS_META|REVISES*0..]-(y)
            WHERE coalesce(y.branch, 1) <> -1 RETURN y
    }
    WITH DISTINCT y WHERE NOT y IN st.seen RETURN y
  }] | {seen: st.seen + new, front: [y IN new WHERE y:Artifact OR y:Collection],
        levels: st.levels + [new]}])
  END).levels AS levels
UNWIND range(0, size(levels) - 1) AS depth
UNWIND levels[depth] AS n
WITH depth, n WHERE NOT n:Transform AND NOT n IN roots
OPTIONAL MATCH (n)-[:GENERATED_BY]->(made:Run)
WITH depth, n, CASE WHEN n:Run THEN n ELSE made END AS run
OPTIONAL MATCH (run)-[:EXECUTES]->(t:Transform)
OPTIONAL MATCH (n)-[:CREATED_BY]->(u:User)
RETURN depth, labels(n)[0] AS label, n.uid AS uid, coalesce(n.key, n.name) AS key,
       n.version AS version, run.uid AS run, t.key AS transform, t.uid AS transform_uid,
       u.handle AS created_by
ORDER BY depth, label, key, uid
"""

# Records (latest of their family, not trashed) made by a run that read a version which is no
# longer the latest of its family: a newer one is in the main branch, or it is in the trash.
# $key: only records whose key starts with it (null: all). One row per record and outdated input.
# One branch per label: with a label disjunction the planner scanned every run instead of
# seeking the `is_latest` index (152 ms against 29 ms at 100k records, 1,000 stale).
STALE = """
CALL () {
  MATCH (input:Artifact) WHERE input.is_latest = false RETURN input
  UNION ALL
  MATCH (input:Collection) WHERE input.is_latest = false RETURN input
}
MATCH (input)<-[:USED]-(run:Run)<-[:GENERATED_BY]-(output)
WHERE (output:Artifact OR output:Collection) AND output.is_latest
  AND coalesce(output.branch, 1) <> -1 AND coalesce(run.branch, 1) <> -1
  AND ($key IS NULL OR output.key STARTS WITH $key)
WITH input, run, output, CASE WHEN input:Artifact
  THEN COLLECT { MATCH (latest:Artifact) WHERE latest.uid STARTS WITH left(input.uid, 16)
                 AND latest.is_latest AND latest.branch = 1 RETURN latest }[0]
  ELSE COLLECT { MATCH (latest:Collection) WHERE latest.uid STARTS WITH left(input.uid, 16)
                 AND latest.is_latest AND latest.branch = 1 RETURN latest }[0]
  END AS latest
WHERE input.branch = -1 OR latest IS NOT NULL
OPTIONAL MATCH (run)-[:EXECUTES]->(t:Transform)
RETURN labels(output)[0] AS label, output.uid AS uid, output.key AS key,
       output.version AS version, run.uid AS run, t.key AS transform,
       labels(input)[0] AS input_label, input.uid AS used, input.key AS used_key,
       input.version AS used_version, input.branch = -1 AS used_trashed,
       latest.uid AS latest, latest.version AS latest_version
ORDER BY key, uid, used
"""

# The labels, uids and branches of the records with these uids (to check them before asking).
_STATES = """
MATCH (s:Artifact|Collection|Run|Transform) WHERE s.uid IN $uids
RETURN labels(s)[0] AS label, s.uid AS uid, s.branch AS branch
"""

# Keys of artifacts by uid (the members a collection diff found moved).
_KEYS = """
MATCH (a:Artifact) WHERE a.uid IN $uids
RETURN a.uid AS uid, a.key AS key
"""

# The version before a record in its family (uid order is version order), not trashed.
_PREVIOUS_VERSION = """
MATCH (x:`{label}`) WHERE x.uid STARTS WITH $stem AND x.uid < $uid AND coalesce(x.branch, 1) <> -1
RETURN x.uid AS uid ORDER BY x.uid DESC LIMIT 1
"""

# The run of the same transform family started just before this one, not trashed.
_PREVIOUS_RUN = """
MATCH (r:Run {uid: $uid})-[:EXECUTES]->(t:Transform)
MATCH (p:Run)-[:EXECUTES]->(v:Transform)
WHERE v.uid STARTS WITH left(t.uid, $stem) AND p <> r AND coalesce(p.branch, 1) <> -1
  AND (p.started_at < r.started_at OR (p.started_at = r.started_at AND p.id < r.id))
RETURN p.uid AS uid ORDER BY p.started_at DESC, p.id DESC LIMIT 1
"""


def _check_label(label: str) -> str:
    if label not in LINEAGE_LABELS:  # defence in depth: the label goes into query text
        raise ValueError(f"no lineage question is asked of {label!r} records")
    return label


def record_states(conn: Connection, uids: list[str]) -> dict[tuple[str, str], int | None]:
    """`{(label, uid): branch}` for the artifacts, collections, runs and transforms with these
    uids; a uid that is not there is not a key."""
    rows = conn.read(_STATES, {"uids": list(uids)})
    return {(r["label"], r["uid"]): r["branch"] for r in rows}


# The columns each diff query returns, in order.
_DIFF_COLUMNS: dict[str, tuple[str, ...]] = {
    "Artifact": ("fields", "old_file", "new_file"),
    "Collection": (
        "fields", "old_meta", "new_meta", "old_members", "new_members", "added", "removed",
    ),
    "Run": (
        "fields", "old_transform", "new_transform", "old_inputs", "new_inputs", "old_outputs",
        "new_outputs",
    ),
    "Transform": ("fields",),
}  # fmt: skip


def record_diff(conn: Connection, label: str, old: str, new: str) -> dict[str, Any] | None:
    """The row of `label`'s diff query for uids `old` and `new`, by column name; None if either
    record is missing. `fields` (a list of `[name, old, new]`) is made plain (datetimes as
    `datetime`); the other columns hold only strings, numbers and lists, read undecoded."""
    query = _DIFFS[_check_label(label)]
    values = conn.read_values(query, {"old": old, "new": new})
    if values is None:
        return None
    row = dict(zip(_DIFF_COLUMNS[label], values, strict=True))
    row["fields"] = plain(row["fields"])
    return row


def member_keys(conn: Connection, uids: list[str]) -> dict[str, str | None]:
    """Artifact uid -> key."""
    return {r["uid"]: r["key"] for r in conn.read(_KEYS, {"uids": list(uids)})}


def previous(conn: Connection, label: str, uid: str) -> str | None:
    """The uid of the record before `uid`: the previous version in its family (artifacts,
    collections, transforms; trashed versions skipped), or for a run the run of the same
    transform family started just before it. None if there is none."""
    label = _check_label(label)
    if label == "Run":
        rows = conn.read(_PREVIOUS_RUN, {"uid": uid, "stem": uid_length("Transform")})
    else:
        stem = uid[: uid_length(label)]
        rows = conn.read(_PREVIOUS_VERSION.format(label=label), {"stem": stem, "uid": uid})
    return rows[0]["uid"] if rows else None


def _one_row(query: str, columns: tuple[str, ...]) -> str:
    """`query` (whose rows hold only strings, numbers, booleans and nulls) as one row holding a
    list of its rows, in order: the driver decodes one row of lists several times faster than
    as many rows (about 10 µs of Python per row), and the query text stays the cookbook's."""
    return f"CALL () {{{query}}}\nRETURN collect([{', '.join(columns)}]) AS rows"


_IMPACT_COLUMNS = (
    "depth", "label", "uid", "key", "version", "run", "transform", "transform_uid", "created_by",
)  # fmt: skip
_STALE_COLUMNS = (
    "label", "uid", "key", "version", "run", "transform", "input_label", "used", "used_key",
    "used_version", "used_trashed", "latest", "latest_version",
)  # fmt: skip


def _rows(conn: Connection, query: str, columns: tuple[str, ...], params: dict[str, Any]) -> list:
    values = conn.read_values(_one_row(query, columns), params)
    return [dict(zip(columns, row, strict=True)) for row in (values[0] if values else [])]


def impact(conn: Connection, uids: list[str], depth: int | None) -> list[dict[str, Any]]:
    """The rows of `IMPACT`: one per record downstream of the records with `uids`."""
    return _rows(conn, IMPACT, _IMPACT_COLUMNS, {"uids": list(uids), "depth": _depth(depth)})


def _depth(depth: int | None) -> int | None:
    # The query's own default (100000) is DEPTH_LIMIT: `None` means "all" either way.
    return None if depth is None else min(depth, DEPTH_LIMIT)


def stale(conn: Connection, key: str | None = None) -> list[dict[str, Any]]:
    """The rows of `STALE`: one per stale record and outdated input, ordered by key."""
    return _rows(conn, STALE, _STALE_COLUMNS, {"key": key})


# -- samples --------------------------------------------------------------------------------------
# The artifact versions a run saw rows of, with the row sets (by key, then uid).
RUN_ROWS = """
MATCH (r:Run {uid: $run})-[e:USED]->(a:Artifact)
WHERE e.rows IS NOT NULL
RETURN a.uid AS uid, a.key AS key, a.version AS version, a.storage_path AS path,
       a.hash AS hash, e.rows AS rows, e.n_rows AS n_rows, e.n_used AS n_used
ORDER BY a.key, a.uid
"""

# The runs (not in the trash) that saw any of the asked rows of the artifact versions in
# `$wanted` (`{uid, at, bit}`: per version, the byte offset and bit mask of each asked row in a
# bitmap row set), each with its transform and outputs (not in the trash). A bitmap row set
# (first byte `$bitmap`) is tested here, byte by byte (Cypher's bytes are signed: +256 % 256),
# and only the positions of the rows it holds (`hits`, into `at`) come back; another encoding
# comes back whole (`rows`) for Python to test. One row per run: `seen` lists, per version,
# `[uid, hits, rows, n_rows]`.
ROWS_USED = """
UNWIND $wanted AS w
MATCH (a:Artifact {uid: w.uid})<-[e:USED]-(r:Run)
WHERE e.rows IS NOT NULL AND coalesce(r.branch, 1) <> -1
WITH r, a, w, e.rows AS b, e.n_rows AS n_rows
WITH r, a, w, b, n_rows, b[0] = $bitmap AS bitmap
WITH r, a, b, n_rows, bitmap,
     CASE WHEN bitmap THEN [i IN range(0, size(w.at) - 1)
       WHERE ((b[w.at[i]] + 256) % 256) / w.bit[i] % 2 = 1] END AS hits
WHERE NOT bitmap OR size(hits) > 0
WITH r, a, hits, CASE WHEN bitmap THEN null ELSE b END AS rows, n_rows ORDER BY a.uid
WITH r, collect([a.uid, hits, rows, n_rows]) AS seen
RETURN r.uid AS run, r.name AS name, r.status AS status, seen,
       COLLECT { MATCH (r)-[:EXECUTES]->(t:Transform) RETURN t.key }[0] AS transform,
       COLLECT { MATCH (o:Artifact|Collection)-[:GENERATED_BY]->(r)
                 WHERE coalesce(o.branch, 1) <> -1
                 WITH o ORDER BY o.key, o.uid
                 RETURN [labels(o)[0], o.uid, o.key, o.version] } AS outputs
ORDER BY r.started_at, r.uid
"""

# The artifact versions a `used_by` question names: the artifact itself, or the members of a
# collection in their order.
_VERSIONS = """
MATCH (s:Artifact|Collection {uid: $uid})
OPTIONAL MATCH (s)-[m:CONTAINS]->(member:Artifact)
WITH s, m, CASE WHEN s:Collection THEN member ELSE s END AS a
WHERE a IS NOT NULL
RETURN a.uid AS uid, a.key AS key, a.version AS version, a.storage_path AS path,
       a.hash AS hash, a.suffix AS suffix
ORDER BY m.position
"""


_ROWS_USED_COLUMNS = ("run", "name", "status", "seen", "transform", "outputs")


def run_rows(conn: Connection, run: str) -> list[dict[str, Any]]:
    """The rows of `RUN_ROWS` for the run with uid `run`."""
    return conn.read(RUN_ROWS, {"run": run})


def rows_used(conn: Connection, wanted: list[dict[str, Any]], bitmap: int) -> list[dict[str, Any]]:
    """The rows of `ROWS_USED`: one per run that saw asked rows (or read an asked version whose
    row set is not a bitmap, `bitmap` being a bitmap's first byte), `seen` holding
    `[artifact uid, hits, rows, n_rows]` per version. One row of lists, read undecoded."""
    return _rows(conn, ROWS_USED, _ROWS_USED_COLUMNS, {"wanted": wanted, "bitmap": bitmap})


def versions_of(conn: Connection, uid: str) -> list[dict[str, Any]]:
    """The artifact with `uid`, or the members of the collection with `uid`, in order."""
    return conn.read(_VERSIONS, {"uid": uid})
