/* The lineage explorer's pages (lineage serve): search, a record's page, the explorer and the
 * Cypher console. Everything comes from the server's JSON API (/api/...); user text reaches the
 * page only through textContent, never as HTML. Graph drawing and export are shared with the
 * static view_lineage() page (graph.js: LineageGraph). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);
  var main = document.getElementById("main");
  var PAGE = 25;  // records per page of a group; a fan-out above this becomes "+N more"

  // -- small helpers ------------------------------------------------------------------------------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) child.forEach(function (c) { if (c) node.appendChild(c); });
      else node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v === null || v === undefined || v === "") return;
      (Array.isArray(v) ? v : [v]).forEach(function (x) {
        parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(x));
      });
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  var inflight = 0;
  function api(path, params, body) {
    inflight++;
    var options = body ? { method: "POST", headers: { "content-type": "application/json" },
                           body: JSON.stringify(body) } : {};
    return fetch(path + query(params || {}), options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
        return data;
      });
    }).finally(function () { inflight--; });
  }

  function errorBox(err) { return el("div", { class: "error", text: String(err.message || err) }); }

  function nameOf(node) {
    if (node.key) return node.key;
    return node.label === "Run" && node.transform ? node.transform + " run" : node.uid;
  }

  function badge(node) { return el("span", { class: "badge " + node.label, text: node.label }); }

  function recordLink(node) {
    return el("a", { href: "/record/" + encodeURIComponent(node.uid), text: nameOf(node) });
  }

  function when(text) { return text ? text.replace("T", " ").slice(0, 19) : ""; }

  function markNav(name) {
    document.querySelectorAll("nav a").forEach(function (a) {
      if (a.getAttribute("data-nav") === name) a.className = "here";
    });
  }

  function setWhere(text) { document.getElementById("where").textContent = text; }

  // -- search -------------------------------------------------------------------------------------
  function searchPage() {
    markNav("search");
    var url = new URLSearchParams(location.search);
    var input = el("input", { type: "search", name: "q", placeholder: "uid prefix, key, name, description or feature value", value: url.get("q") || "", autofocus: true });
    var wanted = url.getAll("registry");
    var boxes = config.registries.map(function (r) {
      return el("input", { type: "checkbox", name: "registry", value: r, checked: !wanted.length || wanted.indexOf(r) >= 0 });
    });
    var out = el("div", { id: "results" });
    var offset = parseInt(url.get("offset") || "0", 10) || 0;
    var form = el("form", { id: "search-form", onsubmit: function (ev) { ev.preventDefault(); offset = 0; run(); } },
      input, boxes.map(function (b) { return el("label", {}, b, " " + b.value); }),
      el("button", { type: "submit", text: "search" }));
    main.appendChild(el("h1", { text: "Search" }));
    main.appendChild(form);
    main.appendChild(out);

    function run() {
      var q = input.value.trim();
      var registries = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      history.replaceState(null, "", "/" + query({ q: q, registry: registries.length < boxes.length ? registries : null, offset: offset || null }));
      out.textContent = "";
      if (!q) return;
      if (!registries.length) { out.appendChild(errorBox("pick at least one registry")); return; }
      out.appendChild(el("p", { class: "muted", text: "searching\u2026" }));
      api("/api/search", { q: q, registry: registries, offset: offset, limit: 20 }).then(function (data) {
        out.textContent = "";
        var shown = data.results.length;
        var total = data.total + (data.capped ? "+" : "");
        out.appendChild(el("div", { class: "pager" },
          el("span", { id: "result-count", text: shown ? (data.offset + 1) + "\u2013" + (data.offset + shown) + " of " + total : "no record matches" }),
          el("button", { id: "prev", text: "\u2190 previous", disabled: offset === 0, onclick: function () { offset = Math.max(0, offset - 20); run(); } }),
          el("button", { id: "next", text: "next \u2192", disabled: data.offset + shown >= data.total, onclick: function () { offset += 20; run(); } })));
        var rows = data.results.map(function (hit) {
          var n = hit.node;
          return el("tr", { class: "hit", "data-uid": n.uid },
            el("td", {}, badge(n)),
            el("td", {}, recordLink(n), n.description ? el("div", { class: "muted", text: n.description }) : null),
            el("td", { text: n.version || "" }),
            el("td", { class: "mono", text: n.uid }),
            el("td", { text: when(n.created_at) }),
            el("td", {}, el("a", { href: "/explore" + query({ focus: n.uid }), text: "explore" })));
        });
        out.appendChild(el("table", {}, el("tr", {}, ["registry", "key / name", "version", "uid", "created", ""].map(function (h) { return el("th", { text: h }); })), rows));
      }).catch(function (err) { out.textContent = ""; out.appendChild(errorBox(err)); });
    }
    if (input.value) run();
  }

  // -- a record's page ----------------------------------------------------------------------------
  function valueText(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  function diffView(d) {
    var parts = [];
    Object.keys(d.fields || {}).forEach(function (name) {
      var c = d.fields[name];
      parts.push(el("li", {}, el("b", { text: name }), ": " + valueText(c.old) + " \u2192 " + valueText(c.new)));
    });
    Object.keys(d).forEach(function (k) {
      var v = d[k];
      if (["registry", "old", "new", "key", "changed", "fields"].indexOf(k) >= 0) return;
      if (v === null || v === undefined || (typeof v === "object" && !Object.keys(v).length)) return;
      if (Array.isArray(v)) {
        parts.push(el("li", {}, el("b", { text: k + " (" + v.length + ")" }), ": " +
          v.slice(0, 20).map(function (m) { return (m && (m.key || m.uid)) || valueText(m); }).join(", ") + (v.length > 20 ? ", \u2026" : "")));
      } else {
        parts.push(el("li", {}, el("b", { text: k }), ": " + valueText(v)));
      }
    });
    if (!parts.length) parts.push(el("li", { text: "no change" }));
    return el("div", { class: "diff" }, el("div", { class: "muted", text: "since " + d.old }), el("ul", { class: "tree" }, parts));
  }

  function groupSection(uid, group) {
    var body = el("tbody");
    var info = el("span", { class: "muted" });
    var offset = 0;
    var section = el("section", { class: "group", "data-group": group.name },
      el("h2", { text: group.name + " (" + group.total + ")" }));
    function fill(items) {
      body.textContent = "";
      items.forEach(function (item) {
        var n = item.node;
        body.appendChild(el("tr", { "data-uid": n.uid },
          el("td", { text: item.edge.position !== null ? "#" + item.edge.position : "" }),
          el("td", {}, badge(n)), el("td", {}, recordLink(n)),
          el("td", { text: n.label === "Run" ? (n.transform || "") + " " + when(n.started_at) : (n.version || "") }),
          el("td", { class: "mono", text: n.uid }),
          n.branch === -1 ? el("td", {}, el("span", { class: "badge trash", text: "trash" })) : el("td")));
      });
      info.textContent = group.total > items.length ? (offset + 1) + "\u2013" + (offset + items.length) + " of " + group.total : "";
    }
    function load(to) {
      api("/api/records/" + uid + "/neighbours", { type: group.type, direction: group.direction, offset: to, limit: 20 })
        .then(function (data) { offset = to; fill(data.groups[0] ? data.groups[0].items : []); prev.disabled = offset === 0; next.disabled = offset + 20 >= group.total; })
        .catch(function (err) { section.appendChild(errorBox(err)); });
    }
    var prev = el("button", { text: "\u2190", disabled: true, onclick: function () { load(Math.max(0, offset - 20)); } });
    var next = el("button", { text: "\u2192", disabled: group.total <= group.items.length, onclick: function () { load(offset + 20); } });
    fill(group.items);
    if (group.total > group.items.length) section.appendChild(el("div", { class: "pager" }, prev, next, info));
    section.appendChild(el("table", {}, body));
    return section;
  }

  function recordPage() {
    markNav("");
    var uid = decodeURIComponent(location.pathname.split("/")[2] || "");
    main.appendChild(el("p", { class: "muted", text: "loading\u2026" }));
    api("/api/records/" + encodeURIComponent(uid), { limit: 20 }).then(function (page) {
      main.textContent = "";
      var n = page.node;
      setWhere(n.label + " " + n.uid);
      document.title = nameOf(n) + " \u00b7 lineage explorer";
      main.appendChild(el("h1", {}, badge(n), " " + nameOf(n) + " ",
        n.is_latest === false ? el("span", { class: "badge", text: "not latest" }) : null,
        n.branch === -1 ? el("span", { class: "badge trash", text: "trash" }) : null));
      main.appendChild(el("p", {}, el("a", { id: "explore-link", href: "/explore" + query({ focus: n.uid }), text: "explore its lineage \u2192" })));
      var general = Object.keys(page.fields).sort().map(function (k) {
        return el("tr", {}, el("th", { text: k }), el("td", { class: "mono", text: valueText(page.fields[k]) }));
      });
      var prov = Object.keys(page.provenance).map(function (k) {
        var v = page.provenance[k];
        var shown = v.vis ? recordLink(v) : el("span", { text: v.handle || v.root || v.name || v.uid });
        return el("li", {}, el("b", { text: k }), ": ", shown);
      });
      var features = Object.keys(page.features).map(function (k) {
        return el("li", {}, el("b", { text: k }), ": " + valueText(page.features[k]));
      });
      var annotations = Object.keys(page.annotations).filter(function (k) { return page.annotations[k].length; }).map(function (k) {
        return el("li", {}, el("b", { text: k }), ": " + page.annotations[k].map(function (a) { return a.name || a.uid; }).join(", "));
      });
      var left = el("section", { id: "describe" }, el("h2", { text: "General" }), el("table", {}, general),
        prov.length ? el("h2", { text: "Provenance" }) : null, prov.length ? el("ul", { class: "tree" }, prov) : null,
        features.length ? el("h2", { text: "Features" }) : null, features.length ? el("ul", { class: "tree" }, features) : null,
        annotations.length ? el("h2", { text: "Annotations" }) : null, annotations.length ? el("ul", { class: "tree" }, annotations) : null);
      var right = el("section", { id: "related" });
      if (page.versions.length) {
        var items = page.versions.map(function (v, i) {
          var li = el("li", { class: v.uid === n.uid ? "current" : "", "data-uid": v.uid },
            el("a", { href: "/record/" + v.uid, text: v.version || v.uid }), " ",
            el("span", { class: "muted", text: when(v.created_at) }), " ",
            v.is_latest ? el("span", { class: "badge latest", text: "latest" }) : null,
            v.branch === -1 ? el("span", { class: "badge trash", text: "trash" }) : null);
          if (i > 0) {
            var holder = el("div");
            li.appendChild(el("button", { class: "diff-button", text: "diff to previous", onclick: function () {
              holder.textContent = "";
              api("/api/records/" + v.uid + "/diff").then(function (d) { holder.appendChild(diffView(d)); })
                .catch(function (err) { holder.appendChild(errorBox(err)); });
            } }));
            li.appendChild(holder);
          }
          return li;
        });
        right.appendChild(el("h2", { text: "Versions (" + page.versions.length + ")" }));
        right.appendChild(el("ul", { class: "timeline" }, items));
      }
      page.groups.forEach(function (g) { right.appendChild(groupSection(n.uid, g)); });
      main.appendChild(el("div", { class: "columns" }, left, right));
      window.pageReady = true;
    }).catch(function (err) { main.textContent = ""; main.appendChild(errorBox(err)); window.pageReady = true; });
  }

  // -- the explorer -------------------------------------------------------------------------------
  function explorerPage() {
    markNav("explore");
    var url = new URLSearchParams(location.search);
    var state = {
      focus: url.get("focus") || "",
      depth: parseInt(url.get("depth") || "1", 10),
      expanded: (url.get("expand") || "").split(",").filter(Boolean),
      more: {},  // "uid|TYPE|dir" -> pages loaded beyond the first
      hide: (url.get("hide") || "").split(",").filter(Boolean),
      latest: url.get("latest") === "1",
      path: (url.get("path") || "").split(",").filter(Boolean)
    };
    (url.get("more") || "").split(",").filter(Boolean).forEach(function (m) {
      var parts = m.split(".");
      if (parts.length === 4) state.more[parts[0] + "|" + parts[1] + "|" + parts[2]] = parseInt(parts[3], 10) || 0;
    });
    if (isNaN(state.depth) || state.depth < 0) state.depth = 1;
    var firstGroups = {};  // uid -> groups (first page each)
    var extraPages = {};   // "uid|TYPE|dir|page" -> items
    var records = {};      // uid -> node
    var pathResult = null;

    // toolbar
    var focusInput = el("input", { type: "search", id: "focus-input", placeholder: "find a record to start from", size: 32 });
    var results = el("div", { id: "focus-results", hidden: true });
    var depthSelect = el("select", { id: "depth" }, [0, 1, 2, 3, 4, 5].map(function (d) {
      return el("option", { value: d, text: "depth " + d, selected: d === state.depth });
    }));
    var regBoxes = config.registries.map(function (r) {
      return el("input", { type: "checkbox", class: "registry", value: r, checked: state.hide.indexOf(r) < 0 });
    });
    var latestBox = el("input", { type: "checkbox", id: "latest", checked: state.latest });
    var status = el("span", { id: "status" });
    var toolbar = el("div", { id: "toolbar" },
      el("span", { style: "position:relative" }, focusInput, results), depthSelect,
      el("span", { class: "sep" }),
      regBoxes.map(function (b) { return el("label", {}, b, " " + b.value.toLowerCase() + "s"); }),
      el("label", {}, latestBox, " latest versions only"),
      el("span", { class: "sep" }),
      el("button", { id: "expand", text: "expand", onclick: function () { selected().forEach(expand); } }),
      el("button", { id: "collapse", text: "collapse", onclick: function () { selected().forEach(collapse); } }),
      el("button", { id: "path", text: "shortest path", title: "select two records (ctrl-click), then this", onclick: function () {
        var s = selected().filter(function (id) { return records[id]; });
        if (s.length !== 2) { say("select two records (ctrl-click the second) for a path"); return; }
        state.path = s; loadPath().then(render);
      } }),
      el("span", { class: "sep" }),
      el("button", { id: "export-png", text: "PNG", onclick: function () { LineageGraph.download(fileName("png"), LineageGraph.pngBlob(network)); } }),
      el("button", { id: "export-svg", text: "SVG", onclick: function () { LineageGraph.download(fileName("svg"), new Blob([LineageGraph.svgText(network, nodes, edges, config.options.groups)], { type: "image/svg+xml" })); } }),
      el("button", { id: "export-json", text: "JSON", onclick: function () { LineageGraph.download(fileName("json"), new Blob([LineageGraph.jsonText(network, nodes, edges, { focus: state.focus, depth: state.depth, expanded: state.expanded, url: location.href })], { type: "application/json" })); } }),
      status);
    var container = el("div", { id: "explorer" });
    var panel = el("div", { id: "panel" }, el("p", { class: "muted", text: "Click a record for its details; double-click to expand or collapse it; \u201c+N more\u201d opens the next page." }));
    main.appendChild(toolbar);
    main.appendChild(container);
    main.appendChild(panel);

    var nodes = new vis.DataSet([]);
    var edges = new vis.DataSet([]);
    var options = JSON.parse(JSON.stringify(config.options));
    options.groups.more = { shape: "box", color: { background: "#ffffff", border: "#9ca3af", highlight: { background: "#f3f4f6", border: "#6b7280" } },
                            shapeProperties: { borderDashes: [3, 3] }, font: { color: "#374151" } };
    options.interaction.multiselect = true;
    var network = new vis.Network(container, { nodes: nodes, edges: edges }, options);
    window.explorer = { state: state, network: network, nodes: nodes, edges: edges, ready: false };

    function fileName(ext) { return "lineage-" + (state.focus || "graph") + "." + ext; }
    function say(text) { status.textContent = text; }
    function selected() { return network.getSelectedNodes(); }
    function groupKey(uid, g) { return uid + "|" + g.type + "|" + g.direction; }

    function permalink() {
      var more = Object.keys(state.more).filter(function (k) { return state.more[k] > 0; })
        .map(function (k) { return k.split("|").join(".") + "." + state.more[k]; });
      history.replaceState(null, "", "/explore" + query({
        focus: state.focus, depth: state.depth, expand: state.expanded.join(",") || null,
        more: more.join(",") || null, hide: state.hide.join(",") || null, latest: state.latest ? "1" : null,
        path: state.path.length === 2 ? state.path.join(",") : null
      }));
    }

    function remember(groupsByUid) {
      groupsByUid.forEach(function (r) {
        firstGroups[r.uid] = r.groups;
        r.groups.forEach(function (g) { g.items.forEach(function (it) { records[it.node.uid] = it.node; }); });
      });
    }

    function fetchNeighbours(uids) {
      var wanted = uids.filter(function (u) { return !firstGroups[u]; });
      var chunks = [];
      for (var i = 0; i < wanted.length; i += 200) chunks.push(wanted.slice(i, i + 200));
      return Promise.all(chunks.map(function (chunk) {
        return api("/api/neighbours", { uid: chunk, limit: PAGE }).then(function (data) { remember(data.records); });
      }));
    }

    function fetchPage(key, page) {
      var id = key + "|" + page;
      if (extraPages[id]) return Promise.resolve();
      var parts = key.split("|");
      return api("/api/records/" + parts[0] + "/neighbours", { type: parts[1], direction: parts[2], offset: page * PAGE, limit: PAGE })
        .then(function (data) {
          var items = data.groups[0] ? data.groups[0].items : [];
          items.forEach(function (it) { records[it.node.uid] = it.node; });
          extraPages[id] = items;
        });
    }

    function fetchMore() {
      var calls = [];
      Object.keys(state.more).forEach(function (key) {
        for (var p = 1; p <= state.more[key]; p++) calls.push(fetchPage(key, p));
      });
      return Promise.all(calls);
    }

    function loadPath() {
      if (state.path.length !== 2) { pathResult = null; return Promise.resolve(); }
      return api("/api/path", { source: state.path[0], target: state.path[1] }).then(function (data) {
        pathResult = data;
        data.nodes.forEach(function (n) { records[n.uid] = n; });
        say(data.found ? "path of " + data.edges.length + " edge(s), " + (data.upstream ? "upstream" : "downstream") : "no provenance path between them");
      }).catch(function (err) { pathResult = null; say(err.message); });
    }

    /* The view is derived from the state: the focus, the neighbours (with their loaded pages)
     * of every expanded record, the path; then the registry and version filters. */
    function derive() {
      var want = {}, wantEdges = {};
      if (records[state.focus]) want[state.focus] = { node: records[state.focus] };
      state.expanded.forEach(function (uid) {
        (firstGroups[uid] || []).forEach(function (g) {
          var key = groupKey(uid, g);
          var items = g.items.slice();
          for (var p = 1; p <= (state.more[key] || 0); p++) items = items.concat(extraPages[key + "|" + p] || []);
          items.forEach(function (it) {
            want[it.node.uid] = want[it.node.uid] || { node: it.node };
            wantEdges[it.edge.source + ">" + it.edge.type + ">" + it.edge.target] = it.edge.vis;
          });
          var left = g.total - items.length;
          if (left > 0) {
            var moreId = "more|" + key;
            want[moreId] = { more: { id: moreId, group: "more", label: "+" + left + " more\n" + g.name, title: "open the next " + Math.min(PAGE, left) + " of " + left + " more (" + g.name + ")" } };
            var flowsIn = g.direction === "out";  // vis edges run the way data flowed
            wantEdges[moreId] = { from: flowsIn ? moreId : uid, to: flowsIn ? uid : moreId, arrows: "to", color: "#9ca3af", dashes: [3, 3] };
          }
        });
      });
      var onPath = {};
      if (pathResult && pathResult.found) {
        pathResult.nodes.forEach(function (n) { onPath[n.uid] = true; want[n.uid] = want[n.uid] || { node: n }; });
        pathResult.edges.forEach(function (e) {
          wantEdges[e.source + ">" + e.type + ">" + e.target] = Object.assign({}, e.vis, { color: "#ea580c", width: 4, path: true });
        });
      }
      var list = [];
      Object.keys(want).forEach(function (id) {
        var w = want[id];
        if (w.more) { list.push(w.more); return; }
        var n = w.node;
        var hidden = id !== state.focus && !onPath[id] &&
          (state.hide.indexOf(n.label) >= 0 || (state.latest && n.is_latest === false));
        var vis = Object.assign({}, n.vis, { hidden: hidden });
        if (id === state.focus && !vis.borderWidth) vis = Object.assign(vis, { borderWidth: 4, color: Object.assign({}, config.options.groups[n.label].color, { border: "#ea580c" }) });
        if (onPath[id]) vis = Object.assign(vis, { borderWidth: 4, shadow: { enabled: true, color: "#ea580c", size: 12 } });
        list.push(vis);
      });
      var edgeList = Object.keys(wantEdges).map(function (id) { return Object.assign({ id: id }, wantEdges[id]); });
      return { nodes: list, edges: edgeList };
    }

    function render() {
      var view = derive();
      var keep = {};
      view.nodes.forEach(function (n) { keep[n.id] = true; });
      nodes.remove(nodes.getIds().filter(function (id) { return !keep[id]; }));
      nodes.update(view.nodes);
      var keepEdges = {};
      view.edges.forEach(function (e) { keepEdges[e.id] = true; });
      edges.remove(edges.getIds().filter(function (id) { return !keepEdges[id]; }));
      edges.update(view.edges);
      permalink();
      var shown = nodes.get({ filter: function (n) { return !n.hidden; } }).length;
      if (!status.textContent || /records? shown/.test(status.textContent)) say(shown + " records shown");
      window.explorer.ready = true;
      window.explorer.renders = (window.explorer.renders || 0) + 1;
    }

    function expand(uid) {
      if (!records[uid] || state.expanded.indexOf(uid) >= 0) return Promise.resolve();
      state.expanded.push(uid);
      return fetchNeighbours([uid]).then(render).catch(function (err) { say(err.message); });
    }

    /* Collapse: the record is no longer expanded, nor is anything that hung only off it. */
    function collapse(uid) {
      var at = state.expanded.indexOf(uid);
      if (at < 0) return;
      state.expanded.splice(at, 1);
      for (;;) {  // drop expanded records no longer connected to the focus, until none is
        var view = derive();
        var ids = view.nodes.map(function (n) { return n.id; });
        var cut = {};
        LineageGraph.subtree(ids, view.edges, state.focus, null).forEach(function (id) { cut[id] = true; });
        var before = state.expanded.length;
        state.expanded = state.expanded.filter(function (u) { return u === state.focus || !cut[u]; });
        if (state.expanded.length === before) break;
      }
      Object.keys(state.more).forEach(function (k) { if (state.expanded.indexOf(k.split("|")[0]) < 0) delete state.more[k]; });
      render();
    }

    function openMore(moreId) {
      var key = moreId.slice(5);
      var page = (state.more[key] || 0) + 1;
      return fetchPage(key, page).then(function () { state.more[key] = page; render(); }).catch(function (err) { say(err.message); });
    }

    function setDepth(depth) {
      state.depth = depth;
      state.expanded = [];
      state.more = {};
      var level = [state.focus], seen = {};
      seen[state.focus] = true;
      var step = function (i) {
        if (i >= depth || !level.length) { render(); return Promise.resolve(); }
        state.expanded = state.expanded.concat(level);
        return fetchNeighbours(level).then(function () {
          var next = [];
          level.forEach(function (uid) {
            (firstGroups[uid] || []).forEach(function (g) {
              g.items.forEach(function (it) { if (!seen[it.node.uid]) { seen[it.node.uid] = true; next.push(it.node.uid); } });
            });
          });
          level = next;
          return step(i + 1);
        });
      };
      return step(0);
    }

    function showDetails(id) {
      panel.textContent = "";
      var n = records[id];
      if (!n) { if (id && id.indexOf("more|") === 0) panel.appendChild(el("p", { text: nodes.get(id).title })); return; }
      panel.appendChild(el("h2", {}, badge(n), " " + nameOf(n)));
      panel.appendChild(el("pre", { text: n.vis.title }));
      panel.appendChild(el("p", {}, el("a", { href: "/record/" + n.uid, text: "record page" }), " \u00b7 ",
        el("a", { href: "/explore" + query({ focus: n.uid }), text: "explore from here" })));
      panel.appendChild(el("p", {}, el("button", { text: state.expanded.indexOf(n.uid) >= 0 ? "collapse" : "expand", onclick: function () {
        if (state.expanded.indexOf(n.uid) >= 0) collapse(n.uid); else expand(n.uid);
        showDetails(n.uid);
      } })));
    }

    network.on("click", function (params) {
      if (!params.nodes.length) return;
      var id = params.nodes[params.nodes.length - 1];
      if (String(id).indexOf("more|") === 0) { openMore(id); return; }
      showDetails(id);
    });
    network.on("doubleClick", function (params) {
      if (!params.nodes.length) return;
      var id = params.nodes[0];
      if (String(id).indexOf("more|") === 0) return;
      if (state.expanded.indexOf(id) >= 0) collapse(id); else expand(id);
    });
    depthSelect.addEventListener("change", function () { setDepth(parseInt(depthSelect.value, 10)); });
    regBoxes.forEach(function (b) { b.addEventListener("change", function () {
      state.hide = regBoxes.filter(function (x) { return !x.checked; }).map(function (x) { return x.value; });
      render();
    }); });
    latestBox.addEventListener("change", function () { state.latest = latestBox.checked; render(); });

    // the focus picker: search the server, pick a record
    var timer = null;
    focusInput.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = focusInput.value.trim();
        if (!q) { results.hidden = true; return; }
        api("/api/search", { q: q, limit: 12 }).then(function (data) {
          results.textContent = "";
          data.results.forEach(function (hit) {
            results.appendChild(el("div", { class: "pick", "data-uid": hit.node.uid, onclick: function () {
              results.hidden = true;
              location.href = "/explore" + query({ focus: hit.node.uid, depth: state.depth });
            } }, badge(hit.node), " " + nameOf(hit.node) + " ", el("span", { class: "muted mono", text: hit.node.uid })));
          });
          if (!data.results.length) results.appendChild(el("div", { class: "muted", text: "no record matches" }));
          results.hidden = false;
        }).catch(function (err) { say(err.message); });
      }, 150);
    });

    window.explorer.expand = expand;
    window.explorer.collapse = collapse;
    window.explorer.openMore = openMore;
    window.explorer.setDepth = setDepth;
    window.explorer.idle = function () { return inflight === 0; };

    if (!state.focus) {
      say("find a record to start from");
      window.explorer.ready = true;
      return;
    }
    // Start: the focus itself, then either the expanded records of a permalink or the depth.
    api("/api/records/" + encodeURIComponent(state.focus), { limit: 1 }).then(function (page) {
      records[state.focus] = page.node;
      setWhere("exploring " + page.node.label + " " + nameOf(page.node));
      if (state.expanded.length) {
        return fetchNeighbours(state.expanded).then(fetchMore).then(loadPath).then(render);
      }
      return setDepth(state.depth).then(loadPath).then(render);
    }).then(function () {
      network.once("afterDrawing", function () {
        performance.mark("lineage-first-paint");  // the benchmark's "first useful paint"
        window.explorer.drawn = true;
      });
      network.fit({ animation: false });
      network.selectNodes([state.focus]);
      showDetails(state.focus);
    }).catch(function (err) { main.insertBefore(errorBox(err), container); window.explorer.ready = true; });
  }

  // -- the Cypher console -------------------------------------------------------------------------
  function cypherPage() {
    markNav("cypher");
    var url = new URLSearchParams(location.search);
    var text = el("textarea", { id: "query", rows: 6, spellcheck: "false" });
    text.value = url.get("q") || "MATCH (a:Artifact)-[r:GENERATED_BY]->(run:Run)\nRETURN a, r, run LIMIT 25";
    var params = el("textarea", { id: "params", rows: 4, spellcheck: "false", placeholder: "{\"name\": \"value\"}" });
    params.value = url.get("params") || "{}";
    var limit = el("input", { type: "text", id: "limit", value: url.get("limit") || "200", size: 6 });
    var out = el("div", { id: "cypher-out" });
    main.appendChild(el("form", { id: "cypher-form", onsubmit: function (ev) { ev.preventDefault(); run(); } },
      el("div", {}, text, el("div", { class: "muted", text: "Read-only: the server refuses writes, LOAD CSV and procedures other than db.labels() and friends; 10 s at most." })),
      el("div", {}, el("label", { text: "parameters (JSON)" }), params, el("label", {}, "rows at most ", limit), " ",
        el("button", { type: "submit", id: "run", text: "run" }))));
    main.appendChild(out);

    function cell(v) {
      if (v && typeof v === "object" && v._type === "node") return ":" + v.labels.join(":") + " " + (v.properties.key || v.properties.name || v.properties.uid || v.id);
      if (v && typeof v === "object" && v._type === "relationship") return "[:" + v.type + "]";
      if (v && typeof v === "object" && v._type === "path") return "path of " + v.relationships.length;
      return valueText(v);
    }

    function run() {
      var parsed;
      try { parsed = JSON.parse(params.value || "{}"); } catch (err) { out.textContent = ""; out.appendChild(errorBox("parameters: " + err.message)); return; }
      history.replaceState(null, "", "/cypher" + query({ q: text.value, params: params.value !== "{}" ? params.value : null }));
      out.textContent = "";
      out.appendChild(el("p", { class: "muted", text: "running\u2026" }));
      api("/api/cypher", null, { query: text.value, params: parsed, limit: parseInt(limit.value, 10) || 200 }).then(function (data) {
        out.textContent = "";
        out.appendChild(el("p", { class: "muted", id: "cypher-summary", text: data.rows.length + " row(s)" + (data.truncated ? " (more not shown)" : "") + " in " + data.elapsed_ms + " ms" +
          (data.nodes.length ? ", " + data.nodes.length + " node(s) and " + data.relationships.length + " relationship(s) drawn" : "") }));
        if (data.nodes.length) {
          var box = el("div", { id: "cypher-graph" });
          out.appendChild(box);
          var groups = config.options.groups;
          var vnodes = data.nodes.map(function (n) {
            var label = n.labels.filter(function (l) { return groups[l]; })[0];
            var p = n.properties;
            return { id: n.id, group: label, label: String(p.key || p.name || p.handle || p.uid || n.labels.join(":")).slice(0, 40),
                     title: ":" + n.labels.join(":") + "\n" + Object.keys(p).map(function (k) { return k + ": " + valueText(p[k]).slice(0, 120); }).join("\n") };
          });
          var vedges = data.relationships.map(function (r) { return { id: r.id, from: r.start, to: r.end, label: r.type, arrows: "to", font: { size: 10, color: "#6b7280" }, color: "#6b7280" }; });
          var net = new vis.Network(box, { nodes: new vis.DataSet(vnodes), edges: new vis.DataSet(vedges) },
            { groups: groups, physics: { stabilization: { iterations: 150 } }, interaction: { hover: true }, nodes: config.options.nodes });
          window.cypherNetwork = net;
        }
        var head = el("tr", {}, data.columns.map(function (c) { return el("th", { text: c }); }));
        var rows = data.rows.map(function (r) { return el("tr", {}, r.map(function (v) { return el("td", { class: "mono", text: cell(v) }); })); });
        out.appendChild(el("div", { id: "cypher-table" }, el("table", {}, head, rows)));
        window.cypherDone = true;
      }).catch(function (err) { out.textContent = ""; out.appendChild(errorBox(err)); window.cypherDone = true; });
    }
    if (url.get("q")) run();
  }

  var pages = { search: searchPage, record: recordPage, explore: explorerPage, cypher: cypherPage };
  (pages[config.page] || searchPage)();
})();
