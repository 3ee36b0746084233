"""A throw-away lineage instance for the benchmarks: a temporary lineage home, the user's Neo4j
jars, and a local server on a free port (or the database `NEO4J_URI` names, if set).

Re-runnable anywhere: on the scratch server every run starts from an empty database. A database
named by `NEO4J_URI` may already hold an earlier run's records (or anyone's), so there a
benchmark writes under a fresh `run_namespace()`: its uids are drawn from a seed that includes
the namespace, its keys start with it and its files' content carries it, so nothing it writes
can collide with (or be deduplicated against, or be counted with) what the database holds.
`database_note()` is the line each benchmark puts in its JSON to say which of the two it did.

Only the standard library is imported at module level, so a benchmark's lamindb worker (which
runs in the lamindb venv, without `graph` or `lineage`) can import the benchmark file.
"""

from __future__ import annotations

import os
import secrets
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

_VARS = ("LINEAGE_HOME", "LINEAGE_NEO4J_INSTALL", "LINEAGE_NEO4J_PORT")


def run_namespace() -> str:
    """ "" on the scratch server; "run-<8 hex>/" when `NEO4J_URI` names a shared database."""
    return f"run-{secrets.token_hex(4)}/" if os.environ.get("NEO4J_URI") else ""


def database_note(namespace: str) -> str:
    if not namespace:
        return "scratch: a local Neo4j server of its own, empty at the start"
    return f"NEO4J_URI (shared): records written under namespace {namespace!r}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_lineage(tmp: Path, install_dir: Path, say: Callable[[str], None]) -> Iterator[bool]:
    """Point lineage at `tmp/lineage-home` for the block; yields whether the server is local.

    On exit: disconnect, stop the temporary home's server (a no-op if it never started) and
    restore the environment.
    """
    import lineage as ln
    from graph.server import LocalServer

    saved = {k: os.environ.get(k) for k in _VARS}
    os.environ["LINEAGE_HOME"] = str(tmp / "lineage-home")
    os.environ["LINEAGE_NEO4J_INSTALL"] = str(install_dir)
    local = not os.environ.get("NEO4J_URI")
    if local:
        os.environ["LINEAGE_NEO4J_PORT"] = str(free_port())
    else:
        say("NEO4J_URI is set: the benchmark writes into that database")
    try:
        yield local
    finally:
        try:
            ln.disconnect()
        finally:
            if local:
                LocalServer().stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
