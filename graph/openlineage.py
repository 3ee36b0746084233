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
from graph.query import _STAMP, _stamped
from graph.records import _take_ids, now
from graph.transfer import _texted

# Run statuses an event sets (lamindb's names); a terminal one is kept over a later START.
STATUS_OF = {"COMPLETE": "completed", "FAIL": "errored", "ABORT": "aborted"}
_TERMINAL_RANK = {"completed": 0, "errored": 1, "aborted": 2}
_LOCKED_LABELS = ("Artifact", "Run", "Transform")  # sorted: every ingest locks in this order
# Properties an event sets only where the node has none yet (`_Batch.fill`): the first value wins.
_FILLED = {"Transform": ("description",), "Artifact": ("ol_namespace", "ol_name", "description")}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def write_events(conn: Connection, events: Sequence[dict[str, Any]], user: str) -> list[dict]:
    """Write normalised events in one transaction; returns, per event, the uids it touched:
    `{"transform", "run", "inputs", "outputs", "datasets"}`. `user` is the uid of the User the
    new records are `CREATED_BY`.

    Set-based: what the events name is read in a few `UNWIND` queries, the events are applied in
    order to that state in Python (which job version, which artifact version, which status), and
    the result is written in a fixed number of `UNWIND` statements, whatever the number of
    events."""

    def work(tx: neo4j.ManagedTransaction) -> list[dict]:
        tx.run(
            "UNWIND $labels AS label MERGE (c:LineageCounter {label: label}) "
            "ON CREATE SET c.value = 0 SET c._lock = true REMOVE c._lock",
            labels=_LOCKED_LABELS,
        ).consume()
        batch = _Batch(tx, user, events)
        results = [batch.apply(event, i) for i, event in enumerate(events)]
        batch.flush()
        return results

    return conn.write(work)


# Every statement of the ingest is planned once per query text and then kept (`replan=skip`):
# while a database fills, its counts change fast, and Neo4j plans a statement again whenever they
# have drifted far enough from those it was planned with, at 0.1 to 0.9 s for each of the larger
# reads on the loaded 2-core machine, several times a statement in the first 30,000 events. The
# index hints (`_seek`) keep a plan made on an empty database what it should be at any size.
_PLANNED = "CYPHER replan=skip "


def _rows(tx: neo4j.ManagedTransaction, query: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in tx.run(_PLANNED + query, params)]


def _identities(events: Sequence[dict[str, Any]]) -> tuple[set, set, dict, set]:
    """Every runId and job (namespace, name) the events name, their datasets' (namespace, name)
    with each one's location (or None), and the source hashes of their jobs."""
    runs: set[str] = set()
    jobs: set[tuple[str, str]] = set()
    datasets: dict[tuple[str, str], str | None] = {}
    hashes: set[str] = set()

    def dataset(ds: dict[str, Any]) -> None:
        datasets[(ds["namespace"], ds["name"])] = ds.get("location")
        for entry in ds.get("lineage", ()):
            for source in entry["inputs"]:
                dataset(source)

    for event in events:
        parent = event["run"]["parent"] if event["run"] else None
        for job in (event["job"], parent["job"] if parent else None):
            if job:
                jobs.add((job["namespace"], job["name"]))
                if job["source_hash"] is not None:
                    hashes.add(job["source_hash"])
        if event["run"]:
            runs.add(event["run"]["id"])
            if event["run"]["parent"]:
                runs.add(event["run"]["parent"]["id"])
        for ds in (
            *event["inputs"],
            *event["outputs"],
            *([event["dataset"]] if event["dataset"] else []),
        ):
            dataset(ds)
    return runs, jobs, datasets, hashes


def _tagged(events: Sequence[dict[str, Any]]) -> tuple[dict, dict]:
    """The dataset version facets the events carry, by the identity and by the location of the
    dataset that carries them."""
    idents: dict[tuple[str, str], set[str]] = {}
    paths: dict[str, set[str]] = {}
    for event in events:
        for ds in (*event["inputs"], *event["outputs"], event["dataset"]):
            if ds and ds["version"] is not None:
                idents.setdefault((ds["namespace"], ds["name"]), set()).add(ds["version"])
                if ds["location"]:
                    paths.setdefault(ds["location"], set()).add(ds["version"])
    return idents, paths


# -- reading what the events name -------------------------------------------------------------------
# Every MATCH of the ingest names the index it starts from, so that a plan made on an empty
# database is the one a full one needs (without hints, the plan one read got there took 0.5 to
# 1.3 s a batch until Neo4j planned it again at 6,000 events; 10 to 25 ms after): plans are kept
# (`_PLANNED`).
def _seek(var: str, label: str, prop: str = "uid") -> str:
    return f"USING INDEX SEEK {var}:`{label}`({prop})"


