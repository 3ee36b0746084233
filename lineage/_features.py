"""Features: `ln.Feature` and the values records hold for them (`artifact.features`).

A feature is a named, typed dimension (`dtype` in lamindb's spellings). Values are checked
against it here, in Python, before anything is written; `graph.features` stores them (scalar
values as shared `FeatureValue` nodes, categorical ones as `LABELED_WITH {feature}` edges to
ULabels) and `graph.query` filters by them.
"""

from __future__ import annotations

import json
import numbers
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Self

import pandas as pd

from graph import features as gf
from graph import records as gr
from lineage._model import Model, register, require_saved
from lineage._record import Record
from lineage._registries import ULabel
from lineage.errors import InvalidArgument, InvalidType, ValidationError

# Python types a dtype may be given as, and their spelling.
_TYPE_NAMES: dict[Any, str] = {
    int: "int",
    float: "float",
    str: "str",
    bool: "bool",
    date: "date",
    datetime: "datetime",
    dict: "dict",
}
# Longest str or dict (as JSON) value, in UTF-8 bytes: values are keys of the (feature, value)
# index, whose entries Neo4j caps at about 8 kB.
MAX_VALUE_BYTES = 4096
# Records per transaction in `Registry.features.add_values_many`.
BULK_BATCH = 10_000


def dtype_text(dtype: Any) -> str:
    """lamindb's dtype spelling of `dtype` (a str, a Python type, `ULabel`, a ULabel type
    record, `list[...]` of these); `ValidationError` if it is none."""
    if isinstance(dtype, str):
        if gf.parse_dtype(dtype) is None:
            raise ValidationError(
                f"dtype {dtype!r} is not one of {', '.join(gf.SCALAR_DTYPES)}, cat[ULabel], "
                "cat[ULabel[<type>]] or list[...] of these"
            )
        return dtype
    if typing.get_origin(dtype) is list:
        (inner,) = typing.get_args(dtype) or (None,)
        text = dtype_text(inner)
        if text.startswith("list["):
            raise ValidationError(f"dtype {dtype!r}: a list of lists is not a feature dtype")
        return f"list[{text}]"
    if dtype in _TYPE_NAMES:
        return _TYPE_NAMES[dtype]
    if dtype is ULabel:
        return "cat[ULabel]"
    if isinstance(dtype, ULabel):
        if not dtype.is_type:
            raise ValidationError(
                f"dtype ULabel {dtype.name!r} is not a type (is_type=True): pass ULabel or a type"
            )
        return f"cat[ULabel[{dtype.name}]]"
    raise ValidationError(
        f"dtype {dtype!r} is not a feature dtype; use one of {', '.join(gf.SCALAR_DTYPES)}, "
        "ULabel, a ULabel type or list[...]"
    )


@register
class Feature(Record):
    """A named, typed dimension to annotate artifacts, collections and runs with.

    >>> ln.Feature(name="temperature", dtype=float, unit="°C").save()
    Feature(uid='...', ..., name='temperature', dtype='float', unit='°C', is_type=False)
    >>> ln.Feature(name="temperature", dtype="float").save().unit   # same name & dtype: stored
    '°C'
    """

    _label = "Feature"
    # Deleted for good, a feature takes its values with it (docs/architecture.md, "Features").
    _deleted_also = (gf.delete_feature_values,)

    def __init__(
        self,
        name: str | None = None,
        dtype: Any = None,
        type: Feature | None = None,  # lamindb's name
        is_type: bool | None = None,
        unit: str | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"Feature(name=...) needs a non-empty str, got {name!r}")
        if dtype is None and not is_type:
            raise ValidationError(
                f"Feature {name!r} needs a dtype: one of {', '.join(gf.SCALAR_DTYPES)}, "
                "cat[ULabel], cat[ULabel[<type>]] or list[...]"
            )
        text = None if dtype is None else dtype_text(dtype)
        if type is not None:
            if not isinstance(type, Feature):
                raise InvalidType(f"Feature.type takes a Feature, not {builtins_name(type)}")
            if not type.is_type:
                raise ValidationError(
                    f"Feature.type must be a feature type (is_type=True); {type.name!r} is not"
                )
        super().__init__(
            name=name,
            dtype=text,
            type=type,
            is_type=bool(is_type),
            unit=unit,
            description=description,
            **fields,
        )

    def save(self) -> Self:
        """Save; a feature of the same name is the stored one if its dtype agrees (lamindb
        returns it too), else a `ValidationError` naming both dtypes."""
        if not self._saved:
            # Every branch: the name is unique in the graph, trashed features included.
            stored = Feature.filter(name=self.name, branch__in=[1, 0, -1]).first()
            if stored is not None and stored.branch != 1:
                raise ValidationError(
                    f"feature {self.name!r} is in the trash or archive (uid {stored.uid}): "
                    f"restore it (ln.Feature.get({stored.uid!r}).restore()) or delete it "
                    "permanently first"
                )
            if stored is not None:
                if stored.dtype != self.dtype or bool(stored.is_type) != bool(self.is_type):
                    raise ValidationError(
                        f"feature {self.name!r} exists with dtype {stored.dtype!r}, not "
                        f"{self.dtype!r}: use another name, or delete the stored feature"
                    )
                self._load(stored._values)
                return self
        return super().save()

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        """A feature that schemas list is not deleted for good: they would silently lose a
        member (and no longer match their hash)."""
        if not permanent:
            return []

        def refuse(count: int) -> None:
            raise InvalidArgument(
                f"feature {self.name!r} ({self.uid}) is a member of {count} schema(s); delete "
                "those first, or move the feature to the trash (delete())"
            )

        return [gr.Guard("schemas", refuse)]

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame) -> list[Feature]:
        """One unsaved feature per column, its dtype inferred (lamindb's `from_dataframe`):
        categorical columns are `cat[ULabel]`; save them with `ln.save(features)`.

        >>> frame = pd.DataFrame({"cell_type": pd.Categorical(["T cell"]), "n_genes": [2000]})
        >>> [(f.name, f.dtype) for f in ln.Feature.from_dataframe(frame)]
        [('cell_type', 'cat[ULabel]'), ('n_genes', 'int')]
        """
        if not isinstance(df, pd.DataFrame):
            raise InvalidType(f"from_dataframe() takes a DataFrame, not {builtins_name(df)}")
        features = []
        for column, series in df.items():
            features.append(cls(name=str(column), dtype=_pandas_dtype(str(column), series)))
        return features


