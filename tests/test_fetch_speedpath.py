"""graph.query.fetch's fast read path returns exactly what the driver's own conversion returns.

`fetch` has Neo4j send a UTC datetime as an int of microseconds and rebuilds it in Python, sends
any other datetime as before, and reads rows in batches of records. The reference here is the
driver's path that `fetch` used before: `RETURN n` (a Node) through `graph.connection.plain`
(`to_native()` on every temporal value). Every value must be equal, of the same type, with the
same repr (so the same tzinfo), and a missing property must stay missing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import neo4j
import pytest

import graph.query as gq
import lineage as ln
from graph.query import Anchor, Q, Select, fetch
from tests.conftest import make_artifact

CEST = timezone(timedelta(hours=2))
IST = timezone(timedelta(hours=5, minutes=30))
NEG = timezone(timedelta(hours=-3, minutes=-30))


def _reference(conn: Any, label: str) -> list[dict[str, Any]]:
    """The rows as the driver converts them: nodes through `plain()`, in id order."""
    return [r["n"] for r in conn.read(f"MATCH (n:`{label}`) RETURN n ORDER BY n.id")]


def _assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w), (g, w)
        for key, value in w.items():
            assert g[key] == value, (key, g[key], value)
            assert type(g[key]) is type(value), (key, type(g[key]), type(value))
            assert repr(g[key]) == repr(value), (key, g[key], value)
            if isinstance(value, datetime):
                assert g[key].tzinfo is value.tzinfo or (
                    g[key].tzinfo is not None and repr(g[key].tzinfo) == repr(value.tzinfo)
                ), (key, g[key].tzinfo, value.tzinfo)


# Datetime values written from Python: lineage's own (UTC), other offsets, naive, pre-1970 with
# microseconds, and the ends of Python's range. (Named zones are made by Cypher below: the driver
# (6.1) sending a datetime with a `zoneinfo` zone calls `ZoneInfo.utcoffset` with its own
# DateTime type, which crashed the interpreter or gave a garbage offset here.)
PY_STAMPS: list[datetime] = [
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(0), "Z")),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500001, tzinfo=UTC),
    datetime(1900, 2, 28, 12, 0, 0, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=CEST),
    datetime(2024, 5, 6, 7, 8, 9, tzinfo=IST),
    datetime(1960, 5, 6, 7, 8, 9, 654321, tzinfo=NEG),
    datetime(2024, 5, 6, 7, 8, 9, 5, tzinfo=timezone(timedelta(hours=-8))),
    datetime(1950, 1, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=14))),
    datetime(2024, 5, 6, 7, 8, 9, 42),  # naive: a LocalDateTime in Neo4j
]

# Values made by Cypher: nanoseconds (truncated to microseconds), the floor of a negative epoch,
# other temporal types and other types where a datetime is declared.
CYPHER_STAMPS = [
    "datetime('2024-05-06T07:08:09.123456789Z')",
    "datetime('9999-12-31T23:59:59.999999999Z')",
    "datetime({epochSeconds: -1, nanosecond: 999999999})",
    "datetime({epochSeconds: -62135596800, nanosecond: 999})",
    "datetime('2024-05-06T07:08:09.987654321+01:00')",
    "datetime('2024-05-06T07:08:09[America/New_York]')",
    "datetime('2024-05-06T07:08:09.000005[Europe/Berlin]')",
    "datetime({year: 2024, month: 1, day: 6, hour: 7, timezone: 'UTC'})",
    "datetime('1960-07-01T03:00:00.001234567[Asia/Kolkata]')",
    "datetime()",
    "localdatetime('2024-05-06T07:08:09.123456789')",
    "date('2024-05-06')",
    "'2024-05-06T07:08:09Z'",
    "1714979289000000",
    "[1714979289, 5]",
    "[datetime('2024-05-06T07:08:09Z')]",
    "true",
]


def _write_stamped_artifacts(conn: Any) -> None:
    props = []
    rng = random.Random(0)
    # Random UTC instants over Python's whole range, to microseconds: lineage's own case.
    lo, hi = -62135596800 * 10**6, 253402300799 * 10**6 + 999999
    randoms = [gq._EPOCH + timedelta(microseconds=rng.randint(lo, hi)) for _ in range(300)]
    for i, stamp in enumerate([*PY_STAMPS, *randoms]):
        p: dict[str, Any] = {"uid": f"py{i:05d}", "id": i, "branch": 1, "created_at": stamp}
        if i % 3 == 0:
            p["updated_at"] = stamp + timedelta(seconds=i)  # else missing: must stay missing
        props.append(p)
    conn.run("UNWIND $props AS p CREATE (n:Artifact) SET n = p", {"props": props})
    base = len(props)
    for j, expr in enumerate(CYPHER_STAMPS):
        conn.run(
            "CREATE (n:Artifact {uid: $uid, id: $id, branch: 1, key: $key}) "
            f"SET n.created_at = {expr}, n.updated_at = {expr}",
            {"uid": f"cy{j:05d}", "id": base + j, "key": f"cypher/{j}"},
        )
    # Properties outside the model: temporal, spatial, lists of temporal values.
    conn.run(
        "CREATE (n:Artifact {uid: 'extra', id: $id, branch: 1, key: 'extra'}) "
        "SET n.extra_dt = datetime('2024-05-06T07:08:09.5Z'), n.extra_date = date('2024-05-06'), "
        "n.extra_dur = duration('P1DT2H'), n.extra_point = point({x: 1.5, y: 2.5}), "
        "n.extra_list = [datetime('2024-05-06T07:08:09Z'), datetime('1950-01-01T00:00+05:00')], "
        "n.extra_time = time('07:08:09.123+02:00'), n.extra_ints = [1, 2, 3]",
        {"id": base + len(CYPHER_STAMPS)},
    )


def test_values_and_types_equal_the_drivers(db: ln.Instance) -> None:
    conn = db.connection
    _write_stamped_artifacts(conn)
    want = _reference(conn, "Artifact")
    got = fetch(conn, Select("Artifact", branch=None))
    _assert_same(got, want)

    by_uid = {r["uid"]: r for r in got}
    # lineage's own values: timezone-aware, UTC, the stored instant to the microsecond
    first = by_uid["py00000"]["created_at"]
    assert first == PY_STAMPS[0] and first.utcoffset() == timedelta(0)
    assert first.tzinfo is want[0]["created_at"].tzinfo
    assert "updated_at" not in by_uid["py00001"]  # missing stays missing, never None
    assert by_uid["py00010"]["created_at"].utcoffset() == timedelta(hours=-3, minutes=-30)
    assert by_uid["py00013"]["created_at"].tzinfo is None  # naive stays naive

    def cypher_made(expr: str) -> Any:
        return by_uid[f"cy{CYPHER_STAMPS.index(expr):05d}"]["created_at"]

    nanos = cypher_made("datetime('2024-05-06T07:08:09.123456789Z')")
    assert nanos == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)  # truncated, not rounded
    floor = cypher_made("datetime({epochSeconds: -1, nanosecond: 999999999})")
    assert floor == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert cypher_made("'2024-05-06T07:08:09Z'") == "2024-05-06T07:08:09Z"  # other types as is
    assert cypher_made("1714979289000000") == 1714979289000000
    assert cypher_made("[1714979289, 5]") == [1714979289, 5]
    berlin = cypher_made("datetime('2024-05-06T07:08:09.000005[Europe/Berlin]')")
    assert berlin.utcoffset() == timedelta(hours=2) and berlin.microsecond == 5
    assert by_uid["extra"]["extra_ints"] == [1, 2, 3]

    # Run has four datetime fields
    conn.run(
        "UNWIND range(1, 4) AS i CREATE (:Run {uid: 'run' + i, id: i, branch: 1, "
        "created_at: datetime({epochSeconds: 1700000000 + i, nanosecond: i * 1001}), "
        "started_at: CASE WHEN i % 2 = 0 THEN datetime('2024-01-01T00:00+02:00') END, "
        "finished_at: CASE WHEN i > 2 THEN datetime({epochMillis: i}) END})"
    )
    _assert_same(fetch(conn, Select("Run")), _reference(conn, "Run"))


def test_records_and_frames_carry_the_same_values(storage: Any) -> None:
    saved = [make_artifact(storage, f"speed/{i}.txt") for i in range(3)]
    inst_conn = saved[0]._inst().connection
    want = {r["uid"]: r for r in _reference(inst_conn, "Artifact")}
    records = ln.Artifact.filter(key__startswith="speed/").to_list()
    assert [r.uid for r in records] == [a.uid for a in saved]
    for record in records:
        stored = want[record.uid]
        for field in ("created_at", "updated_at"):
            value = getattr(record, field)
            assert value == stored.get(field) and repr(value) == repr(stored.get(field))
            assert value is None or value.utcoffset() == timedelta(0)
    frame = ln.Artifact.filter(key__startswith="speed/").df()
    assert list(frame["uid"]) == [a.uid for a in saved]
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert [t.to_pydatetime() for t in frame["created_at"]] == [
        want[u]["created_at"] for u in frame["uid"]
    ]


def test_batches_keep_order_offset_limit_and_includes(
    db: ln.Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = db.connection
    conn.run(
        "UNWIND range(1, 11) AS i CREATE (:Artifact {uid: 'a' + i, id: i, branch: 1, "
        "key: 'k/' + toString(100 - i), created_at: datetime({epochSeconds: 1700000000 + i})})"
    )
    conn.run(
        "CREATE (c:Collection {uid: 'c1', id: 1, branch: 1, key: 'coll'}) WITH c "
        "UNWIND range(1, 11) AS i MATCH (a:Artifact {id: i}) "
        "CREATE (c)-[:CONTAINS {position: 11 - i}]->(a)"
    )
    conn.run("CREATE (:User {uid: 'u1', id: 1, branch: 1, name: 'alice'})")
    conn.run("MATCH (a:Artifact), (u:User) WHERE a.id % 2 = 0 CREATE (a)-[:CREATED_BY]->(u)")
    selects = [
        Select("Artifact"),
        Select("Artifact", order_by=("key",)),
        Select("Artifact", order_by=("-created_at",), offset=2, limit=7),
        Select("Artifact", Q(key__startswith="k/9"), offset=1),
        Select("Artifact", anchor=Anchor("Collection", "c1", "artifacts", "position")),
        Select("Artifact", anchor=Anchor("Collection", "c1", "artifacts", "-position"), limit=5),
        Select("Artifact", anchor=Anchor("Collection", "c1", "artifacts"), distinct=True),
        Select("Artifact", Q(key="nothing")),
        Select("Artifact", limit=0),
        # up to gq._ROW_BY_ROW (4) records come one per row, more in lists
        Select("Artifact", order_by=("-id",), limit=1),
        Select("Artifact", order_by=("key",), offset=3, limit=4),
        Select("Artifact", order_by=("key",), offset=3, limit=5),
        Select("Artifact", Q(key="nothing"), limit=2),
    ]
    include = ["created_by__name", "collections__key", "key"]
    whole = [(fetch(conn, s), fetch(conn, s, include=include)) for s in selects]
    assert [r["id"] for r in whole[0][0]] == list(range(1, 12))
    assert [r["id"] for r in whole[1][0]] == list(range(11, 0, -1))
    assert [r["id"] for r in whole[2][0]] == [9, 8, 7, 6, 5, 4, 3]
    assert [r["id"] for r in whole[4][0]] == list(range(11, 0, -1))
    assert whole[7] == ([], []) and whole[8] == ([], []) and whole[12] == ([], [])
    assert [r["id"] for r in whole[9][0]] == [11]
    assert [r["id"] for r in whole[10][0]] == [8, 7, 6, 5]
    assert [r["id"] for r in whole[11][0]] == [8, 7, 6, 5, 4]
    assert whole[10][1][0]["created_by__name"] == "alice" and whole[10][1][1]["key"] == "k/93"
    assert [r["created_by__name"] for r in whole[0][1]] == [None, "alice"] * 5 + [None]
    assert all(r["collections__key"] == ["coll"] for r in whole[0][1])
    # with 3 records per result row: the same rows, in the same order
    monkeypatch.setattr(gq, "_BATCH", 3)
    query, params = gq.compile_fetch(selects[0])
    assert params["batch"] == 3 and "$batch" in query
    query, params = gq.compile_fetch(selects[9])
    assert "batch" not in params and "collect(n)" not in query
    for s, (plain_rows, with_includes) in zip(selects, whole):
        assert fetch(conn, s) == plain_rows
        assert fetch(conn, s, include=include) == with_includes


def test_one_statement_per_fetch(db: ln.Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = db.connection
    conn.run(
        "UNWIND range(1, 2500) AS i CREATE (:Artifact {uid: 'a' + i, id: i, branch: 1, "
        "created_at: datetime({epochSeconds: i})})"
    )
    sent: list[str] = []
    run = neo4j.Session.run

    def counting(self: neo4j.Session, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return run(self, query, *args, **kwargs)

    monkeypatch.setattr(neo4j.Session, "run", counting)
    rows = fetch(conn, Select("Artifact"))
    assert len(sent) == 1 and len(rows) == 2500
    assert [r["id"] for r in rows] == list(range(1, 2501))
    assert rows[-1]["created_at"] == datetime(1970, 1, 1, 0, 41, 40, tzinfo=UTC)


def test_the_int_encoding_never_mistakes_a_stored_int(db: ln.Instance) -> None:
    """An int stored under a datetime field comes back as that int (it is sent wrapped)."""
    conn = db.connection
    conn.run("CREATE (:Artifact {uid: 'i', id: 1, branch: 1, created_at: 5, updated_at: [5]})")
    (row,) = fetch(conn, Select("Artifact"))
    assert row["created_at"] == 5 and row["updated_at"] == [5]
