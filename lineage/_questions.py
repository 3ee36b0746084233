"""The questions asked after "where did this come from": what changed between two versions
(`diff`), what is built on a record (`impact`) and what was built on an input that has moved on
(`stale`). Public as `ln.lineage.diff`, `ln.lineage.impact` and `ln.lineage.stale`, and as
`record.diff()` (the previous version against this one).

A collection grows a version: what changed?

>>> import lineage as ln
>>> v2 = collection.append(artifact3).save()
>>> change = ln.lineage.diff(collection, v2)
>>> [m.key for m in change.added], change.removed, change.moved
(['scrna/sample3.h5ad'], [], [])
>>> change.to_dict()["added"]
[{'uid': '...', 'key': 'scrna/sample3.h5ad', 'position': 2}]

Each answer is one query of `graph/questions.py` (the diff of collections adds one look-up of
the moved members' keys when some moved), after one query that checks the records given still
exist and are not in the trash. The results are small typed objects: a readable `repr`,
`to_dict()` (JSON-ready: datetimes as ISO strings), and for impact and stale `df()`.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import Any, ClassVar

import pandas as pd

from graph import lineage as gl
from graph import questions as gqs
from lineage._instance import current
from lineage._model import Model, require_saved
from lineage._settings import settings
from lineage.errors import DataError, DoesNotExist, InvalidArgument, InvalidType, MissingFile
from loaders.metadata import SUMMARIZED_SUFFIXES, summarize

__all__ = [
    "AnnDataDiff",
    "ArtifactDiff",
    "Change",
    "CollectionDiff",
    "Diff",
    "Impact",
    "Impacted",
    "ListChanges",
    "MapChanges",
    "Member",
    "Move",
    "Outdated",
    "Ref",
    "RunDiff",
    "Stale",
    "StaleRecord",
    "TableDiff",
    "diff",
    "diff_previous",
    "impact",
    "stale",
]

# Stored properties a diff does not list: what differs between any two records (uid, id, when
# each was written, which one is latest, where its bytes are), and a run's params, which are
# compared key by key instead.
_UNCOMPARED = frozenset(
    {"uid", "id", "created_at", "updated_at", "is_latest", "storage_path", "params"}
)
_SHOWN = 20  # lines per list in a repr; the rest is counted


# -- small parts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """A value before (`old`) and after (`new`)."""

    old: Any
    new: Any


@dataclass(frozen=True)
class Ref:
    """A record named in a result: its registry, uid, key (a run: its name) and version."""

    label: str
    uid: str
    key: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        name = f" {self.key!r}" if self.key is not None else ""
        version = f" version {self.version!r}" if self.version is not None else ""
        return f"{self.label}{name} {self.uid}{version}"


@dataclass(frozen=True)
class ListChanges:
    """Items in `new` only (`added`) and in `old` only (`removed`), each in its list's order."""

    added: list[Any]
    removed: list[Any]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    @classmethod
    def of(cls, old: Iterable[Any], new: Iterable[Any]) -> ListChanges:
        old, new = list(old), list(new)
        old_set, new_set = set(old), set(new)
        return cls([x for x in new if x not in old_set], [x for x in old if x not in new_set])


@dataclass(frozen=True)
class MapChanges:
    """Names in `new` only (`added`, with their values), in `old` only (`removed`), and in both
    with another value (`changed`)."""

    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, Change]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @classmethod
    def of(cls, old: dict[str, Any], new: dict[str, Any]) -> MapChanges:
        return cls(
            {k: v for k, v in new.items() if k not in old},
            {k: v for k, v in old.items() if k not in new},
            {k: Change(old[k], v) for k, v in new.items() if k in old and old[k] != v},
        )


