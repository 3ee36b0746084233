"""Artifact: one file (a local path, an `s3://` object, or a DataFrame/AnnData written to one),
or one folder (a local directory or an `s3://` prefix).

Saving (docs/architecture.md, "Registries"): the bytes are hashed when the artifact is made, the same content
already stored gives back the existing record, the file (or the folder's files) is copied to
`<storage root>/.lineage/<uid><suffix>` before the node that points at it is written, and the copy
is removed again if that transaction fails. Files and folders already under a registered storage
root, and `s3://` URIs, are registered in place.
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
    is_folder,
    load_artifacts,
    loader_errors,
    mapped_artifacts,
    split_twins,
    starts_a_family,
    storage_options,
    track_input,
    uri_of,
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
    NotSupported,
)

logger = logging.getLogger("lineage")

MANAGED_DIR = ".lineage"  # artifacts copied into a storage root live here, named by uid


@register
class Artifact(DataRecord):
    """A file or folder with a key, a content hash, a version family and provenance.

    Args:
        data: a local path (a file, or a folder: one artifact of all its files), an `s3://` URI
            (an object or a prefix), a pandas DataFrame (stored as parquet) or an AnnData (stored
            as h5ad).
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
    >>> _ = Path("plate1").mkdir(); _ = Path("plate1/well_A1.txt").write_text("A1")
    >>> folder = ln.Artifact("plate1", key="images/plate1").save()
    >>> folder.n_files, folder.hash_type, sorted(p.name for p in folder.cache().iterdir())
    (1, 'md5-d', ['well_A1.txt'])
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
            _check_same_kind(self, revises)
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
            try:
                info = loaders.file_info(uri, settings.storage_options)
            except IsADirectoryError:  # a prefix: a folder, hashed from its objects' ETags
                uri = uri.rstrip("/")
                info = _folder_info(uri)
            values.update(
                size=info.size, hash=info.hash, hash_type=info.hash_type, n_files=info.n_files
            )
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
            self._read_dir(path)
            return
        if not path.is_file():  # reading a FIFO would block forever, a device never end
            raise InvalidArgument(
                f"Artifact(): {uri} is not a regular file (a FIFO, socket or device); pass a file"
            )
        otype, n_obs = _describe(path, values["suffix"])
        values.update(otype=otype, n_observations=n_obs)
        self._hash_local(path)
        self._set_local(path)

    def _read_dir(self, path: Path) -> None:
        """A folder artifact: lamindb's folder hash over all its files, `n_files`, the total
        `size`, the suffix of its name (".zarr", or none), and the otype of an AnnData zarr."""
        info = _folder_info(str(path))
        otype, n_obs = _describe(path, self._values["suffix"])
        self._values.update(
            size=info.size,
            hash=info.hash,
            hash_type=info.hash_type,
            n_files=info.n_files,
            otype=otype,
            n_observations=n_obs,
        )
        self._set_local(path)

    def _set_local(self, path: Path) -> None:
        """A local file or folder: registered in place under a registered storage root, else
        copied at save()."""
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

    @classmethod
    def from_dir(
        cls, path: str | os.PathLike[str], *, key: str | None = None, run: Any = None
    ) -> ArtifactList:
        """One artifact per file under a folder (lamindb's `from_dir`), keyed
        `<key>/<path in the folder>`; `key` defaults to the folder's path inside its registered
        storage root, else its name. Files with the same content give one artifact (with a
        warning). For one artifact of the whole folder, use `ln.Artifact(path, key=...)`.

        >>> Path("run1/sub").mkdir(parents=True)
        >>> _ = Path("run1/a.txt").write_text("a"); _ = Path("run1/sub/b.txt").write_text("b")
        >>> artifacts = ln.Artifact.from_dir("run1").save()
        >>> [a.key for a in artifacts]
        ['run1/a.txt', 'run1/sub/b.txt']
        """
        if not isinstance(path, str | os.PathLike):
            raise InvalidType(f"from_dir() takes a folder path, not {type(path).__name__}")
        check_key(key, "from_dir() key")
        folder, files = _files_of(os.fspath(path))
        if key is None:
            key = _key_in_storage(folder)
        if not files:
            logger.warning("from_dir(): the folder %s has no files", folder)
        by_hash: dict[str, Artifact] = {}
        for rel, file_uri in files:
            artifact = cls(file_uri, key=f"{key}/{rel}" if key else rel, run=run)
            by_hash.setdefault(artifact.hash, artifact)
        if len(by_hash) < len(files):
            logger.warning(
                "from_dir(): %d of %d files in %s have the same content as another: one "
                "artifact per content",
                len(files) - len(by_hash),
                len(files),
                folder,
            )
        return ArtifactList(by_hash.values())

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
            written.append(self._put(dest))
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
        kept = {row["storage_path"], loaders.as_folder(row["storage_path"])}
        loaders.delete_files([d for d in written if d not in kept], settings.storage_options)
        self._load(row)
        self._discard_staged()
        self._after_first_save()

    def _put(self, dest: str) -> str:
        """Copy the source file or folder to `dest`; returns the URI that removes the copy
        (`loaders.as_folder(dest)` for a folder)."""
        if is_folder(self):
            with loader_errors():  # the folder changed since it was hashed (emptied, a new link)
                return loaders.put_dir(self._source, dest, settings.storage_options)
        loaders.put_file(self._source, dest, settings.storage_options)
        return dest

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
        folder = is_folder(self)
        super().delete(permanent=permanent)
        if (permanent or was_trashed) and path and storage and _is_managed(path, storage.root):
            # A folder goes with everything under it.
            target = loaders.as_folder(path) if folder else path
            loaders.delete_file(target, settings.storage_options)

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
        """A local path to the file or folder: itself if it is local, else a copy synced into
        `ln.settings.cache_dir` (downloaded only when missing or outdated; for a folder, file by
        file, and files no longer in the folder are removed from the copy).

        With a tracked run (or `is_run_input=True`) the artifact is recorded as the run's input.

        >>> artifact.cache()                   # a local file: its own path
        PosixPath('.../.lineage/...0000.csv')
        """
        path = cache_artifacts([self])[0]
        track_input([self], is_run_input)
        return path

    def load(self, is_run_input: bool | None = None, **kwargs: Any) -> Any:
        """Cache the file and load it into memory: a DataFrame for `.parquet`/`.csv`/`.tsv`, an
        AnnData for `.h5ad` and for an AnnData `.zarr` folder, a dict for `.json`/`.yaml`, a str
        for `.txt`/`.fasta`; formats lamindb does not parse either (`.html`, `.png`, `.jpg`,
        `.gif`, `.svg`, `.rds`) give the local path, as lamindb does outside IPython. `kwargs` go
        to the reader (e.g. `columns=` for parquet). The run input is recorded only if loading
        works.

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

    def open(
        self,
        mode: str = "r",
        engine: str = "pyarrow",
        is_run_input: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Open the data for streaming, without loading it (lamindb's `open()`): an AnnData in
        backed mode for `.h5ad` (use it in a `with` block, or `.close()` it), an `h5py.File` for
        `.h5`/`.hdf5`, a read-only `zarr.Group` for a `.zarr` folder, and a
        `pyarrow.dataset.Dataset` for `.parquet`, `.csv`, `.json`, `.orc`, `.arrow`, `.feather`,
        `.ipc` and folders of such files. Local files are opened where they are, `s3://` ones
        read in place (nothing is cached; an `.h5ad` is cached first with anndata before 0.12.8,
        which cannot stream it). `kwargs` go to the opener. The run input is
        recorded only if opening works, as `load()` does.

        >>> with ln.Artifact.get(key="scrna/sample1.h5ad").open() as adata:
        ...     adata.isbacked, adata.X[:1].shape
        (True, (1, 4))
        >>> ln.Artifact(df, key="tables/metrics.parquet").save().open().to_table().num_rows
        3
        """
        if mode != "r":
            raise InvalidArgument(
                f"open(mode={mode!r}): artifacts open read-only (mode='r'): writing would change "
                "bytes that the stored hash describes; save changed data as a new version"
            )
        if engine != "pyarrow":
            raise NotSupported(
                f"open(engine={engine!r}): only engine='pyarrow' is supported (polars is not a "
                "dependency of lineage)"
            )
        suffix = (self.suffix or "").lower()
        if suffix not in loaders.OPENABLE or (not suffix and not is_folder(self)):
            raise InvalidArgument(
                f"cannot open artifact {self.uid} with suffix {suffix or 'none'!r} for "
                f"streaming; open() supports {', '.join(s for s in loaders.OPENABLE if s)} and "
                "folders of such tables; use .load() or .cache() instead"
            )
        uri = uri_of(self)
        if suffix == ".h5ad" and loaders.is_remote(uri) and not loaders.access.streams_h5ad():
            logger.warning(
                "the installed anndata cannot stream %s in backed mode (0.12.8 and later can); "
                "opening a cached copy",
                uri,
            )
            uri = str(cache_artifacts([self])[0])
        with loader_errors():
            opened = loaders.open_file(uri, suffix, settings.storage_options, **kwargs)
        track_input([self], is_run_input)
        return opened

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


