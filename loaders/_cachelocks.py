"""How processes share one download cache: a lock file per cached object, and a record per
process of the cached objects it uses.

Both are plain files in the cache, so they work where `flock`/`fcntl` locks do not, or hold on
one host only (NFS mounted with `nolock`, some FUSE filesystems): a lock is created with
`O_CREAT | O_EXCL`, which is atomic on local filesystems and on NFSv3 and later, and a process
shows it is alive by touching its files every `HEARTBEAT_S` seconds from a daemon thread.

- `EntryLock`: `.<name>.lock` beside the cached object (file or folder), holding its owner's
  host, pid, a token and the time. Whoever downloads, checks or evicts the object holds it, so two
  processes that miss the same file download it once: the second waits, then finds the copy
  fresh.
- `Readers`: `<cache>/.readers/<host>-<pid>-<token>.held`, the objects this process uses (cached
  and handed out, or being read); eviction leaves every object some live process lists.

A lock or record is stale when its owner ran on this host and its pid is gone, or when it was
not touched for `STALE_S` seconds (a process that crashed on another host, or was suspended that
long); a stale lock is broken and a stale record removed. Breaking a live lock by mistake (a
process frozen for a minute) costs a second download, never a wrong file: every download goes
to a temporary name and is renamed into place.

>>> from pathlib import Path
>>> lock = EntryLock(Path("cache/bucket/x.h5ad"))
>>> with lock:
...     lock.path.name, lock.held_by_other()
('.x.h5ad.lock', False)
>>> lock.path.exists()
False
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "HEARTBEAT_S",
    "READERS_DIR",
    "STALE_S",
    "EntryLock",
    "Readers",
    "held_entries",
    "readers_of",
]

logger = logging.getLogger("loaders")

HEARTBEAT_S = 10.0  # how often a live process touches its lock files and its readers record
STALE_S = 60.0  # untouched this long: its owner is gone
READERS_DIR = ".readers"  # under the cache root; no bucket name starts with a dot


def _host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # gone, or still being written by its creator
        return None
    return data if isinstance(data, dict) else None


def _stale(path: Path, owner: dict[str, Any] | None, stale_s: float) -> bool:
    """Whether the lock or record at `path` (its content `owner`) belongs to no live process."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False  # gone already: nothing to break
    if owner is not None and owner.get("host") == _host():
        pid = owner.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
            return True
    return time.time() - mtime > stale_s


