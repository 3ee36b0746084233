"""A connection to one Neo4j database: the driver, explicit transactions, plain-value results.

Everything above this module sees rows as lists of plain Python values (dicts, lists, str,
int, float, bool, datetime), never driver objects, and sees failures as `graph.errors` classes
whose messages name the URI but never the password.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import neo4j
from neo4j import exceptions as neo4j_exc
from neo4j.graph import Node, Path, Relationship

from graph.errors import (
    AuthenticationFailed,
    CommitUnknown,
    ConnectionFailed,
    InvalidURI,
    QueryError,
)
from graph.settings import ConnectionSettings

T = TypeVar("T")

_CONNECT_ATTEMPTS = (
    3  # bounded: a wrong URI fails within seconds, a restarting server is waited for
)
_QUERY_ATTEMPTS = 5  # for auto-commit queries that fail with a retryable error
# A server that accepts TCP but never answers the Bolt handshake (hung, overloaded, a wrong
# service on the port) otherwise blocks for the driver's default 60 s per attempt.
_TCP_TIMEOUT = 5.0  # seconds to establish the TCP connection
_ACQUIRE_TIMEOUT = 10.0  # seconds for a pooled connection, handshake included
_CONNECT_BUDGET = 10.0  # no new connection attempt starts after this many seconds of failures
# How long the driver retries a write transaction on transient errors. It cannot tell a
# deadlock from a refused connection, so this also bounds how long a save against a server
# that died waits before it fails (the driver's default of 30 s looked like a hang).
_WRITE_RETRY_TIME = 10.0


class Connection:
    """An open connection to a Neo4j database.

    Opened from settings, which check that the server answers::

        conn = Connection.open(ConnectionSettings(uri="bolt://127.0.0.1:7687"))

    Queries take parameters and return rows as plain dicts:

    >>> conn.run("RETURN $x AS x", {"x": 1})
    [{'x': 1}]
    >>> conn.read_values("MATCH (a:Artifact {uid: $uid}) RETURN a.key", {"uid": artifact.uid})
    ['raw/counts.csv']
    """

    def __init__(self, settings: ConnectionSettings, driver: neo4j.Driver) -> None:
        self.settings = settings
        self.driver = driver

    def __repr__(self) -> str:
        db = f", database={self.settings.database!r}" if self.settings.database else ""
        return f"Connection({self.settings.display_uri!r}, user={self.settings.user!r}{db})"

    @classmethod
    def open(cls, settings: ConnectionSettings, attempts: int = _CONNECT_ATTEMPTS) -> Connection:
        """Create the driver and check that the server answers and accepts the credentials."""
        auth = (settings.user, settings.password) if settings.password is not None else None
        try:
            driver = neo4j.GraphDatabase.driver(
                settings.uri,
                auth=auth,
                connection_timeout=_TCP_TIMEOUT,
                connection_acquisition_timeout=_ACQUIRE_TIMEOUT,
                max_transaction_retry_time=_WRITE_RETRY_TIME,
                user_agent="lineagegraph",
                # Server hints ("property key does not exist", ...) would otherwise be printed as
                # warnings for lineage's own queries against a fresh database.
                notifications_min_severity="OFF",
            )
        except (neo4j_exc.ConfigurationError, ValueError) as exc:
            raise InvalidURI(
                f"{settings.display_uri!r} is not a Neo4j URI: {_scrub(str(exc), settings)} "
                "(expected bolt://, bolt+s://, neo4j:// or neo4j+s://, e.g. bolt://127.0.0.1:7687)"
            ) from None
        conn = cls(settings, driver)
        delay = 0.5
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                # An auto-commit query, not verify_connectivity() or execute_query(): it proves
                # the database exists and answers, and is not retried for 30 s by the driver.
                with driver.session(database=settings.database) as session:
                    session.run("RETURN 1").consume()
                return conn
            except neo4j_exc.AuthError:
                driver.close()
                hint = "" if settings.password else " (no password given: set NEO4J_PASSWORD)"
                raise AuthenticationFailed(
                    f"Neo4j at {settings.display_uri} rejected the credentials of user "
                    f"{settings.user!r}{hint}"
                ) from None
            except (neo4j_exc.ServiceUnavailable, neo4j_exc.SessionExpired, OSError) as exc:
                out_of_time = time.monotonic() - started + delay > _CONNECT_BUDGET
                if attempt == attempts or out_of_time:
                    driver.close()
                    raise ConnectionFailed(
                        f"could not connect to Neo4j at {settings.display_uri} after {attempt} "
                        f"attempt(s): {_scrub(str(exc), settings)}"
                    ) from None
                time.sleep(delay)
                delay *= 2
            except neo4j_exc.Neo4jError as exc:
                driver.close()
                # Security codes (AuthenticationRateLimit after repeated wrong passwords, which
                # then refuses even the right one for a few seconds) are credential problems.
                security = (exc.code or "").startswith("Neo.ClientError.Security.")
                raise (AuthenticationFailed if security else ConnectionFailed)(
                    f"Neo4j at {settings.display_uri} refused the connection: "
                    f"{_scrub(exc.message or str(exc), settings)}"
                ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.driver.close()

    # -- queries ---------------------------------------------------------------------------
    def run(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one parameterised query in its own (retried) transaction; rows as plain dicts."""
        return self.run_with_keys(query, parameters)[1]

    def read(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one read-only query (routed to a reader in a cluster); rows as plain dicts."""
        return self._autocommit(query, parameters, neo4j.READ_ACCESS)[1]

    def read_values(self, query: str, parameters: dict[str, Any] | None = None) -> list[Any] | None:
        """The first row of a read-only query as a list of values, undecoded (None if no row).

        For queries returning only strings, numbers, booleans and lists: `read` walks every
        value through `plain()`, which for a few thousand list items costs more than the query.
        """
        return self._autocommit(query, parameters, neo4j.READ_ACCESS, shape="first_row")

    def read_column(self, query: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        """The first column of every row of a read-only query, undecoded (no `plain()` walk).

        For queries whose values the caller decodes itself (`graph.query.fetch`): maps, lists,
        strings and numbers come as the packstream decoder made them; a temporal value would
        still be a driver object.
        """
        return self._autocommit(query, parameters, neo4j.READ_ACCESS, shape="column")

    def read_rows(self, query: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """Every row of a read-only query as a list of its values, undecoded (like
        `read_column`, for all columns: `graph.query.fetch_columns`)."""
        return self._autocommit(query, parameters, neo4j.READ_ACCESS, shape="rows")

    def run_with_keys(
        self, query: str, parameters: dict[str, Any] | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Like `run`, also returning the column names (so an empty result keeps its columns)."""
        return self._autocommit(query, parameters, neo4j.WRITE_ACCESS)

    def _autocommit(
        self,
        query: str,
        parameters: dict[str, Any] | None,
        mode: str,
        shape: Literal["dicts", "first_row", "column", "rows"] = "dicts",
    ) -> Any:
        # An auto-commit query is one network round trip (RUN and PULL pipelined); a managed
        # transaction (`execute_query`) adds BEGIN and COMMIT, which made every `get()` 40%
        # slower. Retried here on the errors the driver marks retryable (deadlock, leader
        # switch, lost connection), like a managed transaction would be.
        # The driver itself never retries auto-commit queries: it cannot tell whether a write
        # was committed before a connection dropped, and it may have handed rows out already.
        # Here rows are read in full before returning, and lineage sends no record write this
        # way (records go through `write()`: one transaction per record, retried whole); its
        # only writes here are schema statements (`CREATE ... IF NOT EXISTS`, `MERGE`), safe to
        # repeat. A user's own non-idempotent write through `ln.cypher` could be applied twice
        # if the connection drops between the server's commit and its reply.
        delay = 0.1
        with self._errors():
            for attempt in range(_QUERY_ATTEMPTS):
                try:
                    # fetch_size=-1: every row is read before returning anyway; the driver's
                    # default of 1000 rows per PULL cost one more round trip per 1000 rows
                    # (10 PULLs for a 10,000-row result: 210 ms against 183 ms in one PULL).
                    with self.driver.session(
                        database=self.settings.database, default_access_mode=mode, fetch_size=-1
                    ) as session:
                        result = session.run(query, parameters or {})
                        if shape == "first_row":
                            record = result.single()
                            return None if record is None else record.values()
                        if shape == "column":
                            return [record[0] for record in result]
                        if shape == "rows":
                            return [record.values() for record in result]
                        keys = list(result.keys())
                        return keys, [{k: plain(v) for k, v in r.items()} for r in result]
                except (neo4j_exc.Neo4jError, neo4j_exc.DriverError) as exc:
                    if attempt + 1 == _QUERY_ATTEMPTS or not exc.is_retryable():
                        raise
                    time.sleep(delay)
                    delay *= 2
        raise AssertionError("unreachable")

    def explain(self, query: str, parameters: dict[str, Any] | None = None) -> tuple[str, Any]:
        """The query type the server reports for `query` ("r", "rw", "w" or "s") and its plan
        (a dict tree: `operatorType`, `args`, `children`), without running it."""
        with (
            self._errors(),
            self.driver.session(
                database=self.settings.database, default_access_mode=neo4j.READ_ACCESS
            ) as session,
        ):
            summary = session.run("EXPLAIN " + query, parameters or {}).consume()
            return summary.query_type or "", summary.plan

    def read_limited(
        self,
        query: str,
        parameters: dict[str, Any] | None,
        *,
        timeout: float,
        limit: int,
        convert: Callable[[Any], Any],
    ) -> tuple[list[str], list[list[Any]], bool]:
        """Run `query` in a read transaction that the server ends after `timeout` seconds and
        that is rolled back, reading at most `limit` rows: the column names, the rows (each value
        through `convert`, which sees driver objects) and whether more rows were left unread.
        Not retried: it is the user's own query."""
        with (
            self._errors(),
            self.driver.session(
                database=self.settings.database,
                default_access_mode=neo4j.READ_ACCESS,
                fetch_size=limit + 1,
            ) as session,
            session.begin_transaction(timeout=timeout) as tx,
        ):
            result = tx.run(query, parameters or {})
            keys = list(result.keys())
            records = result.fetch(limit + 1)
            rows = [[convert(v) for v in record.values()] for record in records[:limit]]
            tx.rollback()  # never commit: nothing here may write, and nothing is kept
            return keys, rows, len(records) > limit

    def write(self, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        """Run `work(tx)` in one write transaction, retried on transient errors.

        `work` may run more than once, so it must not have side effects outside `tx`.
        """
        # The driver's managed transaction retries what it marks retryable (deadlocks between
        # concurrent writers, leader switches, a lost connection) with jittered backoff for up
        # to _WRITE_RETRY_TIME; a commit whose outcome is unknown (`IncompleteCommit`) is never
        # retried and becomes `CommitUnknown`.
        with self._errors(), self.driver.session(database=self.settings.database) as session:
            return session.execute_write(work)

    def server_info(self) -> dict[str, Any]:
        """Name, version and edition of the server, from `dbms.components()`."""
        rows = self.run("CALL dbms.components() YIELD name, versions, edition RETURN *")
        row = rows[0]
        return {"name": row["name"], "version": row["versions"][0], "edition": row["edition"]}

    def _errors(self) -> _ErrorTranslator:
        return _ErrorTranslator(self.settings)


class _ErrorTranslator:
    """Turns driver exceptions raised inside a `with` block into `graph.errors` classes."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None:
            return False
        uri = self.settings.display_uri
        if isinstance(exc, neo4j_exc.AuthError):
            raise AuthenticationFailed(f"Neo4j at {uri} rejected the credentials") from None
        if isinstance(exc, neo4j_exc.IncompleteCommit):  # a ServiceUnavailable: test it first
            raise CommitUnknown(
                f"lost the connection to Neo4j at {uri} while committing: the write may or may "
                f"not have been stored ({_scrub(str(exc), self.settings)})"
            ) from None
        if isinstance(exc, (neo4j_exc.ServiceUnavailable, neo4j_exc.SessionExpired)):
            raise ConnectionFailed(
                f"lost the connection to Neo4j at {uri}: {_scrub(str(exc), self.settings)}"
            ) from None
        if isinstance(exc, neo4j_exc.Neo4jError):
            raise QueryError(f"{exc.code}: {exc.message}") from exc
        return False


def plain(value: Any) -> Any:
    """A driver value as plain Python: nodes and relationships become their property dicts."""
    if isinstance(value, (Node, Relationship)):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return [plain(n) for n in value.nodes]
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    to_native = getattr(value, "to_native", None)  # neo4j.time.DateTime, Date, Duration...
    if callable(to_native):
        return to_native()
    return value


def _scrub(message: str, settings: ConnectionSettings) -> str:
    """Drivers sometimes echo the URI (with userinfo) back; never let a password through."""
    if settings.password:
        message = message.replace(settings.password, "***")
    return message.replace(settings.uri, settings.display_uri)
