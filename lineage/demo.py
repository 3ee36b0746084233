"""The README demo: the main job end to end against the configured Neo4j (by default the local
server, started here if needed). Later issues extend it step by step."""

from __future__ import annotations

import time

import lineage as ln


def run_demo() -> None:
    t0 = time.perf_counter()
    instance = ln.connect()
    print(f"1. connected to {instance.uri} ({instance.source}) in {time.perf_counter() - t0:.1f}s")
    print(f"   Neo4j {instance.server_version} {instance.server_edition}")
    report = instance.schema
    if report.created:
        print(f"2. installed schema v{report.version}: {len(report.created)} constraints/indexes")
    else:
        print(f"2. schema v{report.version} already installed; nothing to create")
    constraints = ln.cypher(
        "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties "
        "RETURN labelsOrTypes[0] AS label, properties[0] AS property ORDER BY label, property"
    )
    print(f"3. {len(constraints)} uniqueness constraints, e.g.:")
    print(constraints.head(4).to_string(index=False))
    answer = ln.cypher("RETURN $a + $b AS sum", a=40, b=2)
    print(f"4. a parameterised query: $a + $b = {answer['sum'].iloc[0]}")
    print("Stop the local server with: python -m lineage server stop")
