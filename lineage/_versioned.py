"""What artifacts, collections and transforms share: version families.

A family is the set of records whose uids share a stem (`stem_uid`); `(new)-[:REVISES]->(old)`
links each new version to the one it revises. The version counter is taken inside the writing
transaction (`graph.records.create_record`), so concurrent writers never produce the same uid and
a family keeps exactly one `is_latest` record in the main branch.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from graph import ids as gids
from graph import models as gm
from graph import query as gq
from lineage._model import require_saved
from lineage._queryset import QuerySet
from lineage._record import Record
from lineage.errors import DuplicateContent, InvalidArgument, InvalidType

logger = logging.getLogger("lineage")


class VersionedRecord(Record):
    """The base of registries with version families: artifacts, collections, transforms."""

    # Saving content that is already stored returns the stored record (artifacts and
    # collections; a transform is reused by key and source, not by hash alone).
    _unique_content = False
    # Stored fields are read through Record.__getattr__; a family's key and version tag are
    # declared for the type checker (annotations only: no class attribute shadows the value).
    key: str | None
    version: str | None

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
    def _stored_with_hash(cls, hash_: str, revises: VersionedRecord | None) -> Self | None:
        """The stored record with this content hash (not trashed); with `revises`, only one of
        that family counts: the same content as a new version of another family is a new
        record."""
        where = gq.Q(hash=hash_) & ~gq.Q(branch=-1)
        if revises is not None:
            where &= gq.Q(uid__startswith=revises.stem_uid)
        return cls._queryset()._clone(where=where, branch=None).order_by("id").first()

    def _new_family(self) -> bool:
        """Without `revises`, the stem was drawn at random for this record: nobody shares it."""
        return self._to_one.get("revises") is None

    def _after_first_save(self) -> None:
        revises = self._to_one.get("revises")
        if revises is not None:
            revises._values["is_latest"] = False

    def save(self) -> Self:
        first = not self._saved
        try:
            super().save()
        except DuplicateContent as dup:
            self._become_stored(dup)
            return self
        if first:
            self._after_first_save()
        return self

    def _become_stored(self, dup: DuplicateContent) -> None:
        """Another process saved the same content between this record's duplicate lookup and
        its write: nothing was written, so become that record, as the lookup would have."""
        row = dup.existing[self._values["hash"]]
        logger.warning(
            "returning existing %s with same hash: %s (key=%r; saved meanwhile by another process)",
            self._label.lower(),
            row["uid"],
            row.get("key"),
        )
        self._load(row)
        self._to_one.clear()  # run, creator, storage, revises: the stored record's, read lazily
