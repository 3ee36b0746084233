"""LineageGraph: lamindb's registries, with every record and relation stored in Neo4j.

>>> import lineage as ln
>>> ln.connect()                      # NEO4J_URI, or the local server started on demand
Instance(uri='bolt://...', neo4j=..., schema=v..., source=...)
>>> artifact = ln.Artifact(df, key="tables/metrics.parquet").save()
>>> collection = ln.Collection([artifact], key="metrics").save()
>>> from graph.cookbook import VERSION_FAMILY  # any Cypher, values as parameters
>>> ln.cypher(VERSION_FAMILY, key="metrics")[["is_latest", "artifacts"]]
   is_latest                 artifacts
0       True  [tables/metrics.parquet]
"""

from lineage import _lineage as lineage
from lineage import curators, errors
from lineage._artifact import Artifact
from lineage._collection import Collection
from lineage._cypher import cypher
from lineage._doctor import doctor
from lineage._features import Feature
from lineage._instance import Instance, connect, disconnect
from lineage._lamindb import ImportReport, import_lamindb
from lineage._queryset import Q, QuerySet
from lineage._record import Record
from lineage._registries import Project, Reference, Space, Storage, ULabel, User
from lineage._run import Run, Transform, context, finish, track
from lineage._save import save
from lineage._schema import Schema
from lineage._serve import serve
from lineage._settings import settings
from lineage._transfer import export_graph, import_graph

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "Collection",
    "Feature",
    "ImportReport",
    "Instance",
    "Project",
    "Q",
    "QuerySet",
    "Record",
    "Reference",
    "Run",
    "Schema",
    "Space",
    "Storage",
    "Transform",
    "ULabel",
    "User",
    "connect",
    "context",
    "curators",
    "cypher",
    "disconnect",
    "doctor",
    "errors",
    "export_graph",
    "finish",
    "import_graph",
    "import_lamindb",
    "lineage",
    "save",
    "serve",
    "settings",
    "track",
]