def _jsonable(value: Any) -> Any:
    """A result as JSON-ready values: dataclasses as dicts, datetimes as ISO strings."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _short(value: Any, width: int = 60) -> str:
    text = repr(value.isoformat() if isinstance(value, (datetime, date)) else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _limited(lines: list[str], indent: str) -> list[str]:
    if len(lines) <= _SHOWN:
        return [indent + line for line in lines]
    more = len(lines) - _SHOWN
    return [indent + line for line in lines[:_SHOWN]] + [f"{indent}... and {more} more"]


def _count(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def _list_lines(name: str, changes: ListChanges, indent: str = "  ") -> list[str]:
    if not changes:
        return []
    out = [f"{indent}{name}: +{len(changes.added)} -{len(changes.removed)}"]
    items = [f"+ {x}" for x in changes.added] + [f"- {x}" for x in changes.removed]
    return out + _limited(items, indent + "  ")


def _map_lines(name: str, changes: MapChanges, indent: str = "  ") -> list[str]:
    if not changes:
        return []
    items = [f"+ {k}: {_short(v)}" for k, v in changes.added.items()]
    items += [f"- {k}: {_short(v)}" for k, v in changes.removed.items()]
    items += [f"~ {k}: {_short(c.old)} -> {_short(c.new)}" for k, c in changes.changed.items()]
    return [f"{indent}{name}:", *_limited(items, indent + "  ")]


# -- diff -----------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Diff:
    """What changed from one record (`old`) to another of the same registry (`new`).

    `fields`: the stored fields whose value differs (name -> `Change`), leaving out what differs
    between any two records (uid, id, creation and update times, `is_latest`, storage path).
    `bool(diff)` is whether anything changed; `to_dict()` is the same as plain values.
    """

    registry: str
    old: str
    new: str
    key: str | None
    fields: dict[str, Change]

    _sections: ClassVar[tuple[str, ...]] = ("fields",)

    def __bool__(self) -> bool:
        return any(bool(getattr(self, name)) for name in self._sections)

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready values (what `lineage diff --json` prints)."""
        out = _jsonable(self)
        out["changed"] = bool(self)
        return out

    def _lines(self) -> list[str]:
        return [f"  {name}: {_short(c.old)} -> {_short(c.new)}" for name, c in self.fields.items()]

    def __repr__(self) -> str:
        name = f" {self.key!r}" if self.key is not None else ""
        head = f"{type(self).__name__}({self.registry}{name}: {self.old} -> {self.new}"
        lines = self._lines()
        if not bool(self):
            return head + ": no changes)"
        return "\n".join([head + ")", *lines])

    __str__ = __repr__


@dataclass(frozen=True)
class Member:
    """A collection member: its uid, key and position in its collection."""

    uid: str
    key: str | None
    position: int

    def __str__(self) -> str:
        return f"[{self.position}] {self.key!r} {self.uid}"


@dataclass(frozen=True)
class Move:
    """A member kept in both collections whose place in the order changed."""

    uid: str
    key: str | None
    old_position: int
    new_position: int

    def __str__(self) -> str:
        return f"[{self.old_position} -> {self.new_position}] {self.key!r} {self.uid}"


@dataclass(frozen=True, repr=False)
class CollectionDiff(Diff):
    """Two collections: members added, removed and moved, the meta artifact, fields.

    `moved` is the fewest members whose move explains the new order: every member kept in both
    except a longest run of them that stays in the same order (so appending, inserting or
    removing moves nothing, and moving one member to the end moves one). `size` is the member
    count before and after; `meta_artifact` the meta artifacts' uids when they differ.
    """

    size: Change
    added: list[Member]
    removed: list[Member]
    moved: list[Move]
    meta_artifact: Change | None

    _sections = ("fields", "added", "removed", "moved", "meta_artifact")

    def _lines(self) -> list[str]:
        out = []
        if self.added or self.removed or self.moved:
            out.append(
                f"  members: {self.size.old} -> {self.size.new}: {len(self.added)} added, "
                f"{len(self.removed)} removed, {len(self.moved)} moved"
            )
            items = [f"+ {m}" for m in self.added] + [f"- {m}" for m in self.removed]
            out += _limited(items + [f"~ {m}" for m in self.moved], "    ")
        if self.meta_artifact is not None:
            out.append(f"  meta artifact: {self.meta_artifact.old} -> {self.meta_artifact.new}")
        return out + super()._lines()


@dataclass(frozen=True)
class TableDiff:
    """Two DataFrame files (parquet), from their footers: rows and columns (name -> dtype)."""

    rows: Change | None
    columns: MapChanges

    def __bool__(self) -> bool:
        return bool(self.rows is not None or self.columns)

    def _lines(self) -> list[str]:
        out = [f"  rows: {self.rows.old} -> {self.rows.new}"] if self.rows else []
        return out + _map_lines("columns", self.columns)


