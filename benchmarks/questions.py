"""Diff, impact and stale against lamindb 2.x: the same answers, from lamindb's API as a user would
write them, in the same run.

    python benchmarks/questions.py                 # 10,000-member collections; ~100k records
    python benchmarks/questions.py --quick         # 2,000 members; ~5k records
    python benchmarks/questions.py --skip-lamindb

Three questions, on data built identically in both systems:

1. diff of two collection versions of `--members` artifacts: the second drops 10 members at the
   front, appends 10, moves one, and has another meta artifact and description.
   lineage: `ln.lineage.diff(v1, v2)`; lamindb: both `ordered_artifacts.to_list()`, the members
   added and removed, the same longest-kept-order rule for moves, the meta artifacts and the
   fields compared in Python (lamindb has no diff).
2. impact of a record 50 runs deep: the provenance graph of `benchmarks/lineage.py` (`--lanes`
   lanes of `--steps` steps, ~100k records), with five users as creators; the focus is lane 0's
   main artifact `steps - 50`, whose downstream is 50 main runs deep. lineage:
   `ln.lineage.impact(artifact)`; lamindb: a breadth-first walk over `input_of_runs`,
   `output_artifacts`, `collections` and later versions, with each record's transform and
   creator (what the downstream of lamindb's `view_lineage` walks, grouped by run depth).
3. stale over the same graph, in which `--stale` of the side runs' raw inputs got a newer
   version after the run read them: exactly that many stale records. lineage:
   `ln.lineage.stale()`; lamindb: every superseded (or trashed) version that a run read, its
   family's latest version, and the runs' latest outputs, through the API.

Both sides are built in bulk (ours: `write_graph` of `benchmarks/lineage.py` plus the record API
for the collections; lamindb: Django `bulk_create`), then timed: p50 of `--repeats` calls after
warm-up calls; the answers are compared. lamindb runs in its own venv (`_lamindb_env.py`) on a
fresh SQLite instance; lineage on `NEO4J_URI` if set, else a local server in a temporary lineage
home.

Prints a table and, last, one JSON line with every figure. Goals: diff <= 50 ms p50 and >= 10x
lamindb; impact <= 20 ms p50; stale <= 1 s and >= 10x lamindb.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from bisect import bisect_left
from datetime import UTC
from pathlib import Path

# Standard library only above this line: `--worker lamindb` runs this file with the lamindb
# venv's interpreter, where neither `graph` nor `lineage` can be imported.

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
USERS = ("ada", "ben", "cai", "dee", "eli")
GOAL_DIFF_MS, GOAL_DIFF_X = 50.0, 10.0
GOAL_IMPACT_MS = 20.0
GOAL_STALE_S, GOAL_STALE_X = 1.0, 10.0
IMPACT_DEPTH = 50  # runs downstream of the focus


def _say(tag: str, message: str) -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _times(call, warmup: int, repeats: int) -> tuple[list[float], object]:
    result = None
    for _ in range(warmup):
        result = call()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = call()
        out.append(time.perf_counter() - t0)
    return out, result


def moves(old: list[str], new: list[str]) -> list[tuple[int, int]]:
    """The members kept in both orders but not in a longest run of them in the same order: the
    rule `ln.lineage.diff` uses, written out for the lamindb side (which has no diff)."""
    where = {uid: j for j, uid in enumerate(new)}
    kept = [(i, where[uid]) for i, uid in enumerate(old) if uid in where]
    tails: list[int] = []
    ends: list[int] = []
    before = [-1] * len(kept)
    for n, (_, j) in enumerate(kept):
        k = bisect_left(tails, j)
        before[n] = ends[k - 1] if k else -1
        if k == len(tails):
            tails.append(j)
            ends.append(n)
        else:
            tails[k] = j
            ends[k] = n
    in_order = set()
    n = ends[-1] if ends else -1
    while n >= 0:
        in_order.add(n)
        n = before[n]
    return sorted((kept[n] for n in range(len(kept)) if n not in in_order), key=lambda p: p[1])


# -- the data (the same for both systems) ---------------------------------------------------------
def _lineage_bench():
    """benchmarks/lineage.py, loaded under another name (`lineage` is the package)."""
    spec = importlib.util.spec_from_file_location(
        "lineage_graph_bench", Path(__file__).resolve().parent / "lineage.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_plan(args: argparse.Namespace, namespace: str) -> dict:
    graph = _lineage_bench().make_graph(args.lanes, args.steps, args.seed, namespace)
    rng = random.Random(f"{args.seed}:questions:{namespace}")
    taken = {a[0][:16] for a in graph["artifacts"]} | {r[0] for r in graph["runs"]}

    def stem() -> str:
        while True:
            s = "".join(rng.choice(ALPHABET) for _ in range(16))
            if s not in taken:
                taken.add(s)
                return s

    # Creators: lane n's records by USERS[n % 5] (runs are named "main 3/17", keys "lane3/...").
    def lane_of_key(key: str) -> int:
        return int(key[len(namespace) :].split("/")[0][4:])

    creators = {a[0]: USERS[lane_of_key(a[1]) % len(USERS)] for a in graph["artifacts"]}
    creators.update({r[0]: USERS[int(r[2].split()[1].split("/")[0]) % len(USERS)]
                     for r in graph["runs"]})  # fmt: skip
    # Stale: the first --stale raw inputs (x) of side runs get a newer version.
    raw = [a for a in graph["artifacts"] if "/x" in a[1]][: args.stale]
    versions = [[a[0][:16] + "0001", a[1], a[0]] for a in raw]  # [new uid, key, old uid]
    for new_uid, _, old in versions:
        creators[new_uid] = creators[old]
    # The focus of impact: lane 0's main artifact `steps - 50` (a0 is the lane's start).
    focus_index = max(0, args.steps - IMPACT_DEPTH)
    focus_key = f"{namespace}lane0/a{focus_index}.txt"
    focus = next(a[0] for a in graph["artifacts"] if a[1] == focus_key)
    # Two collection versions: 10 dropped at the front, 10 appended, one moved.
    n = args.members
    members = [[stem() + "0000", f"{namespace}coll/{i}.txt"] for i in range(n + 10)]
    metas = [[stem() + "0000", f"{namespace}coll/meta{i}.parquet"] for i in (1, 2)]
    v1 = list(range(n))
    v2 = v1[10:] + list(range(n, n + 10))
    v2.insert(n // 2, v2.pop(100))
    coll = stem()
    return {
        "lanes": args.lanes,
        "steps": args.steps,
        "graph": graph,
        "users": list(USERS),
        "creators": creators,
        "versions": versions,
        "focus": focus,
        "members": members,
        "metas": metas,
        "v1": v1,
        "v2": v2,
        "collection": [coll + "0000", coll + "0001", f"{namespace}coll"],
        "repeats": args.repeats,
        "warmup": args.warmup,
        "lamindb_repeats": args.lamindb_repeats,
        "n_records": graph["n_nodes"] + len(versions),
    }


# -- lamindb (runs in the lamindb venv) -----------------------------------------------------------
def _worker_lamindb(plan_file: str) -> None:
    """`--worker lamindb PLAN`: build both data sets with bulk_create, time the API answers."""
    plan = json.loads(Path(plan_file).read_text())
    graph = plan["graph"]
    from datetime import datetime

    import lamindb as ln
    import lamindb_setup
    from django.db import models as djm
    from django.db import transaction

    lamindb_setup.settings.instance._is_on_hub = False
    ln.settings.verbosity = "error"

    def make(model, **fields):
        # Django's own constructor: lamindb's Artifact() reads and hashes a file.
        obj = model.__new__(model)
        djm.Model.__init__(obj, **fields)
        return obj

    fig: dict = {}
    t0 = time.perf_counter()
    storage = lamindb_setup.settings.storage.record
    when = datetime.now(UTC)
    with transaction.atomic():
        ln.User.objects.bulk_create(
            [
                make(ln.User, uid=f"bench{i:03d}", handle=h, name=h)
                for i, h in enumerate(plan["users"])
            ]
        )
        user_id = dict(ln.User.objects.values_list("handle", "id"))
        creator = {uid: user_id[h] for uid, h in plan["creators"].items()}
        transforms = [make(ln.Transform, uid=uid, key=f"{kind}.py", kind="pipeline")
                      for kind, uid in graph["transforms"].items()]  # fmt: skip
        ln.Transform.objects.bulk_create(transforms)
        transform_id = {t.key[:-3]: ln.Transform.objects.get(uid=t.uid).id for t in transforms}
        ln.Run.objects.bulk_create(
            [make(ln.Run, uid=uid, name=name, transform_id=transform_id[kind], started_at=when,
                  created_by_id=creator[uid]) for uid, kind, name in graph["runs"]],
            batch_size=5000,
        )  # fmt: skip
        run_id = dict(ln.Run.objects.values_list("uid", "id"))
        old_versions = {old for _, _, old in plan["versions"]}

        def artifact(uid, key, run=None, latest=True, **extra):
            return make(ln.Artifact, uid=uid, key=key, suffix=key[key.rfind("."):], size=1,
                        hash=uid[:22], _hash_type="md5", storage_id=storage.id,
                        run_id=run_id.get(run) if run else None, _key_is_virtual=True,
                        _overwrite_versions=False, is_latest=latest,
                        created_by_id=extra.get("creator") or creator.get(uid))  # fmt: skip

        arts = [
            artifact(uid, key, run, uid not in old_versions) for uid, key, run in graph["artifacts"]
        ]
        arts += [artifact(uid, key) for uid, key, _ in plan["versions"]]
        first_user = user_id[plan["users"][0]]
        arts += [
            artifact(uid, key, creator=first_user) for uid, key in plan["members"] + plan["metas"]
        ]
        ln.Artifact.objects.bulk_create(arts, batch_size=5000)
        art_id = dict(ln.Artifact.objects.values_list("uid", "id"))
        link = ln.Artifact.input_of_runs.through
        link.objects.bulk_create(
            [link(artifact_id=art_id[a], run_id=run_id[r]) for r, a in graph["used"]],
            batch_size=5000,
        )
        c1, c2, key = plan["collection"]
        collections = [
            make(ln.Collection, uid=c1, key=key, description="first", hash="h1", is_latest=False,
                 meta_artifact_id=art_id[plan["metas"][0][0]], created_by_id=first_user),
            make(ln.Collection, uid=c2, key=key, description="second", hash="h2", is_latest=True,
                 meta_artifact_id=art_id[plan["metas"][1][0]], created_by_id=first_user),
        ]  # fmt: skip
        ln.Collection.objects.bulk_create(collections)
        coll_id = dict(ln.Collection.objects.values_list("uid", "id"))
        through = ln.Collection.artifacts.through
        for uid, order in ((c1, plan["v1"]), (c2, plan["v2"])):  # link ids give the order
            through.objects.bulk_create(
                [through(collection_id=coll_id[uid], artifact_id=art_id[plan["members"][i][0]])
                 for i in order], batch_size=5000,
            )  # fmt: skip
    fig["build_s"] = time.perf_counter() - t0
    _say("lamindb", f"built in {fig['build_s']:.1f} s")

    # lamindb's `version` is the tag or the uid's counter: its stored tag is `version_tag`.
    fields = ("key", "description", "hash", "version_tag", "reference", "reference_type")

    def diff(old, new) -> dict:
        a = old.ordered_artifacts.to_list()
        b = new.ordered_artifacts.to_list()
        a_uids, b_uids = [x.uid for x in a], [x.uid for x in b]
        in_a, in_b = set(a_uids), set(b_uids)
        added = [(i, x.uid, x.key) for i, x in enumerate(b) if x.uid not in in_a]
        removed = [(i, x.uid, x.key) for i, x in enumerate(a) if x.uid not in in_b]
        moved = [(i, j, b[j].uid, b[j].key) for i, j in moves(a_uids, b_uids)]
        meta = (old.meta_artifact.uid, new.meta_artifact.uid)
        changed = {f.replace("_tag", ""): (getattr(old, f), getattr(new, f)) for f in fields
                   if getattr(old, f) != getattr(new, f)}  # fmt: skip
        return {"added": [x[1] for x in added], "removed": [x[1] for x in removed],
                "moved": [x[2] for x in moved], "meta_changed": meta[0] != meta[1],
                "fields": sorted(changed)}  # fmt: skip

    old, new = ln.Collection.get(c1), ln.Collection.get(c2)
    times, answer = _times(lambda: diff(old, new), 1, plan["lamindb_repeats"])
    fig["diff_p50_ms"] = _pct(times, 50) * 1e3
    fig["diff_answer"] = answer
    _say("lamindb", f"diff p50 {fig['diff_p50_ms']:.1f} ms")

    def impact(record) -> list:
        """Everything downstream, by run depth, with transform and creator (lamindb's API)."""
        rows, seen = [], {record.uid}

        def later(a):
            return [v for v in ln.Artifact.filter(uid__startswith=a.uid[:16]) if v.uid > a.uid]

        def zero(a):  # without passing a run: the collections holding it, later versions
            return list(a.collections.all()) + later(a) if isinstance(a, ln.Artifact) else []

        front, depth = [record], 0
        for x in zero(record):
            if x.uid not in seen:
                seen.add(x.uid)
                rows.append((0, x.uid, None, x.created_by.handle))
                front.append(x)
        while front:
            depth += 1
            runs = {}
            for x in front:
                for r in x.input_of_runs.all():
                    runs.setdefault(r.uid, r)
            front = []
            for r in runs.values():
                if r.uid in seen:
                    continue
                seen.add(r.uid)
                made_by = r.transform.key
                rows.append((depth, r.uid, made_by, r.created_by.handle))
                for out in list(r.output_artifacts.all()) + list(r.output_collections.all()):
                    for y in [out, *zero(out)]:
                        if y.uid not in seen:
                            seen.add(y.uid)
                            rows.append((depth, y.uid, made_by if y is out else None,
                                         y.created_by.handle))  # fmt: skip
                            front.append(y)
        return rows

    focus = ln.Artifact.get(plan["focus"])
    times, rows = _times(lambda: impact(focus), 1, plan["lamindb_repeats"])
    fig["impact_p50_ms"] = _pct(times, 50) * 1e3
    fig["impact_answer"] = sorted([r[0], r[1]] for r in rows)
    _say("lamindb", f"impact p50 {fig['impact_p50_ms']:.1f} ms, {len(rows)} records")

    def stale() -> list:
        out = []
        for registry in (ln.Artifact, ln.Collection):
            superseded = list(registry.filter(is_latest=False))
            superseded += list(registry.filter(branch_id=-1))
            for used in superseded:
                runs = list(used.input_of_runs.all())
                if not runs:
                    continue
                latest = registry.filter(uid__startswith=used.uid[:16], is_latest=True).first()
                for run in runs:
                    outputs = list(run.output_artifacts.filter(is_latest=True))
                    outputs += list(run.output_collections.filter(is_latest=True))
                    for o in outputs:
                        out.append((o.uid, run.uid, used.uid, latest.uid if latest else None))
        return sorted(out)

    times, rows = _times(stale, 1, max(1, plan["lamindb_repeats"] // 2))
    fig["stale_p50_ms"] = _pct(times, 50) * 1e3
    fig["stale_answer"] = [list(r) for r in rows]
    _say("lamindb", f"stale p50 {fig['stale_p50_ms']:.0f} ms, {len(rows)} stale")
    fig["version"] = ln.__version__
    print(json.dumps(fig))


# -- lineage (this process) -----------------------------------------------------------------------
def build_lineage(ln, conn, plan: dict) -> float:
    from graph.records import NewRecord, create_many

    t0 = time.perf_counter()
    graph = plan["graph"]
    users = {h: ln.User(handle=h, name=h).save().uid for h in plan["users"]}
    old_versions = {old for _, _, old in plan["versions"]}
    nodes = {
        "Transform": [{"uid": uid, "key": f"{k}.py", "kind": "pipeline"}
                      for k, uid in graph["transforms"].items()],
        "Run": [{"uid": uid + "0000", "name": name, "status": "completed"}
                for uid, _, name in graph["runs"]],
        "Artifact": [{"uid": uid, "key": key, "suffix": ".txt", "size": 1, "hash": uid[:22],
                      "is_latest": uid not in old_versions} for uid, key, _ in graph["artifacts"]]
                    + [{"uid": uid, "key": key, "suffix": ".txt", "size": 1, "hash": uid[:22]}
                       for uid, key, _ in plan["versions"]],
    }  # fmt: skip
    edges = [("EXECUTES", "Run", uid + "0000", "Transform", graph["transforms"][kind])
             for uid, kind, _ in graph["runs"]]  # fmt: skip
    edges += [("GENERATED_BY", "Artifact", uid, "Run", run + "0000")
              for uid, _, run in graph["artifacts"] if run]  # fmt: skip
    edges += [("USED", "Run", run + "0000", "Artifact", a) for run, a in graph["used"]]
    edges += [("REVISES", "Artifact", new, "Artifact", old) for new, _, old in plan["versions"]]
    for uid, handle in plan["creators"].items():  # runs are 16-character stems in the plan
        label, uid = ("Run", uid + "0000") if len(uid) == 16 else ("Artifact", uid)
        edges.append(("CREATED_BY", label, uid, "User", users[handle]))
    _lineage_bench().write_graph(conn, nodes, edges)
    # The collections through the record API; their member artifacts in bulk.
    create_many(conn, "Artifact", [
        NewRecord({"uid": uid, "key": key, "suffix": key[key.rfind("."):], "size": 1,
                   "hash": uid[:22]}) for uid, key in plan["members"] + plan["metas"]
    ])  # fmt: skip
    prefix = plan["collection"][2] + "/"
    by_uid = {a.uid: a for a in ln.Artifact.filter(key__startswith=prefix).to_list()}
    members = [by_uid[uid] for uid, _ in plan["members"]]
    meta1, meta2 = (by_uid[uid] for uid, _ in plan["metas"])
    key = plan["collection"][2]
    v1 = ln.Collection([members[i] for i in plan["v1"]], key=key, meta=meta1,
                       description="first").save()  # fmt: skip
    ln.Collection([members[i] for i in plan["v2"]], key=key, meta=meta2, description="second",
                  revises=v1).save()  # fmt: skip
    return time.perf_counter() - t0


def run_lineage(plan: dict, tmp: Path, install_dir: Path) -> tuple[dict, dict]:
    from _lineage_env import scratch_lineage

    import lineage as ln

    fig: dict = {}
    with scratch_lineage(tmp, install_dir, lambda m: _say("lineage", m)):
        instance = ln.connect()
        _say("lineage", f"connected: {instance!r}")
        fig["build_s"] = build_lineage(ln, instance.connection, plan)
        _say(
            "lineage", f"built {plan['n_records']} records + collections in {fig['build_s']:.1f} s"
        )
        key = plan["collection"][2]
        old, new = ln.Collection.filter(key=key).order_by("uid").to_list()
        times, change = _times(lambda: ln.lineage.diff(old, new), plan["warmup"], plan["repeats"])
        fig.update(_stats("diff", times))
        fig["diff_answer"] = {
            "added": [m.uid for m in change.added], "removed": [m.uid for m in change.removed],
            "moved": [m.uid for m in change.moved], "meta_changed": change.meta_artifact is not None,
            "fields": sorted(change.fields),
        }  # fmt: skip
        _say("lineage", f"diff p50 {fig['diff_p50_ms']:.2f} ms")

        focus = ln.Artifact.get(plan["focus"])
        times, hit = _times(lambda: ln.lineage.impact(focus), plan["warmup"], plan["repeats"])
        fig.update(_stats("impact", times))
        # Runs are compared by their stem: make_graph's run uids, which lamindb keeps as they are.
        fig["impact_answer"] = sorted([r.depth, r.uid[:16] if r.label == "Run" else r.uid]
                                      for r in hit)  # fmt: skip
        fig["impact_max_depth"] = max((r.depth for r in hit), default=None)
        _say("lineage", f"impact p50 {fig['impact_p50_ms']:.2f} ms, {len(hit)} records")

        repeats = max(3, plan["repeats"] // 5)
        times, found = _times(ln.lineage.stale, max(1, plan["warmup"] // 10), repeats)
        fig.update(_stats("stale", times))
        fig["stale_answer"] = sorted(
            [r.uid, r.run[:16], i.uid, i.latest] for r in found for i in r.inputs
        )
        _say("lineage", f"stale p50 {fig['stale_p50_ms']:.1f} ms, {len(found)} stale")
        fig["version"] = getattr(ln, "__version__", None)
        fig["neo4j"] = f"{instance.server_version} {instance.server_edition}"
        return fig, {"lineage": fig["version"], "neo4j": instance.server_version}


def _stats(name: str, times: list[float]) -> dict:
    return {
        f"{name}_p50_ms": _pct(times, 50) * 1e3,
        f"{name}_p95_ms": _pct(times, 95) * 1e3,
        f"{name}_min_ms": min(times) * 1e3,
    }


def run_lamindb(args, plan_file: Path, tmp: Path, venv_dir: Path) -> tuple[dict, dict]:
    from _lamindb_env import ensure_lamindb, init_instance, run_worker

    lenv = ensure_lamindb(venv_dir, spec=args.lamindb_spec)
    _say("lamindb", f"lamindb {lenv.version} from {venv_dir}; lamin init")
    root = tmp / "lamindb"
    root.mkdir()
    init_s = init_instance(lenv, root, root / "storage")
    fig = run_worker(
        lenv, root, [str(Path(__file__).resolve()), "--worker", "lamindb", str(plan_file)]
    )
    fig.update(init_s=init_s, venv=str(venv_dir), venv_reused=lenv.reused)
    return fig, {"lamindb": lenv.version}


# -- report ---------------------------------------------------------------------------------------
def report(plan: dict, results: dict, versions: dict, errors: dict, extra: dict) -> dict:
    ours, theirs = results.get("lineage") or {}, results.get("lamindb") or {}

    def ratio(name: str) -> float | None:
        a, b = ours.get(f"{name}_p50_ms"), theirs.get(f"{name}_p50_ms")
        return round(b / a, 1) if a and b else None

    def same(name: str) -> bool | None:
        a, b = ours.get(f"{name}_answer"), theirs.get(f"{name}_answer")
        return None if a is None or b is None else a == b

    speedup = {q: ratio(q) for q in ("diff", "impact", "stale")}
    ms = {q: ours.get(f"{q}_p50_ms") for q in ("diff", "impact", "stale")}
    answers_match = {q: same(q) for q in ("diff", "impact", "stale")}
    sizes = {
        "members": len(plan["v1"]),
        "records": plan["n_records"],
        "impact_records": len(ours.get("impact_answer") or theirs.get("impact_answer") or []),
        "impact_max_depth": ours.get("impact_max_depth"),
        "stale_records": len({r[0] for r in (ours.get("stale_answer") or [])}),
    }
    print()
    print(f"{sizes['members']}-member collections; {sizes['records']} records "
          f"({plan['lanes']} lanes x {plan['steps']} steps)")  # fmt: skip
    print(f"{'question':>8s} {'lineage p50 ms':>15s} {'p95':>8s} {'lamindb p50 ms':>15s} "
          f"{'ratio':>7s}  same answer")  # fmt: skip
    for q in ("diff", "impact", "stale"):
        a, p95, b = ms[q], ours.get(f"{q}_p95_ms"), theirs.get(f"{q}_p50_ms")

        def num(v, d=2):
            return "-" if v is None else f"{v:.{d}f}"

        r = speedup[q]
        print(f"{q:>8s} {num(a):>15} {num(p95):>8} {num(b, 1):>15} "
              f"{'-' if r is None else f'{r}x':>7}  {answers_match[q]}")  # fmt: skip
    for q, match in answers_match.items():
        if match is False:  # say where, so a wrong answer on either side is found
            a, b = ours[f"{q}_answer"], theirs[f"{q}_answer"]
            if isinstance(a, dict):
                for k in a:
                    if a[k] != b.get(k):
                        print(
                            f"!! {q} {k}: lineage {str(a[k])[:200]} | lamindb {str(b.get(k))[:200]}"
                        )
            else:
                first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
                print(f"!! {q}: {len(a)} vs {len(b)} rows; first difference at row {first}")
    print(f"impact: {sizes['impact_records']} records, {sizes['impact_max_depth']} runs deep; "
          f"stale: {sizes['stale_records']} records")  # fmt: skip

    def check(value, ok) -> bool | None:
        return None if value is None else bool(ok(value))

    goals = {
        "diff_p50_le_50ms": check(ms["diff"], lambda v: v <= GOAL_DIFF_MS),
        "diff_ge_10x_lamindb": check(speedup["diff"], lambda v: v >= GOAL_DIFF_X),
        "impact_p50_le_20ms": check(ms["impact"], lambda v: v <= GOAL_IMPACT_MS),
        "stale_le_1s": check(ms["stale"], lambda v: v <= GOAL_STALE_S * 1e3),
        "stale_ge_10x_lamindb": check(speedup["stale"], lambda v: v >= GOAL_STALE_X),
    }
    for name, met in goals.items():
        print(f"goal {name:24s} {({True: 'met', False: 'NOT met', None: 'n/a'})[met]}")
    busy = max(extra.get("loadavg_1m_start", 0), extra.get("loadavg_1m_end", 0))
    if busy > (extra.get("cpus") or 1):
        print(f"note: load average {busy:.1f} on {extra.get('cpus')} CPUs: figures are noisy")
    print(f"versions: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    for side, message in errors.items():
        print(f"ERROR {side}: {message.splitlines()[0] if message else ''}")

    def rounded(d: dict) -> dict | None:
        if not d:
            return None
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()
                if not k.endswith("_answer")}  # fmt: skip

    return {
        "n": {**sizes, "lanes": plan["lanes"], "steps": plan["steps"], "repeats": plan["repeats"]},
        "versions": versions,
        "lineage": rounded(ours),
        "lamindb": rounded(theirs),
        "answers_match": answers_match,
        "goals": goals,
        "errors": errors or None,
        **extra,
        "lineage_ms": {k: None if v is None else round(v, 3) for k, v in ms.items()},
        "speedup_vs_lamindb": speedup,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 members, ~5k records")
    parser.add_argument("--members", type=int, default=None, help="default 10,000 (--quick 2,000)")
    parser.add_argument("--lanes", type=int, default=None, help="default 125 (--quick 6)")
    parser.add_argument("--steps", type=int, default=100, help="main runs per lane (>= 50)")
    parser.add_argument("--stale", type=int, default=None, help="default 1,000 (--quick 100)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per question")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first (a fresh JVM)")
    parser.add_argument("--lamindb-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lamindb", action="store_true")
    parser.add_argument("--skip-lineage", action="store_true")
    parser.add_argument("--lamindb-venv", type=Path, default=None)
    parser.add_argument("--lamindb-spec", default=None)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker[0] != "lamindb":
            parser.error(f"unknown worker {args.worker[0]!r}")
        _worker_lamindb(args.worker[1])
        return 0
    args.members = args.members or (2_000 if args.quick else 10_000)
    args.lanes = args.lanes or (6 if args.quick else 125)
    args.stale = args.stale if args.stale is not None else (100 if args.quick else 1_000)
    if args.steps < IMPACT_DEPTH or min(args.members, args.lanes, args.repeats) < 1:
        parser.error(f"--steps must be >= {IMPACT_DEPTH}; --members, --lanes, --repeats >= 1")
    if args.members <= 100:
        parser.error("--members must be above 100 (the second version moves member 100)")
    if args.stale > args.lanes * args.steps:
        parser.error("--stale can be at most --lanes x --steps (one raw input per side run)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    here = Path(__file__).resolve().parent
    # benchmarks/lineage.py would shadow the `lineage` package: the repository root goes first.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))  # _lamindb_env, _lineage_env
    from _lamindb_env import DEFAULT_SPEC, default_venv_dir
    from _lineage_env import database_note, run_namespace

    from graph.server import default_install_dir

    args.lamindb_spec = args.lamindb_spec or DEFAULT_SPEC
    venv_dir = args.lamindb_venv or default_venv_dir()
    install_dir = default_install_dir()
    namespace = run_namespace()
    plan = make_plan(args, namespace)
    _say("bench", f"{plan['n_records']} records, {args.members}-member collections, "
                  f"{args.stale} stale")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-questions-", dir=args.tmp_dir))
    results: dict = {}
    versions: dict = {"python": platform.python_version()}
    errors: dict = {}
    extra: dict = {
        "cpus": os.cpu_count(),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
        "database": database_note(namespace),
        "quick": args.quick,
    }
    try:
        plan_file = tmp / "plan.json"
        plan_file.write_text(json.dumps(plan))
        sides = []
        if not args.skip_lamindb:
            sides.append(("lamindb", lambda: run_lamindb(args, plan_file, tmp, venv_dir)))
        if not args.skip_lineage:
            sides.append(("lineage", lambda: run_lineage(plan, tmp, install_dir)))
        for side, run in sides:
            t0 = time.perf_counter()
            try:
                fig, ver = run()
            except Exception as exc:  # report the other side anyway
                traceback.print_exc()
                errors[side] = f"{type(exc).__name__}: {exc}"
                continue
            fig["side_wall_s"] = round(time.perf_counter() - t0, 2)
            results[side] = fig
            versions.update(ver)
        extra["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        summary = report(plan, results, versions, errors, extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
