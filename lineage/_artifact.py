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
import time
from dataclasses import dataclass
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
from lineage._instance import Instance, current
from lineage._keys import check_key
from lineage._model import Model, register, require_saved
from lineage._registries import Storage
from lineage._run import current_run
from lineage._settings import settings
from lineage._user import current_user
from lineage._versioned import only_row
from lineage.errors import (
    CommitUnknown,
    DuplicateContent,
    InvalidArgument,
    InvalidType,
    MissingFile,
    NotSupported,
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
        revises: an earlier version; the new artifact joins its version family. Without it, a
            key that already names artifacts in the same storage makes the new artifact the
            next version of that family (as in lamindb).
        version: a version tag, unique within the family.
        skip_hash_lookup: whether to skip looking for an artifact with the same content. None
            (default): look, except for files under a registered storage root and empty files
            (never looked up); True: never look; False: look (empty files excepted).

    >>> artifact = ln.Artifact("counts.csv", key="raw/counts.csv").save()
    >>> artifact = ln.Artifact(df, key="tables/metrics.parquet").save()
    >>> v2 = ln.Artifact(df2, revises=artifact).save()
    >>> v2.key, [a.uid[-4:] for a in v2.versions]    # one family: the uid's last 4 count up
    ('tables/metrics.parquet', ['0000', '0001'])
    >>> v3 = ln.Artifact(df.head(2), key="tables/metrics.parquet").save()  # same key: a version
    >>> v3.uid[-4:], ln.Artifact.get(key="tables/metrics.parquet") == v3
    ('0002', True)
    """

    _label = "Artifact"
    _skip_hash_lookup = False  # set by the constructor; records read from the graph did look
    _replacement: Artifact | None = None  # content from `replace()`, written by `save()`

    def __init__(
        self,
        data: Any,
        key: str | None = None,
        description: str | None = None,
        run: Any = None,
        revises: Artifact | None = None,
        version: str | None = None,
        skip_hash_lookup: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise InvalidArgument(
                f"Artifact() got unexpected keyword {', '.join(map(repr, sorted(kwargs)))}; "
                "valid: data, key, description, run, revises, version, skip_hash_lookup"
            )
        # Every argument is checked before the data is read or staged: a bad one costs nothing
        # and leaves nothing behind, even when the content turns out to be stored already.
        check_key(key, "Artifact key")
        self._validate("description", description)
        self._validate("version", version)
        self._check_revises(revises)
        if skip_hash_lookup is not None and not isinstance(skip_hash_lookup, bool):
            raise InvalidType(
                f"Artifact(skip_hash_lookup=...) takes True, False or None, not "
                f"{type(skip_hash_lookup).__name__}"
            )
        super().__init__()
        object.__setattr__(self, "_source", None)  # local file to copy at save(), if any
        object.__setattr__(self, "_owns_source", False)  # a staged temporary file
        object.__setattr__(self, "_in_place", None)  # (uri, storage root) for in-place files
        self._set_run(run)
        self._read_data(data)
        try:
            self._init_fields(key, description, revises, version, skip_hash_lookup)
        except BaseException:
            self._discard_staged()
            raise

    def _init_fields(
        self,
        key: str | None,
        description: str | None,
        revises: Artifact | None,
        version: str | None,
        skip_hash_lookup: bool | None,
    ) -> None:
        values = self._values
        # lamindb's rules: files already under a registered storage root are registered where
        # they lie without a content look-up (a file moved there is a new record), and empty
        # files are never looked up (any two would otherwise be one artifact). A copy lineage
        # made (`<root>/.lineage/...`) is looked up: it gives back its own artifact.
        in_place = self._in_place is not None and not _is_managed(*self._in_place)
        skip = in_place if skip_hash_lookup is None else skip_hash_lookup
        skip = skip or values.get("size") == 0 or values.get("hash") is None
        object.__setattr__(self, "_skip_hash_lookup", skip)
        family = None
        if revises is None and key is not None:
            family = {"key": key, "storage__root": self._storage_root()}
        existing, head = self._stored_for(None if skip else values["hash"], revises, family)
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
            if key is not None and key != revises.key:
                logger.warning("renaming artifact from %r to %r", revises.key, key)
            key = key if key is not None else revises.key
            description = description if description is not None else revises.description
        _check_key_suffix(key, values.get("suffix") or "")
        self.key = key
        self.description = description
        self.version = version
        if head is not None:
            self._infer_revises(head)
        else:
            self._set_revises(revises)
        if revises is None and head is None:
            self._start_family()
            object.__setattr__(self, "_by_key", key is not None)

    def _storage_root(self) -> str:
        """The storage root the bytes will be in (see `_placement`): a key names a family per
        storage, as in lamindb."""
        return self._in_place[1] if self._in_place is not None else settings.storage

    def _family_names(self) -> tuple[str, ...]:
        return ("key", "storage") if super()._family_names() else ()

    def _family_key(self) -> Any:
        return (self.key, self._storage_root()) if self._family_names() else None

    def _same_content(self) -> tuple[str, ...]:
        # Without a look-up, only lamindb's unique (storage, key, hash) makes two the same
        # record; for a file registered in place, its path too (lamindb's key for it is the
        # path, so a moved file is a new record).
        if not self._skip_hash_lookup:
            return ()
        return ("key", "storage", "storage_path") if self._in_place else ("key", "storage")

    def _twin_key(self) -> Any:
        if not self._skip_hash_lookup:
            return self.hash
        in_place = self._in_place[0] if self._in_place else None
        return (self.hash, self.key, self._storage_root(), in_place)

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
            root = _registered_root_of(uri) or _bucket_root(uri)
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
        registered = _registered_root_of(str(path))
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
            if self._replacement is not None:
                self._save_replacement()
                return self
            return super().save()
        if self._to_one.get("revises") is None:
            save_artifacts([self])
            return self
        self._default_edges()
        placement = self._placement()
        self._to_one["storage"] = placement.storage
        if placement.in_place is not None:
            self._values["storage_path"] = placement.in_place
            super().save()
            return self
        written: list[str] = []

        def write_file(uid: str) -> dict[str, Any]:
            # Inside the transaction, with the family locked: nobody else gets this uid.
            dest = placement.destination(uid, self.suffix)
            loaders.put_file(self._source, dest, settings.storage_options)
            written.append(dest)
            return {"storage_path": dest}

        self._refresh_revises()
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
            self._become_stored(only_row(exc))
            return self
        # Copies from attempts the driver retried under another uid.
        loaders.delete_files(
            [d for d in written if d != row["storage_path"]], settings.storage_options
        )
        self._load(row)
        self._discard_staged()
        self._after_first_save()
        return self

    # -- replacing the content ------------------------------------------------------------------
    def replace(self, data: Any, run: Any = None, format: str | None = None) -> Artifact | None:
        """Replace the content without making a new version (lamindb's `replace`); `save()`
        stores it. The uid stays; hash, size, suffix, `otype` and `n_observations` become the
        new data's, and the run the one passed or tracked (or none). A new suffix also goes
        into the key (`x.csv` -> `x.parquet`) and the stored file's name. `data`: a local file
        outside every registered storage root, a DataFrame or an AnnData.

        If an artifact with the same content is stored already, nothing changes and that
        artifact is returned (as in lamindb); else None.

        >>> artifact.replace(df2)                  # a DataFrame: stored as parquet
        >>> artifact.save().key, artifact.suffix, artifact.uid[-4:]    # the same version
        ('raw/counts.parquet', '.parquet', '0000')
        >>> ln.Artifact.get(key="raw/counts.parquet").load().shape
        (4, 2)
        """
        require_saved(self, "replace()")
        if format is not None:
            raise NotSupported(
                "replace(format=...) is not supported: DataFrames are stored as parquet and "
                "AnnData as h5ad; pass a file to store another format"
            )
        run = current_run(run)
        new = self._read(data)
        try:
            stored = self._plan_replacement(new, data)
        except BaseException:
            new._discard_staged()
            raise
        if stored is not None:  # the same content is stored: nothing to replace
            new._discard_staged()
            return stored
        if self._replacement is not None:  # an earlier replace() not saved: this one wins
            self._replacement._discard_staged()
        object.__setattr__(self, "_replacement", new)
        self._to_one["run"] = run
        self._dirty.add("run")
        return None

    @classmethod
    def _read(cls, data: Any) -> Artifact:
        """An unsaved artifact that holds only what `data` is: its file fields and its source
        (staged, in place or to copy); what `replace()` reads."""
        new = cls.__new__(cls)
        Model.__init__(new)
        for name, value in (("_source", None), ("_owns_source", False), ("_in_place", None)):
            object.__setattr__(new, name, value)
        new._read_data(data)
        return new

    def _plan_replacement(self, new: Artifact, data: Any) -> Artifact | None:
        """Check `new` (from `_read`) as this artifact's new content and put the key and path
        it changes to in `new._values`; if that content is stored already, return that record."""
        if new._in_place is not None:
            raise InvalidArgument(
                f"replace(): {data} lies in the registered storage {new._in_place[1]}, where it "
                "is registered in place; pass a file outside every storage root, a DataFrame or "
                "an AnnData (or register that file as an artifact of its own)"
            )
        if new.size != 0:  # empty files are never looked up (lamindb)
            existing, _ = self._stored_for(new.hash, None)
            if existing is not None:
                if existing.uid == self.uid:
                    logger.info("replace(): the content is unchanged")
                else:
                    logger.warning(
                        "replace(): artifact %s (key=%r) has this content already; nothing "
                        "replaced, returning it",
                        existing.uid,
                        existing.key,
                    )
                return existing
        old_suffix, suffix = self.suffix or "", new.suffix or ""
        key, path = self.key, self.storage_path
        if suffix != old_suffix:
            key = key if key is None else check_key(_with_suffix(key, old_suffix, suffix))
            if _is_managed(path, self.storage.root):
                path = loaders.join(self.storage.root, MANAGED_DIR, self.uid + suffix)
            else:  # registered in place: lamindb renames the file too
                path = _with_suffix(path, old_suffix, suffix)
                if loaders.exists(path, settings.storage_options):
                    raise InvalidArgument(
                        f"replace(): the new suffix {suffix!r} would store the file at {path}, "
                        "which exists already; move that file away first"
                    )
        new._values.update(key=key, storage_path=path)
        return None

    def _save_replacement(self) -> None:
        """Write the new bytes (see `replace()`) where the artifact's file will be, keeping
        the old ones, inside the transaction that updates the node; then drop the old bytes,
        or put them back if the transaction failed."""
        new = self._replacement
        assert new is not None, "save() calls this only with a replacement pending"
        old_path = self.storage_path
        before = (dict(self._values), set(self._dirty))
        changed = ("key", "suffix", "size", "hash", "hash_type", "otype", "n_observations")
        for name in (*changed, "storage_path"):
            self._values[name] = new._values.get(name)
            self._dirty.add(name)
        dest = self._values["storage_path"]
        swapped: list[str | None] = []

        def write_file() -> None:  # once, whatever the driver retries
            if not swapped:
                swapped.append(loaders.swap_in(new._source, dest, settings.storage_options))

        try:
            self._write_changes(before_update=write_file)
        except BaseException as exc:
            self._values.clear()
            self._values.update(before[0])
            self._dirty.clear()
            self._dirty.update(before[1])
            if swapped and isinstance(exc, CommitUnknown):
                logger.warning(
                    "kept both the new file %s and the old bytes (%s): the commit is unknown; "
                    "check the artifact once Neo4j is back",
                    dest,
                    swapped[0] or old_path,
                )
            elif swapped and swapped[0] is not None:
                loaders.restore_file(swapped[0], dest, settings.storage_options)
            elif swapped:
                loaders.delete_file(dest, settings.storage_options)
            raise
        if swapped and swapped[0] is not None:
            loaders.delete_file(swapped[0], settings.storage_options)
        if old_path != dest:
            loaders.delete_file(old_path, settings.storage_options)
        new._discard_staged()
        object.__setattr__(self, "_replacement", None)

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
    unique, twins, later = split_twins(artifacts)
    for start in range(0, len(unique), gr.BATCH_SIZE):
        _save_batch(unique[start : start + gr.BATCH_SIZE])
    become_twins(twins, Artifact._discard_staged)
    for artifact in later:  # each becomes a new version of the family named by its key
        save_artifacts([artifact])


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


def _bucket_root(uri: str) -> str:
    bucket = uri[len("s3://") :].split("/", 1)[0]
    return f"s3://{bucket}"


def _is_managed(path: str, root: str) -> bool:
    """Copies lineage made itself (`<root>/.lineage/...`); in-place files belong to the user."""
    return loaders.is_under(path, loaders.join(root, MANAGED_DIR))


def _with_suffix(name: str, old: str, new: str) -> str:
    """A key or path with its suffix `old` (if it ends so) replaced by `new`."""
    if old and loaders.suffix_of(name) == old:
        name = name[: -len(old)]
    return name + new


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


_ROOTS_TTL = 5.0  # seconds a process trusts its list of registered roots
_roots_cache: dict[Any, tuple[float, list[str]]] = {}
_storage_cache: dict[tuple[Any, str], Model] = {}


def _registered_root_of(path: str) -> str | None:
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


def storage_record(root: str, instance: Instance) -> Model:
    """The Storage node of a root, created on first use (once per process and instance)."""
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
        _storage_cache[key] = Storage._from_row(row, None)
        _roots_cache.pop(instance.connection, None)
    return _storage_cache[key]
