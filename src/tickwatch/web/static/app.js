// tickwatch dashboards: three views over the JSON API, ECharts for the charts, SSE for live alerts.
// State lives in the URL (?range=24h&symbol=AAPL), so every view can be linked and reloaded.
// Text from the store (symbols above all) is untrusted: it reaches the DOM only as textContent,
// or through esc() where ECharts renders a tooltip as HTML. The server's CSP forbids inline script.
"use strict";

const SEV = { high: "#ef4444", medium: "#f5b82e", low: "#22c55e" };
const SEVERITIES = ["high", "medium", "low"];
const TYPE = { price_spike: "#3b82f6", volume_surge: "#a855f7", volatility_burst: "#14b8a6" };
const TYPE_LABEL = { price_spike: "Price spike", volume_surge: "Volume surge", volatility_burst: "Volatility burst" };
const PALETTE = ["#3b82f6", "#f97316", "#a855f7", "#14b8a6", "#eab308", "#ec4899", "#22d3ee", "#84cc16", "#f43f5e", "#cbd5e1"];
const AXIS = { axisLine: { lineStyle: { color: "#2a3548" } }, axisLabel: { color: "#8b95a7" }, splitLine: { lineStyle: { color: "#1b2433" } } };
const TOOLTIP = { backgroundColor: "#0e1420", borderColor: "#2a3548", textStyle: { color: "#e6e9ef" } };
const PAGE = 50;
const WINDOW_PAGE = 5000; // rows per /api/windows request; the charts follow next_cursor
const MAX_WINDOW_PAGES = 40; // 200k windows at most per view
const REFRESH_MS = { overview: 30000, alerts: 10000, volatility: 30000 };

const state = {
  dash: "overview",
  range: "24h",
  symbol: "",
  meta: null,
  next: null, // next_cursor of the alert page shown
  cursors: [null], // cursor of each alert-table page seen so far; the last is the current one
  total: 0,
  rows: [],
  charts: {},
  refreshTimer: null,
  pending: null,
};
window.tickwatch = state; // read by the browser tests

// ---------- helpers ----------
const $ = (id) => document.getElementById(id);
function api(path, params) {
  const q = new URLSearchParams();
  q.set("range", state.range);
  if (state.start) q.set("start", state.start); // a fixed span (drill-down) wins over the range
  if (state.end) q.set("end", state.end);
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  return fetch(`${path}?${q}`).then((r) => {
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  });
}
function symbolParams() { return state.symbol ? { symbol: [state.symbol] } : {}; }
// Every window in the range, page by page (the API bounds each answer).
async function allWindows(params) {
  const rows = [];
  let cursor = null;
  for (let i = 0; i < MAX_WINDOW_PAGES; i++) {
    const page = await api("/api/windows", Object.assign({ limit: WINDOW_PAGE, cursor }, params));
    rows.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return rows;
}
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function esc(text) { return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]); }
// An axis in the dashboard style; `extra.axisLabel` is merged, not replaced (units survive).
// Time axes drop a label that would overlap its neighbour (ECharts places them by interval only).
function axis(extra) {
  const label = Object.assign({}, AXIS.axisLabel, extra.type === "time" ? { hideOverlap: true } : {}, extra.axisLabel || {});
  return Object.assign({}, AXIS, extra, { axisLabel: label });
}
// The hours a summary covers, as the bounds of an hourly chart's axis: without them one bar
// (a 1h range) stretches the axis over days of crowded labels.
function hourAxis(summary) {
  const hour = 3600000;
  const bounds = {};
  if (summary.start) bounds.min = Math.floor(ms(summary.start) / hour) * hour;
  if (summary.end) bounds.max = Math.ceil(ms(summary.end) / hour) * hour;
  return axis(Object.assign({ type: "time" }, bounds));
}
function pct(v, digits = 3) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits) + "%"; }
function fmtPrice(x) {
  if (x === null || x === undefined) return "–";
  if (Math.abs(x) >= 1000) return x.toLocaleString("en-US", { maximumFractionDigits: 2, minimumFractionDigits: 2 });
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toPrecision(4);
}
function fmtNum(x, digits = 2) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x);
  if (a >= 1e9) return (x / 1e9).toFixed(1) + "B";
  if (a >= 1e6) return (x / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (x / 1e3).toFixed(1) + "k";
  if (a >= 1) return x.toFixed(digits);
  return x.toPrecision(3);
}
function fmtTime(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : "–"; }
function ms(iso) { return new Date(iso).getTime(); }
function colorOf(symbol) {
  const syms = state.meta ? state.meta.symbols.map((s) => s.symbol) : [];
  const i = syms.indexOf(symbol);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}
function chart(id) {
  const el = $(id);
  if (!el) return null;
  let c = state.charts[id];
  if (!c || c.isDisposed()) {
    c = echarts.init(el, null, { renderer: "canvas" });
    state.charts[id] = c;
  }
  return c;
}
function setChart(id, option) {
  const c = chart(id);
  if (!c) return;
  c.setOption(Object.assign({ backgroundColor: "transparent", useUTC: true, animation: false, textStyle: { color: "#c9d1dd" } }, option), true);
  $(id).dataset.state = "ready";
}
function emptyChart(id, text) {
  setChart(id, { title: { text, left: "center", top: "middle", textStyle: { color: "#8b95a7", fontSize: 13, fontWeight: 500 } } });
  $(id).dataset.state = "empty";
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------- navigation and controls ----------
function readUrl() {
  const path = location.pathname.replace(/^\//, "") || "overview";
  state.dash = ["overview", "alerts", "volatility"].includes(path) ? path : "overview";
  const q = new URLSearchParams(location.search);
  state.range = q.get("range") || "24h";
  state.symbol = q.get("symbol") || "";
  state.start = q.get("start") || "";
  state.end = q.get("end") || "";
}
function writeUrl() {
  const q = new URLSearchParams();
  if (state.range !== "24h") q.set("range", state.range);
  if (state.symbol) q.set("symbol", state.symbol);
  if (state.start) q.set("start", state.start);
  if (state.end) q.set("end", state.end);
  const s = q.toString();
  history.replaceState(null, "", `/${state.dash}${s ? "?" + s : ""}`);
  document.querySelectorAll("#tabs a").forEach((a) => { a.href = `/${a.dataset.dash}${s ? "?" + s : ""}`; });
}
function setupControls() {
  document.querySelectorAll("#ranges button").forEach((b) => {
    b.classList.toggle("active", !state.start && !state.end && b.dataset.range === state.range);
    b.addEventListener("click", () => {
      state.range = b.dataset.range;
      state.start = state.end = "";
      document.querySelectorAll("#ranges button").forEach((x) => x.classList.toggle("active", x === b));
      state.cursors = [null];
      writeUrl();
      refresh();
    });
  });
  $("symbol").addEventListener("change", (e) => focusSymbol(e.target.value));
  document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.dash === state.dash));
  $(`dash-${state.dash}`).hidden = false;
  $("prev").addEventListener("click", () => { if (state.cursors.length > 1) state.cursors.pop(); loadAlertTable(); });
  $("next").addEventListener("click", () => { if (state.next) state.cursors.push(state.next); loadAlertTable(); });
  document.querySelectorAll("#alert-filters input").forEach((i) => i.addEventListener("change", () => { state.cursors = [null]; loadAlertTable(); }));
  window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
}
function focusSymbol(symbol) {
  state.symbol = symbol;
  $("symbol").value = symbol;
  state.cursors = [null];
  writeUrl();
  refresh();
}

