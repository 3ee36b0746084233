"""What artifacts, collections and transforms share: version families.

A family is the set of records whose uids share a stem (`stem_uid`); `(new)-[:REVISES]->(old)`
links each new version to the one it revises. The version counter is taken inside the writing
transaction (`graph.records.create_record`), so concurrent writers never produce the same uid and
a family keeps exactly one `is_latest` record in the main branch.

As in lamindb, a key names a family: an artifact or collection made without `revises=` under a
key a stored family has becomes that family's new version (`revises` is inferred as its head,
and refreshed to the head at save time). One made under a new key starts a family, and its
write checks, under the label's lock, that no other writer started one under that key
meanwhile (`graph.records.FamilyExists`); if one did, it is saved as that family's new version.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from graph import ids as gids
from graph import models as gm
from graph import query as gq
from graph import records as gr
from lineage._model import require_saved
from lineage._queryset import QuerySet
from lineage._record import Record
from lineage.errors import DuplicateContent, FamilyExists, InvalidArgument, InvalidType

logger = logging.getLogger("lineage")


class VersionedRecord(Record):
    """The base of registries with version families: artifacts, collections, transforms."""

    # Saving content that is already stored returns the stored record (artifacts and
    # collections; a transform is reused by key and source, not by hash alone).
    _unique_content = False
    # Stored fields are read through Record.__getattr__; key, description and version tag are
    # declared for the type checker (annotations only: no class attribute shadows the value).
    key: str | None
    description: str | None
    version: str | None
    # Set by constructors: a new family named by its key (checked again when written), and a
    # `revises` found by key rather than passed (moved to the family's head when written).
    _by_key = False
    _revises_inferred = False

    @classmethod
    def _check_revises(cls, revises: Any) -> None:
        """`revises=` is a saved record of this registry (checked before any other work)."""
        if revises is None:
            return
        if not isinstance(revises, cls):
            raise InvalidType(
                f"{cls.__name__}(revises=...) takes a {cls.__name__}, not "
                f"{type(revises).__name__}: a version family holds records of one registry"
            )
        require_saved(revises, "revises=")

    def _set_revises(self, revises: Any) -> None:
        if revises is None:
            return
        self._check_revises(revises)
        self._to_one["revises"] = revises
        self._dirty.add("revises")

    def _start_family(self) -> None:
        """A record that revises nothing is the first version of a new family."""
        self._values["uid"] = self._stem() + gids.FIRST_VERSION

    @property
    def stem_uid(self) -> str | None:
        """Universal id of the version family: the uid without its 4-character counter.

        >>> artifact.stem_uid == artifact.uid[:16]
        True
        """
        uid = self._values.get("uid")
        return uid[: gm.uid_length(self._label)] if uid else None

    @property
    def versions(self) -> QuerySet[Self]:
        """Every record of the same version family (main branch), oldest first.

        >>> df2.to_csv("counts.csv", index=False)       # the file changed
        >>> v2 = ln.Artifact("counts.csv", revises=artifact).save()
        >>> [(a.key, a.uid[-4:], a.is_latest) for a in v2.versions]
        [('raw/counts.csv', '0000', False), ('raw/counts.csv', '0001', True)]
        """
        if self.stem_uid is None:
            raise InvalidArgument(f"{self!r} has no uid yet")
        select = gq.Select(
            self._label, where=gq.Q(uid__startswith=self.stem_uid), order_by=("uid",)
        )
        return QuerySet(type(self), select, self._instance)

    def _stem(self) -> str:
        revises = self._to_one.get("revises")
        if revises is not None:
            return revises.stem_uid
        uid = self._values.get("uid")
        if uid:
            return uid[: gm.uid_length(self._label)]
        return gids.base62(gm.uid_length(self._label))

    @classmethod
    def _stored_for(
        cls,
        hash_: str | None,
        revises: VersionedRecord | None,
        family: dict[str, Any] | None = None,
    ) -> tuple[Self | None, Self | None]:
        """What a new record is already, or continues, in one query (not trashed records only).

        First: the stored record with content hash `hash_` (None: not looked up); with
        `revises`, only one of that family counts: the same content as a new version of another
        family is a new record. Second: the head of the family whose fields equal `family`
        (lookup paths such as `{"key": k, "storage__root": r}`; None: not looked up): its
        latest version in the main branch, else the newest latest version elsewhere. (Older
        versions under that key whose family moved on to another key name no family: lamindb
        refuses the key then, lineage starts a new family.)
        """
        wheres = []
        if hash_ is not None:
            same = gq.Q(hash=hash_)
            if revises is not None:
                same &= gq.Q(uid__startswith=revises.stem_uid)
            wheres.append(same)
        # Only own fields go into the query, so Neo4j seeks the key's index: a related path
        # (`storage__root`) made it start from the Storage node and walk all its artifacts, and
        # `is_latest` made it seek that index (half of all nodes). Both are compared below.
        related = [path for path in family or {} if "__" in path]
        if family:
            wheres.append(gq.Q(**{k: v for k, v in family.items() if k not in related}))
        if not wheres:
            return None, None
        where = wheres[0] if len(wheres) == 1 else wheres[0] | wheres[1]
        qs = cls._queryset()
        select = gq.Select(
            cls._label, where=where & ~gq.Q(branch=-1), order_by=("id",), branch=None
        )
        rows = gq.fetch(qs._inst().connection, select, include=related)
        stem = revises.stem_uid if revises is not None else ""
        same_rows = [r for r in rows if r["hash"] == hash_ and r["uid"].startswith(stem)]
        heads = [
            r
            for r in rows
            if family and r["is_latest"] and all(r.get(k) == v for k, v in family.items())
        ]
        heads.sort(key=lambda r: (r["branch"] == 1, r["created_at"], r["id"]), reverse=True)
        return (
            qs._record(same_rows[0]) if hash_ is not None and same_rows else None,
            qs._record(heads[0]) if heads else None,
        )

    def _infer_revises(self, head: VersionedRecord) -> None:
        """Become the next version of `head`'s family, found by key (as lamindb does)."""
        logger.info(
            "creating a new version of %s %r (revises %s)", self._label.lower(), head.key, head.uid
        )
        self._set_revises(head)
        object.__setattr__(self, "_revises_inferred", True)

    def _refresh_revises(self) -> None:
        """Just before a version found by key is written: revise the family's head now, which
        another save may have moved on since (lamindb does the same; the version counter is
        taken in the write anyway)."""
        revises = self._to_one.get("revises")
        if not self._revises_inferred or revises is None:
            return
        qs = type(self)._queryset(self._instance)
        head = qs.filter(uid__startswith=revises.stem_uid, is_latest=True).first()
        if head is not None and head.uid != revises.uid:
            logger.warning("`revises` was not the latest version; it is now the head: %s", head.uid)
            self._to_one["revises"] = head

    def _join_family(self, head_row: dict[str, Any]) -> None:
        """Another writer started a family under this record's key meanwhile
        (`FamilyExists`): be that family's next version instead of a second family."""
        head = type(self)._from_row(head_row, self._instance)
        logger.warning(
            "%s key %r: a version family with this key was saved meanwhile (%s); "
            "saving this one as its new version",
            self._label.lower(),
            head.key,
            head.stem_uid,
        )
        self._values.pop("uid", None)  # a new version's uid is taken when it is written
        self._to_one.pop("revises", None)
        object.__setattr__(self, "_by_key", False)
        self._infer_revises(head)

    def _family_names(self) -> tuple[str, ...]:
        """What names this record's family in the graph, if its write must check that no
        other writer started a family under it meanwhile (`NewRecord.family`)."""
        return ("key",) if self._by_key and self._to_one.get("revises") is None else ()

    def _same_content(self) -> tuple[str, ...]:
        """What a stored record must share besides the hash to be this one (`same_content`)."""
        return ()

    def _new_record(self) -> gr.NewRecord:
        record = super()._new_record()
        record.same_content = self._same_content()
        record.family = self._family_names()
        return record

    def _new_family(self) -> bool:
        """Without `revises`, the stem was drawn at random for this record: nobody shares it."""
        return self._to_one.get("revises") is None

    def _after_first_save(self) -> None:
        revises = self._to_one.get("revises")
        if revises is not None:
            revises._values["is_latest"] = False

    def save(self) -> Self:
        first = not self._saved
        if first:
            self._refresh_revises()
        try:
            super().save()
        except DuplicateContent as dup:
            self._become_stored(only_row(dup))
            return self
        except FamilyExists as exists:
            self._join_family(only_row(exists))
            return self.save()
        if first:
            self._after_first_save()
        return self

    def _become_stored(self, row: dict[str, Any]) -> None:
        """Another process saved the same content between this record's duplicate lookup and
        its write, or the record skipped that lookup (`DuplicateContent`, whose stored `row`
        this is): nothing was written, so become that record, as the lookup would have."""
        logger.warning(
            "returning existing %s with same content: %s (key=%r; found when saving)",
            self._label.lower(),
            row["uid"],
            row.get("key"),
        )
        self._load(row)
        self._to_one.clear()  # run, creator, storage, revises: the stored record's, read lazily


def only_row(error: DuplicateContent | FamilyExists) -> dict[str, Any]:
    """The stored record named by an error from a one-record write."""
    (row,) = error.existing.values()
    return row
