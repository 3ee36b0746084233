"""The explorer (`lineage serve`) in a real browser: Debian's Chromium driven by playwright, with
networking disabled except the loopback address the explorer listens on, against real Neo4j.

search -> record page -> explorer -> expand -> collapse -> depth -> shortest path -> export
(the PNG, SVG and JSON files are checked); a permalink reloads the same view; the "+N more" node
pages through a 10,000-member collection; the static `view_lineage()` page finds and collapses.
Every request the pages make must go to the explorer itself (or stay in the page: data:, blob:).
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import graph.records as gr
import lineage as ln
from lineage._instance import current
from tests.test_browser import ARGS, CHROMIUM, LOCAL_SCHEMES, _browser_or_fail, lineage_page
from tests.test_serve import World, world

__all__ = ["lineage_page", "world"]  # fixtures used here

# The shared browser flags, with the loopback address let through: the explorer is a server.
SERVE_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
    if a.startswith("--host-resolver-rules")
    else a
    for a in ARGS
]
READY = "window.explorer && window.explorer.ready && window.explorer.idle()"


@pytest.fixture
def explorer(world: World) -> Iterator[Any]:
    running = ln.serve(port=0)
    yield running
    running.stop()


class Browser:
    """One headless Chromium page, recording every request and every page error."""

    def __init__(self, pw: Any, downloads: Path) -> None:
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=SERVE_ARGS)
        self.context = self.browser.new_context(
            viewport={"width": 1400, "height": 900}, accept_downloads=True
        )
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.downloads = downloads
        self.page = self.new_page()

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        return page

    def close(self) -> None:
        self.browser.close()

    def remote(self, base: str) -> list[str]:
        return [u for u in self.requests if not u.startswith((base, *LOCAL_SCHEMES))]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    sync_playwright = _browser_or_fail()
    with sync_playwright() as pw:
        b = Browser(pw, tmp_path / "downloads")
        try:
            yield b
        finally:
            b.close()


def until(page: Any, expression: str, timeout: float = 60.0) -> None:
    """Wait until `expression` is true in the page. Polled with `evaluate` (the DevTools
    protocol): `wait_for_function` evaluates strings in the page, which its CSP forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(50)


def wait_ready(page: Any, renders: int = 0) -> None:
    until(page, f"{READY} && (window.explorer.renders || 0) > {renders}")


def renders(page: Any) -> int:
    return page.evaluate("window.explorer.renders || 0")


def shown(page: Any) -> list[str]:
    """The records drawn (not hidden), sorted: "+N more" nodes are listed by their id too."""
    return sorted(page.evaluate("explorer.nodes.get({filter: n => !n.hidden}).map(n => n.id)"))


def point(page: Any, node_id: str) -> dict[str, float]:
    """Where a node is drawn, in page coordinates (after fitting the view)."""
    return page.evaluate(
        """(id) => {
            const n = explorer.network;
            const d = n.canvasToDOM(n.getPositions([id])[id]);
            const r = n.body.container.getBoundingClientRect();
            return {x: r.left + d.x, y: r.top + d.y};
        }""",
        node_id,
    )


def fit(page: Any) -> None:
    page.evaluate("explorer.network.fit({animation: false})")
    page.wait_for_timeout(100)


def double_click(page: Any, node_id: str) -> None:
    before = renders(page)
    fit(page)
    p = point(page, node_id)
    page.mouse.dblclick(p["x"], p["y"])
    wait_ready(page, before)


