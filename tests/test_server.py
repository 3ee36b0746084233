"""The local Neo4j server manager and `lineage server ...`, each against a real JVM.

Every test here runs its own server in its own home on a free port, beside the session's.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import neo4j as neo4j_driver
import pytest

import lineage as ln
from graph import LocalServer, ServerError
from graph.server.manager import _alive, _classpath_complete
from tests.conftest import free_port


def _count(uri: str, password: str | None = None) -> int:
    auth = ("neo4j", password) if password else None
    with neo4j_driver.GraphDatabase.driver(uri, auth=auth) as driver:
        records, _, _ = driver.execute_query("MATCH (n:Probe) RETURN count(n) AS n")
        return records[0]["n"]


def _write_probe(uri: str, value: str) -> None:
    with neo4j_driver.GraphDatabase.driver(uri) as driver:
        driver.execute_query("CREATE (:Probe {value: $v})", {"v": value})


@pytest.fixture
def server(tmp_path: Path, neo4j_install_dir: Path) -> LocalServer:
    srv = LocalServer(home=tmp_path / "server", install_dir=neo4j_install_dir)
    yield srv
    srv.stop(timeout=20)


def test_start_is_idempotent_and_status_tells_the_truth(server: LocalServer) -> None:
    assert not server.status().running
    port = free_port()
    first = server.start(port=port)
    assert first.running and not first.already_running
    assert first.uri == f"bolt://127.0.0.1:{port}"
    assert server.pid_file.read_text() == str(first.pid)

    second = server.start(port=port)
    assert second.already_running and second.pid == first.pid
    assert server.status().running

    assert server.stop() is True
    assert not server.status().running
    assert not server.pid_file.exists()
    assert server.stop() is False  # stopping a stopped server is a no-op
    assert not _alive(first.pid)


def test_data_survives_clean_restart_and_kill_9(server: LocalServer) -> None:
    status = server.start(port=free_port())
    _write_probe(status.uri, "before stop")
    server.stop()
    status = server.start()  # the port is remembered
    assert _count(status.uri) == 1

    _write_probe(status.uri, "before kill")
    os.kill(status.pid, signal.SIGKILL)  # committed transactions must survive a crash
    while _alive(status.pid):
        time.sleep(0.05)
    assert not server.status().running
    assert not server.pid_file.exists(), "the stale pid file is cleaned up"
    status = server.start()
    assert _count(status.uri) == 2


def test_stale_pid_file_is_detected(server: LocalServer) -> None:
    server.home.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    server.pid_file.write_text(str(dead.pid))
    assert not server.status().running
    assert not server.pid_file.exists()

    # A live process that is not our launcher (a recycled pid) is not mistaken for the server.
    server.pid_file.write_text(str(os.getpid()))
    assert not server.status().running
    assert not server.pid_file.exists()


def test_port_in_use_is_a_clear_error(server: LocalServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port} .* in use"):
            server.start(port=port)
    assert not server.pid_file.exists()


def test_missing_java_says_what_to_install(
    server: LocalServer, tmp_path: Path, monkeypatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ServerError) as info:
        server.start(port=free_port())
    message = str(info.value)
    assert "Java" in message and "NEO4J_URI" in message and "docker/compose.yml" in message


def test_missing_maven_on_first_install_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    java = subprocess.run(["which", "java"], capture_output=True, text=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(Path(java).resolve())
    monkeypatch.setenv("PATH", str(bin_dir))
    fresh = LocalServer(home=tmp_path / "server", install_dir=tmp_path / "no-jars-yet")
    with pytest.raises(ServerError, match=r"Maven \(mvn\).*not found"):
        fresh.install()
    assert not (tmp_path / "no-jars-yet" / "classpath.txt").exists()


def test_old_java_is_refused_with_the_version(
    server: LocalServer, tmp_path: Path, monkeypatch
) -> None:
    bin_dir = tmp_path / "old-java"
    bin_dir.mkdir()
    fake = bin_dir / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ServerError, match="Java 11 found .* needs Java 17 or 21"):
        server.start(port=free_port())


def test_a_pruned_jar_cache_is_resolved_again(tmp_path: Path) -> None:
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"PK")
    classpath = tmp_path / "classpath.txt"
    classpath.write_text(str(jar))
    assert _classpath_complete(classpath)
    classpath.write_text(f"{jar}{os.pathsep}{tmp_path / 'pruned.jar'}")
    assert not _classpath_complete(classpath)
    assert not _classpath_complete(tmp_path / "missing.txt")


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LINEAGE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lineage", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_start_status_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    try:
        started = _cli("server", "start", "--port", str(port), home=home)
        assert started.returncode == 0, started.stderr
        assert f"bolt://127.0.0.1:{port}" in started.stdout

        again = _cli("server", "start", home=home)
        assert again.returncode == 0 and "already running" in again.stdout
        assert f"bolt://127.0.0.1:{port}" in again.stdout

        status = _cli("server", "status", home=home)
        assert status.returncode == 0 and f"bolt://127.0.0.1:{port}" in status.stdout

        # ln.connect() with no settings finds this server through the lineage home.
        probe = (
            "import lineage as ln; i = ln.connect(); "
            "print(i.uri, i.source, ln.cypher('RETURN 1 AS x')['x'].tolist())"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        env["LINEAGE_HOME"] = str(home)
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
        assert out.stdout.strip() == f"bolt://127.0.0.1:{port} local server [1]", out.stderr
    finally:
        stopped = _cli("server", "stop", home=home)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = _cli("server", "status", home=home)
    assert after.returncode == 3 and "not running" in after.stdout


def test_two_concurrent_starts_give_one_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = {**os.environ, "LINEAGE_HOME": str(home)}
    cmd = [sys.executable, "-m", "lineage", "server", "start", "--port", str(port)]
    try:
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)
        ]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        assert sum("already running" in out for out in outs) == 1, outs
        pids = {out.split("(pid ")[1].split(")")[0].split(",")[0] for out in outs}
        assert len(pids) == 1, outs
    finally:
        _cli("server", "stop", home=home)


def test_auth_server_password_is_private_and_enforced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    try:
        started = _cli("server", "start", "--auth", "--port", str(port), home=home)
        assert started.returncode == 0, started.stderr
        password_file = home / "server" / "password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 24
        assert password not in started.stdout + started.stderr

        pid = int((home / "server" / "server.pid").read_text())
        assert password not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")

        uri = f"bolt://127.0.0.1:{port}"
        assert _count(uri, password) == 0
        with pytest.raises(ln.errors.AuthenticationFailed) as info:
            ln.connect(uri, password="wrong-password")
        assert "wrong-password" not in str(info.value) and uri in str(info.value)
        with pytest.raises(ln.errors.AuthenticationFailed, match="NEO4J_PASSWORD"):
            ln.connect(uri)

        logs = "".join(p.read_text(errors="replace") for p in (home / "server" / "logs").iterdir())
        assert password not in logs
        assert password not in (home / "server" / "neo4j.conf").read_text()
    finally:
        _cli("server", "stop", home=home)
