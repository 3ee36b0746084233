"""The ceiling for loading a dump: Neo4j's own offline importer against `ln.import_graph`.

    python benchmarks/transfer.py --sizes 1000000 --keep-dumps DIR   # writes DIR/dump-1000000
    python benchmarks/offline_import.py DIR/dump-1000000

`ln.import_graph` writes through transactions into a running server (any server, local or
shared, idempotently). Neo4j's offline importer (`neo4j-admin database import full`, the jar
`org.neo4j:neo4j-import-tool` on the classpath the local server runs from) writes store files
directly and is the fastest way Neo4j has to load a graph; it needs CSV and an empty, stopped
database. This measures what it would take here, to say whether the dump import's goal
(20,000 records/s) is in reach by that road:

1. convert: the dump's JSON lines to the importer's CSV (one node file per label, headers typed
   from `graph.models`; one relationship file per edge type, end labels and property names),
   Python's csv module, timed;
2. import: `neo4j-admin database import full` into a scratch data directory (not a server's),
   `--threads` = the CPU count, timed with its JVM start.

Not counted, and a real `restore` through this road would add them: stopping the server,
swapping the database directory in, starting it again (9.7 s on this machine, `lineage server
start` of an existing home) and building the schema's 30-odd indexes on the loaded nodes. So
records/s here is an upper bound. Only what the benchmark graphs hold is converted (strings,
integers, booleans, datetimes; no feature values, no bytes): anything else stops it with a
clear message. No peer (lamindb has no export/import of this kind); `benchmarks/transfer.py`
gives the transactional figures for the same dump.

Prints progress on stderr and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from graph.models import fields_of
from graph.server import NEO4J_VERSION, default_install_dir

# neomodel property type -> the importer's column type (strings need none)
COLUMN_TYPES = {
    "StringProperty": "",
    "IntegerProperty": ":long",
    "BooleanProperty": ":boolean",
    "DateTimeNeo4jFormatProperty": ":datetime",
    "DateTimeProperty": ":datetime",
}


def _cell(value: Any) -> str:
    """A dumped JSON value as the importer's CSV text."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is dict and "$datetime" in value:
        return value["$datetime"]
    raise SystemExit(f"offline_import: no CSV form here for {value!r} (only the benchmark's types)")


class _Files:
    """CSV files opened as their first row arrives, each with its header."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.open: dict[Any, tuple[Any, IO[str]]] = {}
        self.args: list[str] = []

    def writer(self, key: Any, name: str, header: list[str], arg: str) -> Any:
        found = self.open.get(key)
        if found is None:
            path = self.folder / name
            fp = open(path, "w", newline="")  # noqa: SIM115 - closed in close()
            out = csv.writer(fp)
            out.writerow(header)
            found = self.open[key] = (out, fp)
            self.args.append(f"{arg}={path}")
        return found[0]

    def close(self) -> None:
        for _, fp in self.open.values():
            fp.close()


def convert(dump: Path, folder: Path) -> tuple[list[str], int, int]:
    """The dump as CSV files in `folder`; the importer's `--nodes`/`--relationships` arguments,
    and the node and edge counts."""
    files = _Files(folder)
    fields: dict[str, list[str]] = {}
    nodes = edges = 0
    with open(dump / "nodes.jsonl", "rb") as fp:
        for raw in fp:
            line = orjson.loads(raw)
            label, props = line["label"], line["props"]
            if label not in fields:
                fields[label] = [f for f in fields_of(label) if f != "uid"]
            names = fields[label]
            types = fields_of(label)
            header = [f"uid:ID({label})"] + [f + COLUMN_TYPES[types[f]] for f in names]
            out = files.writer(label, f"nodes-{label}.csv", header, f"--nodes={label}")
            out.writerow(
                [props["uid"]] + [None if props.get(f) is None else _cell(props[f]) for f in names]
            )
            nodes += 1
    with open(dump / "edges.jsonl", "rb") as fp:
        for raw in fp:
            line = orjson.loads(raw)
            src, dst, props = line["src"], line["dst"], line["props"]
            names = sorted(props)
            key = (line["type"], src["label"], dst["label"], tuple(names))
            header = [f":START_ID({src['label']})", f":END_ID({dst['label']})"] + [
                n + (":long" if type(props[n]) is int else "") for n in names
            ]
            name = f"edges-{len(files.open)}.csv"
            out = files.writer(key, name, header, f"--relationships={line['type']}")
            out.writerow([src["uid"], dst["uid"]] + [_cell(props[n]) for n in names])
            edges += 1
    files.close()
    return files.args, nodes, edges


def offline_import(args: list[str], folder: Path, threads: int) -> tuple[float, str]:
    """Run the importer into a scratch data directory under `folder`; its seconds and log tail."""
    home = folder / "neo4j-home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "neo4j.conf").write_text(f"server.directories.data={home / 'data'}\n")
    classpath = (default_install_dir() / "classpath.txt").read_text().strip()
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(home / "conf")}
    command = [
        "java", "-Xmx1g", "-cp", classpath, "org.neo4j.cli.AdminTool",
        "database", "import", "full", "neo4j",  # the database first: --nodes takes many files
        f"--threads={threads}", "--max-off-heap-memory=2g",
        f"--report-file={folder / 'import.report'}",  # (default: the current directory)
        *args,
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(
            f"offline_import: neo4j-admin failed (rc {proc.returncode}):\n{log[-3000:]}"
        )
    return seconds, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dump", type=Path, help="a dump folder written by `lineage export`")
    parser.add_argument("--tmp-dir", default=None)
    options = parser.parse_args()
    if not (options.dump / "manifest.json").is_file():
        raise SystemExit(f"offline_import: {options.dump} is not a lineage dump")
    if not (default_install_dir() / "classpath.txt").is_file():
        raise SystemExit("offline_import: no Neo4j install yet; run `lineage server start` once")
    threads = os.cpu_count() or 1
    load = round(os.getloadavg()[0], 2)
    folder = Path(tempfile.mkdtemp(prefix="lineage-bench-offline-", dir=options.tmp_dir))
    try:
        t0 = time.perf_counter()
        args, nodes, edges = convert(options.dump, folder)
        convert_s = time.perf_counter() - t0
        print(f"converted {nodes} nodes, {edges} edges in {convert_s:.1f} s", file=sys.stderr)
        import_s, log = offline_import(args, folder, threads)
        print(f"imported in {import_s:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    done = [line.strip() for line in log.splitlines() if "COMPLETED" in line or "DONE" in line]
    total = convert_s + import_s
    print(
        json.dumps(
            {
                "benchmark": "offline_import",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "neo4j": NEO4J_VERSION,
                "loadavg_1m_start": load,
                "nodes": nodes,
                "edges": edges,
                "convert_s": round(convert_s, 2),
                "import_s": round(import_s, 2),
                "importer_stages": done,
                "records_per_s": round(nodes / total),
                "lines_per_s": round((nodes + edges) / total),
                "not_counted": "server stop, directory swap, server start, index builds",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
