"""OpenLineage events written into the graph (docs/architecture.md, OpenLineage), and the
queries that read them back: column lineage and the Marquez-shaped listings.

Callers pass events already checked and normalised (`lineage._openlineage.parse_event`): plain
dicts, facets as JSON text, times as UTC datetimes. What an event becomes:

- its job (`namespace`, `name`) a Transform with key `<namespace>/<name>` (`ol_namespace`,
  `ol_name`); a job whose source (`source_hash`) differs from its latest version's becomes a new
  version; a version whose source was not known yet takes the first one an event brings;
- its run (`runId`) the Run with that `openlineage_run_id`: status and times from the events
  (a terminal event wins over START/RUNNING, the latest terminal over earlier ones; `started_at`
  is the earliest event time), `INITIATED_BY` the parent run;
- its datasets artifacts, found in this order: by (`ol_namespace`, `ol_name`), else by
  `storage_path` = the dataset's location (an artifact lineage stored is then that dataset);
  the dataset version facet picks the version with that `version` tag (made if missing); an
  output without one is the version this run made, else the family's latest version no run
  made, else a new version; an input without one is the latest version this run did not make.
  Inputs get `(run)-[:USED]->`, outputs `-[:GENERATED_BY]->(run)`, as for tracked runs;
- facets are merged per name into the node's `facets` (JSON text), each kept from the latest
  event time that brought it (`facet_times`), so replaying events in any order ends the same;
- schema fields and column lineage become `:Column` nodes (`HAS_COLUMN`) and `DERIVED_FROM`
  edges between them.

Every event of a call is written in one transaction (`write_events`), after taking the id
counters of the labels it may create (always in the same order): concurrent ingests take turns,
so two of them never both create the same job, run or dataset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import neo4j

from graph.connection import Connection
from graph.ids import FIRST_VERSION, base62, counter_string, counter_value
from graph.models import uid_length
from graph.records import _take_ids, now

# Run statuses an event sets (lamindb's names); a terminal one is kept over a later START.
STATUS_OF = {"COMPLETE": "completed", "FAIL": "errored", "ABORT": "aborted"}
_TERMINAL_RANK = {"completed": 0, "errored": 1, "aborted": 2}
_LOCKED_LABELS = ("Artifact", "Run", "Transform")  # sorted: every ingest locks in this order
# The new node `n`'s creator edge (a user deleted meanwhile leaves it out, not the node).
_CREATED_BY = (
    "OPTIONAL MATCH (u:User {uid: $user}) "
    "FOREACH (_ IN CASE WHEN u IS NULL THEN [] ELSE [1] END | CREATE (n)-[:CREATED_BY]->(u))"
)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def write_events(conn: Connection, events: Sequence[dict[str, Any]], user: str) -> list[dict]:
    """Write normalised events in one transaction; returns, per event, the uids it touched:
    `{"transform", "run", "inputs", "outputs", "datasets"}`. `user` is the uid of the User the
    new records are `CREATED_BY`."""

    def work(tx: neo4j.ManagedTransaction) -> list[dict]:
        for label in _LOCKED_LABELS:
            tx.run(
                "MERGE (c:LineageCounter {label: $label}) ON CREATE SET c.value = 0 "
                "SET c._lock = true REMOVE c._lock",
                label=label,
            ).consume()
        return [_Writer(tx, user, event).write() for event in events]

    return conn.write(work)


class _Writer:
    """One event's writes, inside the caller's transaction."""

    def __init__(self, tx: neo4j.ManagedTransaction, user: str, event: dict[str, Any]) -> None:
        self.tx, self.user, self.event = tx, user, event
        self.time: datetime = event["time"]
        self.stamp = now()
        self.facets: list[tuple[str, str, dict[str, str]]] = []  # (label, uid, facets)

    def q(self, query: str, **params: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.tx.run(query, params)]

    # -- the event ------------------------------------------------------------------------------
    def write(self) -> dict[str, Any]:
        event = self.event
        out: dict[str, Any] = {"transform": None, "run": None, "inputs": [], "outputs": [],
                               "datasets": []}  # fmt: skip
        run_uid = None
        if event["run"] is not None:
            run_uid, transform = self.run(event["run"], event["job"], event["type"])
            out["run"], out["transform"] = run_uid, transform
        elif event["job"] is not None:
            out["transform"] = self.job(event["job"])
        resolved: dict[tuple[str, str], str] = {}
        for dataset in event["inputs"]:
            uid = self.dataset(dataset, "input", run_uid)
            resolved[(dataset["namespace"], dataset["name"])] = uid
            out["inputs"].append(uid)
        if run_uid is not None and out["inputs"]:
            self.q(
                "MATCH (r:Run {uid: $run}) UNWIND $uids AS uid MATCH (a:Artifact {uid: uid}) "
                "WHERE NOT EXISTS { (a)-[:GENERATED_BY]->(r) } MERGE (r)-[:USED]->(a)",
                run=run_uid,
                uids=out["inputs"],
            )
        for dataset in event["outputs"]:
            uid = self.dataset(dataset, "output", run_uid)
            out["outputs"].append(uid)
        if run_uid is not None and out["outputs"]:
            self.q(
                "MATCH (r:Run {uid: $run}) UNWIND $uids AS uid MATCH (a:Artifact {uid: uid}) "
                "WHERE NOT EXISTS { (a)-[:GENERATED_BY]->() } CREATE (a)-[:GENERATED_BY]->(r)",
                run=run_uid,
                uids=out["outputs"],
            )
        if event["dataset"] is not None:
            out["datasets"].append(self.dataset(event["dataset"], "dataset", None))
        for dataset, uid in (
            *zip(event["inputs"], out["inputs"]),
            *zip(event["outputs"], out["outputs"]),
            *zip([event["dataset"]] if event["dataset"] else [], out["datasets"]),
        ):
            self.columns(dataset, uid, resolved)
        self.merge_facets()
        return out

    # -- jobs -----------------------------------------------------------------------------------
    def job(self, job: dict[str, Any]) -> str:
        """The Transform version of a job (made or versioned as the module docstring says)."""
        family = self.q(
            "MATCH (t:Transform {ol_name: $name}) WHERE t.ol_namespace = $ns AND t.branch <> -1 "
            "RETURN t.uid AS uid, t.hash AS hash, t.is_latest AS is_latest, t.branch AS branch "
            "ORDER BY t.uid",
            ns=job["namespace"],
            name=job["name"],
        )
        source = job["source_hash"]
        uid = None
        if family:
            same = [m for m in family if source is not None and m["hash"] == source]
            latest = _latest(family)
            if same:
                uid = same[-1]["uid"]
            elif source is None or latest["hash"] is None:
                uid = latest["uid"]
                if source is not None:  # the first event that knows the source
                    self.q(
                        "MATCH (t:Transform {uid: $uid}) SET t.hash = $hash, "
                        "t.source_code = $code, t.updated_at = $now",
                        uid=uid, hash=source, code=job["source"], now=self.stamp,
                    )  # fmt: skip
        if uid is None:
            uid = self.create_transform(job, family)
        self.q(
            "MATCH (t:Transform {uid: $uid}) WHERE t.description IS NULL SET t.description = $d",
            uid=uid,
            d=job["description"],
        )
        self.facets.append(("Transform", uid, job["facets"]))
        return uid

    def create_transform(self, job: dict[str, Any], family: list[dict[str, Any]]) -> str:
        stem_len = uid_length("Transform")
        latest = _latest(family) if family else None
        if latest is None:
            uid = base62(stem_len) + FIRST_VERSION
        else:
            top = max(counter_value(m["uid"][stem_len:]) for m in family)
            uid = latest["uid"][:stem_len] + counter_string(top + 1)
        (record_id,) = _take_ids(self.tx, "Transform", 1)
        props = {
            "uid": uid, "id": record_id, "key": job["key"], "kind": "pipeline",
            "hash": job["source_hash"], "source_code": job["source"],
            "description": job["description"], "is_latest": True, "branch": 1,
            "created_at": self.stamp, "updated_at": self.stamp,
            "ol_namespace": job["namespace"], "ol_name": job["name"],
        }  # fmt: skip
        self._create("Transform", props, latest["uid"] if latest else None)
        return uid

    def _create(self, label: str, props: dict[str, Any], revises: str | None) -> None:
        """One versioned node with its creator, and `REVISES` the version it follows (which
        stops being the latest)."""
        self.q(
            f"CREATE (n:`{label}`) SET n = $props WITH n "
            f"{_CREATED_BY} WITH n "
            f"OPTIONAL MATCH (old:`{label}` {{uid: $revises}}) "
            "FOREACH (_ IN CASE WHEN old IS NULL THEN [] ELSE [1] END | "
            "CREATE (n)-[:REVISES]->(old) SET old.is_latest = false)",
            props={k: v for k, v in props.items() if v is not None},
            user=self.user,
            revises=revises,
        )

    # -- runs -----------------------------------------------------------------------------------
    def run(
        self, run: dict[str, Any], job: dict[str, Any], event_type: str | None
    ) -> tuple[str, str]:
        """The Run of a runId (its status and times brought up to date) and its Transform."""
        found = self.find_run(run["id"])
        if found is not None and found["transform"] is not None:
            transform = found["transform"]
            # A run keeps its transform (a tracked run's events name its own job): the job's
            # facets still describe it, and the first event that knows the job's source says
            # what the run's version ran (when an earlier one did not).
            self.facets.append(("Transform", transform, job["facets"]))
            if job["source_hash"] is not None:
                self.q(
                    "MATCH (t:Transform {uid: $uid}) WHERE t.hash IS NULL "
                    "AND t.ol_namespace = $ns AND t.ol_name = $name "
                    "SET t.hash = $hash, t.source_code = $code, t.updated_at = $now",
                    uid=transform, ns=job["namespace"], name=job["name"],
                    hash=job["source_hash"], code=job["source"], now=self.stamp,
                )  # fmt: skip
        else:
            transform = self.job(job)
        if found is None:
            uid = self.create_run(run["id"], transform)
            found = {"uid": uid, "status": None, "started_at": None, "finished_at": None}
        elif found["transform"] is None:
            self.q(
                "MATCH (r:Run {uid: $run}), (t:Transform {uid: $t}) MERGE (r)-[:EXECUTES]->(t)",
                run=found["uid"],
                t=transform,
            )
        self.update_status(found, event_type)
        parent = run["parent"]
        if parent is not None and parent["id"] != run["id"]:
            parent_uid = self.placeholder_run(parent["id"], parent["job"])
            self.q(
                "MATCH (r:Run {uid: $run}), (p:Run {uid: $parent}) "
                "WHERE NOT EXISTS { (r)-[:INITIATED_BY]->() } CREATE (r)-[:INITIATED_BY]->(p)",
                run=found["uid"],
                parent=parent_uid,
            )
        self.facets.append(("Run", found["uid"], run["facets"]))
        return found["uid"], transform

    def find_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.q(
            "MATCH (r:Run {openlineage_run_id: $id}) RETURN r.uid AS uid, r.status AS status, "
            "r.started_at AS started_at, r.finished_at AS finished_at, "
            "[(r)-[:EXECUTES]->(t:Transform) | t.uid][0] AS transform",
            id=run_id,
        )
        return rows[0] if rows else None

    def create_run(self, run_id: str, transform: str | None) -> str:
        uid = base62(uid_length("Run"))
        (record_id,) = _take_ids(self.tx, "Run", 1)
        self.q(
            "CREATE (r:Run {uid: $uid, id: $id, openlineage_run_id: $run_id, branch: 1, "
            "created_at: $now, updated_at: $now}) WITH r AS n "
            f"{_CREATED_BY} WITH n AS r "
            "OPTIONAL MATCH (t:Transform {uid: $transform}) "
            "FOREACH (_ IN CASE WHEN t IS NULL THEN [] ELSE [1] END | CREATE (r)-[:EXECUTES]->(t))",
            uid=uid, id=record_id, run_id=run_id, now=self.stamp, user=self.user,
            transform=transform,
        )  # fmt: skip
        return uid

    def placeholder_run(self, run_id: str, job: dict[str, Any] | None) -> str:
        """The parent run: found, else made (no status until its own events arrive)."""
        found = self.find_run(run_id)
        if found is not None:
            return found["uid"]
        transform = self.job(job) if job is not None else None
        return self.create_run(run_id, transform)

    def update_status(self, run: dict[str, Any], event_type: str | None) -> None:
        t = self.time
        started = run["started_at"]
        props: dict[str, Any] = {}
        if started is None or t < _native(started):
            props["started_at"] = t
        status = STATUS_OF.get(event_type or "")
        if status is not None:
            finished = run["finished_at"]
            current = _TERMINAL_RANK.get(run["status"] or "")
            if (
                current is None
                or finished is None
                or (t, _TERMINAL_RANK[status]) > (_native(finished), current)
            ):
                props.update(status=status, finished_at=t)
        elif run["status"] is None:
            props["status"] = "started"
        if props:
            self.q(
                "MATCH (r:Run {uid: $uid}) SET r += $props, r.updated_at = $now",
                uid=run["uid"],
                props=props,
                now=self.stamp,
            )

    # -- datasets -------------------------------------------------------------------------------
    def dataset(self, ds: dict[str, Any], role: str, run: str | None) -> str:
        """The artifact version a dataset names in this event (see the module docstring)."""
        family = self.family(ds)
        version = ds["version"]
        chosen = None
        if version is not None:
            chosen = next((m for m in family if m["version"] == version), None)
            if chosen is None:  # a path-matched artifact lineage made: its uid is its version
                chosen = next((m for m in family if m["uid"] == version), None)
        elif role == "output":
            chosen = next((m for m in family if run is not None and m["made_by"] == run), None)
            if chosen is None and family:
                latest = _latest(family)
                chosen = latest if latest["made_by"] is None else None
        elif family:
            candidates = [m for m in family if run is None or m["made_by"] != run]
            chosen = _latest(candidates) if candidates else None
        if chosen is None:
            uid = self.create_artifact(ds, family)
        else:
            uid = chosen["uid"]
            self.q(
                "MATCH (a:Artifact {uid: $uid}) "
                "SET a.ol_namespace = coalesce(a.ol_namespace, $ns), "
                "a.ol_name = coalesce(a.ol_name, $name), "
                "a.n_observations = coalesce($rows, a.n_observations), "
                "a.description = coalesce(a.description, $description)",
                uid=uid, ns=ds["namespace"], name=ds["name"], rows=ds["rows"],
                description=ds["description"],
            )  # fmt: skip
        self.facets.append(("Artifact", uid, ds["facets"]))
        return uid

    def family(self, ds: dict[str, Any]) -> list[dict[str, Any]]:
        returns = (
            "RETURN a.uid AS uid, a.version AS version, a.is_latest AS is_latest, "
            "a.branch AS branch, a.key AS key, a.created_at AS created_at, "
            "[(a)-[:GENERATED_BY]->(r:Run) | r.uid][0] AS made_by ORDER BY a.uid"
        )
        rows = self.q(
            "MATCH (a:Artifact {ol_name: $name}) WHERE a.ol_namespace = $ns AND a.branch <> -1 "
            + returns,
            ns=ds["namespace"],
            name=ds["name"],
        )
        if not rows and ds["location"] is not None:
            rows = self.q(
                "MATCH (a:Artifact {storage_path: $path}) WHERE a.branch <> -1 " + returns,
                path=ds["location"],
            )
            if rows:  # one family: the one of the newest artifact at that path
                newest = max(rows, key=lambda m: (m["created_at"], m["uid"]))
                stem = newest["uid"][: uid_length("Artifact")]
                rows = [m for m in rows if m["uid"].startswith(stem)]
        return rows

    def create_artifact(self, ds: dict[str, Any], family: list[dict[str, Any]]) -> str:
        stem_len = uid_length("Artifact")
        latest = _latest(family) if family else None
        if latest is None:
            uid, key = base62(stem_len) + FIRST_VERSION, ds["key"]
        else:
            top = max(counter_value(m["uid"][stem_len:]) for m in family)
            uid, key = latest["uid"][:stem_len] + counter_string(top + 1), latest["key"]
        (record_id,) = _take_ids(self.tx, "Artifact", 1)
        props = {
            "uid": uid, "id": record_id, "key": key, "description": ds["description"],
            "version": ds["version"], "suffix": ds["suffix"], "size": ds["size"],
            "n_observations": ds["rows"], "storage_path": ds["location"], "is_latest": True,
            "branch": 1, "created_at": self.stamp, "updated_at": self.stamp,
            "ol_namespace": ds["namespace"], "ol_name": ds["name"],
        }  # fmt: skip
        self._create("Artifact", props, latest["uid"] if latest else None)
        return uid

    # -- columns --------------------------------------------------------------------------------
    def columns(self, ds: dict[str, Any], uid: str, resolved: dict[tuple[str, str], str]) -> None:
        if ds["columns"]:
            self.q(
                "MATCH (a:Artifact {uid: $uid}) UNWIND $columns AS c "
                "MERGE (col:Column {artifact: $uid, name: c.name}) "
                "SET col.type = coalesce(c.type, col.type), "
                "col.description = coalesce(c.description, col.description) "
                "MERGE (a)-[:HAS_COLUMN]->(col)",
                uid=uid,
                columns=ds["columns"],
            )
        if not ds["lineage"]:
            return
        edges = []
        for entry in ds["lineage"]:
            for source in entry["inputs"]:
                ident = (source["namespace"], source["name"])
                if ident not in resolved:  # a dataset the event's inputs do not list
                    resolved[ident] = self.dataset(_bare(source), "input", None)
                edges.append({**source, "field": entry["field"], "source_uid": resolved[ident],
                              "source_field": source["field"]})  # fmt: skip
        self.q(
            "UNWIND $edges AS e "
            "MATCH (a:Artifact {uid: $uid}), (s:Artifact {uid: e.source_uid}) "
            "MERGE (o:Column {artifact: $uid, name: e.field}) MERGE (a)-[:HAS_COLUMN]->(o) "
            "MERGE (i:Column {artifact: e.source_uid, name: e.source_field}) "
            "MERGE (s)-[:HAS_COLUMN]->(i) "
            "MERGE (o)-[d:DERIVED_FROM]->(i) "
            "SET d.type = e.type, d.subtype = e.subtype, d.description = e.description, "
            "d.masking = e.masking",
            uid=uid,
            edges=edges,
        )

    # -- facets ---------------------------------------------------------------------------------
    def merge_facets(self) -> None:
        """Each touched node's facets, merged per name by event time, written once."""
        incoming: dict[tuple[str, str], dict[str, str]] = {}
        for label, uid, facets in self.facets:
            incoming.setdefault((label, uid), {}).update(facets)
        when = _iso(self.time)
        for label in ("Artifact", "Run", "Transform"):
            uids = [uid for (lab, uid), facets in incoming.items() if lab == label and facets]
            if not uids:
                continue
            rows = self.q(
                f"UNWIND $uids AS uid MATCH (n:`{label}` {{uid: uid}}) "
                "RETURN n.uid AS uid, n.facets AS facets, n.facet_times AS times",
                uids=uids,
            )
            updates = []
            for row in rows:
                facets = json.loads(row["facets"]) if row["facets"] else {}
                times = json.loads(row["times"]) if row["times"] else {}
                changed = False
                for name, text in incoming[(label, row["uid"])].items():
                    if name not in times or when >= times[name]:
                        value = json.loads(text)
                        if facets.get(name) != value or times.get(name) != when:
                            facets[name], times[name], changed = value, when, True
                if changed:
                    updates.append({
                        "uid": row["uid"],
                        "facets": json.dumps(facets, sort_keys=True),
                        "times": json.dumps(times, sort_keys=True),
                    })  # fmt: skip
            if updates:
                self.q(
                    f"UNWIND $rows AS r MATCH (n:`{label}` {{uid: r.uid}}) "
                    "SET n.facets = r.facets, n.facet_times = r.times",
                    rows=updates,
                )


