"""Record: the base of every registry — class queries, relations, save, delete and restore.

Values, identity and the registry map live in `lineage._model` (below the QuerySet); this module
adds what needs QuerySets. Many-relations (`collection.artifacts`, `run.input_artifacts`) are
QuerySets anchored at the record, so they always show what is in the graph now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self

import pandas as pd

from graph import ids as gids
from graph import models as gm
from graph import query as gq
from graph import records as gr
from lineage._compat import DjangoCompat
from lineage._describe import describe
from lineage._instance import Instance, instance_named
from lineage._model import registry_of, require_saved
from lineage._queryset import QuerySet, RelatedQuerySet, get_one
from lineage._user import current_user
from lineage.errors import DoesNotExist, InvalidArgument

logger = logging.getLogger("lineage")


class Record(DjangoCompat):
    """A record of one registry. Subclasses set `_label` to their Neo4j label.

    >>> ln.ULabel(name="batch-7").save().name
    'batch-7'
    """

    # -- relations ---------------------------------------------------------------------------
    def _related(
        self, name: str, branch: int | None = 1, through: str | None = None
    ) -> RelatedQuerySet[Any]:
        """The records along relation `name`; with `through`, also those the records along
        that relation reach by `name` (`gq.Anchor.through`), each once. `add`/`remove`/`set`
        change this record's own edges."""
        rel = self._relations()[name]
        if not self._saved:
            raise InvalidArgument(
                f"{type(self).__name__}.{name} is only known once the record is saved"
            )
        model = registry_of(rel.target)
        anchor = gq.Anchor(self._label, self.uid, name, through=through)
        # Edges that carry properties may join the same two records more than once (a label
        # that is the value of two features: one LABELED_WITH {feature} each), and a relation
        # followed `through` another reaches a record once per path; a relation lists each
        # record once.
        distinct = through is not None or bool(gm.edge_fields_of(self._label, name))
        select = gq.Select(rel.target, anchor=anchor, branch=branch, distinct=distinct)
        return RelatedQuerySet(model, select, self._instance, owner=self, relation=name)

    # -- writing ---------------------------------------------------------------------------------
    def _default_edges(self) -> None:
        """Fill `created_by` (and, for data, the current run) before a first save."""
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
            if gm.is_versioned(self._label):
                row = gr.create_record(
                    conn,
                    self._label,
                    self._new_record(),
                    stem=self._stem(),
                    new_family=self._new_family(),
                    # Artifacts and collections: a concurrent save of the same content wins,
                    # `Versioned.save` takes its record (`DuplicateContent`).
                    unique_hash=getattr(self, "_unique_content", False),
                )
            else:
                record = self._new_record()
                record.props.setdefault("uid", gids.base62(gm.uid_length(self._label)))
                row = gr.create_record(conn, self._label, record)
            self._load(row)
            return self
        if self._dirty:
            self._write_changes()
        return self

    def _write_changes(self, before_update: Callable[[], None] | None = None) -> None:
        """Write a saved record's changed fields and to-one edges in one transaction;
        `before_update()` runs inside it, with the node locked (see `gr.update_with_file`)."""
        props, replace = self._changes()
        add = self._added_edges()
        conn = self._inst().connection
        if before_update is None:
            row = gr.update_record(conn, self._label, self.uid, props, replace=replace, add=add)
        else:
            row = gr.update_with_file(
                conn, self._label, self.uid, props, before_update, replace=replace, add=add
            )
        self._load(row)

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
            gr.delete_record(
                conn,
                self._label,
                self.uid,
                guards=self._guards(permanent=True),
                cascade=self._deleted_with,
                also=self._deleted_also,
            )
            object.__setattr__(self, "_saved", False)
            return
        gr.trash_record(conn, self._label, self.uid, guards=self._guards(permanent=False))
        self._refresh()

    # Relations whose records are deleted with this one (a transform's runs).
    _deleted_with: tuple[str, ...] = ()
    # What else a permanent delete removes in its transaction (a feature's values).
    _deleted_also: tuple[gr.AlsoDeleted, ...] = ()

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        """What refuses a trash (`permanent=False`) or a permanent delete while other records
        depend on this one, checked in the deleting transaction; none by default."""
        return []

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
        return get_one(cls._queryset(), idlike, expressions)

    @classmethod
    def df(
        cls,
        include: str | list[str] | None = None,
        features: bool | list[str] = False,
        limit: int = 100,
    ) -> pd.DataFrame:
        """The registry as a DataFrame: direct fields (not updated_at), `include` related ones.

        >>> ln.ULabel.df(include="created_by__name")[["name", "created_by__name"]]
                name created_by__name
        id
        1   my-label              ...
        2     tissue              ...
        """
        return cls._queryset().df(include=include, features=features, limit=limit)

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
        return cls._queryset(instance_named(instance))

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
        describe(self, print_types=print_types)
