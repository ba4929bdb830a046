// Genius hub dashboard: vanilla JS, no build step. The token lives in sessionStorage only.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("genius.token"), role: null, stream: null, customer: null,
                rates: [], lastSample: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "onclick") node.onclick = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

const fmt = new Intl.NumberFormat();
const num = (n) => (n == null ? "–" : fmt.format(n));
function when(ts) {
  if (!ts) return "–";
  const s = Date.now() / 1000 - ts;
  if (s < 0) return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (r.status === 401) { logout("Your token was not accepted."); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

// -- login ---------------------------------------------------------------------------------
async function login(token) {
  const r = await fetch("/api/whoami", { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) return false;
  const who = await r.json();
  state.token = token; state.role = who.role;
  sessionStorage.setItem("genius.token", token);
  $("#who").textContent = `${who.name} (${who.role})`;
  for (const node of document.querySelectorAll("[data-operator]")) node.hidden = who.role !== "operator";
  $("#login").hidden = true; $("#app").hidden = false;
  const t = await api("/api/throughput");
  state.rates = ratesFrom(t.samples);
  drawThroughput();
  route();
  return true;
}

function logout(message) {
  sessionStorage.removeItem("genius.token");
  state.token = null;
  if (state.stream) state.stream.close();
  state.stream = null;
  $("#app").hidden = true; $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const ok = await login($("#token").value.trim());
  if (!ok) $("#login-error").textContent = "That token was not accepted.";
});
$("#logout").addEventListener("click", () => logout());

// -- routing -------------------------------------------------------------------------------
function route() {
  const hash = location.hash || "#/fleet";
  const m = hash.match(/^#\/customer\/([a-z0-9][a-z0-9_-]*)$/);
  const view = m ? "customer" : hash === "#/customers" && state.role === "operator" ? "customers" : "fleet";
  for (const v of ["fleet", "customers", "customer"]) $(`#view-${v}`).hidden = v !== view;
  $("#nav-fleet").classList.toggle("active", view === "fleet");
  $("#nav-customers").classList.toggle("active", view !== "fleet");
  state.customer = m ? m[1] : null;
  if (view === "customers") loadCustomers();
  if (view === "customer") loadCustomer(state.customer);
  if (view === "fleet" && state.role === "operator") loadDeadRows();
  openStream();
}
window.addEventListener("hashchange", () => state.token && route());

// -- live stream ---------------------------------------------------------------------------
function openStream() {
  if (state.stream) state.stream.close();
  const q = new URLSearchParams({ token: state.token });
  if (state.customer) q.set("customer", state.customer);
  const es = new EventSource(`/api/stream?${q}`);
  es.addEventListener("fleet", (ev) => renderFleet(JSON.parse(ev.data)));
  es.addEventListener("customer", (ev) => renderContext(JSON.parse(ev.data)));
  es.onopen = () => $("#live").classList.add("on");
  es.onerror = () => $("#live").classList.remove("on");
  state.stream = es;
}

// -- fleet ---------------------------------------------------------------------------------
const RATE_WINDOW_S = 3;  // the chart plots events/s over a trailing window, as the hub's rate does

function ratesFrom(samples) {
  state.samples = samples.slice(-600);
  state.lastSample = samples.length ? samples[samples.length - 1] : null;
  const out = [];
  for (let i = 1; i < samples.length; i++) out.push(rateAt(samples, i));
  return out.filter((r) => r).slice(-600);
}

function rateAt(samples, i) {
  if (i < 1) return null;
  const now = samples[i];
  let j = i - 1;
  while (j > 0 && now.ts - samples[j - 1].ts <= RATE_WINDOW_S) j--;
  const dt = now.ts - samples[j].ts;
  return dt > 0 ? { ts: now.ts, rate: Math.max(0, (now.events - samples[j].events) / dt) } : null;
}

function renderFleet(doc) {
  const c = doc.counters;
  $("#events-total").textContent = num(c.events);
  $("#events-rate").textContent = doc.rate.toFixed(1);
  $("#edges-online").textContent = num(doc.edges.online);
  $("#edges-offline").textContent = num(doc.edges.offline + doc.edges.unknown);
  $("#alarm-count").textContent = num(doc.alarms.length);
  $("#f-edges").textContent = num(doc.edges.total);
  $("#f-backlog").textContent = num(doc.edges.backlog);
  $("#f-gaps").textContent = num(doc.edges.gaps);
  $("#f-missing").textContent = num(doc.edges.missing);
  $("#f-overflow").textContent = num(doc.edges.overflow_dropped);
  if (!state.lastSample || c.ts > state.lastSample.ts) {
    state.samples = (state.samples || []).concat([c]).slice(-600);
    const r = rateAt(state.samples, state.samples.length - 1);
    if (r) { state.rates.push(r); if (state.rates.length > 600) state.rates.shift(); }
    state.lastSample = c;
    drawThroughput();
  }
  const alarms = $("#alarms");
  alarms.replaceChildren(...(doc.alarms.length
    ? doc.alarms.map((a) => el("li", { class: a.severity }, `${a.kind.replace(/_/g, " ")}: ${a.message}`))
    : [el("li", { class: "muted" }, "none")]));
  const body = $("#edges tbody");
  body.replaceChildren(...doc.edge_rows.map((e) => {
    const st = e.online === true ? el("span", { class: "ok" }, "online") : e.online === false ? el("span", { class: "bad" }, "offline") : el("span", { class: "muted" }, "unknown");
    const tr = el("tr", {}, el("td", {}, e.customer_id), el("td", {}, e.edge_id), el("td", {}, e.role || "–"), el("td", {}, st),
      el("td", {}, when(e.last_seen)), el("td", { class: "num" }, num(e.events)), el("td", { class: "num" }, num(e.backlog)),
      el("td", { class: "num" }, num(e.gaps)), el("td", { class: "num" }, num(e.missing)), el("td", { class: "num" }, num(e.overflow_dropped)));
    if (state.role === "operator") { tr.className = "click"; tr.onclick = () => { location.hash = `#/customer/${e.customer_id}`; }; }
    return tr;
  }));
  const counts = Object.entries(doc.dead_letters);
  $("#dead-counts").replaceChildren(...(counts.length ? counts.map(([r, n]) => el("span", {}, `${r}: ${num(n)}`)) : [el("span", { class: "muted" }, "none")]));
}

async function loadDeadRows() {
  const doc = await api("/api/dead-letters?limit=50");
  $("#dead-rows tbody").replaceChildren(...(doc.rows || []).map((r) => el("tr", {},
    el("td", {}, when(r.ts)), el("td", {}, r.reason), el("td", {}, r.edge_id || "–"),
    el("td", { class: "wrap" }, r.detail), el("td", { class: "wrap" }, r.raw_preview))));
}

function chart(canvas, points, { color = "#2563eb", min = 0, max = null, label = (v) => v.toFixed(1) } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 36;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px system-ui"; ctx.fillStyle = "#6b7280"; ctx.strokeStyle = "#e5e7eb";
  if (points.length < 2) { ctx.fillText("collecting…", pad, H / 2); return; }
  const t0 = points[0].x, t1 = points[points.length - 1].x;
  const top = max != null ? max : Math.max(1, ...points.map((p) => p.y)) * 1.1;
  const X = (x) => pad + ((x - t0) / Math.max(t1 - t0, 1e-9)) * (W - pad - 8);
  const Y = (y) => H - 18 - ((y - min) / (top - min)) * (H - 28);
  for (let i = 0; i <= 4; i++) {
    const v = min + ((top - min) * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad, Y(v)); ctx.lineTo(W - 8, Y(v)); ctx.stroke();
    ctx.fillText(label(v), 2, Y(v) + 4);
  }
  ctx.beginPath(); ctx.strokeStyle = color; ctx.lineWidth = 2;
  points.forEach((p, i) => (i ? ctx.lineTo(X(p.x), Y(p.y)) : ctx.moveTo(X(p.x), Y(p.y))));
  ctx.stroke(); ctx.lineTo(X(t1), Y(min)); ctx.lineTo(X(t0), Y(min)); ctx.closePath();
  ctx.fillStyle = color + "22"; ctx.fill();
  ctx.fillStyle = "#6b7280";
  const stamp = (t) => (t1 - t0 > 86400 ? new Date(t * 1000).toLocaleDateString() : new Date(t * 1000).toLocaleTimeString());
  ctx.fillText(stamp(t0), pad, H - 4);
  const end = stamp(t1);
  ctx.fillText(end, W - 8 - ctx.measureText(end).width, H - 4);
}

function drawThroughput() {
  chart($("#throughput"), state.rates.map((r) => ({ x: r.ts, y: r.rate })));
}

// -- customers -----------------------------------------------------------------------------
async function loadCustomers() {
  const doc = await api("/api/customers");
  $("#customers tbody").replaceChildren(...doc.customers.map((c) => {
    const tr = el("tr", { class: "click" }, el("td", {}, c.customer_id), el("td", { class: "num" }, num(c.edges)),
      el("td", { class: "num" }, num(c.events)), el("td", {}, when(c.first_seen)));
    tr.onclick = () => { location.hash = `#/customer/${c.customer_id}`; };
    return tr;
  }));
}

async function loadCustomer(id) {
  $("#c-title").textContent = `Customer ${id}`;
  const [ctx, ant] = await Promise.all([api(`/api/customers/${id}/context`), api(`/api/customers/${id}/anticipations`)]);
  renderContext(ctx);
  renderAnticipations(ant);
}

function renderContext(doc) {
  if (doc.customer_id !== state.customer) return;
  const c = doc.context;
  const held = doc.declared;
  const declared = held ? ` · declared ${held.market}${held.until ? ` until ${new Date(held.until * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC` : ""}` : "";
  $("#c-market").textContent = (doc.market || "not anticipated yet") + declared;
  $("#c-home").textContent = c.home == null ? "unknown" : `${c.home ? "home" : "away"} (by ${c.home_basis})`;
  $("#c-rooms").textContent = c.occupied_rooms.length ? c.occupied_rooms.join(", ") : "none";
  $("#c-activity").textContent = when(c.last_activity);
  $("#c-privacy tbody").replaceChildren(...doc.privacy.map((p) => el("tr", {},
    el("td", {}, p.edge_id), el("td", {}, p.device), el("td", {}, p.room || "–"),
    el("td", { class: "wrap" }, ...Object.entries(p.capabilities).map(([cap, pol]) => el("span", { class: `pill ${pol}` }, `${cap}: ${pol}`))))));
  $("#c-latest tbody").replaceChildren(...c.latest.slice(0, 40).map((r) => el("tr", {},
    el("td", {}, r.device), el("td", {}, r.capability), el("td", {}, typeof r.value === "number" ? String(+r.value.toFixed(3)) : String(r.value)), el("td", {}, r.room || "–"), el("td", {}, when(r.ts)))));
}

function renderAnticipations(doc) {
  const list = $("#c-anticipations");
  list.replaceChildren(...(doc.anticipations.length ? doc.anticipations.map((a) => el("li", {},
    el("div", {}, `${when(a.ts)} · ${a.market || ""} · ${a.model || ""}`),
    ...(a.jobs || []).map((j) => el("div", {}, el("span", { class: "job" }, `${j.job} ${(100 * j.probability).toFixed(0)}%`),
      el("span", { class: "because" }, (j.because || []).join("; ")))))) : [el("li", { class: "muted" }, "No anticipations yet.")]));
  const points = (doc.sacrifice || []).filter((s) => s.ts != null && s.sacrifice != null).map((s) => ({ x: s.ts, y: s.sacrifice }));
  $("#sacrifice-empty").hidden = points.length > 1;
  $("#sacrifice").hidden = points.length <= 1;
  if (points.length > 1) chart($("#sacrifice"), points, { color: "#b45309", max: 1, label: (v) => v.toFixed(2) });
}

// -- start ---------------------------------------------------------------------------------
(async () => {
  if (state.token && (await login(state.token))) return;
  logout();
})();
