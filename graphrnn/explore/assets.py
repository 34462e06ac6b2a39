"""The explorer page's HTML skeleton, styles and script, inlined into every page (nothing is fetched).

They are Python strings rather than files beside the package, so that every way of
installing graphrnn carries them.  The script reads the page's data (``<script
id="gr-data" type="application/json">``) and the SVG drawn by graphviz; it computes
no gradient of its own, it only shows the numbers Python put in the data.

Positions: 0 is the start (data and parameters only), 1..F the forward pass (one
node of the evaluation order each), F+1..F+B the backward pass (one node each, in
the reverse order).  The URL hash names the position: ``#start``,
``#forward:h(3)``, ``#backward:h(1)``.
"""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>%%TITLE%%</title>
<style>%%CSS%%</style>
</head><body>
<header>
  <div class="titles"><h1 id="title"></h1><div id="subtitle"></div></div>
  <nav id="controls" aria-label="step through the run">
    <button id="first" title="the start (Home)">&#x21E4;</button>
    <button id="prev" title="one step back (&#x2190;)">&#x25C0;</button>
    <button id="play" title="play / pause (space)">&#x25B6; play</button>
    <button id="next" title="one step on (&#x2192;)">&#x25B6;</button>
    <button id="last" title="the end of the backward pass (End)">&#x21E5;</button>
    <input id="slider" type="range" min="0" value="0" aria-label="position in the run">
    <span id="where" aria-live="polite"></span>
  </nav>
</header>
<main>
  <section id="graph-area">
    <div id="phase-bar"><span id="legend"></span>
      <span id="zoom"><button id="zoom-out" title="a smaller drawing (-)">&minus;</button><button id="zoom-in"
        title="a larger drawing (+)">+</button></span></div>
    <div id="graph">%%SVG%%</div>
  </section>
  <aside id="panel" aria-live="polite"></aside>
  <section id="params-area">
    <h2>Parameters: the dummy copies <i>W</i><sup>(<i>t</i>)</sup> of &sect;10.2.2 fill up in the backward pass and add up to &nabla;<sub><i>W</i></sub><i>L</i></h2>
    <div id="params"></div>
  </section>
</main>
<footer>&#x2190; &#x2192; step &middot; space plays and pauses &middot; Home / End &middot; + / &minus; zoom &middot; click a node to go to it &middot;
the address (#&hellip;) keeps the position &middot; drawn by graphrnn from the spec, numbers from one run of its engine</footer>
<script id="gr-data" type="application/json">%%DATA%%</script>
<script>%%JS%%</script>
</body></html>
"""

CSS = r"""
:root { --ink: #1d1d1d; --muted: #5b5b5b; --line: #d9d9d9; --current: #ffd84d; --panel: #fafafa; }
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       background: #fff; }
header { padding: 6px 14px 6px; border-bottom: 1px solid var(--line); }
.titles { display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 14px; margin-bottom: 4px; }
h1 { font-size: 17px; margin: 0; font-weight: 600; }
#subtitle { color: var(--muted); font-size: 13px; }
#controls { display: flex; align-items: center; gap: 6px; }
#controls button { font-size: 15px; min-width: 36px; height: 30px; border: 1px solid #bbb; border-radius: 6px;
                   background: #fff; cursor: pointer; }
#controls button:hover { background: #f1f1f1; }
#controls button:focus-visible, #slider:focus-visible { outline: 3px solid #2b6cb0; outline-offset: 1px; }
#play { min-width: 84px !important; }
#slider { flex: 1; min-width: 120px; }
#where { font-variant-numeric: tabular-nums; min-width: 230px; font-size: 14px; font-weight: 600; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 450px; grid-template-rows: auto auto;
       gap: 0 12px; padding: 6px 14px 0; }
#graph-area { grid-column: 1; grid-row: 1; min-width: 0; }
#panel { grid-column: 2; grid-row: 1 / span 2; background: var(--panel); border: 1px solid var(--line);
         border-radius: 8px; padding: 10px 12px; align-self: start; max-height: calc(100vh - 90px);
         overflow-y: auto; }
#params-area { grid-column: 1; grid-row: 2; min-width: 0; }
#params-area h2 { font-size: 14px; font-weight: 600; margin: 6px 0 4px; }
#phase-bar { display: flex; justify-content: space-between; align-items: center; flex-wrap: wrap; gap: 4px 12px;
             font-size: 13px; min-height: 22px; }
#phase { font-weight: 600; }
#legend { display: inline-flex; align-items: center; gap: 6px; color: var(--muted); }
#legend .sw { display: inline-block; width: 26px; vertical-align: middle; border-radius: 2px; }
#graph { overflow-x: auto; overflow-y: hidden; text-align: center; }
#graph svg { height: calc(var(--zoom, 1) * min(44vh, var(--natural-height))); width: auto; max-width: none;
             display: inline-block; }
