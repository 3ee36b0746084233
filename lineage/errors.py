"""Every error lineage raises, importable from one place: `ln.errors`.

>>> import lineage as ln
>>> try:
...     ln.Artifact.get(key="no/such/file.csv")
... except ln.errors.DoesNotExist as exc:
...     print(exc)
no Artifact matching {'key': 'no/such/file.csv'}
>>> try:
...     ln.connect("bolt://127.0.0.1:1")      # nothing listens on port 1
... except ln.errors.ConnectionFailed as exc:
...     print(exc)
could not connect to Neo4j at bolt://127.0.0.1:1 after ... attempt(s): ...
"""

from graph.errors import (
    AuthenticationFailed,
    CommitUnknown,
    ConnectionFailed,
    FieldValidationError,
    GraphError,
    InvalidURI,
    QueryError,
    SchemaError,
    ServerError,
)

LineageError = GraphError  # the base class of everything below


class DoesNotExist(LineageError, LookupError):
    """`get()` or `one()` found no record."""


class MultipleResultsFound(LineageError, LookupError):
    """`one()` or `get()` by fields found more than one record."""


class ValidationError(LineageError, ValueError):
    """A value is not valid for its field (wrong type, not one of the allowed choices)."""


class InvalidArgument(LineageError, ValueError):
    """An argument is not valid for this call (an unknown keyword, a bad combination)."""


__all__ = [
    "AuthenticationFailed",
    "CommitUnknown",
    "ConnectionFailed",
    "DoesNotExist",
    "FieldValidationError",
    "InvalidArgument",
    "InvalidURI",
    "LineageError",
    "MultipleResultsFound",
    "QueryError",
    "SchemaError",
    "ServerError",
    "ValidationError",
]
