"""The `lineage` command line: `lineage server start|stop|status|install`, `lineage demo`,
`lineage cypher`, `lineage describe`, `lineage view`, `lineage doctor`, the lineage
questions `lineage diff`, `lineage impact`, `lineage stale` and `lineage samples` (`--json` for
scripts), and `lineage ingest` (OpenLineage events from a file).

The data commands connect with `ln.connect()`: the `NEO4J_URI` / `NEO4J_USER` / `NEO4J_PASSWORD` /
`NEO4J_DATABASE` environment variables, else the local server.

`main` takes the arguments and returns the exit status:

>>> main(["cypher", "RETURN $n AS n", "--param", "n=42"])
 n
42
0
>>> main(["describe", collection.uid[:12]])     # a uid, or a prefix of one
Collection: scrna
├── General
...
└── Artifacts (2)
    ├── 0: 'scrna/sample1.h5ad' (...)
    └── 1: 'scrna/sample2.h5ad' (...)
0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import lineage as ln
from graph import LocalServer
from graph.server import DEFAULT_PORT
from lineage._resolve import record_by_uid
from lineage.demo import run_demo
from lineage.errors import InvalidArgument, LineageError


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
    run_demo()
    return 0


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """`["name=value", ...]` to query parameters; a value is JSON when it parses, else a string.

    >>> parse_params(["limit=5", "key=demo/scrna", 'tags=["a"]'])
    {'limit': 5, 'key': 'demo/scrna', 'tags': ['a']}
    """
    params: dict[str, Any] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidArgument(f"--param takes name=value, not {item!r}")
        try:
            params[name] = json.loads(raw)
        except ValueError:  # not JSON: `2026-01-01`, `demo/scrna`, a uid
            params[name] = raw
    return params


def _cypher(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    ln.connect()
    frame = ln.cypher(args.query, **params)
    print("(no rows)" if frame.empty else frame.to_string(index=False))
    return 0


def _record(uid: str) -> Any:
    ln.connect()
    return record_by_uid(uid)


def _describe(args: argparse.Namespace) -> int:
    _record(args.uid).describe()
    return 0


def _view(args: argparse.Namespace) -> int:
    record = _record(args.uid)
    view = getattr(record, "view_lineage", None)
    if view is None:
        raise InvalidArgument(f"{type(record).__name__} records have no lineage view")
    path = view(path=args.output, depth=args.depth)
    print(path)
    return 0


def _answer(result: Any, as_json: bool) -> int:
    """Print a question's result: readable, or its `to_dict()` as one JSON document."""
    print(json.dumps(result.to_dict(), indent=2) if as_json else result)
    return 0


def _diff(args: argparse.Namespace) -> int:
    new = _record(args.new if args.new is not None else args.old)
    if args.new is None:  # one uid: against the version (or run) before it
        return _answer(new.diff(content=not args.no_content), args.json)
    old = record_by_uid(args.old)
    return _answer(ln.lineage.diff(old, new, content=not args.no_content), args.json)


def _impact(args: argparse.Namespace) -> int:
    ln.connect()
    records = [record_by_uid(uid) for uid in args.uids]
    return _answer(ln.lineage.impact(records, depth=args.depth), args.json)


def _stale(args: argparse.Namespace) -> int:
    ln.connect()
    return _answer(ln.lineage.stale(key=args.key), args.json)


def _samples(args: argparse.Namespace) -> int:
    return _answer(ln.lineage.samples(_record(args.uid)), args.json)


