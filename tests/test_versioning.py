"""Version families (docs/schema.md, "uids, ids and versions"): shared stems, counters taken in the writing transaction,
exactly one `is_latest` per family in the main branch, tags unique in a family — also when
threads and separate processes write versions of the same family at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

import lineage as ln
from graph.ids import counter_string

STEM = 16  # artifacts and collections


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def md5_b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(data).digest()).decode()[:22]


def q(query: str, **params: Any) -> pd.DataFrame:
    return ln.cypher(query, **params)


def text_artifact(root: Path, name: str) -> ln.Artifact:
    src = root / "src"
    src.mkdir(exist_ok=True)
    path = src / f"{name}.txt"
    path.write_text(f"content {name}\n")
    return ln.Artifact(path, key=f"files/{name}.txt").save()


def family(label: str, stem: str) -> pd.DataFrame:
    """Every node of a family: uid, branch, is_latest, version, by uid."""
    return q(
        f"MATCH (n:{label}) WHERE n.uid STARTS WITH $stem "
        "RETURN n.uid AS uid, n.branch AS branch, n.is_latest AS is_latest, "
        "n.version AS version ORDER BY uid",
        stem=stem,
    )


def latest_in_main(label: str, stem: str) -> list[str]:
    df = family(label, stem)
    return df[(df["branch"] == 1) & (df["is_latest"] == True)]["uid"].tolist()  # noqa: E712


def assert_one_latest(label: str, stem: str, expected: str | None = None) -> None:
    """Exactly one is_latest among the family's main-branch nodes; none in the trash."""
    df = family(label, stem)
    latest = latest_in_main(label, stem)
    assert len(latest) == 1, f"{label} family {stem}: is_latest in main = {latest}"
    trashed_latest = df[(df["branch"] != 1) & (df["is_latest"] == True)]["uid"].tolist()  # noqa: E712
    assert trashed_latest == [], f"trashed versions marked latest: {trashed_latest}"
    # the latest is the newest main-branch version
    assert latest[0] == df[df["branch"] == 1]["uid"].max()
    if expected is not None:
        assert latest[0] == expected


