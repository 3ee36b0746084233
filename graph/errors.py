"""Errors raised by the graph layer.

`lineage.errors` re-exports these, so users catch them from one module.
"""

from __future__ import annotations


class GraphError(Exception):
    """Base class of every error the graph layer raises."""


class ConnectionFailed(GraphError):
    """Neo4j could not be reached at the configured URI."""


class CommitUnknown(ConnectionFailed):
    """The connection was lost while a commit was in flight: the write may or may not be stored.

    Neo4j may have made the transaction durable before it died; whoever wrote files for the
    transaction must keep them (`lineage doctor --fix` removes those no record points at).
    """


class AuthenticationFailed(ConnectionFailed):
    """Neo4j answered but rejected the credentials."""


class InvalidURI(ConnectionFailed):
    """The connection URI is not a Neo4j URI the driver accepts."""


class QueryError(GraphError):
    """Neo4j rejected a query (syntax, constraint, type error): the server's code and message."""


class ServerError(GraphError):
    """The local Neo4j server could not be installed, started or stopped."""


class SchemaError(GraphError):
    """The schema could not be installed or is from a newer version of lineage."""


class FieldValidationError(GraphError, ValueError):
    """A field or relation name that the record's model does not declare, or a bad lookup."""
