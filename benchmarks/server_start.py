"""How long the local Neo4j takes to be ready, and how big its one-time download is.

    python benchmarks/server_start.py            # fresh jar download into a temp dir (~150 MB)
    python benchmarks/server_start.py --reuse-jars   # skip the download, time the rest

Prints one line per figure and, last, one JSON line. lamindb has no counterpart (its default
instance is a SQLite file), so there is no ratio here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graph import Connection, ConnectionSettings, LocalServer, install_schema  # noqa: E402
from graph.server import default_install_dir  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reuse-jars", action="store_true", help="use the user's jar install")
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lineage-bench-") as tmp:
        tmp_path = Path(tmp)
        install_dir = default_install_dir() if args.reuse_jars else tmp_path / "install"
        server = LocalServer(home=tmp_path / "server", install_dir=install_dir)
        figures: dict[str, float] = {}

        if not args.reuse_jars:
            figures["install_s"], _ = _timed(server.install)
            classpath = (install_dir / "classpath.txt").read_text().strip().split(os.pathsep)
            figures["jars_mb"] = sum(Path(p).stat().st_size for p in classpath) / 1e6
            figures["maven_repository_mb"] = _du(install_dir / "repository") / 1e6
            figures["jar_count"] = len(classpath)
        else:
            server.install()

        port = _free_port()
        figures["cold_start_s"], status = _timed(lambda: server.start(port=port))
        conn = Connection.open(ConnectionSettings(uri=status.uri))
        figures["schema_install_fresh_s"], _ = _timed(lambda: install_schema(conn))
        figures["schema_install_again_s"], _ = _timed(lambda: install_schema(conn))
        conn.close()
        figures["stop_s"], _ = _timed(server.stop)

        warm = []
        for _ in range(args.warm_runs):
            seconds, _ = _timed(server.start)
            warm.append(seconds)
            server.stop()
        figures["warm_start_s_median"] = statistics.median(warm)

    for name, value in figures.items():
        print(f"{name:26s} {value:10.2f}")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
