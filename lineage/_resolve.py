"""Find a record by uid (or uid prefix) without knowing its registry: what the CLI needs when a
user pastes a uid from a table or a lineage graph."""

from __future__ import annotations

from lineage._artifact import Artifact
from lineage._collection import Collection
from lineage._record import Record
from lineage._run import Run, Transform
from lineage.errors import DoesNotExist, InvalidArgument

# The registries whose records have lineage, in the order a match is reported.
REGISTRIES: tuple[type[Record], ...] = (Artifact, Collection, Run, Transform)


def record_by_uid(uid: str) -> Record:
    """The artifact, collection, run or transform whose uid is `uid` or starts with it.

    Each registry's `get()` does the lookup, so a prefix of a version family gives its latest
    version, and records in the trash are found too. `DoesNotExist` names the uid when nothing
    matches; `InvalidArgument` when the prefix matches records in more than one registry;
    `MultipleResultsFound` (from `get()`) when it matches several records of one registry.

    >>> v2 = collection.append(artifact3).save()
    >>> record_by_uid(collection.uid[:12])   # a collection's uid prefix: its latest version
    Collection(uid='...0001', ..., key='scrna', ...)
    >>> record_by_uid(run.uid) == run
    True
    """
    if not isinstance(uid, str) or not uid.strip():
        raise InvalidArgument(f"a uid or uid prefix is a non-empty string, not {uid!r}")
    uid = uid.strip()
    found: list[Record] = []
    for registry in REGISTRIES:
        try:
            found.append(registry.get(uid))
        except DoesNotExist:
            continue
    if not found:
        names = ", ".join(r.__name__ for r in REGISTRIES)
        raise DoesNotExist(f"no record with uid {uid!r} or a uid starting with it ({names})")
    if len(found) > 1:
        matches = ", ".join(f"{type(r).__name__} {r.uid}" for r in found)
        raise InvalidArgument(f"uid prefix {uid!r} is ambiguous: {matches}; give more characters")
    return found[0]
