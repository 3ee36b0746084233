"""The current instance: which Neo4j this process talks to, connected once, lazily.

`connect()` resolves settings (arguments, then `NEO4J_*` environment variables, then the local
server, started on demand), opens the connection and installs the schema. Every other public
function uses `current()`, which connects with the defaults when nothing is connected yet, so a
script works with no set-up beyond `import lineage as ln`.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from graph import (
    Connection,
    ConnectionSettings,
    LocalServer,
    SchemaReport,
    from_arguments_or_env,
    install_schema,
    lineage_home,
)
from lineage.errors import InvalidArgument


@dataclass
class Instance:
    """A connected Neo4j database with lineage's schema installed.

    >>> instance = ln.connect()
    >>> instance.uri
    'bolt://...'
    >>> instance.source               # NEO4J_URI is set; without it, "local server"
    'environment'
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
    >>> ln.connect()                     # NEO4J_URI here; else the local server
    Instance(uri='bolt://...', neo4j=..., schema=v..., source='environment')

    A server elsewhere, by its address and credentials::

        ln.connect("bolt://db.example.org:7687", user="neo4j", password="...")
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
    instance = _open(settings)
    with _lock:
        previous, _current = _current, instance
    if previous is not None:
        previous.connection.close()
    return instance


def _open(settings: ConnectionSettings) -> Instance:
    """Connect and install the schema; the connection is closed again if that fails."""
    conn = Connection.open(settings)
    try:
        report = install_schema(conn)
        info = conn.server_info()
    except BaseException:
        conn.close()
        raise
    return Instance(conn, report, info["version"], info["edition"])


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
        named = list(_named.values())
        _named.clear()
    for instance in [previous, *named]:
        if instance is not None:
            instance.connection.close()


# -- named instances (`Registry.using(name)`) ------------------------------------------------------
_named: dict[str, Instance] = {}


def _instances_file() -> Path:
    return lineage_home() / "instances.json"


def add_instance(
    name: str,
    uri: str,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> None:
    """Save a named connection in `<lineage home>/instances.json` (mode 0600: it may hold a
    password)."""
    if not name or not isinstance(name, str):
        raise InvalidArgument("an instance name is a non-empty string")
    path = _instances_file()
    entries = _read_instances()
    entries[name] = {"uri": uri, "user": user, "password": password, "database": database}
    if not path.parent.exists():  # a home created here is the user's alone (0700)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A new file of our own, created 0600 (O_EXCL): a leftover temporary file, perhaps
    # world-readable, is never reused, and concurrent writers do not share one.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(entries, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with _lock:
        old = _named.pop(name, None)
    if old is not None:
        old.connection.close()


def _read_instances() -> dict[str, dict]:
    path = _instances_file()
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def instance_named(name: str) -> Instance:
    """The connected instance registered under `name` (connected once, then reused)."""
    with _lock:
        found = _named.get(name)
    if found is not None:
        return found
    entries = _read_instances()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise InvalidArgument(
            f"no instance named {name!r} (configured: {known}); add one with "
            "ln.settings.add_instance(name, uri, user=..., password=...)"
        )
    e = entries[name]
    settings = ConnectionSettings(
        uri=e["uri"],
        user=e.get("user") or "neo4j",
        password=e.get("password"),
        database=e.get("database"),
        source=f"instance {name}",
    )
    instance = _open(settings)
    with _lock:
        _named[name] = instance
    return instance
