// The Loom dashboard page: the board at `/`, one issue at `/issues/N`. Everything it shows comes
// from the dashboard's API: the event stream `/api/v1/events` (the board as `state` messages, the
// event log as `event` messages, an issue's run log as `log` messages) and `/api/v1/issues/N`.
// Text from the tracker (titles, messages) is only ever set as text, never as HTML.
'use strict';

const LANES = [
  ['ready', 'Ready'],
  ['building', 'Building'],
  ['review_requested', 'Review requested'],
  ['changes_requested', 'Changes requested'],
  ['ready_to_merge', 'Ready to merge'],
  ['blocked', 'Blocked'],
  ['proposals', 'Proposals'],
];
const PR_LANES = new Set(['review_requested', 'changes_requested', 'ready_to_merge']);
const MAX_FEED = 200;
const MAX_LOG_CHARS = 200000;

const issuePage = /^\/issues\/(\d+)$/.exec(location.pathname);
const issueNumber = issuePage ? Number(issuePage[1]) : null;
let board = null;
/** Server time minus this browser's, so ages are right on a skewed clock. */
let skew = 0;

function $(id) {
  return document.getElementById(id);
}

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'className') el.className = v;
    else if (k === 'onclick') el.addEventListener('click', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function now() {
  return Date.now() + skew;
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const hrs = Math.floor(m / 60);
  return `${hrs}h ${String(m % 60).padStart(2, '0')}m`;
}

function since(iso) {
  return iso ? duration(now() - Date.parse(iso)) : '–';
}

function money(usd) {
  return `$${(usd || 0).toFixed(2)}`;
}

function tokens(t) {
  if (!t) return '0';
  const n = (t.input_tokens || 0) + (t.output_tokens || 0);
  return n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour12: false });
}

function notice(text, bad) {
  const el = $('notice');
  el.textContent = text;
  el.className = bad ? 'bad' : 'good';
  el.hidden = false;
}

async function act(url, label) {
  notice(`${label}…`, false);
  try {
    const res = await fetch(url, { method: 'POST', headers: { accept: 'application/json' } });
    const body = await res.json();
    notice(body.ok ? body.message : `${label} refused: ${body.error}`, !body.ok);
  } catch (error) {
    notice(`${label} failed: ${error.message}`, true);
  }
}

function actionButton(action, issue) {
  const label = { spawn: 'Spawn', abort: 'Abort' }[action];
  return h('button', { type: 'button', 'data-action': action, 'data-issue': issue, onclick: () => act(`/api/v1/issues/${issue}/${action}`, `${label} #${issue}`) }, label);
}

function renderHeader() {
  const d = board.status.daemon;
  const pill = $('daemon');
  pill.textContent = { running: 'running', stopped: 'stopped', crashed: 'crashed', 'never-started': 'never started' }[d.status] || d.status;
  pill.className = `pill ${d.status}`;
  const bits = [];
  if (d.status === 'running') bits.push(`pid ${d.pid}`, `up ${since(d.started_at)}`);
  if (d.force_mode && d.status === 'running') bits.push('force mode');
  if (d.iteration) bits.push(`iteration ${d.iteration}`);
  if (d.stop_requested) bits.push('stopping');
  if (d.last_summary) bits.push(d.last_summary);
  $('daemon-detail').textContent = bits.join(' · ');
  const stop = $('stop-daemon');
  stop.hidden = d.status !== 'running' || d.stop_requested;
}

