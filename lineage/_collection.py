"""Collection: an ordered, versioned set of artifacts (docs/schema.md).

Membership is `(:Collection)-[:CONTAINS {position}]->(:Artifact)`; `ordered_artifacts` follows
`position`. A collection's hash is lamindb's: the hash of its artifacts' sorted, joined hashes, so
the same artifacts give the same collection hash in both systems.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

import loaders
from graph import features as gf
from graph import query as gq
from graph import records as gr
from lineage._artifact import Artifact
from lineage._data import (
    DataRecord,
    become_twins,
    cache_artifacts,
    load_artifacts,
    loaded_rows,
    mapped_artifacts,
    split_twins,
    track_input,
    track_rows,
    write_new_families,
)
from lineage._features import Feature
from lineage._keys import check_key
from lineage._model import register, require_saved
from lineage._queryset import QuerySet, RelatedQuerySet
from lineage._registries import ULabel
from lineage._run import Run, Transform, current_run, mark_input, run_inputs
from lineage.errors import (
    InvalidArgument,
    InvalidType,
    NotSupported,
    ValidationError,
    VersionTagExists,
)

logger = logging.getLogger("lineage")


@register
class Collection(DataRecord):
    """Collections of artifacts.

    Args:
        artifacts: a list of saved artifacts (or one artifact).
        key: a name or path-like key; `name=` is a synonym.
        description: a description.
        meta: an artifact that holds metadata for the collection.
        reference: for instance an external ID or a URL; `reference_type` says which.
        run: the run that creates the collection (default: the tracked run).
        revises: an earlier version of the collection.
        version: a version tag, unique within the family.

    >>> collection = ln.Collection([artifact1, artifact3], key="My collection").save()
    >>> collection = ln.Collection(artifact2, name="sample2", meta=artifact).save()  # data + meta
    >>> v2 = collection.append(artifact3).save()
    >>> [a.key for a in v2.ordered_artifacts], v2.meta_artifact.key
    (['scrna/sample2.h5ad', 'scrna/sample3.h5ad'], 'raw/counts.csv')
    """

    _label = "Collection"
    # Set by the constructor; a collection read from the graph has used nothing in this process.
    _used: list[Any] | None = None
    _reused = False

    def __init__(
        self,
        artifacts: Artifact | list[Artifact] | None = None,
        key: str | None = None,
        description: str | None = None,
        meta: Artifact | None = None,
        reference: str | None = None,
        reference_type: str | None = None,
        run: Run | None = None,
        revises: Collection | None = None,
        version: str | None = None,
        *,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise InvalidArgument(
                f"Collection() got unexpected keyword {', '.join(map(repr, sorted(kwargs)))}; "
                "valid: artifacts, key (or name), description, meta, reference, reference_type, "
                "run, revises, version"
            )
        if name is not None and key is not None and name != key:
            raise InvalidArgument(f"Collection(): name={name!r} and key={key!r} differ; pass one")
        key = key if key is not None else name
        self._check_revises(revises)
        if revises is not None:
            key = key if key is not None else revises.key
            if version is not None and version == revises.version:
                # lamindb refuses this when the collection is made, not when it is saved.
                raise VersionTagExists(
                    f"Collection(version={version!r}): the version it revises ({revises.uid}) "
                    "is already tagged so; give the new version a new tag"
                )
        if key is None:
            raise InvalidArgument("Collection() needs a key (or name), e.g. key='my-collection'")
        check_key(key, "Collection key (or name)")
        for field, value in (
            ("description", description), ("reference", reference),
            ("reference_type", reference_type), ("version", version),
        ):  # fmt: skip
            self._validate(field, value)  # before any query: a bad argument costs nothing
        members = _check_artifacts(artifacts)
        if meta is not None:
            if not isinstance(meta, Artifact):
                raise InvalidType(f"meta= takes an Artifact, not {type(meta).__name__}")
            require_saved(meta, "meta=")
        super().__init__()
        object.__setattr__(self, "_members", members)
        # What the collection's run used to make it (lamindb: the members, and the version it
        # revises): recorded as the run's inputs when the collection is saved.
        object.__setattr__(self, "_used", [*members, *([revises] if revises is not None else [])])
        object.__setattr__(self, "_reused", False)  # became a stored collection: nothing written
        self._set_run(run)
        hash_ = loaders.hash_set(a.hash for a in members)
        # Without `revises=`, a collection stored under this key names the family to continue.
        existing, head = self._stored_for(hash_, revises, {"key": key} if revises is None else None)
        if existing is not None:
            logger.warning(
                "returning existing collection with same hash: %s (key=%r)",
                existing.uid,
                existing.key,
            )
            self._load(existing._values)
            object.__setattr__(self, "_reused", True)
            return
        if head is not None:
            if version is not None and version == head.version:
                raise VersionTagExists(
                    f"Collection(version={version!r}): the latest version under key {key!r} "
                    f"({head.uid}), which this one would revise, is already tagged so; give "
                    "the new version a new tag"
                )
            self._infer_revises(head)
            revises = head
        if revises is not None and description is None:
            description = revises.description  # as lamindb: a new version keeps it
        self._values["hash"] = hash_
        self.key = key
        self.description = description
        self.reference = reference
        self.reference_type = reference_type
        self.version = version
        if meta is not None:
            self._to_one["meta_artifact"] = meta
        if not self._revises_inferred:
            self._set_revises(revises)
        if revises is None:
            self._start_family()
            object.__setattr__(self, "_by_key", True)

    # -- saving ----------------------------------------------------------------------------------
    def _edges(self) -> list[gr.EdgeSpec]:
        edges = super()._edges()
        if self._members:
            edges.append(
                gr.EdgeSpec(
                    "artifacts",
                    [a.uid for a in self._members],
                    [{"position": i} for i in range(len(self._members))],
                )
            )
        return edges

    def _run_inputs(self) -> gr.RunInputs | None:
        """The members (and the version it revises) as inputs of the collection's run, written
        with the collection (never an input of the run that made it, as in lamindb)."""
        run = self._to_one.get("run")
        if run is None or not self._used:
            return None
        return run_inputs(run, [r for r in self._used if r.uid != self.uid])

    def _become_stored(self, row: dict[str, Any]) -> None:
        super()._become_stored(row)
        object.__setattr__(self, "_reused", True)

    def _stored(self) -> None:
        """Once the collection is stored. If it turned out to be one stored before (same
        content), nothing was written; its members still were used by this save's run, so they
        are recorded as the run's inputs, as lamindb does."""
        if self._reused and self._used:
            run = self._explicit_run or current_run()
            if run is not None:
                mark_input([r for r in self._used if r.uid != self.uid], run)
        object.__setattr__(self, "_reused", False)
        object.__setattr__(self, "_used", None)
        self._forget_members()

    def save(self, using: str | None = None) -> Collection:
        """Write the collection, its memberships (with positions), meta artifact, run and
        version edges in one transaction; with a run (`run=` or `ln.track()`), the members
        become the run's inputs in that transaction too.

        >>> pair = ln.Collection([artifact3, artifact1], key="scrna/pair", meta=artifact).save()
        >>> [a.key for a in pair.ordered_artifacts], pair.meta_artifact.key
        (['scrna/sample3.h5ad', 'scrna/sample1.h5ad'], 'raw/counts.csv')
        """
        if using is not None:
            raise NotSupported("save(using=...) is not supported; connect to that instance")
        if not self._saved:
            for artifact in self._members or []:
                require_saved(artifact, "Collection.save()")
        super().save()
        self._stored()
        return self

    def _forget_members(self) -> None:
        """Once stored, the members are what the graph says (`ordered_artifacts`)."""
        object.__setattr__(self, "_members", None)

    # -- versions --------------------------------------------------------------------------------
    def append(self, artifact: Artifact, run: Run | None = None) -> Collection:
        """A new version with `artifact` added last (save it to store it).

        >>> v2 = collection.append(artifact3).save()
        >>> [a.key for a in v2.ordered_artifacts]
        ['scrna/sample1.h5ad', 'scrna/sample2.h5ad', 'scrna/sample3.h5ad']
        >>> v2.stem_uid == collection.stem_uid, v2.is_latest, collection.is_latest
        (True, True, False)
        """
        require_saved(self, "append()")
        if not isinstance(artifact, Artifact):
            raise InvalidType(f"append() takes an Artifact, not {type(artifact).__name__}")
        return Collection(
            [*self.ordered_artifacts, artifact],
            key=self.key,
            description=self.description,
            meta=self.meta_artifact,
            reference=self.reference,
            reference_type=self.reference_type,
            revises=self,
            run=run,
        )

    # -- properties ------------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """Name of the collection: the last part of the key."""
        return self.key.rsplit("/", 1)[-1] if self.key else None

    @property
    def ordered_artifacts(self) -> QuerySet:
        """The artifacts in the collection's order (`position` on each membership edge).

        >>> [a.key for a in collection.ordered_artifacts]
        ['scrna/sample1.h5ad', 'scrna/sample2.h5ad']
        """
        if not self._saved:
            raise InvalidArgument("ordered_artifacts: save the collection first")
        anchor = gq.Anchor(self._label, self.uid, "artifacts", edge_order="position")
        return QuerySet(Artifact, gq.Select("Artifact", anchor=anchor, branch=None), self._instance)

    @property
    def artifacts(self) -> QuerySet:
        """The member artifacts, in every branch (a trashed member is still a member); for
        the collection's order use `ordered_artifacts`."""
        return self._related("artifacts", branch=None)

    @property
    def ulabels(self) -> RelatedQuerySet[ULabel]:
        """The ULabels sampled in the collection: those its members (and the collection itself)
        are labeled with, through categorical feature values or direct `ulabels` links, each
        once, in one query. `add`/`remove`/`set` change the collection's own labels.

        >>> artifact1.ulabels.add(label)                            # a member's label
        >>> collection.ulabels.add(ln.ULabel.get(name="tissue"))    # the collection's own
        >>> sorted(u.name for u in collection.ulabels)
        ['my-label', 'tissue']
        """
        return self._related("ulabels", through="artifacts")

    def label_counts(self, feature: str | Feature | None = None) -> pd.DataFrame:
        """How many member artifacts carry each ULabel, most first (columns `label`, `uid`,
        `artifacts`): labels from any categorical feature and direct links, or only those of
        the categorical `feature`. Members in the trash count; one query.

        >>> ln.Feature(name="cell_type", dtype=ln.ULabel).save()
        Feature(uid='...', ..., name='cell_type', dtype='cat[ULabel]', is_type=False)
        >>> artifact1.features.add_values({"cell_type": "my-label"})
        >>> artifact2.ulabels.add(label)
        >>> collection.label_counts()
              label       uid  artifacts
        0  my-label  ...          2
        >>> collection.label_counts("cell_type")["artifacts"].tolist()
        [1]
        """
        require_saved(self, "label_counts()")
        name = None
        if feature is not None:
            if isinstance(feature, Feature):
                require_saved(feature, "label_counts(feature=...)")
                name = feature.name
            elif isinstance(feature, str):
                name = feature
            else:
                raise InvalidType(
                    f"label_counts(feature=...) takes a feature name or Feature, not "
                    f"{type(feature).__name__}"
                )
            conn = self._inst().connection
            ref = gf.feature_refs(conn, [name]).get(name)
            if ref is None:
                raise ValidationError(f"no feature named {name!r}; ln.Feature.filter() lists them")
            if ref.parsed is None or not ref.parsed.categorical:
                raise ValidationError(
                    f"feature {name!r} has dtype {ref.dtype}: its values are no labels; pass a "
                    "categorical feature (cat[ULabel...])"
                )
        rows = gf.member_label_counts(self._inst().connection, self.uid, name)
        return pd.DataFrame(rows, columns=["label", "uid", "artifacts"])

    @property
    def data_artifact(self) -> Artifact | None:
        """The first of `ordered_artifacts` (the data, when there is also a meta artifact).

        >>> collection.data_artifact.key
        'scrna/sample1.h5ad'
        """
        return self.ordered_artifacts.first()

    @property
    def transform(self) -> Transform | None:
        """The transform whose run created the collection."""
        run = self.run
        return run.transform if run is not None else None

    # -- data ------------------------------------------------------------------------------------
    def cache(self, is_run_input: bool | None = None) -> list[Path]:
        """Local paths of the member files, in `ordered_artifacts` order: local files as they
        are, cloud files synced into `ln.settings.cache_dir` (only outdated copies are fetched).

        With a tracked run (or `is_run_input=True`) the collection, not its members, is recorded
        as the run's input.

        >>> collection.cache()
        [PosixPath('.../.lineage/...0000.h5ad'), PosixPath('.../.lineage/...0000.h5ad')]
        """
        require_saved(self, "cache()")
        paths = cache_artifacts(self.ordered_artifacts.to_list())
        track_input([self], is_run_input)
        return paths

    def load(self, join: str = "outer", is_run_input: bool | None = None, **kwargs: Any) -> Any:
        """Cache the members and concatenate them in order: a DataFrame (`pd.concat`) for
        tables, an AnnData (`anndata.concat`, source uid in `obs["artifact_uid"]`) for `.h5ad`.
        All members must share one suffix. The run input is recorded only if loading works.

        >>> adata = collection.load(join="inner")
        >>> adata.obs_names.tolist()
        ['s1_cell0', 's1_cell3', 's2_cell1', 's2_cell4']
        >>> adata.obs["artifact_uid"].tolist() == [artifact1.uid] * 2 + [artifact2.uid] * 2
        True
        """
        require_saved(self, "load()")
        members = self.ordered_artifacts.to_list()
        data = load_artifacts(members, join, **kwargs)
        track_input([self], is_run_input)
        rows = loaded_rows(members, data)
        if rows is not None:
            track_rows(members, rows, is_run_input)
        return data

    def mapped(
        self,
        layers_keys: str | list[str] | None = None,
        obs_keys: str | list[str] | None = None,
        obsm_keys: str | list[str] | None = None,
        obs_filter: dict[str, str | tuple[str, ...]] | None = None,
        join: str | None = "inner",
        encode_labels: bool | list[str] = True,
        unknown_label: str | dict[str, str] | None = None,
        cache_categories: bool = True,
        parallel: bool = False,
        dtype: str | None = None,
        stream: bool = False,
        is_run_input: bool | None = None,
    ) -> Any:
        """A PyTorch map-style dataset over the members' `.h5ad` files and AnnData `.zarr`
        stores, virtually concatenated in order (`loaders.MappedCollection`). Cloud files are
        cached first, unless `stream=True`, which reads them in place.

        >>> from torch.utils.data import DataLoader
        >>> mapped = collection.mapped(obs_keys=["cell_type", "batch"])
        >>> len(mapped), mapped.encoders["cell_type"]
        (4, {'B': 0, 'NK': 1, 'T': 2})
        >>> dl = DataLoader(mapped, batch_size=128, shuffle=True)
        >>> batch = next(iter(dl))
        >>> batch["X"].shape, batch["cell_type"].shape
        (torch.Size([4, 4]), torch.Size([4]))
        """
        # Every parameter but is_run_input goes to loaders.MappedCollection as it is: the
        # signature (lamindb's) is written once, here; QuerySet.mapped forwards its keywords.
        options = {k: v for k, v in locals().items() if k not in ("self", "is_run_input")}
        require_saved(self, "mapped()")
        members = self.ordered_artifacts.to_list()
        dataset = mapped_artifacts(members, **options)
        track_input([self], is_run_input)
        track_rows(members, dataset.file_rows(), is_run_input)  # the rows, known since built
        return dataset


