"""Where scalar feature values live, measured (docs/architecture.md, Features):

    python benchmarks/feature_storage.py 10000

(a) `(:Artifact)-[:HAS_VALUE]->(:FeatureValue {feature, value})`, one node per distinct pair,
unique (feature, value), sought with `USING INDEX SEEK` (what lineage does), against
(b) `(:Artifact)-[:FV {feature, value}]->(:Feature)`, a copy per record with a relationship
index on (feature, value). One float feature on N artifacts; `value > x` with ~100 hits, p50 of
50 runs after 10 warm-ups; plus the time to write the values. Last line JSON. Runs on a scratch
Neo4j (`_lineage_env.py`).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

QUERIES = {
    "nodes": "MATCH (n:Artifact)-[:HAS_VALUE]->(v:FeatureValue) "
    "USING INDEX SEEK v:FeatureValue(feature, value) "
    "WHERE v.feature = $f AND v.value > $x AND n.branch = 1 RETURN count(DISTINCT n) AS c",
    "edge_props": "MATCH (n:Artifact)-[r:FV]->(:Feature) "
    "WHERE r.feature = $f AND r.value > $x AND n.branch = 1 RETURN count(DISTINCT n) AS c",
}


def operators(plan: dict) -> list[str]:
    out = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", []):
        out += operators(child)
    return out


def measure(conn, n: int) -> dict:
    rng = random.Random(0)
    temps = [round(rng.uniform(0, 40), 3) for _ in range(n)]
    conn.run(
        "UNWIND range(0, $n - 1) AS i CREATE (:Artifact {uid: 'a' + toString(i), id: i, branch: 1})",
        {"n": n},
    )
    conn.run("CREATE (:Feature {uid: 'f1', name: 'temperature', dtype: 'float'})")
    conn.run("CREATE INDEX rel_fv IF NOT EXISTS FOR ()-[r:FV]-() ON (r.feature, r.value)")
    conn.run("CALL db.awaitIndexes()")
    rows = [{"u": f"a{i}", "v": t} for i, t in enumerate(temps)]
    out: dict = {"n": n}
    t0 = time.perf_counter()
    conn.run(
        "UNWIND $rows AS row MATCH (n:Artifact {uid: row.u}) "
        "MERGE (v:FeatureValue {feature: 'f1', value: row.v}) MERGE (n)-[:HAS_VALUE]->(v)",
        {"rows": rows},
    )
    out["write_nodes_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    conn.run(
        "UNWIND $rows AS row MATCH (n:Artifact {uid: row.u}) MATCH (f:Feature {uid: 'f1'}) "
        "CREATE (n)-[:FV {feature: 'f1', value: row.v}]->(f)",
        {"rows": rows},
    )
    out["write_edge_props_s"] = round(time.perf_counter() - t0, 2)
    x = sorted(temps, reverse=True)[100]
    hits = sum(1 for t in temps if t > x)
    for name, query in QUERIES.items():
        params = {"f": "f1", "x": x}
        assert conn.run(query, params)[0]["c"] == hits
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            conn.read(query, params)
            times.append((time.perf_counter() - t0) * 1000)
        profile = conn.driver.execute_query("PROFILE " + query, params).summary.profile
        out[name] = {"p50_ms": round(statistics.median(times[10:]), 2), "plan": operators(profile)}
    return out


def main() -> None:
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))
    from _lineage_env import scratch_lineage

    import lineage as ln
    from graph.server import default_install_dir

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with scratch_lineage(Path(tempfile.mkdtemp()), default_install_dir(), lambda m: None):
        print(json.dumps(measure(ln.connect().connection, n)))


if __name__ == "__main__":
    main()
