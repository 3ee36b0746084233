"""A lamindb instance holding every kind of record lineage imports, made by lamindb itself.

Run with the lamindb venv's interpreter (`benchmarks/_lamindb_env.py`) inside an isolated,
initialised instance (`tests/test_import_lamindb.py`); imports only lamindb and the standard
library. `argv[1]` is a folder for the source files. The last line of stdout is a JSON object:
what lamindb itself says about every record (uids, hashes, keys, versions, paths, creators),
the edges of `view_lineage` for every artifact and collection, collections' `ordered_artifacts`,
run inputs, annotations and feature values, which the test compares with the imported graph.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import lamindb as ln
import lamindb_setup
import pandas as pd
from lamindb.models import has_parents as hp

lamindb_setup.settings.instance._is_on_hub = False
ln.settings.verbosity = "error"

work = Path(sys.argv[1])
src = work / "src"
src.mkdir(parents=True, exist_ok=True)


def text_file(name: str, content: str) -> Path:
    path = src / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


# users, spaces, storages
alice = ln.User(uid="aLiCe001", handle="alice", name="Alice").save()
team = ln.Space(name="team-a", uid="teamAspace01", description="team A").save()
second_root = work / "second-root"
second_root.mkdir(exist_ok=True)
second = ln.Storage(root=str(second_root), description="a second root").save()

# labels, projects, references, features
cell_type = ln.ULabel(name="CellType", is_type=True).save()
t_cell = ln.ULabel(name="T cell", type=cell_type).save()
b_cell = ln.ULabel(name="B cell", type=cell_type).save()
plain = ln.ULabel(name="plain label", description="no type").save()
project = ln.Project(name="atlas", description="the atlas").save()
reference = ln.Reference(name="Doe 2024", url="https://example.org/doe", doi="10.1/doe").save()
ln.Feature(name="cell_type", dtype=cell_type).save()
ln.Feature(name="any_label", dtype=ln.ULabel).save()
ln.Feature(name="temperature", dtype=float).save()
ln.Feature(name="n_cells", dtype=int).save()
ln.Feature(name="donor", dtype=str).save()
ln.Feature(name="ok", dtype=bool).save()
ln.Feature(name="day", dtype="date").save()
ln.Feature(name="when", dtype="datetime").save()
ln.Feature(name="config", dtype=dict).save()
ln.Feature(name="tags", dtype=list[str]).save()
ln.Feature(name="lr", dtype=float).save()

# transforms and runs
prep = ln.Transform(key="prep.py", kind="script", source_code="print('prep v1')").save()
prep2 = ln.Transform(
    key="prep.py", kind="script", source_code="print('prep v2')", revises=prep
).save()
train = ln.Transform(key="train.ipynb", kind="notebook", description="training").save()
pipe = ln.Transform(key="pipeline", kind="pipeline").save()
run_pipe = ln.Run(pipe, name="nightly").save()
run_prep = ln.Run(
    prep2, params={"seed": 1, "mode": {"fast": True}}, initiated_by_run=run_pipe
).save()
run_train = ln.Run(train, params={"lr": 0.1}).save()
run_eval = ln.Run(train).save()
run_prep._status_code = 0
run_prep.finished_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
run_prep.save()
run_train.features.add_values({"lr": 0.1})

# artifacts: plain files, versions, a folder, a table, in place under the root, trash, archive
raw1 = ln.Artifact(text_file("raw/r1.txt", "raw one\n"), key="raw/r1.txt", run=run_pipe).save()
raw2 = ln.Artifact(text_file("raw/r2.txt", "raw two\n"), key="raw/r2.txt", run=run_pipe).save()
raw2b = ln.Artifact(
    text_file("raw/r2b.txt", "raw two, fixed\n"), key="raw/r2.txt", run=run_pipe
).save()
raw2c = ln.Artifact(
    text_file("raw/r2c.txt", "raw two, again\n"), revises=raw2b, version="v3"
).save()
for a in (raw1, raw2c):
    run_prep.input_artifacts.add(a)
folder = src / "plate"
folder.mkdir(exist_ok=True)
(folder / "a.txt").write_text("well a")
(folder / "sub").mkdir(exist_ok=True)
(folder / "sub" / "b.txt").write_text("well b")
plate = ln.Artifact(folder, key="images/plate", run=run_prep).save()
table = ln.Artifact(
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}), key="tables/xy.parquet", run=run_prep
).save()
clean = ln.Artifact(text_file("clean.csv", "a,b\n1,2\n"), key="clean/data.csv", run=run_prep).save()
root = Path(lamindb_setup.settings.storage.root_as_str)
(root / "inplace").mkdir(exist_ok=True)
(root / "inplace" / "here.txt").write_text("registered where it lies\n")
inplace = ln.Artifact(root / "inplace" / "here.txt", description="in place").save()
no_key = ln.Artifact(text_file("nokey.txt", "no key at all\n"), description="without a key").save()
by_alice = ln.Artifact(text_file("alice.txt", "alice's\n"), key="people/alice.txt").save()
by_alice.created_by = alice
by_alice.save()
team_label = ln.ULabel(name="team label", space=team).save()
trashed = ln.Artifact(text_file("gone.txt", "to the trash\n"), key="gone.txt").save()
trashed.delete()
archived = ln.Artifact(text_file("old.txt", "archived\n"), key="old.txt").save()
archived.branch_id = 0
archived.save()
meta = ln.Artifact(text_file("meta.json", '{"meta": 1}\n'), key="meta.json").save()

run_train.input_artifacts.add(clean)
run_train.input_artifacts.add(table)
model = ln.Artifact(text_file("model.bin", "weights\n"), key="models/m.bin", run=run_train).save()
# a run reading what it made: lamindb records it; lineage leaves such an input out
run_train.input_artifacts.add(model)

# collections: members in a non-sorted order, a meta artifact, versions, run inputs
coll = ln.Collection(
    [clean, raw1, table],
    key="datasets/main",
    meta_artifact=meta,
    run=run_prep,
    reference="GSE1",
    reference_type="GEO",
).save()
coll2 = ln.Collection(
    [clean, raw1, table, plate], key="datasets/main", revises=coll, run=run_prep
).save()
small = ln.Collection([raw2c, raw1], key="datasets/small", description="two").save()
run_eval.input_collections.add(coll2)
run_eval.input_artifacts.add(model)
report = ln.Artifact(text_file("eval.txt", "auc 0.9\n"), key="eval/report.txt", run=run_eval).save()

# annotations and feature values
for record in (clean, coll):
    record.ulabels.add(plain)
    record.projects.add(project)
    record.references.add(reference)
table.ulabels.add(t_cell)
clean.features.add_values({
    "cell_type": ["T cell", "B cell"], "any_label": "plain label", "temperature": 21.5,
    "n_cells": 1000, "donor": "D1", "ok": True, "day": dt.date(2024, 1, 2),
    "when": dt.datetime(2024, 1, 2, 3, 4, 5), "config": {"b": 1, "a": [1, 2]}, "tags": ["x", "y"],
})  # fmt: skip
table.features.add_values({"temperature": 30.0, "n_cells": 5, "cell_type": "T cell"})


# -- what lamindb says ----------------------------------------------------------------------------
def when(value):
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def plain_value(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, set, tuple)):
        return sorted(plain_value(v) for v in value)
    return value


def edges_of(record):
    values = hp._get_all_parent_runs(record) + hp._get_all_child_runs(record)
    if not values:
        return []
    df = hp._df_edges_from_runs(values)
    return sorted({(s, t) for s, t in zip(df["source"], df["target"])})


everything = {"Artifact": [], "Collection": [], "Transform": [], "Run": []}
for a in ln.Artifact.filter(branch_id__in=[-1, 0, 1]).order_by("id"):
    everything["Artifact"].append({
        "uid": a.uid, "key": a.key, "hash": a.hash, "hash_type": a._hash_type, "size": a.size,
        "suffix": a.suffix, "version": a.version_tag, "is_latest": a.is_latest,
        "created_at": when(a.created_at), "created_by": a.created_by.handle,
        "storage": a.storage.root, "path": a.path.as_posix(), "branch": a.branch_id,
        "n_files": a.n_files, "run": a.run.uid if a.run else None,
        "space": a.space.name, "otype": a.otype,
        "ulabels": sorted(x.uid for x in a.ulabels.all()),
        "projects": sorted(x.uid for x in a.projects.all()),
        "references": sorted(x.uid for x in a.references.all()),
        "features": {k: plain_value(v) for k, v in a.features.get_values().items()},
        "lineage": edges_of(a) if a.branch_id in (0, 1) else [],
    })  # fmt: skip
for c in ln.Collection.filter(branch_id__in=[-1, 0, 1]).order_by("id"):
    everything["Collection"].append({
        "uid": c.uid, "key": c.key, "hash": c.hash, "version": c.version_tag,
        "is_latest": c.is_latest, "created_at": when(c.created_at),
        "created_by": c.created_by.handle, "run": c.run.uid if c.run else None,
        "meta": c.meta_artifact.uid if c.meta_artifact else None,
        "ordered_artifacts": [a.uid for a in c.ordered_artifacts.all()],
        "ulabels": sorted(x.uid for x in c.ulabels.all()),
        "lineage": edges_of(c),
    })  # fmt: skip
for t in ln.Transform.filter().order_by("id"):
    everything["Transform"].append({
        "uid": t.uid, "key": t.key, "hash": t.hash, "kind": t.kind, "is_latest": t.is_latest,
        "version": t.version_tag, "source_code": t.source_code, "created_at": when(t.created_at),
    })  # fmt: skip
for r in ln.Run.filter().order_by("id"):
    everything["Run"].append({
        "uid": r.uid, "transform": r.transform.uid, "status": r.status, "params": r.params,
        "started_at": when(r.started_at), "finished_at": when(r.finished_at),
        "initiated_by": r.initiated_by_run.uid if r.initiated_by_run else None,
        "input_artifacts": sorted(a.uid for a in r.input_artifacts.all()),
        "input_collections": sorted(c.uid for c in r.input_collections.all()),
        "features": {k: plain_value(v) for k, v in r.features.get_values().items()},
    })  # fmt: skip
everything["User"] = [{"uid": u.uid, "handle": u.handle, "name": u.name} for u in ln.User.filter()]
everything["Space"] = [{"uid": s.uid, "name": s.name} for s in ln.Space.filter()]
everything["Storage"] = [{"uid": s.uid, "root": s.root} for s in ln.Storage.filter()]
everything["ULabel"] = [
    {
        "uid": u.uid,
        "name": u.name,
        "is_type": u.is_type,
        "type": u.type.uid if u.type else None,
        "space": u.space.uid,
    }
    for u in ln.ULabel.filter()
]
everything["Project"] = [{"uid": p.uid, "name": p.name} for p in ln.Project.filter()]
everything["Reference"] = [
    {"uid": r.uid, "name": r.name, "url": r.url, "doi": r.doi} for r in ln.Reference.filter()
]
everything["Feature"] = [
    {"uid": f.uid, "name": f.name, "dtype": f._dtype_str} for f in ln.Feature.filter()
]
everything["version"] = ln.__version__
print(json.dumps(everything))
