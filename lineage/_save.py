"""`ln.save(records)`: many records in a few transactions.

New artifacts (the common bulk case: registering thousands of files) are copied into storage
first and then written with `UNWIND` in batches, one transaction per batch; if a batch fails, the
files copied for it are removed again. Everything else is saved one record at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import loaders
from graph import records as gr
from lineage._artifact import MANAGED_DIR, Artifact, storage_record
from lineage._record import Record
from lineage._settings import settings
from lineage.errors import CommitUnknown

logger = logging.getLogger("lineage")


def save(records: Iterable[Record]) -> list[Record]:
    """Save many records: new artifacts in bulk, the rest one by one.

    >>> artifacts = [ln.Artifact(path, key=f"raw/{path.name}") for path in paths]
    >>> [a.key for a in ln.save(artifacts)]
    ['raw/file0.txt', 'raw/file1.txt']
    """
    if isinstance(records, Record):
        raise TypeError("ln.save() takes a list of records; call record.save() for one")
    if isinstance(records, (str, bytes)) or not hasattr(records, "__iter__"):
        raise TypeError(f"ln.save() takes a list of records, not {type(records).__name__}")
    records = list(records)
    for i, record in enumerate(records):
        if not isinstance(record, Record):
            raise TypeError(f"ln.save(): item {i} is a {type(record).__name__}, not a record")
    bulk = [
        r for r in records
        if isinstance(r, Artifact) and not r._saved and r._to_one.get("revises") is None
    ]  # fmt: skip
    _save_new_artifacts(bulk)
    chosen = {id(r) for r in bulk}
    for record in records:
        if id(record) not in chosen:
            record.save()
    return records


def _save_new_artifacts(artifacts: list[Artifact]) -> None:
    # Two unsaved artifacts with the same bytes: store the first, the others become it.
    first_of: dict[str, Artifact] = {}
    unique: list[Artifact] = []
    twins: list[tuple[Artifact, Artifact]] = []
    for artifact in artifacts:
        twin = first_of.get(artifact.hash)
        if twin is None:
            first_of[artifact.hash] = artifact
            unique.append(artifact)
        else:
            twins.append((artifact, twin))
    for start in range(0, len(unique), gr.BATCH_SIZE):
        _save_batch(unique[start : start + gr.BATCH_SIZE])
    for artifact, twin in twins:
        logger.warning("returning existing artifact with same hash: %s", twin.uid)
        artifact._discard_staged()
        artifact._load(twin._values)


def _save_batch(batch: list[Artifact]) -> None:
    if not batch:
        return
    instance = batch[0]._inst()
    root = settings.storage
    storage = storage_record(root, instance)
    copies: list[tuple[Artifact, str]] = []
    for artifact in batch:
        artifact._default_edges()
        if artifact._in_place is not None:
            uri, in_place_root = artifact._in_place
            artifact._values["storage_path"] = uri
            artifact._to_one["storage"] = storage_record(in_place_root, instance)
        else:
            dest = loaders.join(root, MANAGED_DIR, artifact.uid + (artifact.suffix or ""))
            copies.append((artifact, dest))
            artifact._values["storage_path"] = dest
            artifact._to_one["storage"] = storage
    written: list[str] = []
    copy_of = {id(a): dest for a, dest in copies}
    pending = batch
    try:
        written = loaders.put_files(
            [(a._source, dest) for a, dest in copies], settings.storage_options
        )
        while pending:
            new = [
                gr.NewRecord({k: v for k, v in a._values.items() if v is not None}, a._edges())
                for a in pending
            ]
            try:
                rows = gr.create_many(instance.connection, "Artifact", new, unique_hash=True)
            except gr.DuplicateContent as dup:
                # Another process stored some of these bytes after this one looked them up:
                # those artifacts become the stored records and their copies go; the rest
                # are written again (a rare race, so a second transaction is cheap).
                for artifact in pending:
                    if artifact.hash in dup.existing:
                        copied = copy_of.get(id(artifact))
                        if copied is not None and copied in written:
                            loaders.delete_file(copied, settings.storage_options)
                            written.remove(copied)
                        artifact._discard_staged()
                        artifact._become_stored(dup)
                pending = [a for a in pending if not a._saved]
                continue
            by_uid = {row["uid"]: row for row in rows}
            for artifact in pending:
                artifact._load(by_uid[artifact.uid])
                artifact._discard_staged()
            pending = []
    except BaseException as exc:
        if isinstance(exc, CommitUnknown):
            # The batch may be stored: removing its copies could leave records without files.
            logger.warning(
                "kept %d copied file(s) of a batch whose commit is unknown; once Neo4j is back, "
                "`lineage doctor --fix` removes those no artifact points at",
                len(written),
            )
            written = []
        # put_files removed its own copies if it failed itself.
        loaders.delete_files(written, settings.storage_options)
        for artifact in batch:
            if not artifact._saved:
                artifact._values.pop("storage_path", None)
        raise
