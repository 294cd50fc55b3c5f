// vane's board pages: the list of boards (/), one board (/board/SLUG) and
// the check states (/checks). A board is drawn from its template as the
// agent describes it (/api/board/SLUG) and kept live over one server-sent
// events connection; graphs read the local history for the chosen range.
// The page writes markers for tests and tools: body[data-page],
// body[data-ready], .widget[data-widget][data-variant][data-filled],
// [data-value] on value and gauge widgets, [data-points] and [data-first]
// (the earliest time shown, ms) on graphs, body[data-updates].
"use strict";

const app = document.getElementById("app");
const COLOURS = ["#3b7dd8", "#e0773c", "#2e9d57", "#a35bd1", "#d2352b", "#1ba3a3", "#8a6d3b", "#d15ba3"];
const RANGES = [["5m", 300], ["15m", 900], ["1h", 3600], ["6h", 21600], ["24h", 86400]];
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.setAttribute("class", v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function fmt(v, unit) {
  if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) return "–";
  if (unit === "B" || unit === "B/s") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v >= 100 || i === 0 ? 0 : 1) + " " + units[i] + (unit === "B/s" ? "/s" : "");
  }
  const a = Math.abs(v);
  const s = a >= 1e9 ? (v / 1e9).toFixed(2) + "G" : a >= 1e6 ? (v / 1e6).toFixed(2) + "M" :
    a >= 100 || Number.isInteger(v) ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
  return unit ? s + " " + unit : s;
}

function ago(ms) {
  if (!ms) return "";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : s < 86400 ? Math.round(s / 3600) + " h ago" : Math.round(s / 86400) + " d ago";
}

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()));
  return r.json();
}

function ready() { document.body.dataset.ready = "1"; }

// What the agent wrote into the page for its first drawing, if anything.
function initial() {
  const e = document.getElementById("initial");
  try { return e ? JSON.parse(e.textContent) : null; } catch (_) { return null; }
}

// ---- the list of boards -------------------------------------------------

async function listPage() {
  document.body.dataset.page = "boards";
  const boards = initial() || await getJSON("/api/boards");
  app.replaceChildren(el("h1", { text: "Boards" }));
  if (!boards.length) app.append(el("p", { class: "empty", text: "No boards: add a board sink to the config." }));
  const ul = el("ul", { class: "boards" });
  for (const b of boards) {
    ul.append(el("li", { "data-board": b.slug }, el("a", { href: "/board/" + b.slug, text: b.title || b.name }),
      el("span", { class: "owner", text: " · " + b.name + " · " + b.widgets + " widgets · owned by " + b.owner })));
  }
  app.append(ul);
  ready();
}

// ---- the check states ----------------------------------------------------

function statusList(items) {
  const t = el("table", { class: "checks" });
  for (const c of items) {
    t.append(el("tr", { "data-check": c.label, "data-state": c.state },
      el("td", {}, el("span", { class: "state " + c.state, text: c.state })),
      el("td", { text: c.label + (c.host ? " @ " + c.host : "") }),
      el("td", { class: "dim", text: "since " + ago(c.since) }),
      el("td", { text: c.description || "" })));
  }
  return t;
}

async function checksPage() {
  document.body.dataset.page = "checks";
  let first = initial();
  const draw = async () => {
    const items = first || await getJSON("/api/checks");
    first = null;
    const body = items.length ? statusList(items) : el("p", { class: "empty", text: "No check has reported a state yet." });
    app.replaceChildren(el("h1", { text: "Checks" }), body);
    ready();
  };
  await draw();
  setInterval(() => draw().catch(() => {}), 5000);
}

// ---- one board -----------------------------------------------------------

let board = null;     // the board as described by the agent
let range = 900;      // seconds shown by graphs
const state = {};     // per widget tag: {el, seen: [[ms, v]], lines}

