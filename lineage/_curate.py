"""Validating data against a `Schema`: what the curators (`ln.curators`) and
`Artifact.from_dataframe(schema=...)` / `from_anndata(schema=...)` share.

`ComponentCurator` checks one DataFrame (a DataFrame, or an AnnData's `obs`, `var` or `var.T`)
against one schema, as lamindb's does: which columns are missing (`minimal_set`), which are not
allowed (`maximal_set`), their order (`ordered_set`), each column's dtype against its feature's
(converted losslessly with `coerce`), and, for categorical features, every distinct value
against the ULabels the feature accepts (`CatVector`). Everything is read from the graph first
(features, labels) and nothing is written: a `ValidationError` lists every problem found, with
lamindb's hints (`curator.cat.standardize(...)`, `curator.cat.add_new_from(...)`). What a valid
dataset is annotated with (its schema, and a `LABELED_WITH {feature}` edge per label found) is an
`Annotation`, which the artifact writes in the transaction that creates its node.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from graph import features as gf
from graph import records as gr
from lineage._features import Feature, builtins_name
from lineage._model import require_saved
from lineage._registries import ULabel
from lineage._schema import Schema
from lineage.errors import InvalidArgument, InvalidType, NotSupported, ValidationError

logger = logging.getLogger("lineage")

# Distinct values named in a message (lamindb's `_format_values` shows 20).
_SHOWN = 20


@dataclass
class Annotation:
    """What a validated dataset is annotated with: the schema it was validated against, and the
    labels its categorical columns hold, as (feature uid, ULabel uid) pairs."""

    schema: Schema
    labels: list[tuple[str, str]] = field(default_factory=list)

    def label_edge(self) -> gr.EdgeSpec | None:
        """`(artifact)-[:LABELED_WITH {feature}]->(label)` for every pair, as one edge spec."""
        if not self.labels:
            return None
        return gr.EdgeSpec(
            "ulabels", [u for _, u in self.labels], [{"feature": f} for f, _ in self.labels]
        )


def check_schema(schema: Any, otype: str, what: str) -> Schema:
    """`schema` as a curator or `from_*()` can use it: a saved Schema for this object type."""
    if not isinstance(schema, Schema):
        raise InvalidType(f"{what} takes a Schema as schema, not {builtins_name(schema)}")
    require_saved(schema, what)
    if schema.is_type:
        raise InvalidArgument(
            f"{what}: schema {schema.name!r} is a schema type (is_type=True), which validates "
            "nothing; pass a schema with features, slots or an itype"
        )
    if schema.otype is not None and schema.otype != otype:
        raise InvalidArgument(
            f"{what}: schema {schema.name or schema.uid!r} is for {schema.otype} data, not "
            f"{otype} data; use a schema with otype={otype!r}"
        )
    return schema


def _format(values: Iterable[Any]) -> str:
    """lamindb's `_format_values`: quoted, at most 20, then `...`."""
    items = list(dict.fromkeys(str(v) for v in values))
    text = ", ".join(f"'{v}'" for v in items[:_SHOWN])
    return text + (", ..." if len(items) > _SHOWN else "")


# -- dtypes ---------------------------------------------------------------------------------------
def _dtype_problem(key: str, series: pd.Series, dtype: gf.Dtype, text: str) -> str | None:
    """pandera's message if `series` does not have the dtype the feature asks for (lamindb's
    checks: any integer width for `int`, a float dtype for `float`, a category for `cat`;
    missing values are allowed)."""
    values = series.dropna()
    if len(values) == 0:
        return None
    kind = series.dtype
    if dtype.many:
        ok = all(_is_list_of(v, dtype) for v in values)
        got = "values that are not lists of " + (dtype.base if not dtype.categorical else "str")
        return None if ok else f"expected series '{key}' to have type {text}, got {got}"
    base = dtype.base
    if dtype.categorical:
        ok = isinstance(kind, pd.CategoricalDtype)
        shown = "category"
    elif base == "int":
        ok = pd.api.types.is_integer_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
        shown = "int"
    elif base == "float" and text == "num":
        ok = pd.api.types.is_numeric_dtype(kind)
        shown = "num"
    elif base == "float":
        ok = pd.api.types.is_float_dtype(kind)
        shown = "float"
    elif base == "bool":
        ok = pd.api.types.is_bool_dtype(kind)
        shown = "bool"
    elif base == "str":
        if isinstance(kind, pd.CategoricalDtype):
            ok = all(isinstance(c, str) for c in kind.categories)
        elif pd.api.types.is_object_dtype(kind):
            ok = pd.api.types.infer_dtype(values, skipna=True) == "string"
        else:
            ok = pd.api.types.is_string_dtype(kind)
        shown = "str"
    elif base == "datetime":
        ok = pd.api.types.is_datetime64_any_dtype(kind)
        shown = "datetime"
    elif base == "date":
        ok = all(isinstance(v, date) and not isinstance(v, datetime) for v in values)
        shown = "date"
    else:  # dict
        ok = all(_is_dict_value(v) for v in values)
        shown = "dict"
    return None if ok else f"expected series '{key}' to have type {shown}, got {kind}"