def _latest(family: list[dict[str, Any]]) -> dict[str, Any]:
    """The family's latest version in the main branch, else its newest member."""
    latest = [m for m in family if m["is_latest"] and m["branch"] == 1]
    return latest[-1] if latest else family[-1]


def _native(value: Any) -> datetime:
    return value.to_native() if hasattr(value, "to_native") else value


def _bare(source: dict[str, Any]) -> dict[str, Any]:
    """A dataset known only by name (a column-lineage input the event does not list)."""
    return {
        "namespace": source["namespace"], "name": source["name"],
        "key": f"{source['namespace']}/{source['name']}", "location": source.get("location"),
        "version": None, "facets": {}, "columns": [], "lineage": [], "suffix": "",
        "rows": None, "size": None, "description": None,
    }  # fmt: skip


# -- reading ----------------------------------------------------------------------------------------
# Upstream (or downstream) columns of one column, each with its shortest distance in hops: one
# breadth-first search (`ANY SHORTEST`) per column reached, from the (artifact, name) index seek.
COLUMN_LINEAGE = {
    direction: f"""
MATCH (c:Column {{artifact: $artifact, name: $column}})
MATCH p = ANY SHORTEST (c){arrow}+(u:Column)
WHERE u <> c
WITH u, length(p) AS depth, relationships(p)[-1] AS last
MATCH (a:Artifact {{uid: u.artifact}})
RETURN a.uid AS artifact, a.key AS key, a.ol_namespace AS namespace, a.ol_name AS dataset,
       u.name AS column, u.type AS type, depth, last.type AS transformation,
       last.subtype AS subtype
ORDER BY depth, key, column
"""
    for direction, arrow in (("up", "-[:DERIVED_FROM]->"), ("down", "<-[:DERIVED_FROM]-"))
}

