"""What artifacts and collections share: the data-record base and reading their files.

`DataRecord` is the base of `Artifact` and `Collection`: both are made by a run (the tracked
one unless `run=` says otherwise), have a checked key, join a version family through `revises=`
or their key (`lineage._versioned`), and can be fetched as a run's input with
`get(..., is_run_input=True)`.

The functions below turn artifacts back into data for `Artifact`, `Collection` and artifact
QuerySets alike: `cache_artifacts` (local paths), `load_artifacts` (one DataFrame or AnnData),
`mapped_artifacts` (a `loaders.MappedCollection`), and `track_input`, which records what a
tracked run read. Errors from the loaders reach users as `lineage.errors.DataError`.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import loaders
from graph import records as gr
from lineage._features import Features
from lineage._keys import check_key
from lineage._model import Model
from lineage._run import Run, context, current_run, mark_input
from lineage._samples import note_rows
from lineage._settings import settings
from lineage._versioned import VersionedRecord
from lineage._view import HasLineage
from lineage.errors import (
    DataError,
    DuplicateContent,
    FamilyExists,
    InvalidArgument,
    LineageError,
    MissingFile,
)

logger = logging.getLogger("lineage")


class DataRecord(VersionedRecord, HasLineage):
    """The base of `Artifact` and `Collection`: records that hold data and are made by runs."""

    _unique_content = True  # the same content again is the stored record, not a new one
    features = Features()  # `artifact.features.add_values(...)`, `ln.Artifact.features`

    def _set_run(self, run: Any) -> None:
        """`run=` as given (checked now), else the tracked run at save time."""
        object.__setattr__(self, "_explicit_run", current_run(run) if run is not None else None)

    def _default_edges(self) -> None:
        super()._default_edges()
        run = self._explicit_run or current_run()
        if run is not None and "run" not in self._to_one:
            self._to_one["run"] = run

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if name == "key":  # also when set later: `record.key = ...; record.save()`
            return check_key(value, f"{cls.__name__} key")
        return super()._validate(name, value)

    @classmethod
    def get(
        cls,
        idlike: int | str | None = None,
        *,
        is_run_input: bool | Any = False,
        **expressions: Any,
    ) -> Self:
        """Get one record; `is_run_input=True` records it as an input of the tracked run.
        Artifacts can also be found by their file: `ln.Artifact.get(path=artifact.path)`.

        >>> run = ln.track("preprocess.py")
        >>> collection = ln.Collection.get(key="scrna", is_run_input=True)
        >>> artifact = ln.Artifact.get(key="raw/counts.csv", is_run_input=True)
        >>> [c.key for c in run.input_collections], [a.key for a in run.input_artifacts]
        (['scrna'], ['raw/counts.csv'])
        >>> ln.finish()
        Run(uid='...', ..., status='completed')
        """
        record = super().get(idlike, **expressions)
        mark_input([record], is_run_input)
        return record

    def _twin_key(self) -> Any:
        """Two unsaved records with the same twin key are stored once: the same content."""
        return self._values.get("hash")

    def _family_key(self) -> Any:
        """Two unsaved records that start families under the same family key make one family
        (None: the record names no family by key)."""
        return self._values.get("key") if self._family_names() else None


R = TypeVar("R", bound=DataRecord)


def starts_a_family(record: Model) -> bool:
    """New and revising nothing: its uid is known before the write, so it can go in a batch."""
    return not record._saved and record._to_one.get("revises") is None


def split_twins(records: Sequence[R]) -> tuple[list[R], list[tuple[R, R]], list[R]]:
    """Split new records that start families for a batch write: those to write, (twin, first)
    pairs (two unsaved records with the same content are stored once), and the later ones of
    records that share a family key, which must be written one by one after the batch: each
    then becomes a new version of the family the first one started."""
    first_of: dict[Any, R] = {}
    families: set[Any] = set()
    twins: list[tuple[R, R]] = []
    later: list[R] = []
    for record in records:
        first = first_of.get(record._twin_key())
        if first is not None:
            twins.append((record, first))
            continue
        family = record._family_key()
        if family is not None and family in families:
            later.append(record)
            continue
        first_of[record._twin_key()] = record
        families.add(family)
    return list(first_of.values()), twins, later


def write_new_families(
    records: Sequence[R],
    done: Callable[[R], None],
    duplicate: Callable[[R], None] = lambda record: None,
) -> None:
    """Write new data records that start families (uids known): one `UNWIND` transaction per
    `graph.records.BATCH_SIZE`, edges included. A record whose content another process stored
    after this one looked it up becomes that stored record, and one whose key another process
    gave a family meanwhile is saved as that family's new version (`duplicate(record)` first
    drops what was made for it under its own uid); the rest are written again, a rare race, so
    a second transaction is cheap. `done(record)` runs for every record once it is stored."""
    pending = list(records)
    while pending:
        label = pending[0]._label
        new = [r._new_record() for r in pending]
        try:
            rows = gr.create_many(pending[0]._inst().connection, label, new, unique_hash=True)
        except DuplicateContent as dup:
            for record in pending:
                if record.uid in dup.existing:
                    duplicate(record)
                    record._become_stored(dup.existing[record.uid])
                    done(record)
            pending = [r for r in pending if not r._saved]
            continue
        except FamilyExists as exists:
            joining = [r for r in pending if r.uid in exists.existing]
            for record in joining:
                duplicate(record)
                record._join_family(exists.existing[record.uid])
            pending = [r for r in pending if r.uid is not None]  # joining ones lost theirs
            write_new_families(pending, done, duplicate)
            for record in joining:
                record.save()
                done(record)
            return
        by_uid = {row["uid"]: row for row in rows}
        for record in pending:
            record._load(by_uid[record.uid])
            done(record)
        pending = []


def become_twins(twins: Sequence[tuple[R, R]], done: Callable[[R], None]) -> None:
    """Each twin becomes the stored record it duplicates."""
    for record, first in twins:
        logger.warning("returning existing %s with same hash: %s", record._label.lower(), first.uid)
        record._load(first._values)
        done(record)


@contextmanager
def loader_errors() -> Iterator[None]:
    """The loaders' own errors (plain `ValueError`/`FileNotFoundError`: a bad file, an unknown
    join) as `DataError`/`MissingFile`, so the public API's errors come from `lineage.errors`
    (the loaders cannot import it). A library's own subclass, such as pandas' `ParserError`,
    passes through as it is: users catch it by that name."""
    try:
        yield
    except LineageError:
        raise
    except (FileNotFoundError, ValueError) as exc:
        if type(exc) is FileNotFoundError:
            raise MissingFile(str(exc)) from exc
        if type(exc) is ValueError:
            raise DataError(str(exc)) from exc
        raise


def track_input(records: Sequence[Model], is_run_input: bool | Any | None) -> None:
    """Record `(run)-[:USED]->` for data that was read, with lamindb's default: None means
    "yes if a run is tracked" (its own outputs excepted, which `mark_input` skips)."""
    records = [r for r in records if r._saved]  # an unsaved record can't be anyone's input
    if is_run_input is None:
        is_run_input = context.run is not None
    if records:
        mark_input(records, is_run_input)


def track_rows(
    artifacts: Sequence[Model],
    file_rows: Sequence[tuple[Any, int]],
    is_run_input: bool | Any | None,
) -> None:
    """Note which rows of each artifact the tracked run saw (`file_rows`: per artifact, the
    file rows and how many rows the file has), for `ln.finish()` to write on its `USED` edges.
    Only for the tracked run, and only where the read is recorded as its input."""
    run = context.run
    if run is None:
        return
    if isinstance(is_run_input, Run):  # another run's input: finished elsewhere, if at all
        if is_run_input.uid != run.uid:
            return
    elif is_run_input is not None and not is_run_input:
        return
    saved = [(a.uid, rows) for a, rows in zip(artifacts, file_rows, strict=True) if a._saved]
    if saved:
        note_rows(run.uid, [uid for uid, _ in saved], [rows for _, rows in saved])


def loaded_rows(artifacts: Sequence[Model], data: Any) -> list[tuple[Any, int]] | None:
    """Per artifact, every row (as `track_rows` takes them) of loaded AnnData (`.h5ad` files,
    `.zarr` stores): a whole file, or several concatenated with the source uid in
    `obs["artifact_uid"]`; None for other data."""
    if not (hasattr(data, "obs") and hasattr(data, "n_obs")):
        return None
    if any((a.suffix or "").lower() not in MAPPABLE_SUFFIXES for a in artifacts):
        return None
    if len(artifacts) == 1:
        return [(slice(None), int(data.n_obs))]
    if "artifact_uid" not in data.obs:
        return None
    counts = data.obs["artifact_uid"].astype(str).value_counts()
    return [(slice(None), int(counts.get(a.uid, 0))) for a in artifacts]


# What `mapped()` reads and whose rows a run's samples record: AnnData files and zarr stores.
MAPPABLE_SUFFIXES = (".h5ad", ".zarr")


def storage_options() -> dict[str, Any]:
    """`ln.settings.storage_options`, plus the `LINEAGE_S3_ENDPOINT_URL` endpoint if they name
    none, for code that does not go through `loaders.filesystem` (`Artifact.path`, `mapped`)."""
    options = dict(settings.storage_options or {})
    if "endpoint_url" not in options and os.environ.get(loaders.ENDPOINT_ENV):
        options["endpoint_url"] = os.environ[loaders.ENDPOINT_ENV]
    return options


def uri_of(artifact: DataRecord) -> str:
    """Where an artifact's bytes are: its stored path, or before saving its in-place URI or
    staged source."""
    if artifact.storage_path:
        return artifact.storage_path
    in_place = getattr(artifact, "_in_place", None)  # records read from the graph have none
    if in_place is not None:  # registered in place, not saved yet
        return in_place[0]
    source = getattr(artifact, "_source", None)
    if source is not None:
        return str(source)
    raise InvalidArgument(f"{artifact!r} has no file to read")


def is_folder(artifact: DataRecord) -> bool:
    """Whether an artifact is a folder (lamindb: `n_files` is set for folders only)."""
    return artifact._values.get("n_files") is not None


def cache_artifacts(artifacts: Sequence[DataRecord]) -> list[Path]:
    """Local paths of the artifacts' files and folders, in order (remote ones synced into the
    cache: files with `loaders.sync`, folders file by file with `loaders.sync_dir`, then the
    cache trimmed to `ln.settings.cache_max_bytes`). The cached copies stay held by this
    process, so no process evicts them, until `release_cached(paths)` or the process ends."""
    files = [i for i, a in enumerate(artifacts) if not is_folder(a)]
    out: list[Path] = [Path()] * len(artifacts)
    limit = settings.cache_max_bytes
    done: list[Path] = []
    try:
        with loader_errors():
            paths = loaders.sync(
                [uri_of(artifacts[i]) for i in files],
                settings.cache_dir,
                storage_options=settings.storage_options,
                hashes=[artifacts[i].hash for i in files],
                sizes=[artifacts[i].size for i in files],
                max_bytes=limit,
            )
            done += paths
            for i, path in zip(files, paths):
                out[i] = path
            for i, artifact in enumerate(artifacts):
                if is_folder(artifact):
                    out[i] = loaders.sync_dir(
                        uri_of(artifact),
                        settings.cache_dir,
                        storage_options=settings.storage_options,
                        expected_hash=artifact.hash,
                        max_bytes=limit,
                    )
                    done.append(out[i])
    except BaseException:
        release_cached(done)  # nothing is handed out: hold nothing
        raise
    return out


def release_cached(paths: Sequence[Path]) -> None:
    """Let other processes evict these cached copies again (`cache_artifacts` held them)."""
    loaders.release(paths, settings.cache_dir)


def check_loadable(artifacts: Sequence[DataRecord], concat: bool = False) -> list[str]:
    """The artifacts' suffixes, refused before any download if they cannot be loaded together."""
    suffixes = [a.suffix or "" for a in artifacts]
    distinct = sorted(set(suffixes))
    if len(distinct) > 1:
        raise InvalidArgument(
            f"cannot load artifacts of different suffixes together: "
            f"{', '.join(map(repr, distinct))}; all must share one suffix"
        )
    folders = [a for a in artifacts if is_folder(a)]
    if folders and distinct[0].lower() not in loaders.load.FOLDER_LOADABLE:
        raise InvalidArgument(
            f"artifact {folders[0].uid} is a folder ({folders[0].n_files} files, suffix "
            f"{distinct[0] or 'none'!r}); load() reads {', '.join(sorted(loaders.load.FOLDER_LOADABLE))}"
            " folders: use .cache() for its local path or .open() to stream it"
        )
    allowed = loaders.load.CONCATENABLE if concat and len(artifacts) > 1 else loaders.load.LOADABLE
    if distinct[0].lower() not in allowed:
        what = "concatenate" if allowed is loaders.load.CONCATENABLE else "load"
        raise InvalidArgument(
            f"cannot {what} artifacts with suffix {distinct[0] or 'none'!r}; supported: "
            f"{', '.join(sorted(allowed))} (use .cache() for the local path)"
        )
    return suffixes


