"""The local Neo4j server: an embedded Neo4j Community DBMS in its own JVM, Bolt on loopback.

Machines without Docker still get a real Neo4j. The jars of `org.neo4j:neo4j` are resolved once
by Maven into a repository under the lineage home, a one-class launcher (`java/LineageNeo4j.java`)
is compiled against them, and `LocalServer.start()` runs it as a detached process:

    <lineage home>/neo4j/<version>/       the install: Maven repository, classpath, launcher class
    <lineage home>/server/                 one server: neo4j.conf, data/, logs/, server.pid, server.json

Every path is derived from two directories, so tests run their own servers beside the user's
while sharing the jar download.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from graph.errors import ServerError
from graph.settings import DEFAULT_USER, lineage_home

NEO4J_VERSION = "5.26.30"
DEFAULT_PORT = 7687
_JAVA_DIR = Path(__file__).parent / "java"
_LAUNCHER = "LineageNeo4j"
_READY_MARKER = "LINEAGE_NEO4J_READY"
_MIN_JAVA = 17
_NO_JAVA_HINT = (
    "install a JDK 17 or 21 (Debian: apt-get install openjdk-17-jdk-headless maven), "
    "or set NEO4J_URI to a running Neo4j, or start one with docker/compose.yml"
)


@dataclass(frozen=True)
class ServerStatus:
    """What `lineage server status` reports."""

    running: bool
    home: str
    port: int
    pid: int | None = None
    auth: bool = False
    neo4j_version: str = NEO4J_VERSION
    already_running: bool = False

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def describe(self) -> str:
        if not self.running:
            return f"Neo4j local server is not running (home {self.home})"
        prefix = "already running" if self.already_running else "running"
        auth = ", auth on" if self.auth else ""
        return (
            f"Neo4j {self.neo4j_version} {prefix} at {self.uri} "
            f"(pid {self.pid}{auth}, home {self.home})"
        )


def default_install_dir() -> Path:
    """Where the jars live; `LINEAGE_NEO4J_INSTALL` lets several homes share one download."""
    env = os.environ.get("LINEAGE_NEO4J_INSTALL")
    return Path(env).expanduser() if env else lineage_home() / "neo4j" / NEO4J_VERSION


def default_port() -> int:
    """`LINEAGE_NEO4J_PORT`, else 7687."""
    return int(os.environ.get("LINEAGE_NEO4J_PORT") or DEFAULT_PORT)


def default_server_home() -> Path:
    return lineage_home() / "server"


class LocalServer:
    """One local Neo4j server, identified by its home directory.

    The default server lives in ``~/.lineage/server`` and listens on port 7687 (or
    ``$LINEAGE_NEO4J_PORT``). Starting it installs the jars on first use and waits for Bolt::

        server = LocalServer()
        status = server.start()
        status.uri        # 'bolt://127.0.0.1:7687'
        server.stop()     # True

    Any other directory is another server; status and stop are safe to call on one that never
    ran:

    >>> server = LocalServer(home="my-server")
    >>> server.status().running, server.status().describe()
    (False, 'Neo4j local server is not running (home my-server)')
    >>> server.stop()
    False
    """

    def __init__(
        self,
        home: Path | str | None = None,
        install_dir: Path | str | None = None,
        heap: str | None = None,
        pagecache: str | None = None,
    ) -> None:
        self.home = Path(home) if home else default_server_home()
        self.install_dir = Path(install_dir) if install_dir else default_install_dir()
        # Sized for a 2-core, 24 GB laptop or CI box that also runs Python and the tests.
        self.heap = heap or os.environ.get("LINEAGE_NEO4J_HEAP", "1g")
        self.pagecache = pagecache or os.environ.get("LINEAGE_NEO4J_PAGECACHE", "256m")

    # -- paths -----------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def info_file(self) -> Path:
        return self.home / "server.json"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.out"

    # -- install ---------------------------------------------------------------------------
    def install(self) -> Path:
        """Fetch the Neo4j jars (once) and compile the launcher; return the install directory.

        Idempotent and safe to call from several processes at once.
        """
        java = _require_java()
        self.install_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.install_dir / ".install.lock"):
            classpath_file = self.install_dir / "classpath.txt"
            if not _classpath_complete(classpath_file):
                self._resolve_jars(classpath_file)
            self._compile_launcher(java, classpath_file)
        return self.install_dir

    def _resolve_jars(self, classpath_file: Path) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServerError(
                "Maven (mvn) is needed once to fetch the Neo4j jars from Maven Central and was "
                f"not found on PATH: {_NO_JAVA_HINT}"
            )
        _say(
            f"fetching the Neo4j {NEO4J_VERSION} jars from Maven Central into {self.install_dir} "
            "(once; about 140 MB)"
        )
        tmp = classpath_file.with_suffix(".tmp")
        cmd = [
            mvn, "-q", "-B",
            "-f", str(_JAVA_DIR / "pom.xml"),
            f"-Dneo4j.version={NEO4J_VERSION}",
            f"-Dmaven.repo.local={self.install_dir / 'repository'}",
            "dependency:build-classpath",
            "-Dmdep.includeScope=runtime",
            f"-Dmdep.outputFile={tmp}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not tmp.exists():
            tail = (proc.stdout + proc.stderr)[-2000:]
            raise ServerError(
                f"could not fetch the Neo4j {NEO4J_VERSION} jars with Maven "
                f"(exit {proc.returncode}):\n{tail}"
            )
        tmp.replace(classpath_file)  # atomic: a half-resolved classpath is never used

    def _compile_launcher(self, java: str, classpath_file: Path) -> None:
        source = _JAVA_DIR / f"{_LAUNCHER}.java"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        classes = self.install_dir / "classes"
        stamp = classes / ".source-sha256"
        if stamp.exists() and stamp.read_text() == digest:
            return
        javac = shutil.which("javac") or str(Path(java).with_name("javac"))
        if not Path(javac).exists():
            raise ServerError(f"javac was not found (a JRE without a compiler?): {_NO_JAVA_HINT}")
        classes.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [javac, "-d", str(classes), str(source)],
            capture_output=True,
            text=True,
            env={**os.environ, "CLASSPATH": classpath_file.read_text().strip()},
        )
        if proc.returncode != 0:
            raise ServerError(f"could not compile the Neo4j launcher:\n{proc.stderr[-2000:]}")
        stamp.write_text(digest)

    # -- lifecycle -------------------------------------------------------------------------
    def status(self) -> ServerStatus:
        """Whether this server runs; a pid file left by a dead process is removed."""
        info = self._read_info()
        port = int(info.get("port", default_port()))
        pid = self._running_pid()
        return ServerStatus(
            running=pid is not None,
            home=str(self.home),
            port=port,
            pid=pid,
            auth=bool(info.get("auth", False)) and pid is not None,
        )

    def start(
        self, port: int | None = None, auth: bool = False, timeout: float = 180.0
    ) -> ServerStatus:
        """Start the server detached and wait until Bolt answers; idempotent.

        A second call returns the running server's status with `already_running=True`, on the
        port it runs on.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        # The store files are the whole graph: with --auth, a readable data directory would let
        # any local user bypass the password, so the server home is private to its owner.
        os.chmod(self.home, 0o700)
        with _file_lock(self.home / "server.lock"):
            current = self.status()
            if current.running:
                return ServerStatus(**{**asdict(current), "already_running": True})
            port = port or int(self._read_info().get("port", default_port()))
            _check_port_free(port)
            java = _require_java()
            self.install()
            password = self._password_for(auth)
            conf = self._write_conf(port, auth)
            _say(f"starting the local Neo4j server on bolt://127.0.0.1:{port} (home {self.home})")
            proc = self._spawn(java, conf, password)
            self.pid_file.write_text(str(proc.pid))
            self._write_info({"port": port, "auth": auth, "pid": proc.pid})
            self._wait_until_ready(proc, port, password, timeout)
            return self.status()

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server cleanly (SIGTERM, then SIGKILL after `timeout`); False if not running."""
        with (
            _file_lock(self.home / "server.lock")
            if self.home.exists()
            else contextlib.nullcontext()
        ):
            pid = self._running_pid()
            if pid is None:
                return False
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.05)
            self.pid_file.unlink(missing_ok=True)
            return True

    def credentials(self) -> tuple[str, str | None]:
        """(user, password) for this server: a password only when it was started with auth."""
        if self._read_info().get("auth") and self.password_file.exists():
            return DEFAULT_USER, self.password_file.read_text().strip()
        return DEFAULT_USER, None

    # -- helpers ---------------------------------------------------------------------------
    def _read_info(self) -> dict:
        try:
            return json.loads(self.info_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_info(self, info: dict) -> None:
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({**info, "neo4j_version": NEO4J_VERSION}))
        tmp.replace(self.info_file)

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and _is_our_server(pid, self.home):
            return pid
        self.pid_file.unlink(missing_ok=True)  # stale: the process died or the pid was reused
        return None

    def _password_for(self, auth: bool) -> str | None:
        if not auth:
            return None
        if not self.password_file.exists():
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        os.chmod(self.password_file, 0o600)
        return self.password_file.read_text().strip()

    def _write_conf(self, port: int, auth: bool) -> Path:
        settings = {
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"127.0.0.1:{port}",
            "server.bolt.advertised_address": f"127.0.0.1:{port}",
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "server.memory.pagecache.size": self.pagecache,
            "server.directories.logs": str(self.home / "logs"),
            "dbms.security.auth_enabled": "true" if auth else "false",
            # The machine may have no route out; Neo4j must not try to phone home.
            "dbms.usage_report.enabled": "false",
            # Bounded transaction-log retention so a long-lived dev server does not fill the disk.
            "db.tx_log.rotation.size": "64M",
            "db.tx_log.rotation.retention_policy": "256M size",
            "db.logs.query.enabled": "OFF",
            # Netty's graceful Bolt shutdown otherwise idles 2 x 5 s on every `server stop`.
            "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
            "internal.server.bolt.connection_shutdown_wait_time": "1s",
        }
        conf = self.home / "neo4j.conf"
        conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return conf

    def _spawn(self, java: str, conf: Path, password: str | None) -> subprocess.Popen:
        classpath = (self.install_dir / "classpath.txt").read_text().strip()
        env = {**os.environ, "CLASSPATH": f"{self.install_dir / 'classes'}{os.pathsep}{classpath}"}
        env.pop("LINEAGE_NEO4J_PASSWORD", None)
        if password:
            env["LINEAGE_NEO4J_PASSWORD"] = password  # environment, not argv: invisible to `ps`
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_suffix(".out.1"))
        cmd = [
            java,
            "-Xms256m", f"-Xmx{self.heap}",
            "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "-Dfile.encoding=UTF-8",
            _LAUNCHER, str(self.home), str(conf),
        ]  # fmt: skip
        with open(self.log_file, "ab") as log:
            # Own session: Ctrl-C in the terminal that started it does not stop the server.
            return subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, env=env, start_new_session=True,
            )  # fmt: skip

    def _wait_until_ready(
        self, proc: subprocess.Popen, port: int, password: str | None, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServerError(
                    f"the local Neo4j server exited with code {proc.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{_tail(self.log_file)}"
                )
            if _READY_MARKER in _tail(self.log_file, 4000) and _bolt_answers(port, password):
                return
            time.sleep(0.1)
        raise ServerError(
            f"the local Neo4j server did not answer on bolt://127.0.0.1:{port} within {timeout:.0f}s; "
            f"it is still running (pid {proc.pid}); see {self.log_file}"
        )


# -- module helpers ------------------------------------------------------------------------


def _say(message: str) -> None:
    # Progress of the two slow steps (seconds each) goes to stderr, so a notebook or script
    # that connects for the first time does not look hung; stdout stays the caller's.
    print(f"lineage: {message}", file=sys.stderr, flush=True)


def _classpath_complete(classpath_file: Path) -> bool:
    """The resolved classpath exists and every jar on it is still there (caches get pruned)."""
    try:
        entries = classpath_file.read_text().strip().split(os.pathsep)
    except FileNotFoundError:
        return False
    return bool(entries) and all(Path(entry).is_file() for entry in entries)


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServerError(
            f"Java was not found on PATH; the local Neo4j server needs it: {_NO_JAVA_HINT}"
        )
    _check_java_version(os.path.realpath(java))
    return java


@functools.lru_cache(maxsize=8)
def _check_java_version(java: str) -> None:
    proc = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < _MIN_JAVA:
        raise ServerError(
            f"Java {major or '?'} found at {java}, but Neo4j {NEO4J_VERSION} needs Java 17 or 21: "
            f"{_NO_JAVA_HINT}"
        )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_port_free(port: int, grace: float = 3.0) -> None:
    # A JVM killed a moment ago can hold its listening socket for a while after it is reaped,
    # so a busy port gets a short grace period before it counts as taken.
    deadline = time.monotonic() + grace
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ServerError(
                        f"port {port} on 127.0.0.1 is already in use by another process; "
                        f"choose another with `lineage server start --port N`"
                    ) from exc
        time.sleep(0.1)


def _bolt_answers(port: int, password: str | None) -> bool:
    import neo4j  # the driver is heavy to import; only the wait loop needs it

    auth = (DEFAULT_USER, password) if password else None
    try:
        with neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{port}", auth=auth) as driver:
            driver.verify_connectivity()
        return True
    except Exception:
        return False


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our own child, or a dead child would linger as a zombie and look alive.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _is_our_server(pid: int, home: Path) -> bool:
    """Guards against a recycled pid: the process must be our launcher for this home."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        proc = subprocess.run(
            ["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True
        )
        cmdline = proc.stdout
    return _LAUNCHER in cmdline and str(home) in cmdline


def _tail(path: Path, n_bytes: int = 3000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - n_bytes))
            return fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
