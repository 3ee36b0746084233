"""Security: Cypher injection, credentials end to end, storage keys that try to leave the root.

All against real servers: the session's Neo4j, a dedicated auth-enabled local server started
through the CLI (stopped in `finally`), and the moto S3 server. The driver's `Session.run` and
`Transaction.run` are wrapped (not replaced) to see the exact query text sent to Neo4j.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import neo4j as neo4j_driver
import pytest
from neo4j._sync.work.session import Session
from neo4j._sync.work.transaction import TransactionBase

import lineage as ln
from graph import ConnectionSettings, from_arguments_or_env
from graph import features as gf
from graph.connection import Connection
from lineage.errors import FieldValidationError, LineageError
from tests.conftest import Neo4jUnderTest, free_port
from tests.s3 import S3Bucket

# --------------------------------------------------------------------------------------------
# 1. Cypher injection
# --------------------------------------------------------------------------------------------
PAYLOADS = [
    "' OR 1=1 //",
    '" OR 1=1 //',
    "') OR true WITH n MATCH (m) DETACH DELETE m //",
    '"}) MATCH (n) DETACH DELETE n //',
    "'}) MATCH (n) DETACH DELETE n //",
    "`) DETACH DELETE n //",
    "x` DETACH DELETE n //",
    "\\u0027 OR 1=1 //",  # a Cypher string escape for ', as text
    "\u0027 OR \u00271\u0027=\u00271",  # the real quote characters
    "$param",
    "$p0",
    "{",
    "}",
    "//",
    "/*",
    "*/ RETURN 1 /*",
    ";",
    "; CALL dbms.killQueries(['query-1']) //",
    "CALL dbms.killQueries([]) YIELD queryId RETURN queryId",
    "n.uid) RETURN n //",
    "uid OR true",
    "key\nMATCH (n) DETACH DELETE n",
    "\\",
    "\\'",
    "%s %(x)s {0} {x}",
    "x\x00y",
    "ünï \u202e cödé 😀 ' \" `",
]
NEUTRAL = "neutral-value"  # run first: the query texts it produces are lineage's own
# Field names: each payload alone, and behind a valid field, relation or lookup.
FIELD_PAYLOADS = [
    *PAYLOADS,
    *(f"key__{p}" for p in PAYLOADS[:8]),
    *(f"created_by__{p}" for p in PAYLOADS[:8]),
    *(f"{p}__exact" for p in PAYLOADS[:8]),
    "key__startswith__x",
    "__key",
    "key__",
    "",
]


class QuerySpy:
    """Records the text of every query the driver sends (the call goes through unchanged)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def clear(self) -> None:
        self.queries.clear()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> QuerySpy:
    seen = QuerySpy()

    def wrap(original: Callable) -> Callable:
        def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            seen.queries.append(getattr(query, "text", query))
            return original(self, query, *args, **kwargs)

        return run

    monkeypatch.setattr(Session, "run", wrap(Session.run))
    monkeypatch.setattr(TransactionBase, "run", wrap(TransactionBase.run))
    return seen


def graph_snapshot() -> tuple[dict[str, str], set[tuple[str, str, str, str]]]:
    """Every node (by element id: labels and properties) and every relationship."""
    conn = _raw()
    nodes = {
        row["id"]: json.dumps([sorted(row["labels"]), row["props"]], sort_keys=True, default=str)
        for row in conn.run(
            "MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props"
        )
    }
    rels = {
        (
            row["a"],
            row["t"],
            row["b"],
            json.dumps(row["props"], sort_keys=True, default=str),
        )
        for row in conn.run(
            "MATCH (a)-[r]->(b) RETURN elementId(a) AS a, type(r) AS t, elementId(b) AS b, "
            "properties(r) AS props"
        )
    }
    return nodes, rels


def pasted(payload: str, queries: list[str], own_texts: set[str]) -> list[str]:
    """Queries whose text contains `payload`, unless lineage's own text for a neutral value
    contains it too (`$p0`, `{`, `//` are part of lineage's own queries)."""
    if any(payload in text for text in own_texts):
        return []
    return [q for q in queries if payload in q]


def _raw() -> Connection:
    from lineage._instance import current

    return current().connection


