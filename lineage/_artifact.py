"""Artifact: one file (a local path, an `s3://` object, or a DataFrame/AnnData written to one).

Saving follows DESIGN.md §5: the bytes are hashed when the artifact is made, the same content
already stored gives back the existing record, the file is copied to
`<storage root>/.lineage/<uid><suffix>` before the node that points at it is written, and the copy
is removed again if that transaction fails. Files already under a registered storage root, and
`s3://` URIs, are registered in place.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import loaders
from graph import records as gr
from lineage._keys import check_key
from lineage._record import Record, register, require_saved
from lineage._run import current_run, mark_input
from lineage._settings import settings
from lineage._versioned import Versioned
from lineage._view import HasLineage
from lineage.errors import CommitUnknown, InvalidArgument

logger = logging.getLogger("lineage")

MANAGED_DIR = ".lineage"  # artifacts copied into a storage root live here, named by uid


@register
class Artifact(Versioned, HasLineage):
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
    _unique_content = True

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
        if revises is not None and not isinstance(revises, Artifact):
            raise TypeError(
                f"Artifact(revises=...) takes an Artifact, not {type(revises).__name__}: a "
                "version family holds records of one registry"
            )
        super().__init__()
        object.__setattr__(self, "_source", None)  # local file to copy at save(), if any
        object.__setattr__(self, "_owns_source", False)  # a staged temporary file
        object.__setattr__(self, "_in_place", None)  # (uri, storage root) for in-place files
        object.__setattr__(self, "_explicit_run", current_run(run) if run is not None else None)
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
        if revises is not None:
            require_saved(revises, "revises=")
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
            self._values["uid"] = self._stem() + "0000"

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if name == "key":  # also when set later: `artifact.key = ...; artifact.save()`
            return check_key(value, f"{cls.__name__} key")
        return super()._validate(name, value)

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
            raise TypeError(
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
            raise FileNotFoundError(f"Artifact(): no such file: {uri}")
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
            raise TypeError(f"from_dataframe() takes a pandas DataFrame, not {type(df).__name__}")
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
            raise TypeError(f"from_anndata() takes an AnnData, not {type(adata).__name__}")
        return cls(adata, key=key, **kwargs)

    # -- saving ----------------------------------------------------------------------------------
    def _default_edges(self) -> None:
        super()._default_edges()
        run = self._explicit_run or current_run()
        if run is not None and "run" not in self._to_one:
            self._to_one["run"] = run

    def save(self) -> Artifact:
        """Copy the file into storage (unless registered in place) and write the record.

        >>> notes = ln.Artifact(paths[0], key="notes/file0.txt").save()
        >>> notes.storage_path                       # the copy, named by the uid
        '.../.lineage/...0000.txt'
        >>> notes.description = "a note"            # a saved record: save() writes the change
        >>> notes.save().description
        'a note'
        """
        if self._saved:
            return super().save()
        self._default_edges()
        if self._in_place is not None:
            uri, root = self._in_place
            self._values["storage_path"] = uri
            self._to_one["storage"] = storage_record(root, self._inst())
            super().save()
            return self
        root = settings.storage
        self._to_one["storage"] = storage_record(root, self._inst())
        written: list[str] = []

        def write_file(uid: str) -> dict[str, Any]:
            # Inside the transaction, with the family locked: nobody else gets this uid.
            dest = loaders.join(root, MANAGED_DIR, uid + (self.suffix or ""))
            loaders.put_file(self._source, dest, settings.storage_options)
            written.append(dest)
            return {"storage_path": dest}

        props = {k: v for k, v in self._values.items() if v is not None}
        try:
            row = gr.create_record(
                self._inst().connection,
                self._label,
                gr.NewRecord(props, self._edges()),
                stem=self._stem(),
                new_family=self._new_family(),
                before_create=write_file,
                unique_hash=True,
            )
        except BaseException as exc:
            if isinstance(exc, CommitUnknown) and written:
                # The last attempt may be stored (earlier ones failed): keep its copy, or the
                # record could point at a removed file. Doctor removes it if it is an orphan.
                logger.warning(
                    "kept %s: its record's commit is unknown; once Neo4j is back, "
                    "`lineage doctor --fix` removes it if no artifact points at it",
                    written.pop(),
                )
            for dest in written:  # also a loser's copy when another process stored the bytes
                loaders.delete_file(dest, settings.storage_options)
            if not isinstance(exc, gr.DuplicateContent):
                raise
            self._discard_staged()
            self._become_stored(exc)
            return self
        for dest in written:  # copies from attempts the driver retried under another uid
            if dest != row["storage_path"]:
                loaders.delete_file(dest, settings.storage_options)
        self._load(row)
        self._discard_staged()
        self._after_first_save()
        return self

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

    @classmethod
    def get(
        cls,
        idlike: int | str | None = None,
        *,
        is_run_input: bool | Any = False,
        **expressions: Any,
    ) -> Artifact:
        """Get one artifact; `is_run_input=True` records it as an input of the tracked run.

        >>> run = ln.track("preprocess.py")
        >>> artifact = ln.Artifact.get(key="raw/counts.csv", is_run_input=True)
        >>> [a.key for a in run.input_artifacts]
        ['raw/counts.csv']
        >>> ln.finish()
        Run(uid='...', ..., status='completed')
        """
        record = super().get(idlike, **expressions)
        mark_input([record], is_run_input)
        return record

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
        _check_loadable([self])
        data = loaders.load_file(cache_artifacts([self])[0], self.suffix or "", **kwargs)
        track_input([self], is_run_input)
        return data


# -- data: cache, load, mapped (shared with Collection and QuerySet) -----------------------------
def track_input(records: Sequence[Record], is_run_input: bool | Any | None) -> None:
    """Record `(run)-[:USED]->` for data that was read, with lamindb's default: None means
    "yes if a run is tracked" (its own outputs excepted, which `mark_input` skips)."""
    from lineage._run import context

    records = [r for r in records if r._saved]  # an unsaved record can't be anyone's input
    if is_run_input is None:
        is_run_input = context.run is not None
    if records:
        mark_input(records, is_run_input)


def storage_options() -> dict[str, Any]:
    """`ln.settings.storage_options`, plus the `LINEAGE_S3_ENDPOINT_URL` endpoint if they name
    none, for code that does not go through `loaders.filesystem` (`Artifact.path`, `mapped`)."""
    options = dict(settings.storage_options or {})
    if "endpoint_url" not in options and os.environ.get(loaders.ENDPOINT_ENV):
        options["endpoint_url"] = os.environ[loaders.ENDPOINT_ENV]
    return options


def _uri_of(artifact: Artifact) -> str:
    if artifact.storage_path:
        return artifact.storage_path
    in_place = getattr(artifact, "_in_place", None)  # records read from the graph have none
    if in_place is not None:  # registered in place, not saved yet
        return in_place[0]
    source = getattr(artifact, "_source", None)
    if source is not None:
        return str(source)
    raise InvalidArgument(f"{artifact!r} has no file to read")


def cache_artifacts(artifacts: Sequence[Artifact]) -> list[Path]:
    """Local paths of the artifacts' files, in order (remote ones synced into the cache)."""
    return loaders.sync(
        [_uri_of(a) for a in artifacts],
        settings.cache_dir,
        storage_options=settings.storage_options,
        hashes=[a.hash for a in artifacts],
        sizes=[a.size for a in artifacts],
    )


