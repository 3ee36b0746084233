"""graph.query: lookups compiled to parameterised Cypher, run against a real Neo4j."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from graph.errors import FieldValidationError
from graph.query import (
    Anchor,
    Q,
    Select,
    compile_fetch,
    compile_select,
    count,
    exists,
    fetch,
    search,
    search_fields,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
class Batch:
    """Test data written in one transaction (one commit instead of one per statement)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, dict]] = []

    def node(self, label: str, id: int, **props: Any) -> str:
        uid = props.pop("uid", f"{label[:2].lower()}{id:04d}")
        props = {"branch": 1, "created_at": T0 + timedelta(days=id), **props, "uid": uid, "id": id}
        self.statements.append((f"CREATE (n:`{label}`) SET n = $props", {"props": props}))
        return uid

    def edge(self, src: tuple[str, str], rel: str, dst: tuple[str, str], **props: Any) -> None:
        self.statements.append(
            (
                f"MATCH (a:`{src[0]}` {{uid: $a}}), (b:`{dst[0]}` {{uid: $b}}) "
                f"CREATE (a)-[r:`{rel}`]->(b) SET r = $props",
                {"a": src[1], "b": dst[1], "props": props},
            )
        )

    def write(self, conn: Any) -> None:
        def work(tx: Any) -> None:
            for query, params in self.statements:
                tx.run(query, params).consume()

        conn.write(work)
        self.statements.clear()


def node(conn: Any, label: str, id: int, **props: Any) -> str:
    batch = Batch()
    uid = batch.node(label, id, **props)
    batch.write(conn)
    return uid


@pytest.fixture
def graph(db: Any) -> Any:
    """A small lineage graph (ids chosen so id order differs from position order)."""
    c = db.connection
    b = Batch()
    b.node("User", 1, name="alice", handle="al")
    b.node("User", 2, name="bob", handle="bo")
    b.node("Transform", 1, key="pipelines/train.py", kind="pipeline", is_latest=True)
    b.node("Transform", 2, key="notebooks/explore.ipynb", kind="notebook", is_latest=False)
    b.node("Run", 1, name="train-1", status="done")
    b.node("Run", 2, name="explore", status="done")
    b.node("Run", 3, name="orphan")
    arts = [
        (1, dict(key="data/a.csv", suffix=".csv", size=10, is_latest=True, description="first")),
        (2, dict(key="data/b.parquet", suffix=".parquet", size=20, is_latest=True)),
        (3, dict(key="Data/C.CSV", suffix=".CSV", size=30, is_latest=False)),
        (4, dict(key="models/m.pt", is_latest=True)),  # no suffix, no size
        (5, dict(key="data/trashed.csv", suffix=".csv", size=50, branch=-1)),
        (6, dict(key="archive/x.csv", suffix=".csv", size=60, branch=0)),
    ]
    for i, props in arts:
        b.node("Artifact", i, **props)
    b.node("Collection", 1, key="collection-one", is_latest=True)
    b.node("Collection", 2, key="second", is_latest=True)
    b.node("Collection", 3, key="trashed-collection", branch=-1)
    A = lambda i: ("Artifact", f"ar{i:04d}")  # noqa: E731
    R = lambda i: ("Run", f"ru{i:04d}")  # noqa: E731
    C = lambda i: ("Collection", f"co{i:04d}")  # noqa: E731
    b.edge(R(1), "EXECUTES", ("Transform", "tr0001"))
    b.edge(R(2), "EXECUTES", ("Transform", "tr0002"))
    b.edge(R(1), "CREATED_BY", ("User", "us0001"))
    for i, run in ((1, 1), (2, 1), (3, 2), (5, 2)):
        b.edge(A(i), "GENERATED_BY", R(run))
    b.edge(A(1), "CREATED_BY", ("User", "us0001"))
    b.edge(A(2), "CREATED_BY", ("User", "us0002"))
    for pos, i in enumerate((3, 1, 2)):  # positions differ from id order
        b.edge(C(1), "CONTAINS", A(i), position=pos)
    b.edge(C(2), "CONTAINS", A(4), position=0)
    b.edge(C(3), "CONTAINS", A(6), position=0)
    b.edge(C(1), "GENERATED_BY", R(2))
    b.edge(R(3), "USED", A(1))
    b.edge(R(3), "USED", A(6))
    b.edge(R(3), "USED", C(1))
    b.write(c)
    return c


