"""`lineage serve` and `ln.serve()`: the lineage explorer, a local web application over the
configured Neo4j.

A FastAPI application (`create_app`) with a JSON API described by its OpenAPI document
(`/openapi.json`; FastAPI's `/docs` and `/redoc` pages are off: they load their scripts from a
CDN) and four pages that use it: search, a record's page,
the explorer, and a read-only Cypher console. The pages are one small front end
(`static/app.js`, `static/app.css`) with vis-network from pyvis's copy and the graph code the
static `view_lineage()` page shares (`static/graph.js`); nothing is fetched from anywhere else.

The API only reads: every query goes through `graph.explore` (search, records, neighbours,
paths), `lineage._questions` (diffs) or `graph.console` (the console, read-only by
construction), all in read access mode. Every parameter is validated before any query (uids
are base62 of a lineage registry's length, limits and offsets bounded), and every error is a
JSON object `{"error": message}` with a 4xx status, or 500 with no details (the traceback goes
to the server's log, never to the client).

Security: the server binds to 127.0.0.1 by default and then answers only requests whose `Host`
is a loopback name (a web page elsewhere cannot reach it through DNS rebinding). Binding any
other address needs a token: a new one is written at each start to `<lineage home>/serve/token`
(mode 0600) and is accepted as `Authorization: Bearer <token>` or as the cookie that the printed
one-time link sets (`/auth?once=...`: good for one visit).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from graph import console as gc
from graph import explore as ge
from graph.connection import Connection
from graph.errors import ConnectionFailed, QueryError
from graph.features import as_dict, features_by_uid
from graph.lineage import LINEAGE_LABELS, parse_datetime
from graph.settings import lineage_home
from lineage import _questions
from lineage._instance import current
from lineage._resolve import record_by_uid
from lineage._view import OPTIONS, STATIC, json_for_script, vis_dir, vis_edge, vis_node
from lineage.errors import (
    DoesNotExist,
    InvalidArgument,
    LineageError,
    MultipleResultsFound,
)
from lineage.openlineage_api import router as openlineage_router

__all__ = ["Explorer", "create_app", "serve"]

log = logging.getLogger("lineage.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
TOKEN_COOKIE = "lineage_token"
MAX_PAGE = 200  # records in one page of search results, members or neighbours
MAX_OFFSET = 10_000_000
MAX_UIDS = 200  # records whose neighbours one call asks for
CONSOLE_TIMEOUT = 10.0  # seconds: the most a console query may run (the server ends it)
CONSOLE_ROWS = 5000  # the most rows a console query returns

Registry = Literal["Artifact", "Collection", "Run", "Transform"]
EdgeType = Literal["GENERATED_BY", "USED", "EXECUTES", "CONTAINS", "HAS_META", "REVISES"]
# A lineage record's uid: base62, 16 characters (transforms) or 20 (artifacts, collections, runs).
UID_PATTERN = r"^[0-9A-Za-z]{16}([0-9A-Za-z]{4})?$"
Uid = Annotated[
    str,
    PathParam(
        pattern=UID_PATTERN,
        description="the uid of an artifact, collection or run (20 base62 characters) or a "
        "transform (16)",
    ),
]
UidQuery = Annotated[str, Query(pattern=UID_PATTERN, description="a record's full uid")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="records to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="records in the page")]


# -- response models (the OpenAPI document's schemas) ---------------------------------------------
class Node(BaseModel):
    """A record as the explorer draws it."""

    uid: str
    label: str = Field(description="its registry: Artifact, Collection, Run or Transform")
    key: str | None = Field(description="key (a run: its name)")
    description: str | None
    version: str | None
    is_latest: bool | None
    branch: int | None = Field(description="1 main, 0 archive, -1 trash")
    created_at: str | None
    started_at: str | None
    status: str | None
    kind: str | None
    suffix: str | None
    transform: str | None = Field(description="a run's transform key")
    vis: dict[str, Any] = Field(description="the vis-network node (lineage/_view.py)")


class Edge(BaseModel):
    """A provenance edge as stored: `source` points at `target`."""

    source: str
    target: str
    type: str
    position: int | None
    vis: dict[str, Any] = Field(description="the vis-network edge, drawn the way data flowed")


class Item(BaseModel):
    node: Node
    edge: Edge


class Group(BaseModel):
    """One kind of neighbour of a record (`members`, `used by`, ...) and one page of them."""

    type: str
    direction: Literal["in", "out"]
    name: str
    total: int
    offset: int
    items: list[Item]


class Neighbours(BaseModel):
    uid: str
    groups: list[Group]


class ManyNeighbours(BaseModel):
    records: list[Neighbours]


class Hit(BaseModel):
    node: Node
    score: int


class SearchResult(BaseModel):
    q: str
    registries: list[str]
    total: int = Field(description="records found (a lower bound when `capped`)")
    capped: bool
    offset: int
    limit: int
    results: list[Hit]


class RecordPage(BaseModel):
    node: Node
    fields: dict[str, Any] = Field(description="the record's stored properties")
    provenance: dict[str, Any]
    features: dict[str, Any]
    annotations: dict[str, list[dict[str, str | None]]]
    versions: list[Node]
    groups: list[Group]


class PathResult(BaseModel):
    found: bool
    upstream: bool | None = Field(
        description="true: `target` is in `source`'s history; false: the other way round"
    )
    nodes: list[Node]
    edges: list[Edge]


class CypherRequest(BaseModel):
    query: str = Field(min_length=1, max_length=20_000, description="one Cypher statement")
    params: dict[str, Any] = Field(default_factory=dict, description="its $parameters")
    limit: int = Field(default=500, ge=1, le=CONSOLE_ROWS, description="rows to return at most")
    timeout: float = Field(
        default=CONSOLE_TIMEOUT, gt=0, le=CONSOLE_TIMEOUT, description="seconds, at most"
    )


class CypherResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(description="more rows than `limit` (they were not read)")
    nodes: list[dict[str, Any]]
    relationships: list[dict[str, Any]]
    elapsed_ms: float


class ErrorBody(BaseModel):
    error: str


class Health(BaseModel):
    ok: bool
    neo4j: str
    registries: list[str]


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a parameter or query the server refuses"},
    404: {"model": ErrorBody, "description": "no such record"},
    422: {"model": ErrorBody, "description": "a parameter that is not valid"},
}


# -- errors ---------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _status_of(exc: LineageError) -> int:
    if isinstance(exc, DoesNotExist):
        return 404
    if isinstance(exc, gc.ReadOnlyRefused):
        return 403
    if isinstance(exc, ConnectionFailed):
        return 503
    return 400


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'not valid')}")
    return "; ".join(parts) or "the request is not valid"


# -- conversions ----------------------------------------------------------------------------------
def _node(node: dict[str, Any], focus: bool = False) -> dict[str, Any]:
    return {**node, "vis": vis_node(_for_vis(node), focus=focus)}


def _for_vis(node: dict[str, Any]) -> dict[str, Any]:
    """`vis_node` reads datetimes; the explorer's nodes hold ISO strings."""
    out = dict(node)
    for name in ("created_at", "started_at"):
        out[name] = parse_datetime(node[name])
    return out


