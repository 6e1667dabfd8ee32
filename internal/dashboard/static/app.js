// Sluice dashboard: plain JavaScript, no build step. One EventSource per
// tab carries the list and, on a Canary's page, that Canary; it is closed
// while the tab is hidden and reopened (with a fresh snapshot) when shown.
"use strict";

const state = {
  rows: new Map(),   // "ns/name" -> row
  focus: "",         // "ns/name" on a Canary's page
  detail: null,
  chartRecord: null, // record number the charts show; null: the current one
  source: null,
};

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

function ago(t) {
  if (!t) return "–";
  let s = Math.max(0, Math.round((Date.now() - new Date(t).getTime()) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60 ? (s % 60) + "s" : "");
  if (s < 86400) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d";
}
function took(a, b) {
  if (!a) return "–";
  const s = Math.round(((b ? new Date(b) : new Date()) - new Date(a)) / 1000);
  return s < 60 ? s + "s" : s < 3600 ? Math.floor(s / 60) + "m" + (s % 60) + "s" : Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}
function phaseClass(p) {
  switch (p) {
    case "Succeeded": case "Initialized": return "ok";
    case "Failed": return "bad";
    case "Progressing": case "Promoting": case "Finalising": case "Initializing": return "run";
    case "Paused": case "WaitingPromotion": case "Waiting": return "wait";
  }
  return "idle";
}
const phaseBadge = (p, id) => el("span", { class: "phase " + phaseClass(p), id, text: p });

// ---- the stream -----------------------------------------------------------

function connect() {
  disconnect();
  const url = "api/stream" + (state.focus ? "?canary=" + encodeURIComponent(state.focus) : "");
  const es = new EventSource(url);
  state.source = es;
  const conn = $("#connection");
  es.onopen = () => { conn.textContent = "live"; conn.className = "connection live"; };
  es.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "connection down"; };
  es.addEventListener("rows", (ev) => {
    const m = JSON.parse(ev.data);
    if (m.full) state.rows.clear();
    for (const r of m.rows) state.rows.set(r.namespace + "/" + r.name, r);
    for (const k of m.removed || []) state.rows.delete(k);
    renderNamespaces();
    if (!state.focus) renderList();
  });
  es.addEventListener("detail", (ev) => {
    const m = JSON.parse(ev.data);
    if (m.key !== state.focus) return;
    state.detail = m.detail;
    renderDetail();
  });
}
function disconnect() {
  if (state.source) state.source.close();
  state.source = null;
}
document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    disconnect();
    $("#connection").textContent = "paused while hidden";
    $("#connection").className = "connection";
  } else {
    connect();
  }
});

// ---- routing --------------------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/([^/]+)\/([^/]+)$/);
  const focus = m ? decodeURIComponent(m[1]) + "/" + decodeURIComponent(m[2]) : "";
  if (focus !== state.focus) {
    state.focus = focus;
    state.detail = null;
    state.chartRecord = null;
  }
  $("#list-page").hidden = !!focus;
  $("#detail-page").hidden = true;
  $("#missing-page").hidden = true;
  document.title = focus ? focus + " · Sluice" : "Sluice";
  if (!focus) renderList();
  connect();
}
window.addEventListener("hashchange", () => { route(); $("#main").focus(); });

// ---- the list -------------------------------------------------------------

function renderNamespaces() {
  const sel = $("#namespace");
  const have = new Set([...sel.options].map((o) => o.value));
  const want = [...new Set([...state.rows.values()].map((r) => r.namespace))].sort();
  for (const ns of want) if (!have.has(ns)) sel.append(el("option", { value: ns, text: ns }));
}
$("#namespace").addEventListener("change", () => {
  localStorage.setItem("sluice.namespace", $("#namespace").value);
  renderList();
});