async function loadMeta() {
  state.meta = await api("/api/meta");
  const m = state.meta;
  $("sim-banner").hidden = !m.simulated;
  const sel = $("symbol");
  sel.querySelectorAll("option:not([value=''])").forEach((o) => o.remove());
  for (const group of ["stock", "crypto"]) {
    const syms = m.symbols.filter((s) => s.asset_type === group);
    if (!syms.length) continue;
    const og = el("optgroup");
    og.label = group === "stock" ? "Stocks" : "Crypto";
    syms.forEach((s) => { const o = el("option", null, s.symbol); o.value = s.symbol; og.appendChild(o); });
    sel.appendChild(og);
  }
  sel.value = state.symbol;
  document.querySelectorAll(".z-thr").forEach((e) => { e.textContent = m.z_threshold; });
  document.querySelectorAll(".z-high").forEach((e) => { e.textContent = m.severity_high; });
  $("asof").textContent = state.start || state.end
    ? `Showing ${state.start ? fmtTime(state.start) : "the start"} to ${state.end ? fmtTime(state.end) : "the newest bar"} UTC · pick a range above to go back`
    : m.newest
    ? `Data up to ${fmtTime(m.newest)} UTC · ranges end at the newest bar, not the wall clock`
    : "No data yet: start the pipeline with `tickwatch run` (windows appear after the first 5 minutes of market time)";
}

// ---------- Market Overview ----------
async function loadOverview() {
  const [summary, prices, windows, anomalies] = await Promise.all([
    api("/api/summary", symbolParams()),
    api("/api/prices/latest"),
    allWindows(symbolParams()),
    api("/api/anomalies", Object.assign({ limit: 1000 }, symbolParams())),
  ]);
  $("stat-total").textContent = summary.total.toLocaleString("en-US");
  $("stat-total-sub").textContent = state.start || state.end ? "in the span shown"
    : state.range === "all" ? "in all data" : `in the last ${state.range} of data`;
  $("stat-high").textContent = summary.high.toLocaleString("en-US");
  $("stat-symbols").textContent = summary.symbols;
  $("stat-windows").textContent = `${summary.windows.toLocaleString("en-US")} five-minute windows`;
  $("stat-rate").textContent = summary.windows ? (summary.total / summary.windows * 100).toFixed(1) : "–";

  renderPrices(prices, windows);
  const types = Object.entries(summary.by_type).filter(([, n]) => n > 0);
  if (!types.length) emptyChart("chart-by-type", "No anomalies in this range");
  else setChart("chart-by-type", {
    tooltip: Object.assign({ trigger: "item", formatter: (p) => `${esc(p.name)}: ${p.value} (${p.percent}%)` }, TOOLTIP),
    legend: { bottom: 0, textStyle: { color: "#c9d1dd" } },
    series: [{
      type: "pie", radius: ["45%", "72%"], center: ["50%", "45%"], itemStyle: { borderColor: "#121826", borderWidth: 2 },
      label: { color: "#e6e9ef", formatter: "{c}" },
      data: types.map(([k, n]) => ({ name: TYPE_LABEL[k], value: n, itemStyle: { color: TYPE[k] } })),
    }],
  });
  renderRanking("chart-by-symbol", summary.by_symbol, 10);
  const hours = summary.hourly;
  if (!hours.length) emptyChart("chart-timeline", "No data in this range");
  else setChart("chart-timeline", {
    tooltip: Object.assign({ trigger: "axis" }, TOOLTIP),
    legend: { top: 0, textStyle: { color: "#c9d1dd" } },
    grid: { left: 40, right: 16, top: 30, bottom: 28 },
    xAxis: hourAxis(summary),
    yAxis: axis({ type: "value", minInterval: 1 }),
    series: Object.keys(TYPE).map((k) => ({
      name: TYPE_LABEL[k], type: "bar", stack: "t", barMaxWidth: 18, itemStyle: { color: TYPE[k] },
      data: hours.map((h) => [ms(h.hour) + 1800000, h.by_type[k]]),
    })),
  });
  renderMultiples(windows, anomalies.items);
}

function renderPrices(prices, windows) {
  const box = $("prices");
  box.replaceChildren();
  const bySym = {};
  windows.forEach((w) => { (bySym[w.symbol] = bySym[w.symbol] || []).push(w.close); });
  const shown = state.symbol ? prices.filter((p) => p.symbol === state.symbol) : prices;
  if (!shown.length) { box.appendChild(el("div", "empty", "No prices in this range")); return; }
  shown.forEach((p) => {
    const card = el("div", "price");
    card.dataset.symbol = p.symbol;
    const sym = el("div", "sym", p.symbol);
    sym.appendChild(el("span", null, p.asset_type));
    card.appendChild(sym);
    card.appendChild(el("div", "px", fmtPrice(p.close)));
    const chg = p.change_pct;
    card.appendChild(el("div", "chg " + (chg >= 0 ? "up" : "down"), chg === null ? "–" : `${chg >= 0 ? "▲" : "▼"} ${Math.abs(chg).toFixed(2)}%`));
    const asOf = new Date(ms(p.window_start) + state.meta.window_minutes * 60000).toISOString();
    card.appendChild(el("div", "asof-card", `close as of ${fmtTime(asOf)} UTC`));
    const spark = el("div", "spark");
    card.appendChild(spark);
    card.addEventListener("click", () => focusSymbol(p.symbol));
    box.appendChild(card);
    const closes = bySym[p.symbol] || [];
    const c = echarts.init(spark);
    c.setOption({
      animation: false, grid: { left: 0, right: 0, top: 2, bottom: 2 },
      xAxis: { type: "category", show: false, data: closes.map((_, i) => i) }, yAxis: { type: "value", show: false, scale: true },
      series: [{ type: "line", data: closes, symbol: "none", lineStyle: { width: 1.5, color: chg >= 0 ? "#22c55e" : "#ef4444" },
        areaStyle: { color: chg >= 0 ? "rgba(34,197,94,.12)" : "rgba(239,68,68,.12)" } }],
    });
  });
}

