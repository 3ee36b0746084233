"""The base of every registry: fields, relations, save/delete/restore and the class queries.

A record holds plain values under their stored names (`self._values`) and the records at the
far end of its to-one relations (`run`, `created_by`, `transform`, ...). Many-relations
(`collection.artifacts`, `run.input_artifacts`) are QuerySets anchored at this record, so they
always show what is in the graph now. Field and relation names come from `graph.models`, the one
declaration shared with the schema and the query compiler.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import pandas as pd

from graph import ids as gids
from graph import models as gm
from graph import query as gq
from graph import records as gr
from lineage._compat import DjangoCompat
from lineage.errors import DoesNotExist, InvalidArgument, MultipleResultsFound, ValidationError

if TYPE_CHECKING:
    from lineage._instance import Instance
    from lineage._queryset import QuerySet

    R = TypeVar("R", bound="Record")

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


class Record(DjangoCompat):
    """A node of one registry. Subclasses set `_label` to their Neo4j label."""

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
        object.__setattr__(obj, "_values", {k: v for k, v in row.items() if k in cls._fields()})
        object.__setattr__(obj, "_to_one", {})
        object.__setattr__(obj, "_dirty", set())
        object.__setattr__(obj, "_saved", True)
        object.__setattr__(obj, "_instance", instance)
        return obj

    def _load(self, row: dict[str, Any]) -> None:
        """Take the stored state of `row` (after a write, or an existing duplicate)."""
        self._values.clear()
        self._values.update({k: v for k, v in row.items() if k in self._fields()})
        self._dirty.clear()
        object.__setattr__(self, "_saved", True)

    def _inst(self) -> Instance:
        from lineage._instance import current

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
                raise TypeError(
                    f"{cls.__name__}.{name} takes a {target.__name__} or None, "
                    f"not {type(value).__name__}"
                )
            self._to_one[name] = value
            self._dirty.add(name)
            return
        object.__setattr__(self, name, value)

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

    def _related(self, name: str, branch: int | None = 1) -> QuerySet:
        from lineage._queryset import RelatedQuerySet

        rel = self._relations()[name]
        if not self._saved:
            raise InvalidArgument(
                f"{type(self).__name__}.{name} is only known once the record is saved"
            )
        model = registry_of(rel.target)
        anchor = gq.Anchor(self._label, self.uid, name)
        select = gq.Select(rel.target, anchor=anchor, branch=branch)
        return RelatedQuerySet(model, select, self._instance, owner=self, relation=name)

    # -- identity --------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or other._label != self._label:
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
    def _edges(self) -> list[gr.EdgeSpec]:
        edges = []
        for name, target in self._to_one.items():
            if target is None:
                continue
            require_saved(target, f"{type(self).__name__}.{name}")
            edges.append(gr.EdgeSpec(name, [target.uid]))
        return edges

    def _default_edges(self) -> None:
        """Fill `created_by` (and, for data, the current run) before a first save."""
        from lineage._user import current_user

        if "created_by" not in self._to_one and self._label != "User":
            self._to_one["created_by"] = current_user(self._inst())

    def save(self) -> Self:
        """Write the record (and its to-one edges) in one transaction; returns the record.

        >>> label = ln.ULabel(name="experiment-1").save()
        >>> label.description = "first batch"     # a saved record: save() writes the change
        >>> label.save()
        ULabel(uid='...', ..., name='experiment-1', description='first batch')
        """
        conn = self._inst().connection
        if not self._saved:
            self._default_edges()
            props = {k: v for k, v in self._values.items() if v is not None}
            if gm.is_versioned(self._label):
                row = gr.create_record(
                    conn,
                    self._label,
                    gr.NewRecord(props, self._edges()),
                    stem=self._stem(),
                    new_family=self._new_family(),
                    # Artifacts and collections: a concurrent save of the same content wins,
                    # `Versioned.save` takes its record (`DuplicateContent`).
                    unique_hash=getattr(self, "_unique_content", False),
                )
            else:
                props.setdefault("uid", gids.base62(gm.uid_length(self._label)))
                row = gr.create_record(conn, self._label, gr.NewRecord(props, self._edges()))
            self._load(row)
            return self
        if self._dirty:
            props = {k: self._values.get(k) for k in self._dirty if k in self._fields()}
            replace = [
                gr.EdgeSpec(n, [t.uid] if t is not None else [])
                for n, t in self._to_one.items()
                if n in self._dirty
            ]
            for edge in replace:
                if edge.uids:
                    require_saved(self._to_one[edge.relation], f"{self._label}.{edge.relation}")
            row = gr.update_record(conn, self._label, self.uid, props, replace=replace)
            self._load(row)
        return self

    def _stem(self) -> str:
        return gids.base62(gm.uid_length(self._label))

    def _new_family(self) -> bool:
        return False

    def delete(self, permanent: bool | None = None) -> None:
        """Move the record to the trash; `permanent=True` (or a second delete) removes it.

        >>> label.delete()                  # branch -1: hidden from queries, restorable
        >>> label.branch, ln.ULabel.filter(name="my-label").count()
        (-1, 0)
        >>> label.delete(permanent=True)    # gone, with its edges
        """
        require_saved(self, "delete()")
        conn = self._inst().connection
        if permanent or self.branch == -1:
            self._delete_permanently()
            gr.delete_record(conn, self._label, self.uid)
            object.__setattr__(self, "_saved", False)
            return
        gr.trash_record(conn, self._label, self.uid)
        self._refresh()

    def _delete_permanently(self) -> None:
        """Hook for what goes with the node (an artifact's stored file)."""

    def restore(self) -> None:
        """Bring the record back from the trash.

        >>> label.delete()
        >>> label.restore()
        >>> label.branch, ln.ULabel.filter(name="my-label").count()
        (1, 1)
        """
        require_saved(self, "restore()")
        gr.restore_record(self._inst().connection, self._label, self.uid)
        self._refresh()

    def _refresh(self) -> None:
        rows = gq.fetch(
            self._inst().connection, gq.Select(self._label, where=gq.Q(uid=self.uid), branch=None)
        )
        if not rows:
            raise DoesNotExist(f"{type(self).__name__} {self.uid} no longer exists")
        self._load(rows[0])
        self._to_one.clear()

    # -- class queries -----------------------------------------------------------------------------
    @classmethod
    def _queryset(cls, instance: Instance | None = None) -> QuerySet[Self]:
        from lineage._queryset import QuerySet

        return QuerySet(cls, gq.Select(cls._label), instance)

    @classmethod
    def all(cls) -> QuerySet[Self]:
        """Every record in the main branch."""
        return cls._queryset()

    @classmethod
    def filter(cls, *queries: gq.Q, **expressions: Any) -> QuerySet[Self]:
        """Query records.

        >>> ln.ULabel(name="my label").save()
        ULabel(uid='...', ..., name='my label')
        >>> [u.name for u in ln.ULabel.filter(name__startswith="my")]
        ['my-label', 'my label']
        >>> ln.ULabel.filter(name__startswith="my").df()[["name", "description"]]
                name description
        id
        1   my-label        None
        3   my label        None
        """
        return cls._queryset().filter(*queries, **expressions)

    @classmethod
    def get(cls, idlike: int | str | None = None, **expressions: Any) -> Self:
        """Get a single record by id, uid, uid prefix or fields; `DoesNotExist` if none.

        >>> ln.ULabel.get(label.uid[:4])             # a uid prefix is enough
        ULabel(uid='...', ..., name='my-label')
        >>> ulabel = ln.ULabel.get(name="my-label")
        >>> ulabel == label
        True
        """
        return _get(cls._queryset(), idlike, expressions)

    @classmethod
    def df(
        cls, include: str | list[str] | None = None, features: bool = False, limit: int = 100
    ) -> pd.DataFrame:
        """The registry as a DataFrame: direct fields (not updated_at), `include` related ones.

        >>> ln.ULabel.df(include="created_by__name")[["name", "created_by__name"]]
                name created_by__name
        id
        1   my-label              ...
        2     tissue              ...
        """
        if features:
            raise InvalidArgument("features=True needs a Feature registry, which lineage has not")
        return cls._queryset().df(include=include, limit=limit)

    @classmethod
    def search(
        cls,
        string: str,
        *,
        field: str | list[str] | None = None,
        limit: int | None = 20,
        case_sensitive: bool = False,
    ) -> Any:
        """Search string fields, best match first; `.df()` has a `score` column.

        >>> ln.ULabel.search("label").df()[["name", "score"]]
                name  score
        id
        1   my-label   21.0
        """
        return cls._queryset().search(
            string, field=field, limit=limit, case_sensitive=case_sensitive
        )

    @classmethod
    def lookup(cls, field: str | None = None, return_field: str | None = None) -> Any:
        """Auto-complete object for a field's values.

        >>> labels = ln.ULabel.lookup()
        >>> labels.my_label
        ULabel(uid='...', ..., name='my-label')
        """
        return cls._queryset().lookup(field, return_field)

    @classmethod
    def using(cls, instance: str) -> QuerySet[Self]:
        """Query another configured instance (see `ln.settings.add_instance`).

        >>> ln.ULabel.using("shared").search("tissue", field="name").first().name
        'tissue'
        """
        from lineage._instance import instance_named

        return cls._queryset(instance_named(instance))

    @classmethod
    def _frame(cls, rows: list[dict[str, Any]], includes: list[str]) -> pd.DataFrame:
        columns = ["uid", *[f for f in cls._fields() if f not in ("uid", "id", "updated_at")]]
        columns += [c for c in includes if c not in columns]
        data = [{c: row.get(c) for c in columns} for row in rows]
        frame = pd.DataFrame(
            data, columns=columns, index=pd.Index([r.get("id") for r in rows], name="id")
        )
        return frame

    # -- description -----------------------------------------------------------------------------
    def describe(self, print_types: bool = False) -> None:
        """Print the record's fields and relations as a tree.

        >>> collection.describe()
        Collection: scrna
        ├── General
        │   ├── uid: '...0000'
        ...
        └── Artifacts (2)
            ├── 0: 'scrna/sample1.h5ad' (...)
            └── 1: 'scrna/sample2.h5ad' (...)
        """
        from lineage._describe import describe

        describe(self, print_types=print_types)


def require_saved(record: DjangoCompat, what: str) -> None:
    if not record._saved:
        raise ValueError(f"{what}: {record!r} is not saved yet; call .save() on it first")


def _get(qs: QuerySet[R], idlike: int | str | None, expressions: dict[str, Any]) -> R:
    model = qs.model
    if idlike is not None and expressions:
        raise InvalidArgument("get() takes an id/uid or field expressions, not both")
    if idlike is None and not expressions:
        raise InvalidArgument(f"{model.__name__}.get() needs an id, a uid or field expressions")
    versioned = gm.is_versioned(model._label)
    if isinstance(idlike, bool) or not isinstance(idlike, (int, str, type(None))):
        raise InvalidArgument(f"get() takes an int id or a str uid, not {type(idlike).__name__}")

    def narrowed(q: gq.Q) -> QuerySet[R]:  # keep the queryset's own conditions; any branch
        where = q if qs._select.where is None else qs._select.where & q
        return qs._clone(where=where, branch=None)

    if isinstance(idlike, int):
        qs = narrowed(gq.Q(id=idlike))
        return _one(qs, f"{model.__name__} with id {idlike}")
    if isinstance(idlike, str):
        if not idlike:  # a prefix of every uid: it would pick an arbitrary record
            raise InvalidArgument(f"{model.__name__}.get(''): the uid is empty")
        full = gm.uid_length(model._label) + (gids.VERSION_LENGTH if versioned else 0)
        if len(idlike) == full:
            qs = narrowed(gq.Q(uid=idlike))
            return _one(qs, f"{model.__name__} with uid {idlike!r}")
        if len(idlike) > full:
            raise DoesNotExist(
                f"no {model.__name__} with uid {idlike!r} (uids have {full} characters)"
            )
        qs = narrowed(gq.Q(uid__startswith=idlike))
        what = f"{model.__name__} with uid starting {idlike!r}"
    else:
        qs = qs.filter(**expressions)
        what = f"{model.__name__} matching {expressions}"
    if not versioned:
        return _one(qs, what)
    # Several versions of one family: the latest; several families: ambiguous.
    latest_first = dataclasses.replace(qs._select, order_by=("-is_latest", "-uid"))
    rows = gq.fetch(qs._inst().connection, latest_first)
    if not rows:
        raise DoesNotExist(f"no {what}")
    stem_len = gm.uid_length(model._label)
    stems = {r["uid"][:stem_len] for r in rows}
    if len(stems) > 1:
        raise MultipleResultsFound(
            f"{len(stems)} version families match: {what}; pass a longer uid or more fields"
        )
    return qs._record(rows[0])


def _one(qs: QuerySet[R], what: str) -> R:
    try:
        return qs.one()
    except DoesNotExist:
        raise DoesNotExist(f"no {what}") from None
    except MultipleResultsFound:
        raise MultipleResultsFound(f"more than one {what}") from None


_REGISTRIES: dict[str, type[Record]] = {}


def register(cls: type[Record]) -> type[Record]:
    """Class decorator: map a label to its registry class (for relation targets)."""
    _REGISTRIES[cls._label] = cls
    return cls


def registry_of(label: str) -> type[Record]:
    return _REGISTRIES[label]
