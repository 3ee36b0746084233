"""Connection settings precedence and connection errors, against the session's real Neo4j."""

from __future__ import annotations

import time

import pytest

import lineage as ln
from graph import ConnectionSettings, from_arguments_or_env, redact_uri
from tests.conftest import Neo4jUnderTest, free_port

NEO4J_VARS = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in NEO4J_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_arguments_beat_environment(clean_env) -> None:
    clean_env.setenv("NEO4J_URI", "bolt://env-host:7687")
    clean_env.setenv("NEO4J_USER", "env-user")
    clean_env.setenv("NEO4J_PASSWORD", "env-secret")
    clean_env.setenv("NEO4J_DATABASE", "envdb")
    s = from_arguments_or_env(
        "bolt://arg-host:7687", user="arg-user", password="arg-secret", database="argdb"
    )
    assert (s.uri, s.user, s.password, s.database, s.source) == (
        "bolt://arg-host:7687",
        "arg-user",
        "arg-secret",
        "argdb",
        "arguments",
    )


def test_environment_fills_in_what_arguments_leave_out(clean_env) -> None:
    clean_env.setenv("NEO4J_URI", "neo4j+s://env-host:7687")
    clean_env.setenv("NEO4J_PASSWORD", "env-secret")
    s = from_arguments_or_env(user="someone")
    assert (s.uri, s.user, s.password, s.database, s.source) == (
        "neo4j+s://env-host:7687",
        "someone",
        "env-secret",
        None,
        "environment",
    )


def test_no_uri_anywhere_means_local_server(clean_env) -> None:
    assert from_arguments_or_env() is None
    assert from_arguments_or_env(user="neo4j", password="x") is None


def test_password_is_never_in_repr() -> None:
    s = ConnectionSettings(uri="bolt://h:7687", user="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(s)
    assert redact_uri("bolt://u:hunter2-secret@h:7687/db") == "bolt://h:7687/db"


def test_connect_uses_environment(neo4j: Neo4jUnderTest, clean_env) -> None:
    s = neo4j.settings
    clean_env.setenv("NEO4J_URI", s.uri)
    if s.password:
        clean_env.setenv("NEO4J_PASSWORD", s.password)
    instance = ln.connect()
    assert instance.source == "environment" and instance.uri == s.display_uri
    assert ln.cypher("RETURN 1 AS x")["x"].tolist() == [1]


def test_arguments_beat_a_broken_environment(neo4j: Neo4jUnderTest, clean_env) -> None:
    clean_env.setenv("NEO4J_URI", f"bolt://127.0.0.1:{free_port()}")  # nothing listens there
    s = neo4j.settings
    instance = ln.connect(s.uri, user=s.user, password=s.password, database=s.database)
    assert instance.source == "arguments"


def test_connect_without_settings_uses_the_local_server(neo4j: Neo4jUnderTest, clean_env) -> None:
    if neo4j.kind != "local server":
        pytest.skip("this session's Neo4j is not the project's local server")
    instance = ln.connect()
    assert instance.source == "local server"
    assert instance.uri == neo4j.settings.uri
    assert instance.server_edition == "community" and instance.server_version.startswith("5.26")


def test_unreachable_uri_fails_fast_naming_the_uri(clean_env) -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ln.errors.ConnectionFailed) as info:
        ln.connect(uri, password="never-shown")
    assert time.monotonic() - t0 < 30  # bounded retry, not the driver's open-ended one
    assert uri in str(info.value) and "never-shown" not in str(info.value)


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:7474", "localhost:7687", "bolt://user:pw-in-uri@127.0.0.1:7687"]
)
def test_bad_uri_is_a_clear_error_without_secrets(uri: str, clean_env) -> None:
    with pytest.raises(ln.errors.InvalidURI) as info:
        ln.connect(uri, password="never-shown")
    message = str(info.value)
    assert "not a Neo4j URI" in message and "bolt://" in message
    assert "never-shown" not in message and "pw-in-uri" not in message


def test_unknown_database_names_it(neo4j: Neo4jUnderTest, clean_env) -> None:
    s = neo4j.settings
    with pytest.raises(ln.errors.ConnectionFailed, match="nosuchdb"):
        ln.connect(s.uri, user=s.user, password=s.password, database="nosuchdb")


def test_first_call_connects_on_its_own(neo4j: Neo4jUnderTest, clean_env) -> None:
    s = neo4j.settings
    clean_env.setenv("NEO4J_URI", s.uri)
    if s.password:
        clean_env.setenv("NEO4J_PASSWORD", s.password)
    ln.disconnect()
    assert ln.cypher("RETURN 1 AS x")["x"].tolist() == [1]  # no ln.connect() before
