"""Named Cypher queries users (and the demo) run through `ln.cypher(query, **params)`.

They live here because Cypher lives only in `graph/`. `docs/cypher-cookbook.md` shows each one
with an explanation and the Python call; `tests/test_cookbook.py` checks that every query in the
page is, character for character, a constant of this module, and runs them all on the demo graph.

Lineage edges point from a thing to what it was made from: `(data)-[:GENERATED_BY]->(run)`,
`(run)-[:USED]->(data)`, `(run)-[:EXECUTES]->(transform)`, `(collection)-[:CONTAINS]->(artifact)`
and `(collection)-[:HAS_META]->(artifact)`. So "upstream" is outgoing and "downstream" incoming
along `GENERATED_BY|USED|CONTAINS|HAS_META|EXECUTES`. Variable-length bounds cannot be
parameters in Cypher, hence the literal 20.

>>> import lineage as ln
>>> from graph.cookbook import VERSION_FAMILY
>>> ln.cypher(VERSION_FAMILY, key="scrna")[["is_latest", "revises", "artifacts"]]
   is_latest revises                               artifacts
0       True    None  [scrna/sample1.h5ad, scrna/sample2.h5ad]
"""

from __future__ import annotations

# What `ln.lineage.diff`, `impact` and `stale` run, shown in the cookbook as they are (the
# `X as X` form says they are re-exported).
# What `Collection.label_counts` runs, the same way.
from graph.features import MEMBER_LABEL_COUNTS as MEMBER_LABEL_COUNTS
from graph.questions import ARTIFACT_DIFF as ARTIFACT_DIFF
from graph.questions import COLLECTION_DIFF as COLLECTION_DIFF
from graph.questions import IMPACT as IMPACT
from graph.questions import RUN_DIFF as RUN_DIFF
from graph.questions import RUN_ROWS as RUN_ROWS
from graph.questions import STALE as STALE

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

# Everything upstream of a record (what it was built from), nearest first, to 20 hops.
UPSTREAM = """
MATCH (start:Artifact|Collection|Run|Transform {uid: $uid})
MATCH p = (start)-[:GENERATED_BY|USED|CONTAINS|HAS_META|EXECUTES*1..20]->(up)
RETURN labels(up)[0] AS label, up.uid AS uid, coalesce(up.key, up.name) AS name,
       min(length(p)) AS depth
ORDER BY depth, label, name, uid
"""

# Everything downstream of a record (what was built from it): impact analysis.
DOWNSTREAM = """
MATCH (start:Artifact|Collection|Run|Transform {uid: $uid})
MATCH p = (start)<-[:GENERATED_BY|USED|CONTAINS|HAS_META|EXECUTES*1..20]-(down)
RETURN labels(down)[0] AS label, down.uid AS uid, coalesce(down.key, down.name) AS name,
       min(length(p)) AS depth
ORDER BY depth, label, name, uid
"""

# The runs that read any version of a collection's family.
RUNS_USING_COLLECTION = """
MATCH (:Collection {uid: $uid})-[:REVISES*0..]-(version:Collection)
WITH DISTINCT version
MATCH (r:Run)-[:USED]->(version)
OPTIONAL MATCH (r)-[:EXECUTES]->(t:Transform)
RETURN r.uid AS run, t.key AS transform, version.uid AS collection,
       version.is_latest AS latest_version, r.started_at AS started_at, r.status AS status
ORDER BY started_at, run, collection
"""

# For each member of a collection, in order: the run and transform that produced it.
MEMBER_PRODUCERS = """
MATCH (:Collection {uid: $uid})-[m:CONTAINS]->(a:Artifact)
OPTIONAL MATCH (a)-[:GENERATED_BY]->(r:Run)
OPTIONAL MATCH (r)-[:EXECUTES]->(t:Transform)
RETURN m.position AS position, a.key AS artifact, a.uid AS artifact_uid,
       t.key AS transform, t.uid AS transform_uid, r.uid AS run
ORDER BY position
"""

# Artifacts of a branch that no collection holds, as a member or as its metadata.
ARTIFACTS_IN_NO_COLLECTION = """
MATCH (a:Artifact {branch: $branch})
WHERE NOT EXISTS { (a)<-[:CONTAINS|HAS_META]-(:Collection) }
RETURN a.key AS key, a.uid AS uid, a.size AS size, a.created_at AS created_at
ORDER BY key, uid
"""

# The latest version of every artifact, collection and transform family whose key has a prefix.
LATEST_VERSIONS = """
MATCH (x:Artifact|Collection|Transform)
WHERE x.is_latest = true AND x.branch = 1 AND x.key STARTS WITH $prefix
RETURN labels(x)[0] AS label, x.key AS key, x.uid AS uid, x.version AS version,
       COUNT { (x)-[:REVISES*1..]->() } + 1 AS versions
ORDER BY label, key, uid
"""