class _Heartbeat:
    """Touches this process's lock files and readers records every `HEARTBEAT_S` seconds."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._guard = threading.Lock()
        self._pid: int | None = None

    def reset(self) -> None:
        """In a forked child: none of the parent's paths, a fresh guard (the parent's may have
        been held by another thread at the fork), no thread yet."""
        self.__init__()  # type: ignore[misc]

    def add(self, path: Path) -> None:
        with self._guard:
            self._paths.add(path)
            if self._pid != os.getpid():  # none yet, or a fork's copy without its thread
                self._paths = {path}
                self._pid = os.getpid()
                threading.Thread(
                    target=self._run, name="lineage-cache-heartbeat", daemon=True
                ).start()

    def discard(self, path: Path) -> None:
        with self._guard:
            self._paths.discard(path)

    def _run(self) -> None:
        me = os.getpid()
        while True:
            time.sleep(HEARTBEAT_S)
            if os.getpid() != me:
                return
            with self._guard:
                paths = list(self._paths)
            for path in paths:
                with contextlib.suppress(OSError):  # released meanwhile
                    os.utime(path)


_heartbeat = _Heartbeat()


class EntryLock:
    """The lock of one cached object (`target`, a file or a folder): `.<name>.lock` beside it.

    `acquire()` waits while a live process holds it and breaks it when stale; `release()`
    removes it only while it is still this holder's (a lock broken and taken over meanwhile is
    left to its new owner).
    """

    POLL_S = 0.2  # longest wait between two tries

    def __init__(self, target: Path, stale_s: float = STALE_S):
        self.path = target.with_name(f".{target.name}.lock")
        self.target = target
        self.stale_s = stale_s
        self.token: str | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock: True once held; False at once if `blocking` is False and a live
        process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        delay, started, told = 0.005, time.monotonic(), False
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._break_if_stale():
                    continue
                if not blocking:
                    return False
                if not told and time.monotonic() - started > 1.0:
                    owner = _read_json(self.path) or {}
                    logger.info(
                        "waiting for process %s on %s to finish with %s",
                        owner.get("pid", "?"), owner.get("host", "?"), self.target,
                    )  # fmt: skip
                    told = True
                time.sleep(delay)
                delay = min(delay * 2, self.POLL_S)
                continue
            token = secrets.token_hex(8)
            owner = {"host": _host(), "pid": os.getpid(), "token": token, "time": time.time()}
            with os.fdopen(fd, "w") as handle:
                json.dump(owner, handle)
            self.token = token
            _heartbeat.add(self.path)
            return True

    def release(self) -> None:
        """Give the lock up (remove its file if it is still ours)."""
        if self.token is None:
            return
        _heartbeat.discard(self.path)
        owner = _read_json(self.path)
        if owner is not None and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)
        self.token = None

    def held_by_other(self) -> bool:
        """Whether a live process other than this holder holds the lock now."""
        owner = _read_json(self.path)
        if not self.path.exists() or (owner is not None and owner.get("token") == self.token):
            return False
        return not _stale(self.path, owner, self.stale_s)

    def _break_if_stale(self) -> bool:
        """Remove a stale lock; True if the lock was stale (or vanished), so try again."""
        owner = _read_json(self.path)
        if not _stale(self.path, owner, self.stale_s):
            return not self.path.exists()
        # Move it aside first: of several processes breaking it, one moves it; the others find
        # it gone (or find the lock a faster one made since, which is not stale).
        aside = self.path.with_name(f"{self.path.name}.{secrets.token_hex(6)}.broken")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        moved = _read_json(aside)
        if owner is not None and (moved or {}).get("token") != owner.get("token"):
            # A new owner's lock was moved, not the stale one: put it back (unless yet another
            # lock exists by now, whose owner then shares the download: two copies, one kept).
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        else:
            logger.warning(
                "broke the stale lock of %s (its owner, process %s on %s, is gone)",
                self.target, (owner or {}).get("pid", "?"), (owner or {}).get("host", "?"),
            )  # fmt: skip
        aside.unlink(missing_ok=True)
        return True

    def __enter__(self) -> EntryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Readers:
    """This process's record of the cached objects it uses, under one cache root, and how many
    holds each has (by its path relative to the root).

    The record, `<root>/.readers/<host>-<pid>-<token>.held`, is a journal: a first line naming
    its owner (JSON), then a line `+"<name>"` when an object is first held and `-"<name>"` when
    its last hold goes. Appending keeps a process that caches objects one call at a time at
    constant cost per call; the journal is rewritten (to a temporary name, then renamed) when
    it has grown to twice what it lists, and removed when it lists nothing.
    """

    def __init__(self, root: Path):
        self.root = root
        self.counts: Counter[str] = Counter()
        self.pid = os.getpid()
        self.path = root / READERS_DIR / f"{_host()}-{self.pid}-{secrets.token_hex(4)}.held"
        self._lines = 0  # entry lines in the journal
        self._guard = threading.Lock()

    def hold(self, rels: Iterable[str]) -> None:
        """One more hold on each object (paths relative to the root)."""
        with self._guard:
            new = []
            for rel in rels:
                if self.counts[rel] == 0 and rel not in new:
                    new.append(rel)
                self.counts[rel] += 1
            self._append([f"+{json.dumps(rel)}" for rel in new])

    def release(self, rels: Iterable[str]) -> None:
        """One hold less on each object; an object no longer held may be evicted."""
        with self._guard:
            gone = []
            for rel in rels:
                if self.counts.get(rel, 0) > 0:
                    self.counts[rel] -= 1
                    if self.counts[rel] == 0:
                        del self.counts[rel]
                        gone.append(rel)
            if not self.counts:
                _heartbeat.discard(self.path)
                self.path.unlink(missing_ok=True)
                self._lines = 0
            elif self._lines + len(gone) > 2 * len(self.counts) + 64:
                self._rewrite()
            else:
                self._append([f"-{json.dumps(rel)}" for rel in gone])

    def _header(self) -> str:
        return json.dumps({"host": _host(), "pid": self.pid}) + "\n"

    def _append(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._lines == 0 or not self.path.exists():
            self._rewrite()
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
        self._lines += len(lines)

    def _rewrite(self) -> None:
        """The journal anew: its header and a `+` line per object held now."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        body = "".join(f"+{json.dumps(rel)}\n" for rel in sorted(self.counts))
        try:
            tmp.write_text(self._header() + body, encoding="utf-8")
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._lines = len(self.counts)
        _heartbeat.add(self.path)


def _read_journal(path: Path) -> tuple[dict[str, Any] | None, set[str]]:
    """A readers journal's owner and the objects it holds now (an unfinished last line, being
    appended right now, is left out: its hold is not taken yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, set()
    lines = text.split("\n")[:-1]  # the part after the last newline is unfinished
    if not lines:
        return None, set()
    try:
        owner = json.loads(lines[0])
    except ValueError:
        return None, set()
    held: set[str] = set()
    for line in lines[1:]:
        try:
            name = json.loads(line[1:])
        except ValueError:
            continue
        if not isinstance(name, str):
            continue
        if line.startswith("+"):
            held.add(name)
        elif line.startswith("-"):
            held.discard(name)
    return (owner if isinstance(owner, dict) else None), held


_READERS: dict[Path, Readers] = {}
_READERS_GUARD = threading.Lock()


def _after_fork_in_child() -> None:
    global _READERS_GUARD
    _heartbeat.reset()
    _READERS.clear()  # the parent's holds are the parent's: its record still lists them
    _READERS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def readers_of(root: Path) -> Readers:
    """This process's `Readers` for the cache at `root`."""
    key = root.resolve()
    with _READERS_GUARD:
        readers = _READERS.get(key)
        if readers is None or readers.pid != os.getpid():
            readers = _READERS[key] = Readers(key)
        return readers


def held_entries(root: Path, stale_s: float = STALE_S) -> set[str]:
    """The objects (paths relative to `root`) that some live process holds; the records of
    processes that are gone are removed on the way."""
    held: set[str] = set()
    folder = root / READERS_DIR
    try:
        records = list(folder.iterdir())
    except FileNotFoundError:
        return held
    for record in records:
        if record.name.startswith(".") or record.suffix != ".held":
            if record.name.endswith(".tmp") and _stale(record, None, stale_s):
                record.unlink(missing_ok=True)  # a rewrite interrupted by a crash
            continue
        owner, names = _read_journal(record)
        if _stale(record, owner, stale_s):
            record.unlink(missing_ok=True)
            continue
        held |= names
    return held
