// The llmkit gateway dashboard's script: asks for the master key (kept in sessionStorage
// only), reads /admin/spend, /admin/keys and /admin/errors with it, draws the charts as
// inline SVG, and revokes keys. Every value from the server is set as text, never as HTML.
'use strict';

const STORE = 'llmkit-master-key';
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

function masterKey() {
  return sessionStorage.getItem(STORE);
}

async function admin(path, method) {
  const resp = await fetch(path, {
    method: method || 'GET',
    headers: { Authorization: 'Bearer ' + masterKey() },
    cache: 'no-store',
    credentials: 'omit',
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error((body.error && body.error.message) || ('HTTP ' + resp.status));
    err.status = resp.status;
    throw err;
  }
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function usd(v) {
  return '$' + Number(v).toFixed(6);
}

function int(v) {
  return Number(v).toLocaleString('en-US');
}

function time(ts) {
  const d = new Date(ts * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' +
    p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// A horizontal bar chart: one labelled bar per row, scaled to the largest value.
function barChart(target, rows, label, value, fmt, cls) {
  const box = $(target);
  box.replaceChildren();
  const width = 520, bar = 18, gap = 6, left = 150, right = 90;
  const height = Math.max(1, rows.length) * (bar + gap) + gap;
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': target });
  if (rows.length === 0) {
    chart.appendChild(svg('text', { x: 8, y: 16, class: 'empty' }, 'no requests in this window'));
  }
  const max = Math.max(0, ...rows.map(value));
  rows.forEach((r, i) => {
    const y = gap + i * (bar + gap);
    const v = value(r);
    const w = max > 0 ? Math.max(1, (width - left - right) * v / max) : 1;
    const name = String(label(r));
    chart.appendChild(svg('text', { x: left - 6, y: y + 13, 'text-anchor': 'end', class: 'axis' },
      name.length > 20 ? name.slice(0, 19) + '…' : name));
    const rect = svg('rect', { x: left, y: y, width: w, height: bar, rx: 3, class: cls });
    rect.appendChild(svg('title', {}, name + ': ' + fmt(v)));
    chart.appendChild(rect);
    chart.appendChild(svg('text', { x: left + w + 6, y: y + 13 }, fmt(v)));
  });
  box.appendChild(chart);
}

function tile(label, value, id) {
  const t = el('div', null, 'tile');
  t.appendChild(el('div', label, 'label'));
  const v = el('div', value, 'value');
  v.id = id;
  t.appendChild(v);
  return t;
}

function renderSpend(spend) {
  const t = spend.total;
  $('totals').replaceChildren(
    tile('Requests', int(t.requests), 'total-requests'),
    tile('Tokens', int(t.total_tokens), 'total-tokens'),
    tile('Cost', usd(t.cost_usd), 'total-cost'),
    tile('Errors', int(t.errors), 'total-errors'),
  );
  // Names in the charts (the table beside them gives the ids).
  const keyLabel = (r) => r.name || r.key;
  barChart('chart-key-cost', spend.by_key, keyLabel, (r) => r.cost_usd, usd, 'cost');
  barChart('chart-key-tokens', spend.by_key, keyLabel, (r) => r.total_tokens, int, 'tokens');
  barChart('chart-model-cost', spend.by_model, (r) => r.model, (r) => r.cost_usd, usd, 'cost');
  barChart('chart-model-tokens', spend.by_model, (r) => r.model, (r) => r.total_tokens, int, 'tokens');
  // Rows without an upstream (cache hits, the gateway's own 429s) show as `(none)`.
  const upstreams = spend.by_upstream || [];
  const upstreamName = (r) => (r.upstream && r.upstream !== '-' ? r.upstream : '(none)');
  barChart('chart-upstream-cost', upstreams, upstreamName, (r) => r.cost_usd, usd, 'cost');
  barChart('chart-upstream-tokens', upstreams, upstreamName, (r) => r.total_tokens, int, 'tokens');
  barChart('chart-day-cost', spend.by_day, (r) => r.day, (r) => r.cost_usd, usd, 'cost');
  barChart('chart-day-tokens', spend.by_day, (r) => r.day, (r) => r.total_tokens, int, 'tokens');
  $('day-basis').textContent = '(' + spend.day_basis + ' days, last ' + spend.days + ')';
  const body = $('spend-keys').tBodies[0];
  body.replaceChildren();
  for (const r of spend.by_key) {
    const tr = el('tr');
    tr.dataset.key = r.key;
    tr.dataset.requests = r.requests;
    tr.dataset.tokens = r.total_tokens;
    tr.dataset.promptTokens = r.prompt_tokens;
    tr.dataset.completionTokens = r.completion_tokens;
    tr.dataset.cost = r.cost_usd;
    const code = el('td');
    code.appendChild(el('code', r.key));
    tr.append(code, el('td', r.name || ''), el('td', int(r.requests), 'num'),
      el('td', int(r.prompt_tokens), 'num'), el('td', int(r.completion_tokens), 'num'),
      el('td', int(r.total_tokens), 'num tokens'), el('td', usd(r.cost_usd), 'num cost'),
      el('td', int(r.errors), 'num'));
    body.appendChild(tr);
  }
}

function limits(k) {
  const parts = [];
  if (k.rpm) parts.push(k.rpm + ' rpm');
  if (k.tpm) parts.push(k.tpm + ' tpm');
  if (k.max_concurrent) parts.push(k.max_concurrent + ' conc');
  return parts.join(', ') || '-';
}

function renderKeys(keys) {
  const body = $('keys').tBodies[0];
  body.replaceChildren();
  for (const k of keys) {
    const tr = el('tr', null, k.status);
    tr.dataset.key = k.id;
    const code = el('td');
    code.appendChild(el('code', k.id));
    const action = el('td');
    const button = el('button', 'Revoke', 'danger revoke');
    button.type = 'button';
    button.disabled = k.status !== 'active';
    button.dataset.key = k.id;
    button.addEventListener('click', () => revoke(k, button));
    action.appendChild(button);
    tr.append(code, el('td', k.name), el('td', k.status, 'status'),
      el('td', k.models.length ? k.models.join(', ') : 'all'),
      el('td', k.budget_daily_usd == null ? '-' : usd(k.budget_daily_usd), 'num'),
      el('td', limits(k)), el('td', time(k.created)), action);
    body.appendChild(tr);
  }
}

function renderErrors(rows) {
  const body = $('errors').tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = el('tr');
    const td = el('td', 'no failed requests');
    td.colSpan = 5;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  for (const r of rows) {
    const tr = el('tr');
    tr.dataset.status = r.status;
    tr.append(el('td', time(r.ts)), el('td', r.status === 0 ? 'no answer' : r.status, 'num'),
      el('td', r.model), el('td', r.key_name ? r.key_name + ' (' + r.key + ')' : (r.key || '-')),
      el('td', r.latency_ms + ' ms', 'num'));
    body.appendChild(tr);
  }
}

async function revoke(k, button) {
  if (!window.confirm('Revoke key ' + k.name + ' (' + k.id + ')? Its next request is refused.')) return;
  button.disabled = true;
  try {
    await admin('/admin/keys/' + encodeURIComponent(k.id) + '/revoke', 'POST');
    $('status').textContent = 'Revoked ' + k.name + ' (' + k.id + ').';
    await load();
  } catch (e) {
    button.disabled = false;
    failed(e);
  }
}

function failed(e) {
  if (e.status === 401 || e.status === 403) {
    sessionStorage.removeItem(STORE);
    show(false);
    $('login-error').textContent = e.message;
  } else {
    $('status').textContent = 'Error: ' + e.message;
  }
}

function show(loggedIn) {
  $('login').hidden = loggedIn;
  $('dashboard').hidden = !loggedIn;
  $('controls').hidden = !loggedIn;
}

async function load() {
  const days = $('days').value;
  try {
    const [spend, keys, errors] = await Promise.all([
      admin('/admin/spend?days=' + encodeURIComponent(days)),
      admin('/admin/keys'),
      admin('/admin/errors?limit=50'),
    ]);
    show(true);
    renderSpend(spend);
    renderKeys(keys.data);
    renderErrors(errors.data);
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    failed(e);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = $('master-key').value.trim();
    $('master-key').value = '';
    $('login-error').textContent = '';
    if (!key) return;
    sessionStorage.setItem(STORE, key);
    load();
  });
  $('refresh').addEventListener('click', () => load());
  $('days').addEventListener('change', () => load());
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(STORE);
    show(false);
  });
  if (masterKey()) load();
  else show(false);
});
