"""Which samples: the rows of each artifact version a run saw through `mapped()` or `load()`,
recorded on its `USED` edges when it finishes (`ln.lineage.samples`, `ln.lineage.used_by`,
`lineage samples`), against the session's Neo4j and real h5ad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import lineage as ln
from lineage.cli import main
from lineage.errors import DoesNotExist, InvalidArgument, InvalidType, NotSaved
from loaders.rowsets import BITMAP, RANGES, decode_rows, encode_rows, rows_in
from tests.conftest import make_artifact

CELL_TYPES = np.array(["T", "B", "NK"])


def _adata(n: int, prefix: str, seed: int) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(CELL_TYPES[rng.integers(0, 3, n)])},
        index=[f"{prefix}_cell{i}" for i in range(n)],
    )
    return ad.AnnData(X=rng.random((n, 5), dtype=np.float32), obs=obs)


@pytest.fixture
def data(storage: Path) -> dict[str, Any]:
    a1, a2 = _adata(300, "p1", 1), _adata(200, "p2", 2)
    art1 = ln.Artifact(a1, key="scrna/p1.h5ad").save()
    art2 = ln.Artifact(a2, key="scrna/p2.h5ad").save()
    collection = ln.Collection([art1, art2], key="scrna").save()
    return {"a1": a1, "a2": a2, "art1": art1, "art2": art2, "collection": collection}


def _edges(run: ln.Run) -> dict[str, tuple[np.ndarray, int, int]]:
    """Artifact uid -> (decoded rows, n_rows, n_used) of the run's USED edges that hold rows."""
    frame = ln.cypher(
        "MATCH (:Run {uid: $run})-[e:USED]->(a:Artifact) WHERE e.rows IS NOT NULL "
        "RETURN a.uid AS uid, e.rows AS rows, e.n_rows AS n_rows, e.n_used AS n_used",
        run=run.uid,
    )
    return {
        r.uid: (decode_rows(bytes(r.rows), r.n_rows), r.n_rows, r.n_used)
        for r in frame.itertuples()
    }


def _graph_state() -> tuple[int, int, Any]:
    row = ln.cypher(
        "MATCH (n) OPTIONAL MATCH (n)-[e]->() "
        "RETURN count(DISTINCT n) AS nodes, count(e) AS edges, max(n.updated_at) AS updated"
    ).iloc[0]
    return int(row["nodes"]), int(row["edges"]), row["updated"]


def _where(adata: ad.AnnData, *types: str) -> np.ndarray:
    return np.flatnonzero(adata.obs["cell_type"].isin(types).to_numpy())


# -- the row-set codec ----------------------------------------------------------------------------
def test_row_sets_round_trip_and_answer_membership() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 1000, 100_003):
        for rows in (
            np.arange(n),
            np.array([], dtype=np.int64),
            np.array([n - 1]),
            np.flatnonzero(rng.random(n) < 0.3),
        ):
            data = encode_rows(rows, n)
            assert decode_rows(data, n).tolist() == sorted(set(rows.tolist()))
            probe = rng.integers(0, n, 50)
            assert rows_in(data, n, probe).tolist() == np.isin(probe, rows).tolist()
    assert decode_rows(encode_rows(np.array([5, 1, 5]), 10), 10).tolist() == [1, 5]
    with pytest.raises(ValueError, match=r"0\.\.9"):
        encode_rows(np.array([10]), 10)
    scattered = np.arange(0, 1000, 2)
    assert encode_rows(scattered, 1000)[0] == BITMAP  # 500 runs: the bitmap is smaller
    with pytest.raises(ValueError, match="bytes"):
        decode_rows(encode_rows(scattered, 1000), 2000)  # another file's row count
    one = encode_rows(np.array([999]), 100_000)
    assert one[0] == RANGES
    with pytest.raises(ValueError, match="holds row 999"):
        decode_rows(one, 500)
    whole = encode_rows(np.arange(1_000_000), 1_000_000)
    assert whole[0] == RANGES and len(whole) < 50  # a whole file: one range
    # Never more than one bit per row (and the encoding byte), whatever the selection.
    for rows in (scattered, np.flatnonzero(rng.random(1000) < 0.5), np.arange(1000)):
        assert len(encode_rows(rows, 1000)) <= 126


