"""`ln.cypher`: the user's own Cypher, with parameters, as a DataFrame."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lineage._instance import current
from lineage.errors import InvalidType


def cypher(query: str, /, **parameters: Any) -> pd.DataFrame:
    """Run a Cypher query against the current instance and return its rows as a DataFrame.

    Values are always passed as parameters (`$name` in the query), never pasted into it.
    Nodes and relationships come back as dicts of their properties.

    >>> ln.cypher("RETURN $a + $b AS total", a=40, b=2)
       total
    0     42
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidType(f"cypher() needs a non-empty query string, got {query!r}")
    keys, rows = current().connection.run_with_keys(query, parameters)
    return pd.DataFrame(rows, columns=keys)