def _is_dict_value(value: Any) -> bool:
    """Whether `value` is a dict, or text holding a JSON object (lamindb's `is_dict_value`)."""
    if isinstance(value, dict):
        return True
    if isinstance(value, str):
        try:
            return isinstance(json.loads(value), dict)
        except ValueError:
            return False
    return False


def _is_list_of(value: Any, dtype: gf.Dtype) -> bool:
    if not isinstance(value, (list, tuple, np.ndarray)):
        return False
    if dtype.categorical or dtype.base == "str":
        return all(isinstance(v, str) for v in value)
    if dtype.base == "int":
        return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    if dtype.base == "float":
        return all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value
        )
    if dtype.base == "bool":
        return all(isinstance(v, (bool, np.bool_)) for v in value)
    return True


def _coerced(series: pd.Series, dtype: gf.Dtype, text: str) -> pd.Series:
    """`series` converted to the feature's dtype as lamindb's `coerce` does: numbers only
    losslessly (`"1"` and `1.0` become an int, `1.1` does not), categories, dates and datetimes
    from text; `ValueError` saying why not. Other dtypes are left as they are (lamindb coerces
    no `str`, `bool`, `dict` or list column)."""
    if dtype.many:
        return series
    base = dtype.base
    if dtype.categorical:
        return (
            series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
        )
    if base == "int":
        if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            return series
        numeric = pd.to_numeric(series, errors="raise")
        present = numeric.dropna()
        if len(present) and not bool((present == present.round()).all()):
            raise ValueError("Could not losslessly coerce into int")
        return numeric.astype("Int64" if numeric.hasnans else "int64")
    if base == "float":
        if text == "num" and pd.api.types.is_numeric_dtype(series.dtype):
            return series
        if pd.api.types.is_float_dtype(series.dtype):
            return series
        return pd.to_numeric(series, errors="raise").astype("float64")
    if base == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return series
        return pd.to_datetime(series, errors="raise")
    if base == "date":
        converted = pd.to_datetime(series, errors="raise")
        return converted.dt.date.where(series.notna(), None)
    return series