RUNS_BY_ID = f"""
UNWIND $ids AS id MATCH (r:Run {{openlineage_run_id: id}}) {_seek("r", "Run", "openlineage_run_id")}
RETURN id, r.uid AS uid, r.status AS status,
  [_t IN [r.started_at, r.finished_at] | {_STAMP}] AS times,
  [(r)-[:EXECUTES]->(t:Transform) | t.uid][0] AS transform,
  EXISTS {{ (r)-[:INITIATED_BY]->() }} AS has_parent
"""
# The family (uid stem) of each job and dataset identity, from one live member that has it (the
# first the `ol_name` index gives: an identity belongs to one family), and of each transform the
# runs execute.
STEMS = f"""
UNWIND $jobs AS i
CALL (i) {{
  MATCH (t:Transform {{ol_name: i[1]}}) {_seek("t", "Transform", "ol_name")}
  WHERE t.ol_namespace = i[0] AND t.branch <> -1 RETURN t.uid AS uid LIMIT 1
}}
RETURN 'Transform' AS label, substring(uid, 0, $tn) AS stem, i AS ident
UNION
UNWIND $uids AS uid RETURN 'Transform' AS label, substring(uid, 0, $tn) AS stem, null AS ident
UNION
UNWIND $datasets AS i
CALL (i) {{
  MATCH (a:Artifact {{ol_name: i[1]}}) {_seek("a", "Artifact", "ol_name")}
  WHERE a.ol_namespace = i[0] AND a.branch <> -1 RETURN a.uid AS uid LIMIT 1
}}
RETURN 'Artifact' AS label, substring(uid, 0, $an) AS stem, i AS ident
"""
# The families of the artifacts at the locations of datasets no artifact has the identity of
# yet (the first event that names a dataset lineage already stores): every one at the path.
PATH_STEMS = f"""
UNWIND $paths AS p MATCH (a:Artifact {{storage_path: p}}) {_seek("a", "Artifact", "storage_path")}
WHERE a.branch <> -1
RETURN DISTINCT p AS path, substring(a.uid, 0, $an) AS stem
"""


def _members_query(label: str, picks: str, extra: str) -> str:
    """Of each family (`$stems`), only the members the events can choose, each found by an index
    seek: the newest (the top counter) and the latest in the main branch of each family, the
    two newest live members with each identity (`$idents`: stem, namespace, name), each the
    first in the uid index read backwards that qualifies, and what `picks` adds (by uid, source
    hash, location, run, version tag). A family with a long history is then a few rows read in
    a few seeks, not all of it."""
    seek = _seek("t", label)
    return f"""
CALL () {{
  UNWIND $stems AS stem
  CALL (stem) {{
    MATCH (t:`{label}`) {seek} WHERE t.uid STARTS WITH stem
    RETURN t ORDER BY t.uid DESC LIMIT 1
    UNION
    MATCH (t:`{label}`) {seek} WHERE t.uid STARTS WITH stem AND t.is_latest AND t.branch = 1
    RETURN t ORDER BY t.uid DESC LIMIT 1
  }}
  RETURN t
  UNION
  UNWIND $idents AS i
  CALL (i) {{
    MATCH (t:`{label}`) {seek} WHERE t.uid STARTS WITH i[0] AND t.ol_name = i[2]
      AND t.ol_namespace = i[1] AND t.branch <> -1
    RETURN t ORDER BY t.uid DESC LIMIT 2
  }}
  RETURN t
  UNION
  UNWIND $uids AS uid MATCH (t:`{label}` {{uid: uid}}) {seek} RETURN t
  {picks}
}}
WITH t WHERE substring(t.uid, 0, $n) IN $stems
RETURN t.uid AS uid, t.key AS key, t.version AS version, t.is_latest AS is_latest,
  t.branch AS branch, t.ol_namespace AS ns, t.ol_name AS name, {extra}
ORDER BY t.uid
"""


