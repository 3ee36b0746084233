"""`ln.doctor()` / `lineage doctor`: find files nobody points at, and graph inconsistencies.

A save copies its file (or folder) to `<root>/.lineage/<uid><suffix>` before the transaction that
writes the node commits, and removes the copy if the transaction fails. A process killed between
the two (kill -9, power loss, OOM) leaves a copy with no node: an orphan. Doctor lists, for every
registered storage root, the files under `<root>/.lineage/` that no artifact's `storage_path`
names (a file inside a folder copy belongs to the folder's artifact), and the graph
inconsistencies `graph.doctor.find_issues` knows of. With `fix=True` it
removes the orphans older than a grace period (an in-flight save's copy is young and
unreferenced until its transaction commits). It never touches anything outside
`<root>/.lineage/`, so files registered in place are safe, and it never changes the graph.

A storage root shared by several Neo4j databases is not supported by `fix=True`: files saved
through the other database look like orphans from this one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import loaders
from graph import doctor as gd
from lineage._artifact import MANAGED_DIR
from lineage._instance import current
from lineage._settings import settings
from lineage.errors import InvalidArgument

DEFAULT_GRACE = 600.0  # seconds: a younger unreferenced file may belong to a save in flight


@dataclass(frozen=True)
class StoredFile:
    """A file under a storage root's `.lineage/` directory."""

    uri: str
    size: int
    age: float  # seconds since it was last modified