# -- categorical values ---------------------------------------------------------------------------
class CatVector:
    """The distinct values of one categorical column, checked against the ULabels its feature
    accepts (`cat[ULabel]`: any label; `cat[ULabel[T]]`: labels of type `T`), by name."""

    def __init__(
        self,
        key: str,
        feature: Feature,
        get: Callable[[], pd.Series],
        set_: Callable[[pd.Series], None],
        hint: str,
        slot: str | None,
    ) -> None:
        self.key = key
        self.feature = feature
        self._get = get
        self._set = set_
        self._hint = hint  # the expression users call standardize / add_new_from on
        self._slot = slot
        parsed = gf.parse_dtype(feature.dtype or "")
        assert parsed is not None and parsed.categorical, "only categorical features"
        self._dtype = parsed
        self.validated: dict[str, str] | None = None  # value -> ULabel uid
        self.non_validated: list[str] | None = None
        self.ambiguous: dict[str, int] = {}  # value -> how many ULabels have that name
        self.synonyms: dict[str, str] = {}  # value -> the stored name it differs from by case

    def __repr__(self) -> str:
        if self.non_validated is None:
            status = "unvalidated"
        elif not self.non_validated:
            status = "validated"
        else:
            status = f"non-validated ({len(self.non_validated)})"
        return f"CatVector(key={self.key!r}, dtype={self.feature.dtype!r}, {status})"

    @property
    def label_type(self) -> str | None:
        return self._dtype.label_type

    def values(self) -> list[str]:
        """The distinct values (list elements for `list[cat[...]]`), missing ones left out;
        values that are not text are compared as text (a label's name is text)."""
        series = self._get()
        # One value per distinct value (in order of appearance), not per row: a category column
        # of a million cells has a few dozen.
        try:
            distinct = series if self._dtype.many else series.dropna().unique()
        except TypeError:  # unhashable values (lists where one value is expected)
            distinct = series
        seen: dict[str, None] = {}
        for value in distinct:
            items = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            for item in items:
                if not isinstance(item, str) and pd.isna(item):
                    continue
                seen[item if isinstance(item, str) else str(item)] = None
        return list(seen)

    def validate(self, conn: Any) -> None:
        values = self.values()
        # A name that cannot be sent to Neo4j (a lone surrogate) is no label's name.
        sendable = [v for v in values if gf.encodable(v)]
        found = gf.find_labels(conn, sendable, self.label_type) if sendable else {}
        self.validated = {v: found[v][0] for v in values if len(found.get(v, [])) == 1}
        self.ambiguous = {v: len(found[v]) for v in values if len(found.get(v, [])) > 1}
        self.non_validated = [v for v in values if v not in found]
        missing = [v for v in self.non_validated if gf.encodable(v)]
        close = gf.labels_by_lower_name(conn, missing, self.label_type) if missing else {}
        self.synonyms = {v: names[0] for v, names in close.items() if len(names) == 1}

    @property
    def is_validated(self) -> bool:
        return self.non_validated is not None and not self.non_validated and not self.ambiguous

    def message(self) -> str:
        """lamindb's report of the values not validated, with its hints."""
        in_slot = f" in slot '{self._slot}'" if self._slot is not None else ""
        lines = []
        missing = self.non_validated or []
        if missing:
            n = len(missing)
            lines.append(
                f"{n} term{'' if n == 1 else 's'} not validated in feature '{self.key}'{in_slot}: "
                f"{_format(missing)}"
            )
            if self.synonyms:
                m = len(self.synonyms)
                pairs = ", ".join(f'"{k}" → "{v}"' for k, v in list(self.synonyms.items())[:_SHOWN])
                lines.append(f"    {m} synonym{'' if m == 1 else 's'} found: {pairs}")
                lines.append(f'    → curate synonyms via: {self._hint}.standardize("{self.key}")')
            if n > len(self.synonyms):
                if self.synonyms:
                    lines.append("    for remaining terms:")
                lines.append(
                    "    → fix typos, remove non-existent values, or create them via: "
                    f"{self._hint}.add_new_from('{self.key}')"
                )
                if self.label_type is not None:
                    members = ULabel.filter(type__name=self.label_type).order_by("name")
                    names = [u.name for u in members[: _SHOWN + 1] if not u.is_type][:_SHOWN]
                    lines.append(
                        f"    → a valid label for type '{self.label_type}' has to be one of {names}"
                    )
        for value, count in self.ambiguous.items():
            lines.append(
                f"'{value}' in feature '{self.key}'{in_slot} names {count} ULabels"
                f"{' of type ' + repr(self.label_type) if self.label_type else ''}: rename all "
                "but one, or give them a type and the feature the dtype cat[ULabel[<type>]]"
            )
        return "\n".join(lines)

    def standardize(self) -> None:
        """Replace values that differ from a stored label's name only by case with that name,
        in the data (lamindb's `standardize`)."""
        if self.non_validated is None:
            raise ValidationError("Please run validate() first!")
        if not self.synonyms:
            return
        mapping = dict(self.synonyms)
        series = self._get()

        def swap(value: Any) -> Any:
            if isinstance(value, (list, tuple, np.ndarray)):
                return [mapping.get(v, v) if isinstance(v, str) else v for v in value]
            return mapping.get(value, value) if isinstance(value, str) else value

        if isinstance(series.dtype, pd.CategoricalDtype):
            new = series.astype(object).map(swap).astype("category")
        else:
            new = series.map(swap)
        self._set(new)
        n = len(mapping)
        logger.info(
            "standardized %d synonym%s in %r: %s",
            n,
            "" if n == 1 else "s",
            self.key,
            ", ".join(f'"{k}" → "{v}"' for k, v in mapping.items()),
        )
        self.non_validated = [v for v in self.non_validated if v not in mapping]
        self.synonyms = {}

    def add_new(self, **fields: Any) -> None:
        """Create a ULabel (of the feature's label type, if it has one) for each value not
        validated, with `fields` (e.g. `description=`) (lamindb's `add_new`); values that only
        differ by case from a stored label must be standardized first."""
        if self.non_validated is None:
            raise ValidationError("Please run validate() first!")
        if self.synonyms:
            raise ValidationError(
                f"Please run `.standardize({self.key!r})` before adding new values: "
                f"{_format(self.synonyms)} differ from stored labels only by case"
            )
        new = [v for v in self.non_validated if v]
        if not new:
            return
        bad = [v for v in new if not gf.encodable(v)]
        if bad:
            raise ValidationError(
                f"feature '{self.key}': {len(bad)} value(s) are not valid Unicode (a lone "
                "surrogate) and cannot be label names; fix them in the data first"
            )
        label_type = None
        if self.label_type is not None:
            label_type = ULabel.filter(name=self.label_type, is_type=True).first()
            if label_type is None:
                raise ValidationError(
                    f"feature '{self.key}' has dtype {self.feature.dtype}, but there is no "
                    f"ULabel type {self.label_type!r}; create it: "
                    f"ln.ULabel(name={self.label_type!r}, is_type=True).save()"
                )
        labels = [ULabel(name=value, type=label_type, **fields) for value in new]  # all checked
        for label in labels:
            label.save()
        n = len(new)
        logger.info(
            "added %d record%s with ULabel.name for %r: %s",
            n,
            "" if n == 1 else "s",
            self.key,
            _format(new),
        )
        self.non_validated = []


