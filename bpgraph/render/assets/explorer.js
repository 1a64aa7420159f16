/* bpgraph explorer: makes the inlined Graphviz drawing interactive, with no library and no network.

   The page embeds the drawing (SVG) and the graph's data (JSON, see bpgraph/render/explorer.py).
   SVG elements are found through Graphviz's <title> children: a drawn unit (a node, or a collapsed
   group "g<id>") is titled by its DOT id, an edge "tail->head".  Every name reaches the page with
   textContent or a form value, never as markup. */
(function () {
  "use strict";

  var started = performance.now();
  var data = JSON.parse(document.getElementById("bx-data").textContent);
  var nodes = data.nodes, terms = data.terms, steps = data.steps;
  var view = document.getElementById("bx-view");
  var svg = view.querySelector("svg");
  var panel = document.getElementById("bx-panel");
  var statusLine = document.getElementById("bx-status");
  var search = document.getElementById("bx-search");

  Object.keys(data.theme).forEach(function (key) {
    document.documentElement.style.setProperty("--bx-" + key, data.theme[key]);
  });

  // ---- the graph: users of each node, and each edge's drawn element and cost terms -------------
  var users = nodes.map(function () { return []; });
  var edges = [];  // {u, v, key: the drawn edge's title, carries: indices of the terms it carries}
  var byName = new Map();
  nodes.forEach(function (node, v) {
    byName.set(node.name, v);
    node.args.filter(function (u, k, all) { return all.indexOf(u) === k; }).forEach(function (u) {
      users[u].push(v);
      edges.push({u: u, v: v, key: nodes[u].unit + "->" + node.unit, carries: carried(u, v)});
    });
  });
  var edgesFrom = nodes.map(function () { return []; });
  var drawnEdges = new Set();  // the titles of the drawing's edges between units (not the legend's)
  edges.forEach(function (edge) { edgesFrom[edge.u].push(edge); drawnEdges.add(edge.key); });

  /* Term k's gradient flows back along u -> v when v is term k or feeds it, or when the root
     depends on v and u depends on term k (the sum above the terms): as TermReach.mask does. */
  function carried(u, v) {
    return terms.map(function (t, k) { return k; }).filter(function (k) {
      return nodes[v].feeds.indexOf(k) >= 0 || (nodes[v].rootSide && nodes[u].fedBy.indexOf(k) >= 0);
    });
  }

  // ---- the drawing's elements, by title --------------------------------------------------------
  var unitEls = new Map(), edgeEls = new Map(), units = new Map();  // units: key -> its node ids
  nodes.forEach(function (node, i) {
    if (!units.has(node.unit)) units.set(node.unit, []);
    units.get(node.unit).push(i);
  });
  function titled(selector, into) {
    svg.querySelectorAll(selector).forEach(function (el) {
      var title = el.querySelector("title");
      if (title) into.set(title.textContent, el);
    });
  }
  titled("g.node", unitEls);
  titled("g.edge", edgeEls);
  /* Units become focusable buttons; titles (tooltips) show names instead of DOT ids, which stay
     in data-unit and data-edge. */
  function label(key) {
    return data.groups[key] ? "collapsed group " + data.groups[key].title : nodes[units.get(key)[0]].name;
  }
  unitEls.forEach(function (el, key) {
    if (!units.has(key)) return;  // the legend's samples
    el.setAttribute("tabindex", "0");
    el.setAttribute("role", "button");
    el.setAttribute("aria-label", label(key));
    el.querySelector("title").textContent = label(key);
    el.dataset.unit = key;
  });
  edgeEls.forEach(function (el, key) {
    var ends = key.split("->");
    el.dataset.edge = key;
    if (ends.length === 2 && units.has(ends[0]) && units.has(ends[1])) {
      el.querySelector("title").textContent = label(ends[0]) + " → " + label(ends[1]);
    }
  });

  // ---- state ------------------------------------------------------------------------------------
  var selected = null;  // {unit: the unit clicked, ids: the nodes whose paths are lit}
  var only = -1;        // -1: every cost term; else the index of the one term shown
  var step = 0;         // backward steps done (0: not stepping)

  /* Every edge on a path from `sources` to the root that carries the gradient of a term shown:
     forward from the sources over nodes the root depends on; below term k an edge counts when its
     head feeds k, above it when a source reaches k and the tail depends on k. */
  function pathEdges(sources) {
    var seen = new Set(sources), queue = sources.slice(), lit = [];
    while (queue.length) {
      var u = queue.pop();
      users[u].forEach(function (v) {
        if (nodes[v].rootSide && !seen.has(v)) { seen.add(v); queue.push(v); }
      });
    }
    seen.forEach(function (u) {
      edgesFrom[u].forEach(function (edge) {
        var v = nodes[edge.v];
        var on = edge.carries.some(function (k) {
          return (only < 0 || k === only) && (v.feeds.indexOf(k) >= 0 ||
                 (seen.has(terms[k].id) && v.rootSide && nodes[u].fedBy.indexOf(k) >= 0));
        });
        if (on) lit.push(edge);
      });
    });
    return lit;
  }

  function paint(el, colour) {  // a lit edge in one term's colour, or back to Graphviz's
    el.querySelectorAll("path, polygon").forEach(function (shape) {
      shape.style.stroke = colour || "";
      if (shape.tagName === "polygon") shape.style.fill = colour || "";
    });
  }

  /* Draw the state: classes on the drawing's units and edges. */
  function render() {
    var t0 = performance.now();
    unitEls.forEach(function (el) { el.classList.remove("bx-dim", "bx-off", "bx-sel", "bx-done", "bx-current"); });
    edgeEls.forEach(function (el) {
      el.classList.remove("bx-dim", "bx-off", "bx-lit", "bx-delivered");
      paint(el, "");
    });
    if (step > 0) renderStep();
    else if (selected) renderSelection();
    else if (only >= 0) renderTerm();
    document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
  }

  function renderSelection() {
    var litUnits = new Set([selected.unit]), litEdges = new Set();
    pathEdges(selected.ids).forEach(function (edge) {
      litUnits.add(nodes[edge.u].unit);
      litUnits.add(nodes[edge.v].unit);
      litEdges.add(edge.key);
    });
    unitEls.forEach(function (el, key) {
      if (units.has(key) && !litUnits.has(key)) el.classList.add("bx-dim");
    });
    edgeEls.forEach(function (el, key) {
      if (!drawnEdges.has(key)) return;
      if (!litEdges.has(key)) { el.classList.add("bx-dim"); return; }
      el.classList.add("bx-lit");
      if (only >= 0) paint(el, terms[only].color);
    });
    unitEls.get(selected.unit).classList.add("bx-sel");
  }

  function renderTerm() {  // no selection: fade what the shown term's gradient does not reach
    var onFlow = new Set();
    edges.forEach(function (edge) {
      if (edge.carries.indexOf(only) < 0) return;
      onFlow.add(edge.key);
      onFlow.add(nodes[edge.u].unit);
      onFlow.add(nodes[edge.v].unit);
    });
    edgeEls.forEach(function (el, key) { if (drawnEdges.has(key) && !onFlow.has(key)) el.classList.add("bx-off"); });
    unitEls.forEach(function (el, key) { if (units.has(key) && !onFlow.has(key)) el.classList.add("bx-off"); });
  }

  function renderStep() {  // as the frames: done nodes lit, the current one accented, the rest faded
    var done = new Set(), current = steps[step - 1];
    steps.slice(0, step).forEach(function (s) { done.add(nodes[s.node].unit); });
    unitEls.forEach(function (el, key) { if (units.has(key)) el.classList.add(done.has(key) ? "bx-done" : "bx-dim"); });
    unitEls.get(nodes[current.node].unit).classList.add("bx-current");
    var delivered = new Set(current.users.map(function (v) {
      return nodes[current.node].unit + "->" + nodes[v].unit;
    }));
    edgeEls.forEach(function (el, key) {
      if (delivered.has(key)) el.classList.add("bx-delivered");
      else if (drawnEdges.has(key) && !edgeBetween(key, done)) el.classList.add("bx-dim");
    });
  }

  function edgeBetween(key, done) {
    var ends = key.split("->");
    return ends.length === 2 && done.has(ends[0]) && done.has(ends[1]);
  }

  // ---- the side panel ----------------------------------------------------------------------------
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function link(i) {  // a button that selects node i
    var b = el("button", nodes[i].name, "bx-link");
    b.type = "button";
    b.addEventListener("click", function () { selectNode(i, true); });
    return b;
  }
  function row(dl, term, value) {
    dl.append(el("dt", term));
    var dd = el("dd");
    dd.append.apply(dd, Array.isArray(value) ? value : [el("span", value)]);
    dl.append(dd);
  }

  function showNode(i) {
    var node = nodes[i], dl = el("dl");
    var items = [el("h2", node.name), el("p", node.kind + " · " + node.shape), dl];
    if (node.op) {
      var call = [el("code", node.op + "(")];
      node.args.forEach(function (a, k) { if (k) call.push(el("code", ", ")); call.push(link(a)); });
      call.push(el("code", ")"));
      row(dl, "op", call);
      row(dl, "forward", node.name + " = " + node.formula);
    }
    row(dl, "value", node.value);
    row(dl, "∂" + data.root + "/∂" + node.name, node.grad === null ? "none: no path from " + data.root : node.grad);
    if (terms.length && node.name !== data.root) {  // the root is made of the terms, not reached by them
      items.push(el("h3", "Gradient per cost term"));
      var list = el("ul");
      node.terms.forEach(function (cell, k) {
        var li = el("li"), swatch = el("span", "", "bx-swatch");
        swatch.style.borderTopColor = terms[k].color;
        if (cell.status === "no path") {
          li.append(swatch, el("span", terms[k].name + ": no path", "bx-nopath"), el("span", cell.text, "bx-reason"));
        } else {
          li.append(swatch, el("span", terms[k].name + (cell.status === "seed" ? " (this term): " : ": ") + cell.text));
        }
        list.append(li);
      });
      items.push(list);
    }
    if (node.lines.length) {
      items.push(el("h3", data.course ? "Backward pass (exact, then the course's notation)" : "Backward pass"));
      node.lines.forEach(function (line) { items.push(el("span", line, "bx-line")); });
    }
    if (users[i].length) {
      items.push(el("h3", "Used by"));
      var used = el("p");
      users[i].forEach(function (v, k) { if (k) used.append(", "); used.append(link(v)); });
      items.push(used);
    }
    var group = data.groups[node.unit];
    if (group) {
      items.push(el("h3", "Drawn inside a collapsed group"));
      var open = el("button", group.title, "bx-link");
      open.type = "button";
      open.addEventListener("click", function () { selectUnit(node.unit, true); });
      items.push(open);
    }
    panel.replaceChildren.apply(panel, items);
    panel.scrollTop = 0;
  }

  function showGroup(key) {
    var group = data.groups[key], members = group.members, limit = 500;
    var items = [el("h2", group.title), el("p", "collapsed group of " + members.length.toLocaleString("en") + " nodes" +
                 (group.ops.length ? " · mostly " + group.ops.join(", ") : "")), el("h3", "Members")];
    var list = el("ul");
    members.slice(0, limit).forEach(function (i) {
      var li = el("li");
      li.append(link(i), el("span", " · " + nodes[i].kind + " · " + nodes[i].shape));
      list.append(li);
    });
    items.push(list);
    if (members.length > limit) {
      items.push(el("p", "… and " + (members.length - limit).toLocaleString("en") + " more (find them by name)"));
    }
    panel.replaceChildren.apply(panel, items);
    panel.scrollTop = 0;
  }

  // ---- selecting -------------------------------------------------------------------------------
  function selectNode(i, reveal) {
    var t0 = performance.now();
    step = 0;
    selected = {unit: nodes[i].unit, ids: [i]};
    showNode(i);
    statusLine.textContent = data.groups[nodes[i].unit]
      ? nodes[i].name + " is drawn inside the collapsed group " + data.groups[nodes[i].unit].title
      : "";
    render();
    if (reveal) revealUnit(nodes[i].unit);
    document.body.dataset.selectMs = (performance.now() - t0).toFixed(1);
  }

  function selectUnit(key, reveal) {
    if (!data.groups[key]) { selectNode(units.get(key)[0], reveal); return; }
    var t0 = performance.now();
    step = 0;
    selected = {unit: key, ids: units.get(key)};
    showGroup(key);
    statusLine.textContent = "lit: the paths from every member of " + data.groups[key].title +
      "; pick one member in the panel to see its own";
    render();
    if (reveal) revealUnit(key);
    document.body.dataset.selectMs = (performance.now() - t0).toFixed(1);
  }

  function clear() {
    selected = null;
    step = 0;
    statusLine.textContent = idle;
    render();
  }

  function goToStep(k) {
    if (!steps.length) return;
    step = Math.max(1, Math.min(steps.length, k));
    selected = null;
    var s = steps[step - 1];
    showNode(s.node);
    statusLine.textContent = "step " + step + " of " + steps.length + ": " + (step === 1
      ? "start at the root, ∂" + data.root + "/∂" + data.root + " = 1"
      : "∂" + data.root + "/∂" + nodes[s.node].name + " is complete, delivered by " +
        s.users.map(function (v) { return nodes[v].name; }).join(", ") + ": " + nodes[s.node].lines[0]);
    render();
    revealUnit(nodes[s.node].unit);
  }

  // ---- pan and zoom: the SVG's viewBox, kept at the view's aspect ratio --------------------------
  var base = svg.viewBox.baseVal;
  var whole = {x: base.x, y: base.y, w: base.width, h: base.height};
  var box = null;
  svg.removeAttribute("width");
  svg.removeAttribute("height");

  function unitsPerPixel() { return box.w / Math.max(1, view.clientWidth); }
  function apply() { svg.setAttribute("viewBox", [box.x, box.y, box.w, box.h].join(" ")); }
  function fit() {  // the whole drawing, centred
    var w = Math.max(1, view.clientWidth), h = Math.max(1, view.clientHeight);
    var s = Math.max(whole.w / w, whole.h / h);
    box = {x: whole.x + (whole.w - w * s) / 2, y: whole.y + (whole.h - h * s) / 2, w: w * s, h: h * s};
    apply();
  }
  function zoom(factor, cx, cy) {  // factor < 1 zooms in, about the client point (cx, cy)
    var r = view.getBoundingClientRect();
    if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
    var s = unitsPerPixel(), px = box.x + (cx - r.left) * s, py = box.y + (cy - r.top) * s;
    box = {x: px - (px - box.x) * factor, y: py - (py - box.y) * factor, w: box.w * factor, h: box.h * factor};
    apply();
  }
  /* Pan just enough to bring a unit into view, zooming in to its natural size first on a graph
     drawn too small to read; the panel sits beside the drawing, so it never covers the unit. */
  function revealUnit(key) {
    var target = unitEls.get(key);
    if (!target) return;
    var t = target.getBoundingClientRect();
    if (unitsPerPixel() > 1.5) {  // drawn at less than two thirds of its size: 1:1 around the unit
      zoom(1 / unitsPerPixel(), t.left + t.width / 2, t.top + t.height / 2);
      t = target.getBoundingClientRect();
    }
    var r = view.getBoundingClientRect(), margin = 40, s = unitsPerPixel();
    box.x += shift(t.left, t.right, r.left + margin, r.right - margin) * s;
    box.y += shift(t.top, t.bottom, r.top + margin, r.bottom - margin) * s;
    apply();
  }
  function shift(low, high, min, max) {  // how far to move [low, high] into [min, max]; centre if too big
    if (high - low > max - min) return (low + high) / 2 - (min + max) / 2;
    return low < min ? low - min : high > max ? high - max : 0;
  }

  var drag = null, dragged = false;
  view.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) return;
    drag = {x: e.clientX, y: e.clientY, box: Object.assign({}, box), id: e.pointerId};
    dragged = false;
  });
  view.addEventListener("pointermove", function (e) {
    if (!drag || e.pointerId !== drag.id) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!dragged && Math.abs(dx) + Math.abs(dy) < 5) return;
    if (!dragged) { dragged = true; view.setPointerCapture(e.pointerId); view.classList.add("bx-dragging"); }
    var s = drag.box.w / Math.max(1, view.clientWidth);
    box = {x: drag.box.x - dx * s, y: drag.box.y - dy * s, w: drag.box.w, h: drag.box.h};
    apply();
  });
  function endDrag() { drag = null; view.classList.remove("bx-dragging"); }
  view.addEventListener("pointerup", endDrag);
  view.addEventListener("pointercancel", endDrag);
  view.addEventListener("wheel", function (e) {
    e.preventDefault();
    zoom(Math.pow(1.0015, e.deltaMode ? e.deltaY * 30 : e.deltaY), e.clientX, e.clientY);
  }, {passive: false});
  window.addEventListener("resize", function () {
    var s = unitsPerPixel(), cx = box.x + box.w / 2, cy = box.y + box.h / 2;
    var w = view.clientWidth * s, h = view.clientHeight * s;
    box = {x: cx - w / 2, y: cy - h / 2, w: w, h: h};
    apply();
  });

  // ---- input ---------------------------------------------------------------------------------------
  view.addEventListener("click", function (e) {
    if (dragged) { dragged = false; return; }
    var unit = e.target.closest && e.target.closest("g.node");
    if (unit && unit.dataset.unit) selectUnit(unit.dataset.unit, false);
    else if (!unit) clear();
  });
  view.addEventListener("keydown", function (e) {
    var unit = e.target.closest && e.target.closest("g.node");
    if (unit && unit.dataset.unit && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      selectUnit(unit.dataset.unit, true);
    }
  });
  view.addEventListener("focusin", function (e) {  // Tab into a node off screen: bring it in (not on a click)
    var unit = e.target.closest && e.target.closest("g.node");
    if (unit && unit.dataset.unit && unit.matches(":focus-visible")) revealUnit(unit.dataset.unit);
  });
  document.addEventListener("keydown", function (e) {
    // form controls keep their own keys (arrow keys move between the term toggles)
    if (e.target.closest && e.target.closest("input, select, textarea")) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowRight") goToStep(step + 1);
    else if (e.key === "ArrowLeft") { if (step > 1) goToStep(step - 1); else clear(); }
    else if (e.key === "Home") goToStep(1);
    else if (e.key === "End") goToStep(steps.length);
    else if (e.key === "Escape") clear();
    else if (e.key === "+" || e.key === "=") zoom(0.8);
    else if (e.key === "-") zoom(1.25);
    else if (e.key === "0") fit();
    else return;
    e.preventDefault();
  });
  document.getElementById("bx-next").addEventListener("click", function () { goToStep(step + 1); });
  document.getElementById("bx-prev").addEventListener("click", function () {
    if (step > 1) goToStep(step - 1); else clear();
  });
  document.getElementById("bx-zoom-in").addEventListener("click", function () { zoom(0.8); });
  document.getElementById("bx-zoom-out").addEventListener("click", function () { zoom(1.25); });
  document.getElementById("bx-reset").addEventListener("click", fit);

  // the search box: an exact name, else the first name containing the text (ignoring case)
  var names = document.getElementById("bx-names");
  nodes.forEach(function (node) {
    var option = document.createElement("option");
    option.value = node.name;
    names.append(option);
  });
  function find() {
    var text = search.value;
    if (!text) return;
    var i = byName.has(text) ? byName.get(text) : -1, lower = text.toLowerCase();
    for (var k = 0; i < 0 && k < nodes.length; k++) if (nodes[k].name.toLowerCase().indexOf(lower) >= 0) i = k;
    if (i < 0) { statusLine.textContent = "no node's name contains “" + text + "”"; return; }
    selectNode(i, true);
  }
  search.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); find(); }
    else if (e.key === "Escape") { search.value = ""; clear(); }
  });
  search.addEventListener("input", function (e) {  // a name picked from the list, not typed
    if ((!e.inputType || e.inputType === "insertReplacementText") && byName.has(search.value)) find();
  });

  // the cost-term toggles: every term, or one alone
  var fieldset = document.getElementById("bx-terms");
  if (terms.length < 2) fieldset.hidden = true;
  [-1].concat(terms.map(function (t, k) { return k; })).forEach(function (k) {
    var label = el("label"), radio = el("input");
    radio.type = "radio";
    radio.name = "bx-term";
    radio.value = String(k);
    radio.checked = k === -1;
    radio.addEventListener("change", function () { only = k; render(); });
    label.append(radio);
    if (k >= 0) {
      var swatch = el("span", "", "bx-swatch");
      swatch.style.borderTopColor = terms[k].color;
      label.append(swatch, el("span", terms[k].name + " only"));
    } else {
      label.append(el("span", " all (" + terms.length + ")"));
    }
    fieldset.append(label);
  });

  var idle = data.notes.length ? data.notes.join("; ")
    : "Click a node to see the paths of ∂" + data.root + "/∂node";
  fit();
  clear();
  document.body.dataset.ready = performance.now().toFixed(1);  // what the tests wait for and report
  document.body.dataset.initMs = (performance.now() - started).toFixed(1);
})();
