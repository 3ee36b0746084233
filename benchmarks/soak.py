"""A soak run: every kind of client at once against one local Neo4j that is killed every few minutes.

    python benchmarks/soak.py --minutes 30              # the run in docs/reliability.md
    python benchmarks/soak.py --minutes 2 --kill-every 40   # a quick trial

Against a fresh local Neo4j started by this script (`graph.server.LocalServer`, in a temporary
lineage home on a free port; `NEO4J_URI` is ignored) and a moto S3 server on 127.0.0.1 (for the
files `cache()` and `mapped()` download). Set-up, not timed: a lamindb instance made by lamindb
2.x itself (`tests/lamindb_world.py`, in lamindb's venv, see `_lamindb_env.py`); 4 small `.h5ad`
files saved to `s3://soak/h5ad` as the collection `soak/h5ad`; 5 keyed artifacts
`soak/keyed/<k>.txt` and a 2-member collection `soak/coll` in local storage.

Then, for `--minutes`, one process per role, each in a loop:

- writer: new artifacts (distinct content): one `save()`, then a bulk `ln.save` of 10, in turn;
- appender: a new version of a keyed artifact (new content under its key), then a new version of
  `soak/coll` with one new member (`append(...).save()`), in turn;
- reader: `Artifact.get(key=..., is_latest=True)` of a keyed family, a `filter(key__startswith=)`
  count, `ln.lineage.upstream` of the latest `soak/coll`, its `ordered_artifacts`;
- mapped: one epoch over `soak/h5ad` (`mapped(obs_keys=["cell_type"])`, every row read);
- cache: removes the cached copy of one `.h5ad` member, then `cache()` downloads it again;
- importer: `ln.import_lamindb(instance)` again and again.

Meanwhile this process `kill -9`s the Neo4j JVM every `--kill-every` seconds and starts it again.
Clients ride over it: an error is counted by its kind (the exception class), the client sleeps a
second when the error says the server is unreachable, and goes on with its next operation. Each
client remembers what it was told was stored (acknowledged) and what may or may not have been
(`CommitUnknown`).

At the end, with the server up and the clients stopped, every invariant of docs/reliability.md
is checked: one `is_latest` per version family, ids unique per label, one artifact per content,
every artifact with its storage and creator edges (no half-written record), collection
positions 0..n-1 and each `soak/coll` version its predecessor's members plus one, every
acknowledged record present, no keyed family with more versions than acknowledged plus
unknown, no latest-version read that found nothing, every epoch complete, every cached copy
whole, the import idempotent (importing once more creates nothing), and `lineage doctor` clean
after `--fix --grace 0` (orphans left by commits the kill cut short are expected and counted).

Prints progress on stderr and, last, one JSON line: operations and errors by role and kind,
kills, restarts, the invariants (held or not, with details), the load average.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROLES = ("writer", "appender", "reader", "mapped", "cache", "importer")
N_KEYED = 5
N_H5AD, N_OBS, N_VARS = 4, 200, 50
BUCKET = "soak"
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _say(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the clients ---------------------------------------------------------------------------------


class Client:
    """One role's loop: operations, errors by kind, what was acknowledged, what is unknown."""

    def __init__(self, role: str, tmp: Path, endpoint: str, instance: str) -> None:
        import lineage as ln

        self.ln = ln
        self.role, self.tmp, self.endpoint, self.instance = role, tmp, endpoint, instance
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self.acked: list[str] = []  # uids a save returned
        self.unknown: list[str] = []  # uids whose commit the kill left in doubt
        self.checks: Counter[str] = Counter()  # role-specific invariant counters
        self.files = tmp / "src" / f"{role}-{os.getpid()}"
        self.files.mkdir(parents=True, exist_ok=True)
        self.i = 0

    def setup(self) -> None:
        ln = self.ln
        ln.connect()
        ln.settings.storage_options = {"endpoint_url": self.endpoint}
        ln.settings.storage = str(self.tmp / "storage")
        ln.settings.cache_dir = self.tmp / f"cache-{self.role}"

    def new_file(self, tag: str) -> Path:
        self.i += 1
        path = self.files / f"{tag}-{self.i}.txt"
        path.write_text(f"{self.role} {os.getpid()} {tag} {self.i} {random.random()}\n")
        return path

    def loop(self, deadline: float) -> dict[str, Any]:
        from graph.errors import CommitUnknown, ConnectionFailed

        steps = getattr(self, f"op_{self.role}")
        ready = False
        turn = 0
        while time.time() < deadline:
            try:
                if not ready:
                    self.setup()
                    ready = True
                steps(turn)
                turn += 1
            except Exception as exc:
                kind = type(exc).__name__
                self.errors[kind] += 1
                self.samples.setdefault(kind, "".join(traceback.format_exception_only(exc))[-600:])
                if isinstance(exc, CommitUnknown):
                    self.unknown.extend(getattr(self, "pending", []))
                if isinstance(exc, ConnectionFailed | OSError):
                    time.sleep(1.0)
            self.pending: list[str] = []
        return {
            "role": self.role,
            "ops": dict(self.ops),
            "errors": dict(self.errors),
            "error_samples": self.samples,
            "acked": self.acked,
            "unknown": self.unknown,
            "checks": dict(self.checks),
        }

    # writer: new artifacts, single and bulk
    def op_writer(self, turn: int) -> None:
        ln = self.ln
        if turn % 2 == 0:
            art = ln.Artifact(self.new_file("w"), key=f"soak/w/{os.getpid()}/{self.i}.txt")
            self.pending = [art.uid]
            art.save()
            self.acked.append(art.uid)
            self.ops["save"] += 1
        else:
            arts = [
                ln.Artifact(self.new_file("b"), key=f"soak/w/{os.getpid()}/{self.i}.txt")
                for _ in range(10)
            ]
            self.pending = [a.uid for a in arts]
            ln.save(arts)
            self.acked += [a.uid for a in arts]
            self.ops["bulk_save_10"] += 1

    # appender: new versions of keyed artifacts, collection appends
    def op_appender(self, turn: int) -> None:
        ln = self.ln
        if turn % 2 == 0:
            key = f"soak/keyed/{turn // 2 % N_KEYED}.txt"
            art = ln.Artifact(self.new_file("v"), key=key)
            self.pending = [art.uid]
            art.save()
            self.acked.append(art.uid)
            self.checks["keyed_versions_acked"] += 1
            self.ops["new_version"] += 1
        else:
            coll = ln.Collection.get(key="soak/coll")
            member = ln.Artifact(self.new_file("m"), key=f"soak/members/{self.i}.txt")
            self.pending = [member.uid]
            member.save()
            self.acked.append(member.uid)
            new = coll.append(member)
            self.pending = [new.uid]
            new.save()
            self.acked.append(new.uid)
            self.ops["collection_append"] += 1

    # reader: latest by key, filter, lineage, ordered members
    def op_reader(self, turn: int) -> None:
        ln = self.ln
        which = turn % 4
        if which == 0:
            key = f"soak/keyed/{random.randrange(N_KEYED)}.txt"
            try:
                art = ln.Artifact.get(key=key, is_latest=True)
            except ln.errors.DoesNotExist:
                self.checks["latest_read_missed"] += 1
                raise
            self.checks["latest_read_found"] += 1
            if not art.is_latest:
                self.checks["latest_read_not_latest"] += 1
            self.ops["get_latest_by_key"] += 1
        elif which == 1:
            ln.Artifact.filter(key__startswith="soak/w/").count()
            self.ops["filter_count"] += 1
        elif which == 2:
            up = ln.lineage.upstream(ln.Collection.get(key="soak/coll"))
            up.artifacts.count()
            self.ops["lineage_upstream"] += 1
        else:
            coll = ln.Collection.get(key="soak/coll")
            n = len(coll.ordered_artifacts.to_list())
            if n < 2:
                self.checks["short_collection_read"] += 1
            self.ops["ordered_artifacts"] += 1

    # mapped: one epoch over the h5ad collection
    def op_mapped(self, turn: int) -> None:
        coll = self.ln.Collection.get(key="soak/h5ad")
        rows = 0
        with coll.mapped(obs_keys=["cell_type"]) as dataset:
            for i in range(len(dataset)):
                item = dataset[i]
                rows += int(item["X"].shape[-1] == N_VARS)
        if rows == N_H5AD * N_OBS:
            self.checks["epoch_complete"] += 1
        else:
            self.checks["epoch_incomplete"] += 1
        self.ops["mapped_epoch"] += 1

    # cache: drop the cached copy of one member, download it again
    def op_cache(self, turn: int) -> None:
        coll = self.ln.Collection.get(key="soak/h5ad")
        art = random.choice(coll.ordered_artifacts.to_list())
        cached = Path(self.ln.settings.cache_dir)
        for path in cached.rglob(f"*{art.uid}*") if cached.exists() else []:
            path.unlink()
        path = art.cache()
        if path.stat().st_size == art.size:
            self.checks["cached_whole"] += 1
        else:
            self.checks["cached_wrong_size"] += 1
        self.ops["cache"] += 1

    # importer: the lamindb instance again
    def op_importer(self, turn: int) -> None:
        report = self.ln.import_lamindb(self.instance)
        self.checks["records_created"] += report.created
        self.ops["import_lamindb"] += 1