# -- recording --------------------------------------------------------------------------------------
def test_mapped_with_obs_filter_records_exactly_the_filtered_rows(data: dict[str, Any]) -> None:
    run = ln.track("train.py")
    with data["collection"].mapped(obs_keys="cell_type", obs_filter={"cell_type": ("T", "NK")}):
        pass
    assert _edges(run) == {}  # nothing is written before the run finishes
    ln.finish()
    edges = _edges(run)
    assert set(edges) == {data["art1"].uid, data["art2"].uid}
    for key, art in (("a1", "art1"), ("a2", "art2")):
        rows, n_rows, n_used = edges[data[art].uid]
        expected = _where(data[key], "T", "NK")
        assert rows.tolist() == expected.tolist()
        assert (n_rows, n_used) == (data[key].n_obs, len(expected))
    # The collection stays an input too, and the run has no other USED edges.
    inputs = ln.cypher(
        "MATCH (:Run {uid: $run})-[:USED]->(x) RETURN x.uid AS uid ORDER BY uid", run=run.uid
    )["uid"].tolist()
    assert inputs == sorted([data["collection"].uid, data["art1"].uid, data["art2"].uid])


def test_two_reads_in_one_run_add_up_and_a_queryset_maps_too(data: dict[str, Any]) -> None:
    run = ln.track("train.py")
    qs = ln.Artifact.filter(key="scrna/p1.h5ad")
    qs.mapped(obs_keys="cell_type", obs_filter={"cell_type": "T"}).close()
    qs.mapped(obs_keys="cell_type", obs_filter={"cell_type": "B"}).close()
    ln.finish()
    rows, _, n_used = _edges(run)[data["art1"].uid]
    assert rows.tolist() == _where(data["a1"], "T", "B").tolist()
    assert n_used == len(rows) and set(_edges(run)) == {data["art1"].uid}


def test_load_records_all_rows(data: dict[str, Any], storage: Path) -> None:
    run = ln.track("load.py")
    data["art1"].load()
    ln.finish()
    assert {u: (r.tolist(), n, k) for u, (r, n, k) in _edges(run).items()} == {
        data["art1"].uid: (list(range(300)), 300, 300)
    }
    run2 = ln.track("load-all.py")
    data["collection"].load(join="inner")
    make_artifact(storage, "notes.txt").load()  # not AnnData: no rows
    ln.finish()
    edges = _edges(run2)
    assert {u: (len(r), n, k) for u, (r, n, k) in edges.items()} == {
        data["art1"].uid: (300, 300, 300),
        data["art2"].uid: (200, 200, 200),
    }


def test_samples_round_trip_indices_and_obs_names(data: dict[str, Any], storage: Path) -> None:
    run = ln.track("train.py")
    data["collection"].mapped(obs_filter={"cell_type": "B"}).close()
    model = make_artifact(storage, "models/model.txt")
    ln.finish()
    found = ln.lineage.samples(run)
    assert isinstance(found, ln.lineage.Samples) and found.run == run.uid
    assert [a.uid for a in found] == [data["art1"].uid, data["art2"].uid]  # by key
    for part, key in zip(found, ("a1", "a2"), strict=True):
        expected = _where(data[key], "B")
        assert part.rows.tolist() == expected.tolist()
        assert part.obs_names == data[key].obs_names[expected].tolist()
        assert part.n_rows == data[key].n_obs and len(part) == len(expected)
    assert len(found) == sum(len(a) for a in found)
    # Asked through the output, the same answer; JSON and a frame agree.
    assert ln.lineage.samples(model).to_dict() == found.to_dict()
    out = json.loads(json.dumps(found.to_dict()))
    assert out["artifacts"][0]["obs_names"] == found.artifacts[0].obs_names
    frame = found.df()
    assert len(frame) == len(found) and list(frame.columns) == [
        "artifact", "key", "version", "row", "obs_name",
    ]  # fmt: skip
    assert repr(found).startswith(f"Samples(run {run.uid}: {len(found)} rows of 2 artifacts)")
    # A run that saw nothing through mapped/load has no samples.
    empty = ln.track("nothing.py")
    ln.finish()
    assert len(ln.lineage.samples(empty)) == 0 and ln.lineage.samples(empty).df().empty