def download(b: Browser, button: str) -> Path:
    with b.page.expect_download() as info:
        b.page.click(button)
    target = b.downloads / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_search_open_expand_collapse_path_export(
    explorer: Any, browser: Browser, world: World
) -> None:
    b, page, base = browser, browser.page, explorer.url
    # search
    page.goto(base)
    page.fill("#search-form input[type=search]", "weights")
    page.press("#search-form input[type=search]", "Enter")
    page.wait_for_selector(f"tr.hit[data-uid='{world.model.uid}']")
    assert page.inner_text("#result-count") == "1\u20131 of 1"
    # open its record page
    page.click(f"tr.hit[data-uid='{world.model.uid}'] a[href^='/record/']")
    until(page, "window.pageReady === true")
    assert "model/weights.txt" in page.inner_text("h1")
    assert world.train.uid in page.inner_text("section.group[data-group='made by']")
    assert "member of (2)" in page.inner_text("#related")
    # the explorer, from the record page
    page.click("#explore-link")
    wait_ready(page)
    assert page.evaluate("explorer.state.focus") == world.model.uid
    first = shown(page)
    assert set(first) == {world.model.uid, world.train.uid, world.bundle.uid, world.bundle2.uid}
    # expand the run: its inputs and transform appear
    double_click(page, world.train.uid)
    expanded = shown(page)
    assert world.clean.uid in expanded and world.train.transform.uid in expanded
    assert page.evaluate("explorer.state.expanded") == [world.model.uid, world.train.uid]
    # collapse it again: what hung off it goes
    double_click(page, world.train.uid)
    assert shown(page) == first
    # depth 5 reaches the raw data; then the shortest path between the model and it
    before = renders(page)
    page.select_option("#depth", "5")
    wait_ready(page, before)
    assert world.raw.uid in shown(page)
    fit(page)
    p = point(page, world.model.uid)
    page.mouse.click(p["x"], p["y"])
    q = point(page, world.raw.uid)
    page.keyboard.down("Control")
    page.mouse.click(q["x"], q["y"])
    page.keyboard.up("Control")
    assert sorted(page.evaluate("explorer.network.getSelectedNodes()")) == sorted(
        [world.model.uid, world.raw.uid]
    )
    before = renders(page)
    page.click("#path")
    wait_ready(page, before)
    assert page.inner_text("#status") == "path of 4 edge(s), upstream"
    on_path = page.evaluate("explorer.edges.get({filter: e => e.path}).map(e => e.id)")
    assert len(on_path) == 4
    assert f"path={world.model.uid},{world.raw.uid}" in page.url.replace("%2C", ",")
    # export the view three ways
    png = download(b, "#export-png")
    assert png.name == f"lineage-{world.model.uid}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    svg = download(b, "#export-svg")
    tree = ET.parse(svg)
    ns = "{http://www.w3.org/2000/svg}"
    drawn = {el.get("data-id") for el in tree.iter() if el.get("class") == "node"}
    assert drawn == set(shown(page))
    assert len([el for el in tree.iter(f"{ns}line")]) >= len(drawn) - 1
    assert "model/weights.txt" in svg.read_text()
    data = json.loads(download(b, "#export-json").read_text())
    assert data["focus"] == world.model.uid and data["depth"] == 5
    assert {n["id"] for n in data["nodes"]} == set(shown(page))
    assert all(isinstance(n["x"], (int, float)) for n in data["nodes"])
    assert len(data["edges"]) >= len(data["nodes"]) - 1
    assert b.errors == []
    assert b.remote(base) == []


def test_a_permalink_reloads_the_same_view(explorer: Any, browser: Browser, world: World) -> None:
    page, base = browser.page, explorer.url
    page.goto(f"{base}explore?focus={world.clean.uid}")
    wait_ready(page)
    double_click(page, world.train.uid)
    double_click(page, world.prep.uid)
    page.uncheck("input.registry[value='Transform']")
    page.check("#latest")
    page.wait_for_timeout(200)
    view = shown(page)
    hidden = sorted(page.evaluate("explorer.nodes.get({filter: n => n.hidden}).map(n => n.id)"))
    assert world.train.transform.uid in hidden and world.raw.uid in hidden  # raw: not latest
    link = page.url
    assert "hide=Transform" in link and "latest=1" in link and "expand=" in link
    again = browser.new_page()
    again.goto(link)
    wait_ready(again)
    assert shown(again) == view
    assert again.url == link
    assert browser.errors == []


def _big_collection(n: int) -> ln.Collection:
    rows = [
        gr.NewRecord({"uid": f"Q{i:015d}0000", "key": f"big/{i:05d}.txt", "hash": f"big-{i}",
                      "suffix": ".txt", "size": 1})
        for i in range(n)
    ]  # fmt: skip
    gr.create_many(current().connection, "Artifact", rows)
    members = ln.Artifact.filter(key__startswith="big/").order_by("key").to_list()
    return ln.Collection(members, key="big").save()


