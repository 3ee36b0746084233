"""The `lineage` command line: `lineage server start|stop|status|install`, `lineage demo`."""

from __future__ import annotations

import argparse
import os
import sys

from graph import GraphError, LocalServer
from graph.server import DEFAULT_PORT


def _server(args: argparse.Namespace) -> int:
    server = LocalServer()
    if args.action == "install":
        print(f"Neo4j jars and launcher ready in {server.install()}")
        return 0
    if args.action == "start":
        status = server.start(port=args.port, auth=args.auth, timeout=args.timeout)
        print(status.describe())
        if status.already_running and args.port and args.port != status.port:
            print(f"note: --port {args.port} ignored; stop the server first to change its port")
        if status.auth:
            print(f"user neo4j, password in {server.password_file} (mode 0600)")
        return 0
    if args.action == "stop":
        print("stopped" if server.stop() else "not running")
        return 0
    status = server.status()
    print(status.describe())
    return 0 if status.running else 3  # like `systemctl status`: 3 means "not running"


def _demo(args: argparse.Namespace) -> int:
    from lineage.demo import run_demo

    run_demo()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lineage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    server = sub.add_parser("server", help="run the local Neo4j server")
    server_sub = server.add_subparsers(dest="action", required=True)
    start = server_sub.add_parser("start", help="start it (idempotent) and print its bolt:// URI")
    start.add_argument("--port", type=int, default=None, help=f"Bolt port (default {DEFAULT_PORT})")
    start.add_argument("--auth", action="store_true", help="require a password (generated, 0600)")
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Bolt")
    server_sub.add_parser("stop", help="stop it cleanly")
    server_sub.add_parser("status", help="say whether it runs (exit 3 if not)")
    server_sub.add_parser("install", help="fetch the Neo4j jars and compile the launcher only")
    server.set_defaults(func=_server)

    demo = sub.add_parser("demo", help="run the end-to-end demo against the configured Neo4j")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GraphError as exc:
        print(f"lineage: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `lineage ... | head`: the reader left, which is not an error
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