def test_used_by_finds_the_runs_and_their_outputs_and_not_other_runs(
    data: dict[str, Any], storage: Path
) -> None:
    a1 = data["a1"]
    t_cell = a1.obs_names[_where(a1, "T")[0]]
    b_cell = a1.obs_names[_where(a1, "B")[0]]
    run_t = ln.track("train-t.py")
    data["collection"].mapped(obs_filter={"cell_type": "T"}).close()
    model_t = make_artifact(storage, "models/t.txt")
    ln.finish()
    run_b = ln.track("train-b.py")
    data["collection"].mapped(obs_filter={"cell_type": "B"}).close()
    model_b = make_artifact(storage, "models/b.txt")
    ln.finish()
    reader = ln.track("reads-only.py")  # read the file without mapped/load: no rows known
    data["art1"].cache()
    ln.finish()

    found = ln.lineage.used_by(data["art1"], obs=[t_cell])
    assert [r.run for r in found] == [run_t.uid]
    assert run_t in found and model_t in found and run_b not in found and model_b not in found
    assert reader not in found
    hit = found.runs[0]
    assert (hit.obs, hit.artifacts, hit.transform) == ([t_cell], [data["art1"].uid], "train-t.py")
    assert [o.uid for o in hit.outputs] == [model_t.uid]

    both = ln.lineage.used_by(data["art1"], obs=[b_cell, t_cell, t_cell])
    assert both.obs == [b_cell, t_cell]  # repeats asked once
    assert [(r.run, r.obs) for r in both] == [(run_t.uid, [t_cell]), (run_b.uid, [b_cell])]
    assert {o.uid for o in both.outputs} == {model_t.uid, model_b.uid}
    assert len(both.df()) == 2 and json.loads(json.dumps(both.to_dict()))["obs"] == both.obs

    # Through the collection: its members' obs names, each file's own rows.
    a2 = data["a2"]
    p2_b = a2.obs_names[_where(a2, "B")[0]]
    via = ln.lineage.used_by(data["collection"], obs=p2_b)
    assert [r.run for r in via] == [run_b.uid] and via.runs[0].artifacts == [data["art2"].uid]

    # A run in the trash is left out.
    run_b.delete()
    assert [r.run for r in ln.lineage.used_by(data["art1"], obs=[b_cell, t_cell])] == [run_t.uid]


def test_a_new_version_of_the_artifact_does_not_confuse_it(data: dict[str, Any]) -> None:
    v1 = data["art1"]
    run1 = ln.track("train.py")
    v1.load()
    ln.finish()
    changed = data["a1"].copy()
    changed.X = changed.X * 2
    v2 = ln.Artifact(changed, key="scrna/p1.h5ad", revises=v1).save()
    assert v2.uid != v1.uid and v2.stem_uid == v1.stem_uid
    run2 = ln.track("train.py")
    ln.Artifact.filter(uid=v2.uid).mapped(obs_filter={"cell_type": "NK"}).close()
    ln.finish()
    name = data["a1"].obs_names[_where(data["a1"], "NK")[0]]  # in both versions' files
    assert [r.run for r in ln.lineage.used_by(v1, obs=[name])] == [run1.uid]
    assert [r.run for r in ln.lineage.used_by(v2, obs=[name])] == [run2.uid]
    assert [a.uid for a in ln.lineage.samples(run1)] == [v1.uid]
    assert [a.uid for a in ln.lineage.samples(run2)] == [v2.uid]
    assert ln.lineage.samples(run1).artifacts[0].version == v1.version


