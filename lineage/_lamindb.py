"""`ln.import_lamindb(source)`: a lamindb instance's records, read from its database with plain
SQL (lamindb is not imported), written into the graph in batches.

`source` is a lamindb instance's storage root (the folder holding `.lamindb/lamin.db`), that
`.lamindb` folder, the `lamin.db` file, a `sqlite:///...` URL, or a `postgresql://...` URL (read
through psycopg2 or psycopg, if one of them is installed, in one read-only snapshot). Every registry lineage has is read in
an order that puts each record after what it points at (users, spaces, storages, transforms,
runs, labels, projects, references, features, artifacts, collections), then the links (run
inputs, annotations, feature values). The SQL joins the uids of the records a row points at, so
no lamindb id is ever held in memory beyond a batch.

Each batch of rows is one transaction (`graph.transfer`): nodes merged by uid (a User by its
handle, a Storage by its root, a Feature by its name, which are unique here) with the edges to
what they point at. Running the import again changes nothing; an import killed midway is
completed by running it again. What is kept and what is not: docs/architecture.md, "Import,
export, backup"; the `ImportReport` says for this instance what was skipped and why.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

from graph import features as gf
from graph import transfer as gt
from graph.connection import Connection
from lineage._features import _scalar
from lineage._instance import current
from lineage._keys import check_key
from lineage.errors import DataError, InvalidArgument, LineageError, MissingFile, NotSupported

try:  # an optional driver for Postgres instances
    import psycopg2 as _pg_driver  # type: ignore[import-not-found, import-untyped, unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    try:
        import psycopg as _pg_driver  # type: ignore[import-not-found, no-redef, unused-ignore]
    except ImportError:
        _pg_driver = None

# Rows per transaction, here and in dump imports (lineage._transfer). 10,000, not 2,000: a dump
# import of 100k artifacts took 73.4 s in batches of 2,000 and 51.9 s in 10,000 (load ~6).
BATCH_SIZE = 10000
_FETCH = 5000  # rows read from the database at a time

# lamindb's run status codes (lamindb.base.types.RUN_STATUS_TO_CODE, inverted).
RUN_STATUS = {
    -3: "scheduled",
    -2: "restarted",
    -1: "started",
    0: "completed",
    1: "errored",
    2: "aborted",
}
# lamindb's branches that lineage has: 1 main, 0 archive, -1 trash.
BRANCHES = (-1, 0, 1)
DEFAULT_SPACE_ID = 1  # lamindb's space "all", every record's space unless another is set
MANAGED_PREFIX = ".lamindb/"  # lamindb's storage key for the files it manages

# Tables read here; every other table with rows is reported as not imported.
_READ_TABLES = {
    "lamindb_user", "lamindb_space", "lamindb_storage", "lamindb_transform", "lamindb_run",
    "lamindb_ulabel", "lamindb_project", "lamindb_reference", "lamindb_feature",
    "lamindb_artifact", "lamindb_collection", "lamindb_collectionartifact",
    "lamindb_artifact_input_of_runs", "lamindb_collection_input_of_runs",
    "lamindb_artifactulabel", "lamindb_collectionulabel", "lamindb_artifactproject",
    "lamindb_collectionproject", "lamindb_artifactreference", "lamindb_collectionreference",
    "lamindb_artifactjsonvalue", "lamindb_runjsonvalue", "lamindb_jsonvalue", "lamindb_branch",
    "django_migrations",
}  # fmt: skip
# Columns of rows lineage reads whose values it has no field for (reported when set).
_NOT_KEPT = {
    "lamindb_transform": ("reference", "reference_type", "environment_id", "plan_id"),
    "lamindb_run": (
        "description", "entrypoint", "reference", "reference_type", "cli_args",
        "environment_id", "plan_id", "report_id",
    ),
    "lamindb_artifact": ("kind", "schema_id"),
    "lamindb_collection": ("schema_id",),
    "lamindb_ulabel": ("reference", "reference_type"),
    "lamindb_project": ("abbr", "url", "start_date", "end_date", "type_id"),
    "lamindb_reference": ("abbr", "pubmed_id", "text", "date", "type_id"),
    "lamindb_storage": ("type", "region", "instance_uid"),
}  # fmt: skip


@dataclass
class ImportReport:
    """What an import read and wrote: per registry the rows `read`, nodes `created` (the
    others existed and were brought up to date) and rows `skipped`; per edge kind the edges
    written; why rows were skipped; lamindb tables lineage has no place for (with their row
    counts) and columns whose values were not kept."""

    source: str
    records: dict[str, dict[str, int]] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # "<what>: <why>" -> rows
    not_imported: dict[str, int] = field(default_factory=dict)  # table -> rows
    fields_not_kept: dict[str, int] = field(default_factory=dict)  # "Label.column" -> rows
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, label: str, what: str, n: int = 1) -> None:
        counts = self.records.setdefault(label, {"read": 0, "created": 0, "skipped": 0})
        counts[what] += n

    def skip(self, what: str, why: str, n: int = 1) -> None:
        if n:
            key = f"{what}: {why}"
            self.skipped[key] = self.skipped.get(key, 0) + n

    @property
    def created(self) -> int:
        return sum(c["created"] for c in self.records.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "edges": self.edges,
            "skipped": self.skipped,
            "not_imported": self.not_imported,
            "fields_not_kept": self.fields_not_kept,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def describe(self) -> str:
        lines = [f"imported from {self.source} in {self.seconds:.1f} s"]
        for label, c in self.records.items():
            lines.append(
                f"  {label:<11} {c['read']:>8} read {c['created']:>8} new {c['skipped']:>6} skipped"
            )
        if self.edges:
            lines.append("  edges: " + ", ".join(f"{k} {v}" for k, v in sorted(self.edges.items())))
        for what, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n}: {what}")
        for table, n in sorted(self.not_imported.items()):
            lines.append(f"  not imported: {table} ({n} rows; lineage has no such registry)")
        for column, n in sorted(self.fields_not_kept.items()):
            lines.append(f"  not kept: {column} ({n} rows have a value)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


# -- the source database ---------------------------------------------------------------------
class _Source:
    """A DB-API connection to a lamindb database and what it holds."""

    def __init__(self, source: str | Path) -> None:
        text = str(source)
        scheme = urlparse(text).scheme if "://" in text else ""
        if scheme in ("postgresql", "postgres"):
            self.kind = "postgres"
            self.display = _redact(text)
            self.db: Any = _connect_postgres(text, self.display)
        else:
            path = Path(unquote(urlparse(text).path) if scheme == "sqlite" else text).expanduser()
            if scheme not in ("", "sqlite"):
                raise InvalidArgument(
                    f"{_redact(text)!r} is neither a lamindb instance folder, a lamin.db file, a "
                    "sqlite:/// URL nor a postgresql:// URL"
                )
            candidates = [path / ".lamindb" / "lamin.db", path / "lamin.db", path]
            found = next((p for p in candidates if p.is_file()), None)
            if found is None:
                raise MissingFile(
                    f"no lamindb database at {path}: expected {candidates[0]} (a storage root), "
                    f"{candidates[1]} or the lamin.db file itself"
                )
            self.kind = "sqlite"
            self.display = str(found)
            # Read-only: the import never writes to the lamindb instance.
            self.db = sqlite3.connect(f"{found.resolve().as_uri()}?mode=ro", uri=True)
        self._cursors = 0  # names of Postgres's server-side cursors
        try:
            self.tables = self._tables()
            if "lamindb_artifact" not in self.tables:
                raise DataError(
                    f"{self.display} is not a lamindb database (it has no lamindb_artifact table)"
                )
        except BaseException:
            self.db.close()
            raise

    def _tables(self) -> set[str]:
        if self.kind == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = (
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        return {row[0] for row in self._fetch(query)}

    def _fetch(self, query: str) -> list[tuple[Any, ...]]:
        cur = self.db.cursor()
        try:
            cur.execute(query)
            return list(cur.fetchall())
        except Exception as exc:  # the driver's own error classes
            raise DataError(f"{self.display}: {exc} (in {query[:200]})") from None
        finally:
            cur.close()

    def columns(self, table: str) -> set[str]:
        cur = self.db.cursor()
        try:
            cur.execute(f"SELECT * FROM {_ident(table)} WHERE 1 = 0")
            return {d[0] for d in cur.description}
        finally:
            cur.close()

    def rows(self, query: str) -> Iterator[dict[str, Any]]:
        """The rows of `query` as dicts, read `_FETCH` at a time."""
        if self.kind == "postgres":
            # A server-side cursor: both drivers' plain cursors hold the whole result in memory
            # once executed; a named one fetches `_FETCH` rows per round trip.
            self._cursors += 1
            cur = self.db.cursor(f"lineage_import_{self._cursors}")
        else:
            cur = self.db.cursor()
        try:
            try:
                cur.execute(query)
                chunk = cur.fetchmany(_FETCH)
            except Exception as exc:  # the driver's own error classes
                raise DataError(f"{self.display}: {exc} (in {query[:200]})") from None
            # After the first fetch: psycopg2 describes a server-side cursor's rows only then.
            names = [d[0] for d in cur.description]
            while chunk:
                for row in chunk:
                    yield dict(zip(names, row))
                chunk = cur.fetchmany(_FETCH)
        finally:
            cur.close()

    def json(self, value: Any) -> Any:
        """A JSON column's value: SQLite keeps lamindb's JSON text, while both Postgres drivers
        decode json and jsonb themselves (a JSON string comes as a `str` that is not JSON text)."""
        return json.loads(value) if self.kind == "sqlite" and isinstance(value, str) else value

    def text_order(self, column: str) -> str:
        """`ORDER BY` text for `column` in byte order, where lamindb's base62 counters sort as
        their values (`0-9`, `A-Z`, `a-z`). SQLite compares bytes; a Postgres database sorts by its
        collation (en-US, the usual one, puts `000a` before `000B`) unless told otherwise."""
        return f'{column} COLLATE "C"' if self.kind == "postgres" else column

    def count(self, query: str) -> int:
        return int(self._fetch(query)[0][0])

    def close(self) -> None:
        self.db.close()


def _ident(name: str) -> str:
    """A table or column name from this module, quoted (they are never user input)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not an identifier: {name!r}")
    return f'"{name}"'


