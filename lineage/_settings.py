"""`ln.settings`: where artifacts are stored, where files are cached, who is saving.

>>> ln.settings.storage = "s3://my-bucket/lineage"     # or a local directory
>>> ln.settings.storage_options = {"endpoint_url": "http://127.0.0.1:9000"}   # MinIO, moto
>>> ln.settings.storage
's3://my-bucket/lineage'
>>> ln.settings.cache_dir
PosixPath('.../cache')
>>> ln.settings.cache_max_bytes = "50GB"    # least recently used cached files go beyond that
>>> ln.settings.cache_max_bytes
50000000000
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from graph import lineage_home
from lineage import _instance
from lineage.errors import InvalidArgument, InvalidType
from loaders import is_remote, parse_size

CACHE_MAX_BYTES_ENV = "LINEAGE_CACHE_MAX_BYTES"


class Settings:
    """Per-process settings; defaults live under the lineage home (`LINEAGE_HOME`)."""

    def __init__(self) -> None:
        self._storage: str | None = None
        self._cache_dir: Path | None = None
        self._cache_max_bytes: int | None = None
        self.storage_options: dict[str, Any] | None = None

    @property
    def storage(self) -> str:
        """The storage root new artifacts are copied to: a directory or an `s3://` prefix."""
        if self._storage is None:
            return str((lineage_home() / "storage").resolve())
        return self._storage

    @storage.setter
    def storage(self, root: str | os.PathLike) -> None:
        if not isinstance(root, str | os.PathLike):
            raise InvalidType(f"ln.settings.storage takes a path or an s3:// URI, not {root!r}")
        root = os.fspath(root)
        if not isinstance(root, str) or not root:
            raise InvalidArgument("ln.settings.storage takes a local directory or an s3:// URI")
        if is_remote(root):
            if not root.startswith("s3://"):
                raise InvalidArgument(
                    f"storage {root!r}: only local directories and s3:// are supported"
                )
            self._storage = root.rstrip("/")
        else:
            path = Path(root).expanduser().resolve()
            path.mkdir(parents=True, exist_ok=True)
            self._storage = str(path)

    @property
    def cache_dir(self) -> Path:
        """Where temporary files (serialised DataFrames) and cached copies of cloud files go."""
        path = self._cache_dir or lineage_home() / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cache_dir.setter
    def cache_dir(self, path: str | os.PathLike) -> None:
        self._cache_dir = Path(path).expanduser().resolve()

    @property
    def cache_max_bytes(self) -> int | None:
        """The most bytes of cloud copies `cache_dir` may hold, None for no limit (the
        default; `LINEAGE_CACHE_MAX_BYTES` sets one for every process that does not set its
        own). After each download, least recently used copies are removed until the cache fits,
        except those a running process uses (shared caches: see `lineage cache --help`). Takes
        bytes or a size with a unit: `"500MB"`, `"50GB"`, `"2GiB"`.

        >>> ln.settings.cache_max_bytes = 2 * 1024**3
        >>> ln.settings.cache_max_bytes = None          # no limit
        """
        if self._cache_max_bytes is not None:
            return self._cache_max_bytes
        text = os.environ.get(CACHE_MAX_BYTES_ENV)
        if not text:
            return None
        try:
            return parse_size(text)
        except ValueError as exc:
            raise InvalidArgument(f"{CACHE_MAX_BYTES_ENV}={text!r}: {exc}") from None

    @cache_max_bytes.setter
    def cache_max_bytes(self, size: int | str | None) -> None:
        if size is None:
            self._cache_max_bytes = None
            return
        if isinstance(size, bool) or not isinstance(size, int | str):
            raise InvalidType(
                f"ln.settings.cache_max_bytes takes bytes (an int), a size such as '50GB', or "
                f"None, not {size!r}"
            )
        try:
            self._cache_max_bytes = parse_size(size)
        except ValueError as exc:
            raise InvalidArgument(f"ln.settings.cache_max_bytes: {exc}") from None

    @property
    def user(self) -> str:
        """The handle records are created by: `LINEAGE_USER`, else the login name."""
        return os.environ.get("LINEAGE_USER") or getpass.getuser()

    def add_instance(
        self,
        name: str,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
    ) -> None:
        """Name a Neo4j database so `Registry.using(name)` can query it.

        The name, address and credentials are saved in `<lineage home>/instances.json`. For a
        shared server::

            ln.settings.add_instance("shared", "bolt://db.example.org:7687", user="neo4j",
                                     password="...")
            ln.Collection.using("shared").filter(key__startswith="atlas/")

        Here, the server in `NEO4J_URI` under a second name:

        >>> env = os.environ
        >>> ln.settings.add_instance("mirror", env["NEO4J_URI"], user=env.get("NEO4J_USER"),
        ...                          password=env.get("NEO4J_PASSWORD"))
        >>> [c.key for c in ln.Collection.using("mirror").filter(key__startswith="scrna")]
        ['scrna']
        """
        _instance.add_instance(name, uri, user=user, password=password, database=database)

    def __repr__(self) -> str:
        return (
            f"Settings(storage={self.storage!r}, cache_dir='{self.cache_dir}', user={self.user!r})"
        )


settings = Settings()