def _edge(source: str, target: str, kind: str, position: int | None) -> dict[str, Any]:
    edge = {"source": source, "target": target, "type": kind, "position": position}
    return {**edge, "vis": vis_edge(edge)}


def _groups(uid: str, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for g in groups:
        items = []
        for node, position in g["items"]:
            # Stored direction: "out" groups are (uid)-[edge]->(node), "in" the other way.
            source, target = (uid, node["uid"]) if g["direction"] == "out" else (node["uid"], uid)
            items.append({"node": _node(node), "edge": _edge(source, target, g["type"], position)})
        out.append({**g, "items": items})
    return out


def _plain_json(value: Any) -> Any:
    """Stored values as JSON: datetimes as ISO strings."""
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else value


# -- the application ------------------------------------------------------------------------------
@dataclass
class Access:
    """Who may use the server: by Host name, and by token where one is set."""

    token: str | None = None
    hosts: frozenset[str] | None = LOOPBACK_NAMES  # None: any Host (a token guards the server)
    once: set[str] = field(default_factory=set)  # one-time link codes not used yet

    def new_link_code(self) -> str:
        code = secrets.token_urlsafe(24)
        self.once.add(code)
        return code

    def take_link_code(self, code: str) -> bool:
        for known in list(self.once):
            if hmac.compare_digest(known, code):
                self.once.discard(known)
                return True
        return False

    def allows(self, headers: dict[str, str]) -> bool:
        if self.token is None:
            return True
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), self.token.encode()
        ):
            return True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE and hmac.compare_digest(value.encode(), self.token.encode()):
                return True
        return False


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:8765
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: the Host check, the token check, and headers every response gets."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope.get("path", "")
        refusal: tuple[int, str] | None = None
        hosts = self.access.hosts
        if hosts is not None and _host_name(headers.get("host", "")) not in hosts:
            refusal = (421, "this server answers only requests addressed to a loopback name "
                            "(127.0.0.1, localhost, [::1])")  # fmt: skip
        elif path != "/auth" and not self.access.allows(headers):
            refusal = (401, "this server needs its token: send 'Authorization: Bearer <token>' "
                            "(the token is in <lineage home>/serve/token) or open the one-time "
                            "link it printed")  # fmt: skip
        if refusal is not None:
            response = _error(*refusal)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if path.startswith("/api/"):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