function renderRanking(id, ranking, n) {
  const top = ranking.slice(0, n).reverse();
  if (!top.length) { emptyChart(id, "No anomalies in this range"); return; }
  setChart(id, {
    tooltip: Object.assign({ trigger: "axis", axisPointer: { type: "shadow" } }, TOOLTIP),
    legend: { top: 0, textStyle: { color: "#c9d1dd" } },
    grid: { left: 80, right: 24, top: 28, bottom: 20 },
    xAxis: axis({ type: "value", minInterval: 1 }),
    yAxis: axis({ type: "category", data: top.map((r) => r.symbol) }),
    series: SEVERITIES.map((s) => ({
      name: s, type: "bar", stack: "s", itemStyle: { color: SEV[s] }, barMaxWidth: 22,
      data: top.map((r) => r[s]),
    })),
  });
}

function anomalyMarks(items) {
  return SEVERITIES.map((s) => ({
    name: s, type: "scatter", symbolSize: s === "high" ? 12 : 9, z: 5,
    // diamonds with a light rim: a low-severity mark must not pass for a green up-candle
    symbol: "diamond", itemStyle: { color: SEV[s], borderColor: "#f8fafc", borderWidth: 1.2 },
    tooltip: { formatter: (p) => `${esc(p.data.a.symbol)} · ${esc(TYPE_LABEL[p.data.a.anomaly_type] || p.data.a.anomaly_type)}<br>${s.toUpperCase()} z=${p.data.a.z_score.toFixed(2)}<br>${esc(fmtTime(p.data.a.window_start))}` },
    data: items.filter((a) => a.severity === s).map((a) => ({ value: [ms(a.window_start), a.price], a })),
  }));
}

function renderMultiples(windows, anomalies) {
  const box = $("multiples");
  Object.keys(state.charts).filter((k) => k.startsWith("mini-")).forEach((k) => { state.charts[k].dispose(); delete state.charts[k]; });
  box.replaceChildren();
  box.classList.toggle("single", !!state.symbol);
  const bySym = {};
  windows.forEach((w) => { (bySym[w.symbol] = bySym[w.symbol] || []).push(w); });
  const symbols = state.meta.symbols.map((s) => s.symbol).filter((s) => bySym[s]);
  if (!symbols.length) { box.appendChild(el("div", "empty", "No prices in this range")); return; }
  symbols.forEach((sym) => {
    const rows = bySym[sym];
    const close = {};
    rows.forEach((w) => { close[w.window_start] = w.close; });
    const marks = anomalies.filter((a) => a.symbol === sym).map((a) => Object.assign({ price: close[a.window_start] ?? rows[rows.length - 1].close }, a));
    const div = el("div", "mini");
    div.id = `mini-${sym}`;
    div.dataset.symbol = sym;
    box.appendChild(div);
    if (!state.symbol) div.addEventListener("click", () => focusSymbol(sym));
    const big = !!state.symbol;
    const series = [];
    if (big) {
      series.push({ name: sym, type: "candlestick", data: rows.map((w) => [ms(w.window_start), w.open, w.close, w.low, w.high]),
        itemStyle: { color: "#22c55e", color0: "#ef4444", borderColor: "#22c55e", borderColor0: "#ef4444" } });
      series.push({ name: "volume", type: "bar", xAxisIndex: 1, yAxisIndex: 1, data: rows.map((w) => [ms(w.window_start), w.volume]), itemStyle: { color: "#334155" } });
    } else {
      series.push({ name: sym, type: "line", symbol: "none", data: rows.map((w) => [ms(w.window_start), w.close]), lineStyle: { width: 1.5, color: colorOf(sym) },
        areaStyle: { color: new echarts.graphic.LinearGradient(0, 0, 0, 1, [{ offset: 0, color: colorOf(sym) + "44" }, { offset: 1, color: colorOf(sym) + "00" }]) } });
    }
    series.push(...anomalyMarks(marks));
    const grids = big ? [{ left: 70, right: 20, top: 36, height: "62%" }, { left: 70, right: 20, top: "80%", bottom: 24 }] : [{ left: 60, right: 12, top: 44, bottom: 22 }];
    const xAxes = big ? [axis({ type: "time", gridIndex: 0 }), axis({ type: "time", gridIndex: 1, axisLabel: { show: false } })] : [axis({ type: "time" })];
    const yAxes = big ? [axis({ type: "value", scale: true, gridIndex: 0 }), axis({ type: "value", gridIndex: 1, axisLabel: { show: false }, splitLine: { show: false } })] : [axis({ type: "value", scale: true, splitNumber: 3 })];
    const last = rows[rows.length - 1];
    const c = echarts.init(div);
    state.charts[div.id] = c;
    c.setOption({
      backgroundColor: "transparent", useUTC: true, animation: false,
      title: { text: `${sym}  {p|${fmtPrice(last.close)}}  {n|${marks.length ? marks.length + " anomalies" : ""}}`, left: 10, top: 8,
        textStyle: { color: "#e6e9ef", fontSize: 13, rich: { p: { color: "#e6e9ef", fontSize: 13, fontWeight: 700 }, n: { color: "#8b95a7", fontSize: 11 } } } },
      tooltip: Object.assign({ trigger: big ? "axis" : "item" }, TOOLTIP),
      axisPointer: big ? { link: [{ xAxisIndex: "all" }] } : undefined,
      dataZoom: big ? [{ type: "inside", xAxisIndex: [0, 1] }] : [],
      grid: grids, xAxis: xAxes, yAxis: yAxes, series,
    });
  });
}