class ArtifactList(list[Artifact]):
    """A list of artifacts with `save()` (lamindb's `SQLRecordList`), as `Artifact.from_dir`
    returns it."""

    def save(self) -> ArtifactList:
        """Save every artifact, as `ln.save` does: new ones in batches, the others one by one.

        >>> Path("run2").mkdir(); _ = Path("run2/x.txt").write_text("x")
        >>> [a.key for a in ln.Artifact.from_dir("run2", key="runs/2").save()]
        ['runs/2/x.txt']
        """
        new = [a for a in self if starts_a_family(a)]
        save_artifacts(new)
        batched = {id(a) for a in new}
        for artifact in self:
            if id(artifact) not in batched:
                artifact.save()
        return self


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
    copy_of: dict[int, str] = {}  # what removes an artifact's copy: its file, or as_folder(dest)
    files: list[tuple[Any, str]] = []
    folders: list[tuple[Any, str]] = []
    for artifact in batch:
        artifact._default_edges()
        placement = artifact._placement()
        artifact._to_one["storage"] = placement.storage
        if placement.in_place is not None:
            artifact._values["storage_path"] = placement.in_place
            continue
        dest = artifact._values["storage_path"] = placement.destination(
            artifact.uid, artifact.suffix
        )
        if is_folder(artifact):
            folders.append((artifact._source, dest))
            copy_of[id(artifact)] = loaders.as_folder(dest)
        else:
            files.append((artifact._source, dest))
            copy_of[id(artifact)] = dest
    written: list[str] = []

    def drop_copy(artifact: Artifact) -> None:  # its bytes were stored meanwhile by another
        copied = copy_of.get(id(artifact))
        if copied in written:
            loaders.delete_file(copied, settings.storage_options)
            written.remove(copied)

    try:
        written = loaders.put_files(files, settings.storage_options)
        with loader_errors():  # a folder changed since it was hashed (emptied, a new link)
            # put_dirs removes its own copies if it fails; `written` then holds the files'.
            written += loaders.put_dirs(folders, settings.storage_options)
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