def save_collections(collections: list[Collection]) -> None:
    """Save new collections that start new families in `UNWIND` batches: one transaction per
    `graph.records.BATCH_SIZE` collections, their memberships (with positions), meta artifacts
    and runs included. `ln.save` uses it; one `save()` per collection cost a transaction each."""
    for collection in collections:
        for artifact in collection._members or []:
            require_saved(artifact, "ln.save() of a collection")
        collection._default_edges()
    unique, twins, later = split_twins(collections)
    write_new_families(unique, done=Collection._stored)
    for twin, _ in twins:  # the same content as another of the batch: stored once, by that one
        object.__setattr__(twin, "_reused", True)
    become_twins(twins, Collection._stored)
    for collection in later:  # each becomes a new version of the family named by its key
        collection.save()


def _check_artifacts(artifacts: Any) -> list[Artifact]:
    if isinstance(artifacts, Artifact):
        artifacts = [artifacts]
    if artifacts is None:
        raise InvalidArgument("Collection() needs artifacts: a list of saved Artifact records")
    if isinstance(artifacts, (str, bytes)) or not hasattr(artifacts, "__iter__"):
        raise InvalidType(
            f"Collection(artifacts=...) takes a list of Artifact records, not "
            f"{type(artifacts).__name__}"
        )
    members = list(artifacts)
    if not members:
        raise InvalidArgument("Collection(artifacts=...) got an empty list of artifacts")
    for i, artifact in enumerate(members):
        if not isinstance(artifact, Artifact):
            raise InvalidType(
                f"Collection(artifacts=...) takes Artifact records; item {i} is a "
                f"{type(artifact).__name__}"
            )
        require_saved(artifact, f"Collection() item {i}")
    seen: dict[str, int] = {}
    for i, artifact in enumerate(members):
        if artifact.hash in seen:
            raise InvalidArgument(
                f"Collection() items {seen[artifact.hash]} and {i} have the same content "
                f"(hash {artifact.hash}); pass distinct artifacts"
            )
        seen[artifact.hash] = i
    return members