// ---------- Anomaly Alerts ----------
function selectedSeverities() {
  return [...document.querySelectorAll("#alert-filters input:checked")].map((i) => i.value);
}
// One row per alert episode (the `alerts` table), newest opening first; a click shows its windows.
async function loadAlertTable() {
  const sev = selectedSeverities();
  const cursor = state.cursors[state.cursors.length - 1];
  const page = await api("/api/alerts", Object.assign({ limit: PAGE, cursor, severity: sev.length === 3 ? [] : sev }, symbolParams()));
  const before = new Set(state.rows.map((a) => a.alert_id));
  const fresh = state.rows.length ? new Set(page.items.map((a) => a.alert_id).filter((id) => !before.has(id))) : new Set();
  state.total = page.total;
  state.rows = page.items;
  state.next = page.next_cursor;
  renderAlertTable(fresh);
}
const FEATURE_LABEL = { price_return_pct: "return", volume: "volume", volatility: "volatility" };
function features(a) {
  return a.features.map((f) => `${FEATURE_LABEL[f] || TYPE_LABEL[f] || f}${a.direction[f] === "down" ? " ▼" : a.direction[f] === "up" ? " ▲" : ""}`).join(", ");
}
function fmtZ(z) { return z === null || z === undefined ? "–" : (z >= 0 ? "+" : "") + z.toFixed(2); }
function renderAlertTable(fresh) {
  const body = $("alert-table").querySelector("tbody");
  // an open episode stays open across refreshes, with what was typed in it
  const kept = new Map([...body.querySelectorAll("tr.windows")].map((r) => [r.dataset.alert, r]));
  body.replaceChildren();
  if (!state.rows.length) {
    const tr = el("tr"); const td = el("td", "empty", "No alert episodes in this range"); td.colSpan = 9; tr.appendChild(td); body.appendChild(tr);
  }
  state.rows.forEach((a) => {
    const sev = a.peak_severity || "none";
    const tr = el("tr", `episode sev-${sev}` + (fresh.has(a.alert_id) ? " fresh" : ""));
    tr.dataset.key = a.alert_id;
    tr.appendChild(el("td", null, fmtTime(a.opened_at)));
    const sym = el("td"); sym.appendChild(el("b", null, a.symbol)); tr.appendChild(sym);
    tr.appendChild(el("td", null, a.asset_type));
    const kind = el("td", null, a.kind === "data_fault" ? "data fault" : "market");
    if (a.market_event_id) { kind.appendChild(el("span", "pill wide", "market-wide")); kind.title = "many symbols of this asset class alerted together"; }
    tr.appendChild(kind);
    const sv = el("td"); sv.appendChild(el("span", `pill ${sev}`, a.peak_severity || "fault")); tr.appendChild(sv);
    tr.appendChild(el("td", null, features(a)));
    const z = el("td", "num", `${a.peak_abs_z.toFixed(2)}`);
    if (SEV[sev]) { z.style.color = SEV[sev]; z.style.fontWeight = "700"; }
    tr.appendChild(z);
    tr.appendChild(el("td", "num", a.closed_at ? `${a.window_count} · closed` : `${a.window_count} · open`));
    const summary = el("td", "summary");
    summary.appendChild(statePills(a.state));
    summary.appendChild(document.createTextNode(a.summary));
    tr.appendChild(summary);
    tr.addEventListener("click", () => toggleEpisode(tr, a));
    body.appendChild(tr);
    const open = kept.get(a.alert_id);
    if (open) { tr.after(open); tr.classList.add("expanded"); renderWorkflowState(open.querySelector(".workflow"), a); }
  });
  $("alert-count").textContent = `${state.total.toLocaleString("en-US")} episodes in range`;
  const first = (state.cursors.length - 1) * PAGE;
  const end = Math.min(first + state.rows.length, state.total);
  $("page-info").textContent = state.total ? `${first + 1}–${end} of ${state.total}` : "";
  $("prev").disabled = state.cursors.length === 1;
  $("next").disabled = !state.next;
}
async function toggleEpisode(tr, a) {
  const open = tr.nextElementSibling;
  if (open && open.classList.contains("windows")) { open.remove(); tr.classList.remove("expanded"); return; }
  const windows = await fetch(`/api/alerts/${encodeURIComponent(a.alert_id)}/windows`).then((r) => r.json());
  const row = el("tr", "windows");
  row.dataset.alert = a.alert_id;
  const td = el("td"); td.colSpan = 9;
  const table = el("table", "episode-windows");
  const head = el("tr");
  ["Window (UTC)", "Close", "Return", "Volume", "Volatility", "z return", "z volume", "z volatility", "Anomalies"].forEach((h) => head.appendChild(el("th", null, h)));
  table.appendChild(head);
  windows.forEach((w) => {
    const r = el("tr");
    r.dataset.window = w.window_start;
    [fmtTime(w.window_start), fmtPrice(w.close), pct(w.price_return_pct), fmtNum(w.volume), fmtNum(w.volatility, 4),
      fmtZ(w.price_return_pct_z), fmtZ(w.volume_z), fmtZ(w.volatility_z), w.anomalies.map((k) => TYPE_LABEL[k] || k).join(", ") || "–"]
      .forEach((text, i) => r.appendChild(el("td", i > 0 && i < 8 ? "num" : null, text)));
    table.appendChild(r);
  });
  // drill-down: the symbol around the episode, an hour either side
  const around = (iso, minutes) => new Date(ms(iso) + minutes * 60000).toISOString().replace(".000Z", "Z");
  const span = new URLSearchParams({ symbol: a.symbol, start: around(a.opened_at, -60), end: around(a.last_window_start, 60 + state.meta.window_minutes) });
  const links = el("div", "drill");
  [["overview", "Price and volume at this moment"], ["volatility", "Return against its band"]].forEach(([dash, text]) => {
    const link = el("a", null, text);
    link.href = `/${dash}?${span}`;
    link.dataset.dash = dash;
    links.appendChild(link);
  });
  td.appendChild(links);
  const drillBox = el("div", "drill-view");
  td.appendChild(drillBox);
  td.appendChild(workflowPanel(a));
  td.appendChild(table);
  row.appendChild(td);
  tr.after(row);
  tr.classList.add("expanded");
  await renderDrill(drillBox, a);
}

