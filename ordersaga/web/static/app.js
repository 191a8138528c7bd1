"use strict";
// The operators' page: short polling of the web view's own JSON routes, nothing fetched
// from anywhere else. Every value is written with textContent, never as HTML.
const POLL_MS = 1000;

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(tableId, rows, render) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  for (const item of rows) render(body.insertRow(), item);
}

function orderLink(row, orderId) {
  const td = row.insertCell();
  const a = document.createElement("a");
  a.href = `#${orderId}`;
  a.textContent = orderId;
  a.addEventListener("click", (e) => { e.preventDefault(); showOrder(orderId); });
  td.appendChild(a);
}

// With auth on, every data route wants an admin's bearer token. It is kept for this
// tab only (sessionStorage), never in a cookie: no other site can send it for us.
const TOKEN_KEY = "ordersaga.token";

function authorized(headers = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

async function api(path) {
  const r = await fetch(path, { headers: authorized({ Accept: "application/json" }) });
  if (r.status === 401 || r.status === 403) {
    document.getElementById("signin").hidden = false;
    throw new Error(`${path}: ${r.status}, an admin token is needed`);
  }
  // An answer to a request sent before the token was given may have shown the form.
  document.getElementById("signin").hidden = true;
  return r;
}

async function getJson(path) {
  const r = await api(path);
  if (!r.ok && r.status !== 503) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

document.getElementById("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = document.getElementById("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("token").value = "";
  document.getElementById("signin").hidden = true;
});

async function refresh() {
  const [services, stats, recent, stuck, low] = await Promise.all([
    getJson("/services"),
    getJson("/dashboard/stats"),
    getJson("/orders?limit=10"),
    getJson("/orders?status=COMPENSATION_STUCK&limit=20"),
    getJson("/inventory?low_stock=true"),
  ]);
  fill("services", services.services, (row, s) => {
    cell(row, s.group);
    cell(row, `${s.host}:${s.port} (pid ${s.pid})`);
    cell(row, s.state, s.state);
    cell(row, `${s.age_s.toFixed(1)} s`);
    cell(row, s.partitions.join(" "), "partitions");
    cell(row, s.lag);
  });
  const chips = document.getElementById("in-flight");
  chips.replaceChildren();
  for (const [status, count] of Object.entries(stats.in_flight)) {
    const span = document.createElement("span");
    span.textContent = `${status} ${count}`;
    span.className = status;
    chips.appendChild(span);
  }
  fill("outcomes", stats.outcomes, (row, m) => {
    cell(row, m.minute);
    cell(row, Object.entries(m.counts).map(([k, v]) => `${k} ${v}`).join(", "));
  });
  fill("latency", stats.step_latency, (row, s) => {
    cell(row, s.step);
    cell(row, `${(s.mean_s * 1000).toFixed(0)} ms`);
    cell(row, s.count);
  });
  fill("dead-letters", stats.dead_letters, (row, d) => { cell(row, d.topic); cell(row, d.messages); });
  fill("recent", recent.orders, (row, o) => {
    orderLink(row, o.order_id);
    cell(row, o.customer_id);
    cell(row, o.status, o.status);
    cell(row, o.failure_reason);
  });
  fill("stuck", stuck.orders, (row, o) => {
    orderLink(row, o.order_id);
    cell(row, o.customer_id);
    cell(row, o.updated_at);
  });
  fill("low-stock", low.items, (row, i) => {
    cell(row, i.sku);
    cell(row, i.available);
    cell(row, i.low_stock_at);
  });
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function showOrder(orderId) {
  const panel = document.getElementById("order-panel");
  document.getElementById("order-title").textContent = orderId;
  const summary = document.getElementById("order-summary");
  let r;
  try {
    r = await api(`/orders/${encodeURIComponent(orderId)}`);
  } catch (err) {
    panel.hidden = false;
    summary.textContent = err.message;
    return;
  }
  panel.hidden = false;
  if (!r.ok) {
    summary.textContent = r.status === 404 ? "no such order" : `error ${r.status}`;
    fill("order-history", [], () => {});
    return;
  }
  const order = await r.json();
  summary.textContent = `${order.status}${order.failure_reason ? " (" + order.failure_reason + ")" : ""}, customer ${order.customer_id}, total ${order.total ?? "-"}`;
  summary.className = order.status;
  const history = await getJson(`/orders/${encodeURIComponent(orderId)}/events`);
  fill("order-history", history.events, (row, e) => {
    cell(row, e.seq);
    cell(row, e.type);
    cell(row, e.status, e.status);
    cell(row, e.at);
    cell(row, e.detail);
  });
}

document.getElementById("lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = document.getElementById("lookup-id").value.trim();
  if (/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$/.test(id)) showOrder(id);
});

async function loop() {
  try {
    await refresh();
  } catch (err) {
    document.getElementById("updated").textContent = `retrying: ${err.message}`;
  }
  setTimeout(loop, POLL_MS);
}
if (location.hash.length > 1) showOrder(location.hash.slice(1));
loop();
