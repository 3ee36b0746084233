"""The small registries: users, spaces, labels, projects, references, storage roots."""

from __future__ import annotations

from typing import Any

from lineage._model import register
from lineage._record import Record


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
