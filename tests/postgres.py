"""PostgreSQL for tests: a real server (Debian's `postgresql` package) on a free loopback port.

Use the fixture by importing it into a test module:

    from tests.postgres import postgres_server  # noqa: F401

    def test_x(postgres_server):
        url = postgres_server.create_database("lamindb")

The server is found through `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`
(Debian's layout); when neither has `initdb`, the test fails and says what to install (.ci/run
installs it): it is never skipped. The cluster lives in a fresh directory under the system's
temporary directory and listens on 127.0.0.1 only, with no Unix socket. PostgreSQL refuses to
run as root: under root (the tests here) every server command runs as Debian's `postgres`
system user (`runuser -u postgres --`), which owns the directory. Authentication, in
`pg_hba.conf`: the role `guarded` must give its password (scram-sha-256), every other role is
trusted, both on 127.0.0.1 only. The server is stopped and its directory removed at the end of
the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import free_port

__all__ = ["PostgresMissing", "PostgresServer", "postgres_server", "server_binaries"]

HOST = "127.0.0.1"
SUPERUSER = "postgres"  # trusted on 127.0.0.1
GUARDED = "guarded"  # a role that must give its password
# Characters a URL must percent-encode, so the scrubbing of encoded passwords is exercised.
GUARDED_PASSWORD = "s3cret/p@ss"
SYSTEM_USER = "postgres"  # Debian's system user for the server, when the tests run as root
_INSTALL_HINT = (
    "install PostgreSQL's server: `apt-get install postgresql` on Debian or Ubuntu (.ci/run "
    "does it), or put the directory holding initdb, pg_ctl and postgres on PATH with pg_config"
)


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries, or no way to run them."""


@dataclass(frozen=True)
class PostgresServer:
    """A running test server: its port, and URLs for its roles."""

    port: int
    directory: Path  # the cluster's parent folder (data/ and server.log)

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{HOST}:{self.port}/{quote(database, safe='')}"

    def execute(self, database: str, *statements: str) -> None:
        """Run statements as the superuser, each in its own transaction (CREATE DATABASE needs
        autocommit)."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def create_database(self, name: str) -> str:
        """A new empty database sorting text as en-US does (ICU), like most hosted Postgres, not
        in byte order; returns the superuser's URL of it."""
        ident = '"' + name.replace('"', '""') + '"'
        self.execute(
            "postgres",
            f"CREATE DATABASE {ident} TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'",
        )
        return self.url(name)


def server_binaries(candidates: list[Path] | None = None) -> Path:
    """The folder holding initdb, pg_ctl and postgres: `pg_config --bindir`, else the newest
    `/usr/lib/postgresql/*/bin` (or the first of `candidates` that has them)."""
    if candidates is None:
        candidates = []
        pg_config = shutil.which("pg_config")
        if pg_config:
            proc = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
            if proc.returncode == 0 and proc.stdout.strip():
                candidates.append(Path(proc.stdout.strip()))
        versions = glob.glob("/usr/lib/postgresql/*/bin")
        versions.sort(
            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0
        )
        candidates += [Path(p) for p in reversed(versions)]
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    looked = (
        ", ".join(str(p) for p in candidates) or "nowhere (no pg_config, no /usr/lib/postgresql)"
    )
    raise PostgresMissing(f"no PostgreSQL server found (looked in {looked}): {_INSTALL_HINT}")


def _as_server_user() -> list[str]:
    """The prefix that runs a command as the user the server may run as."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresMissing(
            f"the tests run as root and PostgreSQL refuses to; there is no {SYSTEM_USER!r} "
            f"system user to run it as: {_INSTALL_HINT}"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresMissing("the tests run as root and there is no runuser to drop to postgres")
    return [runuser, "-u", SYSTEM_USER, "--"]


def start_server(directory: Path, bindir: Path | None = None) -> PostgresServer:
    """initdb and start a cluster in `directory` (which must be empty) on a free port."""
    bindir = bindir or server_binaries()
    prefix = _as_server_user()
    if prefix:
        info = pwd.getpwnam(SYSTEM_USER)
        os.chown(directory, info.pw_uid, info.pw_gid)
    data, log = directory / "data", directory / "server.log"

    def run(*argv: str) -> None:
        proc = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, cwd=directory, timeout=120
        )
        if proc.returncode != 0:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise PostgresMissing(
                f"{' '.join(argv[:2])} failed (rc {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr).strip()[-3000:]}\n{tail}"
            )

    run(str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8", "--no-locale")
    port = free_port()
    # Rewritten in place: the files keep their owner (the server's user), who only reads them.
    (data / "pg_hba.conf").write_text(
        f"host all {GUARDED} {HOST}/32 scram-sha-256\nhost all all {HOST}/32 trust\n"
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nlisten_addresses = '{HOST}'\nport = {port}\nunix_socket_directories = ''\n"
            # a throw-away cluster: durability buys nothing here
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
    server = PostgresServer(port, directory)
    try:
        server.execute("postgres", f"CREATE ROLE {GUARDED} LOGIN PASSWORD '{GUARDED_PASSWORD}'")
    except BaseException:
        stop_server(server, bindir)
        raise
    return server


def stop_server(server: PostgresServer, bindir: Path | None = None) -> None:
    bindir = bindir or server_binaries()
    subprocess.run(
        [*_as_server_user(), str(bindir / "pg_ctl"), "-D", str(server.directory / "data"),
         "-m", "fast", "-w", "stop"],
        capture_output=True, cwd=server.directory, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (see the module docstring); a missing server fails."""
    try:
        bindir = server_binaries()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    # Not under pytest's own temporary folder: that one is private to root (mode 0700), and
    # the server's user could not reach its data directory there.
    directory = Path(tempfile.mkdtemp(prefix="lineage-pg-"))
    try:
        try:
            server = start_server(directory, bindir)
        except PostgresMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            yield server
        finally:
            stop_server(server, bindir)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