COLUMNS_OF = """
MATCH (c:Column {artifact: $artifact})
RETURN c.name AS name, c.type AS type, c.description AS description ORDER BY name
"""


# -- the Marquez view: jobs and datasets by OpenLineage identity --------------------------------
# Every transform and artifact has an OpenLineage identity (namespace, name), also those that did
# not come from events: a transform's is (`$default`, key); an artifact's is its location's
# (`file` and the path, `s3://bucket` and the key below it), else (`$default`, key). The same
# expressions serve the listings, the look-ups and what `ln.track()` emits, so a dataset a
# tracked run wrote is found again under the name it was emitted with.
JOB_NS = "coalesce(t.ol_namespace, $default)"
JOB_NAME = "coalesce(t.ol_name, t.key)"
_SCHEME = "split(a.storage_path, '://')"
DATASET_NS = (
    "coalesce(a.ol_namespace, CASE WHEN a.storage_path STARTS WITH '/' THEN 'file' "
    f"WHEN a.storage_path CONTAINS '://' THEN {_SCHEME}[0] + '://' + split({_SCHEME}[1], '/')[0] "
    "ELSE $default END)"
)
DATASET_NAME = (
    "coalesce(a.ol_name, CASE WHEN a.storage_path STARTS WITH '/' THEN a.storage_path "
    f"WHEN a.storage_path CONTAINS '://' THEN substring({_SCHEME}[1], "
    f"size(split({_SCHEME}[1], '/')[0]) + 1) ELSE a.key END)"
)
_LIVE = "n.branch = 1"

