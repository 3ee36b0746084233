"""Every error lineage raises, importable from one place: `ln.errors`.

>>> import lineage as ln
>>> try:
...     ln.connect("bolt://127.0.0.1:1")
... except ln.errors.ConnectionFailed as exc:
...     print(exc)
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
