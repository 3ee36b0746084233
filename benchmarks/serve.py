"""The lineage explorer (`lineage serve`) at 100k records: API latency, start-up, the first paint
of a 10,000-member collection in headless Chromium, and the server's memory over 1,000 calls.

    python benchmarks/serve.py              # ~100k records (125 lanes x 100 steps) + 10k members
    python benchmarks/serve.py --quick      # ~5k records (6 lanes) + 500 members
    python benchmarks/serve.py --no-browser # without the Chromium part

The graph is `benchmarks/lineage.py`'s (lanes of runs with fan-in and fan-out; 100,128 records)
plus a collection of 10,000 of its artifacts (`CONTAINS {position}`) and a second version of it
(one member dropped, one appended), written in bulk. Then `python -m lineage serve` runs as a
separate process against it (as a user starts it), and:

- start-up: from spawning the process to the first answer of `/api/health` (Neo4j is up);
- every API call over HTTP (httpx, keep-alive), `--repeats` times after `--warmup` calls: p50 and
  p95 per call (goal: every p95 <= 50 ms);
- the explorer opening the 10,000-member collection in a fresh headless Chromium context, five
  times: the time from navigation to the first drawing of the graph (`performance.mark` in
  app.js; goal <= 1 s) and the longest task the page ran (a `PerformanceObserver` of `longtask`;
  goal: none over 200 ms);
- memory: the server's RSS after 100 calls and after 1,000 more, mixing every call (goal: flat).

Prints one line per figure and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_P95_MS = 50.0
GOAL_PAINT_MS = 1000.0
GOAL_LONG_TASK_MS = 200.0


def _say(message: str) -> None:
    print(f"[serve] {message}", flush=True)


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _lineage_bench() -> Any:
    """benchmarks/lineage.py, loaded under another name (`lineage` is the package)."""
    spec = importlib.util.spec_from_file_location(
        "lineage_graph_bench", Path(__file__).resolve().parent / "lineage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(conn: Any, bench: Any, lanes: int, steps: int, members: int, namespace: str) -> dict:
    graph = bench.make_graph(lanes, steps, 0, namespace)
    t0 = time.perf_counter()
    bench.build_lineage(conn, graph)
    raw = [a[0] for a in graph["artifacts"] if "/x" in a[1]]
    chosen = raw[: members + 1]
    v1, v2 = chosen[:members], chosen[1 : members + 1]
    rng = random.Random(f"serve:{namespace}")
    stem = "".join(rng.choice(bench.ALPHABET) for _ in range(16))
    uids = [stem + "0000", stem + "0001"]
    key = f"{namespace}big/collection"
    bench.write_graph(
        conn,
        {
            "Collection": [
                {"uid": uids[0], "key": key, "version": "1", "is_latest": False,
                 "description": f"{members:,} members"},
                {"uid": uids[1], "key": key, "version": "2",
                 "description": f"{members:,} members, one replaced"},
            ]
        },
        [("REVISES", "Collection", uids[1], "Collection", uids[0])],
    )  # fmt: skip
    for uid, ids in zip(uids, (v1, v2)):
        # Only this benchmark writes memberships in bulk outside the record API.
        conn.write(
            lambda tx, uid=uid, ids=ids: tx.run(
                "MATCH (c:Collection {uid: $uid}) UNWIND range(0, size($m) - 1) AS i "
                "MATCH (a:Artifact {uid: $m[i]}) CREATE (c)-[:CONTAINS {position: i}]->(a)",
                uid=uid,
                m=ids,
            ).consume()
        )
    rows = conn.read("MATCH (t:Transform) WITH t ORDER BY t.key RETURN t.uid AS uid LIMIT 1", {})
    a0 = next(a[0] for a in graph["artifacts"] if a[1] == f"{namespace}lane0/a0.txt")
    some_run = graph["runs"][len(graph["runs"]) // 2][0] + "0000"
    return {
        "build_s": round(time.perf_counter() - t0, 1),
        "records": graph["n_nodes"] + 2,
        "collection": uids[1],
        "collection_v1": uids[0],
        "members": members,
        "deepest": graph["deepest"],
        "a0": a0,
        "run": some_run,
        "transform": rows[0]["uid"],
        "namespace": namespace,
    }


def calls(data: dict) -> dict[str, tuple[str, str, dict | None]]:
    """name -> (method, path, params or JSON body)."""
    c, deep, a0 = data["collection"], data["deepest"], data["a0"]
    ns = data["namespace"]
    return {
        "health": ("GET", "/api/health", None),
        "search uid prefix": ("GET", "/api/search", {"q": deep[:8]}),
        "search key (125 hits)": ("GET", "/api/search", {"q": f"{ns}lane7/x9"}),
        "search broad (capped)": ("GET", "/api/search", {"q": "lane"}),
        "search nothing": ("GET", "/api/search", {"q": "no-such-thing"}),
        "search run name": ("GET", "/api/search", {"q": "main 3/17", "registry": "Run"}),
        "record: artifact": ("GET", f"/api/records/{deep}", None),
        "record: 10k collection": ("GET", f"/api/records/{c}", None),
        "record: run": ("GET", f"/api/records/{data['run']}", None),
        "record: transform (12,500 runs)": ("GET", f"/api/records/{data['transform']}", None),
        "neighbours: 10k collection": ("GET", f"/api/records/{c}/neighbours", None),
        "neighbours: members at offset 5,000": (
            "GET", f"/api/records/{c}/neighbours",
            {"type": "CONTAINS", "direction": "out", "offset": 5000, "limit": 25},
        ),
        "neighbours: transform runs page": (
            "GET", f"/api/records/{data['transform']}/neighbours",
            {"type": "EXECUTES", "direction": "in", "offset": 10000, "limit": 25},
        ),
        "neighbours of 25 records": (
            "GET", "/api/neighbours", {"uid": [deep, a0, c, data["run"], data["transform"]] * 5},
        ),
        "path: 200 edges": ("GET", "/api/path", {"source": deep, "target": a0}),
        "path: none": ("GET", "/api/path", {"source": a0, "target": c}),
        "diff: 10k collection versions": ("GET", f"/api/records/{c}/diff", None),
        "cypher: count runs": (
            "POST", "/api/cypher", {"query": "MATCH (r:Run) RETURN count(r) AS runs"},
        ),
        "cypher: 25 rows with nodes": (
            "POST", "/api/cypher",
            {"query": "MATCH (a:Artifact)-[r:GENERATED_BY]->(x:Run) RETURN a, r, x LIMIT 25"},
        ),
    }  # fmt: skip


def _call(client: Any, method: str, path: str, params: dict | None) -> Any:
    if method == "POST":
        return client.post(path, json=params)
    return client.get(path, params=params)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int, env: dict) -> tuple[subprocess.Popen, float]:
    import httpx

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lineage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"lineage serve exited: {proc.stdout.read() if proc.stdout else ''}")
        if time.perf_counter() - t0 > 60:
            raise RuntimeError("lineage serve did not answer within 60 s")
        time.sleep(0.02)


def measure_api(base: str, data: dict, warmup: int, repeats: int) -> dict:
    import httpx

    out: dict = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, (method, path, params) in calls(data).items():
            for _ in range(warmup):
                response = _call(client, method, path, params)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {response.status_code} {response.text[:300]}")
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                _call(client, method, path, params).raise_for_status()
                times.append((time.perf_counter() - t0) * 1e3)
            out[name] = {
                "p50_ms": round(_pct(times, 50), 2),
                "p95_ms": round(_pct(times, 95), 2),
                "bytes": len(response.content),
            }
            _say(f"{name}: p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms")
    return out


def measure_memory(base: str, data: dict, pid: int, n: int) -> dict:
    import httpx

    todo = list(calls(data).values())
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(100):
            _call(client, *todo[i % len(todo)]).raise_for_status()
        before = rss_mb(pid)
        samples = []
        for i in range(n):
            _call(client, *todo[i % len(todo)]).raise_for_status()
            if i % 100 == 99:
                samples.append(round(rss_mb(pid), 1))
        after = rss_mb(pid)
    return {
        "calls": n,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(after - before, 1),
        "rss_every_100_mb": samples,
    }


def measure_browser(base: str, data: dict, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_browser import CHROMIUM
    from tests.test_serve_browser import SERVE_ARGS

    observer = """
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push(e.duration);
      }).observe({type: "longtask", buffered: true});
    """
    url = f"{base}/explore?focus={data['collection']}"
    paints, longest, nodes = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=SERVE_ARGS)
        try:
            for _ in range(rounds):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.add_init_script(observer)
                page.goto(url)
                deadline = time.monotonic() + 30
                while not page.evaluate("() => Boolean(window.explorer && window.explorer.drawn)"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the explorer did not draw within 30 s")
                    page.wait_for_timeout(20)
                page.wait_for_timeout(500)  # let any late long task be observed
                mark = page.evaluate(
                    "() => performance.getEntriesByName('lineage-first-paint')[0].startTime"
                )
                tasks = page.evaluate("() => window.__longTasks")
                nodes.append(page.evaluate("() => explorer.nodes.length"))
                paints.append(round(mark, 1))
                longest.append(round(max(tasks, default=0.0), 1))
                context.close()
        finally:
            browser.close()
    _say(f"first paint {paints} ms; longest task {longest} ms; nodes drawn {nodes}")
    return {
        "rounds": rounds,
        "first_paint_ms": paints,
        "first_paint_median_ms": statistics.median(paints),
        "first_paint_max_ms": max(paints),
        "longest_task_ms": longest,
        "longest_task_max_ms": max(longest),
        "nodes_drawn": nodes[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="~5k records, 500 members")
    parser.add_argument("--lanes", type=int, default=None, help="default 125 (--quick: 6)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--members", type=int, default=None, help="default 10,000 (--quick: 500)")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--memory-calls", type=int, default=1000)
    parser.add_argument("--browser-rounds", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--tmp-dir", type=Path, default=None)
    args = parser.parse_args()
    lanes = args.lanes or (6 if args.quick else 125)
    members = args.members or (500 if args.quick else 10_000)
    if lanes * args.steps <= members:
        parser.error("--members must not exceed the raw artifacts (lanes x steps)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))
    from _lineage_env import database_note, free_port, run_namespace, scratch_lineage

    import lineage as ln
    from graph.server import default_install_dir

    bench = _lineage_bench()
    namespace = run_namespace()
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-serve-", dir=args.tmp_dir))
    fig: dict = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
    }
    ok = False
    with scratch_lineage(tmp, default_install_dir(), _say):
        instance = ln.connect()
        fig["neo4j"] = f"{instance.server_version} {instance.server_edition}"
        fig["database"] = database_note(namespace)
        data = build(instance.connection, bench, lanes, args.steps, members, namespace)
        instance.connection.run("CALL db.awaitIndexes(300)")
        _say(f"built {data['records']} records and a {members:,}-member collection "
             f"in {data['build_s']} s")  # fmt: skip
        fig.update(records=data["records"], members=members, build_s=data["build_s"])
        env = dict(os.environ)
        env["NEO4J_URI"] = instance.connection.settings.uri
        port = free_port()
        proc, startup = start_server(port, env)
        fig["startup_s"] = round(startup, 2)
        _say(f"lineage serve answered {startup:.2f} s after it was started")
        base = f"http://127.0.0.1:{port}"
        try:
            fig["api"] = measure_api(base, data, args.warmup, args.repeats)
            worst = max(fig["api"].items(), key=lambda kv: kv[1]["p95_ms"])
            fig["api_worst_p95"] = {"call": worst[0], "p95_ms": worst[1]["p95_ms"]}
            fig["api_p95_goal_met"] = worst[1]["p95_ms"] <= GOAL_P95_MS
            fig["memory"] = measure_memory(base, data, proc.pid, args.memory_calls)
            _say(f"memory: {fig['memory']}")
            if not args.no_browser:
                fig["browser"] = measure_browser(base, data, args.browser_rounds)
                fig["browser"]["paint_goal_met"] = (
                    fig["browser"]["first_paint_max_ms"] <= GOAL_PAINT_MS
                )
                fig["browser"]["long_task_goal_met"] = (
                    fig["browser"]["longest_task_max_ms"] <= GOAL_LONG_TASK_MS
                )
            ok = True
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    fig["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    fig["goals"] = {
        "api_p95_ms": GOAL_P95_MS,
        "first_paint_ms": GOAL_PAINT_MS,
        "long_task_ms": GOAL_LONG_TASK_MS,
        "startup_s": 2.0,
    }
    print(json.dumps(fig))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