# One transform or artifact as the API shows it (`n` bound; `t` or `a` aliases it).
_TRANSFORM_FIELDS = f"""{{
  uid: t.uid, key: t.key, namespace: {JOB_NS}, name: {JOB_NAME}, description: t.description,
  facets: t.facets, created_at: toString(t.created_at), updated_at: toString(t.updated_at)
}}"""
_DATASET_FIELDS = f"""{{
  uid: a.uid, key: a.key, namespace: {DATASET_NS}, name: {DATASET_NAME},
  description: a.description, facets: a.facets, version: a.version, path: a.storage_path,
  created_at: toString(a.created_at), updated_at: toString(a.updated_at),
  made_by: [(a)-[:GENERATED_BY]->(r:Run) | r.uid][0],
  columns: COLLECT {{ MATCH (a)-[:HAS_COLUMN]->(c:Column)
                      RETURN {{name: c.name, type: c.type, description: c.description}}
                      ORDER BY c.name }}
}}"""
# A run with its job version and the dataset versions it read and wrote.
RUN_FIELDS = f"""{{
  uid: r.uid, run_id: r.openlineage_run_id, status: r.status, params: r.params,
  facets: r.facets, started_at: toString(r.started_at), finished_at: toString(r.finished_at),
  created_at: toString(r.created_at), updated_at: toString(r.updated_at),
  job: [(r)-[:EXECUTES]->(t:Transform) | {{uid: t.uid, namespace: {JOB_NS}, name: {JOB_NAME}}}][0],
  inputs: [(r)-[:USED]->(a:Artifact) | {{uid: a.uid, namespace: {DATASET_NS}, name: {DATASET_NAME}}}],
  outputs: [(r)<-[:GENERATED_BY]-(a:Artifact) |
            {{uid: a.uid, namespace: {DATASET_NS}, name: {DATASET_NAME}}}]
}}"""

