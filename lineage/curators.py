"""Curators: validate a dataset against a `Schema`, fix what is not valid, and save it as an
annotated artifact (lamindb's `ln.curators`).

>>> import lineage as ln
>>> perturbation = ln.Feature(name="perturbation", dtype=ln.ULabel).save()
>>> schema = ln.Schema([perturbation], name="perturbations").save()
>>> frame = pd.DataFrame({"perturbation": pd.Categorical(["DMSO", "IFNG"])})
>>> curator = ln.curators.DataFrameCurator(frame, schema)
>>> try:
...     curator.validate()
... except ln.errors.ValidationError as error:
...     print(error)
2 terms not validated in feature 'perturbation': 'DMSO', 'IFNG'
    → fix typos, remove non-existent values, or create them via: curator.cat.add_new_from('perturbation')
>>> curator.cat.add_new_from("perturbation")
>>> curator.validate()
>>> artifact = curator.save_artifact(key="examples/perturbations.parquet")
>>> artifact.features.get_values()
{'perturbation': ['DMSO', 'IFNG']}
"""

from __future__ import annotations

from typing import Any

import pandas as pd

import loaders
from lineage._artifact import Artifact
from lineage._curate import (
    AnnDataComponents,
    Annotation,
    CatManager,
    ComponentCurator,
    check_schema,
)
from lineage._schema import Schema
from lineage.errors import InvalidArgument, NotSupported

__all__ = ["AnnDataCurator", "DataFrameCurator"]


def _dataset(dataset: Any, otype: str, what: str) -> tuple[Any, Artifact | None]:
    """The data to curate, and the artifact it was loaded from (if one was given)."""
    if isinstance(dataset, Artifact):
        if not dataset._saved:
            raise InvalidArgument(f"{what}: save the artifact first, or pass its data")
        if dataset.otype != otype:
            raise InvalidArgument(
                f"{what}: artifact {dataset.uid} holds a {dataset.otype or 'file'}, not a {otype}"
            )
        return dataset.load(is_run_input=False), dataset
    if loaders.otype_of(dataset) != otype:
        raise InvalidArgument(f"{what}: dataset must be {otype}-like, not {type(dataset).__name__}")
    return dataset, None


class DataFrameCurator:
    """Validate a DataFrame (or a saved DataFrame artifact) against a schema, fix it, save it.

    Args:
        dataset: a pandas DataFrame, or a saved artifact holding one (then `save_artifact()`
            annotates that artifact; its data cannot be changed).
        schema: a saved Schema (`features=`, or `itype=` for a flexible one).

    >>> gene = ln.Feature(name="gene", dtype=ln.ULabel).save()
    >>> schema = ln.Schema([gene], coerce=True).save()
    >>> curator = ln.curators.DataFrameCurator(df, schema)   # "gene" holds text: coerced
    >>> curator.cat.non_validated
    Traceback (most recent call last):
    lineage.errors.ValidationError: Please run validate() first!
    >>> curator.validate()
    Traceback (most recent call last):
    lineage.errors.ValidationError: 3 terms not validated in feature 'gene': 'a', 'b', 'c'
    ...
    >>> curator.cat.non_validated
    {'gene': ['a', 'b', 'c']}
    """

    def __init__(self, dataset: Any, schema: Schema) -> None:
        what = "DataFrameCurator()"
        self._schema = check_schema(schema, "DataFrame", what)
        if self._schema.slots:
            raise NotSupported(
                f"{what}: a DataFrame is validated by its columns (Schema(features=...)); "
                "slots such as 'attrs' are not supported"
            )
        frame, self._artifact = _dataset(dataset, "DataFrame", what)
        self._curator = ComponentCurator(
            frame, self._schema, hint="curator.cat", mutable=self._artifact is None
        )

    def __repr__(self) -> str:
        status = "validated" if self._curator._is_validated else "unvalidated"
        name = self._schema.name or f"uid={self._schema.uid}"
        return f"DataFrameCurator(Schema: {name}, categorical_features={len(self.cat.categoricals)}, {status})"

    @property
    def cat(self) -> CatManager:
        """The categorical columns: `non_validated`, `standardize(key)`, `add_new_from(key)`."""
        return self._curator.cat

    @property
    def dataset(self) -> pd.DataFrame:
        """The DataFrame (with converted columns once validated, if the schema coerces)."""
        return self._curator.dataset

    def validate(self) -> None:
        """Validate: a `ValidationError` lists the missing and unexpected columns, wrong dtypes
        and values that are no label yet, with how to fix them."""
        self._curator.validate()

    def save_artifact(
        self,
        *,
        key: str | None = None,
        description: str | None = None,
        revises: Artifact | None = None,
        run: Any = None,
    ) -> Artifact:
        """Validate if needed, then save the dataset as an artifact annotated with the schema
        and the labels of its categorical columns, in the transaction that writes it."""
        if not self._curator._is_validated:
            self.validate()
        annotation = Annotation(self._schema, self._curator.labels())
        return _save(self._artifact, self.dataset, annotation, key, description, revises, run)