// ---------- drill-down: the symbol at the alert's moment, and why it fired ----------
const UNIT_TEXT = { "%": (v) => `${v >= 0 ? "+" : ""}${v.toFixed(3)}%`, USD: (v) => `${fmtPrice(v)} USD` };
function withUnit(v, unit) { return UNIT_TEXT[unit] ? UNIT_TEXT[unit](v) : `${fmtNum(v)} ${unit}`; }
function spread(v, unit) { return unit === "%" ? `${v.toFixed(3)}%` : withUnit(v, unit); }
// Candles with the band the close had to stay in for the return not to be an anomaly
// (open x (1 + (mean +/- k sigma) / 100)), volume below, the episode's windows shaded.
async function renderDrill(box, a) {
  const d = await fetch(`/api/alerts/${encodeURIComponent(a.alert_id)}/drill`).then((r) => r.json());
  const k = state.meta.z_threshold;
  const step = d.window_minutes * 60000;
  const id = `drill-${a.alert_id}`;
  box.replaceChildren();
  box.appendChild(el("h4", null, `${a.symbol} around this alert · candles, volume, return band ±${k}σ, the episode shaded`));
  const div = el("div", "chart drill-chart");
  div.id = id;
  box.appendChild(div);
  const w = d.windows;
  const t = (x) => ms(x.window_start);
  const edge = (x, sign) => (x.price_return_pct_std === null ? null : x.open * (1 + (x.price_return_pct_mean + sign * k * x.price_return_pct_std) / 100));
  const areas = w.filter((x) => x.in_episode).map((x) => [{ xAxis: t(x) }, { xAxis: t(x) + step }]);
  setChart(id, {
    tooltip: Object.assign({ trigger: "axis", axisPointer: { type: "cross" } }, TOOLTIP),
    legend: { top: 0, data: ["price", "band low", "band high", "volume"], textStyle: { color: "#c9d1dd" } },
    axisPointer: { link: [{ xAxisIndex: "all" }] },
    grid: [{ left: 70, right: 20, top: 30, height: "58%" }, { left: 70, right: 20, top: "76%", bottom: 28 }],
    xAxis: [axis({ type: "time", gridIndex: 0 }), axis({ type: "time", gridIndex: 1 })],
    yAxis: [axis({ type: "value", scale: true, gridIndex: 0, axisLabel: { formatter: (v) => fmtPrice(v) } }),
      axis({ type: "value", gridIndex: 1, splitNumber: 2, axisLabel: { formatter: (v) => fmtNum(v) } })],
    series: [
      { name: "price", type: "candlestick", data: w.map((x) => [t(x), x.open, x.close, x.low, x.high]),
        itemStyle: { color: "#22c55e", color0: "#ef4444", borderColor: "#22c55e", borderColor0: "#ef4444" },
        markArea: { silent: true, itemStyle: { color: "rgba(245,184,46,.18)", borderColor: "rgba(245,184,46,.6)", borderWidth: 1 }, data: areas } },
      { name: "band low", type: "line", stack: "pb", stackStrategy: "all", symbol: "none", connectNulls: false, lineStyle: { type: "dashed", color: "#3b82f6", width: 1 }, itemStyle: { color: "#3b82f6" }, data: w.map((x) => [t(x), edge(x, -1)]) },
      { name: "band high", type: "line", stack: "pb", stackStrategy: "all", symbol: "none", connectNulls: false, lineStyle: { type: "dashed", color: "#3b82f6", width: 1 }, itemStyle: { color: "#3b82f6" }, areaStyle: { color: "rgba(59,130,246,.10)" },
        data: w.map((x) => [t(x), edge(x, -1) === null ? null : edge(x, 1) - edge(x, -1)]) },
      { name: "volume", type: "bar", xAxisIndex: 1, yAxisIndex: 1, barMaxWidth: 10, itemStyle: { color: "#475569" }, data: w.map((x) => [t(x), x.volume]) },
    ],
  });
  const list = el("ul", "reasons");
  if (!d.reasons.length) list.appendChild(el("li", "muted", `no per-window anomaly in it: ${a.summary}`));
  d.reasons.forEach((r) => {
    const li = el("li");
    li.dataset.reason = `${r.window_start}|${r.anomaly_type}`;
    li.appendChild(el("span", `pill ${r.severity}`, r.severity));
    li.appendChild(el("b", null, ` ${fmtTime(r.window_start)} ${TYPE_LABEL[r.anomaly_type] || r.anomaly_type}: `));
    li.appendChild(el("span", "value", `${FEATURE_LABEL[r.feature] || r.feature} ${withUnit(r.value, r.unit)}`));
    li.appendChild(document.createTextNode(` against a baseline of ${withUnit(r.mean, r.unit)} ± ${spread(r.std, r.unit)} (σ), `));
    li.appendChild(el("span", "z", `z ${fmtZ(r.z_score)}`));
    li.appendChild(document.createTextNode(`; ${r.as_extreme.toLocaleString("en-US")} of ${r.scored.toLocaleString("en-US")} scored ${a.symbol} windows this far out`));
    list.appendChild(li);
  });
  box.appendChild(list);
}
// ---------- alert workflow: acknowledge, resolve, mark, snooze, silence (POST with the token) ----------
const STATUS_LABEL = { acknowledged: "acknowledged", resolved: "resolved" };
const VERDICT_LABEL = { true_positive: "true positive", false_positive: "false positive" };
const DURATIONS = [["15", "15 min"], ["60", "1 hour"], ["240", "4 hours"], ["1440", "1 day"], ["10080", "7 days"]];
function statePills(s) {
  const pills = el("span", "wf-pills");
  if (!s) return pills;
  if (s.status) pills.appendChild(el("span", `pill wf ${s.status}`, STATUS_LABEL[s.status]));
  if (s.verdict) pills.appendChild(el("span", `pill wf ${s.verdict}`, s.verdict === "true_positive" ? "TP" : "FP"));
  if (s.snoozed) pills.appendChild(el("span", "pill wf snoozed", "snoozed"));
  if (s.silenced) pills.appendChild(el("span", "pill wf silenced", "silenced"));
  return pills;
}
function stateText(s) {
  const parts = [];
  if (s.status) parts.push(`${STATUS_LABEL[s.status]} by ${s.status_by} at ${fmtTime(s.status_at)}`);
  if (s.verdict) parts.push(`${VERDICT_LABEL[s.verdict]} (${s.verdict_by})`);
  if (s.snoozed) parts.push(`snoozed until ${fmtTime(s.snoozed_until)} by ${s.snoozed_by}`);
  if (s.silenced) parts.push(`silenced: ${s.silenced}`);
  if (s.note) parts.push(`note: ${s.note}`);
  return parts.length ? parts.join(" · ") : "nobody acted on this alert yet";
}
function writeHeaders() {
  const token = $("wf-token").value.trim();
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}
async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: writeHeaders(), body: JSON.stringify(body) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = typeof data.detail === "string" ? data.detail : (data.detail || []).map((d) => d.msg).join("; ");
    throw new Error(`HTTP ${r.status}: ${detail}`);
  }
  return data;
}
function who() { return $("wf-by").value.trim(); }
function minutesFromNow(minutes) { return new Date(Date.now() + minutes * 60000).toISOString(); }
function option(value, text) { const o = el("option", null, text); o.value = value; return o; }
function renderWorkflowState(panel, a) {
  if (panel) panel.querySelector(".wf-state").textContent = stateText(a.state || {});
}
// The controls under an expanded alert; every button is one POST, then the table reloads.
function workflowPanel(a) {
  const panel = el("div", "workflow");
  panel.dataset.alert = a.alert_id;
  panel.addEventListener("click", (ev) => ev.stopPropagation());
  panel.appendChild(el("div", "wf-state"));
  const note = el("input", "wf-note"); note.placeholder = "note (optional)"; note.maxLength = 2000;
  const length = el("select", "wf-length"); DURATIONS.forEach(([v, t]) => length.appendChild(option(v, t))); length.value = "60";
  const scope = el("select", "wf-scope");
  scope.appendChild(option(`symbol:${a.symbol}`, `symbol ${a.symbol}`));
  a.features.forEach((f) => {
    scope.appendChild(option(`kind:${f}`, `${TYPE_LABEL[f] || f}, every symbol`));
    scope.appendChild(option(`both:${f}`, `${a.symbol} ${TYPE_LABEL[f] || f}`));
  });
  scope.appendChild(option(`kind:${a.kind}`, `kind ${a.kind}, every symbol`));
  const message = el("div", "wf-message");
  const act = (action, extra) => async () => {
    message.textContent = "";
    message.className = "wf-message";
    if (!who()) { message.textContent = "Type your name above (Workflow card): the audit keeps who acted."; message.classList.add("error"); return; }
    try {
      await post(`/api/alerts/${encodeURIComponent(a.alert_id)}/actions`, Object.assign({ action, by: who(), note: note.value }, extra ? extra() : {}));
      message.textContent = `${action.replace("_", " ")}: done`;
      note.value = "";
      await loadAlertTable();
    } catch (err) { message.textContent = err.message; message.classList.add("error"); }
  };
  const silence = async () => {
    message.textContent = "";
    message.className = "wf-message";
    if (!who()) { message.textContent = "Type your name above (Workflow card): the audit keeps who acted."; message.classList.add("error"); return; }
    const [how, value] = scope.value.split(/:(.*)/s);
    const body = { by: who(), note: note.value, minutes: Number(length.value) };
    if (how === "symbol" || how === "both") body.symbol = a.symbol;
    if (how === "kind" || how === "both") body.kind = value;
    try {
      await post("/api/silences", body);
      message.textContent = "silenced";
      note.value = "";
      await Promise.all([loadAlertTable(), loadSilences()]);
    } catch (err) { message.textContent = err.message; message.classList.add("error"); }
  };
  const buttons = el("div", "wf-buttons");
  const button = (text, name, handler) => { const b = el("button", null, text); b.dataset.action = name; b.addEventListener("click", handler); buttons.appendChild(b); };
  button("Acknowledge", "acknowledge", act("acknowledge"));
  button("Resolve", "resolve", act("resolve"));
  button("Reopen", "reopen", act("reopen"));
  button("True positive", "true_positive", act("true_positive"));
  button("False positive", "false_positive", act("false_positive"));
  buttons.appendChild(note);
  buttons.appendChild(length);
  button("Snooze", "snooze", act("snooze", () => ({ until: minutesFromNow(Number(length.value)) })));
  buttons.appendChild(scope);
  button("Silence", "silence", silence);
  panel.appendChild(buttons);
  panel.appendChild(message);
  renderWorkflowState(panel, a);
  return panel;
}
async function loadSilences() {
  const list = $("silence-list");
  const m = state.meta;
  $("wf-mode").textContent = m && m.api_writes ? "writes need the server's API_TOKEN" : "read-only: the server has no API_TOKEN";
  const silences = await api("/api/silences");
  list.replaceChildren();
  if (!silences.length) { list.appendChild(el("li", "muted", "No silence in force")); return; }
  silences.forEach((s) => {
    const li = el("li");
    li.dataset.silence = s.silence_id;
    const scope = [s.symbol, s.kind && (TYPE_LABEL[s.kind] || s.kind)].filter(Boolean).join(" · ");
    li.appendChild(el("b", null, scope));
    li.appendChild(el("span", null, ` until ${fmtTime(s.ends_at)} UTC by ${s.created_by}${s.note ? ": " + s.note : ""} `));
    const lift = el("button", null, "Lift");
    lift.addEventListener("click", async () => {
      try { await post(`/api/silences/${encodeURIComponent(s.silence_id)}/lift`, { by: who() || "dashboard", note: "" }); await Promise.all([loadSilences(), loadAlertTable()]); }
      catch (err) { li.appendChild(el("span", "wf-message error", err.message)); }
    });
    li.appendChild(lift);
    list.appendChild(li);
  });
}
function setupWorkflow() {
  $("wf-by").value = localStorage.getItem("tickwatch.by") || "";
  $("wf-token").value = sessionStorage.getItem("tickwatch.token") || "";
  $("wf-by").addEventListener("change", () => localStorage.setItem("tickwatch.by", who()));
  $("wf-token").addEventListener("change", () => sessionStorage.setItem("tickwatch.token", $("wf-token").value.trim()));
}

