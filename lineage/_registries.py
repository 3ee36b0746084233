"""The small registries: users, spaces, labels, projects, references, storage roots; and the
process's cache of Storage records, which `Storage.delete` keeps true."""

from __future__ import annotations

import logging
import time
from typing import Any

import loaders
from graph import ids as gids
from graph import models as gm
from graph import records as gr
from lineage._instance import Instance, current
from lineage._model import register
from lineage._record import Record
from lineage._settings import settings
from lineage._user import current_user
from lineage.errors import InvalidArgument

logger = logging.getLogger("lineage")


@register
class User(Record):
    """A person or service account; records point at their creator with `created_by`.

    >>> ln.User(handle="alice", name="Alice Smith").save()
    User(uid='...', ..., name='Alice Smith', handle='alice')
    >>> ln.User.get(handle="alice").name
    'Alice Smith'
    >>> artifact.created_by.handle == ln.settings.user   # who saved it
    True
    """

    _label = "User"

    def __init__(self, handle: str | None = None, name: str | None = None, **fields: Any) -> None:
        super().__init__(handle=handle, name=name, **fields)


@register
class Space(Record):
    """An access space records can live in (`record.space`).

    >>> space = ln.Space(name="team-a").save()
    >>> artifact.space = space
    >>> artifact.save().space.name
    'team-a'
    """

    _label = "Space"

    def __init__(self, name: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(name=name, description=description, **fields)


@register
class ULabel(Record):
    """A free-text label for artifacts and collections.

    >>> liver = ln.ULabel(name="liver").save()
    >>> artifact.ulabels.add(liver)
    >>> [u.name for u in artifact.ulabels], [a.key for a in liver.artifacts]
    (['liver'], ['raw/counts.csv'])
    """

    _label = "ULabel"

    def __init__(self, name: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(name=name, description=description, **fields)


@register
class Project(Record):
    """A project artifacts and collections belong to.

    >>> project = ln.Project(name="atlas").save()
    >>> collection.projects.add(project)
    >>> [c.key for c in project.collections]
    ['scrna']
    """

    _label = "Project"

    def __init__(self, name: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(name=name, description=description, **fields)


@register
class Reference(Record):
    """A publication or external resource: `url`, `doi`.

    >>> ln.Reference(name="Smith 2024", doi="10.1000/xyz").save()
    Reference(uid='...', ..., name='Smith 2024', doi='10.1000/xyz')
    """

    _label = "Reference"

    def __init__(
        self,
        name: str | None = None,
        url: str | None = None,
        doi: str | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(name=name, url=url, doi=doi, description=description, **fields)


@register
class Storage(Record):
    """A storage root (local directory or `s3://bucket/prefix`) artifacts are `STORED_IN`.

    >>> artifact.storage.root == ln.settings.storage
    True
    >>> ln.Storage.filter(root__startswith="s3://").count()
    0
    """

    _label = "Storage"

    def __init__(self, root: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(root=root, description=description, **fields)

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        """A storage root that holds artifacts is neither trashed nor deleted (lamindb refuses
        too): the artifacts would lose where their files are."""

        def refuse(artifacts: int) -> None:
            raise InvalidArgument(
                f"storage {self.root!r} ({self.uid}) is used by {artifacts} artifact(s), trashed "
                "ones included; delete those permanently first, or keep the storage"
            )

        return [gr.Guard("artifacts", refuse)]

    def delete(self, permanent: bool | None = None) -> None:
        """Move to the trash, or with `permanent=True` (or a second delete) remove for good;
        refused while any artifact is stored in it.

        >>> ln.Storage(root="/data/old-root").save().delete(permanent=True)   # unused: fine
        >>> artifact.storage.delete()
        Traceback (most recent call last):
        lineage.errors.InvalidArgument: storage '...' (...) is used by ... artifact(s), ...
        """
        connection = self._inst().connection
        super().delete(permanent=permanent)
        forget_storage(connection, self.root)


# -- the process's Storage records ----------------------------------------------------------------
_ROOTS_TTL = 5.0  # seconds a process trusts its list of registered roots
_roots_cache: dict[Any, tuple[float, list[str]]] = {}
_storage_cache: dict[tuple[Any, str], Storage] = {}


def registered_root_of(path: str) -> str | None:
    """The registered storage root a path or URI lies under, if any (the longest)."""
    if loaders.is_under(path, settings.storage):
        return settings.storage
    key = current().connection
    stamp, roots = _roots_cache.get(key, (0.0, []))
    if time.monotonic() - stamp > _ROOTS_TTL:
        roots = [s.root for s in Storage.filter(root__isnull=False)]
        _roots_cache[key] = (time.monotonic(), roots)
    remote = loaders.is_remote(path)
    inside = [r for r in roots if loaders.is_remote(r) == remote and loaders.is_under(path, r)]
    return max(inside, key=len, default=None)


def storage_record(root: str, instance: Instance) -> Storage:
    """The Storage node of a root, created on first use (once per process and instance). A
    storage in the trash is restored: artifacts are stored in it again."""
    key = (instance.connection, root)
    if key not in _storage_cache:
        creator = current_user(instance)
        row, _ = gr.merge_record(
            instance.connection,
            "Storage",
            "root",
            root,
            {"uid": gids.base62(gm.uid_length("Storage"))},
            edges=[gr.EdgeSpec("created_by", [creator.uid])],
        )
        if row.get("branch") == -1:
            logger.warning("storage %r was in the trash; restored to store artifacts in it", root)
            gr.restore_record(instance.connection, "Storage", row["uid"])
            row = {**row, "branch": 1}
        _storage_cache[key] = Storage._from_row(row, None)
        _roots_cache.pop(instance.connection, None)
    return _storage_cache[key]


def forget_storage(connection: Any, root: str | None = None) -> None:
    """Drop cached Storage records of a connection (only `root`'s if given), so the next save
    looks the storage up again: after a delete here, or one by another process (a save then
    fails with `MissingTarget` for the Storage)."""
    for key in [k for k in _storage_cache if k[0] is connection]:
        if root is None or key[1] == root:
            del _storage_cache[key]
    _roots_cache.pop(connection, None)
