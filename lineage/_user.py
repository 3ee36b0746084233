"""The User node records are `CREATED_BY`: one per handle, made on first use."""

from __future__ import annotations

import threading

from graph import ids as gids
from graph import models as gm
from graph import records as gr
from lineage._instance import Instance
from lineage._model import Model, registry_of
from lineage._settings import settings

_lock = threading.Lock()
_cache: dict[tuple[object, str], Model] = {}


def current_user(instance: Instance) -> Model:
    """The User for `ln.settings.user` in `instance`, created once (safe across processes)."""

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
    user = registry_of("User")._from_row(row, None)
    with _lock:
        _cache[key] = user
    return user