// one row per divergence (/api/divergences): open ones say "open" and count their time so far
async function loadDivergences() {
  const rows = await api("/api/divergences", Object.assign({ limit: 50 }, symbolParams()));
  const body = $("divergence-table").querySelector("tbody");
  $("divergence-count").textContent = rows.length ? `${rows.length}${rows.length === 50 ? "+" : ""}` : "";
  body.replaceChildren();
  if (!rows.length) {
    const td = el("td", "muted", "No divergence between venues in this range");
    td.colSpan = 8;
    body.appendChild(el("tr")).appendChild(td);
    return;
  }
  rows.forEach((d) => {
    const tr = el("tr", d.kind === "data_fault" ? "sev-medium" : "sev-high");
    tr.dataset.key = `${d.symbol}|${d.venues}|${d.started_at}`;
    const lasted = d.ended_at ? `${Math.round((ms(d.ended_at) - ms(d.started_at)) / 1000)} s` : "open";
    const kind = el("td");
    kind.appendChild(el("span", "pill " + (d.kind === "data_fault" ? "medium" : "high"), d.kind === "data_fault" ? "data fault" : "dislocation"));
    tr.append(el("td", null, fmtTime(d.started_at)), el("td", null, d.symbol), el("td", null, d.venues.split("|").join(" vs ")),
      el("td", "num", d.max_bps.toFixed(0)), el("td", "num", lasted), el("td", null, d.offender || "–"), kind, el("td", "summary", d.summary));
    body.appendChild(tr);
  });
}