MEMBERS = {
    "Transform": _members_query(
        "Transform",
        f"UNION UNWIND $hashes AS h MATCH (t:Transform {{hash: h}}) {_seek('t', 'Transform', 'hash')} "
        "RETURN t",
        "t.hash AS hash",
    ),
    # A version tag is not indexed: it is looked for in the family of the dataset whose event
    # carries it (`$tagged`: stem and tags), by scanning the family (one a run writes a tagged
    # version of every time grows with its history), unless it is the uid of a member (what
    # lineage's own events send: a seek). Without tags, every lookup is a seek.
    "Artifact": _members_query(
        "Artifact",
        f"UNION UNWIND $paths AS p MATCH (t:Artifact {{storage_path: p}}) "
        f"{_seek('t', 'Artifact', 'storage_path')} RETURN t "
        "UNION UNWIND $runs AS id MATCH (r:Run {openlineage_run_id: id})<-[:GENERATED_BY]-"
        f"(t:Artifact) {_seek('r', 'Run', 'openlineage_run_id')} RETURN t "
        "UNION UNWIND $tagged AS pick "
        "WITH pick[0] AS stem, [v IN pick[1] WHERE NOT EXISTS { MATCH (a:Artifact {uid: v}) "
        "WHERE a.uid STARTS WITH pick[0] }] AS tags WHERE size(tags) > 0 "
        f"MATCH (t:Artifact) {_seek('t', 'Artifact')} "
        "WHERE t.uid STARTS WITH stem AND t.version IN tags RETURN t",
        "t.storage_path AS path, [_t IN [t.created_at] | "
        f"{_STAMP}][0] AS created_at, [(t)-[:GENERATED_BY]->(r:Run) | r.uid][0] AS made_by",
    ),
}
# The facets of existing nodes, to merge with the events' (`_Batch.merge_facets`).
FACETS_OF = " UNION ALL ".join(
    f"UNWIND ${label} AS uid MATCH (n:{label} {{uid: uid}}) {_seek('n', label)} "
    f"RETURN '{label}' AS label, uid, n.facets AS facets, n.facet_times AS times"
    for label in ("Transform", "Run", "Artifact")
)


