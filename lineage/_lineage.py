"""Provenance queries: what a record was made from, what was made from it, and the graph of both.

A run of "preprocess.py" reads "raw/counts.csv" and writes "tables/counts.parquet":

>>> import lineage as ln
>>> run = ln.track("preprocess.py")
>>> raw = ln.Artifact.get(key="raw/counts.csv", is_run_input=True)
>>> table = ln.Artifact(df2, key="tables/counts.parquet").save()
>>> ln.finish()
Run(uid='...', ..., status='completed')
>>> up = ln.lineage.upstream(table)               # everything it was made from
>>> [a.key for a in up.artifacts], up.runs.to_list() == [run], [t.key for t in up.transforms]
(['raw/counts.csv'], True, ['preprocess.py'])
>>> down = ln.lineage.downstream(raw, depth=1)    # the runs that read it and what they wrote
>>> [a.key for a in down.artifacts]
['tables/counts.parquet']
>>> nodes, edges = ln.lineage.graph(raw)          # both directions, as two DataFrames
>>> sorted(edges["type"])
['EXECUTES', 'GENERATED_BY', 'USED']

Each call is one Cypher query (`graph.lineage`). Depth counts run hops: the number of runs on
the path from the record, the record itself not counted; `depth=0` is the record with what is
reached without passing a run (a collection's members and meta artifact, earlier versions, a
run's inputs or outputs), `depth=1` adds one run and its inputs (upstream) or outputs
(downstream), and `None` (the default) follows the whole history. Trashed records are left out.
A collection's upstream includes its member artifacts and the runs that made them.

The questions that come next are here too (`lineage._questions`): `diff(a, b)` (what changed
between two records; `record.diff()` against the previous version), `impact(records)`
(everything downstream, by run depth, with the transforms that made it and the people who
created it) and `stale()` (what was built from an input that has a newer version since); and
which samples (`lineage._samples`): `samples(run)` (the rows of each artifact version a run
saw) and `used_by(artifact, obs=[...])` (the runs, and what they made, that saw given rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

# The graph layer's traversal module as `gl`: in this module `graph` is the public function
# `ln.lineage.graph()`, never the package.
from graph import lineage as gl
from graph import openlineage as gol
from graph import query as gq
from lineage._model import Model, registry_of, require_saved
from lineage._openlineage import ingest, ingest_file
from lineage._queryset import QuerySet

# The questions asked next (what changed, what is built on it, what is stale) live in their own
# module; `ln.lineage` is their public face too.
from lineage._questions import (
    AnnDataDiff,
    ArtifactDiff,
    CollectionDiff,
    Diff,
    Impact,
    RunDiff,
    Stale,
    TableDiff,
    diff,
    impact,
    stale,
)
from lineage._samples import Samples, UsedBy, samples, used_by
from lineage.errors import DoesNotExist, InvalidArgument

__all__ = [
    "AnnDataDiff",
    "ArtifactDiff",
    "CollectionDiff",
    "Diff",
    "Impact",
    "Lineage",
    "RunDiff",
    "Samples",
    "Stale",
    "TableDiff",
    "UsedBy",
    "columns",
    "diff",
    "downstream",
    "graph",
    "impact",
    "ingest",
    "ingest_file",
    "samples",
    "stale",
    "upstream",
    "used_by",
]


def _check_record(record: Any, what: str) -> Model:
    if not isinstance(record, Model) or record._label not in gl.LINEAGE_LABELS:
        raise InvalidArgument(
            f"{what} takes an Artifact, Collection, Run or Transform, not {type(record).__name__}"
        )
    require_saved(record, what)
    return record


def _check_depth(depth: Any) -> int | None:
    try:
        return gl.check_depth(depth)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def traverse(
    record: Model,
    *,
    upstream: bool,
    downstream: bool,
    depth: int | None,
    what: str,
    features: bool = False,
) -> gl.LineageGraph:
    """The traversal behind every function here (and `view_lineage`): plain dicts; with
    `features`, each node's feature values too (in the same query)."""
    record = _check_record(record, what)
    depth = _check_depth(depth)
    result = gl.traverse(
        record._inst().connection,
        record._label,
        record.uid,
        upstream=upstream,
        downstream=downstream,
        depth=depth,
        features=features,
    )
    if result is None:
        raise DoesNotExist(f"{type(record).__name__} {record.uid} no longer exists")
    return result