def _seed(storage: Path) -> dict[str, Any]:
    """Records holding each payload as data, plus bystanders that must never change."""
    src = storage.parent / "src"
    src.mkdir(exist_ok=True)
    transform = ln.Transform(key="bystander-pipeline", kind="pipeline").save()
    run = ln.Run(transform, params={"lr": 0.1}).save()
    bystanders = []
    for i in range(3):
        path = src / f"bystander{i}.txt"
        path.write_text(f"bystander {i}\n")
        bystanders.append(ln.Artifact(path, key=f"bystanders/b{i}.txt", run=run).save())
    ln.Collection(bystanders, key="bystanders").save()
    labels = {
        p: ln.ULabel(name=p, description=f"label holding {p!r}").save()
        for p in [NEUTRAL, *PAYLOADS]
    }
    ln.ULabel(name="plain label").save()
    return {
        "transform": transform,
        "run": run,
        "bystanders": bystanders,
        "labels": labels,
    }


def test_field_name_payloads_are_refused_before_any_query(storage: Path, spy: QuerySpy) -> None:
    _seed(storage)
    before = graph_snapshot()
    attempts: list[tuple[str, Callable[[], Any]]] = []
    for p in FIELD_PAYLOADS:
        attempts += [
            (
                f"ULabel.filter(**{{{p!r}: 1}})",
                lambda p=p: ln.ULabel.filter(**{p: 1}).to_list(),
            ),
            (
                f"Artifact.filter(**{{{p!r}: 'x'}})",
                lambda p=p: ln.Artifact.filter(**{p: "x"}).count(),
            ),
            (
                f"Q({p!r})",
                lambda p=p: ln.Artifact.filter(ln.Q(**{p: "x"}) | ln.Q(key="x")).exists(),
            ),
            (
                f"exclude({p!r})",
                lambda p=p: ln.Artifact.filter().exclude(**{p: "x"}).to_list(),
            ),
            (f"get(**{{{p!r}: 'x'}})", lambda p=p: ln.ULabel.get(**{p: "x"})),
            (f"order_by({p!r})", lambda p=p: ln.ULabel.filter().order_by(p).to_list()),
            (
                f"order_by('-'+{p!r})",
                lambda p=p: ln.ULabel.filter().order_by("-" + p).first(),
            ),
            (f"df(include={p!r})", lambda p=p: ln.Artifact.df(include=p)),
            (
                f"df(include=[ok, {p!r}])",
                lambda p=p: ln.Artifact.df(include=["key", p]),
            ),
            (f"search(field={p!r})", lambda p=p: ln.ULabel.search("x", field=p)),
            (
                f"search(field=[name, {p!r}])",
                lambda p=p: ln.ULabel.search("x", field=["name", p]),
            ),
        ]
        if p:  # lookup() with an empty field name means "the default field"
            attempts += [
                (f"lookup(field={p!r})", lambda p=p: ln.ULabel.lookup(field=p)),
                (
                    f"lookup(return_field={p!r})",
                    lambda p=p: ln.ULabel.lookup(return_field=p),
                ),
            ]
    for what, attempt in attempts:
        spy.clear()
        with pytest.raises(FieldValidationError):
            attempt()
        # A name that is no field or relation of a registry with features may be a feature's:
        # the one fixed statement that looks features up by name (the name a parameter) is the
        # only query allowed; nothing else is sent before the error.
        sent = [q for q in spy.queries if q != gf.FEATURES_BY_NAME]
        assert sent == [], f"{what} sent a query before failing: {spy.queries}"
    assert graph_snapshot() == before
    print(f"\n{len(attempts)} field-name injection attempts refused before any query")


def _hits_expected(payload: str, fields: dict[str, tuple[str, ...]]) -> set[str]:
    """The ULabel uids whose name or description contains `payload`, case-insensitively
    (Python's lower() agrees with Cypher's toLower() on these strings)."""
    return {
        uid for uid, texts in fields.items() if any(payload.lower() in t.lower() for t in texts)
    }


