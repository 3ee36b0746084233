"""Moving a graph between servers: `ln.export_graph(dir)` / `ln.import_graph(dir)` (`lineage
export DIR`, `lineage import DIR`), and backups of a server (`lineage server backup FILE`,
`restore FILE`), which are an export packed into one file.

The dump (format "lineagegraph-dump", version 1) is a folder:

    manifest.json   format, version, when, from where, what (scope), counts per label and per
                    edge type, id counters, and each data file's sha256, size and line count
    nodes.jsonl     one node per line: {"label": ..., "props": {...}}
    edges.jsonl     one edge per line: {"type": ..., "src": END, "dst": END, "props": {...}}

An END is `{"label", "uid"}` for a record and `{"label": "FeatureValue", "feature", "value"}`
for a feature value. Property values are JSON, except datetimes (`{"$datetime": ISO 8601}`),
dates (`{"$date": ...}`), bytes (`{"$bytes": base64}`) and the floats NaN and ±infinity
(`{"$float": "nan"}`, `"inf"`, `"-inf"`), which JSON has no type for.

Both directions stream: the export writes each batch of rows the driver hands over
(`graph.transfer.GraphReader`), the import reads the files line by line and writes batches
(`graph.transfer.merge_nodes` / `merge_edges`), so memory does not grow with the graph. The
import checks every checksum before it writes anything, merges by uid (running it twice, or
again after it was killed, gives the same graph), keeps each node's id where it is free, and
raises the id counters to the dumped ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import shutil
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import orjson

import loaders
from graph import ids as gids
from graph import models as gm
from graph import transfer as gt
from graph.connection import plain
from graph.features import VALUE_LABEL
from graph.schema import SCHEMA_VERSION
from lineage._instance import current
from lineage._lamindb import BATCH_SIZE, ImportReport
from lineage._settings import settings
from lineage._user import current_user
from lineage.errors import DataError, DoesNotExist, InvalidArgument, MissingFile

FORMAT = "lineagegraph-dump"
FORMAT_VERSION = 1
NODES, EDGES, MANIFEST = "nodes.jsonl", "edges.jsonl", "manifest.json"
MANAGED_DIR = ".lineage"
# Records per page an export reads (each with its edges): the client holds one page, so this
# bounds its memory. Exporting 100k artifacts (load ~2): pages of 10,000 took 9.5 s and 91 MB of
# peak RSS growth, pages of 2,000 7.6 s and 43 MB.
EXPORT_BATCH = 2000
_LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
# Labels merged by a unique field other than uid: another graph may hold the same user, storage
# root or feature under another uid, and the dumped records then point at that node.
MERGE_KEYS = {"User": "handle", "Storage": "root", "Feature": "name"}


# -- values ------------------------------------------------------------------------------------
def encode(value: Any) -> Any:
    """A property value as JSON (datetimes, dates and bytes tagged).

    >>> encode([date(2024, 1, 2), b"\\x00", float("nan")])
    [{'$date': '2024-01-02'}, {'$bytes': 'AA=='}, {'$float': 'nan'}]
    """
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": str(value)}  # JSON has no NaN; orjson would write null
    return value


def decode(value: Any) -> Any:
    """The inverse of `encode`.

    >>> decode({"$datetime": "2024-01-02T03:04:05+00:00"})
    datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, dict):
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return date.fromisoformat(value["$date"])
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        if "$float" in value:
            return float(value["$float"])
        raise DataError(f"not a dumped value: {value!r}")
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


_AS_THEY_ARE = frozenset({str, int, bool, type(None)})  # JSON as they are: `encode` skipped


def _props(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v if type(v) in _AS_THEY_ARE else encode(v) for k, v in props.items()}


