"""OpenLineage events out: `ln.track()`, `ln.finish()` and a tracked run that fails send START,
COMPLETE and FAIL events through the official `openlineage-python` client, when one is configured
(`OPENLINEAGE_URL`, `OPENLINEAGE_CONFIG`, an `openlineage.yml` where the client looks, or
`OPENLINEAGE__TRANSPORT__...` variables; `OPENLINEAGE_DISABLED=true` turns it off).

Sending never blocks or fails the run: events go into a bounded queue that one background
thread empties through the client; a full queue drops the event, a backend that is down or
refuses an event costs a warning (once per minute at most), and at exit the queue gets at most
`FLUSH_SECONDS` to drain. `openlineage-python` is an optional extra
(`pip install 'lineagegraph[openlineage]'`), imported only when events are to be sent; without
it a configured backend gets one warning and no events.

>>> configured({"OPENLINEAGE_URL": "http://localhost:5000"}), configured({})
(True, False)
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger("lineage")

PRODUCER = "https://github.com/lineagegraph/lineagegraph"  # the `producer` of every event
# The namespace of jobs (and datasets without a location) that did not come from events: the
# one the Marquez API shows them in, and OpenLineage clients' default.
DEFAULT_NAMESPACE = "default"
QUEUE_SIZE = 1000  # events waiting to be sent; more are dropped with a warning
FLUSH_SECONDS = 5.0  # how long exit waits for events still queued
WARN_EVERY = 60.0  # seconds between two warnings about a failing backend


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an OpenLineage backend is configured, the way the client looks for one."""
    env = os.environ if environ is None else environ
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    config = env.get("OPENLINEAGE_CONFIG")
    if config:
        return Path(config).is_file()
    if environ is not None:  # a given mapping: only what it says
        return False
    return (Path.cwd() / "openlineage.yml").is_file() or (
        Path.home() / ".openlineage" / "openlineage.yml"
    ).is_file()


class Emitter:
    """The queue and the thread that sends its events through `openlineage-python`."""

    def __init__(self) -> None:
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._last_warning = 0.0
        self._client: Any = None
        self._thread = threading.Thread(target=self._work, name="lineage-openlineage", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            self._warn(f"OpenLineage: {QUEUE_SIZE} events are waiting to be sent; dropped one")

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every queued event was sent (or failed), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """At exit: give the queue `FLUSH_SECONDS`, then say what was not sent."""
        if not self.flush():
            logger.warning(
                "OpenLineage: %d event(s) not sent within %.0f s (is the backend up?); dropped",
                self.queue.unfinished_tasks,
                FLUSH_SECONDS,
            )

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY or not self._last_warning:
            self._last_warning = now
            logger.warning(message)

    def _work(self) -> None:
        while True:
            event = self.queue.get()
            try:
                self._send(event)
                self.sent += 1
            except Exception as exc:  # the run must never see the backend's errors
                self.failed += 1
                self._warn(f"OpenLineage: could not send a {event['eventType']} event: {exc}")
            finally:
                self.queue.task_done()

    def _send(self, event: dict[str, Any]) -> None:
        from openlineage.client import OpenLineageClient
        from openlineage.client.event_v2 import (
            InputDataset,
            Job,
            OutputDataset,
            Run,
            RunEvent,
            RunState,
        )
        from openlineage.client.facet_v2 import (
            dataset_version_dataset,
            error_message_run,
            job_type_job,
            source_code_job,
        )

        if self._client is None:
            self._client = OpenLineageClient()
        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="LINEAGEGRAPH", jobType=event["job_type"]
            )
        }
        if event["source_code"]:
            job_facets["sourceCode"] = source_code_job.SourceCodeJobFacet(
                language="python", sourceCode=event["source_code"]
            )
        run_facets: dict[str, Any] = {}
        if event["error"]:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=event["error"]["message"],
                programmingLanguage="python",
                stackTrace=event["error"]["stack_trace"],
            )

        def facets(ds: dict[str, Any]) -> dict[str, Any]:
            return {"version": dataset_version_dataset.DatasetVersionDatasetFacet(ds["uid"])}

        self._client.emit(
            RunEvent(
                eventType=getattr(RunState, event["eventType"]),
                eventTime=event["eventTime"],
                run=Run(runId=event["runId"], facets=run_facets),
                job=Job(namespace=event["namespace"], name=event["job"], facets=job_facets),
                producer=PRODUCER,
                inputs=[
                    InputDataset(d["namespace"], d["name"], facets=facets(d))
                    for d in event["inputs"]
                ],
                outputs=[
                    OutputDataset(d["namespace"], d["name"], facets=facets(d))
                    for d in event["outputs"]
                ],
            )
        )


_lock = threading.Lock()
_state: dict[str, Any] = {"emitter": None, "missing": False}  # the process's emitter


def emitter() -> Emitter | None:
    """The process's emitter, started on first use; None when no backend is configured or the
    client is not installed (said once)."""
    if not configured():
        return None
    with _lock:
        if _state["emitter"] is not None:
            return _state["emitter"]
        if _state["missing"]:
            return None
        try:
            import openlineage.client  # noqa: F401 - only to know it is there
        except ImportError:
            _state["missing"] = True
            logger.warning(
                "an OpenLineage backend is configured but openlineage-python is not installed: "
                "pip install 'lineagegraph[openlineage]'; no events are sent"
            )
            return None
        started = Emitter()
        atexit.register(started.close)
        _state["emitter"] = started
        return started


def run_event(
    event_type: str,
    run: dict[str, Any],
    error: BaseException | None = None,
) -> dict[str, Any]:
    """What one event of a tracked run says, as plain data (`run`: `graph.openlineage.RUN_FIELDS`
    with the transform's `source_code` and `kind`)."""
    job = run["job"]
    moment = run["finished_at"] if event_type != "START" and run["finished_at"] else None
    return {
        "eventType": event_type,
        "eventTime": moment or run["started_at"],
        "runId": run["run_id"],
        "namespace": job["namespace"],
        "job": job["name"],
        "job_type": "NOTEBOOK"
        if run["kind"] == "notebook"
        else "SCRIPT"
        if run["kind"] == "script"
        else "JOB",
        "source_code": run["source_code"],
        "inputs": [] if event_type == "START" else run["inputs"],
        "outputs": [] if event_type == "START" else run["outputs"],
        "error": None
        if error is None
        else {
            "message": f"{type(error).__name__}: {error}",
            "stack_trace": "".join(traceback.format_exception(error)),
        },
    }