def client_main(role: str, tmp: Path, endpoint: str, instance: str, deadline: float) -> None:
    random.seed(f"{role}-{os.getpid()}")
    client = Client(role, tmp, endpoint, instance)
    result = client.loop(deadline)
    (tmp / f"result-{role}.json").write_text(json.dumps(result))


# -- set-up, the killer, the invariants --------------------------------------------------------


def make_h5ad(directory: Path) -> list[Path]:
    import anndata as ad
    import numpy as np
    import pandas as pd

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_H5AD):
        obs = pd.DataFrame(
            {"cell_type": rng.choice(["T", "B", "NK"], N_OBS)},
            index=[f"c{i}-{j}" for j in range(N_OBS)],
        )
        adata = ad.AnnData(X=rng.random((N_OBS, N_VARS), dtype=np.float32), obs=obs)
        adata.var_names = [f"g{j}" for j in range(N_VARS)]
        path = directory / f"part{i}.h5ad"
        adata.write_h5ad(path)
        paths.append(path)
    return paths


def seed(ln: Any, tmp: Path, endpoint: str) -> None:
    ln.settings.storage_options = {"endpoint_url": endpoint}
    ln.settings.storage = f"s3://{BUCKET}/h5ad"
    parts = [ln.Artifact(p, key=f"soak/h5ad/{p.name}") for p in make_h5ad(tmp / "h5ad")]
    ln.save(parts)
    ln.Collection(parts, key="soak/h5ad").save()
    ln.settings.storage = str(tmp / "storage")
    seed_dir = tmp / "src" / "seed"
    seed_dir.mkdir(parents=True)
    for k in range(N_KEYED):
        (seed_dir / f"k{k}.txt").write_text(f"keyed {k} v1\n")
        ln.Artifact(seed_dir / f"k{k}.txt", key=f"soak/keyed/{k}.txt").save()
    members = []
    for m in range(2):
        (seed_dir / f"m{m}.txt").write_text(f"member {m}\n")
        members.append(ln.Artifact(seed_dir / f"m{m}.txt", key=f"soak/members/seed{m}.txt").save())
    ln.Collection(members, key="soak/coll").save()