def _folder_info(uri: str) -> loaders.FileInfo:
    """lamindb's size, hash and file count of a local folder or `s3://` prefix; a folder that
    cannot be one artifact (empty, a link out of it, a FIFO in it) is an InvalidArgument."""
    try:
        return loaders.dir_info(uri, settings.storage_options)
    except FileNotFoundError as exc:
        raise MissingFile(f"Artifact(): {exc}") from None
    except ValueError as exc:
        raise InvalidArgument(f"Artifact(): {exc}") from None


def _files_of(text: str) -> tuple[str, list[tuple[str, str]]]:
    """`from_dir()`'s folder (resolved, or an `s3://` prefix) and its files (relative name,
    path or URI), with the constructor's errors for what is not a folder."""
    if loaders.is_remote(text):
        if not text.startswith("s3://"):
            raise InvalidArgument(f"{text!r}: only local paths and s3:// URIs are supported")
        folder = text.rstrip("/")
        files = loaders.list_dir(folder, settings.storage_options)
        if not files:
            raise MissingFile(f"from_dir(): no objects under the prefix {text}")
        return folder, files
    if not text or "\0" in text:
        raise InvalidArgument(f"from_dir(): {text!r} is not a folder path")
    try:
        path = Path(text).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise InvalidArgument(f"from_dir(): cannot resolve the path {text}: {exc}") from None
    if not path.exists():
        raise MissingFile(f"from_dir(): no such folder: {text}")
    if not path.is_dir():
        raise InvalidArgument(f"from_dir(): {text} is not a folder; use ln.Artifact(path)")
    try:
        return str(path), loaders.list_dir(path)
    except ValueError as exc:
        raise InvalidArgument(f"from_dir(): {exc}") from None


def _key_in_storage(folder: str) -> str:
    """lamindb's default key of `from_dir()`: the folder's path inside its registered storage
    root (an `s3://` bucket counts as one), else the folder's name."""
    remote = loaders.is_remote(folder)
    root = registered_root_of(folder) or (_bucket_root(folder) if remote else None)
    if root is None:
        return Path(folder).name
    if remote:
        return folder[len(root.rstrip("/")) :].strip("/")
    relative = Path(folder).relative_to(Path(root).expanduser().resolve()).as_posix()
    return "" if relative == "." else relative


def _check_same_kind(artifact: Artifact, revises: Artifact | None) -> None:
    """A version family holds files or folders, not both (lamindb refuses to replace one by
    the other)."""
    if revises is None or is_folder(artifact) == is_folder(revises):
        return
    kinds = ("folder", "file") if is_folder(revises) else ("file", "folder")
    raise InvalidArgument(
        f"Artifact(revises={revises.uid}): that artifact is a {kinds[0]}, the new data a "
        f"{kinds[1]}; a version family holds one kind: leave out revises= to start a new one"
    )


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
