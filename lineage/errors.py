"""Every error lineage raises, importable from one place: `ln.errors`.

>>> import lineage as ln
>>> try:
...     ln.connect("bolt://127.0.0.1:1")
... except ln.errors.ConnectionFailed as exc:
...     print(exc)
"""

from graph.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    GraphError,
    InvalidURI,
    QueryError,
    SchemaError,
    ServerError,
)

LineageError = GraphError  # the base class of everything below

__all__ = [
    "AuthenticationFailed",
    "ConnectionFailed",
    "InvalidURI",
    "LineageError",
    "QueryError",
    "SchemaError",
    "ServerError",
]