#zoom button { font-size: 14px; width: 28px; height: 24px; border: 1px solid #bbb; background: #fff; cursor: pointer; }
#zoom button:first-child { border-radius: 5px 0 0 5px; } #zoom button:last-child { border-radius: 0 5px 5px 0; }
#graph svg g.node { cursor: pointer; }
#graph svg g.node ellipse, #graph svg g.node polygon { pointer-events: all; }  /* inside an unfilled circle too */
#graph svg .future { opacity: 0.22; }
#graph svg g.node.computed ellipse { fill: #eef3fa; }
#graph svg g.node.current ellipse, #graph svg g.node.current polygon { fill: var(--current); stroke: #000;
       stroke-width: 3.2px; }
#graph svg g.edge.feeding path { stroke: #000; stroke-width: 2.6px; }
#graph svg g.edge.feeding polygon { stroke: #000; fill: #000; }
#graph svg g.edge.past { opacity: 0.5; }
#graph svg g.edge.arrived text, #graph svg g.edge.feeding text { font-weight: bold; }
#graph svg g.edge.copy-filled text { fill: #6a3d9a; font-weight: bold; }
#graph svg g.node.grad-done ellipse { stroke-width: 2.4px; }
#panel h2 { font-size: 19px; margin: 0 0 2px; font-family: "Times New Roman", Times, serif; font-style: italic; }
#panel h3 { font-size: 13px; margin: 9px 0 3px; color: var(--muted); font-weight: 600; }
#panel p { margin: 3px 0; }
#panel .eq { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; background: #fff;
             border: 1px solid var(--line); border-radius: 4px; padding: 4px 6px; overflow-x: auto;
             white-space: pre-wrap; word-break: break-word; }