class CatManager:
    """`curator.cat`: the categorical columns of one DataFrame (lamindb's
    `DataFrameCatManager`): what did not validate, `standardize()` and `add_new_from()`."""

    def __init__(self, vectors: dict[str, CatVector], owner: ComponentCurator) -> None:
        self._vectors = vectors
        self._owner = owner

    def __repr__(self) -> str:
        status = "validated" if self._owner._is_validated else "unvalidated"
        return f"DataFrameCatManager(categorical_features={len(self._vectors)}, {status})"

    @property
    def categoricals(self) -> list[Feature]:
        """The categorical features whose columns are in the data."""
        return [v.feature for v in self._vectors.values()]

    @property
    def non_validated(self) -> dict[str, list[str]]:
        """Per categorical column, the values that are no label yet (after `validate()`)."""
        if any(v.non_validated is None for v in self._vectors.values()):
            raise ValidationError("Please run validate() first!")
        return {k: list(v.non_validated or []) for k, v in self._vectors.items() if v.non_validated}

    def _vector(self, key: Any) -> CatVector:
        if key not in self._vectors:
            raise InvalidArgument(
                f"{key!r} is not a categorical column of the data; categorical columns: "
                f"{', '.join(map(repr, self._vectors)) or '(none)'}"
            )
        return self._vectors[key]

    def standardize(self, key: str) -> None:
        """Replace values that differ from a stored label only by case, in the data."""
        self._owner._check_mutable()
        self._vector(key).standardize()
        self._owner._is_validated = False

    def add_new_from(self, key: str, **fields: Any) -> None:
        """Create ULabels for the values of column `key` that are no label yet; `fields` go
        to each new label (e.g. `description=`)."""
        self._vector(key).add_new(**fields)
        self._owner._is_validated = False