def test_value_payloads_are_literal_data(storage: Path, spy: QuerySpy) -> None:
    seeded = _seed(storage)
    labels: dict[str, ln.ULabel] = seeded["labels"]
    searchable = {
        lab.uid: (lab.name or "", lab.description or "") for lab in ln.ULabel.filter().to_list()
    }
    before = graph_snapshot()
    n_attempts = 0
    own_texts: set[str] = set()
    for p in [NEUTRAL, *PAYLOADS]:
        label = labels[p]
        spy.clear()
        # Stored and read back byte-identical, by every way of finding it.
        assert ln.ULabel.get(label.uid).name == p
        assert [x.uid for x in ln.ULabel.filter(name=p)] == [label.uid]
        assert ln.ULabel.get(name=p).uid == label.uid
        assert [x.uid for x in ln.ULabel.filter(name__in=[p, "nothing"])] == [label.uid]
        assert [x.uid for x in ln.ULabel.filter(name__iexact=p)] == [label.uid]
        assert ln.ULabel.filter(ln.Q(name=p) | ln.Q(name="nothing")).one().uid == label.uid
        exact_desc = ln.ULabel.filter(description=f"label holding {p!r}").one()
        assert exact_desc.uid == label.uid and exact_desc.description == f"label holding {p!r}"
        contains = {x.uid for x in ln.ULabel.filter(name__contains=p)}
        assert label.uid in contains
        assert all(p in x.name for x in ln.ULabel.filter(name__contains=p))
        assert {x.uid for x in ln.ULabel.filter(name__startswith=p)} == {
            u for u, lab in ((lab.uid, lab) for lab in labels.values()) if lab.name.startswith(p)
        }
        assert ln.ULabel.filter(name=p).df()["name"].tolist() == [p]
        # A payload as a uid or uid prefix is just a string that matches no uid.
        with pytest.raises(ln.errors.DoesNotExist):
            ln.ULabel.get(p)
        assert ln.Artifact.filter(key=p).count() == 0
        assert not ln.Collection.filter(key__startswith=p).exists()
        # Search finds the record holding the payload first (score 200 for an equal name),
        # and only records that contain it.
        hits = ln.ULabel.search(p, limit=None)
        assert hits[0].uid == label.uid, (p, [h.name for h in hits])
        assert {h.uid for h in hits} == _hits_expected(p, searchable), p
        assert {h.uid for h in ln.ULabel.search(p, field="name", case_sensitive=True)} == {
            lab.uid for lab in labels.values() if p in lab.name
        }
        assert ln.Artifact.search(p).count() == 0 or all(
            p.lower() in (a.key or "").lower() + (a.description or "").lower()
            for a in ln.Artifact.search(p)
        )
        n_attempts += 17
        # The payload only ever travelled as a parameter.
        assert spy.queries, "the spy saw no queries"
        if p == NEUTRAL:
            own_texts = set(spy.queries)
        leaked = pasted(p, spy.queries, own_texts)
        assert not leaked, f"{p!r} was pasted into query text: {leaked[0]}"
        assert graph_snapshot() == before, f"looking for {p!r} changed the graph"
    print(f"\n{n_attempts} value/search injection attempts, all literal")


def test_payloads_as_saved_names_keys_and_params(storage: Path, spy: QuerySpy) -> None:
    seeded = _seed(storage)
    src = storage.parent / "src"
    bystanders = seeded["bystanders"]
    stored = rejected = 0
    own_texts: set[str] = set()
    for i, p in enumerate([NEUTRAL, *PAYLOADS]):
        before_nodes, before_rels = graph_snapshot()
        spy.clear()
        # Run params: keys and values are data (stored as JSON), any string allowed.
        run = ln.Run(seeded["transform"], params={p: p, "nested": {p: [p]}}).save()
        assert ln.Run.get(run.uid).params == {p: p, "nested": {p: [p]}}
        # Descriptions take any string; keys may be refused by key validation.
        path = src / f"payload{i}"
        path.write_text(f"payload {i}\n")
        artifact = ln.Artifact(path, key=f"payloads/p{i}", description=p).save()
        keyed = src / f"keyed{i}"
        keyed.write_text(f"keyed {i}\n")
        assert ln.Artifact.get(artifact.uid).description == p
        assert ln.Artifact.get(description=p).uid == artifact.uid
        for make in (
            lambda p=p: ln.Transform(key=p, description=p).save(),
            lambda p=p, keyed=keyed: ln.Artifact(keyed, key=p).save(),
            lambda p=p, artifact=artifact: ln.Collection([artifact], key=p, description=p).save(),
        ):
            try:
                record = make()
            except (LineageError, ValueError) as exc:  # refused by validation: fine
                assert "Traceback" not in str(exc)
                rejected += 1
                continue
            stored += 1
            model = type(record)
            back = model.get(record.uid)
            assert back.key == p
            assert [r.uid for r in model.filter(key=p)] == [record.uid]
        if p == NEUTRAL:
            own_texts = set(spy.queries)
        leaked = pasted(p, spy.queries, own_texts)
        assert not leaked, f"{p!r} was pasted into query text: {leaked[0]}"
        after_nodes, after_rels = graph_snapshot()
        changed = {k for k, v in before_nodes.items() if after_nodes.get(k) != v}
        # Only the counters and the artifact that became a new version's predecessor may change.
        for k in changed:
            assert k in after_nodes, f"saving {p!r} deleted a node"
            assert (
                json.loads(after_nodes[k])[0] == ["LineageCounter"] or "Artifact" in after_nodes[k]
            ), (
                p,
                before_nodes[k],
                after_nodes[k],
            )
        assert before_rels <= after_rels, f"saving {p!r} removed relationships"
        assert ln.Artifact.filter(uid__in=[b.uid for b in bystanders]).count() == 3
    assert ln.Collection.get(key="bystanders").artifacts.count() == 3
    print(f"\npayloads as keys: {stored} stored literally, {rejected} refused by validation")