@dataclass(frozen=True)
class AnnDataDiff:
    """Two AnnData files (h5ad), from their groups and indexes: shape, obs and var names and
    columns (name -> dtype), layers and obsm keys."""

    shape: Change | None
    obs_names: ListChanges
    var_names: ListChanges
    obs: MapChanges
    var: MapChanges
    layers: ListChanges
    obsm: ListChanges

    def __bool__(self) -> bool:
        return self.shape is not None or any(
            bool(getattr(self, n))
            for n in ("obs_names", "var_names", "obs", "var", "layers", "obsm")
        )

    def _lines(self) -> list[str]:
        out = [f"  shape: {self.shape.old} -> {self.shape.new}"] if self.shape else []
        out += _list_lines("obs_names", self.obs_names) + _list_lines("var_names", self.var_names)
        out += _map_lines("obs columns", self.obs) + _map_lines("var columns", self.var)
        return out + _list_lines("layers", self.layers) + _list_lines("obsm", self.obsm)


@dataclass(frozen=True, repr=False)
class ArtifactDiff(Diff):
    """Two artifacts: fields (hash, size, suffix, otype, n_observations, key, ...), and for two
    parquet or two h5ad files what their content changed (`content`: a `TableDiff` or an
    `AnnDataDiff`), read from the files' metadata. `content` is None when the files are not
    compared: other formats, the same bytes, or `content=False`."""

    content: TableDiff | AnnDataDiff | None

    _sections = ("fields", "content")

    def _lines(self) -> list[str]:
        return super()._lines() + (self.content._lines() if self.content else [])


@dataclass(frozen=True, repr=False)
class RunDiff(Diff):
    """Two runs: fields (name, status, started_at, finished_at, ...), the transform when it is
    another one (another version, or another transform), params (key by key), inputs (compared
    as records: the exact versions read) and outputs (compared by key: two runs never write the
    same record)."""

    transform: Change | None
    params: MapChanges
    inputs: ListChanges
    outputs: ListChanges

    _sections = ("fields", "transform", "params", "inputs", "outputs")

    def _lines(self) -> list[str]:
        out = []
        if self.transform is not None:
            out.append(f"  transform: {self.transform.old} -> {self.transform.new}")
        out += _map_lines("params", self.params)
        out += _list_lines("inputs", self.inputs) + _list_lines("outputs", self.outputs)
        return out + super()._lines()


def _check_record(record: Any, what: str) -> Model:
    if not isinstance(record, Model) or record._label not in gl.LINEAGE_LABELS:
        raise InvalidArgument(
            f"{what} takes Artifact, Collection, Run or Transform records, not "
            f"{type(record).__name__}"
        )
    require_saved(record, what)
    return record


def _check_stored(records: list[Model], what: str) -> None:
    """One query: each record still exists and is not in the trash."""
    states = gqs.record_states(records[0]._inst().connection, [r.uid for r in records])
    for record in records:
        name = f"{type(record).__name__} {record.uid}"
        if (record._label, record.uid) not in states:
            raise DoesNotExist(f"{what}: {name} no longer exists")
        if states[(record._label, record.uid)] == -1:
            raise InvalidArgument(
                f"{what}: {name} is in the trash; restore() it first to ask about it"
            )


def diff(old: Model, new: Model, *, content: bool = True) -> Diff:
    """What changed from `old` to `new`, two records of one registry (any two: usually two
    versions of a family). Nothing is written.

    - collections: members added, removed and moved, the meta artifact, fields;
    - artifacts: hash, size, suffix, otype, n_observations and other fields; for two parquet
      files the rows and columns (with dtypes), for two h5ad files the shape, obs and var names
      and columns, layers and obsm keys, read from the files' metadata, never their matrices
      (`content=False`: the records only);
    - runs: transform, params, inputs and outputs, status and times;
    - transforms: fields (key, version, source code, ...).

    >>> v2 = collection.append(artifact3).save()
    >>> ln.lineage.diff(collection, v2)
    CollectionDiff(Collection 'scrna': ...0000 -> ...0001)
      members: 2 -> 3: 1 added, 0 removed, 0 moved
        + [2] 'scrna/sample3.h5ad' ...
      hash: '...' -> '...'
    >>> bool(ln.lineage.diff(artifact, artifact))     # the same record: nothing changed
    False
    """
    old = _check_record(old, "diff()")
    new = _check_record(new, "diff()")
    if old._label != new._label:
        raise InvalidType(
            f"diff() compares two records of one registry, not {type(old).__name__} "
            f"{old.uid} with {type(new).__name__} {new.uid}"
        )
    _check_stored([old, new], "diff()")
    return _diff(old, old.uid, new.uid, _display_key(new), content=content)