#panel .note { color: var(--muted); font-size: 13px; }
.norm { font-variant-numeric: tabular-nums; font-weight: 600; }
table.hm { border-collapse: collapse; margin: 3px 0; }
table.hm td { width: 22px; height: 17px; padding: 0; border: 1px solid #fff; }
table.hm.small td { width: 10px; height: 8px; }
table.hm td.marked { outline: 2px solid #000; outline-offset: -2px; }
.hm-row { display: flex; align-items: flex-start; gap: 12px; flex-wrap: wrap; }
.hm-side p { margin: 6px 0 0; }
.scale { font-size: 12px; color: var(--muted); display: flex; align-items: center; gap: 4px; }
.scale .bar { width: 80px; height: 9px; border-radius: 2px;
              background: linear-gradient(to right, #2d004b, #6a4c9a, #b1aad1, #f6f6f7, #fcb761, #c96d0d, #7f3b08); }
table.checks { border-collapse: collapse; font-size: 13px; width: 100%; }
table.checks td, table.checks th { padding: 2px 5px; border-bottom: 1px solid #e6e6e6; text-align: left; }
table.checks td.n { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; text-align: right; }
.ok { color: #1a5e20; font-weight: 600; } .bad { color: #a00000; font-weight: 700; }
ul.copies { margin: 2px 0; padding-left: 0; list-style: none; font-size: 13px; }
ul.arrivals { margin: 2px 0; padding-left: 0; list-style: none; font-size: 13px; }
ul.arrivals li { display: flex; align-items: center; gap: 6px; }
ul.arrivals .sw { display: inline-block; width: 28px; border-radius: 2px; }
#params { overflow-x: auto; padding-bottom: 4px; }
table.params { border-collapse: separate; border-spacing: 4px 2px; font-size: 12px; }
table.params th { font-weight: normal; color: var(--muted); text-align: center; }
table.params th.p { font-family: "Times New Roman", Times, serif; font-style: italic; font-size: 16px; color: var(--ink);
                    text-align: right; padding-right: 4px; }
table.params td { vertical-align: middle; text-align: center; }
table.params td.copy canvas { display: block; margin: 0 auto; border: 1px dashed #bbb; border-radius: 2px; }
table.params td.copy.filled canvas { border: 1px solid #888; }
table.params td.copy.now canvas { outline: 3px solid #000; outline-offset: 1px; }
table.params th.sumhead { text-align: left; padding-left: 8px; }
/* a long unroll scrolls sideways: the names stay at the left and the sums at the right */
table.params th.p, table.params td.sum, table.params th.sumhead, table.params th.corner { position: sticky;
       background: #fff; z-index: 1; }
table.params th.p, table.params th.corner { left: 0; }
table.params td.sum, table.params th.sumhead { right: 0; }
table.params td.sum { padding-left: 8px; border-left: 2px solid var(--line); text-align: left; white-space: nowrap; }
table.params td.sum canvas { vertical-align: middle; border: 1px solid #888; margin-right: 4px; }
footer { color: var(--muted); font-size: 12px; padding: 6px 14px 10px; }
@media (max-width: 1100px) {
  main { grid-template-columns: minmax(0, 1fr); }
  #panel { grid-column: 1; grid-row: 2; max-height: none; }
  #params-area { grid-row: 3; }
}
"""

JS = r"""
(function () {
"use strict";
var D = JSON.parse(document.getElementById("gr-data").textContent);
var F = D.forward.length, B = D.backward.length, N = 1 + F + B;
var svg = document.getElementById("graph-svg");
var pos = 0, timer = null, DELAY = 900;

// ------------------------------------------------------------------ formatting
function esc(s) { return String(s).replace(/[&<>"']/g, function (c) {
  return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; }); }
function fmt(x, digits) {  // a number to read: 7 significant digits unless told
  if (x === null || x === undefined || !isFinite(x)) return "\u2014";
  if (x === 0) return "0";
  var a = Math.abs(x), d = digits || 7;
  if (a >= 1e-4 && a < 1e6) return String(Number(x.toPrecision(d)));
  return x.toExponential(d - 1).replace("e+", "e");
}
function short(x) { return fmt(x, 3); }
function book(key) {  // h[3] -> h^(3) in HTML, W^(3) stays
  var n = D.nodes[key];
  var m = /^(.*)\[(-?\d+)\]$/.exec(key) || /^(.*)\^\((-?\d+)\)$/.exec(key);
  if (!m) return "<i>" + esc(key) + "</i>";
  return "<i>" + esc(m[1]) + "</i><sup>(" + esc(m[2]) + ")</sup>";
}
function plainTitle(key) { return D.nodes[key] ? D.nodes[key].title : key; }
function keyOf(name) {  // h(3), h[3], h^(3) -> h[3]
  if (D.nodes[name]) return name;
  var m = /^(.+?)\^?\((-?\d+)\)$/.exec(name);
  return m ? m[1] + "[" + m[2] + "]" : name;
}

// ------------------------------------------------------------------ colours
// PuOr (ColorBrewer), negative purple, zero white, positive orange: readable with colour-vision deficiencies
var DIVERGING = [[-1, [45, 0, 75]], [-0.66, [106, 76, 154]], [-0.33, [177, 170, 209]], [0, [246, 246, 247]],
                 [0.33, [252, 183, 97]], [0.66, [201, 109, 13]], [1, [127, 59, 8]]];
function diverging(v, scale) {
  if (v === null || v === undefined) return "#9e9e9e";  // NaN or infinity: grey, its tooltip says "—"
  var f = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
  for (var i = 1; i < DIVERGING.length; i++) {
    if (f <= DIVERGING[i][0]) {
      var a = DIVERGING[i - 1], b = DIVERGING[i], u = (f - a[0]) / (b[0] - a[0]);
      var c = [0, 1, 2].map(function (j) { return Math.round(a[1][j] + (b[1][j] - a[1][j]) * u); });
      return "rgb(" + c.join(",") + ")";
    }
  }
  return "rgb(127,59,8)";
}
function heatmap(grid, scale, what, mark, small) {
  var rows = grid.length, cols = rows ? grid[0].length : 0, h = [];
  h.push('<table class="hm' + (small ? " small" : "") + '" aria-label="' + esc(what) + '">');
  for (var i = 0; i < rows; i++) {
    h.push("<tr>");
    for (var j = 0; j < cols; j++) {
      var v = grid[i][j], m = mark && mark.length === 2 && mark[0] === i && mark[1] === j;
      h.push('<td style="background:' + diverging(v, scale) + '"' + (m ? ' class="marked"' : "") + ' title="' +
             esc(what + "[" + i + ", " + j + "] = " + fmt(v)) + '"></td>');
    }
    h.push("</tr>");
  }
  h.push("</table>");
  return h.join("");
}
function scaleNote(scale) {
  return '<div class="scale"><span>\u2212' + short(scale) + '</span><span class="bar"></span><span>+' + short(scale) +
         "</span></div>";
}
function drawCanvas(canvas, grid, scale, cell) {
  var rows = grid.length, cols = rows ? grid[0].length : 0;
  canvas.width = cols * cell; canvas.height = rows * cell;
  var ctx = canvas.getContext("2d");
  for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) {
    ctx.fillStyle = diverging(grid[i][j], scale); ctx.fillRect(j * cell, i * cell, cell, cell);
  }
}

// ------------------------------------------------------------------ the drawing's elements
var nodeEl = {}, edgeEls = [];
Object.keys(D.nodes).forEach(function (k) {
  var c = D.nodes[k].cls;
  if (c) nodeEl[k] = svg.querySelector("g.node." + c);
});
D.edges.forEach(function (e, j) { edgeEls.push(Array.prototype.slice.call(svg.querySelectorAll("g.edge." + e.cls))); });
svg.style.setProperty("--natural-height", (D.meta.height * 4 / 3) + "px");
document.getElementById("graph").style.setProperty("--natural-height", (D.meta.height * 4 / 3) + "px");
Object.keys(nodeEl).forEach(function (k) {
  if (!nodeEl[k]) return;
  nodeEl[k].addEventListener("click", function () { goToNode(k); });
});

function classes(el, names, on) { names.forEach(function (n) { el.classList.toggle(n, on); }); }
function paint(j, colour, width) {
  edgeEls[j].forEach(function (g) {
    g.querySelectorAll("path").forEach(function (p) {
      if (colour) { p.style.stroke = colour; p.style.strokeWidth = width + "px"; }
      else { p.style.stroke = ""; p.style.strokeWidth = ""; }
    });
    g.querySelectorAll("polygon").forEach(function (p) {
      if (colour) { p.style.stroke = colour; p.style.fill = colour; } else { p.style.stroke = ""; p.style.fill = ""; }
    });
  });
}
function strokeNode(k, colour) {
  var g = nodeEl[k]; if (!g) return;
  g.querySelectorAll("ellipse, polygon").forEach(function (p) { p.style.stroke = colour || ""; });
}

// ------------------------------------------------------------------ positions and the URL hash
function nameOf(p) {
  if (p <= 0) return "start";
  if (p <= F) return "forward:" + plainTitle(D.forward[p - 1]);
  return "backward:" + plainTitle(D.backward[p - F - 1]);
}
function parsePosition(hash) {
  var h = decodeURIComponent((hash || "").replace(/^#/, ""));
  if (!h || h === "start") return 0;
  if (/^\d+$/.test(h)) return Math.max(0, Math.min(N - 1, parseInt(h, 10)));
  var m = /^(forward|backward):(.+)$/.exec(h);
  if (!m) return null;
  var list = m[1] === "forward" ? D.forward : D.backward, i = list.indexOf(keyOf(m[2]));
  if (i < 0) return null;
  return m[1] === "forward" ? i + 1 : F + 1 + i;
}
function writeHash(p) {
  var h = "#" + nameOf(p);
  // inline in a notebook the page is an about:srcdoc frame, whose address cannot keep anything
  if (location.protocol === "about:" || decodeURIComponent(location.hash) === h) return;
  try { history.replaceState(null, "", h); } catch (err) { /* a sandboxed frame: no address to keep */ }
}
function goToNode(k) {
  var i;
  if (pos > F && (i = D.backward.indexOf(k)) >= 0) go(F + 1 + i);
  else if ((i = D.forward.indexOf(k)) >= 0) go(i + 1);
}

// ------------------------------------------------------------------ the drawing at a position
function drawGraph(p) {
  var fwdDone = {}, bwdDone = {}, cur = null, phase = p === 0 ? "start" : p <= F ? "forward" : "backward";
  var nf = Math.min(p, F), nb = Math.max(0, p - F);
  for (var i = 0; i < nf; i++) fwdDone[D.forward[i]] = true;
  for (i = 0; i < nb; i++) bwdDone[D.backward[i]] = true;
  if (phase === "forward") cur = D.forward[p - 1];
  if (phase === "backward") cur = D.backward[p - F - 1];
  var computed = {}; D.forward.forEach(function (k) { computed[k] = true; });
  Object.keys(nodeEl).forEach(function (k) {
    var g = nodeEl[k]; if (!g) return;
    classes(g, ["future", "computed", "current", "grad-done"], false);
    strokeNode(k, null);
    if (computed[k] && !fwdDone[k]) g.classList.add("future");
    if (computed[k] && fwdDone[k] && phase === "forward") g.classList.add("computed");
    if (k === cur) g.classList.add("current");
    if (bwdDone[k] && k !== cur) { g.classList.add("grad-done"); strokeNode(k, gradColour(D.nodes[k].gnorm)); }
  });
  var filledNow = {};
  if (phase === "backward") (D.received[cur] || []).forEach(function (pt) { filledNow[pt[0]] = true; });
  D.edges.forEach(function (e, j) {
    var future = computed[e.dst] && !fwdDone[e.dst];
    var feeding = phase === "forward" && e.dst === cur;
    var arrived = phase === "backward" && e.src === cur && bwdDone[e.dst] && e.norm !== null;
    var passed = phase === "backward" && bwdDone[e.dst] && e.norm !== null;
    edgeEls[j].forEach(function (g) {
      classes(g, ["future", "feeding", "arrived", "past", "copy-filled"], false);
      if (future) g.classList.add("future");
      if (feeding) g.classList.add("feeding");
      if (arrived) g.classList.add("arrived");
      if (passed && !arrived) g.classList.add("past");
      if (phase === "backward" && e.dst === cur && e.param && filledNow[e.param]) g.classList.add("copy-filled");
    });
    paint(j, passed ? e.colour : null, e.width);
  });
  if (cur && nodeEl[cur]) scrollIntoGraph(nodeEl[cur]);
}
function gradColour(norm) {  // the edge ramp, for a node's outline
  var lo = D.legend[0].exp, hi = D.legend[D.legend.length - 1].exp, best = D.legend[0];
  var lg = norm > 0 ? Math.log10(norm) : lo;
  D.legend.forEach(function (s) { if (Math.abs(s.exp - lg) < Math.abs(best.exp - lg)) best = s; });
  return best.colour;
}
function scrollIntoGraph(g) { scrollIntoBox(document.getElementById("graph"), g); }
function scrollIntoBox(box, el, stuck) {  // sideways only, when el is out of sight (or under a sticky column)
  var r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
  var right = b.right - (stuck ? stuck.getBoundingClientRect().width : 0);
  if (r.left < b.left + 40 || r.right > right - 10)
    box.scrollLeft += (r.left + r.right) / 2 - (b.left + right) / 2;
}

// ------------------------------------------------------------------ the side panel
function valueBlock(k) {
  var n = D.nodes[k], s = D.scales[n.var] || {};
  if (n.value === null) return '<p class="note">no value recorded</p>';
  if (n.labels) return '<p>classes over the batch: <span class="norm">' + esc(n.value[0].join(", ")) + "</span></p>";
  return '<div class="hm-row">' + heatmap(n.value, s.value, n.title) + '<div class="hm-side">' + scaleNote(s.value) +
         "<p>\u2016" + book(k) + '\u2016 = <span class="norm" id="value-norm">' + fmt(n.vnorm) + "</span></p>" +
         (n.value[0].length > 1 ? '<p class="note">a column per example of the batch</p>' : "") + "</div></div>";
}
function inputsList(k) {
  var n = D.nodes[k], parts = n.inputs.map(function (i) {
    var m = D.nodes[i];
    return book(i) + (m && m.vnorm !== null && m.vnorm !== undefined ? ' <span class="note">\u2016\u00b7\u2016 = ' +
           short(m.vnorm) + "</span>" : m && m.labels ? ' <span class="note">(classes)</span>' : "");
  });
  n.params.forEach(function (p) { parts.push("<i>" + esc(p) + "</i>"); });
  return parts.join(", ");
}
function checkTable(c, label) {
  if (!c) return "";
  var entry = c.entry.length ? "[" + c.entry.join(", ") + "]" : "";
  var rows = ['<table class="checks"><tr><th>' + label + esc(entry) + "</th><th></th><th>|\u0394| vs engine</th></tr>",
              '<tr><td>engine (run.grads)</td><td class="n" id="check-engine">' + fmt(c.engine, 10) +
              "</td><td></td></tr>"];
  if (c.derived !== null) rows.push('<tr><td>derived equation</td><td class="n" id="check-derived">' +
      fmt(c.derived, 10) + "</td><td>" + verdict(c.derivedOk, c.engine - c.derived) + "</td></tr>");
  rows.push('<tr><td>finite difference</td><td class="n" id="check-fd">' + fmt(c.fd, 10) + "</td><td>" +
            verdict(c.fdOk, c.engine - c.fd) + "</td></tr></table>");
  return rows.join("");
}
function mark(ok) { return ok ? '<span class="ok">\u2713</span>' : '<span class="bad">\u2717</span>'; }
function verdict(ok, diff) {
  return '<span class="' + (ok ? "ok" : "bad") + '">' + short(Math.abs(diff)) + (ok ? " \u2713" : " \u2717") + "</span>";
}
function panelStart() {
  var m = D.meta, h = ["<h2>before the forward pass</h2>",
    '<p>The data (<i>x</i>, <i>y</i>) and the parameters are set; nothing is computed yet. Press \u2192 (or \u25b6) to ' +
    "evaluate the unrolled graph one node at a time, in the order of the forward pass; after it, the backward pass " +
    "visits the same nodes in reverse and completes each gradient.</p>",
    "<h3>parameters</h3><p>"];
  h.push(Object.keys(D.params).map(function (p) {
    return "<i>" + esc(p) + "</i> " + D.params[p].shape.join("\u00d7") + ' <span class="note">\u2016\u00b7\u2016 = ' +
           short(D.params[p].pnorm) + "</span>";
  }).join("<br>"));
  h.push("</p><h3>total loss</h3><p><i>L</i> = \u03a3<sub><i>t</i></sub> <i>L</i><sup>(<i>t</i>)</sup> = " +
         '<span class="norm">' + fmt(m.loss) + "</span> (summed over the batch)</p>");
  return h.join("");
}
function panelForward(k, i) {
  var n = D.nodes[k], h = ["<h2>" + book(k) + "</h2>",
    ];
  if (n.eqAt) h.push("<h3>equation (the spec, at t = " + esc(n.t) + ")</h3><div class=\"eq\">" + esc(n.eqAt) + "</div>");
  h.push("<h3>reads</h3><p>" + inputsList(k) + "</p>");
  h.push("<h3>value</h3>" + valueBlock(k));
  return h.join("");
}
function panelBackward(k, i) {
  var n = D.nodes[k], s = D.scales[n.var] || {}, c = D.checks[k], h = [];
  h.push("<h2>\u2207<sub>" + book(k) + "</sub> <i>L</i></h2>");
  h.push("<h3>gradient" + (c && c.entry.length ? " (the checked entry framed)" : "") + "</h3>");
  h.push('<div class="hm-row">' + (n.grad ? heatmap(n.grad, s.grad, "\u2207 " + n.title, c ? c.entry : null) : "") +
         '<div class="hm-side">' + (n.grad ? scaleNote(s.grad) : "") +
         "<p>\u2016\u2207<sub>" + book(k) + '</sub> <i>L</i>\u2016 = <span class="norm" id="grad-norm" data-value="' +
         n.gnorm + '">' + fmt(n.gnorm) + "</span></p></div></div>");
  var arrivals = [];
  D.edges.forEach(function (e) {
    if (e.src === k && e.norm !== null) arrivals.push(e);
  });
  if (n.loss && !arrivals.length) {
    h.push("<h3>arrived from</h3><p>the total loss <i>L</i> = \u03a3<sub><i>t</i></sub> <i>L</i><sup>(<i>t</i>)</sup>, " +
           "so \u2202<i>L</i>/\u2202" + book(k) + " = 1 (eq. 10.17): every step's loss starts the backward pass " +
           "with the same weight</p>");
  } else if (arrivals.length) {
    h.push("<h3>arrived along (as wide as the gradient each carries back)</h3><ul class=\"arrivals\">");
    arrivals.forEach(function (e) {
      h.push('<li><span class="sw" style="height:' + Math.max(2, e.width) + "px;background:" + e.colour +
             '"></span><span>from ' + book(e.dst) + (e.param ? " through <i>" + esc(e.param) + "</i>" : "") +
             ': <span class="norm">' + fmt(e.norm, 4) + "</span></span></li>");
    });
    h.push("</ul>");
  }
  h.push("<h3>derived equation</h3>");
  if (c && c.equation) {
    h.push('<div class="eq">' + esc(c.equation) + "</div>");
    if (c.plugged) h.push('<div class="eq" id="plugged">' + esc(c.plugged) + "</div>");
  } else {
    h.push('<p class="note" id="no-derivation">' + esc(D.derive.note || "no derived equation for this node") + "</p>");
  }
  h.push("<h3>check of the marked entry</h3>" + checkTable(c, "\u2202L/\u2202" + esc(n.title)));
  var got = D.received[k] || [];
  if (got.length) {
    h.push('<h3>dummy copies completed here (their share of \u2207<i>W</i>, \u00a710.2.2)</h3><ul class="copies">');
    got.forEach(function (pt) {
      var cp = D.params[pt[0]].copies[String(pt[1])], ck = D.copyChecks[pt[0] + "^(" + pt[1] + ")"];
      var line = "\u2207<i>" + esc(pt[0]) + "</i><sup>(" + pt[1] + ")</sup>: \u2016\u00b7\u2016 = " + short(cp.norm);
      if (ck) line += '; <span class="note">[' + ck.entry.join(", ") + "] = " + fmt(ck.engine) + ":</span> " +
        (ck.derived !== null ? "derived " + mark(ck.derivedOk) + " " : "") +
        '<abbr title="finite difference">f.d.</abbr> ' + mark(ck.fdOk);
      h.push('<li title="' + esc(ck && ck.plugged ? ck.plugged : "") + '">' + line + "</li>");
    });
    h.push("</ul>");
  }
  return h.join("");
}

// ------------------------------------------------------------------ the parameters' table
var paramCells = {};
function buildParams() {
  var T = D.meta.T, box = document.getElementById("params"), h = ['<table class="params"><tr><th class="corner"></th>'];
  for (var t = 1; t <= T; t++) h.push("<th><i>t</i>=" + t + "</th>");
  h.push('<th class="sumhead">\u03a3<sub><i>t</i></sub> of the copies filled so far</th></tr>');
  Object.keys(D.params).forEach(function (p) {
    var copied = Object.keys(D.params[p].copies).length > 0 || !D.params[p].initial;
    h.push('<tr><th class="p">' + esc(p) + (copied ? "<sup>(<i>t</i>)</sup>" : "") + "</th>");
    for (var t = 1; t <= T; t++)
      h.push(copied ? '<td class="copy" id="copy-' + esc(p) + "-" + t + '" title="\u2207' + esc(p) + "(" + t +
             ')"><canvas></canvas></td>' : "<td></td>");
    h.push('<td class="sum" id="sum-' + esc(p) + '"><canvas></canvas><span></span></td></tr>');
  });
  h.push("</table>");
  box.innerHTML = h.join("");
  Object.keys(D.params).forEach(function (p) {
    var big = window.innerHeight > 760 ? 36 : 26;  // room for larger cells on a taller screen
    var P = D.params[p], cell = Math.max(2, Math.min(7, Math.floor(big / Math.max(P.shape[0], P.shape[1]))));
    paramCells[p] = {cell: cell};
    for (var t = 1; t <= T; t++) {
      var td = document.getElementById("copy-" + p + "-" + t);
      if (!td) continue;  // a learned initial state has no copies
      var canvas = td.querySelector("canvas");
      canvas.width = P.shape[1] * cell; canvas.height = P.shape[0] * cell;
    }
    var sc = document.getElementById("sum-" + p).querySelector("canvas");
    sc.width = P.shape[1] * cell; sc.height = P.shape[0] * cell;
  });
}
function drawParams(p0) {
  var nb = Math.max(0, p0 - F), T = D.meta.T;
  Object.keys(D.params).forEach(function (p) {
    var P = D.params[p], cell = paramCells[p].cell, sum = null;
    for (var t = 1; t <= T; t++) {
      var td = document.getElementById("copy-" + p + "-" + t);
      if (!td) continue;
      var canvas = td.querySelector("canvas"), c = P.copies[String(t)];
      var filled = c && c.at !== null && c.at < nb, now = filled && c.at === nb - 1;
      td.classList.toggle("filled", !!filled); td.classList.toggle("now", !!now);
      var ctx = canvas.getContext("2d"); ctx.clearRect(0, 0, canvas.width, canvas.height);
      if (filled) {
        drawCanvas(canvas, c.grad, P.scale, cell);
        td.title = "\u2207" + p + "(" + t + "): norm " + fmt(c.norm);
        sum = sum ? sum.map(function (row, i) { return row.map(function (v, j) { return v + c.grad[i][j]; }); }) : c.grad;
      } else td.title = "\u2207" + p + "(" + t + "): not yet (the backward pass reaches step " + t + " later)";
    }
    var sd = document.getElementById("sum-" + p), sc = sd.querySelector("canvas"), span = sd.querySelector("span");
    var sctx = sc.getContext("2d"); sctx.clearRect(0, 0, sc.width, sc.height);
    if (sum) drawCanvas(sc, sum, P.scale, cell);
    var done = Object.keys(P.copies).every(function (t) { return P.copies[t].at !== null && P.copies[t].at < nb; });
    var run = P.running[nb], chk0 = D.paramChecks[p];
    if (P.initial && !Object.keys(P.copies).length) {  // a learned initial state h(0): used once, not per step
      span.innerHTML = '<span class="note">no copies: the learned initial state ' + book(P.initial + "[0]") +
        (nb === B ? '; \u2207<i>' + esc(p) + "</i> <i>L</i> = \u03a3 over the batch of \u2207" + book(P.initial + "[0]") +
         " <i>L</i>, \u2016\u00b7\u2016 = " + short(P.tnorm) + (chk0 ? ", f.d. " + (chk0.fdOk ? "\u2713" : "\u2717") : "")
         : ", complete at the end of the backward pass") + "</span>";
      if (nb === B) drawCanvas(sc, P.total, P.scale, cell);
      sd.title = "";
    } else if (done && nb > 0) {
      var chk = D.paramChecks[p];
      span.innerHTML = '= \u2207<sub><i>' + esc(p) + '</i></sub><i>L</i> <span class="ok">\u2713</span> ' +
        '<span class="note">|\u03a3 \u2212 \u2207' + esc(p) + "| \u2264 " + short(P.sumdiff) + "</span>";
      sd.title = "\u03a3_t \u2207" + p + "(t) = \u2207" + p + ", norm " + fmt(P.tnorm) + "; largest difference " +
        fmt(P.sumdiff) + (chk ? "; its largest entry against a finite difference: " + (chk.fdOk ? "agrees" : "DISAGREES")
        : "");
    } else if (nb === 0) {
      span.innerHTML = '<span class="note">empty until the backward pass</span>';
      sd.title = "";
    } else {
      span.innerHTML = '<span class="note">\u2016\u03a3\u2016 = ' + short(run) + " of " + short(P.tnorm) + "</span>";
      sd.title = "";
    }
  });
  var now = document.querySelector("#params td.copy.now");
  if (now) scrollIntoBox(document.getElementById("params"), now, document.querySelector("#params td.sum"));
}

// ------------------------------------------------------------------ putting it together
function legendHtml() {
  return "gradient flowing back along an edge: " + D.legend.map(function (s) {
    return '<span class="sw" style="height:' + Math.max(2, s.width) + "px;background:" + s.colour + '"></span>10<sup>' +
           String(s.exp).replace("-", "\u2212") + "</sup>";
  }).join(" ");
}
function render() {
  var panel = document.getElementById("panel"), where;
  drawGraph(pos);
  drawParams(pos);
  if (pos === 0) {
    panel.innerHTML = panelStart(); where = "start";
  } else if (pos <= F) {
    panel.innerHTML = panelForward(D.forward[pos - 1], pos - 1);
    where = "forward " + pos + "/" + F + ": " + plainTitle(D.forward[pos - 1]);
  } else {
    var q = pos - F - 1;
    panel.innerHTML = panelBackward(D.backward[q], q);
    where = "backward " + (q + 1) + "/" + B + ": \u2207" + plainTitle(D.backward[q]);
  }
  document.getElementById("legend").innerHTML = pos > F ? legendHtml() : pos > 0 ?
    "forward pass: computed nodes shaded, the current one yellow, the edges it reads black" :
    "start: the data and the parameters; \u2192 steps through the forward pass";
  document.getElementById("where").textContent = where;
  document.getElementById("slider").value = pos;
  document.getElementById("prev").disabled = pos === 0;
  document.getElementById("next").disabled = pos === N - 1;
  document.body.setAttribute("data-position", nameOf(pos));
}
function go(p, keepHash) {
  p = Math.max(0, Math.min(N - 1, p));
  pos = p;
  render();
  if (!keepHash) writeHash(p);
}
function play() {
  if (timer) { clearInterval(timer); timer = null; }
  else {
    if (pos === N - 1) go(0);
    timer = setInterval(function () { if (pos >= N - 1) play(); else go(pos + 1); }, DELAY);
  }
  document.getElementById("play").innerHTML = timer ? "&#x2016; pause" : "&#x25B6; play";
  document.body.setAttribute("data-playing", timer ? "yes" : "no");
}
function stopPlaying() { if (timer) play(); }

document.getElementById("title").innerHTML = "Backpropagation through time, node by node: <i>" +
  esc(D.meta.arch) + "</i>";
document.getElementById("subtitle").textContent = D.meta.title + " \u2014 T = " + D.meta.T + ", batch " + D.meta.batch +
  ", seed " + D.meta.seed + ", loss L = " + fmt(D.meta.loss);
var slider = document.getElementById("slider");
slider.max = N - 1;
slider.addEventListener("input", function () { stopPlaying(); go(parseInt(slider.value, 10)); });
function button(id, f) {
  var b = document.getElementById(id);
  b.addEventListener("click", function (ev) { f(); if (ev.detail > 0) b.blur(); });
}
button("first", function () { stopPlaying(); go(0); });
button("prev", function () { stopPlaying(); go(pos - 1); });
button("next", function () { stopPlaying(); go(pos + 1); });
button("last", function () { stopPlaying(); go(N - 1); });
button("play", play);
var zoom = 1;
function setZoom(z) {
  zoom = Math.max(0.5, Math.min(3, z));
  document.getElementById("graph").style.setProperty("--zoom", zoom);
  svg.style.setProperty("--zoom", zoom);
  document.body.setAttribute("data-zoom", String(zoom));
}
button("zoom-in", function () { setZoom(zoom * 1.25); });
button("zoom-out", function () { setZoom(zoom / 1.25); });
document.addEventListener("keydown", function (ev) {
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  var t = ev.target, tag = t && t.tagName;
  if (tag === "INPUT" && t.type !== "range" || tag === "TEXTAREA" || tag === "SELECT") return;
  var k = ev.key;
  if (k === "ArrowRight" || k === "ArrowDown" || k === "PageDown") { stopPlaying(); go(pos + 1); }
  else if (k === "ArrowLeft" || k === "ArrowUp" || k === "PageUp") { stopPlaying(); go(pos - 1); }
  else if (k === "Home") { stopPlaying(); go(0); }
  else if (k === "End") { stopPlaying(); go(N - 1); }
  else if (k === " " || k === "Spacebar") play();
  else if (k === "+" || k === "=") setZoom(zoom * 1.25);
  else if (k === "-" || k === "_") setZoom(zoom / 1.25);
  else return;
  ev.preventDefault();
});
window.addEventListener("hashchange", function () {
  var p = parsePosition(location.hash);
  if (p !== null && p !== pos) { stopPlaying(); go(p, true); }
});
buildParams();
var start = parsePosition(location.hash);
go(start === null ? 0 : start, start !== null);
document.body.setAttribute("data-ready", "yes");
})();
"""