def test_user_cypher_takes_values_as_parameters(db: ln.Instance) -> None:
    ln.cypher("CREATE (:Probe {v: 'bystander'})")
    for p in PAYLOADS:
        assert ln.cypher("RETURN $v AS v", v=p)["v"].tolist() == [p]
        ln.cypher("CREATE (:Probe {v: $v})", v=p)
        assert ln.cypher("MATCH (x:Probe {v: $v}) RETURN x.v AS v", v=p)["v"].tolist() == [p]
    count = ln.cypher("MATCH (x:Probe) RETURN count(x) AS n")["n"].tolist()
    assert count == [len(PAYLOADS) + 1]


# --------------------------------------------------------------------------------------------
# 2. Credentials end to end
# --------------------------------------------------------------------------------------------
NEO4J_VARS = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")
WRONG = "Wr0ng-pa55word-that-must-not-show"
URI_SECRET = "s3cret-in-the-uri"


class AuthServer:
    def __init__(self, home: Path, port: int, install_dir: Path) -> None:
        self.home = home
        self.port = port
        self.install_dir = install_dir
        self.start_output = ""

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def password_file(self) -> Path:
        return self.home / "server" / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in NEO4J_VARS}
        env.update(LINEAGE_HOME=str(self.home), LINEAGE_NEO4J_INSTALL=str(self.install_dir))
        env.update(extra)
        return env

    def wait_unlocked(self, timeout: float = 30.0) -> None:
        """Neo4j locks a user for a few seconds after 3 wrong passwords in a row (even the
        right one is refused meanwhile); wait until the right password works again."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with neo4j_driver.GraphDatabase.driver(
                    self.uri, auth=("neo4j", self.password)
                ) as driver:
                    driver.verify_connectivity()
                return
            except neo4j_driver.exceptions.Neo4jError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lineage", *args],
            capture_output=True,
            check=False,
            text=True,
            env=self.env(**env),
            timeout=300,
        )


@pytest.fixture(scope="module")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, neo4j_install_dir: Path
) -> Iterator[AuthServer]:
    server = AuthServer(tmp_path_factory.mktemp("auth-home"), free_port(), neo4j_install_dir)
    try:
        started = server.cli("server", "start", "--auth", "--port", str(server.port))
        server.start_output = started.stdout + started.stderr
        assert started.returncode == 0, server.start_output
        yield server
    finally:
        stopped = server.cli("server", "stop")
        assert stopped.returncode == 0, stopped.stderr
        ln.disconnect()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in NEO4J_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


class LogCapture(logging.Handler):
    """Every log record of every logger, at DEBUG, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        if record.exc_info:
            self.lines.append("".join(traceback.format_exception(*record.exc_info)))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def all_logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    root = logging.getLogger()
    names = [
        "",
        "neo4j",
        "neo4j.io",
        "neo4j.pool",
        "neo4j.notifications",
        "graph",
        "lineage",
        "loaders",
    ]
    saved = {name: logging.getLogger(name).level for name in names}
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def everything_about(exc: BaseException) -> str:
    """str, repr and the full formatted traceback (with its chained causes) of an exception."""
    return "\n".join(
        [
            str(exc),
            repr(exc),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ]
        + [
            repr(getattr(exc, "__context__", None)),
            repr(getattr(exc, "__cause__", None)),
        ]
    )


