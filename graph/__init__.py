"""Everything that speaks Neo4j: connection, schema, models, the local server manager.

This package never imports `loaders` or `lineage`; it takes plain values and returns plain
rows (dicts of Python values), so it can be tested without any data file.
"""

from graph.connection import Connection, plain
from graph.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    InvalidURI,
    LineageError,
    QueryError,
    SchemaError,
    ServerError,
)
from graph.schema import SCHEMA_VERSION, SchemaReport, install_schema
from graph.server import LocalServer, ServerStatus
from graph.settings import ConnectionSettings, from_arguments_or_env, lineage_home, redact_uri

__all__ = [
    "SCHEMA_VERSION",
    "AuthenticationFailed",
    "Connection",
    "ConnectionFailed",
    "ConnectionSettings",
    "InvalidURI",
    "LineageError",
    "LocalServer",
    "QueryError",
    "SchemaError",
    "SchemaReport",
    "ServerError",
    "ServerStatus",
    "from_arguments_or_env",
    "install_schema",
    "lineage_home",
    "plain",
    "redact_uri",
]
