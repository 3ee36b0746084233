"""Artifact: one file (a local path, an `s3://` object, or a DataFrame/AnnData written to one).

Saving (docs/architecture.md, "Registries"): the bytes are hashed when the artifact is made, the same content
already stored gives back the existing record, the file is copied to
`<storage root>/.lineage/<uid><suffix>` before the node that points at it is written, and the copy
is removed again if that transaction fails. Files already under a registered storage root, and
`s3://` URIs, are registered in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import loaders
from graph import ids as gids
from graph import models as gm
from graph import records as gr
from lineage._data import (
    DataRecord,
    become_twins,
    cache_artifacts,
    check_loadable,
    load_artifacts,
    loader_errors,
    mapped_artifacts,
    split_twins,
    storage_options,
    track_input,
    write_new_families,
)
from lineage._instance import current
from lineage._keys import check_key
from lineage._model import Model, register
from lineage._registries import forget_storage, registered_root_of, storage_record
from lineage._settings import settings
from lineage.errors import (
    CommitUnknown,
    DuplicateContent,
    InvalidArgument,
    InvalidType,
    MissingFile,
    MissingTarget,
)

logger = logging.getLogger("lineage")

MANAGED_DIR = ".lineage"  # artifacts copied into a storage root live here, named by uid


@register
class Artifact(DataRecord):
    """A file with a key, a content hash, a version family and provenance.

    Args:
        data: a local path, an `s3://` URI, a pandas DataFrame (stored as parquet) or an
            AnnData (stored as h5ad).
        key: a name or path-like key, e.g. `"raw/sample1.h5ad"`.
        description: a description or title.
        run: the run that creates the artifact (default: the tracked run, if any).
        revises: an earlier version; the new artifact joins its version family.
        version: a version tag, unique within the family.

    >>> artifact = ln.Artifact("counts.csv", key="raw/counts.csv").save()
    >>> artifact = ln.Artifact(df, key="tables/metrics.parquet").save()
    >>> v2 = ln.Artifact(df2, revises=artifact).save()
    >>> v2.key, [a.uid[-4:] for a in v2.versions]    # one family: the uid's last 4 count up
    ('tables/metrics.parquet', ['0000', '0001'])
    """

    _label = "Artifact"

    def __init__(
        self,
        data: Any,
        key: str | None = None,
        description: str | None = None,
        run: Any = None,
        revises: Artifact | None = None,
        version: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise InvalidArgument(
                f"Artifact() got unexpected keyword {', '.join(map(repr, sorted(kwargs)))}; "
                "valid: data, key, description, run, revises, version"
            )
        # Every argument is checked before the data is read or staged: a bad one costs nothing
        # and leaves nothing behind, even when the content turns out to be stored already.
        check_key(key, "Artifact key")
        self._validate("description", description)
        self._validate("version", version)
        self._check_revises(revises)
        super().__init__()
        object.__setattr__(self, "_source", None)  # local file to copy at save(), if any
        object.__setattr__(self, "_owns_source", False)  # a staged temporary file
        object.__setattr__(self, "_in_place", None)  # (uri, storage root) for in-place files
        self._set_run(run)
        self._read_data(data)
        try:
            self._init_fields(key, description, revises, version)
        except BaseException:
            self._discard_staged()
            raise

    def _init_fields(
        self,
        key: str | None,
        description: str | None,
        revises: Artifact | None,
        version: str | None,
    ) -> None:
        existing = self._stored_with_hash(self._values["hash"], revises)
        if existing is not None:
            logger.warning(
                "returning existing artifact with same hash: %s (key=%r)",
                existing.uid,
                existing.key,
            )
            self._discard_staged()
            self._load(existing._values)
            return
        if revises is not None:
            key = key if key is not None else revises.key
        _check_key_suffix(key, self._values.get("suffix") or "")
        self.key = key
        self.description = description
        self.version = version
        self._set_revises(revises)
        if revises is None:
            self._start_family()

    # -- reading the data ------------------------------------------------------------------------
    def _read_data(self, data: Any) -> None:
        values = self._values
        otype = loaders.otype_of(data)
        if otype is not None:
            path = loaders.write_object(data, settings.cache_dir / "staging")
            object.__setattr__(self, "_source", path)
            object.__setattr__(self, "_owns_source", True)
            values.update(otype=otype, n_observations=loaders.n_observations(data))
            values["suffix"] = path.suffix
            self._hash_local(path)
            return
        if isinstance(data, Path | str | os.PathLike):
            uri = os.fspath(data)
        else:
            raise InvalidType(
                f"Artifact(data=...) takes a path, an s3:// URI, a pandas DataFrame or an AnnData, "
                f"not {type(data).__name__}"
            )
        values["suffix"] = loaders.suffix_of(uri)
        if loaders.is_remote(uri):
            if not uri.startswith("s3://"):
                raise InvalidArgument(f"{uri!r}: only local paths and s3:// URIs are supported")
            info = loaders.file_info(uri, settings.storage_options)
            values.update(size=info.size, hash=info.hash, hash_type=info.hash_type)
            root = registered_root_of(uri) or _bucket_root(uri)
            object.__setattr__(self, "_in_place", (uri, root))
            return
        if not uri:
            raise InvalidArgument("Artifact(): the path is empty; pass a file path")
        if "\0" in uri:
            raise InvalidArgument(f"Artifact(): the path {uri!r} contains a NUL byte")
        try:
            path = Path(uri).expanduser().resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
            raise InvalidArgument(f"Artifact(): cannot resolve the path {uri}: {exc}") from None
        if not path.exists():  # also a dangling symlink: exists() follows it
            raise MissingFile(f"Artifact(): no such file: {uri}")
        if path.is_dir():
            raise InvalidArgument(f"Artifact(): {uri} is a directory; pass a file")
        if not path.is_file():  # reading a FIFO would block forever, a device never end
            raise InvalidArgument(
                f"Artifact(): {uri} is not a regular file (a FIFO, socket or device); pass a file"
            )
        otype, n_obs = _describe(path, values["suffix"])
        values.update(otype=otype, n_observations=n_obs)
        self._hash_local(path)
        registered = registered_root_of(str(path))
        if registered is not None:
            object.__setattr__(self, "_in_place", (str(path), registered))
        else:
            object.__setattr__(self, "_source", path)

    def _hash_local(self, path: Path) -> None:
        info = loaders.file_info(str(path))
        self._values.update(size=info.size, hash=info.hash, hash_type=info.hash_type)

    def _discard_staged(self) -> None:
        if self._owns_source and self._source is not None:
            Path(self._source).unlink(missing_ok=True)
            object.__setattr__(self, "_source", None)

    # -- constructors ----------------------------------------------------------------------------
    @classmethod
    def from_dataframe(cls, df: Any, key: str | None = None, **kwargs: Any) -> Artifact:
        """An artifact from a DataFrame, stored as parquet.

        >>> table = ln.Artifact.from_dataframe(df, key="tables/metrics.parquet").save()
        >>> table.otype, table.suffix, table.n_observations
        ('DataFrame', '.parquet', 3)
        """
        if loaders.otype_of(df) != "DataFrame":
            raise InvalidType(f"from_dataframe() takes a pandas DataFrame, not {type(df).__name__}")
        return cls(df, key=key, **kwargs)

    from_df = from_dataframe  # lamindb's older spelling

    @classmethod
    def from_anndata(cls, adata: Any, key: str | None = None, **kwargs: Any) -> Artifact:
        """An artifact from an AnnData, stored as h5ad.

        >>> scrna = ln.Artifact.from_anndata(adata, key="scrna/all-samples.h5ad").save()
        >>> scrna.otype, scrna.suffix, scrna.n_observations
        ('AnnData', '.h5ad', 6)
        """
        if loaders.otype_of(adata) != "AnnData":
            raise InvalidType(f"from_anndata() takes an AnnData, not {type(adata).__name__}")
        return cls(adata, key=key, **kwargs)

    # -- saving ----------------------------------------------------------------------------------
    def _placement(self) -> Placement:
        """Where this artifact's bytes go (the one decision both save paths use)."""
        instance = self._inst()
        if self._in_place is not None:
            uri, root = self._in_place
            return Placement(storage_record(root, instance), in_place=uri)
        return Placement(storage_record(settings.storage, instance), root=settings.storage)

    def save(self) -> Artifact:
        """Copy the file into storage (unless registered in place) and write the record.

        A new artifact is saved as a batch of one (`ln.save`'s path: copy, then one
        transaction). A new version of a family is copied inside its writing transaction, which
        takes the version counter: only then is its uid, and so its file name, known.

        >>> artifact = ln.Artifact(paths[0], key="raw/file0.txt")
        >>> artifact.save().path.read_text().strip()
        'file 0'
        """
        if self._saved:
            return super().save()
        if self._to_one.get("revises") is None:
            save_artifacts([self])
            return self
        _again_if_storage_vanished(self._save_version)
        return self

    def _save_version(self) -> None:
        """Save a new version of a family: its file is copied inside the writing transaction."""
        self._default_edges()
        placement = self._placement()
        self._to_one["storage"] = placement.storage
        if placement.in_place is not None:
            self._values["storage_path"] = placement.in_place
            try:
                super().save()
            except BaseException:
                self._values.pop("storage_path", None)
                raise
            return
        written: list[str] = []

        def write_file(uid: str) -> dict[str, Any]:
            # Inside the transaction, with the family locked: nobody else gets this uid.
            dest = placement.destination(uid, self.suffix)
            loaders.put_file(self._source, dest, settings.storage_options)
            written.append(dest)
            return {"storage_path": dest}

        try:
            row = gr.create_record(
                self._inst().connection,
                self._label,
                self._new_record(),
                stem=self._stem(),
                new_family=False,
                before_create=write_file,
                unique_hash=True,
            )
        except BaseException as exc:
            remove_copies(written, exc)  # also a loser's copy when another process stored them
            if not isinstance(exc, DuplicateContent):
                raise
            self._discard_staged()
            self._become_stored(exc)
            return
        # Copies from attempts the driver retried under another uid.
        loaders.delete_files(
            [d for d in written if d != row["storage_path"]], settings.storage_options
        )
        self._load(row)
        self._discard_staged()
        self._after_first_save()

    def _delete_permanently(self) -> None:
        for relation, role in (
            ("collections", "a member"),
            ("meta_of_collection", "the meta artifact"),
        ):
            collections = self._related(relation, branch=None).to_list()
            if collections:
                names = ", ".join(f"{c.key!r} ({c.uid})" for c in collections[:5])
                raise InvalidArgument(
                    f"artifact {self.uid} is {role} of collection(s) {names}; delete those first"
                )

    def delete(self, permanent: bool | None = None) -> None:
        """Move to the trash; `permanent=True` (or a second delete) removes the record and the
        stored copy lineage made (files registered in place are left where they are).

        >>> artifact.delete()                  # to the trash: hidden from queries
        >>> artifact.branch, ln.Artifact.filter(key="raw/counts.csv").count()
        (-1, 0)
        >>> artifact.delete(permanent=True)    # the record and its stored copy
        >>> artifact.path.exists()
        False
        """
        path = self.storage_path
        storage = self.storage if self._saved else None
        was_trashed = self.branch == -1
        super().delete(permanent=permanent)
        if (permanent or was_trashed) and path and storage and _is_managed(path, storage.root):
            loaders.delete_file(path, settings.storage_options)

    # -- finding by file ------------------------------------------------------------------------
    @classmethod
    def _with_path(cls, qs: Any, path: Any) -> tuple[Any, str]:
        """`get(path=...)`, as lamindb finds an artifact by its file: a copy lineage made,
        `<root>/.lineage/<uid><suffix>`, by its uid (in any branch, as a lookup by uid is);
        any other file, one registered in place, by its stored path (main branch).

        >>> ln.Artifact.get(path=artifact.path) == artifact
        True
        """
        # A UPath (`artifact.path` of an S3 artifact) is no os.PathLike; it has a protocol.
        upath = isinstance(getattr(path, "protocol", None), str)
        if not (isinstance(path, (str, os.PathLike)) or upath):
            raise InvalidType(
                f"get(path=...) takes a local path or an s3:// URI, not {type(path).__name__}"
            )
        text = str(path)  # a UPath gives its URI; os.fspath would refuse a remote one
        if not text:
            raise InvalidArgument("get(path=...): the path is empty")
        if loaders.is_remote(text):
            if not text.startswith("s3://"):
                raise InvalidArgument(f"{text!r}: only local paths and s3:// URIs are supported")
            where = text
        else:
            # As the constructor stores it: absolute, symlinks resolved.
            where = str(Path(text).expanduser().resolve())
        parent, _, name = where.rpartition("/")
        uid = name[: gm.uid_length(cls._label) + gids.VERSION_LENGTH]
        if parent.rsplit("/", 1)[-1] == MANAGED_DIR and _is_uid(uid):
            copied = qs.filter(uid=uid, storage_path=where)  # an index seek, then one compare
            if copied.exists():
                return copied, where
        return qs.filter(storage_path=where), where

    # -- reading ---------------------------------------------------------------------------------
    @property
    def path(self) -> Path | Any:
        """Where the file is: a `Path` for local storage, a `UPath` for `s3://`.

        >>> artifact.path
        PosixPath('.../.lineage/...0000.csv')
        >>> artifact.path.read_text().splitlines()
        ['gene,count', 'a,1', 'b,2', 'c,3']
        """
        if not self.storage_path:
            return Path(self._source) if self._source else None
        if loaders.is_remote(self.storage_path):
            from upath import UPath

            return UPath(self.storage_path, **storage_options())
        return Path(self.storage_path)

    def cache(self, is_run_input: bool | None = None) -> Path:
        """A local path to the file: the file itself if it is local, else a copy synced into
        `ln.settings.cache_dir` (downloaded only when missing or outdated).

        With a tracked run (or `is_run_input=True`) the artifact is recorded as the run's input.

        >>> artifact.cache()                   # a local file: its own path
        PosixPath('.../.lineage/...0000.csv')
        """
        path = cache_artifacts([self])[0]
        track_input([self], is_run_input)
        return path

    def load(self, is_run_input: bool | None = None, **kwargs: Any) -> Any:
        """Cache the file and load it into memory: a DataFrame for `.parquet`/`.csv`/`.tsv`, an
        AnnData for `.h5ad`, a dict for `.json`/`.yaml`, a str for `.txt`. `kwargs` go to the
        reader (e.g. `columns=` for parquet). The run input is recorded only if loading works.

        >>> artifact.load()
          gene  count
        0    a      1
        1    b      2
        2    c      3
        >>> adata = ln.Artifact.get(key="scrna/sample1.h5ad").load(backed="r")
        >>> adata.shape, adata.isbacked
        ((2, 4), True)
        """
        check_loadable([self])
        path = cache_artifacts([self])[0]
        with loader_errors():
            data = loaders.load_file(path, self.suffix or "", **kwargs)
        track_input([self], is_run_input)
        return data

    @classmethod
    def _load_queryset(cls, qs: Any, what: str, **kwargs: Any) -> Any:
        """`load()` / `mapped()` of a QuerySet of artifacts, in its order."""
        artifacts = qs.to_list()
        if not artifacts:
            raise InvalidArgument(f"{what}: the QuerySet matches no artifacts")
        is_run_input = kwargs.pop("is_run_input", None)
        if what == "load()":
            data = load_artifacts(artifacts, **kwargs)
        else:
            data = mapped_artifacts(artifacts, **kwargs)
        track_input(artifacts, is_run_input)
        return data