def test_auth_server_credentials_end_to_end(
    auth_server: AuthServer, clean_env: pytest.MonkeyPatch, all_logs: LogCapture
) -> None:
    auth_server.wait_unlocked()
    password = auth_server.password
    assert stat.S_IMODE(auth_server.password_file.stat().st_mode) == 0o600
    assert password not in auth_server.start_output

    # NEO4J_USER / NEO4J_PASSWORD from the environment work.
    clean_env.setenv("NEO4J_URI", auth_server.uri)
    clean_env.setenv("NEO4J_USER", "neo4j")
    clean_env.setenv("NEO4J_PASSWORD", password)
    try:
        instance = ln.connect()
        assert instance.source == "environment"
        assert ln.cypher("RETURN 1 AS x")["x"].tolist() == [1]
        shown = [
            repr(instance),
            repr(instance.connection),
            repr(instance.connection.settings),
            str(instance.connection.settings),
            repr(ln.settings),
            instance.uri,
        ]
        for text in shown:
            assert password not in text, text
        # A query error from ln.cypher names the problem, not the credentials.
        with pytest.raises(ln.errors.QueryError) as info:
            ln.cypher("RETURN $x +* 1", x=1)
        assert password not in everything_about(info.value)

        # A wrong password: a clear error that never shows the password, anywhere.
        ln.disconnect()
        clean_env.setenv("NEO4J_PASSWORD", WRONG)
        with pytest.raises(ln.errors.AuthenticationFailed) as info:
            ln.connect()
        text = everything_about(info.value)
        assert auth_server.uri in str(info.value) and "neo4j" in str(info.value)
        assert WRONG not in text and password not in text
        # ... also when the first use of the API connects on its own.
        with pytest.raises(ln.errors.AuthenticationFailed) as info:
            ln.cypher("RETURN 1 AS x")
        assert WRONG not in everything_about(info.value)
        with pytest.raises(ln.errors.AuthenticationFailed) as info:
            ln.connect(auth_server.uri, user="neo4j", password=WRONG)
        assert WRONG not in everything_about(info.value)
        # A password given inside the URI is refused and redacted.
        with pytest.raises(ln.errors.InvalidURI) as info:
            ln.connect(
                f"bolt://neo4j:{URI_SECRET}@127.0.0.1:{auth_server.port}",
                password=WRONG,
            )
        assert URI_SECRET not in everything_about(info.value)
        assert WRONG not in everything_about(info.value)
        # Three wrong passwords in a row lock the user for a few seconds: then even the right
        # password is refused, as AuthenticationFailed, still without showing it.
        for _ in range(3):
            with pytest.raises(ln.errors.AuthenticationFailed):
                ln.connect(auth_server.uri, user="neo4j", password=WRONG)
        try:
            ln.connect(auth_server.uri, user="neo4j", password=password)
            locked_out = False  # the lock had already expired (a slow machine)
        except ln.errors.AuthenticationFailed as exc:
            locked_out = True
            assert "too many" in str(exc) and password not in everything_about(exc)
        print(f"\nright password refused during the lockout: {locked_out}")
        auth_server.wait_unlocked()
    finally:
        ln.disconnect()
    assert all_logs.lines, "the DEBUG capture saw nothing: is the driver logging hooked?"
    for secret in (password, WRONG, URI_SECRET):
        assert secret not in all_logs.text


def test_named_instance_config_is_private(
    auth_server: AuthServer,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    all_logs: LogCapture,
) -> None:
    auth_server.wait_unlocked()
    home = tmp_path / "fresh-home"  # does not exist yet: add_instance creates it
    clean_env.setenv("LINEAGE_HOME", str(home))
    password = auth_server.password
    try:
        ln.settings.add_instance("secure", auth_server.uri, user="neo4j", password=password)
        config = home / "instances.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert json.loads(config.read_text())["secure"]["password"] == password
        assert ln.ULabel.using("secure").count() >= 0
        # Rewriting keeps the mode, even when a stale temporary file was left world-readable.
        tmp = config.with_suffix(".tmp")
        tmp.write_text("{}")
        tmp.chmod(0o644)
        ln.settings.add_instance("wrong", auth_server.uri, user="neo4j", password=WRONG)
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        with pytest.raises(ln.errors.AuthenticationFailed) as info:
            ln.ULabel.using("wrong").count()
        assert WRONG not in everything_about(info.value) and password not in everything_about(
            info.value
        )
        assert password not in repr(ln.settings)
    finally:
        ln.disconnect()
    assert password not in all_logs.text and WRONG not in all_logs.text


