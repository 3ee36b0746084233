"""Transforms (what runs), runs (one execution), and `ln.track()` / `ln.finish()`.

Inside `ln.track()`, every artifact or collection saved gets `GENERATED_BY` the run, and every
record fetched with `is_run_input=True` (or cached, loaded, mapped) gets `(run)-[:USED]->`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph import features as gf
from graph import openlineage as gol
from graph import records as gr
from graph.models import TRANSFORM_KINDS
from lineage import _emit
from lineage._features import Features, param_values
from lineage._model import Model, register, require_saved
from lineage._record import Record
from lineage._samples import drop_rows, pending_rows
from lineage._versioned import VersionedRecord
from lineage._view import HasLineage
from lineage.errors import InvalidArgument, InvalidType, ValidationError
from loaders import hash_string

logger = logging.getLogger("lineage")


@register
class Transform(VersionedRecord, HasLineage):
    """A script, notebook, pipeline or function whose runs produce data.

    >>> transform = ln.Transform(key="train.py", kind="script").save()
    >>> run = ln.Run(transform).save()
    >>> transform.runs.count(), transform.latest_run == run, transform.name
    (1, True, 'train.py')
    """

    _label = "Transform"

    def __init__(
        self,
        key: str | None = None,
        description: str | None = None,
        kind: str = "pipeline",
        version: str | None = None,
        revises: Transform | None = None,
        source_code: str | None = None,
        **fields: Any,
    ) -> None:
        if kind not in TRANSFORM_KINDS:
            raise ValidationError(
                f"Transform kind {kind!r} is not one of {', '.join(TRANSFORM_KINDS)}"
            )
        self._check_revises(revises)  # before "needs a key"
        if revises is not None and key is None:
            key = revises.key
        if key is None:
            raise InvalidArgument("Transform() needs a key, e.g. Transform(key='preprocess.py')")
        super().__init__(
            key=key, description=description, kind=kind, version=version,
            source_code=source_code, **fields,
        )  # fmt: skip
        if source_code is not None:
            self._values["hash"] = hash_string(source_code)[:22]
        self._set_revises(revises)
        if revises is None:  # a new version gets its uid when saved, with the version counter
            self._start_family()

    # A transform's runs go with it when it is deleted for good (lamindb: Run.transform is
    # CASCADE), but not while any of them made data: their outputs would lose their run.
    _deleted_with = ("runs",)

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        if not permanent:
            return []

        def refuse(runs: int) -> None:
            raise InvalidArgument(
                f"transform {self.key!r} ({self.uid}) has {runs} run(s) that made artifacts or "
                "collections, which would lose their run; delete those outputs first (its runs "
                "are then deleted with it), or keep the transform in the trash"
            )

        return [gr.Guard("runs", refuse, having=("output_artifacts", "output_collections"))]

    @property
    def name(self) -> str | None:
        """The last part of the key."""
        return self.key.rsplit("/", 1)[-1] if self.key else None

    @property
    def latest_run(self) -> Run | None:
        """The most recently started run of this transform."""
        return self.runs.order_by("-started_at").first() if self._saved else None


@register
class Run(Record, HasLineage):
    """One execution of a transform, with its parameters and its inputs and outputs.

    >>> run = ln.Run(transform, params={"lr": 0.1}).save()
    >>> run.params, run.status
    ({'lr': 0.1}, 'started')
    >>> run.input_artifacts.add(artifact)                           # what it read
    >>> table = ln.Artifact(df2, key="tables/counts.parquet", run=run).save()   # what it wrote
    >>> [a.key for a in run.input_artifacts], [a.key for a in run.output_artifacts]
    (['raw/counts.csv'], ['tables/counts.parquet'])
    """

    _label = "Run"
    features = Features()  # run features: `run.features.add_values(...)`
    # Feature values the run is created with (`ln.track(params=...)`), in its transaction.
    _values_at_save: gf.Annotation | None = None

    def __init__(
        self,
        transform: Transform | None = None,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        started_at: datetime | None = None,
        initiated_by: Run | None = None,
        **fields: Any,
    ) -> None:
        if not isinstance(transform, Transform):
            raise InvalidType(
                f"Run(transform=...) takes a Transform as its first argument, not "
                f"{type(transform).__name__}"
            )
        if started_at is not None and not isinstance(started_at, datetime):
            raise ValidationError(
                f"Run.started_at takes a datetime, not {type(started_at).__name__} ({started_at!r})"
            )
        super().__init__(name=name, **fields)
        self.transform = transform
        if initiated_by is not None:
            self.initiated_by = initiated_by
        self.params = params
        self._values["started_at"] = started_at or datetime.now(UTC)
        self._values["status"] = "started"
        self._dirty.update({"started_at", "status"})

    def _new_record(self) -> gr.NewRecord:
        record = super()._new_record()
        record.annotation = self._values_at_save
        return record

    def _guards(self, permanent: bool) -> list[gr.Guard]:
        """A run that made data is kept while its outputs exist (lamindb: Artifact.run and
        Collection.run are PROTECT)."""
        if not permanent:
            return []

        def refuser(what: str) -> Callable[[int], None]:
            def refuse(count: int) -> None:
                raise InvalidArgument(
                    f"run {self.uid} made {count} {what}, which would lose their run; delete "
                    "those first, or keep the run in the trash"
                )

            return refuse

        return [
            gr.Guard("output_artifacts", refuser("artifact(s)")),
            gr.Guard("output_collections", refuser("collection(s)")),
        ]

    @property
    def params(self) -> dict[str, Any] | None:
        """The run's parameters (stored as JSON text: Neo4j properties hold no nested maps)."""
        raw = self._values.get("params")
        return None if raw is None else json.loads(raw)

    @params.setter
    def params(self, value: dict[str, Any] | None) -> None:
        if value is not None and not isinstance(value, dict):
            raise ValidationError(f"Run.params takes a dict, not {type(value).__name__}")
        try:
            self._values["params"] = None if value is None else json.dumps(value, sort_keys=True)
        except TypeError as exc:
            raise ValidationError(f"Run.params must be JSON-serialisable: {exc}") from None
        self._dirty.add("params")


