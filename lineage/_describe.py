"""`record.describe()`: a record's fields, provenance and members as a rich tree."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from lineage._model import Model

_SKIP = {"storage_path", "facets", "facet_times"}  # shown as `path` and under Facets instead
_MAX_MEMBERS = 20
_FACET_WIDTH = 100  # characters of a facet's JSON shown on its line


def _fmt(value: Any, print_types: bool, kind: str | None = None) -> str:
    text = (
        value.isoformat(sep=" ", timespec="seconds") if hasattr(value, "isoformat") else repr(value)
    )
    return f"{text} [dim]({kind})[/dim]" if print_types and kind else text


def build_tree(record: Model, print_types: bool = False) -> Tree:
    cls = type(record)
    title = record._values.get("key") or record._values.get("name") or record._values.get("uid")
    tree = Tree(f"[bold]{cls.__name__}[/bold]: {title}")
    general = tree.add("[bold]General[/bold]")
    fields = cls._fields()
    for name, kind in fields.items():
        value = record._values.get(name)
        if value is None or name in _SKIP:
            continue
        general.add(
            f"[blue]{name}[/blue]: {_fmt(value, print_types, kind.replace('Property', ''))}"
        )
    if record._values.get("storage_path"):
        general.add(f"[blue]path[/blue]: {record._values['storage_path']}")
    if not record._saved:
        general.add("[yellow](not saved)[/yellow]")
        return tree
    if record._values.get("facets"):  # OpenLineage facets: one line per facet, its JSON cut short
        node = tree.add("[bold]Facets[/bold]")
        for name, facet in sorted(json.loads(record._values["facets"]).items()):
            text = json.dumps(facet, sort_keys=True)
            cut = text if len(text) <= _FACET_WIDTH else text[: _FACET_WIDTH - 3] + "..."
            node.add(f"[blue]{name}[/blue]: {escape(cut)}")
    relations = cls._relations()
    provenance = tree.add("[bold]Provenance[/bold]")
    for name in ("created_by", "space", "storage", "run", "transform", "initiated_by",
                 "revises", "meta_artifact"):  # fmt: skip
        if name in relations:
            target = getattr(record, name)
            if target is not None:
                provenance.add(f"[blue]{name}[/blue]: {_record_label(target)}")
    run = getattr(record, "run", None) if "run" in relations else None
    if run is not None:
        transform = run.transform
        if transform is not None:
            provenance.add(f"[blue]transform[/blue]: {_record_label(transform)}")
    if cls._label == "Collection":
        members = record.ordered_artifacts.to_list()
        node = tree.add(f"[bold]Artifacts[/bold] ({len(members)})")
        for i, artifact in enumerate(members[:_MAX_MEMBERS]):
            node.add(f"{i}: {_record_label(artifact)}")
        if len(members) > _MAX_MEMBERS:
            node.add(f"... {len(members) - _MAX_MEMBERS} more")
    if cls._label == "Schema":
        members = record.members.to_list()
        if members:
            node = tree.add(f"[bold]Features[/bold] ({len(members)})")
            for feature in members[:_MAX_MEMBERS]:
                node.add(f"[blue]{feature.name}[/blue]: {feature.dtype}")
            if len(members) > _MAX_MEMBERS:
                node.add(f"... {len(members) - _MAX_MEMBERS} more")
        slots = record.slots
        if slots:
            node = tree.add(f"[bold]Slots[/bold] ({len(slots)})")
            for slot, component in slots.items():
                node.add(f"[blue]{slot}[/blue]: {_record_label(component)}")
    if "schema" in relations and getattr(record, "schema", None) is not None:
        tree.add(f"[bold]Schema[/bold]: {_record_label(record.schema)}")
    features = getattr(record, "features", None)
    lines = features._lines() if features is not None and hasattr(features, "_lines") else []
    if lines:
        node = tree.add("[bold]Features[/bold]")
        for line in lines:
            node.add(line)
    labels = [n for n in ("ulabels", "projects", "references", "input_of_runs", "collections",
                          "input_artifacts", "input_collections", "output_artifacts",
                          "output_collections", "runs") if n in relations]  # fmt: skip
    shown = [(n, getattr(record, n).to_list()) for n in labels]
    shown = [(n, rs) for n, rs in shown if rs]
    if shown:
        node = tree.add("[bold]Relations[/bold]")
        for name, records in shown:
            listed = ", ".join(_record_label(r) for r in records[:_MAX_MEMBERS])
            more = (
                f", ... {len(records) - _MAX_MEMBERS} more" if len(records) > _MAX_MEMBERS else ""
            )
            node.add(f"[blue]{name}[/blue]: {listed}{more}")
    return tree


def _record_label(record: Model) -> str:
    v = record._values
    label = v.get("key") or v.get("name") or v.get("handle") or v.get("root")
    return f"{label!r} ({v.get('uid')})" if label else str(v.get("uid"))


def describe(record: Model, print_types: bool = False) -> None:
    Console().print(build_tree(record, print_types))