def _ingest(args: argparse.Namespace) -> int:
    ln.connect()
    count = ln.lineage.ingest_file(args.path, batch_size=args.batch)
    print(f"{count} events ingested from {args.path}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    ln.connect()
    report = ln.doctor(fix=args.fix, grace=args.grace)
    print(report.describe())
    return 0 if report.ok else 3  # 3: problems left (as `server status` says "not running")


_EXAMPLES = """examples:
  lineage cypher 'RETURN $n AS n' --param n=42
  lineage describe GZe020FxtT9l          (a uid or a uid prefix)
  lineage view GZe020FxtT9l -o scrna.html --depth 3
  lineage doctor --fix                   (remove copies a killed save left behind)
  lineage diff GZe020FxtT9l              (a version against the one before it)
  lineage diff OLD_UID NEW_UID --json
  lineage impact UID [UID ...] --depth 2 (everything built on them, and who to tell)
  lineage stale --key results/           (built from inputs that have a newer version)
  lineage samples RUN_UID --json         (the rows of each file the run trained on)
  lineage ingest events.jsonl            (OpenLineage events: dbt, Airflow, Spark, ...)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lineage",
        description=__doc__.split("\n\n")[0],
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

    cypher = sub.add_parser("cypher", help="run a Cypher query and print its rows as a table")
    cypher.add_argument("query", help="the query; values as $name parameters")
    cypher.add_argument(
        "--param", "-p", action="append", metavar="NAME=VALUE",
        help="a query parameter (repeatable); VALUE is JSON if it parses, else a string",
    )  # fmt: skip
    cypher.set_defaults(func=_cypher)

    describe = sub.add_parser("describe", help="print a record's fields, provenance and members")
    describe.add_argument("uid", help="an artifact, collection, run or transform uid (or prefix)")
    describe.set_defaults(func=_describe)

    view = sub.add_parser("view", help="write a record's lineage graph as an HTML file")
    view.add_argument("uid", help="an artifact, collection, run or transform uid (or prefix)")
    view.add_argument("-o", "--output", default=None, help="the HTML file to write")
    view.add_argument(
        "--depth", type=int, default=None, help="how many runs back and forward (default: all)"
    )
    view.set_defaults(func=_view)

    doctor = sub.add_parser(
        "doctor",
        help="find orphan files under each storage root's .lineage/ and graph inconsistencies",
    )
    doctor.add_argument(
        "--fix", action="store_true",
        help="remove orphan files (only under <root>/.lineage/, only older than --grace)",
    )  # fmt: skip
    doctor.add_argument(
        "--grace", type=float, default=600.0, metavar="SECONDS",
        help="leave unreferenced files younger than this alone: a save in progress copies its "
        "file before its record commits (default 600)",
    )  # fmt: skip
    doctor.set_defaults(func=_doctor)

    diff = sub.add_parser(
        "diff", help="what changed between two records of one registry (or since the previous)"
    )
    diff.add_argument("old", help="a uid (or prefix); alone: compared with the version before it")
    diff.add_argument("new", nargs="?", default=None, help="the uid (or prefix) to compare with")
    diff.add_argument(
        "--no-content", action="store_true",
        help="artifacts: compare the records only, not what their files hold",
    )  # fmt: skip
    diff.add_argument("--json", action="store_true", help="print the result as JSON")
    diff.set_defaults(func=_diff)

    impact = sub.add_parser(
        "impact", help="everything built on records, by run depth, with transforms and creators"
    )
    impact.add_argument("uids", nargs="+", help="artifact, collection, run or transform uids")
    impact.add_argument(
        "--depth", type=int, default=None, help="how many runs forward to go (default: all)"
    )
    impact.add_argument("--json", action="store_true", help="print the result as JSON")
    impact.set_defaults(func=_impact)

    stale = sub.add_parser(
        "stale", help="records built from an input that is no longer its family's latest version"
    )
    stale.add_argument("--key", default=None, metavar="PREFIX", help="only keys starting with it")
    stale.add_argument("--json", action="store_true", help="print the result as JSON")
    stale.set_defaults(func=_stale)

    samples = sub.add_parser(
        "samples", help="the rows (indices and obs names) of each artifact version a run saw"
    )
    samples.add_argument("uid", help="a run uid, or the uid of an artifact or collection it made")
    samples.add_argument("--json", action="store_true", help="print the result as JSON")
    samples.set_defaults(func=_samples)

    ingest = sub.add_parser(
        "ingest", help="write OpenLineage events from a JSON-lines file (one event per line)"
    )
    ingest.add_argument("path", help="the file; every line is checked before any is written")
    ingest.add_argument(
        "--batch", type=int, default=500, help="events per transaction (default 500)"
    )
    ingest.set_defaults(func=_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LineageError as exc:  # the root of every error of ours (lineage.errors)
        print(f"lineage: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `lineage ... | head`: the reader left, which is not an error
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
