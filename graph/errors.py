"""Errors raised by the graph layer, under the one root of every LineageGraph error.

`LineageError` is defined here, at the bottom, because graph/ cannot import lineage/;
`lineage.errors` re-exports every class below and adds the API's own, so users catch everything
from one module (`except ln.errors.LineageError`).
"""

from __future__ import annotations

from typing import Any


class LineageError(Exception):
    """The root of every error LineageGraph raises (graph layer and public API)."""


class ConnectionFailed(LineageError):
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


class QueryError(LineageError):
    """Neo4j rejected a query (syntax, constraint, type error): the server's code and message."""


class ServerError(LineageError):
    """The local Neo4j server could not be installed, started or stopped."""


class SchemaError(LineageError):
    """The schema could not be installed or is from a newer version of lineage."""


class FieldValidationError(LineageError, ValueError):
    """A field or relation name that the record's model does not declare, or a bad lookup."""


class VersionTagExists(LineageError, ValueError):
    """The version tag (`version="1.0"`) is already used in this version family."""


class MissingTarget(LineageError, ValueError):
    """An edge points at a record that does not exist (never saved, or deleted meanwhile).

    `target` is the label of the missing records when the write knows it (`"Storage"`: a cached
    storage record was deleted by another process), so a caller can tell what went away.
    """

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class DuplicateContent(LineageError):
    """A record with the same content was stored meanwhile (by another process): nothing was
    written. `existing` maps the uid each new record was to have (the new version's uid when
    it revises a family) to the stored record's properties."""

    def __init__(self, label: str, existing: dict[str, dict[str, Any]]) -> None:
        self.label = label
        self.existing = existing
        hashes = sorted({str(row.get("hash")) for row in existing.values()})
        super().__init__(
            f"{label} with hash {', '.join(hashes)} stored meanwhile by another writer"
        )


class FamilyExists(LineageError):
    """A record was to start a new version family under a key (and storage) that a stored
    family took meanwhile: nothing was written. `existing` maps the uid each new record was to
    have to the properties of that family's head, which the record should revise instead."""

    def __init__(self, label: str, existing: dict[str, dict[str, Any]]) -> None:
        self.label = label
        self.existing = existing
        keys = sorted({str(row.get("key")) for row in existing.values()})
        super().__init__(f"{label} version families with key {', '.join(keys)} exist already")
