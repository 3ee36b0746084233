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
    new records are `CREATED_BY`.

    Set-based: what the events name is read in a few `UNWIND` queries, the events are applied in
    order to that state in Python (which job version, which artifact version, which status), and
    the result is written in a fixed number of `UNWIND` statements, whatever the number of
    events."""

    def work(tx: neo4j.ManagedTransaction) -> list[dict]:
        for label in _LOCKED_LABELS:
            tx.run(
                "MERGE (c:LineageCounter {label: $label}) ON CREATE SET c.value = 0 "
                "SET c._lock = true REMOVE c._lock",
                label=label,
            ).consume()
        batch = _Batch(tx, user, events)
        results = [batch.apply(event, i) for i, event in enumerate(events)]
        batch.flush()
        return results

    return conn.write(work)


def _rows(tx: neo4j.ManagedTransaction, query: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in tx.run(query, params)]


def _versions(events: Sequence[dict[str, Any]]) -> set[str]:
    """Every dataset version facet the events carry."""
    return {
        ds["version"]
        for event in events
        for ds in (*event["inputs"], *event["outputs"], event["dataset"])
        if ds and ds["version"] is not None
    }


def _identities(events: Sequence[dict[str, Any]]) -> tuple[set, set, set, set]:
    """Every runId, job and dataset (namespace, name) and location the events name."""
    runs: set[str] = set()
    jobs: set[tuple[str, str]] = set()
    datasets: set[tuple[str, str]] = set()
    paths: set[str] = set()

    def dataset(ds: dict[str, Any]) -> None:
        datasets.add((ds["namespace"], ds["name"]))
        if ds.get("location"):
            paths.add(ds["location"])
        for entry in ds.get("lineage", ()):
            for source in entry["inputs"]:
                dataset(source)

    for event in events:
        parent = event["run"]["parent"] if event["run"] else None
        for job in (event["job"], parent["job"] if parent else None):
            if job:
                jobs.add((job["namespace"], job["name"]))
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
    return runs, jobs, datasets, paths


class _Batch:
    """The state the events are applied to, read once, and what they change, written once."""

    def __init__(
        self, tx: neo4j.ManagedTransaction, user: str, events: Sequence[dict[str, Any]]
    ) -> None:
        self.tx, self.user, self.stamp = tx, user, now()
        run_ids, jobs, datasets, paths = _identities(events)
        # Runs by runId.
        self.runs: dict[str, dict[str, Any]] = {
            r["id"]: r
            for r in _rows(
                tx,
                "UNWIND $ids AS id MATCH (r:Run {openlineage_run_id: id}) "
                "RETURN id, r.uid AS uid, r.status AS status, r.started_at AS started_at, "
                "r.finished_at AS finished_at, "
                "[(r)-[:EXECUTES]->(t:Transform) | t.uid][0] AS transform, "
                "EXISTS { (r)-[:INITIATED_BY]->() } AS has_parent",
                ids=sorted(run_ids),
            )
        }
        for run in self.runs.values():
            for key in ("started_at", "finished_at"):
                run[key] = _native(run[key])
        # Members of every family a job or dataset belongs to, by label and stem (shared dicts:
        # a member is found by identity, by path and in its family).
        self.members: dict[str, dict[str, dict[str, Any]]] = {"Transform": {}, "Artifact": {}}
        self.families: dict[str, dict[str, list[str]]] = {"Transform": {}, "Artifact": {}}
        self.by_identity: dict[str, dict[tuple[str, str], list[str]]] = {
            "Transform": {}, "Artifact": {}
        }  # fmt: skip
        self.by_path: dict[str, list[str]] = {}
        transform_uids = sorted({r["transform"] for r in self.runs.values() if r["transform"]})
        versions = sorted(_versions(events))
        stems = {
            "Transform": _rows(
                tx,
                "UNWIND $ids AS i MATCH (t:Transform {ol_name: i[1]}) "
                "WHERE t.ol_namespace = i[0] AND t.branch <> -1 "
                "RETURN DISTINCT substring(t.uid, 0, $n) AS stem "
                "UNION UNWIND $uids AS uid RETURN substring(uid, 0, $n) AS stem",
                ids=sorted(jobs), uids=transform_uids, n=uid_length("Transform"),
            ),
            "Artifact": _rows(
                tx,
                "UNWIND $ids AS i MATCH (a:Artifact {ol_name: i[1]}) "
                "WHERE a.ol_namespace = i[0] AND a.branch <> -1 "
                "RETURN DISTINCT substring(a.uid, 0, $n) AS stem "
                "UNION UNWIND $paths AS p MATCH (a:Artifact {storage_path: p}) "
                "WHERE a.branch <> -1 RETURN DISTINCT substring(a.uid, 0, $n) AS stem",
                ids=sorted(datasets), paths=sorted(paths), n=uid_length("Artifact"),
            ),
        }  # fmt: skip
        # Of each family, only the members the events can choose: the two newest (the top
        # counter), the latest, those with a version tag (or uid) an event names, those at a
        # location an event names, those made by a run an event names, the runs' transforms.
        # A family with a long history is then a few rows, not all of it.
        for label, extra in (("Transform", "t.hash AS hash"),
                             ("Artifact", "t.storage_path AS path, t.created_at AS created_at, "
                              "[(t)-[:GENERATED_BY]->(r:Run) | r.uid][0] AS made_by")):  # fmt: skip
            for m in _rows(
                tx,
                f"UNWIND $stems AS stem MATCH (t:`{label}`) WHERE t.uid STARTS WITH stem "
                "WITH stem, t ORDER BY t.uid DESC WITH stem, collect(t) AS family "
                "UNWIND range(0, size(family) - 1) AS i WITH i, family[i] AS t "
                "WHERE i < 2 OR t.is_latest OR t.version IN $versions OR t.uid IN $versions "
                "OR t.uid IN $uids OR t.storage_path IN $paths "
                "OR EXISTS { (t)-[:GENERATED_BY]->(r:Run) WHERE r.openlineage_run_id IN $runs } "
                "RETURN t.uid AS uid, t.key AS key, t.version AS version, "
                "t.is_latest AS is_latest, t.branch AS branch, t.ol_namespace AS ns, "
                f"t.ol_name AS name, {extra} ORDER BY t.uid",
                stems=sorted({r["stem"] for r in stems[label]}), versions=versions,
                uids=transform_uids, paths=sorted(paths), runs=sorted(run_ids),
            ):  # fmt: skip
                self._add(label, m)
        self.created: dict[str, list[dict[str, Any]]] = {"Transform": [], "Artifact": [], "Run": []}
        self.updates: dict[tuple[str, str], dict[str, Any]] = {}  # (label, uid) -> props
        self.fills: dict[tuple[str, str], dict[str, Any]] = {}  # set only where still null
        self.edges: dict[str, list[dict[str, str]]] = {
            "EXECUTES": [], "INITIATED_BY": [], "GENERATED_BY": [], "USED": []
        }  # fmt: skip
        self.columns: list[dict[str, Any]] = []
        self.derived: list[dict[str, Any]] = []
        self.facets: list[tuple[str, str, datetime, int, dict[str, str]]] = []
        self.seq = 0
        self.new_props: dict[str, dict[str, Any]] = {}  # uid -> properties of a node made here

    def _add(self, label: str, member: dict[str, Any]) -> None:
        member = dict(member)
        if label == "Artifact":
            member["created_at"] = _native(member["created_at"])
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
                    self.edges["GENERATED_BY"].append({"a": uid, "b": run_uid})
            for uid in out["inputs"]:
                if self.members["Artifact"][uid]["made_by"] != run_uid:
                    self.edges["USED"].append({"a": run_uid, "b": uid})
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
            self.facets.append((label, uid, self.time, self.seq, facets))

    def update(self, label: str, uid: str, **props: Any) -> None:
        new = self.new_props.get(uid)
        if new is not None:  # made in this batch: created with the values
            new.update(props)
            return
        self.updates.setdefault((label, uid), {}).update(props)

    def fill(self, label: str, uid: str, **props: Any) -> None:
        """Properties set on the node only where it has none (the first value wins)."""
        new = self.new_props.get(uid)
        into = new if new is not None else self.fills.setdefault((label, uid), {})
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
        self.created[label].append({"props": node, "revises": revises})
        self.new_props[uid] = node
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
        self.created["Run"].append({"props": node, "transform": transform})
        self.new_props[uid] = node
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
        for column in ds["columns"]:
            self.columns.append({"artifact": uid, **column})
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
        self.tx.run(query, params).consume()

    def flush(self) -> None:
        for label, rows in self.created.items():  # ids: one counter step per label
            for row, record_id in zip(rows, _take_ids(self.tx, label, len(rows)) if rows else []):
                row["props"] = {k: v for k, v in row["props"].items() if v is not None}
                row["props"]["id"] = record_id
        for label in ("Transform", "Artifact"):
            rows = self.created[label]
            if rows:
                self.run_q(
                    f"UNWIND $rows AS row CREATE (n:`{label}`) SET n = row.props WITH n "
                    f"{_CREATED_BY}",
                    rows=rows, user=self.user,
                )  # fmt: skip
                self.run_q(
                    f"UNWIND $rows AS row MATCH (n:`{label}` {{uid: row.props.uid}}) "
                    f"MATCH (old:`{label}` {{uid: row.revises}}) CREATE (n)-[:REVISES]->(old)",
                    rows=[r for r in rows if r["revises"]],
                )
        if self.created["Run"]:
            self.run_q(
                "UNWIND $rows AS row CREATE (n:Run) SET n = row.props WITH n, row "
                f"{_CREATED_BY} WITH n, row "
                "MATCH (t:Transform {uid: row.transform}) CREATE (n)-[:EXECUTES]->(t)",
                rows=self.created["Run"], user=self.user,
            )  # fmt: skip
        for label in ("Transform", "Artifact", "Run"):
            rows = [{"uid": u, "props": p} for (lab, u), p in self.updates.items() if lab == label]
            if rows:
                self.run_q(
                    f"UNWIND $rows AS row MATCH (n:`{label}` {{uid: row.uid}}) "
                    "SET n += row.props, n.updated_at = $now",
                    rows=rows, now=self.stamp,
                )  # fmt: skip
            fills: list[dict[str, Any]] = [
                {"uid": u, "props": p} for (lab, u), p in self.fills.items() if lab == label and p
            ]
            for name in sorted({n for r in fills for n in r["props"]}):
                self.run_q(
                    f"UNWIND $rows AS row MATCH (n:`{label}` {{uid: row.uid}}) "
                    f"WHERE n.`{name}` IS NULL SET n.`{name}` = row.value",
                    rows=[{"uid": r["uid"], "value": r["props"][name]} for r in fills
                          if name in r["props"]],
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
                    f"{verb} (a)-[:`{edge}`]->(b)",
                    rows=self.edges[edge],
                )
        if self.edges["USED"]:
            self.run_q(
                "UNWIND $rows AS row MATCH (r:Run {uid: row.a}), (a:Artifact {uid: row.b}) "
                "WHERE NOT EXISTS { (a)-[:GENERATED_BY]->(r) } MERGE (r)-[:USED]->(a)",
                rows=self.edges["USED"],
            )
        if self.columns:
            self.run_q(
                "UNWIND $rows AS c MATCH (a:Artifact {uid: c.artifact}) "
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
                "MERGE (o:Column {artifact: e.artifact, name: e.field}) MERGE (a)-[:HAS_COLUMN]->(o) "
                "MERGE (i:Column {artifact: e.source_uid, name: e.source_field}) "
                "MERGE (s)-[:HAS_COLUMN]->(i) "
                "MERGE (o)-[d:DERIVED_FROM]->(i) "
                "SET d.type = e.type, d.subtype = e.subtype, d.description = e.description, "
                "d.masking = e.masking",
                rows=self.derived,
            )
        self.merge_facets()

    def merge_facets(self) -> None:
        """Each node's facets, merged per name by event time (a later event in the batch wins a
        tie, as it would arriving later), then with what the node holds; written once."""
        incoming: dict[tuple[str, str], dict[str, tuple[str, int, str]]] = {}
        for label, uid, moment, seq, facets in self.facets:
            into = incoming.setdefault((label, uid), {})
            when = _iso(moment)
            for name, text in facets.items():
                if name not in into or (when, seq) >= into[name][:2]:
                    into[name] = (when, seq, text)
        for label in ("Artifact", "Run", "Transform"):
            uids = sorted(uid for (lab, uid) in incoming if lab == label)
            if not uids:
                continue
            rows = _rows(
                self.tx,
                f"UNWIND $uids AS uid MATCH (n:`{label}` {{uid: uid}}) "
                "RETURN n.uid AS uid, n.facets AS facets, n.facet_times AS times",
                uids=uids,
            )
            updates = []
            for row in rows:
                facets = json.loads(row["facets"]) if row["facets"] else {}
                times = json.loads(row["times"]) if row["times"] else {}
                changed = False
                for name, (when, _, text) in incoming[(label, row["uid"])].items():
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
                self.run_q(
                    f"UNWIND $rows AS r MATCH (n:`{label}` {{uid: r.uid}}) "
                    "SET n.facets = r.facets, n.facet_times = r.times",
                    rows=updates,
                )


def _latest(family: list[dict[str, Any]]) -> dict[str, Any]:
    """The family's latest version in the main branch, else its newest member."""
    latest = [m for m in family if m["is_latest"] and m["branch"] == 1]
    return latest[-1] if latest else family[-1]


def _native(value: Any) -> Any:
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
