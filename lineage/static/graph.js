/* Lineage graph code shared by view_lineage()'s static page and the explorer of `lineage serve`:
 * find nodes by text, collapse what hangs off a node, and export the drawn graph as PNG, SVG
 * and JSON. Plain script (no modules, no network): the static page inlines it.
 * Nodes and edges are vis-network DataSets as lineage builds them (lineage/_view.py: vis_node,
 * vis_edge); a node's id is its record's uid. */
(function (global) {
  "use strict";

  function neighbourMap(edges, visible) {
    var near = {};
    edges.forEach(function (e) {
      if (visible && (!visible[e.from] || !visible[e.to])) return;
      (near[e.from] = near[e.from] || []).push(e.to);
      (near[e.to] = near[e.to] || []).push(e.from);
    });
    return near;
  }

  /* The nodes that hang off `nodeId` as seen from `rootId`: every node (of `ids`) that no
   * longer connects to the root once `nodeId` is taken away. Edges count both ways. */
  function subtree(ids, edges, rootId, nodeId) {
    if (nodeId === rootId) return [];
    var visible = {};
    ids.forEach(function (id) { visible[id] = true; });
    var near = neighbourMap(edges, visible);
    var seen = {};
    seen[rootId] = true;
    seen[nodeId] = true;
    var queue = [rootId];
    while (queue.length) {
      var at = queue.shift();
      (near[at] || []).forEach(function (next) {
        if (!seen[next]) { seen[next] = true; queue.push(next); }
      });
    }
    return ids.filter(function (id) { return !seen[id]; });
  }

  function textOf(node) {
    return ((node.label || "") + "\n" + (node.title || "") + "\n" + node.id).toLowerCase();
  }

  /* Nodes whose drawn text, hover text or uid contains `text` (case-insensitive). */
  function find(nodes, text) {
    var wanted = (text || "").trim().toLowerCase();
    if (!wanted) return [];
    return nodes.get({ filter: function (n) { return !n.hidden && textOf(n).indexOf(wanted) >= 0; } })
      .map(function (n) { return n.id; });
  }

  function attachSearch(network, nodes, input, out) {
    var timer = null;
    function run() {
      var ids = find(nodes, input.value);
      network.selectNodes(ids);
      if (ids.length) network.fit({ nodes: ids, animation: false });
      if (out) out.textContent = input.value.trim() ? ids.length + " found" : "";
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(run, 120);
    });
    input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") run(); });
    return run;
  }

  /* Double-click a node: hide what hangs off it (seen from the focus); again: show it. */
  function attachCollapse(network, nodes, edges, rootId) {
    var hiddenBy = {};
    function visibleIds() {
      return nodes.get({ filter: function (n) { return !n.hidden; } }).map(function (n) { return n.id; });
    }
    function toggle(nodeId) {
      var node = nodes.get(nodeId);
      if (!node) return;
      if (hiddenBy[nodeId]) {
        var shown = hiddenBy[nodeId];
        delete hiddenBy[nodeId];
        var still = {};
        Object.keys(hiddenBy).forEach(function (k) { hiddenBy[k].forEach(function (id) { still[id] = true; }); });
        nodes.update(shown.filter(function (id) { return !still[id]; }).map(function (id) { return { id: id, hidden: false }; }));
        nodes.update({ id: nodeId, label: node.label.replace(/\n\(\+\d+ hidden\)$/, "") });
      } else {
        var ids = subtree(visibleIds(), edges.get(), rootId, nodeId);
        if (!ids.length) return;
        hiddenBy[nodeId] = ids;
        nodes.update(ids.map(function (id) { return { id: id, hidden: true }; }));
        nodes.update({ id: nodeId, label: node.label + "\n(+" + ids.length + " hidden)" });
      }
    }
    network.on("doubleClick", function (params) {
      if (params.nodes.length) toggle(params.nodes[0]);
    });
    return { toggle: toggle, collapsed: function () { return Object.keys(hiddenBy); } };
  }

  // -- export ------------------------------------------------------------------------------------
  function download(filename, blob) {
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
  }

  function pngBlob(network) {
    var canvas = network.canvas.frame.canvas;
    var data = atob(canvas.toDataURL("image/png").split(",")[1]);
    var bytes = new Uint8Array(data.length);
    for (var i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i);
    return new Blob([bytes], { type: "image/png" });
  }

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function styleOf(node, groups) {
    var group = (groups && groups[node.group]) || {};
    var color = Object.assign({}, group.color || {}, node.color || {});
    return {
      shape: node.shape || group.shape || "box",
      fill: color.background || "#ffffff",
      stroke: color.border || "#374151",
      width: node.borderWidth || 1.5,
      dashed: !!(group.shapeProperties && group.shapeProperties.borderDashes)
    };
  }

  /* The drawn graph as a standalone SVG: nodes where vis-network placed them, with their
   * registry's colours and text, and edges as arrows. */
  function svgText(network, nodes, edges, groups) {
    var ids = nodes.get({ filter: function (n) { return !n.hidden; } }).map(function (n) { return n.id; });
    var pos = network.getPositions(ids);
    var boxes = {};
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    ids.forEach(function (id) {
      var b = network.getBoundingBox(id);
      boxes[id] = b;
      minX = Math.min(minX, b.left); minY = Math.min(minY, b.top);
      maxX = Math.max(maxX, b.right); maxY = Math.max(maxY, b.bottom);
    });
    if (!ids.length) { minX = minY = 0; maxX = maxY = 10; }
    var pad = 20;
    var parts = [];
    parts.push('<svg xmlns="http://www.w3.org/2000/svg" viewBox="' + (minX - pad) + " " + (minY - pad) +
      " " + (maxX - minX + 2 * pad) + " " + (maxY - minY + 2 * pad) + '" font-family="Helvetica, Arial, sans-serif">');
    parts.push('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4b5563"/></marker></defs>');
    edges.get().forEach(function (e) {
      var a = pos[e.from], b = pos[e.to];
      if (!a || !b) return;
      var color = typeof e.color === "string" ? e.color : (e.color && e.color.color) || "#4b5563";
      var dash = e.dashes && e.dashes.length ? ' stroke-dasharray="' + e.dashes.join(" ") + '"' : "";
      var end = boxes[e.to];
      var tx = b.x, ty = b.y;
      if (end) {  // stop at the target's box edge, so the arrow head shows
        var dx = b.x - a.x, dy = b.y - a.y;
        var sx = dx ? (end.right - end.left) / 2 / Math.abs(dx) : Infinity;
        var sy = dy ? (end.bottom - end.top) / 2 / Math.abs(dy) : Infinity;
        var s = Math.min(sx, sy, 1);
        tx = b.x - dx * s; ty = b.y - dy * s;
      }
      parts.push('<line class="edge" x1="' + a.x + '" y1="' + a.y + '" x2="' + tx + '" y2="' + ty +
        '" stroke="' + esc(color) + '" stroke-width="1.2"' + dash + ' marker-end="url(#arrow)"/>');
    });
    ids.forEach(function (id) {
      var n = nodes.get(id), b = boxes[id], st = styleOf(n, groups);
      var w = b.right - b.left, h = b.bottom - b.top;
      var dash = st.dashed ? ' stroke-dasharray="4 3"' : "";
      var common = ' fill="' + esc(st.fill) + '" stroke="' + esc(st.stroke) + '" stroke-width="' + st.width + '"' + dash;
      if (st.shape === "ellipse") {
        parts.push('<ellipse class="node" data-id="' + esc(id) + '" cx="' + (b.left + w / 2) + '" cy="' + (b.top + h / 2) +
          '" rx="' + w / 2 + '" ry="' + h / 2 + '"' + common + "/>");
      } else {
        parts.push('<rect class="node" data-id="' + esc(id) + '" x="' + b.left + '" y="' + b.top + '" width="' + w +
          '" height="' + h + '" rx="' + (st.shape === "database" ? 8 : 3) + '"' + common + "/>");
      }
      var lines = String(n.label || "").split("\n");
      lines.forEach(function (line, i) {
        var y = b.top + h / 2 + (i - (lines.length - 1) / 2) * 15 + 4;
        parts.push('<text x="' + (b.left + w / 2) + '" y="' + y + '" font-size="12" text-anchor="middle" fill="#111827">' +
          esc(line) + "</text>");
      });
    });
    parts.push("</svg>");
    return parts.join("\n");
  }

  /* The drawn graph as JSON: visible nodes (uid, text, registry, position) and edges. */
  function jsonText(network, nodes, edges, extra) {
    var shown = nodes.get({ filter: function (n) { return !n.hidden; } });
    var pos = network.getPositions(shown.map(function (n) { return n.id; }));
    var visible = {};
    shown.forEach(function (n) { visible[n.id] = true; });
    var out = Object.assign({}, extra || {}, {
      nodes: shown.map(function (n) {
        return { id: n.id, label: n.label, group: n.group, title: n.title,
                 x: pos[n.id] && pos[n.id].x, y: pos[n.id] && pos[n.id].y };
      }),
      edges: edges.get().filter(function (e) { return visible[e.from] && visible[e.to]; })
        .map(function (e) { return { from: e.from, to: e.to, title: e.title, label: e.label }; })
    });
    return JSON.stringify(out, null, 2);
  }

  global.LineageGraph = {
    subtree: subtree,
    find: find,
    attachSearch: attachSearch,
    attachCollapse: attachCollapse,
    download: download,
    pngBlob: pngBlob,
    svgText: svgText,
    jsonText: jsonText
  };
})(window);
