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
from lineage._curate import AnnDataComponents, Annotation, ComponentCurator, check_schema
from lineage._data import (
    DataRecord,
    become_twins,
    cache_artifacts,
    check_loadable,
    is_folder,
    load_artifacts,
    loaded_rows,
    loader_errors,
    mapped_artifacts,
    release_cached,
    split_twins,
    starts_a_family,
    storage_options,
    track_input,
    track_rows,
    uri_of,
    write_new_families,
)
from lineage._instance import current
from lineage._keys import check_key
from lineage._model import Model, register, require_saved
from lineage._registries import forget_storage, registered_root_of, storage_record
from lineage._run import current_run
from lineage._schema import valid_features
from lineage._settings import settings
from lineage._versioned import only_row
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
    >>> _ = Path("plate1").mkdir(); _ = Path("plate1/well_A1.txt").write_text("A1")
    >>> folder = ln.Artifact("plate1", key="images/plate1").save()
    >>> folder.n_files, folder.hash_type, sorted(p.name for p in folder.cache().iterdir())
    (1, 'md5-d', ['well_A1.txt'])
    """

    _label = "Artifact"
    _skip_hash_lookup = False  # set by the constructor; records read from the graph did look
    _replacement: Artifact | None = None  # content from `replace()`, written by `save()`
    # What validating the data against a schema found (`from_dataframe(schema=...)`, curators):
    # written with the artifact's node, or with the stored record it turns out to be.
    _annotation: Annotation | None = None

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
            _check_same_kind(self, revises)
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
            _check_same_kind(self, head, by_key=True)
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
    def from_dataframe(
        cls, df: Any, key: str | None = None, *, schema: Any = None, **kwargs: Any
    ) -> Artifact:
        """An artifact from a DataFrame, stored as parquet; with `schema=`, validated first
        (columns, dtypes, categorical values: a `ValidationError` lists what is invalid, and
        nothing is made) and, when saved, annotated: `artifact.schema` is the schema and the
        values of categorical columns become its labels (lamindb's `from_dataframe`). A schema
        with `coerce=True` stores the converted columns.

        >>> table = ln.Artifact.from_dataframe(df, key="tables/metrics.parquet").save()
        >>> table.otype, table.suffix, table.n_observations
        ('DataFrame', '.parquet', 3)
        >>> gene = ln.Feature(name="gene", dtype=ln.ULabel).save()
        >>> ln.save([ln.ULabel(name=name) for name in ("a", "b", "c")])
        [ULabel(...), ULabel(...), ULabel(...)]
        >>> frame = df.assign(gene=df["gene"].astype("category"))
        >>> schema = ln.Schema([gene]).save()
        >>> table = ln.Artifact.from_dataframe(frame, key="tables/genes.parquet", schema=schema)
        >>> table.save().schema == schema, sorted(u.name for u in table.ulabels)
        (True, ['a', 'b', 'c'])
        """
        if loaders.otype_of(df) != "DataFrame":
            raise InvalidType(f"from_dataframe() takes a pandas DataFrame, not {type(df).__name__}")
        if schema is None:
            return cls(df, key=key, **kwargs)
        if isinstance(schema, str) and schema == "valid_features":  # lamindb's built-in
            schema = valid_features()
        schema = check_schema(schema, "DataFrame", "from_dataframe()")
        if schema.slots:
            raise NotSupported(
                "from_dataframe(schema=...): a DataFrame is validated by its columns "
                "(Schema(features=...)), not by slots"
            )
        curator = ComponentCurator(
            df, schema, hint="ln.curators.DataFrameCurator(df, schema).cat", mutable=False
        )
        curator.validate()
        return cls._annotated(curator.dataset, Annotation(schema, curator.labels()), key, kwargs)

    from_df = from_dataframe  # lamindb's older spelling

    @classmethod
    def from_anndata(
        cls, adata: Any, key: str | None = None, *, schema: Any = None, **kwargs: Any
    ) -> Artifact:
        """An artifact from an AnnData, stored as h5ad; with `schema=` (an AnnData schema with
        slots such as `obs`, `var.T`), each slot is validated first and the artifact is
        annotated when saved, as `from_dataframe` does.

        >>> scrna = ln.Artifact.from_anndata(adata, key="scrna/all-samples.h5ad").save()
        >>> scrna.otype, scrna.suffix, scrna.n_observations
        ('AnnData', '.h5ad', 6)
        """
        if loaders.otype_of(adata) != "AnnData":
            raise InvalidType(f"from_anndata() takes an AnnData, not {type(adata).__name__}")
        if schema is None:
            return cls(adata, key=key, **kwargs)
        if isinstance(schema, str) and schema == "ensembl_gene_ids_and_valid_features_in_obs":
            raise NotSupported(
                "from_anndata(schema='ensembl_gene_ids_and_valid_features_in_obs'): lamindb's "
                "built-in validates var against bionty's gene registry, which lineage does not "
                "have; pass ln.Schema(otype='AnnData', slots={'obs': ln.Schema(itype=ln.Feature)"
                ".save(), ...})"
            )
        schema = check_schema(schema, "AnnData", "from_anndata()")
        if schema.otype != "AnnData" or not schema.slots:
            raise InvalidArgument(
                "from_anndata(schema=...) takes an AnnData schema: "
                "ln.Schema(otype='AnnData', slots={'obs': ..., 'var.T': ...})"
            )
        components = AnnDataComponents(adata, schema, mutable=False)
        components.validate()
        return cls._annotated(
            components.data(), Annotation(schema, components.labels()), key, kwargs
        )

    @classmethod
    def _annotated(
        cls, data: Any, annotation: Annotation, key: str | None, kwargs: dict[str, Any]
    ) -> Artifact:
        """An artifact of validated `data` that `annotation` is written with when saved."""
        artifact = cls(data, key=key, **kwargs)
        artifact._annotate(annotation)
        return artifact

    def _annotate(self, annotation: Annotation) -> None:
        """Keep `annotation` for the next save: the `schema` edge (replacing any), and the
        label edges of the categorical values."""
        object.__setattr__(self, "_annotation", annotation)
        self._to_one["schema"] = annotation.schema
        self._dirty.add("schema")

    def _edges(self) -> list[gr.EdgeSpec]:
        edges = super()._edges()
        labels = self._annotation.label_edge() if self._annotation is not None else None
        return [*edges, labels] if labels is not None else edges

    def _added_edges(self) -> list[gr.EdgeSpec]:
        labels = self._annotation.label_edge() if self._annotation is not None else None
        return [labels] if labels is not None else []

    def _become_stored(self, row: dict[str, Any]) -> None:
        super()._become_stored(row)
        if self._annotation is not None:  # annotate the stored record instead
            self._annotate(self._annotation)

    def _became_twin(self) -> None:
        """This artifact is the same content as another of its batch, which was written."""
        self._discard_staged()
        if self._annotation is not None:
            self._annotate(self._annotation)

    def _finish_annotation(self) -> None:
        """After a save: the annotation went into the node's transaction, or, if the artifact
        turned out to be a stored record (the same content, saved meanwhile), is written to
        that record now (one transaction, with the schema edge)."""
        if self._annotation is None:
            return
        if self._saved and "schema" in self._dirty:
            self._write_changes()
        object.__setattr__(self, "_annotation", None)

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
            if self._replacement is not None:
                self._save_replacement()
            else:
                super().save()
        elif self._to_one.get("revises") is None:
            save_artifacts([self])
        else:
            _again_if_storage_vanished(self._save_version)
        self._finish_annotation()
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
        if is_folder(new) or is_folder(self):
            raise NotSupported(
                "replace() takes a file, a DataFrame or an AnnData and replaces a file artifact; "
                "for a folder, save a new version: ln.Artifact(folder, revises=artifact)"
            )
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

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        """A member or the meta artifact of a collection is not deleted for good: removing its
        edge would silently change a saved collection (lamindb protects both). Counted inside
        the deleting transaction, so a collection saved meanwhile cannot lose it."""
        if not permanent:
            return []
        return [
            gr.Guard(relation, self._refuse_while_in(relation, role))
            for relation, role in (
                ("collections", "a member"),
                ("meta_of_collection", "the meta artifact"),
            )
        ]

    def _refuse_while_in(self, relation: str, role: str) -> Callable[[int], None]:
        def refuse(count: int) -> None:
            # The names are read for the message only; the count decided.
            collections = self._related(relation, branch=None).to_list()[:5]
            names = ", ".join(f"{c.key!r} ({c.uid})" for c in collections) or str(count)
            raise InvalidArgument(
                f"artifact {self.uid} is {role} of collection(s) {names}; delete those first"
            )

        return refuse

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
        try:
            with loader_errors():
                data = loaders.load_file(path, self.suffix or "", **kwargs)
        finally:
            if kwargs.get("backed") is None:  # read into memory: the copy may go
                release_cached([path])
        track_input([self], is_run_input)
        rows = loaded_rows([self], data)
        if rows is not None:
            track_rows([self], rows, is_run_input)
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
            rows = loaded_rows(artifacts, data)
        else:
            data = mapped_artifacts(artifacts, **kwargs)
            rows = data.file_rows()
        track_input(artifacts, is_run_input)
        if rows is not None:
            track_rows(artifacts, rows, is_run_input)
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
    unique, twins, later = split_twins(artifacts)
    for start in range(0, len(unique), gr.BATCH_SIZE):
        _again_if_storage_vanished(partial(_save_batch, unique[start : start + gr.BATCH_SIZE]))
    become_twins(twins, Artifact._became_twin)
    for artifact in later:  # each becomes a new version of the family named by its key
        save_artifacts([artifact])
    for artifact in artifacts:
        artifact._finish_annotation()


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


def _check_same_kind(artifact: Artifact, revises: Artifact | None, by_key: bool = False) -> None:
    """A version family holds files or folders, not both (lamindb refuses to replace one by
    the other). `by_key`: `revises` is the family the new artifact's key names."""
    if revises is None or is_folder(artifact) == is_folder(revises):
        return
    kinds = ("folder", "file") if is_folder(revises) else ("file", "folder")
    how = f"key {revises.key!r} names" if by_key else f"revises={revises.uid} is"
    fix = "use another key" if by_key else "leave out revises="
    raise InvalidArgument(
        f"Artifact(): {how} a version family of a {kinds[0]}, the new data is a {kinds[1]}; "
        f"a version family holds one kind: {fix} to start a new one"
    )


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