def test_cli_never_prints_the_password(auth_server: AuthServer) -> None:
    auth_server.wait_unlocked()
    password = auth_server.password
    outputs = []
    status = auth_server.cli("server", "status")
    assert status.returncode == 0 and "auth on" in status.stdout
    outputs.append(status)
    again = auth_server.cli("server", "start", "--auth")
    assert again.returncode == 0 and "already running" in again.stdout
    outputs.append(again)

    ok = auth_server.cli(
        "cypher", "RETURN $n AS n", "--param", "n=41",
        NEO4J_URI=auth_server.uri, NEO4J_USER="neo4j", NEO4J_PASSWORD=password,
    )  # fmt: skip
    assert ok.returncode == 0 and "41" in ok.stdout, ok.stderr
    outputs.append(ok)
    # With no NEO4J_* at all the CLI finds the local server and its password file.
    local = auth_server.cli("cypher", "RETURN 7 AS n")
    assert local.returncode == 0 and "7" in local.stdout, local.stderr
    outputs.append(local)

    wrong = auth_server.cli(
        "cypher", "RETURN 1 AS n", NEO4J_URI=auth_server.uri, NEO4J_PASSWORD=WRONG
    )
    assert wrong.returncode == 1 and "rejected the credentials" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    outputs.append(wrong)
    in_uri = auth_server.cli(
        "cypher",
        "RETURN 1 AS n",
        NEO4J_URI=f"bolt://neo4j:{URI_SECRET}@127.0.0.1:{auth_server.port}",
    )
    assert in_uri.returncode == 1 and "not a Neo4j URI" in in_uri.stderr
    outputs.append(in_uri)
    bad_query = auth_server.cli(
        "cypher", "RETURN +* 1", NEO4J_URI=auth_server.uri, NEO4J_PASSWORD=password
    )
    assert bad_query.returncode == 1
    outputs.append(bad_query)

    for out in outputs:
        text = out.stdout + out.stderr
        for secret in (password, WRONG, URI_SECRET):
            assert secret not in text, (out.args, text)


def test_credentials_in_uris_are_redacted_wherever_shown(
    clean_env: pytest.MonkeyPatch,
) -> None:
    uri = f"bolt://neo4j:{URI_SECRET}@db.example.org:7687"
    settings = ConnectionSettings(uri=uri, password=WRONG)
    for text in (repr(settings), str(settings), settings.display_uri):
        assert URI_SECRET not in text and WRONG not in text, text
    assert settings.display_uri == "bolt://db.example.org:7687"
    clean_env.setenv("NEO4J_URI", uri)
    from_env = from_arguments_or_env()
    assert from_env.uri == uri  # passed through; only its display is redacted
    assert URI_SECRET not in repr(from_env)
    for scheme in ("bolt", "neo4j", "bolt+s", "neo4j+ssc"):
        with pytest.raises(ln.errors.InvalidURI) as info:
            ln.connect(f"{scheme}://neo4j:{URI_SECRET}@127.0.0.1:{free_port()}")
        assert URI_SECRET not in everything_about(info.value)
        assert f"{scheme}://127.0.0.1:" in str(info.value)


