"""Transforms, runs, and `ln.track()` / `ln.finish()`, checked in the real graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lineage as ln
from tests.conftest import make_artifact
from lineage.errors import InvalidArgument, ValidationError

REPO = Path(__file__).resolve().parent.parent


def generated_by(uid: str) -> list[str]:
    """uids of the runs a data node is GENERATED_BY, from the graph."""
    df = ln.cypher(
        "MATCH (d {uid: $uid})-[:GENERATED_BY]->(r:Run) RETURN r.uid AS run ORDER BY run", uid=uid
    )
    return df["run"].tolist()


def used_by(uid: str) -> list[str]:
    """uids of the runs that USED a data node, from the graph."""
    df = ln.cypher(
        "MATCH (r:Run)-[:USED]->(d {uid: $uid}) RETURN r.uid AS run ORDER BY run", uid=uid
    )
    return df["run"].tolist()


# --------------------------------------------------------------------------------------------
# Transform and Run records
# --------------------------------------------------------------------------------------------
def test_transform_fields_and_kinds(storage: Path) -> None:
    t = ln.Transform(key="pipelines/prep.py", description="prepare", kind="script", version="1.0")
    t.save()
    assert len(t.uid) == 16 and t.uid.endswith("0000")
    assert isinstance(t.id, int)
    assert (t.key, t.description, t.kind, t.version) == (
        "pipelines/prep.py",
        "prepare",
        "script",
        "1.0",
    )
    assert t.is_latest is True and t.branch == 1
    assert t.name == "prep.py"
    row = ln.cypher(
        "MATCH (t:Transform {uid: $uid}) RETURN t.key AS key, t.kind AS kind, t.version AS version, "
        "t.description AS description, t.is_latest AS latest",
        uid=t.uid,
    ).iloc[0]
    assert (row["key"], row["kind"], row["version"], row["description"], row["latest"]) == (
        "pipelines/prep.py", "script", "1.0", "prepare", True,
    )  # fmt: skip
    for kind in ("pipeline", "notebook", "script", "function"):
        assert ln.Transform(key=f"k-{kind}", kind=kind).save().kind == kind
    assert ln.Transform(key="default-kind").kind == "pipeline"
    with pytest.raises(ValidationError) as info:
        ln.Transform(key="bad", kind="workflow")
    assert "workflow" in str(info.value)
    assert ln.Transform.filter(key="bad").count() == 0
    got = ln.Transform.get(key="pipelines/prep.py")
    assert got.uid == t.uid and got.kind == "script"


def test_run_params_round_trip_as_json_text(storage: Path) -> None:
    t = ln.Transform(key="train", kind="pipeline").save()
    run = ln.Run(t, name="first", params={"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}})
    run.save()
    assert len(run.uid) == 20
    assert run.name == "first"
    assert run.params == {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}}
    assert run.status == "started" and run.started_at is not None and run.finished_at is None
    fresh = ln.Run.get(run.uid)
    assert isinstance(fresh.params, dict)
    assert fresh.params == {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}}
    stored = ln.cypher("MATCH (r:Run {uid: $uid}) RETURN r.params AS p", uid=run.uid)["p"].iloc[0]
    assert isinstance(stored, str)
    assert json.loads(stored) == {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}}
    # no params: None, not "null"
    bare = ln.Run(t).save()
    assert bare.params is None and ln.Run.get(bare.uid).params is None


def test_run_rejects_bad_params_and_non_transforms(storage: Path) -> None:
    t = ln.Transform(key="train", kind="pipeline").save()
    for bad in ([("lr", 0.1)], "lr=0.1", 3):
        with pytest.raises(ValidationError):
            ln.Run(t, params=bad)
    with pytest.raises(ValidationError):
        ln.Run(t, params={"f": object()})  # not JSON-serialisable
    for not_a_transform in ("train", None, ln.ULabel(name="x").save()):
        with pytest.raises(TypeError):
            ln.Run(not_a_transform)
    assert ln.Run.filter().count() == 0


def test_executes_edge_and_transform_runs(storage: Path) -> None:
    t = ln.Transform(key="train", kind="pipeline").save()
    other = ln.Transform(key="other", kind="pipeline").save()
    r1 = ln.Run(t, name="r1").save()
    r2 = ln.Run(t, name="r2").save()
    ln.Run(other, name="r3").save()
    df = ln.cypher(
        "MATCH (r:Run)-[:EXECUTES]->(t:Transform) RETURN r.uid AS run, t.uid AS transform"
    )
    assert dict(zip(df["run"], df["transform"]))[r1.uid] == t.uid
    assert len(df) == 3  # exactly one EXECUTES edge per run
    assert sorted(r.uid for r in t.runs) == sorted([r1.uid, r2.uid])
    assert t.runs.count() == 2
    assert ln.Run.get(r1.uid).transform.uid == t.uid
    assert ln.Run.filter(transform=t).count() == 2
    assert ln.Run.filter(transform__key="other").one().name == "r3"


# --------------------------------------------------------------------------------------------
# track / finish
# --------------------------------------------------------------------------------------------
def test_track_links_outputs_and_inputs(storage: Path) -> None:
    before = make_artifact(storage, "inputs/raw.txt")  # saved before tracking: no run
    assert generated_by(before.uid) == []

    run = ln.track("my-pipeline", params={"lr": 0.1})
    assert isinstance(run, ln.Run) and run._saved
    assert ln.context.run is run or ln.context.run.uid == run.uid
    assert ln.context.transform.key == "my-pipeline"
    assert run.params == {"lr": 0.1}
    assert run.transform.key == "my-pipeline" and run.transform.kind == "pipeline"
    assert ln.Run.get(run.uid).params == {"lr": 0.1}

    # inputs
    loaded = ln.Artifact.get(before.uid, is_run_input=True)
    assert loaded.uid == before.uid
    assert used_by(before.uid) == [run.uid]
    assert [a.uid for a in run.input_artifacts] == [before.uid]
    assert [r.uid for r in before.input_of_runs] == [run.uid]
    ln.Artifact.get(key="inputs/raw.txt", is_run_input=True)  # a second load: no second edge
    assert ln.cypher(
        "MATCH (:Run)-[u:USED]->(a:Artifact {uid: $uid}) RETURN count(u) AS n", uid=before.uid
    )["n"].tolist() == [1]
    # a plain get (no is_run_input) records nothing
    other = make_artifact(storage, "inputs/other.txt")  # an output of the run
    ln.Artifact.get(other.uid)
    assert ln.cypher(
        "MATCH (:Run)-[u:USED]->(a:Artifact {uid: $uid}) RETURN count(u) AS n", uid=other.uid
    )["n"].tolist() == [0]

    # outputs
    out = make_artifact(storage, "outputs/result.txt")
    assert generated_by(out.uid) == [run.uid]
    assert generated_by(other.uid) == [run.uid]
    assert out.run.uid == run.uid
    assert ln.Artifact.get(out.uid).run.uid == run.uid
    collection = ln.Collection([out], key="results").save()
    assert generated_by(collection.uid) == [run.uid]
    assert ln.Collection.get(collection.uid).run.uid == run.uid
    assert sorted(a.uid for a in run.output_artifacts) == sorted([out.uid, other.uid])
    assert [c.uid for c in run.output_collections] == [collection.uid]
    assert generated_by(before.uid) == []  # saved before track: still no run
    ln.finish()


def test_collection_inputs_and_explicit_run_input(storage: Path) -> None:
    a = make_artifact(storage, "coll/a.txt")
    collection = ln.Collection([a], key="coll").save()
    # no run tracked: is_run_input records nothing
    ln.Artifact.get(a.uid, is_run_input=True)
    ln.Collection.get(collection.uid, is_run_input=True)
    assert ln.cypher("MATCH ()-[u:USED]->() RETURN count(u) AS n")["n"].tolist() == [0]

    run = ln.track("collection-reader")
    ln.Collection.get(key="coll", is_run_input=True)
    assert used_by(collection.uid) == [run.uid]
    assert [c.uid for c in run.input_collections] == [collection.uid]
    assert [r.uid for r in collection.input_of_runs] == [run.uid]
    ln.finish()

    # an explicit run as is_run_input, with nothing tracked
    t = ln.Transform(key="explicit-reader").save()
    other_run = ln.Run(t).save()
    ln.Artifact.get(a.uid, is_run_input=other_run)
    assert used_by(a.uid) == [other_run.uid]
    assert [x.uid for x in other_run.input_artifacts] == [a.uid]


def test_is_run_input_on_own_output_makes_no_used_edge(storage: Path) -> None:
    run = ln.track("self-reader")
    out = make_artifact(storage, "own/output.txt")
    assert generated_by(out.uid) == [run.uid]
    again = ln.Artifact.get(out.uid, is_run_input=True)
    assert again.uid == out.uid
    # lamindb: a run's own output is never also its input
    assert used_by(out.uid) == []
    assert run.input_artifacts.count() == 0
    ln.finish()


def test_second_track_with_same_key_reuses_transform(storage: Path) -> None:
    r1 = ln.track("shared-key")
    ln.finish()
    r2 = ln.track("shared-key", params={"epoch": 2})
    assert r2.uid != r1.uid
    assert r2.transform.uid == r1.transform.uid
    assert ln.Transform.filter(key="shared-key").count() == 1
    assert sorted(r.uid for r in r2.transform.runs) == sorted([r1.uid, r2.uid])
    assert ln.cypher(
        "MATCH (r:Run)-[:EXECUTES]->(t:Transform {key: 'shared-key'}) RETURN count(r) AS n"
    )["n"].tolist() == [2]
    ln.finish()
    # a Transform object works too
    t = ln.Transform(key="explicit", kind="function")
    r3 = ln.track(t)
    assert t._saved and r3.transform.uid == t.uid and ln.context.transform.uid == t.uid
    ln.finish()


def test_finish(storage: Path) -> None:
    run = ln.track("finishing")
    finished = ln.finish()
    assert finished.uid == run.uid
    assert finished.status == "completed"
    assert finished.finished_at is not None and finished.finished_at >= finished.started_at
    row = ln.cypher(
        "MATCH (r:Run {uid: $uid}) RETURN r.status AS status, r.finished_at AS f, r.started_at AS s",
        uid=run.uid,
    ).iloc[0]
    assert row["status"] == "completed" and row["f"] is not None and row["f"] >= row["s"]
    assert ln.Run.get(run.uid).status == "completed"
    assert ln.context.run is None and ln.context.transform is None

    # nothing tracked now
    with pytest.raises(InvalidArgument):
        ln.finish()
    after = make_artifact(storage, "after/finish.txt")
    assert generated_by(after.uid) == []
    assert ln.Artifact.get(after.uid).run is None
    label_free = ln.Collection([after], key="after").save()
    assert generated_by(label_free.uid) == []


def test_finish_without_track_raises(storage: Path) -> None:
    assert ln.context.run is None
    with pytest.raises(InvalidArgument):
        ln.finish()


def test_track_rejects_bad_arguments(storage: Path) -> None:
    with pytest.raises(TypeError):
        ln.track(42)
    assert ln.context.run is None
    assert ln.Run.filter().count() == 0


# --------------------------------------------------------------------------------------------
# ln.track() with no arguments, from a script
# --------------------------------------------------------------------------------------------
SCRIPT = """\
import json
import lineage as ln

