"""Schemas: `ln.Schema`, the data models datasets are validated against (lamindb's `Schema`).

A schema is a `:Schema` node with ordered `[:HAS_FEATURE {position}]` edges to its features, or,
for a composite one (an AnnData's), `[:HAS_COMPONENT {slot}]` edges to the schemas of its slots
(docs/schema.md). Its `hash` is lamindb's: the rules (`itype`, `minimal_set`, `ordered_set`,
`maximal_set`, `flexible`, `coerce`), the number of features and their uids (sorted unless
`ordered_set`), and the slots' hashes. Two schemas with the same hash are one: the constructor
returns the stored one (as lamindb does), and the write checks again under the label's lock, so
concurrent saves of the same schema make one node. The fields that make the hash never change
once a schema exists; a different schema is a new one.

Validation itself (columns, dtypes, categorical values) is `lineage._curate`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Self

import pandas as pd

from graph import features as gf
from graph import ids as gids
from graph import models as gm
from graph import query as gq
from graph import records as gr
from lineage._features import Feature, builtins_name
from lineage._model import register, require_saved
from lineage._queryset import QuerySet
from lineage._record import Record
from lineage._versioned import only_row
from lineage.errors import (
    DuplicateContent,
    InvalidArgument,
    InvalidType,
    NotSupported,
    ValidationError,
)
from loaders import hash_string

logger = logging.getLogger("lineage")

# The object types a schema describes, and the slots of each a component schema can validate.
OTYPES = ("DataFrame", "AnnData")
SLOTS = {"DataFrame": (), "AnnData": ("obs", "var", "var.T")}
# lamindb's codes for the parts of a schema's hash (`Schema._validate_kwargs_calculate_hash`).
_HASH_CODE = {
    "dtype": "a", "itype": "b", "minimal_set": "c", "ordered_set": "d", "maximal_set": "e", "flexible": "f",
    "coerce": "g", "n_members": "h", "optional": "i", "features": "j", "slots": "l",
}  # fmt: skip
# What the hash is made of, and what decides whether there is one: fixed once a schema exists.
_FIXED = (
    "itype", "minimal_set", "ordered_set", "maximal_set", "flexible", "coerce", "n_members",
    "otype", "is_type",
)  # fmt: skip
# lamindb's Schema arguments lineage does not implement, and why.
_UNSUPPORTED = {
    "index": "validating a DataFrame's index",
    "suffix": "a required artifact suffix",
    "dtype": "a dtype for all members (features carry their own dtype)",
    "n_members": "a member count without members",
    "lookup": "skipping the look-up of a stored schema with the same hash",
}
_VALID = (
    "features, slots, name, description, itype, type, is_type, flexible, otype, minimal_set, "
    "ordered_set, maximal_set, coerce"
)


def valid_features() -> Schema:
    """lamindb's built-in schema `"valid_features"`: every column named like a feature is
    validated and annotated. The stored one of that name, else
    `Schema(name="valid_features", itype=ln.Feature)` saved (as lamindb's `valid_features()`)."""
    stored = Schema.filter(name="valid_features").order_by("id").first()
    return stored if stored is not None else Schema(name="valid_features", itype=Feature).save()


def itype_text(itype: Any) -> str | None:
    """lamindb's spelling of an identifier type: `"Feature"` for `ln.Feature` (or the text),
    `"Feature[<uid>]"` for a saved feature type (members of that type only)."""
    if itype is None or itype is Feature or itype == "Feature":
        return None if itype is None else "Feature"
    if isinstance(itype, Feature):
        require_saved(itype, "Schema(itype=...)")
        if not itype.is_type:
            raise ValidationError(
                f"Schema(itype=...): feature {itype.name!r} is not a feature type "
                "(is_type=True); pass ln.Feature or a feature type"
            )
        return f"Feature[{itype.uid}]"
    raise ValidationError(
        f"Schema(itype={itype!r}): lineage validates columns against the Feature registry "
        "only; pass ln.Feature, 'Feature' or a saved feature type (is_type=True)"
    )


def schema_hash(
    *,
    itype: str | None,
    minimal_set: bool,
    ordered_set: bool,
    maximal_set: bool,
    flexible: bool,
    coerce: bool | None,
    feature_uids: list[str],
    slot_hashes: Mapping[str, str],
) -> str:
    """lamindb's schema hash (its `_validate_kwargs_calculate_hash`, for Feature schemas: no
    dtype, index, suffix or optional features)."""
    # lamindb's `_dtype_str`: none for Feature schemas, "num" for others (composites here).
    dtype = None if itype is not None and itype.startswith("Feature") else "num"
    parts = [
        f"{_HASH_CODE[name]}={value}"
        for name, value in (
            ("dtype", dtype),
            ("itype", itype),
            ("minimal_set", minimal_set),
            ("ordered_set", ordered_set),
            ("maximal_set", maximal_set),
        )
        if value is not None
    ]
    n_members = len(feature_uids) or None
    if flexible != (n_members is None):  # lamindb hashes `flexible` only off its default
        parts.append(f"{_HASH_CODE['flexible']}={flexible}")
    if coerce:
        parts.append(f"{_HASH_CODE['coerce']}={coerce}")
    if n_members is not None:
        parts.append(f"{_HASH_CODE['n_members']}={n_members}")
        uids = feature_uids if ordered_set else sorted(feature_uids)
        parts.append(f"{_HASH_CODE['features']}={hash_string(':'.join(uids))}")
    if slot_hashes:
        joined = ":".join(sorted(f"{slot}={h}" for slot, h in slot_hashes.items()))
        parts.append(f"{_HASH_CODE['slots']}={hash_string(joined)}")
    return hash_string(":".join(sorted(parts)))


def _bool(name: str, value: Any, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "True, False or None" if optional else "True or False"
        raise InvalidType(f"Schema({name}=...) takes {allowed}, not {builtins_name(value)}")
    return value


def _features(features: Any) -> list[Feature]:
    """The features given, checked: saved, in the main branch, no types, no repeats."""
    if features is None:
        return []
    if isinstance(features, (Feature, str)) or not hasattr(features, "__iter__"):
        raise InvalidType(
            f"Schema(features=...) takes a list of Feature records, not {builtins_name(features)}"
        )
    out: list[Feature] = []
    for i, feature in enumerate(features):
        if not isinstance(feature, Feature):
            raise InvalidType(
                f"Schema(features=...): item {i} is a {builtins_name(feature)}, not a Feature; "
                f"get or create it first: ln.Feature.get(name=...) or ln.Feature(name=..., "
                "dtype=...).save()"
            )
        require_saved(feature, "Schema(features=...)")
        if feature.is_type:
            raise ValidationError(
                f"Schema(features=...): {feature.name!r} is a feature type (is_type=True), not a "
                "feature a dataset can have; pass it as itype= to accept its members"
            )
        if feature.branch != 1:
            raise ValidationError(
                f"Schema(features=...): feature {feature.name!r} is in the trash or archive; "
                f"restore it first (ln.Feature.get({feature.uid!r}).restore())"
            )
        out.append(feature)
    repeated = sorted({f.name for f in out if sum(g.uid == f.uid for g in out) > 1})
    if repeated:
        raise ValidationError(
            f"Schema(features=...) lists {', '.join(map(repr, repeated))} more than once"
        )
    return out


def _slots(slots: Any, otype: str | None) -> dict[str, Schema]:
    """The slots given, checked against the object type: saved component schemas by slot."""
    if slots is None:
        return {}
    if not isinstance(slots, Mapping):
        raise InvalidType(
            f"Schema(slots=...) takes a dict of slot -> Schema, not {builtins_name(slots)}"
        )
    if not slots:
        return {}
    if otype is None:
        raise InvalidArgument(
            "Schema(slots=...) needs otype= for a composite schema, e.g. otype='AnnData'"
        )
    allowed = SLOTS[otype]
    out: dict[str, Schema] = {}
    for slot, component in slots.items():
        if not isinstance(slot, str) or slot not in allowed:
            if not allowed:
                raise NotSupported(
                    f"Schema(otype={otype!r}, slots=...): lineage validates a {otype} by its "
                    "columns (features=...), not by slots such as 'attrs'"
                )
            if isinstance(slot, str) and slot.split(".")[0] in ("uns", "obsm", "varm", "layers"):
                raise NotSupported(
                    f"Schema(slots=...): slot {slot!r} is not validated by lineage; supported "
                    f"slots of an {otype}: {', '.join(allowed)}"
                )
            raise ValidationError(
                f"Schema(slots=...): {slot!r} is not a slot of an {otype}; slots: "
                f"{', '.join(allowed)}"
            )
        if not isinstance(component, Schema):
            raise InvalidType(
                f"Schema(slots=...): slot {slot!r} takes a Schema, not {builtins_name(component)}"
            )
        require_saved(component, f"Schema(slots=...) slot {slot!r}")
        if component.is_type:
            raise ValidationError(
                f"Schema(slots=...): slot {slot!r} is a schema type (is_type=True), which "
                "validates nothing; pass a schema with features or an itype"
            )
        out[slot] = component
    return out


@register
class Schema(Record):
    """A data model to validate and annotate datasets: features (the columns a DataFrame may
    have), or slots for the parts of an AnnData (lamindb's `Schema`).

    Args:
        features: saved features, in the order the data has them.
        slots: for a composite schema, a component schema per slot (`"obs"`, `"var"`,
            `"var.T"` of an AnnData; `var.T`: the var index as columns).
        name, description: what the schema is.
        itype: what columns are validated against: `ln.Feature` (any feature), or a feature
            type (its members only). Defaults to `"Feature"` when features are passed.
        type: a schema type (`is_type=True`) to group this schema under.
        is_type: a schema type, which groups schemas and validates nothing.
        flexible: also validate and annotate columns that are not among `features` but name a
            feature (of `itype`). Default: False with features, True without.
        otype: `"DataFrame"` or `"AnnData"`.
        minimal_set: every feature is a required column (default True).
        ordered_set: the features must come in this order (default False).
        maximal_set: no other columns are allowed (default False).
        coerce: convert columns to their features' dtypes while validating (lossless for
            numbers); the converted data is what is stored.

    >>> cell_type = ln.Feature(name="cell_type", dtype=ln.ULabel).save()
    >>> schema = ln.Schema([cell_type], name="cells").save()
    >>> schema.itype, schema.n_members, [f.name for f in schema.members]
    ('Feature', 1, ['cell_type'])
    >>> ln.Schema([cell_type]).save() == schema      # the same content: the stored schema
    True
    """

    _label = "Schema"
    # Stored fields are read through Record.__getattr__; declared for the type checker
    # (annotations only: no class attribute shadows the value).
    name: str | None
    description: str | None
    hash: str | None
    itype: str | None
    otype: str | None
    n_members: int | None
    minimal_set: bool
    ordered_set: bool
    maximal_set: bool
    coerce: bool | None
    flexible: bool | None
    is_type: bool

    def __init__(
        self,
        features: Any = None,
        *,
        slots: Mapping[str, Schema] | None = None,
        name: str | None = None,
        description: str | None = None,
        itype: Any = None,
        type: Schema | None = None,  # lamindb's name
        is_type: bool = False,
        flexible: bool | None = None,
        otype: str | None = None,
        minimal_set: bool = True,
        ordered_set: bool = False,
        maximal_set: bool = False,
        coerce: bool | None = None,
        **kwargs: Any,
    ) -> None:
        for key in sorted(kwargs):
            if key in _UNSUPPORTED:
                raise NotSupported(f"Schema({key}=...): {_UNSUPPORTED[key]} is not supported")
        if kwargs:
            raise InvalidArgument(
                f"Schema() got unexpected keyword {', '.join(map(repr, sorted(kwargs)))}; "
                f"valid: {_VALID}"
            )
        # Every argument is checked before any query.
        self._validate("name", name)
        self._validate("description", description)
        if otype is not None and otype not in OTYPES:
            raise ValidationError(
                f"Schema(otype={otype!r}): lineage validates {' and '.join(OTYPES)} objects"
            )
        members = _features(features)
        components = _slots(slots, otype)
        itype_str = itype_text(itype)
        minimal_set = bool(_bool("minimal_set", minimal_set))
        ordered_set = bool(_bool("ordered_set", ordered_set))
        maximal_set = bool(_bool("maximal_set", maximal_set))
        is_type = bool(_bool("is_type", is_type))
        flexible = _bool("flexible", flexible, optional=True)
        coerce = _bool("coerce", coerce, optional=True)
        if type is not None:
            if not isinstance(type, Schema):
                raise InvalidType(f"Schema(type=...) takes a Schema, not {builtins_name(type)}")
            require_saved(type, "Schema(type=...)")
            if not type.is_type:
                raise ValidationError(
                    f"Schema(type=...): schema {type.name or type.uid!r} is not a schema type "
                    "(is_type=True); make one with ln.Schema(name=..., is_type=True)"
                )
        if not members and not components and not is_type and itype_str is None:
            raise InvalidArgument(
                "Schema() needs features=, slots= or itype= (or is_type=True for a schema type)"
            )
        if members and itype_str is None:
            itype_str = "Feature"
        if flexible is None:
            flexible = not members
        values = {
            "minimal_set": minimal_set,
            "ordered_set": ordered_set,
            "maximal_set": maximal_set,
            "itype": itype_str,
            "flexible": flexible,
            "coerce": coerce or None,  # lamindb stores only True
            "n_members": len(members) or None,
        }
        digest = None
        if not is_type:
            digest = schema_hash(
                itype=itype_str,
                minimal_set=minimal_set,
                ordered_set=ordered_set,
                maximal_set=maximal_set,
                flexible=flexible,
                coerce=coerce,
                feature_uids=[f.uid for f in members],
                slot_hashes={slot: s.hash or "" for slot, s in components.items()},
            )
        super().__init__()
        object.__setattr__(self, "_members", members)
        object.__setattr__(self, "_components", components)
        stored = self._stored(digest) if digest is not None else None
        if stored is not None:
            logger.warning("returning schema with same hash: %s (name=%r)", stored.uid, stored.name)
            self._load(stored._values)
            object.__setattr__(self, "_members", None)
            object.__setattr__(self, "_components", None)
            for field, value in (("name", name), ("description", description)):
                if value is not None and value != self._values.get(field):
                    logger.warning(
                        "updated %s from %r to %r", field, self._values.get(field), value
                    )
                    setattr(self, field, value)
            if type is not None:
                self.type = type
            return
        self._values.update(values, hash=digest, otype=otype, is_type=is_type)
        self._values.update(uid=gids.base62(gm.uid_length(self._label)))
        self.name = name
        self.description = description
        if type is not None:
            self.type = type

    @classmethod
    def from_dataframe(cls, df: Any, name: str | None = None) -> Schema | None:
        """An unsaved schema of the columns of `df` that name a feature, in column order
        (lamindb's `Schema.from_dataframe`); None, with a warning, if no column does.

        >>> ln.Feature(name="gene", dtype=str).save()
        Feature(uid='...', ..., name='gene', dtype='str', is_type=False)
        >>> schema = ln.Schema.from_dataframe(df, name="genes")
        >>> [f.name for f in schema.members], schema.otype
        (['gene'], 'DataFrame')
        """
        if not isinstance(df, pd.DataFrame):
            raise InvalidType(f"Schema.from_dataframe() takes a DataFrame, not {builtins_name(df)}")
        names = [c for c in df.columns if isinstance(c, str) and gf.encodable(c)]
        found = {f.name: f for f in Feature.filter(name__in=names, is_type=False)} if names else {}
        features = [found[c] for c in names if c in found]
        if not features:
            logger.warning("no validated features, skip creating schema")
            return None
        return cls(features=features, name=name, otype="DataFrame")

    @classmethod
    def _stored(cls, digest: str) -> Schema | None:
        """The stored schema with this hash, outside the trash (lamindb's look-up)."""
        return cls.filter(hash=digest, branch__in=[1, 0]).order_by("id").first()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIXED:
            raise InvalidArgument(
                f"Schema.{name} is fixed once a schema exists (it decides what the schema "
                "validates, and its hash); make a new schema with ln.Schema(...)"
            )
        super().__setattr__(name, value)

    # -- members ---------------------------------------------------------------------------------
    @property
    def members(self) -> QuerySet[Feature] | list[Feature]:
        """The features, in the schema's order: a QuerySet once saved, a list before.

        >>> schema = ln.Schema([ln.Feature(name="n_genes", dtype=int).save()]).save()
        >>> [(f.name, f.dtype) for f in schema.members]
        [('n_genes', 'int')]
        """
        if not self._saved:
            return list(self._members or [])
        anchor = gq.Anchor(self._label, self.uid, "features", edge_order="position")
        return QuerySet(Feature, gq.Select("Feature", anchor=anchor, branch=None), self._instance)

    @property
    def features(self) -> QuerySet[Feature] | list[Feature]:
        """The features (as `members`); they are fixed once the schema is saved."""
        return self.members

    @property
    def slots(self) -> dict[str, Schema]:
        """The component schema of each slot of a composite schema (`{}` for others).

        >>> obs = ln.Schema([ln.Feature(name="donor", dtype=str).save()]).save()
        >>> adata_schema = ln.Schema(otype="AnnData", slots={"obs": obs}).save()
        >>> adata_schema.slots == {"obs": obs}
        True
        """
        if not self._saved:
            return dict(self._components or {})
        anchor = gq.Anchor(self._label, self.uid, "components", edge_order="slot")
        select = gq.Select(self._label, anchor=anchor, branch=None)
        qs = QuerySet(Schema, select, self._instance)
        edges = gq.edge_properties(self._inst().connection, anchor)
        return {edges[s.uid]["slot"]: s for s in qs}

    @property
    def components(self) -> QuerySet[Schema]:
        """The component schemas (lamindb's name); `slots` says which slot each one is."""
        if not self._saved:
            raise InvalidArgument("Schema.components is only known once the schema is saved")
        anchor = gq.Anchor(self._label, self.uid, "components", edge_order="slot")
        return QuerySet(Schema, gq.Select(self._label, anchor=anchor), self._instance)

    # -- writing ---------------------------------------------------------------------------------
    def save(self) -> Self:
        """Write the schema, its feature and slot edges in one transaction; a schema with the
        same hash stored meanwhile is returned instead (nothing is written)."""
        if self._saved:
            return super().save()
        self._default_edges()
        record = self._new_record()
        members = list(self._members or [])
        components = dict(self._components or {})
        for feature in members:
            require_saved(feature, "Schema features")
        record.edges.append(
            gr.EdgeSpec(
                "features", [f.uid for f in members], [{"position": i} for i in range(len(members))]
            )
        )
        record.edges.append(
            gr.EdgeSpec(
                "components",
                [s.uid for s in components.values()],
                [{"slot": slot} for slot in components],
            )
        )
        try:
            row = gr.create_record(
                self._inst().connection, self._label, record, unique_hash=self.hash is not None
            )
        except DuplicateContent as dup:
            row = only_row(dup)
            logger.warning("returning schema with same hash: %s (saved meanwhile)", row["uid"])
            self._load(row)
            self._to_one.clear()
            return self
        self._load(row)
        object.__setattr__(self, "_members", None)
        object.__setattr__(self, "_components", None)
        return self

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        """A schema that artifacts were validated against, that is a slot of a composite
        schema, or a type with schemas, is not deleted for good: they would lose it."""
        if not permanent:
            return []

        def refuse(what: str) -> Any:
            def raise_(count: int) -> None:
                raise InvalidArgument(
                    f"schema {self.name or self.uid!r} ({self.uid}) is used by {count} {what}; "
                    "delete those first, or move the schema to the trash (delete())"
                )

            return raise_

        return [
            gr.Guard("validated_artifacts", refuse("artifact(s) validated against it")),
            gr.Guard("composites", refuse("composite schema(s) as a slot")),
            gr.Guard("schemas", refuse("schema(s) of this type")),
        ]