def _connect_postgres(url: str, display: str) -> Any:
    """A read-only connection to the Postgres database at `url`, through psycopg2 or psycopg."""
    if _pg_driver is None:
        raise NotSupported(
            f"reading a Postgres instance needs a Postgres driver: pip install "
            f"'lineagegraph[postgres]' (psycopg), or psycopg2-binary (source {display})"
        )
    try:
        db = _pg_driver.connect(url)
    except Exception as exc:  # the driver's own error classes
        raise DataError(
            f"cannot connect to the lamindb database {display}: {_redact(url, str(exc)).strip()} "
            "(check the host, port, database name, user and password in the URL)"
        ) from None
    # Read-only, as the SQLite file is opened: the import never writes to the lamindb instance.
    # And one snapshot for the whole import (REPEATABLE READ; the cursors keep its transaction
    # open): what lamindb writes meanwhile is not half seen, say a link without its record.
    if hasattr(db, "set_session"):  # psycopg2
        db.set_session(readonly=True, isolation_level="REPEATABLE READ")
    else:  # psycopg 3
        db.read_only = True
        db.isolation_level = _pg_driver.IsolationLevel.REPEATABLE_READ
    return db


def _redact(url: str, text: str | None = None) -> str:
    """`text` (by default the URL itself) with the URL's password (in its user part, or a
    `password=` parameter), as written and percent-decoded, replaced by `***`.

    >>> _redact("postgresql://me:p%40ss@db:5432/lamin", "auth failed for me (p@ss)")
    'auth failed for me (***)'
    >>> _redact("postgresql://me:p%40ss@db:5432/lamin?password=other")
    'postgresql://me:***@db:5432/lamin?password=***'
    """
    parsed = urlparse(url)
    secrets = parse_qs(parsed.query).get("password", [])
    if parsed.password:
        secrets.append(parsed.password)
    out = url if text is None else text
    # Longest first, so a secret that holds another is replaced whole.
    for secret in sorted(
        {s for x in secrets for s in (x, unquote(x), quote(x, safe=""))}, key=len, reverse=True
    ):
        if secret:
            out = out.replace(secret, "***")
    return out


