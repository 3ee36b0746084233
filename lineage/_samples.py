"""Which samples: the rows of each artifact version a run's training data held. Public as
`ln.lineage.samples` (what a run, or the run behind an output, saw) and `ln.lineage.used_by`
(which runs, and what they made, saw given cells).

When a tracked run reads AnnData artifacts (`.h5ad` files, `.zarr` stores) through `mapped()`
(after `obs_filter`) or `load()` (every row), the rows are noted in memory: a mapped dataset knows its rows per file once it is
built, so nothing is added to reading batches. `ln.finish()` writes them, in the transaction
that completes the run, as properties of the run's `USED` edge to each artifact version: `rows`
(a bitmap or row ranges, whichever is smaller: `loaders.rowsets`), `n_rows` (the file's rows) and `n_used` (how many the
run saw). A collection read this way also gets `USED` edges to the member versions it saw rows
of. Without a tracked run nothing is noted or written.

>>> run = ln.track("train.py")
>>> dataset = collection.mapped(obs_filter={"cell_type": ("T", "B")})
>>> model = ln.Artifact(df, key="models/model.parquet").save()
>>> _ = ln.finish()
>>> seen = ln.lineage.samples(model)                  # the run behind the model
>>> [(a.key, a.rows.tolist(), a.obs_names) for a in seen]
[('scrna/sample1.h5ad', [0], ['s1_cell0']), ('scrna/sample2.h5ad', [0, 1], ['s2_cell1', 's2_cell4'])]
>>> users = ln.lineage.used_by(artifact1, obs=["s1_cell0"])
>>> [(r.run == run.uid, r.obs, [o.key for o in r.outputs]) for r in users]
[(True, ['s1_cell0'], ['models/model.parquet'])]

Obs names come from each file's obs index (read alone, never `X`; the last few indexes read are
kept in memory by artifact uid and hash, so asking again reads nothing).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from graph import questions as gqs
from graph import records as gr
from lineage._instance import current
from lineage._model import Model
from lineage._questions import Ref, _check_record, _check_stored, _jsonable, _limited
from lineage._settings import settings
from lineage.errors import DataError, DoesNotExist, InvalidArgument, InvalidType, MissingFile
from loaders.metadata import obs_names as read_obs_names
from loaders.rowsets import BITMAP, decode_rows, encode_rows, probe, rows_in

__all__ = [
    "ArtifactRows",
    "RunSaw",
    "Samples",
    "UsedBy",
    "drop_rows",
    "note_rows",
    "pending_rows",
    "samples",
    "used_by",
]


# -- noting rows while a run reads ----------------------------------------------------------------
# run uid -> artifact uid -> (a boolean mask of the file's rows seen so far, the file's rows)
_pending: dict[str, dict[str, tuple[np.ndarray, int]]] = {}


def note_rows(
    run: str, artifacts: Sequence[str], file_rows: Sequence[tuple[np.ndarray, int]]
) -> None:
    """Note that the run with uid `run` saw, of each artifact uid, the file rows given
    (`(rows, rows in the file)`, as `MappedCollection.file_rows()` returns them); reading the
    same artifact again adds its rows to those noted before."""
    noted = _pending.setdefault(run, {})
    for uid, (rows, n_rows) in zip(artifacts, file_rows, strict=True):
        mask, known = noted.get(uid, (None, n_rows))
        if mask is None or known != n_rows:
            mask = np.zeros(n_rows, dtype=bool)
        mask[rows] = True
        noted[uid] = (mask, n_rows)


def pending_rows(run: str) -> list[gr.RowsUsed]:
    """What `run` saw, as the `USED` edge properties `ln.finish()` writes."""
    return [
        gr.RowsUsed(uid, encode_rows(np.flatnonzero(mask), n_rows), n_rows, int(mask.sum()))
        for uid, (mask, n_rows) in _pending.get(run, {}).items()
        if mask.any()
    ]


def drop_rows(run: str | None = None) -> None:
    """Forget what `run` (None: every run) saw: written, or never to be."""
    if run is None:
        _pending.clear()
    else:
        _pending.pop(run, None)


# -- obs names ------------------------------------------------------------------------------------
_INDEXES: OrderedDict[tuple[str, str | None], pd.Index] = OrderedDict()
_KEPT = 8  # obs indexes kept: a 1M-row index is ~70 MB of Python strings


def _obs_index(uid: str, file_hash: str | None, path: str | None, what: str) -> pd.Index:
    key = (uid, file_hash)
    index = _INDEXES.get(key)
    if index is not None:
        _INDEXES.move_to_end(key)
        return index
    if not path:
        raise MissingFile(f"{what}: artifact {uid} has no stored file to read obs names from")
    try:
        index = read_obs_names(path, settings.storage_options)
    except FileNotFoundError:
        raise MissingFile(
            f"{what}: the file of artifact {uid} ({path}) is not there, so its obs names "
            "cannot be read"
        ) from None
    except ValueError as exc:
        raise DataError(f"{what}: {exc}") from None
    _INDEXES[key] = index
    while len(_INDEXES) > _KEPT:
        _INDEXES.popitem(last=False)
    return index


# -- samples --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactRows:
    """The rows of one artifact version a run saw: their indices in the file (sorted), their
    obs names, and how many rows the file has."""

    uid: str
    key: str | None
    version: str | None
    n_rows: int
    rows: np.ndarray
    obs_names: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        return f"{Ref('Artifact', self.uid, self.key, self.version)}: {len(self)} of {self.n_rows} rows"


@dataclass(frozen=True, repr=False)
class Samples:
    """What a run saw, per artifact version (`artifacts`, by key). `len()` is the rows in all."""

    run: str
    artifacts: list[ArtifactRows]

    def __len__(self) -> int:
        return sum(len(a) for a in self.artifacts)

    def __iter__(self) -> Iterator[ArtifactRows]:
        return iter(self.artifacts)

    def df(self) -> pd.DataFrame:
        """One row per sample: artifact uid, key, version, row index and obs name."""
        columns = ["artifact", "key", "version", "row", "obs_name"]
        parts = [
            pd.DataFrame(
                {
                    "artifact": a.uid,
                    "key": a.key,
                    "version": a.version,
                    "row": a.rows,
                    "obs_name": a.obs_names,
                },
                columns=columns,
            )
            for a in self.artifacts
        ]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (what `lineage samples --json` prints)."""
        return {
            "run": self.run,
            "artifacts": [
                {
                    "uid": a.uid, "key": a.key, "version": a.version, "n_rows": a.n_rows,
                    "rows": a.rows.tolist(), "obs_names": list(a.obs_names),
                }
                for a in self.artifacts
            ],
        }  # fmt: skip

    def __repr__(self) -> str:
        head = f"Samples(run {self.run}: {len(self)} rows of {len(self.artifacts)} artifacts)"
        return "\n".join([head, *_limited([str(a) for a in self.artifacts], "  ")])

    __str__ = __repr__


