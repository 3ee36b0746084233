"""OpenLineage events in: checking and normalising them, and writing them into the graph.

An event is checked against the parts of the OpenLineage spec the graph uses (and its required
fields) before anything is written; the first problem is an `InvalidEvent` naming its JSON path
(`$.run.runId: must be a UUID, got 'x'`). A checked event becomes a plain dict that
`graph.openlineage.write_events` writes (docs/architecture.md, OpenLineage, says what each part
becomes).

>>> event = {
...     "eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
...     "producer": "https://example.com/etl", "schemaURL": SCHEMA_URL,
...     "run": {"runId": "0195e3c4-0000-7000-8000-000000000001"},
...     "job": {"namespace": "etl", "name": "daily"},
...     "inputs": [{"namespace": "file", "name": "/data/raw.csv"}],
...     "outputs": [{"namespace": "file", "name": "/data/clean.parquet"}],
... }
>>> [written] = ingest([event])
>>> ln.Run.get(written["run"]).status, ln.Transform.get(written["transform"]).key
('completed', 'etl/daily')
>>> ingest([{**event, "run": {"runId": "nope"}}])
Traceback (most recent call last):
...
lineage.errors.InvalidEvent: $[0].run.runId: must be a UUID, got 'nope'
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from graph import openlineage as gol
from lineage._instance import current
from lineage._user import current_user
from lineage.errors import InvalidArgument, InvalidEvent
from loaders import hash_string

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
MAX_EVENT_BYTES = 5 * 1024 * 1024  # one event's JSON; Spark's plan facets stay well below
MAX_DEPTH = 64  # nesting of objects and lists in one event
MAX_BATCH = 1000  # events in one request or one call
# Events per transaction when a file is ingested: at the quiet machine's steady state, 1,000 a
# transaction gave 4,700 events/s against 3,400 for 500 and 1,900 for 250, and 2,000 or 4,000
# no more than 1,000 (`benchmarks/openlineage.py`, docs/architecture.md).
FILE_BATCH = MAX_BATCH
# Dataset namespaces whose names are paths in a store lineage can keep artifacts in: the
# location is `<namespace>/<name>` (s3a/s3n are Spark's spellings of s3).
_STORES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs", "hdfs": "hdfs",
           "abfs": "abfs", "abfss": "abfss", "wasbs": "wasbs", "az": "az"}  # fmt: skip


def _fail(path: str, problem: str) -> InvalidEvent:
    return InvalidEvent(path, problem)


def _typename(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")  # fmt: skip


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"must be an object, got {_typename(value)}")
    return value


def _str(value: Any, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, got {_typename(value)}")
    if not empty and not value:
        raise _fail(path, "must not be empty")
    return value


def _required(obj: dict[str, Any], name: str, path: str) -> Any:
    if name not in obj or obj[name] is None:
        raise _fail(f"{path}.{name}", "is required")
    return obj[name]


def _optional_str(obj: dict[str, Any], name: str, path: str) -> str | None:
    value = obj.get(name)
    return None if value is None else _str(value, f"{path}.{name}", empty=True)


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, f"must be an array, got {_typename(value)}")
    return value


def _depth(value: Any, path: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH (iteratively: a deep event cannot crash this). The
    walk spells out no paths (a fifth of its time): only an event that is too deep is walked
    again, by `_too_deep`, for the path of the first value too deep."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth >= MAX_DEPTH and children:
            _too_deep(value, path)
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def _too_deep(value: Any, path: str) -> NoReturn:
    """Raise for the first value nested deeper than MAX_DEPTH, with its path."""
    stack = [(value, 0, path)]
    while stack:
        item, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise _fail(where, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(item))
    raise AssertionError("called for a value that is not too deep")


def _time(value: Any, path: str) -> datetime:
    text = _str(value, path)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(path, f"must be an ISO 8601 date-time, got {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _uuid(value: Any, path: str) -> str:
    text = _str(value, path)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise _fail(path, f"must be a UUID, got {text!r}") from None


def _facets(value: Any, path: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    facets = _obj(value, path)
    for name, facet in facets.items():
        _obj(facet, f"{path}.{name}")
    return facets


def _texts(facets: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: json.dumps(facet, sort_keys=True) for name, facet in facets.items()}


def location(namespace: str, name: str) -> str | None:
    """Where a dataset's bytes are, for namespaces that are stores: a local path for `file`,
    `<scheme>://<bucket>/<name>` for object stores; None for tables and topics.

    >>> location("file", "/data/raw.csv"), location("s3a://bucket", "raw/x.parquet")
    ('/data/raw.csv', 's3://bucket/raw/x.parquet')
    >>> location("postgres://db:5432", "shop.public.orders") is None
    True
    """
    if namespace == "file" or namespace.startswith("file://"):
        return name if name.startswith("/") else f"/{name}"
    scheme, sep, rest = namespace.partition("://")
    if sep and scheme in _STORES:
        return f"{_STORES[scheme]}://{rest.rstrip('/')}/{name.lstrip('/')}"
    return None


# -- parts of an event -----------------------------------------------------------------------------
def _job(value: Any, path: str) -> dict[str, Any]:
    job = _obj(value, path)
    namespace = _str(_required(job, "namespace", path), f"{path}.namespace")
    name = _str(_required(job, "name", path), f"{path}.name")
    facets = _facets(job.get("facets"), f"{path}.facets")
    source = None
    if "sourceCode" in facets:
        source = _optional_str(facets["sourceCode"], "sourceCode", f"{path}.facets.sourceCode")
    if source is None and "sql" in facets:
        source = _optional_str(facets["sql"], "query", f"{path}.facets.sql")
    where = facets.get("sourceCodeLocation", {})
    code_version = _optional_str(where, "version", f"{path}.facets.sourceCodeLocation")
    doc = facets.get("documentation", {})
    return {
        "namespace": namespace,
        "name": name,
        "key": f"{namespace}/{name}",
        "facets": _texts(facets),
        "source": source,
        # A job's version: what its source is (code or SQL) and which revision of it.
        "source_hash": None
        if source is None and code_version is None
        else hash_string(json.dumps([source, code_version]))[:22],
        "description": _optional_str(doc, "description", f"{path}.facets.documentation"),
    }


def _parent(facets: dict[str, dict[str, Any]], path: str) -> dict[str, Any] | None:
    if "parent" not in facets:
        return None
    where = f"{path}.parent"
    parent = facets["parent"]
    run = _obj(_required(parent, "run", where), f"{where}.run")
    job = parent.get("job")
    return {
        "id": _uuid(_required(run, "runId", f"{where}.run"), f"{where}.run.runId"),
        "job": None if job is None else _job(job, f"{where}.job"),
    }


def _number(facet: dict[str, Any], name: str, path: str) -> int | None:
    value = facet.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{path}.{name}", f"must be a number, got {_typename(value)}")
    return int(value)


def _dataset(value: Any, path: str, io_facets: str | None = None) -> dict[str, Any]:
    ds = _obj(value, path)
    namespace = _str(_required(ds, "namespace", path), f"{path}.namespace")
    name = _str(_required(ds, "name", path), f"{path}.name")
    facets = _facets(ds.get("facets"), f"{path}.facets")
    extra = _facets(ds.get(io_facets), f"{path}.{io_facets}") if io_facets else {}
    where = location(namespace, name)
    version = None
    if "version" in facets:
        version = _optional_str(facets["version"], "datasetVersion", f"{path}.facets.version")
    stats: dict[str, Any] = extra.get("outputStatistics") or extra.get("inputStatistics") or {}
    stats_path = f"{path}.{io_facets}.{'outputStatistics' if 'outputStatistics' in extra else 'inputStatistics'}"
    doc = facets.get("documentation", {})
    return {
        "namespace": namespace,
        "name": name,
        "key": f"{namespace}/{name}",
        "location": where,
        "version": version,
        "facets": _texts({**facets, **extra}),
        "columns": _columns(facets.get("schema"), f"{path}.facets.schema"),
        "lineage": _column_lineage(facets.get("columnLineage"), f"{path}.facets.columnLineage"),
        "suffix": PurePosixPath(name).suffix if where is not None else "",
        "rows": _number(stats, "rowCount", stats_path),
        "size": _number(stats, "size", stats_path),
        "description": _optional_str(doc, "description", f"{path}.facets.documentation"),
    }


def _columns(schema: dict[str, Any] | None, path: str) -> list[dict[str, Any]]:
    if schema is None:
        return []
    columns = []
    for i, field in enumerate(_list(schema.get("fields"), f"{path}.fields")):
        where = f"{path}.fields[{i}]"
        field = _obj(field, where)
        columns.append({
            "name": _str(_required(field, "name", where), f"{where}.name"),
            "type": _optional_str(field, "type", where),
            "description": _optional_str(field, "description", where),
        })  # fmt: skip
    return columns


def _column_lineage(facet: dict[str, Any] | None, path: str) -> list[dict[str, Any]]:
    if facet is None:
        return []
    fields = _obj(_required(facet, "fields", path), f"{path}.fields")
    out = []
    for field, entry in fields.items():
        where = f"{path}.fields.{field}"
        entry = _obj(entry, where)
        inputs = []
        for i, source in enumerate(_list(entry.get("inputFields"), f"{where}.inputFields")):
            at = f"{where}.inputFields[{i}]"
            source = _obj(source, at)
            namespace = _str(_required(source, "namespace", at), f"{at}.namespace")
            name = _str(_required(source, "name", at), f"{at}.name")
            transformations = _list(source.get("transformations"), f"{at}.transformations")
            first = _obj(transformations[0], f"{at}.transformations[0]") if transformations else {}
            masking = first.get("masking")
            inputs.append({
                "namespace": namespace,
                "name": name,
                "location": location(namespace, name),
                "field": _str(_required(source, "field", at), f"{at}.field"),
                # The first transformation, else the facet's older per-field spelling.
                "type": _optional_str(first, "type", f"{at}.transformations[0]")
                or _optional_str(entry, "transformationType", where),
                "subtype": _optional_str(first, "subtype", f"{at}.transformations[0]"),
                "description": _optional_str(first, "description", f"{at}.transformations[0]")
                or _optional_str(entry, "transformationDescription", where),
                "masking": masking if isinstance(masking, bool) else None,
            })  # fmt: skip
        out.append({"field": field, "inputs": inputs})
    return out


# -- events ----------------------------------------------------------------------------------------
def parse_event(value: Any, path: str = "$") -> dict[str, Any]:
    """Check one event (a dict from JSON) and normalise it for `graph.openlineage`; raises
    `InvalidEvent` with the JSON path of the first problem."""
    event = _obj(value, path)
    _depth(event, path)
    time = _time(_required(event, "eventTime", path), f"{path}.eventTime")
    _str(_required(event, "producer", path), f"{path}.producer")
    _str(_required(event, "schemaURL", path), f"{path}.schemaURL")
    event_type = event.get("eventType")
    if "run" in event:
        kind = "run"
    elif "dataset" in event:
        kind = "dataset"
    elif "job" in event:
        kind = "job"
    else:
        raise _fail(path, "an OpenLineage event needs `run` and `job` (a run event), `job` (a "
                    "job event) or `dataset` (a dataset event)")  # fmt: skip
    if event_type is not None:
        if kind != "run":
            raise _fail(f"{path}.eventType", f"only run events have an eventType ({kind} event)")
        if event_type not in EVENT_TYPES:
            raise _fail(
                f"{path}.eventType",
                f"unknown event type {event_type!r}; one of {', '.join(EVENT_TYPES)}",
            )
    run = None
    if kind == "run":
        raw = _obj(event["run"], f"{path}.run")
        facets = _facets(raw.get("facets"), f"{path}.run.facets")
        run = {
            "id": _uuid(_required(raw, "runId", f"{path}.run"), f"{path}.run.runId"),
            "facets": _texts(facets),
            "parent": _parent(facets, f"{path}.run.facets"),
        }
    job = None if kind == "dataset" else _job(_required(event, "job", path), f"{path}.job")
    return {
        "kind": kind,
        "type": event_type,
        "time": time,
        "run": run,
        "job": job,
        "inputs": [
            _dataset(d, f"{path}.inputs[{i}]", "inputFacets")
            for i, d in enumerate(_list(event.get("inputs"), f"{path}.inputs"))
        ],
        "outputs": [
            _dataset(d, f"{path}.outputs[{i}]", "outputFacets")
            for i, d in enumerate(_list(event.get("outputs"), f"{path}.outputs"))
        ],
        "dataset": _dataset(event["dataset"], f"{path}.dataset") if kind == "dataset" else None,
    }


def loads(text: str | bytes, path: str = "$") -> Any:
    """JSON text as Python values, refusing what is too large or not JSON (`InvalidEvent`)."""
    if len(text) > MAX_EVENT_BYTES * MAX_BATCH:
        raise _fail(path, f"larger than {MAX_EVENT_BYTES * MAX_BATCH} bytes")
    try:
        return json.loads(text)
    except RecursionError:
        raise _fail(path, f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid JSON: {exc}") from None


def parse_batch(value: Any) -> list[dict[str, Any]]:
    """One event (an object) or several (an array of at most MAX_BATCH), each checked; each
    event's JSON must be at most MAX_EVENT_BYTES."""
    if isinstance(value, list):
        if len(value) > MAX_BATCH:
            raise _fail("$", f"{len(value)} events in one batch; at most {MAX_BATCH}")
        items = [(v, f"$[{i}]") for i, v in enumerate(value)]
    else:
        items = [(value, "$")]
    for item, path in items:
        if len(json.dumps(item)) > MAX_EVENT_BYTES:
            raise _fail(path, f"event larger than {MAX_EVENT_BYTES} bytes")
    return [parse_event(item, path) for item, path in items]


def write(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write checked events (`parse_event`) in one transaction."""
    instance = current()
    return gol.write_events(instance.connection, events, current_user(instance).uid)


def ingest(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Check OpenLineage events (dicts as JSON gives them) and write them in one transaction:
    nothing is written if any is not valid. Returns what each touched, as uids: `transform`,
    `run`, `inputs`, `outputs`, `datasets` (a dataset event's). See the module docstring."""
    return write(parse_batch(list(events)))


def ingest_file(path: str | Path, batch_size: int = FILE_BATCH) -> int:
    """Ingest a JSON-lines file of events (one per line; blank lines skipped): every line is
    checked first (an error names the line and the JSON path), then they are written, one
    transaction per `batch_size` events. Returns the number of events."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size must be an int >= 1, got {batch_size!r}")
    events = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"line {number}: $"
            if len(line) > MAX_EVENT_BYTES:
                raise _fail(where, f"event larger than {MAX_EVENT_BYTES} bytes")
            events.append(parse_event(loads(line, where), where))
    for start in range(0, len(events), batch_size):
        write(events[start : start + batch_size])
    return len(events)