def _check_loadable(artifacts: Sequence[Artifact], concat: bool = False) -> list[str]:
    """The artifacts' suffixes, refused before any download if they cannot be loaded together."""
    suffixes = [a.suffix or "" for a in artifacts]
    distinct = sorted(set(suffixes))
    if len(distinct) > 1:
        raise InvalidArgument(
            f"cannot load artifacts of different suffixes together: "
            f"{', '.join(map(repr, distinct))}; all must share one suffix"
        )
    allowed = loaders.load.CONCATENABLE if concat and len(artifacts) > 1 else loaders.load.LOADABLE
    if distinct[0].lower() not in allowed:
        what = "concatenate" if allowed is loaders.load.CONCATENABLE else "load"
        raise InvalidArgument(
            f"cannot {what} artifacts with suffix {distinct[0] or 'none'!r}; supported: "
            f"{', '.join(sorted(allowed))} (use .cache() for the local path)"
        )
    return suffixes


def load_artifacts(artifacts: Sequence[Artifact], join: str = "outer", **kwargs: Any) -> Any:
    """Cache and concatenate artifacts of one suffix; AnnData gets `obs["artifact_uid"]`."""
    if not artifacts:
        raise InvalidArgument("nothing to load: no artifacts")
    if join not in ("inner", "outer"):
        raise InvalidArgument(f"join must be 'inner' or 'outer', not {join!r}")
    suffixes = _check_loadable(artifacts, concat=True)
    paths = cache_artifacts(artifacts)
    return loaders.load_files(paths, suffixes, join=join, keys=[a.uid for a in artifacts], **kwargs)


MAPPABLE_SUFFIXES = (".h5ad",)


def mapped_artifacts(artifacts: Sequence[Artifact], stream: bool = False, **kwargs: Any) -> Any:
    """A `loaders.MappedCollection` over .h5ad artifacts: cached local paths, or with
    `stream=True` the stored URIs read in place."""
    if not artifacts:
        raise InvalidArgument("nothing to map: no artifacts")
    bad = sorted({a.suffix or "" for a in artifacts} - set(MAPPABLE_SUFFIXES))
    if bad:
        raise InvalidArgument(
            f"mapped() works on {', '.join(MAPPABLE_SUFFIXES)} artifacts only; got suffix(es) "
            f"{', '.join(repr(s or 'none') for s in bad)}"
        )
    paths: list[str | Path]
    if stream:
        paths = [_uri_of(a) for a in artifacts]
    else:
        paths = [str(p) for p in cache_artifacts(artifacts)]
    return loaders.MappedCollection(
        paths, stream=stream, storage_options=storage_options(), **kwargs
    )


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
_storage_cache: dict[tuple[Any, str], Record] = {}


def _registered_root_of(path: str) -> str | None:
    """The registered storage root a path or URI lies under, if any (the longest)."""
    from lineage._instance import current
    from lineage._registries import Storage

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


def storage_record(root: str, instance: Any) -> Record:
    """The Storage node of a root, created on first use (once per process and instance)."""
    from graph import ids as gids
    from graph import models as gm
    from lineage._registries import Storage

    key = (instance.connection, root)
    if key not in _storage_cache:
        from lineage._user import current_user

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