# -- values ----------------------------------------------------------------------------------
def _when(value: Any) -> datetime | None:
    """A lamindb timestamp (SQLite text in UTC, or a Postgres datetime) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise DataError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _compact(props: dict[str, Any]) -> dict[str, Any]:
    """Properties without the unset ones (lineage stores no nulls)."""
    return {k: v for k, v in props.items() if v is not None}


def lineage_dtype(dtype: str | None, type_names: dict[str, str]) -> str | None:
    """lamindb's dtype text in lineage's spelling (a ULabel type by name, not uid), or None when
    lineage has no such dtype.

    >>> lineage_dtype("cat[ULabel[jQLJG4yU]]", {"jQLJG4yU": "CellType"})
    'cat[ULabel[CellType]]'
    >>> lineage_dtype("list[str]", {}), lineage_dtype("cat[bionty.CellType]", {})
    ('list[str]', None)
    """
    if dtype is None:
        return None
    text = dtype
    start = text.find("ULabel[")
    if start >= 0:
        end = text.find("]", start)
        ref = text[start + len("ULabel[") : end]
        text = text[: start + len("ULabel[")] + type_names.get(ref, ref) + text[end:]
    return text if gf.parse_dtype(text) is not None else None


def storage_path(root: str, row: dict[str, Any]) -> str:
    """Where lamindb keeps an artifact's bytes: lamindb's `auto_storage_key_from_artifact`
    (its `_real_key`; else `.lamindb/<uid><suffix>` for a virtual or missing key, the stem uid
    alone when versions overwrite one folder; else the key) under the storage root."""
    key = row.get("_real_key")
    if key is None:
        if row.get("key") is None or row.get("_key_is_virtual"):
            uid = row["uid"][:16] if row.get("_overwrite_versions") else row["uid"]
            key = f"{MANAGED_PREFIX}{uid}{row.get('suffix') or ''}"
        else:
            key = row["key"]
    return f"{root.rstrip('/')}/{key}"


# -- the import ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """One lamindb registry: its table, the lineage label, the columns read (lamindb name ->
    lineage property, or None to compute), the to-one joins (lineage relation -> (table, FK
    column, the joined column)), and the merge key."""

    table: str
    label: str
    columns: dict[str, str]
    joins: dict[str, tuple[str, str, str]]
    key: str = "uid"
    order: str = "id"


_TABLE_LABEL = {"lamindb_user": "User", "lamindb_storage": "Storage", "lamindb_feature": "Feature"}
_COMMON = {"uid": "uid", "created_at": "created_at", "updated_at": "updated_at"}
_CREATOR = {"created_by": ("lamindb_user", "created_by_id", "uid")}
_SPACE = {"space": ("lamindb_space", "space_id", "uid")}
_VERSIONED = {"key": "key", "description": "description", "hash": "hash", "version_tag": "version", "is_latest": "is_latest"}  # fmt: skip

SPECS: tuple[_Spec, ...] = (
    _Spec("lamindb_user", "User", {**_COMMON, "handle": "handle", "name": "name"}, {}, key="handle"),
    _Spec(
        "lamindb_space", "Space",
        {"uid": "uid", "created_at": "created_at", "name": "name", "description": "description"},
        _CREATOR,
    ),
    _Spec(
        "lamindb_storage", "Storage", {**_COMMON, "root": "root", "description": "description"},
        {**_CREATOR, **_SPACE}, key="root",
    ),
    _Spec(
        "lamindb_transform", "Transform",
        {**_COMMON, **_VERSIONED, "kind": "kind", "source_code": "source_code"},
        {**_CREATOR, **_SPACE}, order="uid",
    ),
    _Spec(
        "lamindb_run", "Run",
        {**_COMMON, "name": "name", "started_at": "started_at", "finished_at": "finished_at",
         "params": "params", "_status_code": "status"},
        {**_CREATOR, **_SPACE, "transform": ("lamindb_transform", "transform_id", "uid"),
         "initiated_by": ("lamindb_run", "initiated_by_run_id", "uid")},
    ),
    _Spec(
        "lamindb_ulabel", "ULabel",
        {**_COMMON, "name": "name", "description": "description", "is_type": "is_type"},
        {**_CREATOR, **_SPACE, "type": ("lamindb_ulabel", "type_id", "uid")},
    ),
    _Spec(
        "lamindb_project", "Project", {**_COMMON, "name": "name", "description": "description"},
        {**_CREATOR, **_SPACE},
    ),
    _Spec(
        "lamindb_reference", "Reference",
        {**_COMMON, "name": "name", "description": "description", "url": "url", "doi": "doi"},
        {**_CREATOR, **_SPACE},
    ),
    _Spec(
        "lamindb_feature", "Feature",
        {**_COMMON, "name": "name", "_dtype_str": "dtype", "unit": "unit",
         "description": "description", "is_type": "is_type"},
        {**_CREATOR, **_SPACE, "type": ("lamindb_feature", "type_id", "uid")}, key="name",
    ),
    _Spec(
        "lamindb_artifact", "Artifact",
        {**_COMMON, **_VERSIONED, "suffix": "suffix", "size": "size", "_hash_type": "hash_type",
         "otype": "otype", "n_observations": "n_observations", "n_files": "n_files",
         "_real_key": "", "_key_is_virtual": "", "_overwrite_versions": ""},
        {**_CREATOR, **_SPACE, "run": ("lamindb_run", "run_id", "uid"),
         "storage": ("lamindb_storage", "storage_id", "uid"),
         "_root": ("lamindb_storage", "storage_id", "root")},
        order="uid",
    ),
    _Spec(
        "lamindb_collection", "Collection",
        {**_COMMON, **_VERSIONED, "reference": "reference", "reference_type": "reference_type"},
        {**_CREATOR, **_SPACE, "run": ("lamindb_run", "run_id", "uid"),
         "meta_artifact": ("lamindb_artifact", "meta_artifact_id", "uid")},
        order="uid",
    ),
)  # fmt: skip


class _Importer:
    def __init__(self, source: _Source, conn: Connection, batch_size: int) -> None:
        self.src = source
        self.conn = conn
        self.batch = batch_size
        self.report = ImportReport(source.display)
        # lamindb uid -> the uid of the node it was merged with, where they differ (a User of
        # the same handle, a Storage of the same root, a Feature of the same name stored here).
        self.same: dict[str, dict[str, str]] = {"User": {}, "Storage": {}, "Feature": {}}
        self.features: dict[str, gf.FeatureRef] = {}  # lamindb feature uid -> stored feature
        self.type_names: dict[str, str] = {}
        self._previous: dict[str, str] = {}  # stem -> the last uid of the family written
        # One batch is written while the next is read from SQL; each registry, link table and
        # value table drains it before the next begins, so what a later one reads (`same`,
        # `features`) is complete.
        self.behind = gt.WriteBehind()

    # -- registries --
    def _select(self, spec: _Spec, where: str = "") -> str:
        columns = self.src.columns(spec.table)
        wanted = [c for c in spec.columns if c in columns]
        missing = sorted(set(spec.columns) - columns - {"_real_key", "updated_at", "created_at"})
        if missing:
            raise DataError(
                f"{self.src.display}: {spec.table} lacks {', '.join(missing)}; is this a lamindb "
                "2.x database?"
            )
        parts = [f"t.{_ident(c)}" for c in wanted] + ["t.id AS _id"]
        if "branch_id" in columns:
            parts.append("t.branch_id AS _branch")
        if "space_id" in columns:
            parts.append("t.space_id AS _space_id")
        joins = []
        for i, (name, (table, fk, col)) in enumerate(spec.joins.items()):
            if fk not in columns:
                continue
            joins.append(f"LEFT JOIN {_ident(table)} j{i} ON j{i}.id = t.{_ident(fk)}")
            parts.append(f"j{i}.{_ident(col)} AS {_ident('_' + name.lstrip('_'))}")
        order = self.src.text_order("t.uid") if spec.order == "uid" else "t.id"
        return (
            f"SELECT {', '.join(parts)} FROM {_ident(spec.table)} t {' '.join(joins)} "
            f"{where} ORDER BY {order}"
        )

    def registry(self, spec: _Spec) -> None:
        if spec.table not in self.src.tables:
            return
        if spec.label == "Feature":
            self.type_names = {
                r["uid"]: r["name"]
                for r in self.src.rows("SELECT uid, name FROM lamindb_ulabel WHERE is_type")
            }
        pending: list[dict[str, Any]] = []
        for row in self.src.rows(self._select(spec)):
            self.report.count(spec.label, "read")
            converted = self._convert(spec, row)
            if converted is not None:
                pending.append(converted)
            if len(pending) >= self.batch:
                self._write(spec, pending)
                pending = []
        if pending:
            self._write(spec, pending)
        self.behind.drain()
        for column in _NOT_KEPT.get(spec.table, ()):
            if column in self.src.columns(spec.table):
                n = self.src.count(
                    f"SELECT count(*) FROM {_ident(spec.table)} WHERE {_ident(column)} IS NOT NULL"
                )
                if n:
                    self.report.fields_not_kept[f"{spec.label}.{column}"] = n

    def _convert(self, spec: _Spec, row: dict[str, Any]) -> dict[str, Any] | None:
        label = spec.label
        branch = row.get("_branch", 1)
        if branch not in BRANCHES:
            self.report.count(label, "skipped")
            self.report.skip(
                label, f"on a lamindb branch other than main, archive or trash (id {branch})"
            )
            return None
        if label == "Space" and row["_id"] == DEFAULT_SPACE_ID:
            self.report.count(label, "skipped")
            self.report.skip(
                label, "lamindb's default space 'all' (its records have no space here)"
            )
            return None
        props: dict[str, Any] = {}
        for column, name in spec.columns.items():
            if name and column in row:
                props[name] = row[column]
        for name in ("created_at", "updated_at", "started_at", "finished_at"):
            if name in props:
                props[name] = _when(props[name])
        if "is_latest" in props:
            props["is_latest"] = bool(props["is_latest"])
        if "is_type" in props:
            props["is_type"] = bool(props["is_type"])
        if label == "Run":
            code = props.pop("status", None)
            props["status"] = RUN_STATUS.get(code, str(code)) if code is not None else None
            params = self.src.json(props.get("params"))
            props["params"] = None if params is None else json.dumps(params, sort_keys=True)
        if label == "Artifact":
            root = row.get("_root")
            props["storage_path"] = storage_path(root, row) if root else None
            for column in ("_real_key", "_key_is_virtual", "_overwrite_versions"):
                props.pop(column, None)
        if label == "Feature":
            text = props.get("dtype")
            props["dtype"] = lineage_dtype(text, self.type_names)
            if text is not None and props["dtype"] is None:
                self.report.count(label, "skipped")
                self.report.skip(label, f"dtype {text!r} has no equivalent here (nor its values)")
                return None
        if label in ("Artifact", "Collection") and props.get("key") is not None:
            try:
                check_key(props["key"], f"{label} key")
            except LineageError:
                self.report.notes.append(
                    f"{label} {props['uid']}: key {props['key']!r} is kept, though lineage's "
                    "key rules would refuse it"
                )
        props["branch"] = branch
        props["id"] = row["_id"]
        edges = {}
        for name, (table, _, _) in spec.joins.items():
            value = row.get("_" + name)
            if name.startswith("_") or value is None:
                continue
            if name == "space" and row.get("_space_id") == DEFAULT_SPACE_ID:
                continue
            target = _TABLE_LABEL.get(table)
            edges[name] = self.same[target].get(value, value) if target in self.same else value
        return {"props": _compact(props), "edges": edges}

    def _write(self, spec: _Spec, rows: list[dict[str, Any]]) -> None:
        label = spec.label
        # A version revises the version before it in its family (uid order: the counter).
        if label in ("Artifact", "Collection", "Transform"):
            stem = 12 if label == "Transform" else 16
            for row in rows:
                uid = row["props"]["uid"]
                counter = uid[stem:]
                if counter and counter != "0000":
                    row["edges"]["revises"] = self._previous.get(uid[:stem])
                self._previous[uid[:stem]] = uid
        members = self._members(rows) if label == "Collection" else {}

        def work(tx: Any) -> tuple[int, dict[str, int], dict[Any, str]]:
            merged = gt.merge_nodes(
                tx, label, [r["props"] for r in rows], key=spec.key, update=spec.key == "uid"
            )
            by_key = {r["props"][spec.key]: merged.uids[r["props"][spec.key]] for r in rows}
            written: dict[str, int] = {}
            relations = sorted({name for r in rows for name in r["edges"]})
            for name in relations:
                pairs = [
                    {"src": by_key[r["props"][spec.key]], "dst": r["edges"][name]}
                    for r in rows
                    if r["edges"].get(name) is not None
                ]
                written[name] = gt.merge_edges(tx, label, name, pairs, replace=True)
                written[name + " (missing)"] = len(pairs) - written[name]
            if members:
                pairs = [
                    {"src": c, "dst": a, "props": {"position": p}}
                    for c, items in members.items()
                    for p, a in enumerate(items)
                ]
                written["artifacts"] = gt.merge_edges(tx, label, "artifacts", pairs)
                written["artifacts (missing)"] = len(pairs) - written["artifacts"]
            return merged.created, written, merged.uids

        self.behind.submit(
            lambda: self.conn.write(work), lambda done: self._written(spec, rows, done)
        )

    def _written(
        self,
        spec: _Spec,
        rows: list[dict[str, Any]],
        done: tuple[int, dict[str, int], dict[Any, str]],
    ) -> None:
        """The bookkeeping after a batch of `_write` is stored: counts, merged uids, features."""
        label = spec.label
        created, written, uids = done
        self.report.count(label, "created", created)
        if spec.key != "uid":
            for row in rows:
                lamindb_uid = row["props"]["uid"]
                stored = uids[row["props"][spec.key]]
                if stored != lamindb_uid:
                    self.same[label][lamindb_uid] = stored
                    self.report.notes.append(
                        f"{label} {row['props'][spec.key]!r} exists here as {stored}: lamindb's "
                        f"{lamindb_uid} is mapped to it"
                    )
        if label == "Feature":
            stored_refs = gf.features_by_uid(self.conn) if self.same["Feature"] else {}
            for row in rows:
                p = row["props"]
                if not p.get("dtype") or p.get("is_type"):
                    continue
                stored = uids[p["name"]]
                ref = stored_refs.get(stored)
                if ref is not None and ref.dtype != p["dtype"]:
                    self.report.skip(
                        "Feature values",
                        f"feature {p['name']!r} exists here with dtype {ref.dtype}, not {p['dtype']}",
                    )
                    continue
                self.features[p["uid"]] = gf.FeatureRef(p["name"], stored, p["dtype"])
        for name, n in written.items():
            if name.endswith(" (missing)"):
                self.report.skip(
                    f"{label}.{name[:-10]} edges", "the record at the other end was not imported", n
                )
            else:
                key = f"{label}.{name}"
                self.report.edges[key] = self.report.edges.get(key, 0) + n

    def _members(self, rows: list[dict[str, Any]]) -> dict[str, list[str]]:
        """Each collection's member uids in lamindb's order (`ordered_artifacts`: by link id)."""
        ids = ",".join(str(int(r["props"]["id"])) for r in rows)
        members: dict[str, list[str]] = {}
        query = (
            "SELECT c.uid AS c, a.uid AS a FROM lamindb_collectionartifact l "
            "JOIN lamindb_collection c ON c.id = l.collection_id "
            "JOIN lamindb_artifact a ON a.id = l.artifact_id "
            f"WHERE l.collection_id IN ({ids}) ORDER BY l.collection_id, l.id"
        )
        for row in self.src.rows(query):
            members.setdefault(row["c"], []).append(row["a"])
        return members

    # -- links --
    def links(
        self,
        table: str,
        label: str,
        relation: str,
        query: str,
        convert: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> None:
        if table not in self.src.tables:
            return
        pending: list[dict[str, Any]] = []

        def flush() -> None:
            pairs = list(pending)

            def done(found: int) -> None:
                key = f"{label}.{relation}"
                self.report.edges[key] = self.report.edges.get(key, 0) + found
                self.report.skip(
                    f"{key} edges",
                    "the record at the other end was not imported",
                    len(pairs) - found,
                )

            self.behind.submit(
                lambda: self.conn.write(lambda tx: gt.merge_edges(tx, label, relation, pairs)),
                done,
            )

        for row in self.src.rows(query):
            pair = convert(row) if convert is not None else row
            if pair is None:
                continue
            pending.append(pair)
            if len(pending) >= self.batch:
                flush()
                pending = []
        if pending:
            flush()
        self.behind.drain()

    def values(self, table: str, label: str, fk: str) -> None:
        """Scalar feature values (lamindb's JsonValue rows linked to records)."""
        if table not in self.src.tables:
            return
        host = "lamindb_artifact" if label == "Artifact" else "lamindb_run"
        query = (
            "SELECT h.uid AS src, f.uid AS feature, v.value AS value "
            f"FROM {_ident(table)} l JOIN {_ident(host)} h ON h.id = l.{_ident(fk)} "
            "JOIN lamindb_jsonvalue v ON v.id = l.jsonvalue_id "
            "JOIN lamindb_feature f ON f.id = v.feature_id ORDER BY l.id"
        )
        pending: list[dict[str, Any]] = []

        def flush() -> None:
            pairs = list(pending)

            def done(found: int) -> None:
                key = f"{label}.features"
                self.report.edges[key] = self.report.edges.get(key, 0) + found
                self.report.skip(
                    f"{label} feature values", "the record was not imported", len(pairs) - found
                )

            self.behind.submit(
                lambda: self.conn.write(lambda tx: gt.merge_values(tx, label, pairs)), done
            )

        for row in self.src.rows(query):
            ref = self.features.get(row["feature"])
            if ref is None:
                self.report.skip(f"{label} feature values", "their feature was not imported")
                continue
            dtype = ref.parsed
            if dtype is None or dtype.categorical:
                self.report.skip(
                    f"{label} feature values", f"a JSON value of a {ref.dtype} feature"
                )
                continue
            raw = self.src.json(row["value"])
            items = raw if dtype.many and isinstance(raw, list) else [raw]
            for item in items:
                try:
                    value = _scalar(ref, dtype.base, item)
                except LineageError as exc:
                    self.report.skip(f"{label} feature values", f"not valid for the dtype ({exc})")
                    continue
                pending.append({"src": row["src"], "feature": ref.uid, "value": value})
            if len(pending) >= self.batch:
                flush()
                pending = []
        if pending:
            flush()
        self.behind.drain()

    def label_link(self, row: dict[str, Any]) -> dict[str, Any] | None:
        feature = row.get("feature")
        if feature is None:
            return {"src": row["src"], "dst": row["dst"]}
        ref = self.features.get(feature)
        if ref is None:
            self.report.skip("label links of a feature", "their feature was not imported")
            return None
        return {"src": row["src"], "dst": row["dst"], "props": {"feature": ref.uid}}

    def run(self) -> ImportReport:
        with self.behind:
            return self._run()

    def _run(self) -> ImportReport:
        for spec in SPECS:
            self.registry(spec)
        src = self.src
        for host, table in (("Artifact", "lamindb_artifact"), ("Collection", "lamindb_collection")):
            name = host.lower()
            self.links(
                f"{table}_input_of_runs",
                "Run",
                f"input_{name}s",
                f"SELECT r.uid AS src, x.uid AS dst, x.run_id = l.run_id AS own "
                f"FROM {table}_input_of_runs l JOIN lamindb_run r ON r.id = l.run_id "
                f"JOIN {table} x ON x.id = l.{name}_id ORDER BY l.id",
                self._input,
            )
            for other, relation in (
                ("ulabel", "ulabels"),
                ("project", "projects"),
                ("reference", "references"),
            ):
                link = f"lamindb_{name}{other}"
                if link not in src.tables:
                    continue
                has_feature = "feature_id" in src.columns(link) and other == "ulabel"
                feature = "f.uid AS feature" if has_feature else "NULL AS feature"
                join = "LEFT JOIN lamindb_feature f ON f.id = l.feature_id " if has_feature else ""
                self.links(
                    link,
                    host,
                    relation,
                    f"SELECT x.uid AS src, o.uid AS dst, {feature} FROM {_ident(link)} l "
                    f"JOIN {table} x ON x.id = l.{name}_id "
                    f"JOIN lamindb_{other} o ON o.id = l.{other}_id {join}ORDER BY l.id",
                    self.label_link,
                )
        self.values("lamindb_artifactjsonvalue", "Artifact", "artifact_id")
        self.values("lamindb_runjsonvalue", "Run", "run_id")
        if "lamindb_runulabel" in src.tables:
            self.report.skip(
                "Run ulabel links",
                "runs carry no labels here",
                src.count("SELECT count(*) FROM lamindb_runulabel"),
            )
        for table in sorted(src.tables - _READ_TABLES):
            n = src.count(f"SELECT count(*) FROM {_ident(table)}")
            if n:
                self.report.not_imported[table] = n
        return self.report

    def _input(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["own"]:
            self.report.skip("run inputs", "the run's own output (lineage's rule: never its input)")
            return None
        return {"src": row["src"], "dst": row["dst"]}


def import_lamindb(source: str | Path, *, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Import a lamindb instance's records into the connected graph (see the module docstring).

    Running it again changes nothing (records are merged by uid), and an import that was
    interrupted completes when run again. `report.records["Artifact"]` is then, say,
    `{'read': 15, 'created': 15, 'skipped': 0}`; `print(report.describe())` shows it all.

    >>> ln.import_lamindb("no/such/instance")
    Traceback (most recent call last):
    ...
    lineage.errors.MissingFile: no lamindb database at no/such/instance: expected ...
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size takes a positive int, not {batch_size!r}")
    conn = current().connection
    start = datetime.now(UTC)
    src = _Source(source)
    try:
        with gt.old_objects_frozen():
            report = _Importer(src, conn, batch_size).run()
    finally:
        src.close()
    report.seconds = (datetime.now(UTC) - start).total_seconds()
    return report


__all__ = ["ImportReport", "import_lamindb", "lineage_dtype", "storage_path"]