function renderLanes() {
  const lanes = $('lanes');
  lanes.replaceChildren(
    ...LANES.map(([key, title]) => {
      const cards = board.lanes[key] || [];
      const total = (board.lane_totals && board.lane_totals[key]) ?? cards.length;
      return h(
        'div',
        { className: 'lane', 'data-lane': key },
        h('h3', {}, title, h('span', { className: 'count' }, String(total))),
        ...cards.map((c) => {
          const issue = PR_LANES.has(key) ? c.issue : c.number;
          const urgent = c.labels.includes('loom:urgent');
          return h(
            'div',
            { className: `card${urgent ? ' urgent' : ''}`, 'data-issue': issue, 'data-number': c.number },
            h('a', { href: issue ? `/issues/${issue}` : null }, PR_LANES.has(key) ? `PR #${c.number}` : `#${c.number}`),
            ' ',
            h('span', { className: 'title' }, c.title),
            PR_LANES.has(key) && c.issue ? h('span', { className: 'muted' }, ` (#${c.issue})`) : null,
            urgent ? h('span', { className: 'tag' }, 'urgent') : null,
            key === 'ready' ? actionButton('spawn', c.number) : null,
            key === 'building' ? actionButton('abort', c.number) : null,
            c.waiting ? h('div', { className: 'muted waiting' }, c.waiting) : null,
          );
        }),
        total > cards.length ? h('div', { className: 'muted more' }, `and ${total - cards.length} more (loom issue list)`) : null,
      );
    }),
  );
}

function renderShepherds() {
  $('pool').textContent = `${board.status.shepherds.active}/${board.status.shepherds.max}`;
  const rows = board.shepherds.map((s) =>
    h(
      'tr',
      { 'data-shepherd': s.issue, className: s.alive || s.finished ? '' : 'dead' },
      h('td', {}, s.slot),
      h('td', {}, h('a', { href: `/issues/${s.issue}` }, `#${s.issue}`), ' ', h('span', { className: 'title' }, s.title || '')),
      h('td', { 'data-field': 'phase' }, s.phase || '–'),
      h('td', {}, s.runtime || '–'),
      h('td', { 'data-since': s.started || '' }, since(s.started)),
      s.finished
        ? h('td', { className: 'heartbeat muted' }, `finished: ${s.finished}`)
        : s.alive
          ? h('td', { 'data-since': s.heartbeat || '', className: 'heartbeat' }, since(s.heartbeat))
          : h('td', { className: 'heartbeat' }, 'process gone'),
      h('td', {}, tokens(s.usage)),
      h('td', {}, money(s.usage && s.usage.cost_usd)),
      h('td', {}, s.finished ? null : actionButton('abort', s.issue)),
    ),
  );
  if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 9, className: 'muted' }, 'no shepherd is working')));
  $('shepherds').tBodies[0].replaceChildren(...rows);
}

function renderRoles() {
  $('roles').tBodies[0].replaceChildren(
    ...board.roles.map((r) =>
      h(
        'tr',
        { 'data-role': r.role, className: r.enabled ? '' : 'muted' },
        h('td', {}, r.role),
        h('td', {}, r.enabled ? r.runtime || '–' : 'disabled'),
        h('td', {}, r.status === 'running' ? h('span', {}, 'running ', h('span', { 'data-since': r.started || '' }, since(r.started))) : 'idle'),
        h('td', {}, r.last_completed ? `${clock(r.last_completed)}${r.last_outcome && r.last_outcome !== 'completed' ? ` (${r.last_outcome})` : ''}` : 'not yet'),
        h('td', {}, !r.enabled || r.status === 'running' ? '–' : r.next_run === 'due' ? 'due' : r.next_run ? clock(r.next_run) : 'when needed'),
        h('td', { className: 'muted' }, r.trigger),
      ),
    ),
  );
}