class Lineage:
    """Records on one side of a record's provenance, one QuerySet per registry.

    >>> run.input_artifacts.add(artifact)                                    # the run read it
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()  # and wrote this
    >>> up = ln.lineage.upstream(table)
    >>> up
    Lineage(upstream of Artifact ...: artifacts=1, collections=0, runs=1, transforms=1)
    >>> up.artifacts.df()[["key", "suffix"]]    # the artifacts it was made from
                   key suffix
    id
    1   raw/counts.csv   .csv
    >>> up.runs.count(), [t.key for t in up.transforms], artifact in up
    (1, ['preprocess.py'], True)
    >>> len(up), sorted(type(r).__name__ for r in up)    # every record, all registries together
    (3, ['Artifact', 'Run', 'Transform'])
    """

    def __init__(self, record: Model, result: gl.LineageGraph, side: str) -> None:
        self.record = record
        self.side = side  # "upstream" or "downstream"
        self.depth: int | None = None
        self._uids: dict[str, list[str]] = {label: [] for label in gl.LINEAGE_LABELS}
        for node in result["nodes"]:
            if node["side"] != "focus":
                self._uids[node["label"]].append(node["uid"])
        self._graph = result

    def _queryset(self, label: str) -> QuerySet[Any]:
        # Every branch: the traversal already left the trash out, and keeps archived records.
        select = gq.Select(label, where=gq.Q(uid__in=list(self._uids[label])), branch=None)
        return QuerySet(registry_of(label), select, self.record._instance)

    @property
    def artifacts(self) -> QuerySet[Any]:
        """The artifacts on this side, as a QuerySet."""
        return self._queryset("Artifact")

    @property
    def collections(self) -> QuerySet[Any]:
        """The collections on this side, as a QuerySet."""
        return self._queryset("Collection")

    @property
    def runs(self) -> QuerySet[Any]:
        """The runs on this side, as a QuerySet."""
        return self._queryset("Run")

    @property
    def transforms(self) -> QuerySet[Any]:
        """The transforms of those runs (and, for a transform, its versions), as a QuerySet."""
        return self._queryset("Transform")

    @property
    def uids(self) -> dict[str, list[str]]:
        """uids per registry label, without another query."""
        return {label: list(uids) for label, uids in self._uids.items()}

    def __len__(self) -> int:
        return sum(len(uids) for uids in self._uids.values())

    def __iter__(self) -> Iterator[Model]:
        for label in gl.LINEAGE_LABELS:
            if self._uids[label]:
                yield from self._queryset(label)

    def __contains__(self, record: object) -> bool:
        label = getattr(record, "_label", None)
        return label in self._uids and getattr(record, "uid", None) in self._uids[label]

    def __repr__(self) -> str:
        counts = ", ".join(f"{label.lower()}s={len(u)}" for label, u in self._uids.items())
        return f"Lineage({self.side} of {type(self.record).__name__} {self.record.uid}: {counts})"


def upstream(record: Model, depth: int | None = None) -> Lineage:
    """What a record was made from: runs, their inputs and transforms, back to the start.

    Args:
        record: a saved Artifact, Collection, Run or Transform.
        depth: how many runs back to go (None: all).

    >>> run.input_artifacts.add(artifact)                                    # the run read it
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()  # and wrote this
    >>> up = ln.lineage.upstream(table)
    >>> [a.key for a in up.artifacts], up.runs.to_list() == [run]
    (['raw/counts.csv'], True)
    >>> [a.key for a in ln.lineage.upstream(collection, depth=0).artifacts]   # its members
    ['scrna/sample1.h5ad', 'scrna/sample2.h5ad']
    """
    result = traverse(record, upstream=True, downstream=False, depth=depth, what="upstream()")
    out = Lineage(record, result, "upstream")
    out.depth = depth
    return out


def downstream(record: Model, depth: int | None = None) -> Lineage:
    """What was made from a record: the runs that read it, what they wrote, and onwards.

    Args:
        record: a saved Artifact, Collection, Run or Transform.
        depth: how many runs forward to go (None: all).

    >>> run.input_artifacts.add(artifact)                                    # the run read it
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()  # and wrote this
    >>> down = ln.lineage.downstream(artifact, depth=1)
    >>> down.runs.to_list() == [run], [a.key for a in down.artifacts]
    (True, ['tables/counts.parquet'])
    """
    result = traverse(record, upstream=False, downstream=True, depth=depth, what="downstream()")
    out = Lineage(record, result, "downstream")
    out.depth = depth
    return out


