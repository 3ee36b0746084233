"""LineageGraph: lamindb-style registries whose records and relations live in Neo4j.

>>> import lineage as ln
>>> ln.connect()                      # NEO4J_URI, or the local server started on demand
>>> ln.cypher("RETURN 1 AS x")
   x
0  1
"""

from lineage import errors
from lineage._cypher import cypher
from lineage._instance import Instance, connect, disconnect

__version__ = "0.1.0"

__all__ = ["Instance", "connect", "cypher", "disconnect", "errors"]