def diff_previous(record: Model, *, content: bool = True) -> Diff:
    """What changed from the version before `record` (for a run: the run of the same transform,
    any version, started just before it) to `record`; `DoesNotExist` when there is none.
    `record.diff()` calls this."""
    record = _check_record(record, "diff()")
    _check_stored([record], "diff()")
    before = gqs.previous(record._inst().connection, record._label, record.uid)
    if before is None:
        what = (
            "no earlier run of its transform"
            if record._label == "Run"
            else "the first version of its family (trashed versions are skipped)"
        )
        raise DoesNotExist(
            f"{type(record).__name__} {record.uid} is {what}: there is nothing before it to "
            "compare with; use ln.lineage.diff(a, b) for any two records"
        )
    return _diff(record, before, record.uid, _display_key(record), content=content)


def _display_key(record: Model) -> str | None:
    return record._values.get("key") or record._values.get("name")


def _diff(record: Model, old: str, new: str, key: str | None, *, content: bool) -> Diff:
    conn = record._inst().connection
    label = record._label
    row = gqs.record_diff(conn, label, old, new)
    if row is None:
        raise DoesNotExist(f"diff(): {label} {old} or {new} no longer exists")
    changed = {
        name: Change(a, b) for name, a, b in sorted(row["fields"]) if name not in _UNCOMPARED
    }
    base: dict[str, Any] = {
        "registry": label, "old": old, "new": new, "key": key, "fields": changed,
    }  # fmt: skip
    if label == "Collection":
        return _collection_diff(conn, row, base)
    if label == "Artifact":
        return ArtifactDiff(**base, content=_content_diff(row) if content else None)
    if label == "Run":
        return _run_diff(row, base)
    return Diff(**base)


def _collection_diff(conn: Any, row: dict[str, Any], base: dict[str, Any]) -> CollectionDiff:
    old_members, new_members = row["old_members"], row["new_members"]
    moves = _moves(old_members, new_members)
    keys = gqs.member_keys(conn, [new_members[j] for _, j in moves]) if moves else {}
    old_meta = row["old_meta"][0] if row["old_meta"] else None
    new_meta = row["new_meta"][0] if row["new_meta"] else None
    return CollectionDiff(
        **base,
        size=Change(len(old_members), len(new_members)),
        added=[Member(uid, key, pos) for pos, uid, key in row["added"]],
        removed=[Member(uid, key, pos) for pos, uid, key in row["removed"]],
        moved=[Move(new_members[j], keys.get(new_members[j]), i, j) for i, j in moves],
        meta_artifact=None if old_meta == new_meta else Change(old_meta, new_meta),
    )


def _moves(old: list[str], new: list[str]) -> list[tuple[int, int]]:
    """(old position, new position) of the members that moved: those kept in both lists but not
    in a longest subsequence of them whose order is the same in both (patience sorting,
    O(n log n)); sorted by new position."""
    where = {uid: j for j, uid in enumerate(new)}
    kept = [(i, where[uid]) for i, uid in enumerate(old) if uid in where]  # in old order
    if all(a[1] < b[1] for a, b in pairwise(kept)):
        return []  # the kept members are in the same order: nothing moved (the common case)
    tails: list[int] = []  # tails[k]: the smallest new position ending an ordered run of k+1
    ends: list[int] = []  # ends[k]: the index in `kept` of that member
    before = [-1] * len(kept)  # the previous member of the run each member ends
    for n, (_, j) in enumerate(kept):
        k = bisect_left(tails, j)
        before[n] = ends[k - 1] if k else -1
        if k == len(tails):
            tails.append(j)
            ends.append(n)
        else:
            tails[k] = j
            ends[k] = n
    in_order = set()
    n = ends[-1] if ends else -1
    while n >= 0:
        in_order.add(n)
        n = before[n]
    return sorted((kept[n] for n in range(len(kept)) if n not in in_order), key=lambda p: p[1])


