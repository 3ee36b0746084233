"""The Django model methods lamindb's records expose (collection-api.txt), on graph records.

lamindb records are Django models, so its reference lists `clean_fields`, `validate_unique`,
`serializable_value`, the async variants and friends. Scripts that call them keep working: each
does here what it does in Django, against the graph.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from graph import query as gq
from graph.schema import expected_schema
from lineage._model import Model, require_saved
from lineage.errors import NotSupported, ValidationError


class DjangoCompat(Model):
    """Django's model API on `Record` (its base), answered from the graph."""

    if TYPE_CHECKING:  # what the mixin uses of Record, which subclasses it

        @classmethod
        def _queryset(cls, instance: Any = None) -> Any: ...
        def _refresh(self) -> None: ...
        def save(self) -> Any: ...
        def delete(self, permanent: bool | None = None) -> None: ...

    # -- validation --------------------------------------------------------------------------
    def clean_fields(self, exclude: list[str] | None = None) -> None:
        """Check every field's value against its type; `ValidationError` listing the bad ones.

        >>> label.clean_fields()
        """
        errors = {}
        for name in self._fields():
            if exclude and name in exclude:
                continue
            try:
                self._validate(name, self._values.get(name))
            except ValidationError as exc:
                errors[name] = str(exc)
        if errors:
            raise ValidationError(f"invalid fields: {errors}")

    def clean(self) -> None:
        """Model-wide validation hook (Django's); records here need none beyond their fields."""

    def validate_unique(self, exclude: list[str] | None = None) -> None:
        """Check that no other record of this registry has this record's unique values.

        >>> ln.ULabel(name="x").validate_unique()           # nothing clashes
        >>> ln.User(handle=ln.settings.user).validate_unique()  # that handle is taken
        Traceback (most recent call last):
        lineage.errors.ValidationError: User with this handle already exists.
        """
        for name in self._unique_fields():
            value = self._values.get(name)
            if value is None or (exclude and name in exclude):
                continue
            clash = type(self)._queryset()._clone(where=gq.Q(**{name: value}), branch=None).first()
            if clash is not None and (not self._saved or clash.id != self.id):
                raise ValidationError(self.unique_error_message(type(self), (name,)))

    def validate_constraints(self, exclude: list[str] | None = None) -> None:
        """The graph's constraints are uniqueness constraints: same as `validate_unique`."""
        self.validate_unique(exclude=exclude)

    @classmethod
    def _unique_fields(cls) -> list[str]:
        return [
            i.prop for i in expected_schema() if i.kind == "constraint" and i.label == cls._label
        ]

    @classmethod
    def get_constraints(cls) -> list[tuple[type, list[str]]]:
        """The uniqueness constraints of this registry, as Django lists them: (model, fields)."""
        return [(cls, [name]) for name in cls._unique_fields()]

    def unique_error_message(self, model_class: type, unique_check: tuple[str, ...]) -> str:
        fields = ", ".join(unique_check)
        return f"{model_class.__name__} with this {fields} already exists."

    def date_error_message(self, lookup_type: str, field_name: str, unique_for: str) -> str:
        return f"{field_name} must be unique for {unique_for} {lookup_type}."

    # -- values ------------------------------------------------------------------------------
    def get_deferred_fields(self) -> set[str]:
        """Fields not loaded yet: none; a record is always read whole."""
        return set()

    def serializable_value(self, field_name: str) -> Any:
        """The value of a field; for a to-one relation, the uid of the record it points at."""
        if field_name in self._fields():
            return self._values.get(field_name)
        relation = self._relations().get(field_name)
        if relation is not None and not relation.many:
            target = getattr(self, field_name)
            return None if target is None else target.uid
        return getattr(self, field_name)

    def prepare_database_save(self, field: Any) -> str:
        """What a relation stores for this record: its uid (must be saved)."""
        require_saved(self, "prepare_database_save()")
        return self.uid

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: list[str] | None = None,
        from_queryset: Any = None,
    ) -> None:
        """Reload the record's fields from the graph (`fields` limits which).

        >>> same = ln.Artifact.get(artifact.uid)        # another copy of the record
        >>> same.description = "raw counts"; same = same.save()
        >>> artifact.description is None
        True
        >>> artifact.refresh_from_db()
        >>> artifact.description
        'raw counts'
        """
        if using is not None or from_queryset is not None:
            raise NotSupported("refresh_from_db(using=, from_queryset=) is not supported")
        if fields is None:
            self._refresh()
            return
        unknown = sorted(set(fields) - set(self._fields()))
        if unknown:
            raise ValidationError(f"{type(self).__name__} has no field {', '.join(unknown)}")
        saved = dict(self._values)
        self._refresh()
        merged = {k: v for k, v in saved.items() if k not in fields}
        self._values.update(merged)

    def save_base(
        self,
        raw: bool = False,
        force_insert: bool = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: list[str] | None = None,
    ) -> None:
        """Django's lower-level save: here the same single transaction as `save()`."""
        if force_insert and self._saved:
            raise ValidationError(f"{self!r} is already saved (force_insert=True)")
        if force_update and not self._saved:
            raise ValidationError(f"{self!r} is not saved yet (force_update=True)")
        self.save()

    # -- async variants (Django's), run in a worker thread ------------------------------------
    async def asave(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.save)

    async def adelete(self, using: str | None = None, keep_parents: bool = False) -> None:
        await asyncio.to_thread(self.delete)

    async def arefresh_from_db(
        self,
        using: str | None = None,
        fields: list[str] | None = None,
        from_queryset: Any = None,
    ) -> None:
        await asyncio.to_thread(self.refresh_from_db, using, fields, from_queryset)