class AnnDataCurator:
    """Validate an AnnData's slots (`obs`, `var`, `var.T`) against an AnnData schema, fix them,
    save the AnnData as an annotated artifact.

    >>> donor = ln.Feature(name="donor", dtype=ln.ULabel).save()
    >>> ln.save([ln.ULabel(name=n) for n in ("x", "y", "z")])
    [ULabel(...), ULabel(...), ULabel(...)]
    >>> obs_schema = ln.Schema([donor]).save()
    >>> schema = ln.Schema(otype="AnnData", slots={"obs": obs_schema}).save()
    >>> adata.obs["donor"] = adata.obs["batch"].astype("category")
    >>> curator = ln.curators.AnnDataCurator(adata, schema)
    >>> curator.validate()
    >>> artifact = curator.save_artifact(key="scrna/donors.h5ad")
    >>> artifact.schema == schema, artifact.features.get_values()
    (True, {'donor': ['x', 'y', 'z']})
    """

    def __init__(self, dataset: Any, schema: Schema) -> None:
        what = "AnnDataCurator()"
        self._schema = check_schema(schema, "AnnData", what)
        if self._schema.otype != "AnnData":
            raise InvalidArgument(f"{what}: Schema otype must be 'AnnData'.")
        adata, self._artifact = _dataset(dataset, "AnnData", what)
        self._components = AnnDataComponents(adata, self._schema, mutable=self._artifact is None)
        self._is_validated = False

    def __repr__(self) -> str:
        status = "validated" if self._is_validated else "unvalidated"
        name = self._schema.name or f"uid={self._schema.uid}"
        return f"AnnDataCurator(Schema: {name} (AnnData), slots: {list(self.slots)}, {status})"

    @property
    def slots(self) -> dict[str, ComponentCurator]:
        """A curator per slot, each with its `cat`: `curator.slots["obs"].cat.non_validated`."""
        return self._components.slots

    def validate(self) -> None:
        """Validate every slot; one `ValidationError` lists the problems of all."""
        self._is_validated = False
        self._components.validate()
        self._is_validated = True

    def save_artifact(
        self,
        *,
        key: str | None = None,
        description: str | None = None,
        revises: Artifact | None = None,
        run: Any = None,
    ) -> Artifact:
        """Validate if needed, then save the AnnData as an artifact annotated with the schema
        and the labels of its categorical columns, in the transaction that writes it."""
        if not self._is_validated or not all(c._is_validated for c in self.slots.values()):
            self.validate()
        annotation = Annotation(self._schema, self._components.labels())
        data = self._components.data()
        return _save(self._artifact, data, annotation, key, description, revises, run)


def _save(
    artifact: Artifact | None,
    data: Any,
    annotation: Annotation,
    key: str | None,
    description: str | None,
    revises: Artifact | None,
    run: Any,
) -> Artifact:
    if artifact is None:
        made = Artifact(data, key=key, description=description, revises=revises, run=run)
        made._annotate(annotation)
        return made.save()
    if key is not None or description is not None or revises is not None or run is not None:
        raise InvalidArgument(
            "save_artifact(): the curator annotates the artifact it was given; key, "
            "description, revises and run are that artifact's already"
        )
    artifact._annotate(annotation)
    return artifact.save()
