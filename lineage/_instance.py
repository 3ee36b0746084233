"""The current instance: which Neo4j this process talks to, connected once, lazily.

`connect()` resolves settings (arguments, then `NEO4J_*` environment variables, then the local
server, started on demand), opens the connection and installs the schema. Every other public
function uses `current()`, which connects with the defaults when nothing is connected yet, so a
script works with no set-up beyond `import lineage as ln`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from graph import (
    Connection,
    ConnectionSettings,
    LocalServer,
    SchemaReport,
    from_arguments_or_env,
    install_schema,
)


@dataclass
class Instance:
    """A connected Neo4j database with lineage's schema installed.

    >>> instance = ln.connect()
    >>> instance.uri
    'bolt://127.0.0.1:7687'
    """

    connection: Connection
    schema: SchemaReport
    server_version: str
    server_edition: str

    @property
    def uri(self) -> str:
        return self.connection.settings.display_uri

    @property
    def database(self) -> str | None:
        return self.connection.settings.database

    @property
    def source(self) -> str:
        """Where the settings came from: "arguments", "environment" or "local server"."""
        return self.connection.settings.source

    def __repr__(self) -> str:
        db = f", database={self.database!r}" if self.database else ""
        return (
            f"Instance(uri={self.uri!r}{db}, neo4j={self.server_version} {self.server_edition}, "
            f"schema=v{self.schema.version}, source={self.source!r})"
        )


_lock = threading.Lock()
_current: Instance | None = None


def connect(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> Instance:
    """Connect to Neo4j and install lineage's schema; later calls in this process use it.

    Settings, first match wins: these arguments; the environment variables `NEO4J_URI`,
    `NEO4J_USER`, `NEO4J_PASSWORD`, `NEO4J_DATABASE`; the local server under the lineage home,
    started if it is not running.

    >>> import lineage as ln
    >>> ln.connect()                                   # the local server
    >>> ln.connect("bolt://db.example.org:7687", user="neo4j", password="...")
    """
    global _current
    settings = from_arguments_or_env(uri, user, password, database)
    if settings is None:
        server = LocalServer()
        status = server.start()
        server_user, server_password = server.credentials()
        settings = ConnectionSettings(
            uri=status.uri,
            user=user or server_user,
            password=password if password is not None else server_password,
            database=database,
            source="local server",
        )
    conn = Connection.open(settings)
    try:
        report = install_schema(conn)
        info = conn.server_info()
    except BaseException:
        conn.close()
        raise
    instance = Instance(conn, report, info["version"], info["edition"])
    with _lock:
        previous, _current = _current, instance
    if previous is not None:
        previous.connection.close()
    return instance


def current() -> Instance:
    """The connected instance, connecting with the default settings on first use."""
    with _lock:
        instance = _current
    return instance if instance is not None else connect()


def disconnect() -> None:
    """Close the current connection; the next call connects again."""
    global _current
    with _lock:
        previous, _current = _current, None
    if previous is not None:
        previous.connection.close()
