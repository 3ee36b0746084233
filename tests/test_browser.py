"""`view_lineage()`'s page in a real browser: headless Chromium, no network.

Debian's `/usr/bin/chromium` (apt package `chromium`) is driven by the `playwright` package from
PyPI, which never downloads a browser here. The browser runs with networking disabled (no DNS,
an unroutable proxy); every request the page makes is recorded and must stay on the machine
(`file:`, `data:`, `blob:`). The test waits for vis-network to draw, reads the drawn graph's
node and edge counts from the page's global `network`, and saves a screenshot.

Without a Chromium the test fails under CI (`CI` set) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import lineage as ln
from tests.conftest import prep_and_train

CHROMIUM = os.environ.get("LINEAGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--proxy-server=127.0.0.1:9",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def _browser_or_fail():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install playwright)"
        sync_playwright = None
    if missing is None and not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs Chromium and playwright under CI: {missing}")
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture
def lineage_page(storage: Path, tmp_path: Path) -> tuple[Path, int, int]:
    """A small pipeline with a collection and a new version; its page, node and edge counts."""
    raw, clean, model = prep_and_train(storage, 'quote " and <b>tag</b>')
    ln.Feature(name="accuracy", dtype=float).save()
    model.features.add_values({"accuracy": 0.93})  # shown in the model's tooltip
    bundle = ln.Collection([clean, model], key="bundle").save()
    bundle.append(raw).save()
    nodes, edges = ln.lineage.graph(model)
    page = model.view_lineage(path=tmp_path / "page" / "lineage.html")
    return page, len(nodes), len(edges)


def test_page_draws_offline_in_chromium(
    lineage_page: tuple[Path, int, int], tmp_path: Path
) -> None:
    sync_playwright = _browser_or_fail()
    page_path, n_nodes, n_edges = lineage_page
    assert n_nodes >= 8 and n_edges >= 8
    requests: list[str] = []
    errors: list[str] = []
    shot = tmp_path / "lineage.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("window.lineageDrawn === true", timeout=30_000)
            drawn = page.evaluate(
                """() => ({
                    nodes: network.body.data.nodes.length,
                    edges: network.body.data.edges.length,
                    visible: network.body.nodeIndices.length,
                    canvas: document.querySelector('#lineage canvas') !== null,
                    selected: network.getSelectedNodes(),
                    focus: window.lineageFocus,
                })"""
            )
            page.screenshot(path=str(shot))
            # Hover the focus (the model): vis-network's tooltip lists its feature values.
            box = page.evaluate(
                """() => {
                    const rect = document.querySelector('#lineage canvas').getBoundingClientRect();
                    const p = network.canvasToDOM(network.getPosition(window.lineageFocus));
                    return {x: rect.left + p.x, y: rect.top + p.y};
                }"""
            )
            page.mouse.move(box["x"], box["y"])
            page.wait_for_selector("div.vis-tooltip", state="visible", timeout=10_000)
            tooltip = page.inner_text("div.vis-tooltip")
        finally:
            browser.close()

    assert errors == []
    assert drawn["canvas"]
    assert drawn["nodes"] == n_nodes and drawn["visible"] == n_nodes
    assert drawn["edges"] == n_edges
    assert drawn["selected"] == [drawn["focus"]]
    assert "model/weights.txt" in tooltip and "features:\n  accuracy: 0.93" in tooltip
    assert requests, "the page itself was never requested"
    remote = [url for url in requests if not url.startswith(LOCAL_SCHEMES)]
    assert remote == []
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