class Context:
    """What `ln.track()` is tracking: `ln.context.run`, `ln.context.transform`."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.transform: Transform | None = None

    def __repr__(self) -> str:
        return f"Context(transform={self.transform!r}, run={self.run!r})"


context = Context()


def _caller_script() -> Path | None:
    """The script that called `ln.track()`, if it is a file (not a REPL or notebook cell)."""
    here = Path(__file__).resolve().parent
    for frame in inspect.stack()[2:]:
        path = Path(frame.filename)
        if here in path.resolve().parents:
            continue  # lineage's own frames
        # The first frame outside lineage is the caller. A REPL, notebook cell or doctest has no
        # file there: looking further up the stack found IPython's or doctest's own module.
        return path.resolve() if path.suffix == ".py" and path.is_file() else None
    return None


def track(transform: Transform | str | None = None, params: dict[str, Any] | None = None) -> Run:
    """Start a run; records saved until `ln.finish()` are `GENERATED_BY` it.

    `transform` is a Transform, a key (the latest Transform with that key, created if none), or
    None: the calling script, versioned by the hash of its source (an edited script becomes a new
    version of its Transform).

    >>> run = ln.track("preprocess.py", params={"learning_rate": 0.01})
    >>> results = ln.Artifact(df, key="results.parquet").save()   # GENERATED_BY run
    >>> results.run == run, run.transform.key
    (True, 'preprocess.py')
    >>> ln.finish()
    Run(uid='...', ..., params='{"learning_rate": 0.01}', status='completed')
    """
    if transform is None:
        script = _caller_script()
        if script is None:
            raise InvalidArgument(
                "ln.track() could not find the calling script; pass a key: ln.track('my-analysis')"
            )
        transform = _script_transform(script)
    elif isinstance(transform, str):
        found = Transform.filter(key=transform).order_by("-uid").first()
        transform = found or Transform(key=transform, kind="pipeline").save()
    elif isinstance(transform, Transform):
        if not transform._saved:
            transform.save()
    else:
        raise InvalidType(
            f"ln.track() takes a Transform, a key or None, not {type(transform).__name__}"
        )
    # lamindb keeps params as the run's JSON and features apart; here a param whose name is a
    # stored feature is also that run feature's value (docs/architecture.md, "Features"),
    # checked now and written with the run, in its transaction.
    values = param_values(transform._inst().connection, params)
    emitter = _emit.emitter()
    run = Run(transform, params=params)
    run._values_at_save = values
    if emitter is not None:  # a run sent as OpenLineage events has a runId: events coming back
        run.openlineage_run_id = str(uuid.uuid4())  # (to our own endpoint, say) find it
    run.save()
    drop_rows()  # rows noted for a run that was never finished are not written
    context.transform, context.run = transform, run
    _catch_failures()
    logger.info("tracking run %s of %s", run.uid, transform.key)
    _send("START", run)
    return run


def _send(event_type: str, run: Run, error: BaseException | None = None) -> None:
    """Queue an OpenLineage event for a tracked run, if a backend is configured (`_emit`)."""
    emitter = _emit.emitter()
    if emitter is None or run._values.get("openlineage_run_id") is None:
        return
    params = {"uid": run.uid, "default": _emit.DEFAULT_NAMESPACE}
    [row] = run._inst().connection.read(gol.EMIT_RUN, params)
    emitter.put(_emit.run_event(event_type, {**row["run"], **row}, error))


_hook: dict[str, Any] = {}


def _catch_failures() -> None:
    """Once per process: an exception that ends the program while a run is tracked marks the run
    `errored` (with `finished_at`, as lamindb does) and sends a FAIL event, then goes on to the
    previous `sys.excepthook`."""
    if _hook:
        return
    _hook["previous"] = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        run = context.run
        if run is not None:
            try:
                gr.finish_run(
                    run._inst().connection,
                    run.uid,
                    {"finished_at": datetime.now(UTC), "status": "errored"},
                )
                run._refresh()
                context.run = context.transform = None
                _send("FAIL", run, error)
            except Exception as exc:  # the original error is what the user sees
                logger.warning("could not mark run %s errored: %s", run.uid, exc)
        _hook["previous"](kind, error, tb)

    sys.excepthook = hook


def _script_transform(script: Path) -> Transform:
    source = script.read_text()
    source_hash = hash_string(source)[:22]
    key = script.name
    # branch=1: a filter by hash alone would also find a trashed transform (as in lamindb).
    same = Transform.filter(key=key, hash=source_hash, branch=1).order_by("-uid").first()
    if same is not None:
        return same
    latest = Transform.filter(key=key, is_latest=True).first()
    return Transform(
        key=key, kind="script", source_code=source, revises=latest,
        description=f"{script}" if os.environ.get("LINEAGE_RECORD_SCRIPT_PATH") else None,
    ).save()  # fmt: skip


def finish() -> Run:
    """Mark the tracked run completed (`finished_at`, status) and stop tracking. The rows the
    run saw through `mapped()` and `load()` (`ln.lineage.samples`) are written in the same
    transaction.

    >>> run = ln.track("preprocess.py")
    >>> ln.finish()
    Run(uid='...', ..., finished_at=datetime.datetime(...), status='completed')
    >>> ln.context.run is None
    True
    """
    run = context.run
    if run is None:
        raise InvalidArgument("ln.finish(): no run is being tracked; call ln.track() first")
    gr.finish_run(
        run._inst().connection,
        run.uid,
        {"finished_at": datetime.now(UTC), "status": "completed"},
        pending_rows(run.uid),
    )
    drop_rows(run.uid)
    run._refresh()
    context.run = None
    context.transform = None
    _send("COMPLETE", run)
    return run


def current_run(explicit: Run | None = None) -> Run | None:
    """The run a save is attributed to: the one passed, else the tracked one."""
    if explicit is not None:
        if not isinstance(explicit, Run):
            raise InvalidType(f"run= takes a Run, not {type(explicit).__name__}")
        require_saved(explicit, "run=")
        return explicit
    return context.run


def mark_input(records: list[Model], is_run_input: bool | Run | None) -> None:
    """Record `(run)-[:USED]->(record)` for data a run reads (never for its own outputs)."""
    if not is_run_input:
        return
    run = is_run_input if isinstance(is_run_input, Run) else context.run
    if run is None:
        logger.warning("is_run_input=True but no run is tracked: call ln.track() first")
        return
    inputs = run_inputs(run, records)
    if inputs is not None:  # one transaction; reading the same input twice adds no second edge
        gr.add_run_inputs(run._inst().connection, inputs)


def run_inputs(run: Run, records: Sequence[Model]) -> gr.RunInputs | None:
    """The `USED` edges from `run` to data records (artifacts, collections), as
    `graph.records.RunInputs`: merged, never to the run's own outputs."""
    by_label: dict[str, list[str]] = {}
    for record in records:
        by_label.setdefault(record._label, []).append(record.uid)
    relation = {"Artifact": "input_artifacts", "Collection": "input_collections"}
    edges = [gr.EdgeSpec(relation[label], uids) for label, uids in by_label.items()]
    return gr.RunInputs(run.uid, edges) if edges else None