def _content_diff(row: dict[str, Any]) -> TableDiff | AnnDataDiff | None:
    (old_path, old_suffix, old_hash), (new_path, new_suffix, new_hash) = (
        row["old_file"],
        row["new_file"],
    )
    if old_hash is not None and old_hash == new_hash:
        return None  # the same bytes: nothing in them changed
    if old_suffix not in SUMMARIZED_SUFFIXES or new_suffix not in SUMMARIZED_SUFFIXES:
        return None
    old_summary = _summary(old_path, old_suffix)
    new_summary = _summary(new_path, new_suffix)
    if old_summary is None or new_summary is None or old_summary["otype"] != new_summary["otype"]:
        return None  # another kind of object: the otype field says so
    if old_summary["otype"] == "DataFrame":
        rows = Change(old_summary["rows"], new_summary["rows"])
        return TableDiff(
            rows=rows if rows.old != rows.new else None,
            columns=MapChanges.of(old_summary["columns"], new_summary["columns"]),
        )
    shape = Change(old_summary["shape"], new_summary["shape"])
    return AnnDataDiff(
        shape=shape if shape.old != shape.new else None,
        obs_names=ListChanges.of(old_summary["obs_names"], new_summary["obs_names"]),
        var_names=ListChanges.of(old_summary["var_names"], new_summary["var_names"]),
        obs=MapChanges.of(old_summary["obs"], new_summary["obs"]),
        var=MapChanges.of(old_summary["var"], new_summary["var"]),
        layers=ListChanges.of(old_summary["layers"], new_summary["layers"]),
        obsm=ListChanges.of(old_summary["obsm"], new_summary["obsm"]),
    )


def _summary(path: str | None, suffix: str) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        return summarize(path, suffix, settings.storage_options)
    except FileNotFoundError:
        raise MissingFile(
            f"diff(): the artifact file {path} is not there, so its content cannot be compared; "
            "diff(..., content=False) compares the records only"
        ) from None
    except ValueError as exc:
        raise DataError(f"diff(): {exc}") from None


def _ref(values: list[Any]) -> Ref:
    label, uid, key, version = values
    return Ref(label, uid, key, version)


def _run_diff(row: dict[str, Any], base: dict[str, Any]) -> RunDiff:
    old_t = row["old_transform"][0] if row["old_transform"] else None
    new_t = row["new_transform"][0] if row["new_transform"] else None
    transform = None
    if (old_t and old_t[0]) != (new_t and new_t[0]):
        transform = Change(
            _ref(["Transform", *old_t]) if old_t else None,
            _ref(["Transform", *new_t]) if new_t else None,
        )
    params: dict[str, dict[str, Any]] = {"old": {}, "new": {}}
    for name, a, b in row["fields"]:
        if name == "params":
            params = {"old": _params(a), "new": _params(b)}
    old_out = {(r[0], r[2] if r[2] is not None else r[1]): _ref(r) for r in row["old_outputs"]}
    new_out = {(r[0], r[2] if r[2] is not None else r[1]): _ref(r) for r in row["new_outputs"]}
    return RunDiff(
        **base,
        transform=transform,
        params=MapChanges.of(params["old"], params["new"]),
        inputs=ListChanges.of(
            sorted(map(_ref, row["old_inputs"]), key=_order),
            sorted(map(_ref, row["new_inputs"]), key=_order),
        ),
        outputs=ListChanges(
            sorted((r for k, r in new_out.items() if k not in old_out), key=_order),
            sorted((r for k, r in old_out.items() if k not in new_out), key=_order),
        ),
    )


def _order(ref: Ref) -> tuple[str, str, str]:
    return (ref.label, ref.key or "", ref.uid)


def _params(raw: str | None) -> dict[str, Any]:
    return {} if raw is None else dict(json.loads(raw))


# -- impact ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Impacted:
    """A record downstream of what was asked about: its run depth, the run and transform that
    made it (a run: itself and its transform) and who created it."""

    depth: int
    label: str
    uid: str
    key: str | None
    version: str | None
    run: str | None
    transform: str | None
    transform_uid: str | None
    created_by: str | None

    def __str__(self) -> str:
        name = f" {self.key!r}" if self.key is not None and self.label != "Run" else ""
        made = f" by {self.transform!r}" if self.transform else ""
        who = f", created by {self.created_by}" if self.created_by else ""
        return f"{self.label}{name} {self.uid}{made}{who}"


