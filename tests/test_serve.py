"""The explorer's JSON API (`lineage serve`) through its ASGI application, against real Neo4j:
search, record pages, neighbours with paging, paths, diffs, the read-only Cypher console, the
errors (JSON, never a traceback), that nothing is ever written, a fuzz run from the app's own
OpenAPI document, and serving: `ln.serve()`, `lineage serve`, loopback by default, tokens."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

import graph.records as gr
import lineage as ln
from graph import explore as ge
from lineage import _serve
from lineage._instance import current
from lineage._serve import Access, create_app
from tests.conftest import free_port, make_artifact, prep_and_train

LOCAL = "http://127.0.0.1"


@dataclass
class World:
    raw: ln.Artifact
    raw2: ln.Artifact  # a new version of raw
    clean: ln.Artifact
    model: ln.Artifact
    prep: ln.Run
    train: ln.Run
    bundle: ln.Collection
    bundle2: ln.Collection  # bundle + raw
    trashed: ln.Artifact


@pytest.fixture
def world(storage: Path) -> World:
    ln.Feature(name="tissue", dtype=str).save()
    ln.Feature(name="cell_type", dtype=ln.ULabel).save()
    ln.ULabel(name="hepatocyte").save()
    raw, clean, model = prep_and_train(storage, "counts from the sequencer")
    ln.context.run = None
    bundle = ln.Collection([clean, model], key="bundle").save()
    bundle2 = bundle.append(raw).save()
    raw2 = make_artifact(storage, "raw/cells.csv", content="recounted\n")
    assert raw2.revises == raw or raw2.stem_uid == raw.stem_uid
    clean.features.add_values({"tissue": "Liver", "cell_type": "hepatocyte"})
    trashed = make_artifact(storage, "junk/old.txt")
    trashed.delete()
    return World(raw, raw2, clean, model, clean.run, model.run, bundle, bundle2, trashed)


@pytest.fixture
def client(db: ln.Instance) -> TestClient:
    return TestClient(create_app(), base_url=LOCAL, raise_server_exceptions=False)


def _state() -> tuple[int, int, Any]:
    """Nodes, edges and the latest write: what "nothing was written" compares."""
    row = ln.cypher(
        "MATCH (n) OPTIONAL MATCH (n)-[e]->() "
        "RETURN count(DISTINCT n) AS nodes, count(e) AS edges, max(n.updated_at) AS updated"
    ).iloc[0]
    return int(row["nodes"]), int(row["edges"]), row["updated"]


def _uids(hits: list[dict]) -> list[str]:
    return [h["node"]["uid"] for h in hits]


# -- search ---------------------------------------------------------------------------------------
def test_search_by_uid_prefix_key_name_description_and_feature_values(
    world: World, client: TestClient
) -> None:
    def found(q: str, **params: Any) -> list[str]:
        response = client.get("/api/search", params={"q": q, **params})
        assert response.status_code == 200, response.text
        return _uids(response.json()["results"])

    assert found(world.model.uid[:10]) == [world.model.uid]
    assert found(world.model.uid)[0] == world.model.uid
    assert set(found("cells.csv")) == {world.raw.uid, world.raw2.uid, world.clean.uid}
    assert found("SEQUENCER") == [world.raw.uid]  # description, any case of the text typed
    assert found("train.py") == [world.train.transform.uid]
    assert found("Liver") == [world.clean.uid]  # a str feature's value, as stored
    assert found("liver") == []  # values are matched as typed (or typed in lower case)
    assert found("hepatocyte") == [world.clean.uid]  # a categorical value (a ULabel's name)
    assert found("old.txt") == []  # trashed
    assert found("nothing like it") == []
    # an exact key ranks first
    assert found("bundle")[:2] == sorted([world.bundle.uid, world.bundle2.uid])[::-1] or set(
        found("bundle")[:2]
    ) == {world.bundle.uid, world.bundle2.uid}


def test_search_filters_registries_and_pages(world: World, client: TestClient) -> None:
    everything = client.get("/api/search", params={"q": "e", "limit": 200}).json()
    assert everything["total"] == len(everything["results"]) >= 6
    only = client.get(
        "/api/search", params={"q": "e", "registry": ["Collection", "Run"], "limit": 200}
    ).json()
    # Only the registries asked for (whether a run's name holds an "e" depends on what else
    # the module's tests tracked on this server).
    found = {h["node"]["label"] for h in only["results"]}
    assert "Collection" in found and found <= {"Collection", "Run"}
    assert only["total"] < everything["total"]
    assert only["registries"] == ["Collection", "Run"]
    pages = [
        client.get("/api/search", params={"q": "e", "offset": i, "limit": 2}).json()["results"]
        for i in range(0, everything["total"], 2)
    ]
    assert [uid for page in pages for uid in _uids(page)] == _uids(everything["results"])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "a", "limit": 0},
        {"q": "a", "limit": 201},
        {"q": "a", "offset": -1},
        {"q": "a", "offset": "many"},
        {"q": "a", "registry": "User"},
    ],
)
def test_search_refuses_bad_parameters_with_a_json_message(
    client: TestClient, params: dict
) -> None:
    response = client.get("/api/search", params=params)
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    assert "Traceback" not in response.text


# -- a record's page ------------------------------------------------------------------------------
def _group(groups: list[dict], name: str) -> dict:
    return next(g for g in groups if g["name"] == name)


def test_record_page_describes_versions_members_and_runs(world: World, client: TestClient) -> None:
    page = client.get(f"/api/records/{world.bundle2.uid}").json()
    assert page["node"]["key"] == "bundle" and page["node"]["vis"]["borderWidth"] == 4
    assert page["fields"]["uid"] == world.bundle2.uid and page["fields"]["key"] == "bundle"
    assert [v["uid"] for v in page["versions"]] == [world.bundle.uid, world.bundle2.uid]
    assert [v["is_latest"] for v in page["versions"]] == [False, True]
    members = _group(page["groups"], "members")
    assert [i["node"]["uid"] for i in members["items"]] == [
        world.clean.uid,
        world.model.uid,
        world.raw.uid,
    ]
    assert [i["edge"]["position"] for i in members["items"]] == [0, 1, 2]
    assert _group(page["groups"], "previous version")["items"][0]["node"]["uid"] == world.bundle.uid

    clean = client.get(f"/api/records/{world.clean.uid}").json()
    assert _group(clean["groups"], "made by")["items"][0]["node"]["uid"] == world.prep.uid
    assert _group(clean["groups"], "used by")["items"][0]["node"]["uid"] == world.train.uid
    assert _group(clean["groups"], "used by")["items"][0]["node"]["transform"] == "train.py"
    assert clean["features"] == {"cell_type": "hepatocyte", "tissue": "Liver"}
    assert [a["name"] for a in clean["annotations"]["ulabels"]] == ["hepatocyte"]
    assert clean["provenance"]["created_by"]["handle"]
    assert clean["provenance"]["storage"]["root"]

    run = client.get(f"/api/records/{world.train.uid}").json()
    assert run["versions"] == []
    assert _group(run["groups"], "inputs")["items"][0]["node"]["uid"] == world.clean.uid
    assert _group(run["groups"], "outputs")["items"][0]["node"]["uid"] == world.model.uid
    assert _group(run["groups"], "transform")["items"][0]["node"]["key"] == "train.py"

    trashed = client.get(f"/api/records/{world.trashed.uid}").json()
    assert trashed["node"]["branch"] == -1  # its own page still opens


def test_record_errors(world: World, client: TestClient) -> None:
    missing = client.get("/api/records/" + "A" * 20)
    assert missing.status_code == 404 and "no artifact" in missing.json()["error"]
    for bad in ("short", "x" * 21, "with-dash-0123456789", "é" * 20):
        response = client.get(f"/api/records/{bad}")
        assert response.status_code == 422, bad
        assert "uid" in response.json()["error"]


def test_diff_to_previous_and_against_another(world: World, client: TestClient) -> None:
    diff = client.get(f"/api/records/{world.bundle2.uid}/diff").json()
    assert [m["key"] for m in diff["added"]] == ["raw/cells.csv"]
    assert diff["old"] == world.bundle.uid and diff["changed"] is True
    back = client.get(
        f"/api/records/{world.bundle.uid}/diff", params={"against": world.bundle2.uid}
    ).json()
    assert [m["key"] for m in back["removed"]] == ["raw/cells.csv"]
    first = client.get(f"/api/records/{world.bundle.uid}/diff")
    assert first.status_code == 404 and "nothing before it" in first.json()["error"]
    other = client.get(f"/api/records/{world.bundle.uid}/diff", params={"against": world.raw.uid})
    assert other.status_code == 400 and other.json()["error"]


# -- neighbours -----------------------------------------------------------------------------------
def test_neighbours_page_through_a_big_collection(storage: Path, client: TestClient) -> None:
    rows = [
        gr.NewRecord({"uid": f"M{i:015d}0000", "key": f"m/{i:03d}.txt", "hash": f"m-{i}",
                      "suffix": ".txt", "size": 1})
        for i in range(60)
    ]  # fmt: skip
    gr.create_many(current().connection, "Artifact", rows)
    members = ln.Artifact.filter(key__startswith="m/").order_by("key").to_list()[::-1]
    coll = ln.Collection(members, key="many").save()
    first = client.get(f"/api/records/{coll.uid}/neighbours", params={"limit": 25}).json()
    group = _group(first["groups"], "members")
    assert group["total"] == 60 and len(group["items"]) == 25
    seen = []
    for offset in (0, 25, 50):
        page = client.get(
            f"/api/records/{coll.uid}/neighbours",
            params={"type": "CONTAINS", "direction": "out", "offset": offset, "limit": 25},
        ).json()
        assert [g["name"] for g in page["groups"]] == ["members"]
        seen += [i["node"]["uid"] for i in page["groups"][0]["items"]]
    assert seen == [m.uid for m in members]  # in the collection's order, each once
    member = client.get(f"/api/records/{members[0].uid}/neighbours").json()
    assert _group(member["groups"], "member of")["items"][0]["node"]["uid"] == coll.uid
    assert (
        _group(member["groups"], "member of")["items"][0]["edge"]["vis"]["from"] == members[0].uid
    )


def test_neighbours_of_many_and_bad_groups(world: World, client: TestClient) -> None:
    both = client.get(
        "/api/neighbours", params={"uid": [world.clean.uid, world.train.uid, "B" * 20]}
    ).json()
    assert [r["uid"] for r in both["records"]] == [world.clean.uid, world.train.uid]
    assert client.get("/api/neighbours", params={"uid": "bad"}).status_code == 422
    assert client.get("/api/neighbours").status_code == 422
    assert client.get("/api/neighbours", params={"uid": [world.raw.uid] * 201}).status_code == 422
    url = f"/api/records/{world.clean.uid}/neighbours"
    assert client.get(url, params={"type": "CONTAINS"}).status_code == 422
    assert client.get(url, params={"type": "EXECUTES", "direction": "sideways"}).status_code == 422
    assert client.get(url, params={"type": "CREATED_BY", "direction": "out"}).status_code == 422
    assert client.get("/api/records/" + "C" * 20 + "/neighbours").status_code == 404


# -- paths ----------------------------------------------------------------------------------------
def test_shortest_provenance_path_either_way(world: World, client: TestClient) -> None:
    up = client.get("/api/path", params={"source": world.model.uid, "target": world.raw.uid})
    body = up.json()
    assert body["found"] and body["upstream"] is True
    assert [n["uid"] for n in body["nodes"]] == [
        world.model.uid,
        world.train.uid,
        world.clean.uid,
        world.prep.uid,
        world.raw.uid,
    ]
    assert [e["type"] for e in body["edges"]] == ["GENERATED_BY", "USED", "GENERATED_BY", "USED"]
    down = client.get(
        "/api/path", params={"source": world.raw.uid, "target": world.model.uid}
    ).json()
    assert (
        down["upstream"] is False
        and [n["uid"] for n in down["nodes"]] == [n["uid"] for n in body["nodes"]][::-1]
    )
    none = client.get("/api/path", params={"source": world.raw2.uid, "target": world.model.uid})
    assert none.json() == {"found": False, "upstream": None, "nodes": [], "edges": []}
    same = client.get("/api/path", params={"source": world.raw.uid, "target": world.raw.uid})
    assert same.status_code == 422
    missing = client.get("/api/path", params={"source": world.raw.uid, "target": "D" * 20})
    assert missing.status_code == 404


# -- the Cypher console ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "CREATE (n:Artifact {uid: 'x'}) RETURN n",
        "MERGE (n:Evil {name: 'x'}) RETURN n",
        "MATCH (n) DETACH DELETE n",
        "MATCH (n:Artifact) DELETE n",
        "MATCH (n) SET n.key = 'x'",
        "CALL dbms.components()",
        "CALL dbms.listConfig()",
        "CALL db.createLabel('Evil')",
        "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
        "CREATE INDEX evil IF NOT EXISTS FOR (n:Artifact) ON (n.size)",
        "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
        "SHOW TRANSACTIONS",
        "SHOW USERS",
        "CALL { CREATE (x:Evil) } RETURN 1",
        "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS RETURN 1",
    ],
)
def test_console_refuses_anything_but_reading(world: World, client: TestClient, query: str) -> None:
    before = _state()
    response = client.post("/api/cypher", json={"query": query})
    assert response.status_code in (400, 403), response.text
    assert set(response.json()) == {"error"}
    assert "Traceback" not in response.text
    assert _state() == before


def test_console_refusals_name_what(world: World, client: TestClient) -> None:
    def error(query: str) -> str:
        response = client.post("/api/cypher", json={"query": query})
        assert response.status_code == 403
        return response.json()["error"]

    assert "writes" in error("CREATE (n) RETURN n")
    assert "LOAD CSV" in error("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row")
    assert "dbms.components" in error("CALL dbms.components()")
    assert "TerminateTransactions" in error("TERMINATE TRANSACTIONS 'neo4j-transaction-1'")


def test_console_reads_as_table_and_graph_with_limits(world: World, client: TestClient) -> None:
    result = client.post(
        "/api/cypher",
        json={
            "query": "MATCH (a:Artifact {uid: $uid})-[r:GENERATED_BY]->(run) RETURN a, r, run, "
            "a.key AS key, a.created_at AS at",
            "params": {"uid": world.clean.uid},
        },
    ).json()
    assert result["columns"] == ["a", "r", "run", "key", "at"]
    (row,) = result["rows"]
    assert row[0]["_type"] == "node" and row[0]["properties"]["uid"] == world.clean.uid
    assert row[1]["_type"] == "relationship" and row[1]["type"] == "GENERATED_BY"
    assert row[3] == "clean/cells.csv" and re.match(r"\d{4}-\d\d-\d\dT", row[4])
    assert len(result["nodes"]) == 2 and len(result["relationships"]) == 1
    assert result["relationships"][0]["start"] == row[0]["id"]
    paths = client.post(
        "/api/cypher", json={"query": "MATCH p = (:Run)-[:USED]->() RETURN p"}
    ).json()
    assert len(paths["relationships"]) == 2 and len(paths["nodes"]) == 4
    assert client.post("/api/cypher", json={"query": "CALL db.labels()"}).status_code == 200
    limited = client.post(
        "/api/cypher", json={"query": "UNWIND range(1, 100000) AS x RETURN x", "limit": 10}
    ).json()
    assert limited["rows"] == [[x] for x in range(1, 11)] and limited["truncated"] is True
    slow = client.post(
        "/api/cypher",
        json={
            "query": "UNWIND range(1, 2000000000) AS x WITH x WHERE x < 0 RETURN count(x)",
            "timeout": 0.5,
        },
    )
    assert slow.status_code == 400 and "longer than its limit" in slow.json()["error"]
    for bad in (
        {"query": ""},
        {"query": "RETURN 1", "limit": 0},
        {"query": "RETURN 1", "timeout": 60},
        {"query": "RETURN 1", "params": [1]},
        {},
    ):
        response = client.post("/api/cypher", json=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]
    syntax = client.post("/api/cypher", json={"query": "RETURN 1 +"})
    assert syntax.status_code == 400 and "SyntaxError" in syntax.json()["error"]
    huge = client.post("/api/cypher", json={"query": "RETURN $x", "params": {"x": 2**70}})
    assert huge.status_code == 400 and "params" in huge.json()["error"]


# -- errors and writes ----------------------------------------------------------------------------
def test_an_unexpected_failure_is_json_without_a_traceback(
    world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(ge, "search", boom)
    response = client.get("/api/search", params={"q": "a"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (RuntimeError); the server's log has it"}
    assert "secret" not in response.text and "Traceback" not in response.text
    unknown = client.get("/api/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["error"]
    wrong = client.delete(f"/api/records/{world.raw.uid}")
    assert wrong.status_code == 405 and wrong.json()["error"]


def test_the_api_never_writes(world: World, client: TestClient) -> None:
    before = _state()
    uids = [world.raw.uid, world.bundle2.uid, world.train.uid, world.train.transform.uid]
    for uid in uids:
        assert client.get(f"/api/records/{uid}").status_code == 200
        assert client.get(f"/api/records/{uid}/neighbours").status_code == 200
        client.get(f"/api/records/{uid}/diff")
    client.get("/api/neighbours", params={"uid": uids})
    client.get("/api/search", params={"q": "cells"})
    client.get("/api/path", params={"source": world.model.uid, "target": world.raw.uid})
    client.post("/api/cypher", json={"query": "MATCH (n) RETURN n LIMIT 5"})
    assert _state() == before
    document = client.get("/openapi.json").json()
    methods = {m for ops in document["paths"].values() for m in ops}
    assert methods == {"get", "post"}
    assert [p for p, ops in document["paths"].items() if "post" in ops] == ["/api/cypher"]


def test_openapi_document_and_pages(world: World, client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {
        "/api/search",
        "/api/records/{uid}",
        "/api/records/{uid}/neighbours",
        "/api/neighbours",
        "/api/records/{uid}/diff",
        "/api/path",
        "/api/cypher",
        "/api/health",
    } <= set(document["paths"])
    for path in ("/", f"/record/{world.raw.uid}", "/explore", "/cypher"):
        page = client.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert re.findall(r'(?:src|href)="(https?:)?//', page.text) == []
    for name in ("vis-network.min.js", "vis-network.css", "graph.js", "app.js", "app.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and len(asset.content) > 1000, name
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN's scripts
    assert client.get("/redoc").status_code == 404
    assert client.get("/static/../_serve.py").status_code == 404
    assert client.get("/static/passwd").status_code == 404


# -- fuzz: the API from its own OpenAPI document --------------------------------------------------
# The document needs no database: the application is made here, its data comes from `world`.
fuzzed = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(), headers={"host": "127.0.0.1"}
)


@fuzzed.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_fuzz_never_fails_with_a_server_error(case: Any, world: World) -> None:
    before = _state()
    response = case.call(headers={"host": "127.0.0.1"})
    case.validate_response(response, checks=[not_a_server_error])
    assert response.headers["content-type"][0].startswith("application/json")
    assert "Traceback" not in response.text
    assert _state() == before


# -- serving --------------------------------------------------------------------------------------
def test_serve_binds_loopback_and_answers_only_loopback_names(world: World) -> None:
    explorer = ln.serve(port=0)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", explorer.url)
        health = httpx.get(explorer.url + "api/health", timeout=10)
        assert health.status_code == 200 and health.json()["ok"] is True
        rebound = httpx.get(
            explorer.url + "api/health", headers={"host": "evil.example:80"}, timeout=10
        )
        assert rebound.status_code == 421 and "loopback" in rebound.json()["error"]
        assert explorer.token_file is None and explorer.link is None
    finally:
        explorer.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(explorer.url + "api/health", timeout=2)


def test_responses_are_not_held_back_for_a_delayed_ack(world: World) -> None:
    """uvicorn writes a response's head and body apart: without TCP_NODELAY on the listening
    socket every response with a body waited ~40 ms for the client's delayed ACK."""
    explorer = ln.serve(port=0)
    try:
        with httpx.Client(base_url=explorer.url) as client:
            client.get("static/app.css")
            times = []
            for _ in range(15):
                started = time.perf_counter()
                assert client.get("static/app.css").status_code == 200
                times.append(time.perf_counter() - started)
        assert min(times) < 0.02, times  # 40 ms or more each before the fix, whatever the load
    finally:
        explorer.stop()
    sock = _serve._bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


