"""One real Neo4j for the whole test session, and an empty graph for each test that asks.

Where the Neo4j comes from (docs/architecture.md, "Tests"), first match wins:
1. `NEO4J_URI` (with `NEO4J_USER` / `NEO4J_PASSWORD`) if set. The suite wipes that database.
2. testcontainers' Neo4j, when a Docker engine answers a ping.
3. The project's own local server, started in a temporary lineage home on a free port.

In cases 2 and 3 the session points `LINEAGE_HOME` at a temporary directory, so no test touches
the user's own `~/.lineage` server; the Neo4j jars are still shared with the user's install.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import lineage as ln

pytest_plugins = ["tests.s3"]
from graph import Connection, ConnectionSettings
from graph.server import LocalServer, default_install_dir


@dataclass(frozen=True)
class Neo4jUnderTest:
    settings: ConnectionSettings
    kind: str  # "environment", "testcontainers" or "local server"

    def child_env(self) -> dict[str, str]:
        """The environment for a child process that must connect to this Neo4j."""
        s = self.settings
        env = dict(os.environ, NEO4J_URI=s.uri, NEO4J_USER=s.user or "neo4j")
        for name, value in (("NEO4J_PASSWORD", s.password), ("NEO4J_DATABASE", s.database)):
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env


def make_artifact(storage: Path, key: str, content: str | None = None, **kwargs) -> ln.Artifact:
    """A saved artifact from a small text file with its own content (so no dedup)."""
    src = storage.parent / "src"
    src.mkdir(exist_ok=True)
    path = src / key.replace("/", "__")
    path.write_text(content if content is not None else f"content of {key}\n")
    return ln.Artifact(path, key=key, **kwargs).save()


def prep_and_train(storage: Path, raw_description: str | None = None) -> tuple[ln.Artifact, ...]:
    """The two-step pipeline the lineage pages and the explorer are tested on: `prep.py` reads
    raw/cells.csv and writes clean/cells.csv, `train.py` reads that and writes
    model/weights.txt. Returns (raw, clean, model)."""
    raw = make_artifact(storage, "raw/cells.csv", description=raw_description)
    ln.track("prep.py")
    ln.Artifact.get(raw.uid, is_run_input=True)
    clean = make_artifact(storage, "clean/cells.csv")
    ln.finish()
    ln.track("train.py")
    ln.Artifact.get(clean.uid, is_run_input=True)
    model = make_artifact(storage, "model/weights.txt")
    ln.finish()
    return raw, clean, model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def neo4j_install_dir() -> Path:
    """The user's Neo4j jar install, shared by every server the tests start."""
    return default_install_dir()


@pytest.fixture(scope="session")
def neo4j(
    tmp_path_factory: pytest.TempPathFactory, neo4j_install_dir: Path
) -> Iterator[Neo4jUnderTest]:
    saved = {
        k: os.environ.get(k)
        for k in ("LINEAGE_HOME", "LINEAGE_NEO4J_INSTALL", "LINEAGE_NEO4J_PORT")
    }
    home = tmp_path_factory.mktemp("lineage-home")
    os.environ["LINEAGE_HOME"] = str(home)
    os.environ["LINEAGE_NEO4J_INSTALL"] = str(neo4j_install_dir)
    try:
        if os.environ.get("NEO4J_URI"):
            yield Neo4jUnderTest(_env_settings(), "environment")
        elif _docker_answers():
            try:
                from testcontainers.community.neo4j import Neo4jContainer
            except ImportError:  # testcontainers < 4.9
                from testcontainers.neo4j import Neo4jContainer

            with Neo4jContainer("neo4j:5.26-community", password="lineage-test-pw") as container:
                settings = ConnectionSettings(
                    uri=container.get_connection_url(),
                    user=container.username,
                    password=container.password,
                    source="environment",
                )
                yield Neo4jUnderTest(settings, "testcontainers")
        else:
            # `ln.connect()` with no settings finds this server: it lives in the default home.
            port = free_port()
            os.environ["LINEAGE_NEO4J_PORT"] = str(port)
            server = LocalServer()
            status = server.start(port=port)
            try:
                settings = ConnectionSettings(uri=status.uri, source="local server")
                yield Neo4jUnderTest(settings, "local server")
            finally:
                server.stop()
    finally:
        ln.disconnect()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _env_settings() -> ConnectionSettings:
    return ConnectionSettings(
        uri=os.environ["NEO4J_URI"],
        user=os.environ.get("NEO4J_USER", "neo4j"),
        password=os.environ.get("NEO4J_PASSWORD"),
        database=os.environ.get("NEO4J_DATABASE") or None,
        source="environment",
    )


@pytest.fixture
def db(neo4j: Neo4jUnderTest) -> Iterator[ln.Instance]:
    """The session's Neo4j, emptied, connected as the current instance, schema installed."""
    s = neo4j.settings
    # Wipe before connecting: a test may have left a state `connect` refuses (a newer schema).
    raw = Connection.open(s)
    try:
        raw.run("MATCH (n) DETACH DELETE n")
    finally:
        raw.close()
    instance = ln.connect(s.uri, user=s.user, password=s.password, database=s.database)
    yield instance
    ln.disconnect()


@pytest.fixture
def storage(db: ln.Instance, tmp_path: Path) -> Iterator[Path]:
    """An empty graph plus a fresh local storage root and cache directory for this test."""
    saved = (
        ln.settings._storage,
        ln.settings._cache_dir,
        ln.settings.storage_options,
        ln.settings._cache_max_bytes,
    )
    root = tmp_path / "storage"
    ln.settings.storage = root
    ln.settings.cache_dir = tmp_path / "cache"
    ln.context.run = ln.context.transform = None
    try:
        yield root
    finally:
        (
            ln.settings._storage,
            ln.settings._cache_dir,
            ln.settings.storage_options,
            ln.settings._cache_max_bytes,
        ) = saved
        ln.context.run = ln.context.transform = None


@pytest.fixture
def cli_env(neo4j: Neo4jUnderTest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI connects with `ln.connect()`: point its environment at the session's Neo4j."""
    env = neo4j.child_env()
    for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        if name in env:
            monkeypatch.setenv(name, env[name])
        else:
            monkeypatch.delenv(name, raising=False)
    return env