def builtins_name(value: Any) -> str:
    return type(value).__name__


def _pandas_dtype(column: str, series: pd.Series) -> str:
    kind = series.dtype
    if isinstance(kind, pd.CategoricalDtype):
        return "cat[ULabel]"
    if pd.api.types.is_bool_dtype(kind):
        return "bool"
    if pd.api.types.is_integer_dtype(kind):
        return "int"
    if pd.api.types.is_float_dtype(kind):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(kind):
        return "datetime"
    if pd.api.types.is_string_dtype(kind) or pd.api.types.is_object_dtype(kind):
        return "str"
    raise ValidationError(f"column {column!r} has dtype {kind}, which no feature dtype matches")


# -- values ---------------------------------------------------------------------------------------
def _bad(feature: gf.FeatureRef, value: Any, why: str) -> ValidationError:
    return ValidationError(
        f"feature {feature.name!r} has dtype {feature.dtype}: value {value!r} "
        f"({type(value).__name__}) {why}; nothing was written"
    )


def _scalar(feature: gf.FeatureRef, base: str, value: Any) -> Any:
    """One element converted to what is stored, or `ValidationError` naming feature, value and
    dtype."""
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _bad(feature, value, "is not an int")
        return int(value)
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _bad(feature, value, "is not a number")
        return float(value)
    if base == "bool":
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise _bad(feature, value, "is not a bool")
        return bool(value)
    if base == "date":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise _bad(feature, value, "is not an ISO 8601 date") from None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise _bad(feature, value, "is not a date")
        return value
    if base == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise _bad(feature, value, "is not an ISO 8601 datetime") from None
        if not isinstance(value, datetime):
            raise _bad(feature, value, "is not a datetime")
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return pd.Timestamp(value).to_pydatetime() if isinstance(value, pd.Timestamp) else value
    if base == "dict":
        if not isinstance(value, dict):
            raise _bad(feature, value, "is not a dict")
        try:
            value = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise _bad(feature, value, f"is not JSON ({exc})") from None
    if base == "str" and not isinstance(value, str):
        raise _bad(feature, value, "is not a str")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad(feature, value, "is not valid Unicode (a lone surrogate)") from None
    if size > MAX_VALUE_BYTES:
        raise _bad(feature, value[:40] + "...", f"is {size} bytes; at most {MAX_VALUE_BYTES}")
    return value


def _elements(feature: gf.FeatureRef, dtype: gf.Dtype, value: Any) -> list[Any]:
    """The elements of one value: a list for list[...] dtypes (and several labels for cat)."""
    if isinstance(value, (list, tuple, set, frozenset, pd.Series)):
        if not dtype.many and not dtype.categorical:
            raise _bad(feature, value, "is a list; the dtype holds one value")
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items = sorted(items, key=repr)
        return items
    if dtype.many and not dtype.categorical:
        raise _bad(feature, value, "is not a list")
    return [value]