NAMESPACES = f"""
CALL () {{
  MATCH (t:Transform) WHERE t.branch = 1
  RETURN {JOB_NS} AS ns, t.created_at AS created, t.updated_at AS updated
  UNION ALL
  MATCH (a:Artifact) WHERE a.branch = 1
  RETURN {DATASET_NS} AS ns, a.created_at AS created, a.updated_at AS updated
}}
RETURN ns AS name, toString(min(created)) AS created_at, toString(max(updated)) AS updated_at
ORDER BY name
"""

JOBS = f"""
MATCH (t:Transform) WHERE t.is_latest AND t.branch = 1 AND {JOB_NS} = $ns
  AND ($name IS NULL OR {JOB_NAME} = $name)
WITH t ORDER BY {JOB_NAME}
WITH collect(t) AS found
UNWIND found[$offset..$offset + $limit] AS t
RETURN size(found) AS total, {_TRANSFORM_FIELDS} AS job,
  COLLECT {{ MATCH (f:Transform) WHERE f.uid STARTS WITH substring(t.uid, 0, $stem)
             MATCH (f)<-[:EXECUTES]-(r:Run) WHERE r.branch = 1
             RETURN {RUN_FIELDS} ORDER BY r.started_at DESC LIMIT 1 }} AS latest_run,
  COLLECT {{ MATCH (t)<-[:EXECUTES]-(:Run)-[:USED]->(a:Artifact)
             RETURN DISTINCT {{namespace: {DATASET_NS}, name: {DATASET_NAME}}} }} AS inputs,
  COLLECT {{ MATCH (t)<-[:EXECUTES]-(:Run)<-[:GENERATED_BY]-(a:Artifact)
             RETURN DISTINCT {{namespace: {DATASET_NS}, name: {DATASET_NAME}}} }} AS outputs
"""

