"""The user-level query API: QuerySet evaluation, df/lookup/search, lookups, get(), using().

Everything runs against the session's real Neo4j (the `storage` fixture: an empty graph and a
fresh storage root). The query compiler itself is tested in tests/test_query.py; these tests
go through `ln.<Registry>.filter(...)` and friends the way a lamindb user would.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pandas as pd
import pytest

import lineage as ln
from tests.conftest import make_artifact
from lineage.errors import (
    DoesNotExist,
    FieldValidationError,
    InvalidArgument,
    MultipleResultsFound,
)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def names(records) -> list[str]:
    return [r.name for r in records]


def uids(records) -> list[str]:
    return [r.uid for r in records]


@pytest.fixture
def labels(storage: Path) -> list[ln.ULabel]:
    """Four labels saved in this order (so in id order): beta, alpha, gamma, delta."""
    out = []
    for name in ["beta", "alpha", "gamma", "delta"]:
        out.append(ln.ULabel(name=name).save())
        time.sleep(0.002)  # distinct created_at values
    return out


# --------------------------------------------------------------------------------------------
# evaluating a QuerySet
# --------------------------------------------------------------------------------------------
def test_iteration_len_count_exists(labels: list[ln.ULabel]) -> None:
    qs = ln.ULabel.filter()
    assert isinstance(qs, ln.QuerySet)
    got = list(qs)
    assert all(isinstance(r, ln.ULabel) for r in got)
    assert names(got) == ["beta", "alpha", "gamma", "delta"]  # id order by default
    assert uids(got) == uids(labels)
    assert len(qs) == 4 and qs.count() == 4 and qs.exists() and bool(qs)
    assert ln.ULabel.all().count() == 4

    none = ln.ULabel.filter(name="nope")
    assert none.count() == 0 and len(none) == 0 and not none.exists() and not none
    assert list(none) == []

    # a QuerySet is lazy: a record saved after it was built shows up when it is evaluated
    lazy = ln.ULabel.filter(name__startswith="e")
    ln.ULabel(name="epsilon").save()
    assert names(lazy) == ["epsilon"]


def test_first_last(labels: list[ln.ULabel]) -> None:
    assert ln.ULabel.filter().first().name == "beta"
    assert ln.ULabel.filter().last().name == "delta"
    assert ln.ULabel.filter().order_by("name").first().name == "alpha"
    assert ln.ULabel.filter().order_by("name").last().name == "gamma"
    assert ln.ULabel.filter().order_by("-name").first().name == "gamma"
    assert ln.ULabel.filter().order_by("-name").last().name == "alpha"
    assert ln.ULabel.filter(name="nope").first() is None
    assert ln.ULabel.filter(name="nope").last() is None
    first = ln.ULabel.filter(name="alpha").first()
    assert first.uid == labels[1].uid and first.id == labels[1].id


def test_one_and_one_or_none(labels: list[ln.ULabel]) -> None:
    alpha = ln.ULabel.filter(name="alpha").one()
    assert isinstance(alpha, ln.ULabel) and alpha.uid == labels[1].uid
    with pytest.raises(DoesNotExist):
        ln.ULabel.filter(name="nope").one()
    with pytest.raises(MultipleResultsFound):
        ln.ULabel.filter(name__in=["alpha", "beta"]).one()
    assert ln.ULabel.filter(name="alpha").one_or_none().uid == labels[1].uid
    assert ln.ULabel.filter(name="nope").one_or_none() is None
    with pytest.raises(MultipleResultsFound):
        ln.ULabel.filter().one_or_none()
    # both are LookupErrors, like Django's
    assert issubclass(DoesNotExist, LookupError) and issubclass(MultipleResultsFound, LookupError)


def test_order_by_and_distinct(storage: Path, labels: list[ln.ULabel]) -> None:
    assert names(ln.ULabel.filter().order_by("-name")) == ["gamma", "delta", "beta", "alpha"]
    assert names(ln.ULabel.filter().order_by("name")) == ["alpha", "beta", "delta", "gamma"]
    # ties on the first key fall back to id
    ln.ULabel(name="alpha", description="second alpha").save()
    got = ln.ULabel.filter(name="alpha").order_by("name").to_list()
    assert [r.description for r in got] == [None, "second alpha"]

    # a label on two matching artifacts is still one row, with or without distinct()
    a1 = make_artifact(storage, "d1.txt")
    a2 = make_artifact(storage, "d2.txt")
    a1.ulabels.add(labels[0])
    a2.ulabels.add(labels[0])
    qs = ln.ULabel.filter(artifacts__key__in=["d1.txt", "d2.txt"])
    assert uids(qs) == [labels[0].uid]
    assert uids(qs.distinct()) == [labels[0].uid] and qs.distinct().count() == 1
    assert uids(ln.ULabel.filter().distinct()) == uids(ln.ULabel.filter())


def test_slicing_and_indexing(labels: list[ln.ULabel]) -> None:
    qs = ln.ULabel.filter().order_by("name")  # alpha, beta, delta, gamma
    part = qs[1:3]
    assert isinstance(part, ln.QuerySet)
    assert names(part) == ["beta", "delta"]
    assert part.count() == 2 and len(part) == 2
    assert part[0].name == "beta" and part[-1].name == "delta"
    assert names(qs[2:]) == ["delta", "gamma"]
    assert names(qs[:2]) == ["alpha", "beta"]
    assert qs[0].name == "alpha"
    assert qs[3].name == "gamma"
    assert qs[-1].name == "gamma"
    assert qs[-2].name == "delta"
    with pytest.raises(IndexError):
        qs[4]
    with pytest.raises(IndexError):
        qs[-5]
    with pytest.raises(IndexError):
        part[2]
    assert part.first().name == "beta" and part.last().name == "delta"
    beyond = qs[10:]
    assert beyond.count() == 0 and not beyond.exists() and beyond.to_list() == []
    assert qs[2:].count() == 2 and qs[2:].exists()
    assert names(qs[1:3][1:]) == ["delta"]


def test_to_list_and_list(labels: list[ln.ULabel]) -> None:
    qs = ln.ULabel.filter().order_by("-name")
    as_list = qs.to_list()
    assert isinstance(as_list, list) and names(as_list) == ["gamma", "delta", "beta", "alpha"]
    assert names(qs.list()) == names(as_list)
    assert names(list(qs)) == names(as_list)
    assert ln.ULabel.filter(name="nope").to_list() == []


# --------------------------------------------------------------------------------------------
# df
# --------------------------------------------------------------------------------------------
def test_df_index_columns_and_limit(labels: list[ln.ULabel]) -> None:
    df = ln.ULabel.filter().df()
    assert isinstance(df, pd.DataFrame)
    assert df.index.name == "id"
    assert df.index.tolist() == [r.id for r in labels]
    assert df["uid"].tolist() == uids(labels)
    assert df["name"].tolist() == ["beta", "alpha", "gamma", "delta"]
    for column in ("uid", "name", "description", "created_at", "branch"):
        assert column in df.columns
    assert "updated_at" not in df.columns and "id" not in df.columns
    assert df["branch"].tolist() == [1, 1, 1, 1]

    assert len(ln.ULabel.filter().df(limit=2)) == 2
    assert ln.ULabel.filter().df(limit=2)["name"].tolist() == ["beta", "alpha"]
    assert len(ln.ULabel.df(limit=3)) == 3
    assert len(ln.ULabel.df()) == 4
    assert len(ln.ULabel.filter().order_by("name")[1:3].df()) == 2
    assert ln.ULabel.filter().order_by("name")[1:3].df()["name"].tolist() == ["beta", "delta"]
    empty = ln.ULabel.filter(name="nope").df()
    assert len(empty) == 0 and "name" in empty.columns


def test_df_default_limit_is_100(storage: Path) -> None:
    ln.save([ln.ULabel(name=f"l{i:03d}") for i in range(105)])
    assert ln.ULabel.filter().count() == 105
    assert len(ln.ULabel.filter().df()) == 100
    assert len(ln.ULabel.filter().df(limit=None)) == 105


def test_df_include_related_columns(storage: Path) -> None:
    l1 = ln.ULabel(name="l1").save()
    l2 = ln.ULabel(name="l2").save()
    a1 = make_artifact(storage, "inc/a1.txt")
    a2 = make_artifact(storage, "inc/a2.txt")
    a1.ulabels.add(l2, l1)
    df = ln.Artifact.filter().df(include=["created_by__handle", "ulabels__name"])
    assert df.index.name == "id"
    assert df.index.tolist() == [a1.id, a2.id]
    assert df["key"].tolist() == ["inc/a1.txt", "inc/a2.txt"]
    # to-one path: one scalar per row
    assert df["created_by__handle"].tolist() == [ln.settings.user, ln.settings.user]
    # many path: a list per row, ordered by the related record's id
    assert list(df.loc[a1.id, "ulabels__name"]) == ["l1", "l2"]
    assert list(df.loc[a2.id, "ulabels__name"]) == []
    # a single string works too
    single = ln.Artifact.filter().df(include="created_by__handle")
    assert single["created_by__handle"].tolist() == [ln.settings.user] * 2
    # the registry-level spelling
    assert (
        ln.ULabel.df(include="created_by__handle")["created_by__handle"].tolist()
        == [ln.settings.user] * 2
    )


# --------------------------------------------------------------------------------------------
# lookup and search
# --------------------------------------------------------------------------------------------
def test_lookup(storage: Path) -> None:
    mine = ln.ULabel(name="My Label-2").save()
    other = ln.ULabel(name="other").save()
    lk = ln.ULabel.lookup()
    assert lk.my_label_2.uid == mine.uid
    assert isinstance(lk.my_label_2, ln.ULabel)
    assert lk.other.uid == other.uid
    assert "my_label_2" in dir(lk)
    d = lk.dict()
    assert set(d) == {"My Label-2", "other"}
    assert d["My Label-2"].uid == mine.uid
    assert lk["other"].uid == other.uid
    assert ln.ULabel.lookup(return_field="uid").my_label_2 == mine.uid
    # a queryset's lookup only sees its records
    assert set(ln.ULabel.filter(name="other").lookup().dict()) == {"other"}
    with pytest.raises(AttributeError):
        lk.missing_label
    with pytest.raises(ln.errors.FieldValidationError, match="no field 'nonexistent'"):
        ln.ULabel.lookup(field="nonexistent")


def test_search_ranking_score_case_and_limit(storage: Path) -> None:
    made = {n: ln.ULabel(name=n).save() for n in ["ULabel1", "ULabel2", "ULabel3", "label two"]}
    result = ln.ULabel.search("ULabel2")
    first = result.first()
    assert first.uid == made["ULabel2"].uid
    df = result.df()
    assert "score" in df.columns
    assert df["name"].iloc[0] == "ULabel2"
    assert df["score"].iloc[0] == df["score"].max()

    # several candidates: the exact/whole-word match first, the rest after it
    made["ULabel22"] = ln.ULabel(name="ULabel22").save()
    ranked = ln.ULabel.search("ULabel2").df()
    assert ranked["name"].tolist() == ["ULabel2", "ULabel22"]
    assert ranked["score"].iloc[0] > ranked["score"].iloc[1]
    assert ranked.index.name == "id"

    by_word = ln.ULabel.search("label").df()
    assert by_word["name"].iloc[0] == "label two"
    assert set(by_word["name"]) == {"ULabel1", "ULabel2", "ULabel3", "label two", "ULabel22"}
    assert by_word["score"].is_monotonic_decreasing

    # case-insensitive by default
    assert [r.name for r in ln.ULabel.search("ulabel2")] == ["ULabel2", "ULabel22"]
    assert len(ln.ULabel.search("ulabel2", case_sensitive=True)) == 0
    assert [r.name for r in ln.ULabel.search("ULabel2", case_sensitive=True)] == [
        "ULabel2",
        "ULabel22",
    ]
    # limit
    assert len(ln.ULabel.search("label", limit=2)) == 2
    assert len(ln.ULabel.search("label", limit=None)) == 5
    assert len(ln.ULabel.search("zebra")) == 0
    # a queryset's search sees only its records
    assert [r.name for r in ln.ULabel.filter(name__startswith="U").search("label two")] == []


# --------------------------------------------------------------------------------------------
# delete on a queryset, branches
# --------------------------------------------------------------------------------------------
def test_queryset_delete_moves_to_trash(labels: list[ln.ULabel]) -> None:
    ln.ULabel.filter(name__in=["alpha", "beta"]).delete()
    assert names(ln.ULabel.filter().order_by("name")) == ["delta", "gamma"]
    trash = ln.ULabel.filter(branch=-1).order_by("name")
    assert names(trash) == ["alpha", "beta"]
    rows = ln.cypher("MATCH (u:ULabel) RETURN u.name AS name, u.branch AS branch ORDER BY name")
    assert dict(zip(rows["name"], rows["branch"])) == {
        "alpha": -1, "beta": -1, "delta": 1, "gamma": 1,
    }  # fmt: skip
    # the nodes still exist (only trashed)
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [4]


def test_default_queries_see_main_branch_get_sees_all(labels: list[ln.ULabel]) -> None:
    alpha = labels[1]
    alpha.delete()
    assert alpha.branch == -1
    assert "alpha" not in names(ln.ULabel.filter())
    assert ln.ULabel.filter(name="alpha").count() == 0
    assert ln.ULabel.filter(name="alpha").first() is None
    assert len(ln.ULabel.search("alpha")) == 0
    assert "alpha" not in ln.ULabel.df()["name"].tolist()
    # get by uid or id sees the trash
    got = ln.ULabel.get(alpha.uid)
    assert got.name == "alpha" and got.branch == -1
    assert ln.ULabel.get(alpha.id).uid == alpha.uid
    # the trash is queryable explicitly
    assert names(ln.ULabel.filter(branch=-1)) == ["alpha"]
    assert names(ln.ULabel.filter(branch_id=-1)) == ["alpha"]
    alpha.restore()
    assert "alpha" in names(ln.ULabel.filter())
    assert ln.ULabel.filter(branch=-1).count() == 0


# --------------------------------------------------------------------------------------------
# lookups (user level)
# --------------------------------------------------------------------------------------------
def test_string_lookups(labels: list[ln.ULabel]) -> None:
    ln.ULabel(name="Alphabet").save()
    by = lambda **kw: sorted(names(ln.ULabel.filter(**kw)))  # noqa: E731
    assert by(name="alpha") == ["alpha"]
    assert by(name__exact="alpha") == ["alpha"]
    assert by(name__in=["alpha", "gamma", "zzz"]) == ["alpha", "gamma"]
    assert by(name__in=[]) == []
    assert by(name__startswith="alph") == ["alpha"]
    assert by(name__startswith="Alph") == ["Alphabet"]
    assert by(name__istartswith="ALPH") == ["Alphabet", "alpha"]
    assert by(name__contains="ph") == ["Alphabet", "alpha"]
    assert by(name__contains="PH") == []
    assert by(name__icontains="PH") == ["Alphabet", "alpha"]
    assert by(name__contains="elt") == ["delta"]


def test_comparison_lookups_on_id_and_created_at(labels: list[ln.ULabel]) -> None:
    beta, alpha, gamma, delta = labels
    assert names(ln.ULabel.filter(id__gt=alpha.id)) == ["gamma", "delta"]
    assert names(ln.ULabel.filter(id__gte=alpha.id)) == ["alpha", "gamma", "delta"]
    assert names(ln.ULabel.filter(id__lt=gamma.id)) == ["beta", "alpha"]
    assert names(ln.ULabel.filter(id__lte=gamma.id)) == ["beta", "alpha", "gamma"]
    assert names(ln.ULabel.filter(id=gamma.id)) == ["gamma"]

    assert alpha.created_at < gamma.created_at
    assert names(ln.ULabel.filter(created_at__gt=alpha.created_at)) == ["gamma", "delta"]
    assert names(ln.ULabel.filter(created_at__gte=alpha.created_at)) == ["alpha", "gamma", "delta"]
    assert names(ln.ULabel.filter(created_at__lt=gamma.created_at)) == ["beta", "alpha"]
    assert names(ln.ULabel.filter(created_at__lte=gamma.created_at)) == ["beta", "alpha", "gamma"]
    between = ln.ULabel.filter(created_at__gt=beta.created_at, created_at__lt=delta.created_at)
    assert names(between) == ["alpha", "gamma"]


def test_isnull(labels: list[ln.ULabel]) -> None:
    labels[0].description = "described"
    labels[0].save()
    assert names(ln.ULabel.filter(description__isnull=False)) == ["beta"]
    assert names(ln.ULabel.filter(description__isnull=True)) == ["alpha", "gamma", "delta"]
    assert names(ln.ULabel.filter(description=None)) == ["alpha", "gamma", "delta"]


def test_related_lookups(storage: Path) -> None:
    transform = ln.Transform(key="pipelines/prep", kind="pipeline").save()
    other_transform = ln.Transform(key="pipelines/other", kind="pipeline").save()
    run = ln.Run(transform).save()
    other_run = ln.Run(other_transform).save()
    l1, l2, l3 = (ln.ULabel(name=n).save() for n in ["l1", "l2", "l3"])
    a1 = make_artifact(storage, "rel/a1.txt", run=run)
    a2 = make_artifact(storage, "rel/a2.txt", run=other_run)
    a3 = make_artifact(storage, "rel/a3.txt")
    a1.ulabels.add(l1)
    a2.ulabels.add(l2)
    a3.ulabels.add(l2, l3)

    keys = lambda qs: sorted(a.key for a in qs)  # noqa: E731
    # reverse relation from the label side
    assert names(ln.ULabel.filter(artifacts__key="rel/a1.txt")) == ["l1"]
    assert sorted(names(ln.ULabel.filter(artifacts__key__startswith="rel/a"))) == ["l1", "l2", "l3"]
    # two hops
    assert keys(ln.Artifact.filter(run__transform__key="pipelines/prep")) == ["rel/a1.txt"]
    assert keys(ln.Artifact.filter(run__transform__key__startswith="pipelines/")) == [
        "rel/a1.txt",
        "rel/a2.txt",
    ]
    # creator
    assert keys(ln.Artifact.filter(created_by__handle=ln.settings.user)) == [
        "rel/a1.txt", "rel/a2.txt", "rel/a3.txt",
    ]  # fmt: skip
    assert keys(ln.Artifact.filter(created_by__handle="somebody-else")) == []
    # a record as the value
    assert keys(ln.Artifact.filter(run=run)) == ["rel/a1.txt"]
    assert keys(ln.Artifact.filter(run=other_run)) == ["rel/a2.txt"]
    assert keys(ln.Artifact.filter(run__isnull=True)) == ["rel/a3.txt"]
    # a list of records: no duplicate rows for a3 (labelled with both)
    got = ln.Artifact.filter(ulabels__in=[l1, l2])
    assert [a.key for a in got] == ["rel/a1.txt", "rel/a2.txt", "rel/a3.txt"]
    assert got.count() == 3
    assert keys(ln.Artifact.filter(ulabels=l3)) == ["rel/a3.txt"]
    # an unsaved record cannot stand for itself
    with pytest.raises(InvalidArgument):
        ln.Artifact.filter(ulabels=ln.ULabel(name="unsaved")).to_list()


def test_q_objects(labels: list[ln.ULabel]) -> None:
    Q = ln.Q
    got = ln.ULabel.filter(Q(name="alpha") | Q(name="gamma"))
    assert sorted(names(got)) == ["alpha", "gamma"]
    got = ln.ULabel.filter(Q(name__startswith="a") | Q(name__startswith="d"), ~Q(name="delta"))
    assert names(got) == ["alpha"]
    got = ln.ULabel.filter(Q(name__contains="a") & ~Q(name__in=["alpha", "beta"]))
    assert sorted(names(got)) == ["delta", "gamma"]
    got = ln.ULabel.filter(~Q(name="beta"))
    assert sorted(names(got)) == ["alpha", "delta", "gamma"]
    # a Q combined with keywords, and chained filters AND together
    assert names(ln.ULabel.filter(Q(name="alpha") | Q(name="beta"), name="beta")) == ["beta"]
    assert names(ln.ULabel.filter(Q(name="alpha") | Q(name="beta")).filter(name="alpha")) == [
        "alpha"
    ]
    # ~ on a field that is missing on some nodes keeps them (Django's exclude semantics)
    labels[0].description = "x"
    labels[0].save()
    assert sorted(names(ln.ULabel.filter(~Q(description="x")))) == ["alpha", "delta", "gamma"]
    assert sorted(names(ln.ULabel.filter().exclude(description="x"))) == ["alpha", "delta", "gamma"]


# --------------------------------------------------------------------------------------------
# get()
# --------------------------------------------------------------------------------------------
def test_get_by_id_uid_prefix_and_fields(storage: Path) -> None:
    label = ln.ULabel(name="target").save()
    ln.ULabel(name="other").save()
    assert ln.ULabel.get(label.id).uid == label.uid
    assert ln.ULabel.get(label.uid).name == "target"
    assert ln.ULabel.get(label.uid[:6]).uid == label.uid  # a uid prefix
    assert ln.ULabel.get(name="target").uid == label.uid
    with pytest.raises(DoesNotExist):
        ln.ULabel.get(name="nope")
    with pytest.raises(DoesNotExist):
        ln.ULabel.get(10_000)
    with pytest.raises(DoesNotExist):
        ln.ULabel.get("x" * 8)
    with pytest.raises(MultipleResultsFound):
        ln.ULabel.get(name__in=["target", "other"])

    # versioned: a prefix up to the stem and field lookups give the latest version
    v1 = make_artifact(storage, "ver/data.txt", "version 1")
    path2 = storage.parent / "src" / "v2.txt"
    path2.write_text("version 2")
    v2 = ln.Artifact(path2, revises=v1).save()
    assert v2.uid[:16] == v1.uid[:16] and v2.uid.endswith("0001") and v1.uid.endswith("0000")
    assert ln.Artifact.get(v1.uid).uid == v1.uid  # the full uid: that version
    assert ln.Artifact.get(v1.id).uid == v1.uid
    assert ln.Artifact.get(v1.uid[:16]).uid == v2.uid  # the stem: the latest
    assert ln.Artifact.get(v1.uid[:8]).uid == v2.uid
    assert ln.Artifact.get(key="ver/data.txt").uid == v2.uid
    with pytest.raises(DoesNotExist):
        ln.Artifact.get(v1.uid + "X")
    # the same key in another storage is another family: get(key=...) is ambiguous
    ln.settings.storage = storage.parent / "other-storage"
    make_artifact(storage, "ver/data.txt", "another family")
    with pytest.raises(MultipleResultsFound):
        ln.Artifact.get(key="ver/data.txt")
    # trashing the latest version: the stem now gives the previous one
    v2.delete()
    assert ln.Artifact.get(v1.uid[:16]).uid == v1.uid
    assert ln.Artifact.get(v2.uid).branch == -1


def test_get_argument_errors(labels: list[ln.ULabel]) -> None:
    with pytest.raises(InvalidArgument):
        ln.ULabel.get()
    with pytest.raises(InvalidArgument):
        ln.ULabel.get(labels[0].id, name="beta")
    with pytest.raises(InvalidArgument):
        ln.ULabel.get(labels[0].uid, name="beta")
    with pytest.raises(InvalidArgument):
        ln.ULabel.filter(ln.Q(name="beta"), "notaq").to_list()
    with pytest.raises(InvalidArgument):
        ln.ULabel.filter().exclude("notaq")


# --------------------------------------------------------------------------------------------
# field names are validated, values are parameters
# --------------------------------------------------------------------------------------------
def test_unknown_field_names_the_field_and_the_valid_ones(labels: list[ln.ULabel]) -> None:
    with pytest.raises(FieldValidationError) as info:
        ln.ULabel.filter(nmae="alpha").to_list()
    message = str(info.value)
    assert "nmae" in message
    assert "name" in message and "description" in message and "uid" in message
    with pytest.raises(FieldValidationError) as info:
        ln.Artifact.filter(run__transform__kee="x").count()
    assert "kee" in str(info.value) and "key" in str(info.value)
    with pytest.raises(FieldValidationError):
        ln.ULabel.filter().order_by("nmae").to_list()
    with pytest.raises(FieldValidationError):
        ln.ULabel.get(nmae="alpha")
    with pytest.raises(FieldValidationError):
        ln.ULabel.filter().df(include="created_by__nmae")
    # a field error is also a lineage error
    assert issubclass(FieldValidationError, ln.errors.LineageError)


def test_malicious_field_name_is_rejected(storage: Path, labels: list[ln.ULabel]) -> None:
    make_artifact(storage, "safe.txt")
    evil = "key` = 1 OR 1=1 //"
    with pytest.raises(FieldValidationError):
        ln.Artifact.filter(**{evil: 1}).to_list()
    with pytest.raises(FieldValidationError):
        ln.Artifact.filter(**{"key` = 1 OR 1=1 //": 1}).count()
    with pytest.raises(FieldValidationError):
        ln.ULabel.filter(**{"name}) DETACH DELETE n //": "x"}).exists()
    with pytest.raises(FieldValidationError):
        ln.ULabel.filter().order_by("name DESC, n.uid").to_list()
    # nothing was changed
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [4]
    assert ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"].tolist() == [1]


def test_values_are_parameters(labels: list[ln.ULabel]) -> None:
    injection = "x' OR '1'='1"
    assert ln.ULabel.filter(name=injection).count() == 0
    assert ln.ULabel.filter(name=injection).to_list() == []
    assert ln.ULabel.filter(name__startswith=injection).count() == 0
    assert ln.ULabel.filter(name__in=[injection, "alpha"]).count() == 1
    assert len(ln.ULabel.search(injection)) == 0
    # such a value is stored and found literally
    weird = ln.ULabel(name=injection).save()
    assert ln.ULabel.get(name=injection).uid == weird.uid
    assert ln.ULabel.filter(name=injection).count() == 1
    assert ln.ULabel.filter().count() == 5


# --------------------------------------------------------------------------------------------
# using(): another configured instance
# --------------------------------------------------------------------------------------------
def test_using_a_named_instance(
    labels: list[ln.ULabel], neo4j, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("LINEAGE_HOME", str(home))  # instances.json goes here, not the session's
    s = neo4j.settings
    ln.settings.add_instance("other", s.uri, user=s.user, password=s.password, database=s.database)
    path = home / "instances.json"
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    via_other = ln.ULabel.using("other").filter().order_by("name")
    assert names(via_other) == ["alpha", "beta", "delta", "gamma"]
    assert uids(ln.ULabel.using("other").order_by("id")) == uids(labels)
    assert ln.ULabel.filter(name="alpha").using("other").one().uid == labels[1].uid
    assert ln.ULabel.using("other").df()["name"].tolist() == ["beta", "alpha", "gamma", "delta"]
    assert ln.ULabel.using("other").search("gamma").first().uid == labels[2].uid

    ln.settings.add_instance("second", s.uri, user=s.user, password=s.password, database=s.database)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(InvalidArgument) as info:
        ln.ULabel.using("nowhere")
    message = str(info.value)
    assert "nowhere" in message and "other" in message and "second" in message