def rows(ln: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    return ln.cypher(query, **params).to_dict("records")


def check_invariants(ln: Any, results: dict[str, dict[str, Any]], instance: str) -> dict[str, Any]:
    """Every invariant, each {"held": bool, ...details}."""
    inv: dict[str, dict[str, Any]] = {}

    def held(name: str, ok: bool, **details: Any) -> None:
        inv[name] = {"held": bool(ok), **details}

    bad = rows(
        ln,
        "MATCH (a) WHERE (a:Artifact OR a:Collection OR a:Transform) AND a.branch = 'main' "
        "WITH labels(a)[0] AS label, substring(a.uid, 0, size(a.uid) - 4) AS stem, "
        "sum(CASE WHEN a.is_latest THEN 1 ELSE 0 END) AS latest "
        "WHERE latest <> 1 RETURN label, stem, latest LIMIT 20",
    )
    held("one_is_latest_per_family", not bad, bad=bad)
    dup_ids = rows(
        ln,
        "MATCH (n) WHERE n.id IS NOT NULL WITH labels(n)[0] AS label, n.id AS id, count(*) AS c "
        "WHERE c > 1 RETURN label, id, c LIMIT 20",
    )
    held("ids_unique_per_label", not dup_ids, duplicates=dup_ids)
    dup_hash = rows(
        ln,
        "MATCH (a:Artifact) WHERE a.branch <> 'trash' WITH a.hash AS hash, count(*) AS c "
        "WHERE c > 1 RETURN hash, c LIMIT 20",
    )
    held("one_artifact_per_content", not dup_hash, duplicates=dup_hash)
    half = rows(
        ln,
        "MATCH (a:Artifact) WHERE NOT (a)-[:STORED_IN]->() OR NOT (a)-[:CREATED_BY]->() "
        "RETURN a.uid AS uid LIMIT 20",
    )
    half += rows(
        ln,
        "MATCH (c:Collection) WHERE NOT (c)-[:CREATED_BY]->() OR NOT (c)-[:CONTAINS]->() "
        "RETURN c.uid AS uid LIMIT 20",
    )
    held("no_half_written_records", not half, bad=half)
    positions = rows(
        ln,
        "MATCH (c:Collection)-[r:CONTAINS]->() WITH c, collect(r.position) AS ps "
        "RETURN c.uid AS uid, ps",
    )
    wrong = [p["uid"] for p in positions if sorted(p["ps"]) != list(range(len(p["ps"])))]
    held("collection_positions_0_to_n", not wrong, bad=wrong[:20], collections=len(positions))
    coll = rows(
        ln,
        "MATCH (c:Collection) WHERE c.key = 'soak/coll' "
        "RETURN c.uid AS uid, count { (c)-[:CONTAINS]->() } AS n ORDER BY c.uid",
    )
    steps = [b["n"] - a["n"] for a, b in itertools.pairwise(coll)]
    held(
        "each_collection_version_adds_one_member",
        all(s == 1 for s in steps) and bool(coll) and coll[0]["n"] == 2,
        versions=len(coll),
        members_latest=coll[-1]["n"] if coll else None,
    )
    acked = [u for r in results.values() for u in r["acked"]]
    unknown = {u for r in results.values() for u in r["unknown"]}
    present = {
        r["uid"]
        for r in rows(
            ln,
            "UNWIND $uids AS u MATCH (n {uid: u}) WHERE n:Artifact OR n:Collection "
            "RETURN n.uid AS uid",
            uids=acked + sorted(unknown),
        )
    }
    lost = [u for u in acked if u not in present]
    held(
        "every_acknowledged_record_present",
        not lost,
        acknowledged=len(acked),
        lost=lost[:20],
        unknown=len(unknown),
        unknown_committed=len(unknown & present),
    )
    appended = results.get("appender", {})
    keyed = rows(
        ln,
        "MATCH (a:Artifact) WHERE a.key STARTS WITH 'soak/keyed/' RETURN count(a) AS n",
    )[0]["n"]
    acked_versions = appended.get("checks", {}).get("keyed_versions_acked", 0)
    held(
        "keyed_versions_match_acknowledged",
        N_KEYED + acked_versions <= keyed <= N_KEYED + acked_versions + len(unknown),
        versions=keyed,
        acknowledged=N_KEYED + acked_versions,
    )
    checks: Counter[str] = Counter()
    for r in results.values():
        checks.update(r["checks"])
    held("no_latest_read_missed", checks["latest_read_missed"] == 0, **{
        k: checks[k] for k in ("latest_read_found", "latest_read_missed")})  # fmt: skip
    held(
        "every_epoch_complete",
        checks["epoch_incomplete"] == 0,
        complete=checks["epoch_complete"],
        incomplete=checks["epoch_incomplete"],
    )
    held(
        "every_cached_copy_whole",
        checks["cached_wrong_size"] == 0,
        whole=checks["cached_whole"],
        wrong=checks["cached_wrong_size"],
    )
    again = ln.import_lamindb(instance)
    held("import_idempotent", again.created == 0, created_on_last_import=again.created)
    before = ln.doctor()
    held(
        "doctor_graph_clean",
        not (before.issues or before.missing or before.skipped),
        issues=[i.describe() for i in before.issues][:20],
        missing=[i.describe() for i in before.missing][:20],
    )
    fixed = ln.doctor(fix=True, grace=0)
    after = ln.doctor(grace=0)
    held(
        "doctor_clean_after_fix",
        after.ok,
        orphans_found=len(before.orphans) + len(before.recent),
        removed=len(fixed.removed),
        report=after.describe()[-1000:],
    )
    return inv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--kill-every", type=float, default=180.0, help="seconds between kills")
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    # benchmarks/ holds lineage.py (the lineage benchmark): the root goes first on sys.path.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))
    if args.role:
        client_main(args.role, args.tmp, args.endpoint, args.instance, args.deadline)
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from _lamindb_env import default_venv_dir, ensure_lamindb, init_instance, run_worker
    from _lineage_env import free_port

    lenv = ensure_lamindb(default_venv_dir())  # read before LINEAGE_HOME changes
    import logging

    from moto.server import ThreadedMotoServer

    from graph.server import LocalServer, default_install_dir
    from graph.server.manager import _alive

    install_dir = default_install_dir()
    tmp = Path(tempfile.mkdtemp(prefix="lineage-soak-", dir=args.tmp_dir))
    for var in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "AWS_PROFILE"):
        os.environ.pop(var, None)
    os.environ.update(_FAKE_AWS)
    os.environ["LINEAGE_HOME"] = str(tmp / "lineage-home")
    os.environ["LINEAGE_NEO4J_INSTALL"] = str(install_dir)
    os.environ["LINEAGE_NEO4J_PORT"] = str(free_port())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    fig: dict[str, Any] = {
        "benchmark": "soak",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "minutes": args.minutes,
        "kill_every_s": args.kill_every,
        "loadavg_start": list(os.getloadavg()),
    }
    procs: list[subprocess.Popen] = []
    ok = False
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        _say("lamindb instance (tests/lamindb_world.py, by lamindb itself)")
        lroot = tmp / "lamindb"
        lroot.mkdir()
        init_instance(lenv, lroot, lroot / "storage")
        run_worker(
            lenv, lroot, [str(here.parent / "tests" / "lamindb_world.py"), str(lroot / "work")]
        )
        instance = str(lroot / "storage")
        import lineage as ln

        server = LocalServer()
        ln.connect()
        _say("seeding: h5ad collection on S3, keyed artifacts, soak/coll")
        seed(ln, tmp, endpoint)
        ln.import_lamindb(instance)
        ln.disconnect()

        deadline = time.time() + args.minutes * 60
        for role in ROLES:
            cmd = [sys.executable, __file__, "--role", role, "--tmp", str(tmp),
                   "--endpoint", endpoint, "--instance", instance, "--deadline", str(deadline)]  # fmt: skip
            log = open(tmp / f"log-{role}.txt", "w")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        _say(f"{len(procs)} clients until {time.strftime('%H:%M:%S', time.localtime(deadline))}")
        kills, restarts, loads = 0, [], [os.getloadavg()[0]]
        next_kill = time.time() + args.kill_every
        while time.time() < deadline:
            time.sleep(min(5.0, max(deadline - time.time(), 0)))
            loads.append(os.getloadavg()[0])
            if time.time() >= next_kill and time.time() < deadline - 20:
                pid = server.status().pid
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                    t0 = time.perf_counter()
                    while _alive(pid):  # reaps it: the JVM is this process's child
                        time.sleep(0.1)
                    server.start()
                    restarts.append(time.perf_counter() - t0)
                    _say(f"kill -9 #{kills} of pid {pid}; back in {restarts[-1]:.1f} s")
                next_kill = time.time() + args.kill_every
        for proc in procs:
            proc.wait(timeout=600)
        results = {}
        for role in ROLES:
            path = tmp / f"result-{role}.json"
            if not path.exists():
                raise RuntimeError(f"the {role} client left no result: see {tmp}/log-{role}.txt")
            results[role] = json.loads(path.read_text())
        server.start()
        ln.connect()
        ln.settings.storage_options = {"endpoint_url": endpoint}
        _say("checking the invariants")
        invariants = check_invariants(ln, results, instance)
        fig["kills"] = kills
        fig["restart_s"] = {
            "min": min(restarts, default=None),
            "max": max(restarts, default=None),
            "mean": sum(restarts) / len(restarts) if restarts else None,
        }
        fig["operations"] = {r: results[r]["ops"] for r in ROLES}
        fig["operations_total"] = sum(sum(r["ops"].values()) for r in results.values())
        fig["errors"] = {r: results[r]["errors"] for r in ROLES if results[r]["errors"]}
        errors_by_kind: Counter[str] = Counter()
        for r in results.values():
            errors_by_kind.update(r["errors"])
        fig["errors_by_kind"] = dict(errors_by_kind)
        fig["error_samples"] = {
            kind: text for r in results.values() for kind, text in r["error_samples"].items()
        }
        fig["loadavg_mean_1m"] = round(sum(loads) / len(loads), 2)
        fig["loadavg_max_1m"] = round(max(loads), 2)
        fig["loadavg_end"] = list(os.getloadavg())
        fig["invariants"] = invariants
        fig["invariants_held"] = sum(v["held"] for v in invariants.values())
        fig["invariants_total"] = len(invariants)
        for name, value in invariants.items():
            _say(f"{'held  ' if value['held'] else 'BROKEN'} {name}: {value}")
        ok = True
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        try:
            if "lineage" in sys.modules:
                sys.modules["lineage"].disconnect()
        finally:
            LocalServer().stop()
            moto.stop()
            if ok:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                _say(f"left for a look: {tmp}")
    print(json.dumps(fig, default=str))
    return 0 if ok and fig["invariants_held"] == fig["invariants_total"] else 1


if __name__ == "__main__":
    sys.exit(main())
