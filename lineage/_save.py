"""`ln.save(records)`: many records in a few transactions.

New artifacts (the common bulk case: registering thousands of files) are copied into storage
first and then written with `UNWIND` in batches, one transaction per batch; if a batch fails, the
files copied for it are removed again. New collections go in batches too (after the artifacts,
which they may contain). Everything else is saved one record at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

from lineage._artifact import Artifact, save_artifacts
from lineage._collection import Collection, save_collections
from lineage._data import starts_a_family
from lineage._record import Record
from lineage.errors import InvalidType


def save(records: Iterable[Record]) -> list[Record]:
    """Save many records: new artifacts and collections in bulk, the rest one by one.

    >>> artifacts = [ln.Artifact(path, key=f"raw/{path.name}") for path in paths]
    >>> [a.key for a in ln.save(artifacts)]
    ['raw/file0.txt', 'raw/file1.txt']
    """
    if isinstance(records, Record):
        raise InvalidType("ln.save() takes a list of records; call record.save() for one")
    if isinstance(records, (str, bytes)) or not hasattr(records, "__iter__"):
        raise InvalidType(f"ln.save() takes a list of records, not {type(records).__name__}")
    records = list(records)
    for i, record in enumerate(records):
        if not isinstance(record, Record):
            raise InvalidType(f"ln.save(): item {i} is a {type(record).__name__}, not a record")

    artifacts = [r for r in records if isinstance(r, Artifact) and starts_a_family(r)]
    save_artifacts(artifacts)
    collections = [r for r in records if isinstance(r, Collection) and starts_a_family(r)]
    save_collections(collections)
    chosen = {id(r) for r in [*artifacts, *collections]}
    for record in records:
        if id(record) not in chosen:
            record.save()
    return records