JOB_RUNS = f"""
MATCH (t:Transform) WHERE t.is_latest AND t.branch = 1 AND {JOB_NS} = $ns AND {JOB_NAME} = $name
MATCH (f:Transform) WHERE f.uid STARTS WITH substring(t.uid, 0, $stem)
MATCH (f)<-[:EXECUTES]-(r:Run) WHERE r.branch = 1
WITH r ORDER BY r.started_at DESC, r.uid
WITH collect(r) AS found
UNWIND found[$offset..$offset + $limit] AS r
RETURN size(found) AS total, {RUN_FIELDS} AS run
"""

RUN_BY_ID = f"MATCH (r:Run {{openlineage_run_id: $id}}) RETURN {RUN_FIELDS} AS run"
RUN_BY_UID = f"MATCH (r:Run {{uid: $uid}}) RETURN {RUN_FIELDS} AS run"

DATASETS = f"""
MATCH (a:Artifact) WHERE a.is_latest AND a.branch = 1 AND {DATASET_NS} = $ns
  AND ($name IS NULL OR {DATASET_NAME} = $name)
WITH a ORDER BY {DATASET_NAME}
WITH collect(a) AS found
UNWIND found[$offset..$offset + $limit] AS a
RETURN size(found) AS total, {_DATASET_FIELDS} AS dataset,
  [(a)-[:GENERATED_BY]->(r:Run) | toString(r.finished_at)][0] AS modified_at
"""

