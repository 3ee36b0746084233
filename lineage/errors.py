"""Every error lineage raises, importable from one place: `ln.errors`.

One tree: `LineageError` is the root of everything below, so `except ln.errors.LineageError`
catches any error of ours (the CLI does exactly that). Where lamindb users catch a builtin, the
error is also one: `DoesNotExist` is a `LookupError`, `ValidationError` and `InvalidArgument` are
`ValueError`s, `InvalidType` a `TypeError`, `NotSupported` a `NotImplementedError`.

    LineageError
    ├── ConnectionFailed ── AuthenticationFailed, InvalidURI, CommitUnknown
    ├── QueryError, ServerError, SchemaError
    ├── FieldValidationError (ValueError)      a field or lookup the model does not have
    ├── ValidationError (ValueError)           a value not valid for its field
    ├── InvalidArgument (ValueError)           an argument not valid for the call
    │   ├── NotSaved                           a record that must be saved first
    │   └── InvalidEvent                       an OpenLineage event that is not valid (`.path`)
    ├── InvalidType (TypeError)                an argument of the wrong type
    ├── VersionTagExists (ValueError), MissingTarget (ValueError), DuplicateContent, FamilyExists
    ├── DoesNotExist (LookupError), MultipleResultsFound (LookupError)
    ├── DataError (ValueError)                 a file that cannot be read as asked
    ├── MissingFile (FileNotFoundError)        a file that is not there
    └── NotSupported (NotImplementedError)

>>> import lineage as ln
>>> try:
...     ln.connect("bolt://127.0.0.1:1")
... except ln.errors.ConnectionFailed as exc:
...     print(exc)
could not connect to Neo4j at bolt://127.0.0.1:1 after ... attempt(s): ...
>>> issubclass(ln.errors.ConnectionFailed, ln.errors.LineageError)
True
"""

from graph.errors import (
    AuthenticationFailed,
    CommitUnknown,
    ConnectionFailed,
    DuplicateContent,
    FamilyExists,
    FieldValidationError,
    InvalidURI,
    LineageError,
    MissingTarget,
    QueryError,
    SchemaError,
    ServerError,
    VersionTagExists,
)


class DoesNotExist(LineageError, LookupError):
    """`get()` or `one()` found no record."""


class MultipleResultsFound(LineageError, LookupError):
    """`one()` or `get()` by fields found more than one record."""


class ValidationError(LineageError, ValueError):
    """A value is not valid for its field (wrong type, not one of the allowed choices)."""


class InvalidArgument(LineageError, ValueError):
    """An argument is not valid for this call (an unknown keyword, a bad combination)."""


class NotSaved(InvalidArgument):
    """The call needs a saved record (`revises=`, `delete()`, a relation) and got an unsaved one."""


class InvalidEvent(InvalidArgument):
    """An OpenLineage event (or a batch of them) that is not valid: `path` is the JSON path of
    the first problem (`$.run.runId`, `$[3].outputs[0].name`; `line 7: $...` in a file)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class InvalidType(LineageError, TypeError):
    """An argument of the wrong type (`revises=` of another registry, a path that is a number)."""


class DataError(LineageError, ValueError):
    """A file cannot be read as asked (not the format its suffix says, an unknown join, ...)."""


class MissingFile(LineageError, FileNotFoundError):
    """A file the call needs is not there (a path given to `Artifact()`, a stored copy)."""


class NotSupported(LineageError, NotImplementedError):
    """A lamindb option or call that lineage does not implement."""


__all__ = [
    "AuthenticationFailed",
    "CommitUnknown",
    "ConnectionFailed",
    "DataError",
    "DoesNotExist",
    "DuplicateContent",
    "FamilyExists",
    "FieldValidationError",
    "InvalidArgument",
    "InvalidEvent",
    "InvalidType",
    "InvalidURI",
    "LineageError",
    "MissingFile",
    "MissingTarget",
    "MultipleResultsFound",
    "NotSaved",
    "NotSupported",
    "QueryError",
    "SchemaError",
    "ServerError",
    "ValidationError",
    "VersionTagExists",
]