class _Writer:
    """A JSON-lines file written with its sha256, size and line count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fp: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha = hashlib.sha256()
        self.lines = 0
        self.size = 0

    def write_lines(self, lines: list[bytes]) -> None:
        """Lines already JSON, each ending in a newline: one write and one hash update for all
        of them (per line, the bookkeeping cost more than the JSON)."""
        chunk = b"".join(lines)
        self.fp.write(chunk)
        self.sha.update(chunk)
        self.lines += len(lines)
        self.size += len(chunk)

    def close(self) -> dict[str, Any]:
        self.fp.flush()
        os.fsync(self.fp.fileno())
        self.fp.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.size, "lines": self.lines}


class _Lines:
    """Dump lines of one record and its edges. An edge line is built from byte pieces,
    `{"dst":END,"props":{...},"src":END,"type":...}`: the bytes `orjson.dumps(edge,
    option=OPT_SORT_KEYS)` gives (keys sorted, no spaces), each name and uid JSON-quoted by
    orjson. A 100k-artifact export writes 608k edges: a dict per edge, dumped and counted one
    line at a time, was 8 of its 13 s (cProfile); from pieces, written a batch at a time, the
    whole export took 7.3 s. `moved_to`: the END every `STORED_IN` edge points at instead
    (`--with-files`)."""

    def __init__(self, moved_to: dict[str, Any] | None = None) -> None:
        self._quoted: dict[str, bytes] = {}
        self.moved_to = None if moved_to is None else self.end("Storage", moved_to["uid"])

    def quote(self, text: str) -> bytes:
        """`text` as a JSON string, cached (edge types and labels repeat on every line)."""
        found = self._quoted.get(text)
        if found is None:
            found = self._quoted[text] = orjson.dumps(text)
        return found

    def end(self, label: str, uid: str) -> bytes:
        return b'{"label":' + self.quote(label) + b',"uid":' + orjson.dumps(uid) + b"}"

    def node(self, label: str, props: dict[str, Any]) -> bytes:
        # orjson: 0.3 us a line where json.dumps took 6-12 (720k lines in a 100k-artifact dump)
        return orjson.dumps({"label": label, "props": _props(props)}, option=_LINE)

    def edge(self, kind: str, src: bytes, dst: bytes, props: dict[str, Any] | None) -> bytes:
        """An edge line from its ENDs (`end`'s bytes) and its properties (plain values)."""
        body = orjson.dumps(_props(props), option=orjson.OPT_SORT_KEYS) if props else b"{}"
        return (
            b'{"dst":' + dst + b',"props":' + body + b',"src":' + src
            + b',"type":' + self.quote(kind) + b"}\n"
        )  # fmt: skip

    def edges(self, label: str, uid: str, out: list[list[Any]]) -> Iterator[tuple[str, bytes]]:
        """`(type, line)` of each edge of `GraphReader.records`' form leaving record `uid`."""
        src = self.end(label, uid)
        for kind, props, dst_label, *end in out:
            if dst_label == VALUE_LABEL:
                feature, value = end
                value = encode(plain(value))
                dst = orjson.dumps(
                    {"feature": feature, "label": VALUE_LABEL, "value": value},
                    option=orjson.OPT_SORT_KEYS,
                )
            elif self.moved_to is not None and kind == "STORED_IN":
                dst = self.moved_to
            else:
                dst = self.end(dst_label, end[0])
            # most edges have no properties; those that have are driver values
            yield kind, self.edge(kind, src, dst, plain(props) if props else None)


@dataclass
class ExportReport:
    """What an export wrote: nodes per label, edges per type, files copied, the folder."""

    directory: str
    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)
    files_copied: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [f"exported to {self.directory} in {self.seconds:.1f} s"]
        lines += [f"  {label:<13} {n:>9}" for label, n in sorted(self.nodes.items())]
        lines += [f"  -[{edge}]-> {n:>9}" for edge, n in sorted(self.edges.items())]
        if self.files_copied:
            lines.append(f"  files copied: {self.files_copied}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "nodes": self.nodes,
            "edges": self.edges,
            "files_copied": self.files_copied,
            "seconds": round(self.seconds, 3),
        }


# -- export ------------------------------------------------------------------------------------
def _scope(reader: gt.GraphReader, key: str | None, upstream_of: str | None):
    if key is None and upstream_of is None:
        return None
    if key is not None and upstream_of is not None:
        raise InvalidArgument("export takes --key or --upstream-of, not both")
    if key is not None:
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"--key takes a non-empty key prefix, not {key!r}")
        return reader.keyed(key)
    scope = reader.upstream_of(str(upstream_of))
    if scope is None:
        raise DoesNotExist(f"no artifact, collection, run or transform with uid {upstream_of!r}")
    return scope