# -- where artifacts go, and the batch save both `Artifact.save` and `ln.save` use ----------------
@dataclass(frozen=True)
class Placement:
    """Where an artifact's bytes go: registered where they lie (`in_place`, its URI), or copied
    to `<root>/.lineage/<uid><suffix>`; `storage` is the Storage record it is `STORED_IN`."""

    storage: Model
    in_place: str | None = None
    root: str | None = None

    def destination(self, uid: str, suffix: str | None) -> str:
        assert self.root is not None, "an in-place artifact is not copied"
        return loaders.join(self.root, MANAGED_DIR, uid + (suffix or ""))


def remove_copies(written: list[str], exc: BaseException, last_attempt: int = 1) -> None:
    """Remove the copies a failed save wrote. If the commit is unknown (`CommitUnknown`), the
    last `last_attempt` copies may be pointed at by stored records: they are kept, and
    `lineage doctor --fix` removes those that turn out to be orphans."""
    if isinstance(exc, CommitUnknown) and written:
        kept, written = written[-last_attempt:], written[:-last_attempt]
        logger.warning(
            "kept %d copied file(s) whose record's commit is unknown; once Neo4j is back, "
            "`lineage doctor --fix` removes those no artifact points at",
            len(kept),
        )
    loaders.delete_files(written, settings.storage_options)


