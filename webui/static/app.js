// racklift dashboard: loads the plan and node states from the admin API,
// applies live events from /api/v1/events, and renders the overview, the
// node table, the node detail panel and the plan. Its only data source is
// the API in webui/api.go.
import { h, setText, setAttr, icon } from './dom.js';
import { loadI18n, setLang, getLang, t } from './i18n.js';
import { PHASES, GROUPS, TIME_GROUPS, setPhases, groupOf, rank, progress, isFinal, needsAttention } from './phases.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'racklift.token';
const LARGE_KEY = 'racklift.large';
const REFRESH_MS = 10_000; // full node refresh while live (durations, attempts)
const MAX_BACKOFF_MS = 5_000;

const state = {
  cluster: null,
  nodes: new Map(), // name → NodeJSON plus lastId, durBase, durAt
  order: [], // node names in plan order
  runs: [],
  skew: 0, // server clock minus browser clock, ms
  lastId: 0, // newest event ID applied
  loaded: false,
  live: false,
  filter: { q: '', role: '', phase: '' },
  sort: 'name',
  selected: new Set(),
  detail: null, // node shown in the detail panel
  detailIds: new Set(),
  unplanned: [], // machines booting that are not in the plan (/unplanned)
};

const serverNow = () => Date.now() + state.skew;

// ---------------------------------------------------------------- API

class AuthError extends Error {}

function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