function sparkline(points, w, h) {
  const svg = el("svg:svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", class: "spark", height: h });
  if (points.length < 2) return svg;
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const d = points.map((p, i) => (i ? "L" : "M") + ((p[0] - x0) / (x1 - x0 || 1) * w).toFixed(1) + "," +
    (h - 2 - (p[1] - y0) / (y1 - y0 || 1) * (h - 4)).toFixed(1)).join("");
  svg.append(el("svg:path", { d, fill: "none", stroke: COLOURS[0], "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  return svg;
}

function chart(w, lines) {
  const W = 600, H = 200;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "chart" });
  const now = Date.now(), x0 = now - range * 1000;
  let y0 = w.min ?? Infinity, y1 = w.max ?? -Infinity;
  for (const l of lines) for (const p of l.points) {
    if (p[1] === null) continue;
    if (w.min === null) y0 = Math.min(y0, p[1]);
    if (w.max === null) y1 = Math.max(y1, p[1]);
  }
  if (!isFinite(y0)) y0 = 0;
  if (!isFinite(y1) || y1 <= y0) y1 = y0 + 1;
  for (let i = 1; i < 4; i++) svg.append(el("svg:line", { x1: 0, x2: W, y1: H * i / 4, y2: H * i / 4, stroke: "var(--line)", "vector-effect": "non-scaling-stroke" }));
  lines.forEach((l, i) => {
    let d = "", pen = "M";
    for (const p of l.points) {
      if (p[0] < x0) continue;
      if (p[1] === null) { pen = "M"; continue; }
      d += pen + ((p[0] - x0) / (now - x0) * W).toFixed(1) + "," + (H - (p[1] - y0) / (y1 - y0) * H).toFixed(1);
      pen = "L";
    }
    if (d) svg.append(el("svg:path", { d, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  });
  const legend = el("div", { class: "legend" }, el("span", { class: "dim", text: fmt(y1, w.unit) + " max" }));
  lines.forEach((l, i) => {
    const last = l.points.length ? l.points[l.points.length - 1][1] : null;
    legend.append(el("i", { style: "background:" + COLOURS[i % COLOURS.length] }), l.label + " " + fmt(last, w.unit));
  });
  return [svg, legend];
}

// The widget's data as the page draws it, in the variant's shape.
function drawWidget(w) {
  const s = state[w.tag];
  const d = w.data || {};
  const body = el("div", { class: "body" });
  const stale = typeof d.expires_at === "number" && d.expires_at * 1000 < Date.now();
  s.el.classList.toggle("stale", stale);
  s.el.classList.toggle("priority", (d.priority ?? w.priority) > 0);
  s.el.querySelector("h2").textContent = d.title || w.title || w.tag;
  let filled = true;
  switch (w.variant) {
    case "value": {
      filled = typeof d.value === "number";
      const seen = s.seen;
      const prev = seen.length > 1 ? seen[seen.length - 2][1] : null;
      body.append(el("div", {}, el("span", { class: "big", text: fmt(d.value, d.unit || w.unit) }),
        prev === null || !filled ? null : el("span", { class: "delta", text: (d.value >= prev ? "▲ " : "▼ ") + fmt(Math.abs(d.value - prev), d.unit || w.unit) })));
      body.append(sparkline(seen, 200, 36));
      if (filled) s.el.dataset.value = d.value;
      break;
    }
    case "gauge": {
      filled = typeof d.value === "number";
      const lo = d.min ?? w.min ?? 0, hi = d.max ?? w.max ?? 100;
      const f = Math.max(0, Math.min(1, ((d.value ?? lo) - lo) / (hi - lo || 1)));
      const a = Math.PI * (1 - f), r = 40;
      const svg = el("svg:svg", { viewBox: "0 0 100 56", height: 70 },
        el("svg:path", { d: "M10,50 A40,40 0 0 1 90,50", fill: "none", stroke: "var(--line)", "stroke-width": 10 }),
        el("svg:path", { d: `M10,50 A40,40 0 0 1 ${(50 + r * Math.cos(a)).toFixed(2)},${(50 - r * Math.sin(a)).toFixed(2)}`, fill: "none", stroke: f > .9 ? "var(--critical)" : f > .75 ? "var(--warning)" : COLOURS[0], "stroke-width": 10 }));
      body.append(svg, el("div", { class: "big", text: fmt(d.value, d.unit || w.unit) }));
      if (filled) s.el.dataset.value = d.value;
      break;
    }
    case "multivalue": {
      const vs = d.values || [];
      filled = vs.length > 0;
      body.append(el("div", { class: "kv" }, ...vs.map(v => el("div", {}, el("span", { text: v.label }), el("b", { text: fmt(v.value, v.unit || w.unit) })))));
      break;
    }
    case "graph": {
      // Until the history's range comes, the latest value of each line.
      const lines = s.lines || d.series || (d.now || []).map(n => ({ label: n.label, points: [[n.time, n.value]] }));
      filled = lines.some(l => l.points.length > 0);
      body.append(...chart(w, lines));
      const ts = lines.flatMap(l => l.points.filter(p => p[1] !== null).map(p => p[0]));
      s.el.dataset.points = ts.length;
      s.el.dataset.first = ts.length ? Math.min(...ts) : "";
      break;
    }
    case "barchart": {
      const bars = d.bars || [];
      filled = bars.length > 0;
      const hi = w.max ?? Math.max(...bars.map(b => b.value), 1);
      for (const b of bars) {
        body.append(el("div", { class: "bar" }, el("span", { class: "name", text: b.label, title: b.label }),
          el("span", { class: "track" }, el("span", { class: "fill", style: `display:block;width:${Math.max(0, Math.min(100, b.value / hi * 100)).toFixed(1)}%` })),
          el("span", { text: fmt(b.value, w.unit) })));
      }
      break;
    }
    case "table": {
      const rows = d.rows || [];
      filled = rows.length > 0;
      const t = el("table", {});
      if (d.columns) t.append(el("tr", {}, ...d.columns.map(c => el("th", { text: c }))));
      for (const r of rows) t.append(el("tr", {}, ...r.map(c => typeof c === "number" ? el("td", { class: "num", text: fmt(c, w.unit) }) : el("td", { text: String(c) }))));
      body.append(t);
      break;
    }
    case "text":
      filled = typeof d.text === "string";
      body.append(el("p", { text: d.text || "" }));
      break;
    case "log": {
      const ms = (d.messages || []).slice().reverse();
      filled = ms.length > 0;
      body.append(el("ul", { class: "log" }, ...ms.map(m => el("li", {}, el("time", { text: m.time ? new Date(m.time).toLocaleTimeString() : "" }), String(m.text)))));
      break;
    }
    case "status":
      filled = Array.isArray(d.items);
      body.append(d.items && d.items.length ? statusList(d.items) : el("p", { class: "empty", text: "No check has reported a state yet." }));
      break;
    case "upstatus": {
      const up = d.up || [], down = d.down || [];
      filled = up.length + down.length > 0;
      body.append(el("div", { class: "big", text: down.length ? down.length + " down" : "all up" }),
        el("div", {}, ...down.map(n => el("span", { class: "state critical", text: n })), ...up.map(n => el("span", { class: "state ok", text: n }))));
      break;
    }
    case "servers": {
      const ss = d.servers || [];
      filled = ss.length > 0;
      const t = el("table", {}, el("tr", {}, ...["server", "state", "cpu", "memory", "disk"].map(c => el("th", { text: c }))));
      for (const v of ss) {
        t.append(el("tr", { "data-server": v.name }, el("td", { text: v.name }), el("td", {}, el("span", { class: "state " + (v.state || "unknown"), text: v.state || "unknown" })),
          ...["cpu", "memory", "disk"].map(k => el("td", { class: "num", text: fmt(v[k], "%") }))));
      }
      body.append(t);
      break;
    }
    default:
      body.append(el("p", { class: "empty", text: "unknown variant " + w.variant }));
  }
  s.el.dataset.filled = filled ? "1" : "0";
  s.el.querySelector(".body").replaceWith(body);
}

async function loadRange(w) {
  const to = Date.now(), from = to - range * 1000;
  const r = await getJSON(`/api/board/${board.slug}/range?tag=${encodeURIComponent(w.tag)}&from=${from}&to=${to}&points=300`);
  const s = state[w.tag];
  if (w.variant === "graph") s.lines = r.lines;
  else if (r.lines.length === 1) s.seen = r.lines[0].points.filter(p => p[1] !== null).slice(-120);
  drawWidget(w);
}

function drawBoard(b) {
  board = b;
  document.title = b.title + " · vane";
  document.body.classList.toggle("dark", b.theme === "dark");
  const grid = el("div", { class: "grid", style: `grid-template-columns: repeat(${b.columns}, minmax(0, 1fr))` });
  for (const w of b.widgets) {
    const e = el("section", { class: "widget", "data-widget": w.tag, "data-variant": w.variant, "data-flow": w.flow,
      style: `grid-column: ${w.column + 1} / span ${w.width}; grid-row: ${w.row + 1} / span ${w.height}` },
      el("h2", { text: w.title || w.tag }), el("div", { class: "body" }));
    state[w.tag] = { el: e, seen: [], lines: null };
    if (typeof w.data?.value === "number") state[w.tag].seen.push([w.updated || Date.now(), w.data.value]);
    grid.append(e);
  }
  app.replaceChildren(el("h1", { text: b.title }),
    el("p", { class: "owner", text: `${b.name} · from ${b.origin} · owned by ${b.owner}: filled by its jobs, not edited here` }), grid);
  for (const w of b.widgets) {
    drawWidget(w);
    if (w.bound === "history" && (w.variant === "graph" || w.variant === "value")) loadRange(w).catch(e => console.error(e));
  }
  ready();
}

function update(flows) {
  for (const [tag, f] of Object.entries(flows)) {
    const w = board && board.widgets.find(w => w.tag === tag);
    if (!w) continue;
    w.data = f.data;
    w.updated = f.updated;
    const s = state[tag];
    if (typeof f.data.value === "number") {
      s.seen.push([f.updated || Date.now(), f.data.value]);
      if (s.seen.length > 120) s.seen.shift();
    }
    if (w.variant === "graph" && s.lines && Array.isArray(f.data.now)) {
      for (const p of f.data.now) {
        let l = s.lines.find(l => l.label === p.label);
        if (!l) s.lines.push(l = { label: p.label, points: [] });
        const last = l.points[l.points.length - 1];
        if (!last || p.time > last[0]) l.points.push([p.time, p.value]);
      }
    }
    drawWidget(w);
  }
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

function rangeButtons() {
  const box = document.getElementById("range");
  box.replaceChildren(...RANGES.map(([name, secs]) => {
    const b = el("button", { text: name, "data-range": secs, class: secs === range ? "on" : "" });
    b.onclick = () => {
      range = secs;
      rangeButtons();
      for (const w of board.widgets) if (w.bound === "history" && w.variant === "graph") loadRange(w).catch(e => console.error(e));
    };
    return b;
  }));
}

function boardPage(slug) {
  document.body.dataset.page = "board";
  rangeButtons();
  const first = initial();
  if (first) drawBoard(first);
  const live = document.getElementById("live");
  const es = new EventSource(`/api/board/${encodeURIComponent(slug)}/events`);
  es.addEventListener("board", ev => drawBoard(JSON.parse(ev.data)));
  es.onmessage = ev => update(JSON.parse(ev.data).flows || {});
  es.onopen = () => live.classList.add("on");
  es.onerror = () => {
    live.classList.remove("on");
    if (!board) getJSON(`/api/board/${encodeURIComponent(slug)}`).then(drawBoard, e => {
      app.replaceChildren(el("p", { class: "empty", text: String(e.message) }));
      ready();
    });
  };
  // Graphs move with the clock between points.
  setInterval(() => { if (board) for (const w of board.widgets) if (w.variant === "graph" && state[w.tag].lines) drawWidget(w); }, 10000);
}

function start() {
  const p = location.pathname;
  const fail = e => { app.replaceChildren(el("p", { class: "empty", text: String(e.message || e) })); ready(); };
  if (p === "/") listPage().catch(fail);
  else if (p === "/checks") checksPage().catch(fail);
  else if (p.startsWith("/board/")) boardPage(decodeURIComponent(p.slice(7)));
  else fail("no such page");
}

start();