function renderList() {
  const ns = $("#namespace").value;
  const body = $("#canaries tbody");
  const rows = [...state.rows.values()].filter((r) => !ns || r.namespace === ns);
  body.replaceChildren(...rows.map((r) => {
    const key = r.namespace + "/" + r.name;
    const href = "#/" + encodeURIComponent(r.namespace) + "/" + encodeURIComponent(r.name);
    const bar = el("span", { class: "bar", "aria-hidden": "true" }, el("span"));
    bar.firstChild.style.width = r.weight + "%";
    return el("tr", { "data-key": key },
      el("td", { text: r.namespace }),
      el("td", {}, el("a", { href, text: r.name })),
      el("td", {}, phaseBadge(r.phase), r.reason && r.phase !== r.reason ? el("span", { class: "muted", text: " " + r.reason }) : null),
      el("td", { class: "num weight" }, bar, r.weight + "%"),
      el("td", { class: "num", text: r.steps ? r.step + "/" + r.steps : "–" }),
      el("td", { class: "num" + (r.failedChecks ? " bad-text" : ""), text: r.threshold ? r.failedChecks + "/" + r.threshold : "–" }),
      el("td", { text: r.lastCheck ? ago(r.lastCheck) + " ago" : "–" }),
      el("td", { text: ago(r.created) }),
    );
  }));
  $("#empty").hidden = rows.length > 0;
}

// ---- one Canary -----------------------------------------------------------

function fact(dl, name, value, id) {
  if (value === undefined || value === null || value === "") return;
  dl.append(el("dt", { text: name }), el("dd", { id, text: String(value) }));
}

function renderDetail() {
  const d = state.detail;
  if (!d) {
    $("#detail-page").hidden = true;
    $("#missing-page").hidden = false;
    $("#missing-text").textContent = "Canary " + state.focus + " is not there (deleted, or not in the namespaces this dashboard watches).";
    return;
  }
  $("#missing-page").hidden = true;
  $("#detail-page").hidden = false;
  $("#detail-name").textContent = d.namespace + "/" + d.name;
  const badge = $("#phase");
  badge.textContent = d.phase;
  badge.className = "phase " + phaseClass(d.phase);
  $("#message").textContent = d.message ? (d.reason ? d.reason + ": " : "") + d.message : "";

  const facts = $("#facts");
  facts.replaceChildren();
  fact(facts, "Weight", d.weight + "%" + (d.observedWeight !== undefined && d.observedWeight !== null ? " set, " + d.observedWeight + "% read back" : " set"), "weight");
  fact(facts, "Step", d.steps ? d.step + " of " + d.steps : "–", "step");
  fact(facts, "Stable revision", d.stableRevision || "–");
  fact(facts, "Canary revision", d.canaryRevision || "–");
  fact(facts, "Failed checks", d.threshold ? d.failedChecks + " of " + d.threshold : "–");
  fact(facts, "Last check", d.lastCheck ? ago(d.lastCheck) + " ago" : "–");
  fact(facts, "Paused", d.paused ? "yes (spec.paused)" : "");

  for (const b of document.querySelectorAll(".actions button")) {
    const a = d.actions[b.dataset.action];
    b.disabled = !a || !a.ok;
    b.title = a ? a.says : "";
  }

  $("#strategy").textContent = "(" + d.strategy + ")";
  $("#steps").replaceChildren(...d.stepList.map((s) => el("li", { class: s.state, "aria-current": s.state === "current" ? "step" : null, text: s.text })));
  const gate = $("#gate");
  gate.replaceChildren();
  if (d.gate) {
    gate.append(el("p", { class: d.gate.open ? "ok-text" : "warn-text",
      text: "Gate " + d.gate.type + " before " + d.gate.point + ": " + (d.gate.open ? "open" : "closed" + (d.gate.message ? " — " + d.gate.message : ", waiting for the first answer")) }));
  }
  for (const h of d.hooks || []) gate.append(el("p", { class: "muted", text: "Webhook " + h.name + " (" + h.type + ") " + h.url }));
  const ver = $("#verification");
  ver.replaceChildren();
  if (d.verification) {
    const v = d.verification;
    ver.append(el("p", { class: v.state === "Verified" ? "ok-text" : v.state === "Failed" ? "bad-text" : "",
      text: "Verification: " + v.state + " (revision " + v.revision + ")" + (v.mismatches ? ", " + v.mismatches + " mismatches: " + (v.lastMismatch || "") : "") }));
  }

  $("#checks tbody").replaceChildren(...d.checks.map((c) => el("tr", { "data-check": c.name },
    el("th", { scope: "row", text: c.name }),
    el("td", { text: c.bound || "–" }),
    el("td", { class: "num", text: c.value || "–" }),
    el("td", { class: c.result === "Failed" ? "bad-text" : c.result === "Passed" ? "ok-text" : "warn-text",
      text: (c.result || "not yet checked") + (c.message && c.result !== "Passed" ? ": " + c.message : "") }),
  )));
  if (d.judge) {
    $("#checks tbody").append(el("tr", {}, el("th", { scope: "row", text: "judge score" }), el("td", { text: "round " + d.judge.round }),
      el("td", { class: "num", text: d.judge.score }), el("td", { text: d.judge.verdict })));
  }

  $("#records-hidden").hidden = !d.recordsHidden;
  $("#records tbody").replaceChildren(...d.records.map((r) => {
    const tags = [r.stable ? "primary" : "", r.current ? "current" : ""].filter(Boolean).join(", ");
    const show = el("button", { type: "button", "data-show": r.number, text: "Chart" });
    show.addEventListener("click", () => { state.chartRecord = r.number; renderCharts(); });
    const cell = el("td", {}, show);
    if ((d.undo || []).includes(r.number)) {
      const undo = el("button", { type: "button", "data-undo": r.number, text: "Undo to #" + r.number });
      undo.addEventListener("click", () => ask("undo", r.number,
        "Set the Deployment back to revision #" + r.number + " (" + r.revision + ", " + (r.images || "") + "); Sluice then releases it like any change."));
      cell.append(" ", undo);
    }
    return el("tr", { "data-record": r.number },
      el("td", { class: "num", text: r.number + (tags ? " (" + tags + ")" : "") }),
      el("td", { text: r.revision }),
      el("td", { class: r.outcome === "Failed" ? "bad-text" : r.outcome === "Succeeded" ? "ok-text" : "", text: r.outcome || "–" }),
      el("td", { text: r.start ? ago(r.start) + " ago" : "–" }),
      el("td", { text: took(r.start, r.end) }),
      el("td", { class: "num", text: (r.checkRounds || 0) + (r.failedChecks ? " (" + r.failedChecks + " failed)" : "") }),
      el("td", { text: r.images || "–" }),
      el("td", { text: r.reason || "–", title: r.message || "" }),
      cell,
    );
  }));

  $("#events-hidden").hidden = !d.eventsHidden;
  $("#events tbody").replaceChildren(...d.events.map((e) => el("tr", {},
    el("td", { class: e.type === "Warning" ? "bad-text" : "", text: e.type }),
    el("td", { text: e.reason }), el("td", { text: e.message }),
    el("td", { class: "num", text: e.count }), el("td", { text: ago(e.last) + " ago" }))));
  $("#conditions tbody").replaceChildren(...(d.conditions || []).map((c) => el("tr", {},
    el("td", { text: c.type }), el("td", { text: c.status }), el("td", { text: c.reason }), el("td", { text: c.message || "" }))));
  renderCharts();
}