def run_threads(n: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    return results, errors


# --------------------------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------------------------
def test_collection_family_via_revises(storage: Path, tmp_path: Path) -> None:
    a1, a2, a3 = (text_artifact(tmp_path, n) for n in ("c1", "c2", "c3"))
    v0 = ln.Collection([a1], key="fam/c").save()
    v1 = ln.Collection([a1, a2], revises=v0).save()
    v2 = ln.Collection([a1, a2, a3], revises=v1, key="fam/c").save()
    stem = v0.stem_uid

    assert [v.uid for v in (v0, v1, v2)] == [stem + "0000", stem + "0001", stem + "0002"]
    assert {v.stem_uid for v in (v0, v1, v2)} == {stem}
    assert [v.key for v in (v0, v1, v2)] == ["fam/c"] * 3
    assert (v0.is_latest, v1.is_latest, v2.is_latest) == (False, False, True)
    assert_one_latest("Collection", stem, expected=v2.uid)
    df = q(
        "MATCH (n:Collection)-[:REVISES]->(o:Collection) RETURN n.uid AS n, o.uid AS o ORDER BY n"
    )
    assert list(zip(df["n"], df["o"])) == [(v1.uid, v0.uid), (v2.uid, v1.uid)]
    for v in (v0, v1, v2):
        assert [x.uid for x in v.versions] == [v0.uid, v1.uid, v2.uid]
    assert ln.Collection.get(stem).uid == v2.uid


def test_artifact_family_via_revises(storage: Path) -> None:
    base = ln.Artifact(pd.DataFrame({"x": [0]}), key="tables/t.parquet").save()
    v1 = ln.Artifact(pd.DataFrame({"x": [1]}), revises=base).save()
    v2 = ln.Artifact(pd.DataFrame({"x": [2]}), revises=v1).save()
    stem = base.stem_uid
    assert [a.uid for a in (base, v1, v2)] == [stem + "0000", stem + "0001", stem + "0002"]
    assert [a.key for a in (base, v1, v2)] == ["tables/t.parquet"] * 3
    assert_one_latest("Artifact", stem, expected=v2.uid)
    for a in (base, v1, v2):
        assert Path(a.storage_path) == storage / ".lineage" / f"{a.uid}.parquet"
        assert Path(a.storage_path).exists()
    assert [a.uid for a in base.versions] == [base.uid, v1.uid, v2.uid]
    # the same bytes as a new version of another family make a new record in that family
    other = ln.Artifact(pd.DataFrame({"y": [9]}), key="tables/o.parquet").save()
    same_bytes = ln.Artifact(pd.DataFrame({"x": [2]}), revises=other).save()
    assert same_bytes.uid == other.stem_uid + "0001"
    assert same_bytes.hash == v2.hash


def test_version_tags_are_unique_in_a_family(storage: Path, tmp_path: Path) -> None:
    a1, a2, a3 = (text_artifact(tmp_path, n) for n in ("t1", "t2", "t3"))
    base = ln.Collection([a1], key="tags", version="1.0").save()
    with pytest.raises(ValueError, match="1.0"):
        ln.Collection([a1, a2], revises=base, version="1.0").save()
    assert family("Collection", base.stem_uid)["uid"].tolist() == [base.uid]
    assert_one_latest("Collection", base.stem_uid, expected=base.uid)
    v2 = ln.Collection([a1, a2], revises=base, version="2.0").save()
    assert v2.uid == base.stem_uid + "0001"  # the failed attempt took no counter
    # another family may use the same tag
    other = ln.Collection([a3], key="other", version="1.0").save()
    assert other.version == "1.0"


def test_artifact_version_tag_clash_leaves_no_node_and_no_file(storage: Path) -> None:
    base = ln.Artifact(pd.DataFrame({"x": [0]}), key="t.parquet", version="1").save()
    clash = ln.Artifact(pd.DataFrame({"x": [1]}), revises=base, version="1")
    with pytest.raises(ValueError, match="'1'"):
        clash.save()
    assert family("Artifact", base.stem_uid)["uid"].tolist() == [base.uid]
    assert sorted(p.name for p in (storage / ".lineage").iterdir()) == [f"{base.uid}.parquet"]
    assert_one_latest("Artifact", base.stem_uid, expected=base.uid)


def test_concurrent_writers_of_one_tag_one_wins(storage: Path, tmp_path: Path) -> None:
    a0 = text_artifact(tmp_path, "tag0")
    base = ln.Collection([a0], key="tag-race").save()
    mine = [text_artifact(tmp_path, f"tag{i + 1}") for i in range(4)]
    drafts = [ln.Collection([a0, a], revises=base, version="v2") for a in mine]
    results, errors = run_threads(4, lambda i: drafts[i].save())
    assert len(errors) == 3, errors
    assert all(isinstance(e, ValueError) for e in errors), errors
    fam = family("Collection", base.stem_uid)
    assert fam["version"].tolist().count("v2") == 1
    assert len(fam) == 2
    assert_one_latest("Collection", base.stem_uid)


def test_trash_and_restore_keep_one_latest(storage: Path, tmp_path: Path) -> None:
    a = [text_artifact(tmp_path, f"tr{i}") for i in range(4)]
    v0 = ln.Collection([a[0]], key="tr").save()
    v1 = v0.append(a[1]).save()
    v2 = v1.append(a[2]).save()
    stem = v0.stem_uid
    assert_one_latest("Collection", stem, expected=v2.uid)

    v2.delete()
    assert_one_latest("Collection", stem, expected=v1.uid)
    v1.delete()
    assert_one_latest("Collection", stem, expected=v0.uid)
    assert ln.Collection.get(key="tr").uid == v0.uid
    v1.restore()
    assert_one_latest("Collection", stem, expected=v1.uid)
    v2.restore()
    assert_one_latest("Collection", stem, expected=v2.uid)
    v1.delete()  # trashing an older version leaves the latest alone
    assert_one_latest("Collection", stem, expected=v2.uid)
    v1.restore()
    assert_one_latest("Collection", stem, expected=v2.uid)

    # a new version while the newest is in the trash: counter past every member, trash included
    v2.delete()
    v3 = v1.append(a[3]).save()
    assert v3.uid == stem + "0003"
    assert_one_latest("Collection", stem, expected=v3.uid)
    v2.restore()  # older than v3: stays not-latest
    assert_one_latest("Collection", stem, expected=v3.uid)
    assert ln.Collection.get(v2.uid).is_latest is False

    v3.delete(permanent=True)
    assert_one_latest("Collection", stem, expected=v2.uid)
    assert len(family("Collection", stem)) == 3


# --------------------------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------------------------
def check_appended_family(base: ln.Collection, new_uids: list[str], n: int) -> None:
    stem = base.stem_uid
    assert len(new_uids) == n
    assert len(set(new_uids)) == n, f"duplicate uids: {sorted(new_uids)}"
    assert sorted(new_uids) == [stem + counter_string(i) for i in range(1, n + 1)]
    fam = family("Collection", stem)
    assert fam["uid"].tolist() == [base.uid, *sorted(new_uids)]
    assert_one_latest("Collection", stem, expected=stem + counter_string(n))
    # every new version: the base's members in order, then its own artifact, revising the base
    base_members = [a.uid for a in base.ordered_artifacts]
    df = q(
        "MATCH (c:Collection)-[r:CONTAINS]->(a:Artifact) WHERE c.uid STARTS WITH $stem "
        "AND c.uid <> $base RETURN c.uid AS c, collect([r.position, a.uid]) AS members",
        stem=stem,
        base=base.uid,
    )
    assert len(df) == n
    own = set()
    for members in df["members"]:
        ordered = [u for _, u in sorted(members)]
        assert sorted(p for p, _ in members) == list(range(len(base_members) + 1))
        assert ordered[:-1] == base_members
        own.add(ordered[-1])
    assert len(own) == n  # each version holds a different new artifact
    revises = q(
        "MATCH (n:Collection)-[:REVISES]->(o:Collection) WHERE n.uid STARTS WITH $stem "
        "RETURN o.uid AS o",
        stem=stem,
    )
    assert revises["o"].tolist() == [base.uid] * n


def test_concurrent_appends_from_threads(storage: Path, tmp_path: Path) -> None:
    b1, b2 = text_artifact(tmp_path, "b1"), text_artifact(tmp_path, "b2")
    base = ln.Collection([b1, b2], key="threads").save()
    n = 8

    def work(i: int) -> str:
        artifact = text_artifact(tmp_path, f"thread{i}")
        return base.append(artifact).save().uid

    uids, errors = run_threads(n, work)
    assert errors == [], errors
    check_appended_family(base, uids, n)


CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import lineage as ln

    base_uid, storage, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ln.connect()  # NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD from the environment
    ln.settings.storage = storage
    src = Path(storage).parent / "src-{}".format(tag)
    src.mkdir(parents=True, exist_ok=True)
    base = ln.Collection.get(base_uid)
    uids = []
    for i in range(n):
        path = src / "f{}.txt".format(i)
        path.write_text("process {} file {}\\n".format(tag, i))
        artifact = ln.Artifact(path, key="proc/{}-{}.txt".format(tag, i)).save()
        uids.append(base.append(artifact).save().uid)
    print("UIDS " + json.dumps(uids))
    """
)


def test_concurrent_appends_from_processes(storage: Path, tmp_path: Path, neo4j) -> None:
    b1 = text_artifact(tmp_path, "pb1")
    base = ln.Collection([b1], key="processes").save()
    n_procs, per_proc = 4, 3
    env = neo4j.child_env()
    script = tmp_path / "append_child.py"
    script.write_text(CHILD)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), base.uid, str(storage), f"p{k}", str(per_proc)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        for k in range(n_procs)
    ]
    uids: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        line = [ln_ for ln_ in out.splitlines() if ln_.startswith("UIDS ")][-1]
        uids += json.loads(line[len("UIDS ") :])
    check_appended_family(base, uids, n_procs * per_proc)
    # every artifact a child made is stored under its uid in the shared storage root
    files = {p.name for p in (storage / ".lineage").iterdir()}
    stored = q("MATCH (a:Artifact) RETURN a.uid + a.suffix AS f")["f"].tolist()
    assert files == set(stored)
    assert len(stored) == 1 + n_procs * per_proc


def test_concurrent_artifact_versions_from_threads(storage: Path) -> None:
    base = ln.Artifact(pd.DataFrame({"v": [0]}), key="tables/versions.parquet").save()
    n = 8
    frames = [pd.DataFrame({"v": [i + 1], "w": [f"thread {i}"]}) for i in range(n)]

    def work(i: int) -> ln.Artifact:
        return ln.Artifact(frames[i], revises=base).save()

    made, errors = run_threads(n, work)
    assert errors == [], errors
    stem = base.stem_uid
    uids = [a.uid for a in made]
    assert len(set(uids)) == n
    assert sorted(uids) == [stem + counter_string(i) for i in range(1, n + 1)]
    assert_one_latest("Artifact", stem, expected=stem + counter_string(n))

    lineage_dir = storage / ".lineage"
    files = {p.name for p in lineage_dir.iterdir()}
    nodes = q("MATCH (a:Artifact) RETURN a.uid AS uid, a.storage_path AS path, a.hash AS hash")
    expected = {f"{u}.parquet" for u in nodes["uid"]}
    # one node per file, each named after its final uid, and no orphan files
    missing = sorted(expected - files)
    orphans = sorted(files - expected)
    assert missing == [] and orphans == [], (
        f"nodes without their file: {missing}; files without a node: {orphans}"
    )
    assert len(files) == n + 1
    for uid, path, hash_ in zip(nodes["uid"], nodes["path"], nodes["hash"]):
        assert Path(path) == lineage_dir / f"{uid}.parquet"
        # the bytes under each uid are the ones that node was hashed from
        assert md5_b64(Path(path).read_bytes()) == hash_, f"{uid}: file content is not its own"
    for i, a in enumerate(made):
        assert pd.read_parquet(a.storage_path)["v"].tolist() == [i + 1]
    # no staged copies left behind
    staging = ln.settings.cache_dir / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