def save_artifacts(artifacts: list[Artifact]) -> None:
    """Save new artifacts that start new families: per `graph.records.BATCH_SIZE` artifacts,
    the copies first, then one `UNWIND` transaction; if a batch fails, its copies go."""
    unique, twins = split_twins(artifacts)
    for start in range(0, len(unique), gr.BATCH_SIZE):
        _again_if_storage_vanished(partial(_save_batch, unique[start : start + gr.BATCH_SIZE]))
    become_twins(twins, Artifact._discard_staged)


def _again_if_storage_vanished(save: Callable[[], None]) -> None:
    """Run a save; if it failed because the Storage record this process cached was deleted
    meanwhile by another process (nothing was written, its copies are removed), forget the
    cached records and run it once more: the storage is looked up, or made, again."""
    try:
        save()
    except MissingTarget as exc:
        if exc.target != "Storage":
            raise
        forget_storage(current().connection)
        save()


def _save_batch(batch: list[Artifact]) -> None:
    copy_of: dict[int, str] = {}
    for artifact in batch:
        artifact._default_edges()
        placement = artifact._placement()
        artifact._to_one["storage"] = placement.storage
        if placement.in_place is not None:
            artifact._values["storage_path"] = placement.in_place
        else:
            dest = placement.destination(artifact.uid, artifact.suffix)
            copy_of[id(artifact)] = artifact._values["storage_path"] = dest
    written: list[str] = []

    def drop_copy(artifact: Artifact) -> None:  # its bytes were stored meanwhile by another
        copied = copy_of.get(id(artifact))
        if copied in written:
            loaders.delete_file(copied, settings.storage_options)
            written.remove(copied)

    try:
        written = loaders.put_files(
            [(a._source, copy_of[id(a)]) for a in batch if id(a) in copy_of],
            settings.storage_options,
        )
        write_new_families(batch, done=Artifact._discard_staged, duplicate=drop_copy)
    except BaseException as exc:
        # The whole batch is one attempt; put_files removed its own copies if it failed itself.
        remove_copies(written, exc, last_attempt=len(written))
        for artifact in batch:
            if not artifact._saved:
                artifact._values.pop("storage_path", None)
        raise