async function loadAlerts() {
  const [summary] = await Promise.all([api("/api/summary", symbolParams()), loadAlertTable(), loadSilences(), loadDivergences()]);
  const hours = summary.hourly;
  if (!hours.length) emptyChart("chart-per-hour", "No data in this range");
  else setChart("chart-per-hour", {
    tooltip: Object.assign({ trigger: "axis" }, TOOLTIP),
    legend: { top: 0, textStyle: { color: "#c9d1dd" } },
    grid: { left: 40, right: 16, top: 30, bottom: 28 },
    xAxis: hourAxis(summary),
    yAxis: axis({ type: "value", minInterval: 1 }),
    series: SEVERITIES.slice().reverse().map((s) => ({
      name: s, type: "bar", stack: "sev", barMaxWidth: 18, itemStyle: { color: SEV[s] },
      data: hours.map((h) => [ms(h.hour) + 1800000, h.by_severity[s]]),
    })),
  });
  const bins = summary.z_histogram.filter((b) => b.count > 0 || Math.abs(b.low) <= 8);
  if (!summary.total) emptyChart("chart-z-hist", "No anomalies in this range");
  else setChart("chart-z-hist", {
    tooltip: Object.assign({ trigger: "axis", axisPointer: { type: "shadow" }, formatter: (ps) => {
      const b = bins[ps[0].dataIndex];
      const range = b.label.startsWith("≥") || b.label.startsWith("<") ? `z ${b.label}` : `${b.low} ≤ z < ${b.high}`;
      return `${esc(range)}: ${b.count}`;
    } }, TOOLTIP),
    grid: { left: 40, right: 16, top: 16, bottom: 40 },
    xAxis: axis({ type: "category", name: "z-score", nameLocation: "middle", nameGap: 26, data: bins.map((b) => b.label) }),
    yAxis: axis({ type: "value", minInterval: 1 }),
    series: [{
      type: "bar", barCategoryGap: "8%",
      data: bins.map((b) => {
        const z = Math.abs(b.low < 0 ? b.high : b.low);
        const m = state.meta;
        const color = z >= m.severity_high ? SEV.high : z >= m.severity_medium ? SEV.medium : SEV.low;
        return { value: b.count, itemStyle: { color } };
      }),
    }],
  });
  renderRanking("chart-top-symbols", summary.by_symbol, 8);
  const assets = Object.keys(summary.by_asset_severity);
  if (!assets.length) emptyChart("chart-by-asset", "No anomalies in this range");
  else setChart("chart-by-asset", {
    tooltip: Object.assign({ trigger: "axis", axisPointer: { type: "shadow" } }, TOOLTIP),
    legend: { top: 0, textStyle: { color: "#c9d1dd" } },
    grid: { left: 50, right: 16, top: 30, bottom: 24 },
    xAxis: axis({ type: "category", data: assets }),
    yAxis: axis({ type: "value", minInterval: 1 }),
    series: SEVERITIES.map((s) => ({ name: s, type: "bar", barMaxWidth: 40, itemStyle: { color: SEV[s] }, data: assets.map((a) => summary.by_asset_severity[a][s]) })),
  });
}