def _run_of(record: Model, what: str) -> Model:
    """The run itself, or the run an artifact or collection was made by."""
    if record._label == "Run":
        return record
    if record._label == "Transform":
        raise InvalidType(
            f"{what} takes a Run or an artifact or collection a run made, not a Transform; "
            "pass one of its runs (transform.runs)"
        )
    run = record.run
    if run is None:
        raise InvalidArgument(
            f"{what}: {type(record).__name__} {record.uid} was made by no run, so no samples "
            "were recorded for it"
        )
    return run


def samples(record: Model) -> Samples:
    """The rows of each artifact version a run saw through `mapped()` (after `obs_filter`) or
    `load()`: their indices in each file and their obs names (read from the file's obs index,
    never `X`). `record` is the run, or an artifact or collection it made (a model). Nothing is
    written.

    >>> run = ln.track("train.py")
    >>> dataset = collection.mapped(obs_filter={"batch": "x"})
    >>> _ = ln.finish()
    >>> [(a.key, a.rows.tolist(), a.obs_names) for a in ln.lineage.samples(run)]
    [('scrna/sample1.h5ad', [0], ['s1_cell0']), ('scrna/sample2.h5ad', [0], ['s2_cell1'])]
    """
    record = _check_record(record, "samples()")
    _check_stored([record], "samples()")
    run = _run_of(record, "samples()")
    found = []
    for row in gqs.run_rows(current().connection, run.uid):
        rows = decode_rows(bytes(row["rows"]), row["n_rows"])
        index = _obs_index(row["uid"], row["hash"], row["path"], "samples()")
        if len(index) != row["n_rows"]:
            raise DataError(
                f"samples(): the file of artifact {row['uid']} has {len(index)} rows, but the run "
                f"recorded {row['n_rows']}: the file was changed in place"
            )
        names = index[rows].tolist()
        found.append(
            ArtifactRows(row["uid"], row["key"], row["version"], row["n_rows"], rows, names)
        )
    return Samples(run.uid, found)


# -- used_by --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSaw:
    """A run that saw some of the asked rows: which (`obs`, in the order asked), in which
    artifact versions, its transform, and what it made (`outputs`: a model, say)."""

    run: str
    name: str | None
    status: str | None
    transform: str | None
    obs: list[str]
    artifacts: list[str]
    outputs: list[Ref]

    def __str__(self) -> str:
        made = f" ({self.transform!r})" if self.transform else ""
        outputs = ", ".join(str(o) for o in self.outputs) or "nothing"
        return f"run {self.run}{made} saw {len(self.obs)} of them; made {outputs}"


