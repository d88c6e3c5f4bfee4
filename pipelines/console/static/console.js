// gpuwatch console: reads only through POST /query (the SQL comes from /console/api/config),
// acknowledges and silences through /console/api/*, which forwards to the notifier.
"use strict";

const state = { queries: {}, metrics: [], colourBy: "health", incidents: [], alerts: {}, charts: [] };
const $ = (id) => document.getElementById(id);

// A token given as /console/#token=... is kept for this tab and sent with every call.
(function keepToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("gpuwatch-token", decodeURIComponent(m[1]));
    location.hash = location.hash.replace(/&?token=[^&]+/, "");
  }
})();

function headers() {
  const token = sessionStorage.getItem("gpuwatch-token");
  const h = { "Content-Type": "application/json" };
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function call(method, path, body) {
  const r = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function literal(v) {
  if (typeof v === "number") return String(v);
  return "'" + String(v).replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

// Runs one of the console's read-only statements through /query; rows come back as objects.
async function query(name, params = {}) {
  const sql = state.queries[name].replace(/\{(\w+)\}/g, (_, k) => literal(params[k]));
  const res = await call("POST", "../query", { sql });
  return res.rows.map((row) => Object.fromEntries(res.columns.map((c, i) => [c, row[i]])));
}

function showError(e) {
  const el = $("error");
  el.hidden = !e;
  el.textContent = e ? String(e.message || e) : "";
}

function epoch(text) { return Date.parse(String(text).replace(" ", "T") + (/[zZ+]/.test(text.slice(-6)) ? "" : "Z")) / 1000; }

function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
}

function heat(t) { // 0..1 -> blue to yellow to red
  const h = 220 - 220 * Math.min(1, Math.max(0, t));
  return `hsl(${h}, 75%, ${62 - 10 * t}%)`;
}

function worstByGpu() {
  const worst = {};
  const rank = { critical: 3, warning: 2, info: 1 };
  for (const inc of state.incidents) {
    const key = inc.gpu_index >= 0 ? `${inc.node_name}/${inc.gpu_index}` : `${inc.node_name}/*`;
    if (!worst[key] || rank[inc.level] > rank[worst[key].level]) worst[key] = inc;
  }
  return worst;
}

async function drawHeatmap() {
  const metric = state.colourBy === "health" ? state.metrics[0] : state.colourBy;
  const rows = await query("heatmap", { metric });
  const nodes = [...new Set(rows.map((r) => r.node))].sort();
  const gpus = [...new Set(rows.map((r) => r.gpu))].sort((a, b) => a - b);
  const values = rows.filter((r) => r.has_value).map((r) => r.value);
  const lo = Math.min(...values), hi = Math.max(...values);
  const worst = worstByGpu();
  const grid = $("heatmap");
  grid.style.gridTemplateColumns = `auto repeat(${gpus.length}, 44px)`;
  grid.replaceChildren();
  grid.append(el("div", "label", ""));
  for (const g of gpus) grid.append(el("div", "label", "GPU " + g));
  const byKey = Object.fromEntries(rows.map((r) => [`${r.node}/${r.gpu}`, r]));
  let unhealthy = 0;
  for (const node of nodes) {
    const label = el("div", "label");
    label.append(link(node, "#node=" + encodeURIComponent(node)));
    grid.append(label);
    for (const g of gpus) {
      const r = byKey[`${node}/${g}`];
      const inc = worst[`${node}/${g}`] || worst[`${node}/*`];
      const cell = el("div", "cell");
      cell.dataset.gpuKey = `${node}/${g}`;
      if (inc) { cell.classList.add("unhealthy", inc.level); unhealthy++; }
      const v = r && r.has_value ? r.value : null;
      if (state.colourBy === "health") {
        cell.style.background = inc ? (inc.level === "critical" ? "#f4a3ab" : "#fbd38d") : "#b7e4c7";
        cell.textContent = inc ? "!" : "";
      } else {
        cell.style.background = v === null ? "#e3e6ea" : heat(hi > lo ? (v - lo) / (hi - lo) : 0.5);
        cell.textContent = v === null ? "" : Number(v).toPrecision(3);
      }
      cell.title = `${node} GPU ${g}` + (v !== null ? `\n${metric} = ${v}` : "") +
        (inc ? `\n${inc.level}: ${inc.alertname} — ${inc.summary}` : "");
      cell.onclick = () => { location.hash = "#node=" + encodeURIComponent(node); };
      grid.append(cell);
    }
  }
  $("fleet-summary").textContent = `${nodes.length} nodes × ${gpus.length} GPUs, ${unhealthy} unhealthy`;
  $("legend").textContent = state.colourBy === "health"
    ? "green: healthy · amber: warning · red: critical (outlined GPUs have an open incident)"
    : `${metric}: blue ${isFinite(lo) ? lo.toPrecision(3) : "?"} → red ${isFinite(hi) ? hi.toPrecision(3) : "?"}; outlined GPUs have an open incident`;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function link(text, href) { const a = el("a", "", text); a.href = href; return a; }

function evidenceText(list) {
  return (list || []).slice(0, 3).map((e) => `${e.metric}=${fmt(e.value)}` +
    (e.baseline !== null && e.baseline !== undefined ? ` (baseline ${fmt(e.baseline)})` : "")).join("; ");
}

function fmt(v) { return v === null || v === undefined ? "?" : Number(v).toPrecision(4).replace(/\.?0+$/, ""); }

async function drawIncidents() {
  const box = $("incidents");
  state.charts.forEach((c) => c.destroy());
  state.charts = [];
  box.replaceChildren();
  $("incident-count").textContent = `${state.incidents.length} open`;
  if (!state.incidents.length) box.append(el("p", "dim", "nothing is wrong right now"));
  const now = Date.now() / 1000;
  for (const inc of state.incidents) {
    const live = state.alerts[inc.fingerprint] || {};
    const card = el("div", `incident ${inc.level}`);
    card.id = "incident-" + inc.fingerprint;
    card.dataset.fingerprint = inc.fingerprint;
    const where = inc.node_name + (inc.gpu_index >= 0 ? " GPU " + inc.gpu_index : "");
    const title = el("div", "title");
    title.append(el("span", "sev", inc.level + " "), inc.alertname + " on ", link(where, "#node=" + encodeURIComponent(inc.node_name)));
    const plot = el("div", "plot");
    card.append(title, plot);
    card.append(el("div", "", inc.summary || ""));
    card.append(el("div", "evidence", evidenceText(parseEvidence(inc.firing_evidence))));
    const meta = el("div", "meta dim", `started ${inc.starts_at} UTC, ${age(now - epoch(inc.starts_at))} ago · ${inc.decided_by} · ${inc.fingerprint}`);
    card.append(meta);
    const actions = el("div", "actions");
    if (live.acked_by) actions.append(el("span", "owner", "acked by " + live.acked_by + " "));
    if ((live.silenced_by || []).length) actions.append(el("span", "dim", "silenced "));
    const ack = el("button", "ack", live.acked_by ? "re-ack" : "Acknowledge");
    ack.onclick = () => act(() => call("POST", "api/acks", { fingerprint: inc.fingerprint, owner: owner(), comment: "from the console" }));
    const silence = el("button", "silence", "Silence 1h");
    const matchers = [`alertname="${inc.alertname}"`, `node="${inc.node_name}"`];
    if (inc.gpu_index >= 0) matchers.push(`gpu="${inc.gpu_index}"`);
    silence.onclick = () => act(() => call("POST", "api/silences", { matchers, duration: "1h", created_by: owner(), comment: "silenced from the console" }));
    actions.append(ack, silence);
    card.append(actions);
    box.append(card);
    drawEvidence(inc, plot).catch(showError);
  }
  focusIncident();
}

function parseEvidence(text) { try { return JSON.parse(text || "[]"); } catch (e) { return []; } }

async function drawEvidence(inc, target) {
  const ev = parseEvidence(inc.firing_evidence).find((e) => e.metric);
  if (!ev || inc.gpu_index < 0) return;
  const rows = await query("evidence", { node: inc.node_name, gpu: inc.gpu_index, metric: ev.metric, onset: epoch(inc.starts_at) });
  if (!rows.length) return;
  const onset = epoch(inc.starts_at);
  const chart = new uPlot({
    width: 320, height: 110, legend: { show: false }, cursor: { show: false },
    series: [{}, { label: ev.metric, stroke: "#c0182b", width: 1.5 }],
    axes: [{ size: 24, font: "10px sans-serif" }, { size: 40, font: "10px sans-serif" }],
    hooks: { draw: [(u) => { // the onset, as a vertical line
      const x = u.valToPos(onset, "x", true);
      u.ctx.save(); u.ctx.strokeStyle = "#2a5db0"; u.ctx.setLineDash([4, 3]);
      u.ctx.beginPath(); u.ctx.moveTo(x, u.bbox.top); u.ctx.lineTo(x, u.bbox.top + u.bbox.height); u.ctx.stroke(); u.ctx.restore();
    }] },
  }, [rows.map((r) => Number(r.t)), rows.map((r) => r.value)], target);
  target.title = `${ev.metric} of ${inc.node_name} GPU ${inc.gpu_index} around the onset (dashed)`;
  state.charts.push(chart);
}

async function drawNode(node) {
  const metric = state.colourBy === "health" ? state.metrics[0] : state.colourBy;
  $("node-name").textContent = node;
  $("node-metric").textContent = metric + ", last 5 minutes of data";
  const rows = await query("node_series", { node, metric });
  const ts = [...new Set(rows.map((r) => Number(r.t)))].sort((a, b) => a - b);
  const gpus = [...new Set(rows.map((r) => r.gpu))].sort((a, b) => a - b);
  const index = Object.fromEntries(ts.map((t, i) => [t, i]));
  const data = [ts, ...gpus.map(() => ts.map(() => null))];
  for (const r of rows) data[1 + gpus.indexOf(r.gpu)][index[Number(r.t)]] = r.v;
  const worst = worstByGpu();
  const series = [{}, ...gpus.map((g, i) => ({
    label: "GPU " + g + (worst[`${node}/${g}`] ? " (!)" : ""),
    stroke: worst[`${node}/${g}`] ? "#c0182b" : `hsl(${(i * 47) % 360}, 55%, 45%)`,
    width: worst[`${node}/${g}`] ? 2.5 : 1,
  }))];
  const target = $("node-chart");
  target.replaceChildren();
  new uPlot({ width: Math.min(1100, window.innerWidth - 60), height: 320, series }, data, target);
}

function owner() {
  const name = $("owner").value.trim() || "console";
  localStorage.setItem("gpuwatch-owner", name);
  return name;
}

async function act(fn) {
  try { await fn(); await refresh(); } catch (e) { showError(e); }
}

function focusIncident() {
  const m = location.hash.match(/incident=([0-9a-f]+)/);
  if (!m) return;
  const card = $("incident-" + m[1]);
  if (card) { card.classList.add("focus"); card.scrollIntoView(); }
}

async function refresh() {
  try {
    state.incidents = await query("incidents");
    try {
      state.alerts = Object.fromEntries((await call("GET", "api/alerts")).map((a) => [a.fingerprint, a]));
    } catch (e) { state.alerts = {}; }
    const node = decodeURIComponent((location.hash.match(/node=([^&]+)/) || [])[1] || "");
    $("node-section").hidden = !node;
    $("fleet-section").hidden = !!node;
    if (node) await drawNode(node); else await drawHeatmap();
    await drawIncidents();
    $("updated").textContent = "updated " + new Date().toISOString().replace("T", " ").slice(0, 19) + " UTC";
    document.body.dataset.loaded = "1";
    showError(null);
  } catch (e) { showError(e); }
}

async function start() {
  $("owner").value = localStorage.getItem("gpuwatch-owner") || "";
  try {
    const cfg = await call("GET", "api/config");
    state.queries = cfg.queries;
    state.metrics = cfg.metrics;
  } catch (e) { showError(e); return; }
  const select = $("colour-by");
  for (const name of ["health", ...state.metrics]) select.append(new Option(name, name));
  select.onchange = () => { state.colourBy = select.value; refresh(); };
  window.addEventListener("hashchange", refresh);
  await refresh();
  setInterval(refresh, 10000);
}

start();