def _copy_file(row: dict[str, Any], root: str) -> str:
    """Copy an artifact's bytes to `<root>/.lineage/<uid><suffix>` (a folder with its files);
    returns the new storage path."""
    source = row["storage_path"]
    dest = loaders.join(root, MANAGED_DIR, f"{row['uid']}{row.get('suffix') or ''}")
    options = settings.storage_options
    folder = row.get("n_files") is not None
    local = Path(source)
    if loaders.is_remote(source) and folder:
        local = loaders.sync_dir(source, settings.cache_dir, options)
    elif loaders.is_remote(source):
        (local,) = loaders.sync([source], settings.cache_dir, options)
    if not Path(local).exists():
        raise MissingFile(f"artifact {row['uid']}: its file {source} is not there to copy")
    if folder:
        loaders.put_dir(local, dest, options)
    else:
        loaders.put_file(local, dest, options)
    return dest


def export_graph(
    directory: str | Path,
    *,
    key: str | None = None,
    upstream_of: str | None = None,
    with_files: str | None = None,
    batch_size: int = EXPORT_BATCH,
    pause_creates: bool = False,
) -> ExportReport:
    """Write the graph (or a part: records whose key starts with `key`, or everything
    `upstream_of` a record needs, with what they point at) to `directory` as a dump (see the
    module docstring). `with_files`: copy every exported artifact's bytes to that storage root
    (`<root>/.lineage/<uid><suffix>`, local or `s3://`) and point the dump's artifacts there.
    `pause_creates`: no record is created while the graph is read (backups).

    >>> report = ln.export_graph("dump", key="raw/")
    >>> report.nodes["Artifact"], sorted(p.name for p in Path("dump").iterdir())
    (1, ['edges.jsonl', 'manifest.json', 'nodes.jsonl'])
    """
    started = datetime.now(UTC)
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgument(f"{target} exists and is not an empty folder: export to a new one")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size takes a positive int, not {batch_size!r}")
    instance = current()
    conn = instance.connection
    target.mkdir(parents=True, exist_ok=True)
    report = ExportReport(str(target))
    new_storage: dict[str, Any] | None = None
    extra_user: dict[str, Any] | None = None
    if with_files is not None:
        root = str(with_files).rstrip("/")
        if not loaders.is_remote(root):
            root = str(Path(root).expanduser().resolve())
        stored_uid = gt.storage_uid(conn, root)
        user = current_user(instance)
        new_storage = {
            "uid": stored_uid or gids.base62(gm.uid_length("Storage")),
            "root": root,
            "branch": 1,
            "created_at": started,
            "updated_at": started,
        }
        extra_user = {k: v for k, v in user._values.items() if v is not None}
    nodes, edges = _Writer(target / NODES), _Writer(target / EDGES)

    lines = _Lines(new_storage)

    def put_nodes(label: str, node_lines: list[bytes]) -> None:
        nodes.write_lines(node_lines)
        report.nodes[label] = report.nodes.get(label, 0) + len(node_lines)

    def put_edges(typed_lines: list[tuple[str, bytes]]) -> None:
        edges.write_lines([line for _, line in typed_lines])
        for kind, n in Counter(kind for kind, _ in typed_lines).items():
            report.edges[kind] = report.edges.get(kind, 0) + n

    try:
        with gt.old_objects_frozen(), gt.GraphReader(conn, pause_creates=pause_creates) as reader:
            scope = _scope(reader, key, upstream_of)
            counters = reader.counters()
            users: set[str] = set()
            storage_dumped = False  # the --with-files root's Storage node was in the graph
            for label in gm.RECORD_LABELS:
                for batch in reader.records(label, scope, batch_size):
                    node_lines: list[bytes] = []
                    edge_lines: list[tuple[str, bytes]] = []
                    for props, out in batch:
                        if label == "Artifact" and new_storage and props.get("storage_path"):
                            props["storage_path"] = _copy_file(props, new_storage["root"])
                            report.files_copied += 1
                        if label == "User":
                            users.add(props["uid"])
                        if label == "Storage" and new_storage:
                            storage_dumped |= props["uid"] == new_storage["uid"]
                        node_lines.append(lines.node(label, props))
                        edge_lines.extend(lines.edges(label, props["uid"], out))
                    put_nodes(label, node_lines)
                    put_edges(edge_lines)
            for values in reader.values(scope, batch_size):
                put_nodes(VALUE_LABEL, [lines.node(VALUE_LABEL, v["props"]) for v in values])
            if new_storage is not None and extra_user is not None:
                if extra_user["uid"] not in users:
                    put_nodes("User", [lines.node("User", extra_user)])
                if not storage_dumped:
                    put_nodes("Storage", [lines.node("Storage", new_storage)])
                    src = lines.end("Storage", new_storage["uid"])
                    dst = lines.end("User", extra_user["uid"])
                    put_edges([("CREATED_BY", lines.edge("CREATED_BY", src, dst, None))])
    finally:
        files = {NODES: nodes.close(), EDGES: edges.close()}
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created_at": started.isoformat(),
        "source": conn.settings.display_uri,
        "scope": {"key": key, "upstream_of": upstream_of, "with_files": with_files},
        "counts": {"nodes": report.nodes, "edges": report.edges},
        "counters": counters if scope is None else {},
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


