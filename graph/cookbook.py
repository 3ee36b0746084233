"""Named Cypher queries users (and the demo) run through `ln.cypher(query, **params)`.

They live here because Cypher lives only in `graph/`; `docs/guide.md` shows the same patterns.

>>> import lineage as ln
>>> from graph.cookbook import VERSION_FAMILY
>>> ln.cypher(VERSION_FAMILY, key="demo/scrna")
"""

from __future__ import annotations

# Every version of the collections with a key, oldest first, with their members in order.
VERSION_FAMILY = """
MATCH (c:Collection {key: $key})
OPTIONAL MATCH (c)-[m:CONTAINS]->(a:Artifact)
OPTIONAL MATCH (c)-[:REVISES]->(previous:Collection)
WITH c, previous, m, a ORDER BY c.uid, m.position
RETURN c.uid AS collection, c.is_latest AS is_latest, previous.uid AS revises,
       collect(a.key) AS artifacts
ORDER BY collection
"""

# What a run read and what it wrote.
RUN_INPUTS_AND_OUTPUTS = """
MATCH (r:Run {uid: $run})-[:EXECUTES]->(t:Transform)
OPTIONAL MATCH (r)-[:USED]->(input)
OPTIONAL MATCH (output)-[:GENERATED_BY]->(r)
RETURN t.key AS transform, collect(DISTINCT input.key) AS inputs,
       collect(DISTINCT output.key) AS outputs
"""

# Everything upstream of a record (what it was built from), to a bounded depth.
UPSTREAM = """
MATCH (start {uid: $uid})
MATCH (start)-[:GENERATED_BY|USED*1..10]->(up)
RETURN DISTINCT labels(up)[0] AS label, up.uid AS uid, coalesce(up.key, up.name) AS name
"""
