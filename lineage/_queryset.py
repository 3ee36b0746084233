"""QuerySet: what `filter()`, `all()`, `versions` and relations return.

A QuerySet is a description of a query (`graph.query.Select`) plus the record class to build
from its rows. Nothing runs until it is iterated, counted or converted; a fully iterated
QuerySet keeps its rows, like Django's.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Generic, TypeVar, overload

import pandas as pd

from graph import features as gf
from graph import ids as gids
from graph import models as gm
from graph import query as gq
from graph import records as gr
from lineage._instance import Instance, current, instance_named
from lineage._model import Model, require_saved
from lineage.errors import (
    DoesNotExist,
    FieldValidationError,
    InvalidArgument,
    InvalidType,
    MultipleResultsFound,
)

Q = gq.Q
# The record class a QuerySet builds: `ln.Artifact.filter(...)` is a QuerySet[Artifact].
R = TypeVar("R", bound=Model)
# lamindb adds its default branch condition (no trash) in each filter() call, except in one
# given any of these keywords: a record asked for by id, uid or hash is found in the trash too.
SEES_EVERY_BRANCH = frozenset({"id", "uid", "hash", "id__in", "uid__in", "hash__in"})


def _plain_value(value: Any) -> Any:
    """Records in lookups stand for their uid; lists of records for lists of uids."""
    if isinstance(value, Model):
        if value.uid is None or not value._saved:
            raise InvalidArgument(f"{value!r} is not saved; save it before using it in a query")
        return gq.Uid(value.uid)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain_value(v) for v in value]
    return value


def plain_q(q: Q) -> Q:
    """A copy of `q` whose record values are replaced by uids."""
    out = Q()
    out.connector, out.negated = q.connector, q.negated
    out.children = [
        plain_q(c) if isinstance(c, Q) else (c[0], _plain_value(c[1])) for c in q.children
    ]
    return out


def _lookup_heads(q: Q) -> set[str]:
    """The first part of every lookup in `q` (`temperature` of `temperature__gt`)."""
    heads: set[str] = set()
    for child in q.children:
        if isinstance(child, Q):
            heads |= _lookup_heads(child)
        elif isinstance(child[0], str):
            heads.add(child[0].split("__")[0])
    return heads


def with_features(instance: Callable[[], Instance], select: gq.Select) -> gq.Select:
    """`select` with the stored features its lookups name (a name that is no field or relation
    of the label); the query then filters by their values. Names no feature has stay unknown,
    and compiling the query says so."""
    label = select.label
    if select.where is None or label not in gf.HOST_LABELS:
        return select
    fields, relations = gm.fields_of(label), gm.relations_of(label)
    aliases = gm.aliases_of(label)
    names = {
        h
        for h in _lookup_heads(select.where)
        if h not in fields and h not in relations and h not in aliases
    }
    known = {f.name for f in select.features}
    if not names - known:
        return select
    refs = gf.feature_refs(instance().connection, names | known)
    return replace(select, features=tuple(refs[n] for n in sorted(refs)))


def combine(where: Q | None, queries: tuple[Q, ...], expressions: dict[str, Any]) -> Q | None:
    for q in queries:
        if not isinstance(q, Q):
            raise InvalidArgument(f"filter() takes Q objects and keywords, not {type(q).__name__}")
    if not queries and not expressions:
        return where
    new = plain_q(Q(*queries, **expressions))
    return new if where is None else where & new


class QuerySet(Generic[R]):
    """Records of one registry matching a query.

    >>> qs = ln.Artifact.filter(key__startswith="scrna/", suffix=".h5ad").order_by("key")
    >>> qs.count(), qs.first().key
    (3, 'scrna/sample1.h5ad')
    >>> [a.key for a in qs.exclude(key__endswith="3.h5ad")]
    ['scrna/sample1.h5ad', 'scrna/sample2.h5ad']
    >>> qs.df()[["key", "n_observations"]]
                       key  n_observations
    id
    2   scrna/sample1.h5ad               2
    3   scrna/sample2.h5ad               2
    4   scrna/sample3.h5ad               2
    """

    def __init__(self, model: type[R], select: gq.Select, instance: Instance | None = None) -> None:
        self.model = model
        self._select = select
        self._instance = instance
        self._rows: list[dict[str, Any]] | None = None
        # The branch a filter() call restricts its own conditions to (see SEES_EVERY_BRANCH);
        # None for queries that see every branch by design (a collection's members).
        self._default_branch = select.branch

    # -- plumbing ----------------------------------------------------------------------------
    def _inst(self) -> Instance:
        return self._instance or current()

    def _clone(self, **changes: Any) -> QuerySet[R]:
        return self._derived(
            type(self)(self.model, replace(self._select, **changes), self._instance)
        )

    def _derived(self, qs: QuerySet[R]) -> QuerySet[R]:
        """`qs`, made from this QuerySet, keeps its default branch."""
        qs._default_branch = self._default_branch
        return qs

    def _fetch_rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = gq.fetch(self._inst().connection, self._select)
        return self._rows

    def _record(self, row: dict[str, Any]) -> R:
        return self.model._from_row(row, self._instance)

    # -- building ----------------------------------------------------------------------------
    def filter(self, *queries: Q, **expressions: Any) -> QuerySet[R]:
        """Narrow the query: `qs.filter(key__startswith="raw/")`. As in lamindb, a call given
        `id`, `uid` or `hash` (or their `__in`) finds trashed records too.

        >>> label.delete()                              # in the trash
        >>> ln.ULabel.filter(name="my-label").count(), ln.ULabel.filter(uid=label.uid).count()
        (0, 1)
        """
        sel = self._select
        new = combine(None, queries, expressions)
        earlier, branch = sel.where, sel.branch
        if new is not None and SEES_EVERY_BRANCH & expressions.keys():
            # This call's conditions see every branch; earlier ones keep their default branch.
            if earlier is not None and branch is not None:
                earlier = earlier & Q(branch=branch)
            branch = None
        elif (
            new is not None
            and branch is None
            and self._default_branch is not None
            and not gq.mentions_branch(sel.label, new)
        ):  # after a call by uid: this call's own conditions keep the default branch
            new = new & Q(branch=self._default_branch)
        where = earlier if new is None else (new if earlier is None else earlier & new)
        qs = self._clone(where=where, branch=branch)
        qs._select = with_features(self._inst, qs._select)
        gq.compile_select(qs._select)  # unknown fields and bad lookups fail here, not later
        return qs

    def exclude(self, *queries: Q, **expressions: Any) -> QuerySet[R]:
        """Records not matching: `qs.exclude(suffix=".csv")`."""
        q = combine(None, queries, expressions)
        if q is None:
            return self
        where = ~q if self._select.where is None else self._select.where & ~q
        qs = self._clone(where=where)
        qs._select = with_features(self._inst, qs._select)
        gq.compile_select(qs._select)  # unknown fields fail here, as in filter()
        return qs

    def all(self) -> QuerySet[R]:
        return self._clone()

    def order_by(self, *fields: str) -> QuerySet[R]:
        """Order by fields, `-` for descending: `qs.order_by("-created_at")`."""
        qs = self._clone(order_by=tuple(fields))
        gq.compile_fetch(qs._select)  # unknown fields fail here, not when the query runs
        return qs

    def distinct(self) -> QuerySet[R]:
        return self._clone(distinct=True)

    def using(self, instance: str) -> QuerySet[R]:
        return self._derived(type(self)(self.model, self._select, instance_named(instance)))

    # -- evaluating --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[R]:
        return iter([self._record(r) for r in self._fetch_rows()])

    def __len__(self) -> int:
        return len(self._fetch_rows())

    def __bool__(self) -> bool:
        return self.exists()

    @overload
    def __getitem__(self, item: int) -> R: ...
    @overload
    def __getitem__(self, item: slice) -> QuerySet[R]: ...
    def __getitem__(self, item: int | slice) -> R | QuerySet[R]:
        sel = self._select
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise InvalidArgument("QuerySet slices take no step")
            start, stop = item.start or 0, item.stop
            if start < 0 or (stop is not None and stop < 0):
                raise InvalidArgument("QuerySet slices take no negative indices")
            offset = sel.offset + start
            limit = None if stop is None else max(stop - start, 0)
            if sel.limit is not None:
                limit = (
                    max(sel.limit - start, 0) if limit is None else min(limit, sel.limit - start)
                )
            return self._clone(offset=offset, limit=limit)
        if not isinstance(item, int):
            raise InvalidArgument(f"QuerySet indices are ints or slices, not {type(item).__name__}")
        if item < 0:
            rows = self._fetch_rows()
            if -item > len(rows):
                raise IndexError("QuerySet index out of range")
            return self._record(rows[item])
        rows = gq.fetch(self._inst().connection, replace(sel, offset=sel.offset + item, limit=1))
        if not rows or (sel.limit is not None and item >= sel.limit):
            raise IndexError("QuerySet index out of range")
        return self._record(rows[0])

    def __repr__(self) -> str:
        rows = gq.fetch(self._inst().connection, replace(self._select, limit=self._peek_limit()))
        shown = ", ".join(repr(self._record(r)) for r in rows[:20])
        more = ", ..." if len(rows) > 20 else ""
        return f"<QuerySet [{shown}{more}]>"

    def _peek_limit(self) -> int:
        return 21 if self._select.limit is None else min(self._select.limit, 21)

    def count(self) -> int:
        """Number of matching records, counted in Neo4j."""
        if self._rows is not None:
            return len(self._rows)
        return gq.count(self._inst().connection, self._select)

    def exists(self) -> bool:
        if self._rows is not None:
            return bool(self._rows)
        return gq.exists(self._inst().connection, self._select)

    def to_list(self) -> builtins.list[R]:
        """The records as a list: `qs.to_list()`."""
        return list(self)

    list = to_list  # lamindb's spelling

    def first(self) -> R | None:
        """The first record in order, or None."""
        rows = gq.fetch(self._inst().connection, replace(self._select, limit=1))
        return self._record(rows[0]) if rows else None

    def last(self) -> R | None:
        """The last record in order, or None."""
        if self._select.offset or self._select.limit is not None:
            rows = self._fetch_rows()
            return self._record(rows[-1]) if rows else None
        order = self._select.order_by or ("id",)
        flipped = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in order)
        if "id" not in {f.lstrip("-") for f in order}:
            flipped += ("-id",)
        rows = gq.fetch(self._inst().connection, replace(self._select, order_by=flipped, limit=1))
        return self._record(rows[0]) if rows else None

    def one(self) -> R:
        """The only record; `DoesNotExist` if none, `MultipleResultsFound` if several."""
        rows = gq.fetch(self._inst().connection, replace(self._select, limit=2))
        if not rows:
            raise DoesNotExist(f"no {self.model.__name__} matches {self._describe_where()}")
        if len(rows) > 1:
            raise MultipleResultsFound(
                f"more than one {self.model.__name__} matches {self._describe_where()}"
            )
        return self._record(rows[0])

    def get(self, idlike: int | str | None = None, **expressions: Any) -> R:
        """One record of this query by id, uid, uid prefix or fields (like `Registry.get`).

        >>> ln.Collection.using("shared").get(collection.uid[:8])     # a uid prefix
        Collection(uid='...', ..., key='scrna', ...)
        >>> ln.Artifact.filter(suffix=".h5ad").get(key="scrna/sample2.h5ad") == artifact2
        True
        """
        return get_one(self, idlike, expressions)

    def one_or_none(self) -> R | None:
        """The only record or None; `MultipleResultsFound` if several."""
        try:
            return self.one()
        except DoesNotExist:
            return None

    def _describe_where(self) -> str:
        return repr(self._select.where) if self._select.where is not None else "the query"

    def df(
        self,
        include: str | builtins.list[str] | None = None,
        features: bool | builtins.list[str] = False,
        limit: int | None = 100,
    ) -> pd.DataFrame:
        """The records as a DataFrame indexed by id; `include` adds related fields.

        >>> artifact1.ulabels.add(label)
        >>> qs = ln.Artifact.filter(suffix=".h5ad")
        >>> qs.df(include=["created_by__name", "ulabels__name"])[["key", "ulabels__name"]]
                           key ulabels__name
        id
        2   scrna/sample1.h5ad    [my-label]
        3   scrna/sample2.h5ad            []
        4   scrna/sample3.h5ad            []
        """
        includes = [include] if isinstance(include, str) else list(include or [])
        sel = self._select
        if limit is not None:
            limit = limit if sel.limit is None else min(limit, sel.limit)
            sel = replace(sel, limit=limit)
        if not (features is False or features is True or isinstance(features, (list, tuple))):
            raise InvalidArgument(
                f"df(features=...) takes True or a list of feature names, not {features!r}"
            )
        wanted = features if isinstance(features, bool) else [str(f) for f in features]
        # One query reads the records by column, and their feature values with them.
        columns, values = gq.fetch_columns(
            self._inst().connection,
            sel,
            self.model._frame_fields(),
            include=includes,
            features=wanted,
        )
        return self.model._frame(columns, includes, values)

    def lookup(self, field: str | None = None, return_field: str | None = None) -> Lookup:
        """Auto-complete object: attribute access by normalised field value.

        >>> labels = ln.ULabel.filter(name__startswith="t").lookup()
        >>> labels.tissue
        ULabel(uid='...', ..., name='tissue')
        """
        return Lookup.build(self, field, return_field)

    def search(
        self,
        string: str,
        *,
        field: str | builtins.list[str] | None = None,
        limit: int | None = 20,
        case_sensitive: bool = False,
    ) -> SearchResult:
        """Records ranked by how well a field matches `string`; `.df()` has a `score` column.

        >>> ln.Artifact.filter(suffix=".h5ad").search("sample2").df()[["key", "score"]]
                           key  score
        id
        3   scrna/sample2.h5ad   21.0
        """
        if not isinstance(string, str):
            raise InvalidArgument(f"search() takes a string, not {type(string).__name__}")
        fields = [field] if isinstance(field, str) else field
        hits = gq.search(
            self._inst().connection,
            self._select.label,
            string,
            fields=fields,
            limit=limit,
            case_sensitive=case_sensitive,
            branch=self._select.branch,
            where=self._select.where,
        )
        return SearchResult(
            self.model, [(self._record(r), s) for r, s in hits], [r for r, _ in hits]
        )

    def delete(self, permanent: bool | None = None) -> None:
        """Delete every matching record (to the trash first, like `record.delete()`)."""
        for record in self.to_list():
            record.delete(permanent=permanent)

    def update(self, **fields: Any) -> int:
        """Set fields on every matching record in one transaction (Django's and lamindb's
        bulk update); returns how many records were updated. Names and values are checked as
        setting them on a record would check them; fields lineage maintains (uid, id, hash,
        created_at, ...) are refused. `updated_at` is set.

        >>> ln.Artifact.filter(key__startswith="scrna/").update(description="single-cell")
        3
        >>> ln.Artifact.get(key="scrna/sample2.h5ad").description
        'single-cell'
        """
        if not fields:
            raise InvalidArgument("update() needs fields to set, e.g. update(description='...')")
        if self._select.offset or self._select.limit is not None:
            raise InvalidArgument("update() cannot update a sliced QuerySet; filter it instead")
        props, replace_edges = self.model._validated_changes(fields)
        updated = gr.update_selected(
            self._inst().connection, self._select, props, replace=replace_edges
        )
        self._rows = None
        return updated

    # -- data of artifact querysets (the loaders) --------------------------------------------
    def load(self, join: str = "outer", is_run_input: bool | None = None, **kwargs: Any) -> Any:
        """Cache the matching artifacts and concatenate them in the QuerySet's order: a
        DataFrame for tables, an AnnData (source uid in `obs["artifact_uid"]`) for `.h5ad`.
        The artifacts are recorded as inputs of the tracked run, only if loading works.

        >>> adata = ln.Artifact.filter(key__startswith="scrna/").order_by("key").load()
        >>> adata.shape, adata.obs_names[:3].tolist()
        ((6, 4), ['s1_cell0', 's1_cell3', 's2_cell1'])
        """
        return self.model._load_queryset(
            self, "load()", join=join, is_run_input=is_run_input, **kwargs
        )

    def mapped(self, is_run_input: bool | None = None, **options: Any) -> Any:
        """A PyTorch map-style dataset over the matching `.h5ad` and AnnData `.zarr` artifacts,
        in the QuerySet's order (`loaders.MappedCollection`; `options` as for
        `Collection.mapped`).

        >>> mapped = ln.Artifact.filter(suffix=".h5ad").order_by("key").mapped(obs_keys="cell_type")
        >>> len(mapped), sorted(mapped[0])
        (6, ['X', '_store_idx', 'cell_type'])
        """
        return self.model._load_queryset(self, "mapped()", is_run_input=is_run_input, **options)


class RelatedQuerySet(QuerySet[R]):
    """A many-relation of one record: a QuerySet plus `add`, `remove` and `set`.

    >>> artifact.ulabels.add(ln.ULabel.get(name="tissue"))
    >>> artifact.ulabels.add(label)
    >>> sorted(u.name for u in artifact.ulabels)
    ['my-label', 'tissue']
    >>> artifact.ulabels.remove(label)
    >>> [u.name for u in artifact.ulabels]
    ['tissue']
    """

    def __init__(
        self,
        model: type[R],
        select: gq.Select,
        instance: Instance | None,
        owner: Model,
        relation: str,
    ) -> None:
        super().__init__(model, select, instance)
        self._owner = owner
        self._relation = relation

    def _clone(self, **changes: Any) -> QuerySet[R]:
        return self._derived(QuerySet(self.model, replace(self._select, **changes), self._instance))

    def add(self, *records: Model) -> None:
        """Link records: `artifact.ulabels.add(label)`."""
        self._change("add", records)

    def remove(self, *records: Model) -> None:
        """Unlink records (they stay in their registry)."""
        self._change("remove", records)

    def set(self, records: builtins.list[Model]) -> None:
        """Replace the linked records with exactly these."""
        self._change("replace", tuple(records))

    def _change(self, how: str, records: tuple[Any, ...]) -> None:
        flat = (
            list(records[0])
            if len(records) == 1 and isinstance(records[0], (list, tuple))
            else list(records)
        )
        owner, relation = self._owner, self._relation
        for r in flat:
            if not isinstance(r, self.model):
                raise InvalidType(
                    f"{owner._label}.{relation} takes {self.model.__name__} records, "
                    f"not {type(r).__name__}"
                )
            require_saved(r, f"{owner._label}.{relation}.{how}()")
        edge = gr.EdgeSpec(relation, [r.uid for r in flat])
        gr.update_record(owner._inst().connection, owner._label, owner.uid, {}, **{how: [edge]})
        self._rows = None


class SearchResult:
    """Search hits in rank order: iterate records, `.df()` for a table with `score`."""

    def __init__(self, model: type[Model], hits: list[tuple[Model, float]], rows: list[dict]):
        self.model = model
        self.hits = hits
        self._rows = rows

    def __iter__(self) -> Iterator[Model]:
        return iter([r for r, _ in self.hits])

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Model:
        return self.hits[i][0]

    def first(self) -> Model | None:
        return self.hits[0][0] if self.hits else None

    def count(self) -> int:
        return len(self.hits)

    def exists(self) -> bool:
        return bool(self.hits)

    def to_list(self) -> list[Model]:
        return [r for r, _ in self.hits]

    list = to_list

    def df(self) -> pd.DataFrame:
        fields = self.model._frame_fields()
        frame = self.model._frame({f: [r.get(f) for r in self._rows] for f in fields}, [])
        frame["score"] = [float(s) for _, s in self.hits]
        return frame

    def __repr__(self) -> str:
        return f"<SearchResult {[(r.uid, s) for r, s in self.hits]}>"


def to_attribute(value: str) -> str:
    """A field value as a Python attribute name: lower case, other characters as `_`."""
    name = re.sub(r"\W", "_", value.strip().lower())
    return f"_{name}" if not name or name[0].isdigit() else name


class Lookup:
    """Attribute access to records by a field's values; `.dict()` maps raw values."""

    def __init__(self, items: dict[str, Any], field: str) -> None:
        self._items = items
        self._field = field
        for value, target in items.items():
            object.__setattr__(self, to_attribute(value), target)

    @classmethod
    def build(cls, qs: QuerySet, field: str | None, return_field: str | None) -> Lookup:
        model = qs.model
        field = field or model._lookup_field()
        for name in (field, return_field):
            if name is not None and name not in model._fields():
                raise FieldValidationError(
                    f"{model.__name__} has no field {name!r}; fields: {', '.join(sorted(model._fields()))}"
                )
        items: dict[str, Any] = {}
        for record in qs.order_by(field):
            value = getattr(record, field)
            if value is None:
                continue
            target = getattr(record, return_field) if return_field else record
            key = str(value)
            if key in items:  # several records share the value: keep them all
                prev = items[key]
                items[key] = (prev if isinstance(prev, list) else [prev]) + [target]
            else:
                items[key] = target
        return cls(items, field)

    def dict(self) -> dict[str, Any]:
        return dict(self._items)

    def __getitem__(self, value: str) -> Any:
        return self._items[value]

    def __dir__(self) -> list[str]:
        return sorted(to_attribute(v) for v in self._items)

    def __repr__(self) -> str:
        return f"Lookup({self._field}: {len(self._items)} values)"