class _Resolved:
    """Values of many records checked and converted, labels looked up: what to write."""

    def __init__(
        self,
        conn: Any,
        uids: Sequence[str],
        dicts: Sequence[Mapping[Any, Any]],
        *,
        known_only: bool = False,
    ) -> None:
        """`known_only`: names no feature has are left out (run params), not refused."""
        self.annotations: list[gf.Annotation] = []
        if not uids:
            return
        names: set[str] = set()
        for values in dicts:
            if not isinstance(values, Mapping):
                raise InvalidType(f"add_values() takes a dict, not {builtins_name(values)}")
            names |= {_feature_name(k) for k in values}
        refs = gf.feature_refs(conn, names)
        if known_only:
            dicts = [{k: v for k, v in d.items() if _feature_name(k) in refs} for d in dicts]
            names = set(refs)
        unknown = sorted(names - refs.keys())
        if unknown:
            raise ValidationError(
                f"no feature named {', '.join(map(repr, unknown))}; create them first, e.g. "
                f"ln.Feature(name={unknown[0]!r}, dtype=...).save(); nothing was written"
            )
        # Pass 1: check and convert; label names are collected per ULabel type.
        pending: list[tuple[str, list[tuple[str, Any]], list[tuple[gf.FeatureRef, Any]]]] = []
        wanted: dict[str | None, set[str]] = {}
        for uid, values in zip(uids, dicts):
            scalars, cats = [], []
            for key, value in values.items():
                if value is None:  # lamindb skips None values
                    continue
                feature = refs[_feature_name(key)]
                dtype = feature.parsed
                if dtype is None:
                    raise ValidationError(f"feature {feature.name!r} has no valid dtype")
                for item in _elements(feature, dtype, value):
                    if dtype.categorical:
                        if isinstance(item, ULabel):
                            require_saved(item, f"feature {feature.name!r}")
                        elif not isinstance(item, str):
                            raise _bad(feature, item, "is neither a ULabel nor a ULabel's name")
                        else:
                            wanted.setdefault(dtype.label_type, set()).add(item)
                        cats.append((feature, item))
                    else:
                        scalars.append((feature.uid, _scalar(feature, dtype.base, item)))
            pending.append((uid, scalars, cats))
        # Pass 2: label names to uids, one query per ULabel type.
        found = {t: gf.find_labels(conn, sorted(ns), t) for t, ns in wanted.items()}
        invalid: dict[str, list[str]] = {}
        for _, _, cats in pending:
            for feature, item in cats:
                if isinstance(item, str):
                    uids = found[feature.parsed.label_type].get(item, [])  # type: ignore[union-attr]
                    if len(uids) != 1:
                        invalid.setdefault(feature.name, []).append(item)
        if invalid:
            parts = [
                f"{name!r} ({refs[name].dtype}): {', '.join(map(repr, sorted(set(vs))))}"
                for name, vs in sorted(invalid.items())
            ]
            raise ValidationError(
                "these values could not be validated (no ULabel, or several, of that name): "
                + "; ".join(parts)
                + "; create the labels first (ln.ULabel(name=...).save()) or pass the ULabel "
                "records; nothing was written"
            )
        for uid, scalars, cats in pending:
            labels = [
                (
                    feature.uid,
                    item.uid
                    if isinstance(item, ULabel)
                    else found[feature.parsed.label_type][item][0],  # type: ignore[union-attr]
                )
                for feature, item in cats
            ]
            self.annotations.append(gf.Annotation(uid, scalars, labels))


def _feature_name(key: Any) -> str:
    if isinstance(key, Feature):
        return str(key.name)
    if not isinstance(key, str):
        raise InvalidType(f"feature keys are names (str) or Feature records, not {key!r}")
    return key


