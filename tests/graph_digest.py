"""Every node and edge of the graph as plain, sorted values: two graphs are the same graph when
their `snapshot()`s are equal (the schema-version node, which `connect()` maintains, left out)."""

from __future__ import annotations

import json
from typing import Any

from lineage._instance import current


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _node_id(row: dict[str, Any]) -> str:
    if row["label"] == "FeatureValue":
        return _key(["FeatureValue", row["props"]["feature"], row["props"]["value"]])
    if row["label"] == "LineageCounter":
        return _key(["LineageCounter", row["props"]["label"]])
    return _key([row["label"], row["props"].get("uid")])


def snapshot() -> dict[str, list[str]]:
    """Nodes (label and every property) and edges (both ends, type, every property)."""
    conn = current().connection
    nodes = conn.run(
        "MATCH (n) WHERE NOT n:LineageSchema "
        "RETURN head(labels(n)) AS label, size(labels(n)) AS n_labels, properties(n) AS props"
    )
    assert all(r["n_labels"] == 1 for r in nodes)
    edges = conn.run(
        "MATCH (a)-[r]->(b) WHERE NOT a:LineageSchema "
        "RETURN head(labels(a)) AS al, properties(a) AS ap, type(r) AS type, "
        "properties(r) AS props, head(labels(b)) AS bl, properties(b) AS bp"
    )
    return {
        "nodes": sorted(_key([r["label"], r["props"]]) for r in nodes),
        "edges": sorted(
            _key(
                [
                    _node_id({"label": r["al"], "props": r["ap"]}),
                    r["type"],
                    r["props"],
                    _node_id({"label": r["bl"], "props": r["bp"]}),
                ]
            )
            for r in edges
        ),
    }