def ids(conn: Any, label: str, where: Q | None = None, **kw: Any) -> list[int]:
    return [r["id"] for r in fetch(conn, Select(label, where, **kw))]


class NoQueries:
    """A connection that fails the test if anything reaches the database."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def run(self, query: str, params: dict | None = None) -> list[dict]:
        self.calls.append((query, params or {}))
        raise AssertionError(f"a query ran: {query}")


# --------------------------------------------------------------------------------------------
# Q as plain data (no database)
# --------------------------------------------------------------------------------------------
def test_q_is_plain_data_and_combines() -> None:
    q = Q(key__startswith="a", size=1)
    assert (q.connector, q.negated) == ("AND", False)
    assert q.children == [("key__startswith", "a"), ("size", 1)]
    both = Q(a=1) & Q(b=2)
    assert both.connector == "AND" and both.children == [("a", 1), Q(b=2)]
    either = Q(a=1) | Q(b=2)
    assert either.connector == "OR" and either.children == [Q(a=1), Q(b=2)]
    neg = ~Q(a=1)
    assert neg.negated and neg.children == [("a", 1)] and not (~neg).negated
    assert Q(Q(a=1), b=2).children == [Q(a=1), ("b", 2)]
    assert (Q() & Q(a=1)) == Q(a=1) and (Q(a=1) | Q()) == Q(a=1)
    assert "NOT" in repr(neg)
    with pytest.raises(TypeError):
        Q("a")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------------
def test_exact_in_and_string_ops(graph: Any) -> None:
    c = graph
    A = "Artifact"
    assert ids(c, A, Q(key="data/a.csv")) == [1]
    assert ids(c, A, Q(key__exact="data/a.csv")) == [1]
    assert ids(c, A, Q(key__iexact="DATA/A.CSV")) == [1]
    assert ids(c, A, Q(id__in=[3, 1, 99])) == [1, 3]
    assert ids(c, A, Q(suffix__in=(".csv", ".parquet"))) == [1, 2]
    assert ids(c, A, Q(uid__in={"ar0002", "ar0004"})) == [2, 4]
    assert ids(c, A, Q(key__in=[])) == []
    assert ids(c, A, Q(key__startswith="data/")) == [1, 2]
    assert ids(c, A, Q(key__istartswith="data/")) == [1, 2, 3]
    assert ids(c, A, Q(key__endswith=".csv")) == [1]
    assert ids(c, A, Q(key__iendswith=".csv")) == [1, 3]
    assert ids(c, A, Q(key__contains=".c")) == [1]
    assert ids(c, A, Q(key__icontains=".c")) == [1, 3]
    assert ids(c, "Run", Q(name__contains="xp")) == [2]


def test_comparisons_on_ints_and_datetimes(graph: Any) -> None:
    c = graph
    A = "Artifact"
    assert ids(c, A, Q(size__gt=10)) == [2, 3]
    assert ids(c, A, Q(size__gte=10)) == [1, 2, 3]
    assert ids(c, A, Q(size__lt=30)) == [1, 2]
    assert ids(c, A, Q(size__lte=30)) == [1, 2, 3]
    assert ids(c, A, Q(size__gt=10.5)) == [2, 3]
    # created_at of artifact i is T0 + i days; naive datetimes are UTC
    assert ids(c, A, Q(created_at__gt=T0 + timedelta(days=2))) == [3, 4]
    assert ids(c, A, Q(created_at__lte=datetime(2024, 1, 3))) == [1, 2]
    cet = timezone(timedelta(hours=1))
    assert ids(c, A, Q(created_at=datetime(2024, 1, 2, 1, tzinfo=cet))) == [1]
    assert ids(c, A, Q(created_at__in=[T0 + timedelta(days=4)])) == [4]
    assert ids(c, A, Q(created_at__gte="2024-01-04T00:00:00+00:00")) == [3, 4]
    row = fetch(c, Select(A, Q(id=1)))[0]
    assert row["created_at"] == T0 + timedelta(days=1)
    assert isinstance(row["created_at"], datetime)


def test_isnull_exact_none_and_booleans(graph: Any) -> None:
    c = graph
    A = "Artifact"
    assert ids(c, A, Q(suffix__isnull=True)) == [4]
    assert ids(c, A, Q(suffix=None)) == [4]
    assert ids(c, A, Q(suffix__isnull=False)) == [1, 2, 3]
    assert ids(c, A, Q(is_latest=True)) == [1, 2, 4]
    assert ids(c, A, Q(is_latest=False)) == [3]
    assert ids(c, A, Q(is_latest__in=[False])) == [3]
    assert ids(c, "Transform", Q(is_latest=True)) == [1]


def test_q_and_or_not(graph: Any) -> None:
    c = graph
    A = "Artifact"
    assert ids(c, A, Q(key__startswith="data/") & Q(size__gt=10)) == [2]
    assert ids(c, A, Q(key__startswith="data/") | Q(size=30)) == [1, 2, 3]
    assert ids(c, A, Q(key__startswith="data/", size__gt=10)) == [2]
    # a missing suffix counts as "not .csv", as Django's exclude() does
    assert ids(c, A, ~Q(suffix=".csv")) == [2, 3, 4]
    assert ids(c, A, ~Q(size__gt=10)) == [1, 4]
    assert ids(c, A, ~~Q(size__gt=10)) == [2, 3]
    assert ids(c, A, Q(key__istartswith="data") & ~Q(suffix=".csv") | Q(id__in=[4])) == [2, 3, 4]
    assert ids(c, A, ~(Q(size=10) | Q(size=20))) == [3, 4]
    assert ids(c, A, ~Q(size=10) & ~Q(size=20)) == [3, 4]
    assert ids(c, A, Q(Q(size=10) | Q(size=20), is_latest=True)) == [1, 2]
    assert ids(c, A, Q()) == [1, 2, 3, 4]
    assert ids(c, A, ~Q()) == [1, 2, 3, 4]


def test_related_lookups_both_directions(graph: Any) -> None:
    c = graph
    A = "Artifact"
    # one hop, outgoing, to-one
    assert ids(c, A, Q(run__name="train-1")) == [1, 2]
    assert ids(c, A, Q(created_by__name="alice")) == [1]
    # two hops
    assert ids(c, A, Q(run__transform__key__startswith="notebooks/")) == [3]
    assert ids(c, A, Q(run__transform__kind__in=["pipeline", "notebook"])) == [1, 2, 3]
    # incoming, many
    assert ids(c, "Run", Q(output_artifacts__key="data/b.parquet")) == [1]
    assert ids(c, "Run", Q(output_collections__key="collection-one")) == [2]
    assert ids(c, A, Q(input_of_runs__name="orphan")) == [1]
    assert ids(c, "Transform", Q(runs__output_artifacts__suffix=".CSV")) == [2]
    assert ids(c, "Collection", Q(artifacts__key__endswith=".pt")) == [2]
    assert ids(c, "Collection", Q(artifacts__run__transform__key="pipelines/train.py")) == [1]
    assert ids(c, "User", Q(created_by__name="alice")) == []  # User's own relation to User
    # the relation itself: uid (str) or id (int)
    assert ids(c, A, Q(run="ru0002")) == [3]
    assert ids(c, A, Q(run=1)) == [1, 2]
    assert ids(c, A, Q(run__in=["ru0002", "ru0009"])) == [3]
    assert ids(c, "Collection", Q(artifacts__in=["ar0004"])) == [2]
    assert ids(c, "Collection", Q(artifacts__in=[1, 2])) == [1]
    assert ids(c, "Collection", Q(artifacts__exact="ar0003")) == [1]

    class Rec:  # a record object with a uid
        uid = "ru0001"

    assert ids(c, A, Q(run=Rec())) == [1, 2]
    assert ids(c, A, Q(run__isnull=True)) == [4]
    assert ids(c, A, Q(run=None)) == [4]
    assert ids(c, A, Q(run__isnull=False)) == [1, 2, 3]
    assert ids(c, "Run", Q(transform__isnull=True)) == [3]
    # a related field being null: no path reaches a node with the field set
    assert ids(c, A, Q(run__transform__key__isnull=True)) == [4]
    assert ids(c, A, Q(run__transform__key=None)) == [4]
    assert ids(c, A, Q(run__transform__key__isnull=False)) == [1, 2, 3]
    # negation of a related condition: NOT EXISTS (includes records without the relation)
    assert ids(c, A, ~Q(run__name="train-1")) == [3, 4]
    assert ids(c, A, Q(run__name="train-1") | Q(created_by__name="bob")) == [1, 2]
    # related conditions ignore the related nodes' branch (artifact 5 is in the trash)
    assert ids(c, "Run", Q(output_artifacts__key="data/trashed.csv")) == [2]
    assert ids(c, "Run", Q(input_artifacts__key="archive/x.csv")) == [3]
    # a path may walk the same edge back (run -> its artifacts -> their run)
    assert ids(c, "Run", Q(output_artifacts__run__name="explore")) == [2]
    # names resolve against each hop's label: `name` is Run's field but Collection's alias of key
    assert ids(c, "Run", Q(output_collections__name="collection-one")) == [2]
    assert ids(c, "Artifact", Q(collections__name__startswith="coll", run__name="train-1")) == [
        1,
        2,
    ]
    # a many relation with several matches: still one row per record, and count agrees
    sel = Select("Collection", Q(artifacts__key__icontains="a"))
    assert [r["id"] for r in fetch(c, sel)] == [1]
    assert count(c, sel) == 1
    assert "EXISTS {" in compile_select(sel)[0]


def test_aliases_and_branch(graph: Any) -> None:
    c = graph
    assert ids(c, "Collection", Q(name__startswith="coll")) == [1]
    assert ids(c, "Collection", Q(name="second")) == [2]
    assert [r["id"] for r in fetch(c, Select("Collection", order_by=("-name",)))] == [2, 1]
    # default: main branch only; None: every branch
    assert ids(c, "Artifact") == [1, 2, 3, 4]
    assert ids(c, "Artifact", branch=None) == [1, 2, 3, 4, 5, 6]
    assert ids(c, "Artifact", branch=-1) == [5]
    # a where clause on branch (or branch_id) replaces the default, anywhere in the tree
    assert ids(c, "Artifact", Q(branch=0)) == [6]
    assert ids(c, "Artifact", Q(branch_id=-1)) == [5]
    assert ids(c, "Artifact", Q(branch_id__in=[0, -1])) == [5, 6]
    assert ids(c, "Artifact", Q(key__startswith="data/") & ~Q(branch=1)) == [5]
    assert ids(c, "Artifact", Q(size=10) | Q(branch_id=0)) == [1, 6]
    # a related branch condition is not the own field: the default stays
    assert ids(c, "Artifact", Q(run__branch=1)) == [1, 2, 3]
    assert ids(c, "Collection", Q(artifacts__key="archive/x.csv"), branch=None) == [3]


def test_anchor_and_edge_order(graph: Any) -> None:
    c = graph
    anchor = Anchor("Collection", "co0001", "artifacts")
    assert ids(c, "Artifact", anchor=anchor) == [1, 2, 3]  # id order
    ordered = Anchor("Collection", "co0001", "artifacts", edge_order="position")
    assert ids(c, "Artifact", anchor=ordered) == [3, 1, 2]  # position order
    assert ids(c, "Artifact", anchor=ordered, distinct=True) == [3, 1, 2]
    desc = Anchor("Collection", "co0001", "artifacts", edge_order="-position")
    assert ids(c, "Artifact", anchor=desc) == [2, 1, 3]
    assert ids(c, "Artifact", Q(suffix=".csv"), anchor=ordered) == [1]
    assert ids(c, "Artifact", anchor=ordered, offset=1, limit=1) == [1]
    assert count(c, Select("Artifact", anchor=ordered)) == 3
    # the other direction: artifact.collections
    assert ids(c, "Collection", anchor=Anchor("Artifact", "ar0004", "collections")) == [2]
    # the anchored target's branch is filtered like any query
    assert ids(c, "Artifact", anchor=Anchor("Collection", "co0003", "artifacts")) == []
    trashed = Anchor("Collection", "co0003", "artifacts")
    assert ids(c, "Artifact", anchor=trashed, branch=None) == [6]
    assert ids(c, "Artifact", anchor=Anchor("Collection", "nope", "artifacts")) == []
    query, params = compile_select(Select("Artifact", anchor=ordered))
    assert "(a:`Collection` {uid: $anchor_uid})-[r:`CONTAINS`]->(n:`Artifact`)" in query
    assert params["anchor_uid"] == "co0001"
    with pytest.raises(FieldValidationError, match="has no relation 'artefacts'.*artifacts"):
        compile_select(Select("Artifact", anchor=Anchor("Collection", "x", "artefacts")))
    with pytest.raises(FieldValidationError, match="leads to Artifact, not to the queried label"):
        compile_select(Select("Run", anchor=Anchor("Collection", "x", "artifacts")))
    with pytest.raises(FieldValidationError, match="no property 'pos'; valid edge properties: pos"):
        compile_fetch(Select("Artifact", anchor=Anchor("Collection", "x", "artifacts", "pos")))
    with pytest.raises(FieldValidationError, match="no property 'position'"):
        compile_fetch(Select("Run", anchor=Anchor("Artifact", "x", "run", "position")))


def test_anchor_through_a_relation_is_checked_against_the_models() -> None:
    through = Anchor("Collection", "x", "ulabels", through="artifacts")
    query, params = compile_select(Select("ULabel", anchor=through, distinct=True))
    assert query.startswith(
        "MATCH (a:`Collection` {uid: $anchor_uid})-[:`CONTAINS`*0..1]->(via)\n"
        "MATCH (via)-[r:`LABELED_WITH`]->(n:`ULabel`)"
    )
    assert params["anchor_uid"] == "x"
    with pytest.raises(FieldValidationError, match=r"no many-relation 'artefacts'.*artifacts"):
        compile_select(
            Select("ULabel", anchor=Anchor("Collection", "x", "ulabels", through="artefacts"))
        )
    with pytest.raises(FieldValidationError, match="no many-relation 'run'"):
        compile_select(Select("ULabel", anchor=Anchor("Collection", "x", "ulabels", through="run")))
    # Runs have no `ulabels`: an input run's labels cannot be followed.
    with pytest.raises(FieldValidationError, match=r"Run records \(Collection.input_of_runs\)"):
        compile_select(
            Select("ULabel", anchor=Anchor("Collection", "x", "ulabels", through="input_of_runs"))
        )
    with pytest.raises(FieldValidationError, match="no edge order"):
        compile_select(
            Select("ULabel", anchor=Anchor("Collection", "x", "ulabels", "feature", "artifacts"))
        )


def test_ordering_distinct_offset_limit_count_exists(graph: Any) -> None:
    c = graph
    A = "Artifact"
    assert ids(c, A, order_by=("-size",)) == [4, 3, 2, 1]  # null sorts first when descending
    assert ids(c, A, order_by=("size",)) == [1, 2, 3, 4]
    assert ids(c, A, order_by=("is_latest", "-key")) == [3, 4, 2, 1]
    assert ids(c, A, order_by=("-id",)) == [4, 3, 2, 1]
    assert ids(c, A, order_by="-id") == [4, 3, 2, 1]  # a bare string is one field
    assert ids(c, A, offset=1) == [2, 3, 4]
    assert ids(c, A, limit=2) == [1, 2]
    assert ids(c, A, offset=1, limit=2) == [2, 3]
    assert ids(c, A, offset=10) == []
    assert ids(c, A, limit=0) == []
    assert ids(c, A, distinct=True) == [1, 2, 3, 4]
    assert ids(c, "Collection", Q(artifacts__size__gt=0), distinct=True) == [1]
    assert count(c, Select(A)) == 4
    assert count(c, Select(A, branch=None)) == 6
    assert count(c, Select(A, offset=1)) == 3
    assert count(c, Select(A, offset=1, limit=2)) == 2
    assert count(c, Select(A, offset=3, limit=2)) == 1
    assert count(c, Select(A, offset=9)) == 0
    assert count(c, Select(A, Q(key="nope"))) == 0
    assert count(c, Select(A, distinct=True)) == 4
    assert exists(c, Select(A, Q(key="data/a.csv")))
    assert not exists(c, Select(A, Q(key="nope")))
    assert exists(c, Select(A, offset=3))
    assert not exists(c, Select(A, offset=4))
    assert not exists(c, Select(A, limit=0))
    assert not exists(c, Select(A, Q(key="data/trashed.csv")))
    assert exists(c, Select(A, Q(key="data/trashed.csv"), branch=None))
    query, params = compile_fetch(Select(A, offset=2, limit=5))
    assert "SKIP $skip LIMIT $limit" in query and params["skip"] == 2 and params["limit"] == 5
    with pytest.raises(FieldValidationError):
        compile_fetch(Select(A, offset=-1))
    with pytest.raises(FieldValidationError):
        compile_fetch(Select(A, limit="3"))  # type: ignore[arg-type]


def test_include_columns(graph: Any) -> None:
    c = graph
    rows = fetch(
        c,
        Select("Artifact"),
        include=[
            "created_by__name",
            "run__transform__key",
            "collections__key",
            "input_of_runs__name",
            "key",
        ],  # fmt: skip
    )
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert by_id[1]["created_by__name"] == "alice"
    assert by_id[4]["created_by__name"] is None  # to-one, missing: None
    assert by_id[1]["run__transform__key"] == "pipelines/train.py"
    assert by_id[3]["run__transform__key"] == "notebooks/explore.ipynb"
    assert by_id[4]["run__transform__key"] is None
    assert by_id[1]["collections__key"] == ["collection-one"]
    assert by_id[4]["collections__key"] == ["second"]
    assert by_id[1]["input_of_runs__name"] == ["orphan"]
    assert by_id[2]["input_of_runs__name"] == []
    assert by_id[1]["key"] == "data/a.csv"
    # lists are ordered by the target's id, not the edge position; related branch is ignored
    coll = fetch(c, Select("Collection", Q(id=1)), include=["artifacts__key", "artifacts__id"])
    assert coll[0]["artifacts__id"] == [1, 2, 3]
    assert coll[0]["artifacts__key"] == ["data/a.csv", "data/b.parquet", "Data/C.CSV"]
    # a many hop followed by a to-one hop: distinct targets, ordered by id
    runs = fetch(c, Select("Collection", Q(id=1)), include=["artifacts__run__name"])
    assert runs[0]["artifacts__run__name"] == ["train-1", "explore"]
    # order and limit are kept with includes
    ordered = fetch(
        c,
        Select("Artifact", anchor=Anchor("Collection", "co0001", "artifacts", "position"), limit=2),
        include=["run__name"],
    )
    assert [(r["id"], r["run__name"]) for r in ordered] == [(3, "explore"), (1, "train-1")]
    with pytest.raises(FieldValidationError, match="Artifact has no relation 'runn'.*run"):
        fetch(c, Select("Artifact"), include=["runn__name"])
    with pytest.raises(FieldValidationError, match="Run has no field 'nam'; valid fields: .*name"):
        fetch(c, Select("Artifact"), include=["run__nam"])


# --------------------------------------------------------------------------------------------
# errors: raised while compiling, before any query
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lookups", "pattern"),
    [
        (
            {"keyy": "x"},
            r"Artifact has no field or relation 'keyy'; valid fields: branch, "
            r"branch_id, created_at, description, .*hash, .*, version; valid relations: "
            r"collections, created_by, .*ulabels",
        ),
        ({"runn__name": "x"}, r"Artifact has no field or relation 'runn'.*valid relations: .*run,"),
        ({"run__nme": "x"}, r"Run has no field or relation 'nme'; valid fields: .*name"),
        ({"key__foo": "x"}, r"unknown lookup 'foo' .*Artifact.key.*valid lookups: contains, "),
        ({"key__startswith__x": "x"}, r"unknown lookup 'startswith__x'"),
        ({"in": [1]}, r"Artifact has no field or relation 'in'"),
        ({"size": "3"}, r"Artifact.size \(IntegerProperty\) needs an int"),
        ({"size": True}, r"needs an int"),
        ({"key": 3}, r"Artifact.key \(StringProperty\) needs a str"),
        ({"is_latest": 1}, r"needs a bool"),
        ({"created_at__gt": 5}, r"needs a datetime"),
        ({"created_at__gt": "yesterday"}, r"needs a datetime"),
        (
            {"size__startswith": "1"},
            r"'startswith' needs a string field, but Artifact.size is "
            r"IntegerProperty",
        ),
        ({"created_at__icontains": "2024"}, r"needs a string field"),
        ({"is_latest__gt": False}, r"'gt' cannot order Artifact.is_latest"),
        ({"key__in": "abc"}, r"needs a list, tuple or set"),
        ({"key__in": ["a", 1]}, r"needs a str"),
        ({"key__in": ["a", None]}, r"None"),
        ({"key__isnull": "yes"}, r"needs True or False"),
        ({"key__startswith": None}, r"cannot compare with None"),
        ({"run__startswith": "x"}, r"'startswith' .* cannot be used on relation Run"),
        ({"run": 1.5}, r"uid \(str\) or id \(int\)"),
        ({"run__in": ["ru0001", 2]}, r"not a mix"),
        ({"key` = 1 OR 1=1 //": 1}, r"Artifact has no field or relation 'key` = 1 OR 1=1 //'"),
    ],
)
def test_bad_lookups_are_rejected(lookups: dict, pattern: str) -> None:
    conn = NoQueries()
    with pytest.raises(FieldValidationError, match=pattern):
        fetch(conn, Select("Artifact", Q(**lookups)))
    assert conn.calls == []


def test_other_bad_names_are_rejected() -> None:
    conn = NoQueries()
    evil = "key` = 1 OR 1=1 //"
    with pytest.raises(FieldValidationError, match="'Artefact'; valid labels: Artifact, Coll"):
        fetch(conn, Select("Artefact"))
    message = re.escape(f"Artifact has no field '{evil}'; valid fields: branch")
    with pytest.raises(FieldValidationError, match=message):
        fetch(conn, Select("Artifact", order_by=(evil,)))
    with pytest.raises(FieldValidationError, match="Artifact has no field 'nope'"):
        count(conn, Select("Artifact", order_by=("-nope",)))
    with pytest.raises(FieldValidationError):
        fetch(conn, Select("Artifact"), include=[evil])
    with pytest.raises(FieldValidationError):
        fetch(conn, Select("Artifact"), include=[f"run__{evil}"])
    with pytest.raises(FieldValidationError):
        exists(conn, Select("Artifact", Q(**{f"run__{evil}": 1})))
    with pytest.raises(FieldValidationError):
        search(conn, "Artifact", "x", fields=[evil])
    with pytest.raises(FieldValidationError, match="search needs string fields"):
        search(conn, "Artifact", "x", fields=["size"])
    with pytest.raises(FieldValidationError):
        search(conn, "Artifact", "x", where=Q(**{evil: 1}))
    with pytest.raises(FieldValidationError):
        fetch(conn, Select("Artifact", anchor=Anchor("Collection", "x", evil)))
    with pytest.raises(FieldValidationError):
        fetch(conn, Select("Artifact", anchor=Anchor("Collection", "x", "artifacts", evil)))
    with pytest.raises(FieldValidationError):
        fetch(conn, Select("Artifact", branch="1"))  # type: ignore[arg-type]
    assert conn.calls == []


def test_values_never_enter_the_query_text(graph: Any) -> None:
    evil = "x' OR 1=1 RETURN n //"
    sel = Select("Artifact", Q(key=evil) | Q(run__name__icontains=evil) | Q(collections=evil))
    query, params = compile_select(sel)
    assert evil not in query and "OR 1=1" not in query
    assert set(params.values()) >= {evil}
    assert re.findall(r"\$p\d+", query) == ["$p0", "$p1", "$p2"]
    assert fetch(graph, sel) == []
    assert search(graph, "Artifact", evil) == []


# --------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------
def test_search_ranking(db: Any) -> None:
    c = db.connection
    names = ["cell", "cell type", "cellular", "subcell", "xcellx", "CELL", "other", "cell_type"]
    b = Batch()
    for i, name in enumerate(names, 1):
        b.node("ULabel", i, name=name)
    b.node("ULabel", 9, name="nothing", description="a cell line")
    b.node("ULabel", 10, name="cell", branch=-1)
    b.write(c)
    assert search_fields("ULabel") == ["name", "description"]
    assert "uid" not in search_fields("Artifact") and "key" in search_fields("Artifact")
    got = [(r["id"], score) for r, score in search(c, "ULabel", "cell")]
    assert got == [
        (1, 221.0), (6, 221.0), (2, 21.0), (8, 21.0), (9, 21.0), (3, 9.0), (4, 3.0), (5, 1.0),
    ]  # fmt: skip
    # case-sensitive: "CELL" is not found, nor counted
    got = [(r["id"], s) for r, s in search(c, "ULabel", "CELL", case_sensitive=True)]
    assert got == [(6, 221.0)]
    got = [(r["id"], s) for r, s in search(c, "ULabel", "Cell", case_sensitive=True)]
    assert got == []
    assert [r["id"] for r, _ in search(c, "ULabel", "cell", limit=3)] == [1, 6, 2]
    assert len(search(c, "ULabel", "cell", limit=None)) == 8
    # fields, where and branch restrict the candidates
    assert [r["id"] for r, _ in search(c, "ULabel", "cell", fields=["description"])] == [9]
    assert [r["id"] for r, _ in search(c, "ULabel", "cell", where=Q(id__gt=5))] == [6, 8, 9]
    assert [r["id"] for r, _ in search(c, "ULabel", "cell", branch=-1)] == [10]
    assert [r["id"] for r, _ in search(c, "ULabel", "cell", branch=None)][:3] == [1, 6, 10]
    assert search(c, "ULabel", "zebra") == []
    # scores add up over fields: equal name (221) + whole word in the description (21)
    node(c, "ULabel", 11, name="line", description="cell line")
    assert [(r["id"], s) for r, s in search(c, "ULabel", "line")] == [(11, 242.0), (9, 21.0)]
    # Collection's `name` alias searches `key`
    node(c, "Collection", 1, key="my cells")
    assert [s for _, s in search(c, "Collection", "cells", fields=["name"])] == [21.0]


def test_search_escapes_regex_metacharacters(db: Any) -> None:
    c = db.connection
    values = {
        1: "a.b(c*",
        2: "axb(c*",  # would match an unescaped "a.b" but contains no "a.b(c*"
        3: "see a.b(c* here",
        4: "back\\slash",
        5: "\\E",
        6: "x \\E y",
        7: "f(x)",
        8: "[a]|b{2}?+$^",
        9: "line\nbreak a.b(c*",
    }
    b = Batch()
    for i, v in values.items():
        b.node("ULabel", i, name=v)
    b.write(c)

    def run(s: str) -> list[tuple[int, float]]:
        return [(r["id"], score) for r, score in search(c, "ULabel", s)]

    assert run("a.b(c*") == [(1, 221.0), (3, 21.0), (9, 21.0)]
    assert run("k\\s") == [(4, 1.0)]
    assert run("\\") == [(5, 9.0), (6, 9.0), (4, 1.0)]  # start of a word (8 + 1), contains (1)
    assert run("\\E") == [(5, 221.0), (6, 21.0)]
    assert run("(") == [(1, 1.0), (2, 1.0), (3, 1.0), (7, 1.0), (9, 1.0)]
    assert run("x)") == [(7, 21.0)]
    assert run("[a]|b{2}?+$^") == [(8, 221.0)]
    assert run("break") == [(9, 21.0)]  # a whole word after a newline


# --------------------------------------------------------------------------------------------
# index use
# --------------------------------------------------------------------------------------------
def _operators(plan: dict) -> list[str]:
    found = [plan.get("operatorType", "")]
    for child in plan.get("children", []):
        found += _operators(child)
    return found


def test_uid_and_key_lookups_use_indexes(db: Any) -> None:
    c = db.connection
    c.run(
        "UNWIND range(1, 500) AS i CREATE (:Artifact {uid: 'u' + toString(i), id: i, branch: 1, "
        "key: 'k/' + toString(i), is_latest: true})"
    )

    def plan(sel: Select) -> list[str]:
        query, params = compile_fetch(sel)
        with c.driver.session(database=c.settings.database) as session:
            profile = session.run("PROFILE " + query, params).consume().profile
        return _operators(profile)

    seeks = ("NodeIndexSeek", "NodeUniqueIndexSeek", "NodeIndexSeekByRange")

    def uses_index(ops: list[str]) -> bool:
        return any(op.split("@")[0] in seeks for op in ops)

    by_uid = plan(Select("Artifact", Q(uid="u42")))
    assert uses_index(by_uid), by_uid
    by_uid_any_branch = plan(Select("Artifact", Q(uid="u42"), branch=None))
    assert uses_index(by_uid_any_branch), by_uid_any_branch
    by_prefix = plan(Select("Artifact", Q(key__startswith="k/4")))
    assert uses_index(by_prefix), by_prefix
    by_ids = plan(Select("Artifact", Q(id__in=[1, 2, 3])))
    assert uses_index(by_ids), by_ids
    assert [r["uid"] for r in fetch(c, Select("Artifact", Q(uid="u42")))] == ["u42"]
    assert count(c, Select("Artifact", Q(key__startswith="k/4"))) == 111