// ---------- Volatility Trends ----------
async function loadVolatility() {
  const [series, windows] = await Promise.all([api("/api/volatility", symbolParams()), allWindows(symbolParams())]);
  if (!series.length) emptyChart("chart-rolling-vol", "No data in this range");
  else setChart("chart-rolling-vol", {
    tooltip: Object.assign({ trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "–" : v.toFixed(3) + "%") }, TOOLTIP),
    legend: { top: 0, type: "scroll", textStyle: { color: "#c9d1dd" } },
    grid: { left: 50, right: 16, top: 30, bottom: 28 },
    xAxis: axis({ type: "time" }),
    yAxis: axis({ type: "value", axisLabel: { formatter: "{value}%" } }),
    series: series.map((s) => ({ name: s.symbol, type: "line", symbol: "none", connectNulls: false, lineStyle: { width: 1.6 }, itemStyle: { color: colorOf(s.symbol) },
      data: s.points.map((p) => [ms(p.window_start), p.value]) })),
  });
  const latest = series.filter((s) => s.latest !== null).sort((a, b) => a.latest - b.latest);
  if (!latest.length) emptyChart("chart-vol-compare", "No data in this range");
  else setChart("chart-vol-compare", {
    tooltip: Object.assign({ trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: (v) => v.toFixed(3) + "%" }, TOOLTIP),
    grid: { left: 80, right: 40, top: 10, bottom: 20 },
    xAxis: axis({ type: "value", axisLabel: { formatter: "{value}%" } }),
    yAxis: axis({ type: "category", data: latest.map((s) => s.symbol) }),
    series: [{ type: "bar", barMaxWidth: 20, label: { show: true, position: "right", color: "#c9d1dd", formatter: (p) => p.value.toFixed(3) },
      data: latest.map((s) => ({ value: s.latest, itemStyle: { color: colorOf(s.symbol) } })) }],
  });
  // Focus: the chosen symbol, else the one with the most windows first in the list.
  const focus = state.symbol || (series[0] && series[0].symbol) || "";
  const rows = windows.filter((w) => w.symbol === focus);
  const label = focus ? (state.symbol ? focus : `${focus} · choose a symbol above`) : "";
  $("returns-symbol").textContent = label;
  $("volume-symbol").textContent = label;
  const k = state.meta.z_threshold;
  if (!rows.length) { emptyChart("chart-returns", "No data in this range"); emptyChart("chart-volume-delta", "No data in this range"); }
  else {
    const lower = rows.map((w) => [ms(w.window_start), w.price_return_pct_std === null ? null : w.price_return_pct_mean - k * w.price_return_pct_std]);
    const width = rows.map((w) => [ms(w.window_start), w.price_return_pct_std === null ? null : 2 * k * w.price_return_pct_std]);
    const outside = rows.filter((w) => w.price_return_pct_std !== null && Math.abs(w.price_return_pct - w.price_return_pct_mean) > k * w.price_return_pct_std);
    // The band is "lower" plus a stacked "band" of width 2kσ. stackStrategy "all": ECharts
    // stacks only same-sign values by default, which drew a band from 0 when mean - kσ < 0.
    setChart("chart-returns", {
      tooltip: Object.assign({ trigger: "axis", formatter: (ps) => {
        const w = rows[ps[0].dataIndex];
        const band = w.price_return_pct_std === null ? "no baseline yet"
          : `band ${pct(w.price_return_pct_mean - k * w.price_return_pct_std)} to ${pct(w.price_return_pct_mean + k * w.price_return_pct_std)}`;
        return `${esc(fmtTime(w.window_start))}<br>return ${pct(w.price_return_pct)}<br>${band}`;
      } }, TOOLTIP),
      legend: { top: 0, data: ["return %", "band", "beyond band"], textStyle: { color: "#c9d1dd" } },
      grid: { left: 50, right: 16, top: 30, bottom: 28 },
      xAxis: axis({ type: "time" }),
      yAxis: axis({ type: "value", axisLabel: { formatter: "{value}%" } }),
      series: [
        { name: "lower", type: "line", stack: "band", stackStrategy: "all", symbol: "none", lineStyle: { opacity: 0 }, data: lower, tooltip: { show: false } },
        { name: "band", type: "line", stack: "band", stackStrategy: "all", symbol: "none", lineStyle: { opacity: 0 }, areaStyle: { color: "rgba(59,130,246,.18)" }, data: width, itemStyle: { color: "rgba(59,130,246,.5)" } },
        { name: "return %", type: "line", symbol: "none", lineStyle: { width: 1.4, color: "#e6e9ef" }, itemStyle: { color: "#e6e9ef" }, data: rows.map((w) => [ms(w.window_start), w.price_return_pct]) },
        { name: "beyond band", type: "scatter", symbolSize: 9, itemStyle: { color: SEV.high }, data: outside.map((w) => [ms(w.window_start), w.price_return_pct]) },
      ],
    });
    setChart("chart-volume-delta", {
      tooltip: Object.assign({ trigger: "axis", valueFormatter: (v) => fmtNum(v) }, TOOLTIP),
      grid: { left: 60, right: 16, top: 16, bottom: 28 },
      xAxis: axis({ type: "time" }),
      yAxis: axis({ type: "value", axisLabel: { color: "#8b95a7", formatter: (v) => fmtNum(v) } }),
      series: [{ name: "volume change", type: "bar", barMaxWidth: 8,
        data: rows.filter((w) => w.volume_delta !== null).map((w) => ({ value: [ms(w.window_start), w.volume_delta], itemStyle: { color: w.volume_delta >= 0 ? "#22c55e" : "#ef4444" } })) }],
    });
  }
  const bySym = {};
  windows.filter((w) => w.volatility_pct !== null).forEach((w) => { (bySym[w.symbol] = bySym[w.symbol] || []).push([w.volatility_pct, w.price_return_pct, w.window_start]); });
  const names = Object.keys(bySym);
  if (!names.length) emptyChart("chart-scatter", "No data in this range");
  else setChart("chart-scatter", {
    tooltip: Object.assign({ trigger: "item", formatter: (p) => `${esc(p.seriesName)} ${esc(fmtTime(p.data[2]))}<br>volatility ${p.data[0].toFixed(3)}%<br>return ${p.data[1].toFixed(3)}%` }, TOOLTIP),
    legend: { top: 0, type: "scroll", textStyle: { color: "#c9d1dd" } },
    grid: { left: 50, right: 20, top: 30, bottom: 40 },
    xAxis: axis({ type: "value", name: "volatility % of price", nameLocation: "middle", nameGap: 26, scale: true }),
    yAxis: axis({ type: "value", name: "return %", nameLocation: "middle", nameGap: 34, scale: true }),
    series: names.map((s) => ({ name: s, type: "scatter", symbolSize: 5, itemStyle: { color: colorOf(s), opacity: 0.7 }, data: bySym[s] })),
  });
}

// ---------- refresh and live stream ----------
const LOADERS = { overview: loadOverview, alerts: loadAlerts, volatility: loadVolatility };
async function refresh() {
  clearTimeout(state.refreshTimer);
  try {
    await loadMeta();
    await LOADERS[state.dash]();
    document.body.dataset.loaded = String(Date.now());
  } catch (err) {
    console.warn("refresh failed; retrying", err);
  }
  state.refreshTimer = setTimeout(refresh, REFRESH_MS[state.dash]);
}
function scheduleRefresh() {
  clearTimeout(state.pending);
  state.pending = setTimeout(refresh, 1500);
}
function connectStream() {
  const live = $("live");
  const source = new EventSource("/api/stream");
  source.onopen = () => { live.classList.add("on"); live.querySelector("b").textContent = "live"; };
  source.onerror = () => { live.classList.remove("on"); live.querySelector("b").textContent = "reconnecting"; };
  source.addEventListener("anomaly", (ev) => {
    const a = JSON.parse(ev.data);
    if (state.symbol && a.symbol !== state.symbol) return;
    // a new anomaly may open or grow an episode: reload the table and charts shortly
    scheduleRefresh();
  });
}

readUrl();
setupControls();
setupWorkflow();
writeUrl();
connectStream();
refresh();