PAGES = ("search", "record", "explore", "cypher")
_SHELL = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} &middot; lineage explorer</title>
<link rel="stylesheet" href="/static/vis-network.css">
<link rel="stylesheet" href="/static/app.css">
<script id="config" type="application/json">{config}</script>
</head>
<body data-page="{page}">
<nav id="nav"><b>lineage</b>
  <a href="/" data-nav="search">search</a>
  <a href="/explore" data-nav="explore">explorer</a>
  <a href="/cypher" data-nav="cypher">cypher</a>
  <span id="where"></span></nav>
<main id="main"></main>
<script src="/static/vis-network.min.js"></script>
<script src="/static/graph.js"></script>
<script src="/static/app.js"></script>
</body>
</html>
"""


def _static_files() -> dict[str, tuple[Path, str]]:
    vis = vis_dir()
    return {
        "vis-network.min.js": (vis / "vis-network.min.js", "text/javascript"),
        "vis-network.css": (vis / "vis-network.css", "text/css"),
        "graph.js": (STATIC / "graph.js", "text/javascript"),
        "app.js": (STATIC / "app.js", "text/javascript"),
        "app.css": (STATIC / "app.css", "text/css"),
    }


def _connection() -> Connection:
    return current().connection


def _label_of(conn: Connection, uid: str) -> str:
    label = ge.find(conn, uid)
    if label is None:
        raise ApiError(404, f"no artifact, collection, run or transform has uid {uid!r}")
    return label


def create_app(access: Access | None = None, openlineage: bool = False) -> FastAPI:
    """The explorer's ASGI application, over the current instance (`ln.connect()`).
    `openlineage`: also OpenLineage's `POST /api/v1/lineage` (which writes: off unless asked)
    and Marquez's read API (`lineage.openlineage_api`).

    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app(), base_url="http://127.0.0.1")
    >>> hits = client.get("/api/search", params={"q": "scrna"}).json()["results"]
    >>> hits[0]["node"]["key"], len(hits)                 # the exact key first
    ('scrna', 4)
    >>> client.get("/api/records/not-a-uid").json()["error"]
    "uid: String should match pattern '^[0-9A-Za-z]{16}([0-9A-Za-z]{4})?$'"
    """
    access = access or Access()
    app = FastAPI(
        title="lineage explorer",
        version="1",
        description="Read-only JSON API over a LineageGraph instance: search, records, "
        "neighbours one step at a time, provenance paths and a read-only Cypher console.",
        responses=_ERRORS,
        docs_url=None,  # Swagger UI and ReDoc load their JavaScript from a CDN
        redoc_url=None,
    )
    app.state.access = access
    app.add_middleware(Guard, access=access)
    if openlineage:
        # The one route that writes; the Host and token checks of `Guard` cover it too.
        app.include_router(openlineage_router)
    files = _static_files()

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(LineageError)
    async def _lineage_error(request: Request, exc: LineageError) -> JSONResponse:
        return _error(_status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server's log has it")

    # -- API ----------------------------------------------------------------------------------
    @app.get("/api/health", response_model=Health, tags=["api"])
    def health() -> dict[str, Any]:
        """The server answers and reaches Neo4j."""
        conn = _connection()
        conn.read("RETURN 1 AS one")
        return {"ok": True, "neo4j": conn.settings.display_uri, "registries": list(LINEAGE_LABELS)}

    @app.get("/api/search", response_model=SearchResult, tags=["api"])
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200, description="the text to find")],
        registry: Annotated[
            list[Registry] | None, Query(description="registries to search (default: all)")
        ] = None,
        offset: Offset = 0,
        limit: Limit = 20,
    ) -> dict[str, Any]:
        """Records whose uid starts with `q`, whose key, name or description contains it, or
        that hold a feature value equal to it; best first, then newest."""
        text = q.strip()
        if not text:
            raise ApiError(422, "q: the text to find is blank")
        labels = list(dict.fromkeys(registry or LINEAGE_LABELS))
        total, capped, hits = ge.search(_connection(), text, labels, offset, limit)
        return {
            "q": text,
            "registries": labels,
            "total": total,
            "capped": capped,
            "offset": offset,
            "limit": limit,
            "results": [{"node": _node(node), "score": score} for node, score in hits],
        }

    @app.get("/api/records/{uid}", response_model=RecordPage, tags=["api"])
    def record(uid: Uid, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20) -> dict[str, Any]:
        """A record's page: its fields, provenance, features and annotations (what
        `describe()` shows), the versions of its family, and the first `limit` records of each
        kind of neighbour (members in order, runs that used it, the run that made it, ...)."""
        conn = _connection()
        label = _label_of(conn, uid)
        row = ge.record(conn, label, uid)
        versions = ge.versions(conn, label, uid)
        groups = ge.neighbours(conn, [uid], limit=limit).get(uid, [])
        if row is None:  # deleted between the two reads
            raise ApiError(404, f"no record has uid {uid!r}")
        node = ge.as_node(row["node"])
        annotations = {
            name: [{"uid": u, "name": n} for u, n in row[name]]
            for name in ("ulabels", "projects", "references")
        }
        provenance: dict[str, Any] = {}
        for name in ("created_by", "storage", "space"):
            if row[name]:
                keys = {"created_by": ("uid", "handle", "name"), "storage": ("uid", "root"),
                        "space": ("uid", "name")}[name]  # fmt: skip
                provenance[name] = dict(zip(keys, row[name], strict=True))
        for name in ("initiated_by", "meta_artifact"):
            if row[name]:
                provenance[name] = _node(ge.as_node(row[name]))
        features = as_dict(row["features"], features_by_uid(conn)) if row["features"] else {}
        return {
            "node": _node(node, focus=True),
            "fields": _plain_json(row["props"]),
            "provenance": provenance,
            "features": _plain_json(features),
            "annotations": annotations,
            "versions": [_node(v) for v in versions],
            "groups": _groups(uid, groups),
        }

    @app.get("/api/records/{uid}/neighbours", response_model=Neighbours, tags=["api"])
    def record_neighbours(
        uid: Uid,
        type: Annotated[EdgeType | None, Query(description="one kind of edge only")] = None,
        direction: Annotated[Literal["in", "out"] | None, Query()] = None,
        offset: Offset = 0,
        limit: Limit = 25,
    ) -> dict[str, Any]:
        """The records one provenance edge away, grouped by edge type and direction, each group
        with its total and one page (`offset`, `limit`); `type` and `direction` page through one
        group (a 10,000-member collection's members, 25 at a time)."""
        if (type is None) != (direction is None):
            raise ApiError(422, "type and direction: give both (one group) or neither (all)")
        if type is not None and (type, direction) not in ge.GROUP_NAMES:
            raise ApiError(422, f"no {type} edge goes {direction}")
        conn = _connection()
        found = ge.neighbours(
            conn, [uid], offset=offset, limit=limit, edge_type=type, out=direction == "out"
        )
        if uid not in found:
            _label_of(conn, uid)  # 404 if there is no such record
        return {"uid": uid, "groups": _groups(uid, found.get(uid, []))}

    @app.get("/api/neighbours", response_model=ManyNeighbours, tags=["api"])
    def many_neighbours(
        uid: Annotated[
            list[str], Query(min_length=1, max_length=MAX_UIDS, description="records' uids")
        ],
        limit: Limit = 25,
    ) -> dict[str, Any]:
        """The first page of every group of neighbours of several records at once (one query:
        what the explorer asks for each level of depth, and to restore a permalink)."""
        bad = [u for u in uid if not _is_uid(u)]
        if bad:
            raise ApiError(422, f"uid: not a record uid: {bad[0]!r}")
        wanted = list(dict.fromkeys(uid))
        found = ge.neighbours(_connection(), wanted, limit=limit)
        return {
            "records": [{"uid": u, "groups": _groups(u, found[u])} for u in wanted if u in found]
        }

    @app.get("/api/records/{uid}/diff", tags=["api"])
    def diff(
        uid: Uid,
        against: Annotated[
            str | None,
            Query(pattern=UID_PATTERN, description="the older record (default: the previous)"),
        ] = None,
        content: Annotated[bool, Query(description="artifacts: compare file contents")] = True,
    ) -> dict[str, Any]:
        """What changed since the previous version (a run: since the run before it), or since
        `against`: `ln.lineage.diff`'s answer as JSON."""
        conn = _connection()
        _label_of(conn, uid)
        record = _record(uid)
        if against is None:
            result = _questions.diff_previous(record, content=content)
        else:
            _label_of(conn, against)
            result = _questions.diff(_record(against), record, content=content)
        return result.to_dict()

    @app.get("/api/path", response_model=PathResult, tags=["api"])
    def path(source: UidQuery, target: UidQuery) -> dict[str, Any]:
        """The shortest chain of provenance edges between two records, followed one way (not
        through trashed records): `upstream` says which way."""
        if source == target:
            raise ApiError(422, "source and target are the same record")
        conn = _connection()
        _label_of(conn, source)
        _label_of(conn, target)
        found = ge.shortest_path(conn, source, target)
        if found is None:
            return {"found": False, "upstream": None, "nodes": [], "edges": []}
        return {
            "found": True,
            "upstream": found["upstream"],
            "nodes": [_node(n) for n in found["nodes"]],
            "edges": [
                _edge(e["source"], e["target"], e["type"], e["position"]) for e in found["edges"]
            ],
        }

    @app.post("/api/cypher", response_model=CypherResult, tags=["api"])
    def cypher(request: Annotated[CypherRequest, Body()]) -> dict[str, Any]:
        """Run one read-only Cypher query: refused (403) if it would write, call a procedure
        other than the catalog ones, LOAD CSV, or run an administration command; ended by the
        server after `timeout` seconds; at most `limit` rows."""
        started = time.perf_counter()
        try:
            result = gc.run_read_only(
                _connection(),
                request.query,
                request.params,
                timeout=request.timeout,
                limit=request.limit,
            )
        except gc.ReadOnlyRefused:
            raise
        except QueryError as exc:
            if "TransactionTimedOut" in str(exc) or "Terminated" in str(exc):
                raise ApiError(
                    400, f"the query ran longer than its limit of {request.timeout:g} s"
                ) from None
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # parameters the driver refuses
            raise ApiError(400, f"params: Neo4j cannot take these parameters ({exc})") from None
        return {**result, "elapsed_ms": round((time.perf_counter() - started) * 1e3, 2)}

    # -- token link and pages -----------------------------------------------------------------
    @app.get("/auth", include_in_schema=False)
    def auth(once: str = "") -> Response:
        if access.token is None:
            return RedirectResponse("/", status_code=303)
        if not access.take_link_code(once):
            raise ApiError(401, "this link was used already or is not valid; the token in "
                                "<lineage home>/serve/token still works as a bearer header")  # fmt: skip
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, access.token, httponly=True, samesite="strict")
        return response

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in files:
            raise ApiError(404, f"no static file {name!r}")
        path, media = files[name]
        return FileResponse(path, media_type=media)

    def page(name: str, title: str) -> HTMLResponse:
        config = {"page": name, "options": OPTIONS, "registries": list(LINEAGE_LABELS)}
        text = _SHELL.format(title=title, page=name, config=json_for_script(config))
        return HTMLResponse(text, headers={"content-security-policy": _CSP})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # none: browsers ask for one on every page

    @app.get("/", include_in_schema=False)
    def search_page() -> HTMLResponse:
        return page("search", "search")

    @app.get("/record/{uid}", include_in_schema=False)
    def record_page(uid: str) -> HTMLResponse:
        return page("record", "record")

    @app.get("/explore", include_in_schema=False)
    def explore_page() -> HTMLResponse:
        return page("explore", "explorer")

    @app.get("/cypher", include_in_schema=False)
    def cypher_page() -> HTMLResponse:
        return page("cypher", "cypher")

    return app