ln.connect()
run = ln.track()
t = run.transform
print("RESULT " + json.dumps({{
    "run": run.uid, "transform": t.uid, "key": t.key, "kind": t.kind, "hash": t.hash,
}}))
ln.finish()
# {marker}
"""


def _run_script(path: Path, neo4j) -> dict:
    env = neo4j.child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0][len("RESULT ") :])


def test_track_without_arguments_versions_the_calling_script(
    storage: Path, neo4j, tmp_path: Path
) -> None:
    script = tmp_path / "my_analysis.py"
    text_v1 = SCRIPT.format(marker="version one")
    script.write_text(text_v1)

    first = _run_script(script, neo4j)
    second = _run_script(script, neo4j)
    assert first["key"] == "my_analysis.py" and first["kind"] == "script"
    assert second["transform"] == first["transform"]  # same source: same Transform
    assert second["run"] != first["run"]
    assert len(first["transform"]) == 16 and first["transform"].endswith("0000")
    t1 = ln.Transform.get(first["transform"])
    assert t1.source_code == text_v1
    assert isinstance(t1.hash, str) and len(t1.hash) == 22 and t1.hash == first["hash"]
    assert ln.Transform.filter(key="my_analysis.py").count() == 1
    assert sorted(r.uid for r in t1.runs) == sorted([first["run"], second["run"]])
    assert all(r.status == "completed" for r in t1.runs)

    # edit the script: a new version of the same Transform family
    text_v2 = SCRIPT.format(marker="version two, edited")
    script.write_text(text_v2)
    third = _run_script(script, neo4j)
    assert third["transform"] != first["transform"]
    assert third["transform"][:12] == first["transform"][:12]
    assert third["transform"][12:] == "0001"
    assert third["hash"] != first["hash"]
    t2 = ln.Transform.get(third["transform"])
    assert t2.source_code == text_v2 and t2.kind == "script" and t2.key == "my_analysis.py"
    assert t2.is_latest is True
    assert ln.Transform.get(first["transform"]).is_latest is False
    rows = ln.cypher(
        "MATCH (t:Transform {key: 'my_analysis.py'}) RETURN t.uid AS uid, t.is_latest AS latest"
    )
    assert dict(zip(rows["uid"], rows["latest"])) == {t1.uid: False, t2.uid: True}
    assert ln.cypher(
        "MATCH (n:Transform {uid: $new})-[:REVISES]->(o:Transform {uid: $old}) RETURN count(*) AS n",
        new=t2.uid,
        old=t1.uid,
    )["n"].tolist() == [1]
    assert [r.uid for r in t2.runs] == [third["run"]]
    # the key alone now finds the latest version
    assert ln.Transform.get(key="my_analysis.py").uid == t2.uid


def test_track_from_a_cell_without_a_file_raises_instead_of_tracking_the_caller(
    storage: Path,
) -> None:
    # A notebook cell or REPL line has no file: ln.track() must not walk further up the stack
    # and register whatever module called the cell (IPython's, doctest's, this test file).
    cell = compile("ln.track()", "<notebook cell>", "exec")
    with pytest.raises(ln.errors.InvalidArgument, match="could not find the calling script"):
        exec(cell, {"ln": ln})
    assert ln.Transform.filter().count() == 0