@pytest.mark.parametrize("scheme", ["bolt+s", "neo4j+s", "bolt+ssc", "neo4j+ssc"])
def test_tls_uris_reach_the_driver_unchanged_and_never_downgrade(
    scheme: str,
    neo4j: Neo4jUnderTest,
    clean_env: pytest.MonkeyPatch,
    all_logs: LogCapture,
) -> None:
    if neo4j.kind != "local server":
        pytest.skip("needs the project's local (plain-Bolt) server")
    port = neo4j.settings.uri.rsplit(":", 1)[1]
    uri = f"{scheme}://127.0.0.1:{port}"
    clean_env.setenv("NEO4J_URI", uri)
    settings = from_arguments_or_env()
    assert settings.uri == uri and settings.display_uri == uri

    created: list[tuple[str, neo4j_driver.Driver]] = []
    real_driver = neo4j_driver.GraphDatabase.driver

    def recording_driver(uri_arg: str, *args: Any, **kwargs: Any) -> neo4j_driver.Driver:
        driver = real_driver(uri_arg, *args, **kwargs)
        created.append((uri_arg, driver))
        return driver

    clean_env.setattr(neo4j_driver.GraphDatabase, "driver", recording_driver)
    t0 = time.monotonic()
    # The server speaks plain Bolt: a TLS client must fail, never fall back to plain text.
    with pytest.raises(ln.errors.ConnectionFailed) as info:
        ln.connect(password=WRONG)
    elapsed = time.monotonic() - t0
    assert not isinstance(info.value, (ln.errors.AuthenticationFailed, ln.errors.InvalidURI))
    assert uri in str(info.value)
    assert WRONG not in everything_about(info.value)
    assert elapsed < 60
    assert [u for u, _ in created] == [uri]
    assert created[0][1].encrypted is True
    assert WRONG not in all_logs.text
    ln.disconnect()