def get_one(qs: QuerySet[R], idlike: int | str | None, expressions: dict[str, Any]) -> R:
    """`Registry.get` and `QuerySet.get`: one record by id, uid, uid prefix or fields."""
    model = qs.model
    expressions = dict(expressions)
    by_path = "path" in expressions and "path" not in model._fields()
    path = expressions.pop("path") if by_path else None
    if idlike is not None and (expressions or by_path):
        raise InvalidArgument("get() takes an id/uid or field expressions, not both")
    if idlike is None and not expressions and not by_path:
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
        what = f"{model.__name__} matching {expressions}"
        if by_path:
            qs, where = model._with_path(qs, path)
            what = f"{model.__name__} with path {where!r}" + (
                f" matching {expressions}" if expressions else ""
            )
        if versioned and expressions.get("is_latest") is True:
            rest = {k: v for k, v in expressions.items() if k != "is_latest"}
            latest = _latest_rows(qs.filter(**rest) if rest else qs)
            if latest is not None:
                if len(latest) > 1:
                    raise MultipleResultsFound(f"more than one {what}")
                if not latest:
                    raise DoesNotExist(f"no {what}")
                return qs._record(latest[0])
        qs = qs.filter(**expressions)
        # lamindb adds `is_latest=True` unless the lookups name it (then it is a plain get).
        if versioned and "is_latest" not in expressions:
            return _latest_or_newest(qs, what)
        return _one(qs, what)
    if not versioned:
        return _one(qs, what)
    # A uid prefix: several versions of one family give the latest; several families: ambiguous.
    latest_first = dataclasses.replace(qs._select, order_by=("-is_latest", "-uid"))
    rows = gq.fetch(qs._inst().connection, latest_first)
    if not rows:
        raise DoesNotExist(f"no {what}")
    stem_len = gm.uid_length(model._label)
    stems = {r["uid"][:stem_len] for r in rows}
    if len(stems) > 1:
        raise MultipleResultsFound(
            f"{len(stems)} version families match: {what}; pass a longer uid"
        )
    return qs._record(rows[0])