@dataclass(frozen=True, repr=False)
class Impact:
    """Everything downstream of some records, grouped by run depth (0: what is reached without
    passing a run, such as the collections holding them; 1: the runs that read them and what
    those wrote; ...), with the transforms that made it and the people who created it.

    Iterating gives the `Impacted` records, nearest first; `by_depth`, `transforms`, `users`,
    `df()` and `to_dict()` give the same in other shapes.
    """

    sources: list[Ref]
    depth: int | None
    records: list[Impacted]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Impacted]:
        return iter(self.records)

    def __contains__(self, record: object) -> bool:
        uid, label = getattr(record, "uid", None), getattr(record, "_label", None)
        return any(r.uid == uid and r.label == label for r in self.records)

    @property
    def by_depth(self) -> dict[int, list[Impacted]]:
        """Run depth -> the records at that depth."""
        out: dict[int, list[Impacted]] = {}
        for record in self.records:
            out.setdefault(record.depth, []).append(record)
        return out

    @property
    def transforms(self) -> list[str]:
        """The keys of the transforms that made what is affected, sorted."""
        return sorted({r.transform for r in self.records if r.transform is not None})

    @property
    def users(self) -> list[str]:
        """The handles of the users who created what is affected: the people to tell."""
        return sorted({r.created_by for r in self.records if r.created_by is not None})

    def df(self) -> pd.DataFrame:
        """One row per affected record, nearest first."""
        columns = [f.name for f in fields(Impacted)]
        return pd.DataFrame([_jsonable(r) for r in self.records], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (what `lineage impact --json` prints)."""
        return {
            "sources": _jsonable(self.sources),
            "depth": self.depth,
            "records": _jsonable(self.records),
            "transforms": self.transforms,
            "users": self.users,
        }

    def __repr__(self) -> str:
        sources = ", ".join(str(s) for s in self.sources)
        depth = "all" if self.depth is None else str(self.depth)
        head = f"Impact({sources}; depth {depth}): {_count(len(self.records))} downstream"
        lines = [head]
        for level, records in self.by_depth.items():
            lines.append(f"  depth {level}:")
            lines += _limited([str(r) for r in records], "    ")
        if self.records:
            lines.append(f"  transforms: {', '.join(self.transforms) or '-'}")
            lines.append(f"  people to tell: {', '.join(self.users) or '-'}")
        return "\n".join(lines)

    __str__ = __repr__


def impact(records: Model | Iterable[Model], depth: int | None = None) -> Impact:
    """Everything built on a record (or on any of several: "I am about to fix these three
    files"), grouped by run depth, with the transforms that made it and who created it.

    Depth counts runs as `ln.lineage.downstream` does: 0 is what is reached without passing a
    run (the collections holding a record, its later versions; for a run, its outputs), 1 adds
    the runs that read those and what they wrote, and so on; `None` (the default) follows
    everything. Trashed records are left out. Nothing is written.

    >>> run.input_artifacts.add(artifact)                                    # the run read it
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()  # and wrote this
    >>> hit = ln.lineage.impact(artifact)
    >>> [(r.depth, r.label, r.key) for r in hit if r.label != "Run"]
    [(1, 'Artifact', 'tables/counts.parquet')]
    >>> hit.transforms, len(hit.users)
    (['preprocess.py'], 1)
    >>> len(ln.lineage.impact([artifact, artifact1], depth=0))   # several at once
    1
    """
    given = [records] if isinstance(records, Model) else _as_list(records)
    if not given:
        raise InvalidArgument("impact() needs at least one record")
    unique: dict[tuple[str, str], Model] = {}
    for record in given:
        record = _check_record(record, "impact()")
        unique.setdefault((record._label, record.uid), record)
    sources = list(unique.values())
    try:
        depth = gl.check_depth(depth)
    except ValueError as exc:
        raise InvalidArgument(f"impact(): {exc}") from None
    _check_stored(sources, "impact()")
    rows = gqs.impact(sources[0]._inst().connection, [r.uid for r in sources], depth)
    wanted = {r.uid for r in sources}
    return Impact(
        sources=[Ref(r._label, r.uid, _display_key(r), r._values.get("version")) for r in sources],
        depth=depth,
        records=[Impacted(**row) for row in rows if row["uid"] not in wanted],
    )


def _as_list(records: Any) -> list[Any]:
    if isinstance(records, (str, bytes)) or not isinstance(records, Iterable):
        raise InvalidArgument(
            f"impact() takes a record or a list of records, not {type(records).__name__}"
        )
    return list(records)


# -- stale ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outdated:
    """An input a run read that is no longer the latest version of its family: the version
    read (`uid`, `version`), whether it is in the trash, and the latest version now (None when
    no version of the family is left outside the trash)."""

    label: str
    uid: str
    key: str | None
    version: str | None
    trashed: bool
    latest: str | None
    latest_version: str | None

    def __str__(self) -> str:
        used = Ref(self.label, self.uid, self.key, self.version)
        if self.trashed:
            now = f"in the trash; latest now {self.latest}" if self.latest else "in the trash"
        else:
            version = f" version {self.latest_version!r}" if self.latest_version else ""
            now = f"latest now {self.latest}{version}"
        return f"used {used}, {now}"


@dataclass(frozen=True)
class StaleRecord:
    """A record built from outdated inputs: the run that built it, its transform, and each
    outdated input (the path that explains it: record <- run <- input used -> latest now)."""

    label: str
    uid: str
    key: str | None
    version: str | None
    run: str
    transform: str | None
    inputs: list[Outdated]

    def __str__(self) -> str:
        made = f" ({self.transform!r})" if self.transform else ""
        return f"{Ref(self.label, self.uid, self.key)} <- run {self.run}{made}"


@dataclass(frozen=True, repr=False)
class Stale:
    """The records built from an input that is no longer the latest version of its family, by
    key; `key` is the prefix asked for (None: all)."""

    key: str | None
    records: list[StaleRecord]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[StaleRecord]:
        return iter(self.records)

    def __contains__(self, record: object) -> bool:
        uid, label = getattr(record, "uid", None), getattr(record, "_label", None)
        return any(r.uid == uid and r.label == label for r in self.records)

    def df(self) -> pd.DataFrame:
        """One row per stale record and outdated input."""
        rows = []
        for record in self.records:
            head = {name: getattr(record, name) for name in _STALE_COLUMNS[:6]}
            for used in record.inputs:
                rows.append(
                    {
                        **head,
                        "used_label": used.label,
                        "used": used.uid,
                        "used_key": used.key,
                        "used_version": used.version,
                        "used_trashed": used.trashed,
                        "latest": used.latest,
                        "latest_version": used.latest_version,
                    }
                )
        return pd.DataFrame(rows, columns=_STALE_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (what `lineage stale --json` prints)."""
        return {"key": self.key, "records": _jsonable(self.records)}

    def __repr__(self) -> str:
        where = f" with key prefix {self.key!r}" if self.key else ""
        lines = [f"Stale({_count(len(self.records))} built on outdated inputs{where})"]
        for record in self.records[:_SHOWN]:
            lines.append(f"  {record}")
            lines += [f"    {used}" for used in record.inputs]
        if len(self.records) > _SHOWN:
            lines.append(f"  ... and {len(self.records) - _SHOWN} more")
        return "\n".join(lines)

    __str__ = __repr__


_STALE_COLUMNS = [
    "label", "uid", "key", "version", "run", "transform", "used_label", "used", "used_key",
    "used_version", "used_trashed", "latest", "latest_version",
]  # fmt: skip


def stale(key: str | None = None) -> Stale:
    """The records built from an input that is no longer the latest version of its family (a
    newer version was saved, or the input went to the trash), each with the path that explains
    it: which input, which version the run used, which is latest now.

    Only the latest version of a record outside the trash is reported (an older version has
    been superseded already). `key`: only records whose key starts with it. Nothing is written.

    >>> run.input_artifacts.add(artifact)                                    # the run read it
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()  # and wrote this
    >>> df2.to_csv("counts.csv", index=False)                               # a new version
    >>> newer = ln.Artifact("counts.csv", revises=artifact).save()          # the input moved on
    >>> found = ln.lineage.stale(key="tables/")
    >>> [r.key for r in found], found.records[0].inputs[0].latest == newer.uid
    (['tables/counts.parquet'], True)
    """
    if key is not None and not isinstance(key, str):
        raise InvalidType(
            f"stale(key=...) takes a key prefix (str) or None, not {type(key).__name__}"
        )
    key = key or None  # "" is every key
    rows = gqs.stale(current().connection, key)
    records: dict[str, StaleRecord] = {}
    for row in rows:
        record = records.get(row["uid"])
        if record is None:
            record = records[row["uid"]] = StaleRecord(
                row["label"], row["uid"], row["key"], row["version"], row["run"],
                row["transform"], [],
            )  # fmt: skip
        record.inputs.append(
            Outdated(
                row["input_label"],
                row["used"],
                row["used_key"],
                row["used_version"],
                bool(row["used_trashed"]),
                row["latest"],
                row["latest_version"],
            )
        )
    return Stale(key=key, records=list(records.values()))