# --------------------------------------------------------------------------------------------
# 3. Storage keys never leave the storage root
# --------------------------------------------------------------------------------------------
HOSTILE_KEYS = [
    "../../etc/x.txt",
    "../../../../../../../../tmp/lineage-escape.txt",
    "/abs/x.txt",
    "/tmp/lineage-escape-abs.txt",
    "a/../../b.txt",
    "..\\..\\x.txt",
    "..\\..\\x",
    "./x.txt",
    "a//b.txt",
    "~/x.txt",
    "$HOME/x.txt",
    "%2e%2e/%2e%2e/x.txt",
    "..",
    "x/..",
    ".lineage/../../x.txt",
    "a/\u2025/x.txt",  # two-dot leader, not ".."
]
ESCAPE_CANDIDATES = [
    Path("/abs"),
    Path("/tmp/lineage-escape.txt"),
    Path("/tmp/lineage-escape-abs.txt"),
]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def inside(path: str, *prefixes: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _save_hostile(src: Path, key: str, i: int) -> ln.Artifact | None:
    path = src / f"hostile{i}.txt"
    path.write_text(f"hostile {i} {key}\n")
    try:
        return ln.Artifact(path, key=key).save()
    except (LineageError, ValueError) as exc:  # refused by key validation
        assert "Traceback" not in str(exc)
        return None


def test_local_storage_keys_never_escape_the_root(db: ln.Instance, tmp_path: Path) -> None:
    saved = (ln.settings._storage, ln.settings._cache_dir, ln.settings.storage_options)
    # Deep inside tmp_path, so `../..` escapes would still land where the snapshot sees them.
    root = tmp_path / "d1" / "d2" / "d3" / "storage"
    src = tmp_path / "src"
    src.mkdir()
    ln.settings.storage = root
    ln.settings.cache_dir = tmp_path / "d1" / "d2" / "d3" / "cache"
    ln.context.run = ln.context.transform = None
    for i in range(len(HOSTILE_KEYS)):
        (src / f"hostile{i}.txt").write_text("")
    before = tree(tmp_path)
    try:
        kept = rejected = 0
        for i, key in enumerate(HOSTILE_KEYS):
            artifact = _save_hostile(src, key, i)
            if artifact is None:
                rejected += 1
                continue
            kept += 1
            assert artifact.key == key  # a key is a name, not a path
            storage_path = Path(artifact.storage_path)
            assert storage_path.parent == root / ".lineage", artifact.storage_path
            assert storage_path.read_text() == f"hostile {i} {key}\n"
            assert artifact.cache() == storage_path
            assert ln.Artifact.get(key=key).uid == artifact.uid
        managed = str((root / ".lineage").relative_to(tmp_path))
        cache_rel = str(ln.settings.cache_dir.relative_to(tmp_path))
        outside = sorted(p for p in tree(tmp_path) - before if not inside(p, managed, cache_rel))
        assert outside == [], outside
        for path in ESCAPE_CANDIDATES:
            assert not path.exists(), path
        # Deleting them removes only their own files.
        for artifact in ln.Artifact.filter().to_list():
            artifact.delete(permanent=True)
        assert not any((root / ".lineage").iterdir())
        assert not [p for p in tree(tmp_path) - before if not inside(p, managed, cache_rel)]
        assert before <= tree(tmp_path), "a file outside the managed folder was deleted"
        print(f"\nlocal hostile keys: {kept} stored under .lineage/, {rejected} refused")
    finally:
        ln.settings._storage, ln.settings._cache_dir, ln.settings.storage_options = saved
        ln.context.run = ln.context.transform = None


def _bucket_keys(bucket: S3Bucket) -> set[str]:
    pages = bucket.client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_s3_storage_and_cache_never_escape(
    db: ln.Instance, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    saved = (ln.settings._storage, ln.settings._cache_dir, ln.settings.storage_options)
    cache_dir = tmp_path / "c1" / "c2" / "c3" / "cache"
    src = tmp_path / "src"
    src.mkdir()
    ln.settings.storage = f"{s3_bucket.uri}/prefix"
    ln.settings.storage_options = s3_bucket.storage_options
    ln.settings.cache_dir = cache_dir
    ln.context.run = ln.context.transform = None
    # Objects registered in place whose S3 keys are hostile as paths (S3 keys are any string).
    in_place_keys = [
        "a/../../x.txt",
        "../x.txt",
        "prefix/../../../etc/passwd.txt",
        "prefix/.lineage/../../../y.txt",
        "a/./b.txt",
        "a//b.txt",
        "/abs.txt",
        "..\\..\\w.txt",
        "../../../../../../../../tmp/lineage-s3-escape.txt",
    ]
    for key in in_place_keys:
        s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=f"object {key}\n".encode())
    bucket_before = _bucket_keys(s3_bucket)
    assert set(in_place_keys) <= bucket_before  # moto keeps the keys verbatim
    cache_dir.mkdir(parents=True)
    for i in range(len(HOSTILE_KEYS)):
        (src / f"hostile{i}.txt").write_text("")
    before = tree(tmp_path)
    try:
        kept = rejected = 0
        for i, key in enumerate(HOSTILE_KEYS):
            artifact = _save_hostile(src, key, i)
            if artifact is None:
                rejected += 1
                continue
            kept += 1
            assert artifact.storage_path.startswith(f"{s3_bucket.uri}/prefix/.lineage/")
            assert "/" not in artifact.storage_path.rsplit("/.lineage/", 1)[1]
            cached = artifact.cache()
            assert cached.is_relative_to(cache_dir) and cached.read_text() == f"hostile {i} {key}\n"
        new_objects = _bucket_keys(s3_bucket) - bucket_before
        assert all(k.startswith("prefix/.lineage/") and k.count("/") == 2 for k in new_objects), (
            new_objects
        )
        assert len(new_objects) == kept

        cached_ok = refused = 0
        outcomes: dict[str, str] = {}
        for key in in_place_keys:
            uri = f"{s3_bucket.uri}/{key}"
            try:
                artifact = ln.Artifact(uri).save()
            except (LineageError, ValueError) as exc:
                outcomes[key] = f"refused at registration: {exc}"
                refused += 1
                continue
            assert artifact.storage_path == uri  # registered in place, not copied
            try:
                cached = artifact.cache()
            except (LineageError, ValueError) as exc:
                assert "cannot cache" in str(exc) or "key" in str(exc)
                outcomes[key] = f"refused by cache(): {exc}"
                refused += 1
                continue
            outcomes[key] = f"cached at {cached.relative_to(cache_dir)}"
            cached_ok += 1
            assert cached.resolve().is_relative_to(cache_dir.resolve()), cached
            assert cached.read_text() == f"object {key}\n"
        new = tree(tmp_path) - before
        cache_rel = str(cache_dir.relative_to(tmp_path))
        outside = sorted(p for p in new if not inside(p, cache_rel))
        assert outside == [], outside
        assert _bucket_keys(s3_bucket) - bucket_before == new_objects  # registering copies nothing
        for path in [
            *ESCAPE_CANDIDATES,
            Path("/tmp/lineage-s3-escape.txt"),
            Path("/etc/passwd.txt"),
        ]:
            assert not path.exists(), path
        print(
            f"\nS3 hostile keys: {kept} stored under prefix/.lineage/, {rejected} refused; "
            f"in-place hostile objects: {cached_ok} cached inside cache_dir, {refused} refused"
        )
        for key, outcome in outcomes.items():
            print(f"  {key!r}: {outcome}")
    finally:
        ln.settings._storage, ln.settings._cache_dir, ln.settings.storage_options = saved
        ln.context.run = ln.context.transform = None