@dataclass
class DoctorReport:
    """What `doctor()` found and did.

    `orphans` are unreferenced files older than the grace period (removed when `fix=True`,
    listed in `removed`); `recent` are unreferenced files younger than it, left alone;
    `missing` are artifacts whose file under `.lineage/` is gone; `issues` are graph
    inconsistencies; `skipped` names roots that could not be listed, and why; `elsewhere` are
    local roots that do not exist on this machine (another machine's storage), not checked.
    """

    roots: list[str] = field(default_factory=list)
    orphans: list[StoredFile] = field(default_factory=list)
    recent: list[StoredFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[gd.Issue] = field(default_factory=list)
    issues: list[gd.Issue] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs attention (orphans removed count as fixed)."""
        removed = set(self.removed)
        left = [o for o in self.orphans if o.uri not in removed]
        return not (left or self.missing or self.issues or self.skipped)

    def describe(self) -> str:
        """The report as text, one finding a line (what `lineage doctor` prints)."""
        removed = set(self.removed)
        lines = [f"checked {len(self.roots)} storage root(s): {', '.join(self.roots) or '-'}"]
        for reason in self.skipped:
            lines.append(f"skipped: {reason}")
        for root in self.elsewhere:
            lines.append(f"not on this machine (not checked): {root}")
        for orphan in self.orphans:
            state = "removed" if orphan.uri in removed else "orphan"
            lines.append(f"{state}: {orphan.uri} ({orphan.size} bytes, {orphan.age:.0f} s old)")
        for young in self.recent:
            lines.append(
                f"recent (left alone, may be a save in progress): {young.uri} "
                f"({young.age:.0f} s old)"
            )
        lines += [issue.describe() for issue in self.missing + self.issues]
        lines.append("ok" if self.ok else self._summary(removed))
        return "\n".join(lines)

    def _summary(self, removed: set[str]) -> str:
        left = sum(o.uri not in removed for o in self.orphans)
        parts = []
        if left:
            parts.append(f"{left} orphan file(s) (remove with `lineage doctor --fix`)")
        if self.missing:
            parts.append(f"{len(self.missing)} artifact(s) with a missing file")
        if self.issues:
            parts.append(f"{len(self.issues)} graph issue(s)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} root(s) not checked")
        return "problems: " + "; ".join(parts)


def doctor(fix: bool = False, grace: float = DEFAULT_GRACE) -> DoctorReport:
    """Check storage and graph; with `fix=True` remove orphan files older than `grace` s.

    Orphans are files under a registered storage root's `.lineage/` directory that no artifact
    (in any branch) points at: left by a process killed between copying a file and committing
    its record. Graph issues (a version family without exactly one `is_latest`, collection
    positions that are not `0..n-1`, an artifact without storage, ...) are reported, not fixed.

    >>> ln.doctor().ok
    True

    A copy that a killed save left behind (made here by hand), found and removed; `grace=0`
    because it is brand new:

    >>> left = Path(ln.settings.storage, ".lineage", "Tx9TskRbe2mh0000.csv")
    >>> left.write_text("gene,count")
    10
    >>> report = ln.doctor(grace=0)
    >>> report.orphans
    [StoredFile(uri='.../.lineage/Tx9TskRbe2mh0000.csv', size=10, age=...)]
    >>> print(report.describe())
    checked 1 storage root(s): ...
    orphan: .../.lineage/Tx9TskRbe2mh0000.csv (10 bytes, ... s old)
    problems: 1 orphan file(s) (remove with `lineage doctor --fix`)
    >>> ln.doctor(fix=True, grace=0).removed
    ['.../.lineage/Tx9TskRbe2mh0000.csv']
    """
    if grace < 0:
        raise InvalidArgument(f"grace must be >= 0 seconds, not {grace}")
    conn = current().connection
    report = DoctorReport(roots=gd.storage_roots(conn))
    copies: dict[str, str] = {}  # listed file -> the copy it is part of (itself, or a folder)
    for root in report.roots:
        if not loaders.is_remote(root) and not Path(root).exists():
            # Registered from another machine sharing this database: its files are not here,
            # which says nothing about them.
            report.elsewhere.append(root)
            continue
        managed = loaders.join(root, MANAGED_DIR)
        try:
            # List first, then ask the graph: a save that commits in between is seen as
            # referenced, never the other way round.
            files = _list_files(managed)
        except Exception as exc:
            report.skipped.append(f"{managed}: {type(exc).__name__}: {exc}")
            continue
        prefix = managed.rstrip("/") + "/"
        known = gd.paths_under(conn, prefix)
        copies.update((f.uri, _copy_of(f.uri, prefix)) for f in files)
        listed = {f.uri for f in files} | {copies[f.uri] for f in files}
        for f in files:
            if f.uri in known or copies[f.uri] in known:
                continue
            (report.orphans if f.age >= grace else report.recent).append(f)
        # A save that copied its file after the listing and committed before the graph was
        # asked looks missing: look at the few candidates again.
        report.missing += [
            gd.Issue("missing file", "Artifact", path, "storage_path names a file that is gone")
            for path in sorted(known - listed)
            if not loaders.exists(path, settings.storage_options)
        ]
    report.issues = gd.find_issues(conn)
    if fix and report.orphans:
        report.removed = _remove(conn, [o.uri for o in report.orphans], copies)
    return report


def _copy_of(uri: str, prefix: str) -> str:
    """The copy a file under `<root>/.lineage/` belongs to: itself, or for a file inside a
    folder artifact's copy (`.lineage/<uid><suffix>/...`), that folder."""
    return prefix + uri[len(prefix) :].split("/", 1)[0]


def _remove(conn: Any, uris: list[str], copies: dict[str, str]) -> list[str]:
    # Ask once more right before removing: a save that started before the grace period and
    # committed since the listing now points at its file (or at the folder holding it).
    taken = gd.referenced(conn, sorted({*uris, *copies.values()}))
    removed = []
    for uri in uris:
        if uri in taken or copies[uri] in taken:
            continue
        if loaders.delete_file(uri, settings.storage_options):
            removed.append(uri)
    _remove_empty_folders({copies[uri] for uri in removed if copies[uri] != uri})
    return removed


def _remove_empty_folders(folders: set[str]) -> None:
    """Local directories an orphaned folder copy leaves once its files are gone (S3 has no
    directories to leave)."""
    for folder in folders:
        if loaders.is_remote(folder):
            continue
        for dirpath, _dirs, _names in sorted(os.walk(folder), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):  # not empty: a file was kept
                os.rmdir(dirpath)


def _list_files(managed: str) -> list[StoredFile]:
    """Regular files under a `.lineage/` directory (local or s3://), with size and age."""
    now = time.time()
    if loaders.is_remote(managed):
        fs, path = loaders.filesystem(managed, settings.storage_options)
        fs.invalidate_cache(path)
        scheme = managed.split("://", 1)[0]
        out = []
        for key, info in fs.find(path, detail=True).items():
            if info.get("type", "file") != "file":
                continue
            modified = info.get("LastModified") or info.get("mtime")
            if isinstance(modified, datetime):
                modified = modified.timestamp()
            age = now - float(modified) if modified is not None else float("inf")
            out.append(StoredFile(f"{scheme}://{key}", int(info.get("size") or 0), age))
        return out
    top = Path(managed)
    if top.is_symlink():
        # Following it could list (and remove) files that are not lineage's copies.
        raise InvalidArgument(f"{managed} is a symbolic link; lineage never creates one there")
    if not top.exists():
        return []
    out = []
    for dirpath, _dirs, names in os.walk(top, followlinks=False):
        for name in names:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):  # never a symlink, socket or fifo
                out.append(StoredFile(full, st.st_size, now - st.st_mtime))
    return out
