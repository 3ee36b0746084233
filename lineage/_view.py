"""`view_lineage()`: the provenance graph of a record as a self-contained, offline HTML page.

One traversal query (`graph.lineage`) gives the nodes and edges; `vis_node`/`vis_edge` turn them
into vis-network nodes and edges (each record's style is its registry's group in `OPTIONS`); the
page is our own small template with vis-network's JavaScript and CSS inlined from the copy pyvis
ships (`pyvis/lib/vis-9.1.2/`), and the graph code it shares with the explorer of
`lineage serve` (`static/graph.js`: find a node, collapse what hangs off one). pyvis's own
templates link Bootstrap (and, except `in_line`, vis-network) from CDNs, so they are not used:
the page loads nothing from anywhere and works without a network. The explorer draws its nodes
with the same `vis_node`, `vis_edge` and `OPTIONS`.

User text (keys, descriptions, versions) reaches the page only as JSON inside a script
(`<`, `>`, `&` escaped, so no `</script>` can end it early) or through `html.escape`;
vis-network draws labels on a canvas and shows tooltips with `innerText`, never as HTML.

Arrows point the way data flowed (inputs -> run -> outputs, members -> collection, old version ->
new version, transform -> run), the reverse of how the edges are stored, so the left-to-right
hierarchical layout reads as a pipeline from its sources to its results.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from graph.lineage import LineageGraph
from lineage import _lineage, _questions
from lineage._model import Model
from lineage._settings import settings
from lineage.errors import InvalidArgument

VIS_VERSION = "9.1.2"

# label -> vis-network node style
_STYLES: dict[str, dict[str, Any]] = {
    "Artifact": {
        "shape": "box",
        "color": {"background": "#e0f2fe", "border": "#0369a1",
                  "highlight": {"background": "#bae6fd", "border": "#0369a1"}},
    },
    "Collection": {
        "shape": "database",
        "color": {"background": "#fef3c7", "border": "#b45309",
                  "highlight": {"background": "#fde68a", "border": "#b45309"}},
    },
    "Run": {
        "shape": "ellipse",
        "color": {"background": "#eff2ff", "border": "#4f46e5",
                  "highlight": {"background": "#e0e7ff", "border": "#4f46e5"}},
    },
    "Transform": {
        "shape": "box",
        "shapeProperties": {"borderDashes": [4, 3]},
        "color": {"background": "#f3f4f6", "border": "#6b7280",
                  "highlight": {"background": "#e5e7eb", "border": "#6b7280"}},
    },
}  # fmt: skip
_FOCUS: dict[str, Any] = {
    "borderWidth": 4,
    "color": {"border": "#ea580c"},
    "font": {"bold": True, "size": 16},
}

# stored edge type -> how it is drawn (arrows follow the data flow: stored direction reversed)
_EDGE_STYLES: dict[str, dict[str, Any]] = {
    "GENERATED_BY": {"color": "#4b5563", "title": "generated"},
    "USED": {"color": "#4b5563", "title": "used as input"},
    "EXECUTES": {"color": "#9ca3af", "dashes": [2, 4], "title": "executes"},
    "CONTAINS": {"color": "#b45309", "dashes": [6, 4], "title": "member"},
    "HAS_META": {"color": "#b45309", "dashes": [2, 3], "title": "meta artifact", "label": "meta"},
    "REVISES": {"color": "#7c3aed", "dashes": [8, 3, 2, 3], "title": "new version",
                "label": "version"},
}  # fmt: skip

# vis-network's options for every lineage graph (the static page and the explorer): a record's
# style is its registry's group.
OPTIONS: dict[str, Any] = {
    "groups": _STYLES,
    "layout": {
        "hierarchical": {
            "enabled": True,
            "direction": "LR",
            "sortMethod": "directed",
            "shakeTowards": "roots",
            "levelSeparation": 230,
            "nodeSpacing": 80,
            "treeSpacing": 120,
        }
    },
    "physics": {"enabled": False},
    "interaction": {"hover": True, "tooltipDelay": 120, "navigationButtons": False},
    "nodes": {"font": {"face": "Helvetica, Arial, sans-serif", "size": 13}, "margin": 8},
    "edges": {
        "arrows": {"to": {"enabled": True, "scaleFactor": 0.6}},
        "smooth": {"enabled": True, "type": "cubicBezier", "forceDirection": "horizontal"},
        "font": {"size": 10, "align": "middle", "color": "#6b7280"},
        "width": 1.2,
    },
}

_MAX_LABEL = 42
_MAX_FEATURES = 20  # feature values listed in a node's tooltip


def _truncate(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def node_text(node: Mapping[str, Any], transform: str | None = None, twins: int = 1) -> str:
    """The text drawn in a node: its key (a run: its transform's key and start time), its
    version, or, where `twins` records of one family share the key, the end of its uid."""
    name = node["key"] or node["uid"]
    if node["label"] == "Run":
        title = transform or node.get("transform") or node["key"] or "run"
        when = _when(node["started_at"] or node["created_at"])
        return f"{_truncate(title)}\nrun {when}" if when else _truncate(title)
    text = _truncate(name)
    if node["version"]:
        text += f"\nversion {_truncate(node['version'], 20)}"
    elif twins > 1:  # versions of one family side by side
        text += f"\nuid \u2026{node['uid'][-4:]}"
    return text


def _labels(result: LineageGraph) -> dict[str, str]:
    """The text drawn in each node of a traversal; a run is named after its transform."""
    by_uid = {n["uid"]: n for n in result["nodes"]}
    transform_of = {
        e["source"]: by_uid[e["target"]]["key"]
        for e in result["edges"]
        if e["type"] == "EXECUTES" and e["target"] in by_uid
    }
    names: dict[tuple[str, str], int] = {}
    for node in result["nodes"]:
        key = (node["label"], node["key"] or node["uid"])
        names[key] = names.get(key, 0) + 1
    return {
        node["uid"]: node_text(
            node,
            transform_of.get(node["uid"]),
            names[(node["label"], node["key"] or node["uid"])],
        )
        for node in result["nodes"]
    }


def _title(node: Mapping[str, Any]) -> str:
    """Hover text: plain text (vis-network sets it with innerText)."""
    lines = [node["label"] + (" (this record)" if node.get("side") == "focus" else "")]
    name = "name" if node["label"] == "Run" else "key"
    for field, value in (
        (name, node["key"]),
        ("uid", node["uid"]),
        ("version", node["version"]),
        ("latest", {True: "yes", False: "no"}.get(node["is_latest"])),
        ("description", node["description"]),
        ("kind", node["kind"]),
        ("transform", node.get("transform")),
        ("status", node["status"]),
        ("started_at", _when(node["started_at"]) or None),
        ("created_at", _when(node["created_at"]) or None),
        ("branch", {0: "archive", -1: "trash"}.get(node["branch"])),
    ):
        if value is not None and value != "":
            lines.append(f"{field}: {_truncate(str(value), 200)}")
    values = node.get("features") or {}
    if values:
        lines.append("features:")
        shown = list(values.items())[:_MAX_FEATURES]
        lines += [f"  {name}: {_truncate(_feature_text(value), 120)}" for name, value in shown]
        if len(values) > _MAX_FEATURES:
            lines.append(f"  ... {len(values) - _MAX_FEATURES} more")
    return "\n".join(lines)


def _feature_text(value: Any) -> str:
    """A feature value as the tooltip shows it: lists joined, dates in ISO form."""
    if isinstance(value, list):
        return ", ".join(_feature_text(v) for v in value)
    if isinstance(value, datetime):
        return _when(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)


def vis_node(node: Mapping[str, Any], text: str | None = None, focus: bool = False) -> dict:
    """A record as a vis-network node: its uid as id, its registry as group (the style is the
    group's, `OPTIONS["groups"]`), its text and hover title; the focus drawn with a thick orange
    border. The explorer's nodes come from here too (`lineage serve`)."""
    out: dict[str, Any] = {
        "id": node["uid"],
        "group": node["label"],
        "label": text if text is not None else node_text(node),
        "title": _title(node),
    }
    if node["branch"] == -1:
        out["opacity"] = 0.45  # trashed: still listed (a collection's members), drawn faded
    if focus:
        color = json.loads(json.dumps(_STYLES[node["label"]]["color"]))  # a deep copy
        color["border"] = color["highlight"]["border"] = _FOCUS["color"]["border"]
        out.update(borderWidth=_FOCUS["borderWidth"], color=color, font=dict(_FOCUS["font"]))
    return out


def vis_edge(edge: Mapping[str, Any]) -> dict:
    """A provenance edge as a vis-network edge, drawn the way the data flowed: from the stored
    edge's target to its source."""
    style: dict[str, Any] = dict(_EDGE_STYLES[edge["type"]])
    if edge["type"] == "CONTAINS" and edge.get("position") is not None:
        style["label"] = f"#{edge['position']}"
        style["title"] = f"member #{edge['position']}"
    return {"from": edge["target"], "to": edge["source"], "arrows": "to", **style}


def build_network(result: LineageGraph) -> tuple[list[dict], list[dict]]:
    """The vis-network nodes and edges of a traversal: one node per record, one edge per
    provenance edge."""
    labels = _labels(result)
    nodes = [
        vis_node(node, labels[node["uid"]], focus=node["side"] == "focus")
        for node in result["nodes"]
    ]
    return nodes, [vis_edge(edge) for edge in result["edges"]]


STATIC = Path(__file__).resolve().parent / "static"  # the front end's own files (package data)


def vis_dir() -> Path:
    """The folder of pyvis's copy of vis-network (its JavaScript and CSS). Found, not imported:
    importing pyvis imports networkx and jinja2, a third of a second nothing here needs."""
    spec = importlib.util.find_spec("pyvis")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyvis is not installed; it ships the vis-network this page needs")
    return (
        Path(next(iter(spec.submodule_search_locations))).resolve() / "lib" / f"vis-{VIS_VERSION}"
    )


@lru_cache(maxsize=1)
def _vis_assets() -> tuple[str, str, str]:
    """vis-network's JavaScript and CSS from the copy inside the pyvis package, and the lineage
    graph code the static page shares with the explorer (`static/graph.js`)."""
    try:
        js = (vis_dir() / "vis-network.min.js").read_text(encoding="utf-8")
        css = (vis_dir() / "vis-network.css").read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeError(
            f"pyvis's copy of vis-network {VIS_VERSION} is missing ({exc}); reinstall pyvis 0.3.x"
        ) from None
    shared = (STATIC / "graph.js").read_text(encoding="utf-8")
    # None may end its <script>/<style> element early.
    assert "</script" not in (js + shared).lower() and "</style" not in css.lower()
    return js, css, shared


def json_for_script(value: Any) -> str:
    """JSON that is safe inside a <script> element, whatever strings it holds."""
    text = json.dumps(value, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:">
<title>{title}</title>
<style>{css}</style>
<style>
  html, body {{ margin: 0; height: 100%; font-family: Helvetica, Arial, sans-serif; }}
  #header {{ padding: 6px 12px; font-size: 13px; color: #374151; border-bottom: 1px solid #e5e7eb; }}
  #header b {{ color: #111827; }}
  #legend span {{ display: inline-block; margin-right: 14px; }}
  #legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px;
              vertical-align: -2px; border: 2px solid; border-radius: 2px; }}
  #find {{ float: right; }}
  #find input {{ width: 220px; font-size: 13px; padding: 2px 6px; }}
  #lineage {{ position: absolute; top: 58px; bottom: 0; left: 0; right: 0; }}
  div.vis-tooltip {{ white-space: pre; font-family: Menlo, Consolas, monospace; font-size: 12px; }}
</style>
</head>
<body>
<div id="header">
  <div id="find"><input id="search" type="search" placeholder="find a key, uid, version&hellip;">
    <span id="found"></span></div>
  <div><b>{heading}</b> &middot; {summary}</div>
  <div id="legend">
    <span><i style="background:#e0f2fe;border-color:#0369a1"></i>artifact</span>
    <span><i style="background:#fef3c7;border-color:#b45309"></i>collection</span>
    <span><i style="background:#eff2ff;border-color:#4f46e5;border-radius:6px"></i>run</span>
    <span><i style="background:#f3f4f6;border-color:#6b7280;border-style:dashed"></i>transform</span>
    <span><i style="background:#fff;border-color:#ea580c"></i>this record</span>
    <span>&middot; double-click a node to collapse or expand what hangs off it</span>
  </div>
</div>
<div id="lineage"></div>
<script>{js}</script>
<script>{shared}</script>
<script>
  var nodes = new vis.DataSet({nodes});
  var edges = new vis.DataSet({edges});
  var options = {options};
  var container = document.getElementById("lineage");
  var network = new vis.Network(container, {{nodes: nodes, edges: edges}}, options);
  window.lineageFocus = {focus};
  LineageGraph.attachSearch(network, nodes, document.getElementById("search"),
                            document.getElementById("found"));
  LineageGraph.attachCollapse(network, nodes, edges, window.lineageFocus);
  network.once("afterDrawing", function () {{
    network.selectNodes([window.lineageFocus]);
    window.lineageDrawn = true;
  }});
</script>
</body>
</html>
"""


def render_html(result: LineageGraph, record_name: str) -> str:
    """The whole page for one traversal result."""
    nodes, edges = build_network(result)
    js, css, shared = _vis_assets()
    counts: dict[str, int] = {}
    for node in result["nodes"]:
        counts[node["label"]] = counts.get(node["label"], 0) + 1
    summary = ", ".join(
        f"{n} {label.lower()}{'s' if n != 1 else ''}" for label, n in counts.items()
    )
    return _PAGE.format(
        title=html.escape(f"Lineage of {record_name}"),
        heading=html.escape(f"Lineage of {record_name}"),
        summary=html.escape(summary),
        css=css,
        js=js,
        shared=shared,
        nodes=json_for_script(nodes),
        edges=json_for_script(edges),
        options=json_for_script(OPTIONS),
        focus=json_for_script(result["focus"]),
    )


def _default_path(record: Model) -> Path:
    return Path(settings.cache_dir) / "lineage" / f"{record._label.lower()}_{record.uid}.html"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _display_inline(page: str) -> None:
    from IPython.display import HTML, display

    # srcdoc keeps the page self-contained (an IFrame(src=path) needs the notebook to serve it).
    display(HTML(
        f'<iframe srcdoc="{html.escape(page, quote=True)}" width="100%" height="620" '
        'style="border:1px solid #e5e7eb"></iframe>'
    ))  # fmt: skip


def view_lineage(
    record: Model,
    with_children: bool = True,
    depth: int | None = None,
    path: str | os.PathLike | None = None,
) -> Path:
    """Write the lineage page of `record` and return its path; shown inline in Jupyter."""
    if not isinstance(with_children, bool):
        raise InvalidArgument(f"with_children must be True or False, not {with_children!r}")
    result = _lineage.traverse(
        record,
        upstream=True,
        downstream=with_children,
        depth=depth,
        what="view_lineage()",
        features=True,
    )
    if record._label == "Run":
        name = f"Run {record.uid}"
    else:
        name = f"{type(record).__name__} {record.key or record.uid}"
    page = render_html(result, name)
    target = Path(path).expanduser() if path is not None else _default_path(record)
    if target.is_dir():
        target = target / _default_path(record).name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)  # never leave a half-written page where the last one was
    if _in_notebook():
        _display_inline(page)
    return target.resolve()


class HasLineage:
    """`view_lineage()` and `diff()` for the records that have provenance: Artifact, Collection,
    Run and Transform."""

    def diff(self, content: bool = True) -> _questions.Diff:
        """What changed since the previous version of this record (for a run: since the run of
        the same transform, any version, started just before it). `DoesNotExist` when there is
        none; `ln.lineage.diff(a, b)` compares any two records of one registry.

        Args:
            content: for artifacts, also compare what two parquet or h5ad files hold (read from
                their metadata, never their matrices).

        >>> v2 = collection.append(artifact3).save()
        >>> change = v2.diff()                      # against the version it revises
        >>> [m.key for m in change.added], change.size
        (['scrna/sample3.h5ad'], Change(old=2, new=3))
        """
        return _questions.diff_previous(self, content=content)  # type: ignore[arg-type]

    def view_lineage(
        self,
        with_children: bool = True,
        depth: int | None = None,
        path: str | os.PathLike | None = None,
    ) -> Path:
        """Write the provenance graph of this record to a self-contained HTML page.

        Its history (upstream) is what it was made from: for an artifact or collection the run
        that made it and that run's inputs, onwards, and a collection's members and the runs
        that made them; for a run its inputs; for a transform its earlier versions. With
        children, what was made from it (downstream) is shown too. The page works offline
        (vis-network is inlined), is shown inline in Jupyter, and its path is returned. Arrows
        follow the data: inputs -> run -> outputs.

        Args:
            with_children: also show what was made from it (downstream), not only its history.
            depth: how many runs to go in each direction (None: all).
            path: where to write the page (default: `ln.settings.cache_dir/lineage/`).

        >>> collection.view_lineage()
        PosixPath('.../lineage/collection_...0000.html')
        >>> artifact.view_lineage(with_children=False, depth=2, path="lineage.html")
        PosixPath('.../lineage.html')
        """
        return view_lineage(self, with_children=with_children, depth=depth, path=path)  # type: ignore[arg-type]
