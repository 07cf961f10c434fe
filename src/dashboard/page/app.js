// The dashboard page: plain DOM, no framework. Every value a task carries is put in the page as a
// text node (h() below never parses HTML), so an argument like <script> shows as text.
'use strict';

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const main = document.getElementById('main');
const STATES = ['PENDING', 'RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE', 'RETRY', 'REVOKED', 'REJECTED'];
const PAGE = 25;

function h(tag, attrs, ...children) {
  const el = document.createElementNS(tag === 'svg' || attrs?.svg ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k === 'svg' || v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const time = (s) => (typeof s === 'number' ? new Date(s * 1000).toISOString().replace('T', ' ').slice(0, 23) : '');
const ago = (s) => (typeof s === 'number' ? `${Math.max(0, Math.round(Date.now() / 1000 - s))} s ago` : 'never');
const link = (path, text) => h('a', { href: path, onclick: (e) => { e.preventDefault(); go(path); } }, text);
const state = (s) => h('span', { class: `state ${s}` }, s ?? '');
const enc = encodeURIComponent;

async function api(path) {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${r.status}: ${await r.text()}`);
  return r.json();
}

/** Actions: a POST with the page's CSRF token, its answer shown in the flash line. */
async function act(path, params = {}, body) {
  const headers = { 'x-csrf-token': CSRF };
  let payload;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  } else {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== undefined)).toString();
  }
  const r = await fetch(path, { method: 'POST', headers, body: payload });
  const text = await r.text();
  let message = text;
  try {
    const j = JSON.parse(text);
    message = j.message ?? (j['task-id'] ? `sent: ${j['task-id']}` : text);
  } catch { /* a text error */ }
  flash(message, !r.ok);
  return r.ok ? JSON.parse(text) : null;
}

function flash(text, error) {
  const f = document.getElementById('flash');
  f.textContent = text;
  f.className = `show${error ? ' error' : ''}`;
}

// ---- routing
let view = null;
function go(path) {
  history.pushState(null, '', path);
  render();
}
window.addEventListener('popstate', () => render());

async function render() {
  const path = location.pathname;
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('current', path.startsWith(a.getAttribute('href')));
  let m;
  if ((m = /^\/worker\/(.+)$/.exec(path))) view = () => workerPage(decodeURIComponent(m[1]));
  else if ((m = /^\/task\/(.+)$/.exec(path))) view = () => taskPage(decodeURIComponent(m[1]));
  else if (path.startsWith('/tasks')) view = tasksPage;
  else if (path.startsWith('/queues')) view = queuesPage;
  else view = workersPage;
  await refresh();
}

async function refresh() {
  try {
    const node = await view();
    if (node) main.replaceChildren(node);
  } catch (err) {
    main.replaceChildren(h('p', { class: 'error' }, String(err.message ?? err)));
  }
}

// ---- workers
async function workersPage() {
  const workers = await api('/api/dashboard/workers');
  return h('section', null, h('h1', null, 'Workers'),
    h('table', { id: 'workers' },
      h('tr', null, ['Worker', 'Status', 'Software', 'Pool', 'Concurrency', 'Queues', 'Active', 'Processed', 'Failed', 'Retried', 'Load average', 'Last heartbeat'].map((t) => h('th', null, t))),
      workers.map((w) => h('tr', { 'data-worker': w.hostname },
        h('td', null, link(`/worker/${enc(w.hostname)}`, w.hostname)),
        h('td', null, h('span', { class: w.online ? 'online' : 'offline' }, w.online ? 'online' : 'offline')),
        h('td', null, w.software ?? ''), h('td', null, w.pool ?? ''), h('td', null, w.concurrency ?? ''),
        h('td', null, (w.queues ?? []).join(', ')), h('td', null, w.active ?? ''), h('td', null, w.processed),
        h('td', null, w.failed), h('td', null, w.retried), h('td', null, (w.loadavg ?? []).join(', ')),
        h('td', { title: time(w.last_heartbeat) }, ago(w.last_heartbeat))))));
}

async function workerPage(name) {
  const w = await api(`/api/dashboard/worker/${enc(name)}`);
  const i = w.inspect ?? {};
  const post = (path, params) => act(`${path}/${enc(name)}`, params);
  const field = (id, label, value = '') => h('label', null, label, h('input', { id, value, size: 10 }));
  const val = (id) => document.getElementById(id).value;
  const taskList = (list) => (Array.isArray(list) && list.length
    ? h('table', null, h('tr', null, ['Id', 'Name', 'Args', 'Kwargs'].map((t) => h('th', null, t))),
      list.map((t) => { const r = t.request ?? t; return h('tr', null, h('td', { class: 'mono' }, link(`/task/${enc(r.id)}`, r.id)), h('td', null, r.name), h('td', { class: 'mono clip' }, JSON.stringify(r.args)), h('td', { class: 'mono clip' }, JSON.stringify(r.kwargs))); }))
    : h('p', { class: 'muted' }, 'none'));
  return h('section', null,
    h('h1', null, `Worker ${w.hostname} `, h('span', { class: w.online ? 'online' : 'offline' }, w.online ? 'online' : 'offline')),
    h('p', null, `${w.software ?? ''} · pool ${w.pool ?? '?'} × ${w.concurrency ?? '?'} · queues ${(w.queues ?? []).join(', ')} · last heartbeat ${ago(w.last_heartbeat)}`),
    h('div', { class: 'actions' },
      field('pool-n', 'n', '1'),
      h('button', { onclick: () => post('/api/worker/pool/grow', { n: val('pool-n') }) }, 'Pool grow'),
      h('button', { onclick: () => post('/api/worker/pool/shrink', { n: val('pool-n') }) }, 'Pool shrink'),
      field('as-min', 'min', '1'), field('as-max', 'max', '4'),
      h('button', { onclick: () => post('/api/worker/pool/autoscale', { min: val('as-min'), max: val('as-max') }) }, 'Autoscale'),
      h('button', { onclick: () => post('/api/worker/pool/restart') }, 'Pool restart'),
      h('button', { class: 'danger', id: 'shutdown', onclick: () => confirm(`Shut ${name} down?`) && post('/api/worker/shutdown') }, 'Shut down')),
    h('div', { class: 'actions' },
      field('queue', 'queue'),
      h('button', { onclick: () => post('/api/worker/queue/add-consumer', { queue: val('queue') }) }, 'Add consumer'),
      h('button', { onclick: () => post('/api/worker/queue/cancel-consumer', { queue: val('queue') }) }, 'Cancel consumer'),
      field('lim-task', 'task name'), field('rate', 'rate limit', '10/m'),
      h('button', { onclick: () => act(`/api/task/rate-limit/${enc(val('lim-task'))}`, { workername: name, ratelimit: val('rate') }) }, 'Set rate limit'),
      field('soft', 'soft (s)'), field('hard', 'hard (s)'),
      h('button', { onclick: () => act(`/api/task/timeout/${enc(val('lim-task'))}`, { workername: name, soft: val('soft'), hard: val('hard') }) }, 'Set time limits')),
    h('h2', null, 'Active'), taskList(i.active),
    h('h2', null, 'Reserved'), taskList(i.reserved),
    h('h2', null, 'Scheduled'), taskList(i.scheduled),
    h('h2', null, 'Registered'), h('pre', null, (i.registered ?? []).join('\n')),
    h('h2', null, 'Stats'), h('pre', null, JSON.stringify(i.stats ?? {}, null, 2)),
    h('h2', null, 'Configuration'), h('pre', null, JSON.stringify(i.conf ?? {}, null, 2)));
}

// ---- tasks
const filters = { state: '', taskname: '', workername: '', search: '', from: '', to: '', offset: 0 };

async function tasksPage() {
  const q = new URLSearchParams({ limit: PAGE, offset: filters.offset });
  for (const k of ['state', 'taskname', 'workername', 'search']) if (filters[k]) q.set(k, filters[k]);
  if (filters.from) q.set('received_start', Date.parse(filters.from) / 1000);
  if (filters.to) q.set('received_end', Date.parse(filters.to) / 1000);
  const { total, tasks, names, workers } = await api(`/api/dashboard/tasks?${q}`);
  const active = document.activeElement?.id;
  const select = (key, label, options) => h('label', null, label, h('select', { id: `f-${key}`, onchange: (e) => { filters[key] = e.target.value; filters.offset = 0; refresh(); } },
    h('option', { value: '' }, 'All'), options.map((o) => h('option', { value: o, selected: filters[key] === o }, o))));
  const input = (key, label, type = 'text') => h('label', null, label, h('input', { id: `f-${key}`, type, value: filters[key],
    onchange: (e) => { filters[key] = e.target.value; filters.offset = 0; refresh(); } }));
  const node = h('section', null, h('h1', null, 'Tasks'),
    h('div', { class: 'filters' }, select('state', 'State', STATES), select('taskname', 'Name', names), select('workername', 'Worker', workers),
      input('search', 'Search id or args'), input('from', 'Received from', 'datetime-local'), input('to', 'Received to', 'datetime-local')),
    h('div', { class: 'pager' },
      h('button', { disabled: filters.offset === 0, onclick: () => { filters.offset = Math.max(0, filters.offset - PAGE); refresh(); } }, '‹ Newer'),
      h('span', { id: 'count' }, total ? `${filters.offset + 1}–${Math.min(total, filters.offset + PAGE)} of ${total}` : 'no tasks'),
      h('button', { disabled: filters.offset + PAGE >= total, onclick: () => { filters.offset += PAGE; refresh(); } }, 'Older ›')),
    h('table', { id: 'tasks' },
      h('tr', null, ['Id', 'Name', 'State', 'Args', 'Kwargs', 'Result / exception', 'Worker', 'Received', 'Started', 'Finished', 'Runtime', 'Retries'].map((t) => h('th', null, t))),
      tasks.map((t) => h('tr', { 'data-task': t.uuid },
        h('td', { class: 'mono' }, link(`/task/${enc(t.uuid)}`, t.uuid.slice(0, 8))), h('td', null, t.name ?? ''), h('td', null, state(t.state)),
        h('td', { class: 'mono clip', title: t.args ?? '' }, t.args ?? ''), h('td', { class: 'mono clip', title: t.kwargs ?? '' }, t.kwargs ?? ''),
        h('td', { class: 'mono clip', title: t.exception ?? t.result ?? '' }, t.exception ?? t.result ?? ''),
        h('td', null, t.worker ?? ''), h('td', null, time(t.received)), h('td', null, time(t.started)),
        h('td', null, time(t.succeeded ?? t.failed ?? t.revoked)), h('td', null, typeof t.runtime === 'number' ? `${t.runtime.toFixed(3)} s` : ''),
        h('td', null, t.retries ?? '')))),
    sendForm());
  if (active?.startsWith('f-')) queueMicrotask(() => document.getElementById(active)?.focus());
  return node;
}

function sendForm() {
  const val = (id) => document.getElementById(id).value;
  const send = () => {
    let args, kwargs;
    try {
      args = JSON.parse(val('send-args') || '[]');
      kwargs = JSON.parse(val('send-kwargs') || '{}');
    } catch (e) {
      return flash(`args and kwargs must be JSON: ${e.message}`, true);
    }
    const body = { args, kwargs };
    if (val('send-queue')) body.queue = val('send-queue');
    act(`/api/task/send-task/${enc(val('send-name'))}`, {}, body);
  };
  return h('div', null, h('h2', null, 'Send a task'), h('div', { class: 'actions' },
    h('label', null, 'name', h('input', { id: 'send-name' })), h('label', null, 'args (JSON)', h('input', { id: 'send-args', value: '[]' })),
    h('label', null, 'kwargs (JSON)', h('input', { id: 'send-kwargs', value: '{}' })), h('label', null, 'queue', h('input', { id: 'send-queue' })),
    h('button', { id: 'send', onclick: send }, 'Send')));
}

async function taskPage(id) {
  const { task: t, source, graph } = await api(`/api/dashboard/task/${enc(id)}`);
  const row = (k, v) => [h('dt', null, k), h('dd', null, v ?? '')];
  const taskLink = (x) => (x ? link(`/task/${enc(x)}`, x) : '');
  return h('section', null,
    h('h1', null, `${t.name ?? 'Task'} `, state(t.state)),
    source !== 'events' ? h('p', { class: 'muted' }, `Known from the ${source} only.`) : null,
    h('div', { class: 'actions' },
      h('button', { id: 'revoke', onclick: () => act(`/api/task/revoke/${enc(id)}`) }, 'Revoke'),
      h('button', { id: 'terminate', class: 'danger', onclick: () => act(`/api/task/revoke/${enc(id)}`, { terminate: 'true' }) }, 'Revoke and terminate'),
      h('button', { id: 'retry', onclick: async () => { const r = await act(`/api/task/retry/${enc(id)}`); if (r) go(`/task/${enc(r['task-id'])}`); } }, 'Retry')),
    h('dl', { class: 'fields', id: 'fields' },
      row('id', t.uuid), row('state', t.state), row('args', t.args), row('kwargs', t.kwargs), row('result', t.result), row('exception', t.exception),
      row('worker', t.worker), row('sent', time(t.sent)), row('received', time(t.received)), row('started', time(t.started)),
      row('succeeded', time(t.succeeded)), row('failed', time(t.failed)), row('retried', time(t.retried)), row('revoked', time(t.revoked)),
      row('runtime', t.runtime), row('retries', t.retries), row('eta', t.eta), row('expires', t.expires), row('routing key', t.routing_key),
      row('parent', taskLink(t.parent_id)), row('root', taskLink(t.root_id)),
      row('children', (t.children ?? []).flatMap((c, i) => (i ? [', ', taskLink(c)] : [taskLink(c)])))),
    t.traceback ? [h('h2', null, 'Traceback'), h('pre', { id: 'traceback' }, t.traceback)] : null,
    graph.length > 1 ? [h('h2', null, 'Workflow'), workflowGraph(graph, id)] : null);
}

/** The workflow as a tree by parent: one column per generation, siblings (a group) stacked. */
function workflowGraph(tasks, current) {
  const byId = new Map(tasks.map((t) => [t.uuid, t]));
  const depth = new Map();
  const depthOf = (t, seen = new Set()) => {
    if (depth.has(t.uuid)) return depth.get(t.uuid);
    const parent = t.parent_id && byId.get(t.parent_id);
    const d = parent && !seen.has(t.uuid) ? depthOf(parent, seen.add(t.uuid)) + 1 : 0;
    depth.set(t.uuid, d);
    return d;
  };
  const columns = [];
  for (const t of tasks) (columns[depthOf(t)] ??= []).push(t);
  const W = 210, H = 44, pos = new Map();
  columns.forEach((col, x) => col.forEach((t, y) => pos.set(t.uuid, { x: 10 + x * W, y: 10 + y * H })));
  const height = 20 + Math.max(...columns.map((c) => c.length)) * H;
  const svg = h('svg', { class: 'graph', width: 20 + columns.length * W, height, id: 'graph' });
  for (const t of tasks) {
    const p = pos.get(t.uuid), q = t.parent_id && pos.get(t.parent_id);
    if (q) svg.append(h('line', { svg: 1, x1: q.x + 170, y1: q.y + 16, x2: p.x, y2: p.y + 16, stroke: '#889' }));
  }
  for (const t of tasks) {
    const p = pos.get(t.uuid);
    const fill = { SUCCESS: '#cdeedd', FAILURE: '#f8d3d3', STARTED: '#dbe8fb' }[t.state] ?? '#eef1f4';
    const a = h('a', { svg: 1, href: `/task/${enc(t.uuid)}` },
      h('rect', { svg: 1, x: p.x, y: p.y, width: 170, height: 32, rx: 4, fill, stroke: t.uuid === current ? '#2d4a3e' : '#aab', 'stroke-width': t.uuid === current ? 2 : 1 }),
      h('text', { svg: 1, x: p.x + 6, y: p.y + 13 }, (t.name ?? '?').slice(-24)),
      h('text', { svg: 1, x: p.x + 6, y: p.y + 26 }, `${t.state ?? ''} ${t.uuid.slice(0, 8)}`));
    a.addEventListener('click', (e) => { e.preventDefault(); go(`/task/${enc(t.uuid)}`); });
    svg.append(a);
  }
  return svg;
}

// ---- queues
async function queuesPage() {
  const { queues, dead } = await api('/api/dashboard/queues');
  return h('section', null, h('h1', null, 'Queues'),
    h('table', { id: 'queues' }, h('tr', null, ['Queue', 'Messages waiting', 'Dead letters'].map((t) => h('th', null, t))),
      queues.map((q) => h('tr', null, h('td', null, q.name), h('td', null, q.messages), h('td', null, q.dead ?? 'n/a')))),
    h('h2', null, 'Dead letters'),
    dead.length ? h('table', { id: 'dead' }, h('tr', null, ['Queue', 'Task', 'Id', 'Reason', 'When'].map((t) => h('th', null, t))),
      dead.map((d) => h('tr', null, h('td', null, d.queue), h('td', null, d.task ?? ''), h('td', { class: 'mono' }, d.task_id ? link(`/task/${enc(d.task_id)}`, d.task_id) : ''),
        h('td', null, d.reason ?? ''), h('td', null, time(d.time)))))
      : h('p', { class: 'muted' }, 'none'));
}

// ---- live channel: reload the view when something changed (at most every 500 ms)
let pending = false;
function connect() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  es.onopen = () => { live.textContent = '● live'; };
  es.onerror = () => { live.textContent = '○ reconnecting'; };
  es.addEventListener('change', () => {
    if (pending || location.pathname.startsWith('/worker/')) return; // its forms would lose what is typed
    pending = true;
    setTimeout(() => { pending = false; refresh(); }, 100);
  });
}

connect();
render();