def _is_uid(text: str) -> bool:
    n = len(text)
    return n in (16, 20) and text.isascii() and text.isalnum()


def _record(uid: str) -> Any:
    try:
        return record_by_uid(uid)
    except MultipleResultsFound:  # a full uid names one record; a prefix search might not
        raise ApiError(404, f"no record has uid {uid!r}") from None


# -- serving --------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """Whether `host` (a name or address to bind) is this machine's loopback only."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_path() -> Path:
    return lineage_home() / "serve" / "token"


def write_token() -> tuple[str, Path]:
    """A new token, written to `token_path()` (mode 0600, its folder 0700)."""
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".token.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.replace(tmp, path)
    return token, path


@dataclass
class Explorer:
    """A running explorer (`ln.serve()`): its URL, and `stop()`."""

    url: str
    host: str
    port: int
    link: str | None = None  # the one-time link that logs a browser in (token servers only)
    token_file: Path | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def stop(self) -> None:
        """Stop serving and wait for the server's thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __repr__(self) -> str:
        return f"Explorer(url={self.url!r})"


def _check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgument(f"port must be an int from 0 to 65535, not {port!r}")
    return port


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: a free one), so the URL printed is the one that answers."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InvalidArgument(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another host or port"
        ) from None
    # Accepted connections inherit TCP_NODELAY (Linux): uvicorn writes a response's head and
    # body separately, and without it Nagle's algorithm held the body back for the client's
    # delayed ACK, 40 ms on every response with a body.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def prepare(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, openlineage: bool = False
) -> tuple[Explorer, FastAPI, Any]:
    """Connect, make the application and bind its socket: the explorer to run, not yet running.
    A host other than a loopback address gets a new token (`write_token`)."""
    if not isinstance(host, str) or not host.strip():
        raise InvalidArgument(f"host must be a host name or address, not {host!r}")
    port = _check_port(port)
    current()  # connect first: a wrong NEO4J_URI fails here, not at the first request
    sock = _bind(host, port)
    token_file = None
    if is_loopback(host):
        access = Access()
    else:
        token, token_file = write_token()
        access = Access(token=token, hosts=None)
    app = create_app(access, openlineage=openlineage)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
    url = f"http://{shown}:{bound}/"
    link = f"{url}auth?once={access.new_link_code()}" if access.token else None
    return Explorer(url, host, bound, link, token_file), app, sock


def _server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, openlineage: bool = False
) -> Explorer:
    """Start the lineage explorer in this process (in a background thread) and return it.

    Binds to loopback unless `host` says otherwise; any other host needs the token written to
    `<lineage home>/serve/token` (or the one-time `link`, which sets a cookie). `port=0` takes a
    free port. `openlineage=True` also takes OpenLineage events at `POST /api/v1/lineage` and
    answers Marquez's read API. `stop()` ends it.

    >>> explorer = ln.serve(port=0)
    >>> explorer.url
    'http://127.0.0.1:...'
    >>> explorer.stop()
    """
    explorer, app, sock = prepare(host, port, openlineage)
    server = _server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="lineage-serve", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    explorer._server, explorer._thread = server, thread
    return explorer


def run_forever(
    host: str, port: int, say: Callable[[str], None] = print, openlineage: bool = False
) -> None:
    """`lineage serve`: serve until interrupted, saying the URL (and the one-time link)."""
    explorer, app, sock = prepare(host, port, openlineage)
    server = _server(app)
    say(f"lineage explorer at {explorer.url}")
    if openlineage:
        say(f"OpenLineage events: POST {explorer.url}api/v1/lineage")
    if explorer.link:
        say(f"open once to log a browser in: {explorer.link}")
        say(f"or send 'Authorization: Bearer <token>' with the token in {explorer.token_file}")
    server.run(sockets=[sock])