# The longest chains from a final result back to raw data, longest first.
LONGEST_CHAIN = """
MATCH p = (sink:Artifact|Collection)-[:GENERATED_BY|USED|CONTAINS|HAS_META*1..20]->(source)
WHERE NOT EXISTS { (sink)<-[:USED|CONTAINS|HAS_META]-() }
  AND NOT EXISTS { (source)-[:GENERATED_BY|USED|CONTAINS|HAS_META]->() }
RETURN length(p) AS hops,
       [n IN nodes(p) | labels(n)[0] + ':' + coalesce(n.key, n.name, n.uid)] AS chain
ORDER BY hops DESC, chain
LIMIT $limit
"""

# The runs of a transform (any version with the key) started in a time window [since, until).
RUNS_IN_WINDOW = """
MATCH (r:Run)-[:EXECUTES]->(t:Transform {key: $key})
WHERE r.started_at >= datetime($since) AND r.started_at < datetime($until)
RETURN r.uid AS run, t.uid AS transform, r.started_at AS started_at,
       r.finished_at AS finished_at, r.status AS status, r.params AS params
ORDER BY started_at, run
"""

# What a user created, newest first.
CREATED_BY_USER = """
MATCH (x)-[:CREATED_BY]->(:User {handle: $handle})
RETURN labels(x)[0] AS label, x.uid AS uid, coalesce(x.key, x.name) AS name,
       x.created_at AS created_at, x.branch AS branch
ORDER BY created_at DESC, label, uid
"""

# Collections not in the trash that hold a trashed artifact (as a member or as metadata).
COLLECTIONS_WITH_TRASHED_ARTIFACTS = """
MATCH (c:Collection)-[m:CONTAINS|HAS_META]->(a:Artifact {branch: -1})
WHERE c.branch <> -1
RETURN c.key AS collection, c.uid AS uid, a.key AS artifact, a.uid AS artifact_uid,
       type(m) AS role
ORDER BY collection, uid, artifact
"""

# What two runs both read.
SHARED_INPUTS = """
MATCH (:Run {uid: $run_a})-[:USED]->(input)<-[:USED]-(:Run {uid: $run_b})
RETURN labels(input)[0] AS label, input.uid AS uid, coalesce(input.key, input.name) AS name
ORDER BY label, name, uid
"""

# The runs that read data labeled with a ULabel (through a feature or directly): an artifact or
# collection with the label, or a collection holding such an artifact.
RUNS_USING_LABELED_DATA = """
MATCH (u:ULabel {name: $label})<-[:LABELED_WITH]-(labeled:Artifact|Collection)
WHERE u.branch = 1
MATCH (r:Run)-[:USED]->(input)-[:CONTAINS*0..1]->(labeled)
OPTIONAL MATCH (r)-[:EXECUTES]->(t:Transform)
RETURN r.uid AS run, t.key AS transform, r.started_at AS started_at,
       collect(DISTINCT input.key) AS inputs
ORDER BY started_at, run
"""

# Artifacts (models) made by runs whose every input artifact (a collection input: its members)
# has the value `$value` for the feature `$feature`: a scalar value or a label's name.
TRAINED_ONLY_ON = """
MATCH (f:Feature {name: $feature})
WITH COLLECT {
  MATCH (d:Artifact)-[:HAS_VALUE]->(:FeatureValue {feature: f.uid, value: $value}) RETURN d
  UNION
  MATCH (d:Artifact)-[l:LABELED_WITH]->(:ULabel {name: $value}) WHERE l.feature = f.uid
  RETURN d
} AS matching
UNWIND matching AS d
MATCH (r:Run)-[:USED]->()-[:CONTAINS*0..1]->(d)
WITH DISTINCT matching, r
WHERE NOT EXISTS {
  MATCH (r)-[:USED]->()-[:CONTAINS*0..1]->(other:Artifact) WHERE NOT other IN matching
}
MATCH (model:Artifact)-[:GENERATED_BY]->(r)
WHERE model.branch = 1
OPTIONAL MATCH (r)-[:EXECUTES]->(t:Transform)
RETURN model.key AS model, model.uid AS uid, r.uid AS run, t.key AS transform,
       size(COLLECT { MATCH (r)-[:USED]->()-[:CONTAINS*0..1]->(x:Artifact) RETURN DISTINCT x })
         AS trained_on
ORDER BY model, uid
"""

# The recipes of docs/cypher-cookbook.md, in the page's order.
RECIPES: tuple[str, ...] = (
    "UPSTREAM",
    "DOWNSTREAM",
    "RUNS_USING_COLLECTION",
    "MEMBER_PRODUCERS",
    "COLLECTION_DIFF",
    "ARTIFACTS_IN_NO_COLLECTION",
    "LATEST_VERSIONS",
    "LONGEST_CHAIN",
    "RUNS_IN_WINDOW",
    "CREATED_BY_USER",
    "VERSION_FAMILY",
    "RUN_INPUTS_AND_OUTPUTS",
    "COLLECTIONS_WITH_TRASHED_ARTIFACTS",
    "SHARED_INPUTS",
    "STALE",
    "IMPACT",
    "RUN_DIFF",
    "ARTIFACT_DIFF",
    "RUN_ROWS",
    "RUNS_USING_LABELED_DATA",
    "TRAINED_ONLY_ON",
    "MEMBER_LABEL_COUNTS",
)

__all__ = ["RECIPES", *RECIPES]