def test_serve_on_another_address_needs_the_token(world: World) -> None:
    explorer = ln.serve(host="0.0.0.0", port=0)
    base = f"http://127.0.0.1:{explorer.port}/"
    try:
        assert explorer.token_file is not None and explorer.link is not None
        mode = stat.S_IMODE(explorer.token_file.stat().st_mode)
        assert mode == 0o600
        token = explorer.token_file.read_text().strip()
        refused = httpx.get(base + "api/health", timeout=10)
        assert refused.status_code == 401 and "token" in refused.json()["error"]
        assert httpx.get(base, timeout=10).status_code == 401
        wrong = httpx.get(base + "api/health", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        bearer = httpx.get(base + "api/health", headers={"authorization": f"Bearer {token}"})
        assert bearer.status_code == 200
        link = explorer.link.replace(explorer.url, base)
        with httpx.Client() as browser:
            logged_in = browser.get(link, follow_redirects=False)
            assert logged_in.status_code == 303
            cookie = logged_in.headers["set-cookie"]
            assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
            assert browser.get(base + "api/health").status_code == 200  # the cookie
        again = httpx.get(link, follow_redirects=False)
        assert again.status_code == 401  # one time only
    finally:
        explorer.stop()
    assert explorer.token_file.read_text().strip() != ""  # kept for scripts; a new one next time


def test_serve_refuses_bad_arguments(db: ln.Instance) -> None:
    with pytest.raises(ln.errors.InvalidArgument, match="port"):
        ln.serve(port=70000)
    with pytest.raises(ln.errors.InvalidArgument, match="port"):
        ln.serve(port="80")  # type: ignore[arg-type]
    with pytest.raises(ln.errors.InvalidArgument, match="host"):
        ln.serve(host="")


def test_access_checks_tokens_in_constant_time_and_once() -> None:
    access = Access(token="t0ken", hosts=None)
    assert access.allows({"authorization": "Bearer t0ken"})
    assert access.allows({"cookie": "a=b; lineage_token=t0ken"})
    assert not access.allows({"cookie": "lineage_token=t0ke"})
    assert not access.allows({})
    code = access.new_link_code()
    assert access.take_link_code(code) and not access.take_link_code(code)
    assert _serve.is_loopback("127.0.0.1") and _serve.is_loopback("::1")
    assert _serve.is_loopback("localhost") and not _serve.is_loopback("0.0.0.0")


def test_cli_serve_prints_its_url_and_serves(world: World, cli_env: dict[str, str]) -> None:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lineage", "serve", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"lineage explorer at http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert health.status_code == 200
        # Most of the start is importing Python packages; CI machines are shared, hence slack.
        assert time.monotonic() - started < 30
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode in (0, -signal.SIGINT, 1)
    busy = subprocess.run(
        [sys.executable, "-m", "lineage", "serve", "--port", str(port), "--host", "256.1.1.1"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert busy.returncode == 1 and "lineage: error: cannot listen on 256.1.1.1" in busy.stderr
    assert os.environ.get("LINEAGE_HOME")  # the session's home, not the user's