function renderUsage() {
  const today = board.status.usage.today;
  const b = board.budget;
  const lines = [h('div', {}, `${today.runs} agent runs · ${tokens(today)} tokens · ${money(today.cost_usd)}`)];
  const bar = (used, cap, label) => {
    const pct = Math.min(100, cap > 0 ? (100 * used) / cap : 0);
    const fill = h('div', { className: `fill${pct >= 100 ? ' over' : ''}` });
    // Through the CSSOM: the page's content security policy allows no inline style attribute.
    fill.style.width = `${pct.toFixed(1)}%`;
    return h('div', { className: 'budget' }, fill, h('span', {}, label));
  };
  if (b.per_day_usd !== null) lines.push(bar(today.cost_usd, b.per_day_usd, `${money(today.cost_usd)} of ${money(b.per_day_usd)} daily budget`));
  if (b.per_day_tokens !== null) lines.push(bar(today.input_tokens + today.output_tokens, b.per_day_tokens, `${tokens(today)} of ${b.per_day_tokens} daily tokens`));
  if (b.per_day_usd === null && b.per_day_tokens === null) lines.push(h('div', { className: 'muted' }, 'no daily budget set (budget.perDayUsd)'));
  lines.push(h('div', { className: 'muted' }, `all time: ${tokens(board.status.usage.total)} tokens, ${money(board.status.usage.total.cost_usd)}`));
  $('usage').replaceChildren(...lines);
  const limits = board.status.runtime_limits.map((l) => h('li', {}, `${l.runtime} until ${clock(l.until)} — ${l.reason}`));
  if (board.status.tracker_paused_until) limits.push(h('li', {}, `tracker paused until ${clock(board.status.tracker_paused_until)}`));
  $('limits').replaceChildren(...(limits.length ? limits : [h('li', { className: 'muted' }, 'none')]));
}

// The bullmq executor's fleet (docs/distributed.md): shown only when the daemon uses it.
function renderWorkers() {
  const q = board.status.queue;
  $('workers-panel').hidden = !q;
  if (!q) return;
  $('queue-state').textContent = q.available ? `${q.redis} · ${q.jobs.length} job${q.jobs.length === 1 ? '' : 's'}` : `Redis unavailable since ${clock(q.paused_since)}: dispatch paused`;
  const rows = q.workers.map((w) =>
    h(
      'tr',
      { 'data-worker': w.name, className: w.draining ? 'muted' : '' },
      h('td', {}, w.name + (w.draining ? ' (draining)' : '')),
      h('td', {}, w.host),
      h('td', {}, w.jobs.length ? w.jobs.map((n) => `#${n}`).join(', ') : 'idle'),
      h('td', {}, String(w.concurrency)),
      h('td', { 'data-since': w.last_seen || '' }, since(w.last_seen)),
    ),
  );
  if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 5, className: 'muted' }, 'no worker has reported')));
  $('workers').tBodies[0].replaceChildren(...rows);
}