class FeatureManager:
    """`record.features`: the feature values one artifact, collection or run holds.

    >>> ln.Feature(name="temperature", dtype=float).save()
    Feature(uid='...', ..., name='temperature', dtype='float', is_type=False)
    >>> artifact.features.add_values({"temperature": 21.5})
    >>> artifact.features.get_values()
    {'temperature': 21.5}
    """

    def __init__(self, host: Model) -> None:
        self._host = host

    def __repr__(self) -> str:
        return f"<FeatureManager of {self._host!r}>"

    def add_values(self, values: Mapping[str | Feature, Any]) -> None:
        """Add values (one transaction); categorical ones name stored ULabels. A bad value, an
        unknown feature or label raises `ValidationError` and nothing is written."""
        require_saved(self._host, "features.add_values()")
        conn = self._host._inst().connection
        resolved = _Resolved(conn, [self._host.uid], [values])
        gf.add_values(conn, self._host._label, resolved.annotations)

    def get_values(self) -> dict[str, Any]:
        """`{feature name: value}`; a list where the dtype is a list or there are several."""
        require_saved(self._host, "features.get_values()")
        conn = self._host._inst().connection
        flat = gf.get_values(conn, self._host._label, self._host.uid)
        return gf.as_dict(flat, gf.features_by_uid(conn)) if flat else {}

    def remove_values(
        self,
        feature: str | Feature | Iterable[str | Feature] | None = None,
        *,
        value: Any = None,
    ) -> None:
        """Remove the values of a feature (or several, or all with None), or only `value`."""
        require_saved(self._host, "features.remove_values()")
        conn = self._host._inst().connection
        if feature is None:
            names = {ref.name for ref in gf.features_by_uid(conn).values()}
        elif isinstance(feature, str | Feature):
            names = {_feature_name(feature)}
        else:
            names = {_feature_name(f) for f in typing.cast(Iterable[Any], feature)}
        refs = gf.feature_refs(conn, names)
        unknown = sorted(names - refs.keys()) if feature is not None else []
        if unknown:
            raise ValidationError(f"no feature named {', '.join(map(repr, unknown))}")
        values = labels = None
        if value is not None:
            if len(refs) != 1:
                raise InvalidArgument("remove_values(value=...) takes one feature")
            resolved = _Resolved(conn, [self._host.uid], [{next(iter(refs)): value}])
            (annotation,) = resolved.annotations
            values = [v for _, v in annotation.values]
            labels = [u for _, u in annotation.labels]
        gf.remove_values(
            conn,
            self._host._label,
            self._host.uid,
            [r.uid for r in refs.values()],
            values=values,
            labels=labels,
        )

    def _lines(self) -> list[str]:
        return [f"{name}: {value!r}" for name, value in self.get_values().items()]


class RegistryFeatures:
    """`ln.Artifact.features`: feature values for many records of one registry at once.

    >>> ln.Feature(name="temperature", dtype=float).save()
    Feature(uid='...', ..., name='temperature', dtype='float', is_type=False)
    >>> ln.Artifact.features.add_values_many([artifact, artifact1], [{"temperature": 20.0},
    ...                                                              {"temperature": 30.0}])
    >>> [a.key for a in ln.Artifact.filter(temperature__gt=25)]
    ['scrna/sample1.h5ad']
    """

    def __init__(self, registry: type[Model]) -> None:
        self._registry = registry

    def add_values_many(
        self,
        records: Sequence[Model],
        values: Mapping[str | Feature, Any] | Sequence[Mapping[str | Feature, Any]],
    ) -> None:
        """Add `values` (one dict for all, or one per record) to many saved records: checked
        all first, then written with one UNWIND per shape, one transaction per `BULK_BATCH`
        records. A bad value anywhere raises before anything is written."""
        records = list(records)
        for record in records:
            if not isinstance(record, self._registry):
                raise InvalidType(
                    f"{self._registry.__name__}.features.add_values_many() takes "
                    f"{self._registry.__name__} records, not {builtins_name(record)}"
                )
            require_saved(record, "features.add_values_many()")
        dicts = [values] * len(records) if isinstance(values, Mapping) else list(values)
        if len(dicts) != len(records):
            raise InvalidArgument(
                f"add_values_many() got {len(records)} records and {len(dicts)} value dicts"
            )
        if not records:
            return
        conn = records[0]._inst().connection
        resolved = _Resolved(conn, [r.uid for r in records], dicts)
        label = self._registry._label
        for start in range(0, len(resolved.annotations), BULK_BATCH):
            gf.add_values(conn, label, resolved.annotations[start : start + BULK_BATCH])


class Features:
    """The `features` attribute: a `FeatureManager` on a record, `RegistryFeatures` on its
    class."""

    def __get__(self, obj: Model | None, cls: type[Model]) -> Any:
        if obj is None:
            return RegistryFeatures(cls)
        return FeatureManager(obj)


def param_values(conn: Any, params: Mapping[str, Any] | None) -> gf.Annotation | None:
    """The params of `ln.track(params=...)` that name a stored feature, checked against its
    dtype (a `ValidationError` before anything is written), as the feature values the run is
    created with (`graph.records.NewRecord.annotation`, in the run's transaction); None if no
    param names a feature. Params stay the run's `params` JSON either way."""
    # Checked with a placeholder uid: the run's uid replaces it when the run is written.
    resolved = _Resolved(conn, ["-"], [dict(params or {})], known_only=True)
    for annotation in resolved.annotations:
        if annotation.values or annotation.labels:
            return annotation
    return None
