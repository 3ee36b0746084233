"""`ln.cypher`: parameterised Cypher to DataFrame."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import lineage as ln


def test_return_one_is_a_one_row_dataframe(db: ln.Instance) -> None:
    df = ln.cypher("RETURN 1 AS x")
    assert isinstance(df, pd.DataFrame)
    assert df.shape == (1, 1) and df["x"].tolist() == [1]


def test_parameters_are_values_not_code(db: ln.Instance) -> None:
    payload = "x'}) DETACH DELETE n //"
    ln.cypher(
        "CREATE (:ULabel {uid: $uid, id: 1, name: $name})", uid="u" * 16 + "0000", name=payload
    )
    ln.cypher("CREATE (:ULabel {uid: $uid, id: 2, name: 'other'})", uid="v" * 16 + "0000")
    df = ln.cypher("MATCH (u:ULabel) WHERE u.name = $name RETURN u.name AS name", name=payload)
    assert df["name"].tolist() == [payload]
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [2]


def test_nodes_and_temporal_values_become_plain_python(db: ln.Instance) -> None:
    ln.cypher(
        "CREATE (:Run {uid: 'r1', id: 1, name: $n, started_at: datetime($t)})",
        n="train",
        t="2026-01-02T03:04:05Z",
    )
    df = ln.cypher("MATCH (r:Run) RETURN r, r.started_at AS started")
    node = df["r"].iloc[0]
    assert isinstance(node, dict) and node["name"] == "train"
    started = df["started"].iloc[0]
    assert started == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def test_empty_result_keeps_its_columns(db: ln.Instance) -> None:
    df = ln.cypher(
        "MATCH (a:Artifact) WHERE a.key = $k RETURN a.uid AS uid, a.key AS key", k="none"
    )
    assert list(df.columns) == ["uid", "key"] and len(df) == 0


def test_syntax_error_is_a_query_error(db: ln.Instance) -> None:
    with pytest.raises(ln.errors.QueryError, match="SyntaxError"):
        ln.cypher("MATCH (n RETURN n")


@pytest.mark.parametrize("bad", [None, "", "   ", 42])
def test_query_must_be_a_string(bad, db: ln.Instance) -> None:
    with pytest.raises(TypeError, match="non-empty query string"):
        ln.cypher(bad)


def test_a_parameter_may_be_called_query(db: ln.Instance) -> None:
    assert ln.cypher("RETURN $query AS q", query="x")["q"].tolist() == ["x"]