@dataclass(frozen=True, repr=False)
class UsedBy:
    """The runs that saw any of the asked obs names (`obs`) of `source` (an artifact version,
    or a collection's members), in the order they started."""

    source: Ref
    obs: list[str]
    runs: list[RunSaw]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[RunSaw]:
        return iter(self.runs)

    def __contains__(self, record: object) -> bool:
        uid = getattr(record, "uid", None)
        return any(r.run == uid or any(o.uid == uid for o in r.outputs) for r in self.runs)

    @property
    def outputs(self) -> list[Ref]:
        """What the runs made, once each."""
        return list({(o.label, o.uid): o for r in self.runs for o in r.outputs}.values())

    def df(self) -> pd.DataFrame:
        """One row per run: uid, name, status, transform, how many of the obs it saw, outputs."""
        return pd.DataFrame(
            [
                {"run": r.run, "name": r.name, "status": r.status, "transform": r.transform,
                 "n_obs": len(r.obs), "outputs": [o.uid for o in r.outputs]}
                for r in self.runs
            ],
            columns=["run", "name", "status", "transform", "n_obs", "outputs"],
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return _jsonable({"source": self.source, "obs": self.obs, "runs": self.runs})

    def __repr__(self) -> str:
        head = f"UsedBy({self.source}; {len(self.obs)} obs): {len(self.runs)} runs"
        return "\n".join([head, *_limited([str(r) for r in self.runs], "  ")])

    __str__ = __repr__


def _obs_list(obs: Any) -> list[str]:
    if isinstance(obs, str):
        return [obs]
    if not isinstance(obs, Iterable) or isinstance(obs, bytes):
        raise InvalidType(
            f"used_by(obs=...) takes obs names (str or a list), not {type(obs).__name__}"
        )
    names = list(obs)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise InvalidType(f"used_by(obs=...) takes obs names (str), not {type(bad[0]).__name__}")
    if not names:
        raise InvalidArgument("used_by(obs=...) needs at least one obs name")
    return list(dict.fromkeys(names))


def used_by(record: Model, obs: str | Iterable[str]) -> UsedBy:
    """The runs that saw any of the rows named `obs` (obs names) of an artifact version, or of
    a collection's member versions, through `mapped()` or `load()`, with what each run made.
    Exactly that version: a run that read another version of the file is not listed. Runs and
    outputs in the trash are left out. An obs name no file has is an error. Nothing is written.

    >>> run = ln.track("train.py")
    >>> dataset = artifact1.load()                       # every row
    >>> model = ln.Artifact(df, key="models/model.parquet").save()
    >>> _ = ln.finish()
    >>> found = ln.lineage.used_by(artifact1, obs=["s1_cell3"])
    >>> run in found, model in found, [o.key for o in found.outputs]
    (True, True, ['models/model.parquet'])
    """
    if not isinstance(record, Model) or record._label not in ("Artifact", "Collection"):
        raise InvalidArgument(
            f"used_by() takes an Artifact or a Collection, not {type(record).__name__}"
        )
    record = _check_record(record, "used_by()")
    names = _obs_list(obs)
    _check_stored([record], "used_by()")
    conn = current().connection
    versions = gqs.versions_of(conn, record.uid)
    asked = pd.Index(names, dtype=object)
    # artifact uid -> (row indices in the file, the position in `names` of each)
    wanted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    found = np.zeros(len(names), dtype=bool)
    for version in versions:
        if (version["suffix"] or "").lower() not in (".h5ad", ".zarr"):
            continue
        index = _obs_index(version["uid"], version["hash"], version["path"], "used_by()")
        if index.is_unique:
            rows = index.get_indexer(asked)
            which = np.flatnonzero(rows >= 0)
            rows = rows[which]
        else:  # a name on several rows: each of them
            rows = np.flatnonzero(index.isin(asked))
            which = asked.get_indexer(index[rows])
        if len(rows):
            wanted[version["uid"]] = (rows.astype(np.int64), which)
            found[which] = True
    if not found.all():
        unknown = [names[i] for i in np.flatnonzero(~found)]
        shown = ", ".join(map(repr, unknown[:5])) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise DoesNotExist(
            f"used_by(): {type(record).__name__} {record.uid} has no obs named {shown}; "
            "obs names are the files' obs index (adata.obs_names)"
        )
    asks = []
    for uid, (rows, _) in wanted.items():
        at, bit = probe(rows)
        asks.append({"uid": uid, "at": at.tolist(), "bit": bit.tolist()})
    runs: dict[str, dict[str, Any]] = {}
    for row in gqs.rows_used(conn, asks, BITMAP):
        which_seen: set[int] = set()
        artifacts = []
        for uid, hits, packed, n_rows in row["seen"]:
            rows, which = wanted[uid]
            if hits is not None:  # a bitmap, tested in the query
                hit = which[np.asarray(hits, dtype=np.int64)]
            else:
                hit = which[rows_in(bytes(packed), n_rows, rows)]
            if hit.size:
                which_seen.update(hit.tolist())
                artifacts.append(uid)
        if artifacts:
            runs[row["run"]] = {"row": row, "which": which_seen, "artifacts": artifacts}
    return UsedBy(
        source=Ref(
            record._label, record.uid, record._values.get("key"), record._values.get("version")
        ),
        obs=names,
        runs=[
            RunSaw(
                run=uid,
                name=e["row"]["name"],
                status=e["row"]["status"],
                transform=e["row"]["transform"],
                obs=[names[i] for i in sorted(e["which"])],
                artifacts=e["artifacts"],
                outputs=[Ref(*o) for o in e["row"]["outputs"]],
            )
            for uid, e in runs.items()
        ],
    )
