"""The `lineage` command line: `lineage server start|stop|status|install|backup|restore`,
`lineage demo`, `lineage import`, `lineage export`, `lineage serve` (the explorer),
`lineage cache`, `lineage cypher`, `lineage describe`, `lineage view`, `lineage doctor`, the lineage
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
import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import lineage as ln
import loaders
from graph import LocalServer
from graph.server import DEFAULT_PORT
from lineage._lamindb import BATCH_SIZE, import_lamindb
from lineage._openlineage import FILE_BATCH
from lineage._resolve import record_by_uid
from lineage._serve import DEFAULT_HOST as SERVE_HOST
from lineage._serve import DEFAULT_PORT as SERVE_PORT
from lineage._serve import run_forever
from lineage._transfer import EXPORT_BATCH, backup, export_graph, import_graph, restore
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


def _serve(args: argparse.Namespace) -> int:
    ln.connect()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends serving; it is not an error
        run_forever(args.host, args.port, openlineage=args.openlineage)
    return 0


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="the lineage explorer: search, records, lineage graphs, Cypher (read-only)"
    )
    serve.add_argument(
        "--host", default=SERVE_HOST,
        help=f"address to listen on (default {SERVE_HOST}); any other needs the token it "
        "writes to <lineage home>/serve/token",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=SERVE_PORT, help="port (0: a free one)")
    serve.add_argument(
        "--openlineage", action="store_true",
        help="also take OpenLineage events at POST /api/v1/lineage (producers configured for "
        "Marquez work unchanged) and answer Marquez's read API",
    )  # fmt: skip
    serve.set_defaults(func=_serve)


def _bytes(n: int) -> str:
    """A size for people: 1.2 GB (powers of 1000, as `parse_size` reads "GB").

    >>> _bytes(0), _bytes(999), _bytes(1_234_567)
    ('0 B', '999 B', '1.2 MB')
    """
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _cache(args: argparse.Namespace) -> int:
    """`lineage cache du|ls|clear|evict`: the download cache, shared by every process using it."""
    folder = args.cache_dir if args.cache_dir is not None else ln.settings.cache_dir
    limit = ln.settings.cache_max_bytes
    if args.action == "du":
        used = loaders.usage(folder)
        if args.json:
            print(json.dumps({**used.__dict__, "cache_dir": str(folder), "max_bytes": limit}))
            return 0
        print(
            f"{folder}: {used.entries} cached objects, {_bytes(used.bytes)}; in use by running "
            f"processes: {used.held_entries} ({_bytes(used.held_bytes)}); limit: "
            f"{_bytes(limit) if limit is not None else 'none'}"
        )
        return 0
    if args.action == "ls":
        found = loaders.entries(folder)
        if args.json:
            rows = [{**e.__dict__, "path": str(e.path), "last_used": e.last_used} for e in found]
            print(json.dumps(rows))
            return 0
        for e in found:
            state = "downloading" if e.locked else "in use" if e.held else "-"
            when = datetime.fromtimestamp(e.last_used).strftime("%Y-%m-%d %H:%M:%S")
            name = e.name + ("/" if e.is_folder else "")
            print(f"{when}  {_bytes(e.size):>9}  {state:<11}  {name}")
        if not found:
            print("(nothing cached)")
        return 0
    if args.action == "evict":
        if args.max_bytes is not None:
            try:
                limit = loaders.parse_size(args.max_bytes)
            except ValueError as exc:
                raise InvalidArgument(f"--max-bytes: {exc}") from None
        if limit is None:
            raise InvalidArgument(
                "lineage cache evict needs a limit: --max-bytes SIZE, or LINEAGE_CACHE_MAX_BYTES"
            )
        removed = loaders.evict(folder, limit)
    else:  # clear
        removed = loaders.clear(folder)
    left = loaders.usage(folder)
    print(
        f"removed {len(removed)} cached objects ({_bytes(sum(e.size for e in removed))}); "
        f"{left.entries} left ({_bytes(left.bytes)}), {left.held_entries} of them in use"
    )
    return 0


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


# -- moving in and out: `lineage import`, `export`, `server backup|restore` -------------------
def _import(args: argparse.Namespace) -> int:
    if args.source == "lamindb" and args.instance is not None:
        ln.connect()
        report = import_lamindb(args.instance, batch_size=args.batch_size)
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
        return 0
    if args.instance is not None:
        raise InvalidArgument(
            f"lineage import takes a dump folder, or `lamindb <instance-dir-or-db-url>`; "
            f"not {args.source!r} {args.instance!r}"
        )
    ln.connect()
    report = import_graph(args.source, batch_size=args.batch_size)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
    return 0


def _export(args: argparse.Namespace) -> int:
    ln.connect()
    report = export_graph(
        args.directory,
        key=args.key,
        upstream_of=args.upstream_of,
        with_files=args.with_files,
        batch_size=args.batch_size,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
    return 0


def _backup(args: argparse.Namespace) -> int:
    ln.connect()
    if args.action == "backup":
        print(backup(args.file).describe())
    else:
        print(restore(args.file, force=args.force).describe())
    return 0


def _add_transfer_commands(sub: Any, server_sub: Any) -> None:
    """The import, export and backup commands (parsers and handlers of this block)."""
    imp = sub.add_parser(
        "import", help="import a dump folder, or a lamindb instance (`lamindb DIR_OR_URL`)"
    )
    imp.add_argument("source", help="a dump folder (`lineage export`), or `lamindb`")
    imp.add_argument(
        "instance", nargs="?", default=None,
        help="the lamindb instance: its storage root, its lamin.db, or a sqlite:/// or "
        "postgresql:// URL",
    )  # fmt: skip
    imp.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="rows per transaction")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(func=_import)

    exp = sub.add_parser("export", help="write the graph (or a part) to a dump folder")
    exp.add_argument("directory", help="a new or empty folder")
    exp.add_argument("--key", default=None, metavar="PREFIX", help="records whose key starts so")
    exp.add_argument("--upstream-of", default=None, metavar="UID", help="a record's upstream")
    exp.add_argument(
        "--with-files", default=None, metavar="ROOT",
        help="copy the artifacts' files to this storage root (local or s3://) and point there",
    )  # fmt: skip
    exp.add_argument("--batch-size", type=int, default=EXPORT_BATCH, help="records per page read")
    exp.add_argument("--json", action="store_true", help="print the report as JSON")
    exp.set_defaults(func=_export)

    for action, text in (
        ("backup", "write the whole graph to FILE (.tar.gz), no record created meanwhile"),
        ("restore", "load a backup into an empty graph (--force: empty it first)"),
    ):
        cmd = server_sub.add_parser(action, help=text)
        cmd.add_argument("file", help="the backup file")
        if action == "restore":
            cmd.add_argument("--force", action="store_true", help="delete what the graph holds")
        cmd.set_defaults(func=_backup)


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
  lineage import lamindb ~/lamindb-root  (a lamindb instance, records and all)
  lineage export dump/ --key raw/        (lineage import dump/ on the other server)
  lineage server backup graph.tar.gz     (lineage server restore graph.tar.gz)
  lineage serve --port 8765              (the explorer, on http://127.0.0.1:8765/)
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
    _add_transfer_commands(sub, server_sub)
    _add_serve(sub)

    cache = sub.add_parser(
        "cache",
        help="the download cache of cloud files, shared by every process that uses it",
        description="Inspect and trim the cache of cloud files (ln.settings.cache_dir).\n"
        "Several processes, even on several hosts of a shared filesystem, may use one\n"
        "cache: a cached file or folder another process uses is never removed.",
        epilog="examples:\n  lineage cache du\n  lineage cache ls --json\n"
        "  lineage cache evict --max-bytes 50GB   (least recently used first)\n"
        "  lineage cache clear                    (everything not in use)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cache.add_argument(
        "action", choices=("du", "ls", "clear", "evict"),
        help="du: how much is cached; ls: each cached object, least recently used first; "
        "clear: remove all not in use; evict: remove the least recently used until under a limit",
    )  # fmt: skip
    cache.add_argument(
        "--cache-dir", type=Path, default=None, help="the cache (default: ln.settings.cache_dir)"
    )
    cache.add_argument(
        "--max-bytes", default=None, metavar="SIZE",
        help="evict: the limit, e.g. 50GB or 2GiB (default: LINEAGE_CACHE_MAX_BYTES)",
    )  # fmt: skip
    cache.add_argument("--json", action="store_true", help="du, ls: print JSON")
    cache.set_defaults(func=_cache)

    ingest = sub.add_parser(
        "ingest", help="write OpenLineage events from a JSON-lines file (one event per line)"
    )
    ingest.add_argument("path", help="the file; every line is checked before any is written")
    ingest.add_argument(
        "--batch",
        type=int,
        default=FILE_BATCH,
        help=f"events per transaction (default {FILE_BATCH})",
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