class _Batch:
    """The state the events are applied to, read once, and what they change, written once."""

    def __init__(
        self, tx: neo4j.ManagedTransaction, user: str, events: Sequence[dict[str, Any]]
    ) -> None:
        self.tx, self.user, self.stamp = tx, user, now()
        run_ids, jobs, datasets, hashes = _identities(events)
        tagged_idents, tagged_paths = _tagged(events)
        versions = sorted(set().union(*tagged_idents.values()))
        # Runs by runId.
        self.runs: dict[str, dict[str, Any]] = {}
        for r in _rows(tx, RUNS_BY_ID, ids=sorted(run_ids)):
            started, finished = (_stamped(t) for t in r.pop("times"))
            self.runs[r["id"]] = {**r, "started_at": started, "finished_at": finished}
        # Members of every family a job or dataset belongs to, by label and stem (shared dicts:
        # a member is found by identity, by path and in its family).
        self.members: dict[str, dict[str, dict[str, Any]]] = {"Transform": {}, "Artifact": {}}
        self.families: dict[str, dict[str, list[str]]] = {"Transform": {}, "Artifact": {}}
        self.by_identity: dict[str, dict[tuple[str, str], list[str]]] = {
            "Transform": {}, "Artifact": {}
        }  # fmt: skip
        self.by_path: dict[str, list[str]] = {}
        transform_uids = sorted({r["transform"] for r in self.runs.values() if r["transform"]})
        stems: dict[str, set[str]] = {"Transform": set(), "Artifact": set()}
        idents: dict[str, list[list[str]]] = {"Transform": [], "Artifact": []}
        tagged: dict[str, set[str]] = {}  # stem -> the version tags events name in it
        found: set[tuple[str, str]] = set()
        for row in _rows(
            tx, STEMS, jobs=sorted(jobs), uids=transform_uids, datasets=sorted(datasets),
            tn=uid_length("Transform"), an=uid_length("Artifact"),
        ):  # fmt: skip
            stems[row["label"]].add(row["stem"])
            if row["ident"] is not None:
                ident = (row["ident"][0], row["ident"][1])
                idents[row["label"]].append([row["stem"], *ident])
                if row["label"] == "Artifact":
                    found.add(ident)
                    tagged.setdefault(row["stem"], set()).update(tagged_idents.get(ident, ()))
        # A dataset is looked for at its location only while no artifact has its identity.
        paths = sorted({p for i, p in datasets.items() if p is not None and i not in found})
        if paths:
            for row in _rows(tx, PATH_STEMS, paths=paths, an=uid_length("Artifact")):
                stems["Artifact"].add(row["stem"])
                tagged.setdefault(row["stem"], set()).update(tagged_paths.get(row["path"], ()))
        params: dict[str, dict[str, Any]] = {
            "Transform": {"uids": transform_uids, "hashes": sorted(hashes)},
            "Artifact": {"uids": versions, "paths": paths, "runs": sorted(run_ids),
                         "tagged": [[t, sorted(v)] for t, v in sorted(tagged.items()) if v]},
        }  # fmt: skip
        for label in ("Transform", "Artifact"):
            if stems[label]:
                for m in _rows(
                    tx, MEMBERS[label], stems=sorted(stems[label]), idents=idents[label],
                    n=uid_length(label), **params[label],
                ):  # fmt: skip
                    self._add(label, m)
        # What the events change: nodes made here (`new`: uid -> the row written; its props
        # take the updates), properties of existing nodes, edges, columns and facets.
        self.created: dict[str, list[dict[str, Any]]] = {"Transform": [], "Artifact": [], "Run": []}
        self.new: dict[str, dict[str, Any]] = {}
        self.updates: dict[tuple[str, str], dict[str, Any]] = {}  # (label, uid) -> props
        self.fills: dict[tuple[str, str], dict[str, Any]] = {}  # set only where still null
        self.edges: dict[str, list[dict[str, str]]] = {
            "EXECUTES": [], "INITIATED_BY": [], "GENERATED_BY": []
        }  # fmt: skip
        self.used: dict[tuple[str, str], None] = {}  # (run, artifact), in order, once each
        self.columns: list[dict[str, Any]] = []
        self.derived: list[dict[str, Any]] = []
        self.facets: list[tuple[str, str, str, int, dict[str, str]]] = []  # time as ISO text
        self.seq = 0

    def _add(self, label: str, member: dict[str, Any]) -> None:
        member = dict(member)
        self.members[label][member["uid"]] = member
        stem = member["uid"][: uid_length(label)]
        self.families[label].setdefault(stem, []).append(member["uid"])
        if member["ns"] is not None and member["branch"] != -1:
            self.by_identity[label].setdefault((member["ns"], member["name"]), []).append(
                member["uid"]
            )
        if label == "Artifact" and member.get("path") is not None and member["branch"] != -1:
            self.by_path.setdefault(member["path"], []).append(member["uid"])

    # -- one event ---------------------------------------------------------------------------------
    def apply(self, event: dict[str, Any], index: int) -> dict[str, Any]:
        self.time: datetime = event["time"]
        self.when = _iso(self.time)  # once per event: what facets are ordered by
        self.index = index
        out: dict[str, Any] = {"transform": None, "run": None, "inputs": [], "outputs": [],
                               "datasets": []}  # fmt: skip
        run_uid = None
        if event["run"] is not None:
            run_uid, out["transform"] = self.run(event["run"], event["job"], event["type"])
            out["run"] = run_uid
        elif event["job"] is not None:
            out["transform"] = self.job(event["job"])
        resolved: dict[tuple[str, str], str] = {}
        for ds in event["inputs"]:
            uid = self.dataset(ds, "input", run_uid)
            resolved[(ds["namespace"], ds["name"])] = uid
            out["inputs"].append(uid)
        for ds in event["outputs"]:
            out["outputs"].append(self.dataset(ds, "output", run_uid))
        if run_uid is not None:
            for uid in out["outputs"]:
                member = self.members["Artifact"][uid]
                if member["made_by"] is None:
                    member["made_by"] = run_uid
                    new = self.new.get(uid)
                    if new is not None:  # made here: created with the edge
                        new["run"] = run_uid
                    else:
                        self.edges["GENERATED_BY"].append({"a": uid, "b": run_uid})
            for uid in out["inputs"]:
                if self.members["Artifact"][uid]["made_by"] != run_uid:
                    self.used[(run_uid, uid)] = None
        if event["dataset"] is not None:
            out["datasets"].append(self.dataset(event["dataset"], "dataset", None))
        pairs = [*zip(event["inputs"], out["inputs"]), *zip(event["outputs"], out["outputs"])]
        if event["dataset"] is not None:
            pairs.append((event["dataset"], out["datasets"][0]))
        for ds, uid in pairs:
            self.columns_of(ds, uid, resolved)
        return out

    def facet(self, label: str, uid: str, facets: dict[str, str]) -> None:
        if facets:
            self.seq += 1
            self.facets.append((label, uid, self.when, self.seq, facets))

    def update(self, label: str, uid: str, **props: Any) -> None:
        new = self.new.get(uid)
        if new is not None:  # made in this batch: created with the values
            new["props"].update(props)
            return
        self.updates.setdefault((label, uid), {}).update(props)

    def fill(self, label: str, uid: str, **props: Any) -> None:
        """Properties set on the node only where it has none (the first value wins)."""
        new = self.new.get(uid)
        into = new["props"] if new is not None else self.fills.setdefault((label, uid), {})
        for name, value in props.items():
            if value is not None and into.get(name) is None:
                into[name] = value

    # -- versions ------------------------------------------------------------------------------------
    def _family_of(self, label: str, uids: list[str]) -> list[dict[str, Any]]:
        members = self.members[label]
        return [members[u] for u in sorted(uids) if members[u]["branch"] != -1]

    def _new_version(self, label: str, props: dict[str, Any], family: list[dict[str, Any]]) -> str:
        """A new node: a new family, or the next version of `family`'s (the whole stem's)."""
        stem_len = uid_length(label)
        if not family:
            uid = base62(stem_len) + FIRST_VERSION
            revises = None
        else:
            stem = family[0]["uid"][:stem_len]
            everyone = [self.members[label][u] for u in self.families[label][stem]]
            top = max(counter_value(m["uid"][stem_len:]) for m in everyone)
            uid = stem + counter_string(top + 1)
            latest = _latest(sorted(everyone, key=lambda m: m["uid"]))
            revises = latest["uid"]
            for m in everyone:
                if m["is_latest"] and m["branch"] == 1:
                    m["is_latest"] = False
                    self.update(label, m["uid"], is_latest=False)
        node = {**props, "uid": uid, "is_latest": True, "branch": 1,
                "created_at": self.stamp, "updated_at": self.stamp}  # fmt: skip
        row = {"props": node, "revises": revises, "run": None, "columns": {}}
        self.created[label].append(row)
        self.new[uid] = row
        member = {"uid": uid, "key": props["key"], "version": props.get("version"),
                  "is_latest": True, "branch": 1, "ns": props["ol_namespace"],
                  "name": props["ol_name"], "hash": props.get("hash"),
                  "path": props.get("storage_path"), "created_at": self.stamp,
                  "made_by": None}  # fmt: skip
        self._add(label, member)
        return uid

    # -- jobs ------------------------------------------------------------------------------------------
    def job(self, job: dict[str, Any]) -> str:
        ident = (job["namespace"], job["name"])
        family = self._family_of("Transform", self.by_identity["Transform"].get(ident, []))
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
                    latest["hash"] = source
                    self.update("Transform", uid, hash=source, source_code=job["source"])
        if uid is None:
            uid = self._new_version(
                "Transform",
                {"key": job["key"], "kind": "pipeline", "hash": source,
                 "source_code": job["source"], "description": job["description"],
                 "ol_namespace": job["namespace"], "ol_name": job["name"]},
                family,
            )  # fmt: skip
        self.fill("Transform", uid, description=job["description"])
        self.facet("Transform", uid, job["facets"])
        return uid

    # -- runs ------------------------------------------------------------------------------------------
    def run(
        self, run: dict[str, Any], job: dict[str, Any], event_type: str | None
    ) -> tuple[str, str]:
        found = self.runs.get(run["id"])
        if found is not None and found["transform"] is not None:
            transform = found["transform"]
            # A run keeps its transform (a tracked run's events name its own job): the job's
            # facets still describe it, and the first event that knows the job's source says
            # what the run's version ran (when an earlier one did not).
            self.facet("Transform", transform, job["facets"])
            member = self.members["Transform"].get(transform)
            if (
                job["source_hash"] is not None
                and member is not None
                and member["hash"] is None
                and (member["ns"], member["name"]) == (job["namespace"], job["name"])
            ):
                member["hash"] = job["source_hash"]
                self.update("Transform", transform, hash=job["source_hash"],
                            source_code=job["source"])  # fmt: skip
        else:
            transform = self.job(job)
        if found is None:
            found = self.create_run(run["id"], transform)
        elif found["transform"] is None:
            found["transform"] = transform
            self.edges["EXECUTES"].append({"a": found["uid"], "b": transform})
        self.update_status(found, event_type)
        parent = run["parent"]
        if parent is not None and parent["id"] != run["id"] and not found["has_parent"]:
            parent_run = self.runs.get(parent["id"])
            if parent_run is None:  # a placeholder, with its job, until its own events arrive
                job_uid = self.job(parent["job"]) if parent["job"] is not None else None
                parent_run = self.create_run(parent["id"], job_uid)
            found["has_parent"] = True
            self.edges["INITIATED_BY"].append({"a": found["uid"], "b": parent_run["uid"]})
        self.facet("Run", found["uid"], run["facets"])
        return found["uid"], transform

    def create_run(self, run_id: str, transform: str | None) -> dict[str, Any]:
        uid = base62(uid_length("Run"))
        node = {"uid": uid, "openlineage_run_id": run_id, "branch": 1,
                "created_at": self.stamp, "updated_at": self.stamp}  # fmt: skip
        row = {"props": node, "transform": transform}
        self.created["Run"].append(row)
        self.new[uid] = row
        run = {"id": run_id, "uid": uid, "status": None, "started_at": None,
               "finished_at": None, "transform": transform, "has_parent": False}  # fmt: skip
        self.runs[run_id] = run
        return run

    def update_status(self, run: dict[str, Any], event_type: str | None) -> None:
        t = self.time
        props: dict[str, Any] = {}
        if run["started_at"] is None or t < run["started_at"]:
            props["started_at"] = t
        status = STATUS_OF.get(event_type or "")
        if status is not None:
            finished = run["finished_at"]
            current = _TERMINAL_RANK.get(run["status"] or "")
            if (
                current is None
                or finished is None
                or (t, _TERMINAL_RANK[status]) > (finished, current)
            ):
                props.update(status=status, finished_at=t)
        elif run["status"] is None:
            props["status"] = "started"
        if props:
            run.update(props)
            self.update("Run", run["uid"], **props)

    # -- datasets ------------------------------------------------------------------------------------
    def family(self, ds: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self._family_of("Artifact", self.by_identity["Artifact"].get(
            (ds["namespace"], ds["name"]), []))  # fmt: skip
        if not rows and ds["location"] is not None:
            rows = self._family_of("Artifact", self.by_path.get(ds["location"], []))
            if rows:  # one family: the one of the newest artifact at that path
                newest = max(rows, key=lambda m: (m["created_at"], m["uid"]))
                stem = newest["uid"][: uid_length("Artifact")]
                rows = [m for m in rows if m["uid"].startswith(stem)]
        return rows

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
            uid = self._new_version(
                "Artifact",
                {"key": family[0]["key"] if family else ds["key"],
                 "description": ds["description"], "version": version, "suffix": ds["suffix"],
                 "size": ds["size"], "n_observations": ds["rows"],
                 "storage_path": ds["location"], "ol_namespace": ds["namespace"],
                 "ol_name": ds["name"]},
                family,
            )  # fmt: skip
        else:
            uid = chosen["uid"]
            if chosen["ns"] is None:  # a path-matched artifact becomes the dataset
                chosen["ns"], chosen["name"] = ds["namespace"], ds["name"]
                self.by_identity["Artifact"].setdefault((ds["namespace"], ds["name"]), []).append(
                    uid
                )
                self.fill("Artifact", uid, ol_namespace=ds["namespace"], ol_name=ds["name"])
            if ds["rows"] is not None:
                self.update("Artifact", uid, n_observations=ds["rows"])
            self.fill("Artifact", uid, description=ds["description"])
        self.facet("Artifact", uid, ds["facets"])
        return uid

    # -- columns ---------------------------------------------------------------------------------------
    def columns_of(
        self, ds: dict[str, Any], uid: str, resolved: dict[tuple[str, str], str]
    ) -> None:
        new = self.new.get(uid)
        for column in ds["columns"]:
            if new is None:
                self.columns.append({"artifact": uid, **column})
                continue
            # A column of a node made here is created with it, with the values the statement
            # for existing columns would end with (a later event's non-null value wins).
            known = new["columns"].setdefault(column["name"], {"name": column["name"]})
            for name in ("type", "description"):
                if column[name] is not None or name not in known:
                    known[name] = column[name]
        for entry in ds["lineage"]:
            for source in entry["inputs"]:
                ident = (source["namespace"], source["name"])
                if ident not in resolved:  # a dataset the event's inputs do not list
                    resolved[ident] = self.dataset(_bare(source), "input", None)
                self.derived.append({
                    "artifact": uid, "field": entry["field"], "source_uid": resolved[ident],
                    "source_field": source["field"], "type": source["type"],
                    "subtype": source["subtype"], "description": source["description"],
                    "masking": source["masking"],
                })  # fmt: skip

    # -- writing -----------------------------------------------------------------------------------------
    def run_q(self, query: str, **params: Any) -> None:
        self.tx.run(_PLANNED + query, params).consume()

    def flush(self) -> None:
        """Write what the events changed: nodes made here (per label one statement with their
        creator, `REVISES`, `EXECUTES`, `GENERATED_BY` edges and columns), then the changes to
        existing nodes, then the other edges and columns. Datetimes travel as ISO text
        (`_times_apart`, `graph.transfer._texted`)."""
        facet_changes = self.merge_facets()
        for label, rows in self.created.items():  # ids: one counter step per label
            if rows:
                for row, record_id in zip(rows, _take_ids(self.tx, label, len(rows))):
                    row["props"] = {k: v for k, v in row["props"].items() if v is not None}
                    row["props"]["id"] = record_id
        for label, tail in _CREATES.items():
            rows = self.created[label]
            if not rows:
                continue
            apart, stamps = _times_apart([r["props"] for r in rows])
            self.run_q(
                f"OPTIONAL MATCH (u:User {{uid: $user}}) {_seek('u', 'User')} UNWIND $rows AS row "
                f"CREATE (n:`{label}`) SET n = row.props{stamps} "
                "FOREACH (_ IN CASE WHEN u IS NULL THEN [] ELSE [1] END | "
                f"CREATE (n)-[:CREATED_BY]->(u)) {tail}",
                rows=[{**r, "props": p, "times": t, "columns": list(r.get("columns", {}).values())}
                      for r, (p, t) in zip(rows, apart)],
                user=self.user,
            )  # fmt: skip
        for label in ("Transform", "Run", "Artifact"):
            keys = [k for k in {**self.updates, **self.fills, **facet_changes} if k[0] == label]
            if not keys:
                continue
            changes = []
            for key in keys:
                change = dict(self.updates.get(key, {}))
                if key in self.updates:
                    change["updated_at"] = self.stamp
                changes.append({**change, **facet_changes.get(key, {})})
            changes, stamps = _texted(label, changes)
            fills = "".join(
                f", n.`{name}` = coalesce(n.`{name}`, row.fill.`{name}`)"
                for name in _FILLED.get(label, ())
            )
            self.run_q(
                f"UNWIND $rows AS row MATCH (n:`{label}` {{uid: row.uid}}) {_seek('n', label)} "
                f"SET n += row.props{fills}{stamps}",
                rows=[{"uid": key[1], "props": change, "fill": self.fills.get(key, {})}
                      for key, change in zip(keys, changes)],
            )  # fmt: skip
        edges = {
            "EXECUTES": ("Run", "Transform", "CREATE"),
            "INITIATED_BY": ("Run", "Run", "CREATE"),
            "GENERATED_BY": ("Artifact", "Run", "CREATE"),
        }
        for edge, (a, b, verb) in edges.items():
            if self.edges[edge]:
                self.run_q(
                    f"UNWIND $rows AS row MATCH (a:`{a}` {{uid: row.a}}), (b:`{b}` {{uid: row.b}}) "
                    f"{_seek('a', a)} {_seek('b', b)} "
                    f"{verb} (a)-[:`{edge}`]->(b)",
                    rows=self.edges[edge],
                )
        # `USED`, never to the run's own output; an edge from or to a node made here is new.
        used: dict[str, list[dict[str, str]]] = {"CREATE": [], "MERGE": []}
        for run, uid in self.used:
            if self.members["Artifact"][uid]["made_by"] != run:
                verb = "CREATE" if run in self.new or uid in self.new else "MERGE"
                used[verb].append({"a": run, "b": uid})
        for verb, rows in used.items():
            if rows:
                self.run_q(
                    "UNWIND $rows AS row MATCH (r:Run {uid: row.a}), (a:Artifact {uid: row.b}) "
                    f"{_seek('r', 'Run')} {_seek('a', 'Artifact')} {verb} (r)-[:USED]->(a)",
                    rows=rows,
                )
        if self.columns:
            self.run_q(
                f"UNWIND $rows AS c MATCH (a:Artifact {{uid: c.artifact}}) {_seek('a', 'Artifact')} "
                "MERGE (col:Column {artifact: c.artifact, name: c.name}) "
                "SET col.type = coalesce(c.type, col.type), "
                "col.description = coalesce(c.description, col.description) "
                "MERGE (a)-[:HAS_COLUMN]->(col)",
                rows=self.columns,
            )
        if self.derived:
            self.run_q(
                "UNWIND $rows AS e "
                "MATCH (a:Artifact {uid: e.artifact}), (s:Artifact {uid: e.source_uid}) "
                f"{_seek('a', 'Artifact')} {_seek('s', 'Artifact')} "
                "MERGE (o:Column {artifact: e.artifact, name: e.field}) MERGE (a)-[:HAS_COLUMN]->(o) "
                "MERGE (i:Column {artifact: e.source_uid, name: e.source_field}) "
                "MERGE (s)-[:HAS_COLUMN]->(i) "
                "MERGE (o)-[d:DERIVED_FROM]->(i) "
                "SET d.type = e.type, d.subtype = e.subtype, d.description = e.description, "
                "d.masking = e.masking",
                rows=self.derived,
            )

    def merge_facets(self) -> dict[tuple[str, str], dict[str, str]]:
        """Each node's facets, merged per name by event time (a later event in the batch wins a
        tie, as it would arriving later), then with what the node holds: a node made here is
        created with them, and the `facets` and `facet_times` of existing nodes whose facets
        change are returned, by (label, uid)."""
        incoming: dict[tuple[str, str], dict[str, tuple[str, int, str]]] = {}
        for label, uid, when, seq, facets in self.facets:
            into = incoming.setdefault((label, uid), {})
            for name, text in facets.items():
                if name not in into or (when, seq) >= into[name][:2]:
                    into[name] = (when, seq, text)
        stored: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        old: dict[str, list[str]] = {"Transform": [], "Run": [], "Artifact": []}
        for label, uid in incoming:
            if uid in self.new:
                stored[(label, uid)] = (None, None)
            else:
                old[label].append(uid)
        if any(old.values()):
            for row in _rows(self.tx, FACETS_OF, **old):
                stored[(row["label"], row["uid"])] = (row["facets"], row["times"])
        changes: dict[tuple[str, str], dict[str, str]] = {}
        for key, (facets_text, times_text) in stored.items():
            facets = json.loads(facets_text) if facets_text else {}
            times = json.loads(times_text) if times_text else {}
            changed = False
            for name, (when, _, text) in incoming[key].items():
                if name not in times or when >= times[name]:
                    value = json.loads(text)
                    if facets.get(name) != value or times.get(name) != when:
                        facets[name], times[name], changed = value, when, True
            if changed:
                merged = {"facets": json.dumps(facets, sort_keys=True),
                          "facet_times": json.dumps(times, sort_keys=True)}  # fmt: skip
                new = self.new.get(key[1])
                if new is not None:
                    new["props"].update(merged)
                else:
                    changes[key] = merged
        return changes


# What each label's CREATE statement adds after the node and its creator edge (`n`, `row`):
# versions revise their predecessor, a run executes its transform, an artifact was generated by
# its run (made here or not) and has its schema's columns.
def _revises(label: str) -> str:
    return (
        f"WITH n, row OPTIONAL MATCH (old:`{label}` {{uid: row.revises}}) {_seek('old', label)} "
        "FOREACH (_ IN CASE WHEN old IS NULL THEN [] ELSE [1] END | CREATE (n)-[:REVISES]->(old))"
    )


_CREATES = {
    "Transform": _revises("Transform"),
    "Run": "WITH n, row OPTIONAL MATCH (t:Transform {uid: row.transform}) "
    f"{_seek('t', 'Transform')} "
    "FOREACH (_ IN CASE WHEN t IS NULL THEN [] ELSE [1] END | CREATE (n)-[:EXECUTES]->(t))",
    "Artifact": "FOREACH (c IN row.columns | CREATE (n)-[:HAS_COLUMN]->(:Column "
    "{artifact: n.uid, name: c.name, type: c.type, description: c.description})) "
    + _revises("Artifact")
    + f" WITH n, row OPTIONAL MATCH (r:Run {{uid: row.run}}) {_seek('r', 'Run')} "
    "FOREACH (_ IN CASE WHEN r IS NULL THEN [] ELSE [1] END | CREATE (n)-[:GENERATED_BY]->(r))",
}


def _times_apart(
    rows: list[dict[str, Any]],
) -> tuple[list[tuple[dict[str, Any], dict[str, str]]], str]:
    """New nodes' properties with their datetimes (all UTC here) apart as ISO text, and the
    `SET` that stores them as datetimes on `n`. The driver packs a datetime parameter in pure
    Python (`graph.transfer._texted` has the measurement); unlike `_texted`'s `SET`, this one
    does not read the property back first: the node is new, so the text is only in `times`."""
    out = []
    fields: set[str] = set()
    for row in rows:
        props, times = {}, {}
        for name, value in row.items():
            if isinstance(value, datetime):
                times[name] = value.isoformat()
            else:
                props[name] = value
        fields.update(times)
        out.append((props, times))
    sets = "".join(f", n.`{f}` = datetime(row.times.`{f}`)" for f in sorted(fields))
    return out, sets


def _latest(family: list[dict[str, Any]]) -> dict[str, Any]:
    """The family's latest version in the main branch, else its newest member."""
    latest = [m for m in family if m["is_latest"] and m["branch"] == 1]
    return latest[-1] if latest else family[-1]


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
