"""The small registries: users, spaces, labels, projects, references, storage roots."""

from __future__ import annotations

from typing import Any

from lineage._record import Record, register


@register
class User(Record):
    """A person or service account; records point at their creator with `created_by`.

    >>> ln.User.get(handle="alice")
    """

    _label = "User"

    def __init__(self, handle: str | None = None, name: str | None = None, **fields: Any) -> None:
        super().__init__(handle=handle, name=name, **fields)


@register
class Space(Record):
    """An access space records can live in (`record.space`).

    >>> space = ln.Space(name="team-a").save()
    """

    _label = "Space"

    def __init__(self, name: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(name=name, description=description, **fields)


@register
class ULabel(Record):
    """A free-text label for artifacts and collections.

    >>> tissue = ln.ULabel(name="tissue").save()
    >>> artifact.ulabels.add(tissue)
    """

    _label = "ULabel"

    def __init__(self, name: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(name=name, description=description, **fields)


@register
class Project(Record):
    """A project artifacts and collections belong to.

    >>> ln.Project(name="atlas").save()
    """

    _label = "Project"

    def __init__(self, name: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(name=name, description=description, **fields)


@register
class Reference(Record):
    """A publication or external resource: `url`, `doi`.

    >>> ln.Reference(name="Smith 2024", doi="10.1000/xyz").save()
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

    >>> ln.Storage.filter(root__startswith="s3://").df()
    """

    _label = "Storage"

    def __init__(self, root: str | None = None, description: str | None = None, **fields: Any):
        super().__init__(root=root, description=description, **fields)