DATASET_VERSIONS = f"""
MATCH (l:Artifact) WHERE l.is_latest AND l.branch = 1
  AND {DATASET_NS.replace("a.", "l.")} = $ns AND {DATASET_NAME.replace("a.", "l.")} = $name
MATCH (a:Artifact) WHERE a.uid STARTS WITH substring(l.uid, 0, $stem) AND a.branch <> -1
  AND ($version IS NULL OR a.uid = $version OR a.version = $version)
WITH a ORDER BY a.uid DESC
WITH collect(a) AS found
UNWIND found[$offset..$offset + $limit] AS a
RETURN size(found) AS total, {_DATASET_FIELDS} AS dataset,
  [(a)-[:GENERATED_BY]->(r:Run) | {RUN_FIELDS}][0] AS run
"""

# The latest version of a job's or a dataset's family, by identity: the node a lineage graph
# starts from.
JOB_NODE = (
    f"MATCH (t:Transform) WHERE t.is_latest AND t.branch = 1 AND {JOB_NS} = $ns "
    f"AND {JOB_NAME} = $name RETURN t.uid AS uid LIMIT 1"
)
DATASET_NODE = (
    f"MATCH (a:Artifact) WHERE a.is_latest AND a.branch = 1 AND {DATASET_NS} = $ns "
    f"AND {DATASET_NAME} = $name RETURN a.uid AS uid LIMIT 1"
)