// ---- charts (SVG drawn here: no library) -----------------------------------

function chartedRecord(d) {
  if (!d.records.length) return null;
  return d.records.find((r) => r.number === state.chartRecord) || d.records.find((r) => r.current) || d.records[0];
}

// chart draws points (t: ms, y) over a time axis; limits are dashed
// horizontal lines; stepped joins the points as a step function.
function chart({ title, points, yMin, yMax, unit, limits = [], stepped }) {
  const W = 560, H = 200, L = 44, R = 12, T = 12, B = 28;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  s.append(Object.assign(svg("title"), { textContent: title }));
  const t0 = points.length ? points[0].t : Date.now(), t1 = points.length ? Math.max(points[points.length - 1].t, t0 + 1000) : t0 + 1000;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - yMin) / (yMax - yMin || 1)) * (H - T - B);
  s.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }), svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
    const lab = svg("text", { class: "label", x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    lab.textContent = fmt(v) + (unit || "");
    s.append(lab);
  }
  const tl = svg("text", { class: "label", x: L, y: H - 8 });
  tl.textContent = points.length ? new Date(t0).toLocaleTimeString() : "no points yet";
  const tr = svg("text", { class: "label", x: W - R, y: H - 8, "text-anchor": "end" });
  tr.textContent = points.length ? new Date(t1).toLocaleTimeString() : "";
  s.append(tl, tr);
  for (const l of limits) s.append(svg("line", { class: "limit", x1: L, x2: W - R, y1: y(l), y2: y(l) }));
  if (points.length) {
    let d = "";
    points.forEach((p, i) => {
      if (i === 0) d += `M${x(p.t)},${y(p.y)}`;
      else d += stepped ? `H${x(p.t)}V${y(p.y)}` : `L${x(p.t)},${y(p.y)}`;
    });
    s.append(svg("path", { class: "line", d }));
    for (const p of points) {
      const c = svg("circle", { class: "pt " + (p.result || ""), cx: x(p.t), cy: y(p.y), r: 3.5, "data-point": "" });
      const tt = svg("title");
      tt.textContent = new Date(p.t).toLocaleTimeString() + ": " + fmt(p.y) + (unit || "") + (p.note ? " — " + p.note : "");
      c.append(tt);
      s.append(c);
    }
  }
  return s;
}
function fmt(v) { return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : String(+v.toPrecision(3)); }

