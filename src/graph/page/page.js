// The graph page: details on click, filters, search, zoom and pan. The
// drawing is static SVG laid out by ov; this only shows, hides and moves it.
(function () {
  "use strict";
  const doc = JSON.parse(document.getElementById("ov-graph").textContent);
  const nodeEls = Array.from(document.querySelectorAll("#nodes > g.node"));
  const edgeEls = Array.from(document.querySelectorAll("#edges > path.edge"));
  const deps = doc.nodes.map(() => []);
  const users = doc.nodes.map(() => []);
  const edgesOf = doc.nodes.map(() => []);
  edgeEls.forEach((el, k) => {
    const a = +el.dataset.from, b = +el.dataset.to;
    deps[b].push(a);
    users[a].push(b);
    edgesOf[a].push(k);
    edgesOf[b].push(k);
  });

  // ---- details --------------------------------------------------------
  const details = document.getElementById("details");
  const text = (id, s) => { document.getElementById(id).textContent = s; };
  const ms = (v) => v == null ? "never" : v < 1000 ? v + " ms" : (v / 1000).toFixed(1) + " s";
  const bytes = (v) => v == null ? "—" : v < 1024 ? v + " B" : v < 1048576 ? (v / 1024).toFixed(1) + " KiB" : (v / 1048576).toFixed(1) + " MiB";
  let selected = -1;
  function select(i) {
    if (selected >= 0) {
      nodeEls[selected].classList.remove("selected");
      edgesOf[selected].forEach((k) => edgeEls[k].classList.remove("lit"));
    }
    selected = i;
    if (i < 0) { details.hidden = true; return; }
    const n = doc.nodes[i];
    nodeEls[i].classList.add("selected");
    edgesOf[i].forEach((k) => edgeEls[k].classList.add("lit"));
    text("d-id", n.id);
    text("d-kind", n.kind);
    text("d-state", n.state + (n.message ? " — " + n.message : "") + (n.critical ? " (on the critical path)" : ""));
    text("d-key", n.key);
    text("d-last", ms(n.last_ms));
    text("d-bytes", bytes(n.bytes));
    text("explain", n.explain.join("\n"));
    const body = document.querySelector("#ingredients tbody");
    body.replaceChildren(...n.ingredients.map((g) => {
      const tr = document.createElement("tr");
      const d = document.createElement("td");
      d.textContent = g.digest.slice(0, 16);
      d.title = g.digest;
      const name = document.createElement("td");
      name.textContent = g.name;
      tr.append(d, name);
      return tr;
    }));
    details.hidden = false;
  }
  document.getElementById("nodes").addEventListener("click", (ev) => {
    const g = ev.target.closest("g.node");
    if (g) select(+g.dataset.i);
  });
  document.getElementById("close").addEventListener("click", () => select(-1));

  // ---- filters --------------------------------------------------------
  const target = document.getElementById("target");
  const stateBoxes = Array.from(document.querySelectorAll("#states input"));
  function closure(i) {
    const seen = new Uint8Array(doc.nodes.length);
    const stack = [i];
    seen[i] = 1;
    while (stack.length) {
      for (const d of deps[stack.pop()]) if (!seen[d]) { seen[d] = 1; stack.push(d); }
    }
    return seen;
  }
  function applyFilters() {
    const t = target.value === "" ? null : closure(+target.value);
    const shown = new Set(stateBoxes.filter((b) => b.checked).map((b) => b.value));
    const visible = doc.nodes.map((n, i) => (!t || t[i] === 1) && shown.has(n.state));
    nodeEls.forEach((el, i) => el.classList.toggle("hidden", !visible[i]));
    edgeEls.forEach((el) => el.classList.toggle("hidden", !(visible[+el.dataset.from] && visible[+el.dataset.to])));
  }
  target.addEventListener("change", () => { applyFilters(); fit(); });
  stateBoxes.forEach((b) => b.addEventListener("change", applyFilters));

  // ---- search ---------------------------------------------------------
  const search = document.getElementById("search");
  let matches = [];
  search.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    matches.forEach((i) => nodeEls[i].classList.remove("match"));
    matches = q ? doc.nodes.flatMap((n, i) => n.id.toLowerCase().includes(q) ? [i] : []) : [];
    matches.forEach((i) => nodeEls[i].classList.add("match"));
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && matches.length) { select(matches[0]); centreOn(matches[0]); }
  });

  // ---- zoom and pan ---------------------------------------------------
  // A CSS transform on one element: the browser moves a composited layer
  // while the view changes and draws the SVG again only when it settles.
  const viewport = document.getElementById("viewport");
  const canvas = document.getElementById("canvas");
  const svg = canvas.querySelector("svg");
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height");
  let view = { x: 0, y: 0, s: 1 };
  let frame = 0, settle = 0;
  function draw() {
    frame = 0;
    canvas.style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.s + ")";
  }
  function moved() {
    canvas.classList.add("moving");
    if (!frame) frame = requestAnimationFrame(draw);
    clearTimeout(settle);
    settle = setTimeout(() => canvas.classList.remove("moving"), 200);
  }
  function zoomAt(px, py, factor) {
    const s = Math.min(4, Math.max(0.02, view.s * factor));
    view.x = px - (px - view.x) * (s / view.s);
    view.y = py - (py - view.y) * (s / view.s);
    view.s = s;
    moved();
  }
  function fit() {
    const r = viewport.getBoundingClientRect();
    const s = Math.min(1, r.width / Math.max(W, 1), r.height / Math.max(H, 1));
    view = { x: (r.width - W * s) / 2, y: Math.max(0, (r.height - H * s) / 2), s: s };
    moved();
  }
  function centreOn(i) {
    const r = viewport.getBoundingClientRect();
    const m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(nodeEls[i].getAttribute("transform"));
    const s = Math.max(view.s, 0.8);
    view = { x: r.width / 2 - (+m[1] + 95) * s, y: r.height / 2 - (+m[2] + 23) * s, s: s };
    moved();
  }
  viewport.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = viewport.getBoundingClientRect();
    zoomAt(ev.clientX - r.left, ev.clientY - r.top, Math.exp(-ev.deltaY * 0.0015));
  }, { passive: false });
  let drag = null;
  viewport.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest("g.node")) return;
    drag = { x: ev.clientX - view.x, y: ev.clientY - view.y };
    viewport.classList.add("dragging");
    viewport.setPointerCapture(ev.pointerId);
  });
  viewport.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    panBy(ev.clientX - drag.x - view.x, ev.clientY - drag.y - view.y);
  });
  const stop = () => { drag = null; viewport.classList.remove("dragging"); };
  viewport.addEventListener("pointerup", stop);
  viewport.addEventListener("pointercancel", stop);
  const centre = (f) => { const r = viewport.getBoundingClientRect(); zoomAt(r.width / 2, r.height / 2, f); };
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("zoom-in").addEventListener("click", () => centre(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => centre(0.8));

  // For tests and scripts: the same operations the controls perform.
  function panBy(dx, dy) { view.x += dx; view.y += dy; moved(); }
  window.ovGraph = { doc: doc, select: select, fit: fit, zoomAt: zoomAt, panBy: panBy, view: () => view, applyFilters: applyFilters };
  fit();
  // When the page became interactive, and when the fitted graph was first
  // drawn (the frame after it), for the bench: ms since navigation.
  window.ovGraph.readyMs = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => { window.ovGraph.paintedMs = performance.now(); }));
})();
