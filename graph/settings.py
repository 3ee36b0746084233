"""Where to find Neo4j: connection settings and their precedence.

First match wins (docs/architecture.md, "Connecting"): explicit arguments, then the environment (`NEO4J_URI`,
`NEO4J_USER`, `NEO4J_PASSWORD`, `NEO4J_DATABASE`), then the local server that
`lineage server start` runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_USER = "neo4j"


def lineage_home() -> Path:
    """The per-user directory for the local server, its jars, config and default storage.

    `LINEAGE_HOME` overrides the default `~/.lineage`.
    """
    env = os.environ.get("LINEAGE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".lineage"


def redact_uri(uri: str) -> str:
    """The URI with any `user:password@` part removed, safe for messages and logs."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable URI>"
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class ConnectionSettings:
    """A resolved way to reach Neo4j. `password` is never shown by `repr`."""

    uri: str
    user: str = DEFAULT_USER
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    source: str = "arguments"  # "arguments", "environment" or "local server"

    @property
    def display_uri(self) -> str:
        return redact_uri(self.uri)

    def __repr__(self) -> str:
        # The URI redacted too: `bolt://user:secret@host` must not leak through a repr.
        return (
            f"ConnectionSettings(uri={self.display_uri!r}, user={self.user!r}, "
            f"database={self.database!r}, source={self.source!r})"
        )


def from_arguments_or_env(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> ConnectionSettings | None:
    """Settings from arguments, else from the environment; None means "use the local server".

    Each field falls back on its own: `connect(password=...)` with `NEO4J_URI` set uses both.
    """
    env = os.environ
    if uri:
        source = "arguments"
    elif env.get("NEO4J_URI"):
        uri, source = env["NEO4J_URI"], "environment"
    else:
        return None
    return ConnectionSettings(
        uri=uri,
        user=user or env.get("NEO4J_USER") or DEFAULT_USER,
        password=password if password is not None else env.get("NEO4J_PASSWORD"),
        database=database or env.get("NEO4J_DATABASE") or None,
        source=source,
    )