# Identities of a set of records (a lineage graph's nodes), by uid.
IDENTITIES = f"""
UNWIND $uids AS uid
OPTIONAL MATCH (t:Transform {{uid: uid}})
OPTIONAL MATCH (a:Artifact {{uid: uid}})
RETURN uid,
  CASE WHEN t IS NOT NULL THEN {_TRANSFORM_FIELDS} END AS job,
  CASE WHEN a IS NOT NULL THEN {_DATASET_FIELDS} END AS dataset
"""

# Column lineage around columns of one artifact (or one of its columns), both directions as
# asked: every column reached with the columns it was derived from.
COLUMN_GRAPH = f"""
MATCH (c:Column {{artifact: $artifact}}) WHERE $column IS NULL OR c.name = $column
CALL (c) {{
  MATCH p = ANY SHORTEST (c)-[:DERIVED_FROM]->{{0,}}(u:Column) WHERE length(p) <= $depth
  RETURN u
  UNION
  MATCH p = ANY SHORTEST (c)<-[:DERIVED_FROM]-{{1,}}(u:Column)
  WHERE $down AND length(p) <= $depth
  RETURN u
}}
WITH DISTINCT u
MATCH (a:Artifact {{uid: u.artifact}})
RETURN {{namespace: {DATASET_NS}, name: {DATASET_NAME}, uid: a.uid}} AS dataset,
  u.name AS field, u.type AS type,
  [(u)-[d:DERIVED_FROM]->(i:Column) | {{artifact: i.artifact, field: i.name, type: d.type,
    subtype: d.subtype, description: d.description}}] AS inputs
"""

# A tracked run as `ln.track()` / `ln.finish()` emit it: the run, its job version's identity,
# source and kind, and the identities of what it read and wrote.
EMIT_RUN = f"""
MATCH (r:Run {{uid: $uid}})
RETURN {RUN_FIELDS} AS run,
  [(r)-[:EXECUTES]->(t:Transform) | t.source_code][0] AS source_code,
  [(r)-[:EXECUTES]->(t:Transform) | t.kind][0] AS kind
"""