# -- one DataFrame --------------------------------------------------------------------------------
class ComponentCurator:
    """Validates one DataFrame against one schema (lamindb's `ComponentCurator`): the columns a
    DataFrameCurator checks, or one slot of an AnnDataCurator.

    `hint` is how users reach this curator's `cat` (`curator.cat`,
    `curator.slots['obs'].cat`): the error messages name it.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        schema: Schema,
        *,
        slot: str | None = None,
        hint: str = "curator.cat",
        mutable: bool = True,
    ) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise InvalidType(f"expected a pandas DataFrame, not {builtins_name(frame)}")
        self._frame = frame
        self._schema = schema
        self._slot = slot
        self._mutable = mutable
        self._is_validated = False
        self._conn = schema._inst().connection
        members = list(schema.members)
        self._required = {f.name for f in members} if schema.minimal_set else set()
        self._members = [f.name for f in members]
        features = {f.name: f for f in self._flexible(schema)}
        features.update({f.name: f for f in members})  # the schema's own win over flexible ones
        self._features = features
        self._vectors: dict[str, CatVector] = {}
        for name, feature in features.items():
            parsed = gf.parse_dtype(feature.dtype or "")
            if parsed is not None and parsed.categorical and name in frame.columns:
                self._vectors[name] = CatVector(
                    name,
                    feature,
                    get=partial(self._column, name),
                    set_=partial(self._set_column, name),
                    hint=hint,
                    slot=slot,
                )
        self._cat = CatManager(self._vectors, self)

    def _flexible(self, schema: Schema) -> list[Feature]:
        """The features a flexible schema also validates: those named like a column (within
        the feature type of an `itype` such as `Feature[<uid>]`)."""
        if not schema.flexible:
            return []
        names = [c for c in self._frame.columns if isinstance(c, str) and gf.encodable(c)]
        if not names:
            return []
        itype = schema.itype or "Feature"
        if itype == "Feature":
            return Feature.filter(name__in=names, is_type=False).to_list()
        types = {itype[len("Feature[") : -1]}
        frontier = set(types)
        while frontier:  # the type's sub-types, level by level (lamindb's query_features)
            below = {f.uid for f in Feature.filter(type__uid__in=sorted(frontier), is_type=True)}
            frontier = below - types
            types |= below
        return Feature.filter(name__in=names, is_type=False, type__uid__in=sorted(types)).to_list()

    def __repr__(self) -> str:
        status = "validated" if self._is_validated else "unvalidated"
        slot = f", slot: {self._slot}" if self._slot else ""
        return f"ComponentCurator(Schema: {self._schema.name or self._schema.uid}{slot}, {status})"

    @property
    def cat(self) -> CatManager:
        """Manage the categorical columns (lamindb's `curator.cat`)."""
        return self._cat

    @property
    def dataset(self) -> pd.DataFrame:
        """The data, with columns converted if the schema coerces."""
        return self._frame

    def _check_mutable(self) -> None:
        if not self._mutable:
            raise InvalidArgument(
                "cannot change the data of a stored artifact; load it (artifact.load()), "
                "curate the DataFrame and save it as a new version"
            )

    def _column(self, key: str) -> pd.Series:
        return self._frame[key]

    def _set_column(self, key: str, values: pd.Series) -> None:
        self._frame[key] = values

    def _structure(self) -> list[str]:
        """Problems with the columns themselves: repeated, missing, not allowed, out of order."""
        problems = []
        columns = list(self._frame.columns)
        present = set(columns)  # an AnnData's var.T has a column per gene: no list scans
        repeated = sorted({str(c) for c, n in Counter(columns).items() if n > 1})
        if repeated:
            problems.append(f"columns {_format(repeated)} appear more than once")
        missing = [name for name in self._members if name in self._required and name not in present]
        for name in missing:
            problems.append(
                f"column '{name}' not in dataframe. Columns in dataframe: "
                f"{[str(c) for c in columns]}"
            )
        if self._schema.maximal_set:
            for column in columns:
                if column not in self._features:
                    problems.append(
                        f"column '{column}' not in the schema (maximal_set=True: the data may "
                        "have no other columns)"
                    )
        if self._schema.ordered_set:
            members = set(self._members)
            in_data = [c for c in columns if c in members]
            expected = [m for m in self._members if m in present]
            for got, want in zip(in_data, expected):
                if got != want:
                    problems.append(f"column '{got}' out-of-order (expected '{want}' here)")
                    break
        return problems

    def _dtypes(self) -> tuple[list[str], dict[str, pd.Series]]:
        """Dtype problems, and the columns `coerce` converted."""
        problems, converted = [], {}
        for name, feature in self._features.items():
            if name not in self._frame.columns or isinstance(self._frame[name], pd.DataFrame):
                continue  # missing, or repeated (a DataFrame): reported with the columns
            text = feature.dtype or ""
            parsed = gf.parse_dtype(text)
            if parsed is None:
                problems.append(f"feature '{name}' has no valid dtype ({text!r})")
                continue
            series = self._frame[name]
            if self._schema.coerce:
                try:
                    new = _coerced(series, parsed, text)
                except (TypeError, ValueError) as exc:
                    problems.append(f"Error while coercing '{name}' to type {text}: {exc}")
                    continue
                if new is not series:
                    converted[name] = new
                    series = new
            problem = _dtype_problem(name, series, parsed, text)
            if problem is not None:
                problems.append(problem)
        return problems, converted

    def validate(self) -> None:
        """Check the data against the schema; a `ValidationError` lists every problem."""
        self._is_validated = False
        problems = self._structure()
        dtype_problems, converted = self._dtypes()
        problems += dtype_problems
        for vector in self._vectors.values():
            vector.validate(self._conn)
        report = self.report(problems, bool(dtype_problems))
        if report:
            raise ValidationError(report)
        if converted:
            # The converted columns are the data from now on (stored by save_artifact); the
            # caller's DataFrame is left as it was, as lamindb does.
            self._frame = self._frame.assign(**converted)
        self._is_validated = True

    def report(self, problems: list[str], dtypes: bool) -> str:
        where = f"slot '{self._slot}'" if self._slot else "the dataframe"
        name = self._schema.name or self._schema.uid
        parts = []
        if problems:
            lines = [f"{where} does not match schema '{name}':"]
            lines += [f"- {p}" for p in problems]
            if dtypes and not self._schema.coerce:
                lines.append(
                    "   ▶ Hint: Consider setting `coerce=True` on the schema to attempt coercing "
                    "values during validation to the required dtype."
                )
            parts.append("\n".join(lines))
        parts += [v.message() for v in self._vectors.values() if not v.is_validated]
        return "\n".join(p for p in parts if p)

    def labels(self) -> list[tuple[str, str]]:
        """(feature uid, ULabel uid) of every label the categorical columns hold."""
        out: dict[tuple[str, str], None] = {}
        for vector in self._vectors.values():
            for uid in (vector.validated or {}).values():
                out[(vector.feature.uid, uid)] = None
        return list(out)


def _anndata_slot(adata: Any, slot: str) -> pd.DataFrame:
    if slot == "obs":
        return adata.obs
    if slot == "var":
        return adata.var
    if slot == "var.T":
        return adata.var.T
    raise NotSupported(f"AnnData slot {slot!r} is not validated by lineage")


class AnnDataComponents:
    """An AnnData's slots (`obs`, `var`, `var.T`), each checked by a `ComponentCurator` against
    the schema's component of that slot."""

    def __init__(self, adata: Any, schema: Schema, *, mutable: bool = True) -> None:
        self.adata = adata
        self.schema = schema
        self.slots: dict[str, ComponentCurator] = {}
        for slot, component in schema.slots.items():
            self.slots[slot] = ComponentCurator(
                _anndata_slot(adata, slot),
                component,
                slot=slot,
                hint=f"curator.slots['{slot}'].cat",
                mutable=mutable and slot != "var.T",
            )

    def validate(self) -> None:
        """Validate every slot; one `ValidationError` lists the problems of all."""
        reports = []
        for curator in self.slots.values():
            try:
                curator.validate()
            except ValidationError as exc:
                reports.append(str(exc))
        if reports:
            raise ValidationError("\n".join(reports))

    def data(self) -> Any:
        """The AnnData with the slots' changes (standardized values, coerced columns): the
        one given if nothing changed, else a copy."""
        changed = {
            slot: c.dataset
            for slot, c in self.slots.items()
            if slot in ("obs", "var") and not c.dataset.equals(getattr(self.adata, slot))
        }
        if not changed:
            return self.adata
        adata = self.adata.copy()
        for slot, frame in changed.items():
            setattr(adata, slot, frame)
        return adata

    def labels(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys(pair for c in self.slots.values() for pair in c.labels()))