// api calls the admin API. It sends the admin token if there is one and
// opens the token prompt on 401. Every action is sent as JSON: the server
// refuses anything else (an HTML form on another site cannot send JSON).
async function api(path, { method = 'GET', body } = {}) {
  if (method !== 'GET' && body === undefined) body = {};
  const headers = { Accept: 'application/json' };
  const tok = token();
  if (tok) headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch('api/v1' + path, {
    method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    needToken();
    throw new AuthError('401');
  }
  const json = (res.headers.get('Content-Type') || '').includes('application/json');
  const data = json ? await res.json() : await res.text();
  if (!res.ok) throw new Error((json && data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

const nodePath = (name) => '/nodes/' + encodeURIComponent(name);

async function loadCluster() {
  if (!PHASES.length) {
    setPhases(await api('/phases'));
    buildPhaseChips();
  }
  const t0 = Date.now();
  const c = await api('/cluster');
  state.skew = Date.parse(c.server_time) - (t0 + Date.now()) / 2;
  state.cluster = c;
  setText($('cluster-name'), c.domain ? `${c.name} · ${c.domain}` : c.name);
  renderFilters();
  renderPlan();
}

// loadNodes replaces node states with the server's, except where a live
// event newer than the snapshot was already applied. It returns the newest
// event ID in the snapshot.
async function loadNodes() {
  const [list, runs, unplanned] = await Promise.all([api('/nodes'), api('/runs'), api('/unplanned')]);
  state.unplanned = unplanned;
  renderUnplanned();
  const now = serverNow();
  let maxId = 0;
  const names = new Set();
  for (const j of list) {
    names.add(j.name);
    const id = j.last_event ? j.last_event.id : 0;
    maxId = Math.max(maxId, id);
    const cur = state.nodes.get(j.name);
    if (cur && cur.lastId > id) continue;
    state.nodes.set(j.name, { ...j, lastId: id, durBase: { ...j.durations_s }, durAt: now });
  }
  for (const name of state.nodes.keys()) if (!names.has(name)) state.nodes.delete(name);
  state.order = list.map((j) => j.name);
  state.runs = runs;
  scheduleRender();
  return maxId;
}

// refresh reloads the nodes. It doubles as a liveness check: SSE
// keep-alives are comments a page cannot see, so a stream whose
// connection died silently (a pulled cable) is only noticed here.
async function refresh() {
  try {
    await loadNodes();
    loadHandoff();
  } catch (e) {
    if (e instanceof TypeError && state.live) { // network error, not an HTTP answer
      if (source) source.close();
      source = null;
      setLive(false);
      scheduleReconnect();
    }
  }
}

// ---------------------------------------------------------------- live events

// The dashboard reconnects by itself instead of relying on EventSource's
// automatic retry: the browser gives up for good on a non-200 answer (a
// 401, or a proxy's 502 while racklift restarts), and a fresh connection
// with ?after= the last applied ID replays exactly what was missed, also
// after a server restart (IDs come from the persistent store).
let source = null;
let retryTimer = 0;
let backoff = 1000;
let tokenOpen = false;

function connect() {
  if (source) source.close();
  const q = new URLSearchParams({ after: String(state.lastId) });
  const tok = token();
  if (tok) q.set('token', tok);
  const es = new EventSource('api/v1/events?' + q);
  source = es;
  es.addEventListener('event', (m) => {
    try { applyEvent(JSON.parse(m.data)); } catch (e) { console.warn('bad event', e); }
  });
  es.addEventListener('synced', (m) => {
    const d = JSON.parse(m.data);
    if (d.last_id < state.lastId) {
      // The server's store is older than what this page saw (a new state
      // directory): start over from its state.
      state.lastId = d.last_id;
      for (const n of state.nodes.values()) n.lastId = 0;
    }
    backoff = 1000;
    setLive(true);
    refresh();
  });
  es.addEventListener('error', () => {
    if (source !== es) return;
    es.close();
    source = null;
    setLive(false);
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(reconnect, backoff);
  backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
}

// reconnect checks that the API answers (and that the token is right)
// before opening the stream again.
async function reconnect() {
  clearTimeout(retryTimer);
  if (tokenOpen) return;
  try {
    await loadCluster();
    if (!state.loaded) {
      state.lastId = await loadNodes();
      state.loaded = true;
    }
    connect();
  } catch (e) {
    if (e instanceof AuthError) return; // the token prompt takes over
    setLive(false);
    scheduleReconnect();
  }
}

// applyEvent moves a node as the store does (provision/events/node.go).
function applyEvent(ev) {
  if (ev.id <= state.lastId) return;
  state.lastId = ev.id;
  const n = state.nodes.get(ev.node);
  if (!n) {
    if (!ev.node && ev.source === 'dhcp' && ev.attrs && ev.attrs.firmware) reloadUnplanned();
    return;
  }
  n.lastId = ev.id;
  n.last_event = ev;
  if (ev.phase) {
    const at = Date.parse(ev.at);
    if (ev.phase !== n.phase) {
      // durBase counts the current phase up to durAt (the snapshot's time,
      // or the phase's start); it really ended at the event's time, which
      // may be earlier than the snapshot (a replayed event).
      const oldSince = n.since ? Date.parse(n.since) : 0;
      const since = Math.max(at, oldSince); // never before the current phase's start, as in the store
      const secs = (n.durBase[n.phase] || 0) + (since - Math.max(n.durAt, oldSince)) / 1000;
      n.durBase[n.phase] = Math.max(0, secs);
      n.durAt = since;
      n.since = new Date(since).toISOString();
      if (ev.phase === 'powering-on' || n.phase === 'failed' || (!n.attempts && rank(ev.phase) > rank('powering-on'))) {
        n.attempts = (n.attempts || 0) + 1;
      }
      n.phase = ev.phase;
      n.failed_reason = '';
    }
    n.percent = ev.percent;
    if (needsAttention(ev.phase)) n.failed_reason = ev.detail || ev.type;
  }
  if (state.detail === ev.node && detailOpen()) addTimeline([ev]);
  scheduleRender();
}

// reloadUnplanned refetches the machines not in the plan, at most every
// two seconds however many of their DHCP events arrive.
let unplannedTimer = 0;
function reloadUnplanned() {
  if (unplannedTimer) return;
  unplannedTimer = setTimeout(async () => {
    try {
      state.unplanned = await api('/unplanned');
      renderUnplanned();
    } catch (e) {
      console.error(e);
    } finally {
      unplannedTimer = 0;
    }
  }, 2000);
}

function setLive(live) {
  state.live = live;
  const c = $('conn');
  c.classList.toggle('conn-up', live);
  c.classList.toggle('conn-down', !live);
  setText($('conn-text'), t(live ? 'conn.live' : state.loaded ? 'conn.reconnecting' : 'conn.connecting'));
  showBanner(live ? '' : t('conn.lost'));
}

function showBanner(text, tokenButton = false) {
  $('banner').hidden = !text;
  setText($('banner-text'), text);
  $('banner-token').hidden = !tokenButton;
}

function needToken() {
  if (tokenOpen) return;
  tokenOpen = true;
  if (source) { source.close(); source = null; }
  showBanner(t('token.needed'), true);
  $('t-input').value = '';
  $('token').showModal();
}

function tokenAnswered(ok) {
  if (!tokenOpen) return;
  tokenOpen = false;
  const v = $('t-input').value.trim();
  if (ok && v) {
    try { sessionStorage.setItem(TOKEN_KEY, v); } catch { /* storage blocked */ }
    showBanner(t('conn.connecting'));
    reconnect();
  } else {
    showBanner(t('token.needed'), true);
  }
}

// ---------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, '0');

// fmtDur formats milliseconds as m:ss or h:mm:ss.
function fmtDur(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh}:${pad(mm)}:${pad(s % 60)}` : `${mm}:${pad(s % 60)}`;
}

function fmtTime(iso, withDate) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const opts = { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
  if (withDate) Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return d.toLocaleString(getLang(), opts);
}

// label translates prefix.value, falling back to the raw value for things
// the dictionary does not know (a new phase or role).
function label(prefix, v) {
  const s = t(prefix + '.' + v);
  return s === prefix + '.' + v ? v : s;
}

const phaseLabel = (p) => label('phase', p);
const roleLabel = (r) => label('role', r);

function phasePct(n) {
  return n.percent >= 0 && n.phase !== 'planned' && n.phase !== 'ready' && !isFinal(n.phase) ? n.percent : -1;
}

function phaseText(n) {
  const l = phaseLabel(n.phase);
  return phasePct(n) >= 0 ? `${l} ${n.percent}%` : l;
}

// durOf is how long node n has spent in phase p, up to now.
function durOf(n, p) {
  let s = (n.durBase && n.durBase[p]) || 0;
  if (p === n.phase) s += Math.max(0, serverNow() - n.durAt) / 1000;
  return s;
}

// ---------------------------------------------------------------- rendering

let renderTimer = 0;
function scheduleRender() {
  if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = 0; render(); }, 100);
}

function render() {
  if (!state.cluster) return;
  renderOverview();
  renderHandoff();
  renderTable();
  if (detailOpen()) renderDetailHead();
}

// detailOpen: the dialog's own state is the truth (its close event comes
// a moment after it closes).
const detailOpen = () => state.detail !== null && $('detail').open;

const phaseChips = new Map();
const roleChips = new Map();
const timeRows = new Map();

function chip(kind, value, onclick) {
  const count = h('strong', { class: 'chip-n' });
  const text = h('span', { class: 'chip-label' });
  const b = h('button', { type: 'button', class: 'chip chip-' + kind, 'aria-pressed': 'false', onclick },
    kind === 'phase' ? icon(groupOf(value)) : null, text, ' ', count);
  if (kind === 'phase') b.classList.add('g-' + groupOf(value));
  return { b, text, count };
}

// buildPhaseChips adds one filter chip per phase of the server's table.
function buildPhaseChips() {
  const phases = $('ov-phases');
  for (const p of PHASES) {
    const c = chip('phase', p, () => setFilter('phase', state.filter.phase === p ? '' : p));
    phaseChips.set(p, c);
    phases.append(c.b);
  }
}

function buildOverview() {
  const tbody = $('ov-time').tBodies[0];
  const bar = $('ov-timebar');
  for (const g of TIME_GROUPS) {
    const r = { name: h('th', { scope: 'row' }), total: h('td'), share: h('td'), avg: h('td'), seg: h('div', { class: 'seg g-' + g }) };
    r.name.append(icon(g), h('span', {}));
    tbody.append(h('tr', { class: 'g-' + g }, r.name, r.total, r.share, r.avg));
    bar.append(r.seg);
    timeRows.set(g, r);
  }
}

function renderOverview() {
  const nodes = [...state.nodes.values()];
  const total = nodes.length;
  let sum = 0;
  let ready = 0;
  let failed = 0;
  let planned = 0;
  const perPhase = new Map();
  const perRole = new Map();
  const groupSecs = new Map(TIME_GROUPS.map((g) => [g, 0]));
  const groupNodes = new Map(TIME_GROUPS.map((g) => [g, 0]));
  for (const n of nodes) {
    sum += progress(n.phase, n.percent);
    perPhase.set(n.phase, (perPhase.get(n.phase) || 0) + 1);
    if (n.phase === 'verified') ready++;
    if (needsAttention(n.phase)) failed++;
    if (n.phase === 'planned') planned++;
    for (const r of n.roles || []) {
      const v = perRole.get(r) || { n: 0, ready: 0 };
      v.n++;
      if (n.phase === 'verified') v.ready++;
      perRole.set(r, v);
    }
    for (const g of TIME_GROUPS) {
      let s = 0;
      for (const p of GROUPS[g]) s += durOf(n, p);
      if (s > 0) {
        groupSecs.set(g, groupSecs.get(g) + s);
        groupNodes.set(g, groupNodes.get(g) + 1);
      }
    }
  }
  const pct = total ? Math.floor(sum / total) : 0;
  setText($('ov-percent'), pct + '%');
  const bar = $('ov-bar');
  bar.firstElementChild.style.width = pct + '%';
  setAttr(bar, 'aria-valuenow', pct);
  setText($('ov-summary'), t('ov.summary', { ready, total, active: total - ready - failed - planned }));
  const f = $('ov-failed');
  f.classList.toggle('has-failed', failed > 0);
  if (f.dataset.n !== String(failed) || f.dataset.lang !== getLang()) {
    f.dataset.n = String(failed);
    f.dataset.lang = getLang();
    f.replaceChildren(failed > 0 ? icon('failed') : '', t('ov.failed', { failed }));
  }

  const run = state.runs[0];
  if (run) {
    const end = run.state === 'active' ? serverNow() : Date.parse(run.ended);
    setText($('ov-elapsed'), fmtDur(end - Date.parse(run.started)));
    setText($('ov-run'), t('ov.run', { id: run.id, state: label('run', run.state) }));
  } else {
    setText($('ov-elapsed'), '—');
    setText($('ov-run'), t('ov.noRun'));
  }
  $('btn-stop').hidden = !(run && run.state === 'active');

  for (const [p, c] of phaseChips) {
    const n = perPhase.get(p) || 0;
    const on = state.filter.phase === p;
    c.b.hidden = n === 0 && !on;
    setText(c.text, phaseLabel(p));
    setText(c.count, String(n));
    setAttr(c.b, 'aria-pressed', on);
  }

  const roles = Object.keys(state.cluster.roles || {});
  if (roles.join() !== [...roleChips.keys()].join()) {
    roleChips.clear();
    $('ov-roles').replaceChildren();
    for (const r of roles) {
      const c = chip('role', r, () => setFilter('role', state.filter.role === r ? '' : r));
      roleChips.set(r, c);
      $('ov-roles').append(c.b);
    }
  }
  for (const [r, c] of roleChips) {
    const v = perRole.get(r) || { n: 0, ready: 0 };
    setText(c.text, roleLabel(r));
    setText(c.count, t('ov.roleReady', { ready: v.ready, n: v.n }));
    setAttr(c.b, 'aria-pressed', state.filter.role === r);
  }

  const all = [...groupSecs.values()].reduce((a, b) => a + b, 0);
  for (const [g, r] of timeRows) {
    const s = groupSecs.get(g);
    const share = all ? Math.round((100 * s) / all) : 0;
    setText(r.name.lastChild, t('group.' + g));
    setText(r.total, fmtDur(s * 1000));
    setText(r.share, share + '%');
    const cnt = groupNodes.get(g);
    setText(r.avg, cnt ? fmtDur((s * 1000) / cnt) : '—');
    r.seg.style.width = (all ? (100 * s) / all : 0) + '%';
  }
}

// renderFilters rebuilds the role and phase filter options (plan roles,
// language changes), keeping the chosen values.
function renderFilters() {
  const roleSel = $('f-role');
  const roles = Object.keys((state.cluster && state.cluster.roles) || {});
  roleSel.replaceChildren(h('option', { value: '' }, t('filter.allRoles')),
    ...roles.map((r) => h('option', { value: r }, roleLabel(r))));
  roleSel.value = state.filter.role;
  const phaseSel = $('f-phase');
  phaseSel.replaceChildren(h('option', { value: '' }, t('filter.allPhases')),
    h('option', { value: '@active' }, t('filter.active')),
    ...PHASES.map((p) => h('option', { value: p }, phaseLabel(p))));
  phaseSel.value = state.filter.phase;
}

function setFilter(kind, v) {
  state.filter[kind] = v;
  if (kind === 'role') $('f-role').value = v;
  if (kind === 'phase') $('f-phase').value = v;
  render();
}

function matches(n) {
  const f = state.filter;
  if (f.role && !(n.roles || []).includes(f.role)) return false;
  if (f.phase === '@active') {
    if (n.phase === 'planned' || isFinal(n.phase)) return false;
  } else if (f.phase && n.phase !== f.phase) return false;
  const q = f.q.trim().toLowerCase();
  if (!q) return true;
  if (n.name.toLowerCase().includes(q) || (n.mac || '').includes(q)) return true;
  // A MAC typed without separators, or with dashes or dots.
  if (/^[0-9a-f:.-]+$/.test(q)) {
    const bare = q.replace(/[:.-]/g, '');
    return bare.length >= 2 && (n.mac || '').replace(/:/g, '').includes(bare);
  }
  return false;
}

const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });

function sorted(list) {
  const now = serverNow();
  const inPhase = (n) => (n.phase === 'planned' || isFinal(n.phase) || !n.since ? -1 : now - Date.parse(n.since));
  const cmp = {
    name: byName,
    phase: (a, b) => rank(a.phase) - rank(b.phase) || byName(a, b),
    progress: (a, b) => progress(a.phase, a.percent) - progress(b.phase, b.percent) || byName(a, b),
    stuck: (a, b) => inPhase(b) - inPhase(a) || byName(a, b),
  }[state.sort] || byName;
  return list.sort(cmp);
}

const rows = new Map(); // node name → row elements

function buildRow(name) {
  const r = {};
  r.cb = h('input', { type: 'checkbox', onchange: () => {
    if (r.cb.checked) state.selected.add(name); else state.selected.delete(name);
    updateSelectAll(visible);
  } });
  r.name = h('button', { type: 'button', class: 'node-link', onclick: () => openDetail(name) }, name);
  r.roles = h('td', { class: 'roles' });
  r.mac = h('td', { class: 'mono col-net' });
  r.ip = h('td', { class: 'mono col-net' });
  r.bmc = h('td', { class: 'mono col-net' });
  r.icon = h('span', { class: 'phase-icon' });
  r.phaseText = h('span', { class: 'phase-label' });
  r.attempt = h('span', { class: 'phase-sub' });
  r.fill = h('div', { class: 'fill' });
  r.bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, r.fill);
  r.pct = h('span', { class: 'pct' });
  r.since = h('td', { class: 'num' });
  r.lastMain = h('div', { class: 'last-main' });
  r.lastSub = h('div', { class: 'last-sub' });
  r.tr = h('tr', { 'data-node': name },
    h('td', { class: 'col-sel' }, r.cb),
    h('th', { scope: 'row', class: 'name' }, r.name),
    r.roles, r.mac, r.ip, r.bmc,
    h('td', { class: 'phase' }, r.icon, r.phaseText, r.attempt),
    h('td', { class: 'prog' }, r.bar, r.pct),
    r.since,
    h('td', { class: 'last' }, r.lastMain, r.lastSub));
  return r;
}

function updateRow(r, n) {
  const g = groupOf(n.phase);
  if (r.group !== g) {
    r.icon.replaceChildren(icon(g));
    r.tr.className = 'g-' + g;
    r.group = g;
  }
  const pt = phaseText(n);
  setText(r.phaseText, phaseLabel(n.phase));
  const sub = [];
  if (phasePct(n) >= 0) sub.push(t('row.phasePct', { pct: n.percent }));
  if (n.attempts > 1) sub.push(t('row.attempt', { n: n.attempts }));
  setText(r.attempt, sub.join(' · '));
  const p = progress(n.phase, n.percent);
  const w = p + '%';
  if (r.fill.style.width !== w) r.fill.style.width = w;
  setAttr(r.bar, 'aria-valuenow', p);
  setAttr(r.bar, 'aria-valuetext', t('row.progressText', { pct: p, phase: pt }));
  setAttr(r.bar, 'aria-label', t('row.progressOf', { node: n.name }));
  setText(r.pct, w);
  setText(r.roles, (n.roles || []).map(roleLabel).join(', '));
  setText(r.mac, n.mac || '');
  setText(r.ip, n.ip || '');
  setText(r.bmc, n.bmc || '—');
  const timed = n.since && n.phase !== 'planned';
  setText(r.since, timed ? fmtDur(serverNow() - Date.parse(n.since)) : '—');
  const ev = n.last_event;
  if (needsAttention(n.phase)) {
    setText(r.lastMain, t('row.reason', { reason: n.failed_reason || '?' }));
  } else {
    setText(r.lastMain, ev ? ev.detail || ev.type : '—');
  }
  setText(r.lastSub, ev ? `${ev.type} · ${ev.source} · ${fmtTime(ev.at)}` : '');
  r.cb.checked = state.selected.has(n.name);
  setAttr(r.cb, 'aria-label', t('table.select', { node: n.name }));
}

let visible = [];

function renderTable() {
  visible = sorted(state.order.map((name) => state.nodes.get(name)).filter((n) => n && matches(n)));
  const trs = [];
  for (const n of visible) {
    let r = rows.get(n.name);
    if (!r) {
      r = buildRow(n.name);
      rows.set(n.name, r);
    }
    updateRow(r, n);
    trs.push(r.tr);
  }
  const tbody = $('node-rows');
  const kids = tbody.children;
  if (trs.length !== kids.length || trs.some((tr, i) => kids[i] !== tr)) {
    const focused = document.activeElement;
    tbody.replaceChildren(...trs);
    if (focused && focused.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
  }
  $('no-match').hidden = visible.length > 0;
  setText($('f-count'), t('table.count', { shown: visible.length, total: state.nodes.size }));
  updateSelectAll(visible);
}

function updateSelectAll(list) {
  const all = $('sel-all');
  const n = list.filter((x) => state.selected.has(x.name)).length;
  all.checked = list.length > 0 && n === list.length;
  all.indeterminate = n > 0 && n < list.length;
}

// ---------------------------------------------------------------- plan view

function renderPlan() {
  const c = state.cluster;
  if (!c) return;
  const facts = [
    ['plan.cluster', c.name], ['plan.domain', c.domain], ['plan.haMode', t(c.ha ? 'plan.haOn' : 'plan.haOff')],
    ['plan.nodes', String(state.order.length || Object.values(c.roles || {}).reduce((a, b) => a + b, 0))],
    ['plan.version', c.version || '—'], ['plan.started', fmtTime(c.started, true)],
  ];
  $('plan-facts').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)]));
  const statusIcon = { ok: 'ready', warning: 'warning', error: 'failed' };
  fillBody('plan-ha', c.ha_checks, (x) => h('tr', { class: 'ha-' + x.status },
    h('td', { class: 'status' }, icon(statusIcon[x.status] || 'warning'), ' ', label('ha', x.status)),
    h('td', {}, x.name), h('td', { class: 'num' }, x.count), h('td', {}, x.rule)));
  fillBody('plan-networks', c.networks, (x) => h('tr', {},
    h('th', { scope: 'row' }, x.name, x.provisioning ? h('span', { class: 'badge' }, t('plan.pxe')) : null),
    h('td', {}, label('purpose', x.purpose)), h('td', { class: 'mono' }, x.cidr),
    h('td', { class: 'num' }, x.vlan ? String(x.vlan) : t('plan.untagged')), h('td', { class: 'num' }, x.mtu || '—'),
    h('td', { class: 'mono' }, x.gateway || '—')));
  fillBody('plan-vips', c.vips, (x) => h('tr', {},
    h('th', { scope: 'row' }, x.name), h('td', {}, x.network), h('td', { class: 'mono' }, x.address), h('td', { class: 'mono' }, x.fqdn || '—')));
  const diags = c.diagnostics || [];
  $('plan-diags').replaceChildren(...(diags.length ? diags.map((d) => h('li', {}, d)) : [h('li', { class: 'muted' }, t('plan.noDiags'))]));
}

function hintText(x) {
  const hint = x.hint;
  if (!hint) return t('unplanned.noHint');
  const p = { node: hint.node, mac: hint.node_mac, n: hint.distance };
  switch (hint.kind) {
    case 'port': return t('unplanned.hintPort', p);
    case 'digit': return t('unplanned.hintDigit', p);
    default: return t('unplanned.hintSwap', p);
  }
}

// renderUnplanned shows the machines booting that are not in the plan
// (hidden when there are none): the usual sign of a wrong MAC in the plan.
let unplannedShown = '';
function renderUnplanned(force = false) {
  const list = state.unplanned || [];
  const key = JSON.stringify(list);
  if (key === unplannedShown && !force) return; // unchanged: keep the rows (and a selected MAC)
  unplannedShown = key;
  $('unplanned').hidden = list.length === 0;
  $('unplanned-table').tBodies[0].replaceChildren(...list.map((x) => h('tr', {},
    h('th', { scope: 'row', class: 'mono' }, x.mac),
    h('td', {}, [x.firmware, x.arch ? 'arch ' + x.arch : '', x.relay ? t('unplanned.relay', { relay: x.relay }) : ''].filter(Boolean).join(' · ')),
    h('td', {}, fmtTime(x.last_seen)),
    h('td', { class: 'num' }, String(x.count)),
    h('td', { class: x.hint ? 'hint' : 'muted' }, hintText(x)))));
}

function fillBody(tableId, list, row) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...(list || []).map(row));
  if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('plan.none'))));
}

// ---------------------------------------------------------------- node detail

let detailFiles = [];

async function openDetail(name) {
  state.detail = name;
  state.detailIds = new Set();
  detailFiles = [];
  $('d-timeline').tBodies[0].replaceChildren();
  $('d-files').replaceChildren(h('span', { class: 'muted' }, t('ui.loading')));
  $('d-file').hidden = true;
  renderDetailHead();
  const dlg = $('detail');
  if (!dlg.open) dlg.showModal();
  $('d-close').focus();
  try {
    const d = await api(nodePath(name) + '?limit=1000');
    if (state.detail !== name) return;
    addTimeline(d.events || []);
    detailFiles = d.files || [];
    renderFiles();
  } catch (e) {
    if (!(e instanceof AuthError)) toast(t('toast.failed', { error: e.message }), true);
  }
}

// detailClosed forgets the panel's node and gives the focus back to its
// row. It runs on Esc and the close button right away (the 'close' event
// may come late) and is a no-op when the panel is open again.
function detailClosed() {
  if ($('detail').open || state.detail === null) return;
  const r = rows.get(state.detail);
  state.detail = null;
  if (r && r.name.isConnected) r.name.focus();
}

function renderDetailHead() {
  const n = state.nodes.get(state.detail);
  if (!n) return;
  setText($('d-name'), n.name);
  const ph = $('d-phase');
  ph.className = 'phase g-' + groupOf(n.phase);
  ph.replaceChildren(icon(groupOf(n.phase)), ' ', phaseText(n));
  const f = $('d-failed');
  f.hidden = !needsAttention(n.phase);
  setText(f, needsAttention(n.phase) ? t('row.reason', { reason: n.failed_reason || '?' }) : '');
  $('d-retry').disabled = n.phase !== 'failed';
  const facts = [
    ['col.roles', (n.roles || []).map(roleLabel).join(', ')], ['detail.profile', n.profile || '—'],
    ['col.mac', n.mac], ['col.ip', n.ip || '—'],
    ['col.bmc', n.bmc ? `${n.bmc} (${n.bmc_driver || '?'})` : t('detail.noBmc')],
    ['detail.attempts', String(n.attempts || 0)],
    ['detail.since', n.since && n.phase !== 'planned' ? `${fmtTime(n.since, true)} (${fmtDur(serverNow() - Date.parse(n.since))})` : '—'],
    ['col.progress', progress(n.phase, n.percent) + '%'],
  ];
  syncFacts($('d-facts'), facts.map(([k, v]) => [t(k), v]));
  const durs = PHASES.map((p) => [p, durOf(n, p)]).filter(([p, s]) => s >= 1 && p !== 'planned');
  syncFacts($('d-durations'), durs.length ? durs.map(([p, s]) => [phaseLabel(p), fmtDur(s * 1000)]) : [[t('detail.noDurations'), '']]);
}

// syncFacts fills a <dl> in place (it is refreshed every second).
function syncFacts(dl, pairs) {
  if (dl.children.length !== pairs.length * 2) {
    dl.replaceChildren(...pairs.flatMap(() => [h('dt'), h('dd')]));
  }
  pairs.forEach(([k, v], i) => {
    setText(dl.children[2 * i], k);
    setText(dl.children[2 * i + 1], v);
  });
}

// addTimeline adds events to the detail timeline, newest first.
function addTimeline(evs) {
  const body = $('d-timeline').tBodies[0];
  for (const ev of evs) {
    if (state.detailIds.has(ev.id)) continue;
    state.detailIds.add(ev.id);
    const attrs = Object.entries(ev.attrs || {}).map(([k, v]) => `${k}=${v}`).join(' ');
    const g = ev.phase ? groupOf(ev.phase) : '';
    const tr = h('tr', { class: g === 'failed' ? 'tl-failed' : '', 'data-id': ev.id },
      h('td', { class: 'mono nowrap' }, fmtTime(ev.at, true)),
      h('td', {}, ev.source),
      h('td', { class: 'mono' }, ev.type),
      h('td', { class: ev.phase ? 'phase g-' + g : '' }, ev.phase ? [icon(g), ' ', phaseLabel(ev.phase), ev.percent >= 0 ? ` ${ev.percent}%` : ''] : '—'),
      h('td', {}, ev.detail || '', attrs ? h('div', { class: 'attrs mono' }, attrs) : null));
    const first = [...body.children].find((x) => Number(x.dataset.id) < ev.id);
    body.insertBefore(tr, first || null);
  }
}

function renderFiles() {
  const box = $('d-files');
  if (!detailFiles.length) {
    box.replaceChildren(h('span', { class: 'muted' }, t('detail.noFiles')));
    return;
  }
  box.replaceChildren(...detailFiles.map((f) => h('button', { type: 'button', class: 'file-btn', 'aria-pressed': 'false', 'data-file': f,
    onclick: (e) => showFile(f, e.currentTarget) }, f)));
}

async function showFile(file, btn) {
  const name = state.detail;
  for (const b of $('d-files').children) setAttr(b, 'aria-pressed', b === btn);
  const pre = $('d-file');
  pre.hidden = false;
  pre.textContent = t('ui.loading');
  try {
    const text = await api(nodePath(name) + '/files/' + encodeURIComponent(file));
    if (state.detail !== name) return;
    pre.textContent = typeof text === 'string' ? text : JSON.stringify(text, null, 2);
    pre.scrollIntoView({ block: 'nearest' });
  } catch (e) {
    pre.textContent = t('toast.failed', { error: e.message });
  }
}

// ---------------------------------------------------------------- actions

// onAnswer calls answer(true) when form is submitted with its "ok" button
// and answer(false) on Esc or cancel. Dialog answers never come from the
// 'close' event: Chromium may deliver it late, after the dialog was opened
// again, and a stale "ok" must never confirm another action. It returns a
// function that detaches the listeners.
function onAnswer(dlg, answer) {
  const form = dlg.querySelector('form');
  const submit = (e) => answer(!!e.submitter && e.submitter.value === 'ok');
  const cancel = () => answer(false);
  const key = (e) => { if (e.key === 'Escape') answer(false); };
  form.addEventListener('submit', submit);
  dlg.addEventListener('cancel', cancel);
  dlg.addEventListener('keydown', key);
  return () => {
    form.removeEventListener('submit', submit);
    dlg.removeEventListener('cancel', cancel);
    dlg.removeEventListener('keydown', key);
  };
}

let confirmPending = null; // settles the open confirmation

// confirmDialog asks to confirm an action; it resolves true only for a
// click on (or Enter at) the confirm button of this very question.
function confirmDialog(title, text, ok) {
  if (confirmPending) confirmPending(false);
  const dlg = $('confirm');
  setText($('c-title'), title);
  setText($('c-text'), text);
  setText($('c-ok'), ok);
  if (!dlg.open) dlg.showModal();
  $('c-cancel').focus();
  return new Promise((resolve) => {
    const detach = onAnswer(dlg, (yes) => settle(yes));
    const settle = (yes) => {
      detach();
      confirmPending = null;
      resolve(yes);
    };
    confirmPending = settle;
  });
}

const NODE_ACTIONS = {
  reinstall: '/reinstall',
  power: '/power/cycle',
  retry: '/retry',
};

async function nodeAction(kind) {
  const node = state.detail;
  if (!node) return;
  const p = { node };
  if (!(await confirmDialog(t(`confirm.${kind}.title`, p), t(`confirm.${kind}.text`, p), t(`confirm.${kind}.ok`, p)))) return;
  try {
    await api(nodePath(node) + NODE_ACTIONS[kind], { method: 'POST' });
    toast(t(`toast.${kind}`, p));
  } catch (e) {
    if (!(e instanceof AuthError)) toast(t('toast.failed', { error: e.message }), true);
  }
}

function openInstall() {
  const c = state.cluster;
  if (!c) return;
  const n = state.selected.size;
  setText($('i-all-n'), t('install.count', { n: state.nodes.size }));
  const role = $('i-role');
  role.replaceChildren(...Object.entries(c.roles || {}).map(([r, k]) => h('option', { value: r }, `${roleLabel(r)} (${k})`)));
  if (state.filter.role) role.value = state.filter.role;
  setText($('i-sel-label'), t('install.selected', { n }));
  const selRadio = $('i-sel-radio');
  selRadio.disabled = n === 0;
  const form = $('i-form');
  form.elements.scope.value = n > 0 ? 'selected' : 'all';
  $('install').showModal();
}

async function startInstall() {
  const form = $('i-form');
  const scope = form.elements.scope.value;
  const sel = {};
  if (scope === 'all') sel.all = true;
  else if (scope === 'role') sel.role = $('i-role').value;
  else sel.nodes = [...state.selected].sort();
  const par = parseInt($('i-parallel').value, 10);
  if (par > 0) sel.parallel = par;
  const st = $('i-stagger').value.trim();
  if (st) sel.stagger = st;
  try {
    const run = await api('/runs', { method: 'POST', body: sel });
    toast(t('toast.runStarted', { id: run.id }));
    refresh();
  } catch (e) {
    if (!(e instanceof AuthError)) toast(t('toast.failed', { error: e.message }), true);
  }
}

async function stopRun() {
  if (!(await confirmDialog(t('confirm.stop.title'), t('confirm.stop.text'), t('confirm.stop.ok')))) return;
  try {
    await api('/runs/stop', { method: 'POST' });
    toast(t('toast.stopped'));
    refresh();
  } catch (e) {
    if (!(e instanceof AuthError)) toast(t('toast.failed', { error: e.message }), true);
  }
}

// toast shows a short message. It is a popover so that it shows above an
// open dialog (the detail panel) too.
let toastTimer = 0;
function toast(text, error = false) {
  const el = $('toast');
  el.classList.toggle('toast-error', error);
  setText(el, text);
  if (el.matches(':popover-open')) el.hidePopover(); // back on top of the newest dialog
  el.showPopover();
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.hidePopover(), error ? 10_000 : 6_000);
}

// ---------------------------------------------------------------- set-up

function setView(plan) {
  $('plan-view').hidden = !plan;
  $('overview').hidden = plan;
  $('nodes-view').hidden = plan;
  setAttr($('view-plan'), 'aria-pressed', plan);
  setAttr($('view-nodes'), 'aria-pressed', !plan);
}

function applyLang(l) {
  setLang(l);
  for (const b of document.querySelectorAll('.lang-btn')) setAttr(b, 'aria-pressed', b.dataset.lang === getLang());
  setLive(state.live);
  if (tokenOpen || !$('banner-token').hidden) showBanner(t('token.needed'), true);
  renderFilters();
  renderPlan();
  renderUnplanned(true);
  render();
  if (detailOpen()) openDetail(state.detail);
}

function setLarge(on) {
  document.documentElement.classList.toggle('large', on);
  setAttr($('large-text'), 'aria-pressed', on);
  try { localStorage.setItem(LARGE_KEY, on ? '1' : ''); } catch { /* storage blocked */ }
}

function bind() {
  $('view-nodes').addEventListener('click', () => setView(false));
  $('view-plan').addEventListener('click', () => setView(true));
  for (const b of document.querySelectorAll('.lang-btn')) b.addEventListener('click', () => applyLang(b.dataset.lang));
  $('large-text').addEventListener('click', () => setLarge(!document.documentElement.classList.contains('large')));
  $('f-search').addEventListener('input', (e) => { state.filter.q = e.target.value; render(); });
  $('f-role').addEventListener('change', (e) => setFilter('role', e.target.value));
  $('f-phase').addEventListener('change', (e) => setFilter('phase', e.target.value));
  $('f-sort').addEventListener('change', (e) => { state.sort = e.target.value; render(); });
  $('sel-all').addEventListener('change', (e) => {
    for (const n of visible) {
      if (e.target.checked) state.selected.add(n.name); else state.selected.delete(n.name);
    }
    render();
  });
  $('btn-install').addEventListener('click', openInstall);
  $('btn-stop').addEventListener('click', stopRun);
  onAnswer($('install'), (ok) => { if (ok) startInstall(); });
  onAnswer($('token'), tokenAnswered);
  $('banner-token').addEventListener('click', needToken);
  $('d-close').addEventListener('click', () => { $('detail').close(); detailClosed(); });
  $('detail').addEventListener('keydown', (e) => { if (e.key === 'Escape') setTimeout(detailClosed); });
  $('detail').addEventListener('close', detailClosed);
  $('d-reinstall').addEventListener('click', () => nodeAction('reinstall'));
  $('d-power').addEventListener('click', () => nodeAction('power'));
  $('d-retry').addEventListener('click', () => nodeAction('retry'));
}

// ---------------------------------------------------------------- hand-off

// The hand-off card downloads what kolla-ansible and cephadm need
// (GET api/v1/handoff/bundle.tar.gz: inventory, globals, Ceph specs, the
// deployment key). Its button is disabled, with the reason, until every
// node of the plan is verified.
const handoffUI = { btn: null, why: null, ready: null, failed: '' };

function buildHandoff() {
  handoffUI.btn = h('button', { type: 'button', id: 'handoff-btn', disabled: true, onclick: downloadHandoff }, t('handoff.button'));
  handoffUI.why = h('p', { id: 'handoff-why', class: 'muted', 'aria-live': 'polite' });
  const title = h('h2', { id: 'handoff-title' }, t('handoff.title'));
  $('overview').append(h('div', { class: 'card handoff', id: 'handoff', 'aria-labelledby': 'handoff-title' }, title, handoffUI.btn, handoffUI.why));
}

async function loadHandoff() {
  try {
    handoffUI.ready = await api('/handoff');
  } catch (e) {
    if (e instanceof AuthError) return;
    handoffUI.ready = { error: e.message };
  }
  renderHandoff();
}

function renderHandoff() {
  if (!handoffUI.btn) return;
  setText($('handoff-title'), t('handoff.title'));
  setText(handoffUI.btn, t('handoff.button'));
  const r = handoffUI.ready;
  let why;
  if (!r) why = t('ui.loading');
  else if (r.error) why = t('handoff.unavailable', { reason: r.error });
  else if (r.ready) why = t('handoff.ready', { total: r.total });
  else {
    const waiting = r.nodes.filter((n) => !n.verified);
    const list = waiting.slice(0, 5).map((n) => `${n.name} (${n.reason})`).join(', ') + (waiting.length > 5 ? ', …' : '');
    why = t('handoff.notReady', { verified: r.verified, total: r.total, list });
  }
  if (handoffUI.failed) why = t('handoff.failed', { reason: handoffUI.failed });
  handoffUI.btn.disabled = !(r && r.ready);
  setText(handoffUI.why, why);
}

async function downloadHandoff() {
  handoffUI.failed = '';
  const headers = {};
  const tok = token();
  if (tok) headers.Authorization = 'Bearer ' + tok;
  try {
    const res = await fetch('api/v1/handoff/bundle.tar.gz', { headers, cache: 'no-store' });
    if (res.status === 401) { needToken(); return; }
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
      throw new Error(msg);
    }
    const cd = res.headers.get('Content-Disposition') || '';
    const m = /filename="([^"]+)"/.exec(cd);
    const url = URL.createObjectURL(await res.blob());
    const a = h('a', { href: url, download: m ? m[1] : 'racklift-handoff.tar.gz', hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    handoffUI.failed = e.message;
  }
  renderHandoff();
}

async function main() {
  try {
    await loadI18n();
  } catch (e) {
    console.error(e); // the page still works with the built-in English labels
  }
  let large = false;
  try { large = localStorage.getItem(LARGE_KEY) === '1'; } catch { /* storage blocked */ }
  setLarge(large);
  for (const b of document.querySelectorAll('.lang-btn')) setAttr(b, 'aria-pressed', b.dataset.lang === getLang());
  buildOverview();
  buildHandoff();
  bind();
  setText($('conn-text'), t('conn.connecting'));
  setInterval(() => { if (state.live) refresh(); }, REFRESH_MS);
  setInterval(render, 1000);
  await reconnect();
}

main();