def _describe(path: Path, suffix: str) -> tuple[str | None, int | None]:
    try:
        return loaders.describe_file(path, suffix)
    except ValueError:  # a file named .parquet that is not one: still a file we can register
        return None, None


def _is_uid(text: str) -> bool:
    """Whether `text` could be an artifact's uid (length and base62 alphabet)."""
    full = gm.uid_length("Artifact") + gids.VERSION_LENGTH
    return len(text) == full and text.isascii() and text.isalnum()


def _bucket_root(uri: str) -> str:
    bucket = uri[len("s3://") :].split("/", 1)[0]
    return f"s3://{bucket}"


def _is_managed(path: str, root: str) -> bool:
    """Copies lineage made itself (`<root>/.lineage/...`); in-place files belong to the user."""
    return loaders.is_under(path, loaders.join(root, MANAGED_DIR))


def _check_key_suffix(key: str | None, suffix: str) -> None:
    """A key that names a file type must name the stored one (lamindb refuses a mismatch)."""
    if key is None:
        return
    key_suffix = loaders.suffix_of(key)
    if key_suffix and key_suffix != suffix:
        raise InvalidArgument(
            f"the suffix {key_suffix!r} of key {key!r} does not match the data, which is stored "
            f"as {suffix or 'a file without suffix'!r}; use a key ending in {suffix!r} or none"
        )