def load_artifacts(artifacts: Sequence[DataRecord], join: str = "outer", **kwargs: Any) -> Any:
    """Cache and concatenate artifacts of one suffix; AnnData gets `obs["artifact_uid"]`."""
    if not artifacts:
        raise InvalidArgument("nothing to load: no artifacts")
    if join not in ("inner", "outer"):
        raise InvalidArgument(f"join must be 'inner' or 'outer', not {join!r}")
    suffixes = check_loadable(artifacts, concat=True)
    paths = cache_artifacts(artifacts)
    try:
        with loader_errors():
            return loaders.load_files(
                paths, suffixes, join=join, keys=[a.uid for a in artifacts], **kwargs
            )
    finally:
        if kwargs.get("backed") is None:  # read into memory: the copies may go
            release_cached(paths)


def mapped_artifacts(artifacts: Sequence[DataRecord], stream: bool = False, **kwargs: Any) -> Any:
    """A `loaders.MappedCollection` over `.h5ad` and AnnData `.zarr` artifacts: cached local
    paths, or with `stream=True` the stored URIs read in place."""
    if not artifacts:
        raise InvalidArgument("nothing to map: no artifacts")
    bad = sorted({a.suffix or "" for a in artifacts} - set(MAPPABLE_SUFFIXES))
    if bad:
        raise InvalidArgument(
            f"mapped() works on {', '.join(MAPPABLE_SUFFIXES)} artifacts only; got suffix(es) "
            f"{', '.join(repr(s or 'none') for s in bad)}"
        )
    if stream:
        with loader_errors():
            return loaders.MappedCollection(
                [uri_of(a) for a in artifacts],
                stream=True,
                storage_options=storage_options(),
                **kwargs,
            )
    cached = cache_artifacts(artifacts)
    try:
        with loader_errors():
            dataset = loaders.MappedCollection(
                [str(p) for p in cached], storage_options=storage_options(), **kwargs
            )
    except BaseException:
        release_cached(cached)
        raise
    # The copies stay held while the dataset is open: close() (or its garbage collection)
    # lets other processes evict them.
    release = weakref.finalize(dataset, loaders.release, cached, settings.cache_dir)
    dataset._on_close.append(release)
    return dataset