// The merge queue and the post-merge guard's pause (what `loom status` says under "Merging").
function renderMerging() {
  const m = board.status.merging;
  const items = [];
  if (m && m.paused) items.push(h('li', { className: 'bad' }, m.paused.reason.replace(/`/g, '')));
  for (const q of (m && m.queue) || []) items.push(h('li', { 'data-pr': q.pr }, `${q.position}. PR #${q.pr} (issue #${q.issue}, ${q.by}) ${q.step}${q.detail ? `: ${q.detail}` : ''}`));
  if (m && m.last_guard) items.push(h('li', { className: 'muted' }, `last check of the base: ${m.last_guard.result} — ${String(m.last_guard.detail).replace(/`/g, '')}`));
  $('merging').replaceChildren(...(items.length ? items : [h('li', { className: 'muted' }, 'no merge waiting')]));
}

function renderWarnings() {
  const items = [...board.status.problems.map((p) => h('li', { className: 'bad' }, p)), ...board.status.warnings.slice().reverse().map((w) => h('li', {}, h('span', { className: 'muted' }, `${clock(w.time)} `), w.message))];
  $('warnings').replaceChildren(...(items.length ? items : [h('li', { className: 'muted' }, 'none')]));
}

function eventItem(e, text) {
  return h('li', { 'data-type': e.type || '', 'data-issue': e.issue ?? '' }, h('time', { datetime: e.at }, clock(e.at)), ' ', h('span', { className: 'type' }, e.type), ' ', text);
}

function addEvent(e) {
  const feed = $('events');
  if (!feed || issueNumber !== null) return;
  feed.prepend(eventItem(e, e.text));
  while (feed.children.length > MAX_FEED) feed.lastChild.remove();
}

function render() {
  if (!board) return;
  renderHeader();
  if (issueNumber !== null) return;
  renderLanes();
  renderShepherds();
  renderRoles();
  renderUsage();
  renderWorkers();
  renderMerging();
  renderWarnings();
}

/** Ages tick every second without a message from the server. */
function tick() {
  for (const el of document.querySelectorAll('[data-since]')) if (el.dataset.since) el.textContent = since(el.dataset.since);
  if (board && board.status.daemon.status === 'running') renderHeader();
}

// --- the issue page ---

let issueRefresh = null;

async function loadIssue() {
  const res = await fetch(`/api/v1/issues/${issueNumber}`, { headers: { accept: 'application/json' } });
  const body = await res.json();
  if (!res.ok) {
    $('issue-title').textContent = body.error || `#${issueNumber}`;
    return;
  }
  const i = body.issue;
  $('issue-title').textContent = `#${i.number} ${i.title}`;
  document.title = `#${i.number} · Loom`;
  $('issue-meta').replaceChildren(
    h('span', { className: `pill ${i.state}` }, i.state),
    ' ',
    ...i.labels.map((l) => h('span', { className: 'tag' }, l)),
    ...body.pull_requests.map((p) => h('span', { className: 'muted' }, ` PR #${p.number} ${p.state}${p.labels.length ? ` (${p.labels.join(', ')})` : ''}`)),
  );
  const actions = [];
  if (i.state === 'open' && !i.labels.includes('loom:building')) actions.push(actionButton('spawn', i.number));
  if (i.labels.includes('loom:building')) actions.push(actionButton('abort', i.number));
  $('issue-actions').replaceChildren(...actions);
  $('why-verdict').textContent = body.why.verdict;
  $('why').replaceChildren(...body.why.gates.map((g) => h('li', { className: g.ok ? 'ok' : 'bad', 'data-gate': g.gate }, `${g.ok ? '✓' : '✗'} ${g.gate}: `, h('span', { className: 'muted' }, g.detail))));
  $('timeline').replaceChildren(
    ...body.timeline
      .slice()
      .reverse()
      .map((t) => {
        const li = eventItem({ at: t.at, type: t.type, issue: issueNumber }, t.text);
        li.classList.add(t.source);
        return li;
      }),
  );
}

function refreshIssueSoon() {
  clearTimeout(issueRefresh);
  issueRefresh = setTimeout(() => loadIssue().catch(() => undefined), 200);
}

function appendLog(msg) {
  const pre = $('log');
  if (msg.reset) pre.textContent = '';
  $('log-file').textContent = msg.file;
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  pre.textContent = (pre.textContent + msg.text).slice(-MAX_LOG_CHARS);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// --- wiring ---

function connect() {
  const live = $('live');
  const es = new EventSource(issueNumber === null ? '/api/v1/events' : `/api/v1/events?issue=${issueNumber}`);
  es.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'pill on';
  });
  // A reconnect resumes after the last event seen (the browser sends its id) when the dashboard
  // still can; otherwise (it restarted) it is sent the recent events again, and the feed starts
  // over instead of showing them twice.
  es.addEventListener('hello', (m) => {
    if (!JSON.parse(m.data).resumed && issueNumber === null) $('events').replaceChildren();
  });
  es.addEventListener('error', () => {
    live.textContent = 'reconnecting';
    live.className = 'pill off';
  });
  es.addEventListener('state', (m) => {
    const previous = board;
    board = JSON.parse(m.data);
    skew = Date.parse(board.generated_at) - Date.now();
    render();
    if (issueNumber !== null && previous !== null) refreshIssueSoon();
  });
  es.addEventListener('event', (m) => {
    addEvent(JSON.parse(m.data));
    if (issueNumber !== null) refreshIssueSoon();
  });
  es.addEventListener('log', (m) => appendLog(JSON.parse(m.data)));
}

$('stop-daemon').addEventListener('click', () => act('/api/v1/daemon/stop', 'Stop'));
if (issueNumber === null) $('board').hidden = false;
else {
  $('issue').hidden = false;
  loadIssue().catch((error) => notice(`could not load #${issueNumber}: ${error.message}`, true));
}
connect();
setInterval(tick, 1000);