# -- import ------------------------------------------------------------------------------------
def read_manifest(directory: Path) -> dict[str, Any]:
    """The dump's manifest, its format checked and every data file's checksum verified."""
    path = directory / MANIFEST
    if not path.is_file():
        raise MissingFile(f"{directory} is not a lineage dump: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path} is not JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: format {manifest.get('format')!r}, not {FORMAT!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: dump format version {manifest.get('version')!r}; this lineage reads "
            f"version {FORMAT_VERSION}"
        )
    for name in (NODES, EDGES):
        want = manifest.get("files", {}).get(name, {})
        sha = hashlib.sha256()
        file = directory / name
        if not file.is_file():
            raise MissingFile(f"{directory}: {name} is missing")
        with open(file, "rb") as fp:
            while chunk := fp.read(1 << 20):
                sha.update(chunk)
        if sha.hexdigest() != want.get("sha256"):
            raise DataError(
                f"{file}: sha256 {sha.hexdigest()} is not the manifest's {want.get('sha256')}: "
                "the dump is damaged or incomplete; nothing was imported"
            )
    return manifest


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fp:
        for number, line in enumerate(fp, 1):
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not JSON ({exc})") from None


def import_graph(directory: str | Path, *, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Import a dump written by `export_graph` into the connected graph: nodes merged by uid
    (ids kept where free), edges merged, id counters raised to the dumped ones. Running it
    again changes nothing; an import that was interrupted completes when run again.

    >>> _ = ln.export_graph("moved", key="raw/")
    >>> ln.import_graph("moved").records["Artifact"]
    {'read': 1, 'created': 0, 'skipped': 0}
    """
    started = datetime.now(UTC)
    source = Path(directory)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size takes a positive int, not {batch_size!r}")
    manifest = read_manifest(source)
    conn = current().connection
    report = ImportReport(str(source))
    same: dict[str, dict[str, str]] = {label: {} for label in MERGE_KEYS}

    def flush_nodes(label: str, rows: list[dict[str, Any]]) -> None:
        if label == VALUE_LABEL:
            behind.submit(
                lambda: conn.write(lambda tx: gt.merge_value_nodes(tx, rows)),
                lambda _: report.count(label, "read", len(rows)),
            )
            return
        key = MERGE_KEYS.get(label, "uid")
        behind.submit(
            lambda: conn.write(
                lambda tx: gt.merge_nodes(tx, label, rows, key=key, update=key == "uid")
            ),
            lambda merged: merged_nodes(label, key, rows, merged),
        )

    def merged_nodes(label: str, key: str, rows: list[dict[str, Any]], merged: gt.Merged) -> None:
        report.count(label, "read", len(rows))
        report.count(label, "created", merged.created)
        if key != "uid":
            for row in rows:
                stored = merged.uids[row[key]]
                if stored != row["uid"]:
                    same[label][row["uid"]] = stored
                    report.notes.append(
                        f"{label} {row[key]!r} exists here as {stored}: the dump's {row['uid']} "
                        "is mapped to it"
                    )

    def end_uid(end: dict[str, Any]) -> str:
        return same.get(end["label"], {}).get(end["uid"], end["uid"])

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    held = 0  # edge rows read and not yet handed to a write

    def flush_edges(group: tuple[str, str, str], rows: list[dict[str, Any]]) -> None:
        edge, src, dst = group
        relation, kind = gt.edge_statement(edge, src, dst)

        def work() -> int:
            if kind == "value":
                return conn.write(lambda tx: gt.merge_values(tx, src, rows))
            return conn.write(lambda tx: gt.merge_edges(tx, src, relation, rows))

        def done(found: int) -> None:
            report.edges[edge] = report.edges.get(edge, 0) + found
            report.skip(f"{edge} edges", "an end is not in the graph", len(rows) - found)

        behind.submit(work, done)

    pending: dict[str, list[dict[str, Any]]] = {}
    with gt.old_objects_frozen(), gt.WriteBehind() as behind:
        for line in _lines(source / NODES):
            label = str(line.get("label"))
            if label != VALUE_LABEL:
                gt.check_label(label)
            props = {k: decode(v) for k, v in line["props"].items()}
            rows = pending.setdefault(label, [])
            rows.append(props)
            if len(rows) >= batch_size:
                flush_nodes(label, rows)
                pending[label] = []
        for label, rows in pending.items():
            if rows:
                flush_nodes(label, rows)
        behind.drain()  # every node, and `same`, before the first edge

        for line in _lines(source / EDGES):
            src, dst = line["src"], line["dst"]
            group = (line["type"], src["label"], dst["label"])
            if dst["label"] == VALUE_LABEL:
                row = {
                    "src": end_uid(src),
                    "feature": dst["feature"],
                    "value": decode(dst["value"]),
                }
            else:
                props = {k: decode(v) for k, v in line.get("props", {}).items()}
                row = {"src": end_uid(src), "dst": end_uid(dst), "props": props}
            rows = groups.setdefault(group, [])
            rows.append(row)
            held += 1
            if len(rows) >= batch_size:
                flush_edges(group, rows)
                groups[group] = []
                held -= len(rows)
            elif held >= 2 * batch_size:
                # Many kinds of edge each part-way to a batch: the fullest goes now, so no more
                # than two batches of rows are held, however many kinds of edge a graph has.
                fullest = max(groups, key=lambda g: len(groups[g]))
                held -= len(groups[fullest])
                flush_edges(fullest, groups[fullest])
                groups[fullest] = []
        for group, rows in groups.items():
            if rows:
                flush_edges(group, rows)
    counters = {k: v for k, v in manifest.get("counters", {}).items() if k in gm.RECORD_LABELS}
    conn.write(lambda tx: gt.raise_counters(tx, counters))
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


# -- backup ------------------------------------------------------------------------------------
def backup(file: str | Path) -> ExportReport:
    """Write the whole graph to `file` (a `.tar.gz` of a dump), read while no record can be
    created (`pause_creates`), so the backup is one consistent state of the records.

    >>> backup("graph.tar.gz").nodes["Artifact"] >= 1
    True
    """
    target = Path(file)
    if target.exists():
        raise InvalidArgument(f"{target} exists: back up to a new file")
    with tempfile.TemporaryDirectory(prefix="lineage-backup-") as tmp:
        dump = Path(tmp) / "dump"
        report = export_graph(dump, pause_creates=True)
        partial = target.with_name(f".{target.name}.part")
        with tarfile.open(partial, "w:gz") as tar:
            for name in (MANIFEST, NODES, EDGES):
                tar.add(dump / name, arcname=name)
        os.replace(partial, target)
    report.directory = str(target)
    return report


def restore(file: str | Path, *, force: bool = False) -> ImportReport:
    """Load a backup written by `backup` into the connected graph. A graph that holds any
    record is refused unless `force=True`, which empties it first.

    >>> _ = backup("graph.tar.gz")
    >>> restore("graph.tar.gz")
    Traceback (most recent call last):
    ...
    lineage.errors.InvalidArgument: the graph at ... is not empty: restoring would mix two graphs...
    """
    source = Path(file)
    if not source.is_file():
        raise MissingFile(f"no backup file {source}")
    conn = current().connection
    if not gt.is_empty(conn) and not force:
        raise InvalidArgument(
            f"the graph at {conn.settings.display_uri} is not empty: restoring would mix two "
            "graphs; pass --force (force=True) to delete everything in it first"
        )
    with tempfile.TemporaryDirectory(prefix="lineage-restore-") as tmp:
        try:
            with tarfile.open(source, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.name in (MANIFEST, NODES, EDGES)]
                if len(members) != 3 or not all(m.isfile() for m in members):
                    raise DataError(f"{source} is not a lineage backup (no dump inside)")
                for member in members:
                    with tar.extractfile(member) as fp, open(Path(tmp) / member.name, "wb") as out:  # type: ignore[union-attr]
                        shutil.copyfileobj(fp, out)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{source} is not a readable backup: {exc}") from None
        read_manifest(Path(tmp))  # checksums first: nothing is deleted for a damaged backup
        if force:
            gt.wipe(conn)
        return import_graph(Path(tmp))


__all__ = [
    "ExportReport",
    "backup",
    "decode",
    "encode",
    "export_graph",
    "import_graph",
    "read_manifest",
    "restore",
]