def _latest_rows(qs: QuerySet[Any]) -> list[dict[str, Any]] | None:
    """The latest versions (main branch) among the records `qs` selects, read so that a new
    version another process is committing meanwhile never makes a family disappear: the
    matching versions first, then each family's newest main-branch member by its uid
    (`graph.query.family_heads`), which is its `is_latest` one. A family's answer is its head
    when the head matches the query, else none (the family moved on to another key): never
    the old head's cleared flag seen without the new head. None when `qs` names a branch (then
    the plain `is_latest` condition is used)."""
    sel = qs._select
    if sel.branch != 1 or (sel.where is not None and gq.mentions_branch(sel.label, sel.where)):
        return None
    conn = qs._inst().connection
    stem_len = gm.uid_length(sel.label)
    newest: dict[str, dict[str, Any]] = {}
    for row in gq.fetch(conn, replace(sel, order_by=(), offset=0, limit=None)):
        stem = row["uid"][:stem_len]
        if stem not in newest or row["uid"] > newest[stem]["uid"]:
            newest[stem] = row
    if not newest:
        return []
    heads = gq.family_heads(conn, sel.label, list(newest))
    out, unseen = [], []
    for stem, row in newest.items():
        head = max(heads.get(stem, ""), row["uid"])
        if head == row["uid"]:
            out.append(row)
        else:  # committed after the first read, or the family moved on: ask the head itself
            unseen.append(head)
    if unseen:
        where = gq.Q(uid__in=unseen) if sel.where is None else sel.where & gq.Q(uid__in=unseen)
        out += gq.fetch(conn, replace(sel, where=where, order_by=(), offset=0, limit=None))
    return sorted(out, key=lambda r: r["uid"])


def _latest_or_newest(qs: QuerySet[R], what: str) -> R:
    """lamindb's `get(**fields)` on a versioned registry: the one latest version that matches
    (`MultipleResultsFound` if several families' latest versions do), else the newest match."""
    rows = _latest_rows(qs)
    latest = (
        rows
        if rows is not None
        else gq.fetch(qs._inst().connection, replace(qs.filter(is_latest=True)._select, limit=2))
    )
    if len(latest) > 1:
        raise MultipleResultsFound(
            f"more than one {what} (the latest versions of several version families); "
            "pass more fields"
        )
    if latest:
        return qs._record(latest[0])
    newest = qs.order_by("-created_at", "-id").first()
    if newest is None:
        raise DoesNotExist(f"no {what}")
    return newest


def _one(qs: QuerySet[R], what: str) -> R:
    try:
        return qs.one()
    except DoesNotExist:
        raise DoesNotExist(f"no {what}") from None
    except MultipleResultsFound:
        raise MultipleResultsFound(f"more than one {what}") from None
