"""The model base of every registry: a record's values, relations and identity.

A record holds plain values under their stored names (`self._values`) and the records at the
far end of its to-one relations (`run`, `created_by`, `transform`, ...) in `self._to_one`. Field
and relation names come from `graph.models`, the one declaration shared with the schema and the
query compiler.

This module is the bottom of lineage's record modules, which import in one direction:

    _model (values, identity) -> _queryset (QuerySet over models) -> _record (Record: queries,
    save, delete) -> _versioned -> ... -> _registries -> _features -> _run -> _data
    (artifacts' and collections' shared base and their data helpers) -> _artifact ->
    _collection -> __init__

(the whole order, with the modules between, is in docs/architecture.md, "Layers").

A QuerySet only knows `Model`; what it cannot do itself (load, mapped) it asks its model for,
so no lower module needs a registry class.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar, Self

import pandas as pd

from graph import models as gm
from graph import records as gr
from lineage._instance import Instance, current
from lineage.errors import InvalidArgument, InvalidType, NotSaved, ValidationError

logger = logging.getLogger("lineage")

# Python types a stored field accepts, by neomodel property type.
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "StringProperty": (str,),
    "IntegerProperty": (int,),
    "BooleanProperty": (bool,),
    "FloatProperty": (float, int),
    "DateTimeNeo4jFormatProperty": (datetime,),
}
# Fields lineage maintains itself: users read them, never set them.
_MANAGED = {
    "uid", "id", "created_at", "updated_at", "branch", "is_latest", "hash", "hash_type",
    "storage_path", "size", "suffix",
}  # fmt: skip


class Model:
    """A node of one registry: values, to-one targets and identity. Subclasses set `_label`."""

    _label: ClassVar[str]
    _saved: bool
    _instance: Instance | None

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_to_one", {})
        object.__setattr__(self, "_dirty", set())
        object.__setattr__(self, "_saved", False)
        object.__setattr__(self, "_instance", None)
        unknown = sorted(set(fields) - set(self._fields()) - set(self._relations()))
        if unknown:
            raise InvalidArgument(
                f"{type(self).__name__}() got unexpected keyword {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(sorted(self._settable()))}"
            )
        for name, value in fields.items():
            if name in self._relations() and self._relations()[name].many:
                raise InvalidArgument(
                    f"{type(self).__name__}.{name} is a many-relation: save the record, then "
                    f"`record.{name}.add(...)`"
                )
            setattr(self, name, value)

    # -- model description ---------------------------------------------------------------------
    @classmethod
    def _fields(cls) -> dict[str, str]:
        return gm.fields_of(cls._label)

    @classmethod
    def _relations(cls) -> dict[str, gm.Relation]:
        return gm.relations_of(cls._label)

    @classmethod
    def _settable(cls) -> set[str]:
        single = {n for n, r in cls._relations().items() if not r.many}
        return (set(cls._fields()) - _MANAGED) | single

    @classmethod
    def _lookup_field(cls) -> str:
        for name in ("name", "key", "handle", "root"):
            if name in cls._fields():
                return name
        return "uid"

    @classmethod
    def _from_row(cls, row: dict[str, Any], instance: Instance | None = None) -> Self:
        """A saved record from its node's properties (no constructor side effects)."""
        obj = cls.__new__(cls)
        fields = cls._fields()  # once, not per key: 12% of a 1,000-record to_list()
        # A copy either way: a QuerySet keeps its rows and may build records from them again.
        values = (
            dict(row)
            if row.keys() <= fields.keys()
            else {k: v for k, v in row.items() if k in fields}
        )
        object.__setattr__(obj, "_values", values)
        object.__setattr__(obj, "_to_one", {})
        object.__setattr__(obj, "_dirty", set())
        object.__setattr__(obj, "_saved", True)
        object.__setattr__(obj, "_instance", instance)
        return obj

    def _load(self, row: dict[str, Any]) -> None:
        """Take the stored state of `row` (after a write, or an existing duplicate)."""
        fields = self._fields()
        self._values.clear()
        self._values.update({k: v for k, v in row.items() if k in fields})
        self._dirty.clear()
        object.__setattr__(self, "_saved", True)

    def _inst(self) -> Instance:
        return self._instance or current()

    # -- attribute access ------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        cls = type(self)
        if name in cls._fields():
            return self._values.get(name)
        rels = cls._relations()
        if name in rels:
            rel = rels[name]
            if rel.many:
                return self._related(name)
            if name not in self._to_one:  # a to-one target resolves even from the trash
                self._to_one[name] = (
                    self._related(name, branch=None).first() if self._saved else None
                )
            return self._to_one[name]
        raise AttributeError(f"{cls.__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if name in cls._fields() and not isinstance(getattr(cls, name, None), property):
            if name in _MANAGED:
                raise InvalidArgument(f"{cls.__name__}.{name} is set by lineage, not by hand")
            self._values[name] = self._validate(name, value)
            self._dirty.add(name)
            return
        rels = cls._relations()
        if name in rels and not rels[name].many:
            target = registry_of(rels[name].target)
            if value is not None and not isinstance(value, target):
                raise InvalidType(
                    f"{cls.__name__}.{name} takes a {target.__name__} or None, "
                    f"not {type(value).__name__}"
                )
            self._to_one[name] = value
            self._dirty.add(name)
            return
        if name in rels:
            raise InvalidArgument(
                f"{cls.__name__}.{name} is a many-relation: use `record.{name}.add(...)` or "
                f"`.set([...])` on a saved record"
            )
        # Private state, and what the class defines (a property's setter such as Run.params,
        # a method patched in a test): set as Python sets it.
        if name.startswith("_") or hasattr(cls, name):
            object.__setattr__(self, name, value)
            return
        # Anything else would be a plain Python attribute that save() silently drops.
        raise InvalidArgument(
            f"{cls.__name__} has no field {name!r} to set; valid: "
            f"{', '.join(sorted(cls._settable()))}"
        )

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if value is None:
            return None
        kind = cls._fields()[name]
        accepted = _ACCEPTS.get(kind)
        wrong_bool = isinstance(value, bool) and kind == "IntegerProperty"
        if accepted and (not isinstance(value, accepted) or wrong_bool):
            raise ValidationError(
                f"{cls.__name__}.{name} takes {' or '.join(t.__name__ for t in accepted)}, "
                f"not {type(value).__name__} ({value!r})"
            )
        if isinstance(value, str):
            try:  # Neo4j stores UTF-8: a lone surrogate would fail later, inside the driver
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValidationError(
                    f"{cls.__name__}.{name} is not valid Unicode: character {exc.start} is a lone "
                    f"surrogate ({value[exc.start]!r}, an undecodable byte?); pass text"
                ) from None
        return value

    def _related(self, name: str, branch: int | None = 1) -> Any:
        """A many-relation's RelatedQuerySet: `Record` builds it (QuerySets sit above models)."""
        raise NotImplementedError

    # -- identity --------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model) or other._label != self._label:
            return NotImplemented
        if self.uid is None:
            return self is other
        return self.uid == other.uid

    def __hash__(self) -> int:
        return hash((self._label, self.uid)) if self.uid else id(self)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._values.items() if v is not None and k != "updated_at"}
        order = ["uid", "id", *[k for k in self._fields() if k not in ("uid", "id")]]
        parts = [f"{k}={shown[k]!r}" for k in order if k in shown]
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- writing ---------------------------------------------------------------------------------
    def _changes(self) -> tuple[dict[str, Any], list[gr.EdgeSpec]]:
        """What set since the last save: stored values, and to-one edges to replace (an empty
        uid list removes the edge)."""
        props = {k: self._values.get(k) for k in self._dirty if k in self._fields()}
        replace = []
        for name, target in self._to_one.items():
            if name not in self._dirty:
                continue
            if target is not None:
                require_saved(target, f"{self._label}.{name}")
            replace.append(gr.EdgeSpec(name, [target.uid] if target is not None else []))
        return props, replace

    @classmethod
    def _validated_changes(cls, fields: dict[str, Any]) -> tuple[dict[str, Any], list[gr.EdgeSpec]]:
        """`fields` checked and converted exactly as setting them on a record and saving it
        would (unknown or lineage-managed names refused, values validated, `Run.params` as
        JSON): the stored values and edges a bulk update writes."""
        scratch = cls._from_row({})
        aliases = gm.aliases_of(cls._label)
        for name, value in fields.items():
            stored = aliases.get(name, name)
            setattr(scratch, stored if stored in cls._fields() else name, value)
        return scratch._changes()

    def _added_edges(self) -> list[gr.EdgeSpec]:
        """Edges to merge into a saved record's at its next write, with its changes (an
        artifact's labels from validation); none by default."""
        return []

    def _run_inputs(self) -> gr.RunInputs | None:
        """What the record's run used to make it, recorded with the record (a collection's
        members); none by default."""
        return None

    def _new_record(self) -> gr.NewRecord:
        """The record as a node to create: its set values, edges and run inputs."""
        props = {k: v for k, v in self._values.items() if v is not None}
        return gr.NewRecord(props, self._edges(), self._run_inputs())

    def _edges(self) -> list[gr.EdgeSpec]:
        edges = []
        for name, target in self._to_one.items():
            if target is None:
                continue
            require_saved(target, f"{type(self).__name__}.{name}")
            edges.append(gr.EdgeSpec(name, [target.uid]))
        return edges

    @classmethod
    def _frame_fields(cls) -> list[str]:
        """The fields `df()` reads: `id` (the index), `uid`, then the others but `updated_at`."""
        return ["id", "uid", *[f for f in cls._fields() if f not in ("uid", "id", "updated_at")]]

    @classmethod
    def _frame(
        cls,
        columns: dict[str, list[Any]],
        includes: list[str],
        extra: dict[str, list[Any]] | None = None,
    ) -> pd.DataFrame:
        """The frame `df()` shows, indexed by id, from columns by name (`_frame_fields()` and
        the include paths), then the `extra` columns (a name already there keeps its place)."""
        names = cls._frame_fields()[1:]
        names += [c for c in includes if c not in names]
        data = {c: columns[c] for c in names}
        data.update(extra or {})
        index = pd.Index(columns["id"], name="id")
        if not len(index):  # no values to infer a dtype from: object, not float64
            return pd.DataFrame(columns=list(data), index=index)
        return pd.DataFrame(data, index=index)

    @classmethod
    def _with_path(cls, qs: Any, path: Any) -> tuple[Any, str]:
        """`get(path=...)`: `qs` narrowed to the records whose file is at `path`, and the path
        as compared; only artifacts have files (QuerySets sit above this module: `Any`)."""
        raise InvalidArgument(
            f"get(path=...) finds artifacts by their file; {cls.__name__} records have none"
        )

    # -- reading data: registries whose records are files override these -----------------------
    @classmethod
    def _load_queryset(cls, qs: Any, what: str, **kwargs: Any) -> Any:
        """`qs.load()` / `qs.mapped()` of a QuerySet `qs` of this registry (typed `Any`: the
        QuerySet module sits above this one); only artifacts hold data."""
        hint = f"; use {cls.__name__.lower()}.{what}" if hasattr(cls, what[:-2]) else ""
        raise InvalidArgument(
            f"{what} works on a QuerySet of artifacts, not of {cls.__name__} records{hint}"
        )


def require_saved(record: Model, what: str) -> None:
    if not record._saved:
        raise NotSaved(f"{what}: {record!r} is not saved yet; call .save() on it first")


_REGISTRIES: dict[str, type[Model]] = {}


def register(cls: type[Model]) -> type[Model]:
    """Class decorator: map a label to its registry class (for relation targets)."""
    _REGISTRIES[cls._label] = cls
    return cls


def registry_of(label: str) -> type[Model]:
    return _REGISTRIES[label]