# -- bad input, and nothing recorded without a run ---------------------------------------------------
def test_bad_input_is_a_clear_error_and_writes_nothing(data: dict[str, Any], storage: Path) -> None:
    run = ln.track("train.py")
    data["art1"].load()
    ln.finish()
    orphan = make_artifact(storage, "orphan.txt")
    trashed = make_artifact(storage, "trashed.txt")
    trashed.delete()
    before = _graph_state()
    with pytest.raises(DoesNotExist, match="no obs named 'nope', 'nada'"):
        ln.lineage.used_by(data["art1"], obs=["p1_cell0", "nope", "nada"])
    with pytest.raises(DoesNotExist, match="no obs named 'p2_cell0'"):
        ln.lineage.used_by(data["art1"], obs="p2_cell0")  # another file's cell
    with pytest.raises(InvalidArgument, match="at least one obs name"):
        ln.lineage.used_by(data["art1"], obs=[])
    with pytest.raises(InvalidType, match="obs names"):
        ln.lineage.used_by(data["art1"], obs=[1, 2])
    with pytest.raises(InvalidType, match="obs names"):
        ln.lineage.used_by(data["art1"], obs=3)  # type: ignore[arg-type]
    unsaved = ln.Artifact(_adata(10, "u", 9), key="scrna/unsaved.h5ad")
    with pytest.raises(NotSaved):
        ln.lineage.used_by(unsaved, obs=["p1_cell0"])
    with pytest.raises(NotSaved):
        ln.lineage.samples(ln.Run(ln.Transform(key="x.py")))
    with pytest.raises(InvalidArgument, match="in the trash"):
        ln.lineage.used_by(trashed, obs=["a"])
    with pytest.raises(InvalidArgument, match="in the trash"):
        ln.lineage.samples(trashed)
    with pytest.raises(InvalidArgument, match="Artifact or a Collection"):
        ln.lineage.used_by(run, obs=["p1_cell0"])
    with pytest.raises(InvalidType, match="not a Transform"):
        ln.lineage.samples(run.transform)
    with pytest.raises(InvalidArgument, match="made by no run"):
        ln.lineage.samples(orphan)
    with pytest.raises(InvalidArgument, match="takes Artifact, Collection, Run or Transform"):
        ln.lineage.samples("not a record")  # type: ignore[arg-type]
    assert _graph_state() == before


def test_nothing_recorded_without_a_run(data: dict[str, Any]) -> None:
    assert ln.context.run is None
    data["collection"].mapped(obs_filter={"cell_type": "T"}).close()
    data["art1"].load()
    run = ln.track("train.py")
    ln.finish()
    assert _edges(run) == {}
    # With a run, but the read is not its input (is_run_input=False): no rows either.
    run2 = ln.track("train.py")
    data["collection"].mapped(obs_filter={"cell_type": "T"}, is_run_input=False).close()
    data["art1"].load(is_run_input=False)
    ln.finish()
    assert _edges(run2) == {}
    # A run that is never finished writes nothing; the next run starts clean.
    run3 = ln.track("crashed.py")
    data["art1"].load()
    run4 = ln.track("next.py")
    ln.finish()
    assert _edges(run3) == {} and _edges(run4) == {}
    rows = ln.cypher("MATCH ()-[e:USED]->() WHERE e.rows IS NOT NULL RETURN count(e) AS n")
    assert rows["n"].tolist() == [0]


# -- CLI --------------------------------------------------------------------------------------------


def test_cli_samples(data: dict[str, Any], cli_env: None, capsys) -> None:
    run = ln.track("train.py")
    data["collection"].mapped(obs_filter={"cell_type": "NK"}).close()
    ln.finish()
    assert main(["samples", run.uid, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == ln.lineage.samples(run).to_dict()
    assert out["artifacts"][0]["rows"] == _where(data["a1"], "NK").tolist()
    assert main(["samples", run.uid]) == 0
    assert capsys.readouterr().out.startswith(f"Samples(run {run.uid}:")
    assert main(["samples", "nope"]) == 1
    assert "no record with uid 'nope'" in capsys.readouterr().err
