"""docs/cypher-cookbook.md is executed: every recipe's query must be a constant of
graph/cookbook.py, and every recipe runs on the demo graph and gives the answer the page says."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

import lineage as ln
import lineage.demo
from graph import cookbook
from tests.conftest import Neo4jUnderTest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cypher-cookbook.md"


@dataclass(frozen=True)
class Recipe:
    title: str
    cypher: str
    python: str

    @property
    def constant(self) -> str:
        """The graph.cookbook name the Python call passes to `ln.cypher`."""
        found = re.search(r"ln\.cypher\(\s*([A-Z_][A-Z0-9_]*)", self.python)
        assert found, f"{self.title}: the python block calls no ln.cypher(CONSTANT, ...)"
        return found.group(1)


def _parse(text: str) -> tuple[list[str], list[Recipe]]:
    """The page's set-up blocks (python before the first cypher block) and its recipes (a
    cypher block, then the python block that runs it)."""
    setup: list[str] = []
    recipes: list[Recipe] = []
    title, pending = "", None
    token = re.compile(r"^## ([^\n]+)$|^```(\w*)\n(.*?)^```", flags=re.M | re.S)
    for m in token.finditer(text):
        if m.group(1) is not None:
            title = m.group(1).strip()
            continue
        lang, body = m.group(2), m.group(3)
        if lang == "cypher":
            assert pending is None, f"{title}: two cypher blocks without a python block between"
            pending = body
        elif lang == "python":
            if pending is not None:
                recipes.append(Recipe(title, pending, body))
                pending = None
            elif not recipes:
                setup.append(body)
            else:
                raise AssertionError(f"{title}: a python block with no cypher block above it")
    assert pending is None, f"{title}: a cypher block with no python block under it"
    return setup, recipes


SETUP, RECIPES = _parse(PAGE.read_text())


def _run_block(block: str, namespace: dict[str, Any], where: str) -> Any:
    """Execute a block; return the value of its last statement when that is an expression."""
    tree = ast.parse(block, filename=where)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, where, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), where, "eval"), namespace)


# -- the page and the module agree (no database) ------------------------------------------------


def test_page_has_at_least_ten_recipes_and_a_setup() -> None:
    assert len(RECIPES) >= 10
    assert SETUP, "the page needs its set-up block before the first recipe"


def test_every_recipe_is_a_cookbook_constant_verbatim() -> None:
    for recipe in RECIPES:
        name = recipe.constant
        assert hasattr(cookbook, name), f"{recipe.title}: graph.cookbook has no {name}"
        assert recipe.cypher.strip() == getattr(cookbook, name).strip(), (
            f"{recipe.title}: the cypher block differs from graph.cookbook.{name}"
        )


def test_the_module_lists_exactly_the_pages_recipes_in_order() -> None:
    assert [r.constant for r in RECIPES] == list(cookbook.RECIPES)
    assert set(cookbook.RECIPES) <= set(cookbook.__all__)


def test_recipes_take_values_as_parameters() -> None:
    # Quoted literals would be values pasted into the query; the recipes only use fixed
    # structural strings (a separator, the diff's change names).
    allowed = {"':'", "'added'", "'removed'"}
    for name in cookbook.RECIPES:
        literals = set(re.findall(r"'[^']*'|\"[^\"]*\"", getattr(cookbook, name)))
        assert literals <= allowed, f"{name} has literal values {literals - allowed}"


def test_the_demo_queries_are_still_exported() -> None:
    # lineage/demo.py prints these three.
    for name in ("VERSION_FAMILY", "RUN_INPUTS_AND_OUTPUTS", "UPSTREAM"):
        assert isinstance(getattr(cookbook, name), str)


# -- every recipe on the demo graph ---------------------------------------------------------------


def _uids(df: pd.DataFrame, column: str = "uid") -> set[str]:
    return set(df[column])


def _check_upstream(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    depth = dict(zip(df["uid"], df["depth"]))
    summary = ns["summary"]
    made_from = {ns["run"].uid, ns["run"].transform.uid, ns["latest"].uid}
    made_from |= {a.uid for a in ns["latest"].ordered_artifacts}
    made_from.add(ns["latest"].meta_artifact.uid)
    assert made_from <= set(depth), f"missing {made_from - set(depth)}"
    assert depth[ns["run"].uid] == 1
    assert depth[ns["latest"].uid] == 2
    # Not upstream: the start itself, the first version (no run read it for this), later work.
    assert not {summary.uid, ns["first"].uid, ns["report"].uid, ns["rerun"].uid} & set(depth)
    assert list(df["depth"]) == sorted(df["depth"])
    assert df.loc[df["uid"] == ns["latest"].uid, "label"].item() == "Collection"
    assert df.loc[df["uid"] == ns["latest"].uid, "name"].item() == "demo/scrna"


def _check_downstream(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    found = _uids(df)
    affected = {ns[n].uid for n in ("first", "latest", "run", "rerun", "summary", "report", "qc",
                                    "results")}  # fmt: skip
    assert affected <= found, f"missing {affected - found}"
    batch2 = ln.Artifact.get(key="demo/batch2.h5ad")
    samples = ln.Artifact.get(key="demo/samples.parquet")
    assert not {ns["batch1"].uid, batch2.uid, samples.uid, ns["scratch"].uid} & found
    depth = dict(zip(df["uid"], df["depth"]))
    assert depth[ns["first"].uid] == depth[ns["latest"].uid] == 1
    assert depth[ns["results"].uid] > depth[ns["summary"].uid]


def _check_runs_using_collection(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    first, latest, run, rerun = (ns[n].uid for n in ("first", "latest", "run", "rerun"))
    assert set(zip(df["run"], df["collection"])) == {(run, latest), (rerun, first), (rerun, latest)}
    assert set(df["transform"]) == {"demo-pipeline"}
    assert dict(zip(df["collection"], df["latest_version"])) == {first: False, latest: True}
    assert list(df["started_at"]) == sorted(df["started_at"])
    assert df["run"].iloc[0] == run  # the demo run started first


def _check_member_producers(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    rows = list(zip(df["position"], df["artifact"], df["transform"], df["run"]))
    assert rows == [
        (0, "demo/cell_counts.parquet", "demo-pipeline", ns["run"].uid),
        (1, "demo/report.parquet", "demo-pipeline", ns["rerun"].uid),
    ]
    # Members registered outside any run have no producer.
    by_hand = ln.cypher(cookbook.MEMBER_PRODUCERS, uid=ns["latest"].uid)
    assert list(by_hand["artifact"]) == ["demo/batch1.h5ad", "demo/batch2.h5ad"]
    assert by_hand["transform"].isna().all() and by_hand["run"].isna().all()


def _check_collection_diff(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    batch1, batch2 = ns["batch1"], ln.Artifact.get(key="demo/batch2.h5ad")
    row = df.iloc[0]
    assert len(df) == 1
    assert [list(x) for x in row["added"]] == [[1, batch2.uid, "demo/batch2.h5ad"]]
    assert list(row["removed"]) == []
    assert list(row["old_members"]) == [batch1.uid]
    assert list(row["new_members"]) == [batch1.uid, batch2.uid]
    assert list(row["old_meta"]) == list(row["new_meta"]) == [ns["first"].meta_artifact.uid]
    changed = {name: (old, new) for name, old, new in row["fields"]}
    assert changed["uid"] == (ns["first"].uid, ns["latest"].uid)
    assert changed["hash"] == (ns["first"].hash, ns["latest"].hash)
    assert "key" not in changed and "description" not in changed
    back = ln.cypher(cookbook.COLLECTION_DIFF, old=ns["latest"].uid, new=ns["first"].uid).iloc[0]
    assert [list(x) for x in back["removed"]] == [[1, batch2.uid, "demo/batch2.h5ad"]]
    same = ln.cypher(cookbook.COLLECTION_DIFF, old=ns["latest"].uid, new=ns["latest"].uid)
    assert list(same.iloc[0]["fields"]) == [] and list(same.iloc[0]["added"]) == []
    assert ln.cypher(cookbook.COLLECTION_DIFF, old="no-such-uid", new=ns["latest"].uid).empty
    # What ln.lineage.diff makes of it.
    assert [m.uid for m in ln.lineage.diff(ns["first"], ns["latest"]).added] == [batch2.uid]


def _check_artifacts_in_no_collection(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    keys = set(df["key"])
    assert "demo/qc.parquet" in keys
    collected = {"demo/batch1.h5ad", "demo/batch2.h5ad", "demo/samples.parquet",
                 "demo/cell_counts.parquet", "demo/report.parquet"}  # fmt: skip
    assert not collected & keys  # members and the metadata artifact are in a collection
    assert "demo/scratch.parquet" not in keys  # trashed, and in a collection anyway
    trashed = ln.cypher(cookbook.ARTIFACTS_IN_NO_COLLECTION, branch=-1)
    assert "demo/scratch.parquet" not in set(trashed["key"])


def _check_latest_versions(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    rows = {(label, key): (uid, n) for label, key, uid, n in
            zip(df["label"], df["key"], df["uid"], df["versions"])}  # fmt: skip
    assert len(rows) == len(df), "one row per family"
    assert rows[("Collection", "demo/scrna")] == (ns["latest"].uid, 2)
    assert rows[("Transform", "demo-pipeline")] == (ns["run"].transform.uid, 1)
    assert rows[("Artifact", "demo/cell_counts.parquet")] == (ns["summary"].uid, 1)
    assert ("Collection", "demo/scratch") in rows
    assert ("Artifact", "demo/scratch.parquet") not in rows  # in the trash
    assert all(key.startswith("demo") for key in df["key"])
    assert ln.cypher(cookbook.LATEST_VERSIONS, prefix="no-such-prefix/").empty


def _check_longest_chain(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert 1 <= len(df) <= 5
    assert list(df["hops"]) == sorted(df["hops"], reverse=True)
    top = list(df["chain"].iloc[0])
    assert df["hops"].iloc[0] == 6 and len(top) == 7
    assert top[:4] == [
        "Collection:demo/results",
        "Artifact:demo/report.parquet",
        f"Run:{ns['rerun'].uid}",
        "Artifact:demo/cell_counts.parquet",
    ]
    assert top[4:6] == [f"Run:{ns['run'].uid}", "Collection:demo/scrna"]
    assert top[6] in {"Artifact:demo/batch1.h5ad", "Artifact:demo/batch2.h5ad",
                      "Artifact:demo/samples.parquet"}  # fmt: skip


def _check_runs_in_window(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert list(df["run"]) == [ns["run"].uid, ns["rerun"].uid]
    assert set(df["status"]) == {"completed"}
    assert df["params"].iloc[1] == '{"compare_versions": true}'  # the set-up's run
    past = ln.cypher(cookbook.RUNS_IN_WINDOW, key="demo-pipeline", since="2020-01-01",
                     until="2021-01-01")  # fmt: skip
    assert past.empty
    # Half-open: a window that ends where the second run started holds the first run only.
    until = ns["rerun"].started_at.isoformat()
    assert list(ln.cypher(cookbook.RUNS_IN_WINDOW, key="demo-pipeline", since="2020-01-01",
                          until=until)["run"]) == [ns["run"].uid]  # fmt: skip


def _check_created_by_user(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    made = {ns[n].uid for n in ("first", "latest", "batch1", "summary", "run", "rerun", "report",
                                "qc", "results", "scratch")}  # fmt: skip
    assert made <= _uids(df), f"missing {made - _uids(df)}"
    assert list(df["created_at"]) == sorted(df["created_at"], reverse=True)
    assert df.loc[df["uid"] == ns["scratch"].uid, "branch"].item() == -1
    assert ln.cypher(cookbook.CREATED_BY_USER, handle="nobody-at-all").empty


def _check_version_family(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert list(df["collection"]) == [ns["first"].uid, ns["latest"].uid]
    assert list(df["is_latest"]) == [False, True]
    assert list(df["revises"].fillna("")) == ["", ns["first"].uid]
    assert [list(a) for a in df["artifacts"]] == [
        ["demo/batch1.h5ad"],
        ["demo/batch1.h5ad", "demo/batch2.h5ad"],
    ]


def _check_run_inputs_and_outputs(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert len(df) == 1 and df["transform"].item() == "demo-pipeline"
    assert sorted(df["inputs"].item()) == ["demo/cell_counts.parquet", "demo/scrna"]
    assert sorted(df["outputs"].item()) == ["demo/qc.parquet", "demo/report.parquet"]


def _check_collections_with_trashed_artifacts(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    scratch_collection = ln.Collection.get(key="demo/scratch")
    assert list(zip(df["collection"], df["uid"], df["artifact_uid"], df["role"])) == [
        ("demo/scratch", scratch_collection.uid, ns["scratch"].uid, "CONTAINS")
    ]


def _check_shared_inputs(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert list(zip(df["label"], df["uid"], df["name"])) == [
        ("Collection", ns["latest"].uid, "demo/scrna")
    ]
    flipped = ln.cypher(cookbook.SHARED_INPUTS, run_a=ns["rerun"].uid, run_b=ns["run"].uid)
    assert list(flipped["uid"]) == list(df["uid"])


def _check_stale(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    rerun, first, latest = ns["rerun"].uid, ns["first"].uid, ns["latest"].uid
    assert list(zip(df["key"], df["run"], df["used"], df["latest"], df["used_trashed"])) == [
        ("demo/qc.parquet", rerun, first, latest, False),
        ("demo/report.parquet", rerun, first, latest, False),
    ]
    assert set(df["transform"]) == {"demo-pipeline"}
    assert ln.cypher(cookbook.STALE, key="demo/qc")["key"].tolist() == ["demo/qc.parquet"]
    assert len(ln.cypher(cookbook.STALE, key=None)) >= 2
    # What ln.lineage.stale makes of it.
    assert [r.key for r in ln.lineage.stale(key="demo/")] == list(df["key"])


def _check_impact(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    rows = {(depth, uid) for depth, uid in zip(df["depth"], df["uid"])}
    assert rows == {
        (0, ns["first"].uid), (0, ns["latest"].uid),
        (1, ns["run"].uid), (1, ns["rerun"].uid), (1, ns["summary"].uid),
        (1, ns["report"].uid), (1, ns["qc"].uid), (1, ns["results"].uid),
    }  # fmt: skip
    assert list(df["depth"]) == sorted(df["depth"])
    made = dict(zip(df["uid"], df["transform"]))
    assert made[ns["report"].uid] == made[ns["run"].uid] == "demo-pipeline"
    assert made[ns["results"].uid] is None  # made outside a run
    assert set(df["created_by"]) == {ln.settings.user}
    one_level = ln.cypher(cookbook.IMPACT, uids=[ns["batch1"].uid], depth=0)
    assert set(one_level["uid"]) == {ns["first"].uid, ns["latest"].uid}
    impact = ln.lineage.impact(ns["batch1"])
    assert {(r.depth, r.uid) for r in impact} == rows


def _check_run_diff(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    row = df.iloc[0]
    changed = {name: (old, new) for name, old, new in row["fields"]}
    assert changed["params"] == ('{"min_cells": 10}', '{"compare_versions": true}')
    assert {"started_at", "uid", "id"} <= set(changed)
    assert list(row["old_transform"]) == list(row["new_transform"])
    # The demo's run loaded the latest collection: the collection and, for the rows it read,
    # the member versions are its inputs (`USED`).
    batch2 = ln.Artifact.get(key="demo/batch2.h5ad")
    assert {x[1] for x in row["old_inputs"]} == {ns["latest"].uid, ns["batch1"].uid, batch2.uid}
    assert {x[1] for x in row["new_inputs"]} == {
        ns["first"].uid, ns["latest"].uid, ns["summary"].uid,
    }  # fmt: skip
    assert [x[2] for x in row["old_outputs"]] == ["demo/cell_counts.parquet"]
    assert sorted(x[2] for x in row["new_outputs"]) == ["demo/qc.parquet", "demo/report.parquet"]
    change = ns["rerun"].diff()
    assert change.old == ns["run"].uid and change.transform is None
    assert change.params.added == {"compare_versions": True}


def _check_artifact_diff(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    batch2 = ln.Artifact.get(key="demo/batch2.h5ad")
    row = df.iloc[0]
    changed = {name: (old, new) for name, old, new in row["fields"]}
    assert changed["key"] == ("demo/batch1.h5ad", "demo/batch2.h5ad")
    assert changed["hash"] == (ns["batch1"].hash, batch2.hash)
    assert "n_observations" not in changed and "suffix" not in changed  # 60 cells each
    assert list(row["old_file"]) == [ns["batch1"].storage_path, ".h5ad", ns["batch1"].hash]
    content = ln.lineage.diff(ns["batch1"], batch2).content
    assert content.shape is None and len(content.obs_names.added) == 60


def _check_run_rows(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert list(df["key"]) == ["demo/batch1.h5ad", "demo/batch2.h5ad"]
    assert list(df["n_rows"]) == list(df["n_used"]) == [60, 60]  # load() read every row
    seen = ln.lineage.samples(ns["run"])
    assert [(a.key, a.rows.tolist()) for a in seen] == [(key, list(range(60))) for key in df["key"]]


def _check_runs_using_labeled_data(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    run, rerun = ns["run"].uid, ns["rerun"].uid
    assert list(df["run"]) == [run, rerun]  # in start order
    assert set(df["transform"]) == {"demo-pipeline"}
    inputs = {r: sorted(i) for r, i in zip(df["run"], df["inputs"])}
    assert inputs == {run: ["demo/batch2.h5ad", "demo/scrna"], rerun: ["demo/scrna"]}
    # A plain label (no feature) is found the same way; a label nothing carries finds nothing.
    assert list(ln.cypher(cookbook.RUNS_USING_LABELED_DATA, label="scrna-seq")["run"]) == [
        run, rerun,
    ]  # fmt: skip
    ln.ULabel(name="unused").save()
    assert ln.cypher(cookbook.RUNS_USING_LABELED_DATA, label="unused").empty
    assert ln.cypher(cookbook.RUNS_USING_LABELED_DATA, label="no-such-label").empty


def _check_trained_only_on(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    qc = ns["models"]["qc"]
    assert list(zip(df["model"], df["uid"], df["run"], df["transform"], df["trained_on"])) == [
        ("demo/model_qc.parquet", qc.uid, qc.run.uid, "demo-train", 2)
    ]
    # No run read only failed tables; every run read a table that passed.
    assert ln.cypher(cookbook.TRAINED_ONLY_ON, feature="qc_passed", value=False).empty
    # A categorical value is a label's name: both batches were read by runs that also read
    # the other tissue, and by the collections that hold both.
    assert ln.cypher(cookbook.TRAINED_ONLY_ON, feature="tissue", value="blood").empty
    assert ln.cypher(cookbook.TRAINED_ONLY_ON, feature="no-such-feature", value=True).empty
    # A model of a run that read only the blood batch, through a collection holding only it.
    blood = ln.Collection([ns["batch1"]], key="demo/blood-only").save()
    ln.track("demo-train")
    ln.Collection.get(blood.uid, is_run_input=True)
    model = ln.Artifact.from_dataframe(
        pd.DataFrame({"weight": [9]}), key="demo/model_blood.parquet"
    ).save()
    ln.finish()
    found = ln.cypher(cookbook.TRAINED_ONLY_ON, feature="tissue", value="blood")
    assert list(zip(found["model"], found["trained_on"])) == [(model.key, 1)]


def _check_member_label_counts(df: pd.DataFrame, ns: dict[str, Any]) -> None:
    assert list(zip(df["label"], df["artifacts"])) == [("scrna-seq", 2), ("blood", 1), ("lung", 1)]
    assert df["uid"].iloc[0] == ln.ULabel.get(name="scrna-seq").uid
    tissue = ln.cypher(cookbook.MEMBER_LABEL_COUNTS, uid=ns["latest"].uid, feature="tissue")
    assert list(zip(tissue["label"], tissue["artifacts"])) == [("blood", 1), ("lung", 1)]
    first = ln.cypher(cookbook.MEMBER_LABEL_COUNTS, uid=ns["first"].uid, feature=None)
    assert list(zip(first["label"], first["artifacts"])) == [("blood", 1), ("scrna-seq", 1)]
    assert ln.cypher(cookbook.MEMBER_LABEL_COUNTS, uid=ns["latest"].uid, feature="nope").empty
    # What collection.label_counts makes of it.
    assert ns["latest"].label_counts().equals(df)


CHECKS: dict[str, Callable[[pd.DataFrame, dict[str, Any]], None]] = {
    "UPSTREAM": _check_upstream,
    "DOWNSTREAM": _check_downstream,
    "RUNS_USING_COLLECTION": _check_runs_using_collection,
    "MEMBER_PRODUCERS": _check_member_producers,
    "COLLECTION_DIFF": _check_collection_diff,
    "ARTIFACTS_IN_NO_COLLECTION": _check_artifacts_in_no_collection,
    "LATEST_VERSIONS": _check_latest_versions,
    "LONGEST_CHAIN": _check_longest_chain,
    "RUNS_IN_WINDOW": _check_runs_in_window,
    "CREATED_BY_USER": _check_created_by_user,
    "VERSION_FAMILY": _check_version_family,
    "RUN_INPUTS_AND_OUTPUTS": _check_run_inputs_and_outputs,
    "COLLECTIONS_WITH_TRASHED_ARTIFACTS": _check_collections_with_trashed_artifacts,
    "SHARED_INPUTS": _check_shared_inputs,
    "STALE": _check_stale,
    "IMPACT": _check_impact,
    "RUN_DIFF": _check_run_diff,
    "ARTIFACT_DIFF": _check_artifact_diff,
    "RUN_ROWS": _check_run_rows,
    "RUNS_USING_LABELED_DATA": _check_runs_using_labeled_data,
    "TRAINED_ONLY_ON": _check_trained_only_on,
    "MEMBER_LABEL_COUNTS": _check_member_label_counts,
}


def test_every_recipe_has_an_expected_answer() -> None:
    missing = [r.constant for r in RECIPES if r.constant not in CHECKS]
    assert missing == [], f"add a check to CHECKS in tests/test_cookbook.py for {missing}"


def test_every_recipe_answers_on_the_demo_graph(
    storage: Path,
    neo4j: Neo4jUnderTest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The demo and the page call `ln.connect()` with no arguments: point it at the session's Neo4j.
    for name, value in neo4j.child_env().items():
        if name.startswith("NEO4J_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # whatever the demo writes to the working directory lands here
    lineage.demo.run_demo()
    capsys.readouterr()

    namespace: dict[str, Any] = {}
    for i, block in enumerate(SETUP):
        _run_block(block, namespace, f"{PAGE.name}[set-up {i}]")

    failures: list[str] = []
    for recipe in RECIPES:
        name = recipe.constant
        try:
            df = _run_block(recipe.python, namespace, f"{PAGE.name}[{recipe.title}]")
            assert isinstance(df, pd.DataFrame), f"the block's last line gave {type(df).__name__}"
            assert not df.empty, "no rows"
            CHECKS[name](df, namespace)
        except Exception as exc:  # collect all, so one run names every recipe that is wrong
            failures.append(f"{recipe.title} ({name}): {exc!r}")
    assert failures == [], "\n".join(failures)
