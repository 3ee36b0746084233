"""The User node records are `CREATED_BY`: one per handle, made on first use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from graph import ids as gids
from graph import models as gm
from graph import records as gr

if TYPE_CHECKING:
    from lineage._instance import Instance
    from lineage._registries import User

_lock = threading.Lock()
_cache: dict[tuple[object, str], User] = {}


def current_user(instance: Instance) -> User:
    """The User for `ln.settings.user` in `instance`, created once (safe across processes)."""
    from lineage._registries import User
    from lineage._settings import settings

    handle = settings.user
    key = (instance.connection, handle)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    row, _ = gr.merge_record(
        instance.connection,
        "User",
        "handle",
        handle,
        {"uid": gids.base62(gm.uid_length("User")), "name": handle},
    )
    user = User._from_row(row, None)
    with _lock:
        _cache[key] = user
    return user