def frames(result: gl.LineageGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A traversal result as (nodes, edges) DataFrames."""
    nodes = pd.DataFrame(result["nodes"], columns=list(gl.NODE_FIELDS))
    edges = pd.DataFrame(result["edges"], columns=list(gl.EDGE_FIELDS))
    edges["position"] = edges["position"].astype("Int64")
    return nodes, edges


def graph(
    record: Model, with_children: bool = True, depth: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The provenance graph around a record as two DataFrames: nodes and edges.

    `nodes` has one row per record (`uid`, `label`, `key`, `version`, `created_at`, ...,
    `side`: focus, upstream, downstream or both, and `features`: the record's feature values
    as `{name: value}`); `edges` has `source` and `target` uids,
    the edge `type` (GENERATED_BY, USED, EXECUTES, CONTAINS, HAS_META, REVISES) and the
    membership `position` for CONTAINS.

    Args:
        record: a saved Artifact, Collection, Run or Transform.
        with_children: also what was made from the record (downstream), not only its history.
        depth: how many runs to go in each direction (None: all).

    >>> run.input_artifacts.add(artifact)                                    # the run read it
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()  # and wrote this
    >>> nodes, edges = ln.lineage.graph(artifact, depth=2)
    >>> nodes.sort_values(["label", "key"], ignore_index=True)[["label", "key", "side"]]
           label                    key        side
    0   Artifact         raw/counts.csv       focus
    1   Artifact  tables/counts.parquet  downstream
    2        Run                   None  downstream
    3  Transform          preprocess.py  downstream
    >>> sorted(edges["type"])
    ['EXECUTES', 'GENERATED_BY', 'USED']
    """
    result = traverse(
        record, upstream=True, downstream=with_children, depth=depth, what="graph()", features=True
    )
    return frames(result)


COLUMN_FIELDS = ("artifact", "key", "namespace", "dataset", "column", "type", "depth",
                 "transformation", "subtype")  # fmt: skip


def columns(artifact: Model, column: str, downstream: bool = False) -> pd.DataFrame:
    """Which upstream columns a column of an artifact came from, at any depth, in one query
    (column lineage from OpenLineage's column-lineage facet; docs/architecture.md, OpenLineage).

    One row per column reached, nearest first: the artifact (`artifact` uid, `key`, and the
    OpenLineage `namespace` and `dataset` name), the `column` and its `type`, `depth` (hops from
    the column) and the `transformation` (and `subtype`) of the last hop, as the facet gave them.
    `downstream=True` answers the other way: which columns were made from it.

    >>> facet = {"fields": {"total": {"inputFields": [
    ...     {"namespace": "file", "name": "/data/orders.csv", "field": "amount",
    ...      "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}]}]}}}
    >>> [written] = ln.lineage.ingest([{
    ...     "eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
    ...     "producer": "https://example.com/etl", "schemaURL": "https://openlineage.io/spec",
    ...     "run": {"runId": "0195e3c4-0000-7000-8000-000000000002"},
    ...     "job": {"namespace": "etl", "name": "totals"},
    ...     "inputs": [{"namespace": "file", "name": "/data/orders.csv"}],
    ...     "outputs": [{"namespace": "file", "name": "/data/totals.parquet",
    ...                  "facets": {"columnLineage": facet}}]}])
    >>> totals = ln.Artifact.get(written["outputs"][0])
    >>> ln.lineage.columns(totals, "total")[["key", "column", "depth", "subtype"]]
                        key  column  depth      subtype
    0  file//data/orders.csv  amount      1  AGGREGATION
    """
    if not isinstance(artifact, Model) or artifact._label != "Artifact":
        raise InvalidArgument(f"columns() takes an Artifact, not {type(artifact).__name__}")
    require_saved(artifact, "columns()")
    if not isinstance(column, str):
        raise InvalidArgument(f"columns() takes a column name (str), not {type(column).__name__}")
    conn = artifact._inst().connection
    params = {"artifact": artifact.uid, "column": column}
    rows = conn.read(gol.COLUMN_LINEAGE["down" if downstream else "up"], params)
    if not rows:
        known = [r["name"] for r in conn.read(gol.COLUMNS_OF, params)]
        if column not in known:
            raise DoesNotExist(
                f"artifact {artifact.key!r} ({artifact.uid}) has no column {column!r} in its "
                f"OpenLineage schema or column lineage; known: {', '.join(known) or '(none)'}"
            )
    return pd.DataFrame(rows, columns=list(COLUMN_FIELDS))