def test_more_node_pages_a_ten_thousand_member_collection(explorer: Any, browser: Browser) -> None:
    big = _big_collection(10_000)
    page, base = browser.page, explorer.url
    page.goto(f"{base}explore?focus={big.uid}")
    wait_ready(page)
    more = f"more|{big.uid}|CONTAINS|out"
    members = [i for i in shown(page) if i != big.uid and not i.startswith("more|")]
    assert len(members) == 25 and more in shown(page)
    assert page.evaluate(f"explorer.nodes.get('{more}').label") == "+9975 more\nmembers"
    before = renders(page)
    fit(page)
    p = point(page, more)
    page.mouse.click(p["x"], p["y"])
    wait_ready(page, before)
    members = sorted(i for i in shown(page) if i != big.uid and not i.startswith("more|"))
    assert members == [f"Q{i:015d}0000" for i in range(50)]  # the next 25, in order
    assert page.evaluate(f"explorer.nodes.get('{more}').label") == "+9950 more\nmembers"
    assert f"more={big.uid}.CONTAINS.out.1" in page.url
    again = browser.new_page()
    again.goto(page.url)
    wait_ready(again)
    assert shown(again) == shown(page)
    assert browser.errors == []
    assert browser.remote(base) == []


def test_record_page_pages_members_and_diffs(explorer: Any, browser: Browser, world: World) -> None:
    page = browser.page
    page.goto(f"{explorer.url}record/{world.bundle2.uid}")
    until(page, "window.pageReady === true")
    timeline = page.inner_text("ul.timeline")
    assert "latest" in timeline
    page.click("button.diff-button")
    page.wait_for_selector("div.diff")
    assert "raw/cells.csv" in page.inner_text("div.diff")
    members = page.inner_text("section.group[data-group='members']")
    assert members.index("clean/cells.csv") < members.index("raw/cells.csv")
    assert browser.errors == []


def test_console_renders_a_table_and_a_graph_and_refuses_writes(
    explorer: Any, browser: Browser, world: World
) -> None:
    page = browser.page
    page.goto(f"{explorer.url}cypher")
    page.fill("#query", "MATCH p = (:Run)-[:USED]->(:Artifact) RETURN p")
    page.click("#run")
    until(page, "window.cypherDone === true")
    assert "2 row(s)" in page.inner_text("#cypher-summary")
    assert page.evaluate("window.cypherNetwork.body.data.nodes.length") == 4
    assert page.locator("#cypher-table tr").count() == 3
    page.evaluate("window.cypherDone = false")
    page.fill("#query", "MATCH (n) DETACH DELETE n")
    page.click("#run")
    until(page, "window.cypherDone === true")
    assert "only reads" in page.inner_text("#cypher-out .error")
    assert ln.Artifact.filter().count() > 0
    assert browser.errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]


def test_static_page_finds_and_collapses(
    lineage_page: tuple[Path, int, int], browser: Browser
) -> None:
    page_path, n_nodes, _ = lineage_page
    page = browser.page
    page.goto(page_path.as_uri())
    until(page, "window.lineageDrawn === true")
    page.fill("#search", "weights")
    until(page, "document.getElementById('found').textContent === '1 found'")
    selected = page.evaluate("network.getSelectedNodes()")
    assert selected == [page.evaluate("window.lineageFocus")]  # model/weights.txt is the focus
    page.fill("#search", "cells.csv")
    until(page, "document.getElementById('found').textContent === '2 found'")
    # collapse the run that made clean/cells.csv: its transform, which hangs only off it, goes
    prep = page.evaluate(
        "nodes.get({filter: n => n.group === 'Run' && n.label.indexOf('prep.py') === 0})[0].id"
    )
    page.evaluate("network.fit({animation: false})")
    p = page.evaluate(
        """(id) => { const d = network.canvasToDOM(network.getPositions([id])[id]);
                     const r = network.body.container.getBoundingClientRect();
                     return {x: r.left + d.x, y: r.top + d.y}; }""",
        prep,
    )
    page.mouse.dblclick(p["x"], p["y"])
    page.wait_for_timeout(300)
    hidden = page.evaluate("nodes.get({filter: n => n.hidden}).map(n => n.label)")
    assert hidden == ["prep.py"]
    assert "hidden)" in page.evaluate(f"nodes.get('{prep}').label")
    page.mouse.dblclick(p["x"], p["y"])
    page.wait_for_timeout(300)
    assert page.evaluate("nodes.get({filter: n => n.hidden}).length") == 0
    assert page.evaluate("nodes.length") == n_nodes
    assert browser.errors == []
    assert [u for u in browser.requests if not u.startswith(LOCAL_SCHEMES)] == []