function renderCharts() {
  const d = state.detail;
  if (!d) return;
  const rec = chartedRecord(d);
  $("#chart-of").textContent = rec ? "(release #" + rec.number + ", " + (rec.outcome || "") + ")" : "";
  const hist = rec ? rec.history || [] : [];
  const weights = hist.map((p) => ({ t: Date.parse(p.time), y: p.weight, note: "step " + p.step }));
  if (rec && rec.current && d.releasing) weights.push({ t: Date.now(), y: d.weight, note: "now" });
  const fig = $("#weight-chart");
  fig.replaceChildren(chart({ title: "Canary weight over time", points: weights, yMin: 0, yMax: 100, unit: "%", stepped: true }),
    el("figcaption", { text: weights.length + " points" + (rec ? " from the record of release #" + rec.number : "") }));
  fig.dataset.points = String(weights.length);

  const charts = $("#check-charts");
  charts.replaceChildren();
  for (const c of d.checks) {
    const pts = [];
    for (const p of hist) {
      const v = (p.values || []).find((x) => x.name === c.name);
      const n = v ? parseFloat(v.value) : NaN;
      if (!isNaN(n)) pts.push({ t: Date.parse(p.time), y: n, result: v.result, note: v.result + ", round " + p.round });
    }
    if (!pts.length) continue;
    const limits = [c.min, c.max].filter((v) => v !== undefined && v !== null);
    const all = pts.map((p) => p.y).concat(limits);
    let lo = Math.min(0, ...all), hi = Math.max(...all);
    if (hi === lo) hi = lo + 1;
    hi += (hi - lo) * 0.1;
    charts.append(el("figure", { class: "chart", "data-chart": c.name },
      chart({ title: c.name + " per round", points: pts, yMin: lo, yMax: hi, limits }),
      el("figcaption", { text: c.name + ": " + pts.length + " rounds" + (c.bound ? "; passes when " + c.bound : "") })));
  }
}

// ---- actions ---------------------------------------------------------------

const titles = { promote: "Promote", "promote-full": "Promote fully", abort: "Abort", retry: "Retry", pause: "Pause", resume: "Resume", undo: "Undo" };

function ask(action, revision, text) {
  const dlg = $("#confirm");
  $("#confirm-title").textContent = titles[action] + " " + state.focus + "?";
  $("#confirm-text").textContent = text;
  dlg.onclose = () => { if (dlg.returnValue === "yes") act(action, revision); };
  dlg.returnValue = "";
  dlg.showModal();
  $("#confirm-no").focus();
}

for (const b of document.querySelectorAll(".actions button")) {
  b.addEventListener("click", () => {
    const a = state.detail && state.detail.actions[b.dataset.action];
    ask(b.dataset.action, null, a ? a.says : "");
  });
}

async function act(action, revision) {
  const out = $("#action-result");
  const [ns, name] = state.focus.split("/");
  let url = "api/canaries/" + encodeURIComponent(ns) + "/" + encodeURIComponent(name) + "/" + action;
  if (action === "undo") url += "?revision=" + revision;
  out.hidden = false;
  out.className = "result";
  out.textContent = titles[action] + "…";
  try {
    const res = await fetch(url, { method: "POST", headers: { "X-Sluice-Dashboard": "1" } });
    const body = await res.json();
    out.className = "result " + (res.ok ? "ok" : "bad");
    out.textContent = res.ok ? body.message : "Refused (" + res.status + "): " + body.error;
  } catch (e) {
    out.className = "result bad";
    out.textContent = "The dashboard did not answer: " + e;
  }
}

// ---- start -----------------------------------------------------------------

setInterval(() => { if (!state.focus) renderList(); }, 5000);
const savedNs = localStorage.getItem("sluice.namespace");
if (savedNs) $("#namespace").append(el("option", { value: savedNs, text: savedNs, selected: true }));
route();
